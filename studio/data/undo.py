"""Undo and redo a cleaning step, and browse removed rows, from a clean run's output folder.

Owns `undo(out_dir, step)`, `redo(out_dir, step)` and `read_removed(out_dir, ...)`.
Undoing a step puts back every row whose reasons are all undone steps; redo takes them out again.
clean.jsonl is rebuilt by one streaming merge of clean.jsonl, removed.jsonl (and redacted.jsonl)
in row order, without the input file: row i of the input is in clean.jsonl exactly when it has
no reason left, so the merge knows where each line belongs. Written atomically; report.json
records the undone steps. Does not find duplicates or run filters (clean.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from studio.data.clean import REASONS
from studio.data.files import atomic_open, dumps_line, write_json
from studio.errors import StudioError

STEP_ALIASES = {"exact": "exact_duplicate", "near": "near_duplicate",
                "semantic": "semantic_duplicate", "dedup": None}


def _read_report(out: Path) -> dict:
    path = out / "report.json"
    if not path.exists():
        raise StudioError(f"{out}: no report.json here. Fix: give the folder a clean run wrote "
                          "(python -m studio data clean IN --out DIR).")
    return json.loads(path.read_text(encoding="utf-8"))


def _steps(step: str) -> set[str]:
    if step == "dedup":
        return {"exact_duplicate", "near_duplicate", "semantic_duplicate"}
    name = STEP_ALIASES.get(step, step)
    if name not in REASONS:
        raise StudioError(f"unknown cleaning step '{step}'. Fix: use one of {', '.join(REASONS)}.")
    return {name}


def undo(out_dir, step: str) -> dict:
    """Put back the rows removed by `step` (and nothing else still active); returns the report."""
    out = Path(out_dir)
    report = _read_report(out)
    return _apply(out, report, set(report.get("undone", [])) | _steps(step))


def redo(out_dir, step: str) -> dict:
    """Take `step`'s rows out again after an undo."""
    out = Path(out_dir)
    report = _read_report(out)
    return _apply(out, report, set(report.get("undone", [])) - _steps(step))


def _jsonl(path: Path):
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _active(reasons, undone: set[str]) -> bool:
    return bool(set(reasons) - undone)


def _apply(out: Path, report: dict, new_undone: set[str]) -> dict:
    old_undone = set(report.get("undone", []))
    if new_undone == old_undone:
        return report
    redact = report.get("pii", {}).get("mode") == "redact"
    removed = _jsonl(out / "removed.jsonl")
    redacted = _jsonl(out / "redacted.jsonl") if redact else iter(())
    nxt_rm, nxt_rx = next(removed, None), next(redacted, None)
    kept = 0
    with open(out / "clean.jsonl", encoding="utf-8") as old, \
            atomic_open(out / "clean.jsonl") as new:
        for row in range(report["rows"]):
            rx = None
            if nxt_rx is not None and nxt_rx["row"] == row:
                rx, nxt_rx = nxt_rx, next(redacted, None)
            if nxt_rm is not None and nxt_rm["row"] == row:
                rm, nxt_rm = nxt_rm, next(removed, None)
                line = None if _active(rm["reasons"], old_undone) else old.readline()
                if _active(rm["reasons"], new_undone):
                    continue
                record = rm["record"]
            else:
                line, record = old.readline(), None
                if not line:
                    raise StudioError(f"{out}/clean.jsonl is shorter than report.json says. Fix: "
                                      "run the clean step again.")
            if rx is not None:  # PII rows: redacted unless the pii step is undone
                line = dumps_line(rx["record"] if "pii" in new_undone else rx["redacted"]) + "\n"
            elif line is None:
                line = dumps_line(record) + "\n"
            new.write(line)
            kept += 1
    report["undone"] = sorted(new_undone)
    report["kept"], report["removed"] = kept, report["rows"] - kept
    for name, s in report["steps"].items():
        s["undone"] = name in new_undone
    write_json(out / "report.json", report)
    return report


def read_removed(out_dir, reason: str | None = None, limit: int = 200, offset: int = 0
                 ) -> list[dict]:
    """Removed rows (row, reasons, duplicate_of, record), optionally only those with `reason`."""
    out, rows, seen = Path(out_dir), [], 0
    want = _steps(reason) if reason else None
    for rec in _jsonl(out / "removed.jsonl"):
        if want and not (set(rec["reasons"]) & want):
            continue
        if seen >= offset:
            rows.append(rec)
            if len(rows) >= limit:
                break
        seen += 1
    return rows
