"""Start the child runner at one isolation level, and stop it with every process it started.

``namespaces``: under bubblewrap (:mod:`grading.namespace_view`), with the seccomp filter
of :mod:`grading.seccomp_filter`. Stopping kills the pid namespace's first process, which
takes every process of the namespace with it; the stop waits until that has happened. A
root grader starts bubblewrap as a fresh unprivileged uid, whose processes are killed too.

``user``: as a fresh unprivileged uid (:func:`grading.isolation.fresh_uid`) in its own
session. Stopping kills every process of that uid (:func:`grading.isolation.kill_uid`).

``process``: as the grader's own user in its own session. Stopping kills the process
group and every process carrying this run's token in its environment (one that left the
group), looking again at any process caught inside ``execve`` (:func:`kill_token_holders`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grading import isolation, namespace_view, seccomp_filter

TOKEN_VARIABLE = "REFBP_SANDBOX_TOKEN"


@dataclass
class Launched:
    """A running child: its process (bubblewrap's, at the namespaces level) and what stopping it needs."""

    proc: subprocess.Popen
    level: str
    token: str
    since: int
    uid: int | None = None
    init_pidfd: int | None = None
    info_fd: int | None = None
    stopped: bool = field(default=False)
    code: int | None = None


def environment(home: str, token: str) -> dict[str, str]:
    """The child's whole environment: nothing of the grader's is inherited."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        TOKEN_VARIABLE: token,
    }
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[name] = "1"
    return env


def start(
    level: str,
    runner: Path,
    work: Path,
    work_files: Sequence[Path],
    child_args: Sequence[str],
    *,
    pass_fds: Sequence[int],
    output_fd: int,
    allowed: Sequence[str],
    blocked: Sequence[str],
    allow_processes: bool,
    scratch_bytes: int,
    uid: int | None = None,
) -> Launched:
    """Start ``child.py child_args…`` at ``level``; ``output_fd`` takes its stdout and stderr.

    ``runner`` holds copies of the runner files (``child.py``, ``wire.py``, …); ``work`` is the host folder
    holding ``work_files`` (the submission and its support files); ``uid`` is the
    unprivileged uid of the ``user`` level.
    """
    token = secrets.token_hex(16)
    since = ticks_now()
    common = {"stdin": subprocess.DEVNULL, "stdout": output_fd, "stderr": output_fd, "start_new_session": True}
    if level == "namespaces":
        return _start_namespaces(runner, work_files, child_args, pass_fds, allowed, blocked, allow_processes,
                                 scratch_bytes, token, since, common)  # fmt: skip
    argv = [sys.executable, "-I", str(runner / "child.py"), *child_args]
    env = environment(str(work), token)
    if level == "user":
        assert uid is not None
        proc = subprocess.Popen(argv, cwd=work, env=env, pass_fds=tuple(pass_fds), user=uid, group=uid,
                                extra_groups=[], **common)  # fmt: skip
        return Launched(proc, level, token, since, uid=uid)
    proc = subprocess.Popen(argv, cwd=work, env=env, pass_fds=tuple(pass_fds), **common)
    return Launched(proc, level, token, since)


def _start_namespaces(runner, work_files, child_args, pass_fds, allowed, blocked, allow_processes, scratch_bytes,
                      token, since, common) -> Launched:  # fmt: skip
    seccomp_read = None
    if seccomp_filter.supported():
        seccomp_read, seccomp_write = os.pipe()
        os.write(seccomp_write, seccomp_filter.program(allow_processes))
        os.close(seccomp_write)
    info_read, info_write = os.pipe()
    argv = [namespace_view.interpreter(), "-I", f"{namespace_view.RUNNER}/child.py", *child_args]
    try:
        cmd = namespace_view.command(
            runner, work_files, argv, allowed=allowed, blocked=blocked, scratch_bytes=scratch_bytes,
            seccomp_fd=seccomp_read, info_fd=info_write,
        )  # fmt: skip
        fds = (*pass_fds, info_write) + ((seccomp_read,) if seccomp_read is not None else ())
        env = environment(namespace_view.WORK, token)
        uid = isolation.fresh_uid() if namespace_view.drops_to_fresh_uid() else None
        proc = subprocess.Popen([*namespace_view.launch_prefix(uid), *cmd], env=env, pass_fds=fds, **common)
    finally:
        os.close(info_write)
        if seccomp_read is not None:
            os.close(seccomp_read)
    return Launched(proc, "namespaces", token, since, uid=uid, info_fd=info_read)


def threads_of_this_user() -> int:
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


def feed(fd: int, data: bytes) -> threading.Thread:
    """Write ``data`` to the pipe ``fd`` from a thread, then close it (a child that dies or never reads ends it)."""

    def write() -> None:
        with contextlib.suppress(OSError):
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        os.close(fd)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def watch_namespace(launched: Launched, timeout: float = 10.0) -> None:
    """Read bubblewrap's ``--info-fd`` report and keep a pidfd on the namespace's first process.

    Called once the child has spoken (so bubblewrap has written the report long since).
    """
    if launched.info_fd is None or launched.init_pidfd is not None:
        return
    ready, _, _ = select.select([launched.info_fd], [], [], timeout)
    if not ready:
        return
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        report = json.loads(os.read(launched.info_fd, 4096).decode("utf-8"))
        pid = report["child-pid"]
        if isinstance(pid, int) and launched.proc.poll() is None:
            launched.init_pidfd = os.pidfd_open(pid)


def exit_code(launched: Launched, code: int | None) -> int | None:
    """The child's own exit status (a negative signal number when killed) from its process's ``returncode``."""
    if code is not None and launched.level == "namespaces" and code > 128:
        return -(code - 128)  # bubblewrap exits with 128 + the signal that killed the child
    return code


def stop(launched: Launched, grace: float = 0.0) -> int | None:
    """Kill the child and everything it started; its exit code if it had ended by itself, else ``None``.

    Waits up to ``grace`` seconds for it to end by itself first. Returns only once no
    process of the child is left.
    """
    if launched.stopped:
        return launched.code
    proc = launched.proc
    code = proc.poll()
    if code is None and grace:
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = proc.wait(grace)
    if launched.level == "namespaces":
        watch_namespace(launched, timeout=0.0)
        if launched.init_pidfd is not None:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(launched.init_pidfd, signal.SIGKILL)
            select.select([launched.init_pidfd], [], [], 10.0)  # readable once the namespace is empty
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if code is None:
        proc.wait()
    if launched.uid is not None:  # the user level, or a namespace started as a fresh uid
        isolation.kill_uid(launched.uid)
    elif launched.level == "process":
        kill_token_holders(launched.token, launched.since)
    for fd in (launched.init_pidfd, launched.info_fd):
        if fd is not None:
            os.close(fd)
    launched.init_pidfd = launched.info_fd = None
    launched.stopped, launched.code = True, exit_code(launched, code)
    return launched.code


_PF_KTHREAD = 0x00200000  # the kernel-thread flag in /proc/PID/stat
_TICKS = os.sysconf("SC_CLK_TCK")


def ticks_now() -> int:
    """Clock ticks since boot: the unit of a process's start time in ``/proc/PID/stat``."""
    with open("/proc/uptime") as fh:
        return int(float(fh.read().split()[0]) * _TICKS)


def kill_token_holders(token: str, since: int, patience: float = 0.5) -> None:
    """SIGKILL processes whose environment holds this run's token (those that left the process group).

    A process caught inside ``execve`` shows an empty environment for a moment, and a
    single scan would miss it. So a process that started after ``since`` (clock ticks since
    boot) and shows no environment counts as unsure, and the scan repeats until one pass
    kills nothing and leaves nothing unsure, or ``patience`` seconds have passed.
    """
    marker = f"{TOKEN_VARIABLE}={token}".encode()
    give_up = time.monotonic() + patience
    while True:
        killed, unsure = scan_for_token(marker, since - 1)
        if (not killed and not unsure) or time.monotonic() > give_up:
            return
        time.sleep(0.005)


def scan_for_token(marker: bytes, since: int) -> tuple[int, int]:
    """One pass over ``/proc``: ``(processes killed, processes unsure)`` (see :func:`kill_token_holders`)."""
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
            elif not environ and started_since(entry.name, since):
                unsure += 1
    return killed, unsure


def started_since(pid: str, since: int) -> bool:
    """Whether process ``pid`` is a live user process that started at or after ``since`` (clock ticks)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return False
    # After the command name: state is field 3, flags field 9, start time field 22 (man 5 proc).
    state, flags, start = fields[0], int(fields[6]), int(fields[19])
    return state not in "ZXx" and not flags & _PF_KTHREAD and start >= since
