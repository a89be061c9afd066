"""oracle.diagnosis: each pattern is recognised, and nothing is claimed when nothing fits."""

from __future__ import annotations

import numpy as np
import pytest

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
