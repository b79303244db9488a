"""The model cache shared by every chat and evaluation: load once, serve many, evict when short.

Owns `ModelCache` (models keyed by (base, adapter set), loaded lazily under one lock, an entry
with more adapters on the same base reused for a subset, least recently used ones evicted past
`max_models` or when free RAM/VRAM is short), `LoadedModel` (one entry,
with its own lock: peft's per-row adapter routing installs module hooks for a whole forward or
`generate` call, so two uses of one model must not overlap; concurrent users queue on it) and
`Cancels` (per-session stop flags). It does not generate text (studio.chat does). Nothing heavy is
imported at module import time.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.errors import StudioError

if TYPE_CHECKING:
    from studio.chat import Side

GIB = 1024**3
BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclass
class LoadedModel:
    key: tuple
    model: Any
    tokenizer: Any
    names: dict[str, str]  # adapter folder -> peft adapter name
    mixed: bool  # per-row adapter_names supported (plain LoRA, no DoRA / prompt tuning)
    device: str
    nbytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)

    def name_for(self, side: Side) -> str:
        return self.names[side.adapter] if side.adapter else BASE


def _weights_bytes(folder: str) -> int:
    p = Path(folder)
    if not p.is_dir():
        return 0
    return sum(f.stat().st_size for f in p.glob("*") if f.suffix in (".safetensors", ".bin"))


def _free_bytes(device: str) -> int | None:
    """Free memory where the model goes: VRAM via torch, RAM via /proc/meminfo (Linux)."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info()[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class ModelCache:
    """Loaded models shared by every session (it lives in the app, never in a gr.State)."""

    def __init__(self, max_models: int = 2, headroom_gib: float = 1.0, device: str | None = None):
        self.max_models = max_models
        self.headroom = int(headroom_gib * GIB)  # kept free for activations and the KV cache
        self._device = device
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, LoadedModel] = OrderedDict()

    def device(self) -> str:
        if self._device is None:
            import torch

            self._device = "cuda" if torch.cuda.is_available() else "cpu"
        return self._device

    def keys(self) -> list[tuple]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        self._release()

    def get(self, base: str, adapters: tuple[str, ...] = ()) -> LoadedModel:
        key = (base, tuple(sorted(set(adapters))))
        with self._lock:  # loads queue here: one at a time, never the same model twice
            # The exact key, else the smallest loaded superset of these adapters on the same base.
            found = [k for k in self._entries if k[0] == base and set(key[1]) <= set(k[1])]
            if found:
                k = key if key in found else min(found, key=lambda k: len(k[1]))
                self._entries.move_to_end(k)
                return self._entries[k]
            self._make_room(_weights_bytes(base))
            entry = self._load(key)
            self._entries[key] = entry
            return entry

    def _make_room(self, need: int) -> None:
        evicted = False
        while self._entries and len(self._entries) >= self.max_models:
            self._entries.popitem(last=False)
            evicted = True
        while self._entries:
            free = _free_bytes(self.device())
            if free is None or free >= need + self.headroom:
                break
            self._entries.popitem(last=False)  # a model still generating keeps its own reference
            evicted = True
        if evicted:
            self._release()

    def _release(self) -> None:
        gc.collect()
        if self._device and self._device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def _load(self, key: tuple) -> LoadedModel:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        base, adapters = key
        device = self.device()
        dtype = torch.float32
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        tok_src = next((a for a in adapters if (Path(a) / "tokenizer_config.json").is_file()), base)
        try:
            tok = AutoTokenizer.from_pretrained(tok_src)
            # On a GPU, weights go straight to it (no full copy in RAM first).
            model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, device_map=device if device != "cpu" else None)
            model.to(device)
        except (OSError, ValueError) as e:
            raise StudioError(f"Could not load the model '{base}': {e}. It must be a local folder or "
                              "already in the Hugging Face cache (the studio never downloads).") from None
        tok.padding_side = "left"  # generation continues at the right edge of every row
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        names: dict[str, str] = {}
        mixed = True
        if adapters:
            from peft import PeftModel

            try:
                for i, path in enumerate(adapters):
                    name = "default" if i == 0 else f"a{i}"
                    if i == 0:
                        model = PeftModel.from_pretrained(model, path, adapter_name=name)
                    else:
                        model.load_adapter(path, adapter_name=name)
                    names[path] = name
            except (OSError, ValueError, KeyError, RuntimeError) as e:
                why = str(e).strip().splitlines()
                detail = "its weight shapes do not match" if "size mismatch" in str(e) else (why[0][:300] if why else "")
                raise StudioError(f"Could not load the adapter {path} onto the base model {base}: {detail}. "
                                  "The adapter must be trained from this exact base model; check model.name_or_path "
                                  "in the run's config.yaml (the demo model changes when it is rebuilt).") from None
            for cfg in model.peft_config.values():
                kind = getattr(getattr(cfg, "peft_type", None), "value", None)
                if kind != "LORA" or getattr(cfg, "use_dora", False):
                    mixed = False  # peft routes rows per adapter only for plain LoRA
        model.eval()
        return LoadedModel(key, model, tok, names, mixed, device, _weights_bytes(base))


class Cancels:
    """Stop flags per browser session: the Stop button sets one, the running generation sees it."""

    def __init__(self, keep: int = 512):
        self._lock = threading.Lock()
        self._keep = keep  # sessions remembered; older ones have long finished generating
        self._events: OrderedDict[str, threading.Event] = OrderedDict()

    def fresh(self, key: str) -> threading.Event:
        with self._lock:
            self._events.pop(key, None)
            self._events[key] = threading.Event()
            while len(self._events) > self._keep:
                self._events.popitem(last=False)
            return self._events[key]

    def cancel(self, key: str) -> None:
        with self._lock:
            ev = self._events.get(key)
        if ev:
            ev.set()
