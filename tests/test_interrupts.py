"""Ctrl-C (a real SIGINT to a real process): one line, exit 130, a partial report marked interrupted, no traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REFBP = Path(sys.executable).with_name("refbp")
ROOT = Path(__file__).resolve().parents[1]
# This checkout's code, whatever the environment's refbp was installed from.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# An implementation that drops a marker file on its N-th call, so that the test knows the
# sweep has reached a given point (the generate phase, or shrinking), and waits there for Ctrl-C.
IMPL = """
import os
import time
from refbp import backprop

calls = [0]


def impl(spec, params, X, T):
    calls[0] += 1
    if calls[0] == int(os.environ["MARK_AT"]):
        open(os.environ["MARK"], "w").close()
        time.sleep(60)  # Ctrl-C comes here
    trace, grads = backprop(spec, params, X, T)
    if os.environ.get("BUGGY"):
        return {"W1": 2 * grads.layers[0].grad_W}
    return trace, grads
"""


def _interrupt_when_marked(tmp_path: Path, argv: list[str], mark_at: int, buggy: bool) -> subprocess.CompletedProcess:
    module = tmp_path / "marked.py"
    module.write_text(IMPL)
    mark = tmp_path / "mark"
    env = {**ENV, "MARK": str(mark), "MARK_AT": str(mark_at), "BUGGY": "1" if buggy else ""}
    argv = [*argv, "--impl", f"{module}:impl", "--out", str(tmp_path / "r"), "--quiet"]
    return _interrupt_when(mark, argv, cwd=tmp_path, env=env)


def _interrupt_when(marker: Path, argv: list[str], *, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Run ``refbp argv``, press Ctrl-C once ``marker`` exists, and wait for the end."""
    process = subprocess.Popen(
        [str(REFBP), *argv], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), f"{marker.name} never appeared"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_ctrl_c_during_the_sweep_writes_the_partial_report(tmp_path):
    done = _interrupt_when_marked(tmp_path, ["sweep", "--cases", "100000", "--fd", "off"], 5, buggy=False)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("refbp: interrupted after ")
    assert done.stdout == ""
    summary = json.loads((tmp_path / "r" / "sweep.json").read_text())
    assert summary["meta"]["interrupted"] is True and summary["meta"]["cases"] >= 4
    assert f"{summary['meta']['cases']} of 100000 cases" in done.stderr
    report = (tmp_path / "r" / "sweep.md").read_text()
    assert "(interrupted: yes; only the cases checked before Ctrl-C)" in report and "interrupted: `yes`" in report


def test_ctrl_c_while_shrinking_keeps_every_checked_case(tmp_path):
    # Three cases are generated (three calls), then shrinking calls the implementation again.
    done = _interrupt_when_marked(tmp_path, ["sweep", "--cases", "3", "--fd", "off"], 5, buggy=True)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "interrupted after 3 of 3 cases" in done.stderr
    summary = json.loads((tmp_path / "r" / "sweep.json").read_text())
    assert summary["meta"]["interrupted"] is True and summary["verdict"] == "fail"
    assert {"c0001", "c0002", "c0003"} <= {row["case"] for row in summary["failing_rows"]}


def test_ctrl_c_in_the_first_moments_is_one_line_and_exit_130(tmp_path):
    # Ctrl-C as soon as the command has made its output folder, before it has checked anything.
    for command in ("sweep", "examples"):
        out = tmp_path / command
        argv = ["-m", "refbp", command, "--out", str(out)]
        process = subprocess.Popen(
            [sys.executable, *argv], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 120
        while not out.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        stdout, err = process.communicate(timeout=120)
        # 130, or killed by SIGINT itself when Ctrl-C lands as Python shuts down (a shell shows 130 for both).
        assert process.returncode in (130, -signal.SIGINT) and (err, stdout) == ("refbp: interrupted\n", ""), err
        assert list(out.iterdir()) == []


def test_ctrl_c_before_the_command_line_is_read_ends_the_run(capsys):
    from refbp.cli import main

    # What refbp.entry_point passes on when Ctrl-C came while the modules were being imported.
    assert main(["sweep", "--cases", "1"], early_interrupts=[signal.SIGINT]) == 130
    assert capsys.readouterr() == ("", "refbp: interrupted\n")


def test_ctrl_c_while_grading_a_folder_writes_the_summary_of_what_was_graded(tmp_path):
    correct = (Path(__file__).parent / "submissions" / "layers" / "vectorised.py").read_text()
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "a_first.py").write_text(correct)
    # Sleeps in the sandbox long enough for Ctrl-C to arrive while it is being graded.
    (folder / "b_slow.py").write_text("import time\ntime.sleep(3)\n" + correct)
    (folder / "c_never.py").write_text(correct)
    out = tmp_path / "grades"
    argv = ["grade", str(folder), "--interface", "layers", "--jobs", "1", "--out", str(out), "--quiet"]
    done = _interrupt_when(out / "a_first" / "result.json", argv, cwd=tmp_path, env=ENV)
    err = done.stderr
    assert done.returncode == 130 and "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("refbp: interrupted after ") and " of 3 submissions" in err
    summary = (out / "summary.csv").read_text()
    assert "a_first.py" in summary and "c_never.py" not in summary
    marker = r"^interrupted: yes — [12] of 3 submissions graded\.$"
    assert re.search(marker, (out / "summary.md").read_text(), flags=re.M)
    assert not (out / "c_never").exists() or not (out / "c_never" / "result.json").exists()


def test_ctrl_c_between_worked_examples_reports_those_checked(tmp_path, capsys, monkeypatch):
    import worked.evaluate
    from refbp.cli import main
    from worked.command import BUNDLED_DIR

    real, calls = worked.evaluate.check_example, []

    def stopped_at_the_second(example, **kwargs):
        calls.append(example.source)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises while the second example is checked
        return real(example, **kwargs)

    monkeypatch.setattr(worked.evaluate, "check_example", stopped_at_the_second)
    assert main(["examples", "--out", str(tmp_path / "r"), "--quiet"]) == 130
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    bundled = len(list(BUNDLED_DIR.glob("*.toml")))
    assert captured.err.startswith(f"refbp: interrupted after 1 of {bundled} examples; partial reports: ")
    summary = json.loads((tmp_path / "r" / "worked_examples.json").read_text())
    assert summary["meta"]["interrupted"] is True and summary["n_examples"] == 1
    assert summary["meta"]["files"] == calls[:1]
