"""Worked-example files (TOML): the network, its numbers, and the claims printed about them.

A file holds one worked example as printed in the notes::

    title = "A 3-2-2 sigmoid network"
    source = "where it was printed"         # optional
    learning_rate = 0.01                    # needed for [after_steps.k]
    optimizer = { kind = "momentum" }       # optional, sgd by default (see worked.optimizers)
    frozen = ["b1", "b2"]                   # optional: parameters that are not updated
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

    [nodes]                                 # the hand computation's intermediates
    step = "0.01 * dE/dW2[0,0]"             # (see worked.network_nodes), claimable

    [data]                                  # inputs and targets in the spec's layout
    x = [1, 4, 5]
    t = [0.1, 0.05]

    [claims]                                # at the given parameters, exactly as printed
    h1 = "0.9866"
    "dE/dw7" = "0.0765"
    "dE/db1" = { printed = "0.0008", slack_units = 1, note = "eq. (12)" }

    [after_steps.1]                         # after one optimiser step (k up to 100,000)
    w7 = "0.6992"
    loss = "0.5650"

    [formulas]                              # identities (see worked.formulas)
    "delta1" = "a1 * (1 - a1) * (delta2 @ W2.T)"

When one network is worked through for several inputs (parts a, b, c of an exercise),
``[data]``, ``[claims]`` and ``[after_steps.k]`` move into ``[parts.NAME]``,
``[parts.NAME.claims]`` and ``[parts.NAME.after_steps.k]``; ``[parts.NAME.parameters]``
overrides some starting parameters of that part (an epoch restarted from printed weights).

A file with a ``[graph]`` table (or with ``[formulas]`` alone) is a graph example instead:
see :mod:`worked.graph_file`.

Every error is an :class:`InputError` whose source is ``FILE`` or ``FILE, line N`` and
whose field is the TOML path of the offending value.
"""

from __future__ import annotations

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
from worked.aliases import NAMED, Entry, check_alias, resolve
from worked.claim import Claim
from worked.file_reader import FileReader, line_of, locate, read_claim_value, read_slack, read_steps, read_training
from worked.formulas import Formula, parse_network_formulas
from worked.graph_file import NAMED_REFERENCE, GraphExample, named_index, parse_graph_example
from worked.network_nodes import NetworkNode, parse_nodes
from worked.optimizers import OptimizerSpec

__all__ = ["Claim", "GraphExample", "Part", "WorkedExample", "line_of", "load_example", "locate", "parse_example"]

TOP_LEVEL_KEYS = (
    "title", "source", "learning_rate", "optimizer", "frozen", "slack_units", "network", "parameters", "aliases",
    "nodes", "data", "claims", "after_steps", "parts", "formulas",
)  # fmt: skip
PART_KEYS = ("parameters", "data", "claims", "after_steps")


@dataclass(frozen=True)
class Part:
    """One set of inputs and targets with the claims made about it (``name`` is ``""`` for a single part).

    ``params`` are the part's own starting parameters (``[parts.NAME.parameters]``, the
    example's with some overridden: a restart from printed values), ``None`` for the example's.
    """

    name: str
    X: np.ndarray
    T: np.ndarray
    claims: tuple[Claim, ...]
    params: Parameters | None = None

    @property
    def max_step(self) -> int:
        return max((c.step for c in self.claims), default=0)


@dataclass(frozen=True)
class WorkedExample:
    """A whole worked-example file in the ``[network]`` form, validated."""

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
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    frozen: tuple[str, ...] = ()
    nodes: Mapping[str, NetworkNode] = field(default_factory=dict)
    formulas: tuple[Formula, ...] = ()

    @property
    def dtype(self) -> str:
        return self.spec.dtype

    def start(self, part: Part) -> Parameters:
        """The parameters ``part`` starts from."""
        return part.params if part.params is not None else self.params


def node_entry(nodes: Mapping[str, Any], reference: str) -> Entry | None:
    """The entry of a named node that ``reference`` names (``step``, ``grad_data[1,0]``), or ``None``.

    ``nodes`` maps names to anything with a ``shape``; :class:`InputError` when the index does not fit it.
    """
    match = NAMED_REFERENCE.match(reference.strip())
    if not match or match.group("name") not in nodes:
        return None
    name = match.group("name")
    return Entry(name, NAMED, named_index(match.group("index"), tuple(nodes[name].shape), name, reference))


def _claims(
    reader: FileReader,
    data: Any,
    path: tuple[str, ...],
    step: int,
    spec: NetworkSpec,
    batch: int,
    aliases: Mapping[str, str],
    default_slack: float,
    nodes: Mapping[str, NetworkNode],
) -> list[Claim]:
    out = []
    for reference, value in reader.table(data, path).items():
        where = (*path, reference)
        printed, slack, note = read_claim_value(reader, value, where, default_slack)
        try:
            entry = node_entry(nodes, reference) or resolve(spec, batch, reference, aliases)
        except InputError as err:
            raise reader.reraise(where, err) from None
        out.append(Claim(reference, entry, printed, step, slack, note, line_of(reader.text, where)))
    return out


def _part(
    reader: FileReader,
    name: str,
    data: Mapping[str, Any],
    path: tuple[str, ...],
    example: Mapping[str, Any],
) -> Part:
    spec, aliases, slack = example["spec"], example["aliases"], example["slack"]
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
    try:
        nodes = parse_nodes(spec, batch, reader.table(example["nodes"], ("nodes",)), aliases)
    except InputError as err:
        raise reader.reraise(("nodes",), err, sub="nodes") from None
    params = None
    if "parameters" in data:
        overrides = reader.table(data["parameters"], (*path, "parameters"))
        for key in overrides:
            if key not in example["params"]:
                raise reader.unknown((*path, "parameters"), key, list(example["params"]))
        try:
            params = load_parameters(spec, {**example["params"], **overrides})
        except InputError as err:
            raise reader.reraise((*path, "parameters"), err, sub="params") from None
    claims = _claims(reader, data.get("claims", {}), (*path, "claims"), 0, spec, batch, aliases, slack, nodes)
    after = reader.table(data.get("after_steps", {}), (*path, "after_steps"))
    for step_text, table in after.items():
        where = (*path, "after_steps", step_text)
        steps = read_steps(reader, step_text, where)
        if example["rate"] is None:
            raise reader.error(("learning_rate",), "a learning rate > 0 (needed by after_steps)", "missing")
        claims += _claims(reader, table, where, steps, spec, batch, aliases, slack, nodes)
    if not claims and not example["formulas"]:
        raise reader.error((*path, "claims"), "at least one claim", "none")
    return Part(name=name, X=X, T=T, claims=tuple(claims), params=params)


def read_toml(text: str, source: str) -> dict[str, Any]:
    """The file's tables; :class:`InputError` naming the line for bad TOML."""
    try:
        return toml_loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        line = re.search(r"at line (\d+)", message)
        where = f"{source}, line {line.group(1)}" if line else source
        raise InputError("", "valid TOML", message, source=where) from None


def parse_example(text: str, source: str) -> WorkedExample | GraphExample:
    """Validate a worked-example file given as text; ``source`` names it in errors.

    A file with a ``[graph]`` table is a graph example (see :mod:`worked.graph_file`).
    """
    data = read_toml(text, source)
    reader = FileReader(source, text)
    if isinstance(data, Mapping) and ("graph" in data or ("network" not in data and "formulas" in data)):
        return parse_graph_example(reader, data)
    data = reader.table(data, (), TOP_LEVEL_KEYS)
    for key in ("network", "parameters"):
        if key not in data:
            raise reader.error((key,), f"a [{key}] table", "missing")
    try:
        spec = NetworkSpec.from_dict(data["network"])
    except InputError as err:
        raise reader.reraise(("network",), err, sub="spec") from None
    if not isinstance(spec, NetworkSpec):  # a typed network (convolution, pooling, …)
        raise reader.error(("network", "layers"), "dense layers (worked examples take no typed layers)", "typed layers")
    try:
        params = load_parameters(spec, reader.table(data["parameters"], ("parameters",)))
    except InputError as err:
        raise reader.reraise(("parameters",), err, sub="params") from None
    rate, optimizer, frozen = read_training(reader, data, list(params))
    slack = read_slack(reader, data.get("slack_units", 0), ("slack_units",))
    aliases = reader.table(data.get("aliases", {}), ("aliases",))
    for alias, target in aliases.items():
        if not isinstance(target, str):
            raise reader.error(("aliases", alias), 'a reference written as a string, like "W2[0,0]"', target)
    shared = {
        "spec": spec, "params": params, "aliases": aliases, "slack": slack, "rate": rate,
        "nodes": data.get("nodes", {}), "formulas": data.get("formulas", {}),
    }  # fmt: skip
    if "parts" in data:
        clash = [k for k in PART_KEYS if k in data and k != "parameters"]
        if clash:
            raise reader.error((clash[0],), "either [parts.NAME] tables or one [data] with its claims", "both")
        parts_data = reader.table(data["parts"], ("parts",))
        if not parts_data:
            raise reader.error(("parts",), "at least one part", "none")
        parts = tuple(
            _part(reader, name, reader.table(part, ("parts", name), PART_KEYS), ("parts", name), shared)
            for name, part in parts_data.items()
        )
    else:
        parts = (_part(reader, "", {k: v for k, v in data.items() if k != "parameters"}, (), shared),)
    for key in ("title", "source"):
        if key in data and not isinstance(data[key], str):
            raise reader.error((key,), "a string", data[key])
    batch = batch_size(spec, parts[0].X)
    nodes = parse_nodes(spec, batch, data.get("nodes", {}), aliases)
    formulas = parse_network_formulas(reader, data.get("formulas", {}), spec, batch, aliases, nodes)
    return WorkedExample(
        source=source,
        title=data.get("title") or Path(source).stem,
        spec=spec,
        params=params,
        aliases=dict(aliases),
        parts=parts,
        learning_rate=rate,
        origin=data.get("source", ""),
        names=_alias_names(spec, parts, aliases),
        optimizer=optimizer,
        frozen=frozen,
        nodes=nodes,
        formulas=formulas,
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


def load_example(path: str | Path) -> WorkedExample | GraphExample:
    """Read and validate one worked-example file."""
    path = Path(path)
    return parse_example(read_input_text(path, "a readable worked-example file"), str(path))
