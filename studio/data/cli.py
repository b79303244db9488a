"""`python -m studio data <inspect|validate|clean|undo|redo|split|mix|convert> ...`

Owns argument parsing and printing for the data commands; each subcommand calls one function
of the data layer. `--json` prints one JSON object on stdout. Bad input raises StudioError,
which studio/__main__.py prints as `error: ...` with exit code 2 (never a traceback).
Does not implement any data logic itself.
"""

from __future__ import annotations

import argparse
import json
import sys

from studio.errors import StudioError


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _column_map(value: str | None) -> dict | None:
    if not value:
        return None
    out = {}
    for pair in _csv(value):
        if "=" not in pair:
            raise StudioError(f"--column-map '{pair}' is not FIELD=COLUMN. Fix: e.g. "
                              "--column-map instruction=question,output=answer.")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m studio data",
                                description="Inspect, validate, clean, split and mix datasets.")
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp, fmt=True):
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        if fmt:
            sp.add_argument("--format", default="auto", help="alpaca|sharegpt|messages|"
                            "prompt_completion|preference|text (default: detect)")
            sp.add_argument("--column-map", default=None, help="FIELD=COLUMN,... when the column "
                            "names are unusual, e.g. instruction=question,output=answer")

    sp = sub.add_parser("inspect", help="stats, token lengths and validation summary")
    sp.add_argument("input")
    sp.add_argument("--tokenizer", default=None, help="local tokenizer/model folder")
    sp.add_argument("--max-length", type=int, default=1024, help="training max length (tokens)")
    sp.add_argument("--languages", action="store_true", help="also identify languages (slower)")
    common(sp)

    sp = sub.add_parser("validate", help="per-row problems with row numbers (exit 1 if any)")
    sp.add_argument("input")
    sp.add_argument("--tokenizer", default=None, help="also render rows with its chat template")
    sp.add_argument("--max-issues", type=int, default=1000)
    common(sp)

    sp = sub.add_parser("clean", help="dedup + filters -> DIR/clean.jsonl, removed.jsonl, "
                        "report.json")
    sp.add_argument("input")
    sp.add_argument("--out", required=True)
    sp.add_argument("--dedup", default="exact,near", help="exact,near,semantic or none")
    sp.add_argument("--near-threshold", type=float, default=0.8, help="word-set Jaccard (0-1]")
    sp.add_argument("--semantic-threshold", type=float, default=0.9, help="cosine (0-1]")
    sp.add_argument("--pii", default="keep", choices=["remove", "redact", "keep"])
    sp.add_argument("--languages", default="", help="keep only these ISO codes, e.g. en,fr")
    sp.add_argument("--min-tokens", type=int, default=2)
    sp.add_argument("--max-tokens", type=int, default=None)
    sp.add_argument("--tokenizer", default=None, help="count tokens with this tokenizer folder")
    sp.add_argument("--blocklist", default="", help="comma-separated words/phrases to drop")
    sp.add_argument("--keep-refusals", action="store_true", help="don't drop 'As an AI...' rows")
    common(sp)

    for name, what in (("undo", "put back the rows a step removed"),
                       ("redo", "remove a step's rows again")):
        sp = sub.add_parser(name, help=what)
        sp.add_argument("out_dir", help="folder written by `clean`")
        sp.add_argument("step", help="a reason (e.g. near_duplicate, pii) or exact/near/dedup")
        common(sp, fmt=False)

    sp = sub.add_parser("split", help="seeded train/validation/test split without leakage")
    sp.add_argument("input")
    sp.add_argument("--out", required=True)
    sp.add_argument("--ratios", default="0.9,0.1,0", help="train,validation,test ratios")
    sp.add_argument("--counts", default=None, help="train,validation,test row counts instead")
    sp.add_argument("--seed", type=int, default=42)
    sp.add_argument("--no-near", action="store_true", help="group exact duplicates only")
    common(sp)

    sp = sub.add_parser("mix", help="mix datasets with weights: A.jsonl:0.7 B.jsonl:0.3")
    sp.add_argument("sources", nargs="+", help="PATH:WEIGHT")
    sp.add_argument("--out", required=True, help="output .jsonl")
    sp.add_argument("--total", type=int, default=None)
    sp.add_argument("--seed", type=int, default=42)
    sp.add_argument("--target", default="messages")
    common(sp, fmt=False)

    sp = sub.add_parser("convert", help="convert to a trainer format (validated) as JSONL")
    sp.add_argument("input")
    sp.add_argument("--out", required=True, help="output .jsonl")
    sp.add_argument("--target", default="messages",
                    help="messages|prompt_completion|preference|text")
    common(sp)
    return p


def _print(obj: dict, as_json: bool, human: str) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=None if as_json else 2) if as_json else human)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    return {"inspect": _inspect, "validate": _validate, "clean": _clean, "undo": _undo,
            "redo": _undo, "split": _split, "mix": _mix, "convert": _convert}[args.cmd](args)


def _inspect(args) -> int:
    from studio.data.inspection import stats, token_lengths
    from studio.data.load import load_rows
    from studio.data.validate import validate_dataset

    ds = load_rows(args.input)
    cmap = _column_map(args.column_map)
    s = stats(ds, args.format, cmap, languages=args.languages)
    fmt = s["format"]["name"]
    tok = token_lengths(ds, args.tokenizer, args.max_length, fmt, s["format"]["column_map"])
    tok.pop("lengths")
    issues = validate_dataset(ds, fmt, s["format"]["column_map"], max_issues=50)
    out = {"file": args.input, **s, "tokens": tok, "issues": [i.to_dict() for i in issues]}
    f = s["format"]
    human = (f"{args.input}: {s['rows']:,} rows, format {f['name']} "
             f"(confidence {f['confidence']:.2f}), turns {s['turns']['mean']}\n"
             f"tokens ({tok['counted_with']}): mean {tok['mean']}, p95 {tok['p95']}, max "
             f"{tok['max']}; {tok['pct_truncated']}% of rows over {tok['max_length']}\n"
             f"duplicates: {s['duplicates']['exact']} exact, {s['duplicates']['near']} near; "
             f"rows with problems: {s['validation']['rows_with_issues']}")
    _print(out, args.json, human)
    return 0


def _validate(args) -> int:
    from studio.data.inspection import load_tokenizer
    from studio.data.validate import validate_path

    tok = load_tokenizer(args.tokenizer) if args.tokenizer else None
    issues = validate_path(args.input, args.format, _column_map(args.column_map), tok,
                           args.max_issues)
    out = {"file": args.input, "issues": [i.to_dict() for i in issues], "count": len(issues)}
    human = "\n".join(str(i) for i in issues) or f"{args.input}: no problems found"
    _print(out, args.json, human)
    return 1 if issues else 0


def _clean(args) -> int:
    from studio.data.clean import CleanOptions, clean

    dedup = tuple(d for d in _csv(args.dedup) if d != "none")
    opts = CleanOptions(dedup=dedup, near_threshold=args.near_threshold,
                        semantic_threshold=args.semantic_threshold, pii=args.pii,
                        languages=tuple(_csv(args.languages)), min_tokens=args.min_tokens,
                        max_tokens=args.max_tokens, tokenizer=args.tokenizer,
                        blocklist=tuple(_csv(args.blocklist)), refusals=not args.keep_refusals,
                        fmt=args.format, column_map=_column_map(args.column_map))
    report = clean(args.input, args.out, opts)
    steps = ", ".join(f"{k} {v['removed']}" for k, v in report["steps"].items() if v["removed"])
    human = (f"kept {report['kept']:,} of {report['rows']:,} rows in {report['seconds']} s "
             f"-> {args.out}/clean.jsonl\nremoved: {steps or 'nothing'}")
    _print(report, args.json, human)
    return 0


def _undo(args) -> int:
    from studio.data.undo import redo, undo

    report = (undo if args.cmd == "undo" else redo)(args.out_dir, args.step)
    human = f"{args.cmd} {args.step}: kept {report['kept']:,} of {report['rows']:,} rows"
    _print(report, args.json, human)
    return 0


def _split(args) -> int:
    from studio.data.split import split

    counts = [int(c) for c in _csv(args.counts)] if args.counts else None
    try:
        ratios = [float(r) for r in _csv(args.ratios)]
    except ValueError:
        raise StudioError(f"--ratios '{args.ratios}' must be numbers. Fix: e.g. 0.9,0.1,0."
                          ) from None
    report = split(args.input, args.out, ratios, counts, args.seed, near=not args.no_near,
                   fmt=args.format, column_map=_column_map(args.column_map))
    human = ", ".join(f"{k} {v:,}" for k, v in report["sizes"].items()) + f" -> {args.out}"
    _print(report, args.json, human)
    return 0


def _mix(args) -> int:
    from studio.data.split import mix

    sources = []
    for s in args.sources:
        path, _, weight = s.rpartition(":")
        try:
            sources.append((path, float(weight)))
        except ValueError:
            raise StudioError(f"'{s}' is not PATH:WEIGHT. Fix: e.g. domain.jsonl:0.7.") from None
    report = mix(sources, args.out, args.total, args.seed, args.target)
    _print(report, args.json, f"mixed {report['rows']:,} rows -> {args.out}")
    return 0


def _convert(args) -> int:
    from pathlib import Path

    from studio.data import prepare_for_training

    ds = prepare_for_training(args.input, args.format, args.target, _column_map(args.column_map))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    ds.to_json(str(tmp), lines=True, force_ascii=False)
    tmp.replace(out)
    report = {"out": str(out), "rows": len(ds), "target": args.target}
    _print(report, args.json, f"wrote {len(ds):,} {args.target} rows -> {out}")
    return 0
