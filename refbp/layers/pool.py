"""Max and average pooling over ``kernel`` windows with ``stride``, forward and backward side by side.

Shapes (NCHW)::

    x  (N, C, H, W)  →  out  (N, C, Ho, Wo),   Ho = ⌊(H − kh) / sh⌋ + 1,  Wo likewise

``max_pool2d``: ``out`` is the largest entry of each window; ``∂L/∂x`` routes each
``∂L/∂out`` entry to the position of that maximum only (the first one in row-major order
if two are equal — a kink, where the derivative does not exist; the oracle reports such
entries as ``kink`` and generated cases keep maxima apart). ``avg_pool2d``: ``out`` is
the mean of each window; ``∂L/∂x`` spreads ``∂L/∂out / (kh·kw)`` over the window.
Overlapping windows (stride < kernel) add up. Pooling has no parameters.

The windows are a strided view ``(N, C, Ho, Wo, kh, kw)``; the backward pass adds into
``∂L/∂x`` with one strided slice per kernel offset, never a loop over pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refbp.errors import InputError
from refbp.layers.conv import windows
from refbp.layers.fields import check_keys, pair, pair_value


@dataclass(frozen=True)
class _Pool:
    kernel: tuple[int, int]
    stride: tuple[int, int]

    has_activation: ClassVar[bool] = False
    activation: ClassVar[str] = "none"
    type: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Any:
        data = check_keys(data, ("type", "kernel", "stride"), where)
        if "kernel" not in data:
            raise InputError(f"{where}.kernel", "a positive integer or [height, width]", "missing")
        kernel = pair(data["kernel"], f"{where}.kernel")
        return cls(kernel=kernel, stride=pair(data.get("stride", list(kernel)), f"{where}.stride"))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "kernel": pair_value(self.kernel), "stride": pair_value(self.stride)}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(in_shape) != 3:
            raise InputError(where, "an image input (C, H, W)", f"shape {in_shape}")
        out = [(size - k) // s + 1 for size, k, s in zip(in_shape[1:], self.kernel, self.stride, strict=True)]
        if min(out) < 1:
            raise InputError(f"{where}.kernel", f"a window that fits the input {in_shape}", self.kernel)
        return (in_shape[0], out[0], out[1])

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}


@dataclass(frozen=True)
class MaxPool2d(_Pool):
    """Max pooling; ``stride`` defaults to the kernel size."""

    type: ClassVar[str] = "max_pool2d"


@dataclass(frozen=True)
class AvgPool2d(_Pool):
    """Average pooling; ``stride`` defaults to the kernel size."""

    type: ClassVar[str] = "avg_pool2d"


def _scatter(layer: _Pool, x_shape: tuple[int, ...], dout: np.ndarray, weight: Any) -> np.ndarray:
    """``Σ`` over kernel offsets ``(p, q)`` of ``dout · weight(p, q)`` added at each window's ``(p, q)``."""
    dx = np.zeros(x_shape, dtype=dout.dtype)
    (sh, sw), (ho, wo) = layer.stride, dout.shape[2:]
    for p in range(layer.kernel[0]):
        for q in range(layer.kernel[1]):
            dx[:, :, p : p + sh * (ho - 1) + 1 : sh, q : q + sw * (wo - 1) + 1 : sw] += dout * weight(p, q)
    return dx


def max_forward(layer: MaxPool2d, params: dict, x: np.ndarray, buffers: dict) -> tuple:
    """``(out, cache, state)``; the cache holds the flat position of each window's maximum."""
    flat = windows(x, layer.kernel, layer.stride).reshape(*x.shape[:2], *layer.output_shape(x.shape[1:], "")[1:], -1)
    where = flat.argmax(axis=-1)
    out = np.take_along_axis(flat, where[..., None], axis=-1)[..., 0]
    return out, (x.shape, where), {}


def max_backward(layer: MaxPool2d, params: dict, cache: tuple, dout: np.ndarray) -> tuple:
    """``∂L/∂x``: each ``∂L/∂out`` entry goes to its window's maximum."""
    x_shape, where = cache
    kw = layer.kernel[1]
    return _scatter(layer, x_shape, dout, lambda p, q: where == p * kw + q), {}


def avg_forward(layer: AvgPool2d, params: dict, x: np.ndarray, buffers: dict) -> tuple:
    return windows(x, layer.kernel, layer.stride).mean(axis=(-2, -1)), x.shape, {}


def avg_backward(layer: AvgPool2d, params: dict, cache: tuple, dout: np.ndarray) -> tuple:
    """``∂L/∂x``: each ``∂L/∂out`` entry spread evenly over its window."""
    share = 1.0 / (layer.kernel[0] * layer.kernel[1])
    return _scatter(layer, cache, dout, lambda p, q: share), {}
