"""What the tabs share: settings for the whole app and the few states that cross tabs.

Tabs never reach into each other's widgets. They talk through these gr.State values: a tab
writes one, and a tab that cares listens to its .change event. Models never live here (they
stay in studio.chat's cache).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Shared:
    allowed_roots: list[Path]
    assets_dir: Path
    runs_root: Path
    demo_only: bool = False
    # Cross-tab states (gr.State), created by studio.ui.app before the tabs are built:
    config_yaml: Any = None  # str: the current RunConfig as YAML (Wizard/Data write, Train reads)
    dataset_path: Any = None  # str: dataset chosen in the Data tab
    run_dir: Any = None  # str: the run picked last (Train writes; Compare/Export read)
    extra: dict[str, Any] = field(default_factory=dict)
