"""Hostile: affine_forward never returns; relu_forward is correct and must still be graded."""

import numpy as np


def affine_forward(x, w, b):
    while True:
        pass


def relu_forward(x):
    return np.maximum(x, 0), x
