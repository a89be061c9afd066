"""Inverted dropout, forward and backward side by side.

Train mode, with a 0/1 ``mask`` of the input's shape ``(N, …)`` and keep probability ``p``::

    out = x ⊙ mask / p          ∂L/∂x = ∂L/∂out ⊙ mask / p

so that the expected output equals the input; eval mode is the identity. Courses name the
probability differently — CS231n's ``p`` is the keep probability (older years: the drop
probability), deeplearning.ai's ``keep_prob`` — so the spec says which it gives:
exactly one of ``keep_prob`` or ``drop_prob = 1 − keep_prob``.

The mask is an explicit buffer ``mask<l>`` when one is given, else a seeded draw
(:func:`seeded_mask`): ``numpy.random.default_rng(seed).random(shape) < keep_prob``, a
function of ``seed`` and the input shape only, so every implementation that draws it
gets the same mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refbp.errors import InputError
from refbp.layers.fields import check_keys, choice, integer, number

MODES = ("train", "eval")


@dataclass(frozen=True)
class Dropout:
    """Dropout keeping each entry with probability ``keep_prob``; ``convention`` is how the spec gave it."""

    type: ClassVar[str] = "dropout"
    has_activation: ClassVar[bool] = False
    activation: ClassVar[str] = "none"
    keep_prob: float = 0.5
    convention: str = "keep_prob"
    mode: str = "train"
    seed: int = 0

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Dropout:
        data = check_keys(data, ("type", "keep_prob", "drop_prob", "mode", "seed"), where)
        given = [name for name in ("keep_prob", "drop_prob") if name in data]
        if len(given) != 1:
            raise InputError(where, "exactly one of keep_prob or drop_prob", ", ".join(given) or "neither")
        name = given[0]
        if name == "keep_prob":
            keep = number(data[name], f"{where}.keep_prob", low=0.0, high=1.0, open_low=True)
        else:
            keep = 1.0 - number(data[name], f"{where}.drop_prob", low=0.0, high=1.0 - 1e-12)
        return cls(
            keep_prob=keep,
            convention=name,
            mode=choice(data.get("mode", "train"), MODES, f"{where}.mode"),
            seed=integer(data.get("seed", 0), f"{where}.seed", minimum=0),
        )

    def to_dict(self) -> dict[str, Any]:
        prob = self.keep_prob if self.convention == "keep_prob" else 1.0 - self.keep_prob
        return {"type": self.type, self.convention: prob, "mode": self.mode, "seed": self.seed}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        return in_shape

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}


def seeded_mask(layer: Dropout, shape: tuple[int, ...]) -> np.ndarray:
    """The 0/1 mask (bool) drawn from ``layer.seed`` for an input of ``shape`` (batch axis included)."""
    return np.random.default_rng(layer.seed).random(shape) < layer.keep_prob


def layer_mask(layer: Dropout, shape: tuple[int, ...], buffers: dict) -> np.ndarray:
    """The explicit ``mask`` buffer (validated: 0/1 of ``shape``) or the seeded draw."""
    given = buffers.get("mask")
    if given is None:
        return seeded_mask(layer, shape)
    mask = np.asarray(given)
    if mask.shape != shape or not np.all((mask == 0) | (mask == 1)):
        raise InputError("mask", f"0/1 entries of shape {shape}", f"shape {mask.shape}", source="buffers")
    return mask.astype(bool)


def forward(layer: Dropout, params: dict, x: np.ndarray, buffers: dict) -> tuple:
    if layer.mode == "eval":
        return x, None, {}
    mask = layer_mask(layer, x.shape, buffers)
    return x * mask / x.dtype.type(layer.keep_prob), mask, {}


def backward(layer: Dropout, params: dict, cache: Any, dout: np.ndarray) -> tuple:
    if layer.mode == "eval":
        return dout, {}
    return dout * cache / dout.dtype.type(layer.keep_prob), {}
