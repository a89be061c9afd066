"""Neural network building blocks in NumPy: activation objects, a fully connected layer, losses.

Arrays are ``(n_examples, n_features)``. A layer caches what its backward pass needs and
accumulates parameter gradients in ``self.gradients`` until ``flush_gradients``.
"""

import numpy as np


class Identity:
    def __call__(self, z):
        return z

    def grad(self, x):
        return np.ones_like(x)


class Sigmoid:
    def __call__(self, z):
        return 1 / (1 + np.exp(-z))

    def grad(self, x):
        fn_x = self(x)
        return fn_x * (1 - fn_x)


class Tanh:
    def __call__(self, z):
        return np.tanh(z)

    def grad(self, x):
        return 1 - np.tanh(x) ** 2


class ReLU:
    def __call__(self, z):
        return np.clip(z, 0, np.inf)

    def grad(self, x):
        return (x > 0).astype(x.dtype)


ACTIVATIONS = {"identity": Identity, "sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}


class FullyConnected:
    """``Y = act_fn(X @ W + b)`` with ``W`` of shape ``(n_in, n_out)`` and ``b`` of shape ``(1, n_out)``."""

    def __init__(self, n_in, n_out, act_fn="identity", rng=None):
        rng = rng or np.random.default_rng()
        self.act_fn = ACTIVATIONS[act_fn]()
        self.parameters = {"W": rng.standard_normal((n_in, n_out)) * np.sqrt(2 / n_in), "b": np.zeros((1, n_out))}
        self.flush_gradients()
        self.cache = {}

    def flush_gradients(self):
        self.gradients = {name: np.zeros_like(value) for name, value in self.parameters.items()}

    def forward(self, X):
        Z = X @ self.parameters["W"] + self.parameters["b"]
        self.cache = {"X": X, "Z": Z}
        return self.act_fn(Z)

    def backward(self, dLdy):
        """Accumulate ``dL/dW`` and ``dL/db``; return ``dL/dX``."""
        X, Z = self.cache["X"], self.cache["Z"]
        dZ = dLdy * self.act_fn.grad(Z)
        self.gradients["W"] += X.T @ dZ
        self.gradients["b"] += dZ.sum(axis=0, keepdims=True)
        return dZ @ self.parameters["W"].T


class Stack:
    """Layers applied in order."""

    def __init__(self, layers):
        self.layers = list(layers)

    def forward(self, X):
        for layer in self.layers:
            X = layer.forward(X)
        return X

    def backward(self, dLdy):
        for i in range(len(self.layers) - 1, -1, -1):
            dLdy = self.layers[i].backward(dLdy)
        return dLdy


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class SquaredError:
    """``½‖y_pred − y‖²``, summed over the batch."""

    def loss(self, y, y_pred):
        return 0.5 * np.sum((y_pred - y) ** 2)

    def grad(self, y, y_pred):
        """Gradient with respect to ``y_pred``."""
        return y_pred - y


class CrossEntropy:
    """``−Σ y·log(y_pred)`` for one-hot ``y`` and softmax probabilities ``y_pred``, summed over the batch."""

    def loss(self, y, y_pred):
        return -np.sum(y * np.log(y_pred + np.finfo(float).eps))

    def grad(self, y, y_pred):
        """Gradient with respect to the logits that ``y_pred`` is the softmax of (for one-hot ``y``)."""
        return y_pred - y
