"""XNOR + popcount matrix product on bit-packed ±1 operands vs float32 ``torch.matmul``, same process.

Shapes (M, K)·(K, N) = 1024×4096·4096×1024 (the issue's goal: ≥ 20×) and a smaller one. Each
configuration is measured ``ROUNDS`` times with :func:`lotterylib.bitpack.benchmark` (torch and the
kernel timed in alternation over windows of equal length, median of 5 per-round ratios); the record
is the median of the ``ROUNDS`` results, because this CPU is shared with other workers. Threads:
torch and numba get the same count: 1, and also ``$BENCH_THREADS`` when that is larger. ``baseline`` = torch fp32 ms, ``value`` = kernel ms,
``ratio`` = speed-up; ``torch_gflops`` shows how busy the machine was.

Run: ``python benchmarks/bench_xnor.py`` (prints the records) or through the book's benchmark runner.
"""

from __future__ import annotations

import json
import os

from lotterylib import bitpack

ROUNDS = 3
SHAPES = ((1024, 4096, 1024), (256, 1024, 256))
SWEEP_MN, SWEEP_KS = 512, (64, 128, 256, 512, 1024, 2048, 4096)


def _median_round(m: int, k: int, n: int, threads: int, naive: bool = False) -> dict:
    rounds = [bitpack.benchmark(m, k, n, threads=threads, repeats=5, seed=r, naive=naive) for r in range(ROUNDS)]
    rounds.sort(key=lambda r: r["ratio"])
    mid = rounds[len(rounds) // 2]
    mid["ratios"] = [r["ratio"] for r in rounds]
    mid["exact"] = all(r["exact"] for r in rounds)
    return mid


def run() -> list[dict]:
    records = []
    for m, k, n in SHAPES:
        for threads in sorted({1, max(1, int(os.environ.get("BENCH_THREADS", "1")))}):
            r = _median_round(m, k, n, threads, naive=(m, k, n) == SHAPES[0])
            tag = f"xnor_matmul_{m}x{k}x{n}_t{threads}"
            records.append({"name": tag, "value": r["t_xnor"] * 1e3, "unit": "ms",
                            "baseline": r["t_torch"] * 1e3, "ratio": r["ratio"],
                            "ratios": r["ratios"], "exact": r["exact"], "torch_gflops": r["torch_gflops"],
                            "formula": r["formula"], "details": r})
            records.append({"name": f"{tag}_with_packing", "value": (r["t_xnor"] + r["t_pack_a"]) * 1e3,
                            "unit": "ms", "baseline": r["t_torch"] * 1e3, "ratio": r["ratio_with_packing"]})
            if "t_naive" in r:
                records.append({"name": f"{tag}_naive", "value": r["t_naive"] * 1e3, "unit": "ms",
                                "baseline": r["t_torch"] * 1e3, "ratio": r["ratio_naive"]})
    # The speed-up against the dot length K (chapter 05's figure): 512×K·K×512, 1 thread.
    sweep = [bitpack.benchmark(SWEEP_MN, k, SWEEP_MN, threads=1, repeats=3, seed=0) for k in SWEEP_KS]
    records.append({"name": f"xnor_sweep_{SWEEP_MN}xKx{SWEEP_MN}_t1", "value": sweep[-1]["t_xnor"] * 1e3, "unit": "ms",
                    "baseline": sweep[-1]["t_torch"] * 1e3, "ratio": sweep[-1]["ratio"], "sweep": sweep})
    return records


if __name__ == "__main__":
    for rec in run():
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rec.items()}))
    print(f"median of {ROUNDS} rounds per record; ratio = t_torch / t_xnor")
