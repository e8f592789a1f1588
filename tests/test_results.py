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
    saved = torch.load(partial, weights_only=True)
    assert partial.exists() and saved["step"] == 30 and saved["seconds"] > 0
    monkeypatch.setattr(engine, "evaluate", evaluate)
    resumed = ResultCache(tmp_path / "cut")  # a new session: a fresh ledger
    got = lottery.run_imp(cfg, mnist_small, 1, cache=resumed, progress=False)
    assert not partial.exists()
    assert got[1].seconds > saved["seconds"]  # the round's time includes the interrupted piece's

    # The ledger: round 0 read from the cache, round 1 written; both with their own provenance.
    assert sorted(resumed.used) == sorted(str(resumed.path(lottery.ImpRound(cfg, r), "imp")) for r in (0, 1))
    made = results.parts(resumed.used)
    assert made["count"] == 2 and made["untimed"] == 0 and len(made["devices"]) == 1 and made["devices"][0].startswith("cpu")
    assert made["compute_seconds"] == pytest.approx(got[0].seconds + got[1].seconds, abs=0.1)
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


def test_describe_says_how_a_result_was_made_in_one_go_or_from_parts():
    one_go = {"device": "NVIDIA H200", "commit": "0123456789ab", "date": "2026-11-26T08:00:00+00:00",
              "wall_seconds": 365.0}
    assert results.describe(one_go) == "made on NVIDIA H200 at commit 01234567 on 2026-11-26 in 6.1 min"
    used = {"a": {"device": "cpu (x86_64, 1 threads)", "commit": "c1", "date": "2026-11-26T09:00:00+00:00",
                  "wall_seconds": 3000.0},
            "b": {"device": "cpu (x86_64, 2 threads)", "commit": "c2", "date": "2026-11-28T10:00:00+00:00",
                  "wall_seconds": 1500.0},
            "c": {}}  # an entry stored before entries recorded their provenance
    made = results.parts(used)
    assert made == {"count": 3, "compute_seconds": 4500.0, "untimed": 1, "dirty": 0,
                    "devices": ["cpu (x86_64, 1 threads)", "cpu (x86_64, 2 threads)"], "commits": ["c1", "c2"],
                    "first_date": "2026-11-26T09:00:00+00:00", "last_date": "2026-11-28T10:00:00+00:00"}
    text = results.describe({**one_go, "device": "cpu (x86_64, 2 threads)", "wall_seconds": 600.0, "parts": made})
    assert ("its 3 stored parts took 75.0 min of compute, 1 of them with no recorded time, made 2026-11-26 … "
            "2026-11-28 on cpu (x86_64, 1 threads) + cpu (x86_64, 2 threads) at 2 commits; "
            "this last piece ran 10.0 min") in text
    assert "at commit 01234567 (with uncommitted changes) on" in results.describe({**one_go, "dirty": True})


def test_a_result_made_with_another_default_awaits_a_new_run(tmp_path):
    """The hash leaves defaults out, so a committed result made before a default changed keeps its
    name; its stored settings in full say so, and it is never returned as today's result."""
    import json

    from lotterylib import claims
    from lotterylib.claims import lt
    settings = lt.lt_settings("full", 0)
    where = results.save("lt_lenet_mnist", "full", 0, settings, {"rows": []}, {}, True, tmp_path)
    record = json.loads(where.read_text())
    record["settings"]["lottery"]["train"]["lr"] = 0.1  # as if TrainConfig's default lr had been 0.1 then
    where.write_text(json.dumps(record))
    with pytest.raises(results.StaleResult, match=r"train.lr: 0.1 stored, 0.0012 now"):
        results.load("lt_lenet_mnist", "full", 0, settings, tmp_path)
    records = claims.run("LT-3", "full", 0, claims.Context(compute=False, results=tmp_path))
    assert records[0]["holds"] is None and "made with other settings" in records[0]["note"]
