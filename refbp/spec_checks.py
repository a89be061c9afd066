"""Type checks of a :class:`~refbp.spec.NetworkSpec` built in Python rather than read from a file.

``NetworkSpec(layers=5)`` or ``NetworkSpec(..., loss="x")`` must fail with an
:class:`InputError` naming the field, not with whatever Python raises on first use.
Mappings are accepted where a part is expected (``layers=[{"units": 2}]``) and read as
the same table in a spec file would be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from refbp.errors import InputError


def of_type(value: Any, kind: type, where: str) -> Any:
    """``value`` if it is a ``kind``; a mapping is read with ``kind.from_dict``; anything else is refused."""
    if isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        return kind.from_dict(value, where)
    raise InputError(where, f"a {kind.__name__} or a table of its fields", value)


def layer_tuple(layers: Any, kind: type) -> tuple:
    """``layers`` as a tuple of ``kind`` (a :class:`~refbp.spec.LayerSpec`), each one checked."""
    if isinstance(layers, str | bytes | Mapping) or not isinstance(layers, Sequence):
        raise InputError("layers", f"a list of {kind.__name__}", layers)
    return tuple(of_type(layer, kind, f"layers[{i}]") for i, layer in enumerate(layers))
