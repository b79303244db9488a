"""What the Train tab shows about a run: plotly figures, progress with ETA, and a status summary.

Pure functions over a run folder's status.json and metrics.jsonl (read through studio.runs);
no gradio here, so the same views are testable and usable from scripts.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from studio import runs

STATE_WORDS = {"queued": "Waiting in the queue", "running": "Training", "done": "Finished",
               "failed": "Failed", "stopped": "Stopped"}


def _series(rows: list[dict], key: str) -> tuple[list, list]:
    xs, ys = [], []
    for r in rows:
        if isinstance(r.get(key), (int, float)):
            xs.append(r["step"])
            ys.append(r[key])
    return xs, ys


def _figure(title: str, y_title: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(title=title, height=260, margin=dict(l=40, r=10, t=40, b=30),
                      xaxis_title="step", yaxis_title=y_title, legend=dict(orientation="h", y=-0.25),
                      template="plotly_white")
    return fig


def figures(run_dirs: list[str | Path]) -> dict[str, Any]:
    """Loss/eval loss, learning rate/grad norm, tokens/s/GPU memory, DPO rewards — for one or
    several runs (several runs share the loss plot so their curves can be compared)."""
    import plotly.graph_objects as go

    figs = {"loss": _figure("Loss (lower is better)", "loss"),
            "lr": _figure("Learning rate and gradient norm", "value"),
            "speed": _figure("Speed and GPU memory", "tokens/s"),
            "dpo": _figure("DPO rewards (chosen above rejected is good)", "reward")}
    for rd in run_dirs:
        rows = runs.read_metrics(rd)
        tag = Path(rd).name if len(run_dirs) > 1 else ""
        for key, fig, name in (("loss", "loss", "train loss"), ("eval_loss", "loss", "eval loss"),
                               ("learning_rate", "lr", "learning rate"), ("grad_norm", "lr", "grad norm"),
                               ("tokens_per_s", "speed", "tokens/s"),
                               ("rewards/chosen", "dpo", "chosen"), ("rewards/rejected", "dpo", "rejected"),
                               ("rewards/margins", "dpo", "margin")):
            xs, ys = _series(rows, key)
            if xs:
                mode = "lines+markers" if key == "eval_loss" or len(xs) < 30 else "lines"
                figs[fig].add_trace(go.Scatter(x=xs, y=ys, mode=mode, name=f"{tag} {name}".strip()))
        xs, ys = _series(rows, "gpu_mem_gib")
        if xs:
            figs["speed"].add_trace(go.Scatter(x=xs, y=ys, name=f"{tag} GPU GiB".strip(), yaxis="y2"))
            figs["speed"].update_layout(yaxis2=dict(title="GiB", overlaying="y", side="right"))
    if len(figs["lr"].data) == 2:  # lr is ~1e-4, grad norm ~1: give the norm its own axis
        figs["lr"].data[1].update(yaxis="y2")
        figs["lr"].update_layout(yaxis2=dict(title="grad norm", overlaying="y", side="right"))
    return figs


def _fmt_s(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def took(st: dict[str, Any]) -> str:
    """How long a finished run took ('' while it runs or when the times are unreadable)."""
    try:
        dur = datetime.fromisoformat(st["ended"]) - datetime.fromisoformat(st["started"])
    except (KeyError, TypeError, ValueError):
        return ""
    return _fmt_s(dur.total_seconds())


def progress(st: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Fraction done and ETA from the steps taken since this stage started (a resumed run's
    earlier steps do not count toward the speed)."""
    now = now or time.time()
    step, total = st.get("step") or 0, st.get("max_steps") or 0
    frac = min(1.0, step / total) if total else (1.0 if st.get("state") == "done" else 0.0)
    eta = None
    t0, s0 = st.get("stage_started"), st.get("start_step") or 0
    if st.get("state") == "running" and t0 and total and step > s0:
        eta = (now - t0) / (step - s0) * (total - step)
    text = f"step {step}/{total}" if total else ""
    if st.get("n_stages", 1) > 1:
        text = f"stage {st.get('stage_index', 0) + 1}/{st['n_stages']} ({st.get('stage')}) · " + text
    if eta is not None:
        text += f" · about {_fmt_s(eta)} left"
    return {"fraction": frac, "eta_s": eta, "text": text}


def progress_html(st: dict[str, Any]) -> str:
    p = progress(st)
    pct = int(round(100 * p["fraction"]))
    color = {"failed": "#d9534f", "stopped": "#f0ad4e", "done": "#5cb85c"}.get(st.get("state"), "#4a7bd0")
    return (f"<div style='border:1px solid #ccc;border-radius:6px;height:22px;position:relative'>"
            f"<div style='background:{color};width:{pct}%;height:100%;border-radius:6px'></div>"
            f"<span style='position:absolute;top:2px;left:8px;font-size:13px'>{pct}% {p['text']}</span></div>")


def summary(st: dict[str, Any], run_dir: str | Path | None = None) -> str:
    """A few lines of markdown: state, memory estimated vs used, the error if any."""
    if not st:
        return "No run selected. Pick a preset and press **Start training**."
    state = st.get("state", "?")
    lines = [f"**{STATE_WORDS.get(state, state)}**" + (f" — `{Path(run_dir).name}`" if run_dir else "")]
    if st.get("device"):
        lines.append(f"Device: {st['device']} ({st.get('precision', '')})")
    if st.get("trainable_params"):
        lines.append(f"Trainable parameters: {st['trainable_params']:,} of {st.get('total_params', 0):,}")
    est, used = st.get("estimated_gpu_gib"), st.get("nvml_peak_gib") or st.get("peak_gpu_gib")
    if est is not None or used is not None:
        e = f"{est:.1f} GiB" if est is not None else "—"
        u = f"{used:.1f} GiB" if used is not None else "(measured at the end)"
        lines.append(f"GPU memory: estimated {e}, used {u}")
    if st.get("final_loss") is not None:
        lines.append(f"Final training loss: {st['final_loss']:.4f}")
    if took(st):
        lines.append(f"Took {took(st)}")
    if st.get("error"):
        lines.append(f"\n**What went wrong:** {st['error']}")
    return "  \n".join(lines)


HISTORY_HEADERS = ["run", "state", "method", "model", "dataset", "steps", "final loss", "last eval loss", "took"]


def history_rows(root: str | Path | None = None) -> list[list]:
    """One row per run, newest first: its config at a glance and its final metrics."""
    from studio.config import RunConfig
    from studio.errors import StudioError

    out = []
    for r in runs.list_runs(root):
        st = r["status"]
        try:
            cfg = RunConfig.load(Path(r["run_dir"]) / "config.yaml")
            method = f"{cfg.stage} / {cfg.adapter}" + (f" ({len(cfg.stages)} stages)" if cfg.stages else "")
            model, data = Path(cfg.model.name_or_path).name, Path(cfg.data.path).name
        except StudioError:
            method = model = data = "?"
        evals = [m["eval_loss"] for m in runs.read_metrics(r["run_dir"]) if "eval_loss" in m]
        loss = st.get("final_loss")
        out.append([r["name"], st.get("state", "?"), method, model, data, st.get("step") or "",
                    round(loss, 4) if isinstance(loss, (int, float)) else "",
                    round(evals[-1], 4) if evals else "", took(st)])
    return out
