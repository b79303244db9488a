"""`python -m studio wizard`: the wizard's questions answered from a YAML file, its advice printed.

The decision itself is studio.wizard's `recommend`; this module only reads the answers, fills in
the detected hardware and prints (or saves) the result.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from studio.errors import StudioError
from studio.wizard import Answers, detect_hardware, recommend


def main(argv: list[str]) -> int:
    """`python -m studio wizard --answers answers.yaml [--json] [--save CONFIG.yaml]`."""
    ap = argparse.ArgumentParser(prog="python -m studio wizard",
                                 description="Answer the wizard's questions from a YAML file and print its advice.")
    ap.add_argument("--answers", required=True, help="YAML file of answers: goal, prompting, n_examples, ...")
    ap.add_argument("--json", action="store_true", help="print the recommendation and config as JSON")
    ap.add_argument("--save", help="also write the recommended config to this YAML file")
    args = ap.parse_args(argv)
    try:
        data = yaml.safe_load(Path(args.answers).read_text(encoding="utf-8")) or {}
    except OSError:
        raise StudioError(f"Answers file not found: {args.answers}. Write a YAML file such as:\n"
                          "goal: style\nprompting: partly\nn_examples: 800\ndata_kinds: [chat]") from None
    except yaml.YAMLError as e:
        raise StudioError(f"{args.answers} is not valid YAML ({e}). Check the indentation and colons.") from None
    if not isinstance(data, dict):
        raise StudioError(f"{args.answers} must be a mapping of answers (name: value), not a {type(data).__name__}.")
    answers = Answers.from_dict(data)
    if not answers.hardware:
        answers.hardware = detect_hardware()
    rec = recommend(answers)
    if args.save and rec.config:
        rec.config.save(args.save)
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2))
    else:
        print(rec.to_text())
        if rec.config:
            print("\nConfig:\n" + rec.config.to_yaml())
    return 0
