"""The whole journey in a real browser: Playwright drives Debian's Chromium against `python app.py`.

One app process (its own runs folder under tmp) serves both tests:
- test_journey: Wizard -> Data (load a sample, clean it) -> Memory -> Train (the demo preset on the
  cleaned file, fewer steps, the loss plot updating) -> Compare (both sides stream) -> Export (adapter),
  saving a screenshot of each tab into assets/screenshots/.
- test_two_sessions: two browser contexts at once; one starts two runs (the second queues) while the
  other uploads a dataset and chats in Compare; both runs finish and the chat answers.

Selectors are roles, labels and visible text, never gradio's internal ids. Skipped with the reason
when Chromium or Playwright is missing. Run: `pytest -m browser tests/test_browser.py`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Screenshots go to a temp folder; STUDIO_SCREENSHOTS=assets/screenshots refreshes the README's
# pictures (a test run must not rewrite tracked files).
SHOTS = Path(os.environ.get("STUDIO_SCREENSHOTS") or Path(tempfile.gettempdir()) / "studio-screenshots")
MAX_SHOT_BYTES = 300_000
# 80 steps of the demo preset: ~5 s of training on an idle 2-core machine, ~45 s on a busy one;
# with a point every 5 steps the 1 s timer redraws the loss plot several times either way.
JOURNEY_STEPS = 80
PROMPT = "What color is a leaf in summer?"


def _skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` " \
               "(scripts/setup.sh --dev does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -r requirements-dev.txt"
    return None


if _skip_reason():
    pytest.skip(_skip_reason(), allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

# Playwright's assertions wait 5 s by default. On a 2-core CI machine with a run training in the
# background an upload or a tab's answer can take longer (a two-session run failed that way), so
# every assertion waits up to 30 s; the slow steps still set their own, longer limits.
expect.set_options(timeout=30_000)


# -- the app -------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(base url, runs folder) of a real `app.py` process, stopped at the end."""
    from studio.demo import ensure_demo

    ensure_demo()  # assets/demo-model is gitignored: build it once (offline, ~30 s) if missing
    tmp = tmp_path_factory.mktemp("browser")
    runs = tmp / "runs"
    port = _free_port()
    env = {**os.environ, "STUDIO_RUNS": str(runs), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    log = open(tmp / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--runs", str(runs)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        t0 = time.time()
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() - t0 > 90:
                pytest.fail("the app did not answer HTTP within 90 s:\n" + (tmp / "app.log").read_text()[-3000:])
            time.sleep(0.25)
        yield url, runs
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        text = (tmp / "app.log").read_text(errors="replace")
        if "Traceback" in text:  # show server-side errors of a failing run in pytest's report
            print("---- app.log (tail) ----\n" + text[-4000:])


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


# -- helpers ---------------------------------------------------------------------------------------
def open_tab(page: Page, name: str):
    """Click a top-level tab and return its (visible) panel to scope the selectors."""
    page.get_by_role("tab", name=name, exact=True).first.click()
    panel = page.locator("[role=tabpanel]:visible").first
    expect(panel).to_be_visible()
    return panel


def textbox(panel, label: str):
    return panel.get_by_role("textbox", name=re.compile("^" + re.escape(label)))


def number(panel, label: str):
    return panel.get_by_role("spinbutton", name=re.compile("^" + re.escape(label)))


def shot(page: Page, name: str, element=None) -> Path:
    """A viewport screenshot (scrolled to `element` or the top), small enough to commit."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    dismiss_toasts(page)
    if element is not None:
        element.scroll_into_view_if_needed()
    else:
        page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)  # let plots finish their transition
    out = SHOTS / f"{name}.png"
    page.screenshot(path=str(out))
    assert out.stat().st_size < MAX_SHOT_BYTES, f"{out} is {out.stat().st_size} bytes"
    return out


def dismiss_toasts(page: Page) -> None:
    """Close notification toasts so they do not cover the screenshots."""
    for btn in page.get_by_role("button", name=re.compile("^(Close|×)$")).all():
        try:
            btn.click(timeout=500)
        except Exception:  # it closed by itself meanwhile
            pass


def plot_points(page: Page, title_prefix: str) -> int:
    """Points in the first trace of the visible plotly figure whose title starts with the prefix
    (plotly keeps the drawn data on its graph div: public plotly.js API)."""
    return page.evaluate(
        """(prefix) => {
            for (const el of document.querySelectorAll('.js-plotly-plot')) {
                if (el.offsetParent === null || !el.layout) continue;
                const t = el.layout.title && (el.layout.title.text || el.layout.title);
                if (typeof t === 'string' && t.startsWith(prefix))
                    return (el.data && el.data[0] && el.data[0].x) ? el.data[0].x.length : 0;
            }
            return -1;
        }""", title_prefix)


def chat_texts(panel) -> list[str]:
    """The text of both chatbots (role=log), base first."""
    return [log.inner_text() for log in panel.get_by_role("log").all()]


def answers(panel, prompt: str) -> list[str]:
    """What each chatbot shows besides the prompt (its streamed answer so far)."""
    return [t.replace(prompt, "").strip() for t in chat_texts(panel)]


def start_training(panel, dataset: str, steps: int) -> None:
    textbox(panel, "Dataset").fill(dataset)
    number(panel, "Max steps").fill(str(steps))
    panel.get_by_role("button", name="Start training").click()


def wait_finished(panel, timeout_s: float) -> None:
    expect(panel.get_by_text(re.compile("^Finished$"))).to_be_visible(timeout=timeout_s * 1000)


def send_and_watch(page: Page, panel, prompt: str, timeout_s: float = 120) -> tuple[list[str], int]:
    """Send a prompt in Compare; (final answers, how many distinct partial states were seen)."""
    panel.get_by_placeholder("Ask both models…").fill(prompt)
    panel.get_by_role("button", name="Send", exact=True).click()
    seen, t0, stable = set(), time.time(), 0
    last = None
    while time.time() - t0 < timeout_s:
        now = tuple(answers(panel, prompt))
        if len(now) == 2 and all(now):
            seen.add(now)
            stable = stable + 1 if now == last else 0
            if stable >= 30:  # unchanged for ~1.5 s: generation is over
                return list(now), len(seen)
        last = now
        page.wait_for_timeout(50)
    pytest.fail(f"Compare did not answer on both sides within {timeout_s} s: {last}")


# -- the journey -----------------------------------------------------------------------------------
def test_journey(app, browser):
    url, runs = app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(url)
    expect(page.get_by_text("Fine-Tune Studio").first).to_be_visible()
    assert [t.strip() for t in page.get_by_role("tab").all_inner_texts()[:6]] == \
        ["Wizard", "Data", "Memory", "Train", "Compare", "Export"]

    # 1. Wizard: answer a few questions, read the advice, then take the demo preset.
    wiz = open_tab(page, "Wizard")
    number(wiz, "How many examples do you have?").fill("800")
    wiz.get_by_label("I need the same style or format every single time").check()
    wiz.get_by_role("button", name="Get my recommendation").click()
    expect(wiz.get_by_text("Why", exact=True)).to_be_visible()
    wiz.get_by_role("button", name="Use the demo preset").click()
    expect(wiz.get_by_text("The demo preset is in the")).to_be_visible()
    shot(page, "wizard")

    # 2. Data: a sample's format and preview, then clean it and read what was removed.
    data = open_tab(page, "Data")
    data.get_by_label("…or a sample dataset").click()
    page.get_by_role("option", name=re.compile(r"messages\.jsonl$")).click()
    expect(data.get_by_text(re.compile(r"messages\.jsonl: 400 rows · format messages"))).to_be_visible()
    expect(data.get_by_text("Ahoy!", exact=False).filter(visible=True).first).to_be_visible()  # the table preview
    shot(page, "data")
    data.get_by_role("tab", name="Clean", exact=True).click()
    data.get_by_role("button", name="Clean", exact=True).click()
    expect(page.get_by_text(re.compile(r"Kept \d+ of 400 rows"))).to_be_visible(timeout=120_000)
    kept = int(re.search(r"Kept (\d+) of 400", page.get_by_text(re.compile(r"Kept \d+ of 400 rows"))
                         .first.inner_text()).group(1))
    assert 350 < kept < 400  # the sample has ~20 planted problems (assets/data/README.md)
    steps = data.get_by_role("grid").filter(has_text="exact_duplicate").first
    expect(steps).to_contain_text("near_duplicate")
    data.get_by_role("button", name="Use for training").click()
    used = data.get_by_text("Train tab will use")
    expect(used).to_contain_text("clean.jsonl")
    clean_path = re.search(r"Train tab will use\s+(\S+clean\.jsonl)", used.inner_text()).group(1)
    assert Path(clean_path).is_file() and Path(clean_path).is_relative_to(runs)
    assert sum(1 for _ in open(clean_path)) == kept

    # 3. Memory: live readings and an estimate with its breakdown plot.
    mem = open_tab(page, "Memory")
    expect(mem.get_by_text(re.compile(r"RAM [\d.]+ of [\d.]+ GiB"))).to_be_visible()
    expect(mem.get_by_text(re.compile(r"GiB")).first).to_be_visible()
    page.wait_for_function("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                           ".some(e => e.offsetParent && e.layout && JSON.stringify(e.layout.title)"
                           ".includes('Estimated peak'))", timeout=60_000)
    shot(page, "memory")

    # 4. Train: the demo preset (sent by the wizard) on the cleaned file, fewer steps.
    train = open_tab(page, "Train")
    expect(textbox(train, "Base model")).to_have_value(re.compile("demo-model"))
    start_training(train, clean_path, JOURNEY_STEPS)
    counts, t0 = [], time.time()
    while time.time() - t0 < 300:
        n = plot_points(page, "Loss")
        if n > 0 and (not counts or n != counts[-1]):
            counts.append(n)
        if train.get_by_text(re.compile("^Finished$")).count():
            break
        page.wait_for_timeout(250)
    wait_finished(train, 30)
    page.wait_for_timeout(1500)  # one more timer tick draws the last points
    final = plot_points(page, "Loss")
    assert final >= JOURNEY_STEPS // 5 - 1, f"loss plot has {final} points"
    counts.append(final)
    print(f"loss plot point counts seen while training: {counts}")
    assert len(set(counts)) >= 2, f"the loss plot never updated while training: {counts}"
    run_dirs = [p for p in runs.iterdir() if p.name.endswith("demo-pirate")]
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "done"
    assert (run_dir / "adapter").is_dir()
    shot(page, "train")

    # 5. Compare: pick the run just trained (Refresh lists runs with weights); both sides stream.
    cmp_ = open_tab(page, "Compare")
    cmp_.get_by_role("button", name="Refresh runs").click()
    expect(cmp_.get_by_label("Fine-tuned run")).to_have_value(re.compile(run_dir.name))
    (base, tuned), states = send_and_watch(page, cmp_, PROMPT)
    assert base and tuned and base != tuned
    print(f"compare: {states} distinct streamed states")
    assert states >= 2, "the answers appeared at once instead of streaming"
    shot(page, "compare")

    # 6. Export: the adapter into a folder under the runs root.
    exp = open_tab(page, "Export")
    exp.get_by_role("button", name="Refresh runs").click()
    expect(exp.get_by_label("Run", exact=True)).to_have_value(re.compile(run_dir.name))
    exp.get_by_label("Adapter (PEFT, small)").check()
    out = runs / "exports" / "demo-adapter"
    textbox(exp, "Output folder").fill(str(out))
    exp.get_by_role("button", name="Export", exact=True).click()
    expect(exp.get_by_text(re.compile(r"Exported adapter"))).to_be_visible(timeout=120_000)
    assert (out / "adapter_config.json").is_file() and (out / "README.md").is_file()
    shot(page, "export")
    page.close()


@pytest.fixture()
def cleaned(app) -> Path:
    """The cleaned dataset that test_journey's Data step wrote."""
    clean = sorted(app[1].glob("_data/*/clean.jsonl"))
    if not clean:
        pytest.skip("needs the cleaned file and the run of test_journey")
    return clean[-1]


def test_two_sessions(app, browser, cleaned):
    """Session A starts two runs (the second queues) while session B chats: nothing interferes."""
    url, runs = app
    before = {p.name for p in runs.iterdir() if p.name.endswith("demo-pirate")}
    ctx_a, ctx_b = browser.new_context(viewport={"width": 1280, "height": 900}), \
        browser.new_context(viewport={"width": 1280, "height": 900})
    a, b = ctx_a.new_page(), ctx_b.new_page()
    for p in (a, b):
        p.set_default_timeout(60_000)
        p.goto(url)
    cmp_ = open_tab(b, "Compare")  # session B gets ready to chat
    cmp_.get_by_role("button", name="Refresh runs").click()
    train = open_tab(a, "Train")
    start_training(train, str(cleaned), 40)
    expect(train.get_by_text(re.compile("^(Training|Waiting in the queue)$"))).to_be_visible()
    time.sleep(1.1)  # run folders are named by the second: keep the two apart
    train.get_by_role("button", name="Start training").click()
    expect(a.get_by_text(re.compile("waits in the queue"))).to_be_visible()

    active = lambda: [p.name for p in runs.iterdir() if (p / "status.json").is_file()  # noqa: E731
                      and json.loads((p / "status.json").read_text()).get("state") in ("queued", "running")]
    assert active(), "both runs ended before the chat began: nothing overlapped"
    (base, tuned), _ = send_and_watch(b, cmp_, PROMPT)  # session B chats while session A trains
    assert base and tuned
    # Session B then uploads a file (it lands in gradio's upload folder, an allowed root).
    data = open_tab(b, "Data")
    data.locator("input[type=file][accept*=jsonl]").set_input_files(str(REPO / "assets" / "data" / "alpaca.jsonl"))
    # The file list shows the name as stem + extension in separate spans ("alpaca" ".jsonl"), which
    # text matching does not always join; the table cell's accessible name is the whole name.
    expect(data.get_by_role("cell", name="alpaca.jsonl")).to_be_visible()
    data.get_by_role("button", name="Load", exact=True).click()
    expect(data.get_by_text(re.compile(r"alpaca\.jsonl: 400 rows · format alpaca"))).to_be_visible()

    new = lambda: sorted(p for p in runs.iterdir() if p.name.endswith("demo-pirate") and p.name not in before)  # noqa: E731
    t0 = time.time()
    while time.time() - t0 < 300:
        states = [json.loads((p / "status.json").read_text()).get("state") for p in new()]
        if len(states) == 2 and all(s in ("done", "failed", "stopped") for s in states):
            break
        time.sleep(1)
    assert [json.loads((p / "status.json").read_text())["state"] for p in new()] == ["done", "done"]
    ctx_a.close()
    ctx_b.close()


def test_reload_reattaches_and_stop_ends_the_run(app, browser, cleaned):
    """A page reload finds the running run again; Stop in the UI ends its whole process group."""
    url, runs = app
    before = {p.name for p in runs.iterdir()}
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    train = open_tab(page, "Train")
    start_training(train, str(cleaned), 100000)  # far more steps than the test will wait for
    expect(train.get_by_text(re.compile("^Training$"))).to_be_visible(timeout=120_000)
    [run_dir] = [p for p in runs.iterdir() if p.name not in before and p.is_dir()]

    page.reload()  # a new page session: it must find the run on its own
    train = open_tab(page, "Train")
    expect(train.get_by_text(re.compile("^Training$"))).to_be_visible(timeout=30_000)
    expect(train.get_by_text(run_dir.name).first).to_be_visible()
    step_before = json.loads((run_dir / "status.json").read_text()).get("step") or 0
    expect(train.get_by_text(re.compile(r"step \d+/100000"))).to_be_visible(timeout=30_000)

    train.get_by_role("button", name="Stop", exact=True).click()
    expect(train.get_by_text(re.compile("^Stopped$"))).to_be_visible(timeout=60_000)
    st = json.loads((run_dir / "status.json").read_text())
    assert st["state"] == "stopped" and (st.get("step") or 0) >= step_before
    pgid = st["pgid"]
    alive = [d for d in Path("/proc").iterdir() if d.name.isdigit() and (d / "stat").exists()
             and _pgid_of(d) == pgid]
    assert alive == [], "the worker's process group outlived Stop"
    ctx.close()


def _pgid_of(proc_dir: Path) -> int | None:
    try:
        fields = (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[2]) if fields[0] != "Z" else None
    except (OSError, IndexError, ValueError):
        return None
