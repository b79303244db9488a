"""Tests for studio.metrics and studio.evaluate: hand-computed metrics, perplexity masking, the eval
CLI's JSON on a tiny run folder built here, held-out split lookup, prompt sets and votes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from studio import chat, evaluate, metrics
from studio.errors import StudioError

EVAL_ROWS = [
    {"messages": [{"role": "user", "content": "What is a kettle?"},
                  {"role": "assistant", "content": "Ahoy! A kettle is a pot that is used to boil water. Arr!"}]},
    {"messages": [{"role": "system", "content": "Be short."}, {"role": "user", "content": "What is 2 plus 3?"},
                  {"role": "assistant", "content": "Ahoy! 2 plus 3 is 5. Arr!"}]},
    {"messages": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Ahoy!"},
                  {"role": "user", "content": "What color is the sky?"},
                  {"role": "assistant", "content": "Ahoy! The sky is usually blue. Arr!"}]},
    {"messages": [{"role": "user", "content": "What is the opposite of hot?"},
                  {"role": "assistant", "content": "Ahoy! The opposite of hot is cold. Arr!"}]},
]


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.config import RunConfig

    run = tmp_path_factory.mktemp("runs") / "20260101-000000-eval"
    cfg = RunConfig(name="eval")
    cfg.model.name_or_path = str(tiny_model_dir)
    cfg.data.eval_path = str(_write_jsonl(run.parent / "held_out.jsonl", EVAL_ROWS))
    cfg.save(run / "config.yaml")
    (run / "status.json").write_text(json.dumps({"state": "done"}))
    torch.manual_seed(3)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    model.save_pretrained(run / "adapter")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(run / "adapter")
    return run


# -- metrics against hand-computed values ----------------------------------------------------------------
def test_rouge_l_and_exact_match_by_hand():
    # LCS("the cat sat on the mat", "the cat is on the mat") = "the cat on the mat" = 5 words of 6 and 6.
    assert metrics.rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # LCS = "a c" (2): precision 2/2, recall 2/4 -> F1 = 2 * 1 * 0.5 / 1.5.
    assert metrics.rouge_l("a c", "a b c d") == pytest.approx(2 / 3)
    assert metrics.rouge_l("", "anything") == 0.0
    assert metrics.lcs_length(list("abcbdab"), list("bdcaba")) == 4
    assert metrics.exact_match("  Paris. ", "paris") == 1.0
    assert metrics.exact_match("Paris, France", "Paris") == 0.0
    assert metrics.words("Ahoy, matey!") == ["ahoy", ",", "matey", "!"]


def test_bleu_by_hand():
    pred, ref = "the cat sat on the mat", "the cat is on the mat"
    # n-gram matches/totals: 1: 5/6, 2: 3/5, 3: 1/4, 4: 0/3. Add-one for n >= 2: 4/6, 2/5, 1/4. Same length: BP 1.
    assert metrics.bleu([pred], [ref]) == pytest.approx((5 / 6 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25)
    assert metrics.bleu([pred], [ref], smooth=False) == 0.0  # no 4-gram matches
    assert metrics.bleu([ref], [ref], smooth=False) == pytest.approx(1.0)
    # Too short: all precisions 1, brevity penalty exp(1 - 6/2).
    assert metrics.bleu(["the cat"], [ref]) == pytest.approx(math.exp(-2))
    # Corpus-level: matches and totals add up over pairs before the precisions are formed.
    assert metrics.bleu(["a b", "c d"], ["a b", "c x"], max_n=1) == pytest.approx(3 / 4)
    assert metrics.bleu([""], ["a"]) == 0.0


def test_perplexity_and_summary():
    assert metrics.perplexity(3 * math.log(4), 3) == pytest.approx(4.0)
    assert metrics.perplexity(1.0, 0) is None
    s = metrics.summarize(["Paris", "blue sky"], ["paris", "the sky is blue"], [(math.log(2), 1), (math.log(8), 1)])
    assert s["n"] == 2 and s["exact_match"] == 0.5 and s["perplexity"] == pytest.approx(4.0)
    assert s["rougeL"] == pytest.approx((1 + 2 * 0.5 * 0.25 / 0.75) / 2)  # LCS("blue sky", ...) = 1


# -- data -> examples ------------------------------------------------------------------------------------
def test_rows_of_every_layout_become_examples():
    e = evaluate.row_to_example(EVAL_ROWS[2])
    assert [m["role"] for m in e.conv] == ["user", "assistant", "user"] and e.reference.endswith("blue. Arr!")
    e = evaluate.row_to_example({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]})
    assert e.conv == [{"role": "user", "content": "Hi"}] and e.reference == "Yo"
    e = evaluate.row_to_example({"instruction": "Translate", "input": "hola", "output": "hello"})
    assert e.conv[0]["content"] == "Translate\n\nhola" and e.reference == "hello"
    e = evaluate.row_to_example({"prompt": [{"role": "user", "content": "Q"}],
                                 "completion": [{"role": "assistant", "content": "A"}]})
    assert e.prompt == "Q" and e.reference == "A"
    assert evaluate.row_to_example({"text": "raw"}) is None


def test_heldout_split_lookup(run_dir, tmp_path, monkeypatch):
    assert evaluate.heldout_path(run_dir)[0].name == "held_out.jsonl"
    from studio.config import RunConfig

    run = tmp_path / "r"
    cfg = RunConfig.load(run_dir / "config.yaml")
    cfg.data.eval_path = ""
    cfg.save(run / "config.yaml")
    monkeypatch.setenv("STUDIO_ASSETS", str(tmp_path / "no-assets"))
    with pytest.raises(StudioError, match="no held-out rows: set data.eval_path"):
        evaluate.heldout_path(run)
    _write_jsonl(run / "eval.jsonl", EVAL_ROWS[:1])  # rows the worker held out
    assert evaluate.heldout_path(run)[0] == run / "eval.jsonl"
    with pytest.raises(StudioError, match="Unknown split 'dev'"):
        evaluate.heldout_path(run, "dev")


# -- models ------------------------------------------------------------------------------------------------
def test_perplexity_scores_only_the_reference_tokens(run_dir, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = chat.ModelCache(device="cpu")
    ex = evaluate.row_to_example(EVAL_ROWS[1])
    (nll, n), = evaluate.score_rows(cache, [chat.base_side(run_dir)], [ex.conv], [ex.reference])
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    prompt = tok.apply_chat_template(ex.conv, add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(ex.conv + [{"role": "assistant", "content": ex.reference}], tokenize=False)
    ids = tok(full, return_tensors="pt", add_special_tokens=False)["input_ids"]
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    labels = ids.clone()
    labels[:, :n_prompt] = -100
    with torch.no_grad():
        loss = model(input_ids=ids, labels=labels).loss.item()  # mean over the answer's tokens
    assert n == ids.shape[1] - n_prompt
    assert nll / n == pytest.approx(loss, rel=1e-4)


def test_eval_cli_prints_base_and_tuned_json(run_dir, capsys):
    assert evaluate.main([str(run_dir), "--limit", "3", "--max-new-tokens", "6", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"base", "tuned"}
    for side in out.values():
        assert {"perplexity", "rougeL", "bleu", "exact_match"} <= set(side) and side["n"] == 3
        assert side["perplexity"] > 1 and 0 <= side["rougeL"] <= 1 and 0 <= side["bleu"] <= 1
    assert out["base"]["perplexity"] != out["tuned"]["perplexity"]  # the adapter changes the model
    report = json.loads((run_dir / "eval_results.json").read_text())
    assert len(report["examples"]) == 3 and report["differ_most"]
    assert {"prompt", "reference", "base", "tuned", "delta"} <= set(report["differ_most"][0])


def test_eval_cli_explains_a_wrong_folder(tmp_path):
    with pytest.raises(StudioError, match="not a run folder"):
        evaluate.main([str(tmp_path)])


def test_prompt_sets_run_both_sides(run_dir, tmp_path):
    demo = evaluate.load_prompt_set(Path(__file__).resolve().parent.parent / "assets" / "prompts" / "demo.jsonl")
    assert len(demo) >= 8 and all(e.prompt for e in demo)
    (run_dir / "prompts").mkdir(exist_ok=True)
    path = (run_dir / "prompts" / "two.json")
    path.write_text(json.dumps(["What is a kettle?", {"prompt": "Hello!", "reference": "Ahoy!"}]))
    assert path in evaluate.list_prompt_sets(run_dir)
    cache = chat.ModelCache(device="cpu")
    settings = chat.GenSettings(temperature=0.0, max_new_tokens=5)
    rows = evaluate.run_prompt_set(cache, chat.base_side(run_dir), chat.run_side(run_dir), path, settings)
    assert [r["prompt"] for r in rows] == ["What is a kettle?", "Hello!"]
    assert rows[0]["left"] != rows[0]["right"] and rows[1]["rougeL"].count("/") == 1
    with pytest.raises(StudioError, match="Prompt set not found"):
        evaluate.load_prompt_set(tmp_path / "nope.jsonl")


def test_votes_are_appended_with_the_run(run_dir):
    shown = [chat.run_side(run_dir), chat.base_side(run_dir)]
    evaluate.record_vote(run_dir, "A", shown, ["arr", "hello"], "Hi")
    evaluate.record_vote(run_dir, "tie", shown, ["arr", "hello"], "Hi")
    rec = evaluate.record_vote(run_dir, "B", shown, ["arr", "hello"], "Hi", chat.GenSettings())
    assert rec["winner"] == shown[1].label and rec["B"]["text"] == "hello"
    assert evaluate.vote_tally(run_dir) == {shown[0].label: 1, "tie": 1, shown[1].label: 1}
    assert len((run_dir / "votes.jsonl").read_text().splitlines()) == 3
    with pytest.raises(StudioError, match="must be A, B or tie"):
        evaluate.record_vote(run_dir, "C", shown, ["a", "b"], "Hi")
    assert sorted(evaluate.blind_order()) == [0, 1]


def test_lm_eval_hook_explains_when_not_installed(run_dir, monkeypatch):
    monkeypatch.setattr(evaluate, "lm_eval_available", lambda: False)
    with pytest.raises(StudioError, match="lm-eval is not installed: pip install lm-eval"):
        evaluate.run_lm_eval(run_dir, ["hellaswag"])
