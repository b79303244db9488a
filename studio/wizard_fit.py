"""The wizard's memory check: estimate a recommended config and apply the cheapest fixes until it fits.

Split from studio.wizard, which owns the questions and the decision; this module only knows the
order of memory-saving changes (FSDP on several GPUs, checkpointing, smaller batch, 8-bit Adam,
LoRA, QLoRA, shorter examples) and how to explain each one. The estimate itself is studio.vram's.
"""

from __future__ import annotations

from studio.config import RunConfig


def next_fix(cfg: RunConfig, hw: dict) -> tuple[RunConfig, str] | None:
    """The next cheapest change that saves memory, as (new config, what it did), or None."""
    t = cfg.training
    if t.num_gpus > 1 and t.distributed == "ddp":
        # DDP keeps a whole copy on every GPU; FSDP splits it. The GPUs are already in use, so
        # this keeps every setting and costs only some communication: the cheapest fix there is.
        return (cfg.merged({"training": {"distributed": "fsdp"}}),
                f"split the model over the {t.num_gpus} GPUs with FSDP (weights, gradients and optimizer "
                "state divided between them)")
    if not t.gradient_checkpointing:
        return (cfg.merged({"training": {"gradient_checkpointing": True}}),
                "turned on gradient checkpointing (about 30% slower, far less activation memory)")
    if t.batch_size > 1:
        b = t.batch_size // 2
        return (cfg.merged({"training": {"batch_size": b, "grad_accum": t.grad_accum * 2}}),
                f"halved the batch to {b} with twice the gradient accumulation (same effective batch)")
    if cfg.adapter == "full" and t.optim == "adamw_torch":
        return cfg.merged({"training": {"optim": "adamw_8bit"}}), "switched to 8-bit Adam (2 bytes of state per weight)"
    if cfg.adapter == "full":
        return (cfg.merged({"adapter": "lora", "training": {"learning_rate": 2e-4, "optim": "adamw_torch"}}),
                "switched from full fine-tuning to LoRA")
    if cfg.adapter in ("lora", "prompt_tuning") and hw["device"] == "cuda":
        return (cfg.merged({"adapter": "qlora", "training": {"optim": "paged_adamw_8bit"}}),
                "switched to QLoRA (the base model in 4 bits)")
    if cfg.data.max_length > 512:
        half = cfg.data.max_length // 2
        return cfg.merged({"data": {"max_length": half}}), f"cut examples at {half} tokens (longer ones lose their end)"
    return None


def fit_to_gpu(cfg: RunConfig, hw: dict, rec, why) -> RunConfig:
    """Check the VRAM estimate; apply the cheapest fixes until the config fits or none is left."""
    try:
        from studio.vram import estimate
    except ImportError:
        why("The detailed memory estimate is not available here, so the size comes from a rough rule "
            "(weights + optimizer + a margin); check it in the Memory tab.")
        return cfg
    done = []
    for _ in range(10):
        try:
            # Every stage must fit (DPO holds chosen + rejected): the worst stage decides.
            est = max((estimate(c, gpu_free_gib=hw["free_gib"]) for c in cfg.stage_configs()),
                      key=lambda e: e.peak_gib)
        except Exception as e:  # StudioError for an unknown model; anything else is the estimator's bug
            why(f"The memory estimate could not be made ({e}); check it in the Memory tab.")
            return cfg
        rec.vram_peak_gib, rec.vram_fits = round(float(est.peak_gib), 2), bool(est.fits)
        step = None if est.fits else next_fix(cfg, hw)
        if step is None:
            break
        cfg, text = step
        done.append(text)
    if done:
        why("To fit your GPU the wizard " + "; then ".join(done) + ".")
    if rec.vram_fits:
        why(f"Estimated peak memory: {rec.vram_peak_gib:.1f} GiB of the {hw['free_gib']:.1f} GiB free.")
    elif rec.vram_peak_gib is not None:
        tips = est.advice if isinstance(est.advice, list) else [est.advice or ""]
        advice = " ".join(str(t.get("change", "") if isinstance(t, dict) else t) for t in tips[:2])
        flag_text = f"Even after every fix it needs about {rec.vram_peak_gib:.1f} GiB: more than is free."
        from studio.wizard import Flag  # imported here: wizard imports this module

        rec.flags.append(Flag("red", flag_text))
        why(f"{flag_text} {advice}".strip())
    return cfg
