"""Provenance of results: which code made them, on which device, when, and in how much wall time.

Every result the cache stores (:meth:`lotterylib.cache.ResultCache.put`) carries the record
:func:`provenance` returns; :func:`lotterylib.results.describe` turns such records into the
sentence the chapters print.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import subprocess
from pathlib import Path

import torch


PACKAGE = Path(__file__).resolve().parent


def source_digest() -> str:
    """12 hex digits of SHA-256 over the library's own source files (``lotterylib/**/*.py``).

    Two trees with the same digest run the same library code; the book stamps its result cache with
    it (``$LOTTERYLIB_CACHE_SALT``), so results of older code are never reused after a change.
    """
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        h.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def git_dirty() -> bool | None:
    """Whether the repository this package lies in has uncommitted changes to tracked files (None:
    unknown, e.g. a copy without ``.git``; ``$LOTTERYLIB_DIRTY`` = 0/1 tells it for such a copy)."""
    env = os.environ.get("LOTTERYLIB_DIRTY")
    if env in ("0", "1"):
        return env == "1"
    try:
        res = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                             text=True, timeout=10, cwd=PACKAGE.parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(res.stdout.strip()) if res.returncode == 0 else None


def git_commit() -> str:
    """The commit (``git rev-parse HEAD``) of the repository this package lies in, or ``"unknown"``."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=__file__.rsplit("/", 2)[0]).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(device, seconds: float) -> dict:
    """Where and when a result was made: code commit (and whether the tree had uncommitted changes,
    ``dirty``, and the digest of the library's source), device, date, wall time.

    ``$LOTTERYLIB_COMMIT`` names the commit of a copy of the tree that has no ``.git`` (e.g. the
    copy sent to a lent GPU machine).
    """
    commit = os.environ.get("LOTTERYLIB_COMMIT") or git_commit()
    dev = str(device)
    if dev.startswith("cuda") and torch.cuda.is_available():
        dev = torch.cuda.get_device_name(torch.device(dev))
    else:
        dev = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {"commit": commit, "dirty": git_dirty(), "source": source_digest(), "device": dev,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(seconds, 2), "torch": torch.__version__}
