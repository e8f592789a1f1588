"""Provenance of results: which code made them, on which device, when, and in how much wall time.

Every result the cache stores (:meth:`lotterylib.cache.ResultCache.put`) carries the record
:func:`provenance` returns; :func:`lotterylib.results.describe` turns such records into the
sentence the chapters print.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess

import torch


def git_commit() -> str:
    """The commit (``git rev-parse HEAD``) of the repository this package lies in, or ``"unknown"``."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=__file__.rsplit("/", 2)[0]).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(device, seconds: float) -> dict:
    """Where and when a result was made: code commit, device, date, wall time.

    ``$LOTTERYLIB_COMMIT`` names the commit of a copy of the tree that has no ``.git`` (e.g. the
    copy sent to a lent GPU machine).
    """
    commit = os.environ.get("LOTTERYLIB_COMMIT") or git_commit()
    dev = str(device)
    if dev.startswith("cuda") and torch.cuda.is_available():
        dev = torch.cuda.get_device_name(torch.device(dev))
    else:
        dev = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {"commit": commit, "device": dev, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(seconds, 2), "torch": torch.__version__}
