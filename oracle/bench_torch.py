"""The torch side of the dense benchmarks: a spec's network as torch leaves, its loss in plain eager ops.

torch: eager autograd, ``loss.backward()`` from leaves with ``requires_grad`` (no
``retain_grad`` on intermediates), with the twin's activations and data loss
(:mod:`oracle.twin.losses`). refbp also returns ``∂L/∂x``, so :meth:`TorchNet.step` can make
the input a leaf too (the same outputs as refbp) or leave it out (parameter gradients only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from refbp.data import as_targets
from refbp.losses import dense_targets
from refbp.spec import NetworkSpec


@dataclass
class TorchNet:
    """A spec's network as torch leaves (float64, CPU), and its loss as plain eager ops."""

    spec: NetworkSpec
    weights: list[Any]
    biases: list[Any]
    x: Any
    t: Any

    @classmethod
    def build(cls, spec: NetworkSpec, params: Mapping[str, np.ndarray], X: np.ndarray, T: np.ndarray) -> TorchNet:
        import torch

        dtype = getattr(torch, spec.dtype)
        batch = int(X.shape[spec.batch_axis])
        t = dense_targets(spec, as_targets(spec, T, batch), np.dtype(spec.dtype))
        numbers = range(1, spec.depth + 1)
        return cls(
            spec=spec,
            weights=[torch.tensor(params[f"W{n}"], dtype=dtype, requires_grad=True) for n in numbers],
            biases=[
                torch.tensor(params[f"b{n}"], dtype=dtype, requires_grad=True) if f"b{n}" in params else None
                for n in numbers
            ],
            x=torch.tensor(X, dtype=dtype),
            t=torch.tensor(t, dtype=dtype),
        )

    @property
    def parameters(self) -> list[Any]:
        return [*self.weights, *(b for b in self.biases if b is not None)]

    def loss(self, weights: list[Any], biases: list[Any], x: Any) -> Any:
        """The total loss with the twin's activations and data loss (:mod:`oracle.torch_twin`)."""
        from oracle.twin.losses import activation as _activation
        from oracle.twin.losses import reduction_scale as _reduction_scale
        from oracle.twin.losses import summed_data_loss as _summed_data_loss

        spec = self.spec
        unit_dim = 1 - spec.batch_axis
        a = x
        for layer, W, b in zip(spec.layers, weights, biases, strict=True):
            if spec.layout == "in_out":
                z = a @ W if b is None else a @ W + b
            else:
                z = W @ a if b is None else W @ a + b[:, None]
            a = _activation(layer, unit_dim)(z)
        batch = x.shape[spec.batch_axis]
        total = _summed_data_loss(spec.loss.kind, z, a, self.t, unit_dim) * _reduction_scale(spec, batch)
        if spec.l2.lam:
            penalised = weights + ([b for b in biases if b is not None] if spec.l2.include_bias else [])
            total = total + 0.5 * spec.l2.lam * sum((p * p).sum() for p in penalised)
        return total

    def step(self, *, input_grad: bool) -> Callable[[], None]:
        """One fwd+bwd: fresh ``.grad`` on every leaf (``set_to_none``), forward, ``loss.backward()``."""
        x = self.x.detach().clone().requires_grad_(input_grad)
        leaves = [*self.parameters, x] if input_grad else self.parameters

        def run() -> None:
            for leaf in leaves:
                leaf.grad = None
            self.loss(self.weights, self.biases, x).backward()

        return run

    def function_of_parameters(self) -> Callable[..., Any]:
        """``f(*parameters) -> loss`` for gradcheck, parameters in :attr:`parameters` order."""
        n_weights = len(self.weights)
        has_bias = [b is not None for b in self.biases]

        def loss_of(*params: Any) -> Any:
            weights, given = list(params[:n_weights]), iter(params[n_weights:])
            biases = [next(given) if present else None for present in has_bias]
            return self.loss(weights, biases, self.x)

        return loss_of
