"""Compare two results for one quantity and emit one tidy row.

A row is one ``(case, layer, quantity, pair)`` with the max abs error, the max rel
error, the tolerance used, a status and the worst entry; a per-step gradient of a recurrent
layer (``dL/dh``, ``dL/dc``) has one row per time step, its ``step`` field the step (``None`` on
every other row). Statuses:

``ok``        every compared entry is within tolerance
``mismatch``  some entry is not
``shape``     the two arrays have different shapes
``nan``       NaN/Inf on one side where the other is finite (or on both sides)
``kink``      within tolerance, but some entries were not compared because a ReLU
              pre-activation lies within the finite-difference step of 0
``missing``   one side does not produce the quantity at all
``error``     the implementation under test raised instead of returning results

Tolerances (``atol + rtol·|value|``, entry by entry). ``atol`` is relative to a scale: the
largest magnitude in either array, floored by a case-wide magnitude (the loss and the
largest reference gradient of the case). The floor matters where a gradient is a sum that
cancels to nearly 0 — a shared bias, say — and its own size says nothing about the
rounding in the terms that were summed.

* analytic vs analytic (refbp~torch), same dtype — float64: ``rtol 1e-8``,
  ``atol 1e-10·scale``; float32: ``rtol 2e-4``, ``atol 2e-5·scale``. Two correct
  implementations differ only by summation order.
* analytic vs central differences (``*~fd``; FD always in float64, step
  ``h = ε^{1/3}·max(1, |θ|)``) — float64: ``rtol 1e-5``, ``atol 1e-7·scale``; float32:
  ``rtol 2e-3``, ``atol 2e-4·scale``. The FD error is ``O(h²)`` truncation plus
  ``O(ε·|L|/h)`` round-off, about ``1e-10·|L|`` in float64; a float32 gradient carries
  its own ``~1e-6`` relative rounding on top.

The relative error of an entry is ``|x − y| / max(|x|, |y|, atol/rtol)``: below
``atol/rtol`` the absolute tolerance is what decides, so the floor keeps tiny values from
reporting huge relative errors that do not matter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from refbp.layers.names import PARAMETER_QUANTITIES, STATE_QUANTITIES, STEP_QUANTITIES

PAIRS = ("refbp~torch", "refbp~fd", "torch~fd")
STATUSES = ("ok", "mismatch", "shape", "nan", "kink", "missing", "error", "unsupported")
FAILING_STATUSES = ("mismatch", "shape", "nan", "missing", "error")

FORWARD_ORDER = ("z", "a", *STATE_QUANTITIES, "loss")
# Within one layer, walking backward from the loss: ∂L/∂a_l is formed first, then δ_l, then (a recurrent
# layer) each step's ∂L/∂h_t and ∂L/∂c_t from the last step down, then the parameters.
BACKWARD_ORDER = ("dL/da", "delta", *STEP_QUANTITIES, *PARAMETER_QUANTITIES)

_TOLERANCES = {
    ("analytic", "float64"): (1e-8, 1e-10),
    ("analytic", "float32"): (2e-4, 2e-5),
    ("fd", "float64"): (1e-5, 1e-7),
    ("fd", "float32"): (2e-3, 2e-4),
}


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float

    @property
    def floor(self) -> float:
        """Magnitude below which the absolute tolerance decides."""
        return self.atol / self.rtol if self.rtol else self.atol


def tolerance_for(pair: str, dtype: str, scale: float) -> Tolerance:
    """The tolerance for comparing ``pair`` at ``dtype``, given the magnitude ``scale``."""
    kind = "fd" if pair.endswith("~fd") else "analytic"
    rtol, atol_rel = _TOLERANCES[(kind, dtype)]
    return Tolerance(rtol=rtol, atol=atol_rel * max(scale, np.finfo(np.float64).tiny))


@dataclass
class Row:
    """One tidy row of a comparison."""

    case: str
    layer: int
    quantity: str
    pair: str
    status: str
    max_abs_err: float
    max_rel_err: float
    rtol: float
    atol: float
    worst_index: str
    worst_left: float
    worst_right: float
    n_entries: int
    n_kink: int
    dtype: str
    message: str = ""
    diagnosis: str = ""
    step: int | None = None
    """The time step of a per-step row (``dL/dh``, ``dL/dc``), counted from 0; ``None`` otherwise."""

    def as_dict(self) -> dict:
        return asdict(self)


def _index_text(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def compare_arrays(
    left: np.ndarray | None,
    right: np.ndarray | None,
    *,
    case: str,
    layer: int,
    quantity: str,
    pair: str,
    dtype: str,
    kinks: np.ndarray | None = None,
    scale_floor: float = 0.0,
    step: int | None = None,
) -> Row:
    """Compare ``left`` and ``right`` entry by entry and summarise them in one :class:`Row`.

    ``kinks`` (same shape, bool) marks entries that are not compared. ``scale_floor`` is
    the case-wide magnitude below which ``atol`` does not shrink (see the module docstring).
    ``step`` is the time step the arrays belong to, for a per-step row.
    """

    def row(status: str, **values) -> Row:
        base = dict(
            max_abs_err=np.nan,
            max_rel_err=np.nan,
            rtol=np.nan,
            atol=np.nan,
            worst_index="",
            worst_left=np.nan,
            worst_right=np.nan,
            n_entries=0,
            n_kink=0,
        )
        base.update(values)
        return Row(case=case, layer=layer, quantity=quantity, pair=pair, status=status, dtype=dtype, step=step, **base)

    if left is None or right is None:
        side = pair.split("~")[0 if left is None else 1]
        at = "" if step is None else f" at step {step}"
        return row("missing", message=f"{side} does not produce {quantity} of layer {layer}{at}")
    x = np.asarray(left, dtype=np.float64)
    y = np.asarray(right, dtype=np.float64)
    if x.shape != y.shape:
        return row("shape", n_entries=int(y.size), message=f"shape {x.shape}, but should be {y.shape}")
    mask = np.zeros(x.shape, dtype=bool) if kinks is None else np.asarray(kinks, dtype=bool)
    n_kink = int(mask.sum())
    compared = ~mask
    finite_x, finite_y = np.isfinite(x), np.isfinite(y)
    bad = compared & ~(finite_x & finite_y)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        return row(
            "nan",
            worst_index=_index_text(index),
            worst_left=float(x[index]),
            worst_right=float(y[index]),
            n_entries=int(x.size),
            n_kink=n_kink,
            message="non-finite value",
        )
    if not compared.any():
        return row("kink", n_entries=int(x.size), n_kink=n_kink, message="every entry is at a ReLU kink")

    # Kink entries hold NaN on the finite-difference side: keep them out of every reduction.
    magnitude = np.where(compared, np.maximum(np.abs(x), np.abs(y)), 0.0)
    scale = max(float(magnitude[compared].max()), abs(scale_floor))
    tol = tolerance_for(pair, dtype, scale)
    abs_err = np.abs(np.where(compared, x - y, 0.0))
    rel_err = abs_err / np.maximum(magnitude, tol.floor)
    ratio = abs_err / (tol.atol + tol.rtol * magnitude)
    flat = int(np.argmax(ratio))
    index = tuple(int(i) for i in np.unravel_index(flat, x.shape)) if x.ndim else ()
    failed = bool(ratio[index] > 1.0)
    status = "mismatch" if failed else ("kink" if n_kink else "ok")
    return row(
        status,
        max_abs_err=float(abs_err.max()),
        max_rel_err=float(rel_err.max()),
        rtol=tol.rtol,
        atol=tol.atol,
        worst_index=_index_text(index),
        worst_left=float(x[index]),
        worst_right=float(y[index]),
        n_entries=int(x.size),
        n_kink=n_kink,
    )


#: The quantity of the row recorded when the call of the implementation itself raises (or is unsupported).
CALL = "call"


def error_row(case: str, layer: int, pair: str, dtype: str, message: str) -> Row:
    """The single row recorded when the implementation under test raises."""
    nan = float("nan")
    return Row(
        case=case,
        layer=layer,
        quantity="loss",
        pair=pair,
        status="error",
        max_abs_err=nan,
        max_rel_err=nan,
        rtol=nan,
        atol=nan,
        worst_index="",
        worst_left=nan,
        worst_right=nan,
        n_entries=0,
        n_kink=0,
        dtype=dtype,
        message=message,
    )


def divergence_rank(layer: int, quantity: str, depth: int, step: int | None = None) -> tuple[int, int, int, int]:
    """Sort key for locating where results first diverge.

    Forward quantities come first, walking forward from the input (a wrong ``z_l`` makes
    every later ``z``, ``a`` and the loss wrong). Gradients follow, walking backward from
    the loss: output layer first, ``dL/dx`` last (a wrong ``δ_l`` spoils every layer below).
    Within a recurrent layer the per-step gradients walk backward in time, step ``T − 1``
    down to 0 (``∂L/∂h_t`` before ``∂L/∂c_t`` at each step), after ``∂L/∂a`` and before the
    parameters, whose sums over the steps depend on every step.
    """
    if quantity == CALL:  # the call itself raised: nothing after it was computed
        return (-1, 0, 0, 0)
    if quantity in FORWARD_ORDER:
        return (0, layer, FORWARD_ORDER.index(quantity), 0)
    if quantity == "dL/dx":
        return (1, depth + 1, 0, 0)
    if quantity in STEP_QUANTITIES:
        within = STEP_QUANTITIES.index(quantity) - len(STEP_QUANTITIES) * (step or 0)
        return (1, depth - layer, BACKWARD_ORDER.index(STEP_QUANTITIES[0]), within)
    if quantity not in BACKWARD_ORDER:
        return (1, depth - layer, len(BACKWARD_ORDER), 0)
    return (1, depth - layer, BACKWARD_ORDER.index(quantity), 0)


def first_divergence(rows: list[Row], depth: int) -> Row | None:
    """The failing row where the divergence starts (see :func:`divergence_rank`), or ``None``."""
    failing = [r for r in rows if r.status in FAILING_STATUSES]
    if not failing:
        return None
    errors = [r for r in failing if r.status == "error"]
    if errors:
        return errors[0]
    return min(failing, key=lambda r: divergence_rank(r.layer, r.quantity, depth, r.step))
