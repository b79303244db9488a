"""Every shipped preset loads onto the RunConfig defaults and validates; the hardware x method matrix
is complete and sensible; every value in our hand-written presets carries a comment; preset_for
maps real GPU names to the right file."""

from __future__ import annotations

import re

import pytest

from studio import paths, presets
from studio.config import RunConfig
from studio.errors import StudioError

FILES = sorted(paths.presets_dir().glob("*.yaml"))
GPU_GIB = {"t4-16gb": 15.0, "rtx4090-24gb": 23.6, "a100-40gb": 39.4, "a100-80gb": 79.2, "h100-80gb": 79.6}
EXPECTED = {f"{hw}-{m}" for hw in GPU_GIB for m in ("full", "lora", "qlora")} | {
    "apple-mps-lora", "apple-mps-full", "demo-cpu", "demo-cpu-full"}
OWNED_BY_LEAD = {"demo-cpu.yaml"}  # the lead's demo preset follows its own comment style


def test_the_matrix_is_complete():
    assert EXPECTED <= {p.stem for p in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_preset_loads_and_validates(path):
    cfg = presets.load_preset(path.stem)
    assert isinstance(cfg, RunConfig)
    assert cfg.validate() == [], cfg.validate()
    info = presets._info(path)
    assert info.method == cfg.adapter and info.description


@pytest.mark.parametrize("path", [p for p in FILES if p.name not in OWNED_BY_LEAD], ids=lambda p: p.stem)
def test_every_value_says_what_it_trades(path):
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# "), "a header comment says what the preset is for"
    for ln in lines:
        if re.match(r"^\s*[a-z_]+:\s*\S", ln):  # a key with a value (sections like `data:` excluded)
            assert re.search(r"\s#\s\S", ln), f"{path.name}: no comment on `{ln.strip()}`"


def _params_b(model: str) -> float:
    return float(re.search(r"-([\d.]+)B", model).group(1))


@pytest.mark.parametrize("hw", GPU_GIB)
def test_model_sizes_fit_the_card(hw):
    """Weights + optimizer state by the guides' bytes per parameter stay under the card's memory."""
    for method, bytes_pp in (("full", 16.0), ("lora", 2.0), ("qlora", 0.55)):
        cfg = presets.load_preset(f"{hw}-{method}")
        if method == "full" and cfg.training.optim in ("adamw_8bit", "paged_adamw_8bit"):
            bytes_pp = 10.0  # 8-bit Adam: 2 bytes of state per weight instead of 8
        need = _params_b(cfg.model.name_or_path) * 1e9 * bytes_pp / 2**30
        assert need < GPU_GIB[hw] * 0.9, (hw, method, need)
        assert "/" in cfg.model.name_or_path  # a hub id
        if method == "full":
            assert cfg.training.precision in ("bf16", "fp32")  # fp16 diverges when every weight trains
        if method == "qlora":
            assert cfg.training.gradient_checkpointing


def test_sizes_grow_with_the_card():
    size = {hw: _params_b(presets.load_preset(f"{hw}-qlora").model.name_or_path) for hw in GPU_GIB}
    assert size["t4-16gb"] < size["rtx4090-24gb"] < size["a100-40gb"] < size["a100-80gb"] == size["h100-80gb"]


def test_t4_presets_avoid_bf16():
    for m in ("full", "lora", "qlora"):
        assert presets.load_preset(f"t4-16gb-{m}").training.precision in ("fp16", "fp32")


@pytest.mark.parametrize("hardware,method,expected", [
    ("Tesla T4", "qlora", "t4-16gb-qlora"),
    ("NVIDIA GeForce RTX 4090", "lora", "rtx4090-24gb-lora"),
    ({"gpu_name": "NVIDIA A100-SXM4-80GB", "total_gib": 79.2}, "full", "a100-80gb-full"),
    ({"gpu_name": "NVIDIA A100-PCIE-40GB", "total_gib": 39.4}, "full", "a100-40gb-full"),
    ({"gpu_name": "NVIDIA H100 80GB HBM3", "total_gib": 79.6}, "qlora", "h100-80gb-qlora"),
    ({"gpu_name": "NVIDIA L4", "total_gib": 22.5}, "lora", "rtx4090-24gb-lora"),  # unknown: by memory
    ({"device": "mps"}, "lora", "apple-mps-lora"),
    ({"device": "mps"}, "qlora", None),  # no 4-bit kernels on a Mac
    ({"device": "cpu"}, "lora", "demo-cpu"),
    ({"device": "cpu"}, "qlora", "demo-cpu"),
    ({"device": "cpu"}, "full", "demo-cpu-full"),
    ("t4-16gb", "lora", "t4-16gb-lora"),
])
def test_preset_for(hardware, method, expected):
    assert presets.preset_for(hardware, method) == expected


def test_load_with_overrides_and_unknown_names():
    cfg = presets.load_preset("t4-16gb-lora", {"data": {"path": "mine.jsonl"}, "training": {"epochs": 1}})
    assert cfg.data.path == "mine.jsonl" and cfg.training.epochs == 1.0 and cfg.lora.r == 16
    with pytest.raises(StudioError) as e:
        presets.load_preset("v100-lora")
    assert "t4-16gb-lora" in str(e.value)  # lists what exists


def test_broken_presets_are_named(tmp_path):
    (tmp_path / "bad-lora.yaml").write_text("name: x\n  stage: [unclosed\n")
    with pytest.raises(StudioError, match="bad-lora.yaml"):
        presets.list_presets(tmp_path)
    (tmp_path / "bad-lora.yaml").write_text("name: x\ntraining: {batchsize: 2}\n")
    with pytest.raises(StudioError, match="batchsize"):
        presets.load_preset("bad-lora", folder=tmp_path)


# Public config.json of Qwen2.5-72B, for estimators whose built-in table stops at 32B (offline tests).
QWEN72 = {"model_type": "qwen2", "hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
          "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 152064, "tie_word_embeddings": False}


def test_presets_fit_by_the_vram_estimate():
    vram = pytest.importorskip("studio.vram")
    from studio import vram_arch

    for hw, gib in GPU_GIB.items():
        for m in ("full", "lora", "qlora"):
            cfg = presets.load_preset(f"{hw}-{m}")
            shape = None
            if vram_arch.builtin_shape(cfg.model.name_or_path) is None and "72B" in cfg.model.name_or_path:
                shape = vram_arch.shape_from_config(QWEN72, "Qwen2.5-72B")
            est = vram.estimate(cfg, model_shape=shape, gpu_free_gib=gib)
            assert est.fits, (hw, m, est.peak_gib)
