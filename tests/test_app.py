"""The app shell: cheap imports, all six tabs build, safe launch flags, and a real HTTP start."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from studio.launch import check_args, parse_args
from studio.errors import StudioError


def test_importing_studio_does_not_import_gradio_or_torch():
    code = ("import sys, studio, studio.config, studio.runs, studio.monitor, studio.paths, studio.launch, "
            "studio.train, studio.data, studio.hardware, studio.vram, studio.wizard, studio.export, studio.chat, "
            "studio.evaluate, studio.demo\n"
            "bad = [m for m in ('gradio', 'torch', 'transformers', 'trl') if m in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_all_six_tabs_build(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path / "runs"))
    from studio.ui.app import TABS, build_app

    demo = build_app()
    assert demo.shared.extra["failed_tabs"] == []
    modules = {m for _, m in TABS}
    labels = [b.label for b in demo.blocks.values() if type(b).__name__ == "Tab" and b.id in modules]
    assert labels == [t for t, _ in TABS] == ["Wizard", "Data", "Memory", "Train", "Compare", "Export"]


def test_demo_only_exposes_only_compare(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path / "runs"))
    from studio.ui.app import build_app

    from studio.ui.app import TABS

    demo = build_app(demo_only=True)
    modules = {m for _, m in TABS}
    labels = [b.label for b in demo.blocks.values() if type(b).__name__ == "Tab" and b.id in modules]
    assert labels == ["Compare"]


def test_share_requires_auth():
    with pytest.raises(StudioError, match="--auth user:pass"):
        check_args(parse_args(["--share"]))
    check_args(parse_args(["--share", "--auth", "a:b"]))
    check_args(parse_args(["--share", "--share-without-auth"]))
    with pytest.raises(StudioError, match="user:password"):
        check_args(parse_args(["--auth", "nopassword"]))
    assert parse_args([]).host == "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_app_answers_http_on_localhost(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--no-demo-build",
                             "--runs", str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        t0 = time.time()
        while time.time() - t0 < 60:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    assert r.status == 200
                    assert "Fine-Tune Studio" in r.read().decode()
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the app did not answer within 60 s")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_bad_share_flags_exit_2_without_traceback():
    out = subprocess.run([sys.executable, "app.py", "--share"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--auth" in out.stderr and "Traceback" not in out.stderr


def test_train_form_round_trips_every_widget_including_multi_gpu():
    from studio.ui import train_tab

    cfg = train_tab.load_preset("demo-cpu").merged({"training": {"num_gpus": 2, "distributed": "fsdp"}})
    values = train_tab.form_values(cfg)
    name, stage, adapter, *widgets, yaml_text = values
    assert len(widgets) == len(train_tab.ALL_FIELDS)
    # The widgets win over the YAML box, so a GPU count typed in the form reaches the run config.
    widgets[[p for _, p, _ in train_tab.ALL_FIELDS].index("training.num_gpus")] = 4
    back = train_tab.config_from_form("", name, stage, adapter, *widgets)
    assert back.training.num_gpus == 4 and back.training.distributed == "fsdp"
    assert back.data.path == cfg.data.path and back.lora.r == cfg.lora.r
