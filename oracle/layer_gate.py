"""A gate for one hand-written layer: ``assert_layer_matches(forward, backward, layer=…)``.

Checks a layer written in either calling style of :mod:`oracle.layer_styles` (CS231n's
``(out, cache)`` pairs or plain functions) on random shapes and parameters against the torch
twin of that layer (:mod:`oracle.twin`, gradients by autograd of ``Σ out ⊙ dout``)::

    from oracle.layer_gate import assert_layer_matches
    from mycourse.layers import conv_forward_naive, conv_backward_naive

    def test_conv():
        assert_layer_matches(conv_forward_naive, conv_backward_naive, layer="conv2d")

``layer`` is a type name or a layer table fixing some fields (``{"type": "conv2d", "stride": 1}``);
the rest are drawn. A failure raises :class:`LayerMismatch` (an ``AssertionError``) with a
compact table, the smallest failing case hypothesis finds and a line that rebuilds its inputs.
Dropout is compared through the mask the layer's own forward stored in its cache; batchnorm's
updated running statistics are compared in train mode. ``layer="rnn_step"`` and ``"lstm_step"``
check one time step (random ``prev_h``, ``prev_c`` and ``dnext_*``; see :mod:`oracle.layer_steps`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from oracle.compare import FAILING_STATUSES, Row, compare_arrays, error_row
from oracle.layer_steps import STEP_CALLERS, STEP_LAYERS, materialize_step, reference_step
from oracle.layer_styles import CALLERS, STYLES
from oracle.strategies import seeded_examples
from oracle.twin.sequential import TWINS
from refbp.errors import InputError
from refbp.layers.registry import LAYER_TYPES, layer_from_dict


class LayerMismatch(AssertionError):  # noqa: N818 - named like BackpropMismatch
    """A hand-written layer disagrees with the reference; the message says where and how to replay it."""


@dataclass(frozen=True)
class LayerCase:
    """A layer table, an input shape ``(N, …)`` and a seed for the numbers."""

    layer: Mapping[str, Any]
    shape: tuple[int, ...]
    seed: int

    @property
    def is_step(self) -> bool:
        """One time step of a recurrent layer (``rnn_step``, ``lstm_step``)."""
        return self.layer.get("type") in STEP_LAYERS

    def spec(self) -> Any:
        """The layer's spec (a step's is its recurrent layer's: ``rnn`` for ``rnn_step``)."""
        table = dict(self.layer)
        if self.is_step:
            table["type"] = STEP_LAYERS[table["type"]]
        return layer_from_dict(table, "layer")

    def materialize(self) -> tuple[np.ndarray, dict[str, np.ndarray], Any, dict[str, np.ndarray]]:
        """``(x, params by kind, dout, buffers)`` drawn from the seed; for a step ``(x, {"prev_h", …, "Wx",
        "Wh", "b"}, {"dnext_h", …}, {})`` (see :func:`oracle.layer_steps.materialize_step`)."""
        if self.is_step:
            return materialize_step(self.spec(), self.shape, self.seed)
        layer, rng = self.spec(), np.random.default_rng(self.seed)
        x = rng.standard_normal(self.shape)
        params = {}
        for kind, shape in layer.parameter_shapes(self.shape[1:]).items():
            params[kind] = rng.standard_normal(shape) * (0.5 if kind == "W" else 0.3) + (kind == "gamma")
        out_shape = (self.shape[0], *layer.output_shape(self.shape[1:], "layer"))
        dout = rng.standard_normal(out_shape)
        buffers = {}
        for kind, shape in layer.buffer_shapes(self.shape[1:]).items():
            buffers[kind] = rng.standard_normal(shape) * 0.3 if kind == "running_mean" else rng.uniform(0.5, 1.5, shape)
        if layer.type == "dropout":
            buffers["mask"] = np.random.default_rng([self.seed, 1]).random(self.shape) < layer.keep_prob
        return x, params, dout, buffers

    def to_json(self) -> str:
        return json.dumps({"layer": dict(self.layer), "shape": list(self.shape), "seed": self.seed})

    @classmethod
    def from_json(cls, text: str) -> LayerCase:
        data = json.loads(text)
        return cls(layer=data["layer"], shape=tuple(data["shape"]), seed=data["seed"])


def _fits(size: int, kernel: int, stride: int, pad: int) -> bool:
    """The window tiles the padded input exactly (the course's naive loops assert this)."""
    return size + 2 * pad >= kernel and (size + 2 * pad - kernel) % stride == 0


@st.composite
def layer_cases(draw: st.DrawFn, layer: str | Mapping[str, Any], *, spatial: bool | None = None) -> LayerCase:
    """A :class:`LayerCase` for ``layer`` (a type name, or a table of fixed fields)."""
    fixed = {"type": layer} if isinstance(layer, str) else dict(layer)
    kind = fixed.get("type", "dense")
    if kind not in LAYER_TYPES and kind not in STEP_LAYERS:
        known = ", ".join((*LAYER_TYPES, *STEP_LAYERS))
        raise InputError("layer", "one of " + known, kind, source="assert_layer_matches")
    batch, channels = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    table: dict[str, Any] = {}
    if kind == "conv2d":
        k, s, p = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
        k, s, p = fixed.get("kernel", k), fixed.get("stride", s), fixed.get("padding", p)
        sizes = [n for n in range(1, 8) if _fits(n, k, s, p)]
        shape = (batch, channels, draw(st.sampled_from(sizes)), draw(st.sampled_from(sizes)))
        table = {"filters": draw(st.integers(1, 3)), "kernel": k, "stride": s, "padding": p}
    elif kind in ("max_pool2d", "avg_pool2d"):
        k = fixed.get("kernel", draw(st.integers(1, 3)))
        s = fixed.get("stride", draw(st.integers(1, 2)))
        sizes = [n for n in range(1, 8) if _fits(n, k, s, 0)]
        shape = (batch, channels, draw(st.sampled_from(sizes)), draw(st.sampled_from(sizes)))
        table = {"kernel": k, "stride": s}
    elif kind in ("rnn", "lstm"):  # sequences (N, T, D): T of 1 to 4 steps
        shape = (batch, draw(st.integers(1, 4)), draw(st.integers(1, 3)))
        table = {"hidden": draw(st.integers(1, 3))}
    elif kind in STEP_LAYERS:  # one step: x (N, D), prev_h (N, H)
        shape = (batch, draw(st.integers(1, 3)))
        table = {"hidden": draw(st.integers(1, 3))}
    elif kind == "groupnorm":
        groups = fixed.get("groups", draw(st.integers(1, 3)))
        shape = (batch, groups * channels, draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        table = {"groups": groups}
    else:
        image = draw(st.booleans()) if spatial is None else spatial
        shape = (batch, channels + 1, 2, 2) if image else (batch, draw(st.integers(1, 5)))
        if kind == "batchnorm":
            shape = (max(batch, 2), *shape[1:])
            table = {"mode": draw(st.sampled_from(["train", "eval"])), "momentum": draw(st.sampled_from([0.1, 0.5]))}
        elif kind == "dropout":
            mode = draw(st.sampled_from(["train", "eval"]))
            table = {"keep_prob": draw(st.sampled_from([0.5, 0.8])), "mode": mode, "seed": draw(st.integers(0, 99))}
        elif kind == "layernorm":
            shape = (shape[0], max(shape[1], 2), *shape[2:])
    if "drop_prob" in fixed:
        table.pop("keep_prob", None)
    table.update(fixed)
    table["type"] = kind
    case = LayerCase(layer=table, shape=shape, seed=draw(st.integers(0, 2**16)))
    spec = case.spec()  # validates the fixed fields
    spec.output_shape((1, *shape[1:]) if case.is_step else shape[1:], "layer")
    return case


def reference(case: LayerCase, buffers: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``out``, ``dx``, ``d<param>`` (and updated running statistics) of the torch twin of the layer; for a
    step ``next_h``, ``dx``, ``dprev_h``, … (:func:`oracle.layer_steps.reference_step`)."""
    layer = case.spec()
    x_np, params_np, dout_np, _ = case.materialize()
    if case.is_step:
        return reference_step(layer, x_np, params_np, dout_np)
    x = torch.tensor(x_np, requires_grad=True)
    params = {kind: torch.tensor(value, requires_grad=True) for kind, value in params_np.items()}
    out, state = TWINS[layer.type](layer, params, x, dict(buffers))
    (out * torch.tensor(dout_np)).sum().backward()
    result = {"out": out.detach().numpy(), "dx": x.grad.numpy()}
    result.update({f"d{kind}": value.grad.numpy() for kind, value in params.items()})
    result.update({name: value.numpy() for name, value in state.items()})
    return result


def check_layer_case(forward: Callable, backward: Callable, case: LayerCase, style: str, name: str = "") -> list[Row]:
    """Rows ``impl~torch`` for every quantity of one case (one ``error`` row when the layer raises)."""
    layer = case.spec()
    x, params, dout, buffers = case.materialize()
    label = name or "case"
    try:
        if case.is_step:
            copies = {k: v.copy() for k, v in dout.items()}
            mine = STEP_CALLERS[style](
                forward, backward, layer, x.copy(), {k: v.copy() for k, v in params.items()}, copies
            )
        else:
            mine = CALLERS[style](
                forward, backward, layer, x.copy(), {k: v.copy() for k, v in params.items()}, dout.copy(), buffers
            )
    except Exception as err:  # the layer under test may fail in any way; that is a finding
        return [error_row(label, 1, "impl~torch", "float64", f"{type(err).__name__}: {err}".splitlines()[0])]
    if "mask" in mine:
        buffers = {**buffers, "mask": mine["mask"]}
    theirs = reference(case, buffers)
    return [
        compare_arrays(mine.get(q), theirs[q], case=label, layer=1, quantity=q, pair="impl~torch", dtype="float64")
        for q in theirs
    ]


def _failing(rows: list[Row]) -> bool:
    return any(r.status in FAILING_STATUSES for r in rows)


def assert_layer_matches(
    forward: Callable,
    backward: Callable,
    *,
    layer: str | Mapping[str, Any],
    style: str = "cs231n",
    cases: int = 20,
    seed: int = 0,
    spatial: bool | None = None,
) -> None:
    """Check one hand-written layer on ``cases`` random cases; raise :class:`LayerMismatch` on a difference.

    ``spatial`` fixes the input of a batchnorm, layernorm or dropout to images (True) or flat
    vectors (False); by default both are drawn.
    """
    if style not in STYLES:
        raise InputError("style", "one of " + ", ".join(STYLES), style, source="assert_layer_matches")
    if isinstance(cases, bool) or not isinstance(cases, int) or cases < 1:
        raise InputError("cases", "a positive integer", cases, source="assert_layer_matches")
    strategy = layer_cases(layer, spatial=spatial)
    failures: list[tuple[LayerCase, list[Row]]] = []
    total = [0]

    @seeded_examples(strategy, cases, seed)
    def generate(case: LayerCase) -> None:
        total[0] += 1
        rows = check_layer_case(forward, backward, case, style, f"c{total[0]:04d}")
        if _failing(rows):
            failures.append((case, rows))

    generate()
    if not failures:
        return
    kind = layer if isinstance(layer, str) else layer.get("type", "dense")
    try:
        smallest = find(
            strategy,
            lambda c: _failing(check_layer_case(forward, backward, c, style)),
            settings=settings(
                max_examples=max(cases, 100), database=None, deadline=None, suppress_health_check=list(HealthCheck)
            ),
            random=random.Random(seed),
        )
    except NoSuchExample:
        smallest = failures[0][0]
    rows = check_layer_case(forward, backward, smallest, style, "shrunk")
    lines = [f"layer gate ({kind}, style {style}): {len(failures)} of {total[0]} cases diverge (seed {seed})"]
    lines.append(f"smallest failing case: input {smallest.shape}, {json.dumps(dict(smallest.layer))}")
    lines.append(f"  {'quantity':<14}{'status':<10}{'max rel err':<14}tolerance")
    for row in rows:
        err = f"{row.max_rel_err:.1e}" if row.max_rel_err == row.max_rel_err else "-"
        tol = f"rtol {row.rtol:.0e}, atol {row.atol:.1e}" if row.rtol == row.rtol else row.message
        lines.append(f"  {row.quantity:<14}{row.status:<10}{err:<14}{tol}")
    lines.append(
        "replay: from oracle.layer_gate import LayerCase; "
        f"x, params, dout, buffers = LayerCase.from_json({smallest.to_json()!r}).materialize()"
    )
    raise LayerMismatch("\n".join(lines))
