"""Wizard tab: a plain-language questionnaire that ends in advice and, where it fits, a ready config.

Widgets and wiring only: the answers become a studio.wizard.Answers, studio.wizard.recommend()
decides, and this module formats the result. "Use this config" writes the YAML to the shared
`config_yaml` state (the Train tab listens to it); "Use the demo preset" sends presets/demo-cpu.yaml.
Hardware is read live through studio.wizard.detect_hardware(), which tolerates its absence.
"""

from __future__ import annotations

import gradio as gr

from studio import wizard
from studio.config import RunConfig
from studio.errors import StudioError
from studio.paths import check_allowed, check_config_paths
from studio.presets import HARDWARE, preset_path

GOALS = [("Answer in a consistent tone, persona or writing style", "style"),
         ("Always produce a fixed output format (JSON, a template, ...)", "format"),
         ("Do one narrow task well (classify, extract, summarise, ...)", "task"),
         ("Speak the language of a specialist field (medicine, law, ...)", "domain"),
         ("Prefer better answers: more helpful, safer, on-brand", "alignment"),
         ("Answer questions from our own documents", "knowledge")]
PROMPTING = [("Not yet", "not_tried"), ("Yes, and it works well", "works"),
             ("Yes, but results are uneven", "partly"), ("Yes, and it does not work", "fails")]
KINDS = [("Instructions with answers", "instructions"), ("Chat conversations", "chat"),
         ("Pairs of a better and a worse answer", "preferences"), ("Plain text from my field", "raw_text")]
SIZES = [("Let the wizard choose", "auto"), ("Small: fast and cheap (up to 3B)", "small"),
         ("Medium: the usual sweet spot (7B)", "medium"), ("Large: best quality, slowest (14B-72B)", "large")]
METHODS = [("Let the wizard choose", "auto"), ("Full fine-tuning", "full"), ("LoRA", "lora"),
           ("QLoRA", "qlora"), ("Prompt tuning", "prompt_tuning")]
# "Plan for" machines other than this one: (NVML-style name, usable GiB) per preset hardware key.
PLAN_GPUS = {"t4-16gb": ("Tesla T4", 15.0), "rtx4090-24gb": ("NVIDIA GeForce RTX 4090", 23.6),
             "a100-40gb": ("NVIDIA A100 40GB", 39.4), "a100-80gb": ("NVIDIA A100 80GB", 79.2),
             "h100-80gb": ("NVIDIA H100 80GB", 79.6)}
STAGE_NAMES = {"pretrain": "continued pre-training", "sft": "supervised fine-tuning (SFT)",
               "dpo": "preference tuning (DPO)", "reward": "a reward model", "grpo": "reinforcement learning (GRPO)"}
TITLES = {"prompting": "Start with prompting", "rag": "Use retrieval (RAG), not fine-tuning",
          "fine_tune": "Fine-tune", "not_yet": "Not yet: gather more examples first"}


def hardware_text(hw: dict) -> str:
    if hw.get("device") == "cuda":
        more = f" ({hw['num_gpus']} GPUs; a plan that does not fit one spreads over all)" if hw.get("num_gpus", 1) > 1 else ""
        return (f"**Detected:** {hw['gpu_name']}, {hw['free_gib']:.1f} GiB of GPU memory free "
                f"of {hw['total_gib']:.1f} GiB{more}.")
    if hw.get("device") == "mps":
        return (f"**Detected:** an Apple silicon Mac. The GPU shares the {hw['total_gib']:.0f} GiB of memory "
                f"with macOS; about {hw['free_gib']:.0f} GiB can go to training.")
    return ("**Detected:** no GPU, so this computer can train only the tiny demo model. "
            + (hw.get("note") or "Pick another machine below to plan a run for it."))


def planned_hardware(choice: str) -> dict:
    if choice in PLAN_GPUS:
        name, gib = PLAN_GPUS[choice]
        return {"device": "cuda", "gpu_name": name, "free_gib": gib * 0.97, "total_gib": gib}
    if choice in ("cpu", "mps"):
        return {"device": choice, "total_gib": 16.0, "free_gib": 8.0} if choice == "mps" else {"device": "cpu"}
    return wizard.detect_hardware()


def render(rec: wizard.Recommendation) -> str:
    out = [f"## {TITLES[rec.approach]}"]
    if rec.stages:
        plan = " → ".join(STAGE_NAMES[s] for s in rec.stages)
        head = "Plan" if rec.approach == "fine_tune" else "Plan, once you have the data"
        out.append(f"**{head}:** {plan} with **{dict((v, k) for k, v in METHODS)[rec.method]}** on "
                   f"`{rec.model}`" + (f" (closest preset: `{rec.preset}`)" if rec.preset else ""))
    out += [f"- {'✅' if f.kind == 'green' else '⚠️'} {f.text}" for f in rec.flags]
    out.append("\n**Why**")
    out += [f"- {r}" for r in rec.reasons]
    if rec.vram_peak_gib is not None:
        out.append(f"\n**Memory estimate:** {rec.vram_peak_gib:.1f} GiB at the peak "
                   f"({'fits' if rec.vram_fits else 'does not fit'}).")
    if rec.config is not None:
        out.append("\nReview the config on the right, then press **Use this config** to fill the Train tab.")
    return "\n".join(out)


def example_count(value) -> int:
    """The 'How many examples' box as a whole number >= 0, or a StudioError that says so."""
    try:
        n = int(float(value or 0))
    except (TypeError, ValueError, OverflowError):
        raise StudioError("'How many examples do you have?' needs a whole number, like 800.") from None
    if n < 0:
        raise StudioError("'How many examples do you have?' cannot be negative.")
    return n


def advise(form: dict, plan_for: str, stats: dict | None, roots=None) -> tuple[str, str]:
    """Widget values (by Answers field name) -> (the verdict as Markdown, the config YAML or "").
    With `roots` (the UI passes the allowed roots), a dataset path must lie inside them."""
    try:
        if roots is not None and (form.get("dataset_path") or "").strip():
            check_allowed(form["dataset_path"], roots, "dataset file", names_ok=True)
        answers = wizard.Answers.from_dict({**form, "n_examples": example_count(form.get("n_examples")),
                                            "dataset_stats": stats or {}, "hardware": planned_hardware(plan_for)})
        rec = wizard.recommend(answers)
    except StudioError as e:
        raise gr.Error(str(e)) from None
    return render(rec), rec.config.to_yaml() if rec.config else ""


def use_config(text: str, roots=None):
    """The edited YAML, checked (paths inside `roots` when given), for the shared config state."""
    if not (text or "").strip():
        gr.Warning("There is no config to use: the wizard does not recommend training yet. "
                   "Try the demo preset to see how training works.")
        return gr.skip(), ""
    try:
        cfg = RunConfig.from_yaml(text).check()
        if roots is not None:
            check_config_paths(cfg, roots)
    except StudioError as e:
        raise gr.Error(str(e)) from None
    return text, "Sent to the **Train** tab. Open it to review the settings and press Start."


def demo_preset():
    try:
        text = preset_path("demo-cpu").read_text(encoding="utf-8")  # the file itself: comments travel along
        RunConfig.from_yaml(text).check()
    except StudioError as e:
        raise gr.Error(str(e)) from None
    return text, text, "The demo preset is in the **Train** tab: a run of a few minutes on the tiny demo model."


def build(shared) -> None:
    gr.Markdown("Answer a few questions in your own words. The wizard says whether fine-tuning is the right "
                "tool at all, and if so prepares a training plan that fits your computer.")
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Accordion("1 · What do you want?", open=True):
                goal = gr.Radio(GOALS, value="style", label="What should the model get better at?")
                prompting = gr.Radio(
                    PROMPTING, value="partly", label="Have you tried a good prompt with a few examples?",
                    info="A prompt is the instruction you type to the model. 'A few examples' means showing it "
                         "2-5 worked examples inside the prompt (called few-shot prompting). It is free to try.")
                fresh = gr.Checkbox(
                    label="The answers depend on documents that change often or are private",
                    info="Then retrieval (RAG) fits better: the app looks the facts up in your documents "
                         "at question time, instead of the model memorising them.")
                consistent = gr.Checkbox(label="I need the same style or format every single time")
                privacy = gr.Checkbox(
                    label="My data must not leave our machines",
                    info="Hosted AI services process text on their servers; a model you fine-tune runs on yours.")
                cost = gr.Checkbox(
                    label="We will send many requests, so running cost matters",
                    info="A small model trained for one job is much cheaper per request than a large general one.")
            with gr.Accordion("2 · Your data", open=True):
                n = gr.Number(value=0, precision=0, minimum=0, label="How many examples do you have?",
                              info="One example = one input with the answer you want (or one better/worse pair). "
                                   "Fewer than 100 is too few; 500-1,000 good ones is a sound start.")
                kinds = gr.CheckboxGroup(
                    KINDS, value=["chat"], label="What kind of data is it? (tick all you have)",
                    info="Better/worse pairs teach preferences (DPO). Plain text from your field teaches its "
                         "vocabulary (continued pre-training). With several kinds, training runs in stages.")
                path = gr.Textbox(label="Dataset file (optional)", placeholder="Filled in by the Data tab",
                                  info="When set, the plan points at this file.")
                want_rl = gr.Checkbox(
                    label="Advanced: train a reusable reward model, then reinforcement learning",
                    info="A reward model scores answers; RL then trains the model to score higher. "
                         "Needs 10,000+ pairs and is harder to tune than DPO.")
            with gr.Accordion("3 · Your computer", open=True):
                hw_md = gr.Markdown(lambda: hardware_text(wizard.detect_hardware()))
                refresh = gr.Button("Check the hardware again", size="sm")
                plan_for = gr.Dropdown(
                    [("This computer (detected above)", "detected"), ("CPU only", "cpu"),
                     ("Apple silicon Mac (MPS)", "mps")] + [(HARDWARE[k]["label"], k) for k in PLAN_GPUS],
                    value="detected", label="Plan for",
                    info="GPU memory (VRAM) limits what can train. Planning for a cloud GPU? Pick it here.")
                size = gr.Radio(SIZES, value="auto", label="Model size",
                                info="Sizes count parameters in billions (7B = 7 billion). Bigger is smarter "
                                     "but needs more memory and is slower to train and to run.")
                method = gr.Dropdown(
                    METHODS, value="auto", label="Training method",
                    info="Full: trains every weight (most memory). LoRA: trains small add-on matrices, keeps "
                         "the original. QLoRA: LoRA on a 4-bit copy, for small GPUs. Prompt tuning: the lightest.")
            go = gr.Button("Get my recommendation", variant="primary")
        with gr.Column(scale=2):
            verdict = gr.Markdown("Your recommendation will appear here.")
            code = gr.Code(language="yaml", label="Ready config (you can edit it)", interactive=True, lines=18)
            with gr.Row():
                use = gr.Button("Use this config", variant="primary")
                demo = gr.Button("Use the demo preset")
            note = gr.Markdown()

    target = shared.config_yaml if shared.config_yaml is not None else gr.State("")
    stats = shared.extra.get("dataset_stats")
    stats = stats if isinstance(stats, gr.State) else gr.State({})
    fields = {"goal": goal, "prompting": prompting, "needs_fresh_knowledge": fresh,
              "needs_consistency": consistent, "privacy": privacy, "cost_at_scale": cost, "n_examples": n,
              "data_kinds": kinds, "dataset_path": path, "want_rl": want_rl, "model_size": size,
              "method": method}

    def on_recommend(values: dict):
        form = {k: values[c] for k, c in fields.items()}
        return advise(form, values[plan_for], values[stats], shared.allowed_roots)

    go.click(on_recommend, set(fields.values()) | {plan_for, stats}, [verdict, code])
    use.click(lambda text: use_config(text, shared.allowed_roots), code, [target, note], api_name="use_config")
    demo.click(demo_preset, None, [code, target, note])
    refresh.click(lambda: hardware_text(wizard.detect_hardware()), None, hw_md)
    if shared.dataset_path is not None:
        shared.dataset_path.change(lambda p: p or gr.skip(), shared.dataset_path, path)
