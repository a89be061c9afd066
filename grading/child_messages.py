"""The child's messages, read as untrusted input: every field checked for type, range and size.

The child speaks in this order: ``imported`` (``ok``, ``error``, ``defined``), then per
check ``start`` (``id``) and ``done`` (``id``, ``results``, ``error``, ``watched``). A
message that breaks this contract raises :class:`grading.wire.WireError`, which the
sandbox turns into a ``crashed`` check ("sent a malformed message …"); nothing a child
sends can raise anything else in the grader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from grading import wire
from grading.report_text import printable

if TYPE_CHECKING:
    from grading.sandbox import CheckOutcome, ChildCheck

_TEXT_CHARS = 300
_ERROR_FIELDS = ("type", "message", "where", "stage")


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise wire.WireError(f"{what} is not a string")
    # One line, control characters visible: the text lands in reports, XML and the terminal.
    return printable(" ".join(value[:_TEXT_CHARS].splitlines()), keep_lines=False)


def error_fields(error: Any, calls: int | None = None) -> dict[str, Any]:
    """An error report ``{"type", "message", "where", "stage"[, "call"]}`` with every field checked.

    ``calls``: the number of calls of the check; ``call`` must index one of them.
    """
    if not isinstance(error, dict):
        raise wire.WireError("an error report is not an object")
    fields: dict[str, Any] = {key: _text(error.get(key), f"error field {key!r}") for key in _ERROR_FIELDS}
    fields["type"] = fields["type"] or "Error"
    if calls is not None:
        call = error.get("call")
        if type(call) is not int or not 0 <= call < calls:
            raise wire.WireError(f"error call index {call!r} is not one of the check's {calls} calls")
        fields["call"] = call
    return fields


def import_report(header: dict[str, Any], functions: Sequence[str]) -> tuple[bool, dict[str, Any] | None, frozenset]:
    """``(imported, import error, defined functions)`` from the first message."""
    if header.get("type") != "imported" or type(header.get("ok")) is not bool:
        raise wire.WireError("expected the import report first")
    if not header["ok"]:
        return False, error_fields(header.get("error")), frozenset()
    defined = header.get("defined")
    if not isinstance(defined, list) or not all(isinstance(name, str) for name in defined):
        raise wire.WireError("the list of defined functions is not a list of names")
    return True, None, frozenset(name for name in defined if name in functions)


def expect_start(header: dict[str, Any], check_id: str) -> None:
    """Check that ``header`` announces the start of check ``check_id``."""
    if header.get("type") != "start" or header.get("id") != check_id:
        raise wire.WireError(f"expected the start of check {check_id}")


def check_outcome(check: ChildCheck, header: dict[str, Any], arrays: list[np.ndarray]) -> CheckOutcome:
    """The outcome of ``check`` from its ``done`` message: a result for every call before an error, no more."""
    from grading.sandbox import CheckOutcome

    if header.get("type") != "done" or header.get("id") != check.id:
        raise wire.WireError(f"expected the results of check {check.id}")
    results, error = header.get("results"), header.get("error")
    if not isinstance(results, list):
        raise wire.WireError("the results are not a list")
    calls = len(check.calls)
    if error is None:
        if len(results) != calls:
            raise wire.WireError(f"{len(results)} results for {calls} calls")
        fields = None
    else:
        fields = error_fields(error, calls)
        if len(results) != fields["call"]:
            raise wire.WireError(f"{len(results)} results before an error in call {fields['call']}")
    decoded = [wire.decode_tree(node, arrays) for node in results]
    watched_index = header.get("watched")
    if not isinstance(watched_index, dict):
        raise wire.WireError("the watched inputs are not an object")
    watched = {}
    for name in check.watch:
        index = watched_index.get(name)
        if type(index) is not int or not 0 <= index < len(arrays):
            raise wire.WireError(f"watched input {name!r} points at no array")
        watched[name] = arrays[index]
    return CheckOutcome(check.id, "done", decoded, fields, watched)
