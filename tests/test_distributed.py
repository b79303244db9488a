"""Multi-GPU path proven on CPU: the same worker under `accelerate launch` with 2 ranks over gloo.

DDP runs exactly as on GPUs. FSDP2 and DeepSpeed ZeRO need a test-only shim
(tests/shims/multi_gpu_on_cpu), because accelerate turns them on only for GPU ranks; past that
switch the wrapping, the sharded/ZeRO checkpoints, the gathered final save and resume are the real
code, and each result is checked against DDP's weights from the same data and seed.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from studio import runs
from studio.config import RunConfig
from studio.train import distributed

SHIM = Path(__file__).parent / "shims" / "multi_gpu_on_cpu"


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "c.jsonl"
    if not data.exists():
        with open(data, "w") as f:
            for i in range(64):
                f.write(json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                                 {"role": "assistant", "content": "Ahoy! An answer. Arr!"}]}) + "\n")
    return data


def _train(model_dir, runs_root, tmp_path, name, **training) -> Path:
    cfg = RunConfig.from_dict({"name": name, "model": {"name_or_path": str(model_dir)},
                               "adapter": training.pop("adapter", "lora"),
                               "data": {"path": str(_data(tmp_path)), "max_length": 64},
                               "training": {"max_steps": 4, "batch_size": 8, "logging_steps": 1,
                                            "num_gpus": 2, "save_steps": 2, **training}})
    run_dir = runs.create_run(cfg, runs_root)
    proc = runs.start(run_dir)
    assert proc.wait(timeout=300) == 0, runs.log_tail(run_dir, 40)
    assert runs.status(run_dir)["state"] == "done", runs.log_tail(run_dir, 40)
    return run_dir


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    out = run_dir / "adapter" / "adapter_model.safetensors"
    return load_file(out if out.exists() else run_dir / "model" / "model.safetensors")


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5, msg=k)


_DDP: dict[str, dict[str, torch.Tensor]] = {}


def _assert_matches_ddp(run_dir: Path, model_dir, runs_root, tmp_path, adapter: str = "lora") -> None:
    """The run's weights equal those of a DDP run of the same data and seed (trained once per adapter)."""
    if adapter not in _DDP:
        ddp = _train(model_dir, runs_root, tmp_path, f"ddp-{adapter}", distributed="ddp", adapter=adapter)
        _DDP[adapter] = _weights(ddp)
    _assert_same(_weights(run_dir), _DDP[adapter])


@pytest.fixture
def gpu_strategies_on_cpu(monkeypatch):
    monkeypatch.setattr(distributed, "cpu_only", lambda cfg: False)  # write the FSDP/ZeRO launch config
    monkeypatch.setattr(distributed, "check_launch", lambda cfg, cpu: None)  # no GPUs to count here
    monkeypatch.setenv("PYTHONPATH", str(SHIM))


def _crash_after_step_2_and_resume(run_dir: Path, dest: Path) -> Path:
    """A copy of a finished 4-step run as if it crashed after checkpoint-2, resumed to the end."""
    shutil.copytree(run_dir, dest)
    shutil.rmtree(dest / "checkpoints" / "checkpoint-4")
    for out in ("adapter", "model"):
        shutil.rmtree(dest / out, ignore_errors=True)
    runs.update_status(dest, state="failed", stages_done=[])
    assert runs.resume(dest).wait(timeout=300) == 0, runs.log_tail(dest, 40)
    assert f"Resuming from {dest / 'checkpoints' / 'checkpoint-2'}" in (dest / "stdout.log").read_text()
    return dest


@pytest.mark.slow
def test_two_process_accelerate_run(tiny_model_dir, runs_root, tmp_path):
    run_dir = _train(tiny_model_dir, runs_root, tmp_path, "ddp", save_steps=100)
    st = runs.status(run_dir)
    assert st["world_size"] == 2
    acc = yaml.safe_load((run_dir / "accelerate.yaml").read_text())
    assert acc["num_processes"] == 2
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]
    # 64 rows, 8 per rank, 2 ranks: each step eats 16 rows, so step 4 ends epoch 1.
    assert rows[-1]["step"] == 4 and rows[-1]["epoch"] == pytest.approx(1.0)
    log = (run_dir / "stdout.log").read_text()
    assert log.count("== Stage 1/1") == 2  # both ranks ran the same worker
    assert "Distributed: DDP over CPU processes (gloo), 2 processes" in log
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_fsdp_falls_back_to_ddp_on_cpu_and_says_so(tiny_model_dir, runs_root, tmp_path):
    run_dir = _train(tiny_model_dir, runs_root, tmp_path, "fsdp-cpu", distributed="fsdp", max_steps=1)
    assert yaml.safe_load((run_dir / "accelerate.yaml").read_text())["distributed_type"] == "MULTI_GPU"
    assert "fsdp was asked for but needs CUDA GPUs; this run uses DDP instead" in (run_dir / "stdout.log").read_text()


@pytest.mark.slow
def test_fsdp_lora_matches_ddp_and_resumes_from_sharded_checkpoint(
        tiny_model_dir, runs_root, tmp_path, gpu_strategies_on_cpu):
    fsdp = _train(tiny_model_dir, runs_root, tmp_path, "fsdp", distributed="fsdp")
    acc = yaml.safe_load((fsdp / "accelerate.yaml").read_text())
    assert acc["distributed_type"] == "FSDP" and acc["fsdp_config"]["fsdp_version"] == 2
    assert "Distributed: FSDP2" in (fsdp / "stdout.log").read_text()
    # Each rank wrote its own shard of the checkpoint...
    shards = fsdp / "checkpoints" / "checkpoint-2" / "pytorch_model_fsdp_0"
    assert len(list(shards.glob("*.distcp"))) == 2
    # ...but the adapter is one gathered file (a sharded save used to leave it empty), with the
    # same weights DDP trains from the same data and seed.
    _assert_matches_ddp(fsdp, tiny_model_dir, runs_root, tmp_path)

    # A crash after step 2: resume must continue from the sharded checkpoint to the same result.
    _assert_same(_weights(_crash_after_step_2_and_resume(fsdp, runs_root / "crashed")), _weights(fsdp))


@pytest.mark.slow
def test_fsdp_full_fine_tune_saves_the_whole_model(tiny_model_dir, runs_root, tmp_path, gpu_strategies_on_cpu):
    fsdp = _train(tiny_model_dir, runs_root, tmp_path, "fsdp-full", distributed="fsdp", adapter="full")
    base, tuned = load_file(tiny_model_dir / "model.safetensors"), _weights(fsdp)
    assert any(not torch.equal(tuned[k], base[k]) for k in base)  # it trained
    _assert_matches_ddp(fsdp, tiny_model_dir, runs_root, tmp_path, "full")


@pytest.mark.slow
def test_zero2_lora_matches_ddp_and_resumes_from_zero_checkpoint(
        tiny_model_dir, runs_root, tmp_path, gpu_strategies_on_cpu):
    z2 = _train(tiny_model_dir, runs_root, tmp_path, "zero2", distributed="deepspeed_zero2")
    assert yaml.safe_load((z2 / "accelerate.yaml").read_text())["distributed_type"] == "DEEPSPEED"
    assert "Distributed: DeepSpeed ZeRO, 2 processes" in (z2 / "stdout.log").read_text()
    assert (z2 / "checkpoints" / "checkpoint-2" / "global_step2").is_dir()  # DeepSpeed's own checkpoint
    _assert_matches_ddp(z2, tiny_model_dir, runs_root, tmp_path)
    _assert_same(_weights(_crash_after_step_2_and_resume(z2, runs_root / "crashed")), _weights(z2))


@pytest.mark.slow
def test_zero3_full_fine_tune_gathers_the_model(tiny_model_dir, runs_root, tmp_path, gpu_strategies_on_cpu):
    # ZeRO-3 splits every weight across ranks; without zero3_save_16bit_model the model/ folder
    # held only per-rank shards and no loadable weights.
    z3 = _train(tiny_model_dir, runs_root, tmp_path, "zero3-full", distributed="deepspeed_zero3", adapter="full")
    _assert_matches_ddp(z3, tiny_model_dir, runs_root, tmp_path, "full")


def test_launch_checks_name_the_fix(tiny_model_dir, monkeypatch):
    from studio.errors import StudioError

    cfg = RunConfig.from_dict({"training": {"num_gpus": 4, "distributed": "deepspeed_zero3"}})
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(StudioError, match="asks for 4 GPUs but this machine has 2. Set GPUs"):
        distributed.check_launch(cfg, cpu=False)
    cfg.training.num_gpus = 2
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(StudioError, match="needs DeepSpeed, which is not installed.*pip install deepspeed"):
        distributed.check_launch(cfg, cpu=False)
    distributed.check_launch(cfg, cpu=True)  # CPU ranks fall back to DDP: nothing to refuse


def test_describe_names_a_fallback():
    assert distributed.describe("fsdp", "FSDP", 2).startswith("Distributed: FSDP2")
    line = distributed.describe("deepspeed_zero2", "MULTI_CPU", 2)
    assert "deepspeed_zero2 was asked for but needs CUDA GPUs; this run uses DDP instead" in line


@pytest.mark.slow
def test_fsdp_qlora_shards_the_4bit_weights(tiny_model_dir, runs_root, tmp_path, gpu_strategies_on_cpu):
    pytest.importorskip("bitsandbytes")
    fsdp = _train(tiny_model_dir, runs_root, tmp_path, "fsdp-qlora", distributed="fsdp", adapter="qlora")
    log = (fsdp / "stdout.log").read_text()
    # Stored as uint8, accelerate leaves the 4-bit weights whole on every rank and says so.
    assert "Distributed: FSDP2" in log and "Excluding from FSDP2 sharding" not in log
    assert runs.status(fsdp)["quantization"] == "nf4"
    _assert_matches_ddp(fsdp, tiny_model_dir, runs_root, tmp_path, "qlora")
