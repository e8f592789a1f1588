"""Lottery tickets: iterative magnitude pruning (IMP) with reset to init, its controls, and one-shot.

``run_imp`` reads like the algorithm of Frankle & Carbin (2019, §2):

1. initialise a network (θ₀) and train it;
2. prune a fraction of each layer's remaining weights with the smallest final magnitude;
3. reset the remaining weights to θ₀ and train again; repeat.

Each round trains one stacked population: the winning tickets of every seed and, on the same masks,
each control variant (``reinit``: fresh weights from the init distribution). Every finished round is
stored in the result cache, so an interrupted run resumes at the next round with the same result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from . import criteria, masks, models, weightfn
from .cache import ResultCache
from .data import Dataset
from .provenance import provenance
from .seeds import derive
from .train import History, TrainConfig, train

VARIANTS = ("ticket", "reinit")


@dataclass(frozen=True)
class LotteryConfig:
    """One IMP experiment. Rates are fractions *pruned* per round (the paper's p%)."""

    model: str = "lenet_300_100"
    dataset: str = "mnist"
    train: TrainConfig = field(default_factory=TrainConfig)
    seeds: tuple[int, ...] = (0, 1, 2)
    rate_fc: float = 0.2
    rate_conv: float = 0.1
    rate_output: float = 0.1
    pruning: str = "layerwise"
    criterion: str = "large_final"
    controls: tuple[str, ...] = ("reinit",)

    def __post_init__(self):
        if self.model not in models.ARCHITECTURES:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(models.ARCHITECTURES)}")
        if self.pruning not in ("layerwise", "global"):
            raise ValueError(f"pruning must be 'layerwise' or 'global', got {self.pruning!r}")
        criteria.get(self.criterion)
        for rate in (self.rate_fc, self.rate_conv, self.rate_output):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"pruning rates are fractions pruned in [0, 1), got {rate}")
        bad = set(self.controls) - set(VARIANTS[1:])
        if bad:
            raise ValueError(f"unknown control variant(s) {sorted(bad)}; choose from {VARIANTS[1:]}")
        if not self.seeds:
            raise ValueError("at least one seed is needed")


@dataclass(frozen=True)
class ImpRound:
    """Cache key of round ``round`` of an IMP experiment."""

    lottery: LotteryConfig
    round: int


@dataclass(frozen=True)
class OneShot:
    """Cache key of one-shot pruning to the masks of ``rounds`` IMP rounds at once."""

    lottery: LotteryConfig
    rounds: tuple[int, ...]


@dataclass
class Round:
    """The outcome of one round: Pm and the curves of every variant."""

    round: int
    weights_remaining: float
    histories: dict[str, History]
    seconds: float = 0.0

    def to_json(self) -> dict:
        # "order": the cache writes JSON with sorted keys, and a round read back must list its variants
        # as the computed one did (ticket first), or a summary would change with the cache's state.
        return {"round": self.round, "weights_remaining": self.weights_remaining, "seconds": self.seconds,
                "histories": {k: h.to_json() for k, h in self.histories.items()}, "order": list(self.histories)}

    @classmethod
    def from_json(cls, d: dict) -> "Round":
        order = d.get("order") or list(d["histories"])
        return cls(d["round"], d["weights_remaining"], {k: History.from_json(d["histories"][k]) for k in order},
                   d.get("seconds", 0.0))


def init_seeds(config: LotteryConfig) -> list[int]:
    return [derive(s, "init") for s in config.seeds]


def data_seeds(config: LotteryConfig, rnd: int) -> list[int]:
    return [derive(s, "data", rnd) for s in config.seeds]


def rates_for(config: LotteryConfig, model: models.PopulationModel) -> dict[str, float]:
    return masks.layer_rates(model, fc=config.rate_fc, conv=config.rate_conv, output=config.rate_output)


def initial_weights(config: LotteryConfig) -> dict[str, torch.Tensor]:
    """θ₀ of every seed's ticket: {layer: (seeds, ...)}."""
    model = models.build(config.model, init_seeds(config))
    return {k: weightfn.stored(l).detach().clone() for k, l in model.prunable().items()}


def population(config: LotteryConfig, mask: dict, variants: Sequence[str], rnd: int) -> models.PopulationModel:
    """One stacked model of round ``rnd``, untrained: for each variant, one run per seed, all on ``mask``.

    ``ticket`` runs start from θ₀ (:func:`init_seeds`); a control variant's runs from fresh weights
    seeded by (seed, variant, ``rnd``). Runs are ordered variant-major, seeds within a variant.
    """
    seeds: list[int] = []
    for v in variants:
        seeds += init_seeds(config) if v == "ticket" else [derive(s, v, rnd) for s in config.seeds]
    model = models.build(config.model, seeds)
    return masks.attach_masks(model, masks.stack([mask] * len(variants)))


def _train_variants(config: LotteryConfig, data: Dataset, mask: dict, variants: Sequence[str], rnd: int,
                    device, progress, checkpoint=None) -> tuple[dict[str, History], dict[str, dict]]:
    """Train the round's population; returns the histories by variant and the tickets' trained
    ``{"final": weights, "bias": biases}`` (``{layer: (seeds, ...)}``)."""
    model = population(config, mask, variants, rnd)
    n = len(config.seeds)
    history = train(model, data, config.train, data_seeds(config, rnd) * len(variants), device=device,
                    progress=f"round {rnd}" if progress else False, checkpoint=checkpoint)
    trained = {"final": {k: weightfn.stored(l).detach()[:n].cpu().clone() for k, l in model.prunable().items()},
               "bias": {k: l.bias.detach()[:n].cpu().clone() for k, l in model.prunable().items()}}
    return {v: history.select(slice(i * n, (i + 1) * n)) for i, v in enumerate(variants)}, trained


def next_mask(config: LotteryConfig, mask: dict, init: dict, final: dict, rnd: int) -> dict:
    """Prune round ``rnd``'s mask from the previous round's mask and final weights."""
    model = models.build(config.model, config.seeds[:1])
    scores = {k: criteria.score_runs(config.criterion, init[k], final[k],
                                     [derive(s, "score", config.criterion, k, rnd) for s in config.seeds]) for k in mask}
    prune_seeds = [derive(s, "prune", rnd) for s in config.seeds]
    if config.pruning == "global":
        return masks.prune(mask, scores, config.rate_fc, seeds=prune_seeds, global_=True)
    return masks.prune(mask, scores, rates_for(config, model), seeds=prune_seeds)


def run_imp(config: LotteryConfig, data: Dataset, rounds: int, *, cache: ResultCache | None = None,
            device: str | torch.device = "cpu", progress: bool = True,
            on_round: Callable[[Round], None] | None = None, deadline: float | None = None) -> list[Round]:
    """Rounds 0..``rounds`` of IMP (round 0 = the dense network). Finished rounds come from the cache.

    ``deadline`` (a ``time.time()`` value): do not start a round that would not finish by then,
    judged by the last round's wall time; the rounds finished so far are returned (and cached), so
    a later call with a later deadline resumes there.
    """
    if rounds < 0:
        raise ValueError(f"rounds must be ≥ 0, got {rounds}")
    cache = cache or ResultCache()
    init = initial_weights(config)
    mask = {k: torch.ones_like(v) for k, v in init.items()}
    final: dict | None = None
    out: list[Round] = []
    for rnd in range(rounds + 1):
        key = ImpRound(config, rnd)
        if rnd > 0:
            mask = next_mask(config, mask, init, final, rnd)
        # Under the round's lock: a second process (another chapter of the book, built at the same
        # time) waits for this round and then reads it, instead of training it again.
        with cache.lock(key, "imp"):
            entry = cache.get(key, "imp")
            if entry is None:
                if not time_left(deadline, out):
                    break
                start = time.time()
                variants = ["ticket"] + (list(config.controls) if rnd > 0 else [])
                histories, trained = _train_variants(config, data, mask, variants, rnd, device, progress,
                                                     cache.partial(key, "imp"))
                final = trained["final"]
                seconds = time.time() - start + histories["ticket"].resumed_seconds
                result = Round(rnd, float(masks.weights_remaining(mask).mean()), histories, seconds)
                state = {**trained, "mask": {k: m.bool() for k, m in mask.items()}}

                def write(w, result=result, state=state):
                    w.json(result.to_json())
                    w.tensors(state)
                cache.put(key, write, "imp", provenance=provenance(device, result.seconds))
            else:
                result = Round.from_json(entry.json())
                state = entry.tensors()
                final = state["final"]
                if any(not torch.equal(state["mask"][k], mask[k].bool()) for k in mask):
                    raise RuntimeError(f"cached round {rnd} of {cache.path(key, 'imp')} has a different mask "
                                       f"than this run derives: delete that entry")
        out.append(result)
        if on_round is not None:
            on_round(result)
    return out


def time_left(deadline: float | None, done: Sequence[Round]) -> bool:
    """Whether another round fits before ``deadline``, judged by the last computed round's wall time."""
    if deadline is None:
        return True
    last = next((r.seconds for r in reversed(done) if r.seconds > 0), 0.0)
    return time.time() + 1.05 * last < deadline


def oneshot_targets(config: LotteryConfig, init: dict, final: dict, rounds: Sequence[int]) -> list[dict]:
    """The one-shot masks: for each of ``rounds``, each layer keeps (1 − p)^r of its weights, chosen by
    the criterion from the dense ``final`` weights in one step. Scores and ties of run i come from its seed."""
    base_rates = rates_for(config, models.build(config.model, config.seeds[:1]))
    targets = []
    for r in rounds:
        ones = {k: torch.ones_like(v) for k, v in init.items()}
        scores = {k: criteria.score_runs(config.criterion, init[k], final[k],
                                         [derive(s, "oneshot-score", config.criterion, k, r) for s in config.seeds])
                  for k in init}
        rates = {k: 1.0 - (1.0 - p) ** r for k, p in base_rates.items()}
        targets.append(masks.prune(ones, scores, rates, seeds=[derive(s, "oneshot", r) for s in config.seeds]))
    return targets


def run_oneshot(config: LotteryConfig, data: Dataset, rounds: Sequence[int], *, cache: ResultCache | None = None,
                device: str | torch.device = "cpu", progress: bool = True) -> list[Round]:
    """One-shot pruning: prune the dense net's final weights straight to the Pm of ``rounds`` IMP rounds.

    Each target keeps, per layer, (1 − p)^r of the weights, chosen in one step from the dense final
    weights, then trains from θ₀. All targets × seeds train as one population.
    """
    cache = cache or ResultCache()
    rounds = tuple(int(r) for r in rounds)
    key = OneShot(config, rounds)
    with cache.lock(key, "oneshot"):
        return _oneshot_locked(config, data, rounds, key, cache, device, progress)


def _oneshot_locked(config, data, rounds, key, cache, device, progress) -> list[Round]:
    entry = cache.get(key, "oneshot")
    if entry is not None:
        return [Round.from_json(r) for r in entry.json()["rounds"]]
    run_imp(config, data, 0, cache=cache, device=device, progress=progress)  # the dense net, cached
    final = round_state(config, 0, cache)["final"]
    init = initial_weights(config)
    start = time.time()
    targets = oneshot_targets(config, init, final, rounds)
    n = len(config.seeds)
    pop = models.build(config.model, init_seeds(config) * len(rounds))
    masks.attach_masks(pop, masks.stack(targets))
    history = train(pop, data, config.train, data_seeds(config, 0) * len(rounds), device=device,
                    progress="one-shot" if progress else False, checkpoint=cache.partial(key, "oneshot"))
    seconds = time.time() - start + history.resumed_seconds
    out = [Round(r, float(masks.weights_remaining(t).mean()), {"oneshot": history.select(slice(i * n, (i + 1) * n))},
                 seconds / len(rounds)) for i, (r, t) in enumerate(zip(rounds, targets))]
    cache.put(key, lambda w: w.json({"rounds": [o.to_json() for o in out]}), "oneshot",
              provenance=provenance(device, seconds))
    return out


def summarize(rounds: Sequence[Round]) -> list[dict]:
    """One row per (round, variant): Pm, early-stop iteration and test accuracy (mean, std over seeds)."""
    rows = []
    for r in rounds:
        for variant, h in r.histories.items():
            it, acc = h.early_stop_iteration(), h.early_stop_test_acc()
            rows.append({"round": r.round, "weights_remaining": r.weights_remaining, "variant": variant,
                         "early_stop_iteration": float(np.mean(it)), "early_stop_iteration_std": float(np.std(it)),
                         "test_acc": float(np.mean(acc)), "test_acc_std": float(np.std(acc)),
                         "final_test_acc": float(np.mean(h.test_acc[:, -1])), "seeds": h.runs,
                         "per_seed_test_acc": acc.tolist(), "per_seed_early_stop": it.tolist()})
    return rows


def round_state(config: LotteryConfig, rnd: int, cache: ResultCache | None = None) -> dict:
    """Stored state of a finished IMP round: the tickets' trained weights and biases and the round's mask,
    ``{"final": {layer: (seeds, ...)}, "bias": {layer: (seeds, out)}, "mask": {layer: bool (seeds, ...)}}``."""
    entry = (cache or ResultCache()).get(ImpRound(config, rnd), "imp")
    if entry is None:
        raise LookupError(f"round {rnd} of this IMP experiment has not been run (see run_imp)")
    return entry.tensors()


def trained_model(config: LotteryConfig, rnd: int, cache: ResultCache | None = None, *,
                  runs_per_seed: int = 1) -> models.PopulationModel:
    """The tickets of round ``rnd`` after training: one run per seed, masks attached.

    ``runs_per_seed`` > 1 repeats each seed's network, e.g. to evaluate several masks of it as one population.
    """
    state = round_state(config, rnd, cache)
    n = len(config.seeds)
    model = models.build(config.model, list(config.seeds) * runs_per_seed)
    final = {k: v.repeat(runs_per_seed, *[1] * (v.dim() - 1)) for k, v in state["final"].items()}
    models.set_weights(model, final, {k: v.repeat(runs_per_seed, 1) for k, v in state["bias"].items()})
    mask = {k: v.float().repeat(runs_per_seed, *[1] * (v.dim() - 1)) for k, v in state["mask"].items()}
    masks.attach_masks(model, mask)
    assert n * runs_per_seed == model.runs
    return model
