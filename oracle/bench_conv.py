"""The convolution entry of ``refbp bench``: conv2d fwd+bwd, refbp against torch CPU, and the loop version.

At input ``(64, 3, 32, 32)``, 32 filters of 3×3, stride 1, padding 1, float64, on the same
threads as the rest of the benchmark: refbp's im2col layer (:mod:`refbp.layers.conv`) and
``torch.nn.functional.conv2d`` with autograd, each a forward and a backward of ``dz = 1``,
timed interleaved. The course's loop (``textbook_forward``/``textbook_backward``) takes
seconds per call at that size, so it is timed once on ``TEXTBOOK_EXAMPLES`` examples and
scaled to the batch (loops are linear in the batch). The target: refbp within 2× of torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CONV_TARGET = 2.0
CONV_SHAPE = (64, 3, 32, 32)
SMOKE_SHAPE = (4, 2, 8, 8)
FILTERS, SMOKE_FILTERS = 32, 4
TEXTBOOK_EXAMPLES = 2


def measure_conv(*, smoke: bool, repeats: int, sample_seconds: float) -> dict[str, Any]:
    """Seconds per fwd+bwd call of refbp, torch and (scaled) the textbook loop, and refbp/torch."""
    import time

    import torch

    from oracle.bench_measure import time_interleaved
    from refbp.layers import conv

    shape, filters = (SMOKE_SHAPE, SMOKE_FILTERS) if smoke else (CONV_SHAPE, FILTERS)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    params = {"W": rng.standard_normal((filters, shape[1], 3, 3)) * 0.1, "b": rng.standard_normal(filters)}
    layer = conv.Conv2d(filters, (3, 3), (1, 1), (1, 1))

    def refbp_call() -> tuple:
        z, cache, _ = conv.forward(layer, params, x, {})
        return conv.backward(layer, params, cache, np.ones_like(z))

    def torch_call() -> torch.Tensor:
        xt = torch.tensor(x, requires_grad=True)
        Wt = torch.tensor(params["W"], requires_grad=True)
        bt = torch.tensor(params["b"], requires_grad=True)
        z = torch.nn.functional.conv2d(xt, Wt, bt, stride=1, padding=1)
        z.backward(torch.ones_like(z))
        return xt.grad

    agree = bool(np.allclose(refbp_call()[0], torch_call().numpy(), rtol=1e-10, atol=1e-10))
    samples = time_interleaved(
        {"refbp": refbp_call, "torch": torch_call}, repeats=repeats, sample_seconds=sample_seconds
    )
    seconds = {name: float(np.median(values)) for name, values in samples.items()}
    part = x[:TEXTBOOK_EXAMPLES]
    started = time.perf_counter()
    z = conv.textbook_forward(layer, params, part)
    conv.textbook_backward(layer, params, part, np.ones_like(z))
    seconds["textbook"] = (time.perf_counter() - started) * shape[0] / TEXTBOOK_EXAMPLES
    return {
        "shape": list(shape),
        "filters": filters,
        "seconds": seconds,
        "agree": agree,
        "ratio": seconds["refbp"] / seconds["torch"],
    }


def conv_verdict(conv: dict[str, Any]) -> dict[str, Any]:
    """The target row: refbp/torch for conv2d fwd+bwd at most 2×."""
    seconds = conv["seconds"]
    measured = (
        f"{conv['ratio']:.2f}× (refbp {seconds['refbp'] * 1e3:.3g} ms, torch {seconds['torch'] * 1e3:.3g} ms, "
        f"textbook loop {seconds['textbook']:.3g} s)"
    )
    met = conv["ratio"] <= CONV_TARGET and conv["agree"]
    return {
        "target": f"conv2d fwd+bwd / torch at {tuple(conv['shape'])}, {conv['filters']} filters 3×3",
        "goal": f"≤ {CONV_TARGET:.0f}×",
        "measured": measured,
        "met": met,
        "missed_by": "" if met else f"{conv['ratio'] / CONV_TARGET - 1:.0%}" if conv["agree"] else "results differ",
        "why": "" if met else "im2col copy and the kh·kw strided additions of ∂L/∂x",
    }
