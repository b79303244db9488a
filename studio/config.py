"""RunConfig: the one configuration that flows from the UI (or a YAML file) to the training worker.

Owns the dataclasses, YAML load/save with type checking, and `validate()`, which returns every
problem at once as plain sentences that say what to change. It does not know how to train; the
worker in `studio.train` reads a RunConfig and does that.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from studio.errors import StudioError

STAGES = ("sft", "pretrain", "dpo", "reward", "grpo")
ADAPTERS = ("full", "lora", "qlora", "prompt_tuning", "prefix_tuning")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit", "adafactor", "sgd")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_min_lr")
DATA_FORMATS = ("auto", "alpaca", "sharegpt", "messages", "prompt_completion", "preference", "text")
ATTENTION = ("sdpa", "eager", "flash_attention_2")
DISTRIBUTED = ("ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3")
TRACKERS = ("tensorboard", "trackio", "wandb", "mlflow")


@dataclass
class ModelConfig:
    name_or_path: str = "assets/demo-model"  # hub id or local folder
    attn_implementation: str = "sdpa"  # flash_attention_2 only where the package is installed
    trust_remote_code: bool = False  # runs code shipped with the model: off unless you trust it
    random_init: bool = False  # benchmarks only: random weights of the folder's config.json shape


@dataclass
class DataConfig:
    path: str = "assets/data/messages.jsonl"  # file, datasets folder, or hub dataset id
    format: str = "auto"  # detected from the columns when "auto"
    column_map: dict[str, str] = field(default_factory=dict)  # our name -> column in the file
    eval_path: str = ""  # separate eval file; else eval_fraction of `path` is held out
    eval_fraction: float = 0.0  # 0 = no eval split
    max_rows: int = 0  # 0 = all rows; handy for a quick try on a big file
    max_length: int = 512  # tokens per example; longer ones are truncated
    packing: bool = False  # several examples per row: fewer pad tokens, faster
    padding_free: bool = False  # no padding at all (needs packing or a flash-style kernel)
    completion_only: bool = True  # loss on assistant / completion tokens only
    skip_invalid: float = 0.05  # drop up to this fraction of broken rows (named in the log); more fails


@dataclass
class LoraSettings:
    r: int = 16  # rank: higher learns more and uses more memory
    alpha: int = 32  # scale; alpha = 2*r is a common start
    dropout: float = 0.05
    target_modules: str = "all-linear"  # or a comma list like "q_proj,v_proj"
    use_dora: bool = False  # weight-decomposed LoRA: a little better, slower
    use_rslora: bool = False  # rank-stabilised scaling: helps at high ranks
    num_virtual_tokens: int = 20  # prompt / prefix tuning only


@dataclass
class TrainingSettings:
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 4  # per device
    grad_accum: int = 1  # effective batch = batch_size * grad_accum * GPUs
    learning_rate: float = 2e-4  # LoRA likes 1e-4..2e-4; full fine-tuning 1e-5..5e-5
    scheduler: str = "cosine"
    warmup: float = 0.03  # < 1: fraction of steps; >= 1: number of steps
    weight_decay: float = 0.0
    optim: str = "adamw_torch"
    precision: str = "auto"  # auto = bf16 where supported, else fp16 on GPU, fp32 on CPU
    gradient_checkpointing: bool = False  # less memory, ~30% slower
    liger: bool = False  # fused Liger kernels where installed: less memory for logits
    torch_compile: bool = False
    seed: int = 42
    logging_steps: int = 1
    eval_steps: int = 0  # 0 = evaluate once per epoch when there is an eval split
    save_steps: int = 0  # 0 = checkpoint once per epoch
    save_total_limit: int = 2  # keep the best/latest N checkpoints
    early_stopping_patience: int = 0  # 0 = off; needs an eval split
    beta: float = 0.1  # DPO: how far the policy may move from the reference
    dpo_reference: str = "auto"  # auto: adapter-disabled policy for LoRA, a frozen copy for full
    num_generations: int = 4  # GRPO: completions per prompt (more = steadier, slower)
    max_new_tokens: int = 64  # GRPO: length of each sampled completion, in tokens
    reward: str = ""  # GRPO: a reward-model folder, or rules like "starts_with:Ahoy!,ends_with:Arr!"
    report_to: list[str] = field(default_factory=list)
    num_gpus: int = 1
    distributed: str = "ddp"
    use_cpu: bool = False  # force CPU even where a GPU exists
    auto_tune: bool = True  # on a GPU, let the studio pick the fastest settings that fit (see autotune.py)


@dataclass
class RunConfig:
    name: str = "run"
    stage: str = "sft"
    adapter: str = "lora"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    # Multi-stage: each entry is a partial RunConfig dict applied on top of this one; every stage
    # starts from the previous stage's output.
    stages: list[dict[str, Any]] = field(default_factory=list)

    # -- conversion -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> Path:
        """Write YAML atomically (temp file + rename) so a reader never sees half a config."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_yaml())
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "RunConfig":
        problems: list[str] = []
        cfg = _build(cls, data or {}, "", problems)
        if problems:
            raise StudioError("The config has problems:\n- " + "\n- ".join(problems), problems)
        return cfg

    @classmethod
    def from_yaml(cls, text: str) -> "RunConfig":
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise StudioError(f"The YAML is not valid{where}: {getattr(e, 'problem', e)}. "
                              "Check the indentation and the colons.") from None
        if data is not None and not isinstance(data, dict):
            raise StudioError("The YAML must be a mapping of settings (name: value), "
                              f"not a {type(data).__name__}.")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        if not path.is_file():
            raise StudioError(f"Config file not found: {path}. Give the path to a .yaml file, "
                              "for example presets/demo-cpu.yaml.")
        return cls.from_yaml(path.read_text(encoding="utf-8", errors="replace"))

    def merged(self, overrides: dict[str, Any]) -> "RunConfig":
        """A new RunConfig with `overrides` (a nested partial dict) applied on top."""
        return RunConfig.from_dict(deep_merge(self.to_dict(), overrides))

    def stage_configs(self) -> list["RunConfig"]:
        """The configs of each stage, in order; a single-stage run is a list of one."""
        if not self.stages:
            return [self]
        base = self.to_dict()
        base["stages"] = []
        return [RunConfig.from_dict(deep_merge(base, s)) for s in self.stages]

    # -- validation -------------------------------------------------------------------------
    def validate(self) -> list[str]:
        """Every problem with this config, as sentences that name the setting and the fix."""
        p: list[str] = []
        t, d, lo = self.training, self.data, self.lora
        _choice(p, "stage", self.stage, STAGES)
        _choice(p, "adapter", self.adapter, ADAPTERS)
        _choice(p, "training.precision", t.precision, PRECISIONS)
        _choice(p, "training.optim", t.optim, OPTIMIZERS)
        _choice(p, "training.scheduler", t.scheduler, SCHEDULERS)
        _choice(p, "data.format", d.format, DATA_FORMATS)
        _choice(p, "model.attn_implementation", self.model.attn_implementation, ATTENTION)
        _choice(p, "training.distributed", t.distributed, DISTRIBUTED)
        for r in t.report_to:
            _choice(p, "training.report_to", r, TRACKERS)
        if not self.name.strip():
            p.append("name is empty: give the run a short name, e.g. 'pirate-lora'.")
        elif any(c in self.name for c in "/\\\0") or self.name.startswith("."):
            p.append("name may not contain slashes or start with a dot: it becomes a folder name.")
        if not self.model.name_or_path.strip():
            p.append("model.name_or_path is empty: pick the demo model, a local folder or a hub id.")
        if not d.path.strip():
            p.append("data.path is empty: choose a dataset file (the Data tab has samples).")
        _range(p, "data.max_length", d.max_length, 16, 131072, "tokens")
        _range(p, "data.eval_fraction", d.eval_fraction, 0.0, 0.5)
        _range(p, "data.max_rows", d.max_rows, 0, 10**9)
        _range(p, "data.skip_invalid", d.skip_invalid, 0.0, 0.5)
        _range(p, "training.epochs", t.epochs, 0.0, 1000)
        _range(p, "training.batch_size", t.batch_size, 1, 4096)
        _range(p, "training.grad_accum", t.grad_accum, 1, 4096)
        _range(p, "training.learning_rate", t.learning_rate, 1e-8, 1.0)
        _range(p, "training.warmup", t.warmup, 0.0, 100000)
        _range(p, "training.weight_decay", t.weight_decay, 0.0, 1.0)
        _range(p, "training.logging_steps", t.logging_steps, 1, 100000)
        _range(p, "training.save_total_limit", t.save_total_limit, 1, 1000)
        _range(p, "training.num_gpus", t.num_gpus, 1, 64)
        _range(p, "training.beta", t.beta, 0.0, 10.0)
        if self.stage == "grpo" and not self.stages:  # in a multi-stage run each stage is checked below
            _range(p, "training.num_generations", t.num_generations, 2, 64)
            _range(p, "training.max_new_tokens", t.max_new_tokens, 1, 8192)
            if not t.reward.strip():
                p.append("GRPO needs a reward: set training.reward to a reward-model folder or rules like "
                         "'starts_with:Ahoy!' (or add a reward stage before it).")
        if t.max_steps <= 0 and t.epochs <= 0:
            p.append("Set training.epochs > 0 or training.max_steps > 0: otherwise nothing trains.")
        if self.adapter in ("lora", "qlora"):
            _range(p, "lora.r", lo.r, 1, 1024)
            _range(p, "lora.alpha", lo.alpha, 1, 4096)
            _range(p, "lora.dropout", lo.dropout, 0.0, 0.9)
            if not lo.target_modules.strip():
                p.append("lora.target_modules is empty: use 'all-linear' or a list like 'q_proj,v_proj'.")
        if self.adapter in ("prompt_tuning", "prefix_tuning"):
            _range(p, "lora.num_virtual_tokens", lo.num_virtual_tokens, 1, 512)
            if self.stage != "sft":
                p.append(f"{self.adapter} works with stage 'sft' only here; use LoRA for {self.stage}.")
        if t.early_stopping_patience > 0 and not (d.eval_fraction > 0 or d.eval_path):
            p.append("Early stopping needs an eval split: set data.eval_fraction (e.g. 0.1) or data.eval_path.")
        if d.padding_free and not d.packing:
            p.append("data.padding_free needs data.packing on (without packing, max_length is not enforced).")
        if self.stage == "pretrain" and d.format not in ("auto", "text"):
            p.append("Continued pre-training reads raw text: set data.format to 'text' or 'auto'.")
        if self.stage == "dpo" and d.format not in ("auto", "preference"):
            p.append("DPO needs preference pairs (prompt, chosen, rejected): set data.format to 'preference'.")
        if t.precision == "fp16" and self.adapter == "full":
            p.append("Full fine-tuning in fp16 is unstable (overflowing gradients): use bf16 or fp32.")
        if t.num_gpus > 1 and t.use_cpu:
            p.append("training.num_gpus > 1 and training.use_cpu contradict each other: pick one.")
        after_reward = False
        for i, s in enumerate(self.stages):
            if not isinstance(s, dict):
                p.append(f"stages[{i}] must be a mapping of settings, e.g. {{stage: sft}}.")
                continue
            try:
                sub = RunConfig.from_dict(deep_merge({**self.to_dict(), "stages": []}, s))
            except StudioError as e:
                p += [f"stages[{i}]: {x}" for x in e.problems]
                continue
            if sub.stage == "grpo" and after_reward and not sub.training.reward:
                sub.training.reward = "(the reward stage's model)"  # the worker fills it in
            after_reward = after_reward or sub.stage == "reward"
            p += [f"stages[{i}]: {x}" for x in sub.validate()]
        return p

    def check(self) -> "RunConfig":
        """Raise one StudioError listing every problem, or return self."""
        problems = self.validate()
        if problems:
            raise StudioError("The run config has problems:\n- " + "\n- ".join(problems), problems)
        return self


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _choice(p: list[str], name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        p.append(f"{name} is {value!r}; choose one of: {', '.join(allowed)}.")


def _range(p: list[str], name: str, value: float, lo: float, hi: float, unit: str = "") -> None:
    if not (lo <= value <= hi):
        u = f" {unit}" if unit else ""
        p.append(f"{name} is {value}{u}; it must be between {lo} and {hi}{u}.")


def _build(cls: type, data: Any, prefix: str, problems: list[str]) -> Any:
    """Build dataclass `cls` from a dict, collecting type problems instead of failing at the first."""
    if not isinstance(data, dict):
        problems.append(f"{prefix.rstrip('.') or 'config'} must be a mapping, not {type(data).__name__}.")
        return cls()
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            problems.append(f"Unknown setting '{prefix}{k}'. Known settings here: {', '.join(sorted(names))}.")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = _coerce(hints[f.name], data[f.name], prefix + f.name, problems)
    return cls(**{k: v for k, v in kwargs.items() if v is not _BAD})


_BAD = object()


def _coerce(tp: Any, value: Any, name: str, problems: list[str]) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, name + ".", problems)
    origin = typing.get_origin(tp)
    if origin in (list,):
        if value is None:
            return []
        if isinstance(value, str) and typing.get_args(tp) == (str,):
            return [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            problems.append(f"{name} must be a list, not {value!r}.")
            return _BAD
        return value
    if origin in (dict,):
        if value is None:
            return {}
        if not isinstance(value, dict):
            problems.append(f"{name} must be a mapping, not {value!r}.")
            return _BAD
        return value
    if origin in (types.UnionType, typing.Union):
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        problems.append(f"{name} must be true or false, not {value!r}.")
        return _BAD
    if tp is int:
        if isinstance(value, bool):
            problems.append(f"{name} must be a whole number, not {value!r}.")
            return _BAD
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        problems.append(f"{name} must be a whole number, not {value!r}.")
        return _BAD
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())  # YAML 1.1 reads "2e-4" as a string
            except ValueError:
                pass
        problems.append(f"{name} must be a number, not {value!r}.")
        return _BAD
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        problems.append(f"{name} must be text, not {value!r}.")
        return _BAD
    return value
