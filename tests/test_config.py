"""RunConfig: YAML round trip, type checking with clear messages, validate() collecting every problem."""

import pytest

from studio.config import RunConfig
from studio.errors import StudioError


def test_yaml_round_trip(tmp_path):
    cfg = RunConfig(name="x")
    cfg.training.learning_rate = 3e-4
    cfg.lora.target_modules = "q_proj,v_proj"
    cfg.data.column_map = {"prompt": "question"}
    path = cfg.save(tmp_path / "c.yaml")
    back = RunConfig.load(path)
    assert back == cfg
    assert back.validate() == []


def test_scientific_notation_string_is_read_as_float():
    # PyYAML reads 2e-4 (no dot) as a string; a person writing it means the number.
    cfg = RunConfig.from_yaml("training:\n  learning_rate: 2e-4\n")
    assert cfg.training.learning_rate == pytest.approx(2e-4)


def test_wrong_types_are_all_reported_with_names():
    with pytest.raises(StudioError) as e:
        RunConfig.from_yaml("training:\n  batch_size: lots\n  gradient_checkpointing: maybe\nlora: 5\nfoo: 1\n")
    msg = str(e.value)
    assert "training.batch_size must be a whole number" in msg
    assert "training.gradient_checkpointing must be true or false" in msg
    assert "lora must be a mapping" in msg
    assert "Unknown setting 'foo'" in msg
    assert len(e.value.problems) == 4


def test_invalid_yaml_names_the_line():
    with pytest.raises(StudioError, match="line 2"):
        RunConfig.from_yaml("name: a\n  bad: [\n")


def test_validate_collects_every_problem():
    cfg = RunConfig.from_dict({"stage": "magic", "training": {"batch_size": 0, "learning_rate": 5.0,
                                                              "early_stopping_patience": 2},
                               "data": {"padding_free": True}})
    problems = cfg.validate()
    joined = "\n".join(problems)
    assert "stage is 'magic'" in joined
    assert "training.batch_size is 0" in joined
    assert "training.learning_rate is 5.0" in joined
    assert "Early stopping needs an eval split" in joined
    assert "padding_free needs data.packing" in joined
    with pytest.raises(StudioError) as e:
        cfg.check()
    assert len(e.value.problems) == len(problems) >= 5


def test_multi_stage_configs_inherit_and_validate():
    cfg = RunConfig.from_dict({"stages": [{"stage": "pretrain", "data": {"path": "a.txt", "format": "text"}},
                                          {"stage": "sft"}, {"stage": "dpo", "data": {"path": "p.jsonl"}}]})
    stages = cfg.stage_configs()
    assert [s.stage for s in stages] == ["pretrain", "sft", "dpo"]
    assert stages[0].data.path == "a.txt" and stages[1].data.path == cfg.data.path
    assert cfg.validate() == []
    bad = RunConfig.from_dict({"stages": [{"stage": "dpo", "data": {"format": "text"}}]})
    assert any(p.startswith("stages[0]: DPO needs preference pairs") for p in bad.validate())


def test_grpo_needs_a_reward_unless_a_reward_stage_precedes():
    assert any("GRPO needs a reward" in p for p in RunConfig(stage="grpo").validate())
    ok = RunConfig.from_dict({"stages": [{"stage": "reward"}, {"stage": "grpo"}]})
    assert not any("GRPO needs a reward" in p for p in ok.validate())
