"""Benchmark: clean 100,000 generated chat rows (exact + near dedup + default filters).

Runs `python -m studio data clean` in a child process pinned to at most 2 CPUs, with a cold
datasets cache, and reports wall time, CPU time and peak RSS of that process, plus recall on the
planted duplicates. In the same run it measures a naive datasketch loop (one MinHash per row,
MinHashLSH.query then insert, threshold 0.8) on a prefix of the same rows and prints rows/s and
the ratio. Targets: <= 10 s wall and <= 2 GiB RSS on 2 cores.

  python bench/bench_clean.py [--rows 100000] [--naive-rows 10000] [--no-record]

Appends a dated section to bench/results/clean.md unless --no-record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "clean.md"


def generate(path: Path, n: int, seed: int = 0) -> dict:
    """Chat rows from a Zipf vocabulary, with planted copies at random later positions:
    3% exact (case/space changed), 3% near (5% of words replaced), 1% refusals, 1% empty
    answers, 0.5% with an e-mail address. Returns the planted row sets."""
    import numpy as np

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    vocab = np.array(["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(
        rng.randint(2, 10))) for _ in range(30_000)])
    cdf = np.cumsum(1.0 / np.arange(1, len(vocab) + 1) ** 1.1)
    cdf /= cdf[-1]

    def sentence(k):  # Zipf-distributed words, like natural text (many repeats of common words)
        return " ".join(vocab[np.searchsorted(cdf, nrng.random(k))])

    rows: list = [None] * n
    kinds = ["exact"] * int(0.03 * n) + ["near"] * int(0.03 * n) + ["refusal"] * int(0.01 * n) \
        + ["empty"] * int(0.01 * n) + ["pii"] * int(0.005 * n)
    slots = rng.sample(range(n // 50, n), len(kinds))
    plant = dict(zip(slots, kinds))
    planted: dict[str, set] = {k: set() for k in ("exact", "near", "refusal", "empty", "pii")}
    for i in range(n):
        kind = plant.get(i)
        if kind in ("exact", "near"):
            src = rng.randrange(i)
            while plant.get(src) is not None:
                src = rng.randrange(i)
            msgs = [dict(m) for m in rows[src]["messages"]]
            if kind == "exact":
                for m in msgs:
                    m["content"] = "  " + m["content"].upper() + " "
            else:  # replace 5% of the row's words, spread over its messages
                split = [m["content"].split() for m in msgs]
                words = [(k, j) for k, w in enumerate(split) for j in range(len(w))]
                for k, j in rng.sample(words, max(1, round(len(words) * 0.05))):
                    split[k][j] = str(vocab[rng.randrange(len(vocab))])
                for m, w in zip(msgs, split):
                    m["content"] = " ".join(w)
            rows[i] = {"messages": msgs}
            planted[kind].add(i)
            continue
        msgs = [{"role": "system", "content": "You are a helpful assistant."}] \
            if rng.random() < 0.2 else []
        q, a = sentence(rng.randint(8, 30)) + "?", sentence(rng.randint(30, 120)) + "."
        if kind == "refusal":
            a = "As an AI language model, I cannot help with that request."
        elif kind == "empty":
            a = " "
        elif kind == "pii":
            q += f" Reach me at user{i}@example.com."
        if kind:
            planted[kind].add(i)
        rows[i] = {"messages": msgs + [{"role": "user", "content": q},
                                       {"role": "assistant", "content": a}]}
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return planted


def _pin_two_cpus():
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 2:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])


def run_ours(src: Path, out: Path) -> dict:
    env = {**os.environ, "STUDIO_DATA_CACHE": tempfile.mkdtemp(prefix="bench-cache-"),
           "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "studio", "data", "clean", str(src), "--out",
                             str(out), "--json"], stdout=subprocess.PIPE, cwd=REPO, env=env,
                            preexec_fn=_pin_two_cpus)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"clean failed with status {status}")
    report = json.loads(stdout)
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_gib": usage.ru_maxrss / 2**20, "report": report}


def run_naive(src: Path, n: int) -> dict:
    """The obvious datasketch loop: per row a MinHash of its word set, query, then insert."""
    from datasketch import MinHash, MinHashLSH

    norm = re.compile(r"[^\w\s]+")
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    dups = set()
    t0, c0 = time.perf_counter(), time.process_time()
    with open(src, encoding="utf-8") as f:
        for i, line in zip(range(n), f):
            text = "\n".join(m["content"] for m in json.loads(line)["messages"])
            words = set(norm.sub(" ", text.lower()).split())
            m = MinHash(num_perm=128)
            m.update_batch([w.encode("utf-8") for w in words])
            if lsh.query(m):
                dups.add(i)
            else:
                lsh.insert(i, m)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"rows": n, "wall_s": wall, "cpu_s": cpu, "rows_per_s": n / wall, "dups": dups}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs visible (clean pinned to 2), "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--naive-rows", type=int, default=10_000)
    ap.add_argument("--no-record", action="store_true", help="don't append to results/clean.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-clean-"))
    src = tmp / "chat.jsonl"
    t = time.perf_counter()
    planted = generate(src, args.rows)
    print(f"generated {args.rows:,} rows ({src.stat().st_size / 2**20:.0f} MiB) in "
          f"{time.perf_counter() - t:.1f} s")
    load_before = os.getloadavg()[0]
    ours = run_ours(src, tmp / "out")
    naive = run_naive(src, min(args.naive_rows, args.rows))
    load_after = os.getloadavg()[0]
    rep = ours["report"]
    removed = {}
    with open(tmp / "out" / "removed.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            removed[r["row"]] = set(r["reasons"])
    recall = {k: sum(1 for i in planted[k] if want in removed.get(i, ()))
              / max(1, len(planted[k])) for k, want in
              (("exact", "exact_duplicate"), ("near", "near_duplicate"), ("refusal", "refusal"),
               ("empty", "empty"))}
    planted_all = set().union(*planted.values()) - planted["pii"]
    false_pos = len(set(removed) - planted_all)
    naive_near = [i for i in planted["near"] if i < naive["rows"]]
    naive_recall = sum(i in naive["dups"] for i in naive_near) / max(1, len(naive_near))
    rows_s = args.rows / ours["wall_s"]
    stage_s = rep["timings_s"].get("minhash", 0) + rep["timings_s"].get("dedup", 0)
    stage_cpu = rep["cpu_s"].get("minhash", 0) + rep["cpu_s"].get("dedup", 0)
    lines = [
        f"rows: {args.rows:,}; kept {rep['kept']:,}; removed {rep['removed']:,}",
        f"ours (whole clean command, cold cache): wall {ours['wall_s']:.2f} s, CPU "
        f"{ours['cpu_s']:.2f} s, peak RSS {ours['rss_gib']:.2f} GiB -> {rows_s:,.0f} rows/s",
        f"  inside, wall s: {json.dumps(rep['timings_s'])}",
        f"  inside, CPU s: {json.dumps(rep['cpu_s'])}",
        f"  near-dup stage (MinHash + LSH): wall {stage_s:.2f} s, CPU {stage_cpu:.2f} s -> "
        f"{args.rows / max(stage_s, 1e-9):,.0f} rows/s",
        f"naive datasketch loop on {naive['rows']:,} rows: wall {naive['wall_s']:.2f} s, CPU "
        f"{naive['cpu_s']:.2f} s -> {naive['rows_per_s']:,.0f} rows/s",
        f"ratio (ours whole command / naive near-dup only): {rows_s / naive['rows_per_s']:.1f}x; "
        f"near-dup stage alone: {args.rows / max(stage_s, 1e-9) / naive['rows_per_s']:.1f}x",
        f"same ratios per CPU second (steadier when the machine is shared): "
        f"{args.rows / ours['cpu_s'] / (naive['rows'] / naive['cpu_s']):.1f}x whole command, "
        f"{args.rows / max(stage_cpu, 1e-9) / (naive['rows'] / naive['cpu_s']):.1f}x stage",
        f"recall on planted rows: {json.dumps({k: round(v, 4) for k, v in recall.items()})}; "
        f"false positives {false_pos}; naive near-dup recall {naive_recall:.4f} "
        f"({len(naive_near)} planted in its prefix)",
        f"load average (1 min) before/after: {load_before:.2f} / {load_after:.2f} "
        f"(other processes share the CPUs: wall time is inflated when it is above 2)",
        f"targets: wall <= 10 s {'OK' if ours['wall_s'] <= 10 else 'MISSED'}, "
        f"RSS <= 2 GiB {'OK' if ours['rss_gib'] <= 2 else 'MISSED'}",
    ]
    print("\n".join(lines))
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        new = not RESULTS.exists()
        with open(RESULTS, "a", encoding="utf-8") as f:
            if new:
                f.write("# bench_clean results\n\nEach run appends a section "
                        "(`python bench/bench_clean.py`).\n")
            f.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')} — {machine()}\n\n")
            f.write("".join(f"- {line}\n" for line in lines))
        print(f"recorded in {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
