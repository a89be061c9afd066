"""The machine and both sides' BLAS, as ``refbp bench`` reports them beside every ratio.

A ratio of refbp to torch at GEMM-bound sizes is mostly a ratio of two BLAS libraries: NumPy's
(found with ``threadpoolctl``: OpenBLAS, MKL or BLIS, its kernel architecture and threads)
and torch's (from ``torch.__config__.show()`` and ``parallel_info()``: MKL or OpenBLAS, the
CPU capability torch dispatches to, its threads). Read inside
:func:`oracle.bench_measure.thread_limit`, the thread counts are those of the run.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

from oracle.bench_measure import available_cores


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`), or the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_vector_extensions() -> list[str]:
    """The SIMD extensions of the CPU that decide a BLAS kernel (``avx2``, ``avx512f``, ``fma``; Linux only)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [flag for flag in ("avx2", "fma", "avx512f") if flag in flags]


def machine_info() -> dict[str, Any]:
    """CPU model, SIMD extensions, cores this process may use, logical CPUs, OS."""
    return {
        "cpu": cpu_model(),
        "vector_extensions": cpu_vector_extensions(),
        "cores": available_cores(),
        "logical_cpus": os.cpu_count() or 1,
        "system": f"{platform.machine()}, {platform.system()} {platform.release()}",
    }


def numpy_blas() -> dict[str, Any]:
    """NumPy's BLAS from ``threadpoolctl``: library, version, kernel architecture, threads, threading layer."""
    import numpy as np
    from threadpoolctl import threadpool_info

    info = next((entry for entry in threadpool_info() if entry.get("user_api") == "blas"), {})
    return {
        "library": info.get("internal_api", "unknown"),
        "version": info.get("version") or "?",
        "architecture": info.get("architecture") or "?",
        "threads": info.get("num_threads", 0),
        "threading_layer": info.get("threading_layer") or "?",
        "numpy": np.__version__,
    }


def torch_blas() -> dict[str, Any]:
    """torch's BLAS from ``torch.__config__``: library and version, CPU capability, intra-op and BLAS threads."""
    import torch

    config = torch.__config__.show()
    parallel = torch.__config__.parallel_info()
    library = _config_value(config, "BLAS_INFO") or "unknown"
    version = ""
    if library == "mkl":
        found = re.search(r"Math Kernel Library Version ([\d.]+)", config)
        version = found.group(1) if found else ""
    elif library == "open":  # torch's name for OpenBLAS
        library = "openblas"
    mkl_threads = re.search(r"mkl_get_max_threads\(\)\s*:\s*(\d+)", parallel)
    backend = re.search(r"ATen parallel backend:\s*(\S+)", parallel)
    capability = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "?"
    return {
        "library": library,
        "version": version or "?",
        "cpu_capability": capability,
        "threads": torch.get_num_threads(),
        "blas_threads": int(mkl_threads.group(1)) if mkl_threads else torch.get_num_threads(),
        "parallel_backend": backend.group(1) if backend else "?",
        "torch": torch.__version__,
    }


def _config_value(config: str, key: str) -> str:
    """``KEY=value`` from the build settings line of ``torch.__config__.show()`` ("" when absent)."""
    found = re.search(rf"\b{key}=([^,\s]+)", config)
    return found.group(1) if found else ""


def blas_info() -> dict[str, Any]:
    """``{"machine", "numpy", "torch", "same_threads"}``: everything :func:`blas_lines` prints."""
    numpy_side, torch_side = numpy_blas(), torch_blas()
    return {
        "machine": machine_info(),
        "numpy": numpy_side,
        "torch": torch_side,
        "same_threads": numpy_side["threads"] == torch_side["threads"] == torch_side["blas_threads"],
    }


def blas_lines(info: dict[str, Any]) -> list[str]:
    """Three lines: the machine, NumPy's BLAS, torch's BLAS (as printed by ``refbp bench`` and in the report)."""
    machine, numpy_side, torch_side = info["machine"], info["numpy"], info["torch"]
    extensions = ", ".join(machine["vector_extensions"]) or "no AVX2/AVX-512 flags seen"
    return [
        f"machine: {machine['cpu']} ({extensions}), {machine['cores']} cores for this process "
        f"of {machine['logical_cpus']}, {machine['system']}",
        f"NumPy {numpy_side['numpy']} BLAS: {numpy_side['library']} {numpy_side['version']}, kernel "
        f"{numpy_side['architecture']}, {numpy_side['threads']} thread(s) ({numpy_side['threading_layer']})",
        f"torch {torch_side['torch']} BLAS: {torch_side['library']} {torch_side['version']}, CPU capability "
        f"{torch_side['cpu_capability']}, {torch_side['threads']} intra-op thread(s), "
        f"{torch_side['blas_threads']} BLAS thread(s) ({torch_side['parallel_backend']})"
        + ("" if info["same_threads"] else "; NOT the same thread counts as NumPy"),
    ]
