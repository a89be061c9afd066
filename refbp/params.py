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
from refbp.fields import integer, one_of
from refbp.real_arrays import real_array
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
    one_of(scheme, INIT_SCHEMES, "scheme")
    if not isinstance(spec, NetworkSpec):  # a typed network: see refbp.sequential.init_parameters
        from refbp.sequential import init_parameters as init_typed
        from refbp.sequential_spec import SequentialSpec

        if not isinstance(spec, SequentialSpec):
            raise InputError("spec", "a NetworkSpec or SequentialSpec", type(spec).__name__, source="init_parameters")
        return init_typed(spec, integer(seed, "seed", minimum=0, wording="a seed >= 0"))
    rng = np.random.default_rng(integer(seed, "seed", minimum=0, wording="a seed >= 0"))
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
    spec: NetworkSpec,
    values: Mapping[str, Any],
    *,
    source: str = "parameters",
    dtype: str | None = None,
    allow_nonfinite: bool = False,
) -> Parameters:
    """Validate explicit values (nested lists or arrays) against the spec.

    Every parameter of the spec must be given, with exactly its shape, as real numbers
    (strings, booleans, complex numbers and objects are refused), finite unless
    ``allow_nonfinite``; a shared bias may be given as a plain number. Unknown names are
    rejected. Arrays are new copies in ``dtype`` (the spec's dtype by default).
    """
    if not isinstance(spec, NetworkSpec):
        raise InputError("spec", "a NetworkSpec", type(spec).__name__, source=source)
    if not isinstance(values, Mapping):
        raise InputError("", "a mapping {W1: ..., b1: ...}", type(values).__name__, source=source)
    shapes = spec.parameter_shapes()
    given: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise InputError(repr(key), "parameter names as strings (W1, b1, …)", type(key).__name__, source=source)
        name = canonical_name(key)
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
        params[name] = _parameter(given, name, shape, dtype or spec.dtype, source, allow_nonfinite)
    return params


def checked_parameters(
    spec: NetworkSpec, params: Any, *, allow_nonfinite: bool = False, source: str = "params"
) -> Parameters:
    """``params`` as arrays, once each parameter of ``spec`` is there with its shape and real, finite numbers.

    What the forward and backward passes use on their checking path: values keep their
    dtype (no conversion, unlike :func:`load_parameters`), and names the spec does not
    use are ignored.
    """
    if not isinstance(params, Mapping):
        raise InputError("", "a mapping {W1: ..., b1: ...}", type(params).__name__, source=source)
    out: Parameters = {}
    for name, shape in spec.parameter_shapes().items():
        out[name] = _parameter(params, name, shape, None, source, allow_nonfinite)
    return out


def _parameter(
    given: Mapping[str, Any], name: str, shape: tuple[int, ...], dtype: str | None, source: str, allow_nonfinite: bool
) -> np.ndarray:
    """``given[name]`` as an array of ``shape`` (a plain number for a shared bias) of real numbers in ``dtype``."""
    if name not in given:
        raise InputError(name, f"an array of shape {shape}", "missing", source=source)
    array = real_array(
        given[name],
        name,
        dtype=dtype,
        source=source,
        allow_nonfinite=allow_nonfinite,
        expected=f"numbers in an array of shape {shape}",
    )
    if shape == (1,) and array.ndim == 0:
        array = array.reshape(1)
    if array.shape != shape:
        raise InputError(name, f"shape {shape}", f"shape {array.shape}", source=source)
    return array


def copy_parameters(params: Mapping[str, np.ndarray]) -> Parameters:
    return {name: np.array(value, copy=True) for name, value in params.items()}
