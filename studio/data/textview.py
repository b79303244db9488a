"""The text of each row, as Arrow string arrays, for dedup, filters and stats.

Owns: `batch_texts(table, fmt, cmap)` -> RowTexts(full, answer, turns) for one Arrow batch:
`full` is every content of the row joined by newlines (what dedup, keyword and PII look at),
`answer` is only what the model is trained to say (assistant turns, output, completion, chosen:
what the refusal filter looks at), `turns` the number of messages. Chat columns stored as
list<struct<role, content>> are handled column-wise in Arrow; anything else (mixed schemas,
content given as lists of parts) falls back to Python per row, batch by batch.
Does not judge rows (filters.py, validate.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.data.formats import CHAT_FORMATS, SHAREGPT_ROLES, content_text, row_messages

_ASSISTANT_NAMES = sorted(k for k, v in SHAREGPT_ROLES.items() if v == "assistant")


@dataclass
class RowTexts:
    full: object      # pyarrow StringArray, one per row
    answer: object    # pyarrow StringArray
    turns: np.ndarray  # int64 messages per row (1 for plain-text rows)


def batch_texts(table, fmt: str, cmap: dict[str, str]) -> RowTexts:
    """Texts of one pyarrow Table batch."""
    if fmt in CHAT_FORMATS:
        fast = _chat_arrow(table, fmt, cmap)
        if fast is not None:
            return fast
    elif fmt in ("alpaca", "prompt_completion", "preference", "text"):
        fast = _flat_arrow(table, fmt, cmap)
        if fast is not None:
            return fast
    return _python(table, fmt, cmap)


def _col(table, name):
    if name is None or name not in table.column_names:
        return None
    col = table.column(name)
    return col.combine_chunks() if hasattr(col, "combine_chunks") else col


def _chat_arrow(table, fmt, cmap):
    import pyarrow as pa
    import pyarrow.compute as pc

    col = _col(table, cmap.get("conversations" if fmt == "sharegpt" else "messages"))
    if col is None or not pa.types.is_list(col.type) or not pa.types.is_struct(col.type.value_type):
        return None
    names = {f.name for f in col.type.value_type}
    role_f, content_f = ("from", "value") if fmt == "sharegpt" else ("role", "content")
    if role_f not in names or content_f not in names or cmap.get("system") or col.null_count:
        return None  # a null conversation or a separate system column: the Python path
    flat = col.flatten()
    contents, roles = flat.field(content_f), flat.field(role_f)
    text_types = (pa.string(), pa.large_string())
    if contents.type not in text_types or roles.type not in text_types:
        return None
    contents = pc.fill_null(contents.cast(pa.string()), "")
    roles = roles.cast(pa.string())
    offsets = np.asarray(col.offsets, dtype=np.int64)
    offsets = offsets - offsets[0]
    is_answer = pc.is_in(pc.utf8_lower(pc.fill_null(roles, "")), pa.array(_ASSISTANT_NAMES))
    answers = pc.if_else(is_answer, contents, "")
    off = pa.array(offsets.astype(np.int32))
    full = pc.binary_join(pa.ListArray.from_arrays(off, contents), "\n")
    answer = pc.binary_join(pa.ListArray.from_arrays(off, answers), "\n")
    return RowTexts(pc.fill_null(full, ""), pc.fill_null(answer, ""), np.diff(offsets))


def _flat_arrow(table, fmt, cmap):
    import pyarrow as pa
    import pyarrow.compute as pc

    fields = {"alpaca": (["system", "instruction", "input", "output"], ["output"]),
              "prompt_completion": (["prompt", "completion"], ["completion"]),
              "preference": (["prompt", "chosen", "rejected"], ["chosen"]),
              "text": (["text"], ["text"])}[fmt]
    cols = {}
    for canon in set(fields[0]):
        c = _col(table, cmap.get(canon))
        if c is None:
            continue
        if not pa.types.is_string(c.type) and not pa.types.is_large_string(c.type):
            return None
        cols[canon] = pc.fill_null(c.cast(pa.string()), "")  # pandas-built CSVs are large_string
    if not cols:
        return None
    n = table.num_rows

    def join(names):
        parts = [cols[c] for c in names if c in cols]
        if not parts:
            return pa.array([""] * n)
        if len(parts) == 1:
            return parts[0]
        joined = pc.binary_join_element_wise(*parts, "\n")
        return pc.utf8_trim(joined, "\n")

    turns = np.full(n, 1 if fmt == "text" else 2, dtype=np.int64)
    return RowTexts(join(fields[0]), join(fields[1]), turns)


def _python(table, fmt, cmap):
    import pyarrow as pa

    full, answer, turns = [], [], []
    for row in table.to_pylist():
        if fmt == "text":
            t = content_text(row.get(cmap.get("text"))) or ""
            full.append(t), answer.append(t), turns.append(1)
            continue
        try:
            msgs = row_messages(row, fmt, cmap)
        except Exception:  # an unreadable row has no text; validation reports why
            msgs = []
        texts = [m["content"] for m in msgs if isinstance(m.get("content"), str)]
        if fmt == "preference":  # row_messages covers prompt + chosen; rejected counts too
            rej = row.get(cmap.get("rejected", ""))
            texts.append(content_text(rej) if not isinstance(rej, list) else
                         "\n".join(content_text(m.get("content")) or "" for m in rej
                                   if isinstance(m, dict)))
        full.append("\n".join(t for t in texts if t))
        answer.append("\n".join(m["content"] for m in msgs if m.get("role") == "assistant"
                                and isinstance(m.get("content"), str)))
        turns.append(len(msgs))
    return RowTexts(pa.array(full, type=pa.string()), pa.array(answer, type=pa.string()),
                    np.asarray(turns, dtype=np.int64))


def exact_checker(ds, fmt: str, cmap: dict[str, str]):
    """pairs -> exact word-multiset Jaccard, reading only the rows involved (5,000 at a time)."""
    def check(pairs: np.ndarray) -> np.ndarray:
        from studio.data.dedup import multiset_jaccard, normalize, unique_ints, word_lists

        rows = unique_ints(pairs.ravel())
        words: dict[int, list[str]] = {}
        for s in range(0, len(rows), 5000):
            sub = rows[s:s + 5000]
            table = ds.select(sub).with_format("arrow")[:]
            lists = word_lists(normalize(batch_texts(table, fmt, cmap).full)).to_pylist()
            words.update(zip(sub.tolist(), lists))
        return np.fromiter((multiset_jaccard(words[a], words[b]) for a, b in pairs.tolist()),
                           dtype=np.float64, count=len(pairs))
    return check
