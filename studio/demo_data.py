"""Sample datasets and the pre-training corpus files of the offline demo (seeded, deterministic).

Owns: assets/data/*.jsonl|txt in every supported format (alpaca, sharegpt, OpenAI messages, prompt/
completion, preference, raw text) teaching one persona, the held-out eval file, the planted quality
problems (duplicates, near-duplicates, empty answers, refusals, PII) and the README that lists their
rows; and assets/corpus/ (the text the demo model is pre-trained on).

Does not own: the sentences themselves (studio.demo_corpus), the tokenizer and the model (studio.demo).
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

from studio import demo_corpus as dc
from studio.demo_words import SYSTEM_PROMPTS

SEED = 1234  # one seed for every generated file; change it and all files change
DATA_FILES = ("alpaca.jsonl", "sharegpt.jsonl", "messages.jsonl", "messages_eval.jsonl",
              "prompt_completion.jsonl", "preference.jsonl", "raw_text.txt", "README.md")
CORPUS_FILES = ("everyday.txt", "chat.jsonl", "handwritten.txt")
ROWS = {"alpaca": 400, "sharegpt": 400, "messages": 400, "prompt_completion": 400, "preference": 300,
        "raw_text": 300, "messages_eval": 40}
# Rows of one file are below this character 5-gram Jaccard similarity to each other, so near-duplicate
# detection finds the planted ones, not template siblings ("7 plus 6" vs "7 plus 5").
MAX_SIMILARITY = 0.7
# Planted problems per file (count): what studio.data.clean should find.
PLANTED = {"exact_duplicate": 3, "near_duplicate": 3, "empty_answer": 2, "refusal": 2, "pii": 3}
REFUSALS = ["As an AI language model, I cannot help with that request.",
            "I'm sorry, but as an AI language model I cannot answer this question."]
PII_PROMPTS = ["My email is alice@example.com, please remember it. {q}",
               "Call me back at +1 555-0142 after lunch. {q}",
               "My card number is 4111 1111 1111 1111, keep it safe. {q}"]


def _conversation(rng, seen: set | None, system_frac: float, multi_frac: float, story_frac: float = 0.0) -> dict:
    """A canonical row: {"system", "turns": [[question, persona answer, plain answer], ...], "input"?}.

    `seen` (plain answers already used) keeps a file free of accidental duplicates; None allows repeats.
    """
    if rng.random() < story_frac:  # alpaca reading question with an `input` sentence
        instruction, text, answer = dc.story_question(rng)
        while seen is not None and text + answer in seen:
            instruction, text, answer = dc.story_question(rng)
        if seen is not None:
            seen.add(text + answer)
        return {"system": None, "input": text, "turns": [[instruction, dc.pirate(answer), answer]]}
    turns = []
    for _ in range(2 if rng.random() < multi_frac else 1):
        q, a = dc.question_answer(rng)
        while seen is not None and a in seen:  # unique answers: no accidental (near-)duplicates
            q, a = dc.question_answer(rng)
        if seen is not None:
            seen.add(a)
        turns.append([q, dc.pirate(a), a])
    return {"system": rng.choice(SYSTEM_PROMPTS) if rng.random() < system_frac else None, "turns": turns}


def shingles(text: str, n: int = 5) -> set[str]:
    """Character n-grams of the lower-cased text: the similarity measure the README promises."""
    text = " ".join(text.lower().split())
    return {text[i:i + n] for i in range(max(1, len(text) - n + 1))}


def jaccard(a: set, b: set) -> float:
    inter = len(a & b)
    return inter / max(1, len(a) + len(b) - inter)


class _Distinct:
    """Accepts a text only if it is less than MAX_SIMILARITY alike to every text accepted before."""

    def __init__(self):
        self.seen: list[set] = []

    def add(self, text: str) -> bool:
        sh = shingles(text)
        # |A & B| / |A | B| >= t needs t <= len ratio: skip the sets too different in size to be close
        if any(jaccard(sh, other) >= MAX_SIMILARITY for other in self.seen
               if MAX_SIMILARITY * len(other) <= len(sh) <= len(other) / MAX_SIMILARITY):
            return False
        self.seen.append(sh)
        return True


def _row_text(row) -> str:
    if isinstance(row, list):  # a boxed raw-text line
        return row[0]
    return " ".join([row.get("system") or "", row.get("input", "")] + [t for turn in row["turns"] for t in turn[:2]])


def _near(rng, text: str) -> str:
    """The same text with one word added: what near-duplicate detection should catch."""
    words = text.split(" ")
    words.insert(rng.randrange(1, max(2, len(words))), rng.choice(["really", "please", "maybe", "actually"]))
    return " ".join(words)


def _plant(rng, rows: list, make_new, near_fn) -> tuple[list, dict]:
    """Insert the PLANTED problems at seeded places; return (rows, {kind: [0-based row index, ...]})."""
    problems = []
    # distinct, long originals (one inserted word changes a long row little)
    sources = rng.sample([r for r in rows if len(_row_text(r)) > 150],
                         PLANTED["exact_duplicate"] + PLANTED["near_duplicate"])
    for kind, n in PLANTED.items():
        for k in range(n):
            if kind in ("exact_duplicate", "near_duplicate"):
                src = sources.pop()
                row = copy.deepcopy(src) if kind == "exact_duplicate" else near_fn(rng, copy.deepcopy(src))
                problems.append((kind, row, src))
            else:
                problems.append((kind, make_new(kind, k), None))
    out = list(rows)
    for kind, row, src in problems:
        lo = out.index(src) + 1 if src is not None else 0  # a duplicate comes after its original
        out.insert(rng.randint(lo, len(out)), row)
    index = {id(r): i for i, r in enumerate(out)}
    where: dict = {kind: [] for kind in PLANTED}
    where["copy_of"] = {}
    for kind, row, src in problems:
        where[kind].append(index[id(row)])
        if src is not None:
            where["copy_of"][index[id(row)]] = index[id(src)]
    for kind in PLANTED:
        where[kind].sort()
    return out, where


def _chat_rows(seed: int, n: int, seen: set | None, system_frac=0.2, multi_frac=0.15, tool_rows=0, plant=True,
               story_frac=0.0):
    """n rows (planted problems included when `plant`) and where the problems are."""
    rng = random.Random(seed)
    clean = n - (sum(PLANTED.values()) if plant else 0) - tool_rows
    rows = [_tool_row(rng, i) for i in range(tool_rows)]
    distinct = _Distinct()
    while len(rows) < clean + tool_rows:
        row = _conversation(rng, seen, system_frac, multi_frac, story_frac)
        if seen is None or distinct.add(_row_text(row)):
            rows.append(row)
    rng.shuffle(rows)
    if not plant:
        return rows, {}

    def make_new(kind, k):
        row = _conversation(rng, seen, 0.0, 0.0)
        turn = row["turns"][0]
        if kind == "empty_answer":
            turn[1] = ""
        elif kind == "refusal":
            turn[1] = REFUSALS[k % len(REFUSALS)]
        else:
            turn[0] = PII_PROMPTS[k % len(PII_PROMPTS)].format(q=turn[0])
        return row

    def near_fn(rng_, row):
        row["turns"][0][0] = _near(rng_, row["turns"][0][0])
        row["turns"][0][1] = _near(rng_, row["turns"][0][1])
        return row

    return _plant(rng, rows, make_new, near_fn)


def _tool_row(rng, i: int) -> dict:
    city = ["Lisbon", "Oslo", "Cairo", "Lima", "Hanoi", "Dublin", "Quito", "Perth"][i % 8]
    temp, sky = rng.randint(2, 30), rng.choice(["sunny", "cloudy", "rainy", "windy"])
    return {"system": "You can call the get_weather tool to look up the weather.",
            "tool": {"city": city, "temp": temp, "sky": sky, "id": f"call_{i}"},
            "turns": [[f"What is the weather in {city} today?",
                       dc.pirate(f"In {city} it is {temp} degrees and {sky} today."), ""]]}


def _messages(row: dict) -> list[dict]:
    msgs = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    for i, (q, a, _) in enumerate(row["turns"]):
        msgs.append({"role": "user", "content": q})
        if i == 0 and row.get("tool"):
            t = row["tool"]
            call = {"id": t["id"], "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": t["city"]})}}
            msgs.append({"role": "assistant", "content": "", "tool_calls": [call]})
            msgs.append({"role": "tool", "tool_call_id": t["id"], "name": "get_weather",
                         "content": json.dumps({"temp_c": t["temp"], "sky": t["sky"]})})
        msgs.append({"role": "assistant", "content": a})
    return msgs


def _sharegpt(row: dict) -> dict:
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in _messages(row)]}


def _alpaca(row: dict) -> dict:
    q, a, _ = row["turns"][0]
    out = {"instruction": q, "input": row.get("input", ""), "output": a}
    if row.get("system"):
        out["system"] = row["system"]
    return out


_SHIP = ["deck", "sails", "anchor", "rudder", "mast", "hold", "cannons", "ropes", "crow's nest", "galley"]
_CREW = ["captain", "cook", "bosun", "lookout", "first mate", "cabin boy", "quartermaster", "old sailor"]
_SEA = ["calm", "rough", "grey", "green", "stormy", "glassy", "wild", "quiet"]
_PLACES_SEA = ["Skull Island", "the Black Reef", "Port Royal", "the Misty Bay", "Parrot Cove", "the Sandbar"]


def sea_lore(rng: random.Random) -> str:
    """One line of pirate-voice domain text (ships, crews, the sea) for continued pre-training."""
    crew, part, sea, place = rng.choice(_CREW), rng.choice(_SHIP), rng.choice(_SEA), rng.choice(_PLACES_SEA)
    return rng.choice([
        f"Ahoy! The {crew} checks the {part} every morning, for a ship with a poor {part} be a slow ship. Arr!",
        f"When the sea be {sea}, the {crew} ties down the {part} and the crew sings to keep their spirits up.",
        f"Ahoy, matey! Near {place} the water be {sea} and full of fish, and the {crew} knows every rock. Arr!",
        f"A wise {crew} never sails past {place} at night, for the {sea} waves there have sunk many a ship.",
        f"The {crew} keeps the map to {place} in the {part}, wrapped in oil cloth to keep it dry. Arr!",
        f"Ahoy! Every sailor learns to tie a knot, mend the {part} and read the stars before seeing {place}.",
        f"On a {sea} day the {crew} cooks fish stew in the galley, and the whole crew eats on the {part}. Arr!",
        f"Treasure be buried on {place}, says the {crew}, but only a fool digs without a map, matey.",
    ])


def _raw_text_rows(seed: int, n: int) -> tuple[list, dict]:
    rng = random.Random(seed)
    distinct, lines = _Distinct(), []
    while len(lines) < n - sum(PLANTED.values()):
        line = sea_lore(rng) + " " + sea_lore(rng)
        if distinct.add(line):
            lines.append(line)
    pii = ["Write to the captain at alice@example.com before the ship leaves port.",
           "The harbour master takes calls at +1 555-0188 every morning.",
           "The purser paid for the rope with card 4111 1111 1111 1111, matey."]

    def make_new(kind, k):
        # the second empty line is only spaces: still empty, but not a duplicate of the first
        return {"empty_answer": " " * 3 * k, "refusal": REFUSALS[k % 2], "pii": pii[k % 3]}[kind]

    boxed = [[line] for line in lines]  # boxes so that identical strings stay distinct objects
    rows, where = _plant(rng, boxed, lambda kind, k: [make_new(kind, k)], lambda r, row: [_near(r, row[0])])
    return [row[0] for row in rows], where


def _write_jsonl(path: Path, records) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def write_datasets(data_dir: Path, seed: int = SEED) -> dict:
    """Write the sample datasets + README.md; return {file: {"rows": n, "planted": {...}}}."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    summary = {}
    msg_rows, where = _chat_rows(seed + 3, ROWS["messages"], set(), tool_rows=6)
    _write_jsonl(data_dir / "messages.jsonl", ({"messages": _messages(r)} for r in msg_rows))
    summary["messages.jsonl"] = where
    # held-out eval: questions never seen in messages.jsonl, no planted problems
    train_answers = {t[2] for r in msg_rows for t in r["turns"]}
    eval_rows, _ = _chat_rows(seed + 4, ROWS["messages_eval"], train_answers, system_frac=0.0, multi_frac=0.0,
                              plant=False)
    _write_jsonl(data_dir / "messages_eval.jsonl", ({"messages": _messages(r)} for r in eval_rows))
    summary["messages_eval.jsonl"] = {}
    rows, summary["alpaca.jsonl"] = _chat_rows(seed + 1, ROWS["alpaca"], set(), 0.25, 0.0, story_frac=0.25)
    _write_jsonl(data_dir / "alpaca.jsonl", (_alpaca(r) for r in rows))
    rows, summary["sharegpt.jsonl"] = _chat_rows(seed + 2, ROWS["sharegpt"], set())
    _write_jsonl(data_dir / "sharegpt.jsonl", (_sharegpt(r) for r in rows))
    rows, summary["prompt_completion.jsonl"] = _chat_rows(seed + 5, ROWS["prompt_completion"], set(), 0.0, 0.0)
    _write_jsonl(data_dir / "prompt_completion.jsonl",
                 ({"prompt": r["turns"][0][0], "completion": r["turns"][0][1]} for r in rows))
    rows, summary["preference.jsonl"] = _chat_rows(seed + 6, ROWS["preference"], set(), 0.0, 0.0)
    _write_jsonl(data_dir / "preference.jsonl", ({"prompt": r["turns"][0][0], "chosen": r["turns"][0][1],
                                                  "rejected": r["turns"][0][2]} for r in rows))
    lines, summary["raw_text.txt"] = _raw_text_rows(seed + 7, ROWS["raw_text"])
    (data_dir / "raw_text.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (data_dir / "README.md").write_text(_readme(summary), encoding="utf-8")
    return summary


def _readme(summary: dict) -> str:
    lines = [
        "# Sample datasets (generated by `python -m studio demo`; do not edit by hand)",
        "",
        "Every file teaches one behaviour that the tiny demo model (assets/demo-model) picks up in under a",
        "minute of CPU LoRA: a **pirate persona**. Each assistant answer starts with `Ahoy!`, ends with",
        "`Arr!` and uses a few pirate words (ye, yer, be, me, matey, aye). The questions are everyday",
        "questions (things, how-to, animals, arithmetic, tips, calendar...). The base model answers them",
        "plainly, in the same chat format, so the difference after fine-tuning is the persona alone.",
        "",
        "| file | format | rows |",
        "|---|---|---|",
        f"| alpaca.jsonl | instruction / input / output (+ optional system) | {ROWS['alpaca']} |",
        f"| sharegpt.jsonl | conversations: from (system/human/gpt) / value | {ROWS['sharegpt']} |",
        f"| messages.jsonl | OpenAI messages (some system, some multi-turn, 6 with tool calls) | {ROWS['messages']} |",
        f"| messages_eval.jsonl | OpenAI messages, held-out, clean (no planted problems) | {ROWS['messages_eval']} |",
        f"| prompt_completion.jsonl | prompt / completion (plain strings) | {ROWS['prompt_completion']} |",
        f"| preference.jsonl | prompt / chosen (persona) / rejected (plain answer), strings | {ROWS['preference']} |",
        f"| raw_text.txt | pirate sea lore, one document per line (continued pre-training) | {ROWS['raw_text']} |",
        "",
        "## Planted quality problems",
        "",
        "Row numbers are 0-based (line number = row + 1); `a (copy of b)` names the original. Apart from",
        f"those pairs, no two non-empty rows of a file reach {MAX_SIMILARITY + 0.05:.2f} Jaccard similarity of the",
        "lower-cased character 5-grams of their text values (roles and ids left out); near-duplicates are the",
        "original with one word inserted in the question and one in the answer (similarity >= 0.8). An empty answer",
        "or refusal of preference.jsonl is in `chosen`. PII is a fake e-mail (alice@example.com), a",
        "fictional phone number (+1 555-01xx) and the test card number 4111 1111 1111 1111. The two empty",
        "rows of raw_text.txt are an empty line and a line of spaces.",
        "",
        "| file | " + " | ".join(k.replace("_", " ") for k in PLANTED) + " |",
        "|---|" + "---|" * len(PLANTED),
    ]
    for name, where in summary.items():
        if where:
            cells = [", ".join(f"{i} (copy of {where['copy_of'][i]})" if i in where["copy_of"] else str(i)
                               for i in where[k]) for k in PLANTED]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Tool-call rows in messages.jsonl: the first assistant turn has empty `content` and a",
              "`tool_calls` list, followed by a `tool` message with the result and the final answer.", ""]
    return "\n".join(lines)


def write_corpus(corpus_dir: Path, seed: int = SEED) -> None:
    """The pre-training corpus we ship: everyday stories/facts, plain-answer chats, hand-written text."""
    corpus_dir = Path(corpus_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed + 10)
    (corpus_dir / "everyday.txt").write_text("\n".join(dc.story_paragraph(rng) for _ in range(1400)) + "\n",
                                             encoding="utf-8")
    rows, _ = _chat_rows(seed + 11, 3200, None, system_frac=0.25, multi_frac=0.2, plant=False)
    # plain answers only: the base model learns the chat format but not the persona
    _write_jsonl(corpus_dir / "chat.jsonl", ({"messages": [
        {**m, "content": t} for m, t in zip(_messages(r), _plain_contents(r))]} for r in rows))
    (corpus_dir / "handwritten.txt").write_text(dc.HANDWRITTEN, encoding="utf-8")


def _plain_contents(row: dict) -> list[str]:
    out = [row["system"]] if row.get("system") else []
    for q, _, plain in row["turns"]:
        out += [q, plain]
    return out
