"""Command-line flags and launch of the web app, with safe defaults for shared links.

Binds 127.0.0.1 unless told otherwise. A public share link needs --auth user:pass, or the explicit
--share-without-auth. --demo-only exposes the Compare tab alone, read-only. The embedded demo model
is built in a background thread so that the page answers at once; this module imports gradio only
inside main(), after the flags are checked.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from studio import paths
from studio.errors import StudioError


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python app.py", description="Fine-Tune Studio web app")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=None, help="port (default 7860, or the next free one)")
    ap.add_argument("--share", action="store_true", help="open a public share link (needs --auth)")
    ap.add_argument("--auth", help="user:pass required to open the app")
    ap.add_argument("--share-without-auth", action="store_true",
                    help="allow --share with no password (anyone with the link can train and read files)")
    ap.add_argument("--demo-only", action="store_true", help="read-only: only the Compare tab")
    ap.add_argument("--allow-root", action="append", default=[],
                    help="extra folder that file fields may read (repeatable)")
    ap.add_argument("--runs", help="runs folder (default ./runs)")
    ap.add_argument("--no-demo-build", action="store_true", help="do not build the demo model at start")
    return ap.parse_args(argv)


def check_args(a: argparse.Namespace) -> None:
    if a.share and not a.auth and not a.share_without_auth:
        raise StudioError("--share makes the app public. Add --auth user:pass to protect it "
                          "(or --share-without-auth if you really want it open).")
    if a.auth and (":" not in a.auth or not a.auth.split(":", 1)[0] or not a.auth.split(":", 1)[1]):
        raise StudioError("--auth must look like user:password.")


def _build_demo_in_background() -> None:
    def work():
        try:
            from studio.demo import ensure_demo

            ensure_demo()
        except Exception as e:  # the app stays up; the Train tab reports the missing demo
            print(f"Could not build the demo model: {e}", file=sys.stderr, flush=True)

    threading.Thread(target=work, name="demo-build", daemon=True).start()


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    try:
        check_args(a)
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.runs:
        os.environ["STUDIO_RUNS"] = os.path.abspath(a.runs)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not a.no_demo_build and not paths.demo_model_dir().joinpath("config.json").exists():
        _build_demo_in_background()
    from studio.ui.app import build_app, launch_kwargs

    demo = build_app(demo_only=a.demo_only, extra_roots=a.allow_root)
    auth = tuple(a.auth.split(":", 1)) if a.auth else None
    demo.queue(default_concurrency_limit=4).launch(**launch_kwargs(
        host=a.host, port=a.port, share=a.share, auth=auth, extra_roots=a.allow_root))
    return 0
