"""nnlab homework 2 — a dense layer and the multiclass hinge loss."""

import numpy as np

LEARNING_RATE = 0.1


def dense_forward(x, w, b):
    flat = x.reshape(len(x), -1)
    return flat @ w + b, (x, w)


def dense_backward(dout, cache):
    x, w = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(len(x), -1).T @ dout, dout.sum(0)


def hinge_loss(scores, labels):
    n = len(labels)
    correct = scores[np.arange(n), labels][:, None]
    margin = np.maximum(scores - correct + 1, 0)
    margin[np.arange(n), labels] = 0
    positive = (margin > 0).astype(float)
    positive[np.arange(n), labels] = -positive.sum(1)
    return margin.sum() / n, positive / n


def train(data):  # not graded
    raise NotImplementedError
