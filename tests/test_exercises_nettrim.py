"""The checker of chapter 04's exercise passes the worked solution and fails the stub and typical mistakes."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import torch

from lotterylib.exercises import nettrim as ex
from lotterylib.exercises import stub


# --- the worked solution (the chapter's hidden cell holds the same code) -----------------------------

def nettrim_layer_cvxpy(X, Y, epsilon):
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    active = (Y > 0).astype(float)
    U = cp.Variable((X.shape[0], Y.shape[0]))
    Z = U.T @ X
    constraints = [cp.norm(cp.multiply(active, Z - Y), "fro") <= epsilon,
                   cp.multiply(1 - active, Z) <= 0]
    cp.Problem(cp.Minimize(cp.sum(cp.abs(U))), constraints).solve()
    return torch.from_numpy(U.value)


def per_neuron_loop(X, Y, epsilon):
    """Another correct way: one residual per neuron over its own active samples, one ball over all of them."""
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    U = cp.Variable((X.shape[0], Y.shape[0]))
    fits, constraints = [], []
    for m in range(Y.shape[0]):
        on = Y[m] > 0
        if on.any():
            fits.append(X[:, on].T @ U[:, m] - Y[m, on])
        if (~on).any():
            constraints.append(X[:, ~on].T @ U[:, m] <= 0)
    if fits:
        constraints.append(cp.norm(cp.hstack(fits), 2) <= epsilon)
    cp.Problem(cp.Minimize(cp.norm1(cp.vec(U, order="F"))), constraints).solve()
    return U.value


# --- typical mistakes ------------------------------------------------------------------------------------

def _program(X, Y, epsilon, objective="l1", ball="omega", inactive=True, transpose=False):
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    active = (Y > 0).astype(float)
    U = cp.Variable((X.shape[0], Y.shape[0]))
    Z = U.T @ X
    if ball == "omega":
        cons = [cp.norm(cp.multiply(active, Z - Y), "fro") <= epsilon]
    elif ball == "everywhere":
        cons = [cp.norm(Z - Y, "fro") <= epsilon]
    elif ball == "per_neuron":
        cons = [cp.norm(cp.multiply(active, Z - Y)[m], 2) <= epsilon for m in range(Y.shape[0])]
    elif ball == "equal":
        cons = [cp.norm(cp.multiply(active, Z - Y), "fro") == epsilon]
    elif ball == "exact":
        cons = [cp.multiply(active, Z - Y) == 0]
    if inactive:
        cons.append(cp.multiply(1 - active, Z) <= 0)
    obj = {"l1": cp.sum(cp.abs(U)), "fro": cp.norm(U, "fro"), "matrix_1": cp.norm(U, 1)}[objective]
    cp.Problem(cp.Minimize(obj), cons).solve()
    return None if U.value is None else (U.value.T if transpose else U.value)


MISTAKES = {
    "forgets the inactive-set constraint": (dict(inactive=False), "inactive-set constraint"),
    "minimises the Frobenius (ℓ2) norm": (dict(objective="fro"), "cp.sum(cp.abs(U))"),
    "minimises cp.norm(U, 1), the matrix 1-norm": (dict(objective="matrix_1"), "largest column sum"),
    "sets the norm equal to ε": (dict(ball="equal"), "not convex"),
    "fits exactly on Ω, ignoring ε": (dict(ball="exact"), "not an exact fit"),
    "one ball per neuron": (dict(ball="per_neuron"), "ONE ball"),
    "fits every entry, not only Ω": (dict(ball="everywhere"), "infeasible"),
    "fits every entry with no inactive constraint (a linear fit)": (dict(ball="everywhere", inactive=False),
                                                                    "infeasible"),
    "returns Uᵀ (M, N)": (dict(transpose=True), "transpose"),
}


def _failures(report) -> str:
    return "\n".join(report.failures)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("solution", [nettrim_layer_cvxpy, per_neuron_loop], ids=["masked", "per-neuron loop"])
def test_the_solutions_pass(solution):
    report = ex.check_nettrim_layer(solution, show=False)
    assert report, str(report)


def test_the_stub_fails_without_raising():
    report = ex.check_nettrim_layer(stub, show=False)
    assert not report and "not implemented yet" in _failures(report)


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_typical_mistake_fails_with_its_hint(name):
    options, hint = MISTAKES[name]
    report = ex.check_nettrim_layer(lambda X, Y, eps: _program(X, Y, eps, **options), show=False)
    assert not report, name
    assert hint in _failures(report), _failures(report)


def test_returning_the_variable_or_changing_the_inputs_fails():
    def returns_variable(X, Y, epsilon):
        U = cp.Variable((X.shape[0], Y.shape[0]))
        return U
    assert "U.value" in _failures(ex.check_nettrim_layer(returns_variable, show=False))

    def scales_inputs(X, Y, epsilon):
        X.mul_(1.0)  # harmless value, but in place: allowed (unchanged)
        Y.add_(0.01)
        return nettrim_layer_cvxpy(X, Y, epsilon)
    assert "changed in place" in _failures(ex.check_nettrim_layer(scales_inputs, show=False))


def test_the_answer_by_hand_is_the_library_optimum():
    # The by-hand case is what lotterylib's exact solver finds too (so the case checks the program, not a guess).
    from lotterylib import nettrim
    X = torch.tensor([[0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    Y = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    r = nettrim.solve_cvxpy(X, Y, 0.5)
    assert torch.allclose(r.weight, torch.tensor([[-1.5], [1.5]], dtype=torch.float64), atol=1e-6)
