"""The families of random networks a sweep draws from: ``mlp`` (dense), ``cnn`` (convolutional) and
``rnn`` (recurrent: :mod:`oracle.rnn_strategies`).

``family_cases(["mlp", "cnn"])`` draws from either (hypothesis shrinks toward the first
family listed); the ``mlp`` bounds (``max_depth``, ``max_width``, …) apply to dense networks only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from oracle.cases import Case
from oracle.cnn_strategies import cnn_cases
from oracle.rnn_strategies import rnn_cases
from oracle.strategies import cases
from refbp.spec import NetworkSpec

FAMILIES = ("mlp", "cnn", "rnn")
_TYPED_CASES = {"cnn": cnn_cases, "rnn": rnn_cases}


@st.composite
def _given_specs(draw: st.DrawFn, specs: st.SearchStrategy, *, dtype: str, **bounds: Any) -> Case:
    """A case of a drawn spec: batch and seed as its family draws them (typed networks: :func:`cnn_cases`)."""
    spec = draw(specs)
    family = cases if isinstance(spec, NetworkSpec) else cnn_cases
    return draw(family(st.just(spec), dtype=dtype, **bounds))


def parse_families(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"mlp,cnn"`` (or a list) → the families, every family for ``None``; ``ValueError`` naming an unknown one."""
    if text is None:
        return FAMILIES
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    if not names or any(name not in FAMILIES for name in names):
        raise ValueError(f"families: expected a comma-separated list from {', '.join(FAMILIES)}, got {text!r}")
    return tuple(dict.fromkeys(names))


def family_cases(families: Sequence[str] | None = None, *, dtype: str = "float64", **mlp_bounds: Any):
    """A strategy of :class:`~oracle.cases.Case` drawn from ``families`` (default: every family)."""
    chosen = parse_families(families)
    if "specs" in mlp_bounds:  # a caller's own spec strategy is the whole draw, of whichever family
        return _given_specs(dtype=dtype, **mlp_bounds)
    strategies = [
        cases(dtype=dtype, **mlp_bounds) if name == "mlp" else _TYPED_CASES[name](dtype=dtype) for name in chosen
    ]
    return strategies[0] if len(strategies) == 1 else st.one_of(strategies)
