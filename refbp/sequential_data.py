"""Validation of what a typed network runs on: inputs ``X (N, *inputs)``, parameters and buffers.

Data definitions only (no math), shared by refbp, the torch twin and finite differences.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from refbp.errors import InputError
from refbp.layers.names import split_name
from refbp.sequential_spec import SequentialSpec

Buffers = Mapping[str, Any]


def as_image_inputs(spec: SequentialSpec, X: Any, *, source: str = "inputs") -> np.ndarray:
    """``X`` as an array of the spec's dtype, shape ``(N, *spec.inputs)`` (one example may omit ``N``)."""
    try:
        array = np.array(X, dtype=spec.dtype)
    except (TypeError, ValueError):
        raise InputError("X", "numbers", X, source=source) from None
    if array.shape == spec.inputs:
        array = array[None]
    if array.shape[1:] != spec.inputs or array.ndim < 2 or array.shape[0] < 1:
        expected = "(N, " + ", ".join(map(str, spec.inputs)) + ")"
        raise InputError("X", f"shape {expected}", f"shape {array.shape}", source=source)
    if not np.all(np.isfinite(array)):
        raise InputError("X", "finite numbers", "NaN or infinity", source=source)
    return array


def check_parameters(spec: SequentialSpec, params: Mapping[str, Any], *, source: str = "parameters") -> dict:
    """Arrays of the spec's dtype with exactly ``spec.parameter_shapes()``."""
    if not isinstance(params, Mapping):
        raise InputError("", "a mapping {W1: ..., b1: ...}", type(params).__name__, source=source)
    shapes = spec.parameter_shapes()
    unknown = sorted(set(map(str, params)) - set(shapes))
    if unknown:
        raise InputError(
            unknown[0], "a parameter of the spec (" + ", ".join(shapes) + ")", "unknown name", source=source
        )
    checked = {}
    for name, shape in shapes.items():
        if name not in params:
            raise InputError(name, f"an array of shape {shape}", "missing", source=source)
        array = np.asarray(params[name], dtype=spec.dtype)
        if array.shape != shape:
            raise InputError(name, f"shape {shape}", f"shape {array.shape}", source=source)
        if not np.all(np.isfinite(array)):
            raise InputError(name, "finite numbers", "NaN or infinity", source=source)
        checked[name] = array
    return checked


def layer_buffers(spec: SequentialSpec, buffers: Buffers | None, batch: int) -> list[dict[str, np.ndarray]]:
    """The buffers of each layer by kind, validated (running statistics by shape; masks by the layer)."""
    buffers = dict(buffers or {})
    allowed = spec.buffer_shapes()
    masks = {f"mask{n}" for n, layer in enumerate(spec.layers, start=1) if layer.type == "dropout"}
    out: list[dict[str, np.ndarray]] = [{} for _ in spec.layers]
    for name, value in buffers.items():
        parsed = split_name(str(name))
        if parsed is None or (name not in allowed and name not in masks):
            names = ", ".join([*allowed, *sorted(masks)]) or "none"
            raise InputError(str(name), f"a buffer of the spec ({names})", "unknown name", source="buffers")
        array = np.asarray(value)
        if name in allowed:
            array = np.asarray(value, dtype=spec.dtype)
            if array.shape != allowed[name] or not np.all(np.isfinite(array)):
                raise InputError(
                    str(name), f"finite numbers of shape {allowed[name]}", f"shape {array.shape}", source="buffers"
                )
        out[parsed[1] - 1][parsed[0]] = array
    return out
