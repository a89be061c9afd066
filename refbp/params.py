"""Parameters: named arrays ``W1, b1, W2, …`` (1-based, as in the notes).

Parameters are a plain ordered ``dict[str, np.ndarray]`` whose keys and shapes are
given by :meth:`NetworkSpec.parameter_shapes`. ``layer2.W`` / ``layer2.b`` are accepted
as aliases of ``W2`` / ``b2`` wherever values are loaded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from refbp.errors import InputError
from refbp.spec import NetworkSpec

Parameters = dict[str, np.ndarray]

INIT_SCHEMES = ("xavier", "he", "normal")
_DOTTED = re.compile(r"^layer(\d+)\.(W|b)$")


def canonical_name(name: str) -> str:
    """``"layer2.W"`` → ``"W2"``; canonical names pass through unchanged."""
    match = _DOTTED.match(name)
    return f"{match.group(2)}{match.group(1)}" if match else name


def init_parameters(spec: NetworkSpec, seed: int = 0, scheme: str = "xavier") -> Parameters:
    """Seeded random parameters.

    ``xavier``: ``W ~ N(0, 2/(n_in + n_out))``; ``he``: ``W ~ N(0, 2/n_in)``;
    ``normal``: ``W ~ N(0, 1)``. Biases are drawn from ``N(0, 0.1²)`` so that they are
    exercised by the gradient checks rather than sitting at zero.
    """
    if scheme not in INIT_SCHEMES:
        raise InputError("init", "one of " + ", ".join(INIT_SCHEMES), scheme)
    if not isinstance(spec, NetworkSpec):  # a typed network: see refbp.sequential.init_parameters
        from refbp.sequential import init_parameters as init_typed

        return init_typed(spec, seed)
    rng = np.random.default_rng(seed)
    dtype = np.dtype(spec.dtype)
    params: Parameters = {}
    for name, shape in spec.parameter_shapes().items():
        layer = int(name[1:])
        n_in, n_out = spec.widths[layer - 1], spec.widths[layer]
        if name.startswith("W"):
            std = {"xavier": math.sqrt(2.0 / (n_in + n_out)), "he": math.sqrt(2.0 / n_in), "normal": 1.0}[scheme]
        else:
            std = 0.1
        params[name] = (rng.standard_normal(shape) * std).astype(dtype)
    return params


def load_parameters(
    spec: NetworkSpec, values: Mapping[str, Any], *, source: str = "parameters", dtype: str | None = None
) -> Parameters:
    """Validate explicit values (nested lists or arrays) against the spec.

    Every parameter of the spec must be given, with exactly its shape; a shared bias may
    be given as a plain number. Unknown names are rejected. Arrays are new copies in
    ``dtype`` (the spec's dtype by default).
    """
    if not isinstance(values, Mapping):
        raise InputError("", "a mapping {W1: ..., b1: ...}", type(values).__name__, source=source)
    shapes = spec.parameter_shapes()
    given: dict[str, Any] = {}
    for key, value in values.items():
        name = canonical_name(str(key))
        if name in given:
            raise InputError(
                str(key), f"each parameter once ({key} and {name} name the same one)", "given twice", source=source
            )
        given[name] = value
    unknown = sorted(set(given) - set(shapes))
    if unknown:
        raise InputError(
            unknown[0], "a parameter of the spec (" + ", ".join(shapes) + ")", "unknown name", source=source
        )
    params: Parameters = {}
    for name, shape in shapes.items():
        if name not in given:
            raise InputError(name, f"an array of shape {shape}", "missing", source=source)
        try:
            array = np.array(given[name], dtype=dtype or spec.dtype)
        except (TypeError, ValueError):
            raise InputError(name, f"numbers in an array of shape {shape}", given[name], source=source) from None
        if shape == (1,) and array.ndim == 0:
            array = array.reshape(1)
        if array.shape != shape:
            raise InputError(name, f"shape {shape}", f"shape {array.shape}", source=source)
        if not np.all(np.isfinite(array)):
            raise InputError(name, "finite numbers", "NaN or infinity", source=source)
        params[name] = array
    return params


def copy_parameters(params: Mapping[str, np.ndarray]) -> Parameters:
    return {name: np.array(value, copy=True) for name, value in params.items()}
