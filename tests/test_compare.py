"""oracle.compare: tolerances, statuses, worst entries and where a divergence starts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from oracle.compare import Row, compare_arrays, divergence_rank, error_row, first_divergence, tolerance_for


def _compare(left, right, **kwargs) -> Row:
    base = dict(case="c", layer=1, quantity="dL/dW", pair="refbp~torch", dtype="float64")
    base.update(kwargs)
    return compare_arrays(
        None if left is None else np.asarray(left), None if right is None else np.asarray(right), **base
    )


def test_equal_arrays_are_ok_with_zero_error() -> None:
    row = _compare([[1.0, -2.0]], [[1.0, -2.0]])
    assert row.status == "ok" and row.max_abs_err == 0.0 and row.max_rel_err == 0.0 and row.n_entries == 2


def test_mismatch_reports_the_worst_entry_and_its_values() -> None:
    row = _compare([[1.0, 2.0], [3.0, 4.5]], [[1.0, 2.0], [3.0, 4.0]])
    assert row.status == "mismatch"
    assert row.worst_index == "[1, 1]" and (row.worst_left, row.worst_right) == (4.5, 4.0)
    assert row.max_abs_err == pytest.approx(0.5) and row.max_rel_err == pytest.approx(0.5 / 4.5)


def test_rounding_level_differences_pass_at_float64() -> None:
    y = np.linspace(-3, 3, 12).reshape(3, 4)
    assert _compare(y * (1 + 1e-13), y).status == "ok"
    assert _compare(y * (1 + 1e-6), y).status == "mismatch"


def test_float32_tolerance_is_looser_and_fd_looser_still() -> None:
    y = np.linspace(1, 2, 6)
    assert _compare(y * (1 + 1e-5), y, dtype="float32").status == "ok"
    assert _compare(y * (1 + 1e-5), y, dtype="float64").status == "mismatch"
    assert _compare(y * (1 + 1e-6), y, pair="refbp~fd").status == "ok"
    assert tolerance_for("refbp~fd", "float64", 1.0).rtol > tolerance_for("refbp~torch", "float64", 1.0).rtol
    assert tolerance_for("refbp~fd", "float32", 1.0).rtol > tolerance_for("refbp~fd", "float64", 1.0).rtol


def test_scale_floor_protects_gradients_that_cancel_to_zero() -> None:
    """A shared-bias gradient that sums to ~0 is judged against the case's magnitude, not its own."""
    assert _compare([0.0], [1.7e-16]).status == "mismatch"
    assert _compare([0.0], [1.7e-16], scale_floor=2.0).status == "ok"


def test_shape_nan_missing_statuses() -> None:
    shape = _compare(np.zeros((2, 3)), np.zeros((3, 2)))
    assert shape.status == "shape" and "(2, 3)" in shape.message and "(3, 2)" in shape.message
    nan = _compare([1.0, np.nan], [1.0, 2.0])
    assert nan.status == "nan" and nan.worst_index == "[1]"
    missing = _compare(None, [1.0])
    assert missing.status == "missing" and "refbp does not produce" in missing.message


def test_kink_entries_are_not_compared() -> None:
    row = _compare([1.0, 5.0], [1.0, np.nan], pair="refbp~fd", kinks=np.array([False, True]))
    assert row.status == "kink" and row.n_kink == 1
    row = _compare([1.5, 5.0], [1.0, np.nan], pair="refbp~fd", kinks=np.array([False, True]))
    assert row.status == "mismatch"
    row = _compare([5.0], [np.nan], pair="refbp~fd", kinks=np.array([True]))
    assert row.status == "kink"


def _row(layer: int, quantity: str, status: str) -> Row:
    r = _compare([1.0], [1.0], layer=layer, quantity=quantity)
    r.status = status
    return r


def test_first_divergence_walks_forward_for_values_then_backward_for_gradients() -> None:
    depth = 3
    rows = [_row(1, "dL/dW", "mismatch"), _row(3, "delta", "mismatch"), _row(2, "dL/da", "mismatch")]
    assert (first_divergence(rows, depth).layer, first_divergence(rows, depth).quantity) == (3, "delta")
    rows.append(_row(2, "z", "mismatch"))
    rows.append(_row(3, "a", "mismatch"))
    assert (first_divergence(rows, depth).layer, first_divergence(rows, depth).quantity) == (2, "z")
    assert first_divergence([_row(1, "z", "ok"), _row(1, "dL/dW", "kink")], depth) is None
    assert divergence_rank(0, "dL/dx", depth) > divergence_rank(1, "dL/db", depth)


def test_per_step_rows_carry_their_step_and_walk_backward_in_time() -> None:
    depth = 2
    row = _compare([1.0, 2.0], [1.0, 2.5], layer=1, quantity="dL/dh", step=3)
    assert row.step == 3 and row.status == "mismatch" and row.as_dict()["step"] == 3
    assert _compare([1.0], [1.0]).step is None and error_row("c", 1, "impl~torch", "float64", "x").step is None
    missing = _compare(None, [1.0], layer=1, quantity="dL/dc", step=0)
    assert missing.message == "refbp does not produce dL/dc of layer 1 at step 0"

    def at(quantity: str, step: int | None, layer: int = 1) -> Row:
        r = _row(layer, quantity, "mismatch")
        r.step = step
        return r

    rows = [at("dL/dWh", None), at("dL/dh", 0), at("dL/dc", 2), at("dL/dh", 2), at("dL/dc", 3), at("dL/dx", None, 0)]
    assert (first_divergence(rows, depth).quantity, first_divergence(rows, depth).step) == ("dL/dc", 3)
    rows.pop(4)
    assert (first_divergence(rows, depth).quantity, first_divergence(rows, depth).step) == ("dL/dh", 2)
    # after the layer's own dL/da, before its parameters; the layer above comes first
    assert (
        divergence_rank(1, "dL/da", depth) < divergence_rank(1, "dL/dh", depth, 5) < divergence_rank(1, "dL/dWx", depth)
    )
    assert divergence_rank(2, "dL/dW", depth) < divergence_rank(1, "dL/dh", depth, 0)


def test_an_error_row_is_where_it_diverges() -> None:
    err = error_row("c", 2, "impl~torch", "float64", "ValueError: shapes")
    assert err.status == "error" and math.isnan(err.max_rel_err)
    assert first_divergence([_row(1, "z", "mismatch"), err], 2) is err
