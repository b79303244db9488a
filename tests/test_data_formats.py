"""Loading every file kind, detecting each format and converting it to each trainer target."""

from __future__ import annotations

import json

import pytest

from studio.data import detect_format, load_rows, prepare_for_training, to_trainer_format
from studio.errors import StudioError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


CHAT = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]
SAMPLES = {
    "alpaca": [{"instruction": "Add the numbers", "input": "2 and 2", "output": "4",
                "system": "Be brief."},
               {"instruction": "Say hi", "input": "", "output": "Hi!"}],
    "sharegpt": [{"conversations": [{"from": "system", "value": "Be brief."},
                                    {"from": "human", "value": "What is 2+2?"},
                                    {"from": "gpt", "value": "4"}]}],
    "messages": [{"messages": [{"role": "system", "content": "Be brief."}, *CHAT,
                               {"role": "user", "content": "And 3+3?"},
                               {"role": "assistant", "content": None,
                                "tool_calls": [{"type": "function",
                                                "function": {"name": "add", "arguments": "{}"}}]},
                               {"role": "tool", "content": "6"},
                               {"role": "assistant", "content": "6"}]}],
    "prompt_completion": [{"prompt": "2+2=", "completion": "4"}],
    "preference": [{"prompt": "2+2=", "chosen": "4", "rejected": "5"}],
    "text": [{"text": "Once upon a time there was a tiny model."}],
}


@pytest.mark.parametrize("fmt", list(SAMPLES))
def test_each_format_is_detected(tmp_path, fmt):
    ds = load_rows(write_jsonl(tmp_path / f"{fmt}.jsonl", SAMPLES[fmt]))
    g = detect_format(ds)
    assert g.name == fmt and g.confidence >= 0.8 and not g.unsure
    assert detect_format(SAMPLES[fmt]).name == fmt  # plain lists of dicts work too


@pytest.mark.parametrize("fmt,target,expect", [
    ("alpaca", "messages", ["system", "user", "assistant"]),
    ("sharegpt", "messages", ["system", "user", "assistant"]),
    ("messages", "messages", ["system", "user", "assistant", "user", "assistant", "tool",
                              "assistant"]),
    ("prompt_completion", "messages", ["user", "assistant"]),
    ("preference", "messages", ["user", "assistant"]),
])
def test_conversion_to_messages(tmp_path, fmt, target, expect):
    ds = prepare_for_training(write_jsonl(tmp_path / "d.jsonl", SAMPLES[fmt]), target=target)
    assert ds.column_names == ["messages"]
    msgs = ds[0]["messages"]
    assert [m["role"] for m in msgs] == expect
    assert all(isinstance(m["content"], str) for m in msgs)
    assert msgs[-1]["content"] in ("4", "6")
    if fmt == "alpaca":
        assert msgs[1]["content"] == "Add the numbers\n\n2 and 2"


def test_prompt_completion_and_text_targets(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", SAMPLES["alpaca"])
    pc = prepare_for_training(p, target="prompt_completion")
    assert pc.column_names == ["prompt", "completion"]
    assert [m["role"] for m in pc[0]["prompt"]] == ["system", "user"]
    assert pc[0]["completion"] == [{"role": "assistant", "content": "4"}]
    raw = prepare_for_training(write_jsonl(tmp_path / "pc.jsonl", SAMPLES["prompt_completion"]),
                               target="prompt_completion", conversational=False)
    assert raw[0] == {"prompt": "2+2=", "completion": "4"}
    text = prepare_for_training(write_jsonl(tmp_path / "t.jsonl", SAMPLES["text"]), target="text")
    assert text[0] == {"text": SAMPLES["text"][0]["text"]}
    rendered = prepare_for_training(p, target="text")
    assert "Add the numbers" in rendered[0]["text"] and "4" in rendered[0]["text"]


def test_preference_explicit_and_implicit_prompt(tmp_path):
    explicit = prepare_for_training(write_jsonl(tmp_path / "e.jsonl", SAMPLES["preference"]),
                                    target="preference")
    assert explicit.column_names == ["prompt", "chosen", "rejected"]
    assert explicit[0]["prompt"] == [{"role": "user", "content": "2+2="}]
    assert explicit[0]["rejected"] == [{"role": "assistant", "content": "5"}]
    implicit = [{"chosen": [*CHAT[:1], {"role": "assistant", "content": "4"}],
                 "rejected": [*CHAT[:1], {"role": "assistant", "content": "five"}]}]
    ds = prepare_for_training(write_jsonl(tmp_path / "i.jsonl", implicit), target="preference")
    assert ds[0]["prompt"] == CHAT[:1]
    assert ds[0]["chosen"] == [{"role": "assistant", "content": "4"}]
    assert ds[0]["rejected"] == [{"role": "assistant", "content": "five"}]
    hh = [{"chosen": "\n\nHuman: hi\n\nAssistant: hello there",
           "rejected": "\n\nHuman: hi\n\nAssistant: go away"}]
    ds = prepare_for_training(write_jsonl(tmp_path / "hh.jsonl", hh), target="preference",
                              conversational=False)
    assert ds[0]["prompt"].endswith("Assistant:") and ds[0]["chosen"] == " hello there"


def test_unusual_columns_are_unsure_and_column_map_fixes_them(tmp_path):
    rows = [{"question": "2+2?", "answer": "4"}, {"question": "3+3?", "answer": "6"}]
    ds = load_rows(write_jsonl(tmp_path / "qa.jsonl", rows))
    g = detect_format(ds)
    assert g.name == "prompt_completion" and g.unsure
    assert g.column_map == {"prompt": "question", "completion": "answer"}
    odd = [{"q": "2+2?", "a": "4", "id": 1}]
    p = write_jsonl(tmp_path / "odd.jsonl", odd)
    with pytest.raises(StudioError, match="can't tell the dataset format"):
        prepare_for_training(p)
    ds = prepare_for_training(p, fmt="prompt_completion",
                              column_map={"prompt": "q", "completion": "a"})
    assert ds[0]["messages"][1] == {"role": "assistant", "content": "4"}


def test_mixed_formats_lower_confidence_and_explain(tmp_path):
    rows = SAMPLES["alpaca"] + SAMPLES["messages"]
    p = write_jsonl(tmp_path / "mixed.jsonl", rows)
    g = detect_format(load_rows(p))
    assert g.confidence <= 0.5 and "mixes formats" in " ".join(g.notes)
    with pytest.raises(StudioError, match="mixes formats"):
        prepare_for_training(p, fmt="alpaca")


def test_impossible_targets_say_why(tmp_path):
    with pytest.raises(StudioError, match="DPO needs preference pairs"):
        prepare_for_training(write_jsonl(tmp_path / "a.jsonl", SAMPLES["alpaca"]),
                             target="preference")
    with pytest.raises(StudioError, match="raw text"):
        prepare_for_training(write_jsonl(tmp_path / "t.jsonl", SAMPLES["text"]))
    with pytest.raises(StudioError, match="unknown training data target"):
        prepare_for_training(write_jsonl(tmp_path / "b.jsonl", SAMPLES["alpaca"]), target="x")


def test_file_kinds_and_saved_folders(tmp_path):
    import datasets
    import pandas as pd

    rows = SAMPLES["alpaca"]
    df = pd.DataFrame(rows)
    df.to_csv(tmp_path / "a.csv", index=False)
    df.to_csv(tmp_path / "a.tsv", index=False, sep="\t")
    df.to_parquet(tmp_path / "a.parquet")
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": rows}))
    (tmp_path / "a.txt").write_text("first line\nsecond line\n")
    for name in ("a.csv", "a.tsv", "a.parquet", "a.json", "wrapped.json"):
        ds = load_rows(tmp_path / name)
        assert len(ds) == 2 and detect_format(ds).name == "alpaca", name
        assert ds[1]["input"] == "", name  # an empty CSV cell stays "", not NaN
    txt = load_rows(tmp_path / "a.txt")
    assert txt["text"] == ["first line", "second line"] and detect_format(txt).name == "text"
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    assert len(load_rows(tmp_path / "saved")) == 2
    shards = tmp_path / "shards"
    shards.mkdir()
    write_jsonl(shards / "part-0.jsonl", rows)
    write_jsonl(shards / "part-1.jsonl", rows)
    assert len(load_rows(shards)) == 4
    assert len(load_rows(tmp_path / "a.json", limit=1)) == 1


def test_to_trainer_format_names_the_bad_row(tmp_path):
    rows = SAMPLES["preference"] + [{"chosen": "same start", "rejected": "other"}]
    ds = load_rows(write_jsonl(tmp_path / "p.jsonl", rows))
    with pytest.raises(StudioError, match="row 1"):
        to_trainer_format(ds, "preference", "preference")
