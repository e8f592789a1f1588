"""Command line.

* ``python -m lotterylib claims --profile quick|full [--seed N] [--only PREFIX] [--json PATH]``: check
  the claims. Quick experiments run (or load from the cache); full ones load the committed results
  in ``results/`` and report "awaiting a full run" where there is none.
* ``python -m lotterylib run --profile full --only PREFIX [--device cuda] [--deadline-minutes M]``: run
  the experiments of those claims (resuming from the cache), store their summaries with provenance in
  ``results/``, then check the claims.
* ``python -m lotterylib scoreboard --out PAGE.md``: the book's claims page.

Exit status: 0 when every decided claim holds, 1 when any does not, 2 (with a one-line message and no
traceback) for bad arguments and for missing or corrupt data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import claims
from .data import DataError
from .results import ResultsError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as argparse does, but without the usage block
        print(f"lotterylib: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _fail(message: str) -> int:
    print(f"lotterylib: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m lotterylib", description="Reproduce and check the papers' claims.")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("claims", help="run (or load from the cache) what each claim needs and check it")
    c.add_argument("--profile", required=True, help="quick (CPU, minutes) or full (the papers' settings)")
    c.add_argument("--seed", type=int, default=0, help="shifts the seeds of every run (default 0)")
    c.add_argument("--only", default=None, help="claim id prefix, e.g. LT or LT-3")
    c.add_argument("--json", default=None, help="write the records as a JSON list to this path")
    c.add_argument("--data-root", default=None, help="dataset folder (default: $LOTTERYLIB_DATA)")
    c.add_argument("--cache", default=None, help="result cache folder (default: $LOTTERYLIB_CACHE)")
    c.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    c.add_argument("--no-progress", action="store_true", help="hide progress bars")
    r = sub.add_parser("run", help="run the experiments of the chosen claims and store their results in results/")
    r.add_argument("--profile", default="full", help="full (default) or quick")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--only", default=None, help="claim id prefix, e.g. LT or DLT (default: every claim)")
    r.add_argument("--deadline-minutes", type=float, default=None,
                   help="stop before a round that would end later; rerun to resume from the cache")
    r.add_argument("--results", default=None, help="results folder (default: results/ or $LOTTERYLIB_RESULTS)")
    r.add_argument("--again", action="store_true", help="rerun experiments whose stored result is complete")
    r.add_argument("--data-root", default=None)
    r.add_argument("--cache", default=None)
    r.add_argument("--device", default="cpu")
    r.add_argument("--no-progress", action="store_true")
    b = sub.add_parser("scoreboard", help="write the book's claims page (runs or loads every claim; never fails on a claim)")
    b.add_argument("--profile", default="quick", help="quick or full")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", required=True, help="path of the MyST page to write")
    b.add_argument("--data-root", default=None)
    b.add_argument("--cache", default=None)
    b.add_argument("--device", default="cpu")
    b.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    if args.profile not in claims.PROFILES:
        return _fail(f"unknown profile {args.profile!r}; choose one of {', '.join(claims.PROFILES)}")
    if args.command == "scoreboard":
        return _scoreboard(args)
    if args.command == "run":
        return _run(args)
    try:
        claims.select(args.only)
    except KeyError as err:
        return _fail(str(err.args[0]))
    if args.json:
        out = Path(args.json)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "a"):
                pass
        except OSError as err:
            return _fail(f"cannot write --json {out}: {err.strerror or err}")
    from .cache import ResultCache
    from .train import configure_threads
    configure_threads()
    context = claims.Context(cache=ResultCache(args.cache) if args.cache else None, data_root=args.data_root,
                             device=args.device, progress=not args.no_progress, compute=False)
    try:
        records = claims.run(args.only, args.profile, args.seed, context)
    except (DataError, ResultsError) as err:
        return _fail(str(err))
    return _report(records, args)


def _report(records: list[dict], args) -> int:
    print(claims.table(records))
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(records, indent=1))
    decided = [r for r in records if r["holds"] is not None]
    held = sum(r["holds"] for r in decided)
    print(f"\n{held} of {len(decided)} decided claims hold ({len(records) - len(decided)} not decidable "
          f"in the {args.profile} profile)")
    return 0 if held == len(decided) else 1


def _run(args) -> int:
    import time

    from . import results
    from .cache import ResultCache
    from .provenance import provenance
    from .train import configure_threads
    configure_threads()
    try:
        chosen = claims.select(args.only)
    except KeyError as err:
        return _fail(str(err.args[0]))
    deadline = time.time() + 60 * args.deadline_minutes if args.deadline_minutes else None
    cache = ResultCache(args.cache)  # one cache, so that its ledger says which stored parts each result used
    context = claims.Context(cache=cache, data_root=args.data_root, device=args.device, progress=not args.no_progress,
                             deadline=deadline, results=args.results)
    for name in dict.fromkeys(c.experiment for c in chosen):
        start = time.time()
        cache.used.clear()
        settings = claims.settings_of(name, args.profile, args.seed)
        try:
            stored = results.load(name, args.profile, args.seed, settings, args.results)
        except ResultsError:
            stored = None  # unreadable: replaced below
        if stored is not None and stored.get("complete") and not args.again:
            print(f"{name}: stored result is complete ({results.path(name, args.profile, args.seed, settings, args.results)}"
                  f"); skipped, --again reruns it")
            continue
        try:
            summary = claims.EXPERIMENTS[name](args.profile, args.seed, context)
        except DataError as err:
            return _fail(str(err))
        complete = bool(summary.get("complete", True))
        if results.further_along(stored, summary, complete):
            print(f"{name}: stopped at the deadline after {summary.get('rounds_done')} rounds; kept the stored result, "
                  f"which went further ({results.path(name, args.profile, args.seed, settings, args.results)})")
            continue
        made = {**provenance(args.device, time.time() - start), "parts": results.parts(cache.used)}
        where = results.save(name, args.profile, args.seed, settings, summary, made, complete, args.results)
        print(f"{name}: {'complete' if complete else 'stopped at the deadline'} in {time.time() - start:.0f} s → {where}")
    context.compute = False
    return _report(claims.run(args.only, args.profile, args.seed, context), args)


def _scoreboard(args) -> int:
    from .cache import ResultCache
    from .train import configure_threads
    configure_threads()
    context = claims.Context(cache=ResultCache(args.cache) if args.cache else None, data_root=args.data_root,
                             device=args.device, progress=not args.no_progress)
    try:
        records = claims.run(None, args.profile, args.seed, context)
        context.compute = False  # full-profile columns come from committed results only
        full = claims.run(None, "full", args.seed, context) if args.profile != "full" else None
    except (DataError, ResultsError) as err:
        return _fail(str(err))
    try:
        Path(args.out).write_text(claims.scoreboard(records, full))
    except OSError as err:
        return _fail(f"cannot write {args.out}: {err.strerror or err}")
    print(f"wrote {args.out}: {sum(r['holds'] is True for r in records)} of "
          f"{sum(r['holds'] is not None for r in records)} decided claims hold")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
