"""Stats, token histogram vs max length, trained/masked rendering, and the data CLI."""

from __future__ import annotations

import json

import pytest

from studio.data import load_rows
from studio.data.cli import main
from studio.data.inspection import render_row, stats, token_lengths
from studio.errors import StudioError


def chat(q, a, system=None):
    msgs = [{"role": "system", "content": system}] if system else []
    return {"messages": msgs + [{"role": "user", "content": q},
                                {"role": "assistant", "content": a}]}


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    from conftest import build_tiny_tokenizer

    d = tmp_path_factory.mktemp("tok")
    build_tiny_tokenizer(d)
    return d


@pytest.fixture()
def dataset(tmp_path):
    rows = [chat("What is the capital of France?", "Paris is the capital of France."),
            chat("what is the capital of  FRANCE?", "Paris is the capital of France."),
            chat("The quick brown fox?", "Jumps over the lazy dog. " * 30, system="Be brief."),
            {"messages": [{"role": "user", "content": "no answer"}]}]
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_stats(dataset):
    s = stats(load_rows(dataset))
    assert s["rows"] == 4 and s["format"]["name"] == "messages"
    assert s["turns"] == {"mean": 2.0, "min": 1, "max": 3}
    assert s["duplicates"]["exact"] == 1
    assert s["validation"]["issues"] == {"example_missing_assistant_message": 1}
    assert s["chars"]["max"] > 700


def test_token_lengths_against_max_length(dataset, tok_dir):
    ds = load_rows(dataset).select(range(3))
    t = token_lengths(ds, tok_dir, max_length=60)
    assert t["counted_with"] == "chat template" and t["rows"] == 3
    assert t["rows_truncated"] == 1 and t["pct_truncated"] == pytest.approx(33.33)
    long_row = max(t["lengths"])
    assert t["assistant_tokens_lost"] > 0
    assert t["assistant_tokens_lost"] <= long_row - 60 < t["assistant_tokens"]
    assert sum(t["histogram"]["counts"]) == 3
    roomy = token_lengths(ds, tok_dir, max_length=10_000)
    assert roomy["rows_truncated"] == 0 and roomy["assistant_tokens_lost"] == 0
    est = token_lengths(ds, None, max_length=60)  # no tokenizer: 4 bytes per token estimate
    assert est["counted_with"].startswith("estimate") and est["rows_truncated"] == 1


def test_render_row_marks_trained_tokens(tok_dir):
    msgs = chat("What is the capital of France?", "Paris.", system="Be nice.")["messages"]
    r = render_row(msgs, tok_dir)
    trained = "".join(t for t, label in r["spans"] if label == "trained")
    masked = "".join(t for t, label in r["spans"] if label == "masked")
    assert trained == "Paris.<|im_end|>"
    assert "What is the capital of France?" in masked and "Be nice." in masked
    assert "".join(t for t, _ in r["spans"]).startswith("<|im_start|>system")
    assert 0 < r["trained_tokens"] < r["tokens"]
    everything = render_row(msgs, tok_dir, assistant_only=False)
    assert [label for _, label in everything["spans"]] == ["trained"]


def test_render_row_explains_bad_rows_and_templates(tok_dir):
    from transformers import AutoTokenizer

    with pytest.raises(StudioError, match="chat template can't render"):
        render_row([{"role": "user", "content": None}], tok_dir)
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    r = render_row(chat("hi", "yo")["messages"], tok)
    assert "no {% generation %} markers" in r["note"] and r["trained_tokens"] == 0


def test_cli_inspect_clean_undo_split_json(dataset, tmp_path, capsys):
    assert main(["inspect", str(dataset), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 4 and out["tokens"]["max_length"] == 1024
    assert out["issues"][0]["row"] == 3
    assert main(["clean", str(dataset), "--out", str(tmp_path / "c"), "--json",
                 "--blocklist", "fox", "--pii", "redact"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kept"] == 1 and report["steps"]["keyword"]["removed"] == 1
    assert report["steps"]["exact_duplicate"]["removed"] == 1
    assert main(["undo", str(tmp_path / "c"), "exact", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kept"] == 2
    assert main(["validate", str(dataset), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["count"] == 1
    assert main(["split", str(dataset), "--out", str(tmp_path / "s"), "--ratios", "0.5,0.5",
                 "--json"]) == 0
    assert sum(json.loads(capsys.readouterr().out)["sizes"].values()) == 4
    with pytest.raises(StudioError, match="PATH:WEIGHT"):
        main(["mix", "a.jsonl:lots", "--out", str(tmp_path / "m.jsonl")])


def test_table_view_shows_turns_as_text_without_null_keys():
    from datasets import Dataset

    from studio.data.views import preview_table

    ds = Dataset.from_list([{"messages": [{"role": "user", "content": "hi", "tool_calls": None},
                                          {"role": "assistant", "content": "Ahoy!", "tool_calls": None}]}])
    cell = preview_table(ds)["messages"][0]
    assert cell == "user: hi | assistant: Ahoy!"
