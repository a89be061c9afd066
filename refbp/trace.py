"""Result types shared by every implementation: the forward trace and the gradients.

refbp, the torch twin and the finite-difference checker each fill these same
containers, so that the comparison can walk them layer by layer. Arrays keep the
spec's layout (see :mod:`refbp.spec`): in ``in_out`` ``z``/``a`` are ``(N, n_l)``, in
``out_in`` they are ``(n_l, N)``.

Quantities, as named in reports (layer numbers are 1-based; layer 0 is the input):

``z``       pre-activation of layer l
``a``       activation of layer l (``a_L`` is the network output)
``delta``   ``δ_l = ∂L/∂z_l``
``dL/da``   ``∂L/∂a_l``
``dL/dW``   ``∂L/∂W_l`` (including the L2 term)
``dL/db``   ``∂L/∂b_l`` (including the L2 term when biases are penalised)
``dL/dx``   ``∂L/∂x`` (layer 0)
``loss``    the total loss (data loss + penalty), reported on the output layer
``dL/dh``   ``∂L/∂h_t`` of a recurrent layer at every step ``(N, T, H)``: the total gradient, the one
            from above plus the one carried back from step ``t + 1``
``dL/dc``   ``∂L/∂c_t`` of an LSTM's cell state, the same way

Typed networks (:mod:`refbp.sequential`) add ``dL/dgamma``, ``dL/dbeta`` (normalisation
layers) and the updated buffers ``running_mean``, ``running_var`` (train-mode batchnorm);
a layer without an activation (pooling, dropout, flatten) has no ``z`` and no ``δ``, and a
layer without ``W`` no ``dL/dW``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refbp.layers.names import PARAMETER_QUANTITIES, STATE_QUANTITIES, STEP_QUANTITIES

FORWARD_QUANTITIES = ("z", "a", *STATE_QUANTITIES)
BACKWARD_QUANTITIES = ("delta", "dL/da", *STEP_QUANTITIES, *PARAMETER_QUANTITIES)
QUANTITIES = ("loss", *FORWARD_QUANTITIES, *BACKWARD_QUANTITIES, "dL/dx")


@dataclass
class LayerForward:
    """Forward values of one layer: ``z`` (pre-activation; ``None`` for a layer without one) and ``a``.

    ``state`` holds buffers the pass updated (``running_mean``, ``running_var``).
    """

    z: np.ndarray | None
    a: np.ndarray
    state: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ForwardTrace:
    """Everything the forward pass computed.

    ``x`` is the input as given; ``layers[l-1]`` holds ``z_l``, ``a_l``. ``data_loss`` and
    ``penalty`` are ``None`` when no targets were given.
    """

    x: np.ndarray
    layers: list[LayerForward]
    data_loss: float | None = None
    penalty: float | None = None

    @property
    def output(self) -> np.ndarray:
        return self.layers[-1].a

    @property
    def loss(self) -> float | None:
        if self.data_loss is None:
            return None
        return self.data_loss + (self.penalty or 0.0)


@dataclass
class LayerGradients:
    """Backward values of one layer (1-based ``l`` in reports)."""

    delta: np.ndarray | None
    """``∂L/∂z_l``, same shape as ``z_l``; ``None`` for a layer without a pre-activation."""
    grad_a: np.ndarray
    """``∂L/∂a_l``, same shape as ``a_l``."""
    grad_W: np.ndarray | None
    """``∂L/∂W_l``, same shape as ``W_l``; ``None`` for a layer without weights."""
    grad_b: np.ndarray | None
    """``∂L/∂b_l``, same shape as ``b_l``; ``None`` when the layer has no bias."""
    grad_params: dict[str, np.ndarray] = field(default_factory=dict)
    """Gradients of the other parameters by kind (``"gamma"``, ``"beta"``)."""
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    """A recurrent layer's per-step gradients by step kind (``"h"``, ``"c"``), each ``(N, T, H)``."""

    def parameter_gradients(self) -> dict[str, np.ndarray]:
        """``{"W": …, "b": …, "gamma": …}``: every parameter gradient of the layer, by kind."""
        out = {} if self.grad_W is None else {"W": self.grad_W}
        if self.grad_b is not None:
            out["b"] = self.grad_b
        return {**out, **self.grad_params}


@dataclass
class Gradients:
    """The backward pass: per-layer gradients and ``∂L/∂x``."""

    layers: list[LayerGradients]
    grad_x: np.ndarray

    def by_parameter(self) -> dict[str, np.ndarray]:
        """``{"W1": ∂L/∂W1, "b1": ∂L/∂b1, …}`` — the same keys as the parameters."""
        out: dict[str, np.ndarray] = {}
        for number, layer in enumerate(self.layers, start=1):
            for kind, grad in layer.parameter_gradients().items():
                out[f"{kind}{number}"] = grad
        return out


def quantity_map(trace: ForwardTrace | None, grads: Gradients | None) -> dict[tuple[int, str], np.ndarray]:
    """Flatten a trace and gradients into ``{(layer, quantity): array}``.

    Either part may be ``None`` (e.g. finite differences produce no forward values of
    their own). The loss is a 0-d array on the output layer.
    """
    out: dict[tuple[int, str], np.ndarray] = {}
    if trace is not None:
        for number, layer in enumerate(trace.layers, start=1):
            if layer.z is not None:
                out[(number, "z")] = layer.z
            out[(number, "a")] = layer.a
            for name, value in layer.state.items():
                out[(number, name)] = value
        if trace.loss is not None:
            out[(len(trace.layers), "loss")] = np.asarray(trace.loss)
    if grads is not None:
        for number, layer in enumerate(grads.layers, start=1):
            if layer.delta is not None:
                out[(number, "delta")] = layer.delta
            out[(number, "dL/da")] = layer.grad_a
            for kind, grad in layer.steps.items():
                out[(number, f"dL/d{kind}")] = grad
            for kind, grad in layer.parameter_gradients().items():
                out[(number, f"dL/d{kind}")] = grad
        out[(0, "dL/dx")] = grads.grad_x
    return out
