"""Outputs and commands: JSON, Gradescope, JUnit, Markdown; stable regrades; exit codes; a folder of 50."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from refbp.cli import main

SUBMISSIONS = Path(__file__).parent / "submissions"
CORRECT = SUBMISSIONS / "layers" / "vectorised.py"


@pytest.fixture
def buggy(tmp_path) -> Path:
    """The vectorised layers solution with a sigmoid derivative missing its (1 − s)."""
    path = tmp_path / "student.py"
    path.write_text(CORRECT.read_text().replace("dout * cache * (1 - cache)", "dout * cache"))
    return path


def _check(path: Path, out: Path, *extra: str) -> int:
    out.mkdir(parents=True, exist_ok=True)
    return main(
        [
            "check",
            str(path),
            "--interface",
            "layers",
            "--json",
            str(out / "r.json"),
            "--gradescope",
            str(out / "results.json"),
            "--junit",
            str(out / "junit.xml"),
            "--markdown",
            str(out / "feedback.md"),
            *extra,
        ]
    )


def test_a_failing_submission_exits_1_and_every_output_says_why(buggy, tmp_path, capsys):
    assert _check(buggy, tmp_path / "out") == 1
    printed = capsys.readouterr().out
    assert printed.startswith("FAIL: student.py: 27/28")
    assert "missing (1 − s)" in printed

    data = json.loads((tmp_path / "out" / "r.json").read_text())
    assert data["passed"] is False and data["score"] == 27.0 and data["max_score"] == 28.0
    failing = [c for c in data["checks"] if c["status"] != "ok"]
    assert [(c["target"], c["quantity"]) for c in failing] == [("sigmoid_backward", "dx")]
    row = failing[0]
    assert set(row) >= {"target", "quantity", "status", "max_abs_err", "max_rel_err", "diagnosis", "message"}
    assert row["status"] == "mismatch" and row["max_rel_err"] > 0.1 and "(1 − s)" in row["diagnosis"]

    gradescope = json.loads((tmp_path / "out" / "results.json").read_text())
    assert gradescope["score"] == 27.0
    assert sum(t["score"] for t in gradescope["tests"]) == 27.0
    assert sum(t["max_score"] for t in gradescope["tests"]) == 28.0
    failed = [t for t in gradescope["tests"] if t["status"] == "failed"]
    assert [t["name"] for t in failed] == ["sigmoid_backward"]
    assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(failed[0])

    suite = ET.parse(tmp_path / "out" / "junit.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 28 and suite.get("failures") == "1" and suite.get("errors") == "0"
    failures = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["sigmoid_backward: dx"]

    feedback = (tmp_path / "out" / "feedback.md").read_text()
    assert "Score: **27 / 28**" in feedback and "## What to fix" in feedback and "Hint: missing (1 − s)" in feedback


def test_regrading_gives_byte_identical_outputs(buggy, tmp_path):
    _check(buggy, tmp_path / "a", "--seed", "5")
    _check(buggy, tmp_path / "b", "--seed", "5")
    for name in ("r.json", "results.json", "junit.xml", "feedback.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_another_seed_gives_other_numbers(buggy, tmp_path):
    _check(buggy, tmp_path / "a", "--seed", "1")
    _check(buggy, tmp_path / "b", "--seed", "2")
    a = json.loads((tmp_path / "a" / "r.json").read_text())["checks"]
    b = json.loads((tmp_path / "b" / "r.json").read_text())["checks"]
    assert [c["max_abs_err"] for c in a] != [c["max_abs_err"] for c in b]


def test_a_passing_submission_exits_0(tmp_path, capsys):
    assert main(["check", str(CORRECT), "--interface", "layers"]) == 0
    assert capsys.readouterr().out.strip() == "PASS: vectorised.py: 28/28 (layers-all, seed 0, isolation namespaces)"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["check", "no_such_file.py", "--interface", "layers"], "submission: expected an existing .py or .ipynb file"),
        (["check", str(CORRECT), "--interface", "unknown"], "invalid choice"),
        (["check", str(CORRECT)], "--interface"),
        (["check", str(CORRECT), "--interface", "deep", "--timeout", "0"], "positive number of seconds"),
        (["grade", "no_such_folder", "--interface", "deep"], "folder: expected an existing folder"),
    ],
)
def test_bad_usage_exits_2_with_one_line(argv, words, capsys):
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_grading_an_empty_folder_is_bad_usage(tmp_path, capsys):
    assert main(["grade", str(tmp_path), "--interface", "layers"]) == 2
    assert "at least one .py or .ipynb submission" in capsys.readouterr().err


def _refbp() -> list[str]:
    """The installed ``refbp`` command (the console script next to this Python), else ``python -m refbp``."""
    script = Path(sys.executable).with_name("refbp")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "refbp"]


#: The kinds of submission in the folder of fifty: (file text, passes, first failure, words of the hint).
def _class_kinds() -> dict[str, tuple[str, bool, str, str]]:
    text = CORRECT.read_text()
    loops = (SUBMISSIONS / "layers" / "loops.py").read_text()
    return {
        "ok": (text, True, "", ""),
        "loops": (loops, True, "", ""),
        "sign": (
            text.replace("dx = (dout @ w.T).reshape(x.shape)", "dx = -(dout @ w.T).reshape(x.shape)"),
            False,
            "affine_backward: dx (mismatch)",
            "sign flipped",
        ),
        "mean": (
            text.replace("db = dout.sum(axis=0)", "db = dout.mean(axis=0)"),
            False,
            "affine_backward: db (mismatch)",
            "averaged over the",
        ),
        "import": ("raise SystemExit(1)\n", False, "affine_forward: out (error)", ""),
        "relu": (
            text.replace("return dout * (cache > 0)", "return dout"),
            False,
            "relu_backward: dx (mismatch)",
            "passed through unchanged",
        ),
        "no_softmax": (text[: text.index("def softmax_loss")], False, "softmax_loss: loss (missing)", ""),
        "raises": (
            text.replace("out = np.tanh(x)", "out = np.tanh(x) @ np.ones((1, 1))"),
            False,
            "tanh_forward: out (error)",
            "",
        ),
        "sigmoid": (
            text.replace("return dout * cache * (1 - cache)", "return dout * cache"),
            False,
            "sigmoid_backward: dx (mismatch)",
            "missing (1 − s)",
        ),
        "unstable": (
            text.replace("out = 1 / (1 + np.exp(-x))", "out = np.exp(x) / (1 + np.exp(x))"),
            False,
            "sigmoid_forward: large inputs: out (nan)",
            "exp overflows",
        ),
    }


def test_refbp_grade_on_a_folder_of_fifty_writes_every_output_and_the_summary(tmp_path):
    """The real command in a subprocess: 50 submissions of 10 kinds, 2 at a time, with every output option."""
    kinds = _class_kinds()
    names = list(kinds)
    folder = tmp_path / "class"
    folder.mkdir()
    assert len({text for text, *_ in kinds.values()}) == len(kinds)  # every bug was put in
    for i in range(50):
        (folder / f"student{i:02d}.py").write_text(kinds[names[i % len(names)]][0])
    out = tmp_path / "grades"
    argv = ["grade", str(folder), "--interface", "layers", "--seed", "3", "--jobs", "2", "--out", str(out)]
    argv += ["--json", str(tmp_path / "all.json"), "--junit", str(tmp_path / "all.xml")]
    argv += ["--markdown", str(tmp_path / "all.md"), "--gradescope", str(tmp_path / "gs" / "{name}.json")]
    done = subprocess.run([*_refbp(), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == 51
    assert sorted(line.split(":")[1].strip() for line in lines[:50]) == [f"student{i:02d}.py" for i in range(50)]
    assert sum(line.startswith("PASS: ") for line in lines[:50]) == 10
    assert lines[50] == f"10/50 submissions pass every check; summary: {out / 'summary.md'}, {out / 'summary.csv'}"

    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["submission"] for r in rows] == [f"student{i:02d}.py" for i in range(50)]
    for i, row in enumerate(rows):
        _, passes, first, words = kinds[names[i % len(names)]]
        assert row["passed"] == str(passes), row
        assert row["first_failure"].startswith(first), row  # followed by the message
        assert words in row["hint"], row
        assert (row["score"] == "28.0") == passes and row["max_score"] == "28.0"
    assert rows[names.index("import")]["score"] == "0.0"
    assert rows[names.index("no_softmax")]["score"] == "22.0"  # softmax_loss: 2 checks of 3 rows each

    summary = (out / "summary.md").read_text()
    assert "50 submissions, 10 pass every check (assignment `layers-all`, seed 3; isolation namespaces)." in summary
    table = [line for line in summary.splitlines() if line.startswith("| student")]
    assert len(table) == 50
    assert table[0] == "| student00.py | 28/28 | yes | 0 | 0 |  |  |"
    assert table[2].startswith("| student02.py | 27/28 | no | 1 | 0 | affine_backward: dx (mismatch): worst entry ")
    hint = "sign flipped: (target − prediction) instead of (prediction − target), or + where − belongs"
    assert table[2].endswith(f"| {hint} |")

    for i in range(50):
        stem = f"student{i:02d}"
        assert sorted(p.name for p in (out / stem).iterdir()) == [
            "feedback.md",
            "junit.xml",
            "result.json",
            "results.json",
        ]
        assert (tmp_path / "gs" / f"{stem}.json").read_bytes() == (out / stem / "results.json").read_bytes()
    combined = json.loads((tmp_path / "all.json").read_text())
    assert (combined["submissions"], combined["passed"], len(combined["results"])) == (50, 10, 50)
    assert combined["results"][2] == json.loads((out / "student02" / "result.json").read_text())
    suites = ET.parse(tmp_path / "all.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == [f"student{i:02d}.py" for i in range(50)]
    assert [s.get("failures") for s in suites[:3]] == ["0", "0", "1"]
    report = (tmp_path / "all.md").read_text()
    assert report.startswith(summary)
    assert report.count("\n## Feedback for student") == 50


def test_grade_exits_0_when_every_submission_passes(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("a.py", "b.py"):
        (folder / name).write_text(CORRECT.read_text())
    assert main(["grade", str(folder), "--interface", "layers", "--out", str(tmp_path / "g"), "--quiet"]) == 0


def test_regrading_a_folder_gives_byte_identical_files(tmp_path):
    kinds = _class_kinds()
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("ok", "sign", "import", "no_softmax"):
        (folder / f"{name}.py").write_text(kinds[name][0])
    trees = []
    for run in ("a", "b"):
        out = tmp_path / run
        argv = ["grade", str(folder), "--interface", "layers", "--seed", "4", "--quiet"]
        argv += ["--out", str(out / "grades"), "--json", str(out / "all.json"), "--junit", str(out / "all.xml")]
        argv += ["--markdown", str(out / "md" / "{name}.md"), "--gradescope", str(out / "gs" / "{name}.json")]
        assert main(argv) == 1
        trees.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert len(trees[0]) == 4 * 4 + 2 + 2 + 4 + 4
    assert trees[0] == trees[1]


GRADESCOPE_TOP = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format"}
GRADESCOPE_TOP |= {"visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
GRADESCOPE_TEST = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format"}
GRADESCOPE_TEST |= {"tags", "visibility", "extra_data"}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def test_gradescope_results_use_only_the_fields_of_the_autograder_specification(buggy, tmp_path):
    _check(buggy, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(data) <= GRADESCOPE_TOP and {"score", "tests", "output"} <= set(data)
    assert data["visibility"] in VISIBILITY and data["stdout_visibility"] in VISIBILITY
    assert isinstance(data["score"], float)
    for test in data["tests"]:
        assert set(test) <= GRADESCOPE_TEST and {"name", "score", "max_score", "status", "output"} <= set(test)
        assert test["status"] in ("passed", "failed") and test["visibility"] in VISIBILITY
        assert (test["status"] == "passed") == (test["score"] == test["max_score"])
        assert isinstance(test["score"], float) and isinstance(test["number"], str)
    assert [t["number"] for t in data["tests"]] == [str(i) for i in range(1, len(data["tests"]) + 1)]
    assert sum(t["score"] for t in data["tests"]) == data["score"] == 27.0
    sigmoid = next(t for t in data["tests"] if t["name"] == "sigmoid_backward")
    assert (
        sigmoid["output"].startswith("dx: mismatch; max rel err ") and "\n  hint: missing (1 − s)" in sigmoid["output"]
    )


def test_markdown_feedback_puts_what_to_fix_first_with_one_hint_per_run(buggy, tmp_path):
    _check(buggy, tmp_path / "out")
    text = (tmp_path / "out" / "feedback.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "# Feedback for student.py"
    assert lines[2] == "Score: **27 / 28** — 1 of 12 checks fails, in `sigmoid_backward`."
    assert text.index("## What to fix") < text.index("## Points by function") < text.index("## Every check")
    fix = text[text.index("## What to fix") : text.index("## Points by function")]
    assert fix.count("\n- ") == 1 and "### sigmoid_backward\n\n- `dx`: wrong values (relative error up to " in fix
    assert "  - Hint: missing (1 − s) in the sigmoid derivative: σ'(z) = s·(1 − s), not s.\n" in fix
    assert "| sigmoid_backward | 1/2 | fail: wrong values |" in lines
    assert "| affine_backward | 4/4 | pass |" in lines
    assert sum(1 for line in lines if line.startswith("| ") and line.endswith("/1 |")) == 28


def test_markdown_feedback_says_each_missing_function_once_and_explains_mutation(tmp_path):
    path = tmp_path / "partial.py"
    path.write_text(
        "import numpy as np\n\n\n"
        "def relu_forward(x):\n    return np.maximum(0, x), x\n\n\n"
        "def relu_backward(dout, cache):\n    dout[cache <= 0] = 0\n    return dout\n"
    )
    assert main(["check", str(path), "--interface", "layers", "--markdown", str(tmp_path / "f.md")]) == 1
    text = (tmp_path / "f.md").read_text()
    fix = text[text.index("## What to fix") : text.index("## Points by function")]
    for name in ("affine_forward", "affine_backward", "sigmoid_forward", "tanh_forward", "softmax_loss"):
        assert fix.count(f"- {name} is not defined.") == 1, name
    assert "### relu_backward\n\n- It changed its argument `dout` in place.\n" in fix
    assert "  - Hint: work on a copy (dout.copy() or np.array(dout, copy=True))" in fix
    assert "### relu_forward" not in fix


def test_markdown_feedback_of_a_file_that_cannot_be_imported_says_so_once(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\n\nraise SystemExit(3)\n")
    assert main(["check", str(path), "--interface", "deep", "--markdown", str(tmp_path / "f.md")]) == 1
    text = (tmp_path / "f.md").read_text()
    fix = text[text.index("## What to fix") : text.index("## Points by function")]
    assert (
        fix
        == "## What to fix\n\n- The submission could not be imported: SystemExit: 3 (line 3: raise SystemExit(3)).\n\n"
    )


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["check", "{sub}", "--interface", "layers", "--json", "{tmp}"], "not a folder, got 'a folder'"),
        (["check", "{sub}", "--interface", "layers", "--junit", "{sub}/x.xml"], "x.xml: expected a path in a folder"),
        (
            ["check", "{sub}", "--interface", "layers", "--json", "{tmp}/a", "--markdown", "{tmp}/a"],
            "--markdown: expected a path of its own (it is also written by --json)",
        ),
        (["grade", "{tmp}", "--interface", "layers", "--out", "{sub}/g"], "py/g: expected a path in a folder"),
        (
            ["grade", "{tmp}", "--interface", "layers", "--gradescope", "{tmp}/results.json"],
            "--gradescope: expected a path with {name} in it",
        ),
        (["grade", "{tmp}", "--interface", "layers", "--markdown", "{sub}/{name}.md"], "expected a path in a folder"),
    ],
)
def test_unwritable_outputs_are_bad_usage_before_any_grading(argv, words, tmp_path, capsys, monkeypatch):
    submission = tmp_path / "student.py"
    submission.write_text(CORRECT.read_text())
    monkeypatch.setattr("grading.grader.grade_submission", lambda *a, **k: pytest.fail("graded despite bad usage"))
    args = [a.replace("{sub}", str(submission)).replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_bad_usage_from_the_installed_command_is_one_line_and_exit_2(tmp_path):
    for argv, words in (
        (["check", "missing.py", "--interface", "layers"], "refbp: error: command line: submission: expected an"),
        (["check", str(CORRECT), "--interface", "nope"], "refbp check: error: argument --interface: invalid choice"),
    ):
        done = subprocess.run([*_refbp(), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.count("\n") == 1 and done.stderr.startswith(words)
