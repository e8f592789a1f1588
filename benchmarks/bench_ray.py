"""A sweep on Ray with one and two workers, against the same sweep run serially in this process.

The sweep: two independent LT chains (LeNet-300-100 / MNIST, 2 seeds each, 3 IMP rounds of 300
iterations, one thread per task), so two workers can run one chain each. Each executor starts from an
empty result cache. ``value`` = seconds of the two-worker sweep; ``baseline`` = the serial sweep's
seconds (``ratio`` = baseline / value; > 1 means Ray with two workers was faster); the one-worker
record shows Ray's own overhead (its start-up and cache round trips) against the serial run.

On this 2-core CPU, two workers can at best halve the serial time; on one GPU, stacking the runs into
one population beats any number of Ray tasks (README, "More than one GPU"). Without Ray installed
(the ``ray`` extra) the benchmark is skipped and earlier records are kept.
Run ``python benchmarks/bench_ray.py`` or ``make bench``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from lotterylib import plan
from lotterylib.lottery import LotteryConfig
from lotterylib.train import TrainConfig

ROUNDS = 3


def sweep() -> list[plan.Population]:
    chains = [LotteryConfig(train=TrainConfig(iterations=300, eval_every=100), seeds=seeds, rate_fc=0.5,
                            rate_output=0.25) for seeds in ((0, 1), (2, 3))]
    return plan.merge(*[plan.imp_rounds(c, ROUNDS) for c in chains])


def timed(executor: str, workers: int) -> float:
    with tempfile.TemporaryDirectory() as cache:
        where = plan.Where(cache_root=cache, data_root=os.environ.get("LOTTERYLIB_DATA"), device="cpu")
        start = time.perf_counter()
        if executor == "serial":
            plan.run_serial(sweep(), where)
        else:
            plan.run_ray(sweep(), where, num_cpus=workers)
        return time.perf_counter() - start


def run() -> list[dict]:
    try:
        plan.import_ray()
    except plan.RayMissing:
        return []
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per task, forwarded to the workers
    serial = timed("serial", 1)
    one, two = timed("ray", 1), timed("ray", 2)
    detail = {"sweep": f"2 independent LT chains × {ROUNDS} IMP rounds, 2 seeds, 300 iterations", "unit": "s"}
    return [{"name": "ray_sweep_2_workers", "value": two, "baseline": serial, "ratio": serial / two, **detail},
            {"name": "ray_sweep_1_worker", "value": one, "baseline": serial, "ratio": serial / one, **detail},
            {"name": "ray_sweep_2_vs_1_worker", "value": two, "baseline": one, "ratio": one / two, **detail}]


if __name__ == "__main__":
    for rec in run():
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rec.items()}))
