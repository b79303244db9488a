"""The Data tab builds, and its handlers turn files into views and errors into gr.Error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def chat(q, a):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


@pytest.fixture(scope="module")
def tab(tmp_path_factory):
    import gradio as gr

    from studio.ui import data_tab
    from studio.ui.shared import Shared

    root = tmp_path_factory.mktemp("ui")
    with gr.Blocks() as demo:
        shared = Shared(allowed_roots=[root], assets_dir=root / "assets", runs_root=root / "runs",
                        dataset_path=gr.State(""))
        with gr.Tab("Data"):
            data_tab.build(shared)
    fns = {}
    for block_fn in demo.fns.values():
        fns.setdefault(getattr(block_fn.fn, "__name__", ""), block_fn.fn)
    return root, fns


def test_load_clean_and_use_for_training(tab):
    import gradio as gr

    root, fns = tab
    p = root / "d.jsonl"
    rows = [chat("What is 2+2?", "4"), chat("what is 2+2?", "4"), chat("Hi", "Hello there!")]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = fns["on_load"](None, str(p), None)
    st, summary, table = out[0], out[1], out[4]
    assert st["rows"] == 3 and "messages" in summary and len(table) == 3
    assert "What is 2+2?" in out[5]  # chat view HTML
    st, steps, _ = fns["on_clean"](st, ["exact", "near"], 0.8, "keep", 2, None, "", "", True, "",
                                   progress=lambda *a, **k: None)
    assert int(steps.set_index("step").loc["exact_duplicate", "rows with this reason"]) == 1
    path, _ = fns["on_use"](st)
    assert Path(path).name == "clean.jsonl" and len(Path(path).read_text().splitlines()) == 2
    removed = fns["on_show"](st, "exact_duplicate")
    assert removed["row"].tolist() == [1]
    fig, stats = fns["on_hist"](st, "", 8)
    assert stats["rows"] == 3 and stats["format"] == "messages" and fig.data
    undo = next(f for name, f in fns.items() if name == "handler")  # undo comes first
    undo(st, "exact_duplicate")
    assert len(Path(path).read_text().splitlines()) == 3
    st, md = fns["on_split"](st, "2,1,0", 1)
    assert "train" in md and fns["on_use"](st)[0].endswith("train.jsonl")
    with pytest.raises(gr.Error, match="outside the folders"):
        fns["on_load"](None, "/etc/hostname", None)
    bad = root / "bad.jsonl"
    bad.write_text("{broken\n")
    with pytest.raises(gr.Error, match="row 0"):
        fns["on_load"](None, str(bad), None)
    with pytest.raises(gr.Error, match="load a dataset first"):
        fns["on_use"]({})


def test_column_mapping_when_unsure(tab):
    from studio.ui.data_tab import _ALL_FIELDS

    root, fns = tab
    p = root / "qa.jsonl"
    p.write_text("".join(json.dumps({"q": f"question {i}?", "a": f"answer {i}"}) + "\n"
                         for i in range(3)))
    out = fns["on_load"](None, str(p), None)
    st = out[0]
    assert "unsure" in out[1] and out[2]["open"] is True  # the mapping accordion opens
    values = [{"prompt": "q", "completion": "a"}.get(f, "") for f in _ALL_FIELDS]
    st, summary, issues, *_ = fns["on_apply"](st, "prompt_completion", *values)
    assert st["guess"]["column_map"] == {"prompt": "q", "completion": "a"}
    assert "prompt_completion" in summary and len(issues) == 0
