"""A cleaning run: find every reason to drop each row, then write the kept and removed rows.

Owns CleanOptions, the reason vocabulary and `clean(path, out_dir, options)`, which writes
  OUT/clean.jsonl    kept rows, in input order, as they were (or PII-redacted)
  OUT/removed.jsonl  {"row": <0-based index in IN>, "reasons": [...], "record": {...}} per line
                     (+ "duplicate_of": row for duplicates)
  OUT/redacted.jsonl with --pii redact: original and redacted record of each row changed
  OUT/report.json    options, per-step counts, stats, timings
all atomically (temp file, then rename). The input is never modified.
Every step runs on every row, so a removed row keeps all its reasons and any step can be undone
(undo.py). Duplicates are chosen after the filters: in a group of copies the kept one is the first
row that passes every filter, so a filter never makes us lose the clean copy of a row.
Memory: one Arrow batch of rows in Python at a time; per row only a few numbers plus a 512-byte
MinHash signature (128 x uint32). Does not load files (load.py) or hash (dedup.py).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from studio.errors import StudioError

REASONS = ("exact_duplicate", "near_duplicate", "semantic_duplicate", "empty", "too_short",
           "too_long", "keyword", "refusal", "language", "pii", "invalid_format")
BIT = {r: np.uint16(1 << i) for i, r in enumerate(REASONS)}
DEDUP_METHODS = {"exact": "exact_duplicate", "near": "near_duplicate",
                 "semantic": "semantic_duplicate"}
OUTPUT_FILES = ("clean.jsonl", "removed.jsonl", "redacted.jsonl", "report.json")
_FILTER_BITS = sum(int(BIT[r]) for r in REASONS if not r.endswith("_duplicate"))


@dataclass
class CleanOptions:
    dedup: tuple[str, ...] = ("exact", "near")
    near_threshold: float = 0.8        # Jaccard of word sets; 5%-edited copies score ~0.9
    num_perm: int = 128
    semantic_threshold: float = 0.9    # cosine of all-MiniLM-L6-v2 embeddings
    pii: str = "keep"                  # remove | redact | keep (found rows are counted anyway)
    languages: tuple[str, ...] = ()    # ISO codes to keep; empty = no language filter
    min_tokens: int | None = 2
    max_tokens: int | None = None
    tokenizer: str | None = None       # folder of a tokenizer; None = estimate 4 bytes/token
    blocklist: tuple[str, ...] = ()
    refusals: bool = True
    fmt: str = "auto"
    column_map: dict | None = None
    batch_size: int = 10_000           # rows per Arrow batch held in Python at once

    def problems(self) -> list[str]:
        out = []
        if bad := [d for d in self.dedup if d not in DEDUP_METHODS]:
            out.append(f"unknown dedup method(s) {', '.join(bad)}: use exact, near, semantic")
        if not 0 < self.near_threshold <= 1:
            out.append("near_threshold must be in (0, 1]")
        if not 0 < self.semantic_threshold <= 1:
            out.append("semantic_threshold must be in (0, 1]")
        if self.pii not in ("remove", "redact", "keep"):
            out.append(f"pii must be remove, redact or keep, not {self.pii!r}")
        if self.min_tokens is not None and self.max_tokens is not None \
                and self.min_tokens > self.max_tokens:
            out.append(f"min_tokens {self.min_tokens} is above max_tokens {self.max_tokens}")
        if self.batch_size < 1:
            out.append("batch_size must be positive")
        return out


@dataclass
class Analysis:
    n: int
    reasons: np.ndarray                 # uint16 bit set per row
    dup_of: np.ndarray                  # int64, -1 unless a duplicate
    pii_rows: np.ndarray                # bool
    tokens: np.ndarray                  # int64
    fmt: dict
    languages: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)      # wall seconds per stage
    cpu: dict = field(default_factory=dict)          # CPU seconds per stage (all threads)


class Stopwatch:
    """Wall and CPU seconds per named stage (CPU shows the work even when others share cores)."""

    def __init__(self):
        self.wall: Counter = Counter()
        self.cpu: Counter = Counter()
        self.mark()

    def mark(self) -> None:
        self._w, self._c = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        w, c = time.perf_counter(), time.process_time()
        self.wall[name] = round(self.wall[name] + w - self._w, 3)
        self.cpu[name] = round(self.cpu[name] + c - self._c, 3)
        self._w, self._c = w, c


def _flag(mask: np.ndarray, reason: str) -> np.ndarray:
    return np.where(mask, BIT[reason], 0).astype(np.uint16)


def reasons_of(bits: int) -> list[str]:
    return [r for r in REASONS if bits & int(BIT[r])]


def _validation_bits(table, fmt: str, cmap: dict) -> np.ndarray:
    """invalid_format / empty bits per row: column-wise pre-check, Python only for the rest."""
    from studio.data.precheck import fast_valid_mask
    from studio.data.validate import EMPTY_CODES, validate_record

    out = np.zeros(table.num_rows, dtype=np.uint16)
    fast = fast_valid_mask(table, fmt, cmap)
    todo = np.arange(table.num_rows) if fast is None else np.flatnonzero(~fast)
    if len(todo) == 0:
        return out
    rows = table.take(todo).to_pylist() if fast is not None else table.to_pylist()
    for i, row in zip(todo, rows):
        for code, _ in validate_record(row, fmt, cmap):
            out[i] |= BIT["empty"] if code in EMPTY_CODES else BIT["invalid_format"]
    return out


def analyze(ds, opts: CleanOptions, progress=None) -> Analysis:
    """One pass over the dataset in Arrow batches, then dedup over the collected hashes."""
    from studio.data import dedup, filters, pii
    from studio.data.formats import FormatGuess, detect_format, resolve_columns
    from studio.data.textview import batch_texts, exact_checker

    sw = Stopwatch()
    if opts.fmt in (None, "auto"):
        guess = detect_format(ds)
        guess.column_map.update(opts.column_map or {})
    else:
        guess = FormatGuess(opts.fmt, 1.0, resolve_columns(opts.fmt, ds.column_names,
                                                           opts.column_map))
    fmt, cmap = guess.name, guess.column_map
    tokenizer = None
    if opts.tokenizer:
        from studio.data.inspection import load_tokenizer

        tokenizer = load_tokenizer(opts.tokenizer)
    counter = filters.TokenCounter(tokenizer)
    n = len(ds)
    reasons = np.zeros(n, dtype=np.uint16)
    tokens = np.zeros(n, dtype=np.int64)
    pii_rows = np.zeros(n, dtype=bool)
    eligible = np.zeros(n, dtype=bool)  # has text to compare for dedup
    keys = np.zeros(n, dtype=np.uint64)
    use_near, use_sem = "near" in opts.dedup, "semantic" in opts.dedup
    hasher = dedup.MinHasher(opts.num_perm) if use_near else None
    sigs = np.empty((n, opts.num_perm), dtype=np.uint32) if use_near else None
    emb = None
    langs: Counter = Counter()
    keep_langs = {code.strip().lower() for code in opts.languages if code.strip()}
    sw.lap("setup")
    start = 0
    for table in ds.with_format("arrow").iter(batch_size=opts.batch_size):
        sw.mark()
        sl = slice(start, start + table.num_rows)
        reasons[sl] |= _validation_bits(table, fmt, cmap)
        sw.lap("validate")
        sw.mark()
        texts = batch_texts(table, fmt, cmap)
        reasons[sl] |= _flag(filters.empty_mask(texts.full), "empty")
        tokens[sl] = counter.count(texts.full, texts.turns)
        if opts.min_tokens is not None:
            reasons[sl] |= _flag(tokens[sl] < opts.min_tokens, "too_short")
        if opts.max_tokens is not None:
            reasons[sl] |= _flag(tokens[sl] > opts.max_tokens, "too_long")
        if opts.blocklist:
            reasons[sl] |= _flag(filters.keyword_mask(texts.full, opts.blocklist), "keyword")
        if opts.refusals:
            reasons[sl] |= _flag(filters.refusal_mask(texts.answer), "refusal")
        pii_rows[sl] = pii.mask(texts.full)
        if opts.pii == "remove":
            reasons[sl] |= _flag(pii_rows[sl], "pii")
        sw.lap("filters")
        if keep_langs:
            sw.mark()
            found = filters.detect_languages(texts.full)
            langs.update(found)
            off = np.array([bool(code) and code not in keep_langs for code in found])
            reasons[sl] |= _flag(off, "language")
            sw.lap("language")
        if opts.dedup:
            sw.mark()
            norm = dedup.normalize(texts.full)
            keys[sl] = dedup.exact_keys(norm)
            eligible[sl] = np.asarray(norm.to_numpy(zero_copy_only=False) != "", dtype=bool)
            sw.lap("exact_hash")
            if use_near:
                sw.mark()
                sigs[sl] = hasher.signatures(dedup.word_lists(norm))
                sw.lap("minhash")
            if use_sem:
                sw.mark()
                part = dedup.embed(texts.full.to_pylist())
                emb = part if emb is None else np.concatenate([emb, part])
                sw.lap("embed")
        start += table.num_rows
        if progress:
            progress(start / max(n, 1) * 0.8, f"checked {start:,} of {n:,} rows")
    sw.mark()
    dup_of = np.full(n, -1, dtype=np.int64)
    # Rows passing every filter come first, so each group keeps a clean copy when it has one.
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), (reasons & _FILTER_BITS) > 0))] = np.arange(n)
    if "exact" in opts.dedup:
        d = dedup.exact_duplicates(keys, rank, eligible)
        dup_of = np.where(d >= 0, d, dup_of)
        reasons |= _flag(d >= 0, "exact_duplicate")
    if use_near:
        d, _ = dedup.near_duplicates(sigs, rank, eligible & (dup_of < 0), opts.near_threshold,
                                     exact=exact_checker(ds, fmt, cmap))
        dup_of = np.where(d >= 0, d, dup_of)
        reasons |= _flag(d >= 0, "near_duplicate")
    if use_sem and emb is not None:
        cand = np.flatnonzero(eligible & (dup_of < 0))
        d = dedup.semantic_duplicates(emb, cand[np.argsort(rank[cand])], opts.semantic_threshold)
        dup_of = np.where(d >= 0, d, dup_of)
        reasons |= _flag(d >= 0, "semantic_duplicate")
    sw.lap("dedup")
    fmt_info = {"name": fmt, "confidence": guess.confidence, "column_map": cmap,
                "notes": guess.notes}
    return Analysis(n, reasons, dup_of, pii_rows, tokens, fmt_info,
                    dict(langs.most_common(20)), sw.wall, sw.cpu)


def iter_records(ds, source: Path | None):
    """(row, JSON text of the record) in input order: raw lines for JSONL (exact bytes, fast),
    otherwise the Arrow rows re-serialised without the nulls Arrow adds for missing keys."""
    from studio.data.files import dumps_line, iter_jsonl_raw

    if source is not None:
        for row, _, raw in iter_jsonl_raw(source):
            yield row, raw.decode("utf-8")
        return
    row = 0
    for table in ds.with_format("arrow").iter(batch_size=1000):
        for rec in table.to_pylist():
            yield row, dumps_line(_drop_nulls(rec))
            row += 1


def _drop_nulls(obj):
    if isinstance(obj, dict):
        return {k: _drop_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_nulls(v) for v in obj]
    return obj


def raw_source(path_or_ds, n: int) -> Path | None:
    """The input JSONL file when its non-blank lines are exactly the dataset's rows."""
    if not isinstance(path_or_ds, (str, Path)):
        return None
    p = Path(path_or_ds)
    if not p.is_file() or p.suffix.lower() not in (".jsonl", ".ndjson"):
        return None
    with open(p, "rb") as f:
        if f.read(64).lstrip()[:1] == b"[":
            return None
        f.seek(0)
        count = sum(1 for line in f if line.strip())
    return p if count == n else None


def clean(path_or_ds, out_dir, options: CleanOptions | None = None, progress=None) -> dict:
    """Run every enabled step, write OUT/clean.jsonl, removed.jsonl, report.json; return report."""
    import json

    from studio.data import pii
    from studio.data.files import atomic_open, dumps_line, write_json
    from studio.data.load import load_rows

    opts = options or CleanOptions()
    if problems := opts.problems():
        raise StudioError("clean options: " + "; ".join(problems) + ".", problems)
    t0 = time.perf_counter()
    out = Path(out_dir)
    if isinstance(path_or_ds, (str, Path)):
        src = Path(path_or_ds).resolve()
        if src == out.resolve() or (src.parent == out.resolve() and src.name in OUTPUT_FILES):
            raise StudioError(f"{out}: writing there would overwrite the input {src.name}. "
                              "Fix: pick another output folder.")
    sw = Stopwatch()
    ds = load_rows(path_or_ds)
    sw.lap("load")
    a = analyze(ds, opts, progress)
    sw.mark()
    source = raw_source(path_or_ds, a.n)
    redact = opts.pii == "redact"
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "clean.jsonl") as fc, atomic_open(out / "removed.jsonl") as fr, \
            atomic_open(out / "redacted.jsonl") as fx:
        for row, text in iter_records(ds, source):
            bits = int(a.reasons[row])
            if redact and a.pii_rows[row]:
                record = json.loads(text)
                red = pii.redact_record(record)
                fx.write(dumps_line({"row": row, "record": record, "redacted": red}) + "\n")
                if not bits:
                    text = dumps_line(red)
            if bits:
                extra = f', "duplicate_of": {int(a.dup_of[row])}' if a.dup_of[row] >= 0 else ""
                fr.write(f'{{"row": {row}, "reasons": {json.dumps(reasons_of(bits))}, '
                         f'"record": {text}{extra}}}\n')
            else:
                fc.write(text + "\n")
    if not redact:
        (out / "redacted.jsonl").unlink(missing_ok=True)
    sw.lap("write")
    a.timings.update(sw.wall)
    a.cpu.update(sw.cpu)
    report = build_report(path_or_ds, opts, a, time.perf_counter() - t0)
    write_json(out / "report.json", report)
    if progress:
        progress(1.0, "done")
    return report


def _step_counts(reasons: np.ndarray) -> dict[str, dict]:
    out = {}
    for r in REASONS:
        has = (reasons & BIT[r]) > 0
        out[r] = {"removed": int(has.sum()), "only": int((reasons[has] == BIT[r]).sum())}
    return out


def build_report(path_or_ds, opts: CleanOptions, a: Analysis, seconds: float) -> dict:
    kept = int((a.reasons == 0).sum())
    enabled = {f"{DEDUP_METHODS[d]}" for d in opts.dedup} | {"empty", "invalid_format"}
    enabled |= {"too_short"} if opts.min_tokens is not None else set()
    enabled |= {"too_long"} if opts.max_tokens is not None else set()
    enabled |= {"keyword"} if opts.blocklist else set()
    enabled |= {"refusal"} if opts.refusals else set()
    enabled |= {"language"} if opts.languages else set()
    enabled |= {"pii"} if opts.pii == "remove" else set()
    steps = _step_counts(a.reasons)
    for r, s in steps.items():
        s["enabled"] = r in enabled
        s["undone"] = False
    source = {"path": str(path_or_ds)} if isinstance(path_or_ds, (str, Path)) else {}
    if source and Path(path_or_ds).is_file():
        st = Path(path_or_ds).stat()
        source.update(size=st.st_size, mtime=st.st_mtime)
    tok = a.tokens
    return {
        "input": source, "rows": a.n, "kept": kept, "removed": a.n - kept,
        "format": a.fmt, "options": asdict(opts), "steps": steps, "undone": [],
        "pii": {"mode": opts.pii, "rows_found": int(a.pii_rows.sum()),
                "redacted": int(a.pii_rows.sum()) if opts.pii == "redact" else 0},
        "tokens": {"counted_with": opts.tokenizer or f"estimate ({4} bytes per token)",
                   "min": int(tok.min()) if a.n else 0, "max": int(tok.max()) if a.n else 0,
                   "mean": round(float(tok.mean()), 1) if a.n else 0.0,
                   "p95": int(np.percentile(tok, 95)) if a.n else 0},
        "languages": a.languages,
        "seconds": round(seconds, 3), "timings_s": dict(a.timings), "cpu_s": dict(a.cpu),
        "files": {"clean": "clean.jsonl", "removed": "removed.jsonl",
                  **({"redacted": "redacted.jsonl"} if opts.pii == "redact" else {})},
    }
