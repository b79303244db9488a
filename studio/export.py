"""Export a finished run: adapter, merged 16-bit model, GGUF, Ollama, bitsandbytes 4-bit.

Owns `export_run` (one entry point for the Export tab and `python -m studio export`), the choice
of source (final adapter/model or a checkpoint), merging on a FRESH copy of the base (never the
chat model), the free-space check, and the all-or-nothing folder: everything is written into a
hidden sibling folder that is renamed into place only when the export and its check succeeded.
The format writers live in studio.export_formats, GGUF encoding in studio.export_gguf, the
Modelfile in studio.ollama, the README in studio.model_card, the HTML report in studio.report and
the Hub push in studio.hub.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from studio.errors import StudioError
from studio.export_formats import (export_adapter, export_bnb4, export_gguf, export_merged, load_merged,
                                   resolve_base, tokenizer_dir)
from studio.model_card import RunInfo, human_size, load_run, model_card

FORMATS = ("adapter", "merged", "gguf", "ollama", "bnb4")
DTYPES = {"adapter": (), "merged": ("bf16", "f16"), "bnb4": ("bf16", "f16"),
          "gguf": ("f16", "bf16", "q8_0", "q4_0"), "ollama": ("f16", "bf16", "q8_0", "q4_0")}
DEFAULT_DTYPE = {"adapter": "", "merged": "bf16", "bnb4": "bf16", "gguf": "q8_0", "ollama": "q8_0"}
ProgressFn = Callable[[float, str], None]


@dataclass
class ExportResult:
    format: str
    dtype: str
    out_dir: Path
    files: list[tuple[str, int]] = field(default_factory=list)
    verification: str = ""
    seconds: float = 0.0
    report: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "dtype": self.dtype, "out_dir": str(self.out_dir),
                "files": [{"name": n, "bytes": s} for n, s in self.files],
                "total_bytes": sum(s for _, s in self.files), "verification": self.verification,
                "seconds": round(self.seconds, 2), "report": self.report}

    def summary(self) -> str:
        rows = "\n".join(f"| `{n}` | {human_size(s)} |" for n, s in self.files)
        return (f"**Exported {self.format}{f' ({self.dtype})' if self.dtype else ''}** to `{self.out_dir}` in "
                f"{self.seconds:.1f} s\n\n**Check:** {self.verification}\n\n| File | Size |\n|---|---|\n{rows}")


# -- run folder ----------------------------------------------------------------------------------
def list_checkpoints(run_dir: str | Path) -> list[str]:
    """'final' (adapter/ or model/) if present, then checkpoint-N folders, newest first."""
    run_dir = Path(run_dir)
    out = ["final"] if (run_dir / "adapter").is_dir() or (run_dir / "model").is_dir() else []
    ck = run_dir / "checkpoints"
    names = [p.name for p in ck.iterdir() if p.is_dir()] if ck.is_dir() else []
    return out + sorted(names, key=lambda n: int(n.rsplit("-", 1)[-1]) if n.rsplit("-", 1)[-1].isdigit() else -1,
                        reverse=True)


def resolve_source(info: RunInfo, checkpoint: str | None) -> tuple[str, Path]:
    """('adapter' | 'full', folder) of the weights to export."""
    if checkpoint in (None, "", "final"):
        cands = [info.run_dir / "adapter", info.run_dir / "model"]
        src = next((c for c in cands if c.is_dir()), None)
        if src is None:
            state = info.status.get("state", "unknown")
            raise StudioError(f"Run {info.run_dir.name} has no adapter/ or model/ folder yet (state: {state}). "
                              "Wait until training finishes, or pick a checkpoint.")
    else:
        src = info.run_dir / "checkpoints" / checkpoint
        if not src.is_dir():
            have = ", ".join(list_checkpoints(info.run_dir)) or "none"
            raise StudioError(f"Checkpoint '{checkpoint}' not found in {info.run_dir.name}; available: {have}.")
    if (src / "adapter_config.json").is_file():
        return "adapter", src
    if (src / "config.json").is_file():
        return "full", src
    raise StudioError(f"{src} holds neither a PEFT adapter (adapter_config.json) nor a model (config.json).")


def _weights_bytes(folder: str | Path) -> int:
    folder = Path(folder)
    return sum(f.stat().st_size for f in folder.glob("*.safetensors")) if folder.is_dir() else 0


def _n_params(kind: str, src: Path, base: str) -> int:
    """Parameter count from the stored weight files (their dtype from config.json)."""
    folder = Path(src if kind == "full" else base)
    try:
        dt = json.loads((folder / "config.json").read_text()).get("dtype") or \
            json.loads((folder / "config.json").read_text()).get("torch_dtype", "float32")
    except (OSError, ValueError):
        dt = "float32"
    return int(_weights_bytes(folder) / (4 if dt == "float32" else 2))


def estimate_bytes(fmt: str, dtype: str, n_params: int, adapter_bytes: int) -> int:
    from studio.export_gguf import BYTES_PER_WEIGHT

    body = {"adapter": adapter_bytes, "merged": 2 * n_params, "bnb4": int(2.6 * n_params)}.get(fmt)
    if body is None:
        body = int(n_params * BYTES_PER_WEIGHT[dtype])
    return int(body * 1.05) + 16 * 2**20  # 5% + 16 MiB for tokenizer, card and file overhead


def check_disk(folder: Path, need: int) -> None:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need:
        raise StudioError(f"Not enough free disk space in {probe}: this export needs about "
                          f"{human_size(need)}, {human_size(free)} is free. Free some space or choose an "
                          "output folder on another disk.")


@contextlib.contextmanager
def staged_dir(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a hidden sibling folder; rename it to `out` on success, delete it on any failure."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise StudioError(f"{out} already exists and is not empty. Choose a new output folder or allow "
                              "overwriting (--overwrite).")
        card = out / "README.md"
        if not (card.is_file() and "Fine-Tune Studio" in card.read_text(errors="replace")):
            raise StudioError(f"{out} is not an earlier export (no Fine-Tune Studio README.md), so it is not "
                              "replaced. Choose an empty or new output folder.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # mkdir (not mkdtemp, which makes 0700 folders) so the export gets the usual permissions.
        tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
    except OSError as e:
        raise StudioError(f"Cannot write to {out.parent}: {e.strerror or e}. Choose a folder you can write to.") from None
    try:
        yield tmp
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        text = str(e)
        if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left" in text or "os error 28" in text:
            raise StudioError(f"Export failed: disk full while writing to {out.parent}. The partial files were "
                              "removed. Free some disk space (or choose an output folder on another disk) and "
                              "export again.") from None
        if isinstance(e, OSError):
            raise StudioError(f"Export failed while writing to {out.parent}: {e.strerror or e}. The partial "
                              "files were removed.") from None
        raise
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def export_run(run_dir: str | Path, fmt: str, out: str | Path | None = None, dtype: str | None = None,
               checkpoint: str | None = None, overwrite: bool = False, max_shard_size: str = "2GB",
               progress: ProgressFn | None = None) -> ExportResult:
    """Export one run in one format into `out` (default RUN_DIR/exports/<format>[-<dtype>])."""
    started = time.time()
    prog: ProgressFn = progress or (lambda f, m: None)
    if fmt not in FORMATS:
        raise StudioError(f"Unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}.")
    dtype = dtype or DEFAULT_DTYPE[fmt]
    if fmt == "adapter":
        dtype = ""
    elif dtype not in DTYPES[fmt]:
        raise StudioError(f"Type '{dtype}' does not fit the {fmt} format; choose one of: {', '.join(DTYPES[fmt])}.")
    if fmt == "bnb4":
        import torch

        if not torch.cuda.is_available():
            raise StudioError("The bitsandbytes 4-bit export needs a CUDA GPU, and none is visible. Run it on a "
                              "GPU machine, or use 'gguf' with q4_0 for a small CPU-friendly file.")
    info = load_run(run_dir)
    kind, src = resolve_source(info, checkpoint)
    if fmt == "adapter" and kind == "full":
        raise StudioError("This run fine-tuned the full model, so there is no adapter to export: choose 'merged' or 'gguf'.")
    out = Path(out).expanduser().resolve() if out else info.run_dir / "exports" / (fmt + (f"-{dtype}" if dtype else ""))
    if out == info.run_dir or out in (src, info.run_dir / "adapter", info.run_dir / "model") \
            or out in src.parents or src in out.parents:
        raise StudioError(f"The output folder {out} would replace the run's own files; choose another folder "
                          "(the default is RUN/exports/FORMAT-TYPE).")
    base = resolve_base(info.base_model)
    n_params = _n_params(kind, src, base)
    check_disk(out.parent, estimate_bytes(fmt, dtype, n_params, _weights_bytes(src)))
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in info.name).strip("-") or "model"
    gguf_file = {"gguf": f"{slug}-{dtype}.gguf", "ollama": "model.gguf"}.get(fmt, "")
    with staged_dir(out, overwrite) as tmp:
        if fmt == "adapter":
            prog(0.1, "copying the adapter")
            check = export_adapter(src, tmp, tokenizer_dir(src, info, base))
        else:
            model, tok, merge_check = load_merged(info, kind, src, prog, n_params)
            prog(0.3, f"writing {fmt}")
            if fmt == "merged":
                check = export_merged(model, tok, tmp, dtype, max_shard_size)
            elif fmt == "bnb4":
                check = export_bnb4(model, tok, tmp)
            else:
                check = export_gguf(model, tok, tmp / gguf_file, dtype, info.name, prog)
                if fmt == "ollama":
                    from studio.ollama import modelfile

                    (tmp / "Modelfile").write_text(modelfile(tok, model.config, model.generation_config,
                                                             slug.lower(), gguf_file))
            check = f"{merge_check}; {check}"
        prog(0.95, "writing the model card")
        files = _files(tmp)
        (tmp / "README.md").write_text(model_card(info, fmt, dtype, files, check, gguf_file, checkpoint or "final"), encoding="utf-8")
        files = _files(tmp)
    result = ExportResult(fmt, dtype, out, files, check)
    try:
        from studio.report import write_report

        result.report = str(write_report(info))
    except Exception as e:  # noqa: BLE001 - the export itself succeeded; the report is a bonus
        result.report = f"run report not written: {getattr(e, 'strerror', None) or e}"
    result.seconds = time.time() - started
    prog(1.0, "done")
    return result


def _files(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(f.relative_to(folder)), f.stat().st_size) for f in folder.rglob("*")
                  if f.is_file() and not f.name.startswith("."))


# -- CLI -----------------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m studio export", description="Export a run folder.")
    p.add_argument("run_dir", help="the run folder (runs/<date>-<name>)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--dtype", help="merged/bnb4: bf16|f16 (default bf16); gguf/ollama: f16|bf16|q8_0|q4_0 (default q8_0)")
    p.add_argument("--out", help="output folder (default RUN_DIR/exports/FORMAT-DTYPE)")
    p.add_argument("--checkpoint", help="checkpoint-N instead of the final weights")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--max-shard-size", default="2GB", help="merged: largest safetensors file (default 2GB)")
    p.add_argument("--push-to", metavar="USER/NAME", help="then push to this Hub repo (token from $HF_TOKEN)")
    p.add_argument("--private", action="store_true", help="create the Hub repo as private")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    a = p.parse_args(argv)
    from tqdm import tqdm

    bar = tqdm(total=100, bar_format="{desc:<44}{bar}| {n:.0f}%", disable=a.json, delay=0.5)

    def progress(frac: float, msg: str) -> None:
        bar.set_description_str(msg[:44])
        bar.update(max(0.0, 100 * frac - bar.n))

    try:
        res = export_run(a.run_dir, a.format, a.out, a.dtype, a.checkpoint, a.overwrite, a.max_shard_size, progress)
        out = res.to_dict()
        if a.push_to:
            from studio.hub import push_folder

            out["hub_url"] = push_folder(res.out_dir, a.push_to, os.environ.get("HF_TOKEN", ""), a.private)
    except StudioError as e:
        bar.close()
        if a.json:
            print(json.dumps({"ok": False, "error": str(e)}))
            return 2
        raise
    bar.close()
    if a.json:
        print(json.dumps({"ok": True, **out}, indent=2))
    else:
        print(f"Exported {a.format} to {res.out_dir} ({human_size(sum(s for _, s in res.files))})\n"
              f"check: {res.verification}\nreport: {res.report}" + (f"\nhub: {out['hub_url']}" if a.push_to else ""))
    return 0
