"""The Data tab: load, detect, map columns, view, validate, token histogram, clean, split, use.

Wiring only: every handler calls one studio.data function and formats the result with
studio.data.views. Errors become gr.Error / gr.Warning with the data layer's message.
Reads from `shared` (studio.ui.shared.Shared): allowed_roots, assets_dir, runs_root (outputs go
to RUNS_ROOT/_data/, or shared.extra["data_dir"]) and writes shared.dataset_path on "Use for
training". The only per-session state is a small dict of paths and the format guess.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path

import gradio as gr

from studio.data import views
from studio.data.formats import FIELDS, FORMATS, FormatGuess, row_messages
from studio.errors import StudioError
from studio.paths import check_allowed
from studio.ui.inputs import real, whole

_ALL_FIELDS = list(dict.fromkeys(f for fmt in FORMATS for f in FIELDS[fmt]))


def _ui_errors(fn):
    """StudioError -> gr.Error with its message; anything else -> a short gr.Error, no trace."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except StudioError as e:
            raise gr.Error(str(e)) from None
        except OSError as e:  # unreadable, vanished, disk full: which file and why
            raise gr.Error(f"Cannot use {str(e.filename or 'the file')[:200]}: {e.strerror or e}. "
                           "Check the path and its permissions.") from None
        except Exception as e:  # keep the app up whatever the file holds
            raise gr.Error(f"Unexpected problem: {type(e).__name__}: {e}") from None
    return wrapper


def build(shared) -> None:
    from studio.data import load_rows
    from studio.data.formats import detect_format, resolve_columns

    data_dir = Path((getattr(shared, "extra", None) or {}).get("data_dir")
                    or Path(getattr(shared, "runs_root", "runs")) / "_data")
    samples = views.sample_files(Path(shared.assets_dir) / "data")
    roots = list(getattr(shared, "allowed_roots", None) or [])

    def _tok(tok, warn=False) -> str | None:
        """The tokenizer folder if set and existing; outside the roots: StudioError (or a warning)."""
        try:
            ok = (tok or "").strip() and Path(check_allowed(tok, roots, "tokenizer folder")).exists()
            return tok if ok else None
        except StudioError as e:
            if not warn:
                raise
            gr.Warning(str(e))  # the row still shows; only the token view is refused

    state = gr.State({})
    stats_out = (getattr(shared, "extra", None) or {}).get("dataset_stats") or gr.State({})
    with gr.Row():
        upload = gr.File(label="Upload a file", file_types=list(views.SAMPLE_SUFFIXES),
                         type="filepath", scale=2)
        with gr.Column(scale=3):
            path_box = gr.Textbox(label="…or a path / saved-dataset folder")
            sample = gr.Dropdown(samples, label="…or a sample dataset", value=None)
            load_btn = gr.Button("Load", variant="primary")
    summary = gr.Markdown()
    with gr.Accordion("Format and column mapping", open=False) as mapping_box:
        fmt_dd = gr.Dropdown(list(FORMATS), label="Format")
        field_dds = [gr.Dropdown([], label=f"column for '{f}'", visible=False,
                                 allow_custom_value=True) for f in _ALL_FIELDS]
        apply_btn = gr.Button("Apply mapping")
    with gr.Tabs():
        with gr.Tab("Table"):
            table = gr.Dataframe(interactive=False, wrap=True, max_height=420)
        with gr.Tab("Chat view"):
            with gr.Row():
                row_no = gr.Number(0, label="Row", precision=0, minimum=0)
                tok_box = gr.Textbox(str(Path(shared.assets_dir) / "demo-model"),
                                     label="Tokenizer folder (for trained/masked tokens)")
                only_assistant = gr.Checkbox(True, label="Assistant-only loss")
            chat = gr.HTML()
            tokens_view = gr.HighlightedText(label="Chat template: trained vs masked (label -100)",
                                             color_map={"trained": "green", "masked": "gray"},
                                             combine_adjacent=True)
        with gr.Tab("Validation"):
            issues_df = gr.Dataframe(interactive=False, wrap=True, max_height=420)
        with gr.Tab("Token lengths"):
            with gr.Row():
                max_len = gr.Number(1024, label="Max length (tokens)", precision=0, minimum=1)
                hist_btn = gr.Button("Compute histogram")
            hist = gr.Plot()
        with gr.Tab("Clean"):
            with gr.Row():
                dedup = gr.CheckboxGroup(["exact", "near", "semantic"], value=["exact", "near"],
                                         label="Dedup (semantic is slow: embeds every row)")
                near_thr = gr.Slider(0.5, 1.0, 0.8, step=0.01, label="Near-dup threshold")
                pii = gr.Radio(["keep", "redact", "remove"], value="keep", label="PII")
            with gr.Row():
                min_tok = gr.Number(2, label="Min tokens", precision=0)
                max_tok = gr.Number(None, label="Max tokens (empty or 0 = no limit)", precision=0)
                langs = gr.Textbox(label="Keep languages (e.g. en,fr; empty = all)")
                blocklist = gr.Textbox(label="Blocklist (comma-separated)")
                refusals = gr.Checkbox(True, label="Drop refusals ('As an AI…')")
            clean_btn = gr.Button("Clean", variant="primary")
            steps_df = gr.Dataframe(interactive=False, label="Rows per step")
            with gr.Row():
                step_dd = gr.Dropdown([], label="Step", allow_custom_value=True)
                show_btn = gr.Button("Show removed rows")
                undo_btn = gr.Button("Undo step")
                redo_btn = gr.Button("Redo step")
            removed_df = gr.Dataframe(interactive=False, wrap=True, max_height=360)
        with gr.Tab("Split"):
            with gr.Row():
                ratios = gr.Textbox("0.9,0.1,0", label="train,validation,test ratios")
                seed = gr.Number(42, label="Seed", precision=0)
                split_btn = gr.Button("Split")
            split_md = gr.Markdown()
    with gr.Row():
        use_btn, use_md = gr.Button("Use for training", variant="primary"), gr.Markdown()

    def _mapping_updates(fmt: str, columns: list[str], cmap: dict):
        return [gr.update(visible=f in FIELDS[fmt], choices=[""] + columns,
                          value=cmap.get(f, "")) for f in _ALL_FIELDS]

    @_ui_errors
    def on_load(up, typed, picked):
        path = up or (typed or "").strip() or picked
        if not path:
            raise StudioError("no dataset chosen. Fix: upload a file, type a path or pick one.")
        ds = load_rows(check_allowed(path, roots, "dataset"))
        g = detect_format(ds)
        st = {"path": str(path), "columns": ds.column_names, "rows": len(ds),
              "guess": views.guess_to_state(g)}
        return [st, views.summary_markdown(path, len(ds), g), gr.update(open=g.unsure),
                gr.update(value=g.name), views.preview_table(ds), *_show_row(st, 0, None, True),
                _issues(st), *_mapping_updates(g.name, ds.column_names, g.column_map),
                views.dataset_stats(ds, g)]

    def _issues(st):
        from studio.data.validate import validate_dataset

        ds, g = load_rows(st["path"]), views.guess_from_state(st)
        return views.issues_table(validate_dataset(ds, g, max_issues=2000))

    def _show_row(st, idx, tok, assistant_only):
        g = views.guess_from_state(st)
        idx = min(max(whole(idx, "Row", 0), 0), st["rows"] - 1)
        row = load_rows(st["path"]).select([idx]).to_list()[0]
        if g.name == "text":
            return [views.chat_html([{"role": "text", "content": row.get(g.column_map.get(
                "text"), "")}]), None]
        msgs = row_messages(row, g.name, g.column_map)
        spans, tok = None, _tok(tok, warn=True)
        if tok:
            from studio.data.inspection import render_row

            r = render_row(msgs, tok, assistant_only)
            spans = r["spans"]
            if r["note"]:
                gr.Warning(r["note"])
        return [views.chat_html(msgs), spans]

    @_ui_errors
    def on_apply(st, fmt, *values):
        views.guess_from_state(st)
        chosen = {f: v for f, v in zip(_ALL_FIELDS, values) if v and f in FIELDS[fmt]}
        cmap = resolve_columns(fmt, st["columns"], chosen)
        st = {**st, "guess": views.guess_to_state(FormatGuess(fmt, 1.0, cmap, "set by hand"))}
        summary_md = views.summary_markdown(st["path"], st["rows"], views.guess_from_state(st))
        return [st, summary_md, _issues(st), *_mapping_updates(fmt, st["columns"], cmap)]

    @_ui_errors
    def on_hist(st, tok, n):
        from studio.data.inspection import token_lengths

        g = views.guess_from_state(st)
        tok, n = _tok(tok), whole(n, "Max length (tokens)", 1024, 1, 1_000_000)
        ds = load_rows(st["path"])
        return views.histogram_figure(token_lengths(ds, tok, n, g)), views.dataset_stats(ds, g, tok, n)

    @_ui_errors
    def on_clean(st, dd, thr, pii_mode, mn, mx, lg, bl, rf, tok, progress=gr.Progress()):
        from studio.data.clean import CleanOptions, clean

        g = views.guess_from_state(st)
        mx = whole(mx, "Max tokens", None, 0, 10**9) or None  # an emptied Number arrives as 0: no limit
        opts = CleanOptions(dedup=tuple(dd or ()), near_threshold=real(thr, "Near-dup threshold", 0.8, 0.5, 1.0),
                            pii=pii_mode, min_tokens=whole(mn, "Min tokens", None, 0, 10**9), max_tokens=mx,
                            languages=views.csv_tuple(lg), blocklist=views.csv_tuple(bl), refusals=bool(rf),
                            tokenizer=_tok(tok), fmt=g.name, column_map=g.column_map)
        out = data_dir / f"{Path(st['path']).stem}-clean-{time.strftime('%Y%m%d-%H%M%S')}"
        report = clean(st["path"], out, opts, progress=lambda f, d: progress(f, desc=d))
        st = {**st, "clean_dir": str(out)}
        removed = [k for k, s in report["steps"].items() if s["removed"]]
        gr.Info(f"Kept {report['kept']:,} of {report['rows']:,} rows -> {out}/clean.jsonl")
        return [st, views.steps_table(report), gr.update(choices=removed,
                                                         value=removed[0] if removed else None)]

    @_ui_errors
    def on_show(st, step):
        from studio.data.undo import read_removed

        return views.removed_table(read_removed(views.clean_dir(st), step or None))

    def on_undo(redo: bool):
        @_ui_errors
        def handler(st, step):
            from studio.data import undo as U

            if not step:
                raise StudioError("pick a step first.")
            report = (U.redo if redo else U.undo)(views.clean_dir(st), step)
            gr.Info(f"{'Redo' if redo else 'Undo'} {step}: {report['kept']:,} rows kept")
            return views.steps_table(report)
        return handler

    @_ui_errors
    def on_split(st, text, sd):
        from studio.data.split import split

        views.guess_from_state(st)
        src = str(Path(st["clean_dir"]) / "clean.jsonl") if st.get("clean_dir") else st["path"]
        out = data_dir / f"{Path(src).parent.name if st.get('clean_dir') else Path(src).stem}-split"
        ratios = views.parse_ratios(text)
        if not 1 <= len(ratios) <= 3 or not all(map(math.isfinite, ratios)):
            raise StudioError("ratios: up to three finite numbers train,validation,test. Fix: e.g. 0.9,0.1,0.")
        r = split(src, out, ratios, seed=whole(sd, "Seed", 42, 0, 2**32 - 1))
        sizes = ", ".join(f"{k} {v:,}" for k, v in r["sizes"].items())
        return {**st, "split_dir": str(out)}, (
            f"{sizes} → `{out}` ({r['rows_in_duplicate_groups']:,} rows in duplicate groups, "
            "each kept on one side)")

    @_ui_errors
    def on_use(st):
        path = views.training_path(st)
        return path, f"Train tab will use `{path}`"

    load_outputs = [state, summary, mapping_box, fmt_dd, table, chat, tokens_view, issues_df,
                    *field_dds, stats_out]
    load_btn.click(on_load, [upload, path_box, sample], load_outputs)
    sample.change(on_load, [upload, path_box, sample], load_outputs)
    fmt_dd.change(lambda st, f: _mapping_updates(f, st.get("columns", []), {}) if st else
                  [gr.update() for _ in _ALL_FIELDS], [state, fmt_dd], field_dds)
    apply_btn.click(on_apply, [state, fmt_dd, *field_dds], [state, summary, issues_df, *field_dds])
    show = _ui_errors(_show_row)
    for trigger in (row_no.change, only_assistant.change):
        trigger(show, [state, row_no, tok_box, only_assistant], [chat, tokens_view])
    hist_btn.click(on_hist, [state, tok_box, max_len], [hist, stats_out])
    clean_btn.click(on_clean, [state, dedup, near_thr, pii, min_tok, max_tok, langs, blocklist,
                               refusals, tok_box], [state, steps_df, step_dd])
    show_btn.click(on_show, [state, step_dd], removed_df)
    undo_btn.click(on_undo(False), [state, step_dd], steps_df)
    redo_btn.click(on_undo(True), [state, step_dd], steps_df)
    split_btn.click(on_split, [state, ratios, seed], [state, split_md])
    use_btn.click(on_use, [state], [shared.dataset_path, use_md])
