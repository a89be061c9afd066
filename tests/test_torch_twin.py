"""The torch twin against numbers worked out by hand in each test (never against refbp)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from oracle.torch_twin import resolve_device, torch_backprop
from refbp.errors import InputError
from refbp.spec import L2Spec, LayerSpec, LossSpec, NetworkSpec

TOL = {"rtol": 1e-10, "atol": 1e-12}
RNG_SEED = 1234


def close(actual: np.ndarray | float, expected: np.ndarray | float, **tol: float) -> None:
    np.testing.assert_allclose(actual, expected, **(tol or TOL))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def softmax_rows(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def one_layer(
    units: int,
    activation: str,
    loss: LossSpec | None = None,
    *,
    inputs: int = 3,
    bias: str = "per_unit",
    l2: L2Spec | None = None,
    slope: float = 0.01,
) -> NetworkSpec:
    return NetworkSpec(
        inputs=inputs, layers=(LayerSpec(units, activation, bias, slope),), loss=loss or LossSpec(), l2=l2 or L2Spec()
    )


def batch(n: int = 4, inputs: int = 3, outputs: int = 2, seed: int = RNG_SEED) -> tuple[np.ndarray, ...]:
    """``X (n, inputs)``, ``W (inputs, outputs)``, ``b (outputs,)``, ``T (n, outputs)`` in the in_out layout."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, inputs))
    W = rng.normal(size=(inputs, outputs))
    b = rng.normal(size=outputs) * 0.5
    T = rng.uniform(0.05, 0.95, size=(n, outputs))
    return X, W, b, T


# --- one layer, every activation ------------------------------------------------------


def test_single_sigmoid_half_sse_by_hand() -> None:
    X, W, b, T = batch()
    trace, grads = torch_backprop(one_layer(2, "sigmoid"), {"W1": W, "b1": b}, X, T)
    z = X @ W + b
    a = sigmoid(z)
    delta = (a - T) * a * (1 - a)
    close(trace.layers[0].z, z)
    close(trace.layers[0].a, a)
    close(trace.data_loss, 0.5 * np.sum((a - T) ** 2))
    assert trace.penalty == 0.0
    g = grads.layers[0]
    close(g.grad_a, a - T)
    close(g.delta, delta)
    close(g.grad_W, X.T @ delta)
    close(g.grad_b, delta.sum(axis=0))
    close(grads.grad_x, delta @ W.T)


DERIVATIVES = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "sigmoid": (sigmoid, lambda z: sigmoid(z) * (1 - sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.2 * z), lambda z: np.where(z > 0, 1.0, 0.2)),
}


@pytest.mark.parametrize("activation", sorted(DERIVATIVES))
def test_elementwise_activation_by_hand(activation: str) -> None:
    X, W, b, T = batch(n=5, outputs=3)
    f, df = DERIVATIVES[activation]
    trace, grads = torch_backprop(one_layer(3, activation, slope=0.2), {"W1": W, "b1": b}, X, T)
    z = X @ W + b
    assert np.all(np.abs(z) > 1e-6)  # away from the kink of relu / leaky_relu
    delta = (f(z) - T) * df(z)
    close(trace.layers[0].a, f(z))
    close(grads.layers[0].delta, delta)
    close(grads.layers[0].grad_W, X.T @ delta)
    close(grads.grad_x, delta @ W.T)


def test_softmax_with_half_sse_uses_the_full_jacobian() -> None:
    X, W, b, T = batch(n=3, outputs=3)
    trace, grads = torch_backprop(one_layer(3, "softmax"), {"W1": W, "b1": b}, X, T)
    s = softmax_rows(X @ W + b)
    g = s - T
    # δ_n = (diag(s_n) − s_n s_nᵀ) g_n for every example n
    delta = np.stack([(np.diag(s[n]) - np.outer(s[n], s[n])) @ g[n] for n in range(3)])
    close(trace.layers[0].a, s)
    close(grads.layers[0].grad_a, g)
    close(grads.layers[0].delta, delta)
    close(grads.layers[0].grad_b, delta.sum(axis=0))


# --- losses ---------------------------------------------------------------------------


def test_mse_by_hand() -> None:
    X, W, b, T = batch()
    trace, grads = torch_backprop(one_layer(2, "identity", LossSpec("mse")), {"W1": W, "b1": b}, X, T)
    y = X @ W + b
    close(trace.data_loss, np.sum((y - T) ** 2))
    close(grads.layers[0].grad_a, 2 * (y - T))
    close(grads.layers[0].delta, 2 * (y - T))


def test_softmax_cross_entropy_by_hand() -> None:
    X, W, b, _ = batch(n=4, outputs=3)
    T = np.array([[0.2, 0.3, 0.5], [1, 0, 0], [0, 1, 0], [0.1, 0.1, 0.8]])
    spec = one_layer(3, "softmax", LossSpec("softmax_cross_entropy"))
    trace, grads = torch_backprop(spec, {"W1": W, "b1": b}, X, T)
    s = softmax_rows(X @ W + b)
    close(trace.data_loss, -np.sum(T * np.log(s)))
    close(grads.layers[0].delta, s - T)
    close(grads.layers[0].grad_a, -T / s)  # ∂/∂a of −Σ t log a
    close(grads.layers[0].grad_W, X.T @ (s - T))


def test_binary_cross_entropy_by_hand() -> None:
    X, W, b, T = batch()
    spec = one_layer(2, "sigmoid", LossSpec("binary_cross_entropy"))
    trace, grads = torch_backprop(spec, {"W1": W, "b1": b}, X, T)
    z = X @ W + b
    a = sigmoid(z)
    close(trace.data_loss, -np.sum(T * np.log(a) + (1 - T) * np.log(1 - a)))
    close(grads.layers[0].delta, a - T)
    close(grads.layers[0].grad_a, -T / a + (1 - T) / (1 - a))
    close(grads.layers[0].grad_b, (a - T).sum(axis=0))


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_index_and_one_hot_targets_agree(layout: str) -> None:
    dense = NetworkSpec(3, (LayerSpec(4, "tanh"), LayerSpec(3, "softmax")), layout, LossSpec("softmax_cross_entropy"))
    index = dense.replace(loss=LossSpec("softmax_cross_entropy", targets="index"))
    rng = np.random.default_rng(7)
    params = {
        "W1": rng.normal(size=dense.weight_shape(1)),
        "b1": rng.normal(size=4),
        "W2": rng.normal(size=dense.weight_shape(2)),
        "b2": rng.normal(size=3),
    }
    X = rng.normal(size=dense.input_shape(5))
    labels = np.array([2, 0, 1, 1, 2])
    one_hot = np.eye(3)[labels] if layout == "in_out" else np.eye(3)[labels].T
    t_dense, g_dense = torch_backprop(dense, params, X, one_hot)
    t_index, g_index = torch_backprop(index, params, X, labels)
    assert t_dense.data_loss == pytest.approx(t_index.data_loss, rel=1e-14)
    for gd, gi in zip(g_dense.layers, g_index.layers, strict=True):
        for name in ("delta", "grad_a", "grad_W", "grad_b"):
            close(getattr(gi, name), getattr(gd, name), rtol=1e-14, atol=0)
    close(g_index.grad_x, g_dense.grad_x, rtol=1e-14, atol=0)


# --- reductions -----------------------------------------------------------------------

TWO_LAYER_CASES = {
    "half_sse": ("identity", LossSpec("half_sse")),
    "mse": ("sigmoid", LossSpec("mse")),
    "softmax_cross_entropy": ("softmax", LossSpec("softmax_cross_entropy")),
    "binary_cross_entropy": ("sigmoid", LossSpec("binary_cross_entropy")),
}


def two_layer_problem(loss_name: str, hidden: str = "tanh") -> tuple:
    """A 3→4→3 network (hidden bias shared, output bias per unit), 5 examples, in_out data."""
    out_act, loss = TWO_LAYER_CASES[loss_name]
    spec = NetworkSpec(3, (LayerSpec(4, hidden, "shared", 0.1), LayerSpec(3, out_act)), loss=loss)
    rng = np.random.default_rng(11)
    params = {
        "W1": rng.normal(size=(3, 4)),
        "b1": np.array([0.3]),
        "W2": rng.normal(size=(4, 3)),
        "b2": rng.normal(size=3),
    }
    X = rng.normal(size=(5, 3))
    T = np.eye(3)[[0, 2, 1, 1, 0]] if loss_name == "softmax_cross_entropy" else rng.uniform(0.05, 0.95, size=(5, 3))
    return spec, params, X, T


@pytest.mark.parametrize("loss_name", sorted(TWO_LAYER_CASES))
def test_mean_is_sum_divided_by_n_or_nk(loss_name: str) -> None:
    spec, params, X, T = two_layer_problem(loss_name)
    mean_spec = spec.replace(loss=LossSpec(spec.loss.kind, "mean"))
    t_sum, g_sum = torch_backprop(spec, params, X, T)
    t_mean, g_mean = torch_backprop(mean_spec, params, X, T)
    divisor = 5 * 3 if loss_name == "mse" else 5
    close(t_mean.data_loss, t_sum.data_loss / divisor)
    for fs, fm in zip(t_sum.layers, t_mean.layers, strict=True):
        close(fm.z, fs.z)
        close(fm.a, fs.a)
    for gs, gm in zip(g_sum.layers, g_mean.layers, strict=True):
        for name in ("delta", "grad_a", "grad_W", "grad_b"):
            close(getattr(gm, name), getattr(gs, name) / divisor)
    close(g_mean.grad_x, g_sum.grad_x / divisor)


# --- layouts --------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", sorted(DERIVATIVES))
@pytest.mark.parametrize("loss_name", sorted(TWO_LAYER_CASES))
def test_out_in_is_the_transpose_of_in_out(loss_name: str, hidden: str) -> None:
    spec, params, X, T = two_layer_problem(loss_name, hidden)
    out_in = spec.replace(layout="out_in")
    t_params = {k: (v.T if k.startswith("W") else v) for k, v in params.items()}
    trace, grads = torch_backprop(spec, params, X, T)
    trace_t, grads_t = torch_backprop(out_in, t_params, X.T, T.T)
    close(trace_t.data_loss, trace.data_loss)
    for f, ft in zip(trace.layers, trace_t.layers, strict=True):
        close(ft.z, f.z.T)
        close(ft.a, f.a.T)
    for g, gt in zip(grads.layers, grads_t.layers, strict=True):
        close(gt.delta, g.delta.T)
        close(gt.grad_a, g.grad_a.T)
        close(gt.grad_W, g.grad_W.T)
        close(gt.grad_b, g.grad_b)
    close(grads_t.grad_x, grads.grad_x.T)


def test_two_layer_chain_by_hand() -> None:
    """relu hidden (shared bias), identity output, mse mean: every layer's quantities by hand."""
    _, params, X, T = two_layer_problem("mse")
    spec = NetworkSpec(3, (LayerSpec(4, "relu", "shared"), LayerSpec(3, "identity")), loss=LossSpec("mse", "mean"))
    trace, grads = torch_backprop(spec, params, X, T)
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    z1 = X @ W1 + b1[0]
    a1 = np.maximum(z1, 0)
    y = a1 @ W2 + b2
    n_k = T.size
    gy = 2 * (y - T) / n_k
    ga1 = gy @ W2.T
    d1 = ga1 * (z1 > 0)
    close(trace.data_loss, np.sum((y - T) ** 2) / n_k)
    close(grads.layers[1].grad_a, gy)
    close(grads.layers[1].delta, gy)
    close(grads.layers[1].grad_W, a1.T @ gy)
    close(grads.layers[1].grad_b, gy.sum(axis=0))
    close(grads.layers[0].grad_a, ga1)
    close(grads.layers[0].delta, d1)
    close(grads.layers[0].grad_W, X.T @ d1)
    close(grads.layers[0].grad_b, [d1.sum()])  # a shared bias collects δ over units and batch
    close(grads.grad_x, d1 @ W1.T)


# --- biases and L2 --------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_shared_bias_gradient_sums_delta_over_units_and_batch(layout: str) -> None:
    X, W, _, T = batch(n=4, outputs=3)
    T = T[:, :3]
    if layout == "out_in":
        X, W, T = X.T, W.T, T.T
    spec = one_layer(3, "sigmoid", bias="shared").replace(layout=layout)
    trace, grads = torch_backprop(spec, {"W1": W, "b1": np.array([0.7])}, X, T)
    z = (X @ W if layout == "in_out" else W @ X) + 0.7
    a = sigmoid(z)
    delta = (a - T) * a * (1 - a)
    close(trace.layers[0].z, z)
    assert grads.layers[0].grad_b.shape == (1,)
    close(grads.layers[0].grad_b, [delta.sum()])


def test_bias_none_has_no_bias_gradient() -> None:
    X, W, _, T = batch()
    spec = one_layer(2, "tanh", bias="none")
    trace, grads = torch_backprop(spec, {"W1": W}, X, T)
    a = np.tanh(X @ W)
    delta = (a - T) * (1 - a**2)
    close(trace.layers[0].a, a)
    assert grads.layers[0].grad_b is None
    assert list(grads.by_parameter()) == ["W1"]
    close(grads.layers[0].grad_W, X.T @ delta)
    with pytest.raises(InputError, match="b1"):
        torch_backprop(spec, {"W1": W, "b1": np.zeros(2)}, X, T)


@pytest.mark.parametrize("include_bias", [False, True])
def test_l2_penalty_and_gradients(include_bias: bool) -> None:
    X, W, b, T = batch()
    lam = 0.3
    spec = one_layer(2, "sigmoid", l2=L2Spec(lam, include_bias))
    trace, grads = torch_backprop(spec, {"W1": W, "b1": b}, X, T)
    a = sigmoid(X @ W + b)
    delta = (a - T) * a * (1 - a)
    expected_penalty = lam / 2 * (np.sum(W**2) + (np.sum(b**2) if include_bias else 0.0))
    close(trace.data_loss, 0.5 * np.sum((a - T) ** 2))
    close(trace.penalty, expected_penalty)
    close(trace.loss, trace.data_loss + expected_penalty)
    close(grads.layers[0].delta, delta)  # L2 does not touch δ
    close(grads.layers[0].grad_W, X.T @ delta + lam * W)
    close(grads.layers[0].grad_b, delta.sum(axis=0) + (lam * b if include_bias else 0.0))
    close(grads.grad_x, delta @ W.T)


# --- the notes' worked example --------------------------------------------------------


def test_lecture_notes_case_1() -> None:
    """案例 1: 3→2→2, sigmoid, shared biases 0.5, half_sse, one example."""
    spec = NetworkSpec(3, (LayerSpec(2, "sigmoid", "shared"), LayerSpec(2, "sigmoid", "shared")))
    W1 = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    W2 = np.array([[0.7, 0.8], [0.9, 0.1]])
    params = {"W1": W1, "b1": np.array([0.5]), "W2": W2, "b2": np.array([0.5])}
    x, t = np.array([[1.0, 4.0, 5.0]]), np.array([[0.1, 0.05]])
    trace, grads = torch_backprop(spec, params, x, t)

    def d4(value: np.ndarray | float, expected: list | float) -> None:
        close(value, expected, rtol=0, atol=5e-5)

    d4(trace.layers[0].z, [[4.3, 5.3]])
    d4(trace.layers[0].a, [[0.9866, 0.9950]])
    d4(trace.layers[1].z, [[2.0862, 1.3888]])
    d4(trace.layers[1].a, [[0.8896, 0.8004]])
    d4(grads.layers[1].grad_W, [[0.0765, 0.1183], [0.0772, 0.1193]])
    d4(grads.layers[1].grad_b, [0.1975])
    d4(grads.layers[0].grad_W[:, 0], [0.0020, 0.0079, 0.0099])

    # The shared hidden bias, from scalars: dE/db1 = Σ_h dE/dh · h(1 − h).
    h1 = sigmoid(1 * 0.1 + 4 * 0.3 + 5 * 0.5 + 0.5)
    h2 = sigmoid(1 * 0.2 + 4 * 0.4 + 5 * 0.6 + 0.5)
    o1, o2 = sigmoid(0.7 * h1 + 0.9 * h2 + 0.5), sigmoid(0.8 * h1 + 0.1 * h2 + 0.5)
    d_o1, d_o2 = (o1 - 0.1) * o1 * (1 - o1), (o2 - 0.05) * o2 * (1 - o2)
    dE_dh1, dE_dh2 = d_o1 * 0.7 + d_o2 * 0.8, d_o1 * 0.9 + d_o2 * 0.1
    db1 = dE_dh1 * h1 * (1 - h1) + dE_dh2 * h2 * (1 - h2)
    d4(dE_dh1, 0.1502)
    d4(dE_dh2, 0.0818)
    d4(db1, 0.0024)  # the notes print 0.0008: that is δ_h1 alone, not the shared-bias sum
    close(grads.layers[0].grad_a, [[dE_dh1, dE_dh2]])
    close(grads.layers[0].grad_b, [db1])
    close(trace.data_loss, 0.5 * ((o1 - 0.1) ** 2 + (o2 - 0.05) ** 2))


# --- dtype and device -----------------------------------------------------------------


def test_float32_returns_float32() -> None:
    spec, params, X, T = two_layer_problem("binary_cross_entropy")
    t64, g64 = torch_backprop(spec, params, X, T)
    t32, g32 = torch_backprop(spec.replace(dtype="float32"), params, X, T)
    arrays = [t32.x, *(f.z for f in t32.layers), *(f.a for f in t32.layers), g32.grad_x]
    arrays += [getattr(g, name) for g in g32.layers for name in ("delta", "grad_a", "grad_W", "grad_b")]
    assert all(arr.dtype == np.float32 for arr in arrays)
    assert isinstance(t32.data_loss, float)
    close(t32.data_loss, t64.data_loss, rtol=1e-5, atol=1e-6)
    close(g32.layers[0].grad_W, g64.layers[0].grad_W, rtol=1e-4, atol=1e-5)


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cuda") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cpu")
    with pytest.raises(InputError, match="device"):
        resolve_device("tpu")


def test_cuda_request_without_cuda_falls_back_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, params, X, T = two_layer_problem("half_sse")
    expected_trace, expected = torch_backprop(spec, params, X, T)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    trace, grads = torch_backprop(spec, params, X, T, device="cuda")
    assert trace.data_loss == expected_trace.data_loss
    close(grads.layers[0].grad_W, expected.layers[0].grad_W, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    spec, params, X, T = two_layer_problem("softmax_cross_entropy")
    cpu_trace, cpu = torch_backprop(spec, params, X, T)
    gpu_trace, gpu = torch_backprop(spec, params, X, T, device="cuda")
    close(gpu_trace.data_loss, cpu_trace.data_loss)
    for gc, gg in zip(cpu.layers, gpu.layers, strict=True):
        close(gg.grad_W, gc.grad_W)
        close(gg.delta, gc.delta)
    close(gpu.grad_x, cpu.grad_x)


def test_works_inside_no_grad() -> None:
    spec, params, X, T = two_layer_problem("softmax_cross_entropy")
    expected_trace, expected = torch_backprop(spec, params, X, T)
    with torch.no_grad():
        trace, grads = torch_backprop(spec, params, X, T)
    assert trace.data_loss == expected_trace.data_loss
    close(grads.layers[1].grad_a, expected.layers[1].grad_a, rtol=0, atol=0)
    close(grads.layers[0].grad_W, expected.layers[0].grad_W, rtol=0, atol=0)


# --- stability ------------------------------------------------------------------------


def test_bce_with_saturated_logits_is_finite() -> None:
    spec = one_layer(2, "sigmoid", LossSpec("binary_cross_entropy"), inputs=1)
    params = {"W1": np.array([[1000.0, -1000.0]]), "b1": np.zeros(2)}
    X = np.array([[1.0], [-1.0]])  # logits [[1000, −1000], [−1000, 1000]]
    # Targets that agree with the saturation: zero loss, every gradient finite.
    trace, grads = torch_backprop(spec, params, X, np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert trace.data_loss == 0.0
    g = grads.layers[0]
    for arr in (g.delta, g.grad_a, g.grad_W, g.grad_b, grads.grad_x):
        assert np.all(np.isfinite(arr))
    close(g.grad_a, [[-1.0, 1.0], [1.0, -1.0]])  # −1/a for t = 1, 1/(1 − a) for t = 0
    # Targets that disagree: loss 1000 per wrong entry, δ = σ(z) − t exactly.
    trace, grads = torch_backprop(spec, params, X, np.array([[1.0, 1.0], [0.0, 0.0]]))
    close(trace.data_loss, 2000.0)
    close(grads.layers[0].delta, [[0.0, -1.0], [0.0, 1.0]])
    close(grads.layers[0].grad_W, [[0.0, -2.0]])
    assert np.all(np.isfinite(grads.layers[0].grad_b)) and np.all(np.isfinite(grads.grad_x))


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_softmax_cross_entropy_with_huge_logits_is_finite(layout: str) -> None:
    spec = one_layer(3, "softmax", LossSpec("softmax_cross_entropy", targets="index"), inputs=1).replace(layout=layout)
    W = np.array([[1000.0, -1000.0, 0.0]])
    X = np.array([[1.0], [-1.0]])
    if layout == "out_in":
        W, X = W.T, X.T
    # Example 1's label has the largest logit (loss 0); example 2's label 2 trails by 1000.
    trace, grads = torch_backprop(spec, {"W1": W, "b1": np.zeros(3)}, X, np.array([0, 2]))
    close(trace.data_loss, 1000.0)
    delta = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, -1.0]])
    close(grads.layers[0].delta, delta if layout == "in_out" else delta.T)
    close(grads.layers[0].grad_b, [0.0, 1.0, -1.0])
    for arr in (grads.layers[0].grad_W, grads.grad_x):
        assert np.all(np.isfinite(arr))


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, X, T, field",
    [
        ({"W1": np.zeros((2, 3)), "b1": np.zeros(2)}, np.zeros((4, 3)), np.zeros((4, 2)), "W1"),
        ({"W1": np.zeros((3, 2))}, np.zeros((4, 3)), np.zeros((4, 2)), "b1"),
        ({"W1": np.zeros((3, 2)), "b1": np.zeros(2), "W2": np.zeros((2, 2))}, np.zeros((4, 3)), np.zeros((4, 2)), "W2"),
        ({"W1": np.zeros((3, 2)), "b1": np.full(2, np.nan)}, np.zeros((4, 3)), np.zeros((4, 2)), "b1"),
        ({"W1": np.zeros((3, 2)), "b1": np.zeros(2)}, np.zeros((4, 2)), np.zeros((4, 2)), "X"),
        ({"W1": np.zeros((3, 2)), "b1": np.zeros(2)}, np.zeros((4, 3)), np.zeros((2, 4)), "T"),
    ],
)
def test_bad_input_raises_input_error(params: dict, X: np.ndarray, T: np.ndarray, field: str) -> None:
    with pytest.raises(InputError) as err:
        torch_backprop(one_layer(2, "sigmoid"), params, X, T)
    assert err.value.field == field


def test_index_labels_out_of_range() -> None:
    spec = one_layer(3, "softmax", LossSpec("softmax_cross_entropy", targets="index"))
    with pytest.raises(InputError, match="T"):
        torch_backprop(spec, {"W1": np.zeros((3, 3)), "b1": np.zeros(3)}, np.zeros((2, 3)), np.array([0, 3]))


# --- independence ---------------------------------------------------------------------


def test_twin_imports_no_refbp_math() -> None:
    source = Path(__file__).resolve().parents[1] / "oracle" / "torch_twin.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    refbp_modules = {name for name in imported if name == "refbp" or name.startswith("refbp.")}
    # Validation only (spec, parameters, batch) and the result types: no backprop math.
    assert refbp_modules <= {"refbp.spec", "refbp.trace", "refbp.errors", "refbp.data", "refbp.params"}
