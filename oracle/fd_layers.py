"""The finite-difference checker's own forward pass of each typed layer, on stacks of perturbed copies.

Every function takes ``x (S, N, …)`` — ``S`` copies of the batch, possibly ``S = 1`` — and
parameters of shape ``(S', *shape)`` with ``S'`` 1 or ``S`` (only the perturbed tensor is
stacked), and returns ``(out (S, N, …), windows_argmax or None)``. Written apart from refbp's
layers (:mod:`refbp.layers`): convolution as an ``einsum`` over explicit windows, pooling as
a reduction over them, normalisation from its definition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from oracle.fd_recurrent import FD_RECURRENT
from refbp.layers.dropout import layer_mask


def _per_channel(value: np.ndarray, ndim: int) -> np.ndarray:
    """``(S', C)`` → broadcastable against ``(S, N, C, …)`` of ``ndim`` axes."""
    return value.reshape(value.shape[0], 1, value.shape[1], *([1] * (ndim - 3)))


def patches(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """``(S, N, C, Ho, Wo, kh, kw)``: every window of ``x (S, N, C, H, W)``."""
    return sliding_window_view(x, kernel, axis=(3, 4))[:, :, :, :: stride[0], :: stride[1]]


def dense(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    z = np.matmul(x, p["W"])
    return (z + p["b"][:, None, :] if "b" in p else z), None


def conv2d(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    ph, pw = layer.padding
    padded = np.pad(x, ((0, 0), (0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = patches(padded, layer.kernel, layer.stride)
    W = p["W"]
    if W.shape[0] == 1:
        z = np.einsum("snchwij,fcij->snfhw", cols, W[0], optimize=True)
    elif cols.shape[0] == 1:
        z = np.einsum("nchwij,sfcij->snfhw", cols[0], W, optimize=True)
    else:
        z = np.einsum("snchwij,sfcij->snfhw", cols, W, optimize=True)
    if "b" in p:
        z = z + _per_channel(p["b"], 5)
    return z, None


def max_pool2d(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    flat = patches(x, layer.kernel, layer.stride)
    flat = flat.reshape(*flat.shape[:5], -1)
    return flat.max(axis=-1), flat.argmax(axis=-1)


def avg_pool2d(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    return patches(x, layer.kernel, layer.stride).mean(axis=(-2, -1)), None


def _normalise(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def batchnorm(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    if layer.mode == "eval":
        channels = x.shape[2]
        mean = np.asarray(buffers.get("running_mean", np.zeros(channels)), dtype=np.float64)
        var = np.asarray(buffers.get("running_var", np.ones(channels)), dtype=np.float64)
        xhat = (x - _per_channel(mean[None], x.ndim)) / np.sqrt(_per_channel(var[None], x.ndim) + layer.eps)
    else:
        xhat = _normalise(x, (1,) if x.ndim == 3 else (1, 3, 4), layer.eps)
    return _per_channel(p["gamma"], x.ndim) * xhat + _per_channel(p["beta"], x.ndim), None


def layernorm(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    xhat = _normalise(x, tuple(range(2, x.ndim)), layer.eps)
    return p["gamma"][:, None] * xhat + p["beta"][:, None], None


def groupnorm(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    S, N, C = x.shape[:3]
    grouped = x.reshape(S, N, layer.groups, C // layer.groups, *x.shape[3:])
    xhat = _normalise(grouped, tuple(range(3, grouped.ndim)), layer.eps).reshape(x.shape)
    return _per_channel(p["gamma"], x.ndim) * xhat + _per_channel(p["beta"], x.ndim), None


def dropout(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    if layer.mode == "eval":
        return x, None
    return x * layer_mask(layer, x.shape[1:], buffers) / layer.keep_prob, None


def flatten(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    return x.reshape(x.shape[0], x.shape[1], -1), None


FD_FORWARD = {
    "dense": dense,
    "conv2d": conv2d,
    "max_pool2d": max_pool2d,
    "avg_pool2d": avg_pool2d,
    "batchnorm": batchnorm,
    "layernorm": layernorm,
    "groupnorm": groupnorm,
    "dropout": dropout,
    "flatten": flatten,
    **FD_RECURRENT,
}
"""The stacked forward of every layer type, by its registry name."""
