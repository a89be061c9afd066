"""LSTM over a whole sequence, forward and full backprop through time side by side.

Shapes (CS231n's ``lstm_forward``, with the initial state a parameter shared by the batch)::

    x  (N, T, D)     Wx (D, 4H)     Wh (H, 4H)     b (4H,)     h0 (H,)     c_{−1} = 0
    a_t = x_t Wx + h_{t−1} Wh + b          (N, 4H), cut into four blocks of H columns
    i = σ(a_i)   f = σ(a_f)   o = σ(a_o)   g = tanh(a_g)
    c_t = f ⊙ c_{t−1} + i ⊙ g              h_t = o ⊙ tanh(c_t)          out = h (N, T, H)

Gate order (the order of the four column blocks of ``Wx``, ``Wh``, ``b``): ``gate_order =
"ifog"`` is CS231n's (input, forget, output, candidate g), the default; ``"ifgo"`` is
torch's ``nn.LSTM`` / ``LSTMCell`` order (input, forget, g, output).

Backward, from ``dout = ∂L/∂h`` at each step, with the carried ``dnext_h``, ``dnext_c``::

    dh = dout_t + dnext_h          dc = dnext_c + dh ⊙ o ⊙ (1 − tanh²(c_t))
    do = dh ⊙ tanh(c_t)   di = dc ⊙ g   df = dc ⊙ c_{t−1}   dg = dc ⊙ i   dnext_c = dc ⊙ f
    da = [di ⊙ i(1−i), df ⊙ f(1−f), do ⊙ o(1−o), dg ⊙ (1−g²)] in the gate order
    ∂L/∂x_t = da Wxᵀ   dnext_h = da Whᵀ   ∂L/∂Wx = Σ_t x_tᵀ da   ∂L/∂Wh = Σ_t h_{t−1}ᵀ da   ∂L/∂b = Σ da
    ∂L/∂h0 = Σ_n dnext_h after step 0

The backward also reports every step's total ``dh_t`` and ``dc_t`` (``grads["h"]``,
``grads["c"]``, ``(N, T, H)``): the per-step gradients the oracle compares one step at a time
(see :data:`STEPS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from refbp.layers.fields import check_keys, choice
from refbp.layers.rnn import all_steps_gradients, hidden_field, states_shape

GATE_ORDERS = ("ifog", "ifgo")
STEPS = {
    "h": "dh_t = ∂L/∂a_t + da_{t+1} Whᵀ: the gate derivatives of step t+1 (σ' and tanh' from that step's gates), "
    "their column blocks in the gate order, the product with Whᵀ",
    "c": "dc_t = dc_{t+1} ⊙ f_{t+1} + dh_t ⊙ o_t ⊙ (1 − tanh²(c_t)): the forget factor of step t+1 and the path "
    "through h_t",
}
"""The per-step gradients the backward reports, with the formula that forms each (see
:data:`refbp.layers.names.STEP_KINDS`)."""


@dataclass(frozen=True)
class LSTM:
    """An LSTM of ``hidden`` units; parameters ``Wx``, ``Wh``, ``b``, ``h0``; the gate order of the columns."""

    type: ClassVar[str] = "lstm"
    has_activation: ClassVar[bool] = False
    activation: ClassVar[str] = "none"
    hidden: int
    gate_order: str = "ifog"

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LSTM:
        data = check_keys(data, ("type", "hidden", "gate_order"), where)
        return cls(
            hidden=hidden_field(data, where),
            gate_order=choice(data.get("gate_order", "ifog"), GATE_ORDERS, f"{where}.gate_order"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "hidden": self.hidden, "gate_order": self.gate_order}

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        return states_shape(in_shape, self.hidden, where)

    def parameter_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        H = self.hidden
        return {"Wx": (in_shape[1], 4 * H), "Wh": (H, 4 * H), "b": (4 * H,), "h0": (H,)}

    def buffer_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        return {}


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # no overflow warning for large |a|


def _blocks(order: str, H: int) -> dict[str, slice]:
    return {gate: slice(k * H, (k + 1) * H) for k, gate in enumerate(order)}


def step_forward(
    x: np.ndarray,
    prev_h: np.ndarray,
    prev_c: np.ndarray,
    Wx: np.ndarray,
    Wh: np.ndarray,
    b: np.ndarray,
    order: str = "ifog",
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(next_h, next_c, gates)`` of one step; ``gates`` holds ``i, f, o, g`` (after σ / tanh)."""
    a = x @ Wx + prev_h @ Wh + b
    blocks = _blocks(order, prev_h.shape[1])
    gates = {k: _sigmoid(a[:, blocks[k]]) for k in "ifo"}
    gates["g"] = np.tanh(a[:, blocks["g"]])
    next_c = gates["f"] * prev_c + gates["i"] * gates["g"]
    return gates["o"] * np.tanh(next_c), next_c, gates


def cell_gradient(dnext_h: np.ndarray, dnext_c: np.ndarray, next_c: np.ndarray, o: np.ndarray) -> np.ndarray:
    """The total ``dc_t = dnext_c + dh_t ⊙ o ⊙ (1 − tanh²(c_t))`` of one step, ``(N, H)``."""
    tanh_c = np.tanh(next_c)
    return dnext_c + dnext_h * o * (1.0 - tanh_c * tanh_c)


def step_backward(
    dnext_h: np.ndarray,
    dnext_c: np.ndarray,
    x: np.ndarray,
    prev_h: np.ndarray,
    prev_c: np.ndarray,
    next_c: np.ndarray,
    gates: dict[str, np.ndarray],
    Wx: np.ndarray,
    Wh: np.ndarray,
    order: str = "ifog",
) -> tuple[np.ndarray, ...]:
    """``(dx, dprev_h, dprev_c, dWx, dWh, db)`` of one step (carried gradients included in ``dnext_*``)."""
    i, f, o, g = (gates[k] for k in "ifog")
    tanh_c = np.tanh(next_c)
    dc = cell_gradient(dnext_h, dnext_c, next_c, o)
    parts = {"i": dc * g * i * (1.0 - i), "f": dc * prev_c * f * (1.0 - f)}
    parts.update(o=dnext_h * tanh_c * o * (1.0 - o), g=dc * i * (1.0 - g * g))
    da = np.concatenate([parts[k] for k in order], axis=1)
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def forward(layer: LSTM, params: dict[str, np.ndarray], x: np.ndarray, buffers: dict) -> tuple:
    """``h (N, T, H)``; returns ``(h, cache, state)``; the cache keeps every step's ``c`` and gates.

    The formulas of :func:`step_forward`, arranged for speed: ``x_t Wx`` of every step is one
    GEMM before the loop, and each step writes into preallocated arrays (its gates, after σ /
    tanh, as ``(T, N, 4H)`` in the layer's column order).
    """
    N, T, D = x.shape
    H = layer.hidden
    Wx, Wh, b = params["Wx"], params["Wh"], params["b"]
    blocks = _blocks(layer.gate_order, H)
    i, f, o, g = (blocks[k] for k in "ifog")
    x_steps = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, N, D): step t is one contiguous block
    ax = (x_steps.reshape(T * N, D) @ Wx).reshape(T, N, 4 * H)
    gates = np.empty((T, N, 4 * H), dtype=np.result_type(x, Wx))
    h = np.empty((T, N, H), dtype=gates.dtype)
    cs = np.empty_like(h)
    prev_h, prev_c = np.broadcast_to(params["h0"], (N, H)), np.zeros((N, H), dtype=gates.dtype)
    tanh_c = np.empty((N, H), dtype=gates.dtype)
    for t in range(T):
        a = gates[t]
        np.matmul(prev_h, Wh, out=a)
        np.add(ax[t], a, out=a)  # x_t Wx + h_{t−1} Wh + b, added in step_forward's order
        a += b
        candidate = np.tanh(a[:, g])
        np.multiply(a, 0.5, out=a)  # σ(a) = ½(1 + tanh(½a)) on every block, then g put back
        np.tanh(a, out=a)
        a += 1.0
        a *= 0.5
        a[:, g] = candidate
        c = cs[t]
        np.multiply(a[:, f], prev_c, out=c)
        np.multiply(a[:, i], candidate, out=candidate)
        c += candidate
        np.tanh(c, out=tanh_c)
        np.multiply(a[:, o], tanh_c, out=h[t])
        prev_h, prev_c = h[t], c
    return np.ascontiguousarray(h.transpose(1, 0, 2)), (x, h, cs, gates), {}


def backward(layer: LSTM, params: dict[str, np.ndarray], cache: tuple, dout: np.ndarray) -> tuple:
    """``(∂L/∂x (N, T, D), {"Wx", "Wh", "b", "h0", "h", "c"})`` by backprop through every step (``"h"``,
    ``"c"``: each step's total ``dh_t``, ``dc_t``, ``(N, T, H)``).

    The formulas of :func:`step_backward`; the loop computes only each step's ``da``, the carried
    ``dnext_h``, ``dnext_c`` and the per-step totals; ``∂L/∂x``, ``∂L/∂Wx``, ``∂L/∂Wh`` and ``∂L/∂b``
    are then one GEMM (or sum) each over all steps.
    """
    x, h, cs, gates = cache  # x (N, T, D); the states and gates (T, N, ·)
    N, T, _ = x.shape
    H = layer.hidden
    Wh = params["Wh"]
    blocks = _blocks(layer.gate_order, H)
    i, f, o, g = (blocks[k] for k in "ifog")
    dtype = np.result_type(dout, gates)
    da_all = np.empty((T, N, 4 * H), dtype=dtype)
    dnext_h = np.zeros((N, H), dtype=dtype)
    dnext_c = np.zeros_like(dnext_h)
    dh_steps, dc_steps = np.empty((N, T, H), dtype=dtype), np.empty((N, T, H), dtype=dtype)
    dh, dc, tanh_c, work = (np.empty((N, H), dtype=dtype) for _ in range(4))
    zeros = np.zeros((N, H), dtype=dtype)
    for t in range(T - 1, -1, -1):
        a, da = gates[t], da_all[t]
        gi, gf, go, gg = a[:, i], a[:, f], a[:, o], a[:, g]
        prev_c = cs[t - 1] if t else zeros
        np.add(dout[:, t], dnext_h, out=dh)
        np.tanh(cs[t], out=tanh_c)
        # dc = dnext_c + dh ⊙ o ⊙ (1 − tanh²(c_t))
        np.multiply(tanh_c, tanh_c, out=work)
        np.subtract(1.0, work, out=work)
        np.multiply(dh, go, out=dc)
        dc *= work
        np.add(dnext_c, dc, out=dc)
        dh_steps[:, t], dc_steps[:, t] = dh, dc
        # da_i = dc ⊙ g ⊙ i(1 − i); da_f = dc ⊙ c_{t−1} ⊙ f(1 − f)
        _gate_grad(dc, gg, gi, da[:, i], work)
        _gate_grad(dc, prev_c, gf, da[:, f], work)
        # da_o = dh ⊙ tanh(c_t) ⊙ o(1 − o); da_g = dc ⊙ i ⊙ (1 − g²)
        _gate_grad(dh, tanh_c, go, da[:, o], work)
        np.multiply(gg, gg, out=work)
        np.subtract(1.0, work, out=work)
        np.multiply(dc, gi, out=da[:, g])
        da[:, g] *= work
        np.matmul(da, Wh.T, out=dnext_h)
        np.multiply(dc, gf, out=dnext_c)
    dx, grads = all_steps_gradients(x, h, da_all, params, dnext_h)
    grads["h"], grads["c"] = dh_steps, dc_steps
    return dx, grads


def _gate_grad(upstream: np.ndarray, other: np.ndarray, gate: np.ndarray, out: np.ndarray, work: np.ndarray) -> None:
    """``out = upstream ⊙ other ⊙ gate(1 − gate)``, the derivative through a sigmoid gate, in step_backward's order."""
    np.multiply(upstream, other, out=out)
    out *= gate
    np.subtract(1.0, gate, out=work)
    out *= work
