"""Low-rank factorisation of fully connected layers (Xue, Li & Gong 2013): W ≈ U_k Σ_k V_kᵀ as two thin layers.

A trained weight matrix W (out, in) with singular values σ₁ ≥ σ₂ ≥ … is replaced by its best rank-k
approximation (Eckart–Young: no rank-k matrix is closer in Frobenius norm, and the squared error is
Σ_{i>k} σ_i²), written as the product A @ B of two thin matrices:

    A = U_k Σ_k^½  (out, k),    B = Σ_k^½ V_kᵀ  (k, in)

(the square root on both sides keeps the two factors on the same scale, which helps when they are
fine-tuned with Adam). Stored as two layers — x → Bx (no bias, no ReLU) → A(Bx) + b — the layer holds
k·(in + out) weights and costs as many multiply-adds per example instead of in·out: it is smaller
*and* faster whenever k < in·out / (in + out).

**A module swap, not a weight function.** lotterylib's other methods make the effective weight a
function of what a layer stores (:mod:`lotterylib.weightfn`); a rank-k weight could be one too
(W = A @ B computed from stored A and B), but the layer would then still multiply by a full (out, in)
matrix on every forward pass: smaller on disk, never faster. The point of a factorisation is the
two thin products, so :class:`LowRankMLP` replaces each factorised layer by two thin
:class:`~lotterylib.models.StackedLinear` layers. Trained either way the gradients are the same (the
product is linear in each factor), so nothing is lost by the swap.

Networks of one run, for storage and timing, are lists of :data:`Layer` ``(A, B, b)`` — B is None for
a layer kept whole (then A is its W) — with :func:`runner`, :func:`serialize_lowrank`, :func:`deserialize_lowrank`,
:func:`weight_count` and :func:`multiply_adds`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import serialize
from .models import PopulationModel, StackedLinear

#: One layer of one run: ``(A (out, k), B (k, in), b (out,))``, or ``(W (out, in), None, b)`` kept whole.
Layer = tuple[Tensor, "Tensor | None", Tensor]


# --- the factorisation ---------------------------------------------------------------------------

def singular_values(weight: Tensor) -> Tensor:
    """σ₁ ≥ σ₂ ≥ … of every matrix of ``weight`` (..., out, in) → (..., min(out, in)), float64 for accuracy."""
    return torch.linalg.svdvals(weight.detach().double())


def energy_rank(sigma: Tensor, energy: float) -> int:
    """The smallest k whose first k singular values hold at least ``energy`` of Σσ² (1 ≤ k ≤ len(σ)).

    ``sigma``: one matrix's singular values, in decreasing order."""
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must be in (0, 1], got {energy}")
    s2 = sigma.double().square()
    if sigma.dim() != 1 or s2.numel() == 0:
        raise ValueError(f"energy_rank needs the singular values of one matrix, got shape {tuple(sigma.shape)}")
    cum = torch.cumsum(s2, 0) / s2.sum().clamp_min(1e-300)
    # A small tolerance: a cumulative sum that is 0.9 in exact arithmetic may come out as 0.8999999.
    return int(min(s2.numel(), int((cum < energy - 1e-12).sum()) + 1))


def best_error(sigma: Tensor, rank: int) -> float:
    """Eckart–Young: the squared Frobenius error of the best rank-``rank`` approximation, Σ_{i>rank} σ_i²."""
    return float(sigma.double()[rank:].square().sum())


def factorize(weight: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """The best rank-``rank`` factors of ``weight`` (..., out, in): A (..., out, rank), B (..., rank, in), with
    A @ B the truncated SVD and √σ on both sides. ``rank`` = 0 gives empty factors (A @ B = 0)."""
    full = min(weight.shape[-2:])
    if not 0 <= int(rank) <= full:
        raise ValueError(f"rank must be in [0, {full}] for a weight of shape {tuple(weight.shape)}, got {rank}")
    u, s, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
    root = s[..., :rank].sqrt()
    a = u[..., :, :rank] * root.unsqueeze(-2)
    b = root.unsqueeze(-1) * vh[..., :rank, :]
    return a.to(weight.dtype), b.to(weight.dtype)


def truncate(weight: Tensor, rank: int) -> Tensor:
    """The best rank-``rank`` approximation of ``weight`` (..., out, in), as a full matrix."""
    a, b = factorize(weight, rank)
    return a @ b


# --- the factorised population ------------------------------------------------------------------

class LowRankMLP(PopulationModel):
    """A ReLU MLP whose layer i is two thin linear layers when ``ranks[i]`` is set (no ReLU between the
    two: they are one factorised matrix), else one full layer. ``widths`` as :class:`~lotterylib.models.MLP`.

    Input (B, in) shared or (N, B, in) per run → logits (N, B, classes). ``prunable()`` lists the thin
    layers (``layers.{i}.0`` = B, no bias; ``layers.{i}.1`` = A, with the layer's bias) and the full ones.
    """

    def __init__(self, runs: int, widths: Sequence[int], ranks: Sequence[int | None]):
        super().__init__()
        if len(ranks) != len(widths) - 1:
            raise ValueError(f"one rank (or None) per layer: {len(widths) - 1} layers, got {len(ranks)} ranks")
        self.runs, self.widths, self.ranks = runs, list(widths), [None if r is None else int(r) for r in ranks]
        layers = []
        for a, b, r in zip(widths[:-1], widths[1:], self.ranks):
            if r is None:
                layers.append(StackedLinear(runs, a, b))
            else:
                if not 1 <= r <= min(a, b):
                    raise ValueError(f"rank {r} of a {b}×{a} layer must be in [1, {min(a, b)}]")
                layers.append(nn.ModuleList([StackedLinear(runs, a, r, bias=False), StackedLinear(runs, r, b)]))
        self.layers = nn.ModuleList(layers)
        self.output_layer = f"layers.{len(layers) - 1}"

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.widths[0]:
            raise ValueError(f"expected inputs with {self.widths[0]} features, got shape {tuple(x.shape)}")
        for i, layer in enumerate(self.layers):
            x = layer(x) if isinstance(layer, StackedLinear) else layer[1](layer[0](x))
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def from_dense(weights: Sequence[Tensor], biases: Sequence[Tensor], ranks: Sequence[int | None]) -> LowRankMLP:
    """A population of factorised MLPs from trained ones: ``weights[i]`` (runs, out, in), ``biases[i]``
    (runs, out); layer i is cut to rank ``ranks[i]`` (its best rank-k factors) or kept whole (None)."""
    if not (len(weights) == len(biases) == len(ranks)):
        raise ValueError("need one weight, one bias and one rank (or None) per layer")
    runs = int(weights[0].shape[0])
    widths = [int(weights[0].shape[2])] + [int(w.shape[1]) for w in weights]
    model = LowRankMLP(runs, widths, ranks)
    with torch.no_grad():
        for layer, w, b, r in zip(model.layers, weights, biases, ranks):
            if r is None:
                layer.weight.copy_(w)
                layer.bias.copy_(b)
            else:
                a, bb = factorize(w.float(), r)
                layer[0].weight.copy_(bb)
                layer[1].weight.copy_(a)
                layer[1].bias.copy_(b)
    return model


def layers_of(model: LowRankMLP, run: int = 0) -> list[Layer]:
    """Run ``run`` of a factorised population as :data:`Layer` tuples (float32, CPU copies)."""
    out: list[Layer] = []
    with torch.no_grad():
        for layer in model.layers:
            if isinstance(layer, StackedLinear):
                out.append((layer.weight[run].detach().float().cpu().clone(), None,
                            layer.bias[run].detach().float().cpu().clone()))
            else:
                out.append((layer[1].weight[run].detach().float().cpu().clone(),
                            layer[0].weight[run].detach().float().cpu().clone(),
                            layer[1].bias[run].detach().float().cpu().clone()))
    return out


def dense_params(layers: Sequence[Layer]) -> serialize.Params:
    """The same network with every factorised layer multiplied out, ``[(W = A @ B, b)]`` (for the dense
    runner and storage formats: the function is the same, the cost is not)."""
    return [(a if b is None else a @ b, bias) for a, b, bias in layers]


def runner(layers: Sequence[Layer]):
    """``x (B, in) → logits`` running each factorised layer as its two thin products (ReLU between layers)."""
    steps = [(a.contiguous(), None if b is None else b.contiguous(), bias.contiguous()) for a, b, bias in layers]

    @torch.no_grad()
    def forward(x: Tensor) -> Tensor:
        h = x
        for i, (a, b, bias) in enumerate(steps):
            h = F.linear(h if b is None else F.linear(h, b), a, bias)
            if i < len(steps) - 1:
                h = torch.relu(h)
        return h
    return forward


def weight_count(layers: Sequence[Layer]) -> int:
    """Stored weights (biases excluded, as everywhere in the book): A and B of a factorised layer, W of a whole one."""
    return sum(a.numel() + (0 if b is None else b.numel()) for a, b, _ in layers)


def multiply_adds(layers: Sequence[Layer]) -> int:
    """Multiply-adds per example of :func:`runner`: every stored weight is used once per example."""
    return weight_count(layers)


def serialize_lowrank(layers: Sequence[Layer]) -> bytes:
    """Float32 factors in the book's container (:func:`lotterylib.serialize.pack_arrays`): ``{l}.A``,
    ``{l}.B`` (absent for a whole layer, whose W is ``{l}.A``) and ``{l}.b``."""
    arrays = {}
    for i, (a, b, bias) in enumerate(layers):
        arrays[f"{i}.A"] = a.detach().float().cpu().numpy()
        if b is not None:
            arrays[f"{i}.B"] = b.detach().float().cpu().numpy()
        arrays[f"{i}.b"] = bias.detach().float().cpu().numpy()
    return serialize.pack_arrays(arrays)


def deserialize_lowrank(blob: bytes) -> list[Layer]:
    """Inverse of :func:`serialize_lowrank`."""
    arrays = serialize.unpack_arrays(blob)
    n = sum(1 for k in arrays if k.endswith(".b"))
    out: list[Layer] = []
    for i in range(n):
        b = arrays.get(f"{i}.B")
        out.append((torch.from_numpy(arrays[f"{i}.A"].copy()), None if b is None else torch.from_numpy(b.copy()),
                    torch.from_numpy(arrays[f"{i}.b"].copy())))
    return out


def ranks_for_energy(weights: Mapping[str, Tensor], energy: float, layers: Sequence[str]) -> dict[str, int]:
    """Per layer in ``layers``, the largest over runs of :func:`energy_rank` (one architecture for the
    whole population: no run keeps less than ``energy`` of its Σσ²). ``weights``: {layer: (runs, out, in)}."""
    out = {}
    for name in layers:
        s = singular_values(weights[name])
        out[name] = max(energy_rank(s[r], energy) for r in range(s.shape[0]))
    return out
