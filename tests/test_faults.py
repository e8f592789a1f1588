"""The cache and the runs under the faults a reader's machine produces: two processes writing the same
entry at once, ``kill -9`` in the middle of a training round and in the middle of a cache write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from lotterylib import lottery
from lotterylib.cache import ResultCache
from lotterylib.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]

# A module the child processes import: a frozen config class that the parent can name too.
KEYS = '''
import dataclasses, json, os, sys, time
import torch
from lotterylib.cache import ResultCache

@dataclasses.dataclass(frozen=True)
class Key:
    n: int = 0

def payload(n):
    g = torch.Generator().manual_seed(n)
    return {"w": torch.randn(100, 100, generator=g)}
'''


_KEYS: dict = {}
exec(KEYS, _KEYS)  # the parent's Key is the children's: same class name and fields, so the same entries
Key, payload = _KEYS["Key"], _KEYS["payload"]


def _child(code: str, tmp_path: Path, env: dict | None = None) -> subprocess.Popen:
    (tmp_path / "keys.py").write_text(KEYS)
    full_env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, timeout: float = 60.0, what: str = "") -> None:
    end = time.time() + timeout
    while not condition():
        if time.time() > end:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.01)


def test_two_processes_racing_on_one_key_compute_it_once(tmp_path):
    """Two writers, one key: one computes, the other waits and reads; one entry; nothing corrupt."""
    code = f'''
        import sys
        from keys import Key, ResultCache, time
        cache = ResultCache({str(tmp_path / "cache")!r})
        def compute():
            with open({str(tmp_path / "computed.log")!r}, "a") as f:
                f.write("computed\\n")
            time.sleep(1.5)
            return {{"answer": 42}}
        print(cache.memoize_json(Key(1), compute)["answer"])
    '''
    procs = [_child(code, tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.strip() == "42" and "recomputing" not in err and "Warning" not in err
    assert (tmp_path / "computed.log").read_text().count("computed") == 1
    entries = [p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")]
    assert [p.name for p in entries] == [ResultCache(tmp_path / "cache").path(Key(1)).name]


def test_concurrent_puts_first_writer_wins_and_readers_never_see_a_broken_entry(tmp_path):
    """Plain puts (no compute lock) of different payloads race with a reader that polls the key:
    the reader sees no entry or a whole one, never a corrupt one; the first writer's payload stays."""
    writer = f'''
        from keys import Key, ResultCache, payload
        import sys, torch
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 0
        cache = ResultCache({str(tmp_path / "cache")!r})
        for i in range(20):
            cache.put(Key(i), lambda w, i=i: w.tensors(payload(1000 * {{"a": 1, "b": 2}}[{"__N__"!r}] + i)))
    '''
    reader = f'''
        import warnings
        from keys import Key, ResultCache, payload
        warnings.simplefilter("error")  # a "corrupt entry" warning fails the reader
        import time
        cache = ResultCache({str(tmp_path / "cache")!r})
        # Poll until every key has been read whole at least once (the writers start as late as their
        # imports let them on a loaded machine), at most 120 s; a fixed number of polls could end first.
        seen, whole, deadline = 0, set(), time.monotonic() + 120
        while len(whole) < 20 and time.monotonic() < deadline:
            for i in range(20):
                entry = cache.get(Key(i))
                if entry is not None:
                    w = entry.tensors()["w"]
                    assert w.shape == (100, 100)
                    seen += 1
                    whole.add(i)
        print(seen)
    '''
    procs = [_child(writer.replace("__N__", name), tmp_path) for name in ("a", "b")] + [_child(reader, tmp_path)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    assert int(outs[2][0]) > 0, "the reader never saw an entry: the race was not exercised"
    cache = ResultCache(tmp_path / "cache")
    for i in range(20):
        got = cache.get(Key(i)).tensors()["w"]
        assert any(torch.equal(got, payload(1000 * k + i)["w"]) for k in (1, 2))
    assert not list((tmp_path / "cache").glob(".tmp-*")) and not list((tmp_path / "cache").glob(".unusable-*"))


def test_kill_9_in_the_middle_of_a_cache_write_loses_nothing(tmp_path):
    """A writer killed while writing leaves no entry (only its temporary folder, swept by the next
    write); the rerun stores exactly what an uninterrupted run stores."""
    code = f'''
        from keys import Key, ResultCache, payload, time
        cache = ResultCache({str(tmp_path / "cache")!r})
        def write(w):
            w.tensors(payload(7))
            open({str(tmp_path / "writing")!r}, "w").close()
            time.sleep(120)  # killed here, mid-write
        cache.put(Key(7), write)
    '''
    child = _child(code, tmp_path)
    _wait_for(lambda: (tmp_path / "writing").exists(), what="the child to start writing")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    cache = ResultCache(tmp_path / "cache")
    assert list((tmp_path / "cache").glob(".tmp-*")), "the killed write left its temporary folder"
    assert cache.get(Key(7)) is None
    cache.put(Key(7), lambda w: w.tensors(payload(7)))
    clean = ResultCache(tmp_path / "clean")
    clean.put(Key(7), lambda w: w.tensors(payload(7)))
    assert (cache.path(Key(7)) / "state.pt").read_bytes() == (clean.path(Key(7)) / "state.pt").read_bytes()
    assert not list((tmp_path / "cache").glob(".tmp-*")), "the next write sweeps a dead writer's folder"


TINY = lottery.LotteryConfig(train=TrainConfig(iterations=300, batch_size=20, eval_every=50), seeds=(0, 1),
                             rate_fc=0.5, rate_output=0.25)


@pytest.mark.slow
def test_kill_9_in_the_middle_of_an_imp_round_resumes_bit_identical(tmp_path, mnist_small, data_root):
    """A real process running IMP is SIGKILLed mid-round (after a mid-round checkpoint); the rerun
    resumes and ends bit-identical to an uninterrupted run (CPU)."""
    code = f'''
        from lotterylib import data, lottery
        from lotterylib.cache import ResultCache
        from lotterylib.data import Dataset, Split
        from lotterylib.train import TrainConfig
        m = data.load("mnist", {str(data_root)!r})
        cut = lambda s, n: Split(s.x[:n], s.y[:n])
        small = Dataset("mnist", cut(m.train, 2000), cut(m.val, 500), cut(m.test, 500), 10, (784,))
        config = lottery.LotteryConfig(train=TrainConfig(iterations=300, batch_size=20, eval_every=50), seeds=(0, 1),
                                       rate_fc=0.5, rate_output=0.25)
        lottery.run_imp(config, small, 1, cache=ResultCache({str(tmp_path / "cache")!r}), progress=False)
    '''
    cache = ResultCache(tmp_path / "cache")
    round1 = cache.partial(lottery.ImpRound(TINY, 1), "imp")
    child = _child(code, tmp_path, env={"LOTTERYLIB_CHECKPOINT_SECONDS": "0"})
    _wait_for(lambda: round1.exists() or child.poll() is not None, timeout=300, what="a checkpoint of round 1")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert round1.exists() and cache.get(lottery.ImpRound(TINY, 1), "imp") is None, "not killed mid-round"
    resumed = lottery.run_imp(TINY, mnist_small, 1, cache=cache, progress=False)
    whole = lottery.run_imp(TINY, mnist_small, 1, cache=ResultCache(tmp_path / "whole"), progress=False)
    for a, b in zip(resumed, whole):
        assert json.dumps({k: h.to_json() for k, h in a.histories.items()}) == \
            json.dumps({k: h.to_json() for k, h in b.histories.items()})
    for rnd in (0, 1):
        got, ref = (lottery.round_state(TINY, rnd, c) for c in (cache, ResultCache(tmp_path / "whole")))
        for part in ("final", "bias", "mask"):
            for k in ref[part]:
                assert torch.equal(got[part][k], ref[part][k]), (rnd, part, k)
    assert not round1.exists(), "the finished round removed its checkpoint"
