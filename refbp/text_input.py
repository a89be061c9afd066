"""Reading user files and parsing JSON and TOML, with limits that keep every failure one line.

* :func:`read_input_text` reads a regular file only (``/dev/zero`` or a pipe would never
  end), at most :data:`MAX_BYTES`, and requires UTF-8 (the error names the first bad byte).
* :func:`json_loads` and :func:`toml_loads` refuse nesting deeper than :data:`MAX_DEPTH`
  and integers longer than :data:`MAX_INT_DIGITS` digits: no ``RecursionError``, no
  conversion error, no number too big for any field to hold.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from refbp.errors import InputError
from refbp.output_paths import file_kind

MAX_BYTES = 16 * 2**20
"""Largest input file read (16 MiB): specs, cases and worked examples are a few kB."""
MAX_DEPTH = 32
"""Deepest nesting of tables and arrays in a JSON or TOML input."""
MAX_INT_DIGITS = 100
"""Longest integer literal in a JSON or TOML input, in digits."""


def read_input_text(path: str | Path, expected: str) -> str:
    """The UTF-8 text of the regular file ``path``; ``expected`` (``"a readable spec file"``) words errors."""
    source = str(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise InputError("", expected, file_kind(info.st_mode), source=source)
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as err:
        raise InputError("", expected, err.strerror or type(err).__name__, source=source) from None
    if len(data) > MAX_BYTES:
        raise InputError("", f"{expected} of at most {MAX_BYTES // 2**20} MiB", "a larger file", source=source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        got = f"byte 0x{data[err.start]:02x} on line {line}"
        raise InputError("", "UTF-8 text", got, source=source) from None


class _IntegerTooLongError(ValueError):
    pass


def _integer(text: str) -> int:
    if len(text.lstrip("+-")) > MAX_INT_DIGITS:
        raise _IntegerTooLongError
    return int(text)


def _limits_problem(data: Any) -> str:
    """``""`` when ``data`` nests at most :data:`MAX_DEPTH` deep with short integers, else what is wrong."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return f"nesting deeper than {MAX_DEPTH} levels"
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
        elif isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) > MAX_INT_DIGITS:
            return f"an integer of more than {MAX_INT_DIGITS} digits"
    return ""


def json_loads(text: str, *, source: str) -> Any:
    """``json.loads`` within the limits; a failure is an :class:`InputError` naming the line and column."""
    try:
        data = json.loads(text, parse_int=_integer)
    except json.JSONDecodeError as err:
        raise InputError(f"line {err.lineno} column {err.colno}", "valid JSON", err.msg, source=source) from None
    except _IntegerTooLongError:
        problem = f"an integer of more than {MAX_INT_DIGITS} digits"
    except RecursionError:
        problem = f"nesting deeper than {MAX_DEPTH} levels"
    else:
        problem = _limits_problem(data)
    if problem:
        expected = f"JSON within the limits (nesting {MAX_DEPTH} deep, integers of {MAX_INT_DIGITS} digits)"
        raise InputError("", expected, problem, source=source)
    return data


def toml_loads(text: str) -> dict[str, Any]:
    """``tomllib.loads`` within the limits; every failure is a :class:`tomllib.TOMLDecodeError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise
    except RecursionError:
        raise tomllib.TOMLDecodeError(f"nesting deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # an integer literal too long for Python to convert
        raise tomllib.TOMLDecodeError(f"an integer of more than {MAX_INT_DIGITS} digits") from None
    problem = _limits_problem(data)
    if problem:
        raise tomllib.TOMLDecodeError(problem)
    return data
