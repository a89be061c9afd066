"""Naming conventions a course may use for the same numbers, detected in what a submission returned.

The deep style's ``L_model_backward`` returns ``grads`` with ``dW{l}``, ``db{l}`` for layers
``1 … L`` and the gradient of each activation ``A_l`` (``l = 0 … L−1``) under one of two keys:

* ``dA{l}`` — ``grads["dA" + str(l)]``, the later editions of the course notebook;
* ``dA{l+1}`` — ``grads["dA" + str(l + 1)]``, the earlier ones: ``dA1 … dAL``, each one layer up.

:func:`normalise_grads` tells them apart by the keys present (``dA0`` only exists in the
first, ``dA{L}`` only in the second) and maps the second onto the first, which the oracle uses
(an assignment that insists on ``dA{l+1}`` gets the first shifted the other way, so it fails).
"""

from __future__ import annotations

from typing import Any

from grading.plan import FunctionCheck

SAME_LAYER, NEXT_LAYER = "dA{l}", "dA{l+1}"


def grads_convention(grads: dict, depth: int) -> str:
    """``"dA{l}"``, ``"dA{l+1}"``, or ``""`` when the keys fit neither (``depth`` = number of layers L)."""
    if "dA0" in grads and f"dA{depth}" not in grads:
        return SAME_LAYER
    if f"dA{depth}" in grads and "dA0" not in grads:
        return NEXT_LAYER
    return ""


def _shifted(grads: dict, by: int = -1) -> dict:
    """``dA{k}`` → ``dA{k+by}``; every other key unchanged."""
    out = {}
    for key, value in grads.items():
        if isinstance(key, str) and key.startswith("dA") and key[2:].isdigit():
            out[f"dA{int(key[2:]) + by}"] = value
        else:
            out[key] = value
    return out


def normalise_grads(check: FunctionCheck, results: list[Any]) -> str:
    """Map a ``dA{l+1}`` grads dict in ``results`` onto ``dA{l}`` where ``check.grads_keys`` allows it.

    Changes ``results`` in place; returns a sentence for the feedback (empty when nothing to say).
    """
    if not check.grads_keys or not check.expects:
        return ""
    call = check.expects[0].call
    if call >= len(results) or not isinstance(results[call], dict):
        return ""
    depth = sum(1 for e in check.expects if isinstance(e.path[0], str) and e.path[0].startswith("dW"))
    used = grads_convention(results[call], depth)
    if not used:
        return ""
    target = check.target
    if check.grads_keys == "either" or check.grads_keys == used:
        if used == NEXT_LAYER:
            results[call] = _shifted(results[call])
            return (
                f"{target} stores the gradient of A_l under grads['dA' + str(l + 1)] (dA1 … dA{depth}, the earlier "
                "notebook's convention); graded in that convention."
            )
        return f"{target} stores the gradient of A_l under grads['dA' + str(l)] (dA0 … dA{depth - 1})."
    if used == SAME_LAYER:  # graded against dA{l+1}: each dA{l} is then one layer off, as it would be in the course
        results[call] = _shifted(results[call], +1)
    return (
        f"{target} stores the gradient of A_l under grads['{used}'] but this assignment expects "
        f"grads['{check.grads_keys}'] (conventions.grads_keys)."
    )
