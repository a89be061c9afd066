"""The torch twin of a typed network: each layer from :mod:`oracle.twin`'s families, gradients by autograd.

The same conventions as :mod:`oracle.torch_twin` (examples on axis 0, NCHW images): ``δ_l``
and ``∂L/∂a_l`` from ``retain_grad()``, parameter gradients from the leaves, ``∂L/∂a_L`` of a
from-logits loss from the loss written in the probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch.nn.functional import one_hot

from oracle.twin import conv, norm, recurrent, shape
from oracle.twin.losses import activation, probability_loss_grad, reduction_scale, summed_data_loss
from refbp.data import as_targets
from refbp.layers.names import WEIGHT_KINDS, split_name
from refbp.layers.registry import layer_type
from refbp.sequential_data import as_image_inputs, check_parameters, layer_buffers
from refbp.sequential_spec import SequentialSpec
from refbp.trace import ForwardTrace, Gradients, LayerForward, LayerGradients

TWINS = {
    "dense": shape.dense,
    "conv2d": conv.conv2d,
    "max_pool2d": conv.max_pool2d,
    "avg_pool2d": conv.avg_pool2d,
    "batchnorm": norm.batchnorm,
    "layernorm": norm.layernorm,
    "groupnorm": norm.groupnorm,
    "dropout": shape.dropout,
    "flatten": shape.flatten,
    "embedding": recurrent.embedding,
    "rnn": recurrent.rnn,
    "lstm": recurrent.lstm,
    "temporal_affine": recurrent.temporal_affine,
    "last_step": recurrent.last_step,
}
"""The twin of every layer type, by its registry name."""


def torch_sequential_backprop(
    spec: SequentialSpec,
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    T: np.ndarray,
    *,
    device: str | None = None,
    buffers: Mapping[str, np.ndarray] | None = None,
) -> tuple[ForwardTrace, Gradients]:
    """Forward and backward pass of a typed network by autograd; arrays as refbp returns them."""
    from oracle.torch_twin import TORCH_DTYPES, resolve_device

    X_np = as_image_inputs(spec, X)
    batch = X_np.shape[0]
    T_np = as_targets(spec, T, batch)
    params_np = check_parameters(spec, params)
    per_layer = layer_buffers(spec, buffers, batch)
    dev, dtype = resolve_device(device), TORCH_DTYPES[spec.dtype]

    def leaf(array: np.ndarray) -> torch.Tensor:
        return torch.tensor(array, dtype=dtype, device=dev, requires_grad=True)

    with torch.enable_grad():
        x = leaf(X_np)
        leaves = {name: leaf(value) for name, value in params_np.items()}
        if spec.loss.targets == "index":
            labels = torch.tensor(T_np, dtype=torch.int64, device=dev)
            live = labels >= 0  # a label of -1 masks its time step out of a sequence loss
            t = one_hot(torch.where(live, labels, 0), num_classes=spec.outputs).to(dtype) * live[..., None]
        else:
            t = torch.tensor(T_np, dtype=dtype, device=dev)
        a, zs, acts, states, kept = x, [], [], [], []
        for number, layer in enumerate(spec.layers, start=1):
            mine = {kind: leaves[f"{kind}{number}"] for kind in layer.parameter_shapes(spec.shapes[number - 1])}
            steps: dict[str, list[torch.Tensor]] = {}
            extra = {"steps": steps} if layer_type(layer).steps else {}
            out, state = TWINS[layer.type](layer, mine, a, per_layer[number - 1], **extra)
            kept.append(steps)
            z = out if layer.has_activation else None
            a = activation(layer, 1)(out) if layer.has_activation else out
            for tensor in (z, a):
                if tensor is not None and tensor.requires_grad:
                    tensor.retain_grad()
            zs.append(z)
            acts.append(a)
            states.append(state)
        scale = reduction_scale(spec, batch)
        logits = zs[-1] if zs[-1] is not None else acts[-1]
        data_loss = summed_data_loss(spec.loss.kind, logits, acts[-1], t, 1) * scale
        kinds = (*WEIGHT_KINDS, "b") if spec.l2.include_bias else WEIGHT_KINDS
        penalised = [p for name, p in leaves.items() if split_name(name)[0] in kinds]
        penalty = 0.5 * spec.l2.lam * sum(((p**2).sum() for p in penalised), torch.zeros((), dtype=dtype, device=dev))
        (data_loss + penalty).backward()

    def out_np(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy().copy()

    from_logits = spec.loss.kind in ("softmax_cross_entropy", "binary_cross_entropy")

    def step_grads(tensors: list[torch.Tensor]) -> np.ndarray:
        """``(N, T, H)`` from each step's retained gradient (0 where no path reaches the loss)."""
        return np.stack([out_np(t.grad if t.grad is not None else torch.zeros_like(t)) for t in tensors], axis=1)

    layer_grads, layers = [], []
    for number, (layer, z, a, state) in enumerate(zip(spec.layers, zs, acts, states, strict=True), start=1):
        grad_a = probability_loss_grad(spec.loss.kind, a, t, scale) if number == spec.depth and from_logits else a.grad
        by_kind = {
            kind: out_np(leaves[f"{kind}{number}"].grad) for kind in layer.parameter_shapes(spec.shapes[number - 1])
        }
        layer_grads.append(
            LayerGradients(
                delta=None if z is None else out_np(z.grad),
                grad_a=out_np(grad_a),
                grad_W=by_kind.pop("W", None),
                grad_b=by_kind.pop("b", None),
                grad_params=by_kind,
                steps={kind: step_grads(tensors) for kind, tensors in kept[number - 1].items()},
            )
        )
        layers.append(
            LayerForward(
                z=None if z is None else out_np(z), a=out_np(a), state={k: out_np(v) for k, v in state.items()}
            )
        )
    trace = ForwardTrace(x=X_np, layers=layers, data_loss=float(data_loss.item()), penalty=float(penalty.item()))
    grad_x = torch.zeros_like(x) if x.grad is None else x.grad  # indices into an embedding take no gradient
    return trace, Gradients(layers=layer_grads, grad_x=out_np(grad_x))
