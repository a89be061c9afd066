"""The numbers of a typed-network case, drawn from its seed away from kinks.

Parameters from :func:`refbp.sequential.init_parameters` with the case's sub-seed
(``γ`` near 1), inputs ``N(0, 1)`` (or the first layer's ``draw_inputs``: indices for an
embedding), targets as for dense cases, and for every eval-mode
batchnorm layer running statistics ``running_mean ~ N(0, 0.3²)``, ``running_var ~ U(0.5, 1.5)``.
Dropout masks are the spec's seeded draws. A draw whose ReLU pre-activations or max-pool
windows come within ``margin`` of a kink (:func:`oracle.fd_typed.kink_clearance`) is
replaced by the next sub-seed's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from oracle.fd_typed import kink_clearance
from refbp.sequential import init_parameters

_MAX_REDRAWS = 50


def _draw(spec: Any, batch: int, seed: int, attempt: int) -> Any:
    from oracle.cases import CaseData, draw_targets

    params = init_parameters(spec, seed=[seed, attempt])  # type: ignore[arg-type]
    rng = np.random.default_rng([seed, attempt, 1])
    dtype = np.dtype(spec.dtype)
    first = spec.layers[0]
    if hasattr(first, "draw_inputs"):  # a layer that takes other than real numbers (embedding indices)
        X = first.draw_inputs(rng, spec.input_shape(batch)).astype(dtype)
    else:
        X = rng.standard_normal(spec.input_shape(batch)).astype(dtype)
    T = draw_targets(spec, batch, seed, rng)
    buffers = {}
    for number, layer in enumerate(spec.layers, start=1):
        if layer.type == "batchnorm" and layer.mode == "eval":
            channels = spec.shapes[number - 1][0]
            buffers[f"running_mean{number}"] = (rng.standard_normal(channels) * 0.3).astype(dtype)
            buffers[f"running_var{number}"] = rng.uniform(0.5, 1.5, channels).astype(dtype)
    return CaseData(params=params, X=X, T=T, buffers=buffers)


def draw_typed(spec: Any, batch: int, seed: int, *, avoid_kinks: bool, margin: float) -> Any:
    """A :class:`~oracle.cases.CaseData` for a typed network (see the module docstring)."""
    data = _draw(spec, batch, seed, 0)
    if avoid_kinks:
        for attempt in range(1, _MAX_REDRAWS + 1):
            if kink_clearance(spec, data.params, data.X, data.buffers) >= margin:
                break
            data = _draw(spec, batch, seed, attempt)
    return data
