"""The ``rnn`` interface: the recurrent layer functions of CS231n's third assignment (``rnn_layers.py``).

Conventions (examples in rows, sequences ``(N, T, D)``, hidden size ``H``, CS231n's names):

* ``rnn_step_forward(x, prev_h, Wx, Wh, b) -> (next_h, cache)``, ``next_h = tanh(x Wx + prev_h Wh + b)``;
  ``rnn_step_backward(dnext_h, cache) -> (dx, dprev_h, dWx, dWh, db)``;
* ``rnn_forward(x, h0, Wx, Wh, b) -> (h, cache)`` with ``h0 (N, H)``, ``h (N, T, H)``;
  ``rnn_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)``, ``dh`` the upstream gradient of
  every step (backprop through time adds the gradient carried from step ``t + 1``);
* ``word_embedding_forward(x, W) -> (out, cache)``, ``x (N, T)`` integer indices, ``W (V, D)``;
  ``word_embedding_backward(dout, cache) -> dW`` (a repeated index accumulates);
* ``temporal_affine_forward(x, w, b) -> (out, cache)`` and ``temporal_affine_backward(dout,
  cache) -> (dx, dw, db)``;
* ``temporal_softmax_loss(x, y, mask) -> (loss, dx)``: the sum over unmasked steps of
  ``−log softmax(x[n, t])[y[n, t]]``, divided by ``N``;
* ``lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b) -> (next_h, next_c, cache)`` and
  ``lstm_step_backward(dnext_h, dnext_c, cache) -> (dx, dprev_h, dprev_c, dWx, dWh, db)``;
  ``lstm_forward(x, h0, Wx, Wh, b) -> (h, cache)`` (``c0 = 0``) and ``lstm_backward(dh,
  cache) -> (dx, dh0, dWx, dWh, db)``. The ``4H`` columns are the gates in CS231n's order
  ``i, f, o, g``.

The reference values come from refbp's sequence layers (:mod:`refbp.layers.rnn`,
:mod:`refbp.layers.lstm`, …, themselves checked against torch and finite differences);
:mod:`grading.torch_rnn` recomputes every gradient with torch autograd. Each backward check
also carries what the classic bugs return, so that the feedback can name them.
"""

from __future__ import annotations

import numpy as np

from grading.plan import Expect, FunctionCheck, Hints, arg, returned
from grading.sandbox import Call
from refbp.layers import embedding, lstm, rnn, temporal_affine
from refbp.temporal_loss import temporal_softmax_loss

FUNCTIONS = (
    "rnn_step_forward",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
    "word_embedding_forward",
    "word_embedding_backward",
    "temporal_affine_forward",
    "temporal_affine_backward",
    "temporal_softmax_loss",
    "lstm_step_forward",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
)

_RNN_GRADS = ("dx", "dh0", "dWx", "dWh", "db")


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 14, index])


def _sizes(rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``N, T, D, H``: small, with ``T >= 3`` so that carried gradients matter."""
    return int(rng.integers(2, 4)), int(rng.integers(3, 5)), int(rng.integers(2, 5)), int(rng.integers(2, 4))


def _weights(rng: np.random.Generator, D: int, H: int, gates: int) -> dict[str, np.ndarray]:
    return {
        "Wx": rng.standard_normal((D, gates * H)) * 0.6,
        "Wh": rng.standard_normal((H, gates * H)) * 0.6,
        "b": rng.standard_normal(gates * H) * 0.3,
    }


def rnn_sequence(x: np.ndarray, h0: np.ndarray, p: dict, dh: np.ndarray, step=None, sum_wh: bool = True) -> dict:
    """``h`` and the five gradients of ``rnn_backward``, with ``h0 (N, H)`` per example.

    ``step(dh_t, dnext, x_t, prev, h_t)`` replaces one step's backward (a bug's); ``sum_wh``
    false keeps only the last-computed step's ``dWh``.
    """
    prev, states = h0, []  # CS231n's h0 is per example: the steps of refbp's rnn, run here
    for t in range(x.shape[1]):
        prev = rnn.step_forward(x[:, t], prev, p["Wx"], p["Wh"], p["b"])
        states.append(prev)
    h = np.stack(states, axis=1)
    grads = {k: np.zeros_like(p[k]) for k in ("Wx", "Wh", "b")}
    dx, dnext = np.empty_like(x), np.zeros_like(h0)
    for t in range(x.shape[1] - 1, -1, -1):
        before = h[:, t - 1] if t else h0
        if step is None:
            parts = rnn.step_backward(dh[:, t] + dnext, x[:, t], before, h[:, t], p["Wx"], p["Wh"])
        else:
            parts = step(dh[:, t], dnext, x[:, t], before, h[:, t], p)
        dx[:, t], dnext, dWx, dWh, db = parts
        grads["Wx"] += dWx
        grads["Wh"] = grads["Wh"] + dWh if sum_wh else dWh
        grads["b"] += db
    return {"h": h, "dx": dx, "dh0": dnext, "dWx": grads["Wx"], "dWh": grads["Wh"], "db": grads["b"]}


def lstm_sequence(x: np.ndarray, h0: np.ndarray, p: dict, dh: np.ndarray, order_back: str = "ifog", step=None) -> dict:
    """``h``, ``c`` and the gradients of ``lstm_backward`` (gates ``i, f, o, g``), ``h0 (N, H)``, ``c0 = 0``.

    ``order_back`` other than ``ifog`` is the swapped-gate-order bug; ``step(dh_t, dnext_h,
    dnext_c, x_t, prev_h, prev_c, c_t, gates, p)`` replaces one step's backward (a bug's).
    """
    N, T, _ = x.shape
    H = h0.shape[1]
    prev_h, prev_c, steps = h0, np.zeros((N, H)), []
    for t in range(T):
        next_h, next_c, gates = lstm.step_forward(x[:, t], prev_h, prev_c, p["Wx"], p["Wh"], p["b"])
        steps.append((prev_h, prev_c, next_c, gates))
        prev_h, prev_c = next_h, next_c
    h = np.stack([s[0] for s in steps[1:]] + [prev_h], axis=1)
    grads = {k: np.zeros_like(p[k]) for k in ("Wx", "Wh", "b")}
    dx, dnext_h, dnext_c = np.empty_like(x), np.zeros((N, H)), np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        before_h, before_c, c_t, gates = steps[t]
        if step is None:
            parts = lstm.step_backward(
                dh[:, t] + dnext_h, dnext_c, x[:, t], before_h, before_c, c_t, gates, p["Wx"], p["Wh"], order_back
            )
        else:
            parts = step(dh[:, t], dnext_h, dnext_c, x[:, t], before_h, before_c, c_t, gates, p)
        dx[:, t], dnext_h, dnext_c, dWx, dWh, db = parts
        grads["Wx"] += dWx
        grads["Wh"] += dWh
        grads["b"] += db
    c = np.stack([s[2] for s in steps], axis=1)
    return {"h": h, "c": c, "dx": dx, "dh0": dnext_h, "dWx": grads["Wx"], "dWh": grads["Wh"], "db": grads["b"]}


def carried_dropped_step(dh_t, dnext, x_t, before, h_t, p):
    """One RNN step's backward from the upstream ``dh_t`` alone (the carried-gradient-dropped bug)."""
    return rnn.step_backward(dh_t, x_t, before, h_t, p["Wx"], p["Wh"])


def tanh_wrong_step(dh_t, dnext, x_t, before, h_t, p):
    """One RNN step's backward with tanh' taken at the previous state (the tanh'-from-the-wrong-step bug)."""
    return rnn.step_backward(dh_t + dnext, x_t, before, before, p["Wx"], p["Wh"])


def _backward_expects(ref: dict, bugs: dict[str, dict], n: int, names=_RNN_GRADS) -> tuple[Expect, ...]:
    expects = []
    for index, name in enumerate(names):
        alternatives = {
            bug: (values[name],) for bug, values in bugs.items() if not np.allclose(values[name], ref[name])
        }
        axis = 0 if name in ("dx", "dh0", "dprev_h", "dprev_c") else None
        expects.append(Expect(name, 1, (index,), ref[name], Hints(batch=n, batch_axis=axis, alternatives=alternatives)))
    return tuple(expects)


def _rnn_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 0)
    N, T, D, H = _sizes(rng)
    p = _weights(rng, D, H, 1)
    x_t, prev_h, dnext = rng.standard_normal((N, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    step_inputs = {"x": x_t, "prev_h": prev_h, **p}
    step_call = Call("rnn_step_forward", tuple(arg(k) for k in ("x", "prev_h", "Wx", "Wh", "b")))
    next_h = rnn.step_forward(x_t, prev_h, p["Wx"], p["Wh"], p["b"])
    step_ref = dict(
        zip(
            ("dx", "dprev_h", "dWx", "dWh", "db"),
            rnn.step_backward(dnext, x_t, prev_h, next_h, p["Wx"], p["Wh"]),
            strict=True,
        )
    )
    wrong_tanh = rnn.step_backward(dnext, x_t, prev_h, prev_h, p["Wx"], p["Wh"])
    step_bugs = {"tanh_prime_wrong_step": dict(zip(step_ref, wrong_tanh, strict=True))}
    x, h0, dh = rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), rng.standard_normal((N, T, H))
    ref = rnn_sequence(x, h0, p, dh)
    bugs = {
        "carried_dh_dropped": rnn_sequence(x, h0, p, dh, step=carried_dropped_step),
        "dWh_not_summed": rnn_sequence(x, h0, p, dh, sum_wh=False),
        "tanh_prime_wrong_step": rnn_sequence(x, h0, p, dh, step=tanh_wrong_step),
    }
    seq_inputs = {"x": x, "h0": h0, **p}
    seq_call = Call("rnn_forward", tuple(arg(k) for k in ("x", "h0", "Wx", "Wh", "b")))
    batched = Hints(batch=N, batch_axis=0)
    return [
        FunctionCheck("rnn_step_forward", "rnn_step_forward", (step_call,), step_inputs,
                      (Expect("next_h", 0, (0,), next_h, batched),), tuple(step_inputs)),
        FunctionCheck(
            "rnn_step_backward", "rnn_step_backward",
            (step_call, Call("rnn_step_backward", (arg("dnext_h"), returned(0, 1)))),
            {**step_inputs, "dnext_h": dnext},
            _backward_expects(step_ref, step_bugs, N, ("dx", "dprev_h", "dWx", "dWh", "db")),
            (*step_inputs, "dnext_h"), twin="rnn_step_backward",
        ),
        FunctionCheck("rnn_forward", "rnn_forward", (seq_call,), seq_inputs,
                      (Expect("h", 0, (0,), ref["h"], batched),), tuple(seq_inputs)),
        FunctionCheck(
            "rnn_backward", "rnn_backward", (seq_call, Call("rnn_backward", (arg("dh"), returned(0, 1)))),
            {**seq_inputs, "dh": dh}, _backward_expects(ref, bugs, N), (*seq_inputs, "dh"), twin="rnn_backward",
        ),
    ]  # fmt: skip


def _embedding_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 1)
    N, T, D, _ = _sizes(rng)
    V = int(rng.integers(3, 5))  # fewer words than N·T positions: indices repeat
    x = rng.integers(0, V, size=(N, T))
    x[0, :2] = x[-1, -1]  # at least one index used three times
    W = rng.standard_normal((V, D))
    dout = rng.standard_normal((N, T, D))
    layer = embedding.Embedding(V, D)
    out, cache, _ = embedding.forward(layer, {"W": W}, x.astype(float), {})
    _, grads = embedding.backward(layer, {"W": W}, cache, dout)
    overwritten = np.zeros_like(W)
    overwritten[x] = dout
    call = Call("word_embedding_forward", (arg("x"), arg("W")))
    hints = Hints(batch=N, alternatives={"embedding_overwrites": (overwritten,)})
    return [
        FunctionCheck("word_embedding_forward", "word_embedding_forward", (call,), {"x": x, "W": W},
                      (Expect("out", 0, (0,), out, Hints(batch=N, batch_axis=0)),), ("x", "W")),
        FunctionCheck(
            "word_embedding_backward", "word_embedding_backward",
            (call, Call("word_embedding_backward", (arg("dout"), returned(0, 1)))),
            {"x": x, "W": W, "dout": dout}, (Expect("dW", 1, (), grads["W"], hints),), ("x", "W", "dout"),
            twin="word_embedding_backward",
        ),
    ]  # fmt: skip


def _temporal_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 2)
    N, T, D, M = _sizes(rng)
    M += 2
    x, w, b = rng.standard_normal((N, T, D)), rng.standard_normal((D, M)), rng.standard_normal(M)
    dout = rng.standard_normal((N, T, M))
    layer = temporal_affine.TemporalAffine(M)
    out, cache, _ = temporal_affine.forward(layer, {"W": w, "b": b}, x, {})
    dx, grads = temporal_affine.backward(layer, {"W": w, "b": b}, cache, dout)
    call = Call("temporal_affine_forward", (arg("x"), arg("w"), arg("b")))
    batched = Hints(batch=N, batch_axis=0)
    scores = rng.standard_normal((N, T, M))
    y = rng.integers(0, M, size=(N, T))
    mask = rng.uniform(size=(N, T)) < 0.6
    mask[0, 0], mask[-1, -1] = True, False
    loss, dscores = temporal_softmax_loss(scores, y, mask)
    all_loss, all_dscores = temporal_softmax_loss(scores, y, np.ones_like(mask))
    loss_hints = Hints(batch=N, alternatives={"mask_ignored": (np.asarray(all_loss),)})
    dx_hints = Hints(batch=N, batch_axis=0, alternatives={"mask_ignored": (all_dscores,)})
    return [
        FunctionCheck("temporal_affine_forward", "temporal_affine_forward", (call,), {"x": x, "w": w, "b": b},
                      (Expect("out", 0, (0,), out, batched),), ("x", "w", "b")),
        FunctionCheck(
            "temporal_affine_backward", "temporal_affine_backward",
            (call, Call("temporal_affine_backward", (arg("dout"), returned(0, 1)))),
            {"x": x, "w": w, "b": b, "dout": dout},
            (Expect("dx", 1, (0,), dx, batched), Expect("dw", 1, (1,), grads["W"], Hints(batch=N)),
             Expect("db", 1, (2,), grads["b"], Hints(batch=N, bias_sum=True))),
            ("x", "w", "b", "dout"), twin="temporal_affine_backward",
        ),
        FunctionCheck(
            "temporal_softmax_loss", "temporal_softmax_loss",
            (Call("temporal_softmax_loss", (arg("x"), arg("y"), arg("mask"))),),
            {"x": scores, "y": y, "mask": mask},
            (Expect("loss", 0, (0,), np.asarray(loss), loss_hints, scalar=True),
             Expect("dx", 0, (1,), dscores, dx_hints)),
            ("x", "y", "mask"), twin="temporal_softmax_loss",
        ),
    ]  # fmt: skip


def _lstm_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 3)
    N, T, D, H = _sizes(rng)
    p = _weights(rng, D, H, 4)
    x_t, prev_h, prev_c = (rng.standard_normal(s) for s in ((N, D), (N, H), (N, H)))
    dnext_h, dnext_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    next_h, next_c, gates = lstm.step_forward(x_t, prev_h, prev_c, p["Wx"], p["Wh"], p["b"])
    names = ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")

    def step_back(order: str) -> dict:
        values = lstm.step_backward(dnext_h, dnext_c, x_t, prev_h, prev_c, next_c, gates, p["Wx"], p["Wh"], order)
        return dict(zip(names, values, strict=True))

    step_inputs = {"x": x_t, "prev_h": prev_h, "prev_c": prev_c, **p}
    step_call = Call("lstm_step_forward", tuple(arg(k) for k in step_inputs))
    batched = Hints(batch=N, batch_axis=0)
    x, h0, dh = rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), rng.standard_normal((N, T, H))
    ref = lstm_sequence(x, h0, p, dh)
    swapped = {"gate_order_swapped": lstm_sequence(x, h0, p, dh, order_back="ifgo")}
    seq_inputs = {"x": x, "h0": h0, **p}
    seq_call = Call("lstm_forward", tuple(arg(k) for k in seq_inputs))
    return [
        FunctionCheck("lstm_step_forward", "lstm_step_forward", (step_call,), step_inputs,
                      (Expect("next_h", 0, (0,), next_h, batched), Expect("next_c", 0, (1,), next_c, batched)),
                      tuple(step_inputs)),
        FunctionCheck(
            "lstm_step_backward", "lstm_step_backward",
            (step_call, Call("lstm_step_backward", (arg("dnext_h"), arg("dnext_c"), returned(0, 2)))),
            {**step_inputs, "dnext_h": dnext_h, "dnext_c": dnext_c},
            _backward_expects(step_back("ifog"), {"gate_order_swapped": step_back("ifgo")}, N, names),
            (*step_inputs, "dnext_h", "dnext_c"), twin="lstm_step_backward",
        ),
        FunctionCheck("lstm_forward", "lstm_forward", (seq_call,), seq_inputs,
                      (Expect("h", 0, (0,), ref["h"], batched),), tuple(seq_inputs)),
        FunctionCheck(
            "lstm_backward", "lstm_backward", (seq_call, Call("lstm_backward", (arg("dh"), returned(0, 1)))),
            {**seq_inputs, "dh": dh}, _backward_expects(ref, swapped, N), (*seq_inputs, "dh"), twin="lstm_backward",
        ),
    ]  # fmt: skip


def build(seed: int) -> list[FunctionCheck]:
    """Every check of the ``rnn`` interface for ``seed`` (shapes and values depend on it)."""
    return [*_rnn_checks(seed), *_embedding_checks(seed), *_temporal_checks(seed), *_lstm_checks(seed)]
