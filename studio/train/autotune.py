"""Picks the fastest settings that fit a given GPU: the studio's job, not the user's.

Rules, each measured to help on an H100 (bench/results/train_speed_*.json):
- bf16 where the GPU supports it; fused AdamW.
- SFT and continued pre-training: padding-free packing (no compute spent on pad tokens; packed
  documents stay apart through position_ids, tests/test_packing.py checks the loss).
- Liger kernels where installed (less memory for norms/MLP, a little faster).
- Gradient checkpointing OFF whenever the VRAM estimate says the run fits without it: it recomputes
  the forward pass, costing ~30% of the step, and is only worth it when memory is short.
It returns a new RunConfig plus one plain sentence per change, so the UI can say what it did.
"""

from __future__ import annotations

from studio.config import RunConfig

HEADROOM = 0.90  # use at most 90% of the GPU: other processes and fragmentation need the rest


def _fits(cfg: RunConfig, gpu_gib: float) -> tuple[bool, float | None]:
    try:
        from studio.vram import estimate

        peak = estimate(cfg).peak_gib
    except Exception:  # no estimate: stay on the safe side
        return False, None
    return peak <= gpu_gib * HEADROOM, peak


def tune_for_gpu(cfg: RunConfig, gpu_total_gib: float) -> tuple[RunConfig, list[str]]:
    from studio.train.build import liger_available

    cfg = RunConfig.from_dict(cfg.to_dict())
    t, d, notes = cfg.training, cfg.data, []
    if t.precision in ("auto", "fp32"):
        t.precision = "bf16"
        notes.append("bf16 mixed precision")
    if t.optim == "adamw_torch":
        t.optim = "adamw_torch_fused"
        notes.append("fused AdamW")
    if cfg.stage in ("sft", "pretrain") and not (d.packing and d.padding_free):
        d.packing = d.padding_free = True
        notes.append("padding-free packing: no compute on pad tokens")
    if not t.liger and liger_available():
        t.liger = True
        notes.append("Liger kernels")
    if t.gradient_checkpointing:
        # Without checkpointing, try the batch as is, then smaller per-device batches with more
        # accumulation (same effective batch): recomputation costs more than a smaller batch.
        batch, accum = t.batch_size, t.grad_accum
        while batch >= 1:
            trial = RunConfig.from_dict(cfg.to_dict())
            trial.training.gradient_checkpointing = False
            trial.training.batch_size, trial.training.grad_accum = batch, accum
            ok, peak = _fits(trial, gpu_total_gib)
            if ok:
                t.gradient_checkpointing, t.batch_size, t.grad_accum = False, batch, accum
                notes.append(f"gradient checkpointing off (batch {batch} x {accum} accumulation): fits "
                             f"without it (~{peak:.1f} of {gpu_total_gib:.0f} GiB)")
                break
            if batch == 1:
                notes.append("gradient checkpointing kept on: the run would not fit without it")
                break
            batch, accum = batch // 2, accum * 2
    return cfg, notes
