"""Chapter 08's checkers pass on the solutions and fail on the stubs and on typical mistakes."""

import torch
import torch.nn.functional as F

from lotterylib.exercises import stub
from lotterylib.exercises.structure import check_distillation_loss, check_low_rank


def low_rank(W, k):
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    root = S[:k].sqrt()
    return U[:, :k] * root, root[:, None] * Vh[:k]


def low_rank_smallest(W, k):  # keeps the k smallest singular values
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    n = S.numel()
    return U[:, n - k:] * S[n - k:], Vh[n - k:]


def low_rank_sigma_twice(W, k):  # σ on both sides: A B = U Σ² Vᵀ
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    return U[:, :k] * S[:k], S[:k, None] * Vh[:k]


def low_rank_off_by_one(W, k):
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    k = max(k - 1, 0)
    return U[:, :k] * S[:k], Vh[:k]


def kd(student, teacher, labels, T, alpha):
    p_t = F.softmax(teacher / T, -1)
    soft = (p_t * (F.log_softmax(teacher / T, -1) - F.log_softmax(student / T, -1))).sum(-1)
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(student, labels, reduction="none")


def kd_no_t2(student, teacher, labels, T, alpha):
    p_t = F.softmax(teacher / T, -1)
    soft = (p_t * (F.log_softmax(teacher / T, -1) - F.log_softmax(student / T, -1))).sum(-1)
    return alpha * soft + (1 - alpha) * F.cross_entropy(student, labels, reduction="none")


def kd_teacher_only_at_T(student, teacher, labels, T, alpha):
    p_t = F.softmax(teacher / T, -1)
    soft = (p_t * (F.log_softmax(teacher / T, -1) - F.log_softmax(student, -1))).sum(-1)
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(student, labels, reduction="none")


def kd_reversed_kl(student, teacher, labels, T, alpha):
    p_s = F.softmax(student / T, -1)
    soft = (p_s * (F.log_softmax(student / T, -1) - F.log_softmax(teacher / T, -1))).sum(-1)
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(student, labels, reduction="none")


def test_low_rank_checker():
    assert check_low_rank(low_rank, show=False)
    for wrong in (stub, low_rank_smallest, low_rank_sigma_twice, low_rank_off_by_one):
        report = check_low_rank(wrong, show=False)
        assert not report and report.failures, wrong


def test_distillation_checker():
    assert check_distillation_loss(kd, show=False)
    for wrong in (stub, kd_no_t2, kd_teacher_only_at_T, kd_reversed_kl):
        report = check_distillation_loss(wrong, show=False)
        assert not report and report.failures, wrong
