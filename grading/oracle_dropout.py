"""Inverted dropout of CS231n's second assignment, checked through the mask the submission itself drew.

``dropout_forward(x, dropout_param) -> (out, cache)`` with ``dropout_param`` holding ``p``, ``mode``
(``train``/``test``) and ``seed``; the cache is ``(dropout_param, mask)``.
``dropout_backward(dout, cache) -> dx``. What ``p`` means depends on the year of the handout
(the assignment's ``conventions.dropout_p``):

* ``keep`` (2018 on): "We keep each neuron output with probability p";
* ``drop`` (2016, 2017): "We drop each neuron output with probability p".

With ``q`` the probability of keeping a unit, train mode returns ``x · mask / q`` and
``dout · mask / q`` (inverted dropout: test mode returns ``x`` and ``dout`` unchanged).

The random draw is the submission's own: no expected value can be written down before it
runs. The train-mode check therefore reads the mask from the cache ``dropout_forward``
returned (the array of ``x``'s shape there, 0/1 or already divided by ``q``) and
:func:`derive_train` fills in the expected ``out`` and ``dx`` for that mask, and the kept
fraction, which must lie within five standard deviations of ``q``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from grading.plan import ARGUMENTS, Expect, FunctionCheck, Hints, arg, away_from_zero, literal, returned
from grading.sandbox import Call

P = 0.3  # far from 0.5: the two readings of p keep 30 % or 70 % of the units
KEPT = "kept fraction"
DERIVE = "dropout_train"
#: How many standard deviations of the binomial kept fraction a correct draw may stray.
SIGMAS = 5.0


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 13, 40 + index])


def _param(mode: str) -> dict:
    return {"dict": {"p": literal(P), "mode": literal(mode), "seed": literal(123)}}


def build_dropout(seed: int) -> list[FunctionCheck]:
    """The train-mode check (values placeholders until :func:`derive_train`) and the two test-mode checks."""
    rng = _rng(seed, 0)
    n, d = int(rng.integers(40, 60)), int(rng.integers(40, 60))
    x, dout = away_from_zero(rng, (n, d)), rng.standard_normal((n, d))
    inputs = {"x": x, "dout": dout}
    train = Call("dropout_forward", (arg("x"), _param("train")))
    test = Call("dropout_forward", (arg("x"), _param("test")))
    batched = Hints(batch=n, batch_axis=0)
    back = (Call("dropout_backward", (arg("dout"), returned(0, 1))),)
    return [
        FunctionCheck("dropout_forward", "dropout_forward", (train, Call(ARGUMENTS, ())), inputs,
                      (Expect("out", 0, (0,), x, batched), Expect(KEPT, 1, (0,), np.asarray(P), scalar=True)),
                      ("x",), derive=DERIVE),
        FunctionCheck("dropout_forward: test mode", "dropout_forward", (test,), {"x": x},
                      (Expect("out", 0, (0,), x, batched),), ("x",)),
        FunctionCheck("dropout_backward", "dropout_backward", (train, *back), inputs,
                      (Expect("dx", 1, (), dout, batched),), ("x", "dout"), derive=DERIVE),
        FunctionCheck("dropout_backward: test mode", "dropout_backward", (test, *back), inputs,
                      (Expect("dx", 1, (), dout, batched),), ("x", "dout")),
    ]  # fmt: skip


def find_mask(cache: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """The first array of ``shape`` in ``cache`` (nested tuples, lists, dicts) with one non-zero value at most."""
    if isinstance(cache, np.ndarray):
        usable = cache.shape == shape and cache.dtype.kind in "biuf" and bool(np.all(np.isfinite(cache)))
        return cache != 0 if usable and len(np.unique(cache[cache != 0])) <= 1 else None
    items = cache.values() if isinstance(cache, dict) else cache if isinstance(cache, tuple | list) else ()
    for item in items:
        found = find_mask(item, shape)
        if found is not None:
            return found
    return None


def _pattern(convention: str) -> str:
    return "dropout_p_is_keep" if convention == "keep" else "dropout_p_is_drop"


def derive_train(check: FunctionCheck, results: list[Any]) -> tuple[FunctionCheck, str]:
    """``check`` with its expected values set for the mask of the submission's own forward pass.

    Returns ``(check, problem)``; ``problem`` (no mask found) fails every row of the check.
    Sets the result of the check's ``:arguments`` call, if any, to ``(kept fraction,)``.
    """
    first = results[0] if results else None
    cache = first[1] if isinstance(first, tuple | list) and len(first) > 1 else None
    x, dout = check.inputs["x"], check.inputs["dout"]
    mask = find_mask(cache, x.shape)
    if mask is None:
        return check, (
            "found no dropout mask in the cache dropout_forward returned: keep the mask (an array of x's shape) "
            "in the cache, as (dropout_param, mask)"
        )
    keep = P if check.convention != "drop" else 1.0 - P
    fraction = float(mask.mean())
    bound = SIGMAS * np.sqrt(keep * (1.0 - keep) / mask.size)
    for index, call in enumerate(check.calls[: len(results)]):
        if call.function == ARGUMENTS:
            results[index] = (np.asarray(fraction),)
    expects = []
    for expect in check.expects:
        if expect.quantity == KEPT:
            value = fraction if abs(fraction - keep) <= bound else keep
            other = (np.asarray(fraction),) if abs(fraction - (1.0 - keep)) <= bound else ()
            hints = Hints(alternatives={_pattern(check.convention): other})
            expects.append(dataclasses.replace(expect, value=np.asarray(value), hints=hints))
            continue
        upstream = x if expect.quantity == "out" else dout
        alternatives = {
            "dropout_not_rescaled": (np.where(mask, upstream, 0.0),),
            _pattern(check.convention): (np.where(mask, upstream / (1.0 - keep), 0.0),),
        }
        hints = dataclasses.replace(expect.hints, alternatives=alternatives)
        expects.append(dataclasses.replace(expect, value=np.where(mask, upstream / keep, 0.0), hints=hints))
    return dataclasses.replace(check, expects=tuple(expects)), ""
