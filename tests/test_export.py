"""Export: adapter copy, merged model logits, model card, run report, disk-full safety, CLI.

Run folders are built here from the conftest tiny models: a LoRA adapter with random non-zero
lora_B (so a merge that does nothing would be caught), a config.yaml, metrics, status and eval.
GGUF / Ollama / Hub tests are in test_export_gguf.py and test_export_hub.py.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.errors import StudioError

REPO = Path(__file__).resolve().parent.parent


def build_run(root: Path, base_dir: Path, name: str = "demo", seed: int = 1) -> Path:
    """A finished LoRA run folder on `base_dir` following the run-folder contract."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.config import DataConfig, LoraSettings, ModelConfig, RunConfig

    run = Path(root) / f"20260101-000000-{name}"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    g = torch.Generator().manual_seed(seed)
    for n, p in model.named_parameters():
        if "lora_B" in n:  # PEFT starts lora_B at zero: make the adapter actually change the model
            p.data = torch.randn(p.shape, generator=g) * 0.05
    model.save_pretrained(run / "adapter")
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(run / "adapter")
    data = run.parent / "data.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                     {"role": "assistant", "content": f"a{i}"}]}) + "\n"
                            for i in range(7)))
    RunConfig(name=name, model=ModelConfig(name_or_path=str(base_dir)), data=DataConfig(path=str(data), eval_fraction=0.1),
              lora=LoraSettings(r=4, alpha=8)).save(run / "config.yaml")
    lines = []
    for s in range(1, 11):
        lines.append({"step": s, "epoch": s / 10, "loss": 3 - 0.2 * s, "learning_rate": 2e-4 * (1 - s / 10),
                      "grad_norm": 1.0 / s, "tokens_per_s": 900 + s, "time": float(s)})
        if s % 5 == 0:
            lines.append({"step": s, "epoch": s / 10, "eval_loss": 3.1 - 0.15 * s})
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines) + '{"step": 11, "lo')
    (run / "status.json").write_text(json.dumps({"state": "done", "started": "2026-01-01T00:00:00",
                                                 "ended": "2026-01-01T00:05:00", "peak_gpu_gib": 1.5}))
    (run / "eval.json").write_text(json.dumps({"base": {"loss": 3.0, "exact_match": 0.1},
                                               "tuned": {"loss": 1.2, "exact_match": 0.6}}))
    return run


@pytest.fixture(scope="module")
def llama_run(tiny_model_dir, tmp_path_factory) -> Path:
    return build_run(tmp_path_factory.mktemp("runs"), tiny_model_dir)


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def test_adapter_export_copies_peft_folder_and_tokenizer(llama_run, tmp_path):
    from peft import PeftConfig

    from studio.export import export_run

    res = export_run(llama_run, "adapter", tmp_path / "ad")
    names = {n for n, _ in res.files}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md"} <= names
    assert PeftConfig.from_pretrained(str(tmp_path / "ad")).r == 4
    assert "28 adapter tensors readable" in res.verification  # 2 layers x 7 linears x (A, B)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_merged_logits_equal_adapter_on_base(llama_run, tiny_model_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.export import export_run

    res = export_run(llama_run, "merged", tmp_path / "m", dtype="f16", max_shard_size="100KB")
    out = tmp_path / "m"
    assert len(list(out.glob("*.safetensors"))) > 1 and (out / "model.safetensors.index.json").is_file()
    assert (out / "generation_config.json").is_file() and (out / "tokenizer.json").is_file()
    assert "merged logits match" in res.verification
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert json.loads((out / "config.json").read_text()).get("dtype") == "float16"
    ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), llama_run / "adapter")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([AutoTokenizer.from_pretrained(out)("Ahoy! The ship sails at dawn.")["input_ids"]])
    want, got, plain = _logits(ref, ids), _logits(merged, ids), _logits(base, ids)
    assert (got - want).abs().max() < 2e-2  # f16 storage rounding only
    assert (plain - want).abs().max() > 10 * (got - want).abs().max()  # the adapter really mattered


def test_model_card_is_complete(llama_run, tmp_path):
    from studio.export import export_run

    export_run(llama_run, "adapter", tmp_path / "ad")
    card = (tmp_path / "ad" / "README.md").read_text()
    for needle in ("library_name: peft", "tiny-llama", "LoRA (r=4, alpha=8", "## Training data", "Rows in file | 7",
                   "10% held out", "## Hyperparameters", "Learning rate", "data:image/svg+xml;base64,",
                   "First train loss | 2.8000", "Best eval loss | 1.6000", "| exact_match | 0.1 | 0.6 | +0.5 |",
                   "adapter_model.safetensors", "PeftModel.from_pretrained"):
        assert needle in card, needle
    assert "base_model:" not in card.split("---")[1]  # a local path is not a hub id


def test_run_report_is_self_contained(llama_run):
    from studio.report import write_report

    page = write_report(llama_run).read_text()
    assert page.count("<script") >= 4 and "Plotly.newPlot" in page
    assert 'src="http' not in page and "src='http" not in page  # plotly.js inline, no CDN
    assert "Learning rate" in page and "exact_match" in page and "2026-01-01T00:05:00" in page


def test_disk_full_leaves_nothing_behind(llama_run, tmp_path, monkeypatch):
    import shutil

    from studio import export

    real_copy = shutil.copy2
    calls = []

    def full_disk(src, dst, *a, **k):
        calls.append(dst)
        if len(calls) > 2:  # a few files land first, so there is something to clean up
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(src, dst, *a, **k)

    monkeypatch.setattr(export.shutil, "copy2", full_disk)
    with pytest.raises(StudioError) as e:
        export.export_run(llama_run, "adapter", tmp_path / "out")
    assert "disk full" in str(e.value) and "Free some disk space" in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_not_enough_space_is_checked_before_writing(llama_run, tmp_path, monkeypatch):
    import collections

    from studio import export

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(export.shutil, "disk_usage", lambda p: usage(10**9, 10**9, 1000))
    with pytest.raises(StudioError, match="Not enough free disk space"):
        export.export_run(llama_run, "merged", tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_bad_choices_give_clear_errors(llama_run, tmp_path):
    import torch

    from studio.export import export_run

    with pytest.raises(StudioError, match="choose one of: bf16, f16"):
        export_run(llama_run, "merged", tmp_path / "x", dtype="q4_0")
    with pytest.raises(StudioError, match="Checkpoint 'checkpoint-9' not found"):
        export_run(llama_run, "adapter", tmp_path / "x", checkpoint="checkpoint-9")
    with pytest.raises(StudioError, match="no config.yaml"):
        export_run(tmp_path, "adapter", tmp_path / "x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("keep me")
    with pytest.raises(StudioError, match="already exists"):
        export_run(llama_run, "adapter", tmp_path / "busy")
    assert (tmp_path / "busy" / "f").read_text() == "keep me"
    if not torch.cuda.is_available():
        with pytest.raises(StudioError, match="needs a CUDA GPU.*gguf"):
            export_run(llama_run, "bnb4", tmp_path / "b")


def test_checkpoint_is_exported(llama_run, tmp_path):
    import shutil

    from studio.export import export_run, list_checkpoints

    ck = llama_run / "checkpoints" / "checkpoint-5"
    shutil.copytree(llama_run / "adapter", ck, dirs_exist_ok=True)
    (ck / "optimizer.pt").write_bytes(b"x" * 100)
    try:
        assert list_checkpoints(llama_run) == ["final", "checkpoint-5"]
        res = export_run(llama_run, "adapter", tmp_path / "ck", checkpoint="checkpoint-5")
        assert "optimizer.pt" not in {n for n, _ in res.files}
    finally:
        shutil.rmtree(llama_run / "checkpoints")


def test_cli_json(llama_run, tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "studio", "export", str(llama_run), "--format", "adapter",
                           "--out", str(out), "--json"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] and data["out_dir"] == str(out) and (out / "adapter_model.safetensors").is_file()
    proc = subprocess.run([sys.executable, "-m", "studio", "export", str(llama_run), "--format", "gguf",
                           "--dtype", "q5_k", "--out", str(tmp_path / "bad")], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "f16, bf16, q8_0, q4_0" in proc.stderr and "Traceback" not in proc.stderr


def test_studio_export_import_is_light():
    code = ("import sys, studio.export, studio.export_gguf, studio.model_card, studio.report, studio.hub, "
            "studio.ollama; bad = [m for m in ('torch', 'transformers', 'gradio', 'peft', 'gguf') if m in sys.modules];"
            " print(bad)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_export_tab_builds_and_guards_output_folder(llama_run, tmp_path):
    import gradio as gr

    from studio.ui import export_tab
    from studio.ui.shared import Shared

    shared = Shared(allowed_roots=[llama_run.parent.resolve(), tmp_path.resolve()], assets_dir=tmp_path,
                    runs_root=llama_run.parent)
    with gr.Blocks():
        shared.run_dir = gr.State("")
        export_tab.build(shared)
    assert export_tab.run_choices(llama_run.parent) == [(f"{llama_run.name} (done)", str(llama_run))]
    with pytest.raises(StudioError, match="outside the allowed folders"):
        export_tab.check_paths(shared, str(llama_run), "/etc/studio-export")
    with pytest.raises(StudioError, match="Pick a run first"):
        export_tab.check_paths(shared, None, "")
    seen = []
    summary, card, folder = export_tab.do_export(shared, str(llama_run), "final", "adapter", "",
                                                 str(tmp_path / "ui"), False, lambda f, desc: seen.append(f))
    assert folder == str(tmp_path / "ui") and "adapter_model.safetensors" in summary and "**Check:**" in summary
    assert card.startswith("\n# demo") and seen[-1] == 1.0
    with pytest.raises(StudioError, match="Export something first"):
        export_tab.do_push("", "me/x", "hf_x", True)


def test_output_folder_guards(llama_run, tmp_path):
    from studio.export import export_run

    with pytest.raises(StudioError, match="would replace the run's own files"):
        export_run(llama_run, "adapter", llama_run / "adapter", overwrite=True)
    with pytest.raises(StudioError, match="would replace the run's own files"):
        export_run(llama_run, "adapter", llama_run.parent, overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(StudioError, match="not an earlier export"):
        export_run(llama_run, "adapter", tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"
    export_run(llama_run, "adapter", tmp_path / "e")
    (tmp_path / "e" / "stale.bin").write_bytes(b"old")
    export_run(llama_run, "adapter", tmp_path / "e", overwrite=True)  # an earlier export is replaced whole
    assert not (tmp_path / "e" / "stale.bin").exists() and (tmp_path / "e" / "README.md").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e", "mine"]


def test_gguf_disk_full_leaves_nothing_behind(llama_run, tmp_path, monkeypatch):
    import gguf

    real = gguf.GGUFWriter.write_tensor_data
    written = []

    def full_disk(self, tensor, *a, **k):
        written.append(1)
        if len(written) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, tensor, *a, **k)

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensor_data", full_disk)
    from studio.export import export_run

    with pytest.raises(StudioError, match="disk full.*Free some disk space"):
        export_run(llama_run, "ollama", tmp_path / "o", dtype="q8_0")
    assert len(written) == 4 and list(tmp_path.iterdir()) == []


def test_full_finetune_run_exports_merged_and_gguf(tiny_model_dir, tmp_path):
    import shutil

    from studio.config import ModelConfig, RunConfig
    from studio.export import export_run

    run = tmp_path / "runs" / "20260101-000000-full"
    shutil.copytree(tiny_model_dir, run / "model")
    RunConfig(name="full", adapter="full", model=ModelConfig(name_or_path="/nonexistent/base")).save(run / "config.yaml")
    res = export_run(run, "merged", tmp_path / "m")
    assert "full model" in res.verification and (tmp_path / "m" / "model.safetensors").is_file()
    res = export_run(run, "gguf", tmp_path / "g", dtype="f16")
    assert "GGUF read back" in res.verification
    assert "Full fine-tuning" in (tmp_path / "g" / "README.md").read_text()
    with pytest.raises(StudioError, match="no adapter to export"):
        export_run(run, "adapter", tmp_path / "a")


@pytest.mark.gpu
def test_bnb4_export_on_cuda(llama_run, tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from transformers import AutoModelForCausalLM

    from studio.export import export_run

    res = export_run(llama_run, "bnb4", tmp_path / "q")
    assert "nf4" in res.verification and not (tmp_path / "q" / ".merged16").exists()
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "q", device_map={"": 0})
    assert any(type(m).__name__ == "Linear4bit" for m in model.modules())
