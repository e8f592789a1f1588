"""Checkers of chapter 08's exercises: a best rank-k factorisation, and the distillation loss.

* :func:`check_low_rank` — ``low_rank(W, k) -> (A, B)`` with A (out, k), B (k, in) and A @ B the best
  rank-k approximation of W: its squared error must equal the Eckart–Young optimum Σ_{i>k} σ_i²
  (:func:`lotterylib.lowrank.best_error`), exactly W at full rank, zero at k = 0.
* :func:`check_distillation_loss` — ``distillation_loss(student, teacher, labels, T, alpha)`` per example,
  against :func:`lotterylib.distill.distillation_loss`: T² scaling, softmax at T on both sides, KL from
  the teacher to the student, hard labels at T = 1.
"""

from __future__ import annotations

from typing import Callable

import torch

from .. import distill, lowrank
from . import Case, Report, run


def _matrix(out: int, inp: int, seed: int) -> torch.Tensor:
    return torch.randn(out, inp, generator=torch.Generator().manual_seed(seed))


def _check_rank(w: torch.Tensor, k: int) -> Callable:
    def test(fn):
        got = fn(w.clone(), k)
        assert isinstance(got, tuple) and len(got) == 2, "return a pair (A, B)"
        a, b = got
        out, inp = w.shape
        assert tuple(a.shape) == (out, k) and tuple(b.shape) == (k, inp), (
            f"A must be ({out}, {k}) and B ({k}, {inp}); got {tuple(a.shape)} and {tuple(b.shape)} "
            "(A = U_k Σ_k^½ takes the first k columns of U, B = Σ_k^½ V_kᵀ the first k rows of Vᵀ)")
        err = float((w.double() - (a.double() @ b.double())).square().sum())
        best = lowrank.best_error(lowrank.singular_values(w), k)
        assert abs(err - best) <= 1e-4 * max(1.0, best), (
            f"‖W − AB‖² = {err:.5g}, but the best rank-{k} error is Σ_(i>k) σ_i² = {best:.5g}: keep the "
            "k LARGEST singular values (torch.linalg.svd returns them in decreasing order) and multiply by σ once")
    return test


def low_rank_cases() -> list[Case]:
    w = _matrix(12, 8, 0)
    tall, wide = _matrix(30, 6, 1), _matrix(5, 40, 2)
    return [
        Case("rank 3 of a 12×8 matrix", _check_rank(w, 3)),
        Case("rank 1", _check_rank(w, 1)),
        Case("full rank (k = 8) reproduces W", _check_rank(w, 8)),
        Case("k = 0 gives empty factors", _check_rank(w, 0)),
        Case("a tall 30×6 matrix, rank 4", _check_rank(tall, 4)),
        Case("a wide 5×40 matrix, rank 2", _check_rank(wide, 2)),
    ]


def check_low_rank(fn: Callable, show: bool = True) -> Report:
    """Check ``low_rank(W, k) -> (A, B)`` (the best rank-k factors) against the Eckart–Young optimum."""
    return run("low_rank", fn, low_rank_cases(), show)


def _check_kd(batch: int, temperature: float, alpha: float, seed: int, scale: float = 3.0) -> Callable:
    def test(fn):
        g = torch.Generator().manual_seed(seed)
        s = scale * torch.randn(batch, 10, generator=g)
        t = scale * torch.randn(batch, 10, generator=g)
        y = torch.randint(0, 10, (batch,), generator=g)
        got = fn(s.clone(), t.clone(), y.clone(), temperature, alpha)
        want = distill.distillation_loss(s, t, y, temperature, alpha)
        assert torch.is_tensor(got) and tuple(got.shape) == tuple(want.shape), (
            f"return one loss per example, shape {tuple(want.shape)}; got "
            f"{tuple(got.shape) if torch.is_tensor(got) else type(got).__name__}")
        if not torch.allclose(got.double(), want.double(), rtol=1e-4, atol=1e-5):
            ratio = float(got.sum() / want.sum()) if float(want.sum()) else float("nan")
            assert False, (
                f"at T = {temperature}, α = {alpha} the loss differs (yours/expected = {ratio:.3g}): the soft term is "
                "α·T²·KL(p_teacher ‖ p_student) with BOTH softmaxes at temperature T (teacher first: Σ p_t log(p_t/p_s)), "
                "the hard term (1 − α)·cross-entropy of the labels at T = 1")
    return test


def distillation_cases() -> list[Case]:
    return [
        Case("T = 1, soft targets only", _check_kd(8, 1.0, 1.0, 0)),
        Case("T = 4, soft targets only (the T² factor)", _check_kd(8, 4.0, 1.0, 1)),
        Case("T = 4, α = 0.5 (both terms)", _check_kd(8, 4.0, 0.5, 2)),
        Case("α = 0: hard labels only", _check_kd(8, 3.0, 0.0, 3)),
        Case("T = 20, confident logits", _check_kd(8, 20.0, 0.9, 4, scale=10.0)),
        Case("one example", _check_kd(1, 2.0, 0.7, 5)),
    ]


def check_distillation_loss(fn: Callable, show: bool = True) -> Report:
    """Check ``distillation_loss(student_logits, teacher_logits, labels, T, alpha)`` (per example, (B,))."""
    return run("distillation_loss", fn, distillation_cases(), show)
