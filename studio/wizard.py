"""The wizard's decision tree: answers about a project -> an honest recommendation and a RunConfig.

Owns the questions (`Answers`), the decision (`recommend`: pure apart from the lazy VRAM estimate),
the short reasons shown to the user (paraphrasing the guides: prompting first, RAG for knowledge,
fine-tuning for style/format/behaviour, privacy or cost at scale). The CLI is studio.wizard_cli;
the memory check and its fixes are studio.wizard_fit. It does not read
hardware beyond `detect_hardware()` (a thin adapter over studio.hardware), own the memory model
(studio.vram), the preset files (studio.presets) or any widget (studio.ui.wizard_tab).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any


from studio.config import RunConfig
from studio.errors import StudioError
from studio.wizard_fit import fit_to_gpu

GOALS = ("style", "format", "task", "domain", "alignment", "knowledge")
PROMPTING = ("not_tried", "works", "partly", "fails")
DATA_KINDS = ("instructions", "chat", "preferences", "raw_text")
SIZES = ("auto", "small", "medium", "large")
METHODS = ("auto", "full", "lora", "qlora", "prompt_tuning")
# Qwen2.5 instruct sizes (label -> billions of parameters): one family, so sizes compare fairly.
MODEL_SIZES = {"0.5B": 0.49, "1.5B": 1.54, "3B": 3.09, "7B": 7.62, "14B": 14.8, "32B": 32.8, "72B": 72.7}
SIZE_CAP = {"small": "3B", "medium": "7B", "large": "72B", "auto": "7B"}  # 7-8B: the guides' sweet spot
FORMAT_KIND = {"alpaca": "instructions", "prompt_completion": "instructions", "sharegpt": "chat",
               "messages": "chat", "preference": "preferences", "text": "raw_text"}
STAGE_KIND = {"pretrain": "raw_text", "sft": "instructions", "dpo": "preferences", "reward": "preferences",
              "grpo": "preferences"}
PLACEHOLDER = {"raw_text": "data/domain_text.jsonl", "instructions": "data/examples.jsonl",
               "preferences": "data/preferences.jsonl"}
NO_BF16 = ("t4", "v100", "p100", "p40", "k80", "1080", "2080", "titan")  # pre-Ampere cards: fp16 only
GIB_PER_B = 1e9 / 2**30  # GiB in a billion bytes


@dataclass
class Answers:
    goal: str = "style"  # what the model should get better at; one of GOALS
    prompting: str = "partly"  # how far a good prompt with a few examples gets; one of PROMPTING
    needs_fresh_knowledge: bool = False  # answers depend on documents that change or are private
    needs_consistency: bool = False  # the same style / format / behaviour every time
    privacy: bool = False  # data may not leave your machines (no hosted API)
    cost_at_scale: bool = False  # many requests: a small model of your own would be cheaper
    n_examples: int = 0  # examples you have (pairs for preferences, documents for raw text)
    data_kinds: list[str] = field(default_factory=lambda: ["chat"])  # a subset of DATA_KINDS
    want_rl: bool = False  # a reusable reward model + RL instead of DPO (large projects)
    hardware: dict[str, Any] = field(default_factory=dict)  # {device: cuda|mps|cpu, gpu_name, free_gib, total_gib}
    model_size: str = "auto"  # one of SIZES
    method: str = "auto"  # one of METHODS; auto lets the wizard choose
    dataset_path: str = ""  # the file from the Data tab, used by the stages that read its kind of data
    dataset_stats: dict[str, Any] = field(default_factory=dict)  # rows, format, token lengths (p50/p95/max)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Answers":
        data = {k: v for k, v in (data or {}).items() if v is not None}
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise StudioError(f"Unknown wizard answers: {', '.join(unknown)}. Known: "
                              f"{', '.join(f.name for f in dataclasses.fields(cls))}.")
        if isinstance(data.get("data_kinds"), str):
            data["data_kinds"] = [k.strip() for k in data["data_kinds"].split(",") if k.strip()]
        return cls(**data).check()

    def check(self) -> "Answers":
        """Raise one StudioError naming every bad answer and the allowed values."""
        p = [f"{n} is {getattr(self, n)!r}; choose one of: {', '.join(ok)}." for n, ok in
             (("goal", GOALS), ("prompting", PROMPTING), ("model_size", SIZES), ("method", METHODS))
             if getattr(self, n) not in ok]
        bad = [str(k) for k in self.data_kinds or [] if k not in DATA_KINDS]
        if bad:
            p.append(f"data_kinds has {', '.join(bad)}; use any of: {', '.join(DATA_KINDS)}.")
        try:
            self.n_examples = int(self.n_examples or 0)
            if self.n_examples < 0:
                p.append("n_examples is negative: give the number of examples you have (0 if none).")
        except (TypeError, ValueError):
            p.append(f"n_examples must be a whole number, not {self.n_examples!r}.")
        if not isinstance(self.hardware, dict) or not isinstance(self.dataset_stats, dict):
            p.append("hardware and dataset_stats must be mappings, e.g. hardware: {device: cuda, gpu_name: "
                     "Tesla T4, free_gib: 14.6} (device cpu or mps without a name).")
        if p:
            raise StudioError("The wizard answers have problems:\n- " + "\n- ".join(p), p)
        return self


@dataclass
class Flag:
    kind: str  # "green" (a good sign for fine-tuning) or "red" (a reason to wait or to take care)
    text: str


@dataclass
class Recommendation:
    approach: str  # prompting | rag | fine_tune | not_yet
    flags: list[Flag] = field(default_factory=list)
    stage: str | None = None  # pretrain | sft | dpo | reward+rl | multi-stage
    stages: list[str] = field(default_factory=list)  # the stages in order, e.g. [pretrain, sft]
    method: str | None = None  # full | lora | qlora | prompt_tuning
    model_size: str | None = None  # "7B", or "demo" for the embedded model
    model: str | None = None
    reasons: list[str] = field(default_factory=list)
    config: RunConfig | None = None  # None unless the approach is fine_tune
    preset: str | None = None  # the closest shipped preset, for reference
    vram_peak_gib: float | None = None
    vram_fits: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "config": self.config.to_dict() if self.config else None}

    def to_text(self) -> str:
        title = {"prompting": "Start with prompting", "rag": "Use retrieval (RAG)", "fine_tune": "Fine-tune",
                 "not_yet": "Not yet: get more data first"}[self.approach]
        lines = [f"Recommendation: {title}"]
        if self.stages:
            lines.append(f"Plan: {' -> '.join(self.stages)} with {self.method} on {self.model}")
        lines += [f"  [{'+' if f.kind == 'green' else '!'}] {f.text}" for f in self.flags]
        lines += ["Why:"] + [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)


def detect_hardware() -> dict[str, Any]:
    """{device, gpu_name, free_gib, total_gib, num_gpus} of the first GPU via studio.hardware; never raises."""
    try:
        from studio import hardware

        gpus, ram = hardware.gpus(), hardware.cpu_ram() or {}
        if gpus:
            g = gpus[0]
            return {"device": "cuda", "gpu_name": g.name, "free_gib": round(g.free_gib, 2),
                    "total_gib": round(g.total_gib, 2), "num_gpus": len(gpus)}
        if hardware.mps_available():
            # Unified memory is shared with macOS and apps: about half of what is free can train.
            total = float(ram.get("ram_total_gib") or 16)
            return {"device": "mps", "gpu_name": "Apple silicon (MPS)", "total_gib": round(total, 1),
                    "free_gib": round(float(ram.get("ram_free_gib") or total) * 0.5, 1)}
        return {"device": "cpu", "ram_gib": ram.get("ram_total_gib")}
    except Exception as e:  # no hardware module yet, or a broken driver: the wizard still answers
        return {"device": "cpu", "note": f"Hardware could not be read ({type(e).__name__}); assuming a CPU."}


def _hw(a: Answers) -> dict[str, Any]:
    hw = dict(a.hardware or {})
    dev = str(hw.get("device") or ("cuda" if hw.get("gpu_name") or hw.get("free_gib") else "cpu")).lower()
    hw["device"] = dev if dev in ("cuda", "mps", "cpu") else "cpu"
    hw["free_gib"] = float(hw.get("free_gib") or hw.get("total_gib") or (8.0 if dev == "mps" else 0.0))
    hw["gpu_name"] = str(hw.get("gpu_name") or "")
    return hw


def _stats(d: dict[str, Any]) -> dict[str, Any]:
    """rows / format / token-length percentiles from the Data tab's stats, flat or under `tokens`."""
    tok = d.get("tokens") or d.get("token_lengths") or {}
    srcs = [tok, d] if isinstance(tok, dict) else [d]

    def pick(*keys):
        vals = [s.get(k) for k in keys for s in srcs]
        return next((v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)), None)
    return {"rows": pick("rows", "num_rows", "n_rows"), "format": d.get("format") or d.get("detected_format"),
            "p95": pick("p95", "p95_tokens")}


def recommend(answers: Answers) -> Recommendation:
    """Walk the decision tree: whether to fine-tune, which stages, which method and model, the config."""
    a = answers.check()
    st = _stats(a.dataset_stats)
    rec = Recommendation(approach="fine_tune")
    flag = lambda kind, text: rec.flags.append(Flag(kind, text))  # noqa: E731
    why = rec.reasons.append
    kinds = [k for k in DATA_KINDS if k in (a.data_kinds or [])]
    n = a.n_examples
    if st["rows"] is not None:
        if n and int(st["rows"]) != n:
            why(f"Your dataset has {int(st['rows'])} rows, so the wizard counts those instead of {n}.")
        n = int(st["rows"])
    fk = FORMAT_KIND.get(str(st["format"] or ""))
    if fk and fk not in kinds:
        if len(kinds) <= 1:
            why(f"Your dataset looks like {fk.replace('_', ' ')} data, so the plan follows the file.")
        kinds = [fk] if len(kinds) <= 1 else kinds + [fk]

    # 1. Prompting comes first and RAG is for knowledge: fine-tuning is not the first tool.
    if a.prompting == "not_tried":
        flag("red", "You have not tried a good prompt with a few worked examples yet.")
        why("Try prompting first: a clear instruction plus a few examples solves many tasks at no training "
            "cost. Keep 20-50 test questions to measure it, and fine-tune only if it falls short.")
        rec.approach = "prompting"
        return rec
    if a.needs_fresh_knowledge or a.goal == "knowledge":
        flag("red", "The answers depend on facts in documents that change or are private.")
        why("Use retrieval (RAG): look the facts up when the question comes. Fine-tuning does not reliably "
            "add new facts, can make the model invent more, and must be redone whenever they change.")
        if a.needs_consistency or a.goal in ("style", "format"):
            why("If you also need a fixed tone or format, you can fine-tune for that later, on top of retrieval.")
        rec.approach = "rag"
        return rec
    motives = [m for ok, m in (
        (a.needs_consistency or a.goal in ("style", "format", "task", "alignment"),
         "You need the same style, format or behaviour every time: that is what fine-tuning teaches best."),
        (a.goal == "domain", "You want fluency in a specialist field: its text teaches the vocabulary and phrasing."),
        (a.privacy, "Your data must stay in house: a model you fine-tune and run yourself never sends it out."),
        (a.cost_at_scale, "You serve many requests: a small fine-tuned model costs far less than a big prompted one."),
    ) if ok]
    if a.prompting == "works" and not (a.privacy or a.cost_at_scale):
        flag("red", "Prompting already does the job.")
        why("Keep the prompt: the model already does the task, and a prompt is cheaper to change than a model.")
        rec.approach = "prompting"
        return rec
    for m in motives:
        flag("green", m.split(":")[0] + ".")
    rec.reasons += motives
    if a.prompting == "works":
        why("Prompting works, so the prompted model's best answers can become your training examples.")
    elif a.prompting == "partly":
        flag("green", "Prompting gives uneven results: fine-tuning makes the good behaviour the default.")

    # 2. The data: its kind decides the stages, its amount whether to start now.
    plan = _stages(a, kinds or (["raw_text"] if a.goal == "domain" else ["chat"]), n, flag, why)
    rec.stages = plan
    rec.stage = plan[0] if len(plan) == 1 else ("reward+rl" if plan == ["reward", "grpo"] else "multi-stage")
    if n < 100:
        flag("red", f"{n or 'No'} examples: fewer than 100 is too few to fine-tune reliably.")
        why("Collect at least 100 good examples (500-1,000 is a sound start): write them, adapt a public "
            "dataset, or have a strong model draft them and check each by hand. Quality beats quantity.")
        rec.approach = "not_yet"
    elif n >= 500:
        flag("green", f"{n} examples: enough for a solid first run.")
    else:
        flag("red", f"{n} examples is thin: fine for one narrow task; anything broader needs more.")

    # 3. Method and model size from the hardware, then the config, checked against the VRAM estimate.
    hw = _hw(a)
    _method_and_size(a, hw, plan, rec, flag, why)
    if rec.approach != "fine_tune":
        return rec
    cfg = _config(a, hw, plan, rec, st, n, why)
    rec.config = fit_to_gpu(cfg, hw, rec, why) if hw["device"] != "cpu" else cfg
    rec.method = rec.config.adapter
    try:
        from studio.presets import preset_for

        rec.preset = preset_for({**hw, "total_gib": hw.get("total_gib") or hw["free_gib"]}, rec.method)
    except StudioError:
        rec.preset = None
    problems = rec.config.validate()
    if problems:  # a bug in the tree, not the user's mistake: never hand over a config that cannot run
        raise StudioError("The wizard built a config with problems:\n- " + "\n- ".join(problems), problems)
    return rec


def _stages(a: Answers, kinds: list[str], n: int, flag, why) -> list[str]:
    plan = []
    if "raw_text" in kinds:
        plan.append("pretrain")
        why("Raw domain text has no questions and answers, so it is learned by continued pre-training: "
            "the model reads your field's text and picks up its vocabulary.")
    if {"instructions", "chat"} & set(kinds):
        plan.append("sft")
        why("Example prompts with the answers you want are learned by supervised fine-tuning (SFT).")
    if "preferences" in kinds:
        if a.want_rl and n >= 10000:
            plan += ["reward", "grpo"]
            why("With 10,000+ preference pairs, a reward model plus reinforcement learning gives you a reusable "
                "judge; it is slower and harder to tune than DPO.")
        else:
            if a.want_rl:
                flag("red", "A reward model + RL needs 10,000+ preference pairs; the wizard chose DPO instead.")
            plan.append("dpo")
            why("Pairs of a better and a worse answer are learned by DPO: simpler and steadier than a reward "
                "model with RL. It starts from an instruction-tuned model.")
            if n < 500:
                flag("red", "DPO usually wants 500 to 10,000 preference pairs.")
    if a.goal == "alignment" and "preferences" not in kinds:
        flag("red", "Preferences are taught with chosen-vs-rejected pairs, and you have none yet.")
    if plan == ["pretrain"]:
        why("Continued pre-training alone will not make the model follow instructions better; add example "
            "answers later for an SFT stage.")
    if len(plan) > 1 and plan != ["reward", "grpo"]:
        why("The stages run in order, each starting from the model the previous one produced.")
    return plan


def _need_gib(size: str, method: str, seq: int = 1024, batch: int = 2) -> float:
    """Rough peak (GiB): bytes per parameter (weights, gradients, Adam) plus activations and logits."""
    bytes_per_param = {"full": 16.0, "lora": 2.0, "prompt_tuning": 2.0, "qlora": 0.6}[method]
    return MODEL_SIZES[size] * GIB_PER_B * bytes_per_param + 2.0 + 0.001 * seq * batch


def _method_and_size(a: Answers, hw: dict, plan: list[str], rec: Recommendation, flag, why) -> None:
    if hw["device"] == "cpu":
        rec.method, rec.model_size, rec.model = "lora", "demo", "assets/demo-model"
        flag("red", "No GPU found: real models train far too slowly on a CPU.")
        why("On a CPU you get the tiny demo model, to try the whole flow in minutes. For your own model, run "
            "the studio on a machine with an NVIDIA GPU (a free 16 GB T4 handles a 7B model with QLoRA).")
        return
    free = hw["free_gib"] * 0.9  # keep 10% for the allocator and other programs
    gpus = int(hw.get("num_gpus") or 1) if hw["device"] == "cuda" else 1
    if gpus > 1:
        # FSDP splits weights, gradients and optimizer state over the GPUs; activations and the
        # gather buffers are not split, hence 80%. The real estimate checks the result (wizard_fit).
        free = free * gpus * 0.8
    sizes = [s for s in MODEL_SIZES if MODEL_SIZES[s] <= MODEL_SIZES[SIZE_CAP[a.model_size]]]
    if a.model_size == "auto" and a.cost_at_scale:
        sizes = sizes[:3]
        why("For cost at scale the wizard keeps to 3B or smaller: cheap to serve, still good at one task.")
    methods = ["lora"] if hw["device"] == "mps" else ["lora", "qlora"]
    if a.method == "qlora" and hw["device"] == "mps":
        flag("red", "QLoRA's 4-bit kernels need an NVIDIA GPU; on a Mac the wizard uses LoRA.")
    elif a.method == "prompt_tuning" and plan != ["sft"]:
        flag("red", f"Prompt tuning only does single-stage SFT here; the wizard uses LoRA for {'/'.join(plan)}.")
    elif a.method != "auto":
        methods = [a.method]
    elif plan[0] == "pretrain" and hw["free_gib"] >= 40:
        methods = ["full"] + methods  # a large domain shift gains most from training every weight
    choice = None
    if methods[0] == "full" and len(methods) > 1:  # full by the wizard's choice: only for 1.5B and up
        choice = next((("full", s) for s in reversed(sizes) if MODEL_SIZES[s] >= 1.5
                       and _need_gib(s, "full") <= free), None)
        methods = methods[1:]
        if choice:
            why("A large domain shift gains most from training every weight, and this GPU has room for it.")
    # Otherwise the largest allowed size wins, with the fastest method that fits it (LoRA before QLoRA).
    choice = choice or next(((m, s) for s in reversed(sizes) for m in methods if _need_gib(s, m) <= free), None)
    if choice is None:
        choice = (methods[-1], "0.5B")
        flag("red", f"Even a 0.5B model is tight in {hw['free_gib']:.0f} GiB: free some GPU memory first.")
    rec.method, rec.model_size = choice
    rec.model = f"Qwen/Qwen2.5-{rec.model_size}-Instruct"
    gib = f"{hw['free_gib']:.0f} GiB"
    why({"full": f"Full fine-tuning of a {rec.model_size} model fits in {gib}: every weight learns, at ~16 "
                 "bytes per parameter.",
         "lora": f"LoRA on a {rec.model_size} model fits in {gib}: it trains small add-on matrices, keeps the "
                 "original weights and rarely forgets what the model knew.",
         "qlora": f"QLoRA stores the {rec.model_size} model in 4 bits so that it fits in {gib}; about 30% "
                  "slower than LoRA, with little loss in quality.",
         "prompt_tuning": "Prompt tuning learns only a few virtual tokens: the lightest method, weaker than LoRA.",
         }[rec.method])


def _config(a: Answers, hw: dict, plan: list[str], rec: Recommendation, st: dict, n: int, why) -> RunConfig:
    if hw["device"] == "cpu":
        try:
            from studio.presets import load_preset

            cfg = load_preset("demo-cpu")
        except StudioError:  # no preset file: the RunConfig defaults are the demo model and data
            cfg = RunConfig(name="demo")
            cfg.training.use_cpu = True
        if plan != ["sft"]:
            why(f"The demo trains SFT on the sample chat data; your {' -> '.join(plan)} plan needs a GPU.")
        return cfg
    m = rec.method
    seq = 1024
    if st["p95"]:
        seq = next((L for L in (256, 512, 1024, 2048, 4096, 8192) if L >= st["p95"]), 8192)
        why(f"95% of your examples are {int(st['p95'])} tokens or shorter, so examples are cut at {seq} tokens.")
    big = hw["free_gib"] >= 40
    old = any(re.search(rf"(?<![a-z0-9]){k}(?![a-z0-9])", hw["gpu_name"].lower()) for k in NO_BF16)
    # auto lets the worker pick bf16 or fp16 per card; full fine-tuning must never run in fp16.
    prec = ("fp32" if m == "full" else "fp16") if old else "bf16" if m == "full" and hw["device"] == "cuda" else "auto"
    fk = FORMAT_KIND.get(str(st["format"] or ""), "")
    ds_kind = {"chat": "instructions"}.get(fk, fk) or STAGE_KIND[plan[-1]]  # what the Data tab's file holds
    lrs = {"full": {"pretrain": 2e-5, "sft": 2e-5, "dpo": 5e-7, "reward": 1e-5, "grpo": 1e-6},
           "prompt_tuning": {"sft": 3e-2}}.get(m, {"pretrain": 1e-4, "sft": 2e-4, "dpo": 5e-6, "reward": 1e-4,
                                                   "grpo": 1e-5})

    def data(s: str) -> dict[str, Any]:
        mine = a.dataset_path and STAGE_KIND[s] == ds_kind
        return {"path": a.dataset_path if mine else PLACEHOLDER[STAGE_KIND[s]], "format": "auto",
                "packing": s in ("sft", "pretrain"), "completion_only": s != "pretrain"}
    if any(not (a.dataset_path and STAGE_KIND[s] == ds_kind) for s in plan):
        why("Point data.path at your file (the Data tab fills it in)" + (" for each stage." if len(plan) > 1 else "."))
    batch = 4 if big else 2
    d = {"name": f"{a.goal}-{m}".replace("_", "-"), "stage": plan[0], "adapter": m,
         "model": {"name_or_path": rec.model},
         "data": {**data(plan[0]), "max_length": seq, "eval_fraction": 0.1},
         "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
         "training": {"epochs": 3.0 if n < 1000 else 2.0 if n < 10000 else 1.0, "batch_size": batch,
                      "grad_accum": 16 // batch, "learning_rate": lrs[plan[0]], "scheduler": "cosine",
                      "warmup": 0.05, "weight_decay": 0.01, "precision": prec, "beta": 0.1,
                      "optim": "paged_adamw_8bit" if m == "qlora" else "adamw_torch",
                      "gradient_checkpointing": not big, "save_total_limit": 2}}
    gpus = int(hw.get("num_gpus") or 1)
    if gpus > 1:
        d["training"].update(num_gpus=gpus, grad_accum=max(1, 16 // (batch * gpus)))
        why(f"All {gpus} GPUs train together (DDP: each takes its share of every batch), about {gpus}x "
            "faster, with the same effective batch.")
    if len(plan) > 1:
        d["stages"] = [{"stage": s, "data": data(s), "training": {"learning_rate": lrs[s]}} for s in plan]
    why("Defaults from the guides: an effective batch of 16, a 5% warm-up, cosine decay, 10% of the data held "
        f"out to catch overfitting, and {d['training']['epochs']:g} epochs for {n} examples.")
    return RunConfig().merged(d)
