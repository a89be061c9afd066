"""Small named checks: turn what one check's calls returned into scored rows.

One row per expected output (values, shape, NaN/Inf, type) and one for the inputs the
check must leave unchanged. Statuses:

``ok``        within tolerance (:func:`oracle.compare.compare_arrays`, pair ``student~oracle``)
``mismatch``  some entry is not
``shape``     wrong shape (``(n,)`` where ``(n, 1)`` is expected, say)
``nan``       NaN or infinity where the oracle's value is finite
``type``      not an array of numbers (``None``, a string, a tuple too short)
``key``       a key the returned dict should hold is missing
``mutated``   an input array was changed in place
``missing``   the function (or the forward function whose cache it needs) is not defined
``error``     the function raised (or the submission could not be imported)
``timeout``   the check did not finish within its time
``crashed``   the process died during the check (memory, a signal, ``os._exit``)
``not_run``   the submission ran out of time before this check
``skipped``   an optional function the submission does not define, or whose every call raised or returned no
              numbers (the unfinished template of an ungraded exercise): not graded, worth 0 of 0 points
``warn``      an advisory check (see :mod:`grading.assignment_plan`) that fails, at severity ``warn``:
              shown, worth no points, not a failure; the message says what went wrong
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from grading.derived import derive
from grading.error_hints import error_hint
from grading.patterns import diagnose
from grading.plan import Expect, FunctionCheck, PathStep
from grading.sandbox import CheckOutcome, SandboxOutcome
from grading.wire import Opaque
from oracle.compare import compare_arrays

STATUSES = (
    "ok", "mismatch", "shape", "nan", "type", "key", "mutated", "missing", "error", "timeout", "crashed", "not_run",
    "warn", "skipped",
)  # fmt: skip
#: Statuses that do not fail a submission.
PASSING = ("ok", "warn", "skipped")
PAIR = "student~oracle"
#: Statuses of rows that got no number to compare: an optional function whose rows are all so was not attempted.
_NOT_ATTEMPTED = ("error", "type", "key")
UNCHANGED = "inputs unchanged"


@dataclass
class CheckRow:
    """One scored row: which function, which check, which quantity, and how it went."""

    target: str
    check: str
    quantity: str
    status: str
    max_abs_err: float | None
    max_rel_err: float | None
    diagnosis: str
    message: str
    score: float
    max_score: float
    pattern: str = ""
    advisory: str = ""

    @property
    def passed(self) -> bool:
        return self.status in PASSING

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(check: FunctionCheck, quantity: str, points: float, status: str, message: str = "", **extra: Any) -> CheckRow:
    fields = {"max_abs_err": None, "max_rel_err": None, "diagnosis": "", "pattern": ""} | extra
    score = points if status == "ok" else 0.0
    return CheckRow(
        check.target, check.name, quantity, status, message=message, score=score, max_score=points, **fields
    )


def _quantities(check: FunctionCheck) -> list[tuple[str, float]]:
    rows = [(e.quantity, e.points) for e in check.expects]
    return rows + ([(UNCHANGED, check.watch_points)] if check.watch else [])


def _all(check: FunctionCheck, status: str, message: str) -> list[CheckRow]:
    return [_row(check, quantity, points, status, message) for quantity, points in _quantities(check)]


def error_text(error: dict[str, Any]) -> str:
    """``"ValueError: shapes (3,4) and (5,) not aligned (line 12: dx = dout @ w)"``."""
    text = f"{error.get('type', 'Error')}: {error.get('message', '')}".rstrip(": ")
    return text + (f" ({error['where']})" if error.get("where") else "")


def evaluate(check: FunctionCheck, run: SandboxOutcome) -> list[CheckRow]:
    """The rows of ``check`` given the sandbox run (import status, defined functions, the check's outcome)."""
    if not run.imported:
        detail = error_text(run.import_error or {})
        return _all(check, "error", f"the submission could not be imported: {detail}")
    if check.target not in run.defined:
        if check.optional:
            return _skipped(_all(check, "missing", f"{check.target} is not defined"))
        return _all(check, "missing", f"{check.target} is not defined")
    missing = [name for name in check.needs if name not in run.defined]
    if missing:
        return _all(check, "missing", f"needs {missing[0]} (for its cache), which is not defined")
    outcome = run.checks.get(check.name)
    if outcome is None or outcome.state != "done":
        state = "not_run" if outcome is None else outcome.state
        return _all(check, state, outcome.message if outcome else "not run")
    if check.derive and (outcome.error is None or int(outcome.error.get("call", 0)) > 0):  # the forward returned
        check, problem = derive(check, outcome.results)
        if problem:
            return _all(check, "type", problem)
    rows = [_expect_row(check, expect, outcome) for expect in check.expects]
    if check.optional and all(row.status in _NOT_ATTEMPTED for row in rows):
        return _skipped(rows + ([_unchanged_row(check, outcome)] if check.watch else []))
    if check.severity == "warn":
        rows = [_as_warning(row, check.advisory) for row in rows]
    if check.watch:
        row = _unchanged_row(check, outcome)
        if check.watch_severity != "warn":
            rows.append(row)
        elif row.status in ("ok", "mutated"):  # a check that did not complete says nothing about its inputs
            rows.append(_as_warning(row, "inplace"))
    return rows


def _skipped(rows: list[CheckRow]) -> list[CheckRow]:
    """The rows of an optional function that was not handed in (or only as its template): 0 of 0 points."""
    for row in rows:
        row.message = f"optional, so not graded: {row.message}" if row.message else "optional, so not graded"
        row.status, row.score, row.max_score = "skipped", 0.0, 0.0
    return rows


def _as_warning(row: CheckRow, advisory: str) -> CheckRow:
    """A failing row of an advisory check at severity ``warn``: status ``warn``, no points, what would fail it."""
    row.advisory = advisory
    if row.status == "ok":
        return row
    row.message = (
        f'{row.message} — a warning only: advisory.{advisory} = "fail" in the assignment would make it a failure'
    ).lstrip(" —")
    row.status, row.score, row.max_score = "warn", 0.0, 0.0
    return row


def _expect_row(check: FunctionCheck, expect: Expect, outcome: CheckOutcome) -> CheckRow:
    error = outcome.error
    if error is not None and expect.call >= int(error.get("call", 0)):
        index = int(error.get("call", 0))
        failed = check.calls[index].function
        if error.get("stage") == "arguments":
            source = check.calls[index - 1].function if index else failed
            text = f"cannot take the cache from what {source} returned ({error.get('type')}: {error.get('message')})"
            return _row(check, expect.quantity, expect.points, "type", text)
        hint = error_hint(error)
        if failed == check.target:
            return _row(check, expect.quantity, expect.points, "error", f"raised {error_text(error)}", diagnosis=hint)
        text = f"{failed} raised {error_text(error)}, so no cache to use"
        return _row(check, expect.quantity, expect.points, "error", text, diagnosis=hint)
    value, problem = _follow(outcome.results[expect.call], expect.path, check.calls[expect.call].function)
    if problem:
        status = "key" if problem.startswith("missing key") else "type"
        return _row(check, expect.quantity, expect.points, status, problem)
    return compare_value(check, expect, value)


def _follow(value: Any, path: Sequence[PathStep], function: str) -> tuple[Any, str]:
    """The item at ``path`` in a returned value, or ``(None, what went wrong)``."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, tuple | list):
                return None, f"{function} returned {_kind(value)}, expected a tuple with at least {step + 1} items"
            if step >= len(value):
                return None, f"{function} returned {len(value)} items, expected at least {step + 1}"
            value = value[step]
        else:
            keys = (step,) if isinstance(step, str) else step
            if not isinstance(value, dict):
                return None, f"{function} returned {_kind(value)}, expected a dict with key {keys[0]!r}"
            found = next((k for k in keys if k in value), None)
            if found is None:
                return None, f"missing key: {function} returned a dict without {keys[0]!r}"
            value = value[found]
    return value, ""


def _kind(value: Any) -> str:
    if isinstance(value, Opaque):
        return value.describe()
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _stacked(value: Any) -> Any:
    """Nested lists/tuples of equally shaped arrays (numbers included) as one array; anything else unchanged."""
    if isinstance(value, list | tuple) and value:
        items = [_stacked(item) for item in value]
        if all(isinstance(item, np.ndarray) for item in items) and len({item.shape for item in items}) == 1:
            return np.stack(items)
    return value


def compare_value(check: FunctionCheck, expect: Expect, value: Any) -> CheckRow:
    """The row for one returned value against the oracle's (shape, NaN, tolerance, diagnosis)."""
    expected = np.asarray(expect.value)
    value = _stacked(value)
    if not isinstance(value, np.ndarray):
        return _row(check, expect.quantity, expect.points, "type", f"got {_kind(value)}, expected an array of numbers")
    if expect.scalar and value.size == 1:
        value = value.reshape(expected.shape)
    scale = max(float(np.abs(e.value).max(initial=0.0)) for e in check.expects)
    compared = compare_arrays(
        value,
        expected,
        case=check.name,
        layer=0,
        quantity=expect.quantity,
        pair=PAIR,
        dtype="float64",
        scale_floor=scale,
    )
    status = compared.status if compared.status in STATUSES else "mismatch"
    if status == "mismatch" and _within_override(check, value, expected, scale):
        status = "ok"
    extra: dict[str, Any] = {}
    if np.isfinite(compared.max_abs_err):
        extra = {"max_abs_err": compared.max_abs_err, "max_rel_err": compared.max_rel_err}
    message = compared.message
    if status == "mismatch":
        message = (
            f"worst entry {compared.worst_index}: got {compared.worst_left:.6g}, expected {compared.worst_right:.6g}"
        )
    elif status == "nan":
        at = "" if expected.ndim == 0 else f" at {compared.worst_index}"
        message = f"got {compared.worst_left:g}{at}, expected {compared.worst_right:.6g} (NaN or infinity)"
    if status != "ok":
        pattern, diagnosis = diagnose(expected, value, expect.hints)
        extra["pattern"], extra["diagnosis"] = pattern, "" if _repeats(diagnosis, message) else diagnosis
    return _row(check, expect.quantity, expect.points, status, message, **extra)


def _repeats(hint: str, message: str) -> bool:
    """Whether ``hint`` says nothing the message does not (same words, ignoring case and punctuation)."""

    def words(text: str) -> str:
        return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())

    return bool(hint) and words(hint) in words(message)


def _within_override(check: FunctionCheck, value: np.ndarray, expected: np.ndarray, scale: float) -> bool:
    """Whether every entry is within the assignment's tolerance (``atol·scale + rtol·|expected|``), if it sets one."""
    if check.rtol is None and check.atol is None:
        return False
    rtol = 1e-8 if check.rtol is None else check.rtol
    atol = 1e-10 if check.atol is None else check.atol
    scale = max(scale, float(np.abs(expected).max(initial=0.0)), float(np.finfo(np.float64).tiny))
    error = np.abs(value.astype(np.float64) - expected)
    return bool(np.all(error <= atol * scale + rtol * np.abs(expected)))


def _unchanged_row(check: FunctionCheck, outcome: CheckOutcome) -> CheckRow:
    changed = []
    for name in check.watch:
        after = outcome.watched.get(name)
        before = np.asarray(check.inputs[name])
        if after is None or after.shape != before.shape or not np.array_equal(after, before, equal_nan=True):
            changed.append(name)
    if outcome.error is not None:
        status = "type" if outcome.error.get("stage") == "arguments" else "error"
        return _row(check, UNCHANGED, check.watch_points, status, "not checked: the check did not complete")
    if changed:
        names = ", ".join(changed)
        first = changed[0]
        hint = f"work on a copy ({first}.copy() or np.array({first}, copy=True)) instead of changing the argument"
        return _row(check, UNCHANGED, check.watch_points, "mutated", f"modified in place: {names}", diagnosis=hint)
    return _row(check, UNCHANGED, check.watch_points, "ok")
