"""Masks and magnitude-style pruning for populations of runs.

A mask is a dict ``layer name → 0/1 float tensor`` shaped like that layer's stored weight, i.e.
``(runs, ...)``. Names are explicit about direction: ``fraction_kept`` + ``fraction_pruned`` = 1,
and ``weights_remaining`` is the LT paper's Pm (fraction of prunable weights still kept).

Pruning follows the LT paper and Zhou et al.'s code: in each round, each layer (or the whole
network, for global pruning) removes ``round(rate · kept)`` of its still-kept weights with the
lowest score, ties broken at random with a seeded generator. Pruned weights are never revived.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

from . import weightfn
from .models import PopulationModel

Mask = dict[str, Tensor]


def _check_rate(name: str, rate: float) -> float:
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be a fraction pruned in [0, 1), got {rate}")
    return rate


def ones(model: PopulationModel) -> Mask:
    """The full mask (nothing pruned) of every prunable layer."""
    return {name: torch.ones_like(weightfn.stored(layer)) for name, layer in model.prunable().items()}


def weights_remaining(mask: Mapping[str, Tensor]) -> Tensor:
    """Pm per run: kept prunable weights / all prunable weights. Shape (runs,)."""
    kept = sum(m.reshape(m.shape[0], -1).sum(1) for m in mask.values())
    total = sum(m[0].numel() for m in mask.values())
    return kept / total


def layer_rates(model: PopulationModel, fc: float = 0.2, conv: float = 0.1, output: float = 0.1) -> dict[str, float]:
    """Per-layer fraction pruned per round, the LT paper's way: hidden FC, conv, and output rates."""
    from .models import StackedConv2d
    rates = {}
    for name, layer in model.prunable().items():
        if name == model.output_layer:
            rates[name] = _check_rate("output rate", output)
        elif isinstance(layer, StackedConv2d):
            rates[name] = _check_rate("conv rate", conv)
        else:
            rates[name] = _check_rate("fc rate", fc)
    return rates


def schedule(layer_sizes: Mapping[str, int], rates: Mapping[str, float], rounds: int) -> list[float]:
    """Pm after 0..rounds rounds of layer-wise pruning, computed exactly as :func:`prune` rounds it."""
    kept = {k: int(n) for k, n in layer_sizes.items()}
    total = sum(kept.values())
    out = [1.0]
    for _ in range(rounds):
        kept = {k: n - int(round(_check_rate(k, rates[k]) * n)) for k, n in kept.items()}
        out.append(sum(kept.values()) / total)
    return out


def _common_rank(columns: Tensor, keep: Tensor) -> Tensor:
    """(n, m) score columns → (n,) min over columns of each entry's rank among the kept entries.

    Pruning the lowest k of this is pruning, in *every* column, what falls below one common
    percentile (Zhou et al.'s quadrant criteria). Ties within a column go by position (callers permute).
    """
    n = columns.shape[0]
    masked = torch.where(keep[:, None] > 0, columns, torch.full_like(columns, -torch.inf))
    order = torch.sort(masked, dim=0, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(0, order, torch.arange(n).unsqueeze(1).expand_as(order).contiguous())
    return ranks.min(dim=1).values.double()


def _ranked_prune(scores: Tensor, keep: Tensor, n_prune: int, generator: torch.Generator) -> Tensor:
    """Remove the ``n_prune`` lowest-scoring kept entries of a flat tensor; ties broken at random.

    ``scores`` is (n,) or, for several score columns, (n, m): then an entry is pruned when it falls
    below a common percentile in any column (the smallest such percentile that prunes ``n_prune``).
    """
    if n_prune <= 0:
        return keep.clone()
    perm = torch.randperm(keep.numel(), generator=generator)
    s = scores.double()[perm]
    if s.dim() == 2:
        s = _common_rank(s, keep[perm])
    s = torch.where(keep[perm] > 0, s, torch.full_like(s, -torch.inf))  # already pruned sort first
    already = int((keep == 0).sum())
    new = keep.clone()
    new[perm[lowest(s, already + n_prune)]] = 0
    return new


def lowest(values: Tensor, k: int) -> Tensor:
    """Positions of the ``k`` smallest entries of a flat tensor, ties going to the earlier position.

    The same set as ``torch.sort(values, stable=True).indices[:k]`` (in another order), found by
    selection: the k-th smallest value, then every entry below it and the first entries equal to it.
    On the CPU a stable sort of a LeNet layer's 235,200 scores takes 3-5x as long, and the
    untrained-accuracy sweep of chapter 03 prunes ~500 times.
    """
    n = values.numel()
    if k <= 0:
        return torch.zeros(0, dtype=torch.long, device=values.device)
    if k >= n:
        return torch.arange(n, device=values.device)
    threshold = torch.topk(values, k, largest=False, sorted=False).values.max()
    if torch.isnan(threshold):  # NaN sorts last; selection by comparison cannot see it
        return torch.sort(values, stable=True).indices[:k]
    below = (values < threshold).nonzero().squeeze(1)
    ties = (values == threshold).nonzero().squeeze(1)[: k - below.numel()]
    return torch.cat([below, ties])


def prune(mask: Mapping[str, Tensor], scores: Mapping[str, Tensor], rates: Mapping[str, float] | float,
          *, seeds: Sequence[int], global_: bool = False) -> Mask:
    """One pruning round: remove ``rate`` of each layer's kept weights (or of the whole net's).

    ``scores``: same keys and shapes as ``mask``; larger score = more worth keeping. A score may
    also carry a trailing dim of m columns (shape ``mask.shape + (m,)``, the quadrant criteria of
    :mod:`~lotterylib.criteria`): a weight is then kept only if it ranks above one common percentile
    of the kept weights in every column, the percentile chosen so that exactly the target is pruned.
    ``rates``: fraction *pruned* of the still-kept weights, per layer or one number.
    ``seeds``: one per run, for the random tie-break (so a resumed run prunes identically).
    With ``global_``, one threshold per run across all layers (rates must then be one number).
    """
    names = list(mask)
    if set(scores) != set(names):
        raise ValueError(f"scores cover layers {sorted(scores)}, mask covers {sorted(names)}")
    if isinstance(rates, Mapping):
        missing = set(names) - set(rates)
        if missing:
            raise ValueError(f"no pruning rate for layers {sorted(missing)}")
        rate_of = {k: _check_rate(k, rates[k]) for k in names}
    else:
        rate_of = {k: _check_rate("rate", rates) for k in names}
    for k in names:
        if scores[k].shape != mask[k].shape and scores[k].shape[:-1] != mask[k].shape:
            raise ValueError(f"layer {k}: scores shape {tuple(scores[k].shape)} != mask shape {tuple(mask[k].shape)}")
    cols = {k: scores[k].dim() - mask[k].dim() for k in names}
    if global_ and len({scores[k].shape[-1] if cols[k] else 0 for k in names}) != 1:
        raise ValueError("global pruning needs every layer's scores to have the same number of columns")

    def flat(k: str, i: int) -> Tensor:  # run i's scores of layer k as (n,) or (n, m)
        s = scores[k][i].detach()
        return s.reshape(-1, s.shape[-1]) if cols[k] else s.reshape(-1)
    runs = mask[names[0]].shape[0]
    if len(seeds) != runs:
        raise ValueError(f"need one tie-break seed per run ({runs}), got {len(seeds)}")
    out = {k: mask[k].clone() for k in names}
    for i, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(int(seed))
        if global_:
            if len(set(rate_of.values())) != 1:
                raise ValueError("global pruning takes a single rate")
            flat_keep = torch.cat([mask[k][i].reshape(-1) for k in names])
            flat_score = torch.cat([flat(k, i).double() for k in names])
            n_prune = int(round(rate_of[names[0]] * int(flat_keep.sum())))
            new = _ranked_prune(flat_score, flat_keep, n_prune, g)
            offset = 0
            for k in names:
                n = mask[k][i].numel()
                out[k][i] = new[offset: offset + n].reshape(mask[k][i].shape)
                offset += n
        else:
            for k in names:
                keep = mask[k][i].reshape(-1)
                n_prune = int(round(rate_of[k] * int(keep.sum())))
                out[k][i] = _ranked_prune(flat(k, i), keep, n_prune, g).reshape(mask[k][i].shape)
    return out


def attach_masks(model: PopulationModel, mask: Mapping[str, Tensor],
                 frozen: Mapping[str, Tensor] | None = None) -> PopulationModel:
    """Attach :class:`~lotterylib.weightfn.Masked` to every prunable layer, and zero pruned stored weights.

    With ``frozen`` (mask-0 variants), pruned positions use those values instead of zero.
    """
    for name, layer in model.prunable().items():
        if name not in mask:
            raise ValueError(f"mask has no entry for layer {name}")
        w = weightfn.stored(layer)
        if mask[name].shape != w.shape:
            raise ValueError(f"layer {name}: mask shape {tuple(mask[name].shape)} != weight {tuple(w.shape)}")
        with torch.no_grad():
            w.mul_(mask[name])
        weightfn.attach(layer, weightfn.Masked(mask[name], None if frozen is None else frozen[name]))
    return model


def stack(masks: Sequence[Mapping[str, Tensor]]) -> Mask:
    """Concatenate masks of several populations along the run dim."""
    return {k: torch.cat([m[k] for m in masks]) for k in masks[0]}


def magnitude(weights: Mapping[str, Tensor], fraction_kept: float, *, global_: bool = False,
              seeds: Sequence[int] | None = None, rates: Mapping[str, float] | None = None) -> Mask:
    """One-shot magnitude mask keeping ``fraction_kept`` of each layer's weights (or of the whole net's).

    ``weights``: {layer: (runs, ...)}. With ``rates`` (fractions pruned per layer, e.g. from
    :func:`layer_rates`) the per-layer amounts follow those instead of one ``fraction_kept``.
    """
    if not 0.0 < float(fraction_kept) <= 1.0:
        raise ValueError(f"fraction_kept must be in (0, 1], got {fraction_kept}")
    runs = next(iter(weights.values())).shape[0]
    seeds = list(seeds) if seeds is not None else list(range(runs))
    full = {k: torch.ones_like(w) for k, w in weights.items()}
    scores = {k: w.detach().abs() for k, w in weights.items()}
    return prune(full, scores, dict(rates) if rates is not None else 1.0 - float(fraction_kept),
                 seeds=seeds, global_=global_)


# Han et al.'s LeNet-300-100 result: fractions of weights kept per layer after pruning.
HAN_KEPT = {"layers.0": 0.08, "layers.1": 0.09, "layers.2": 0.26}


def han_rates(scale: float = 1.0) -> dict[str, float]:
    """Fractions *pruned* per layer when Han et al.'s kept fractions (8 % / 9 % / 26 %) are scaled by ``scale``."""
    if not 0.0 < float(scale) <= 1.0 / max(HAN_KEPT.values()):
        raise ValueError(f"scale must keep every layer's fraction in (0, 1], got {scale}")
    return {k: 1.0 - v * float(scale) for k, v in HAN_KEPT.items()}


def han_masks(final: Mapping[str, Tensor], scale: float = 1.0) -> dict[str, Tensor]:
    """Han et al.'s per-layer magnitude masks (8 % / 9 % / 26 % kept; each times ``scale``)."""
    return magnitude(final, 1.0, rates=han_rates(scale))
