"""The chapter 07 checkers: each passes the worked solution and fails the stub and typical mistakes."""

import heapq
import math

import numpy as np
import torch

from lotterylib.exercises import stub
from lotterylib.exercises.compression import check_huffman_code_lengths, check_share_weights

# --- k-means weight sharing -------------------------------------------------------------------------


def _sharing(include_zeros=False, lloyd=True, keep_empty=True, iterations=10):
    """share_weights with one thing changed: the solution, or a typical mistake."""
    def share_weights(w, bits):
        k = 2 ** bits
        values = (w.reshape(-1) if include_zeros else w[w != 0]).double()
        codebook = torch.linspace(float(values.min()), float(values.max()), k, dtype=torch.float64)
        for _ in range(iterations if lloyd else 0):
            nearest = (values[:, None] - codebook[None, :]).abs().argmin(1)
            sums = torch.zeros(k, dtype=torch.float64).index_add_(0, nearest, values)
            counts = torch.bincount(nearest, minlength=k).double()
            codebook = torch.where(counts > 0, sums / counts.clamp(min=1), codebook) if keep_empty else sums / counts
        indices = torch.zeros(w.shape, dtype=torch.long)
        kept = w != 0
        indices[kept] = (w[kept].double()[:, None] - codebook[None, :]).abs().argmin(1)
        return codebook.float(), indices
    return share_weights


def _normalised_rounding(w, bits):
    """Uniform levels by rounding (w − min)/(max − min): no Lloyd, and 0/0 when every weight is equal."""
    k = 2 ** bits
    kept = w[w != 0]
    lo, hi = kept.min(), kept.max()
    codebook = lo + (hi - lo) * torch.arange(k) / (k - 1)
    indices = torch.zeros(w.shape, dtype=torch.long)
    indices[w != 0] = torch.round((kept - lo) / (hi - lo) * (k - 1)).long()
    return codebook, indices


def _dropping_empty(w, bits):
    """Returns only the centroids that kept weights (a shorter codebook)."""
    codebook, indices = _sharing()(w, bits)
    used = torch.unique(indices[w != 0])
    remap = torch.full((2 ** bits,), -1, dtype=torch.long)
    remap[used] = torch.arange(used.numel())
    return codebook[used], torch.where(w != 0, remap[indices], torch.zeros_like(indices))


def test_share_weights_checker_passes_the_solution():
    assert check_share_weights(_sharing(), show=False)


def test_share_weights_checker_passes_more_lloyd_iterations():
    assert check_share_weights(_sharing(iterations=30), show=False)


def test_share_weights_checker_fails_the_stub():
    report = check_share_weights(stub, show=False)
    assert not report and "not implemented" in report.failures[0]


def test_share_weights_checker_fails_clustering_the_zeros():
    report = check_share_weights(_sharing(include_zeros=True), show=False)
    assert not report
    assert any("pruned zeros" in f for f in report.failures)


def test_share_weights_checker_fails_without_lloyd_iterations():
    report = check_share_weights(_sharing(lloyd=False), show=False)
    assert not report
    assert any("linear initialisation alone" in f for f in report.failures)


def test_share_weights_checker_fails_an_empty_cluster_mean():
    report = check_share_weights(_sharing(keep_empty=False), show=False)
    assert not report
    assert any("NaN" in f for f in report.failures)


def test_share_weights_checker_fails_normalised_rounding():
    report = check_share_weights(_normalised_rounding, show=False)
    assert not report
    assert any("Lloyd" in f for f in report.failures)
    assert any(f.startswith("every kept weight equal") and "max − min = 0" in f for f in report.failures)


def test_share_weights_checker_fails_a_shorter_codebook():
    report = check_share_weights(_dropping_empty, show=False)
    assert not report
    assert any("centroids" in f for f in report.failures)


# --- Huffman code lengths ---------------------------------------------------------------------------


def huffman_code_lengths(counts):
    """The chapter's worked solution."""
    lengths = [0] * len(counts)
    heap = [(c, s, [s]) for s, c in enumerate(counts) if c > 0]
    heapq.heapify(heap)
    if len(heap) == 1:
        lengths[heap[0][2][0]] = 1
    tie = len(counts)
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (c1 + c2, tie, s1 + s2))
        tie += 1
    return lengths


def _fixed_length(counts):
    width = max(1, math.ceil(math.log2(sum(c > 0 for c in counts))))
    return [width if c > 0 else 0 for c in counts]


def _by_rank(counts):
    """The i-th most frequent symbol gets i + 1 bits (the last two share the deepest length)."""
    order = sorted((s for s, c in enumerate(counts) if c > 0), key=lambda s: -counts[s])
    lengths = [0] * len(counts)
    for rank, s in enumerate(order):
        lengths[s] = min(rank + 1, max(1, len(order) - 1))
    return lengths


def _shannon(counts):
    """ceil(−log2 p): a prefix code, but not an optimal one."""
    total = sum(counts)
    return [math.ceil(-math.log2(c / total)) if c > 0 else 0 for c in counts]


def _no_single_symbol_case(counts):
    """The solution without the one-symbol rule: a lone symbol gets 0 bits."""
    lengths = huffman_code_lengths(counts)
    if sum(c > 0 for c in counts) == 1:
        return [0] * len(counts)
    return lengths


def test_huffman_checker_passes_the_solution():
    assert check_huffman_code_lengths(huffman_code_lengths, show=False)


def test_huffman_checker_passes_numpy_and_tensor_answers():
    assert check_huffman_code_lengths(lambda c: np.array(huffman_code_lengths(c)), show=False)
    assert check_huffman_code_lengths(lambda c: torch.tensor(huffman_code_lengths(c)), show=False)


def test_huffman_checker_fails_the_stub():
    report = check_huffman_code_lengths(stub, show=False)
    assert not report and "not implemented" in report.failures[0]


def test_huffman_checker_fails_fixed_length_codes():
    report = check_huffman_code_lengths(_fixed_length, show=False)
    assert not report
    assert any("fixed-length code" in f for f in report.failures)


def test_huffman_checker_fails_lengths_by_rank():
    report = check_huffman_code_lengths(_by_rank, show=False)
    assert not report


def test_huffman_checker_fails_shannon_lengths():
    report = check_huffman_code_lengths(_shannon, show=False)
    assert not report
    assert any("< 1" in f for f in report.failures)


def test_huffman_checker_fails_a_zero_length_single_symbol():
    report = check_huffman_code_lengths(_no_single_symbol_case, show=False)
    assert not report
    assert any("one symbol" in f for f in report.failures)
