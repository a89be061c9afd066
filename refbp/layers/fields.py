"""Validation of one typed layer's fields: each failure is an :class:`InputError` naming the field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from refbp.errors import InputError


def check_keys(data: Any, allowed: tuple[str, ...], where: str) -> Mapping[str, Any]:
    """``data`` as a mapping whose keys are all in ``allowed``."""
    if not isinstance(data, Mapping):
        raise InputError(where, "a table/object", data)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InputError(f"{where}.{unknown[0]}", "a known field (one of " + ", ".join(allowed) + ")", "unknown field")
    return data


def choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InputError(where, "one of " + ", ".join(allowed), value)
    return value


def integer(value: Any, where: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(where, f"an integer >= {minimum}", value)
    return value


def pair(value: Any, where: str, *, minimum: int = 1) -> tuple[int, int]:
    """An integer ``k`` (meaning ``(k, k)``) or a list ``[kh, kw]``."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise InputError(where, f"an integer >= {minimum} or a pair [height, width]", value)
        return integer(value[0], where, minimum=minimum), integer(value[1], where, minimum=minimum)
    size = integer(value, where, minimum=minimum)
    return size, size


def number(value: Any, where: str, *, low: float, high: float, open_low: bool = False) -> float:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``open_low``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(where, "a finite number", value)
    if value > high or value < low or (open_low and value == low):
        bracket = "(" if open_low else "["
        raise InputError(where, f"a number in {bracket}{low:g}, {high:g}]", value)
    return float(value)


def pair_value(value: tuple[int, int]) -> int | list[int]:
    """A pair as it is written back: one integer when both sides agree."""
    return value[0] if value[0] == value[1] else list(value)
