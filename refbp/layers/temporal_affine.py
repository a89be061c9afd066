"""Temporal affine: one dense map applied at every time step (CS231n's ``temporal_affine_forward``).

Shapes::

    x  (N, T, D)     W  (D, units)     b  (units,)
    out[n, t] = x[n, t] @ W + b                     (N, T, units)
    ∂L/∂W = Σ_{n,t} x[n, t]ᵀ dout[n, t]     ∂L/∂b = Σ_{n,t} dout[n, t]     ∂L/∂x = dout @ Wᵀ
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refbp.errors import InputError
from refbp.layers.fields import check_keys, integer


@dataclass(frozen=True)
class TemporalAffine:
    """``units`` outputs at each step; no activation (a temporal loss works from these scores)."""

    type: ClassVar[str] = "temporal_affine"
    has_activation: ClassVar[bool] = False
    activation: ClassVar[str] = "none"
    units: int

    @classmethod
    def from_dict(cls, data: Any, where: str) -> TemporalAffine:
        data = check_keys(data, ("type", "units"), where)
        if "units" not in data:
            raise InputError(f"{where}.units", "a positive integer", "missing")
        return cls(units=integer(data["units"], f"{where}.units"))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "units": self.units}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(in_shape) != 2:
            raise InputError(where, "a sequence input (T, D)", f"shape {in_shape}")
        return (in_shape[0], self.units)

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"W": (in_shape[1], self.units), "b": (self.units,)}

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}


def forward(layer: TemporalAffine, params: dict[str, np.ndarray], x: np.ndarray, buffers: dict) -> tuple:
    """``out (N, T, units)``; returns ``(out, cache, state)``."""
    return x @ params["W"] + params["b"], x, {}


def backward(layer: TemporalAffine, params: dict[str, np.ndarray], cache: np.ndarray, dout: np.ndarray) -> tuple:
    """``(∂L/∂x, {"W", "b"})`` from ``dout (N, T, units)``."""
    x = cache
    D, units = params["W"].shape
    dW = x.reshape(-1, D).T @ dout.reshape(-1, units)
    return dout @ params["W"].T, {"W": dW, "b": dout.sum(axis=(0, 1))}
