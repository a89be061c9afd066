"""Worked examples in the ``[graph]`` form: a computational graph written out node by node.

::

    title = "A circuit"
    learning_rate = 0.1                  # for [after_steps.K]
    optimizer = { kind = "momentum" }    # optional (see worked.optimizers)

    [graph]                              # in file order: numbers and arrays are leaves,
    x = -2                               # strings are nodes over earlier names
    y = 5
    z = -4
    q = "x + y"
    f = "q * z"

    [graph.train]                        # what after_steps trains
    loss = "f"                           # a node with one entry
    parameters = ["x", "y"]              # leaves

    [claims]                             # a node's or a leaf's value, or a derivative
    q = "3"
    "df/dx" = "-4"                       # the total derivative, through every path
    "df/dq" = "-4"                       # with respect to a node: see worked.graph

    [after_steps.1]
    x = "-1.6"

A reference is ``NAME`` or ``NAME[i]`` / ``NAME[i,j]`` (0-based; an array with one entry
needs no index), or ``dN/dM`` with either side indexed (``dh[1]/dW[0,1]``; ``∂`` for ``d``).
``[parts.NAME.parameters]`` overrides some leaves for one part (a restart from printed
values), with that part's ``claims`` and ``after_steps``. ``[formulas]`` may stand alone
(see :mod:`worked.formulas`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from refbp.errors import InputError
from worked.aliases import NAMED, Entry
from worked.claim import Claim
from worked.expressions import FUNCTIONS, ExpressionError, as_array, forward, parse_expression
from worked.file_reader import FileReader, line_of, read_claim_value, read_slack, read_steps, read_training
from worked.formulas import Formula, parse_graph_formulas
from worked.graph import Graph
from worked.optimizers import OptimizerSpec

TOP_LEVEL_KEYS = (
    "title", "source", "learning_rate", "optimizer", "frozen", "slack_units", "graph", "claims", "after_steps",
    "parts", "formulas",
)  # fmt: skip
PART_KEYS = ("parameters", "claims", "after_steps")
TRAIN_KEYS = ("loss", "parameters")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
NAMED_REFERENCE = re.compile(rf"^(?P<name>{_NAME})\s*(?:\[(?P<index>[^\]]*)\])?$")
_DERIVATIVE = re.compile(r"^[d∂](?P<top>[^/]+)/[d∂](?P<bottom>.+)$")


@dataclass(frozen=True)
class Derivative:
    """``∂ top[index] / ∂ wrt`` (the whole array of ``wrt``; a claim picks its entry)."""

    top: str
    index: tuple[int, ...]
    wrt: str


@dataclass(frozen=True)
class GraphPart:
    """Claims about one starting point (``leaves``: the part's own, or ``None`` for the example's)."""

    name: str
    claims: tuple[Claim, ...]
    leaves: Mapping[str, np.ndarray] | None = None

    @property
    def max_step(self) -> int:
        return max((c.step for c in self.claims), default=0)


@dataclass(frozen=True)
class GraphExample:
    """A worked example in the graph form, validated."""

    source: str
    title: str
    graph: Graph
    parts: tuple[GraphPart, ...]
    derivatives: Mapping[str, Derivative] = field(default_factory=dict)
    """Entry quantity of a derivative claim (``df/dx``) → what it is the derivative of."""
    loss: str | None = None
    parameters: tuple[str, ...] = ()
    learning_rate: float | None = None
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    frozen: tuple[str, ...] = ()
    formulas: tuple[Formula, ...] = ()
    origin: str = ""
    names: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    dtype: str = "float64"

    def start(self, part: GraphPart) -> dict[str, np.ndarray]:
        """The leaves ``part`` starts from."""
        return dict(part.leaves if part.leaves is not None else self.graph.leaves)


def named_index(text: str | None, shape: tuple[int, ...], name: str, reference: str) -> tuple[int, ...]:
    """The index written after ``name`` (``None``: none written), checked against its ``shape``."""
    if text is None:
        if math.prod(shape) != 1:
            raise InputError("", f"an index into {name}, of shape {shape}", reference)
        return (0,) * len(shape)
    parts = [p.strip() for p in text.split(",")]
    if not all(re.fullmatch(r"\d+", p) for p in parts):
        raise InputError("", "an index of non-negative integers like [0] or [0,1]", reference)
    index = tuple(int(p) for p in parts)
    if len(index) != len(shape) or any(i >= n for i, n in zip(index, shape, strict=True)):
        raise InputError("", f"an index into {name}, of shape {shape}", reference)
    return index


def _named(text: str, shapes: Mapping[str, tuple[int, ...]], reference: str) -> tuple[str, str | None]:
    match = NAMED_REFERENCE.match(text.strip())
    if not match:
        raise InputError("", "a name with an optional index, like q or W[0,1]", reference)
    name = match.group("name")
    if name not in shapes:
        raise InputError("", "a leaf or node of the graph (" + ", ".join(shapes) + ")", reference)
    return name, match.group("index")


def graph_entry(reference: str, shapes: Mapping[str, tuple[int, ...]],
                derivatives: dict[str, Derivative]) -> Entry:  # fmt: skip
    """The entry a claim's reference names; a derivative is registered in ``derivatives``."""
    text = reference.strip()
    derivative = _DERIVATIVE.match(text)
    if derivative is None:
        name, index = _named(text, shapes, reference)
        return Entry(name, NAMED, named_index(index, shapes[name], name, reference))
    top, top_index = _named(derivative.group("top"), shapes, reference)
    wrt, wrt_index = _named(derivative.group("bottom"), shapes, reference)
    index = named_index(top_index, shapes[top], top, reference)
    quantity = f"d{top}{'[' + ','.join(map(str, index)) + ']' if math.prod(shapes[top]) != 1 else ''}/d{wrt}"
    derivatives[quantity] = Derivative(top, index, wrt)
    return Entry(quantity, NAMED, named_index(wrt_index, shapes[wrt], wrt, reference))


def read_graph(reader: FileReader, table: Mapping[str, Any], *, empty: bool = False) -> Graph:
    """Leaves and nodes of ``[graph]`` in file order (``train`` is the training table, not a name)."""
    leaves: dict[str, np.ndarray] = {}
    nodes: dict = {}
    for name, value in table.items():
        if name == "train":
            continue
        where = ("graph", name)
        if not re.fullmatch(_NAME, name) or name in FUNCTIONS or name == "T":
            raise reader.error(where, "a name of letters, digits and _ that is not a function's", name)
        if isinstance(value, str):
            try:
                nodes[name] = parse_expression(value, lambda word: word in leaves or word in nodes)
            except ExpressionError as err:
                raise reader.error(where, str(err), value) from None
        else:
            try:
                leaves[name] = as_array(value)
            except ValueError as err:
                raise reader.error(where, f"{err} (a leaf) or an expression in a string (a node)", value) from None
    if not leaves and not nodes and not empty:
        raise reader.error(("graph",), "at least one leaf or node", "none")
    return Graph(leaves=leaves, nodes=nodes)


def shapes_at(reader: FileReader, graph: Graph, leaves: Mapping[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """Every value's shape at ``leaves``; an expression that cannot be evaluated there is an error of its node."""
    values = dict(leaves)
    for name, expr in graph.nodes.items():
        try:
            values[name] = forward(expr, values)
        except ExpressionError as err:
            raise reader.error(("graph", name), str(err)) from None
        if not np.all(np.isfinite(values[name])):
            raise reader.error(("graph", name), "a finite value at the starting values", values[name].tolist())
    return {name: np.shape(value) for name, value in values.items()}


def _train(reader: FileReader, graph: Graph, table: Any) -> tuple[str | None, tuple[str, ...]]:
    if table is None:
        return None, ()
    table = reader.table(table, ("graph", "train"), TRAIN_KEYS)
    loss = table.get("loss")
    if loss not in graph.nodes:
        raise reader.error(("graph", "train", "loss"), "the name of a node (" + ", ".join(graph.nodes) + ")", loss)
    names = table.get("parameters")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n in graph.leaves for n in names):
        raise reader.error(("graph", "train", "parameters"), "a list of leaves (" + ", ".join(graph.leaves) + ")",
                           names)  # fmt: skip
    return loss, tuple(names)


def parse_graph_example(reader: FileReader, data: Mapping[str, Any]) -> GraphExample:
    """Validate a graph example (``data`` is the parsed TOML of ``reader``'s file)."""
    data = reader.table(data, (), TOP_LEVEL_KEYS)
    graph = read_graph(reader, reader.table(data.get("graph", {}), ("graph",)), empty="formulas" in data)
    loss, parameters = _train(reader, graph, data.get("graph", {}).get("train"))
    rate, optimizer, frozen = read_training(reader, data, list(parameters))
    slack = read_slack(reader, data.get("slack_units", 0), ("slack_units",))
    derivatives: dict[str, Derivative] = {}

    def claims(table: Any, path: tuple[str, ...], step: int, shapes: Mapping[str, tuple[int, ...]]) -> list[Claim]:
        out = []
        for reference, value in reader.table(table, path).items():
            where = (*path, reference)
            printed, slack_units, note = read_claim_value(reader, value, where, slack)
            try:
                entry = graph_entry(reference, shapes, derivatives)
            except InputError as err:
                raise reader.reraise(where, err) from None
            out.append(Claim(reference, entry, printed, step, slack_units, note, line_of(reader.text, where)))
        return out

    def part(name: str, table: Mapping[str, Any], path: tuple[str, ...]) -> GraphPart:
        leaves = None
        if "parameters" in table:
            overrides = reader.table(table["parameters"], (*path, "parameters"))
            leaves = dict(graph.leaves)
            for key, value in overrides.items():
                if key not in graph.leaves:
                    raise reader.unknown((*path, "parameters"), key, list(graph.leaves))
                try:
                    leaves[key] = as_array(value)
                except ValueError as err:
                    raise reader.error((*path, "parameters", key), str(err), value) from None
                if leaves[key].shape != graph.leaves[key].shape:
                    raise reader.error((*path, "parameters", key), f"shape {graph.leaves[key].shape}",
                                       f"shape {leaves[key].shape}")  # fmt: skip
        shapes = shapes_at(reader, graph, leaves or graph.leaves)
        found = claims(table.get("claims", {}), (*path, "claims"), 0, shapes)
        for step_text, after in reader.table(table.get("after_steps", {}), (*path, "after_steps")).items():
            where = (*path, "after_steps", step_text)
            steps = read_steps(reader, step_text, where)
            if rate is None:
                raise reader.error(("learning_rate",), "a learning rate > 0 (needed by after_steps)", "missing")
            if loss is None:
                raise reader.error(("graph", "train"), "a [graph.train] table with loss and parameters "
                                   "(needed by after_steps)", "missing")  # fmt: skip
            found += claims(after, where, steps, shapes)
        if not found and "formulas" not in data:
            raise reader.error((*path, "claims"), "at least one claim", "none")
        return GraphPart(name, tuple(found), leaves)

    if "parts" in data:
        clash = [k for k in ("claims", "after_steps") if k in data]
        if clash:
            raise reader.error((clash[0],), "either [parts.NAME] tables or one [claims]", "both")
        parts_data = reader.table(data["parts"], ("parts",))
        if not parts_data:
            raise reader.error(("parts",), "at least one part", "none")
        parts = tuple(
            part(name, reader.table(table, ("parts", name), PART_KEYS), ("parts", name))
            for name, table in parts_data.items()
        )
    else:
        parts = (part("", data, ()),)
    for key in ("title", "source"):
        if key in data and not isinstance(data[key], str):
            raise reader.error((key,), "a string", data[key])
    formulas = parse_graph_formulas(reader, data.get("formulas", {}), graph)
    return GraphExample(
        source=reader.source,
        title=data.get("title") or Path(reader.source).stem,
        graph=graph,
        parts=parts,
        derivatives=derivatives,
        loss=loss,
        parameters=tuple(p for p in parameters if p not in frozen),
        learning_rate=rate,
        optimizer=optimizer,
        frozen=frozen,
        formulas=formulas,
        origin=data.get("source", ""),
    )
