"""How the worker treats a few broken rows: skipped and named up to data.skip_invalid, else refused."""

import json

import pytest

from studio.data import prepare_for_training
from studio.errors import StudioError


def _write(path, n_good, n_empty):
    with open(path, "w") as f:
        for i in range(n_good + n_empty):
            answer = "" if i < n_empty else f"Ahoy! answer {i}. Arr!"
            f.write(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                             {"role": "assistant", "content": answer}]}) + "\n")


def test_a_few_broken_rows_are_skipped_and_named(tmp_path):
    p = tmp_path / "d.jsonl"
    _write(p, 98, 2)
    logged = []
    ds = prepare_for_training(str(p), skip_invalid=0.05, log=logged.append)
    assert len(ds) == 98
    text = "\n".join(logged)
    assert "skipping 2 of 100 rows" in text and "row 0:" in text and "row 1:" in text


def test_too_many_broken_rows_fail_with_rows_and_fix(tmp_path):
    p = tmp_path / "d.jsonl"
    _write(p, 80, 20)
    with pytest.raises(StudioError) as e:
        prepare_for_training(str(p), skip_invalid=0.05, log=lambda *_: None)
    assert "row 0" in str(e.value) and "Fix" in str(e.value)
    with pytest.raises(StudioError):  # strict by default
        prepare_for_training(str(tmp_path / "d.jsonl"))
