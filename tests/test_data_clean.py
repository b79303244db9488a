"""Cleaning: recall on planted duplicates, no false positives, every filter, report and undo."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pytest

from studio.data.clean import REASONS, CleanOptions, clean
from studio.data.undo import read_removed, redo, undo
from studio.errors import StudioError

CAPITALS = [("France", "Paris"), ("Spain", "Madrid"), ("Italy", "Rome"), ("Japan", "Tokyo"),
            ("Peru", "Lima"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Chile", "Santiago")]


def chat(q, a):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def distinct_rows(n, seed=0):
    """n rows no two of which are near duplicates: random words, plus templated look-alikes."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
             for _ in range(5000)]
    rows = [chat(f"What is the capital of {c}?", f"The capital of {c} is {k}.")
            for c, k in CAPITALS]
    while len(rows) < n:
        rows.append(chat(" ".join(rng.choices(vocab, k=rng.randint(10, 20))) + "?",
                         " ".join(rng.choices(vocab, k=rng.randint(40, 60))) + "."))
    return rows, vocab


def edit_words(text, frac, rng, vocab):
    words = text.split()
    for j in rng.sample(range(len(words)), max(1, round(len(words) * frac))):
        words[j] = rng.choice(vocab)
    return " ".join(words)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def removed(out):
    return {r["row"]: r for r in map(json.loads, (out / "removed.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """300 distinct rows + 40 exact copies (case/space/unicode changed) + 40 near copies (5%)."""
    rng = random.Random(1)
    rows, vocab = distinct_rows(300)
    exact, near = {}, {}
    for _ in range(40):
        src = rng.randrange(8, 300)
        m = rows[src]["messages"]
        # NBSP, upper case, full-width "A" (NFKC folds it back), extra spaces
        variant = "\u00a0 " + m[0]["content"].upper().replace("A", "\uff21") + "  "
        exact[len(rows)] = src
        rows.append(chat(variant, m[1]["content"] + "\n"))
    for _ in range(40):
        src = rng.randrange(8, 300)
        m = rows[src]["messages"]
        near[len(rows)] = src
        rows.append(chat(edit_words(m[0]["content"], 0.05, rng, vocab),
                         edit_words(m[1]["content"], 0.05, rng, vocab)))
    path = write_jsonl(tmp_path_factory.mktemp("planted") / "in.jsonl", rows)
    return path, rows, exact, near


def test_recall_on_planted_duplicates_and_no_false_positives(planted, tmp_path):
    path, rows, exact, near = planted
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    report = clean(path, tmp_path / "out")
    got = removed(tmp_path / "out")
    exact_found = {r for r, x in got.items() if "exact_duplicate" in x["reasons"]}
    near_found = {r for r, x in got.items() if "near_duplicate" in x["reasons"]}
    assert exact_found == set(exact)                       # recall 100%, no false positive
    assert near_found == set(near)                         # 5%-edited copies all caught
    assert all(got[r]["duplicate_of"] == src for r, src in {**exact, **near}.items())
    assert set(got) == set(exact) | set(near)              # nothing distinct was removed
    assert report["kept"] == 300 and report["steps"]["near_duplicate"]["removed"] == 40
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before   # input untouched
    kept = [json.loads(line) for line in (tmp_path / "out/clean.jsonl").read_text().splitlines()]
    assert kept == rows[:300]                               # kept rows are byte-identical
    assert got[300]["record"] == rows[300]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files


def test_threshold_is_tunable(planted, tmp_path):
    path, _, exact, near = planted
    strict = clean(path, tmp_path / "strict", CleanOptions(near_threshold=0.97))
    assert strict["steps"]["near_duplicate"]["removed"] < len(near) // 2
    assert strict["steps"]["exact_duplicate"]["removed"] == len(exact)
    off = clean(path, tmp_path / "off", CleanOptions(dedup=()))
    assert off["removed"] == 0


def test_minhash_signatures_equal_datasketch():
    import pyarrow as pa
    from datasketch import MinHash

    from studio.data.dedup import MinHasher, normalize, word_lists

    texts = ["The quick brown fox jumps over the lazy dog", "Ünïcödé wörds, and  punctuation!",
             "", "one", "a b c a b c a", "the cat and the hat and the bat"]
    words = word_lists(normalize(pa.array(texts)))
    for multiset in (False, True):
        sigs = MinHasher(num_perm=64, multiset=multiset).signatures(words)
        for i, ws in enumerate(words.to_pylist()):
            tokens, seen = set(), {}
            for w in ws:  # multiset: the k-th repeat of a word is the token "word\0k"
                k = seen[w] = seen.get(w, -1) + 1
                tokens.add(w.encode() + (b"\x00%d" % k if k and multiset else b""))
            ref = MinHash(num_perm=64)
            ref.update_batch(sorted(tokens))
            if ws:
                assert (sigs[i] == ref.hashvalues).all(), (multiset, ws)
            else:
                assert (sigs[i] == np.uint32(0xFFFFFFFF)).all()


def test_lsh_candidates_cover_datasketch_results():
    """Every pair datasketch's MinHashLSH (same bands) finds is one of our candidates."""
    import pyarrow as pa
    from datasketch import LeanMinHash, MinHashLSH

    from studio.data.dedup import (MinHasher, candidate_pairs, lsh_params, normalize,
                                   word_lists)

    rows, vocab = distinct_rows(150, seed=3)
    rng = random.Random(3)
    texts = [r["messages"][1]["content"] for r in rows]
    texts += [edit_words(t, 0.15, rng, vocab) for t in texts[:60]]
    sigs = MinHasher().signatures(word_lists(normalize(pa.array(texts))))
    b, r = lsh_params(0.8, 128)
    lsh = MinHashLSH(num_perm=128, params=(b, r))
    ref = set()
    for i, s in enumerate(sigs):
        m = LeanMinHash(seed=1, hashvalues=s, scheme="affine32")
        ref |= {(j, i) for j in lsh.query(m)}
        lsh.insert(i, m)
    ours = {tuple(p) for band in candidate_pairs(sigs, np.arange(len(sigs)), b, r)
            for p in band.tolist()}
    assert ref and ref <= ours


def test_filters_each_reason(tmp_path):
    rows = [chat("What is the capital of France?", "Paris is the capital of France."),   # 0 kept
            chat("Say nothing", "   "),                                                 # 1 empty
            chat("hi", "yo"),                                                           # 2 short
            chat("Tell me a long story " * 5, "Once upon a time " * 40),                # 3 long
            chat("How do I cook spam?", "Fry the spam in a pan until crisp."),          # 4 keyword
            chat("Hack my neighbour", "As an AI language model, I cannot help."),       # 5 refusal
            chat("Quelle est la capitale de la France ?", "La capitale de la France est Paris, "
                 "une très belle ville."),                                           # 6 language
            chat("Email me", "Write to jane.doe@example.com for the report."),          # 7 pii
            {"messages": [{"role": "user", "content": "no answer here"}]},              # 8 invalid
            chat("Pay with card?", "Use 4111 1111 1111 1111 at checkout please.")]      # 9 pii
    path = write_jsonl(tmp_path / "f.jsonl", rows)
    opts = CleanOptions(dedup=(), min_tokens=3, max_tokens=100, blocklist=("spam",),
                        languages=("en",), pii="remove")
    report = clean(path, tmp_path / "out", opts)
    got = {r: x["reasons"] for r, x in removed(tmp_path / "out").items()}
    assert got == {1: ["empty"], 2: ["too_short"], 3: ["too_long"], 4: ["keyword"],
                   5: ["refusal"], 6: ["language"], 7: ["pii"], 8: ["invalid_format"],
                   9: ["pii"]}
    assert report["kept"] == 1 and set(report["steps"]) == set(REASONS)
    assert report["pii"]["rows_found"] == 2


def test_pii_redact_and_undo(tmp_path):
    rows = [chat("Call me", "My number is (555) 123-4567, or mail bob@example.org."),
            chat("What is 2+2?", "It is 4.")]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    out = tmp_path / "out"
    report = clean(path, out, CleanOptions(dedup=(), pii="redact"))
    lines = (out / "clean.jsonl").read_text().splitlines()
    assert report["kept"] == 2 and report["pii"]["redacted"] == 1
    assert "[PHONE]" in lines[0] and "[EMAIL]" in lines[0] and "555" not in lines[0]
    assert json.loads(lines[1]) == rows[1]
    undo(out, "pii")
    assert [json.loads(x) for x in (out / "clean.jsonl").read_text().splitlines()] == rows
    redo(out, "pii")
    assert "[PHONE]" in (out / "clean.jsonl").read_text()


def test_every_removed_row_keeps_all_reasons_and_undo_redo(tmp_path):
    rng = random.Random(5)
    rows, vocab = distinct_rows(40, seed=5)
    rows[20] = chat("Hi", "As an AI language model, I cannot answer that.")  # refusal
    rows.append(chat(edit_words(rows[12]["messages"][0]["content"], 0.05, rng, vocab),
                     rows[12]["messages"][1]["content"]))                   # 40: near dup of 12
    rows.append(dict(rows[20]))                                           # 41: exact dup + refusal
    rows.append(rows[12])                                                 # 42: exact dup of 12
    path = write_jsonl(tmp_path / "u.jsonl", rows)
    out = tmp_path / "out"
    report = clean(path, out)
    got = removed(out)
    assert got[40]["reasons"] == ["near_duplicate"]
    assert got[41]["reasons"] == ["exact_duplicate", "refusal"]
    assert got[20]["reasons"] == ["refusal"]
    assert report["steps"]["refusal"] == {"removed": 2, "only": 1, "enabled": True,
                                          "undone": False}
    r = undo(out, "refusal")                       # row 20 back; 41 still an exact duplicate
    kept_rows = [json.loads(x) for x in (out / "clean.jsonl").read_text().splitlines()]
    assert r["kept"] == 40 and kept_rows[20] == rows[20] and r["undone"] == ["refusal"]
    undo(out, "dedup")                             # now everything is back, in input order
    assert [json.loads(x) for x in (out / "clean.jsonl").read_text().splitlines()] == rows
    r = redo(out, "refusal")
    assert r["kept"] == len(rows) - 2 and r["undone"] == ["exact_duplicate", "near_duplicate",
                                                          "semantic_duplicate"]
    assert [x["row"] for x in read_removed(out, "near_duplicate")] == [40]
    with pytest.raises(StudioError, match="unknown cleaning step"):
        undo(out, "typo")


def test_csv_input_and_bad_options(tmp_path):
    import pandas as pd

    pd.DataFrame([{"instruction": "Add 2 and 2", "output": "4"},
                  {"instruction": "add 2 and  2", "output": "4"},
                  {"instruction": "Name a colour", "output": "Blue"}]).to_csv(tmp_path / "a.csv",
                                                                              index=False)
    report = clean(tmp_path / "a.csv", tmp_path / "out", CleanOptions(min_tokens=None))
    assert report["format"]["name"] == "alpaca" and report["kept"] == 2
    assert json.loads((tmp_path / "out/clean.jsonl").read_text().splitlines()[1]) == \
        {"instruction": "Name a colour", "output": "Blue"}
    with pytest.raises(StudioError, match="pii must be"):
        clean(tmp_path / "a.csv", tmp_path / "o2", CleanOptions(pii="shred"))
    with pytest.raises(StudioError, match="overwrite the input"):
        clean(tmp_path / "a.csv", tmp_path, CleanOptions()) if False else \
            clean(write_jsonl(tmp_path / "clean.jsonl", [chat("a", "b")]), tmp_path)


def test_token_filter_with_a_tokenizer(tmp_path):
    from conftest import build_tiny_tokenizer

    tok_dir = tmp_path / "tok"
    build_tiny_tokenizer(tok_dir)
    rows = [chat("The quick brown fox", "jumps over the lazy dog."), chat("Ahoy", "Arr! " * 200)]
    report = clean(write_jsonl(tmp_path / "t.jsonl", rows), tmp_path / "out",
                   CleanOptions(dedup=(), max_tokens=300, tokenizer=str(tok_dir)))
    assert [r for r in removed(tmp_path / "out")] == [1]
    assert report["tokens"]["counted_with"] == str(tok_dir) and report["tokens"]["max"] > 300


@pytest.mark.slow
def test_semantic_dedup_catches_paraphrases(tmp_path):
    rows = [chat("How do I bake bread at home?", "Mix flour, water, yeast and salt, knead, let "
                 "it rise and bake at 230 C."),
            chat("What's the way to bake a loaf of bread at home?", "Combine flour, water, yeast "
                 "and salt, knead, let it rise, then bake at 230 C."),
            chat("Explain how a transistor works.", "A small voltage at the gate controls a "
                 "larger current between source and drain."),
            chat("Who painted the Mona Lisa?", "Leonardo da Vinci painted it in the 1500s.")]
    report = clean(write_jsonl(tmp_path / "s.jsonl", rows), tmp_path / "out",
                   CleanOptions(dedup=("exact", "near", "semantic"), semantic_threshold=0.85))
    got = removed(tmp_path / "out")
    assert list(got) == [1] and got[1]["reasons"] == ["semantic_duplicate"]
    assert report["steps"]["semantic_duplicate"]["removed"] == 1
