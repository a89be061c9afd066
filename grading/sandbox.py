"""Run one submission in an isolated child process, and collect what its functions returned.

The child (:mod:`grading.child`, started as a script with ``python -I``) runs at one
isolation level (:mod:`grading.isolation`: bubblewrap namespaces, an unprivileged uid, or
a plain process), in a private working folder holding only the submission and its
support files, with a scrubbed environment, no stdin and resource limits. The grader
talks to it over two inherited pipes (never stdout, which the submission may print to):
the request goes in through one, the results come back over the other in the
:mod:`grading.wire` format, read defensively (:mod:`grading.child_messages`). The grader
enforces a wall-clock deadline per check and per submission; when a check overruns or the
child dies, every process of the child is killed (:func:`grading.child_launch.stop`) and a
fresh child carries on with the remaining checks. ``run_submission`` returns only once no
process of the submission is left.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grading import child_launch, child_messages, isolation, namespace_view, wire
from grading.child_output import Output

#: The two files of the child runner, copied next to each other into every sandbox.
RUNNER_FILES = tuple(Path(__file__).with_name(name) for name in ("child.py", "wire.py", "legacy_scalars.py"))
#: Packages a submission may not import by default: the reference itself and torch.
BLOCKED_IMPORTS = ("torch", "refbp", "oracle", "grading")


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run (seconds, bytes, characters), and the isolation level asked for.

    ``isolation``: ``auto``, ``namespaces``, ``user`` or ``process`` (see :mod:`grading.isolation`).
    ``scratch_bytes``: the size of the private tmpfs (namespaces level).
    """

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
    isolation: str = "auto"
    scratch_bytes: int = 64 << 20


@dataclass(frozen=True)
class Call:
    """One call in the child: ``function(*args)``.

    Each arg is JSON: ``{"input": name}`` (a fresh copy of an input array, per check),
    ``{"literal": value}``, ``{"dict": {key: arg}}`` or ``{"result": i, "path": [k, …]}``
    (item ``k`` … of what call ``i`` of the same check returned — a cache, say), or
    ``{"argument": i, "index": j, "path": [k, …]}`` (item ``k`` … of argument ``j`` of call ``i``,
    as that call left it: the running statistics a batchnorm stored in its ``bn_param``).
    The function ``":arguments"`` is no submission's: that call returns its arguments as a tuple.
    """

    function: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class ChildCheck:
    """What the child runs for one check: the calls, the inputs they use, the inputs to send back afterwards.

    ``size1_scalars``: ``numpy`` (plain input arrays) or ``legacy`` (inputs whose ``float()``
    takes any array of one entry, see :mod:`grading.legacy_scalars`).
    """

    id: str
    calls: tuple[Call, ...]
    inputs: dict[str, np.ndarray]
    watch: tuple[str, ...] = ()
    size1_scalars: str = "numpy"


@dataclass
class CheckOutcome:
    """What came back for one check.

    ``state``: ``done`` (every call returned, or one raised — see ``error``), ``timeout``,
    ``crashed`` (the child died during the check), ``error`` (it sent a malformed message)
    or ``not_run`` (out of time before it). ``results`` holds the decoded return value of
    each call that returned.
    """

    id: str
    state: str
    results: list[Any] = field(default_factory=list)
    error: dict[str, Any] | None = None
    watched: dict[str, np.ndarray] = field(default_factory=dict)
    message: str = ""


@dataclass
class SandboxOutcome:
    """The whole run: whether the submission imported, which functions it defines, each check's outcome.

    ``isolation`` is the level the child ran at.
    """

    imported: bool
    import_error: dict[str, str] | None
    defined: frozenset[str]
    checks: dict[str, CheckOutcome]
    output: str = ""
    isolation: str = ""


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


@dataclass
class _Box:
    """One submission's folders on the grader's side and its fixed settings."""

    root: Path
    work_files: list[Path]
    level: str
    limits: SandboxLimits
    uid: int | None


def run_submission(
    path: Path,
    functions: Sequence[str],
    checks: Sequence[ChildCheck],
    limits: SandboxLimits | None = None,
    *,
    support: Sequence[Path] = (),
) -> SandboxOutcome:
    """Run ``checks`` against the submission at ``path`` in isolated children (see the module docstring).

    ``support``: files copied read-only into the submission's folder (its working
    directory, on its ``sys.path``), so that it can import them.
    """
    limits = limits or SandboxLimits()
    level = isolation.choose_level(limits.isolation)
    root = Path(tempfile.mkdtemp(prefix="refbp-grade-"))
    uid = isolation.fresh_uid() if level == "user" else None
    try:
        # a helper named like the submission never replaces it
        files = [Path(path), *(Path(s) for s in support if Path(s).name != Path(path).name)]
        box = _Box(root, _prepare(root, files, uid), level, limits, uid)
        outcome = SandboxOutcome(False, None, frozenset(), {}, isolation=level)
        pending = list(checks)
        output = Output(limits.output_chars * 4)
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
            done = _run_child(box, Path(path).name, functions, pending, left, outcome, first, output)
            first = False
            if not outcome.imported:
                break
            pending = pending[done:]
        outcome.output = output.text(limits.output_chars)
        return outcome
    finally:
        if uid is not None:
            isolation.kill_uid(uid)
        shutil.rmtree(root, ignore_errors=True)


def _prepare(root: Path, files: Sequence[Path], uid: int | None) -> list[Path]:
    """``root/runner`` (the child runner) and ``root/work`` (copies of ``files``); the copies' paths.

    At the user level the work folder belongs to ``uid`` and the rest is readable by it.
    """
    runner, work = root / "runner", root / "work"
    runner.mkdir()
    work.mkdir()
    for source in RUNNER_FILES:
        shutil.copyfile(source, runner / source.name)
    copies = []
    for source in files:
        copies.append(work / source.name)
        shutil.copyfile(source, copies[-1])
    if uid is not None:
        for item in (root, runner, *runner.iterdir()):
            item.chmod(0o755 if item.is_dir() else 0o644)
        root.chmod(0o711)
        for item in (work, *copies):
            os.chown(item, uid, uid)
        work.chmod(0o700)
    return copies


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
                "size1_scalars": check.size1_scalars,
            }
        )
    header = {
        "module": module,
        "functions": list(functions),
        "checks": encoded,
        "names": names,
        "blocked": list(limits.blocked_imports),
        "blocked_paths": [str(p) for p in namespace_view.package_folders(limits.blocked_imports)],
        "allow_processes": limits.allow_processes,
        "output_chars": limits.output_chars,
    }
    return wire.pack(header, arrays)


def _rlimits(box: _Box, seconds: float) -> dict[str, int]:
    limits = box.limits
    # A fresh uid or user namespace counts only the child's processes; a plain process shares the grader's uid.
    processes = limits.processes if box.level != "process" else child_launch.threads_of_this_user() + limits.processes
    return {
        "RLIMIT_CPU": int(seconds) + 2,
        "RLIMIT_AS": limits.memory_bytes,
        "RLIMIT_FSIZE": limits.file_bytes,
        "RLIMIT_NPROC": processes,
        "RLIMIT_CORE": 0,
    }


def _run_child(
    box: _Box,
    module: str,
    functions: Sequence[str],
    checks: Sequence[ChildCheck],
    seconds: float,
    outcome: SandboxOutcome,
    first: bool,
    output: Output,
) -> int:
    """One child over ``checks``; fills ``outcome``; returns how many checks it settled."""
    limits = box.limits
    request = _request(module, functions, checks, limits)
    inside_site = [namespace_view.SITE] if box.level == "namespaces" else []
    limit_text = json.dumps(
        {
            "rlimits": _rlimits(box, seconds),
            "max_request_bytes": len(request) + 1024,
            "max_array_bytes": limits.max_array_bytes,
            "path": inside_site,
        }
    )
    read_out, write_out = os.pipe()
    request_read, request_write = os.pipe()
    log_read, log_write = os.pipe()
    start = time.monotonic()
    end = start + seconds
    settled = 0
    try:
        launched = child_launch.start(
            box.level, box.root / "runner", box.root / "work", box.work_files,
            [str(request_read), str(write_out), limit_text],
            pass_fds=(request_read, write_out), output_fd=log_write,
            allowed=[n for n in BLOCKED_IMPORTS if n not in limits.blocked_imports], blocked=limits.blocked_imports,
            allow_processes=limits.allow_processes, scratch_bytes=limits.scratch_bytes, uid=box.uid,
        )  # fmt: skip
    except BaseException:
        for fd in (request_write, read_out, log_read):
            os.close(fd)
        raise
    finally:
        for fd in (write_out, request_read, log_write):
            os.close(fd)
    feeder = child_launch.feed(request_write, request)
    drain = output.drain(log_read)
    reader = _Reader(read_out)
    current: ChildCheck | None = None
    try:
        reader.deadline = min(end, time.monotonic() + limits.function_seconds + 5.0)
        header, _ = wire.read_message(reader.read, max_bytes=limits.max_message_bytes)
        child_launch.watch_namespace(launched)
        imported, error, defined = child_messages.import_report(header, functions)
        if not imported:
            outcome.import_error = error
            return 0
        outcome.imported = True
        outcome.defined = defined
        for check in checks:
            current = check
            reader.deadline = min(end, time.monotonic() + limits.function_seconds)
            header, _ = wire.read_message(reader.read, max_bytes=limits.max_message_bytes)
            child_messages.expect_start(header, check.id)
            header, arrays = wire.read_message(reader.read, max_bytes=limits.max_message_bytes)
            outcome.checks[check.id] = child_messages.check_outcome(check, header, arrays)
            settled += 1
            current = None
    except _DeadlineError:
        child_launch.stop(launched)
        if not outcome.imported and first:
            outcome.import_error = {"type": "Timeout", "message": "importing the submission took too long", "where": ""}
            return 0
        if current is None:
            return settled
        reason = "the submission's time" if time.monotonic() >= end else f"{limits.function_seconds:g} s"
        outcome.checks[current.id] = CheckOutcome(current.id, "timeout", message=f"did not finish within {reason}")
        return settled + 1
    except wire.WireError as err:
        code = child_launch.stop(launched, grace=1.0)
        if err.malformed:
            state, message = "error", f"the submission's process sent a malformed message ({err})"
        else:
            state, message = "crashed", f"the process {_death_text(code) if code is not None else 'stopped talking'}"
        if not outcome.imported:
            outcome.import_error = {"type": "Crash", "message": f"{message} while importing", "where": ""}
            return 0
        if current is None:
            return settled
        if err.malformed:  # a child that forged one message gets no fresh child for the rest
            for check in checks[settled:]:
                outcome.checks[check.id] = CheckOutcome(check.id, state, message=message)
            return len(checks)
        outcome.checks[current.id] = CheckOutcome(current.id, state, message=message)
        return settled + 1
    finally:
        child_launch.stop(launched)
        reader.close()
        os.close(read_out)
        feeder.join()
        drain.finish()
    return settled


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
