"""Checkers of chapter 05's exercises (binary networks): sign·α with a straight-through gradient, the
bit-packed XNOR + popcount product, and DoReFa's k-bit gradient.

Each checker runs the reader's plain-PyTorch (or numpy) function against lotterylib's own
implementation — :class:`lotterylib.weightfn.SignScale`, :func:`lotterylib.bitpack.pack_signs` and
:func:`lotterylib.bitpack.xnor_matmul`, :func:`lotterylib.binary.dorefa_gradient` — on random inputs and
on the edge cases that tell a right answer from a nearly right one, and reports PASS or what failed
with a hint (:func:`lotterylib.exercises.run`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .. import binary, bitpack, weightfn
from . import Case, Report, run

# --- (a) sign·α with a straight-through gradient ------------------------------------------------------

ALPHA_GRADIENTS = ("full", "detached")


def reference_sign_scale(weight: torch.Tensor, alpha_gradient: str = "full") -> torch.Tensor:
    """What the reader's ``sign_scale(W)`` must compute, for a plain layer weight (out, ...).

    ``"full"``: :class:`lotterylib.weightfn.SignScale` (α = mean|W| per output filter, differentiated as
    the function of W it is). ``"detached"``: the same value, α taken as a constant in the backward pass
    (only the straight-through sign passes a gradient: ∂L/∂W = ∂L/∂W̃ · α · 1_{|W| ≤ 1}).
    """
    if alpha_gradient not in ALPHA_GRADIENTS:
        raise ValueError(f"alpha_gradient must be one of {ALPHA_GRADIENTS}, got {alpha_gradient!r}")
    if alpha_gradient == "full":
        return weightfn.SignScale(scale=True, run_dims=0)(weight)
    return weightfn.mean_abs_per_filter(weight.detach(), run_dims=0) * weightfn.ste_sign(weight)


def _value_and_grad(fn: Callable, weight: torch.Tensor, upstream: torch.Tensor):
    w = weight.detach().clone().requires_grad_()
    out = fn(w)
    if not isinstance(out, torch.Tensor):
        raise AssertionError(f"return a torch.Tensor, got {type(out).__name__}")
    if out.shape != weight.shape:
        raise AssertionError(f"the output must have the weight's shape {tuple(weight.shape)}, got {tuple(out.shape)}")
    if not out.requires_grad:
        raise AssertionError("the output carries no gradient: the sign must pass one straight through to W "
                             "(e.g. weightfn.straight_through, or w + (hard - w).detach())")
    (out * upstream).sum().backward()
    grad = w.grad if w.grad is not None else torch.zeros_like(w)
    return out.detach(), grad


def check_sign_scale(fn: Callable[[torch.Tensor], torch.Tensor], alpha_gradient: str = "full",
                     show: bool = True) -> Report:
    """Check ``fn(W) → α·sign(W)`` for a plain layer weight W (out, ...): value and gradient.

    ``alpha_gradient``: ``"full"`` (α differentiated as mean|W|, as lotterylib's SignScale) or
    ``"detached"`` (α a constant in the backward pass: the simpler variant).
    """
    if alpha_gradient not in ALPHA_GRADIENTS:
        raise ValueError(f"alpha_gradient must be one of {ALPHA_GRADIENTS}, got {alpha_gradient!r}")
    gen = torch.Generator().manual_seed(5)

    def compare(weight: torch.Tensor, what: str, grads: bool = True):
        upstream = torch.randn(weight.shape, generator=gen)
        got, got_grad = _value_and_grad(fn, weight, upstream)
        ref, ref_grad = _value_and_grad(lambda w: reference_sign_scale(w, alpha_gradient), weight, upstream)
        if not torch.allclose(got, ref, rtol=1e-5, atol=1e-7):
            i = int((got - ref).abs().flatten().argmax())
            raise AssertionError(f"{what}: value {got.flatten()[i].item():.6g} where α·sign(W) is "
                                 f"{ref.flatten()[i].item():.6g} (W = {weight.flatten()[i].item():.6g})")
        if grads and not torch.allclose(got_grad, ref_grad, rtol=1e-4, atol=1e-6):
            i = int((got_grad - ref_grad).abs().flatten().argmax())
            raise AssertionError(f"{what}: gradient {got_grad.flatten()[i].item():.6g} where it should be "
                                 f"{ref_grad.flatten()[i].item():.6g} (W = {weight.flatten()[i].item():.8g})")

    def random_conv(f):
        w = torch.randn(6, 3, 5, 5, generator=gen) * 0.6
        compare(w, "a conv weight (6, 3, 5, 5)")

    def random_linear(f):
        compare(torch.randn(4, 20, generator=gen), "a linear weight (4, 20)")

    def alpha_per_filter(f):
        w = torch.randn(3, 2, 3, 3, generator=gen) * torch.tensor([0.01, 0.5, 2.0]).reshape(3, 1, 1, 1)
        out = fn(w.clone())
        ref = reference_sign_scale(w)
        alpha = out.detach().abs().reshape(3, -1)
        if not torch.allclose(alpha, ref.detach().abs().reshape(3, -1), rtol=1e-5):
            raise AssertionError(f"|output| per filter is {alpha.mean(1).tolist()}, it should be mean|W| of each "
                                 f"output filter {ref.detach().abs().reshape(3, -1)[:, 0].tolist()}: α is one number "
                                 "per output filter (a mean over its inputs and kernel), not per layer nor per weight")
        compare(w, "filters of very different scales")

    def sign_of_zero(f):
        w = torch.tensor([[0.0, 0.3, -0.2, 0.0], [0.5, 0.0, -0.1, 0.2]])
        out = fn(w.clone()).detach()
        if (out[w == 0] <= 0).any():
            raise AssertionError("a weight of exactly 0 must become +α (sign(0) = +1, as the bit packing stores "
                                 "it); torch.sign(0) is 0 — use torch.where(W >= 0, 1., -1.)")
        compare(w, "weights of exactly 0")

    def boundary_included(f):
        w = torch.tensor([[1.0, -1.0, 0.5, -0.25], [-1.0, 0.3, 1.0, 0.7]])
        upstream = torch.ones_like(w)
        _, grad = _value_and_grad(fn, w, upstream)
        ref_grad = _value_and_grad(lambda x: reference_sign_scale(x, alpha_gradient), w, upstream)[1]
        at = w.abs() == 1
        if not torch.allclose(grad[at], ref_grad[at], rtol=1e-4, atol=1e-6):
            raise AssertionError("weights at exactly ±1 must still get the straight-through gradient (|W| ≤ 1, "
                                 f"both ends included): got {grad[at].tolist()}, want {ref_grad[at].tolist()}. "
                                 "BinaryConnect clips W to [−1, 1], so clipped weights sit exactly there; "
                                 "F.hardtanh's derivative is 0 at ±1 and (W.abs() < 1) excludes them")
        compare(w, "weights at exactly ±1")

    def just_outside(f):
        one_up = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)).item()  # 1 + 1.19e-7 in float32
        w = torch.tensor([[1.0 + 1e-7, -(1.0 + 1e-7), 1.0 - 1e-7, 0.2],
                          [one_up, -one_up, 2.0, -3.0]])
        compare(w, "weights at 1 ± 1e-7 and beyond 1 (cancelled where |W| > 1)")

    def dtype_and_input(f):
        w = torch.randn(5, 7, generator=gen, dtype=torch.float64)
        keep = w.clone()
        out = fn(w)
        if out.dtype != torch.float64:
            raise AssertionError(f"a float64 weight gave a {out.dtype} output: keep the weight's dtype")
        if not torch.equal(w, keep):
            raise AssertionError("the function changed the weight it was given: compute a new tensor instead")

    cases = [Case("random conv weight: value and gradient", random_conv),
             Case("random linear weight: value and gradient", random_linear),
             Case("α per output filter", alpha_per_filter),
             Case("sign(0) = +1", sign_of_zero),
             Case("gradient passes at |W| = 1 exactly", boundary_included),
             Case("gradient cancelled just beyond 1, passed just inside", just_outside),
             Case("dtype kept, input untouched", dtype_and_input)]
    name = "sign·α with a straight-through gradient" + (" (α detached)" if alpha_gradient == "detached" else "")
    return run(name, fn, cases, show)


# --- (b) the bit-packed XNOR + popcount product ------------------------------------------------------

#: Dot lengths the product is checked on: one bit, a word less one, one word, one more, odd lengths.
ODD_K = (1, 7, 63, 64, 65, 127, 129, 1000)


def _as_words(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype != np.uint64:
        raise AssertionError(f"pack into uint64 words (numpy.uint64, or torch.uint64), got dtype {x.dtype}")
    return x


def check_xnor_popcount(pack: Callable, xnor_matmul: Callable, show: bool = True) -> Report:
    """Check the reader's ``pack(x) → words`` and ``xnor_matmul(a_words, b_words, k) → a·bᵀ``.

    ``pack``: a float array (M, K) → uint64 (M, ⌈K/64⌉), bit t of word w = entry 64·w + t, 1 for x ≥ 0,
    padding bits 0 (as :func:`lotterylib.bitpack.pack_signs`). ``xnor_matmul``: two packed matrices (M, W),
    (N, W) and the true length K → the integer matrix (M, N) of ±1 dot products, K − 2·popcount(a ⊕ b)
    (as :func:`lotterylib.bitpack.xnor_matmul`, and equal to the float product of the signs).
    """
    rng = np.random.default_rng(64)

    def signs(m, k):
        return np.where(rng.standard_normal((m, k)) >= 0, 1.0, -1.0)

    def pack_matches(f):
        for k in ODD_K:
            x = rng.standard_normal((3, k))
            got = _as_words(pack(x.copy()))
            want = bitpack.pack_signs(x)
            if got.shape != want.shape:
                raise AssertionError(f"K = {k}: {k} bits take ⌈K/64⌉ = {want.shape[1]} words per row, shape "
                                     f"{want.shape}; got {got.shape}")
            if not np.array_equal(got, want):
                r, w = np.argwhere(got != want)[0]
                raise AssertionError(f"K = {k}: row {r}, word {w} is {int(got[r, w]):#018x}, bitpack packs "
                                     f"{int(want[r, w]):#018x} (bit t of word w is entry 64·w + t, 1 = +1)")

    def pack_padding_and_zero(f):
        x = np.full((2, 65), -1.0)
        x[0, 64] = 1.0
        x[1, 0] = 0.0
        got = _as_words(pack(x))
        if got.shape != (2, 2) or int(got[0, 1]) != 1 or int(got[0, 0]) != 0:
            raise AssertionError("K = 65: the second word holds entry 64 in bit 0 and nothing else: the padding "
                                 f"bits must be 0; got words {[hex(int(v)) for v in got[0]]}")
        if int(got[1, 0]) != 1:
            raise AssertionError("an entry of exactly 0 is packed as +1 (bit 1), as sign(0) = +1")

    def product_on_bitpack_words(f):
        for k in ODD_K:
            a, b = signs(5, k), signs(6, k)
            got = np.asarray(xnor_matmul(bitpack.pack_signs(a), bitpack.pack_signs(b), k))
            want = (a @ b.T).astype(np.int64)
            if got.shape != want.shape:
                raise AssertionError(f"K = {k}: (5, K)·(6, K)ᵀ is (5, 6), got shape {got.shape}")
            if not np.array_equal(got, want):
                d = got.astype(np.float64) - want
                hint = (" — the padding bits count: use K, not 64·words" if np.all(d == 64 * bitpack.words(k) - k)
                        else " — is it K − 2·popcount(a XOR b)?")
                raise AssertionError(f"K = {k}: got {got.flatten()[:3].tolist()}…, the ±1 product is "
                                     f"{want.flatten()[:3].tolist()}…{hint}")
            if not np.array_equal(want, bitpack.xnor_matmul(bitpack.pack_signs(a), bitpack.pack_signs(b), k)):
                raise AssertionError("internal: bitpack.xnor_matmul disagrees with the float product")

    def product_of_own_words(f):
        k = 200
        a, b = signs(4, k), signs(3, k)
        got = np.asarray(xnor_matmul(pack(a), pack(b), k))
        if not np.array_equal(got, (a @ b.T).astype(np.int64)):
            raise AssertionError("your pack and xnor_matmul together do not give the ±1 product at K = 200")

    def extremes_and_dtype(f):
        k = 129
        a = np.ones((2, k))
        a[1] = -1.0
        got = np.asarray(xnor_matmul(bitpack.pack_signs(a), bitpack.pack_signs(a), k))
        if got.tolist() != [[k, -k], [-k, k]]:
            raise AssertionError(f"identical rows give +K = {k}, opposite rows −K; got {got.tolist()}")
        if not np.issubdtype(got.dtype, np.signedinteger):
            raise AssertionError(f"return signed integers (the product is exact and can be negative: cast the "
                                 f"popcounts to np.int64 before K − 2·…), got dtype {got.dtype}")

    cases = [Case("pack equals bitpack.pack_signs on odd K", pack_matches),
             Case("pack: padding bits 0, sign(0) = +1", pack_padding_and_zero),
             Case("xnor_matmul equals the ±1 product on odd K", product_on_bitpack_words),
             Case("your pack and xnor_matmul together", product_of_own_words),
             Case("identical and opposite rows, integer result", extremes_and_dtype)]
    return run("bit-packed XNOR + popcount product", (pack, xnor_matmul), cases, show)


# --- DoReFa's k-bit gradient -----------------------------------------------------------------------

def check_dorefa_gradient(fn: Callable, show: bool = True) -> Report:
    """Check ``fn(grad, bits, noise) → quantised grad``: DoReFa's ``fg`` for a (batch, ...) gradient.

    Per example: m = max|g| over everything but the batch dim, g / m · ½ + ½ + noise / (2^k − 1), clipped
    to [0, 1], rounded to k bits, mapped back by 2·m·(q − ½) (as :func:`lotterylib.binary.dorefa_gradient`);
    ``noise`` is given, uniform in [−½, ½).
    """
    gen = torch.Generator().manual_seed(6)

    def compare(g, bits, noise, what):
        got = fn(g.clone(), bits, noise.clone())
        if not isinstance(got, torch.Tensor) or got.shape != g.shape:
            raise AssertionError(f"{what}: return a tensor shaped like the gradient {tuple(g.shape)}")
        want = binary.dorefa_gradient(g, bits, noise)
        if not torch.isfinite(got).all():
            raise AssertionError(f"{what}: the result has NaN or inf — an all-zero example has m = 0: keep it 0")
        if not torch.allclose(got, want, rtol=1e-4, atol=1e-7):
            i = int((got - want).abs().flatten().argmax())
            raise AssertionError(f"{what}: {got.flatten()[i].item():.6g} where fg gives {want.flatten()[i].item():.6g}")

    def random_cases(f):
        for bits in (1, 2, 4, 8):
            g = torch.randn(4, 3, 5, generator=gen)
            compare(g, bits, torch.rand(g.shape, generator=gen) - 0.5, f"{bits} bits, random gradient (4, 3, 5)")

    def per_example(f):
        g = torch.randn(3, 10, generator=gen) * torch.tensor([[1e-4], [1.0], [100.0]])
        compare(g, 2, torch.zeros_like(g), "examples of very different scales (max|g| per example, not per batch)")

    def no_noise_levels(f):
        g = torch.tensor([[1.0, -1.0, 0.5, 0.0, -0.2]])
        got = fn(g.clone(), 2, torch.zeros_like(g))
        want = binary.dorefa_gradient(g, 2, torch.zeros_like(g))
        if not torch.allclose(got, want, atol=1e-6):
            raise AssertionError(f"2 bits, no noise: {got.tolist()} where fg gives {want.tolist()} (4 levels "
                                 "m·{−1, −⅓, ⅓, 1}: there is no zero level)")

    def noise_in_levels(f):
        g = torch.tensor([[1.0, -1.0, 0.9, 0.1, -0.35, 0.6]])
        compare(g, 2, torch.tensor([[0.49, -0.49, 0.3, -0.4, 0.45, -0.2]]),
                "noise of up to ½ level (noise / (2^k − 1) is added to the [0, 1] value)")

    def zero_example(f):
        g = torch.zeros(2, 6)
        g[1] = torch.randn(6, generator=gen)
        compare(g, 4, torch.rand(g.shape, generator=gen) - 0.5, "an all-zero example")

    cases = [Case("random gradients at 1, 2, 4, 8 bits", random_cases),
             Case("max |g| per example", per_example),
             Case("levels without noise", no_noise_levels),
             Case("noise in units of one level", noise_in_levels),
             Case("an all-zero example stays zero", zero_example)]
    return run("DoReFa's k-bit gradient (fg)", fn, cases, show)
