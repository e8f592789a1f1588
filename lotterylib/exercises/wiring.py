"""Checker of chapter 06's exercise (Discovering Neural Wirings): DNW's edge choice as an autograd Function.

The reader writes ``ChooseEdges`` — the authors' ``ChooseTopEdges`` (allenai/dnw ``models/graphs/util.py``,
the paper's Algorithm 1) — as a ``torch.autograd.Function``: ``forward(ctx, weight, k)`` keeps the ``k``
entries of ``weight`` with the largest magnitude and zeroes the others; ``backward(ctx, grad)`` passes the
incoming gradient to *every* entry unchanged (straight through) and none to ``k``. ``k`` counts the edges
**kept** over the whole tensor (lotterylib's ``fraction_kept = k / numel``; DNW's ``prune_rate`` is the
fraction removed).

The checker compares the reader's function with lotterylib's own :class:`lotterylib.weightfn.TopKMagnitude`
(``run_dims=0``: one top-k over the whole tensor, ties broken by ``torch.topk``) on random tensors, and on
the edge cases that tell a right answer from a nearly right one: negative weights, ties, ``k = 0`` and
``k = numel``, one-element and 2-D/4-D weights, float64, the caller's tensor left untouched.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import weightfn
from . import Case, Report, run


def reference_choose_edges(weight: Tensor, k: int) -> Tensor:
    """What ``ChooseEdges.apply(weight, k)`` must return: lotterylib's :class:`~lotterylib.weightfn.TopKMagnitude`
    over the whole tensor with ``fraction_kept = k / numel`` (the ``k`` largest |w| kept, gradient straight
    through to all). ``k = 0`` (which ``TopKMagnitude`` refuses: it keeps at least one) keeps nothing."""
    n = weight.numel()
    if int(k) != k or not 0 <= k <= n:
        raise ValueError(f"k must be an integer count in [0, {n}], got {k}")
    if k == 0:
        return weightfn.straight_through(torch.zeros_like(weight), weight)
    fn = weightfn.TopKMagnitude(k / n, run_dims=0)
    out = fn(weight)
    if int((out.detach() != 0).sum()) > k or max(1, round(k / n * n)) != k:  # the count k survives k / n
        raise RuntimeError(f"internal: TopKMagnitude({k}/{n}) does not keep {k} entries")
    return out


def _callable(choose) -> Callable[[Tensor, int], Tensor]:
    """``ChooseEdges`` (an autograd Function class: its ``apply``) or any function ``(weight, k) → tensor``."""
    if isinstance(choose, type) and issubclass(choose, torch.autograd.Function):
        return choose.apply
    return choose


def _run(fn: Callable, weight: Tensor, k: int, upstream: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """The reader's output for ``weight`` (a fresh leaf) and, with ``upstream``, the gradient it passes back."""
    w = weight.detach().clone().requires_grad_(upstream is not None)
    try:
        out = fn(w, k)
    except (RuntimeError, IndexError) as err:
        if "out of range" not in str(err):
            raise
        raise AssertionError(f"k = {k} of {weight.numel()} entries raised {type(err).__name__} "
                             f"({str(err).splitlines()[0]}): k is a count of edges kept (an int in [0, numel]), "
                             "not a fraction — use it as the number of indices to keep") from None
    if not isinstance(out, Tensor):
        raise AssertionError(f"forward must return a torch.Tensor, got {type(out).__name__}")
    if out.shape != weight.shape:
        raise AssertionError(f"the output must have the weight's shape {tuple(weight.shape)}, got {tuple(out.shape)}")
    if out.dtype != weight.dtype:
        raise AssertionError(f"a {weight.dtype} weight gave a {out.dtype} output: keep the weight's dtype "
                             "(weight.clone(), or torch.zeros_like(weight))")
    if upstream is None:
        return out.detach(), None
    if not out.requires_grad:
        raise AssertionError("no gradient reaches the weight (the output does not require grad): call it "
                             "through ChooseEdges.apply, and do not detach inside a plain function")
    try:
        (out * upstream).sum().backward()
    except RuntimeError as err:
        text = str(err)
        if "incorrect number of gradients" in text or "corresponding forward input was not a Variable" in text \
                or "not a Tensor" in text or "position 2" in text:
            raise AssertionError("backward returns one gradient per input of forward, (grad for weight, None for k): "
                                 f"k is an int count and has no gradient ({text.splitlines()[0]})") from None
        raise
    return out.detach(), w.grad


def _kept_count_hint(out: Tensor, weight: Tensor, k: int) -> str:
    """What a wrong count of kept entries suggests (``weight`` has no zeros)."""
    kept, n = int((out != 0).sum()), weight.numel()
    if kept == n and k == 0:
        return (f"all {n} entries kept for k = 0: with k = 0, idx[:-k] is idx[:0], an empty slice — compute the "
                "number pruned, n − k, explicitly")
    if kept == n - k and k != n - k:
        return (f"{kept} entries kept, n − k: k counts the edges KEPT (lotterylib's convention, fraction_kept = "
                "k / numel), not the edges pruned (DNW's code calls the pruned fraction prune_rate)")
    if kept == n and k < n:
        return f"all {n} entries kept for k = {k}: k is a count of edges kept, not a fraction"
    if kept > k:
        return (f"{kept} entries kept for k = {k}: a threshold (|w| >= the k-th largest |w|) keeps every weight "
                "tied with it — choose exactly k indices (torch.topk, or a sort)")
    return f"{kept} entries kept, k = {k} wanted"


def _compare_value(out: Tensor, weight: Tensor, k: int, what: str) -> None:
    ref = reference_choose_edges(weight.detach().clone(), k).detach()
    if torch.equal(out, ref):
        return
    kept = int((out != 0).sum())
    if (weight != 0).all() and kept != k:
        raise AssertionError(f"{what}: {_kept_count_hint(out, weight, k)}")
    flat = weight.reshape(-1)
    by_value = torch.zeros_like(flat)
    if k:
        top = flat.topk(k).indices
        by_value[top] = flat[top]
    if torch.equal(out.reshape(-1), by_value) and not torch.equal(by_value, ref.reshape(-1)):
        raise AssertionError(f"{what}: you kept the k largest VALUES; DNW keeps the k largest MAGNITUDES |w| — a "
                             "strongly negative weight is a strong edge")
    if weight.dim() >= 2 and k % weight.shape[0] == 0 and k:
        per_row = out.reshape(weight.shape[0], -1)
        if ((per_row != 0).sum(1) == k // weight.shape[0]).all():
            raise AssertionError(f"{what}: each row kept the same number of entries: DNW ranks ALL edges of the "
                                 "tensor together (flatten it), not each node's in-edges separately")
    kept_mask = out != 0
    if not torch.equal(out[kept_mask], weight[kept_mask]):
        raise AssertionError(f"{what}: the kept entries must keep their weight unchanged (forward is w where the "
                             "edge is chosen, exactly 0 elsewhere)")
    i = int((out != ref).reshape(-1).nonzero()[0])
    raise AssertionError(f"{what}: entry {i} (w = {flat[i].item():.4g}) is {out.reshape(-1)[i].item():.4g}, "
                         f"lotterylib's TopKMagnitude gives {ref.reshape(-1)[i].item():.4g}")


def _compare_grad(grad: Tensor | None, upstream: Tensor, out: Tensor, what: str) -> None:
    if grad is None:
        raise AssertionError(f"{what}: the weight got no gradient: backward must return the incoming gradient "
                             "for weight")
    if torch.allclose(grad, upstream, rtol=0, atol=0):
        return
    used = out != 0
    if torch.equal(grad, upstream * used) or (torch.equal(grad[used], upstream[used]) and (grad[~used] == 0).all()):
        raise AssertionError(f"{what}: the gradient reaches only the chosen edges: that is a static sparse net "
                             "(DNW's no-update control) — an unused edge never moves and can never swap back in. "
                             "DNW's backward passes the gradient to ALL weights: return grad unchanged")
    i = int((grad != upstream).reshape(-1).nonzero()[0])
    raise AssertionError(f"{what}: gradient {grad.reshape(-1)[i].item():.4g} at entry {i}, the incoming one is "
                         f"{upstream.reshape(-1)[i].item():.4g}: pass it straight through, unchanged")


def check_choose_edges(choose, show: bool = True) -> Report:
    """Check the reader's ``ChooseEdges`` (the autograd Function class, or a function ``(weight, k)``).

    Forward: the ``k`` largest-|w| entries of the whole tensor kept, every other one exactly 0, the
    caller's tensor untouched, dtype kept — equal to :func:`reference_choose_edges` (ties: any valid choice
    of exactly ``k``). Backward: the incoming gradient, unchanged, at every entry; none for ``k``.
    """
    fn = _callable(choose)
    gen = torch.Generator().manual_seed(2019)

    def value_and_grad(weight: Tensor, k: int, what: str) -> None:
        upstream = torch.randn(weight.shape, generator=gen, dtype=weight.dtype)
        out, grad = _run(fn, weight, k, upstream)
        _compare_value(out, weight, k, what)
        _compare_grad(grad, upstream, out, what)

    def random_vector(f):
        value_and_grad(torch.randn(200, generator=gen), 10, "200 edges, k = 10")

    def random_matrix(f):
        value_and_grad(torch.randn(12, 30, generator=gen), 36, "a (12, 30) layer, k = 36")

    def conv_shape(f):
        value_and_grad(torch.randn(16, 24, 1, 1, generator=gen), 19, "DNW's 1×1 conv graph (16, 24, 1, 1), k = 19")

    def negative_weights(f):
        w = torch.tensor([-3.0, 0.1, 2.0, -0.5, 1.0, -2.5])
        value_and_grad(w, 3, "[−3, 0.1, 2, −0.5, 1, −2.5], k = 3 (keeps −3, −2.5 and 2)")
        value_and_grad(-torch.rand(50, generator=gen) - 0.1, 5, "all 50 weights negative, k = 5")

    def dense_gradient(f):
        w = torch.randn(40, generator=gen)
        upstream = torch.randn(40, generator=gen)
        out, grad = _run(fn, w, 4, upstream)
        _compare_grad(grad, upstream, out, "40 edges, 4 used")

    def ties(f):
        # magnitudes from {0.5, 1, 2} with random signs: every k below cuts through a group of ties
        mags = torch.tensor([0.5, 1.0, 2.0])[torch.randint(0, 3, (60,), generator=gen)]
        w = mags * torch.where(torch.rand(60, generator=gen) < 0.5, -1.0, 1.0)
        n_two = int((mags == 2.0).sum())
        for k in (n_two - 1, n_two + 3):
            upstream = torch.randn(60, generator=gen)
            out, grad = _run(fn, w, k, upstream)
            kept = out != 0
            if int(kept.sum()) != k:
                raise AssertionError(f"tied magnitudes, k = {k}: {_kept_count_hint(out, w, k)}")
            if kept.any() and (~kept).any() and w[kept].abs().min() < w[~kept].abs().max():
                raise AssertionError(f"tied magnitudes, k = {k}: an edge of |w| = {w[kept].abs().min().item():g} "
                                     f"is kept while one of |w| = {w[~kept].abs().max().item():g} is not")
            if not torch.equal(out[kept], w[kept]):
                raise AssertionError(f"tied magnitudes, k = {k}: the kept entries must keep their value")
            _compare_grad(grad, upstream, out, f"tied magnitudes, k = {k}")

    def k_zero_and_all(f):
        w = torch.randn(3, 7, generator=gen)
        value_and_grad(w, 0, "k = 0 (no edge used: all zeros, the gradient still reaches every weight)")
        value_and_grad(w, w.numel(), f"k = numel = {w.numel()} (every edge used: the weight itself)")

    def one_element(f):
        w = torch.tensor([-0.7])
        value_and_grad(w, 1, "one edge, k = 1")
        value_and_grad(w, 0, "one edge, k = 0")

    def untouched_and_dtype(f):
        w = torch.randn(5, 8, generator=gen, dtype=torch.float64)
        value_and_grad(w, 6, "a float64 (5, 8) weight, k = 6")
        keep = w.clone()
        fn(w, 6)
        if not torch.equal(w, keep):
            raise AssertionError("the function zeroed entries of the weight it was given (flatten() of a "
                                 "contiguous tensor is a view): work on a copy, as the authors' "
                                 "output = weight.clone()")

    cases = [Case("random edges: value and gradient", random_vector),
             Case("a 2-D weight: one top-k over the whole tensor", random_matrix),
             Case("a 4-D (1×1 conv) weight", conv_shape),
             Case("negative weights: top-k by |w|", negative_weights),
             Case("the gradient is dense (straight through)", dense_gradient),
             Case("ties: exactly k edges", ties),
             Case("k = 0 and k = numel", k_zero_and_all),
             Case("a one-element weight", one_element),
             Case("the caller's tensor untouched, dtype kept", untouched_and_dtype)]
    return run("DNW's ChooseEdges (top-k forward, straight-through backward)", choose, cases, show)
