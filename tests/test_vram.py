"""studio.vram / studio.vram_arch: each memory component against hand-computed bytes, the
activation model against what autograd really saves (CPU, tiny model), shapes, advice, ETA, the
CLI's JSON, and the recorded GPU sweep still meeting its targets with the current constants.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio import vram, vram_cli
from studio.errors import StudioError
from studio.vram import GIB
from studio.vram_cli import make_config
from studio.vram_arch import BUILTIN, ModelShape, builtin_shape, resolve_shape

REPO = Path(__file__).resolve().parent.parent
Q05 = BUILTIN["Qwen2.5-0.5B"]


def parts(cfg, shape=Q05, **kw):
    b, phase, m = vram.breakdown_bytes(cfg, shape, **kw)
    return b, phase, m


# -- shapes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(BUILTIN))
def test_every_builtin_architecture_resolves(name):
    s = resolve_shape(name)
    assert s is BUILTIN[name]
    assert s.params() > 1e8 and s.layers > 0 and s.q_dim >= s.kv_dim


@pytest.mark.parametrize("name,count", [("Qwen2.5-0.5B", 494_032_768), ("Llama-3.2-1B", 1_235_814_400)])
def test_parameter_counts_match_the_real_models(name, count):
    # exact totals reported by the worker for these shapes on the GPU sweep
    assert BUILTIN[name].params() == count


@pytest.mark.parametrize("alias,name", [("Qwen/Qwen2.5-7B-Instruct", "Qwen2.5-7B"),
                                        ("meta-llama/Llama-3.1-8B-Instruct", "Llama-3.1-8B"),
                                        ("meta-llama/Meta-Llama-3.1-70B", "Llama-3.1-70B"),
                                        ("google/gemma-2-9b-it", "Gemma-2-9B"),
                                        ("HuggingFaceTB/SmolLM2-360M-Instruct", "SmolLM2-360M"),
                                        ("llama 3.2 1b", "Llama-3.2-1B")])
def test_hub_ids_of_known_models_resolve_offline(alias, name):
    assert builtin_shape(alias) is BUILTIN[name]


def test_config_json_and_model_folder_resolve(tiny_model_dir):
    by_dir = resolve_shape(str(tiny_model_dir))
    by_file = resolve_shape(str(tiny_model_dir / "config.json"))
    assert by_dir.hidden == by_file.hidden == 64 and by_dir.layers == 2 and by_dir.kv_heads == 2


def test_unknown_hub_id_offline_says_what_to_give(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(StudioError, match="local model folder.*config.json"):
        resolve_shape("someone/some-model")
    with pytest.raises(StudioError, match="Unknown model"):
        resolve_shape("not a model")


def test_folder_without_config_is_explained(tmp_path):
    with pytest.raises(StudioError, match="no config.json"):
        resolve_shape(str(tmp_path))


# -- components, by hand -------------------------------------------------------------------------
def test_full_finetune_weights_gradients_adam_states():
    cfg = make_config("Qwen2.5-0.5B", "full", batch=1, seq=256, optim="adamw_torch")
    b, phase, _ = parts(cfg)
    p = 494_032_768
    assert b["weights"] == p * 2  # bf16
    assert b["adapters"] == 0
    if phase == "optimizer step":  # states 2 x bf16 + the foreach sqrt copy
        assert b["gradients"] == p * 2 and b["optimizer"] == p * 4 + p * 2
    else:
        assert b["optimizer"] == p * 4


def test_fused_and_8bit_optimizers():
    p = Q05.params()
    b, _, _ = parts(make_config("Qwen2.5-0.5B", "full", batch=1, seq=128, optim="adamw_torch_fused"))
    assert b["optimizer"] == p * 4  # exp_avg + exp_avg_sq in bf16, and no temporary copy in either phase
    b, _, _ = parts(make_config("Qwen2.5-0.5B", "full", batch=1, seq=128, optim="adamw_8bit"))
    assert b["optimizer"] == pytest.approx(2 * p * (1 + 4 / 256))


def test_lora_adapters_are_fp32_with_fp32_grads_and_states():
    cfg = make_config("Qwen2.5-0.5B", "lora", batch=1, seq=128, lora_r=16)
    b, _, m = parts(cfg)
    n = 8_798_208  # r=16 on all 7 projections of 24 layers, as peft reports for this shape
    assert m["trainable_params"] == n
    assert b["adapters"] == n * 4 and b["optimizer"] == n * 8
    assert b["weights"] == Q05.params() * 2


def test_qlora_weights_nf4_linears_fp32_rest_bf16_adapters():
    cfg = make_config("Qwen2.5-0.5B", "qlora", batch=1, seq=128)
    b, _, m = parts(cfg)
    lin = 24 * Q05.layer_linear_params()
    assert b["weights"] == pytest.approx(lin * (0.5 + 1 / 64 + 4 / 16384) + (Q05.params() - lin) * 4)
    assert b["adapters"] == m["trainable_params"] * 2


def test_lora_targets_by_short_names_and_errors():
    qv = vram.lora_targets(Q05, "q,v")
    assert [n for n, _, _ in qv] == ["q_proj", "v_proj"]
    with pytest.raises(StudioError, match="match no layer"):
        vram.lora_targets(Q05, "attn.c_attn")


TINY = ModelShape("tiny", "llama", hidden=256, intermediate=704, layers=2, heads=8, kv_heads=2,
                  head_dim=32, vocab=1000, tied=False)


def test_activation_bytes_per_layer_by_hand():
    cfg = make_config("x", "full", batch=2, seq=64)
    m = vram._resolve_method(cfg, TINY, None, padded=False)
    per = vram._act_bytes_per_token(TINY, m, 64)
    h, q, kv, i = 256, 256, 64, 704
    # 2 norms (fp32 input, bf16 pre-weight, rstd) + their bf16 outputs, q k v out + fp32 lse, 4 MLP tensors
    assert per["layer"] == 2 * (4 * h + 2 * h + 4) + 2 * 2 * h + 2 * (2 * q + 2 * kv) + 4 * 8 + 4 * 2 * i
    assert per["gc_layer"] == 2 * h


def test_gradient_checkpointing_keeps_only_layer_inputs():
    base = dict(model="Qwen2.5-1.5B", method="lora", batch=8, seq=2048)
    no_gc, _, _ = parts(make_config(**base), BUILTIN["Qwen2.5-1.5B"], padded=False)
    gc, _, _ = parts(make_config(**base, gc=True), BUILTIN["Qwen2.5-1.5B"], padded=False)
    assert gc["activations"] < no_gc["activations"] / 3


def test_fused_lm_head_never_builds_full_logits():
    # 8 x 4096 tokens x 151936 vocab in fp32 would be 18.5 GiB; TRL's fused head keeps hidden copies
    cfg = make_config("Qwen2.5-0.5B", "lora", batch=8, seq=4096, gc=True)
    b, _, _ = parts(cfg, padded=False)
    assert b["logits_loss"] < 1.5 * GIB


def test_dpo_doubles_tokens_and_full_dpo_keeps_a_reference_copy():
    sft, _, ms = parts(make_config("Qwen2.5-0.5B", "full", batch=2, seq=512))
    dpo, _, md = parts(make_config("Qwen2.5-0.5B", "full", batch=2, seq=512, dpo=True))
    none, _, _ = parts(make_config("Qwen2.5-0.5B", "full", batch=2, seq=512, dpo=True, dpo_ref="none"))
    assert md["tokens"] == 2 * ms["tokens"]
    assert dpo["weights"] == 2 * sft["weights"] and none["weights"] == sft["weights"]


def test_zero3_shards_the_weights():
    one, _, _ = parts(make_config("Llama-3.1-8B", "full", batch=1, seq=512), BUILTIN["Llama-3.1-8B"])
    z3, _, _ = parts(make_config("Llama-3.1-8B", "full", batch=1, seq=512, gpus=4, zero=3),
                     BUILTIN["Llama-3.1-8B"])
    assert z3["weights"] < one["weights"] / 3


def test_peak_is_the_sum_and_context_is_counted():
    est = vram.estimate(make_config("Qwen2.5-0.5B", "lora", batch=4, seq=1024), Q05)
    assert est.peak_gib == pytest.approx(sum(est.breakdown.values()))
    assert set(est.breakdown) == set(vram.COMPONENTS)
    assert est.breakdown["cuda_context"] == vram.CUDA_CONTEXT_GIB


# -- activation model vs autograd on CPU -----------------------------------------------------------
def _saved_bytes_per_layer(adapter: str) -> float:
    """Bytes autograd saves for decoder layer 1 of a tiny bf16 Llama, per token, via saved-tensor hooks."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig
    from trl.trainer.utils import add_fused_lm_head

    B, S = 2, 64
    cfg = LlamaConfig(vocab_size=1000, hidden_size=256, intermediate_size=704, num_hidden_layers=2,
                      num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=False)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    add_fused_lm_head(model)
    if adapter == "lora":
        from peft import LoraConfig, get_peft_model

        # dropout 0: the CPU dropout keeps a float noise tensor where CUDA keeps a 1-byte mask
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))
    layer = [m for n, m in model.named_modules() if n.endswith("layers.1")][0]
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen, inside, total = set(), [False], [0]
    layer.register_forward_pre_hook(lambda *a: inside.__setitem__(0, True))
    layer.register_forward_hook(lambda *a: inside.__setitem__(0, False))

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if inside[0] and ptr not in params and ptr not in seen:
            seen.add(ptr)
            total[0] += t.untyped_storage().nbytes()
        return t

    ids = torch.randint(0, 1000, (B, S))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        model(input_ids=ids, labels=ids, fused_lm_head=True)
    n_lora = sum(p.numel() for n, p in layer.named_parameters() if "lora_" in n)
    return (total[0] - 2 * n_lora) / (B * S)  # minus autocast's bf16 copies of the fp32 adapters


@pytest.mark.parametrize("adapter", ["full", "lora"])
def test_activation_model_matches_autograd(adapter):
    cfg = make_config("x", adapter, batch=2, seq=64, lora_dropout=0.0)
    m = vram._resolve_method(cfg, TINY, None, padded=False)
    assert _saved_bytes_per_layer(adapter) == pytest.approx(vram._act_bytes_per_token(TINY, m, 64)["layer"],
                                                            rel=0.02)


# -- advice, verdict, ETA ------------------------------------------------------------------------
def test_advice_makes_a_too_big_run_fit():
    cfg = make_config("Llama-3.1-8B", "lora", batch=8, seq=4096)
    est = vram.estimate(cfg, gpu_free_gib=23.5)
    assert est.fits is False and "Does not fit" in est.verdict
    fitting = [a for a in est.advice if a["fits"]]
    assert fitting and all(a["peak_gib"] <= 23.5 for a in fitting)
    assert all(a["peak_gib"] < est.peak_gib for a in est.advice if a["fits"])


def test_small_run_fits_with_a_plain_verdict():
    est = vram.estimate(make_config("SmolLM2-135M", "lora", batch=2, seq=512), gpu_free_gib=15.0)
    assert est.fits and est.verdict.startswith("Fits")


def test_eta_from_measured_and_looked_up_throughput():
    assert vram_cli.eta(1_000_000, tokens_per_s=2000)["seconds"] == pytest.approx(500)
    looked = vram_cli.eta(10_000_000, shape=Q05, method="lora", gpu="H100")
    assert looked["seconds"] > 0 and "H100" in looked["source"] and looked["text"].startswith("about")
    slow = vram_cli.eta(10_000_000, shape=Q05, method="lora", gpu="T4")
    assert slow["seconds"] > looked["seconds"]


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_json_shape(capsys):
    assert vram_cli.main(["--model", "Qwen2.5-0.5B", "--method", "lora", "--batch", "4", "--seq", "1024",
                      "--gc", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["breakdown"]) == set(vram.COMPONENTS)
    assert out["peak_gib"] == pytest.approx(sum(out["breakdown"].values()), abs=0.01)


def test_cli_through_the_dispatcher(tiny_model_dir):
    proc = subprocess.run([sys.executable, "-m", "studio", "vram", "--model", str(tiny_model_dir),
                           "--method", "qlora", "--batch", "2", "--seq", "128", "--dpo", "--json"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["peak_gib"] > 0.5
    bad = subprocess.run([sys.executable, "-m", "studio", "vram", "--model", "Qwen2.5-0.5B", "--batch", "0"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bad.returncode == 2 and "batch_size" in bad.stderr


# -- the recorded GPU sweep still holds ------------------------------------------------------------
def test_recorded_gpu_sweep_meets_the_targets():
    """Re-estimates every measured H100 run with the current code: a change to studio/vram.py
    that breaks the calibration fails here, without a GPU."""
    sys.path.insert(0, str(REPO / "bench"))
    import vram_sweep

    raws = sorted((REPO / "bench" / "results").glob("vram_sweep_raw_*.json"))
    assert raws, "bench/results/vram_sweep_raw_*.json is missing"
    summary = vram_sweep.report(raws, write=False)
    assert summary["measured"] >= 10
    assert summary["median_abs_error_pct"] <= 10 and summary["worst_abs_error_pct"] <= 25


@pytest.mark.gpu
def test_estimate_against_a_real_training_step_on_gpu():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    sys.path.insert(0, str(REPO / "bench"))
    import vram_sweep

    out = REPO / "runs" / "vram-gpu-test"
    vram_sweep.run_sweep(out, budget_s=120, only=["q05-lora-b1s512"], work=out / "work")
    summary = vram_sweep.report([out / "vram_sweep_raw.json"], write=False)
    assert summary["measured"] == 1 and summary["worst_abs_error_pct"] <= 25


def test_memory_tab_handlers_without_a_browser(tiny_model_dir):
    pytest.importorskip("gradio")
    from studio.ui import memory_tab as tab

    verdict, fig, advice, eta = tab.estimate_view(
        "Llama-3.1-8B", "lora", False, True, 8, 4096, 1, False, "adamw_torch", 16, "all-linear", False,
        "bf16", 1, 0, "RTX 3090 / 4090 (24 GB)", 5e6, 0)
    assert "Does not fit" in verdict and "Together" in advice and "hours" in eta
    assert sum(sum(t.x) for t in fig.data) == pytest.approx(vram.estimate(
        make_config("Llama-3.1-8B", "lora", 8, 4096), gpu_free_gib=23.5).peak_gib, rel=0.01)
    verdict, fig, _, _ = tab.estimate_view(str(tiny_model_dir), "qlora", False, True, 2, 128, 1, True,
                                           "adamw_8bit", 8, "q_proj,v_proj", True, "bf16", 1, 0,
                                           "T4 (16 GB)", 0, 0)
    assert "Fits" in verdict and fig is not None
    verdict, fig, _, _ = tab.estimate_view("Qwen2.5-0.5B", "lora", False, True, 4, 1024, 1, False,
                                           "adamw_torch", 16, "nothing_here", False, "bf16", 1, 0,
                                           "T4 (16 GB)", 0, 0)
    assert verdict.startswith("**Cannot estimate:**") and "match no layer" in verdict and fig is None
    assert "CPU" in tab.live_markdown()
