"""Channels-last (NHWC) convolution and pooling on refbp's NCHW layers, and what the classic bugs return.

The deeplearning.ai convolution notebook keeps images as ``(m, n_H, n_W, n_C)`` and filters as
``W (f, f, n_C_prev, n_C)``, ``b (1, 1, 1, n_C)``; refbp's layers (:mod:`refbp.layers.conv`,
:mod:`refbp.layers.pool`) take ``x (N, C, H, W)``, ``W (F, C, kh, kw)``, ``b (F,)``. The functions
here only move axes around refbp's numbers; the bug variants are built from the same numbers
(a gradient with respect to the padded input, the first examples left out, a stride of one, …).
"""

from __future__ import annotations

import numpy as np

from refbp.layers import conv, pool

ConvGrads = dict[str, np.ndarray]


Strides = int | tuple[int, int]


def _pair(stride: Strides) -> tuple[int, int]:
    return stride if isinstance(stride, tuple) else (stride, stride)


def _layer(W: np.ndarray, stride: Strides, pad: int) -> conv.Conv2d:
    f = W.shape[0]
    return conv.Conv2d(filters=W.shape[3], kernel=(f, f), stride=_pair(stride), padding=(pad, pad))


def _params(W: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    return {"W": W.transpose(3, 2, 0, 1), "b": b.reshape(-1)}


def zero_pad(X: np.ndarray, pad: int) -> np.ndarray:
    """``X (m, n_H, n_W, n_C)`` with ``pad`` zeros on both sides of the height and width axes."""
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def conv_forward(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """``Z (m, n_H, n_W, n_C)``, ``n_H = ⌊(n_H_prev + 2·pad − f) / stride⌋ + 1``."""
    z, _, _ = conv.forward(_layer(W, stride, pad), _params(W, b), A_prev.transpose(0, 3, 1, 2), {})
    return z.transpose(0, 2, 3, 1)


def conv_backward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, dZ: np.ndarray, stride: Strides, pad: int
) -> ConvGrads:
    """``{"dA_prev", "dW", "db"}`` of the notebook's ``conv_backward`` (``db`` of shape ``(1, 1, 1, n_C)``).

    ``stride`` is one number or ``(vertical, horizontal)``.
    """
    layer, params = _layer(W, stride, pad), _params(W, b)
    _, cache, _ = conv.forward(layer, params, A_prev.transpose(0, 3, 1, 2), {})
    dx, grads = conv.backward(layer, params, cache, dZ.transpose(0, 3, 1, 2))
    return {
        "dA_prev": dx.transpose(0, 2, 3, 1),
        "dW": grads["W"].transpose(2, 3, 1, 0),
        "db": grads["b"].reshape(1, 1, 1, -1),
    }


def _pool_layer(f: int, stride: Strides, mode: str) -> pool.MaxPool2d | pool.AvgPool2d:
    kind = pool.MaxPool2d if mode == "max" else pool.AvgPool2d
    return kind(kernel=(f, f), stride=_pair(stride))


def pool_forward(A_prev: np.ndarray, f: int, stride: int, mode: str) -> np.ndarray:
    """``A (m, n_H, n_W, n_C)`` of ``mode`` ``"max"`` or ``"average"`` pooling (no padding)."""
    layer = _pool_layer(f, stride, mode)
    run = pool.max_forward if mode == "max" else pool.avg_forward
    out, _, _ = run(layer, {}, A_prev.transpose(0, 3, 1, 2), {})
    return out.transpose(0, 2, 3, 1)


def pool_backward(A_prev: np.ndarray, dA: np.ndarray, f: int, stride: Strides, mode: str) -> np.ndarray:
    """``dA_prev`` (the shape of ``A_prev``) from the upstream ``dA`` (the shape of the pooled output)."""
    layer = _pool_layer(f, stride, mode)
    forward, backward = (
        (pool.max_forward, pool.max_backward) if mode == "max" else (pool.avg_forward, pool.avg_backward)
    )
    _, cache, _ = forward(layer, {}, A_prev.transpose(0, 3, 1, 2), {})
    dx, _ = backward(layer, {}, cache, dA.transpose(0, 3, 1, 2))
    return dx.transpose(0, 2, 3, 1)


def _stride_ignored(dZ: np.ndarray, stride: int, room: tuple[int, int], backward) -> tuple:
    """What ``backward(upstream, strides)`` gives when the windows ignore the stride on one axis or both.

    ``room`` is the padded input's height and width less ``f − 1`` (the stride-1 output size);
    ``dZ`` goes to the first windows of the wider stride-1 output, zeros elsewhere.
    """
    results = []
    for strides in ((1, 1), (1, stride), (stride, 1)):
        size = tuple(r if s == 1 else n for r, s, n in zip(room, strides, dZ.shape[1:3], strict=True))
        wide = np.zeros((dZ.shape[0], *size, dZ.shape[3]))
        wide[:, : dZ.shape[1], : dZ.shape[2]] = dZ
        results.append(backward(wide, strides))
    return tuple(results)


def conv_backward_bugs(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, dZ: np.ndarray, stride: int, pad: int
) -> dict[str, dict[str, tuple[np.ndarray, ...]]]:
    """What the classic ``conv_backward`` bugs return: ``{pattern: {quantity: (values, …)}}``.

    * ``padding_not_removed``: ``dA_prev`` with the padding still on (``da_prev_pad`` returned);
    * ``conv_padding_cropped_wrong``: the padding cut off one end only (``[:n_H_prev, :n_W_prev]``);
    * ``backward_stride_ignored``: the windows at ``h`` or ``w`` (or both) instead of ``h·stride``, ``w·stride``;
    * ``dW_not_accumulated``: ``dW`` of the last example (reset per example) or of the last window (``=``);
    * ``db_not_summed``: ``db`` of the last example, of the last window, or summed over some axes only.
    """
    f, (n_H, n_W) = W.shape[0], dZ.shape[1:3]
    n_H_prev, n_W_prev = A_prev.shape[1:3]
    padded = conv_backward(zero_pad(A_prev, pad), W, b, dZ, stride, 0)["dA_prev"]
    bugs: dict[str, dict[str, tuple[np.ndarray, ...]]] = {
        "padding_not_removed": {"dA_prev": (padded,)},
        "conv_padding_cropped_wrong": {"dA_prev": (padded[:, :n_H_prev, :n_W_prev],)},
    }
    if stride > 1:
        room = (n_H_prev + 2 * pad - f + 1, n_W_prev + 2 * pad - f + 1)
        ignored = _stride_ignored(dZ, stride, room, lambda up, strides: conv_backward(A_prev, W, b, up, strides, pad))
        bugs["backward_stride_ignored"] = {key: tuple(g[key] for g in ignored) for key in ("dA_prev", "dW")}
    last_example = conv_backward(A_prev[-1:], W, b, dZ[-1:], stride, pad)
    top, left = (n_H - 1) * stride, (n_W - 1) * stride
    last_window = zero_pad(A_prev[-1:], pad)[0, top : top + f, left : left + f, :, None] * dZ[-1, -1, -1]
    bugs["dW_not_accumulated"] = {"dW": (last_example["dW"], last_window)}
    bugs["db_not_summed"] = {
        "db": (
            last_example["db"],
            dZ[-1, -1, -1].reshape(1, 1, 1, -1),
            dZ.sum(axis=(1, 2), keepdims=True),
            dZ.sum(axis=0, keepdims=True),
        )
    }
    return bugs


def pool_backward_bugs(
    A_prev: np.ndarray, dA: np.ndarray, f: int, stride: int, mode: str
) -> dict[str, tuple[np.ndarray, ...]]:
    """What the classic ``pool_backward`` bugs return for ``dA_prev``: ``{pattern: (values, …)}``.

    ``pool_grad_everywhere`` (max) and ``pool_average_not_divided`` (average) both spread each
    ``dA`` entry undivided over its whole window; ``backward_stride_ignored`` uses the windows
    at ``h`` or ``w`` (or both) instead of ``h·stride``, ``w·stride``.
    """
    spread = pool_backward(A_prev, dA, f, stride, "average") * (f * f)
    bugs = {"pool_grad_everywhere" if mode == "max" else "pool_average_not_divided": (spread,)}
    if stride > 1:
        room = (A_prev.shape[1] - f + 1, A_prev.shape[2] - f + 1)
        bugs["backward_stride_ignored"] = _stride_ignored(
            dA, stride, room, lambda up, strides: pool_backward(A_prev, up, f, strides, mode)
        )
    return bugs
