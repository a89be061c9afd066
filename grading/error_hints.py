"""Plain-words hints for exceptions raised by code that older NumPy versions ran with only a warning.

A course's notebook may tell students to write ``float(b)`` for ``b`` of shape ``(1, 1, 1)``, or to
store ``np.sum(s) + b`` (shape ``(1, 1, 1)``) into one entry of an array. NumPy 1.25 deprecated both;
the NumPy the grader runs may refuse them. The error row then says why, and what to write instead.
The message is the student's exception text: it only selects a fixed hint, never enters one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ErrorHint:
    """An exception type, words its message starts with, and the hint (``{numpy}``: this NumPy's version)."""

    type: str
    starts: tuple[str, ...]
    hint: str


ERROR_HINTS: tuple[ErrorHint, ...] = (
    ErrorHint(
        "TypeError",
        ("only 0-dimensional arrays can be converted", "only length-1 arrays can be converted"),
        "float() or int() got an array, not a number: NumPy {numpy} converts only 0-dimensional arrays (older "
        "versions also took an array of one entry, such as b of shape (1, 1, 1), with a warning) — use b.item()",
    ),
    ErrorHint(
        "ValueError",
        ("setting an array element with a sequence",),
        "an array was stored into a single entry: NumPy {numpy} needs a number there (older versions also took an "
        "array of one entry, such as np.sum(s) + b with b of shape (1, 1, 1), with a warning) — return a number, "
        "e.g. with .item(), or check the shape of what is stored",
    ),
)


def error_hint(error: Mapping[str, Any]) -> str:
    """The hint for an error report ``{"type", "message", …}``, or ``""`` when none applies."""
    message = str(error.get("message", ""))
    for item in ERROR_HINTS:
        if error.get("type") == item.type and message.startswith(item.starts):
            return item.hint.format(numpy=np.__version__)
    return ""
