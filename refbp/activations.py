"""Activations, each beside its derivative.

``forward(z, axis)`` returns ``a = f(z)``; ``backward(z, a, grad_a, axis)`` returns
``δ = ∂L/∂z`` given ``∂L/∂a``. For the elementwise functions this is
``f'(z) ⊙ ∂L/∂a`` (seed 003: ``δ_l = f_l'(z_l) ⊙ (W_{l+1}ᵀ δ_{l+1})``); softmax couples
the units of one example, so its backward is a Jacobian-vector product along ``axis``
(the unit axis: 1 for ``in_out``, 0 for ``out_in``).

Fast path. Each function also has an ``*_into`` twin used by the fast forward and
backward in :mod:`refbp.network`: the same operations in the same order, written with
ufunc ``out=`` arguments into caller-provided buffers (``out`` receives the result,
``scratch`` is a same-shaped work array whose content is overwritten), so that the
numbers are bit-for-bit those of the plain function and no array of ``z``'s size is
allocated. ``identity`` returns its input unchanged (``a`` is ``z``, ``δ`` is ``∂L/∂a``),
as the plain version does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from refbp.spec import LayerSpec


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^{-z})`` without overflow: ``e^{-|z|}`` never exceeds 1."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def sigmoid_backward(z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
    """``σ'(z) = σ(z)(1 − σ(z))`` (seed 001, ④ 1)."""
    return grad_a * a * (1.0 - a)


def tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z)


def tanh_backward(z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
    """``tanh'(z) = 1 − tanh²(z)`` (seed 001, ④ 2)."""
    return grad_a * (1.0 - a * a)


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0).astype(z.dtype, copy=False)


def relu_backward(z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
    """``relu'(z) = 1`` for ``z > 0`` and 0 for ``z ≤ 0`` (seed 001, ④ 3: the kink goes to 0)."""
    return grad_a * (z > 0)


def leaky_relu(z: np.ndarray, slope: float) -> np.ndarray:
    return np.where(z > 0, z, slope * z).astype(z.dtype, copy=False)


def leaky_relu_backward(z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, slope: float) -> np.ndarray:
    """1 for ``z > 0``, ``slope`` for ``z ≤ 0``."""
    return grad_a * np.where(z > 0, 1.0, slope).astype(z.dtype, copy=False)


def identity(z: np.ndarray) -> np.ndarray:
    return z


def identity_backward(z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
    return grad_a


def softmax(z: np.ndarray, axis: int) -> np.ndarray:
    """``e^{z_i} / Σ_j e^{z_j}`` along ``axis``; subtracting the max keeps ``exp`` ≤ 1."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, axis: int) -> np.ndarray:
    """Jacobian-vector product of softmax: ``δ_i = a_i (g_i − Σ_j a_j g_j)``."""
    return a * (grad_a - (a * grad_a).sum(axis=axis, keepdims=True))


# -- fast path: the same operations into caller-provided buffers -------------------------


def sigmoid_into(z: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """:func:`sigmoid` into ``out``: ``e^{min(z, 0)} / (1 + e^{-|z|})``.

    The numerator is 1 where ``z ≥ 0`` (``e^0`` is exactly 1) and ``e^{z}``, the very ``e^{-|z|}``
    of :func:`sigmoid`, elsewhere: the same numbers as its two branches, with no mask.
    """
    e = np.exp(np.negative(np.abs(z, out=out), out=out), out=out)
    denominator = np.add(1.0, e, out=scratch)
    numerator = np.exp(np.minimum(z, 0.0, out=out), out=out)
    return np.divide(numerator, denominator, out=out)


def sigmoid_backward_into(
    z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, out: np.ndarray, scratch: np.ndarray
) -> np.ndarray:
    """:func:`sigmoid_backward` into ``out``: ``(∂L/∂a · a) · (1 − a)``."""
    np.multiply(grad_a, a, out=out)
    return np.multiply(out, np.subtract(1.0, a, out=scratch), out=out)


def tanh_into(z: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    return np.tanh(z, out=out)


def tanh_backward_into(
    z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, out: np.ndarray, scratch: np.ndarray
) -> np.ndarray:
    """:func:`tanh_backward` into ``out``: ``∂L/∂a · (1 − a·a)``."""
    np.subtract(1.0, np.multiply(a, a, out=out), out=out)
    return np.multiply(grad_a, out, out=out)


def relu_into(z: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0, out=out)


def relu_backward_into(
    z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, out: np.ndarray, scratch: np.ndarray
) -> np.ndarray:
    return np.multiply(grad_a, z > 0, out=out)


def leaky_relu_into(z: np.ndarray, out: np.ndarray, scratch: np.ndarray, slope: float) -> np.ndarray:
    """:func:`leaky_relu` into ``out``: ``slope·z``, overwritten by ``z`` where ``z > 0``."""
    np.multiply(z, slope, out=out)
    np.copyto(out, z, where=z > 0)
    return out


def leaky_relu_backward_into(
    z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, out: np.ndarray, scratch: np.ndarray, slope: float
) -> np.ndarray:
    """:func:`leaky_relu_backward` into ``out``: the factor (1 or ``slope``) is built in ``scratch``."""
    scratch.fill(slope)
    np.copyto(scratch, 1.0, where=z > 0)
    return np.multiply(grad_a, scratch, out=out)


def softmax_into(z: np.ndarray, out: np.ndarray, scratch: np.ndarray, axis: int) -> np.ndarray:
    np.exp(np.subtract(z, z.max(axis=axis, keepdims=True), out=out), out=out)
    return np.divide(out, out.sum(axis=axis, keepdims=True), out=out)


def softmax_backward_into(
    z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, out: np.ndarray, scratch: np.ndarray, axis: int
) -> np.ndarray:
    """:func:`softmax_backward` into ``out``: ``a ⊙ (g − Σ_j a_j g_j)``."""
    summed = np.multiply(a, grad_a, out=out).sum(axis=axis, keepdims=True)
    return np.multiply(a, np.subtract(grad_a, summed, out=out), out=out)


def identity_into(z: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    return z


def identity_backward_into(
    z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, out: np.ndarray, scratch: np.ndarray
) -> np.ndarray:
    return grad_a


@dataclass(frozen=True)
class Activation:
    """An activation bound to one layer.

    ``forward(z)`` and ``backward(z, a, grad_a)`` return new arrays; ``forward_into(z, out,
    scratch)`` and ``backward_into(z, a, grad_a, out, scratch)`` compute the same numbers
    into ``out`` (see the module docstring) and return it (``z`` / ``grad_a`` for identity).
    """

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    forward_into: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    backward_into: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def activation_for(layer: LayerSpec, unit_axis: int) -> Activation:
    """The activation of ``layer``, with its slope or softmax axis filled in."""
    name = layer.activation
    if name == "sigmoid":
        return Activation(name, sigmoid, sigmoid_backward, sigmoid_into, sigmoid_backward_into)
    if name == "tanh":
        return Activation(name, tanh, tanh_backward, tanh_into, tanh_backward_into)
    if name == "relu":
        return Activation(name, relu, relu_backward, relu_into, relu_backward_into)
    if name == "leaky_relu":
        slope = layer.negative_slope
        return Activation(
            name,
            lambda z: leaky_relu(z, slope),
            lambda z, a, g: leaky_relu_backward(z, a, g, slope),
            lambda z, out, scratch: leaky_relu_into(z, out, scratch, slope),
            lambda z, a, g, out, scratch: leaky_relu_backward_into(z, a, g, out, scratch, slope),
        )
    if name == "softmax":
        return Activation(
            name,
            lambda z: softmax(z, unit_axis),
            lambda z, a, g: softmax_backward(z, a, g, unit_axis),
            lambda z, out, scratch: softmax_into(z, out, scratch, unit_axis),
            lambda z, a, g, out, scratch: softmax_backward_into(z, a, g, out, scratch, unit_axis),
        )
    return Activation(name, identity, identity_backward, identity_into, identity_backward_into)
