"""Attacks on the sandbox from inside a submission, each checked by what can be observed from outside.

Each attack first switches the in-process guard off (:data:`grading_attacks.GUARD_OFF`),
then tries one class of escape. The assertions are about outcomes: the wrong answer is
not passed, nothing of the grader is read or changed, no process is left, the grader
returns its result.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from grading_attacks import INSTALLED, attack, installed_digest, processes_with, sleep_marker

from grading.grader import grade_submission
from grading.sandbox import Call, ChildCheck, SandboxLimits, run_submission

FAST = SandboxLimits(function_seconds=5.0, submission_seconds=60.0)


def _run(tmp_path: Path, source: str, functions: dict[str, tuple], limits: SandboxLimits = FAST):
    """Run ``functions`` (name: literal args) of ``source`` once each; ``{name: outcome}``."""
    path = tmp_path / "attack.py"
    path.write_text(source)
    checks = [
        ChildCheck(name, (Call(name, tuple({"literal": a} for a in args)),), {}) for name, args in functions.items()
    ]
    run = run_submission(path, list(functions), checks, limits)
    assert run.imported, run.import_error
    return run.checks


def _value(outcome) -> object:
    assert outcome.state == "done" and outcome.error is None, (outcome.state, outcome.error, outcome.message)
    value = outcome.results[0]
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value


# --- switching off in-process guards, then importing the reference -----------------------------------------

CHEAT_WITH_THE_REFERENCE = """
import numpy as np

def relu_forward(x):
    try:
        import refbp.activations
        return refbp.activations.relu(x), x
    except Exception:
        return np.zeros_like(x), x

def tanh_forward(x):
    try:
        import torch
        return torch.tanh(torch.tensor(x)).numpy(), x
    except Exception:
        return np.zeros_like(x), x

def sigmoid_forward(x):
    # Walk up the frames to the child runner and look for anything that holds expected values.
    frame, found = sys._getframe(), 0
    while frame is not None:
        found += sum(1 for name in frame.f_locals if "expect" in name or "oracle" in name)
        frame = frame.f_back
    for name in list(sys.modules):
        if name.split(".")[0] in ("grading", "oracle", "refbp"):
            found += 1
    return (1 / (1 + np.exp(-x)) if found else np.zeros_like(x)), x
"""


def test_a_submission_that_switches_the_guard_off_still_cannot_use_the_reference(tmp_path):
    path = tmp_path / "cheat.py"
    path.write_text(attack(CHEAT_WITH_THE_REFERENCE))
    result = grade_submission(path, "layers", 0, FAST)
    for check in ("relu_forward", "tanh_forward", "sigmoid_forward"):
        rows = [r for r in result.rows if r.check == check and r.quantity == "out"]
        assert rows and not rows[0].passed, (check, rows[0].status)
    assert not result.passed
    probe = _run(tmp_path, attack("def switched():\n    return GUARDS_SWITCHED_OFF\n"), {"switched": ()})
    assert _value(probe["switched"]) == 1  # the attack did find and disable the guard


# --- reading the grader's files: dir fds, hard links, symlinks, /proc/self/root -----------------------------

READ_THE_GRADER = """
def steal(kind):
    target = {target}
    folder, name = os.path.split(target)
    try:
        if kind == "path":
            data = open(target, "rb").read()
        elif kind == "dir_fd":
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            data = os.read(os.open(name, os.O_RDONLY, dir_fd=fd), 1 << 20)
        elif kind == "hard_link":
            os.link(target, "stolen")
            data = open("stolen", "rb").read()
        elif kind == "symlink":
            os.symlink(target, "pointer")
            data = open("pointer", "rb").read()
        elif kind == "proc_root":
            data = open("/proc/self/root" + target, "rb").read()
        elif kind == "parent_root":
            data = open(f"/proc/{{os.getppid()}}/root" + target, "rb").read()
        elif kind == "parent_cwd":
            data = open(f"/proc/{{os.getppid()}}/cwd/" + name, "rb").read()
        else:
            data = b""
    except OSError:
        return 0
    return int(b"def relu" in data)
"""
READS = ("path", "dir_fd", "hard_link", "symlink", "proc_root", "parent_root", "parent_cwd")


@pytest.mark.parametrize("kind", READS)
def test_the_grader_source_cannot_be_read(tmp_path, kind):
    source = attack(READ_THE_GRADER, target=INSTALLED["activations"])
    outcome = _run(tmp_path, source, {"steal": (kind,)})["steal"]
    assert _value(outcome) == 0


# --- the grader's memory, environment and command line ------------------------------------------------------

SPY_ON_OTHERS = """
def others():
    if not os.path.isdir("/proc"):  # the namespaces level mounts no procfs
        return []
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]

def environ_hits(marker):
    hits = 0
    for pid in others():
        try:
            hits += marker.encode() in open(f"/proc/{{pid}}/environ", "rb").read()
        except OSError:
            pass
    return hits

def memory_hits(marker):
    hits = 0
    for pid in others():
        try:
            maps = open(f"/proc/{{pid}}/maps").read().splitlines()
            mem = open(f"/proc/{{pid}}/mem", "rb", buffering=0)
        except OSError:
            continue
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if "r" not in perms or end - start > 64 << 20:
                continue
            try:
                mem.seek(start)
                hits += marker.encode() in mem.read(end - start)
            except (OSError, OverflowError, ValueError):
                pass
    return hits

def visible_processes():
    return len(others())
"""


def _grader_variable() -> str:
    """One ``NAME=value`` of this process's initial environment that the child's environment does not have."""
    with open("/proc/self/environ", "rb") as fh:
        entries = [e.decode() for e in fh.read().split(b"\0") if b"=" in e]
    child = ("PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE", "PWD")
    return next(e for e in entries if e.split("=")[0] not in child and len(e) > 8)


def test_the_graders_environment_and_memory_are_out_of_reach(tmp_path):
    marker = "expected-values-7f3a9c"
    keep = np.frombuffer(marker.encode() * 64, dtype=np.uint8).copy()  # the marker in this process's memory
    outcomes = _run(
        tmp_path,
        attack(SPY_ON_OTHERS),
        {"environ_hits": (_grader_variable(),), "memory_hits": (marker,), "visible_processes": ()},
    )
    assert keep.size and _value(outcomes["environ_hits"]) == 0
    assert _value(outcomes["memory_hits"]) == 0
    assert _value(outcomes["visible_processes"]) <= 1  # at most the sandbox's own first process


# --- fork and exec escapes, and processes that outlive grading ----------------------------------------------

ESCAPE = """
import ctypes, _posixsubprocess, subprocess

def escape(how):
    argv = ["/bin/sleep", {marker}]
    try:
        if how == "popen_setsid":
            subprocess.Popen(argv, start_new_session=True, env={{}}, close_fds=True)
        elif how == "double_fork":
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execve(argv[0], argv, {{}})
                os._exit(0)
        elif how == "ctypes_fork":
            libc = ctypes.CDLL(None, use_errno=True)
            pid = libc.syscall(57)  # fork(2) on x86-64, past every Python-level hook
            if pid == 0:
                libc.setsid()
                os.execve(argv[0], argv, {{}})
            if pid < 0:
                return 0
        elif how == "posixsubprocess":
            subprocess.Popen(argv, env={{}}, preexec_fn=os.setpgrp)  # _posixsubprocess.fork_exec with a hook
    except OSError:
        return 0
    time.sleep(0.3)
    return 1
import time
"""


@pytest.mark.parametrize("how", ["popen_setsid", "double_fork", "ctypes_fork", "posixsubprocess"])
@pytest.mark.parametrize("allow", [False, True])
def test_no_process_outlives_grading(tmp_path, how, allow):
    marker = sleep_marker()
    limits = SandboxLimits(function_seconds=5.0, allow_processes=allow)
    outcome = _run(tmp_path, attack(ESCAPE, marker=marker), {"escape": (how,)}, limits)["escape"]
    started = _value(outcome)
    assert started == int(allow)  # refused outright unless processes are allowed
    time.sleep(0.2)
    assert not processes_with(marker.encode())


# --- writing outside the sandbox ----------------------------------------------------------------------------

WRITE_OUTSIDE = """
def write(target):
    written = 0
    for path in (target, "/proc/self/root" + target):
        try:
            with open(path, "a") as fh:
                fh.write("\\nGRADED = 'pwned'\\n")
            written += 1
        except OSError:
            pass
    try:
        os.link(target, "linked")
        with open("linked", "a") as fh:
            fh.write("\\nGRADED = 'pwned'\\n")
        written += 1
    except OSError:
        pass
    return written
"""


def test_nothing_outside_the_sandbox_can_be_written(tmp_path):
    neighbour = tmp_path / "neighbour.py"
    neighbour.write_text("ANSWER = 1\n")
    stray = Path("/tmp") / f"refbp-attack-{tmp_path.name}.txt"
    before = installed_digest()
    saved = {path: path.read_bytes() for path in INSTALLED.values()}
    try:
        source = attack(WRITE_OUTSIDE)
        for target in (INSTALLED["checks"], INSTALLED["compare"], neighbour):
            assert _value(_run(tmp_path, source, {"write": (str(target),)})["write"]) == 0, target
        _run(tmp_path, source, {"write": (str(stray),)})  # lands in the sandbox's own /tmp, if anywhere
    finally:
        for path, data in saved.items():  # should an attack get through, leave the grader as it was
            if path.read_bytes() != data:
                path.write_bytes(data)
    assert installed_digest() == before
    assert neighbour.read_text() == "ANSWER = 1\n"
    assert not stray.exists()


def test_a_full_scratch_folder_is_the_submissions_problem_only(tmp_path):
    flood = """
def fill():
    written = 0
    try:
        for i in range(1000):
            with open(f"f{{i}}.bin", "wb") as fh:
                fh.write(b"x" * (1 << 20))
            written += 1
    except OSError as err:
        return written * 1000 + err.errno
    return written * 1000
"""
    limits = SandboxLimits(function_seconds=10.0, scratch_bytes=8 << 20)
    value = _value(_run(tmp_path, attack(flood), {"fill": ()}, limits)["fill"])
    written, errno = divmod(value, 1000)
    assert written < 10 and errno == 28  # ENOSPC: the private tmpfs is full, not the machine's disk


# --- hangs ----------------------------------------------------------------------------------------------------

HANG = """
import signal

def hang(how):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):
        signal.signal(sig, signal.SIG_IGN)
    if how == "stop_itself":
        os.kill(os.getpid(), signal.SIGSTOP)
    elif how == "block_on_a_pipe":
        read, _ = os.pipe()
        os.read(read, 1)
    elif how == "sleep":
        time.sleep(10_000)
    return 1

def fine():
    return 42
import time
"""


@pytest.mark.parametrize("how", ["stop_itself", "block_on_a_pipe", "sleep"])
def test_a_hang_is_a_timeout_and_grading_goes_on(tmp_path, how):
    limits = SandboxLimits(function_seconds=1.0, submission_seconds=30.0)
    start = time.monotonic()
    outcomes = _run(tmp_path, attack(HANG), {"hang": (how,), "fine": ()}, limits)
    assert outcomes["hang"].state == "timeout" and "1 s" in outcomes["hang"].message
    assert _value(outcomes["fine"]) == 42
    assert time.monotonic() - start < 20
