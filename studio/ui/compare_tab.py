"""Compare tab: base vs fine-tuned side by side, blind A/B votes, prompt sets and batch evaluation.

Widgets and wiring only. studio.chat picks the weights (a run, a checkpoint, another run) and
streams both sides from one batch; studio.evaluate runs prompt sets, votes and the metrics. Models
live in the app-wide cache kept in `shared.extra`, never in a gr.State.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from studio import chat, evaluate
from studio.errors import StudioError
from studio.paths import check_allowed
from studio.ui.inputs import real, whole

BASE_CHOICE = "Base model of this run"


def _sides(run: str | None, ckpt: str | None, against: str | None, against_ckpt: str | None):
    """(left, right): right is the chosen run's weights, left its base model or another run."""
    if not run:
        raise StudioError("Pick a run first (train one in the Train tab, then press Refresh).")
    right = chat.run_side(run, ckpt or "final")
    if not against or against == BASE_CHOICE:
        return chat.base_side(run), right
    return chat.run_side(against, against_ckpt or "final"), right


def _last(history: list | None, role: str) -> str:
    return next((chat.content_text(m.get("content")) for m in reversed(history or []) if m.get("role") == role), "")


def build(shared) -> None:
    cache = shared.extra.setdefault("model_cache", chat.ModelCache())
    cancels = shared.extra.setdefault("chat_cancels", chat.Cancels())
    w = SimpleNamespace()
    gr.Markdown("Same prompt, settings and seed on both sides. **Left:** the base model (or another run). "
                "**Right:** the fine-tuned run. Both share one copy of the base weights.")
    with gr.Row():
        runs = chat.list_compare_runs(shared.runs_root)  # refreshed on page load and by the button
        w.run = gr.Dropdown(label="Fine-tuned run", choices=runs, value=runs[0][1] if runs else None, scale=3)
        w.ckpt = gr.Dropdown(label="Weights", choices=["final"], value="final", scale=2,
                             info="final, or a checkpoint saved during training")
        w.against = gr.Dropdown(label="Compare against", choices=[(BASE_CHOICE, BASE_CHOICE)] + runs,
                                value=BASE_CHOICE, scale=3)
        w.against_ckpt = gr.Dropdown(label="Their weights", choices=["final"], value="final", scale=2,
                                     visible=False)
        refresh = gr.Button("Refresh runs", scale=1)
    note = gr.Markdown()
    with gr.Row():
        w.system = gr.Textbox(label="System prompt", placeholder="optional, e.g. You are a helpful assistant.",
                              scale=3)
        w.temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature", info="0 = greedy")
        w.top_p = gr.Slider(0.05, 1, value=0.9, step=0.05, label="Top-p")
        w.max_new = gr.Slider(8, 1024, value=200, step=8, label="Max new tokens")
    with gr.Row():
        w.seed = gr.Number(0, precision=0, label="Seed (same for both sides)")
        w.stops = gr.Textbox(label="Stop strings", placeholder="comma-separated, e.g. ###, User:", scale=2)
        w.blind = gr.Checkbox(label="Blind A/B: hide and shuffle the sides, then vote")
    with gr.Row():
        w.left = gr.Chatbot(label="Base", height=420)
        w.right = gr.Chatbot(label="Fine-tuned", height=420)
    with gr.Row():
        w.msg = gr.Textbox(show_label=False, placeholder="Ask both models…", scale=5)
        send = gr.Button("Send", variant="primary")
        stop = gr.Button("Stop")
        clear = gr.Button("Clear")
    with gr.Row(visible=False) as vote_row:
        vote_a, vote_tie, vote_b = gr.Button("A is better"), gr.Button("Tie"), gr.Button("B is better")
    vote_md = gr.Markdown()
    w.order = gr.State([0, 1])  # which side shows as A / B (shuffled in blind mode)
    with gr.Accordion("Prompt sets: re-run saved prompts on both sides", open=False):
        with gr.Row():
            pset = gr.Dropdown(label="Prompt set", choices=[], scale=4,
                               info="assets/prompts/*.jsonl and RUN_DIR/prompts/*.json(l)")
            pset_btn = gr.Button("Run prompt set", scale=1)
        pset_table = gr.Dataframe(headers=["#", "prompt", "left", "right", "rougeL (left / right)"], wrap=True)
    with gr.Accordion("Batch evaluation: base vs fine-tuned on held-out data", open=False):
        with gr.Row():
            split = gr.Dropdown(["validation", "train"], value="validation", label="Split",
                                info="validation = rows held out from training")
            limit = gr.Number(40, precision=0, label="Examples (0 = all)")
            eval_btn = gr.Button("Evaluate", variant="primary")
        eval_table = gr.Dataframe(headers=["metric", "base", "fine-tuned"], label="Results")
        differ_table = gr.Dataframe(headers=["prompt", "reference", "base", "fine-tuned", "Δ ROUGE-L"],
                                    label="Where the two differ most", wrap=True)
    pick = [w.run, w.ckpt, w.against, w.against_ckpt]

    def guard(*runs) -> None:
        """Runs come from dropdowns (gradio checks the choices); still, only the runs root is read."""
        for r in runs:
            if r and r != BASE_CHOICE:
                check_allowed(r, [Path(shared.runs_root)], "run folder")

    def settings(v) -> chat.GenSettings:
        return chat.GenSettings(
            system_prompt=v[w.system] or "", temperature=real(v[w.temperature], "Temperature", 0.7),
            top_p=real(v[w.top_p], "Top-p", 0.9), max_new_tokens=whole(v[w.max_new], "Max new tokens", 200),
            seed=whole(v[w.seed], "Seed", 0, 0, 2**32 - 1),
            stop=[s.strip() for s in (v[w.stops] or "").split(",") if s.strip()])

    def on_refresh(current, announce=True):
        runs = chat.list_compare_runs(shared.runs_root)
        paths = [p for _, p in runs]
        value = current if current in paths else (paths[0] if paths else None)
        if not runs and announce:
            gr.Info("No run with saved weights yet: train one in the Train tab.")
        return (gr.update(choices=runs, value=value),
                gr.update(choices=[(BASE_CHOICE, BASE_CHOICE)] + runs))

    def on_run(run, against, against_ckpt):
        ckpts = chat.list_checkpoints(run) if run else ["final"]
        sets = [(p.name, str(p)) for p in evaluate.list_prompt_sets(run)]
        text = ""
        try:
            text = chat.describe_pair(*_sides(run, ckpts[0] if ckpts else "final", against, against_ckpt))
        except StudioError as e:
            text = str(e)
        return (gr.update(choices=ckpts, value=ckpts[0] if ckpts else None),
                gr.update(choices=sets, value=sets[0][1] if sets else None), text)

    def on_shared_run(run_dir):  # the Train tab picked a run: follow it once it has weights
        runs = chat.list_compare_runs(shared.runs_root)
        if not run_dir or run_dir not in [p for _, p in runs]:
            return gr.skip()
        return gr.update(choices=runs, value=run_dir)

    def on_against(against):
        other = bool(against) and against != BASE_CHOICE
        ckpts = chat.list_checkpoints(against) if other else ["final"]
        return gr.update(choices=ckpts, value=ckpts[0] if ckpts else None, visible=other)

    def on_send(v, request: gr.Request):
        text = (v[w.msg] or "").strip()
        if not text:
            gr.Warning("Type a message first.")
            return
        try:
            guard(v[w.run], v[w.against])
            sides = _sides(v[w.run], v[w.ckpt], v[w.against], v[w.against_ckpt])
            s = settings(v).check()
        except StudioError as e:
            raise gr.Error(str(e)) from None
        left, right = list(v[w.left] or []), list(v[w.right] or [])
        order = [0, 1]
        if v[w.blind]:
            order = evaluate.blind_order() if not left else list(v[w.order])
        shown = [sides[order[0]], sides[order[1]]]
        convs = [chat.build_conversation(s.system_prompt, h, text) for h in (left, right)]
        left += [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        right += [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        labels = ["Model A", "Model B"] if v[w.blind] else [shown[0].label, shown[1].label]
        cancel = cancels.fresh(request.session_hash if request else "cli")
        try:
            for texts, waiting in chat.stream_rows(cache, shown, convs, s, cancel=cancel):
                left[-1]["content"], right[-1]["content"] = texts
                yield {w.left: gr.update(value=left, label=labels[0]), w.right: gr.update(value=right, label=labels[1]),
                       w.msg: "", w.order: order, note: waiting or chat.describe_pair(*shown),
                       vote_row: gr.update(visible=bool(v[w.blind]))}
        except StudioError as e:
            raise gr.Error(str(e)) from None

    def on_stop(request: gr.Request):
        cancels.cancel(request.session_hash if request else "cli")

    def vote(choice):
        return lambda v: on_vote(choice, v)

    def on_vote(choice, v):
        try:
            guard(v[w.run], v[w.against])
            sides = _sides(v[w.run], v[w.ckpt], v[w.against], v[w.against_ckpt])
            shown = [sides[v[w.order][0]], sides[v[w.order][1]]]
            evaluate.record_vote(v[w.run], choice, shown, [_last(v[w.left], "assistant"), _last(v[w.right], "assistant")],
                                 _last(v[w.left], "user"), settings(v))
        except StudioError as e:
            raise gr.Error(str(e)) from None
        tally = ", ".join(f"{k}: {n}" for k, n in evaluate.vote_tally(v[w.run]).items())
        return (f"Saved. **A** was `{shown[0].label}`, **B** was `{shown[1].label}`. "
                f"Votes so far — {tally}. Press Clear for a new blind round.")

    def on_prompt_set(v, progress=gr.Progress()):
        try:
            guard(v[w.run], v[w.against])
            left, right = _sides(v[w.run], v[w.ckpt], v[w.against], v[w.against_ckpt])
            if not v[pset]:
                raise StudioError("Pick a prompt set (or add .jsonl files to assets/prompts/).")
            check_allowed(v[pset], shared.allowed_roots, "prompt set")
            rows = evaluate.run_prompt_set(cache, left, right, v[pset], settings(v).check(),
                                           progress=lambda f, m: progress(f, desc=m))
        except StudioError as e:
            raise gr.Error(str(e)) from None
        except Exception as e:  # a bug or out of memory: say what happened, no traceback
            raise gr.Error(f"The prompt set failed: {type(e).__name__}: {e}") from None
        return gr.update(value=[[r["#"], r["prompt"], r["left"], r["right"], r["rougeL"]] for r in rows],
                         headers=["#", "prompt", left.label, right.label, "rougeL (left / right)"])

    def on_eval(run, ckpt, split_name, n, progress=gr.Progress()):
        if not run:
            raise gr.Error("Pick a run first.")
        try:
            guard(run)
            rep = evaluate.evaluate_run(run, split=split_name, limit=int(n or 0), checkpoint=ckpt or "final",
                                        cache=cache, progress=lambda f, m: progress(f, desc=m))
        except StudioError as e:
            raise gr.Error(str(e)) from None
        except Exception as e:  # a bug or out of memory: say what happened, no traceback
            raise gr.Error(f"Evaluation failed: {type(e).__name__}: {e}") from None
        fmt = lambda x: "n/a" if x is None else round(x, 4)  # noqa: E731
        table = [[k, fmt(rep["base"][k]), fmt(rep["tuned"][k])] for k in ("perplexity", "rougeL", "bleu", "exact_match")]
        table.append(["examples", rep["base"]["n"], rep["tuned"]["n"]])
        differ = [[r["prompt"], r["reference"], r["base"], r["tuned"], r["delta"]] for r in rep["differ_most"]]
        gr.Info(f"Evaluated {rep['base']['n']} examples from {Path(rep['source']).name} in {rep['seconds']} s.")
        return table, differ

    send_inputs = {w.run, w.ckpt, w.against, w.against_ckpt, w.system, w.temperature, w.top_p, w.max_new,
                   w.seed, w.stops, w.blind, w.msg, w.left, w.right, w.order}
    send_outputs = [w.left, w.right, w.msg, w.order, note, vote_row]
    events = [ev(on_send, send_inputs, send_outputs, concurrency_limit=8)  # sessions queue on the model lock
              for ev in (send.click, w.msg.submit)]
    stop.click(on_stop, None, None, cancels=events)
    cleared = [w.left, w.right, w.order, vote_md, vote_row]
    clear.click(lambda: ([], [], [0, 1], "", gr.update(visible=False)), None, cleared, cancels=events,
                api_name="clear")
    # Switching blind mode mid-conversation would mix up which history is whose: start afresh.
    w.blind.change(lambda: ([], [], [0, 1], "", gr.update(visible=False)), None, cleared, api_visibility="private")
    for btn, choice in ((vote_a, "A"), (vote_tie, "tie"), (vote_b, "B")):
        btn.click(vote(choice), send_inputs, vote_md, api_name=f"vote_{choice.lower()}")
    pset_inputs = {w.run, w.ckpt, w.against, w.against_ckpt, w.system, w.temperature, w.top_p, w.max_new,
                   w.seed, w.stops, pset}
    pset_btn.click(on_prompt_set, pset_inputs, pset_table)
    eval_btn.click(on_eval, [w.run, w.ckpt, split, limit], [eval_table, differ_table])
    refresh.click(on_refresh, w.run, [w.run, w.against])
    w.run.change(on_run, [w.run, w.against, w.against_ckpt], [w.ckpt, pset, note])
    w.against.change(on_against, w.against, w.against_ckpt)
    shared.run_dir.change(on_shared_run, shared.run_dir, w.run)
    if "demo" in shared.extra:
        shared.extra["demo"].load(lambda r: on_refresh(r, announce=False), w.run, [w.run, w.against])
    my_tab = shared.extra.get("tab", {}).get("compare_tab")
    if my_tab is not None:  # runs that finished meanwhile appear when the tab is opened
        my_tab.select(lambda r: on_refresh(r, announce=False), w.run, [w.run, w.against])
