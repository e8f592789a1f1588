"""Build it yourself, chapter 04 (Net-Trim): one ReLU layer's convex program, written with cvxpy.

The reader writes ``nettrim_layer_cvxpy(X, Y, epsilon) -> U`` in plain numpy/cvxpy, in the layout of
:mod:`lotterylib.nettrim`: inputs ``X`` (N, P), one column per sample (a hidden layer's inputs carry a
last row of ones for the bias), the trained layer's ReLU outputs ``Y`` (M, P), and one number
``epsilon`` (an absolute tolerance: one ball for the whole layer). With the active set
Ω = {(m, p): y_mp > 0} the program is

    minimize ‖U‖₁ = Σ|u_nm|   subject to   ‖(UᵀX − Y)_Ω‖_F ≤ ε   and   (UᵀX)_mp ≤ 0 for (m, p) ∉ Ω,

and ``U`` is (N, M), so that the new layer computes relu(UᵀX). :func:`check_nettrim_layer` runs the
reader's function on small layers and compares its answer with :func:`lotterylib.nettrim.solve_cvxpy`
(the same program): constraints met within :data:`FEASIBLE_TOL`, ‖U‖₁ within :data:`OBJECTIVE_TOL` of
the optimum, and the same support (no weight that one answer clearly keeps and the other drops). The
edge cases have answers known without a solver: ε so large that U = 0 is feasible, a layer whose
neurons never fire, and a one-neuron layer solved by hand.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from .. import nettrim
from . import Case, Report, run

#: Relative violation of the ball (discrepancy/ε − 1) and of the half-spaces (relative to max Y) allowed:
#: an interior-point solver's answer is feasible to about 1e-8.
FEASIBLE_TOL = 1e-4
#: Relative gap in ‖U‖₁ allowed against lotterylib's exact solution (plus ``ABSOLUTE_TOL`` for U = 0).
OBJECTIVE_TOL = 1e-3
ABSOLUTE_TOL = 1e-6
#: Support: an entry above ``NONZERO_TOL``·max|U| in one answer and below ``ZERO_TOL``·max|U| in the
#: other is a different choice of weights (``nettrim.compare_solvers``' thresholds).
ZERO_TOL, NONZERO_TOL = 1e-5, 1e-3

_LAYOUT = ("X is (N, P) with one column per sample, Y is (M, P), and U is (N, M): the layer computes "
           "relu(UᵀX), so the fit is U.T @ X against Y")


def _called(fn: Callable[..., Any], X: Tensor, Y: Tensor, epsilon: float) -> Tensor:
    """The reader's U for (X, Y, ε), checked for form: an (N, M) matrix of finite numbers, inputs left
    alone. Turns the usual ways a cvxpy program breaks into a hint."""
    import cvxpy as cp

    X_given, Y_given = X.clone(), Y.clone()
    try:
        out = fn(X_given, Y_given, epsilon)
    except cp.error.DCPError as err:
        raise AssertionError(
            "cvxpy refused the program as not convex (DCPError): a norm can be bounded above, "
            "cp.norm(...) <= epsilon (a ball), but never set equal to ε or bounded below") from err
    except ValueError as err:
        if any(word in str(err).lower() for word in ("dimension", "shape", "incompatible", "broadcast")):
            raise AssertionError(f"a shape mismatch ({err}); {_LAYOUT}") from err
        raise
    assert torch.equal(X_given, X) and torch.equal(Y_given, Y), \
        "X or Y was changed in place; build the program from them and leave them alone"
    if hasattr(out, "value") and not isinstance(out, (np.ndarray, Tensor)):
        raise AssertionError("return the weights as a matrix: after problem.solve(), U.value "
                             "(or torch.from_numpy(U.value)), not the cvxpy variable")
    U = None if out is None else np.asarray(out.detach().cpu() if isinstance(out, Tensor) else out)
    if U is None or U.dtype == object:
        raise AssertionError("the function returned None: if that is U.value, the solver found no solution; "
                             "print problem.status — 'infeasible' means the constraints ask too much, e.g. "
                             "an exact fit on Ω instead of the ball ‖(UᵀX − Y)_Ω‖_F ≤ ε, or a fit of every "
                             "entry where off Ω the output only has to stay ≤ 0")
    N, M = X.shape[0], Y.shape[0]
    if U.shape == (M, N) and M != N:
        raise AssertionError(f"U has shape {U.shape}, the transpose of the expected (N, M) = {(N, M)}; {_LAYOUT}")
    assert U.shape == (N, M), f"U has shape {U.shape}, expected (N, M) = {(N, M)}; {_LAYOUT}"
    assert np.isfinite(U).all(), "U holds NaN or infinite entries"
    return torch.from_numpy(U.astype(np.float64))


def _diagnose_infeasible(U: Tensor, X: Tensor, Y: Tensor, epsilon: float, what: str) -> None:
    """Fail with a hint when U breaks a constraint of the program by more than :data:`FEASIBLE_TOL`."""
    c = nettrim.constraints(X, Y, U, epsilon)
    if c["ball_violation"] > FEASIBLE_TOL:
        Xd, Yd = X.double(), Y.double()
        fit = torch.where(Yd > 0, U.T @ Xd - Yd, torch.zeros_like(Yd))
        per_neuron = fit.norm(dim=1)
        if bool((per_neuron <= epsilon * (1 + FEASIBLE_TOL)).all()):
            hint = ("every neuron fits within ε on its own, but the program has ONE ball for the whole layer: "
                    "the Frobenius norm over all neurons' active entries together must be ≤ ε")
        else:
            hint = ("constrain the fit on the active set: cp.norm of (UᵀX − Y) on the entries where Y > 0 "
                    "(all neurons together, Frobenius) <= epsilon")
        raise AssertionError(f"{what}: the fit on Ω is ‖(UᵀX − Y)_Ω‖_F = {float(c['discrepancy']):.4g}, above "
                             f"ε = {epsilon:.4g}; {hint}")
    if c["ineq_violation"] > FEASIBLE_TOL:
        raise AssertionError(
            f"{what}: a neuron that was off (y = 0) now fires, (UᵀX)_mp up to {c['ineq_violation']:.3g}·max Y "
            "where it must stay ≤ 0; add the inactive-set constraint (UᵀX)_mp ≤ 0 wherever Y is 0, else "
            "relu(UᵀX) switches on neurons the trained layer kept off")


def _diagnose_objective(U: Tensor, best: float, X: Tensor, Y: Tensor, epsilon: float, what: str) -> None:
    """Fail with a hint when a feasible U has a larger ‖U‖₁ than the optimum ``best``."""
    got = float(U.abs().sum())
    if got <= best * (1 + OBJECTIVE_TOL) + ABSOLUTE_TOL:
        return
    Xd, Yd = X.double(), Y.double()
    Z = U.T @ Xd
    on_omega = float(torch.where(Yd > 0, Z - Yd, torch.zeros_like(Z)).norm())
    if on_omega <= 1e-6 * epsilon:
        hint = ("U fits the active entries exactly, but the program allows an error up to ε there: "
                "ask for the ball ‖(UᵀX − Y)_Ω‖_F ≤ ε, not an exact fit, and the slack buys sparsity")
    elif on_omega < epsilon * (1 - 1e-3):
        hint = (f"the fit on Ω ({on_omega:.4g}) is tighter than the ε = {epsilon:.4g} the program allows: "
                "use the whole ball, ‖(UᵀX − Y)_Ω‖_F ≤ epsilon, on the active entries only (off Ω the "
                "output only has to stay ≤ 0, not be fitted to 0)")
    else:
        hint = ("minimise the sum of |u| over every entry, cp.sum(cp.abs(U)): cp.norm(U, 1) of a matrix is "
                "its largest column sum, and a Frobenius (ℓ2) norm spreads the weight instead of zeroing it")
    raise AssertionError(f"{what}: feasible, but ‖U‖₁ = {got:.5g} where the optimum is {best:.5g}; {hint}")


def _compare(fn: Callable[..., Any], X: Tensor, Y: Tensor, epsilon: float, what: str) -> None:
    """The reader's U against ``nettrim.solve_cvxpy`` on the same program."""
    U = _called(fn, X, Y, epsilon)
    _diagnose_infeasible(U, X, Y, epsilon, what)
    ref = nettrim.solve_cvxpy(X, Y, epsilon)
    _diagnose_objective(U, ref.objective, X, Y, epsilon, what)
    mine, theirs = U.abs() / U.abs().max().clamp_min(1e-300), ref.weight.abs() / ref.weight.abs().max()
    dropped = int(((theirs > NONZERO_TOL) & (mine <= ZERO_TOL)).sum())
    extra = int(((mine > NONZERO_TOL) & (theirs <= ZERO_TOL)).sum())
    assert not dropped and not extra, (
        f"{what}: ‖U‖₁ is optimal but the support differs ({dropped} weights dropped that the optimum keeps, "
        f"{extra} kept that it drops); solve to the default (tight) accuracy of cvxpy's Clarabel solver")


def _layer(n_in: int, n_out: int, samples: int, seed: int) -> tuple[Tensor, Tensor]:
    X, Y, _ = nettrim.random_relu_layer(n_in, n_out, samples, seed=seed, density=0.4, small=0.1)
    return X, Y


def _case_random() -> Case:
    def test(fn):
        for seed, (shape, gain) in enumerate([((8, 3, 40), 0.1), ((15, 6, 90), 0.05), ((20, 4, 12), 0.1),
                                              ((5, 2, 30), 0.2)]):
            X, Y = _layer(*shape, seed=seed)
            eps = gain * float(Y.norm())
            _compare(fn, X, Y, eps, f"a random layer of {shape[0]} inputs + bias, {shape[1]} neurons, {shape[2]} "
                                    f"samples, ε = {gain}·‖Y‖_F")
    return Case("small random layers: feasible, ‖U‖₁ optimal, same support as nettrim.solve_cvxpy", test)


def _case_float32() -> Case:
    def test(fn):
        X, Y = _layer(10, 3, 50, seed=7)
        X, Y = X.float(), Y.float()
        _compare(fn, X, Y, 0.1 * float(Y.norm()), "a layer given in float32")
    return Case("inputs in float32 (the dtype of a network's activations)", test)


def _case_zero_is_feasible() -> Case:
    def test(fn):
        X, Y = _layer(8, 3, 40, seed=3)
        for gain in (1.0, 1.5):  # U = 0 misses the fit by exactly ‖Y‖_F: feasible from ε = ‖Y‖_F on
            U = _called(fn, X, Y, gain * float(Y.norm()))
            assert float(U.abs().max()) <= ABSOLUTE_TOL, (
                f"with ε = {gain}·‖Y‖_F, U = 0 is feasible (its fit misses by ‖Y‖_F ≤ ε and it keeps every "
                f"neuron off), so the sparsest answer is U = 0; got max |u| = {float(U.abs().max()):.3g}. Is "
                "the ball ≤ ε (not = ε), and is the objective the ℓ1 norm?")
    return Case("ε ≥ ‖Y‖_F: the answer is U = 0", test)


def _case_dead_neurons() -> Case:
    def test(fn):
        X, Y, U_true = nettrim.random_relu_layer(8, 4, 40, seed=5, density=0.5, small=0.1)
        U_true[:, 1] = -U_true[:, 1].abs()  # inputs ≥ 0 and a negative bias: neuron 1 never fires
        Y = torch.relu(U_true.T @ X)
        assert not Y[1].any() and Y.any()
        eps = 0.1 * float(Y.norm())
        _compare(fn, X, Y, eps, "a layer with a neuron that never fires")
        U = _called(fn, X, Y, eps)
        assert float(U[:, 1].abs().max()) <= ABSOLUTE_TOL, (
            "the neuron that never fired only has to stay off, which U[:, m] = 0 does at no cost: its column "
            f"should be 0, got max |u| = {float(U[:, 1].abs().max()):.3g}")
        X0 = X[:, :10]
        Y0 = torch.zeros(3, 10, dtype=torch.float64)  # a whole layer that never fires
        U = _called(fn, X0, Y0, 0.1)
        assert float(U.abs().max()) <= ABSOLUTE_TOL, (
            "a layer whose neurons never fire (Y = 0): the empty fit is within any ε and U = 0 keeps every "
            f"neuron off, so U = 0; got max |u| = {float(U.abs().max()):.3g}")
    return Case("neurons that never fire: their weights are 0 (also when no neuron fires at all)", test)


def _case_by_hand() -> Case:
    def test(fn):
        # One input x ∈ {0, 1} plus the bias row; the trained neuron fires (y = 2) at x = 0 only.
        # Off Ω (x = 1): u_x + u_b ≤ 0; on Ω (x = 0): |u_b − 2| ≤ ε. The sparsest pair is u_b = 2 − ε,
        # u_x = −u_b: ‖U‖₁ = 2(2 − ε). Without the off-Ω constraint u_x = 0 would do, and fire at x = 1.
        X = torch.tensor([[0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
        Y = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
        eps = 0.5
        U = _called(fn, X, Y, eps)
        what = "one neuron, y = relu(1.5 − 1.5x) by hand"
        _diagnose_infeasible(U, X, Y, eps, what)
        _diagnose_objective(U, 2 * (2 - eps), X, Y, eps, what)
        want = torch.tensor([[-1.5], [1.5]], dtype=torch.float64)
        assert torch.allclose(U, want, atol=1e-5), (
            f"one neuron that fires at x = 0 only, ε = 0.5: the answer by hand is U = [−1.5, 1.5]ᵀ "
            f"(weight, bias), got {[round(float(u), 4) for u in U.flatten()]}")
    return Case("a one-neuron layer solved by hand (the inactive constraint binds)", test)


def check_nettrim_layer(fn: Callable[..., Any], show: bool = True) -> Report:
    """Check ``fn(X, Y, epsilon) -> U``, one Net-Trim ReLU layer program (module doc), against
    :func:`lotterylib.nettrim.solve_cvxpy` and known answers. A few seconds."""
    cases = [_case_by_hand(), _case_random(), _case_float32(), _case_zero_is_feasible(), _case_dead_neurons()]
    return run("nettrim_layer_cvxpy", fn, cases, show=show)
