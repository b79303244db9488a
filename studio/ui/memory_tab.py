"""Memory tab: live GPU/CPU/RAM readings and "will it fit?" for a planned run.

Widgets and wiring only: readings come from studio.hardware (refreshed by a gr.Timer that runs
while this tab is selected), the estimate and advice from studio.vram, the ETA from
studio.vram_cli. Every setting has a tooltip; errors become a plain warning, never a traceback.
"""

from __future__ import annotations

import gradio as gr

from studio import hardware, vram, vram_cli
from studio.config import OPTIMIZERS, RunConfig
from studio.errors import StudioError
from studio.paths import check_allowed
from studio.ui.inputs import whole
from studio.vram_arch import BUILTIN

NAMES = {"weights": "Model weights", "adapters": "LoRA adapters", "gradients": "Gradients",
         "optimizer": "Optimizer states", "activations": "Activations (kept for backward)",
         "logits_loss": "Logits / loss", "cuda_context": "CUDA context",
         "allocator_reserve": "Allocator reserve"}
NO_GPU_DEFAULT = "RTX 3090 / 4090 (24 GB)"


def live_markdown() -> str:
    """The live readings as Markdown: one line per GPU, its processes, then CPU and RAM."""
    lines = []
    gpus = hardware.gpus()
    for g in gpus:
        pct = 100 * g.used_gib / g.total_gib if g.total_gib else 0
        extra = [f"load {g.util_pct:.0f}%" if g.util_pct is not None else "",
                 f"{g.temperature_c:.0f} °C" if g.temperature_c is not None else "",
                 f"{g.power_w:.0f} W" + (f" of {g.power_limit_w:.0f} W" if g.power_limit_w else "")
                 if g.power_w is not None else ""]
        lines.append(f"**GPU {g.index} · {g.name}** — {g.used_gib:.1f} of {g.total_gib:.1f} GiB used "
                     f"({pct:.0f}%), {g.free_gib:.1f} GiB free · " + " · ".join(x for x in extra if x))
        for p in g.processes:
            used = f"{p.used_gib:.1f} GiB" if p.used_gib is not None else "memory not reported"
            lines.append(f"&nbsp;&nbsp;• {p.name} (pid {p.pid}): {used}")
    if not gpus:
        lines.append(hardware.nvml_status())
    if hardware.mps_available():
        lines.append("Apple GPU (MPS) available: it shares the RAM below.")
    c = hardware.cpu_ram()
    if c.get("ram_total_gib"):
        lines.append(f"**CPU** {c['cpu_pct']:.0f}% of {c['cores']} cores · **RAM** "
                     f"{c['ram_used_gib']:.1f} of {c['ram_total_gib']:.1f} GiB used ({c['ram_pct']:.0f}%)")
    else:
        lines.append(c.get("note", "No CPU/RAM readings."))
    return "\n\n".join(lines)


def gpu_choices() -> list[str]:
    found = [f"GPU {g.index} · {g.name} ({g.free_gib:.1f} GiB free)" for g in hardware.gpus()]
    return found + list(vram.GPU_SIZES_GIB)


def free_memory(choice: str) -> tuple[float, str]:
    """(free GiB, GPU name for the throughput table) of the chosen detected GPU or GPU size."""
    if choice in vram.GPU_SIZES_GIB:
        return vram.GPU_SIZES_GIB[choice], choice
    if choice and choice.startswith("GPU "):
        index = int(choice.split()[1])
        for g in hardware.gpus():  # read again: free memory changes while the tab is open
            if g.index == index:
                return g.free_gib, g.name
    return vram.GPU_SIZES_GIB[NO_GPU_DEFAULT], NO_GPU_DEFAULT


def breakdown_figure(est: vram.Estimate, free: float):
    import plotly.graph_objects as go

    fig = go.Figure()
    for key, gib in est.breakdown.items():
        if gib > 0.005:
            fig.add_trace(go.Bar(y=["Peak"], x=[gib], name=NAMES[key], orientation="h",
                                 hovertemplate=f"{NAMES[key]}: %{{x:.2f}} GiB<extra></extra>"))
    fig.add_vline(x=free, line_dash="dash", line_color="red",
                  annotation_text=f"free {free:.1f} GiB", annotation_position="top")
    fig.update_layout(barmode="stack", height=260, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title="GiB", legend=dict(orientation="h", y=-0.35),
                      title=f"Estimated peak {est.peak_gib:.1f} GiB ({est.phase})")
    return fig


def _whole(value, label: str, default: int) -> int:
    """A number box as a whole number (empty or 0 -> default), or a StudioError naming the box."""
    return whole(value, label, default) or default


def estimate_view(model, method, dpo, dpo_ref, batch, seq, accum, gc, optim, lora_r, targets, liger,
                  precision, gpus, zero, gpu_choice, tokens, tokens_per_s, roots=None):
    """Form values -> (verdict, figure, advice, ETA); a bad input becomes a warning.

    With `roots` (the UI passes the allowed roots), a model given as a path must lie inside them."""
    try:
        if roots is not None and str(model or "") not in BUILTIN:
            check_allowed(model, roots, "model", names_ok=True)
        batch, seq, accum = _whole(batch, "Batch size", 1), _whole(seq, "Max length", 16), \
            _whole(accum, "Gradient accumulation", 1)
        lora_r, gpus, zero = _whole(lora_r, "LoRA rank", 16), _whole(gpus, "GPUs", 1), _whole(zero, "ZeRO stage", 0)
        cfg = vram_cli.make_config(str(model or ""), method, batch, seq, bool(gc), optim, lora_r,
                               targets or "all-linear", liger=bool(liger), dpo=bool(dpo),
                               dpo_ref="copy" if dpo_ref else "none", precision=precision,
                               gpus=gpus, zero=zero, grad_accum=accum)
        free, gpu_name = free_memory(gpu_choice)
        est = vram.estimate(cfg, gpu_free_gib=free, zero=zero if gpus > 1 else None)
    except StudioError as e:
        gr.Warning(str(e))
        return f"**Cannot estimate:** {e}", None, "", ""
    verdict = (f"### {'✅' if est.fits else '❌'} {est.verdict}\n"
               f"Assumes {'; '.join(est.assumptions)}. Measured against real runs on an H100: "
               "usually within a few percent (bench/results/vram_sweep.md).")
    if est.advice:
        advice = "**Changes that help** (cheapest first):\n" + "\n".join(
            f"- {a['change']}: {a['peak_gib']:.1f} GiB" + ("" if a["fits"] else " — still too big")
            for a in est.advice)
    else:
        advice = "No changes needed." if est.fits else ""
    eta_md = ""
    try:
        n_tokens, tps = float(tokens or 0), float(tokens_per_s or 0)
        if 0 < n_tokens < 1e15 and 0 <= tps < 1e12:  # NaN and inf fail both tests
            e = vram_cli.eta(n_tokens, tokens_per_s=tps or None, shape=vram.resolve_shape(str(model)),
                         method=method, gpu=gpu_name, seq=seq, gc=bool(gc), num_gpus=gpus)
            eta_md = (f"**Time to train {n_tokens:,.0f} tokens:** {e['text']} at {e['tokens_per_s']:,.0f} "
                      f"tokens/s ({e['source']}).")
        elif n_tokens or tps:
            eta_md = "**No time estimate:** training tokens must be above 0 and tokens/s at least 0."
    except (StudioError, TypeError, ValueError, OverflowError) as e:
        eta_md = f"**No time estimate:** {e}"
    return verdict, breakdown_figure(est, free), advice, eta_md


def from_train_config(yaml_text: str):
    """Fill the form from the Train tab's current config."""
    if not yaml_text:
        gr.Warning("The Train tab has no config yet: pick a preset there first.")
        return [gr.update()] * 13
    try:
        cfg = RunConfig.from_yaml(yaml_text)
    except StudioError as e:
        gr.Warning(str(e))
        return [gr.update()] * 13
    t = cfg.training
    method = cfg.adapter if cfg.adapter in ("full", "lora", "qlora") else "lora"
    return [cfg.model.name_or_path, method, cfg.stage == "dpo", t.dpo_reference != "none", t.batch_size,
            cfg.data.max_length, t.grad_accum, t.gradient_checkpointing, t.optim, cfg.lora.r,
            cfg.lora.target_modules, t.liger, "bf16" if t.precision == "auto" else t.precision]


def build(shared) -> None:
    gr.Markdown("Will your run fit in GPU memory? The estimate follows what our trainer really keeps "
                "in memory, checked against measured runs. Change a setting and it updates at once.")
    with gr.Accordion("Live hardware", open=True):
        live = gr.Markdown(live_markdown())
        refresh = gr.Button("Refresh now", size="sm")
    choices = gpu_choices()
    with gr.Row():
        with gr.Column(scale=2):
            model = gr.Dropdown(list(BUILTIN), value="Qwen2.5-0.5B", allow_custom_value=True, label="Model",
                                info="A built-in architecture, a model folder, a config.json path, or a hub "
                                     "id (needs internet; only its config is read).")
            method = gr.Radio(["full", "lora", "qlora"], value="lora", label="Method",
                              info="full: every weight trains (most memory). lora: small adapters on a frozen "
                                   "model. qlora: LoRA on a 4-bit model (least memory).")
            with gr.Row():
                dpo = gr.Checkbox(label="DPO", info="Preference pairs: chosen and rejected run together, "
                                                    "twice the tokens.")
                dpo_ref = gr.Checkbox(value=True, label="Reference copy",
                                      info="Full-model DPO keeps a frozen copy; LoRA needs none.")
            with gr.Row():
                batch = gr.Number(4, precision=0, label="Batch size", info="Sequences per GPU per step.")
                seq = gr.Number(1024, precision=0, label="Max length (tokens)",
                                info="Memory grows with this.")
                accum = gr.Number(1, precision=0, label="Gradient accumulation",
                                  info="Bigger effective batch at no memory cost.")
            with gr.Row():
                gc = gr.Checkbox(label="Gradient checkpointing",
                                 info="Recomputes activations: much less memory, ~30% slower.")
                liger = gr.Checkbox(label="Liger kernels",
                                    info="Fused GPU kernels: less activation memory, a little faster.")
            optim = gr.Dropdown(list(OPTIMIZERS), value="adamw_torch", label="Optimizer",
                                info="adamw_8bit keeps optimizer states in 8 bits: a quarter of the memory.")
            with gr.Row():
                lora_r = gr.Number(16, precision=0, label="LoRA rank", info="Adapter size.")
                targets = gr.Textbox("all-linear", label="LoRA targets",
                                     info="all-linear, or layers like q_proj,v_proj.")
            precision = gr.Radio(["bf16", "fp16", "fp32"], value="bf16", label="Precision",
                                 info="bf16 on recent GPUs; fp16 on older ones (T4, V100); fp32 doubles memory.")
            with gr.Row():
                gpus = gr.Number(1, precision=0, label="GPUs")
                zero = gr.Dropdown([0, 1, 2, 3], value=0, label="ZeRO stage",
                                   info="Shards across GPUs: 1 optimizer states, 2 + gradients, 3 + weights.")
            load = gr.Button("Use the Train tab's settings", size="sm")
        with gr.Column(scale=3):
            gpu_choice = gr.Dropdown(choices, value=choices[0] if hardware.gpus() else NO_GPU_DEFAULT,
                                     label="Check against", info="A GPU in this machine (its free memory), "
                                     "or a GPU size when planning for another machine.")
            verdict = gr.Markdown()
            plot = gr.Plot(label="Where the memory goes")
            advice = gr.Markdown()
            with gr.Row():
                tokens = gr.Number(0, label="Training tokens (for the ETA)",
                                   info="Rows x average tokens x epochs; the Data tab shows token counts.")
                tps = gr.Number(0, label="Measured tokens/s (optional)",
                                info="From an earlier run's metrics; 0 looks it up for the GPU.")
            eta_md = gr.Markdown()
    form = [model, method, dpo, dpo_ref, batch, seq, accum, gc, optim, lora_r, targets, liger, precision]
    inputs = form + [gpus, zero, gpu_choice, tokens, tps]
    outputs = [verdict, plot, advice, eta_md]

    def estimate(*values):  # the model field takes paths: keep them inside the allowed roots
        return estimate_view(*values, roots=shared.allowed_roots)

    gr.on([c.change for c in inputs], estimate, inputs=inputs, outputs=outputs)
    load.click(from_train_config, inputs=[shared.config_yaml], outputs=form)
    demo = shared.extra.get("demo")
    if demo is not None:
        demo.load(estimate, inputs=inputs, outputs=outputs)
    _live_updates(live, refresh, shared)


def _live_updates(live, refresh, shared) -> None:
    """Refresh the readings every 2 s while this tab is selected (all the time if the tab strip
    cannot be found), and on demand."""
    tab = shared.extra.get("tab", {}).get("memory_tab")
    tabs = shared.extra.get("tabs")
    hooked = isinstance(tabs, gr.Tabs) and isinstance(tab, gr.Tab)
    timer = gr.Timer(2.0, active=not hooked)
    timer.tick(live_markdown, outputs=live)
    refresh.click(live_markdown, outputs=live)
    if hooked:
        label = tab.label

        def on_select(evt: gr.SelectData):
            return gr.Timer(active=evt.value in (label, tab.id))

        tabs.select(on_select, outputs=timer)
