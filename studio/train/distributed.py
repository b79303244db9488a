"""Multi-GPU launch: the same worker started through `accelerate launch` (DDP, FSDP or ZeRO).

Writes RUN_DIR/accelerate.yaml for the chosen strategy and returns the command line. The worker
code is unchanged: accelerate sets the ranks and TRL/transformers pick them up. On a machine
without GPUs the same path runs with CPU processes over gloo, which is how CI proves it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from studio.config import RunConfig


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
                                    "zero3_init_flag": t.distributed.endswith("3")}
    return conf


def launch_command(cfg: RunConfig, run_dir: Path, resume: bool) -> list[str]:
    import torch

    cpu = cfg.training.use_cpu or not torch.cuda.is_available()
    path = Path(run_dir) / "accelerate.yaml"
    path.write_text(yaml.safe_dump(accelerate_config(cfg, cpu)))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(path),
           "--main_process_port", "0", "-m", "studio.train", str(run_dir)]
    return cmd + (["--resume"] if resume else [])
