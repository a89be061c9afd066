"""The output-path policy: every writing command refuses a bad path before any work, and never loses data."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from refbp.cli import main
from refbp.errors import InputError
from refbp.output_paths import distinct_outputs, output_file, output_folder, output_names, write_atomically

SUBMISSIONS = Path(__file__).parent / "submissions"
CORRECT = SUBMISSIONS / "layers" / "vectorised.py"
EXAMPLE = """
title = "one unit"
learning_rate = 0.5
[network]
inputs = 2
layers = [{ units = 1, activation = "sigmoid", bias = "shared" }]
loss = { kind = "half_sse", reduction = "sum" }
[parameters]
W1 = [[0.5], [-0.25]]
b1 = 0.1
[data]
x = [1, 2]
t = [1]
[claims]
loss = "0.1128"
"""


def _one_line_error(capsys, *words: str) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    for word in words:
        assert word in captured.err
    return captured.err


# ------------------------------------------------------------------ the policy, unit by unit


def test_a_new_file_in_a_new_folder_is_accepted_and_nothing_is_left_behind(tmp_path):
    path = output_file(tmp_path / "a" / "b" / "r.json", "--json")
    assert path.parent.is_dir() and not path.exists()
    assert os.listdir(path.parent) == []


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: tmp, ": expected a file path, not a folder"),
        (lambda tmp: Path("/dev/null"), "a character device"),
        (lambda tmp: (tmp / "f").write_text("x") and tmp / "f" / "r.json", "Not a directory"),
        (lambda tmp: tmp / ("x" * 300), "File name too long"),
        (lambda tmp: Path("/proc/refbp-nowhere/r.json"), "expected a path in a folder that can be created"),
    ],
)
def test_bad_output_files_are_refused(tmp_path, make, words):
    with pytest.raises(InputError) as err:
        output_file(make(tmp_path), "--json")
    assert words in str(err.value) and str(err.value).startswith("command line: --json ")


def test_a_fifo_and_a_symlink_are_refused_and_left_alone(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "target").write_text("keep")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    for path, kind in ((fifo, "a named pipe"), (tmp_path / "link", "a symbolic link")):
        with pytest.raises(InputError, match=kind):
            output_file(path, "--out")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and (tmp_path / "target").read_text() == "keep"


def test_an_input_is_never_an_output_whatever_its_spelling(tmp_path, monkeypatch):
    source = tmp_path / "v.py"
    source.write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    for spelling in ("v.py", "./v.py", "d/../v.py", str(source)):
        with pytest.raises(InputError, match="other than the command's inputs"):
            output_file(spelling, "--json", inputs=[source])
    os.link(source, tmp_path / "hard.py")
    with pytest.raises(InputError, match="other than the command's inputs"):
        output_file("hard.py", "--json", inputs=["v.py"])


def test_a_folder_output_refuses_a_file_and_checks_each_file_in_it(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"--out .*/file: expected a folder, got 'a file'"):
        output_folder(tmp_path / "file", "--out")
    (tmp_path / "out" / "sweep.json").mkdir(parents=True)
    with pytest.raises(InputError, match=r"sweep\.json: expected a file path, not a folder"):
        output_folder(tmp_path / "out", "--out", files=["sweep.csv", "sweep.json"])


def test_atomic_writes_never_rename_over_anything_but_a_regular_file(tmp_path):
    fifo = tmp_path / "r.json"
    os.mkfifo(fifo)
    (tmp_path / "ok.md").write_text("old")
    with pytest.raises(InputError, match="a named pipe"):
        write_atomically({tmp_path / "ok.md": "new", fifo: "{}"})
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert (tmp_path / "ok.md").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["ok.md", "r.json"]
    write_atomically({tmp_path / "ok.md": "new", tmp_path / ("n" * 250): b"bytes"})
    assert (tmp_path / "ok.md").read_text() == "new" and (tmp_path / ("n" * 250)).read_bytes() == b"bytes"


def test_two_outputs_on_one_path_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"--markdown: expected a path of its own \(it is also written by --json\)"):
        distinct_outputs([("--json", tmp_path / "a"), ("--markdown", tmp_path / "." / "a")])


def test_output_names_are_safe_distinct_and_avoid_the_reserved_ones():
    names = ["..", "summary.md", "a b", "a_b", ".bashrc", "", "x/y", "Summary.csv", "résumé", "a\nb"]
    assert output_names(names, reserved=["summary.md", "summary.csv"]) == [
        "submission",
        "summary.md-2",
        "a_b",
        "a_b-2",
        "bashrc",
        "submission-2",
        "x_y",
        "Summary.csv-2",
        "résumé",
        "a_b-3",
    ]


# ------------------------------------------------------------------ every command, before any work


@pytest.fixture
def example(tmp_path) -> Path:
    path = tmp_path / "x.toml"
    path.write_text(EXAMPLE)
    return path


def test_examples_json_dev_null_is_refused_and_dev_null_survives(example, tmp_path, capsys):
    before = os.stat("/dev/null")
    assert main(["examples", str(example), "--out", str(tmp_path / "r"), "--json", "/dev/null"]) == 2
    _one_line_error(capsys, "--json /dev/null: expected a regular file or a new name, got 'a character device'")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert not (tmp_path / "r" / "worked_examples.md").exists()


def test_examples_refuse_their_own_input_as_the_json_copy(example, tmp_path, capsys):
    text = example.read_text()
    assert main(["examples", str(example), "--out", str(tmp_path / "r"), "--json", str(example)]) == 2
    _one_line_error(capsys, "other than the command's inputs")
    assert example.read_text() == text


@pytest.mark.parametrize("command", [["sweep", "--cases", "1", "--quiet"], ["bench", "--smoke", "--quiet"]])
@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("{file}", "file: expected a folder, got 'a file'"),
        ("{file}/sub", "sub: expected a path in a folder that can be created, got 'Not a directory'"),
        ("/dev/null", "--out /dev/null: expected a folder, got 'a character device'"),
        ("{long}", "File name too long"),
    ],
)
def test_sweep_and_bench_refuse_a_bad_out_before_any_work(command, out, words, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("oracle.sweep.run_sweep", lambda *a, **k: pytest.fail("ran despite a bad --out"))
    monkeypatch.setattr("oracle.bench.run_benchmarks", lambda *a, **k: pytest.fail("ran despite a bad --out"))
    (tmp_path / "file").write_text("keep")
    out = out.replace("{file}", str(tmp_path / "file")).replace("{long}", str(tmp_path / ("d" * 300)))
    assert main([*command, "--out", out]) == 2
    _one_line_error(capsys, words)
    assert (tmp_path / "file").read_text() == "keep"


def test_sweep_refuses_a_report_name_taken_by_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("oracle.sweep.run_sweep", lambda *a, **k: pytest.fail("ran despite a bad --out"))
    (tmp_path / "sweep.html").mkdir()
    assert main(["sweep", "--cases", "1", "--out", str(tmp_path)]) == 2
    _one_line_error(capsys, "sweep.html: expected a file path, not a folder, got 'a folder'")


def test_check_json_on_the_submission_is_refused_and_the_submission_is_unchanged(tmp_path, capsys, monkeypatch):
    submission = tmp_path / "v.py"
    submission.write_text(CORRECT.read_text())
    monkeypatch.setattr("grading.grader.grade_submission", lambda *a, **k: pytest.fail("graded despite bad usage"))
    for option in ("--json", "--gradescope", "--junit", "--markdown"):
        assert main(["check", str(submission), "--interface", "layers", option, str(submission)]) == 2
        _one_line_error(capsys, f"{option} {submission}: expected a path other than the command's inputs")
    assert main(["check", str(submission), "--interface", "layers", "--json", "/dev/null"]) == 2
    _one_line_error(capsys, "a character device")
    assert submission.read_text() == CORRECT.read_text()


def test_grade_refuses_a_combined_output_on_a_submission(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "a.py").write_text(CORRECT.read_text())
    monkeypatch.setattr("grading.grader.grade_submission", lambda *a, **k: pytest.fail("graded despite bad usage"))
    argv = ["grade", str(folder), "--interface", "layers", "--out", str(tmp_path / "g")]
    assert main([*argv, "--json", str(folder / "a.py")]) == 2
    _one_line_error(capsys, "--json ", "expected a path other than the command's inputs")
    assert main([*argv, "--junit", str(tmp_path / "g" / "a" / "junit.xml")]) == 2
    _one_line_error(capsys, "--out: expected a path of its own (it is also written by --junit)")
    assert (folder / "a.py").read_text() == CORRECT.read_text()


def test_grade_names_hostile_submissions_safely(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("summary.md.py", "..py", "ok.py"):
        (folder / name).write_text(CORRECT.read_text())
    out = tmp_path / "g"
    assert main(["grade", str(folder), "--interface", "layers", "--out", str(out), "--quiet", "--jobs", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ok", "submission", "summary.csv", "summary.md", "summary.md-2"]
    assert (out / "summary.md").is_file() and (out / "summary.md-2" / "result.json").is_file()
    assert (out / "submission" / "feedback.md").read_text().count("..py") >= 1
    assert not (out / "result.json").exists()
    assert "3/3 submissions pass" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "--out", ""],
        ["bench", "--out", ""],
        ["examples", "--out", ""],
        ["examples", "--json", ""],
        ["check", "x.py", "--interface", "layers", "--json", ""],
        ["grade", ".", "--interface", "layers", "--out", ""],
        ["grade", ".", "--interface", "layers", "--json", ""],
    ],
)
def test_an_empty_output_path_is_refused_not_read_as_the_current_folder(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.py").write_text("x = 1\n")
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    assert code == 2
    _one_line_error(capsys, "expected a")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [tmp_path / "x.py"]
