"""Size limits, checked before anything is allocated, and how to raise them.

A spec or a batch beyond a limit is refused with an :class:`InputError` that names the
limit and how to raise it, instead of an out-of-memory error or a run of hours:

============  ============  ==========================================================
limit         default       what it bounds
============  ============  ==========================================================
parameters    50,000,000    the spec's parameter count (400 MB in float64)
depth         1,000         the number of layers
width         1,000,000     ``inputs`` and each layer's ``units``
batch         1,000,000     examples in one batch
activations   50,000,000    entries of the largest ``z``/``a`` of a batch (batch × width)
============  ============  ==========================================================

Raise them for one command with ``refbp --limit parameters=2e8 --limit batch=1e7 …``, or
in Python with ``with refbp.limits.raised(parameters=2e8): …``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator, Sequence

from refbp.errors import InputError

DEFAULTS = {
    "parameters": 50_000_000,
    "depth": 1_000,
    "width": 1_000_000,
    "batch": 1_000_000,
    "activations": 50_000_000,
}
_current = dict(DEFAULTS)
_HOW = "raise it with refbp --limit {name}=N or refbp.limits.raised({name}=N)"


def current(name: str) -> int:
    """The limit in force for ``name`` (one of :data:`DEFAULTS`)."""
    return _current[name]


def check(name: str, value: int, where: str, *, source: str = "spec") -> None:
    """Refuse ``value`` above the ``name`` limit, naming the field ``where``."""
    if value > _current[name]:
        expected = f"at most {_current[name]:,} ({name} limit; " + _HOW.format(name=name) + ")"
        raise InputError(where, expected, f"{value:,}", source=source)


def check_widths(widths: Sequence[int], *, source: str = "spec") -> None:
    """Depth, widths and parameter count of a dense network ``(inputs, n_1, …, n_L)`` (without biases' few)."""
    check("depth", len(widths) - 1, "layers", source=source)
    for index, width in enumerate(widths):
        check("width", width, "inputs" if index == 0 else f"layers[{index - 1}].units", source=source)
    weights = sum(a * b for a, b in itertools.pairwise(widths)) + sum(widths[1:])
    check("parameters", weights, "parameter count", source=source)


def check_batch(batch: int, widest: int, where: str, *, source: str = "spec") -> None:
    """A batch of ``batch`` examples through layers at most ``widest`` wide."""
    check("batch", batch, where, source=source)
    check("activations", batch * widest, f"{where} × width", source=source)


def parse(text: str) -> tuple[str, int]:
    """``"parameters=2e8"`` → ``("parameters", 200000000)``; an :class:`InputError` otherwise."""
    name, sep, number = text.partition("=")
    name = name.strip()
    if not sep or name not in DEFAULTS:
        raise InputError("--limit", "NAME=N with NAME one of " + ", ".join(DEFAULTS), text, source="command line")
    try:
        value = float(number) if len(number) <= 40 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise InputError(f"--limit {name}", "a positive whole number (e.g. 2e8)", number, source="command line")
    return name, int(value)


@contextlib.contextmanager
def raised(**limits: float) -> Iterator[None]:
    """Use other limits inside the ``with`` block (e.g. ``raised(parameters=2e8, batch=1e7)``)."""
    previous = dict(_current)
    try:
        for name, value in limits.items():
            if name not in DEFAULTS:
                raise InputError(name, "a limit, one of " + ", ".join(DEFAULTS), "unknown", source="limits")
            if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value < math.inf:
                raise InputError(name, "a positive whole number", value, source="limits")
            if value != int(value):
                raise InputError(name, "a positive whole number", value, source="limits")
            _current[name] = int(value)
        yield
    finally:
        _current.clear()
        _current.update(previous)
