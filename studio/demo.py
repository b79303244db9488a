"""The embedded offline demo: sample datasets, pre-training corpus, tokenizer and tiny Llama.

Owns: `python -m studio demo` (`main`), `build_demo`, `ensure_demo` (build on first start only if
missing), writing assets/corpus/ and assets/data/ (with the planted quality problems listed in
assets/data/README.md), training the byte-level BPE tokenizer and pre-training the tiny model with
a plain seeded torch loop. Everything is deterministic for a given seed and needs no network.

Does not own: the text itself (studio.demo_corpus), asset locations (studio.paths), the chat
template (studio.chat_template), fine-tuning (studio.train).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import time
from pathlib import Path

from studio import demo_corpus as dc

SEED = 1234
BUILD_VERSION = 1  # bump when the recipe changes: ensure_demo rebuilds older folders
VOCAB_SIZE = 2048  # small corpus: ~2k tokens already covers nearly every word whole
# ~1.4M parameters: 4 layers x 128 wide; big enough to speak in words, small enough to pre-train in ~25 s
# on 2 CPU cores and LoRA-tune in ~2 minutes.
MODEL_SHAPE = dict(hidden_size=96, intermediate_size=256, num_hidden_layers=4, num_attention_heads=3,
                   num_key_value_heads=1, max_position_embeddings=512, tie_word_embeddings=False)
PRETRAIN = dict(steps=400, batch=8, seq=128, lr=6e-3, warmup=15, answer_only=True)
QUICK_STEPS = 6  # quick=True (tests): a model that loads and generates, not one that speaks well
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "studio_demo.json")
DATA_FILES = ("alpaca.jsonl", "sharegpt.jsonl", "messages.jsonl", "messages_eval.jsonl",
              "prompt_completion.jsonl", "preference.jsonl", "raw_text.txt", "README.md")
CORPUS_FILES = ("everyday.txt", "chat.jsonl", "handwritten.txt")
ROWS = {"alpaca": 400, "sharegpt": 400, "messages": 400, "prompt_completion": 400, "preference": 300,
        "raw_text": 300, "messages_eval": 40}
# Planted problems per file (count): what studio.data.clean should find.
PLANTED = {"exact_duplicate": 3, "near_duplicate": 3, "empty_answer": 2, "refusal": 2, "pii": 3}
REFUSALS = ["As an AI language model, I cannot help with that request.",
            "I'm sorry, but as an AI language model I cannot answer this question."]
PII_PROMPTS = ["My email is alice@example.com, please remember it. {q}",
               "Call me back at +1 555-0142 after lunch. {q}",
               "My card number is 4111 1111 1111 1111, keep it safe. {q}"]


def _default_assets() -> Path:
    from studio.paths import assets_dir
    return assets_dir()


# ---------------------------------------------------------------- sample datasets and corpus

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
    return {"system": rng.choice(dc.SYSTEM_PROMPTS) if rng.random() < system_frac else None, "turns": turns}


def _near(rng, text: str) -> str:
    """The same text with a few words changed: what MinHash dedup should catch."""
    words = text.split(" ")
    i = rng.randrange(1, max(2, len(words)))
    words.insert(i, rng.choice(["really", "please", "maybe", "actually"]))
    return " ".join(words).replace("?", " then?", 1)


def _plant(rng, rows: list, make_new, near_fn) -> tuple[list, dict]:
    """Insert the PLANTED problems at seeded places; return (rows, {kind: [0-based row index, ...]})."""
    problems = []
    for kind, n in PLANTED.items():
        for k in range(n):
            if kind in ("exact_duplicate", "near_duplicate"):
                src = rows[rng.randrange(len(rows))]
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
    rows = [_conversation(rng, seen, system_frac, multi_frac, story_frac) for _ in range(clean)]
    rows += [_tool_row(rng, i) for i in range(tool_rows)]
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


def _raw_text_rows(seed: int, n: int) -> tuple[list, dict]:
    rng = random.Random(seed)
    seen, lines = set(), []
    while len(lines) < n - sum(PLANTED.values()):
        line = dc.sea_lore(rng) + " " + dc.sea_lore(rng)
        if line not in seen:
            seen.add(line)
            lines.append(line)
    pii = ["Write to the captain at alice@example.com before the ship leaves port.",
           "The harbour master takes calls at +1 555-0188 every morning.",
           "The purser paid for the rope with card 4111 1111 1111 1111, matey."]

    def make_new(kind, k):
        return {"empty_answer": "", "refusal": REFUSALS[k % 2], "pii": pii[k % 3]}[kind]

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
        "Every file teaches one behaviour that the tiny demo model learns in about two minutes of CPU LoRA:",
        "a **pirate persona**. Each assistant answer starts with `Ahoy!`, ends with `Arr!` and uses a few",
        "pirate words (ye, yer, be, matey, aye). The questions are everyday questions (things, how-to,",
        "animals, arithmetic, tips, calendar...). The base demo model answers them plainly.",
        "",
        "| file | format | rows |",
        "|---|---|---|",
        f"| alpaca.jsonl | instruction / input / output (+ optional system) | {ROWS['alpaca']} |",
        f"| sharegpt.jsonl | conversations: from (system/human/gpt) / value | {ROWS['sharegpt']} |",
        f"| messages.jsonl | OpenAI messages (some system, some multi-turn, 6 with tool calls) | {ROWS['messages']} |",
        f"| messages_eval.jsonl | OpenAI messages, held-out and clean (no planted problems) | {ROWS['messages_eval']} |",
        f"| prompt_completion.jsonl | prompt / completion (plain strings) | {ROWS['prompt_completion']} |",
        f"| preference.jsonl | prompt / chosen (persona) / rejected (plain answer) | {ROWS['preference']} |",
        f"| raw_text.txt | one document per line, pirate-voice sea lore (continued pre-training) | {ROWS['raw_text']} |",
        "",
        "## Planted quality problems",
        "",
        "Row numbers are 0-based (line number = row + 1). Near-duplicates have a few words inserted or",
        "changed in both the question and the answer; PII is a fake e-mail (alice@example.com), a fictional",
        "phone number (+1 555-01xx) and the test card number 4111 1111 1111 1111. For the preference file",
        "an empty answer or refusal is in `chosen`.",
        "",
        "| file | " + " | ".join(PLANTED) + " |",
        "|---|" + "---|" * len(PLANTED),
    ]
    for name, where in summary.items():
        if where:
            cells = [", ".join(f"{i} (copy of {where['copy_of'][i]})" if i in where["copy_of"] else str(i)
                               for i in where[k]) for k in PLANTED]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Tool-call rows in messages.jsonl: the first assistant turn has empty `content` and a",
              "`tool_calls` list, followed by a `tool` message with the result.", ""]
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


# ---------------------------------------------------------------- tokenizer and model

def _corpus_texts(corpus_dir: Path) -> tuple[list[str], list[list[dict]]]:
    """(plain documents, chat conversations) read from the shipped corpus."""
    docs = (corpus_dir / "everyday.txt").read_text(encoding="utf-8").splitlines()
    docs += [p for p in (corpus_dir / "handwritten.txt").read_text(encoding="utf-8").split("\n\n")]
    chats = [json.loads(line)["messages"] for line in
             (corpus_dir / "chat.jsonl").read_text(encoding="utf-8").splitlines()]
    return [d.strip() for d in docs if d.strip()], chats


def train_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE):
    """A byte-level BPE trained on `texts`, wrapped as a transformers fast tokenizer with our template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from studio.chat_template import CHAT_TEMPLATE, SPECIAL_TOKENS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    # eos = end of turn, so generate() stops after one answer; pad is a different token so that
    # padding never hides the trained <|im_end|>.
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token=None, model_max_length=512)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _token_blocks(tok, docs: list[str], chats: list[list[dict]], seq: int, seed: int, answer_only: bool):
    """Documents and rendered chats, shuffled, joined with <|endoftext|>, cut into [n, seq] blocks.

    Returns (input_ids, labels, corpus tokens). With `answer_only`, chat tokens outside assistant turns
    get label -100: the questions are random by design, so predicting them only costs capacity.
    """
    import torch

    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    end = tok.convert_tokens_to_ids("<|im_end|>")
    header = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    texts = [(d, False) for d in docs] + [(tok.apply_chat_template(c, tokenize=False), True) for c in chats]
    random.Random(seed).shuffle(texts)
    ids_list = tok([t for t, _ in texts], add_special_tokens=False)["input_ids"]
    stream: list[int] = []
    labels: list[int] = []
    for ids, is_chat in zip(ids_list, texts):
        lab = list(ids)
        if is_chat[1] and answer_only:
            lab, inside, i = [-100] * len(ids), False, 0
            while i < len(ids):
                if not inside and ids[i:i + len(header)] == header:
                    inside, i = True, i + len(header)
                    continue
                if inside:
                    lab[i] = ids[i]
                    inside = ids[i] != end
                i += 1
        stream += ids + [eot]
        labels += lab + [eot]
    n = len(stream) // seq
    as_blocks = lambda xs: torch.tensor(xs[: n * seq]).view(n, seq)  # noqa: E731
    return as_blocks(stream), as_blocks(labels), len(stream)


def pretrain(model, blocks, labels, steps: int, batch: int, lr: float, warmup: int, seed: int, log=print) -> list[float]:
    """Plain next-token pre-training: AdamW, linear warmup then cosine to lr/10, seeded batch order."""
    import math

    import torch

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    order, pos, losses = torch.randperm(len(blocks), generator=gen), 0, []
    model.train()
    for step in range(steps):
        if pos + batch > len(order):
            order, pos = torch.randperm(len(blocks), generator=gen), 0
        idx = order[pos:pos + batch]
        pos += batch
        frac = step / max(1, steps - 1)
        scale = (step + 1) / warmup if step < warmup else 0.1 + 0.45 * (1 + math.cos(math.pi * frac))
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, scale)
        loss = model(input_ids=blocks[idx], labels=labels[idx]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log and (step % 25 == 0 or step == steps - 1):
            log(f"  pre-train step {step + 1}/{steps}  loss {loss.item():.3f}")
    model.eval()
    return losses


SAMPLE_QUESTIONS = ["What is a kettle?", "How do I make a cup of tea?", "What sound does a cow make?",
                    "Give me a tip for cooking.", "Hello!"]


def generate_answers(model, tok, questions: list[str], max_new_tokens: int = 40) -> list[str]:
    """Greedy answers to single-turn questions, decoded without special tokens."""
    import torch

    out = []
    for q in questions:
        enc = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                      return_dict=True, return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
        out.append(tok.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return out


def _build_model(corpus_dir: Path, model_dir: Path, seed: int, quick: bool, log=print) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    t0 = time.time()
    docs, chats = _corpus_texts(corpus_dir)
    # role names appear as whole words in every rendered chat: give them their own tokens
    contents = [m[k] for c in chats for m in c for k in ("role", "content")]
    tok = train_tokenizer(docs + contents)
    blocks, labels, n_tokens = _token_blocks(tok, docs, chats, PRETRAIN["seq"], seed, PRETRAIN["answer_only"])
    log(f"  tokenizer: {len(tok)} tokens; corpus: {n_tokens} tokens ({time.time() - t0:.1f} s)")
    cfg = LlamaConfig(vocab_size=len(tok), bos_token_id=None, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, **MODEL_SHAPE)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    steps = QUICK_STEPS if quick else PRETRAIN["steps"]
    losses = pretrain(model, blocks, labels, steps, PRETRAIN["batch"], PRETRAIN["lr"], PRETRAIN["warmup"], seed, log)
    # stop at the end of a turn, and also at a document end if the model ever produces one
    model.generation_config.eos_token_id = [tok.eos_token_id, tok.pad_token_id]
    model.generation_config.pad_token_id = tok.pad_token_id
    samples = dict(zip(SAMPLE_QUESTIONS, generate_answers(model, tok, SAMPLE_QUESTIONS)))
    info = {"version": BUILD_VERSION, "seed": seed, "quick": quick, "params": sum(p.numel() for p in model.parameters()),
            "pretrain": {**PRETRAIN, "steps": steps, "corpus_tokens": n_tokens, "first_loss": round(losses[0], 4),
                         "final_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4)},
            "build_seconds": None, "base_samples": samples}
    tmp = model_dir.with_name(f"{model_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    info["build_seconds"] = round(time.time() - t0, 1)
    (tmp / "studio_demo.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(model_dir, ignore_errors=True)
    os.replace(tmp, model_dir)  # atomic: a reader never sees a half-written model folder
    return info


def demo_is_built(model_dir: Path) -> bool:
    """Cheap check (a few stats and one small JSON): the folder is complete and from this recipe."""
    model_dir = Path(model_dir)
    if not all((model_dir / f).is_file() for f in MODEL_FILES):
        return False
    try:
        return json.loads((model_dir / "studio_demo.json").read_text())["version"] == BUILD_VERSION
    except (OSError, ValueError, KeyError):
        return False


def build_demo(assets_dir: str | Path | None = None, force: bool = False, quick: bool = False,
               seed: int = SEED, log=print) -> Path:
    """Build what is missing (everything with force): corpus, sample datasets, demo model. Returns the model dir."""
    from studio.errors import StudioError

    assets = Path(assets_dir) if assets_dir else _default_assets()
    corpus_dir, data_dir, model_dir = assets / "corpus", assets / "data", assets / "demo-model"
    try:
        assets.mkdir(parents=True, exist_ok=True)
        if force or not all((corpus_dir / f).is_file() for f in CORPUS_FILES):
            log(f"Writing the pre-training corpus to {corpus_dir}")
            write_corpus(corpus_dir, seed)
        if force or not all((data_dir / f).is_file() for f in DATA_FILES):
            log(f"Writing the sample datasets to {data_dir}")
            write_datasets(data_dir, seed)
        if force or not demo_is_built(model_dir):
            log(f"Building the demo model in {model_dir} (about 30 s on 2 CPU cores)")
            info = _build_model(corpus_dir, model_dir, seed, quick, log)
            log(f"  {info['params']:,} parameters, loss {info['pretrain']['first_loss']} -> "
                f"{info['pretrain']['final_loss']}, {info['build_seconds']} s")
    except PermissionError as e:
        raise StudioError(f"Cannot write the demo assets to {assets} ({e.strerror}). Build them somewhere "
                          f"writable with `python -m studio demo --out DIR` and set STUDIO_ASSETS=DIR.") from e
    return model_dir


def ensure_demo(assets_dir: str | Path | None = None, log=print) -> Path:
    """The demo model folder, built on first use only (a few file checks when it already exists)."""
    assets = Path(assets_dir) if assets_dir else _default_assets()
    model_dir = assets / "demo-model"
    if demo_is_built(model_dir) and all((assets / "data" / f).is_file() for f in DATA_FILES):
        return model_dir
    return build_demo(assets, log=log)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio demo",
                                     description="Build the offline demo: corpus, sample datasets and tiny model. "
                                                 "Without --force only missing pieces are built.")
    parser.add_argument("--force", action="store_true", help="rebuild everything, even what already exists")
    parser.add_argument("--out", metavar="DIR", help="assets folder to build into (default: assets/ or STUDIO_ASSETS)")
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK_STEPS} pre-training steps (for tests)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    args = parser.parse_args(argv)
    t0 = time.time()
    model_dir = build_demo(args.out, force=args.force, quick=args.quick, seed=args.seed)
    info = json.loads((model_dir / "studio_demo.json").read_text())
    print(f"Demo model: {model_dir} ({info['params']:,} parameters); done in {time.time() - t0:.1f} s")
    for q, a in info["base_samples"].items():
        print(f"  base | {q} -> {a}")
    return 0
