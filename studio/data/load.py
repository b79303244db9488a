"""Load any supported dataset into an Arrow-backed `datasets.Dataset`, or fail with a clear message.

Owns: `load_rows(path_or_id, limit=None)` for .jsonl/.json/.csv/.tsv/.parquet/.txt files (also
gzip-compressed), folders saved by `datasets` (`save_to_disk`) or holding data files, and hub
dataset ids (only where there is internet). Big files go through the `datasets` builders, so rows
live in memory-mapped Arrow files in a cache folder, never as a million Python dicts.
Bad input (empty, binary, UTF-16, truncated JSON, wrong encoding, huge lines, fake parquet, ragged
CSV) becomes a StudioError naming the file, the row and the fix.
Does not detect or convert formats (formats.py) nor validate row contents (validate.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

from studio.data.diagnose import check_csv, diagnose, short_error
from studio.data.files import MAX_ROW_BYTES, iter_jsonl_raw, sniff_text_file
from studio.errors import StudioError

SUFFIX_KIND = {".jsonl": "json", ".ndjson": "json", ".json": "json", ".csv": "csv", ".tsv": "tsv",
               ".parquet": "parquet", ".txt": "text", ".md": "text", ".arrow": "arrow"}
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
IN_MEMORY_MAX = 128 << 20  # JSONL up to 128 MiB is read into memory; bigger: memory-mapped cache
SUPPORTED = "a .jsonl, .json, .csv, .tsv, .parquet or .txt file, or a folder saved by datasets"


def cache_dir() -> Path:
    """Where `datasets` keeps its Arrow cache (STUDIO_DATA_CACHE overrides; default: temp dir)."""
    return Path(os.environ.get("STUDIO_DATA_CACHE",
                               Path(tempfile.gettempdir()) / "studio-cache" / "datasets"))


def file_kind(path: str | Path) -> str:
    """json | csv | tsv | parquet | text | arrow, from the suffix (compression suffix ignored)."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    kind = SUFFIX_KIND.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise StudioError(f"{p}: unsupported file type '{p.suffix or '(none)'}'. "
                          f"Fix: give {SUPPORTED}.")
    return kind


@contextlib.contextmanager
def _quiet_datasets():
    """Silence datasets' own error logs and progress bars: we turn failures into our own message."""
    import datasets

    logger = logging.getLogger("datasets")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    datasets.disable_progress_bars()
    try:
        yield datasets
    finally:
        logger.setLevel(old)


def load_rows(path_or_id, limit: int | None = None, *, split: str | None = None):
    """Return a datasets.Dataset for a file, saved folder, hub id or an existing Dataset.

    `limit` keeps the first N rows; for big JSONL/text files only those lines are read.
    Raises StudioError with the file, the row and the fix on bad input.
    """
    import datasets

    if isinstance(path_or_id, datasets.DatasetDict):
        path_or_id = _pick_split(path_or_id, split, "the dataset")
    if isinstance(path_or_id, datasets.Dataset):
        return _head(path_or_id, limit)
    p = Path(str(path_or_id)).expanduser()
    if not p.exists():
        if _HUB_ID.match(str(path_or_id)) and not p.suffix:
            return _head(_load_hub(str(path_or_id), split), limit)
        raise StudioError(f"{p}: no such file or folder. Fix: check the path, or give {SUPPORTED}.")
    if p.is_dir():
        ds = _load_folder(p, split)
    else:
        ds = _load_file(p, limit)
    if len(ds) == 0:
        raise StudioError(f"{p}: the dataset has no rows. Fix: pick the right file or add rows.")
    return _head(ds, limit)


def _head(ds, limit):
    if limit is not None and len(ds) > limit:
        return ds.select(range(max(0, int(limit))))
    return ds


def _pick_split(dd, split, where):
    if split and split in dd:
        return dd[split]
    if split:
        raise StudioError(f"{where} has no split '{split}' (it has {', '.join(dd)}). "
                          "Fix: pick one of those splits.")
    return dd["train"] if "train" in dd else dd[next(iter(dd))]


def _load_hub(repo_id: str, split: str | None):
    with _quiet_datasets() as datasets:
        try:
            return datasets.load_dataset(repo_id, split=split or "train",
                                         cache_dir=str(cache_dir()))
        except Exception as e:  # offline, missing, gated: all become one clear message
            raise StudioError(
                f"{repo_id}: could not load this dataset from the Hugging Face Hub ({short_error(e)}). "
                "Fix: without internet, download it elsewhere and give the path of a "
                ".jsonl/.parquet file or of the folder saved with save_to_disk.") from None


def _load_folder(p: Path, split: str | None):
    if (p / "dataset_info.json").exists() or (p / "state.json").exists() \
            or (p / "dataset_dict.json").exists():
        with _quiet_datasets() as datasets:
            try:
                obj = datasets.load_from_disk(str(p))
            except Exception as e:
                raise StudioError(f"{p}: this saved dataset folder can't be read ({short_error(e)}). "
                                  "Fix: save it again with Dataset.save_to_disk.") from None
        return _pick_split(obj, split, str(p)) if isinstance(obj, datasets.DatasetDict) else obj
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    by_kind: dict[str, list[Path]] = {}
    for f in files:
        with contextlib.suppress(StudioError):
            by_kind.setdefault(file_kind(f), []).append(f)
    if not by_kind:
        raise StudioError(f"{p}: this folder holds no dataset files. Fix: give {SUPPORTED}.")
    kind, group = max(by_kind.items(), key=lambda kv: len(kv[1]))
    for f in group:  # same checks per shard, so a bad shard is named
        _preflight(f, kind)
    return _build(group, kind, label=str(p))


def _load_file(p: Path, limit: int | None):
    kind = file_kind(p)
    sniff = _preflight(p, kind)
    jsonl = kind == "json" and sniff.first_char == "{" and p.suffix.lower() not in _COMPRESSED
    if jsonl and limit is not None and p.stat().st_size > (32 << 20):
        p = _write_head(p, limit)  # read only the first lines of a big JSONL for a preview
    ds = _in_memory_jsonl(p, sniff) if jsonl and p.stat().st_size <= IN_MEMORY_MAX else None
    ds = ds if ds is not None else _build([p], kind, label=str(p))
    if p.suffix.lower() == ".json" and len(ds) == 1 and len(ds.column_names) == 1:
        # {"data": [{...}, ...]}: one object wrapping the rows; load the list as the rows
        # (but not {"messages": [turns]}, which is a one-row chat dataset).
        from studio.data.formats import chat_style

        col = ds.column_names[0]
        value = ds[0][col]
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) \
                and chat_style([value]) is None:
            ds = _build([p], kind, label=str(p), field=col)
    return ds


def _in_memory_jsonl(p: Path, sniff):
    """Small JSONL straight into an in-memory Arrow table (pyarrow's multi-threaded reader):
    ~4x faster than the datasets builder, which also writes a cache copy. None -> use the
    builder (it also handles mixed types and gives the diagnosis on errors)."""
    import pyarrow.json as pj

    try:
        block = max(1 << 20, min(2 * sniff.max_line + 1, MAX_ROW_BYTES * 2))
        table = pj.read_json(p, read_options=pj.ReadOptions(block_size=block))
        table.validate(full=True)  # invalid UTF-8 passes the reader; catch it here
    except Exception:
        return None
    import datasets

    st = p.stat()  # our own fingerprint: datasets would hash the whole table (~0.3 s / 100k rows)
    key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()
    return datasets.Dataset(table, fingerprint=hashlib.sha1(key).hexdigest()[:16])


def _write_head(p: Path, limit: int) -> Path:
    st = p.stat()
    key = hashlib.sha1(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}|{limit}".encode()).hexdigest()
    out = cache_dir() / "heads" / f"{p.stem}-{key[:16]}.jsonl"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for row, _, raw in iter_jsonl_raw(p):
                if row >= limit:
                    break
                f.write(raw + b"\n")
        os.replace(tmp, out)
    return out


def _build(files: list[Path], kind: str, label: str, field: str | None = None):
    builder = {"tsv": "csv", "arrow": "arrow"}.get(kind, kind)
    kwargs = {"sep": "\t"} if kind == "tsv" else {}
    if kind in ("csv", "tsv"):
        kwargs["keep_default_na"] = False  # an empty cell stays "", not NaN
    if field:
        kwargs["field"] = field
    with _quiet_datasets() as datasets:
        try:
            ds = datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train",
                                       cache_dir=str(cache_dir()), **kwargs)
            # pyarrow's JSON reader lets invalid UTF-8 through; it would fail later, on access.
            ds.data.table.validate(full=True)
            return ds
        except StudioError:
            raise
        except Exception as e:
            for f in files:
                diagnose(f, kind)  # raises with the row when it can find it
            raise StudioError(f"{label}: could not read this {kind} data ({short_error(e)}). "
                              f"Fix: check that it is {SUPPORTED}.") from None


def _preflight(p: Path, kind: str):
    """Checks that need no parsing: empty, binary, UTF-16, fake parquet, huge lines, ragged CSV."""
    size = p.stat().st_size
    if size == 0:
        raise StudioError(f"{p}: the file is empty (0 bytes). Fix: pick the right file, or add "
                          "rows (one JSON object per line for .jsonl).")
    if p.suffix.lower() in _COMPRESSED:
        return _NoSniff()  # the builder decompresses; errors are diagnosed after
    if kind == "parquet":
        with open(p, "rb") as f:
            head = f.read(4)
            f.seek(max(0, size - 4))
            tail = f.read(4)
        if head != b"PAR1" or tail != b"PAR1":
            raise StudioError(f"{p}: this is not a Parquet file (it does not start and end "
                              "with the PAR1 marker). Fix: export it again with pandas "
                              "`to_parquet` or pyarrow, or give the file the extension that "
                              "matches its content.")
        return _NoSniff()
    if kind == "arrow":
        return _NoSniff()
    sniff = sniff_text_file(p)
    if sniff.utf16:
        raise StudioError(f"{p}: the file is UTF-16 encoded. Fix: save it as UTF-8 "
                          f"(e.g. `iconv -f utf-16 -t utf-8 {p.name} > fixed{p.suffix}`).")
    if sniff.binary:
        raise StudioError(f"{p}: this looks like a binary file, not {kind} text (it contains "
                          f"NUL bytes). Fix: give {SUPPORTED}; a Parquet file needs the .parquet "
                          "extension.")
    if kind == "json" and sniff.first_char not in ("[", "{"):
        diagnose(p, kind)
    if kind == "json" and sniff.first_char != "[" and sniff.max_line > MAX_ROW_BYTES:
        raise StudioError(
            f"{p}: line {sniff.max_line_number} is {sniff.max_line / 2**20:.1f} MiB; a row over "
            f"{MAX_ROW_BYTES >> 20} MiB is not a training example. Fix: split it into rows (one "
            "JSON object per line); if the file is one big JSON array, give it the .json "
            "extension.")
    if kind in ("csv", "tsv"):
        check_csv(p, kind)
    return sniff


class _NoSniff:
    first_char = ""
    max_line = 0
