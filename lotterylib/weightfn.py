"""The one mechanism of the book: the weight a layer uses is a function of what it stores.

Every method in the five papers is a choice of that function, registered with
``torch.nn.utils.parametrize`` on a layer's ``weight``:

=============================  =========================================  ====================
paper                          effective weight                            class
=============================  =========================================  ====================
Lottery ticket (IMP)           W ⊙ M                                       :class:`Masked`
Mask-0 variants (Zhou et al.)  W ⊙ M + W_frozen ⊙ (1 − M)                  :class:`Masked`
Learned supermask (Zhou)       W ⊙ Bernoulli(σ(S))  (straight-through)     :class:`SampledMask`
Edge-popup (Ramanujan)         W ⊙ top-k(|S|)       (straight-through)     :class:`TopKScores`
Neural wirings (Wortsman)      top-k(|W|)           (straight-through)     :class:`TopKMagnitude`
  … its no-update control      top-k(|W|)           (grad. to kept only)   :class:`TopKMagnitudeNoUpdate`
BWN / XNOR (Rastegari)         α ⊙ sign(W)          (straight-through)     :class:`SignScale`
  … α a learned parameter      α_learned ⊙ sign(W)  (straight-through)     :class:`LearnedScale`
BinaryConnect, stochastic      ±1 ~ hard_sigmoid(W) (straight-through)     :class:`StochasticSign`
DoReFa-Net, k-bit weights      quantize_k(tanh W)   (straight-through)     :class:`DoReFaWeight`
Deep Compression (Han)         codebook[codes] ⊙ M  (grad. summed/cluster)  :class:`SharedWeights`
=============================  =========================================  ====================

(Net-Trim is the exception: it solves for a new sparse W after training, and stores the result
with :class:`Masked`.)

All of them share one building block, :func:`straight_through`: the value of a hard, non-
differentiable function in the forward pass, the gradient of a soft surrogate in the backward pass.

Shapes: lotterylib's layers keep a *population* of independent runs on dim 0 — a linear weight is
``(runs, out, in)``, a conv weight ``(runs, out, in, kh, kw)``. ``run_dims`` (default 1) says how
many leading dims index runs; per-run operations (top-k, scales) reduce over the rest. Pass
``run_dims=0`` for a plain ``nn.Linear``/``nn.Conv2d``.
"""

from __future__ import annotations

import contextlib

from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hard: Tensor, soft: Tensor) -> Tensor:  # type: ignore[override]
        return hard.detach().clone()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return None, grad


def straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """Exactly the value of ``hard``; in the backward pass, the gradient flows into ``soft``.

    ``hard`` and ``soft`` have the same shape. Unlike ``soft + (hard - soft).detach()`` the forward
    value is bit-exact (a zero stays exactly zero).
    """
    if hard.shape != soft.shape:
        raise ValueError(f"straight_through needs equal shapes, got {tuple(hard.shape)} and {tuple(soft.shape)}")
    return _StraightThrough.apply(hard, soft)


def clipped_identity(x: Tensor) -> Tensor:
    """The straight-through surrogate of ``sign``: gradient 1 where |x| ≤ 1 (both ends included), 0 beyond.

    Its forward value is only ever used as the ``soft`` side of :func:`straight_through`. The
    derivative of ``hardtanh`` would do the same except at exactly ±1, where PyTorch's is 0: but
    BinaryConnect clips the stored weights to [−1, 1], so a clipped weight sits at exactly ±1 and would
    get no gradient of its own. Courbariaux et al. and Rastegari et al. cancel the gradient only
    where |x| > 1 (``1_{|r| ≤ 1}``), which is what this does.
    """
    return x * (x.detach().abs() <= 1.0).to(x.dtype)


def ste_sign(x: Tensor) -> Tensor:
    """±1 (sign(0) = +1) forward; backward the gradient passed where |x| ≤ 1 and cancelled beyond.

    The binarisation shared by every binary weight function and by binary activations
    (:func:`lotterylib.binary.binarize_activations`): :func:`straight_through` with the surrogate
    :func:`clipped_identity`. Same shape and dtype as ``x``.
    """
    return _SignClippedIdentity.apply(x)


class _SignClippedIdentity(torch.autograd.Function):
    """:func:`ste_sign` in one node: ``straight_through(sign(x), clipped_identity(x))`` made of two
    element-wise passes instead of six (binary nets binarise every activation, so it is a hot path)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        # (x ≥ 0)·2 − 1, not torch.where(x >= 0, 1, -1): the same values (sign(0) = sign(−0) = +1,
        # NaN → −1) in a third of the time on the CPU, where torch.where walks element by element.
        return (x >= 0).to(x.dtype).mul_(2.0).sub_(1.0)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1.0).to(grad.dtype)


class RunGenerators(nn.Module):
    """One ``torch.Generator`` per run, seeded from ``seeds``: the random draws of a stochastic weight
    function, so that run i draws the same numbers whether it trains alone or stacked with others.

    The generators are made on the device of the first draw. Their states travel in the module's
    ``state_dict`` (as extra state), so a checkpointed training resumes the same draws; a state saved
    on another kind of device cannot be restored and the generators restart from their seeds.
    """

    def __init__(self, seeds: Sequence[int]):
        super().__init__()
        self.seeds = [int(s) for s in seeds]
        if not self.seeds:
            raise ValueError("RunGenerators needs one seed per run, got none")
        self._generators: list[torch.Generator] = []
        self._pending: dict | None = None  # a state loaded before the first draw

    def generators(self, device: torch.device) -> list[torch.Generator]:
        if not self._generators or self._generators[0].device.type != device.type:
            self._generators = [torch.Generator(device=device).manual_seed(s) for s in self.seeds]
            pending, self._pending = self._pending, None
            if pending is not None and pending["device"] == device.type:
                for g, state in zip(self._generators, pending["states"]):
                    g.set_state(state)
        return self._generators

    def bernoulli(self, prob: Tensor) -> Tensor:
        """A 0/1 draw with probability ``prob``; run i (``prob[i]``) uses generator i."""
        gens = self.generators(prob.device)
        if prob.shape[0] != len(gens):
            raise ValueError(f"{prob.shape[0]} runs drawn with {len(gens)} run generators")
        # uniform < p is a Bernoulli(p) draw; torch.rand is vectorised where torch.bernoulli with a
        # generator draws element by element on the CPU (2–3× slower for a LeNet layer).
        return torch.stack([(torch.rand(p.shape, generator=g, device=p.device, dtype=p.dtype) < p).to(p.dtype)
                            for p, g in zip(prob, gens)])

    def get_extra_state(self) -> dict:
        if not self._generators:
            return self._pending or {"device": None, "states": []}
        return {"device": self._generators[0].device.type, "states": [g.get_state() for g in self._generators]}

    def set_extra_state(self, state: dict) -> None:
        self._generators, self._pending = [], (state if state.get("states") else None)

    def extra_repr(self) -> str:
        return f"seeds={self.seeds}"


def _check_fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return value


def topk_mask(scores: Tensor, fraction_kept: float, run_dims: int = 1) -> Tensor:
    """0/1 mask keeping the ``round(fraction_kept · n)`` largest scores within each run.

    ``scores``: ``(*runs, *rest)`` with ``run_dims`` leading run dims; ``n`` = numel of ``rest``.
    Returns a tensor of the same shape and dtype. At least one entry per run is kept.
    """
    fraction_kept = _check_fraction("fraction_kept", fraction_kept)
    lead = scores.shape[:run_dims]
    flat = scores.reshape(*lead, -1) if run_dims else scores.reshape(1, -1)
    n = flat.shape[-1]
    k = max(1, int(round(fraction_kept * n)))
    mask = torch.zeros_like(flat)
    # unsorted: only the set of the k largest matters, and sorting it costs 4× the selection on the CPU
    idx = flat.topk(k, dim=-1, sorted=False).indices
    mask.scatter_(-1, idx, 1.0)
    return mask.reshape(scores.shape)


class _MaskedGradient(torch.autograd.Function):
    """The weight itself forward (a view: nothing is computed); its gradient times the mask backward."""

    @staticmethod
    def forward(ctx, weight: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(mask)
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (mask,) = ctx.saved_tensors
        return grad * mask, None


class Masked(nn.Module):
    """W ⊙ M (+ W_frozen ⊙ (1 − M)). The lottery-ticket weight.

    ``mask``: 0/1 tensor shaped like the weight. ``frozen``: optional values for the pruned
    positions (Zhou et al.'s mask-0 variants); by default pruned weights are exactly zero. The
    gradient reaching the stored W is masked too, so pruned stored weights never move and an
    optimizer's state for them stays zero. (Inside :func:`masked_without_multiply` the forward pass
    can skip the product: see there.)
    """

    def __init__(self, mask: Tensor, frozen: Tensor | None = None):
        super().__init__()
        self.register_buffer("mask", mask.detach().to(torch.float32).clone())
        self.register_buffer("frozen", None if frozen is None else frozen.detach().clone())
        self.stored_zero_where_pruned = False  # set by masked_without_multiply, for its duration only

    def forward(self, weight: Tensor) -> Tensor:
        if weight.shape != self.mask.shape:
            raise ValueError(f"mask shape {tuple(self.mask.shape)} does not match weight {tuple(weight.shape)}")
        if self.stored_zero_where_pruned and isinstance(weight, nn.Parameter):
            return _MaskedGradient.apply(weight, self.mask)  # W ⊙ M is W itself here
        out = weight * self.mask
        if self.frozen is not None:
            out = out + self.frozen * (1.0 - self.mask)
        return out


@contextlib.contextmanager
def masked_without_multiply(model: nn.Module) -> Iterator[int]:
    """Within: every :class:`Masked` layer without ``frozen`` values, attached first to its weight, whose
    stored weight is exactly zero at every pruned position (as :func:`lotterylib.masks.attach_masks`
    leaves it) returns the stored weight itself in the forward pass and masks only the gradient.
    Yields how many layers do.

    Exact, bit for bit, as long as the stored weights change only by optimizer steps on those masked
    gradients from an optimizer state that began at zero: a zero gradient with zero state is a zero
    update (Adam; SGD with momentum, Nesterov and weight decay), so the pruned positions stay zero
    and W ⊙ M is W. The product is one memory-bound pass over every weight per step (about 15 % of a
    masked LeNet-300-100 step on one CPU thread). :func:`lotterylib.train.train` uses it: its optimizer
    starts afresh. Outside it, an optimizer that carries state from before the mask was attached cannot
    revive a pruned weight: the forward pass multiplies.
    """
    fns = []
    for module in model.modules():
        if not parametrize.is_parametrized(module):
            continue
        for chain in module.parametrizations.values():
            fn, stored_weight = chain[0], chain.original
            if isinstance(fn, Masked) and fn.frozen is None and isinstance(stored_weight, nn.Parameter) \
                    and fn.mask.shape == stored_weight.shape \
                    and not torch.count_nonzero(stored_weight.detach() * (fn.mask == 0)):
                fns.append(fn)
    for fn in fns:
        fn.stored_zero_where_pruned = True
    try:
        yield len(fns)
    finally:
        for fn in fns:
            fn.stored_zero_where_pruned = False


class SampledMask(nn.Module):
    """W ⊙ m with m ~ Bernoulli(σ(S)), straight-through to the scores S (Zhou et al.'s learned supermask).

    ``scores``: initial logits shaped like the weight, ``(runs, ...)`` (trainable). ``seeds``: one per
    run; run i's samples come from its own generator (:class:`RunGenerators`), so a stacked population
    draws what the same runs would draw one by one. ``rescale``: Zhou's dynamic weight rescaling,
    multiplying each run's weight by (#weights / #ones in the sampled mask).
    ``sample_at_eval``: when False, eval mode uses m = [σ(S) > ½] instead of a sample.
    """

    def __init__(self, scores: Tensor, seeds: Sequence[int], rescale: bool = False, sample_at_eval: bool = True):
        super().__init__()
        self.scores = nn.Parameter(scores.detach().clone())
        if len(seeds) != scores.shape[0]:
            raise ValueError(f"SampledMask needs one seed per run: {scores.shape[0]} runs, {len(seeds)} seeds")
        self.rng = RunGenerators(seeds)
        self.rescale, self.sample_at_eval = rescale, sample_at_eval

    def forward(self, weight: Tensor) -> Tensor:
        prob = torch.sigmoid(self.scores)
        if self.training or self.sample_at_eval:
            hard = self.rng.bernoulli(prob.detach())
        else:
            hard = (prob.detach() > 0.5).to(prob.dtype)
        mask = straight_through(hard, prob)
        out = weight * mask
        if self.rescale:
            dims = tuple(range(1, weight.dim()))
            ones = hard.sum(dim=dims, keepdim=True).clamp_min(1.0)
            out = out * hard[0].numel() / ones
        return out


class TopKScores(nn.Module):
    """W ⊙ top-k(S), straight-through to the scores (edge-popup, Ramanujan et al. 2020).

    ``fraction_kept``: fraction of each run's weights kept (not pruned). The ranking is by |S|, so
    the gradient reaching S is that of |S|: ∂L/∂W_eff ⊙ W ⊙ sign(S) (as ``GetSubnet`` on
    ``scores.abs()`` in Ramanujan et al.'s code), for kept and pruned weights alike, so a pruned
    edge can pop back up.
    """

    def __init__(self, scores: Tensor, fraction_kept: float, run_dims: int = 1):
        super().__init__()
        self.scores = nn.Parameter(scores.detach().clone())
        self.fraction_kept = _check_fraction("fraction_kept", fraction_kept)
        self.run_dims = run_dims

    def forward(self, weight: Tensor) -> Tensor:
        magnitude = self.scores.abs()
        hard = topk_mask(magnitude.detach(), self.fraction_kept, self.run_dims)
        return weight * straight_through(hard, magnitude)


class TopKMagnitude(nn.Module):
    """top-k(|W|) with the gradient passed straight through to every W (Discovering Neural Wirings).

    Forward keeps the ``fraction_kept`` largest-magnitude weights of each run; backward is the
    identity, so an unused edge keeps learning and swaps in when it overtakes a used one.
    """

    def __init__(self, fraction_kept: float, run_dims: int = 1):
        super().__init__()
        self.fraction_kept = _check_fraction("fraction_kept", fraction_kept)
        self.run_dims = run_dims

    def forward(self, weight: Tensor) -> Tensor:
        hard = weight.detach() * topk_mask(weight.detach().abs(), self.fraction_kept, self.run_dims)
        return straight_through(hard, weight)


class TopKMagnitudeNoUpdate(nn.Module):
    """top-k(|W|) with the gradient reaching only the kept weights (DNW's ``DNWNoUpdate`` control).

    The same forward value as :class:`TopKMagnitude`; backward is that of W ⊙ M with M = top-k(|W|)
    held constant, so an unused edge never moves and can only swap in when a used one shrinks
    below it. ``fraction_kept``: fraction of each run's weights kept. Shapes as :class:`TopKMagnitude`.
    """

    def __init__(self, fraction_kept: float, run_dims: int = 1):
        super().__init__()
        self.fraction_kept = _check_fraction("fraction_kept", fraction_kept)
        self.run_dims = run_dims

    def forward(self, weight: Tensor) -> Tensor:
        return weight * topk_mask(weight.detach().abs(), self.fraction_kept, self.run_dims)


class SignScale(nn.Module):
    """α ⊙ sign(W): binary weights (BinaryConnect with ``scale=False``; BWN/XNOR with α = mean|W|).

    α is computed per output unit (dims after ``run_dims + 1`` are averaged), as XNOR-Net's
    per-filter scale. sign(0) is taken as +1 so every weight is ±α. The gradient of sign is the
    straight-through estimator cancelled where |W| > 1 (:func:`clipped_identity`: it passes at
    |W| ≤ 1, the clipped weights at exactly ±1 included); α is differentiated as the function of W
    that it is.
    """

    def __init__(self, scale: bool = True, run_dims: int = 1):
        super().__init__()
        self.scale, self.run_dims = scale, run_dims

    def forward(self, weight: Tensor) -> Tensor:
        binary = ste_sign(weight)
        if not self.scale:
            return binary
        return mean_abs_per_filter(weight, self.run_dims) * binary


def mean_abs_per_filter(weight: Tensor, run_dims: int = 1) -> Tensor:
    """XNOR-Net's α* = ‖W‖_ℓ1 / n of every output filter (eq. 6), shaped to broadcast against ``weight``.

    The mean of |W| over the dims after ``run_dims + 1`` (an output filter's inputs, and its kernel
    for a conv); a weight with nothing to average is its own |W|.
    """
    dims = tuple(range(run_dims + 1, weight.dim()))
    return weight.abs().mean(dim=dims, keepdim=True) if dims else weight.abs()


class LearnedScale(nn.Module):
    """α ⊙ sign(W) with α a trainable parameter per output filter: XNOR-Net's Table 3a ablation.

    Rastegari et al. (§4.3) compare the analytic α = mean|W| of :class:`SignScale` (eq. 6, recomputed
    from W at every step) with α "as a network parameter … a layer after binary convolution multiplies
    the output of convolution by a scalar parameter for each filter", as BatchNorm's affine scale.
    Scaling the binary weight of a filter is that layer (the bias, if any, is added after it either way).

    ``alpha``: the initial α, one per run and output filter, shaped like the weight's leading
    ``run_dims + 1`` dims. Neither the paper nor the reference code (allenai/XNOR-Net has no such
    layer) says how α starts; :meth:`start_at` sets it to the analytic value of the weights it starts
    from, so that both variants begin as the same network and differ only in how α moves afterwards.
    Gradients: W gets ∂L/∂W̃ ⊙ α ⊙ 1_{|W| ≤ 1} (the straight-through sign of :class:`SignScale`, with α
    a constant of W); α gets Σ ∂L/∂W̃ ⊙ sign(W) over its filter.
    """

    def __init__(self, alpha: Tensor, run_dims: int = 1):
        super().__init__()
        if alpha.dim() != run_dims + 1:
            raise ValueError(f"alpha needs {run_dims + 1} dims (runs, out), got shape {tuple(alpha.shape)}")
        self.alpha = nn.Parameter(alpha.detach().to(torch.float32).clone())
        self.run_dims = run_dims

    @torch.no_grad()
    def start_at(self, weight: Tensor) -> "LearnedScale":
        """α ← mean|W| per output filter of ``weight`` (the analytic α of :class:`SignScale`)."""
        self.alpha.copy_(mean_abs_per_filter(weight.detach(), self.run_dims).reshape(self.alpha.shape))
        return self

    def forward(self, weight: Tensor) -> Tensor:
        lead = self.run_dims + 1
        if weight.shape[:lead] != self.alpha.shape:
            raise ValueError(f"alpha shape {tuple(self.alpha.shape)} does not match weight {tuple(weight.shape)}")
        alpha = self.alpha.reshape(*self.alpha.shape, *([1] * (weight.dim() - lead)))
        return alpha * ste_sign(weight)


class StochasticSign(nn.Module):
    """±1 drawn with P(+1) = hard_sigmoid(W) = clip((W + 1) / 2, 0, 1) (stochastic BinaryConnect).

    ``seeds``: one per run (dim 0 of the weight); run i draws from its own generator
    (:class:`RunGenerators`). In training each forward draws a fresh sign per weight; the gradient
    is passed straight through to W, cancelled where |W| > 1 (as :class:`SignScale`). In eval mode the
    deterministic sign(W) is used, so the deployed network is a binary one (Courbariaux et al. 2015
    evaluated stochastic BinaryConnect with the real-valued weights instead; ``eval_real=True`` does
    that).
    """

    def __init__(self, seeds: Sequence[int], eval_real: bool = False):
        super().__init__()
        self.rng = RunGenerators(seeds)
        self.eval_real = eval_real

    def forward(self, weight: Tensor) -> Tensor:
        if not self.training:
            return weight if self.eval_real else ste_sign(weight)
        prob = ((weight.detach() + 1.0) / 2.0).clamp(0.0, 1.0)
        hard = self.rng.bernoulli(prob) * 2.0 - 1.0
        return straight_through(hard, clipped_identity(weight))


class DoReFaWeight(nn.Module):
    """k-bit weights of DoReFa-Net (Zhou et al. 2016), straight-through rounding.

    k ≥ 2: w_q = 2·quantize_k(tanh(W) / (2·max|tanh(W)|) + ½) − 1 with
    quantize_k(r) = round((2^k − 1)·r) / (2^k − 1), the max taken per run (dims after ``run_dims``).
    k = 1: w_q = sign(W)·E|W| (one scale per run and layer, not per filter as BWN).
    Gradients follow the authors' code (tensorpack ``examples/DoReFa-Net/dorefa.py``, ``fw``): the
    rounding and the sign pass the gradient unchanged (straight-through); for k ≥ 2, tanh and the max
    are differentiated as they are; for k = 1 the scale E|W| is a constant (``stop_gradient``), so the
    whole gradient is the identity. Output has the weight's shape, 2^k levels per run.
    """

    def __init__(self, bits: int, run_dims: int = 1):
        super().__init__()
        if int(bits) != bits or not 1 <= bits <= 16:
            raise ValueError(f"DoReFa weights need an integer bit width in [1, 16], got {bits}")
        self.bits, self.run_dims = int(bits), run_dims

    def forward(self, weight: Tensor) -> Tensor:
        dims = tuple(range(self.run_dims, weight.dim()))
        if self.bits == 1:
            scale = weight.detach().abs().mean(dim=dims, keepdim=True)
            sign = torch.where(weight.detach() >= 0, 1.0, -1.0).to(weight.dtype)
            return straight_through(scale * sign, weight)
        t = torch.tanh(weight)
        r = t / (2.0 * t.abs().amax(dim=dims, keepdim=True).clamp_min(1e-12)) + 0.5
        levels = 2 ** self.bits - 1
        q = straight_through(torch.round(r.detach() * levels) / levels, r)
        return 2.0 * q - 1.0


# --- attaching functions to layers -------------------------------------------------------------

class SharedWeights(nn.Module):
    """Weight function: ``codebook[codes] ⊙ mask`` — weight sharing, the stored weight is ignored.

    ``codebook``: (runs, k) trainable centroids; ``codes``: (runs, ...) long cluster index of each
    weight; ``mask``: (runs, ...) 0/1. Shapes follow the layer's weight. The gradient reaching a
    centroid is the sum of the gradients of the weights in its cluster (Deep Compression §3.3).
    """

    def __init__(self, codebook: Tensor, codes: Tensor, mask: Tensor):
        super().__init__()
        if codes.shape != mask.shape or codebook.dim() != 2 or codebook.shape[0] != codes.shape[0]:
            raise ValueError(f"codebook (runs, k), codes and mask (runs, ...) do not fit: {tuple(codebook.shape)}, "
                             f"{tuple(codes.shape)}, {tuple(mask.shape)}")
        self.codebook = nn.Parameter(codebook.detach().float().clone())
        self.register_buffer("codes", codes.detach().long().clone())
        self.register_buffer("mask", mask.detach().float().clone())

    def forward(self, weight: Tensor) -> Tensor:
        if weight.shape != self.codes.shape:
            raise ValueError(f"codes shape {tuple(self.codes.shape)} does not match weight {tuple(weight.shape)}")
        runs = self.codes.shape[0]
        w = self.codebook.gather(1, self.codes.reshape(runs, -1)).reshape(weight.shape)
        return w * self.mask


def attach(layer: nn.Module, fn: nn.Module, name: str = "weight") -> nn.Module:
    """Make ``layer.<name>`` equal ``fn(stored)``; returns the layer. Functions chain in order."""
    parametrize.register_parametrization(layer, name, fn, unsafe=True)
    return layer


def detach_all(model: nn.Module, leave_parametrized: bool = True) -> nn.Module:
    """Remove every weight function; by default the effective weight becomes the stored one."""
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, name, leave_parametrized=leave_parametrized)
    return model


def stored(layer: nn.Module, name: str = "weight") -> Tensor:
    """The tensor a layer stores under ``name`` (before any weight function)."""
    if parametrize.is_parametrized(layer, name):
        return layer.parametrizations[name].original
    return getattr(layer, name)


def functions(layer: nn.Module, name: str = "weight") -> list[nn.Module]:
    """The weight functions attached to ``layer.<name>``, in order of application."""
    if parametrize.is_parametrized(layer, name):
        return list(layer.parametrizations[name])
    return []


def attach_each(layers: Iterable[tuple[str, nn.Module]], make: Callable[[str, nn.Module], nn.Module | None]) -> None:
    """Attach ``make(name, layer)`` to every (name, layer); a None result leaves that layer alone."""
    for lname, layer in layers:
        fn = make(lname, layer)
        if fn is not None:
            attach(layer, fn)
