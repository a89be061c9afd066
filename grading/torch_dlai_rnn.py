"""Torch twins of the ``dlai-rnn`` interface's checks (see :mod:`grading.torch_confirm`).

Written from the notebook's forward equations in its own column-major layout (``(n, m)``
states, ``(n, m, T_x)`` sequences, the LSTM's four matrices acting on ``[a_prev; xt]``); every
gradient comes from autograd, none from a hand-written derivative.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

Tensors = dict[str, torch.Tensor]


def _leaves(inputs: Mapping[str, np.ndarray], names: tuple[str, ...]) -> Tensors:
    return {n: torch.tensor(np.asarray(inputs[n], dtype=np.float64), requires_grad=True) for n in names}


def _rnn_cell(xt: torch.Tensor, a_prev: torch.Tensor, p: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
    a_next = torch.tanh(p["Wax"] @ xt + p["Waa"] @ a_prev + p["ba"])
    return a_next, torch.softmax(p["Wya"] @ a_next + p["by"], dim=0)


def _lstm_cell(xt, a_prev, c_prev, p: Tensors) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    concat = torch.cat([a_prev, xt], dim=0)
    forget = torch.sigmoid(p["Wf"] @ concat + p["bf"])
    update = torch.sigmoid(p["Wi"] @ concat + p["bi"])
    candidate = torch.tanh(p["Wc"] @ concat + p["bc"])
    c_next = forget * c_prev + update * candidate
    a_next = torch.sigmoid(p["Wo"] @ concat + p["bo"]) * torch.tanh(c_next)
    return a_next, c_next, torch.softmax(p["Wy"] @ a_next + p["by"], dim=0)


_RNN = ("Wax", "Waa", "Wya", "ba", "by")
_LSTM = ("Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo", "Wy", "by")


def _unroll(inputs: Mapping[str, np.ndarray], names: tuple[str, ...], lstm: bool) -> tuple[Tensors, dict]:
    """The leaves and ``{"a", "y", "c"}`` over the whole sequence (``"c"`` for the LSTM only), each ``(n, m, T_x)``."""
    p = _leaves(inputs, ("x", "a0", *names))
    a, c, out = p["a0"], torch.zeros_like(p["a0"]), {"a": [], "y": [], "c": []}
    for t in range(p["x"].shape[2]):
        if lstm:
            a, c, y = _lstm_cell(p["x"][:, :, t], a, c, p)
        else:
            a, y = _rnn_cell(p["x"][:, :, t], a, p)
        out["a"].append(a)
        out["y"].append(y)
        out["c"].append(c)
    return p, {key: torch.stack(values, dim=2) for key, values in out.items()}


def _gradients(outputs: tuple, upstream: tuple, leaves: Tensors) -> dict[str, np.ndarray]:
    """``d{leaf}`` of ``Σ output·upstream`` for every leaf the outputs depend on."""
    upstream = tuple(torch.tensor(u) for u in upstream)
    grads = torch.autograd.grad(outputs, list(leaves.values()), upstream, allow_unused=True)
    return {"d" + name: g.numpy() for name, g in zip(leaves, grads, strict=True) if g is not None}


def _plain(values: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {key: value.detach().numpy() for key, value in values.items()}


def rnn_cell_forward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("xt", "a_prev", *_RNN))
    a_next, yt_pred = _rnn_cell(p["xt"], p["a_prev"], p)
    return _plain({"a_next": a_next, "yt_pred": yt_pred})


def rnn_forward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    _, out = _unroll(inputs, _RNN, lstm=False)
    return _plain({"a": out["a"], "y_pred": out["y"]})


def rnn_cell_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("xt", "a_prev", "Wax", "Waa", "ba"))
    a_next = torch.tanh(p["Wax"] @ p["xt"] + p["Waa"] @ p["a_prev"] + p["ba"])
    return _gradients((a_next,), (inputs["da_next"],), p)


def rnn_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p, out = _unroll(inputs, _RNN, lstm=False)
    return _gradients((out["a"],), (inputs["da"],), p)


def lstm_cell_forward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("xt", "a_prev", "c_prev", *_LSTM))
    a_next, c_next, yt_pred = _lstm_cell(p["xt"], p["a_prev"], p["c_prev"], p)
    return _plain({"a_next": a_next, "c_next": c_next, "yt_pred": yt_pred})


def lstm_forward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    _, out = _unroll(inputs, _LSTM, lstm=True)
    return _plain(out)


def lstm_cell_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("xt", "a_prev", "c_prev", *_LSTM))
    a_next, c_next, _ = _lstm_cell(p["xt"], p["a_prev"], p["c_prev"], p)
    return _gradients((a_next, c_next), (inputs["da_next"], inputs["dc_next"]), p)


def lstm_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p, out = _unroll(inputs, _LSTM, lstm=True)
    return _gradients((out["a"],), (inputs["da"],), p)


TWINS: dict[str, Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]] = {
    "dlai_rnn_cell_forward": rnn_cell_forward,
    "dlai_rnn_forward": rnn_forward,
    "dlai_rnn_cell_backward": rnn_cell_backward,
    "dlai_rnn_backward": rnn_backward,
    "dlai_lstm_cell_forward": lstm_cell_forward,
    "dlai_lstm_forward": lstm_forward,
    "dlai_lstm_cell_backward": lstm_cell_backward,
    "dlai_lstm_backward": lstm_backward,
}
"""The twin of each ``dlai-rnn`` check, by the check's ``twin`` name."""
