"""Activations, each beside its derivative.

``forward(z, axis)`` returns ``a = f(z)``; ``backward(z, a, grad_a, axis)`` returns
``δ = ∂L/∂z`` given ``∂L/∂a``. For the elementwise functions this is
``f'(z) ⊙ ∂L/∂a`` (seed 003: ``δ_l = f_l'(z_l) ⊙ (W_{l+1}ᵀ δ_{l+1})``); softmax couples
the units of one example, so its backward is a Jacobian-vector product along ``axis``
(the unit axis: 1 for ``in_out``, 0 for ``out_in``).
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


@dataclass(frozen=True)
class Activation:
    """An activation bound to one layer: ``forward(z)`` and ``backward(z, a, grad_a)``."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def activation_for(layer: LayerSpec, unit_axis: int) -> Activation:
    """The activation of ``layer``, with its slope or softmax axis filled in."""
    name = layer.activation
    if name == "sigmoid":
        return Activation(name, sigmoid, sigmoid_backward)
    if name == "tanh":
        return Activation(name, tanh, tanh_backward)
    if name == "relu":
        return Activation(name, relu, relu_backward)
    if name == "leaky_relu":
        slope = layer.negative_slope
        return Activation(name, lambda z: leaky_relu(z, slope), lambda z, a, g: leaky_relu_backward(z, a, g, slope))
    if name == "softmax":
        return Activation(name, lambda z: softmax(z, unit_axis), lambda z, a, g: softmax_backward(z, a, g, unit_axis))
    return Activation(name, identity, identity_backward)
