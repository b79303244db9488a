"""Turning number boxes into numbers, with a message that names the box when that fails.

A gr.Number can arrive empty (None), as NaN or infinity from an API caller, or far out of range;
`whole()` and `real()` give the value or a StudioError naming the box and the allowed range.
No gradio import: the handlers turn the StudioError into a gr.Error/gr.Warning.
"""

from __future__ import annotations

import math

from studio.errors import StudioError


def _fmt(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def real(value, label: str, default: float | None = None, lo: float | None = None,
         hi: float | None = None) -> float | None:
    """`value` as a finite float within [lo, hi]; empty (None or "") gives `default`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise StudioError(f"'{label}' needs a number, not {str(value)[:40]!r}.") from None
    if not math.isfinite(x):
        raise StudioError(f"'{label}' needs a finite number, not {x}.")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        span = f"between {_fmt(lo)} and {_fmt(hi)}" if lo is not None and hi is not None else \
            (f"at least {_fmt(lo)}" if lo is not None else f"at most {_fmt(hi)}")
        raise StudioError(f"'{label}' is {_fmt(x)}; it must be {span}.")
    return x


def whole(value, label: str, default: int | None = None, lo: int | None = None,
          hi: int | None = None) -> int | None:
    """`value` as a whole number within [lo, hi]; empty gives `default`."""
    x = real(value, label, None, lo, hi)
    if x is None:
        return default
    if not x.is_integer():
        raise StudioError(f"'{label}' needs a whole number, not {_fmt(x)}.")
    return int(x)
