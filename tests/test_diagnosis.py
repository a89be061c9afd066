"""oracle.diagnosis: each pattern is recognised, and nothing is claimed when nothing fits."""

from __future__ import annotations

import numpy as np
import pytest

from oracle.check import check_case
from oracle.diagnosis import array_pattern, structural_hint
from refbp.spec import LayerSpec, LossSpec, NetworkSpec

REF = np.array([[0.3, -1.2, 0.7], [2.0, 0.1, -0.4]])


def _pattern(candidate, reference=REF, batch=2, axis=0) -> str:
    return array_pattern(np.asarray(candidate), reference, batch=batch, outputs=3, batch_axis=axis)


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (-REF, "sign flipped"),
        (REF * 2, "N = 2 (the batch size) too large"),
        (REF / 2, "N = 2 (the batch size) too small"),
        (REF * 6, "N·k = 6"),
        (REF * 1.37, "scaled by 1.37"),
        (np.zeros_like(REF), "all zeros"),
        (REF.T, "transposed"),
        (np.where(np.arange(2)[:, None] == 0, REF, REF + 1), "right for examples [0] only"),
        (REF + np.nan, "NaN or infinity"),
    ],
)
def test_array_patterns(candidate, expected: str) -> None:
    assert expected in _pattern(candidate)


def test_square_transpose_and_unsummed_bias() -> None:
    square = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert _pattern(square.T, square, axis=None) == "transposed"
    per_example = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    assert "not summed over the batch" in _pattern(per_example, per_example.sum(0), axis=None)


def test_no_claim_when_no_pattern_fits() -> None:
    rng = np.random.default_rng(0)
    assert _pattern(REF + rng.standard_normal(REF.shape)) == ""
    # A single number is always some multiple of another: no generic factor claimed.
    assert _pattern(np.array([0.21]), np.array([0.10]), batch=1, axis=None) == ""


SPEC = NetworkSpec(
    inputs=2, layers=(LayerSpec(3, "tanh"), LayerSpec(2, "identity", bias="shared")), loss=LossSpec("half_sse")
)


@pytest.mark.parametrize(
    ("layer", "quantity", "agrees", "expected"),
    [
        (1, "delta", {(1, "dL/da")}, "derivative of tanh in layer 1"),
        (2, "dL/dW", {(2, "delta")}, "check the product with a_1"),
        (1, "dL/dW", {(1, "delta")}, "check the product with x"),
        (2, "dL/db", {(2, "delta")}, "over the batch and the units (shared bias)"),
        (1, "dL/da", {(2, "delta")}, "check W_2ᵀ in ∂L/∂a_1"),
        (0, "dL/dx", {(1, "delta")}, "check W_1ᵀ in ∂L/∂x"),
        (2, "z", {(1, "a")}, "affine map of layer 2"),
        (1, "a", {(1, "z")}, "check tanh in layer 1"),
        (2, "loss", {(2, "a"), (2, "z")}, "check the half_sse formula"),
        (2, "dL/da", {(2, "a")}, "derivative of half_sse"),
    ],
)
def test_structural_hints(layer: int, quantity: str, agrees: set, expected: str) -> None:
    assert expected in structural_hint(SPEC, layer, quantity, dict.fromkeys(agrees, True))


def test_structural_hint_is_silent_when_neighbours_also_fail() -> None:
    assert structural_hint(SPEC, 1, "delta", {}) == ""
    assert structural_hint(SPEC, 2, "dL/dW", {(2, "delta"): False}) == ""


def _parameter_only(scale_W1: float = 1.0, scale_b1: float = 1.0):
    """refbp's parameter gradients as a dict, with layer 1's ∂L/∂W and ∂L/∂b scaled."""
    from refbp import backprop

    def impl(spec, params, X, T):
        _, grads = backprop(spec, params, X, T)
        out = {}
        for number, layer in enumerate(grads.layers, start=1):
            out[f"W{number}"] = layer.grad_W * (scale_W1 if number == 1 else 1.0)
            out[f"b{number}"] = layer.grad_b * (scale_b1 if number == 1 else 1.0)
        return out

    return impl


def test_rows_of_a_parameter_only_implementation_say_where_the_error_enters() -> None:
    from oracle.check import check_case

    spec = NetworkSpec(inputs=3, layers=(LayerSpec(4, "tanh"), LayerSpec(2, "identity")), loss=LossSpec("half_sse"))
    rng = np.random.default_rng(3)
    params = {"W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4)}
    params |= {"W2": rng.standard_normal((4, 2)), "b2": rng.standard_normal(2)}
    X, T = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))

    result = check_case("c", spec, params, X, T, impl=_parameter_only(scale_W1=1.5), fd="off")
    assert (result.first.layer, result.first.quantity) == (1, "dL/dW")
    assert "∂L/∂b_1 agrees but ∂L/∂W_1 does not, so δ_1 is probably right" in result.first.diagnosis
    assert "scaled by 1.5" in result.first.diagnosis  # the array pattern is kept beside it

    both = check_case("c", spec, params, X, T, impl=_parameter_only(scale_W1=-1.0, scale_b1=-1.0), fd="off")
    assert "layer 2 agrees, layer 1 does not (dL/dW, dL/db)" in both.first.diagnosis
    assert all(not row.diagnosis for row in both.rows if row.layer == 2)

    clean = check_case("c", spec, params, X, T, impl=_parameter_only(), fd="full")
    assert clean.passed and not any(row.diagnosis for row in clean.rows)


def _l2_spec(include_bias: bool) -> NetworkSpec:
    from refbp.spec import L2Spec

    return NetworkSpec(
        inputs=3, layers=(LayerSpec(4, "tanh"), LayerSpec(2)), l2=L2Spec(lam=0.1, include_bias=include_bias)
    )


def _gradients_with(spec: NetworkSpec, change, batch: int = 3):
    """refbp's parameter gradients of a fixed case, with ``change(name, grad, param)`` applied to each."""
    from refbp.network import backprop
    from refbp.params import init_parameters

    params = init_parameters(spec, seed=3)
    rng = np.random.default_rng(0)
    params = {k: v + rng.normal(0, 0.5, v.shape) for k, v in params.items()}  # biases away from 0
    X, T = rng.normal(size=spec.input_shape(batch)), rng.normal(size=spec.target_shape(batch))

    def impl(spec, params, X, T):
        grads = backprop(spec, params, X, T)[1].by_parameter()
        return {k: change(k, g, params[k]) for k, g in grads.items()}

    return check_case("l2", spec, params, X, T, impl=impl, fd="off")


@pytest.mark.parametrize(
    ("include_bias", "change", "quantity", "hint"),
    [
        (
            False,
            lambda k, g, p: g + 0.1 * p if k.startswith("b") else g,
            "dL/db",
            "L2 applied to the bias: off by exactly λ·b",
        ),
        (
            True,
            lambda k, g, p: g - 0.1 * p if k.startswith("b") else g,
            "dL/db",
            "L2 missing on the bias: off by exactly −λ·b",
        ),
        (False, lambda k, g, p: g - 0.1 * p if k.startswith("W") else g, "dL/dW", "L2 missing: off by exactly −λ·W"),
    ],
)
def test_an_l2_term_on_the_wrong_parameters_gets_its_own_hint(include_bias, change, quantity, hint) -> None:
    result = _gradients_with(_l2_spec(include_bias), change)
    failing = [r for r in result.rows if r.status != "ok"]
    assert {r.quantity for r in failing} == {quantity}
    assert all(r.diagnosis.startswith(hint) for r in failing), [r.diagnosis for r in failing]


def test_a_bias_gradient_of_shape_n_by_1_is_right_values_wrong_shape() -> None:
    """``(n, 1)`` where ``(n,)`` is expected once got the hint "not summed over the batch"."""
    spec = NetworkSpec(inputs=3, layers=(LayerSpec(4, "tanh"), LayerSpec(2)), layout="out_in")
    for batch in (1, 3):
        _check_reshape_hint(_gradients_with(spec, lambda k, g, p: g.reshape(-1, 1) if k.startswith("b") else g, batch))


def _check_reshape_hint(result) -> None:
    failing = [r for r in result.rows if r.status != "ok"]
    assert {(r.quantity, r.status) for r in failing} == {("dL/db", "shape")}
    assert {r.diagnosis.split(";")[0] for r in failing} == {
        "right values, wrong shape: reshape (4, 1) to (4,)",
        "right values, wrong shape: reshape (2, 1) to (2,)",
    }
    assert not any("summed" in r.diagnosis for r in failing)


def test_not_summed_over_the_batch_only_when_the_values_say_so() -> None:
    per_example = np.arange(12.0).reshape(4, 3)
    assert "not summed over the batch" in _pattern(per_example, per_example.sum(0), axis=None, batch=4)
    # Same shapes, values that do not sum to the reference: just the shapes.
    assert _pattern(per_example, per_example.sum(0) + 1, axis=None, batch=4) == "shape (4, 3), but should be (3,)"
