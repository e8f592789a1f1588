"""Command line.

* ``python -m lotterylib claims --profile quick|full [--seed N] [--only PREFIX] [--json PATH]``: check
  the claims. Quick experiments run (or load from the cache); full ones load the committed results
  in ``results/`` and report "awaiting a full run" where there is none.
* ``python -m lotterylib run --profile full --only PREFIX [--device cuda] [--deadline-minutes M]``: run
  the experiments of those claims (resuming from the cache), store their summaries with provenance in
  ``results/``, then check the claims.
  ``--executor ray [--address ADDR]`` runs each population (an IMP round, a learned supermask, ...) as
  one Ray task; the driver assembles and stores the results (see :mod:`lotterylib.plan`).
* ``python -m lotterylib scoreboard --out PAGE.md``: the book's claims page.

Exit status: 0 when every decided claim holds, 1 when any does not, 2 (with a one-line message that says
what to do, and no traceback) for bad input: an unknown profile, claim or device, a device this machine
lacks, missing or corrupt data or stored results, an unwritable output, cache or results folder. These
are all checked before any work starts, and a refused command leaves the result cache as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from . import claims, data, results
from .cache import CACHE_ENV, default_cache_root
from .data import DataError
from .results import ResultsError


class InputError(Exception):
    """An argument or input that stops a command before it starts work. The message says what to do."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as argparse does, but without the usage block
        print(f"lotterylib: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _fail(message: str) -> int:
    print(f"lotterylib: error: {message}", file=sys.stderr)
    return 2


def seed_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value {text!r}: give a whole number, e.g. --seed 1") from None


def positive_minutes(text: str) -> float:
    try:
        minutes = float(text)
    except ValueError:
        minutes = float("nan")
    if not minutes > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a positive number of minutes: give e.g. --deadline-minutes 90, or leave the "
            f"option out to run without a deadline")
    return minutes


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="python -m lotterylib", description="Reproduce and check the papers' claims.")
    sub = top.add_subparsers(dest="command", required=True)
    c = sub.add_parser("claims", help="run (or load from the cache) what each claim needs and check it")
    c.add_argument("--profile", required=True, help="quick (CPU, minutes) or full (the papers' settings)")
    c.add_argument("--seed", type=seed_number, default=0, help="shifts the seeds of every run (default 0)")
    c.add_argument("--only", default=None, help="claim id prefix, e.g. LT or LT-3")
    c.add_argument("--json", default=None, help="write the records as a JSON list to this path")
    c.add_argument("--results", default=None, help="results folder (default: results/ or $LOTTERYLIB_RESULTS)")
    c.add_argument("--data-root", default=None, help="dataset folder (default: $LOTTERYLIB_DATA)")
    c.add_argument("--cache", default=None, help="result cache folder (default: $LOTTERYLIB_CACHE)")
    c.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    c.add_argument("--no-progress", action="store_true", help="hide progress bars")
    r = sub.add_parser("run", help="run the experiments of the chosen claims and store their results in results/")
    r.add_argument("--profile", default="full", help="full (default) or quick")
    r.add_argument("--seed", type=seed_number, default=0)
    r.add_argument("--only", default=None, help="claim id prefix, e.g. LT or DLT (default: every claim)")
    r.add_argument("--deadline-minutes", type=positive_minutes, default=None,
                   help="stop before a round that would end later; rerun to resume from the cache")
    r.add_argument("--results", default=None, help="results folder (default: results/ or $LOTTERYLIB_RESULTS)")
    r.add_argument("--again", action="store_true", help="rerun experiments whose stored result is complete")
    r.add_argument("--data-root", default=None)
    r.add_argument("--cache", default=None)
    r.add_argument("--device", default="cpu")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--executor", default="serial", choices=("serial", "ray"),
                   help="serial (default: this process) or ray (each population one Ray task; needs the ray extra)")
    r.add_argument("--address", default=None,
                   help="with --executor ray: the Ray cluster to join, e.g. auto or ray://HEAD:10001 "
                        "(default: a local Ray on this machine's cores)")
    b = sub.add_parser("scoreboard", help="write the book's claims page (runs or loads every claim; never fails on a claim)")
    b.add_argument("--profile", default="quick", help="quick or full")
    b.add_argument("--seed", type=seed_number, default=0)
    b.add_argument("--out", required=True, help="path of the MyST page to write")
    b.add_argument("--results", default=None, help="results folder (default: results/ or $LOTTERYLIB_RESULTS)")
    b.add_argument("--data-root", default=None)
    b.add_argument("--cache", default=None)
    b.add_argument("--device", default="cpu")
    b.add_argument("--no-progress", action="store_true")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = {"claims": _claims, "run": _run, "scoreboard": _scoreboard}[args.command]
    try:
        # Every check that can refuse the command runs before it starts work (training, writing the
        # cache), so that a mistake costs seconds, not the minutes of a run that then fails.
        if args.profile not in claims.PROFILES:
            raise InputError(f"unknown profile {args.profile!r}; choose one of {', '.join(claims.PROFILES)}")
        chosen = selected_claims(getattr(args, "only", None))
        check_executor(args)
        # On a Ray cluster the workers, not this driver, need the device.
        if getattr(args, "address", None) is None:
            check_device(args.device)
        return command(args, chosen)
    except InputError as err:
        return _fail(str(err))


# --- checks made before any work ---------------------------------------------------------------

def selected_claims(prefix: str | None) -> list[claims.Claim]:
    try:
        return claims.select(prefix)
    except KeyError as err:
        raise InputError(f"{err.args[0]}; pass one of them to --only, or leave --only out for every claim") from None
    except claims.ClaimsImportError as err:
        raise InputError(str(err)) from None


def check_device(name: str) -> None:
    """Refuse a device this machine does not have, with the option to use instead."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(f"unknown device {name!r}; use --device cpu, or cuda, cuda:N or mps on a machine "
                         f"that has one") from None
    if device.type == "cpu" and not device.index:
        return
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("CUDA was requested but this machine has none; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InputError(f"--device {name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}; "
                             f"use one of them or --device cpu")
        return
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError("MPS (an Apple GPU) was requested but this machine has none; use --device cpu")
        return
    raise InputError(f"device {name!r} is not supported; use --device cpu, or cuda, cuda:N or mps on a machine "
                     f"that has one")


def check_executor(args) -> None:
    """``--executor ray`` needs Ray installed; ``--address`` needs ``--executor ray``."""
    executor = getattr(args, "executor", "serial")
    if getattr(args, "address", None) is not None and executor != "ray":
        raise InputError("--address names a Ray cluster: add --executor ray, or leave --address out")
    if executor == "ray":
        from .plan import RayMissing, import_ray
        try:
            import_ray()
        except RayMissing as err:
            raise InputError(str(err)) from None


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def can_create_files_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder``. Asks ``os.access`` and then really writes (and
    removes) a probe file: root passes ``os.access`` on any folder, and a read-only mount or an
    immutable folder only shows on a write."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        handle, probe = tempfile.mkstemp(prefix=".lotterylib-probe-", dir=folder)
    except OSError:
        return False
    os.close(handle)
    os.unlink(probe)
    return True


def check_folder(path: Path, what: str, fix: str, writable: bool) -> None:
    """Refuse a folder that is a file, that cannot be created, or (``writable``) that cannot be written.
    ``what`` names it in the message ("the result cache /x"), ``fix`` says how to give another one."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise InputError(f"{what} is a file, not a folder; {fix}, or move the file away")
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise InputError(f"{what} cannot be created because {existing} is a file; {fix}")
    if writable and not can_create_files_in(existing):
        itself = existing == Path(os.path.abspath(path))
        state = "is read-only" if itself else f"cannot be created in the read-only {existing}"
        raise InputError(f"{what} {state}; make it writable (chmod u+w) or {fix}")


def check_output_file(path: Path, option: str) -> None:
    """Refuse an output file that cannot be written, without creating it (nor its folders)."""
    if os.path.isdir(path):
        raise InputError(f"cannot write {option} {path}: it is a folder; give a file path")
    if os.path.lexists(path):
        try:
            with open(path, "a"):  # appends nothing: the file stays as it is
                pass
        except OSError as err:
            raise InputError(f"cannot write {option} {path} ({err.strerror or err}); give a path in a writable "
                             f"folder") from None
        return
    existing = _nearest_existing(path.parent)
    if not existing.is_dir() or not can_create_files_in(existing):
        raise InputError(f"cannot write {option} {path}: {existing} is not a writable folder; give a path in a "
                         f"writable folder")


def check_cache(path: str | None, writable: bool) -> None:
    if path is not None:
        root, fix = Path(path), "pass --cache a folder (it is created when missing)"
    elif os.environ.get(CACHE_ENV):
        root, fix = default_cache_root(), f"set {CACHE_ENV} to a folder (it is created when missing) or pass --cache"
    else:
        root, fix = default_cache_root(), f"pass --cache a folder or set {CACHE_ENV} to one"
    check_folder(root, f"the result cache {root}", fix, writable)


def check_data(data_root: str | None) -> None:
    """Verify the checksums of the data every experiment that trains needs: MNIST (CIFAR-10 is optional:
    the experiments that use it fall back or say so)."""
    try:
        data.verify("mnist", data_root)
    except DataError as err:
        raise InputError(str(err)) from None


def stored_results(experiments: list[str], profile: str, seed: int, folder: str | None) -> dict[str, dict | None]:
    """The stored result of each experiment (None where there is none, or where it was made with other
    settings: it awaits a new run); an unreadable one is refused."""
    out = {}
    for name in experiments:
        try:
            out[name] = results.load(name, profile, seed, claims.settings_of(name, profile, seed), folder)
        except results.StaleResult:
            out[name] = None
        except ResultsError as err:
            raise InputError(str(err)) from None
    return out


def experiments_of(chosen: list[claims.Claim], profile: str) -> list[str]:
    """The experiments that checking ``chosen`` in ``profile`` needs (none for undecidable claims)."""
    return list(dict.fromkeys(c.experiment for c in chosen if profile in c.decidable))


# --- commands ----------------------------------------------------------------------------------

def _claims(args, chosen: list[claims.Claim]) -> int:
    if args.json:
        check_output_file(Path(args.json), "--json")
    needed = experiments_of(chosen, args.profile)
    # Full-profile claims are read from the stored results only; quick ones are computed.
    computes = args.profile != "full" and bool(needed)
    if args.profile == "full":
        stored_results(needed, args.profile, args.seed, args.results)
    check_cache(args.cache, writable=computes)
    if computes:
        check_data(args.data_root)
    from .cache import ResultCache
    from .train import configure_threads
    configure_threads()
    context = claims.Context(cache=ResultCache(args.cache) if args.cache else None, data_root=args.data_root,
                             device=args.device, progress=not args.no_progress, compute=False, results=args.results)
    try:
        records = claims.run(args.only, args.profile, args.seed, context)
    except (DataError, ResultsError) as err:
        return _fail(str(err))
    return _report(records, args)


def _report(records: list[dict], args) -> int:
    print(claims.table(records))
    if getattr(args, "json", None):
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(records, indent=1))
    print(f"\n{args.profile} profile: {claims.tally(records)}")
    return 1 if claims.failing(records) else 0


def _run(args, chosen: list[claims.Claim]) -> int:
    import time

    from .cache import ResultCache
    from .provenance import provenance
    from .train import configure_threads
    experiments = list(dict.fromkeys(c.experiment for c in chosen))
    stored = stored_results(experiments, args.profile, args.seed, args.results)
    to_run = [name for name in experiments if args.again or not (stored[name] or {}).get("complete")]
    check_cache(args.cache, writable=bool(to_run))
    if to_run:
        check_data(args.data_root)
        folder = results.root(args.results)
        check_folder(folder, f"the results folder {folder}", "pass --results a writable folder", writable=True)
    configure_threads()
    deadline = time.time() + 60 * args.deadline_minutes if args.deadline_minutes else None
    cache = ResultCache(args.cache)  # one cache, so that its ledger says which stored parts each result used
    context = claims.Context(cache=cache, data_root=args.data_root, device=args.device, progress=not args.no_progress,
                             deadline=deadline, results=args.results)
    computed, tasks = distributed(args, to_run, cache, deadline) if args.executor == "ray" and to_run else ({}, {})
    for name in experiments:
        settings = claims.settings_of(name, args.profile, args.seed)
        if name not in to_run:
            print(f"{name}: stored result is complete ({results.path(name, args.profile, args.seed, settings, args.results)}"
                  f"); skipped, --again reruns it")
            continue
        start = time.time()
        cache.used.clear()
        try:
            # After a distributed run every population is in the cache: this assembles the summary.
            summary = computed.get(name) or claims.EXPERIMENTS[name](args.profile, args.seed, context)
        except DataError as err:
            return _fail(str(err))
        complete = bool(summary.get("complete", True))
        if results.further_along(stored[name], summary, complete):
            print(f"{name}: stopped at the deadline after {summary.get('rounds_done')} rounds; kept the stored result, "
                  f"which went further ({results.path(name, args.profile, args.seed, settings, args.results)})")
            continue
        made = {**provenance(args.device, time.time() - start), "parts": results.parts(cache.used)}
        if name in tasks:
            made["executor"] = "ray"
            made["tasks"] = tasks[name]
        where = results.save(name, args.profile, args.seed, settings, summary, made, complete, args.results)
        print(f"{name}: {'complete' if complete else 'stopped at the deadline'} in {time.time() - start:.0f} s → {where}")
    context.compute = False
    return _report(claims.run(args.only, args.profile, args.seed, context), args)


def distributed(args, experiments: list[str], cache, deadline: float | None) -> tuple[dict, dict]:
    """Run ``experiments``' populations as Ray tasks: (summaries of the experiments that are one task,
    {experiment: the provenance of each of its tasks}). The driver then assembles and stores results."""
    from . import plan
    where = plan.Where(str(cache.root), args.data_root, args.device, deadline)
    plans = {(name, args.profile, args.seed): plan.plan_experiment(name, args.profile, args.seed) for name in experiments}
    total = len(plan.merge(*plans.values()))
    print(f"ray: {total} populations of {len(experiments)} experiment(s) on "
          f"{args.address or 'a local Ray'}; cache {cache.root}")
    done = []

    def report(record: dict) -> None:
        done.append(record)
        where_ = f"{record.get('node', '?')} pid {record.get('pid', '?')}"
        print(f"  [{len(done)}/{total}] {record['population']} on {where_}"
              f" ({record.get('skipped') or str(record.get('wall_seconds', '?')) + ' s'})", flush=True)

    summaries, records = plan.execute(plans, where, "ray", address=args.address, on_done=report)
    return summaries, {name: plan.tasks_of(pops, records) for (name, _, _), pops in plans.items()}


def _scoreboard(args, chosen: list[claims.Claim]) -> int:
    from .cache import ResultCache
    from .train import configure_threads
    check_output_file(Path(args.out), "--out")
    # The full-profile column is read from the stored results; with --profile full, the experiments
    # that have none are computed.
    full = stored_results(experiments_of(chosen, "full"), "full", args.seed, args.results)
    if args.profile == "full":
        computes = any(summary is None for summary in full.values())
    else:
        computes = bool(experiments_of(chosen, args.profile))
    check_cache(args.cache, writable=computes)
    if computes:
        check_data(args.data_root)
    configure_threads()
    context = claims.Context(cache=ResultCache(args.cache) if args.cache else None, data_root=args.data_root,
                             device=args.device, progress=not args.no_progress, results=args.results)
    try:
        records = claims.run(None, args.profile, args.seed, context)
        context.compute = False  # full-profile columns come from committed results only
        full_records = claims.run(None, "full", args.seed, context) if args.profile != "full" else None
    except (DataError, ResultsError) as err:
        return _fail(str(err))
    try:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(claims.scoreboard(records, full_records))
    except OSError as err:
        return _fail(f"cannot write {args.out}: {err.strerror or err}")
    print(f"wrote {args.out}: {claims.tally(records)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
