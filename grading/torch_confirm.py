"""Torch-autograd twins of the graded gradients: the grader's NumPy oracle must agree with them.

Each twin takes a check's inputs and returns ``{quantity: array}`` computed by autograd from
the forward formula alone (no hand-written derivative). :func:`confirm` compares them with
the expected values of the checks before anything is graded, so a slip in the oracle
stops the grader instead of failing correct students.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from grading.plan import FunctionCheck
from grading.torch_cnn import twin as cnn_twin
from grading.torch_dlai_rnn import TWINS as DLAI_RNN_TWINS
from grading.torch_nhwc import TWINS as NHWC_TWINS
from grading.torch_rnn import TWINS as RNN_TWINS

Twin = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
"""A twin: the check's inputs → ``{quantity: array}``."""
#: Agreement required between the NumPy oracle and autograd (both float64).
RTOL, ATOL = 1e-9, 1e-12
#: The twin name of whole-network checks (the ``spec`` interface): the torch twin of refbp.
SPEC_TWIN = "spec_backprop"


def _torch():
    import torch

    return torch


def _leaf(array: np.ndarray):
    return _torch().tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def _grads(output, upstream: np.ndarray | None, *leaves) -> list[np.ndarray]:
    """Gradients of ``Σ output·upstream`` (or of the scalar ``output``) with respect to ``leaves``."""
    torch = _torch()
    target = output if upstream is None else (output * torch.tensor(upstream)).sum()
    return [g.detach().numpy() for g in torch.autograd.grad(target, leaves)]


def _affine_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    x, w, b = _leaf(inputs["x"]), _leaf(inputs["w"]), _leaf(inputs["b"])
    dx, dw, db = _grads(x.reshape(x.shape[0], -1) @ w + b, inputs["dout"], x, w, b)
    return {"dx": dx, "dw": dw, "db": db}


def _elementwise(name: str) -> Twin:
    def twin(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = _torch()
        x = _leaf(inputs["x"])
        (dx,) = _grads(getattr(torch, name)(x), inputs["dout"], x)
        return {"dx": dx}

    return twin


def _softmax_loss(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    torch = _torch()
    x = _leaf(inputs["x"])
    loss = torch.nn.functional.cross_entropy(x, torch.tensor(inputs["y"], dtype=torch.long))
    (dx,) = _grads(loss, None, x)
    return {"loss": loss.detach().numpy(), "dx": dx}


def _svm_loss(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    torch = _torch()
    x = _leaf(inputs["x"])
    y = torch.tensor(inputs["y"], dtype=torch.long)
    correct = x.gather(1, y[:, None])
    others = torch.ones_like(x).scatter(1, y[:, None], 0.0)
    loss = (torch.clamp(x - correct + 1.0, min=0.0) * others).sum() / x.shape[0]
    (dx,) = _grads(loss, None, x)
    return {"loss": loss.detach().numpy(), "dx": dx}


def _linear_backward(inputs: Mapping[str, np.ndarray], activation: str | None = None, upstream: str = "dZ"):
    """Deep style: ``dW``, ``db`` carry ``1/m``, ``dA_prev`` does not (autograd of ``Σ out·upstream / m``, times m)."""
    torch = _torch()
    A = _leaf(inputs["A"] if "A" in inputs else inputs["A_prev"])
    W, b = _leaf(inputs["W"]), _leaf(inputs["b"])
    m = A.shape[1]
    out = W @ A + b
    if activation is not None:
        out = torch.relu(out) if activation == "relu" else torch.sigmoid(out)
    dA, dW, db = _grads(out, inputs[upstream] / m, A, W, b)
    return {"dA_prev": dA * m, "dW": dW, "db": db}


def _activation_backward(activation: str) -> Twin:
    def twin(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = _torch()
        Z = _leaf(inputs["Z"])
        (dZ,) = _grads(torch.relu(Z) if activation == "relu" else torch.sigmoid(Z), inputs["dA"], Z)
        return {"dZ": dZ}

    return twin


def _deep_cost(AL, Y):
    torch = _torch()
    return torch.nn.functional.binary_cross_entropy(AL, Y, reduction="sum") / Y.shape[1]


def _compute_cost(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    torch = _torch()
    return {"cost": _deep_cost(torch.tensor(inputs["AL"]), torch.tensor(inputs["Y"])).numpy()}


def _model_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``grads`` of the deep style: ``dW``, ``db`` = ∂cost/∂θ; ``dA{l}`` = m·∂cost/∂A_l."""
    torch = _torch()
    depth = sum(1 for key in inputs if key.startswith("W"))
    Y = torch.tensor(inputs["Y"])
    m = Y.shape[1]
    params = {key: _leaf(inputs[key]) for key in inputs if key[0] in "Wb" and key[1:].isdigit()}
    activations = [_leaf(inputs["X"])]
    for layer in range(1, depth + 1):
        if layer > 1:
            activations[-1].retain_grad()
        Z = params[f"W{layer}"] @ activations[-1] + params[f"b{layer}"]
        activations.append(torch.relu(Z) if layer < depth else torch.sigmoid(Z))
    _deep_cost(activations[-1], Y).backward()
    grads = {f"d{key}": leaf.grad.numpy() for key, leaf in params.items()}
    grads |= {f"dA{layer}": activations[layer].grad.numpy() * m for layer in range(depth)}
    return grads


def _spec_backprop(check: FunctionCheck) -> dict[str, np.ndarray]:
    """The whole-network twin: :func:`oracle.torch_twin.torch_backprop` on the spec the check passes."""
    from oracle.torch_twin import torch_backprop
    from refbp.spec import NetworkSpec

    spec = NetworkSpec.from_dict(check.calls[0].args[0]["literal"])
    params = {key: value for key, value in check.inputs.items() if key not in ("X", "Y")}
    _, grads = torch_backprop(spec, params, check.inputs["X"], check.inputs["Y"])
    return grads.by_parameter()


TWINS: dict[str, Twin] = {
    "affine_backward": _affine_backward,
    "relu_backward": _elementwise("relu"),
    "sigmoid_backward": _elementwise("sigmoid"),
    "tanh_backward": _elementwise("tanh"),
    "softmax_loss": _softmax_loss,
    "svm_loss": _svm_loss,
    "linear_backward": _linear_backward,
    "linear_activation_backward_relu": lambda inputs: _linear_backward(inputs, "relu", "dA"),
    "linear_activation_backward_sigmoid": lambda inputs: _linear_backward(inputs, "sigmoid", "dA"),
    "deep_relu_backward": _activation_backward("relu"),
    "deep_sigmoid_backward": _activation_backward("sigmoid"),
    "compute_cost": _compute_cost,
    "L_model_backward": _model_backward,
    **RNN_TWINS,
    **NHWC_TWINS,
    **DLAI_RNN_TWINS,
}


def quantity_key(quantity: str) -> str:
    """``"grads['dW2']"`` → ``"dW2"``; plain names unchanged."""
    return quantity.split("'")[1] if "'" in quantity else quantity


def confirm(checks: Sequence[FunctionCheck]) -> list[str]:
    """Compare every check that names a twin with autograd; the list of disagreements (empty when all agree)."""
    problems = []
    for check in checks:
        if check.twin is None:
            continue
        values = (
            _spec_backprop(check)
            if check.twin == SPEC_TWIN
            else (TWINS.get(check.twin) or cnn_twin(check.twin))(check.inputs)
        )
        for expect in check.expects:
            theirs = values.get(quantity_key(expect.quantity))
            if theirs is None:
                problems.append(f"{check.name}: the twin has no {expect.quantity}")
            elif not np.allclose(expect.value, theirs, rtol=RTOL, atol=ATOL * max(1.0, np.abs(theirs).max())):
                problems.append(f"{check.name}: {expect.quantity} disagrees with torch autograd")
    return problems
