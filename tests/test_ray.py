"""Sweeps as populations on Ray (lotterylib.plan): a local Ray with two CPU workers stores the same
results as the serial path, bit for bit, and a sweep survives a worker killed in the middle of a task.

The sweep is small (LeNet-300-100, 2 seeds, 100 iterations per round): LT's IMP rounds with one-shot,
and a DLT criteria run with a branch. Only wall-clock fields (``seconds``) may differ.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from lotterylib import cli, deconstruct, lottery, plan
from lotterylib.cache import ResultCache
from lotterylib.data import load
from lotterylib.deconstruct import CriteriaRound, DeconstructConfig, accuracy_table, run_criteria
from lotterylib.lottery import ImpRound, LotteryConfig, OneShot, run_imp, run_oneshot, summarize
from lotterylib.train import TrainConfig, configure_threads

import ray  # noqa: E402 - the ray extra; requirements.txt pins it, so make test always runs these tests

# Evaluated at the start and the end only: an evaluation reads 15,000 MNIST images per net and would cost
# more than the training. 100 iterations: what is compared is bit equality, not accuracy.
TINY = LotteryConfig(train=TrainConfig(iterations=100, eval_every=100), seeds=(0, 1), rate_fc=0.5, rate_output=0.25)
LT_ROUNDS, ONESHOT = 3, (2,)
DLT = DeconstructConfig(TINY, ("large_final", "random"), branches=((1, ("reinit", "freeze_init")),))
DLT_ROUNDS = 1  # one round of two criteria, and a branch off it
#: long enough to be killed in the middle (a checkpoint every second; a round trains for several seconds
#: even on a quiet core), short enough to train three times (serial, killed, retried) in a test
SLOW = LotteryConfig(train=TrainConfig(iterations=600, eval_every=300), seeds=(0, 1), rate_fc=0.5, rate_output=0.25)


def sweep() -> list[plan.Population]:
    return plan.merge(plan.imp_rounds(TINY, LT_ROUNDS), [plan.oneshot(TINY, ONESHOT)],
                      plan.criteria_rounds(DLT, DLT_ROUNDS))


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (it takes seconds to start): two CPU workers, checkpoints every second."""
    env = {**plan.forwarded_env(), "LOTTERYLIB_CHECKPOINT_SECONDS": "1", "OMP_NUM_THREADS": "1"}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def mnist():
    return load("mnist")


def without_seconds(value):
    """A JSON value with its wall-clock fields removed (they are the only thing allowed to differ)."""
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if not k.endswith("seconds")}
    if isinstance(value, list):
        return [without_seconds(v) for v in value]
    return value


def assert_same_entry(a: ResultCache, b: ResultCache, key, kind: str):
    ea, eb = a.get(key, kind), b.get(key, kind)
    assert ea is not None and eb is not None, f"{kind} entry missing"
    assert without_seconds(ea.json()) == without_seconds(eb.json())
    ta, tb = ea.tensors(), eb.tensors()

    def same(x, y):
        if isinstance(x, dict):
            assert x.keys() == y.keys()
            for k in x:
                same(x[k], y[k])
        else:
            assert torch.equal(x, y), "tensors differ"
    same(ta, tb)


def serial_reference(mnist, cache: ResultCache):
    """Today's one-machine path: the library's own calls, in this process."""
    configure_threads(1)
    imp = run_imp(TINY, mnist, LT_ROUNDS, cache=cache, progress=False)
    oneshot = run_oneshot(TINY, mnist, ONESHOT, cache=cache, progress=False)
    dlt = run_criteria(DLT, mnist, DLT_ROUNDS, cache=cache, progress=False)
    return summarize(imp), summarize(oneshot), accuracy_table(dlt)


def test_a_sweep_on_local_ray_stores_what_the_serial_path_stores_bit_for_bit(local_ray, mnist, tmp_path, monkeypatch):
    serial = ResultCache(tmp_path / "serial")
    reference = serial_reference(mnist, serial)

    distributed = ResultCache(tmp_path / "ray")
    populations = sweep()
    records = plan.run_ray(populations, plan.Where(str(distributed.root)))
    assert set(records) == {p.name for p in populations}
    pids = {r["pid"] for r in records.values()}
    assert os.getpid() not in pids, "every population ran in a Ray worker, not in the driver"
    for r in records.values():  # the provenance every stored result lists per task
        assert {"node", "device", "commit", "date", "wall_seconds"} <= set(r)

    for rnd in range(LT_ROUNDS + 1):
        assert_same_entry(serial, distributed, ImpRound(TINY, rnd), "imp")
    assert without_seconds(serial.get(OneShot(TINY, ONESHOT), "oneshot").json()) == \
        without_seconds(distributed.get(OneShot(TINY, ONESHOT), "oneshot").json())
    for rnd in range(1, DLT_ROUNDS + 1):
        assert_same_entry(serial, distributed, CriteriaRound(DLT, rnd), "dlt")
    # The driver assembles from the shared cache without training anything: training would raise.
    def no_training(*args, **kwargs):
        raise AssertionError("the driver trained instead of reading the cache")
    monkeypatch.setattr(lottery, "train", no_training)
    monkeypatch.setattr(deconstruct, "train", no_training)
    assembled = serial_reference(mnist, distributed)
    assert json.dumps(assembled, sort_keys=True) == json.dumps(reference, sort_keys=True)


def ray_workers_computing() -> list[int]:
    """Pids of Ray workers running a population now (Ray titles them ``ray::<task name>``)."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"ray::_ray_compute"):
                out.append(int(proc.name))
    return out


def test_a_killed_worker_loses_only_its_population_and_the_sweep_ends_the_same(local_ray, mnist, tmp_path):
    serial = ResultCache(tmp_path / "serial")
    configure_threads(1)
    run_imp(SLOW, mnist, 1, cache=serial, progress=False)

    distributed = ResultCache(tmp_path / "ray")
    checkpoint = distributed.partial(ImpRound(SLOW, 1), "imp")
    killed: list[int] = []

    def kill_round_one_mid_training():
        deadline = time.time() + 600
        while time.time() < deadline and not checkpoint.exists():  # round 1 has trained for a while
            time.sleep(0.2)
        for pid in ray_workers_computing():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = threading.Thread(target=kill_round_one_mid_training, daemon=True)
    killer.start()
    records = plan.run_ray(plan.imp_rounds(SLOW, 1), plan.Where(str(distributed.root)))
    killer.join(timeout=5)
    assert killed, "no worker was killed: the test did not test anything"
    assert records[plan.imp_rounds(SLOW, 1)[1].name]["pid"] not in killed  # a retry finished it
    for rnd in (0, 1):
        assert_same_entry(serial, distributed, ImpRound(SLOW, rnd), "imp")


def test_the_plans_of_the_registered_experiments():
    lt = plan.plan_experiment("lt_lenet_mnist", "quick", 0)
    by_name = {p.name: p for p in lt}
    rounds = [p for p in lt if p.step == "imp_round"]
    assert [p.arg for p in rounds] == list(range(len(rounds)))
    assert all(p.needs == (rounds[i - 1].name,) for i, p in enumerate(rounds) if i)  # round k+1 needs round k
    (one,) = [p for p in lt if p.step == "oneshot"]
    assert one.needs == (rounds[0].name,) and by_name[one.needs[0]].arg == 0
    dlt, chains = plan.plan_experiment("dlt", "full", 0), plan.plan_experiment("dlt_chains", "full", 0)
    merged = plan.merge(dlt, chains)
    assert len(merged) == len(dlt) + len(chains) - 1  # the dense net is one population for both
    assert [p.step for p in plan.ordered(merged)][0] == "imp_round"
    # An experiment without a planner is one task.
    (whole,) = plan.plan_experiment("nt", "quick", 0)
    assert whole.step == "experiment"


def test_ordered_refuses_a_cycle_and_a_missing_need():
    a = plan.Population("a", "imp_round", TINY, 0, ("b",))
    b = plan.Population("b", "imp_round", TINY, 1, ("a",))
    with pytest.raises(ValueError, match="cycle"):
        plan.ordered([a, b])
    with pytest.raises(ValueError, match="does not contain"):
        plan.ordered([a])
    with pytest.raises(ValueError, match="both named"):
        plan.merge([a], [plan.Population("a", "supermask", TINY)])


def test_the_serial_executor_returns_the_summary_of_an_experiment_without_a_planner(monkeypatch, tmp_path):
    from lotterylib import claims
    claims.load_all()
    monkeypatch.setitem(claims.EXPERIMENTS, "tiny", lambda profile, seed, context: {"profile": profile, "seed": seed})
    plans = {("tiny", "quick", 3): [plan.whole_experiment("tiny", "quick", 3)]}
    summaries, records = plan.execute(plans, plan.Where(str(tmp_path)), "serial")
    assert summaries == {"tiny": {"profile": "quick", "seed": 3}}
    assert records["experiment/tiny/quick/3"]["pid"] == os.getpid()


def test_cli_refuses_an_address_without_ray_and_ray_where_it_is_missing(monkeypatch, capsys, tmp_path):
    assert cli.main(["run", "--profile", "quick", "--only", "LT-1", "--address", "auto", "--cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--executor ray" in err
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as on an installation without the extra
    assert cli.main(["run", "--profile", "quick", "--only", "LT-1", "--executor", "ray", "--cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install" in err
    assert not any(tmp_path.iterdir()), "a refused command wrote to the cache"
