"""Committed results of the long (full-profile) runs: compact summaries that the book and the CLI load.

The result cache (:mod:`lotterylib.cache`) holds everything a run needs to resume, weights included,
and lives outside the repository. What the book shows of a full-profile run is its experiment's
*summary* — curves, early-stop iterations, accuracies, mask statistics, never weights — stored as
``results/<experiment>/<profile>-seed<seed>-<hash>.json``, where ``<hash>`` is the config hash of
the settings that made it, next to those settings in full and the run's provenance (code commit,
device, date, wall time). Change a setting and the hash changes, so a stale result is never read.

``LOTTERYLIB_RESULTS`` overrides the folder (default: ``results/`` beside the ``lotterylib`` package).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .cache import config_drift, config_hash, to_jsonable

RESULTS_ENV = "LOTTERYLIB_RESULTS"
FORMAT = 1


class ResultsError(RuntimeError):
    """A committed result file that cannot be read or does not match its settings."""


class StaleResult(ResultsError):
    """A committed result whose stored settings differ from today's in a field the hash leaves out (a
    changed default): its numbers were made by other settings, so it awaits a new run."""


def root(path: str | os.PathLike | None = None) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get(RESULTS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1] / "results"


def path(experiment: str, profile: str, seed: int, settings: Any, folder: str | os.PathLike | None = None) -> Path:
    """Where the result of ``experiment`` at ``profile``/``seed`` made with ``settings`` lives."""
    return root(folder) / experiment / f"{profile}-seed{seed}-{config_hash(settings)}.json"


def save(experiment: str, profile: str, seed: int, settings: Any, summary: dict, provenance: dict,
         complete: bool, folder: str | os.PathLike | None = None) -> Path:
    """Write a result atomically; ``complete`` is False when a deadline stopped the run early."""
    target = path(experiment, profile, seed, settings, folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": FORMAT, "experiment": experiment, "profile": profile, "seed": seed,
              "config_hash": config_hash(settings), "settings": to_jsonable(settings), "complete": bool(complete),
              "provenance": provenance, "summary": summary}
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=None, separators=(",", ":"), allow_nan=True)
        f.write("\n")
    os.replace(tmp, target)
    return target


def load(experiment: str, profile: str, seed: int, settings: Any,
         folder: str | os.PathLike | None = None) -> dict | None:
    """The stored record (``summary``, ``complete``, ``provenance``, …) or None if there is none.

    Raises :class:`ResultsError` for a file that is not valid JSON or names other settings.
    """
    target = path(experiment, profile, seed, settings, folder)
    if not target.exists():
        return None
    try:
        record = json.loads(target.read_text())
    except (OSError, ValueError) as err:
        raise ResultsError(f"committed result {target} is unreadable ({err}); restore it from git or delete it "
                           f"and rerun: python -m lotterylib run --profile {profile} --seed {seed}") from err
    if not isinstance(record, dict) or record.get("config_hash") != config_hash(settings) or "summary" not in record:
        raise ResultsError(f"committed result {target} does not hold the summary of these settings; delete it and rerun")
    drift = config_drift(record.get("settings", {}), to_jsonable(settings))
    if drift:
        raise StaleResult(f"committed result {target} was made with other settings (a default changed: "
                          f"{'; '.join(drift)}); rerun it")
    return record


def further_along(stored: dict | None, summary: dict, complete: bool) -> bool:
    """Whether a ``stored`` record went further than a new run (``summary``, ``complete``) of the same
    settings: then the new one must not replace it (a short CPU session after a longer GPU run)."""
    if stored is None or complete:
        return False
    if stored.get("complete"):
        return True
    return stored["summary"].get("rounds_done", -1) > summary.get("rounds_done", -1)


def parts(used: dict[str, dict]) -> dict:
    """How the stored parts behind a result were made, from a cache's ledger (:attr:`ResultCache.used`).

    A full-profile run may be assembled from cache entries computed in several sessions, on other
    devices and at other commits; its own provenance then says only how the last piece ran.
    ``compute_seconds`` sums the parts' own wall times; ``untimed`` counts parts stored without one.
    """
    made = list(used.values())
    timed = [float(p["wall_seconds"]) for p in made if p.get("wall_seconds") is not None]
    dates = sorted(p["date"] for p in made if p.get("date"))
    return {"count": len(made), "compute_seconds": round(sum(timed), 1), "untimed": len(made) - len(timed),
            "dirty": sum(bool(p.get("dirty")) for p in made),
            "devices": sorted({p["device"] for p in made if p.get("device")}),
            "commits": sorted({p["commit"] for p in made if p.get("commit")}),
            "first_date": dates[0] if dates else None, "last_date": dates[-1] if dates else None}


def describe(provenance: dict) -> str:
    """One sentence on how a stored result was made, for the chapters.

    Records made before the ledger existed (no ``parts``) say where, when and how long the run took.
    """
    dirty = " (with uncommitted changes)" if provenance.get("dirty") else ""
    where = f"made on {provenance['device']} at commit {provenance['commit'][:8]}{dirty} on {provenance['date'][:10]}"
    p = provenance.get("parts")
    if not p:
        return f"{where} in {provenance['wall_seconds'] / 60:.1f} min"
    span = p["first_date"][:10] if p["first_date"][:10] == p["last_date"][:10] else \
        f"{p['first_date'][:10]} … {p['last_date'][:10]}"
    untimed = f", {p['untimed']} of them with no recorded time" if p["untimed"] else ""
    return (f"{where}; its {p['count']} stored parts took {p['compute_seconds'] / 60:.1f} min of compute"
            f"{untimed}, made {span} on {' + '.join(p['devices'])} at "
            f"{len(p['commits'])} commit{'s' if len(p['commits']) != 1 else ''}; "
            f"this last piece ran {provenance['wall_seconds'] / 60:.1f} min")
