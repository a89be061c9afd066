"""The [graph] form: circuits, local derivatives, tied weights and training, checked three ways."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refbp.cli import EXIT_FOUND, EXIT_OK, EXIT_USAGE, main
from refbp.errors import InputError
from worked.command import BUNDLED_DIR
from worked.evaluate import check_example
from worked.example_file import load_example, parse_example
from worked.expressions import ExpressionError, backward, forward, parse_expression
from worked.graph import Graph, reverse_mode
from worked.results import ClaimResult
from worked.torch_expressions import torch_forward

# The CS231n-style circuit as a student hands it in: the forward values, every gate's
# gradient, and the multiply gate's gradient written down as "the other input".
CIRCUIT = """
title = "f(x, y, z) = (x + y) z"
[graph]
x = -2
y = 5
z = -4
q = "x + y"
f = "q * z"
[claims]
q = "3"
f = "-12"
"df/dz" = "3"
"df/dq" = "-4"
"∂f/∂x" = "-4"
"df/dy" = "-4"
"""


def _claims(text: str, name: str = "example.toml") -> dict[str, ClaimResult]:
    results = check_example(parse_example(text, name))
    return {f"{r.claim.reference}@{r.claim.step}": r for r in results if isinstance(r, ClaimResult)}


def test_a_circuit_needs_no_fake_target_and_every_gate_gradient_is_checked() -> None:
    results = _claims(CIRCUIT)
    assert {k: r.status for k, r in results.items()} == dict.fromkeys(results, "ok")
    assert results["df/dz@0"].value == 3.0 and results["df/dq@0"].value == -4.0
    for r in results.values():
        assert r.agreement == "refbp = torch = fd"
        assert r.by["torch"] == pytest.approx(r.value, abs=1e-12)
        assert r.by["fd"] == pytest.approx(r.value, abs=1e-7)


def test_the_local_derivative_holds_the_nodes_inputs_fixed() -> None:
    """f = q·x with q = x + y: df/dq = x (q moved alone), df/dx = q + x (every path)."""
    text = """
[graph]
x = 3
y = 1
q = "x + y"
f = "q * x"
[claims]
"df/dq" = "3"
"df/dx" = "7"
"dq/df" = "0"
"""
    results = _claims(text)
    assert {k: (r.status, r.value) for k, r in results.items()} == {
        "df/dq@0": ("ok", 3.0), "df/dx@0": ("ok", 7.0), "dq/df@0": ("ok", 0.0),
    }  # fmt: skip


def test_bundled_circuit_with_max_gate_and_product() -> None:
    results = [r for r in check_example(load_example(BUNDLED_DIR / "circuit_max_gate.toml")) if hasattr(r, "claim")]
    by = {r.claim.reference: r for r in results}
    assert all(r.status == "ok" for r in results)
    # hand derivation, independent of every evaluator: f = 2(xy + max(z, w))
    x, y = 3.0, -4.0
    assert by["df/dx"].value == 2 * y and by["df/dy"].value == 2 * x
    assert by["df/dz"].value == 0.0 and by["df/dw"].value == 2.0


def test_a_derivative_at_a_max_tie_is_unsupported_not_wrong() -> None:
    text = """
[graph]
a = 1.5
b = 1.5
m = "max(a, b)"
[claims]
"dm/da" = "1"
m = "1.5"
"""
    results = _claims(text)
    assert results["dm/da@0"].status == "unsupported"
    assert "at a kink" in results["dm/da@0"].agreement
    assert results["m@0"].status == "ok"


def test_an_unrolled_rnn_accumulates_a_tied_weight_over_both_steps() -> None:
    results = [r for r in check_example(load_example(BUNDLED_DIR / "rnn_two_steps_tied.toml")) if hasattr(r, "claim")]
    assert {r.status for r in results} == {"ok"}
    by = {(r.claim.reference, r.claim.step): r.value for r in results}
    # BPTT by hand in scalars: ∂L/∂u = δ2·x2 + δ1·x1 with δ_k = ∂L/∂a_k
    h1 = math.tanh(1.0)
    h2 = math.tanh(0.5 * h1 - 0.5)
    d2 = (2 * h2 - 0.5) * 2 * (1 - h2**2)
    d1 = d2 * 0.5 * (1 - h1**2)
    assert by[("dL/du", 0)] == pytest.approx(d2 * -0.5 + d1 * 1.0, rel=1e-12)
    assert by[("dL/dw", 0)] == pytest.approx(d2 * h1, rel=1e-12)
    assert by[("u", 1)] == pytest.approx(1.0 - 0.1 * (d2 * -0.5 + d1), rel=1e-12)


def test_a_wrong_gate_gradient_is_wrong_with_a_sign_hint_and_exit_1(tmp_path, capsys) -> None:
    path = tmp_path / "circuit.toml"
    path.write_text(CIRCUIT.replace('"df/dz" = "3"', '"df/dz" = "-3"'), encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == EXIT_FOUND
    out = capsys.readouterr().out
    assert "wrong: " + str(path) + ": df/dz = -3, should read 3" in out
    result = _claims(path.read_text(encoding="utf-8"))["df/dz@0"]
    assert result.hint.startswith("sign flipped")


def test_training_a_graph_with_after_steps() -> None:
    """One neuron by hand: L = ½(σ(wx + b) − t)², two steps of plain gradient descent."""
    text = """
learning_rate = 1.0
[graph]
x = 1.5
t = 1
w = 0.2
b = -0.1
z = "w * x + b"
y = "sigmoid(z)"
L = "0.5 * (y - t)**2"
[graph.train]
loss = "L"
parameters = ["w", "b"]
[claims]
L = "0.1013"
[after_steps.2]
w = "0.4931"
b = "0.0954"
"""
    w, b, x, t = 0.2, -0.1, 1.5, 1.0
    for _ in range(2):
        y = 1 / (1 + math.exp(-(w * x + b)))
        g = (y - t) * y * (1 - y)
        w, b = w - g * x, b - g
    results = _claims(text)
    assert results["w@2"].value == pytest.approx(w, rel=1e-12)
    assert results["b@2"].value == pytest.approx(b, rel=1e-12)
    assert {r.status for r in results.values()} == {"ok"}


def test_restart_a_part_from_printed_leaves() -> None:
    """Epoch 2 restarts from the weights the source printed after epoch 1 (rounded), not the true ones."""
    text = """
learning_rate = 0.3
[graph]
x = 2
t = 1
w = 0.33
L = "0.5 * (w * x - t)**2"
[graph.train]
loss = "L"
parameters = ["w"]
[parts.epoch1.after_steps.1]
w = "0.5"
[parts.epoch2.parameters]
w = 0.5
[parts.epoch2.claims]
L = "0.000"
[parts.epoch2.after_steps.1]
w = "0.500"
"""
    # epoch 1: w = 0.33 + 0.3·(1 − 0.66)·2 = 0.534, printed to one place as 0.5; epoch 2 from the
    # printed 0.5 sits at the minimum (y = 1), where the true 0.534 would have moved on to 0.4932.
    results = check_example(parse_example(text, "epochs.toml"))
    by = {(r.part, r.claim.reference, r.claim.step): r for r in results}
    assert by[("epoch1", "w", 1)].value == pytest.approx(0.534, abs=1e-12)
    assert by[("epoch2", "w", 1)].value == pytest.approx(0.5, abs=1e-12)
    assert {r.status for r in results} == {"ok"}
    without = check_example(parse_example(text.replace("[parts.epoch2.parameters]\nw = 0.5\n", ""), "e.toml"))
    assert [r.status for r in without if r.part == "epoch2"] == ["wrong", "wrong"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a = \"__import__('os').system('true')\"", "(not \"__import__('os').system\")"),
        ('a = "x.__class__"', "numbers, names, + - * / @ **, functions, indexing and .T only"),
        ('a = "[c for c in x]"', "numbers, names, + - * / @ **, functions, indexing and .T only"),
        ('a = "y + 1"', "a name defined earlier (not 'y')"),
        ('a = "exq(x)"', "did you mean exp?"),
        ('a = "x[5]"', "an index into shape ()"),
        ('a = "log(x - 2)"', "a finite value at the starting values"),
        ("a = true", "a number or an array of numbers"),
        ('exp = "x"', "a name of letters, digits and _ that is not a function's"),
    ],
)
def test_bad_graph_is_one_line_naming_the_node(tmp_path, capsys, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'[graph]\nx = 2\n{text}\n[claims]\nx = "2"\n', encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r")]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"refbp: error: {path}, line 3: graph.")
    assert fragment in err[0]


def test_claim_of_an_unknown_node_or_a_bad_index_is_refused() -> None:
    with pytest.raises(InputError, match=r"claims\.\"dq/dw\": expected a leaf or node of the graph"):
        parse_example(CIRCUIT + '"dq/dw" = "1"\n', "c.toml")
    with pytest.raises(InputError, match=r"claims\.q\[1\]: expected an index into q, of shape \(\)"):
        parse_example(CIRCUIT.replace('q = "3"', 'q = "3"\n"q[1]" = "3"'), "c.toml")


OPS = [
    "sum(sigmoid(W @ x + b) ** 2)",
    "max(x[0], x[1] * W[1, 1]) * mean(softmax(W.T @ x))",
    "sum(relu(W - 0.4) * tanh(x)) / exp(b)",
    "log(abs(x[1] - 3)) + sqrt(W[0, 0]) + min(W)",
    "x @ x + sum(x @ W) - -b",
    "x[-1] ** b + sum(W[:, 0]) + max(W) / (1 + x[0] ** 2)",
]


@pytest.mark.parametrize("text", OPS)
def test_every_operation_agrees_with_torch_autograd(text: str) -> None:
    import torch

    rng = np.random.default_rng(7)
    env = {"x": rng.uniform(0.5, 2, 2), "W": rng.uniform(0.1, 1, (2, 2)), "b": np.asarray(0.3)}
    expr = parse_expression(text, lambda name: name in env)
    memo: dict = {}
    value = forward(expr, env, memo)
    adjoints: dict = {}
    backward(expr, np.ones_like(value), memo, adjoints)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in env.items()}
    torch_forward(expr, tensors).backward()
    assert float(value) == pytest.approx(float(torch_forward(expr, tensors).detach()), rel=1e-12)
    for name, tensor in tensors.items():
        expected = np.zeros_like(env[name]) if tensor.grad is None else tensor.grad.numpy()
        np.testing.assert_allclose(adjoints.get(name, 0 * env[name]), expected, rtol=1e-10, atol=1e-14)


def test_reverse_mode_through_a_shared_intermediate() -> None:
    """h feeds two consumers: dL/dh sums both, and dL/dx is dL/dh · dh/dx."""
    graph = Graph(
        leaves={"x": np.asarray(0.7)},
        nodes={name: parse_expression(text, lambda n: True) for name, text in
               {"h": "tanh(x)", "L": "h * h + 3 * h"}.items()},
    )  # fmt: skip
    grads = reverse_mode(graph, graph.leaves, "L", ())
    h = math.tanh(0.7)
    assert float(grads["h"]) == pytest.approx(2 * h + 3, rel=1e-14)
    assert float(grads["x"]) == pytest.approx((2 * h + 3) * (1 - h * h), rel=1e-14)


def test_expression_errors_name_what_was_expected() -> None:
    with pytest.raises(ExpressionError, match="an expression nested at most 100 deep"):
        parse_expression("exp(" * 150 + "x" + ")" * 150, lambda n: True)
    with pytest.raises(ExpressionError, match="a finite number"):
        parse_expression("1e999 * x", lambda n: True)


def test_the_circuit_from_the_readme_checks_clean(tmp_path, capsys) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CIRCUIT, encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r")]) == EXIT_OK
    assert "PASS: 1 worked example, 6 claims (6 ok)" in capsys.readouterr().out


def test_the_readme_graph_example_checks_clean(tmp_path, capsys) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"^```toml\n(.*?)^```", readme, flags=re.S | re.M) if "\n[graph]\n" in b]
    path = tmp_path / "readme_circuit.toml"
    path.write_text(block, encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r")]) == EXIT_OK
    assert "PASS: 1 worked example, 5 claims (5 ok)" in capsys.readouterr().out


def test_a_step_into_the_undefined_is_wrong_not_a_disagreement() -> None:
    """L = log(w) + w with η = 5: w = 0.5 − 5·(1/0.5 + 1) = −14.5, where log is not defined."""
    text = (
        'learning_rate = 5\n[graph]\nw = 0.5\nL = "log(w) + w"\n[graph.train]\nloss = "L"\nparameters = ["w"]\n'
        '[claims]\nL = "-0.1931"\n[after_steps.1]\nw = "-14.5"\nL = "0"\n'
    )
    results = _claims(text)
    assert results["w@1"].status == "ok" and results["w@1"].value == -14.5
    assert results["L@1"].status == "wrong" and results["L@1"].should_read == "nan"
    assert results["L@1"].agreement == "refbp = torch = fd"


def test_toml_nested_too_deep_is_one_line(tmp_path, capsys) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("[graph]\nx = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r")]) == EXIT_USAGE
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"refbp: error: {path}")
