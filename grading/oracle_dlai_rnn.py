"""The ``dlai-rnn`` interface: deeplearning.ai's "Building a Recurrent Neural Network — Step by Step" (C5W1).

Conventions (column-major: examples in columns, ``m`` of them; sequences ``(n, m, T_x)``):

* ``rnn_cell_forward(xt, a_prev, parameters) -> (a_next, yt_pred, cache)`` with ``xt (n_x, m)``,
  ``a_prev (n_a, m)``, ``a_next = tanh(Wax xt + Waa a_prev + ba)``, ``yt_pred = softmax(Wya a_next
  + by)`` over each column, ``parameters`` keyed ``Wax (n_a, n_x)``, ``Waa (n_a, n_a)``,
  ``Wya (n_y, n_a)``, ``ba (n_a, 1)``, ``by (n_y, 1)``; ``cache = (a_next, a_prev, xt, parameters)``;
* ``rnn_forward(x, a0, parameters) -> (a, y_pred, caches)``, ``x (n_x, m, T_x)``, ``a (n_a, m, T_x)``,
  ``y_pred (n_y, m, T_x)``, ``caches = (list of the step caches, x)``;
* ``rnn_cell_backward(da_next, cache) -> gradients`` keyed ``dxt, da_prev, dWax, dWaa, dba``
  (``dba (n_a, 1)``: summed over the examples with ``keepdims=True``, as the notebook says);
  ``rnn_backward(da, caches) -> gradients`` keyed ``dx, da0, dWax, dWaa, dba``, ``da`` the
  upstream gradient of every ``a⟨t⟩`` (each step adds the ``da_prev`` of the step after it);
* ``lstm_cell_forward(xt, a_prev, c_prev, parameters) -> (a_next, c_next, yt_pred, cache)``: the
  gates act on ``concat = [a_prev; xt]`` (``(n_a + n_x, m)``): ``ft = σ(Wf concat + bf)``,
  ``it = σ(Wi concat + bi)``, ``cct = tanh(Wc concat + bc)``, ``c_next = ft * c_prev + it * cct``,
  ``ot = σ(Wo concat + bo)``, ``a_next = ot * tanh(c_next)``, ``yt_pred = softmax(Wy a_next + by)``;
  ``cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)``;
* ``lstm_forward(x, a0, parameters) -> (a, y, c, caches)`` with ``c⟨0⟩ = 0``;
* ``lstm_cell_backward(da_next, dc_next, cache) -> gradients`` keyed ``dxt, da_prev, dc_prev,
  dWf, dbf, dWi, dbi, dWc, dbc, dWo, dbo`` (weights ``(n_a, n_a + n_x)``, biases ``(n_a, 1)``);
  ``lstm_backward(da, caches) -> gradients`` keyed ``dx, da0, dWf, dbf, …, dWo, dbo``.

The reference values come from refbp's row-major recurrent steps (:mod:`refbp.layers.rnn`,
:mod:`refbp.layers.lstm`) through :func:`grading.oracle_rnn.rnn_sequence` and
:func:`~grading.oracle_rnn.lstm_sequence`, transposed into the notebook's layout (the LSTM's
four matrices stacked as refbp's gate columns ``i, f, o, g``, ``g`` the candidate ``c̃``);
:mod:`grading.torch_dlai_rnn` recomputes every value with torch. The notebook's 2018 edition
printed an ``lstm_backward`` expected output computed without carrying ``da_prev`` and
``dc_prev`` between steps; that output is recognised and named (``carried_dh_dropped``), the
current edition's correct one is graded.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from grading.oracle_rnn import carried_dropped_step, lstm_sequence, rnn_sequence, tanh_wrong_step
from grading.plan import Expect, FunctionCheck, Hints, arg, arrays_dict, returned
from grading.sandbox import Call
from refbp.activations import softmax
from refbp.layers import lstm, rnn

FUNCTIONS = (
    "rnn_cell_forward",
    "rnn_forward",
    "rnn_cell_backward",
    "rnn_backward",
    "lstm_cell_forward",
    "lstm_forward",
    "lstm_cell_backward",
    "lstm_backward",
)
RNN_KEYS = ("Wax", "Waa", "Wya", "ba", "by")
LSTM_KEYS = ("Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo", "Wy", "by")
#: refbp's gate letter → the notebook's (``g``, the candidate cell state, is ``c``: ``Wc``, ``bc``).
GATES = {"i": "i", "f": "f", "o": "o", "g": "c"}
#: The notebook's words in the recurrent hints (see :data:`grading.patterns.COURSE_TERMS`).
TERMS = {
    "dh": "da_next",
    "dh_t": "da[:, :, t]",
    "dprev_h": "da_prev",
    "dWh": "dWaa",
    "next_h": "a_next",
    "gate_rule": "each gate's derivative belongs to its own gate (dft with c_prev into dWf, dbf; dit with cct into "
    "dWi, dbi) — check which of ft, it, cct, ot each line uses",
}
LSTM_TERMS = TERMS | {
    "carried_more": ", and each step's dc_next is the dc_prev returned by the step after it (the notebook's 2018 "
    "edition printed an expected output computed without either; the current edition carries both)"
}
_STATES = ("dxt", "da_prev", "dc_prev", "dx", "da0", "a_next", "c_next", "yt_pred", "a", "c", "y", "y_pred")


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 51, index])


def _sizes(rng: np.random.Generator) -> tuple[int, int, int, int, int]:
    """``n_x, n_a, n_y, m, T_x``: small, ``T_x >= 3`` so that carried gradients matter."""
    n_x, n_a, n_y = int(rng.integers(2, 5)), int(rng.integers(2, 5)), int(rng.integers(2, 4))
    return n_x, n_a, n_y, int(rng.integers(2, 5)), int(rng.integers(3, 5))


def _rnn_parameters(rng: np.random.Generator, n_x: int, n_a: int, n_y: int) -> dict[str, np.ndarray]:
    shapes = {"Wax": (n_a, n_x), "Waa": (n_a, n_a), "Wya": (n_y, n_a), "ba": (n_a, 1), "by": (n_y, 1)}
    return {key: rng.standard_normal(shape) * (0.6 if key[0] == "W" else 0.3) for key, shape in shapes.items()}


def _lstm_parameters(rng: np.random.Generator, n_x: int, n_a: int, n_y: int) -> dict[str, np.ndarray]:
    params = {}
    for key in LSTM_KEYS:
        rows = n_y if key in ("Wy", "by") else n_a
        shape = (rows, 1) if key[0] == "b" else (rows, n_a) if key == "Wy" else (rows, n_a + n_x)
        params[key] = rng.standard_normal(shape) * (0.6 if key[0] == "W" else 0.3)
    return params


def _sequence_case(rng: np.random.Generator, sizes: tuple[int, ...], run, W: np.ndarray, b: np.ndarray) -> tuple:
    """Random ``(x, a0, da)`` (``(n_x, m, T_x)``, ``(n_a, m)``, ``(n_a, m, T_x)``); ``sequence(**bug)``, which runs
    ``run(x, h0, dh, **bug)`` (row-major) on them; its correct result; ``a (n_a, m, T_x)``; the logits ``W a + b``."""
    n_x, n_a, m, T = sizes
    x, a0, da = rng.standard_normal((n_x, m, T)), rng.standard_normal((n_a, m)), rng.standard_normal((n_a, m, T))

    def sequence(**bug) -> dict:
        return run(rows(x), a0.T, rows(da), **bug)

    ref = sequence()
    a = columns(ref["h"])
    return (x, a0, da), sequence, ref, a, np.einsum("ya,amt->ymt", W, a) + b[:, :, None]


def rows(sequence: np.ndarray) -> np.ndarray:
    """``(n, m, T_x)`` → refbp's ``(m, T_x, n)``."""
    return sequence.transpose(1, 2, 0)


def columns(sequence: np.ndarray) -> np.ndarray:
    """refbp's ``(m, T_x, n)`` → the notebook's ``(n, m, T_x)``."""
    return sequence.transpose(2, 0, 1)


def rnn_rows(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The notebook's ``Wax, Waa, ba`` as refbp's ``Wx (n_x, n_a)``, ``Wh``, ``b (n_a,)``."""
    return {"Wx": p["Wax"].T, "Wh": p["Waa"].T, "b": p["ba"][:, 0]}


def lstm_rows(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The notebook's ``W{f,i,c,o}`` on ``[a_prev; xt]`` as refbp's ``Wx (n_x, 4 n_a)``, ``Wh``, ``b`` (gates ifog)."""
    n_a = p["Wf"].shape[0]
    mats = [p["W" + GATES[gate]] for gate in "ifog"]
    return {
        "Wx": np.concatenate([W[:, n_a:].T for W in mats], axis=1),
        "Wh": np.concatenate([W[:, :n_a].T for W in mats], axis=1),
        "b": np.concatenate([p["b" + GATES[gate]][:, 0] for gate in "ifog"]),
    }


def rnn_gradients(values: Mapping[str, np.ndarray], cell: bool) -> dict[str, np.ndarray]:
    """:func:`~grading.oracle_rnn.rnn_sequence`'s row-major result as the notebook's ``gradients``."""
    dx = columns(values["dx"])
    return {
        "dxt" if cell else "dx": dx[:, :, 0] if cell else dx,
        "da_prev" if cell else "da0": values["dh0"].T,
        "dWax": values["dWx"].T,
        "dWaa": values["dWh"].T,
        "dba": values["db"][:, None],
    }


def lstm_gradients(dWx: np.ndarray, dWh: np.ndarray, db: np.ndarray) -> dict[str, np.ndarray]:
    """refbp's stacked LSTM weight gradients as the notebook's ``dWf, dbf, dWi, …`` (weights on ``[a_prev; xt]``)."""
    n_a = dWh.shape[0]
    grads = {}
    for gate in "figo":  # the notebook's order: dWf, dbf, dWi, dbi, dWc, dbc, dWo, dbo
        k = "ifog".index(gate)
        block = slice(k * n_a, (k + 1) * n_a)
        grads["dW" + GATES[gate]] = np.concatenate([dWh[:, block], dWx[:, block]], axis=0).T
        grads["db" + GATES[gate]] = db[block][:, None]
    return grads


def _hints(name: str, m: int, bugs: Mapping[str, Mapping[str, tuple]], terms: Mapping[str, str]) -> Hints:
    alternatives = {bug: values[name] for bug, values in bugs.items() if name in values}
    axis = 1 if name in _STATES else None
    return Hints(batch=m, batch_name="m", batch_axis=axis, bias_sum=name.startswith("db"), alternatives=alternatives,
                 terms=terms)  # fmt: skip


def _expects(call: int, ref: Mapping[str, np.ndarray], bugs: Mapping[str, list[dict]], m: int, terms) -> tuple:
    """Expects for every key of the dict call ``call`` returns; ``bugs`` maps a pattern to what its bugs return."""
    differing = {
        bug: {k: tuple(v[k] for v in variants if not np.allclose(v[k], ref[k])) for k in ref}
        for bug, variants in bugs.items()
    }
    return tuple(
        Expect(f"gradients['{key}']", call, (key,), value, _hints(key, m, differing, terms))
        for key, value in ref.items()
    )


def _forward_expects(names: tuple[str, ...], values: tuple[np.ndarray, ...], m: int, logits: np.ndarray) -> tuple:
    """Expects for a forward's tuple items; the prediction also knows a softmax over the examples (the wrong axis)."""
    expects = []
    for index, (name, value) in enumerate(zip(names, values, strict=True)):
        wrong = {"wrong_axis": (softmax(logits, axis=1),)} if name.startswith("y") else {}
        expects.append(
            Expect(name, 0, (index,), value, Hints(batch=m, batch_name="m", batch_axis=1, alternatives=wrong))
        )
    return tuple(expects)


def _sequence_checks(
    kind: str,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    p: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    logits: np.ndarray,
    grads: Mapping[str, np.ndarray],
    bugs: Mapping[str, list[dict]],
    terms: Mapping[str, str],
) -> list[FunctionCheck]:
    """``{kind}_forward(x, a0, parameters)`` (``outputs``, then the caches) and ``{kind}_backward(da, caches)``."""
    x, a0, da = data
    m = x.shape[1]
    inputs = {"x": x, "a0": a0, **p}
    forward = Call(f"{kind}_forward", (arg("x"), arg("a0"), arrays_dict({key: key for key in p})))
    backward = Call(f"{kind}_backward", (arg("da"), returned(0, len(outputs))))
    return [
        FunctionCheck(f"{kind}_forward", f"{kind}_forward", (forward,), inputs,
                      _forward_expects(tuple(outputs), tuple(outputs.values()), m, logits), tuple(inputs),
                      twin=f"dlai_{kind}_forward"),
        FunctionCheck(f"{kind}_backward", f"{kind}_backward", (forward, backward), {**inputs, "da": da},
                      _expects(1, grads, bugs, m, terms), (*inputs, "da"), twin=f"dlai_{kind}_backward"),
    ]  # fmt: skip


def _rnn_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 0)
    n_x, n_a, n_y, m, T = _sizes(rng)
    p = _rnn_parameters(rng, n_x, n_a, n_y)
    row_p = rnn_rows(p)
    params = arrays_dict({key: key for key in RNN_KEYS})
    xt, a_prev, da_next = rng.standard_normal((n_x, m)), rng.standard_normal((n_a, m)), rng.standard_normal((n_a, m))
    a_next = rnn.step_forward(xt.T, a_prev.T, row_p["Wx"], row_p["Wh"], row_p["b"]).T
    step_logits = p["Wya"] @ a_next + p["by"]

    def cell(**bug) -> dict:  # rnn_cell_backward is one step of a sequence that starts at a_prev
        return rnn_gradients(rnn_sequence(xt.T[:, None], a_prev.T, row_p, da_next.T[:, None], **bug), cell=True)

    cell_inputs = {"xt": xt, "a_prev": a_prev, **p}
    cell_call = Call("rnn_cell_forward", (arg("xt"), arg("a_prev"), params))
    data, sequence, ref, a, logits = _sequence_case(
        rng, (n_x, n_a, m, T), lambda x, h0, dh, **bug: rnn_sequence(x, h0, row_p, dh, **bug), p["Wya"], p["by"]
    )
    seq_bugs = {
        "carried_dh_dropped": [rnn_gradients(sequence(step=carried_dropped_step), cell=False)],
        "dWh_not_summed": [rnn_gradients(sequence(sum_wh=False), cell=False)],
        "tanh_prime_wrong_step": [rnn_gradients(sequence(step=tanh_wrong_step), cell=False)],
    }
    outputs = {"a": a, "y_pred": softmax(logits, axis=0)}
    grads = rnn_gradients(ref, cell=False)
    return [
        FunctionCheck("rnn_cell_forward", "rnn_cell_forward", (cell_call,), cell_inputs,
                      _forward_expects(("a_next", "yt_pred"), (a_next, softmax(step_logits, axis=0)), m, step_logits),
                      tuple(cell_inputs), twin="dlai_rnn_cell_forward"),
        FunctionCheck(
            "rnn_cell_backward", "rnn_cell_backward",
            (cell_call, Call("rnn_cell_backward", (arg("da_next"), returned(0, 2)))),
            {**cell_inputs, "da_next": da_next},
            _expects(1, cell(), {"tanh_prime_wrong_step": [cell(step=tanh_wrong_step)]}, m, TERMS),
            (*cell_inputs, "da_next"), twin="dlai_rnn_cell_backward",
        ),
        *_sequence_checks("rnn", data, p, outputs, logits, grads, seq_bugs, TERMS),
    ]  # fmt: skip


def _lstm_cell_gradients(values: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    dx, dprev_h, dprev_c, dWx, dWh, db = values
    return {"dxt": dx.T, "da_prev": dprev_h.T, "dc_prev": dprev_c.T, **lstm_gradients(dWx, dWh, db)}


def _lstm_sequence_gradients(values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "dx": columns(values["dx"]),
        "da0": values["dh0"].T,
        **lstm_gradients(values["dWx"], values["dWh"], values["db"]),
    }


def _without_forget(step_values: tuple[np.ndarray, ...], gates: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """A step's backward whose ``dc_prev`` lacks the factor ``ft``."""
    dx, dprev_h, dprev_c, dWx, dWh, db = step_values
    return dx, dprev_h, dprev_c / gates["f"], dWx, dWh, db


def _lstm_step_bug(name: str):
    """One LSTM step's backward with the bug ``name`` (see :func:`grading.oracle_rnn.lstm_sequence`'s ``step``)."""

    def step(dh_t, dnext_h, dnext_c, x_t, prev_h, prev_c, c_t, gates, p):
        carried_h = 0.0 if name in ("carried_a", "carried_both") else dnext_h
        carried_c = np.zeros_like(dnext_c) if name == "carried_both" else dnext_c
        values = lstm.step_backward(dh_t + carried_h, carried_c, x_t, prev_h, prev_c, c_t, gates, p["Wx"], p["Wh"])
        return _without_forget(values, gates) if name == "forget" else values

    return step


def _lstm_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 1)
    n_x, n_a, n_y, m, T = _sizes(rng)
    p = _lstm_parameters(rng, n_x, n_a, n_y)
    row_p = lstm_rows(p)
    params = arrays_dict({key: key for key in LSTM_KEYS})
    xt, a_prev, c_prev = (rng.standard_normal((n, m)) for n in (n_x, n_a, n_a))
    da_next, dc_next = rng.standard_normal((n_a, m)), rng.standard_normal((n_a, m))
    h, c, gates = lstm.step_forward(xt.T, a_prev.T, c_prev.T, row_p["Wx"], row_p["Wh"], row_p["b"])
    step_logits = p["Wy"] @ h.T + p["by"]

    def cell(order: str = "ifog") -> tuple[np.ndarray, ...]:
        args = (da_next.T, dc_next.T, xt.T, a_prev.T, c_prev.T, c, gates, row_p["Wx"], row_p["Wh"], order)
        return lstm.step_backward(*args)

    cell_bugs = {
        "gate_order_swapped": [_lstm_cell_gradients(cell("fiog"))],
        "forget_factor_missing": [_lstm_cell_gradients(_without_forget(cell(), gates))],
    }
    cell_inputs = {"xt": xt, "a_prev": a_prev, "c_prev": c_prev, **p}
    cell_call = Call("lstm_cell_forward", (arg("xt"), arg("a_prev"), arg("c_prev"), params))
    data, sequence, ref, a, logits = _sequence_case(
        rng, (n_x, n_a, m, T), lambda x, h0, dh, **bug: lstm_sequence(x, h0, row_p, dh, **bug), p["Wy"], p["by"]
    )
    seq_bugs = {
        "gate_order_swapped": [_lstm_sequence_gradients(sequence(order_back="fiog"))],
        "forget_factor_missing": [_lstm_sequence_gradients(sequence(step=_lstm_step_bug("forget")))],
        "carried_dh_dropped": [
            _lstm_sequence_gradients(sequence(step=_lstm_step_bug(name))) for name in ("carried_a", "carried_both")
        ],
    }
    outputs = {"a": a, "y": softmax(logits, axis=0), "c": columns(ref["c"])}
    grads = _lstm_sequence_gradients(ref)
    cell_out = (h.T, c.T, softmax(step_logits, axis=0))
    return [
        FunctionCheck("lstm_cell_forward", "lstm_cell_forward", (cell_call,), cell_inputs,
                      _forward_expects(("a_next", "c_next", "yt_pred"), cell_out, m, step_logits), tuple(cell_inputs),
                      twin="dlai_lstm_cell_forward"),
        FunctionCheck(
            "lstm_cell_backward", "lstm_cell_backward",
            (cell_call, Call("lstm_cell_backward", (arg("da_next"), arg("dc_next"), returned(0, 3)))),
            {**cell_inputs, "da_next": da_next, "dc_next": dc_next},
            _expects(1, _lstm_cell_gradients(cell()), cell_bugs, m, LSTM_TERMS),
            (*cell_inputs, "da_next", "dc_next"), twin="dlai_lstm_cell_backward",
        ),
        *_sequence_checks("lstm", data, p, outputs, logits, grads, seq_bugs, LSTM_TERMS),
    ]  # fmt: skip


def build(seed: int) -> list[FunctionCheck]:
    """Every check of the ``dlai-rnn`` interface for ``seed`` (shapes and values depend on it)."""
    checks = {check.target: check for check in [*_rnn_checks(seed), *_lstm_checks(seed)]}
    return [checks[name] for name in FUNCTIONS]
