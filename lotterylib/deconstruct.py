"""Deconstructing lottery tickets (Zhou, Lan, Liu & Yosinski 2019): which parts of a ticket matter.

A lottery ticket is three choices, and this module varies each one:

* **which weights to keep** — the mask criteria of :mod:`lotterylib.criteria`, compared by
  :func:`run_criteria`: IMP with every criterion, all criteria × seeds of a round trained as ONE
  stacked population (same θ₀, same minibatch order, so the comparison is paired);
* **what the kept weights start from** (*mask-1* variants: reinit, reshuffle, constant, each with or
  without the original signs) and **what the pruned weights are frozen at** (*mask-0* variants: zero,
  their initial value, or one of the two by the direction the weight moved) — :data:`VARIANTS`,
  trained as branches off the trunk ticket (``LotteryConfig.criterion``) at chosen rounds, in the
  same population as the criteria;
* **whether training is needed at all** — *supermasks*: :func:`init_accuracy` puts one-shot masks
  on the untrained network and only evaluates; :func:`train_supermask` learns only the mask, with a
  Bernoulli sample and a straight-through gradient (:class:`~lotterylib.weightfn.SampledMask`,
  optionally with dynamic weight rescaling) or by edge-popup's top-k
  (:class:`~lotterylib.weightfn.TopKScores`).

Finally :func:`pack_seed_mask` stores a supermask network as an init seed plus a bit mask.

Shapes follow the library: a layer's weights of a population are ``(runs, ...)``; masks are dicts
``layer → (runs, ...)`` 0/1 tensors; a ``mask`` argument of a single-run function is shaped like
that run's weight.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from . import criteria, lottery, masks, models, weightfn
from .cache import ResultCache
from .data import Dataset, Split
from .lottery import LotteryConfig, Round
from .provenance import provenance
from .seeds import derive
from .train import TrainConfig, evaluate, train

# --- mask-1 and mask-0 variants ----------------------------------------------------------------

#: ``(w_init, w_final, mask, generator) -> (start, frozen)`` for ONE run's layer (all the same shape).
#: ``start``: the stored weight training starts from, zero at pruned positions. ``frozen``: the
#: values pruned positions keep for good (zero at kept positions), or None for "frozen at zero".
Variant = Callable[[Tensor, Tensor, Tensor, torch.Generator], tuple[Tensor, "Tensor | None"]]
VARIANTS: dict[str, Variant] = {}

#: Mask-1 variants (Zhou et al. §3, Fig. 4): what the kept weights are reset to.
MASK1 = ("reinit", "reshuffle", "constant", "signed_reinit", "signed_reshuffle", "signed_constant")
#: Mask-0 variants (Zhou et al. §4, Fig. 5): what the pruned weights are frozen at.
MASK0 = ("freeze_init", "freeze_init_or_zero", "freeze_init_or_zero_all", "freeze_init_or_zero_random")


def _variant(name: str) -> Callable[[Variant], Variant]:
    def deco(fn: Variant) -> Variant:
        VARIANTS[name] = fn
        return fn
    return deco


def get_variant(name: str) -> Variant:
    """The variant called ``name``; a clear error listing the valid ones otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown ticket variant {name!r}; choose one of {', '.join(VARIANTS)}") from None


def layer_sigma(w_init: Tensor) -> Tensor:
    """σ of one run's layer at init (population std over all its weights, as ``np.std``): a 0-d tensor."""
    return w_init.double().std(correction=0).to(w_init.dtype)


def _shuffled(x: Tensor, g: torch.Generator) -> Tensor:
    """``x`` with all its entries permuted uniformly at random."""
    flat = x.reshape(-1)
    return flat[torch.randperm(flat.numel(), generator=g)].reshape(x.shape)


def _reshuffled_kept(x: Tensor, mask: Tensor, g: torch.Generator) -> Tensor:
    """The kept entries of ``x`` permuted among the kept positions; zero elsewhere."""
    out = torch.zeros_like(x).reshape(-1)
    idx = torch.nonzero(mask.reshape(-1) > 0).squeeze(1)
    out[idx] = x.reshape(-1)[idx[torch.randperm(idx.numel(), generator=g)]]
    return out.reshape(x.shape)


@_variant("ticket")
def _ticket(w_i, w_f, mask, g):
    """The lottery ticket: kept weights start at w_i, pruned ones are frozen at zero."""
    return w_i * mask, None


@_variant("reinit")
def _reinit(w_i, w_f, mask, g):
    """Kept weights get a fresh draw from the layer's init distribution (the whole layer's w_i shuffled)."""
    return _shuffled(w_i, g) * mask, None


@_variant("reshuffle")
def _reshuffle(w_i, w_f, mask, g):
    """Kept weights get the kept w_i values permuted among the kept positions."""
    return _reshuffled_kept(w_i, mask, g), None


@_variant("constant")
def _constant(w_i, w_f, mask, g):
    """Kept weights become ±σ_layer with random signs (the layer's init signs shuffled)."""
    return layer_sigma(w_i) * _shuffled(torch.sign(w_i), g) * mask, None


@_variant("signed_reinit")
def _signed_reinit(w_i, w_f, mask, g):
    """|fresh draw| × sign(w_i): magnitudes from the whole layer shuffled, signs kept."""
    return _shuffled(w_i, g).abs() * torch.sign(w_i) * mask, None


@_variant("signed_reshuffle")
def _signed_reshuffle(w_i, w_f, mask, g):
    """|kept w_i permuted among kept positions| × sign(w_i)."""
    return _reshuffled_kept(w_i, mask, g).abs() * torch.sign(w_i) * mask, None


@_variant("signed_constant")
def _signed_constant(w_i, w_f, mask, g):
    """σ_layer · sign(w_i): only the initial signs survive."""
    return layer_sigma(w_i) * torch.sign(w_i) * mask, None


def _shrank(w_i: Tensor, w_f: Tensor) -> Tensor:
    """0/1: the weight moved toward zero during training (|w_f| < |w_i|)."""
    return (w_f.abs() < w_i.abs()).to(w_i.dtype)


@_variant("freeze_init")
def _freeze_init(w_i, w_f, mask, g):
    """Pruned weights frozen at their initial value w_i instead of zero."""
    return w_i * mask, w_i * (1 - mask)


@_variant("freeze_init_or_zero")
def _freeze_init_or_zero(w_i, w_f, mask, g):
    """Pruned weights frozen at 0 if they moved toward zero (|w_f| < |w_i|), else at w_i (Variant 1)."""
    return w_i * mask, w_i * (1 - mask) * (1 - _shrank(w_i, w_f))


@_variant("freeze_init_or_zero_all")
def _freeze_init_or_zero_all(w_i, w_f, mask, g):
    """As ``freeze_init_or_zero``, and kept weights that moved toward zero also start at 0 (Variant 2)."""
    keep_init = 1 - _shrank(w_i, w_f)
    return w_i * mask * keep_init, w_i * (1 - mask) * keep_init


@_variant("freeze_init_or_zero_random")
def _freeze_init_or_zero_random(w_i, w_f, mask, g):
    """Control: as many pruned weights set to 0 as Variant 1 would, but chosen at random; rest at w_i."""
    pruned = torch.nonzero(mask.reshape(-1) == 0).squeeze(1)
    n_zero = int((_shrank(w_i, w_f).reshape(-1)[pruned] > 0).sum())
    frozen = (w_i * (1 - mask)).reshape(-1).clone()
    frozen[pruned[torch.randperm(pruned.numel(), generator=g)[:n_zero]]] = 0
    return w_i * mask, frozen.reshape(w_i.shape)


def transform(variant: str, w_init: Tensor, w_final: Tensor, mask: Tensor,
              seeds: Sequence[int]) -> tuple[Tensor, Tensor | None]:
    """Apply ``variant`` to every run of a stacked layer. All inputs ``(runs, ...)``; one seed per run.

    Returns ``(start, frozen)`` of the same shape; ``frozen`` is None when the variant freezes pruned
    weights at zero.
    """
    fn = get_variant(variant)
    if not (w_init.shape == w_final.shape == mask.shape):
        raise ValueError(f"w_init {tuple(w_init.shape)}, w_final {tuple(w_final.shape)} and mask "
                         f"{tuple(mask.shape)} must have one shape")
    if len(seeds) != w_init.shape[0]:
        raise ValueError(f"need one seed per run ({w_init.shape[0]}), got {len(seeds)}")
    starts, frozens = [], []
    for i, seed in enumerate(seeds):
        s, f = fn(w_init[i], w_final[i], mask[i].to(w_init.dtype), torch.Generator().manual_seed(int(seed)))
        starts.append(s)
        frozens.append(f)
    frozen = None if all(f is None for f in frozens) else torch.stack(
        [torch.zeros_like(s) if f is None else f for s, f in zip(starts, frozens)])
    return torch.stack(starts), frozen


# --- IMP with every criterion, and the variants as branches ------------------------------------

@dataclass(frozen=True)
class DeconstructConfig:
    """IMP with several mask criteria at once, plus mask-0/mask-1 branches off one of them.

    ``lottery``: network, data, training, seeds and per-round pruning rates; ``lottery.criterion`` is
    the *trunk* the variants branch off (the paper's large_final). ``lottery.controls`` is not used.
    ``criteria``: criteria to run IMP with (the trunk is always among them).
    ``branches``: ``((round, (variant, ...)), ...)``: at that round, train these variants on the
    trunk's mask (mask-0 variants use each pruned weight's final value from the last training in
    which it was still kept). A protocol of this book, cheaper than the authors'.
    ``chains``: variants each run as their own chain of pruning rounds, the variant applied before
    every round and the next mask pruned (by the trunk criterion) from the chain's own trained
    weights: the authors' protocol (``print_train_lottery_iterative_command.sh``). History key
    ``chain:<variant>`` (:func:`chain_name`).
    """

    lottery: LotteryConfig = field(default_factory=LotteryConfig)
    criteria: tuple[str, ...] = criteria.ZHOU
    branches: tuple[tuple[int, tuple[str, ...]], ...] = ()
    chains: tuple[str, ...] = ()

    def __post_init__(self):
        for c in self.criteria:
            criteria.get(c)
        if len(set(self.criteria)) != len(self.criteria):
            raise ValueError(f"criteria listed twice: {self.criteria}")
        if self.lottery.criterion not in self.criteria:
            raise ValueError(f"the trunk criterion {self.lottery.criterion!r} must be among the criteria {self.criteria}")
        for rnd, variants in self.branches:
            if int(rnd) < 1:
                raise ValueError(f"branches start at round 1 (round 0 is the dense network), got {rnd}")
            for v in variants:
                get_variant(v)
            if len(set(variants)) != len(variants) or set(variants) & set(self.criteria):
                raise ValueError(f"branch variants at round {rnd} must be distinct and not criterion names: {variants}")
        for v in self.chains:
            get_variant(v)
        if len(set(self.chains)) != len(self.chains):
            raise ValueError(f"chain variants listed twice: {self.chains}")

    def variants_at(self, rnd: int) -> tuple[str, ...]:
        out: tuple[str, ...] = ()
        for r, variants in self.branches:
            if int(r) == rnd:
                out += tuple(variants)
        return out


def chain_name(variant: str) -> str:
    """The history/accuracy-table key of ``variant`` run as its own chain (the authors' protocol)."""
    return f"chain:{variant}"


@dataclass(frozen=True)
class CriteriaRound:
    """Cache key of round ``round`` (≥ 1) of a :class:`DeconstructConfig` run."""

    config: DeconstructConfig
    round: int


def dense_weights(config: LotteryConfig, data: Dataset, *, cache: ResultCache | None = None,
                  device: str | torch.device = "cpu", progress: bool = True) -> tuple[Round, dict, dict]:
    """Round 0 of IMP (the dense network, shared with :func:`lotterylib.lottery.run_imp`).

    Returns (round, θ₀, θ_final), the weights as ``{layer: (seeds, ...)}``.
    """
    cache = cache or ResultCache()
    (dense,) = lottery.run_imp(config, data, 0, cache=cache, device=device, progress=progress)
    final = cache.get(lottery.ImpRound(config, 0), "imp").tensors()["final"]
    return dense, lottery.initial_weights(config), final


def _population(config: LotteryConfig, groups: Sequence[tuple[dict, dict, dict | None]]) -> models.PopulationModel:
    """One stacked model: per group (mask, start, frozen-or-None), one run per seed."""
    n = len(config.seeds)
    model = models.build(config.model, lottery.init_seeds(config) * len(groups))
    for name, layer in model.prunable().items():
        with torch.no_grad():
            weightfn.stored(layer).copy_(torch.cat([start[name] for _, start, _ in groups]))
    mask = masks.stack([m for m, _, _ in groups])
    frozen = None
    if any(f is not None for _, _, f in groups):
        frozen = {k: torch.cat([torch.zeros_like(m[k]) if f is None else f[k] for m, _, f in groups]) for k in mask}
    masks.attach_masks(model, mask, frozen)
    assert model.runs == n * len(groups)
    return model


def run_criteria(config: DeconstructConfig, data: Dataset, rounds: int, *, cache: ResultCache | None = None,
                 device: str | torch.device = "cpu", progress: bool = True,
                 on_round: Callable[[Round], None] | None = None, deadline: float | None = None) -> list[Round]:
    """Rounds 0..``rounds`` of IMP with every criterion; round r ≥ 1 is ONE stacked population.

    ``deadline``: as in :func:`lotterylib.lottery.run_imp` (stop before a round that would not finish).

    Round 0 is the dense network (histories key ``"dense"``); in round r ≥ 1 the histories are keyed
    by criterion name and by the name of each branch variant trained that round. Every criterion
    prunes the same count per layer, so all share one weights-remaining value per round. Finished
    rounds come from the result cache.
    """
    if rounds < 0:
        raise ValueError(f"rounds must be ≥ 0, got {rounds}")
    cache = cache or ResultCache()
    lc = config.lottery
    trunk = lc.criterion
    dense, init, final0 = dense_weights(lc, data, cache=cache, device=device, progress=progress)
    out = [Round(0, 1.0, {"dense": dense.histories["ticket"]}, dense.seconds)]
    if on_round is not None:
        on_round(out[0])
    ones = {k: torch.ones_like(v) for k, v in init.items()}
    # A *line* is one chain of pruning rounds: each criterion's IMP, and each chained variant's.
    chained = {chain_name(v): v for v in config.chains}
    lines = list(config.criteria) + list(chained)
    criterion_of = {**{c: c for c in config.criteria}, **{line: trunk for line in chained}}
    mask = {line: ones for line in lines}
    final = {line: final0 for line in lines}
    last = {line: dict(final0) for line in [trunk, *chained]}  # each weight's value when last trained kept
    n = len(lc.seeds)
    for rnd in range(1, rounds + 1):
        mask = {line: lottery.next_mask(dataclasses.replace(lc, criterion=criterion_of[line]), mask[line], init,
                                        final[line], rnd) for line in lines}
        variants = config.variants_at(rnd)
        key = CriteriaRound(config, rnd)
        # Under the round's lock: a concurrent process waits for this round, then reads it.
        with cache.lock(key, "dlt"):
            entry = cache.get(key, "dlt")
            if entry is None:
                if not lottery.time_left(deadline, out[1:]):
                    break
                start = time.time()
                groups: list[tuple[dict, dict, dict | None]] = [
                    (mask[c], {k: init[k] * mask[c][k] for k in init}, None) for c in config.criteria]
                for line, v in chained.items():  # the variant applied anew, on the chain's own mask and weights
                    groups.append(_variant_group(v, init, last[line], mask[line], [derive(s, "chain", v, rnd) for s in lc.seeds]))
                for v in variants:  # branches off the trunk, at this round only
                    groups.append(_variant_group(v, init, last[trunk], mask[trunk], [derive(s, v, rnd) for s in lc.seeds]))
                model = _population(lc, groups)
                names = lines + list(variants)
                history = train(model, data, lc.train, lottery.data_seeds(lc, rnd) * len(names), device=device,
                                progress=f"round {rnd} ×{len(names)}" if progress else False,
                                checkpoint=cache.partial(key, "dlt"))
                finals = {k: weightfn.stored(l).detach().cpu() for k, l in model.prunable().items()}
                final_now = {line: {k: finals[k][i * n:(i + 1) * n].clone() for k in finals} for i, line in enumerate(lines)}
                result = Round(rnd, float(masks.weights_remaining(mask[trunk]).mean()),
                               {name: history.select(slice(i * n, (i + 1) * n)) for i, name in enumerate(names)},
                               time.time() - start + history.resumed_seconds)
                state = {"final": final_now, "mask": {line: {k: m.bool() for k, m in mask[line].items()} for line in lines}}

                def write(w, result=result, state=state):
                    w.json(result.to_json())
                    w.tensors(state)
                cache.put(key, write, "dlt", provenance=provenance(device, result.seconds))
            else:
                result = Round.from_json(entry.json())
                state = entry.tensors()
                final_now = state["final"]
                for line in lines:
                    if any(not torch.equal(state["mask"][line][k], mask[line][k].bool()) for k in init):
                        raise RuntimeError(f"cached round {rnd} ({cache.path(key, 'dlt')}) has a different {line} mask "
                                           f"than this run derives: delete that entry")
        final = final_now
        last = {line: {k: torch.where(mask[line][k] > 0, final[line][k], last[line][k]) for k in init} for line in last}
        out.append(result)
        if on_round is not None:
            on_round(result)
    return out


def _variant_group(variant: str, init: dict, last: dict, mask: dict, seeds: Sequence[int]) -> tuple[dict, dict, dict | None]:
    """(mask, start, frozen-or-None) of one variant group of a population: ``variant`` applied per layer
    to θ₀, the weights' last trained values and ``mask``."""
    start, frozen = {}, {}
    for k in init:
        start[k], frozen[k] = transform(variant, init[k], last[k], mask[k], seeds)
    if all(f is None for f in frozen.values()):
        return mask, start, None
    return mask, start, {k: torch.zeros_like(start[k]) if frozen[k] is None else frozen[k] for k in frozen}


def accuracy_table(rounds: Sequence[Round]) -> dict:
    """JSON-able accuracies of a :func:`run_criteria` result.

    ``{"rounds": [r...], "weights_remaining": [Pm...], "acc": {name: {str(round): [per seed]}}}``
    with test accuracy at the early-stopping iteration (minimum validation loss). Every criterion
    also gets round "0", the dense network they all start from.
    """
    out: dict = {"rounds": [r.round for r in rounds], "weights_remaining": [r.weights_remaining for r in rounds],
                 "acc": {}}
    dense = next((r.histories["dense"] for r in rounds if r.round == 0), None)
    for r in rounds:
        for name, h in r.histories.items():
            if name == "dense":
                continue
            row = out["acc"].setdefault(name, {})
            if dense is not None and name in criteria.CRITERIA and "0" not in row:
                row["0"] = dense.early_stop_test_acc().tolist()
            row[str(r.round)] = h.early_stop_test_acc().tolist()
    return out


# --- supermasks at init: evaluate, don't train ----------------------------------------------------

WEIGHTS = ("init", "signed_constant")


def base_weights(kind: str, w_init: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The untrained weights a supermask is put on: θ₀ itself, or σ_layer·sign(θ₀) per run and layer."""
    if kind == "init":
        return {k: v.clone() for k, v in w_init.items()}
    if kind == "signed_constant":
        out = {}
        for k, v in w_init.items():
            sigma = v.reshape(v.shape[0], -1).double().std(dim=1, correction=0).to(v.dtype)
            out[k] = sigma.reshape(-1, *([1] * (v.dim() - 1))) * torch.sign(v)
        return out
    raise ValueError(f"unknown supermask weights {kind!r}; choose one of {', '.join(WEIGHTS)}")


def oneshot_masks(model_name: str, w_init: Mapping[str, Tensor], w_final: Mapping[str, Tensor], criterion: str,
                  fractions_pruned: Mapping[str, float], seeds: Sequence[int]) -> dict[str, Tensor]:
    """Prune the full mask in one step: each layer loses ``fractions_pruned[layer]`` of its weights.

    ``w_init``/``w_final``: ``{layer: (runs, ...)}``; one tie-break seed per run.
    """
    ones = {k: torch.ones_like(v) for k, v in w_init.items()}
    scores = {k: criteria.score_runs(criterion, w_init[k], w_final[k], [derive(s, "oneshot-score", criterion, k)
                                                                         for s in seeds]) for k in w_init}
    return masks.prune(ones, scores, dict(fractions_pruned), seeds=list(seeds))


def evaluate_weights(model_name: str, weights: Mapping[str, Tensor], split: Split, chunk: int = 32) -> np.ndarray:
    """Accuracy of networks given by their weights ``{layer: (N, ...)}`` (zero biases, no training).

    Evaluated ``chunk`` networks at a time as a stacked population. Returns (N,) accuracies.
    """
    n = next(iter(weights.values())).shape[0]
    accs = []
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        model = models.build(model_name, list(range(hi - lo)))
        for name, layer in model.prunable().items():
            with torch.no_grad():
                weightfn.stored(layer).copy_(weights[name][lo:hi])
        _, acc = evaluate(model, split, batch_size=1000)
        accs.append(acc.cpu().numpy())
    return np.concatenate(accs)


def init_accuracy(model_name: str, w_init: Mapping[str, Tensor], w_final: Mapping[str, Tensor],
                  criteria_names: Sequence[str], layer_rates: Mapping[str, float], powers: Sequence[int],
                  split: Split, *, seeds: Sequence[int], weights: Sequence[str] = WEIGHTS) -> dict:
    """Supermask accuracy at init: one-shot masks of each criterion at each pruning power, no training.

    Power p keeps ``(1 − rate)^p`` of each layer (Zhou's ``prune_base ** prune_power``).
    Returns ``{"weights_remaining": [P], "acc": {kind: {criterion: [[per seed] × P]}}}``.
    """
    for kind in weights:
        base_weights(kind, {})
    runs = len(seeds)
    stacked: dict[str, list[Tensor]] = {k: [] for k in w_init}
    order, remaining = [], []
    for p in powers:
        rates = {k: 1.0 - (1.0 - r) ** int(p) for k, r in layer_rates.items()}
        for c in criteria_names:
            m = oneshot_masks(model_name, w_init, w_final, c, rates, [derive(s, "supermask", p) for s in seeds])
            if c == criteria_names[0]:
                remaining.append(float(masks.weights_remaining(m).mean()))
            for kind in weights:
                base = base_weights(kind, w_init)
                for k in w_init:
                    stacked[k].append(base[k] * m[k])
                order.append((kind, c, p))
    acc = evaluate_weights(model_name, {k: torch.cat(v) for k, v in stacked.items()}, split)
    out: dict = {"weights_remaining": remaining, "powers": [int(p) for p in powers],
                 "acc": {kind: {c: [] for c in criteria_names} for kind in weights}}
    for i, (kind, c, p) in enumerate(order):
        out["acc"][kind][c].append(acc[i * runs:(i + 1) * runs].tolist())
    return out


@dataclass(frozen=True)
class InitAccuracyConfig:
    """Cache key of a supermask-at-init sweep: masks from ``lottery``'s dense run (round 0).

    ``powers``: pruning powers p (each layer keeps (1 − rate)^p, rates ``rate_fc``/``rate_conv``/
    ``rate_output``, Zhou's ``prune_base``); ``weights``: the untrained weights the masks go on.
    """

    lottery: LotteryConfig = field(default_factory=LotteryConfig)
    criteria: tuple[str, ...] = criteria.ZHOU
    powers: tuple[int, ...] = tuple(range(1, 21))
    weights: tuple[str, ...] = WEIGHTS
    rate_fc: float = 0.2
    rate_conv: float = 0.1
    rate_output: float = 0.1
    test_size: int = 0  # evaluate on the first ``test_size`` test images (0: all)

    def __post_init__(self):
        for c in self.criteria:
            criteria.get(c)
        if self.test_size < 0:
            raise ValueError(f"test_size must be ≥ 0 (0: the whole test split), got {self.test_size}")
        for w in self.weights:
            base_weights(w, {})
        if not self.powers or any(int(p) < 0 for p in self.powers):
            raise ValueError(f"powers must be non-negative integers, got {self.powers}")


def run_init_accuracy(config: InitAccuracyConfig, data: Dataset, *, cache: ResultCache | None = None,
                      device: str | torch.device = "cpu", progress: bool = True) -> dict:
    """:func:`init_accuracy` on the test split for ``config`` (cached); trains the dense net if needed."""
    cache = cache or ResultCache()
    # Outside compute(): the dense training is timed in its own cache entry, not in this one.
    _, init, final = dense_weights(config.lottery, data, cache=cache, device=device, progress=progress)

    def compute() -> dict:
        model = models.build(config.lottery.model, [0])
        rates = masks.layer_rates(model, fc=config.rate_fc, conv=config.rate_conv, output=config.rate_output)
        n = config.test_size or len(data.test)
        return init_accuracy(config.lottery.model, init, final, config.criteria, rates, config.powers,
                             Split(data.test.x[:n], data.test.y[:n]), seeds=list(config.lottery.seeds),
                             weights=config.weights)

    return cache.memoize_json(config, compute, "dlt-init", provenance=functools.partial(provenance, device))


def best_power(result: Mapping, kind: str, criterion: str) -> int:
    """Index (into ``result["powers"]``) of the highest seed-mean accuracy of ``criterion`` on ``kind``."""
    acc = np.asarray(result["acc"][kind][criterion], dtype=float).mean(axis=1)
    return int(np.argmax(acc))


# --- learned supermasks: train only the mask ---------------------------------------------------

METHODS = ("sampled", "edge_popup")


@dataclass(frozen=True)
class SupermaskConfig:
    """Learn a mask on frozen weights. ``method``: "sampled" (Zhou: Bernoulli(σ(S)), straight-through)
    or "edge_popup" (Ramanujan et al.: top-``fraction_kept`` of |S|, straight-through).

    ``weights``: "init" (θ₀) or "signed_constant" (σ_layer·sign(θ₀)). ``rescale``: dynamic weight
    rescaling (sampled only). ``score_init``: initial logit of every weight (sampled; 0 → p = ½).
    Biases stay at their initial zero; only the scores train.
    """

    model: str = "lenet_300_100"
    dataset: str = "mnist"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(iterations=5000, lr=0.1))
    seeds: tuple[int, ...] = (0,)
    method: str = "sampled"
    weights: str = "init"
    rescale: bool = False
    score_init: float = 0.0
    fraction_kept: float = 0.5

    def __post_init__(self):
        if self.model not in models.ARCHITECTURES:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(models.ARCHITECTURES)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown supermask method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"unknown supermask weights {self.weights!r}; choose one of {', '.join(WEIGHTS)}")
        if self.rescale and self.method != "sampled":
            raise ValueError("dynamic weight rescaling applies to the sampled supermask only")
        if not 0.0 < self.fraction_kept <= 1.0:
            raise ValueError(f"fraction_kept must be in (0, 1], got {self.fraction_kept}")
        if not self.seeds:
            raise ValueError("at least one seed is needed")


def supermask_model(config: SupermaskConfig) -> models.PopulationModel:
    """The population (one run per seed) with frozen weights and a trainable score per weight."""
    seeds = [derive(s, "init") for s in config.seeds]
    model = models.build(config.model, seeds)
    w0 = {k: weightfn.stored(l).detach().clone() for k, l in model.prunable().items()}
    base = base_weights(config.weights, w0)
    for p in model.parameters():
        p.requires_grad_(False)
    for name, layer in model.prunable().items():
        w = weightfn.stored(layer)
        with torch.no_grad():
            w.copy_(base[name])
        if config.method == "sampled":
            fn: torch.nn.Module = weightfn.SampledMask(torch.full_like(w, float(config.score_init)),
                                                       [derive(s, "supermask-sample", name) for s in config.seeds],
                                                       rescale=config.rescale)
        else:
            # Run i's scores from its own generator: a stacked population starts as its runs would alone.
            fan_in = layer.fans()[0]
            scores = torch.stack([torch.rand(w.shape[1:], generator=torch.Generator().manual_seed(derive(s, "scores", name)))
                                  for s in config.seeds])
            scores = (scores * 2 - 1) / fan_in ** 0.5  # kaiming-uniform(a=√5)
            fn = weightfn.TopKScores(scores, config.fraction_kept)
        weightfn.attach(layer, fn)
    return model


def score_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The mask scores of every layer (what a supermask trains)."""
    out = []
    for layer in getattr(model, "prunable", lambda: {})().values():
        for fn in weightfn.functions(layer):
            if isinstance(fn, (weightfn.SampledMask, weightfn.TopKScores)):
                out.append(fn.scores)
    if not out:
        raise ValueError("the model has no supermask scores attached")
    return out


def train_supermask(config: SupermaskConfig, data: Dataset, *, cache: ResultCache | None = None,
                    device: str | torch.device = "cpu", progress: bool = True) -> dict:
    """Train only the scores; returns (cached) curves, accuracies and the final mask density.

    ``{"history": History json, "test_acc": [per seed at early stop], "final_test_acc": [...],
    "fraction_kept": [per seed]}``. The Bernoulli draws come from per-run generators
    (:class:`~lotterylib.weightfn.SampledMask`), so each run's result does not depend on the others.
    """
    cache = cache or ResultCache()
    with cache.lock(config, "supermask"):
        entry = cache.get(config, "supermask")
        if entry is not None:
            return entry.json()
        start = time.time()
        model = supermask_model(config)
        history = train(model, data, config.train, [derive(s, "data", "supermask") for s in config.seeds],
                        device=device, trainable=score_parameters,
                        progress=f"supermask {config.method}" if progress else False,
                        checkpoint=cache.partial(config, "supermask"))
        result = {"history": history.to_json(), "test_acc": history.early_stop_test_acc().tolist(),
                  "final_test_acc": history.test_acc[:, -1].tolist(), "fraction_kept": fraction_kept(model).tolist(),
                  # its seconds include earlier, interrupted pieces of the training
                  "seconds": time.time() - start + history.resumed_seconds}
        scores = {name: fn.scores.detach().cpu().clone() for name, layer in model.prunable().items()
                  for fn in weightfn.functions(layer) if hasattr(fn, "scores")}
        cache.put(config, lambda w: (w.json(result), w.tensors(scores)), "supermask",
                  provenance=provenance(device, result["seconds"]))
    return result


def learned_masks(config: SupermaskConfig, cache: ResultCache | None = None) -> dict[str, Tensor]:
    """The masks a trained supermask keeps, ``{layer: bool (runs, ...)}`` (train it first with
    :func:`train_supermask`): edge-popup's top-k of |S|; for the sampled supermask its most likely mask
    [σ(S) > ½] (what it samples from, deterministically)."""
    entry = (cache or ResultCache()).get(config, "supermask")
    if entry is None or not (entry.path / "state.pt").exists():
        raise LookupError("this supermask has not been trained (see train_supermask)")
    scores = entry.tensors()
    if config.method == "edge_popup":
        return {k: weightfn.topk_mask(s.abs(), config.fraction_kept).bool() for k, s in scores.items()}
    return {k: s > 0 for k, s in scores.items()}  # σ(S) > ½ ⟺ S > 0


@torch.no_grad()
def fraction_kept(model: models.PopulationModel) -> Tensor:
    """Expected fraction of weights a supermask keeps, per run: mean σ(S) (sampled) or k (edge-popup)."""
    kept, total = 0.0, 0
    for layer in model.prunable().values():
        for fn in weightfn.functions(layer):
            s = fn.scores
            if isinstance(fn, weightfn.SampledMask):
                kept = kept + torch.sigmoid(s).reshape(s.shape[0], -1).sum(1)
            elif isinstance(fn, weightfn.TopKScores):
                kept = kept + weightfn.topk_mask(s.abs(), fn.fraction_kept).reshape(s.shape[0], -1).sum(1)
        total += weightfn.stored(layer)[0].numel()
    return torch.as_tensor(kept) / total


# --- a network as "seed + mask" ----------------------------------------------------------------

_MAGIC = b"STM1"


def pack_seed_mask(model_name: str, init_seed: int, weights: str, mask: Mapping[str, Tensor]) -> bytes:
    """Serialise a supermask network: architecture, init seed, weight kind and the bit mask.

    ``mask``: ONE run's mask ``{layer: 0/1 tensor}``. The bits are packed (8 per byte) and
    zlib-compressed. :func:`unpack_seed_mask` inverts it; :func:`rebuild` makes the network.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"unknown supermask weights {weights!r}; choose one of {', '.join(WEIGHTS)}")
    names = list(mask)
    header = json.dumps({"model": model_name, "seed": int(init_seed), "weights": weights,
                         "layers": [[k, list(mask[k].shape)] for k in names]}, separators=(",", ":")).encode()
    bits = np.packbits(torch.cat([mask[k].reshape(-1) for k in names]).numpy() > 0)
    body = zlib.compress(bits.tobytes(), 9)
    return _MAGIC + struct.pack("<I", len(header)) + header + body


def unpack_seed_mask(blob: bytes) -> tuple[dict, dict[str, Tensor]]:
    """(header, mask) from :func:`pack_seed_mask`'s bytes."""
    if blob[:4] != _MAGIC:
        raise ValueError("not a seed+mask blob (bad magic bytes)")
    (n,) = struct.unpack("<I", blob[4:8])
    header = json.loads(blob[8:8 + n].decode())
    sizes = [int(np.prod(shape)) for _, shape in header["layers"]]
    bits = np.unpackbits(np.frombuffer(zlib.decompress(blob[8 + n:]), dtype=np.uint8))[: sum(sizes)]
    out, offset = {}, 0
    for (name, shape), size in zip(header["layers"], sizes):
        out[name] = torch.from_numpy(bits[offset:offset + size].astype(np.float32)).reshape(shape)
        offset += size
    return header, out


def rebuild(blob: bytes) -> models.PopulationModel:
    """The one-run network a seed+mask blob describes: θ₀ regenerated from the seed, kind applied, masked."""
    header, mask = unpack_seed_mask(blob)
    model = models.build(header["model"], [header["seed"]])
    w0 = {k: weightfn.stored(l).detach().clone() for k, l in model.prunable().items()}
    base = base_weights(header["weights"], w0)
    for name, layer in model.prunable().items():
        with torch.no_grad():
            weightfn.stored(layer).copy_(base[name] * mask[name].unsqueeze(0))
    return model


def dense_bytes(model: models.PopulationModel) -> int:
    """Bytes of one run's parameters as float32 (weights and biases), the dense baseline."""
    return sum(int(p[0].numel()) * 4 for p in model.parameters())


def seed_mask_storage(config: InitAccuracyConfig, data: Dataset, criterion: str, kind: str, power: int,
                      *, cache: ResultCache | None = None, device: str | torch.device = "cpu",
                      progress: bool = True) -> dict:
    """Store the first seed's supermask network (``criterion`` at ``power`` on ``kind`` weights) as seed+mask.

    Packs it, rebuilds it from the bytes alone and evaluates it on the test split. Returns the sizes
    in bytes (blob, raw bit mask, dense float32 model) and both accuracies, which must agree.
    """
    _, init, final = dense_weights(config.lottery, data, cache=cache, device=device, progress=progress)
    model = models.build(config.lottery.model, [0])
    rates = masks.layer_rates(model, fc=config.rate_fc, conv=config.rate_conv, output=config.rate_output)
    seed = config.lottery.seeds[0]
    one = {k: v[:1] for k, v in init.items()}
    mask = oneshot_masks(config.lottery.model, one, {k: v[:1] for k, v in final.items()}, criterion,
                         {k: 1.0 - (1.0 - r) ** int(power) for k, r in rates.items()}, [derive(seed, "supermask", power)])
    base = base_weights(kind, one)
    reference = float(evaluate_weights(config.lottery.model, {k: base[k] * mask[k] for k in one}, data.test)[0])
    blob = pack_seed_mask(config.lottery.model, derive(seed, "init"), kind, {k: m[0] for k, m in mask.items()})
    _, acc = evaluate(rebuild(blob), data.test, batch_size=1000)
    n_weights = sum(int(m[0].numel()) for m in mask.values())
    return {"criterion": criterion, "weights": kind, "power": int(power),
            "weights_remaining": float(masks.weights_remaining(mask)[0]),
            "bytes_seed_mask": len(blob), "bytes_mask_bits": (n_weights + 7) // 8,
            "bytes_dense": dense_bytes(model), "acc_rebuilt": float(acc[0]), "acc_reference": reference}
