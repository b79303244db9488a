"""Export tab: pick a run (and checkpoint), a format and a type, export with progress, read the
result and the model card, optionally push to the Hugging Face Hub.

Widgets and wiring only: studio.export does the work (same code path as `python -m studio export`),
studio.hub pushes. The output folder must lie inside the allowed roots. The Hub token lives only
in its password box and the one push call; it is cleared after a successful push.
"""

from __future__ import annotations

import gradio as gr

from studio import export
from studio.errors import StudioError
from studio.paths import is_within

FORMAT_CHOICES = [("Adapter (PEFT, small)", "adapter"), ("Merged model (safetensors, 16-bit)", "merged"),
                  ("GGUF (llama.cpp, LM Studio)", "gguf"), ("Ollama (GGUF + Modelfile)", "ollama"),
                  ("4-bit bitsandbytes (CUDA only)", "bnb4")]
FORMAT_HELP = {
    "adapter": "Just the LoRA weights (MBs). Needs the base model to run.",
    "merged": "Adapter merged into a fresh copy of the base: a standalone transformers model.",
    "gguf": "One file for llama.cpp / LM Studio. q8_0 is near-lossless, q4_0 is ~3.5x smaller than f16.",
    "ollama": "GGUF plus a Modelfile with the chat template: `ollama create NAME -f Modelfile`.",
    "bnb4": "NF4 4-bit weights for GPU serving with bitsandbytes. Needs a CUDA GPU here.",
}


def run_choices(root) -> list[tuple[str, str]]:
    """(label, run folder) for runs that have weights to export, newest first."""
    from studio.runs import list_runs

    return [(f"{r['name']} ({r['state']})", r["run_dir"]) for r in list_runs(root)
            if export.list_checkpoints(r["run_dir"])]


def check_paths(shared, run: str | None, out: str | None) -> tuple[str, str | None]:
    """The run and output folder, or a StudioError that says which one is not allowed and why."""
    if not run:
        raise StudioError("Pick a run first (train one in the Train tab, then press Refresh).")
    if not is_within(run, shared.allowed_roots):
        raise StudioError(f"The run folder {run} is outside the folders this app may read.")
    out = (out or "").strip() or None
    if out:
        if not is_within(out, shared.allowed_roots):
            roots = ", ".join(str(r) for r in shared.allowed_roots[:4])
            raise StudioError(f"The output folder {out} is outside the allowed folders ({roots}). Choose a "
                              "folder inside one of them, or start the app with STUDIO_ALLOWED_ROOTS set.")
    return run, out


def do_export(shared, run, ckpt, fmt, dtype, out, overwrite, progress) -> tuple[str, str, str]:
    """(summary markdown, model card markdown, export folder) for one export."""
    run, out = check_paths(shared, run, out)
    res = export.export_run(run, fmt, out, dtype or None, ckpt or None, bool(overwrite),
                            progress=lambda f, m: progress(f, desc=m))
    card = (res.out_dir / "README.md").read_text(encoding="utf-8")
    summary = res.summary() + (f"\n\nRun report: `{res.report}`" if res.report else "")
    return summary, card.split("---\n", 2)[-1], str(res.out_dir)


def do_push(folder, repo, token, private) -> str:
    from studio.hub import push_folder

    if not folder:
        raise StudioError("Export something first: the push uploads the last export folder.")
    return f"Pushed `{folder}` to {push_folder(folder, repo, token, bool(private))}"


def build(shared) -> None:
    gr.Markdown("Save a trained run as an adapter, a merged model, a GGUF file or an Ollama model. "
                "Every export carries a model card (README.md) and is checked before it is kept; "
                "a failed export leaves nothing behind.")
    runs = run_choices(shared.runs_root)
    with gr.Row():
        run = gr.Dropdown(label="Run", choices=runs, value=runs[0][1] if runs else None, scale=3)
        cks = export.list_checkpoints(runs[0][1]) if runs else ["final"]
        ckpt = gr.Dropdown(label="Weights", choices=cks, value=cks[0], scale=2,
                           info="final, or a checkpoint saved during training")
        refresh = gr.Button("Refresh runs", scale=1)
    with gr.Row():
        fmt = gr.Radio(label="Format", choices=FORMAT_CHOICES, value="merged", scale=3)
        # All types up front (the format's change narrows them), so API callers can pass any valid one.
        all_types = list(dict.fromkeys(t for f in export.FORMATS for t in export.DTYPES[f]))
        dtype = gr.Dropdown(label="Type", choices=all_types, value="bf16", scale=1,
                            info="bf16 / f16 keep full quality; q8_0 / q4_0 shrink GGUF files")
    fmt_help = gr.Markdown(FORMAT_HELP["merged"])
    with gr.Row():
        out = gr.Textbox(label="Output folder", scale=3,
                         placeholder="empty = RUN/exports/FORMAT-TYPE; must be inside the allowed folders")
        overwrite = gr.Checkbox(label="Replace the folder if it exists", value=False, scale=1)
    go = gr.Button("Export", variant="primary")
    summary = gr.Markdown()
    last = gr.State("")
    with gr.Accordion("Model card preview (README.md)", open=False):
        card = gr.Markdown()
    with gr.Accordion("Push to the Hugging Face Hub", open=False):
        gr.Markdown("Uploads the last export. Needs internet; the token is used for this push only and is "
                    "never written to disk or logs.")
        with gr.Row():
            repo = gr.Textbox(label="Repo id", placeholder="your-username/model-name", scale=2)
            token = gr.Textbox(label="Access token (write)", type="password", scale=2)
            private = gr.Checkbox(label="Private repo", value=True, scale=1)
        push = gr.Button("Push to Hub")
        push_out = gr.Markdown()

    def on_run(r):
        if not r:
            return gr.update(choices=["final"], value="final")
        cks = export.list_checkpoints(r) or ["final"]
        return gr.update(choices=cks, value=cks[0])

    def on_refresh(current):
        choices = run_choices(shared.runs_root)
        values = [v for _, v in choices]
        return gr.update(choices=choices, value=current if current in values else (values[0] if values else None))

    def on_format(f):
        kinds = list(export.DTYPES[f])
        return (gr.update(choices=kinds, value=export.DEFAULT_DTYPE[f] or None, visible=bool(kinds)),
                FORMAT_HELP[f])

    def on_export(r, c, f, d, o, ow, progress=gr.Progress()):
        try:
            return do_export(shared, r, c, f, d, o, ow, progress)
        except StudioError as e:
            raise gr.Error(str(e)) from None

    def on_push(folder, rep, tok, priv):
        try:
            return do_push(folder, rep, tok, priv), gr.update(value="")
        except StudioError as e:
            raise gr.Error(str(e)) from None

    run.change(on_run, run, ckpt)
    refresh.click(on_refresh, run, run)
    fmt.change(on_format, fmt, [dtype, fmt_help])
    go.click(on_export, [run, ckpt, fmt, dtype, out, overwrite], [summary, card, last], concurrency_limit=1)
    push.click(on_push, [last, repo, token, private], [push_out, token], concurrency_limit=1)
    if shared.run_dir is not None:
        shared.run_dir.change(lambda r: gr.update(choices=run_choices(shared.runs_root), value=r)
                              if r and export.list_checkpoints(r) else gr.skip(), shared.run_dir, run)
    if "demo" in shared.extra:
        shared.extra["demo"].load(on_refresh, run, run)
