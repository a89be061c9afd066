"""The ``rnn`` family: what it draws, how it shrinks, and a sweep of it from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, find, given, settings

from oracle.check import check_case
from oracle.families import family_cases
from oracle.rnn_strategies import rnn_cases, rnn_specs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(rnn_specs())
def test_drawn_specs_are_small_valid_recurrent_networks(spec) -> None:
    types = [layer.type for layer in spec.layers]
    steps = spec.inputs[0]
    assert 1 <= steps <= 4 and any(t in ("rnn", "lstm") for t in types)
    if spec.sequence_output:
        assert types[-1] == "temporal_affine" and spec.loss.targets == "index"
    else:
        assert types[-2:-1] == ["last_step"] and spec.shapes[-1] == (spec.outputs,)
    assert (types[0] == "embedding") == (len(spec.inputs) == 1)


FIXED = settings(database=None, derandomize=True)


def test_the_family_draws_every_kind_of_network() -> None:
    seen = set()
    for want in ("embedding", "lstm", "rnn", "temporal_affine", "last_step"):
        spec = find(rnn_specs(), lambda s, want=want: any(layer.type == want for layer in s.layers), settings=FIXED)
        seen.add(want)
        assert spec.inputs[0] <= 2  # shrunk toward one step
    found = find(
        rnn_specs(), lambda s: any(getattr(layer, "gate_order", "") == "ifgo" for layer in s.layers), settings=FIXED
    )
    assert found.inputs[0] <= 2 and len(seen) == 5


def test_shrinking_reduces_the_steps_first() -> None:
    spec = find(rnn_specs(), lambda s: s.inputs[0] >= 3 and len(s.layers) >= 3, settings=FIXED)
    assert spec.inputs[0] == 3


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_drawn_cases_agree_three_ways(dtype: str) -> None:
    results = []

    @settings(max_examples=12, deadline=None, database=None, derandomize=True)
    @given(family_cases(["rnn"], dtype=dtype))
    def check(case) -> None:
        data = case.materialize()
        result = check_case("r", case.spec, data.params, data.X, data.T)
        results.append(result)
        assert all(row.status == "ok" for row in result.rows), [r for r in result.rows if r.status != "ok"][:2]

    check()
    assert len(results) == 12
    # the per-step gradients are among what agrees, in all three pairs, at this dtype's tolerances
    stepped = {(r.quantity, r.pair) for result in results for r in result.rows if r.step is not None}
    assert {("dL/dh", pair) for pair in ("refbp~torch", "refbp~fd", "torch~fd")} <= stepped


def test_bad_bounds_are_one_clear_line() -> None:
    with pytest.raises(ValueError, match="max_steps: expected a positive integer, got 0"):
        find(rnn_specs(max_steps=0), bool)
    with pytest.raises(ValueError, match="layers: expected a non-empty list from rnn, lstm"):
        find(rnn_specs(layers=["gru"]), bool)
    with pytest.raises(ValueError, match="losses"):
        find(rnn_cases(losses=["hinge"]), bool)


def test_the_cli_sweeps_the_rnn_family(tmp_path) -> None:
    command = [sys.executable, "-m", "refbp.cli", "sweep", "--families", "rnn", "--cases", "8", "--quiet"]
    done = subprocess.run([*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "sweep.json").read_text())
    assert report["verdict"] == "pass" and report["n_cases"] == 8
    quantities = {row["quantity"] for row in report["worst"]}
    assert {"dL/dWx", "dL/dWh", "dL/dh0", "dL/dh"} <= quantities
