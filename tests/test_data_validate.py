"""Every validation error with its row number, and bad files giving clear messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.data import load_rows
from studio.data.validate import validate_dataset, validate_path, validate_record
from studio.errors import StudioError

U = {"role": "user", "content": "hi"}
A = {"role": "assistant", "content": "hello"}
S = {"role": "system", "content": "be nice"}


def codes(row, fmt="messages", cmap=None):
    cmap = cmap or {"messages": "messages", "conversations": "conversations"}
    return {c for c, _ in validate_record(row, fmt, cmap)}


@pytest.mark.parametrize("row,expected", [
    ([1, 2], "data_type"),                                             # the row is not a dict
    ({"text": "x"}, "missing_messages_list"),                          # messages missing
    ({"messages": "hi"}, "missing_messages_list"),
    ({"messages": [{"content": "hi"}, A]}, "message_missing_key"),     # no role
    ({"messages": [{"role": "user"}, A]}, "message_missing_key"),      # no content key
    ({"messages": [{**U, "mood": "happy"}, A]}, "message_unrecognized_key"),
    ({"messages": [{"role": "bot", "content": "hi"}, A]}, "unrecognized_role"),
    ({"messages": [{"role": "user", "content": None}, A]}, "missing_content"),
    ({"messages": [U]}, "example_missing_assistant_message"),
    ({"messages": [U, U, A]}, "roles_out_of_order"),
    ({"messages": [A, U, A]}, "roles_out_of_order"),
    ({"messages": [U, A, S, U, A]}, "roles_out_of_order"),
    ({"messages": [U, A, U]}, "roles_out_of_order"),                   # must end with assistant
    ({"messages": [U, {"role": "assistant", "content": "  "}]}, "empty_content"),
    ({"messages": [{"role": "user", "content": 5}, A]}, "wrong_type"),
])
def test_each_chat_error(row, expected):
    assert expected in codes(row)


def test_valid_rows_have_no_issues():
    assert not codes({"messages": [S, U, A, U, A]})
    tool_turn = [U, {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
                 {"role": "tool", "content": "42", "tool_call_id": "1"}, A]
    assert not codes({"messages": tool_turn})
    sg = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    assert not codes(sg, "sharegpt")
    assert "unrecognized_role" in codes({"conversations": [{"from": "alien", "value": "x"},
                                                           {"from": "gpt", "value": "y"}]},
                                        "sharegpt")


def test_other_formats():
    alp = {"instruction": "instruction", "input": "input", "output": "output"}
    assert codes({"instruction": "x", "output": ""}, "alpaca", alp) == {"empty_content"}
    assert codes({"output": "x"}, "alpaca", alp) == {"missing_field"}
    pref = {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}
    assert codes({"prompt": "q", "chosen": "a", "rejected": "a"}, "preference", pref) == \
        {"chosen_equals_rejected"}
    assert codes({"chosen": "yes", "rejected": "no"}, "preference", pref) == {"missing_field"}
    assert codes({"text": ""}, "text", {"text": "text"}) == {"empty_content"}
    pc = {"prompt": "prompt", "completion": "completion"}
    assert codes({"prompt": "q", "completion": [U]}, "prompt_completion", pc) == \
        {"example_missing_assistant_message"}


def test_template_errors_come_from_the_tokenizer():
    class StrictTemplate:
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize=False):
            if messages[0]["role"] == "system":
                raise ValueError("System role not supported")
            return "ok"

    issues = validate_record({"messages": [S, U, A]}, "messages", {"messages": "messages"},
                             tokenizer=StrictTemplate())
    assert issues == [("template_error", "the chat template failed: System role not supported")]


def test_row_numbers_and_fixes(tmp_path):
    rows = [{"messages": [U, A]}, {"messages": [U]}, {"messages": [U, A]}, {"messages": [U, U]}]
    ds = load_rows(_jsonl(tmp_path / "m.jsonl", rows))
    issues = validate_dataset(ds)
    assert [(i.row, i.code) for i in issues] == [(1, "example_missing_assistant_message"),
                                                 (3, "example_missing_assistant_message")]
    assert "Fix:" in str(issues[0]) and str(issues[0]).startswith("row 1:")


def test_validate_path_reports_broken_lines_without_failing(tmp_path):
    p = tmp_path / "broken.jsonl"
    p.write_text(json.dumps({"messages": [U, A]}) + "\n[1, 2]\n{\"messages\": [\n"
                 + json.dumps({"messages": [U, A]}) + "\n")
    found = [(i.row, i.code) for i in validate_path(p)]
    assert found == [(1, "data_type"), (2, "invalid_json")]


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


GOOD = json.dumps({"messages": [U, A]})


@pytest.mark.parametrize("name,content,expect", [
    ("empty.jsonl", b"", ["empty", "Fix:"]),
    ("binary.jsonl", bytes(range(256)) * 20, ["binary", "Fix:"]),
    ("utf16.jsonl", (GOOD + "\n").encode("utf-16"), ["UTF-16", "iconv"]),
    ("latin1.jsonl", (GOOD + "\n").encode() + '{"text": "café"}\n'.encode("latin-1"),
     ["row 1 (line 2)", "UTF-8", "Fix:"]),
    ("truncated.jsonl", (GOOD + "\n" + GOOD[:25] + "\n").encode(),
     ["row 1 (line 2)", "not valid JSON", "truncated"]),
    ("notobject.jsonl", (GOOD + "\n\n42\n").encode(), ["row 1 (line 3)", "not an object"]),
    ("huge.jsonl", (json.dumps({"text": "x" * (17 << 20)}) + "\n").encode(),
     ["line 1", "MiB", "Fix:"]),
    ("truncated.json", json.dumps([{"a": 1}, {"a": 2}])[:-6].encode(), ["line 1", "truncated"]),
    ("fake.parquet", b"this is not parquet at all", ["not a Parquet file", "Fix:"]),
    ("ragged.csv", b"a,b\n1,2\n3,4,5\n", ["row 1 (line 3)", "3 fields", "header has 2"]),
    ("short.csv", b"a,b,c\n1,2\n", ["row 0 (line 2)", "2 fields"]),
    ("weird.xlsx", b"PK\x03\x04", ["unsupported file type", "Fix:"]),
])
def test_bad_files_name_file_row_and_fix(tmp_path, name, content, expect):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(StudioError) as err:
        load_rows(p)
    msg = str(err.value)
    assert str(p) in msg, msg
    for part in expect:
        assert part in msg, (part, msg)


def test_missing_path_and_offline_hub_id(tmp_path):
    with pytest.raises(StudioError, match="no such file"):
        load_rows(tmp_path / "nope.jsonl")
    with pytest.raises(StudioError, match="Hugging Face Hub"):
        load_rows("someone/some-dataset-that-is-not-here")


def test_cli_prints_error_without_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(GOOD + "\n{oops\n")
    proc = subprocess.run([sys.executable, "-m", "studio", "data", "inspect", str(bad), "--json"],
                          capture_output=True, text=True, cwd=Path(__file__).parent.parent,
                          timeout=120)
    assert proc.returncode == 2
    assert "row 1 (line 2)" in proc.stderr and "Traceback" not in proc.stderr


def test_fast_precheck_passes_good_rows_and_flags_bad_ones():
    import pyarrow as pa

    from studio.data.precheck import fast_valid_mask

    rows = [{"messages": [S, U, A]}, {"messages": [U, U]}, {"messages": [U, {**A, "content": " "}]},
            {"messages": [{"role": "human", "content": "x"}, {"role": "gpt", "content": "y"}]}]
    mask = fast_valid_mask(pa.Table.from_pylist(rows), "messages", {"messages": "messages"})
    assert mask.tolist() == [True, False, False, True]
