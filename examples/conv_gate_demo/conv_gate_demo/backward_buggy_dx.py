"""A wrong backward pass: ``dx`` slides the kernels over ``dout`` as they are, not rotated by 180°."""

from __future__ import annotations

import numpy as np

from conv_gate_demo.conv import full_convolution, pad_images, weight_gradient


def conv_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dw, db)`` for ``dout (N, F, Ho, Wo)``; ``dx`` is wrong for any kernel that is not symmetric."""
    x, w, _, conv_param = cache
    pad, (H, W), (HH, WW) = conv_param["pad"], x.shape[2:], w.shape[2:]
    x_pad = pad_images(x, pad)
    dx_pad = full_convolution(dout, w, x_pad.shape)  # the bug: the forward pass correlates, so w needs rotating
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    return dx, weight_gradient(x_pad, dout, HH, WW), dout.sum(axis=(0, 2, 3))
