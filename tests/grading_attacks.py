"""Building blocks of the attack tests: the attacker's code, written as someone who read the grader's source.

Every attack submission starts with :data:`GUARD_OFF`, which finds the child runner's
audit hook with ``gc.get_objects()`` and empties the sets and tuples its closure checks:
an in-process guard is no boundary, so each attack runs as if it were not there.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import grading
import oracle
import refbp

GUARD_OFF = """
import gc, os, sys, types

def _guard_off():
    switched = 0
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and obj.__name__ == "hook" and obj.__closure__:
            for cell in obj.__closure__:
                value = cell.cell_contents
                if isinstance(value, (tuple, set, frozenset)):
                    cell.cell_contents = type(value)()
                elif value is False:
                    cell.cell_contents = True
            switched += 1
    return switched

GUARDS_SWITCHED_OFF = _guard_off()
"""

#: The files of the installed grader an attacker would like to read or change.
INSTALLED = {
    "activations": Path(refbp.__file__).with_name("activations.py"),
    "checks": Path(grading.__file__).with_name("checks.py"),
    "oracle_layers": Path(grading.__file__).with_name("oracle_layers.py"),
    "compare": Path(oracle.__file__).with_name("compare.py"),
}


def attack(body: str, **paths: object) -> str:
    """An attack submission: :data:`GUARD_OFF`, then ``body`` with ``{name}`` fields filled with ``repr(path)``."""
    return GUARD_OFF + body.format(**{k: repr(str(v)) for k, v in paths.items()})


def sleep_marker() -> str:
    """A ``sleep`` duration no other test (or concurrent test run) uses: the tag of one test's stray processes."""
    return f"876.{secrets.randbelow(10**9):09d}"


def installed_digest() -> dict[str, str]:
    """SHA-256 of every ``.py`` file of the installed grader packages (refbp, oracle, grading)."""
    digests = {}
    for package in (refbp, oracle, grading):
        for path in sorted(Path(package.__file__).parent.rglob("*.py")):
            digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def processes_with(marker: bytes) -> list[int]:
    """Pids of the live processes whose command line contains ``marker``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry.name}/stat") as fh:
                state = fh.read().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if marker in cmdline and state not in "ZX":
            found.append(int(entry.name))
    return found
