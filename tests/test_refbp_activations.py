"""refbp's activations against scalar math (``math.exp``, ``math.tanh``) and explicit loops."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from refbp.activations import (
    activation_for,
    leaky_relu,
    leaky_relu_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)
from refbp.spec import LayerSpec

Z = [-2.0, -0.5, 0.0, 0.5, 3.0]
G = [0.3, -1.2, 2.0, 0.7, -0.4]  # an arbitrary upstream ∂L/∂a
SLOPE = 0.2


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# Derivatives in a form different from refbp's (which works from a = f(z)), so a wrong
# rearrangement there cannot be mirrored here.
SCALAR = {
    "identity": (lambda z: z, lambda z: 1.0),
    "sigmoid": (sig, lambda z: math.exp(-z) / (1.0 + math.exp(-z)) ** 2),
    "tanh": (math.tanh, lambda z: 1.0 / math.cosh(z) ** 2),
    # The kink belongs to the flat side: relu'(0) = 0, leaky_relu'(0) = slope (notes ④ 3).
    "relu": (lambda z: z if z > 0 else 0.0, lambda z: 1.0 if z > 0 else 0.0),
    "leaky_relu": (lambda z: z if z > 0 else SLOPE * z, lambda z: 1.0 if z > 0 else SLOPE),
}


def by_hand(name: str) -> tuple[np.ndarray, np.ndarray]:
    f, df = SCALAR[name]
    a = np.array([[f(z) for z in Z]])
    delta = np.array([[g * df(z) for z, g in zip(Z, G, strict=True)]])
    return a, delta


@pytest.mark.parametrize("name", sorted(SCALAR))
@pytest.mark.parametrize("unit_axis", [0, 1])
def test_elementwise_forward_and_derivative_match_scalar_math(name: str, unit_axis: int) -> None:
    act = activation_for(LayerSpec(5, name, negative_slope=SLOPE), unit_axis)
    z = np.array([Z])
    a = act.forward(z)
    expected_a, expected_delta = by_hand(name)
    np.testing.assert_allclose(a, expected_a, rtol=1e-15, atol=0)
    np.testing.assert_allclose(act.backward(z, a, np.array([G])), expected_delta, rtol=1e-14, atol=0)


def test_scalar_derivatives_in_this_file_agree_with_central_differences() -> None:
    """Guards the hand-written table above (away from the kink at 0)."""
    h = 1e-6
    for name, (f, df) in SCALAR.items():
        for z in (-1.3, 0.4, 2.2):
            assert (f(z + h) - f(z - h)) / (2 * h) == pytest.approx(df(z), rel=1e-8), name


def test_relu_kink_convention_gives_zero_at_zero() -> None:
    z = np.array([-1.0, 0.0, 1e-300, 2.0])
    a = relu(z)
    assert a.tolist() == [0.0, 0.0, 1e-300, 2.0]
    assert relu_backward(z, a, np.full(4, 5.0)).tolist() == [0.0, 0.0, 5.0, 5.0]


def test_leaky_relu_uses_the_custom_slope_and_its_kink_takes_the_slope() -> None:
    z = np.array([-3.0, 0.0, 4.0])
    a = leaky_relu(z, 0.25)
    assert a.tolist() == [-0.75, 0.0, 4.0]
    assert leaky_relu_backward(z, a, np.array([2.0, 2.0, 2.0]), 0.25).tolist() == [0.5, 0.5, 2.0]


def test_leaky_relu_slope_is_taken_from_the_layer_spec() -> None:
    act = activation_for(LayerSpec(2, "leaky_relu", negative_slope=0.3), 1)
    z = np.array([[-10.0, 10.0]])
    a = act.forward(z)
    assert a.tolist() == [[-3.0, 10.0]]
    assert act.backward(z, a, np.array([[1.0, 1.0]])).tolist() == [[0.3, 1.0]]


def test_tanh_and_sigmoid_backward_use_the_given_upstream_gradient() -> None:
    z = np.array([0.0])
    assert tanh(z).tolist() == [0.0]
    assert tanh_backward(z, tanh(z), np.array([3.0])).tolist() == [3.0]  # tanh'(0) = 1
    assert sigmoid(z).tolist() == [0.5]
    assert sigmoid_backward(z, sigmoid(z), np.array([4.0])).tolist() == [1.0]  # σ'(0) = 1/4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_saturates_exactly_without_overflow(dtype: type) -> None:
    z = np.array([1000.0, -1000.0, 0.0], dtype=dtype)
    # Underflow of e^{-1000} to 0 is the intended result; overflow, 0/0 or a warning is not.
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        a = sigmoid(z)
    assert a.dtype == dtype
    assert a.tolist() == [1.0, 0.0, 0.5]


def softmax_by_loops(z: list[float]) -> list[float]:
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


def softmax_jacobian_by_loops(a: list[float]) -> list[list[float]]:
    """``J[i][j] = ∂a_i/∂z_j = a_i (1[i = j] − a_j)``."""
    k = len(a)
    return [[a[i] * ((1.0 if i == j else 0.0) - a[j]) for j in range(k)] for i in range(k)]


ROWS = [[1.0, 2.0, 0.5, -1.0], [0.0, 0.0, 0.0, 0.0], [3.0, -2.0, 1.0, 0.25]]
UPSTREAM = [[0.5, -1.0, 2.0, 0.1], [1.0, 0.0, -3.0, 0.5], [-0.2, 0.4, 0.6, -0.8]]


@pytest.mark.parametrize("unit_axis", [1, 0], ids=["in_out", "out_in"])
def test_softmax_forward_and_jvp_match_an_explicit_jacobian(unit_axis: int) -> None:
    z = np.array(ROWS) if unit_axis == 1 else np.array(ROWS).T
    g = np.array(UPSTREAM) if unit_axis == 1 else np.array(UPSTREAM).T
    a = softmax(z, unit_axis)
    delta = softmax_backward(z, a, g, unit_axis)
    for n, (row, up) in enumerate(zip(ROWS, UPSTREAM, strict=True)):
        s = softmax_by_loops(row)
        J = softmax_jacobian_by_loops(s)
        expected = [sum(J[i][j] * up[i] for i in range(4)) for j in range(4)]  # δ = Jᵀ g
        got_a = a[n] if unit_axis == 1 else a[:, n]
        got_delta = delta[n] if unit_axis == 1 else delta[:, n]
        np.testing.assert_allclose(got_a, s, rtol=1e-14, atol=0)
        np.testing.assert_allclose(got_delta, expected, rtol=1e-12, atol=1e-15)
    uniform = a[1] if unit_axis == 1 else a[:, 1]  # equal logits → 1/k each
    assert uniform.tolist() == [0.25] * 4


def test_explicit_softmax_jacobian_agrees_with_central_differences() -> None:
    """Guards the loop Jacobian used above."""
    z, h = [0.3, -1.0, 2.0], 1e-6
    J = softmax_jacobian_by_loops(softmax_by_loops(z))
    for j in range(3):
        plus = softmax_by_loops([v + (h if i == j else 0.0) for i, v in enumerate(z)])
        minus = softmax_by_loops([v - (h if i == j else 0.0) for i, v in enumerate(z)])
        for i in range(3):
            assert (plus[i] - minus[i]) / (2 * h) == pytest.approx(J[i][j], abs=1e-9)


def test_softmax_of_huge_logits_is_finite_and_exact() -> None:
    z = np.array([[1000.0, 999.0, -1000.0]])
    with np.errstate(over="raise", invalid="raise"):
        a = softmax(z, 1)
    p0 = 1.0 / (1.0 + math.exp(-1.0))
    np.testing.assert_allclose(a, [[p0, 1.0 - p0, 0.0]], rtol=1e-15, atol=0)


def test_identity_is_returned_unchanged() -> None:
    act = activation_for(LayerSpec(2, "identity"), 1)
    z = np.array([[1.5, -2.5]])
    assert act.forward(z).tolist() == [[1.5, -2.5]]
    assert act.backward(z, z, np.array([[7.0, -8.0]])).tolist() == [[7.0, -8.0]]
