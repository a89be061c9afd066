"""The sandboxed child as seen from inside: limits, environment, working folder, stdin, and the protocol."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
from grading_attacks import GUARD_OFF

from grading import child_launch
from grading.sandbox import Call, ChildCheck, SandboxLimits, run_submission

PROBE = """
import os, resource, sys
import numpy as np

def limits():
    names = ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_CORE")
    return np.array([resource.getrlimit(getattr(resource, n))[0] for n in names], dtype=np.int64)

def environment():
    return {
        "names": {name: 1 for name in os.environ if name != "PWD"},  # bubblewrap sets PWD to the working folder
        "pwd_is_cwd": os.environ.get("PWD", os.getcwd()) == os.getcwd(),
        "home_is_cwd": os.environ.get("HOME") == os.getcwd(),
        "files_here": len(os.listdir(".")),
        "stdin_closed": sys.stdin is None,
        "isolated": sys.flags.isolated,
    }

def write_file(n):
    with open("big.bin", "wb") as fh:
        fh.write(b"z" * int(n))
    return os.path.getsize("big.bin")

def twice(x):
    x *= 2
    return x
"""


def _run(tmp_path: Path, checks, limits=None):
    path = tmp_path / "probe.py"
    path.write_text(PROBE)
    return run_submission(path, ["limits", "environment", "write_file", "twice"], checks, limits)


def test_the_child_runs_under_the_limits(tmp_path):
    limits = SandboxLimits(memory_bytes=700 << 20, file_bytes=1 << 16, submission_seconds=30.0)
    run = _run(tmp_path, [ChildCheck("l", (Call("limits", ()),), {})], limits)
    cpu, memory, size, core = run.checks["l"].results[0]
    assert 30 <= cpu <= 33 and memory == 700 << 20 and size == 1 << 16 and core == 0


def test_the_environment_is_scrubbed_and_the_folder_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv("SOME_TOKEN", "secret")
    run = _run(tmp_path, [ChildCheck("e", (Call("environment", ()),), {})])
    found = run.checks["e"].results[0]
    names = set(found.pop("names"))
    env = {k: int(v) for k, v in found.items()}
    # PATH, HOME, TMPDIR, LANG, PYTHONDONTWRITEBYTECODE, four thread counts, the run's token: nothing inherited.
    threads = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"}
    assert names == {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE", "REFBP_SANDBOX_TOKEN", *threads}
    assert env == {"pwd_is_cwd": 1, "home_is_cwd": 1, "files_here": 1, "stdin_closed": 1, "isolated": 1}


def test_writing_past_the_file_size_limit_fails_inside_the_child(tmp_path):
    limits = SandboxLimits(file_bytes=1 << 12)
    checks = [
        ChildCheck("small", (Call("write_file", ({"literal": 100},)),), {}),
        ChildCheck("big", (Call("write_file", ({"literal": 1 << 20},)),), {}),
    ]
    run = _run(tmp_path, checks, limits)
    assert int(run.checks["small"].results[0]) == 100
    error = run.checks["big"].error
    assert error["type"] == "OSError" and "File too large" in error["message"]
    assert error["where"] == 'line 21: fh.write(b"z" * int(n))'


def test_inputs_are_fresh_copies_and_come_back_after_the_call(tmp_path):
    x = np.arange(3.0)
    check = ChildCheck("t", (Call("twice", ({"input": "x"},)),), {"x": x}, watch=("x",))
    run = _run(tmp_path, [check, ChildCheck("t2", check.calls, {"x": x}, watch=("x",))])
    for name in ("t", "t2"):
        outcome = run.checks[name]
        np.testing.assert_array_equal(outcome.results[0], [0.0, 2.0, 4.0])
        np.testing.assert_array_equal(outcome.watched["x"], [0.0, 2.0, 4.0])  # mutated in the child only
    np.testing.assert_array_equal(x, [0.0, 1.0, 2.0])
    assert run.defined == frozenset({"limits", "environment", "write_file", "twice"})


def test_nothing_of_the_run_is_left_in_the_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    _run(tmp_path, [ChildCheck("e", (Call("environment", ()),), {})])
    assert os.listdir(scratch) == []


def test_a_token_holder_is_killed_and_a_new_process_without_environment_counts_as_unsure():
    """A process inside ``execve`` shows an empty environment for a moment: the scan must look again."""
    since = child_launch.ticks_now()
    marked = subprocess.Popen(["/bin/sleep", "30"], env={child_launch.TOKEN_VARIABLE: "t0k"})
    blank = subprocess.Popen(["/bin/sleep", "30"], env={})
    try:
        killed, unsure = child_launch.scan_for_token(f"{child_launch.TOKEN_VARIABLE}=t0k".encode(), since - 1)
        assert killed == 1 and unsure >= 1
        assert marked.wait(10) == -signal.SIGKILL
        assert blank.poll() is None  # not killed: it does not carry the token
        assert child_launch.started_since(str(blank.pid), since - 1)
        assert not child_launch.started_since(str(blank.pid), child_launch.ticks_now() + 100)
        assert not child_launch.started_since(str(os.getpid()), since)  # this process started before
    finally:
        for proc in (marked, blank):
            proc.kill()
            proc.wait()


def test_threads_still_work_where_processes_are_refused(tmp_path):
    path = tmp_path / "threads.py"
    path.write_text(
        GUARD_OFF + "import os, threading\n"
        "def f():\n"
        "    out = []\n"
        "    workers = [threading.Thread(target=lambda i=i: out.append(i * i)) for i in range(4)]\n"
        "    [w.start() for w in workers]\n"
        "    [w.join() for w in workers]\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError as err:\n"
        "        return sum(out), err.errno\n"
        "    return sum(out), 0\n"
    )
    run = run_submission(path, ["f"], [ChildCheck("f", (Call("f", ()),), {})])
    total, errno = run.checks["f"].results[0]
    assert int(total) == 0 + 1 + 4 + 9 and int(errno) == 1  # EPERM from the seccomp filter, not the audit hook


def test_support_files_sit_read_only_beside_the_submission_and_import(tmp_path):
    helper = tmp_path / "support" / "dnn_utils_v2.py"
    helper.parent.mkdir()
    helper.write_text("import numpy as np\n\ndef sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n")
    path = tmp_path / "student.py"
    path.write_text(
        "from dnn_utils_v2 import sigmoid\n"
        "def f(z):\n"
        "    try:\n"
        "        open('dnn_utils_v2.py', 'a').write('# changed')\n"
        "        changed = 1\n"
        "    except OSError:\n"
        "        changed = 0\n"
        "    return sigmoid(z), changed\n"
    )
    z = np.array([-1.0, 0.0, 2.0])
    run = run_submission(path, ["f"], [ChildCheck("f", (Call("f", ({"input": "z"},)),), {"z": z})], support=[helper])
    value, changed = run.checks["f"].results[0]
    np.testing.assert_allclose(value, 1 / (1 + np.exp(-z)))
    assert int(changed) == 0
    assert helper.read_text().endswith("np.exp(-z))\n")
