"""Push an export folder to the Hugging Face Hub: create the repo, upload the folder.

Owns the checks that make the push fail fast and clearly (no token, bad repo id, offline mode,
no route to the Hub within a few seconds) and keeps the token out of every message: it is passed
to huggingface_hub in memory only and scrubbed from any error text. It does not build exports
(studio.export does) and never writes the token anywhere.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from studio.errors import StudioError

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PROBE_SECONDS = 3.0  # how long to wait for a TCP connection to the Hub before calling it offline


def scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def _reachable(url: str, timeout: float) -> bool:
    """TCP connect to the endpoint in a thread, so a hanging DNS lookup cannot block past `timeout`."""
    # Behind a proxy only the proxy is reachable: probe it instead of the Hub itself.
    proxy = [os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
             if url.startswith("https") and os.environ.get(k)]
    parsed = urlparse(proxy[0] if proxy else url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            ok.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok and ok[0])


def push_folder(folder: str | Path, repo_id: str, token: str, private: bool = True,
                endpoint: str | None = None, api: Any = None, timeout: float = PROBE_SECONDS) -> str:
    """Upload `folder` to the model repo `repo_id` (created if missing); return the repo URL.

    `api` replaces huggingface_hub.HfApi (tests inject one); `endpoint` points at another server.
    """
    folder = Path(folder)
    token = (token or "").strip()
    repo_id = (repo_id or "").strip()
    if not folder.is_dir() or not any(folder.iterdir()):
        raise StudioError(f"Nothing to push: {folder} is not an export folder. Export first, then push.")
    if not _REPO_ID.match(repo_id):
        raise StudioError(f"Repo id {repo_id!r} is not valid: use your-username/model-name "
                          "(letters, digits, '-', '_', '.').")
    if not token:
        raise StudioError("Paste a Hugging Face access token with write permission "
                          "(huggingface.co -> Settings -> Access Tokens) to push.")
    if api is None:
        from huggingface_hub import HfApi, constants

        endpoint = endpoint or constants.ENDPOINT
        if constants.is_offline_mode():
            raise StudioError("The Hub push is blocked because offline mode is on (HF_HUB_OFFLINE=1). "
                              f"Your export is saved in {folder}; restart the studio with "
                              "HF_HUB_OFFLINE=0 when you are online, then push again.")
        if not _reachable(endpoint, timeout):
            raise StudioError(f"Cannot reach {endpoint} within {timeout:g} s: this machine looks offline "
                              f"(or a proxy blocks it). Your export is saved in {folder}; push it again "
                              "when you are online.")
        api = HfApi(endpoint=endpoint, token=token)
    try:
        url = api.create_repo(repo_id=repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                          commit_message="Upload from Fine-Tune Studio")
    except Exception as e:  # noqa: BLE001 - every Hub failure becomes one clear, token-free message
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            raise StudioError("The Hub rejected the token (HTTP %s): use a token with write permission "
                              "for %s." % (status, repo_id.split("/")[0])) from None
        raise StudioError(f"Hub push failed: {scrub(str(e), token)[:400]}. Your export is still in "
                          f"{folder}.") from None
    return str(url)
