"""Chat with base and fine-tuned models: which weights answer, batched generation, streaming.

Owns `Side` (a base model plus an optional LoRA adapter) and how a run folder or one of its
checkpoints becomes a Side; `generate_rows` / `stream_rows`, which answer many rows
(conversations) at once. Rows that share a base model run in ONE batch on ONE copy of the base
weights through peft's `adapter_names=["__base__", "default"]`; `disable_adapter()` is never used
across threads (only as a fallback for adapters peft cannot route per row, and then under the
model's lock). Streaming forwards every exception of the generate thread to the consumer.

It does not own the model cache (studio.model_cache, re-exported here), the UI
(studio.ui.compare_tab), metrics, perplexity or prompt sets (studio.evaluate). Nothing heavy is
imported at module import time.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from studio.errors import StudioError
from studio.chat_stream import eos_ids, make_streamer, new_ids, stop_criteria
from studio.model_cache import BASE, Cancels, LoadedModel, ModelCache  # noqa: F401 (re-exported)


# -- what answers: sides and runs -----------------------------------------------------------------
@dataclass(frozen=True)
class Side:
    base: str  # local model folder (resolved) or hub id
    adapter: str | None = None  # LoRA adapter folder; None = the base weights alone
    label: str = "base"


def resolve_model(name_or_path: str) -> str:
    from studio.train.build import resolve_model_path  # one rule for relative paths and the demo

    return resolve_model_path(name_or_path)


def _adapter_dir(folder: Path) -> Path | None:
    for cand in (folder, folder / "adapter"):
        if (cand / "adapter_config.json").is_file():
            return cand
    return None


def _is_full_model(folder: Path) -> bool:
    return (folder / "config.json").is_file() and _adapter_dir(folder) is None


def list_checkpoints(run_dir: str | Path) -> list[str]:
    """'final' (adapter/ or model/) when it exists, then checkpoint-N newest first."""
    run = Path(run_dir)
    out = ["final"] if (_adapter_dir(run / "adapter") or _is_full_model(run / "model")) else []
    ckpts = [p for p in (run / "checkpoints").glob("checkpoint-*")
             if _adapter_dir(p) or _is_full_model(p)]
    ckpts.sort(key=lambda p: int(p.name.rsplit("-", 1)[-1]) if p.name.rsplit("-", 1)[-1].isdigit() else -1)
    return out + [p.name for p in reversed(ckpts)]


def base_side(run_dir: str | Path) -> Side:
    """The model the run started from, without its adapter."""
    from studio.config import RunConfig

    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise StudioError(f"{run} is not a run folder (no config.yaml). Pick a run from the list.")
    cfg = RunConfig.load(run / "config.yaml")
    return Side(resolve_model(cfg.model.name_or_path), None, f"base ({Path(cfg.model.name_or_path).name})")


def run_side(run_dir: str | Path, checkpoint: str = "final") -> Side:
    """The fine-tuned weights of a run: its final adapter/model or one of its checkpoints."""
    run = Path(run_dir)
    base = base_side(run)
    checkpoint = checkpoint or "final"
    folders = [run / "adapter", run / "model"] if checkpoint == "final" else [run / "checkpoints" / checkpoint]
    for folder in folders:
        ad = _adapter_dir(folder)
        if ad:
            return Side(base.base, str(ad.resolve()), f"{run.name}@{checkpoint}")
        if _is_full_model(folder):  # full fine-tuning: the folder is a whole model
            return Side(str(folder.resolve()), None, f"{run.name}@{checkpoint}")
    have = ", ".join(list_checkpoints(run)) or "none yet"
    raise StudioError(f"Run {run.name} has no '{checkpoint}' weights (available: {have}). "
                      "Wait for the first checkpoint or pick another one.")


def describe_pair(left: Side, right: Side) -> str:
    if left.base == right.base:
        return "One copy of the base weights serves both sides (peft per-row adapters in one batch)."
    return ("The two sides have different base weights, so two models are loaded and the sides "
            "are generated one after the other (same prompt, settings and seed).")


# -- settings and conversations -------------------------------------------------------------------
@dataclass
class GenSettings:
    system_prompt: str = ""
    temperature: float = 0.7  # 0 = greedy (deterministic)
    top_p: float = 0.9
    max_new_tokens: int = 256  # tokens per answer
    seed: int = 0  # the same seed goes to both sides
    stop: list[str] = field(default_factory=list)  # extra stop strings, cut from the answer

    def check(self) -> "GenSettings":
        p = []
        if not 0 <= self.temperature <= 5:
            p.append(f"temperature is {self.temperature}; use 0 (greedy) to 5.")
        if not 0 < self.top_p <= 1:
            p.append(f"top-p is {self.top_p}; use a value in (0, 1].")
        if not 1 <= int(self.max_new_tokens) <= 8192:
            p.append(f"max new tokens is {self.max_new_tokens}; use 1 to 8192.")
        if p:
            raise StudioError("Generation settings: " + " ".join(p), p)
        return self


def content_text(content: Any) -> str:
    """Message content as a string: gradio 6 sends lists of {"type": "text", "text": ...} parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, (list, tuple)):
        return "".join(content_text(c) for c in content)
    return str(content)


def build_conversation(system: str, history: list | None, user: str | None = None) -> list[dict[str, str]]:
    """Chat-template messages: optional system prompt, the past turns (strings only), the new turn."""
    msgs = [{"role": "system", "content": system.strip()}] if system and system.strip() else []
    for m in history or []:
        role = m.get("role") if isinstance(m, dict) else None
        if role in ("user", "assistant", "system"):
            msgs.append({"role": role, "content": content_text(m.get("content"))})
    if user is not None:
        msgs.append({"role": "user", "content": user})
    return msgs


def trim_stop(text: str, stops: list[str]) -> str:
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return text[:cut] if cut >= 0 else text


# -- batched generation ----------------------------------------------------------------------------
def groups(cache: ModelCache, sides: list[Side]) -> list[tuple[LoadedModel, list[int]]]:
    """Rows grouped by base model; each group is served by one cache entry with all its adapters."""
    by_base: dict[str, list[int]] = {}
    for i, s in enumerate(sides):
        by_base.setdefault(s.base, []).append(i)
    out = []
    for base, rows in by_base.items():
        adapters = tuple(sides[i].adapter for i in rows if sides[i].adapter)
        out.append((cache.get(base, adapters), rows))
    return out


def chunks(entry: LoadedModel, sides: list[Side], rows: list[int], size: int) -> list[list[int]]:
    """Sub-batches: any mix of adapters where peft supports it, else one adapter per batch."""
    if entry.mixed:
        return [rows[i:i + size] for i in range(0, len(rows), size)]
    out = []
    for name in dict.fromkeys(entry.name_for(sides[r]) for r in rows):
        same = [r for r in rows if entry.name_for(sides[r]) == name]
        out += [same[i:i + size] for i in range(0, len(same), size)]
    return out


def routing(entry: LoadedModel, names: list[str]):
    """(extra forward kwargs, context) that make each row use its adapter; call under entry.lock."""
    if not entry.names:
        return {}, contextlib.nullcontext()
    if entry.mixed:
        return {"adapter_names": names}, contextlib.nullcontext()
    if names[0] == BASE:  # safe only because entry.lock serialises every use of this model
        return {}, entry.model.disable_adapter()
    entry.model.set_adapter(names[0])
    return {}, contextlib.nullcontext()


def prompt_text(tok, conv: list[dict], add_generation_prompt: bool = True) -> str:
    if getattr(tok, "chat_template", None):
        try:
            return tok.apply_chat_template(conv, add_generation_prompt=add_generation_prompt, tokenize=False)
        except Exception as e:  # jinja raises its own types, e.g. "system role not supported"
            raise StudioError(f"The model's chat template rejected the conversation: {e}. "
                              "Leave the system prompt empty or press Clear.") from None
    # No template (a raw pre-trained model): a plain transcript both sides read the same way.
    text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in conv)
    return text + ("Assistant:" if add_generation_prompt else "")


def _encode(entry: LoadedModel, convs: list[list[dict]], max_new: int):
    tok = entry.tokenizer
    texts = [prompt_text(tok, c) for c in convs]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=not tok.chat_template)
    limit = getattr(getattr(entry.model, "config", None), "max_position_embeddings", None)
    if limit and enc["input_ids"].shape[1] + max_new > limit:
        raise StudioError(f"The conversation is {enc['input_ids'].shape[1]} tokens; with {max_new} new "
                          f"tokens it exceeds the model's {limit}. Press Clear or lower max new tokens.")
    return {k: v.to(entry.device) for k, v in enc.items()}


def _execute(cache: ModelCache, sides: list[Side], convs: list[list[dict]], s: GenSettings,
             q: queue.Queue | None = None, cancel: threading.Event | None = None,
             batch_rows: int = 16, progress: Callable[[int, int], None] | None = None) -> list[tuple[list[int], str]]:
    """Generate every row: (new token ids, text) per row. Streams text to `q` as it comes if given."""
    import torch

    s.check()
    if len(sides) != len(convs):
        raise StudioError("Internal: one conversation per side is needed.")
    res: list[tuple[list[int], str]] = [([], "") for _ in sides]
    done = 0
    for entry, rows in groups(cache, sides):
        for chunk in chunks(entry, sides, rows, batch_rows):
            if cancel is not None and cancel.is_set():
                return res
            enc = _encode(entry, [convs[r] for r in chunk], s.max_new_tokens)
            eos = eos_ids(entry)
            kw: dict[str, Any] = dict(max_new_tokens=int(s.max_new_tokens), pad_token_id=entry.tokenizer.pad_token_id,
                                      stopping_criteria=stop_criteria(cancel))
            if s.temperature > 0:
                kw.update(do_sample=True, temperature=float(s.temperature), top_p=float(s.top_p))
            else:
                kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if s.stop:
                kw.update(stop_strings=list(s.stop), tokenizer=entry.tokenizer)
            if q is not None:
                kw["streamer"] = make_streamer(entry.tokenizer, chunk, eos, q)
            if not entry.lock.acquire(blocking=False):
                if q is not None:
                    q.put(("note", None, "Waiting for the model: another generation is running (you are queued)."))
                entry.lock.acquire()
                if q is not None:
                    q.put(("note", None, ""))  # our turn: the streaming text speaks for itself
            try:
                extra, ctx = routing(entry, [entry.name_for(sides[r]) for r in chunk])
                torch.manual_seed(int(s.seed))  # same seed for both sides, under the lock
                with ctx, torch.inference_mode():
                    out = entry.model.generate(**enc, **extra, **kw)
            finally:
                entry.lock.release()
            for r, row in zip(chunk, new_ids(out, enc["input_ids"].shape[1], eos)):
                res[r] = (row, entry.tokenizer.decode(row, skip_special_tokens=True))
            done += len(chunk)
            if progress:
                progress(done, len(sides))
    return res


def generate_ids(cache: ModelCache, sides: list[Side], convs: list[list[dict]], settings: GenSettings,
                 batch_rows: int = 16) -> list[list[int]]:
    """The generated token ids per row (for exact comparisons in tests and benchmarks)."""
    return [ids for ids, _ in _execute(cache, sides, convs, settings, batch_rows=batch_rows)]


def generate_rows(cache: ModelCache, sides: list[Side], convs: list[list[dict]], settings: GenSettings,
                  batch_rows: int = 16, progress: Callable[[int, int], None] | None = None) -> list[str]:
    """One answer per (side, conversation) row, without streaming."""
    out = _execute(cache, sides, convs, settings, batch_rows=batch_rows, progress=progress)
    return [trim_stop(text, settings.stop) for _, text in out]


def _explain(e: BaseException) -> str:
    if isinstance(e, StudioError):
        return str(e)
    if "out of memory" in str(e).lower():
        return ("Out of memory while generating: lower max new tokens, clear the chat, or close other "
                "runs that hold GPU memory.")
    return f"Generation failed: {type(e).__name__}: {e}"


def stream_rows(cache: ModelCache, sides: list[Side], convs: list[list[dict]], settings: GenSettings,
                cancel: threading.Event | None = None) -> Iterator[tuple[list[str], str]]:
    """Yield (texts so far, note) while all rows generate in a background thread.

    Exceptions from that thread are re-raised here as StudioError. Closing the iterator (or
    setting `cancel`) stops generation at the next token and frees the model for the next user.
    """
    q: queue.Queue = queue.Queue()
    stop = threading.Event()
    if cancel is not None and cancel.is_set():
        return

    class _Either:  # stop when the consumer leaves OR the user presses Stop
        def is_set(self) -> bool:
            return stop.is_set() or bool(cancel and cancel.is_set())

    def work():
        try:
            _execute(cache, sides, convs, settings, q=q, cancel=_Either())  # type: ignore[arg-type]
            q.put(("done", None, None))
        except BaseException as e:  # forwarded: the consumer raises it
            q.put(("error", None, e))

    thread = threading.Thread(target=work, name="studio-generate", daemon=True)
    texts = [""] * len(sides)
    note = ""
    thread.start()
    try:
        while True:
            try:
                kind, row, value = q.get(timeout=0.5)
            except queue.Empty:
                if not thread.is_alive() and q.empty():
                    raise StudioError("Generation stopped without a result. Try again.") from None
                continue
            if kind == "delta":
                texts[row] += value
            elif kind == "set":
                texts[row] = value
            elif kind == "note":
                note = value
            elif kind == "error":
                raise StudioError(_explain(value)) from value
            elif kind == "done":
                yield [trim_stop(t, settings.stop) for t in texts], ""
                return
            yield [trim_stop(t, settings.stop) for t in texts], note
    finally:
        stop.set()


def list_compare_runs(root: str | Path) -> list[tuple[str, str]]:
    """(label, run folder) of runs that have weights to compare, newest first."""
    from studio.runs import list_runs

    out = []
    for r in list_runs(root):
        if list_checkpoints(r["run_dir"]):
            out.append((f"{r['name']} ({r['state']})", r["run_dir"]))
    return out


def env_offline() -> None:
    """Make sure nothing tries the network (the studio is offline by design)."""
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(k, "1")
