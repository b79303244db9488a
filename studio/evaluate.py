"""Batch evaluation of base vs fine-tuned, saved prompt sets, and blind A/B votes.

Owns: finding a run's held-out split (cfg.data.eval_path, else RUN_DIR/eval.jsonl written by the
worker, else the demo's assets/data/messages_eval.jsonl), turning its rows into (prompt
conversation, reference answer), running both sides (greedy answers in shared batches and
perplexity of the references), the metrics table and the examples where the sides differ most,
`python -m studio eval` (`main`), the optional lm-eval hook, prompt sets (assets/prompts/*.jsonl
and RUN_DIR/prompts/*.json[l]) and votes (RUN_DIR/votes.jsonl).

It does not load or cache models (studio.chat) nor define the metrics (studio.metrics).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from studio import chat, metrics, paths
from studio.errors import StudioError

Progress = Callable[[float, str], None]  # (fraction done 0..1, what is happening)
HELD_OUT = ("validation", "eval", "test")
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "model": "assistant",
          "bot": "assistant", "system": "system"}


@dataclass
class Example:
    conv: list[dict[str, str]]  # the prompt: system/user/assistant turns, ending with a user turn
    reference: str = ""  # the answer we hope for ("" in prompt sets without answers)

    @property
    def prompt(self) -> str:
        return next((m["content"] for m in reversed(self.conv) if m["role"] == "user"), "")


# -- rows -> examples -----------------------------------------------------------------------------------
def _turns(msgs: list) -> list[dict[str, str]]:
    out = []
    for m in msgs:
        if isinstance(m, dict):
            role = _ROLES.get(str(m.get("role", m.get("from", ""))).lower())
            if role:
                out.append({"role": role, "content": chat.content_text(m.get("content", m.get("value")))})
    return out


def row_to_example(row: Any) -> Example | None:
    """messages / sharegpt / prompt-completion / alpaca / preference rows; None if unusable."""
    if isinstance(row, str):
        return Example([{"role": "user", "content": row}])
    if not isinstance(row, dict):
        return None
    msgs = row.get("messages") or row.get("conversations")
    if isinstance(msgs, list):
        turns = _turns(msgs)
        last = max((i for i, m in enumerate(turns) if m["role"] == "assistant"), default=None)
        if last is None:
            return Example(turns) if turns and turns[-1]["role"] == "user" else None
        return Example(turns[:last], turns[last]["content"]) if any(m["role"] == "user" for m in turns[:last]) else None
    answer = next((row[k] for k in ("completion", "chosen", "output", "answer", "response", "reference")
                   if row.get(k) is not None), None)
    prompt = row.get("prompt", row.get("question"))
    if prompt is None and row.get("instruction") is not None:
        prompt = str(row["instruction"]) + (f"\n\n{row['input']}" if row.get("input") else "")
    if prompt is None:
        return None
    conv = _turns(prompt) if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
    if row.get("system"):
        conv = [{"role": "system", "content": str(row["system"])}] + conv
    ref = chat.content_text(_turns(answer)[-1]["content"] if isinstance(answer, list) and _turns(answer) else answer)
    return Example(conv, ref) if conv else None


def _read_rows(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".json":
        data = json.loads(text)
        return data if isinstance(data, list) else data.get("rows", data.get("prompts", []))
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise StudioError(f"{path} line {i} is not valid JSON ({e.msg}). Fix or remove that line.") from None
    return rows


def load_examples(path: str | Path, limit: int = 0, fmt: str = "auto", column_map: dict | None = None) -> list[Example]:
    """Examples with a reference answer from a dataset file, via the Data tab's converter when it can."""
    path = Path(path)
    if not path.is_file():
        raise StudioError(f"Evaluation data not found: {path}. Set data.eval_path or data.eval_fraction in the run.")
    rows: list[Any] = []
    try:
        from studio.data import prepare_for_training

        rows = list(prepare_for_training(str(path), fmt=fmt, target="messages", column_map=column_map or None))
    except (ImportError, StudioError, ValueError, KeyError):
        rows = _read_rows(path)  # our own reading of the common layouts
    examples = [e for e in (row_to_example(r) for r in rows) if e and e.reference]
    if not examples:
        raise StudioError(f"{path} has no rows with a prompt and a reference answer "
                          "(messages ending in an assistant turn, prompt/completion, or alpaca).")
    return examples[:limit] if limit and limit > 0 else examples


def heldout_path(run_dir: str | Path, split: str = "validation") -> tuple[Path, str, dict]:
    """(file, format, column map) of the split: held-out rows, or the training file for 'train'.

    The run's format and column map apply to its own files; eval.jsonl and the demo file are
    already in messages layout.
    """
    from studio.config import RunConfig
    from studio.train.build import resolve_data_path

    run = Path(run_dir)
    cfg = RunConfig.load(run / "config.yaml")
    own = (cfg.data.format, cfg.data.column_map)
    if split == "train":
        return Path(resolve_data_path(cfg.data.path)), *own
    if split not in HELD_OUT:
        raise StudioError(f"Unknown split '{split}': use validation (held-out rows) or train.")
    if cfg.data.eval_path and Path(resolve_data_path(cfg.data.eval_path)).is_file():
        return Path(resolve_data_path(cfg.data.eval_path)), *own
    for cand in (run / "eval.jsonl", paths.sample_data_dir() / "messages_eval.jsonl"):
        if cand.is_file():
            return cand, "auto", {}
    raise StudioError(f"Run {run.name} has no held-out rows: set data.eval_path or data.eval_fraction "
                      "before training, or evaluate on --split train.")


# -- evaluation ----------------------------------------------------------------------------------------
def score_rows(cache: chat.ModelCache, sides: list[chat.Side], convs: list[list[dict]], references: list[str],
               batch_rows: int = 8, progress: Callable[[int, int], None] | None = None) -> list[tuple[float, int]]:
    """(summed negative log-likelihood in nats, token count) of each reference answer given its prompt."""
    import torch

    out: list[tuple[float, int]] = [(0.0, 0)] * len(sides)
    done = 0
    for entry, rows in chat.groups(cache, sides):
        tok = entry.tokenizer
        for chunk in chat.chunks(entry, sides, rows, batch_rows):
            prompts = [chat.prompt_text(tok, convs[r]) for r in chunk]
            fulls = []
            for r, p in zip(chunk, prompts):
                full = chat.prompt_text(tok, convs[r] + [{"role": "assistant", "content": references[r]}], False)
                fulls.append(full if full.startswith(p) else p + references[r] + (tok.eos_token or ""))
            enc = tok(fulls, return_tensors="pt", padding=True, padding_side="right",
                      add_special_tokens=not tok.chat_template, return_offsets_mapping=True)
            offsets = enc.pop("offset_mapping")
            # Score only tokens that start inside the answer (after the prompt's characters).
            mask = (offsets[:, :, 0] >= torch.tensor([len(p) for p in prompts])[:, None]) & enc["attention_mask"].bool()
            enc = {k: v.to(entry.device) for k, v in enc.items()}
            with entry.lock:
                extra, ctx = chat.routing(entry, [entry.name_for(sides[r]) for r in chunk])
                with ctx, torch.inference_mode():
                    logits = entry.model(**enc, **extra).logits
            for j, r in enumerate(chunk):
                # Logits at position i predict token i+1; take only the answer's positions, so a big
                # vocabulary costs [answer tokens, vocab] floats instead of [rows, sequence, vocab].
                pos = mask[j, 1:].nonzero().squeeze(-1).to(logits.device)
                nll = torch.nn.functional.cross_entropy(logits[j, pos].float(), enc["input_ids"][j, pos + 1],
                                                        reduction="sum")
                out[r] = (float(nll), int(pos.numel()))
            done += len(chunk)
            if progress:
                progress(done, len(sides))
    return out


def evaluate_run(run_dir: str | Path, split: str = "validation", limit: int = 0, checkpoint: str = "final",
                 max_new_tokens: int = 128, cache: chat.ModelCache | None = None,
                 progress: Progress | None = None, top_k: int = 5, save: bool = True) -> dict[str, Any]:
    """Base vs fine-tuned on the split: greedy answers, perplexity of the references, metrics."""
    run = Path(run_dir)
    report_progress = progress or (lambda f, msg: None)
    source, fmt, cmap = heldout_path(run, split)
    examples = load_examples(source, limit, fmt=fmt, column_map=cmap)
    base, tuned = chat.base_side(run), chat.run_side(run, checkpoint)
    cache = cache or chat.ModelCache(max_models=2)
    report_progress(0.0, f"Loading models for {len(examples)} examples")
    tok = cache.get(tuned.base, (tuned.adapter,) if tuned.adapter else ()).tokenizer
    longest = max(len(tok(e.reference, add_special_tokens=False)["input_ids"]) for e in examples)
    # Answers much longer than any reference cannot score better; stopping early saves minutes on CPU.
    settings = chat.GenSettings(temperature=0.0, max_new_tokens=max(8, min(max_new_tokens, 2 * longest + 16)))
    sides = [base, tuned] * len(examples)
    convs = [e.conv for e in examples for _ in (0, 1)]
    started = time.monotonic()
    texts = chat.generate_rows(cache, sides, convs, settings, batch_rows=16,
                               progress=lambda d, t: report_progress(0.8 * d / t, f"Generating answers {d // 2}/{t // 2}"))
    nll = score_rows(cache, sides, convs, [e.reference for e in examples for _ in (0, 1)], batch_rows=8,
                     progress=lambda d, t: report_progress(0.8 + 0.2 * d / t, "Scoring reference answers"))
    refs = [e.reference for e in examples]
    out: dict[str, Any] = {}
    for i, name in enumerate(("base", "tuned")):
        out[name] = metrics.summarize(texts[i::2], refs, nll[i::2])
    rows = []
    for j, e in enumerate(examples):
        b, t = metrics.rouge_l(texts[2 * j], e.reference), metrics.rouge_l(texts[2 * j + 1], e.reference)
        rows.append({"prompt": e.prompt, "reference": e.reference, "base": texts[2 * j], "tuned": texts[2 * j + 1],
                     "rougeL_base": round(b, 4), "rougeL_tuned": round(t, 4), "delta": round(t - b, 4)})
    differ = sorted((r for r in rows if r["base"] != r["tuned"]), key=lambda r: -abs(r["delta"]))[:top_k]
    report = {**out, "source": str(source), "split": split, "checkpoint": checkpoint, "base_label": base.label,
              "tuned_label": tuned.label, "seconds": round(time.monotonic() - started, 1),
              "max_new_tokens": settings.max_new_tokens, "differ_most": differ, "examples": rows}
    if save:
        (run / "eval_results.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    report_progress(1.0, "Done")
    return report


def lm_eval_available() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def run_lm_eval(run_dir: str | Path, tasks: list[str], limit: int | None = None,
                checkpoint: str = "final") -> dict[str, Any]:
    """lm-evaluation-harness tasks on base and fine-tuned, when it is installed and its data is local."""
    if not lm_eval_available():
        raise StudioError("lm-eval is not installed: pip install lm-eval (task data must already be in "
                          "the local datasets cache; the studio never downloads).")
    chat.env_offline()
    import lm_eval

    base, tuned = chat.base_side(run_dir), chat.run_side(run_dir, checkpoint)
    results = {}
    for name, side in (("base", base), ("tuned", tuned)):
        args = f"pretrained={side.base}" + (f",peft={side.adapter}" if side.adapter else "")
        try:
            res = lm_eval.simple_evaluate(model="hf", model_args=args, tasks=list(tasks), limit=limit)
        except Exception as e:  # the harness raises many kinds; all mean "could not run this task here"
            raise StudioError(f"lm-eval could not run {', '.join(tasks)}: {type(e).__name__}: {e}. "
                              "Its datasets must be available offline.") from None
        results[name] = res.get("results", {})
    return results


# -- prompt sets ------------------------------------------------------------------------------------------
def list_prompt_sets(run_dir: str | Path | None = None) -> list[Path]:
    found = sorted((paths.assets_dir() / "prompts").glob("*.jsonl"))
    if run_dir:
        found += sorted(p for p in (Path(run_dir) / "prompts").glob("*.json*") if p.suffix in (".json", ".jsonl"))
    return found


def load_prompt_set(path: str | Path) -> list[Example]:
    path = Path(path)
    if not path.is_file():
        raise StudioError(f"Prompt set not found: {path}. Put .jsonl files in assets/prompts/ or RUN_DIR/prompts/.")
    examples = [e for e in (row_to_example(r) for r in _read_rows(path)) if e]
    if not examples:
        raise StudioError(f"{path} has no prompts. Each line should be {{\"prompt\": \"...\"}} or {{\"messages\": [...]}}.")
    return examples


def run_prompt_set(cache: chat.ModelCache, left: chat.Side, right: chat.Side, path: str | Path,
                   settings: chat.GenSettings, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every prompt of the set through both sides (batched); one result row per prompt."""
    examples = load_prompt_set(path)
    system = [{"role": "system", "content": settings.system_prompt}] if settings.system_prompt.strip() else []
    convs = [(system if e.conv[0]["role"] != "system" else []) + e.conv for e in examples for _ in (0, 1)]
    texts = chat.generate_rows(cache, [left, right] * len(examples), convs, settings,
                               progress=lambda d, t: progress and progress(d / t, f"{d // 2}/{t // 2} prompts"))
    rows = []
    for j, e in enumerate(examples):
        row = {"#": j + 1, "prompt": e.prompt, "left": texts[2 * j], "right": texts[2 * j + 1],
               "rougeL": ""}
        if e.reference:  # sets may carry expected answers: score both sides against them
            row["rougeL"] = (f"{metrics.rouge_l(texts[2 * j], e.reference):.2f} / "
                             f"{metrics.rouge_l(texts[2 * j + 1], e.reference):.2f}")
        rows.append(row)
    return rows


# -- blind A/B votes ------------------------------------------------------------------------------------
def blind_order(rng: random.Random | None = None) -> list[int]:
    """Which side shows as A and which as B: [0, 1] or [1, 0], at random."""
    order = [0, 1]
    (rng or random.Random()).shuffle(order)
    return order


def record_vote(run_dir: str | Path, choice: str, shown: list[chat.Side], texts: list[str], prompt: str,
                settings: chat.GenSettings | None = None) -> dict[str, Any]:
    """Append one vote to RUN_DIR/votes.jsonl; `shown` are the sides as A and B, choice is A, B or tie."""
    if choice not in ("A", "B", "tie"):
        raise StudioError(f"A vote must be A, B or tie, not {choice!r}.")
    if len(shown) != 2 or len(texts) != 2 or not any(texts):
        raise StudioError("Nothing to vote on yet: send a prompt first.")
    winner = "tie" if choice == "tie" else shown[0 if choice == "A" else 1].label
    rec = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "prompt": prompt, "choice": choice, "winner": winner,
           "A": {"label": shown[0].label, "text": texts[0]}, "B": {"label": shown[1].label, "text": texts[1]},
           "settings": asdict(settings) if settings else None}
    with open(Path(run_dir) / "votes.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return rec


def vote_tally(run_dir: str | Path) -> dict[str, int]:
    """Votes per winner label (and 'tie') from RUN_DIR/votes.jsonl."""
    path = Path(run_dir) / "votes.jsonl"
    tally: dict[str, int] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                w = json.loads(line).get("winner", "?")
            except json.JSONDecodeError:
                continue  # a line cut off by a crash: skip it
            tally[w] = tally.get(w, 0) + 1
    return tally


# -- CLI ---------------------------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m studio eval",
                                 description="Evaluate base vs fine-tuned on a run's held-out split.")
    ap.add_argument("run_dir")
    ap.add_argument("--split", default="validation", help="validation (held-out rows, default) or train")
    ap.add_argument("--limit", type=int, default=0, help="evaluate only the first N examples (0 = all)")
    ap.add_argument("--checkpoint", default="final", help="final (default) or checkpoint-N")
    ap.add_argument("--max-new-tokens", type=int, default=128, help="answer length cap, tokens")
    ap.add_argument("--lm-eval", default="", help="comma list of lm-eval tasks (needs lm-eval + local data)")
    ap.add_argument("--json", action="store_true", help='print {"base": {...}, "tuned": {...}} as JSON')
    args = ap.parse_args(argv)
    chat.env_offline()
    for k in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(k, "1")  # our own progress lines are enough on stderr
    if not (Path(args.run_dir) / "config.yaml").is_file():
        raise StudioError(f"{args.run_dir} is not a run folder (no config.yaml). List runs: python -m studio runs")

    def show(frac: float, msg: str) -> None:
        print(f"[{frac * 100:5.1f}%] {msg}", file=sys.stderr, flush=True)

    rep = evaluate_run(args.run_dir, split=args.split, limit=args.limit, checkpoint=args.checkpoint,
                       max_new_tokens=args.max_new_tokens, progress=show)
    out: dict[str, Any] = {"base": rep["base"], "tuned": rep["tuned"]}
    if args.lm_eval:
        out["lm_eval"] = run_lm_eval(args.run_dir, [t for t in args.lm_eval.split(",") if t], args.limit or None,
                                     args.checkpoint)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{rep['source']}: {rep['base']['n']} examples ({rep['seconds']} s)")
    print(f"{'metric':<12}{'base':>10}{'tuned':>10}")
    for k in ("perplexity", "rougeL", "bleu", "exact_match"):
        b, t = rep["base"][k], rep["tuned"][k]
        print(f"{k:<12}{b if b is None else round(b, 4):>10}{t if t is None else round(t, 4):>10}")
    for r in rep["differ_most"][:3]:
        print(f"\n> {r['prompt']}\n  reference: {r['reference']}\n  base:      {r['base']}\n  tuned:     {r['tuned']}")
    print(f"\nFull report: {Path(args.run_dir) / 'eval_results.json'}")
    return 0
