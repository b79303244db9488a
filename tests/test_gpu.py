"""CUDA-only checks: QLoRA through our worker, NVML telemetry, recorded peaks. Skipped without CUDA.

Run on a GPU machine with `pytest -m gpu`. Results are recorded in bench/results/gpu_tests.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # conftest helpers

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def chat_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("gpu-data") / "chat.jsonl"
    with open(p, "w") as f:
        for i in range(128):
            f.write(json.dumps({"messages": [{"role": "user", "content": f"Tell me about ships ({i})"},
                                             {"role": "assistant", "content": "Ahoy! Ships sail the sea. Arr!"}]})
                    + "\n")
    return p


def _run(cfg, runs_root):
    from studio import runs

    run_dir = runs.create_run(cfg, runs_root)
    assert runs.start(run_dir).wait(timeout=600) == 0, runs.log_tail(run_dir, 40)
    return run_dir, runs.status(run_dir)


def test_nvml_sees_the_gpu():
    from studio import hardware

    gpus = hardware.gpus()
    assert gpus, hardware.nvml_status()
    g = gpus[0]
    assert g.total_gib > 1 and 0 <= g.used_gib <= g.total_gib
    assert g.name


@pytest.mark.parametrize("adapter", ["qlora", "lora"])
def test_worker_trains_on_cuda_and_records_peaks(adapter, tiny_qwen_dir, chat_file, runs_root):
    from studio import runs
    from studio.config import RunConfig

    cfg = RunConfig.from_dict({"name": adapter, "adapter": adapter, "model": {"name_or_path": str(tiny_qwen_dir)},
                               "data": {"path": str(chat_file), "max_length": 64},
                               "training": {"max_steps": 30, "batch_size": 8, "learning_rate": 5e-3,
                                            "logging_steps": 2, "save_steps": 100, "scheduler": "constant",
                                            "warmup": 0.0}})
    run_dir, st = _run(cfg, runs_root)
    assert st["state"] == "done" and st["device"] == "cuda" and st["precision"] == "bf16"
    assert st["peak_gpu_gib"] > 0 and st["nvml_peak_gib"] >= st["peak_gpu_gib"]
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert all("gpu_mem_gib" in r for r in rows)
    if adapter == "qlora":
        assert st["quantization"] == "nf4"  # the base really ran in 4-bit
        adapter_cfg = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
        assert adapter_cfg["r"] == 16


def test_real_out_of_memory_names_what_to_change(runs_root, tmp_path, chat_file):
    """Full fine-tuning of an 8B shape in fp32 (weights 32 + grads 32 + Adam 64 GiB) cannot fit one
    80 GB GPU. (In bf16 it does fit: 16 + 16 + 32 GiB; an H100 run on 2026-11-22 trained it.)"""
    from transformers import AutoConfig

    from conftest import build_tiny_tokenizer
    from studio import runs
    from studio.config import RunConfig

    model_dir = tmp_path / "llama-8b-shape"
    AutoConfig.for_model("llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256).save_pretrained(model_dir)
    build_tiny_tokenizer(model_dir)
    cfg = RunConfig.from_dict({"name": "oom", "adapter": "full",
                               "model": {"name_or_path": str(model_dir), "random_init": True},
                               "data": {"path": str(chat_file), "max_length": 64},
                               "training": {"max_steps": 2, "batch_size": 1, "auto_tune": False,
                                            "precision": "fp32", "save_steps": 100}})
    run_dir = runs.create_run(cfg, runs_root)
    assert runs.start(run_dir).wait(timeout=300) == 1
    st = runs.status(run_dir)
    assert st["state"] == "failed"
    assert st["error"].startswith("Out of GPU memory. To make it fit:")
    assert "gradient checkpointing" in st["error"] and "LoRA or QLoRA" in st["error"]
