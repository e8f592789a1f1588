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
