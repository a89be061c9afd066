"""Validators for one field of user input: each returns the value as a plain Python type or raises.

NumPy scalars are accepted wherever Python numbers are (``np.int64(2)`` as a unit count,
``np.float32(0.1)`` as a slope) and come back as ``int`` / ``float``; ``True`` and
``False`` are booleans, never numbers, and only they are booleans (``"no"`` is not).
Every error is an :class:`InputError` naming ``where``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from refbp.errors import InputError


def integer(value: Any, where: str, *, minimum: int | None = None, wording: str = "an integer") -> int:
    """``value`` as an ``int`` (a Python or NumPy integer, not a bool), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(where, wording, value)
    value = int(value)
    if minimum is not None and value < minimum:
        raise InputError(where, wording, value)
    return value


def positive_int(value: Any, where: str) -> int:
    return integer(value, where, minimum=1, wording="a positive integer")


def finite_float(value: Any, where: str, *, minimum: float | None = None) -> float:
    """``value`` as a finite ``float`` (a Python or NumPy real number, not a bool), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(where, "a finite number", value)
    try:
        number = float(value)
    except OverflowError:
        raise InputError(where, "a finite number", "a number too large for a float") from None
    if not math.isfinite(number):
        raise InputError(where, "a finite number", value)
    if minimum is not None and number < minimum:
        raise InputError(where, f"a number >= {minimum:g}", value)
    return number


def boolean(value: Any, where: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (a NumPy bool too); ``"no"``, ``0`` and ``None`` are refused."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise InputError(where, "true or false", value)


def one_of(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InputError(where, "one of " + ", ".join(allowed), value)
    return value
