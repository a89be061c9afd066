"""The recurrent entries of ``refbp bench``: LSTM and vanilla RNN fwd+bwd, refbp against its torch twin.

At ``N = 32`` sequences of ``T = 50`` steps, ``D = H = 128``, float64, on the same threads as
the rest of the benchmark: refbp's layer (:mod:`refbp.layers.lstm`, :mod:`refbp.layers.rnn`:
forward over the whole sequence, then backprop through time from a fixed ``dout``) against
the oracle's torch twin (:mod:`oracle.twin.recurrent`: the same loop over time in torch ops,
``h.backward(dout)`` from leaves with ``requires_grad``). ``torch.nn.LSTM`` / ``nn.RNN`` (one
fused C++ loop) is timed beside them for reference, with the same weights (the LSTM in
torch's gate order ``ifgo``). All three are timed interleaved; the target is refbp within
:data:`RECURRENT_TARGET` × of the twin, its ``∂L/∂x`` agreeing with the twin's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from oracle.bench_measure import median, time_interleaved, verdict_row

RECURRENT_TARGET = 2.0
RECURRENT_SHAPE = (32, 50, 128, 128)  # N, T, D, H
SMOKE_SHAPE = (4, 5, 8, 8)
KINDS = ("lstm", "rnn")


def measure_recurrent(kind: str, *, smoke: bool, repeats: int, sample_seconds: float) -> dict[str, Any]:
    """Seconds per fwd+bwd of refbp, the twin and torch's fused module for ``kind`` (``lstm`` or ``rnn``)."""
    import torch

    from oracle.twin import recurrent as twin
    from refbp.layers import lstm, rnn

    N, T, D, H = SMOKE_SHAPE if smoke else RECURRENT_SHAPE
    module = lstm if kind == "lstm" else rnn
    layer = lstm.LSTM(H, gate_order="ifgo") if kind == "lstm" else rnn.RNN(H)
    G = 4 if kind == "lstm" else 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, D))
    scale = 1.0 / np.sqrt(H)
    params = {
        "Wx": rng.uniform(-scale, scale, (D, G * H)),
        "Wh": rng.uniform(-scale, scale, (H, G * H)),
        "b": rng.uniform(-scale, scale, G * H),
        "h0": rng.uniform(-scale, scale, H),
    }
    dout = rng.standard_normal((N, T, H))

    def refbp_call() -> np.ndarray:
        _, cache, _ = module.forward(layer, params, x, {})
        return module.backward(layer, params, cache, dout)[0]

    leaves = {name: torch.tensor(value, requires_grad=True) for name, value in params.items()}
    xt, dout_t = torch.tensor(x, requires_grad=True), torch.tensor(dout)
    twin_layer = getattr(twin, kind)

    def twin_call() -> Any:
        for leaf in (*leaves.values(), xt):
            leaf.grad = None
        twin_layer(layer, leaves, xt, {})[0].backward(dout_t)
        return xt.grad

    candidates: dict[str, Callable[[], Any]] = {
        "refbp": refbp_call,
        "twin": twin_call,
        "torch_fused": _fused_call(kind, params, x, dout),
    }
    agree = bool(np.allclose(refbp_call(), twin_call().numpy(), rtol=1e-10, atol=1e-10))
    agree_fused = bool(np.allclose(refbp_call(), candidates["torch_fused"]().numpy(), rtol=1e-10, atol=1e-10))
    samples = time_interleaved(candidates, repeats=repeats, sample_seconds=sample_seconds)
    seconds = {name: median(values) for name, values in samples.items()}
    return {
        "kind": kind,
        "shape": {"N": N, "T": T, "D": D, "H": H},
        "seconds": seconds,
        "agree": agree and agree_fused,
        "ratio": seconds["refbp"] / seconds["twin"],
        "ratio_fused": seconds["refbp"] / seconds["torch_fused"],
    }


def _fused_call(kind: str, params: dict[str, np.ndarray], x: np.ndarray, dout: np.ndarray) -> Callable[[], Any]:
    """fwd+bwd of ``torch.nn.LSTM``/``nn.RNN`` (batch first) with refbp's weights; returns ``∂L/∂x``."""
    import torch

    D, H = x.shape[2], params["h0"].shape[0]
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.RNN)(D, H, batch_first=True).double()
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.tensor(params["Wx"].T))
        module.weight_hh_l0.copy_(torch.tensor(params["Wh"].T))
        module.bias_ih_l0.copy_(torch.tensor(params["b"]))
        module.bias_hh_l0.zero_()
    h0 = torch.tensor(params["h0"], requires_grad=True)
    xt, dout_t = torch.tensor(x, requires_grad=True), torch.tensor(dout)
    leaves = [*module.parameters(), h0, xt]

    def call() -> Any:
        for leaf in leaves:
            leaf.grad = None
        start = h0.expand(1, x.shape[0], H)
        state = (start, torch.zeros_like(start)) if kind == "lstm" else start
        module(xt, state)[0].backward(dout_t)
        return xt.grad

    return call


def recurrent_verdict(entry: dict[str, Any]) -> dict[str, Any]:
    """The target row: refbp's fwd+bwd at most :data:`RECURRENT_TARGET` × the torch twin's, results agreeing."""
    seconds, shape = entry["seconds"], entry["shape"]
    measured = (
        f"{entry['ratio']:.2f}× (refbp {seconds['refbp'] * 1e3:.3g} ms, twin {seconds['twin'] * 1e3:.3g} ms; "
        f"torch.nn fused {seconds['torch_fused'] * 1e3:.3g} ms, {entry['ratio_fused']:.2f}×)"
    )
    met = entry["ratio"] <= RECURRENT_TARGET and entry["agree"]
    missed_by = f"{entry['ratio'] / RECURRENT_TARGET - 1:.0%}" if entry["agree"] else "results differ"
    return verdict_row(
        f"{entry['kind'].upper()} fwd+bwd / torch twin at N={shape['N']}, T={shape['T']}, "
        f"D={shape['D']}, H={shape['H']}",
        f"≤ {RECURRENT_TARGET:.0f}×",
        measured,
        met,
        missed_by,
        "per-step Python and NumPy calls of the loop over time",
    )
