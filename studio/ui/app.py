"""Builds the Gradio app: a header, the shared cross-tab states, and the six tabs in order.

Each tab lives in its own module with `build(shared)`. A tab that fails to build shows its
error in place instead of taking the whole app down (and the failure is logged), so one broken
optional dependency never blanks the studio.
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
import traceback
from pathlib import Path

import gradio as gr

from studio import paths
from studio.ui.shared import Shared

log = logging.getLogger(__name__)

TABS = [("Wizard", "wizard_tab"), ("Data", "data_tab"), ("Memory", "memory_tab"),
        ("Train", "train_tab"), ("Compare", "compare_tab"), ("Export", "export_tab")]
DEMO_ONLY_TABS = {"Compare"}

INTRO = (
    "## Fine-Tune Studio\n"
    "From *should I fine-tune at all?* to a model you can chat with and export — no code. "
    "Go left to right: **Wizard** picks a plan, **Data** checks your examples, **Memory** tells you "
    "if it fits, **Train** runs it, **Compare** shows before and after, **Export** saves it."
)


def build_app(demo_only: bool = False, extra_roots: list[str] | None = None) -> gr.Blocks:
    # Uploads land in gradio's upload folder (GRADIO_TEMP_DIR, default TMP/gradio): readable, but
    # not the rest of the temp dir, which other programs share.
    upload_dir = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()
    roots = paths.allowed_roots(extra_roots) + [upload_dir]
    shared = Shared(allowed_roots=roots, assets_dir=paths.assets_dir(), runs_root=paths.runs_root(),
                    demo_only=demo_only)
    with gr.Blocks(title="Fine-Tune Studio") as demo:
        gr.Markdown(INTRO if not demo_only else "## Fine-Tune Studio — demo\nBase model on the left, "
                    "fine-tuned on the right. Type a question and compare.")
        shared.config_yaml = gr.State("")
        shared.dataset_path = gr.State("")
        shared.run_dir = gr.State("")
        # {rows, format, tokens: {p50, p95, max}} of the dataset loaded in the Data tab (Wizard reads it)
        shared.extra["dataset_stats"] = gr.State({})
        shared.extra["demo"] = demo
        shared.extra["failed_tabs"] = []
        with gr.Tabs() as tabs:
            # Tabs that act on being selected (Memory's live readings, Compare's run list) find
            # the strip and their own tab here.
            shared.extra["tabs"], shared.extra["tab"] = tabs, {}
            for title, module in TABS:
                if demo_only and title not in DEMO_ONLY_TABS:
                    continue
                with gr.Tab(title, id=module) as tab:
                    shared.extra["tab"][module] = tab
                    try:
                        importlib.import_module(f"studio.ui.{module}").build(shared)
                    except Exception as e:  # keep the app up; show what broke where it broke
                        log.error("Tab %s failed to build:\n%s", title, traceback.format_exc())
                        shared.extra["failed_tabs"].append(title)
                        gr.Markdown(f"**The {title} tab could not load:** `{type(e).__name__}: {e}`")
    demo.shared = shared  # for tests: which tabs failed, which roots are allowed
    return demo


def launch_kwargs(host: str, port: int | None, share: bool, auth, extra_roots) -> dict:
    # No allowed_paths: gradio would serve every file under them over HTTP (/gradio_api/file=...),
    # to anyone who can open the page. The allowed roots only bound what handlers read.
    # Uploads are capped so a public link cannot fill the disk; 2 GB covers large datasets.
    kw = dict(server_name=host, share=share, auth=auth, show_error=False, max_file_size="2gb",
              theme=gr.themes.Soft(), footer_links=["gradio"], ssr_mode=False)
    if port:
        kw["server_port"] = port
    return kw
