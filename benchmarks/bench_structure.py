"""Inference speed of structured against unstructured shrinking on this CPU: the timing claim LR-3.

LeNet-300-100 (run 0, 1 thread) as chapter 08 builds it — factorised to ranks (32, 16) (two thin layers
per hidden layer, the output layer whole), node-pruned to (60, 20) hidden units (a smaller dense net), and
magnitude-pruned (global) to as many weights as the low-rank net, run as CSR — each timed against the
dense network in the same process (:func:`lotterylib.runners.time_batches`). Speed depends on shapes and
sparsity only, so untrained networks with the same structure stand in for trained ones.

Records ``structure_{lowrank,nodes,csr}_b{1,256}``: ``value`` = the network's ms per call, ``baseline`` =
dense ms per call, ``ratio`` = baseline / value (> 1: faster than dense), ``weights`` = stored weights.
"""

from __future__ import annotations

import json

import torch

from lotterylib import lowrank, masks, models, nodes, runners
from lotterylib.claims.structure import structure_settings

BATCHES = (1, 256)


def networks() -> dict:
    settings = structure_settings("quick")
    dense_model = models.build("lenet_300_100", [0])
    layers = list(dense_model.prunable().values())
    w = [l.weight.detach().clone() for l in layers]
    b = [l.bias.detach().clone() + 0.01 for l in layers]
    factorised = lowrank.layers_of(lowrank.from_dense(w, b, [*settings.claim_ranks, None]))
    ws, bs = nodes.shrink(w, b, nodes.importance_kept(w, settings.claim_units))
    budget = lowrank.weight_count(factorised)
    total = sum(x[0].numel() for x in w)
    mask = masks.magnitude({str(i): x for i, x in enumerate(w)}, budget / total, global_=True)
    unstructured = [(x[0] * mask[str(i)][0], y[0]) for i, (x, y) in enumerate(zip(w, b))]
    return {"dense": (runners.dense_runner([(x[0], y[0]) for x, y in zip(w, b)]), total),
            "lowrank": (lowrank.runner(factorised), budget),
            "nodes": (runners.dense_runner([(x[0], y[0]) for x, y in zip(ws, bs)]), sum(x[0].numel() for x in ws)),
            "csr": (runners.csr_runner(unstructured), int(sum(int((x != 0).sum()) for x, _ in unstructured)))}


def run() -> list[dict]:
    nets = networks()
    x = torch.rand(max(BATCHES), 784)
    per_batch = runners.time_batches({k: v[0] for k, v in nets.items()}, x, BATCHES, repeats=9, images=1000)
    return [{"name": f"structure_{k}_b{b}", "value": 1e3 * t[k], "unit": "ms", "baseline": 1e3 * t["dense"],
             "ratio": t["dense"] / t[k], "batch": b, "weights": int(nets[k][1]), "dense_weights": int(nets["dense"][1])}
            for b, t in per_batch.items() for k in ("lowrank", "nodes", "csr")]


if __name__ == "__main__":
    for rec in run():
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}))
