"""Long ``after_steps`` runs: how fast refbp trains a 2-2-2 network, in both worked-example forms.

    python benchmarks/training.py                      # 10,000 and 100,000 steps, best of 3
    python benchmarks/training.py --steps 10000 --repeats 5 --validated

What is timed, for each number of steps:

``network, lean``     :class:`refbp.train.Trainer` (the loop behind ``fit`` and ``after_steps``)
                      on the 2-2-2 sigmoid network of the worked examples, plain gradient descent;
``network, adam``     the same with adam (the rule with the most operations);
``network, example``  refbp's whole trajectory of a ``[network]`` worked example claiming the loss
                      after that many steps (the lean loop plus the full passes at the claimed steps);
``graph, example``    the same network written as a ``[graph]`` example (scalar nodes), refbp's
                      trajectory: the expression evaluator's gradients and the in-place update rule;
``network, validated`` (with ``--validated``) one :func:`refbp.network.backprop` and one
                      :class:`worked.optimizers.Optimizer` step per step, the path before the lean loop.

Both wall-clock and process CPU seconds are printed (best of ``--repeats``): on a machine that
other jobs share, the CPU time is the one to compare.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

from refbp.network import backprop
from refbp.params import load_parameters
from refbp.spec import NetworkSpec
from refbp.train import Trainer
from worked.evaluate import needed_steps, refbp_trajectory
from worked.example_file import parse_example
from worked.graph_check import refbp_graph_trajectory
from worked.optimizers import Optimizer, optimizer_spec

NETWORK = {
    "inputs": 2,
    "layout": "in_out",
    "layers": [{"units": 2, "activation": "sigmoid", "bias": "shared"}] * 2,
    "loss": {"kind": "half_sse", "reduction": "sum"},
}
PARAMETERS = {"W1": [[0.15, 0.25], [0.20, 0.30]], "b1": 0.35, "W2": [[0.40, 0.50], [0.45, 0.55]], "b2": 0.60}
X, T = np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])

NETWORK_EXAMPLE = """
title = "2-2-2, {steps} steps"
learning_rate = 0.5
[network]
inputs = 2
layers = [
  {{ units = 2, activation = "sigmoid", bias = "shared" }},
  {{ units = 2, activation = "sigmoid", bias = "shared" }},
]
loss = {{ kind = "half_sse", reduction = "sum" }}
[parameters]
W1 = [[0.15, 0.25], [0.20, 0.30]]
b1 = 0.35
W2 = [[0.40, 0.50], [0.45, 0.55]]
b2 = 0.60
[data]
x = [0.05, 0.10]
t = [0.01, 0.99]
[claims]
loss = "0.2984"
[after_steps.{steps}]
loss = "0.0000"
"""

GRAPH_EXAMPLE = """
title = "2-2-2 as a graph, {steps} steps"
learning_rate = 0.5
[graph]
x1 = 0.05
x2 = 0.10
t1 = 0.01
t2 = 0.99
w1 = 0.15
w2 = 0.20
w3 = 0.25
w4 = 0.30
w5 = 0.40
w6 = 0.45
w7 = 0.50
w8 = 0.55
b1 = 0.35
b2 = 0.60
h1 = "sigmoid(w1 * x1 + w2 * x2 + b1)"
h2 = "sigmoid(w3 * x1 + w4 * x2 + b1)"
o1 = "sigmoid(w5 * h1 + w6 * h2 + b2)"
o2 = "sigmoid(w7 * h1 + w8 * h2 + b2)"
E = "0.5 * (t1 - o1)**2 + 0.5 * (t2 - o2)**2"
[graph.train]
loss = "E"
parameters = ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "b1", "b2"]
[claims]
E = "0.2984"
[after_steps.{steps}]
E = "0.0000"
"""


def best_of(repeats: int, run: Callable[[], object]) -> tuple[float, float]:
    """The smallest wall-clock and CPU seconds of ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def lean(spec: NetworkSpec, steps: int, kind: str) -> Callable[[], object]:
    params = load_parameters(spec, PARAMETERS)
    return lambda: Trainer(spec, params, X, T, lr=0.5, optimizer=kind).run(steps)


def validated(spec: NetworkSpec, steps: int) -> Callable[[], object]:
    def run() -> None:
        params = load_parameters(spec, PARAMETERS)
        optimizer = Optimizer(optimizer_spec("sgd"), 0.5)
        for _ in range(steps):
            params = optimizer.step(params, backprop(spec, params, X, T)[1].by_parameter())

    return run


def network_example(steps: int) -> Callable[[], object]:
    example = parse_example(NETWORK_EXAMPLE.format(steps=steps), "network.toml")
    part = example.parts[0]
    kept, claimed = needed_steps(part.claims, True)
    return lambda: refbp_trajectory(example, part, kept, claimed)


def graph_example(steps: int) -> Callable[[], object]:
    example = parse_example(GRAPH_EXAMPLE.format(steps=steps), "graph.toml")
    part = example.parts[0]
    kept, _ = needed_steps(part.claims, True)
    return lambda: refbp_graph_trajectory(example, part, kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10000,100000", help="numbers of steps, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each, the best is shown (default 3)")
    parser.add_argument("--validated", action="store_true", help="also time the per-step validated path")
    parser.add_argument("--no-graph", action="store_true", help="leave out the graph form (the slowest)")
    args = parser.parse_args()
    spec = NetworkSpec.from_dict(NETWORK)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"{'what':<20} {'steps':>8} {'wall s':>8} {'cpu s':>8} {'µs/step (cpu)':>14}")
    for steps in (int(s) for s in args.steps.split(",")):
        cases: list[tuple[str, Callable[[], object]]] = [
            ("network, lean", lean(spec, steps, "sgd")),
            ("network, adam", lean(spec, steps, "adam")),
            ("network, example", network_example(steps)),
        ]
        if not args.no_graph:
            cases.append(("graph, example", graph_example(steps)))
        if args.validated:
            cases.append(("network, validated", validated(spec, steps)))
        for name, run in cases:
            wall, cpu = best_of(args.repeats, run)
            print(f"{name:<20} {steps:>8,} {wall:>8.3f} {cpu:>8.3f} {cpu / steps * 1e6:>14.1f}", flush=True)


if __name__ == "__main__":
    main()
