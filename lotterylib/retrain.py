"""Prune a trained network, then train on: Han et al.'s (2015) "learning both weights and connections".

The trained networks are the tickets IMP stored (:func:`lotterylib.lottery.round_state`: weights and
biases of every seed), so no chapter trains them again. A :class:`Retraining` names one such run —
which IMP round's nets, which masks, which training — and its cache entry keeps the curves and the
retrained weights, so the chapters that need it (magnitude pruning, the comparison) share one run.
``masks="none"`` is the control Han et al.'s claim needs: the same nets trained on for the same steps,
unpruned, so that retraining cannot win by simply training longer.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch

from . import masks, models
from .cache import ResultCache
from .data import Dataset
from .lottery import LotteryConfig, round_state
from .provenance import provenance
from .seeds import derive
from .train import TrainConfig, train

MASKS = ("han", "none")


@dataclass(frozen=True)
class Retraining:
    """Cache key: IMP round ``round``'s trained nets of ``lottery``, pruned (``masks="han"``: Han et al.'s
    8 % / 9 % / 26 % kept per layer, each times ``scale``; ``"none"``: not pruned), trained on with ``train``."""

    lottery: LotteryConfig
    train: TrainConfig
    round: int = 0
    masks: str = "han"
    scale: float = 1.0

    def __post_init__(self):
        if self.masks not in MASKS:
            raise ValueError(f"unknown retraining masks {self.masks!r}; choose one of {', '.join(MASKS)}")
        masks.han_rates(self.scale)  # checks the scale


def data_seeds(key: Retraining) -> list[int]:
    """The seeds of the retraining's minibatch order, one per net: with :func:`lotterylib.train.batch_indices`
    they give the batches :func:`retrain` trains each net on (a chapter's plain loop can train on the same)."""
    return [derive(s, "han-finetune") for s in key.lottery.seeds]


def retrain(key: Retraining, data: Dataset, *, cache: ResultCache | None = None, device: str | torch.device = "cpu",
            progress: bool = True) -> dict:
    """Run (or load) ``key``: the JSON summary — fraction kept, per-seed test accuracy before and after,
    the test-accuracy curve — with the retrained weights and biases kept in the cache entry
    (:func:`retrained_state`). The IMP round must have been run (:func:`lotterylib.lottery.run_imp`)."""
    cache = cache or ResultCache()
    with cache.lock(key, "retrain"):
        entry = cache.get(key, "retrain")
        if entry is not None:
            return entry.json()
        start = time.time()
        trained = round_state(key.lottery, key.round, cache)
        final = trained["final"]
        mask = masks.han_masks(final, key.scale) if key.masks == "han" else {k: torch.ones_like(v) for k, v in final.items()}
        model = models.build(key.lottery.model, list(key.lottery.seeds))
        models.set_weights(model, final, trained["bias"])
        masks.attach_masks(model, mask)
        hist = train(model, data, key.train, data_seeds(key), device=device,
                     progress=("retrain" if key.masks == "han" else "train on, unpruned") if progress else False)
        result = {"weights_remaining": float(masks.weights_remaining(mask).mean()),
                  "pruned_test_acc": hist.test_acc[:, 0].tolist(), "finetuned_test_acc": hist.test_acc[:, -1].tolist(),
                  "curve_iterations": hist.iterations.tolist(), "curve_test_acc": hist.test_acc.tolist(),
                  "seconds": time.time() - start}
        state = {}
        with torch.no_grad():
            for name, layer in model.prunable().items():
                state[f"w.{name}"] = layer.weight.detach().cpu().clone()
                state[f"b.{name}"] = layer.bias.detach().cpu().clone()
        cache.put(key, lambda w: (w.json(result), w.tensors(state)), "retrain",
                  provenance=functools.partial(provenance, device)(result["seconds"]))
    return result


def retrained_state(key: Retraining, cache: ResultCache | None = None) -> dict[str, torch.Tensor]:
    """The retrained effective weights ``w.<layer>`` and biases ``b.<layer>`` (seeds, ...) of a :func:`retrain` run."""
    entry = (cache or ResultCache()).get(key, "retrain")
    if entry is None:
        raise LookupError("this retraining has not been run (see retrain)")
    return entry.tensors()
