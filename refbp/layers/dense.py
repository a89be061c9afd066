"""The dense (affine) layer of a typed network, forward and backward side by side.

Shapes (examples in rows, as in CS231n's ``affine_forward``)::

    x  (N, D)     W  (D, units)     b  (units,) per unit, (1,) shared, absent for none
    z = x @ W + b                                   (N, units)
    ∂L/∂W = xᵀ @ δ      ∂L/∂b = Σ_n δ (and Σ over the units when shared)      ∂L/∂x = δ @ Wᵀ

The activation ``a = f(z)`` and ``δ = f'(z) ⊙ ∂L/∂a`` are applied by the network
(:mod:`refbp.sequential`), as for every layer with an ``activation`` field. A dense layer
takes a flat input: put a ``flatten`` layer after convolution or pooling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refbp.errors import InputError
from refbp.spec import LayerSpec


@dataclass(frozen=True)
class Dense:
    """``units`` outputs, an activation (``softmax`` on the output layer only), a bias mode."""

    type: ClassVar[str] = "dense"
    has_activation: ClassVar[bool] = True
    units: int
    activation: str = "identity"
    bias: str = "per_unit"
    negative_slope: float = 0.01

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Dense:
        fields = {k: v for k, v in data.items() if k != "type"} if isinstance(data, dict) else data
        plain = LayerSpec.from_dict(fields, where)
        return cls(plain.units, plain.activation, plain.bias, plain.negative_slope)

    def to_dict(self) -> dict[str, Any]:
        plain = LayerSpec(self.units, self.activation, self.bias, self.negative_slope)
        return {"type": self.type, **plain.to_dict()}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(in_shape) != 1:
            raise InputError(where, "a flat input (put a flatten layer before this dense layer)", f"shape {in_shape}")
        return (self.units,)

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {"W": (in_shape[0], self.units)}
        if self.bias != "none":
            shapes["b"] = (self.units,) if self.bias == "per_unit" else (1,)
        return shapes

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}


def forward(layer: Dense, params: dict[str, np.ndarray], x: np.ndarray, buffers: dict) -> tuple:
    """``z = x @ W + b``; returns ``(z, cache, state)``."""
    z = x @ params["W"]
    if "b" in params:
        z = z + params["b"]
    return z, x, {}


def backward(layer: Dense, params: dict[str, np.ndarray], cache: np.ndarray, dz: np.ndarray) -> tuple:
    """``(∂L/∂x, {"W": ∂L/∂W, "b": ∂L/∂b})`` from ``δ = dz`` ``(N, units)``."""
    x = cache
    grads = {"W": x.T @ dz}
    if layer.bias == "per_unit":
        grads["b"] = dz.sum(axis=0)
    elif layer.bias == "shared":
        grads["b"] = np.array([dz.sum()], dtype=dz.dtype)
    return dz @ params["W"].T, grads
