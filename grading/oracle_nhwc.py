"""The ``nhwc`` interface: the deeplearning.ai convolution notebook ("Convolution model, step by step").

Conventions, as the notebook states them (channels last, ``m`` examples, ``hparameters`` dicts):

* ``zero_pad(X, pad) -> X_pad``: ``X (m, n_H, n_W, n_C)``, zeros on the height and width axes only;
* ``conv_single_step(a_slice_prev, W, b) -> Z``: ``Σ a_slice_prev·W + b``, a scalar, with
  ``a_slice_prev`` and ``W`` of shape ``(f, f, n_C_prev)`` and ``b (1, 1, 1)``;
* ``conv_forward(A_prev, W, b, hparameters) -> (Z, cache)``: ``W (f, f, n_C_prev, n_C)``,
  ``b (1, 1, 1, n_C)``, ``hparameters = {"stride": s, "pad": p}``, ``Z (m, n_H, n_W, n_C)`` with
  ``n_H = ⌊(n_H_prev − f + 2p) / s⌋ + 1``; ``cache = (A_prev, W, b, hparameters)``;
* ``conv_backward(dZ, cache) -> (dA_prev, dW, db)``, ``db (1, 1, 1, n_C)`` summed over the examples
  and both spatial axes;
* ``pool_forward(A_prev, hparameters, mode) -> (A, cache)``: ``hparameters = {"f": f, "stride": s}``,
  ``mode`` ``"max"`` or ``"average"``, no padding; ``cache = (A_prev, hparameters)``;
* ``create_mask_from_window(x) -> mask``: ``x == max(x)`` for one window ``x (f, f)``;
* ``distribute_value(dz, shape) -> a``: an array of ``shape = (n_H, n_W)`` holding ``dz / (n_H·n_W)``;
* ``pool_backward(dA, cache, mode) -> dA_prev``: max pooling routes each entry of ``dA`` to its
  window's maximum, average pooling spreads it evenly over the window.

The first item of each forward cache is checked to be ``A_prev`` (the notebook's tests read it;
each backward function is called with the cache its student's forward function returned).
``conv_backward`` is graded with ``pad ≥ 1`` only: the notebook's hint ``X[pad:-pad, pad:-pad, :]``
is empty for ``pad = 0`` (``conv_forward`` is also graded with ``pad = 0``). The reference values
come from refbp's NCHW layers (:mod:`grading.nhwc_reference`); :mod:`grading.torch_nhwc`
recomputes them with ``torch.nn.functional``. Each check of a backward function also carries
what the classic bugs return, so that the feedback can name them.
"""

from __future__ import annotations

import itertools

import numpy as np

from grading import nhwc_reference as ref
from grading.plan import Expect, FunctionCheck, Hints, arg, literal, returned
from grading.sandbox import Call

FUNCTIONS = (
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "conv_backward",
    "create_mask_from_window",
    "distribute_value",
    "pool_forward",
    "pool_backward",
)
MODES = ("max", "average")


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 41, index])


def _images(rng: np.random.Generator, smallest: int) -> np.ndarray:
    """``(m, n_H, n_W, n_C)`` with ``m`` 2–3, ``n_H ≠ n_W`` (a swapped axis shows), both at least ``smallest``."""
    n_H = int(rng.integers(smallest, smallest + 3))
    n_W = n_H + int(rng.integers(1, 3))
    return rng.standard_normal((int(rng.integers(2, 4)), n_H, n_W, int(rng.integers(2, 4))))


#: The notebook's words in the convolution hints (see :data:`grading.patterns.COURSE_TERMS`).
TERMS = {
    "dx": "dA_prev",
    "dx_unpadded": "da_prev_pad[pad:-pad, pad:-pad, :]",
    "dout": "dA",
    "pool_mask": "multiply by create_mask_from_window(a_prev_slice)",
}


def _hints(m: int, axis: int | None = None, alternatives: dict | None = None) -> Hints:
    return Hints(batch=m, batch_name="m", batch_axis=axis, alternatives=alternatives or {}, terms=TERMS)


def _cached_input(A_prev: np.ndarray, pad: int = 0) -> Expect:
    """The first item of a forward function's cache: its input ``A_prev``, as the notebook's tests read it."""
    padded = {"cache_holds_padded_input": (ref.zero_pad(A_prev, pad),)} if pad else {}
    return Expect("cache[0]", 0, (1, 0), A_prev, _hints(A_prev.shape[0], 0, padded))


def _settings_label(**values: int | str) -> str:
    return " (" + ", ".join(f"{k}={v}" for k, v in values.items()) + ")"


def _zero_pad_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 0)
    X, pad = _images(rng, 3), int(rng.integers(1, 4))
    widths = [(0, 0), (pad, pad)]
    wrong = tuple(
        np.pad(X, [widths[k] for k in choice])
        for choice in itertools.product((0, 1), repeat=4)
        if choice != (0, 1, 1, 0) and any(choice)
    )  # every other set of padded axes: the batch or channel axis padded too, or one spatial axis missed
    hints = _hints(X.shape[0], 0, {"zero_pad_wrong_axes": wrong})
    return [
        FunctionCheck(
            "zero_pad" + _settings_label(pad=pad), "zero_pad", (Call("zero_pad", (arg("X"), literal(pad))),),
            {"X": X, "pad": np.asarray(pad)}, (Expect("X_pad", 0, (), ref.zero_pad(X, pad), hints),), ("X",),
            twin="nhwc_zero_pad",
        )
    ]  # fmt: skip


def _single_step_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 1)
    f, channels = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    a_slice, W, b = (
        rng.standard_normal((f, f, channels)),
        rng.standard_normal((f, f, channels)),
        rng.standard_normal((1, 1, 1)),
    )
    inputs = {"a_slice_prev": a_slice, "W": W, "b": b}
    unbiased = np.asarray(np.sum(a_slice * W))
    Z = Expect("Z", 0, (), unbiased + b.item(), Hints(alternatives={"bias_left_out": (unbiased,)}), scalar=True)
    return [
        FunctionCheck("conv_single_step", "conv_single_step", (Call("conv_single_step", tuple(map(arg, inputs))),),
                      inputs, (Z,), tuple(inputs), twin="nhwc_conv_single_step")
    ]  # fmt: skip


def _conv_inputs(rng: np.random.Generator, f: int, stride: int, pad: int) -> dict[str, np.ndarray]:
    A_prev = _images(rng, 4)
    n_C = int(rng.integers(2, 4))
    W = rng.standard_normal((f, f, A_prev.shape[3], n_C)) * 0.5
    b = rng.standard_normal((1, 1, 1, n_C))
    return {"A_prev": A_prev, "W": W, "b": b, "stride": np.asarray(stride), "pad": np.asarray(pad)}


def _conv_settings(rng: np.random.Generator, backward: bool) -> list[tuple[int, int, int]]:
    """Three ``(f, stride, pad)``: stride 1, 2 and 2–3; ``pad`` 1–2, and 0 for one forward setting."""
    f = [int(x) for x in rng.integers(2, 5, size=3)]
    pads = [int(x) for x in rng.integers(1, 3, size=3)]
    return [(f[0], 1, pads[0]), (f[1], 2, pads[1] if backward else 0), (f[2], int(rng.integers(2, 4)), pads[2])]


def _conv_checks(seed: int) -> list[FunctionCheck]:
    checks = []
    for index, (f, stride, pad) in enumerate(_conv_settings(_rng(seed, 2), backward=False)):
        inputs = _conv_inputs(_rng(seed, 10 + index), f, stride, pad)
        call = Call("conv_forward", (arg("A_prev"), arg("W"), arg("b"), literal({"stride": stride, "pad": pad})))
        Z = ref.conv_forward(inputs["A_prev"], inputs["W"], inputs["b"], stride, pad)
        checks.append(
            FunctionCheck(
                "conv_forward" + _settings_label(f=f, stride=stride, pad=pad), "conv_forward", (call,), inputs,
                (Expect("Z", 0, (0,), Z, _hints(Z.shape[0], 0)), _cached_input(inputs["A_prev"], pad)),
                ("A_prev", "W", "b"), twin="nhwc_conv_forward",
            )
        )  # fmt: skip
    for index, (f, stride, pad) in enumerate(_conv_settings(_rng(seed, 3), backward=True)):
        rng = _rng(seed, 20 + index)
        inputs = _conv_inputs(rng, f, stride, pad)
        A_prev, W, b = inputs["A_prev"], inputs["W"], inputs["b"]
        dZ = rng.standard_normal(ref.conv_forward(A_prev, W, b, stride, pad).shape)
        values = ref.conv_backward(A_prev, W, b, dZ, stride, pad)
        bugs = ref.conv_backward_bugs(A_prev, W, b, dZ, stride, pad)
        expects = tuple(
            Expect(name, 1, (item,), values[name], _hints(A_prev.shape[0], 0 if name == "dA_prev" else None, {
                bug: alt[name] for bug, alt in bugs.items() if name in alt
            }))
            for item, name in enumerate(("dA_prev", "dW", "db"))
        )  # fmt: skip
        forward = Call("conv_forward", (arg("A_prev"), arg("W"), arg("b"), literal({"stride": stride, "pad": pad})))
        checks.append(
            FunctionCheck(
                "conv_backward" + _settings_label(f=f, stride=stride, pad=pad), "conv_backward",
                (forward, Call("conv_backward", (arg("dZ"), returned(0, 1)))), {**inputs, "dZ": dZ}, expects,
                ("A_prev", "W", "b", "dZ"), twin="nhwc_conv_backward",
            )
        )  # fmt: skip
    return checks


def _window_checks(seed: int) -> list[FunctionCheck]:
    rng = _rng(seed, 4)
    f = int(rng.integers(2, 5))
    x = rng.standard_normal((f, f))
    n_H = int(rng.integers(2, 5))
    shape, dz = [n_H, n_H + int(rng.integers(1, 3))], float(np.round(rng.uniform(0.5, 3.0), 6))
    spread = np.full(shape, dz)
    return [
        FunctionCheck("create_mask_from_window", "create_mask_from_window",
                      (Call("create_mask_from_window", (arg("x"),)),), {"x": x},
                      (Expect("mask", 0, (), (x == x.max()).astype(float)),), ("x",)),
        FunctionCheck(
            "distribute_value" + _settings_label(dz=dz, shape=tuple(shape)), "distribute_value",
            (Call("distribute_value", (literal(dz), literal(shape))),), {},
            (Expect("a", 0, (), spread / (shape[0] * shape[1]),
                    Hints(alternatives={"pool_average_not_divided": (spread,)})),),
        ),
    ]  # fmt: skip


def _pool_inputs(rng: np.random.Generator, f: int, stride: int) -> dict[str, np.ndarray]:
    return {"A_prev": _images(rng, f + 2), "f": np.asarray(f), "stride": np.asarray(stride)}


def _pool_checks(seed: int) -> list[FunctionCheck]:
    checks = []
    for index, mode in enumerate(MODES):
        rng = _rng(seed, 5 + index)
        settings = [(int(rng.integers(2, 4)), 1), (int(rng.integers(2, 4)), int(rng.integers(2, 4)))]
        for number, (f, stride) in enumerate(settings):
            inputs = _pool_inputs(_rng(seed, 30 + 2 * index + number), f, stride)
            A_prev = inputs["A_prev"]
            call = Call("pool_forward", (arg("A_prev"), literal({"f": f, "stride": stride}), literal(mode)))
            A = ref.pool_forward(A_prev, f, stride, mode)
            label = _settings_label(mode=mode, f=f, stride=stride)
            checks.append(
                FunctionCheck("pool_forward" + label, "pool_forward", (call,), inputs,
                              (Expect("A", 0, (0,), A, _hints(A_prev.shape[0], 0)), _cached_input(A_prev)), ("A_prev",),
                              twin=f"nhwc_pool_forward_{mode}")
            )  # fmt: skip
            dA = _rng(seed, 40 + 2 * index + number).standard_normal(A.shape)
            hints = _hints(A_prev.shape[0], 0, ref.pool_backward_bugs(A_prev, dA, f, stride, mode))
            expect = Expect("dA_prev", 1, (), ref.pool_backward(A_prev, dA, f, stride, mode), hints)
            checks.append(
                FunctionCheck(
                    "pool_backward" + label, "pool_backward",
                    (call, Call("pool_backward", (arg("dA"), returned(0, 1), literal(mode)))), {**inputs, "dA": dA},
                    (expect,), ("A_prev", "dA"), twin=f"nhwc_pool_backward_{mode}",
                )
            )  # fmt: skip
    return checks


def build(seed: int) -> list[FunctionCheck]:
    """Every check of the ``nhwc`` interface for ``seed`` (shapes, settings and values depend on it)."""
    return [*_zero_pad_checks(seed), *_single_step_checks(seed), *_conv_checks(seed), *_window_checks(seed),
            *_pool_checks(seed)]  # fmt: skip
