"""What the ``refbp`` command runs first: Ctrl-C is caught from the first moment, before the imports.

Python turns Ctrl-C into a ``KeyboardInterrupt`` (and a traceback) wherever it lands,
also while the command's modules are still being imported. This module is imported by
the console script and by ``python -m refbp`` only; it installs a handler that just
notes the Ctrl-C, imports the command line, and lets :func:`refbp.cli.main` end the run
with one line and exit status 130 if Ctrl-C came that early.
"""

from __future__ import annotations

import signal

_early: list[int] = []
signal.signal(signal.SIGINT, lambda signum, frame: _early.append(signum))

from refbp.cli import main as _main  # noqa: E402  (imported once the handler is in place)


def main() -> int:
    """Run ``refbp`` with the process's arguments; see :func:`refbp.cli.main`.

    ``main`` replaces the noting handler with its own; a Ctrl-C noted until then ends the run.
    """
    return _main(early_interrupts=_early)
