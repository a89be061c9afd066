"""Outputs and commands: JSON, Gradescope, JUnit, Markdown; stable regrades; exit codes; a folder of 50."""

from __future__ import annotations

import csv
import json
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
    assert capsys.readouterr().out.strip() == "PASS: vectorised.py: 28/28 (layers, seed 0)"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["check", "no_such_file.py", "--interface", "layers"], "submission: expected an existing .py file"),
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
    assert "at least one .py submission" in capsys.readouterr().err


def test_grade_finishes_a_folder_of_fifty_and_writes_the_summary(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    text = CORRECT.read_text()
    variants = {
        "ok": text,
        "sign": text.replace("dx = (dout @ w.T).reshape(x.shape)", "dx = -(dout @ w.T).reshape(x.shape)"),
        "mean": text.replace("db = dout.sum(axis=0)", "db = dout.mean(axis=0)"),
        "import": "raise SystemExit(1)\n",
        "relu": text.replace("return dout * (cache > 0)", "return dout"),
    }
    kinds = list(variants)
    for i in range(50):
        (folder / f"student{i:02d}.py").write_text(variants[kinds[i % len(kinds)]])
    out = tmp_path / "grades"
    code = main(["grade", str(folder), "--interface", "layers", "--jobs", "2", "--out", str(out), "--quiet"])
    assert code == 1
    assert "10/50 submissions pass every check" in capsys.readouterr().out
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["submission"] for r in rows] == [f"student{i:02d}.py" for i in range(50)]
    by_kind = {kinds[i % len(kinds)]: rows[i] for i in range(50)}
    assert by_kind["ok"]["passed"] == "True" and by_kind["ok"]["score"] == "28.0"
    assert by_kind["sign"]["first_failure"] == "affine_backward: dx (mismatch)"
    assert "sign flipped" in by_kind["sign"]["hint"]
    assert "averaged" in by_kind["mean"]["hint"]
    assert by_kind["import"]["score"] == "0.0"
    assert "passed through unchanged" in by_kind["relu"]["hint"]
    summary = (out / "summary.md").read_text()
    assert summary.count("| student") == 50
    for i in (0, 49):
        folder_out = out / f"student{i:02d}"
        names = sorted(p.name for p in folder_out.iterdir())
        assert names == ["feedback.md", "junit.xml", "result.json", "results.json"]


def test_grade_exits_0_when_every_submission_passes(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("a.py", "b.py"):
        (folder / name).write_text(CORRECT.read_text())
    assert main(["grade", str(folder), "--interface", "layers", "--out", str(tmp_path / "g"), "--quiet"]) == 0
