"""The convolution layer of the project, CS231n style: ``conv_forward(x, w, b, conv_param) -> (out, cache)``.

``x (N, C, H, W)``, ``w (F, C, HH, WW)``, ``b (F,)``, ``conv_param = {"stride": 1, "pad": p}``; the
forward pass is a correlation (``w`` is not flipped)::

    out[n, f, i, j] = b[f] + Σ_{c, p, q} x_pad[n, c, i + p, j + q] · w[f, c, p, q]

The backward passes (``backward_*.py``) compute ``dx`` as the "full" convolution of ``dout`` with
the kernels, for which this module has the loop, and ``dw`` as the correlation of ``x_pad`` with
``dout``. This project only uses stride 1.
"""

from __future__ import annotations

import numpy as np


def pad_images(x: np.ndarray, pad: int) -> np.ndarray:
    """Zero padding of ``pad`` pixels on both sides of the two spatial axes."""
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict) -> tuple:
    """``(out, cache)``, ``out (N, F, H + 2p − HH + 1, W + 2p − WW + 1)``."""
    if conv_param["stride"] != 1:
        raise ValueError("this project's convolutions have stride 1")
    x_pad = pad_images(x, conv_param["pad"])
    _, _, HH, WW = w.shape
    Ho, Wo = x_pad.shape[2] - HH + 1, x_pad.shape[3] - WW + 1
    out = np.zeros((x.shape[0], w.shape[0], Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = np.einsum("nchw,fchw->nf", x_pad[:, :, i : i + HH, j : j + WW], w) + b
    return out, (x, w, b, conv_param)


def full_convolution(dout: np.ndarray, kernels: np.ndarray, padded_shape: tuple[int, ...]) -> np.ndarray:
    """Slide ``kernels (F, C, HH, WW)`` over ``dout`` padded by ``HH − 1``, ``WW − 1``: one ``(N, C)`` sum per pixel."""
    _, _, HH, WW = kernels.shape
    wide = np.pad(dout, ((0, 0), (0, 0), (HH - 1, HH - 1), (WW - 1, WW - 1)))
    result = np.zeros(padded_shape)
    for i in range(padded_shape[2]):
        for j in range(padded_shape[3]):
            result[:, :, i, j] = np.einsum("nfhw,fchw->nc", wide[:, :, i : i + HH, j : j + WW], kernels)
    return result


def weight_gradient(x_pad: np.ndarray, dout: np.ndarray, HH: int, WW: int) -> np.ndarray:
    """``dw[f, c, p, q] = Σ_{n, i, j} dout[n, f, i, j] · x_pad[n, c, i + p, j + q]``."""
    Ho, Wo = dout.shape[2:]
    dw = np.zeros((dout.shape[1], x_pad.shape[1], HH, WW))
    for p in range(HH):
        for q in range(WW):
            dw[:, :, p, q] = np.einsum("nfij,ncij->fc", dout, x_pad[:, :, p : p + Ho, q : q + Wo])
    return dw
