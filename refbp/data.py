"""Validation of a batch: inputs ``X`` and targets ``T`` in the spec's layout."""

from __future__ import annotations

from typing import Any

import numpy as np

from refbp import limits
from refbp.errors import InputError
from refbp.real_arrays import real_array
from refbp.spec import NetworkSpec


def batch_size(spec: NetworkSpec, X: np.ndarray) -> int:
    """Number of examples in ``X`` (rows for ``in_out``, columns for ``out_in``)."""
    return int(X.shape[spec.batch_axis])


def as_inputs(spec: NetworkSpec, X: Any, *, source: str = "inputs", allow_nonfinite: bool = False) -> np.ndarray:
    """``X`` as an array of the spec's dtype, shape ``(N, inputs)`` or ``(inputs, N)``.

    A single example may be given as a 1-D vector of length ``inputs``. Real, finite
    numbers only (NaN and infinity pass with ``allow_nonfinite``); the batch is within
    :mod:`refbp.limits`.
    """
    array = real_array(X, "X", dtype=spec.dtype, source=source, allow_nonfinite=allow_nonfinite, expected="numbers")
    if array.ndim == 1 and array.shape[0] == spec.inputs:
        array = array.reshape(spec.input_shape(1))
    expected = f"(N, {spec.inputs})" if spec.layout == "in_out" else f"({spec.inputs}, N)"
    if array.ndim != 2 or array.shape[1 - spec.batch_axis] != spec.inputs or array.shape[spec.batch_axis] < 1:
        raise InputError("X", f"shape {expected} for layout {spec.layout}", f"shape {array.shape}", source=source)
    limits.check_batch(array.shape[spec.batch_axis], max(spec.widths), "batch", source=source)
    return array


def as_targets(
    spec: NetworkSpec, T: Any, batch: int, *, source: str = "targets", allow_nonfinite: bool = False
) -> np.ndarray:
    """Targets for a batch of ``batch`` examples.

    Integer labels of shape ``(N,)`` when ``spec.loss.targets == "index"``; otherwise an
    array shaped like the network output. A single example may be a 1-D vector of length
    ``outputs``; for a one-output network, a 1-D vector of length ``N`` holds one target per example.
    """
    if spec.loss.targets == "index":
        labels = real_array(T, "T", source=source, expected=f"integer labels of shape ({batch},)")
        if labels.ndim == 0:
            labels = labels.reshape(1)
        shape = spec.target_shape(batch)
        if labels.shape != shape or not np.issubdtype(labels.dtype, np.number):
            raise InputError("T", f"integer labels of shape {shape}", f"shape {labels.shape}", source=source)
        lowest = -1 if getattr(spec, "sequence_output", False) else 0  # -1: a masked time step
        if not np.all(labels == np.round(labels)) or labels.min() < lowest or labels.max() >= spec.outputs:
            raise InputError("T", f"integer labels in {lowest}..{spec.outputs - 1}", labels.tolist(), source=source)
        return labels.astype(np.int64)
    array = real_array(T, "T", dtype=spec.dtype, source=source, allow_nonfinite=allow_nonfinite, expected="numbers")
    shape = spec.target_shape(batch)
    if array.ndim == 1 and (
        (array.shape[0] == spec.outputs and batch == 1) or (spec.outputs == 1 and array.shape[0] == batch)
    ):
        array = array.reshape(shape)
    if array.shape != shape:
        raise InputError("T", f"shape {shape} for layout {spec.layout}", f"shape {array.shape}", source=source)
    if spec.loss.kind in ("softmax_cross_entropy", "binary_cross_entropy") and (array.min() < 0 or array.max() > 1):
        raise InputError(
            "T",
            f"targets in [0, 1] for {spec.loss.kind}",
            f"values in [{array.min():g}, {array.max():g}]",
            source=source,
        )
    return array
