"""The training worker through its real entry points: subprocess runs, stop, crash, resume, queue.

All runs use a tiny random Llama and a small chat dataset written here, on CPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio import runs
from studio.config import RunConfig
from studio.train.worker import oom_advice

ANSWER = "Ahoy! The sea is wide and blue, matey. Arr!"


@pytest.fixture(scope="module")
def chat_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("data") / "chat.jsonl"
    qs = ["What is the sea?", "How are you today?", "Tell me about ships.", "What is a map?",
          "Where is the gold?", "Who are you?", "Why is the sky blue?", "What do you eat?"]
    with open(p, "w") as f:
        for i in range(96):
            f.write(json.dumps({"messages": [{"role": "user", "content": f"{qs[i % len(qs)]} ({i})"},
                                             {"role": "assistant", "content": ANSWER}]}) + "\n")
    return p


def make_cfg(model_dir, data, **training) -> RunConfig:
    t = {"max_steps": 20, "batch_size": 8, "learning_rate": 5e-3, "logging_steps": 2, "save_steps": 5,
         "warmup": 0.0, "scheduler": "constant"}
    t.update(training)
    return RunConfig.from_dict({"name": "t", "model": {"name_or_path": str(model_dir)},
                                "data": {"path": str(data), "max_length": 64}, "training": t})


def wait_for(pred, timeout=120.0, every=0.2):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError("timed out waiting")


def test_trainer_changes_every_trainable_parameter(tiny_model_dir, chat_file, tmp_path):
    import torch

    from studio.train import build
    from studio.train.stages import make_trainer

    cfg = make_cfg(tiny_model_dir, chat_file, max_steps=6)
    info = build.device_info(cfg)
    trainer = make_trainer(cfg, str(tiny_model_dir), tmp_path, info, [])
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert before and all("lora" in n for n in before)
    trainer.train()
    after = dict(trainer.model.named_parameters())
    unchanged = [n for n, p in before.items() if torch.equal(p, after[n].detach())]
    assert unchanged == []


def test_worker_subprocess_runs_to_done_with_falling_loss(tiny_model_dir, chat_file, runs_root):
    run_dir = runs.create_run(make_cfg(tiny_model_dir, chat_file), runs_root)
    proc = runs.start(run_dir)
    assert proc.wait(timeout=240) == 0, runs.log_tail(run_dir)
    st = runs.status(run_dir)
    assert st["state"] == "done", st
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]
    assert len(rows) >= 5
    assert rows[-1]["loss"] < rows[0]["loss"] * 0.9  # 20 LoRA steps on one repeated answer
    assert all(k in rows[-1] for k in ("step", "epoch", "learning_rate", "grad_norm", "time"))
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    assert (run_dir / "stdout.log").stat().st_size > 0
    assert st["pid"] and st["started"] and st["ended"] and st["final_loss"] > 0


@pytest.mark.slow
def test_stop_saves_a_checkpoint_and_resume_finishes(tiny_model_dir, chat_file, runs_root):
    run_dir = runs.create_run(make_cfg(tiny_model_dir, chat_file, max_steps=400), runs_root)
    proc = runs.start(run_dir)
    wait_for(lambda: (runs.read_status(run_dir).get("step") or 0) >= 3)
    st = runs.stop(run_dir)
    assert st["state"] == "stopped"
    assert proc.wait(timeout=5) is not None
    assert not runs._group_alive(proc.pid)  # the whole process group is gone
    ckpt = runs.last_checkpoint(run_dir)
    assert ckpt is not None
    stopped_at = int(ckpt.name.split("-")[1])
    # Resume with a shorter budget so the test ends quickly.
    cfg = RunConfig.load(run_dir / "config.yaml")
    cfg.training.max_steps = stopped_at + 4
    cfg.training.logging_steps = 1
    cfg.save(run_dir / "config.yaml")
    proc = runs.resume(run_dir)
    assert proc.wait(timeout=240) == 0, runs.log_tail(run_dir)
    st = runs.status(run_dir)
    assert st["state"] == "done" and st["global_step"] == stopped_at + 4
    steps = [r["step"] for r in runs.read_metrics(run_dir) if "loss" in r]
    assert max(steps) > stopped_at  # metrics kept appending after the resume
    assert "Resuming from" in (run_dir / "stdout.log").read_text()


@pytest.mark.slow
def test_kill_9_marks_failed_with_log_tail_then_resume(tiny_model_dir, chat_file, runs_root):
    run_dir = runs.create_run(make_cfg(tiny_model_dir, chat_file, max_steps=400, save_steps=2), runs_root)
    proc = runs.start(run_dir)
    wait_for(lambda: runs.last_checkpoint(run_dir) is not None and
             (runs.read_status(run_dir).get("step") or 0) >= 4)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    st = runs.status(run_dir)
    assert st["state"] == "failed"
    assert "killed or crashed" in st["error"] and "Resume" in st["error"]
    assert st["log_tail"]
    cfg = RunConfig.load(run_dir / "config.yaml")
    cfg.training.max_steps = int(runs.last_checkpoint(run_dir).name.split("-")[1]) + 2
    cfg.save(run_dir / "config.yaml")
    assert runs.resume(run_dir).wait(timeout=240) == 0
    assert runs.status(run_dir)["state"] == "done"


@pytest.mark.slow
def test_second_run_waits_in_the_queue(tiny_model_dir, chat_file, runs_root):
    first = runs.create_run(make_cfg(tiny_model_dir, chat_file, max_steps=100000), runs_root)
    p1 = runs.start(first)
    wait_for(lambda: runs.read_status(first).get("state") == "running")
    second = runs.create_run(make_cfg(tiny_model_dir, chat_file, max_steps=2), runs_root)
    p2 = runs.start(second)
    # The second worker imports, reaches the lock and says it waits.
    wait_for(lambda: "waits in the queue" in (second / "stdout.log").read_text(errors="replace"))
    assert runs.status(first)["state"] == "running"
    assert runs.status(second)["state"] == "queued"
    assert runs.stop(first)["state"] == "stopped"
    assert p2.wait(timeout=240) == 0
    s1, s2 = runs.status(first), runs.status(second)
    assert s2["state"] == "done"
    assert s2["started"] >= s1["ended"]


def test_half_written_checkpoint_is_not_resumed_from(tmp_path):
    (tmp_path / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (tmp_path / "checkpoints" / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoints" / "checkpoint-6").mkdir()  # killed before trainer_state.json
    (tmp_path / "checkpoints" / "checkpoint-10").mkdir()
    (tmp_path / "checkpoints" / "checkpoint-10" / "trainer_state.json").write_text('{"global_st')
    assert runs.last_checkpoint(tmp_path).name == "checkpoint-4"


def test_missing_model_fails_with_a_clear_message(chat_file, runs_root, tmp_path):
    cfg = make_cfg(tmp_path / "no-such-model", chat_file)
    run_dir = runs.create_run(cfg, runs_root)
    assert runs.start(run_dir).wait(timeout=120) == 2
    st = runs.status(run_dir)
    assert st["state"] == "failed"
    assert "Model folder not found" in st["error"] and "no-such-model" in st["error"]
    assert "Traceback" not in st["error"]


@pytest.mark.slow
def test_cli_train_same_path(tiny_model_dir, chat_file, runs_root, tmp_path):
    cfg_path = make_cfg(tiny_model_dir, chat_file, max_steps=4).save(tmp_path / "c.yaml")
    run_dir = tmp_path / "cli-run"
    out = subprocess.run([sys.executable, "-m", "studio", "train", str(cfg_path), "--run-dir", str(run_dir)],
                         capture_output=True, text=True, timeout=240, env=runs.worker_env())
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Run done" in out.stdout
    assert runs.status(run_dir)["state"] == "done"
    bad = subprocess.run([sys.executable, "-m", "studio", "train", str(tmp_path / "nope.yaml")],
                         capture_output=True, text=True, timeout=60, env=runs.worker_env())
    assert bad.returncode == 2 and "Config file not found" in bad.stderr and "Traceback" not in bad.stderr


def test_oom_advice_names_what_to_change():
    cfg = RunConfig()
    cfg.training.batch_size = 8
    msg = oom_advice(cfg)
    assert "gradient checkpointing" in msg and "batch size to 4" in msg and "QLoRA" in msg
    cfg.training.gradient_checkpointing = True
    assert "gradient checkpointing" not in oom_advice(cfg)


def test_history_rows_show_config_and_final_metrics(tiny_model_dir, chat_file, runs_root):
    from studio import monitor

    cfg = make_cfg(tiny_model_dir, chat_file)
    run_dir = runs.create_run(cfg, runs_root)
    runs.update_status(run_dir, state="done", final_loss=1.23456, step=20,
                       started="2026-11-22T10:00:00", ended="2026-11-22T10:02:05")
    with open(run_dir / "metrics.jsonl", "w") as f:
        f.write(json.dumps({"step": 10, "eval_loss": 2.5}) + "\n")
    [row] = monitor.history_rows(runs_root)
    assert row[:2] == [run_dir.name, "done"] and row[2] == "sft / lora"
    assert row[4] == "chat.jsonl" and row[6] == 1.2346 and row[7] == 2.5 and row[8] == "2m 05s"


def test_out_of_memory_in_training_ends_as_advice(tiny_model_dir, chat_file, runs_root, monkeypatch):
    """The worker's OOM path, with the error injected where a real CUDA OOM surfaces (train())."""
    import torch

    from studio.train import worker

    def boom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("transformers.Trainer.train", boom)
    run_dir = runs.create_run(make_cfg(tiny_model_dir, chat_file), runs_root)
    assert worker.main([str(run_dir)]) == 1
    st = runs.status(run_dir)
    assert st["state"] == "failed" and st["error"].startswith("Out of GPU memory. To make it fit:")
    assert "batch size to 4" in st["error"] and "Tried to allocate 2.00 GiB" in st["error"]
