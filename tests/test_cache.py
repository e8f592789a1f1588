import dataclasses
import json

import pytest

from lotterylib.cache import ResultCache, config_hash, config_name
from lotterylib.lottery import LotteryConfig
from lotterylib.train import TrainConfig


def test_hashes_are_pinned():
    # If one of these changes, every cached and committed result would be orphaned: don't.
    assert config_hash(TrainConfig()) == "eed33831b6c88400"
    assert config_hash(LotteryConfig()) == "5639694a47a96a8b"
    assert config_hash(LotteryConfig(train=TrainConfig(iterations=1000, eval_every=50), rate_fc=0.5,
                                     rate_output=0.25)) == "5f43e1e620631500"


def test_defaults_do_not_enter_the_hash():
    @dataclasses.dataclass(frozen=True)
    class Old:
        a: int = 1

    @dataclasses.dataclass(frozen=True)
    class Old2:  # the same class after a new knob with a default was added
        a: int = 1
        b: float = 0.5

    Old2.__name__ = "Old"
    assert config_hash(Old(a=3)) == config_hash(Old2(a=3))
    assert config_hash(Old2(a=3, b=0.7)) != config_hash(Old(a=3))
    assert config_name(Old(a=3)).startswith("old-")


def test_memoize_and_corrupt_entry(tmp_path):
    cache = ResultCache(tmp_path)
    key = TrainConfig(iterations=7)
    calls = []
    compute = lambda: calls.append(1) or {"x": 1}  # noqa: E731
    assert cache.memoize_json(key, compute) == {"x": 1}
    assert cache.memoize_json(key, compute) == {"x": 1}
    assert len(calls) == 1
    entry = cache.path(key)
    (entry / "result.json").write_text(json.dumps({"x": 2}))  # tampered / truncated
    with pytest.warns(RuntimeWarning, match="does not match its checksum"):
        assert cache.memoize_json(key, compute) == {"x": 1}
    assert len(calls) == 2
    (entry / "MANIFEST.json").unlink()
    with pytest.warns(RuntimeWarning, match="manifest"):
        assert cache.get(key) is None


def test_failed_write_leaves_no_entry(tmp_path):
    cache = ResultCache(tmp_path)

    def boom(w):
        w.json({"partial": True})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.put(TrainConfig(iterations=3), boom)
    assert cache.get(TrainConfig(iterations=3)) is None
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())


def test_cache_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LOTTERYLIB_CACHE", str(tmp_path / "c"))
    assert ResultCache().root == tmp_path / "c"


def test_the_ledger_keeps_the_provenance_of_every_entry_used(tmp_path):
    cache = ResultCache(tmp_path)
    timed = []
    made = lambda seconds: timed.append(seconds) or {"device": "cpu", "wall_seconds": seconds}  # noqa: E731
    cache.memoize_json(TrainConfig(iterations=7), lambda: {"x": 1}, provenance=made)
    assert len(timed) == 1 and timed[0] >= 0  # a function of compute's wall time is called with it
    later = ResultCache(tmp_path)  # another session reading the stored entry
    later.memoize_json(TrainConfig(iterations=7), lambda: {"x": 2}, provenance=made)
    assert list(later.used.values()) == [{"device": "cpu", "wall_seconds": timed[0]}] and len(timed) == 1


def test_a_changed_default_makes_an_entry_stale_not_silently_reused(tmp_path):
    """Defaults stay out of the hash, so a changed default keeps the name: the full config stored with
    the entry is compared on read, and the old result is recomputed, with a warning naming the field."""
    @dataclasses.dataclass(frozen=True)
    class Knob:
        n: int = 1
        lr: float = 0.1

    cache = ResultCache(tmp_path)
    calls = []
    assert cache.memoize_json(Knob(n=2), lambda: calls.append(1) or {"made_with_lr": 0.1}) == {"made_with_lr": 0.1}

    @dataclasses.dataclass(frozen=True)
    class Knob:  # noqa: F811 - the same class after its default learning rate changed
        n: int = 1
        lr: float = 0.2

    assert config_hash(Knob(n=2)) == json.loads((cache.path(Knob(n=2)) / "config.json").read_text())["hash"]
    with pytest.warns(RuntimeWarning, match=r"a default changed\): lr: 0.1 stored, 0.2 now"):
        assert cache.memoize_json(Knob(n=2), lambda: calls.append(1) or {"made_with_lr": 0.2}) == {"made_with_lr": 0.2}
    assert len(calls) == 2 and cache.get(Knob(n=2)).json() == {"made_with_lr": 0.2}

    @dataclasses.dataclass(frozen=True)
    class Knob:  # noqa: F811 - a new knob at its default: old entries stay valid
        n: int = 1
        lr: float = 0.2
        momentum: float = 0.9

    assert cache.get(Knob(n=2)).json() == {"made_with_lr": 0.2}


def test_config_drift_names_nested_fields():
    from lotterylib.cache import config_drift, to_jsonable
    stored = json.loads(json.dumps(to_jsonable(LotteryConfig())))
    assert config_drift(stored, to_jsonable(LotteryConfig())) == []
    drift = config_drift(stored, to_jsonable(LotteryConfig(train=TrainConfig(lr=1e-3), seeds=(0, 1))))
    assert drift == ["seeds: [0, 1, 2] stored, [0, 1] now", "train.lr: 0.0012 stored, 0.001 now"]


def test_a_salt_keeps_the_entries_of_other_code_apart(tmp_path, monkeypatch):
    assert ResultCache(tmp_path, salt="abc").root == tmp_path / "code-abc"
    monkeypatch.setenv("LOTTERYLIB_CACHE_SALT", "def")
    assert ResultCache(tmp_path).root == tmp_path / "code-def"
    assert ResultCache(tmp_path, salt="").root == tmp_path


def test_provenance_says_whether_the_tree_had_uncommitted_changes(monkeypatch):
    from lotterylib.provenance import provenance, source_digest
    monkeypatch.setenv("LOTTERYLIB_DIRTY", "1")
    made = provenance("cpu", 1.0)
    assert made["dirty"] is True and made["source"] == source_digest() and len(made["source"]) == 12
    monkeypatch.setenv("LOTTERYLIB_DIRTY", "0")
    assert provenance("cpu", 1.0)["dirty"] is False


def test_a_long_wait_for_a_lock_says_which_process_holds_it(tmp_path, monkeypatch, capfd):
    """Two chapters share runs through the cache's locks; a wait that does not end must name its holder
    on standard error (the CI log), not pass for a slow cell."""
    import subprocess
    import sys
    import time

    from lotterylib import cache as cache_module

    cache = ResultCache(tmp_path)
    key = LotteryConfig(seeds=(0,))
    lock_file = str(cache.path(key, "imp")) + ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom lotterylib.cache import file_lock\n"
         "with file_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(1.5)\n", lock_file],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(cache_module, "LOCK_REPORT_AFTER_S", 0.3)
        start = time.monotonic()
        with cache.lock(key, "imp"):
            waited = time.monotonic() - start
    finally:
        holder.wait(timeout=30)
    assert waited > 0.5  # it did wait for the other process
    err = capfd.readouterr().err
    assert f"held by pid {holder.pid}" in err and lock_file in err and "python" in err
    assert err.count("lotterylib: waited") == 1  # one line, not one per poll
