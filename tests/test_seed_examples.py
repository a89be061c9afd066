"""The two worked examples of the lecture notes (shared/seeds/001, 5.5.3 案例 1 and 5.5.4 案例 2).

Printed numbers are asserted to the 4 decimals the notes print; where the notes are
wrong, the test says so, asserts that refbp does *not* reproduce the printed value, and
asserts the true value, derived here by scalar math.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from refbp.network import backprop
from refbp.params import load_parameters
from refbp.spec import LayerSpec, LossSpec, NetworkSpec
from refbp.train import sgd_step

PRINTED = 0.5e-4  # half a unit in the 4th decimal


def printed(value: float, shown: float) -> bool:
    return abs(value - shown) <= PRINTED + 1e-12


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# --- 5.5.3 案例 1: 3 → 2 (sigmoid, shared b1) → 2 (sigmoid, shared b2), half_sse, lr 0.01 ----

CASE1 = NetworkSpec(
    inputs=3,
    layers=(LayerSpec(2, "sigmoid", "shared"), LayerSpec(2, "sigmoid", "shared")),
    layout="in_out",
    loss=LossSpec("half_sse", "sum"),
)
# W1 = [[w1, w2], [w3, w4], [w5, w6]], W2 = [[w7, w8], [w9, w10]] (row-major, as the notes define them)
w1, w2, w3, w4, w5, w6, w7, w8, w9, w10 = 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.1
b1, b2 = 0.5, 0.5
x1, x2, x3 = 1.0, 4.0, 5.0
t1, t2 = 0.1, 0.05
LR = 0.01


def case1() -> tuple:
    params = load_parameters(
        CASE1, {"W1": [[w1, w2], [w3, w4], [w5, w6]], "b1": b1, "W2": [[w7, w8], [w9, w10]], "b2": b2}
    )
    trace, grads = backprop(CASE1, params, [x1, x2, x3], [t1, t2])
    return params, trace, grads


def case1_by_scalar_math() -> dict[str, float]:
    """Every quantity of case 1, one scalar at a time, summing over all paths."""
    zh1 = w1 * x1 + w3 * x2 + w5 * x3 + b1
    zh2 = w2 * x1 + w4 * x2 + w6 * x3 + b1
    h1, h2 = sig(zh1), sig(zh2)
    zo1 = w7 * h1 + w9 * h2 + b2
    zo2 = w8 * h1 + w10 * h2 + b2
    o1, o2 = sig(zo1), sig(zo2)
    d_o1 = (o1 - t1) * o1 * (1 - o1)  # dE/dz_o1
    d_o2 = (o2 - t2) * o2 * (1 - o2)
    dh1 = d_o1 * w7 + d_o2 * w8  # h1 feeds z_o1 through w7 and z_o2 through w8
    dh2 = d_o1 * w9 + d_o2 * w10
    d_h1 = dh1 * h1 * (1 - h1)  # dE/dz_h1
    d_h2 = dh2 * h2 * (1 - h2)
    return {
        "zh1": zh1, "zh2": zh2, "h1": h1, "h2": h2, "zo1": zo1, "zo2": zo2, "o1": o1, "o2": o2,
        "dw7": d_o1 * h1, "dw8": d_o2 * h1, "dw9": d_o1 * h2, "dw10": d_o2 * h2, "db2": d_o1 + d_o2,
        "dh1": dh1, "dh2": dh2,
        "dw1": d_h1 * x1, "dw3": d_h1 * x2, "dw5": d_h1 * x3,
        "dw2": d_h2 * x1, "dw4": d_h2 * x2, "dw6": d_h2 * x3,
        "db1": d_h1 + d_h2,  # the shared b1 enters both z_h1 and z_h2
        "d_o1": d_o1, "d_o2": d_o2, "d_h1": d_h1, "d_h2": d_h2,
    }  # fmt: skip


def test_case1_forward_values_as_printed() -> None:
    _, trace, _ = case1()
    (zh1, zh2), (h1, h2) = trace.layers[0].z[0], trace.layers[0].a[0]
    (zo1, zo2), (o1, o2) = trace.layers[1].z[0], trace.layers[1].a[0]
    shown = {
        "zh1": 4.3,
        "zh2": 5.3,
        "h1": 0.9866,
        "h2": 0.9950,
        "zo1": 2.0862,
        "zo2": 1.3888,
        "o1": 0.8896,
        "o2": 0.8004,
    }
    got = {"zh1": zh1, "zh2": zh2, "h1": h1, "h2": h2, "zo1": zo1, "zo2": zo2, "o1": o1, "o2": o2}
    hand = case1_by_scalar_math()
    for name, value in shown.items():
        assert printed(got[name], value), (name, got[name], value)
        assert got[name] == pytest.approx(hand[name], rel=1e-14), name


def test_case1_gradients_as_printed() -> None:
    _, _, grads = case1()
    g1, g2 = grads.layers
    got = {
        "dw7": g2.grad_W[0, 0], "dw8": g2.grad_W[0, 1], "dw9": g2.grad_W[1, 0], "dw10": g2.grad_W[1, 1],
        "db2": g2.grad_b[0], "dh1": g1.grad_a[0, 0], "dh2": g1.grad_a[0, 1],
        "dw1": g1.grad_W[0, 0], "dw3": g1.grad_W[1, 0], "dw5": g1.grad_W[2, 0],
        "dw2": g1.grad_W[0, 1], "dw4": g1.grad_W[1, 1], "dw6": g1.grad_W[2, 1],
    }  # fmt: skip
    shown = {
        "dw7": 0.0765, "dw8": 0.1183, "dw9": 0.0772, "dw10": 0.1193, "db2": 0.1975, "dh1": 0.1502, "dh2": 0.0818,
        "dw1": 0.0020, "dw3": 0.0079, "dw5": 0.0099, "dw2": 0.0004, "dw4": 0.0016, "dw6": 0.0020,
    }  # fmt: skip
    hand = case1_by_scalar_math()
    for name, value in shown.items():
        assert printed(got[name], value), (name, got[name], value)
        assert got[name] == pytest.approx(hand[name], rel=1e-12), name
    assert g1.grad_b.shape == g2.grad_b.shape == (1,)


def test_case1_shared_b1_gradient_sums_both_paths_and_the_notes_print_it_wrong() -> None:
    """The notes print dE/db1 = 0.0008, which is wrong.

    They write dE/db1 = dE/do1·do1/dz_o1·w7·h1' + dE/do2·do2/dz_o2·w10·h2', i.e. they keep
    only o1 → h1 for h1 and only o2 → h2 for h2. But h1 also reaches o2 (through w8)
    and h2 also reaches o1 (through w9). Since the one shared b1 enters both z_h1 and z_h2,

        dE/db1 = dE/dh1 · h1(1 − h1) + dE/dh2 · h2(1 − h2) ≈ 0.1502·0.0132 + 0.0818·0.0049 ≈ 0.0024,

    using the dE/dh1 = 0.1502 and dE/dh2 = 0.0818 the notes themselves compute. The
    printed update b1 := 0.5 − 0.01·0.0008 = 0.5000 still rounds the same way.
    """
    _, _, grads = case1()
    hand = case1_by_scalar_math()
    db1 = grads.layers[0].grad_b[0]
    assert not printed(db1, 0.0008)  # refbp does not reproduce the notes' value
    h1, h2 = hand["h1"], hand["h2"]
    notes_formula = hand["d_o1"] * w7 * h1 * (1 - h1) + hand["d_o2"] * w10 * h2 * (1 - h2)
    assert printed(notes_formula, 0.0008)  # … which is what the notes' one-path-per-unit formula gives
    assert db1 == pytest.approx(hand["db1"], rel=1e-12)
    assert printed(db1, 0.0024)
    assert db1 == pytest.approx(hand["d_h1"] + hand["d_h2"], rel=1e-12)
    assert db1 == pytest.approx(hand["dh1"] * h1 * (1 - h1) + hand["dh2"] * h2 * (1 - h2), rel=1e-12)


def test_case1_parameters_after_one_sgd_step_as_printed() -> None:
    params, _, grads = case1()
    new = sgd_step(params, grads.by_parameter(), LR)
    W1, W2 = new["W1"], new["W2"]
    got = {
        "w1": W1[0, 0], "w2": W1[0, 1], "w3": W1[1, 0], "w4": W1[1, 1], "w5": W1[2, 0], "w6": W1[2, 1],
        "w7": W2[0, 0], "w8": W2[0, 1], "w9": W2[1, 0], "w10": W2[1, 1], "b1": new["b1"][0], "b2": new["b2"][0],
    }  # fmt: skip
    shown = {
        "w1": 0.1000, "w2": 0.2000, "w3": 0.2999, "w4": 0.4000, "w5": 0.4999, "w6": 0.6000,
        "w7": 0.6992, "w8": 0.7988, "w9": 0.8992, "w10": 0.0988, "b1": 0.5000, "b2": 0.4980,
    }  # fmt: skip
    hand = case1_by_scalar_math()
    before = {"w1": w1, "w2": w2, "w3": w3, "w4": w4, "w5": w5, "w6": w6, "w7": w7, "w8": w8, "w9": w9, "w10": w10}
    before |= {"b1": b1, "b2": b2}
    for name, value in shown.items():
        assert printed(got[name], value), (name, got[name], value)
        assert got[name] == pytest.approx(before[name] - LR * hand["d" + name], rel=1e-14), name


# --- 5.5.4 案例 2: columns are examples, 2 → 2 (ReLU) → 1 (identity, no bias), ½(ŷ − y)² -------

CASE2 = NetworkSpec(
    inputs=2,
    layers=(LayerSpec(2, "relu", "per_unit"), LayerSpec(1, "identity", "none")),
    layout="out_in",
    loss=LossSpec("half_sse", "sum"),
)
CASE2_W1 = [[1.0, -2.0], [0.0, 2.0]]
CASE2_B1 = [0.0, -1.0]
CASE2_W2 = [1.0, -1.0]
CASE2_PARAMS = {"W1": CASE2_W1, "b1": CASE2_B1, "W2": [CASE2_W2]}

# name: (x, y, printed z1, printed relu output (the notes' "z2"), printed ŷ, printed ℓ, true dℓ/dx)
CASE2_INPUTS = {
    "a": ((1.0, 0.0), 2.0, (1.0, -1.0), (1.0, 0.0), 1.0, 0.5, (-1.0, 2.0)),
    "b": ((0.0, 1.0), 0.0, (-2.0, 1.0), (0.0, 1.0), -1.0, 0.5, (0.0, 2.0)),
    # The notes print dℓ/dx = (0, 2) for c), which is wrong: they correctly start from
    # dℓ/dŷ = ŷ − y = −1 − (−2) = +1 ("1 ·"), then copy the result of b), whose factor was −1.
    # With +1 the product is 1·(1, −1)·diag(0, 1)·W1 = (0, −1)·W1 = (0, −2).
    "c": ((1.0, 1.0), -2.0, (-1.0, 1.0), (0.0, 1.0), -1.0, 0.5, (0.0, -2.0)),
}


def case2_by_scalar_math(x: tuple[float, float], y: float) -> tuple[list[float], float, float, list[float]]:
    """``(z1, ŷ, ℓ, dℓ/dx)`` with dℓ/dx_i = (ŷ − y) Σ_j W2[j] · 1[z1_j > 0] · W1[j][i]."""
    z1 = [sum(CASE2_W1[j][i] * x[i] for i in range(2)) + CASE2_B1[j] for j in range(2)]
    r = [max(v, 0.0) for v in z1]
    y_hat = sum(CASE2_W2[j] * r[j] for j in range(2))
    dy = y_hat - y
    dx = [dy * sum(CASE2_W2[j] * (1.0 if z1[j] > 0 else 0.0) * CASE2_W1[j][i] for j in range(2)) for i in range(2)]
    return z1, y_hat, 0.5 * dy**2, dx


@pytest.mark.parametrize("name", sorted(CASE2_INPUTS))
def test_case2_single_input(name: str) -> None:
    x, y, z1_shown, relu_shown, y_hat_shown, loss_shown, dx_true = CASE2_INPUTS[name]
    params = load_parameters(CASE2, CASE2_PARAMS)
    trace, grads = backprop(CASE2, params, list(x), [[y]])
    z1, y_hat, loss, dx = case2_by_scalar_math(x, y)
    assert trace.layers[0].z[:, 0].tolist() == list(z1_shown) == z1
    assert trace.layers[0].a[:, 0].tolist() == list(relu_shown)
    assert trace.output.shape == (1, 1)
    assert trace.output[0, 0] == y_hat_shown == y_hat
    assert trace.data_loss == loss_shown == loss
    assert grads.grad_x.shape == (2, 1)
    assert grads.grad_x[:, 0].tolist() == list(dx_true) == dx


def test_case2_c_differs_from_the_printed_gradient() -> None:
    x, y, *_ = CASE2_INPUTS["c"]
    _, grads = backprop(CASE2, load_parameters(CASE2, CASE2_PARAMS), list(x), [[y]])
    assert grads.grad_x[:, 0].tolist() != [0.0, 2.0]  # what the notes print
    assert grads.grad_x[:, 0].tolist() == [0.0, -2.0]
    # A finite difference in x2 agrees with −2: ℓ(x2 + h) − ℓ(x2 − h) over 2h (ReLU pattern is unchanged).
    h = 1e-3
    up = case2_by_scalar_math((x[0], x[1] + h), y)[2]
    down = case2_by_scalar_math((x[0], x[1] - h), y)[2]
    assert (up - down) / (2 * h) == pytest.approx(-2.0, rel=1e-9)


def test_case2_as_one_batch_of_three_columns() -> None:
    names = sorted(CASE2_INPUTS)
    X = np.array([CASE2_INPUTS[n][0] for n in names]).T  # (2, 3): one column per example
    Y = np.array([[CASE2_INPUTS[n][1] for n in names]])  # (1, 3)
    trace, grads = backprop(CASE2, load_parameters(CASE2, CASE2_PARAMS), X, Y)
    assert X.shape == (2, 3)
    assert trace.data_loss == 1.5  # three losses of ½, summed
    assert trace.output.tolist() == [[1.0, -1.0, -1.0]]
    # With reduction sum the gradient wrt X is per column: example n only touches column n.
    assert grads.grad_x.shape == (2, 3)
    for column, name in enumerate(names):
        assert grads.grad_x[:, column].tolist() == list(CASE2_INPUTS[name][6])
    # dℓ/dW2 sums a1 · (ŷ − y) over the columns: a) (1,0)·(−1) + b) (0,1)·(−1) + c) (0,1)·(+1)
    assert grads.layers[1].grad_W.tolist() == [[-1.0, 0.0]]
