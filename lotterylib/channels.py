"""Removing filters and channels of a conv net: ℓ1 filter pruning (Li et al. 2017) and channel selection by
LASSO with least-squares reconstruction (He, Zhang & Sun 2017), on LeNet-5.

A filter of a conv layer computes one output channel; removing it removes that channel and everything
the next layer reads from it. Here the pruned layer is LeNet-5's second conv (16 filters of 6 × 5 × 5),
whose channels the first fc layer reads as 16 blocks of 5 × 5 positions: removing channel c removes a
filter of ``conv2`` and a block of 25 columns of ``fc1``, and a smaller dense LeNet-5 comes out.

* **ℓ1 filter pruning** (Li et al. 2017, §3.1): rank the filters by s_j = Σ |W_j| (the sum of the
  filter's absolute weights) and keep the largest — :func:`filter_l1`; no data needed.
* **Channel selection + reconstruction** (He, Zhang & Sun 2017, §3.1): on sampled inputs X, the next
  layer's response is Y = Σ_c X_c W_cᵀ, one term Z_c per channel. A LASSO on one coefficient per channel,
  min_β ½‖Y − Σ_c β_c Z_c‖² + λ‖β‖₁, with λ raised until only n coefficients are non-zero, selects the
  channels (:func:`lasso_select`); the next layer's weights on the kept channels are then refitted by
  least squares, min_W′ ‖Y − X_S W′ᵀ‖² (:func:`reconstruct`), so that the smaller layer reproduces the
  original response as well as it can. Like Net-Trim (chapter 04) this fits a layer to its own response
  on data by a convex program — Net-Trim keeps every channel and makes the weights sparse, channel
  pruning removes whole channels and keeps the rest dense.

Shapes: populations as :mod:`lotterylib.models` (run on dim 0). Channel-major features: fc1's input
index is ``c · 25 + p`` for channel c and position p (as :func:`lotterylib.models.conv_fc_forward`
flattens).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .models import PopulationModel, StackedConv2d, StackedLinear, conv_fc_forward, from_grouped, to_grouped
from .pooling import max_pool2x2

SIDE = 28          # Fashion-MNIST images, 28 × 28, one channel
POSITIONS = 25     # conv2's output after 2×2 pooling: 5 × 5 positions per channel


class LeNet5(PopulationModel):
    """LeNet-5 (LeCun et al. 1998) as a population: conv 5×5 (1 → c1, padding 2), ReLU, 2×2 max-pool, conv
    5×5 (c1 → c2), ReLU, 2×2 max-pool, then fc (c2·25 → 120 → 84 → 10) with ReLUs. Inputs are flattened
    28 × 28 images, (B, 784) shared or (N, B, 784) per run → logits (N, B, 10)."""

    def __init__(self, runs: int, c1: int = 6, c2: int = 16, fc: Sequence[int] = (120, 84), classes: int = 10):
        super().__init__()
        self.runs, self.c1, self.c2 = runs, int(c1), int(c2)
        self.convs = nn.ModuleList([StackedConv2d(runs, 1, c1, 5, padding=2), StackedConv2d(runs, c1, c2, 5, padding=0)])
        widths = [self.c2 * POSITIONS, *fc, classes]
        self.fcs = nn.ModuleList(StackedLinear(runs, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.output_layer = f"fcs.{len(self.fcs) - 1}"

    def _images(self, x: Tensor) -> Tensor:
        if x.shape[-1] != SIDE * SIDE:
            raise ValueError(f"expected flattened {SIDE}×{SIDE} images, got shape {tuple(x.shape)}")
        return x.reshape(*x.shape[:-1], 1, SIDE, SIDE)

    def forward(self, x: Tensor) -> Tensor:
        return conv_fc_forward(self._images(x), self.convs, [True, True], self.fcs, self.runs)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """fc1's input: the pooled conv2 channels, (runs, B, c2·25), channel-major."""
        h = to_grouped(self._images(x))
        for conv in self.convs:
            h = max_pool2x2(F.relu(conv(h)))
        return from_grouped(h, self.runs)


def copy_of(model: LeNet5) -> LeNet5:
    """A new population with the same widths and weights."""
    out = LeNet5(model.runs, model.c1, model.c2, [l.out_features for l in model.fcs][:-1], model.fcs[-1].out_features)
    out.load_state_dict(model.state_dict())
    return out


def filter_l1(conv_weight: Tensor) -> Tensor:
    """Li et al.'s s_j = Σ |W_j| of every filter: (runs, out, in, k, k) → (runs, out)."""
    return conv_weight.detach().abs().flatten(2).sum(-1)


def channel_columns(kept: Tensor, positions: int = POSITIONS) -> Tensor:
    """fc1 column indices of kept channels (runs, n) → (runs, n·positions), channel-major."""
    return (kept.unsqueeze(-1) * positions + torch.arange(positions)).flatten(1)


def prune_channels(model: LeNet5, kept: Tensor, fc1_weight: Tensor | None = None) -> LeNet5:
    """The smaller LeNet-5 keeping conv2's filters ``kept`` (runs, n), sorted or not, and the fc1 columns that
    read them; ``fc1_weight`` (runs, 120, n·25) replaces those columns (a reconstruction), if given."""
    runs, n = kept.shape
    if runs != model.runs or (kept < 0).any() or (kept >= model.c2).any():
        raise ValueError(f"kept must be (runs={model.runs}, n) indices of conv2's {model.c2} filters")
    fc_widths = [l.out_features for l in model.fcs]
    out = LeNet5(runs, model.c1, n, fc_widths[:-1], fc_widths[-1])
    cols = channel_columns(kept)
    with torch.no_grad():
        out.convs[0].load_state_dict(model.convs[0].state_dict())
        w2, b2 = model.convs[1].weight, model.convs[1].bias
        out.convs[1].weight.copy_(w2[torch.arange(runs).unsqueeze(1), kept])
        out.convs[1].bias.copy_(b2.gather(1, kept))
        w = model.fcs[0].weight.gather(2, cols.unsqueeze(1).expand(-1, model.fcs[0].out_features, -1))
        out.fcs[0].weight.copy_(w if fc1_weight is None else fc1_weight)
        out.fcs[0].bias.copy_(model.fcs[0].bias)
        for a, b in zip(out.fcs[1:], model.fcs[1:]):
            a.load_state_dict(b.state_dict())
    return out


# --- channel selection by LASSO, and least-squares reconstruction -------------------------------------

def contributions(x: Tensor, weight: Tensor, channels: int) -> Tensor:
    """Z_c = X_c W_cᵀ, each channel's share of the next layer's response: x (M, C·g), weight (out, C·g)
    → (C, M, out), with Σ_c Z_c = x @ weightᵀ."""
    m, total = x.shape
    g = total // channels
    if g * channels != total or weight.shape[1] != total:
        raise ValueError(f"{total} inputs do not split into {channels} channels matching a weight {tuple(weight.shape)}")
    return torch.einsum("mcg,ocg->cmo", x.reshape(m, channels, g), weight.reshape(weight.shape[0], channels, g))


def lasso(gram: Tensor, corr: Tensor, strength: float, sweeps: int = 1000, tol: float = 1e-10) -> Tensor:
    """argmin_β ½ βᵀ G β − rᵀβ + λ‖β‖₁ by cyclic coordinate descent (G = ZᵀZ positive semi-definite,
    r = ZᵀY): the LASSO min ½‖Y − Zβ‖² + λ‖β‖₁ written with its Gram matrix, in float64. Each step sets
    one β_c to its exact minimiser with the others fixed, S(r_c − Σ_{d≠c} G_cd β_d, λ) / G_cc (S: soft
    thresholding); sweeps stop when no coefficient moves by more than ``tol`` (relative)."""
    g, r = gram.double().numpy(), corr.double().numpy()
    beta = np.zeros_like(r)
    diag = np.maximum(np.diagonal(g), 1e-300)
    for _ in range(sweeps):
        biggest = 0.0
        for c in range(r.size):
            rho = r[c] - g[c] @ beta + g[c, c] * beta[c]
            new = np.sign(rho) * max(abs(rho) - strength, 0.0) / diag[c]
            biggest = max(biggest, abs(new - beta[c]))
            beta[c] = new
        if biggest <= tol * (1.0 + np.abs(beta).max()):
            break
    return torch.from_numpy(beta)


def lasso_select(z: Tensor, y: Tensor, n_keep: int, steps: int = 60) -> tuple[Tensor, Tensor]:
    """He et al.'s channel selection: the ``n_keep`` channels whose coefficients survive the LASSO
    min_β ½‖Y − Σ_c β_c Z_c‖² + λ‖β‖₁ at the λ where n_keep of them are non-zero (found by bisection on λ
    between 0 and λ_max = max_c |⟨Z_c, Y⟩|, where every β is zero). ``z`` (C, M, out), ``y`` (M, out).
    Returns (kept indices sorted (n_keep,), β at that λ (C,)). Where no λ leaves exactly n_keep non-zero
    (ties), the n_keep largest |β_c|·‖Z_c‖ of the sparsest solution with more are kept."""
    channels = z.shape[0]
    if not 1 <= int(n_keep) <= channels:
        raise ValueError(f"n_keep must be in [1, {channels}], got {n_keep}")
    flat = z.reshape(channels, -1).double()
    gram, corr = flat @ flat.T, flat @ y.reshape(-1).double()
    hi = float(corr.abs().max())
    lo = 0.0
    best = lasso(gram, corr, lo)  # λ = 0: least squares on the coefficients (every channel, usually)
    if int((best != 0).sum()) <= n_keep:
        beta = best
    else:
        beta = best
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            b = lasso(gram, corr, mid)
            nnz = int((b != 0).sum())
            if nnz == n_keep:
                beta = b
                break
            if nnz > n_keep:
                lo, beta = mid, b
            else:
                hi = mid
    score = beta.abs() * flat.norm(dim=1)
    kept = torch.sort(torch.sort(score, descending=True, stable=True).indices[:n_keep]).values
    return kept, beta.float()


def reconstruct(x_kept: Tensor, y: Tensor, ridge: float = 1e-6) -> Tensor:
    """Least squares W′ = argmin ‖Y − X_S W′ᵀ‖² (a ridge of ``ridge`` × mean diag(X_SᵀX_S) for conditioning):
    x_kept (M, k), y (M, out) → W′ (out, k)."""
    x, t = x_kept.double(), y.double()
    gram = x.T @ x
    gram += ridge * float(torch.diagonal(gram).mean().clamp_min(1e-30)) * torch.eye(gram.shape[0], dtype=gram.dtype)
    return torch.linalg.solve(gram, x.T @ t).T.float()


def select_and_reconstruct(model: LeNet5, x: Tensor, n_keep: int, select: str = "lasso",
                           refit: bool = True) -> tuple[Tensor, Tensor | None, dict]:
    """Choose ``n_keep`` of conv2's channels of every run of ``model`` on sample images ``x`` (M, 784), and
    refit fc1 on them.

    ``select``: ``"lasso"`` (He et al.) or ``"l1"`` (Li et al.'s filter norms). ``refit``: least-squares fc1
    weights on the kept channels (else the original columns are kept). Returns (kept (runs, n_keep),
    fc1 weights (runs, 120, n_keep·25) or None, {"relative_error": per run ‖Y − Ŷ‖²/‖Y‖² on ``x``})."""
    feats = model.features(x)  # (runs, M, C·25)
    w1 = model.fcs[0].weight.detach()
    kept_all, new_w, errors = [], [], []
    for r in range(model.runs):
        y = feats[r] @ w1[r].T  # fc1's response before its bias (the bias stays as it is)
        if select == "lasso":
            kept, _ = lasso_select(contributions(feats[r], w1[r], model.c2), y, n_keep)
        elif select == "l1":
            kept = torch.sort(torch.sort(filter_l1(model.convs[1].weight[r:r + 1])[0], descending=True,
                                         stable=True).indices[:n_keep]).values
        else:
            raise ValueError(f"unknown selection {select!r}; choose 'lasso' or 'l1'")
        cols = channel_columns(kept.unsqueeze(0))[0]
        w = reconstruct(feats[r][:, cols], y) if refit else w1[r][:, cols]
        errors.append(float((y - feats[r][:, cols] @ w.T).square().sum() / y.square().sum().clamp_min(1e-30)))
        kept_all.append(kept)
        new_w.append(w)
    return torch.stack(kept_all), (torch.stack(new_w) if refit else None), {"relative_error": errors}


def response_error(model: LeNet5, kept: Tensor, fc1_weight: Tensor | None, x: Tensor) -> list[float]:
    """Per run, ‖Y − Ŷ‖²/‖Y‖² of fc1's response (before its bias) on images ``x``: the pruned layer's
    (kept channels, ``fc1_weight`` or the original columns) against the original's."""
    feats = model.features(x)
    w1 = model.fcs[0].weight.detach()
    out = []
    for r in range(model.runs):
        cols = channel_columns(kept[r:r + 1])[0]
        w = w1[r][:, cols] if fc1_weight is None else fc1_weight[r]
        y = feats[r] @ w1[r].T
        out.append(float((y - feats[r][:, cols] @ w.T).square().sum() / y.square().sum().clamp_min(1e-30)))
    return out


def conv_multiply_adds(c1: int, c2: int, fc: Sequence[int] = (120, 84, 10)) -> int:
    """Multiply-adds per image of a dense LeNet-5 with c1 and c2 filters: conv1 28·28·c1·25, conv2
    10·10·c2·c1·25, then the fc layers (c2·25 → …)."""
    widths = [c2 * POSITIONS, *fc]
    return SIDE * SIDE * c1 * 25 + 10 * 10 * c2 * c1 * 25 + sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def weight_count(model: LeNet5, run: int = 0) -> int:
    """Stored weights of one run (biases excluded): every conv and fc weight."""
    return sum(int(l.weight[run].numel()) for l in model.prunable().values())
