"""The correct backward pass: the forward pass correlates, so the full convolution for ``dx`` rotates w once."""

from __future__ import annotations

import numpy as np

from conv_gate_demo.conv import full_convolution, pad_images, weight_gradient


def conv_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dw, db)`` for ``dout (N, F, Ho, Wo)``."""
    x, w, _, conv_param = cache
    pad, (H, W), (HH, WW) = conv_param["pad"], x.shape[2:], w.shape[2:]
    x_pad = pad_images(x, pad)
    dx_pad = full_convolution(dout, w[:, :, ::-1, ::-1], x_pad.shape)  # each kernel rotated by 180°
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    return dx, weight_gradient(x_pad, dout, HH, WW), dout.sum(axis=(0, 2, 3))
