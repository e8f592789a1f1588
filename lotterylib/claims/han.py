"""Learning both weights and connections (Han, Pool, Tran & Dally, NeurIPS 2015): LeNet-300-100 / MNIST.

Claim HAN-1: magnitude pruning plus retraining removes ≥ 90 % of LeNet-300-100's weights (12×, with
per-layer rates 8 % / 9 % / 26 % kept) without losing accuracy. The dense network is round 0 of the
lottery-ticket experiment of the same profile (the same cached run), so both chapters start from the
same trained weights.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from .. import masks, models
from ..cache import ResultCache
from ..data import Dataset, load
from ..lottery import LotteryConfig, round_state, run_imp
from ..provenance import provenance
from ..seeds import derive
from ..train import TrainConfig, evaluate, train
from . import Claim, Context, Part, Verdict, combine, experiment, register
from .stats import SIGNIFICANCE, gap
from .lt import lt_config

FRACTIONS_KEPT = (1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01)


@dataclass(frozen=True)
class FineTune:
    """Cache key: prune the dense net of ``lottery`` with Han's per-layer rates, then retrain; with
    ``pruned=False``, the control: the same dense net trained on for the same steps, unpruned."""

    lottery: LotteryConfig
    train: TrainConfig
    pruned: bool = True


def finetune_config(profile: str) -> TrainConfig:
    # Retraining continues from the trained weights with the training optimiser and learning rate.
    return TrainConfig(iterations=1000 if profile == "quick" else 20_000, eval_every=100)


def prune_without_retraining(final: Mapping[str, torch.Tensor], biases: Mapping[str, torch.Tensor], data: Dataset,
                             fractions_kept=FRACTIONS_KEPT, model_name: str = "lenet_300_100") -> dict[str, np.ndarray]:
    """Test accuracy of the trained nets pruned by magnitude, layer-wise and global, nothing retrained.

    ``final``: {layer: (seeds, ...)} trained weights, ``biases``: {layer: (seeds, out)} their trained
    biases. All fractions × modes × seeds are evaluated as one population.
    Returns {"layerwise": (fractions, seeds), "global": (fractions, seeds)} accuracies.
    """
    seeds = next(iter(final.values())).shape[0]
    k = len(fractions_kept)
    out = {}
    for mode in ("layerwise", "global"):
        stacked = []
        for f in fractions_kept:
            stacked.append(masks.magnitude(final, f, global_=mode == "global"))
        model = models.build(model_name, list(range(k * seeds)))
        models.set_weights(model, {n: w.repeat(k, *[1] * (w.dim() - 1)) for n, w in final.items()},
                           {n: b.repeat(k, 1) for n, b in biases.items()})
        masks.attach_masks(model, masks.stack(stacked))
        _, acc = evaluate(model, data.test)
        out[mode] = acc.numpy().reshape(k, seeds)
    return out


@experiment("han_lenet_mnist")
def han_lenet_mnist(profile: str, seed: int, context: Context) -> dict:
    cfg, _, _ = lt_config(profile, seed)
    cache = context.cache or ResultCache()
    data = load("mnist", context.data_root, device=context.device)
    dense = run_imp(cfg, data, 0, cache=cache, device=context.device, progress=context.progress)[0]
    trained = round_state(cfg, 0, cache)
    final = trained["final"]
    no_retrain = prune_without_retraining(final, trained["bias"], data)
    ft_cfg = finetune_config(profile)

    def retrain(pruned: bool):
        def compute() -> dict:
            import time
            start = time.time()
            mask = masks.han_masks(final) if pruned else {k: torch.ones_like(v) for k, v in final.items()}
            model = models.build(cfg.model, list(cfg.seeds))
            models.set_weights(model, final, trained["bias"])
            masks.attach_masks(model, mask)
            hist = train(model, data, ft_cfg, [derive(s, "han-finetune") for s in cfg.seeds], device=context.device,
                         progress=("fine-tune" if pruned else "dense, trained on") if context.progress else False)
            return {"weights_remaining": float(masks.weights_remaining(mask).mean()),
                    "pruned_test_acc": hist.test_acc[:, 0].tolist(), "finetuned_test_acc": hist.test_acc[:, -1].tolist(),
                    "curve_iterations": hist.iterations.tolist(), "curve_test_acc": hist.test_acc.tolist(),
                    "seconds": time.time() - start}
        return cache.memoize_json(FineTune(cfg, ft_cfg, pruned), compute, "finetune",
                                  provenance=functools.partial(provenance, context.device))

    h = dense.histories["ticket"]
    return {"profile": profile, "fractions_kept": list(FRACTIONS_KEPT),
            "dense_test_acc": h.test_acc[:, -1].tolist(),
            "no_retrain_layerwise": no_retrain["layerwise"].tolist(), "no_retrain_global": no_retrain["global"].tolist(),
            "finetune": retrain(True), "dense_as_long": retrain(False)}


def check_han1(s: Mapping[str, Any], profile: str) -> Verdict:
    """Table 1: pruning 92 % of LeNet-300-100's weights (12×) and retraining loses no accuracy. The control
    is the dense net given the same total training steps (so retraining cannot win by training longer):
    the retrained net must not be below it by > 2 SE, and retraining must win back what pruning cost."""
    ft, control = s["finetune"], s["dense_as_long"]
    tuned, pruned = ft["finetuned_test_acc"], ft["pruned_test_acc"]
    loss = gap(tuned, control["finetuned_test_acc"])
    recovered = gap(tuned, pruned)
    return combine([
        Part(f"{1 / ft['weights_remaining']:.1f}× fewer weights (Han's 8/9/26% per layer)", ft["weights_remaining"] <= 1 / 12 + 1e-3,
             f"{100 * ft['weights_remaining']:.1f}% kept"),
        Part("no loss against the dense net trained as long",
             None if not loss.decidable else loss.diff >= -SIGNIFICANCE * loss.se, f"retrained − dense {loss.text()}"),
        Part("retraining recovers", recovered.exceeds(), f"retrained − pruned {recovered.text()}")], loss.diff,
        "the dense net is trained on for the same steps from the same weights (fresh optimizer, same data order)")


register(Claim("HAN-1", "Han et al. 2015, Table 1 (recalled)", "Pruning LeNet-300-100 by magnitude and retraining "
               "removes 92% of its weights (12×) at no loss of accuracy", "12×, error 1.64% → 1.59%",
               "no significant loss (2 SE) against a dense net trained as long; retrained > pruned by > 2 SE",
               "han_lenet_mnist", check_han1))
