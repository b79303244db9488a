"""Seeded splits without leakage (duplicates on one side only) and weighted mixing."""

from __future__ import annotations

import json
import random

import pytest

from studio.data.split import mix, split
from studio.errors import StudioError


def chat(q, a):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def rows_with_duplicates(n=400, seed=0):
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghij") for _ in range(6)) for _ in range(3000)]
    rows = [chat(" ".join(rng.choices(vocab, k=12)), " ".join(rng.choices(vocab, k=40)))
            for _ in range(n)]
    groups = []
    for k in range(30):  # 30 groups of 3: original, exact copy (case), near copy (1 word changed)
        src = rng.randrange(n)
        q, a = (m["content"] for m in rows[src]["messages"])
        words = a.split()
        words[rng.randrange(len(words))] = "changed"
        rows += [chat(q.upper(), a), chat(q, " ".join(words))]
        groups.append({src, len(rows) - 2, len(rows) - 1})
    return rows, groups


def read(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_split_has_no_leakage_and_is_seeded(tmp_path):
    rows, groups = rows_with_duplicates()
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = split(src, tmp_path / "a", ratios=(0.8, 0.1, 0.1), seed=7)
    parts = {name: read(tmp_path / "a" / f"{name}.jsonl") for name in report["sizes"]}
    assert sum(len(p) for p in parts.values()) == len(rows)
    assert abs(len(parts["train"]) - 0.8 * len(rows)) <= 3
    where = {}
    for name, part in parts.items():
        for r in part:
            where.setdefault(json.dumps(r, sort_keys=True), set()).add(name)
    for g in groups:  # every member of a duplicate group is in one split only
        sides = set().union(*(where[json.dumps(rows[i], sort_keys=True)] for i in g))
        assert len(sides) == 1, g
    again = split(src, tmp_path / "b", ratios=(0.8, 0.1, 0.1), seed=7)
    assert again["sizes"] == report["sizes"]
    assert (tmp_path / "a/test.jsonl").read_text() == (tmp_path / "b/test.jsonl").read_text()
    other = split(src, tmp_path / "c", ratios=(0.8, 0.1, 0.1), seed=8)
    assert (tmp_path / "c/test.jsonl").read_text() != (tmp_path / "a/test.jsonl").read_text()
    assert report["rows_in_duplicate_groups"] >= 90 and other["rows"] == len(rows)


def test_split_by_counts_and_errors(tmp_path):
    rows, _ = rows_with_duplicates(100)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows[:100]))
    report = split(src, tmp_path / "out", counts=(60, 20, 0), seed=1)
    assert report["sizes"] == {"train": 60, "validation": 20, "test": 0}
    assert not (tmp_path / "out/test.jsonl").exists() and report["left_out"] == 20
    with pytest.raises(StudioError, match="need 200 rows"):
        split(src, tmp_path / "x", counts=(150, 50))
    with pytest.raises(StudioError, match="ratios"):
        split(src, tmp_path / "y", ratios=(0, 0, 0))


def test_mix_by_weights(tmp_path):
    a = tmp_path / "domain.jsonl"
    b = tmp_path / "general.jsonl"
    a.write_text("".join(json.dumps({"instruction": f"domain {i}", "output": "d"}) + "\n"
                         for i in range(70)))
    b.write_text("".join(json.dumps(chat(f"general {i}", "g")) + "\n" for i in range(200)))
    out = tmp_path / "mix.jsonl"
    report = mix([(str(a), 0.7), (str(b), 0.3)], out, seed=3)
    rows = read(out)
    assert report["rows"] == len(rows) == 100  # 70 domain rows allow 100 in total at 70%
    domain = sum(r["messages"][0]["content"].startswith("domain") for r in rows)
    assert domain == 70 and not any(s["repeated"] for s in report["sources"])
    more = mix([(str(a), 0.5), (str(b), 0.5)], tmp_path / "m2.jsonl", total=200)
    assert more["sources"][0]["repeated"] and more["rows"] == 200
    with pytest.raises(StudioError, match="weights must be positive"):
        mix([(str(a), 0)], tmp_path / "m3.jsonl")
