"""Notebooks and course files as students hand them in: magics, plots, data loading, missing modules, helpers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from grading.grader import grade_submission, submissions_in
from grading.sandbox import SandboxLimits
from grading.submission_source import prepare
from refbp.cli import main

COURSES = Path(__file__).parent / "submissions" / "courses"
NOTEBOOK = COURSES / "Building_your_Deep_Neural_Network_Step_by_Step.ipynb"
OLD_PY = COURSES / "dnn_step_by_step_2017.py"
HELPERS = COURSES / "dnn_utils_v2.py"
LIMITS = SandboxLimits(function_seconds=20.0, submission_seconds=120.0)


def _cell_and_line(text: str) -> tuple[int, int]:
    """Where ``text`` is in the notebook: (cell number counting every cell from 1, line in the cell)."""
    for number, cell in enumerate(nbformat.read(str(NOTEBOOK), as_version=4).cells, start=1):
        for line_number, line in enumerate(cell.source.split("\n"), start=1):
            if text in line and cell.cell_type == "code":
                return number, line_number
    raise AssertionError(text)


def test_a_correct_notebook_importing_course_helpers_passes_with_support():
    result = grade_submission(NOTEBOOK, "dlai-c1w4", 0, LIMITS, support=[HELPERS])
    assert [(r.check, r.quantity, r.status, r.message) for r in result.rows if r.status != "ok"] == []
    assert result.passed and result.score == result.max_score == 14
    notes = "\n".join(result.notes)
    assert "dropped %matplotlib, %load_ext, %autoreload" in notes
    magic_cells = sorted({_cell_and_line("%matplotlib")[0], _cell_and_line("!pip")[0], _cell_and_line("%%time")[0]})
    assert f"(cells {', '.join(map(str, magic_cells))})" in notes
    print_cell = _cell_and_line('print "cost after')[0]
    assert f"cell {print_cell} is not valid Python" in notes
    for module in ("h5py", "matplotlib", "testCases_v4a"):
        assert f"module {module} is not installed here" in notes
    assert "dnn_utils_v2" not in notes  # supplied, so it is importable
    assert "grads['dA' + str(l)] (dA0 … dA3)" in notes


def test_without_the_helpers_the_functions_that_need_them_fail_with_the_cell_and_line():
    result = grade_submission(NOTEBOOK, "dlai-c1w4", 0, LIMITS)
    assert any("module dnn_utils_v2 is not installed here" in note for note in result.notes)
    cell, line = _cell_and_line("A, activation_cache = relu(Z)")
    row = next(r for r in result.rows if r.check == "linear_activation_forward (relu)")
    assert row.status == "error"
    assert row.message == (
        f"raised NameError: name 'relu' is not defined (cell {cell}, line {line}: A, activation_cache = relu(Z))"
    )
    assert all(r.passed for r in result.rows if r.target in ("linear_forward", "linear_backward", "compute_cost"))


def test_load_all_runs_the_data_loading_cell_and_reports_its_cell():
    result = grade_submission(NOTEBOOK, "dlai-c1w4", 0, LIMITS, support=[HELPERS], load="all")
    cell, line = _cell_and_line("plt.rcParams['figure.figsize']")
    assert not result.passed and result.score == 0
    message = result.rows[0].message
    assert message.startswith("the submission could not be imported: NameError: name 'plt' is not defined")
    assert f"(cell {cell}, line {line}: plt.rcParams" in message


def test_the_2017_course_file_in_the_dA_l_plus_1_convention_passes_dlai_and_says_so():
    result = grade_submission(OLD_PY, "dlai-c1w4", 0, LIMITS, support=[HELPERS], load="defs")
    assert result.passed and result.score == result.max_score == 14
    assert any("grads['dA' + str(l + 1)] (dA1 … dA4" in note for note in result.notes)
    assert any("did not run; --load all runs them" in note and "lines 7, 8, 9, 11" in note for note in result.notes)


def test_the_strict_deep_style_rejects_the_shifted_keys_with_the_layer_hint():
    result = grade_submission(OLD_PY, "deep", 0, LIMITS, support=[HELPERS], load="defs")
    failing = {(r.target, r.quantity, r.status) for r in result.rows if not r.passed}
    assert ("L_model_backward", "grads['dA0']", "key") in failing
    assert {target for target, _, _ in failing} == {"L_model_backward"}  # the helpers' functions count, and pass
    row = next(r for r in result.rows if r.quantity == "grads['dA0']")
    assert row.message == "missing key: L_model_backward returned a dict without 'dA0'"


def test_load_all_on_the_course_file_stops_at_its_first_plot_setting_with_the_line():
    result = grade_submission(OLD_PY, "dlai-c1w4", 0, LIMITS, support=[HELPERS])
    line = next(i for i, text in enumerate(OLD_PY.read_text().splitlines(), start=1) if text.startswith("plt."))
    assert result.rows[0].message == (
        "the submission could not be imported: NameError: name 'plt' is not defined "
        f"(line {line}: plt.rcParams['figure.figsize'] = (5.0, 4.0)  # set default size of plots)"
    )
    assert result.score == 0 and len({r.message for r in result.rows}) == 1


def test_the_filter_keeps_definitions_and_literals_and_line_numbers(tmp_path):
    path = tmp_path / "sub.py"
    path.write_text(
        "import numpy as np, h5py\n"
        "EPS = 1e-8\n"
        "SIZES = [3, 4]\n"
        "scale = np.sqrt(2)\n"
        "def f(x):\n"
        "    return x + EPS\n"
        "f(1)\n"
    )
    prepared = prepare(path, "defs")
    assert prepared.text.split("\n") == [
        "import numpy as np", "EPS = 1e-8", "SIZES = [3, 4]", "", "def f(x):", "    return x + EPS", "", "",
    ]  # fmt: skip
    assert any("module h5py is not installed here" in note for note in prepared.notes)
    assert any("2 other top-level statements (lines 4, 7)" in note for note in prepared.notes)
    everything = prepare(path, "all")
    assert everything.text.split("\n")[3] == "scale = np.sqrt(2)"


def test_a_magic_inside_a_block_keeps_the_block_valid(tmp_path):
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("def f(x):\n    %time y = x\n    return x * 2\n!ls\n")]
    )
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, str(path))
    prepared = prepare(path)
    assert prepared.text.split("\n")[:3] == ["def f(x):", "    pass", "    return x * 2"]
    namespace: dict = {}
    exec(prepared.text, namespace)
    assert namespace["f"](3) == 6


def test_a_file_that_is_no_notebook_is_one_clear_failure(tmp_path, capsys):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [', encoding="utf-8")
    result = grade_submission(path, "cs231n-a1", 0, LIMITS)
    assert result.score == 0 and {r.status for r in result.rows} == {"error"}
    assert "broken.ipynb: expected a Jupyter notebook that nbformat can read" in result.rows[0].message
    assert main(["check", str(path), "--assignment", "cs231n-a1"]) == 1
    out = capsys.readouterr().out
    assert out.count("nbformat can read") == 1 and "more checks alike" in out


def test_grade_takes_notebooks_python_files_and_one_folder_per_student(tmp_path):
    folder = tmp_path / "submissions"
    (folder / "alice").mkdir(parents=True)
    (folder / "bob").mkdir()
    shutil.copy(NOTEBOOK, folder / "alice" / "step_by_step.ipynb")
    shutil.copy(HELPERS, folder / "alice" / "dnn_utils_v2.py")  # she uploaded the helper too
    buggy = OLD_PY.read_text().replace("db = 1. / m * np.sum(dZ, axis=1, keepdims=True)", "db = np.sum(dZ, axis=1)")
    (folder / "bob" / "dnn.py").write_text(buggy)
    shutil.copy(NOTEBOOK, folder / "carol.ipynb")
    found = submissions_in(folder, "dlai-c1w4")
    assert [(s.label, s.path.name) for s in found] == [
        ("carol", "carol.ipynb"), ("alice", "step_by_step.ipynb"), ("bob", "dnn.py"),
    ]  # fmt: skip
    out = tmp_path / "grades"
    code = main(
        ["grade", str(folder), "--assignment", "dlai-c1w4", "--support", str(HELPERS), "--load", "defs",
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 1
    results = {name: json.loads((out / name / "result.json").read_text()) for name in ("alice", "bob", "carol")}
    assert results["alice"]["passed"] and results["carol"]["passed"]
    assert results["alice"]["submission"] == "alice/step_by_step.ipynb"
    assert results["bob"]["score"] < results["bob"]["max_score"] == 14
    summary = (out / "summary.md").read_text()
    bob = next(line for line in summary.splitlines() if line.startswith("| bob/dnn.py"))
    line = next(i for i, text in enumerate(buggy.splitlines(), start=1) if "assert (db.shape == b.shape)" in text)
    # The course's own assert catches the bug; the first failure carries its message.
    assert f"linear_backward: dA_prev (error): raised AssertionError (line {line}: assert (db.shape == b.shape))" in bob


@pytest.mark.parametrize("convention", ["dA{l}", "dA{l+1}"])
def test_a_strict_convention_names_what_it_expected(convention, tmp_path):
    text = (Path(__file__).parents[1] / "grading" / "assignments" / "dlai-c1w4.toml").read_text()
    path = tmp_path / "strict.toml"
    path.write_text(text.replace('grads_keys = "either"', f'grads_keys = "{convention}"'))
    from grading.assignment import load

    new, old = (NOTEBOOK, OLD_PY) if convention == "dA{l}" else (OLD_PY, NOTEBOOK)
    assert grade_submission(new, load(path), 0, LIMITS, support=[HELPERS], load="defs").passed
    wrong = grade_submission(old, load(path), 0, LIMITS, support=[HELPERS], load="defs")
    assert not wrong.passed
    assert any(f"this assignment expects grads['{convention}']" in note for note in wrong.notes)


def test_a_support_folder_and_clashing_names_in_a_folder(tmp_path, capsys):
    helpers = tmp_path / "course"
    helpers.mkdir()
    shutil.copy(HELPERS, helpers / "dnn_utils_v2.py")
    assert main(["check", str(NOTEBOOK), "--assignment", "dlai-c1w4", "--support", str(helpers)]) == 0
    assert "PASS: " in capsys.readouterr().out
    folder = tmp_path / "submissions"
    (folder / "hw").mkdir(parents=True)
    shutil.copy(NOTEBOOK, folder / "hw.ipynb")
    shutil.copy(OLD_PY, folder / "hw.py")
    shutil.copy(OLD_PY, folder / "hw" / "dnn.py")
    labels = [s.label for s in submissions_in(folder, "dlai-c1w4")]
    assert labels == ["hw_ipynb", "hw_py", "hw"]


def test_a_missing_support_path_is_refused_before_grading(tmp_path, capsys):
    missing = tmp_path / "nowhere.py"
    assert main(["check", str(NOTEBOOK), "--assignment", "dlai-c1w4", "--support", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refbp: error: command line: --support: expected an existing file or folder, got '")
    assert len(err.strip().splitlines()) == 1
