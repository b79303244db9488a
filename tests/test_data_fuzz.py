"""Fuzz the loaders and validators: any input gives a Dataset or a StudioError, never a crash."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.data import detect_format, load_rows
from studio.data.clean import CleanOptions, clean
from studio.data.validate import validate_dataset, validate_record
from studio.errors import StudioError

SUFFIXES = [".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet"]
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["messages", "role", "content", "text", "prompt", "chosen", "rejected",
                         "instruction", "output", "from", "value", "x"]), inner, max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


_names = itertools.count()


def _load_or_clear_error(path):
    try:
        return load_rows(path)
    except StudioError as e:
        assert str(path) in str(e) or path.name in str(e), str(e)
        return None


def _load_detect_validate(path):
    """Whatever loads must also survive format detection and validation."""
    ds = _load_or_clear_error(path)
    if ds is not None:
        detect_format(ds)
        validate_dataset(ds)


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(workdir, data, suffix):
    p = workdir / f"b{next(_names)}{suffix}"
    p.write_bytes(data)
    _load_detect_validate(p)


@FUZZ
@given(lines=st.lists(json_values, min_size=1, max_size=6),
       breaks=st.lists(st.integers(0, 200), max_size=2))
def test_random_json_lines(workdir, lines, breaks):
    text = "".join(json.dumps(v) + "\n" for v in lines)
    for cut in breaks:  # truncate / splice to get broken JSON too
        text = text[:cut] + text[cut + 3:]
    p = workdir / f"j{next(_names)}.jsonl"
    p.write_text(text)
    _load_detect_validate(p)


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(st.dictionaries(st.sampled_from(["messages", "text", "prompt", "completion"]),
                                     json_values, min_size=1, max_size=3), min_size=1, max_size=5))
def test_clean_never_crashes(workdir, rows):
    p = workdir / f"c{next(_names)}.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if _load_or_clear_error(p) is None:
        return
    try:
        report = clean(p, workdir / f"out{next(_names)}", CleanOptions(pii="redact"))
    except StudioError:
        return
    assert report["kept"] + report["removed"] == report["rows"] == len(rows)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(row=json_values, fmt=st.sampled_from(["alpaca", "sharegpt", "messages",
                                              "prompt_completion", "preference", "text"]))
def test_validate_record_never_raises(row, fmt):
    cmap = {"messages": "messages", "conversations": "messages", "instruction": "instruction",
            "output": "output", "prompt": "prompt", "completion": "content", "chosen": "chosen",
            "rejected": "rejected", "text": "text"}
    for code, message in validate_record(row, fmt, cmap):
        assert isinstance(code, str) and isinstance(message, str)


message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "User", "gpt", "bot"]),
     "content": st.one_of(st.none(), st.sampled_from(["", " ", "\x1c", "\u3000", "ok", "hi there"]),
                          st.text(max_size=5))},
    optional={"name": st.sampled_from(["a", None]), "mood": st.sampled_from(["x", None])})


@settings(max_examples=150, deadline=None, derandomize=True)
@given(convs=st.lists(st.one_of(st.none(), st.lists(message, max_size=5)), min_size=1,
                      max_size=8))
def test_fast_precheck_agrees_with_python_validator(convs):
    """A row the column-wise pre-check passes must have no issue in the Python validator."""
    import pyarrow as pa

    from studio.data.precheck import fast_valid_mask

    rows = [{"messages": c} for c in convs]
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return
    fast = fast_valid_mask(table, "messages", {"messages": "messages"})
    if fast is None:
        return
    for ok, row in zip(fast, table.to_pylist()):
        if ok:
            assert validate_record(row, "messages", {"messages": "messages"}) == [], row
