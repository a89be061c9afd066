"""Hostile: returns things that are not arrays, or not enough of them."""

import numpy as np


def affine_forward(x, w, b):
    return None


def affine_backward(dout, cache):
    return "dx", [1, 2], {"db": 3}


def relu_forward(x):
    return np.array(["a", "b"]), x


def relu_backward(dout, cache):
    return np.array([object(), object()])


def sigmoid_forward(x):
    return (1 / (1 + np.exp(-x)),)


def sigmoid_backward(dout, cache):
    return dout


def tanh_forward(x):
    return [list(row) for row in np.tanh(x)], x


def softmax_loss(x, y):
    return {"loss": 1.0}
