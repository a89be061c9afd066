"""2-D convolution (cross-correlation, as in CS231n and torch), forward and backward side by side.

Shapes (NCHW)::

    x  (N, C, H, W)        W  (F, C, kh, kw)        b  (F,)  (absent for bias "none")
    z  (N, F, Ho, Wo)      Ho = ⌊(H + 2·ph − kh) / sh⌋ + 1,  Wo likewise

    z[n, f, i, j] = b[f] + Σ_{c, p, q} x_pad[n, c, i·sh + p, j·sw + q] · W[f, c, p, q]

Backward, from ``δ = ∂L/∂z``::

    ∂L/∂b[f]       = Σ_{n, i, j} δ[n, f, i, j]
    ∂L/∂W[f,c,p,q] = Σ_{n, i, j} δ[n, f, i, j] · x_pad[n, c, i·sh + p, j·sw + q]
    ∂L/∂x_pad      = δ scattered back through every window: for stride 1 the "full"
                     convolution of δ with the kernel flipped in both spatial axes
    ∂L/∂x          = ∂L/∂x_pad with the padding cut off

Fast path (:func:`forward`, :func:`backward`): im2col — the windows of ``x_pad`` are a
strided view ``(N, C, Ho, Wo, kh, kw)``, copied once into columns ``(N, C·kh·kw, Ho·Wo)``,
and each product is one batched GEMM.
``∂L/∂x_pad`` adds the columns back with one strided slice per kernel offset ``(p, q)``:
``kh·kw`` vectorised additions, never a loop over pixels. The textbook path
(:func:`textbook_forward`, :func:`textbook_backward`) is the naive loop of the course
over examples, filters and output pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from refbp.errors import InputError
from refbp.layers.fields import check_keys, choice, integer, number, pair, pair_value
from refbp.spec import ACTIVATIONS

CONV_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "softmax")


@dataclass(frozen=True)
class Conv2d:
    """``filters`` kernels of ``kernel`` = ``(kh, kw)`` with ``stride`` and zero ``padding``."""

    type: ClassVar[str] = "conv2d"
    has_activation: ClassVar[bool] = True
    filters: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    activation: str = "identity"
    bias: str = "per_unit"
    negative_slope: float = 0.01

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Conv2d:
        fields = ("type", "filters", "kernel", "stride", "padding", "activation", "bias", "negative_slope")
        data = check_keys(data, fields, where)
        for needed in ("filters", "kernel"):
            if needed not in data:
                raise InputError(f"{where}.{needed}", "a positive integer", "missing")
        return cls(
            filters=integer(data["filters"], f"{where}.filters"),
            kernel=pair(data["kernel"], f"{where}.kernel"),
            stride=pair(data.get("stride", 1), f"{where}.stride"),
            padding=pair(data.get("padding", 0), f"{where}.padding", minimum=0),
            activation=choice(data.get("activation", "identity"), CONV_ACTIVATIONS, f"{where}.activation"),
            bias=choice(data.get("bias", "per_unit"), ("per_unit", "none"), f"{where}.bias"),
            negative_slope=number(data.get("negative_slope", 0.01), f"{where}.negative_slope", low=-1e6, high=1e6),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "filters": self.filters, "kernel": pair_value(self.kernel)}
        out.update(stride=pair_value(self.stride), padding=pair_value(self.padding))
        out.update(activation=self.activation, bias=self.bias)
        if self.activation == "leaky_relu":
            out["negative_slope"] = self.negative_slope
        return out

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(in_shape) != 3:
            raise InputError(where, "an image input (C, H, W)", f"shape {in_shape}")
        _, height, width = in_shape
        out = [
            (size + 2 * pad - k) // s + 1
            for size, pad, k, s in zip((height, width), self.padding, self.kernel, self.stride, strict=True)
        ]
        if min(out) < 1:
            raise InputError(f"{where}.kernel", f"a kernel that fits the padded input {in_shape}", self.kernel)
        return (self.filters, out[0], out[1])

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {"W": (self.filters, in_shape[0], *self.kernel)}
        if self.bias == "per_unit":
            shapes["b"] = (self.filters,)
        return shapes

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}


def _pad(x: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x


def windows(x_pad: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """The strided view ``(N, C, Ho, Wo, kh, kw)`` of every window of ``x_pad (N, C, Hp, Wp)``."""
    view = sliding_window_view(x_pad, kernel, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1]]


def forward(layer: Conv2d, params: dict[str, np.ndarray], x: np.ndarray, buffers: dict) -> tuple:
    """``z (N, F, Ho, Wo)`` by im2col; returns ``(z, cache, state)``.

    The columns ``(N, C·kh·kw, Ho·Wo)`` are built once and kept for ∂L/∂W; with the examples
    first and the pixels last, ``z`` comes out of one batched GEMM already in NCHW order.
    """
    x_pad = _pad(x, layer.padding)
    view = windows(x_pad, layer.kernel, layer.stride)  # (N, C, Ho, Wo, kh, kw)
    n_ex, _, ho, wo = view.shape[:4]
    cols = np.ascontiguousarray(view.transpose(0, 1, 4, 5, 2, 3)).reshape(n_ex, -1, ho * wo)
    W = params["W"]
    z = np.matmul(W.reshape(W.shape[0], -1), cols)  # (N, F, Ho·Wo)
    if "b" in params:
        z += params["b"][:, None]
    return z.reshape(n_ex, W.shape[0], ho, wo), (x.shape, x_pad.shape, cols), {}


def backward(layer: Conv2d, params: dict[str, np.ndarray], cache: tuple, dz: np.ndarray) -> tuple:
    """``(∂L/∂x, {"W": ∂L/∂W, "b": ∂L/∂b})`` from ``δ = dz (N, F, Ho, Wo)``."""
    x_shape, pad_shape, cols = cache
    W = params["W"]
    n_ex, filters, ho, wo = dz.shape
    dz3 = dz.reshape(n_ex, filters, ho * wo)
    grads = {"W": np.matmul(dz3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(W.shape)}
    if layer.bias == "per_unit":
        grads["b"] = dz.sum(axis=(0, 2, 3))
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    dcols = np.matmul(W.reshape(filters, -1).T, dz3).reshape(n_ex, x_shape[1], kh, kw, ho, wo)
    dx_pad = np.zeros(pad_shape, dtype=dz.dtype)
    for p in range(kh):
        for q in range(kw):
            dx_pad[:, :, p : p + sh * (ho - 1) + 1 : sh, q : q + sw * (wo - 1) + 1 : sw] += dcols[:, :, p, q]
    ph, pw = layer.padding
    return dx_pad[:, :, ph : ph + x_shape[2], pw : pw + x_shape[3]], grads


def textbook_forward(layer: Conv2d, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The course's naive loop: one window and one filter at a time (the numbers of :func:`forward`)."""
    x_pad = _pad(x, layer.padding)
    W = params["W"]
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    n_ex, _, ho, wo = x.shape[0], *layer.output_shape(x.shape[1:], "conv2d")
    z = np.zeros((n_ex, W.shape[0], ho, wo), dtype=x.dtype)
    for n in range(n_ex):
        for f in range(W.shape[0]):
            for i in range(ho):
                for j in range(wo):
                    window = x_pad[n, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    z[n, f, i, j] = np.sum(window * W[f]) + (params["b"][f] if "b" in params else 0.0)
    return z


def textbook_backward(layer: Conv2d, params: dict[str, np.ndarray], x: np.ndarray, dz: np.ndarray) -> tuple:
    """The course's naive loop for ``(∂L/∂x, {"W", "b"})``."""
    x_pad = _pad(x, layer.padding)
    W = params["W"]
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    dx_pad, dW = np.zeros_like(x_pad), np.zeros_like(W)
    for n in range(dz.shape[0]):
        for f in range(dz.shape[1]):
            for i in range(dz.shape[2]):
                for j in range(dz.shape[3]):
                    window = (n, slice(None), slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw))
                    dW[f] += dz[n, f, i, j] * x_pad[window]
                    dx_pad[window] += dz[n, f, i, j] * W[f]
    grads = {"W": dW}
    if layer.bias == "per_unit":
        grads["b"] = dz.sum(axis=(0, 2, 3))
    return dx_pad[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]], grads
