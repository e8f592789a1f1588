"""Chapter 06's checker passes the worked solution and fails the stub and typical mistakes."""

from __future__ import annotations

import pytest
import torch

from lotterylib.exercises import stub
from lotterylib.exercises.wiring import check_choose_edges, reference_choose_edges


class ChooseEdges(torch.autograd.Function):
    """The solution (as the chapter's hidden cell): top-k by |w| forward, the gradient straight through."""

    @staticmethod
    def forward(ctx, weight, k):
        out = torch.zeros_like(weight)
        if k > 0:
            idx = weight.abs().flatten().topk(k).indices
            out.view(-1)[idx] = weight.reshape(-1)[idx]
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class AuthorsSort(torch.autograd.Function):
    """The authors' ChooseTopEdges with k kept: clone, sort |w|, zero the n − k smallest."""

    @staticmethod
    def forward(ctx, weight, k):
        output = weight.clone()
        _, idx = weight.flatten().abs().sort()
        output.view(-1)[idx[:weight.numel() - k]] = 0
        return output

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Stub(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, k):
        return stub(weight, k)

    @staticmethod
    def backward(ctx, grad):
        return stub(grad)


def _with_backward(forward, backward=lambda ctx, grad: (grad, None)):
    return type("Mistake", (torch.autograd.Function,), {"forward": staticmethod(forward),
                                                          "backward": staticmethod(backward)})


def _top(score, weight, k):
    out = torch.zeros_like(weight)
    if k > 0:
        idx = score.flatten().topk(k).indices
        out.view(-1)[idx] = weight.reshape(-1)[idx]
    return out


def by_value(ctx, weight, k):
    """Mistake: the k largest values, not magnitudes."""
    return _top(weight, weight, k)


def masked_gradient_forward(ctx, weight, k):
    out = _top(weight.abs(), weight, k)
    ctx.save_for_backward((out != 0).to(weight.dtype))
    return out


def masked_gradient_backward(ctx, grad):
    """Mistake: the gradient reaches only the chosen edges (a static sparse net, DNW's no-update)."""
    (mask,) = ctx.saved_tensors
    return grad * mask, None


def k_as_pruned(ctx, weight, k):
    """Mistake: k taken as the number of edges pruned (DNW's prune_rate direction)."""
    return _top(weight.abs(), weight, weight.numel() - k)


def threshold_keeps_ties(ctx, weight, k):
    """Mistake: |w| >= the k-th largest |w| keeps every tie."""
    if k == 0:
        return torch.zeros_like(weight)
    kth = weight.abs().flatten().topk(k).values[-1]
    return weight * (weight.abs() >= kth).to(weight.dtype)


def per_row(ctx, weight, k):
    """Mistake: top-k of each node's in-edges (each row) instead of the whole tensor."""
    if weight.dim() < 2:
        return _top(weight.abs(), weight, k)
    rows = weight.reshape(weight.shape[0], -1)
    per = k // rows.shape[0]
    out = torch.zeros_like(rows)
    if per:
        idx = rows.abs().topk(per, dim=1).indices
        out.scatter_(1, idx, rows.gather(1, idx))
    return out.reshape(weight.shape)


def in_place(ctx, weight, k):
    """Mistake: zeroes the caller's weight through a flatten() view (no clone)."""
    flat = weight.flatten()
    _, idx = flat.abs().sort()
    flat[idx[:weight.numel() - k]] = 0
    return flat.view_as(weight)


def negative_slice(ctx, weight, k):
    """Mistake: idx[:-k] zeroes nothing when k = 0."""
    output = weight.clone()
    _, idx = weight.flatten().abs().sort()
    output.view(-1)[idx[:-k]] = 0
    return output


def k_as_fraction(ctx, weight, k):
    """Mistake: k taken as the fraction kept (round(k · n) entries)."""
    return _top(weight.abs(), weight, round(k * weight.numel()))


def grad_for_k(ctx, grad):
    """Mistake: backward returns a single gradient (none for k)."""
    return grad


@pytest.mark.parametrize("solution", [ChooseEdges, AuthorsSort])
def test_checker_passes_the_solutions(solution):
    report = check_choose_edges(solution, show=False)
    assert report, report.failures


def test_checker_fails_the_stub():
    report = check_choose_edges(Stub, show=False)
    assert not report and "not implemented" in report.failures[0]


@pytest.mark.parametrize("mistake, says", [
    (_with_backward(by_value), "largest VALUES"),
    (_with_backward(masked_gradient_forward, masked_gradient_backward), "static sparse net"),
    (_with_backward(k_as_pruned), "KEPT"),
    (_with_backward(threshold_keeps_ties), "tied with it"),
    (_with_backward(per_row), "whole tensor"),
    (_with_backward(in_place), "clone"),
    (_with_backward(negative_slice), "idx[:0]"),
    (_with_backward(k_as_fraction), "not a fraction"),
    (_with_backward(lambda ctx, w, k: _top(w.abs(), w, k), grad_for_k), "None for k"),
])
def test_checker_fails_typical_mistakes(mistake, says):
    report = check_choose_edges(mistake, show=False)
    assert not report
    assert any(says in f for f in report.failures), report.failures


def test_reference_is_lotterylibs_topk_magnitude():
    w = torch.randn(7, 9, requires_grad=True)
    out = reference_choose_edges(w, 20)
    assert int((out != 0).sum()) == 20
    assert torch.equal(out[out != 0], w.detach()[out != 0])
    out.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    assert not reference_choose_edges(w, 0).any()
    with pytest.raises(ValueError):
        reference_choose_edges(w, 64)
