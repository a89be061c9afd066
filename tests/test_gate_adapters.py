"""The gate on two third-party-style networks (``tests/gate_adapters``): green on correct code at every seed,
red with the right layer and quantity for three injected bugs each."""

from __future__ import annotations

import pytest
from gate_adapters import layer_library, layer_library_adapter, mutated, textbook_adapter, textbook_network

from oracle.compare import divergence_rank
from oracle.gate import BackpropMismatch, assert_backprop_matches, failing_rows
from refbp.spec import LayerSpec, LossSpec, NetworkSpec

ADAPTERS = {"textbook": textbook_adapter, "layer_library": layer_library_adapter}


@pytest.mark.parametrize("name", ADAPTERS)
def test_correct_code_passes_at_every_seed(name: str) -> None:
    adapter = ADAPTERS[name]
    for seed in range(21):
        record = assert_backprop_matches(adapter.backprop, cases=8, seed=seed)
        assert record["supports"] == adapter.REFBP_SUPPORTS.describe()
        assert not [r for r in record["rows"] if r["status"] == "unsupported"]


# Square layers, so that a missing transpose or a neighbouring layer's array still has the right shape
# and the bug shows in the values, where the gate can say which layer and quantity it spoils.
TEXTBOOK_SPEC = NetworkSpec(
    inputs=3,
    layers=(LayerSpec(3, "sigmoid"), LayerSpec(3, "sigmoid"), LayerSpec(3, "sigmoid")),
    layout="out_in",
    loss=LossSpec("half_sse", reduction="mean"),
)
LIBRARY_SPEC = NetworkSpec(
    inputs=3,
    layers=(LayerSpec(3, "tanh"), LayerSpec(3, "tanh"), LayerSpec(3, "sigmoid")),
    loss=LossSpec("half_sse", reduction="sum"),
)

BUGS = [
    # (library, spec, old line, buggy line, first diverging layer, quantities failing there)
    pytest.param(
        "textbook", "sp = sigmoid_slope(z)", "sp = sigmoid(z)", 2, {"dL/dW", "dL/db"}, id="textbook-activation"
    ),
    pytest.param(
        "textbook",
        "np.dot(self.weights[-l + 1].transpose(), delta)",
        "np.dot(self.weights[-l + 1], delta)",
        2,
        {"dL/dW", "dL/db"},
        id="textbook-transpose",
    ),
    pytest.param(
        "textbook",
        "grad_w[-l] = np.dot(delta, activations[-l - 1].transpose())",
        "grad_w[-l] = np.dot(delta, activations[-l].transpose())",
        2,
        {"dL/dW"},
        id="textbook-off-by-one",
    ),
    pytest.param(
        "layer_library",
        "dZ = dLdy * self.act_fn.grad(Z)",
        "dZ = dLdy * self.act_fn(Z)",
        3,
        {"dL/dW", "dL/db"},
        id="library-activation",
    ),
    pytest.param(
        "layer_library",
        'return dZ @ self.parameters["W"].T',
        'return dZ @ self.parameters["W"]',
        2,
        {"dL/dW", "dL/db"},
        id="library-transpose",
    ),
    pytest.param(
        "layer_library",
        "range(len(self.layers) - 1, -1, -1)",
        "range(len(self.layers) - 1, 0, -1)",
        1,
        {"dL/dW", "dL/db"},
        id="library-off-by-one",
    ),
]


def _buggy(name: str, old: str, new: str):
    library, adapter = {"textbook": (textbook_network, textbook_adapter)}.get(
        name, (layer_library, layer_library_adapter)
    )
    return adapter.make_backprop(mutated(library, old, new, name=f"{library.__name__}__buggy"))


@pytest.mark.parametrize(("name", "old", "new", "layer", "quantities"), BUGS)
def test_an_injected_bug_is_caught_at_its_layer_and_quantity(name, old, new, layer, quantities) -> None:
    backprop = _buggy(name, old, new)
    spec = TEXTBOOK_SPEC if name == "textbook" else LIBRARY_SPEC
    with pytest.raises(BackpropMismatch) as caught:
        assert_backprop_matches(backprop, spec, cases=5, seed=0, max_shrinks=1)
    record = caught.value.record
    by_case: dict[str, list[dict]] = {}
    for row in failing_rows(record):
        by_case.setdefault(row["case"], []).append(row)
    assert len([c for c in by_case if not c.startswith("shrunk")]) == 5  # every case is red
    for case, rows in by_case.items():
        first = min(rows, key=lambda r: divergence_rank(r["layer"], r["quantity"], spec.depth))
        assert first["layer"] == layer, (case, first)
        assert {r["quantity"] for r in rows if r["layer"] == layer} == quantities, case
        assert not any(r["layer"] > layer for r in rows)  # the layers above agree
    assert f"layer {layer}, " in str(caught.value)


@pytest.mark.parametrize(("name", "old", "new", "layer", "quantities"), BUGS)
def test_an_injected_bug_turns_the_random_gate_red(name, old, new, layer, quantities) -> None:
    """On the random networks of the declaration (three layers, where every bug can show)."""
    with pytest.raises(BackpropMismatch):
        assert_backprop_matches(_buggy(name, old, new), cases=10, seed=0, min_depth=3, max_shrinks=0, fd="off")


def test_the_readme_declarations_are_the_adapters() -> None:
    """The README's gate section shows these two declarations: they must be the ones the tests run."""
    import re
    import tomllib
    from pathlib import Path

    from oracle.supports import Supports

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    python = re.search(r"```python\nREFBP_SUPPORTS = (Supports\(.*?\n\))\n```", readme, re.S).group(1)
    assert eval(python, {"Supports": Supports}) == textbook_adapter.REFBP_SUPPORTS
    toml = re.search(r"```toml\n# supports.toml[^\n]*\n(.*?)```", readme, re.S).group(1)
    declared = Supports.from_mapping(tomllib.loads(toml))
    assert declared == Supports(
        **{
            **layer_library_adapter.REFBP_SUPPORTS.to_dict(),
            "dtypes": declared.dtypes,
            "max_depth": declared.max_depth,
            "max_width": declared.max_width,
        }
    )
