"""The one error type for bad user input.

Every message is a single line that names where the input came from (a file, or
``spec`` for an in-memory object), the field, and what was expected, so that the
command-line tools can print it as-is and exit with status 2.
"""

from __future__ import annotations

import unicodedata
from typing import Any


class InputError(ValueError):
    """Bad input: a spec, parameter file, data file or command-line value.

    ``str(err)`` is one line: ``<source>: <field>: expected <expected>, got <got>``.
    """

    def __init__(self, field: str, expected: str, got: Any = None, *, source: str = "spec") -> None:
        self.source = source
        self.field = field
        self.expected = expected
        self.got = got
        super().__init__(self._message())

    def _message(self) -> str:
        got = "" if self.got is None else f", got {_short(self.got)}"
        where = one_line(f"{self.source}: {self.field}" if self.field else self.source)
        if len(where) > _WHERE_LIMIT:
            where = where[: _WHERE_LIMIT // 2] + "…" + where[-_WHERE_LIMIT // 2 :]
        return f"{where}: expected {self.expected}{got}"

    def with_source(self, source: str) -> InputError:
        """The same error, re-attributed to ``source`` (e.g. the file it was read from)."""
        return InputError(self.field, self.expected, self.got, source=source)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``), so that it stays one line."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in _CONTROL else c for c in text)


_CONTROL = ("Cc", "Zl", "Zp")
_WHERE_LIMIT = 400  # characters of source and field kept in a message (a pasted case can be any length)


def _short(value: Any, limit: int = 80) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
