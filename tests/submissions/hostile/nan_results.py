"""Hostile: NaN and infinity instead of numbers."""

import numpy as np


def relu_forward(x):
    return np.full_like(x, np.nan), x


def tanh_forward(x):
    out = np.tanh(x)
    out[0, 0] = np.inf
    return out, x
