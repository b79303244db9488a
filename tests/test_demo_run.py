"""The foundation's promise, end to end on CPU: the demo preset trains through the CLI and the
fine-tuned model answers visibly differently from the base (the pirate persona appears).

Slow: it builds the demo model if missing and trains ~2 minutes on 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from studio import runs


@pytest.mark.slow
def test_demo_preset_trains_and_changes_answers(tmp_path):
    from studio.chat import GenSettings, base_side, generate_rows, run_side
    from studio.demo import ensure_demo
    from studio.model_cache import ModelCache

    ensure_demo()
    run_dir = tmp_path / "demo-run"
    t0 = time.time()
    out = subprocess.run([sys.executable, "-m", "studio", "train", "presets/demo-cpu.yaml", "--run-dir", str(run_dir)],
                         capture_output=True, text=True, timeout=600, env=runs.worker_env())
    took = time.time() - t0
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    st = runs.status(run_dir)
    assert st["state"] == "done"
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]
    first, last = sum(r["loss"] for r in rows[:3]) / 3, sum(r["loss"] for r in rows[-3:]) / 3
    assert last < 0.7 * first, (first, last)
    print(f"demo run took {took:.0f} s; loss {first:.3f} -> {last:.3f}")

    questions = ["How do I boil an egg?", "What is a cat?", "Give me a tip for sleeping well.",
                 "What day comes after Monday?", "How many legs does a spider have?"]
    convs = [[{"role": "user", "content": q}] for q in questions]
    cache = ModelCache()
    greedy = GenSettings(temperature=0.0, max_new_tokens=40)
    sides = [base_side(run_dir), run_side(run_dir)]
    answers = generate_rows(cache, [sides[0]] * len(convs) + [sides[1]] * len(convs), convs + convs, greedy)
    base, tuned = answers[:len(convs)], answers[len(convs):]
    assert base != tuned
    assert sum(a.lstrip().startswith("Ahoy") for a in tuned) >= 4, tuned
    assert sum(a.lstrip().startswith("Ahoy") for a in base) == 0, base
    assert all(len(a.split()) >= 3 for a in base)  # the base answers in words, not silence
