"""Significance helpers the claims' checks share: standard errors over seeds and gaps in percentage points.

A check compares per-seed accuracies (fractions in [0, 1]) of two methods: :func:`gap_and_se` gives
the difference of their seed means and its pooled standard error, :func:`fmt_pp` writes a difference
as signed percentage points.
"""

from __future__ import annotations

import numpy as np


def seed_se(x: list[float]) -> float:
    """Standard error of the seed mean (NaN with fewer than two seeds)."""
    x_ = np.asarray(x, float)
    return float(x_.std(ddof=1) / np.sqrt(len(x_))) if len(x_) > 1 else float("nan")


def gap_and_se(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean difference a − b and its pooled standard error (seed means); the error is 0 when either
    side has fewer than two seeds."""
    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    se = float(np.hypot(seed_se(a_), seed_se(b_))) if min(len(a_), len(b_)) > 1 else 0.0
    return float(a_.mean() - b_.mean()), se


def fmt_pp(x: float) -> str:
    """A difference of fractions as signed percentage points, e.g. 0.0123 → ``+1.23 pp``."""
    return f"{100 * x:+.2f} pp"
