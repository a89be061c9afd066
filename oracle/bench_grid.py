"""The dense fwd+bwd grid of ``refbp bench``: refbp beside torch eager autograd, with both sides' GEMM ceilings.

Networks: a classifier with ``depth − 1`` hidden ``tanh`` layers of ``width`` units on ``width``
inputs and a softmax output over :data:`CLASSES` classes (cross-entropy, mean over the batch,
integer labels), float64, ``in_out``. refbp's :func:`refbp.network.backprop` (the fast path)
and :func:`refbp.network.textbook_backprop` against torch (:class:`oracle.bench_torch.TorchNet`,
timed with the input as a leaf, the same outputs as refbp, and with parameter gradients only).

GEMM ceilings. A hidden layer's fwd+bwd is three GEMMs of the same size (:func:`gemm_shapes`):
``z = a W`` ``(N, w) @ (w, w)``, ``∂L/∂W = aᵀ δ`` ``(w, N) @ (N, w)`` and ``∂L/∂a = δ Wᵀ``
``(N, w) @ (w, w)ᵀ``, transposes as views as refbp and torch take them. Those three are timed
on their own, float64, written into preallocated outputs, with NumPy's BLAS
(``np.matmul``) and with torch's (``torch.matmul``), in the same interleaved run as the
fwd+bwd candidates and on the same threads. Their time ratio ``NumPy / torch`` says how much
of refbp/torch is the two BLAS libraries rather than refbp.

Targets (:func:`grid_target`):

* **GEMM-bound** sizes, where one fwd+bwd does at least :data:`GEMM_BOUND_FLOP` floating-point
  operations in its matmuls (:func:`flops`): refbp/torch at most :data:`GEMM_SLACK` × the
  NumPy/torch GEMM ratio. At 10⁸ FLOP the matmuls alone take milliseconds even at
  100 GFLOP/s, against a per-call overhead of tenths of a millisecond, so the BLAS sets the pace.
* **Overhead-dominated** sizes (fewer FLOP): refbp/torch at most :data:`RATIO_TARGET`: what is
  left there is each framework's per-call work, which refbp controls.

FLOPs: ``6·N·n_in·n_out`` per layer (forward ``2·N·n_in·n_out``, backward ``4·N·n_in·n_out`` for
``∂L/∂W`` and ``∂L/∂a``), matmuls only. At the largest size refbp's GFLOP/s must also reach
:data:`MATMUL_SHARE_TARGET` of NumPy's GEMM ceiling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from oracle.bench_measure import hotspots, median, profile_summary, time_interleaved, verdict_row
from oracle.bench_torch import TorchNet
from oracle.cases import Case
from refbp.network import backprop, textbook_backprop
from refbp.spec import LayerSpec, LossSpec, NetworkSpec

Size = tuple[int, int, int]  # (batch, width, depth)

GRID: tuple[Size, ...] = ((4, 8, 2), (32, 64, 3), (128, 256, 4), (256, 1024, 4), (512, 2048, 3))
SMOKE_GRID: tuple[Size, ...] = ((4, 8, 2), (16, 32, 2))
CLASSES = 10

RATIO_TARGET = 1.0
"""refbp/torch at most this where per-call overhead dominates."""
GEMM_SLACK = 1.05
"""refbp/torch at most this × the NumPy/torch GEMM ratio where the GEMMs dominate."""
GEMM_BOUND_FLOP = 1e8
"""A grid size is GEMM-bound when one fwd+bwd does at least this many matmul FLOPs (:func:`flops`)."""
MATMUL_SHARE_TARGET = 0.8
"""refbp's GFLOP/s at the largest size at least this share of NumPy's GEMM ceiling."""


def parse_size(text: str) -> Size:
    """``"128x256x4"`` → ``(128, 256, 4)`` (batch, width, depth); an argparse type."""
    import argparse

    try:
        batch, width, depth = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BATCHxWIDTHxDEPTH, got {text!r}") from None
    if min(batch, width, depth) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return batch, width, depth


def grid_spec(width: int, depth: int) -> NetworkSpec:
    """``depth − 1`` hidden tanh layers of ``width`` units on ``width`` inputs, softmax over :data:`CLASSES`."""
    hidden = tuple(LayerSpec(width, "tanh") for _ in range(depth - 1))
    return NetworkSpec(
        inputs=width,
        layers=(*hidden, LayerSpec(CLASSES, "softmax")),
        loss=LossSpec("softmax_cross_entropy", "mean", targets="index"),
    )


def flops(spec: NetworkSpec, batch: int) -> int:
    """Floating-point operations of one fwd+bwd counted as ``6·N·n_in·n_out`` per layer (matmuls only)."""
    widths = spec.widths
    return sum(6 * batch * widths[i] * widths[i + 1] for i in range(spec.depth))


def gemm_shapes(batch: int, width: int) -> list[str]:
    """The three GEMMs of a hidden layer's fwd+bwd, as the report names them (see the module docstring)."""
    N, w = batch, width
    return [f"({N}, {w}) @ ({w}, {w})", f"({w}, {N}) @ ({N}, {w})", f"({N}, {w}) @ ({w}, {w})ᵀ"]


def gemm_calls(batch: int, width: int) -> dict[str, Callable[[], Any]]:
    """``{"gemm_numpy": …, "gemm_torch": …}``: the three GEMMs of :func:`gemm_shapes` with each BLAS, float64.

    Operands ``a``, ``δ`` (both ``(batch, width)``) and ``W`` are drawn in that order from
    ``default_rng(0)``; each call returns its three products ``(a W, aᵀ δ, δ Wᵀ)``.
    """
    import torch

    rng = np.random.default_rng(0)
    a, delta = rng.standard_normal((batch, width)), rng.standard_normal((batch, width))
    W = rng.standard_normal((width, width))
    z, grad_W, grad_a = np.empty((batch, width)), np.empty((width, width)), np.empty((batch, width))
    ta, tdelta, tW = torch.tensor(a), torch.tensor(delta), torch.tensor(W)
    tz, tgrad_W, tgrad_a = torch.empty(batch, width, dtype=torch.float64), torch.empty_like(tW), torch.empty_like(ta)

    def numpy_gemms() -> tuple[np.ndarray, ...]:
        np.matmul(a, W, out=z)
        np.matmul(a.T, delta, out=grad_W)
        np.matmul(delta, W.T, out=grad_a)
        return z, grad_W, grad_a

    def torch_gemms() -> tuple[Any, ...]:
        torch.matmul(ta, tW, out=tz)
        torch.matmul(ta.T, tdelta, out=tgrad_W)
        torch.matmul(tdelta, tW.T, out=tgrad_a)
        return tz, tgrad_W, tgrad_a

    return {"gemm_numpy": numpy_gemms, "gemm_torch": torch_gemms}


def grid_target(gflop: float, gemm_ratio: float) -> tuple[str, float]:
    """``(regime, largest refbp/torch allowed)`` of a grid size doing ``gflop`` GFLOP per fwd+bwd."""
    if gflop * 1e9 >= GEMM_BOUND_FLOP:
        return "GEMM-bound", GEMM_SLACK * gemm_ratio
    return "overhead-dominated", RATIO_TARGET


def measure_grid_size(size: Size, *, repeats: int, sample_seconds: float) -> dict:
    """refbp (fast and textbook), torch (two ways) and both GEMM ceilings on one grid size, interleaved."""
    batch, width, depth = size
    spec = grid_spec(width, depth)
    data = Case(spec, batch=batch, seed=0).materialize()
    net = TorchNet.build(spec, data.params, data.X, data.T)
    candidates: dict[str, Callable[[], Any]] = {
        "refbp": lambda: backprop(spec, data.params, data.X, data.T),
        "textbook": lambda: textbook_backprop(spec, data.params, data.X, data.T),
        "torch": net.step(input_grad=True),
        "torch_params_only": net.step(input_grad=False),
        **gemm_calls(batch, width),
    }
    samples = time_interleaved(candidates, repeats=repeats, sample_seconds=sample_seconds)
    seconds = {name: median(values) for name, values in samples.items()}
    work = flops(spec, batch)
    gemm_flop = 6 * batch * width * width
    gemm_ratio = seconds["gemm_numpy"] / seconds["gemm_torch"]
    regime, target = grid_target(work / 1e9, gemm_ratio)
    ratio = seconds["refbp"] / seconds["torch"]
    row = {
        "batch": batch,
        "width": width,
        "depth": depth,
        "parameters": spec.n_parameters,
        "gflop": work / 1e9,
        "seconds": seconds,
        "samples": samples,
        "ratio": ratio,
        "ratio_params_only": seconds["refbp"] / seconds["torch_params_only"],
        "ratio_textbook": seconds["textbook"] / seconds["torch"],
        "gflops": {name: work / seconds[name] / 1e9 for name in ("refbp", "textbook", "torch")},
        "gemm": {
            "shapes": gemm_shapes(batch, width),
            "gflop": gemm_flop / 1e9,
            "gflops": {side: gemm_flop / seconds[f"gemm_{side}"] / 1e9 for side in ("numpy", "torch")},
            "ratio": gemm_ratio,
        },
        "regime": regime,
        "target": target,
        "met": ratio <= target,
    }
    row["gflops"]["matmul"] = row["gemm"]["gflops"]["numpy"]
    row["matmul_share"] = row["gflops"]["refbp"] / row["gflops"]["matmul"]
    if not row["met"]:
        row["hotspots"] = hotspots(candidates["refbp"])
        row["tanh_seconds"] = tanh_seconds(batch, width, depth - 1, repeats=repeats, sample_seconds=sample_seconds)
    return row


def tanh_seconds(batch: int, width: int, layers: int, *, repeats: int, sample_seconds: float) -> dict[str, float]:
    """Median seconds of the hidden layers' forward ``tanh`` alone (``layers`` arrays of ``(batch, width)``).

    ``numpy`` is what refbp's forward calls; ``torch`` the same on torch tensors. Part of
    the explanation of a missed ratio: NumPy's float64 ``tanh`` has no SIMD loop on many
    CPUs, torch's has.
    """
    import torch

    z = np.random.default_rng(0).standard_normal((batch, width))
    out, z_torch = np.empty_like(z), torch.tensor(z)

    def numpy_tanh() -> None:
        for _ in range(layers):
            np.tanh(z, out=out)

    def torch_tanh() -> None:
        for _ in range(layers):
            torch.tanh(z_torch)

    candidates = {"numpy": numpy_tanh, "torch": torch_tanh}
    samples = time_interleaved(candidates, repeats=repeats, sample_seconds=sample_seconds)
    return {name: median(values) for name, values in samples.items()}


def grid_verdicts(grid: list[dict]) -> list[dict]:
    """Target rows: refbp/torch per grid size against its regime's target, then refbp's share of the GEMM ceiling."""
    rows = []
    for row in grid:
        size = f"({row['batch']}, {row['width']}, {row['depth']})"
        ratio, target, gemm = row["ratio"], row["target"], row["gemm"]["ratio"]
        bound = row["regime"] == "GEMM-bound"
        goal = f"≤ {GEMM_SLACK:.2f} × {gemm:.2f} = {target:.2f}×" if bound else f"≤ {RATIO_TARGET:.1f}×"
        why = f"refbp {row['seconds']['refbp'] * 1e3:.3g} ms vs torch {row['seconds']['torch'] * 1e3:.3g} ms"
        tanh = row.get("tanh_seconds")
        if tanh:
            why += (
                f"; of refbp's time, the forward tanh alone takes {tanh['numpy'] * 1e3:.3g} ms (NumPy) where "
                f"torch.tanh takes {tanh['torch'] * 1e3:.3g} ms"
            )
        why += f". {profile_summary(row.get('hotspots'))}"
        rows.append(
            verdict_row(
                f"fwd+bwd {size} vs torch, {row['regime']}",
                goal,
                f"{ratio:.2f}× (NumPy/torch GEMM {gemm:.2f}×)",
                row["met"],
                f"{ratio / target - 1:.1%} slower",
                why,
            )
        )
    largest = grid[-1]
    share = largest["matmul_share"]
    rows.append(
        verdict_row(
            "GFLOP/s at the largest size vs NumPy's GEMM ceiling",
            f"≥ {MATMUL_SHARE_TARGET:.0%}",
            f"{share:.0%} ({largest['gflops']['refbp']:.1f} of {largest['gflops']['matmul']:.1f} GFLOP/s)",
            share >= MATMUL_SHARE_TARGET,
            f"{MATMUL_SHARE_TARGET - share:.0%} points",
            "elementwise work and memory traffic between the matmuls; " + profile_summary(largest.get("hotspots")),
        )
    )
    return rows
