"""Known bugs injected into one typed layer's backward pass must be caught at that layer and shrunk.

Each bug replaces one registry entry's backward for the duration of a call of refbp's typed
network (the torch twin and finite differences have their own layers and are untouched). A
real sweep of small convolutional networks must report the first divergence at the quantity
the buggy backward produces — ``∂L/∂a`` of the layer below it (``∂L/∂x`` for the first
layer), or a parameter gradient of the layer itself — and shrink a failing case to a few
layers and a batch of at most 3 (what a train-mode batchnorm on a flat input needs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from oracle.cnn_strategies import cnn_specs
from oracle.sweep import run_sweep
from refbp import sequential
from refbp.layers import batchnorm, conv, groupnorm, pool
from refbp.layers.registry import LAYER_TYPES
from refbp.layers.standardize import standardize_backward


def conv_kernel_not_flipped(layer, params, cache, dz):
    """∂L/∂x correlated with the kernel as stored: the spatial flip of the full convolution forgotten."""
    _, grads = conv.backward(layer, params, cache, dz)
    dx, _ = conv.backward(layer, {**params, "W": params["W"][:, :, ::-1, ::-1]}, cache, dz)
    return dx, grads


def batchnorm_missing_mean_terms(layer, params, cache, dz):
    """Train mode: ∂L/∂x = γ·δ/√(σ² + ε), the paths through μ_B and σ²_B dropped."""
    dx, grads = batchnorm.backward(layer, params, cache, dz)
    if layer.mode == "train":
        _, var, _, view = cache
        dx = params["gamma"].reshape(view) * dz / np.sqrt(var + layer.eps)
    return dx, grads


def layernorm_wrong_axis(layer, params, cache, dz):
    """The per-example statistics differentiated over the batch axis instead of the features."""
    xhat, var, _ = cache
    _, grads = groupnorm.layer_backward(layer, params, cache, dz)
    grad_xhat = params["gamma"] * dz
    centred = grad_xhat - grad_xhat.mean(axis=0, keepdims=True)
    return (centred - xhat * (grad_xhat * xhat).mean(axis=0, keepdims=True)) / np.sqrt(var + layer.eps), grads


def dropout_no_rescale(layer, params, cache, dout):
    """Inverted dropout whose backward forgets the ÷ keep_prob."""
    if layer.mode == "eval":
        return dout, {}
    return dout * cache, {}


def max_pool_to_every_position(layer, params, cache, dout):
    """The gradient of each window copied to all of its positions instead of its maximum only."""
    x_shape, _ = cache
    return pool.avg_backward(layer, params, x_shape, dout * (layer.kernel[0] * layer.kernel[1]))[0], {}


# bug → (layer type, replacement backward, the layers the specs are drawn from)
BUGS: dict[str, tuple[str, Callable, list[str]]] = {
    "kernel_not_flipped": ("conv2d", conv_kernel_not_flipped, ["conv2d"]),
    "batchnorm_missing_term": ("batchnorm", batchnorm_missing_mean_terms, ["batchnorm", "conv2d"]),
    "layernorm_wrong_axis": ("layernorm", layernorm_wrong_axis, ["layernorm", "conv2d"]),
    "dropout_no_rescale": ("dropout", dropout_no_rescale, ["dropout", "conv2d"]),
    "max_pool_every_position": ("max_pool2d", max_pool_to_every_position, ["max_pool2d", "conv2d"]),
}


def buggy(kind: str, backward: Callable) -> Callable:
    def backprop(spec, params, X, T, buffers=None):
        original = LAYER_TYPES[kind]
        LAYER_TYPES[kind] = replace(original, backward=backward)
        try:
            return sequential.backprop(spec, params, X, T, buffers=buffers)
        finally:
            LAYER_TYPES[kind] = original

    return backprop


def test_the_layernorm_bug_is_not_the_layer() -> None:
    """Sanity check of the harness: the replaced backward really differs from refbp's."""
    rng = np.random.default_rng(0)
    x, dz = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    params = {"gamma": np.ones(4), "beta": np.zeros(4)}
    _, cache, _ = groupnorm.layer_forward(groupnorm.LayerNorm(), params, x, {})
    right, _ = groupnorm.layer_backward(groupnorm.LayerNorm(), params, cache, dz)
    wrong, _ = layernorm_wrong_axis(groupnorm.LayerNorm(), params, cache, dz)
    assert not np.allclose(right, wrong)
    np.testing.assert_allclose(right, standardize_backward(dz, cache[0], cache[1], 1e-5, (1,)))


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_injected_layer_bug_is_located_and_shrunk(bug: str) -> None:
    kind, backward, layers = BUGS[bug]
    result = run_sweep(
        30,
        seed=3,
        impl=buggy(kind, backward),
        impl_name="buggy",
        impl_ref=f"bugs.py:{bug}",
        max_shrinks=1,
        progress=False,
        families=["cnn"],
        specs=cnn_specs(layers=layers, max_depth=2, l2=False),
    )
    assert result.failures, f"{bug}: no case failed"
    for failed in result.failures:
        first = failed.first
        assert first.pair.startswith("buggy~"), (bug, first)
        spec = result.cases[failed.case].spec
        # ∂L/∂a_l is formed by the backward of layer l + 1 (spec.layers[l], 0-based); a parameter by its own.
        below = first.quantity in ("dL/da", "dL/dx")
        culprit = spec.layers[first.layer] if below else spec.layers[first.layer - 1]
        assert culprit.type == kind, (bug, failed.case, first.layer, first.quantity)
    assert len(result.shrunk) == 1
    shrunk = result.shrunk[0]
    assert shrunk["batch"] <= 3 and shrunk["depth"] <= 4, shrunk  # 3: a train batchnorm sees three values
    assert "refbp replay" in shrunk["replay"]
    assert f"({kind})" in shrunk["first_divergence"]["diagnosis"], shrunk["first_divergence"]
