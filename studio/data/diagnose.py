"""Find the first bad row of a file that failed to load, and say how to fix it.

Owns the slow, precise scans load.py runs only after a fast load failed (or before pandas would
silently pad a ragged CSV): per-line UTF-8 and JSON checks for JSONL, json.load positions for a
JSON document, field counts for CSV/TSV, the Parquet footer. Every message names the file, the
row (0-based, like removed.jsonl) and its line, and the fix. Does not load datasets (load.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from studio.data.files import iter_jsonl_raw, sniff_text_file
from studio.errors import StudioError

_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")


def check_csv(p: Path, kind: str) -> None:
    """The first row whose field count differs from the header (pandas pads it silently)."""
    delim = "\t" if kind == "tsv" else ","
    try:
        with open(p, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter=delim)
            header = next(reader, None)
            if not header:
                raise StudioError(f"{p}: the first line (the header) is empty. Fix: put the column "
                                  "names on the first line.")
            for row, fields in enumerate(reader):
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise StudioError(
                        f"{p}: row {row} (line {reader.line_num}) has {len(fields)} fields but the "
                        f"header has {len(header)}. Fix: quote fields that contain the delimiter "
                        f"{delim!r} (\"like, this\"), or remove the stray or missing delimiters.")
    except UnicodeDecodeError as e:
        raise StudioError(f"{p}: the file is not valid UTF-8 (byte 0x{e.object[e.start]:02X} "
                          f"near byte offset {e.start} of a block). Fix: save it as UTF-8 (e.g. "
                          f"`iconv -f latin1 -t utf-8 {p.name} > fixed{p.suffix}`).") from None
    except csv.Error as e:
        raise StudioError(f"{p}: CSV error ({e}). Fix: check the quoting near that line.") from None


def diagnose(p: Path, kind: str) -> None:
    """Scan a file that failed to load and raise a StudioError naming the first bad row."""
    if kind in ("csv", "tsv"):
        check_csv(p, kind)
        return
    if kind == "parquet":
        try:
            import pyarrow.parquet as pq

            pq.ParquetFile(p)
        except Exception as e:
            raise StudioError(f"{p}: the Parquet file is damaged ({short_error(e)}). Fix: export it "
                              "again.") from None
        return
    if kind == "text":
        _first_bad_utf8_line(p)
        return
    if kind != "json" or p.suffix.lower() in _COMPRESSED:
        return
    sniff = sniff_text_file(p, scan_lines=False)
    if sniff.first_char == "[" or p.suffix.lower() == ".json" and sniff.first_char == "{" \
            and _is_single_document(p):
        _diagnose_json_document(p)
        return
    types: dict[str, tuple[str, int]] = {}
    for row, lineno, raw in iter_jsonl_raw(p):
        where = f"{p}: row {row} (line {lineno})"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise StudioError(f"{where} is not valid UTF-8 (byte 0x{raw[e.start]:02X} at column "
                              f"{e.start + 1}). Fix: save the file as UTF-8 (e.g. `iconv -f "
                              f"latin1 -t utf-8 {p.name} > fixed{p.suffix}`).") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise StudioError(f"{where} is not valid JSON ({e.msg} at column {e.colno}). Fix: each "
                              "line must be one complete JSON object; the line may be truncated: "
                              "repair or delete it.") from None
        if not isinstance(obj, dict):
            raise StudioError(f"{where} is a JSON {_json_type(obj)}, not an object. Fix: each line "
                              "must be one JSON object such as {\"messages\": [...]}.")
        for key, value in obj.items():
            t = _json_type(value)
            if t == "null":
                continue
            seen = types.setdefault(key, (t, row))
            if seen[0] != t and {seen[0], t} != {"integer", "number"}:
                raise StudioError(
                    f"{where}: column '{key}' is a {t} here but a {seen[0]} in row {seen[1]}. "
                    "Fix: use one schema for every row (the file mixes formats).")


def _is_single_document(p: Path) -> bool:
    with open(p, "rb") as f:
        lines = [ln for ln in (f.readline() for _ in range(3)) if ln.strip()]
    return len(lines) < 2 or not lines[0].rstrip().endswith(b"}")


def _diagnose_json_document(p: Path) -> None:
    try:
        with open(p, encoding="utf-8") as f:
            obj = json.load(f)
    except UnicodeDecodeError as e:
        raise StudioError(f"{p}: the file is not valid UTF-8 (byte 0x{e.object[e.start]:02X})."
                          f" Fix: save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 {p.name} > "
                          "fixed.json`).") from None
    except json.JSONDecodeError as e:
        raise StudioError(f"{p}: invalid JSON at line {e.lineno}, column {e.colno} ({e.msg}); the "
                          "file may be truncated. Fix: repair the file, or save the rows as JSONL "
                          "(one object per line) so one bad row is easy to find.") from None
    if isinstance(obj, list):
        for row, item in enumerate(obj):
            if not isinstance(item, dict):
                raise StudioError(f"{p}: row {row} is a JSON {_json_type(item)}, not an object. "
                                  "Fix: every item of the array must be an object like "
                                  "{\"messages\": [...]}.")


def _first_bad_utf8_line(p: Path) -> None:
    with open(p, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise StudioError(f"{p}: line {lineno} is not valid UTF-8 (byte "
                                  f"0x{line[e.start]:02X}). Fix: save the file as UTF-8 (e.g. "
                                  f"`iconv -f latin1 -t utf-8 {p.name} > fixed{p.suffix}`)."
                                  ) from None


def _json_type(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def short_error(e: BaseException) -> str:
    cause = e.__cause__ or e.__context__
    text = str(e) if str(e) and "error occurred while generating" not in str(e) else str(cause or e)
    text = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return text[:300]
