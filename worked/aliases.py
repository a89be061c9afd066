"""References to single numbers of a network, in refbp's names or in the notes' own (aliases).

A *reference* names one number: a forward value, the loss, a parameter, or a derivative.
Indices are 0-based and follow the spec's layout (see :mod:`refbp.spec`): ``W2[0,1]`` is
row 0, column 1 of ``W_2`` as stored (``(n_in, n_out)`` for ``in_out``, ``(n_out, n_in)`` for
``out_in``); ``a1[0,1]`` is example 0, unit 1 in ``in_out`` and unit 0, example 1 in
``out_in``. With a single example the batch index may be left out: ``a1[1]`` is unit 1.
An array with one entry (a shared bias ``b1``, the output ``a2`` of a one-unit network on
one example) needs no index at all.

Names (``l`` a layer number, 1-based; layer 0 is the input):

``W{l}``, ``b{l}``            parameters
``z{l}``, ``a{l}``, ``x``     pre-activation, activation, input (``a0`` is ``x``)
``loss``, ``data_loss``, ``penalty``   the total loss, its data part, the L2 term
``delta{l}``                  ``δ_l = ∂L/∂z_l``
``dL/d<name>[…]``             the derivative of the loss with respect to an entry of a
                              parameter, of ``z`` (that is ``δ``), of ``a`` or of ``x``; the
                              loss may be written ``L``, ``E``, ``J``, ``C``, ``l``, ``ℓ`` or
                              ``loss`` and ``∂`` may stand for ``d`` (``∂E/∂w7``)
``da{l}/dz{l}[…]``            the activation's own derivative ``f_l'(z_l)`` at one entry
                              (elementwise activations only)

An *alias* maps a name of the notes to a reference without a derivative: ``w7 = "W2[0,0]"``,
``h1 = "a1[0]"``, or a whole array, ``z2 = "a1"`` (then ``z2[1]`` means ``a1[1]``). Aliases
can be used wherever a name can, also inside a derivative (``dE/dw7``, ``dh1/dz_h1``). An
alias may shadow a built-in name (the notes' ``z2`` can be refbp's ``a1``); its own value
is always read in refbp's names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from refbp.errors import InputError
from refbp.spec import NetworkSpec

LOSS_NAMES = ("L", "E", "J", "C", "l", "ℓ", "loss")
SCALARS = ("loss", "data_loss", "penalty")
VALUE_QUANTITIES = ("W", "b", "z", "a", "x", *SCALARS)
GRADIENT_QUANTITIES = ("dL/dW", "dL/db", "delta", "dL/da", "dL/dx")
LOCAL_QUANTITY = "da/dz"
PARAMETER_QUANTITIES = ("W", "b")

_NAME = r"[^\s\[\]/]+"
_ATOM = re.compile(rf"^(?P<name>{_NAME})\s*(?:\[(?P<index>[^\]]*)\])?$")
_DERIVATIVE = re.compile(r"^[d∂](?P<top>[^/]+)/[d∂](?P<bottom>.+)$")
_BUILTIN = re.compile(r"^(?P<kind>W|b|z|a|delta)(?P<layer>\d+)$")
_GRADIENT_OF = {"W": "dL/dW", "b": "dL/db", "z": "delta", "a": "dL/da", "x": "dL/dx"}

Key = tuple[str, int]
NAMED = -1
"""The ``layer`` of an entry of a named node (``[nodes]``, a graph), whose ``quantity`` is its name."""


@dataclass(frozen=True)
class Entry:
    """One number: ``quantity`` of ``layer`` at ``index`` (a full index into the array)."""

    quantity: str
    layer: int
    index: tuple[int, ...]

    @property
    def key(self) -> Key:
        return (self.quantity, self.layer)

    @property
    def is_gradient(self) -> bool:
        return self.quantity in GRADIENT_QUANTITIES

    def canonical(self) -> str:
        """The entry in refbp's names, e.g. ``dL/dW2[0,1]``, ``delta1[0,1]``, ``loss``."""
        index = "[" + ",".join(map(str, self.index)) + "]" if self.index else ""
        if self.layer == NAMED:
            return self.quantity + index
        if self.quantity in SCALARS or self.quantity == "x":
            return self.quantity + index
        if self.quantity == "dL/dx":
            return "dL/dx" + index
        if self.quantity == LOCAL_QUANTITY:
            return f"da{self.layer}/dz{self.layer}{index}"
        if self.quantity.startswith("dL/d"):
            return f"{self.quantity}{self.layer}{index}"
        return f"{self.quantity}{self.layer}{index}"


@dataclass(frozen=True)
class _Atom:
    """A name with an optional index, before the index is checked against a shape."""

    quantity: str
    layer: int
    index: tuple[int, ...] | None


def quantity_shape(spec: NetworkSpec, batch: int, quantity: str, layer: int) -> tuple[int, ...]:
    """The shape of ``quantity`` of ``layer`` in the spec's layout."""
    if quantity in SCALARS:
        return ()
    if quantity in ("x", "dL/dx"):
        return spec.input_shape(batch)
    if quantity in ("W", "dL/dW"):
        return spec.weight_shape(layer)
    if quantity in ("b", "dL/db"):
        shape = spec.bias_shape(layer)
        assert shape is not None
        return shape
    return spec.activation_shape(layer, batch)


def _bad(expected: str, got: str) -> InputError:
    return InputError("", expected, got)


def _parse_index(text: str | None, reference: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not all(re.fullmatch(r"\d+", p) for p in parts):
        raise _bad("an index of non-negative integers like [0] or [0,1]", reference)
    return tuple(int(p) for p in parts)


def _builtin_atom(spec: NetworkSpec, name: str, reference: str) -> tuple[str, int] | None:
    """``(quantity, layer)`` for a built-in name (``W2``, ``a0``, ``x``, ``loss``), else ``None``."""
    if name in SCALARS:
        return name, spec.depth
    if name in ("x", "a0"):
        return "x", 0
    match = _BUILTIN.match(name)
    if not match:
        return None
    kind, layer = match.group("kind"), int(match.group("layer"))
    if not 1 <= layer <= spec.depth:
        raise _bad(f"a layer between 1 and {spec.depth} in {kind}{layer}", reference)
    if kind == "b" and spec.bias_shape(layer) is None:
        raise _bad(f"a parameter of the network (layer {layer} has no bias)", reference)
    return kind, layer


def _atom(spec: NetworkSpec, text: str, aliases: Mapping[str, str], reference: str) -> _Atom:
    """A name (alias or built-in) and its optional index."""
    match = _ATOM.match(text.strip())
    if not match:
        raise _bad("a name with an optional index, like W2[0,1] or h1", reference)
    name, index = match.group("name"), _parse_index(match.group("index"), reference)
    if name in aliases:
        target = _atom(spec, aliases[name], {}, aliases[name])
        if index is None:
            return target
        if target.index is not None:
            raise _bad(f"no index after {name} (it already names the entry {aliases[name]})", reference)
        return _Atom(target.quantity, target.layer, index)
    builtin = _builtin_atom(spec, name, reference)
    if builtin is None:
        known = "W, b, z, a, delta with a layer number, x, loss, data_loss, penalty, or an alias"
        raise _bad(f"a known quantity ({known})", reference)
    return _Atom(builtin[0], builtin[1], index)


def _full_index(spec: NetworkSpec, batch: int, atom: _Atom, reference: str) -> tuple[int, ...]:
    """The index completed (batch index of a single example) and checked against the shape."""
    shape = quantity_shape(spec, batch, atom.quantity, atom.layer)
    index = atom.index
    if index is None:
        if math.prod(shape) != 1:
            raise _bad(f"an index into an array of shape {shape}", reference)
        return (0,) * len(shape)
    batched = atom.quantity not in ("W", "b", "dL/dW", "dL/db") and len(shape) == 2
    if batched and batch == 1 and len(index) == len(shape) - 1:
        index = (*index[: spec.batch_axis], 0, *index[spec.batch_axis :])
    if len(index) != len(shape) or any(i >= n for i, n in zip(index, shape, strict=True)):
        raise _bad(f"an index into shape {shape}", reference)
    return index


def resolve(spec: NetworkSpec, batch: int, reference: str, aliases: Mapping[str, str]) -> Entry:
    """The :class:`Entry` a reference names; :class:`InputError` (field left empty) when it names none.

    ``batch`` is the number of examples the claims are about (it fixes the shapes of
    ``z``, ``a`` and ``x``).
    """
    text = reference.strip()
    derivative = _DERIVATIVE.match(text)
    if derivative is None:
        atom = _atom(spec, text, aliases, reference)
        return Entry(atom.quantity, atom.layer, _full_index(spec, batch, atom, reference))
    top, bottom = derivative.group("top").strip(), derivative.group("bottom").strip()
    if (top in LOSS_NAMES and top not in aliases) or aliases.get(top, "").strip() == "loss":
        atom = _atom(spec, bottom, aliases, reference)
        if atom.quantity not in _GRADIENT_OF:
            raise _bad("a derivative with respect to a parameter, z, a or x", reference)
        quantity = _GRADIENT_OF[atom.quantity]
        gradient = _Atom(quantity, atom.layer, atom.index)
        return Entry(quantity, atom.layer, _full_index(spec, batch, gradient, reference))
    numerator = _atom(spec, top, aliases, reference)
    denominator = _atom(spec, bottom, aliases, reference)
    if numerator.quantity != "a" or denominator.quantity != "z" or numerator.layer != denominator.layer:
        raise _bad(f"the derivative of the loss ({', '.join(LOSS_NAMES)}) or da{{l}}/dz{{l}} of one layer", reference)
    if spec.layers[numerator.layer - 1].activation == "softmax":
        raise _bad("an elementwise activation for da/dz (softmax couples the units)", reference)
    indexed = [atom for atom in (numerator, denominator) if atom.index is not None] or [numerator]
    indices = {_full_index(spec, batch, atom, reference) for atom in indexed}
    if len(indices) > 1:
        raise _bad("the same entry of a and z in da/dz (the activation is elementwise)", reference)
    return Entry(LOCAL_QUANTITY, numerator.layer, indices.pop())


def check_alias(spec: NetworkSpec, batch: int, name: str, target: str) -> None:
    """:class:`InputError` unless ``target`` names an entry or a whole array in refbp's names."""
    if not re.fullmatch(_NAME, name) or _DERIVATIVE.match(name):
        raise _bad("an alias name without brackets, slashes or spaces", name)
    if not isinstance(target, str):
        raise _bad('a reference written as a string, like "W2[0,0]"', target)
    if _DERIVATIVE.match(target.strip()):
        raise _bad("a value, not a derivative, as the target of an alias", target)
    atom = _atom(spec, target, {}, target)
    if atom.index is not None:
        _full_index(spec, batch, atom, target)


def array_of(spec: NetworkSpec, text: str, aliases: Mapping[str, str]) -> tuple[Key, tuple[int, ...] | None]:
    """The array a name in an expression reads, and the entry when it names one (``None``: the whole array).

    ``W2``, ``z1``, ``loss``, an alias (of an array or of an entry), ``dE/dW2``, ``dL/dw7``;
    with an index only through an alias (an expression indexes with its own ``[…]``).
    """
    derivative = _DERIVATIVE.match(text.strip())
    if derivative is not None:
        top = derivative.group("top").strip()
        if not ((top in LOSS_NAMES and top not in aliases) or aliases.get(top, "").strip() == "loss"):
            numerator = _atom(spec, top, aliases, text)
            denominator = _atom(spec, derivative.group("bottom"), aliases, text)
            if (numerator.quantity, denominator.quantity) != ("a", "z") or numerator.layer != denominator.layer:
                raise _bad(f"the derivative of the loss ({', '.join(LOSS_NAMES)}) or da{{l}}/dz{{l}}", text)
            if spec.layers[numerator.layer - 1].activation == "softmax":
                raise _bad("an elementwise activation for da/dz (softmax couples the units)", text)
            return (LOCAL_QUANTITY, numerator.layer), None
        atom = _atom(spec, derivative.group("bottom"), aliases, text)
        if atom.quantity not in _GRADIENT_OF:
            raise _bad("a derivative with respect to a parameter, z, a or x", text)
        atom = _Atom(_GRADIENT_OF[atom.quantity], atom.layer, atom.index)
    else:
        atom = _atom(spec, text, aliases, text)
    return (atom.quantity, atom.layer), atom.index


def full_index(
    spec: NetworkSpec, batch: int, key: Key, index: tuple[int, ...] | None, reference: str
) -> tuple[int, ...]:
    """``index`` completed (the batch index of a single example) and checked against ``key``'s shape."""
    return _full_index(spec, batch, _Atom(key[0], key[1], index), reference)
