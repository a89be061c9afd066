"""The naive convolution and max-pooling functions of CS231n's second assignment, checks for the ``cnn`` interface.

Conventions (NCHW, CS231n's names):

* ``conv_forward_naive(x, w, b, conv_param) -> (out, cache)``: ``x (N, C, H, W)``, ``w (F, C, HH, WW)``,
  ``b (F,)``, ``conv_param = {"stride": s, "pad": p}`` (zero padding on both sides of ``H`` and ``W``);
  ``out[n, f, i, j] = b[f] + Σ x_pad[n, :, i·s : i·s + HH, j·s : j·s + WW] · w[f]`` — a correlation, the
  kernel is not flipped; ``out (N, F, 1 + (H + 2p − HH)/s, 1 + (W + 2p − WW)/s)``;
  ``conv_backward_naive(dout, cache) -> (dx, dw, db)`` with ``dx`` in ``x``'s shape (padding removed);
* ``max_pool_forward_naive(x, pool_param) -> (out, cache)``, ``pool_param`` with ``pool_height``,
  ``pool_width``, ``stride``; ``max_pool_backward_naive(dout, cache) -> dx``: each ``dout`` entry goes
  to the position of its window's maximum only.

The references are refbp's convolution and pooling (:mod:`refbp.layers.conv`, :mod:`refbp.layers.pool`);
:mod:`grading.torch_cnn` recomputes the gradients with ``torch.nn.functional``. The backward checks
carry what the classic bugs return: a kernel flipped once too often (or not at all), the padding
left on ``dx``, and max pooling's gradient sent to every position of the window.
"""

from __future__ import annotations

import numpy as np

from grading.plan import Expect, FunctionCheck, Hints, arg, literal, returned
from grading.sandbox import Call
from refbp.layers import conv, pool


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 13, index])


def conv_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, dout: np.ndarray, stride: int, pad: int) -> dict:
    """``out``, ``dx``, ``dw``, ``db`` of the correlation, and the padded ``dx_pad`` (for the padding bug)."""
    layer = conv.Conv2d(filters=w.shape[0], kernel=w.shape[2:], stride=(stride, stride), padding=(pad, pad))
    params = {"W": w, "b": b}
    out, cache, _ = conv.forward(layer, params, x, {})
    dx, grads = conv.backward(layer, params, cache, dout)
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    unpadded = conv.Conv2d(filters=w.shape[0], kernel=w.shape[2:], stride=(stride, stride))
    dx_pad, _ = conv.backward(unpadded, params, conv.forward(unpadded, params, x_pad, {})[1], dout)
    return {"out": out, "dx": dx, "dw": grads["W"], "db": grads["b"], "dx_pad": dx_pad}


def _conv_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 30)
    stride, pad, k = int(rng.integers(1, 3)), 1, 3
    n, c, f = int(rng.integers(2, 4)), int(rng.integers(2, 4)), int(rng.integers(2, 4))
    h = k - 2 * pad + stride * int(rng.integers(2, 4))
    width = k - 2 * pad + stride * int(rng.integers(2, 4))
    x = rng.standard_normal((n, c, h, width))
    w = rng.standard_normal((f, c, k, k)) * 0.5
    b = rng.standard_normal(f) * 0.3
    out_shape = (n, f, 1 + (h + 2 * pad - k) // stride, 1 + (width + 2 * pad - k) // stride)
    dout = rng.standard_normal(out_shape)
    ref = conv_reference(x, w, b, dout, stride, pad)
    flipped = conv_reference(x, w[:, :, ::-1, ::-1], b, dout, stride, pad)
    inputs = {"x": x, "w": w, "b": b}
    param = {"dict": {"stride": literal(stride), "pad": literal(pad)}}
    call = Call("conv_forward_naive", (arg("x"), arg("w"), arg("b"), param))
    dx_hints = Hints(
        batch=n,
        batch_axis=0,
        alternatives={"kernel_flipped": (flipped["dx"],), "padding_not_removed": (ref["dx_pad"],)},
    )
    dw_hints = Hints(batch=n, alternatives={"kernel_flipped": (ref["dw"][:, :, ::-1, ::-1],)})
    return [
        FunctionCheck("conv_forward_naive", "conv_forward_naive", (call,), inputs,
                      (Expect("out", 0, (0,), ref["out"],
                              Hints(batch=n, batch_axis=0, alternatives={"kernel_flipped": (flipped["out"],)})),),
                      tuple(inputs)),
        FunctionCheck(
            "conv_backward_naive", "conv_backward_naive",
            (call, Call("conv_backward_naive", (arg("dout"), returned(0, 1)))), {**inputs, "dout": dout},
            (Expect("dx", 1, (0,), ref["dx"], dx_hints), Expect("dw", 1, (1,), ref["dw"], dw_hints),
             Expect("db", 1, (2,), ref["db"], Hints(batch=n, bias_sum=True))),
            (*inputs, "dout"), twin=f"conv_backward:{stride},{pad}",
        ),
    ]  # fmt: skip


def pool_reference(x: np.ndarray, dout: np.ndarray, size: int, stride: int) -> dict:
    """``out``, ``dx`` of max pooling, and ``dx`` with every window position getting ``dout`` (the routing bug)."""
    layer = pool.MaxPool2d(kernel=(size, size), stride=(stride, stride))
    out, cache, _ = pool.max_forward(layer, {}, x, {})
    dx, _ = pool.max_backward(layer, {}, cache, dout)
    everywhere = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + size), slice(j * stride, j * stride + size)
            everywhere[:, :, rows, cols] += dout[:, :, i, j, None, None]
    return {"out": out, "dx": dx, "everywhere": everywhere}


def _pool_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 31)
    size, stride = 2, int(rng.integers(1, 3))
    n, c = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    h, width = size + stride * int(rng.integers(1, 3)), size + stride * int(rng.integers(1, 4))
    x = rng.permutation(n * c * h * width).reshape(n, c, h, width) / 7.0 - 3.0  # distinct: no ties for the max
    out_shape = (n, c, 1 + (h - size) // stride, 1 + (width - size) // stride)
    dout = rng.standard_normal(out_shape)
    ref = pool_reference(x, dout, size, stride)
    param = {"dict": {"pool_height": literal(size), "pool_width": literal(size), "stride": literal(stride)}}
    call = Call("max_pool_forward_naive", (arg("x"), param))
    hints = Hints(batch=n, batch_axis=0, alternatives={"pool_grad_everywhere": (ref["everywhere"],)})
    return [
        FunctionCheck("max_pool_forward_naive", "max_pool_forward_naive", (call,), {"x": x},
                      (Expect("out", 0, (0,), ref["out"], Hints(batch=n, batch_axis=0)),), ("x",)),
        FunctionCheck(
            "max_pool_backward_naive", "max_pool_backward_naive",
            (call, Call("max_pool_backward_naive", (arg("dout"), returned(0, 1)))), {"x": x, "dout": dout},
            (Expect("dx", 1, (), ref["dx"], hints),), ("x", "dout"), twin=f"max_pool_backward:{size},{stride}",
        ),
    ]  # fmt: skip


def build_conv(seed: int) -> list[FunctionCheck]:
    """The convolution and max-pooling checks for ``seed``."""
    return [*_conv_checks(seed), *_pool_checks(seed)]
