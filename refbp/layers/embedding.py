"""Word embedding: integer indices to vectors, forward and backward side by side (CS231n's
``word_embedding_forward/backward``).

Shapes::

    x  (N, T)      integer indices in 0…vocab−1 (held in the spec's float dtype: X arrays are
                   numbers; each entry is rounded to the nearest integer)
    W  (vocab, dim)
    out (N, T, dim)      out[n, t] = W[x[n, t]]

Backward: ``∂L/∂W[v] = Σ_{(n, t): x[n, t] = v} ∂L/∂out[n, t]`` — a repeated index
accumulates every one of its steps (``np.add.at``; ``dW[x] = dout`` would keep only the last).
Indices are not differentiable: ``∂L/∂x`` is zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refbp.errors import InputError
from refbp.layers.fields import check_keys, integer


@dataclass(frozen=True)
class Embedding:
    """``vocab`` rows of ``dim`` numbers; the input is a sequence of ``T`` indices."""

    type: ClassVar[str] = "embedding"
    has_activation: ClassVar[bool] = False
    activation: ClassVar[str] = "none"
    vocab: int
    dim: int

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Embedding:
        data = check_keys(data, ("type", "vocab", "dim"), where)
        for needed in ("vocab", "dim"):
            if needed not in data:
                raise InputError(f"{where}.{needed}", "a positive integer", "missing")
        return cls(vocab=integer(data["vocab"], f"{where}.vocab"), dim=integer(data["dim"], f"{where}.dim"))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "vocab": self.vocab, "dim": self.dim}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(in_shape) != 1:
            raise InputError(where, "a sequence of indices (T,)", f"shape {in_shape}")
        return (in_shape[0], self.dim)

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {"W": (self.vocab, self.dim)}

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}

    def draw_inputs(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Random indices of ``shape`` ``(N, T)``, with repeats whenever ``N·T > vocab``."""
        return rng.integers(0, self.vocab, size=shape)


def indices(x: np.ndarray, vocab: int) -> np.ndarray:
    """``x`` as int64 indices; :class:`InputError` for an entry that is not an index into ``vocab`` rows."""
    idx = np.rint(x)
    if not np.all(np.abs(idx - x) <= 1e-3) or idx.min() < 0 or idx.max() >= vocab:
        raise InputError("X", f"integer indices in 0..{vocab - 1}", np.unique(x)[:8].tolist())
    return idx.astype(np.int64)


def forward(layer: Embedding, params: dict[str, np.ndarray], x: np.ndarray, buffers: dict) -> tuple:
    """``out (N, T, dim) = W[x]``; returns ``(out, cache, state)``."""
    idx = indices(x, layer.vocab)
    return params["W"][idx], (x.shape, idx), {}


def backward(layer: Embedding, params: dict[str, np.ndarray], cache: tuple, dout: np.ndarray) -> tuple:
    """``(∂L/∂x = 0, {"W": ∂L/∂W})``: every step's ``dout`` added into its index's row."""
    x_shape, idx = cache
    dW = np.zeros(params["W"].shape, dtype=dout.dtype)
    np.add.at(dW, idx, dout)
    return np.zeros(x_shape, dtype=dout.dtype), {"W": dW}
