"""Training-time estimate (ETA) and the `python -m studio vram` command line.

The memory model itself is studio.vram; this module turns CLI flags or Memory-tab fields into a
RunConfig for it (`make_config`), prints its answer, and estimates how long a run takes from a
measured tokens/s or a per-GPU FLOPs rule.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from studio.config import RunConfig
from studio.errors import StudioError
from studio.vram import estimate
from studio.vram_arch import BUILTIN, ModelShape, resolve_shape

# Dense bf16 tensor TFLOP/s (fp16 where the card has no bf16) and the share a fine-tuning run
# typically reaches (model FLOPs utilisation); a measured tokens/s always wins over this table.
GPU_TFLOPS = {"H200": 989, "H100": 989, "A100": 312, "L40S": 362, "A6000": 155, "RTX 4090": 165,
              "RTX 3090": 71, "L4": 121, "A10": 125, "V100": 125, "T4": 65, "CPU": 0.5}
MFU = {"full": 0.35, "lora": 0.35, "qlora": 0.22}


def tokens_per_second(shape: ModelShape, method: str = "lora", gpu: str = "A100", seq: int = 1024,
                      gc: bool = False) -> float:
    """Looked-up training throughput: 6N FLOPs/token (4N for adapters: no base weight gradients)."""
    key = next((k for k in GPU_TFLOPS if k.lower() in (gpu or "").lower()), "A100")
    n = shape.params() - shape.embedding_params() + shape.vocab * shape.hidden
    per_token = (6 if method == "full" else 4) * n + 6 * shape.layers * shape.q_dim * seq
    if gc:
        per_token += 2 * n  # the forward runs twice
    return GPU_TFLOPS[key] * 1e12 * MFU.get(method, 0.3) / per_token


def eta(tokens: float, tokens_per_s: float | None = None, shape: ModelShape | None = None,
        method: str = "lora", gpu: str = "A100", seq: int = 1024, gc: bool = False,
        num_gpus: int = 1) -> dict[str, Any]:
    """Time for `tokens` training tokens: from a measured tokens/s, else looked up per GPU."""
    source = "measured"
    if not tokens_per_s:
        if shape is None:
            raise StudioError("ETA needs a measured tokens/s or a model to look one up.")
        tokens_per_s = tokens_per_second(shape, method, gpu, seq, gc) * max(1, num_gpus) * 0.9 ** (num_gpus > 1)
        source = f"looked up for {gpu}"
    seconds = float(tokens) / float(tokens_per_s)
    return {"seconds": seconds, "tokens_per_s": tokens_per_s, "source": source, "text": _duration(seconds)}


def _duration(s: float) -> str:
    if s < 90:
        return f"about {max(1, round(s))} seconds"
    if s < 90 * 60:
        return f"about {round(s / 60)} minutes"
    if s < 48 * 3600:
        return f"about {s / 3600:.1f} hours"
    return f"about {s / 86400:.1f} days"


def make_config(model: str, method: str = "lora", batch: int = 4, seq: int = 1024, gc: bool = False,
                optim: str = "adamw_torch", lora_r: int = 16, lora_targets: str = "all-linear",
                lora_dropout: float = 0.05, liger: bool = False, dpo: bool = False,
                dpo_ref: str = "copy", precision: str = "bf16", gpus: int = 1, zero: int = 0,
                grad_accum: int = 1, packing: bool = False, attn: str = "sdpa") -> RunConfig:
    """The RunConfig the CLI and the Memory tab estimate; every problem reported at once."""
    dist = {0: "ddp", 1: "ddp", 2: "deepspeed_zero2", 3: "deepspeed_zero3"}.get(int(zero), "ddp")
    cfg = RunConfig.from_dict({
        "stage": "dpo" if dpo else "sft", "adapter": method,
        "model": {"name_or_path": model, "attn_implementation": attn},
        "data": {"max_length": seq, "packing": packing},
        "lora": {"r": lora_r, "target_modules": lora_targets, "dropout": lora_dropout},
        "training": {"batch_size": batch, "grad_accum": grad_accum, "gradient_checkpointing": gc,
                     "optim": optim, "liger": liger, "precision": precision, "num_gpus": gpus,
                     "distributed": dist, "dpo_reference": "none" if dpo_ref == "none" else "copy"}})
    problems = [p for p in cfg.validate() if not p.startswith("data.path")]
    if problems:
        raise StudioError("Invalid settings:\n- " + "\n- ".join(problems), problems)
    return cfg


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m studio vram",
                                 description="Estimate the peak GPU memory of a training run.")
    ap.add_argument("--model", required=True,
                    help=f"hub id, model folder, config.json, or one of: {', '.join(BUILTIN)}")
    ap.add_argument("--method", choices=("full", "lora", "qlora"), default="lora")
    ap.add_argument("--batch", type=int, default=4, help="sequences per GPU per step")
    ap.add_argument("--seq", type=int, default=1024, help="tokens per sequence (max length)")
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--gc", action="store_true", help="gradient checkpointing")
    ap.add_argument("--optim", default="adamw_torch",
                    choices=("adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit",
                             "adafactor", "sgd"))
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--lora-targets", default="all-linear")
    ap.add_argument("--lora-dropout", type=float, default=0.05)
    ap.add_argument("--liger", action="store_true")
    ap.add_argument("--packing", action="store_true", help="packed rows (no padding)")
    ap.add_argument("--dpo", action="store_true", help="DPO (chosen and rejected in one batch)")
    ap.add_argument("--dpo-ref", choices=("none", "copy"), default="copy",
                    help="full fine-tuning DPO: a frozen reference copy, or none")
    ap.add_argument("--precision", choices=("bf16", "fp16", "fp32"), default="bf16")
    ap.add_argument("--attn", choices=("sdpa", "eager", "flash_attention_2"), default="sdpa")
    ap.add_argument("--gpus", type=int, default=1)
    ap.add_argument("--zero", type=int, choices=(0, 1, 2, 3), default=0)
    ap.add_argument("--padded", choices=("auto", "yes", "no"), default="auto",
                    help="whether batches contain padding (auto: yes when batch > 1 and no packing)")
    ap.add_argument("--gpu-free", type=float, default=None, help="GiB free on the GPU, for a verdict")
    ap.add_argument("--json", action="store_true", help="print JSON")
    return ap


def main(argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    cfg = make_config(a.model, a.method, a.batch, a.seq, a.gc, a.optim, a.lora_r, a.lora_targets,
                      a.lora_dropout, a.liger, a.dpo, a.dpo_ref, a.precision, a.gpus, a.zero,
                      a.grad_accum, a.packing, a.attn)
    padded = None if a.padded == "auto" else a.padded == "yes"
    est = estimate(cfg, resolve_shape(a.model), gpu_free_gib=a.gpu_free,
                   zero=a.zero if a.gpus > 1 else None, padded=padded)
    if a.json:
        print(json.dumps(est.to_dict(), indent=1))
        return 0
    print(f"Estimated peak: {est.peak_gib:.2f} GiB ({est.phase})")
    for k, v in est.breakdown.items():
        print(f"  {k:<18} {v:7.2f} GiB")
    if est.verdict:
        print(est.verdict)
    for adv in est.advice:
        print(f"  - {adv['change']}: {adv['peak_gib']:.1f} GiB" + ("" if adv["fits"] else " (still too big)"))
    return 0
