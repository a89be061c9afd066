"""Which time step diverges first, for a quantity of a sequence layer: ``(N, T, features)`` arrays.

Backprop through time runs from the last step down, so for a gradient the useful statement is
the earliest step (going backward) that disagrees: "steps 3–4 agree, step 2 does not". For a
forward quantity it is the first step in time. Steps are counted from 0.

:func:`step_hint` reads a whole-sequence array (``∂L/∂x``, ``a``); :func:`carried_hint` explains a
failing per-step row (``∂L/∂h_t``, ``∂L/∂c_t``, one row per step) and :func:`summed_hint` a
parameter gradient that fails although every step agrees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from refbp.layers.names import STEP_QUANTITIES


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


def _close(x: np.ndarray, y: np.ndarray, rtol: float) -> bool:
    scale = max(float(np.abs(x).max(initial=0.0)), float(np.abs(y).max(initial=0.0)), 1e-300)
    return bool(np.all(np.abs(x - y) <= rtol * scale))


def carried_hint(
    *,
    layer: int,
    layer_type: str,
    formula: str,
    quantity: str,
    step: int,
    steps: int,
    ok: Callable[[str, int], bool],
    candidate: np.ndarray | None,
    reference: np.ndarray,
    from_above: np.ndarray | None,
    rtol: float,
) -> str:
    """The diagnosis of a failing per-step row ``quantity`` (``dL/dh``, ``dL/dc``) at ``step``.

    Backprop through time walks from step ``T − 1`` down, so the sentence is about the first step
    (going backward) that disagrees: "step 3 agrees, step 2 does not: the carried dh is missing".
    ``ok(q, t)`` says whether per-step quantity ``q`` agrees at step ``t``; ``candidate`` and
    ``reference`` are the ``(N, H)`` values at ``step``; ``from_above`` is ``∂L/∂a_t``, the
    gradient arriving from the layer above, for ``dL/dh`` (``None`` otherwise); ``formula`` is the
    layer's own statement of how the quantity is formed (its registry entry).
    """
    name = quantity[len("dL/d") :]
    where = f"layer {layer} ({layer_type}), {quantity}"
    check = f" — check {formula}" if formula else ""
    later = [t for t in range(step + 1, steps)]
    if not all(ok(quantity, t) for t in later):
        return ""  # a later step already differs: that row is where the error enters
    sibling = (
        [q for q in STEP_QUANTITIES[: STEP_QUANTITIES.index(quantity)] if ok(q, step)]
        if quantity in STEP_QUANTITIES
        else []
    )
    if candidate is None or candidate.shape != reference.shape:
        return f"{where}: step {step} differs{check}"
    if not later:
        text = f"{where}: already the last step ({step}) differs, before anything is carried back through time"
        if sibling:
            text += f" (∂L/∂{sibling[0][len('dL/d') :]}_{step} agrees)"
        return text + check
    agree = f"step {steps - 1} agrees" if len(later) == 1 else f"steps {step + 1}–{steps - 1} agree"
    head = f"{where}: {agree}, step {step} does not"
    if from_above is not None and from_above.shape == reference.shape and not _close(reference, from_above, rtol):
        carried = reference - from_above
        if _close(candidate, from_above, rtol):
            return (
                f"{head}: the carried d{name} is missing — ∂L/∂{name}_{step} equals the gradient from above alone, "
                f"without what step {step + 1} sends back"
            )
        if _close(candidate, from_above + 2.0 * carried, rtol):
            return f"{head}: the carried d{name} is added twice"
        if _close(candidate, from_above - carried, rtol):
            return f"{head}: the carried d{name} has the wrong sign"
    if sibling:
        return f"{head}, though ∂L/∂{sibling[0][len('dL/d') :]}_{step} agrees{check}"
    return f"{head}: the gradient carried back from step {step + 1} is wrong{check}"


def summed_hint(quantity: str, per_step: list[str]) -> str:
    """A parameter gradient that fails where every step's ``∂L/∂h_t`` (``∂L/∂c_t``) agrees."""
    names = " and ".join(f"∂L/∂{q[len('dL/d') :]}_t" for q in per_step)
    return (
        f"every step's {names} agrees, so the backward of each step is right: {quantity} goes wrong where the "
        "steps' contributions are summed (every step counted once, none overwritten)"
    )


def inherited_hint(layer: int, quantity: str, step_agrees: Mapping[tuple[int, str, int], bool]) -> str:
    """A parameter gradient of a layer whose per-step gradients already differ: it sums what they carry.

    ``step_agrees[(layer, q, t)]`` says whether per-step quantity ``q`` of ``layer`` agrees at step ``t``.
    """
    failing = [(t, q) for (number, q, t), ok in step_agrees.items() if number == layer and not ok]
    if not failing:
        return ""
    step, first = max(failing, key=lambda item: (item[0], -STEP_QUANTITIES.index(item[1])))
    return (
        f"{first} of layer {layer} already differs at step {step}: {quantity} is built from the per-step "
        "gradients and inherits the error — fix that step first"
    )
