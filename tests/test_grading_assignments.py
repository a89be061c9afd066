"""Assignments as data: built-ins, a course's own names, points, scenarios, advisory severities, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grading.assignment import builtin_names, load, resolve
from grading.grader import grade_submission
from grading.interfaces import INTERFACES
from grading.oracle_layers import svm_loss
from grading.sandbox import SandboxLimits
from refbp.cli import main
from refbp.errors import InputError

COURSES = Path(__file__).parent / "submissions" / "courses"
CS231N = COURSES / "cs231n_layers.py"
NNLAB = COURSES / "nnlab"
LIMITS = SandboxLimits(function_seconds=20.0, submission_seconds=120.0)
CS231N_FUNCTIONS = {"affine_forward", "affine_backward", "relu_forward", "relu_backward", "svm_loss", "softmax_loss"}

# The old starter code's softmax: stable for ordinary logits, log(0) once a shifted logit is ~ -2000.
OLD_SOFTMAX = (COURSES / "cs231n_old_starter.py").read_text(encoding="utf-8")
INPLACE_RELU = """
def relu_backward(dout, cache):
    dout[cache <= 0] = 0
    return dout
"""


def _variant(tmp_path: Path, *replacements: str) -> Path:
    """The CS231n file with functions replaced (a later definition wins, as in Python)."""
    path = tmp_path / "layers.py"
    path.write_text(CS231N.read_text(encoding="utf-8") + "\n".join(replacements), encoding="utf-8")
    return path


def _with(tmp_path: Path, base: str, **advisory: str) -> Path:
    """A copy of built-in ``base`` with other advisory severities, as a file."""
    text = (Path(__file__).parents[1] / "grading" / "assignments" / f"{base}.toml").read_text(encoding="utf-8")
    for key, value in advisory.items():
        text = text.replace(f'{key} = "warn"', f'{key} = "{value}"')
    path = tmp_path / f"{base}-custom.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_cs231n_layers_file_gets_full_points_and_only_assignment_1_is_graded():
    result = grade_submission(CS231N, "cs231n-a1", 0, LIMITS)
    assert [(r.check, r.quantity, r.status, r.message) for r in result.rows if r.status != "ok"] == []
    assert result.passed and result.score == result.max_score == 14
    assert {r.target for r in result.rows} == CS231N_FUNCTIONS  # batchnorm, dropout, conv: not graded
    points = {}
    for row in result.rows:
        points[row.target] = points.get(row.target, 0.0) + row.max_score
    assert points == pytest.approx(
        {"affine_forward": 2, "affine_backward": 3, "relu_forward": 1, "relu_backward": 2, "svm_loss": 3,
         "softmax_loss": 3}
    )  # fmt: skip


def test_the_same_file_cannot_pass_every_layers_function():
    result = grade_submission(CS231N, "layers", 0, LIMITS)
    assert not result.passed
    assert {r.target for r in result.rows if not r.passed} == {
        "sigmoid_forward", "sigmoid_backward", "tanh_forward", "tanh_backward",
    }  # fmt: skip


def test_a_listed_function_that_is_absent_is_missing_and_costs_its_points(tmp_path):
    path = tmp_path / "layers.py"
    path.write_text(CS231N.read_text(encoding="utf-8").replace("def svm_loss(", "def svm_loss_unused("))
    result = grade_submission(path, "cs231n-a1", 0, LIMITS)
    svm = [r for r in result.rows if r.target == "svm_loss"]
    assert svm and all(r.status == "missing" and r.score == 0 for r in svm)
    assert result.score == 11 and result.max_score == 14


def test_advisory_checks_warn_by_default_and_cost_nothing(tmp_path):
    result = grade_submission(_variant(tmp_path, OLD_SOFTMAX, INPLACE_RELU), "cs231n-a1", 0, LIMITS)
    assert result.passed and result.score == result.max_score == 14
    warned = {(r.check, r.quantity): r for r in result.rows if r.status == "warn"}
    assert set(warned) == {
        ("softmax_loss: large logits", "loss"),
        ("relu_backward", "inputs unchanged"),
    }
    loss = warned["softmax_loss: large logits", "loss"]
    assert loss.advisory == "large_inputs" and loss.max_score == 0
    assert 'advisory.large_inputs = "fail"' in loss.message
    assert "underflows to 0" in loss.diagnosis and "log(0)" in loss.diagnosis
    assert "sigmoid" not in loss.diagnosis and "overflow" not in loss.diagnosis
    inplace = warned["relu_backward", "inputs unchanged"]
    assert "dout" in inplace.message and 'advisory.inplace = "fail"' in inplace.message


def test_advisory_checks_can_fail_or_be_switched_off(tmp_path):
    path = _variant(tmp_path, OLD_SOFTMAX, INPLACE_RELU)
    strict = grade_submission(path, load(_with(tmp_path, "cs231n-a1", inplace="fail", large_inputs="fail")), 0, LIMITS)
    failing = {(r.check, r.quantity, r.status) for r in strict.rows if not r.passed}
    assert failing == {
        ("softmax_loss: large logits", "loss", "nan"),
        ("relu_backward", "inputs unchanged", "mutated"),
    }
    assert strict.max_score == 14 and strict.score < 14
    off = grade_submission(path, load(_with(tmp_path, "cs231n-a1", inplace="off", large_inputs="off")), 0, LIMITS)
    assert off.passed and off.score == off.max_score == 14
    assert not any("large" in r.check or r.quantity == "inputs unchanged" for r in off.rows)


def test_an_unshifted_softmax_is_told_it_overflows(tmp_path):
    unshifted = OLD_SOFTMAX.replace("np.exp(x - np.max(x, axis=1, keepdims=True))", "np.exp(x)")
    result = grade_submission(_variant(tmp_path, unshifted), "cs231n-a1", 0, LIMITS)
    row = next(r for r in result.rows if r.check == "softmax_loss: large logits" and r.quantity == "loss")
    assert row.status == "warn"
    assert "overflows to inf" in row.diagnosis and "subtract each row's maximum" in row.diagnosis
    assert "sigmoid" not in row.diagnosis


def test_a_course_with_its_own_names_points_scenarios_and_tolerance(tmp_path):
    spec = load(NNLAB / "nnlab-hw2.toml")
    result = grade_submission(NNLAB / "student.py", spec, 0, LIMITS)
    assert result.passed and result.score == result.max_score == 12
    checks = sorted({r.check for r in result.rows})
    assert checks == [
        "dense_backward [scenario 1]", "dense_backward [scenario 2]", "dense_forward",
        "hinge_loss [scenario 1]", "hinge_loss [scenario 2]",
    ]  # fmt: skip
    # A bias gradient averaged instead of summed: 2 of dense_backward's 8 rows (3 values + inputs, twice) at 6/8.
    buggy = tmp_path / "student.py"
    buggy.write_text((NNLAB / "student.py").read_text().replace("dout.sum(0)", "dout.mean(0)"))
    result = grade_submission(buggy, spec, 0, LIMITS)
    assert result.score == pytest.approx(12 - 2 * 6 / 8)
    assert {(r.check, r.quantity, r.pattern) for r in result.rows if not r.passed} == {
        ("dense_backward [scenario 1]", "db", "bias_averaged"),
        ("dense_backward [scenario 2]", "db", "bias_averaged"),
    }
    # Computed in float32: within the course's rtol 1e-6, not within the default 1e-8.
    single = tmp_path / "single.py"
    in_single = "return (flat @ w + b).astype(np.float32).astype(float), (x, w)"
    single.write_text((NNLAB / "student.py").read_text().replace("return flat @ w + b, (x, w)", in_single))
    assert grade_submission(single, spec, 0, LIMITS).passed
    strict = tmp_path / "strict.toml"
    strict.write_text((NNLAB / "nnlab-hw2.toml").read_text().replace("rtol = 1e-6", "rtol = 1e-9"))
    assert not grade_submission(single, load(strict), 0, LIMITS).passed


def test_the_oracle_svm_loss_matches_a_loop_over_examples():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    loss, dx = 0.0, np.zeros_like(x)
    for n in range(5):
        for j in range(4):
            if j != y[n] and x[n, j] - x[n, y[n]] + 1 > 0:
                loss += x[n, j] - x[n, y[n]] + 1
                dx[n, j] += 1
                dx[n, y[n]] -= 1
    ref = svm_loss(x, y)
    assert float(ref["loss"]) == pytest.approx(loss / 5)
    np.testing.assert_allclose(ref["dx"], dx / 5)


def test_builtins_and_aliases():
    assert {"cs231n-a1", "dlai-c1w4", "layers-all"} <= set(builtin_names())
    assert resolve("layers").name == "layers-all" and resolve("deep").name == "deep-all"
    assert resolve("dlai-c1w4").grads_keys == "either"
    assert resolve("cs231n-a1").source == "built-in cs231n-a1"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("style", 'style = "layers"', 'style = "conv"'), f"style: expected one of {', '.join(INTERFACES)}, got 'co"),
        (("severity", 'inplace = "fail"', 'inplace = "maybe"'), "advisory.inplace: expected one of fail, warn, off"),
        (("role", 'role = "svm_loss"', 'role = "hinge"'), "functions.hinge_loss.role: expected a function of the"),
        (("points", "points = 6", "points = -6"), "functions.dense_backward.points: expected a positive number"),
        (
            ("scenarios", "scenarios = 2\n\n[functions.hinge", "scenarios = 0\n\n[functions.hinge"),
            "functions.dense_backward.scenarios: expected an integer from 1 to 20",
        ),
        (("unknown", "[tolerance]", "[tolerances]"), "tolerances: expected one of"),
        (("key in function", "points = 2", "pionts = 2"), "functions.dense_forward.pionts: expected one of"),
        (
            ("convention", "[tolerance]", '[conventions]\ngrads_keys = "either"\n[tolerance]'),
            'conventions.grads_keys: expected only with style = "deep"',
        ),
        (
            ("dropout convention", "[tolerance]", '[conventions]\ndropout_p = "drop"\n[tolerance]'),
            'conventions.dropout_p: expected only with style = "cnn"',
        ),
        (
            ("size1 convention", "[tolerance]", '[conventions]\nsize1_scalars = "numpy1"\n[tolerance]'),
            "conventions.size1_scalars: expected one of numpy, legacy, got 'numpy1'",
        ),
        (("toml", "[tolerance]", "[tolerance"), "expected valid TOML"),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else "",
)
def test_a_bad_assignment_file_is_one_line_naming_the_file_and_field(change, words, tmp_path, capsys):
    _, old, new = change
    text = (NNLAB / "nnlab-hw2.toml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: ") and words in str(caught.value)
    assert main(["check", str(NNLAB / "student.py"), "--assignment", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_an_unknown_assignment_names_the_built_ins(capsys):
    assert main(["check", str(CS231N), "--assignment", "cs231n-a9"]) == 2
    err = capsys.readouterr().err
    assert "--assignment: expected a built-in assignment (cs231n-a1, " in err and "layers-all" in err


def test_refbp_assignments_lists_every_built_in_with_its_functions(capsys):
    assert main(["assignments"]) == 0
    out = capsys.readouterr().out
    for name in builtin_names():
        assert f"\n{name} (style " in "\n" + out
    assert "  - svm_loss: 3 points" in out and "  - L_model_backward: 3 points" in out
    assert main(["assignments", str(NNLAB / "nnlab-hw2.toml")]) == 0
    assert "  - dense_backward (plays affine_backward): 6 points, 2 scenarios" in capsys.readouterr().out


def test_allowed_imports_lift_the_block_for_that_assignment_only(tmp_path):
    source = CS231N.read_text(encoding="utf-8").replace(
        "import numpy as np", "import numpy as np\nimport refbp.activations as reference", 1
    )
    path = tmp_path / "layers.py"
    path.write_text(source, encoding="utf-8")
    blocked = grade_submission(path, "cs231n-a1", 0, LIMITS)
    assert blocked.score == 0 and "importing refbp.activations is not allowed" in blocked.rows[0].message
    text = (Path(__file__).parents[1] / "grading" / "assignments" / "cs231n-a1.toml").read_text(encoding="utf-8")
    allowing = tmp_path / "allowing.toml"
    allowing.write_text(text.replace('style = "layers"', 'style = "layers"\nallow_imports = ["refbp"]'))
    assert main(["check", str(path), "--assignment", str(allowing)]) == 0
