"""Every loss × reduction × layout: value, ``∂L/∂a_L`` and ``δ_L`` against explicit loops.

The network is one layer with ``W = I`` and no bias, so ``z_L`` is exactly the input and
the expected numbers depend only on the logits written in this file.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from refbp.losses import compute_loss
from refbp.network import backprop
from refbp.spec import LayerSpec, LossSpec, NetworkSpec

LOGITS = [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3], [-0.7, 0.0, 0.9]]  # N = 3 examples, k = 3 outputs
N, K = 3, 3
LABELS = [2, 0, 1]
REGRESSION_TARGETS = [[0.1, 0.2, 0.3], [1.0, -1.0, 0.0], [0.5, 0.5, 0.5]]
BINARY_TARGETS = [[0.0, 1.0, 0.3], [1.0, 0.0, 0.5], [0.2, 0.8, 1.0]]

OUTPUT_ACTIVATION = {
    "half_sse": "sigmoid",
    "mse": "tanh",
    "softmax_cross_entropy": "softmax",
    "binary_cross_entropy": "sigmoid",
}


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def softmax_row(z: list[float]) -> list[float]:
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


def one_hot(labels: list[int], k: int) -> list[list[float]]:
    return [[1.0 if j == c else 0.0 for j in range(k)] for c in labels]


def identity_network(kind: str, reduction: str, layout: str, k: int = K, targets: str = "dense") -> NetworkSpec:
    layer = LayerSpec(k, OUTPUT_ACTIVATION[kind], "none")
    return NetworkSpec(inputs=k, layers=(layer,), layout=layout, loss=LossSpec(kind, reduction, targets))


def run(spec: NetworkSpec, logits: list[list[float]], T: object) -> tuple:
    """Backprop with ``W = I``; inputs and (dense) targets are given as rows and transposed for out_in."""
    X = np.array(logits)
    if spec.layout == "out_in":
        X = X.T
        if spec.loss.targets == "dense":
            T = np.array(T).T
    trace, grads = backprop(spec, {"W1": np.eye(spec.inputs)}, X, T)
    out = grads.layers[-1]
    rows = (lambda m: m) if spec.layout == "in_out" else (lambda m: m.T)
    return trace, rows(trace.layers[-1].z), rows(trace.layers[-1].a), rows(out.grad_a), rows(out.delta)


def expected_by_loops(kind: str, reduction: str) -> tuple[float, list[list[float]], list[list[float]], list]:
    """``(loss, a, ∂L/∂a, δ)`` for :data:`LOGITS`, one scalar at a time."""
    loss, a_rows, grad_a, delta = 0.0, [], [], []
    if kind in ("half_sse", "mse"):
        scale = 1.0 if reduction == "sum" else (1.0 / N if kind == "half_sse" else 1.0 / (N * K))
        factor = 0.5 if kind == "half_sse" else 1.0  # ½Σd² vs Σd²; dL/da = 2·factor·d
        for z_row, t_row in zip(LOGITS, REGRESSION_TARGETS, strict=True):
            if kind == "half_sse":
                a = [sig(z) for z in z_row]
                da_dz = [math.exp(-z) / (1 + math.exp(-z)) ** 2 for z in z_row]
            else:
                a = [math.tanh(z) for z in z_row]
                da_dz = [1 / math.cosh(z) ** 2 for z in z_row]
            g = [2 * factor * scale * (ai - ti) for ai, ti in zip(a, t_row, strict=True)]
            loss += sum(factor * scale * (ai - ti) ** 2 for ai, ti in zip(a, t_row, strict=True))
            a_rows.append(a)
            grad_a.append(g)
            delta.append([gi * d for gi, d in zip(g, da_dz, strict=True)])
        return loss, a_rows, grad_a, delta
    scale = 1.0 if reduction == "sum" else 1.0 / N
    if kind == "softmax_cross_entropy":
        for z_row, t_row in zip(LOGITS, one_hot(LABELS, K), strict=True):
            lse = math.log(sum(math.exp(z) for z in z_row))
            loss += -scale * sum(t * (z - lse) for z, t in zip(z_row, t_row, strict=True))
            a = softmax_row(z_row)
            a_rows.append(a)
            grad_a.append([-scale * t / ai if t else 0.0 for ai, t in zip(a, t_row, strict=True)])
            delta.append([scale * (ai - t) for ai, t in zip(a, t_row, strict=True)])
        return loss, a_rows, grad_a, delta
    for z_row, t_row in zip(LOGITS, BINARY_TARGETS, strict=True):
        a = [sig(z) for z in z_row]
        loss += -scale * sum(t * math.log(ai) + (1 - t) * math.log(1 - ai) for ai, t in zip(a, t_row, strict=True))
        a_rows.append(a)
        grad_a.append([scale * (-t / ai + (1 - t) / (1 - ai)) for ai, t in zip(a, t_row, strict=True)])
        delta.append([scale * (ai - t) for ai, t in zip(a, t_row, strict=True)])
    return loss, a_rows, grad_a, delta


CASES = [
    ("half_sse", "dense"),
    ("mse", "dense"),
    ("softmax_cross_entropy", "dense"),
    ("softmax_cross_entropy", "index"),
    ("binary_cross_entropy", "dense"),
]


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize(("kind", "targets"), CASES)
def test_loss_value_grad_a_and_delta_match_explicit_loops(kind: str, targets: str, reduction: str, layout: str) -> None:
    spec = identity_network(kind, reduction, layout, targets=targets)
    if kind == "softmax_cross_entropy":
        T = LABELS if targets == "index" else one_hot(LABELS, K)
    else:
        T = BINARY_TARGETS if kind == "binary_cross_entropy" else REGRESSION_TARGETS
    trace, z, a, grad_a, delta = run(spec, LOGITS, T)
    loss, exp_a, exp_grad_a, exp_delta = expected_by_loops(kind, reduction)
    np.testing.assert_array_equal(z, LOGITS)
    np.testing.assert_allclose(a, exp_a, rtol=1e-14)
    assert trace.data_loss == pytest.approx(loss, rel=1e-13)
    assert trace.penalty == 0.0
    np.testing.assert_allclose(grad_a, exp_grad_a, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(delta, exp_delta, rtol=1e-12, atol=1e-15)


def test_mean_divides_half_sse_by_n_and_mse_by_n_times_k() -> None:
    # N = 2 examples, k = 3 outputs, every residual 1: Σ d² = 6.
    a = np.ones((2, 3))
    t = np.zeros((2, 3))
    expected = {("half_sse", "sum"): 3.0, ("half_sse", "mean"): 1.5, ("mse", "sum"): 6.0, ("mse", "mean"): 1.0}
    grad = {("half_sse", "sum"): 1.0, ("half_sse", "mean"): 0.5, ("mse", "sum"): 2.0, ("mse", "mean"): 2.0 / 6.0}
    for (kind, reduction), value in expected.items():
        spec = NetworkSpec(inputs=1, layers=(LayerSpec(3),), loss=LossSpec(kind, reduction))
        loss, grad_a, delta = compute_loss(spec, a, a, t)
        assert loss == value, (kind, reduction)
        np.testing.assert_allclose(grad_a, np.full((2, 3), grad[kind, reduction]), rtol=1e-15)
        assert delta is None  # the caller applies the output activation's backward


def test_cross_entropy_is_finite_at_logits_of_magnitude_1000() -> None:
    logits = [[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0], [-1000.0, 1000.0, 0.0]]
    spec = identity_network("softmax_cross_entropy", "sum", "in_out", targets="index")
    with np.errstate(over="raise"):
        trace, _, a, _, delta = run(spec, logits, [0, 2, 0])
    # −log softmax: row 1 → 0; row 2 → 1000 + log(1 + e^{-1}) − 999; row 3 → 2000.
    assert trace.data_loss == pytest.approx(0.0 + (1.0 + math.log1p(math.exp(-1.0))) + 2000.0, rel=1e-15)
    p = 1.0 / (1.0 + math.exp(-1.0))
    np.testing.assert_allclose(a, [[1, 0, 0], [0, p, 1 - p], [0, 1, 0]], rtol=1e-15, atol=0)
    np.testing.assert_allclose(delta, [[0, 0, 0], [0, p, -p], [-1, 1, 0]], rtol=1e-14, atol=1e-300)


def test_binary_cross_entropy_from_logits_is_finite_at_1000() -> None:
    spec = identity_network("binary_cross_entropy", "sum", "in_out", k=4)
    with np.errstate(over="raise"):
        trace, _, a, _, delta = run(spec, [[1000.0, -1000.0, 1000.0, -1000.0]], [[1.0, 0.0, 0.0, 1.0]])
    # Right answers cost 0, confidently wrong ones cost |z| = 1000 each.
    assert trace.data_loss == 2000.0
    assert a.tolist() == [[1.0, 0.0, 1.0, 0.0]]
    assert delta.tolist() == [[0.0, 0.0, 1.0, -1.0]]


def cross_entropy_by_loops(z: list[float], t: list[float]) -> float:
    lse = math.log(sum(math.exp(v) for v in z))
    return -sum(ti * (zi - lse) for zi, ti in zip(z, t, strict=True))


@pytest.mark.parametrize("t", [[0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
def test_cross_entropy_delta_for_dense_targets_that_need_not_sum_to_one(t: list[float]) -> None:
    """``∂/∂z_j (−Σ t_i log softmax_i) = a_j Σ_i t_i − t_j``; ``a − t`` only when ``Σ t = 1``."""
    z = [0.3, -1.2, 0.8]
    spec = identity_network("softmax_cross_entropy", "sum", "in_out")
    trace, _, _, _, delta = run(spec, [z], [t])
    s = softmax_row(z)
    expected = [s[j] * sum(t) - t[j] for j in range(3)]
    assert trace.data_loss == pytest.approx(cross_entropy_by_loops(z, t), rel=1e-14, abs=1e-15)
    np.testing.assert_allclose(delta[0], expected, rtol=1e-12, atol=1e-15)
    h = 1e-6  # and the formula itself, by central differences of the loop loss
    for j in range(3):
        up = [v + (h if i == j else 0.0) for i, v in enumerate(z)]
        down = [v - (h if i == j else 0.0) for i, v in enumerate(z)]
        fd = (cross_entropy_by_loops(up, t) - cross_entropy_by_loops(down, t)) / (2 * h)
        assert fd == pytest.approx(expected[j], abs=1e-8)
