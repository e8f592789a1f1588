"""Build it yourself, chapter 03 (Deconstructing Lottery Tickets): a mask criterion and a learned supermask.

Two checkers, each against lotterylib's own implementation:

* :func:`check_criterion_mask` — the reader's ``fn(w_init, w_final, fraction_kept) -> masks``: score
  every weight of every layer by a criterion of :mod:`lotterylib.criteria` (``magnitude_increase``,
  |w_f| − |w_i|, by default) and keep, in each layer on its own, the ``round(fraction_kept · n)`` best
  (at least one). Compared with :func:`lotterylib.criteria.oneshot_mask`, which breaks ties at random:
  where scores tie at the threshold only the count and the order are checked.
* :func:`check_sampled_mask` — the reader's ``fn(weight, scores, generator) -> effective weight``:
  W ⊙ m with m ~ Bernoulli(σ(s)) drawn from ``generator``, and in the backward pass the gradient of
  W ⊙ σ(s) reaching the scores (a straight-through estimator). Compared with
  :class:`lotterylib.weightfn.SampledMask`: the same draws from the same seed, the same gradient, and
  samples whose frequency follows σ(s).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .. import criteria, weightfn
from . import Case, Report, run

CriterionMaskFn = Callable[[dict, dict, float], dict]
SampledMaskFn = Callable[[Tensor, Tensor, torch.Generator], Tensor]


# --- a mask criterion, pruned layer by layer -------------------------------------------------------

def _layers(seed: int, sizes: dict[str, tuple[int, ...]], scale: dict[str, float] | None = None,
            dtype: torch.dtype = torch.float32) -> tuple[dict, dict]:
    """Random (w_init, w_final) per layer: w_final = w_init + noise, so scores are continuous (no ties)."""
    g = torch.Generator().manual_seed(seed)
    w_i, w_f = {}, {}
    for name, shape in sizes.items():
        s = (scale or {}).get(name, 1.0)
        w_i[name] = (s * torch.randn(shape, generator=g)).to(dtype)
        w_f[name] = (w_i[name] + s * 0.7 * torch.randn(shape, generator=g).to(dtype))
    return w_i, w_f


def _call_masks(fn: CriterionMaskFn, w_i: dict, w_f: dict, fraction_kept: float) -> dict[str, Tensor]:
    copies = ({k: v.clone() for k, v in w_i.items()}, {k: v.clone() for k, v in w_f.items()})
    out = fn(copies[0], copies[1], fraction_kept)
    assert isinstance(out, dict), f"return a dict layer → mask, got {type(out).__name__}"
    assert set(out) == set(w_i), f"return one mask per layer: got layers {sorted(out)}, expected {sorted(w_i)}"
    masks = {}
    for k, m in out.items():
        m = torch.as_tensor(m)
        assert m.shape == w_i[k].shape, f"layer {k}: mask shape {tuple(m.shape)}, weights {tuple(w_i[k].shape)}"
        m = m.to(torch.float64)
        assert bool(((m == 0) | (m == 1)).all()), f"layer {k}: a mask holds only 0 and 1 (or False/True)"
        masks[k] = m
    return masks


def _target(fraction_kept: float, n: int) -> int:
    return max(1, int(round(fraction_kept * n)))


def _assert_counts(masks: dict, w_i: dict, fraction_kept: float, hint: str = "") -> None:
    for k, m in masks.items():
        n, want, got = m.numel(), _target(fraction_kept, m.numel()), int(m.sum())
        assert got == want, (f"layer {k} ({n} weights) keeps {got}, expected round({fraction_kept} · {n}) = {want}"
                             + (f"; {hint}" if hint else ""))


def _assert_best_kept(criterion: str, masks: dict, w_i: dict, w_f: dict) -> None:
    for k, m in masks.items():
        s = criteria.score(criterion, w_i[k], w_f[k]).double().reshape(-1)
        kept, pruned = s[m.reshape(-1) > 0], s[m.reshape(-1) == 0]
        if len(kept) and len(pruned):
            assert kept.min() >= pruned.max(), (
                f"layer {k}: a pruned weight scores {float(pruned.max()):.4g}, above a kept one "
                f"({float(kept.min()):.4g}); keep the HIGHEST scores ({criterion})")


def check_criterion_mask(fn: CriterionMaskFn, criterion: str = "magnitude_increase", show: bool = True) -> Report:
    """Check ``fn(w_init, w_final, fraction_kept) -> {layer: 0/1 mask}`` against
    :func:`lotterylib.criteria.oneshot_mask` with ``criterion`` on each layer.

    ``w_init``, ``w_final``: ``{layer: tensor}`` of one network (no population dimension). Each layer
    keeps its own ``round(fraction_kept · n)`` highest-scoring weights (at least one), whatever the
    other layers' scores.
    """
    criteria.get(criterion)
    if criterion in criteria.RANDOM or criteria.is_quadrant(criterion):
        raise ValueError(f"check_criterion_mask takes a deterministic one-column criterion, not {criterion!r}")
    sizes = {"fc1": (40, 30), "fc2": (20, 40), "out": (5, 20)}

    def same_as_lotterylib(fraction_kept: float, seed: int, dtype=torch.float32):
        def test(f):
            w_i, w_f = _layers(seed, sizes, dtype=dtype)
            got = _call_masks(f, w_i, w_f, fraction_kept)
            _assert_counts(got, w_i, fraction_kept)
            for k in sizes:
                want = criteria.oneshot_mask(criterion, w_i[k], w_f[k], fraction_kept).to(torch.float64)
                wrong = int((got[k] != want).sum())
                assert wrong == 0, (f"layer {k}: {wrong} of {want.numel()} entries differ from "
                                    f"criteria.oneshot_mask({criterion!r}, …, {fraction_kept}); check the score formula "
                                    f"({criteria.get(criterion).__doc__.split(' — ')[0].strip()}) and keep the highest")
        return test

    def per_layer(f):
        # The last layer's weights are 10× larger: one threshold over the whole network would keep
        # most of them and few elsewhere.
        w_i, w_f = _layers(3, sizes, scale={"out": 10.0})
        got = _call_masks(f, w_i, w_f, 0.3)
        _assert_counts(got, w_i, 0.3, "prune each layer on its own (one threshold per layer, not per network)")

    def boundary(f):
        # 0.29 · 100 is 28.999999999999996 in floating point: int() would keep 28.
        w_i, w_f = _layers(4, {"a": (100,), "b": (10, 7)})
        got = _call_masks(f, w_i, w_f, 0.29)
        _assert_counts(got, w_i, 0.29, "round the count (round(fraction_kept * n)); int() truncates 28.999… to 28")

    def everything_and_one(f):
        w_i, w_f = _layers(5, {"a": (6, 5), "one": (1, 1)})
        got = _call_masks(f, w_i, w_f, 1.0)
        assert all(bool((m == 1).all()) for m in got.values()), "fraction_kept = 1 keeps every weight"
        got = _call_masks(f, w_i, w_f, 0.01)
        _assert_counts(got, w_i, 0.01, "keep at least one weight per layer (a layer with none cuts the network)")
        _assert_best_kept(criterion, got, w_i, w_f)

    def ties(f):
        # Weights with equal |w_f| and |w_i|: many scores tie, at 0 or at equal values. Any choice among
        # the tied is right (lotterylib draws one at random); the count and the order must hold.
        g = torch.Generator().manual_seed(6)
        sign = lambda shape: torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)  # noqa: E731
        mags = torch.tensor([0.5, 1.0, 2.0])
        w_i = {"a": sign((12, 10)) * mags[torch.randint(0, 3, (12, 10), generator=g)]}
        w_f = {"a": sign((12, 10)) * mags[torch.randint(0, 3, (12, 10), generator=g)]}
        got = _call_masks(f, w_i, w_f, 0.45)
        _assert_counts(got, w_i, 0.45, "with tied scores keep exactly the count: break ties, do not keep all tied")
        _assert_best_kept(criterion, got, w_i, w_f)

    def inputs_untouched(f):
        w_i, w_f = _layers(7, {"a": (8, 8)})
        before = (w_i["a"].clone(), w_f["a"].clone())
        f(w_i, w_f, 0.5)
        assert torch.equal(w_i["a"], before[0]) and torch.equal(w_f["a"], before[1]), (
            "the weights were changed in place (abs_(), sub_(), …): compute the score into a new tensor")

    cases = [Case("same masks as lotterylib at 50 % kept", same_as_lotterylib(0.5, 0)),
             Case("same masks as lotterylib at 7 % kept", same_as_lotterylib(0.07, 1)),
             Case("same masks on float64 weights", same_as_lotterylib(0.2, 2, torch.float64)),
             Case("each layer pruned on its own", per_layer),
             Case("exact count at a floating-point boundary", boundary),
             Case("all kept at 1.0; at least one kept per layer, a 1×1 layer included", everything_and_one),
             Case("ties: exact count, no pruned score above a kept one", ties),
             Case("the inputs are left unchanged", inputs_untouched)]
    return run(f"criterion mask ({criterion}, per layer)", fn, cases, show=show)


# --- a Bernoulli supermask with a straight-through gradient -----------------------------------------

def _reference(weight: Tensor, scores: Tensor, seed: int, upstream: Tensor) -> tuple[Tensor, Tensor]:
    """(effective weight, gradient reaching the scores) of ``weightfn.SampledMask`` for one run."""
    fn = weightfn.SampledMask(scores.unsqueeze(0), [seed])
    out = fn(weight.unsqueeze(0))
    (out * upstream.unsqueeze(0)).sum().backward()
    return out[0].detach(), fn.scores.grad[0]


def _call_sampled(fn: SampledMaskFn, weight: Tensor, scores: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """(reader's output, scores as a leaf tensor that requires grad)."""
    s = scores.clone().requires_grad_(True)
    out = fn(weight.clone(), s, torch.Generator().manual_seed(seed))
    assert isinstance(out, Tensor), f"return a tensor, got {type(out).__name__}"
    assert out.shape == weight.shape, f"output shape {tuple(out.shape)}, weight {tuple(weight.shape)}"
    return out, s


def _sampled_bits(out: Tensor, weight: Tensor) -> Tensor:
    """The 0/1 mask the output applied to ``weight`` (no zero weights), checked to be 0/1."""
    ratio = (out.detach().double() / weight.double())
    bits = ratio.round()
    assert bool(((bits == 0) | (bits == 1)).all()) and torch.allclose(ratio, bits, atol=1e-5), (
        "the forward value must be W ⊙ m with m ∈ {0, 1} (a sample), not W ⊙ σ(s): the soft value only "
        "enters the backward pass")
    return bits


NO_GRADIENT = ("no gradient reached the scores: a Bernoulli sample has none; pass it straight through, e.g. "
               "hard + soft − soft.detach() with soft = σ(s)")


def _scores_grad(out: Tensor, scores: Tensor, upstream: Tensor) -> Tensor:
    """The gradient reaching ``scores`` from the loss sum(out · upstream)."""
    assert out.requires_grad, NO_GRADIENT
    (out * upstream).sum().backward()
    assert scores.grad is not None, NO_GRADIENT
    return scores.grad


def check_sampled_mask(fn: SampledMaskFn, show: bool = True) -> Report:
    """Check ``fn(weight, scores, generator)``: W ⊙ m, m ~ Bernoulli(σ(scores)) drawn with ``generator``
    (one ``torch.bernoulli`` call on the whole tensor), backward the gradient of W ⊙ σ(scores) to the
    scores — against :class:`lotterylib.weightfn.SampledMask` seeded alike."""
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(30, 20, generator=g)
    scores = 2 * torch.randn(30, 20, generator=g)
    upstream = torch.randn(30, 20, generator=g)

    def binary_forward(f):
        out, _ = _call_sampled(f, weight, scores, 11)
        _sampled_bits(out, weight)

    def same_draws(f):
        out, _ = _call_sampled(f, weight, scores, 12)
        want, _ = _reference(weight, scores, 12, upstream)
        got = _sampled_bits(out, weight)
        wrong = int((got != (want / weight).round()).sum())
        assert wrong == 0, (f"{wrong} of {weight.numel()} mask entries differ from weightfn.SampledMask's draws with the "
                            "same seed: draw once with torch.bernoulli(torch.sigmoid(scores), generator=generator)")

    def frequencies(f):
        # 40,000 draws per score value: the kept fraction is within 5 standard errors of σ(s).
        ones = torch.ones(200, 200)
        for i, s in enumerate((-2.0, 0.0, 1.5)):
            out, _ = _call_sampled(f, ones, torch.full((200, 200), s), 20 + i)
            p = float(torch.sigmoid(torch.tensor(s)))
            frac = float(_sampled_bits(out, ones).mean())
            assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / ones.numel()), (
                f"scores {s}: {100 * frac:.1f} % kept, σ(s) = {100 * p:.1f} %: sample m ~ Bernoulli(σ(s)) "
                f"(a threshold σ(s) > ½ is not a sample)")

    def saturated(f):
        out, _ = _call_sampled(f, weight, torch.full_like(weight, 30.0), 13)
        assert bool((_sampled_bits(out, weight) == 1).all()), "σ(30) = 1 in float32: every weight is kept"
        out, _ = _call_sampled(f, weight, torch.full_like(weight, -30.0), 14)
        assert bool((_sampled_bits(out, weight) == 0).all()), "σ(−30) ≈ 1e-13: no weight is kept"

    def straight_through_gradient(f):
        out, s = _call_sampled(f, weight, scores, 15)
        grad = _scores_grad(out, s, upstream)
        _, want = _reference(weight, scores, 15, upstream)
        assert torch.allclose(grad, want, rtol=1e-4, atol=1e-6), (
            "the scores' gradient is not that of W ⊙ σ(s) (upstream · W · σ(s)(1 − σ(s))): the soft side of the "
            "straight-through is σ(s), not s itself")

    def float64(f):
        out, s = _call_sampled(f, weight.double(), scores.double(), 16)
        assert out.dtype == torch.float64, f"float64 in, {out.dtype} out: keep the weight's dtype"
        grad = _scores_grad(out, s, upstream.double())
        p = torch.sigmoid(scores.double())
        assert torch.allclose(grad, upstream.double() * weight.double() * p * (1 - p)), (
            "in float64 the scores' gradient is not upstream · W · σ(s)(1 − σ(s))")

    def one_element(f):
        w, s = torch.tensor([[0.5]]), torch.tensor([[0.3]])
        out, s_ = _call_sampled(f, w, s, 17)
        bits = _sampled_bits(out, w)
        grad = float(_scores_grad(out, s_, torch.ones_like(w)))
        p = float(torch.sigmoid(s))
        assert abs(grad - 0.5 * p * (1 - p)) < 1e-6, (
            f"a 1×1 weight: gradient {grad:.6f}, expected W · σ'(s) = "
            f"{0.5 * p * (1 - p):.6f} whether or not it was sampled ({int(bits)})")

    cases = [Case("forward is W ⊙ a 0/1 sample", binary_forward),
             Case("the same draws as weightfn.SampledMask from the same seed", same_draws),
             Case("samples follow σ(s)", frequencies),
             Case("σ(s) = 1 keeps all, σ(s) ≈ 0 none", saturated),
             Case("the scores get the gradient of W ⊙ σ(s) (straight-through)", straight_through_gradient),
             Case("float64 weights and scores", float64),
             Case("a one-element weight", one_element)]
    return run("Bernoulli supermask, straight-through", fn, cases, show=show)
