"""How each export format is made: merging on a fresh base copy, then adapter / merged / GGUF / 4-bit.

Owns loading the weights to export (a LoRA adapter merged into a FRESH copy of the base, checked on
the spot by comparing logits, or a full fine-tune's model folder) and one writer per format, each
writing into the staging folder it is given and returning a one-line check result. It does not
choose folders, check disk space or clean up after failures (studio.export does that).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

from studio.errors import StudioError
from studio.model_card import RunInfo

ProgressFn = Callable[[float, str], None]
# Trainer state that a checkpoint folder carries but an exported adapter must not.
_TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json", "training_args.bin", "README.md")


def resolve_base(name: str) -> str:
    """A local folder (as given, or relative to the repo) or the hub id, loaded from cache only."""
    from studio.paths import REPO_ROOT

    p = Path(name).expanduser()
    for cand in (p, REPO_ROOT / p):
        if cand.is_dir():
            return str(cand.resolve())
    return name


def tokenizer_dir(src: Path, info: RunInfo, base: str) -> str:
    for cand in (src, info.run_dir / "adapter"):
        if (cand / "tokenizer_config.json").is_file() or (cand / "tokenizer.json").is_file():
            return str(cand)
    return base


def load_dtype(n_params: int) -> Any:
    """float32 when it fits comfortably in free RAM (exact merge), else bfloat16 (half the memory)."""
    import torch

    from studio.hardware import cpu_ram

    free_gib = cpu_ram().get("ram_free_gib")
    fits = free_gib is None or 4 * n_params / 2**30 < 0.6 * free_gib  # keep 40% for the merge and OS
    return torch.float32 if fits else torch.bfloat16


def load_merged(info: RunInfo, kind: str, src: Path, progress: ProgressFn, n_params: int = 0) -> tuple[Any, Any, str]:
    """(model with the adapter merged in, tokenizer, check text), on the CPU.

    The merge is checked on the spot: logits of adapter-on-base and of the merged weights for one
    probe sentence must agree, so a broken merge never reaches a file.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = resolve_base(info.base_model)
    if kind == "adapter":
        peft_type = json.loads((src / "adapter_config.json").read_text()).get("peft_type", "LORA")
        if "LORA" not in str(peft_type).upper():
            raise StudioError(f"A {peft_type} adapter cannot be merged into the weights; export the adapter instead.")
    dtype = load_dtype(n_params)
    try:
        tok = AutoTokenizer.from_pretrained(tokenizer_dir(src, info, base))
        progress(0.05, "loading weights")
        if kind == "full":
            return AutoModelForCausalLM.from_pretrained(str(src), dtype=dtype), tok, "full model (no merge needed)"
        model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    except OSError as e:
        raise StudioError(f"Cannot load the base model '{info.base_model}': {str(e)[:200]}. Merging needs "
                          "the base weights: restore that folder or keep the model in the local HF cache.") from None
    from peft import PeftModel

    model = PeftModel.from_pretrained(model, str(src))
    progress(0.2, "merging the adapter into a fresh copy of the base")
    ids = torch.tensor([tok("Merging check: the quick brown fox.")["input_ids"][:32] or [0]])
    model.eval()
    with torch.no_grad():
        before = model(input_ids=ids).logits.float()
        model = model.merge_and_unload()
        after = model(input_ids=ids).logits.float()
    err = float((before - after).abs().max() / before.abs().max().clamp(min=1e-6))
    # float32 merges agree to ~1e-6; bfloat16 rounds each merged weight to 8 bits of mantissa.
    if err > (1e-3 if dtype == torch.float32 else 5e-2):
        raise StudioError(f"Merging changed the model's outputs (relative logit error {err:.1e}); the adapter "
                          "does not fit this base model. Check model.name_or_path in the run's config.")
    return model, tok, f"merged logits match adapter-on-base (max relative error {err:.1e}, {str(dtype)[6:]})"


# -- formats -------------------------------------------------------------------------------------
def export_adapter(src: Path, tmp: Path, tok_dir: str) -> str:
    from safetensors import safe_open

    for f in src.iterdir():
        if f.is_file() and f.name not in _TRAINING_STATE and not f.name.startswith("rng_state"):
            shutil.copy2(f, tmp / f.name)
    if tok_dir != str(src):
        for f in Path(tok_dir).iterdir():
            if f.is_file() and ("token" in f.name or f.name in ("chat_template.jinja", "vocab.json", "merges.txt")):
                shutil.copy2(f, tmp / f.name)
    weights = tmp / "adapter_model.safetensors"
    if not weights.is_file():
        raise StudioError(f"{src} has no adapter_model.safetensors; was the adapter saved completely?")
    with safe_open(str(weights), "pt") as fh:
        n = len(list(fh.keys()))
    json.loads((tmp / "adapter_config.json").read_text())
    return f"adapter_config.json parses; {n} adapter tensors readable"


def export_merged(model: Any, tok: Any, tmp: Path, dtype: str, shard: str) -> str:
    import torch

    model.to(torch.bfloat16 if dtype == "bf16" else torch.float16)
    n = len(model.state_dict())
    model.save_pretrained(str(tmp), max_shard_size=shard)
    tok.save_pretrained(str(tmp))
    from safetensors import safe_open

    stored = 0
    for f in tmp.glob("*.safetensors"):
        with safe_open(str(f), "pt") as fh:
            stored += len(list(fh.keys()))
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    if stored < n - int(tied):
        raise StudioError(f"Only {stored} of {n} tensors reached the safetensors files; export again.")
    return f"{stored} tensors saved in {dtype}"


def export_gguf(model: Any, tok: Any, path: Path, dtype: str, name: str, progress: ProgressFn) -> str:
    from studio.export_gguf import verify_gguf, write_gguf

    plan = write_gguf(path, model.state_dict(), model.config, tok, dtype, name,
                      lambda f, m: progress(0.3 + 0.55 * f, m))
    progress(0.88, "reading the GGUF back to verify it")
    check = verify_gguf(path, plan, model.config, tok)
    if not check["ok"]:
        raise StudioError("The GGUF file failed its read-back check, so it was not kept: "
                          + "; ".join(check["problems"][:5]))
    worst = ", ".join(f"{k} {v:.1e}" for k, v in sorted(check["worst"].items()))
    return f"GGUF read back: {check['tensors']} tensors match the merged weights (worst relative error: {worst}); vocab and chat template present"


def export_bnb4(model: Any, tok: Any, tmp: Path) -> str:
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    staging = tmp / ".merged16"
    model.to(torch.bfloat16).save_pretrained(str(staging))
    del model
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.bfloat16)
    qmodel = AutoModelForCausalLM.from_pretrained(str(staging), quantization_config=q, device_map={"": 0})
    qmodel.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    shutil.rmtree(staging)
    return "nf4 4-bit (double quantization) weights saved; loads with bitsandbytes on CUDA"


