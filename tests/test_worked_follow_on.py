"""Follow-on attribution and named intermediates ([nodes]): one slip is one root mistake, not four."""

from __future__ import annotations

import json

import pytest

from refbp.cli import EXIT_FOUND, main
from refbp.errors import InputError
from worked.command import BUNDLED_DIR
from worked.evaluate import check_example
from worked.example_file import parse_example
from worked.results import ClaimResult

# A student's two steps on one sigmoid unit. The gradient dE/dw2 is copied with a digit slip
# (-0.2469 for -0.2369); the step size, the updated weight and the weight after the second
# step are then computed correctly from what was written down.
STUDENT = """
title = "One sigmoid unit, two steps, a copied digit slipped"
learning_rate = 0.5

[network]
inputs = 2
layout = "in_out"
layers = [{ units = 1, activation = "sigmoid", bias = "shared" }]
loss = { kind = "half_sse", reduction = "sum" }

[parameters]
W1 = [[0.5], [-0.25]]
b1 = 0.1

[aliases]
w1 = "W1[0,0]"
w2 = "W1[1,0]"
z = "z1[0]"
o = "a1[0]"

[nodes]
e = "exp(-z)"                       # the e^(−z) of σ(z) = 1/(1 + e^(−z))
step = "0.5 * dE/dw2"               # η·∂E/∂w2
dW = "-0.5 * dE/dW1"                # ΔW, the whole update

[data]
x = [1, 2]
t = [1]

[claims]
e = "0.9048"
o = "0.5250"
"dE/dw1" = "-0.1185"
"dE/dw2" = "-0.2469"
step = "-0.1235"
"dW[0,0]" = "0.0592"

[after_steps.1]
w1 = "0.5592"
w2 = "-0.1266"
"dE/dw2" = "-0.1843"

[after_steps.2]
w2 = "-0.0344"
"""


def _by(results: list) -> dict[tuple[str, int], ClaimResult]:
    return {(r.claim.reference, r.claim.step): r for r in results if isinstance(r, ClaimResult)}


def test_one_slip_is_one_root_mistake_and_what_was_computed_from_it_follows() -> None:
    results = _by(check_example(parse_example(STUDENT, "student.toml")))
    status = {key: r.status for key, r in results.items()}
    assert status == {
        ("e", 0): "ok", ("o", 0): "ok", ("dE/dw1", 0): "ok", ("dE/dw2", 0): "wrong",
        ("step", 0): "follows", ("dW[0,0]", 0): "ok",
        ("w1", 1): "ok", ("w2", 1): "follows", ("dE/dw2", 1): "ok",
        ("w2", 2): "follows",
    }  # fmt: skip
    assert results[("step", 0)].follows_from == "dE/dw2 = -0.2469"
    assert results[("step", 0)].recomputed == pytest.approx(0.5 * -0.2469, abs=1e-12)
    assert results[("w2", 1)].follows_from == "dE/dw2 = -0.2469"
    assert results[("w2", 1)].recomputed == pytest.approx(-0.25 - 0.5 * -0.2469, abs=1e-12)
    # the second update reads the printed w2 after one step (itself a follow-on) and the printed gradient
    assert results[("w2", 2)].follows_from == "w2 = -0.1266 (after 1 step)"
    assert results[("w2", 2)].recomputed == pytest.approx(-0.1266 - 0.5 * -0.1843, abs=1e-12)
    assert results[("w2", 2)].hint.startswith("follows from w2 = -0.1266 (after 1 step)")


def test_the_summary_counts_root_mistakes_apart(tmp_path, capsys) -> None:
    path = tmp_path / "student.toml"
    path.write_text(STUDENT, encoding="utf-8")
    assert main(["examples", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == EXIT_FOUND
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "FAIL: 1 worked example, 10 claims (6 ok, 1 wrong, 3 follows); 1 root mistake, 3 following from them"
    )
    summary = json.loads((tmp_path / "r" / "worked_examples.json").read_text(encoding="utf-8"))
    assert (summary["root_mistakes"], summary["follow_on_mistakes"]) == (1, 3)
    step = next(c for c in summary["examples"][0]["claims"] if c["claim"] == "step")
    assert step["status"] == "follows" and step["follows_from"] == "dE/dw2 = -0.2469"
    md = (tmp_path / "r" / "worked_examples.md").read_text(encoding="utf-8")
    assert "10 claims: 6 ok, **1 wrong**, **3 follows**" in md


def test_a_wrong_number_that_its_inputs_do_not_explain_stays_a_root_mistake() -> None:
    text = STUDENT.replace('step = "-0.1235"', 'step = "-0.1335"')
    results = _by(check_example(parse_example(text, "student.toml")))
    assert results[("step", 0)].status == "wrong" and results[("step", 0)].follows_from == ""


def test_right_numbers_around_a_slip_are_not_touched() -> None:
    """With the slip fixed every claim is ok; nothing is attributed."""
    text = STUDENT.replace('"-0.2469"', '"-0.2369"').replace('step = "-0.1235"', 'step = "-0.1185"')
    text = text.replace('w2 = "-0.1266"', 'w2 = "-0.1315"').replace('w2 = "-0.0344"', 'w2 = "-0.0394"')
    results = _by(check_example(parse_example(text, "student.toml")))
    assert {r.status for r in results.values()} == {"ok"}


def test_nodes_name_the_hand_computation_and_are_checked_three_ways() -> None:
    """The L2 example's data gradient without the penalty and the update ΔW, as a person writes them down."""
    text = (BUNDLED_DIR / "l2_gradient_descent.toml").read_text(encoding="utf-8")
    text = text.replace("[data]", '[nodes]\ngrad_data = "dL/dW1 - 0.1 * W1"\nupdate = "-0.1 * dL/dW1"\n\n[data]')
    text = text.replace('"dL/db" = "-1.5"', '"dL/db" = "-1.5"\n"grad_data[0,0]" = "-1.5"\n"grad_data[1,0]" = "-3"\n'
                        '"update[1,0]" = "0.305"')  # fmt: skip
    results = _by(check_example(parse_example(text, "l2.toml")))
    for key in (("grad_data[0,0]", 0), ("grad_data[1,0]", 0), ("update[1,0]", 0)):
        assert results[key].status == "ok", key
        assert results[key].agreement == "refbp = torch = fd"
    assert results[("update[1,0]", 0)].value == pytest.approx(0.305, abs=1e-12)


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ('bad = "W1 @ W1"', "nodes.bad: expected shapes that @ can multiply (not (2, 1) and (2, 1))"),
        ('bad = "dE/dq"', "nodes.bad: expected a known quantity"),
        ('bad = "sin(z)"', "(not 'sin')"),
        ('bad = 3', 'nodes.bad: expected an expression written as a string'),
    ],
)  # fmt: skip
def test_bad_nodes_are_one_line(node: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_example(STUDENT.replace("[nodes]\n", f"[nodes]\n{node}\n"), "student.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("student.toml, line ")
