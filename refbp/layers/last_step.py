"""Last step: ``(N, T, H)`` → ``(N, H)``, the state after the final step, for sequence-to-one networks.

Backward puts ``∂L/∂out`` at step ``T−1`` and zeros at every other step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refbp.errors import InputError
from refbp.layers.fields import check_keys


@dataclass(frozen=True)
class LastStep:
    type: ClassVar[str] = "last_step"
    has_activation: ClassVar[bool] = False
    activation: ClassVar[str] = "none"

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LastStep:
        check_keys(data, ("type",), where)
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(in_shape) != 2:
            raise InputError(where, "a sequence input (T, H)", f"shape {in_shape}")
        return (in_shape[1],)

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}


def forward(layer: LastStep, params: dict, x: np.ndarray, buffers: dict) -> tuple:
    return x[:, -1], x.shape, {}


def backward(layer: LastStep, params: dict, cache: tuple, dout: np.ndarray) -> tuple:
    dx = np.zeros(cache, dtype=dout.dtype)
    dx[:, -1] = dout
    return dx, {}
