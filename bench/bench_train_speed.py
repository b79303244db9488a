"""Training-throughput benchmark on a CUDA GPU: our trainer against plain HF and TRL, same run.

Random-init models of real shapes (no downloads), LoRA r16 on all linear layers, SFT data with
realistic variable lengths (lognormal, median ~300 tokens, capped at 2048). For each setup it
records real (non-pad) tokens/s and the NVML peak, each setup in its own subprocess so the GPU
starts empty:
  plain_padded   a hand-written HF+PEFT loop padding to the longest sequence of each batch
  trl_padded     TRL SFTTrainer with its defaults (padded batches)
  trl_packed     TRL's best: padding-free packing
  trl_best       padding-free packing + Liger kernels
  ours           our trainer (studio.train.stages.make_trainer) with the settings the studio
                 picks for this GPU (studio.train.autotune)
  ours_compile   the same plus torch.compile, to decide whether autotune should turn it on
                 (its compile time is reported apart: the clock starts after step 3)
The TRL rows and the plain loop use gradient checkpointing, as in the reference points.

Usage (GPU machine): python bench/bench_train_speed.py --model llama-3.1-8b --steps 12 --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHAPES = {  # public config.json shapes
    "llama-3.1-8b": dict(model_type="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0,
                         max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=False),
    "qwen2.5-1.5b": dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, vocab_size=151936, rope_theta=1e6,
                         max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=True),
}
SETUPS = ["plain_padded", "trl_padded", "trl_packed", "trl_best", "ours", "ours_compile"]


def lengths(n: int, seed: int = 0, fixed: int = 0) -> list[int]:
    import numpy as np

    if fixed:
        return [fixed] * n
    rng = np.random.default_rng(seed)
    return [int(x) for x in np.clip(rng.lognormal(mean=np.log(300), sigma=0.8, size=n), 16, 2048)]


def make_model_dir(shape: str, root: Path) -> Path:
    """config.json of the real shape + a small tokenizer (ids we feed stay below its size)."""
    from transformers import AutoConfig

    d = root / shape
    d.mkdir(parents=True, exist_ok=True)
    spec = dict(SHAPES[shape])
    cfg = AutoConfig.for_model(spec.pop("model_type"), **spec)
    cfg.save_pretrained(d)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import build_tiny_tokenizer

    build_tiny_tokenizer(d)
    return d


class NvmlPeak:
    def __init__(self):
        import pynvml

        pynvml.nvmlInit()
        self.nv, self.h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        self.peak, self._run = 0, True
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while self._run:
            self.peak = max(self.peak, self.nv.nvmlDeviceGetMemoryInfo(self.h).used)
            time.sleep(0.02)

    def stop(self) -> float:
        self._run = False
        self.t.join()
        return self.peak / 2**30


def token_dataset(lens: list[int], vocab: int, seed: int = 0):
    import numpy as np
    from datasets import Dataset

    rng = np.random.default_rng(seed)
    return Dataset.from_dict({"input_ids": [rng.integers(10, vocab, size=n).tolist() for n in lens]})


def run_plain(model_dir: Path, lens: list[int], steps: int, batch: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(model_dir)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    vocab = 400  # ids of the small tokenizer range, like the TRL setups
    g = torch.Generator().manual_seed(0)
    tokens, t_start = 0, None
    for step in range(steps + 3):
        batch_lens = lens[(step * batch) % len(lens):][:batch]
        m = max(batch_lens)
        ids = torch.zeros(len(batch_lens), m, dtype=torch.long)
        att = torch.zeros_like(ids)
        for i, n in enumerate(batch_lens):
            ids[i, :n] = torch.randint(10, vocab, (n,), generator=g)
            att[i, :n] = 1
        ids, att = ids.cuda(), att.cuda()
        labels = ids.masked_fill(att == 0, -100)
        loss = model(input_ids=ids, attention_mask=att, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step == 2:
            torch.cuda.synchronize()
            t_start = time.perf_counter()
        elif step > 2:
            tokens += int(att.sum())
    torch.cuda.synchronize()
    return {"tokens_per_s": tokens / (time.perf_counter() - t_start)}


def run_trainer(setup: str, model_dir: Path, lens: list[int], steps: int, batch: int, out: Path) -> dict:
    import torch
    from transformers import TrainerCallback

    from studio.config import RunConfig
    from studio.train import build
    from studio.train.stages import make_trainer

    cfg = RunConfig.from_dict({"name": setup, "model": {"name_or_path": str(model_dir), "random_init": True},
                               "data": {"max_length": 2048, "completion_only": False},
                               "training": {"max_steps": steps + 3, "batch_size": batch, "logging_steps": 1,
                                            "learning_rate": 1e-4, "gradient_checkpointing": True,
                                            "save_steps": 10**6, "precision": "bf16", "warmup": 0.0}})
    t, d = cfg.training, cfg.data
    packed_batch = max(1, batch * 300 // 2048 + 1)  # rows of up to 2048 tokens, ~same tokens/step
    if setup in ("trl_packed", "trl_best", "ours", "ours_compile"):  # ours starts from the same batch, then tunes
        d.packing = d.padding_free = True
        t.batch_size = packed_batch
    if setup == "trl_best":
        t.liger = True
    if setup in ("ours", "ours_compile"):
        from studio.train.autotune import tune_for_gpu

        cfg, notes = tune_for_gpu(cfg, torch.cuda.mem_get_info()[1] / 2**30)
        cfg.training.torch_compile = setup == "ours_compile"
        print(f"{setup}:", "; ".join(notes), flush=True)
    info = build.device_info(cfg)
    marks = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            marks["begin"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                torch.cuda.synchronize()
                marks["t0"], marks["tok0"] = time.perf_counter(), state.num_input_tokens_seen

    trainer = make_trainer(cfg, str(model_dir), out, info, [Clock()],
                           data=(token_dataset(lens, 400), None))
    trainer.train()
    torch.cuda.synchronize()
    dt = time.perf_counter() - marks["t0"]
    return {"tokens_per_s": (trainer.state.num_input_tokens_seen - marks["tok0"]) / dt,
            "first_3_steps_s": round(marks["t0"] - marks["begin"], 1),  # compile time shows here
            "settings": {"compile": cfg.training.torch_compile, "gc": cfg.training.gradient_checkpointing, "packing": cfg.data.packing,
                         "padding_free": cfg.data.padding_free, "liger": cfg.training.liger,
                         "batch": cfg.training.batch_size, "optim": cfg.training.optim}}


def child(a) -> None:
    import torch

    peak = NvmlPeak()
    lens = lengths(4000, fixed=a.fixed)
    out = Path(tempfile.mkdtemp())
    if a.setup == "plain_padded":
        res = run_plain(Path(a.model_dir), lens, a.steps, a.batch)
    else:
        res = run_trainer(a.setup, Path(a.model_dir), lens, a.steps, a.batch, out)
    res.update(setup=a.setup, nvml_peak_gib=round(peak.stop(), 2),
               torch_reserved_gib=round(torch.cuda.max_memory_reserved() / 2**30, 2))
    print("RESULT " + json.dumps(res), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-3.1-8b", choices=list(SHAPES))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch", type=int, default=8, help="documents per padded batch")
    ap.add_argument("--fixed", type=int, default=0, help="fixed sequence length instead of lognormal")
    ap.add_argument("--setups", default=",".join(SETUPS))
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--setup")
    ap.add_argument("--model-dir")
    a = ap.parse_args()
    if a.child:
        return child(a)
    import torch

    root = Path(tempfile.mkdtemp())
    model_dir = make_model_dir(a.model, root)
    results = []
    for setup in a.setups.split(","):
        cmd = [sys.executable, __file__, "--child", "--setup", setup, "--model-dir", str(model_dir),
               "--steps", str(a.steps), "--batch", str(a.batch), "--fixed", str(a.fixed)]
        env = dict(os.environ, PYTORCH_CUDA_ALLOC_CONF="expandable_segments:True")
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            print(f"{setup}: FAILED\n{p.stdout[-1500:]}\n{p.stderr[-3000:]}", flush=True)
            results.append({"setup": setup, "error": (p.stderr or p.stdout)[-500:]})
            continue
        r = json.loads(lines[-1][7:])
        results.append(r)
        print(f"{setup:<13} {r['tokens_per_s']:>9.0f} tok/s  NVML peak {r['nvml_peak_gib']:>6.2f} GiB  "
              f"{r.get('settings', '')}", flush=True)
    ok = {r["setup"]: r for r in results if "tokens_per_s" in r}
    if "ours" in ok and "trl_best" in ok:
        print(f"ratio ours / trl_best: {ok['ours']['tokens_per_s'] / ok['trl_best']['tokens_per_s']:.2f}x")
    if "ours" in ok and "ours_compile" in ok:
        print(f"ratio ours_compile / ours: {ok['ours_compile']['tokens_per_s'] / ok['ours']['tokens_per_s']:.2f}x "
              f"(first 3 steps {ok['ours_compile']['first_3_steps_s']} s vs {ok['ours']['first_3_steps_s']} s)")
    if "ours" in ok and "trl_padded" in ok:
        print(f"ratio ours / trl_padded: {ok['ours']['tokens_per_s'] / ok['trl_padded']['tokens_per_s']:.2f}x")
    meta = {"date": time.strftime("%Y-%m-%d"), "device": torch.cuda.get_device_name(0), "model": a.model,
            "steps": a.steps, "batch": a.batch, "fixed": a.fixed, "torch": torch.__version__}
    Path(a.out).mkdir(parents=True, exist_ok=True)
    name = f"train_speed_{a.model}{'_fixed' + str(a.fixed) if a.fixed else ''}.json"
    (Path(a.out) / name).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
