"""Named intermediate values of a ``[network]`` example (``[nodes]``): the hand computation's own names.

::

    [nodes]
    e = "exp(-z1[0])"                 # a number of the hand computation
    step = "0.05 * dE/dW2[0,0]"       # η·∂E/∂w, the size of one update
    grad_data = "dE/dW1 - 0.1 * W1"   # the gradient without its L2 term (a whole array)

An expression (see :mod:`worked.expressions`) reads the network's quantities in refbp's
names or through the file's aliases: ``W2``, ``b1``, ``z1``, ``a2``, ``x``, ``delta1``, ``loss``,
``data_loss``, ``penalty``, ``da1/dz1``, derivatives of the loss ``dE/dW2`` or ``dL/da1``, and
earlier nodes. With a single example the batch axis is left out, as in claims: ``z1[0]`` is
unit 0. A node is claimable like anything else (``step = "0.0038"``, ``grad_data[1,0] = …``),
at every step, and is computed on each of the three computations' own values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from refbp.errors import InputError
from refbp.spec import NetworkSpec
from worked.aliases import LOCAL_QUANTITY, NAMED, Key, array_of, full_index, quantity_shape
from worked.expressions import Expr, ExpressionError, forward, parse_expression

_DERIVATIVE_TOKEN = re.compile(r"[d∂](?P<top>[A-Za-zℓ_][A-Za-z0-9_ℓ]*)\s*/\s*[d∂](?P<bottom>[A-Za-z_][A-Za-z0-9_]*)")
_BATCHED = ("z", "a", "x", "delta", "dL/da", "dL/dx", LOCAL_QUANTITY)


@dataclass(frozen=True)
class Binding:
    """What a name in a node's expression reads: an array of the network (or one entry of it), or a node."""

    key: Key
    index: tuple[int, ...] | None = None


@dataclass(frozen=True)
class NetworkNode:
    """One ``[nodes]`` entry: its expression and what each name in it reads."""

    name: str
    text: str
    expr: Expr
    bindings: Mapping[str, Binding]
    shape: tuple[int, ...] = ()


def parse_nodes(
    spec: NetworkSpec, batch: int, table: Mapping[str, str], aliases: Mapping[str, str]
) -> dict[str, NetworkNode]:
    """Parse every node; :class:`InputError` whose field is the node's name on the first bad one.

    Every node is also evaluated once on arrays of the right shapes, so that a shape that
    does not fit (``W2 @ x``) is reported here and not half-way through a check.
    """
    nodes: dict[str, NetworkNode] = {}
    shapes: dict[Key, np.ndarray] = {}
    for name, text in table.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise InputError(name, "a node name of letters, digits and _", name)
        if not isinstance(text, str):
            raise InputError(name, 'an expression written as a string, like "0.05 * dE/dW2[0,0]"', text)
        bindings: dict[str, Binding] = {}

        def placeholder(match: re.Match[str], bindings: dict[str, Binding] = bindings) -> str:
            token = f"_d{len(bindings)}_"
            key, index = array_of(spec, match.group(0), aliases)
            bindings[token] = Binding(key, index)
            return token

        def known(word: str, bindings: dict[str, Binding] = bindings) -> bool:
            if word in bindings:
                return True
            if word in nodes:
                bindings[word] = Binding((word, NAMED))
                return True
            try:
                key, index = array_of(spec, word, aliases)
            except InputError:
                return False
            bindings[word] = Binding(key, index)
            return True

        try:
            rewritten = _DERIVATIVE_TOKEN.sub(placeholder, text)
            expr = parse_expression(rewritten, known)
        except ExpressionError as err:
            raise InputError(name, str(err), text) from None
        except InputError as err:
            raise InputError(name, err.expected, err.got) from None
        node = NetworkNode(name, text, expr, dict(bindings))
        for binding in node.bindings.values():
            if binding.key not in shapes and binding.key[1] != NAMED:
                shapes[binding.key] = np.ones(quantity_shape(spec, batch, *binding.key))
        try:
            shapes[(name, NAMED)] = evaluate_node(spec, batch, node, shapes)
        except ExpressionError as err:
            raise InputError(name, str(err), text) from None
        except InputError as err:
            raise InputError(name, err.expected, err.got) from None
        nodes[name] = NetworkNode(name, text, expr, node.bindings, shapes[(name, NAMED)].shape)
    return nodes


def _read(spec: NetworkSpec, batch: int, binding: Binding, values: Mapping[Key, np.ndarray], name: str) -> np.ndarray:
    array = np.asarray(values[binding.key], dtype=np.float64)
    if binding.key[1] == NAMED:
        return array
    if binding.index is not None:
        return np.asarray(array[full_index(spec, batch, binding.key, binding.index, name)])
    if batch == 1 and binding.key[0] in _BATCHED and array.ndim == 2:
        return np.take(array, 0, axis=spec.batch_axis)
    return array


def evaluate_node(spec: NetworkSpec, batch: int, node: NetworkNode, values: Mapping[Key, np.ndarray]) -> np.ndarray:
    """The node's value from ``values`` (``(quantity, layer)`` → array, earlier nodes as ``(name, NAMED)``)."""
    env = {word: _read(spec, batch, binding, values, word) for word, binding in node.bindings.items()}
    return forward(node.expr, env)


def add_node_values(spec: NetworkSpec, batch: int, nodes: Mapping[str, NetworkNode], values: dict) -> None:
    """Evaluate every node in order on ``values`` and store each as ``values[(name, NAMED)]``."""
    for node in nodes.values():
        values[(node.name, NAMED)] = evaluate_node(spec, batch, node, values)
