"""Where things live: the repo's assets, the runs root, and the allowed roots for file inputs.

Also the one guard every UI path field goes through: `check_allowed(path, roots, what)` refuses
a path outside the allowed roots (after following symlinks and `..`), with a message that says
how to allow it. Hub ids (`Qwen/Qwen2.5-0.5B`) are names, not paths, and pass where asked.
Nothing here touches the disk at import time; every function computes paths on demand so that
tests can point them elsewhere through environment variables. The CLI does not use the guard:
whoever runs a command already has the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from studio.errors import StudioError

REPO_ROOT = Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    """Folder with the demo model, sample datasets and images (STUDIO_ASSETS overrides)."""
    return Path(os.environ.get("STUDIO_ASSETS", REPO_ROOT / "assets")).resolve()


def demo_model_dir() -> Path:
    return assets_dir() / "demo-model"


def sample_data_dir() -> Path:
    return assets_dir() / "data"


def presets_dir() -> Path:
    return REPO_ROOT / "presets"


def runs_root() -> Path:
    """Root of run folders (STUDIO_RUNS overrides; default ./runs in the working directory)."""
    return Path(os.environ.get("STUDIO_RUNS", Path.cwd() / "runs")).resolve()


def allowed_roots(extra: list[str | Path] | None = None) -> list[Path]:
    """Folders that path fields and file pickers may read from.

    The working directory, the runs root, the assets and anything listed in STUDIO_ALLOWED_ROOTS
    (os.pathsep-separated) or passed in `extra`. Uploads land in gradio's temp dir, which the UI adds.
    """
    roots = [Path.cwd(), runs_root(), assets_dir(), presets_dir()]
    env = os.environ.get("STUDIO_ALLOWED_ROOTS", "")
    roots += [Path(p) for p in env.split(os.pathsep) if p]
    roots += [Path(p) for p in (extra or [])]
    out: list[Path] = []
    for r in roots:
        r = Path(r).expanduser().resolve()
        if r not in out:
            out.append(r)
    return out


def is_within(path: str | Path, roots: list[Path]) -> bool:
    try:
        p = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):  # NUL bytes, symlink loops: not a usable path
        return False
    return any(p == r or r in p.parents for r in roots)


def _looks_like_a_name(text: str) -> bool:
    """A hub id or a rule string rather than a path: relative, no `..`, not on disk."""
    if not text or text.startswith(("/", "~", "\\")) or ".." in Path(text).parts or "\\" in text:
        return False
    try:
        return not Path(text).exists()
    except OSError:  # e.g. a name too long to be a path
        return True


def check_allowed(path: str | Path | None, roots: list[Path], what: str = "path",
                  names_ok: bool = False) -> str:
    """`path` (stripped) if it lies inside one of `roots` once symlinks and `..` are resolved.

    Otherwise a StudioError naming the field and the fix. With `names_ok`, a hub id such as
    `Qwen/Qwen2.5-0.5B` (or a rule string) that is not a local path passes unchanged: reading it
    touches no local file. An empty list of roots allows nothing.
    """
    text = str(path if path is not None else "").strip()
    if not text:
        raise StudioError(f"The {what} is empty: give a file or folder inside the allowed folders.")
    if "\0" in text:
        raise StudioError(f"The {what} contains a NUL character: type the path again.")
    if len(text) > 4096 or any(len(part.encode()) > 255 for part in Path(text).parts):
        raise StudioError(f"The {what} is too long to be a path ({len(text)} characters): check what was pasted.")
    if names_ok and _looks_like_a_name(text):
        return text
    try:
        resolved = Path(text).expanduser().resolve()
        ok = any(resolved == r or r in resolved.parents for r in (Path(r).resolve() for r in roots))
    except (OSError, RuntimeError, ValueError) as e:  # symlink loops, over-long names
        raise StudioError(f"The {what} {text!r} cannot be used: {e}.") from None
    if not ok:
        shown = ", ".join(str(r) for r in roots[:4]) + (", …" if len(roots) > 4 else "")
        raise StudioError(f"The {what} {text} is outside the folders this app may read ({shown or 'none'}). "
                          "Move it into one of them, or start the app with --allow-root FOLDER "
                          "(or STUDIO_ALLOWED_ROOTS).")
    return text


def check_config_paths(cfg, roots: list[Path]) -> None:
    """Every path a RunConfig (and each of its stages) would read must be inside `roots`.

    Models, datasets and reward models may also be hub ids / reward rules (names, not paths).
    """
    for c in cfg.stage_configs():
        check_allowed(c.model.name_or_path, roots, "model", names_ok=True)
        check_allowed(c.data.path, roots, "dataset", names_ok=True)
        if c.data.eval_path.strip():
            check_allowed(c.data.eval_path, roots, "eval dataset", names_ok=True)
        if c.training.reward.strip():
            check_allowed(c.training.reward, roots, "reward model", names_ok=True)
