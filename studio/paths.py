"""Where things live: the repo's assets, the runs root, and the allowed roots for file inputs.

Nothing here touches the disk at import time; every function computes paths on demand so that
tests can point them elsewhere through environment variables.
"""

from __future__ import annotations

import os
from pathlib import Path

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
    p = Path(path).expanduser().resolve()
    return any(p == r or r in p.parents for r in roots)
