"""Each typed layer of refbp against numbers derived by hand or computed another way.

Hand-derived: a 2×2 kernel on a 3×3 image, 2×2 pooling of a 2×4 image, batchnorm of two
examples (whose batch coupling nearly cancels ∂L/∂x), eval-mode batchnorm, dropout through an
explicit mask. Computed another way: spatial batchnorm as dense batchnorm of the pixels,
layer norm as batchnorm of the transpose, group norm as layer norm of the groups, and the
im2col convolution as the course's loop over windows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from refbp.layers import batchnorm, conv, dropout, flatten, groupnorm, pool
from refbp.layers.batchnorm import BatchNorm
from refbp.layers.conv import Conv2d
from refbp.layers.dropout import Dropout
from refbp.layers.flatten import Flatten
from refbp.layers.groupnorm import GroupNorm, LayerNorm
from refbp.layers.pool import AvgPool2d, MaxPool2d

EPS = 1e-5


def test_conv2d_by_hand() -> None:
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    layer = Conv2d(filters=1, kernel=(2, 2))
    params = {"W": np.array([[[[1.0, 0.0], [0.0, -1.0]]]]), "b": np.array([0.5])}
    z, cache, state = conv.forward(layer, params, x, {})
    # z[i, j] = x[i, j] − x[i+1, j+1] + 0.5 = −4 + 0.5 everywhere
    np.testing.assert_allclose(z, np.full((1, 1, 2, 2), -3.5))
    dx, grads = conv.backward(layer, params, cache, np.ones_like(z))
    np.testing.assert_allclose(grads["b"], [4.0])
    # ∂L/∂W[p, q] = Σ of the window entries at offset (p, q): 1+2+4+5, 2+3+5+6, …
    np.testing.assert_allclose(grads["W"], [[[[12.0, 16.0], [24.0, 28.0]]]])
    # ∂L/∂x: +1 where the kernel's top-left touches, −1 where its bottom-right does
    np.testing.assert_allclose(dx[0, 0], [[1.0, 1.0, 0.0], [1.0, 0.0, -1.0], [0.0, -1.0, -1.0]])
    assert state == {}


@pytest.mark.parametrize(("kernel", "stride", "padding"), [((3, 3), (1, 1), (1, 1)), ((2, 3), (2, 1), (0, 2))])
def test_conv2d_im2col_matches_the_loop_over_windows(kernel, stride, padding) -> None:
    rng = np.random.default_rng(3)
    layer = Conv2d(filters=4, kernel=kernel, stride=stride, padding=padding)
    x = rng.standard_normal((2, 3, 5, 6))
    params = {"W": rng.standard_normal((4, 3, *kernel)), "b": rng.standard_normal(4)}
    z, cache, _ = conv.forward(layer, params, x, {})
    assert z.shape == (2, *layer.output_shape((3, 5, 6), "conv"))
    np.testing.assert_allclose(z, conv.textbook_forward(layer, params, x), rtol=1e-12, atol=1e-12)
    dz = rng.standard_normal(z.shape)
    dx, grads = conv.backward(layer, params, cache, dz)
    dx_loop, grads_loop = conv.textbook_backward(layer, params, x, dz)
    np.testing.assert_allclose(dx, dx_loop, rtol=1e-12, atol=1e-12)
    for kind in ("W", "b"):
        np.testing.assert_allclose(grads[kind], grads_loop[kind], rtol=1e-12, atol=1e-12)


def test_pooling_by_hand() -> None:
    x = np.array([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 7.0]]]])
    dout = np.array([[[[10.0, 20.0]]]])
    out, cache, _ = pool.max_forward(MaxPool2d((2, 2), (2, 2)), {}, x, {})
    np.testing.assert_allclose(out, [[[[5.0, 8.0]]]])
    dx, grads = pool.max_backward(MaxPool2d((2, 2), (2, 2)), {}, cache, dout)
    np.testing.assert_allclose(dx[0, 0], [[0.0, 10.0, 0.0, 0.0], [0.0, 0.0, 20.0, 0.0]])
    assert grads == {}
    out, cache, _ = pool.avg_forward(AvgPool2d((2, 2), (2, 2)), {}, x, {})
    np.testing.assert_allclose(out, [[[[3.25, 4.25]]]])
    dx, _ = pool.avg_backward(AvgPool2d((2, 2), (2, 2)), {}, cache, dout)
    np.testing.assert_allclose(dx[0, 0], [[2.5, 2.5, 5.0, 5.0], [2.5, 2.5, 5.0, 5.0]])


def test_overlapping_max_pool_windows_add_up() -> None:
    layer = MaxPool2d(kernel=(1, 2), stride=(1, 1))
    x = np.array([[[[1.0, 3.0, 2.0]]]])
    out, cache, _ = pool.max_forward(layer, {}, x, {})
    np.testing.assert_allclose(out, [[[[3.0, 3.0]]]])
    dx, _ = pool.max_backward(layer, {}, cache, np.array([[[[1.0, 2.0]]]]))
    np.testing.assert_allclose(dx, [[[[0.0, 3.0, 0.0]]]])


def test_batchnorm_train_by_hand() -> None:
    """Two examples 1 and 3: μ = 2, σ² = 1, x̂ = ∓1/s with s = √(1 + ε)."""
    layer = BatchNorm(mode="train", momentum=0.1, eps=EPS)
    s = math.sqrt(1.0 + EPS)
    params = {"gamma": np.array([2.0]), "beta": np.array([0.5])}
    z, cache, state = batchnorm.forward(layer, params, np.array([[1.0], [3.0]]), {})
    np.testing.assert_allclose(z[:, 0], [0.5 - 2 / s, 0.5 + 2 / s])
    np.testing.assert_allclose(state["running_mean"], [0.2])  # 0.9·0 + 0.1·2
    np.testing.assert_allclose(state["running_var"], [1.0])  # 0.9·1 + 0.1·1
    dx, grads = batchnorm.backward(layer, params, cache, np.array([[1.0], [0.0]]))
    np.testing.assert_allclose(grads["beta"], [1.0])
    np.testing.assert_allclose(grads["gamma"], [-1.0 / s])
    # g = γ·δ = (2, 0): (g − mean g − x̂·mean(g x̂)) / s = ((1, −1) − (1, −1)/s²) / s — without the
    # two mean terms (the classic bug) it would be (2, 0)/s.
    np.testing.assert_allclose(dx[:, 0], np.array([1.0, -1.0]) * (EPS / (1 + EPS)) / s, rtol=1e-9)


def test_batchnorm_unbiased_running_variance_and_eval_mode() -> None:
    layer = BatchNorm(mode="train", momentum=0.1, eps=EPS, unbiased_running_var=True)
    params = {"gamma": np.array([1.0]), "beta": np.array([0.0])}
    _, _, state = batchnorm.forward(layer, params, np.array([[1.0], [3.0]]), {})
    np.testing.assert_allclose(state["running_var"], [0.9 + 0.1 * 2.0])  # σ² · 2/(2 − 1)
    evaluation = BatchNorm(mode="eval", eps=EPS)
    buffers = {"running_mean": np.array([0.5]), "running_var": np.array([3.0])}
    params = {"gamma": np.array([2.0]), "beta": np.array([0.25])}
    z, cache, state = batchnorm.forward(evaluation, params, np.array([[1.0]]), buffers)
    assert state == {}
    np.testing.assert_allclose(z, [[2.0 * 0.5 / math.sqrt(3.0 + EPS) + 0.25]])
    dx, _ = batchnorm.backward(evaluation, params, cache, np.array([[1.0]]))
    np.testing.assert_allclose(dx, [[2.0 / math.sqrt(3.0 + EPS)]])


def test_spatial_batchnorm_is_dense_batchnorm_of_the_pixels() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 2, 3))
    params = {"gamma": rng.standard_normal(2), "beta": rng.standard_normal(2)}
    dz = rng.standard_normal(x.shape)
    layer = BatchNorm()

    def as_rows(a: np.ndarray) -> np.ndarray:
        return a.transpose(0, 2, 3, 1).reshape(-1, 2)

    z, cache, state = batchnorm.forward(layer, params, x, {})
    z_rows, cache_rows, state_rows = batchnorm.forward(layer, params, as_rows(x), {})
    np.testing.assert_allclose(as_rows(z), z_rows, rtol=1e-12)
    np.testing.assert_allclose(state["running_var"], state_rows["running_var"], rtol=1e-12)
    dx, grads = batchnorm.backward(layer, params, cache, dz)
    dx_rows, grads_rows = batchnorm.backward(layer, params, cache_rows, as_rows(dz))
    np.testing.assert_allclose(as_rows(dx), dx_rows, rtol=1e-10, atol=1e-12)
    for kind in ("gamma", "beta"):
        np.testing.assert_allclose(grads[kind], grads_rows[kind], rtol=1e-12)


def test_layernorm_is_batchnorm_of_the_transpose() -> None:
    rng = np.random.default_rng(6)
    x, dz = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    unit = {"gamma": np.ones(4), "beta": np.zeros(4)}
    z, cache, _ = groupnorm.layer_forward(LayerNorm(), unit, x, {})
    zt, cache_t, _ = batchnorm.forward(BatchNorm(), {"gamma": np.ones(3), "beta": np.zeros(3)}, x.T, {})
    np.testing.assert_allclose(z, zt.T, rtol=1e-12)
    dx, grads = groupnorm.layer_backward(LayerNorm(), unit, cache, dz)
    dxt, _ = batchnorm.backward(BatchNorm(), {"gamma": np.ones(3), "beta": np.zeros(3)}, cache_t, dz.T)
    np.testing.assert_allclose(dx, dxt.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["beta"], dz.sum(axis=0))
    np.testing.assert_allclose(grads["gamma"], (dz * z).sum(axis=0), rtol=1e-12)


def test_groupnorm_is_layernorm_of_each_group() -> None:
    rng = np.random.default_rng(7)
    x, dz = rng.standard_normal((2, 4, 2, 2)), rng.standard_normal((2, 4, 2, 2))
    layer = GroupNorm(groups=2)
    params = {"gamma": np.ones(4), "beta": np.zeros(4)}
    z, cache, _ = groupnorm.group_forward(layer, params, x, {})
    flat = {"gamma": np.ones(8), "beta": np.zeros(8)}
    zl, cache_l, _ = groupnorm.layer_forward(LayerNorm(), flat, x.reshape(4, 8), {})
    np.testing.assert_allclose(z.reshape(4, 8), zl, rtol=1e-12)
    dx, grads = groupnorm.group_backward(layer, params, cache, dz)
    dxl, _ = groupnorm.layer_backward(LayerNorm(), flat, cache_l, dz.reshape(4, 8))
    np.testing.assert_allclose(dx.reshape(4, 8), dxl, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["beta"], dz.sum(axis=(0, 2, 3)))


def test_dropout_explicit_mask_keep_and_drop_conventions() -> None:
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    mask = np.array([[1, 0, 1, 1]])
    keep = Dropout.from_dict({"keep_prob": 0.8}, "layers[0]")
    drop = Dropout.from_dict({"drop_prob": 0.2}, "layers[0]")
    assert keep.keep_prob == pytest.approx(drop.keep_prob) == pytest.approx(0.8)
    assert drop.to_dict()["drop_prob"] == pytest.approx(0.2) and "keep_prob" not in drop.to_dict()
    out, cache, _ = dropout.forward(keep, {}, x, {"mask": mask})
    np.testing.assert_allclose(out, [[1.25, 0.0, 3.75, 5.0]])  # inverted: ÷ 0.8
    dx, _ = dropout.backward(keep, {}, cache, np.ones_like(x))
    np.testing.assert_allclose(dx, [[1.25, 0.0, 1.25, 1.25]])
    evaluation = Dropout(keep_prob=0.8, mode="eval")
    out, cache, _ = dropout.forward(evaluation, {}, x, {})
    np.testing.assert_array_equal(out, x)


def test_seeded_dropout_mask_is_reproducible_and_keeps_about_keep_prob() -> None:
    layer = Dropout(keep_prob=0.7, seed=11)
    first = dropout.seeded_mask(layer, (50, 40))
    np.testing.assert_array_equal(first, dropout.seeded_mask(layer, (50, 40)))
    assert abs(first.mean() - 0.7) < 0.03
    assert not np.array_equal(first, dropout.seeded_mask(Dropout(keep_prob=0.7, seed=12), (50, 40)))


def test_flatten_round_trip() -> None:
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    out, cache, _ = flatten.forward(Flatten(), {}, x, {})
    np.testing.assert_array_equal(out[1], np.arange(12.0, 24.0))
    dx, _ = flatten.backward(Flatten(), {}, cache, out)
    np.testing.assert_array_equal(dx, x)


def test_train_batchnorm_refuses_a_single_value_per_feature() -> None:
    from refbp.errors import InputError

    params = {"gamma": np.ones(2), "beta": np.zeros(2)}
    with pytest.raises(InputError, match="at least 2 values per feature"):
        batchnorm.forward(BatchNorm(), params, np.ones((1, 2)), {})
    out, _, _ = batchnorm.forward(BatchNorm(mode="eval"), params, np.ones((1, 2)), {})
    np.testing.assert_allclose(out, np.full((1, 2), 1 / math.sqrt(1 + EPS)))
