"""Column-wise pre-check of Arrow batches: which rows certainly pass validation.

Owns `fast_valid_mask(table, fmt, cmap)`, used by clean.py and validate_dataset to skip the
Python validator for rows that are plainly fine (roles, order, blank content and extra keys
checked over whole columns). It is conservative: a row it is unsure about goes to the Python
validator in validate.py, which stays the only source of error codes and messages; a property
test (tests/test_data_fuzz.py) checks that every row passed here has no issue there.
"""

from __future__ import annotations

import numpy as np

from studio.data.formats import CHAT_FORMATS, FIELDS, MESSAGE_ROLES, SHAREGPT_ROLES
from studio.data.validate import MESSAGE_KEYS, NEXT_ROLES, SHAREGPT_KEYS

# Characters Python's str.strip() removes: a content made only of these is "empty".
_BLANK = "^[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
_ROLE_IDS = {"system": 0, "user": 1, "assistant": 2, "tool": 3}
_START = 4

def _ok_next() -> np.ndarray:
    """[previous role (or start), role] -> allowed, the same rule as _order_problem."""
    table = np.zeros((5, 4), dtype=bool)
    for prev, nexts in NEXT_ROLES.items():
        for nxt in nexts:
            table[_START if prev == "start" else _ROLE_IDS[prev], _ROLE_IDS[nxt]] = True
    return table


def _blank(arr) -> np.ndarray:
    import pyarrow.compute as pc

    return np.asarray(pc.match_substring_regex(pc.fill_null(arr, ""), _BLANK).to_numpy(
        zero_copy_only=False), dtype=bool) | np.asarray(arr.is_null().to_numpy(
            zero_copy_only=False), dtype=bool)


def fast_valid_mask(table, fmt: str, cmap: dict[str, str]) -> np.ndarray | None:
    """Rows of an Arrow batch that certainly pass validate_record, computed column-wise.

    Conservative: any row it is not sure about is False (the caller runs the Python validator
    on those, which stays the one source of error codes). None when no fast path applies.
    """
    if fmt in CHAT_FORMATS:
        return _fast_chat(table, fmt, cmap)
    if fmt in ("alpaca", "prompt_completion", "text"):
        return _fast_flat(table, fmt, cmap)
    return None


def _fast_chat(table, fmt, cmap):
    import pyarrow as pa
    import pyarrow.compute as pc

    name = cmap.get("conversations" if fmt == "sharegpt" else "messages")
    if not name or name not in table.column_names or cmap.get("system"):
        return None
    col = table.column(name).combine_chunks()
    if not pa.types.is_list(col.type) or not pa.types.is_struct(col.type.value_type):
        return None
    role_f, content_f = ("from", "value") if fmt == "sharegpt" else ("role", "content")
    fields = {f.name: f.type for f in col.type.value_type}
    if fields.get(role_f) != pa.string() or fields.get(content_f) != pa.string():
        return None
    allowed = (SHAREGPT_KEYS if fmt == "sharegpt" else MESSAGE_KEYS) - {"tool_calls",
                                                                        "function_call"}
    n = len(col)
    offsets = np.asarray(col.offsets, dtype=np.int64)
    offsets = offsets - offsets[0]
    flat = col.flatten()
    if len(flat) != offsets[-1]:
        return None
    bad_msg = np.zeros(len(flat), dtype=bool)
    for f in fields:  # any unexpected or tool key in use: let Python judge that row
        if f not in allowed and f not in (role_f, content_f):
            bad_msg |= np.asarray(flat.field(f).is_valid().to_numpy(zero_copy_only=False))
    table_ = SHAREGPT_ROLES if fmt == "sharegpt" else MESSAGE_ROLES
    keys = list(table_)
    idx = pc.index_in(pc.utf8_lower(flat.field(role_f)), value_set=pa.array(keys))
    idx = np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    lut = np.asarray([_ROLE_IDS[table_[k]] for k in keys] + [-1], dtype=np.int64)
    roles = lut[idx]  # -1 for unknown or missing roles
    bad_msg |= roles < 0
    bad_msg |= _blank(flat.field(content_f))
    lengths = np.diff(offsets)
    row_of = np.repeat(np.arange(n), lengths)
    first = np.zeros(len(flat), dtype=bool)
    first[offsets[:-1][lengths > 0]] = True
    prev = np.where(first, _START, np.concatenate(([_START], roles[:-1])))
    safe = roles >= 0
    bad_msg |= ~np.where(safe, _ok_next()[prev.clip(0, 4), roles.clip(0, 3)], False)
    ok = np.ones(n, dtype=bool)
    np.logical_and.at(ok, row_of[bad_msg], False)
    last = offsets[1:] - 1
    ok &= lengths > 0
    ok[lengths > 0] &= roles[last[lengths > 0]] == _ROLE_IDS["assistant"]
    ok &= np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return ok


def _fast_flat(table, fmt, cmap):
    import pyarrow as pa

    required = [c for c, (req, _) in FIELDS[fmt].items() if req]
    optional = [c for c in FIELDS[fmt] if c not in required]
    ok = np.ones(table.num_rows, dtype=bool)
    for canon in required + optional:
        col_name = cmap.get(canon)
        if col_name is None or col_name not in table.column_names:
            if canon in required:
                return None
            continue
        col = table.column(col_name).combine_chunks()
        if col.type not in (pa.string(), pa.large_string()):
            return None
        if canon in required:
            ok &= ~_blank(col)
    return ok
