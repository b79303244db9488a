"""Bad input everywhere: every tab's main handlers, fed garbage, answer with a plain message.

Each handler is taken from the real app (built in-process) and called the way gradio calls it,
with empty strings, None, huge and negative numbers, NaN, wrong types and YAML with wrong types.
The outcome must be a return value (perhaps with a gr.Warning) or a gr.Error whose message reads
like a sentence: never another exception, a traceback or a bare exception repr.
"""

from __future__ import annotations

import inspect
import json
import math
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GARBAGE_TEXT = ["", "   ", "\x00", "💥" * 3, "a" * 5000, "../../../../etc/passwd", "{{7*7}}", "None"]
GARBAGE_NUM = [None, 0, -1, -1e9, 1e30, math.nan, math.inf]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """(handler lookup, runs root) of the whole app built with a tmp runs root."""
    tmp = tmp_path_factory.mktemp("bad-input")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_RUNS", str(tmp / "runs"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        from studio.ui.app import build_app

        demo = build_app()
    assert demo.shared.extra["failed_tabs"] == []
    return demo, tmp / "runs"


def handler(demo, module: str, name: str):
    """(fn, its input components) of the first event handler `name` defined in studio.ui.<module>."""
    for bf in demo.fns.values():
        if bf.fn is not None and bf.fn.__module__ == f"studio.ui.{module}" and bf.fn.__name__ == name:
            return bf.fn, bf.inputs
    raise LookupError(f"{module}.{name}")


def by_label(inputs, **values) -> dict:
    """A gradio dict-input call: every input at its default, then `values` by label prefix."""
    out = {c: getattr(c, "value", None) for c in inputs}
    for key, v in values.items():
        hits = [c for c in inputs if (getattr(c, "label", None) or "").lower().startswith(key.lower())]
        assert hits, f"no input labelled {key!r}"
        out[hits[0]] = v
    return out


def plain(msg: str) -> bool:
    """A message for a person: a sentence, not a traceback or an exception's repr."""
    return bool(msg.strip()) and "Traceback" not in msg and 'File "' not in msg \
        and not msg.startswith(("Unexpected problem", "KeyError", "TypeError", "ValueError", "AttributeError")) \
        and len(msg) < 12000  # long only when it echoes a long input back


def outcome(fn, *args, **kwargs) -> tuple[str, str]:
    """("ok", warnings) or ("error", message); any other exception fails the calling test."""
    import gradio as gr

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = fn(*args, **kwargs)
            if inspect.isgenerator(res):
                for _ in res:
                    pass
        except gr.Error as e:
            msg = str(getattr(e, "message", e))
            assert plain(msg), f"not a plain message from {fn.__name__}{args!r:.300}: {msg!r:.300}"
            return "error", msg
    told = " ".join(str(w.message) for w in caught if issubclass(w.category, UserWarning))
    assert "Traceback" not in told
    return "ok", told


def noprogress(*a, **k):
    return None


# -- Wizard ----------------------------------------------------------------------------------------
def test_wizard_garbage(ui):
    demo, _ = ui
    from studio.ui import wizard_tab

    fn, inputs = handler(demo, "wizard_tab", "on_recommend")
    for n in GARBAGE_NUM + ["lots", "12abc"]:
        kind, msg = outcome(fn, by_label(inputs, **{"How many examples": n}))
        if n in (None, 0) or (isinstance(n, float) and not math.isnan(n) and abs(n) < 1e12 and n >= 0):
            assert kind == "ok", msg
    for text in GARBAGE_TEXT:
        outcome(fn, by_label(inputs, **{"Dataset file": text}))
    outcome(fn, by_label(inputs, **{"What kind of data": None, "Plan for": "moon"}))
    use = next(bf.fn for bf in demo.fns.values() if bf.api_name == "use_config")
    for text in ["", "[1, 2]", "name: [unclosed", "training: 7", "training: {batch_size: abc}",
                 "training: {learning_rate: -1, epochs: 1e400}", "stages: nope", "model: {name_or_path: [5]}",
                 "data: {max_length: 99999999999999999999}", "\t- a\n b:", "!!python/object:os.system ls"]:
        kind, msg = outcome(use, text)
        if text.strip():
            assert kind == "error", text
    assert outcome(wizard_tab.demo_preset)[0] == "ok"


# -- Data ------------------------------------------------------------------------------------------
def test_data_garbage(ui, tmp_path):
    demo, runs = ui
    load = handler(demo, "data_tab", "on_load")[0]
    for text in GARBAGE_TEXT + [str(REPO / "assets"), str(REPO / "nope.jsonl")]:
        assert outcome(load, None, text, None)[0] == "error", text
    outcome(load, None, str(REPO / "README.md"), None)  # read as plain text, or refused: either is fine
    for content in [b"", b"\x00\xff\xfe" * 100, b"[1, 2, 3]", b'{"a": 1}\n{"b": [}\n', b"\n\n\n"]:
        f = runs / "_bad" / f"f{len(content)}.jsonl"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(content)
        outcome(load, None, str(f), None)
    st = load(None, "", str(REPO / "assets" / "data" / "messages_eval.jsonl"))[0]
    show = handler(demo, "data_tab", "_show_row")[0]
    hist = handler(demo, "data_tab", "on_hist")[0]
    clean = handler(demo, "data_tab", "on_clean")[0]
    split = handler(demo, "data_tab", "on_split")[0]
    apply = handler(demo, "data_tab", "on_apply")[0]
    for st_ in ({}, st):  # the state lives on the server: empty before a load, else what on_load made
        for n in GARBAGE_NUM:
            outcome(show, st_, n, "", True)
            outcome(hist, st_, "", n)
    for mn, mx in [(-5, -5), (10**12, None), (None, 1), (math.nan, 3), (50, 10)]:
        outcome(clean, st, ["exact"], 0.8, "keep", mn, mx, "", "", True, "", progress=noprogress)
    for thr, pii, langs in [(5.0, "keep", ""), (-1, "garbage", ""), (0.8, "keep", "zz,??,"), (math.nan, "keep", "")]:
        outcome(clean, st, ["exact", "near"], thr, pii, 2, None, langs, "a" * 5000, True, "", progress=noprogress)
    for text in GARBAGE_TEXT + ["abc", "1,2", "-1,2,0", "0,0,0", "1e400,1,1", "0.5,0.5,0.5,0.5"]:
        for seed in (None, -1, 10**30, math.nan):
            outcome(split, st, text, seed)
    outcome(apply, st, "prompt_completion", *["no_such_column"] * 11)
    outcome(apply, {}, "alpaca", *[""] * 11)
    show_removed = handler(demo, "data_tab", "on_show")[0]
    for step in GARBAGE_TEXT:
        outcome(show_removed, st, step)
        outcome(show_removed, {**st, "clean_dir": str(tmp_path)}, step)
    undo = handler(demo, "data_tab", "handler")[0]
    for step in ["", "../../etc", "nope"]:
        assert outcome(undo, st, step)[0] == "error"
    assert outcome(handler(demo, "data_tab", "on_use")[0], {})[0] == "error"


# -- Memory ----------------------------------------------------------------------------------------
def test_memory_garbage(ui):
    demo, _ = ui
    fn = handler(demo, "memory_tab", "estimate")[0]
    good = dict(model="Qwen2.5-0.5B", method="lora", dpo=False, ref=True, batch=4, seq=1024, accum=1, gc=False,
                optim="adamw_torch", r=16, targets="all-linear", liger=False, precision="bf16", gpus=1, zero=0,
                gpu="RTX 3090 / 4090 (24 GB)", tokens=0, tps=0)
    assert outcome(fn, *good.values())[0] == "ok"
    for key in ("batch", "seq", "accum", "r", "gpus", "tokens", "tps"):
        for n in GARBAGE_NUM + ["abc"]:
            kind, told = outcome(fn, *{**good, key: n}.values())
            assert kind == "ok" or told  # a verdict or a warning, never a crash
    for key, bad in [("model", ""), ("model", "no/such-model-anywhere"), ("model", "a" * 5000), ("method", "dora"),
                     ("optim", "sgd!"), ("precision", "fp8"), ("targets", ""), ("targets", "nothing_here"),
                     ("zero", 7), ("gpu", "GPU 99 · ghost"), ("gpu", None)]:
        outcome(fn, *{**good, key: bad}.values())
    load = handler(demo, "memory_tab", "from_train_config")[0]
    for text in ["", "name: [unclosed", "training: 7", "[1]"]:
        outcome(load, text)


# -- Train -----------------------------------------------------------------------------------------
def _train_form(**over):
    from studio.ui.train_tab import load_preset

    cfg = load_preset("demo-cpu")
    form = dict(yaml=cfg.to_yaml(), name="bad", stage="sft", adapter="lora", model="assets/demo-model",
                data="assets/data/messages_eval.jsonl", epochs=1.0, max_steps=2, batch=2, accum=1, lr=1e-3,
                max_len=64, r=4, eval=0.0, gpus=1, gc=False, packing=False, answers=True,
                strategy="ddp")
    form.update(over)
    return list(form.values())


def test_train_garbage_never_starts_a_run(ui):
    demo, runs = ui
    start = handler(demo, "train_tab", "on_start")[0]
    before = set(runs.iterdir()) if runs.exists() else set()
    from studio.ui.train_tab import config_from_form

    config_from_form(*_train_form()).check()  # the untouched form is valid: each case below breaks one thing
    cases = [dict(name="   "), dict(name="a/b"), dict(name=".hidden"), dict(stage="nope"), dict(adapter="dora!"),
             dict(model="   "), dict(data="   "), dict(epochs=-1, max_steps=-1), dict(max_steps=2.5),
             dict(batch=0), dict(batch=-3), dict(batch=1e30), dict(accum=0), dict(lr=-1), dict(lr=50),
             dict(lr=math.nan), dict(max_len=1), dict(max_len=10**12), dict(r=0), dict(r=10**9),
             dict(eval=2), dict(eval=-0.5), dict(epochs=math.inf), dict(batch="eight"), dict(gc="maybe"),
             dict(gpus=0), dict(gpus=2.5), dict(gpus="two"), dict(strategy="mpi")]
    yamls = ["name: [unclosed", "[1, 2]", "training: 7", "training: {batch_size: abc}",
             "training: {learning_rate: 1e400}", "lora: {r: -4}", "data: {max_length: [1, 2]}",
             "stages: 5", "stages: [{stage: dpo, training: {beta: -1}}]", "unknown_key: 1",
             "training: {precision: fp8, optim: sgd!, scheduler: moon}", "!!python/object/apply:os.system [ls]"]
    for over in cases:
        kind, msg = outcome(start, *_train_form(**over))
        assert kind == "error", (over, msg)
    for text in yamls:
        kind, msg = outcome(start, text, "bad", "sft", "lora", *[None] * 15)
        assert kind == "error", (text, msg)
    assert (set(runs.iterdir()) if runs.exists() else set()) == before
    for fn_name in ("on_stop", "on_resume"):
        for v in ["", None, "garbage", str(runs / "no-such-run")]:
            assert outcome(handler(demo, "train_tab", fn_name)[0], v)[0] == "error"
    view = handler(demo, "train_tab", "refresh_view")[0]
    for v in ["", None, "garbage", str(runs / "no-such-run")]:
        assert outcome(view, v, None)[0] == "ok"
    shared_cfg = handler(demo, "train_tab", "on_shared_config")[0]
    for text in ["name: [unclosed", "training: 7"]:
        kind, told = outcome(shared_cfg, text)
        assert kind == "ok" and told


# -- Compare and Export ----------------------------------------------------------------------------
def _broken_run(runs: Path) -> Path:
    """A run folder whose adapter is a broken file: the settings are checked before it is read."""
    from studio.ui.train_tab import load_preset

    run = runs / "20260101-000000-broken"
    (run / "adapter").mkdir(parents=True, exist_ok=True)
    load_preset("demo-cpu").save(run / "config.yaml")
    (run / "status.json").write_text(json.dumps({"state": "done"}))
    (run / "adapter" / "adapter_config.json").write_text("{not json")
    return run


def test_compare_garbage(ui):
    demo, runs = ui
    run = str(_broken_run(runs))
    send, inputs = handler(demo, "compare_tab", "on_send")
    assert outcome(send, by_label(inputs, **{"Fine-tuned run": run}), request=None)[0] == "ok"  # empty message
    msg_box = next(c for c in inputs if getattr(c, "placeholder", None) == "Ask both models…")
    for over in [{"Fine-tuned run": None}, {"Fine-tuned run": "garbage"}, {"Temperature": -1}, {"Top-p": 5},
                 {"Max new tokens": 10**9}, {"Max new tokens": math.nan}, {"Seed": math.nan}, {"Seed": -5},
                 {"Seed": 1e30}, {"Stop strings": ",,,"}, {"Weights": "checkpoint-999"}]:
        values = by_label(inputs, **{"Fine-tuned run": run, **over})
        values[msg_box] = "hello"
        assert outcome(send, values, request=None)[0] == "error", over
    ev = handler(demo, "compare_tab", "on_eval")[0]
    for run, n in [(None, 5), ("garbage", 5), ("", -1)]:
        assert outcome(ev, run, "final", "validation", n, progress=noprogress)[0] == "error"
    ps, ps_inputs = handler(demo, "compare_tab", "on_prompt_set")
    assert outcome(ps, by_label(ps_inputs), progress=noprogress)[0] == "error"


def test_export_garbage(ui, tmp_path):
    demo, runs = ui
    exp = handler(demo, "export_tab", "on_export")[0]
    for run, out in [(None, ""), ("", ""), ("garbage", ""), (str(runs / "none"), "/etc/x"), (str(runs), "\x00")]:
        assert outcome(exp, run, "final", "adapter", "bf16", out, False, progress=noprogress)[0] == "error"
    push = handler(demo, "export_tab", "on_push")[0]
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "README.md").write_text("x")
    for f, repo, tok in [("", "me/x", "hf_x"), (str(folder), "", "hf_x"), (str(folder), "not a repo!", "hf_x"),
                         (str(folder), "me/x", ""), (str(folder), "me/x", "   ")]:
        assert outcome(push, f, repo, tok, True)[0] == "error"
