"""A dense network's gradient, validated once and recomputed many times on arrays allocated once.

:func:`refbp.network.backprop` validates its spec, parameters and data on every call and
allocates the arrays of its result; a training loop of 100,000 steps on a small network
spends most of its time there. :class:`LeanPass` checks everything once, when it is built,
copies the parameters into one flat vector ``theta`` (``params[name]`` are views into it,
so an optimiser updating ``theta`` in place moves them) and lays the pass out as a *tape*:
a list of NumPy calls with their argument arrays fixed, every result written with ``out=``.
:meth:`LeanPass.gradients` runs the tape and leaves ``∂L/∂θ`` in the flat vector ``grad``
(``grads[name]`` are views into it).

The calls are those of the fast path (:mod:`refbp.network`) in the same order — the
activations' ``*_into`` functions, the loss's gradient as :func:`refbp.losses.compute_loss`
forms it, the L2 term added after the product; ``np.dot`` for its ``np.matmul`` (the same
BLAS product of 2-d arrays, cheaper to call on small ones) and ``np.add.reduce`` for
``sum`` — so the gradients are the same numbers bit for bit (``tests/test_lean_training.py``).
Only ``∂L/∂x`` is left out: training does not need it. Nothing is checked while the tape
runs: a caller that can meet NaN or infinity checks ``theta`` afterwards (see :class:`refbp.train.Trainer`).

Parameters are held in the spec's dtype; ``trainable`` names the parameters that come first
in ``theta`` (so that an optimiser can update ``theta[:n_trainable]`` and leave the rest).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from refbp.activations import activation_for
from refbp.data import as_inputs, as_targets, batch_size
from refbp.errors import InputError
from refbp.losses import compute_loss, dense_targets, reduction_scale
from refbp.network import l2_penalty
from refbp.params import checked_parameters
from refbp.spec import NetworkSpec

Tape = list[tuple[Callable[..., Any], tuple[Any, ...]]]


class LeanPass:
    """The gradient of one dense network on one batch, as a tape over preallocated arrays.

    Parameters
    ----------
    spec : a dense :class:`~refbp.spec.NetworkSpec`
    params : mapping of every parameter (validated as :func:`refbp.network.backprop` does)
    X, T : the batch, in the spec's layout (validated as :func:`refbp.network.backprop` does)
    trainable : the names placed first in ``theta`` (default: every parameter)
    """

    def __init__(
        self, spec: NetworkSpec, params: Mapping[str, Any], X: Any, T: Any, *, trainable: Iterable[str] | None = None
    ) -> None:
        if not isinstance(spec, NetworkSpec):
            raise InputError("spec", "a dense NetworkSpec (typed networks train with refbp.sequential)",
                             type(spec).__name__)  # fmt: skip
        checked = checked_parameters(spec, params)
        X = as_inputs(spec, X)
        self.batch = batch_size(spec, X)
        T = as_targets(spec, T, self.batch)
        shapes = spec.parameter_shapes()
        names = [n for n in params if n in shapes] if isinstance(params, Mapping) else list(shapes)
        first = list(shapes) if trainable is None else [n for n in shapes if n in set(trainable)]
        order = first + [n for n in shapes if n not in first]
        dtype = np.dtype(spec.dtype)
        self.spec, self.dtype = spec, dtype
        self.n_trainable = sum(math.prod(shapes[n]) for n in first)
        self.theta = np.empty(spec.n_parameters, dtype)
        self.grad = np.zeros(spec.n_parameters, dtype)
        views, grad_views, start = {}, {}, 0
        for name in order:
            size = math.prod(shapes[name])
            views[name] = self.theta[start : start + size].reshape(shapes[name])
            grad_views[name] = self.grad[start : start + size].reshape(shapes[name])
            views[name][...] = checked[name]
            start += size
        self.params = {name: views[name] for name in names}  # the order the caller gave (the penalty sums in it)
        self.grads = {name: grad_views[name] for name in shapes}
        self.X = np.array(X, dtype=dtype, copy=True)
        self.T = np.array(T, copy=True)
        self.tape: Tape = []
        self._build()

    # ------------------------------------------------------------------ the tape

    def _build(self) -> None:
        spec, tape, dtype, batch = self.spec, self.tape, self.dtype, self.batch
        in_out, unit_axis = spec.layout == "in_out", 1 - spec.batch_axis
        layers: list[tuple[np.ndarray, np.ndarray, Any]] = []  # z, a, activation
        a = self.X
        for number, layer in enumerate(spec.layers, start=1):
            shape = spec.activation_shape(number, batch)
            W = self.params[f"W{number}"]
            z = np.empty(shape, dtype)
            tape.append((np.dot, (a, W, z) if in_out else (W, a, z)))
            b = self.params.get(f"b{number}")
            if b is not None:
                tape.append((np.add, (z, b if in_out else b[:, None], z)))
            act = activation_for(layer, unit_axis)
            if layer.activation != "identity":
                a = np.empty(shape, dtype)
                tape.append((act.forward_into, (z, a, np.empty(shape, dtype))))
            else:
                a = z
            layers.append((z, a, act))
        self.z_out, self.a_out = layers[-1][0], layers[-1][1]

        def delta_of(number: int, grad_a: np.ndarray) -> np.ndarray:
            z, a, act = layers[number - 1]
            if spec.layers[number - 1].activation == "identity":
                return grad_a
            delta = np.empty_like(grad_a)
            tape.append((act.backward_into, (z, a, grad_a, delta, np.empty_like(grad_a))))
            return delta

        delta = self._output_delta(delta_of)
        lam = spec.l2.lam
        for number in range(spec.depth, 0, -1):
            W, gW = self.params[f"W{number}"], self.grads[f"W{number}"]
            a_prev = layers[number - 2][1] if number > 1 else self.X
            tape.append((np.dot, (a_prev.T, delta, gW) if in_out else (delta, a_prev.T, gW)))
            gb = self.grads.get(f"b{number}")
            if gb is not None:
                if spec.layers[number - 1].bias == "shared":
                    tape.append((np.add.reduce, (delta, None, None, gb.reshape(()))))
                else:
                    tape.append((np.add.reduce, (delta, spec.batch_axis, None, gb)))
            if lam:
                scratch = np.empty_like(W)
                tape += [(np.multiply, (W, lam, scratch)), (np.add, (gW, scratch, gW))]
                if gb is not None and spec.l2.include_bias:
                    b, scratch = self.params[f"b{number}"], np.empty_like(gb)
                    tape += [(np.multiply, (b, lam, scratch)), (np.add, (gb, scratch, gb))]
            if number > 1:
                grad_a = np.empty(a_prev.shape, dtype)
                tape.append((np.dot, (delta, W.T, grad_a) if in_out else (W.T, delta, grad_a)))
                delta = delta_of(number - 1, grad_a)

    def _output_delta(self, delta_of: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
        """``δ_L`` as :func:`refbp.losses.compute_loss` forms it (then the output activation's backward)."""
        spec, tape, a, depth = self.spec, self.tape, self.a_out, self.spec.depth
        scale = reduction_scale(spec, self.batch)
        t = dense_targets(spec, self.T, a.dtype)
        out = np.empty_like(a)
        kind = spec.loss.kind
        if kind in ("half_sse", "mse"):  # ∂L/∂a = scale·(a − t), or 2·scale·(a − t)
            factor = scale if kind == "half_sse" else 2.0 * scale
            tape.append((np.subtract, (a, t, out)))
            if factor != 1.0:
                tape.append((np.multiply, (out, factor, out)))
            return delta_of(depth, out)
        if kind == "softmax_cross_entropy":  # δ = scale·(a Σ_units t − t)
            t_sum = t.sum(axis=1 - spec.batch_axis, keepdims=True)
            tape += [(np.multiply, (a, t_sum, out)), (np.subtract, (out, t, out))]
        else:  # binary cross-entropy from the logits: δ = scale·(a − t)
            tape.append((np.subtract, (a, t, out)))
        if scale != 1.0:
            tape.append((np.multiply, (out, scale, out)))
        return out

    # ------------------------------------------------------------------ running it

    def gradients(self) -> None:
        """Run the tape: ``grad`` (and ``grads``) hold ``∂L/∂θ`` at the current ``theta``."""
        for call, args in self.tape:
            call(*args)

    def loss(self) -> float:
        """The loss (data loss + L2 penalty) at the current ``theta``, as :func:`refbp.network.backprop` reports it.

        Reads the output of the last :meth:`gradients`: call that first.
        """
        data_loss = compute_loss(self.spec, self.z_out, self.a_out, self.T)[0]
        return data_loss + l2_penalty(self.spec, self.params)
