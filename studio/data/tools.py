"""Tool calling in chat data: a message's calls in OpenAI's shape, a row's tool definitions,
whether a dataset uses tools, and whether a model's chat template can render them.

studio.data.formats uses these when it converts rows (structured calls for templates that render
tools, JSON text otherwise); prepare_for_training decides which, from has_tool_calls and
template_renders_tools.
"""

from __future__ import annotations

import json

CHAT_FORMATS = ("sharegpt", "messages")  # the formats whose rows are lists of turns
TOOL_COLUMNS = ("tools", "functions")  # where a row lists the tools it may call


def _arguments(args):
    """Tool-call arguments as a dict where they are JSON (templates print them with tojson)."""
    if isinstance(args, str):
        try:
            parsed = json.loads(args)
        except ValueError:
            return args
        return parsed if isinstance(parsed, dict) else args
    return args if args is not None else {}


def tool_calls_of(m: dict, raw_role: str = "") -> list[dict]:
    """A message's tool calls in OpenAI's shape [{type, function: {name, arguments}}], from
    `tool_calls`, the legacy `function_call`, or a ShareGPT `function_call` turn whose value is the
    JSON call. [] when it has none."""
    calls = m.get("tool_calls")
    if not calls and isinstance(m.get("function_call"), dict):
        calls = [m["function_call"]]
    if not calls and raw_role == "function_call":
        try:
            value = json.loads(m.get("value") or m.get("content") or "")
        except (TypeError, ValueError):
            value = None
        calls = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
    out = []
    for c in calls or []:
        if not isinstance(c, dict):
            continue
        fn = c.get("function") if isinstance(c.get("function"), dict) else c
        if not isinstance(fn.get("name"), str):
            continue
        call = {"type": "function", "function": {"name": fn["name"],
                                                 "arguments": _arguments(fn.get("arguments", fn.get("parameters")))}}
        if isinstance(c.get("id"), str):
            call["id"] = c["id"]
        out.append(call)
    return out


def row_tools(row: dict) -> list[dict] | None:
    """The tool (function) definitions a row offers the model: a `tools` or `functions` column,
    as a list or as JSON text. None when it has none."""
    value = next((row[c] for c in TOOL_COLUMNS if row.get(c) is not None), None)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        return None
    return [t if "function" in t else {"type": "function", "function": t} for t in value if isinstance(t, dict)]


def has_tool_calls(ds, fmt: str, cmap: dict[str, str]) -> bool:
    """Whether any row of a chat dataset calls tools or offers tool definitions.
    `cmap`: the format guess's column map (which column holds the turns)."""
    if fmt not in CHAT_FORMATS:
        return False
    if any(c in ds.column_names for c in TOOL_COLUMNS):
        return True
    col = cmap.get("conversations" if fmt == "sharegpt" else "messages")
    if col not in ds.column_names:
        return False
    kind = str(ds.features[col])
    if "tool_calls" in kind or "function_call" in kind:
        return True
    if fmt != "sharegpt":
        return False
    for batch in ds.select_columns([col]).iter(batch_size=2000):
        if any(str(m.get("from", "")).lower() == "function_call"
               for turns in batch[col] for m in turns or [] if isinstance(m, dict)):
            return True
    return False


def template_renders_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template prints an assistant's tool call (name and arguments)
    and a tool's answer. Many templates silently drop one of them; those get calls as JSON text."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return False
    name, key, value, answer = "fn_q7x", "arg_k3z", "arg_v9w", "result_r5y"
    conv = [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": name, "arguments": {key: value}}}]},
            {"role": "tool", "name": name, "content": answer}]
    try:
        text = tokenizer.apply_chat_template(conv, tokenize=False)
    except Exception:  # jinja raises its own types when a template rejects tools
        return False
    return all(x in text for x in (name, key, value, answer))
