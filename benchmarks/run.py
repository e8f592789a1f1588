"""Run every ``benchmarks/bench_*.py`` (each has ``run() -> list[dict]``) and write results.json.

Records: ``name``, ``value``, ``unit`` and, where compared, ``baseline`` and ``ratio`` — always
against a baseline measured in the same process, because this machine's speed varies from run to run.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    only = argv[1:] or None
    records = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem
        if only and not any(o in name for o in only):
            continue
        print(f"== {name}", flush=True)
        start = time.time()
        module = importlib.import_module(f"benchmarks.{name}")
        got = module.run()
        if not got:  # e.g. a GPU benchmark on a machine without one: keep its earlier records
            continue
        for rec in got:
            rec.setdefault("benchmark", name)
            records.append(rec)
            ratio = f"  ratio {rec['ratio']:.2f}" if rec.get("ratio") is not None else ""
            print(f"  {rec['name']}: {rec['value']:.4g} {rec['unit']}{ratio}", flush=True)
        print(f"   ({time.time() - start:.0f} s)")
    out = HERE / "results.json"
    # Records of benchmarks not run now (not chosen, or no device for them here) are kept.
    old = json.loads(out.read_text()) if out.exists() else []
    keep = [r for r in old if r.get("benchmark") not in {r["benchmark"] for r in records}]
    machine = f"{platform.processor() or platform.machine()}, {platform.system()}, {os.cpu_count()} cores"
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    for r in records:
        r.setdefault("machine", machine)
        r.setdefault("date", date)
    out.write_text(json.dumps(keep + records, indent=1))
    print(f"wrote {len(records)} records to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
