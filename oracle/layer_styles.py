"""How a hand-written layer is called: CS231n's ``(out, cache)`` pairs, or plain functions.

Every style turns one call into the same result: ``{"out": …, "dx": …, "dW": …, "dgamma": …}``
and, for batchnorm, the updated ``running_mean``/``running_var``; for dropout, the ``mask`` the
forward pass used (read from its cache, so that the check never depends on the random draw).

``cs231n`` (``layers.py`` of the course's second assignment; ``forward(...) -> (out, cache)``,
``backward(dout, cache)``):

==========  =====================================================  ==========================
layer       forward                                                backward returns
==========  =====================================================  ==========================
conv2d      ``(x, w, b, {"stride": s, "pad": p})``                  ``dx, dw, db``
max_pool2d  ``(x, {"pool_height", "pool_width", "stride"})``         ``dx``
batchnorm   ``(x, gamma, beta, {"mode", "eps", "momentum",          ``dx, dgamma, dbeta``
            "running_mean", "running_var"})`` (updated in place;
            ``momentum`` is the weight of the old value)
layernorm   ``(x, gamma, beta, {"eps"})``                            ``dx, dgamma, dbeta``
groupnorm   ``(x, gamma, beta, G, {"eps"})``, γ, β ``(1, C, 1, 1)``  ``dx, dgamma, dbeta``
dropout     ``(x, {"p", "mode", "seed"})``, cache ``(param, mask)``  ``dx``
rnn, lstm   ``(x, h0, Wx, Wh, b)``, ``x (N, T, D)``, ``h0 (N, H)``   ``dx, dh0, dWx, dWh, db``
==========  =====================================================  ==========================

(``rnn_forward``/``lstm_forward`` of the third assignment; the gate's ``h0`` is one state for
every example, so the course's ``dh0`` is summed over the batch before it is compared.)

``plain``: ``forward(x, *params, **fields) -> out`` and
``backward(dout, x, *params, **fields) -> dx`` or ``(dx, *dparams)``, parameters in the order
of :mod:`refbp.layers.names` (``W``, ``b``, ``gamma``, ``beta``) and fields as the spec writes
them (``stride``, ``padding``, ``kernel``, ``eps``, ``momentum``, ``keep_prob`` or ``drop_prob``,
…); a train-mode dropout also gets the 0/1 ``mask`` to apply.

One time step of a recurrent layer (``rnn_step``, ``lstm_step``) has styles of its own, in
:mod:`oracle.layer_steps`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

STYLES = ("cs231n", "plain")
CS231N_LAYERS = ("conv2d", "max_pool2d", "batchnorm", "layernorm", "groupnorm", "dropout", "rnn", "lstm")

_SKIP_FIELDS = ("type", "activation", "negative_slope", "bias", "convention")


def _as_tuple(result: Any) -> tuple:
    return result if isinstance(result, tuple) else (result,)


def call_cs231n(forward: Callable, backward: Callable, layer: Any, x, params: dict, dout, buffers: dict) -> dict:
    """One forward and backward call in CS231n's conventions (see the module docstring)."""
    kind = layer.type
    out: dict[str, Any] = {}
    if kind == "conv2d":
        y, cache = forward(x, params["W"], params["b"], {"stride": layer.stride[0], "pad": layer.padding[0]})
        out["dx"], out["dW"], out["db"] = backward(dout, cache)
    elif kind == "max_pool2d":
        pool = {"pool_height": layer.kernel[0], "pool_width": layer.kernel[1], "stride": layer.stride[0]}
        y, cache = forward(x, pool)
        (out["dx"],) = _as_tuple(backward(dout, cache))[:1]
    elif kind == "batchnorm":
        bn = {"mode": layer.mode, "eps": layer.eps, "momentum": 1.0 - layer.momentum}
        bn.update(running_mean=buffers["running_mean"].copy(), running_var=buffers["running_var"].copy())
        y, cache = forward(x, params["gamma"], params["beta"], bn)
        out["dx"], out["dgamma"], out["dbeta"] = backward(dout, cache)[:3]
        if layer.mode == "train":
            out["running_mean"], out["running_var"] = bn["running_mean"], bn["running_var"]
    elif kind == "layernorm":
        y, cache = forward(x, params["gamma"], params["beta"], {"eps": layer.eps})
        out["dx"], out["dgamma"], out["dbeta"] = backward(dout, cache)[:3]
    elif kind == "groupnorm":
        view = (1, -1, 1, 1)
        y, cache = forward(
            x, params["gamma"].reshape(view), params["beta"].reshape(view), layer.groups, {"eps": layer.eps}
        )
        dx, dgamma, dbeta = backward(dout, cache)[:3]
        out.update(dx=dx, dgamma=np.reshape(dgamma, -1), dbeta=np.reshape(dbeta, -1))
    elif kind == "dropout":
        p = layer.keep_prob if layer.convention == "keep_prob" else 1.0 - layer.keep_prob
        y, cache = forward(x, {"p": p, "mode": layer.mode, "seed": layer.seed})
        if layer.mode == "train":
            out["mask"] = np.asarray(cache[1]) != 0
        out["dx"] = _as_tuple(backward(dout, cache))[0]
    elif kind in ("rnn", "lstm"):
        h0 = np.broadcast_to(params["h0"], (x.shape[0], params["h0"].shape[0])).copy()
        y, cache = forward(x, h0, params["Wx"], params["Wh"], params["b"])
        out["dx"], dh0, out["dWx"], out["dWh"], out["db"] = backward(dout, cache)[:5]
        out["dh0"] = np.sum(dh0, axis=0)
    else:
        raise ValueError(f"style cs231n has no {kind} layer; it has {', '.join(CS231N_LAYERS)}")
    out["out"] = y
    return out


def call_plain(forward: Callable, backward: Callable, layer: Any, x, params: dict, dout, buffers: dict) -> dict:
    """One forward and backward call of plain functions (see the module docstring)."""
    fields = {k: v for k, v in layer.to_dict().items() if k not in _SKIP_FIELDS}
    if layer.type == "dropout" and layer.mode == "train":
        fields["mask"] = buffers["mask"]  # plain functions take the mask explicitly
    ordered = list(params.values())
    y = forward(x, *ordered, **fields)
    grads = _as_tuple(backward(dout, x, *ordered, **fields))
    out = {"out": y, "dx": grads[0]}
    for kind, grad in zip(params, grads[1:], strict=False):
        out[f"d{kind}"] = grad
    return out


CALLERS = {"cs231n": call_cs231n, "plain": call_plain}
