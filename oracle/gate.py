"""A correctness gate for backprop implementations: one assertion that explains itself.

:func:`assert_backprop_matches` checks an implementation three ways (it, the torch twin,
finite differences) on random cases and raises :class:`BackpropMismatch` — an
``AssertionError`` — whose message is a compact table of where the gradients diverge
and the smallest failing case with its ``refbp replay`` command::

    from oracle.gate import assert_backprop_matches

    def test_my_backprop():
        assert_backprop_matches(my_backprop, cases=30, seed=0)

Without a ``spec`` the cases are random networks (:func:`oracle.sweep.run_sweep`) inside
the implementation's support declaration (:mod:`oracle.supports`: ``supports=`` or
``REFBP_SUPPORTS`` beside the function), narrowed by bounds such as ``max_depth=3``; with a
``spec`` they are random parameters and batches of that network. An implementation raises
:class:`Unsupported` for a case it does not handle; the case is skipped and counted.

An implementation is any callable ``(spec, params, X, T)`` returning one of the forms
:func:`oracle.check.result_quantities` accepts; an :class:`Adapter` wraps a callable
that provides only some quantities (say, parameter gradients from a grading interface).

A gate run is kept as a *record* (:mod:`oracle.gate_records`), and a failing one explains
itself with :func:`oracle.gate_message.mismatch_message`.
"""

from __future__ import annotations

import inspect
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from oracle.gate_message import (
    MESSAGE_CASES,
    MESSAGE_ROWS,
    divergence_hint,
    mismatch_message,
    replay_command,
    row_summary,
)
from oracle.gate_records import (
    failing_rows,
    merge_records,
    record_markdown,
    record_meta,
    record_passed,
    report_stem,
    sweep_record,
    unsupported_cases,
    unsupported_verdict,
    write_record_reports,
)
from oracle.supports import DEFAULT_MAX_UNSUPPORTED, Supports, Unsupported, as_supports, declared_supports, resolve
from refbp.errors import InputError
from refbp.sequential_spec import SequentialSpec
from refbp.spec import NetworkSpec
from refbp.trace import QUANTITIES

__all__ = [  # the gate's API, records and message helpers included (they live in gate_records, gate_message)
    "MESSAGE_CASES",
    "MESSAGE_ROWS",
    "Adapter",
    "BackpropMismatch",
    "Supports",
    "Unsupported",
    "assert_backprop_matches",
    "divergence_hint",
    "failing_rows",
    "gate_strategy",
    "implementation_ref",
    "merge_records",
    "mismatch_message",
    "record_markdown",
    "record_meta",
    "record_passed",
    "replay_command",
    "replay_environment",
    "report_stem",
    "row_summary",
    "run_gate",
    "sweep_record",
    "unsupported_cases",
    "unsupported_verdict",
    "write_record_reports",
]

DEFAULT_CASES = 30


@dataclass(frozen=True)
class Adapter:
    """An implementation under test: a callable and the quantities it provides.

    ``func(spec, params, X, T)`` returns any form :func:`oracle.check.result_quantities`
    accepts. ``provides`` (quantity names of :mod:`refbp.trace`: ``"dL/dW"``,
    ``"dL/db"``, ``"dL/dx"``, ``"delta"``, …) limits the comparison to those quantities;
    ``None`` compares whatever the result form holds. ``name`` labels the rows
    (``"impl~torch"``); ``ref`` (``MODULE:FUNCTION``) is how a replay command loads it;
    ``supports`` (a :class:`Supports`, a dict of its fields or a TOML path) is what it supports.
    """

    func: Callable[..., Any]
    provides: frozenset[str] | None = None
    name: str = "impl"
    ref: str | None = None
    supports: Any = None

    def __post_init__(self) -> None:
        if self.provides is not None:
            provides = frozenset(self.provides)
            unknown = sorted(provides - set(QUANTITIES))
            if unknown or not provides:
                expected = "a non-empty subset of " + ", ".join(QUANTITIES)
                raise InputError("provides", expected, sorted(provides), source="Adapter")
            object.__setattr__(self, "provides", provides)
        if not callable(self.func):
            raise InputError("func", "a callable func(spec, params, X, T)", type(self.func).__name__, source="Adapter")
        if self.supports is not None:
            object.__setattr__(self, "supports", as_supports(self.supports, source="Adapter.supports"))

    def __call__(self, spec: NetworkSpec, params: Mapping[str, Any], X: Any, T: Any) -> Any:
        return self.func(spec, params, X, T)


def implementation_ref(impl: Callable[..., Any]) -> str | None:
    """``MODULE:FUNCTION`` that imports ``impl`` again, or ``None`` (a lambda, a local function, ``__main__``)."""
    if isinstance(impl, Adapter):
        return impl.ref if impl.ref is not None else implementation_ref(impl.func)
    module, name = getattr(impl, "__module__", None), getattr(impl, "__qualname__", "")
    if not module or module == "__main__" or not name or "<" in name or not inspect.isroutine(impl):
        return None
    return f"{module}:{name}"


class BackpropMismatch(AssertionError):  # noqa: N818 - the name the gate's users catch
    """The gate found gradients that disagree. ``str()`` is the compact table of :func:`mismatch_message`.

    ``record`` is the gate run (see :func:`sweep_record`); ``failing_rows`` its failing rows.
    """

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = dict(record)
        super().__init__(mismatch_message(record))

    @property
    def failing_rows(self) -> list[dict[str, Any]]:
        return failing_rows(self.record)


# --------------------------------------------------------------------------- running the gate


_WHERE = "assert_backprop_matches"


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(name, f"an integer >= {minimum}", value, source=_WHERE)
    return int(value)


def _check_options(impl: Any, cases: Any, seed: Any, dtype: Any, fd: Any, shard: Any, max_shrinks: Any, limit: Any):
    """Every run option checked up front; a bad one raises :class:`refbp.InputError` naming it."""
    from oracle.check import FD_MODES
    from refbp.spec import DTYPES

    if not callable(impl):
        raise InputError("impl", "a callable impl(spec, params, X, T)", type(impl).__name__, source=_WHERE)
    cases, seed, max_shrinks = (
        _check_int("cases", cases, 1),
        _check_int("seed", seed, 0),
        _check_int("max_shrinks", max_shrinks, 0),
    )
    if dtype is not None and dtype not in DTYPES:
        raise InputError("dtype", "one of " + ", ".join(DTYPES), dtype, source=_WHERE)
    if fd not in FD_MODES:
        raise InputError("fd", "one of " + ", ".join(FD_MODES), fd, source=_WHERE)
    if shard is not None:
        ok = isinstance(shard, tuple | list) and len(shard) == 2 and all(isinstance(k, int) for k in shard)
        if not ok or not 0 <= shard[0] < shard[1]:
            raise InputError("shard", "(k, n) with 0 <= k < n", shard, source=_WHERE)
        shard = (int(shard[0]), int(shard[1]))
    number = isinstance(limit, int | float) and not isinstance(limit, bool)
    if not number or not 0.0 <= limit <= 1.0:
        raise InputError("max_unsupported", "a fraction from 0 to 1", limit, source=_WHERE)
    return cases, seed, shard, max_shrinks


def gate_strategy(
    impl: Callable[..., Any],
    spec: NetworkSpec | None,
    specs: Any,
    supports: Any,
    dtype: str | None,
    bounds: dict[str, Any],
    *,
    where: str = _WHERE,
) -> tuple[Any, Supports | None]:
    """The strategy of cases a gate draws, and the declaration in force (``None`` when none was given).

    The declaration is ``supports``, else the one ``impl`` carries
    (:func:`oracle.supports.declared_supports`). A given ``spec`` must lie inside it and takes
    only batch bounds and target forms; ``specs`` and bounds apply together (specs outside
    the bounds are not drawn); ``dtype`` must be declared.
    """
    from hypothesis import strategies as st

    from oracle.strategies import cases as case_strategy

    declared_source = supports if supports is not None else declared_supports(impl)
    if spec is not None and specs is not None:
        raise InputError("specs", "either spec or specs, not both", "both", source=where)
    if spec is not None:
        if not isinstance(spec, NetworkSpec | SequentialSpec):
            raise InputError("spec", "a NetworkSpec or SequentialSpec", type(spec).__name__, source=where)
        network = sorted(k for k in bounds if k not in ("min_batch", "max_batch", "targets"))
        if network:
            expected = "only min_batch, max_batch and targets with a given spec (the network is fixed)"
            raise InputError(network[0], expected, bounds[network[0]], source=where)
        if dtype is not None and dtype != spec.dtype:
            spec = spec.replace(dtype=dtype)
        if isinstance(spec, SequentialSpec):
            return _typed_strategy(spec, declared_source, bounds, where)
        declared = resolve(declared_source, bounds, where=where)
        reason = declared.covers(spec) if declared_source is not None else ""
        if reason:
            expected = f"a network inside the support declaration of {declared.source}"
            raise InputError("spec", expected, reason, source=where)
        if declared_source is None:
            return case_strategy(st.just(spec), **bounds), None
        return case_strategy(st.just(spec), supports=declared), declared
    if dtype is not None:
        bounds = {**bounds, "dtype": dtype}
    elif specs is None:
        base = as_supports(declared_source, source=where) if declared_source is not None else None
        dtypes = base.dtypes if base is not None else ("float64",)
        bounds = {**bounds, "dtype": "float64" if "float64" in dtypes else dtypes[0]}
    declared = resolve(declared_source, bounds, where=where)  # a bad bound is named as the gate's argument
    strategy = case_strategy(specs, supports=declared_source, **bounds)
    return strategy, (declared if declared_source is not None else None)


def _typed_strategy(spec: SequentialSpec, declared_source: Any, bounds: dict[str, Any], where: str) -> tuple[Any, None]:
    """Cases of one typed network: random parameters and batches (a support declaration describes dense networks)."""
    from hypothesis import strategies as st

    from oracle.families import family_cases

    if declared_source is not None:
        expected = "a dense NetworkSpec when a support declaration is given (it describes dense networks)"
        raise InputError("spec", expected, "a SequentialSpec", source=where)
    for name in ("min_batch", "targets"):
        if name in bounds:
            expected = "only max_batch with a typed network (its family draws the rest)"
            raise InputError(name, expected, bounds[name], source=where)
    return family_cases(dtype=spec.dtype, specs=st.just(spec), **bounds), None


def run_gate(
    impl: Callable[..., Any],
    spec: NetworkSpec | None = None,
    *,
    supports: Supports | Mapping[str, Any] | str | Path | None = None,
    specs: Any = None,
    cases: int = DEFAULT_CASES,
    seed: int = 0,
    dtype: str | None = None,
    fd: str = "full",
    shard: tuple[int, int] | None = None,
    max_shrinks: int = 3,
    label: str = "",
    device: str | None = None,
    max_unsupported: float = DEFAULT_MAX_UNSUPPORTED,
    **spec_bounds: Any,
) -> dict[str, Any]:
    """Run the gate and return its record (see :func:`sweep_record`); never raises on a mismatch.

    Cases are drawn inside the support declaration (``supports``, else ``REFBP_SUPPORTS``
    beside ``impl``; see :func:`gate_strategy`) narrowed by ``spec_bounds``. ``dtype``
    defaults to the spec's (``float64`` without a spec, or the declaration's only dtype);
    given with a spec it replaces the spec's. ``shard=(k, n)`` checks every ``n``-th case
    from the ``k``-th (0-based), as :func:`oracle.sweep.run_sweep` does. Every bad
    argument raises :class:`refbp.InputError` naming it, before anything runs.
    """
    from hypothesis.errors import Unsatisfiable

    from oracle.sweep import run_sweep

    cases, seed, shard, max_shrinks = _check_options(impl, cases, seed, dtype, fd, shard, max_shrinks, max_unsupported)
    strategy, declared = gate_strategy(impl, spec, specs, supports, dtype, spec_bounds)
    name = impl.name if isinstance(impl, Adapter) else "impl"
    ref = implementation_ref(impl)
    try:
        result = run_sweep(
            cases,
            seed,
            fd=fd,
            impl=impl,
            impl_name=name,
            impl_ref=ref,
            device=device,
            max_shrinks=max_shrinks,
            progress=False,
            shard=shard,
            strategy=strategy,
        )
    except Unsatisfiable:
        result = None
    drawn = 0 if result is None else result.drawn
    if result is None or (drawn < cases and not result.interrupted):
        expected = "a strategy with specs inside the bounds and the support declaration"
        raise InputError("specs", expected, f"only {drawn} of {cases} cases could be drawn", source=_WHERE)
    ran = sorted({case.spec.dtype for case in result.cases.values()})
    return sweep_record(
        result,
        label=label,
        seed=seed,
        cases=cases,
        dtype=", ".join(ran) or dtype or (spec.dtype if spec is not None else "float64"),
        fd=fd,
        implementation=ref or getattr(impl, "__qualname__", name),
        shard=shard,
        max_shrinks=max_shrinks,
        supports=declared.describe() if declared is not None else None,
        max_unsupported=max_unsupported,
        replay_env=replay_environment(impl),
    )


def assert_backprop_matches(
    impl: Callable[..., Any],
    spec: NetworkSpec | None = None,
    *,
    cases: int = DEFAULT_CASES,
    seed: int = 0,
    dtype: str | None = None,
    fd: str = "full",
    **options: Any,
) -> dict[str, Any]:
    """Check ``impl`` on ``cases`` random cases; raise :class:`BackpropMismatch` when it disagrees.

    Returns the record of the run when everything agrees. Other keyword arguments go to
    :func:`run_gate` (``supports``, ``specs``, ``shard``, ``max_shrinks``, ``label``,
    ``device``, ``max_unsupported``) or bound the random networks (``max_depth``,
    ``max_width``, ``max_inputs``, ``max_batch``, ``activations``, ``losses``, ``layouts``,
    … of :func:`oracle.strategies.network_specs`). Cases an implementation answers with
    :class:`Unsupported` are skipped and counted; more than ``max_unsupported`` of them fail
    the gate. A bad argument raises :class:`refbp.InputError`.
    """
    __tracebackhide__ = True
    record = run_gate(impl, spec, cases=cases, seed=seed, dtype=dtype, fd=fd, **options)
    if not record_passed(record):
        raise BackpropMismatch(record)
    return record


def replay_environment(impl: Callable[..., Any]) -> str:
    """``PYTHONPATH=DIR`` that lets ``refbp replay --impl MODULE:FUNCTION`` import ``impl`` from the current
    directory, or ``""`` when it needs none (installed, or importable from here already)."""
    ref = implementation_ref(impl)
    if ref is None:
        return ""
    module = sys.modules.get(ref.partition(":")[0])
    path = getattr(module, "__file__", None)
    if not path:
        return ""
    root = Path(path).resolve().parent
    for _ in range(ref.partition(":")[0].count(".") + int(path.endswith("__init__.py"))):
        root = root.parent
    if any(part in ("site-packages", "dist-packages") for part in root.parts):
        return ""
    here = Path.cwd().resolve()
    if root == here:
        return "PYTHONPATH=."
    try:
        shown = os.path.relpath(root, here)
    except ValueError:
        shown = str(root)
    return f"PYTHONPATH={shlex.quote(shown)}"
