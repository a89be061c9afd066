"""The pipe format: arrays round-trip exactly; anything malformed or oversized is refused."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

from grading.wire import Opaque, WireError, decode_tree, encode_tree, pack, read_message


def _read(data: bytes, max_bytes: int = 1 << 20):
    return read_message(io.BytesIO(data).read, max_bytes=max_bytes)


def test_arrays_round_trip_bit_for_bit():
    arrays = [np.arange(6.0).reshape(2, 3) / 7, np.array([1, -2], dtype=np.int32), np.array(True), np.zeros((0, 4))]
    header, back = _read(pack({"type": "done", "id": "x"}, arrays))
    assert header == {"type": "done", "id": "x"}
    for a, b in zip(arrays, back, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_fortran_ordered_and_sliced_arrays_keep_their_values():
    a = np.asfortranarray(np.arange(12.0).reshape(3, 4))[:, ::2]
    _, (back,) = _read(pack({}, [a]))
    np.testing.assert_array_equal(back, a)


def _frame(header: dict, payload: bytes = b"") -> bytes:
    body = json.dumps(header).encode()
    return struct.pack(">Q", len(body)) + body + payload


@pytest.mark.parametrize(
    ("header", "payload", "words"),
    [
        ({"arrays": [{"dtype": "|O", "shape": [1]}]}, b"\0" * 8, "plain number"),
        ({"arrays": [{"dtype": "<c16", "shape": [1]}]}, b"\0" * 16, "plain number"),
        ({"arrays": [{"dtype": "<f8", "shape": [-1]}]}, b"", "bad shape"),
        ({"arrays": [{"dtype": "<f8", "shape": [2]}]}, b"\0" * 8, "ended"),
        ({"arrays": [{"dtype": "<f8", "shape": [1 << 30]}]}, b"", "exceeds"),
        ({"arrays": "none"}, b"", "'arrays' list"),
        ({"arrays": [{"dtype": "nonsense", "shape": [1]}]}, b"", "dtype"),
    ],
)
def test_malformed_messages_are_refused(header, payload, words):
    with pytest.raises(WireError, match=words):
        _read(_frame(header, payload))


def test_a_huge_header_length_is_refused_before_reading_it():
    with pytest.raises(WireError, match="exceeds"):
        _read(struct.pack(">Q", 1 << 40) + b"{}", max_bytes=1000)


def test_non_json_header_is_refused():
    with pytest.raises(WireError, match="not JSON"):
        _read(struct.pack(">Q", 3) + b"\xff\xfe{")


def test_trees_keep_tuples_lists_dicts_and_name_everything_else():
    arrays: list[np.ndarray] = []
    value = (np.ones(2), [1.5, {"W1": np.eye(2), "note": "text"}], None, np.array(["a"]))
    tree = encode_tree(value, arrays, max_array_bytes=1 << 20)
    back = decode_tree(json.loads(json.dumps(tree)), arrays)
    assert isinstance(back, tuple) and isinstance(back[1], list) and isinstance(back[1][1], dict)
    np.testing.assert_array_equal(back[0], np.ones(2))
    assert back[1][0].shape == () and float(back[1][0]) == 1.5
    np.testing.assert_array_equal(back[1][1]["W1"], np.eye(2))
    assert isinstance(back[1][1]["note"], Opaque) and back[1][1]["note"].type_name == "str"
    assert back[2].describe() == "a NoneType"
    assert back[3].type_name == "ndarray of dtype <U1"  # a string array is not a plain number array


def test_oversized_arrays_travel_as_their_shape_only():
    arrays: list[np.ndarray] = []
    tree = encode_tree(np.zeros((100, 100)), arrays, max_array_bytes=1000)
    assert arrays == [] and decode_tree(tree, arrays).describe() == "an array of shape (100, 100) (too large to check)"


def test_deep_nesting_is_cut_off():
    value: list = []
    for _ in range(50):
        value = [value]
    arrays: list[np.ndarray] = []
    tree = json.dumps(encode_tree(value, arrays, max_array_bytes=1 << 20))
    assert "too deeply nested" in tree


@pytest.mark.parametrize("node", [{"array": 3}, {"array": "0"}, {"dict": [[1, {"array": 0}]]}, {"what": 1}, []])
def test_bad_tree_nodes_are_refused(node):
    with pytest.raises(WireError):
        decode_tree(node, [np.zeros(1)])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"arrays": [], "x": ' + b"7" * 5000 + b"}", "not JSON"),
        (json.dumps({"arrays": [{"dtype": "<f8", "shape": [0, 2**70]}]}).encode(), "bad shape"),
        (json.dumps({"arrays": [{"dtype": "<f8", "shape": [0] + [1 << 20] * 3}]}).encode(), "bad shape"),
        (b'{"arrays": [], "x": [' + b"{}," * (1 << 19) + b"{}]}", "header of .* exceeds the limit of 1048576"),
    ],
)
def test_hostile_headers_under_the_message_cap_are_refused(body, words):
    with pytest.raises(WireError, match=words):
        _read(struct.pack(">Q", len(body)) + body, max_bytes=64 << 20)
