"""Chapter 05's exercise checkers: each passes the worked solution and fails the stub and typical mistakes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lotterylib.exercises import binary as ex
from lotterylib.exercises import stub

# --- (a) sign·α with a straight-through gradient ---------------------------------------------------------


def _sign_scale(hard_sign=None, alpha=None, soft=None, detach_alpha=False):
    """The solution, with one of its three parts swapped for a mistake."""
    def fn(w):
        a = alpha(w) if alpha else w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)
        a = a.detach() if detach_alpha else a
        h = hard_sign(w) if hard_sign else torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
        s = soft(w) if soft else w * (w.detach().abs() <= 1).to(w.dtype)
        return a * (s + (h - s).detach())
    return fn


solution = _sign_scale()
solution_detached = _sign_scale(detach_alpha=True)


def test_sign_scale_checker_passes_the_solutions():
    assert ex.check_sign_scale(solution, show=False)
    assert ex.check_sign_scale(solution_detached, alpha_gradient="detached", show=False)
    # torch.clamp passes the gradient at its ends, so it is a right surrogate too
    assert ex.check_sign_scale(_sign_scale(soft=lambda w: w.clamp(-1, 1)), show=False)


def test_sign_scale_checker_fails_the_stub():
    report = ex.check_sign_scale(stub, show=False)
    assert not report and "not implemented" in report.failures[0]


@pytest.mark.parametrize("mistake,expected", [
    (_sign_scale(hard_sign=torch.sign), "sign(0) = +1"),                                    # sign(0) = 0
    (_sign_scale(alpha=lambda w: w.abs().mean()), "α per output filter"),                   # one α per layer
    (_sign_scale(alpha=lambda w: w.abs().flatten(1).amax(1).reshape(-1, *[1] * (w.dim() - 1))), "random"),  # max|W|
    (_sign_scale(soft=lambda w: w * (w.detach().abs() < 1).to(w.dtype)), "exactly"),       # ±1 excluded
    (_sign_scale(soft=F.hardtanh), "exactly"),                                              # hardtanh: 0 at ±1
    (_sign_scale(soft=lambda w: w), "beyond 1"),                                            # never cancelled
    (lambda w: w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True) * torch.where(w >= 0, 1.0, -1.0),
     "random"),                                                                              # no gradient at all
])
def test_sign_scale_checker_fails_typical_mistakes(mistake, expected):
    report = ex.check_sign_scale(mistake, show=False)
    assert not report
    assert any(expected in f for f in report.failures), report.failures


def test_sign_scale_checker_tells_the_two_alpha_gradients_apart():
    assert not ex.check_sign_scale(solution_detached, show=False)  # the full gradient is asked for
    assert not ex.check_sign_scale(solution, alpha_gradient="detached", show=False)
    with pytest.raises(ValueError, match="alpha_gradient"):
        ex.check_sign_scale(solution, alpha_gradient="half")


def test_sign_scale_checker_fails_a_function_that_changes_its_input_or_dtype():
    def in_place(w):
        out = solution(w)
        with torch.no_grad():
            w.clamp_(-0.5, 0.5)
        return out

    assert not ex.check_sign_scale(in_place, show=False)
    assert not ex.check_sign_scale(lambda w: solution(w).float(), show=False)


# --- (b) the bit-packed XNOR + popcount product ------------------------------------------------------


def pack(x, msb_first=False, negative_is_one=False):
    x = np.asarray(x)
    m, k = x.shape
    w = -(-k // 64)
    bits = np.zeros((m, 64 * w), dtype=np.uint64)
    bits[:, :k] = (x < 0) if negative_is_one else (x >= 0)
    shifts = np.arange(64, dtype=np.uint64)
    if msb_first:
        shifts = shifts[::-1]
    return np.bitwise_or.reduce(bits.reshape(m, w, 64) << shifts, axis=2)


def xnor_matmul(a, b, k):
    x = a[:, None, :] ^ b[None, :, :]
    return k - 2 * np.bitwise_count(x).sum(-1).astype(np.int64)


def test_xnor_checker_passes_the_solution():
    assert ex.check_xnor_popcount(pack, xnor_matmul, show=False)


def test_xnor_checker_fails_the_stub():
    assert not ex.check_xnor_popcount(stub, stub, show=False)
    assert not ex.check_xnor_popcount(pack, stub, show=False)  # half done is not done


@pytest.mark.parametrize("p,mm,expected", [
    (lambda x: pack(x, msb_first=True), xnor_matmul, "bitpack packs"),           # bit order reversed
    (lambda x: pack(x, negative_is_one=True), xnor_matmul, "bitpack packs"),     # 1 for −1
    (pack, lambda a, b, k: 64 * a.shape[1] - 2 * np.bitwise_count(a[:, None] ^ b[None]).sum(-1).astype(np.int64),
     "use K, not 64·words"),                                                      # padding length counted
    (pack, lambda a, b, k: np.bitwise_count(~(a[:, None] ^ b[None])).sum(-1).astype(np.int64),
     "K − 2·popcount"),                                                           # counts agreements only
    (pack, lambda a, b, k: k - 2 * np.bitwise_count(a[:, None] ^ b[None]).sum(-1).astype(np.float64),
     "signed integers"),                                                          # right values, float dtype
    (pack, lambda a, b, k: k - 2 * np.bitwise_count(a[:, None] ^ b[None]).sum(-1),
     "the ±1 product"),                                                           # unsigned: negatives wrap
])
def test_xnor_checker_fails_typical_mistakes(p, mm, expected):
    report = ex.check_xnor_popcount(p, mm, show=False)
    assert not report
    assert any(expected in f for f in report.failures), report.failures


def test_xnor_checker_fails_a_pack_with_a_wrong_word_count():
    report = ex.check_xnor_popcount(lambda x: pack(np.pad(np.asarray(x), ((0, 0), (0, 64)), constant_values=-1)),
                                    xnor_matmul, show=False)
    assert not report and any("words per row" in f for f in report.failures)


# --- DoReFa's k-bit gradient -----------------------------------------------------------------------


def fg(g, bits, noise, per_example=True, scale_noise=True, clip=True, guard=True, double=True):
    n = 2 ** bits - 1
    if per_example:
        m = g.abs().flatten(1).amax(1).reshape(-1, *[1] * (g.dim() - 1))
    else:
        m = g.abs().max().expand(g.shape[0], *[1] * (g.dim() - 1))
    safe = torch.where(m > 0, m, torch.ones_like(m)) if guard else m
    r = g / safe / 2 + 0.5 + (noise / n if scale_noise else noise)
    r = r.clamp(0, 1) if clip else r
    q = torch.round(r * n) / n - 0.5
    back = (2 if double else 1) * safe * q
    return torch.where(m > 0, back, torch.zeros_like(g)) if guard else back


def test_dorefa_gradient_checker_passes_the_solution_and_fails_the_stub():
    assert ex.check_dorefa_gradient(fg, show=False)
    assert not ex.check_dorefa_gradient(stub, show=False)


@pytest.mark.parametrize("kw,expected", [
    ({"per_example": False}, "per example"),   # one max for the whole batch
    ({"scale_noise": False}, "random"),         # noise of a whole [0, 1] range, not one level
    ({"double": False}, "random"),              # mapped back to [−m/2, m/2]: the factor 2 forgotten
    ({"guard": False}, "NaN"),                  # 0 / 0 on an all-zero example
])
def test_dorefa_gradient_checker_fails_typical_mistakes(kw, expected):
    report = ex.check_dorefa_gradient(lambda g, b, n: fg(g, b, n, **kw), show=False)
    assert not report
    assert any(expected in f for f in report.failures), report.failures


def test_dorefa_gradient_checker_fails_plain_rounding_without_the_mapping():
    def rounded(g, bits, noise):  # rounds g / m to 2^k − 1 steps of [−1, 1] around zero: a zero level
        m = g.abs().flatten(1).amax(1).reshape(-1, *[1] * (g.dim() - 1)).clamp_min(1e-30)
        n = 2 ** bits - 1
        return torch.round(g / m * n) / n * m

    assert not ex.check_dorefa_gradient(rounded, show=False)
