"""The self-contained HTML run report (RUN_DIR/report.html) for demos and sharing.

One file that opens anywhere, offline: plotly's JavaScript is embedded once (no CDN), followed by
the loss, learning-rate, gradient-norm and throughput charts, the run's status, its evaluation
and its full config. Without plotly the charts fall back to inline SVG. It does not export models
(studio.export does) and reads the run only through studio.model_card.load_run.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from studio.model_card import RunInfo, eval_table, hyperparameters, load_run, data_stats, svg_line_chart

_CHARTS = (("loss", "Loss", ("loss", "eval_loss")), ("lr", "Learning rate", ("learning_rate",)),
           ("grad", "Gradient norm", ("grad_norm",)), ("tps", "Throughput (tokens/s)", ("tokens_per_s",)))
_CSS = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:4px 10px;text-align:left}"
        "pre{background:#f6f6f6;padding:1em;overflow:auto}.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}")


def _series(info: RunInfo, keys: tuple[str, ...]) -> dict[str, list[tuple[float, float]]]:
    out = {}
    for k in keys:
        pts = [(float(m.get("step", i)), float(m[k])) for i, m in enumerate(info.metrics)
               if isinstance(m.get(k), (int, float)) and not isinstance(m.get(k), bool)]
        if pts:
            out[k.replace("_", " ")] = pts
    return out


def _charts(info: RunInfo) -> list[str]:
    """One HTML fragment per chart with data; plotly.js is inlined into the first only."""
    blocks = [(title, s) for _, title, keys in _CHARTS if (s := _series(info, keys))]
    try:
        import plotly.graph_objects as go
    except ImportError:
        return [svg_line_chart(s, title) for title, s in blocks]
    out = []
    for i, (title, series) in enumerate(blocks):
        fig = go.Figure([go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers"
                                    if len(pts) < 30 else "lines", name=name) for name, pts in series.items()])
        fig.update_layout(title=title, xaxis_title="step", height=320, margin=dict(l=50, r=20, t=50, b=40),
                          template="plotly_white")
        out.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False}))
    return out


def _table(rows: list[tuple[str, ...]], headers: tuple[str, ...] = ()) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>" if headers else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c)).replace('`', '')}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table>{head}{body}</table>"


def render_report(info: RunInfo) -> str:
    st = info.status
    status_rows = [(k, st[k]) for k in ("state", "started", "ended", "peak_gpu_gib", "estimated_gpu_gib", "error")
                   if k in st]
    charts = _charts(info)
    ev = eval_table(info.eval)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(info.name)} - run report</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(info.name)}</h1><p>Run <code>{html.escape(info.run_dir.name)}</code>: "
             f"{html.escape(info.method)} on <code>{html.escape(info.base_model)}</code>.</p>",
             "<h2>Status</h2>", _table(status_rows) if status_rows else "<p>No status recorded.</p>",
             "<h2>Training curves</h2>",
             "<div class='grid'>" + "".join(f"<div>{c}</div>" for c in charts) + "</div>" if charts
             else "<p>No metrics were logged.</p>",
             "<h2>Evaluation</h2>", _table(ev, ("metric", "base", "fine-tuned", "change")) if ev
             else "<p>No evaluation was run.</p>",
             "<h2>Data</h2>", _table(data_stats(info)), "<h2>Hyperparameters</h2>", _table(hyperparameters(info)),
             "<h2>Full config</h2>", f"<pre>{html.escape(info.config.to_yaml())}</pre>",
             f"<h2>Metrics</h2><p>{len(info.metrics)} logged rows; last: <code>"
             f"{html.escape(json.dumps(info.metrics[-1]) if info.metrics else '-')}</code></p>",
             "</body></html>"]
    return "\n".join(parts)


def write_report(run: RunInfo | str | Path) -> Path:
    """Write RUN_DIR/report.html atomically and return its path."""
    info = run if isinstance(run, RunInfo) else load_run(run)
    path = info.run_dir / "report.html"
    tmp = path.with_name(".report.html.tmp")
    tmp.write_text(render_report(info), encoding="utf-8")
    tmp.replace(path)
    return path
