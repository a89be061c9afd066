"""Twin of ``embedding``, ``rnn``, ``lstm``, ``temporal_affine`` and ``last_step``: explicit loops over
time with ``torch.tanh`` / ``torch.sigmoid`` and matmuls, autograd doing backprop through time.

Written from the definitions (``h_t = tanh(x_t Wx + h_{t−1} Wh + b)``; the LSTM's four column
blocks in the layer's ``gate_order``, ``c_{−1} = 0``), not from refbp's layers.

``rnn`` and ``lstm`` take an optional ``steps`` dict: given one, they ``retain_grad()`` every
step's ``h_t`` (and ``c_t``) and list them under ``"h"`` (``"c"``), so that after the backward
pass each tensor's ``.grad`` is the total ``∂L/∂h_t`` (``∂L/∂c_t``), every path through later
steps included: autograd's own per-step gradients, apart from any hand-written recursion.
``h0`` may be one state per example ``(N, H)``, and an LSTM may be given ``c0`` (else 0): one step
of the layer gate starts from a random ``prev_h``, ``prev_c``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional


def embedding(layer: Any, params: dict[str, torch.Tensor], x: torch.Tensor, buffers: dict) -> tuple:
    """``W[x]`` for indices ``x (N, T)`` (held as floats); the index tensor takes no gradient."""
    return functional.embedding(torch.round(x.detach()).long(), params["W"]), {}


def temporal_affine(layer: Any, params: dict[str, torch.Tensor], x: torch.Tensor, buffers: dict) -> tuple:
    return torch.einsum("ntd,dm->ntm", x, params["W"]) + params["b"], {}


def last_step(layer: Any, params: dict, x: torch.Tensor, buffers: dict) -> tuple:
    return x.select(1, x.shape[1] - 1), {}


def _keep(steps: dict | None, kind: str, tensor: torch.Tensor) -> None:
    if steps is not None and tensor.requires_grad:
        tensor.retain_grad()
        steps.setdefault(kind, []).append(tensor)


def rnn(
    layer: Any, params: dict[str, torch.Tensor], x: torch.Tensor, buffers: dict, steps: dict | None = None
) -> tuple:
    h = params["h0"].expand(x.shape[0], -1)
    states = []
    for t in range(x.shape[1]):
        h = torch.tanh(torch.mm(x[:, t], params["Wx"]) + torch.mm(h, params["Wh"]) + params["b"])
        _keep(steps, "h", h)
        states.append(h)
    return torch.stack(states, dim=1), {}


def lstm(
    layer: Any, params: dict[str, torch.Tensor], x: torch.Tensor, buffers: dict, steps: dict | None = None
) -> tuple:
    h = params["h0"].expand(x.shape[0], -1)
    c = params["c0"].expand(x.shape[0], -1) if "c0" in params else torch.zeros_like(h)
    states = []
    for t in range(x.shape[1]):
        blocks = torch.chunk(torch.mm(x[:, t], params["Wx"]) + torch.mm(h, params["Wh"]) + params["b"], 4, dim=1)
        gate = dict(zip(layer.gate_order, blocks, strict=True))
        c = torch.sigmoid(gate["f"]) * c + torch.sigmoid(gate["i"]) * torch.tanh(gate["g"])
        h = torch.sigmoid(gate["o"]) * torch.tanh(c)
        _keep(steps, "c", c)
        _keep(steps, "h", h)
        states.append(h)
    return torch.stack(states, dim=1), {}
