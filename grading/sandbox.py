"""Run one submission in a child process with limits, and collect what its functions returned.

The child (:mod:`grading.child`, started as a script with ``python -I``) gets its own
temporary working directory, a scrubbed environment, no stdin, and resource limits. The
grader talks to it over two dedicated file descriptors (never stdout, which the
submission may print to): the request goes in through a file, the results come back over
a pipe in the :mod:`grading.wire` format. The grader enforces a wall-clock deadline per
check and per submission; when a check overruns or the child dies, the process group is
killed and a fresh child carries on with the remaining checks. Afterwards, always, the
whole process group is killed and any process still carrying this run's token in its
environment (one that escaped the group) is killed too, looking again at any process that
started during the run and is caught inside ``execve`` (:func:`_kill_token_holders`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grading import wire

CHILD_SCRIPT = Path(__file__).with_name("child.py")
#: Packages a submission may not import by default: the reference itself and torch.
BLOCKED_IMPORTS = ("torch", "refbp", "oracle", "grading")
_TOKEN_VARIABLE = "REFBP_SANDBOX_TOKEN"


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run (seconds, bytes, characters)."""

    function_seconds: float = 10.0
    submission_seconds: float = 120.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 1 << 20
    processes: int = 32
    output_chars: int = 20_000
    max_message_bytes: int = 64 << 20
    max_array_bytes: int = 16 << 20
    allow_processes: bool = False
    blocked_imports: tuple[str, ...] = BLOCKED_IMPORTS


@dataclass(frozen=True)
class Call:
    """One call in the child: ``function(*args)``.

    Each arg is JSON: ``{"input": name}`` (a fresh copy of an input array, per check),
    ``{"literal": value}``, ``{"dict": {key: arg}}`` or ``{"result": i, "path": [k, …]}``
    (item ``k`` … of what call ``i`` of the same check returned — a cache, say).
    """

    function: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class ChildCheck:
    """What the child runs for one check: the calls, the inputs they use, the inputs to send back afterwards."""

    id: str
    calls: tuple[Call, ...]
    inputs: dict[str, np.ndarray]
    watch: tuple[str, ...] = ()


@dataclass
class CheckOutcome:
    """What came back for one check.

    ``state``: ``done`` (every call returned, or one raised — see ``error``), ``timeout``,
    ``crashed`` (the child died during the check) or ``not_run`` (out of time before it).
    ``results`` holds the decoded return value of each call that returned.
    """

    id: str
    state: str
    results: list[Any] = field(default_factory=list)
    error: dict[str, Any] | None = None
    watched: dict[str, np.ndarray] = field(default_factory=dict)
    message: str = ""


@dataclass
class SandboxOutcome:
    """The whole run: whether the submission imported, which functions it defines, each check's outcome."""

    imported: bool
    import_error: dict[str, str] | None
    defined: frozenset[str]
    checks: dict[str, CheckOutcome]
    output: str = ""


class _DeadlineError(Exception):
    pass


class _Reader:
    """``read(n)`` on a pipe that gives up at ``deadline`` (a ``time.monotonic`` value)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.deadline = 0.0
        self._selector = selectors.DefaultSelector()
        self._selector.register(fd, selectors.EVENT_READ)

    def read(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not self._selector.select(remaining):
            raise _DeadlineError
        return os.read(self.fd, size)

    def close(self) -> None:
        self._selector.close()


def run_submission(
    path: Path,
    functions: Sequence[str],
    checks: Sequence[ChildCheck],
    limits: SandboxLimits | None = None,
    *,
    support: Sequence[Path] = (),
) -> SandboxOutcome:
    """Run ``checks`` against the submission at ``path`` in sandboxed children (see the module docstring).

    ``support`` files (course helper modules) are copied read-only beside the submission, in
    the child's working folder, which is on the child's ``sys.path``.
    """
    limits = limits or SandboxLimits()
    root = Path(tempfile.mkdtemp(prefix="refbp-grade-"))
    try:
        work, private = root / "work", root / "private"
        work.mkdir()
        private.mkdir()
        for helper in support:
            if helper.name != path.name:
                shutil.copyfile(helper, work / helper.name)
                (work / helper.name).chmod(0o444)
        shutil.copyfile(path, work / path.name)
        outcome = SandboxOutcome(imported=False, import_error=None, defined=frozenset(), checks={})
        pending = list(checks)
        output = _Output(limits.output_chars * 4)
        started = time.monotonic()
        first = True
        while pending or first:
            left = limits.submission_seconds - (time.monotonic() - started)
            if left <= 0:
                for check in pending:
                    outcome.checks[check.id] = CheckOutcome(
                        check.id, "not_run", message="out of time for the submission"
                    )
                break
            done = _run_child(work, private, path.name, functions, pending, limits, left, outcome, first, output)
            first = False
            if not outcome.imported:
                break
            pending = pending[done:]
        outcome.output = output.text(limits.output_chars)
        return outcome
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _request(module: str, functions: Sequence[str], checks: Sequence[ChildCheck], limits: SandboxLimits) -> bytes:
    names: list[str] = []
    arrays: list[np.ndarray] = []
    encoded = []
    for check in checks:
        local = {}
        for name, array in check.inputs.items():
            key = f"{check.id}/{name}"
            local[name] = key
            names.append(key)
            arrays.append(np.ascontiguousarray(array))
        encoded.append(
            {
                "id": check.id,
                "calls": [{"function": c.function, "args": list(c.args)} for c in check.calls],
                "watch": list(check.watch),
                "keys": local,
            }
        )
    header = {
        "module": module,
        "functions": list(functions),
        "checks": encoded,
        "names": names,
        "blocked": list(limits.blocked_imports),
        "blocked_paths": _package_paths(limits.blocked_imports),
        "allow_processes": limits.allow_processes,
        "output_chars": limits.output_chars,
    }
    return wire.pack(header, arrays)


def _package_paths(names: Sequence[str]) -> list[str]:
    """Folders of the blocked packages that are installed (found without importing them)."""
    paths = []
    for name in names:
        with contextlib.suppress(ImportError, ValueError):
            found = importlib.util.find_spec(name)
            if found is not None and found.submodule_search_locations:
                paths.extend(str(Path(p).resolve()) for p in found.submodule_search_locations)
    return paths


def _rlimits(limits: SandboxLimits, seconds: float) -> dict[str, int]:
    return {
        "RLIMIT_CPU": int(seconds) + 2,
        "RLIMIT_AS": limits.memory_bytes,
        "RLIMIT_FSIZE": limits.file_bytes,
        "RLIMIT_NPROC": _user_process_count() + limits.processes,
        "RLIMIT_CORE": 0,
    }


def _user_process_count() -> int:
    """Processes (threads included, as ``RLIMIT_NPROC`` counts them) of this user now."""
    uid = str(os.getuid())
    count = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError), open(f"/proc/{entry.name}/status") as fh:
                    fields = dict(line.split(":", 1) for line in fh if ":" in line)
                    if fields.get("Uid", "").split()[:1] == [uid]:
                        count += int(fields.get("Threads", "1"))
    return count


def _environment(work: Path, token: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(work),
        "TMPDIR": str(work),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        _TOKEN_VARIABLE: token,
    }
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[name] = "1"
    return env


def _run_child(
    work: Path,
    private: Path,
    module: str,
    functions: Sequence[str],
    checks: Sequence[ChildCheck],
    limits: SandboxLimits,
    seconds: float,
    outcome: SandboxOutcome,
    first: bool,
    output: _Output,
) -> int:
    """One child over ``checks``; fills ``outcome``; returns how many checks it settled."""
    request_path = private / "request.bin"
    request_path.write_bytes(_request(module, functions, checks, limits))
    token = secrets.token_hex(16)
    limit_text = json.dumps(
        {
            "rlimits": _rlimits(limits, seconds),
            "max_request_bytes": request_path.stat().st_size + 1024,
            "max_array_bytes": limits.max_array_bytes,
        }
    )
    read_out, write_out = os.pipe()
    request_fd = os.open(request_path, os.O_RDONLY)
    log_read, log_write = os.pipe()
    start = time.monotonic()
    end = start + seconds
    settled = 0
    since = _ticks_now()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", str(CHILD_SCRIPT), str(request_fd), str(write_out), limit_text],
            cwd=work,
            env=_environment(work, token),
            stdin=subprocess.DEVNULL,
            stdout=log_write,
            stderr=log_write,
            pass_fds=(request_fd, write_out),
            start_new_session=True,
        )
    finally:
        for fd in (write_out, request_fd, log_write):
            os.close(fd)
    drain = output.drain(log_read)
    reader = _Reader(read_out)
    current: ChildCheck | None = None
    try:
        reader.deadline = min(end, time.monotonic() + limits.function_seconds + 5.0)
        header, _ = wire.read_message(reader.read, max_bytes=limits.max_message_bytes)
        if header.get("type") != "imported":
            raise wire.WireError("expected the import report first")
        if not header.get("ok"):
            outcome.import_error = _error_fields(header.get("error"))
            return 0
        outcome.imported = True
        outcome.defined = frozenset(str(n) for n in header.get("defined", []) if n in functions)
        for check in checks:
            current = check
            reader.deadline = min(end, time.monotonic() + limits.function_seconds)
            header, _ = wire.read_message(reader.read, max_bytes=limits.max_message_bytes)
            if header.get("type") != "start" or header.get("id") != check.id:
                raise wire.WireError(f"expected the start of check {check.id}")
            header, arrays = wire.read_message(reader.read, max_bytes=limits.max_message_bytes)
            if header.get("type") != "done" or header.get("id") != check.id:
                raise wire.WireError(f"expected the results of check {check.id}")
            outcome.checks[check.id] = _check_outcome(check, header, arrays)
            settled += 1
            current = None
    except _DeadlineError:
        _stop(proc, token, since)
        if not outcome.imported and first:
            outcome.import_error = {"type": "Timeout", "message": "importing the submission took too long", "where": ""}
            return 0
        if current is None:
            return settled
        reason = "the submission's time" if time.monotonic() >= end else f"{limits.function_seconds:g} s"
        outcome.checks[current.id] = CheckOutcome(current.id, "timeout", message=f"did not finish within {reason}")
        return settled + 1
    except wire.WireError as err:
        code = _stop(proc, token, since, grace=1.0)
        message = _death_text(code) if code is not None else f"sent a malformed message ({err})"
        if not outcome.imported:
            outcome.import_error = {"type": "Crash", "message": f"the process {message} while importing", "where": ""}
            return 0
        if current is None:
            return settled
        outcome.checks[current.id] = CheckOutcome(current.id, "crashed", message=f"the process {message}")
        return settled + 1
    finally:
        _stop(proc, token, since)
        reader.close()
        os.close(read_out)
        drain.finish()
    return settled


def _error_fields(error: Any) -> dict[str, str]:
    if not isinstance(error, dict):
        return {"type": "Error", "message": "", "where": ""}
    fields: dict[str, Any] = {k: str(error.get(k, ""))[:300] for k in ("type", "message", "where", "stage")}
    if isinstance(error.get("call"), int):
        fields["call"] = error["call"]
    return fields


def _check_outcome(check: ChildCheck, header: dict, arrays: list[np.ndarray]) -> CheckOutcome:
    results = header.get("results")
    if not isinstance(results, list) or len(results) > len(check.calls):
        raise wire.WireError("bad results list")
    decoded = [wire.decode_tree(node, arrays) for node in results]
    watched_index = header.get("watched") if isinstance(header.get("watched"), dict) else {}
    watched = {}
    for name in check.watch:
        index = watched_index.get(name)
        if isinstance(index, int) and 0 <= index < len(arrays):
            watched[name] = arrays[index]
    error = header.get("error")
    return CheckOutcome(check.id, "done", decoded, _error_fields(error) if error is not None else None, watched)


def _death_text(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {
            "SIGKILL": " (out of memory, or killed)",
            "SIGXCPU": " (CPU time limit)",
            "SIGSEGV": " (segmentation fault)",
        }.get(name, "")
        return f"was killed by {name}{hint}"
    return f"exited with status {code}"


def _stop(proc: subprocess.Popen, token: str, since: int, grace: float = 0.0) -> int | None:
    """Kill the child's process group and every process carrying ``token``.

    ``since`` is when the child started, in clock ticks since boot (see :func:`_ticks_now`).
    Returns the child's exit code if it had ended by itself (waiting up to ``grace``
    seconds for that), else ``None``.
    """
    code = proc.poll()
    if code is None and grace:
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = proc.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    _kill_token_holders(token, since)
    if code is None:
        proc.wait()
    return code


_PF_KTHREAD = 0x00200000  # the kernel-thread flag in /proc/PID/stat
_TICKS = os.sysconf("SC_CLK_TCK")


def _ticks_now() -> int:
    """Clock ticks since boot: the unit of a process's start time in ``/proc/PID/stat``."""
    with open("/proc/uptime") as fh:
        return int(float(fh.read().split()[0]) * _TICKS)


def _kill_token_holders(token: str, since: int, patience: float = 0.5) -> None:
    """SIGKILL processes whose environment holds this run's token (those that left the process group).

    A process caught inside ``execve`` shows an empty environment for a moment, and a
    single scan would miss it. So a process that started after ``since`` (clock ticks since
    boot) and shows no environment counts as unsure, and the scan repeats until one pass
    kills nothing and leaves nothing unsure, or ``patience`` seconds have passed.
    """
    marker = f"{_TOKEN_VARIABLE}={token}".encode()
    give_up = time.monotonic() + patience
    while True:
        killed, unsure = _scan_for_token(marker, since - 1)
        if (not killed and not unsure) or time.monotonic() > give_up:
            return
        time.sleep(0.005)


def _scan_for_token(marker: bytes, since: int) -> tuple[int, int]:
    """One pass over ``/proc``: ``(processes killed, processes unsure)`` (see :func:`_kill_token_holders`)."""
    killed = unsure = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as fh:
                    environ = fh.read()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(entry.name), signal.SIGKILL)
                    killed += 1
            elif not environ and _started_since(entry.name, since):
                unsure += 1
    return killed, unsure


def _started_since(pid: str, since: int) -> bool:
    """Whether process ``pid`` is a live user process that started at or after ``since`` (clock ticks)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return False
    # After the command name: state is field 3, flags field 9, start time field 22 (man 5 proc).
    state, flags, start = fields[0], int(fields[6]), int(fields[19])
    return state not in "ZXx" and not flags & _PF_KTHREAD and start >= since


class _Output:
    """The child's stdout and stderr, read from a pipe by a thread: the first ``cap`` bytes are kept, the rest dropped.

    Reading everything keeps a flood of output from ever blocking the child; keeping a
    prefix keeps it from filling the grader's memory.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.dropped = False

    def drain(self, fd: int) -> _Drain:
        return _Drain(self, fd)

    def text(self, chars: int) -> str:
        text = self.data.decode("utf-8", errors="replace")
        cut = len(text) > chars or self.dropped
        return text[:chars] + ("\n… (output truncated)" if cut else "")


class _Drain:
    """A thread that copies one pipe into an :class:`_Output` until the pipe closes or :meth:`finish`."""

    def __init__(self, output: _Output, fd: int) -> None:
        self.output, self.fd = output, fd
        self.stop = threading.Event()
        self.give_up = float("inf")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            while True:
                if not selector.select(0.05):
                    if self.stop.is_set():
                        return
                    continue
                if self.stop.is_set() and time.monotonic() > self.give_up:
                    return  # a writer that escaped the kill keeps the pipe busy: stop listening
                chunk = os.read(self.fd, 1 << 16)
                if not chunk:
                    return
                room = self.output.cap - len(self.output.data)
                self.output.data += chunk[: max(room, 0)]
                self.output.dropped |= len(chunk) > room

    def finish(self) -> None:
        """Stop reading once the pipe is empty (the child's processes are dead by now), and close it."""
        self.give_up = time.monotonic() + 1.0
        self.stop.set()
        self.thread.join()
        os.close(self.fd)
