"""A sweep as a graph of populations, and the executors that run it (serially, or as Ray tasks).

A *population* is the unit the engine trains at once: every seed of one IMP round, stacked; every
criterion and branch of one round of the deconstruction experiment; one learned supermask's runs.
Each is computed by a *step* that reads what it needs from the result cache and writes its own entry
there, so the graph's edges are cache dependencies: IMP round k+1 needs round k; one-shot pruning and
the untrained-accuracy sweep need the dense net (round 0); the deconstruction branches live inside
the rounds they branch at; seeds and experiments are independent of each other.

An experiment that registers a planner (``claims.experiment(..., plan=...)``) is split into its
populations; after they ran, the driver calls the experiment itself, which now finds every
population in the cache and assembles the summary exactly as a one-machine run would. An experiment
without a planner is one task that returns its summary.

:func:`run_ray` submits each population as one Ray task (``num_gpus=1`` on CUDA, one CPU otherwise)
with its dependencies passed as object references, so Ray, not this module, decides when and where
each task runs. A task that dies (a killed worker, a lost node) is retried by Ray; the retry resumes
from the population's mid-round checkpoint and the cache's first-writer-wins ``put`` makes a
duplicated task harmless. On one GPU, stacking more runs into one population is faster than Ray
tasks; Ray pays off with several GPUs or machines sharing one cache folder.
"""

from __future__ import annotations

import functools
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from .cache import ResultCache, config_hash

#: Environment variables the workers inherit from the driver (the cache salt, data root, checkpoint
#: interval, ...): a task must see the same settings as the process that planned it.
FORWARDED_ENV_PREFIX = "LOTTERYLIB_"


@dataclass(frozen=True)
class Population:
    """One node of a sweep: ``step`` (a name in :data:`STEPS`) run on ``config`` with ``arg``.

    ``name`` identifies the population across experiments (two experiments that need the same IMP
    round plan it under one name, and it runs once); ``needs``: names of populations that must have
    finished first.
    """

    name: str
    step: str
    config: Any
    arg: Any = None
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Where:
    """Where a step runs: the cache folder (resolved, salt included), data root, device, deadline."""

    cache_root: str
    data_root: str | None = None
    device: str = "cpu"
    deadline: float | None = None

    def cache(self) -> ResultCache:
        return ResultCache(self.cache_root, salt="")  # the driver resolved the salt into cache_root


# --- planners: the populations of the library's long computations -----------------------------------

def _short(config: Any) -> str:
    return config_hash(config)[:10]


def imp_rounds(config, rounds: int) -> list[Population]:
    """IMP rounds 0..``rounds`` of a :class:`~lotterylib.lottery.LotteryConfig`, each needing the one before."""
    out = []
    for r in range(rounds + 1):
        needs = (out[-1].name,) if out else ()
        out.append(Population(f"imp/{_short(config)}/{r}", "imp_round", config, r, needs))
    return out


def oneshot(config, rounds: Sequence[int]) -> Population:
    """One-shot pruning to the Pm of each of ``rounds`` (one population), after the dense net."""
    rounds = tuple(int(r) for r in rounds)
    return Population(f"oneshot/{_short(config)}/{'-'.join(map(str, rounds))}", "oneshot", config, rounds,
                      (imp_rounds(config, 0)[0].name,))


def criteria_rounds(config, rounds: int) -> list[Population]:
    """Rounds 1..``rounds`` of a :class:`~lotterylib.deconstruct.DeconstructConfig` (every criterion,
    chain and branch of a round is one population), after its dense net."""
    dense = imp_rounds(config.lottery, 0)[0]
    out = [dense]
    for r in range(1, rounds + 1):
        out.append(Population(f"dlt/{_short(config)}/{r}", "criteria_round", config, r, (out[-1].name,)))
    return out


def init_accuracy(config) -> list[Population]:
    """The untrained-accuracy sweep of an :class:`~lotterylib.deconstruct.InitAccuracyConfig`, after its dense net."""
    dense = imp_rounds(config.lottery, 0)[0]
    return [dense, Population(f"dlt-init/{_short(config)}", "init_accuracy", config, None, (dense.name,))]


def supermask(config) -> Population:
    """A learned supermask (:class:`~lotterylib.deconstruct.SupermaskConfig`): needs nothing."""
    return Population(f"supermask/{_short(config)}", "supermask", config)


def whole_experiment(name: str, profile: str, seed: int) -> Population:
    """An experiment without a planner: one task that computes and returns its summary."""
    return Population(f"experiment/{name}/{profile}/{seed}", "experiment", name, (profile, seed))


def merge(*groups: Iterable[Population]) -> list[Population]:
    """Populations of several planners as one graph: one node per name, in first-seen order."""
    out: dict[str, Population] = {}
    for group in groups:
        for p in group:
            if p.name in out and out[p.name] != p:
                raise ValueError(f"two different populations are both named {p.name}")
            out.setdefault(p.name, p)
    return list(out.values())


def ordered(populations: Sequence[Population]) -> list[Population]:
    """The populations in an order where each comes after what it needs; refuses a cycle or an unknown need."""
    by_name = {p.name: p for p in populations}
    done: dict[str, None] = {}
    visiting: set[str] = set()

    def visit(p: Population):
        if p.name in done:
            return
        if p.name in visiting:
            raise ValueError(f"the plan has a cycle through {p.name}")
        visiting.add(p.name)
        for n in p.needs:
            if n not in by_name:
                raise ValueError(f"{p.name} needs {n}, which the plan does not contain")
            visit(by_name[n])
        visiting.discard(p.name)
        done[p.name] = None

    for p in populations:
        visit(p)
    return [by_name[n] for n in done]


def plan_experiment(name: str, profile: str, seed: int) -> list[Population]:
    """The populations of registered experiment ``name`` (one task if it registers no planner)."""
    from . import claims
    claims.settings_of(name, profile, seed)  # imports the chapter modules, refuses an unknown name
    planner = claims.PLANS.get(name)
    if planner is None:
        return [whole_experiment(name, profile, seed)]
    return list(planner(profile, seed))


# --- steps: what one population computes, in whatever process runs it ------------------------------

@functools.lru_cache(maxsize=4)
def _dataset(name: str, data_root: str | None, device: str):
    from .data import load
    return load(name, data_root, device=device)


def _imp_round(config, rnd: int, where: Where, cache: ResultCache) -> dict:
    from .lottery import run_imp
    done = run_imp(config, _dataset(config.dataset, where.data_root, where.device), rnd, cache=cache,
                   device=where.device, progress=False, deadline=where.deadline)
    return {"complete": len(done) == rnd + 1}


def _oneshot(config, rounds, where: Where, cache: ResultCache) -> dict:
    from .lottery import run_oneshot
    run_oneshot(config, _dataset(config.dataset, where.data_root, where.device), rounds, cache=cache,
                device=where.device, progress=False)
    return {"complete": True}


def _criteria_round(config, rnd: int, where: Where, cache: ResultCache) -> dict:
    from .deconstruct import run_criteria
    done = run_criteria(config, _dataset(config.lottery.dataset, where.data_root, where.device), rnd, cache=cache,
                        device=where.device, progress=False, deadline=where.deadline)
    return {"complete": len(done) == rnd + 1}


def _init_accuracy(config, _, where: Where, cache: ResultCache) -> dict:
    from .deconstruct import run_init_accuracy
    run_init_accuracy(config, _dataset(config.lottery.dataset, where.data_root, where.device), cache=cache,
                      device=where.device, progress=False)
    return {"complete": True}


def _supermask(config, _, where: Where, cache: ResultCache) -> dict:
    from .deconstruct import train_supermask
    train_supermask(config, _dataset(config.dataset, where.data_root, where.device), cache=cache,
                    device=where.device, progress=False)
    return {"complete": True}


def _experiment(name: str, profile_seed, where: Where, cache: ResultCache) -> dict:
    from . import claims
    profile, seed = profile_seed
    context = claims.Context(cache=cache, data_root=where.data_root, device=where.device, progress=False,
                             deadline=where.deadline)
    return {"summary": claims.EXPERIMENTS[name](profile, seed, context)}


STEPS: dict[str, Callable[[Any, Any, Where, ResultCache], dict]] = {
    "imp_round": _imp_round, "oneshot": _oneshot, "criteria_round": _criteria_round,
    "init_accuracy": _init_accuracy, "supermask": _supermask, "experiment": _experiment}


def compute(population: Population, where: Where) -> dict:
    """Run one population here; returns what it made (``summary`` for a whole experiment) and its
    provenance: node, process, device, commit, start time and wall seconds, and the cache entries it
    read or wrote."""
    from .provenance import provenance
    from .train import configure_threads
    configure_threads()
    if where.deadline is not None and time.time() >= where.deadline:
        return {"population": population.name, "skipped": "deadline passed before it started"}
    cache = where.cache()
    start = time.time()
    out = STEPS[population.step](population.config, population.arg, where, cache)
    made = provenance(where.device, time.time() - start)
    return {**out, "population": population.name, "node": platform.node(), "pid": os.getpid(),
            "started": start, **made, "entries": sorted(cache.used)}


# --- executors ------------------------------------------------------------------------------------

def run_serial(populations: Sequence[Population], where: Where,
               on_done: Callable[[dict], None] | None = None) -> dict[str, dict]:
    """Every population in this process, in dependency order: ``{name: compute's record}``."""
    records = {}
    for p in ordered(populations):
        records[p.name] = compute(p, where)
        if on_done is not None:
            on_done(records[p.name])
    return records


class RayMissing(ImportError):
    """``--executor ray`` on an installation without Ray."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayMissing("Ray is not installed: pip install -e '.[ray]' (or pip install 'ray>=2.40'), "
                         "or leave out --executor ray to run on this machine") from None
    return ray


def _ray_compute(population: Population, where: Where, *needed: dict) -> dict:
    """The Ray task: ``needed`` are the records of what ``population`` needs (passing their object
    references makes Ray start this task only after them)."""
    return compute(population, where)


def forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIX)}


def run_ray(populations: Sequence[Population], where: Where, *, address: str | None = None,
            num_cpus: int | None = None, max_retries: int = 3,
            on_done: Callable[[dict], None] | None = None) -> dict[str, dict]:
    """Every population as one Ray task, on the cluster at ``address`` (None: a local Ray started here
    with ``num_cpus`` workers, stopped at the end). Returns ``{name: compute's record}``.

    Workers must share ``where.cache_root`` (one machine, or a shared file system on a cluster) and
    find the datasets at ``where.data_root``. A task whose worker dies is retried up to
    ``max_retries`` times; CUDA and I/O errors too (``RuntimeError``, ``OSError``).
    """
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": forwarded_env()})
    try:
        gpu = where.device.startswith("cuda")
        task = ray.remote(_ray_compute).options(num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1,
                                                max_retries=max_retries,
                                                retry_exceptions=[RuntimeError, OSError])
        refs: dict[str, Any] = {}
        for p in ordered(populations):
            refs[p.name] = task.remote(p, where, *[refs[n] for n in p.needs])
        records: dict[str, dict] = {}
        pending = {ref: name for name, ref in refs.items()}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(ready[0])
            records[name] = ray.get(ready[0])
            if on_done is not None:
                on_done(records[name])
        return {p.name: records[p.name] for p in populations}
    finally:
        if started_here:
            ray.shutdown()


EXECUTORS = ("serial", "ray")


def execute(plans: Mapping[tuple[str, str, int], Sequence[Population]], where: Where, executor: str = "serial", *,
            address: str | None = None, num_cpus: int | None = None,
            on_done: Callable[[dict], None] | None = None) -> tuple[dict[str, dict], dict[str, dict]]:
    """Run the populations of ``plans`` (``{(experiment, profile, seed): populations}``, from
    :func:`plan_experiment`) with ``executor``; returns ``(summaries of the experiments that ran as one
    task, {population name: compute's record})``.

    The experiments that have a planner are then assembled by calling them: everything is cached.
    """
    graph = merge(*plans.values())
    if executor == "serial":
        records = run_serial(graph, where, on_done)
    elif executor == "ray":
        records = run_ray(graph, where, address=address, num_cpus=num_cpus, on_done=on_done)
    else:
        raise ValueError(f"unknown executor {executor!r}; choose {' or '.join(EXECUTORS)}")
    summaries = {}
    for name, profile, seed in plans:
        whole = whole_experiment(name, profile, seed).name
        if "summary" in records.get(whole, {}):
            summaries[name] = records[whole]["summary"]
    return summaries, records


def tasks_of(plan: Sequence[Population], records: Mapping[str, dict]) -> list[dict]:
    """The provenance of each of ``plan``'s tasks (for an experiment's stored result)."""
    keep = ("population", "node", "pid", "device", "commit", "dirty", "date", "started", "wall_seconds", "skipped")
    return [{k: records[p.name][k] for k in keep if k in records[p.name]} for p in plan if p.name in records]
