"""Per-row validation with row numbers, for every source format.

Owns: the error codes and their messages + fixes. They include every error OpenAI's fine-tuning
format checker reports (data_type, missing_messages_list, message_missing_key,
message_unrecognized_key, unrecognized_role, missing_content, example_missing_assistant_message)
and ours: roles_out_of_order, empty_content, chosen_equals_rejected, template_error,
missing_field, wrong_type, invalid_json. Rows are 0-based, like removed.jsonl.
Does not load files (load.py) nor change rows (formats.py, clean.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from studio.data.formats import (CHAT_FORMATS, FIELDS, MESSAGE_ROLES, SHAREGPT_ROLES, FormatGuess,
                                 chat_style, detect_format, preference_parts, resolve_columns,
                                 row_messages)

# Keys a message may carry besides role/content (OpenAI's list plus common tool/reasoning keys).
MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call",
                "reasoning_content", "thinking"}
SHAREGPT_KEYS = {"from", "value", "weight", "name", "tool_calls"}
# Which error codes make clean.py drop a row as "empty" (all others: "invalid_format").
EMPTY_CODES = {"empty_content"}

NEXT_ROLES = {"start": ("system", "user"), "system": ("user",), "user": ("assistant",),
               "assistant": ("user", "tool"), "tool": ("tool", "assistant")}

_FIXES = {
    "data_type": "each row must be a JSON object such as {\"messages\": [...]}",
    "missing_messages_list": "give the row a 'messages' list of {role, content} turns",
    "message_missing_key": "every message needs 'role' and 'content'",
    "message_unrecognized_key": "remove the extra keys or rename them",
    "unrecognized_role": "use one of the roles system, user, assistant, tool",
    "missing_content": "give the message a 'content' string",
    "example_missing_assistant_message": "add the assistant's answer",
    "roles_out_of_order": "start with an optional system message, then alternate user/assistant "
                          "turns, and end with the assistant",
    "empty_content": "fill in the text or drop the row",
    "chosen_equals_rejected": "the rejected answer must differ from the chosen one; fix or drop it",
    "template_error": "fix the row so the chat template accepts it, or pick another tokenizer",
    "missing_field": "add the field, map the right column, or keep one format per file",
    "wrong_type": "use a string",
    "invalid_json": "make the line one complete JSON object (it may be truncated)",
}


@dataclass
class RowIssue:
    row: int
    code: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}. Fix: {self.fix}."

    def to_dict(self) -> dict:
        return asdict(self)


def _issue(code: str, message: str) -> tuple[str, str]:
    return code, message


def _check_turns(turns, style: str, need_assistant: bool = True, need_order: bool = True):
    """Issues of a list of chat turns ({role, content} or {from, value})."""
    role_key, content_key = ("from", "value") if style == "sharegpt" else ("role", "content")
    allowed_keys = SHAREGPT_KEYS if style == "sharegpt" else MESSAGE_KEYS
    table = SHAREGPT_ROLES if style == "sharegpt" else MESSAGE_ROLES
    out, roles = [], []
    for i, m in enumerate(turns):
        if not isinstance(m, dict):
            out.append(_issue("data_type", f"message {i} is not an object"))
            continue
        present = {k for k, v in m.items() if v is not None}
        if role_key not in present:
            out.append(_issue("message_missing_key", f"message {i} has no '{role_key}'"))
        if extra := sorted(present - allowed_keys):
            out.append(_issue("message_unrecognized_key",
                              f"message {i} has unrecognised key(s) {', '.join(map(repr, extra))}"))
        role = m.get(role_key)
        if role is not None:
            norm = table.get(str(role).lower())
            if norm is None:
                out.append(_issue("unrecognized_role",
                                  f"message {i} has an unrecognised role {role!r}"))
            roles.append(norm or "?")
        content = m.get(content_key)
        has_calls = bool(m.get("tool_calls") or m.get("function_call"))
        if content_key not in m and not has_calls:
            out.append(_issue("message_missing_key", f"message {i} has no '{content_key}'"))
        elif content is None and not has_calls:
            out.append(_issue("missing_content", f"message {i} ({role}) has no content"))
        elif isinstance(content, str):
            if not content.strip() and not has_calls:
                out.append(_issue("empty_content", f"message {i} ({role}) is empty"))
        elif content is not None and not isinstance(content, list):
            out.append(_issue("wrong_type", f"message {i} content is a {type(content).__name__}"))
    if not turns:
        out.append(_issue("missing_messages_list", "the conversation has no messages"))
        return out
    if need_assistant and "assistant" not in roles:
        out.append(_issue("example_missing_assistant_message", "there is no assistant message"))
    elif need_order and "?" not in roles and (bad := _order_problem(roles)):
        out.append(_issue("roles_out_of_order", bad))
    return out


def _order_problem(roles: list[str]) -> str | None:
    """None if roles are [system?] user assistant (user assistant | tool+ assistant)*."""
    prev = "start"
    for i, r in enumerate(roles):
        if r not in NEXT_ROLES[prev]:
            where = "first" if prev == "start" else f"after '{prev}'"
            return f"roles out of order: message {i} is '{r}' {where}"
        prev = r
    if prev != "assistant":
        return f"roles out of order: the last message is '{prev}', not the assistant"
    return None


def _text_field(row: dict, col: str | None, name: str, required: bool = True):
    if col is None or row.get(col) is None:
        return [_issue("missing_field", f"no '{name}'")] if required else []
    v = row[col]
    if isinstance(v, list):
        return []  # conversational value: checked as turns by the caller
    if not isinstance(v, str):
        return [_issue("wrong_type", f"'{col}' is a {type(v).__name__}, not a string")]
    if required and not v.strip():
        return [_issue("empty_content", f"'{col}' is empty")]
    return []


def validate_record(row, fmt: str, cmap: dict[str, str], tokenizer=None) -> list[tuple[str, str]]:
    """All (code, message) problems of one row in source format `fmt`."""
    if not isinstance(row, dict):
        kind = "list" if isinstance(row, list) else type(row).__name__
        return [_issue("data_type", f"the row is a {kind}, not an object")]
    out: list[tuple[str, str]] = []
    if fmt in CHAT_FORMATS:
        col = cmap.get("conversations" if fmt == "sharegpt" else "messages")
        turns = row.get(col) if col else None
        if not isinstance(turns, list):
            what = "missing" if turns is None else f"a {type(turns).__name__}, not a list"
            out.append(_issue("missing_messages_list", f"'{col or 'messages'}' is {what}"))
        else:
            sys_col = cmap.get("system")
            has_sys = bool(sys_col and isinstance(row.get(sys_col), str) and row[sys_col].strip())
            first_is_sys = turns and isinstance(turns[0], dict) and \
                str(turns[0].get("from" if fmt == "sharegpt" else "role")).lower() == "system"
            if has_sys and not first_is_sys:
                turns = [{"from": "system", "value": row[sys_col]} if fmt == "sharegpt"
                         else {"role": "system", "content": row[sys_col]}] + turns
            out += _check_turns(turns, fmt)
    elif fmt == "alpaca":
        out += _text_field(row, cmap.get("instruction"), "instruction")
        out += _text_field(row, cmap.get("input"), "input", required=False)
        out += _text_field(row, cmap.get("output"), "output")
    elif fmt == "prompt_completion":
        for name, need in (("prompt", False), ("completion", True)):
            v = row.get(cmap[name]) if name in cmap else None
            if isinstance(v, list):
                out += _check_turns(v, "messages", need_assistant=need, need_order=False)
            else:
                out += _text_field(row, cmap.get(name), name)
    elif fmt == "preference":
        for name in ("chosen", "rejected"):
            v = row.get(cmap[name]) if name in cmap else None
            if isinstance(v, list):
                out += [(c, f"{name}: {m}") for c, m in
                        _check_turns(v, "messages", need_assistant=True, need_order=False)]
            else:
                out += _text_field(row, cmap.get(name), name)
        if not out:
            chosen, rejected = row.get(cmap["chosen"]), row.get(cmap["rejected"])
            if chosen == rejected:
                out.append(_issue("chosen_equals_rejected",
                                  "'chosen' and 'rejected' are identical"))
            else:
                try:
                    preference_parts(row, cmap)
                except ValueError as e:
                    out.append(_issue("missing_field", str(e)))
    elif fmt == "text":
        out += _text_field(row, cmap.get("text"), "text")
    if out and any(c in ("missing_field", "missing_messages_list") for c, _ in out):
        if hint := _other_format_hint(row, fmt):
            out = [(c, f"{m} ({hint})") for c, m in out]
    if not out and tokenizer is not None and fmt != "text":
        try:
            tokenizer.apply_chat_template(row_messages(row, fmt, cmap), tokenize=False)
        except Exception as e:  # jinja raise_exception and friends: show the template's own words
            out.append(_issue("template_error", f"the chat template failed: {e}"))
    return out


def _other_format_hint(row: dict, fmt: str) -> str | None:
    present = {k for k, v in row.items() if v not in (None, "", [])}
    for v in row.values():
        if (style := chat_style([v])) and style != fmt:
            return f"this row looks like {style}: the file mixes formats"
    for other, fields in FIELDS.items():
        if other in (fmt, "text", *CHAT_FORMATS):
            continue
        required = [names for _, (req, names) in fields.items() if req]
        if required and all(present & set(names) for names in required):
            return f"this row looks like {other}: the file mixes formats"
    return None


def _guess_and_map(ds_or_rows, fmt, column_map):
    if isinstance(fmt, FormatGuess):
        return fmt.name, {**fmt.column_map, **(column_map or {})}
    if fmt in (None, "auto"):
        g = detect_format(ds_or_rows)
        return g.name, {**g.column_map, **(column_map or {})}
    cols = ds_or_rows.column_names if hasattr(ds_or_rows, "column_names") else \
        sorted({k for r in ds_or_rows if isinstance(r, dict) for k in r})
    return fmt, resolve_columns(fmt, cols, column_map)


def validate_dataset(ds_or_rows, fmt="auto", column_map: dict | None = None, tokenizer=None,
                     max_issues: int = 1000, limit: int | None = None) -> list[RowIssue]:
    """Validate a Dataset (batched over Arrow) or a list of rows; at most `max_issues` returned."""
    name, cmap = _guess_and_map(ds_or_rows, fmt, column_map)
    issues: list[RowIssue] = []
    for idx, row in _iter_rows(ds_or_rows, limit, None if tokenizer else (name, cmap)):
        for code, msg in validate_record(row, name, cmap, tokenizer):
            issues.append(RowIssue(idx, code, msg, _FIXES[code]))
            if len(issues) >= max_issues:
                return issues
    return issues


def _iter_rows(ds_or_rows, limit, fast=None):
    """(row, dict) pairs; with fast=(fmt, cmap), rows the column-wise pre-check clears are
    skipped (they have no issue), so a million clean rows cost seconds, not minutes."""
    import numpy as np

    from studio.data.precheck import fast_valid_mask

    n = len(ds_or_rows) if limit is None else min(limit, len(ds_or_rows))
    if isinstance(ds_or_rows, list):
        yield from enumerate(ds_or_rows[:n])
        return
    step = 10_000
    for start in range(0, n, step):
        table = ds_or_rows.select(range(start, min(n, start + step))).with_format("arrow")[:]
        mask = fast_valid_mask(table, *fast) if fast else None
        todo = np.arange(table.num_rows) if mask is None else np.flatnonzero(~mask)
        for i, row in zip(todo.tolist(), table.take(todo).to_pylist()):
            yield start + i, row


def validate_path(path: str | Path, fmt="auto", column_map: dict | None = None, tokenizer=None,
                  max_issues: int = 1000) -> list[RowIssue]:
    """Validate a file. JSONL is read line by line, so a non-object or broken row is reported with
    its row number instead of failing the whole load."""
    from studio.data.files import iter_jsonl_raw
    from studio.data.load import file_kind, load_rows

    p = Path(path)
    if p.is_file() and p.suffix.lower() in (".jsonl", ".ndjson"):
        def parsed():  # streamed twice (detect, then check): never the whole file in memory
            for row, _, raw in iter_jsonl_raw(p):
                try:
                    yield row, json.loads(raw), None
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    yield row, None, e

        head = []
        for _, obj, _ in parsed():
            if isinstance(obj, dict):
                head.append(obj)
            if len(head) >= 50:
                break
        name, cmap = _guess_and_map(head, fmt, column_map)
        issues: list[RowIssue] = []
        for idx, obj, err in parsed():
            found = ([("invalid_json", f"not valid JSON ({err})")] if err is not None
                     else validate_record(obj, name, cmap, tokenizer))
            issues += [RowIssue(idx, code, msg, _FIXES[code]) for code, msg in found]
            if len(issues) >= max_issues:
                break
        return issues[:max_issues]
    if p.is_file():
        file_kind(p)
    return validate_dataset(load_rows(p), fmt, column_map, tokenizer, max_issues)


def summarize(issues: list[RowIssue]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in issues:
        counts[i.code] = counts.get(i.code, 0) + 1
    return counts
