"""Train tab: pick a preset, adjust the main settings, start, watch, stop and resume runs.

Widgets and wiring only. The config is a RunConfig (YAML in the advanced box, main fields as
widgets); studio.runs launches and stops the worker; studio.monitor turns a run folder into plots,
progress and a summary. A 1-second gr.Timer refreshes the selected run, and a page load re-attaches
to the run that is still going.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio import monitor, paths, runs
from studio.config import ADAPTERS, DISTRIBUTED, STAGES, RunConfig
from studio.errors import StudioError
from studio.paths import check_allowed, check_config_paths

# (widget label, RunConfig path, tooltip) for the main settings shown as widgets.
FIELDS = [
    ("Base model", "model.name_or_path", "A local folder or a hub id. The demo model is assets/demo-model."),
    ("Dataset", "data.path", "A .jsonl/.json/.csv/.parquet/.txt file; the Data tab checks it first."),
    ("Epochs", "training.epochs", "Passes over the data. 1-3 is typical; more risks memorising."),
    ("Max steps", "training.max_steps", "Stop after this many optimizer steps (-1 = use epochs)."),
    ("Batch size", "training.batch_size", "Examples per step on each device. Bigger = faster but more memory."),
    ("Gradient accumulation", "training.grad_accum",
     "Steps added up before each update: a bigger effective batch without more memory."),
    ("Learning rate", "training.learning_rate", "How big each update is. LoRA: 1e-4 to 2e-4; full: 1e-5."),
    ("Max length (tokens)", "data.max_length", "Longer examples are cut. Memory grows with this."),
    ("LoRA rank", "lora.r", "Size of the adapter. Higher learns more and uses more memory."),
    ("Hold out for eval", "data.eval_fraction", "Fraction of rows kept aside to measure eval loss (0 = none)."),
    ("GPUs", "training.num_gpus", "More than 1 launches one process per GPU through accelerate."),
]
CHECKS = [
    ("Gradient checkpointing", "training.gradient_checkpointing", "Saves memory, about 30% slower."),
    ("Packing", "data.packing", "Put several short examples in one row: fewer pad tokens, faster."),
    ("Train on answers only", "data.completion_only", "Loss only on assistant/completion tokens."),
]
CHOICES = [
    ("Multi-GPU strategy", "training.distributed",
     "With GPUs > 1. ddp: a full copy per GPU (fastest when it fits) · fsdp: weights, gradients and "
     "optimizer state split across GPUs · deepspeed_zero2/3: DeepSpeed's split (needs deepspeed)."),
]
OPTIONS = {"training.distributed": list(DISTRIBUTED)}
ALL_FIELDS = FIELDS + CHECKS + CHOICES


def preset_names() -> list[str]:
    return sorted(p.stem for p in paths.presets_dir().glob("*.yaml"))


def load_preset(name: str) -> RunConfig:
    return RunConfig.load(paths.presets_dir() / f"{name}.yaml")


def _get(cfg: RunConfig, path: str):
    obj = cfg
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _nest(path: str, value) -> dict:
    head, _, rest = path.partition(".")
    return {head: _nest(rest, value) if rest else value}


def config_from_form(yaml_text: str, name: str, stage: str, adapter: str, *values) -> RunConfig:
    """The advanced YAML with the visible widgets applied on top (widgets win)."""
    from studio.config import deep_merge

    cfg = RunConfig.from_yaml(yaml_text or "")
    over = {"name": name or cfg.name, "stage": stage, "adapter": adapter}
    for (_, path, _), v in zip(ALL_FIELDS, values):
        if v is not None and v != "":
            over = deep_merge(over, _nest(path, v))
    return cfg.merged(over)


def form_values(cfg: RunConfig) -> list:
    return [cfg.name, cfg.stage, cfg.adapter] + [_get(cfg, p) for _, p, _ in ALL_FIELDS] + [cfg.to_yaml()]


def build(shared) -> None:
    default = load_preset("demo-cpu")
    with gr.Row():
        with gr.Column(scale=2):
            preset = gr.Dropdown(preset_names(), value="demo-cpu", label="Preset",
                                 info="A starting point for your hardware; every field below can be changed.")
            name = gr.Textbox(label="Run name", value=default.name)
            with gr.Row():
                stage = gr.Dropdown(list(STAGES), value=default.stage, label="Method",
                                    info="sft: learn from examples · pretrain: raw text · dpo: from preferred "
                                         "vs rejected answers · reward/grpo: reward model and RL")
                adapter = gr.Dropdown(list(ADAPTERS), value=default.adapter, label="What to train",
                                      info="lora: a small adapter (fast, light) · qlora: adapter on a 4-bit "
                                           "model (least memory) · full: every weight (most memory)")
            widgets = []
            for label, path, tip in FIELDS:
                v = _get(default, path)
                kind = gr.Textbox if isinstance(v, str) else gr.Number
                widgets.append(kind(label=label, value=v, info=tip))
            for label, path, tip in CHECKS:
                widgets.append(gr.Checkbox(label=label, value=_get(default, path), info=tip))
            for label, path, tip in CHOICES:
                widgets.append(gr.Dropdown(OPTIONS[path], value=_get(default, path), label=label, info=tip))
            with gr.Accordion("All settings (YAML)", open=False):
                yaml_box = gr.Code(default.to_yaml(), language="yaml", label="Run config")
            with gr.Row():
                start_btn = gr.Button("Start training", variant="primary")
                stop_btn = gr.Button("Stop", variant="stop")
                resume_btn = gr.Button("Resume")
        with gr.Column(scale=3):
            with gr.Row():
                run_pick = gr.Dropdown(label="Run", choices=[], allow_custom_value=True, scale=4,
                                       info="Pick any run to see it; the newest running one is shown after a reload.")
                refresh = gr.Button("↻", scale=0, min_width=40)
            summary = gr.Markdown(monitor.summary({}))
            bar = gr.HTML(monitor.progress_html({}))
            with gr.Row():
                loss_plot, lr_plot = gr.Plot(label="Loss"), gr.Plot(label="Learning rate")
            with gr.Row():
                speed_plot, dpo_plot = gr.Plot(label="Speed"), gr.Plot(label="DPO", visible=False)
            log_box = gr.Textbox(label="Log (last lines)", lines=10, max_lines=10, autoscroll=True)
            compare_runs = gr.Dropdown(label="Compare loss curves of runs", multiselect=True, choices=[])
            with gr.Accordion("Run history", open=False):
                history = gr.Dataframe(headers=monitor.HISTORY_HEADERS, interactive=False, wrap=True)

    form = [name, stage, adapter, *widgets, yaml_box]

    def _run(run_dir) -> str:
        """A run folder picked or typed in the Run box: it must lie in the runs root (Stop signals
        the pid written in its status.json)."""
        if not run_dir:
            raise StudioError("Pick a run first.")
        run_dir = check_allowed(run_dir, [Path(shared.runs_root)], "run folder")
        if not Path(run_dir, "config.yaml").is_file():
            raise StudioError(f"{run_dir} is not a run (it has no config.yaml): pick one from the list.")
        return run_dir

    def _choices():
        # Names only: a state in the label would go stale; the summary shows the live state.
        return [(r["name"], r["run_dir"]) for r in runs.list_runs(shared.runs_root)]

    def on_preset(p):
        try:
            return form_values(load_preset(p))
        except StudioError as e:
            raise gr.Error(str(e))

    def on_shared_config(text):
        if not text:
            return [gr.skip()] * len(form)
        try:
            return form_values(RunConfig.from_yaml(text))
        except StudioError as e:
            gr.Warning(str(e))
            return [gr.skip()] * len(form)

    def on_start(yaml_text, nm, stg, adp, *values):
        try:
            cfg = config_from_form(yaml_text, nm, stg, adp, *values).check()
            check_config_paths(cfg, shared.allowed_roots)
            busy = runs.active_run(shared.runs_root)  # looked up before this run exists (newest wins)
            run_dir = runs.create_run(cfg, shared.runs_root)
            runs.start(run_dir)
        except StudioError as e:
            raise gr.Error(str(e), duration=None)
        if busy:
            gr.Info(f"Another run ({Path(busy).name}) is training; this one waits in the queue and starts after it.")
        return gr.update(choices=_choices(), value=str(run_dir)), str(run_dir)

    def on_stop(run_dir):
        try:
            st = runs.stop(_run(run_dir))
        except StudioError as e:
            raise gr.Error(str(e))
        gr.Info(f"Run {st.get('state')}.")

    def on_resume(run_dir):
        try:
            runs.resume(_run(run_dir))
        except StudioError as e:
            raise gr.Error(str(e))
        gr.Info("Resuming from the last checkpoint.")

    def refresh_view(run_dir, others):
        try:
            run_dir = _run(run_dir) if run_dir else ""
            others = [_run(o) for o in (others or []) if o != run_dir]
        except StudioError as e:  # the timer calls this every second: say it in place, no popups
            return f"**{e}**", monitor.progress_html({}), None, None, None, gr.update(visible=False), ""
        if not run_dir or not Path(run_dir, "status.json").exists():
            return monitor.summary({}), monitor.progress_html({}), None, None, None, gr.update(visible=False), ""
        st = runs.status(run_dir)
        figs = monitor.figures([run_dir] + others)
        tail = runs.log_tail(run_dir, 12) if st.get("state") in runs.ACTIVE else st.get("log_tail") or \
            runs.log_tail(run_dir, 12)
        return (monitor.summary(st, run_dir), monitor.progress_html(st), figs["loss"], figs["lr"],
                figs["speed"], gr.update(value=figs["dpo"], visible=True) if figs["dpo"].data
                else gr.update(visible=False), tail)  # the DPO plot shows only for DPO runs

    def on_pick(run_dir):  # other tabs follow only runs inside the runs root
        try:
            return _run(run_dir)
        except StudioError:
            return ""

    def on_load():
        active = runs.active_run(shared.runs_root)
        choices = _choices()
        value = active or (choices[0][1] if choices else None)
        return (gr.update(choices=choices, value=value), gr.update(choices=choices), value or "",
                monitor.history_rows(shared.runs_root))

    def on_dataset(path):  # "Use for training" in the Data tab fills the Dataset field here
        return path or gr.skip()

    view = [summary, bar, loss_plot, lr_plot, speed_plot, dpo_plot, log_box]
    preset.change(on_preset, preset, form)
    shared.config_yaml.change(on_shared_config, shared.config_yaml, form)
    start_btn.click(on_start, [yaml_box, name, stage, adapter, *widgets], [run_pick, shared.run_dir])
    stop_btn.click(on_stop, run_pick, None).then(refresh_view, [run_pick, compare_runs], view)
    resume_btn.click(on_resume, run_pick, None)
    run_pick.change(on_pick, run_pick, shared.run_dir).then(refresh_view, [run_pick, compare_runs], view)
    compare_runs.change(refresh_view, [run_pick, compare_runs], view)
    refresh.click(on_load, None, [run_pick, compare_runs, shared.run_dir, history])
    shared.dataset_path.change(on_dataset, shared.dataset_path, widgets[[p for _, p, _ in FIELDS].index("data.path")])
    gr.Timer(1.0).tick(refresh_view, [run_pick, compare_runs], view, show_progress="hidden")
    shared.extra["demo"].load(on_load, None, [run_pick, compare_runs, shared.run_dir, history])
