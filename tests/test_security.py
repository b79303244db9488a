"""What the studio exposes, checked: the bound address, shared links, the demo-only API, files
served over HTTP, path fields kept inside the allowed roots, no shell, and no token on disk.

Fast (no browser, no training): two short app processes and handlers called in-process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import time
import typing
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from studio.errors import StudioError

REPO = Path(__file__).resolve().parent.parent
OUTSIDE_MSG = "outside the folders this app may read"


# -- real app processes ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _start_app(tmp: Path, *flags: str):
    port = _free_port()
    env = {**os.environ, "STUDIO_RUNS": str(tmp / "runs"), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--no-demo-build",
                             "--runs", str(tmp / "runs"), *flags], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    t0 = time.time()
    while time.time() - t0 < 90:
        try:
            if _get(url + "/")[0] == 200:
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("the app did not answer HTTP within 90 s")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sec-app")
    proc, url = _start_app(tmp)
    yield proc, url, tmp / "runs"
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def demo_only_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sec-demo")
    proc, url = _start_app(tmp, "--demo-only")
    yield proc, url
    proc.terminate()
    proc.wait(timeout=20)


def test_binds_127_0_0_1_by_default(app):
    import psutil

    proc, _, _ = app
    listening = [c.laddr for c in psutil.Process(proc.pid).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening


def test_no_file_of_the_machine_is_served_over_http(app):
    """gradio's file route must not hand out the repo, the runs folder or anything else."""
    _, url, runs = app
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "secret.txt").write_text("run data")
    for path in (REPO / "README.md", REPO / "studio" / "paths.py", runs / "secret.txt", Path("/etc/passwd")):
        code, body = _get(f"{url}/gradio_api/file={path}")
        assert code in (403, 404), f"{path} was served ({code})"
        assert b"run data" not in body and b"root:" not in body


def test_share_needs_auth_or_an_explicit_flag():
    from studio.launch import check_args, main, parse_args

    assert main(["--share"]) == 2  # refused before gradio is even imported
    with pytest.raises(StudioError, match="--auth user:pass"):
        check_args(parse_args(["--share"]))
    for ok in (["--share", "--auth", "me:secret"], ["--share", "--share-without-auth"]):
        check_args(parse_args(ok))
    for bad in (["--auth", "nopass"], ["--auth", ":pw"], ["--auth", "user:"]):
        with pytest.raises(StudioError, match="user:password"):
            check_args(parse_args(bad))
    from studio.ui.app import launch_kwargs

    kw = launch_kwargs("127.0.0.1", None, True, ("me", "secret"), [])
    assert kw["share"] is True and kw["auth"] == ("me", "secret") and "allowed_paths" not in kw


def test_demo_only_api_lists_only_compare_functions(demo_only_app, tmp_path, monkeypatch):
    _, url = demo_only_app
    info = json.loads(_get(url + "/gradio_api/info")[1])
    names = set(info["named_endpoints"]) | set(info["unnamed_endpoints"])
    assert "/on_send" in names
    harmful = {"/on_start", "/on_resume", "/refresh_view", "/on_export", "/on_push", "/on_load", "/on_clean",
               "/on_split", "/use_config", "/demo_preset", "/estimate_view", "/on_recommend"}
    assert not names & harmful
    cfg = json.loads(_get(url + "/config")[1])
    labels = {c.get("props", {}).get("label") for c in cfg["components"]}
    assert not labels & {"Run config", "Output folder", "Access token (write)", "Upload a file", "Dataset"}
    # The same from the inside: every event handler of a demo-only app is the Compare tab's.
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path / "runs"))
    from studio.ui.app import build_app

    demo = build_app(demo_only=True)
    modules = {bf.fn.__module__ for bf in demo.fns.values() if bf.fn is not None}
    assert modules == {"studio.ui.compare_tab"}, modules


# -- the path guard ----------------------------------------------------------------------------------
def test_check_allowed_follows_dots_and_symlinks(tmp_path):
    from studio.paths import check_allowed

    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.jsonl").write_text("{}\n")
    (root / "sub" / "ok.jsonl").write_text("{}\n")
    (root / "link").symlink_to(outside)
    (root / "file-link.jsonl").symlink_to(outside / "secret.jsonl")
    roots = [root]
    assert check_allowed(root / "sub" / "ok.jsonl", roots, "dataset") == str(root / "sub" / "ok.jsonl")
    for bad in ("/etc/passwd", root / ".." / "outside" / "secret.jsonl", f"{root}/sub/../../outside",
                root / "link" / "secret.jsonl", root / "file-link.jsonl", "~/.ssh/id_rsa"):
        with pytest.raises(StudioError, match=OUTSIDE_MSG) as e:
            check_allowed(bad, roots, "dataset")
        assert "--allow-root" in str(e.value) and str(e.value).startswith("The dataset ")
    with pytest.raises(StudioError, match="empty"):
        check_allowed("  ", roots, "dataset")
    with pytest.raises(StudioError, match=OUTSIDE_MSG):
        check_allowed(root / "sub" / "ok.jsonl", [], "dataset")  # no roots: nothing is allowed
    # Hub ids and reward rules are names, not paths: they pass where names are allowed.
    for name in ("Qwen/Qwen2.5-0.5B", "gpt2", "starts_with:Ahoy!,ends_with:Arr!"):
        assert check_allowed(name, roots, "model", names_ok=True) == name
    for bad in ("/etc", "../../etc", "~/models"):
        with pytest.raises(StudioError, match=OUTSIDE_MSG):
            check_allowed(bad, roots, "model", names_ok=True)


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """The full app built in-process with its runs root in tmp; handlers by (tab, function name)."""
    tmp = tmp_path_factory.mktemp("sec-ui")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_RUNS", str(tmp / "runs"))
        from studio.ui.app import build_app

        demo = build_app()
    fns: dict[tuple[str, str], typing.Callable] = {}
    for bf in demo.fns.values():
        if bf.fn is not None:
            fns.setdefault((bf.fn.__module__.rsplit(".", 1)[-1], bf.fn.__name__), bf.fn)
            if bf.api_name:
                fns.setdefault(("api", bf.api_name), bf.fn)
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "data.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                                 {"role": "assistant", "content": "yo"}]}) + "\n")
    runs = tmp / "runs"
    runs.mkdir(exist_ok=True)
    (runs / "escape").symlink_to(outside)
    assert demo.shared.extra["failed_tabs"] == []
    return demo, fns, runs, outside


def _refused(fn, *args):
    import gradio as gr

    with pytest.raises(gr.Error) as e:
        fn(*args)
    assert OUTSIDE_MSG in str(e.value), str(e.value)


def test_data_tab_refuses_paths_outside(ui):
    import gradio as gr

    demo, fns, runs, outside = ui
    load = fns["data_tab", "on_load"]
    for bad in ("/etc/passwd", str(outside / "data.jsonl"), str(runs / "escape" / "data.jsonl"),
                f"{runs}/../outside/data.jsonl", "../../../../../etc/passwd"):
        _refused(load, None, bad, None)
    _refused(load, str(outside / "data.jsonl"), "", None)  # an "upload" that is not in the upload folder
    st = load(None, "", str(REPO / "assets" / "data" / "messages_eval.jsonl"))[0]
    assert st["rows"] == 40
    _refused(fns["data_tab", "on_hist"], st, "/etc", 64)  # the tokenizer folder
    with pytest.raises(gr.Error, match=OUTSIDE_MSG):
        fns["data_tab", "on_clean"](st, ["exact"], 0.8, "keep", 2, None, "", "", True, str(outside),
                                    progress=lambda *a, **k: None)


def test_train_tab_refuses_paths_outside_and_foreign_runs(ui):
    import gradio as gr

    from studio.ui.train_tab import load_preset

    demo, fns, runs, outside = ui
    start = fns["train_tab", "on_start"]
    cfg = load_preset("demo-cpu")
    yaml_text = cfg.to_yaml()

    def form(model="assets/demo-model", data="assets/data/messages_eval.jsonl"):
        return [yaml_text, "sec", "sft", "lora", model, data, 1.0, 2, 2, 1, 1e-3, 64, 4, 0.0, 1, False, False, True, "ddp"]

    before = set(runs.iterdir())
    _refused(start, *form(data="/etc/passwd"))
    _refused(start, *form(model="/etc"))
    _refused(start, *form(model=str(runs / "escape")))
    _refused(start, *form(data="../../../../etc/passwd"))
    staged = cfg.to_dict() | {"stages": [{"stage": "sft"}, {"stage": "sft", "data": {"path": "/etc/passwd"}}]}
    import yaml

    bad_yaml = yaml.safe_dump(staged)
    with pytest.raises(gr.Error, match=OUTSIDE_MSG):
        start(bad_yaml, "sec", "sft", "lora", *[None] * 15)
    assert set(runs.iterdir()) == before  # nothing was created
    # Stop signals the pid in a run's status.json: a folder outside the runs root is refused.
    fake = outside / "fake-run"
    fake.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (fake / "status.json").write_text(json.dumps({"state": "running", "pid": sleeper.pid, "pgid": sleeper.pid}))
        for path in (str(fake), str(runs / "escape" / "fake-run"), f"{runs}/../outside/fake-run"):
            _refused(fns["train_tab", "on_stop"], path)
            _refused(fns["train_tab", "on_resume"], path)
        assert sleeper.poll() is None and not any(p.name.startswith("STOP") for p in fake.iterdir())
        summary = fns["train_tab", "refresh_view"](str(fake), [])[0]
        assert OUTSIDE_MSG in summary
    finally:
        sleeper.kill()
        sleeper.wait()


def test_memory_compare_export_wizard_refuse_paths_outside(ui):
    import gradio as gr

    from studio.ui import export_tab, wizard_tab

    demo, fns, runs, outside = ui
    estimate = fns["memory_tab", "estimate"]
    form = ["lora", False, True, 4, 1024, 1, False, "adamw_torch", 16, "all-linear", False, "bf16", 1, 0,
            "RTX 3090 / 4090 (24 GB)", 0, 0]
    with pytest.warns(UserWarning, match=OUTSIDE_MSG):
        verdict = estimate("/etc", *form)[0]
    assert verdict.startswith("**Cannot estimate:**") and OUTSIDE_MSG in verdict
    assert OUTSIDE_MSG not in estimate("Qwen2.5-0.5B", *form)[0]  # a built-in architecture
    _refused(fns["compare_tab", "on_eval"], str(outside), "final", "validation", 1)
    _refused(fns["compare_tab", "on_eval"], str(runs / "escape"), "final", "validation", 1)
    shared = demo.shared
    for out in ("/etc/studio", str(runs / "escape" / "export"), f"{runs}/../outside/x"):
        with pytest.raises(StudioError, match="outside the allowed folders"):
            export_tab.check_paths(shared, str(runs / "some-run"), out)
    form = {"goal": "style", "prompting": "partly", "n_examples": 800, "data_kinds": ["chat"],
            "dataset_path": "/etc/passwd"}
    _refused(wizard_tab.advise, form, "cpu", {}, shared.allowed_roots)
    yaml_text = wizard_tab.demo_preset()[0].replace("assets/demo-model", "/etc")
    _refused(fns["api", "use_config"], yaml_text)  # the wired button passes the roots
    ok = wizard_tab.demo_preset()[0].replace("assets/demo-model", "Qwen/Qwen2.5-0.5B")
    assert fns["api", "use_config"](ok)[0] == ok  # a hub id is fine


# -- no shell, no token on disk ----------------------------------------------------------------------
def test_no_shell_anywhere():
    pattern = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(|subprocess\.getoutput\(")
    files = [REPO / "app.py", *REPO.glob("studio/**/*.py"), *REPO.glob("bench/**/*.py"),
             *REPO.glob("scripts/**/*.py"), *(p for p in REPO.glob("tests/*.py") if p.name != "test_security.py")]
    hits = [f"{p.relative_to(REPO)}:{i}" for p in files
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert len(files) > 40 and hits == []


def _field_names(cls, prefix="") -> list[str]:
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        out.append(prefix + f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            out += _field_names(hints[f.name], prefix + f.name + ".")
    return out


def test_run_config_has_no_secret_field():
    from studio.config import RunConfig

    names = _field_names(RunConfig)
    assert "model.name_or_path" in names and len(names) > 30
    secret = re.compile(r"(^|[._])(token|hf_token|hub_token|api_key|secret|password|auth)$")
    assert [n for n in names if secret.search(n)] == []


def test_hub_token_is_scrubbed_and_never_written(tmp_path, monkeypatch, caplog):
    import gradio as gr

    from studio import hub

    token = "hf_SECURITYtest0123456789abcdef"
    assert hub.scrub(f"401 for token {token}", token) == "401 for token ***"
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "README.md").write_text("# model\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path / "runs"))
    from studio.ui.app import build_app

    demo = build_app()
    push = next(bf.fn for bf in demo.fns.values() if bf.fn is not None and bf.fn.__name__ == "on_push")
    with pytest.raises(gr.Error) as e:
        push(str(folder), "me/model", token, True)
    assert token not in str(e.value) and token not in caplog.text
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and token in p.read_text(errors="ignore")]
    assert leaked == []
