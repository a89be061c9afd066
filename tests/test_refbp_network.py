"""forward/backward of a 2-layer net against a per-example, per-scalar chain rule written here.

Covers every bias mode in both layouts, the L2 term, softmax as an output activation
under half_sse, and float32 specs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from refbp.network import backprop, forward, l2_penalty
from refbp.params import init_parameters
from refbp.spec import L2Spec, LayerSpec, LossSpec, NetworkSpec

# 4 examples, 3 inputs → 4 hidden units → 2 outputs, in the in_out orientation (rows are examples).
X_ROWS = [[0.5, -1.0, 2.0], [1.5, 0.3, -0.7], [-0.2, 0.8, 0.1], [1.0, 1.0, -1.0]]
W1 = [[0.2, -0.5, 0.1, 0.4], [0.7, 0.3, -0.6, 0.05], [-0.3, 0.2, 0.25, -0.45]]  # (3, 4)
B1 = [0.1, -0.2, 0.05, 0.3]
W2 = [[0.6, -0.4], [-0.3, 0.8], [0.5, 0.2], [-0.7, 0.1]]  # (4, 2)
B2 = [-0.1, 0.25]
SHARED_B1, SHARED_B2 = 0.15, -0.05
T_ROWS = [[0.2, 0.9], [0.6, 0.1], [0.4, 0.4], [0.0, 1.0]]
SLOPE = 0.1


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


SCALAR = {
    "identity": (lambda z: z, lambda z: 1.0),
    "sigmoid": (sig, lambda z: sig(z) * (1.0 - sig(z))),
    "tanh": (math.tanh, lambda z: 1.0 / math.cosh(z) ** 2),
    "relu": (lambda z: max(z, 0.0), lambda z: 1.0 if z > 0 else 0.0),
    "leaky_relu": (lambda z: z if z > 0 else SLOPE * z, lambda z: 1.0 if z > 0 else SLOPE),
}


def transpose(m: list[list[float]]) -> list[list[float]]:
    return [list(col) for col in zip(*m, strict=True)]


def bias_values(mode: str, per_unit: list[float], shared: float) -> list[float]:
    """The value added to each unit: the vector, one scalar repeated, or zeros."""
    return {"per_unit": per_unit, "shared": [shared] * len(per_unit), "none": [0.0] * len(per_unit)}[mode]


def bias_param(mode: str, per_unit: list[float], shared: float) -> np.ndarray | None:
    return {"per_unit": np.array(per_unit), "shared": np.array([shared]), "none": None}[mode]


@dataclass
class ByHand:
    loss: float
    z: list  # per layer, rows
    a: list
    grad_a: list
    delta: list
    grad_W: list  # in_out orientation
    grad_b: list  # per-unit sums, shared scalar, or None
    grad_x: list[list[float]]


def chain_rule_by_loops(acts: tuple[str, str], biases: tuple[str, str], scale: float) -> ByHand:
    """``L = scale · Σ_n ½‖a2_n − t_n‖²``, one example and one scalar at a time."""
    (f1, df1), (f2, df2) = SCALAR[acts[0]], SCALAR[acts[1]]
    b1 = bias_values(biases[0], B1, SHARED_B1)
    b2 = bias_values(biases[1], B2, SHARED_B2)
    d, m, k = 3, 4, 2
    gW1 = [[0.0] * m for _ in range(d)]
    gW2 = [[0.0] * k for _ in range(m)]
    gb1, gb2 = [0.0] * m, [0.0] * k
    loss = 0.0
    Z1, A1, Z2, A2, GA1, GA2, D1, D2, GX = ([] for _ in range(9))
    for x, t in zip(X_ROWS, T_ROWS, strict=True):
        z1 = [sum(x[i] * W1[i][j] for i in range(d)) + b1[j] for j in range(m)]
        a1 = [f1(v) for v in z1]
        z2 = [sum(a1[j] * W2[j][c] for j in range(m)) + b2[c] for c in range(k)]
        a2 = [f2(v) for v in z2]
        loss += scale * sum(0.5 * (a2[c] - t[c]) ** 2 for c in range(k))
        ga2 = [scale * (a2[c] - t[c]) for c in range(k)]
        d2 = [ga2[c] * df2(z2[c]) for c in range(k)]
        ga1 = [sum(W2[j][c] * d2[c] for c in range(k)) for j in range(m)]
        d1 = [ga1[j] * df1(z1[j]) for j in range(m)]
        gx = [sum(W1[i][j] * d1[j] for j in range(m)) for i in range(d)]
        for j in range(m):
            for c in range(k):
                gW2[j][c] += a1[j] * d2[c]
            for i in range(d):
                gW1[i][j] += x[i] * d1[j]
            gb1[j] += d1[j]
        for c in range(k):
            gb2[c] += d2[c]
        for store, value in zip(
            (Z1, A1, Z2, A2, GA1, GA2, D1, D2, GX), (z1, a1, z2, a2, ga1, ga2, d1, d2, gx), strict=True
        ):
            store.append(value)

    def bias_grad(mode: str, per_unit: list[float]) -> list[float] | None:
        return {"per_unit": per_unit, "shared": [sum(per_unit)], "none": None}[mode]

    return ByHand(
        loss=loss,
        z=[Z1, Z2],
        a=[A1, A2],
        grad_a=[GA1, GA2],
        delta=[D1, D2],
        grad_W=[gW1, gW2],
        grad_b=[bias_grad(biases[0], gb1), bias_grad(biases[1], gb2)],
        grad_x=GX,
    )


def make_case(acts: tuple[str, str], biases: tuple[str, str], layout: str, reduction: str = "sum", **spec_kw) -> tuple:
    spec = NetworkSpec(
        inputs=3,
        layers=(LayerSpec(4, acts[0], biases[0], SLOPE), LayerSpec(2, acts[1], biases[1], SLOPE)),
        layout=layout,
        loss=LossSpec("half_sse", reduction),
        **spec_kw,
    )
    orient = (lambda m: np.array(m)) if layout == "in_out" else (lambda m: np.array(m).T)
    params = {"W1": orient(W1), "W2": orient(W2)}
    for name, mode, per_unit, shared in (("b1", biases[0], B1, SHARED_B1), ("b2", biases[1], B2, SHARED_B2)):
        value = bias_param(mode, per_unit, shared)
        if value is not None:
            params[name] = value
    return spec, params, orient(X_ROWS), orient(T_ROWS)


BIAS_PAIRS = [
    ("per_unit", "per_unit"),
    ("shared", "per_unit"),
    ("per_unit", "shared"),
    ("none", "shared"),
    ("shared", "none"),
    ("none", "none"),
]
ACT_REDUCTION = [
    (("tanh", "sigmoid"), "sum"),
    (("relu", "identity"), "mean"),
    (("leaky_relu", "tanh"), "sum"),
    (("sigmoid", "leaky_relu"), "mean"),
]


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
@pytest.mark.parametrize(("acts", "reduction"), ACT_REDUCTION)
@pytest.mark.parametrize("biases", BIAS_PAIRS)
def test_two_layer_net_matches_per_example_chain_rule(
    biases: tuple[str, str], acts: tuple[str, str], reduction: str, layout: str
) -> None:
    spec, params, X, T = make_case(acts, biases, layout, reduction)
    trace, grads = backprop(spec, params, X, T)
    hand = chain_rule_by_loops(acts, biases, 1.0 if reduction == "sum" else 1.0 / 4)
    rows = (lambda m: m) if layout == "in_out" else (lambda m: m.T)  # compare in the row orientation
    assert trace.data_loss == pytest.approx(hand.loss, rel=1e-13)
    tol = {"rtol": 1e-12, "atol": 1e-15}
    for layer in range(2):
        np.testing.assert_allclose(rows(trace.layers[layer].z), hand.z[layer], **tol)
        np.testing.assert_allclose(rows(trace.layers[layer].a), hand.a[layer], **tol)
        g = grads.layers[layer]
        np.testing.assert_allclose(rows(g.grad_a), hand.grad_a[layer], **tol)
        np.testing.assert_allclose(rows(g.delta), hand.delta[layer], **tol)
        np.testing.assert_allclose(rows(g.grad_W), hand.grad_W[layer], **tol)
        if hand.grad_b[layer] is None:
            assert g.grad_b is None
            assert f"b{layer + 1}" not in grads.by_parameter()
            assert f"b{layer + 1}" not in spec.parameter_shapes()
        else:
            assert g.grad_b.shape == params[f"b{layer + 1}"].shape
            np.testing.assert_allclose(g.grad_b, hand.grad_b[layer], **tol)
    np.testing.assert_allclose(rows(grads.grad_x), hand.grad_x, **tol)


def test_shared_bias_gradient_sums_delta_over_units_and_batch() -> None:
    spec, params, X, T = make_case(("tanh", "sigmoid"), ("shared", "shared"), "in_out")
    _, grads = backprop(spec, params, X, T)
    hand = chain_rule_by_loops(("tanh", "sigmoid"), ("shared", "shared"), 1.0)
    for layer in range(2):
        total = sum(sum(row) for row in hand.delta[layer])  # over 4 examples × units
        assert grads.layers[layer].grad_b.shape == (1,)
        assert grads.layers[layer].grad_b[0] == pytest.approx(total, rel=1e-12)
        assert abs(total) > 1e-3  # not trivially zero


@pytest.mark.parametrize("biases", BIAS_PAIRS)
def test_out_in_gradients_are_the_transposes_of_in_out_ones(biases: tuple[str, str]) -> None:
    acts = ("tanh", "sigmoid")
    results = {}
    for layout in ("in_out", "out_in"):
        spec, params, X, T = make_case(acts, biases, layout)
        results[layout] = backprop(spec, params, X, T)
    (t_io, g_io), (t_oi, g_oi) = results["in_out"], results["out_in"]
    assert t_oi.data_loss == pytest.approx(t_io.data_loss, rel=1e-14)
    for a, b in zip(g_io.layers, g_oi.layers, strict=True):
        np.testing.assert_allclose(b.grad_W, a.grad_W.T, rtol=1e-13)
        np.testing.assert_allclose(b.delta, a.delta.T, rtol=1e-13)
        np.testing.assert_allclose(b.grad_a, a.grad_a.T, rtol=1e-13)
        if a.grad_b is None:
            assert b.grad_b is None
        else:
            np.testing.assert_allclose(b.grad_b, a.grad_b, rtol=1e-13)
    np.testing.assert_allclose(g_oi.grad_x, g_io.grad_x.T, rtol=1e-13)


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
@pytest.mark.parametrize("include_bias", [False, True])
def test_l2_adds_penalty_and_lambda_times_parameter_but_leaves_delta_alone(layout: str, include_bias: bool) -> None:
    lam = 0.3
    acts, biases = ("tanh", "sigmoid"), ("per_unit", "shared")
    spec, params, X, T = make_case(acts, biases, layout, l2=L2Spec(lam, include_bias))
    trace, grads = backprop(spec, params, X, T)
    hand = chain_rule_by_loops(acts, biases, 1.0)
    squares = sum(w * w for row in W1 for w in row) + sum(w * w for row in W2 for w in row)
    if include_bias:
        squares += sum(b * b for b in B1) + SHARED_B2**2
    assert trace.penalty == pytest.approx(lam / 2 * squares, rel=1e-14)
    assert l2_penalty(spec, params) == pytest.approx(lam / 2 * squares, rel=1e-14)
    assert trace.data_loss == pytest.approx(hand.loss, rel=1e-13)
    assert trace.loss == pytest.approx(hand.loss + lam / 2 * squares, rel=1e-13)
    rows = (lambda m: m) if layout == "in_out" else (lambda m: m.T)
    weights, bias_values_ = [W1, W2], [B1, [SHARED_B2]]
    for layer in range(2):
        g = grads.layers[layer]
        expected_W = np.array(hand.grad_W[layer]) + lam * np.array(weights[layer])
        np.testing.assert_allclose(rows(g.grad_W), expected_W, rtol=1e-12)
        expected_b = np.array(hand.grad_b[layer]) + (lam * np.array(bias_values_[layer]) if include_bias else 0.0)
        np.testing.assert_allclose(g.grad_b, expected_b, rtol=1e-12)
        np.testing.assert_allclose(rows(g.delta), hand.delta[layer], rtol=1e-12)
        np.testing.assert_allclose(rows(g.grad_a), hand.grad_a[layer], rtol=1e-12)
    np.testing.assert_allclose(rows(grads.grad_x), hand.grad_x, rtol=1e-12)


def test_l2_penalty_on_explicit_numbers() -> None:
    spec = NetworkSpec(inputs=2, layers=(LayerSpec(1, bias="per_unit"),), l2=L2Spec(0.5, include_bias=True))
    params = {"W1": np.array([[3.0], [4.0]]), "b1": np.array([2.0])}
    assert l2_penalty(spec, params) == 0.25 * (9 + 16 + 4)
    assert l2_penalty(spec.replace(l2=L2Spec(0.5)), params) == 0.25 * 25
    assert l2_penalty(spec.replace(l2=L2Spec(0.0, include_bias=True)), params) == 0.0


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_softmax_output_under_half_sse_backpropagates_through_the_full_jacobian(layout: str) -> None:
    z_rows = [[0.2, -0.4, 1.1], [2.0, 0.0, -1.0]]
    t_rows = [[1.0, 0.0, 0.0], [0.3, 0.3, 0.4]]
    spec = NetworkSpec(3, (LayerSpec(3, "softmax", "none"),), layout, LossSpec("half_sse"))
    orient = (lambda m: np.array(m)) if layout == "in_out" else (lambda m: np.array(m).T)
    _, grads = backprop(spec, {"W1": np.eye(3)}, orient(z_rows), orient(t_rows))
    for n, (z, t) in enumerate(zip(z_rows, t_rows, strict=True)):
        e = [math.exp(v) for v in z]
        a = [v / sum(e) for v in e]
        g = [a[i] - t[i] for i in range(3)]
        # δ_j = Σ_i ∂a_i/∂z_j · g_i with ∂a_i/∂z_j = a_i(1[i = j] − a_j)
        delta = [sum(a[i] * ((i == j) - a[j]) * g[i] for i in range(3)) for j in range(3)]
        got = grads.layers[0].delta[n] if layout == "in_out" else grads.layers[0].delta[:, n]
        np.testing.assert_allclose(got, delta, rtol=1e-12, atol=1e-16)


def test_forward_without_targets_has_no_loss() -> None:
    spec, params, X, _ = make_case(("tanh", "sigmoid"), ("per_unit", "per_unit"), "in_out")
    trace = forward(spec, params, X)
    assert trace.data_loss is None
    assert trace.penalty is None
    assert trace.loss is None
    assert trace.output.shape == (4, 2)


FLOAT32_CASES = [
    ("half_sse", "sigmoid", "dense"),
    ("mse", "tanh", "dense"),
    ("softmax_cross_entropy", "softmax", "dense"),
    ("softmax_cross_entropy", "softmax", "index"),
    ("binary_cross_entropy", "sigmoid", "dense"),
]


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
@pytest.mark.parametrize(("kind", "out_act", "targets"), FLOAT32_CASES)
def test_float32_spec_returns_float32_everywhere(kind: str, out_act: str, targets: str, layout: str) -> None:
    spec = NetworkSpec(
        3,
        (LayerSpec(4, "leaky_relu", "shared"), LayerSpec(3, out_act)),
        layout,
        LossSpec(kind, "mean", targets),
        L2Spec(0.1, include_bias=True),
        dtype="float32",
    )
    params = init_parameters(spec, seed=3)
    X = np.arange(15, dtype=np.float64).reshape(spec.input_shape(5)) / 10 - 0.7
    T = np.array([0, 2, 1, 1, 0]) if targets == "index" else np.full(spec.target_shape(5), 1.0 / 3)
    trace, grads = backprop(spec, params, X, T)
    arrays = [trace.x, grads.grad_x]
    for layer_fwd, layer_grad in zip(trace.layers, grads.layers, strict=True):
        arrays += [layer_fwd.z, layer_fwd.a, layer_grad.delta, layer_grad.grad_a, layer_grad.grad_W]
        arrays += [layer_grad.grad_b] if layer_grad.grad_b is not None else []
    assert [a.dtype for a in arrays] == [np.float32] * len(arrays)
    assert math.isfinite(trace.loss)


def test_float32_values_match_the_chain_rule_to_single_precision() -> None:
    acts, biases = ("tanh", "sigmoid"), ("per_unit", "shared")
    spec, params, X, T = make_case(acts, biases, "in_out", dtype="float32")
    params = {name: value.astype(np.float32) for name, value in params.items()}
    trace, grads = backprop(spec, params, X, T)
    hand = chain_rule_by_loops(acts, biases, 1.0)
    assert trace.data_loss == pytest.approx(hand.loss, rel=1e-5)
    for layer in range(2):
        assert grads.layers[layer].grad_W.dtype == np.float32
        np.testing.assert_allclose(grads.layers[layer].grad_W, hand.grad_W[layer], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grads.grad_x, hand.grad_x, rtol=1e-4, atol=1e-6)
