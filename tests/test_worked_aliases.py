"""References and aliases: which number a claim is about."""

from __future__ import annotations

import pytest

from refbp.errors import InputError
from refbp.spec import LayerSpec, LossSpec, NetworkSpec
from worked.aliases import Entry, check_alias, resolve

IN_OUT = NetworkSpec(inputs=3, layers=(LayerSpec(2, "sigmoid", "shared"), LayerSpec(2, "sigmoid", "shared")))
OUT_IN = NetworkSpec(
    inputs=2, layers=(LayerSpec(2, "relu"), LayerSpec(1, "identity", "none")), layout="out_in", loss=LossSpec()
)
SOFTMAX = NetworkSpec(
    inputs=2, layers=(LayerSpec(3, "softmax"),), loss=LossSpec("softmax_cross_entropy", "mean", "dense")
)
NOTES = {"w7": "W2[0,0]", "h1": "a1[0]", "E": "loss", "o": "a2"}
CASE2 = {"z2": "a1", "o": "a2"}  # the notes' z2 is the ReLU output, refbp's a1


@pytest.mark.parametrize(
    ("spec", "batch", "reference", "entry"),
    [
        (IN_OUT, 1, "W2[0,1]", Entry("W", 2, (0, 1))),
        (IN_OUT, 1, "b1", Entry("b", 1, (0,))),
        (IN_OUT, 1, "a1[1]", Entry("a", 1, (0, 1))),  # single example: the batch index is implied
        (IN_OUT, 2, "a1[1,0]", Entry("a", 1, (1, 0))),
        (IN_OUT, 1, "x[2]", Entry("x", 0, (0, 2))),
        (IN_OUT, 1, "a0[2]", Entry("x", 0, (0, 2))),
        (IN_OUT, 1, "loss", Entry("loss", 2, ())),
        (IN_OUT, 1, "penalty", Entry("penalty", 2, ())),
        (IN_OUT, 1, "delta1[0, 1]", Entry("delta", 1, (0, 1))),
        (IN_OUT, 1, "dL/dW1[2,1]", Entry("dL/dW", 1, (2, 1))),
        (IN_OUT, 1, "dE/dw7", Entry("dL/dW", 2, (0, 0))),
        (IN_OUT, 1, "∂E/∂w7", Entry("dL/dW", 2, (0, 0))),
        (IN_OUT, 1, "dE/dh1", Entry("dL/da", 1, (0, 0))),
        (IN_OUT, 1, "dJ/dz2[1]", Entry("delta", 2, (0, 1))),
        (IN_OUT, 1, "dℓ/dx[1]", Entry("dL/dx", 0, (0, 1))),
        (IN_OUT, 1, "dE/db2", Entry("dL/db", 2, (0,))),
        (IN_OUT, 1, "dh1/dz1[0]", Entry("da/dz", 1, (0, 0))),
        (IN_OUT, 1, "da2/dz2[1]", Entry("da/dz", 2, (0, 1))),
        (IN_OUT, 1, "do[1]/dz2", Entry("da/dz", 2, (0, 1))),
        (OUT_IN, 1, "z2[1]", Entry("a", 1, (1, 0))),  # the alias shadows refbp's z2; out_in puts units first
        (OUT_IN, 3, "z2[1,2]", Entry("a", 1, (1, 2))),
        (OUT_IN, 1, "dz2/dz1[0]", Entry("da/dz", 1, (0, 0))),
        (OUT_IN, 1, "W1[1,0]", Entry("W", 1, (1, 0))),
        (OUT_IN, 1, "o", Entry("a", 2, (0, 0))),  # one entry: no index needed
        (OUT_IN, 1, "dE/do", Entry("dL/da", 2, (0, 0))),
    ],
)
def test_resolve(spec: NetworkSpec, batch: int, reference: str, entry: Entry) -> None:
    assert resolve(spec, batch, reference, NOTES if spec is IN_OUT else CASE2) == entry


@pytest.mark.parametrize(
    ("spec", "reference", "expected"),
    [
        (IN_OUT, "q1[0]", "a known quantity"),
        (IN_OUT, "W3[0,0]", "a layer between 1 and 2"),
        (IN_OUT, "W2[2,0]", "an index into shape (2, 2)"),
        (IN_OUT, "W2[0]", "an index into shape (2, 2)"),
        (IN_OUT, "W2", "an index into an array of shape (2, 2)"),
        (IN_OUT, "W2[a,b]", "an index of non-negative integers"),
        (IN_OUT, "h1[0]", "no index after h1"),
        (IN_OUT, "dE/dloss", "a derivative with respect to a parameter, z, a or x"),
        (IN_OUT, "dh1/dW1[0,0]", "the derivative of the loss"),
        (IN_OUT, "da1/dz1", "an index into an array of shape (1, 2)"),
        (IN_OUT, "da1[0]/dz1[1]", "the same entry of a and z"),
        (OUT_IN, "b2", "layer 2 has no bias"),
        (SOFTMAX, "da1/dz1[0,0]", "an elementwise activation"),
    ],
)
def test_resolve_rejects(spec: NetworkSpec, reference: str, expected: str) -> None:
    with pytest.raises(InputError, match="expected") as caught:
        resolve(spec, 1, reference, NOTES if spec is IN_OUT else {})
    assert expected in caught.value.expected
    assert caught.value.got == reference


def test_the_batch_index_is_implied_only_for_a_single_example() -> None:
    with pytest.raises(InputError, match=r"shape \(2, 2\)"):
        resolve(IN_OUT, 2, "a1[1]", {})


@pytest.mark.parametrize(
    ("name", "target", "expected"),
    [
        ("w7", "W2[0,0]", None),
        ("z2", "a1", None),
        ("w8", "W2[0,2]", "an index into shape (2, 2)"),
        ("g", "dE/dW2[0,0]", "a value, not a derivative"),
        ("h[1]", "a1[0]", "an alias name without brackets"),
        ("n", 3, "a reference written as a string"),
    ],
)
def test_check_alias(name: str, target, expected: str | None) -> None:
    if expected is None:
        check_alias(IN_OUT, 1, name, target)
        return
    with pytest.raises(InputError) as caught:
        check_alias(IN_OUT, 1, name, target)
    assert expected in caught.value.expected
