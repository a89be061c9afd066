"""The lean training loop (refbp.train.Trainer) against the validated path, step by step.

The validated path is what worked examples and ``fit`` did before the lean loop: one
``refbp.network.backprop`` per step and the readable NumPy rules of
``worked.optimizers.Optimizer``. The lean loop must give the same numbers bit for bit:
parameters, optimiser state, gradients and loss, at every step, for every optimiser, loss,
layout, bias mode, activation, L2 setting and frozen parameters.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refbp.errors import InputError
from refbp.lean_pass import LeanPass
from refbp.network import backprop
from refbp.params import init_parameters
from refbp.sequential_spec import SequentialSpec
from refbp.spec import NetworkSpec
from refbp.train import NonFiniteError, Trainer
from worked.optimizers import KINDS, Optimizer, optimizer_spec

LOSSES = {
    "half_sse": ("sigmoid", "dense"),
    "mse": ("tanh", "dense"),
    "softmax_cross_entropy": ("softmax", "index"),
    "binary_cross_entropy": ("sigmoid", "dense"),
}


def make_spec(loss: str, *, layout: str, bias: str, hidden: str, reduction: str, lam: float,
              include_bias: bool, dtype: str = "float64") -> NetworkSpec:  # fmt: skip
    output, targets = LOSSES[loss]
    loss_table = {"kind": loss, "reduction": reduction}
    if loss == "softmax_cross_entropy":
        loss_table["targets"] = targets
    return NetworkSpec.from_dict({
        "inputs": 3, "layout": layout, "dtype": dtype,
        "layers": [{"units": 4, "activation": hidden, "bias": bias, "negative_slope": 0.1}
                   if hidden == "leaky_relu" else {"units": 4, "activation": hidden, "bias": bias},
                   {"units": 3, "activation": "relu", "bias": "per_unit"},
                   {"units": 2, "activation": output, "bias": bias}],
        "loss": loss_table, "l2": {"lambda": lam, "include_bias": include_bias},
    })  # fmt: skip


def batch(spec: NetworkSpec, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, spec.inputs)).astype(spec.dtype)
    if spec.loss.kind == "softmax_cross_entropy":
        T = rng.integers(0, spec.outputs, size=n)
        return (X if spec.layout == "in_out" else X.T.copy()), T
    T = rng.uniform(0.05, 0.95, size=(n, spec.outputs)).astype(spec.dtype)
    return (X, T) if spec.layout == "in_out" else (X.T.copy(), T.T.copy())


def assert_same(lean: dict, reference: dict, what: str) -> None:
    assert list(lean) == list(reference), what
    for name in reference:
        assert lean[name].dtype == reference[name].dtype, (what, name)
        assert np.array_equal(lean[name], reference[name]), (what, name, lean[name], reference[name])


def compare_step_by_step(spec: NetworkSpec, kind: str, frozen: tuple[str, ...], steps: int, lr: float) -> None:
    params = init_parameters(spec, seed=3)
    X, T = batch(spec, 5, seed=4)
    settings = optimizer_spec(kind)
    trainer = Trainer(spec, params, X, T, lr=lr, optimizer=kind, settings=settings.settings, frozen=frozen)
    optimizer = Optimizer(settings, lr, frozen)
    current = {name: value.copy() for name, value in params.items()}
    for step in range(steps + 1):
        trace, grads = backprop(spec, current, X, T)
        lean_loss = trainer.loss()  # runs the tape: the lean gradients are now in trainer.lean.grads
        assert lean_loss == trace.loss, step
        assert_same({n: trainer.lean.grads[n] for n in current}, grads.by_parameter(), f"gradients at step {step}")
        assert_same(trainer.parameters(), current, f"parameters at step {step}")
        assert trainer.step == optimizer.t == step
        state = trainer.optimizer_state()
        assert list(state) == list(optimizer.snapshot()), step
        for name, per in optimizer.snapshot().items():
            assert_same(state[name], per, f"{kind} state of {name} at step {step}")
        if step < steps:
            current = optimizer.step(current, grads.by_parameter())
            trainer.run(1)
    assert any(not np.array_equal(current[n], params[n]) for n in current if n not in frozen)  # it did train
    for name in frozen:
        assert np.array_equal(current[name], params[name])


@pytest.mark.parametrize(("kind", "loss"), list(itertools.product(KINDS, LOSSES)))
def test_every_optimizer_and_loss_gives_the_validated_path_bit_for_bit(kind: str, loss: str) -> None:
    spec = make_spec(loss, layout="in_out", bias="per_unit", hidden="tanh", reduction="mean", lam=0.0,
                     include_bias=False)  # fmt: skip
    compare_step_by_step(spec, kind, (), steps=12, lr=0.05)


@pytest.mark.parametrize(
    ("kind", "loss", "layout", "bias", "hidden", "reduction", "lam", "include_bias", "frozen"),
    [
        ("sgd", "half_sse", "out_in", "shared", "sigmoid", "sum", 0.1, False, ("b1",)),
        ("momentum", "mse", "in_out", "none", "leaky_relu", "mean", 0.05, True, ("W2",)),
        ("nesterov", "softmax_cross_entropy", "out_in", "per_unit", "relu", "sum", 0.2, True, ("W1", "b3")),
        ("rmsprop", "binary_cross_entropy", "in_out", "shared", "identity", "mean", 0.01, False, ("b1", "b3")),
        ("adam", "half_sse", "out_in", "per_unit", "sigmoid", "mean", 0.3, True, ("W3",)),
        ("adam", "softmax_cross_entropy", "in_out", "shared", "tanh", "sum", 0.0, False, ("W1", "b1", "W2")),
        ("sgd", "binary_cross_entropy", "out_in", "none", "tanh", "sum", 0.0, False, ()),
    ],
)
def test_layouts_biases_l2_and_frozen_parameters_give_the_validated_path_bit_for_bit(
    kind: str, loss: str, layout: str, bias: str, hidden: str, reduction: str, lam: float, include_bias: bool,
    frozen: tuple[str, ...],
) -> None:  # fmt: skip
    spec = make_spec(loss, layout=layout, bias=bias, hidden=hidden, reduction=reduction, lam=lam,
                     include_bias=include_bias)  # fmt: skip
    frozen = tuple(name for name in frozen if name in spec.parameter_shapes())
    compare_step_by_step(spec, kind, frozen, steps=10, lr=0.05)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_networks_train_in_float32_as_the_validated_path_does(kind: str) -> None:
    spec = make_spec("half_sse", layout="in_out", bias="per_unit", hidden="sigmoid", reduction="mean", lam=0.1,
                     include_bias=True, dtype="float32")  # fmt: skip
    compare_step_by_step(spec, kind, ("b2",), steps=8, lr=0.05)


def test_a_long_run_reaches_the_closed_form_gradient_descent_iterate() -> None:
    """20,000 steps on least squares: θ_k = θ* + (I − ηH)^k (θ_0 − θ*), computed without refbp."""
    X = np.array([[1.0, 2.0], [2.0, -1.0], [0.5, 0.5], [-1.0, 1.5]])
    T = np.array([[3.0], [0.5], [1.0], [1.0]])
    spec = NetworkSpec.from_dict({"inputs": 2, "layers": [{"units": 1, "activation": "identity"}],
                                  "loss": {"kind": "half_sse", "reduction": "sum"}})  # fmt: skip
    W0, b0, lr, steps = np.array([[0.2], [-0.3]]), np.array([0.1]), 0.001, 20_000
    trainer = Trainer(spec, {"W1": W0, "b1": b0}, X, T, lr=lr)
    trainer.run(steps)
    A = np.hstack([X, np.ones((4, 1))])
    H = A.T @ A
    star = np.linalg.solve(H, A.T @ T)
    theta = star + np.linalg.matrix_power(np.eye(3) - lr * H, steps) @ (np.vstack([W0, b0[:, None]]) - star)
    got = trainer.parameters()
    np.testing.assert_allclose(np.vstack([got["W1"], got["b1"][:, None]]), theta, rtol=1e-10, atol=1e-12)
    assert trainer.step == steps


def diverging_step(lr: float, x: float = 1.5, t: float = 2.0, w: float = 0.3, b: float = -0.2) -> int:
    """The first step after which w or b is no longer finite, simulated in Python floats."""
    for step in range(1, 100_000):
        r = w * x + b - t
        w, b = w - lr * (r * x), b - lr * r
        if not (math.isfinite(w) and math.isfinite(b)):
            return step
    raise AssertionError("did not diverge")


def test_parameters_that_become_non_finite_are_reported_with_the_first_step() -> None:
    spec = NetworkSpec.from_dict({"inputs": 1, "layers": [{"units": 1, "activation": "identity"}],
                                  "loss": {"kind": "half_sse", "reduction": "sum"}})  # fmt: skip
    trainer = Trainer(spec, {"W1": [[0.3]], "b1": [-0.2]}, [[1.5]], [[2.0]], lr=10.0)
    trainer.run(50)  # still finite: the check after a run passes
    with pytest.raises(NonFiniteError) as caught:
        trainer.run(5000)
    expected = diverging_step(10.0)
    assert 50 < expected < 5050
    assert caught.value.step == expected
    assert str(caught.value) == (
        "spec: lr: expected parameters that stay finite while training (a smaller learning rate), "
        f"got '{caught.value.name} NaN or infinite after step {expected}'"
    )
    assert isinstance(caught.value, InputError)


def test_a_worked_example_that_diverges_is_one_line_naming_file_table_and_step(tmp_path: Path) -> None:
    example = tmp_path / "diverges.toml"
    example.write_text(
        'title = "diverging"\nlearning_rate = 10\n[network]\ninputs = 1\n'
        'layers = [{ units = 1, activation = "identity", bias = "per_unit" }]\n'
        'loss = { kind = "half_sse", reduction = "sum" }\n[parameters]\nW1 = [[0.3]]\nb1 = [-0.2]\n'
        '[parts.a.data]\nx = [1.5]\nt = [2]\n[parts.a.claims]\nloss = "0.8"\n'
        '[parts.a.after_steps.5]\nloss = "1"\n[parts.a.after_steps.1000]\nloss = "1"\n',
        encoding="utf-8",
    )
    done = subprocess.run([sys.executable, "-m", "refbp", "examples", str(example), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr and "Warning" not in done.stderr
    assert f"{example}: parts.a.after_steps.1000: expected parameters that stay finite" in done.stderr
    assert f"after step {diverging_step(10.0)}'" in done.stderr


def test_everything_is_validated_once_when_the_trainer_is_built() -> None:
    spec = make_spec("half_sse", layout="in_out", bias="per_unit", hidden="tanh", reduction="sum", lam=0.0,
                     include_bias=False)  # fmt: skip
    params = init_parameters(spec, seed=0)
    X, T = batch(spec, 2, seed=0)
    bad = {**params, "W2": np.full((4, 3), np.nan)}
    with pytest.raises(InputError, match=r"^params: W2: expected finite numbers"):
        Trainer(spec, bad, X, T, lr=0.1)
    with pytest.raises(InputError, match=r"^inputs: X: expected shape \(N, 3\)"):
        Trainer(spec, params, X[:, :2], T, lr=0.1)
    with pytest.raises(InputError, match=r"^spec: lr: expected a learning rate > 0"):
        Trainer(spec, params, X, T, lr=float("inf"))
    with pytest.raises(InputError, match=r"^spec: optimizer: expected one of sgd, momentum"):
        Trainer(spec, params, X, T, lr=0.1, optimizer="adagrad")
    with pytest.raises(InputError, match=r"^spec: settings: expected settings of momentum \(beta\), got 'beta1'"):
        Trainer(spec, params, X, T, lr=0.1, optimizer="momentum", settings={"beta1": 0.5})
    with pytest.raises(InputError, match=r"^spec: steps: expected a number of steps >= 0"):
        Trainer(spec, params, X, T, lr=0.1).run(-1)
    typed = SequentialSpec.from_dict({"inputs": [2, 3], "layers": [{"type": "rnn", "hidden": 2},
                                      {"type": "last_step"}, {"units": 1, "activation": "identity"}],
                                      "loss": {"kind": "half_sse"}})  # fmt: skip
    with pytest.raises(InputError, match=r"^spec: spec: expected a dense NetworkSpec"):
        LeanPass(typed, {}, X, T)


def test_the_callers_arrays_are_never_written() -> None:
    spec = make_spec("mse", layout="out_in", bias="shared", hidden="sigmoid", reduction="mean", lam=0.1,
                     include_bias=True)  # fmt: skip
    params = init_parameters(spec, seed=1)
    X, T = batch(spec, 3, seed=1)
    before = {n: v.copy() for n, v in params.items()}, X.copy(), T.copy()
    trainer = Trainer(spec, params, X, T, lr=0.1, optimizer="adam")
    trainer.run(20)
    assert_same(params, before[0], "caller's parameters")
    assert np.array_equal(X, before[1]) and np.array_equal(T, before[2])
    snapshot = trainer.parameters()
    trainer.run(1)
    assert not np.array_equal(snapshot["W1"], trainer.parameters()["W1"])  # parameters() are copies


GRAPH = """
title = "a two-layer circuit with a matrix, a vector and scalars"
learning_rate = 0.1
optimizer = {optimizer}
[graph]
x = [0.5, -1.0]
t = 0.25
W = [[0.3, -0.2], [0.1, 0.4]]
b = [0.05, -0.05]
v = [0.7, -0.6]
c = 0.1
h = "tanh(W @ x + b)"
y = "sigmoid(v @ h + c)"
L = "0.5 * (y - t)**2 + 0.01 * sum(W * W)"
[graph.train]
loss = "L"
parameters = ["W", "b", "v", "c"]
[claims]
L = "0.1"
[after_steps.15]
L = "0.1"
"""


TRICKY_GRAPH = """
title = "repeated names, nodes read twice, a max gate, indexing, transposes, softmax and mean"
learning_rate = 0.05
optimizer = {optimizer}
[graph]
x = [0.5, -1.0, 2.0]
W = [[0.3, -0.2, 0.1], [0.1, 0.4, -0.3]]
a = 0.7
k = 1.5
s = "W @ x"
m = "max(s[0] * a, s[1] - a)"
q = "s * s + m"
p = "softmax(q)"
r = "(W.T @ p)[2] / k"
L = "mean(q * q) - r * r + m ** 2 + relu(s[1]) + abs(a)"
[graph.train]
loss = "L"
parameters = ["W", "a", "k"]
[claims]
L = "0.1"
[after_steps.15]
L = "0.1"
"""


@pytest.mark.parametrize(("kind", "text"), [(k, GRAPH) for k in KINDS] + [("adam", TRICKY_GRAPH)])
def test_graph_examples_train_as_the_validated_path_bit_for_bit(kind: str, text: str) -> None:
    from worked.example_file import parse_example
    from worked.graph import gradients_of
    from worked.graph_check import refbp_graph_trajectory

    example = parse_example(text.format(optimizer=f'{{ kind = "{kind}" }}'), "graph.toml")
    part = example.parts[0]
    states = refbp_graph_trajectory(example, part, set(range(16)))
    leaves = example.start(part)
    optimizer = Optimizer(example.optimizer, example.learning_rate)
    names = list(example.parameters)
    for step in range(16):
        state = states[step]
        assert state.t == step
        for name in leaves:
            assert np.array_equal(np.asarray(state.params[name]), np.asarray(leaves[name])), (kind, step, name)
        snapshot = optimizer.snapshot()
        assert list(state.optimizer) == list(snapshot)
        for name, per in snapshot.items():
            assert_same(state.optimizer[name], {k: np.asarray(v) for k, v in per.items()}, f"{kind} {name} {step}")
        grads = gradients_of(example.graph, leaves, "L")  # the recursive evaluator
        leaves = {**leaves, **optimizer.step({n: leaves[n] for n in names}, grads)}
    assert not np.array_equal(np.asarray(leaves["W"]), np.asarray(example.start(part)["W"]))
