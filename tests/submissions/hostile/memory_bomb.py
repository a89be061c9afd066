"""Hostile: allocations far beyond the memory limit, by NumPy and by plain Python."""

import numpy as np


def affine_forward(x, w, b):
    huge = np.ones((1 << 37,))
    return huge, None


def relu_forward(x):
    blocks = []
    while True:
        blocks.append(bytearray(1 << 26))


def tanh_forward(x):
    return np.tanh(x), x
