"""Bit-packed ±1 matrices and the XNOR + popcount matrix product that makes binary networks fast.

A ±1 vector of length K is stored as ⌈K/64⌉ ``uint64`` words, one bit per entry (bit ``t`` of word
``w`` is entry ``64·w + t``; 1 means +1, 0 means −1; the padding bits past K are 0). For two such
vectors, +1·+1 = −1·−1 = +1 and the mixed products are −1, so

    Σ_t a_t·b_t = K − 2·popcount(a XOR b)        (the padding bits are 0 in both, so they XOR to 0)

— an exact integer, obtained with one XOR and one population count per 64 products (XNOR-Net §3.2
writes it with XNOR; the count of equal bits is K − popcount(a XOR b)). :func:`xnor_matmul` is that
product for whole matrices, compiled with numba: a 4×4 register block of output entries, the
inner loop over the words vectorised by LLVM into AVX-512 ``vpopcntq`` where the CPU has it.

Also here: :func:`speedup_formula` (XNOR-Net §4.1, Fig. 4), k-bit code packing for the size
accounting of DoReFa layers (:func:`pack_codes`), and :func:`benchmark`, which times the kernel
against float32 ``torch.matmul`` on the same shapes in the same process.
"""

from __future__ import annotations

import io
import time
from typing import Mapping

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

WORD = 64


# --- packing -----------------------------------------------------------------------------------

def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def words(k: int) -> int:
    """Number of uint64 words that hold ``k`` bits."""
    if k < 1:
        raise ValueError(f"need at least one bit per row, got k={k}")
    return (int(k) + WORD - 1) // WORD


def pack_signs(x, check: bool = True) -> np.ndarray:
    """Pack the signs of ``x`` (..., K) into bits: ``uint64`` (..., ⌈K/64⌉); x ≥ 0 → 1, x < 0 → 0.

    sign(0) counts as +1, as in :class:`lotterylib.weightfn.SignScale`. Padding bits are 0.
    Accepts numpy arrays and torch tensors (any real dtype). ``check=False`` skips the input
    validation (the NaN scan costs about as much as the packing itself).
    """
    a = _as_numpy(x)
    if check:
        if a.ndim < 1 or a.shape[-1] < 1:
            raise ValueError(f"pack_signs needs an array with a non-empty last dim, got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise ValueError(f"pack_signs needs real numbers, got dtype {a.dtype}")
        if np.issubdtype(a.dtype, np.floating) and np.isnan(a).any():
            raise ValueError("pack_signs: the input contains NaN, whose sign is undefined")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    k = a.shape[-1]
    rows = np.ascontiguousarray(a.reshape(-1, k))
    out = np.empty((rows.shape[0], words(k)), dtype=np.uint64)
    _pack_rows(rows, out)
    return out.reshape(a.shape[:-1] + (out.shape[1],))


@njit(cache=True)
def _pack_rows(x, out):  # pragma: no cover - compiled
    r, k = x.shape
    for i in range(r):
        for t in range(out.shape[1]):
            base = t * 64
            word = numba.uint64(0)
            for j in range(min(64, k - base)):
                if x[i, base + j] >= 0:
                    word |= numba.uint64(1) << numba.uint64(j)
            out[i, t] = word


def unpack_signs(packed: np.ndarray, k: int) -> np.ndarray:
    """Inverse of :func:`pack_signs`: (..., W) uint64 → (..., k) float32 of ±1."""
    packed = np.ascontiguousarray(packed, dtype=np.uint64)
    if packed.ndim < 1 or packed.shape[-1] != words(k):
        raise ValueError(f"{k} bits need {words(k)} words per row, got shape {packed.shape}")
    bits = np.unpackbits(packed.view(np.uint8), axis=-1, bitorder="little")[..., :k]
    return np.where(bits.astype(bool), np.float32(1.0), np.float32(-1.0))


def pack_codes(codes, bits: int) -> np.ndarray:
    """Pack unsigned integer codes in [0, 2^bits) (..., K) as ``bits`` bit-planes: (bits, ..., ⌈K/64⌉) uint64.

    Plane b holds bit b of every code, so a k-bit layer costs exactly k bits per weight plus padding.
    """
    c = _as_numpy(codes)
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in [1, 16], got {bits}")
    if c.size and (c.min() < 0 or c.max() >= 2 ** bits or not np.all(c == np.round(c))):
        raise ValueError(f"codes must be integers in [0, {2 ** bits}), got range [{c.min()}, {c.max()}]")
    c = c.astype(np.int64)
    # plane b: +1 where bit b is set; pack_signs maps ≥0 → 1, so feed bit − ½.
    return np.stack([pack_signs(((c >> b) & 1) - 0.5) for b in range(bits)])


def unpack_codes(planes: np.ndarray, k: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: (bits, ..., W) → int64 codes (..., k)."""
    out = None
    for b in range(planes.shape[0]):
        bit = (unpack_signs(planes[b], k) > 0).astype(np.int64) << b
        out = bit if out is None else out | bit
    return out


def serialized_bytes(arrays: Mapping[str, np.ndarray]) -> int:
    """Bytes of ``arrays`` written as one uncompressed ``.npz`` file (headers included): a real size."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    return buf.getbuffer().nbytes


# --- the kernel --------------------------------------------------------------------------------

@intrinsic
def _popcount64(typingctx, x):
    """LLVM's ctpop on a uint64; vectorises to vpopcntq with AVX-512 VPOPCNTDQ."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)

    return sig, codegen


@njit(parallel=True, cache=True)
def _xnor_naive(a, b, k, out):  # pragma: no cover - compiled
    m, w = a.shape
    n = b.shape[0]
    for i in prange(m):
        for j in range(n):
            s = numba.uint64(0)
            for t in range(w):
                s += _popcount64(a[i, t] ^ b[j, t])
            out[i, j] = k - 2 * np.int64(s)


@njit(parallel=True, cache=True)
def _xnor_blocked(a, b, k, out):  # pragma: no cover - compiled
    # 4×4 block of outputs kept in registers; the loop over words is vectorised by LLVM
    # (16 vector accumulators, 8 vector loads per 16 XOR + popcount + add).
    m, w = a.shape
    n = b.shape[0]
    m4 = m - m % 4
    n4 = n - n % 4
    for ib in prange(m4 // 4):
        i = ib * 4
        for j in range(0, n4, 4):
            c00 = c01 = c02 = c03 = numba.uint64(0)
            c10 = c11 = c12 = c13 = numba.uint64(0)
            c20 = c21 = c22 = c23 = numba.uint64(0)
            c30 = c31 = c32 = c33 = numba.uint64(0)
            for t in range(w):
                a0 = a[i, t]
                a1 = a[i + 1, t]
                a2 = a[i + 2, t]
                a3 = a[i + 3, t]
                b0 = b[j, t]
                b1 = b[j + 1, t]
                b2 = b[j + 2, t]
                b3 = b[j + 3, t]
                c00 += _popcount64(a0 ^ b0)
                c01 += _popcount64(a0 ^ b1)
                c02 += _popcount64(a0 ^ b2)
                c03 += _popcount64(a0 ^ b3)
                c10 += _popcount64(a1 ^ b0)
                c11 += _popcount64(a1 ^ b1)
                c12 += _popcount64(a1 ^ b2)
                c13 += _popcount64(a1 ^ b3)
                c20 += _popcount64(a2 ^ b0)
                c21 += _popcount64(a2 ^ b1)
                c22 += _popcount64(a2 ^ b2)
                c23 += _popcount64(a2 ^ b3)
                c30 += _popcount64(a3 ^ b0)
                c31 += _popcount64(a3 ^ b1)
                c32 += _popcount64(a3 ^ b2)
                c33 += _popcount64(a3 ^ b3)
            out[i, j] = k - 2 * np.int64(c00)
            out[i, j + 1] = k - 2 * np.int64(c01)
            out[i, j + 2] = k - 2 * np.int64(c02)
            out[i, j + 3] = k - 2 * np.int64(c03)
            out[i + 1, j] = k - 2 * np.int64(c10)
            out[i + 1, j + 1] = k - 2 * np.int64(c11)
            out[i + 1, j + 2] = k - 2 * np.int64(c12)
            out[i + 1, j + 3] = k - 2 * np.int64(c13)
            out[i + 2, j] = k - 2 * np.int64(c20)
            out[i + 2, j + 1] = k - 2 * np.int64(c21)
            out[i + 2, j + 2] = k - 2 * np.int64(c22)
            out[i + 2, j + 3] = k - 2 * np.int64(c23)
            out[i + 3, j] = k - 2 * np.int64(c30)
            out[i + 3, j + 1] = k - 2 * np.int64(c31)
            out[i + 3, j + 2] = k - 2 * np.int64(c32)
            out[i + 3, j + 3] = k - 2 * np.int64(c33)
        for j in range(n4, n):  # leftover columns of this row block
            for r in range(4):
                s = numba.uint64(0)
                for t in range(w):
                    s += _popcount64(a[i + r, t] ^ b[j, t])
                out[i + r, j] = k - 2 * np.int64(s)
    for i in prange(m4, m):  # leftover rows
        for j in range(n):
            s = numba.uint64(0)
            for t in range(w):
                s += _popcount64(a[i, t] ^ b[j, t])
            out[i, j] = k - 2 * np.int64(s)


_xnor_naive_serial = njit(cache=True)(_xnor_naive.py_func)
_xnor_blocked_serial = njit(cache=True)(_xnor_blocked.py_func)


def _kernel(kernel: str):
    """The compiled kernel: the parallel version when numba may use several threads, else the serial
    one (a parallel launch costs tens of microseconds, which small products notice)."""
    if kernel not in ("blocked", "naive"):
        raise ValueError(f"unknown kernel {kernel!r}; choose 'blocked' or 'naive'")
    parallel = numba.get_num_threads() > 1
    if kernel == "blocked":
        return _xnor_blocked if parallel else _xnor_blocked_serial
    return _xnor_naive if parallel else _xnor_naive_serial


def _check_operands(a: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    if a.dtype != np.uint64 or b.dtype != np.uint64:
        raise ValueError(f"xnor_matmul needs uint64 packed operands (see pack_signs), got {a.dtype} and {b.dtype}")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"xnor_matmul needs 2-D operands (rows, words), got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[1] or a.shape[1] != words(k):
        raise ValueError(f"k={k} bits need {words(k)} words per row; got operands with "
                         f"{a.shape[1]} and {b.shape[1]} words")
    return a, b


def xnor_matmul(a: np.ndarray, b: np.ndarray, k: int, *, kernel: str = "blocked") -> np.ndarray:
    """Exact ±1 product A·Bᵀ from bit-packed rows: (M, W) and (N, W) uint64 → (M, N) int64.

    ``a`` = ``pack_signs(A)`` for A (M, k) and ``b`` = ``pack_signs(B)`` for B (N, k) (B is given by
    rows, as a linear layer's weight). Entry (i, j) is Σ_t A_it·B_jt = k − 2·popcount(a_i XOR b_j).
    ``kernel``: ``"blocked"`` (4×4 register block, vectorised) or ``"naive"`` (one output at a time).
    Runs on numba's threads (``numba.set_num_threads``).
    """
    fn = _kernel(kernel)
    a, b = _check_operands(a, b, k)
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.int64)
    fn(a, b, int(k), out)
    return out


def xnor_matmul_numpy(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Reference (slow, memory M·N·W) version of :func:`xnor_matmul` with ``np.bitwise_count``."""
    a, b = _check_operands(a, b, k)
    return int(k) - 2 * np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(-1, dtype=np.int64)


# --- speed: the paper's formula and a measurement ------------------------------------------------

def speedup_formula(c, n_w):
    """XNOR-Net §4.1: S = 64·c·N_W / (c·N_W + 64) — binary ops count 1/64, plus one FP op per output.

    ``c`` input channels, ``n_w`` filter area. For a matrix product the dot length K plays c·N_W.
    """
    c, n_w = np.asarray(c, dtype=float), np.asarray(n_w, dtype=float)
    if np.any(c <= 0) or np.any(n_w <= 0):
        raise ValueError("speedup_formula needs positive c and n_w")
    return 64.0 * c * n_w / (c * n_w + 64.0)


def _timed(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def paired_timing(ref, new, repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Time ``ref`` and ``new`` in alternation, each over a window of about the same length.

    ``new`` is called ``inner ≈ t_ref / t_new`` times per round, so that load from other processes on
    a shared machine hits both windows alike. Returns per-call times of ``ref`` and ``new`` and the
    per-round ratios t_ref / t_new (their median is the robust speed-up).
    """
    t_ref0 = min(_timed(ref, 1) for _ in range(2))
    t_new0 = min(_timed(new, 1) for _ in range(2))
    inner = max(1, min(1000, int(round(t_ref0 / max(t_new0, 1e-9)))))
    t_ref, t_new = [], []
    for _ in range(repeats):
        t_ref.append(_timed(ref, 1))
        t_new.append(_timed(new, inner))
    return t_ref, t_new, [a / b for a, b in zip(t_ref, t_new)]


def benchmark(m: int = 1024, k: int = 4096, n: int = 1024, *, threads: int = 1, repeats: int = 5,
              seed: int = 0, naive: bool = False, check: bool = True) -> dict:
    """Time ``xnor_matmul`` against float32 ``torch.matmul`` of the same ±1 matrices, same threads.

    (M, K)·(K, N): torch multiplies float32 A (M, K) by Bᵀ (K, N); the kernel multiplies the packed
    rows. The two are timed in alternation over windows of equal length (:func:`paired_timing`,
    ``repeats`` rounds after a warm-up); ``ratio`` is the median of the per-round ratios
    t_torch / t_xnor, ``ratio_best`` the ratio of the fastest calls. The packing of the activations
    (A) is timed separately — the weights are packed once, offline. ``check`` verifies that the
    kernel's integers equal the float product exactly. Also returns median times in seconds, the
    float32 GFLOP/s torch reached (low values mean a busy machine) and the formula's S(K).
    """
    if min(m, k, n, threads, repeats) < 1:
        raise ValueError("m, k, n, threads and repeats must be ≥ 1")
    rng = np.random.default_rng(seed)
    a = np.where(rng.random((m, k)) < 0.5, -1.0, 1.0).astype(np.float32)
    b = np.where(rng.random((n, k)) < 0.5, -1.0, 1.0).astype(np.float32)
    ta, tbt = torch.from_numpy(a), torch.from_numpy(np.ascontiguousarray(b.T))
    pa, pb = pack_signs(a), pack_signs(b)
    out = np.empty((m, n), dtype=np.int64)
    old_torch, old_numba = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    kern = _kernel("blocked")
    try:
        ref = torch.matmul(ta, tbt)
        kern(pa, pb, k, out)
        exact = bool(np.array_equal(out, ref.numpy().astype(np.int64))) if check else None
        t_torch, t_xnor, ratios = paired_timing(lambda: torch.matmul(ta, tbt), lambda: kern(pa, pb, k, out), repeats)
        _, t_pack, _ = paired_timing(lambda: torch.matmul(ta, tbt), lambda: pack_signs(a, check=False),
                                     max(1, repeats // 2))
        if naive:
            slow = _kernel("naive")
            _, t_naive, r_naive = paired_timing(lambda: torch.matmul(ta, tbt), lambda: slow(pa, pb, k, out), repeats)
    finally:
        torch.set_num_threads(old_torch)
        numba.set_num_threads(old_numba)
    med = lambda xs: float(np.median(xs))  # noqa: E731
    t_x, t_p = med(t_xnor), med(t_pack)
    res = {"m": m, "k": k, "n": n, "threads": threads, "repeats": repeats,
           "t_torch": med(t_torch), "t_xnor": t_x, "t_pack_a": t_p, "exact": exact,
           "ratio": med(ratios), "ratios": [float(r) for r in ratios],
           "ratio_best": min(t_torch) / min(t_xnor),
           "ratio_with_packing": med(ratios) * t_x / (t_x + t_p),
           "torch_gflops": 2.0 * m * k * n / min(t_torch) / 1e9,
           "formula": float(speedup_formula(k, 1))}
    if naive:
        res["t_naive"] = med(t_naive)
        res["ratio_naive"] = med(r_naive)
    return res
