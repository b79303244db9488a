"""Builds what a training stage needs from a RunConfig: tokenizer, model, adapter, data, TRL args.

Owns the mapping from our settings to transformers / peft / bitsandbytes / TRL objects. It does
not run training or touch status files (that is `studio.train.worker`). Heavy imports happen
inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from studio import paths
from studio.config import RunConfig
from studio.errors import StudioError

# Which dataset layout each stage trains on (names from studio.data.prepare_for_training).
STAGE_TARGET = {"sft": "messages", "pretrain": "text", "dpo": "preference", "reward": "preference",
                "grpo": "prompt_completion"}  # GRPO samples its own completions from the prompts


def resolve_model_path(name_or_path: str) -> str:
    """A local folder (relative to the cwd, then the repo) or, failing that, the hub id as given.

    The embedded demo model is built on first use, so a fresh clone trains without downloads.
    """
    local = _local(name_or_path)
    if local:
        return local
    p = Path(name_or_path).expanduser()
    demo = paths.demo_model_dir()
    if p.name == demo.name and p.parent.name == demo.parent.name:
        from studio.demo import ensure_demo

        return str(ensure_demo())
    if p.is_absolute() or name_or_path.startswith((".", "~")) or name_or_path.count("/") > 1:
        raise StudioError(f"Model folder not found: {name_or_path}. Check the path, or use the demo "
                          "model (assets/demo-model) or a hub id like Qwen/Qwen2.5-0.5B-Instruct.")
    return name_or_path  # a hub id: transformers resolves it (and says so clearly when offline)


def resolve_data_path(path: str) -> str:
    return _local(path) or path  # else maybe a hub dataset id; the loader reports it clearly if not


def _local(path: str) -> str | None:
    """An existing local path: absolute, or relative to the working directory, then the repo."""
    p = Path(path).expanduser()
    for cand in ([p] if p.is_absolute() else [Path.cwd() / p, paths.REPO_ROOT / p]):
        if cand.exists():
            return str(cand.resolve())
    return None


def device_info(cfg: RunConfig) -> dict[str, Any]:
    """Where and in which precision this stage trains: cpu/cuda/mps and bf16/fp16/fp32."""
    import torch

    cuda = torch.cuda.is_available() and not cfg.training.use_cpu
    mps = (not cuda and not cfg.training.use_cpu and getattr(torch.backends, "mps", None) is not None
           and torch.backends.mps.is_available())
    prec = cfg.training.precision
    if prec == "auto":
        if cuda:
            prec = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            prec = "fp32"  # bf16 autocast on CPU is slower than fp32 on most CPUs
    if prec == "fp16" and not cuda:
        raise StudioError("fp16 mixed precision needs an NVIDIA GPU: set training.precision to fp32 "
                          "(or bf16) to train on this machine.")
    if prec == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise StudioError("This GPU has no bf16 support (older than Ampere): set training.precision to fp16.")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[prec]
    return {"device": "cuda" if cuda else ("mps" if mps else "cpu"), "precision": prec, "dtype": dtype}


def load_tokenizer(model_path: str, cfg: RunConfig):
    from transformers import AutoTokenizer

    from studio.chat_template import CHAT_TEMPLATE

    try:
        tok = AutoTokenizer.from_pretrained(model_path, trust_remote_code=cfg.model.trust_remote_code)
    except OSError as e:
        raise StudioError(f"Could not load the tokenizer of '{model_path}': {e}. Give a local model folder "
                          "(with tokenizer files) or a hub id that is reachable from this machine.") from None
    if tok.pad_token is None:
        # Padding with EOS would mask EOS out of the labels; a dedicated pad id is safer, but adding a
        # token resizes the embeddings, so reuse EOS only as the last resort.
        tok.pad_token = tok.unk_token or tok.eos_token
    if not tok.chat_template and cfg.stage in ("sft", "dpo", "reward", "grpo"):
        tok.chat_template = CHAT_TEMPLATE  # base models without one get our ChatML template
    return tok


def _random_init_folder(model_path: str, dtype) -> str:
    """Random weights of `model_path`'s config.json saved once next to it (for QLoRA benchmarks,
    which need a checkpoint on disk to quantize while loading)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = Path(os.environ.get("STUDIO_CACHE", "/tmp/studio-cache")) / ("random-" + Path(model_path).name)
    if not (out / "config.json").exists():
        config = AutoConfig.from_pretrained(model_path)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        model.save_pretrained(out)
    return str(out)


def load_model(model_path: str, cfg: RunConfig, info: dict[str, Any], reward: bool = False):
    """The model for one stage, in the right dtype, quantized for QLoRA, with attention picked."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    attn = cfg.model.attn_implementation
    if attn == "flash_attention_2":
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            print("flash-attn is not installed: using SDPA attention instead.", flush=True)
            attn = "sdpa"
    kwargs: dict[str, Any] = {"dtype": info["dtype"], "attn_implementation": attn,
                              "trust_remote_code": cfg.model.trust_remote_code}
    if cfg.adapter == "qlora":
        if info["device"] != "cuda":
            print("QLoRA on CPU: bitsandbytes' CPU kernels are slow; prefer LoRA here.", flush=True)
        from transformers import BitsAndBytesConfig

        compute = info["dtype"] if info["dtype"] != torch.float32 else torch.bfloat16
        fsdp = os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true"  # set by `accelerate launch`
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
            # FSDP can only shard 4-bit weights stored in a float dtype; stored as uint8 they are
            # left whole on every GPU (accelerate warns "Excluding from FSDP2 sharding").
            bnb_4bit_quant_storage=compute if fsdp else torch.uint8)
        if info["device"] == "cuda":
            kwargs["device_map"] = {"": torch.cuda.current_device()}
    cls = AutoModelForSequenceClassification if reward else AutoModelForCausalLM
    if reward:
        kwargs["num_labels"] = 1
    try:
        if cfg.model.random_init and cfg.adapter != "qlora":
            config = AutoConfig.from_pretrained(model_path, trust_remote_code=cfg.model.trust_remote_code)
            config._attn_implementation = attn
            if reward:
                config.num_labels = 1
            torch.manual_seed(cfg.training.seed)
            # Initialise straight on the GPU: an 8B random init on the CPU takes minutes.
            with torch.device("cuda") if info["device"] == "cuda" else contextlib.nullcontext():
                model = cls.from_config(config, dtype=info["dtype"])
        else:
            src = _random_init_folder(model_path, info["dtype"]) if cfg.model.random_init else model_path
            model = cls.from_pretrained(src, **kwargs)
    except OSError as e:
        raise StudioError(f"Could not load the model '{model_path}': {e}. Check the folder or hub id; "
                          "without internet only local folders work.") from None
    if reward and model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    return model


def peft_config(cfg: RunConfig, task_type: str = "CAUSAL_LM"):
    """The peft config for this adapter, or None for full fine-tuning."""
    from peft import LoraConfig, PrefixTuningConfig, PromptTuningConfig

    lo = cfg.lora
    if cfg.adapter in ("lora", "qlora"):
        targets = lo.target_modules.strip()
        targets = "all-linear" if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
        return LoraConfig(r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout, target_modules=targets,
                          use_dora=lo.use_dora, use_rslora=lo.use_rslora, task_type=task_type)
    if cfg.adapter == "prompt_tuning":
        return PromptTuningConfig(num_virtual_tokens=lo.num_virtual_tokens, task_type=task_type)
    if cfg.adapter == "prefix_tuning":
        return PrefixTuningConfig(num_virtual_tokens=lo.num_virtual_tokens, task_type=task_type)
    return None


def load_data(cfg: RunConfig, run_dir: Path, tok=None):
    """(train, eval or None) in the layout the stage's trainer wants; eval rows go to eval.jsonl.
    `tok`: the model's tokenizer; tool calls stay structured when its template renders them."""
    from studio.data import prepare_for_training
    from studio.data.tools import template_renders_tools

    target = STAGE_TARGET[cfg.stage]
    d = cfg.data
    tool_template = template_renders_tools(tok)
    ds = prepare_for_training(resolve_data_path(d.path), fmt=d.format, target=target,
                              column_map=d.column_map or None, skip_invalid=d.skip_invalid,
                              tool_template=tool_template)
    if d.max_rows and len(ds) > d.max_rows:
        ds = ds.select(range(d.max_rows))
    if len(ds) == 0:
        raise StudioError(f"The dataset {d.path} has no usable rows for {cfg.stage}. Check it in the Data tab.")
    eval_ds = None
    if d.eval_path:
        eval_ds = prepare_for_training(resolve_data_path(d.eval_path), fmt=d.format, target=target,
                                       column_map=d.column_map or None, skip_invalid=d.skip_invalid,
                                       tool_template=tool_template)
    elif d.eval_fraction > 0:
        if len(ds) < 4:
            raise StudioError("Too few rows to hold out an eval split: set data.eval_fraction to 0.")
        split = ds.train_test_split(test_size=d.eval_fraction, seed=cfg.training.seed)
        ds, eval_ds = split["train"], split["test"]
    if eval_ds is not None:
        with open(run_dir / "eval.jsonl", "w", encoding="utf-8") as f:
            for row in eval_ds:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return ds, eval_ds


def trainer_kwargs(cfg: RunConfig, run_dir: Path, info: dict[str, Any], has_eval: bool) -> dict[str, Any]:
    """Arguments shared by every TRL config class (SFTConfig, DPOConfig, RewardConfig, GRPOConfig)."""
    t = cfg.training
    save_strategy = "steps" if t.save_steps > 0 else "epoch"
    eval_strategy = "no"
    if has_eval:
        eval_strategy = "steps" if t.eval_steps > 0 else "epoch"
    kw: dict[str, Any] = dict(
        output_dir=str(run_dir / "checkpoints"), num_train_epochs=t.epochs, max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum, learning_rate=t.learning_rate,
        lr_scheduler_type=t.scheduler, warmup_steps=t.warmup, weight_decay=t.weight_decay, optim=t.optim,
        bf16=info["precision"] == "bf16", fp16=info["precision"] == "fp16",
        use_cpu=info["device"] == "cpu", activation_checkpointing=t.gradient_checkpointing,
        seed=t.seed, data_seed=t.seed, logging_steps=t.logging_steps, save_strategy=save_strategy,
        save_total_limit=t.save_total_limit, eval_strategy=eval_strategy,
        report_to=installed_trackers(t.report_to), torch_compile=t.torch_compile,
        use_liger_kernel=t.liger and liger_available(), dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding", disable_tqdm=False,
        ddp_find_unused_parameters=False,  # adapters and full models use every parameter each step
    )
    # Trackers: the run folder's name names the run; trackio stays local (no Space) and groups
    # every studio run in one project, so `trackio show --project fine-tune-studio` compares them.
    kw["run_name"] = run_dir.name
    if _has_arg("project"):
        kw["project"] = "fine-tune-studio"
    if not _has_arg("activation_checkpointing"):  # transformers < 5.20 names it the old way
        kw["gradient_checkpointing"] = kw.pop("activation_checkpointing")
    if t.save_steps > 0:
        kw["save_steps"] = t.save_steps
    if has_eval and t.eval_steps > 0:
        kw["eval_steps"] = t.eval_steps
    if has_eval:
        # Keep the best checkpoint by eval loss (early stopping needs it too); checkpoints must
        # line up with evaluations for that.
        kw.update(load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False)
        if eval_strategy == "steps":
            kw["save_strategy"], kw["save_steps"] = "steps", kw["eval_steps"]
        else:
            kw["save_strategy"] = "epoch"
    return kw


def _has_arg(name: str) -> bool:
    import dataclasses

    from transformers import TrainingArguments

    return name in {f.name for f in dataclasses.fields(TrainingArguments)}


def liger_available() -> bool:
    try:
        import liger_kernel  # noqa: F401
        import torch

        return torch.cuda.is_available()  # Liger's Triton kernels need a GPU
    except ImportError:
        return False


def installed_trackers(wanted: list[str]) -> list[str]:
    """report_to values whose package is installed; the rest are skipped with a note in the log."""
    import importlib.util

    pkg = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb", "mlflow": "mlflow"}
    out = []
    for w in wanted:
        if importlib.util.find_spec(pkg.get(w, w)) is not None:
            out.append(w)
        else:
            print(f"Tracking with {w} skipped: the '{pkg.get(w, w)}' package is not installed.", flush=True)
    return out or ["none"]
