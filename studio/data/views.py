"""Display-ready pieces for the Data tab: tables, chat HTML, the token histogram figure.

Owns turning data-layer results into pandas DataFrames, an HTML chat transcript and a plotly
figure, so studio/ui/data_tab.py stays wiring only. No gradio here (plotly and pandas only,
imported inside functions). Does not compute anything about the data itself.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

SAMPLE_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt")
_ROLE_COLORS = {"system": "#6b7280", "user": "#2563eb", "assistant": "#059669", "tool": "#b45309"}


def sample_files(folder: Path) -> list[str]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)


def _turns_text(v) -> str | None:
    """A list of chat turns as 'role: text | role: text' (None for anything else). Arrow fills
    keys that other rows have with nulls (tool_calls, name...); showing them would only add noise."""
    if not (isinstance(v, list) and v and all(isinstance(m, dict) for m in v)):
        return None
    parts = []
    for m in v:
        role = m.get("role") or m.get("from")
        text = m.get("content", m.get("value"))
        if role is None:
            return None
        parts.append(f"{role}: {text if text is not None else '(tool call)'}")
    return " | ".join(parts)


def _cell(v, width: int = 160) -> str:
    s = v if isinstance(v, str) else _turns_text(v) or json.dumps(v, ensure_ascii=False, default=str)
    return s if len(s) <= width else s[: width - 1] + "…"


def preview_table(ds, n: int = 100):
    import pandas as pd

    rows = ds.select(range(min(n, len(ds)))).to_list()
    return pd.DataFrame([{"row": i, **{k: _cell(v) for k, v in r.items()}}
                         for i, r in enumerate(rows)])


def chat_html(messages: list[dict]) -> str:
    parts = []
    for m in messages:
        role = str(m.get("role", "?"))
        color = _ROLE_COLORS.get(role, "#7c3aed")
        body = html.escape(str(m.get("content", ""))).replace("\n", "<br>")
        parts.append(f'<div style="margin:6px 0;padding:8px 10px;border-left:4px solid {color};'
                     f'background:rgba(127,127,127,0.08);border-radius:6px">'
                     f'<b style="color:{color}">{html.escape(role)}</b><br>{body}</div>')
    return "".join(parts) or "<i>no messages</i>"


def issues_table(issues):
    import pandas as pd

    return pd.DataFrame([i.to_dict() for i in issues], columns=["row", "code", "message", "fix"])


def steps_table(report: dict):
    import pandas as pd

    rows = [{"step": name, "enabled": s["enabled"], "rows with this reason": s["removed"],
             "only this reason": s["only"], "undone": s["undone"]}
            for name, s in report["steps"].items() if s["enabled"] or s["removed"]]
    return pd.DataFrame(rows)


def removed_table(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame([{"row": r["row"], "reasons": ", ".join(r["reasons"]),
                          "duplicate of": r.get("duplicate_of", ""), "record": _cell(r["record"],
                                                                                    300)}
                         for r in rows], columns=["row", "reasons", "duplicate of", "record"])


def histogram_figure(tok: dict):
    """Token-length histogram with the max length drawn as a line."""
    import plotly.graph_objects as go

    edges, counts = tok["histogram"]["edges"], tok["histogram"]["counts"]
    centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
    colors = ["#dc2626" if c > tok["max_length"] else "#2563eb" for c in centers]
    fig = go.Figure(go.Bar(x=centers, y=counts, width=widths, marker_color=colors,
                           name="rows"))
    fig.add_vline(x=tok["max_length"], line_dash="dash", line_color="#dc2626",
                  annotation_text=f"max length {tok['max_length']}")
    fig.update_layout(
        title=f"{tok['pct_truncated']}% of rows truncated; {tok['assistant_tokens_lost']:,} "
              f"assistant tokens lost ({tok['pct_assistant_tokens_lost']}%)",
        xaxis_title=f"tokens per row ({tok['counted_with']})", yaxis_title="rows",
        bargap=0.02, height=360, margin=dict(l=40, r=20, t=50, b=40))
    return fig


def summary_markdown(path: str, n: int, guess) -> str:
    sure = "" if not guess.unsure else " — **unsure: check the column mapping below**"
    notes = "".join(f"\n- {n_}" for n_ in guess.notes)
    return (f"**{Path(path).name}**: {n:,} rows · format **{guess.name}** "
            f"(confidence {guess.confidence:.2f}: {guess.reason}){sure}{notes}")


def check_readable(path: str, roots) -> str:
    """`path` if it is under an allowed root (or an upload in the temp dir), else StudioError."""
    import tempfile

    from studio.errors import StudioError
    from studio.paths import is_within

    roots = list(roots or [])
    upload = Path(path).resolve().is_relative_to(Path(tempfile.gettempdir()).resolve())
    if roots and not upload and not is_within(path, roots):
        raise StudioError(f"{path}: outside the folders the studio may read. Fix: move the file "
                          "under the working folder or add its folder to STUDIO_ALLOWED_ROOTS.")
    return path


def guess_to_state(g) -> dict:
    return {"name": g.name, "confidence": g.confidence, "column_map": dict(g.column_map),
            "reason": g.reason, "notes": list(g.notes)}


def guess_from_state(st: dict):
    from studio.data.formats import FormatGuess
    from studio.errors import StudioError

    if not st or "guess" not in st:
        raise StudioError("load a dataset first.")
    g = st["guess"]
    return FormatGuess(g["name"], g["confidence"], dict(g["column_map"]), g["reason"], g["notes"])


def csv_tuple(text: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


def parse_ratios(text: str) -> list[float]:
    from studio.errors import StudioError

    try:
        return [float(x) for x in csv_tuple(text)]
    except ValueError:
        raise StudioError(f"ratios '{text}' must be numbers. Fix: e.g. 0.9,0.1,0.") from None


def training_path(st: dict) -> str:
    """The file "Use for training" hands over: split train > cleaned > loaded."""
    guess_from_state(st)
    if st.get("split_dir") and (Path(st["split_dir"]) / "train.jsonl").exists():
        return str(Path(st["split_dir"]) / "train.jsonl")
    if st.get("clean_dir"):
        return str(Path(st["clean_dir"]) / "clean.jsonl")
    return st["path"]


def dataset_stats(ds, guess, tok=None, max_length: int = 1024) -> dict:
    """{rows, format, tokens: {p50, p95, max, counted_with}}: what the Wizard reads."""
    from studio.data.inspection import token_lengths

    t = token_lengths(ds, tok, max_length, guess, limit=20_000)
    return {"rows": len(ds), "format": guess.name,
            "tokens": {"p50": t["p50"], "p95": t["p95"], "max": t["max"],
                       "counted_with": t["counted_with"]}}


def clean_dir(st: dict) -> str:
    from studio.errors import StudioError

    if not st or not st.get("clean_dir"):
        raise StudioError("run Clean first.")
    return st["clean_dir"]
