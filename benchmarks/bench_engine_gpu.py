"""The engine benchmark on a CUDA device (nothing without one): plain loop, eager engine and
CUDA-graph engine at N = 1, 8, 32, 128 stacked runs; see :mod:`benchmarks.bench_engine`."""

from __future__ import annotations

import os

import torch

from benchmarks.bench_engine import SIZES, measure


def run() -> list[dict]:
    if not torch.cuda.is_available():
        print("   no CUDA device: skipped")
        return []
    repeats = int(os.environ.get("BENCH_REPEATS", "2"))
    steps = {"eager": {n: 600 for n in SIZES}, "graph": {n: 2000 if n < 128 else 1000 for n in SIZES}}
    return measure(torch.device("cuda"), repeats, 600, steps, tf32_graph_runs=128)
