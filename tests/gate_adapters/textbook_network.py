"""A feedforward network of sigmoid neurons, trained by mini-batch stochastic gradient descent.

Examples are column vectors ``x`` of shape ``(n_in, 1)``. ``backprop`` returns the gradient
of one example's cost; ``sgd_step`` sums them over a mini-batch, divides by its size and
applies L2 weight decay ``(1 − η·λ/n)`` in the same update, as the textbook derives it.
"""

import itertools

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_slope(z):
    """Derivative of the sigmoid function."""
    return sigmoid(z) * (1 - sigmoid(z))


class QuadraticCost:
    @staticmethod
    def fn(a, y):
        """Cost of output ``a`` for desired output ``y``."""
        return 0.5 * np.linalg.norm(a - y) ** 2

    @staticmethod
    def delta(z, a, y):
        """Error of the output layer."""
        return (a - y) * sigmoid_slope(z)


class CrossEntropyCost:
    @staticmethod
    def fn(a, y):
        return np.sum(np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a)))

    @staticmethod
    def delta(z, a, y):
        """Error of the output layer; the σ'(z) cancels for this cost."""
        return a - y


class Network:
    def __init__(self, sizes, cost=CrossEntropyCost, rng=None):
        """``sizes[0]`` inputs, then the number of neurons in each layer."""
        rng = rng or np.random.default_rng()
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.cost = cost
        self.biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
        self.weights = [rng.standard_normal((y, x)) / np.sqrt(x) for x, y in itertools.pairwise(sizes)]

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights, strict=True):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def sgd_step(self, mini_batch, eta, lmbda, n):
        """One gradient step on ``mini_batch`` (a list of ``(x, y)``); ``n`` is the training set size."""
        grad_b = [np.zeros(b.shape) for b in self.biases]
        grad_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_grad_b, delta_grad_w = self.backprop(x, y)
            grad_b = [nb + dnb for nb, dnb in zip(grad_b, delta_grad_b, strict=True)]
            grad_w = [nw + dnw for nw, dnw in zip(grad_w, delta_grad_w, strict=True)]
        self.weights = [
            (1 - eta * (lmbda / n)) * w - (eta / len(mini_batch)) * nw
            for w, nw in zip(self.weights, grad_w, strict=True)
        ]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, grad_b, strict=True)]

    def backprop(self, x, y):
        """``(grad_b, grad_w)``: layer-by-layer lists of the gradient of one example's cost."""
        grad_b = [np.zeros(b.shape) for b in self.biases]
        grad_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights, strict=True):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = self.cost.delta(zs[-1], activations[-1], y)
        grad_b[-1] = delta
        grad_w[-1] = np.dot(delta, activations[-2].transpose())
        # l = 1 is the last layer, l = 2 the one before it, and so on.
        for l in range(2, self.num_layers):  # noqa: E741 - the textbook's name
            z = zs[-l]
            sp = sigmoid_slope(z)
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp
            grad_b[-l] = delta
            grad_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return grad_b, grad_w
