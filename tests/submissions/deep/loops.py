"""Correct: loops over examples, a `Z >= 0` ReLU mask, caches as lists, an in-place parameter update,
and a cost of shape (1, 1) (any one-entry shape is accepted for the scalar cost)."""

# ruff: noqa: E741  (the course names the layer index l)

import numpy as np


def relu_backward(dA, cache):
    return dA * (cache >= 0)


def sigmoid_backward(dA, cache):
    s = np.exp(-np.logaddexp(0, -cache))
    return dA * s * (1 - s)


def linear_forward(A, W, b):
    Z = np.zeros((W.shape[0], A.shape[1]))
    for j in range(A.shape[1]):
        Z[:, j] = W @ A[:, j] + b[:, 0]
    return Z, [A, W, b]


def linear_activation_forward(A_prev, W, b, activation):
    Z, linear_cache = linear_forward(A_prev, W, b)
    A = np.maximum(Z, 0) if activation == "relu" else np.exp(-np.logaddexp(0, -Z))
    return A, [linear_cache, Z]


def L_model_forward(X, parameters):
    L = len([k for k in parameters if k.startswith("W")])
    A, caches = X, []
    for l in range(1, L + 1):
        activation = "sigmoid" if l == L else "relu"
        A, cache = linear_activation_forward(A, parameters[f"W{l}"], parameters[f"b{l}"], activation)
        caches.append(cache)
    return A, caches


def compute_cost(AL, Y):
    m = Y.shape[1]
    total = 0.0
    for j in range(m):
        total += Y[0, j] * np.log(AL[0, j]) + (1 - Y[0, j]) * np.log(1 - AL[0, j])
    return np.array([[-total / m]])


def linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = np.zeros_like(W)
    db = np.zeros_like(b)
    for j in range(m):
        dW += np.outer(dZ[:, j], A_prev[:, j]) / m
        db[:, 0] += dZ[:, j] / m
    dA_prev = W.T @ dZ
    return dA_prev, dW, db


def linear_activation_backward(dA, cache, activation):
    linear_cache, Z = cache
    dZ = relu_backward(dA, Z) if activation == "relu" else sigmoid_backward(dA, Z)
    return linear_backward(dZ, linear_cache)


def L_model_backward(AL, Y, caches):
    grads = {}
    L = len(caches)
    dA = (AL - Y) / (AL * (1 - AL))
    for l in range(L, 0, -1):
        activation = "sigmoid" if l == L else "relu"
        dA, grads[f"dW{l}"], grads[f"db{l}"] = linear_activation_backward(dA, caches[l - 1], activation)
        grads[f"dA{l - 1}"] = dA
    return grads


def update_parameters(parameters, grads, learning_rate):
    for key in list(parameters):
        parameters[key] -= learning_rate * grads["d" + key]
    return parameters
