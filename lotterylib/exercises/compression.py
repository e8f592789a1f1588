"""Build it yourself, chapter 07 (Deep Compression): k-means weight sharing and Huffman code lengths.

The reader writes, in plain PyTorch / Python and for one layer:

* ``share_weights(w, bits)`` → ``(codebook, indices)``: Deep Compression's weight sharing (§3) of one
  pruned layer ``w`` (pruned weights are exactly 0 and are not clustered): ``2**bits`` centroids placed
  by *linear* initialisation over [min, max] of the kept weights (§3.1), then Lloyd's iterations
  (assign every kept weight to its nearest centroid, move each centroid to the mean of its weights; a
  centroid that loses all its weights stays where it is). ``indices`` has ``w``'s shape; at pruned
  positions its value does not matter. Checked by :func:`check_share_weights` against
  :func:`lotterylib.compression.kmeans_1d` (linear initialisation, 10 Lloyd iterations) on the kept
  weights: the reader's reconstruction error on the kept weights may not exceed the library's by more
  than :data:`SHARE_TOLERANCE` (relative), on random layers and on edge cases (all kept weights equal,
  fewer distinct values than centroids, one kept weight, a layer of mostly zeros, float64 input).
* ``huffman_code_lengths(counts)`` → ``lengths``: the code length of every symbol of an optimal prefix
  code (Huffman's), 0 for a symbol that never occurs, 1 for the only symbol of a one-symbol stream.
  Checked by :func:`check_huffman_code_lengths` against :func:`lotterylib.compression.huffman_lengths`:
  the total coded bits ``Σ counts·lengths`` must equal the optimum (ties may give other lengths of the
  same total), and the lengths must satisfy Kraft's equality ``Σ 2^-length = 1`` over the used symbols
  (a full binary code tree, so the lengths are those of a real prefix code).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .. import compression
from . import Case, Report, run

#: How much larger (relative) than the library's k-means error the reader's may be: room for float32
#: arithmetic and a different number of Lloyd iterations, far less than a missing Lloyd step or
#: clustering the pruned zeros costs (tests/test_exercises_compression.py).
SHARE_TOLERANCE = 0.02
#: Lloyd iterations of the library's reference (``ComparisonConfig.kmeans_iterations``).
LLOYD_ITERATIONS = 10

# ---------------------------------------------------------------------------------------------------
# k-means weight sharing


def library_error(w: Tensor, bits: int) -> float:
    """Mean squared reconstruction error on the kept (non-zero) weights of ``w`` after lotterylib's
    k-means (linear initialisation, :data:`LLOYD_ITERATIONS` Lloyd iterations)."""
    kept = w[w != 0].double()
    codebook, codes = compression.kmeans_1d(kept, bits, LLOYD_ITERATIONS, init="linear")
    return float(((codebook.double()[codes] - kept) ** 2).mean())


def _called_share(fn: Callable[..., Any], w: Tensor, bits: int) -> tuple[Tensor, Tensor]:
    """The reader's (codebook, indices), checked for form; the input must come back unchanged."""
    given = w.clone()
    out = fn(given, bits)
    assert isinstance(out, tuple) and len(out) == 2, "return a pair (codebook, indices)"
    codebook, indices = out
    assert isinstance(codebook, Tensor) and isinstance(indices, Tensor), "return two tensors"
    k = 2 ** bits
    assert codebook.shape == (k,), (f"the codebook should hold 2**bits = {k} centroids, got shape "
                                    f"{tuple(codebook.shape)}; keep a centroid that lost its weights (do not drop it)")
    assert codebook.is_floating_point(), f"the codebook holds weights: a float tensor, not {codebook.dtype}"
    assert bool(torch.isfinite(codebook).all()), (
        "the codebook holds NaN or inf: an empty cluster's mean is 0/0 (keep its old centroid), or the "
        "weights' range max − min is 0 (all kept weights equal)")
    assert indices.shape == w.shape, (f"indices should have the layer's shape {tuple(w.shape)}, got "
                                      f"{tuple(indices.shape)} (one index per position; pruned ones are ignored)")
    assert not indices.is_floating_point() and indices.dtype != torch.bool, \
        f"indices are cluster numbers: an integer tensor, not {indices.dtype}"
    kept = w != 0
    idx = indices[kept].long()
    assert bool(((idx >= 0) & (idx < k)).all()), (f"an index of a kept weight is outside 0 … {k - 1} (a division "
                                                   "by max − min = 0 when every kept weight is equal?)")
    assert torch.equal(given, w), "your function changed its input w; leave it alone"
    return codebook.double(), idx


def _share_case(w: Tensor, bits: int, what: str) -> Case:
    def test(fn: Callable[..., Any]) -> None:
        codebook, idx = _called_share(fn, w, bits)
        kept = w[w != 0].double()
        approx = codebook[idx]
        scale = float(kept.abs().max())
        nearest = (kept[:, None] - codebook[None, :]).abs().min(1).values
        assert bool(((approx - kept).abs() <= nearest + 1e-6 * scale).all()), (
            "a kept weight is not mapped to its nearest centroid: assign every weight again after the last "
            "centroid update")
        err, want = float(((approx - kept) ** 2).mean()), library_error(w, bits)
        limit = want * (1 + SHARE_TOLERANCE) + 1e-12 * scale ** 2
        if err > limit:
            hint = "start from linear initialisation over [min, max] of the kept weights and run Lloyd's iterations"
            everything = w.reshape(-1).double()
            if (w == 0).any():
                c_all, a_all = compression.kmeans_1d(everything, bits, LLOYD_ITERATIONS, init="linear")
                with_zeros = float(((c_all.double()[a_all][everything != 0] - kept) ** 2).mean())
                if abs(err - with_zeros) <= 0.05 * with_zeros or (codebook.abs() < 1e-9 * scale).any():
                    hint = ("it clusters the pruned zeros too: cluster only the kept (non-zero) weights — the "
                            "zeros are stored by the positions, not by the codebook")
            init_only = compression.linear_init(kept, 2 ** bits)
            init_err = float(((init_only[compression.assign(kept, init_only)] - kept) ** 2).mean())
            if abs(err - init_err) <= 1e-9 + 1e-6 * init_err:
                hint = (f"that is the error of the linear initialisation alone: run Lloyd's iterations "
                        f"(the library runs {LLOYD_ITERATIONS})")
            raise AssertionError(f"reconstruction error {err:.3g} on the kept weights, the library's "
                                 f"k-means reaches {want:.3g}; {hint}")
    return Case(what, test)


def _pruned_layer(seed: int, shape: tuple[int, int], kept: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """A trained-looking layer pruned by magnitude: Gaussian weights, the smallest (1 − kept) set to 0."""
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(shape, generator=g) * 0.05).to(dtype)
    n_keep = max(1, round(kept * w.numel()))
    threshold = w.abs().reshape(-1).sort(descending=True).values[n_keep - 1]
    return torch.where(w.abs() >= threshold, w, torch.zeros((), dtype=dtype))


def share_cases() -> list[Case]:
    """Random pruned and dense layers at several bit widths, and the edge cases."""
    few = torch.tensor([-1.0, 0.5, 2.0, 0.5, -1.0, 2.0, 0.5] * 3).reshape(3, 7)
    equal = torch.zeros(6, 10)
    equal[::2, ::3] = 0.25
    one = torch.zeros(4, 5)
    one[2, 3] = -0.7
    return [
        _share_case(_pruned_layer(0, (60, 80), 0.1), 3, "a pruned layer (10 % kept), 3 bits"),
        _share_case(_pruned_layer(1, (50, 40), 0.25), 2, "a pruned layer (25 % kept), 2 bits"),
        _share_case(_pruned_layer(2, (30, 40), 1.0), 4, "a dense layer, 4 bits"),
        _share_case(_pruned_layer(3, (100, 60), 0.08), 6, "a pruned layer (8 % kept), 6 bits as the chapter"),
        _share_case(_pruned_layer(4, (40, 30), 0.3, torch.float64), 3, "a float64 layer, 3 bits"),
        _share_case(equal, 2, "every kept weight equal (max = min)"),
        _share_case(few, 3, "3 distinct values for 8 centroids (empty clusters)"),
        _share_case(one, 2, "a single kept weight"),
    ]


def check_share_weights(fn: Callable[[Tensor, int], tuple[Tensor, Tensor]], show: bool = True) -> Report:
    """Check the reader's ``share_weights(w, bits) -> (codebook, indices)`` (see the module doc)."""
    return run("share_weights", fn, share_cases(), show)


# ---------------------------------------------------------------------------------------------------
# Huffman code lengths


def optimal_bits(counts: Sequence[int]) -> int:
    """Total bits of an optimal prefix code for ``counts`` (lotterylib's Huffman lengths)."""
    f = np.asarray(counts, dtype=np.int64)
    return int(compression.encoded_bits(f, compression.huffman_lengths(f)))


def _as_lengths(out: Any, n: int) -> np.ndarray:
    if isinstance(out, Tensor):
        out = out.detach().cpu().numpy()
    arr = np.asarray(out)
    assert arr.shape == (n,), f"return one length per symbol ({n}), got shape {arr.shape}"
    assert np.all(arr == np.round(arr)) and np.all(arr >= 0), "code lengths are whole numbers ≥ 0"
    return arr.astype(np.int64)


def _huffman_case(counts: Sequence[int], what: str) -> Case:
    def test(fn: Callable[..., Any]) -> None:
        given = list(counts)
        lengths = _as_lengths(fn(given), len(counts))
        assert given == list(counts), "your function changed its input counts; leave it alone"
        f = np.asarray(counts, dtype=np.int64)
        used = f > 0
        assert np.all(lengths[~used] == 0), "a symbol that never occurs gets no code: length 0"
        assert np.all(lengths[used] >= 1), "every symbol that occurs needs a code of at least 1 bit"
        n_used = int(used.sum())
        if n_used == 1:
            assert int(lengths[used][0]) == 1, "a stream of one symbol: give it a 1-bit code (as the library)"
            return
        total, best = int((f * lengths).sum()), optimal_bits(counts)
        kraft = sum(2.0 ** -int(l) for l in lengths[used])
        assert kraft <= 1 + 1e-12, (f"Σ 2^-length = {kraft:.4g} > 1: no prefix code has these lengths (a code "
                                    "would be the prefix of another)")
        if total != best:
            fixed = math.ceil(math.log2(n_used))
            if np.all(lengths[used] == lengths[used][0]):
                hint = (f"every symbol has {int(lengths[used][0])} bits: that is a fixed-length code; merge the two "
                        "least frequent subtrees repeatedly (Huffman), frequent symbols get short codes")
            elif kraft < 1 - 1e-12:
                hint = (f"Σ 2^-length = {kraft:.4g} < 1: the code tree has a node with one child, a wasted bit; "
                        "Huffman's merges of the two least frequent subtrees build a full tree")
            else:
                hint = "build the lengths by merging the two least frequent subtrees, adding 1 to each symbol in them"
            raise AssertionError(f"{total} bits in all, the optimum (Huffman) is {best} (fixed width "
                                 f"would be {fixed * int(f.sum())}); {hint}")
        assert abs(kraft - 1) <= 1e-12, f"Σ 2^-length = {kraft:.4g}: an optimal code's tree is full (Σ = 1)"
    return Case(what, test)


def huffman_cases() -> list[Case]:
    """Skewed, flat and random counts, unused symbols, and one- and two-symbol streams."""
    rng = np.random.default_rng(0)
    geometric = [int(1000 * 0.6 ** i) + 1 for i in range(12)]
    zipf = [int(c) for c in rng.zipf(1.6, 40).clip(max=5000)]
    return [
        _huffman_case([45, 13, 12, 16, 9, 5], "the textbook example"),
        _huffman_case(geometric, "geometric counts (a peaked stream)"),
        _huffman_case(zipf, "Zipf-like counts, 40 symbols"),
        _huffman_case([int(c) for c in rng.integers(1, 500, 64)], "random counts, 64 symbols"),
        _huffman_case([7] * 8, "8 equal counts"),
        _huffman_case([3] * 5 + [4, 6], "near-equal counts, 7 symbols"),
        _huffman_case([0, 12, 0, 5, 3, 0, 0, 9], "unused symbols (count 0)"),
        _huffman_case([1, 1000], "two symbols"),
        _huffman_case([0, 0, 42, 0], "one symbol in the stream"),
    ]


def check_huffman_code_lengths(fn: Callable[[Sequence[int]], Any], show: bool = True) -> Report:
    """Check the reader's ``huffman_code_lengths(counts) -> lengths`` (see the module doc)."""
    return run("huffman_code_lengths", fn, huffman_cases(), show)
