"""One time step of a recurrent layer in the layer gate: ``layer="rnn_step"``, ``layer="lstm_step"``.

Every layer type whose registry entry declares per-step gradients (:mod:`refbp.layers.registry`)
has a step form named ``<type>_step``: one step of the recursion with its own inputs, ``x (N, D)``,
``prev_h (N, H)`` (and the LSTM's ``prev_c (N, H)``), random like the parameters ``Wx``, ``Wh``,
``b``, and the gradients arriving from later steps, ``dnext_h`` (and ``dnext_c``), random too.
Compared quantities: ``next_h`` (``next_c``), ``dx``, ``dprev_h`` (``dprev_c``), ``dWx``,
``dWh``, ``db``; the reference is the torch twin's loop (:mod:`oracle.twin.recurrent`) run for
one step from ``prev_h``, ``prev_c``, gradients by autograd of
``Σ next_h ⊙ dnext_h + Σ next_c ⊙ dnext_c``.

Styles:

``cs231n`` (the third assignment's ``rnn_layers.py``)::

    next_h, cache = rnn_step_forward(x, prev_h, Wx, Wh, b)
    dx, dprev_h, dWx, dWh, db = rnn_step_backward(dnext_h, cache)
    next_h, next_c, cache = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)        # gates i, f, o, g
    dx, dprev_h, dprev_c, dWx, dWh, db = lstm_step_backward(dnext_h, dnext_c, cache)

``plain`` (the layer's fields as keywords, as for every plain layer: ``hidden``, ``gate_order``)::

    next_h = forward(x, prev_h, Wx, Wh, b, **fields)
    dx, dprev_h, dWx, dWh, db = backward(dnext_h, x, prev_h, Wx, Wh, b, **fields)
    next_h, next_c = forward(x, prev_h, prev_c, Wx, Wh, b, **fields)
    dx, dprev_h, dprev_c, dWx, dWh, db = backward(dnext_h, dnext_c, x, prev_h, prev_c, Wx, Wh, b, **fields)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from oracle.twin.sequential import TWINS
from refbp.layers.registry import LAYER_TYPES

#: ``<type>_step`` → ``<type>`` for every layer type with per-step gradients.
STEP_LAYERS = {f"{name}_step": name for name, entry in LAYER_TYPES.items() if entry.steps}
_SKIP_FIELDS = ("type",)


def state_kinds(layer: Any) -> tuple[str, ...]:
    """The states one step carries, in call order: ``("h",)`` for an RNN, ``("h", "c")`` for an LSTM."""
    return tuple(LAYER_TYPES[layer.type].steps)


def materialize_step(layer: Any, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, dict, dict, dict]:
    """``(x (N, D), inputs, dnext, {})`` of one step: ``inputs`` holds ``prev_h`` (``prev_c``), ``Wx``, ``Wh``,
    ``b`` in call order; ``dnext`` holds ``dnext_h`` (``dnext_c``)."""
    rng = np.random.default_rng(seed)
    N, D = shape
    x = rng.standard_normal(shape)
    kinds = state_kinds(layer)
    inputs = {f"prev_{kind}": rng.standard_normal((N, layer.hidden)) * 0.8 for kind in kinds}
    for kind, param_shape in layer.parameter_shapes((1, D)).items():
        if kind != "h0":
            inputs[kind] = rng.standard_normal(param_shape) * 0.5
    dnext = {f"dnext_{kind}": rng.standard_normal((N, layer.hidden)) for kind in kinds}
    return x, inputs, dnext, {}


def reference_step(layer: Any, x_np: np.ndarray, inputs: Mapping[str, np.ndarray], dnext: Mapping) -> dict:
    """The torch twin's ``next_*``, ``dx``, ``dprev_*`` and parameter gradients of one step."""
    leaves = {name: torch.tensor(value, requires_grad=True) for name, value in inputs.items()}
    x = torch.tensor(x_np[:, None, :], requires_grad=True)
    params = {kind: leaves[kind] for kind in ("Wx", "Wh", "b")}
    params["h0"] = leaves["prev_h"]
    if "prev_c" in leaves:
        params["c0"] = leaves["prev_c"]
    kept: dict[str, list[torch.Tensor]] = {}
    TWINS[layer.type](layer, params, x, {}, steps=kept)
    nexts = {kind: tensors[-1] for kind, tensors in kept.items()}
    total = sum((nexts[kind] * torch.tensor(dnext[f"dnext_{kind}"])).sum() for kind in state_kinds(layer))
    total.backward()
    result = {f"next_{kind}": nexts[kind].detach().numpy() for kind in state_kinds(layer)}
    result["dx"] = x.grad[:, 0].numpy()
    result.update({f"dprev_{kind}": leaves[f"prev_{kind}"].grad.numpy() for kind in state_kinds(layer)})
    result.update({f"d{kind}": leaves[kind].grad.numpy() for kind in ("Wx", "Wh", "b")})
    return result


def _named(names: list[str], values: Any, what: str) -> dict:
    values = values if isinstance(values, tuple | list) else (values,)
    if len(values) < len(names):
        raise ValueError(f"{what} returned {len(values)} value(s), expected {len(names)}: {', '.join(names)}")
    return dict(zip(names, values, strict=False))


def call_cs231n_step(forward: Callable, backward: Callable, layer: Any, x, inputs: dict, dnext: dict) -> dict:
    """One step in CS231n's conventions (see the module docstring)."""
    kinds = state_kinds(layer)
    *nexts, cache = forward(x, *inputs.values())
    out = _named([f"next_{k}" for k in kinds], tuple(nexts), "forward")
    names = ["dx", *(f"dprev_{k}" for k in kinds), "dWx", "dWh", "db"]
    out.update(_named(names, backward(*dnext.values(), cache), "backward"))
    return out


def call_plain_step(forward: Callable, backward: Callable, layer: Any, x, inputs: dict, dnext: dict) -> dict:
    """One step of plain functions (see the module docstring)."""
    kinds = state_kinds(layer)
    fields = {k: v for k, v in layer.to_dict().items() if k not in _SKIP_FIELDS}
    out = _named([f"next_{k}" for k in kinds], forward(x, *inputs.values(), **fields), "forward")
    names = ["dx", *(f"dprev_{k}" for k in kinds), "dWx", "dWh", "db"]
    out.update(_named(names, backward(*dnext.values(), x, *inputs.values(), **fields), "backward"))
    return out


STEP_CALLERS = {"cs231n": call_cs231n_step, "plain": call_plain_step}
