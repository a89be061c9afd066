"""The child's stdout and stderr: read by a thread, the first bytes kept, the rest dropped."""

from __future__ import annotations

import os
import selectors
import threading
import time


class Output:
    """The child's stdout and stderr, read from a pipe by a thread: the first ``cap`` bytes are kept, the rest dropped.

    Reading everything keeps a flood of output from ever blocking the child; keeping a
    prefix keeps it from filling the grader's memory.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.dropped = False

    def drain(self, fd: int) -> Drain:
        return Drain(self, fd)

    def text(self, chars: int) -> str:
        text = self.data.decode("utf-8", errors="replace")
        cut = len(text) > chars or self.dropped
        return text[:chars] + ("\n… (output truncated)" if cut else "")


class Drain:
    """A thread that copies one pipe into an :class:`Output` until the pipe closes or :meth:`finish`."""

    def __init__(self, output: Output, fd: int) -> None:
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
