"""The fast path of :mod:`refbp.network` against the textbook path it must reproduce bit for bit.

Random specs cover both layouts, every activation, loss, reduction, bias mode and the L2
term, in float64 and float32; the other tests check that inputs are never written, that a
later pass never overwrites an earlier result (pooled memory), that anything but plain
arrays takes the textbook path, and that bad input fails exactly as before.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle.cases import Case
from oracle.strategies import cases
from refbp.errors import InputError
from refbp.network import (
    backprop,
    backward,
    forward,
    release_buffers,
    textbook_backprop,
    textbook_backward,
    textbook_forward,
)
from refbp.spec import L2Spec, LayerSpec, LossSpec, NetworkSpec
from refbp.trace import quantity_map

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def assert_same_results(fast, textbook) -> None:
    """Every quantity identical (same dtype, same bits), and identity layers aliased the same way."""
    fast_map, textbook_map = quantity_map(*fast), quantity_map(*textbook)
    assert fast_map.keys() == textbook_map.keys()
    for key, expected in textbook_map.items():
        got = fast_map[key]
        assert got.dtype == expected.dtype, key
        assert got.shape == expected.shape, key
        assert np.array_equal(got, expected, equal_nan=True), key
    fast_trace, fast_grads = fast
    textbook_trace, textbook_grads = textbook
    assert fast_trace.data_loss == textbook_trace.data_loss
    assert fast_trace.penalty == textbook_trace.penalty
    for mine, theirs in zip(fast_grads.layers, textbook_grads.layers, strict=True):
        assert (mine.delta is mine.grad_a) == (theirs.delta is theirs.grad_a)


@SETTINGS
@given(cases(max_depth=4, max_width=7, max_batch=5, dtype="float64"))
def test_fast_backprop_equals_textbook_float64(case: Case) -> None:
    data = case.materialize()
    assert_same_results(
        backprop(case.spec, data.params, data.X, data.T), textbook_backprop(case.spec, data.params, data.X, data.T)
    )


@SETTINGS
@given(cases(max_depth=4, max_width=7, max_batch=5, dtype="float32"))
def test_fast_backprop_equals_textbook_float32(case: Case) -> None:
    data = case.materialize()
    fast = backprop(case.spec, data.params, data.X, data.T)
    assert fast[0].output.dtype == np.float32
    assert_same_results(fast, textbook_backprop(case.spec, data.params, data.X, data.T))


@SETTINGS
@given(cases(max_depth=3, max_width=6, max_batch=4), st.booleans())
def test_fast_forward_and_backward_equal_textbook(case: Case, with_targets: bool) -> None:
    data = case.materialize()
    T = data.T if with_targets else None
    fast_trace = forward(case.spec, data.params, data.X, T)
    textbook_trace = textbook_forward(case.spec, data.params, data.X, T)
    assert fast_trace.loss == textbook_trace.loss
    # backward of either trace gives the textbook gradients
    expected = textbook_backward(case.spec, data.params, textbook_trace, data.T)
    for trace in (fast_trace, textbook_trace):
        grads = backward(case.spec, data.params, trace, data.T)
        assert_same_results((trace, grads), (textbook_trace, expected))


def _network(layout: str = "in_out", dtype: str = "float64") -> NetworkSpec:
    return NetworkSpec(
        inputs=3,
        layers=(LayerSpec(5, "sigmoid"), LayerSpec(4, "leaky_relu", bias="shared"), LayerSpec(3, "softmax")),
        layout=layout,
        loss=LossSpec("softmax_cross_entropy", "mean"),
        l2=L2Spec(lam=0.1, include_bias=True),
        dtype=dtype,
    )


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_inputs_are_not_written_and_results_do_not_alias_them(layout: str, dtype: str) -> None:
    spec = _network(layout, dtype)
    data = Case(spec, batch=6, seed=3).materialize()
    before = {name: value.copy() for name, value in data.params.items()}
    X, T = data.X.copy(), data.T.copy()
    trace, grads = backprop(spec, data.params, data.X, data.T)
    for name, value in data.params.items():
        assert np.array_equal(value, before[name])
    assert np.array_equal(data.X, X) and np.array_equal(data.T, T)
    given = [data.X, data.T, *data.params.values()]
    returned = list(quantity_map(trace, grads).values())
    assert trace.x is not data.X
    for out in returned:
        assert not any(np.shares_memory(out, inp) for inp in given)
    # writing into a result leaves the inputs alone
    trace.x[...] = 7.0
    assert np.array_equal(data.X, X)


# Large enough for the pass's arrays to come from pooled blocks (refbp.network.POOLED_FROM_BYTES).
POOLED_BATCH = 2000


def test_a_later_pass_never_overwrites_an_earlier_result() -> None:
    spec = _network()
    first = Case(spec, batch=POOLED_BATCH, seed=1).materialize()
    kept = backprop(spec, first.params, first.X, first.T)
    snapshot = {key: value.copy() for key, value in quantity_map(*kept).items()}
    for seed in range(2, 12):  # later passes, whose own results are dropped at once
        other = Case(spec, batch=POOLED_BATCH, seed=seed).materialize()
        backprop(spec, other.params, other.X, other.T)
    for key, value in quantity_map(*kept).items():
        assert np.array_equal(value, snapshot[key]), key


def test_memory_of_dropped_results_is_reused() -> None:
    from refbp import network

    release_buffers()
    spec = _network()
    data = Case(spec, batch=POOLED_BATCH, seed=1).materialize()
    for _ in range(20):
        backprop(spec, data.params, data.X, data.T)
    # one block for the forward pass and one for the backward pass, reused every time
    assert len(network._POOL.blocks) == 2
    kept = [backprop(spec, data.params, data.X, data.T) for _ in range(3)]
    assert len(network._POOL.blocks) == 2 + 2 * 2  # the blocks in use cannot be reused
    assert len(kept) == 3
    release_buffers()
    assert network._POOL.blocks == []


def test_threads_do_not_share_buffers() -> None:
    spec = _network()
    data = [Case(spec, batch=POOLED_BATCH, seed=seed).materialize() for seed in range(4)]
    expected = [textbook_backprop(spec, d.params, d.X, d.T) for d in data]
    failures: list[str] = []

    def work(index: int) -> None:
        for _ in range(10):
            d = data[index]
            result = backprop(spec, d.params, d.X, d.T)
            for key, value in quantity_map(*expected[index]).items():
                if not np.array_equal(quantity_map(*result)[key], value):
                    failures.append(f"thread {index}: {key}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_lists_other_dtypes_and_layouts_in_memory_give_the_textbook_numbers() -> None:
    spec = _network()
    data = Case(spec, batch=4, seed=2).materialize()
    float32_params = {name: value.astype(np.float32) for name, value in data.params.items()}
    fortran_params = {name: np.asfortranarray(value) for name, value in data.params.items()}
    for params in (data.params, float32_params, fortran_params):
        for X in (data.X.tolist(), data.X.astype(np.float32), np.asfortranarray(data.X), data.X):
            fast = backprop(spec, params, X, data.T)
            assert_same_results(fast, textbook_backprop(spec, params, X, data.T))
    # integer labels for an index-target spec, a single example as a 1-D vector
    index_spec = spec.replace(loss=LossSpec("softmax_cross_entropy", "sum", targets="index"))
    labels = np.array([2, 0, 1, 1])
    assert_same_results(
        backprop(index_spec, data.params, data.X, labels), textbook_backprop(index_spec, data.params, data.X, labels)
    )
    one = data.X[0]
    assert_same_results(
        backprop(spec, data.params, one, data.T[0]), textbook_backprop(spec, data.params, one, data.T[0])
    )


@pytest.mark.parametrize(
    ("which", "value"),
    [("X", np.nan), ("X", np.inf), ("T", np.nan), ("T", 1.5)],
)
def test_bad_data_fails_as_on_the_textbook_path(which: str, value: float) -> None:
    spec = _network()
    data = Case(spec, batch=4, seed=2).materialize()
    X, T = data.X.copy(), data.T.copy()
    (X if which == "X" else T)[1, 1] = value
    with pytest.raises(InputError) as textbook_error:
        textbook_backprop(spec, data.params, X, T)
    with pytest.raises(InputError) as fast_error:
        backprop(spec, data.params, X, T)
    assert str(fast_error.value) == str(textbook_error.value)


def test_wrong_parameter_shapes_fail_as_on_the_textbook_path() -> None:
    spec = _network()
    data = Case(spec, batch=4, seed=2).materialize()
    params = dict(data.params, W2=data.params["W2"].T.copy())
    message = r"^params: W2: expected shape \(5, 4\), got 'shape \(4, 5\)'$"
    with pytest.raises(InputError, match=message):
        textbook_backprop(spec, params, data.X, data.T)
    with pytest.raises(InputError, match=message):
        backprop(spec, params, data.X, data.T)


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("hidden", "output", "loss"),
    [
        ("sigmoid", "softmax", "softmax_cross_entropy"),
        ("tanh", "identity", "half_sse"),
        ("relu", "sigmoid", "binary_cross_entropy"),
        ("leaky_relu", "tanh", "mse"),
        ("identity", "softmax", "half_sse"),
    ],
)
def test_pooled_passes_equal_textbook(layout: str, dtype: str, hidden: str, output: str, loss: str) -> None:
    spec = NetworkSpec(
        inputs=4,
        layers=(LayerSpec(6, hidden), LayerSpec(5, hidden, bias="shared"), LayerSpec(3, output, bias="none")),
        layout=layout,
        loss=LossSpec(loss, "mean"),
        l2=L2Spec(lam=0.01),
        dtype=dtype,
    )
    data = Case(spec, batch=POOLED_BATCH, seed=5).materialize()
    for _ in range(2):  # a fresh block, then a reused one
        fast = backprop(spec, data.params, data.X, data.T)
        assert_same_results(fast, textbook_backprop(spec, data.params, data.X, data.T))
        assert not fast[0].x.flags.owndata  # a view into a pooled block
