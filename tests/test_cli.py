import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, env=None, timeout=1200):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "lotterylib", *args], capture_output=True, text=True,
                          cwd=ROOT, env=full_env, timeout=timeout)


@pytest.mark.parametrize("args,message", [
    (["claims", "--profile", "medium"], "unknown profile 'medium'"),
    (["claims", "--profile", "quick", "--only", "ZZ"], "no claim matches 'ZZ'"),
    (["claims", "--profile", "quick", "--only", "LT", "--json", "/proc/no/such/dir/out.json"], "cannot write --json"),
    (["claims", "--profile", "quick", "--seed", "x"], "invalid int value"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    res = cli(*args)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_missing_data_exits_2(tmp_path):
    res = cli("claims", "--profile", "quick", "--only", "LT-3", "--data-root", str(tmp_path / "none"),
              "--cache", str(tmp_path / "cache"))
    assert res.returncode == 2 and "missing" in res.stderr and "Traceback" not in res.stderr


def test_corrupt_data_exits_2(tmp_path, data_root):
    import shutil
    raw = tmp_path / "data" / "MNIST" / "raw"
    shutil.copytree(data_root / "MNIST" / "raw", raw)
    f = raw / "train-labels-idx1-ubyte.gz"
    os.chmod(f, 0o644)
    f.write_bytes(f.read_bytes()[:1000])  # truncated
    res = cli("claims", "--profile", "quick", "--only", "LT", "--data-root", str(tmp_path / "data"),
              "--cache", str(tmp_path / "cache"))
    assert res.returncode == 2 and "corrupt" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_lt_claims_hold_for_another_seed(tmp_path, data_root):
    """The LT quick claims on seed 1 (the chapter runs seed 0): every decidable one holds."""
    out = tmp_path / "claims.json"
    res = cli("claims", "--profile", "quick", "--only", "LT", "--seed", "1", "--json", str(out), "--no-progress",
              env={"LOTTERYLIB_DATA": str(data_root), "LOTTERYLIB_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stdout + res.stderr
    records = json.loads(out.read_text())
    assert {r["id"] for r in records} == {f"LT-{i}" for i in range(1, 9)}
    for r in records:
        assert {"id", "holds", "measured", "profile", "seed"} <= set(r)
        assert r["profile"] == "quick" and r["seed"] == 1
    assert [r["id"] for r in records if r["holds"] is None] == ["LT-2", "LT-6", "LT-7", "LT-8"]  # full / CIFAR only
    assert all(r["holds"] for r in records if r["holds"] is not None)


def test_run_skips_an_experiment_whose_stored_result_is_complete(tmp_path):
    from lotterylib import results
    from lotterylib.claims import lt
    rows = [{"round": 0, "variant": "ticket", "weights_remaining": 1.0, "early_stop_iteration": 100.0,
             "test_acc": 0.98, "per_seed_test_acc": [0.98], "per_seed_early_stop": [100]}]
    where = results.save("lt_lenet_mnist", "full", 0, lt.lt_settings("full", 0), {"rows": rows}, {}, True, tmp_path)
    before = where.read_text()
    res = cli("run", "--profile", "full", "--only", "LT-1", "--results", str(tmp_path), "--cache", str(tmp_path / "c"),
              "--no-progress", timeout=120)
    assert "stored result is complete" in res.stdout and "--again" in res.stdout, res.stdout + res.stderr
    assert where.read_text() == before and not (tmp_path / "c").exists()


def test_run_records_how_the_stored_parts_were_made(tmp_path, monkeypatch, capsys):
    # A toy experiment, registered for this test only: one cached part made "in an earlier session"
    # on another device, one computed now. The stored result's provenance sums both.
    import dataclasses

    from lotterylib import claims, results
    from lotterylib.cache import ResultCache
    from lotterylib.cli import main
    from lotterylib.provenance import provenance

    @dataclasses.dataclass(frozen=True)
    class Part:
        n: int

    def toy(profile, seed, context):
        parts = [context.cache.memoize_json(Part(n), lambda: {"n": 1}, "toy", provenance=lambda s: provenance("cpu", s))
                 for n in (1, 2)]
        return {"total": sum(p["n"] for p in parts)}

    ResultCache(tmp_path / "c").put(Part(1), lambda w: w.json({"n": 1}), "toy",
                                    provenance={"device": "NVIDIA H200", "commit": "old", "date": "2026-11-20T00:00:00",
                                                "wall_seconds": 120.0})
    monkeypatch.setitem(claims.EXPERIMENTS, "toy", toy)
    monkeypatch.setitem(claims.CLAIMS, "TOY-1", claims.Claim("TOY-1", "toy", "two parts", "2", "= 2", "toy",
                                                             lambda s, p: claims.Verdict(s["total"] == 2, str(s["total"]))))
    assert main(["run", "--profile", "full", "--only", "TOY", "--results", str(tmp_path), "--cache",
                 str(tmp_path / "c"), "--no-progress"]) == 0
    (stored,) = (tmp_path / "toy").glob("full-seed0-*.json")
    made = json.loads(stored.read_text())["provenance"]
    assert made["parts"]["count"] == 2 and made["parts"]["untimed"] == 0
    assert made["parts"]["devices"][0] == "NVIDIA H200" and made["parts"]["devices"][1].startswith("cpu")
    assert made["parts"]["compute_seconds"] >= 120.0 and "its 2 stored parts" in results.describe(made)
    assert "1 of 1 decided claims hold" in capsys.readouterr().out
