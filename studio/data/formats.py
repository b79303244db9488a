"""Dataset formats: detect which one a dataset is in, and convert rows to what a trainer needs.

Owns: the six source formats (alpaca, sharegpt, messages, prompt_completion, preference, text),
`detect_format` -> FormatGuess(name, confidence, column_map), per-row conversion to chat messages,
and `to_trainer_format(ds, fmt, target)` for the four trainer targets TRL reads:
  messages          column `messages`: [{role, content}, ...] (SFT, conversational); with tools,
                    assistant turns keep `tool_calls` and a `tools` column holds the definitions
  prompt_completion columns `prompt`, `completion` (SFT, loss on the completion only)
  preference        columns `prompt`, `chosen`, `rejected` with an explicit prompt (DPO)
  text              column `text` (continued pre-training)
Does not validate rows (validate.py), load files (load.py) or know tool-call shapes (tools.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from studio.data.tools import CHAT_FORMATS, row_tools, tool_calls_of

FORMATS = ("alpaca", "sharegpt", "messages", "prompt_completion", "preference", "text")
TARGETS = ("messages", "prompt_completion", "preference", "text")

# canonical field -> (required, accepted column names in priority order)
FIELDS: dict[str, dict[str, tuple[bool, tuple[str, ...]]]] = {
    "alpaca": {"instruction": (True, ("instruction", "instructions")),
               "input": (False, ("input", "context")),
               "output": (True, ("output", "response", "answer")),
               "system": (False, ("system", "system_prompt"))},
    "sharegpt": {"conversations": (True, ("conversations", "conversation", "messages", "chat")),
                 "system": (False, ("system", "system_prompt"))},
    "messages": {"messages": (True, ("messages", "conversations", "conversation", "chat")),
                 "system": (False, ("system", "system_prompt"))},
    "prompt_completion": {"prompt": (True, ("prompt", "question", "query", "input")),
                          "completion": (True, ("completion", "response", "answer", "output",
                                                "target"))},
    "preference": {"prompt": (False, ("prompt", "question", "instruction", "query", "input")),
                   "chosen": (True, ("chosen", "accepted", "preferred", "response_chosen")),
                   "rejected": (True, ("rejected", "dispreferred", "response_rejected"))},
    "text": {"text": (True, ("text", "content", "document", "body"))},
}

# Roles accepted per chat format, mapped to the roles chat templates know.
MESSAGE_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool",
                 "human": "user", "gpt": "assistant", "model": "assistant", "function": "tool"}
SHAREGPT_ROLES = {**MESSAGE_ROLES, "chatgpt": "assistant", "bard": "assistant",
                  "observation": "tool", "function_call": "assistant",
                  "function_response": "tool"}


@dataclass
class FormatGuess:
    """What detect_format thinks; confidence < 0.8 means: show the column-mapping control."""
    name: str
    confidence: float
    column_map: dict[str, str]
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def unsure(self) -> bool:
        return self.confidence < 0.8


def sample_rows(dataset_or_rows, n: int = 50) -> tuple[list[str], list]:
    """(column names, first n rows as Python objects) for a Dataset or a list of dicts."""
    if hasattr(dataset_or_rows, "column_names") and hasattr(dataset_or_rows, "select"):
        ds = dataset_or_rows
        return list(ds.column_names), ds.select(range(min(n, len(ds)))).to_list()
    rows = list(dataset_or_rows[:n]) if isinstance(dataset_or_rows, list) else list(dataset_or_rows)
    cols: list[str] = []
    for r in rows:
        if isinstance(r, dict):
            cols += [k for k in r if k not in cols]
    return cols, rows


def resolve_columns(fmt: str, columns, column_map: dict | None = None) -> dict[str, str]:
    """Map each canonical field of `fmt` to a column: explicit map first, then known names."""
    if fmt not in FIELDS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out: dict[str, str] = {}
    for canon, (_, names) in FIELDS[fmt].items():
        chosen = (column_map or {}).get(canon)
        if chosen:
            out[canon] = chosen
            continue
        for name in names:
            if name in columns and name not in out.values():
                out[canon] = name
                break
    return out


def missing_required(fmt: str, cmap: dict[str, str]) -> list[str]:
    return [c for c, (req, _) in FIELDS[fmt].items() if req and c not in cmap]


def chat_style(values) -> str | None:
    """'messages' if the values are lists of {role, content}, 'sharegpt' for {from, value}."""
    for v in values:
        if isinstance(v, list) and v and isinstance(v[0], dict):
            keys = {k for m in v if isinstance(m, dict) for k, x in m.items() if x is not None}
            if "from" in keys or "value" in keys:
                return "sharegpt"
            if "role" in keys or "content" in keys:
                return "messages"
    return None


def detect_format(dataset_or_rows) -> FormatGuess:
    """Guess the format from column names and the first rows' value shapes."""
    cols, rows = sample_rows(dataset_or_rows)
    rows = [r for r in rows if isinstance(r, dict)]
    col_values = {c: [r.get(c) for r in rows if r.get(c) is not None] for c in cols}
    guesses: list[FormatGuess] = []

    pref = resolve_columns("preference", cols)
    if not missing_required("preference", pref):
        canonical = pref["chosen"] == "chosen" and pref["rejected"] == "rejected"
        guesses.append(FormatGuess("preference", 1.0 if canonical else 0.75, pref,
                                   "chosen/rejected columns"))
    alp = resolve_columns("alpaca", cols)
    if not missing_required("alpaca", alp):
        guesses.append(FormatGuess("alpaca", 1.0 if alp["output"] == "output" else 0.9, alp,
                                   "instruction/output columns"))
    for c in cols:
        style = chat_style(col_values[c])
        if style:
            canonical = {"messages": "messages", "sharegpt": "conversations"}[style] == c
            key = "messages" if style == "messages" else "conversations"
            cmap = {key: c}
            if sys_col := resolve_columns("sharegpt", cols).get("system"):
                cmap["system"] = sys_col  # a separate system column is merged in front
            shape = "role/content" if style == "messages" else "from/value"
            guesses.append(FormatGuess(style, 1.0 if canonical else 0.9, cmap,
                                       f"column '{c}' holds {shape} turns"))
            break
    pc_map = resolve_columns("prompt_completion", cols)
    if not missing_required("prompt_completion", pc_map):
        canonical = pc_map == {"prompt": "prompt", "completion": "completion"}
        guesses.append(FormatGuess("prompt_completion", 1.0 if canonical else 0.7, pc_map,
                                   "prompt/completion columns"))
    string_cols = [c for c in cols
                   if col_values[c] and all(isinstance(v, str) for v in col_values[c])]
    if "text" in string_cols:
        guesses.append(FormatGuess("text", 1.0 if len(cols) == 1 else 0.85, {"text": "text"},
                                   "a 'text' column"))
    elif string_cols:
        longest = max(string_cols, key=lambda c: sum(len(v) for v in col_values[c]))
        guesses.append(FormatGuess("text", 0.6 if len(string_cols) == 1 else 0.3,
                                   {"text": longest}, f"longest string column '{longest}'"))
    if not guesses:
        return FormatGuess("text", 0.0, {}, "no known columns",
                           [f"columns: {', '.join(cols) or '(none)'}"])
    best = max(guesses, key=lambda g: g.confidence)  # max keeps the first of equal confidences
    _check_mixed(best, guesses, rows)
    return best


def _check_mixed(best: FormatGuess, guesses: list[FormatGuess], rows: list[dict]) -> None:
    """Lower the confidence when some rows lack the best format's fields but fit another one."""
    required = [best.column_map.get(c) for c, (req, _) in FIELDS[best.name].items() if req]
    odd = [i for i, r in enumerate(rows) if any(r.get(c) is None for c in required if c)]
    if not odd or len(guesses) < 2:
        return
    others = {g.name for g in guesses if g is not best and g.name != "text"}
    if others:
        best.confidence = min(best.confidence, 0.5)
        best.notes.append(f"rows {', '.join(map(str, odd[:5]))} don't fit {best.name} but the "
                          f"file also has {'/'.join(sorted(others))} columns: it mixes formats")


# ---------------------------------------------------------------- per-row conversion
def content_text(c) -> str | None:
    """Content as a string: lists of parts ({type: text, text}) joined, other objects as JSON."""
    if c is None or isinstance(c, str):
        return c
    if isinstance(c, list):
        parts = [p.get("text") if isinstance(p, dict) else p for p in c]
        return "".join(p for p in parts if isinstance(p, str))
    if isinstance(c, dict) and isinstance(c.get("text"), str):
        return c["text"]
    return json.dumps(c, ensure_ascii=False)


def chat_turns(turns, style: str = "messages", keep_tools: bool = False) -> list[dict]:
    """Normalise a list of {role, content} or {from, value} dicts into [{role, content}].

    keep_tools: assistant turns keep their calls as `tool_calls` (OpenAI's shape) and tool turns
    their `name` / `tool_call_id`, so a chat template that knows tools renders them its own way.
    Without it a call becomes JSON text in the content (for views and templates without tools).
    """
    role_key, content_key = ("from", "value") if style == "sharegpt" else ("role", "content")
    table = SHAREGPT_ROLES if style == "sharegpt" else MESSAGE_ROLES
    out = []
    for m in turns or []:
        if not isinstance(m, dict):
            continue
        raw_role = m.get(role_key) if m.get(role_key) is not None else m.get("role")
        role = table.get(str(raw_role).lower(), str(raw_role))
        content = content_text(m.get(content_key) if m.get(content_key) is not None
                               else m.get("content"))
        calls = tool_calls_of(m, str(raw_role).lower()) if role == "assistant" else []
        msg = {"role": role, "content": content or ""}
        if calls and keep_tools:
            # A ShareGPT call turn's value *is* the call: it must not also be the text.
            msg["content"] = "" if str(raw_role).lower() == "function_call" else msg["content"]
            msg["tool_calls"] = calls
        elif calls and not content:
            msg["content"] = json.dumps([c["function"] for c in calls], ensure_ascii=False)
        if keep_tools and role == "tool":
            msg.update({k: m[k] for k in ("name", "tool_call_id") if isinstance(m.get(k), str)})
        out.append(msg)
    return out


def _as_turns(value, role: str) -> list[dict]:
    if isinstance(value, list):
        return chat_turns(value)
    return [{"role": role, "content": content_text(value) or ""}]


def row_messages(row: dict, fmt: str, cmap: dict[str, str], keep_tools: bool = False) -> list[dict]:
    """The conversation a row represents, as [{role, content}] (for preference: prompt + chosen).
    keep_tools: tool calls stay structured (see chat_turns)."""
    get = lambda canon: row.get(cmap[canon]) if canon in cmap else None  # noqa: E731
    if fmt == "alpaca":
        user = content_text(get("instruction")) or ""
        if extra := content_text(get("input")):
            user = f"{user}\n\n{extra}" if user else extra
        system = content_text(get("system"))
        return ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user},
            {"role": "assistant", "content": content_text(get("output")) or ""}]
    if fmt in CHAT_FORMATS:
        turns = chat_turns(get("conversations" if fmt == "sharegpt" else "messages"), fmt, keep_tools)
        system = content_text(get("system"))
        if system and not (turns and turns[0]["role"] == "system"):
            turns = [{"role": "system", "content": system}] + turns
        return turns
    if fmt == "prompt_completion":
        return _as_turns(get("prompt"), "user") + _as_turns(get("completion"), "assistant")
    if fmt == "preference":
        prompt, chosen, _ = preference_parts(row, cmap)
        return _as_turns(prompt, "user") + _as_turns(chosen, "assistant")
    raise ValueError("raw text has no roles")


def preference_parts(row: dict, cmap: dict[str, str]):
    """(prompt, chosen, rejected) with an explicit prompt; an implicit prompt (the shared start of
    chosen and rejected) is split off. Raises ValueError when there is no prompt at all."""
    prompt = row.get(cmap["prompt"]) if "prompt" in cmap else None
    chosen, rejected = row.get(cmap["chosen"]), row.get(cmap["rejected"])
    if isinstance(chosen, list) and isinstance(rejected, list):
        chosen, rejected = chat_turns(chosen), chat_turns(rejected)
        if prompt not in (None, "", []):
            p = _as_turns(prompt, "user")
            if chosen[:len(p)] == p and rejected[:len(p)] == p:
                chosen, rejected = chosen[len(p):], rejected[len(p):]
            return p, chosen, rejected
        n = 0
        while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
            n += 1
        if n == 0:
            raise ValueError("no prompt: add a 'prompt' column, or start 'chosen' and 'rejected' "
                             "with the same prompt messages")
        return chosen[:n], chosen[n:], rejected[n:]
    if prompt not in (None, ""):
        return prompt, chosen, rejected
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = 0
        while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
            n += 1
        head = chosen[:n]
        cut = head.rfind("Assistant:")
        cut = cut + len("Assistant:") if cut >= 0 else max(head.rfind("\n"), head.rfind(" ")) + 1
        if cut <= 0:
            raise ValueError("no prompt: add a 'prompt' column, or start 'chosen' and 'rejected' "
                             "with the same prompt text")
        return chosen[:cut], chosen[cut:], rejected[cut:]
    raise ValueError("no prompt: add a 'prompt' column")


def render_text(messages: list[dict], tokenizer=None) -> str:
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False)
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def convert_record(row: dict, fmt: str, cmap: dict[str, str], target: str,
                   conversational: bool = True, tokenizer=None, tools: bool = False) -> dict:
    """One source row -> the target columns. Raises ValueError with a short reason.
    tools: keep tool calls structured and add the row's tool definitions (`tools` column)."""
    if target == "text":
        if fmt == "text":
            return {"text": content_text(row.get(cmap["text"])) or ""}
        return {"text": render_text(row_messages(row, fmt, cmap), tokenizer)}
    if fmt == "text":
        raise ValueError("raw text has no prompt and answer")
    if target == "messages" and tools:
        return {"messages": row_messages(row, fmt, cmap, keep_tools=True), "tools": row_tools(row)}
    if target == "messages":
        return {"messages": row_messages(row, fmt, cmap)}
    if target == "preference":
        if fmt != "preference":
            raise ValueError("a preference target needs chosen and rejected answers")
        prompt, chosen, rejected = preference_parts(row, cmap)
        if conversational:
            return {"prompt": _as_turns(prompt, "user"), "chosen": _as_turns(chosen, "assistant"),
                    "rejected": _as_turns(rejected, "assistant")}
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    if target == "prompt_completion":
        if fmt == "prompt_completion" and not conversational:
            return {"prompt": row.get(cmap["prompt"]), "completion": row.get(cmap["completion"])}
        msgs = row_messages(row, fmt, cmap)
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=-1)
        if last <= 0:
            raise ValueError("no assistant answer after a prompt")
        return {"prompt": msgs[:last], "completion": msgs[last:last + 1]}
    raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")


def _target_features(target: str, fmt: str, conversational: bool, tools: bool = False):
    from datasets import Features, Json, List, Value

    turns = List({"role": Value("string"), "content": Value("string")})
    if target == "messages" and tools:
        # Each message keeps only its own keys (a struct would give every message a null
        # `tool_calls`, which some templates test with `in`), and arguments stay free-form.
        return Features({"messages": List(Json()), "tools": Json()})
    if target == "messages":
        return Features({"messages": turns})
    if target == "text":
        return Features({"text": Value("string")})
    if not conversational:
        return None  # strings or lists as the source has them: let Arrow infer
    if target == "preference":
        return Features({"prompt": turns, "chosen": turns, "rejected": turns})
    return Features({"prompt": turns, "completion": turns})


def to_trainer_format(ds, fmt, target: str, column_map: dict | None = None, *,
                      conversational: bool = True, tokenizer=None, tools: bool = False):
    """Convert a Dataset in source format `fmt` (name or FormatGuess) to a trainer `target`.

    Batched over Arrow, so memory stays flat. Raises StudioError naming the first bad row.
    `conversational=True` turns string prompts/answers into [{role, content}] lists so TRL applies
    the chat template; False keeps the source's strings. `tools=True` (messages target) keeps tool
    calls structured and adds a `tools` column for templates that render tools.
    """
    from studio.errors import StudioError

    if isinstance(fmt, FormatGuess):
        column_map = {**fmt.column_map, **(column_map or {})}
        fmt = fmt.name
    cmap = resolve_columns(fmt, ds.column_names, column_map)
    if missing := missing_required(fmt, cmap):
        raise StudioError(f"format {fmt} needs column(s) {', '.join(missing)}; the dataset has "
                          f"{', '.join(ds.column_names)}. Fix: map the columns (column_map).")
    if fmt == "text" and target != "text":
        raise StudioError(f"raw text can't become '{target}': it has no prompt and answer. Fix: "
                          "train with the 'text' target (continued pre-training) or use a chat "
                          "dataset.")
    if target == "preference" and fmt != "preference":
        raise StudioError(f"DPO needs preference pairs (prompt/chosen/rejected); this dataset is "
                          f"{fmt}. Fix: pick a preference dataset or an SFT method.")

    def convert(batch, indices):
        cols = list(batch)
        out: dict[str, list] = {}
        for j, idx in enumerate(indices):
            row = {c: batch[c][j] for c in cols}
            try:
                rec = convert_record(row, fmt, cmap, target, conversational, tokenizer, tools)
            except Exception as e:  # one message naming the row beats a trace from inside map
                raise StudioError(f"row {idx}: can't convert {fmt} to {target}: {e}. Fix: correct "
                                  "or drop that row (the Data tab's clean step drops bad rows).")
            for k, v in rec.items():
                out.setdefault(k, []).append(v)
        return out

    return ds.map(convert, batched=True, batch_size=1000, with_indices=True,
                  remove_columns=ds.column_names,
                  features=_target_features(target, fmt, conversational, tools and target == "messages"),
                  desc=f"{fmt} -> {target}")
