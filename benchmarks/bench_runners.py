"""Inference speed of stored networks on this CPU: the timing claims DC-4 and DC-5.

LeNet-300-100 as the comparison chapter stores it — dense float32, magnitude-pruned to Han et al.'s
8 / 9 / 26 % kept per layer (CSR), and XNOR-Net (BatchNorm → sign → bit-packed XNOR + popcount, the
last layer in full precision) — timed against the dense network in the same process, run 0, 1 thread
(:func:`lotterylib.runners.time_batches`). Speed does not depend on what the weights learned, only on
their shapes and sparsity, so untrained networks with the same structure stand in for trained ones.

Records: ``runners_csr_vs_dense_b{1,64,1000}`` (Deep Compression's Fig. 9 is at batch 1, its batched
case, Appendix A, at batch 64) and ``runners_xnor_vs_dense_b1000``; ``value`` = the network's ms per
call, ``baseline`` = dense ms, ``ratio`` = baseline / value (> 1: faster than dense).
"""

from __future__ import annotations

import json

import torch

from lotterylib import binary, masks, models, runners, serialize
from lotterylib.comparison import MLP_ARCH

BATCHES = (1, 64, 1000)


def networks() -> dict:
    dense_model = models.build("lenet_300_100", [0])
    dense = serialize.mlp_params(dense_model, 0)
    weights = {k: w.unsqueeze(0) for k, (w, _) in zip(dense_model.prunable(), dense)}
    mask = masks.han_masks(weights)
    pruned = [(w * mask[k][0], b) for k, (w, b) in zip(dense_model.prunable(), dense)]
    xnor = binary.BinaryNet(1, MLP_ARCH, "xnor", noise_seeds=[0]).reset_parameters([0]).eval()
    return {"dense": runners.dense_runner(dense), "csr": runners.csr_runner(pruned),
            "xnor": runners.binary_runner(xnor, 0, kernel="xnor")}


def run() -> list[dict]:
    nets = networks()
    x = torch.rand(max(BATCHES), 784)
    per_batch = runners.time_batches({k: nets[k] for k in ("dense", "csr")}, x, BATCHES, repeats=9, images=1000)
    records = [{"name": f"runners_csr_vs_dense_b{b}", "value": 1e3 * t["csr"], "unit": "ms",
                "baseline": 1e3 * t["dense"], "ratio": t["dense"] / t["csr"], "batch": b} for b, t in per_batch.items()]
    t = runners.time_runners({k: nets[k] for k in ("dense", "xnor")}, x[:1000].contiguous(), repeats=9, inner=3)
    records.append({"name": "runners_xnor_vs_dense_b1000", "value": 1e3 * t["xnor"], "unit": "ms",
                    "baseline": 1e3 * t["dense"], "ratio": t["dense"] / t["xnor"], "batch": 1000})
    return records


if __name__ == "__main__":
    for rec in run():
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}))
