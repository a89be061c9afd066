"""Where an implementation under test raised: the last frames of the user's code, and who raised.

When a call ``impl(spec, params, X, T)`` raises, the gate reports the exception with the
last few frames (``file:line in function``) that belong to the user — not to refbp's
oracle, not to the standard library or installed packages such as NumPy — and says
whether the *adapter* (the file of the function handed to the gate) or the *library* it
calls (any other user file) raised, or a package underneath them (NumPy raising on shapes
the user's code passed it)::

    ValueError: shapes (4,5) and (4,1) not aligned — raised in the library, in numpy:
      mylib/layers.py:42 in backward ← tests/adapters.py:17 in backprop
"""

from __future__ import annotations

import inspect
import os
import sys
import sysconfig
import traceback
from pathlib import Path
from typing import Any

#: Frames of the user's code shown, innermost first.
FRAMES = 3
# refbp's own packages are not the user's code, though an editable install keeps them outside site-packages.
_OWN_DIRS = tuple(str(Path(__file__).resolve().parents[1] / name) + os.sep for name in ("oracle", "refbp"))


def _system_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs |= {os.path.join(prefix, "lib") for prefix in (sys.prefix, sys.base_prefix)}
    return tuple(str(Path(d).resolve()) for d in dirs if d)


def _is_user_file(filename: str, system: tuple[str, ...]) -> bool:
    if filename.startswith("<"):
        return False
    path = str(Path(filename).resolve())
    return not path.startswith(_OWN_DIRS) and not path.startswith(system)


def _shown(filename: str) -> str:
    try:
        return os.path.relpath(filename)
    except ValueError:  # another drive (Windows)
        return filename


def adapter_file(impl: Any) -> str | None:
    """The source file of the function handed to the gate (an adapter's ``func``, a partial's ``func``)."""
    func = impl
    for _ in range(5):
        inner = getattr(func, "func", None)
        if inner is None or inner is func:
            break
        func = inner
    try:
        path = inspect.getsourcefile(inspect.unwrap(func)) or inspect.getsourcefile(type(func))
    except TypeError:
        return None
    return str(Path(path).resolve()) if path else None


def describe_exception(err: BaseException, impl: Any) -> str:
    """One line: ``Type: message — who raised: frames`` (see the module docstring)."""
    text = f"{type(err).__name__}: {err}".splitlines()[0] if str(err) else type(err).__name__
    frames = traceback.extract_tb(err.__traceback__)
    system = _system_dirs()
    user = [f for f in frames if _is_user_file(f.filename, system)]
    if not user:
        return text
    adapter = adapter_file(impl)
    last = user[-1]
    who = "the adapter" if adapter and str(Path(last.filename).resolve()) == adapter else "the library"
    below = frames[-1]
    if below is not last and not _is_user_file(below.filename, system):
        module = _package_of(below.filename)
        who += f", in {module}" if module else ""
    chain = " ← ".join(f"{_shown(f.filename)}:{f.lineno} in {f.name}" for f in reversed(user[-FRAMES:]))
    return f"{text} — raised in {who}: {chain}"


def _package_of(filename: str) -> str:
    """The top-level package of a file under site-packages (``numpy``), or the file's stem."""
    parts = Path(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            rest = parts[parts.index(marker) + 1 :]
            return rest[0].removesuffix(".py") if rest else ""
    return Path(filename).stem
