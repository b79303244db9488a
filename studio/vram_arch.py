"""Model shapes for the memory estimate: a built-in table of common architectures, and readers
for config.json files, model folders and (online only) hub ids.

Owns `ModelShape` (the few numbers memory depends on: hidden size, layers, heads, vocabulary...)
and `resolve_shape(name)`. It does not estimate anything (studio.vram does) and never downloads
weights: a hub id costs one small config.json request, and offline that fails with a clear message.
The table's numbers are those of each model's public config.json.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from studio.errors import StudioError


@dataclass(frozen=True)
class ModelShape:
    name: str
    model_type: str  # llama, qwen2, mistral, phi3, gemma2... (decides norms, MLP and attention details)
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool  # input and output embeddings share one matrix
    qkv_bias: bool = False
    norms_per_layer: int = 2  # Gemma 2 has 4 (pre and post norms around attention and MLP)
    final_softcap: float | None = None
    attn_softcap: float | None = None  # Gemma 2: needs eager attention (scores are materialised)

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def linear_in_out(self) -> list[tuple[str, int, int]]:
        """(name, in_features, out_features) of each projection of one decoder layer."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        if self.model_type == "phi3":  # fused projections: fewer, wider LoRA targets
            return [("qkv_proj", h, q + 2 * kv), ("o_proj", q, h), ("gate_up_proj", h, 2 * i),
                    ("down_proj", i, h)]
        return [("q_proj", h, q), ("k_proj", h, kv), ("v_proj", h, kv), ("o_proj", q, h),
                ("gate_proj", h, i), ("up_proj", h, i), ("down_proj", i, h)]

    def layer_linear_params(self) -> int:
        return sum(a * b for _, a, b in self.linear_in_out())

    def layer_other_params(self) -> int:
        """Norm weights and biases of one layer (not quantized by bitsandbytes)."""
        bias = (self.q_dim + 2 * self.kv_dim) if self.qkv_bias else 0
        return self.norms_per_layer * self.hidden + bias

    def embedding_params(self) -> int:
        """Input embedding plus a separate output head when the two are not tied."""
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def params(self) -> int:
        return (self.layers * (self.layer_linear_params() + self.layer_other_params())
                + self.embedding_params() + self.hidden)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "params": self.params()}


def _s(name, mt, h, i, n, heads, kv, vocab, tied, hd=None, **kw) -> ModelShape:
    return ModelShape(name, mt, h, i, n, heads, kv, hd or h // heads, vocab, tied, **kw)


# Public config.json values. Gemma 2: head_dim 256 (2B/9B) and 128 (27B), softcaps 30/50.
_G2 = dict(norms_per_layer=4, final_softcap=30.0, attn_softcap=50.0)
BUILTIN: dict[str, ModelShape] = {s.name: s for s in [
    _s("Qwen2.5-0.5B", "qwen2", 896, 4864, 24, 14, 2, 151936, True, qkv_bias=True),
    _s("Qwen2.5-1.5B", "qwen2", 1536, 8960, 28, 12, 2, 151936, True, qkv_bias=True),
    _s("Qwen2.5-3B", "qwen2", 2048, 11008, 36, 16, 2, 151936, True, qkv_bias=True),
    _s("Qwen2.5-7B", "qwen2", 3584, 18944, 28, 28, 4, 152064, False, qkv_bias=True),
    _s("Qwen2.5-14B", "qwen2", 5120, 13824, 48, 40, 8, 152064, False, qkv_bias=True),
    _s("Qwen2.5-32B", "qwen2", 5120, 27648, 64, 40, 8, 152064, False, qkv_bias=True),
    _s("Llama-3.2-1B", "llama", 2048, 8192, 16, 32, 8, 128256, True, hd=64),
    _s("Llama-3.2-3B", "llama", 3072, 8192, 28, 24, 8, 128256, True, hd=128),
    _s("Llama-3.1-8B", "llama", 4096, 14336, 32, 32, 8, 128256, False),
    _s("Llama-3.1-70B", "llama", 8192, 28672, 80, 64, 8, 128256, False),
    _s("Mistral-7B", "mistral", 4096, 14336, 32, 32, 8, 32768, False),
    _s("Phi-3-mini", "phi3", 3072, 8192, 32, 32, 32, 32064, False),
    _s("Phi-3-medium", "phi3", 5120, 17920, 40, 40, 10, 32064, False),
    _s("Gemma-2-2B", "gemma2", 2304, 9216, 26, 8, 4, 256000, True, hd=256, **_G2),
    _s("Gemma-2-9B", "gemma2", 3584, 14336, 42, 16, 8, 256000, True, hd=256, **_G2),
    _s("Gemma-2-27B", "gemma2", 4608, 36864, 46, 32, 16, 256000, True, hd=128, **_G2),
    _s("SmolLM2-135M", "llama", 576, 1536, 30, 9, 3, 49152, True),
    _s("SmolLM2-360M", "llama", 960, 2560, 32, 15, 5, 49152, True),
    _s("SmolLM2-1.7B", "llama", 2048, 8192, 24, 32, 32, 49152, True),
]}

# Extra spellings people type: "llama 3.2 1b", "Meta-Llama-3.1-8B", "qwen2.5-7b-instruct"...
_ALIASES = {"llama318b": "Llama-3.1-8B", "llama3170b": "Llama-3.1-70B", "llama38b": "Llama-3.1-8B",
            "llama370b": "Llama-3.1-70B", "llama321b": "Llama-3.2-1B", "llama323b": "Llama-3.2-3B",
            "llama3370b": "Llama-3.1-70B", "mistral7bv03": "Mistral-7B", "mistral7bv01": "Mistral-7B",
            "phi3mini4k": "Phi-3-mini", "phi3mini128k": "Phi-3-mini", "phi3medium4k": "Phi-3-medium",
            "phi3medium128k": "Phi-3-medium", "gemma22b": "Gemma-2-2B", "gemma29b": "Gemma-2-9B",
            "gemma227b": "Gemma-2-27B"}
_SUFFIXES = ("instruct", "it", "chat", "base", "hf")


def _key(text: str) -> str:
    text = text.strip().lower().split("/")[-1]
    text = text.replace("meta-llama-", "llama-").replace("meta-", "")
    key = re.sub(r"[^a-z0-9.]", "", text).replace(".", "")
    for suf in _SUFFIXES:  # "qwen25-7binstruct" -> "qwen25-7b"
        if key.endswith(suf) and len(key) > len(suf) + 3:
            key = key[: -len(suf)]
    return key


def builtin_shape(name: str) -> ModelShape | None:
    """The table entry for a name or hub id of a known model (any org, -Instruct/-it suffix)."""
    k = _key(name)
    for shape_name, shape in BUILTIN.items():
        if _key(shape_name) == k:
            return shape
    if k in _ALIASES:
        return BUILTIN[_ALIASES[k]]
    return None


def shape_from_config(cfg: dict[str, Any], name: str = "model") -> ModelShape:
    """A ModelShape from the dict of a config.json (text_config is used for vision-language models)."""
    c = cfg.get("text_config") or cfg
    try:
        h = int(c["hidden_size"])
        heads = int(c["num_attention_heads"])
        layers = int(c["num_hidden_layers"])
        vocab = int(c.get("vocab_size") or cfg["vocab_size"])
    except (KeyError, TypeError, ValueError) as e:
        raise StudioError(f"The config of '{name}' has no {e} field: it does not look like a decoder "
                          "language model. Give a causal LM config (Llama, Qwen, Mistral, Gemma, Phi...).") from None
    mt = str(c.get("model_type") or cfg.get("model_type") or "llama")
    inter = int(c.get("intermediate_size") or 4 * h)
    hd = int(c.get("head_dim") or h // heads)
    tied = bool(cfg.get("tie_word_embeddings", c.get("tie_word_embeddings", mt in ("gemma", "gemma2"))))
    g2 = mt in ("gemma2", "gemma3", "gemma3_text")
    return ModelShape(
        name=name, model_type=mt, hidden=h, intermediate=inter, layers=layers, heads=heads,
        kv_heads=int(c.get("num_key_value_heads") or heads), head_dim=hd, vocab=vocab, tied=tied,
        qkv_bias=bool(c.get("attention_bias", mt in ("qwen2",))),
        norms_per_layer=4 if g2 else 2,
        final_softcap=c.get("final_logit_softcapping"), attn_softcap=c.get("attn_logit_softcapping"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StudioError(f"Could not read {path}: {e}. Give a valid config.json.") from None


def resolve_shape(name_or_path: str) -> ModelShape:
    """The shape of a model given as a built-in name, a config.json, a model folder or a hub id."""
    name = (name_or_path or "").strip()
    if not name:
        raise StudioError("No model given: pick a built-in architecture (e.g. Qwen2.5-0.5B), a model "
                          "folder or a config.json.")
    p = Path(name).expanduser()
    if p.is_file():
        return shape_from_config(_read_json(p), p.parent.name if p.name == "config.json" else p.stem)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise StudioError(f"The folder {p} has no config.json: give a model folder saved with "
                              "save_pretrained, or a built-in architecture name.")
        return shape_from_config(_read_json(p / "config.json"), p.name)
    if (repo_local := _repo_relative(name)) is not None:
        return resolve_shape(str(repo_local))
    known = builtin_shape(name)
    if known is not None:
        return known
    if "/" in name and not name.startswith((".", "/", "~")) and name.count("/") == 1:
        return _hub_shape(name)
    raise StudioError(f"Unknown model '{name}'. Use a built-in architecture ({', '.join(BUILTIN)}), a "
                      "local model folder, a config.json path, or a hub id like Qwen/Qwen2.5-0.5B.")


def _repo_relative(name: str) -> Path | None:
    from studio import paths

    cand = paths.REPO_ROOT / name
    return cand if cand.exists() and not Path(name).is_absolute() else None


def _hub_shape(repo_id: str) -> ModelShape:
    """Only the config.json of a hub model (a few kB), through transformers; offline this fails."""
    import os
    import socket

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    proxied = any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY"))
    if not offline and not proxied:
        try:  # fail in ~1 s instead of the hub client's ~25 s of retries
            socket.create_connection(("huggingface.co", 443), timeout=2).close()
        except OSError:
            offline = True
    if offline:
        raise StudioError(
            f"Cannot look up '{repo_id}': this machine is offline (no hub access). Give a local model "
            "folder, the path of its config.json, or a built-in architecture name such as "
            "Qwen2.5-7B or Llama-3.1-8B.")
    try:
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(repo_id)
    except Exception as e:  # offline, gated, typo: all end here
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise StudioError(
            f"Could not fetch the config of '{repo_id}' from the hub ({first}). Offline, give a local "
            "model folder, a config.json path, or a built-in architecture name such as "
            "Qwen2.5-7B or Llama-3.1-8B.") from None
    return shape_from_config(cfg.to_dict(), repo_id)
