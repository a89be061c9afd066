"""The gate's adapter for ``textbook_network``: one mini-batch step with η = 1, read back as a gradient.

The network keeps the mean over the mini-batch and the L2 weight decay in its update step,
so the adapter takes one step and reads the gradient off the change of the parameters:
``∂J/∂W = W_before − W_after`` with ``J = mean cost + λ/2·Σ‖W‖²`` (``lmbda = λ·n``).
"""

from gate_adapters import textbook_network
from oracle.supports import Supports

REFBP_SUPPORTS = Supports(
    layouts=["out_in"],
    hidden_activations=["sigmoid"],
    output_activations=["sigmoid"],
    losses=["half_sse", "binary_cross_entropy"],
    reductions=["mean"],
    targets=["one_hot", "soft"],
    bias_modes=["per_unit"],
    l2=["off", "weights"],
    dtypes=["float64"],
    max_depth=3,
    max_width=5,
)


def make_backprop(library):
    costs = {"half_sse": library.QuadraticCost, "binary_cross_entropy": library.CrossEntropyCost}

    def backprop(spec, params, X, T):
        net = library.Network([spec.inputs, *(layer.units for layer in spec.layers)], cost=costs[spec.loss.kind])
        layers = range(1, spec.depth + 1)
        net.weights = [params[f"W{k}"].astype(float) for k in layers]
        net.biases = [params[f"b{k}"].reshape(-1, 1).astype(float) for k in layers]
        before = [*(w.copy() for w in net.weights), *(b.copy() for b in net.biases)]
        batch = [(X[:, [i]], T[:, [i]]) for i in range(X.shape[1])]
        net.sgd_step(batch, eta=1.0, lmbda=spec.l2.lam * len(batch), n=len(batch))
        after = [*net.weights, *net.biases]
        names = [*(f"W{k}" for k in layers), *(f"b{k}" for k in layers)]
        return {
            name: (old - new).reshape(params[name].shape) for name, old, new in zip(names, before, after, strict=True)
        }

    return backprop


backprop = make_backprop(textbook_network)
