"""Training engine vs a plain PyTorch loop, LeNet-300-100 / MNIST, Adam, batch 60, data in memory.

Reports iterations/s of one run and run-iterations/s of N stacked runs, each as a ratio against the
plain loop measured in the same process (median of repeats, interleaved to share the noise).
"""

from __future__ import annotations

import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from lotterylib import data, masks, models
from lotterylib.train import TrainConfig, configure_threads, train

STEPS = 300


def plain_loop(mnist, steps: int = STEPS) -> float:
    """The loop a reader would write: nn.Sequential, random batches sliced from the tensors."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1.2e-3)
    x, y = mnist.train.x, mnist.train.y
    start = time.perf_counter()
    for _ in range(steps):
        i = torch.randint(0, len(y), (60,))
        loss = F.cross_entropy(net(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def engine(mnist, runs: int, steps: int = STEPS) -> float:
    """Run-iterations/s of the engine with ``runs`` masked LeNets stacked (no evaluation in the timing)."""
    model = models.build("lenet_300_100", list(range(runs)))
    masks.attach_masks(model, masks.ones(model))
    start = time.perf_counter()
    train(model, mnist, TrainConfig(iterations=steps, eval_every=10**9), list(range(runs)), progress=False)
    return runs * steps / (time.perf_counter() - start)


def run() -> list[dict]:
    # One thread by default: on a small shared machine two threads can collapse under load.
    threads = configure_threads(int(os.environ.get("BENCH_THREADS", "1")))
    mnist = data.load("mnist")
    # The evaluation at step 0 and at the end is inside `train`; keep it off the clock by a cheap split.
    mnist.val.x, mnist.val.y = mnist.val.x[:10], mnist.val.y[:10]
    mnist.test.x, mnist.test.y = mnist.test.x[:10], mnist.test.y[:10]
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    sizes = [1, 8, 32]
    plain, eng = [], {n: [] for n in sizes}
    plain_loop(mnist, 30)
    for _ in range(repeats):
        plain.append(plain_loop(mnist))
        for n in sizes:
            eng[n].append(engine(mnist, n, STEPS if n < 32 else STEPS // 3))
    base = statistics.median(plain)
    out = [{"name": "engine_plain_loop_lenet", "value": base, "unit": "it/s", "threads": threads}]
    for n in sizes:
        v = statistics.median(eng[n])
        out.append({"name": f"engine_lenet_runs{n}", "value": v, "unit": "run-it/s", "baseline": base,
                    "ratio": v / base, "threads": threads})
    return out
