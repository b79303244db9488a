"""Tests for studio.chat: one-copy base/fine-tuned generation, streaming, errors, concurrency.

A run folder is built in code: the tiny random Llama from conftest plus LoRA adapters with random
non-zero lora_B, so base and fine-tuned outputs really differ.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from studio import chat
from studio.errors import StudioError

GREEDY = chat.GenSettings(temperature=0.0, max_new_tokens=12)
CONV = [{"role": "user", "content": "What is the capital of France?"}]


def make_adapter(model_dir: Path, out: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                  init_lora_weights=False))  # random non-zero lora_B
    peft_model.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


def make_run(root: Path, model_dir: Path, name: str, seed: int, checkpoints: tuple[int, ...] = ()) -> Path:
    from studio.config import RunConfig

    run = root / f"20260101-00000{seed}-{name}"
    cfg = RunConfig(name=name)
    cfg.model.name_or_path = str(model_dir)
    cfg.save(run / "config.yaml")
    (run / "status.json").write_text(json.dumps({"state": "done"}))
    make_adapter(model_dir, run / "adapter", seed)
    for step in checkpoints:
        make_adapter(model_dir, run / "checkpoints" / f"checkpoint-{step}", seed + step)
    return run


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return (make_run(root, tiny_model_dir, "alpha", 1, checkpoints=(2, 10)),
            make_run(root, tiny_model_dir, "beta", 2))


@pytest.fixture(scope="module")
def cache():
    return chat.ModelCache(max_models=3, device="cpu")


def separate_ids(base: str, adapter: str | None, conv, max_new: int) -> list[int]:
    """Reference: a freshly loaded model (base alone or base + one adapter), batch of one."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    if adapter:
        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    enc = tok.apply_chat_template(conv, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    out = model.generate(**enc, do_sample=False, max_new_tokens=max_new, pad_token_id=tok.pad_token_id)
    new = out[0, enc["input_ids"].shape[1]:].tolist()
    return new[:new.index(tok.eos_token_id)] if tok.eos_token_id in new else new


def test_one_copy_batch_equals_separate_models_token_for_token(runs, cache):
    base, tuned = chat.base_side(runs[0]), chat.run_side(runs[0])
    assert base.base == tuned.base and tuned.adapter.endswith("adapter")
    got = chat.generate_ids(cache, [base, tuned], [CONV, CONV], GREEDY)
    want_base = separate_ids(base.base, None, CONV, 12)
    want_tuned = separate_ids(base.base, tuned.adapter, CONV, 12)
    assert got == [want_base, want_tuned]
    assert want_base != want_tuned  # the adapter really changes the answer
    assert len(cache.keys()) == 1  # one copy of the base weights served both rows


def test_two_runs_and_a_checkpoint_share_one_base(runs, cache):
    a, b = chat.run_side(runs[0]), chat.run_side(runs[1])
    ck = chat.run_side(runs[0], "checkpoint-2")
    assert chat.list_checkpoints(runs[0]) == ["final", "checkpoint-10", "checkpoint-2"]
    got = chat.generate_ids(cache, [a, b, ck], [CONV] * 3, GREEDY)
    assert got[0] == separate_ids(a.base, a.adapter, CONV, 12)
    assert got[1] == separate_ids(b.base, b.adapter, CONV, 12)
    assert got[2] == separate_ids(ck.base, ck.adapter, CONV, 12)
    assert "One copy" in chat.describe_pair(a, b)
    with pytest.raises(StudioError, match="checkpoint-99.*available: final, checkpoint-10"):
        chat.run_side(runs[0], "checkpoint-99")


def test_streaming_yields_both_sides_and_matches_non_streamed(runs, cache):
    sides = [chat.base_side(runs[0]), chat.run_side(runs[0])]
    settings = chat.GenSettings(temperature=0.0, max_new_tokens=16)
    want = chat.generate_rows(cache, sides, [CONV, CONV], settings)
    updates = [texts for texts, _ in chat.stream_rows(cache, sides, [CONV, CONV], settings)]
    assert updates[-1] == want
    assert all(want)  # both sides said something
    # Both sides grew while streaming (not one block at the end).
    growing = [u for u in updates[:-1] if u[0] and u[1] and (u[0], u[1]) != tuple(want)]
    assert growing


def test_sampling_uses_the_same_seed_reproducibly(runs, cache):
    sides = [chat.base_side(runs[0]), chat.run_side(runs[0])]
    s = chat.GenSettings(temperature=1.0, top_p=0.95, max_new_tokens=10, seed=7)
    first = chat.generate_ids(cache, sides, [CONV, CONV], s)
    assert chat.generate_ids(cache, sides, [CONV, CONV], s) == first
    s.seed = 8
    assert chat.generate_ids(cache, sides, [CONV, CONV], s) != first


def test_generation_error_reaches_the_consumer(runs, cache):
    sides = [chat.base_side(runs[0]), chat.run_side(runs[0])]
    entry = cache.get(sides[0].base, (sides[1].adapter,))
    calls = {"n": 0}

    def explode(module, inputs, output):
        calls["n"] += 1
        if calls["n"] >= 3:  # after a couple of streamed tokens
            raise RuntimeError("boom in the lm_head")

    handle = entry.model.get_output_embeddings().register_forward_hook(explode)
    try:
        with pytest.raises(StudioError, match="Generation failed: RuntimeError: boom in the lm_head"):
            for _ in chat.stream_rows(cache, sides, [CONV, CONV], GREEDY):
                pass
    finally:
        handle.remove()
    # The model lock was released: the next user gets an answer.
    assert all(chat.generate_rows(cache, sides, [CONV, CONV], GREEDY))


def test_two_sessions_streaming_at_once_both_complete(runs, cache):
    sides = [chat.base_side(runs[0]), chat.run_side(runs[0])]
    convs = {0: [CONV, CONV], 1: [[{"role": "user", "content": "Ahoy! The ship"}]] * 2}
    want = {k: chat.generate_rows(cache, sides, c, GREEDY) for k, c in convs.items()}
    got: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def session(k):
        try:
            for texts, _ in chat.stream_rows(cache, sides, convs[k], GREEDY):
                got[k] = texts
        except BaseException as e:  # noqa: BLE001 - surfaced by the assert below
            errors.append(e)

    threads = [threading.Thread(target=session, args=(k,)) for k in convs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and got == want


def test_cancel_stops_generation_early(runs, cache):
    sides = [chat.base_side(runs[0]), chat.run_side(runs[0])]
    cancel = threading.Event()
    settings = chat.GenSettings(temperature=0.0, max_new_tokens=60, stop=["never-appears"])
    after = 0
    for texts, _ in chat.stream_rows(cache, sides, [CONV, CONV], settings, cancel=cancel):
        after += cancel.is_set()
        if texts[0] and texts[1]:
            cancel.set()
    assert cancel.is_set() and after <= 4  # stopped at the next token, not 60 tokens later
    entry = cache.get(sides[0].base, (sides[1].adapter,))
    assert entry.lock.acquire(timeout=10)  # and the model is free for the next user
    entry.lock.release()


def test_conversation_normalises_gradio_content_and_uses_the_template(runs, cache):
    history = [{"role": "user", "content": [{"type": "text", "text": "Hi"}], "metadata": None},
               {"role": "assistant", "content": [{"type": "text", "text": "Ahoy"}], "options": None}]
    conv = chat.build_conversation("Be a pirate.", history, "Where?")
    assert conv == [{"role": "system", "content": "Be a pirate."}, {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Ahoy"}, {"role": "user", "content": "Where?"}]
    entry = cache.get(chat.base_side(runs[0]).base, (chat.run_side(runs[0]).adapter,))
    text = chat.prompt_text(entry.tokenizer, conv)
    assert text.startswith("<|im_start|>system\nBe a pirate.<|im_end|>") and text.endswith("<|im_start|>assistant\n")
    assert chat.trim_stop("one. two. three", ["two", "xx"]) == "one. "
    with pytest.raises(StudioError, match="top-p is 0; use a value in"):
        chat.GenSettings(top_p=0).check()


def test_cache_evicts_least_recently_used(runs, tiny_model_dir):
    small = chat.ModelCache(max_models=1, device="cpu")
    a, b = chat.run_side(runs[0]), chat.run_side(runs[1])
    small.get(a.base, (a.adapter,))
    small.get(b.base, (b.adapter,))
    assert small.keys() == [(b.base, (b.adapter,))]
    both = small.get(a.base, (a.adapter, b.adapter))
    assert small.get(a.base, (a.adapter,)) is both  # a loaded superset of adapters is reused
    assert small.get(a.base, ()) is both and len(small.keys()) == 1
    with pytest.raises(StudioError, match="not a run folder"):
        chat.base_side(tiny_model_dir)


def test_compare_tab_builds_and_picks_sides(runs, tiny_model_dir):
    import gradio as gr

    from studio.ui import compare_tab
    from studio.ui.shared import Shared

    shared = Shared(allowed_roots=[], assets_dir=tiny_model_dir, runs_root=runs[0].parent)
    with gr.Blocks():
        shared.run_dir = gr.State("")
        compare_tab.build(shared)
    assert isinstance(shared.extra["model_cache"], chat.ModelCache)
    left, right = compare_tab._sides(str(runs[0]), "checkpoint-2", str(runs[1]), "final")
    assert right.adapter.endswith("checkpoint-2") and left.adapter == str(runs[1] / "adapter")
    base, _ = compare_tab._sides(str(runs[0]), "final", compare_tab.BASE_CHOICE, None)
    assert base.adapter is None
    with pytest.raises(StudioError, match="Pick a run first"):
        compare_tab._sides(None, "final", None, None)


def test_dora_adapter_falls_back_to_one_adapter_per_batch(tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(5)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, target_modules="all-linear", use_dora=True, init_lora_weights=False))
    model.save_pretrained(tmp_path / "dora")
    sides = [chat.Side(str(tiny_model_dir)), chat.Side(str(tiny_model_dir), str(tmp_path / "dora"), "dora")]
    cache = chat.ModelCache(device="cpu")
    short = chat.GenSettings(temperature=0.0, max_new_tokens=4)  # DoRA re-normalises weights every step: slow
    got = chat.generate_ids(cache, sides, [CONV, CONV], short)  # peft refuses adapter_names with DoRA
    assert not cache.get(sides[1].base, (sides[1].adapter,)).mixed
    assert got == [separate_ids(str(tiny_model_dir), None, CONV, 4),
                   separate_ids(str(tiny_model_dir), str(tmp_path / "dora"), CONV, 4)]
    assert got[0] != got[1]


def test_full_fine_tune_run_loads_a_second_model(tiny_model_dir, tmp_path):
    from conftest import build_tiny_model

    from studio.config import RunConfig

    run = tmp_path / "20260101-000000-full"
    cfg = RunConfig(name="full", adapter="full")
    cfg.model.name_or_path = str(tiny_model_dir)
    cfg.save(run / "config.yaml")
    build_tiny_model(run / "model", seed=1)  # other weights, same tokenizer
    base, tuned = chat.base_side(run), chat.run_side(run)
    assert tuned.base == str((run / "model").resolve()) and tuned.adapter is None
    assert "two models" in chat.describe_pair(base, tuned)
    cache = chat.ModelCache(device="cpu")
    got = chat.generate_ids(cache, [base, tuned], [CONV, CONV], GREEDY)
    assert got == [separate_ids(base.base, None, CONV, 12), separate_ids(tuned.base, None, CONV, 12)]
    assert len(cache.keys()) == 2
