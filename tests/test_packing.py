"""Packed, padding-free batches must not attend across documents.

Runs the real SFTTrainer that our worker builds (packing + padding_free) and checks that the loss
of two documents packed into one row equals the token-weighted loss of each run on its own.
"""

import pytest

from studio.config import RunConfig


def test_packed_loss_equals_separate_losses(tiny_model_dir, tmp_path):
    import torch
    from datasets import Dataset

    from studio.train import build
    from studio.train.stages import make_trainer

    cfg = RunConfig.from_dict({"model": {"name_or_path": str(tiny_model_dir)},
                               "data": {"packing": True, "padding_free": True, "max_length": 64,
                                        "completion_only": False},
                               "lora": {"dropout": 0.0}, "training": {"max_steps": 1}})
    g = torch.Generator().manual_seed(0)
    docs = [torch.randint(10, 300, (n,), generator=g).tolist() for n in (11, 7, 16)]
    ds = Dataset.from_dict({"input_ids": docs})
    trainer = make_trainer(cfg, str(tiny_model_dir), tmp_path, build.device_info(cfg), [], data=(ds, None))
    model = trainer.model.eval()
    # Give the adapter non-zero weights so it takes part in the forward pass.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    collate = trainer.data_collator

    def loss_of(examples):
        batch = collate([{"input_ids": e} for e in examples])
        with torch.no_grad():
            return float(trainer.compute_loss(model, batch)), int((batch["labels"] != -100).sum())

    packed, n_packed = loss_of(docs)
    assert "attention_mask" not in collate([{"input_ids": d} for d in docs])  # padding-free indeed
    separate = [loss_of([d]) for d in docs]
    n_sep = sum(n for _, n in separate)
    assert n_packed == n_sep == sum(len(d) - 1 for d in docs)
    weighted = sum(l * n for l, n in separate) / n_sep
    assert packed == pytest.approx(weighted, rel=1e-4, abs=1e-5)
    # Control: with the boundaries erased (one long document) the loss differs, so the check has teeth.
    joined, _ = loss_of([sum(docs, [])])
    assert abs(joined - weighted) > 1e-3
