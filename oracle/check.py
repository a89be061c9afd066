"""The three-way check of one case: an implementation, the torch twin, finite differences.

Every quantity that two of them produce is compared (see :mod:`oracle.compare`), one
row per ``(layer, quantity, pair)``; failing rows get a diagnosis, and the row where the
divergence starts is named. A recurrent layer's per-step gradients (``dL/dh``, ``dL/dc``; which
ones a layer has, its registry entry says) get one row per time step, from the last step down,
whenever the implementation returns them: :mod:`oracle.fd_steps` differences them by perturbing
each step's state inside the unrolled forward pass.

Finite-difference modes:

* ``full`` — per-entry central differences of every parameter, input, ``δ`` and ``∂L/∂a``;
* ``directional`` — for each of those tensors, ``DIRECTIONS`` random directions ``v``
  compared as ``∇·v`` against ``(L(θ+hv) − L(θ−hv)) / 2h`` (as gradcheck's fast mode
  and JAX's ``check_grads`` do); a tensor whose directional derivative disagrees is
  then differenced entry by entry, so the report still says which entry is wrong;
* ``off`` — implementation against torch only.

What an implementation may return (see :func:`result_quantities`): refbp's protocol
``(ForwardTrace, Gradients)``; ``(None, Gradients)`` or a bare :class:`Gradients`
(backward quantities only); or a dict of parameter gradients ``{"W1": ∂L/∂W1, "b1": …,
"x": ∂L/∂x}`` (``dL/dW`` and ``dL/db``, plus ``dL/dx`` when ``"x"`` is there). Only the
quantities a result form provides are compared; one that the form provides but the
result lacks (a missing ``"b2"``) is a failing ``missing`` row. An implementation can
narrow this further by declaring ``provides`` (a collection of quantity names, as
:class:`oracle.gate.Adapter` does), or the caller by passing ``quantities=``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from oracle.compare import CALL, FAILING_STATUSES, Row, compare_arrays, error_row, first_divergence
from oracle.diagnosis import array_pattern, entry_hint, l2_hint, structural_hint
from oracle.fd_dense import fd_targets
from oracle.fd_directions import random_directions_many
from oracle.fd_steps import step_gradients, step_targets
from oracle.finite_diff import fd_directional_many, fd_gradients
from oracle.raised import describe_exception
from oracle.step_hints import carried_hint, inherited_hint, step_hint, summed_hint
from oracle.supports import Unsupported
from oracle.torch_twin import torch_backprop
from refbp import interrupts
from refbp.layers.names import PARAMETER_KINDS, STEP_QUANTITIES
from refbp.layers.names import PARAMETER_QUANTITIES as PARAMETER_QUANTITY_NAMES
from refbp.layers.registry import layer_type
from refbp.network import backprop as refbp_backprop
from refbp.real_arrays import real_kind
from refbp.spec import NetworkSpec
from refbp.trace import BACKWARD_QUANTITIES, FORWARD_QUANTITIES, ForwardTrace, Gradients, quantity_map

Implementation = Callable[
    [NetworkSpec, Mapping[str, np.ndarray], np.ndarray, np.ndarray],
    tuple[ForwardTrace | None, Gradients] | Gradients | Mapping[str, np.ndarray],
]
#: Quantities of a backward pass alone (a bare :class:`Gradients`).
GRADIENT_QUANTITIES = frozenset((*BACKWARD_QUANTITIES, "dL/dx"))
#: Quantities of a dict of parameter gradients (plus ``dL/dx`` when it has ``"x"``).
PARAMETER_QUANTITIES = frozenset(PARAMETER_QUANTITY_NAMES)
_PARAM_KEY = re.compile(
    r"^(?:dL/d|grad_|d)?(?:(?P<kind>" + "|".join(PARAMETER_KINDS) + r")(?P<layer>[0-9]+)|(?P<x>[xX]))$"
)
FD_MODES = ("full", "directional", "off")
DIRECTIONS = 3

# Quantities whose arrays index examples along the spec's batch axis.
_BATCHED = ("z", "a", "delta", "dL/da", "dL/dx")


@dataclass
class CaseResult:
    """Rows of one case, and the row where it first diverges (``None`` when all agree)."""

    case: str
    depth: int
    rows: list[Row] = field(default_factory=list)
    first: Row | None = None

    @property
    def passed(self) -> bool:
        return self.first is None


def result_quantities(result: Any) -> tuple[dict[tuple[int, str], np.ndarray], frozenset[str] | None]:
    """What an implementation returned, as ``{(layer, quantity): array}``, and which quantities it provides.

    ``None`` as the second item means every quantity (refbp's protocol with a forward
    trace). Dict keys are ``W1``, ``b1``, … and ``x`` (also spelled ``dW1``, ``grad_W1``,
    ``dL/dW1``, ``dx``, ``X``); any other key raises ``ValueError``, and so does an array
    of anything but real numbers (complex gradients would otherwise lose their imaginary part).
    """
    quantities, provided = _result_arrays(result)
    for (layer, quantity), value in quantities.items():
        words = "" if value is None else real_kind(np.asarray(value))
        if words:
            where = "input" if layer == 0 else f"layer {layer}"
            raise ValueError(f"{quantity} of {where}: expected real numbers, got {words}")
    return quantities, provided


def _result_arrays(result: Any) -> tuple[dict[tuple[int, str], np.ndarray], frozenset[str] | None]:
    """:func:`result_quantities` before the arrays are checked."""
    if isinstance(result, Gradients):
        return quantity_map(None, result), GRADIENT_QUANTITIES
    if isinstance(result, Mapping):
        out: dict[tuple[int, str], np.ndarray] = {}
        provided = {"dL/dW", "dL/db"}  # plus the normalisation parameters once a key names one
        for key, value in result.items():
            match = _PARAM_KEY.match(str(key))
            if match is None or (match["layer"] is not None and int(match["layer"]) < 1):
                raise ValueError(f"unknown gradient key {key!r}: expected W1, b1, …, x")
            if match["x"]:
                out[(0, "dL/dx")] = np.asarray(value)
                provided.add("dL/dx")
            else:
                out[(int(match["layer"]), f"dL/d{match['kind']}")] = np.asarray(value)
                if match["kind"] not in ("W", "b"):
                    provided |= PARAMETER_QUANTITIES
        return out, frozenset(provided)
    trace, grads = result
    return quantity_map(trace, grads), (None if trace is not None else GRADIENT_QUANTITIES)


def _run_impl(impl: Implementation, spec, params, X, T, buffers=None):
    """``(quantities, provided, error message, unsupported reason)`` of one call of the implementation under test.

    ``buffers`` (running statistics, dropout masks of a typed network) are passed as the
    keyword ``buffers`` only when there are some.
    """
    extra = {"buffers": {k: np.array(v, copy=True) for k, v in buffers.items()}} if buffers else {}
    try:
        result = impl(spec, {k: v.copy() for k, v in params.items()}, X.copy(), T.copy(), **extra)
        mine, provided = result_quantities(result)
    except Unsupported as err:
        return {}, None, "", str(err) or "unsupported (no reason given)"
    except KeyboardInterrupt as err:
        if interrupts.genuine():
            raise
        return {}, None, describe_exception(err, impl), ""
    except (Exception, SystemExit) as err:  # the implementation under test may fail in any way; that is a finding
        return {}, None, describe_exception(err, impl), ""
    return mine, provided, "", ""


def check_case(
    case_id: str,
    spec: NetworkSpec,
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    T: np.ndarray,
    *,
    impl: Implementation = refbp_backprop,
    impl_name: str = "refbp",
    fd: str = "full",
    device: str | None = None,
    seed: int = 0,
    quantities: Collection[str] | None = None,
    buffers: Mapping[str, np.ndarray] | None = None,
) -> CaseResult:
    """Compare ``impl`` (refbp by default), the torch twin and finite differences on one case.

    Only ``quantities`` (names as in :mod:`refbp.trace`) are compared, in every pair; by
    default those that ``impl`` declares in a ``provides`` attribute, else those its
    result form provides (see the module docstring). A typed network's ``buffers`` go to all
    three; its finite differences are always per entry (``directional`` runs ``full``).
    """
    if fd not in FD_MODES:
        raise ValueError(f"fd must be one of {FD_MODES}, got {fd!r}")
    typed = not isinstance(spec, NetworkSpec)
    if typed and fd == "directional":
        fd = "full"
    mine, provided, error, unsupported = _run_impl(impl, spec, params, X, T, buffers)
    if unsupported:
        row = error_row(case_id, 0, f"{impl_name}~torch", spec.dtype, unsupported)
        return CaseResult(case=case_id, depth=spec.depth, rows=[replace(row, quantity=CALL, status="unsupported")])
    declared = quantities if quantities is not None else getattr(impl, "provides", None)
    if declared is not None:
        provided = frozenset(declared)
    trace, grads = torch_backprop(spec, params, X, T, device=device, buffers=buffers)
    theirs = quantity_map(trace, grads)
    scale_floor = max(float(np.abs(v).max(initial=0.0)) for k, v in theirs.items() if k[1] not in FORWARD_QUANTITIES)
    if provided is not None:
        theirs = {key: value for key, value in theirs.items() if key[1] in provided}
    if declared is None:  # per-step gradients are compared where the implementation reports them
        theirs = {key: value for key, value in theirs.items() if key[1] not in STEP_QUANTITIES or key in mine}
    left, ref = impl_name, "torch"
    rows: list[Row] = []

    def add(a, b, key, pair, kinks=None, message="") -> Row:
        if key[1] in STEP_QUANTITIES and _per_step(a, b):
            for t in range(b.shape[1] - 1, -1, -1):
                at = None if kinks is None else kinks[:, t]
                rows.append(_compare(a[:, t], b[:, t], key, pair, spec.dtype, at, scale_floor, case_id, t))
            return rows[-1]
        row = _compare(a, b, key, pair, spec.dtype, kinks, scale_floor, case_id, None)
        if message and not row.message:
            row.message = message
        rows.append(row)
        return row

    if error:
        rows.append(replace(error_row(case_id, 0, f"{left}~{ref}", spec.dtype, error), quantity=CALL))
    else:
        for key in theirs:
            add(mine.get(key), theirs[key], key, f"{left}~{ref}")

    if fd != "off":
        targets = [t for t in fd_targets(spec) if t in theirs]
        full = fd_gradients(spec, params, X, T, targets=targets, buffers=buffers) if fd == "full" else None
        if full is None:
            shapes = [theirs[key].shape for key in targets]
            drawn = dict(
                zip(targets, random_directions_many(shapes, DIRECTIONS, np.random.default_rng(seed)), strict=True)
            )
            along = fd_directional_many(spec, params, X, T, drawn)
        for key in targets:
            if full is None:
                directional = _directional_rows(key, drawn[key], along[key], mine, theirs, add, left, ref, error)
                if not any(r.status in FAILING_STATUSES for r in directional):
                    continue
                del rows[-len(directional) :]
                values = fd_gradients(spec, params, X, T, targets=[key])
            else:
                values = full
            kinks = values.kinks[key]
            if not error:
                add(mine.get(key), values.values[key], key, f"{left}~fd", kinks=kinks)
            add(theirs[key], values.values[key], key, f"{ref}~fd", kinks=kinks)
        stepped = [key for key in step_targets(spec) if key in theirs]
        if stepped:
            step_values, step_kinks = step_gradients(spec, params, X, T, stepped, buffers=buffers)
            for key in stepped:
                if not error:
                    add(mine.get(key), step_values[key], key, f"{left}~fd", kinks=step_kinks[key])
                add(theirs[key], step_values[key], key, f"{ref}~fd", kinks=step_kinks[key])

    _diagnose(spec, rows, mine, theirs, batch=int(X.shape[spec.batch_axis]), params=params)
    first = first_divergence(rows, spec.depth)
    if first is not None and provided is not None and "delta" not in provided:
        _add_entry_hint(spec, rows, first)
    return CaseResult(case=case_id, depth=spec.depth, rows=rows, first=first)


def _per_step(a: Any, b: Any) -> bool:
    """Both sides hold ``(N, T, H)`` arrays of the same shape: one row per step (else one row says why not)."""
    return a is not None and b is not None and np.shape(a) == np.shape(b) and np.ndim(b) == 3


def _compare(a, b, key, pair, dtype, kinks, scale_floor, case_id, step) -> Row:
    return compare_arrays(
        a,
        b,
        case=case_id,
        layer=key[0],
        quantity=key[1],
        pair=pair,
        dtype=dtype,
        kinks=kinks,
        scale_floor=scale_floor,
        step=step,
    )


def _directional_rows(key, directions, along, mine, theirs, add, left, ref, error) -> list[Row]:
    """Rows comparing ``∇·v`` with the directional finite difference ``along`` the random ``directions``."""
    shape = theirs[key].shape
    fd_values, kinks = along
    flat = directions.reshape(DIRECTIONS, -1)

    def project(grad: np.ndarray | None) -> np.ndarray | None:
        if grad is None or grad.shape != shape:
            return grad
        return flat @ np.asarray(grad, dtype=np.float64).ravel()

    note = f"directional, {DIRECTIONS} random directions"
    rows = [] if error else [add(project(mine.get(key)), fd_values, key, f"{left}~fd", kinks=kinks, message=note)]
    return [*rows, add(project(theirs[key]), fd_values, key, f"{ref}~fd", kinks=kinks, message=note)]


def _diagnose(spec: NetworkSpec, rows: list[Row], mine: dict, theirs: dict, *, batch: int, params=None) -> None:
    """Fill ``row.diagnosis`` for failing rows of the implementation under test."""
    agrees: dict[tuple[int, str], bool] = {}
    step_agrees: dict[tuple[int, str, int], bool] = {}
    for row in rows:
        if not row.pair.startswith("torch"):
            key = (row.layer, row.quantity)
            ok = row.status not in FAILING_STATUSES
            agrees[key] = agrees.get(key, True) and ok
            if row.step is not None:
                step_agrees[(*key, row.step)] = step_agrees.get((*key, row.step), True) and ok
    rtol = 1e-6 if spec.dtype == "float64" else 1e-3
    for row in rows:
        row_key = (row.layer, row.quantity)
        if row.status not in FAILING_STATUSES or row.pair.startswith("torch"):
            continue
        hints: list[str] = []
        candidate, reference = mine.get(row_key), theirs.get(row_key)
        if row.step is not None:
            above = theirs.get((row.layer, "dL/da"))
            entry = layer_type(spec.layers[row.layer - 1])
            row.diagnosis = carried_hint(
                layer=row.layer,
                layer_type=entry.name,
                formula=entry.steps.get(row.quantity[len("dL/d") :], ""),
                quantity=row.quantity,
                step=row.step,
                steps=reference.shape[1],
                ok=lambda q, t, layer=row.layer: step_agrees.get((layer, q, t), True),
                candidate=candidate[:, row.step],
                reference=reference[:, row.step],
                from_above=None if above is None or row.quantity != "dL/dh" else above[:, row.step],
                rtol=rtol,
            )
            continue
        inherited = ""
        if row.layer >= 1 and row.quantity.startswith("dL/d") and row.quantity not in ("dL/da", "dL/dx"):
            kinds = {} if isinstance(spec, NetworkSpec) else layer_type(spec.layers[row.layer - 1]).steps
            compared = [f"dL/d{kind}" for kind in kinds if (row.layer, f"dL/d{kind}") in agrees]
            if compared and all(agrees[(row.layer, q)] for q in compared):
                hints.append(summed_hint(row.quantity, compared))
            elif compared:
                inherited = inherited_hint(row.layer, row.quantity, step_agrees)
        if candidate is not None and reference is not None:
            axis = spec.batch_axis if row.quantity in _BATCHED else None
            param = (params or {}).get(f"{row.quantity[-1]}{row.layer}") if row.quantity in ("dL/dW", "dL/db") else None
            penalty = "" if param is None else l2_hint(row.quantity, candidate, reference, param, spec)
            hints.append(
                penalty
                or array_pattern(candidate, reference, batch=batch, outputs=spec.outputs, batch_axis=axis, rtol=rtol)
            )
            if axis is not None and _is_sequence(spec, row.layer):
                hints.append(step_hint(candidate, reference, rtol=rtol, backward=row.quantity != "a"))
        hints.append(inherited or structural_hint(spec, row.layer, row.quantity, agrees))
        row.diagnosis = "; ".join(h for h in hints if h)


def _is_sequence(spec: NetworkSpec, layer: int) -> bool:
    """Whether layer ``layer``'s output (the input for 0) is a sequence: ``(T, features)`` per example."""
    shapes = getattr(spec, "shapes", None)
    return shapes is not None and len(shapes[layer]) == 2


def _add_entry_hint(spec: NetworkSpec, rows: list[Row], first: Row) -> None:
    """Without ``δ`` to compare, say where the error enters on the first divergence's failing rows."""
    hint = entry_hint(spec, [(r.layer, r.quantity, r.pair, r.status) for r in rows])
    if not hint:
        return
    for row in rows:
        if (row.layer, row.quantity) == (first.layer, first.quantity) and row.status in FAILING_STATUSES:
            row.diagnosis = "; ".join(h for h in (row.diagnosis, hint) if h)


def describe(result: CaseResult) -> str:
    """One line naming where a failing case diverges first, or ``"ok"``."""
    row = result.first
    if row is None:
        return "ok"
    if row.status == "error":
        return f"{row.pair.split('~')[0]} raised {row.message}"
    where = "input" if row.layer == 0 else f"layer {row.layer}"
    at = "" if row.step is None else f" at step {row.step}"
    text = f"{where}, {row.quantity}{at} ({row.pair}): {row.status}, max rel err {row.max_rel_err:.2e}"
    return text + (f" — {row.diagnosis}" if row.diagnosis else "")


def check_arrays(case_id: str, spec: NetworkSpec, data: Any, **kwargs: Any) -> CaseResult:
    """:func:`check_case` for a :class:`oracle.cases.CaseData`."""
    buffers = getattr(data, "buffers", None)
    return check_case(case_id, spec, data.params, data.X, data.T, buffers=buffers or None, **kwargs)
