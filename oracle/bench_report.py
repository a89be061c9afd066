"""The report of ``refbp bench``: the terminal's grid table and ``benchmarks.md`` / ``.svg`` / ``.json``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from oracle.bench_blas import blas_lines
from oracle.bench_fd import FD_FAST_TARGET, GRADCHECK_DIRECTIONS, why_directional
from oracle.bench_grid import CLASSES, GEMM_BOUND_FLOP, GEMM_SLACK, RATIO_TARGET
from oracle.bench_svg import render_svg
from oracle.check import DIRECTIONS
from oracle.report_markdown import md_table
from refbp.output_paths import write_atomically

#: The files :func:`write_report` writes, ``benchmarks.{kind}``.
REPORT_KINDS = ("md", "svg", "json")


def grid_table_text(rows: list[dict]) -> str:
    """Plain-text table of grid rows: refbp and torch times, both GEMM ceilings and the ratios side by side."""
    lines = [
        f"{'(batch, width, depth)':>22} {'refbp ms':>9} {'textbook ms':>11} {'torch ms':>9} {'refbp/torch':>11} "
        f"{'GEMM GFLOP/s NumPy':>18} {'torch':>6} {'NumPy/torch':>11} {'regime':>18} {'target':>7}  verdict"
    ]
    for row in rows:
        seconds, gemm = row["seconds"], row["gemm"]
        size = f"({row['batch']}, {row['width']}, {row['depth']})"
        lines.append(
            f"{size:>22} {seconds['refbp'] * 1e3:>9.3f} {seconds['textbook'] * 1e3:>11.3f} "
            f"{seconds['torch'] * 1e3:>9.3f} {row['ratio']:>10.2f}× "
            f"{gemm['gflops']['numpy']:>18.2f} {gemm['gflops']['torch']:>6.2f} {gemm['ratio']:>10.2f}× "
            f"{row['regime']:>18} {'≤' + format(row['target'], '.2f') + '×':>7}  {'met' if row['met'] else 'MISSED'}"
        )
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1e3
    return f"{milliseconds:.3g}" if milliseconds < 100 else f"{milliseconds:,.0f}"


def _load(meta: Mapping, when: str) -> str:
    values = meta.get(f"load_average_{when}") or []
    return ", ".join(f"{value:g}" for value in values) or "unknown"


def _mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.1f}"


def directional_note(rows: list[dict]) -> list[str]:
    """What the directional comparison compares, and by how much the oracle's own directions miss (profiled)."""
    text = (
        f"Directional checks: the target compares equal work, {GRADCHECK_DIRECTIONS} random direction per tensor as "
        f"gradcheck's fast mode draws (refbp's check also covers the input, gradcheck's does not); the oracle's "
        f"directional mode draws {DIRECTIONS} per tensor, timed beside it."
    )
    for r in rows:
        speedup = r.get("speedup_directional_oracle")
        if speedup is not None and speedup < FD_FAST_TARGET:
            why = why_directional(r, "_directional_oracle")
            text += (
                f" With {DIRECTIONS} per tensor, {r['parameters']:,} parameters: {speedup:.1f}×, "
                f"{1 - speedup / FD_FAST_TARGET:.0%} short of {FD_FAST_TARGET:.0f}×"
                + (f" ({why})" if why else "")
                + "."
            )
    return [text, ""]


def render_markdown(result: Mapping) -> str:
    """The report: targets, then every table, then how it was measured."""
    meta = result["meta"]
    met = sum(t["met"] for t in result["targets"])
    lines = [
        f"# {meta['title']}",
        "",
        f"{meta['date']} · {meta['threads']} thread(s) for NumPy's BLAS and torch alike · Python {meta['python']}"
        f" · {meta.get('wall_seconds', 0):.0f} s in all",
        "",
        *(f"- {line}" for line in blas_lines(meta["blas"])),
        f"- load average (1, 5, 15 min, every process on the machine): {_load(meta, 'before')} before, "
        f"{_load(meta, 'after')} after",
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
                "GEMM GFLOP/s NumPy",
                "GEMM GFLOP/s torch",
                "NumPy / torch GEMM",
                "regime",
                "target",
                "verdict",
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
                    f"{r['gemm']['gflops']['numpy']:.2f}",
                    f"{r['gemm']['gflops']['torch']:.2f}",
                    f"{r['gemm']['ratio']:.2f}×",
                    r["regime"],
                    f"≤ {r['target']:.2f}×",
                    "met" if r["met"] else "**missed**",
                ]
                for r in result["grid"]
            ],
            right=range(1, 11),
        ),
        "",
        "GEMM ceilings: the three GEMMs of a hidden layer's fwd+bwd "
        f"({', '.join(result['grid'][-1]['gemm']['shapes'])} at the largest size), float64, into preallocated "
        "outputs, with NumPy's BLAS and with torch's, timed in the same interleaved run. "
        f"GEMM-bound: at least {GEMM_BOUND_FLOP:.0e} matmul FLOP per fwd+bwd; the target is "
        f"then refbp/torch ≤ {GEMM_SLACK:.2f} × NumPy/torch GEMM, elsewhere ≤ {RATIO_TARGET:.1f}×. refbp reaches "
        f"{result['grid'][-1]['matmul_share']:.0%} of NumPy's GEMM ceiling at the largest size.",
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
        *directional_note(result["fd"]),
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
    lines += _recurrent_section(result.get("recurrent", []))
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


def _recurrent_section(entries: list[dict]) -> list[str]:
    """The LSTM and RNN table: refbp, the torch twin and torch's fused module side by side."""
    if not entries:
        return []
    shape = entries[0]["shape"]
    return [
        f"## Recurrent layers: fwd+bwd at N={shape['N']}, T={shape['T']}, D={shape['D']}, H={shape['H']}, float64",
        "",
        md_table(
            ["layer", "refbp ms", "torch twin ms", "torch.nn fused ms", "refbp / twin", "refbp / fused", "agree"],
            [
                [
                    e["kind"].upper(),
                    _ms(e["seconds"]["refbp"]),
                    _ms(e["seconds"]["twin"]),
                    _ms(e["seconds"]["torch_fused"]),
                    f"{e['ratio']:.2f}×",
                    f"{e['ratio_fused']:.2f}×",
                    "yes" if e["agree"] else "**no**",
                ]
                for e in entries
            ],
            right=range(1, 6),
        ),
        "",
        "The twin (`oracle.twin.recurrent`) loops over time in torch ops with autograd, as refbp loops in NumPy; "
        "`torch.nn.LSTM`/`nn.RNN` run the loop in C++ and are shown for reference. Same weights, `dout` and threads.",
        "",
    ]
