"""Peak memory of one fwd+bwd at the largest grid size in ``refbp bench``, each framework in a fresh process.

The growth of the resident set during the pass (the kernel's RSS high-water mark, reset just
before the pass, minus the RSS before it; Linux only); for refbp also the ``tracemalloc``
peak (NumPy reports its buffers to tracemalloc, torch does not).
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from oracle.bench_grid import Size, grid_spec
from oracle.bench_torch import TorchNet
from oracle.cases import Case
from refbp.network import backprop


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
        code = f"import json; from oracle.bench_memory import memory_probe; print(json.dumps({call}))"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out[framework] = json.loads(done.stdout.strip().splitlines()[-1])
    out["ratio"] = out["refbp"]["rss_growth"] / max(out["torch"]["rss_growth"], 1)
    return out
