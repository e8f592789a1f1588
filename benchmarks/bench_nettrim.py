"""Net-Trim layer program: torch ADMM vs the exact cvxpy (Clarabel) solve, same layer, same process.

A synthetic ReLU layer (:func:`lotterylib.nettrim.random_relu_layer`: 100 ReLU inputs + bias → 40
outputs) with ε = 0.05‖Y‖_F, solved by both at P = 300, 600, 1200 samples: ``value`` = ADMM ms
(default settings), ``baseline`` = cvxpy ms (with the QR reduction), ``ratio`` = cvxpy / ADMM; each
record also has the relative objective gap. Then the ADMM alone on an MNIST-sized layer (784 → 300,
P = 1,000 and 2,000) for a fixed 200 iterations: ms per iteration, which grows linearly in P.

One thread (``torch.set_num_threads(1)``): the CPU is shared. Run ``python benchmarks/bench_nettrim.py``.
"""

from __future__ import annotations

import json

import torch

from lotterylib import nettrim


def run() -> list[dict]:
    torch.set_num_threads(1)
    records = []
    for samples in (300, 600, 1200):
        X, Y, _ = nettrim.random_relu_layer(100, 40, samples, seed=0)
        r = nettrim.compare_solvers(X, Y, 0.05 * float(Y.norm()))
        records.append({"name": f"nettrim_admm_vs_cvxpy_100x40_P{samples}", "value": 1e3 * r["seconds_admm"],
                        "unit": "ms", "baseline": 1e3 * r["seconds_cvxpy"], "ratio": r["speedup"],
                        "objective_gap": r["gap"], "admm_iterations": r["admm"].iterations})
    for samples in (1000, 2000):
        X, Y, _ = nettrim.random_relu_layer(784, 300, samples, seed=0, density=0.2)
        t = nettrim.solve_admm(X, Y, 0.05 * float(Y.norm()), max_iter=200, tol=0.0, obj_tol=0.0)
        records.append({"name": f"nettrim_admm_784x300_P{samples}_per_iteration", "value": 1e3 * t.seconds / t.iterations,
                        "unit": "ms", "iterations": t.iterations})
    return records


if __name__ == "__main__":
    for rec in run():
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}))
