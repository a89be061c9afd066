"""Which isolation level a sandboxed child runs under, and whether this machine offers it.

Three levels, strongest first:

``namespaces``  bubblewrap: new user, pid, mount, network, IPC and UTS namespaces, uid and
                gid 65534, no capabilities, a seccomp filter, a read-only view of only the
                interpreter, NumPy, the child runner and the submission, a private tmpfs as
                the only writable place (see :mod:`grading.namespace_view`).
``user``        the grader runs as root: the child runs as a fresh unprivileged uid and gid
                (no supplementary groups) in its own session, with rlimits; afterwards every
                process of that uid is killed.
``process``     a child process with rlimits, a scrubbed environment and its own session
                only: no boundary against a determined submission. Used only when asked for.

``auto`` picks the strongest level this machine offers; asking for a level it does not
offer is refused with one line that says what to change (:func:`choose_level`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import subprocess
import sys
import time

from refbp.errors import InputError

LEVELS = ("namespaces", "user", "process")
CHOICES = ("auto", *LEVELS)
WEAKEST = LEVELS[-1]
#: Printed on stderr (and written into reports) whenever a submission runs at the weakest level.
WEAK_WARNING = (
    "warning: --isolation process runs student code without an OS boundary: "
    "a determined submission can read the grader, change its own result or stop the grader"
)
_FIX = (
    "allow unprivileged user namespaces for bubblewrap (Docker: --security-opt seccomp=unconfined "
    "--security-opt apparmor=unconfined, or sysctl kernel.unprivileged_userns_clone=1), or run the grader "
    "as root with the Python installation readable by other users (for --isolation user), "
    "or pass --isolation process to accept grading without an OS boundary"
)
#: The range unprivileged uids are drawn from: far above any account a system creates.
_UID_RANGE = (1_000_000_000, 2_000_000_000)


def choose_level(requested: str) -> str:
    """The level to use for ``requested`` (one of :data:`CHOICES`), or an :class:`InputError` naming the fix."""
    if requested not in CHOICES:
        raise InputError("--isolation", "one of " + ", ".join(CHOICES), requested, source="command line")
    if requested == "process":
        return requested
    for level in LEVELS[:-1] if requested == "auto" else (requested,):
        if unavailable_reason(level) is None:
            return level
    reason = unavailable_reason("namespaces" if requested == "auto" else requested)
    raise InputError(
        "--isolation", f"a machine that offers {_wanted(requested)} ({reason}); {_FIX}", requested,
        source="command line",
    )  # fmt: skip


def _wanted(requested: str) -> str:
    return "namespaces or user isolation" if requested == "auto" else f"{requested} isolation"


def unavailable_reason(level: str) -> str | None:
    """``None`` if ``level`` works on this machine, else why not (one short phrase). Probed once per process."""
    if level == "process":
        return None
    if level == "namespaces":
        return _namespaces_reason()
    if level == "user":
        return _user_reason()
    raise ValueError(level)


@functools.cache
def _namespaces_reason() -> str | None:
    from grading import namespace_view

    return namespace_view.probe()


@functools.cache
def _user_reason() -> str | None:
    if os.geteuid() != 0:
        return "the user level needs the grader to run as root"
    uid = fresh_uid()
    try:
        probe = subprocess.run(
            [sys.executable, "-I", "-c", "import numpy"],
            cwd="/",
            env={"PATH": "/usr/bin:/bin"},
            user=uid,
            group=uid,
            extra_groups=[],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as err:
        return f"an unprivileged uid cannot start Python ({err})"
    finally:
        kill_uid(uid)
    if probe.returncode != 0:
        return f"an unprivileged uid cannot run {sys.executable} with NumPy"
    return None


def fresh_uid() -> int:
    """A random uid (also used as gid) that no process uses now: the child's own unprivileged account."""
    while True:
        uid = _UID_RANGE[0] + secrets.randbelow(_UID_RANGE[1] - _UID_RANGE[0])
        if not processes_of(uid):
            return uid


def processes_of(uid: int) -> list[int]:
    """Pids of the live (not zombie) processes whose real uid is ``uid`` (from ``/proc``)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError), open(f"/proc/{entry.name}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
                if fields.get("Uid", "").split()[:1] == [str(uid)] and fields.get("State", "").strip()[:1] not in "ZX":
                    found.append(int(entry.name))
    return found


def kill_uid(uid: int, seconds: float = 10.0) -> None:
    """SIGKILL every process of ``uid``: a helper that becomes ``uid`` sends ``kill(-1, SIGKILL)``.

    ``kill(-1)`` from that uid reaches all its processes in one step, so a process that
    forks in a loop cannot slip between a scan and a kill. Repeated, with short pauses, until
    ``/proc`` shows none or ``seconds`` have passed: a process caught mid-fork needs another
    round, and on a loaded machine a killed process may be scheduled to die only later.
    """
    deadline = time.monotonic() + seconds
    pause = 0.001
    while processes_of(uid):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the helper child
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, 9)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        if time.monotonic() >= deadline:
            return
        time.sleep(pause)
        pause = min(2 * pause, 0.05)
