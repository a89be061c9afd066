"""What checking a worked example produces: each computation's state at a step, and each claim judged.

Both :mod:`worked.evaluate` (which makes them) and :mod:`worked.hints`,
:mod:`worked.follow_on` and :mod:`worked.report` (which read them) import these types
from here.

Statuses of a claim:

``ok``            the printed number is the true value rounded to the printed precision
``hand-rounded``  within one unit of the last printed digit (plus the stated slack): the
                  drift of rounding intermediate results by hand (see :mod:`worked.rounding`)
``wrong``         a mistake of the source: a *root* mistake
``follows``       wrong, but only because it was computed from an earlier wrongly printed
                  number: recomputed from the printed values it depends on, it is right
                  (see :mod:`worked.follow_on`); ``follows_from`` names that claim
``unsupported``   a derivative at a kink (ReLU at 0, a max gate's tie), where it is not defined
``disagree``      the three computations differ: an error of the tool, never of the source
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worked.aliases import Key
from worked.claim import Claim

COMPUTATIONS = ("refbp", "torch", "fd")
STATUSES = ("ok", "hand-rounded", "wrong", "follows", "unsupported", "disagree")
FAILING = ("wrong", "follows", "disagree")
PASSING = ("ok", "hand-rounded", "unsupported")

Values = dict[Key, np.ndarray]


@dataclass
class State:
    """What one computation knows at one step: ``values[(quantity, layer)]``, its kink masks, and its
    optimiser's state before the step from here (``optimizer``; ``t`` steps taken so far)."""

    params: Any
    values: Values
    kinks: Values = field(default_factory=dict)
    optimizer: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    t: int = 0


Runs = dict[str, dict[int, State]]
"""Each computation's states by step (only the steps that something needs)."""


@dataclass
class ClaimResult:
    """One claim, judged."""

    example: str
    source: str
    part: str
    claim: Claim
    status: str
    value: float
    """refbp's value (the one the claim is judged against)."""
    by: dict[str, float | None]
    """Each computation's value; ``None`` where it has none (e.g. finite differences of ``penalty``)."""
    should_read: str
    """The true value written with the claim's precision."""
    match: str = ""
    """``rounded``, ``hand-rounded`` or ``exact`` for a claim that holds."""
    units_off: float = 0.0
    agreement: str = ""
    hint: str = ""
    follows_from: str = ""
    """For ``follows``: the wrongly printed claim(s) it was computed from."""
    recomputed: float | None = None
    """For ``follows``: the value recomputed from the printed values it depends on."""

    @property
    def where(self) -> str:
        """``part b, after 2 steps`` or ``""``."""
        bits = [f"part {self.part}"] if self.part else []
        if self.claim.step:
            bits.append(f"after {self.claim.step} step{'s' if self.claim.step > 1 else ''}")
        return ", ".join(bits)
