"""Which time step diverges first, for a quantity of a sequence layer: ``(N, T, features)`` arrays.

Backprop through time runs from the last step down, so for a gradient the useful statement is
the earliest step (going backward) that disagrees: "steps 3–4 agree, step 2 does not". For a
forward quantity it is the first step in time. Steps are counted from 0.
"""

from __future__ import annotations

import numpy as np


def step_hint(candidate: np.ndarray, reference: np.ndarray, *, rtol: float, backward: bool) -> str:
    """A sentence naming the first diverging step, or ``""`` (shapes differ, or no step differs)."""
    if candidate.shape != reference.shape or candidate.ndim != 3 or candidate.shape[1] < 2:
        return ""
    steps = candidate.shape[1]
    scale = rtol * max(float(np.abs(reference).max()), 1e-12)
    with np.errstate(invalid="ignore"):
        err = np.abs(candidate - reference).max(axis=(0, 2))
    bad = np.flatnonzero(~(err <= scale))
    if bad.size == 0:
        return ""
    if backward:
        step = int(bad.max())
        if step == steps - 1:
            return f"already the last step ({step}) differs, before anything is carried back through time"
        agree = f"step {steps - 1} agrees" if step == steps - 2 else f"steps {step + 1}–{steps - 1} agree"
        return (
            f"{agree}, step {step} does not: the error enters where the gradient carried back from "
            f"step {step + 1} is added"
        )
    step = int(bad.min())
    if step == 0:
        return "step 0 already differs"
    agree = "step 0 agrees" if step == 1 else f"steps 0–{step - 1} agree"
    return f"{agree}, step {step} does not"
