"""Formula claims (``[formulas]``): an identity the notes state, left side a quantity, right side an expression.

::

    [formulas]
    "d sigmoid(z)/dz" = "sigmoid(z) / (1 + z**2)"                   # a free variable z
    "delta1" = "sigmoid(z1) * (1 - sigmoid(z1)) * (delta2 @ W2.T)"   # [network]: refbp's names, aliases
    "df/dx" = "z"                                                   # [graph]: a value or a derivative

Three kinds, by their left side:

* **free** — ``d F/dv`` where ``F`` is an expression and ``v`` a variable that is not a name
  of the example's network or graph (``d sigmoid(z)/dz``, ``d tanh(u)/du``). The true value is
  ``F``'s derivative by reverse mode (:mod:`worked.expressions`), confirmed by torch. With
  no derivative (``"sigmoid(-z)" = "1 - sigmoid(z)"``) both sides are expressions.
* **graph** — a value or a derivative of the example's ``[graph]`` (see :mod:`worked.graph`).
* **network** — a quantity of the example's ``[network]`` (a whole array such as ``delta1``,
  or one entry), the right side over the network's names as in ``[nodes]``.

:mod:`worked.formula_check` checks each at the example's own values and at many random
points: free variables drawn from ``[−4, 4]``, random leaves of the same shapes, random
networks of the example's spec. A formula that fails anywhere is ``wrong``, with the point,
the claimed value and the true value; right at the example's values and wrong elsewhere is
a coincidence, and ``wrong`` too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from refbp.errors import InputError
from refbp.spec import NetworkSpec
from worked.expressions import FUNCTIONS, Expr, ExpressionError, forward, parse_expression

_FREE_DERIVATIVE = re.compile(r"^[d∂]\s*(?P<top>.+?)\s*/\s*[d∂]\s*(?P<var>[A-Za-z_][A-Za-z0-9_]*)$")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Formula:
    """One ``[formulas]`` line, parsed.

    ``kind`` is ``free``, ``graph`` or ``network``. ``left`` is the parsed left side of a
    free formula (``F``, with ``variable`` the one it is differentiated by, ``""`` for none);
    ``reference`` the left side of a graph or network formula; ``right`` the claimed expression.
    """

    text: str
    claimed: str
    kind: str
    right: Expr
    left: Expr | None = None
    variable: str = ""
    reference: str = ""
    free: tuple[str, ...] = ()
    """The free variables (free formulas)."""
    node: Any = None
    """For a network formula: the right side as a :class:`worked.network_nodes.NetworkNode`."""
    bindings: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None


def _free_formula(text: str, claimed: str) -> Formula:
    """A formula in free variables: every identifier that is not a function."""

    def free(word: str) -> bool:
        return word not in FUNCTIONS and bool(_IDENTIFIER.fullmatch(word))

    match = _FREE_DERIVATIVE.match(text.strip())
    top, variable = (match.group("top"), match.group("var")) if match else (text, "")
    left = parse_expression(top, free)
    right = parse_expression(claimed, free)
    names = list(dict.fromkeys([*left.names(), *right.names(), *([variable] if variable else [])]))
    return Formula(text, claimed, "free", right, left=left, variable=variable, free=tuple(names))


def _checked(reader: Any, table: Any) -> Mapping[str, str]:
    table = reader.table(table, ("formulas",))
    for text, claimed in table.items():
        if not isinstance(claimed, str):
            expected = 'the claimed expression as a string, like "sigmoid(z) * (1 - sigmoid(z))"'
            raise reader.error(("formulas", text), expected, claimed)
    return table


_GRAPH_VALUE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(?P<index>[\d,\s]*)\])?$")


def graph_side(text: str, names: Any) -> tuple[tuple[str, tuple[int, ...] | None], str | None] | None:
    """``((top, index or None), wrt or None)`` when ``text`` names a graph value or derivative, else ``None``.

    ``NAME``, ``NAME[i,j]``, ``dN/dM``, ``dN[i]/dM`` (then the whole array of ``M``).
    """

    def value(part: str) -> tuple[str, tuple[int, ...] | None] | None:
        match = _GRAPH_VALUE.match(part.strip())
        if not match or match.group("name") not in names:
            return None
        index = match.group("index")
        return match.group("name"), None if index is None else tuple(int(i) for i in index.split(","))

    derivative = re.match(r"^[d∂](?P<top>[^/]+)/[d∂](?P<wrt>[A-Za-z_][A-Za-z0-9_]*)$", text.strip())
    if derivative:
        top = value(derivative.group("top"))
        if top is not None and derivative.group("wrt") in names:
            return top, derivative.group("wrt")
        return None
    found = value(text)
    return None if found is None else (found, None)


def parse_graph_formulas(reader: Any, table: Any, graph: Any) -> tuple[Formula, ...]:
    """The ``[formulas]`` of a graph example (or of a file of formulas alone)."""
    from worked.graph import evaluate

    names = set(graph.order)
    values = evaluate(graph, graph.leaves) if names else {}
    out = []
    for text, claimed in _checked(reader, table).items():
        where = ("formulas", text)
        side = graph_side(text, names)
        try:
            if side is None:
                formula = _free_formula(text, claimed)
            else:
                right = parse_expression(claimed, lambda word: word in names)
                formula = Formula(text, claimed, "graph", right, reference=text)
                _check_graph_shapes(side, forward(right, values), values)
        except ExpressionError as err:
            raise reader.error(where, str(err), claimed) from None
        out.append(_with_line(reader, formula, where))
    return tuple(out)


def _check_graph_shapes(side: Any, right: Any, values: Mapping[str, Any]) -> None:
    """:class:`ExpressionError` unless the left side's index fits and the right side has its shape."""
    (top, index), wrt = side
    top_shape = tuple(values[top].shape)
    if index is not None and (
        len(index) != len(top_shape) or any(i >= n for i, n in zip(index, top_shape, strict=False))
    ):
        raise ExpressionError(f"an index into {top}, of shape {top_shape} (not {list(index)})")
    if wrt is None:
        shape = () if index is not None else top_shape
    else:
        shape = tuple(values[wrt].shape) if index is not None or not top_shape else (*top_shape, *values[wrt].shape)
    got = tuple(right.shape)
    if got != shape and not (got == () or (_vector_like(got) and _vector_like(shape)
                                          and math.prod(got) == math.prod(shape))):  # fmt: skip
        raise ExpressionError(f"an expression of the shape of the left side, {shape} (not {got})")


def parse_network_formulas(
    reader: Any, table: Any, spec: NetworkSpec, batch: int, aliases: Mapping[str, str], nodes: Mapping[str, Any]
) -> tuple[Formula, ...]:
    """The ``[formulas]`` of a network example: free formulas, or a quantity of the network on the left."""
    from worked.aliases import array_of
    from worked.network_nodes import parse_nodes

    out = []
    for text, claimed in _checked(reader, table).items():
        where = ("formulas", text)
        try:
            array_of(spec, text, aliases)
        except InputError:
            try:
                formula = _free_formula(text, claimed)
            except ExpressionError as err:
                raise reader.error(where, str(err), claimed) from None
        else:
            try:
                parsed = parse_nodes(spec, batch, {**{n: v.text for n, v in nodes.items()}, "_left_": text,
                                                   "_right_": claimed}, aliases)  # fmt: skip
            except InputError as err:
                raise reader.error(where, err.expected, claimed) from None
            left, right = parsed["_left_"], parsed["_right_"]
            if left.shape != right.shape and not (_vector_like(left.shape) and _vector_like(right.shape)
                                                  and math.prod(left.shape) == math.prod(right.shape)):  # fmt: skip
                raise reader.error(where, f"an expression of the shape of {text}, {left.shape}", f"shape {right.shape}")
            formula = Formula(text, claimed, "network", right.expr, reference=text, node=(left, right),
                              bindings=parsed)  # fmt: skip
        out.append(_with_line(reader, formula, where))
    return tuple(out)


def _vector_like(shape: tuple[int, ...]) -> bool:
    """A shape with at most one axis longer than 1: with one example ``(2,)`` and ``(2, 1)`` hold the same numbers."""
    return sum(n > 1 for n in shape) <= 1


def _with_line(reader: Any, formula: Formula, where: tuple[str, ...]) -> Formula:
    from dataclasses import replace

    from worked.file_reader import line_of

    return replace(formula, line=line_of(reader.text, where))
