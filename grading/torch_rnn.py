"""Torch-autograd twins of the ``rnn`` interface's backward functions (see :mod:`grading.torch_confirm`).

Written from the definitions with ``torch.tanh``, ``torch.sigmoid`` and matmuls; the LSTM's
columns in CS231n's gate order ``i, f, o, g``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch


def _leaves(inputs: Mapping[str, np.ndarray], names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {n: torch.tensor(np.asarray(inputs[n], dtype=np.float64), requires_grad=True) for n in names}


def _grads(output: torch.Tensor, upstream: np.ndarray, leaves: dict[str, torch.Tensor], rename: dict) -> dict:
    found = torch.autograd.grad(output, list(leaves.values()), torch.tensor(upstream), allow_unused=True)
    return {rename.get(n, "d" + n): g.numpy() for n, g in zip(leaves, found, strict=True) if g is not None}


def _rnn_step(x, h, p):
    return torch.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"])


def _lstm_step(x, h, c, p):
    i, f, o, g = torch.chunk(x @ p["Wx"] + h @ p["Wh"] + p["b"], 4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def rnn_step_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("x", "prev_h", "Wx", "Wh", "b"))
    return _grads(_rnn_step(p["x"], p["prev_h"], p), inputs["dnext_h"], p, {})


def _sequence(step, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("x", "h0", "Wx", "Wh", "b"))
    h, c, states = p["h0"], torch.zeros_like(p["h0"]), []
    for t in range(p["x"].shape[1]):
        h, c = step(p["x"][:, t], h, c, p)
        states.append(h)
    return _grads(torch.stack(states, dim=1), inputs["dh"], p, {})


def rnn_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return _sequence(lambda x, h, c, p: (_rnn_step(x, h, p), c), inputs)


def lstm_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return _sequence(_lstm_step, inputs)


def lstm_step_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("x", "prev_h", "prev_c", "Wx", "Wh", "b"))
    h, c = _lstm_step(p["x"], p["prev_h"], p["prev_c"], p)
    grads = torch.autograd.grad(
        (h, c), list(p.values()), (torch.tensor(inputs["dnext_h"]), torch.tensor(inputs["dnext_c"]))
    )
    return {"d" + n: g.numpy() for n, g in zip(p, grads, strict=True)}


def word_embedding_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("W",))
    out = torch.nn.functional.embedding(torch.tensor(inputs["x"], dtype=torch.int64), p["W"])
    return _grads(out, inputs["dout"], p, {})


def temporal_affine_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("x", "w", "b"))
    return _grads(torch.einsum("ntd,dm->ntm", p["x"], p["w"]) + p["b"], inputs["dout"], p, {})


def temporal_softmax_loss(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    p = _leaves(inputs, ("x",))
    x = p["x"]
    per_step = torch.nn.functional.cross_entropy(
        x.reshape(-1, x.shape[-1]), torch.tensor(inputs["y"], dtype=torch.int64).reshape(-1), reduction="none"
    )
    loss = (per_step * torch.tensor(inputs["mask"], dtype=x.dtype).reshape(-1)).sum() / x.shape[0]
    (dx,) = torch.autograd.grad(loss, [x])
    return {"loss": loss.detach().numpy(), "dx": dx.numpy()}


TWINS = {
    "rnn_step_backward": rnn_step_backward,
    "rnn_backward": rnn_backward,
    "lstm_step_backward": lstm_step_backward,
    "lstm_backward": lstm_backward,
    "word_embedding_backward": word_embedding_backward,
    "temporal_affine_backward": temporal_affine_backward,
    "temporal_softmax_loss": temporal_softmax_loss,
}
"""The twin of each ``rnn`` interface check, by the check's ``twin`` name."""
