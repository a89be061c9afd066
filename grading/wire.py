"""The pipe format between the grader and the sandboxed child: framed JSON plus raw array bytes.

One message is::

    8-byte big-endian length of the header | header (UTF-8 JSON) | array bytes, one after another

The header's ``"arrays"`` lists ``{"dtype": "<f8", "shape": [2, 3]}`` for each array, in
the order their bytes follow. Arrays are plain numbers (bool, integer, float): no
pickle, no object dtype. Values that nest arrays (a tuple ``(dx, dw, db)``, a dict of
gradients, a cache) travel as a *tree* in the header whose leaves point into the array list
(see :func:`encode_tree`).

This module is imported by the child before the submission is loaded and must not import
anything from the ``grading`` package. It keeps its own references to the few NumPy and
JSON functions it uses, so a submission that patches ``numpy`` afterwards does not change
how results are written; the reader treats every message as untrusted and validates it.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

#: Array dtype kinds that may cross the pipe: bool, signed and unsigned integers, floats.
ALLOWED_KINDS = "biuf"
_LENGTH = struct.Struct(">Q")
_MAX_DEPTH = 6
_MAX_NODES = 256
_MAX_ARRAYS = 4096
#: The most bytes of JSON one header may hold (arrays travel after it, outside this cap):
#: a result tree is at most a few hundred nodes, so this is generous, and it bounds what
#: parsing a hostile header can cost the grader.
MAX_HEADER_BYTES = 1 << 20
#: The largest length of one array dimension.
_MAX_DIM = 1 << 40

# References taken at import time: later patches of numpy/json by the submission do not reach them.
_ndarray = np.ndarray
_tobytes = np.ndarray.tobytes
_asarray = np.asarray
_view = np.ndarray.view
_dtype = np.dtype
_frombuffer = np.frombuffer
_generic = np.generic
_dumps = json.dumps
_loads = json.loads
_os_write = os.write
_os_read = os.read


class WireError(ValueError):
    """A message that breaks the format or a limit (``malformed``), or a stream that ended early (not ``malformed``)."""

    def __init__(self, message: str, *, malformed: bool = True) -> None:
        super().__init__(message)
        self.malformed = malformed


def pack(header: dict[str, Any], arrays: list[np.ndarray]) -> bytes:
    """One framed message: ``header`` (JSON-able) with ``"arrays"`` added, then the array bytes."""
    metas, chunks = [], []
    for array in arrays:
        metas.append({"dtype": array.dtype.str, "shape": list(array.shape)})
        chunks.append(_tobytes(array, order="C"))
    body = _dumps({**header, "arrays": metas}, allow_nan=False, separators=(",", ":")).encode("utf-8")
    return b"".join([_LENGTH.pack(len(body)), body, *chunks])


def write_message(fd: int, header: dict[str, Any], arrays: list[np.ndarray]) -> None:
    """Write one message to the file descriptor ``fd`` (blocking until all bytes are written)."""
    view = memoryview(pack(header, arrays))
    while view:
        written = _os_write(fd, view)
        view = view[written:]


def read_exactly(read: Callable[[int], bytes], size: int) -> bytes:
    """``size`` bytes from ``read`` (a function like ``os.read`` bound to an fd); ``WireError`` on EOF."""
    parts, remaining = [], size
    while remaining:
        chunk = read(min(remaining, 1 << 20))
        if not chunk:
            raise WireError(f"the stream ended {remaining} bytes before the end of a message", malformed=False)
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def read_message(read: Callable[[int], bytes], *, max_bytes: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Read and validate one message: ``(header, arrays)``; ``WireError`` on anything malformed.

    ``max_bytes`` caps the header and the array bytes together; the header alone is capped
    at :data:`MAX_HEADER_BYTES`.
    """
    (length,) = _LENGTH.unpack(read_exactly(read, _LENGTH.size))
    if length > min(max_bytes, MAX_HEADER_BYTES):
        raise WireError(f"header of {length} bytes exceeds the limit of {min(max_bytes, MAX_HEADER_BYTES)}")
    try:
        header = _loads(read_exactly(read, length).decode("utf-8"))
    except ValueError as err:  # bad UTF-8, bad JSON, an integer past Python's digit limit
        raise WireError(f"header is not JSON: {str(err)[:200]}") from None
    except RecursionError:
        raise WireError("header is nested too deeply") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise WireError("header is not an object with an 'arrays' list")
    if len(header["arrays"]) > _MAX_ARRAYS:
        raise WireError(f"more than {_MAX_ARRAYS} arrays in one message")
    metas = [_array_meta(meta) for meta in header.pop("arrays")]
    total = length + sum(size for _, _, size in metas)
    if total > max_bytes:
        raise WireError(f"message of {total} bytes exceeds the limit of {max_bytes}")
    arrays = [_frombuffer(read_exactly(read, size), dtype=dtype).reshape(shape).copy() for dtype, shape, size in metas]
    return header, arrays


def _array_meta(meta: Any) -> tuple[np.dtype, tuple[int, ...], int]:
    if not isinstance(meta, dict) or not isinstance(meta.get("dtype"), str) or not isinstance(meta.get("shape"), list):
        raise WireError(f"array entry {meta!r} is not {{'dtype': str, 'shape': list}}")
    try:
        dtype = _dtype(meta["dtype"])
    except TypeError:
        raise WireError(f"unknown dtype {meta['dtype']!r}") from None
    if dtype.kind not in ALLOWED_KINDS or dtype.itemsize > 8:
        raise WireError(f"dtype {dtype} is not a plain number type")
    shape = meta["shape"]
    if len(shape) > 32 or not all(type(n) is int and 0 <= n <= _MAX_DIM for n in shape):
        raise WireError(f"bad shape {shape!r}")
    size = count = dtype.itemsize
    for n in shape:
        size *= n
        count *= max(n, 1)
    if count > _MAX_DIM:  # an empty array whose other dimensions multiply past what NumPy can index
        raise WireError(f"bad shape {shape!r}")
    return dtype, tuple(shape), size


def encode_tree(
    value: Any, arrays: list[np.ndarray], *, max_array_bytes: int, plain: type | None = None
) -> dict[str, Any]:
    """A JSON-able description of ``value``; its arrays are appended to ``arrays``.

    Nodes: ``{"array": i}`` (index into ``arrays``), ``{"seq": [...], "type": "tuple"}``,
    ``{"dict": [[key, node], ...]}`` (string keys), ``{"other": "TypeName"}`` for anything
    that is not a number, an array of numbers, a tuple/list or a dict (and for arrays over
    ``max_array_bytes``, ``{"other": ..., "too_large": shape}``). An instance of an ndarray
    subclass is ``other`` too, except of exactly ``plain`` (``type(item) is plain``: the
    child's own array class), whose data travels as a plain array, read by ndarray's own
    ``view`` without calling a method of the object.
    """
    budget = [_MAX_NODES]

    def children(items: Any, depth: int) -> list[Any]:
        nodes = []
        for item in items:
            nodes.append(node(item, depth))
            if budget[0] < 0:  # the placeholder just added stands for the rest
                break
        return nodes

    def node(item: Any, depth: int) -> dict[str, Any]:
        budget[0] -= 1
        if budget[0] < 0 or depth > _MAX_DEPTH:
            return {"other": "…", "note": "too deeply nested or too many items"}
        kind = type(item)  # the real type: an object's __class__ may lie to isinstance
        if issubclass(kind, tuple | list):
            return {"seq": children(item, depth + 1), "type": kind.__name__}
        if issubclass(kind, dict):
            keys = [str(k) for k in item]
            return {"dict": [list(p) for p in zip(keys, children(item.values(), depth + 1), strict=False)]}
        if kind is not _ndarray and issubclass(kind, _ndarray):
            if kind is not plain:
                return {"other": kind.__name__}
            item = _view(item, _ndarray)
        if issubclass(kind, bool | int | float | _ndarray | _generic):
            array = _asarray(item)
            if type(array) is not _ndarray:
                return {"other": type(item).__name__}
            if array.dtype.kind not in ALLOWED_KINDS or array.dtype.itemsize > 8:
                return {"other": f"{type(item).__name__} of dtype {array.dtype}"}
            if array.nbytes > max_array_bytes:
                return {"other": type(item).__name__, "too_large": list(array.shape)}
            arrays.append(array)
            return {"array": len(arrays) - 1}
        return {"other": type(item).__name__}

    return node(value, 0)


def decode_tree(node: Any, arrays: list[np.ndarray]) -> Any:
    """The value :func:`encode_tree` described: arrays, tuples, lists, dicts, and :class:`Opaque` leaves.

    ``WireError`` for a tree deeper or larger than :func:`encode_tree` ever writes.
    """
    budget = [_MAX_NODES + _MAX_DEPTH + 2]  # the most encode_tree writes: a placeholder per open container
    return _decode(node, arrays, 0, budget)


def _decode(node: Any, arrays: list[np.ndarray], depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if depth > _MAX_DEPTH + 1 or budget[0] < 0:
        raise WireError("a result tree is nested too deeply or has too many items")
    if not isinstance(node, dict):
        raise WireError(f"bad tree node {node!r}")
    if "array" in node:
        index = node["array"]
        if type(index) is not int or not 0 <= index < len(arrays):
            raise WireError(f"array index {index!r} out of range")
        return arrays[index]
    if "seq" in node and isinstance(node["seq"], list):
        items = [_decode(x, arrays, depth + 1, budget) for x in node["seq"]]
        return tuple(items) if node.get("type") == "tuple" else items
    if "dict" in node and isinstance(node["dict"], list):
        pairs = node["dict"]
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
            raise WireError("bad dict node")
        return {key: _decode(value, arrays, depth + 1, budget) for key, value in pairs}
    if "other" in node:
        too_large = node.get("too_large")
        if too_large is not None and not (
            isinstance(too_large, list) and len(too_large) <= 32 and all(type(n) is int for n in too_large)
        ):
            raise WireError("bad shape in a too-large note")
        return Opaque(str(node["other"])[:80], too_large)
    raise WireError(f"bad tree node {node!r}")


class Opaque:
    """A returned value that did not cross the pipe: only its type name (and shape when too large) did."""

    def __init__(self, type_name: str, too_large: Any = None) -> None:
        self.type_name = type_name
        self.too_large = too_large

    def describe(self) -> str:
        if self.too_large is not None:
            return f"an array of shape {tuple(self.too_large)} (too large to check)"
        return f"a {self.type_name}"

    def __repr__(self) -> str:
        return f"Opaque({self.type_name!r})"
