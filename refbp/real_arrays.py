"""Arrays of real numbers from user input: nothing else gets through silently.

NumPy converts almost anything to ``float64``: strings (``"1.5"``), booleans, objects,
and complex numbers whose imaginary part it drops. :func:`real_array` refuses all of
those, naming the field, and refuses NaN and infinity unless asked not to.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp.errors import InputError

_KIND_WORDS = {
    "b": "booleans",
    "c": "complex numbers",
    "O": "Python objects (not plain numbers)",
    "U": "strings",
    "S": "byte strings",
    "M": "dates",
    "m": "time spans",
    "V": "raw records",
}


def real_kind(array: np.ndarray) -> str:
    """``""`` when ``array`` holds real numbers (integers or floats), else what it holds, in words."""
    kind = array.dtype.kind
    return "" if kind in "iuf" else _KIND_WORDS.get(kind, f"dtype {array.dtype}")


def real_array(
    value: Any,
    where: str,
    *,
    dtype: str | np.dtype | None = None,
    source: str = "spec",
    allow_nonfinite: bool = False,
    expected: str = "real numbers",
) -> np.ndarray:
    """``value`` as a new array of ``dtype`` (its own dtype when ``None``) of real, finite numbers.

    ``expected`` words the error (``"numbers in an array of shape (2, 3)"``).
    """
    try:
        array = np.array(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(where, expected, "values that do not form a rectangular array", source=source) from None
    words = real_kind(array)
    if words:
        raise InputError(where, expected, words, source=source)
    if dtype is not None:
        with np.errstate(over="ignore"):
            array = array.astype(dtype)
    if not allow_nonfinite and array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise InputError(where, "finite numbers", "NaN or infinity", source=source)
    return array
