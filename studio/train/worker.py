"""The training worker process: runs every stage of RUN_DIR/config.yaml and reports as it goes.

Lifecycle: queued (waiting for the GPU lock) -> running -> done | stopped | failed. It writes
status.json atomically, appends metrics.jsonl through the callback, saves checkpoints/ and the
final adapter/ (or model/ for full fine-tuning), and records its real peak memory next to the
estimate. Every failure ends as a status with a plain-language error and the log tail; an
out-of-memory error names what to change.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

from studio.config import RunConfig
from studio.errors import StudioError
from studio.runs import STOP_FILE, log_tail, read_status
from studio.runs import update_status as _update_status

GIB = 2**30
# Under `accelerate launch` every rank runs this file; only rank 0 owns the run folder.
IS_MAIN = int(os.environ.get("RANK", "0")) == 0
WORLD_SIZE = int(os.environ.get("WORLD_SIZE", "1"))  # processes in this run (accelerate sets it)


def update_status(run_dir, **fields):
    return _update_status(run_dir, **fields) if IS_MAIN else {}


class Stopped(Exception):
    """The person pressed Stop."""


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _acquire_gpu_lock(run_dir: Path):
    """Wait (as 'queued') until no other worker under the same runs root is training."""
    lock = open(run_dir.parent / ".gpu.lock", "a+")
    announced = False
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if not announced:
                print("Another run is training: this one waits in the queue.", flush=True)
                update_status(run_dir, state="queued", pid=os.getpid())
                announced = True
            if (run_dir / STOP_FILE).exists():
                raise Stopped()
            time.sleep(1.0)


def oom_advice(cfg: RunConfig) -> str:
    t, d = cfg.training, cfg.data
    tips = []
    if not t.gradient_checkpointing:
        tips.append("turn on gradient checkpointing")
    if t.batch_size > 1:
        tips.append(f"halve the batch size to {t.batch_size // 2} and double gradient accumulation "
                    f"to {t.grad_accum * 2} (same effective batch)")
    if cfg.adapter in ("full", "lora"):
        tips.append("use QLoRA (4-bit base weights)" if cfg.adapter == "lora" else "use LoRA or QLoRA")
    if not t.liger:
        tips.append("turn on Liger kernels")
    if d.max_length > 256:
        tips.append(f"shorten max length from {d.max_length} to {d.max_length // 2} tokens")
    return ("Out of GPU memory. To make it fit: " + "; ".join(tips or ["use a smaller model"]) +
            ". The Memory tab estimates each option.")


def _stage_dirs(run_dir: Path, cfgs: list[RunConfig], i: int) -> Path:
    """Where stage i's output goes: adapter/ or model/ for the last stage, stages/ before that."""
    last = i == len(cfgs) - 1
    kind = "reward_model" if cfgs[i].stage == "reward" else "model" if cfgs[i].adapter == "full" else "adapter"
    return run_dir / kind if last else run_dir / "stages" / f"{i}-{cfgs[i].stage}"


def _merge_for_next_stage(out: Path, base_path: str, cfg: RunConfig, info) -> str:
    """A stage's adapter merged into a fresh copy of its base, so the next stage starts there."""
    if cfg.adapter == "full" or not (out / "adapter_config.json").exists():
        return str(out)
    from peft import PeftModel
    from transformers import AutoTokenizer

    from studio.train.build import load_model

    base_cfg = RunConfig.from_dict({**cfg.to_dict(), "adapter": "lora", "stages": []})
    base = load_model(base_path, base_cfg, info)  # never the 4-bit copy: merge in 16/32-bit
    merged = PeftModel.from_pretrained(base, str(out)).merge_and_unload()
    dest = out.parent / (out.name + "-merged")
    merged.save_pretrained(dest)
    AutoTokenizer.from_pretrained(str(out)).save_pretrained(dest)
    return str(dest)


def run_stages(run_dir: Path, cfg: RunConfig, resume: bool) -> dict:
    import torch

    from studio.train import build
    from studio.train.callbacks import StudioCallback
    from studio.train.stages import make_trainer, save_output

    cfgs = cfg.stage_configs()
    st = read_status(run_dir)
    done = list(st.get("stages_done", [])) if resume else []
    model_path = st.get("next_model") if resume and done else None
    model_path = model_path or build.resolve_model_path(cfg.model.name_or_path)
    result: dict = {}
    reward_path = st.get("reward_model", "") if resume else ""  # a reward stage's output feeds GRPO
    for i, scfg in enumerate(cfgs):
        if i in done:
            continue
        if scfg.stage == "grpo" and not scfg.training.reward and reward_path:
            scfg.training.reward = reward_path
        info = build.device_info(scfg)
        if scfg.training.auto_tune and info["device"] == "cuda":
            from studio.train.autotune import tune_for_gpu

            scfg, notes = tune_for_gpu(scfg, torch.cuda.mem_get_info()[1] / GIB)
            info = build.device_info(scfg)
            print("Settings picked for this GPU: " + ("; ".join(notes) or "already optimal"), flush=True)
            update_status(run_dir, tuned=notes)
        print(f"== Stage {i + 1}/{len(cfgs)}: {scfg.stage} with {scfg.adapter} on {info['device']} "
              f"({info['precision']}), starting from {model_path}", flush=True)
        update_status(run_dir, stage=scfg.stage, stage_index=i, n_stages=len(cfgs),
                      device=info["device"], precision=info["precision"], base_model=model_path,
                      world_size=WORLD_SIZE)
        cb = StudioCallback(run_dir, scfg.stage, i, len(cfgs))
        trainer = make_trainer(scfg, model_path, run_dir, info, [cb])
        _record_params(run_dir, trainer)
        if WORLD_SIZE > 1 and IS_MAIN:
            from studio.train.distributed import describe

            print(describe(scfg.training.distributed, trainer.accelerator.distributed_type.name, WORLD_SIZE),
                  flush=True)
        ckpt = None
        if resume:
            from studio.runs import last_checkpoint

            ckpt = last_checkpoint(run_dir)
            print(f"Resuming from {ckpt}" if ckpt else "No checkpoint for this stage: starting it fresh.",
                  flush=True)
            resume = False
        out = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
        if cb.stop_requested:
            raise Stopped()
        dest = _stage_dirs(run_dir, cfgs, i)
        if IS_MAIN and dest.exists():
            shutil.rmtree(dest)
        save_output(trainer, scfg, dest, main=IS_MAIN)
        if not IS_MAIN:
            continue
        result = {"final_loss": out.training_loss, "global_step": out.global_step}
        if scfg.stage == "reward":
            reward_path = str(dest)
        elif i < len(cfgs) - 1:
            del trainer
            model_path = _merge_for_next_stage(dest, model_path, scfg, info)
            ck = run_dir / "checkpoints"
            if ck.exists():  # the next stage's checkpoints start clean; keep this stage's aside
                shutil.move(str(ck), str(dest.parent / (dest.name + "-checkpoints")))
        done.append(i)
        update_status(run_dir, stages_done=done, next_model=model_path, reward_model=reward_path)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return result


def _record_params(run_dir: Path, trainer) -> None:
    model = trainer.model
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"Parameters: {trainable:,} trainable of {total:,} ({100 * trainable / max(total, 1):.3f}%)",
          flush=True)
    quant = "nf4" if any(type(m).__name__ == "Linear4bit" for m in model.modules()) else None
    update_status(run_dir, trainable_params=trainable, total_params=total, quantization=quant)


def _estimate(cfg: RunConfig) -> float | None:
    try:
        from studio.vram import estimate

        return round(estimate(cfg).peak_gib, 3)
    except Exception as e:  # the estimate is advisory; training goes on without it
        print(f"(VRAM estimate unavailable: {e})", flush=True)
        return None


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m studio.train RUN_DIR [--resume]", file=sys.stderr)
        return 2
    run_dir = Path(argv[0]).resolve()
    resume = "--resume" in argv
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sampler = None
    lock = None
    try:
        cfg = RunConfig.load(run_dir / "config.yaml").check()
        lock = _acquire_gpu_lock(run_dir) if IS_MAIN else None
        update_status(run_dir, state="running", pid=os.getpid(), started=_now(), ended=None, error=None)
        import torch

        if torch.cuda.is_available() and not cfg.training.use_cpu:
            torch.cuda.reset_peak_memory_stats()
            try:
                from studio.hardware import PeakSampler

                sampler = PeakSampler(torch.cuda.current_device())
                sampler.start()
            except Exception as e:  # NVML is optional; torch's own peak is still recorded
                print(f"(NVML peak sampling unavailable: {e})", flush=True)
            update_status(run_dir, estimated_gpu_gib=_estimate(cfg))
        result = run_stages(run_dir, cfg, resume)
        update_status(run_dir, state="done", ended=_now(), **result, **_peaks(sampler))
        print("Training finished.", flush=True)
        return 0
    except Stopped:
        update_status(run_dir, state="stopped", ended=_now(), **_peaks(sampler))
        print("Stopped on request; a checkpoint was saved for Resume.", flush=True)
        return 0
    except StudioError as e:
        print(f"error: {e}", flush=True)
        update_status(run_dir, state="failed", ended=_now(), error=str(e))
        return 2
    except Exception as e:  # noqa: BLE001 - every failure must end as a readable status
        traceback.print_exc()
        msg = f"{type(e).__name__}: {e}"
        if "out of memory" in str(e).lower() or type(e).__name__ == "OutOfMemoryError":
            try:
                msg = oom_advice(RunConfig.load(run_dir / "config.yaml")) + f"\n({msg.splitlines()[0]})"
            except StudioError:
                pass
        update_status(run_dir, state="failed", ended=_now(), error=msg, **_peaks(sampler))
        return 1
    finally:
        update_status(run_dir, log_tail=log_tail(run_dir))
        if lock:
            lock.close()


def _peaks(sampler) -> dict:
    import sys as _sys

    torch = _sys.modules.get("torch")
    out = {}
    if torch is not None and torch.cuda.is_available():
        out["peak_gpu_gib"] = round(torch.cuda.max_memory_reserved() / GIB, 3)
        out["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 3)
    if sampler is not None:
        try:
            out["nvml_peak_gib"] = round(sampler.stop(), 3)
        except Exception:
            pass
    return out
