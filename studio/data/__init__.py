"""The data layer: load, detect, validate, inspect, clean, split and mix fine-tuning datasets.

Owns the entry point the Train worker calls, `prepare_for_training`, and re-exports the pure
functions other parts use. Modules (heavy libraries are imported inside functions only):
  load.py        load_rows: files, saved folders, hub ids -> Arrow-backed datasets.Dataset
  diagnose.py    after a failed load: the first bad row of the file and the fix
  files.py       atomic writes, raw JSONL lines, the cheap pre-flight file scan
  formats.py     detect_format, to_trainer_format, per-row conversion
  validate.py    per-row validation with row numbers and fixes (the source of error codes)
  precheck.py    column-wise pre-check that lets clean rows skip the Python validator
  textview.py    the text of each row as Arrow arrays (for dedup, filters, stats)
  inspection.py  stats, token-length histogram data, trained/masked token rendering
  dedup.py       exact / MinHash-LSH near / semantic duplicate detection
  filters.py     length, keyword, refusal and language filters; pii.py: PII find/redact
  clean.py       the cleaning run: clean.jsonl + removed.jsonl + report.json; undo.py: undo/redo
  split.py       seeded train/validation/test split without leakage, weighted mixing
  views.py       tables, chat HTML and the plotly histogram for the Data tab
  cli.py         `python -m studio data inspect|validate|clean|undo|redo|split|mix|convert`
Nothing here imports gradio; the tab is studio/ui/data_tab.py.
"""

from __future__ import annotations

from pathlib import Path

from studio.data.formats import (FORMATS, TARGETS, FormatGuess, detect_format, resolve_columns,
                                 to_trainer_format)
from studio.data.load import load_rows

__all__ = ["FORMATS", "TARGETS", "FormatGuess", "detect_format", "load_rows",
           "prepare_for_training", "to_trainer_format"]


def prepare_for_training(path, fmt: str = "auto", target: str = "messages",
                         column_map: dict | None = None, *, conversational: bool = True,
                         tokenizer=None, limit: int | None = None, skip_invalid: float = 0.0,
                         tool_template: bool = False, log=print):
    """Load `path`, detect (or take) its format, validate every row, convert to `target`.

    target: "messages" | "prompt_completion" | "preference" | "text" (see formats.py).
    tokenizer: a tokenizer object or a folder; when given, rows are also rendered with its chat
    template so template errors surface here, not in the middle of training.
    skip_invalid: the largest fraction of rows (0..1) that may be dropped for failing
    validation; they are named through `log` with their fixes. More than that still fails, so a
    broken file never trains silently on what is left.
    tool_template: the model's chat template renders tool calls (tools.template_renders_tools);
    then a chat dataset with tool calls keeps them structured, with its `tools` definitions.
    Returns a datasets.Dataset with only the target columns. Raises StudioError naming the file,
    the rows and the fix when the data can't be trained on.
    """
    from studio.data.validate import validate_dataset
    from studio.errors import StudioError

    if target not in TARGETS:
        raise StudioError(f"unknown training data target '{target}'. Fix: use one of "
                          f"{', '.join(TARGETS)}.")
    label = str(path) if isinstance(path, (str, Path)) else "the dataset"
    ds = load_rows(path, limit=limit)
    if fmt in (None, "auto"):
        guess = detect_format(ds)
        if column_map:
            guess.column_map.update(column_map)
            guess.confidence = max(guess.confidence, 0.8)
        if guess.confidence < 0.5:
            notes = "; ".join(guess.notes)
            raise StudioError(
                f"{label}: can't tell the dataset format (columns: {', '.join(ds.column_names)}"
                f"{'; ' + notes if notes else ''}). Fix: pick the format and map the columns in "
                f"the Data tab, or pass fmt= one of {', '.join(FORMATS)} and column_map=.")
    elif fmt in FORMATS:
        # The format's known column names fill in what the map leaves out, as detection does.
        guess = FormatGuess(fmt, 1.0, resolve_columns(fmt, ds.column_names, column_map))
    else:
        raise StudioError(f"unknown dataset format '{fmt}'. Fix: use auto or one of "
                          f"{', '.join(FORMATS)}.")
    if isinstance(tokenizer, (str, Path)):
        from studio.data.inspection import load_tokenizer

        tokenizer = load_tokenizer(tokenizer)
    issues = validate_dataset(ds, guess, tokenizer=tokenizer, max_issues=200)
    bad_rows = sorted({i.row for i in issues})
    if issues and len(issues) < 200 and len(bad_rows) <= skip_invalid * len(ds):
        log(f"{label}: skipping {len(bad_rows)} of {len(ds)} rows that cannot be trained on:")
        for i in issues[:20]:
            log(f"  {i}")
        log("  (the Data tab's Clean step removes them for good)")
        keep = sorted(set(range(len(ds))) - set(bad_rows))
        ds = ds.select(keep)
        issues = []
    if issues:
        shown = "\n".join(f"  {i}" for i in issues[:5])
        more = f"\n  ... and {len(issues) - 5} more" if len(issues) > 5 else ""
        many = "at least " if len(issues) >= 200 else ""
        raise StudioError(
            f"{label}: {many}{len(issues)} problem(s) in the {guess.name} data:\n{shown}{more}\n"
            f"Fix: correct those rows, or drop them with `python -m studio data clean {label} "
            "--out DIR` and train on DIR/clean.jsonl.",
            problems=[str(i) for i in issues])
    from studio.data.tools import has_tool_calls

    tools = target == "messages" and has_tool_calls(ds, guess.name, guess.column_map)
    if tools and not tool_template:
        log(f"{label}: the rows call tools, but this model's chat template has no tool support: "
            "each call is trained as JSON text in the assistant's answer.")
    try:
        return to_trainer_format(ds, guess, target, conversational=conversational,
                                 tokenizer=tokenizer, tools=tools and tool_template)
    except StudioError as e:
        raise StudioError(f"{label}: {e}") from None
