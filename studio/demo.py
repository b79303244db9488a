"""The embedded offline demo model: byte-level BPE tokenizer and a tiny pre-trained Llama.

Owns: `python -m studio demo` (`main`), `build_demo` (corpus + sample datasets + model),
`ensure_demo` (build on first start only if missing; a few file checks otherwise), training the
tokenizer on our shipped corpus and pre-training the model with a plain seeded torch loop. Needs
no network. Datasets, corpus and model are bit-identical for a seed (pre-training runs on one thread).

Does not own: the text (studio.demo_corpus), writing the datasets and corpus files
(studio.demo_data), asset locations (studio.paths), the chat template (studio.chat_template),
fine-tuning (studio.train).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from pathlib import Path

from studio.demo_data import CORPUS_FILES, DATA_FILES, SEED, write_corpus, write_datasets

BUILD_VERSION = 2  # bump when the recipe changes: ensure_demo rebuilds older folders
VOCAB_SIZE = 2048  # small corpus: ~2k tokens already covers nearly every word whole
# ~0.7M parameters (3 layers x 96 wide, 2k vocab): big enough to answer in words, small enough to
# pre-train in ~25 s of one CPU core and to LoRA-tune in ~1 minute.
MODEL_SHAPE = dict(hidden_size=96, intermediate_size=256, num_hidden_layers=3, num_attention_heads=3,
                   num_key_value_heads=1, max_position_embeddings=512, tie_word_embeddings=False)
# 360 steps x 8 x 128 tokens (~2 passes over the corpus): fluent answers of the right kind (the
# model picks the answer family from the question, but often names the wrong thing). Fewer steps
# (or batch 16 with half the steps) gave answers that ignore the question.
PRETRAIN = dict(steps=360, batch=8, seq=128, lr=6e-3, warmup=15, answer_only=True, story_every=3)
QUICK_STEPS = 6  # quick=True (tests): a model that loads and generates, not one that speaks well
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "studio_demo.json")


def _default_assets() -> Path:
    from studio.paths import assets_dir
    return assets_dir()


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
    for ids, (_, is_chat) in zip(ids_list, texts):
        lab = list(ids)
        if is_chat and answer_only:
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

    def as_blocks(xs: list[int]):
        return torch.tensor(xs[: n * seq]).view(n, seq)

    return as_blocks(stream), as_blocks(labels), len(stream)


def _loss(model, input_ids, labels):
    """Next-token cross-entropy, projecting to the vocabulary only where there is a label.

    Same value as model(input_ids, labels=labels).loss, but the 2k-wide output layer is about a third
    of this model's compute and ~40% of positions (the questions) carry no label.
    """
    import torch.nn.functional as F

    hidden = model.model(input_ids=input_ids).last_hidden_state[:, :-1]
    target = labels[:, 1:]
    keep = target != -100
    return F.cross_entropy(model.lm_head(hidden[keep]), target[keep])


def pretrain(model, blocks, labels, steps: int, batch: int, lr: float, warmup: int, seed: int,
             log=print) -> list[float]:
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
        loss = _loss(model, blocks[idx], labels[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log and (step % 50 == 0 or step == steps - 1):
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
    # all text trains the tokenizer; only every k-th story is pre-trained on, so that the few hundred
    # steps go mostly to answering questions
    blocks, labels, n_tokens = _token_blocks(tok, docs[::PRETRAIN["story_every"]], chats, PRETRAIN["seq"], seed,
                                             PRETRAIN["answer_only"])
    log(f"  tokenizer: {len(tok)} tokens; corpus: {n_tokens} tokens ({time.time() - t0:.1f} s)")
    cfg = LlamaConfig(vocab_size=len(tok), bos_token_id=None, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, **MODEL_SHAPE)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    steps = QUICK_STEPS if quick else PRETRAIN["steps"]
    # One thread: the same weights on every run (float sums depend on the thread split), and on a
    # busy 2-core box a second thread waiting for a core made each step ~10x slower (measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        losses = pretrain(model, blocks, labels, steps, PRETRAIN["batch"], PRETRAIN["lr"], PRETRAIN["warmup"], seed,
                          log)
        # stop at the end of a turn, and also at a document end if the model ever produces one
        model.generation_config.eos_token_id = [tok.eos_token_id, tok.pad_token_id]
        model.generation_config.pad_token_id = tok.pad_token_id
        model.generation_config.max_new_tokens = 64  # answers are 1-3 sentences; the default cap is 20 tokens
        samples = dict(zip(SAMPLE_QUESTIONS, generate_answers(model, tok, SAMPLE_QUESTIONS)))
    finally:
        torch.set_num_threads(threads)
    n_params = sum(p.numel() for p in model.parameters())
    info = {"version": BUILD_VERSION, "seed": seed, "quick": quick, "params": n_params,
            "pretrain": {**PRETRAIN, "steps": steps, "corpus_tokens": n_tokens, "first_loss": round(losses[0], 4),
                         "final_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4)},
            "build_seconds": None, "base_samples": samples}
    tmp = model_dir.with_name(f"{model_dir.name}.{os.getpid()}.tmp")  # *.tmp is git-ignored
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    info["build_seconds"] = round(time.time() - t0, 1)
    (tmp / "studio_demo.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(model_dir, ignore_errors=True)
    try:
        os.replace(tmp, model_dir)  # atomic: a reader never sees a half-written model folder
    except OSError:
        if not demo_is_built(model_dir):  # not a concurrent build that finished first: a real error
            raise
        shutil.rmtree(tmp, ignore_errors=True)
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

    log = log or (lambda *_: None)
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
            log(f"Building the demo model in {model_dir} (30-60 s on 2 CPU cores)")
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
