"""Typed networks as data: the spec format, parameter and buffer names, errors, and one hand-built
network that refbp, the torch twin and finite differences agree on."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from oracle.cases import Case
from oracle.check import check_case
from oracle.families import parse_families
from refbp.errors import InputError
from refbp.network import backprop
from refbp.sequential_spec import SequentialSpec
from refbp.spec import NetworkSpec

CNN = {
    "inputs": [2, 5, 5],
    "layers": [
        {"type": "conv2d", "filters": 3, "kernel": 3, "padding": 1, "stride": 2, "activation": "tanh"},
        {"type": "batchnorm", "mode": "train", "momentum": 0.5},
        {"type": "max_pool2d", "kernel": 2, "stride": 1},
        {"type": "groupnorm", "groups": 3, "activation": "sigmoid"},
        {"type": "avg_pool2d", "kernel": [1, 2]},
        {"type": "flatten"},
        {"type": "dropout", "drop_prob": 0.25, "seed": 4},
        {"units": 4, "activation": "tanh"},
        {"type": "layernorm"},
        {"type": "batchnorm", "mode": "eval"},
        {"type": "dense", "units": 3, "activation": "softmax", "bias": "shared"},
    ],
    "loss": {"kind": "softmax_cross_entropy", "reduction": "mean", "targets": "index"},
    "l2": {"lambda": 0.1, "include_bias": True},
}


def test_typed_layers_give_a_sequential_spec_with_stable_names() -> None:
    spec = NetworkSpec.from_dict(CNN)
    assert isinstance(spec, SequentialSpec)
    assert spec.shapes[1:4] == ((3, 3, 3), (3, 3, 3), (3, 2, 2))
    assert spec.parameter_shapes() == {
        "W1": (3, 2, 3, 3),
        "b1": (3,),
        "gamma2": (3,),
        "beta2": (3,),
        "gamma4": (3,),
        "beta4": (3,),
        "W8": (6, 4),
        "b8": (4,),
        "gamma9": (4,),
        "beta9": (4,),
        "gamma10": (4,),
        "beta10": (4,),
        "W11": (4, 3),
        "b11": (1,),
    }
    assert spec.buffer_shapes() == {
        "running_mean2": (3,),
        "running_var2": (3,),
        "running_mean10": (4,),
        "running_var10": (4,),
    }
    again = NetworkSpec.from_json(spec.to_json())
    assert again == spec and NetworkSpec.from_toml(spec.to_toml()) == spec
    assert again.layers[6].to_dict()["drop_prob"] == pytest.approx(0.25)


def test_dense_specs_stay_network_specs() -> None:
    dense = {"inputs": 3, "layers": [{"units": 2, "activation": "relu"}, {"type": "dense", "units": 1}]}
    spec = NetworkSpec.from_dict(dense)
    assert type(spec) is NetworkSpec and spec.parameter_shapes() == {"W1": (3, 2), "b1": (2,), "W2": (2, 1), "b2": (1,)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"layers": [{"type": "conv3d"}]}, "spec: layers[0].type: expected one of dense, conv2d"),
        ({"layers": [{"type": "conv2d", "filters": 1, "kernel": 9}]}, "layers[0].kernel: expected a kernel that fits"),
        ({"layers": [{"type": "conv2d", "filters": 1, "kernel": 3}, {"units": 2}]}, "layers[1]: expected a flat input"),
        ({"layers": [{"type": "dropout", "keep_prob": 0.5, "drop_prob": 0.5}]}, "exactly one of keep_prob or drop"),
        ({"layers": [{"type": "groupnorm", "groups": 3}, {"type": "flatten"}]}, "groups: expected a divisor of the 2"),
        ({"layers": [{"type": "max_pool2d", "kernel": 2, "strid": 1}]}, "layers[0].strid: expected a known field"),
        ({"layers": [{"type": "flatten"}]}, "loss.kind"),
        ({"layout": "out_in"}, "layout: expected in_out"),
    ],
)
def test_bad_typed_specs_name_the_field(change: dict, message: str) -> None:
    data = {**CNN, **change}
    if message == "loss.kind":
        data["loss"] = {"kind": "huber"}
    with pytest.raises(InputError) as err:
        NetworkSpec.from_dict(data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_l2_penalises_weights_and_biases_but_not_gamma_beta() -> None:
    spec = NetworkSpec.from_dict(CNN)
    data = Case(spec, 2, 3).materialize()
    trace, grads = backprop(spec, data.params, data.X, data.T, buffers=data.buffers)
    kinds = ("W1", "b1", "W8", "b8", "W11", "b11")
    assert trace.penalty == pytest.approx(0.05 * sum(float(np.sum(data.params[k] ** 2)) for k in kinds))
    _, plain_grads = backprop(spec.replace(l2=spec.l2.__class__()), data.params, data.X, data.T, buffers=data.buffers)
    by_name, plain_by_name = grads.by_parameter(), plain_grads.by_parameter()
    np.testing.assert_allclose(by_name["gamma9"], plain_by_name["gamma9"])
    np.testing.assert_allclose(by_name["W8"] - plain_by_name["W8"], 0.1 * data.params["W8"], atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_layer_type_agrees_three_ways(dtype: str) -> None:
    spec = NetworkSpec.from_dict({**CNN, "dtype": dtype})
    case = Case(spec, batch=3, seed=2)
    data = case.materialize()
    assert set(data.buffers) == {"running_mean10", "running_var10"}
    result = check_case("c1", spec, data.params, data.X, data.T, buffers=data.buffers)
    assert result.passed, [
        (r.layer, r.quantity, r.pair, r.status, r.max_rel_err) for r in result.rows if r.status != "ok"
    ]
    compared = {(r.layer, r.quantity) for r in result.rows if r.pair == "refbp~fd"}
    assert {(2, "dL/dgamma"), (4, "dL/dbeta"), (1, "dL/dW"), (0, "dL/dx"), (3, "dL/da"), (10, "delta")} <= compared
    states = {(r.layer, r.quantity) for r in result.rows if r.pair == "refbp~torch"}
    assert {(2, "running_mean"), (2, "running_var")} <= states


def test_an_explicit_dropout_mask_is_used_by_all_three() -> None:
    spec = NetworkSpec.from_dict(CNN)
    data = Case(spec, batch=2, seed=1).materialize()
    mask = np.zeros((2, 6))
    mask[:, ::3] = 1
    buffers = {**data.buffers, "mask7": mask}
    trace, _ = backprop(spec, data.params, data.X, data.T, buffers=buffers)
    np.testing.assert_array_equal(trace.layers[6].a[:, 1::3], 0.0)
    result = check_case("c1", spec, data.params, data.X, data.T, buffers=buffers)
    assert result.passed
    with pytest.raises(InputError, match="mask9"):
        backprop(spec, data.params, data.X, data.T, buffers={"mask9": mask})


def test_families_are_parsed_and_the_cli_sweeps_cnn(tmp_path) -> None:
    assert parse_families(None) == ("mlp", "cnn", "rnn") and parse_families("cnn,mlp,cnn") == ("cnn", "mlp")
    with pytest.raises(ValueError, match="gru"):
        parse_families("gru")
    command = [sys.executable, "-m", "refbp.cli", "sweep", "--families", "cnn", "--cases", "6", "--quiet"]
    done = subprocess.run([*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("PASS: 6 cases")
    report = json.loads((tmp_path / "sweep.json").read_text())
    assert "cnn" in json.dumps(report)
    bad = subprocess.run([*command[:4], "--families", "gru"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "gru" in bad.stderr and "Traceback" not in bad.stderr


def test_a_typed_case_replays_from_its_json(capsys) -> None:
    from refbp.cli import main

    case = Case(NetworkSpec.from_dict(CNN), batch=2, seed=5)
    assert Case.from_json(case.to_json()) == case
    assert main(["replay", case.to_json()]) == 0
    assert capsys.readouterr().out.startswith("11 layer(s), batch 2, seed 5: ok")
    bad = case.to_json().replace('"kernel":2,"stride":1', '"kernel":9,"stride":1')
    assert main(["replay", bad]) == 2
    assert "layers[2].kernel: expected a window that fits the input (3, 3, 3)" in capsys.readouterr().err


def test_the_network_gate_takes_a_typed_spec() -> None:
    from oracle.gate import BackpropMismatch, assert_backprop_matches

    spec = NetworkSpec.from_dict(
        {
            "inputs": [1, 3, 3],
            "layers": [
                {"type": "conv2d", "filters": 2, "kernel": 2},
                {"type": "batchnorm"},
                {"type": "flatten"},
                {"units": 1},
            ],
        }
    )
    assert_backprop_matches(backprop, spec=spec, cases=4, seed=0)

    def no_beta(spec, params, X, T, buffers=None):
        grads = backprop(spec, params, X, T, buffers=buffers)[1].by_parameter()
        return {**grads, "beta2": 2 * grads["beta2"]}

    with pytest.raises(BackpropMismatch, match="dL/dbeta"):
        assert_backprop_matches(no_beta, spec=spec, cases=4, seed=0)
