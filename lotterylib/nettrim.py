"""Net-Trim (Aghasi, Abdi, Nguyen & Romberg, NIPS 2017): prune a trained ReLU network layer by layer
by solving a convex program, with no retraining.

Notation is the paper's: a layer has inputs ``X`` (N, P) — one *column* per sample, with a row of
ones appended for the bias (:func:`with_bias`) — outputs ``Y`` (M, P) and weights ``U`` (N, M), so
that the layer computes ``relu(Uᵀ X)``. With the active set Ω = {(m, p): y_mp > 0}, Net-Trim solves

    minimize ‖U‖₁  subject to  ‖(UᵀX − Y)_Ω‖_F ≤ ε   and   (UᵀX)_mp ≤ v_mp  for (m, p) ∉ Ω.

Both constraints are convex (a ball and half-spaces), so the program is a second-order-cone
program. ``V = 0`` in *parallel* Net-Trim (every layer uses the original network's activations);
in *cascade* Net-Trim layer ℓ sees the already-trimmed layer's outputs Ŷ and ``V = W_ℓᵀŶ``. The
last (linear) layer drops the ReLU: ``minimize ‖U‖₁ s.t. ‖UᵀX − Y‖_F ≤ ε`` (``relu=False``).

``epsilon`` is either one number (the layer-wide ball above) or a tensor (M,) — one ball per output
neuron, which decouples the program into M independent ones.

Two solvers of the same program:

* :func:`solve_cvxpy` — the exact program through cvxpy (Clarabel by default), for small layers.
  When a neuron's active set is taller than the input (|Ω_m| > N) the ball is reduced by a QR
  factorisation ``X_Ωᵀ = QR``: ``‖X_Ωᵀu − y‖² = ‖Ru − Qᵀy‖² + ‖y‖² − ‖Qᵀy‖²`` (exact, and 5–15×
  faster, see the toolchain notes).
* :func:`solve_admm` — the ADMM of the Net-Trim code, in torch, batched over all output neurons
  (one Cholesky factor of ``XXᵀ + I`` is shared by every neuron), on CPU or GPU, with over-relaxation
  and residual balancing of the penalty ρ. Its answer is the exactly sparse soft-thresholded
  iterate; its remaining constraint violation is measured and reported in the result.

Whole networks: :func:`parallel` and :func:`cascade` trim every layer of a trained
:class:`~lotterylib.models.MLP`; :func:`to_model` puts the sparse weights back into a population
model with :class:`~lotterylib.weightfn.Masked` (mask = non-zeros), the book's one mechanism.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import weightfn
from .models import MLP

__all__ = ["LayerTrim", "NetTrim", "with_bias", "solve_admm", "solve_cvxpy", "trim_layer", "random_relu_layer", "compare_solvers", "constraints", "signals",
           "parallel", "cascade", "to_model", "magnitude_prune", "nonzeros", "relative_discrepancy",
           "layer_discrepancies", "link_normalize", "solver_slack", "theorem_bounds"]


# --- the layer program -------------------------------------------------------------------------

@dataclass
class LayerTrim:
    """The solution of one layer program and how well it satisfies the constraints.

    ``weight``: U (N, M) with exact zeros. ``discrepancy``: ‖(UᵀX − Y)_Ω‖_F (the whole matrix for a
    linear layer; per neuron, shape (M,), when ε was given per neuron). ``ball_violation``:
    max(0, discrepancy/ε − 1) (the largest over neurons). ``ineq_violation``: the largest
    (UᵀX − V)₊ off Ω, relative to max |Y|. ``excess``: ‖(UᵀX − V)₊ off Ω‖_F / ε (the largest over
    neurons), the same violation in units of ε: what a theorem's bound must allow for a solver's answer
    that is only nearly feasible (:func:`solver_slack`). ``converged``: the solver met its tolerance.
    """

    weight: Tensor
    epsilon: Tensor
    objective: float
    discrepancy: Tensor
    ball_violation: float
    ineq_violation: float
    iterations: int
    converged: bool
    seconds: float
    method: str
    state: dict | None = field(default=None, repr=False)
    excess: float = 0.0

    @property
    def nonzeros(self) -> int:
        return int((self.weight != 0).sum())


@dataclass
class _Problem:
    X: Tensor          # (N, P)
    Y: Tensor          # (M, P)
    V: Tensor | None   # (M, P), None for a linear layer
    omega: Tensor      # (M, P) bool
    eps: Tensor        # () or (M,)
    relu: bool

    @property
    def per_neuron(self) -> bool:
        return self.eps.dim() == 1


def with_bias(x: Tensor) -> Tensor:
    """Samples as rows (P, N) → the paper's layout (N + 1, P): features as rows plus a row of ones."""
    x = torch.as_tensor(x)
    return torch.cat([x.T, torch.ones(1, x.shape[0], dtype=x.dtype, device=x.device)])


def _as_tensor(name: str, a: Any) -> Tensor:
    t = torch.as_tensor(a)
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name} has {bad} NaN or infinite entries: the activations are broken "
                         f"(diverged training or bad inputs), Net-Trim cannot fit them")
    return t.to(torch.float64)


def _problem(X: Any, Y: Any, epsilon: float | Tensor, V: Any | None, relu: bool) -> _Problem:
    """Validate a layer program; every bad input becomes a ValueError saying what is wrong."""
    X, Y = _as_tensor("X", X), _as_tensor("Y", Y)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X (N, P) and Y (M, P) must have the same number of samples P (columns): "
                         f"X is {tuple(X.shape)}, Y is {tuple(Y.shape)}. Did you pass samples as rows? "
                         f"with_bias(x) turns (P, N) activations into the (N + 1, P) layout")
    Y = Y.to(X.device)
    eps = torch.as_tensor(epsilon, dtype=torch.float64).to(X.device)
    if eps.dim() > 1 or (eps.dim() == 1 and eps.numel() != Y.shape[0]):
        raise ValueError(f"epsilon must be a number or one value per output neuron ({Y.shape[0]},), "
                         f"got shape {tuple(eps.shape)}")
    if not torch.isfinite(eps).all() or (eps <= 0).any():
        raise ValueError(f"epsilon must be > 0 (finite), got {eps.tolist()}: with ε = 0 the program "
                         f"asks for an exact fit, which the ℓ1 objective cannot trade against")
    if relu:
        if (Y < 0).any():
            raise ValueError("Y has negative entries, so it is not a ReLU output; for the last (linear) "
                             "layer use relu=False")
        omega = Y > 0
        if not omega.any():
            raise ValueError("empty active set: every output is 0 on these samples (a dead layer or "
                             "all-zero inputs), so there is nothing to keep; check the activations")
        if V is None:
            V = torch.zeros_like(Y)
        else:
            V = _as_tensor("V", V).to(X.device)
            if V.shape != Y.shape:
                raise ValueError(f"V must have Y's shape {tuple(Y.shape)}, got {tuple(V.shape)}")
    else:
        if V is not None:
            raise ValueError("V (the bound off the active set) only exists for ReLU layers; "
                             "a linear layer (relu=False) takes V=None")
        omega = torch.ones_like(Y, dtype=torch.bool)
        _check_linear_feasible(X, Y, eps)
    return _Problem(X, Y, V, omega, eps, relu)


def _check_linear_feasible(X: Tensor, Y: Tensor, eps: Tensor) -> None:
    """The ball ‖UᵀX − Y‖ ≤ ε is empty when ε is below the least-squares residual: say so."""
    sol = torch.linalg.lstsq(X.T.cpu(), Y.T.cpu(), driver="gelsd").solution
    resid = (X.T.cpu() @ sol - Y.T.cpu()).norm(dim=0)  # (M,)
    if eps.dim() == 0:
        least = float(resid.norm())
        if float(eps) < least * (1 - 1e-9):
            raise ValueError(f"infeasible: ε = {float(eps):.6g} is below the least-squares residual "
                             f"{least:.6g}, the smallest discrepancy any weights can reach")
    else:
        short = (eps.cpu() < resid * (1 - 1e-9)).nonzero().flatten()
        if len(short):
            m = int(short[0])
            raise ValueError(f"infeasible: for {len(short)} neuron(s), e.g. neuron {m}, ε = {float(eps[m]):.6g} "
                             f"is below its least-squares residual {float(resid[m]):.6g}")


def _measure(p: _Problem, U: Tensor) -> tuple[Tensor, float, float]:
    """(discrepancy, ball violation, inequality violation) of weights U on problem p, in float64."""
    U = U.to(p.X.device, torch.float64)
    Z = U.T @ p.X
    D = torch.where(p.omega, Z - p.Y, torch.zeros_like(Z))
    if p.per_neuron:
        disc = D.norm(dim=1)
        ball = float(torch.clamp(disc / p.eps - 1, min=0).max())
    else:
        disc = D.norm()
        ball = max(0.0, float(disc / p.eps) - 1)
    ineq = 0.0
    if p.relu:
        over = torch.where(p.omega, torch.zeros_like(Z), torch.clamp(Z - p.V, min=0))
        ineq = float(over.max() / p.Y.abs().max().clamp_min(1e-30))
    return disc.cpu(), ball, ineq


def _excess(p: _Problem, U: Tensor) -> float:
    """‖(UᵀX − V)₊ off Ω‖_F / ε: how far U's outputs rise above their bound where the layer was off."""
    if not p.relu:
        return 0.0
    U = U.to(p.X.device, torch.float64)
    Z = U.T @ p.X
    over = torch.where(p.omega, torch.zeros_like(Z), torch.clamp(Z - p.V, min=0))
    if p.per_neuron:
        return float((over.norm(dim=1) / p.eps).max())
    return float(over.norm() / p.eps)


def constraints(X: Any, Y: Any, U: Any, epsilon: float | Tensor, V: Any | None = None, *,
                relu: bool = True) -> dict:
    """How well weights ``U`` (N, M) satisfy the layer program's constraints, and their ‖U‖₁.

    Returns ``{"l1", "discrepancy", "ball_violation", "ineq_violation", "feasible"}`` as in
    :class:`LayerTrim`; ``feasible`` allows a relative slack of 1e-6.
    """
    p = _problem(X, Y, epsilon, V, relu)
    U = _as_tensor("U", U)
    if U.shape != (p.X.shape[0], p.Y.shape[0]):
        raise ValueError(f"U must be (N, M) = {(p.X.shape[0], p.Y.shape[0])}, got {tuple(U.shape)}")
    disc, ball, ineq = _measure(p, U)
    return {"l1": float(U.abs().sum()), "discrepancy": disc, "ball_violation": ball, "ineq_violation": ineq,
            "feasible": ball <= 1e-6 and ineq <= 1e-6}


# --- exact solution with cvxpy -----------------------------------------------------------------

def solve_cvxpy(X: Any, Y: Any, epsilon: float | Tensor, V: Any | None = None, *, relu: bool = True,
                solver: str = "CLARABEL", reduce: bool | str = "auto", zero_tol: float = 1e-6,
                **solver_options: Any) -> LayerTrim:
    """Solve the Net-Trim layer program exactly with cvxpy.

    ``X`` (N, P), ``Y`` (M, P), ``V`` (M, P) or None (zeros; must be None when ``relu=False``).
    ``reduce``: use the QR reduction of the ball for neurons whose active set is taller than N
    ("auto"/True) or never (False). Entries with |u| ≤ ``zero_tol``·max|U| (interior-point noise,
    ~1e-9 relative) are set to exactly 0. Raises ValueError when the program is infeasible.
    """
    import cvxpy as cp

    p = _problem(X, Y, epsilon, V, relu)
    start = time.time()
    Xn, Yn = p.X.cpu().numpy(), p.Y.cpu().numpy()
    Vn = None if p.V is None else p.V.cpu().numpy()
    om = p.omega.cpu().numpy()
    eps = p.eps.cpu().numpy()
    N, M = Xn.shape[0], Yn.shape[0]
    U = cp.Variable((N, M))
    constraints: list = []
    resid: list = []      # one residual expression per neuron (None when Ω_m is empty)
    const = np.zeros(M)   # the part of each neuron's squared residual the QR reduction took out
    if not p.relu and reduce and Xn.shape[1] > N:
        Q, R = np.linalg.qr(Xn.T)  # (P, N), (N, N): one factorisation shared by all neurons
        C = Q.T @ Yn.T
        const = (Yn ** 2).sum(1) - (C ** 2).sum(0)
        full = R @ U - C
        resid = [full[:, m] for m in range(M)]
    elif not p.relu:
        full = Xn.T @ U - Yn.T
        resid = [full[:, m] for m in range(M)]
    else:
        for m in range(M):
            on, off = om[m], ~om[m]
            if on.any():
                Xo, yo = Xn[:, on].T, Yn[m, on]
                if reduce and Xo.shape[0] > N:
                    Q, R = np.linalg.qr(Xo)
                    c = Q.T @ yo
                    const[m] = yo @ yo - c @ c
                    resid.append(R @ U[:, m] - c)
                else:
                    resid.append(Xo @ U[:, m] - yo)
            else:
                resid.append(None)
            if off.any():
                constraints.append(Xn[:, off].T @ U[:, m] <= Vn[m, off])
    const = np.maximum(const, 0.0)
    if p.per_neuron:
        for m, r in enumerate(resid):
            if r is not None:
                budget = eps[m] ** 2 - const[m]
                if budget < 0:
                    raise ValueError(f"infeasible: neuron {m}'s ε = {eps[m]:.6g} is below its "
                                     f"least-squares residual {math.sqrt(const[m]):.6g}")
                constraints.append(cp.norm(r, 2) <= math.sqrt(budget))
    else:
        budget = float(eps) ** 2 - const.sum()
        if budget < 0:
            raise ValueError(f"infeasible: ε = {float(eps):.6g} is below the least-squares residual "
                             f"{math.sqrt(const.sum()):.6g}")
        constraints.append(cp.norm(cp.hstack([r for r in resid if r is not None]), 2) <= math.sqrt(budget))
    problem = cp.Problem(cp.Minimize(cp.sum(cp.abs(U))), constraints)
    problem.solve(solver=solver, **solver_options)
    if problem.status not in ("optimal", "optimal_inaccurate") or U.value is None:
        raise ValueError(f"cvxpy ({solver}) could not solve the layer program: status {problem.status}")
    u = torch.from_numpy(np.asarray(U.value, dtype=np.float64))
    u = torch.where(u.abs() <= zero_tol * u.abs().max(), torch.zeros_like(u), u)
    disc, ball, ineq = _measure(p, u)
    return LayerTrim(u, p.eps.cpu(), float(u.abs().sum()), disc, ball, ineq,
                     int(problem.solver_stats.num_iters or 0), problem.status == "optimal",
                     time.time() - start, f"cvxpy-{solver.lower()}", excess=_excess(p, u))


# --- ADMM in torch -----------------------------------------------------------------------------

def _default_dtype(p: _Problem) -> torch.dtype:
    N, P = p.X.shape
    return torch.float64 if N * p.Y.shape[0] * P <= 2e7 else torch.float32


def solve_admm(X: Any, Y: Any, epsilon: float | Tensor, V: Any | None = None, *, relu: bool = True,
               rho: float = 10.0, alpha: float = 1.6, max_iter: int = 3000, tol: float = 1e-3,
               obj_tol: float = 1e-6, check_every: int = 10, adapt_every: int = 0, scale: float = 0.03,
               device: str | torch.device | None = None, dtype: torch.dtype | None = None,
               warm: LayerTrim | dict | None = None, balance: bool = False) -> LayerTrim:
    """Solve the Net-Trim layer program with ADMM, all M output neurons at once (torch).

    ``X`` (N, P), ``Y`` (M, P), ``V`` (M, P) or None, as in :func:`solve_cvxpy`. Splitting:
    U (N, M), Z = UᵀX (M, P) kept in the constraint set C, W = U kept sparse (scaled duals Λ, Γ):

        U ← (XXᵀ + I)⁻¹ (X(Z − Λ)ᵀ + W − Γ)      one inverse shared by every neuron (M right-hand sides)
        Z ← Π_C(α UᵀX + (1 − α) Z + Λ)            ball on Ω, min(·, V) off Ω
        W ← soft(α U + (1 − α) W + Γ, 1/ρ)         exactly sparse
        Λ ← Λ + α UᵀX + (1 − α) Z_old − Z,  Γ ← Γ + α U + (1 − α) W_old − W

    with over-relaxation α, after scaling X, Y, V, ε by c₀ = ``scale``·√max diag(XXᵀ) (U is
    unchanged by it; ``scale`` weighs the fit against the copy U = W, the Net-Trim code uses 0.3;
    0.03 with ρ = 10 converged fastest on the book's layers). All-zero input rows are dropped (their
    weights are 0 at the optimum). ``adapt_every`` > 0 rebalances ρ (OSQP's rule) every that many
    iterations; off by default, as it slowed these problems down.

    Every ``check_every`` iterations the relative primal residual ‖(UᵀX − Z, U − W)‖ and dual
    residual (Boyd et al. 2011, §3.3) are measured; it stops when the primal one is ≤ ``tol`` and
    either the dual one is ≤ ``tol`` or ‖W‖₁ changed by ≤ ``obj_tol`` (relative) since the last check
    (``state["stop"]`` says which), else after ``max_iter``. The result's ``ball_violation`` and
    ``ineq_violation`` measure how far the returned W is from feasible. ``dtype``: default float64 for
    N·M·P ≤ 2·10⁷, else float32. ``warm``: a previous result (or its ``state``) of the same shapes to
    start from, e.g. the neighbouring ε of a sweep.

    ``balance``: solve the same program in rescaled coordinates, for layers whose inputs and weights
    are far from order one (a link-normalized network: weights of order 1/(N·M), inputs that shrink
    layer after layer next to the constant bias row). Each input row is divided by its RMS d_i and Y,
    V, ε by the RMS s of Y, so the unknowns become Ũ_i = U_i·d_i/s; the objective ‖U‖₁ = s·Σ_i |Ũ_i|/d_i
    is kept exactly by a soft-threshold of (1/d_i)/ρ per row (normalised to mean 1). The optimum is
    the same program's; only the path of the iterations changes. Off by default (the book's trained
    layers are already of order one, and their results stay as they were).
    """
    p = _problem(X, Y, epsilon, V, relu)
    dev = torch.device(device) if device is not None else p.X.device
    dt = dtype or _default_dtype(p)
    start = time.time()
    live = p.X.abs().sum(1) > 0  # all-zero input rows (e.g. MNIST's border pixels): their weights are 0
    if not live.any():
        raise ValueError("X is all zeros: no input signal to fit")
    X_ = p.X[live].to(dev, dt)
    Y_, V_, eps_ = p.Y.to(dev, dt), None if p.V is None else p.V.to(dev, dt), p.eps.to(dev, dt)
    row_rms, out_rms, l1_weight = None, 1.0, None
    if balance:
        row_rms = X_.pow(2).mean(1).sqrt()  # > 0: all-zero rows were dropped
        out_rms = float(Y_.pow(2).mean().sqrt()) or 1.0
        X_ = X_ / row_rms.unsqueeze(1)
        Y_, eps_ = Y_ / out_rms, eps_ / out_rms
        V_ = None if V_ is None else V_ / out_rms
        l1_weight = (1 / row_rms) / (1 / row_rms).mean()
        l1_weight = l1_weight.unsqueeze(1)  # (N, 1): one threshold per input row
    c0 = scale * float(X_.pow(2).sum(1).max().sqrt())
    Xs = X_ / c0
    Ys = Y_ / c0
    Vs = None if V_ is None else V_ / c0
    omega = p.omega.to(dev)
    eps = eps_ / c0
    N, M, P = Xs.shape[0], Ys.shape[0], Xs.shape[1]
    # (XXᵀ + I)⁻¹ once, in float64: a matmul per iteration is faster than two triangular solves.
    Xd = Xs.double()
    inv = torch.cholesky_inverse(torch.linalg.cholesky(Xd @ Xd.T + torch.eye(N, dtype=torch.float64, device=dev))).to(dt)

    def project(Q: Tensor) -> Tensor:
        D = torch.where(omega, Q - Ys, torch.zeros_like(Q))
        if p.per_neuron:
            norm = D.norm(dim=1, keepdim=True)
            scale = torch.clamp(eps.unsqueeze(1) / norm.clamp_min(1e-300), max=1.0)
        else:
            scale = torch.clamp(eps / D.norm().clamp_min(1e-300), max=1.0)
        ball = Ys + scale * D
        if Vs is None:
            return ball
        return torch.where(omega, ball, torch.minimum(Q, Vs))

    state = warm.state if isinstance(warm, LayerTrim) else warm
    N_all = p.X.shape[0]
    if state is not None and tuple(state["U"].shape) == (N_all, M) and tuple(state["Z"].shape) == (M, P):
        U, W, Gam = (state[k][live.cpu()].to(dev, dt) for k in ("U", "W", "Gam"))
        Z, Lam = state["Z"].to(dev, dt), state["Lam"].to(dev, dt)
        rho = float(state["rho"])
    else:
        U = torch.zeros(N, M, dtype=dt, device=dev)
        W = torch.zeros_like(U)
        Z = project(torch.zeros(M, P, dtype=dt, device=dev))
        Lam = torch.zeros(M, P, dtype=dt, device=dev)
        Gam = torch.zeros_like(U)
    converged, it, r_rel, s_rel, obj_prev, stop = False, 0, math.inf, math.inf, math.inf, "max_iter"
    for it in range(1, max_iter + 1):
        U = inv @ (Xs @ (Z - Lam).T + (W - Gam))
        AU = U.T @ Xs
        Z_old, W_old = Z, W
        AUh = alpha * AU + (1 - alpha) * Z
        Uh = alpha * U + (1 - alpha) * W
        Z = project(AUh + Lam)
        G = Uh + Gam
        threshold = 1.0 / rho if l1_weight is None else l1_weight / rho
        # soft threshold sign(G)·max(|G| − t, 0); softshrink computes the same values in one pass (5x faster)
        W = F.softshrink(G, threshold) if l1_weight is None else torch.sign(G) * torch.clamp(G.abs() - threshold, min=0)
        Lam = Lam + AUh - Z
        Gam = Gam + Uh - W
        if it % check_every == 0 or it == max_iter:
            r = math.sqrt(float((AU - Z).pow(2).sum() + (U - W).pow(2).sum()))
            s = rho * float((Xs @ (Z - Z_old).T + (W - W_old)).norm())
            scale_pri = max(math.sqrt(float(AU.pow(2).sum() + U.pow(2).sum())),
                            math.sqrt(float(Z.pow(2).sum() + W.pow(2).sum())))
            # ‖Xs Λᵀ + Γ‖ itself vanishes at the optimum (U has no objective of its own): use the parts.
            scale_dual = rho * max(float((Xs @ Lam.T).norm()), float(Gam.norm()))
            r_rel, s_rel = r / max(scale_pri, 1e-300), s / max(scale_dual, 1e-300)
            obj = float(W.abs().sum() if l1_weight is None else (W.abs() * l1_weight).sum())
            stalled = abs(obj - obj_prev) <= obj_tol * max(obj, 1e-300)
            obj_prev = obj
            if r <= tol * scale_pri + 1e-12 and (s <= tol * scale_dual + 1e-12 or stalled):
                converged, stop = True, "converged" if s <= tol * scale_dual + 1e-12 else "objective stalled"
                break
            if adapt_every and it % adapt_every == 0:
                # OSQP's rule: balance the *relative* residuals; change ρ only by a sizeable factor.
                ratio = math.sqrt((r / max(scale_pri, 1e-300)) / max(s / max(scale_dual, 1e-300), 1e-300))
                if ratio > 5 or ratio < 0.2:
                    ratio = min(max(ratio, 1e-3), 1e3)
                    rho, Lam, Gam = rho * ratio, Lam / ratio, Gam / ratio
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.time() - start
    def full(T: Tensor) -> Tensor:  # put the all-zero input rows back, as zeros
        out = torch.zeros(N_all, M, dtype=torch.float64)
        out[live.cpu()] = T.to("cpu", torch.float64)
        return out

    u = full(W) if row_rms is None else full(W * (out_rms / row_rms).unsqueeze(1))  # back to the program's U
    disc, ball, ineq = _measure(p, u)
    state = {"U": full(U), "Z": Z.cpu(), "W": full(W), "Lam": Lam.cpu(), "Gam": full(Gam), "rho": rho,
             "primal_residual": r_rel, "dual_residual": s_rel, "stop": stop}
    return LayerTrim(u, p.eps.cpu(), float(u.abs().sum()), disc, ball, ineq, it, converged, seconds,
                     f"admm-{dev.type}", state, excess=_excess(p, u))


def trim_layer(X: Any, Y: Any, epsilon: float | Tensor, V: Any | None = None, *, relu: bool = True,
               method: str = "admm", **options: Any) -> LayerTrim:
    """One layer program, solved by ``method`` = "admm" (:func:`solve_admm`) or "cvxpy" (:func:`solve_cvxpy`)."""
    if method == "admm":
        return solve_admm(X, Y, epsilon, V, relu=relu, **options)
    if method == "cvxpy":
        return solve_cvxpy(X, Y, epsilon, V, relu=relu, **options)
    raise ValueError(f"unknown method {method!r}; choose 'admm' or 'cvxpy'")


def random_relu_layer(n_in: int, n_out: int, samples: int, seed: int = 0, density: float = 0.5,
                      small: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """A synthetic ReLU layer for demonstrations, tests and benchmarks: ``(X, Y, U)``.

    Inputs are themselves ReLU activations (non-negative, about half zero, as in a hidden layer):
    ``X`` = [relu(G); 1] (n_in + 1, samples) with G standard normal. The true weights ``U``
    (n_in + 1, n_out) keep each entry with probability ``density`` (scaled by 1/√(density·n_in)),
    and ``Y`` = relu(UᵀX) (n_out, samples). ``small`` > 0 adds a dense layer of small weights
    N(0, small²/n_in) to every entry — a sparse core plus clutter, like a trained layer. float64,
    deterministic given ``seed``.
    """
    if min(n_in, n_out, samples) < 1 or not 0 < density <= 1:
        raise ValueError(f"need n_in, n_out, samples ≥ 1 and density in (0, 1], got {n_in}, {n_out}, {samples}, {density}")
    g = torch.Generator().manual_seed(int(seed))
    x = torch.relu(torch.randn(samples, n_in, generator=g, dtype=torch.float64))
    keep = (torch.rand(n_in + 1, n_out, generator=g) < density).double()
    U = torch.randn(n_in + 1, n_out, generator=g, dtype=torch.float64) * keep / math.sqrt(density * n_in)
    if small > 0:
        U = U + small * torch.randn(n_in + 1, n_out, generator=g, dtype=torch.float64) / math.sqrt(n_in)
    U[-1] = 0.1 * torch.randn(n_out, generator=g, dtype=torch.float64)  # biases
    X = with_bias(x)
    return X, torch.relu(U.T @ X), U


def compare_solvers(X: Any, Y: Any, epsilon: float | Tensor, V: Any | None = None, *, relu: bool = True,
                    zero_tol: float = 1e-5, nonzero_tol: float = 1e-3, admm: dict | None = None,
                    cvxpy: dict | None = None) -> dict:
    """Solve one layer program with both solvers and compare them.

    Returns objectives, their relative gap |ADMM − cvxpy| / cvxpy, support sizes (|u| > ``zero_tol``·
    max|U|), ``support_diff`` = entries that one solver clearly keeps (> ``nonzero_tol``·max) and the
    other clearly drops (≤ ``zero_tol``·max), the ADMM's constraint violations, both wall times and
    ``speedup`` = cvxpy time / ADMM time.
    """
    a = solve_admm(X, Y, epsilon, V, relu=relu, **(admm or {}))
    c = solve_cvxpy(X, Y, epsilon, V, relu=relu, **(cvxpy or {}))

    def rel(U: Tensor) -> Tensor:
        return U.abs() / U.abs().max().clamp_min(1e-300)

    ra, rc = rel(a.weight), rel(c.weight)
    clash = ((ra > nonzero_tol) & (rc <= zero_tol)) | ((rc > nonzero_tol) & (ra <= zero_tol))
    return {"admm": a, "cvxpy": c, "objective_admm": a.objective, "objective_cvxpy": c.objective,
            "gap": abs(a.objective - c.objective) / c.objective,
            "support_admm": int((ra > zero_tol).sum()), "support_cvxpy": int((rc > zero_tol).sum()),
            "support_diff": int(clash.sum()),
            "ball_violation": a.ball_violation, "ineq_violation": a.ineq_violation,
            "seconds_admm": a.seconds, "seconds_cvxpy": c.seconds, "speedup": c.seconds / max(a.seconds, 1e-9)}


# --- whole networks ----------------------------------------------------------------------------

def _check_mlp(model: Any, run: int) -> None:
    if not isinstance(model, MLP):
        raise ValueError(f"Net-Trim here trims a lotterylib MLP (fully connected ReLU net), got {type(model).__name__}")
    if not 0 <= run < model.runs:
        raise ValueError(f"run {run} is not in the population of {model.runs} runs")


def layer_params(model: MLP, run: int = 0) -> list[tuple[Tensor, Tensor]]:
    """The effective (weight (out, in), bias (out,)) of every layer of run ``run``, float64 copies."""
    _check_mlp(model, run)
    out = []
    for layer in model.layers:
        b = layer.bias[run] if layer.bias is not None else torch.zeros(layer.out_features)
        out.append((layer.weight[run].detach().cpu().double().clone(), b.detach().cpu().double().clone()))
    return out


def _forward(params: Sequence[tuple[Tensor, Tensor]], x: Tensor) -> list[Tensor]:
    """[x, h¹, …, logits] with samples as rows, float64."""
    acts = [x.double()]
    for i, (w, b) in enumerate(params):
        z = acts[-1] @ w.T + b
        acts.append(torch.relu(z) if i < len(params) - 1 else z)
    return acts


@torch.no_grad()
def signals(model: MLP, x: Tensor, run: int = 0) -> list[Tensor]:
    """The activations of run ``run`` on inputs ``x`` (P, in): [x, relu layer 1, …, logits], each (P, width)."""
    x = torch.as_tensor(x)
    params = layer_params(model, run)
    if x.dim() != 2 or x.shape[1] != params[0][0].shape[1]:
        raise ValueError(f"expected inputs x of shape (P, {params[0][0].shape[1]}), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("the inputs x contain NaN or infinite values")
    return _forward(params, x.cpu())


@dataclass
class NetTrim:
    """A trimmed network: sparse ``weights`` (out, in) and ``biases`` (out,) of every layer.

    ``layers``: the per-layer :class:`LayerTrim` (its ``weight`` is the paper's U = [Wᵀ; bᵀ]).
    ``epsilons``: ε_ℓ used per layer; ``gammas``: cascade's γ_ℓ (1 for parallel). ``notes``: any
    documented fallback that was taken (e.g. an ε floored or raised to keep a layer feasible).
    """

    mode: str
    weights: list[Tensor]
    biases: list[Tensor]
    layers: list[LayerTrim]
    epsilons: list[float]
    gammas: list[float]
    original_nonzeros: list[int]
    notes: list[str] = field(default_factory=list)

    @property
    def nonzeros(self) -> list[int]:
        """Non-zero weights per layer (biases excluded, as everywhere in the book)."""
        return [int((w != 0).sum()) for w in self.weights]

    def fraction_kept(self) -> float:
        return sum(self.nonzeros) / sum(w.numel() for w in self.weights)

    def params(self) -> list[tuple[Tensor, Tensor]]:
        return list(zip(self.weights, self.biases))

    def model(self) -> MLP:
        return to_model(self.params())

    def summary(self) -> dict:
        return {"mode": self.mode, "nonzeros": self.nonzeros, "original_nonzeros": self.original_nonzeros,
                "epsilons": self.epsilons, "gammas": self.gammas, "notes": self.notes,
                "iterations": [t.iterations for t in self.layers], "converged": [t.converged for t in self.layers],
                "seconds": [t.seconds for t in self.layers],
                "ball_violation": [t.ball_violation for t in self.layers],
                "ineq_violation": [t.ineq_violation for t in self.layers]}


def _split(U: Tensor) -> tuple[Tensor, Tensor]:
    return U[:-1].T.contiguous(), U[-1].clone()


def _check_gain(name: str, g: float) -> float:
    g = float(g)
    if not (math.isfinite(g) and g > 0):
        raise ValueError(f"{name} must be > 0, got {g}")
    return g


def _gains(gain: float | Sequence[float], layers: int) -> list[float]:
    if isinstance(gain, (int, float)):
        return [_check_gain("epsilon_gain", gain)] * layers
    gains = [_check_gain("epsilon_gain", g) for g in gain]
    if len(gains) != layers:
        raise ValueError(f"need one epsilon gain per layer ({layers}), got {len(gains)}")
    return gains


def parallel(model: MLP, x: Tensor, epsilon_gain: float | Sequence[float], *, run: int = 0,
             method: str = "admm", warm: NetTrim | None = None, **options: Any) -> NetTrim:
    """Parallel Net-Trim: each layer ℓ solved on the original network's input/output activations.

    ``x`` (P, in): the samples the constraints are written on. ε_ℓ = gain_ℓ·‖Y^ℓ‖_F (the Net-Trim
    code's ``epsilon_gain``). Hidden layers use the ReLU program with V = 0, the last layer the
    linear one. ``warm``: a previous result of the same network (e.g. the next ε of a sweep).
    """
    acts = signals(model, x, run)
    n = len(acts) - 1
    gains = _gains(epsilon_gain, n)
    params = layer_params(model, run)
    weights, biases, layers, epsilons = [], [], [], []
    for i in range(n):
        X, Y = with_bias(acts[i]), acts[i + 1].T
        eps = gains[i] * float(Y.norm())
        opts = dict(options)
        if method == "admm" and warm is not None:
            opts["warm"] = warm.layers[i]
        t = trim_layer(X, Y, eps, relu=i < n - 1, method=method, **opts)
        w, b = _split(t.weight)
        weights.append(w), biases.append(b), layers.append(t), epsilons.append(eps)
    return NetTrim("parallel", weights, biases, layers, epsilons, [1.0] * n,
                   [int((w != 0).sum()) for w, _ in params])


def cascade(model: MLP, x: Tensor, epsilon_gain: float, *, gamma: float | Sequence[float] = 1.1,
            kappa: float = 1.0, run: int = 0, method: str = "admm", warm: NetTrim | None = None,
            eps_floor: float = 1e-6, **options: Any) -> NetTrim:
    """Cascade Net-Trim: layer ℓ ≥ 2 sees the trimmed layer ℓ−1's outputs Ŷ.

    Layer 1: ε₁ = ``epsilon_gain``·‖Y¹‖_F, V = 0. Hidden layer ℓ ≥ 2: V = W_ℓᵀŶ (the original
    weights on the new inputs) and ε_ℓ² = γ_ℓ Σ_Ω (w_mᵀŷ_p − y_mp)², so the original W_ℓ is
    feasible (supp. eq. S.4). Last layer: ε_L = κ·√γ_L·‖W_LᵀŶ − Y^L‖_F with the risk coefficient
    κ ∈ (0, 1] (supp. §2).

    Documented fallbacks (each recorded in ``notes`` and warned about): an ε_ℓ that comes out below
    ``eps_floor``·‖Y^ℓ‖_F (the trimmed inputs reproduce the layer exactly) is raised to that floor;
    a last-layer ε below the least-squares residual (κ < 1 can make the program infeasible) is raised
    to 1.01× that residual.
    """
    acts = signals(model, x, run)
    n = len(acts) - 1
    gammas = [gamma] * n if isinstance(gamma, (int, float)) else list(gamma)
    if len(gammas) != n:
        raise ValueError(f"need one γ per layer ({n}), got {len(gammas)}")
    if any(not g >= 1 for g in gammas):
        raise ValueError(f"γ must be ≥ 1 (it keeps the original weights feasible), got {gammas}")
    if not 0 < kappa <= 1:
        raise ValueError(f"the risk coefficient κ must be in (0, 1], got {kappa}")
    gain = _check_gain("epsilon_gain", epsilon_gain)
    params = layer_params(model, run)
    gammas[0] = 1.0
    x_hat = acts[0]
    weights, biases, layers, epsilons, notes = [], [], [], [], []
    for i, (w_orig, b_orig) in enumerate(params):
        X, Y = with_bias(x_hat), acts[i + 1].T
        last = i == n - 1
        V = None
        if i == 0:
            eps = gain * float(Y.norm())
            V = None if last else torch.zeros_like(Y)
        else:
            Zw = w_orig @ x_hat.T + b_orig.unsqueeze(1)  # original weights on the trimmed inputs (M, P)
            if last:
                eps = kappa * math.sqrt(gammas[i]) * float((Zw - Y).norm())
            else:
                omega = Y > 0
                eps = math.sqrt(gammas[i] * float(((Zw - Y)[omega]).pow(2).sum()))
                V = Zw
            floor = eps_floor * float(Y.norm())
            if eps < floor:
                notes.append(f"layer {i + 1}: ε = {eps:.3g} raised to the floor {floor:.3g}")
                eps = floor
            if last:
                least = _lstsq_residual(X, Y)
                if eps < least * 1.0001:
                    notes.append(f"layer {i + 1}: κ-shrunk ε = {eps:.4g} is below the least-squares residual "
                                 f"{least:.4g}; raised to {1.01 * least:.4g}")
                    eps = 1.01 * least
        opts = dict(options)
        if method == "admm" and warm is not None:
            opts["warm"] = warm.layers[i]
        t = trim_layer(X, Y, eps, V, relu=not last, method=method, **opts)
        w, b = _split(t.weight)
        weights.append(w), biases.append(b), layers.append(t), epsilons.append(eps)
        if not last:
            x_hat = torch.relu(x_hat @ w.T + b)
    for note in notes:
        warnings.warn(f"cascade Net-Trim: {note}", RuntimeWarning, stacklevel=2)
    return NetTrim("cascade", weights, biases, layers, epsilons, gammas,
                   [int((w != 0).sum()) for w, _ in params], notes)


def _lstsq_residual(X: Tensor, Y: Tensor) -> float:
    sol = torch.linalg.lstsq(X.T, Y.T, driver="gelsd").solution
    return float((X.T @ sol - Y.T).norm())


# --- back into the book's models, and comparisons ----------------------------------------------

def to_model(params: Sequence[tuple[Tensor, Tensor]]) -> MLP:
    """A one-run :class:`~lotterylib.models.MLP` holding ``params`` [(W (out, in), b (out,))], with
    :class:`~lotterylib.weightfn.Masked` attached (mask = the non-zeros), as every pruned net of the book."""
    widths = [params[0][0].shape[1]] + [w.shape[0] for w, _ in params]
    model = MLP(1, widths)
    with torch.no_grad():
        for layer, (w, b) in zip(model.layers, params):
            layer.weight.copy_(w.float().unsqueeze(0))
            layer.bias.copy_(b.float().unsqueeze(0))
            weightfn.attach(layer, weightfn.Masked((w != 0).float().unsqueeze(0)))
    return model


def nonzeros(model: MLP, run: int = 0) -> list[int]:
    """Non-zero effective weights per layer of run ``run`` (biases excluded)."""
    return [int((w != 0).sum()) for w, _ in layer_params(model, run)]


def magnitude_prune(model: MLP, keep: Sequence[int], run: int = 0) -> MLP:
    """Han et al.'s magnitude pruning *without retraining*: keep the ``keep[ℓ]`` largest |w| of each layer.

    Returns a one-run MLP with :class:`~lotterylib.weightfn.Masked` attached; biases are kept.
    """
    params = layer_params(model, run)
    if len(keep) != len(params):
        raise ValueError(f"need one count per layer ({len(params)}), got {len(keep)}")
    pruned = []
    for (w, b), k in zip(params, keep):
        if not 0 <= int(k) <= w.numel():
            raise ValueError(f"cannot keep {k} of {w.numel()} weights")
        mask = weightfn.topk_mask(w.abs().unsqueeze(0), max(int(k), 1) / w.numel())[0] if k else torch.zeros_like(w)
        pruned.append((w * mask, b))
    return to_model(pruned)


@torch.no_grad()
def relative_discrepancy(reference: MLP, other: MLP, x: Tensor) -> float:
    """ε_rd = ‖Z − Ẑ‖_F / ‖Z‖_F between the two networks' outputs (logits) on ``x`` (run 0 of each)."""
    z, zh = signals(reference, x)[-1], signals(other, x)[-1]
    return float((z - zh).norm() / z.norm())


@torch.no_grad()
def layer_discrepancies(reference: MLP, other: MLP, x: Tensor) -> list[float]:
    """‖Ŷ^ℓ − Y^ℓ‖_F for every layer ℓ = 1..L (absolute), on ``x``."""
    a, b = signals(reference, x), signals(other, x)
    return [float((u - v).norm()) for u, v in zip(a[1:], b[1:])]


def link_normalize(params: Sequence[tuple[Tensor, Tensor]]) -> tuple[list[tuple[Tensor, Tensor]], float]:
    """The same ReLU network with every layer link-normalized: ‖[W_ℓ b_ℓ]‖₁ = 1 (weights and bias, the
    paper's U_ℓ with the bias as the weight of a constant input). Returns (params, scale): the new
    network's outputs are ``scale`` × the old ones (scale > 0), so its decision is the same.

    The theorems (NIPS 2017 Theorems 1–2; supp. §4.2–4.3, (S.19) and (S.26)) assume this: their proofs
    bound ‖Ŵ_ℓᵀ(Ŷ − Y)‖_F by ‖Ŵ_ℓ‖_F‖Ŷ − Y‖_F and use ‖Ŵ_ℓ‖_F ≤ ‖Ŵ_ℓ‖₁ ≤ ‖W_ℓ‖₁ = 1, so that no layer
    can amplify an error. A ReLU is positively homogeneous, relu(c·z) = c·relu(z) for c > 0, so
    dividing layer ℓ by c_ℓ scales every later activation by 1/(c_1⋯c_ℓ); the later biases are divided
    by the same product to keep up, which is why each c_ℓ is computed after the layers before it.
    """
    out, scale = [], 1.0
    for w, b in params:
        b = b / scale  # the inputs of this layer are already 1/scale of the original ones
        c = float(w.abs().sum() + b.abs().sum())
        if not c > 0:
            raise ValueError("a layer with all-zero weights and bias cannot be link-normalized")
        out.append((w / c, b / c))
        scale *= c
    return out, 1.0 / scale


def solver_slack(result: NetTrim) -> list[float]:
    """Per layer ℓ, the relative room a theorem's bound needs for a solver whose answers are only
    nearly feasible: Π_{j ≤ ℓ} (1 + ball_j + excess_j) − 1, from each layer's measured violations
    (:class:`LayerTrim`). The proofs use feasibility once per layer: an answer whose ball is
    overshot by ball_j·ε_j, and whose off-Ω outputs rise by excess_j·ε_j, errs by at most
    (1 + ball_j + excess_j)·ε_j where an exact solution errs by ε_j, and the chain multiplies these.
    Zero for exact solutions (e.g. cvxpy's, up to its tolerance)."""
    out, factor = [], 1.0
    for t in result.layers:
        factor *= 1.0 + t.ball_violation + t.excess
        out.append(factor - 1.0)
    return out


def theorem_bounds(result: NetTrim) -> list[float]:
    """The guarantee's bound on ‖Ŷ^ℓ − Y^ℓ‖_F per layer, as the theorems state it.

    Parallel (Theorem 1): Σ_{j ≤ ℓ} ε_j. Cascade (Theorem 2): ε₁·√(Π_{2 ≤ j ≤ ℓ} γ_j). Both theorems
    assume a *link-normalized* network; for layer 1 the bound ε₁ holds for any network (feasibility
    of the ReLU program with V = 0 makes the output error on Ω the only error).
    """
    if result.mode == "parallel":
        return list(np.cumsum(result.epsilons))
    return [result.epsilons[0] * math.sqrt(float(np.prod(result.gammas[1:l + 1]))) for l in range(len(result.epsilons))]
