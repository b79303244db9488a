"""Look at a dataset before training: stats, token lengths against the max length, and which
tokens of a row are trained.

Owns `stats` (rows, turns, lengths, languages, duplicates, validation summary), `token_lengths`
(histogram data, % of rows truncated at max_length and assistant tokens lost), `render_row`
(the chat-template text of a row split into trained / masked spans, from
`apply_chat_template(..., return_assistant_tokens_mask=True)`) and `load_tokenizer`.
Does not draw anything (views.py builds the plotly figure) nor change data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.errors import StudioError


def load_tokenizer(path):
    """A tokenizer from a local folder (never downloads); StudioError when it can't be read."""
    if not isinstance(path, (str, Path)):
        return path
    p = Path(path).expanduser()
    if not p.exists():
        raise StudioError(f"{p}: tokenizer folder not found. Fix: give a local model folder "
                          "(with tokenizer.json / tokenizer_config.json).")
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except Exception as e:
        raise StudioError(f"{p}: can't load a tokenizer from this folder ({e}). Fix: point to a "
                          "model folder that contains its tokenizer files.") from None


def _guess(ds, fmt, column_map):
    from studio.data.formats import FormatGuess, detect_format, resolve_columns

    if isinstance(fmt, FormatGuess):
        return fmt
    if fmt in (None, "auto"):
        g = detect_format(ds)
        g.column_map.update(column_map or {})
        return g
    return FormatGuess(fmt, 1.0, resolve_columns(fmt, ds.column_names, column_map))


def _pct(a: np.ndarray, q) -> int:
    return int(np.percentile(a, q)) if len(a) else 0


def stats(ds, fmt="auto", column_map=None, *, languages: bool = False, dedup_limit: int = 100_000,
          near_threshold: float = 0.8) -> dict:
    """Summary numbers for the Data tab and `studio data inspect --json`."""
    import pyarrow.compute as pc

    from studio.data import dedup
    from studio.data.textview import batch_texts, exact_checker
    from studio.data.validate import summarize, validate_dataset

    g = _guess(ds, fmt, column_map)
    n = len(ds)
    turns, chars, answer_chars, keys, sigs, langs = [], [], [], [], [], {}
    hasher = dedup.MinHasher()
    seen = 0
    for table in ds.with_format("arrow").iter(batch_size=10_000):
        t = batch_texts(table, g.name, g.column_map)
        turns.append(t.turns)
        chars.append(np.asarray(pc.utf8_length(t.full).to_numpy(zero_copy_only=False)))
        answer_chars.append(np.asarray(pc.utf8_length(t.answer).to_numpy(zero_copy_only=False)))
        if seen < dedup_limit:
            norm = dedup.normalize(t.full)
            keys.append(dedup.exact_keys(norm))
            sigs.append(hasher.signatures(dedup.word_lists(norm)))
            if languages:
                from studio.data.filters import detect_languages

                for code in detect_languages(t.full.slice(0, 2000)):
                    langs[code or "unknown"] = langs.get(code or "unknown", 0) + 1
        seen += table.num_rows
    turns_a, chars_a = np.concatenate(turns), np.concatenate(chars)
    ans_a = np.concatenate(answer_chars)
    k = np.concatenate(keys)
    s = np.concatenate(sigs)
    m = len(k)
    rank = np.arange(m)
    eligible = chars_a[:m] > 0
    exact = dedup.exact_duplicates(k, rank, eligible)
    near, _ = dedup.near_duplicates(s, rank, eligible & (exact < 0), near_threshold,
                                    exact_checker(ds, g.name, g.column_map))
    issues = validate_dataset(ds, g, max_issues=10_000, limit=dedup_limit)
    return {
        "rows": n, "columns": list(ds.column_names),
        "format": {"name": g.name, "confidence": g.confidence, "column_map": g.column_map,
                   "reason": g.reason, "notes": g.notes, "unsure": g.unsure},
        "turns": {"mean": round(float(turns_a.mean()), 2), "min": int(turns_a.min()),
                  "max": int(turns_a.max())},
        "chars": {"mean": round(float(chars_a.mean()), 1), "p50": _pct(chars_a, 50),
                  "p95": _pct(chars_a, 95), "max": int(chars_a.max())},
        "answer_chars": {"mean": round(float(ans_a.mean()), 1), "p95": _pct(ans_a, 95)},
        "empty_rows": int((chars_a == 0).sum()),
        "duplicates": {"exact": int((exact >= 0).sum()), "near": int((near >= 0).sum()),
                       "checked_rows": m},
        "languages": dict(sorted(langs.items(), key=lambda kv: -kv[1])[:15]),
        "validation": {"issues": summarize(issues),
                       "rows_with_issues": len({i.row for i in issues}),
                       "checked_rows": min(n, dedup_limit)},
    }


def _encode_row(tokenizer, messages):
    enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    ids = list(enc["input_ids"])
    mask = list(enc.get("assistant_masks") or [0] * len(ids))
    return ids, mask


def token_lengths(ds, tokenizer=None, max_length: int = 1024, fmt="auto", column_map=None,
                  limit: int | None = 20_000, bins: int = 40) -> dict:
    """Token count per row vs max_length: histogram, % truncated, assistant tokens lost.

    With a tokenizer each row is rendered with its chat template (first `limit` rows); without
    one lengths are estimated at 4 bytes per token and the answer is assumed to come last.
    """
    from studio.data.filters import TokenCounter
    from studio.data.formats import row_messages
    from studio.data.textview import batch_texts

    g = _guess(ds, fmt, column_map)
    n = len(ds) if limit is None else min(len(ds), limit)
    lengths, answer = [], []
    tokenizer = load_tokenizer(tokenizer) if tokenizer is not None else None
    lost = 0
    if tokenizer is not None and getattr(tokenizer, "chat_template", None) and g.name != "text":
        for start in range(0, n, 1000):
            for row in ds.select(range(start, min(n, start + 1000))).to_list():
                try:
                    ids, mask = _encode_row(tokenizer, row_messages(row, g.name, g.column_map))
                except Exception:  # validation reports template errors; skip the row here
                    continue
                lengths.append(len(ids))
                answer.append(int(sum(mask)))
                lost += int(sum(mask[max_length:]))
        how = "chat template"
    else:
        counter = TokenCounter(tokenizer)
        for table in ds.select(range(n)).with_format("arrow").iter(batch_size=10_000):
            t = batch_texts(table, g.name, g.column_map)
            total = counter.count(t.full, t.turns)
            ans = counter.count(t.answer, np.ones(len(total), dtype=np.int64))
            lengths.extend(total.tolist())
            answer.extend(ans.tolist())
            lost += int(np.minimum(ans, np.maximum(total - max_length, 0)).sum())
        how = "tokenizer (no chat template)" if tokenizer is not None else "estimate: 4 bytes/token"
    arr = np.asarray(lengths, dtype=np.int64)
    if not len(arr):
        raise StudioError("no row could be rendered with this tokenizer's chat template. Fix: "
                          "check the validation table for template errors.")
    counts, edges = np.histogram(arr, bins=min(bins, max(1, len(np.unique(arr)))))
    truncated = int((arr > max_length).sum())
    total_answer = int(sum(answer))
    return {
        "rows": int(len(arr)), "sampled": n < len(ds), "counted_with": how,
        "max_length": int(max_length), "lengths": arr.tolist(),
        "histogram": {"counts": counts.tolist(), "edges": [float(e) for e in edges]},
        "rows_truncated": truncated, "pct_truncated": round(100.0 * truncated / len(arr), 2),
        "assistant_tokens": total_answer, "assistant_tokens_lost": lost,
        "pct_assistant_tokens_lost": round(100.0 * lost / total_answer, 2) if total_answer else 0.0,
        "mean": round(float(arr.mean()), 1), "p50": _pct(arr, 50), "p95": _pct(arr, 95),
        "max": int(arr.max()),
    }


def render_row(messages: list[dict], tokenizer, assistant_only: bool = True) -> dict:
    """Split a row's chat-template rendering into spans [(text, "trained"|"masked")].

    assistant_only=True shows what TRL's assistant_only_loss trains on (label -100 elsewhere);
    False: every token is trained (TRL's default for the messages format).
    """
    tokenizer = load_tokenizer(tokenizer)
    try:
        ids, mask = _encode_row(tokenizer, messages)
    except Exception as e:
        raise StudioError(f"the chat template can't render this row ({e}). Fix: correct the row's "
                          "roles/content or pick another tokenizer.") from None
    note = ""
    if assistant_only and not any(mask):
        note = ("this chat template has no {% generation %} markers, so no token is marked as the "
                "assistant's: assistant-only loss can't work with it (TRL raises an error)")
    if not assistant_only:
        mask = [1] * len(ids)
    pieces = _token_texts(tokenizer, messages, ids)
    spans: list[list] = []
    for text, m in zip(pieces, mask):
        label = "trained" if m else "masked"
        if spans and spans[-1][1] == label:
            spans[-1][0] += text
        else:
            spans.append([text, label])
    return {"spans": [tuple(s) for s in spans], "tokens": len(ids),
            "trained_tokens": int(sum(mask)), "note": note}


def _token_texts(tokenizer, messages, ids) -> list[str]:
    """The exact substring of the rendered row behind each token (offsets), else decoded pieces."""
    try:
        rendered = tokenizer.apply_chat_template(messages, tokenize=False)
        enc = tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)
        if list(enc["input_ids"]) == list(ids):
            return [rendered[a:b] for a, b in enc["offset_mapping"]]
    except Exception:  # slow tokenizers have no offsets: decode token by token instead
        pass
    return [tokenizer.decode([t]) for t in ids]
