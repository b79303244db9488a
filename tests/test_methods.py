"""Every training method runs end to end through the worker on CPU with a tiny model.

SFT (full, LoRA, DoRA, rsLoRA, QLoRA, prompt and prefix tuning), continued pre-training, DPO
(adapter-disabled reference and a frozen copy), reward model, GRPO with rule rewards.
The worker runs in-process here (same code as the subprocess, minus the process start).
"""

from __future__ import annotations

import json

import pytest

from studio import runs
from studio.config import RunConfig
from studio.train import worker

PIRATE = "Ahoy! The sea is wide, matey. Arr!"
PLAIN = "The sea is wide."


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("method-data")
    qs = [f"Tell me about the sea, number {i}." for i in range(48)]
    with open(d / "chat.jsonl", "w") as f:
        for q in qs:
            f.write(json.dumps({"messages": [{"role": "user", "content": q},
                                             {"role": "assistant", "content": PIRATE}]}) + "\n")
    with open(d / "pref.jsonl", "w") as f:
        for q in qs:
            f.write(json.dumps({"prompt": q, "chosen": PIRATE, "rejected": PLAIN}) + "\n")
    with open(d / "prompts.jsonl", "w") as f:
        for q in qs:
            f.write(json.dumps({"prompt": q, "completion": PIRATE}) + "\n")
    (d / "domain.txt").write_text("\n".join(f"The ship number {i} sails over the wide blue sea at dawn." for i in range(80)))
    return d


def run(cfg_dict, runs_root):
    base = {"training": {"max_steps": 4, "batch_size": 4, "learning_rate": 5e-3, "logging_steps": 1,
                         "save_steps": 100, "warmup": 0.0}, "data": {"max_length": 64}}
    cfg = RunConfig.from_dict(_merge(base, cfg_dict))
    run_dir = runs.create_run(cfg, runs_root)
    rc = worker.main([str(run_dir)])
    st = runs.status(run_dir)
    assert rc == 0 and st["state"] == "done", st.get("error") or runs.log_tail(run_dir)
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]
    assert rows and all(r["loss"] == r["loss"] for r in rows)  # logged, not NaN
    return run_dir, st, rows


def _merge(a, b):
    from studio.config import deep_merge

    return deep_merge(a, b)


@pytest.mark.parametrize("adapter,extra", [
    ("full", {}),
    ("lora", {"lora": {"use_dora": True}}),
    ("lora", {"lora": {"use_rslora": True, "r": 8}}),
    ("qlora", {}),
    ("prompt_tuning", {"lora": {"num_virtual_tokens": 8}}),
    ("prefix_tuning", {"lora": {"num_virtual_tokens": 8}}),
])
def test_sft_adapters(adapter, extra, tiny_model_dir, data_dir, runs_root):
    run_dir, st, _ = run({"adapter": adapter, "model": {"name_or_path": str(tiny_model_dir)},
                          "data": {"path": str(data_dir / "chat.jsonl")}, **extra}, runs_root)
    out = run_dir / ("model" if adapter == "full" else "adapter")
    assert (out / ("model.safetensors" if adapter == "full" else "adapter_model.safetensors")).exists()
    if adapter == "qlora":
        assert st["quantization"] == "nf4"
    if adapter != "full":
        conf = json.loads((out / "adapter_config.json").read_text())
        assert conf["peft_type"] == {"lora": "LORA", "qlora": "LORA", "prompt_tuning": "PROMPT_TUNING",
                                     "prefix_tuning": "PREFIX_TUNING"}[adapter]
        if extra.get("lora", {}).get("use_dora"):
            assert conf["use_dora"] is True
        if extra.get("lora", {}).get("use_rslora"):
            assert conf["use_rslora"] is True


def test_sft_on_prompt_completion(tiny_model_dir, data_dir, runs_root):
    run({"model": {"name_or_path": str(tiny_model_dir)}, "data": {"path": str(data_dir / "prompts.jsonl")}},
        runs_root)


def test_continued_pretraining_on_raw_text(tiny_model_dir, data_dir, runs_root):
    _, _, rows = run({"stage": "pretrain", "model": {"name_or_path": str(tiny_model_dir)},
                      "data": {"path": str(data_dir / "domain.txt"), "packing": True}}, runs_root)
    assert rows


@pytest.mark.parametrize("adapter", ["lora", "full"])
def test_dpo(adapter, tiny_model_dir, data_dir, runs_root):
    run_dir, _, rows = run({"stage": "dpo", "adapter": adapter, "model": {"name_or_path": str(tiny_model_dir)},
                            "data": {"path": str(data_dir / "pref.jsonl")}}, runs_root)
    assert any("rewards/margins" in r for r in rows)


def test_dpo_lora_reference_is_the_adapter_disabled_policy(tiny_model_dir, data_dir, tmp_path):
    from studio.train import build
    from studio.train.stages import make_trainer

    cfg = RunConfig.from_dict({"stage": "dpo", "model": {"name_or_path": str(tiny_model_dir)},
                               "data": {"path": str(data_dir / "pref.jsonl"), "max_length": 64},
                               "training": {"max_steps": 1}})
    trainer = make_trainer(cfg, str(tiny_model_dir), tmp_path, build.device_info(cfg), [])
    assert trainer.ref_model is None  # no second copy: the reference is the base without the adapter
    full = RunConfig.from_dict({**cfg.to_dict(), "adapter": "full"})
    trainer = make_trainer(full, str(tiny_model_dir), tmp_path, build.device_info(full), [])
    assert trainer.ref_model is not None


def test_reward_model(tiny_model_dir, data_dir, runs_root):
    run_dir, _, _ = run({"stage": "reward", "model": {"name_or_path": str(tiny_model_dir)},
                         "data": {"path": str(data_dir / "pref.jsonl")}}, runs_root)
    assert (run_dir / "reward_model" / "adapter_config.json").exists()


def test_grpo_with_rule_rewards(tiny_model_dir, data_dir, runs_root):
    _, _, rows = run({"stage": "grpo", "model": {"name_or_path": str(tiny_model_dir)},
                      "data": {"path": str(data_dir / "prompts.jsonl")},
                      "training": {"reward": "starts_with:Ahoy!,ends_with:Arr!", "num_generations": 2,
                                   "max_new_tokens": 8, "batch_size": 2, "max_steps": 2}}, runs_root)
    assert any("reward" in k for r in rows for k in r)


def test_rule_rewards_score_completions():
    from studio.errors import StudioError
    from studio.train.rewards import parse_rules, rule_reward

    f = rule_reward(parse_rules("starts_with:Ahoy!,ends_with:Arr!,max_words:5"))
    assert f(["Ahoy! yes Arr!", "no", [{"role": "assistant", "content": "Ahoy! a b c d e f Arr!"}]]) == [3.0, 1.0, 2.0]
    with pytest.raises(StudioError, match="Unknown reward rule"):
        parse_rules("sounds_like:pirate")


def test_tracking_to_tensorboard_and_trackio(tiny_model_dir, data_dir, runs_root):
    pytest.importorskip("tensorboard")
    pytest.importorskip("trackio")
    cfg = RunConfig.from_dict({"model": {"name_or_path": str(tiny_model_dir)},
                               "data": {"path": str(data_dir / "chat.jsonl"), "max_length": 64},
                               "training": {"report_to": ["tensorboard", "trackio"], "max_steps": 2,
                                            "save_steps": 100}})
    run_dir = runs.create_run(cfg, runs_root)
    # A fresh worker process: trackio reads where to write when it is first imported.
    assert runs.start(run_dir).wait(timeout=240) == 0, runs.log_tail(run_dir)
    assert list(run_dir.glob("checkpoints/runs/*/events.out.tfevents.*"))
    assert list((runs_root / ".trackio").rglob("fine-tune-studio*.db"))


def test_eval_split_early_stopping_and_best_checkpoints(tiny_model_dir, data_dir, runs_root):
    run_dir, st, rows = run({"model": {"name_or_path": str(tiny_model_dir)},
                             "data": {"path": str(data_dir / "chat.jsonl"), "eval_fraction": 0.25},
                             "training": {"max_steps": 8, "eval_steps": 2, "early_stopping_patience": 2,
                                          "save_total_limit": 2, "learning_rate": 1e-2}}, runs_root)
    evals = [r for r in runs.read_metrics(run_dir) if "eval_loss" in r]
    assert len(evals) >= 2
    assert len(list((run_dir / "checkpoints").glob("checkpoint-*"))) <= 2
    assert sum(1 for _ in open(run_dir / "eval.jsonl")) == 12  # 25% of 48 rows held out


def test_autotune_turns_gc_off_when_it_fits_and_keeps_it_when_not():
    from studio.train.autotune import tune_for_gpu

    cfg = RunConfig.from_dict({"model": {"name_or_path": "qwen2.5-0.5b"},
                               "data": {"max_length": 1024},
                               "training": {"gradient_checkpointing": True, "batch_size": 4}})
    tuned, notes = tune_for_gpu(cfg, 80.0)
    assert not tuned.training.gradient_checkpointing and tuned.data.packing and tuned.data.padding_free
    assert tuned.training.precision == "bf16" and any("checkpointing off" in n for n in notes)
    big = RunConfig.from_dict({**cfg.to_dict(), "model": {"name_or_path": "llama-3.1-70b"}})
    tuned, notes = tune_for_gpu(big, 80.0)
    assert tuned.training.gradient_checkpointing and any("kept on" in n for n in notes)


@pytest.mark.parametrize("optim", ["adafactor", "adamw_8bit", "paged_adamw_8bit", "sgd", "adamw_torch_fused"])
def test_optimizers(optim, tiny_model_dir, data_dir, runs_root):
    run({"model": {"name_or_path": str(tiny_model_dir)}, "data": {"path": str(data_dir / "chat.jsonl")},
         "training": {"optim": optim, "max_steps": 2}}, runs_root)


def test_fp16_on_cpu_fails_with_the_fix(tiny_model_dir, data_dir, runs_root):
    cfg = RunConfig.from_dict({"model": {"name_or_path": str(tiny_model_dir)},
                               "data": {"path": str(data_dir / "chat.jsonl")},
                               "training": {"precision": "fp16", "use_cpu": True}})
    run_dir = runs.create_run(cfg, runs_root)
    assert worker.main([str(run_dir)]) == 2
    assert "fp16 mixed precision needs an NVIDIA GPU" in runs.status(run_dir)["error"]


def test_reward_model_then_grpo_uses_it(tiny_model_dir, data_dir, runs_root):
    """Two stages: the reward stage's model scores the GRPO stage's completions."""
    run_dir, st, rows = run({"model": {"name_or_path": str(tiny_model_dir)},
                             "stages": [{"stage": "reward", "data": {"path": str(data_dir / "pref.jsonl")}},
                                        {"stage": "grpo", "data": {"path": str(data_dir / "prompts.jsonl")},
                                         "training": {"num_generations": 2, "max_new_tokens": 8,
                                                      "batch_size": 2, "max_steps": 2}}]}, runs_root)
    assert st["stages_done"] == [0, 1] and st["reward_model"].endswith("0-reward")
    assert any(r.get("stage") == "grpo" and any("reward" in k for k in r) for r in rows)


@pytest.mark.slow
def test_torch_compile_trains_like_eager(tiny_model_dir, data_dir, runs_root):
    # In a subprocess: compiled graphs and dynamo's caches stay out of this test process.
    losses = {}
    for compiled in (False, True):
        cfg = RunConfig.from_dict({"name": f"compile-{compiled}", "model": {"name_or_path": str(tiny_model_dir)},
                                   "data": {"path": str(data_dir / "chat.jsonl"), "max_length": 64},
                                   "training": {"max_steps": 4, "batch_size": 4, "learning_rate": 5e-3,
                                                "logging_steps": 1, "save_steps": 100, "torch_compile": compiled}})
        run_dir = runs.create_run(cfg, runs_root)
        assert runs.start(run_dir).wait(timeout=600) == 0, runs.log_tail(run_dir, 30)
        losses[compiled] = [r["loss"] for r in runs.read_metrics(run_dir) if "loss" in r]
    assert losses[True][-1] < losses[True][0]
    assert losses[True] == pytest.approx(losses[False], rel=1e-3)  # same math, fused kernels
