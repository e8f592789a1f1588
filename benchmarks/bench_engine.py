"""Training engine vs a plain PyTorch loop, LeNet-300-100 / MNIST, Adam, batch 60, data on the device.

Reports steps/s and run-iterations/s of N masked LeNets stacked into one model (N = 1, 8, 32, 128),
each as a ratio against the plain loop measured in the same process (median of interleaved repeats,
so both share the machine's noise). On a CUDA device the engine is timed twice: eager steps, and
each step replayed as one captured CUDA graph (the engine's default there); the graph at N = 128 is
also timed with TF32 matmuls. On this CPU only the eager engine exists.
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

SIZES = (1, 8, 32, 128)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(mnist, device: torch.device, steps: int) -> float:
    """Steps/s of the loop a reader would write: nn.Sequential, random batches sliced from the tensors."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1.2e-3)
    x, y = mnist.train.x, mnist.train.y
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        i = torch.randint(0, len(y), (60,), device=device)
        loss = F.cross_entropy(net(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    _sync(device)
    return steps / (time.perf_counter() - start)


def engine(mnist, runs: int, steps: int, device: torch.device, graph: bool) -> float:
    """Steps/s of the engine with ``runs`` masked LeNets stacked (evaluation only at both ends, on a tiny split)."""
    model = models.build("lenet_300_100", list(range(runs)))
    masks.attach_masks(model, masks.ones(model))
    _sync(device)
    start = time.perf_counter()
    train(model, mnist, TrainConfig(iterations=steps, eval_every=10**9), list(range(runs)), progress=False,
          device=device, graph=graph)
    _sync(device)
    return steps / (time.perf_counter() - start)


def measure(device: torch.device, repeats: int, plain_steps: int, steps: dict[str, dict[int, int]],
            tf32_graph_runs: int | None = None) -> list[dict]:
    mnist = data.load("mnist", device=device)
    mnist.val.x, mnist.val.y = mnist.val.x[:10], mnist.val.y[:10]
    mnist.test.x, mnist.test.y = mnist.test.x[:10], mnist.test.y[:10]
    plain_loop(mnist, device, 30)
    plain = []
    got: dict[tuple[str, int], list[float]] = {(mode, n): [] for mode, per in steps.items() for n in per}
    for _ in range(repeats):
        plain.append(plain_loop(mnist, device, plain_steps))
        for mode, per in steps.items():
            for n, k in per.items():
                got[mode, n].append(engine(mnist, n, k, device, mode == "graph"))
    base = statistics.median(plain)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    out = [{"name": f"plain_loop_lenet[{device.type}]", "value": base, "unit": "it/s", "device": where}]
    for (mode, n), values in got.items():
        v = statistics.median(values)
        out.append({"name": f"engine_{mode}_lenet_runs{n}[{device.type}]", "value": v * n, "unit": "run-it/s",
                    "steps_per_s": v, "baseline": base, "ratio": v * n / base, "device": where})
    if tf32_graph_runs and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            k = steps["graph"][tf32_graph_runs]
            v = statistics.median(engine(mnist, tf32_graph_runs, k, device, True) for _ in range(repeats))
        finally:
            torch.backends.cuda.matmul.allow_tf32 = False
        out.append({"name": f"engine_graph_tf32_lenet_runs{tf32_graph_runs}[cuda]", "value": v * tf32_graph_runs,
                    "unit": "run-it/s", "steps_per_s": v, "baseline": base, "ratio": v * tf32_graph_runs / base,
                    "device": where})
    return out


def run() -> list[dict]:
    # One thread by default: on a small shared machine two threads can collapse under load.
    threads = configure_threads(int(os.environ.get("BENCH_THREADS", "1")))
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    records = measure(torch.device("cpu"), repeats, 1000, {"eager": {1: 1000, 8: 300, 32: 300, 128: 100}})
    for r in records:
        r["threads"] = threads
    return records
