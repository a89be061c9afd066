"""Finite differences against closed forms written out here (never against refbp or torch)."""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle.fd_dense as fd_dense
import oracle.fd_stacked as fd_stacked
from oracle.cases import Case
from oracle.fd_dense import STEP_SCALE, fd_targets, preactivations, stacked_loss
from oracle.fd_directions import random_directions, random_directions_many
from oracle.fd_functions import activate
from oracle.finite_diff import fd_directional, fd_directional_many, fd_gradients, suggested_tolerance
from oracle.strategies import cases
from refbp.errors import InputError
from refbp.spec import L2Spec, LayerSpec, LossSpec, NetworkSpec


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def softmax_rows(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def assert_close(actual: np.ndarray, expected: np.ndarray, atol: float = 1e-7) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)


def one_layer(activation: str = "identity", *, layout: str = "in_out", **spec_fields) -> NetworkSpec:
    return NetworkSpec(inputs=3, layers=(LayerSpec(2, activation),), layout=layout, **spec_fields)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# -- linear output, squared losses ---------------------------------------------------------


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_identity_half_sse_in_out(rng, reduction):
    spec = one_layer(loss=LossSpec("half_sse", reduction))
    X, W, b, T = rng.normal(size=(5, 3)), rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=(5, 2))
    scale = 1.0 if reduction == "sum" else 1.0 / 5
    R = (X @ W + b - T) * scale
    fd = fd_gradients(spec, {"W1": W, "b1": b}, X, T)
    assert_close(fd.values[(1, "dL/dW")], X.T @ R)
    assert_close(fd.values[(1, "dL/db")], R.sum(axis=0))
    assert_close(fd.values[(1, "delta")], R)
    assert_close(fd.values[(1, "dL/da")], R)
    assert_close(fd.values[(0, "dL/dx")], R @ W.T)
    assert fd.loss == pytest.approx(0.5 * scale * ((X @ W + b - T) ** 2).sum(), rel=1e-14)
    assert not any(mask.any() for mask in fd.kinks.values())


def test_identity_half_sse_out_in(rng):
    spec = one_layer(layout="out_in")
    X, W, b, T = rng.normal(size=(3, 5)), rng.normal(size=(2, 3)), rng.normal(size=2), rng.normal(size=(2, 5))
    R = W @ X + b[:, None] - T
    fd = fd_gradients(spec, {"W1": W, "b1": b}, X, T)
    assert_close(fd.values[(1, "dL/dW")], R @ X.T)
    assert_close(fd.values[(1, "dL/db")], R.sum(axis=1))
    assert_close(fd.values[(1, "delta")], R)
    assert_close(fd.values[(0, "dL/dx")], W.T @ R)


def test_mse_mean_divides_by_entries(rng):
    spec = one_layer(loss=LossSpec("mse", "mean"))
    X, W, b, T = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=(4, 2))
    delta = 2.0 * (X @ W + b - T) / (4 * 2)
    fd = fd_gradients(spec, {"W1": W, "b1": b}, X, T)
    assert_close(fd.values[(1, "delta")], delta)
    assert_close(fd.values[(1, "dL/dW")], X.T @ delta)
    assert fd.loss == pytest.approx(((X @ W + b - T) ** 2).mean(), rel=1e-14)


@pytest.mark.parametrize("include_bias", [False, True])
def test_l2_penalty_adds_lambda_theta(rng, include_bias):
    lam = 0.7
    spec = one_layer(l2=L2Spec(lam, include_bias=include_bias))
    X, W, b, T = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)) * 3, rng.normal(size=2), rng.normal(size=(4, 2))
    R = X @ W + b - T
    fd = fd_gradients(spec, {"W1": W, "b1": b}, X, T)
    assert_close(fd.values[(1, "dL/dW")], X.T @ R + lam * W)
    assert_close(fd.values[(1, "dL/db")], R.sum(axis=0) + (lam * b if include_bias else 0.0))
    assert_close(fd.values[(1, "delta")], R)  # the penalty does not depend on z
    penalty = 0.5 * lam * ((W**2).sum() + ((b**2).sum() if include_bias else 0.0))
    assert fd.loss == pytest.approx(0.5 * (R**2).sum() + penalty, rel=1e-14)


# -- hidden layers: a hand-written chain rule ----------------------------------------------


def two_layer_closed_form(X, W1, b1, W2, b2, T, hidden: str, shared: bool):
    """in_out backprop of ``half_sse(σ(f(X W1 + b1) W2 + b2), T)``, sum reduction."""
    f, df = {
        "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
        "sigmoid": (sigmoid, lambda z: sigmoid(z) * (1 - sigmoid(z))),
    }[hidden]
    z1 = X @ W1 + b1
    a1 = f(z1)
    z2 = a1 @ W2 + b2
    y = sigmoid(z2)
    da2 = y - T
    d2 = da2 * y * (1 - y)
    da1 = d2 @ W2.T
    d1 = da1 * df(z1)
    out = {
        (2, "dL/da"): da2,
        (2, "delta"): d2,
        (2, "dL/dW"): a1.T @ d2,
        (2, "dL/db"): np.array([d2.sum()]) if shared else d2.sum(axis=0),
        (1, "dL/da"): da1,
        (1, "delta"): d1,
        (1, "dL/dW"): X.T @ d1,
        (1, "dL/db"): np.array([d1.sum()]) if shared else d1.sum(axis=0),
        (0, "dL/dx"): d1 @ W1.T,
    }
    return out, 0.5 * ((y - T) ** 2).sum()


@pytest.mark.parametrize("hidden", ["tanh", "sigmoid"])
@pytest.mark.parametrize("bias", ["per_unit", "shared"])
@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_two_layer_chain_rule(rng, hidden, bias, layout):
    spec = NetworkSpec(inputs=3, layers=(LayerSpec(4, hidden, bias), LayerSpec(2, "sigmoid", bias)), layout=layout)
    n_b1, n_b2 = (4, 2) if bias == "per_unit" else (1, 1)
    X, T = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    W1, b1, W2, b2 = rng.normal(size=(3, 4)), rng.normal(size=n_b1), rng.normal(size=(4, 2)), rng.normal(size=n_b2)
    expected, loss = two_layer_closed_form(X, W1, b1, W2, b2, T, hidden, bias == "shared")
    if layout == "out_in":  # the same network with columns as examples: every 2-D array transposes
        X, T, W1, W2 = X.T, T.T, W1.T, W2.T
        expected = {k: (v.T if v.ndim == 2 else v) for k, v in expected.items()}
    fd = fd_gradients(spec, {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, X, T)
    assert set(fd.values) == set(expected)
    for key, value in expected.items():
        assert_close(fd.values[key], value, atol=1e-8 * (1 + loss + np.abs(value).max()))
        assert fd.values[key].dtype == np.float64


# -- cross-entropy losses --------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_softmax_cross_entropy_delta(rng, reduction):
    N, k = 5, 4
    labels = np.array([0, 3, 1, 3, 2])
    onehot = np.eye(k)[labels]
    X, W, b = rng.normal(size=(N, 3)), rng.normal(size=(3, k)), rng.normal(size=k)
    scale = 1.0 if reduction == "sum" else 1.0 / N
    delta = (softmax_rows(X @ W + b) - onehot) * scale
    results = {}
    for targets, T in (("index", labels), ("dense", onehot)):
        spec = NetworkSpec(
            inputs=3, layers=(LayerSpec(k, "softmax"),), loss=LossSpec("softmax_cross_entropy", reduction, targets)
        )
        fd = fd_gradients(spec, {"W1": W, "b1": b}, X, T)
        assert_close(fd.values[(1, "delta")], delta)
        assert_close(fd.values[(1, "dL/dW")], X.T @ delta)
        results[targets] = fd
    for key in results["index"].values:
        np.testing.assert_array_equal(results["index"].values[key], results["dense"].values[key])


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_binary_cross_entropy_delta(rng, reduction):
    spec = one_layer("sigmoid", loss=LossSpec("binary_cross_entropy", reduction))
    X, W, b, T = rng.normal(size=(5, 3)), rng.normal(size=(3, 2)), rng.normal(size=2), rng.uniform(size=(5, 2))
    scale = 1.0 if reduction == "sum" else 1.0 / 5
    delta = (sigmoid(X @ W + b) - T) * scale
    fd = fd_gradients(spec, {"W1": W, "b1": b}, X, T)
    assert_close(fd.values[(1, "delta")], delta)
    assert_close(fd.values[(1, "dL/dW")], X.T @ delta)
    assert_close(fd.values[(1, "dL/db")], delta.sum(axis=0))


def test_binary_cross_entropy_is_stable_at_large_logits():
    spec = NetworkSpec(inputs=1, layers=(LayerSpec(1, "sigmoid"),), loss=LossSpec("binary_cross_entropy"))
    X, T = np.array([[1.0], [-1.0]]), np.array([[0.3], [0.7]])
    params = {"W1": np.array([[1000.0]]), "b1": np.array([0.0])}  # z = ±1000
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        fd = fd_gradients(spec, params, X, T)
    # softplus(1000) − 0.3·1000 + softplus(−1000) + 0.7·1000 = 1000 − 300 + 0 + 700
    assert fd.loss == pytest.approx(1400.0, rel=1e-14)
    assert_close(fd.values[(1, "delta")], np.array([[1 - 0.3], [0 - 0.7]]))
    assert_close(fd.values[(1, "dL/dW")], np.array([[1.4]]))
    # a = σ(±1000) is exactly 1 and 0 in float64: (a − t)/(a(1 − a)) is +inf and −inf.
    np.testing.assert_array_equal(fd.values[(1, "dL/da")], np.array([[np.inf], [-np.inf]]))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_output_dlda_in_probabilities(rng, reduction):
    N, k = 4, 3
    scale = 1.0 if reduction == "sum" else 1.0 / N
    X, W, b = rng.normal(size=(N, 3)), rng.normal(size=(3, k)), rng.normal(size=k)
    params = {"W1": W, "b1": b}

    soft = rng.uniform(size=(N, k))
    soft /= soft.sum(axis=1, keepdims=True)
    spec = NetworkSpec(inputs=3, layers=(LayerSpec(k, "softmax"),), loss=LossSpec("softmax_cross_entropy", reduction))
    a = softmax_rows(X @ W + b)
    fd = fd_gradients(spec, params, X, soft, targets=[(1, "dL/da")])
    assert list(fd.values) == [(1, "dL/da")]
    np.testing.assert_allclose(fd.values[(1, "dL/da")], -soft / a * scale, rtol=1e-8)

    spec = NetworkSpec(inputs=3, layers=(LayerSpec(k, "sigmoid"),), loss=LossSpec("binary_cross_entropy", reduction))
    t = rng.uniform(size=(N, k))
    a = sigmoid(X @ W + b)
    fd = fd_gradients(spec, params, X, t, targets=[(1, "dL/da")])
    np.testing.assert_allclose(fd.values[(1, "dL/da")], (a - t) / (a * (1 - a)) * scale, rtol=1e-8)


def test_output_dlda_ignores_zero_target_at_zero_probability():
    # z = (0, −800): softmax gives a = (1, 0) exactly; the zero target makes −t·log a vanish.
    spec = NetworkSpec(inputs=1, layers=(LayerSpec(2, "softmax"),), loss=LossSpec("softmax_cross_entropy"))
    params = {"W1": np.array([[0.0, -800.0]]), "b1": np.zeros(2)}
    fd = fd_gradients(spec, params, np.array([[1.0]]), np.array([[1.0, 0.0]]))
    assert_close(fd.values[(1, "dL/da")], np.array([[-1.0, 0.0]]))


# -- kinks -----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_kinks_are_masked_and_nan(activation):
    spec = NetworkSpec(inputs=2, layers=(LayerSpec(3, activation), LayerSpec(1, "identity")))
    X = np.eye(2)
    # z1 = X W1 + b1 = W1: example 0 has a pre-activation exactly 0 and one at 1e-7 < h.
    W1 = np.array([[0.0, 1e-7, 0.8], [0.5, -0.6, 0.9]])
    params = {"W1": W1, "b1": np.zeros(3), "W2": np.array([[0.4], [-0.3], [0.2]]), "b2": np.array([0.1])}
    T = np.array([[0.5], [-0.5]])
    fd = fd_gradients(spec, params, X, T)
    expected = {
        (1, "delta"): [[True, True, False], [False, False, False]],
        # W1[i, j] moves z1[:, j] by ±h·X[:, i]: only row 0 reaches example 0.
        (1, "dL/dW"): [[True, True, False], [False, False, False]],
        (1, "dL/db"): [True, True, False],
        # x[0, i] moves z1[0, :] by ±h·W1[i, :]: W1[0, 0] = 0 leaves the 0 in place and
        # h·1e-7 cannot flip 1e-7, but W1[1, :] flips both.
        (0, "dL/dx"): [[False, True], [False, False]],
    }
    for key, mask in fd.kinks.items():
        want = np.array(expected.get(key, np.zeros(mask.shape, dtype=bool)))
        np.testing.assert_array_equal(mask, want, err_msg=str(key))
        assert np.all(np.isnan(fd.values[key][mask]))
        assert np.all(np.isfinite(fd.values[key][~mask]))
    # Away from the kinks the values are the chain rule's (which slope is used at 0 does not matter there).
    slope = 0.0 if activation == "relu" else spec.layers[0].negative_slope
    z1 = W1
    a1 = np.where(z1 > 0, z1, slope * z1)
    R = a1 @ params["W2"] + params["b2"] - T
    assert_close(fd.values[(2, "dL/dW")], a1.T @ R)
    d1 = (R @ params["W2"].T) * np.where(z1 > 0, 1.0, slope)
    ok = ~fd.kinks[(1, "delta")]
    assert_close(fd.values[(1, "delta")][ok], d1[ok])

    flags = fd_directional(spec, params, X, T, (1, "delta"), np.stack([np.eye(6)[0].reshape(2, 3)] * 2))[1]
    assert flags.all()


# -- directional derivatives -------------------------------------------------------------


def test_directional_equals_gradient_dot_direction(rng):
    spec = one_layer(l2=L2Spec(0.5))
    X, W, b, T = rng.normal(size=(5, 3)), rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=(5, 2))
    g = X.T @ (X @ W + b - T) + 0.5 * W
    V = 3.0 * rng.normal(size=(6, 3, 2))
    V[2] = 0.0
    d, flags = fd_directional(spec, {"W1": W, "b1": b}, X, T, (1, "dL/dW"), V)
    assert d.shape == flags.shape == (6,)
    assert not flags.any()
    assert_close(d, (V * g).sum(axis=(1, 2)))
    assert d[2] == 0.0


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_directional_on_activations(rng, layout):
    spec = NetworkSpec(inputs=3, layers=(LayerSpec(4, "tanh"), LayerSpec(2, "sigmoid")), layout=layout)
    X, T = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    W1, b1, W2, b2 = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 2)), rng.normal(size=2)
    expected, _ = two_layer_closed_form(X, W1, b1, W2, b2, T, "tanh", False)
    if layout == "out_in":
        X, T, W1, W2 = X.T, T.T, W1.T, W2.T
        expected = {k: (v.T if v.ndim == 2 else v) for k, v in expected.items()}
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    for key in [(1, "delta"), (1, "dL/da"), (0, "dL/dx"), (2, "dL/db"), (1, "dL/dW")]:
        V = random_directions(expected[key].shape, 4, rng)
        d, flags = fd_directional(spec, params, X, T, key, V)
        assert_close(d, (V * expected[key]).reshape(4, -1).sum(axis=1), atol=1e-8)
        assert not flags.any()


def test_random_directions_are_unit():
    V = random_directions((3, 4), 5, 0)
    assert V.shape == (5, 3, 4)
    np.testing.assert_allclose(np.sqrt((V**2).sum(axis=(1, 2))), 1.0, rtol=1e-15)


def test_random_directions_many_is_one_draw_of_random_directions():
    shapes = [(3, 4), (0,), (5,), (2, 1)]
    rng = np.random.default_rng(7)
    one_by_one = [random_directions(shape, 3, rng) for shape in shapes]
    together = random_directions_many(shapes, 3, 7)
    for expected, got in zip(one_by_one, together, strict=True):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)
    assert random_directions_many([(2,)], 0, 1)[0].shape == (0, 2)
    assert random_directions_many([], 3, 1) == []


def test_uniform_random_directions_are_unit_centred_and_seeded():
    first = random_directions_many([(30, 40), (7,)], 3, 11, entries="uniform")
    again = random_directions_many([(30, 40), (7,)], 3, 11, entries="uniform")
    for V, W in zip(first, again, strict=True):
        assert np.array_equal(V, W)
        np.testing.assert_allclose(np.sqrt((V.reshape(3, -1) ** 2).sum(axis=1)), 1.0, rtol=1e-15)
    big = first[0].reshape(3, -1) * np.sqrt(1200 / 3)  # entries ~ U(−1, 1) · ‖v‖: undo the norm √(n/3)
    assert abs(big.mean()) < 0.05 and big.min() < -0.9 and big.max() > 0.9 and np.abs(big).max() < 1.1
    with pytest.raises(InputError):
        random_directions_many([(2,)], 1, 0, entries="rademacher")


# -- directional derivatives: the stacked fast path against the textbook path -----------------

FAST_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _target_shapes(spec, batch):
    """``{target: shape}`` for every target of :func:`fd_targets`, in the spec's layout."""
    shapes = {}
    for layer, quantity in fd_targets(spec):
        if quantity == "dL/dW":
            shapes[(layer, quantity)] = spec.weight_shape(layer)
        elif quantity == "dL/db":
            shapes[(layer, quantity)] = spec.bias_shape(layer)
        else:
            units = spec.widths[layer]
            shapes[(layer, quantity)] = (batch, units) if spec.layout == "in_out" else (units, batch)
    return shapes


def _directions_for(spec, batch, k, rng, *, scaled=False):
    """``k`` directions per target: unit ones, or (``scaled``) of any length, the first of them zero."""
    out = {}
    for key, shape in _target_shapes(spec, batch).items():
        V = random_directions(shape, k, rng)
        if scaled:
            V = V * rng.uniform(0.1, 5.0, size=(k,) + (1,) * len(shape))
            V[0] = 0.0
        out[key] = V
    return out


def assert_same_directional(fast, textbook, scale):
    """Same kink flags; the same derivatives up to round-off, where the stack's rows take ``z⁰ ± h·(v̂ W)``
    for a moved activation and the textbook path ``(a ± h·v̂) W``."""
    assert fast.keys() == textbook.keys()
    for key, (d, kinks) in textbook.items():
        got, got_kinks = fast[key]
        assert got.shape == d.shape == kinks.shape == got_kinks.shape, key
        assert np.array_equal(got_kinks, kinks), key
        np.testing.assert_allclose(got, d, rtol=1e-7, atol=1e-9 * scale, equal_nan=True, err_msg=str(key))


@FAST_SETTINGS
@given(cases(max_depth=4, max_width=6, max_batch=1), st.integers(1, 4), st.booleans())
def test_stacked_directional_equals_textbook_per_target(case: Case, k: int, scaled: bool):
    spec = case.spec
    data = Case(spec, batch=3, seed=case.seed).materialize()
    directions = _directions_for(spec, 3, k, np.random.default_rng(case.seed), scaled=scaled)
    fast = fd_directional_many(spec, data.params, data.X, data.T, directions)
    textbook = fd_directional_many(spec, data.params, data.X, data.T, directions, stacked=False)
    loss = float(stacked_loss(spec, data.params, data.X, data.T)[0])
    scale = 1.0 + abs(loss) + max(float(np.nanmax(np.abs(d), initial=0.0)) for d, _ in textbook.values())
    assert_same_directional(fast, textbook, scale)
    # ... and each target by itself (fd_directional: a stack of one target) gives the same numbers again.
    for key, V in directions.items():
        alone = fd_directional(spec, data.params, data.X, data.T, key, V)
        np.testing.assert_array_equal(alone[1], fast[key][1])
        np.testing.assert_allclose(alone[0], fast[key][0], rtol=1e-7, atol=1e-9 * scale, equal_nan=True)


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_stacked_directional_on_a_ten_thousand_parameter_network(layout):
    """Real numbers: the fast path against the textbook path and against per-entry differences projected on v."""
    spec = NetworkSpec(
        inputs=32,
        layers=(LayerSpec(128, "tanh"), LayerSpec(64, "leaky_relu"), LayerSpec(10, "softmax")),
        layout=layout,
        loss=LossSpec("softmax_cross_entropy", "mean", "index"),
        l2=L2Spec(lam=0.01, include_bias=True),
    )
    data = Case(spec, batch=16, seed=3).materialize()
    directions = _directions_for(spec, 16, 3, np.random.default_rng(0))
    fast = fd_directional_many(spec, data.params, data.X, data.T, directions)
    textbook = fd_directional_many(spec, data.params, data.X, data.T, directions, stacked=False)
    assert_same_directional(fast, textbook, 1.0 + float(stacked_loss(spec, data.params, data.X, data.T)[0]))
    exact = fd_gradients(spec, data.params, data.X, data.T)
    for key, V in directions.items():
        assert not fast[key][1].any()
        projected = V.reshape(3, -1) @ exact.values[key].ravel()
        np.testing.assert_allclose(fast[key][0], projected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_stacked_directional_flags_the_same_kinks(activation, layout):
    spec = NetworkSpec(
        inputs=3,
        layers=(LayerSpec(4, activation), LayerSpec(3, activation), LayerSpec(2, "identity")),
        layout=layout,
        loss=LossSpec("half_sse", "sum"),
    )
    data = Case(spec, batch=3, seed=4).materialize(avoid_kinks=False)
    params = {name: value.copy() for name, value in data.params.items()}
    for layer in (1, 2):  # one pre-activation of each kinked layer 1e-7 from 0: any step along it crosses
        z = preactivations(spec, params, data.X)[layer - 1]
        params[f"b{layer}"][0] -= z[0, 0] - 1e-7  # unit 0 of example 0 in either layout
    directions = _directions_for(spec, 3, 3, np.random.default_rng(2))
    fast = fd_directional_many(spec, params, data.X, data.T, directions)
    textbook = fd_directional_many(spec, params, data.X, data.T, directions, stacked=False)
    assert_same_directional(fast, textbook, 1e3)
    flagged = {key for key, (d, kinks) in fast.items() if kinks.any()}
    assert {(1, "dL/dW"), (1, "dL/db"), (2, "dL/dW"), (0, "dL/dx"), (1, "dL/da")} <= flagged
    assert all(np.isnan(d[kinks]).all() and np.isfinite(d[~kinks]).all() for d, kinks in fast.values())


def test_stacked_directional_in_groups_and_on_the_textbook_path_when_memory_is_short(monkeypatch):
    spec = NetworkSpec(
        inputs=4,
        layers=(LayerSpec(9, "relu"), LayerSpec(7, "sigmoid"), LayerSpec(3, "identity")),
        loss=LossSpec("mse", "mean"),
    )
    data = Case(spec, batch=5, seed=1).materialize()
    directions = _directions_for(spec, 5, 2, np.random.default_rng(1))
    whole = fd_directional_many(spec, data.params, data.X, data.T, directions)
    stacks: list[int] = []  # targets per stacked forward pass
    run_stack = fd_stacked.run_stack

    def counting_run_stack(net, group, results):
        stacks.append(len(group))
        run_stack(net, group, results)

    monkeypatch.setattr(fd_stacked, "run_stack", counting_run_stack)
    fits_one_target = 2 * 2 * fd_dense.LIVE_COPIES * 8 * 5 * sum(spec.widths)  # 2k copies of every layer
    monkeypatch.setattr(fd_dense, "MEMORY_BUDGET", fits_one_target)
    assert_same_directional(fd_directional_many(spec, data.params, data.X, data.T, directions), whole, 1e3)
    assert 1 < len(stacks) < len(directions) - 1
    stacks.clear()
    monkeypatch.setattr(fd_dense, "MEMORY_BUDGET", 1)  # no target fits: all on the textbook path
    assert_same_directional(fd_directional_many(spec, data.params, data.X, data.T, directions), whole, 1e3)
    assert stacks == []
    monkeypatch.setattr(fd_stacked, "SCRATCH_BYTES", 0)  # nothing kept: fresh work arrays every call
    monkeypatch.setattr(fd_dense, "MEMORY_BUDGET", 32 * 2**20)
    assert_same_directional(fd_directional_many(spec, data.params, data.X, data.T, directions), whole, 1e3)
    assert stacks[-1] == len(directions) - 1  # all but the output's a_L in one stack


def test_directional_never_writes_its_inputs():
    spec = NetworkSpec(inputs=3, layers=(LayerSpec(5, "sigmoid"), LayerSpec(2, "identity")), l2=L2Spec(0.1, True))
    data = Case(spec, batch=4, seed=8).materialize()
    directions = _directions_for(spec, 4, 2, np.random.default_rng(3))  # unit directions: used as they are
    before = [{k: v.copy() for k, v in data.params.items()}, data.X.copy(), data.T.copy()]
    kept = {key: V.copy() for key, V in directions.items()}
    for stacked in (True, False):
        fd_directional_many(spec, data.params, data.X, data.T, directions, stacked=stacked)
        assert all(np.array_equal(kept[key], V) for key, V in directions.items())
        assert all(np.array_equal(before[0][k], v) for k, v in data.params.items())
        assert np.array_equal(before[1], data.X) and np.array_equal(before[2], data.T)


def test_stacked_results_never_alias_the_reused_work_arrays():
    specs = [
        NetworkSpec(inputs=3, layers=(LayerSpec(5, "tanh"), LayerSpec(2, "sigmoid")), loss=LossSpec("half_sse", "sum")),
        NetworkSpec(inputs=4, layers=(LayerSpec(6, "tanh"), LayerSpec(2, "sigmoid")), loss=LossSpec("half_sse", "sum")),
    ]
    runs = []
    for spec in [*specs, specs[0]]:
        data = Case(spec, batch=4, seed=5).materialize()
        keys = [key for key in fd_targets(spec) if key[1] in ("dL/dW", "dL/db")]
        directions = {key: random_directions(spec.parameter_shapes()[f"{key[1][-1]}{key[0]}"], 2, 0) for key in keys}
        result = fd_directional_many(spec, data.params, data.X, data.T, directions)
        runs.append({key: (d.copy(), d) for key, (d, _) in result.items()})
    for run in runs:  # later calls (other shapes, then the first shapes again) changed no earlier result
        for copy, array in run.values():
            assert np.array_equal(copy, array)
    for key, (copy, _) in runs[0].items():
        assert np.array_equal(copy, runs[2][key][0])


def test_stacked_directional_from_several_threads():
    spec = NetworkSpec(
        inputs=6,
        layers=(LayerSpec(40, "tanh"), LayerSpec(3, "softmax")),
        loss=LossSpec("softmax_cross_entropy", "mean", "index"),
    )
    datas = [Case(spec, batch=8, seed=seed).materialize() for seed in range(4)]
    directions = _directions_for(spec, 8, 3, np.random.default_rng(9))
    serial = [fd_directional_many(spec, d.params, d.X, d.T, directions) for d in datas]
    found: dict[int, dict] = {}

    def work(index: int) -> None:
        for _ in range(20):
            found[index] = fd_directional_many(spec, datas[index].params, datas[index].X, datas[index].T, directions)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, expected in enumerate(serial):
        for key, (d, kinks) in expected.items():
            assert np.array_equal(found[index][key][0], d) and np.array_equal(found[index][key][1], kinks)


@pytest.mark.parametrize(
    "layer",
    [
        LayerSpec(3, "identity"),
        LayerSpec(3, "tanh"),
        LayerSpec(3, "sigmoid"),
        LayerSpec(3, "relu"),
        LayerSpec(3, "leaky_relu", negative_slope=0.2),
        LayerSpec(3, "leaky_relu", negative_slope=0.0),
        LayerSpec(3, "leaky_relu", negative_slope=1.5),
        LayerSpec(3, "softmax"),
    ],
    ids=lambda layer: f"{layer.activation}-{layer.negative_slope}",
)
def test_fast_activations_give_the_textbook_numbers(layer):
    z = np.concatenate([np.random.default_rng(0).normal(scale=4.0, size=(2, 5, 3)), [[[0.0, -0.0, 800.0]] * 5]])
    z[0, 0] = [-800.0, 1e-300, -1e-300]
    expected = activate(z, layer)
    got = fd_stacked.activate_into(z, layer, 99)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)  # −0.0 == 0.0: relu's max(z, 0) may keep a zero's sign


# -- a larger network: vectorisation ------------------------------------------------------


def test_full_fd_on_a_ten_thousand_parameter_network(rng):
    widths = (64, 128, 64, 10)
    spec = NetworkSpec(
        inputs=64,
        layers=(LayerSpec(128, "tanh"), LayerSpec(64, "tanh"), LayerSpec(10, "softmax")),
        loss=LossSpec("softmax_cross_entropy", "mean", "index"),
    )
    N = 16
    params = {}
    for n in range(1, 4):
        params[f"W{n}"] = rng.normal(size=(widths[n - 1], widths[n])) / np.sqrt(widths[n - 1])
        params[f"b{n}"] = 0.1 * rng.normal(size=widths[n])
    X, labels = rng.normal(size=(N, 64)), rng.integers(0, 10, size=N)
    # Hand-written backprop: δ_L = (softmax − onehot)/N, δ_l = (δ_{l+1} W_{l+1}ᵀ)(1 − a_l²).
    acts = [X]
    for n in range(1, 4):
        z = acts[-1] @ params[f"W{n}"] + params[f"b{n}"]
        acts.append(softmax_rows(z) if n == 3 else np.tanh(z))
    delta = (acts[3] - np.eye(10)[labels]) / N
    expected = {}
    for n in range(3, 0, -1):
        expected[(n, "dL/dW")], expected[(n, "dL/db")] = acts[n - 1].T @ delta, delta.sum(axis=0)
        if n > 1:
            delta = (delta @ params[f"W{n}"].T) * (1 - acts[n - 1] ** 2)

    start = time.perf_counter()
    fd = fd_gradients(spec, params, X, labels, targets=list(expected))
    elapsed = time.perf_counter() - start
    print(f"per-entry FD over {spec.n_parameters} parameters, N={N}: {elapsed:.2f}s")
    assert sum(v.size for v in fd.values.values()) == spec.n_parameters
    for key, value in expected.items():
        assert_close(fd.values[key], value, atol=1e-8 * (1 + fd.loss))


# -- helpers: stacked loss, pre-activations, targets, steps --------------------------------


def test_stacked_loss_many_parameter_sets(rng):
    lam = 0.25
    spec = one_layer(l2=L2Spec(lam))
    X, b, T = rng.normal(size=(5, 3)), rng.normal(size=2), rng.normal(size=(5, 2))
    Ws = rng.normal(size=(4, 3, 2))
    losses = stacked_loss(spec, {"W1": Ws, "b1": b}, X, T)
    expected = [0.5 * ((X @ W + b - T) ** 2).sum() + 0.5 * lam * (W**2).sum() for W in Ws]
    np.testing.assert_allclose(losses, expected, rtol=1e-14)

    Xs = rng.normal(size=(3, 5, 3))
    losses = stacked_loss(spec, {"W1": Ws[0], "b1": b}, Xs, T)
    expected = [0.5 * ((x @ Ws[0] + b - T) ** 2).sum() + 0.5 * lam * (Ws[0] ** 2).sum() for x in Xs]
    np.testing.assert_allclose(losses, expected, rtol=1e-14)
    assert stacked_loss(spec, {"W1": Ws[0], "b1": b}, X, T).shape == (1,)


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_preactivations(rng, layout):
    spec = NetworkSpec(
        inputs=3, layers=(LayerSpec(4, "relu", "shared"), LayerSpec(2, "identity", "none")), layout=layout
    )
    X, W1, b1, W2 = rng.normal(size=(5, 3)), rng.normal(size=(3, 4)), rng.normal(size=1), rng.normal(size=(4, 2))
    z1 = X @ W1 + b1
    z2 = np.maximum(z1, 0) @ W2
    if layout == "out_in":
        X, W1, W2, z1, z2 = X.T, W1.T, W2.T, z1.T, z2.T
    zs = preactivations(spec, {"W1": W1, "b1": b1, "W2": W2}, X)
    assert len(zs) == 2
    np.testing.assert_allclose(zs[0], z1, rtol=1e-14)
    np.testing.assert_allclose(zs[1], z2, rtol=1e-13)


def test_fd_targets_backward_order():
    spec = NetworkSpec(inputs=2, layers=(LayerSpec(3, "tanh"), LayerSpec(1, "identity", "none")))
    assert fd_targets(spec) == [
        (2, "dL/da"),
        (2, "delta"),
        (2, "dL/dW"),
        (1, "dL/da"),
        (1, "delta"),
        (1, "dL/dW"),
        (1, "dL/db"),
        (0, "dL/dx"),
    ]


def test_steps_scale_with_magnitude_and_float32_runs_in_float64(rng):
    spec = one_layer(dtype="float32")
    W = np.array([[3.0, 0.5], [-4.0, 0.0], [1.0, 2.0]], dtype=np.float32)
    X, b, T = rng.normal(size=(4, 3)).astype(np.float32), np.zeros(2, np.float32), np.zeros((4, 2), np.float32)
    fd = fd_gradients(spec, {"W1": W, "b1": b}, X, T)
    np.testing.assert_allclose(
        fd.steps[(1, "dL/dW")], STEP_SCALE * np.maximum(1.0, np.abs(W.astype(np.float64))), rtol=1e-15
    )
    assert abs(STEP_SCALE - 6.055e-6) < 1e-9
    X64, W64 = X.astype(np.float64), W.astype(np.float64)
    assert fd.values[(1, "dL/dW")].dtype == np.float64
    assert_close(fd.values[(1, "dL/dW")], X64.T @ (X64 @ W64), atol=1e-9)


def test_suggested_tolerance():
    rtol64, atol64 = suggested_tolerance(10.0, 2.0)
    rtol32, atol32 = suggested_tolerance(10.0, 2.0, "float32")
    assert 0 < rtol64 < rtol32 and 0 < atol64 < atol32
    assert atol64 > suggested_tolerance(0.0, 0.0)[1] > 0


# -- bad input -------------------------------------------------------------------------------


def test_bad_input_raises_input_error(rng):
    spec = one_layer()
    good = {"W1": np.zeros((3, 2)), "b1": np.zeros(2)}
    X, T = np.zeros((4, 3)), np.zeros((4, 2))
    bad_calls = [
        lambda: fd_gradients(spec, {"W1": np.zeros((2, 3)), "b1": np.zeros(2)}, X, T),
        lambda: fd_gradients(spec, {"W1": np.zeros((3, 2))}, X, T),
        lambda: fd_gradients(spec, {**good, "W2": np.zeros((2, 2))}, X, T),
        lambda: fd_gradients(spec, {"W1": np.full((3, 2), np.nan), "b1": np.zeros(2)}, X, T),
        lambda: fd_gradients(spec, good, np.zeros((4, 5)), T),
        lambda: fd_gradients(spec, good, X, np.zeros((3, 2))),
        lambda: fd_gradients(spec, good, X, T, targets=[(1, "z")]),
        lambda: fd_gradients(spec, good, X, T, targets=[(3, "dL/dW")]),
        lambda: fd_directional(spec, good, X, T, (1, "dL/dW"), np.zeros((2, 2, 3))),
        lambda: fd_directional(spec, good, X, T, (1, "dL/dW"), np.zeros((3, 2))),
        lambda: stacked_loss(spec, {"W1": np.zeros((2, 3, 2)), "b1": np.zeros((3, 2))}, X, T),
        lambda: preactivations("not a spec", good, X),
    ]
    for call in bad_calls:
        with pytest.raises(InputError):
            call()


def test_released_work_arrays_are_dropped_and_the_numbers_stay():
    spec = NetworkSpec(
        inputs=3, layers=(LayerSpec(5, "tanh"), LayerSpec(2, "sigmoid")), loss=LossSpec("half_sse", "sum")
    )
    data = Case(spec, batch=4, seed=5).materialize()
    directions = _directions_for(spec, 4, 2, np.random.default_rng(1))
    kept = fd_directional_many(spec, data.params, data.X, data.T, directions)
    assert fd_stacked.SCRATCH.nbytes > 0 and fd_stacked.SCRATCH.arrays
    fd_stacked.release_work_arrays()
    assert fd_stacked.SCRATCH.nbytes == 0 and not fd_stacked.SCRATCH.arrays
    again = fd_directional_many(spec, data.params, data.X, data.T, directions)
    assert_same_directional(again, kept, 1.0)
