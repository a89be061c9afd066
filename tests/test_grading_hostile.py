"""Hostile submissions are survived: each is graded, fails where it misbehaves, and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grading.grader import grade_submission
from grading.sandbox import SandboxLimits

HOSTILE = Path(__file__).parent / "submissions" / "hostile"
FAST = SandboxLimits(function_seconds=2.0, submission_seconds=60.0)


def _rows(result, check: str) -> dict[str, object]:
    return {r.quantity: r for r in result.rows if r.check == check}


def _sleepers() -> list[int]:
    """Processes running ``sleep 987.654`` (the marker of ``stray_processes.py``)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    if fh.read().split(b"\0")[:2] == [b"sleep", b"987.654"]:
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_infinite_loop_times_out_and_the_next_function_is_still_graded():
    result = grade_submission(HOSTILE / "infinite_loop.py", "layers", 0, FAST)
    assert {r.status for r in _rows(result, "affine_forward").values()} == {"timeout"}
    assert "2 s" in _rows(result, "affine_forward")["out"].message
    assert all(r.passed for r in _rows(result, "relu_forward").values())
    assert not result.passed


def test_memory_bomb_is_stopped_by_the_memory_limit():
    # Filling 1 GiB takes about a second of system time; the wall-clock limit leaves room for a loaded machine.
    limits = SandboxLimits(function_seconds=15.0, submission_seconds=90.0)
    result = grade_submission(HOSTILE / "memory_bomb.py", "layers", 0, limits)
    affine = _rows(result, "affine_forward")["out"]
    relu = _rows(result, "relu_forward")["out"]
    assert affine.status == "error" and "MemoryError" in affine.message
    assert relu.status in ("error", "crashed") and ("MemoryError" in relu.message or "killed" in relu.message)
    assert all(r.passed for r in _rows(result, "tanh_forward").values())


def test_huge_output_is_capped_and_grading_goes_on():
    limits = SandboxLimits(function_seconds=10.0, output_chars=5000)
    result = grade_submission(HOSTILE / "huge_output.py", "layers", 0, limits)
    assert all(r.passed for r in _rows(result, "relu_forward").values())
    assert len(result.output) <= 5000 + 100
    assert result.output.startswith("xxxx")


def test_sys_exit_at_import_is_an_import_error_for_every_check():
    result = grade_submission(HOSTILE / "exit_at_import.py", "layers", 0, FAST)
    assert {r.status for r in result.rows} == {"error"}
    assert "SystemExit: 3" in result.rows[0].message
    assert result.score == 0


def test_exit_inside_a_function_is_a_crash_of_that_check_only():
    result = grade_submission(HOSTILE / "exit_in_function.py", "layers", 0, FAST)
    out = _rows(result, "affine_forward")["out"]
    assert out.status == "crashed" and "exited with status 0" in out.message
    assert all(r.passed for r in _rows(result, "relu_forward").values())


def test_processes_are_refused_and_none_survives():
    before = set(_sleepers())
    result = grade_submission(HOSTILE / "stray_processes.py", "layers", 0, FAST)
    assert set(_sleepers()) <= before
    # relu_forward's cache reports how many processes the submission managed to start: none.
    assert _rows(result, "relu_forward")["out"].passed


def test_processes_started_anyway_are_killed_even_in_their_own_session():
    before = set(_sleepers())
    limits = SandboxLimits(function_seconds=5.0, allow_processes=True)
    grade_submission(HOSTILE / "stray_processes.py", "layers", 0, limits)
    assert set(_sleepers()) <= before


def test_patched_numpy_gains_nothing():
    result = grade_submission(HOSTILE / "patched_numpy.py", "layers", 0, FAST)
    out = _rows(result, "relu_forward")["out"]
    dx = _rows(result, "relu_backward")["dx"]
    assert out.status == "mismatch" and dx.status == "mismatch"
    assert out.max_abs_err > 0.1
    assert not result.passed


def test_wrong_return_types_are_type_failures_not_crashes():
    result = grade_submission(HOSTILE / "wrong_types.py", "layers", 0, FAST)
    statuses = {(r.check, r.quantity): r.status for r in result.rows}
    assert statuses[("affine_forward", "out")] == "type"
    assert "NoneType" in _rows(result, "affine_forward")["out"].message
    backward = _rows(result, "affine_backward")
    assert {r.status for r in backward.values()} == {"type"}
    assert "cannot take the cache from what affine_forward returned" in backward["dx"].message
    assert statuses[("relu_forward", "out")] == "type"
    assert statuses[("sigmoid_backward", "dx")] == "type"  # the forward's 1-tuple has no cache
    assert statuses[("softmax_loss", "loss")] == "type"
    assert statuses[("tanh_forward", "out")] == "ok"  # a list of rows of numbers is accepted as an array


def test_nan_and_infinity_are_reported():
    result = grade_submission(HOSTILE / "nan_results.py", "layers", 0, FAST)
    assert _rows(result, "relu_forward")["out"].status == "nan"
    tanh = _rows(result, "tanh_forward")["out"]
    assert tanh.status == "nan" and "[0, 0]" in tanh.message


def test_importing_the_reference_is_refused():
    result = grade_submission(HOSTILE / "imports_reference.py", "layers", 0, FAST)
    for check in ("relu_forward", "tanh_forward"):
        row = _rows(result, check)["out"]
        assert row.status == "error" and "not allowed" in row.message, row.message
    sigmoid = _rows(result, "sigmoid_forward")["out"]
    # Refused by the guard (user, process levels), or not even in the view (namespaces: find_spec gives None).
    assert sigmoid.status == "error" and ("PermissionError" in sigmoid.message or "NoneType" in sigmoid.message)
    affine = _rows(result, "affine_forward")["out"]
    assert affine.status == "error" and "not allowed" in affine.message


def test_the_grader_cannot_be_signalled_and_its_environment_is_not_inherited(monkeypatch):
    monkeypatch.setenv("GRADER_SECRET", "s3cret")
    result = grade_submission(HOSTILE / "kills_parent.py", "layers", 0, FAST)
    relu = _rows(result, "relu_forward")["out"]
    assert relu.status == "error" and "os.kill" in relu.message
    assert _rows(result, "tanh_forward")["out"].passed


@pytest.mark.parametrize("name", sorted(p.name for p in HOSTILE.glob("*.py")))
def test_no_sandbox_folder_is_left_behind(name, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    grade_submission(HOSTILE / name, "layers", 0, FAST)
    assert list(tmp_path.iterdir()) == []


def test_the_submission_deadline_stops_everything_after_it(tmp_path):
    path = tmp_path / "slow.py"
    names = ("affine_forward", "relu_forward", "sigmoid_forward", "tanh_forward", "softmax_loss")
    path.write_text("".join(f"def {name}(*args):\n    while True:\n        pass\n\n\n" for name in names))
    result = grade_submission(path, "layers", 0, SandboxLimits(function_seconds=1.0, submission_seconds=2.5))
    statuses = [r.status for r in result.rows if r.quantity != "inputs unchanged"]
    assert statuses[:2] == ["timeout", "missing"]  # affine_forward times out; affine_backward is not defined
    assert "timeout" in statuses and statuses[-1] == "not_run"
    assert set(statuses) == {"timeout", "missing", "not_run"}


def test_an_exception_names_the_students_line():
    result = grade_submission(HOSTILE / "memory_bomb.py", "layers", 0, FAST)
    message = _rows(result, "affine_forward")["out"].message
    assert "(line 7: huge = np.ones((1 << 37,)))" in message


def test_allow_import_lets_a_blocked_package_in():
    limits = SandboxLimits(function_seconds=5.0, blocked_imports=("torch", "oracle", "grading"))
    result = grade_submission(HOSTILE / "imports_reference.py", "layers", 0, limits)
    assert all(r.passed for r in _rows(result, "relu_forward").values())
    assert _rows(result, "tanh_forward")["out"].status == "error"
