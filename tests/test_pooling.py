"""lotterylib.pooling.max_pool2x2 is F.max_pool2d(x, 2): the same values and the same gradients,
ties included (a window of equal ±1 activations routes its gradient to the first maximum)."""

import pytest
import torch
import torch.nn.functional as F

from lotterylib.pooling import max_pool2x2


def _inputs():
    g = torch.Generator().manual_seed(0)
    yield "normal", torch.randn(5, 6, 12, 12, generator=g)
    yield "signs (ties everywhere)", torch.randint(0, 2, (5, 6, 12, 12), generator=g).float() * 2 - 1
    yield "relu (windows of zeros)", torch.relu(torch.randn(5, 6, 12, 12, generator=g))
    yield "three levels", torch.randint(0, 3, (4, 3, 8, 8), generator=g).double()
    yield "odd height and width", torch.randn(3, 2, 7, 9, generator=g)
    yield "three dimensions", torch.randint(0, 2, (4, 6, 6), generator=g).float()
    yield "a strided view", torch.randn(5, 12, 10, 10, generator=g)[:, ::2]


@pytest.mark.parametrize("name, x", list(_inputs()), ids=[n for n, _ in _inputs()])
def test_values_and_gradients_are_those_of_max_pool2d(name, x):
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    want = F.max_pool2d(theirs, 2)
    got = max_pool2x2(ours)
    assert got.shape == want.shape and torch.equal(got, want)
    grad = torch.randn(want.shape, generator=torch.Generator().manual_seed(1), dtype=want.dtype)
    want.backward(grad)
    got.backward(grad)
    assert torch.equal(ours.grad, theirs.grad), name


def test_the_gradient_check_catches_another_tie_rule():
    # The comparison above can fail: the same maxima through torch.maximum's own autograd (which splits
    # a tie's gradient between the equal entries) give the right values but another gradient on ties.
    x = torch.randint(0, 2, (2, 3, 6, 6), generator=torch.Generator().manual_seed(0)).float() * 2 - 1
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    rows = torch.maximum(ours[..., 0::2, :], ours[..., 1::2, :])
    split = torch.maximum(rows[..., 0::2], rows[..., 1::2])
    want = F.max_pool2d(theirs, 2)
    assert torch.equal(split, want)
    split.sum().backward()
    want.sum().backward()
    assert not torch.equal(ours.grad, theirs.grad)
    assert torch.equal(F.max_pool2d(x, 2), max_pool2x2(x))


def test_without_gradient_it_only_pools():
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        assert torch.equal(max_pool2x2(x), F.max_pool2d(x, 2))
