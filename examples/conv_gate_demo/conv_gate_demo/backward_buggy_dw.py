"""A wrong backward pass: ``dw`` is rotated by 180°, as if the forward pass had been a true convolution."""

from __future__ import annotations

import numpy as np

from conv_gate_demo.conv import full_convolution, pad_images, weight_gradient


def conv_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dw, db)`` for ``dout (N, F, Ho, Wo)``; ``dw`` is wrong for any kernel size above 1."""
    x, w, _, conv_param = cache
    pad, (H, W), (HH, WW) = conv_param["pad"], x.shape[2:], w.shape[2:]
    x_pad = pad_images(x, pad)
    dx_pad = full_convolution(dout, w[:, :, ::-1, ::-1], x_pad.shape)
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    dw = weight_gradient(x_pad, dout, HH, WW)[:, :, ::-1, ::-1]  # the bug: the forward pass never flipped w
    return dx, dw, dout.sum(axis=(0, 2, 3))
