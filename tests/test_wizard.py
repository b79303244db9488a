"""The wizard's decision tree, branch by branch: approach, flags, stages, method/size by hardware,
the VRAM check with its fixes, the CLI, and that every config it hands over validates."""

from __future__ import annotations

import json
import sys
import types

import pytest
import yaml

from studio import wizard, wizard_cli
from studio.config import RunConfig
from studio.errors import StudioError
from studio.wizard import Answers, recommend

T4 = {"device": "cuda", "gpu_name": "Tesla T4", "free_gib": 14.6, "total_gib": 15.0}
RTX4090 = {"device": "cuda", "gpu_name": "NVIDIA GeForce RTX 4090", "free_gib": 23.0, "total_gib": 23.6}
A100_80 = {"device": "cuda", "gpu_name": "NVIDIA A100-SXM4-80GB", "free_gib": 78.5, "total_gib": 79.2}
SMALL = {"device": "cuda", "gpu_name": "NVIDIA GeForce RTX 3070", "free_gib": 7.5, "total_gib": 8.0}
MPS = {"device": "mps", "gpu_name": "Apple silicon (MPS)", "free_gib": 14.0, "total_gib": 32.0}
CPU = {"device": "cpu"}


@pytest.fixture(autouse=True)
def no_vram_module(monkeypatch):
    """Method/size tests run on the wizard's own rule; tests that want an estimator install one."""
    monkeypatch.setitem(sys.modules, "studio.vram", None)  # `from studio.vram import ...` -> ImportError


def ans(**kw) -> Answers:
    base = dict(goal="style", prompting="partly", n_examples=800, data_kinds=["chat"], hardware=RTX4090)
    return Answers(**{**base, **kw})


def ok(rec) -> RunConfig:
    assert rec.approach == "fine_tune" and rec.config is not None
    assert rec.config.validate() == []
    return rec.config


def text(rec) -> str:
    return " ".join(rec.reasons + [f.text for f in rec.flags]).lower()


# -- whether to fine-tune at all -----------------------------------------------------------------
def test_prompting_comes_first_when_not_tried():
    rec = recommend(ans(prompting="not_tried", privacy=True))
    assert rec.approach == "prompting" and rec.config is None
    assert any(f.kind == "red" and "prompt" in f.text.lower() for f in rec.flags)


def test_prompt_that_works_is_kept_without_privacy_or_cost():
    rec = recommend(ans(prompting="works"))
    assert rec.approach == "prompting" and rec.config is None


@pytest.mark.parametrize("goal,fresh", [("knowledge", False), ("style", True)])
def test_fresh_or_private_knowledge_goes_to_rag(goal, fresh):
    rec = recommend(ans(goal=goal, needs_fresh_knowledge=fresh))
    assert rec.approach == "rag" and rec.config is None
    assert "retriev" in text(rec)


@pytest.mark.parametrize("kw,word", [
    (dict(goal="style"), "style"), (dict(goal="format"), "format"),
    (dict(goal="task", prompting="works", privacy=True), "in house"),
    (dict(goal="task", prompting="works", cost_at_scale=True), "requests"),
])
def test_fine_tune_for_style_format_privacy_cost(kw, word):
    rec = recommend(ans(**kw))
    cfg = ok(rec)
    assert word in text(rec)
    assert any(f.kind == "green" for f in rec.flags)
    assert cfg.stage == "sft" and rec.stage == "sft"


def test_cost_at_scale_keeps_the_model_small():
    rec = recommend(ans(cost_at_scale=True, hardware=A100_80))
    assert wizard.MODEL_SIZES[rec.model_size] <= 3.1


@pytest.mark.parametrize("n", [0, 50, 99])
def test_fewer_than_100_examples_is_not_yet(n):
    rec = recommend(ans(n_examples=n))
    assert rec.approach == "not_yet" and rec.config is None
    assert any(f.kind == "red" and "100" in f.text for f in rec.flags)
    assert rec.stage == "sft" and rec.method  # the plan is still shown


def test_flags_by_quantity():
    thin = recommend(ans(n_examples=200))
    ok(thin)
    assert any(f.kind == "red" and "thin" in f.text for f in thin.flags)
    plenty = recommend(ans(n_examples=2000))
    assert any(f.kind == "green" and "2000" in f.text for f in plenty.flags)


# -- stages --------------------------------------------------------------------------------------
def test_raw_text_gives_continued_pretraining():
    rec = recommend(ans(goal="domain", data_kinds=["raw_text"]))
    cfg = ok(rec)
    assert rec.stage == "pretrain" and cfg.stage == "pretrain"
    assert cfg.data.format in ("auto", "text") and cfg.data.completion_only is False


def test_preferences_give_dpo():
    rec = recommend(ans(goal="alignment", data_kinds=["preferences"], n_examples=3000))
    cfg = ok(rec)
    assert rec.stage == "dpo" and cfg.stage == "dpo" and cfg.data.format in ("auto", "preference")
    assert cfg.training.beta == 0.1 and cfg.training.learning_rate < 1e-4 and not cfg.data.packing


def test_raw_text_then_instructions_then_preferences_is_multi_stage():
    rec = recommend(ans(goal="domain", data_kinds=["raw_text", "instructions", "preferences"], n_examples=5000,
                        dataset_path="my/pairs.jsonl"))
    cfg = ok(rec)
    assert rec.stage == "multi-stage" and rec.stages == ["pretrain", "sft", "dpo"]
    subs = cfg.stage_configs()
    assert [c.stage for c in subs] == ["pretrain", "sft", "dpo"]
    assert subs[2].data.path == "my/pairs.jsonl" and subs[0].data.path != "my/pairs.jsonl"
    assert subs[2].training.learning_rate < subs[1].training.learning_rate


def test_reward_model_and_rl_need_many_pairs():
    big = recommend(ans(goal="alignment", data_kinds=["preferences"], n_examples=20000, want_rl=True))
    cfg = ok(big)
    assert big.stage == "reward+rl" and [c.stage for c in cfg.stage_configs()] == ["reward", "grpo"]
    small = recommend(ans(goal="alignment", data_kinds=["preferences"], n_examples=2000, want_rl=True))
    assert small.stage == "dpo" and any("10,000" in f.text for f in small.flags)


def test_alignment_without_pairs_is_flagged():
    rec = recommend(ans(goal="alignment", data_kinds=["chat"]))
    assert rec.stage == "sft" and any(f.kind == "red" and "pairs" in f.text for f in rec.flags)


# -- method and model size by hardware ---------------------------------------------------------------
def test_cpu_gets_the_demo():
    rec = recommend(ans(hardware=CPU, data_kinds=["preferences"], n_examples=900))
    cfg = ok(rec)
    assert rec.model_size == "demo" and cfg.model.name_or_path.endswith("demo-model") and cfg.adapter == "lora"
    assert rec.preset == "demo-cpu"
    assert any(f.kind == "red" and "gpu" in f.text.lower() for f in rec.flags)


def test_missing_hardware_means_cpu():
    assert recommend(ans(hardware={})).model_size == "demo"


@pytest.mark.parametrize("hw", [T4, SMALL])
def test_small_gpu_gets_qlora(hw):
    rec = recommend(ans(hardware=hw))
    cfg = ok(rec)
    assert cfg.adapter == "qlora" and cfg.training.optim == "paged_adamw_8bit"
    assert cfg.model.name_or_path.startswith("Qwen/") and cfg.training.gradient_checkpointing


def test_t4_computes_in_fp16_and_full_in_fp32():
    assert ok(recommend(ans(hardware=T4))).training.precision == "fp16"
    cfg = ok(recommend(ans(hardware=T4, method="full")))
    assert cfg.adapter == "full" and cfg.training.precision == "fp32"


def test_big_gpu_gets_lora_and_full_for_a_domain_shift():
    cfg = ok(recommend(ans(hardware=RTX4090)))
    assert cfg.adapter == "lora" and "7B" in cfg.model.name_or_path
    rec = recommend(ans(goal="domain", data_kinds=["raw_text"], hardware=A100_80))
    cfg = ok(rec)
    assert cfg.adapter == "full" and cfg.training.precision == "bf16" and cfg.training.learning_rate <= 5e-5
    assert rec.preset == "a100-80gb-full"


def test_size_preference():
    assert recommend(ans(hardware=A100_80, model_size="large")).model_size == "72B"
    assert recommend(ans(hardware=A100_80, model_size="small")).model_size == "3B"
    assert recommend(ans(hardware=RTX4090, model_size="large")).method == "qlora"


def test_mps_never_gets_qlora():
    rec = recommend(ans(hardware=MPS, method="qlora"))
    cfg = ok(rec)
    assert cfg.adapter == "lora" and cfg.training.precision == "auto"
    assert any("nvidia" in f.text.lower() for f in rec.flags)
    assert rec.preset == "apple-mps-lora"


def test_prompt_tuning_only_for_single_stage_sft():
    cfg = ok(recommend(ans(method="prompt_tuning")))
    assert cfg.adapter == "prompt_tuning" and cfg.training.learning_rate > 1e-3
    rec = recommend(ans(method="prompt_tuning", data_kinds=["preferences"]))
    assert ok(rec).adapter == "lora" and any("prompt tuning" in f.text.lower() for f in rec.flags)


# -- dataset stats ---------------------------------------------------------------------------------
def test_dataset_stats_override_the_answers():
    rec = recommend(ans(n_examples=5000, data_kinds=["chat"], dataset_path="d.jsonl",
                        dataset_stats={"rows": 60, "format": "preference", "tokens": {"p95": 700}}))
    assert rec.approach == "not_yet" and rec.stage == "dpo"
    rec = recommend(ans(dataset_path="d.jsonl", dataset_stats={"num_rows": 1200, "p95_tokens": 1500}))
    cfg = ok(rec)
    assert cfg.data.max_length == 2048 and cfg.data.path == "d.jsonl" and "1200 rows" in text(rec)


# -- the VRAM check -----------------------------------------------------------------------------------
def fake_vram(monkeypatch, fits_when):
    calls = []

    def estimate(cfg, gpu_free_gib):
        calls.append(cfg)
        fits = fits_when(cfg)
        return types.SimpleNamespace(peak_gib=10.0 if fits else 40.0, fits=fits, advice=["use QLoRA"])
    monkeypatch.setitem(sys.modules, "studio.vram", types.SimpleNamespace(estimate=estimate))
    return calls


def test_vram_fixes_are_applied_cheapest_first(monkeypatch):
    calls = fake_vram(monkeypatch, lambda c: c.adapter == "qlora")
    rec = recommend(ans(hardware=A100_80, model_size="medium"))
    cfg = ok(rec)
    assert cfg.adapter == "qlora" and cfg.training.gradient_checkpointing and cfg.training.batch_size == 1
    assert cfg.training.batch_size * cfg.training.grad_accum == 16  # the effective batch is kept
    assert not calls[0].training.gradient_checkpointing and calls[1].training.gradient_checkpointing
    assert rec.vram_fits is True and rec.vram_peak_gib == 10.0
    assert "gradient checkpointing" in text(rec) and "qlora" in text(rec)


def test_several_gpus_train_together_and_split_the_model_when_needed(monkeypatch):
    four = {**A100_80, "num_gpus": 4}
    calls = fake_vram(monkeypatch, lambda c: c.training.distributed == "fsdp")
    rec = recommend(ans(hardware=four, model_size="medium", method="full"))
    cfg = ok(rec)
    # All four GPUs from the start (DDP, same effective batch of 16); when that doesn't fit, FSDP
    # comes before any fix that costs speed or quality, and the method stays full fine-tuning.
    t = cfg.training
    assert cfg.adapter == "full" and t.num_gpus == 4 and t.distributed == "fsdp"
    assert t.batch_size * t.grad_accum * t.num_gpus == 16 and not t.gradient_checkpointing
    assert [c.training.distributed for c in calls] == ["ddp", "fsdp"]
    assert "all 4 gpus train together" in text(rec) and "over the 4 gpus with fsdp" in text(rec)
    # One GPU: the same plan takes the single-GPU fixes.
    fake_vram(monkeypatch, lambda c: c.training.gradient_checkpointing)
    assert ok(recommend(ans(hardware=A100_80, model_size="medium", method="full"))).training.num_gpus == 1


def test_vram_check_covers_every_stage(monkeypatch):
    calls = fake_vram(monkeypatch, lambda c: c.stage != "dpo" or c.adapter == "qlora")
    rec = recommend(ans(data_kinds=["chat", "preferences"], n_examples=3000))
    cfg = ok(rec)
    assert rec.stage == "multi-stage" and {c.stage for c in calls} == {"sft", "dpo"}
    assert cfg.adapter == "qlora" and all(c.adapter == "qlora" for c in cfg.stage_configs())


def test_vram_that_never_fits_says_so(monkeypatch):
    fake_vram(monkeypatch, lambda c: False)
    rec = recommend(ans(hardware=T4))
    assert rec.vram_fits is False and ok(rec).data.max_length == 512
    assert any(f.kind == "red" and "40.0 GiB" in f.text for f in rec.flags) and "use qlora" in text(rec)


def test_missing_or_failing_estimator_degrades(monkeypatch):
    assert "rough rule" in text(recommend(ans()))

    def broken(cfg, gpu_free_gib):
        raise StudioError("unknown model")
    monkeypatch.setitem(sys.modules, "studio.vram", types.SimpleNamespace(estimate=broken))
    rec = recommend(ans())
    assert ok(rec) and "unknown model" in text(rec) and rec.vram_fits is None


def test_real_estimator_fits_full_fine_tuning_across_gpus(monkeypatch):
    monkeypatch.delitem(sys.modules, "studio.vram")
    pytest.importorskip("studio.vram")
    rec = recommend(ans(hardware={**A100_80, "num_gpus": 4}, model_size="medium", method="full"))
    cfg = ok(rec)
    # One A100 holds full fine-tuning of 3B at most; four with FSDP hold the 7B.
    assert rec.model_size == "7B" and cfg.adapter == "full", rec.reasons
    assert rec.vram_fits is True and cfg.training.num_gpus == 4 and cfg.training.distributed == "fsdp", rec.reasons


def test_real_estimator_accepts_the_wizard_configs(monkeypatch):
    monkeypatch.delitem(sys.modules, "studio.vram")
    pytest.importorskip("studio.vram")
    for hw in (T4, RTX4090, A100_80):
        rec = recommend(ans(hardware=hw))
        ok(rec)
        assert rec.vram_fits is True, (hw["gpu_name"], rec.reasons)


# -- answers, hardware, CLI ----------------------------------------------------------------------------
def test_bad_answers_name_the_field_and_the_choices():
    with pytest.raises(StudioError) as e:
        Answers.from_dict({"goal": "world peace", "n_examples": -3, "data_kinds": "chat,videos", "colour": 1})
    assert "colour" in str(e.value)
    with pytest.raises(StudioError) as e:
        Answers.from_dict({"goal": "world peace", "n_examples": -3, "data_kinds": "chat,videos"})
    msg = str(e.value)
    assert "goal" in msg and "style" in msg and "negative" in msg and "videos" in msg


def test_detect_hardware_without_the_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "studio.hardware", None)
    monkeypatch.delattr("studio.hardware", raising=False)
    hw = wizard.detect_hardware()
    assert hw["device"] == "cpu" and "note" in hw


def test_detect_hardware_reads_the_first_gpu(monkeypatch):
    gpu = types.SimpleNamespace(name="Tesla T4", free_gib=14.5, total_gib=15.0)
    fake = types.SimpleNamespace(gpus=lambda: [gpu], cpu_ram=lambda: {"ram_total_gib": 12.0},
                                 mps_available=lambda: False)
    monkeypatch.setitem(sys.modules, "studio.hardware", fake)
    monkeypatch.setattr("studio.hardware", fake, raising=False)
    hw = wizard.detect_hardware()
    assert hw["device"] == "cuda" and hw["gpu_name"] == "Tesla T4" and hw["free_gib"] == 14.5


def test_cli_prints_json_and_saves_a_loadable_config(tmp_path, capsys):
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump({"goal": "format", "prompting": "fails", "n_examples": 1500,
                                       "data_kinds": ["instructions"], "hardware": T4}))
    out = tmp_path / "cfg.yaml"
    assert wizard_cli.main(["--answers", str(answers), "--json", "--save", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["approach"] == "fine_tune" and data["config"]["adapter"] == "qlora"
    assert RunConfig.load(out).validate() == []
    assert wizard_cli.main(["--answers", str(answers)]) == 0
    assert "Recommendation: Fine-tune" in capsys.readouterr().out


def test_cli_missing_answers_file(tmp_path):
    with pytest.raises(StudioError, match="not found"):
        wizard_cli.main(["--answers", str(tmp_path / "nope.yaml")])


# -- the Wizard tab's handlers (widgets are wiring only) -------------------------------------------
FORM = dict(goal="format", prompting="fails", needs_fresh_knowledge=False, needs_consistency=True, privacy=False,
            cost_at_scale=False, n_examples=1200.0, data_kinds=["instructions"], dataset_path="", want_rl=False,
            model_size="auto", method="auto")


def test_tab_advice_for_a_planned_gpu():
    from studio.ui import wizard_tab

    md, text = wizard_tab.advise(FORM, "t4-16gb", {})
    assert "Fine-tune" in md and "qlora" in md
    cfg = RunConfig.from_yaml(text)
    assert cfg.adapter == "qlora" and cfg.validate() == []
    md, text = wizard_tab.advise({**FORM, "n_examples": None}, "rtx4090-24gb", None)
    assert "Not yet" in md and text == ""


def test_tab_use_config_checks_the_yaml():
    import gradio as gr

    from studio.ui import wizard_tab

    yaml_text = wizard_tab.advise(FORM, "a100-80gb", {})[1]
    assert wizard_tab.use_config(yaml_text)[0] == yaml_text
    with pytest.raises(gr.Error, match="batch_size"):
        wizard_tab.use_config("name: x\ntraining: {batch_size: 0}\n")
    with pytest.raises(gr.Error, match="YAML"):
        wizard_tab.use_config("name: [unclosed\n")
    code, state, note = wizard_tab.demo_preset()
    assert code == state and "#" in code and RunConfig.from_yaml(code).validate() == []


def test_tab_builds_without_shared_states():
    import gradio as gr

    from studio import paths
    from studio.ui import wizard_tab
    from studio.ui.shared import Shared

    shared = Shared(allowed_roots=[], assets_dir=paths.assets_dir(), runs_root=paths.runs_root())
    with gr.Blocks() as demo:
        wizard_tab.build(shared)
    labels = {getattr(b, "value", None) for b in demo.blocks.values() if isinstance(b, gr.Button)}
    assert {"Use this config", "Use the demo preset", "Get my recommendation"} <= labels
    assert len(open(wizard_tab.__file__).read().splitlines()) < 250


@pytest.mark.slow
def test_a_wizard_plan_trains_end_to_end(tiny_model_dir, tmp_path, runs_root):
    """The multi-stage plan for a 24 GB GPU, shrunk onto the tiny model and the CPU, runs to done."""
    from studio import runs

    rows = {"pretrain": [{"text": f"The ship sails at dawn, matey, with {i} barrels of rum."} for i in range(40)],
            "sft": [{"messages": [{"role": "user", "content": f"Question {i}?"},
                                  {"role": "assistant", "content": "Ahoy! Arr!"}]} for i in range(40)],
            "dpo": [{"prompt": f"Greet me ({i})", "chosen": "Ahoy, matey!", "rejected": "Hello."} for i in range(40)]}
    files = {}
    for stage, items in rows.items():
        files[stage] = tmp_path / f"{stage}.jsonl"
        files[stage].write_text("".join(json.dumps(r) + "\n" for r in items))
    rec = recommend(ans(goal="domain", data_kinds=["raw_text", "chat", "preferences"], n_examples=3000))
    d = ok(rec).to_dict()
    d["model"]["name_or_path"] = str(tiny_model_dir)
    d["data"].update(path=str(files["pretrain"]), max_length=64)
    d["training"].update(max_steps=3, batch_size=2, grad_accum=1, use_cpu=True, logging_steps=1)
    for s in d["stages"]:
        s["data"]["path"] = str(files[s["stage"]])
    cfg = RunConfig.from_dict(d).check()
    assert [c.stage for c in cfg.stage_configs()] == ["pretrain", "sft", "dpo"]
    run_dir = runs.create_run(cfg, runs_root)
    proc = runs.start(run_dir)
    assert proc.wait(timeout=600) == 0, runs.log_tail(run_dir)
    assert runs.status(run_dir)["state"] == "done"
    assert (run_dir / "adapter").is_dir()
