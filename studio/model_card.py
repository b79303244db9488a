"""What a run folder says about itself, and the model card (README.md) written into every export.

Owns `load_run` (config.yaml, metrics.jsonl, status.json, eval.json read tolerantly: a run that is
still writing its last metrics line must not break an export), a dependency-free SVG line chart,
and `model_card()`. It does not load models or write export folders (studio.export does) and does
not build the HTML run report (studio.report does).
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import StudioError

# Metric keys that are bookkeeping, not quality numbers worth a row in the eval table.
_NOT_EVAL = {"n", "count", "rows", "seconds", "time", "runtime"}


@dataclass
class RunInfo:
    run_dir: Path
    config: Any  # studio.config.RunConfig
    metrics: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name or self.run_dir.name

    @property
    def base_model(self) -> str:
        return self.config.model.name_or_path

    @property
    def method(self) -> str:
        """A short human description, e.g. 'LoRA (r=16, alpha=32), SFT'."""
        c, lo = self.config, self.config.lora
        kind = {"lora": "LoRA", "qlora": "QLoRA (4-bit base)", "full": "Full fine-tuning",
                "prompt_tuning": "Prompt tuning", "prefix_tuning": "Prefix tuning"}.get(c.adapter, c.adapter)
        if c.adapter in ("lora", "qlora"):
            extra = [f"r={lo.r}", f"alpha={lo.alpha}", f"targets={lo.target_modules}"]
            extra += ["DoRA"] if lo.use_dora else []
            extra += ["rsLoRA"] if lo.use_rslora else []
            kind += f" ({', '.join(extra)})"
        return f"{kind}, {c.stage.upper()}"

    def train_rows(self) -> list[dict[str, Any]]:
        return [m for m in self.metrics if isinstance(m.get("loss"), (int, float))]

    def eval_rows(self) -> list[dict[str, Any]]:
        return [m for m in self.metrics if isinstance(m.get("eval_loss"), (int, float))]


def load_run(run_dir: str | Path) -> RunInfo:
    """Read a run folder; raise StudioError when it is not one."""
    from studio.config import RunConfig

    run_dir = Path(run_dir).expanduser().resolve()
    if not run_dir.is_dir():
        raise StudioError(f"Run folder not found: {run_dir}. Pick a run from the list or give the "
                          "path of a folder under runs/.")
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise StudioError(f"{run_dir} has no config.yaml, so it is not a run folder. Pick the folder "
                          "that the Train tab created (runs/<date>-<name>/).")
    info = RunInfo(run_dir=run_dir, config=RunConfig.load(cfg_path))
    info.metrics = read_jsonl(run_dir / "metrics.jsonl")
    info.status = _read_json(run_dir / "status.json")
    info.eval = _read_json(run_dir / "eval.json")
    return info


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON object line; a torn last line (run still writing) is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- charts --------------------------------------------------------------------------------------
_COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea")


def svg_line_chart(series: dict[str, list[tuple[float, float]]], title: str, x_label: str = "step",
                   width: int = 640, height: int = 280) -> str:
    """A small standalone SVG with one polyline per series, min/max tick labels and a legend."""
    pts = [p for s in series.values() for p in s]
    if not pts:
        return ""
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    left, right, top, bottom = 56, 16, 28, 36
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for y in (y0, (y0 + y1) / 2, y1):
        out.append(f'<text x="{left - 4}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.4g}</text>')
    for x in (x0, x1):
        out.append(f'<text x="{sx(x):.1f}" y="{top + ph + 14}" text-anchor="middle">{x:.4g}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle">{html.escape(x_label)}</text>')
    for i, (name, s) in enumerate(series.items()):
        color = _COLORS[i % len(_COLORS)]
        if len(s) == 1:  # one eval point still deserves a mark
            out.append(f'<circle cx="{sx(s[0][0]):.1f}" cy="{sy(s[0][1]):.1f}" r="3" fill="{color}"/>')
        elif s:
            line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{line}"/>')
        out.append(f'<text x="{left + 8 + 110 * i}" y="{top + 14}" fill="{color}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def loss_series(info: RunInfo) -> dict[str, list[tuple[float, float]]]:
    series = {"train loss": [(float(m.get("step", i)), float(m["loss"])) for i, m in enumerate(info.train_rows())]}
    ev = [(float(m.get("step", i)), float(m["eval_loss"])) for i, m in enumerate(info.eval_rows())]
    if ev:
        series["eval loss"] = ev
    return {k: v for k, v in series.items() if v}


def _svg_img(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode()).decode()
    return f'<img alt="{alt}" src="data:image/svg+xml;base64,{data}"/>'


# -- model card ----------------------------------------------------------------------------------
def data_stats(info: RunInfo) -> list[tuple[str, str]]:
    d = info.config.data
    rows: list[tuple[str, str]] = [("Dataset", f"`{d.path}`"), ("Format", d.format)]
    path = Path(d.path)
    if path.is_file() and path.suffix in (".jsonl", ".json") and path.stat().st_size < 200 * 2**20:
        with path.open("rb") as f:  # counting lines of a file under 200 MiB is instant
            rows.append(("Rows in file", str(sum(1 for line in f if line.strip()))))
    if d.max_rows:
        rows.append(("Rows used (cap)", str(d.max_rows)))
    split = f"`{d.eval_path}`" if d.eval_path else (f"{d.eval_fraction:.0%} held out" if d.eval_fraction else "none")
    rows += [("Eval split", split), ("Max length", f"{d.max_length} tokens"),
             ("Packing", "yes" if d.packing else "no"),
             ("Loss on", "completions only" if d.completion_only else "all tokens")]
    tokens = [m.get("num_tokens") for m in info.metrics if isinstance(m.get("num_tokens"), (int, float))]
    if tokens:
        rows.append(("Tokens trained", f"{int(max(tokens)):,}"))
    return rows


def hyperparameters(info: RunInfo) -> list[tuple[str, str]]:
    t, c = info.config.training, info.config
    eff = t.batch_size * t.grad_accum * t.num_gpus
    rows = [("Stage", c.stage), ("Method", info.method),
            ("Epochs" if t.max_steps <= 0 else "Max steps", str(t.epochs if t.max_steps <= 0 else t.max_steps)),
            ("Batch size", f"{t.batch_size} x {t.grad_accum} accumulation x {t.num_gpus} GPU = {eff}"),
            ("Learning rate", f"{t.learning_rate:g} ({t.scheduler}, warmup {t.warmup:g})"),
            ("Optimizer", f"{t.optim}, weight decay {t.weight_decay:g}"), ("Precision", t.precision),
            ("Gradient checkpointing", "on" if t.gradient_checkpointing else "off"), ("Seed", str(t.seed))]
    if c.adapter in ("lora", "qlora"):
        rows.append(("LoRA dropout", f"{c.lora.dropout:g}"))
    if c.stage == "dpo":
        rows.append(("DPO beta", f"{t.beta:g}"))
    return rows


def eval_table(ev: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, base, tuned, change) rows for every numeric metric in eval.json."""
    base, tuned = ev.get("base") or {}, ev.get("tuned") or {}
    if not isinstance(base, dict) or not isinstance(tuned, dict):
        return []
    rows = []
    for key in sorted(set(base) | set(tuned)):
        b, t = base.get(key), tuned.get(key)
        if key in _NOT_EVAL or not any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (b, t)):
            continue
        change = f"{t - b:+.4g}" if isinstance(b, (int, float)) and isinstance(t, (int, float)) else ""
        rows.append((key, _fmt(b), _fmt(t), change))
    return rows


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return out + ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]


_USAGE = {
    "adapter": ("```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\nfrom peft import PeftModel\n\n"
                "base = AutoModelForCausalLM.from_pretrained(\"{base}\")\nmodel = PeftModel.from_pretrained(base, \"PATH_TO_THIS_FOLDER\")\n"
                "tokenizer = AutoTokenizer.from_pretrained(\"PATH_TO_THIS_FOLDER\")\n```"),
    "merged": ("```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
               "model = AutoModelForCausalLM.from_pretrained(\"PATH_TO_THIS_FOLDER\")\n"
               "tokenizer = AutoTokenizer.from_pretrained(\"PATH_TO_THIS_FOLDER\")\n```"),
    "bnb4": ("```python\nfrom transformers import AutoModelForCausalLM\n\n# needs a CUDA GPU and bitsandbytes\n"
             "model = AutoModelForCausalLM.from_pretrained(\"PATH_TO_THIS_FOLDER\", device_map=\"auto\")\n```"),
    "gguf": "```bash\nllama-cli -m {file} -cnv\n```",
    "ollama": "```bash\nollama create {name} -f Modelfile\nollama run {name}\n```",
}


def model_card(info: RunInfo, fmt: str, dtype: str = "", files: list[tuple[str, int]] | None = None,
               verification: str = "", gguf_file: str = "", weights: str = "final") -> str:
    """The README.md for an export folder: front matter for the Hub, then the story of the run."""
    library = {"adapter": "peft", "gguf": "gguf", "ollama": "gguf"}.get(fmt, "transformers")
    c = info.config
    tags = ["fine-tune-studio", c.stage, c.adapter] + (["gguf"] if library == "gguf" else [])
    # The Hub rejects a base_model that is not a hub id, so a local folder stays in the text only.
    hub_id = "/" in info.base_model and not Path(info.base_model).expanduser().exists() \
        and not info.base_model.startswith((".", "/", "~"))
    lines = ["---"] + ([f"base_model: {json.dumps(info.base_model)}"] if hub_id else []) + [
             f"library_name: {library}",
             "pipeline_tag: text-generation", "tags:"] + [f"- {t}" for t in tags] + ["---", "",
             f"# {info.name}", "",
             f"A fine-tune of **{info.base_model}** made with Fine-Tune Studio ({info.method}).", "",
             "## Model details", ""]
    st = info.status
    details = [("Base model", f"`{info.base_model}`"), ("Method", info.method),
               ("Export format", fmt + (f" ({dtype})" if dtype else "")),
               ("Run", f"`{info.run_dir.name}` ({st.get('state', 'unknown')})"),
               ("Weights", "final" if weights == "final" else f"checkpoint `{weights}`")]
    if st.get("started"):
        details.append(("Trained", f"{st.get('started')} to {st.get('ended', '?')}"))
    if isinstance(st.get("peak_gpu_gib"), (int, float)):
        details.append(("Peak GPU memory", f"{st['peak_gpu_gib']:.2f} GiB"))
    if verification:
        details.append(("Export check", verification))
    lines += _table(("", ""), details) + ["", "## How to use", ""]
    lines += [_USAGE[fmt].format(base=info.base_model, file=gguf_file or "model.gguf",
                                 name=info.name.lower().replace(" ", "-")), ""]
    lines += ["## Training data", ""] + _table(("", ""), data_stats(info))
    lines += ["", "## Hyperparameters", ""] + _table(("Setting", "Value"), hyperparameters(info))
    lines += ["", "## Training curves", ""] + _curves(info)
    lines += ["", "## Evaluation", ""]
    rows = eval_table(info.eval)
    if rows:
        lines += ["Base model vs this fine-tune on the held-out set:", ""]
        lines += _table(("Metric", "Base", "Fine-tuned", "Change"), rows)
    else:
        lines.append("No evaluation was run for this export. Run the Evaluate step (or "
                     "`python -m studio eval RUN_DIR`) and export again to include it.")
    if files:
        lines += ["", "## Files", ""] + _table(("File", "Size"), [(f"`{n}`", human_size(s)) for n, s in files])
    lines += ["", "## Limitations", "",
              "This model inherits the limitations and license of its base model. It was tuned on "
              "the dataset above only; check its answers before relying on them.", ""]
    return "\n".join(lines)


def _curves(info: RunInfo) -> list[str]:
    series = loss_series(info)
    if not series:
        return ["No training metrics were logged for this run."]
    train = series.get("train loss", [])
    out = [_svg_img(svg_line_chart(series, "Loss"), "loss curve"), ""]
    summary = []
    if train:
        summary += [("First train loss", f"{train[0][1]:.4f}"), ("Last train loss", f"{train[-1][1]:.4f}"),
                    ("Steps", f"{int(train[-1][0])}")]
    if "eval loss" in series:
        summary.append(("Best eval loss", f"{min(y for _, y in series['eval loss']):.4f}"))
    return out + _table(("", ""), summary)


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
