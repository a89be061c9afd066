"""Formula claims: identities checked at the example's values and at random points, with counterexamples."""

from __future__ import annotations

import json
import math

import pytest

from refbp.cli import EXIT_FOUND, EXIT_OK, main
from refbp.errors import InputError
from worked.command import BUNDLED_DIR
from worked.evaluate import check_example
from worked.example_file import load_example, parse_example
from worked.formula_check import RANDOM_POINTS, FormulaResult


def _formulas(text: str) -> dict[str, FormulaResult]:
    return {r.formula.text: r for r in check_example(parse_example(text, "f.toml")) if isinstance(r, FormulaResult)}


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def test_seed_000s_sigma_prime_is_wrong_with_a_counterexample_and_the_right_ones_pass() -> None:
    results = {r.formula.text: r for r in check_example(load_example(BUNDLED_DIR / "seed000_sigmoid_derivative.toml"))
               if isinstance(r, FormulaResult)}  # fmt: skip
    notes = results["d sigmoid(z)/dz"]
    assert notes.status == "wrong"
    assert notes.point == "z = 1"  # the example's own z
    assert notes.claimed == pytest.approx(sigmoid(1) / 2, rel=1e-12)
    assert notes.true == pytest.approx(sigmoid(1) * (1 - sigmoid(1)), rel=1e-12)
    assert notes.hint == "at z = 1: the formula gives 0.365529, the true value is 0.196612"
    for right in ("d sigmoid(s)/ds", "d tanh(u)/du", "dl/dz"):
        assert results[right].status == "ok", right
        assert results[right].points >= RANDOM_POINTS


def test_a_formula_right_only_at_the_examples_point_is_a_coincidence_and_wrong() -> None:
    """σ'(0) = 1/4 = σ(0)/2: the example's z = 0 cannot tell σ(z)/2 from σ(z)(1 − σ(z))."""
    text = """
[graph]
z = 0
a = "sigmoid(z)"
[claims]
a = "0.5"
[formulas]
"da/dz" = "sigmoid(z) / 2"
"d sigmoid(v)/dv" = "sigmoid(v) * (1 - sigmoid(v))"
"""
    results = _formulas(text)
    coincidence = results["da/dz"]
    assert coincidence.status == "wrong"
    assert coincidence.hint.startswith("right at the example's values only (a coincidence); at z = ")
    z = float(coincidence.point.split("=")[1])
    assert coincidence.claimed == pytest.approx(sigmoid(z) / 2, rel=1e-5)
    assert coincidence.true == pytest.approx(sigmoid(z) * (1 - sigmoid(z)), rel=1e-5)
    assert results["d sigmoid(v)/dv"].status == "ok"


def test_network_formulas_are_checked_on_random_networks_of_the_spec() -> None:
    """案例 1's hidden δ: the right back-propagation formula passes, the one without the transpose does not."""
    text = (BUNDLED_DIR / "seed001_case1.toml").read_text(encoding="utf-8")
    text += """
[formulas]
"delta1" = "a1 * (1 - a1) * (delta2 @ W2.T)"
"delta2" = "a2 * (1 - a2) * (a2 - t)"
"dE/dW2" = "a1.T * delta2"
"dE/db1" = "sum(a1 * (1 - a1) * (delta2 @ W2))"
"""
    with pytest.raises(InputError, match=r"formulas\.delta2: expected a name defined earlier \(not 't'\)"):
        parse_example(text, "case1.toml")  # t is data, not a quantity of the network
    text = text.replace('"delta2" = "a2 * (1 - a2) * (a2 - t)"\n', "")
    with pytest.raises(
        InputError, match=r"formulas\.\"dE/dW2\": expected an expression of the shape of dE/dW2, \(2, 2\)"
    ):
        parse_example(text, "case1.toml")  # (2,) times (2,) is elementwise, not the outer product
    text = text.replace('"dE/dW2" = "a1.T * delta2"\n', '"dE/dW2[0,1]" = "a1[0] * delta2[1]"\n')
    results = _formulas(text)
    assert results["delta1"].status == "ok" and results["delta1"].points == 31
    assert results["dE/dW2[0,1]"].status == "ok"
    wrong = results["dE/db1"]
    assert wrong.status == "wrong" and wrong.point == "the example's values"
    assert wrong.true == pytest.approx(0.0023882, abs=1e-7)


def test_formula_rows_in_the_reports(tmp_path, capsys) -> None:
    path = tmp_path / "f.toml"
    path.write_text('[formulas]\n"d tanh(u)/du" = "1 - tanh(u)**2"\n"d exp(-u)/du" = "exp(-u)"\n', encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r")]) == EXIT_FOUND
    out = capsys.readouterr().out
    assert "FAIL: 1 worked example, 2 claims (1 ok, 1 wrong)" in out
    summary = json.loads((tmp_path / "r" / "worked_examples.json").read_text(encoding="utf-8"))
    records = summary["examples"][0]["claims"]
    assert [(r["kind"], r["where"], r["status"]) for r in records] == [
        ("formula", "formula", "ok"), ("formula", "formula", "wrong"),
    ]  # fmt: skip
    point = records[1]["counterexample"]
    u = float(point["point"].split("=")[1])
    assert point["claimed"] == pytest.approx(math.exp(-u), rel=1e-5)
    assert point["true"] == pytest.approx(-math.exp(-u), rel=1e-5)
    path.write_text('[formulas]\n"d tanh(u)/du" = "1 - tanh(u)**2"\n', encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r")]) == EXIT_OK


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('"d sigmoid(z)/dz" = 3', 'formulas."d sigmoid(z)/dz": expected the claimed expression as a string'),
        ('"d sigmoid(z)/dz" = "sigmoid(z) +"', "expected an expression in the whitelist"),
        ('"d sigmoid(z)/dz" = "open(z)"', "(not 'open')"),
    ],
)
def test_bad_formulas_are_one_line(tmp_path, line: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_example(f"[formulas]\n{line}\n", "f.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("f.toml, line 2: ")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('"df/dx" = "q[3]"', "expected an index into shape () (not [3])"),
        ('"f[2]" = "q"', "expected an index into f, of shape () (not [2])"),
        ('"q" = "x * [1, 2]"', "numbers, names, + - * / @ **, functions, indexing and .T only"),
    ],
)
def test_bad_graph_formulas_are_refused_before_anything_is_computed(line: str, message: str) -> None:
    text = f'[graph]\nx = -2\ny = 5\nz = -4\nq = "x + y"\nf = "q * z"\n[formulas]\n{line}\n'
    with pytest.raises(InputError) as caught:
        parse_example(text, "g.toml")
    assert str(caught.value).startswith("g.toml, line 8: formulas.")
    assert message in str(caught.value)
