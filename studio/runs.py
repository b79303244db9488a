"""Run folders and the worker processes behind them: create, start, stop, resume, status, list.

This module owns the run-folder contract of DESIGN.md and the subprocesses. The UI and the CLI
both call `create_run` + `start`; nothing else launches training. It never imports torch.

The worker runs as `python -m studio.train RUN_DIR` in a new session (its own process group), so
Stop can end it and everything it started. One GPU job runs at a time: workers take an exclusive
flock on RUNS_ROOT/.gpu.lock and wait as "queued" until they get it; the kernel drops the lock
when a worker dies, even by kill -9, so a crash never blocks the queue.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from studio import paths
from studio.config import RunConfig
from studio.errors import StudioError

ACTIVE = ("queued", "running")
STOP_FILE = "stop.request"


# -- status.json ---------------------------------------------------------------------------------
def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON via temp file + rename: a reader sees the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def read_status(run_dir: str | Path) -> dict[str, Any]:
    p = Path(run_dir) / "status.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def update_status(run_dir: str | Path, **fields: Any) -> dict[str, Any]:
    run_dir = Path(run_dir)
    st = read_status(run_dir)
    st.update(fields)
    write_json_atomic(run_dir / "status.json", st)
    return st


def log_tail(run_dir: str | Path, lines: int = 30, max_bytes: int = 64_000) -> str:
    """The last `lines` lines of stdout.log, without progress-bar carriage-return noise."""
    p = Path(run_dir) / "stdout.log"
    try:
        with open(p, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    out = [ln.split("\r")[-1] for ln in text.split("\n")]
    return "\n".join([ln for ln in out if ln.strip()][-lines:])


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All rows of metrics.jsonl; a half-written last line (worker mid-write) is skipped."""
    rows = []
    try:
        with open(Path(run_dir) / "metrics.jsonl", encoding="utf-8") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
    except OSError:
        pass
    return rows


# -- processes -----------------------------------------------------------------------------------
def _alive(pid: int | None) -> bool:
    """True while `pid` is a live (non-zombie) process. Reaps it when it is our own dead child."""
    if not pid:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child so it stops being a zombie
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by another process): fall through to the probe
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still answers kill(0); /proc tells the truth on Linux
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _group_alive(pgid: int) -> bool:
    """True while any non-zombie process of group `pgid` exists."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def status(run_dir: str | Path) -> dict[str, Any]:
    """status.json, corrected: a queued/running run whose worker is gone is marked failed."""
    run_dir = Path(run_dir)
    st = read_status(run_dir)
    if st.get("state") in ACTIVE and st.get("pid") and not _alive(st["pid"]):
        time.sleep(0.2)  # the worker may have written its final status in the meantime
        st = read_status(run_dir)
        if st.get("state") in ACTIVE:
            stopped = (run_dir / STOP_FILE).exists()
            st = update_status(
                run_dir, state="stopped" if stopped else "failed", ended=_now(),
                error=None if stopped else
                "The training process ended without finishing (it was killed or crashed). "
                "See the log tail below; press Resume to continue from the last checkpoint.",
                log_tail=log_tail(run_dir))
    return st


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def create_run(cfg: RunConfig, root: str | Path | None = None, run_dir: str | Path | None = None) -> Path:
    """Validate `cfg`, make a run folder and write config.yaml + a queued status.json."""
    cfg.check()
    if run_dir is None:
        root = Path(root) if root else paths.runs_root()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = root / f"{stamp}-{cfg.name}"
        n = 1
        while run_dir.exists():  # two starts in the same second
            n += 1
            run_dir = root / f"{stamp}-{cfg.name}-{n}"
    run_dir = Path(run_dir)
    if (run_dir / "status.json").exists() and status(run_dir).get("state") in ACTIVE:
        raise StudioError(f"{run_dir} already has a run in progress. Stop it first or pick another folder.")
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / "config.yaml")
    write_json_atomic(run_dir / "status.json", {"state": "queued", "created": _now(), "name": cfg.name})
    return run_dir


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Fewer fragmented blocks for variable-length batches: the peak reserved memory drops.
    env.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.REPO_ROOT), env.get("PYTHONPATH", "")]))
    return env


def start(run_dir: str | Path, resume: bool = False) -> subprocess.Popen:
    """Launch the worker for `run_dir` in its own process group; returns at once."""
    run_dir = Path(run_dir)
    cfg = RunConfig.load(run_dir / "config.yaml").check()
    (run_dir / STOP_FILE).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "studio.train", str(run_dir)]
    if resume:
        cmd.append("--resume")
    if cfg.training.num_gpus > 1:
        from studio.train.distributed import launch_command

        cmd = launch_command(cfg, run_dir, resume)
    env = worker_env()
    # Local-first tracking next to the runs: `TRACKIO_DIR=runs/.trackio trackio show` opens it.
    env.setdefault("TRACKIO_DIR", str(run_dir.parent / ".trackio"))
    log = open(run_dir / "stdout.log", "ab")
    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=os.getcwd())
    finally:
        log.close()
    update_status(run_dir, state="queued", pid=proc.pid, pgid=proc.pid, error=None,
                  queued=_now(), resume=resume)
    return proc


def stop(run_dir: str | Path, grace_s: float = 15.0) -> dict[str, Any]:
    """Ask the worker to stop (it saves a checkpoint), then end its whole process group.

    The stop file lets the trainer finish the current step and save; after `grace_s` seconds
    SIGTERM and then SIGKILL go to the group, so every child dies and all GPU memory returns.
    """
    run_dir = Path(run_dir)
    st = status(run_dir)
    (run_dir / STOP_FILE).write_text(_now())
    pid = st.get("pid")
    if st.get("state") not in ACTIVE or not pid:
        return st
    deadline = time.time() + grace_s
    while time.time() < deadline and _alive(pid):
        time.sleep(0.2)
    # Whatever is left of the group (children, a hung exit) gets SIGTERM, then SIGKILL.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(st.get("pgid") or pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        t = time.time()
        while time.time() - t < 3 and _group_alive(st.get("pgid") or pid):
            time.sleep(0.1)
    _alive(pid)  # reap our own child
    st = read_status(run_dir)
    if st.get("state") in ACTIVE:
        st = update_status(run_dir, state="stopped", ended=_now(), log_tail=log_tail(run_dir))
    return st


def _complete(ckpt: Path) -> bool:
    """The trainer writes trainer_state.json last; a worker killed mid-save leaves a checkpoint
    without it (or with a truncated one), which must not be resumed from."""
    try:
        json.loads((ckpt / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of the current stage, or None."""
    ckpts = sorted((Path(run_dir) / "checkpoints").glob("checkpoint-*"),
                   key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
    complete = [c for c in ckpts if _complete(c)]
    return complete[-1] if complete else None


def resume(run_dir: str | Path) -> subprocess.Popen:
    run_dir = Path(run_dir)
    st = status(run_dir)
    if st.get("state") in ACTIVE:
        raise StudioError("This run is still going; there is nothing to resume.")
    if st.get("state") == "done":
        raise StudioError("This run finished. Start a new run (or raise epochs/max_steps) to train further.")
    if last_checkpoint(run_dir) is None:
        raise StudioError("No checkpoint was saved before the run ended, so it cannot resume. "
                          "Start it again; set training.save_steps to checkpoint more often.")
    return start(run_dir, resume=True)


def list_runs(root: str | Path | None = None) -> list[dict[str, Any]]:
    """Every run under `root`, newest first, with its status, config name and final loss."""
    root = Path(root) if root else paths.runs_root()
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir(), reverse=True):
        if not (d / "config.yaml").is_file():
            continue
        st = status(d)
        out.append({"run_dir": str(d), "name": d.name, "state": st.get("state", "?"),
                    "started": st.get("started"), "final_loss": st.get("final_loss"),
                    "stage": st.get("stage"), "error": st.get("error"), "status": st})
    return out


def active_run(root: str | Path | None = None) -> str | None:
    """The newest queued or running run, for re-attaching after a page reload."""
    for r in list_runs(root):
        if r["state"] in ACTIVE:
            return r["run_dir"]
    return None


def main(argv: list[str]) -> int:
    """`python -m studio runs [--root DIR]`: one line per run."""
    root = argv[argv.index("--root") + 1] if "--root" in argv else None
    for r in list_runs(root):
        print(f"{r['state']:<8} {r['name']}  loss={r['final_loss']}")
    return 0
