"""keep_freed_memory: freed big tensors stay in the process while inside, and go back on leaving."""

import os

import pytest
import torch

from lotterylib import allocator

MB = 2**20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _alloc_and_free(mb: int = 200) -> None:
    t = torch.ones(mb * MB // 4)
    del t


needs_glibc = pytest.mark.skipif(allocator._libc() is None, reason="glibc's mallopt only")


@needs_glibc
def test_freed_memory_is_kept_inside_and_returned_after():
    _alloc_and_free()
    outside = _rss()
    with allocator.keep_freed_memory() as kept:
        assert kept
        with allocator.keep_freed_memory():  # re-entrant: leaving the inner one changes nothing
            _alloc_and_free()
        assert _rss() - outside > 150 * MB
    assert _rss() - outside < 50 * MB


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("LOTTERYLIB_KEEP_FREED_MEMORY", "0")
    with allocator.keep_freed_memory() as kept:
        assert not kept
