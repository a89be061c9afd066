"""Benchmarks: refbp beside PyTorch eager autograd and ``torch.autograd.gradcheck``, in one run.

Everything is measured side by side in the same process and reported as ratios, so the
numbers say how refbp compares on *this* machine rather than in absolute terms.

What is measured (see :func:`run_benchmarks`):

* **fwd+bwd over a grid** of ``(batch, width, depth)``: a classifier with ``depth − 1``
  hidden ``tanh`` layers of ``width`` units on ``width`` inputs and a softmax output over
  :data:`CLASSES` classes (cross-entropy, mean over the batch, integer labels), float64,
  ``in_out``. refbp's :func:`refbp.network.backprop` (the fast path) and
  :func:`refbp.network.textbook_backprop` against torch: ``loss.backward()`` from parameter
  leaves with ``requires_grad`` (no ``retain_grad`` on intermediates). refbp also returns
  ``∂L/∂x``, so torch is timed twice: with the input as a leaf that requires grad (the same
  outputs as refbp; this is the ratio the target uses) and with parameter gradients only.
* **GFLOP/s**: ``6·N·n_in·n_out`` per layer (forward ``2·N·n_in·n_out``, backward
  ``4·N·n_in·n_out`` for ``∂L/∂W`` and ``∂L/∂a``) over the median time, against a plain
  float64 ``(N, width) @ (width, width)`` matmul timed in the same interleaved run.
* **finite differences** of every parameter entry (:func:`oracle.finite_diff.fd_gradients`
  plus refbp's gradients and the comparison) against ``gradcheck(fast_mode=False)``, and
  the directional check (:func:`fd_directional_check`: every parameter tensor and the
  input, :func:`oracle.finite_diff.fd_directional_many`, per-entry differences of a tensor
  that disagrees) against ``gradcheck(fast_mode=True)``, on the same networks of ≥ 10k
  parameters and data. gradcheck's fast mode, with the parameters as its inputs, draws one
  random direction ``u`` per input tensor (uniform ``[0, 1)``, normalised), takes ``J·u``
  by a central difference (two forward passes per tensor) and compares it with ``vᵀJ·u``
  from backward passes. The target compares equal work: :data:`GRADCHECK_DIRECTIONS`
  direction per tensor (the input on top, which gradcheck does not check); the oracle's
  :data:`oracle.check.DIRECTIONS` per tensor is timed and reported beside it.
* **sweep throughput**: cases per second of :func:`oracle.sweep.run_sweep` (refbp, torch
  and full finite differences on small random networks; no shrinking), serial in this
  process and sharded over a pool of fresh processes, one per core (their start-up,
  including ``import torch``, is part of the wall time).
* **peak memory** of one fwd+bwd at the largest grid size, each framework in a fresh
  Python process: the growth of the resident set during the pass (the kernel's RSS
  high-water mark, reset just before the pass, minus the RSS before it; Linux only); for
  refbp also the ``tracemalloc`` peak (NumPy reports its buffers to tracemalloc, torch
  does not).

Timing: each candidate runs once to warm up and to calibrate how many calls make one
sample last at least ``sample_seconds``; then ``repeats`` samples of every candidate are
taken in turn (A B C A B C …) so that a busy spell of the machine hits all of them alike,
with the garbage collector paused as :mod:`timeit` does. Reported times are medians per
call. NumPy's BLAS and torch use the same number of threads (``threads``), set with
``threadpoolctl`` and ``torch.set_num_threads``. The default is one thread: with more, on
a machine whose cores are also busy with other work, OpenBLAS worker threads that keep
spinning after a call starve torch's OpenMP workers, and torch's times of small networks
came out up to 100× too long in trials; one thread gives stable ratios.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from oracle.bench_conv import conv_verdict, measure_conv
from oracle.cases import Case
from oracle.check import DIRECTIONS
from oracle.compare import compare_arrays
from oracle.fd_directions import random_directions_many
from oracle.finite_diff import fd_directional_many, fd_gradients
from oracle.report_markdown import md_table
from refbp.data import as_targets
from refbp.losses import dense_targets
from refbp.network import backprop, textbook_backprop
from refbp.output_paths import write_atomically
from refbp.spec import L2Spec, LayerSpec, LossSpec, NetworkSpec
from refbp.trace import quantity_map

Size = tuple[int, int, int]  # (batch, width, depth)
#: The files :func:`write_report` writes, ``benchmarks.{kind}``.
REPORT_KINDS = ("md", "svg", "json")

GRID: tuple[Size, ...] = ((4, 8, 2), (32, 64, 3), (128, 256, 4), (256, 1024, 4), (512, 2048, 3))
SMOKE_GRID: tuple[Size, ...] = ((4, 8, 2), (16, 32, 2))
CLASSES = 10
FD_BATCH = 16

RATIO_TARGET = 1.0
MATMUL_SHARE_TARGET = 0.8
FD_SLOW_TARGET = 20.0
FD_FAST_TARGET = 3.0
GRADCHECK_DIRECTIONS = 1
"""Directions per tensor of the directional check timed against gradcheck's fast mode: as many as gradcheck draws."""
DIRECTION_ENTRIES = "uniform"
"""How the directional check draws its directions (see :func:`oracle.finite_diff.random_directions_many`):
uniform on [−1, 1), as good a random direction as a Gaussian one and about 5× cheaper to draw in NumPy."""
SWEEP_TARGET_SECONDS = 20.0
SWEEP_TARGET_CASES = 1000


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


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# -- networks ---------------------------------------------------------------------------------


def grid_spec(width: int, depth: int) -> NetworkSpec:
    """``depth − 1`` hidden tanh layers of ``width`` units on ``width`` inputs, softmax over :data:`CLASSES`."""
    hidden = tuple(LayerSpec(width, "tanh") for _ in range(depth - 1))
    return NetworkSpec(
        inputs=width,
        layers=(*hidden, LayerSpec(CLASSES, "softmax")),
        loss=LossSpec("softmax_cross_entropy", "mean", targets="index"),
    )


def fd_specs(smoke: bool = False) -> tuple[NetworkSpec, ...]:
    """The networks of the finite-difference comparison: ≥ 10k parameters each (tiny ones for a smoke run).

    One ``in_out`` classifier (tanh, softmax cross-entropy) and one ``out_in`` regressor
    (ReLU, sigmoid, squared error with an L2 term); case data keep ReLU pre-activations
    away from the kink, so both checks can pass.
    """
    scale = 8 if smoke else 1
    return (
        NetworkSpec(
            inputs=32 // scale,
            layers=(LayerSpec(128 // scale, "tanh"), LayerSpec(64 // scale, "tanh"), LayerSpec(CLASSES, "softmax")),
            loss=LossSpec("softmax_cross_entropy", "mean", targets="index"),
        ),
        NetworkSpec(
            inputs=20 // scale,
            layers=(LayerSpec(100 // scale, "relu"), LayerSpec(80 // scale, "sigmoid"), LayerSpec(5, "identity")),
            layout="out_in",
            loss=LossSpec("half_sse", "sum"),
            l2=L2Spec(lam=0.01),
        ),
    )


def flops(spec: NetworkSpec, batch: int) -> int:
    """Floating-point operations of one fwd+bwd counted as ``6·N·n_in·n_out`` per layer (matmuls only)."""
    widths = spec.widths
    return sum(6 * batch * widths[i] * widths[i + 1] for i in range(spec.depth))


def parameter_keys(spec: NetworkSpec) -> list[tuple[int, str]]:
    """``(layer, "dL/dW")`` and ``(layer, "dL/db")`` for every parameter, in the order of the spec."""
    return [(int(name[1:]), f"dL/d{name[0]}") for name in spec.parameter_shapes()]


# -- the torch side -----------------------------------------------------------------------------


@dataclass
class TorchNet:
    """A spec's network as torch leaves (float64, CPU), and its loss as plain eager ops."""

    spec: NetworkSpec
    weights: list[Any]
    biases: list[Any]
    x: Any
    t: Any

    @classmethod
    def build(cls, spec: NetworkSpec, params: Mapping[str, np.ndarray], X: np.ndarray, T: np.ndarray) -> TorchNet:
        import torch

        dtype = getattr(torch, spec.dtype)
        batch = int(X.shape[spec.batch_axis])
        t = dense_targets(spec, as_targets(spec, T, batch), np.dtype(spec.dtype))
        numbers = range(1, spec.depth + 1)
        return cls(
            spec=spec,
            weights=[torch.tensor(params[f"W{n}"], dtype=dtype, requires_grad=True) for n in numbers],
            biases=[
                torch.tensor(params[f"b{n}"], dtype=dtype, requires_grad=True) if f"b{n}" in params else None
                for n in numbers
            ],
            x=torch.tensor(X, dtype=dtype),
            t=torch.tensor(t, dtype=dtype),
        )

    @property
    def parameters(self) -> list[Any]:
        return [*self.weights, *(b for b in self.biases if b is not None)]

    def loss(self, weights: list[Any], biases: list[Any], x: Any) -> Any:
        """The total loss with the twin's activations and data loss (:mod:`oracle.torch_twin`)."""
        from oracle.twin.losses import activation as _activation
        from oracle.twin.losses import reduction_scale as _reduction_scale
        from oracle.twin.losses import summed_data_loss as _summed_data_loss

        spec = self.spec
        unit_dim = 1 - spec.batch_axis
        a = x
        for layer, W, b in zip(spec.layers, weights, biases, strict=True):
            if spec.layout == "in_out":
                z = a @ W if b is None else a @ W + b
            else:
                z = W @ a if b is None else W @ a + b[:, None]
            a = _activation(layer, unit_dim)(z)
        batch = x.shape[spec.batch_axis]
        total = _summed_data_loss(spec.loss.kind, z, a, self.t, unit_dim) * _reduction_scale(spec, batch)
        if spec.l2.lam:
            penalised = weights + ([b for b in biases if b is not None] if spec.l2.include_bias else [])
            total = total + 0.5 * spec.l2.lam * sum((p * p).sum() for p in penalised)
        return total

    def step(self, *, input_grad: bool) -> Callable[[], None]:
        """One fwd+bwd: fresh ``.grad`` on every leaf (``set_to_none``), forward, ``loss.backward()``."""
        x = self.x.detach().clone().requires_grad_(input_grad)
        leaves = [*self.parameters, x] if input_grad else self.parameters

        def run() -> None:
            for leaf in leaves:
                leaf.grad = None
            self.loss(self.weights, self.biases, x).backward()

        return run

    def function_of_parameters(self) -> Callable[..., Any]:
        """``f(*parameters) -> loss`` for gradcheck, parameters in :attr:`parameters` order."""
        n_weights = len(self.weights)
        has_bias = [b is not None for b in self.biases]

        def loss_of(*params: Any) -> Any:
            weights, given = list(params[:n_weights]), iter(params[n_weights:])
            biases = [next(given) if present else None for present in has_bias]
            return self.loss(weights, biases, self.x)

        return loss_of


# -- timing ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """NumPy's BLAS (and OpenMP) and torch's intra-op pool limited to ``threads``; restored afterwards."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def time_interleaved(
    candidates: Mapping[str, Callable[[], Any]], *, repeats: int, sample_seconds: float
) -> dict[str, list[float]]:
    """Seconds per call of each candidate, ``repeats`` samples each (see the module docstring)."""
    loops: dict[str, int] = {}
    for name, call in candidates.items():
        started = time.perf_counter()
        call()  # warm-up, and how long one call takes
        once = time.perf_counter() - started
        loops[name] = max(1, math.ceil(sample_seconds / max(once, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, call in candidates.items():
                count = loops[name]
                started = time.perf_counter()
                for _ in range(count):
                    call()
                samples[name].append((time.perf_counter() - started) / count)
    finally:
        if collecting:
            gc.enable()
    return samples


def _profile(call: Callable[[], Any], seconds: float) -> tuple[dict, int]:
    """cProfile's stats of ``call`` repeated for about ``seconds``, and how many calls that was.

    The stats map ``(file, line, name)`` to ``(cc, nc, tottime, cumtime, callers)``.
    """
    started = time.perf_counter()
    call()
    count = max(1, math.ceil(seconds / max(time.perf_counter() - started, 1e-9)))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        call()
    profiler.disable()
    return pstats.Stats(profiler).stats, count


def hotspots(call: Callable[[], Any], *, top: int = 4, seconds: float = 0.3) -> list[dict]:
    """The functions ``call`` spends its own time in (cProfile, repeated for about ``seconds``)."""
    stats, count = _profile(call, seconds)
    total = sum(entry[2] for entry in stats.values()) or 1.0
    ranked = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return [
        {"function": _frame_name(key), "share": entry[2] / total, "seconds_per_call": entry[2] / count}
        for key, entry in ranked
    ]


DIRECTIONAL_PHASES = {
    "stacked forward pass": "directional_stacked",
    "refbp's fwd+bwd": "backprop",
    "drawing directions": "random_directions_many",
    "validation and unperturbed forward": "prepare_net",
    "checking directions": "check_directions",
    "comparison": "compare_arrays",
}
"""Where the time of :func:`fd_directional_check` goes: label → the function that does that part."""


def phase_shares(call: Callable[[], Any], phases: Mapping[str, str], *, seconds: float = 0.3) -> dict[str, float]:
    """Share of ``call``'s time spent inside each function of ``phases`` (cProfile cumulative time, ``label → name``).

    cProfile's own overhead weighs on Python-heavy parts more than on NumPy-heavy ones, so
    the shares are a rough picture.
    """
    stats, _ = _profile(call, seconds)
    total = sum(entry[2] for entry in stats.values()) or 1.0
    cumulative: dict[str, float] = {}
    for (_, _, name), entry in stats.items():
        cumulative[name] = cumulative.get(name, 0.0) + entry[3]
    return {label: cumulative.get(name, 0.0) / total for label, name in phases.items()}


def _frame_name(key: tuple[str, int, str]) -> str:
    file, line, name = key
    if file == "~":
        return name  # a builtin, e.g. "<method 'reduce' of 'numpy.ufunc' objects>"
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else file
    return f"{name} ({short}:{line})"


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


# -- measurements ---------------------------------------------------------------------------------


def measure_grid_size(size: Size, *, repeats: int, sample_seconds: float, with_matmul: bool) -> dict:
    """refbp (fast and textbook) and torch (two ways) on one grid size; the matmul ceiling when asked."""
    batch, width, depth = size
    spec = grid_spec(width, depth)
    data = Case(spec, batch=batch, seed=0).materialize()
    net = TorchNet.build(spec, data.params, data.X, data.T)
    candidates: dict[str, Callable[[], Any]] = {
        "refbp": lambda: backprop(spec, data.params, data.X, data.T),
        "textbook": lambda: textbook_backprop(spec, data.params, data.X, data.T),
        "torch": net.step(input_grad=True),
        "torch_params_only": net.step(input_grad=False),
    }
    if with_matmul:
        rng = np.random.default_rng(0)
        A, B = rng.standard_normal((batch, width)), rng.standard_normal((width, width))
        candidates["matmul"] = lambda: A @ B
    samples = time_interleaved(candidates, repeats=repeats, sample_seconds=sample_seconds)
    seconds = {name: _median(values) for name, values in samples.items()}
    work = flops(spec, batch)
    row = {
        "batch": batch,
        "width": width,
        "depth": depth,
        "parameters": spec.n_parameters,
        "gflop": work / 1e9,
        "seconds": seconds,
        "samples": samples,
        "ratio": seconds["refbp"] / seconds["torch"],
        "ratio_params_only": seconds["refbp"] / seconds["torch_params_only"],
        "ratio_textbook": seconds["textbook"] / seconds["torch"],
        "gflops": {name: work / seconds[name] / 1e9 for name in ("refbp", "textbook", "torch")},
    }
    if with_matmul:
        row["gflops"]["matmul"] = 2 * batch * width * width / seconds["matmul"] / 1e9
        row["matmul_share"] = row["gflops"]["refbp"] / row["gflops"]["matmul"]
    if row["ratio"] > RATIO_TARGET:
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
    return {name: _median(values) for name, values in samples.items()}


def fd_full_check(spec: NetworkSpec, data: Any) -> bool:
    """refbp's parameter gradients against per-entry central differences of every parameter entry."""
    _, grads = backprop(spec, data.params, data.X, data.T)
    mine = grads.by_parameter()
    keys = parameter_keys(spec)
    fd = fd_gradients(spec, data.params, data.X, data.T, targets=keys)
    return all(_agrees(mine[_name(key)], fd.values[key], spec) for key in keys)


def directional_keys(spec: NetworkSpec) -> list[tuple[int, str]]:
    """What the directional check covers: every parameter tensor (:func:`parameter_keys`) and the input."""
    return [*parameter_keys(spec), (0, "dL/dx")]


def fd_directional_check(spec: NetworkSpec, data: Any, seed: int = 0, *, directions: int = DIRECTIONS) -> bool:
    """refbp's gradients against directional finite differences: :func:`directional_disagreements` finds none."""
    return not directional_disagreements(spec, data, seed, directions=directions)


def directional_disagreements(
    spec: NetworkSpec,
    data: Any,
    seed: int = 0,
    *,
    directions: int = DIRECTIONS,
    gradients: Mapping[tuple[int, str], np.ndarray] | None = None,
) -> list[tuple[int, str]]:
    """The tensors whose gradient disagrees with finite differences, located as the oracle's directional mode does.

    ``gradients`` (``{(layer, quantity): array}`` for :func:`directional_keys`; default
    refbp's) is projected on ``directions`` random unit directions per tensor (every
    parameter tensor and the input; entries :data:`DIRECTION_ENTRIES`, one generator draw
    for all of them) and compared with the directional derivatives of
    :func:`oracle.finite_diff.fd_directional_many` (one stacked forward pass for all the
    ``±h`` copies). Where the projections disagree, the tensors whose own projections
    disagree are differenced entry by entry (:func:`oracle.finite_diff.fd_gradients`) and
    those that still disagree are returned, in the order of :func:`directional_keys` — as
    gradcheck's fast mode reruns its slow mode for an input that fails. An empty list
    means the check passed.
    """
    if gradients is None:
        _, grads = backprop(spec, data.params, data.X, data.T)
        gradients = quantity_map(None, grads)
    keys = directional_keys(spec)
    rng = np.random.default_rng(seed)
    shapes = [np.shape(gradients[key]) for key in keys]
    drawn = dict(zip(keys, random_directions_many(shapes, directions, rng, entries=DIRECTION_ENTRIES), strict=True))
    fd = fd_directional_many(spec, data.params, data.X, data.T, drawn)
    projected = {key: drawn[key].reshape(directions, -1) @ np.ravel(gradients[key]) for key in keys}
    mine, theirs = np.concatenate(list(projected.values())), np.concatenate([fd[key][0] for key in keys])
    kinks = np.concatenate([fd[key][1] for key in keys])
    if _agrees(mine, theirs, spec, kinks):
        return []
    # Each tensor's tolerance as in the joint comparison: relative to the largest projection of any tensor.
    scale = float(np.maximum(np.abs(mine), np.abs(theirs))[~kinks].max(initial=0.0))
    suspects = [key for key in keys if not _agrees(projected[key], fd[key][0], spec, fd[key][1], scale)]
    if not suspects:
        return []
    entries = fd_gradients(spec, data.params, data.X, data.T, targets=suspects)
    return [
        key for key in suspects if not _agrees(gradients[key], entries.values[key], spec, entries.kinks[key], scale)
    ]


def _name(key: tuple[int, str]) -> str:
    """``(2, "dL/dW")`` → ``"W2"``."""
    layer, quantity = key
    return f"{quantity[-1]}{layer}"


def _agrees(
    candidate: np.ndarray,
    reference: np.ndarray,
    spec: NetworkSpec,
    kinks: np.ndarray | None = None,
    scale_floor: float = 0.0,
) -> bool:
    row = compare_arrays(
        candidate,
        reference,
        case="bench",
        layer=0,
        quantity="dL/dW",
        pair="refbp~fd",
        dtype=spec.dtype,
        kinks=kinks,
        scale_floor=scale_floor,
    )
    return row.status in ("ok", "kink")


def measure_fd(spec: NetworkSpec, *, repeats: int, fast_repeats: int = 7, sample_seconds: float = 0.05) -> dict:
    """Finite differences against gradcheck, both modes, on one network (median seconds per check).

    Two interleaved runs. The slow pair (seconds a call: :func:`fd_full_check` and
    gradcheck's slow mode) is sampled one call at a time, ``repeats`` samples. The
    directional checks and gradcheck's fast mode (milliseconds a call) are timed on their
    own, ``fast_repeats`` samples of at least ``sample_seconds`` each: timed in the same
    run as the slow pair, one call a sample, each fast call ran cold right after a
    seconds-long slow one (caches and the allocator's memory churned by it), and which
    slow check preceded which fast one weighed on the ratio (ours came after gradcheck's
    slow mode, gradcheck's fast mode after our millisecond check).

    ``fd_directional`` draws :data:`GRADCHECK_DIRECTIONS` direction per tensor, as
    gradcheck's fast mode does (the target's comparison); ``fd_directional_oracle``
    draws :data:`oracle.check.DIRECTIONS`, as the oracle's directional mode does.
    """
    import torch

    data = Case(spec, batch=FD_BATCH, seed=0).materialize()
    net = TorchNet.build(spec, data.params, data.X, data.T)
    loss_of, leaves = net.function_of_parameters(), tuple(net.parameters)
    slow: dict[str, Callable[[], Any]] = {
        "fd_full": lambda: fd_full_check(spec, data),
        "gradcheck_slow": lambda: torch.autograd.gradcheck(loss_of, leaves, fast_mode=False, raise_exception=False),
    }
    fast: dict[str, Callable[[], Any]] = {
        "fd_directional": lambda: fd_directional_check(spec, data, directions=GRADCHECK_DIRECTIONS),
        "fd_directional_oracle": lambda: fd_directional_check(spec, data, directions=DIRECTIONS),
        "gradcheck_fast": lambda: torch.autograd.gradcheck(loss_of, leaves, fast_mode=True, raise_exception=False),
    }
    passed = {name: bool(call()) for name, call in {**slow, **fast}.items()}
    samples = time_interleaved(slow, repeats=repeats, sample_seconds=0.0)
    samples.update(time_interleaved(fast, repeats=fast_repeats, sample_seconds=sample_seconds))
    seconds = {name: _median(values) for name, values in samples.items()}
    row = {
        "network": describe_spec(spec),
        "parameters": spec.n_parameters,
        "batch": FD_BATCH,
        "directions": {"fd_directional": GRADCHECK_DIRECTIONS, "fd_directional_oracle": DIRECTIONS},
        "seconds": seconds,
        "samples": samples,
        "passed": passed,
        "speedup_full": seconds["gradcheck_slow"] / seconds["fd_full"],
        "speedup_directional": seconds["gradcheck_fast"] / seconds["fd_directional"],
        "speedup_directional_oracle": seconds["gradcheck_fast"] / seconds["fd_directional_oracle"],
    }
    if row["speedup_full"] < FD_SLOW_TARGET:
        row["hotspots_full"] = hotspots(slow["fd_full"], seconds=0.0)
    for name in ("fd_directional", "fd_directional_oracle"):
        suffix = name.removeprefix("fd")  # "_directional", "_directional_oracle"
        if row["speedup" + suffix] < FD_FAST_TARGET:
            row["hotspots" + suffix] = hotspots(fast[name])
            row["phases" + suffix] = phase_shares(fast[name], DIRECTIONAL_PHASES)
    return row


def describe_spec(spec: NetworkSpec) -> str:
    """``"32 → 128 tanh → 64 tanh → 10 softmax, softmax_cross_entropy/mean, in_out"``."""
    layers = " → ".join(f"{layer.units} {layer.activation}" for layer in spec.layers)
    l2 = f", L2 λ={spec.l2.lam:g}" if spec.l2.lam else ""
    return f"{spec.inputs} → {layers}, {spec.loss.kind}/{spec.loss.reduction}{l2}, {spec.layout}"


def _sweep_shard(n_cases: int, seed: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """``(cases checked, cases passed)`` of one (shard of a) sweep, single-threaded."""
    import torch
    from threadpoolctl import threadpool_limits

    from oracle.sweep import run_sweep

    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        result = run_sweep(n_cases, seed, shrink=False, progress=False, shard=shard)
    return len(result.results), sum(r.passed for r in result.results)


def measure_sweep(n_cases: int, workers: int, *, seed: int = 0) -> dict:
    """Three-way sweep throughput, serial in this process and over ``workers`` fresh processes."""
    import multiprocessing

    started = time.perf_counter()
    checked, passed = _sweep_shard(n_cases, seed, None)
    serial = time.perf_counter() - started
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        shards = [(k, workers) for k in range(workers)]
        counts = list(pool.map(_sweep_shard, [n_cases] * workers, [seed] * workers, shards))
    parallel = time.perf_counter() - started
    row = {
        "cases": n_cases,
        "fd": "full",
        "serial": {"seconds": serial, "cases_per_second": checked / serial, "checked": checked, "passed": passed},
        "parallel": {
            "workers": workers,
            "seconds": parallel,
            "cases_per_second": sum(c for c, _ in counts) / parallel,
            "checked": sum(c for c, _ in counts),
            "passed": sum(p for _, p in counts),
        },
    }
    row["seconds_per_1000"] = min(serial, parallel) * SWEEP_TARGET_CASES / n_cases
    if row["seconds_per_1000"] > SWEEP_TARGET_SECONDS:
        row["hotspots"] = hotspots(lambda: _sweep_shard(max(1, n_cases // 20), seed, None), seconds=0.0)
    return row


def memory_probe(framework: str, batch: int, width: int, depth: int) -> dict:
    """Peak memory of one fwd+bwd of ``framework`` (``refbp`` or ``torch``) in this process, in bytes.

    Meant for a fresh process (see :func:`measure_memory`). The kernel's high-water mark of
    the resident set (``VmHWM``) is reset to the current RSS just before the pass (``5`` into
    ``/proc/self/clear_refs``) and read just after it: ``rss_growth`` is that peak minus the
    RSS before the pass. (``ru_maxrss`` cannot serve here: it is carried over from the
    parent process, which is larger.)
    """
    import torch

    torch.set_num_threads(1)
    spec = grid_spec(width, depth)
    data = Case(spec, batch=batch, seed=0).materialize()
    if framework == "torch":
        step = TorchNet.build(spec, data.params, data.X, data.T).step(input_grad=True)
    else:

        def step() -> Any:
            return backprop(spec, data.params, data.X, data.T)

    gc.collect()
    before = _status_bytes("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    result = step()
    peak = _status_bytes("VmHWM")
    out = {"framework": framework, "rss_before": before, "rss_peak": peak, "rss_growth": max(0, peak - before)}
    if framework == "refbp":
        import tracemalloc

        del result
        tracemalloc.start()
        step()
        out["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out


def _status_bytes(field_name: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field_name}")


def measure_memory(size: Size) -> dict:
    """:func:`memory_probe` of refbp and of torch, each in a fresh Python process."""
    out: dict[str, Any] = {"batch": size[0], "width": size[1], "depth": size[2], "method": "rss"}
    for framework in ("refbp", "torch"):
        call = f"memory_probe({framework!r}, *{size!r})"
        code = f"import json; from oracle.bench import memory_probe; print(json.dumps({call}))"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out[framework] = json.loads(done.stdout.strip().splitlines()[-1])
    out["ratio"] = out["refbp"]["rss_growth"] / max(out["torch"]["rss_growth"], 1)
    return out


# -- the whole run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    """What :func:`run_benchmarks` measures and how long it samples."""

    grid: tuple[Size, ...] = GRID
    repeats: int = 7
    sample_seconds: float = 0.05
    threads: int = 1
    fd_repeats: int = 3
    sweep_cases: int = SWEEP_TARGET_CASES
    workers: int = field(default_factory=available_cores)
    memory: bool = True
    smoke: bool = False

    @classmethod
    def smoke_test(cls, **changes: Any) -> BenchConfig:
        """A few seconds in all: tiny sizes and networks, 2 repeats, 20 sweep cases."""
        base = cls(grid=SMOKE_GRID, repeats=2, sample_seconds=0.002, fd_repeats=1, sweep_cases=20, smoke=True)
        return replace(base, **changes)


def run_benchmarks(config: BenchConfig, *, log: Callable[[str], None] = lambda _: None) -> dict:
    """Every measurement of the module docstring; returns the JSON-ready result with target verdicts."""
    import torch

    started = time.perf_counter()
    result: dict[str, Any] = {"meta": _meta(config, torch.__version__)}
    with thread_limit(config.threads):
        result["grid"] = []
        for size in config.grid:
            log(f"fwd+bwd {size} …")
            row = measure_grid_size(
                size, repeats=config.repeats, sample_seconds=config.sample_seconds, with_matmul=size == config.grid[-1]
            )
            log(f"  refbp {row['seconds']['refbp'] * 1e3:.3f} ms, torch {row['seconds']['torch'] * 1e3:.3f} ms")
            result["grid"].append(row)
        result["fd"] = []
        for spec in fd_specs(config.smoke):
            log(f"finite differences vs gradcheck: {describe_spec(spec)} …")
            result["fd"].append(
                measure_fd(
                    spec, repeats=config.fd_repeats, fast_repeats=config.repeats, sample_seconds=config.sample_seconds
                )
            )
        log("conv2d fwd+bwd …")
        result["conv"] = measure_conv(smoke=config.smoke, repeats=config.repeats, sample_seconds=config.sample_seconds)
    log(f"sweep of {config.sweep_cases} cases, serial and on {config.workers} processes …")
    result["sweep"] = measure_sweep(config.sweep_cases, config.workers)
    if config.memory:
        log(f"peak memory at {config.grid[-1]} …")
        result["memory"] = measure_memory(config.grid[-1])
    result["targets"] = verdicts(result)
    result["meta"]["wall_seconds"] = time.perf_counter() - started
    return result


def _meta(config: BenchConfig, torch_version: str) -> dict:
    from threadpoolctl import threadpool_info

    blas = next((info for info in threadpool_info() if info.get("user_api") == "blas"), {})
    return {
        "title": "refbp benchmarks" + (" (smoke)" if config.smoke else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "config": {key: value for key, value in asdict(config).items()},
        "cores": available_cores(),
        "threads": config.threads,
        "machine": f"{platform.machine()}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_version,
        "blas": f"{blas.get('internal_api', '?')} {blas.get('version', '')}".strip(),
    }


# -- target verdicts ----------------------------------------------------------------------------


def _top(spots: list[dict] | None) -> str:
    if not spots:
        return ""
    return "profile: " + "; ".join(f"{s['function']} {s['share']:.0%}" for s in spots[:3])


def _verdict(name: str, goal: str, measured: str, met: bool, missed_by: str, why: str) -> dict:
    return {
        "target": name,
        "goal": goal,
        "measured": measured,
        "met": met,
        "missed_by": "" if met else missed_by,
        "why": "" if met else why,
    }


def verdicts(result: Mapping) -> list[dict]:
    """One row per target of the issue: goal, measured value, met or missed by how much and why."""
    rows = []
    for row in result["grid"]:
        size = f"({row['batch']}, {row['width']}, {row['depth']})"
        ratio = row["ratio"]
        why = f"refbp {row['seconds']['refbp'] * 1e3:.3g} ms vs torch {row['seconds']['torch'] * 1e3:.3g} ms"
        tanh = row.get("tanh_seconds")
        if tanh:
            why += (
                f"; of refbp's time, the forward tanh alone takes {tanh['numpy'] * 1e3:.3g} ms (NumPy) where "
                f"torch.tanh takes {tanh['torch'] * 1e3:.3g} ms"
            )
        why += f". {_top(row.get('hotspots'))}"
        rows.append(
            _verdict(
                f"fwd+bwd {size} vs torch",
                f"≤ {RATIO_TARGET:.1f}×",
                f"{ratio:.2f}×",
                ratio <= RATIO_TARGET,
                f"{ratio / RATIO_TARGET - 1:.1%} slower",
                why,
            )
        )
    largest = result["grid"][-1]
    if "matmul_share" in largest:
        share = largest["matmul_share"]
        rows.append(
            _verdict(
                "GFLOP/s at the largest size vs matmul",
                f"≥ {MATMUL_SHARE_TARGET:.0%}",
                f"{share:.0%} ({largest['gflops']['refbp']:.1f} of {largest['gflops']['matmul']:.1f} GFLOP/s)",
                share >= MATMUL_SHARE_TARGET,
                f"{MATMUL_SHARE_TARGET - share:.0%} points",
                "elementwise work and memory traffic between the matmuls; " + _top(largest.get("hotspots")),
            )
        )
    for row in result["fd"]:
        big = row["parameters"] >= 10_000
        label = f"{row['parameters']:,} parameters" + ("" if big else " (smoke network, < 10k)")
        for key, target, mode in (
            ("speedup_full", FD_SLOW_TARGET, "full"),
            ("speedup_directional", FD_FAST_TARGET, "directional"),
        ):
            speedup = row[key]
            against = "gradcheck slow mode" if mode == "full" else "gradcheck fast mode"
            measured = f"{speedup:.1f}×"
            why = _top(row.get(f"hotspots_{mode}"))
            oracle_speedup = row.get("speedup_directional_oracle")
            if mode == "directional" and oracle_speedup is not None:
                # The target compares equal work (gradcheck's one direction per tensor); the oracle draws more.
                measured += f" ({GRADCHECK_DIRECTIONS}/tensor as gradcheck; {DIRECTIONS}/tensor: {oracle_speedup:.1f}×)"
                why = _why_directional(row, "_directional")
            rows.append(
                _verdict(
                    f"FD {mode} vs {against}, {label}",
                    f"≥ {target:.0f}× faster",
                    measured,
                    speedup >= target,
                    f"{1 - speedup / target:.0%} short",
                    why,
                )
            )
    sweep = result["sweep"]
    per_1000 = sweep["seconds_per_1000"]
    scaled = "" if sweep["cases"] == SWEEP_TARGET_CASES else f" (scaled from {sweep['cases']} cases)"
    rows.append(
        _verdict(
            f"{SWEEP_TARGET_CASES:,}-case three-way sweep",
            f"≤ {SWEEP_TARGET_SECONDS:.0f} s",
            f"{per_1000:.1f} s{scaled}",
            per_1000 <= SWEEP_TARGET_SECONDS,
            f"{per_1000 - SWEEP_TARGET_SECONDS:.1f} s",
            _top(sweep.get("hotspots")),
        )
    )
    if "conv" in result:
        rows.append(conv_verdict(result["conv"]))
    return rows


# -- report ---------------------------------------------------------------------------------------


def grid_table_text(rows: list[dict]) -> str:
    """Plain-text table of grid rows: refbp, textbook and torch times with the ratios side by side."""
    lines = [
        f"{'(batch, width, depth)':>22} {'refbp ms':>10} {'textbook ms':>12} {'torch ms':>10} {'torch θ-only':>13} "
        f"{'refbp/torch':>12} {'textbook/torch':>15} {'refbp GFLOP/s':>14}"
    ]
    for row in rows:
        seconds = row["seconds"]
        size = f"({row['batch']}, {row['width']}, {row['depth']})"
        lines.append(
            f"{size:>22} {seconds['refbp'] * 1e3:>10.3f} {seconds['textbook'] * 1e3:>12.3f} "
            f"{seconds['torch'] * 1e3:>10.3f} {seconds['torch_params_only'] * 1e3:>13.3f} "
            f"{row['ratio']:>11.2f}× {row['ratio_textbook']:>14.2f}× {row['gflops']['refbp']:>14.2f}"
        )
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1e3
    return f"{milliseconds:.3g}" if milliseconds < 100 else f"{milliseconds:,.0f}"


def _mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.1f}"


def _directional_note(rows: list[dict]) -> list[str]:
    """What the directional comparison compares, and by how much the oracle's own directions miss (profiled)."""
    text = (
        f"Directional checks: the target compares equal work, {GRADCHECK_DIRECTIONS} random direction per tensor as "
        f"gradcheck's fast mode draws (refbp's check also covers the input, gradcheck's does not); the oracle's "
        f"directional mode draws {DIRECTIONS} per tensor, timed beside it."
    )
    for r in rows:
        speedup = r.get("speedup_directional_oracle")
        if speedup is not None and speedup < FD_FAST_TARGET:
            why = _why_directional(r, "_directional_oracle")
            text += (
                f" With {DIRECTIONS} per tensor, {r['parameters']:,} parameters: {speedup:.1f}×, "
                f"{1 - speedup / FD_FAST_TARGET:.0%} short of {FD_FAST_TARGET:.0f}×"
                + (f" ({why})" if why else "")
                + "."
            )
    return [text, ""]


def _why_directional(row: Mapping, suffix: str) -> str:
    """``"time: …; profile: …"`` from the phase shares and hot spots of a directional check ("" without them)."""
    parts = []
    phases = row.get("phases" + suffix)
    if phases:
        ranked = sorted(phases.items(), key=lambda item: item[1], reverse=True)
        parts.append("time: " + ", ".join(f"{label} {share:.0%}" for label, share in ranked))
    if row.get("hotspots" + suffix):
        parts.append(_top(row["hotspots" + suffix]))
    return "; ".join(parts)


def render_markdown(result: Mapping) -> str:
    """The report: targets, then every table, then how it was measured."""
    meta = result["meta"]
    met = sum(t["met"] for t in result["targets"])
    lines = [
        f"# {meta['title']}",
        "",
        f"{meta['date']} · {meta['cores']} cores, {meta['threads']} thread(s) for NumPy's BLAS and torch · "
        f"{meta['machine']} · Python {meta['python']}, NumPy {meta['numpy']} ({meta['blas']}), torch {meta['torch']}"
        f" · {meta.get('wall_seconds', 0):.0f} s in all",
        "",
        f"**{met} of {len(result['targets'])} targets met.** Ratios are medians of interleaved samples "
        "(refbp time / torch time: below 1 means refbp is faster).",
        "",
        "## Targets",
        "",
        md_table(
            ["target", "goal", "measured", "verdict"],
            [
                [
                    t["target"],
                    t["goal"],
                    t["measured"],
                    "met" if t["met"] else f"**missed** by {t['missed_by']}: {t['why']}".strip(),
                ]
                for t in result["targets"]
            ],
        ),
        "",
        "## refbp fwd+bwd vs torch eager autograd",
        "",
        "![refbp / torch per grid size](benchmarks.svg)",
        "",
        md_table(
            [
                "(batch, width, depth)",
                "parameters",
                "refbp ms",
                "textbook ms",
                "torch ms",
                "torch θ-only ms",
                "refbp / torch",
                "refbp / torch θ-only",
                "refbp GFLOP/s",
                "torch GFLOP/s",
            ],
            [
                [
                    f"({r['batch']}, {r['width']}, {r['depth']})",
                    f"{r['parameters']:,}",
                    _ms(r["seconds"]["refbp"]),
                    _ms(r["seconds"]["textbook"]),
                    _ms(r["seconds"]["torch"]),
                    _ms(r["seconds"]["torch_params_only"]),
                    f"{r['ratio']:.2f}×",
                    f"{r['ratio_params_only']:.2f}×",
                    f"{r['gflops']['refbp']:.2f}",
                    f"{r['gflops']['torch']:.2f}",
                ]
                for r in result["grid"]
            ],
            right=range(1, 10),
        ),
        "",
    ]
    largest = result["grid"][-1]
    if "matmul" in largest["gflops"]:
        lines += [
            f"Plain float64 matmul ({largest['batch']}×{largest['width']} @ {largest['width']}×{largest['width']}) "
            f"in the same run: {largest['gflops']['matmul']:.1f} GFLOP/s; refbp reaches "
            f"{largest['matmul_share']:.0%} of it, "
            f"torch {largest['gflops']['torch'] / largest['gflops']['matmul']:.0%}.",
            "",
        ]
    lines += [
        "## Finite differences vs torch.autograd.gradcheck",
        "",
        md_table(
            [
                "network",
                "parameters",
                "FD full s",
                "gradcheck slow s",
                "speed-up",
                f"FD directional ({GRADCHECK_DIRECTIONS}/tensor) s",
                "gradcheck fast s",
                "speed-up",
                f"FD directional ({DIRECTIONS}/tensor) s",
                "speed-up",
                "all passed",
            ],
            [
                [
                    r["network"],
                    f"{r['parameters']:,}",
                    f"{r['seconds']['fd_full']:.3g}",
                    f"{r['seconds']['gradcheck_slow']:.3g}",
                    f"{r['speedup_full']:.1f}×",
                    f"{r['seconds']['fd_directional']:.3g}",
                    f"{r['seconds']['gradcheck_fast']:.3g}",
                    f"{r['speedup_directional']:.1f}×",
                    f"{r['seconds'].get('fd_directional_oracle', math.nan):.3g}",
                    f"{r.get('speedup_directional_oracle', math.nan):.1f}×",
                    ", ".join(k for k, v in r["passed"].items() if not v) or "yes",
                ]
                for r in result["fd"]
            ],
            right=range(1, 10),
        ),
        "",
        *_directional_note(result["fd"]),
    ]
    sweep = result["sweep"]
    lines += [
        "## Three-way sweep throughput",
        "",
        md_table(
            ["run", "cases", "wall s", "cases / s", "passed"],
            [
                [
                    "serial, this process",
                    f"{sweep['serial']['checked']:,}",
                    f"{sweep['serial']['seconds']:.1f}",
                    f"{sweep['serial']['cases_per_second']:.0f}",
                    f"{sweep['serial']['passed']:,}",
                ],
                [
                    f"{sweep['parallel']['workers']} fresh processes (start-up included)",
                    f"{sweep['parallel']['checked']:,}",
                    f"{sweep['parallel']['seconds']:.1f}",
                    f"{sweep['parallel']['cases_per_second']:.0f}",
                    f"{sweep['parallel']['passed']:,}",
                ],
            ],
            right=range(1, 5),
        ),
        "",
    ]
    memory = result.get("memory")
    if memory:
        refbp, torch_ = memory["refbp"], memory["torch"]
        lines += [
            f"## Peak memory of one fwd+bwd at ({memory['batch']}, {memory['width']}, {memory['depth']})",
            "",
            md_table(
                ["framework", "RSS growth during the pass MiB", "tracemalloc peak MiB"],
                [
                    ["refbp", _mib(refbp["rss_growth"]), _mib(refbp["tracemalloc_peak"])],
                    ["torch", _mib(torch_["rss_growth"]), "— (not traced)"],
                ],
                right=(1, 2),
            ),
            "",
            f"refbp / torch: {memory['ratio']:.2f}×. refbp returns every z, a, δ and ∂L/∂a as well as the "
            "gradients; torch keeps only what its backward needs and frees it as it goes.",
            "",
        ]
    lines += [
        "## How this was measured",
        "",
        "- Grid networks: `depth − 1` hidden tanh layers of `width` units on `width` inputs, softmax over "
        f"{CLASSES} classes, cross-entropy (mean, integer labels), float64, `in_out`; data from `oracle.cases.Case`.",
        "- torch: eager autograd, `loss.backward()` from leaves with `requires_grad` and no `retain_grad`; "
        "`torch` also makes the input a leaf (refbp returns ∂L/∂x), `torch θ-only` does not.",
        "- FLOPs: `6·N·n_in·n_out` per layer (matmuls only). Samples interleaved, medians, GC paused while timing.",
        "- FD full: refbp's gradients + `fd_gradients` of every parameter entry + comparison (slow pair timed one "
        "call a sample). FD directional: refbp's gradients of every parameter tensor and of the input projected on "
        f"random directions ({GRADCHECK_DIRECTIONS} per tensor, as gradcheck's fast mode, for the target; "
        f"{DIRECTIONS} per tensor, as the oracle's directional mode, beside it; uniform entries on [−1, 1), one draw), "
        "`fd_directional_many` (one stacked forward pass) + comparison, with per-entry differences of a tensor "
        "that disagrees; gradcheck: default eps and tolerances, parameters as its inputs, one direction per "
        "tensor in fast mode. The directional checks and gradcheck's fast mode are timed on their own, "
        "interleaved, in samples of at least the grid's sample time.",
        "- Sweep: `oracle.sweep.run_sweep` (refbp, torch twin, full FD; no shrinking); the pool runs shards in "
        "fresh (spawned) processes, one thread each.",
        "- Memory: each framework in a fresh process; RSS high-water mark (`VmHWM`, reset through "
        "`/proc/self/clear_refs` just before the pass) minus the RSS before it.",
        "",
    ]
    return "\n".join(lines)


def render_svg(result: Mapping) -> str:
    """Bars of refbp and torch time per grid size (log scale) with the ratio on top; a hand-written SVG."""
    rows = result["grid"]
    width, height, left, bottom, top = 640, 300, 60, 50, 40
    plot_w, plot_h = width - left - 20, height - top - bottom
    times = [t for r in rows for t in (r["seconds"]["refbp"], r["seconds"]["torch"])]
    low = math.floor(math.log10(min(times)))
    high = math.ceil(math.log10(max(times)))
    high = max(high, low + 1)

    def y(seconds: float) -> float:
        return top + plot_h * (1 - (math.log10(seconds) - low) / (high - low))

    group = plot_w / len(rows)
    bar = group * 0.3
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="11" viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="13" font-weight="bold">fwd+bwd time per call (log scale); '
        "label: refbp / torch</text>",
    ]
    for exponent in range(low, high + 1):
        ypos = y(10.0**exponent)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{ypos:.1f}" y2="{ypos:.1f}" stroke="#ddd"/>')
        tick = escape(_seconds_label(exponent))
        parts.append(f'<text x="{left - 6}" y="{ypos + 4:.1f}" text-anchor="end">{tick}</text>')
    for index, row in enumerate(rows):
        x0 = left + index * group + group * 0.2
        for offset, (name, colour) in enumerate((("refbp", "#1f77b4"), ("torch", "#ff7f0e"))):
            ytop = y(row["seconds"][name])
            parts.append(
                f'<rect x="{x0 + offset * bar:.1f}" y="{ytop:.1f}" width="{bar:.1f}" '
                f'height="{top + plot_h - ytop:.1f}" fill="{colour}"><title>{name}: '
                f"{row['seconds'][name] * 1e3:.4g} ms</title></rect>"
            )
        ratio_y = y(max(row["seconds"]["refbp"], row["seconds"]["torch"])) - 5
        colour = "#2a7" if row["ratio"] <= RATIO_TARGET else "#c33"
        parts.append(
            f'<text x="{x0 + bar:.1f}" y="{ratio_y:.1f}" text-anchor="middle" fill="{colour}" '
            f'font-weight="bold">{row["ratio"]:.2f}×</text>'
        )
        label = f"({row['batch']}, {row['width']}, {row['depth']})"
        parts.append(f'<text x="{x0 + bar:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{escape(label)}</text>')
    parts += [
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#333"/>',
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#333"/>',
        f'<text x="{left + plot_w / 2}" y="{height - 12}" text-anchor="middle">(batch, width, depth)</text>',
        f'<rect x="{left + plot_w - 150}" y="{top - 14}" width="10" height="10" fill="#1f77b4"/>',
        f'<text x="{left + plot_w - 136}" y="{top - 5}">refbp</text>',
        f'<rect x="{left + plot_w - 90}" y="{top - 14}" width="10" height="10" fill="#ff7f0e"/>',
        f'<text x="{left + plot_w - 76}" y="{top - 5}">torch</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _seconds_label(exponent: int) -> str:
    seconds = 10.0**exponent
    if seconds >= 1:
        return f"{seconds:g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:g} ms"
    return f"{seconds * 1e6:g} µs"


def write_report(out_dir: Path | str, result: Mapping) -> dict[str, Path]:
    """``benchmarks.md``, ``benchmarks.svg`` and ``benchmarks.json`` (raw numbers) in ``out_dir``, atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / f"benchmarks.{kind}" for kind in REPORT_KINDS}
    write_atomically(
        {
            paths["md"]: render_markdown(result),
            paths["svg"]: render_svg(result),
            paths["json"]: json.dumps(result, indent=2, allow_nan=False, ensure_ascii=False) + "\n",
        }
    )
    return paths
