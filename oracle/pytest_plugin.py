"""pytest plugin ``refbp``: the backprop correctness gate as a fixture (loaded through the ``pytest11`` entry point).

A test asks for the ``bp_oracle`` fixture and calls ``bp_oracle.assert_matches(impl)``
(:func:`oracle.gate.assert_backprop_matches` seeded from the command line)::

    def test_backprop(bp_oracle):
        bp_oracle.assert_matches(my_backprop)              # random networks
        bp_oracle.assert_matches(my_backprop, spec=spec)   # random data for one network

A ``@given`` test drawing its own cases from :mod:`oracle.strategies` asks for the
session-scoped ``bp_reference`` instead (``bp_reference.reference(spec, params, X, T)``:
the torch twin's gradients), since Hypothesis refuses function-scoped fixtures there.

Options: ``--refbp-seed`` (default 0), ``--refbp-cases`` (default 30), ``--refbp-dtype``
(``float64``/``float32``; default float64, or the given spec's), ``--refbp-fd``
(``full``/``directional``/``off``), ``--refbp-shards`` (default: the number of
pytest-xdist workers, else 1) and ``--refbp-report DIR`` (write csv/json/md/html reports
of every gate there, one set per test).

What the plugin adds to a session, and when:

* **xdist** — with ``n > 1`` shards every test that uses ``bp_oracle`` is collected as
  ``n`` items ``test[refbp-shard1ofN]`` …, each checking every ``n``-th case of the same
  seeded sweep. The items send their records to the controller (an attribute of their
  call report), which merges them with :func:`oracle.gate.merge_records` into the
  record of the serial run: the same rows in the same order.
* **JUnit** — with ``--junitxml``, every failing ``(case, layer, quantity)`` of a gate whose
  test failed is also written as its own ``<testcase>`` (a red gate that the test expects,
  inside ``pytest.raises``, adds nothing), named ``test[c0003 layer 2 dL/dW]`` with the
  test's class name, its failure message naming the pairs that disagree, their errors
  and the replay command. They are written at the end of the session, into the XML only.
* **GITHUB_STEP_SUMMARY** — when the variable is set, the Markdown report of each gate
  is appended to that file.

A session in which no test uses ``bp_oracle`` is left as it was: no fixture is autouse,
collection is unchanged, and importing this module imports nothing beyond pytest and
the standard library (torch, pandas and hypothesis are imported by the fixture).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

_RECORDS = pytest.StashKey[list]()
_SHARD_ID = re.compile(r"\[refbp-shard\d+of\d+\]|(?<=\[)refbp-shard\d+of\d+-|-refbp-shard\d+of\d+(?=[-\]])")
_REPORT_ATTRIBUTE = "refbp_records"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("refbp", "backprop correctness gate (refbp)")
    group.addoption("--refbp-seed", type=int, default=0, metavar="N", help="hypothesis seed of the gate (default 0)")
    group.addoption("--refbp-cases", type=int, default=None, metavar="N", help="random cases per gate (default 30)")
    group.addoption("--refbp-dtype", default=None, metavar="DTYPE", help="float64 (default) or float32")
    group.addoption(
        "--refbp-fd", default="full", metavar="MODE", help="finite differences: full (default), directional or off"
    )
    group.addoption(
        "--refbp-shards", type=int, default=None, metavar="N", help="split each gate into N items (default: xdist -n)"
    )
    group.addoption("--refbp-report", default=None, metavar="DIR", help="write each gate's csv/json/md/html reports")


def pytest_configure(config: pytest.Config) -> None:
    opt = config.option
    for name in ("refbp_seed", "refbp_cases", "refbp_shards"):
        value = getattr(opt, name)
        minimum = 0 if name == "refbp_seed" else 1
        if value is not None and value < minimum:
            flag = "--" + name.replace("_", "-")
            raise pytest.UsageError(f"{flag}: expected an integer >= {minimum}, got {value}")
    if opt.refbp_dtype is not None:
        from refbp.spec import DTYPES

        if opt.refbp_dtype not in DTYPES:
            raise pytest.UsageError(f"--refbp-dtype: expected one of {', '.join(DTYPES)}, got {opt.refbp_dtype!r}")
    if opt.refbp_fd != "full":
        from oracle.check import FD_MODES

        if opt.refbp_fd not in FD_MODES:
            raise pytest.UsageError(f"--refbp-fd: expected one of {', '.join(FD_MODES)}, got {opt.refbp_fd!r}")
    if not hasattr(config, "workerinput"):  # the controller (or a plain session) collects the records
        config.pluginmanager.register(GateCollector(config), "refbp-gate-collector")


def shard_count(config: pytest.Config) -> int:
    """``--refbp-shards``, else the number of pytest-xdist workers (inside a worker), else 1."""
    if config.option.refbp_shards is not None:
        return config.option.refbp_shards
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput.get("workercount", 1)) if workerinput else 1


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bp_oracle" not in metafunc.fixturenames:
        return
    n = shard_count(metafunc.config)
    if n > 1:
        ids = [f"refbp-shard{k + 1}of{n}" for k in range(n)]
        metafunc.parametrize("bp_oracle", [(k, n) for k in range(n)], indirect=True, ids=ids)


def gate_label(nodeid: str) -> str:
    """The test's node id without the shard parameter: the same in serial and sharded runs."""
    return _SHARD_ID.sub("", nodeid)


class BackpropReference:
    """What ``bp_reference`` gives a test: the torch twin and finite differences of one case, nothing stateful.

    ``spec`` is a :class:`refbp.spec.NetworkSpec`, ``params`` maps ``"W1"``, ``"b1"``, … to
    arrays of ``spec.parameter_shapes()``, ``X`` has ``spec.input_shape(N)`` and ``T``
    ``spec.target_shape(N)`` — what :mod:`oracle.strategies` draws.
    """

    def reference(self, spec, params: Mapping[str, Any], X, T):
        """The torch twin's ``(ForwardTrace, Gradients)`` (see :func:`oracle.torch_twin.torch_backprop`)."""
        from oracle.torch_twin import torch_backprop

        return torch_backprop(spec, params, X, T)

    def finite_differences(self, spec, params: Mapping[str, Any], X, T):
        """Central differences of every gradient (see :func:`oracle.finite_diff.fd_gradients`)."""
        from oracle.finite_diff import fd_gradients

        return fd_gradients(spec, params, X, T)


class BackpropOracle(BackpropReference):
    """What ``bp_oracle`` gives a test: the gate, the torch twin and finite differences, seeded from the options.

    ``seed``, ``cases``, ``dtype``, ``fd`` and ``shard`` (``(k, n)`` or ``None``) hold
    the session's settings; keyword arguments of :meth:`assert_matches` override them.
    """

    def __init__(self, *, seed: int, cases: int | None, dtype: str | None, fd: str, shard, label: str, records) -> None:
        self.seed, self.cases, self.dtype, self.fd, self.shard = seed, cases, dtype, fd, shard
        self._label, self._records = label, records

    def assert_matches(self, impl: Callable[..., Any], spec=None, **options: Any) -> dict[str, Any]:
        """:func:`oracle.gate.assert_backprop_matches` with the session's seed, cases, dtype, fd and shard.

        Raises :class:`oracle.gate.BackpropMismatch` on a mismatch; returns the record otherwise.
        """
        __tracebackhide__ = True
        from oracle.gate import BackpropMismatch, record_passed, run_gate

        settings: dict[str, Any] = {"seed": self.seed, "dtype": self.dtype, "fd": self.fd, "shard": self.shard}
        if self.cases is not None:
            settings["cases"] = self.cases
        settings.update(options)
        label = self._label if not self._records else f"{self._label}#{len(self._records) + 1}"
        record = run_gate(impl, spec, label=label, **settings)
        self._records.append(record)
        if not record_passed(record):
            raise BackpropMismatch(record)
        return record


@pytest.fixture
def bp_oracle(request: pytest.FixtureRequest) -> BackpropOracle:
    """The backprop gate seeded from ``--refbp-seed``/``--refbp-cases``/``--refbp-dtype`` (see the module docstring)."""
    opt = request.config.option
    records = request.node.stash.setdefault(_RECORDS, [])
    return BackpropOracle(
        seed=opt.refbp_seed,
        cases=opt.refbp_cases,
        dtype=opt.refbp_dtype,
        fd=opt.refbp_fd,
        shard=getattr(request, "param", None),
        label=gate_label(request.node.nodeid),
        records=records,
    )


@pytest.fixture(scope="session")
def bp_reference() -> BackpropReference:
    """The torch twin and finite differences for a test's own cases; session-scoped, so it fits ``@given`` tests.

    Hypothesis refuses function-scoped fixtures such as ``bp_oracle`` in ``@given`` tests
    (``HealthCheck.function_scoped_fixture``); this one holds no state and is not sharded.
    """
    return BackpropReference()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    records = item.stash.get(_RECORDS, None)
    if call.when == "call" and records:
        setattr(report, _REPORT_ATTRIBUTE, list(records))  # serialised with the report under xdist
    return report


class GateCollector:
    """Collects gate records from call reports; at the end merges shards and writes reports, JUnit and summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.by_label: dict[str, list[dict]] = {}
        self.merged: list[dict] = []
        self.written: dict[str, dict[str, Path]] = {}
        self.failed_labels: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for record in getattr(report, _REPORT_ATTRIBUTE, None) or ():
            self.by_label.setdefault(record["label"], []).append(record)
            if report.failed:  # a red gate inside pytest.raises leaves its test passing: no JUnit failures then
                self.failed_labels.add(record["label"])

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.by_label:
            return
        from oracle.gate import merge_records, record_markdown, report_stem, write_record_reports

        for label in sorted(self.by_label):
            shards = sorted(self.by_label[label], key=lambda r: r["shard"] or [0, 1])
            try:
                self.merged.append(merge_records(shards))
            except ValueError:  # not every shard ran (-k, --lf, a crash): keep them apart
                self.merged += shards
        out_dir = self.config.option.refbp_report
        for record in self.merged:
            if out_dir:
                stem = report_stem(record["label"]) + (f"-shard{record['shard'][0] + 1}" if record["shard"] else "")
                path = Path(out_dir)
                path = path if path.is_absolute() else Path(self.config.invocation_params.dir) / path
                self.written[record["label"]] = write_record_reports(record, path, stem=stem)
            summary = os.environ.get("GITHUB_STEP_SUMMARY")
            if summary:
                with open(summary, "a", encoding="utf-8") as fh:
                    fh.write(record_markdown(record) + "\n")
        self._add_junit_testcases()

    def _add_junit_testcases(self) -> None:
        from _pytest.junitxml import xml_key

        xml = self.config.stash.get(xml_key, None)
        if xml is None:
            return
        for record in self.merged:
            if record["label"] not in self.failed_labels:
                continue
            for report in failure_reports(record):
                xml.pytest_runtest_logreport(report)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.merged:
            return
        from oracle.gate import failing_rows, record_passed, unsupported_cases, unsupported_verdict

        terminalreporter.section("refbp gate")
        for record in self.merged:
            if record_passed(record):
                verdict = "PASS"
            elif failing_rows(record):
                verdict = f"FAIL ({len(failing_rows(record))} failing rows)"
            else:
                verdict = "FAIL (" + (unsupported_verdict(record) or "interrupted").split(":")[0] + ")"
            line = f"{record['label']}: {verdict}, {record['cases']} cases, seed {record['seed']}"
            if unsupported_cases(record):
                line += f", {len(unsupported_cases(record))} unsupported"
            if record["label"] in self.written:
                line += f"; report {self.written[record['label']]['html']}"
            terminalreporter.write_line(line)


def failure_reports(record: Mapping[str, Any]) -> list[pytest.TestReport]:
    """Reports of one JUnit testcase per failing ``(case, layer, quantity)`` of a gate record.

    Each testcase is a setup, a failed call and a teardown report with the node id
    ``<gate test>[c0003 layer 2 dL/dW]``; the failure message names every pair that
    disagrees there, and the replay command of the case.
    """
    from oracle.gate import failing_rows, replay_command, row_summary
    from oracle.report_format import quantity_label

    groups: dict[tuple[str, int, str], list[Mapping[str, Any]]] = {}
    for row in failing_rows(record):
        key = (row["case"], row["layer"], quantity_label(row["quantity"], row.get("step")))
        groups.setdefault(key, []).append(row)
    label = record["label"]
    path = label.partition("::")[0]
    reports = []
    for (case, layer, quantity), rows in groups.items():
        where = "" if quantity == "call" else ("input " if layer == 0 else f"layer {layer} ")
        tag = f"{case} {where}{quantity}"
        nodeid = f"{label[:-1]}-{tag}]" if label.endswith("]") else f"{label}[{tag}]"
        text = "\n".join([f"{case}: " + row_summary(rows[0]), *(row_summary(r) for r in rows[1:])])
        text += f"\nreplay: {replay_command(record, case)}"
        for when, outcome in (("setup", "passed"), ("call", "failed"), ("teardown", "passed")):
            longrepr = text if outcome == "failed" else None
            reports.append(pytest.TestReport(nodeid, (path, None, tag), {}, outcome, longrepr, when))
    return reports
