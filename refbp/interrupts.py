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
import threading
from collections.abc import Iterator
from types import FrameType

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
    _state.update(installed=True, requested=False)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _state.update(installed=False, requested=False)


def genuine() -> bool:
    """Whether the ``KeyboardInterrupt`` being handled came from the user (always, outside :func:`handling`)."""
    return _state["requested"] or not _state["installed"]
