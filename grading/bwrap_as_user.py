"""Start bubblewrap as an unprivileged host uid when the grader runs as root (run as a script, standard library only).

``python -I -S bwrap_as_user.py UID -- bwrap ARGS…``

Started by root, bubblewrap would map the sandbox's uid to host uid 0, whom the kernel
lets write /proc/sys and whose processes no RLIMIT_NPROC counts. This helper instead:

1. enters a private mount namespace (nothing it mounts is seen outside);
2. binds every ``--ro-bind`` source that ``UID`` could not reach (a folder under a 0700
   ``/root``, a 0700 temporary folder), and bubblewrap itself, onto a fresh tmpfs that
   ``UID`` can traverse, and points the arguments there;
3. drops to ``UID``/``UID`` with no supplementary groups and executes bubblewrap, which then
   builds its user namespace as that uid: uid 65534 inside maps to ``UID`` outside.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18
_STAGING_CANDIDATES = ("/mnt", "/media", "/srv", "/opt", "/home", "/var")


def _libc_call(libc, name: str, *args) -> None:
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def reachable(path: str) -> bool:
    """Whether a process with no owner or group rights could look ``path`` up (every folder above it is o+x)."""
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
        if parent == "/":
            return True
        parent = os.path.dirname(parent)


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def main(argv: list[str]) -> None:
    uid = int(argv[0])
    command = argv[argv.index("--") + 1 :]
    sources = [i + 1 for i, a in enumerate(command) if a == "--ro-bind" and i + 1 < len(command)]
    moves = [i for i in sources if not reachable(command[i])]
    if not reachable(command[0]):
        moves.insert(0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    if moves:
        _libc_call(libc, "unshare", _CLONE_NEWNS)
        _libc_call(libc, "mount", None, b"/", None, _MS_REC | _MS_PRIVATE, None)
        used = [os.path.realpath(command[i]) for i in moves]
        staging = next(c for c in _STAGING_CANDIDATES if os.path.isdir(c) and not any(_inside(u, c) for u in used))
        _libc_call(libc, "mount", b"tmpfs", staging.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755,size=64k")
        for n, i in enumerate(moves):
            target = f"{staging}/{n}"
            if os.path.isdir(command[i]):
                os.mkdir(target, 0o755)
            else:
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o755))
            _libc_call(libc, "mount", command[i].encode(), target.encode(), None, _MS_BIND | _MS_REC, None)
            command[i] = target
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
