"""The finite-difference checker's own stacked forward of the sequence layers (see :mod:`oracle.fd_layers`
for the stacking convention: ``x (S, N, T, …)``, parameters ``(S', *shape)``, ``S'`` 1 or ``S``).

Written from the definitions, apart from refbp's layers: one step at a time, the LSTM's blocks
looked up by the letters of its ``gate_order``, ``c_{−1} = 0``, ``h_{−1} = h0`` for every example.

``rnn`` and ``lstm`` take an optional ``at_step(t, kind, value) -> value``, called with every
step's ``h_t`` (``"h"``) and the LSTM's ``c_t`` (``"c"``, before ``h_t`` is formed from it): it may
record the value or replace it, and the recursion continues from what it returns. That is how
:mod:`oracle.fd_steps` perturbs one step's state inside the unrolled forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

StepHook = Callable[[int, str, np.ndarray], np.ndarray]


def _logistic(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def embedding(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    idx = np.rint(x).astype(np.int64)  # a perturbed index rounds back to itself: ∂L/∂x is 0
    W = p["W"]
    if W.shape[0] == 1:
        return W[0][idx], None
    return W[np.arange(W.shape[0])[:, None, None], idx], None


def temporal_affine(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    return np.matmul(x, p["W"][:, None]) + p["b"][:, None, None, :], None


def last_step(layer: Any, p: dict, x: np.ndarray, buffers: dict) -> tuple:
    return x[:, :, -1], None


def _pre(p: dict, x_t: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.matmul(x_t, p["Wx"]) + np.matmul(h, p["Wh"]) + p["b"][:, None, :]


def _same(t: int, kind: str, value: np.ndarray) -> np.ndarray:
    return value


def rnn(layer: Any, p: dict, x: np.ndarray, buffers: dict, at_step: StepHook = _same) -> tuple:
    h = p["h0"][:, None, :]
    states = []
    for t in range(x.shape[2]):
        h = at_step(t, "h", np.tanh(_pre(p, x[:, :, t], h)))
        states.append(h)
    return np.stack(np.broadcast_arrays(*states), axis=2), None


def lstm(layer: Any, p: dict, x: np.ndarray, buffers: dict, at_step: StepHook = _same) -> tuple:
    H = layer.hidden
    h = p["h0"][:, None, :]
    c = np.zeros_like(h)
    states = []
    for t in range(x.shape[2]):
        a = _pre(p, x[:, :, t], h)
        block = {gate: a[..., k * H : (k + 1) * H] for k, gate in enumerate(layer.gate_order)}
        c = at_step(t, "c", _logistic(block["f"]) * c + _logistic(block["i"]) * np.tanh(block["g"]))
        h = at_step(t, "h", _logistic(block["o"]) * np.tanh(c))
        states.append(h)
    return np.stack(np.broadcast_arrays(*states), axis=2), None


FD_RECURRENT = {
    "embedding": embedding,
    "rnn": rnn,
    "lstm": lstm,
    "temporal_affine": temporal_affine,
    "last_step": last_step,
}
"""The stacked forward of every sequence layer type, by its registry name."""
