"""Flatten: ``(N, d1, d2, …)`` → ``(N, d1·d2·…)`` in C order (CS231n's ``x.reshape(N, -1)``); backward reshapes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refbp.layers.fields import check_keys


@dataclass(frozen=True)
class Flatten:
    type: ClassVar[str] = "flatten"
    has_activation: ClassVar[bool] = False
    activation: ClassVar[str] = "none"

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Flatten:
        check_keys(data, ("type",), where)
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        return (math.prod(in_shape),)

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}


def forward(layer: Flatten, params: dict, x: np.ndarray, buffers: dict) -> tuple:
    return x.reshape(x.shape[0], -1), x.shape, {}


def backward(layer: Flatten, params: dict, cache: tuple, dout: np.ndarray) -> tuple:
    return dout.reshape(cache), {}
