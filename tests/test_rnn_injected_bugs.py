"""Known backprop-through-time bugs injected into refbp's sequence layers (or its temporal loss) must be
caught at that layer and quantity, and shrunk to a case of at most three time steps.

As in ``test_cnn_injected_bugs``, each bug replaces one registry entry's backward (or the loss)
for the duration of a call of refbp's typed network; the torch twin and finite differences are
untouched. ``∂L/∂a`` of layer ``l`` (``∂L/∂x`` for ``l = 0``) is formed by the backward of layer
``l + 1``; a parameter gradient by its own layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from oracle.rnn_strategies import rnn_specs
from oracle.sweep import run_sweep
from refbp import losses, sequential
from refbp.layers import embedding, lstm, rnn
from refbp.layers.registry import LAYER_TYPES
from refbp.spec import SEQUENCE_LOSSES


def _rnn_backward(step: Callable, sum_wh: bool = True, carry: bool = True) -> Callable:
    """refbp's BPTT loop with one step's backward replaced (``step(dh_t, x_t, prev, h_t, params)``); ``dh_t`` is
    ``dout_t + dnext`` or, with ``carry=False``, ``dout_t`` alone. Like refbp's, it reports every step's ``dh_t``."""

    def backward(layer, params, cache, dout):
        x, h = cache
        N, T, _ = x.shape
        h0 = np.broadcast_to(params["h0"], (N, layer.hidden))
        dx, dh = np.empty_like(x), np.empty_like(h)
        grads = {kind: np.zeros_like(params[kind]) for kind in ("Wx", "Wh", "b")}
        dnext = np.zeros((N, layer.hidden))
        for t in range(T - 1, -1, -1):
            prev = h[:, t - 1] if t else h0
            dh[:, t] = dout[:, t] + dnext if carry else dout[:, t]
            dx[:, t], dnext, dWx, dWh, db = step(dh[:, t], x[:, t], prev, h[:, t], params)
            grads["Wx"] += dWx
            grads["Wh"] = grads["Wh"] + dWh if sum_wh else dWh
            grads["b"] += db
        grads["h0"] = dnext.sum(axis=0)
        grads["h"] = dh
        return dx, grads

    return backward


def _right_step(dh, x, prev, h, p):
    return rnn.step_backward(dh, x, prev, h, p["Wx"], p["Wh"])


def _tanh_prime_wrong_step(dh, x, prev, h, p):
    """tanh' taken as 1 − h_{t−1}² (the previous step's state) instead of 1 − h_t²."""
    return rnn.step_backward(dh, x, prev, prev, p["Wx"], p["Wh"])


def _lstm_stepwise_backward(layer, params, cache, dout, step=lstm.step_backward, order: str | None = None):
    """BPTT as a loop over :func:`refbp.layers.lstm.step_backward` (``step``), reading refbp's cache:
    ``x (N, T, D)``, the states, cells and gates ``(T, N, ·)``, the gates in the layer's column order.
    ``order`` is the column order the step assembles its gate gradients in (the layer's when None)."""
    x, h, cs, gates = cache
    N, T, _ = x.shape
    H = layer.hidden
    blocks = {gate: slice(k * H, (k + 1) * H) for k, gate in enumerate(layer.gate_order)}
    h0 = np.broadcast_to(params["h0"], (N, H))
    dx = np.empty_like(x)
    grads = {kind: np.zeros_like(params[kind]) for kind in ("Wx", "Wh", "b")}
    dtype = np.result_type(dout, gates)
    grads["h"], grads["c"] = np.empty((N, T, H), dtype=dtype), np.empty((N, T, H), dtype=dtype)
    dnext_h, dnext_c = np.zeros((N, H), dtype=dtype), np.zeros((N, H), dtype=dtype)
    for t in range(T - 1, -1, -1):
        named = {gate: gates[t][:, blocks[gate]] for gate in "ifog"}
        prev_h, prev_c = (h[t - 1], cs[t - 1]) if t else (h0, np.zeros((N, H), dtype=dtype))
        dh = dout[:, t] + dnext_h
        grads["h"][:, t], grads["c"][:, t] = dh, lstm.cell_gradient(dh, dnext_c, cs[t], named["o"])
        dx[:, t], dnext_h, dnext_c, dWx, dWh, db = step(
            dh, dnext_c, x[:, t], prev_h, prev_c, cs[t], named, params["Wx"], params["Wh"], order or layer.gate_order
        )
        grads["Wx"] += dWx
        grads["Wh"] += dWh
        grads["b"] += db
    grads["h0"] = dnext_h.sum(axis=0)
    return dx, grads


def lstm_gate_order_swapped(layer, params, cache, dout):
    """Forward in the layer's gate order, backward assembling the gate gradients in the other one."""
    other = "ifgo" if layer.gate_order == "ifog" else "ifog"
    return _lstm_stepwise_backward(layer, params, cache, dout, order=other)


def lstm_forget_factor_dropped(layer, params, cache, dout):
    """``dprev_c = dc``: the cell gradient carried to step t−1 without the forget gate's factor ``f``."""

    def step(dnext_h, dnext_c, x, prev_h, prev_c, next_c, gates, Wx, Wh, order="ifog"):
        dx, dprev_h, _, dWx, dWh, db = lstm.step_backward(
            dnext_h, dnext_c, x, prev_h, prev_c, next_c, gates, Wx, Wh, order
        )
        return dx, dprev_h, lstm.cell_gradient(dnext_h, dnext_c, next_c, gates["o"]), dWx, dWh, db

    return _lstm_stepwise_backward(layer, params, cache, dout, step=step)


def embedding_overwrites(layer, params, cache, dout):
    """``dW[x] = dout``: a repeated index keeps only one step's gradient."""
    x_shape, idx = cache
    dW = np.zeros(params["W"].shape)
    dW[idx] = dout
    return np.zeros(x_shape), {"W": dW}


def mask_ignored(spec, z, a, T):
    """The temporal loss with every step counted, masked ones (label −1 read as class 0) included."""
    return losses.compute_loss(spec, z, a, np.where(T < 0, 0, T))


# bug → (layer type whose backward is replaced or "loss", replacement, spec bounds of the drawn networks)
BUGS: dict[str, tuple[str, Callable, dict]] = {
    "carried_dh_dropped": ("rnn", _rnn_backward(_right_step, carry=False), {"layers": ["rnn"]}),
    "dWh_not_summed": ("rnn", _rnn_backward(_right_step, sum_wh=False), {"layers": ["rnn"]}),
    "tanh_prime_wrong_step": ("rnn", _rnn_backward(_tanh_prime_wrong_step), {"layers": ["rnn"]}),
    "gate_order_swapped": ("lstm", lstm_gate_order_swapped, {"layers": ["lstm"]}),
    "forget_factor_dropped": ("lstm", lstm_forget_factor_dropped, {"layers": ["lstm"]}),
    "embedding_overwrites": ("embedding", embedding_overwrites, {"inputs": ["embedding"]}),
    "mask_ignored": ("loss", mask_ignored, {"losses": list(SEQUENCE_LOSSES)}),
}


def buggy(kind: str, replacement: Callable) -> Callable:
    def backprop(spec, params, X, T, buffers=None):
        if kind == "loss":
            original_loss = sequential.compute_loss
            sequential.compute_loss = replacement
            try:
                return sequential.backprop(spec, params, X, T, buffers=buffers)
            finally:
                sequential.compute_loss = original_loss
        original = LAYER_TYPES[kind]
        LAYER_TYPES[kind] = replace(original, backward=replacement)
        try:
            return sequential.backprop(spec, params, X, T, buffers=buffers)
        finally:
            LAYER_TYPES[kind] = original

    return backprop


@pytest.mark.parametrize("order", ["ifog", "ifgo"])
def test_the_stepwise_lstm_loop_is_refbp_lstm_backward(order: str) -> None:
    """The loop the LSTM bugs are injected into gives refbp's own backward when nothing is broken."""
    rng = np.random.default_rng(3)
    layer = lstm.LSTM(hidden=3, gate_order=order)
    params = {name: rng.standard_normal(shape) for name, shape in layer.parameter_shapes((4, 5)).items()}
    x = rng.standard_normal((2, 4, 5))
    out, cache, _ = lstm.forward(layer, params, x, {})
    dout = rng.standard_normal(out.shape)
    dx, grads = lstm.backward(layer, params, cache, dout)
    dx_loop, grads_loop = _lstm_stepwise_backward(layer, params, cache, dout)
    np.testing.assert_allclose(dx_loop, dx, rtol=1e-12, atol=1e-14)
    assert grads_loop.keys() == grads.keys()
    for name in grads:
        np.testing.assert_allclose(grads_loop[name], grads[name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_the_harness_loop_is_refbp_when_nothing_is_broken() -> None:
    rng = np.random.default_rng(0)
    layer = rnn.RNN(3)
    params = {"Wx": rng.standard_normal((2, 3)), "Wh": rng.standard_normal((3, 3)), "b": rng.standard_normal(3)}
    params["h0"] = rng.standard_normal(3)
    _, cache, _ = rnn.forward(layer, params, rng.standard_normal((2, 4, 2)), {})
    dout = rng.standard_normal((2, 4, 3))
    right, right_grads = rnn.backward(layer, params, cache, dout)
    mine, mine_grads = _rnn_backward(_right_step)(layer, params, cache, dout)
    np.testing.assert_allclose(mine, right, rtol=1e-13)
    for kind in right_grads:
        np.testing.assert_allclose(mine_grads[kind], right_grads[kind], rtol=1e-13)


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_injected_bptt_bug_is_located_and_shrunk(bug: str) -> None:
    kind, replacement, bounds = BUGS[bug]
    result = run_sweep(
        25,
        seed=5,
        impl=buggy(kind, replacement),
        impl_name="buggy",
        impl_ref=f"bugs.py:{bug}",
        max_shrinks=1,
        progress=False,
        families=["rnn"],
        specs=rnn_specs(l2=False, **bounds),
    )
    assert result.failures, f"{bug}: no case failed"
    for failed in result.failures:
        first = failed.first
        assert first.pair.startswith("buggy~"), (bug, first)
        spec = result.cases[failed.case].spec
        if kind == "loss":
            assert first.layer == spec.depth and first.quantity in ("loss", "dL/da"), (bug, first)
            continue
        below = first.quantity in ("dL/da", "dL/dx")
        culprit = spec.layers[first.layer] if below else spec.layers[first.layer - 1]
        assert culprit.type == kind, (bug, failed.case, first.layer, first.quantity)
        _assert_step_divergence(bug, failed, spec)
    assert len(result.shrunk) == 1
    shrunk = result.shrunk[0]
    steps = shrunk["case"]["spec"]["inputs"][0]
    assert steps <= 3, shrunk
    assert "refbp replay" in shrunk["replay"]
    if kind != "loss":
        diagnosis = shrunk["first_divergence"]["diagnosis"]
        assert f"({kind})" in diagnosis and "δ" not in diagnosis, shrunk["first_divergence"]


# bug → the per-step quantity where it first shows, or None when every step agrees (a sum over steps is wrong)
STEP_OF_BUG = {
    "carried_dh_dropped": "dL/dh",
    "tanh_prime_wrong_step": "dL/dh",
    "gate_order_swapped": "dL/dh",
    "forget_factor_dropped": "dL/dc",
    "dWh_not_summed": None,
}


def _assert_step_divergence(bug: str, failed, spec) -> None:
    """The first divergence of a failing case of ``bug``: the per-step row of the layer the bug is in, at a step
    below the last with every later step agreeing, named in the diagnosis; or, when every step agrees, a
    parameter gradient whose diagnosis says so."""
    if bug not in STEP_OF_BUG:
        return
    first, quantity = failed.first, STEP_OF_BUG[bug]
    if first.step is None:  # a sum over the steps, or a layer where no carried gradient is off (T = 1, masks)
        assert first.quantity in ("dL/dWx", "dL/dWh", "dL/db", "dL/dh0"), (bug, first)
        same_layer = [r for r in failed.rows if r.layer == first.layer and r.step is not None]
        assert all(r.status == "ok" for r in same_layer if r.pair.startswith("buggy~")), (bug, first)
        if quantity is None:
            assert "agrees, so the backward of each step is right" in first.diagnosis, first.diagnosis
        return
    assert quantity is not None, (bug, first)
    steps = spec.shapes[first.layer][0]
    assert first.quantity == quantity and first.step is not None and first.step < steps - 1, (bug, first)
    assert spec.layers[first.layer - 1].type == BUGS[bug][0]
    later = [r for r in failed.rows if r.layer == first.layer and r.step is not None and r.step > first.step]
    assert later and all(r.status == "ok" for r in later), (bug, first)
    assert f"step {first.step} does not" in first.diagnosis, first.diagnosis


@pytest.mark.parametrize(
    ("bug", "quantity", "words"),
    [
        ("carried_dh_dropped", "dL/dh", "step 3 agrees, step 2 does not: the carried dh is missing"),
        ("tanh_prime_wrong_step", "dL/dh", "step 3 agrees, step 2 does not: the gradient carried back from step 3"),
        ("gate_order_swapped", "dL/dh", "step 3 agrees, step 2 does not: the gradient carried back from step 3"),
        ("forget_factor_dropped", "dL/dc", "step 3 agrees, step 2 does not, though ∂L/∂h_2 agrees"),
        ("dWh_not_summed", "dL/dWh", "every step's ∂L/∂h_t agrees, so the backward of each step is right"),
    ],
)
def test_the_first_divergence_names_the_step_and_the_quantity(bug: str, quantity: str, words: str) -> None:
    from oracle.cases import Case
    from oracle.check import check_case, describe
    from refbp.sequential_spec import SequentialSpec

    kind, replacement, _ = BUGS[bug]
    spec = SequentialSpec.from_dict(
        {
            "inputs": [4, 2],
            "layers": [{"type": kind, "hidden": 3}, {"type": "temporal_affine", "units": 3}],
            "loss": {"kind": "temporal_softmax_cross_entropy", "targets": "index", "reduction": "mean"},
        }
    )
    data = Case(spec, 2, 1).materialize()
    T = np.array([[0, 1, 2, 1], [2, 2, 0, 1]])  # every step counted
    result = check_case("c", spec, data.params, data.X, T, impl=buggy(kind, replacement), impl_name="buggy")
    first = result.first
    assert (first.layer, first.quantity, first.pair) == (1, quantity, "buggy~torch"), first
    if quantity in ("dL/dh", "dL/dc"):
        assert first.step == 2
        assert describe(result).startswith(f"layer 1, {quantity} at step 2 (buggy~torch): mismatch")
        # the same step disagrees with finite differences; torch and finite differences agree at every step
        fd_row = next(r for r in result.rows if (r.quantity, r.step, r.pair) == (quantity, 2, "buggy~fd"))
        assert fd_row.status == "mismatch"
    else:
        assert first.step is None
    assert all(r.status == "ok" for r in result.rows if r.pair == "torch~fd")
    assert words in first.diagnosis, first.diagnosis
    assert f"({kind})" in first.diagnosis or quantity == "dL/dWh"


def test_the_overwriting_embedding_differs_only_at_repeated_indices() -> None:
    layer = embedding.Embedding(vocab=4, dim=2)
    W = np.zeros((4, 2))
    _, cache, _ = embedding.forward(layer, {"W": W}, np.array([[0.0, 2.0, 0.0, 3.0]]), {})
    dout = np.arange(8.0).reshape(1, 4, 2) + 1
    _, right = embedding.backward(layer, {"W": W}, cache, dout)
    _, wrong = embedding_overwrites(layer, {"W": W}, cache, dout)
    np.testing.assert_array_equal(right["W"][1:], wrong["W"][1:])
    np.testing.assert_array_equal(right["W"][0], [6.0, 8.0])
    assert not np.array_equal(wrong["W"][0], right["W"][0])


def test_the_diagnosis_names_the_step_where_the_carried_gradient_goes_missing() -> None:
    from oracle.cases import Case
    from oracle.check import check_case
    from refbp.sequential_spec import SequentialSpec

    spec = SequentialSpec.from_dict(
        {
            "inputs": [4, 2],
            "layers": [{"type": "rnn", "hidden": 3}, {"type": "temporal_affine", "units": 3}],
            "loss": {"kind": "temporal_softmax_cross_entropy", "targets": "index", "reduction": "mean"},
        }
    )
    data = Case(spec, 2, 1).materialize()
    T = np.zeros((2, 4), dtype=int)  # every step counted
    impl = buggy("rnn", _rnn_backward(_right_step, carry=False))
    result = check_case("c", spec, data.params, data.X, T, impl=impl, impl_name="buggy", fd="off")
    dx = next(r for r in result.rows if r.quantity == "dL/dx" and r.pair == "buggy~torch")
    assert dx.status == "mismatch"
    assert "step 3 agrees, step 2 does not" in dx.diagnosis, dx.diagnosis
    assert "(rnn)" in dx.diagnosis and "backprop through time" in dx.diagnosis


def test_step_hints_forward_and_backward() -> None:
    from oracle.step_hints import step_hint

    ref = np.ones((2, 5, 3))
    wrong = ref.copy()
    wrong[1, 2, 0] = 1.5
    assert step_hint(wrong, ref, rtol=1e-6, backward=True).startswith("steps 3–4 agree, step 2 does not")
    assert step_hint(wrong, ref, rtol=1e-6, backward=False) == "steps 0–1 agree, step 2 does not"
    wrong[0, 4, 1] = 0.0
    assert step_hint(wrong, ref, rtol=1e-6, backward=True).startswith("already the last step (4) differs")
    assert step_hint(ref, ref, rtol=1e-6, backward=True) == ""


def test_every_report_shows_the_time_step_of_the_first_divergence(tmp_path) -> None:
    import json

    from oracle.gate import BackpropMismatch, failing_rows, run_gate
    from oracle.gate_records import record_meta
    from oracle.pytest_plugin import failure_reports
    from oracle.report import write_reports

    record = run_gate(
        buggy("rnn", _rnn_backward(_right_step, carry=False)),
        specs=rnn_specs(l2=False, layers=["rnn"]),
        cases=8,
        max_shrinks=1,
        label="tests/test_rnn.py::test_bptt",
    )
    stepped = [r for r in failing_rows(record) if r["step"] is not None]
    assert stepped and all(r["quantity"] == "dL/dh" and isinstance(r["step"], int) for r in stepped)
    assert all(r["step"] is None for r in record["rows"] if r["quantity"] not in ("dL/dh", "dL/dc"))
    first = record["shrunk"][0]["first_divergence"]
    label = f"{first['quantity']}, step {first['step']}"
    assert first["quantity"] == "dL/dh" and "the carried dh is missing" in first["diagnosis"]
    # terminal: the gate's failure message
    message = str(BackpropMismatch(record))
    assert f"{label} (impl~torch)" in message and "the carried dh is missing" in message
    # junit: one testcase per failing (case, layer, quantity and step)
    names = [report.nodeid for report in failure_reports(record) if report.when == "call"]
    assert any(", step " in name and "dL/dh" in name for name in names), names
    # csv, json, markdown, html
    paths = write_reports(tmp_path, record["rows"], record_meta(record))
    summary = json.loads(paths["json"].read_text())
    steps = {d["step"] for d in summary["first_divergence"] if d["quantity"] == "dL/dh"}
    assert steps and all(isinstance(s, int) for s in steps)
    assert all(d["step"] is None for d in summary["first_divergence"] if d["quantity"] != "dL/dh")
    assert "step" in paths["csv"].read_text().splitlines()[0].split(",")
    assert "dL/dh, step " in paths["md"].read_text()
    assert "dL/dh, step " in paths["html"].read_text()
