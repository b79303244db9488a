"""Hub push: fails fast and clearly offline, succeeds against a local stand-in of the Hub API
(127.0.0.1, the three endpoints huggingface_hub uses for create_repo + upload_folder), and never
writes or prints the token. No real network is touched.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from studio.errors import StudioError

TOKEN = "hf_studioTESTtoken1234567890"
REPO = Path(__file__).resolve().parent.parent


class FakeHub:
    """Records repos, uploaded files and auth headers; `status` forces an HTTP error."""

    def __init__(self, status: int = 200):
        self.repos: dict[str, dict] = {}
        self.files: dict[str, bytes] = {}
        self.auth: list[str] = []
        self.validated: list[str] = []
        self.status = status
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _json(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hub.auth.append(self.headers.get("Authorization", ""))
                if hub.status != 200:
                    return self._json(hub.status, {"error": "Invalid credentials in Authorization header"})
                root = f"http://127.0.0.1:{self.server.server_port}"
                if self.path == "/api/validate-yaml":  # the client checks README.md front matter first
                    hub.validated.append(json.loads(body)["content"])
                    return self._json(200, {"errors": [], "warnings": []})
                if self.path == "/api/repos/create":
                    d = json.loads(body)
                    repo = f"{d['organization']}/{d['name']}"
                    hub.repos[repo] = d
                    return self._json(200, {"url": f"{root}/{repo}", "name": d["name"]})
                if "/preupload/" in self.path:
                    files = json.loads(body)["files"]
                    return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False} for f in files]})
                if "/commit/" in self.path:
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            hub.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    repo = self.path.split("/api/models/")[1].split("/commit/")[0]
                    return self._json(200, {"commitUrl": f"{root}/{repo}/commit/{'a' * 40}", "commitOid": "a" * 40})
                return self._json(404, {"error": "not found"})

            do_PUT = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def export_dir(tmp_path) -> Path:
    d = tmp_path / "export"
    d.mkdir()
    (d / "README.md").write_text("# card\n")
    (d / "adapter_config.json").write_text('{"r": 4}')
    (d / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 8)
    return d


@pytest.fixture()
def online(monkeypatch):
    """Tests of the real code path run with offline mode lifted (the conftest turns it on)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_offline_mode_fails_fast_with_clear_message(export_dir, monkeypatch):
    from huggingface_hub import constants

    from studio.hub import push_folder

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    t = time.time()
    with pytest.raises(StudioError) as e:
        push_folder(export_dir, "me/tiny", TOKEN)
    assert time.time() - t < 5
    assert "offline mode" in str(e.value) and "HF_HUB_OFFLINE=0" in str(e.value) and str(export_dir) in str(e.value)
    assert TOKEN not in str(e.value)


def test_unreachable_hub_fails_fast(export_dir, online):
    from studio.hub import push_folder

    t = time.time()
    with pytest.raises(StudioError, match="Cannot reach .* offline"):
        push_folder(export_dir, "me/tiny", TOKEN, endpoint=f"http://127.0.0.1:{_closed_port()}")
    assert time.time() - t < 5


def test_push_to_local_stand_in(export_dir, online, capsys, caplog):
    from studio.hub import push_folder

    hub = FakeHub()
    try:
        url = push_folder(export_dir, "me/tiny-model", TOKEN, private=True, endpoint=hub.url)
    finally:
        hub.close()
    assert url.endswith("/me/tiny-model")
    assert hub.repos["me/tiny-model"]["visibility"] == "private"
    assert hub.files == {f.name: f.read_bytes() for f in export_dir.iterdir()}
    assert hub.validated == ["# card\n"]
    assert hub.auth and all(a == f"Bearer {TOKEN}" for a in hub.auth)
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err + caplog.text
    assert not any(TOKEN.encode() in f.read_bytes() for f in export_dir.rglob("*") if f.is_file())


def test_rejected_token_is_explained_without_leaking_it(export_dir, online):
    from studio.hub import push_folder

    hub = FakeHub(status=401)
    try:
        with pytest.raises(StudioError) as e:
            push_folder(export_dir, "me/tiny-model", TOKEN, endpoint=hub.url)
    finally:
        hub.close()
    assert "rejected the token" in str(e.value) and "write permission" in str(e.value)
    assert TOKEN not in str(e.value)


def test_injected_api_and_input_checks(export_dir):
    from studio.hub import push_folder

    calls = []

    class Api:
        def create_repo(self, **kw):
            calls.append(("create", kw))
            return "https://hub.example/me/x"

        def upload_folder(self, **kw):
            calls.append(("upload", kw))

    assert push_folder(export_dir, "me/x", TOKEN, private=False, api=Api()) == "https://hub.example/me/x"
    assert calls[0][1]["private"] is False and calls[1][1]["folder_path"] == str(export_dir)
    with pytest.raises(StudioError, match="access token"):
        push_folder(export_dir, "me/x", "  ", api=Api())
    with pytest.raises(StudioError, match="your-username/model-name"):
        push_folder(export_dir, "no-slash", TOKEN, api=Api())
    with pytest.raises(StudioError, match="Export first"):
        push_folder(export_dir / "missing", "me/x", TOKEN, api=Api())


def test_cli_push_offline_is_clean(export_dir, tiny_model_dir, tmp_path):
    from test_export import build_run

    run = build_run(tmp_path / "runs", tiny_model_dir)
    env = {**__import__("os").environ, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "studio", "export", str(run), "--format", "adapter", "--out",
                           str(tmp_path / "ad"), "--push-to", "me/tiny", "--json"], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 2
    assert "offline mode" in json.loads(proc.stdout)["error"]
    assert TOKEN not in proc.stdout + proc.stderr
    assert (tmp_path / "ad" / "adapter_model.safetensors").is_file()  # the export itself is kept
