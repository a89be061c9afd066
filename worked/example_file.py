"""Worked-example files (TOML): the network, its numbers, and the claims printed about them.

A file holds one worked example as printed in the notes::

    title = "A 3-2-2 sigmoid network"
    source = "where it was printed"         # optional
    learning_rate = 0.01                    # needed for [after_steps.k]
    slack_units = 0                         # optional hand-rounding slack (see worked.rounding)

    [network]                               # a NetworkSpec (see refbp.spec)
    inputs = 3
    layers = [{ units = 2, activation = "sigmoid", bias = "shared" }, …]
    loss = { kind = "half_sse", reduction = "sum" }

    [parameters]                            # W1, b1, … in the spec's layout
    W1 = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
    b1 = 0.5

    [aliases]                               # the notes' names → refbp's (see worked.aliases)
    w7 = "W2[0,0]"
    h1 = "a1[0]"

    [data]                                  # inputs and targets in the spec's layout
    x = [1, 4, 5]
    t = [0.1, 0.05]

    [claims]                                # at the given parameters, exactly as printed
    h1 = "0.9866"
    "dE/dw7" = "0.0765"
    "dE/db1" = { printed = "0.0008", slack_units = 1, note = "eq. (12)" }

    [after_steps.1]                         # after one step of gradient descent
    w7 = "0.6992"
    loss = "0.5650"

When one network is worked through for several inputs (parts a, b, c of an exercise),
``[data]``, ``[claims]`` and ``[after_steps.k]`` move into ``[parts.NAME]``,
``[parts.NAME.claims]`` and ``[parts.NAME.after_steps.k]``.

Every error is an :class:`InputError` whose source is ``FILE`` or ``FILE, line N`` and
whose field is the TOML path of the offending value.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from refbp.data import as_inputs, as_targets, batch_size
from refbp.errors import InputError
from refbp.params import Parameters, load_parameters
from refbp.spec import NetworkSpec
from refbp.text_input import read_input_text, toml_loads
from worked.aliases import Entry, check_alias, resolve
from worked.rounding import Printed, parse_printed

TOP_LEVEL_KEYS = (
    "title", "source", "learning_rate", "slack_units", "network", "parameters", "aliases", "data", "claims",
    "after_steps", "parts",
)  # fmt: skip
PART_KEYS = ("data", "claims", "after_steps")
CLAIM_KEYS = ("printed", "slack_units", "note")


@dataclass(frozen=True)
class Claim:
    """One printed number: what it is about (``reference`` as written, ``entry`` resolved) and its text."""

    reference: str
    entry: Entry
    printed: Printed
    step: int
    """Gradient-descent steps taken before the claim holds (0: the given parameters)."""
    slack_units: float = 0.0
    note: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Part:
    """One set of inputs and targets with the claims made about it (``name`` is ``""`` for a single part)."""

    name: str
    X: np.ndarray
    T: np.ndarray
    claims: tuple[Claim, ...]

    @property
    def max_step(self) -> int:
        return max((c.step for c in self.claims), default=0)


@dataclass(frozen=True)
class WorkedExample:
    """A whole worked-example file, validated."""

    source: str
    title: str
    spec: NetworkSpec
    params: Parameters
    aliases: Mapping[str, str]
    parts: tuple[Part, ...]
    learning_rate: float | None = None
    origin: str = ""
    names: Mapping[str, str] = field(default_factory=dict)
    """Canonical entry (``a1[0,0]``) → the alias written for it, for readable hints."""


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


class _Reader:
    """Reads one file's tables, turning every problem into an InputError with file, line and field."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text

    def error(self, path: tuple[str, ...], expected: str, got: Any = None) -> InputError:
        line = locate(self.text, path) if path else None
        where = self.source if line is None else f"{self.source}, line {line}"
        return InputError(_path_text(path), expected, got, source=where)

    def reraise(self, path: tuple[str, ...], err: InputError, *, sub: str = "") -> InputError:
        """``err`` (raised without a file) re-attributed to ``path`` in this file."""
        inner = tuple(p for p in re.split(r"\.(?![^\[]*\])", err.field) if p) if sub else ()
        full = path + inner
        line = locate(self.text, full)
        where = self.source if line is None else f"{self.source}, line {line}"
        return InputError(_path_text(full), err.expected, err.got, source=where)

    def table(self, data: Any, path: tuple[str, ...], allowed: tuple[str, ...] | None = None) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise self.error(path, "a table", data)
        if allowed is not None:
            unknown = sorted(set(data) - set(allowed))
            if unknown:
                raise self.error((*path, unknown[0]), "a known key (one of " + ", ".join(allowed) + ")", "unknown key")
        return data


def _path_text(path: tuple[str, ...]) -> str:
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_\-\[\]]+", p) else f'"{p}"' for p in path)


def _slack(reader: _Reader, value: Any, path: tuple[str, ...]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise reader.error(path, "a number of units >= 0", value)
    return float(value)


def _claims(
    reader: _Reader,
    data: Any,
    path: tuple[str, ...],
    step: int,
    spec: NetworkSpec,
    batch: int,
    aliases: Mapping[str, str],
    default_slack: float,
) -> list[Claim]:
    out = []
    for reference, value in reader.table(data, path).items():
        where = (*path, reference)
        slack, note = default_slack, ""
        if isinstance(value, Mapping):
            value = reader.table(value, where, CLAIM_KEYS)
            if "printed" not in value:
                raise reader.error((*where, "printed"), 'the number as printed, e.g. "0.0020"', "missing")
            slack = _slack(reader, value.get("slack_units", default_slack), (*where, "slack_units"))
            note = str(value.get("note", ""))
            value = value["printed"]
        try:
            printed = parse_printed(value)
        except ValueError as err:
            raise reader.error(where, str(err), value) from None
        try:
            entry = resolve(spec, batch, reference, aliases)
        except InputError as err:
            raise reader.reraise(where, err) from None
        out.append(Claim(reference, entry, printed, step, slack, note, line_of(reader.text, where)))
    return out


def _part(
    reader: _Reader,
    name: str,
    data: Mapping[str, Any],
    path: tuple[str, ...],
    spec: NetworkSpec,
    aliases: Mapping[str, str],
    slack: float,
    has_rate: bool,
) -> Part:
    if "data" not in data:
        raise reader.error((*path, "data"), "a [data] table with x and t", "missing")
    batch_data = reader.table(data["data"], (*path, "data"), ("x", "t"))
    for key in ("x", "t"):
        if key not in batch_data:
            raise reader.error((*path, "data", key), "inputs (x) and targets (t)", "missing")
    try:
        X = as_inputs(spec, batch_data["x"])
    except InputError as err:
        raise reader.error((*path, "data", "x"), err.expected, err.got) from None
    batch = batch_size(spec, X)
    try:
        T = as_targets(spec, batch_data["t"], batch)
    except InputError as err:
        raise reader.error((*path, "data", "t"), err.expected, err.got) from None
    for alias, target in aliases.items():
        try:
            check_alias(spec, batch, alias, target)
        except InputError as err:
            raise reader.reraise(("aliases", alias), err) from None
    claims = _claims(reader, data.get("claims", {}), (*path, "claims"), 0, spec, batch, aliases, slack)
    after = reader.table(data.get("after_steps", {}), (*path, "after_steps"))
    for step_text, table in after.items():
        where = (*path, "after_steps", step_text)
        if not re.fullmatch(r"[1-9]\d{0,3}", step_text):
            raise reader.error(where, "a number of steps from 1 to 9999", step_text)
        if not has_rate:
            raise reader.error(("learning_rate",), "a learning rate > 0 (needed by after_steps)", "missing")
        claims += _claims(reader, table, where, int(step_text), spec, batch, aliases, slack)
    if not claims:
        raise reader.error((*path, "claims"), "at least one claim", "none")
    return Part(name=name, X=X, T=T, claims=tuple(claims))


def parse_example(text: str, source: str) -> WorkedExample:
    """Validate a worked-example file given as text; ``source`` names it in errors."""
    try:
        data = toml_loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        line = re.search(r"at line (\d+)", message)
        where = f"{source}, line {line.group(1)}" if line else source
        raise InputError("", "valid TOML", message, source=where) from None
    reader = _Reader(source, text)
    data = reader.table(data, (), TOP_LEVEL_KEYS)
    for key in ("network", "parameters"):
        if key not in data:
            raise reader.error((key,), f"a [{key}] table", "missing")
    try:
        spec = NetworkSpec.from_dict(data["network"])
    except InputError as err:
        raise reader.reraise(("network",), err, sub="spec") from None
    try:
        params = load_parameters(spec, reader.table(data["parameters"], ("parameters",)))
    except InputError as err:
        raise reader.reraise(("parameters",), err, sub="params") from None
    rate = data.get("learning_rate")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0
    ):
        raise reader.error(("learning_rate",), "a learning rate > 0", rate)
    slack = _slack(reader, data.get("slack_units", 0), ("slack_units",))
    aliases = reader.table(data.get("aliases", {}), ("aliases",))
    for alias, target in aliases.items():
        if not isinstance(target, str):
            raise reader.error(("aliases", alias), 'a reference written as a string, like "W2[0,0]"', target)

    if "parts" in data:
        clash = [k for k in PART_KEYS if k in data]
        if clash:
            raise reader.error((clash[0],), "either [parts.NAME] tables or one [data] with its claims", "both")
        parts_data = reader.table(data["parts"], ("parts",))
        if not parts_data:
            raise reader.error(("parts",), "at least one part", "none")
        parts = tuple(
            _part(
                reader, name, reader.table(part, ("parts", name), PART_KEYS), ("parts", name), spec, aliases, slack,
                rate is not None,
            )
            for name, part in parts_data.items()
        )  # fmt: skip
    else:
        parts = (_part(reader, "", data, (), spec, aliases, slack, rate is not None),)
    for key in ("title", "source"):
        if key in data and not isinstance(data[key], str):
            raise reader.error((key,), "a string", data[key])
    return WorkedExample(
        source=source,
        title=data.get("title") or Path(source).stem,
        spec=spec,
        params=params,
        aliases=dict(aliases),
        parts=parts,
        learning_rate=float(rate) if rate is not None else None,
        origin=data.get("source", ""),
        names=_alias_names(spec, parts, aliases),
    )


def _alias_names(spec: NetworkSpec, parts: tuple[Part, ...], aliases: Mapping[str, str]) -> dict[str, str]:
    """Canonical entry text → the first alias that names exactly that entry."""
    names: dict[str, str] = {}
    batch = batch_size(spec, parts[0].X)
    for alias, target in aliases.items():
        try:
            entry = resolve(spec, batch, target, {})
        except InputError:
            continue  # a whole-array alias names no single entry
        names.setdefault(entry.canonical(), alias)
    return names


def load_example(path: str | Path) -> WorkedExample:
    """Read and validate one worked-example file."""
    path = Path(path)
    return parse_example(read_input_text(path, "a readable worked-example file"), str(path))
