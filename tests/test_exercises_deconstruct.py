"""Chapter 03's checkers pass the worked solutions and fail the stub and typical mistakes."""

from __future__ import annotations

import pytest
import torch

from lotterylib.exercises import stub
from lotterylib.exercises.deconstruct import check_criterion_mask, check_sampled_mask


# --- a mask criterion, per layer -------------------------------------------------------------------

def _keep_top(score: torch.Tensor, k: int) -> torch.Tensor:
    mask = torch.zeros(score.numel())
    mask[torch.topk(score.reshape(-1), k).indices] = 1.0
    return mask.reshape(score.shape)


def magnitude_increase_masks(w_init, w_final, fraction_kept):
    """The solution: per layer, the round(fraction_kept · n) largest |w_f| − |w_i| (at least one)."""
    out = {}
    for name in w_init:
        score = w_final[name].abs() - w_init[name].abs()
        out[name] = _keep_top(score, max(1, round(fraction_kept * score.numel())))
    return out


def same_sign_masks(w_init, w_final, fraction_kept):
    out = {}
    for name in w_init:
        w_i, w_f = w_init[name], w_final[name]
        score = torch.where(torch.sign(w_i) == torch.sign(w_f), w_f.abs(), torch.zeros_like(w_f))
        out[name] = _keep_top(score, max(1, round(fraction_kept * score.numel())))
    return out


def per_network(w_init, w_final, fraction_kept):
    """Mistake: one threshold over the whole network."""
    scores = {k: w_final[k].abs() - w_init[k].abs() for k in w_init}
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    k = max(1, round(fraction_kept * flat.numel()))
    threshold = torch.topk(flat, k).values[-1]
    return {name: (s >= threshold).float() for name, s in scores.items()}


def keeps_smallest(w_init, w_final, fraction_kept):
    """Mistake: keeps the lowest scores."""
    out = {}
    for name in w_init:
        score = -(w_final[name].abs() - w_init[name].abs())
        out[name] = _keep_top(score, max(1, round(fraction_kept * score.numel())))
    return out


def truncated_count(w_init, w_final, fraction_kept):
    """Mistake: int() instead of round() — 0.29 · 100 keeps 28."""
    out = {}
    for name in w_init:
        score = w_final[name].abs() - w_init[name].abs()
        out[name] = _keep_top(score, max(1, int(fraction_kept * score.numel())))
    return out


def movement_score(w_init, w_final, fraction_kept):
    """Mistake: the wrong criterion, |w_f − w_i|."""
    out = {}
    for name in w_init:
        score = (w_final[name] - w_init[name]).abs()
        out[name] = _keep_top(score, max(1, round(fraction_kept * score.numel())))
    return out


def keeps_all_tied(w_init, w_final, fraction_kept):
    """Mistake: a threshold ``score >= k-th score`` keeps every weight tied at the threshold."""
    out = {}
    for name in w_init:
        score = w_final[name].abs() - w_init[name].abs()
        k = max(1, round(fraction_kept * score.numel()))
        out[name] = (score >= torch.topk(score.reshape(-1), k).values[-1]).float()
    return out


def in_place(w_init, w_final, fraction_kept):
    """Mistake: abs_() changes the caller's weights."""
    out = {}
    for name in w_init:
        score = w_final[name].abs_() - w_init[name].abs_()
        out[name] = _keep_top(score, max(1, round(fraction_kept * score.numel())))
    return out


def test_criterion_checker_passes_the_solution():
    assert check_criterion_mask(magnitude_increase_masks, show=False)
    assert check_criterion_mask(same_sign_masks, "large_final_same_sign", show=False)


def test_criterion_checker_fails_the_stub():
    report = check_criterion_mask(stub, show=False)
    assert not report and "not implemented" in report.failures[0]


@pytest.mark.parametrize("mistake, says", [
    (per_network, "each layer pruned on its own"), (keeps_smallest, "same masks as lotterylib"),
    (truncated_count, "floating-point boundary"), (movement_score, "same masks as lotterylib"),
    (keeps_all_tied, "ties"), (in_place, "inputs are left unchanged")])
def test_criterion_checker_fails_typical_mistakes(mistake, says):
    report = check_criterion_mask(mistake, show=False)
    assert not report
    assert any(says in f for f in report.failures), report.failures


def test_criterion_checker_catches_the_wrong_criterion_and_rejects_random_ones():
    assert not check_criterion_mask(magnitude_increase_masks, "large_final_same_sign", show=False)
    with pytest.raises(ValueError):
        check_criterion_mask(magnitude_increase_masks, "random", show=False)


# --- a Bernoulli supermask, straight-through ---------------------------------------------------------

def sampled_mask_weight(weight, scores, generator):
    """The solution: W ⊙ Bernoulli(σ(s)) forward, the gradient of W ⊙ σ(s) backward."""
    soft = torch.sigmoid(scores)
    hard = torch.bernoulli(soft.detach(), generator=generator)
    return weight * (hard + soft - soft.detach())


def no_straight_through(weight, scores, generator):
    """Mistake: the sample alone — no gradient reaches the scores."""
    return weight * torch.bernoulli(torch.sigmoid(scores).detach(), generator=generator)


def through_the_logits(weight, scores, generator):
    """Mistake: straight through to s itself (gradient W instead of W·σ'(s))."""
    hard = torch.bernoulli(torch.sigmoid(scores).detach(), generator=generator)
    return weight * (hard + scores - scores.detach())


def soft_forward(weight, scores, generator):
    """Mistake: W ⊙ σ(s) in the forward pass too."""
    return weight * torch.sigmoid(scores)


def thresholded(weight, scores, generator):
    """Mistake: the most likely mask σ(s) > ½ instead of a sample."""
    soft = torch.sigmoid(scores)
    hard = (soft.detach() > 0.5).to(soft.dtype)
    return weight * (hard + soft - soft.detach())


def test_sampled_checker_passes_the_solution():
    assert check_sampled_mask(sampled_mask_weight, show=False)


def test_uniform_draws_below_sigma_are_the_same_draws():
    """torch.bernoulli on a CPU float tensor is rand < p: a reader who writes that draws what lotterylib draws."""
    def uniform_below(weight, scores, generator):
        soft = torch.sigmoid(scores)
        hard = (torch.rand(soft.shape, generator=generator, dtype=soft.dtype) < soft.detach()).to(soft.dtype)
        return weight * (hard + soft - soft.detach())
    assert check_sampled_mask(uniform_below, show=False)


def global_generator(weight, scores, generator):
    """Mistake: the global random stream instead of the generator passed in — a valid sample, not the one asked for."""
    soft = torch.sigmoid(scores)
    hard = torch.bernoulli(soft.detach())
    return weight * (hard + soft - soft.detach())


def test_sampled_checker_fails_the_stub():
    report = check_sampled_mask(stub, show=False)
    assert not report and "not implemented" in report.failures[0]


@pytest.mark.parametrize("mistake, says", [
    (no_straight_through, "no gradient reached the scores"), (through_the_logits, "not that of W ⊙ σ(s)"),
    (soft_forward, "0/1 sample"), (thresholded, "samples follow σ(s)"),
    (global_generator, "same draws")])
def test_sampled_checker_fails_typical_mistakes(mistake, says):
    report = check_sampled_mask(mistake, show=False)
    assert not report
    assert any(says in f for f in report.failures), report.failures
