"""Committed full-profile results: storage, loading, and how the claims read them."""

import json
import time

import numpy as np
import pytest
import torch

from lotterylib import claims, lottery, results
from lotterylib.claims import lt
from lotterylib.train import TrainConfig


def test_save_load_roundtrip_keyed_by_settings(tmp_path):
    s = lt.lt_settings("quick", 0)
    where = results.save("lt_lenet_mnist", "quick", 0, s, {"rows": [1, 2]}, {"device": "cpu"}, True, tmp_path)
    assert where.parent.name == "lt_lenet_mnist" and where.name.startswith("quick-seed0-")
    record = results.load("lt_lenet_mnist", "quick", 0, s, tmp_path)
    assert record["summary"] == {"rows": [1, 2]} and record["complete"] is True
    assert record["settings"]["__type__"] == "LTSettings"
    # Other settings (here another seed shift) name another file: a stale result is never read.
    assert results.load("lt_lenet_mnist", "quick", 0, lt.lt_settings("quick", 1), tmp_path) is None


def test_corrupt_or_mismatched_result_is_a_clear_error(tmp_path):
    s = lt.lt_settings("quick", 0)
    where = results.save("lt_lenet_mnist", "quick", 0, s, {}, {}, True, tmp_path)
    where.write_text("{not json")
    with pytest.raises(results.ResultsError, match="unreadable"):
        results.load("lt_lenet_mnist", "quick", 0, s, tmp_path)
    where.write_text(json.dumps({"config_hash": "0" * 16, "summary": {}}))
    with pytest.raises(results.ResultsError, match="does not hold"):
        results.load("lt_lenet_mnist", "quick", 0, s, tmp_path)


def test_full_claims_without_results_are_awaiting_a_run(tmp_path):
    ctx = claims.Context(compute=False, results=tmp_path)
    records = claims.run("LT", "full", 0, ctx)
    assert all(r["holds"] is None for r in records)
    assert all("python -m lotterylib run --profile full --only LT" in r["note"] for r in records)


def test_full_claims_read_a_committed_result_and_unreached_points_stay_undecided(tmp_path):
    rows = [{"round": 0, "variant": "ticket", "weights_remaining": 1.0, "early_stop_iteration": 100.0,
             "test_acc": 0.98, "per_seed_test_acc": [0.98, 0.979], "per_seed_early_stop": [100, 100]}]
    results.save("lt_lenet_mnist", "full", 0, lt.lt_settings("full", 0), {"rows": rows}, {}, False, tmp_path)
    records = {r["id"]: r for r in claims.run("LT", "full", 0, claims.Context(compute=False, results=tmp_path))}
    assert records["LT-1"]["holds"] is None and "Pm 51.3%" in records["LT-1"]["note"]
    assert "stopped early" in records["LT-1"]["note"]


def test_imp_stops_at_the_deadline_and_resumes(mnist_small, tmp_path):
    from lotterylib.cache import ResultCache
    cache = ResultCache(tmp_path)
    cfg = lottery.LotteryConfig(train=TrainConfig(iterations=5, eval_every=5), seeds=(0,), controls=())
    assert lottery.run_imp(cfg, mnist_small, 2, cache=cache, progress=False, deadline=time.time() - 1) == []
    done = lottery.run_imp(cfg, mnist_small, 2, cache=cache, progress=False, deadline=time.time() + 600)
    assert [r.round for r in done] == [0, 1, 2]


def test_imp_interrupted_inside_a_round_resumes_there(mnist_small, tmp_path, monkeypatch):
    from lotterylib import train as engine
    from lotterylib.cache import ResultCache
    cfg = lottery.LotteryConfig(train=TrainConfig(iterations=60, batch_size=20, eval_every=10), seeds=(0, 1),
                                controls=("reinit",))
    ref = lottery.run_imp(cfg, mnist_small, 1, cache=ResultCache(tmp_path / "whole"), progress=False)

    monkeypatch.setenv("LOTTERYLIB_CHECKPOINT_SECONDS", "0")
    cache = ResultCache(tmp_path / "cut")
    evaluate, calls = engine.evaluate, {"n": 0}

    def interrupted(*args, **kwargs):  # round 0 evaluates 2 × 7 times; stop in round 1, after step 30
        calls["n"] += 1
        if calls["n"] == 14 + 9:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(engine, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        lottery.run_imp(cfg, mnist_small, 1, cache=cache, progress=False)
    partial = cache.partial(lottery.ImpRound(cfg, 1), "imp")
    assert partial.exists() and torch.load(partial, weights_only=True)["step"] == 30
    monkeypatch.setattr(engine, "evaluate", evaluate)
    got = lottery.run_imp(cfg, mnist_small, 1, cache=cache, progress=False)
    assert not partial.exists()
    for a, b in zip(got, ref):
        for name in b.histories:
            np.testing.assert_array_equal(a.histories[name].val_loss, b.histories[name].val_loss)


def test_a_shorter_run_never_replaces_a_stored_result_that_went_further():
    stored = {"complete": False, "summary": {"rounds_done": 12}}
    assert results.further_along(stored, {"rounds_done": 3}, complete=False)
    assert not results.further_along(stored, {"rounds_done": 13}, complete=False)
    assert not results.further_along(stored, {"rounds_done": 3}, complete=True)
    assert results.further_along({"complete": True, "summary": {}}, {"rounds_done": 14}, complete=False)
    assert not results.further_along(None, {"rounds_done": 0}, complete=False)
