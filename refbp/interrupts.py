"""Ctrl-C in a command: told apart from a ``KeyboardInterrupt`` raised by code under test.

:func:`handling` installs a SIGINT handler for the length of a command: it records that
the user asked to stop, then raises :class:`KeyboardInterrupt` as Python's own handler
does. Code that runs someone else's function (``--impl``) asks :func:`genuine` whether a
``KeyboardInterrupt`` it caught came from the user (stop, keep what was checked) or was
raised by that function (a finding: an error row). Outside :func:`handling` every
``KeyboardInterrupt`` counts as genuine, so a library caller's Ctrl-C is never swallowed.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""

_state = {"installed": False, "requested": False}


def _handler(signum: int, frame: FrameType | None) -> None:
    _state["requested"] = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Install the recording SIGINT handler (main thread only) and restore the previous one afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _handler)
    previous_hook = sys.unraisablehook

    def quiet_about_ctrl_c(unraisable: Any) -> None:
        # Ctrl-C landing in a gc callback or a destructor: Python drops it with a traceback;
        # the next raise_if_requested() delivers it instead.
        if not issubclass(unraisable.exc_type, KeyboardInterrupt):
            previous_hook(unraisable)

    sys.unraisablehook = quiet_about_ctrl_c
    _state.update(installed=True, requested=False)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
        _state.update(installed=False, requested=False)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C back until the block is done (file operations that must not be cut in half).

    Inside the block SIGINT is only noted; once it ends, a noted SIGINT is raised again for
    the handler that was in place. (Blocking the signal would not do: the kernel hands it to
    any thread, and Python acts on it in the main thread at once.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)


def raise_if_requested() -> None:
    """Raise :class:`KeyboardInterrupt` if Ctrl-C was pressed during :func:`handling`.

    Long loops call this between steps: a ``KeyboardInterrupt`` that lands in a garbage
    collector callback or a destructor is printed and dropped by Python, and the loop
    would otherwise go on as if nothing had happened.
    """
    if _state["requested"]:
        raise KeyboardInterrupt


def stopped_by_user(err: BaseException) -> bool:
    """Whether ``err`` ends a run because of Ctrl-C: a ``KeyboardInterrupt``, or anything raised after one.

    Libraries do not always let a ``KeyboardInterrupt`` through unchanged (one may fail
    an internal assertion while unwinding from it), so once Ctrl-C was pressed, whatever
    comes out counts as the interrupt.
    """
    return isinstance(err, KeyboardInterrupt) or _state["requested"]


def genuine() -> bool:
    """Whether the ``KeyboardInterrupt`` being handled came from the user (always, outside :func:`handling`)."""
    return _state["requested"] or not _state["installed"]
