"""sgd_step arithmetic and full-batch gradient descent against the closed-form GD iterate."""

from __future__ import annotations

import numpy as np
import pytest

from refbp.errors import InputError
from refbp.spec import LayerSpec, LossSpec, NetworkSpec
from refbp.train import fit, sgd_step

# Linear least squares: 4 examples, 2 inputs, 1 output; identity layer with a per-unit bias.
X = np.array([[1.0, 2.0], [2.0, -1.0], [0.5, 0.5], [-1.0, 1.5]])
T = np.array([[3.0], [0.5], [1.0], [1.0]])
W0 = np.array([[0.2], [-0.3]])
B0 = np.array([0.1])
SPEC = NetworkSpec(inputs=2, layers=(LayerSpec(1, "identity", "per_unit"),), loss=LossSpec("half_sse", "sum"))


def test_sgd_step_is_theta_minus_lr_times_gradient() -> None:
    params = {"W1": np.array([[1.0, -2.0]]), "b1": np.array([0.5])}
    grads = {"W1": np.array([[0.5, 0.25]]), "b1": np.array([-1.0])}
    new = sgd_step(params, grads, 0.1)
    np.testing.assert_allclose(new["W1"], [[0.95, -2.025]], rtol=1e-15)
    np.testing.assert_allclose(new["b1"], [0.6], rtol=1e-15)
    assert params["W1"].tolist() == [[1.0, -2.0]]  # inputs untouched
    assert params["b1"].tolist() == [0.5]


def gd_iterate_in_closed_form(lr: float, k: int) -> tuple[np.ndarray, float]:
    """θ_k = θ* + (I − lr·H)^k (θ_0 − θ*), with Ã = [X, 1], H = ÃᵀÃ, θ* = H⁻¹ÃᵀT.

    Gradient descent on ½‖Ãθ − T‖² is the linear recursion θ ← θ − lr(Hθ − ÃᵀT),
    whose fixed point is θ*.
    """
    A = np.hstack([X, np.ones((4, 1))])
    H = A.T @ A
    theta_star = np.linalg.solve(H, A.T @ T)
    theta0 = np.vstack([W0, B0[:, None]])
    theta = theta_star + np.linalg.matrix_power(np.eye(3) - lr * H, k) @ (theta0 - theta_star)
    residual = A @ theta - T
    return theta, 0.5 * float(np.sum(residual**2))


def test_fit_follows_the_closed_form_gradient_descent_iterate() -> None:
    lr, steps = 0.04, 30
    result = fit(SPEC, {"W1": W0, "b1": B0}, X, T, lr=lr, steps=steps)
    assert len(result.losses) == steps + 1
    for k, loss in enumerate(result.losses):
        assert loss == pytest.approx(gd_iterate_in_closed_form(lr, k)[1], rel=1e-10), k
    theta, final = gd_iterate_in_closed_form(lr, steps)
    np.testing.assert_allclose(result.params["W1"], theta[:2], rtol=1e-10)
    np.testing.assert_allclose(result.params["b1"], theta[2], rtol=1e-10)
    assert result.final_loss == pytest.approx(final, rel=1e-10)
    assert result.losses[0] == pytest.approx(0.5 * float(np.sum((X @ W0 + B0 - T) ** 2)), rel=1e-14)


def test_fit_decreases_the_loss_monotonically_on_a_convex_problem() -> None:
    result = fit(SPEC, {"W1": W0, "b1": B0}, X, T, lr=0.04, steps=50)
    assert all(b < a for a, b in zip(result.losses, result.losses[1:], strict=False))
    assert result.final_loss < 0.1 * result.losses[0]


def test_fit_does_not_modify_its_inputs() -> None:
    params = {"W1": W0.copy(), "b1": B0.copy()}
    fit(SPEC, params, X, T, lr=0.04, steps=3)
    np.testing.assert_array_equal(params["W1"], W0)
    np.testing.assert_array_equal(params["b1"], B0)


def test_fit_with_zero_steps_only_reports_the_initial_loss() -> None:
    result = fit(SPEC, {"W1": W0, "b1": B0}, X, T, lr=0.04, steps=0)
    assert result.losses == [pytest.approx(gd_iterate_in_closed_form(0.04, 0)[1], rel=1e-14)]
    np.testing.assert_array_equal(result.params["W1"], W0)


@pytest.mark.parametrize(("lr", "steps", "field"), [(0.0, 5, "lr"), (-0.1, 5, "lr"), (0.1, -1, "steps")])
def test_fit_rejects_bad_settings(lr: float, steps: int, field: str) -> None:
    with pytest.raises(InputError, match=rf"^spec: {field}: expected "):
        fit(SPEC, {"W1": W0, "b1": B0}, X, T, lr=lr, steps=steps)
