"""Torch twins of the ``nhwc`` interface's checks (see :mod:`grading.torch_confirm`).

Written from ``torch.nn.functional`` (``pad``, ``conv2d``, ``max_pool2d``, ``avg_pool2d``) and
autograd alone, with the channels-last tensors permuted to torch's NCHW and back; the
hyperparameters travel in the check's inputs as 0-d arrays (``stride``, ``pad``, ``f``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch.nn import functional

TO_NCHW, TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)


def _leaf(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def zero_pad(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    pad = int(inputs["pad"])
    return {"X_pad": functional.pad(torch.tensor(inputs["X"]), (0, 0, pad, pad, pad, pad)).numpy()}


def conv_single_step(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    a, W, b = (torch.tensor(inputs[k]) for k in ("a_slice_prev", "W", "b"))
    return {"Z": (torch.sum(a * W) + b.sum()).numpy()}


def _conv(inputs: Mapping[str, np.ndarray]):
    A, W, b = _leaf(inputs["A_prev"]), _leaf(inputs["W"]), _leaf(inputs["b"])
    Z = functional.conv2d(
        A.permute(TO_NCHW),
        W.permute(3, 2, 0, 1),
        b.reshape(-1),
        stride=int(inputs["stride"]),
        padding=int(inputs["pad"]),
    ).permute(TO_NHWC)
    return Z, (A, W, b)


def conv_forward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"Z": _conv(inputs)[0].detach().numpy(), "cache[0]": np.asarray(inputs["A_prev"])}  # the input, as given


def conv_backward(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    Z, leaves = _conv(inputs)
    grads = torch.autograd.grad(Z, leaves, torch.tensor(inputs["dZ"]))
    return {name: g.numpy() for name, g in zip(("dA_prev", "dW", "db"), grads, strict=True)}


def _pool(mode: str, inputs: Mapping[str, np.ndarray]):
    A = _leaf(inputs["A_prev"])
    run = functional.max_pool2d if mode == "max" else functional.avg_pool2d
    return run(A.permute(TO_NCHW), int(inputs["f"]), int(inputs["stride"])).permute(TO_NHWC), A


def _pool_forward(mode: str):
    def twin(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"A": _pool(mode, inputs)[0].detach().numpy(), "cache[0]": np.asarray(inputs["A_prev"])}

    return twin


def _pool_backward(mode: str):
    def twin(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out, A = _pool(mode, inputs)
        (dA_prev,) = torch.autograd.grad(out, [A], torch.tensor(inputs["dA"]))
        return {"dA_prev": dA_prev.numpy()}

    return twin


TWINS = {
    "nhwc_zero_pad": zero_pad,
    "nhwc_conv_single_step": conv_single_step,
    "nhwc_conv_forward": conv_forward,
    "nhwc_conv_backward": conv_backward,
    **{f"nhwc_pool_forward_{mode}": _pool_forward(mode) for mode in ("max", "average")},
    **{f"nhwc_pool_backward_{mode}": _pool_backward(mode) for mode in ("max", "average")},
}
"""The twin of each ``nhwc`` interface check, by the check's ``twin`` name."""
