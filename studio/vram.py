"""Peak GPU memory of one training step of OUR trainer, with a per-component breakdown.

`estimate(cfg)` models what TRL 1.16's SFTTrainer/DPOTrainer does with transformers 5, peft 0.21
and bitsandbytes (see studio.train.build/stages): weights as the worker loads them (bf16; QLoRA:
NF4 double-quant linears with every other weight upcast to fp32 by prepare_model_for_kbit_training),
LoRA adapters (fp32, bf16 for QLoRA), gradients, optimizer states and the foreach optimizer's
temporary copy, the tensors autograd keeps per decoder layer (read off the modeling code and
checked with saved-tensor hooks), TRL's fused LM head (it never builds the batch x seq x vocab
logits; it keeps a copy of the hidden states and works in 4096 x 32768 tiles), the CUDA context
and the caching allocator's reserve. The constants marked CALIBRATED come from bench/vram_sweep.py
on an H100 (results in bench/results/vram_sweep.md).

It also gives advice (the cheapest changes that make a run fit). The ETA rule and the
`python -m studio vram` CLI live in studio.vram_cli. It does not read live GPU state
(studio.hardware does) and imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.config import RunConfig
from studio.errors import StudioError
from studio.vram_arch import ModelShape, resolve_shape

GIB = 1024**3
COMPONENTS = ("weights", "adapters", "gradients", "optimizer", "activations", "logits_loss",
              "cuda_context", "allocator_reserve")

# CALIBRATED on an H100 (bench/vram_sweep.py, 13 runs); see the module docstring.
CUDA_CONTEXT_GIB = 0.75  # nvidia-smi minus torch's reserved: context, cuBLAS, loaded kernels
# Caching allocator: reserved-but-free memory at the peak, measured 0.2-1.0 GiB. Full fine-tuning
# fragments most (optimizer states land after step 1's activations are freed), QLoRA least.
RESERVE_GIB = {"full": 0.65, "lora": 0.55, "qlora": 0.3}
RESERVE_FRACTION = 0.01  # and a little more for very large runs

NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit values + 8-bit absmax per 64 + fp32 per 256 blocks
TILE_TOKENS, TILE_VOCAB = 4096, 32768  # TRL's fused LM head tile (trl/kernels/chunked_logprob.py)
GPU_SIZES_GIB = {"T4 (16 GB)": 15.0, "RTX 3090 / 4090 (24 GB)": 23.5, "L4 / A10 (24 GB)": 22.0,
                 "A100 40 GB": 39.4, "A100 80 GB": 79.1, "H100 80 GB": 79.1, "H200 141 GB": 139.0}


@dataclass
class Estimate:
    peak_gib: float
    breakdown: dict[str, float]
    model: dict[str, Any]
    phase: str  # "backward" (activations) or "optimizer step" (weights, gradients, states)
    gpu_free_gib: float | None = None
    fits: bool | None = None
    verdict: str = ""
    advice: list[dict[str, Any]] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"peak_gib": round(self.peak_gib, 3),
                "breakdown": {k: round(v, 3) for k, v in self.breakdown.items()},
                "phase": self.phase, "gpu_free_gib": self.gpu_free_gib, "fits": self.fits,
                "verdict": self.verdict, "advice": self.advice, "assumptions": self.assumptions,
                "model": self.model}


# -- pieces ------------------------------------------------------------------------------------
def lora_targets(shape: ModelShape, targets: str) -> list[tuple[str, int, int]]:
    """The projections LoRA wraps: 'all-linear' or a comma list ('q,v' means q_proj,v_proj)."""
    layers = shape.linear_in_out()
    t = (targets or "all-linear").strip()
    if t == "all-linear":
        return layers
    wanted = {w.strip() if w.strip().endswith("proj") else w.strip() + "_proj"
              for w in t.split(",") if w.strip()}
    chosen = [x for x in layers if x[0] in wanted]
    if not chosen:
        names = ", ".join(n for n, _, _ in layers)
        raise StudioError(f"LoRA targets '{targets}' match no layer of this model. Its layers are: "
                          f"{names} (or use all-linear).")
    return chosen


def _act_bytes_per_token(shape: ModelShape, m: dict[str, Any], seq: int) -> dict[str, float]:
    """Bytes autograd keeps per token: one whole decoder layer, and what a checkpointed layer keeps.

    From the transformers 5 Llama/Qwen2 code: RMSNorm keeps an fp32 copy of its input (plus the
    bf16 pre-weight copy when its weight trains); SDPA keeps q, k, v, its output and fp32 logsumexp
    (k/v repeated to all heads, plus a float mask per layer, when padding forces a mask); the gated
    MLP keeps gate, act(gate), up (and their product when down_proj's weight trains). Frozen linears
    keep nothing. Each LoRA target keeps a bf16 copy of its input, the dropout mask (1 byte) and the
    rank-r intermediate.
    """
    h, q, kv, i, r = shape.hidden, shape.q_dim, shape.kv_dim, shape.intermediate, m["lora_r"]
    a, res, full, liger = m["act"], m["res"], m["method"] == "full", m["liger"]
    kvs = q if m["padded"] else kv  # repeat_kv when a padding mask is present
    norm = (res * h + 4) if liger else (4 * h + 4 + (a * h if full else 0))
    normed_out = a * h if full else 0  # saved by the trainable projections that read it
    per = shape.norms_per_layer * norm + 2 * normed_out  # two norms feed projections
    per += a * (2 * q + 2 * kvs) + 4 * shape.heads  # q, k, v, out (o_proj reads the same), lse
    if m["padded"]:
        per += 2 * seq  # float attention bias row kept by the memory-efficient kernel
    if shape.attn_softcap or m["attn"] == "eager":
        per += shape.heads * seq * (2 * a + 4)  # eager: tanh-capped scores, fp32 softmax, probs
    mlp_tensors = (3 if full else 2) if liger else (4 if full else 3)
    per += mlp_tensors * m["mlp_act"] * i
    if m["method"] in ("lora", "qlora"):
        drop = 1 if m["lora_dropout"] > 0 else 0
        for _name, fan_in, _out in m["targets"]:
            per += (drop + a) * fan_in + a * r
    gc_layer = res * h  # a checkpointed layer keeps only its input hidden states
    return {"layer": float(per), "gc_layer": float(gc_layer)}


def _resolve_method(cfg: RunConfig, shape: ModelShape, zero: int | None, padded: bool | None) -> dict:
    t = cfg.training
    # Prompt/prefix tuning: a frozen model with a few trainable vectors, i.e. LoRA without adapters.
    method = cfg.adapter if cfg.adapter in ("full", "lora", "qlora") else "lora"
    adapters = cfg.adapter in ("lora", "qlora")
    prec = "bf16" if t.precision == "auto" else t.precision
    a = 4 if prec == "fp32" else 2
    stage_zero = {"ddp": 0, "fsdp": 3, "deepspeed_zero2": 2, "deepspeed_zero3": 3}.get(t.distributed, 0)
    gpus = max(1, int(t.num_gpus))
    return {
        "method": method, "precision": prec, "act": a,
        # QLoRA keeps the residual stream in fp32: prepare_model_for_kbit_training upcasts embeddings
        "res": 4 if (method == "qlora" or a == 4) else a,
        # bitsandbytes' Linear4bit casts its output back to its input's dtype: with the fp32
        # residual stream, QLoRA's MLP activations are fp32 too
        "mlp_act": 4 if (method == "qlora" or a == 4) else a,
        "param_bytes": a, "liger": bool(t.liger), "attn": cfg.model.attn_implementation,
        "lora_r": cfg.lora.r if adapters else 0, "lora_dropout": cfg.lora.dropout,
        "targets": lora_targets(shape, cfg.lora.target_modules) if adapters else [],
        "dpo": cfg.stage == "dpo", "dpo_ref_copy": cfg.stage == "dpo" and method == "full"
        and t.dpo_reference in ("auto", "copy"),
        "gpus": gpus, "zero": (stage_zero if zero is None else zero) if gpus > 1 else 0,
        "padded": (t.batch_size > 1 and not cfg.data.packing) if padded is None else padded,
    }


def _optimizer_bytes(optim: str, n_params: int, pbytes: int, largest: int) -> tuple[float, float]:
    """(states, temporary during step) in bytes for `n_params` trainable params of `pbytes` each."""
    if optim in ("adamw_torch", "adamw_torch_fused"):
        states = 2.0 * pbytes * n_params  # exp_avg, exp_avg_sq in the param dtype
        temp = pbytes * n_params if optim == "adamw_torch" else 0.0  # foreach sqrt(exp_avg_sq) copy
        return states, temp
    if optim in ("adamw_8bit", "paged_adamw_8bit"):
        return 2.0 * n_params * (1 + 4 / 256), 0.0  # 8-bit states + fp32 absmax per 256
    if optim == "adafactor":
        return 0.02 * 4 * n_params, 3 * 4.0 * largest  # factored moments; fp32 copies of one param
    return 0.0, 0.0  # sgd without momentum


def breakdown_bytes(cfg: RunConfig, shape: ModelShape, zero: int | None = None,
                    padded: bool | None = None) -> tuple[dict[str, float], str, dict]:
    """Component bytes at the peak, the phase where it happens, and the resolved settings."""
    m = _resolve_method(cfg, shape, zero, padded)
    t = cfg.training
    seq = int(cfg.data.max_length)
    tokens = t.batch_size * seq * (2 if m["dpo"] else 1)  # DPO runs chosen+rejected together
    pb, a, L, h, V = m["param_bytes"], m["act"], shape.layers, shape.hidden, shape.vocab
    lin = L * shape.layer_linear_params()
    other = shape.params() - lin
    n_lora = L * sum(m["lora_r"] * (fi + fo) for _n, fi, fo in m["targets"])
    if m["method"] == "qlora":
        weights, adapter_b = lin * NF4_BYTES + other * 4.0, 2
    else:
        weights, adapter_b = shape.params() * float(pb), 4
    if m["dpo_ref_copy"]:
        weights *= 2  # a frozen reference copy of the policy
    full = m["method"] == "full"
    n_train = shape.params() if full else n_lora
    tb = pb if full else adapter_b  # bytes of one trainable parameter (and its gradient)
    largest = V * h if full else max((m["lora_r"] * max(fi, fo) for _n, fi, fo in m["targets"]), default=0)
    states, opt_temp = _optimizer_bytes(t.optim, n_train, tb, largest)
    grads = float(n_train * tb)
    adapters = float(n_lora * adapter_b)
    zs, g = m["zero"], m["gpus"]
    if zs >= 1:
        states, opt_temp = states / g, opt_temp / g
    if zs >= 2:
        grads /= g
    if zs >= 3:
        weights = weights / g + 2 * shape.layer_linear_params() * pb  # plus two gathered layers
    elif g > 1 and zs == 0:
        grads *= 2  # DDP's gradient buckets are a second copy of the gradients

    per = _act_bytes_per_token(shape, m, seq)
    gc = t.gradient_checkpointing
    res = m["res"]
    i = shape.intermediate
    # What a layer's backward holds at once: MLP gradients (~3 x seq x intermediate) or
    # flash-attention gradients with its fp32 dq accumulator, plus the residual gradient.
    mlp_ws = 3 * a * i
    if m["method"] == "lora" and a == 2 and any(n == "down_proj" for n, _, _ in m["targets"]):
        mlp_ws += 4 * i  # the fp32 adapter path carries fp32 gradients of down_proj's input
    layer_ws = tokens * (max(mlp_ws, a * (2 * shape.q_dim + 2 * shape.kv_dim) + 4 * shape.q_dim)
                         + 2 * a * h)
    saved = tokens * (L * (per["gc_layer"] if gc else per["layer"]) + 4 * h + res * h)
    if gc:
        layer_ws += tokens * per["layer"]  # the layer being recomputed
    # TRL fused LM head: the (masked) hidden states copy stays for backward; backward makes an
    # fp32 grad of it, works in one vocab tile, and (full FT) builds the head's gradient in fp32
    # then casts it (V x h x 6 bytes at once).
    out_b = 4 if m["method"] == "qlora" else a
    head_saved = tokens * h * out_b
    tile = min(tokens, TILE_TOKENS) * min(V, TILE_VOCAB) * 2
    head_bwd = tokens * h * (4 + out_b) + tile + (V * h * (4 + pb) if full else 0)
    accum_grads = grads if t.grad_accum > 1 else 0.0

    persistent = weights + adapters + states
    phase_a = persistent + accum_grads + saved + head_saved + max(head_bwd, layer_ws)
    phase_b = persistent + grads + opt_temp
    if phase_a >= phase_b:
        phase = "backward"
        logits = head_saved + (head_bwd if head_bwd >= layer_ws else 0.0)
        acts = saved + (layer_ws if layer_ws > head_bwd else 0.0)
        out = {"weights": weights, "adapters": adapters, "gradients": accum_grads,
               "optimizer": states, "activations": acts, "logits_loss": logits}
        churn = saved + head_saved + max(head_bwd, layer_ws)
    else:
        phase = "optimizer step"
        out = {"weights": weights, "adapters": adapters, "gradients": grads,
               "optimizer": states + opt_temp, "activations": 0.0, "logits_loss": 0.0}
        churn = grads + opt_temp
    reserve = RESERVE_GIB[m["method"]] * GIB + RESERVE_FRACTION * churn
    out["cuda_context"] = CUDA_CONTEXT_GIB * GIB
    out["allocator_reserve"] = reserve
    m["tokens"] = tokens
    m["trainable_params"] = n_train
    return out, phase, m


def estimate(cfg: RunConfig, model_shape: ModelShape | None = None, gpu_free_gib: float | None = None,
             zero: int | None = None, padded: bool | None = None, advise: bool = True) -> Estimate:
    """Peak GPU memory (as nvidia-smi shows it) of training `cfg`, with breakdown, verdict and advice."""
    shape = model_shape or resolve_shape(cfg.model.name_or_path)
    parts, phase, m = breakdown_bytes(cfg, shape, zero=zero, padded=padded)
    bd = {k: parts[k] / GIB for k in COMPONENTS}
    peak = sum(bd.values())
    est = Estimate(peak_gib=peak, breakdown=bd, phase=phase, gpu_free_gib=gpu_free_gib,
                   model={**shape.to_dict(), "tokens_per_step": m["tokens"],
                          "trainable_params": m["trainable_params"]})
    est.assumptions = [
        f"{m['precision']} weights; {m['method']}" + (" with DPO (chosen+rejected in one batch)" if m["dpo"] else ""),
        f"every sequence {cfg.data.max_length} tokens long (the worst batch)",
        "padding in the batch (a mask, k/v repeated)" if m["padded"] else "no padding (flash attention path)",
    ]
    if gpu_free_gib is not None:
        est.fits = peak <= gpu_free_gib
        est.verdict = verdict_text(peak, gpu_free_gib)
        if advise:
            est.advice = advice(cfg, shape, gpu_free_gib, zero=zero, padded=padded)
    return est


def verdict_text(peak: float, free: float) -> str:
    if peak <= 0.9 * free:
        return f"Fits: about {peak:.1f} GiB of the {free:.1f} GiB free."
    if peak <= free:
        return (f"Fits, but tight: about {peak:.1f} GiB of the {free:.1f} GiB free. Longer-than-usual "
                "batches or another program on the GPU could still run out of memory.")
    return (f"Does not fit: about {peak:.1f} GiB needed, {free:.1f} GiB free. "
            "See the changes below.")


# -- advice and ETA ----------------------------------------------------------------------------
def _variant(cfg: RunConfig, **over: Any) -> RunConfig:
    d = cfg.to_dict()
    for path, value in over.items():
        node = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return RunConfig.from_dict(d)


def _candidates(cfg: RunConfig) -> list[tuple[str, dict[str, Any]]]:
    """Changes in order of cost: free ones first, then slower steps, then lower quality/shorter data."""
    t, out = cfg.training, []
    if not t.liger:
        out.append(("Turn on Liger kernels (faster too)", {"training__liger": True}))
    if cfg.adapter == "full" and t.optim in ("adamw_torch", "adamw_torch_fused"):
        out.append(("Use the 8-bit AdamW optimizer (adamw_8bit)", {"training__optim": "adamw_8bit"}))
    if not t.gradient_checkpointing:
        out.append(("Turn on gradient checkpointing (~30% slower)", {"training__gradient_checkpointing": True}))
    b = t.batch_size
    while b > 1:
        b //= 2
        accum = t.grad_accum * (t.batch_size // b)
        out.append((f"Batch size {b} with gradient accumulation {accum} (same effective batch)",
                    {"training__batch_size": b, "training__grad_accum": accum}))
    if cfg.adapter == "full":
        out.append(("Train a LoRA adapter instead of all weights", {"adapter": "lora"}))
    if cfg.adapter in ("full", "lora"):
        out.append(("Use QLoRA (4-bit base weights)", {"adapter": "qlora"}))
    s = cfg.data.max_length
    while s > 256:
        s //= 2
        out.append((f"Shorten sequences to {s} tokens (longer examples are cut)", {"data__max_length": s}))
    return out


def advice(cfg: RunConfig, shape: ModelShape, free_gib: float, zero: int | None = None,
           padded: bool | None = None) -> list[dict[str, Any]]:
    """Single changes that make it fit (cheapest first), else the cheapest combination that does."""
    def peak(c: RunConfig) -> float:
        return estimate(c, shape, zero=zero, padded=padded, advise=False).peak_gib

    base = peak(cfg)
    out: list[dict[str, Any]] = []
    seen_kinds: set[str] = set()
    for text, over in _candidates(cfg):
        kind = next(iter(over)).split("__")[-1]
        if kind in seen_kinds:
            continue  # only the mildest batch / length change that fits
        p = peak(_variant(cfg, **over))
        if p < base - 0.01:
            fits = p <= free_gib
            if fits:
                seen_kinds.add(kind)
                out.append({"change": text, "peak_gib": round(p, 2), "fits": True})
            elif kind not in ("batch_size", "max_length"):
                out.append({"change": text, "peak_gib": round(p, 2), "fits": False})
    if base <= free_gib or any(a["fits"] for a in out):
        return out
    combo: dict[str, Any] = {}
    steps: dict[str, str] = {}  # one description per kind: a smaller batch replaces a bigger one
    p = base
    for text, over in _candidates(cfg):
        combo.update(over)
        steps[next(iter(over)).split("__")[-1]] = text
        p = peak(_variant(cfg, **combo))
        if p <= free_gib:
            out.append({"change": "Together: " + "; ".join(steps.values()), "peak_gib": round(p, 2),
                        "fits": True})
            return out
    out.append({"change": "Nothing here makes it fit: pick a smaller model or a bigger GPU "
                "(or several GPUs with ZeRO-3).", "peak_gib": round(p, 2), "fits": False})
    return out
