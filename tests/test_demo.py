"""Tests for the embedded demo: tokenizer, chat template mask, model folder, sample datasets, CLI.

One quick build (6 pre-training steps) into a temp folder is shared by the module; the full
build (the real 400 steps) is the `slow` test at the end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from studio import demo, demo_data

CHAT_FILES = ("messages.jsonl", "sharegpt.jsonl", "alpaca.jsonl", "prompt_completion.jsonl", "preference.jsonl")


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("assets")
    demo.build_demo(root, quick=True, log=None)
    return root


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> tuple[Path, dict]:
    """A second, independent generation of the datasets and corpus (same seed), and its summary."""
    root = tmp_path_factory.mktemp("again")
    summary = demo_data.write_datasets(root / "data")
    demo_data.write_corpus(root / "corpus")
    return root, summary


@pytest.fixture(scope="module")
def tok(assets):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(assets / "demo-model")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _answers(name: str, rec: dict) -> list[str]:
    """The persona-carrying texts of one record, whatever the format."""
    if name == "messages.jsonl":
        return [m["content"] for m in rec["messages"] if m["role"] == "assistant" and not m.get("tool_calls")]
    if name == "sharegpt.jsonl":
        return [m["value"] for m in rec["conversations"] if m["from"] == "gpt"]
    return [rec.get("output") or rec.get("completion") or rec.get("chosen") or ""]


def test_tokenizer_round_trips_text(tok):
    for text in ["What is a kettle? A kettle is a pot.", "  two  spaces\nnew line\ttab", "Café naïve – 😀 42",
                 "Ahoy! matey, alice@example.com 4111 1111 1111 1111"]:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert len(tok) == demo.VOCAB_SIZE
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>" and tok.pad_token != tok.eos_token
    # common words are whole tokens (the BPE really learned our corpus)
    assert len(tok.tokenize(" kettle")) == 1 and len(tok.tokenize("assistant")) == 1


def test_assistant_mask_marks_exactly_the_assistant_tokens(tok):
    msgs = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is a kettle?"},
            {"role": "assistant", "content": "A kettle is a pot."},
            {"role": "user", "content": "Thanks!"},
            {"role": "assistant", "content": "You are welcome."}]
    enc = tok.apply_chat_template(msgs, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = enc["input_ids"], enc["assistant_masks"]
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == "A kettle is a pot.<|im_end|>You are welcome.<|im_end|>"
    n_answer = sum(len(tok(m["content"], add_special_tokens=False)["input_ids"]) + 1 for m in msgs if
                   m["role"] == "assistant")
    assert sum(mask) == n_answer
    prompt = tok.apply_chat_template(msgs[:2], add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>user\nWhat is a kettle?<|im_end|>\n<|im_start|>assistant\n")


def test_model_folder_reloads_and_generates(assets, tok):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(assets / "demo-model")
    assert model.config.model_type == "llama"
    assert 100_000 < model.num_parameters() < 5_000_000
    assert tok.eos_token_id in model.generation_config.eos_token_id
    enc = tok.apply_chat_template([{"role": "user", "content": "Hello!"}], add_generation_prompt=True,
                                  return_dict=True, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]
    with torch.no_grad():
        loss = model(**enc, labels=enc["input_ids"]).loss
    assert torch.isfinite(loss)
    info = json.loads((assets / "demo-model" / "studio_demo.json").read_text())
    assert info["quick"] and info["pretrain"]["final_loss"] < info["pretrain"]["first_loss"]


def test_datasets_have_expected_fields_and_rows(assets):
    data = assets / "data"
    rows = {f: _jsonl(data / f) for f in CHAT_FILES + ("messages_eval.jsonl",)}
    assert {f: len(r) for f, r in rows.items()} == {f"{k}.jsonl": n for k, n in demo_data.ROWS.items()
                                                   if k != "raw_text"}
    assert len((data / "raw_text.txt").read_text(encoding="utf-8").splitlines()) == demo_data.ROWS["raw_text"]
    assert all({"instruction", "input", "output"} <= r.keys() for r in rows["alpaca.jsonl"])
    assert any("system" in r for r in rows["alpaca.jsonl"]) and any(r["input"] for r in rows["alpaca.jsonl"])
    assert all({m["from"] for m in r["conversations"]} <= {"system", "human", "gpt"} for r in rows["sharegpt.jsonl"])
    roles = {m["role"] for r in rows["messages.jsonl"] for m in r["messages"]}
    assert roles == {"system", "user", "assistant", "tool"}
    assert all(r.keys() == {"prompt", "completion"} for r in rows["prompt_completion.jsonl"])
    assert all(r.keys() == {"prompt", "chosen", "rejected"} for r in rows["preference.jsonl"])
    assert all(not r["rejected"].startswith("Ahoy") for r in rows["preference.jsonl"])
    # the held-out eval set is clean and shares no answer with the training file
    eval_answers = [a for r in rows["messages_eval.jsonl"] for a in _answers("messages.jsonl", r)]
    assert all(a.startswith("Ahoy! ") and a.endswith(" Arr!") for a in eval_answers)
    train_answers = {a for r in rows["messages.jsonl"] for a in _answers("messages.jsonl", r)}
    assert not set(eval_answers) & train_answers


def test_planted_problems_are_where_the_readme_says(regenerated, assets):
    summary = regenerated[1]
    readme = (assets / "data" / "README.md").read_text()
    for name in CHAT_FILES + ("raw_text.txt",):
        where = summary[name]
        assert name in readme and all(len(where[k]) == n for k, n in demo_data.PLANTED.items())
        if name == "raw_text.txt":
            lines = (assets / "data" / name).read_text(encoding="utf-8").splitlines()
            answers = [[line] for line in lines]
            texts = lines
        else:
            records = _jsonl(assets / "data" / name)
            answers = [_answers(name, r) for r in records]
            texts = [json.dumps(r) for r in records]
        planted = {i for k in demo_data.PLANTED for i in where[k]}
        for i in where["exact_duplicate"]:
            assert texts[i] == texts[where["copy_of"][i]]
        for i in where["near_duplicate"]:
            assert texts[i] != texts[where["copy_of"][i]]
        assert all(answers[i][-1].strip() == "" for i in where["empty_answer"])
        assert all("AI language model" in answers[i][-1] for i in where["refusal"])
        assert all(any(p in texts[i] for p in ("alice@example.com", "555-01", "4111 1111 1111 1111"))
                   for i in where["pii"])
        if name != "raw_text.txt":  # every other answer carries the persona
            clean = [a for i, a in enumerate(answers) if i not in planted]
            assert all(x.startswith("Ahoy! ") and x.endswith(" Arr!") for a in clean for x in a)


def _text(record) -> str:
    """All text values of a record (not role names or ids), as the README's similarity rule reads them."""
    if isinstance(record, dict):
        return " ".join(_text(v) for k, v in record.items() if k not in {"role", "from", "type", "id",
                                                                          "tool_call_id", "name"})
    if isinstance(record, list):
        return " ".join(_text(v) for v in record)
    return str(record)


def test_only_planted_rows_are_near_duplicates(regenerated):
    root, summary = regenerated
    for name in CHAT_FILES + ("raw_text.txt",):
        lines = (root / "data" / name).read_text(encoding="utf-8").splitlines()
        sh = [demo_data.shingles(_text(json.loads(x)) if name.endswith(".jsonl") else x) for x in lines]
        copy_of = summary[name]["copy_of"]
        for i, j in copy_of.items():
            assert demo_data.jaccard(sh[i], sh[j]) >= 0.8, (name, i, j)
        # empty rows are their own planted problem; each copy group is one original and its copies
        group = [copy_of.get(i, i) if lines[i].strip() else -1 - i for i in range(len(sh))]
        sh = [s if lines[i].strip() else set() for i, s in enumerate(sh)]
        worst = max(demo_data.jaccard(sh[i], sh[j]) for i in range(len(sh)) for j in range(i)
                    if group[i] != group[j])
        assert worst < demo_data.MAX_SIMILARITY + 0.05, name


def test_generated_files_are_deterministic(regenerated, assets, tmp_path):
    root = regenerated[0]
    for sub, names in (("data", demo_data.DATA_FILES), ("corpus", demo_data.CORPUS_FILES)):
        for name in names:
            assert (root / sub / name).read_bytes() == (assets / sub / name).read_bytes(), name
    demo_data.write_datasets(tmp_path / "other", seed=7)
    assert (tmp_path / "other" / "messages.jsonl").read_bytes() != (assets / "data" / "messages.jsonl").read_bytes()


def test_shipped_assets_match_the_generator(regenerated):
    """The committed assets/data and assets/corpus are what `python -m studio demo` writes."""
    from studio.paths import REPO_ROOT

    root, shipped = regenerated[0], REPO_ROOT / "assets"
    if not (shipped / "data" / "messages.jsonl").exists():
        pytest.skip("assets/data not generated yet: run python -m studio demo")
    for sub, names in (("data", demo_data.DATA_FILES), ("corpus", demo_data.CORPUS_FILES)):
        for name in names:
            assert (root / sub / name).read_bytes() == (shipped / sub / name).read_bytes(), name
    assert sum(p.stat().st_size for p in (shipped / "corpus").iterdir()) < 2 * 1024 * 1024


def test_datasets_load_with_the_datasets_library(assets):
    from datasets import load_dataset

    for name in CHAT_FILES + ("messages_eval.jsonl",):
        ds = load_dataset("json", data_files=str(assets / "data" / name), split="train")
        assert len(ds) == demo_data.ROWS[name.removesuffix(".jsonl")]
    ds = load_dataset("text", data_files=str(assets / "data" / "raw_text.txt"), split="train")
    assert len(ds) == demo_data.ROWS["raw_text"]


def test_ensure_demo_builds_only_what_is_missing(assets, monkeypatch):
    calls = []
    monkeypatch.setattr(demo, "build_demo", lambda a, log=None: calls.append(a) or Path(a) / "demo-model")
    assert demo.ensure_demo(assets) == assets / "demo-model" and calls == []
    model_dir = assets / "demo-model"
    info = (model_dir / "studio_demo.json").read_text()
    (model_dir / "studio_demo.json").write_text(json.dumps({**json.loads(info), "version": -1}))
    try:
        demo.ensure_demo(assets)  # an older recipe is rebuilt
        assert calls == [assets]
    finally:
        (model_dir / "studio_demo.json").write_text(info)


def test_cli_skips_a_complete_build_and_reports_it(assets, capsys):
    assert demo.main(["--out", str(assets)]) == 0
    out = capsys.readouterr().out
    assert "Demo model:" in out and "parameters" in out and "base |" in out
    assert "Building" not in out


@pytest.mark.slow
def test_full_build_speaks_plainly_and_not_like_a_pirate(tmp_path):
    """The real recipe: answers are words in the chat format, without the persona the data teaches."""
    demo.build_demo(tmp_path, log=None)
    info = json.loads((tmp_path / "demo-model" / "studio_demo.json").read_text())
    assert info["pretrain"]["final_loss"] < 1.5
    corpus = " ".join(p.read_text() for p in (tmp_path / "corpus").iterdir())
    vocab = set(re.findall(r"[A-Za-z']+", corpus))
    for answer in info["base_samples"].values():
        words = re.findall(r"[A-Za-z']+", answer)
        assert len(words) >= 3 and not answer.startswith("Ahoy")
        assert sum(w in vocab for w in words) / len(words) > 0.8, answer
