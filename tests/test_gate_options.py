"""The gate's options: the support declaration, no silent options, Unsupported, exceptions with context."""

from __future__ import annotations

import re

import numpy as np
import pytest

from oracle.gate import (
    Adapter,
    BackpropMismatch,
    Supports,
    Unsupported,
    assert_backprop_matches,
    record_meta,
    run_gate,
)
from oracle.strategies import network_specs
from refbp.errors import InputError
from refbp.network import backprop
from refbp.spec import LayerSpec, LossSpec, NetworkSpec

SIGMOID_ONLY = Supports(
    hidden_activations=["sigmoid"],
    output_activations=["sigmoid"],
    losses=["half_sse"],
    bias_modes=["per_unit"],
    l2=["off"],
    max_depth=2,
)


def sigmoid_only(spec, params, X, T):
    """An implementation that knows sigmoid layers, per-unit biases and half-SSE only, and says so."""
    activations = {layer.activation for layer in spec.layers}
    if activations != {"sigmoid"} or spec.loss.kind != "half_sse" or spec.l2.lam:
        raise AssertionError(f"drawn outside the declaration: {spec.to_dict()}")
    return backprop(spec, params, X, T)


def test_a_declaration_keeps_every_case_inside_it_at_every_seed() -> None:
    for seed in range(3):
        record = assert_backprop_matches(sigmoid_only, cases=6, seed=seed, fd="off", supports=SIGMOID_ONLY)
        assert all(SIGMOID_ONLY.covers(NetworkSpec.from_dict(c["spec"])) == "" for c in record["cases_json"].values())
        assert "hidden_activations=sigmoid" in record["supports"]


def test_the_declaration_beside_the_function_is_read() -> None:
    from gate_adapters import layer_library_adapter as module

    record = run_gate(module.backprop, cases=4, seed=0, fd="off")
    assert record["supports"] == module.REFBP_SUPPORTS.describe()
    for case in record["cases_json"].values():
        assert module.REFBP_SUPPORTS.covers(NetworkSpec.from_dict(case["spec"])) == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cases": 0}, "assert_backprop_matches: cases: expected an integer >= 1, got 0"),
        ({"cases": 2.5}, "assert_backprop_matches: cases: expected an integer >= 1, got 2.5"),
        ({"seed": -1}, "assert_backprop_matches: seed: expected an integer >= 0, got -1"),
        ({"fd": "half"}, "assert_backprop_matches: fd: expected one of full, directional, off, got 'half'"),
        ({"dtype": "float16"}, "assert_backprop_matches: dtype: expected one of float64, float32"),
        ({"max_depth": -2}, "assert_backprop_matches: max_depth: expected an integer from 1 to 32, got -2"),
        ({"activations": ["relu6"]}, "assert_backprop_matches: hidden_activations: expected a non-empty list"),
        ({"max_unsupported": 2}, "assert_backprop_matches: max_unsupported: expected a fraction from 0 to 1"),
        ({"shard": (2, 2)}, "assert_backprop_matches: shard: expected (k, n) with 0 <= k < n"),
        ({"depth": 3}, "assert_backprop_matches: depth: expected a bound of the random networks"),
        ({"supports": SIGMOID_ONLY, "losses": ["mse"]}, "losses: expected names the support declaration lists"),
        ({"supports": SIGMOID_ONLY, "dtype": "float16"}, "dtype: expected one of float64, float32"),
        ({"supports": {"losses": ["mse"], "dtypes": ["float64"]}, "dtype": "float32"}, "dtype: expected names the"),
        ({"specs": network_specs(), "spec": None, "min_depth": 5, "max_depth": 4}, "min_depth: expected at most"),
    ],
)
def test_every_bad_argument_raises_one_input_error(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        assert_backprop_matches(backprop, **kwargs)


def test_a_spec_outside_the_declaration_is_refused() -> None:
    spec = NetworkSpec(inputs=2, layers=(LayerSpec(2, "tanh"), LayerSpec(1, "sigmoid")))
    with pytest.raises(InputError, match=re.escape("layers[0].activation tanh is not declared (sigmoid)")):
        run_gate(backprop, spec, supports=SIGMOID_ONLY, cases=1)


def test_specs_with_bounds_apply_both() -> None:
    """``specs=`` once made ``max_depth=1`` a silent no-op: depths 1 to 4 were drawn."""
    record = run_gate(backprop, specs=network_specs(max_depth=4), max_depth=1, cases=6, fd="off")
    assert {c["spec"]["layers"].__len__() for c in record["cases_json"].values()} == {1}


def test_specs_that_the_bounds_exclude_entirely_are_refused() -> None:
    with pytest.raises(InputError, match="specs: expected a strategy with specs inside the bounds"):
        run_gate(backprop, specs=network_specs(min_depth=3, max_depth=3), max_depth=2, cases=3, fd="off")


@pytest.mark.parametrize("how", ["bounds", "specs", "spec"])
def test_the_header_dtype_is_the_dtype_of_the_computed_arrays(how: str) -> None:
    """``--refbp-dtype float32`` with ``specs=`` once reported float32 and ran every case in float64."""
    seen: set[str] = set()

    def recording(spec, params, X, T):
        seen.update({str(X.dtype), *(str(p.dtype) for p in params.values())})
        return backprop(spec, params, X, T)

    options = {
        "bounds": {"max_depth": 2},
        "specs": {"specs": network_specs(max_depth=2)},
        "spec": {"spec": NetworkSpec(inputs=2, layers=(LayerSpec(2, "tanh"),))},
    }[how]
    record = run_gate(recording, cases=3, fd="off", dtype="float32", **options)
    assert seen == {"float32"}
    assert record["dtype"] == "float32" == record_meta(record)["dtype"]
    assert {c["spec"]["dtype"] for c in record["cases_json"].values()} == {"float32"}


def picky(spec, params, X, T):
    """Supports two-layer networks only; says so for the others."""
    if spec.depth != 2:
        raise Unsupported(f"depth {spec.depth}: only two layers are implemented")
    return backprop(spec, params, X, T)


def test_unsupported_cases_are_skipped_counted_and_never_red() -> None:
    record = assert_backprop_matches(picky, cases=12, seed=0, fd="off", max_depth=3, max_unsupported=1.0)
    skipped = [r for r in record["rows"] if r["status"] == "unsupported"]
    depths = [len(c["spec"]["layers"]) for k, c in record["cases_json"].items()]
    assert len(skipped) == sum(d != 2 for d in depths) > 0
    assert {r["quantity"] for r in skipped} == {"call"}
    assert skipped[0]["message"].endswith("only two layers are implemented")
    assert record_meta(record)["unsupported cases"].startswith(f"{len(skipped)} of 12 skipped (depth ")


def test_too_many_unsupported_cases_say_the_declaration_is_wrong() -> None:
    with pytest.raises(BackpropMismatch) as caught:
        assert_backprop_matches(picky, cases=12, seed=0, fd="off", max_depth=3)
    message = str(caught.value)
    assert re.search(r"\d+ of 12 cases were unsupported \(more than 20%\): the support declaration is wrong", message)
    assert "unsupported: depth 1: only two layers are implemented" in message
    # Declared properly, the same implementation passes.
    assert_backprop_matches(picky, cases=6, seed=0, fd="off", supports={"min_depth": 2, "max_depth": 2})


def test_an_exception_names_the_call_and_the_frames_of_the_user_code() -> None:
    from gate_adapters import layer_library_adapter as module

    def broken(spec, params, X, T):
        return module.backprop(spec, {**params, "W1": np.vstack([params["W1"], params["W1"]])}, X, T)

    with pytest.raises(BackpropMismatch) as caught:
        assert_backprop_matches(broken, cases=2, seed=0, fd="off", max_shrinks=0, supports=module.REFBP_SUPPORTS)
    rows = caught.value.failing_rows
    assert {(r["layer"], r["quantity"], r["status"]) for r in rows} == {(0, "call", "error")}
    message = rows[0]["message"]
    assert message.startswith("ValueError: matmul: ") and " — raised in the library: " in message
    frames = message.split("raised in the library: ")[1].split(" ← ")
    assert re.fullmatch(r"tests/gate_adapters/layer_library\.py:\d+ in forward", frames[0])
    assert re.fullmatch(r"tests/gate_adapters/layer_library\.py:\d+ in forward", frames[1])  # Stack.forward
    assert re.fullmatch(r"tests/gate_adapters/layer_library_adapter\.py:\d+ in backprop", frames[2])
    assert "impl(spec, params, X, T) raised ValueError" in str(caught.value)
    assert "layer 1 loss" not in str(caught.value) and "loss (impl" not in str(caught.value)


def test_an_exception_in_the_adapter_itself_is_attributed_to_it() -> None:
    def adapter(spec, params, X, T):
        return {"W1": np.zeros(3)["bad"]}

    record = run_gate(adapter, cases=1, fd="off", max_shrinks=0)
    message = next(r["message"] for r in record["rows"] if r["status"] == "error")
    assert message.startswith("IndexError: ") and "raised in the adapter: tests/test_gate_options.py:" in message


def test_an_adapter_carries_its_declaration() -> None:
    adapter = Adapter(sigmoid_only, supports=SIGMOID_ONLY.to_dict())
    record = assert_backprop_matches(adapter, cases=4, fd="off")
    assert "hidden_activations=sigmoid" in record["supports"] and "dtypes=float64" in record["supports"]
    with pytest.raises(InputError, match=re.escape("Adapter.supports: losses: expected a non-empty list")):
        Adapter(sigmoid_only, supports={"losses": ["hinge"]})


def test_labels_only_declaration_never_draws_dense_softmax_targets() -> None:
    declared = {"losses": ["softmax_cross_entropy"], "targets": ["labels"]}
    record = run_gate(backprop, cases=5, fd="off", supports=declared)
    losses = [LossSpec.from_dict(c["spec"]["loss"]) for c in record["cases_json"].values()]
    assert {(loss.kind, loss.targets) for loss in losses} == {("softmax_cross_entropy", "index")}
    assert all("targets" not in c for c in record["cases_json"].values())


def two_ways_wrong(spec, params, X, T):
    """Doubles the output layer's ``∂L/∂W`` in layout ``in_out``; raises in layout ``out_in``."""
    if spec.layout == "out_in":
        raise ValueError("columns are examples: not written yet")
    trace, grads = backprop(spec, params, X, T)
    grads.layers[-1].grad_W = 2 * grads.layers[-1].grad_W
    return trace, grads


def test_the_message_shows_each_way_of_failing_with_its_shrunk_case_and_replay() -> None:
    """Only one shrunk case once reached the pytest message; the others were in the reports only."""
    with pytest.raises(BackpropMismatch) as caught:
        assert_backprop_matches(two_ways_wrong, cases=10, seed=0, fd="off", max_depth=2)
    message = str(caught.value)
    assert re.search(r"smallest failing case for call \(impl~torch\) \(shrunk-\d: 1 layer\(s\), batch 1\):", message)
    assert re.search(r"smallest failing case for dL/dW \(impl~torch\) \(shrunk-\d: 1 layer\(s\), batch 1\):", message)
    assert (
        "  impl(spec, params, X, T) raised ValueError: columns are examples: not written yet — raised in the" in message
    )
    replays = [line for line in message.splitlines() if line.startswith("  replay: ")]
    assert len(replays) == 2 and all(line.endswith("--impl test_gate_options:two_ways_wrong") for line in replays)
