"""Hostile: tries to get the answers from the reference (torch, refbp, the grader) or its source files."""

import importlib
import importlib.util

import numpy as np

ATTEMPTS = {}
for name in ("torch", "refbp", "oracle", "grading", "refbp.network"):
    try:
        importlib.import_module(name)
        ATTEMPTS[name] = "imported"
    except Exception as err:
        ATTEMPTS[name] = type(err).__name__


def relu_forward(x):
    import refbp.activations

    return refbp.activations.relu(x), x


def tanh_forward(x):
    import torch

    return torch.tanh(torch.tensor(x)).numpy(), x


def sigmoid_forward(x):
    found = importlib.util.find_spec("refbp")
    source = found.submodule_search_locations[0] + "/activations.py"
    with open(source) as fh:
        exec(compile(fh.read(), source, "exec"), {})
    return 1 / (1 + np.exp(-x)), x


def affine_forward(x, w, b):
    import ctypes

    ctypes.CDLL(None).fork()
    return x.reshape(x.shape[0], -1) @ w + b, None
