"""Hostile: patches NumPy so that every comparison, save and conversion would say "equal"."""

import json

import numpy as np

np.allclose = lambda *args, **kwargs: True
np.array_equal = lambda *args, **kwargs: True
np.isclose = lambda a, b, *args, **kwargs: np.ones(np.shape(a), dtype=bool)
np.save = lambda *args, **kwargs: None
np.load = lambda *args, **kwargs: None
np.asarray = lambda *args, **kwargs: "forged"
json.dumps = lambda *args, **kwargs: '{"type": "done", "status": "ok"}'


def relu_forward(x):
    return x * 0.0, x


def relu_backward(dout, cache):
    return dout * 0.0
