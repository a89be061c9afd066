"""``[conventions] size1_scalars = "legacy"``: older NumPy's ``float()`` of a one-entry array, and nothing more.

The class behaves as ndarray except that ``float()``/``int()``/``complex()`` take one entry of any shape; the
wire sends it back as a plain array and refuses every other ndarray subclass without calling its methods; a
submission that subclasses or patches the class to lie about its data, or about an input it changed in place,
is graded on its real data, through the real sandbox.
"""

from __future__ import annotations

import json
import operator
from pathlib import Path

import numpy as np
import pytest

from grading.assignment import load
from grading.assignment_plan import assignment_plan
from grading.grader import grade_submission
from grading.legacy_scalars import LegacyScalarArray, legacy, plain_view
from grading.sandbox import SandboxLimits
from grading.wire import Opaque, decode_tree, encode_tree

LIMITS = SandboxLimits(function_seconds=20.0, submission_seconds=60.0)


def _numpy_error(func, value) -> str:
    with pytest.raises(TypeError) as caught:
        func(value)
    return str(caught.value)


@pytest.mark.parametrize("shape", [(), (1,), (1, 1, 1), (1, 1, 1, 1)])
def test_float_int_and_complex_take_one_entry_of_any_shape(shape: tuple[int, ...]) -> None:
    b = legacy(np.full(shape, -2.75))
    assert type(b) is LegacyScalarArray and b.shape == shape
    assert float(b) == -2.75 and int(b) == -2 and complex(b) == complex(-2.75, 0)
    assert int(legacy(np.full(shape, 7, dtype=np.int32))) == 7
    if shape:  # the NumPy installed refuses what the class accepts
        assert "only 0-dimensional arrays" in _numpy_error(float, np.full(shape, -2.75))


def test_other_sizes_and_index_fail_as_numpy_fails() -> None:
    for plain in (np.ones(2), np.ones((1, 3)), np.ones((0,))):
        assert _numpy_error(float, legacy(plain)) == _numpy_error(float, plain)
        assert _numpy_error(int, legacy(plain)) == _numpy_error(int, plain)
    # NumPy 1.x refused operator.index of an array with dimensions too: the class does not bring it in
    assert _numpy_error(operator.index, legacy(np.array([3]))) == _numpy_error(operator.index, np.array([3]))
    assert operator.index(legacy(np.array(3))) == 3


def test_slices_arithmetic_and_sums_stay_legacy_and_hold_numpy_numbers() -> None:
    rng = np.random.default_rng(4)
    plain_a, plain_w = rng.standard_normal((3, 3, 2)), rng.standard_normal((3, 3, 2, 4))
    plain_b = rng.standard_normal((1, 1, 1, 4))
    a, w, b = legacy(plain_a), legacy(plain_w), legacy(plain_b)
    for c in range(4):
        z = np.sum(a * w[:, :, :, c]) + float(b[:, :, :, c])
        assert type(z) is LegacyScalarArray and z.shape == ()
        assert float(z) == np.sum(plain_a * plain_w[:, :, :, c]) + plain_b[0, 0, 0, c].item()
    assert type(b.T) is LegacyScalarArray and type(np.maximum(a, 0)) is LegacyScalarArray
    assert repr(b[:, :, :, :1]) == repr(plain_b[:, :, :, :1]) and str(b) == str(plain_b)
    np.testing.assert_array_equal(plain_view(np.maximum(a, 0)), np.maximum(plain_a, 0))
    # the older Z = np.sum(s) + b idiom: an array of one entry stored into one entry of a plain array
    out = np.zeros(4)
    out[1] = np.sum(a * w[:, :, :, 1]) + b[:, :, :, 1]
    assert out[1] == np.sum(plain_a * plain_w[:, :, :, 1]) + plain_b[0, 0, 0, 1]
    with pytest.raises(ValueError, match="setting an array element with a sequence"):
        out[2] = plain_b[:, :, :, 2]
    # an array of more than one entry still cannot go into one entry, with NumPy's own error
    with pytest.raises(ValueError, match="setting an array element with a sequence"):
        out[3] = b


def test_the_wire_sends_the_class_as_plain_arrays_and_refuses_other_subclasses_without_asking_them() -> None:
    calls: list[str] = []

    class Liar(LegacyScalarArray):
        __slots__ = ()

        def __array__(self, *args, **kwargs):
            calls.append("__array__")
            return np.full(self.shape, 9.0)

        def view(self, *args, **kwargs):
            calls.append("view")
            return np.full(self.shape, 9.0)

        def tolist(self):
            calls.append("tolist")
            return 9.0

    class Forged:  # claims to be an ndarray to isinstance
        __class__ = np.ndarray  # type: ignore[assignment]

        def __array__(self, *args, **kwargs):
            calls.append("forged __array__")
            return np.full(2, 9.0)

    masked = np.ma.masked_array([1.0], mask=[True])
    value = (legacy(np.arange(3.0)), np.zeros(2).view(Liar), masked, Forged(), legacy(np.ones((1, 1))))
    assert isinstance(value[3], np.ndarray)
    arrays: list[np.ndarray] = []
    tree = encode_tree(value, arrays, max_array_bytes=1 << 20, plain=LegacyScalarArray)
    back = decode_tree(json.loads(json.dumps(tree)), arrays)
    assert calls == []
    assert type(back[0]) is np.ndarray and back[0].tolist() == [0.0, 1.0, 2.0]
    assert all(type(x) is Opaque for x in back[1:4])
    assert [x.type_name for x in back[1:4]] == ["Liar", "MaskedArray", "Forged"]
    assert type(back[4]) is np.ndarray and back[4].shape == (1, 1)
    # without plain=, the class is one more subclass
    assert encode_tree(legacy(np.ones(2)), [], max_array_bytes=1 << 20) == {"other": "LegacyScalarArray"}
    assert plain_view(np.zeros(2).view(Liar)) is None and calls == []


ATTACK = '''
import numpy as np

ARMED = []


def _lie(what):
    print("LIE: " + what)


def conv_single_step(a_slice_prev, W, b):
    """A subclass of the child's class: its memory holds 0, its methods say the right answer."""
    right = float(np.sum(a_slice_prev * W) + float(b))

    class Liar(type(b)):
        __slots__ = ()

        def __array__(self, *args, **kwargs):
            _lie("__array__")
            return np.array(right)

        def view(self, *args, **kwargs):
            _lie("view")
            return np.array(right)

        def __array_finalize__(self, obj):
            if ARMED:
                _lie("__array_finalize__")

        def tolist(self):
            _lie("tolist")
            return right

        def __float__(self):
            _lie("__float__")
            return right

    out = np.ndarray.view(np.zeros(()), Liar)
    ARMED.append(True)
    return out


def zero_pad(X, pad):
    """Patches the child's own class so that its methods show the right padding and the input unchanged."""
    Legacy = type(X)
    before = np.array(X)
    right = np.pad(before, ((0, 0), (pad, pad), (pad, pad), (0, 0)))

    def lie(self, *args, **kwargs):
        _lie("patched method")
        return before if self.shape == before.shape else right

    for name in ("view", "__array__", "tolist", "copy", "tobytes", "astype", "__reduce__", "__reduce_ex__"):
        setattr(Legacy, name, lie)
    X *= 2.0
    return np.ndarray.view(np.zeros(right.shape), Legacy)
'''

ASSIGNMENT = """
name = "legacy-attack"
style = "nhwc"

[advisory]
inplace = "fail"

[conventions]
size1_scalars = "legacy"

[functions.conv_single_step]
points = 1

[functions.zero_pad]
points = 1
"""


def test_a_subclassed_or_patched_legacy_class_is_graded_on_its_real_data(tmp_path: Path) -> None:
    (tmp_path / "attack.py").write_text(ATTACK, encoding="utf-8")
    (tmp_path / "legacy.toml").write_text(ASSIGNMENT, encoding="utf-8")
    assignment = load(tmp_path / "legacy.toml")
    result = grade_submission(tmp_path / "attack.py", assignment, 0, LIMITS)
    inputs_of = {check.name: check.inputs for check in assignment_plan(assignment, 0)}
    assert "LIE" not in result.output  # no method of a returned object or of the patched class was called
    single = [(r.quantity, r.status, r.message) for r in result.rows if r.target == "conv_single_step"]
    assert single == [
        ("Z", "type", "got a Liar, expected an array of numbers"),  # refused, as any other ndarray subclass
        ("inputs unchanged", "ok", ""),
    ]
    pad_values = [r for r in result.rows if r.target == "zero_pad" and r.quantity != "inputs unchanged"]
    inputs = [r for r in result.rows if r.target == "zero_pad" and r.quantity == "inputs unchanged"]
    assert pad_values and inputs, [(r.quantity, r.status) for r in result.rows]
    for row in pad_values:  # the returned memory (zeros) was read, not the patched methods' right answer
        assert row.status == "mismatch" and "got 0, expected" in row.message, row
        assert row.max_abs_err == pytest.approx(np.abs(inputs_of[row.check]["X"]).max())
    # the doubled input was sent back, not what the patched view/copy showed
    assert [(r.status, r.message) for r in inputs] == [("mutated", "modified in place: X")] * len(inputs)
    assert result.score == 0.5  # the one honest row: conv_single_step left its inputs alone
