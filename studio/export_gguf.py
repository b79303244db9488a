"""GGUF writing and read-back verification for llama- and qwen2-architecture models.

Owns the conversion of a merged Hugging Face state dict into one GGUF file with the `gguf`
package: tensor names through gguf's own name map, llama's q/k row permutation, f16 / bf16 /
q8_0 / q4_0 encoding, hyperparameters, the byte-level BPE vocab (tokens, types, merges,
special ids) and the chat template. `verify_gguf` reads the file back and compares every
dequantized tensor with the weights it came from. It does not merge adapters, pick folders or
write Modelfiles (studio.export and studio.ollama do).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from studio.errors import StudioError

GGUF_DTYPES = ("f16", "bf16", "q8_0", "q4_0")
SUPPORTED_ARCHS = ("llama", "qwen2")  # config.model_type values

# Bytes per weight, used for the disk-space estimate (q8_0: 34 bytes per block of 32 weights,
# q4_0: 18 bytes per 32).
BYTES_PER_WEIGHT = {"f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}

# Tolerances of the read-back check, per stored type: (relative RMS error, max abs error as a
# fraction of the tensor's largest magnitude). Rounding to f16 keeps 11 significant bits, bf16 8;
# q8_0 steps are 1/127 of a 32-weight block's max, q4_0 steps 1/8 (plus clipping of one level).
TOLERANCE = {"F32": (1e-6, 1e-6), "F16": (1e-3, 1e-3), "BF16": (8e-3, 8e-3),
             "Q8_0": (1.5e-2, 1.2e-2), "Q4_0": (0.15, 0.2)}

ProgressFn = Callable[[float, str], None]

# The split regexes of two common byte-level BPE pre-tokenizers, so llama.cpp splits text the
# same way as the tokenizer the model was trained with (Llama 3 groups up to 3 digits).
_PRE_REGEX = {
    "llama-bpe": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}


@dataclass
class PlannedTensor:
    name: str  # GGUF name, e.g. blk.0.attn_q.weight
    source: str  # HF state-dict key (or a computed tensor's label)
    shape: tuple[int, ...]  # numpy (row-major) shape
    qtype: Any  # gguf.GGMLQuantizationType
    load: Callable[[], np.ndarray]  # float32 array in the layout GGUF stores

    @property
    def nbytes(self) -> int:
        import gguf

        n = math.prod(self.shape)
        if self.qtype == gguf.GGMLQuantizationType.F32:
            return 4 * n
        if self.qtype == gguf.GGMLQuantizationType.F16:
            return 2 * n
        return math.prod(gguf.quant_shape_to_byte_shape(self.shape, self.qtype))


def check_supported(config: Any) -> None:
    mt = getattr(config, "model_type", "?")
    if mt not in SUPPORTED_ARCHS:
        raise StudioError(f"GGUF export supports the {' and '.join(SUPPORTED_ARCHS)} architectures; this "
                          f"model is '{mt}'. Export the merged model instead and convert it with "
                          "llama.cpp's convert_hf_to_gguf.py.")


def _rope(config: Any) -> dict[str, Any]:
    rp = dict(getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
    rp.setdefault("rope_theta", getattr(config, "rope_theta", None) or 10000.0)
    rp.setdefault("rope_type", rp.get("type", "default"))
    return rp


def _head_dim(config: Any) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _llama3_rope_factors(config: Any, rp: dict[str, Any]) -> np.ndarray:
    """Per-frequency divisors of Llama 3.1-style rope scaling (llama.cpp reads them as rope_freqs)."""
    dim, base, factor = _head_dim(config), float(rp["rope_theta"]), float(rp["factor"])
    low, high = float(rp.get("low_freq_factor", 1.0)), float(rp.get("high_freq_factor", 4.0))
    old_ctx = float(rp.get("original_max_position_embeddings", 8192))
    out = []
    for i in range(0, dim, 2):
        wavelen = 2 * math.pi * base ** (i / dim)
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def plan_tensors(state_dict: dict[str, Any], config: Any, dtype: str) -> list[PlannedTensor]:
    """Which GGUF tensor each weight becomes, with its stored type; raises on unmapped weights."""
    import gguf

    check_supported(config)
    if dtype not in GGUF_DTYPES:
        raise StudioError(f"GGUF type '{dtype}' is not offered; choose one of {', '.join(GGUF_DTYPES)}.")
    arch = gguf.MODEL_ARCH.LLAMA if config.model_type == "llama" else gguf.MODEL_ARCH.QWEN2
    tmap = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    hd = _head_dim(config)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    plan, unmapped = [], []
    for key, tensor in state_dict.items():
        if key.endswith("rotary_emb.inv_freq") or (tied and key == "lm_head.weight"):
            continue  # recomputed by llama.cpp / tied output reuses token_embd
        name = tmap.get_name(key, try_suffixes=(".weight", ".bias"))
        if name is None:
            unmapped.append(key)
            continue
        heads = None
        if config.model_type == "llama" and ".self_attn.q_proj." in key:
            heads = config.num_attention_heads
        elif config.model_type == "llama" and ".self_attn.k_proj." in key:
            heads = config.num_key_value_heads or config.num_attention_heads
        shape = tuple(tensor.shape)
        plan.append(PlannedTensor(name, key, shape, _qtype(name, shape, dtype),
                                  _loader(tensor, heads, hd)))
    if unmapped:
        raise StudioError(f"{len(unmapped)} weights have no GGUF name ({', '.join(unmapped[:5])}...). "
                          "This model's layout is not a plain llama/qwen2 one; export the merged model.")
    rp = _rope(config)
    if rp["rope_type"] == "llama3":
        factors = _llama3_rope_factors(config, rp)
        plan.append(PlannedTensor(gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", "rope factors",
                                  factors.shape, gguf.GGMLQuantizationType.F32, lambda: factors))
    return plan


def _loader(tensor: Any, heads: int | None, head_dim: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        arr = tensor.detach().to("cpu").float().numpy()
        if heads:
            # HF stores llama q/k rows so that rope rotates the two halves of each head; llama.cpp's
            # llama graph rotates adjacent pairs, so interleave the halves back.
            arr = arr.reshape(heads, 2, head_dim // 2, *arr.shape[1:]).swapaxes(1, 2).reshape(arr.shape)
        return np.ascontiguousarray(arr, dtype=np.float32)
    return load


def _qtype(name: str, shape: tuple[int, ...], dtype: str) -> Any:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as Q

    if len(shape) < 2:
        return Q.F32  # norms and biases stay exact: tiny, and precision-sensitive
    if dtype in ("f16", "bf16"):
        return Q.F16 if dtype == "f16" else Q.BF16
    # q4_0 keeps the output projection at q8_0: it shapes every logit, and costs one matrix.
    target = Q.Q8_0 if dtype == "q8_0" or name == "output.weight" else Q.Q4_0
    return target if shape[-1] % GGML_QUANT_SIZES[target][0] == 0 else Q.F16


def _encode(arr: np.ndarray, qtype: Any) -> np.ndarray:
    import gguf

    if qtype == gguf.GGMLQuantizationType.F32:
        return arr
    if qtype == gguf.GGMLQuantizationType.F16:
        return arr.astype(np.float16)
    return gguf.quants.quantize(arr, qtype)


# -- vocab ---------------------------------------------------------------------------------------
def vocab_metadata(tokenizer: Any, n_vocab: int) -> dict[str, Any]:
    """Tokens, types, merges, special ids and chat template of a byte-level BPE tokenizer."""
    from gguf import TokenType

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise StudioError("GGUF export needs a fast (tokenizer.json) tokenizer; this one is a slow "
                          "Python tokenizer. Save the tokenizer with transformers' fast class first.")
    tj = json.loads(backend.to_str())
    model = tj.get("model", {})
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise StudioError(f"GGUF export supports byte-level BPE tokenizers (Llama 3, Qwen2 style); this "
                          f"tokenizer is {model.get('type')}. Export the merged model instead.")
    vocab = tokenizer.get_vocab()
    if max(vocab.values()) >= n_vocab:
        raise StudioError(f"The tokenizer has ids up to {max(vocab.values())} but the model's embedding "
                          f"has {n_vocab} rows: resize the embeddings before exporting.")
    added = {i: t for i, t in tokenizer.added_tokens_decoder.items()}
    tokens = [f"[PAD{i}]" for i in range(n_vocab)]
    types = [int(TokenType.UNUSED)] * n_vocab
    for tok, i in vocab.items():
        tokens[i] = tok
        if i in added:
            types[i] = int(TokenType.CONTROL if added[i].special else TokenType.USER_DEFINED)
        else:
            types[i] = int(TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(p.replace(" ", "\u0120") for p in m)
              for m in model.get("merges", [])]
    ids = {k: getattr(tokenizer, f"{k}_token_id", None) for k in ("bos", "eos", "pad", "unk")}
    probe = tokenizer("a")["input_ids"]
    return {"tokens": tokens, "types": types, "merges": merges, "pre": _pre_tokenizer(tj),
            "ids": {k: v for k, v in ids.items() if isinstance(v, int)},
            "add_bos": bool(ids["bos"] is not None and probe and probe[0] == ids["bos"]),
            "chat_template": runtime_chat_template(tokenizer.chat_template)}


def runtime_chat_template(template: Any) -> str | None:
    """The chat template without TRL's {% generation %} markers, which only training needs and
    which other Jinja engines (llama.cpp's, llama-cpp-python's) reject as unknown tags. Each marker
    becomes an always-true `if` with the same whitespace control, so the output is unchanged."""
    if not isinstance(template, str):
        return None
    template = re.sub(r"\{%(-?)\s*generation\s*(-?)%\}", r"{%\1 if true \2%}", template)
    return re.sub(r"\{%(-?)\s*endgeneration\s*(-?)%\}", r"{%\1 endif \2%}", template)


def _pre_tokenizer(tj: dict[str, Any]) -> str:
    """llama.cpp's name for this tokenizer's text splitting (it refuses unknown names)."""
    pre = tj.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"
    for step in pre.get("pretokenizers", []):
        pattern = (step.get("pattern") or {}).get("Regex")
        for name, regex in _PRE_REGEX.items():
            if pattern == regex:
                return name
    return "default"


# -- write / verify ------------------------------------------------------------------------------
def write_gguf(path: Path, state_dict: dict[str, Any], config: Any, tokenizer: Any, dtype: str,
               name: str, progress: ProgressFn | None = None) -> list[PlannedTensor]:
    """Write one GGUF file, converting one tensor at a time (peak extra RAM: one tensor)."""
    import gguf

    plan = plan_tensors(state_dict, config, dtype)
    n_vocab = int(config.vocab_size)
    voc = vocab_metadata(tokenizer, n_vocab)
    w = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[
        gguf.MODEL_ARCH.LLAMA if config.model_type == "llama" else gguf.MODEL_ARCH.QWEN2])
    try:
        _add_hparams(w, config, dtype, name, n_vocab)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(voc["pre"])
        w.add_token_list(voc["tokens"])
        w.add_token_types(voc["types"])
        w.add_token_merges(voc["merges"])
        for kind, tid in voc["ids"].items():
            getattr(w, f"add_{kind}_token_id")(tid)
        w.add_add_bos_token(voc["add_bos"])
        if voc["chat_template"]:
            w.add_chat_template(voc["chat_template"])
        for t in plan:
            quant = t.qtype not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16)
            np_dtype = np.float16 if t.qtype == gguf.GGMLQuantizationType.F16 else np.float32
            w.add_tensor_info(t.name, t.shape, np_dtype, t.nbytes, raw_dtype=t.qtype if quant else None)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for i, t in enumerate(plan):
            w.write_tensor_data(_encode(t.load(), t.qtype))
            if progress:
                progress((i + 1) / len(plan), f"GGUF {dtype}: {t.name}")
    finally:
        w.close()
    return plan


def _add_hparams(w: Any, config: Any, dtype: str, name: str, n_vocab: int) -> None:
    import gguf

    hd = _head_dim(config)
    w.add_name(name)
    w.add_context_length(int(config.max_position_embeddings))
    w.add_embedding_length(int(config.hidden_size))
    w.add_block_count(int(config.num_hidden_layers))
    w.add_feed_forward_length(int(config.intermediate_size))
    w.add_head_count(int(config.num_attention_heads))
    w.add_head_count_kv(int(config.num_key_value_heads or config.num_attention_heads))
    if hd * config.num_attention_heads != config.hidden_size:
        w.add_key_length(hd)
        w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    w.add_vocab_size(n_vocab)
    rp = _rope(config)
    w.add_rope_freq_base(float(rp["rope_theta"]))
    if rp["rope_type"] in ("linear", "yarn"):
        kind = gguf.RopeScalingType.LINEAR if rp["rope_type"] == "linear" else gguf.RopeScalingType.YARN
        w.add_rope_scaling_type(kind)
        w.add_rope_scaling_factor(float(rp["factor"]))
        if "original_max_position_embeddings" in rp:
            w.add_rope_scaling_orig_ctx_len(int(rp["original_max_position_embeddings"]))
    elif rp["rope_type"] not in ("default", "llama3"):
        raise StudioError(f"Rope scaling '{rp['rope_type']}' is not supported by this GGUF exporter; "
                          "export the merged model and convert it with llama.cpp.")
    ftype = {"f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
             "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[dtype]
    w.add_file_type(int(ftype))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)


def read_field(reader: Any, key: str) -> Any:
    field = reader.get_field(key)
    return None if field is None else field.contents()


def verify_gguf(path: Path, plan: list[PlannedTensor], config: Any, tokenizer: Any) -> dict[str, Any]:
    """Read the file back: every tensor present, named, shaped and close to its source; vocab and
    chat template there. Returns {"ok", "problems", "tensors", "worst": {type: rel_rms}}."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    problems: list[str] = []
    got = {t.name: t for t in reader.tensors}
    want = {t.name: t for t in plan}
    if set(got) != set(want):
        problems.append(f"tensor names differ: missing {sorted(set(want) - set(got))[:5]}, "
                        f"extra {sorted(set(got) - set(want))[:5]}")
    worst: dict[str, float] = {}
    for name, t in want.items():
        if name not in got:
            continue
        rt = got[name]
        if rt.tensor_type != t.qtype:
            problems.append(f"{name}: stored as {rt.tensor_type.name}, planned {t.qtype.name}")
            continue
        ref = t.load()
        back = gguf.quants.dequantize(rt.data, rt.tensor_type).reshape(-1)
        if back.size != ref.size:
            problems.append(f"{name}: {back.size} values, expected {ref.size}")
            continue
        back = back.reshape(ref.shape)
        err = back - ref
        scale = float(np.sqrt(np.mean(ref * ref))) or 1.0
        rel, peak = float(np.sqrt(np.mean(err * err))) / scale, float(np.abs(err).max()) / (float(np.abs(ref).max()) or 1.0)
        tname = rt.tensor_type.name
        worst[tname] = max(worst.get(tname, 0.0), rel)
        tol_rel, tol_peak = TOLERANCE[tname]
        if rel > tol_rel or peak > tol_peak:
            problems.append(f"{name} ({tname}): relative error {rel:.2e} / peak {peak:.2e} above {tol_rel:g} / {tol_peak:g}")
    n_vocab = int(config.vocab_size)
    tokens = read_field(reader, "tokenizer.ggml.tokens") or []
    if len(tokens) != n_vocab:
        problems.append(f"vocab has {len(tokens)} tokens, the model {n_vocab}")
    if not read_field(reader, "tokenizer.ggml.merges"):
        problems.append("no BPE merges stored")
    if tokenizer.chat_template and read_field(reader, "tokenizer.chat_template") != runtime_chat_template(tokenizer.chat_template):
        problems.append("chat template missing or different")
    if tokenizer.eos_token_id is not None and read_field(reader, "tokenizer.ggml.eos_token_id") != tokenizer.eos_token_id:
        problems.append("eos token id missing or different")
    return {"ok": not problems, "problems": problems, "tensors": len(got), "worst": worst}
