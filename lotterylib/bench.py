"""The last `make bench` run: machine-dependent timings, read by the timing claims and the chapters.

Timings do not belong in a chapter's asserts or in CI: they depend on the machine and on how busy it
is. ``make bench`` measures them (every figure a ratio against a baseline timed in the same process)
and writes ``benchmarks/results.json``; the timing claims (kind ``timing``: XN-9, DC-4, DC-5) are
decided on those records, and the chapters show them with the machine and date that made them.
``$LOTTERYLIB_BENCH`` names another results file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

BENCH_ENV = "LOTTERYLIB_BENCH"


def path() -> Path:
    env = os.environ.get(BENCH_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1] / "benchmarks" / "results.json"


def records() -> list[dict]:
    """Every record of the last benchmark runs (empty when none was made)."""
    try:
        return json.loads(path().read_text())
    except (OSError, ValueError):
        return []


def record(name: str) -> dict | None:
    """The record called ``name``, or None."""
    return next((r for r in records() if r.get("name") == name), None)


def made(rec: dict) -> str:
    """Where and when a record was measured, for a sentence: ``make bench on x86_64, Linux, 2026-12-01``."""
    when = f", {rec['date'][:10]}" if rec.get("date") else ""
    return f"`make bench` on {rec.get('machine', 'an unnamed machine')}{when}"
