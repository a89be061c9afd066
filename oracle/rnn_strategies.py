"""Hypothesis strategies for small recurrent networks: the ``rnn`` family of the sweep.

A drawn network reads ``T`` steps (1…``max_steps``) of integer indices through an
``embedding`` or of ``D`` real numbers, runs one or two ``rnn`` / ``lstm`` layers (either LSTM
gate order) of 1…``max_width`` units, then either

* a ``temporal_affine`` layer of 2…4 scores per step under the masked
  ``temporal_softmax_cross_entropy`` (about one step in four masked out), or
* ``last_step`` and a dense output layer under one of the flat losses (sequence to one).

``T`` is drawn first, so a failing case shrinks to fewer steps before anything else; then
toward embedding input, ``rnn`` before ``lstm``, one recurrent layer, narrow widths, batch 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from oracle.cases import Case
from oracle.cnn_strategies import dense_heads, penalties
from refbp.layers.embedding import Embedding
from refbp.layers.last_step import LastStep
from refbp.layers.lstm import GATE_ORDERS, LSTM
from refbp.layers.rnn import RNN
from refbp.layers.temporal_affine import TemporalAffine
from refbp.sequential_spec import SequentialSpec
from refbp.spec import LOSSES, REDUCTIONS, SEQUENCE_LOSSES, L2Spec, LossSpec

__all__ = ["RECURRENT_LAYERS", "rnn_cases", "rnn_specs"]

RECURRENT_LAYERS = ("rnn", "lstm")


def _bounded(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"rnn_specs: {name}: expected a positive integer, got {value!r}")
    return value


@st.composite
def rnn_specs(
    draw: st.DrawFn,
    *,
    max_steps: int = 4,
    max_width: int = 3,
    max_recurrent: int = 2,
    layers: Sequence[str] = RECURRENT_LAYERS,
    inputs: Sequence[str] = ("embedding", "dense"),
    losses: Sequence[str] = (*SEQUENCE_LOSSES, *LOSSES),
    reductions: Sequence[str] = REDUCTIONS,
    l2: bool = True,
    dtype: str = "float64",
) -> SequentialSpec:
    """A valid recurrent :class:`SequentialSpec` (see the module docstring)."""
    for name, value in (("max_steps", max_steps), ("max_width", max_width), ("max_recurrent", max_recurrent)):
        _bounded(name, value)
    chosen = [layers] if isinstance(layers, str) else list(layers)
    if not chosen or any(kind not in RECURRENT_LAYERS for kind in chosen):
        raise ValueError(f"rnn_specs: layers: expected a non-empty list from rnn, lstm, got {chosen!r}")
    known = (*SEQUENCE_LOSSES, *LOSSES)
    if not losses or any(kind not in known for kind in losses):
        raise ValueError(f"rnn_specs: losses: expected a non-empty list from {', '.join(known)}, got {losses!r}")
    if not inputs or any(kind not in ("embedding", "dense") for kind in inputs):
        raise ValueError(f"rnn_specs: inputs: expected a non-empty list from embedding, dense, got {inputs!r}")
    steps = draw(st.integers(1, max_steps))
    body: list[Any] = []
    if draw(st.sampled_from(list(inputs))) == "embedding":
        body.append(Embedding(vocab=draw(st.integers(2, 5)), dim=draw(st.integers(1, max_width))))
        shape: tuple[int, ...] = (steps,)
    else:
        shape = (steps, draw(st.integers(1, max_width)))
    for _ in range(draw(st.integers(1, max_recurrent))):
        hidden = draw(st.integers(1, max_width))
        if draw(st.sampled_from(chosen)) == "rnn":
            body.append(RNN(hidden))
        else:
            body.append(LSTM(hidden, draw(st.sampled_from(GATE_ORDERS))))
    kind = draw(st.sampled_from(list(losses)))
    if kind in SEQUENCE_LOSSES:
        body.append(TemporalAffine(draw(st.integers(2, 4))))
        loss = LossSpec(kind=kind, reduction=draw(st.sampled_from(list(reductions))), targets="index")
    else:
        output, loss = draw(dense_heads([kind], reductions))
        body += [LastStep(), output]
    penalty = draw(penalties()) if l2 else L2Spec()
    return SequentialSpec(inputs=shape, layers=tuple(body), loss=loss, l2=penalty, dtype=dtype)


@st.composite
def rnn_cases(
    draw: st.DrawFn,
    specs: st.SearchStrategy[SequentialSpec] | None = None,
    *,
    max_batch: int = 3,
    dtype: str = "float64",
    **spec_bounds: Any,
) -> Case:
    """A :class:`Case` of the ``rnn`` family: a spec (``specs``, or :func:`rnn_specs` with ``spec_bounds``),
    a batch of 1…``max_batch``, a seed."""
    spec = draw(specs if specs is not None else rnn_specs(dtype=dtype, **spec_bounds))
    return Case(spec=spec, batch=draw(st.integers(1, max_batch)), seed=draw(st.integers(0, 2**16)))
