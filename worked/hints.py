"""Why a printed number is probably wrong: candidate mistakes tested against the true numbers.

A hint is given only when the printed number really equals (by the rounding rule of
:mod:`worked.rounding`) what the mistake would produce, and only when the printed precision
can tell that mistake apart from a rounding error: the mistake's value must lie more than
``1.5 + s`` units of the last printed digit from the true value (``s`` the stated slack), so
that no number printed from it could be a hand-rounding of the truth. Several matching
mistakes are all named. The candidates, in the order they are tried:

* **only some paths** — a gradient of a hidden layer is a sum over the paths through the
  next layer (for a shared bias, over every unit it feeds and every unit those feed).
  The claim equals the sum over a proper subset of those paths (the notes' ``∂E/∂b1``
  keeps ``h1 → o1`` and ``h2 → o2`` and drops ``h1 → o2``, ``h2 → o1``). The largest
  matching subset is named;
* **sign flipped**, **a factor of N (the batch size), N·k or 2** — by
  :func:`oracle.diagnosis.array_pattern` on the two numbers;
* **a different entry** — the value of the entry with the index transposed, or of
  another entry of the same array;
* **another part** — the value of the same entry for another part of the exercise (a
  result copied from the previous part);
* **before / after the update** — the value one gradient-descent step earlier or later;
* **a rounding slip** — within three units of the last printed digit (more than the
  allowance) and of the same sign as the true value, or the correctly rounded digits with
  two neighbours swapped.

For a graph example only the candidates that make sense without layers are tried (sign,
factor, another entry, another part, before / after the update, a slip).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle.diagnosis import array_pattern
from oracle.fd_dense import layout_swap
from refbp.data import batch_size
from worked.aliases import LOCAL_QUANTITY, Entry
from worked.example_file import WorkedExample
from worked.results import ClaimResult, State
from worked.rounding import EXACT, ROUNDED, judge, round_like

MAX_PATHS = 12  # subsets of at most 2^12 paths are searched
SLIP_UNITS = 3.0


@dataclass
class HintContext:
    """What the hints may look at: the example, the claim's part, refbp's states of every part by step."""

    example: Any
    part: Any
    runs: Mapping[str, Mapping[int, State]]


def distinguishable(result: ClaimResult, value: float) -> bool:
    """``value`` is further from the true value than rounding can explain: more than ``1.5 + s`` units."""
    unit = float(result.claim.printed.unit) if not result.claim.printed.exact else 0.0
    return abs(value - result.value) > (1.5 + result.claim.slack_units) * unit


def _matches(result: ClaimResult, value: float) -> bool:
    """The printed number rounds from ``value`` (no hand-rounding slack), and the precision tells it from the truth."""
    return judge(result.claim.printed, value) in (ROUNDED, EXACT) and distinguishable(result, value)


def _name(example: Any, entry: Entry) -> str:
    canonical = entry.canonical()
    alias = example.names.get(canonical)
    return f"{alias} ({canonical})" if alias else canonical


def _unit_name(example: Any, layer: int, unit: int, example_index: int) -> str:
    """The notes' name of unit ``unit`` of layer ``layer`` (its activation's alias), or ``a{layer}[…]``."""
    spec = example.spec
    index = (example_index, unit) if spec.layout == "in_out" else (unit, example_index)
    for quantity in ("a", "z"):
        alias = example.names.get(Entry(quantity, layer, index).canonical())
        if alias:
            return alias
    return Entry("a", layer, index).canonical()


# ---------------------------------------------------------------------------- paths


def path_terms(example: Any, state: State, entry: Entry) -> list[tuple[str, float]]:
    """The terms of a hidden-layer gradient, one per path through the next layer, labelled ``h1→o2``.

    Empty when the entry is not such a gradient (output layer, softmax, input, forward value).
    Terms in the internal orientation (rows are examples), with ``f'`` the activation's
    derivative, ``δ`` of the next layer and ``W`` of the next layer as ``(n_l, n_{l+1})``:
    ``∂L/∂a_l[n,j] = Σ_k δ[n,k] W[j,k]``, ``δ_l[n,j] = Σ_k f'[n,j] δ[n,k] W[j,k]``,
    ``∂L/∂W_l[i,j] = Σ_{n,k} a_{l-1}[n,i] f'[n,j] δ[n,k] W[j,k]``,
    ``∂L/∂b_l[j] = Σ_{n,k} f'[n,j] δ[n,k] W[j,k]`` (a shared bias also sums over ``j``).
    """
    if not isinstance(example, WorkedExample):
        return []
    spec, layer, quantity = example.spec, entry.layer, entry.quantity
    if quantity not in ("dL/da", "delta", "dL/dW", "dL/db") or not 1 <= layer < spec.depth:
        return []
    slope = state.values.get((LOCAL_QUANTITY, layer))
    if slope is None:
        return []
    f = layout_swap(slope, spec)
    delta = layout_swap(state.values[("delta", layer + 1)], spec)
    W = state.values[("W", layer + 1)]
    W = W if spec.layout == "in_out" else W.T
    through = f[:, :, None] * delta[:, None, :] * W[None, :, :]  # (N, n_l, n_{l+1})
    batch = batch_size(spec, state.values[("x", 0)])

    def label(n: int, j: int, k: int) -> str:
        text = f"{_unit_name(example, layer, j, n)}→{_unit_name(example, layer + 1, k, n)}"
        return f"example {n}: {text}" if batch > 1 else text

    terms: list[tuple[str, float]] = []
    if quantity in ("dL/da", "delta"):
        n, j = entry.index if spec.layout == "in_out" else entry.index[::-1]
        factor = 1.0 if quantity == "delta" else 1.0 / f[n, j] if f[n, j] else None
        if factor is None:
            return []
        terms = [(label(n, j, k), float(through[n, j, k] * factor)) for k in range(W.shape[1])]
    elif quantity == "dL/dW":
        i, j = entry.index if spec.layout == "in_out" else entry.index[::-1]
        a_prev = layout_swap(state.values[("a", layer - 1) if layer > 1 else ("x", 0)], spec)
        for n, k in itertools.product(range(batch), range(W.shape[1])):
            terms.append((label(n, j, k), float(a_prev[n, i] * through[n, j, k])))
    else:
        units = range(W.shape[0]) if spec.layers[layer - 1].bias == "shared" else [entry.index[0]]
        for n, j, k in itertools.product(range(batch), units, range(W.shape[1])):
            terms.append((label(n, j, k), float(through[n, j, k])))
    return terms


def _partial_paths(result: ClaimResult, terms: list[tuple[str, float]]) -> str:
    if not 2 <= len(terms) <= MAX_PATHS:
        return ""
    best: tuple[int, ...] | None = None
    for size in range(len(terms) - 1, 0, -1):
        for kept in itertools.combinations(range(len(terms)), size):
            if _matches(result, sum(terms[i][1] for i in kept)):
                best = kept
                break
        if best:
            break
    if not best:
        return ""
    kept_names = ", ".join(terms[i][0] for i in best)
    dropped = ", ".join(terms[i][0] for i in range(len(terms)) if i not in best)
    partial = sum(terms[i][1] for i in best)
    return (
        f"equals the sum over only some of the paths through the network ({partial:.4g}): "
        f"keeps {kept_names}; drops {dropped}"
    )


# ---------------------------------------------------------------------------- candidates


def _pattern(result: ClaimResult, context: HintContext) -> str:
    claimed, true = float(result.claim.printed), result.value
    unit = float(result.claim.printed.unit)
    if claimed == 0:
        return ""
    if _matches(result, -true):
        return "sign flipped"
    if abs(true) <= unit:
        return ""
    rtol = unit * (1.5 + result.claim.slack_units) / max(abs(claimed), abs(true))
    spec = getattr(context.example, "spec", None)
    text = array_pattern(
        np.array([claimed]),
        np.array([true]),
        batch=batch_size(spec, context.part.X) if spec is not None else 1,
        outputs=spec.outputs if spec is not None else 1,
        batch_axis=None,
        rtol=rtol,
    )
    return "" if text == "sign flipped" else text


def _other_entries(result: ClaimResult, context: HintContext, state: State) -> str:
    entry = result.claim.entry
    array = np.asarray(state.values[entry.key])
    if array.ndim == 0:
        return ""
    if array.ndim == 2 and entry.index[::-1] != entry.index:
        flipped = entry.index[::-1]
        if all(i < n for i, n in zip(flipped, array.shape, strict=True)) and _matches(result, float(array[flipped])):
            other = Entry(entry.quantity, entry.layer, flipped)
            return f"equals {_name(context.example, other)}: the index transposed"
    others = [
        Entry(entry.quantity, entry.layer, tuple(int(i) for i in index))
        for index in np.ndindex(array.shape)
        if tuple(index) != entry.index and _matches(result, float(array[index]))
    ]
    if len(others) == 1:
        return f"equals {_name(context.example, others[0])}: the value of a different entry"
    return ""


def _other_parts(result: ClaimResult, context: HintContext) -> str:
    entry, step = result.claim.entry, result.claim.step
    shape = np.shape(context.runs[context.part.name][step].values[entry.key])
    same = []
    for name, states in context.runs.items():
        if name == context.part.name or step not in states:
            continue
        array = states[step].values.get(entry.key)
        if array is not None and np.shape(array) == shape and _matches(result, float(np.asarray(array)[entry.index])):
            same.append(name)
    if not same:
        return ""
    return f"equals the value for part{'s' if len(same) > 1 else ''} {', '.join(same)} (copied from there?)"


def _neighbour_steps(result: ClaimResult, context: HintContext) -> Iterator[str]:
    states = context.runs[context.part.name]
    entry, step = result.claim.entry, result.claim.step

    def value(at: int) -> float | None:
        array = states[at].values.get(entry.key) if at in states else None
        return None if array is None else float(np.asarray(array)[entry.index])

    before, after = value(step - 1), value(step + 1)
    if step >= 1 and before is not None and _matches(result, before):
        yield "the value before the update" + (f" (after {step - 1} steps)" if step > 1 else "")
    if after is not None and _matches(result, after):
        yield "the value after one more update"


def _slip(result: ClaimResult) -> str:
    right = round_like(result.claim.printed, result.value)
    printed = result.claim.printed.text
    if len(right) == len(printed):
        diff = [i for i, (a, b) in enumerate(zip(right, printed, strict=True)) if a != b]
        if len(diff) == 2 and diff[1] == diff[0] + 1 and right[diff[0]] == printed[diff[1]] != printed[diff[0]]:
            return f"two digits swapped (should read {right})"
    same_sign = float(result.claim.printed) * result.value > 0 or not any(ch in "123456789" for ch in right)
    if same_sign and result.units_off <= SLIP_UNITS + result.claim.slack_units:
        return f"off by {result.units_off:.1f} units in the last digit: a rounding slip (should read {right})"
    return ""


def hint_for(result: ClaimResult, context: HintContext) -> str:
    """Every candidate mistake the wrong ``result`` matches, joined by ``"; "``, or ``""``."""
    state = context.runs[context.part.name][result.claim.step]
    hints = [
        _partial_paths(result, path_terms(context.example, state, result.claim.entry)),
        _pattern(result, context),
        _other_entries(result, context, state),
        _other_parts(result, context),
        *_neighbour_steps(result, context),
        _slip(result),
    ]
    return "; ".join(h for h in hints if h)
