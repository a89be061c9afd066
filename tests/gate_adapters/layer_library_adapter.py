"""The gate's adapter for ``layer_library``: a ``Stack`` of ``FullyConnected`` layers and a loss object."""

from gate_adapters import layer_library
from oracle.supports import Supports

REFBP_SUPPORTS = Supports(
    layouts=["in_out"],
    hidden_activations=["identity", "sigmoid", "tanh", "relu"],
    output_activations=["identity", "sigmoid", "tanh"],
    losses=["half_sse", "softmax_cross_entropy"],
    reductions=["sum"],
    targets=["one_hot"],  # CrossEntropy.grad is y_pred − y: right only when the targets sum to 1
    bias_modes=["per_unit"],
    l2=["off"],
    dtypes=["float64"],
    max_depth=3,
    max_width=5,
)


def make_backprop(library):
    def backprop(spec, params, X, T):
        sizes = [spec.inputs, *(layer.units for layer in spec.layers)]
        layers = []
        for i, layer in enumerate(spec.layers, start=1):
            softmax_out = layer.activation == "softmax"
            fc = library.FullyConnected(sizes[i - 1], sizes[i], "identity" if softmax_out else layer.activation)
            fc.parameters = {"W": params[f"W{i}"], "b": params[f"b{i}"].reshape(1, -1)}
            fc.flush_gradients()
            layers.append(fc)
        model = library.Stack(layers)
        out = model.forward(X)
        if spec.loss.kind == "softmax_cross_entropy":
            dx = model.backward(library.CrossEntropy().grad(T, library.softmax(out)))
        else:
            dx = model.backward(library.SquaredError().grad(T, out))
        grads = {"x": dx}
        for i, fc in enumerate(layers, start=1):
            grads[f"W{i}"] = fc.gradients["W"]
            grads[f"b{i}"] = fc.gradients["b"].reshape(-1)
        return grads

    return backprop


backprop = make_backprop(layer_library)
