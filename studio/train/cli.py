"""`python -m studio train CONFIG.yaml [--run-dir DIR] [--resume RUN_DIR]`: the Train tab, from a shell.

It goes through exactly the same path as the UI (studio.runs.create_run + start, which launch the
worker subprocess), then follows the run: it prints the worker's log as it grows and returns the
run's exit state. Ctrl-C stops the run the same way the Stop button does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from studio import runs
from studio.config import RunConfig


def follow(run_dir: Path, proc, poll_s: float = 0.5) -> dict:
    """Print stdout.log as it grows until the worker ends; return the final status."""
    log = run_dir / "stdout.log"
    pos = 0
    while True:
        if log.exists():
            with open(log, "rb") as f:
                f.seek(pos)
                chunk = f.read()
                pos += len(chunk)
            if chunk:
                sys.stdout.write(chunk.decode("utf-8", errors="replace"))
                sys.stdout.flush()
        if proc.poll() is not None:
            break
        time.sleep(poll_s)
    return runs.status(run_dir)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m studio train", description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", help="YAML run config, e.g. presets/demo-cpu.yaml")
    ap.add_argument("--run-dir", help="run folder (default: runs/<timestamp>-<name>)")
    ap.add_argument("--resume", metavar="RUN_DIR", help="resume a stopped or crashed run from its last checkpoint")
    ap.add_argument("--detach", action="store_true", help="start and return at once")
    a = ap.parse_args(argv)
    if a.resume:
        run_dir = Path(a.resume)
        proc = runs.resume(run_dir)
    else:
        if not a.config:
            ap.error("give a CONFIG.yaml (or --resume RUN_DIR)")
        cfg = RunConfig.load(a.config).check()
        run_dir = runs.create_run(cfg, run_dir=a.run_dir)
        proc = runs.start(run_dir)
    print(f"Run folder: {run_dir}", flush=True)
    if a.detach:
        return 0
    try:
        st = follow(run_dir, proc)
    except KeyboardInterrupt:
        print("\nStopping (saving a checkpoint)...", flush=True)
        st = runs.stop(run_dir)
    print(f"\nRun {st.get('state')}: {run_dir}" + (f"\n{st['error']}" if st.get("error") else ""))
    return 0 if st.get("state") in ("done", "stopped") else 1
