"""One TRL trainer per method: SFT, continued pre-training, DPO, reward model and GRPO.

Each builder takes the stage's RunConfig, the model path it starts from and the run folder, and
returns a ready trainer plus the folder its output goes to. Training itself and all status
bookkeeping stay in `studio.train.worker`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.config import RunConfig
from studio.errors import StudioError
from studio.train import build


def make_trainer(cfg: RunConfig, model_path: str, run_dir: Path, info: dict[str, Any], callbacks: list,
                 data=None):
    """The trainer for `cfg.stage`, with its datasets loaded and the adapter applied.

    `data` = (train, eval) datasets skips loading from cfg.data.path (benchmarks pass token ids).
    """
    tok = build.load_tokenizer(model_path, cfg)
    train_ds, eval_ds = data if data is not None else build.load_data(cfg, run_dir, tok)
    common = build.trainer_kwargs(cfg, run_dir, info, eval_ds is not None)
    extra_callbacks = list(callbacks)
    if cfg.training.early_stopping_patience > 0 and eval_ds is not None:
        from transformers import EarlyStoppingCallback

        extra_callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.training.early_stopping_patience))
    builder = {"sft": _sft, "pretrain": _sft, "dpo": _dpo, "reward": _reward, "grpo": _grpo}[cfg.stage]
    return builder(cfg, model_path, tok, train_ds, eval_ds, common, info, extra_callbacks)


def _model_and_peft(cfg: RunConfig, model_path: str, info: dict[str, Any], reward: bool = False):
    model = build.load_model(model_path, cfg, info, reward=reward)
    task = "SEQ_CLS" if reward else "CAUSAL_LM"
    peft_cfg = build.peft_config(cfg, task_type=task)
    if cfg.adapter == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.training.gradient_checkpointing)
    return model, peft_cfg


def _sft(cfg, model_path, tok, train_ds, eval_ds, common, info, callbacks):
    from trl import SFTConfig, SFTTrainer

    d = cfg.data
    cols = train_ds.column_names
    is_text = cfg.stage == "pretrain" or "text" in cols or "input_ids" in cols
    is_chat = "messages" in cols
    args = SFTConfig(
        **common, max_length=d.max_length, packing=d.packing, padding_free=d.padding_free,
        # Chat rows: train on assistant turns only when asked; prompt/completion rows: TRL's
        # completion_only_loss does the same. Raw text (pre-training) trains on every token.
        assistant_only_loss=bool(d.completion_only and is_chat),
        completion_only_loss=None if (d.completion_only and not is_text) else False,
        dataset_text_field="text", dataset_num_proc=None,
    )
    model, peft_cfg = _model_and_peft(cfg, model_path, info)
    try:
        return SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                          processing_class=tok, peft_config=peft_cfg, callbacks=callbacks)
    except ValueError as e:
        if "chat template is not training-compatible" in str(e):
            raise StudioError(
                "This model's chat template has no {% generation %} markers, so the trainer cannot tell "
                "assistant tokens apart. Turn off 'train on completions only' (data.completion_only: false) "
                "or use a model whose template TRL knows (Qwen2.5/3, Llama 3).") from None
        raise


def _dpo(cfg, model_path, tok, train_ds, eval_ds, common, info, callbacks):
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(**common, max_length=cfg.data.max_length, beta=cfg.training.beta,
                     padding_free=cfg.data.padding_free)
    model, peft_cfg = _model_and_peft(cfg, model_path, info)
    ref = None
    if peft_cfg is None and cfg.training.dpo_reference in ("auto", "copy"):
        # Full fine-tuning needs a frozen reference copy; with an adapter the reference is the
        # same weights with the adapter switched off (ref_model=None), which costs no memory.
        ref = build.load_model(model_path, cfg, info)
    return DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                      processing_class=tok, peft_config=peft_cfg, callbacks=callbacks)


def _reward(cfg, model_path, tok, train_ds, eval_ds, common, info, callbacks):
    from trl import RewardConfig, RewardTrainer

    args = RewardConfig(**common, max_length=cfg.data.max_length)
    model, peft_cfg = _model_and_peft(cfg, model_path, info, reward=True)
    return RewardTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tok, peft_config=peft_cfg, callbacks=callbacks)


def _grpo(cfg, model_path, tok, train_ds, eval_ds, common, info, callbacks):
    from trl import GRPOConfig, GRPOTrainer

    from studio.train.rewards import reward_functions

    t = cfg.training
    gen_batch = max(t.num_generations, t.batch_size - t.batch_size % t.num_generations) or t.num_generations
    args = GRPOConfig(**{**common, "per_device_train_batch_size": gen_batch,
                         "include_num_input_tokens_seen": "no"},
                      num_generations=t.num_generations, max_completion_length=t.max_new_tokens,
                      beta=0.0 if t.beta <= 0 else t.beta)
    model, peft_cfg = _model_and_peft(cfg, model_path, info)
    return GRPOTrainer(model=model, reward_funcs=reward_functions(cfg, info), args=args,
                       train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tok,
                       peft_config=peft_cfg, callbacks=callbacks)


def save_output(trainer, cfg: RunConfig, out_dir: Path, tok=None, main: bool = True) -> Path:
    """Adapter (peft) or full model into `out_dir`, with the tokenizer beside it.

    Every rank must call it (FSDP gathers the shards collectively; the trainer writes on rank 0
    only), but only the main rank writes the tokenizer: two ranks writing the same files race.
    """
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    plugin = getattr(trainer.accelerator.state, "fsdp_plugin", None) if trainer.is_fsdp_enabled else None
    sharded = None
    if plugin is not None and "FULL_STATE_DICT" not in str(plugin.state_dict_type):
        # Checkpoints stay sharded (each rank writes its own part, fast to resume), but with a
        # sharded state dict `save_model` writes no weights at all, and the run would end "done"
        # with an empty adapter folder. The output must be one loadable file: gather it.
        sharded = plugin.state_dict_type
        plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(out_dir))
    if sharded is not None:
        plugin.set_state_dict_type(sharded)  # a later stage's checkpoints stay sharded
    if main:
        (tok or trainer.processing_class).save_pretrained(str(out_dir))
        # A run must never end "done" without its weights (the sharded-save case above did).
        weights = ("adapter_model.*", "model*.safetensors", "pytorch_model*.bin")
        if not any(f for pattern in weights for f in out_dir.glob(pattern)):
            raise RuntimeError(f"Training finished but no weights were written to {out_dir}. "
                               "Resume from the last checkpoint, or report this with the log.")
    return out_dir
