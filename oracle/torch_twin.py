"""The torch twin: the network of a :class:`~refbp.spec.NetworkSpec` rebuilt in PyTorch.

Every per-layer quantity comes from autograd, with torch's own ops, so the twin is an
independent check of refbp's hand-written backprop. It imports only refbp's data
definitions (spec, trace, errors, input validation), never refbp's math.

Conventions (see :mod:`refbp.spec` for the contract):

* Arrays keep the spec's layout. ``in_out``: ``X`` is ``(N, inputs)``, ``z_l``/``a_l`` are
  ``(N, n_l)``, ``W_l`` is ``(n_{l-1}, n_l)`` and ``z_l = a_{l-1} @ W_l + b_l``.
  ``out_in``: ``X`` is ``(inputs, N)``, ``z_l``/``a_l`` are ``(n_l, N)``, ``W_l`` is
  ``(n_l, n_{l-1})`` and ``z_l = W_l @ a_{l-1} + b_l[:, None]``.
* Biases are 1-D: ``(n_l,)`` per unit, ``(1,)`` shared by every unit, absent for ``none``.
* Softmax (and the cross-entropy's log-softmax) runs along the unit axis: ``dim=1`` for
  ``in_out``, ``dim=0`` for ``out_in``.
* ``δ_l = ∂L/∂z_l`` and ``∂L/∂a_l`` are read from ``retain_grad()`` on every intermediate,
  ``∂L/∂x`` from the input leaf and ``∂L/∂W_l``, ``∂L/∂b_l`` (L2 term included) from the
  parameter leaves.
* Output layer with a from-logits loss (``softmax_cross_entropy``,
  ``binary_cross_entropy``): the loss is computed from ``z_L`` for stability, so ``a_L``
  is not on the loss graph. ``∂L/∂a_L`` is then the gradient of the same loss written
  in the probabilities, with the same reduction: CE ``−Σ t·log a``, BCE
  ``−Σ [t·log a + (1 − t)·log(1 − a)]``, taking ``0·log 0 = 0`` (a term whose target
  weight is 0 contributes neither value nor gradient). It is infinite only where the
  true derivative is, e.g. ``a`` saturated to exactly 0 under a positive target.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch.nn.functional import one_hot

from oracle.twin.losses import activation, probability_loss_grad, reduction_scale, summed_data_loss
from refbp.data import as_inputs, as_targets
from refbp.errors import InputError
from refbp.params import load_parameters
from refbp.spec import NetworkSpec
from refbp.trace import ForwardTrace, Gradients, LayerForward, LayerGradients

__all__ = ["TORCH_DTYPES", "resolve_device", "torch_backprop"]

TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_device(device: str | None) -> torch.device:
    """The torch device for ``device``.

    ``None`` or ``"cpu"`` → CPU. ``"cuda"`` (or ``"cuda:N"``) → that CUDA device when
    ``torch.cuda.is_available()``, otherwise CPU (a silent fallback, so that the same
    call works on machines without a GPU). Anything else raises :class:`InputError`.
    """
    if device is None or device == "cpu":
        return torch.device("cpu")
    if isinstance(device, str) and (device == "cuda" or device.startswith("cuda:")):
        try:
            wanted = torch.device(device)
        except RuntimeError:
            raise InputError("device", "cpu, cuda or cuda:N", device) from None
        return wanted if torch.cuda.is_available() else torch.device("cpu")
    raise InputError("device", "cpu, cuda or cuda:N", device)


def torch_backprop(
    spec: NetworkSpec,
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    T: np.ndarray,
    *,
    device: str | None = None,
    buffers: Mapping[str, np.ndarray] | None = None,
) -> tuple[ForwardTrace, Gradients]:
    """Forward and backward pass of ``spec`` by PyTorch autograd.

    Args:
        spec: the network.
        params: ``{"W1": …, "b1": …, …}`` with exactly the shapes of
            ``spec.parameter_shapes()`` (no ``b{l}`` for a layer with bias ``none``).
        X: inputs, ``(N, inputs)`` for ``in_out`` or ``(inputs, N)`` for ``out_in``.
        T: targets; integer labels ``(N,)`` when ``spec.loss.targets == "index"`` (one-hot
            encoded along the unit axis), otherwise the shape of the output ``a_L``.
        device: ``None``/``"cpu"``, or ``"cuda"`` (falls back to CPU without CUDA; see
            :func:`resolve_device`).

    Returns:
        ``(trace, grads)`` as NumPy arrays of ``spec.dtype`` in the spec's layout:
        ``trace.layers[l-1]`` holds ``z_l``, ``a_l``; ``trace.data_loss`` is the reduced
        data loss and ``trace.penalty`` the L2 term ``λ/2·Σ‖W_l‖²`` (+ ``Σ‖b_l‖²`` when
        ``l2.include_bias``). ``grads.layers[l-1]`` holds ``δ_l``, ``∂L/∂a_l``,
        ``∂L/∂W_l``, ``∂L/∂b_l`` (``None`` without a bias) of the total loss, and
        ``grads.grad_x`` is ``∂L/∂X``.

    A typed network (:class:`~refbp.sequential_spec.SequentialSpec`) is rebuilt by
    :func:`oracle.twin.sequential.torch_sequential_backprop`, with its ``buffers``.

    Raises:
        InputError: bad parameters, inputs, targets or device.
    """
    if not isinstance(spec, NetworkSpec):
        from oracle.twin.sequential import torch_sequential_backprop

        return torch_sequential_backprop(spec, params, X, T, device=device, buffers=buffers)
    if buffers:
        raise InputError("buffers", "none for a dense network", sorted(buffers))
    X_np = as_inputs(spec, X)
    batch = int(X_np.shape[spec.batch_axis])
    T_np = as_targets(spec, T, batch)
    params_np = load_parameters(spec, params)
    dev = resolve_device(device)
    dtype = TORCH_DTYPES[spec.dtype]
    unit_dim = 1 - spec.batch_axis

    def leaf(array: np.ndarray) -> torch.Tensor:
        return torch.tensor(array, dtype=dtype, device=dev, requires_grad=True)

    with torch.enable_grad():
        x = leaf(X_np)
        weights = [leaf(params_np[f"W{n}"]) for n in range(1, spec.depth + 1)]
        biases = [leaf(params_np[f"b{n}"]) if f"b{n}" in params_np else None for n in range(1, spec.depth + 1)]

        if spec.loss.targets == "index":
            labels = torch.tensor(T_np, dtype=torch.int64, device=dev)
            t = one_hot(labels, num_classes=spec.outputs).to(dtype)  # (N, k)
            if spec.layout == "out_in":
                t = t.T
        else:
            t = torch.tensor(T_np, dtype=dtype, device=dev)

        zs: list[torch.Tensor] = []
        activations: list[torch.Tensor] = []
        a = x
        for layer, W, b in zip(spec.layers, weights, biases, strict=True):
            if spec.layout == "in_out":
                z = a @ W + (b if b is not None else 0)
            else:
                z = W @ a + (b[:, None] if b is not None else 0)
            a = activation(layer, unit_dim)(z)
            z.retain_grad()
            a.retain_grad()  # for identity a is z itself: ∂L/∂a = δ
            zs.append(z)
            activations.append(a)

        scale = reduction_scale(spec, batch)
        data_loss = summed_data_loss(spec.loss.kind, zs[-1], activations[-1], t, unit_dim) * scale
        penalized = weights + ([b for b in biases if b is not None] if spec.l2.include_bias else [])
        penalty = 0.5 * spec.l2.lam * torch.stack([(p**2).sum() for p in penalized]).sum()
        (data_loss + penalty).backward()

    def out(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy().copy()

    from_logits = spec.loss.kind in ("softmax_cross_entropy", "binary_cross_entropy")
    layer_grads: list[LayerGradients] = []
    for n, (z, a, W, b) in enumerate(zip(zs, activations, weights, biases, strict=True), start=1):
        # a_L is off the loss graph for a from-logits loss (see the module docstring).
        grad_a = probability_loss_grad(spec.loss.kind, a, t, scale) if n == spec.depth and from_logits else a.grad
        layer_grads.append(
            LayerGradients(
                delta=out(z.grad),
                grad_a=out(grad_a),
                grad_W=out(W.grad),
                grad_b=out(b.grad) if b is not None else None,
            )
        )

    trace = ForwardTrace(
        x=X_np,
        layers=[LayerForward(z=out(z), a=out(a)) for z, a in zip(zs, activations, strict=True)],
        data_loss=float(data_loss.item()),
        penalty=float(penalty.item()),
    )
    return trace, Gradients(layers=layer_grads, grad_x=out(x.grad))
