"""Known bugs injected into a copy of refbp's backward pass must be caught, located and shrunk.

Each bug is checked by a real sweep (refbp's copy vs the torch twin vs finite
differences). The harness must report a mismatch at the layer and quantity where the
bug lives, and hypothesis must shrink a failing case to at most 2 layers and a batch of
at most 2.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import strategies as st

from oracle.check import check_case
from oracle.strategies import network_specs
from oracle.sweep import run_sweep
from refbp.activations import activation_for
from refbp.data import as_targets, batch_size
from refbp.losses import compute_loss, dense_targets, reduction_scale
from refbp.network import forward
from refbp.spec import LOSS_OUTPUT_ACTIVATION, LayerSpec, NetworkSpec
from refbp.trace import Gradients, LayerGradients


def buggy_backprop(bug: str) -> Callable:
    """A copy of :func:`refbp.network.backward` with one bug switched on."""

    def backprop(spec: NetworkSpec, params, X, T):
        trace = forward(spec, params, X, T)
        T = as_targets(spec, T, batch_size(spec, trace.x))
        n = batch_size(spec, trace.x)
        out = trace.layers[-1]
        _, grad_a, delta = compute_loss(spec, out.z, out.a, T)
        if bug == "ce_assumes_one_hot" and spec.loss.kind == "softmax_cross_entropy":
            delta = reduction_scale(spec, n) * (out.a - dense_targets(spec, T, out.a.dtype))
        if delta is None:
            delta = _activation_backward(spec, spec.depth, out.z, out.a, grad_a, bug)
        if bug == "sign_flip":
            delta = -delta
        grads: list[LayerGradients] = []
        above: np.ndarray | None = None
        for number in range(spec.depth, 0, -1):
            W = params[f"W{number}"]
            a_prev = trace.layers[number - 2].a if number > 1 else trace.x
            used = above if bug == "delta_of_wrong_layer" and above is not None else delta
            if spec.layout == "in_out":
                grad_W = a_prev.T @ used
                grad_a_prev = delta @ W.T
            else:
                grad_W = used @ a_prev.T
                grad_a_prev = W.T @ delta
            if bug == "scale_by_n":
                grad_W = grad_W * n
            grad_b = None
            mode = spec.layers[number - 1].bias
            if mode != "none":
                summed = (
                    np.take(delta, 0, axis=spec.batch_axis) if bug == "bias_not_summed" else delta.sum(spec.batch_axis)
                )
                grad_b = np.array([summed.sum()]) if mode == "shared" else summed
            if spec.l2.lam:
                grad_W = grad_W + spec.l2.lam * W
                if grad_b is not None and spec.l2.include_bias:
                    grad_b = grad_b + spec.l2.lam * params[f"b{number}"]
            if bug == "missing_transpose":
                grad_W = grad_W.T
            grads.append(LayerGradients(delta=delta, grad_a=grad_a, grad_W=grad_W, grad_b=grad_b))
            above = delta
            if number > 1:
                below = trace.layers[number - 2]
                grad_a = grad_a_prev
                delta = _activation_backward(spec, number - 1, below.z, below.a, grad_a, bug)
        grads.reverse()
        return trace, Gradients(layers=grads, grad_x=grad_a_prev)

    def _activation_backward(spec, number, z, a, grad_a, bug):
        layer = spec.layers[number - 1]
        if bug == "wrong_activation_derivative" and layer.activation == "sigmoid":
            return grad_a * a  # σ' written as σ: the (1 − σ) factor is missing
        return activation_for(layer, 1 - spec.batch_axis).backward(z, a, grad_a)

    return backprop


def _highest(spec: NetworkSpec, predicate) -> int:
    return max(number for number, layer in enumerate(spec.layers, start=1) if predicate(number, layer))


def _sigmoid_layer(spec: NetworkSpec) -> int:
    """Highest sigmoid layer whose δ goes through σ' (not the fused BCE output)."""
    fused = spec.loss.kind in LOSS_OUTPUT_ACTIVATION

    def uses_derivative(number: int, layer: LayerSpec) -> bool:
        return layer.activation == "sigmoid" and not (fused and number == spec.depth)

    return _highest(spec, uses_derivative)


def _visible_bias(number: int, layer: LayerSpec) -> bool:
    """A bias whose gradient the bug can change: softmax's δ sums to 0 over the units, so a
    shared bias on a softmax layer has gradient 0 however it is summed."""
    return layer.bias == "per_unit" or (layer.bias == "shared" and layer.activation != "softmax")


# bug → (where the divergence must be reported, given the failing case's spec)
EXPECTED: dict[str, Callable[[NetworkSpec], tuple[int, str]]] = {
    "scale_by_n": lambda spec: (spec.depth, "dL/dW"),
    "missing_transpose": lambda spec: (spec.depth, "dL/dW"),
    "sign_flip": lambda spec: (spec.depth, "delta"),
    "ce_assumes_one_hot": lambda spec: (spec.depth, "delta"),
    "wrong_activation_derivative": lambda spec: (_sigmoid_layer(spec), "delta"),
    "bias_not_summed": lambda spec: (_highest(spec, _visible_bias), "dL/db"),
    "delta_of_wrong_layer": lambda spec: (spec.depth - 1, "dL/dW"),
}


@st.composite
def uniform_width_specs(draw: st.DrawFn) -> NetworkSpec:
    """Every layer as wide as the input, so that using another layer's δ still has the right shape."""
    spec = draw(network_specs(max_depth=4, losses=("half_sse", "mse"), l2=False))
    width = draw(st.integers(2, 4))
    layers = tuple(LayerSpec(width, layer.activation, layer.bias, layer.negative_slope) for layer in spec.layers)
    return spec.replace(inputs=width, layers=layers)


def _sweep(bug: str):
    extra = {"specs": uniform_width_specs()} if bug == "delta_of_wrong_layer" else {}
    return run_sweep(
        60,
        seed=1,
        impl=buggy_backprop(bug),
        impl_name="buggy",
        impl_ref=f"bugs.py:{bug}",
        fd="full",
        max_shrinks=1,
        **extra,
    )


@pytest.mark.parametrize("bug", sorted(EXPECTED))
def test_injected_bug_is_located_and_shrunk(bug: str) -> None:
    result = _sweep(bug)
    assert result.failures, f"the sweep did not notice {bug}"
    for failed in result.failures[:10]:
        spec = result.cases[failed.case].spec
        assert (failed.first.layer, failed.first.quantity) == EXPECTED[bug](spec), (bug, failed.case, spec)
        pairs = {
            r.pair
            for r in failed.rows
            if r.status == failed.first.status and r.layer == failed.first.layer and r.quantity == failed.first.quantity
        }
        # Both independent references disagree with the bug; the two references agree with each other.
        assert {"buggy~torch", "buggy~fd"} <= pairs
        assert not any(r.pair == "torch~fd" and r.status != "ok" for r in failed.rows)

    assert len(result.shrunk) == 1
    smallest = result.shrunk[0]
    assert smallest["depth"] <= 2 and smallest["batch"] <= 2, smallest
    shrunk_spec = NetworkSpec.from_dict(smallest["case"]["spec"])
    where = smallest["first_divergence"]
    assert (where["layer"], where["quantity"]) == EXPECTED[bug](shrunk_spec)
    assert smallest["replay"].startswith("refbp replay ") and smallest["replay"].endswith(f"--impl bugs.py:{bug}")


@pytest.mark.parametrize(
    ("bug", "hint"),
    [
        ("scale_by_n", "N = 2 (the batch size) too large"),
        ("sign_flip", "sign flipped"),
        ("missing_transpose", "transposed"),
        ("wrong_activation_derivative", "derivative of sigmoid in layer 1"),
        ("bias_not_summed", "check the sum of δ_2 over the batch"),
    ],
)
def test_diagnosis_names_the_likely_cause(bug: str, hint: str) -> None:
    spec = NetworkSpec(
        inputs=3,
        layers=(LayerSpec(4, "sigmoid"), LayerSpec(2, "identity")),
        loss=NetworkSpec(inputs=1, layers=(LayerSpec(1),)).loss,
    )
    rng = np.random.default_rng(5)
    params = {
        "W1": rng.standard_normal((3, 4)),
        "b1": rng.standard_normal(4),
        "W2": rng.standard_normal((4, 2)),
        "b2": rng.standard_normal(2),
    }
    X, T = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))
    result = check_case("hint", spec, params, X, T, impl=buggy_backprop(bug), impl_name="buggy")
    assert result.first is not None
    assert hint in result.first.diagnosis, result.first.diagnosis


def test_correct_copy_passes() -> None:
    """The copy without a bug is clean: the bugs above are what the harness reacts to."""
    result = run_sweep(40, seed=1, impl=buggy_backprop("none"), impl_name="copy", fd="full")
    assert result.passed and not result.shrunk
