"""Reward functions for the GRPO stage: simple text rules, or a trained reward model.

`training.reward` is either a folder with a sequence-classification reward model (for example the
output of a `reward` stage) or comma-separated rules: starts_with:TEXT, ends_with:TEXT,
contains:TEXT, max_words:N. Rules give +1 per rule met, so the demo's pirate persona can be
learned by RL without any labelled data.
"""

from __future__ import annotations

from pathlib import Path

from studio.config import RunConfig
from studio.errors import StudioError

RULES = ("starts_with", "ends_with", "contains", "max_words")


def _text(completion) -> str:
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        return " ".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


def parse_rules(spec: str) -> list[tuple[str, str]]:
    rules = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        kind, _, arg = part.partition(":")
        if kind not in RULES or not arg:
            raise StudioError(f"Unknown reward rule '{part}'. Use {', '.join(r + ':...' for r in RULES)}, "
                              "or give a reward-model folder.")
        if kind == "max_words" and not arg.isdigit():
            raise StudioError(f"max_words needs a whole number, not '{arg}'.")
        rules.append((kind, arg))
    return rules


def rule_reward(rules: list[tuple[str, str]]):
    def reward(completions, **_):
        out = []
        for c in completions:
            t = _text(c).strip()
            score = 0.0
            for kind, arg in rules:
                ok = {"starts_with": lambda: t.startswith(arg), "ends_with": lambda: t.endswith(arg),
                      "contains": lambda: arg in t, "max_words": lambda: len(t.split()) <= int(arg)}[kind]()
                score += 1.0 if ok else 0.0
            out.append(score)
        return out

    reward.__name__ = "rules"
    return reward


def reward_functions(cfg: RunConfig, info) -> list:
    spec = cfg.training.reward.strip()
    if not spec:
        raise StudioError("GRPO needs training.reward: a reward-model folder or rules like 'starts_with:Ahoy!'.")
    if Path(spec).is_dir():
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(spec, num_labels=1, dtype=info["dtype"])
        return [model]  # TRL scores completions with it (and uses its tokenizer from the folder)
    return [rule_reward(parse_rules(spec))]
