"""Presets: the hand-written, commented YAML configs in presets/, one per hardware x method.

Owns listing them, loading one onto the RunConfig defaults, and `preset_for(hardware, method)`,
which picks the file that matches a GPU (by name and memory) and a method. A preset file is named
`<hardware>-<method>.yaml` (e.g. `t4-16gb-qlora.yaml`); the method is read from its `adapter:` line,
so `demo-cpu.yaml` is the CPU demo's LoRA preset. It does not write presets: they are edited by hand
because a YAML round trip would drop their comments. Choosing a method is the wizard's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from studio import paths
from studio.config import RunConfig
from studio.errors import StudioError

# Hardware keys in the order of memory; each is matched by a GPU's name and its total memory (GiB).
# name_hints are lower-case substrings of the NVML name, e.g. "NVIDIA A100-SXM4-80GB".
HARDWARE = {
    "demo-cpu": {"label": "CPU only (the tiny demo model)", "gib": 0, "hints": ()},
    "apple-mps": {"label": "Apple silicon Mac (MPS)", "gib": 0, "hints": ()},
    "t4-16gb": {"label": "NVIDIA T4, 16 GB", "gib": 16, "hints": ("t4",)},
    "rtx4090-24gb": {"label": "NVIDIA RTX 4090, 24 GB", "gib": 24, "hints": ("4090", "3090", "a5000")},
    "a100-40gb": {"label": "NVIDIA A100, 40 GB", "gib": 40, "hints": ("a100",)},
    "a100-80gb": {"label": "NVIDIA A100, 80 GB", "gib": 80, "hints": ("a100",)},
    "h100-80gb": {"label": "NVIDIA H100, 80 GB", "gib": 80, "hints": ("h100", "h200", "gh200")},
}


@dataclass
class PresetInfo:
    name: str  # file stem, e.g. "t4-16gb-qlora"
    path: Path
    hardware: str  # a HARDWARE key when the name starts with one, else the stem minus the method
    method: str  # the file's adapter: full, lora, qlora, ...
    model: str
    description: str  # the file's first comment line

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "hardware": self.hardware,
                "method": self.method, "model": self.model, "description": self.description}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise StudioError(f"Preset {path.name} is not valid YAML ({e}). Fix the file or delete it.") from None
    if not isinstance(data, dict):
        raise StudioError(f"Preset {path.name} must be a mapping of settings (name: value).")
    return data


def _info(path: Path) -> PresetInfo:
    data = _read(path)
    method = str(data.get("adapter", RunConfig().adapter))
    stem = path.stem
    hardware = next((k for k in sorted(HARDWARE, key=len, reverse=True) if stem.startswith(k)), "")
    if not hardware:
        hardware = stem[: -len(method) - 1] if stem.endswith("-" + method) else stem
    first = next((ln.lstrip("# ").strip() for ln in path.read_text(encoding="utf-8").splitlines()
                  if ln.startswith("#")), "")
    model = str((data.get("model") or {}).get("name_or_path", RunConfig().model.name_or_path))
    return PresetInfo(stem, path, hardware, method, model, first)


def list_presets(folder: str | Path | None = None) -> list[PresetInfo]:
    """Every presets/*.yaml, sorted by name. A broken file raises a StudioError naming it."""
    folder = Path(folder) if folder else paths.presets_dir()
    if not folder.is_dir():
        return []
    return [_info(p) for p in sorted(folder.glob("*.yaml"))]


def preset_path(name: str, folder: str | Path | None = None) -> Path:
    """The file for a preset name ("t4-16gb-qlora"), a file name, or a path to a .yaml file."""
    folder = Path(folder) if folder else paths.presets_dir()
    cand = Path(name)
    if cand.suffix in (".yaml", ".yml") and cand.is_file():
        return cand
    path = folder / (cand.stem + ".yaml")
    if not path.is_file():
        names = ", ".join(p.name for p in list_presets(folder)) or "none"
        raise StudioError(f"No preset called '{name}'. Available presets: {names}.")
    return path


def load_preset(name: str, overrides: dict[str, Any] | None = None,
                folder: str | Path | None = None) -> RunConfig:
    """The preset merged onto the RunConfig defaults (then `overrides`, a nested partial dict)."""
    path = preset_path(name, folder)
    try:
        cfg = RunConfig().merged(_read(path))
    except StudioError as e:
        raise StudioError(f"Preset {path.name} has problems:\n- " + "\n- ".join(e.problems), e.problems) from None
    return cfg.merged(overrides) if overrides else cfg


def hardware_key(hardware: Any) -> str:
    """A HARDWARE key for a hardware description.

    Accepts a key ("t4-16gb"), or a dict/object with `device` (cuda|mps|cpu), `gpu_name`/`name`
    and `total_gib` (or `free_gib`), as the wizard and studio.hardware give them. An unknown GPU
    maps to the largest known card that its memory covers (T4 for anything smaller).
    """
    if isinstance(hardware, str):
        if hardware in HARDWARE:
            return hardware
        hardware = {"device": "cuda", "gpu_name": hardware}
    get = (lambda k: hardware.get(k)) if isinstance(hardware, dict) else (lambda k: getattr(hardware, k, None))
    device = (get("device") or "cuda").lower()
    if device == "cpu":
        return "demo-cpu"
    if device == "mps":
        return "apple-mps"
    name = str(get("gpu_name") or get("name") or "").lower()
    gib = float(get("total_gib") or get("free_gib") or 0)
    gpu_keys = [k for k, v in HARDWARE.items() if v["gib"]]
    by_name = [k for k in gpu_keys
               if any(re.search(rf"(?<![a-z0-9]){h}(?![a-z0-9])", name) for h in HARDWARE[k]["hints"])]
    if by_name:
        # Several keys share a name (A100 40 / 80 GB): the memory decides; NVML totals run a bit low.
        if len(by_name) > 1 and gib:
            return min(by_name, key=lambda k: abs(HARDWARE[k]["gib"] - gib))
        return by_name[0]
    fitting = [k for k in gpu_keys if HARDWARE[k]["gib"] <= gib + 1.5]
    return fitting[-1] if fitting else "t4-16gb"


def preset_for(hardware: Any, method: str, folder: str | Path | None = None) -> str | None:
    """The name of the preset for this hardware and method, or None when there is none.

    On the CPU only the demo exists, so any method gets the demo preset of that method if there is
    one, else the LoRA demo. Elsewhere a missing combination (e.g. QLoRA on a Mac) gives None.
    """
    key = hardware_key(hardware)
    infos = [p for p in list_presets(folder) if p.hardware == key]
    exact = [p.name for p in infos if p.method == method]
    if exact:
        return sorted(exact, key=len)[0]
    if key == "demo-cpu":
        demo = [p.name for p in infos if p.method == "lora"]
        return sorted(demo, key=len)[0] if demo else None
    return None
