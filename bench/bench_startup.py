"""Start-up benchmark: seconds from `python app.py` to the first HTTP 200, against the floor.

The floor (baseline) is a bare `python -c "import gradio"` plus a one-button gr.Blocks launched the
same way: what any Gradio app pays. Our app should add little to it, and stay under 4 s on 2 cores.
Run: .venv/bin/python bench/bench_startup.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

BASELINE = ("import gradio as gr, sys\n"
            "with gr.Blocks() as d:\n    gr.Button('x')\n"
            "d.launch(server_name='127.0.0.1', server_port=int(sys.argv[1]), ssr_mode=False)\n")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_http(cmd: list[str], port: int, timeout: float = 60.0) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - t0 < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"no answer within {timeout} s: {cmd}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    runs = tempfile.mkdtemp()
    ours, base = [], []
    for _ in range(a.repeat):
        p = _port()
        base.append(time_to_http([sys.executable, "-c", BASELINE, str(p)], p))
        p = _port()
        ours.append(time_to_http([sys.executable, "app.py", "--port", str(p), "--runs", runs,
                                  "--no-demo-build"], p))
    mo, mb = statistics.median(ours), statistics.median(base)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"bare gradio app : median {mb:.2f} s  {['%.2f' % x for x in base]}")
    print(f"Fine-Tune Studio: median {mo:.2f} s  {['%.2f' % x for x in ours]}")
    print(f"ratio studio/bare: {mo / mb:.2f}x   target: studio < 4.0 s -> {'PASS' if mo < 4.0 else 'FAIL'}")


if __name__ == "__main__":
    main()
