"""Sweeps: many random cases checked three ways, failures shrunk to the smallest case.

A sweep runs in two phases, both driven by hypothesis from one seed:

1. **generate** — ``n_cases`` cases from :func:`oracle.strategies.cases`, every one
   checked and every row kept;
2. **shrink** — for each distinct kind of failure (the quantity and pair where a case
   first diverges; at most ``max_shrinks`` of them), hypothesis searches again from the
   same seed and shrinks to the smallest network and batch that still fails that way.
   The shrunk case is re-checked and its rows are added under the id ``shrunk-K``.

A sweep can be split into ``n`` deterministic shards (``shard=(k, n)``, e.g. one per
pytest-xdist worker): every shard draws the same cases from the same seed, checks only
those whose 0-based index ``i`` has ``i % n == k`` and keeps the ids of the whole sweep
(``c0001`` …), so the union of the shards' generated rows is the serial sweep's. A shard
shrinks the failures it saw; shrinking is a function of the seed and the signature only,
so the same signature shrinks to the same case in every shard (see
:func:`oracle.gate.merge_records` for how shards are combined into the serial report).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import HypothesisException
from hypothesis.strategies import SearchStrategy

from oracle.cases import Case
from oracle.check import CaseResult, Implementation, check_arrays, describe
from oracle.compare import Row
from oracle.families import family_cases
from oracle.strategies import seeded_examples
from refbp import interrupts
from refbp.network import backprop as refbp_backprop

ProgressHook = Callable[[int], None]


@dataclass
class SweepResult:
    """All rows of a sweep, the per-case results and the shrunk failures."""

    results: list[CaseResult]
    cases: dict[str, Case]
    shrunk: list[dict] = field(default_factory=list)
    wall_seconds: float = 0.0
    interrupted: bool = False
    #: Cases hypothesis drew (in every shard); fewer than asked when a filtered strategy ran dry.
    drawn: int = 0

    @property
    def rows(self) -> pd.DataFrame:
        records = [row.as_dict() for result in self.results for row in result.rows]
        return pd.DataFrame.from_records(records, columns=list(Row.__dataclass_fields__))

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed and not r.case.startswith("shrunk")]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def failure_signature(result: CaseResult) -> str:
    """How a case fails: ``"quantity (pair)"`` of its first divergence, ``""`` when it passes.

    Failures with the same signature are shrunk once (see the module docstring).
    """
    row = result.first
    return "" if row is None else f"{row.quantity} ({row.pair})"


class _FoundError(Exception):
    """Raised inside hypothesis to mark a case as failing in the way we are shrinking."""


def run_sweep(
    n_cases: int = 500,
    seed: int = 0,
    *,
    dtype: str = "float64",
    fd: str = "full",
    impl: Implementation = refbp_backprop,
    impl_name: str = "refbp",
    impl_ref: str | None = None,
    device: str | None = None,
    shrink: bool = True,
    max_shrinks: int = 3,
    progress: bool | None = None,
    shard: tuple[int, int] | None = None,
    strategy: SearchStrategy[Case] | None = None,
    families: Sequence[str] = ("mlp",),
    **spec_bounds,
) -> SweepResult:
    """Check ``n_cases`` random cases (and shrink what fails). See the module docstring.

    ``impl`` is checked in place of refbp (labelled ``impl_name`` in the rows);
    ``impl_ref`` (``MODULE:FUNCTION``) is how a replay command names it. ``shard=(k, n)``
    checks only the cases with index ``i % n == k`` (see the module docstring). ``strategy``
    draws the cases; by default they come from ``families`` (:mod:`oracle.families`) — dense
    networks only, as the gate's implementations are (``refbp sweep`` draws every family
    unless ``--families`` says otherwise), with ``dtype`` and ``spec_bounds`` bounding the
    ``mlp`` family.
    """
    if shard is not None and not (0 <= shard[0] < shard[1]):
        raise ValueError(f"shard must be (k, n) with 0 <= k < n, got {shard!r}")
    if strategy is None:
        strategy = family_cases(families, dtype=dtype, **spec_bounds)
    started = time.perf_counter()
    results: list[CaseResult] = []
    seen: dict[str, Case] = {}
    drawn = [0]  # cases drawn so far, checked here or (sharded) elsewhere
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(n_cases, enabled=show)

    def check(case: Case, case_id: str) -> CaseResult:
        interrupts.raise_if_requested()
        return check_arrays(
            case_id, case.spec, case.materialize(), impl=impl, impl_name=impl_name, fd=fd, device=device, seed=case.seed
        )

    @seeded_examples(strategy, n_cases, seed)
    def generate(case: Case) -> None:
        index = drawn[0]
        if index >= n_cases:
            return
        drawn[0] += 1
        if shard is not None and index % shard[1] != shard[0]:
            return
        case_id = f"c{index + 1:04d}"
        results.append(check(case, case_id))
        seen[case_id] = case  # after the check: an interrupted case is not reported as drawn
        bar.update(drawn[0])

    interrupted = False
    try:
        generate()
    except BaseException as err:
        if not interrupts.stopped_by_user(err):
            raise
        # Keep what was checked: the caller still writes a (partial) report.
        interrupted = True
    bar.close()

    shrunk: list[dict] = []
    if shrink and not interrupted:
        try:
            _shrink_failures(strategy, seed, n_cases, max_shrinks, impl_ref, check, results, seen, shrunk)
        except BaseException as err:
            if not interrupts.stopped_by_user(err):
                raise
            # Shrinking only adds to what was checked: keep every case and each shrunk one found so far.
            interrupted = True
    return SweepResult(
        results=results,
        cases=seen,
        shrunk=shrunk,
        wall_seconds=time.perf_counter() - started,
        interrupted=interrupted,
        drawn=drawn[0],
    )


def _shrink_failures(strategy, seed, n_cases, max_shrinks, impl_ref, check, results, seen, shrunk) -> None:
    """Shrink each distinct failure signature of ``results`` (at most ``max_shrinks``); append what is found."""
    signatures: list[str] = []
    for result in results:
        sig = failure_signature(result)
        if sig and sig not in signatures:
            signatures.append(sig)
    for number, sig in enumerate(signatures[:max_shrinks], start=1):
        smallest = _shrink(strategy, seed, n_cases, sig, check)
        if smallest is None:
            continue
        case_id = f"shrunk-{number}"
        result = check(smallest, case_id)
        results.append(result)
        seen[case_id] = smallest
        first = result.first
        shrunk.append(
            {
                "case_id": case_id,
                "signature": sig,
                "case": smallest.to_dict(),
                "replay": smallest.replay_command(impl=impl_ref),
                "depth": smallest.spec.depth,
                "batch": smallest.batch,
                "first_divergence": None
                if first is None
                else {
                    "layer": first.layer,
                    "quantity": first.quantity,
                    "step": first.step,
                    "pair": first.pair,
                    "max_rel_err": first.max_rel_err,
                    "diagnosis": first.diagnosis,
                },
                "description": describe(result),
            }
        )


def _shrink(strategy, seed: int, n_cases: int, signature: str, check) -> Case | None:
    """The smallest case hypothesis finds that fails with ``signature``."""
    last: list[Case] = []

    @settings(
        max_examples=max(n_cases, 100),
        phases=[Phase.generate, Phase.shrink],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
    )
    @hypothesis_seed(seed)
    @given(strategy)
    def search(case: Case) -> None:
        if failure_signature(check(case, "shrinking")) == signature:
            last.append(case)
            raise _FoundError

    try:
        search()
    except _FoundError:
        return last[-1] if last else None
    except HypothesisException:
        return None
    return None


class _Progress:
    """A one-line progress bar on stderr, for terminals only."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total, self.enabled, self.started = total, enabled and total > 0, time.perf_counter()

    def update(self, done: int) -> None:
        if not self.enabled or (done % max(1, self.total // 100) and done != self.total):
            return
        width = 30
        filled = int(width * done / self.total)
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} cases ({rate:.0f}/s)")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
