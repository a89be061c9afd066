"""The gate: assert_backprop_matches, its failure message, Adapter, result forms, and merging xdist shards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from oracle.check import check_case, result_quantities
from oracle.gate import (
    Adapter,
    BackpropMismatch,
    assert_backprop_matches,
    divergence_hint,
    failing_rows,
    implementation_ref,
    merge_records,
    mismatch_message,
    record_passed,
    report_stem,
    run_gate,
)
from oracle.report import as_frame
from refbp.errors import InputError
from refbp.network import backprop
from refbp.params import init_parameters
from refbp.spec import LayerSpec, LossSpec, NetworkSpec

SPEC = NetworkSpec(
    inputs=3,
    layers=(LayerSpec(4, "tanh"), LayerSpec(2, "sigmoid")),
    loss=LossSpec(kind="half_sse", reduction="mean"),
)


def doubled_output_weights(spec, params, X, T):
    """refbp with ``∂L/∂W_L`` twice too large."""
    trace, grads = backprop(spec, params, X, T)
    grads.layers[-1].grad_W = 2 * grads.layers[-1].grad_W
    return trace, grads


def parameter_gradients(spec, params, X, T):
    """refbp's gradients as the dict a student's function returns, without ``b2``."""
    _, grads = backprop(spec, params, X, T)
    out = {f"d{name}": value for name, value in grads.by_parameter().items() if name != "b2"}
    return {**out, "x": grads.grad_x}


def test_refbp_passes_the_gate() -> None:
    record = assert_backprop_matches(backprop, cases=8, seed=1, max_depth=2)
    assert record_passed(record)
    generated = [c for c in record["cases_json"] if not c.startswith("shrunk")]
    assert generated == [f"c{i:04d}" for i in range(1, 9)]
    assert {row["pair"] for row in record["rows"]} == {"impl~torch", "impl~fd", "torch~fd"}
    assert record["implementation"] == f"{backprop.__module__}:{backprop.__qualname__}"


def test_a_wrong_gradient_raises_an_assertion_error_naming_the_layer() -> None:
    with pytest.raises(BackpropMismatch) as caught:
        assert_backprop_matches(doubled_output_weights, SPEC, cases=4, seed=0)
    err = caught.value
    assert isinstance(err, AssertionError)
    rows = err.failing_rows
    # Every failing row is ∂L/∂W of the output layer; |2g − g| / |2g| = 0.5 exactly.
    assert {(r["layer"], r["quantity"]) for r in rows} == {(2, "dL/dW")}
    assert {r["pair"] for r in rows} == {"impl~torch", "impl~fd"}
    torch_rows = [r for r in rows if r["pair"] == "impl~torch"]
    assert np.allclose([r["max_rel_err"] for r in torch_rows], 0.5, rtol=1e-9)
    message = str(err)
    lines = message.splitlines()
    assert lines[0] == (
        f"backprop gate: 4 of 4 cases diverge (seed 0, float64, fd full; impl {__name__}:doubled_output_weights)"
    )
    assert "c0001: layer 2, dL/dW (impl~torch): mismatch, max rel err 5.0e-1" in message
    assert "2 too large" in message  # the diagnosis: a factor of 2
    assert "smallest failing case (shrunk-1: 2 layer(s), batch 1)" in message
    replay = lines[-1].removeprefix("  replay: ")
    # The test module is importable because pytest put tests/ on sys.path: the replay says so.
    assert replay.startswith("PYTHONPATH=tests refbp replay '")
    assert replay.endswith(f"--impl {__name__}:doubled_output_weights")
    case = json.loads(replay.split("'")[1])
    assert NetworkSpec.from_dict(case["spec"]) == SPEC and case["batch"] == 1
    assert len(lines) <= 20


def test_a_given_spec_gets_random_data_only(tmp_path) -> None:
    record = run_gate(backprop, SPEC, cases=5, seed=3, dtype="float32")
    specs = {json.dumps(case["spec"], sort_keys=True) for case in record["cases_json"].values()}
    assert specs == {json.dumps(SPEC.replace(dtype="float32").to_dict(), sort_keys=True)}
    assert len({(c["batch"], c["seed"]) for c in record["cases_json"].values()}) > 1
    assert record["dtype"] == "float32" and record_passed(record)
    with pytest.raises(InputError, match="max_depth: expected only min_batch, max_batch and targets with a given spec"):
        run_gate(backprop, SPEC, cases=1, max_depth=2)


def test_a_dict_of_parameter_gradients_is_compared_quantity_by_quantity() -> None:
    quantities, provided = result_quantities({"dW1": np.ones((2, 2)), "grad_b1": np.ones(2), "X": np.zeros((1, 2))})
    assert set(quantities) == {(1, "dL/dW"), (1, "dL/db"), (0, "dL/dx")}
    assert provided == {"dL/dW", "dL/db", "dL/dx"}
    with pytest.raises(ValueError, match="W0"):
        result_quantities({"W0": np.ones(1)})

    params = init_parameters(SPEC, seed=0)
    X, T = np.linspace(-1, 1, 6).reshape(2, 3), np.array([[0.2, 0.9], [0.5, 0.1]])
    result = check_case("one", SPEC, params, X, T, impl=parameter_gradients, fd="off")
    status = {(r.layer, r.quantity): r.status for r in result.rows}
    assert status == {
        (1, "dL/dW"): "ok",
        (1, "dL/db"): "ok",
        (2, "dL/dW"): "ok",
        (2, "dL/db"): "missing",
        (0, "dL/dx"): "ok",
    }


def test_an_adapter_limits_the_compared_quantities() -> None:
    adapter = Adapter(doubled_output_weights, provides=frozenset({"dL/db", "dL/dx"}), name="student")
    record = run_gate(adapter, SPEC, cases=3, fd="off")
    assert {r["quantity"] for r in record["rows"]} == {"dL/db", "dL/dx"}
    assert {r["pair"] for r in record["rows"]} == {"student~torch"}
    assert record_passed(record)  # the doubled ∂L/∂W is not among what it provides
    assert implementation_ref(adapter) == f"{__name__}:doubled_output_weights"
    assert implementation_ref(Adapter(lambda *a: None, ref="pkg.mod:fn")) == "pkg.mod:fn"
    assert implementation_ref(lambda *a: None) is None
    with pytest.raises(ValueError, match="provides"):
        Adapter(backprop, provides=frozenset({"dW"}))


def test_shards_merge_into_the_serial_record() -> None:
    options = {"cases": 12, "seed": 5, "max_depth": 3, "max_shrinks": 2}
    serial = run_gate(doubled_output_weights, **options)
    shards = [run_gate(doubled_output_weights, shard=(k, 3), **options) for k in range(3)]
    assert sorted(len(s["cases_json"]) - len(s["shrunk"]) for s in shards) == [4, 4, 4]
    merged = merge_records(reversed(shards))
    for key in serial:
        if key != "wall_seconds":
            assert merged[key] == serial[key], key
    assert as_frame(merged["rows"]).to_csv() == as_frame(serial["rows"]).to_csv()
    assert failing_rows(merged) and mismatch_message(merged) == mismatch_message(serial)


def test_merge_rejects_incomplete_or_mixed_shards() -> None:
    shards = [run_gate(backprop, cases=4, seed=0, max_depth=1, shard=(k, 2)) for k in range(2)]
    with pytest.raises(ValueError, match="shards 0…1 of 2"):
        merge_records(shards[:1])
    other = run_gate(backprop, cases=4, seed=1, max_depth=1, shard=(1, 2))
    with pytest.raises(ValueError, match="differ in seed"):
        merge_records([shards[0], other])
    with pytest.raises(ValueError, match="no records"):
        merge_records([])
    assert merge_records([serial := run_gate(backprop, cases=2, max_depth=1)]) == serial


def test_report_stem() -> None:
    assert report_stem("tests/test_x.py::test_y[a-b]") == "test_x-test_y-a-b"
    assert report_stem("tests/test_x.py::TestK::test_y#2") == "test_x-TestK-test_y-2"


def _as_dict(grads, **scale: float) -> dict[str, np.ndarray]:
    """refbp's gradients as a ``{"W1": …, "b1": …, "x": …}`` dict, entries named in ``scale`` multiplied."""
    out = {**grads.by_parameter(), "x": grads.grad_x}
    return {name: value * scale.get(name, 1.0) for name, value in out.items()}


def forgets_the_first_activation_derivative(spec, params, X, T):
    """The demo's bug on SPEC (layout in_out): ``δ_1 = ∂L/∂a_1``, without ``f'(z_1)``."""
    _, grads = backprop(spec, params, X, T)
    delta = grads.layers[0].grad_a  # (N, n_1)
    out = _as_dict(grads)
    out.update(W1=X.T @ delta, b1=delta.sum(axis=0), x=delta @ params["W1"].T)
    return out


def first_weights_times_1_5(spec, params, X, T):
    return _as_dict(backprop(spec, params, X, T)[1], W1=1.5)


def output_layer_times_3(spec, params, X, T):
    return _as_dict(backprop(spec, params, X, T)[1], W2=3.0, b2=3.0)


def input_gradient_negated(spec, params, X, T):
    return _as_dict(backprop(spec, params, X, T)[1], x=-1.0)


def _first_failing_case(record) -> str:
    return failing_rows(record)[0]["case"]


@pytest.mark.parametrize(
    ("impl", "hint"),
    [
        (
            forgets_the_first_activation_derivative,
            "layer 2 agrees, layer 1 does not (dL/dW, dL/db): the error enters in the backward step into layer 1"
            " — ∂L/∂a_1 from δ_2 and W_2, or the derivative of tanh in δ_1",
        ),
        (first_weights_times_1_5, "∂L/∂b_1 agrees but ∂L/∂W_1 does not, so δ_1 is probably right: check ∂L/∂W_1"),
        (output_layer_times_3, "the output layer 2 already diverges (dL/dW, dL/db): check ∂L/∂a_2 of the half_sse"),
        (input_gradient_negated, "every layer's gradients agree but ∂L/∂x does not"),
    ],
)
def test_the_divergence_hint_localises_a_bug_from_parameter_gradients(impl, hint: str) -> None:
    record = run_gate(impl, SPEC, cases=2, seed=4, fd="off", max_shrinks=0)
    assert not record_passed(record)
    assert divergence_hint(record, _first_failing_case(record)).startswith(hint)


def test_no_divergence_hint_without_layers_that_agree() -> None:
    only_dx = Adapter(input_gradient_negated, provides=frozenset({"dL/dx"}))
    record = run_gate(only_dx, SPEC, cases=1, fd="off", max_shrinks=0)
    assert divergence_hint(record, _first_failing_case(record)) == ""  # no layer compared: nothing agrees
    record = run_gate(first_weights_times_1_5, SPEC, cases=1, fd="off", max_shrinks=0)
    assert {r["layer"] for r in failing_rows(record)} == {1}
    assert divergence_hint({**record, "rows": [r for r in record["rows"] if r["layer"] != 2]}, "c0001") == ""


def test_the_hint_stays_out_of_forward_failures() -> None:
    def wrong_forward(spec, params, X, T):
        trace, grads = backprop(spec, params, X, T)
        trace.layers[0].a = trace.layers[0].a + 1.0
        grads.layers[0].grad_W = 2 * grads.layers[0].grad_W
        return trace, grads

    record = run_gate(wrong_forward, SPEC, cases=1, fd="off", max_shrinks=0)
    assert {r["quantity"] for r in failing_rows(record)} >= {"a", "dL/dW"}
    assert divergence_hint(record, "c0001") == ""


def test_a_message_without_row_diagnoses_ends_with_the_hint() -> None:
    with pytest.raises(BackpropMismatch) as caught:
        assert_backprop_matches(forgets_the_first_activation_derivative, SPEC, cases=3, seed=2)
    lines = str(caught.value).splitlines()
    header = next(line for line in lines if line.lstrip().startswith("layer    quantity"))
    assert header.split() == ["layer", "quantity", "pair", "status", "max", "rel", "err", "tolerance"]
    assert lines[-2].startswith("  diagnosis: layer 2 agrees, layer 1 does not")
    assert lines[-1].startswith("  replay: PYTHONPATH=tests refbp replay '") and lines[-1].endswith(
        f"--impl {__name__}:forgets_the_first_activation_derivative"
    )


def test_a_message_says_when_the_replay_cannot_load_the_implementation() -> None:
    with pytest.raises(BackpropMismatch) as caught:
        assert_backprop_matches(lambda *args: doubled_output_weights(*args), SPEC, cases=1)
    lines = str(caught.value).splitlines()
    assert lines[-2].startswith("  replay: refbp replay '") and "--impl" not in lines[-2]
    assert "cannot be imported by name, so these replay refbp itself" in lines[-1]
