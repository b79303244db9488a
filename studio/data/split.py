"""Split a dataset into train/validation/test without leakage, and mix several datasets.

Owns `split(...)`: seeded, by ratios or by row counts; rows that are exact duplicates (after
normalisation) or near duplicates (MinHash, as in cleaning) form one group, and a group always
lands in one split, so an evaluation row never has a copy in train. Output: OUT/train.jsonl,
OUT/validation.jsonl, OUT/test.jsonl (empty splits are not written) and OUT/split.json.
Owns `mix(...)`: several datasets with weights (e.g. 70% domain + 30% general data, the guides'
remedy for catastrophic forgetting), converted to one trainer format and shuffled.
Does not clean (clean.py).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from studio.errors import StudioError

SPLITS = ("train", "validation", "test")


def _groups(ds, fmt, column_map, near: bool, near_threshold: float) -> np.ndarray:
    """Group id per row: connected components of exact and near duplicate pairs."""
    from studio.data import dedup
    from studio.data.formats import FormatGuess, detect_format, resolve_columns
    from studio.data.textview import batch_texts, exact_checker

    if fmt in (None, "auto"):
        g = detect_format(ds)
        g.column_map.update(column_map or {})
    else:
        g = FormatGuess(fmt, 1.0, resolve_columns(fmt, ds.column_names, column_map))
    n = len(ds)
    keys = np.zeros(n, dtype=np.uint64)
    sigs = np.empty((n, 128), dtype=np.uint32) if near else None
    hasher = dedup.MinHasher() if near else None
    eligible = np.zeros(n, dtype=bool)
    start = 0
    for table in ds.with_format("arrow").iter(batch_size=10_000):
        sl = slice(start, start + table.num_rows)
        norm = dedup.normalize(batch_texts(table, g.name, g.column_map).full)
        keys[sl] = dedup.exact_keys(norm)
        eligible[sl] = np.asarray(norm.to_numpy(zero_copy_only=False) != "", dtype=bool)
        if near:
            sigs[sl] = hasher.signatures(dedup.word_lists(norm))
        start += table.num_rows
    parent = np.arange(n)
    exact = dedup.exact_duplicates(keys, np.arange(n), eligible)
    parent = np.where(exact >= 0, exact, parent)
    if near:
        check = exact_checker(ds, g.name, g.column_map)
        _, pairs = dedup.near_duplicates(sigs, np.arange(n), eligible & (exact < 0),
                                         near_threshold, check)

        def root(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a, b in pairs:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        parent = np.array([root(i) for i in range(n)]) if len(pairs) else parent
    return parent


def _targets(n: int, ratios, counts) -> np.ndarray:
    if counts is not None:
        t = np.asarray([int(c) for c in counts] + [0] * (3 - len(counts)), dtype=np.int64)
        if (t < 0).any() or t.sum() > n:
            raise StudioError(f"split counts {list(counts)} need {t.sum()} rows but the dataset "
                              f"has {n}. Fix: lower the counts or use ratios.")
        return t
    r = np.asarray([float(x) for x in ratios] + [0.0] * (3 - len(ratios)), dtype=np.float64)
    if (r < 0).any() or r.sum() <= 0:
        raise StudioError(f"split ratios {list(ratios)} must be >= 0 with a positive sum. Fix: "
                          "use e.g. 0.9,0.1,0.")
    t = np.floor(r / r.sum() * n).astype(np.int64)
    t[int(np.argmax(r))] += n - t.sum()  # rounding leftovers go to the biggest split
    return t


def split(path_or_ds, out_dir, ratios=(0.9, 0.1, 0.0), counts=None, seed: int = 42,
          near: bool = True, near_threshold: float = 0.8, fmt="auto", column_map=None) -> dict:
    """Write OUT/{train,validation,test}.jsonl and OUT/split.json; return the report."""
    from studio.data.clean import iter_records, raw_source
    from studio.data.dedup import unique_ints
    from studio.data.files import atomic_open, write_json
    from studio.data.load import load_rows

    ds = load_rows(path_or_ds)
    n = len(ds)
    targets = _targets(n, ratios, counts)
    group = _groups(ds, fmt, column_map, near, near_threshold)
    ids, inverse = unique_ints(group, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(ids))
    order = np.random.default_rng(seed).permutation(len(ids))
    assign_group = np.full(len(ids), -1, dtype=np.int64)
    filled = np.zeros(3, dtype=np.int64)
    for gi in order:  # each group to the split furthest below its target
        deficit = targets - filled
        if deficit.max() <= 0:
            break  # counts below n: the remaining rows are left out
        s = int(np.argmax(deficit))
        assign_group[gi] = s
        filled[s] += sizes[gi]
    assign = assign_group[inverse]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {name: f"{name}.jsonl" for s, name in enumerate(SPLITS) if filled[s]}
    with contextlib.ExitStack() as stack:  # all files renamed into place only if all succeed
        writers = {s: stack.enter_context(atomic_open(out / f"{name}.jsonl"))
                   for s, name in enumerate(SPLITS) if filled[s]}
        for row, text in iter_records(ds, raw_source(path_or_ds, n)):
            if assign[row] >= 0:
                writers[int(assign[row])].write(text + "\n")
    report = {"input": str(path_or_ds) if isinstance(path_or_ds, (str, Path)) else None,
              "rows": n, "seed": seed, "targets": dict(zip(SPLITS, targets.tolist())),
              "sizes": dict(zip(SPLITS, filled.tolist())), "files": files,
              "groups": int(len(ids)), "rows_in_duplicate_groups": int(sizes[sizes > 1].sum()),
              "left_out": int((assign < 0).sum()), "near_dedup_grouping": near}
    write_json(out / "split.json", report)
    return report


def mix(sources: list[tuple[str, float]], out_path, total: int | None = None, seed: int = 42,
        target: str = "messages") -> dict:
    """Mix datasets by weight into one shuffled JSONL in the `target` trainer format.

    total defaults to the largest size reachable without repeating a row; a source asked for
    more rows than it has is sampled with replacement (reported as `repeated`).
    """
    import datasets

    from studio.data import prepare_for_training

    if not sources:
        raise StudioError("mix needs at least one dataset. Fix: give PATH:WEIGHT pairs.")
    weights = np.asarray([float(w) for _, w in sources], dtype=np.float64)
    if (weights <= 0).any():
        raise StudioError("mix weights must be positive. Fix: e.g. domain.jsonl:0.7 "
                          "general.jsonl:0.3.")
    weights = weights / weights.sum()
    parts = [prepare_for_training(p, target=target) for p, _ in sources]
    sizes = np.asarray([len(d) for d in parts])
    if total is None:
        total = int(np.floor((sizes / weights).min()))
    want = np.floor(weights * total).astype(np.int64)
    want[int(np.argmax(weights))] += total - want.sum()
    rng = np.random.default_rng(seed)
    chosen, info = [], []
    for (path, _), d, k, w in zip(sources, parts, want, weights):
        replace = k > len(d)
        idx = rng.choice(len(d), size=int(k), replace=bool(replace))
        chosen.append(d.select(np.sort(idx)))
        info.append({"path": str(path), "weight": round(float(w), 4), "rows": int(k),
                     "available": len(d), "repeated": bool(replace)})
    mixed = datasets.concatenate_datasets(chosen).shuffle(seed=seed)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    mixed.to_json(str(tmp), lines=True, force_ascii=False)
    tmp.replace(out)
    return {"out": str(out), "rows": len(mixed), "target": target, "seed": seed, "sources": info}
