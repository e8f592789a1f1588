import contextlib

import pytest
import torch

from lotterylib import masks, models, weightfn


def test_straight_through_value_is_exact_and_gradient_goes_to_soft():
    soft = torch.tensor([0.3, -2.0, 0.7], requires_grad=True)
    hard = torch.tensor([0.0, 1.0, 1.0])
    out = weightfn.straight_through(hard, soft)
    assert torch.equal(out, hard)
    (out * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert soft.grad.tolist() == [1.0, 2.0, 3.0]


def test_straight_through_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="equal shapes"):
        weightfn.straight_through(torch.zeros(2), torch.zeros(3))


def test_topk_mask_per_run_and_fraction_kept():
    scores = torch.tensor([[1.0, 5, 3, 2], [9.0, 1, 2, 3]])
    m = weightfn.topk_mask(scores, fraction_kept=0.5)
    assert m.tolist() == [[0, 1, 1, 0], [1, 0, 0, 1]]
    assert weightfn.topk_mask(scores, 0.25, run_dims=0).tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]
    with pytest.raises(ValueError, match="fraction_kept"):
        weightfn.topk_mask(scores, 0.0)


def test_masked_zeroes_value_and_gradient():
    layer = models.StackedLinear(1, 3, 2)
    torch.nn.init.normal_(layer.weight)
    mask = torch.tensor([[[1.0, 0, 1], [0, 1, 0]]])
    weightfn.attach(layer, weightfn.Masked(mask))
    assert torch.all(layer.weight[mask == 0] == 0)
    layer(torch.randn(1, 4, 3)).sum().backward()
    assert torch.all(weightfn.stored(layer).grad[mask == 0] == 0)


def test_masked_without_multiply_returns_the_stored_weight_only_where_that_is_exact():
    mask = torch.tensor([[[1.0, 0, 1], [0, 1, 0]]])
    zeroed = models.StackedLinear(1, 3, 2)  # its pruned stored weights zero, as masks.attach_masks leaves them
    torch.nn.init.normal_(zeroed.weight)
    with torch.no_grad():
        zeroed.weight.mul_(mask)
    weightfn.attach(zeroed, weightfn.Masked(mask))
    not_zeroed = models.StackedLinear(1, 3, 2)  # attached directly: the stored weights keep their values
    torch.nn.init.normal_(not_zeroed.weight)
    weightfn.attach(not_zeroed, weightfn.Masked(mask))
    chained = models.StackedLinear(1, 3, 2)  # after another function: Masked's input is not the stored weight
    torch.nn.init.normal_(chained.weight)
    with torch.no_grad():
        chained.weight.mul_(mask)
    weightfn.attach(chained, weightfn.SignScale())
    weightfn.attach(chained, weightfn.Masked(mask))
    model = torch.nn.ModuleList([zeroed, not_zeroed, chained])
    with weightfn.masked_without_multiply(model) as skipping:
        assert skipping == 1
        assert zeroed.weight.data_ptr() == weightfn.stored(zeroed).data_ptr()  # no product computed
        for layer in model:
            assert torch.all(layer.weight[mask == 0] == 0) and torch.all(layer.weight[mask == 1] != 0)
    assert zeroed.weight.data_ptr() != weightfn.stored(zeroed).data_ptr()  # outside: the product again


@pytest.mark.parametrize("make_optimizer", [
    lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=0.1, fused=True),
    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.1, nesterov=True),
], ids=["adam", "sgd"])
def test_masked_without_multiply_trains_what_the_product_trains_bit_for_bit(make_optimizer):
    """Pruned stored weights stay exactly zero under the book's optimizers (weight decay and momentum
    included), so skipping the product W ⊙ M changes no bit of the training."""

    def trained(skip: bool):
        torch.manual_seed(0)
        model = models.build("lenet_300_100", [0, 1])
        mask = {k: (torch.rand_like(weightfn.stored(l)) < 0.3).float() for k, l in model.prunable().items()}
        masks.attach_masks(model, mask)
        opt = make_optimizer(model.parameters())
        x, y = torch.randn(2, 32, 784), torch.randint(0, 10, (2, 32))
        with weightfn.masked_without_multiply(model) if skip else contextlib.nullcontext() as skipping:
            assert skipping == (3 if skip else None)
            for _ in range(5):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x).reshape(-1, 10), y.reshape(-1)).backward()
                opt.step()
        return {k: weightfn.stored(l).detach() for k, l in model.prunable().items()}, mask

    fast, mask = trained(True)
    slow, _ = trained(False)
    for k in fast:
        assert torch.equal(fast[k], slow[k])
        assert torch.all(fast[k][mask[k] == 0] == 0)


def test_masked_frozen_values():
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    fn = weightfn.Masked(torch.tensor([1.0, 0.0, 1.0]), frozen=torch.tensor([9.0, 8.0, 7.0]))
    out = fn(w)
    assert out.tolist() == [1.0, 8.0, 3.0]
    out.sum().backward()
    assert w.grad.tolist() == [1.0, 0.0, 1.0]


def test_topk_scores_edge_popup_gradient():
    w = torch.tensor([[2.0, -3.0, 4.0]])
    fn = weightfn.TopKScores(torch.tensor([[0.1, 0.9, 0.5]]), fraction_kept=2 / 3)
    out = fn(w)
    assert out.tolist() == [[0.0, -3.0, 4.0]]
    out.sum().backward()
    assert fn.scores.grad.tolist() == [[2.0, -3.0, 4.0]]  # ∂L/∂S = ∂L/∂W_eff · W, pruned ones too


def test_topk_magnitude_dnw_passes_gradient_to_all_edges():
    w = torch.tensor([[0.1, -3.0, 0.2, 4.0]], requires_grad=True)
    out = weightfn.TopKMagnitude(fraction_kept=0.5)(w)
    assert out.tolist() == [[0.0, -3.0, 0.0, 4.0]]
    (out * torch.tensor([[1.0, 2, 3, 4]])).sum().backward()
    assert w.grad.tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_sign_scale_value_and_cancelled_gradient():
    w = torch.tensor([[[0.5, -1.5, 0.25, -0.25]]], requires_grad=True)  # (runs, out, in)
    out = weightfn.SignScale()(w)
    alpha = w.detach().abs().mean()
    assert torch.allclose(out, alpha * torch.tensor([[[1.0, -1, 1, -1]]]))
    binary = weightfn.SignScale(scale=False)(w)
    binary.sum().backward()
    assert w.grad.tolist() == [[[1.0, 0.0, 1.0, 1.0]]]  # |w| > 1 cancels the straight-through gradient


# BinaryConnect clips stored weights to exactly ±1: the surrogate must pass their gradient (|w| ≤ 1 inclusive).
AT_THE_EDGE = torch.tensor([-1.0, 1.0, 1.0 - 1e-7, -1.0 + 1e-7, 1.0 + 1e-7, -1.0 - 1e-7, 1.0 + 1e-6])
PASSED = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # float32: 1 ± 1e-7 are the neighbours of 1, inside and outside


def test_clipped_identity_passes_the_gradient_at_exactly_plus_minus_one():
    assert float(AT_THE_EDGE[4]) > 1.0 and float(AT_THE_EDGE[2]) < 1.0  # the values really straddle 1
    x = AT_THE_EDGE.clone().requires_grad_()
    weightfn.clipped_identity(x).sum().backward()
    assert x.grad.tolist() == PASSED


@pytest.mark.parametrize("make", [lambda: weightfn.SignScale(scale=False), lambda: weightfn.SignScale(scale=True),
                                  lambda: weightfn.StochasticSign([0]), lambda: weightfn.LearnedScale(torch.ones(1, 1))])
def test_binary_weight_functions_pass_the_gradient_at_the_clip_boundary(make):
    w = AT_THE_EDGE.reshape(1, 1, -1).clone().requires_grad_()
    fn = make()
    out = fn(w)
    if isinstance(fn, weightfn.SignScale) and fn.scale:  # α = mean|W| adds sign(W)/n · Σ g·B to every weight
        (out * torch.ones_like(out)).sum().backward()
        b = torch.where(w.detach() >= 0, 1.0, -1.0)
        alpha = w.detach().abs().mean()
        expected = alpha * torch.tensor(PASSED) + b.reshape(-1) / 7 * b.sum()
        assert torch.allclose(w.grad.reshape(-1), expected)
    else:
        out.sum().backward()
        assert w.grad.reshape(-1).tolist() == PASSED


def test_run_generators_draw_per_run_and_resume_from_their_state():
    prob = torch.full((3, 1000), 0.5)
    stacked = weightfn.RunGenerators([7, 8, 9])
    alone = weightfn.RunGenerators([8])
    first = stacked.bernoulli(prob)
    assert torch.equal(first[1], alone.bernoulli(prob[1:2])[0])  # run 8 draws the same, stacked or alone
    assert not torch.equal(first[0], first[1])
    state = stacked.get_extra_state()
    later = stacked.bernoulli(prob)
    again = weightfn.RunGenerators([7, 8, 9])
    again.set_extra_state(state)
    assert torch.equal(again.bernoulli(prob), later)
    with pytest.raises(ValueError, match="run generators"):
        stacked.bernoulli(torch.full((2, 5), 0.5))


def test_sampled_mask_rescaling_and_gradient():
    fn = weightfn.SampledMask(torch.zeros(1, 1000), [0], rescale=True)
    w = torch.ones(1, 1000)
    out = fn(w)
    kept = int((out > 0).sum())
    assert 400 < kept < 600
    assert torch.allclose(out[out > 0], torch.full((kept,), 1000 / kept))
    out.sum().backward()
    assert fn.scores.grad is not None and torch.all(fn.scores.grad != 0)


def test_detach_all_bakes_effective_weight():
    model = models.build("lenet_300_100", [0])
    layer = model.layers[0]
    weightfn.attach(layer, weightfn.TopKMagnitude(0.1))
    effective = layer.weight.detach().clone()
    weightfn.detach_all(model)
    assert not weightfn.functions(layer) and torch.equal(layer.weight.detach(), effective)


def test_learned_scale_gradients_and_start():
    # XNOR-Net Table 3a: α a parameter per output filter. W gets g·α·1{|W| ≤ 1} (no α(W) term, unlike
    # SignScale); α gets Σ g·sign(W) over its filter.
    torch.manual_seed(0)
    w = (torch.randn(2, 3, 4, 5) * 0.8).requires_grad_()  # (runs, out, in, k)
    fn = weightfn.LearnedScale(torch.ones(2, 3)).start_at(w)
    alpha = w.detach().abs().mean((2, 3))
    assert torch.equal(fn.alpha.detach(), alpha)  # starts at the analytic α of its weights
    out = fn(w)
    b = torch.where(w.detach() >= 0, 1.0, -1.0)
    assert torch.equal(out.detach(), alpha[..., None, None] * b)  # same network as SignScale at the start
    assert torch.allclose(out, weightfn.SignScale(scale=True)(w.detach()))
    g = torch.randn_like(w)
    (out * g).sum().backward()
    assert torch.allclose(w.grad, g * alpha[..., None, None] * (w.detach().abs() <= 1))
    assert torch.allclose(fn.alpha.grad, (g * b).sum((2, 3)))
    with pytest.raises(ValueError, match="alpha shape"):
        fn(torch.zeros(2, 4, 4, 5))
    with pytest.raises(ValueError, match="needs 2 dims"):
        weightfn.LearnedScale(torch.ones(3))


def test_ste_sign_is_the_shared_binarisation():
    x = AT_THE_EDGE.clone().requires_grad_()
    y = weightfn.ste_sign(x)
    assert y.tolist() == torch.where(AT_THE_EDGE >= 0, 1.0, -1.0).tolist()
    y.sum().backward()
    assert x.grad.tolist() == PASSED


def test_ste_sign_of_signed_zeros_infinities_and_nan_is_that_of_torch_where():
    # ste_sign computes (x ≥ 0)·2 − 1 for speed; on these it must give what torch.where(x >= 0, 1, -1) does
    x = torch.tensor([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e-45, -1e-45])
    got, want = weightfn.ste_sign(x), torch.where(x >= 0, 1.0, -1.0)
    assert torch.equal(got, want) and torch.equal(torch.signbit(got), torch.signbit(want))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ste_sign_is_straight_through_of_sign_and_clipped_identity(dtype):
    # ste_sign is one fused node for speed; it must equal the composition its docstring names
    x = torch.cat([AT_THE_EDGE.to(dtype), torch.randn(500, generator=torch.Generator().manual_seed(0), dtype=dtype) * 2])
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    fused = x.clone().requires_grad_()
    composed = x.clone().requires_grad_()
    a = weightfn.ste_sign(fused)
    b = weightfn.straight_through(torch.where(composed.detach() >= 0, 1.0, -1.0).to(dtype), weightfn.clipped_identity(composed))
    a.backward(grad)
    b.backward(grad)
    assert a.dtype == dtype and torch.equal(a, b) and torch.equal(fused.grad, composed.grad)
