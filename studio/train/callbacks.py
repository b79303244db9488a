"""Trainer callbacks: metrics.jsonl rows, progress in status.json, and the Stop request.

One row per log event, flushed at once so the UI's 1-second poll sees it. Stop is a file in the
run folder (written by studio.runs.stop); the callback sees it at the end of a step, asks the
trainer to save a checkpoint and to stop, so Resume can continue from there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

from studio.runs import STOP_FILE, update_status

# The trainer's final summary log carries train_loss (the run's mean): not a step, not a row.
# (transformers 5 adds train_runtime to every log, so that key cannot mark the summary.)
_SUMMARY_KEYS = {"train_loss", "total_flos"}
_SKIP = {"epoch", "num_input_tokens_seen", "train_runtime", "train_tokens_per_second"}


class StudioCallback(TrainerCallback):
    def __init__(self, run_dir: Path, stage: str, stage_index: int, n_stages: int):
        self.run_dir = Path(run_dir)
        self.stage, self.stage_index, self.n_stages = stage, stage_index, n_stages
        self._t0 = time.time()
        self._last = None  # (time, tokens) at the previous log, for tokens/s
        self.stop_requested = False

    def on_train_begin(self, args, state, control, **kw):
        self._t0 = time.time()
        if not state.is_world_process_zero:
            return
        self._last = (time.time(), state.num_input_tokens_seen or 0)
        update_status(self.run_dir, step=state.global_step, max_steps=state.max_steps,
                      stage=self.stage, stage_index=self.stage_index, n_stages=self.n_stages,
                      stage_started=time.time(), start_step=state.global_step)

    def on_step_end(self, args, state, control, **kw):
        if (self.run_dir / STOP_FILE).exists():
            self.stop_requested = True
            control.should_training_stop = True
            control.should_save = True  # a checkpoint to resume from
        return control

    def on_log(self, args, state, control, logs=None, **kw):
        logs = dict(logs or {})
        if not state.is_world_process_zero or _SUMMARY_KEYS & logs.keys():
            return
        now = time.time()
        row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), "stage": self.stage,
               "time": round(now - self._t0, 3)}
        tokens = state.num_input_tokens_seen or 0
        if self._last and "loss" in logs and now > self._last[0] and tokens > self._last[1]:
            row["tokens_per_s"] = round((tokens - self._last[1]) / (now - self._last[0]), 1)
        if "loss" in logs:
            self._last = (now, tokens)
        for k, v in logs.items():
            if isinstance(v, (int, float)) and k not in _SKIP:
                row[k] = v
        mem = _gpu_mem_gib()
        if mem is not None:
            row["gpu_mem_gib"] = mem
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
        if "loss" in logs:
            update_status(self.run_dir, step=state.global_step, max_steps=state.max_steps,
                          last_loss=logs["loss"])


def _gpu_mem_gib() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.memory_reserved() / 2**30, 3)
