"""Number and word formatting of the reports: one place for every number a reader sees."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_STATUS_WORDS = {
    "mismatch": ("mismatch", "mismatches"),
    "shape": ("shape error", "shape errors"),
    "nan": ("non-finite", "non-finite"),
    "missing": ("missing quantity", "missing quantities"),
    "kink": ("row with ReLU kinks", "rows with ReLU kinks"),
    "ok": ("ok", "ok"),
}


def is_finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt_sci(x: Any, digits: int = 2, missing: str = "—") -> str:
    """``x`` in scientific notation with ``digits`` significant digits: ``3.1e-12``, ``1.5e+0``.

    ``0`` → ``"0"``, ±inf → ``"inf"``/``"-inf"``, NaN/None → ``missing``.
    """
    if x is None:
        return missing
    try:
        value = float(x)
    except (TypeError, ValueError):
        return missing
    if math.isnan(value):
        return missing
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.{max(digits, 1) - 1}e}".split("e")
    return f"{mantissa}e{int(exponent):+d}" if int(exponent) >= 0 else f"{mantissa}e{int(exponent)}"


def fmt_num(x: Any, missing: str = "—") -> str:
    """A value as read from an array: 6 significant digits."""
    if x is None:
        return missing
    try:
        value = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def quantity_label(quantity: Any, step: Any = None) -> str:
    """``dL/dh, step 2`` for a per-step row, the quantity alone for any other (``step`` None or NaN)."""
    return str(quantity) if not is_finite(step) else f"{quantity}, step {int(float(step))}"


def fmt_int(n: Any) -> str:
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError):
        return str(n)


def _fmt_seconds(seconds: Any) -> str:
    if not is_finite(seconds):
        return str(seconds)
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {round(s % 60)} s"
    return f"{int(s // 3600)} h {round((s % 3600) / 60)} min"


def fmt_err(value: Any, status: str) -> str:
    """A max relative error, or what stands in for it when there is none."""
    if is_finite(value):
        return fmt_sci(value)
    return {"nan": "non-finite", "missing": "missing", "shape": "shape", "kink": "all kinks"}.get(status, "—")


def fmt_tol(rtol: Any, atol: Any) -> str:
    if not is_finite(rtol):
        return "—"
    return f"rtol {fmt_sci(rtol, 1)}, atol {fmt_sci(atol, 2)}"


def fmt_value(key: str, value: Any) -> str:
    """A run parameter from meta."""
    if key == "wall_seconds":
        return _fmt_seconds(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return fmt_int(value) if key == "cases" else str(int(value))
    if isinstance(value, float | np.floating):
        return fmt_num(value)
    return str(value)


def plural(n: int, status: str) -> str:
    one, many = _STATUS_WORDS.get(status, (status, status))
    return f"{fmt_int(n)} {one if n == 1 else many}"
