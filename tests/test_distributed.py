"""Multi-GPU path proven on CPU: the same worker under `accelerate launch` with 2 ranks over gloo."""

import json

import pytest
import yaml

from studio import runs
from studio.config import RunConfig


@pytest.mark.slow
def test_two_process_accelerate_run(tiny_model_dir, runs_root, tmp_path):
    data = tmp_path / "c.jsonl"
    with open(data, "w") as f:
        for i in range(64):
            f.write(json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                             {"role": "assistant", "content": "Ahoy! An answer. Arr!"}]}) + "\n")
    cfg = RunConfig.from_dict({"name": "ddp", "model": {"name_or_path": str(tiny_model_dir)},
                               "data": {"path": str(data), "max_length": 64},
                               "training": {"max_steps": 4, "batch_size": 8, "logging_steps": 1,
                                            "num_gpus": 2, "save_steps": 100}})
    run_dir = runs.create_run(cfg, runs_root)
    proc = runs.start(run_dir)
    assert proc.wait(timeout=300) == 0, runs.log_tail(run_dir, 40)
    st = runs.status(run_dir)
    assert st["state"] == "done" and st["world_size"] == 2
    acc = yaml.safe_load((run_dir / "accelerate.yaml").read_text())
    assert acc["num_processes"] == 2
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]
    # 64 rows, 8 per rank, 2 ranks: each step eats 16 rows, so step 4 ends epoch 1.
    assert rows[-1]["step"] == 4 and rows[-1]["epoch"] == pytest.approx(1.0)
    log = (run_dir / "stdout.log").read_text()
    assert log.count("== Stage 1/1") == 2  # both ranks ran the same worker
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
