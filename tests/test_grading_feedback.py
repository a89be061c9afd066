"""Feedback texts: scalars, missing keys, hints that add something, repeated errors once, counts, warnings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grading.checks import compare_value
from grading.grader import grade_submission
from grading.outputs import render_markdown, render_summary
from grading.plan import Expect, FunctionCheck, Hints
from grading.sandbox import Call, SandboxLimits
from refbp.cli import main

COURSES = Path(__file__).parent / "submissions" / "courses"
LIMITS = SandboxLimits(function_seconds=20.0, submission_seconds=120.0)
OLD_SOFTMAX_AND_KEEPDIMS_DB = (
    (COURSES / "cs231n_old_starter.py").read_text(encoding="utf-8")
    + """

def affine_backward(dout, cache):
    x, w, b = cache
    return dout.dot(w.T).reshape(x.shape), x.reshape(len(x), -1).T.dot(dout), dout.sum(axis=0)[:, None]
"""
)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    path = tmp_path_factory.mktemp("feedback") / "layers.py"
    path.write_text((COURSES / "cs231n_layers.py").read_text() + OLD_SOFTMAX_AND_KEEPDIMS_DB)
    return grade_submission(path, "cs231n-a1", 0, LIMITS)


def _check(quantity: str, expected: np.ndarray) -> tuple[FunctionCheck, Expect]:
    expect = Expect(quantity, 0, (), expected, Hints(batch=3))
    return FunctionCheck("f", "f", (Call("f", ()),), {}, (expect,)), expect


def test_a_scalar_that_is_infinite_is_described_without_an_empty_index(result):
    row = next(r for r in result.rows if r.check == "softmax_loss: large logits" and r.quantity == "loss")
    assert row.status == "warn"
    assert row.message.startswith("got inf, expected ") and "at []" not in row.message
    assert "(NaN or infinity)" in row.message


def test_an_infinite_entry_of_an_array_names_its_index():
    check, expect = _check("dx", np.ones((2, 3)))
    value = np.ones((2, 3))
    value[1, 2] = np.nan
    row = compare_value(check, expect, value)
    assert row.status == "nan" and row.message == "got nan at [1, 2], expected 1 (NaN or infinity)"


def test_a_hint_that_only_repeats_the_message_is_left_out_and_a_real_one_kept(result):
    check, expect = _check("db", np.arange(4.0).reshape(4, 1))
    row = compare_value(check, expect, np.arange(4.0) + 5)
    assert row.status == "shape" and row.message == "shape (4,), but should be (4, 1)"
    assert row.diagnosis == ""
    kept = next(r for r in result.rows if r.check == "affine_backward" and r.quantity == "db")
    assert kept.status == "shape" and "keepdims=True" in kept.diagnosis


def test_the_feedback_counts_checks_as_the_score_does_and_explains_warnings(result):
    text = render_markdown(result)
    failing_checks = {r.check for r in result.rows if not r.passed}
    checks = {r.check for r in result.rows}
    assert failing_checks == {"affine_backward"}
    assert result.score == 13 and result.max_score == 14  # db: one of affine_backward's three points
    assert f"Score: **13 / 14** — 1 of {len(checks)} checks fails, in `affine_backward` (1 warning" in text
    warning = text.split("## Warnings (no points lost)")[1].split("##")[0]
    assert 'advisory.large_inputs = "fail" in the assignment would make it a failure' in warning
    assert "underflows to 0" in warning and "sigmoid" not in warning


def test_the_summary_gives_the_first_failure_with_its_message(result):
    row = next(line for line in render_summary([result]).splitlines() if line.startswith("| layers.py"))
    assert "| 1 | 1 | affine_backward: db (shape): shape (6, 1), but should be (6,) |" in row.replace("\\|", "|")


def test_one_import_error_is_printed_once_with_its_count(tmp_path, capsys):
    path = tmp_path / "layers.py"
    path.write_text("import numpy as np\nraise RuntimeError('unfinished')\n")
    assert main(["check", str(path), "--assignment", "cs231n-a1"]) == 1
    lines = capsys.readouterr().out.splitlines()
    errors = [line for line in lines if "RuntimeError: unfinished" in line]
    assert len(errors) == 1
    checks = {r.check for r in grade_submission(path, "cs231n-a1", 0, LIMITS).rows}
    assert f"(and {len(checks) - 1} more checks alike)" in errors[0]
