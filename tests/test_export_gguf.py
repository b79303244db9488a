"""GGUF and Ollama exports: round trip for llama and qwen2 in every type, an independent numpy
forward pass over the GGUF file (llama.cpp's rope conventions) against the merged HF model, the
Modelfile, and (slow, where llama-cpp-python is installed) loading and generating in llama.cpp.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from test_export import build_run

DTYPES = ("f16", "bf16", "q8_0", "q4_0")
# Relative RMS error allowed between a stored tensor and the merged weight it came from.
REL_TOL = {"F32": 1e-6, "F16": 1e-3, "BF16": 8e-3, "Q8_0": 1.5e-2, "Q4_0": 0.15}


def _qwen_with_biases(src: Path, dst: Path) -> Path:
    """The tiny Qwen2 starts with zero q/k/v biases; random ones make a dropped bias visible."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    shutil.copytree(src, dst, dirs_exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(src)
    torch.manual_seed(3)
    for name, p in model.named_parameters():
        if name.endswith(".bias"):
            p.data = torch.randn(p.shape) * 0.5
    model.save_pretrained(dst)
    return dst


@pytest.fixture(scope="module")
def bases(tiny_model_dir, tiny_qwen_dir, tmp_path_factory) -> dict[str, Path]:
    return {"llama": tiny_model_dir, "qwen2": _qwen_with_biases(tiny_qwen_dir, tmp_path_factory.mktemp("qwen-b"))}


@pytest.fixture(scope="module")
def runs(bases, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gguf-runs")
    return {"llama": build_run(root, bases["llama"], "llamarun"), "qwen2": build_run(root, bases["qwen2"], "qwenrun")}


@pytest.fixture(scope="module")
def merged(runs, bases) -> dict[str, tuple]:
    """Reference merged models (float32), built here without studio code."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = {}
    for arch, base in bases.items():
        m = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                                      runs[arch] / "adapter").merge_and_unload().eval()
        out[arch] = (m, AutoTokenizer.from_pretrained(base))
    return out


def _read(path: Path):
    import gguf

    r = gguf.GGUFReader(str(path))
    tensors = {t.name: (t.tensor_type.name, gguf.quants.dequantize(t.data, t.tensor_type).reshape(
        tuple(int(x) for x in reversed(t.shape.tolist())))) for t in r.tensors}
    return r, tensors


def _field(r, key):
    f = r.get_field(key)
    return None if f is None else f.contents()


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's pair interleaving of q/k rows (written independently of the exporter)."""
    hd = w.shape[0] // n_head
    return w.reshape(n_head, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gguf_round_trip(runs, merged, arch, dtype, tmp_path):
    from studio.export import export_run

    model, tok = merged[arch]
    cfg = model.config
    res = export_run(runs[arch], "gguf", tmp_path / "g", dtype=dtype)
    files = list((tmp_path / "g").glob("*.gguf"))
    assert len(files) == 1 and files[0].name.endswith(f"-{dtype}.gguf")
    assert "GGUF read back" in res.verification and (tmp_path / "g" / "README.md").is_file()
    r, tensors = _read(files[0])

    assert _field(r, "general.architecture") == arch
    assert _field(r, f"{arch}.block_count") == cfg.num_hidden_layers
    assert _field(r, f"{arch}.attention.head_count_kv") == cfg.num_key_value_heads
    assert _field(r, f"{arch}.context_length") == cfg.max_position_embeddings
    tokens = _field(r, "tokenizer.ggml.tokens")
    assert len(tokens) == cfg.vocab_size and tokens[tok.eos_token_id] == "<|im_end|>"
    assert all(tokens[i] == t for t, i in tok.get_vocab().items())
    assert _field(r, "tokenizer.ggml.token_type")[tok.convert_tokens_to_ids("<|im_start|>")] == 3  # CONTROL
    # The llama fixture keeps GPT-2's split regex; transformers rebuilds a qwen2 tokenizer with Qwen2's.
    assert _field(r, "tokenizer.ggml.model") == "gpt2"
    assert _field(r, "tokenizer.ggml.pre") == {"llama": "gpt-2", "qwen2": "qwen2"}[arch]
    assert len(_field(r, "tokenizer.ggml.merges")) > 100
    assert _field(r, "tokenizer.ggml.eos_token_id") == tok.eos_token_id
    stored = _field(r, "tokenizer.chat_template")
    assert "<|im_start|>" in stored and not re.search(r"{%-?\s*(end)?generation", stored)  # training-only tags gone
    conv = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]
    assert tok.apply_chat_template(conv, chat_template=stored, tokenize=False) == \
        tok.apply_chat_template(conv, tokenize=False)

    sd = {k: v.float().numpy() for k, v in model.state_dict().items()}
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    parts = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for i in range(cfg.num_hidden_layers):
        for hf, gg in parts.items():
            for suffix in ("weight", "bias"):
                names[f"model.layers.{i}.{hf}.{suffix}"] = f"blk.{i}.{gg}.{suffix}"
    expected = {names[k]: v for k, v in sd.items()}
    assert set(tensors) == set(expected)
    if arch == "qwen2":
        assert np.abs(tensors["blk.0.attn_q.bias"][1]).max() > 0.1
    for name, want in expected.items():
        kind, got = tensors[name]
        if arch == "llama" and (".attn_q." in name or ".attn_k." in name):
            heads = cfg.num_attention_heads if ".attn_q." in name else cfg.num_key_value_heads
            got = _unpermute(got, heads)
        if want.ndim == 1:
            assert kind == "F32", name
        elif dtype in ("q8_0", "q4_0"):
            assert kind == ("Q8_0" if dtype == "q8_0" or name == "output.weight" else "Q4_0"), name
        else:
            assert kind == dtype.upper(), name
        rel = np.sqrt(np.mean((got - want) ** 2)) / max(np.sqrt(np.mean(want ** 2)), 1e-12)
        assert rel < REL_TOL[kind], (name, kind, rel)


def _rms(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def _rope(x, pos, theta, neox):
    """x: (T, heads, hd). NORM mode rotates adjacent pairs (llama), NEOX mode the two halves (qwen2)."""
    hd = x.shape[-1]
    ang = pos[:, None] * theta ** (-np.arange(0, hd, 2) / hd)  # (T, hd/2)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = (x[..., : hd // 2], x[..., hd // 2:]) if neox else (x[..., 0::2], x[..., 1::2])
    ra, rb = a * cos - b * sin, a * sin + b * cos
    return np.concatenate([ra, rb], -1) if neox else np.stack([ra, rb], -1).reshape(x.shape)


def gguf_forward(path: Path, ids: list[int]) -> np.ndarray:
    """Logits of a llama/qwen2 GGUF computed in numpy the way llama.cpp reads the file."""
    r, t = _read(path)
    arch = _field(r, "general.architecture")
    nh, nkv = _field(r, f"{arch}.attention.head_count"), _field(r, f"{arch}.attention.head_count_kv")
    eps, theta = _field(r, f"{arch}.attention.layer_norm_rms_epsilon"), _field(r, f"{arch}.rope.freq_base")
    W = {k: v for k, (_, v) in t.items()}
    x = W["token_embd.weight"][ids]
    T, pos = len(ids), np.arange(len(ids), dtype=np.float64)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(_field(r, f"{arch}.block_count")):
        p = f"blk.{i}."
        h = _rms(x, W[p + "attn_norm.weight"], eps)
        q, k, v = (h @ W[p + n + ".weight"].T + W.get(p + n + ".bias", 0) for n in ("attn_q", "attn_k", "attn_v"))
        hd = q.shape[-1] // nh
        q = _rope(q.reshape(T, nh, hd), pos, theta, arch == "qwen2")
        k = np.repeat(_rope(k.reshape(T, nkv, hd), pos, theta, arch == "qwen2"), nh // nkv, axis=1)
        v = np.repeat(v.reshape(T, nkv, hd), nh // nkv, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        att = np.einsum("hts,shd->thd", s / s.sum(-1, keepdims=True), v).reshape(T, nh * hd)
        x = x + att @ W[p + "attn_output.weight"].T
        h = _rms(x, W[p + "ffn_norm.weight"], eps)
        g = h @ W[p + "ffn_gate.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
    return _rms(x, W["output_norm.weight"], eps) @ W.get("output.weight", W["token_embd.weight"]).T


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_gguf_forward_matches_merged_model(runs, merged, arch, tmp_path):
    import torch

    from studio.export import export_run

    export_run(runs[arch], "gguf", tmp_path / "g", dtype="f16")
    model, tok = merged[arch]
    ids = tok("Ahoy! What is the capital of France?")["input_ids"]
    with torch.no_grad():
        want = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    got = gguf_forward(next((tmp_path / "g").glob("*.gguf")), ids)
    assert np.abs(got - want).max() < 2e-2 * np.abs(want).max()
    assert (got.argmax(-1) == want.argmax(-1)).mean() > 0.9


def test_tied_embeddings_write_no_output_tensor(tiny_qwen_dir, tmp_path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from studio.export_gguf import verify_gguf, write_gguf

    cfg = AutoConfig.from_pretrained(tiny_qwen_dir)
    cfg.tie_word_embeddings = True
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg).eval()
    tok = AutoTokenizer.from_pretrained(tiny_qwen_dir)
    path = tmp_path / "tied.gguf"
    plan = write_gguf(path, model.state_dict(), model.config, tok, "f16", "tied")
    assert "output.weight" not in {t.name for t in plan}
    assert verify_gguf(path, plan, model.config, tok)["ok"]
    ids = tok("Paris is the capital of France.")["input_ids"]
    with torch.no_grad():
        want = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    assert np.abs(gguf_forward(path, ids) - want).max() < 2e-2 * np.abs(want).max()


def test_ollama_export_modelfile(runs, merged, tmp_path):
    from studio.export import export_run

    res = export_run(runs["qwen2"], "ollama", tmp_path / "o", dtype="q4_0")
    names = {n for n, _ in res.files}
    assert names == {"Modelfile", "model.gguf", "README.md"}
    text = (tmp_path / "o" / "Modelfile").read_text()
    assert "\nFROM ./model.gguf\n" in text
    assert 'TEMPLATE """{{- range .Messages }}{{ if eq .Role "system" }}<|im_start|>system\n{{ .Content }}<|im_end|>\n' in text
    assert '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n' in text
    assert text.count('"""') == 2 and '{{ end }}{{ end }}<|im_start|>assistant\n"""' in text
    for line in ('PARAMETER stop "<|im_end|>"', 'PARAMETER stop "<|im_start|>"', "PARAMETER temperature 0.7",
                 "PARAMETER top_p 0.9", "PARAMETER num_ctx 512"):
        assert line in text, line
    assert "ollama create" in (tmp_path / "o" / "README.md").read_text()


def test_template_wrappers_reproduce_chat_template(merged):
    from studio.ollama import derive_wrappers

    tok = merged["llama"][1]
    w = derive_wrappers(tok)
    assert w.derived and set(w.prefix) == {"system", "user", "assistant"}
    conv = [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Arr!"}, {"role": "user", "content": "Where to?"},
            {"role": "assistant", "content": "The sea."}, {"role": "user", "content": "Go"}]
    assert w.render(conv) == tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)


# Written for these tests in the style of two common families: one adds its own system prompt when
# a chat has none, the other uses header tokens and trims contents.
DEFAULT_SYSTEM_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' -%}{{- '<|im_start|>system\nYou are a helpful pirate.<|im_end|>\n' -}}"
    "{%- endif -%}{%- for m in messages -%}{{- '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' -}}"
    "{%- endfor -%}{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}")
HEADER_TEMPLATE = (
    "{%- for m in messages -%}{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim"
    " + '<|eot_id|>' -}}{%- endfor -%}{%- if add_generation_prompt -%}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}{%- endif -%}")


@pytest.mark.parametrize("template", [DEFAULT_SYSTEM_TEMPLATE, HEADER_TEMPLATE], ids=["default-system", "headers"])
def test_template_families_are_translated(merged, template):
    import copy

    from studio.ollama import derive_wrappers, go_template, modelfile

    model, tok = merged["llama"]
    tok = copy.deepcopy(tok)
    tok.chat_template = template
    w = derive_wrappers(tok)
    assert w.derived
    conv = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Arr!"},
            {"role": "user", "content": "Where to?"}]
    sys_conv = [{"role": "system", "content": "Talk like a pirate."}] + conv
    assert w.render(sys_conv) == tok.apply_chat_template(sys_conv, tokenize=False, add_generation_prompt=True)
    text = modelfile(tok, model.config)
    if template is DEFAULT_SYSTEM_TEMPLATE:
        assert w.default_system == "You are a helpful pirate."
        assert 'SYSTEM """You are a helpful pirate."""' in text
    else:
        assert w.default_system == "" and "SYSTEM" not in text
        assert w.render(conv) == tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        assert '<|start_header_id|>user<|end_header_id|>\n\n{{ .Content }}<|eot_id|>' in go_template(w)


def test_unusual_template_falls_back_to_generic(merged, tmp_path):
    import copy

    from studio.ollama import modelfile

    model, tok = merged["llama"]
    odd = copy.deepcopy(tok)
    # Output depends on the message index: no fixed per-role wrapper can express it.
    odd.chat_template = "{% for m in messages %}[{{ loop.index }}]{{ m['content'] }}{% endfor %}"
    text = modelfile(odd, model.config)
    assert "could not be translated" in text and "User: {{ .Content }}" in text
    assert 'PARAMETER stop "User:"' in text


# Largest logit difference llama.cpp may show against the float32 merged model, relative to the
# largest logit (its CPU kernels also round activations for the quantized matmuls).
LLAMA_CPP_TOL = {"f16": 5e-3, "bf16": 2e-2, "q8_0": 5e-2, "q4_0": 0.4}  # measured: 8e-4, 5e-3, 1.6e-2, 0.22


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gguf_loads_and_generates_in_llama_cpp(runs, merged, arch, dtype, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (PyPI ships it "
                                                        "as source only; it needs a C++ build)")
    import torch

    from studio.export import export_run

    export_run(runs[arch], "gguf", tmp_path / "g", dtype=dtype)
    llm = llama_cpp.Llama(model_path=str(next((tmp_path / "g").glob("*.gguf"))), n_ctx=128, logits_all=True,
                          verbose=False)
    model, tok = merged[arch]
    text = "Ahoy! The ship sails at dawn, matey."
    ids = tok(text)["input_ids"]
    assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids  # same vocab, merges, splitting
    llm.eval(ids)
    with torch.no_grad():
        want = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    got = np.asarray(llm.scores[: len(ids)])
    assert np.abs(got - want).max() < LLAMA_CPP_TOL[dtype] * np.abs(want).max()
    out = llm.create_completion("Ahoy!", max_tokens=5, temperature=0.0)
    assert out["usage"]["completion_tokens"] >= 1
    # The stored chat template must parse in llama-cpp-python's Jinja chat formatter.
    chat = llm.create_chat_completion([{"role": "user", "content": "Ahoy!"}], max_tokens=5, temperature=0.0)
    assert chat["choices"][0]["message"]["role"] == "assistant" and chat["usage"]["prompt_tokens"] >= 5
