"""Tool-calling chats: calls stay structured through loading and conversion, the chat template
renders them, and SFT trains on the call as part of the assistant's answer.

Templates that cannot render tools (many silently drop the call) get each call as JSON text
instead, and the log says so.
"""

from __future__ import annotations

import json

import pytest

from studio.data import prepare_for_training
from studio.data.formats import chat_turns
from studio.data.tools import template_renders_tools

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]


def _openai_row(i: int) -> dict:
    return {"messages": [
        {"role": "user", "content": f"Weather in city {i}?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"c{i}", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps({"city": f"city {i}"})}}]},
        {"role": "tool", "tool_call_id": f"c{i}", "name": "get_weather", "content": "18C, sunny"},
        {"role": "assistant", "content": "Ahoy! 18C and sunny. Arr!"}],
        "tools": json.dumps(TOOLS)}


@pytest.fixture
def tool_file(tmp_path):
    path = tmp_path / "tools.jsonl"
    path.write_text("".join(json.dumps(_openai_row(i)) + "\n" for i in range(24)))
    return path


def test_calls_are_normalised_from_every_common_shape():
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    openai = chat_turns([{"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}], keep_tools=True)
    legacy = chat_turns([{"role": "assistant", "content": None, "function_call": call}], keep_tools=True)
    glaive = chat_turns([{"from": "function_call", "value": json.dumps(call)},
                         {"from": "observation", "value": "18C"}], "sharegpt", keep_tools=True)
    for turns in (openai, legacy, glaive):
        assert turns[0]["role"] == "assistant" and turns[0]["content"] == ""
        assert turns[0]["tool_calls"] == [{"type": "function", "function": call}]  # arguments parsed
    assert glaive[1] == {"role": "tool", "content": "18C"}
    # Without keep_tools (views, templates without tools) a call is JSON text, never lost.
    flat = chat_turns([{"role": "assistant", "content": None, "function_call": call}])
    assert flat == [{"role": "assistant", "content": json.dumps([call])}]


def test_demo_template_renders_tools_and_a_plain_one_does_not(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    assert template_renders_tools(tok)
    tok.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")
    assert not template_renders_tools(tok)  # it prints the tool's answer but drops the call
    assert not template_renders_tools(None)


def test_prepare_keeps_calls_and_tool_definitions(tool_file):
    ds = prepare_for_training(tool_file, tool_template=True)
    row = ds[0]
    assert row["tools"] == TOOLS  # parsed from the JSON text column
    call = row["messages"][1]
    assert call["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "city 0"}}
    assert "tool_calls" not in row["messages"][0]  # no null keys on other messages
    assert row["messages"][2] == {"role": "tool", "content": "18C, sunny", "name": "get_weather",
                                  "tool_call_id": "c0"}


def test_prepare_without_tool_template_says_so_and_keeps_calls_as_text(tool_file):
    said = []
    ds = prepare_for_training(tool_file, tool_template=False, log=said.append)
    assert any("no tool support" in s for s in said)
    assert json.loads(ds[0]["messages"][1]["content"]) == [{"name": "get_weather", "arguments": {"city": "city 0"}}]


def test_sft_trains_on_the_call_and_the_answer(tool_file, tiny_model_dir, tmp_path):
    from studio.config import RunConfig
    from studio.train import build
    from studio.train.stages import make_trainer

    cfg = RunConfig.from_dict({"model": {"name_or_path": str(tiny_model_dir)},
                               "data": {"path": str(tool_file), "max_length": 512},
                               "training": {"max_steps": 3, "batch_size": 4, "learning_rate": 5e-3,
                                            "logging_steps": 1, "save_steps": 100, "use_cpu": True}})
    trainer = make_trainer(cfg, str(tiny_model_dir), tmp_path, build.device_info(cfg), [])
    row = trainer.train_dataset[0]
    tok = trainer.processing_class
    trained = tok.decode([t for t, lab in zip(row["input_ids"], row["labels"]) if lab != -100])
    prompt = tok.decode([t for t, lab in zip(row["input_ids"], row["labels"]) if lab == -100])
    assert '<tool_call>{"name": "get_weather", "arguments": {"city": "city ' in trained
    assert "Ahoy! 18C and sunny. Arr!" in trained
    assert "18C, sunny" in prompt and '"description": "Weather now"' in prompt  # tool result and definitions: context
    trainer.train()
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    assert losses and losses[-1] < losses[0]


@pytest.mark.parametrize("column,column_map", [("conversations", None), ("dialog", {"conversations": "dialog"})])
def test_sharegpt_calls_with_an_explicit_format(column, column_map, tmp_path):
    # glaive-style turns, the format given instead of detected (its columns then come from the
    # format's known names or the explicit map)
    call = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    path = tmp_path / "glaive.jsonl"
    path.write_text("".join(json.dumps({column: [
        {"from": "human", "value": f"Weather {i}?"}, {"from": "function_call", "value": json.dumps(call)},
        {"from": "observation", "value": "2C"}, {"from": "gpt", "value": "Cold!"}]}) + "\n" for i in range(6)))
    ds = prepare_for_training(path, fmt="sharegpt", column_map=column_map, tool_template=True)
    assert ds[0]["messages"][1] == {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                                                                                     "function": call}]}
