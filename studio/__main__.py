"""`python -m studio <command>`: the command line, one entry per command.

Each command lives in its own module as `main(argv) -> int`; this file only dispatches, imports
lazily (so `--help` is instant) and turns a StudioError into a clear message and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "app": ("app_main", "start the web app (same as python app.py)"),
    "train": ("studio.train.cli", "train from a YAML config: train CONFIG.yaml [--run-dir DIR]"),
    "data": ("studio.data.cli", "inspect / clean / split a dataset"),
    "vram": ("studio.vram_cli", "estimate peak GPU memory for a run"),
    "eval": ("studio.evaluate", "batch-evaluate base vs fine-tuned: eval RUN_DIR --json"),
    "export": ("studio.export", "export a run: export RUN_DIR --format F --out DIR"),
    "demo": ("studio.demo", "rebuild the embedded demo model and sample data"),
    "runs": ("studio.runs", "list runs and their states"),
    "wizard": ("studio.wizard_cli", "answer the wizard's questions from the command line"),
}


def _usage() -> str:
    lines = ["usage: python -m studio <command> [options]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"Unknown command '{cmd}'.\n\n{_usage()}", file=sys.stderr)
        return 2
    from studio.errors import StudioError

    module_name = COMMANDS[cmd][0]
    try:
        if module_name == "app_main":
            from studio.launch import main as run
        else:
            run = importlib.import_module(module_name).main
        return int(run(rest) or 0)
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
