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
