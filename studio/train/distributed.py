"""Multi-GPU launch: the same worker started through `accelerate launch` (DDP, FSDP or ZeRO).

Writes RUN_DIR/accelerate.yaml for the chosen strategy and returns the command line. The worker
code is unchanged: accelerate sets the ranks and TRL/transformers pick them up. On a machine
without GPUs the same path runs with CPU processes over gloo (DDP), which is how CI proves it;
tests/test_distributed.py also runs FSDP2 and ZeRO-2/3 that way through a test-only shim and
checks their weights against DDP's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from studio.config import RunConfig
from studio.errors import StudioError


def accelerate_config(cfg: RunConfig, cpu: bool) -> dict:
    t = cfg.training
    conf: dict = {"compute_environment": "LOCAL_MACHINE", "num_machines": 1, "machine_rank": 0,
                  "num_processes": t.num_gpus, "main_training_function": "main", "rdzv_backend": "static",
                  "same_network": True, "use_cpu": False, "mixed_precision": "no",
                  # accelerate's own MULTI_CPU mode needs mpirun; its MULTI_GPU launcher is plain
                  # torchrun, which on a CPU-only machine gives N CPU ranks over gloo (the worker
                  # passes use_cpu to the trainer, so torch picks the gloo backend).
                  "distributed_type": "MULTI_GPU", "gpu_ids": "all"}
    if not cpu and t.distributed == "fsdp":
        conf["distributed_type"] = "FSDP"
        conf["fsdp_config"] = {"fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                               "fsdp_state_dict_type": "SHARDED_STATE_DICT", "fsdp_cpu_ram_efficient_loading": True,
                               "fsdp_reshard_after_forward": True}
    elif not cpu and t.distributed.startswith("deepspeed"):
        conf["distributed_type"] = "DEEPSPEED"
        conf["deepspeed_config"] = {"zero_stage": int(t.distributed[-1]), "offload_optimizer_device": "none",
                                    "offload_param_device": "none", "gradient_accumulation_steps": t.grad_accum,
                                    "zero3_init_flag": t.distributed.endswith("3"),
                                    # Without it ZeRO-3 saves only its per-rank shards and the run's
                                    # model/ folder holds no loadable weights.
                                    "zero3_save_16bit_model": t.distributed.endswith("3")}
    return conf


def cpu_only(cfg: RunConfig) -> bool:
    """Ranks run on CPU: FSDP and DeepSpeed then fall back to DDP, because accelerate enables them
    only for GPU ranks (its FSDP switch sits in the GPU branch; DeepSpeed is skipped for cpu)."""
    import torch

    return cfg.training.use_cpu or not torch.cuda.is_available()


def describe(requested: str, distributed_type: str, world_size: int) -> str:
    """One log line naming the strategy that really runs, so a silent fallback can't pass as FSDP."""
    used = {"FSDP": "FSDP2 (parameters, gradients and optimizer state sharded across ranks)",
            "DEEPSPEED": "DeepSpeed ZeRO", "MULTI_GPU": "DDP (a full copy on every GPU)",
            "MULTI_CPU": "DDP over CPU processes (gloo)"}.get(distributed_type, distributed_type)
    line = f"Distributed: {used}, {world_size} processes"
    wanted = {"fsdp": "FSDP", "deepspeed_zero2": "DEEPSPEED", "deepspeed_zero3": "DEEPSPEED"}.get(requested)
    if wanted and wanted != distributed_type:
        line += f". {requested} was asked for but needs CUDA GPUs; this run uses DDP instead"
    return line


def check_launch(cfg: RunConfig, cpu: bool) -> None:
    """Problems accelerate would only report from inside a crashed rank, named before launch."""
    import importlib.util

    import torch

    t = cfg.training
    if cpu:
        return  # CPU ranks: any count works, and the strategy falls back to DDP (see describe)
    have = torch.cuda.device_count()
    if t.num_gpus > have:
        raise StudioError(f"This run asks for {t.num_gpus} GPUs but this machine has {have}. "
                          f"Set GPUs (training.num_gpus) to {have} or fewer.")
    if t.distributed.startswith("deepspeed") and importlib.util.find_spec("deepspeed") is None:
        raise StudioError(f"{t.distributed} needs DeepSpeed, which is not installed. Run "
                          "`.venv/bin/pip install deepspeed`, or pick fsdp or ddp as the strategy.")


def launch_command(cfg: RunConfig, run_dir: Path, resume: bool) -> list[str]:
    cpu = cpu_only(cfg)
    check_launch(cfg, cpu)
    path = Path(run_dir) / "accelerate.yaml"
    path.write_text(yaml.safe_dump(accelerate_config(cfg, cpu)))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(path),
           "--main_process_port", "0", "-m", "studio.train", str(run_dir)]
    return cmd + (["--resume"] if resume else [])
