"""Where a key of a worked-example file is, and one-line errors that name file, line and field.

:func:`line_of` and :func:`locate` find the line of a TOML key path (``("claims", "dE/dw7")``)
in the file's text; :class:`FileReader` turns every problem into an :class:`InputError`
whose source is ``FILE`` or ``FILE, line N`` and whose field is the TOML path. An unknown
key is echoed by name with the nearest known one: ``unknown key 'momentum' in [network];
did you mean 'optimizer'?``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

from refbp.errors import InputError
from worked.optimizers import KINDS, OptimizerSpec, optimizer_spec
from worked.rounding import Printed, parse_printed

CLAIM_KEYS = ("printed", "slack_units", "note")


# ---------------------------------------------------------------------------- lines


_HEADER = re.compile(r"^\s*\[\[?\s*(?P<path>[^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_LINE = re.compile(r"""^\s*(?P<key>"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")
_PATH_PART = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*(?:\.|$)""")


def _unquote(key: str) -> str:
    if key[:1] in "\"'":
        return key[1:-1].encode().decode("unicode_escape") if key[0] == '"' else key[1:-1]
    return key


def _header_path(text: str) -> tuple[str, ...]:
    return tuple(_unquote(m.group(1)) for m in _PATH_PART.finditer(text))


def line_of(text: str, path: tuple[str, ...]) -> int | None:
    """The 1-based line where the key ``path`` (e.g. ``("claims", "dE/dw7")``) is set, if it can be found.

    Plain ``key = value`` lines under ``[table]`` headers are found; keys set inside inline
    tables or with dotted keys are not (``None``): :func:`locate` finds the nearest line.
    """
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _header_path(header.group("path"))
            if table == path:
                return number
            continue
        key = _KEY_LINE.match(line)
        if key and (*table, _unquote(key.group("key"))) == path:
            return number
    return None


_INDEXED = re.compile(r"^(?P<key>.+)\[(?P<index>\d+)\]$")


def _element_line(text: str, line: int, index: int) -> int | None:
    """The line where element ``index`` of the array set on ``line`` (``key = [ … ]``) starts.

    Counts the commas at the array's own depth, skipping strings, comments and nested
    arrays and inline tables; ``None`` when the array has fewer elements.
    """
    lines = text.splitlines()
    depth, count, started, quote = 0, 0, False, ""
    for number in range(line, len(lines) + 1):
        row = lines[number - 1]
        key = _KEY_LINE.match(row) if number == line else None
        column = key.end() if key else 0
        while column < len(row):
            char = row[column]
            if quote:
                if char == "\\" and quote == '"':
                    column += 1
                elif char == quote:
                    quote = ""
            elif char == "#":
                break
            elif depth == 0:
                if char == "[":
                    depth = 1
                elif not char.isspace():
                    return None  # not an array
            elif depth == 1 and char == "]":
                return None
            elif depth == 1 and char == ",":
                count += 1
                started = False
            elif not char.isspace():
                if depth == 1 and not started:
                    if count == index:
                        return number
                    started = True
                if char in "\"'":
                    quote = char
                elif char in "[{":
                    depth += 1
                elif char in "]}":
                    depth -= 1
            column += 1
    return None


def locate(text: str, path: tuple[str, ...]) -> int | None:
    """The line of ``path`` or, failing that, of the nearest enclosing key or array element.

    ``("network", "layers[1]", "activation")`` is found on the line where the second
    element of ``layers = [ … ]`` starts, when the array is written one element a line.
    """
    for size in range(len(path), 0, -1):
        prefix = path[:size]
        line = line_of(text, prefix)
        if line is not None:
            return line
        indexed = _INDEXED.match(prefix[-1])
        if indexed:
            array_line = line_of(text, (*prefix[:-1], indexed.group("key")))
            if array_line is not None:
                return _element_line(text, array_line, int(indexed.group("index"))) or array_line
    return None


# ---------------------------------------------------------------------------- parsing


class UnknownKeyError(InputError):
    """An unknown key, echoed by name with the table it is in and the nearest known key."""

    def __init__(self, field: str, expected: str, detail: str, *, source: str) -> None:
        self.detail = detail
        super().__init__(field, expected, None, source=source)

    def _message(self) -> str:
        return f"{super()._message()}, got {self.detail}"

    def with_source(self, source: str) -> InputError:
        return UnknownKeyError(self.field, self.expected, self.detail, source=source)


_ELSEWHERE = {
    **dict.fromkeys(KINDS, "the top-level optimizer = {{ kind = {key!r} }}"),
    **dict.fromkeys(("beta", "beta1", "beta2", "eps"), "a setting in the top-level optimizer = {{ … }}"),
    **dict.fromkeys(("learning_rate", "lr", "frozen", "optimizer", "slack_units"), "the top-level key {name!r}"),
}


def unknown_key_detail(key: str, table: tuple[str, ...], allowed: list[str] | tuple[str, ...]) -> str:
    """``unknown key 'momentum' in [network]; did you mean the top-level optimizer = { kind = 'momentum' }?``

    The nearest allowed key, or for a training setting written inside a table, where it belongs.
    """
    where = f"in [{path_text(table)}]" if table else "at the top level"
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r} {where}; did you mean {close[0]!r}?"
    if table and key in _ELSEWHERE:
        name = "learning_rate" if key == "lr" else key
        return f"unknown key {key!r} {where}; did you mean " + _ELSEWHERE[key].format(key=key, name=name) + "?"
    return f"unknown key {key!r} {where}"


class FileReader:
    """Reads one file's tables, turning every problem into an InputError with file, line and field."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text

    def error(self, path: tuple[str, ...], expected: str, got: Any = None) -> InputError:
        line = locate(self.text, path) if path else None
        where = self.source if line is None else f"{self.source}, line {line}"
        return InputError(path_text(path), expected, got, source=where)

    def reraise(self, path: tuple[str, ...], err: InputError, *, sub: str = "") -> InputError:
        """``err`` (raised without a file) re-attributed to ``path`` in this file."""
        inner = tuple(p for p in re.split(r"\.(?![^\[]*\])", err.field) if p) if sub else ()
        full = path + inner
        line = locate(self.text, full)
        where = self.source if line is None else f"{self.source}, line {line}"
        listed = re.search(r"\(one of (.*)\)", err.expected)
        if err.got == "unknown field" and full and listed:
            detail = unknown_key_detail(full[-1], full[:-1], listed.group(1).split(", "))
            return UnknownKeyError(path_text(full), err.expected, detail, source=where)
        return InputError(path_text(full), err.expected, err.got, source=where)

    def table(self, data: Any, path: tuple[str, ...], allowed: tuple[str, ...] | None = None) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise self.error(path, "a table", data)
        if allowed is not None:
            unknown = [key for key in data if key not in allowed]
            if unknown:
                raise self.unknown(path, unknown[0], allowed)
        return data

    def unknown(self, table: tuple[str, ...], key: str, allowed: tuple[str, ...] | list[str]) -> InputError:
        """The error for ``key`` in ``table``, which allows only ``allowed``."""
        full = (*table, key)
        line = locate(self.text, full)
        where = self.source if line is None else f"{self.source}, line {line}"
        expected = "a known key (one of " + ", ".join(allowed) + ")"
        return UnknownKeyError(path_text(full), expected, unknown_key_detail(key, table, allowed), source=where)


def path_text(path: tuple[str, ...]) -> str:
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_\-\[\]]+", p) else f'"{p}"' for p in path)


def read_slack(reader: FileReader, value: Any, path: tuple[str, ...]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise reader.error(path, "a number of units >= 0", value)
    return float(value)


def read_claim_value(
    reader: FileReader, value: Any, where: tuple[str, ...], default_slack: float
) -> tuple[Printed, float, str]:
    """A claim's printed number, slack and note: ``"0.0020"`` or ``{ printed = …, slack_units = …, note = … }``."""
    slack, note = default_slack, ""
    if isinstance(value, Mapping):
        value = reader.table(value, where, CLAIM_KEYS)
        if "printed" not in value:
            raise reader.error((*where, "printed"), 'the number as printed, e.g. "0.0020"', "missing")
        slack = read_slack(reader, value.get("slack_units", default_slack), (*where, "slack_units"))
        note = str(value.get("note", ""))
        value = value["printed"]
    try:
        printed = parse_printed(value)
    except ValueError as err:
        raise reader.error(where, str(err), value) from None
    return printed, slack, note


MAX_STEPS = 100_000


def read_steps(reader: FileReader, text: str, where: tuple[str, ...]) -> int:
    """The ``K`` of ``[after_steps.K]``: 1 to 100,000."""
    if not re.fullmatch(r"[1-9]\d{0,5}", text) or int(text) > MAX_STEPS:
        raise reader.error(where, f"a number of steps from 1 to {MAX_STEPS:,}", text)
    return int(text)


def read_training(
    reader: FileReader, data: Mapping[str, Any], parameters: list[str]
) -> tuple[float | None, OptimizerSpec, tuple[str, ...]]:
    """``learning_rate``, ``optimizer`` and ``frozen`` of a file (see :mod:`worked.optimizers`)."""
    rate = data.get("learning_rate")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0
    ):
        raise reader.error(("learning_rate",), "a learning rate > 0", rate)
    try:
        optimizer = optimizer_spec(data.get("optimizer", "sgd"))
    except ValueError as err:
        key, expected, got = err.args
        if isinstance(got, str) and got.startswith("unknown key"):
            kind = optimizer_spec({"kind": data["optimizer"].get("kind", "sgd")})
            raise reader.unknown(("optimizer",), key, ["kind", *kind.settings]) from None
        raise reader.error(("optimizer", key) if key else ("optimizer",), expected, got) from None
    frozen = data.get("frozen", [])
    if not isinstance(frozen, list) or not all(isinstance(name, str) for name in frozen):
        raise reader.error(("frozen",), 'a list of parameter names, like ["b1", "b2"]', frozen)
    for name in frozen:
        if name not in parameters:
            close = difflib.get_close_matches(name, parameters, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise reader.error(("frozen",), "names of parameters (" + ", ".join(parameters) + ")" + hint, name)
    return (None if rate is None else float(rate)), optimizer, tuple(frozen)
