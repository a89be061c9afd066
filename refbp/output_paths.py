"""Where a command may write: one policy, checked before any work, and the atomic writer.

Every command that writes files calls :func:`output_file` for each file it will write
and :func:`output_folder` for each folder, *before* it computes anything, so that a bad
path costs no work and loses nothing. A path is refused (an :class:`InputError` naming
the option, exit status 2) when it is

* a folder where a file is meant, or a file where a folder is meant;
* anything but a regular file or a new name: a device (``/dev/null``), a pipe, a
  socket or a symbolic link, since writing means renaming a new file over it;
* under a regular file (``report.json/x``);
* not writable, which is checked by creating a file there (a read-only folder, a
  name too long for the file system);
* one of the command's inputs (``refbp check hw.py --json hw.py``).

:func:`write_atomically` writes every file to a temporary name in its folder, fsyncs it,
then renames it into place, and it renames only over a regular file (or nothing), even
if something else appeared there since the check.

:func:`output_names` turns names chosen by others (a student's file name) into names
that are safe to create in an output folder: no path separators, no leading dot, no
collision with a reserved name or with each other.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from refbp import interrupts
from refbp.errors import InputError

_SOURCE = "command line"
_IN_FOLDER = "a path in a folder that can be created"
_UNSAFE = re.compile(r"[^\w.+-]")


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def _refuse(option: str, expected: str, path: Path | str, why: str) -> InputError:
    return InputError(f"{option} {path}", expected, why, source=_SOURCE)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _status(path: Path, option: str, *, follow: bool) -> os.stat_result | None:
    """``stat`` (or ``lstat``) of ``path``, ``None`` when nothing is there."""
    try:
        return os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        # ENOTDIR: a component of the path is a regular file; ENAMETOOLONG, EACCES: unusable.
        raise _refuse(option, _IN_FOLDER, path, err.strerror or type(err).__name__) from None


def _make_folder(folder: Path, option: str) -> None:
    """Create ``folder`` (and its parents); refuse when a file stands in the way."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise _refuse(option, _IN_FOLDER, folder, "a file of that name exists") from None
    except OSError as err:
        raise _refuse(option, _IN_FOLDER, folder, err.strerror or type(err).__name__) from None


def _probe(folder: Path, option: str, path: Path) -> None:
    """Check that ``folder`` accepts new files by creating (and removing) one."""
    with interrupts.deferred():
        try:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".refbp-probe.", suffix=".tmp")
        except OSError as err:
            raise _refuse(option, "a path in a writable folder", path, err.strerror or type(err).__name__) from None
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)


def output_file(path: Path | str, option: str, *, inputs: Iterable[Path | str] = ()) -> Path:
    """``path`` once it is known that a file can be written there (see the module docstring).

    Creates missing parent folders. ``option`` names the path in errors (``--json``);
    ``inputs`` are the files the command reads, which it must never overwrite.
    """
    text = os.fspath(path)
    if not text or text.endswith(os.sep):
        raise InputError(option, "a file path", text or "an empty path", source=_SOURCE)
    path = Path(text)
    for source in inputs:
        if _same_file(path, Path(source)):
            raise _refuse(option, "a path other than the command's inputs", path, "it is an input")
    info = _status(path, option, follow=False)
    if info is not None and not stat.S_ISREG(info.st_mode):
        expected = "a file path, not a folder" if stat.S_ISDIR(info.st_mode) else "a regular file or a new name"
        raise _refuse(option, expected, path, file_kind(info.st_mode))
    _make_folder(path.parent, option)
    if info is None:
        with interrupts.deferred():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                raise _refuse(option, "a regular file or a new name", path, "created meanwhile") from None
            except OSError as err:
                why = err.strerror or type(err).__name__
                raise _refuse(option, "a file path that can be created", path, why) from None
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
    _probe(path.parent, option, path)
    return path


def output_folder(
    folder: Path | str, option: str, *, files: Iterable[str] = (), inputs: Iterable[Path | str] = ()
) -> Path:
    """``folder``, created if needed, once each of ``files`` (names in it) passes :func:`output_file`."""
    text = os.fspath(folder)
    if not text:
        raise InputError(option, "a folder path", "an empty path", source=_SOURCE)
    folder = Path(text)
    info = _status(folder, option, follow=True)
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise _refuse(option, "a folder", folder, "a file" if stat.S_ISREG(info.st_mode) else file_kind(info.st_mode))
    _make_folder(folder, option)
    _probe(folder, option, folder)
    inputs = list(inputs)
    for name in files:
        output_file(folder / name, option, inputs=inputs)
    return folder


def distinct_outputs(paths: Iterable[tuple[str, Path]]) -> None:
    """Refuse two outputs (``(option, path)`` pairs) that name the same file."""
    seen: dict[str, str] = {}
    for option, path in paths:
        key = os.path.normpath(os.path.abspath(path))
        if key in seen:
            raise InputError(
                option, f"a path of its own (it is also written by {seen[key]})", str(path), source=_SOURCE
            )
        seen[key] = option


def output_names(names: Sequence[str], *, reserved: Iterable[str] = ()) -> list[str]:
    """Safe, distinct file names for ``names`` (in order), none equal to a ``reserved`` name.

    Every character but letters, digits and ``. _ + -`` becomes ``_``, leading dots are
    dropped (``..`` or ``.bashrc`` cannot name the folder itself or hide), an empty
    result becomes ``submission``, and a clash gets ``-2``, ``-3``, … appended.
    """
    taken = {name.casefold() for name in reserved}
    out: list[str] = []
    for name in names:
        base = _UNSAFE.sub("_", name).lstrip(".")[:100] or "submission"
        candidate, number = base, 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{base}-{number}"
        taken.add(candidate.casefold())
        out.append(candidate)
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX); best effort elsewhere."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _stage(path: Path, content: str | bytes) -> Path:
    """Write ``content`` to a fsynced temp file next to ``path``; return the temp path.

    ``mkstemp`` creates the file private (0600); it gets the mode an ordinary ``open()``
    would have given it (0666 less the umask), so reports stay readable.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        data = content.encode("utf-8") if isinstance(content, str) else content
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def _replaceable(path: Path) -> None:
    """Refuse to rename over anything but a regular file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise InputError(str(path), "a regular file or a new name to write", file_kind(info.st_mode), source="output")


def write_atomically(files: Mapping[Path, str | bytes]) -> None:
    """Stage every file first (text is written as UTF-8), then rename each into place.

    Each file is replaced atomically and only ever over a regular file. If anything
    fails, the temp files are removed and files not yet replaced keep their old content.
    """
    with interrupts.deferred():  # Ctrl-C waits until every file is in place (or cleaned up)
        _write_all(files)


def _write_all(files: Mapping[Path, str | bytes]) -> None:
    staged: dict[Path, Path] = {}
    try:
        for path in files:
            _replaceable(Path(path))
        for path, content in files.items():
            staged[Path(path)] = _stage(Path(path), content)
        for path, tmp in list(staged.items()):
            _replaceable(path)
            os.replace(tmp, path)
            del staged[path]
    finally:
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    for parent in {Path(p).parent for p in files}:
        _fsync_dir(parent)
