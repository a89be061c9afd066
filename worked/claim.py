"""One printed number of a worked example, as read from the file (both forms share it)."""

from __future__ import annotations

from dataclasses import dataclass

from worked.aliases import Entry
from worked.rounding import Printed


@dataclass(frozen=True)
class Claim:
    """One printed number: what it is about (``reference`` as written, ``entry`` resolved) and its text."""

    reference: str
    entry: Entry
    printed: Printed
    step: int
    """Optimiser steps taken before the claim holds (0: the given parameters)."""
    slack_units: float = 0.0
    note: str = ""
    line: int | None = None
