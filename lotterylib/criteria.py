"""Mask criteria: score functions of (w_init, w_final); pruning keeps the highest scores.

Zhou et al. (2019) showed that the lottery ticket's "keep large final weights" is one point in a
family. Each criterion here maps the initial and final stored weights (same shape) to a score of
that shape. Register new ones with :func:`register`.

The two *quadrant* criteria (``large_init_large_final``, ``small_init_small_final``) keep a weight
only if it is large (small) at init **and** at the end. The paper writes their score as
min(α|w_i|, |w_f|) with a layer-wise scale α; the reference code instead searches for one common
percentile p such that pruning everything below the p-th percentile of |w_i| *or* of |w_f| removes
the target count (``bsearch_quadrant_threshold``). A percentile is a rank, so this is the paper's
min(α|w_i|, |w_f|) with |w_i| and |w_f| both mapped to their ranks — the rank transform plays α.
These criteria therefore return *two* score columns, shape ``w.shape + (2,)``, and
:func:`lotterylib.masks.prune` finds the common percentile exactly (as an integer rank, so the pruned
count matches every other criterion's), among the still-kept weights of the layer (or network).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

Criterion = Callable[[Tensor, Tensor, torch.Generator], Tensor]
CRITERIA: dict[str, Criterion] = {}


def register(name: str) -> Callable[[Criterion], Criterion]:
    def deco(fn: Criterion) -> Criterion:
        CRITERIA[name] = fn
        return fn
    return deco


def get(name: str) -> Criterion:
    """The criterion called ``name``; a clear error listing the valid ones otherwise."""
    try:
        return CRITERIA[name]
    except KeyError:
        raise ValueError(f"unknown mask criterion {name!r}; choose one of {', '.join(sorted(CRITERIA))}") from None


def score(name: str, w_init: Tensor, w_final: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Score of every weight under criterion ``name``: ``w.shape`` (or ``w.shape + (2,)`` for quadrant criteria)."""
    if w_init.shape != w_final.shape:
        raise ValueError(f"w_init {tuple(w_init.shape)} and w_final {tuple(w_final.shape)} differ in shape")
    if generator is None and name in RANDOM:
        raise ValueError(f"criterion {name!r} draws random scores: pass a generator seeded from the run's seed")
    return get(name)(w_init, w_final, generator if generator is not None else torch.Generator())


def score_runs(name: str, w_init: Tensor, w_final: Tensor, seeds: Sequence[int]) -> Tensor:
    """Scores of a population's layer, ``(runs, ...)``: run i scored with a generator seeded from seeds[i].

    A random criterion then depends on each run's own seed (and not on which runs are stacked with
    it); callers derive the seeds per purpose, layer and round (:func:`lotterylib.seeds.derive`).
    """
    if w_init.shape != w_final.shape:
        raise ValueError(f"w_init {tuple(w_init.shape)} and w_final {tuple(w_final.shape)} differ in shape")
    if len(seeds) != w_init.shape[0]:
        raise ValueError(f"need one seed per run ({w_init.shape[0]}), got {len(seeds)}")
    return torch.stack([score(name, w_init[i], w_final[i], torch.Generator().manual_seed(int(s)))
                        for i, s in enumerate(seeds)])


def is_quadrant(name: str) -> bool:
    """Whether criterion ``name`` returns several score columns (the common-percentile rule)."""
    get(name)
    return name in QUADRANT


QUADRANT = ("large_init_large_final", "small_init_small_final")
#: Criteria whose scores are random: they need a generator seeded from the run's seed.
RANDOM = ("random",)


@register("large_final")
def large_final(w_i: Tensor, w_f: Tensor, g: torch.Generator) -> Tensor:
    """|w_f| — the lottery ticket's magnitude pruning."""
    return w_f.abs()


@register("random")
def random(w_i: Tensor, w_f: Tensor, g: torch.Generator) -> Tensor:
    """A random ordering (the control)."""
    return torch.rand(w_f.shape, generator=g)


@register("small_final")
def small_final(w_i: Tensor, w_f: Tensor, g: torch.Generator) -> Tensor:
    """−|w_f| — keep the weights that ended smallest (expected to be worse than random)."""
    return -w_f.abs()


@register("large_init")
def large_init(w_i: Tensor, w_f: Tensor, g: torch.Generator) -> Tensor:
    """|w_i| — keep the weights that started largest (needs no training)."""
    return w_i.abs()


@register("small_init")
def small_init(w_i: Tensor, w_f: Tensor, g: torch.Generator) -> Tensor:
    """−|w_i| — keep the weights that started smallest."""
    return -w_i.abs()


@register("large_init_large_final")
def large_init_large_final(w_i: Tensor, w_f: Tensor, g: torch.Generator) -> Tensor:
    """(|w_i|, |w_f|) as two columns, ``w.shape + (2,)``: kept iff above a common percentile in both."""
    return torch.stack([w_i.abs(), w_f.abs()], dim=-1)


@register("small_init_small_final")
def small_init_small_final(w_i: Tensor, w_f: Tensor, g: torch.Generator) -> Tensor:
    """(−|w_i|, −|w_f|) as two columns: kept iff below a common percentile of |w| in both."""
    return torch.stack([-w_i.abs(), -w_f.abs()], dim=-1)


@register("magnitude_increase")
def magnitude_increase(w_i: Tensor, w_f: Tensor, g: torch.Generator) -> Tensor:
    """|w_f| − |w_i| — keep the weights whose magnitude grew most."""
    return w_f.abs() - w_i.abs()


@register("movement")
def movement(w_i: Tensor, w_f: Tensor, g: torch.Generator) -> Tensor:
    """|w_f − w_i| — keep the weights that moved most, in either direction."""
    return (w_f - w_i).abs()


@register("large_final_same_sign")
def large_final_same_sign(w_i: Tensor, w_f: Tensor, g: torch.Generator) -> Tensor:
    """|w_f| where sign(w_i) = sign(w_f), else 0 — the supermask criterion."""
    return torch.where(torch.sign(w_i) == torch.sign(w_f), w_f.abs(), torch.zeros_like(w_f))


@register("large_final_diff_sign")
def large_final_diff_sign(w_i: Tensor, w_f: Tensor, g: torch.Generator) -> Tensor:
    """|w_f| where sign(w_i) ≠ sign(w_f), else 0 — the control for :func:`large_final_same_sign`."""
    return torch.where(torch.sign(w_i) != torch.sign(w_f), w_f.abs(), torch.zeros_like(w_f))


#: The eleven criteria of Zhou et al. (2019), Fig. 2 and §5, in the order of the chapter.
ZHOU = ("large_final", "small_final", "large_init", "small_init", "large_init_large_final",
        "small_init_small_final", "magnitude_increase", "movement", "random", "large_final_same_sign",
        "large_final_diff_sign")


def oneshot_mask(name: str, w_init: Tensor, w_final: Tensor, fraction_kept: float, *, seed: int = 0,
                 keep: Tensor | None = None) -> Tensor:
    """The 0/1 mask of one tensor that criterion ``name`` keeps at ``fraction_kept`` (of all its entries).

    ``w_init``, ``w_final``: any shape, treated as ONE run (for the (w_i, w_f) scatter and tests).
    ``keep``: an existing mask to prune further (default: nothing pruned yet); ``fraction_kept`` still
    counts over all entries. Exactly ``round(fraction_kept · n)`` entries are kept; ties at random.
    """
    from . import masks
    if not 0.0 < float(fraction_kept) <= 1.0:
        raise ValueError(f"fraction_kept must be in (0, 1], got {fraction_kept}")
    keep = torch.ones_like(w_init, dtype=torch.float32) if keep is None else keep.to(torch.float32)
    if keep.shape != w_init.shape:
        raise ValueError(f"keep shape {tuple(keep.shape)} != weights {tuple(w_init.shape)}")
    n, kept = keep.numel(), int(keep.sum())
    target = max(1, int(round(float(fraction_kept) * n)))
    if target > kept:
        raise ValueError(f"cannot keep {target} of {n} entries: only {kept} are still kept")
    g = torch.Generator().manual_seed(int(seed))
    s = score(name, w_init, w_final, g)
    one = {"w": keep.unsqueeze(0)}
    rate = (kept - target) / kept if kept else 0.0
    # masks.prune rounds rate·kept; pass the exact count through a rate that rounds to it.
    out = masks.prune(one, {"w": s.unsqueeze(0)}, rate, seeds=[seed])
    return out["w"][0]
