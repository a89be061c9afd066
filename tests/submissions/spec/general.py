"""Correct: a general backprop over the spec dict (both layouts, the four losses, bias modes, L2)."""

import numpy as np


def _act(name, z, axis, slope):
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    return z


def _act_grad(name, z, a, slope):
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a**2
    if name == "relu":
        return (z > 0).astype(float)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, slope)
    return np.ones_like(z)


def backprop(spec, params, X, Y):
    rows = spec.get("layout", "in_out") == "in_out"
    unit_axis, batch_axis = (1, 0) if rows else (0, 1)
    n = X.shape[batch_axis]
    layers = spec["layers"]
    acts, zs = [X], []
    for i, layer in enumerate(layers, start=1):
        W = params[f"W{i}"]
        z = acts[-1] @ W if rows else W @ acts[-1]
        if layer.get("bias", "per_unit") == "per_unit":
            z = z + (params[f"b{i}"] if rows else params[f"b{i}"][:, None])
        elif layer.get("bias") == "shared":
            z = z + params[f"b{i}"][0]
        zs.append(z)
        acts.append(_act(layer.get("activation", "identity"), z, unit_axis, layer.get("negative_slope", 0.01)))
    loss = spec.get("loss", {})
    kind, reduction = loss.get("kind", "half_sse"), loss.get("reduction", "sum")
    out = acts[-1]
    T = Y
    if loss.get("targets") == "index":
        onehot = np.eye(out.shape[unit_axis])[Y]
        T = onehot if rows else onehot.T
    if kind in ("softmax_cross_entropy", "binary_cross_entropy"):
        delta = out * (T.sum(axis=unit_axis, keepdims=True) if kind == "softmax_cross_entropy" else 1) - T
        scale = 1 / n if reduction == "mean" else 1
        delta = delta * scale
    else:
        factor = 2 if kind == "mse" else 1
        scale = (1 / (n * out.shape[unit_axis]) if kind == "mse" else 1 / n) if reduction == "mean" else 1
        grad_a = factor * (out - T) * scale
        last = layers[-1]
        delta = grad_a * _act_grad(last.get("activation", "identity"), zs[-1], out, last.get("negative_slope", 0.01))
    lam = spec.get("l2", {}).get("lambda", 0.0)
    with_bias = spec.get("l2", {}).get("include_bias", False)
    grads = {}
    for i in range(len(layers), 0, -1):
        layer = layers[i - 1]
        W = params[f"W{i}"]
        grads[f"W{i}"] = (acts[i - 1].T @ delta if rows else delta @ acts[i - 1].T) + lam * W
        mode = layer.get("bias", "per_unit")
        if mode == "per_unit":
            grads[f"b{i}"] = delta.sum(axis=batch_axis) + (lam * params[f"b{i}"] if with_bias else 0)
        elif mode == "shared":
            grads[f"b{i}"] = np.array([delta.sum()]) + (lam * params[f"b{i}"] if with_bias else 0)
        if i > 1:
            grad_prev = delta @ W.T if rows else W.T @ delta
            below = layers[i - 2]
            slope = below.get("negative_slope", 0.01)
            delta = grad_prev * _act_grad(below.get("activation", "identity"), zs[i - 2], acts[i - 1], slope)
    return grads
