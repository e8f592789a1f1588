"""Deep Compression (Han, Mao & Dally, ICLR 2016) and the REAL serialized size and speed of every method.

Deep Compression is a three-stage pipeline on a trained network:

1. **prune** — magnitude pruning with retraining (Han et al. 2015; :mod:`lotterylib.masks`);
2. **quantize** — k-means weight sharing per layer (:func:`kmeans_1d`: 2^bits centroids, linearly
   initialised over [min, max] of the surviving weights, Lloyd iterations), then optional fine-tuning
   of the shared centroids, whose gradient is the sum of the gradients of the weights of each cluster
   (:class:`~lotterylib.weightfn.SharedWeights`, a weight function: ``codebook[codes] ⊙ mask``; the gather's backward *is*
   that per-cluster sum);
3. **Huffman-code** the cluster indices and the sparse positions (:func:`huffman_lengths`,
   :func:`huffman_encode`). Positions are stored as *relative* indices (the gap to the previous
   non-zero, row-major over the flattened layer) in ``index_bits`` bits — the paper uses 5 for fc
   and 8 for conv layers (§2, recalled; the library default is 5). A gap too large for the field is
   bridged by *filler* symbols (the paper's "zero padding"); here the filler is the largest field value
   and carries no weight code (the paper stores a zero weight with it), so it costs ``index_bits`` only.

Every size in this module is ``len(blob)`` of bytes that the matching ``deserialize_*`` turns back
into the same weights (tested): a dense float32 net, CSR sparse (values + column indices + row
pointers), seed + bit mask (:func:`lotterylib.deconstruct.pack_seed_mask`), bit-packed binary
layers (:func:`lotterylib.binary.packed_state`) and Deep Compression's codebook + Huffman streams.
All share one container format (:func:`pack_arrays`): magic, array count, then per array its name,
dtype, shape and raw little-endian bytes — so small cases can be counted by hand.

Speed: :func:`dense_runner` (torch float32 matmuls), :func:`csr_runner` (torch sparse CSR × dense),
:func:`binary_runner` (bit-packed weights and the XNOR + popcount kernel of :mod:`lotterylib.bitpack`)
and :func:`time_runners`, which times them interleaved in one process (warm-up, median of repeats).

Networks here are lists of layers ``[(W (out, in), b (out,)), ...]`` of one run (an MLP, ReLU between
layers), as :func:`mlp_params` extracts them from a population model.
"""

from __future__ import annotations

import heapq
import struct
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import bitpack, weightfn

Params = list[tuple[Tensor, Tensor]]

# --- checks -----------------------------------------------------------------------------------------


def _check_bits(name: str, bits: int) -> int:
    if isinstance(bits, bool) or int(bits) != bits or not 1 <= int(bits) <= 16:
        raise ValueError(f"{name} must be an integer in [1, 16], got {bits!r}")
    return int(bits)


def _check_params(params: Sequence[tuple[Tensor, Tensor]]) -> Params:
    if len(params) == 0:
        raise ValueError("a network needs at least one layer, got none")
    out = []
    for i, (w, b) in enumerate(params):
        w, b = torch.as_tensor(w), torch.as_tensor(b)
        if w.dim() != 2 or b.dim() != 1 or b.shape[0] != w.shape[0]:
            raise ValueError(f"layer {i}: need W (out, in) and b (out,), got {tuple(w.shape)} and {tuple(b.shape)}")
        if w.numel() == 0:
            raise ValueError(f"layer {i} is empty (shape {tuple(w.shape)})")
        if i and w.shape[1] != out[-1][0].shape[0]:
            raise ValueError(f"layer {i} takes {w.shape[1]} inputs but layer {i - 1} has {out[-1][0].shape[0]} outputs")
        out.append((w.detach().float().cpu(), b.detach().float().cpu()))
    return out


def mlp_params(model: nn.Module, run: int = 0) -> Params:
    """The effective weights ``[(W (out, in), b (out,))]`` of run ``run`` of a population MLP
    (weight functions applied, e.g. a mask or top-k), as float32 CPU tensors."""
    layers = list(model.prunable().values())
    out = []
    with torch.no_grad():
        for layer in layers:
            w = layer.weight[run]
            if w.dim() != 2:
                raise ValueError(f"mlp_params handles linear layers only, got a weight of shape {tuple(w.shape)}")
            out.append((w.detach().float().cpu().clone(), layer.bias[run].detach().float().cpu().clone()))
    return out


# --- stage 2: k-means weight sharing -----------------------------------------------------------------

def linear_init(values: Tensor, k: int) -> Tensor:
    """k centroids evenly spaced over [min, max] of ``values`` (n,) — the paper's best initialisation."""
    if values.numel() == 0:
        raise ValueError("cannot initialise centroids on an empty layer (no surviving weights)")
    lo, hi = float(values.min()), float(values.max())
    return torch.linspace(lo, hi, int(k), dtype=torch.float64)


def assign(values: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest centroid for each value: (n,) long. ``codebook`` (k,) need not be sorted."""
    order = torch.argsort(codebook)
    sorted_c = codebook[order].double()
    mids = (sorted_c[1:] + sorted_c[:-1]) / 2
    return order[torch.bucketize(values.double(), mids)]


def kmeans_1d(values: Tensor, bits: int, iterations: int = 10) -> tuple[Tensor, Tensor]:
    """k-means with k = 2^bits on the scalar ``values`` (n,): linear init, then ``iterations`` Lloyd steps.

    Returns ``(codebook (k,) float32, codes (n,) long)``. A centroid that loses all its points keeps
    its position (it stays in the codebook, unused). Vectorised: one bucketize and two bincounts per step.
    """
    bits = _check_bits("bits", bits)
    if iterations < 0:
        raise ValueError(f"iterations must be ≥ 0, got {iterations}")
    v = torch.as_tensor(values).detach().reshape(-1).double().cpu()
    k = 2 ** bits
    c = linear_init(v, k)
    for _ in range(int(iterations)):
        a = assign(v, c)
        counts = torch.bincount(a, minlength=k).double()
        sums = torch.bincount(a, weights=v, minlength=k)
        c = torch.where(counts > 0, sums / counts.clamp_min(1.0), c)
    return c.float(), assign(v, c)


@dataclass
class SharedLayer:
    """One layer after weight sharing: W = codebook[codes] at kept positions, 0 elsewhere.

    ``codebook`` (k,) float32; ``codes`` (out, in) long (meaningless where ``mask`` is 0);
    ``mask`` (out, in) bool; ``bias`` (out,) float32.
    """

    codebook: Tensor
    codes: Tensor
    mask: Tensor
    bias: Tensor

    @property
    def bits(self) -> int:
        return max(1, int(np.ceil(np.log2(self.codebook.numel()))))

    def weight(self) -> Tensor:
        return torch.where(self.mask, self.codebook[self.codes], torch.zeros((), dtype=self.codebook.dtype))


def share_weights(params: Sequence[tuple[Tensor, Tensor]], bits: int | Sequence[int], iterations: int = 10) -> list[SharedLayer]:
    """k-means weight sharing of every layer on its non-zero weights; ``bits`` one number or one per layer."""
    params = _check_params(params)
    per_layer = [bits] * len(params) if isinstance(bits, (int, np.integer)) else list(bits)
    if len(per_layer) != len(params):
        raise ValueError(f"need one bit width per layer ({len(params)}), got {len(per_layer)}")
    out = []
    for i, ((w, b), nb) in enumerate(zip(params, per_layer)):
        mask = w != 0
        if not bool(mask.any()):
            raise ValueError(f"layer {i} has no non-zero weight to share")
        codebook, codes = kmeans_1d(w[mask], nb, iterations)
        full = torch.zeros(w.shape, dtype=torch.long)
        full[mask] = codes
        out.append(SharedLayer(codebook, full, mask, b.clone()))
    return out


def shared_params(layers: Sequence[SharedLayer]) -> Params:
    """The dense ``[(W, b)]`` a list of shared layers stands for."""
    return [(s.weight(), s.bias.clone()) for s in layers]


def attach_shared(model: nn.Module, runs_layers: Sequence[Sequence[SharedLayer]]) -> nn.Module:
    """Attach :class:`~lotterylib.weightfn.SharedWeights` to every prunable layer of a population ``model``.

    ``runs_layers[r][l]``: the shared layer ``l`` of run ``r`` (every run's layer must have the same
    number of centroids). Biases are copied and frozen; only the codebooks should be trained
    (:func:`codebook_parameters`).
    """
    layers = list(model.prunable().values())
    if len(runs_layers) != model.runs or any(len(r) != len(layers) for r in runs_layers):
        raise ValueError(f"need {model.runs} runs × {len(layers)} shared layers")
    for l, layer in enumerate(layers):
        ks = {r[l].codebook.numel() for r in runs_layers}
        if len(ks) != 1:
            raise ValueError(f"layer {l}: runs have different codebook sizes {sorted(ks)}")
        with torch.no_grad():
            layer.bias.copy_(torch.stack([r[l].bias for r in runs_layers]))
            weightfn.stored(layer).zero_()
        layer.bias.requires_grad_(False)
        weightfn.stored(layer).requires_grad_(False)
        weightfn.attach(layer, weightfn.SharedWeights(torch.stack([r[l].codebook for r in runs_layers]),
                                             torch.stack([r[l].codes for r in runs_layers]),
                                             torch.stack([r[l].mask for r in runs_layers])))
    return model


def codebook_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The centroids of every :class:`~lotterylib.weightfn.SharedWeights` of ``model`` (what centroid fine-tuning trains)."""
    out = [fn.codebook for layer in model.prunable().values() for fn in weightfn.functions(layer)
           if isinstance(fn, weightfn.SharedWeights)]
    if not out:
        raise ValueError("the model has no shared weights attached (see attach_shared)")
    return out


def read_shared(model: nn.Module) -> list[list[SharedLayer]]:
    """The (possibly fine-tuned) shared layers of every run of a model built by :func:`attach_shared`."""
    layers = list(model.prunable().values())
    out: list[list[SharedLayer]] = [[] for _ in range(model.runs)]
    for layer in layers:
        fn = next(f for f in weightfn.functions(layer) if isinstance(f, weightfn.SharedWeights))
        for r in range(model.runs):
            out[r].append(SharedLayer(fn.codebook[r].detach().cpu().clone(), fn.codes[r].cpu().clone(),
                                      fn.mask[r].cpu() > 0, layer.bias[r].detach().cpu().clone()))
    return out


# --- stage 3: Huffman coding ------------------------------------------------------------------------

def huffman_lengths(freqs: Sequence[int] | np.ndarray) -> np.ndarray:
    """Code length of every symbol of an optimal prefix code for ``freqs`` (n,) ≥ 0: (n,) uint8.

    Unused symbols (frequency 0) get length 0; a single used symbol gets length 1. Ties are broken by
    symbol order, so the result is deterministic. The loop runs over the alphabet, not the data.
    """
    f = np.asarray(freqs)
    if f.ndim != 1 or f.size == 0:
        raise ValueError(f"need a non-empty 1-D frequency table, got shape {f.shape}")
    if np.any(f < 0) or not np.all(f == np.round(f)):
        raise ValueError("frequencies must be non-negative integers")
    used = np.flatnonzero(f)
    lengths = np.zeros(f.size, dtype=np.int64)
    if used.size == 0:
        raise ValueError("nothing to encode: every frequency is 0")
    if used.size == 1:
        lengths[used[0]] = 1
        return lengths.astype(np.uint8)
    # heap of (weight, tie-break, symbols in this subtree); merging deepens every symbol by one
    heap = [(int(f[s]), i, [int(s)]) for i, s in enumerate(used)]
    heapq.heapify(heap)
    tie = len(heap)
    while len(heap) > 1:
        w1, _, s1 = heapq.heappop(heap)
        w2, _, s2 = heapq.heappop(heap)
        lengths[s1] += 1
        lengths[s2] += 1
        heapq.heappush(heap, (w1 + w2, tie, s1 + s2))
        tie += 1
    if lengths.max() > 63:
        raise ValueError(f"Huffman code longer than 63 bits ({lengths.max()}); frequencies too skewed")
    return lengths.astype(np.uint8)


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical Huffman codes (as integers, MSB first) for code ``lengths`` (n,): (n,) uint64.

    Symbols are ordered by (length, symbol); each code is the previous one plus one, shifted left
    when the length grows — so the lengths alone define the code (that is all the blob stores).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = np.zeros(lengths.size, dtype=np.uint64)
    order = np.lexsort((np.arange(lengths.size), lengths))
    order = order[lengths[order] > 0]
    code, prev = 0, 0
    for s in order:
        code <<= int(lengths[s]) - prev
        prev = int(lengths[s])
        codes[s] = code
        code += 1
    return codes


def huffman_encode(symbols: np.ndarray, lengths: np.ndarray) -> bytes:
    """Concatenate the canonical codes of ``symbols`` (m,) into bytes (MSB first, zero-padded). Vectorised."""
    symbols = np.asarray(symbols, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if symbols.size and (symbols.min() < 0 or symbols.max() >= lengths.size or np.any(lengths[symbols] == 0)):
        raise ValueError("a symbol to encode has no code (outside the alphabet or of frequency 0)")
    codes = canonical_codes(lengths)
    ln = lengths[symbols]
    total = int(ln.sum())
    if total == 0:
        return b""
    owner = np.repeat(np.arange(symbols.size), ln)
    start = np.cumsum(ln) - ln
    within = np.arange(total) - start[owner]
    shift = (ln[owner] - 1 - within).astype(np.uint64)
    bits = ((codes[symbols][owner] >> shift) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits).tobytes()


@numba.njit(cache=True)
def _canonical_decode(bits, count, first_code, first_index, per_length, sorted_symbols):  # pragma: no cover
    out = np.empty(count, dtype=np.int64)
    pos = 0
    for i in range(count):
        code = 0
        length = 0
        while True:
            if length + 1 >= first_code.shape[0]:
                raise ValueError("corrupt Huffman stream: no code matches")
            code = (code << 1) | bits[pos]
            pos += 1
            length += 1
            offset = code - first_code[length]
            if offset < per_length[length]:
                out[i] = sorted_symbols[first_index[length] + offset]
                break
    return out


def huffman_decode(data: bytes, lengths: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` symbols (int64) that :func:`huffman_encode` wrote into ``data`` with these ``lengths``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if lengths.max(initial=0) == 0:
        raise ValueError("the code has no symbols")
    maxlen = int(lengths.max())
    order = np.lexsort((np.arange(lengths.size), lengths))
    order = order[lengths[order] > 0]
    per_length = np.bincount(lengths[order], minlength=maxlen + 1).astype(np.int64)
    first_code = np.zeros(maxlen + 1, dtype=np.int64)
    first_index = np.zeros(maxlen + 1, dtype=np.int64)
    code, index = 0, 0
    for ln in range(1, maxlen + 1):
        code = (code + per_length[ln - 1]) << 1 if ln > 1 else 0
        first_code[ln] = code
        first_index[ln] = index
        index += per_length[ln]
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(np.int64)
    if bits.size < int(lengths[order].min()) * count:
        raise ValueError("the bit stream is too short for that many symbols")
    # pad so a truncated stream cannot read past the end inside the compiled loop
    bits = np.concatenate([bits, np.zeros(maxlen, dtype=np.int64)])
    return _canonical_decode(bits, int(count), first_code, first_index, per_length, order.astype(np.int64))


def encoded_bits(freqs: np.ndarray, lengths: np.ndarray) -> int:
    """Σ freq·length: the bits a Huffman stream of that histogram takes (before byte padding)."""
    return int(np.sum(np.asarray(freqs, dtype=np.int64) * np.asarray(lengths, dtype=np.int64)))


# --- relative indices ------------------------------------------------------------------------------

def relative_indices(positions: np.ndarray, index_bits: int) -> np.ndarray:
    """Encode sorted flat positions (n,) as ``index_bits``-bit gap symbols, with fillers.

    With M = 2^index_bits − 1: symbol s < M means "the next non-zero is s + 1 after the previous one"
    (the first counts from position −1); symbol M is a filler, "advance M positions, no weight".
    A gap g becomes ⌊(g−1)/M⌋ fillers followed by (g−1) mod M. Returns the symbols (int64), one
    per non-zero plus one per filler.
    """
    index_bits = _check_bits("index_bits", index_bits)
    p = np.asarray(positions, dtype=np.int64)
    if p.ndim != 1:
        raise ValueError(f"positions must be 1-D, got shape {p.shape}")
    if p.size and (p[0] < 0 or np.any(np.diff(p) <= 0)):
        raise ValueError("positions must be non-negative and strictly increasing")
    big = 2 ** index_bits - 1
    gaps = np.diff(np.concatenate([[-1], p])) - 1  # ≥ 0
    fillers = gaps // big
    rest = gaps % big
    out = np.full(int(fillers.sum()) + p.size, big, dtype=np.int64)
    out[np.cumsum(fillers + 1) - 1] = rest
    return out


def absolute_positions(symbols: np.ndarray, index_bits: int) -> np.ndarray:
    """Inverse of :func:`relative_indices`: the flat positions of the non-zeros (int64)."""
    index_bits = _check_bits("index_bits", index_bits)
    s = np.asarray(symbols, dtype=np.int64)
    big = 2 ** index_bits - 1
    advance = np.where(s == big, big, s + 1)
    return (np.cumsum(advance) - 1)[s != big]


# --- fixed-width bit packing --------------------------------------------------------------------------

def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Unsigned integers (n,) in [0, 2^bits) as n·bits bits, MSB first, zero-padded to a byte."""
    bits = _check_bits("bits", bits)
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    if v.size and (v.min() < 0 or v.max() >= 2 ** bits):
        raise ValueError(f"values must lie in [0, {2 ** bits}) to fit {bits} bits")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    return np.packbits(((v[:, None] >> shifts) & 1).astype(np.uint8).reshape(-1)).tobytes()


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``count`` integers (int64)."""
    bits = _check_bits("bits", bits)
    raw = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    if raw.size < bits * count:
        raise ValueError(f"{len(data)} bytes cannot hold {count} values of {bits} bits")
    m = raw[: bits * count].reshape(count, bits).astype(np.int64)
    return (m << np.arange(bits - 1, -1, -1, dtype=np.int64)).sum(1)


# --- the container -------------------------------------------------------------------------------

_MAGIC = b"LTC1"
_DTYPES = {np.dtype(t): i for i, t in enumerate(
    (np.uint8, np.uint16, np.uint32, np.uint64, np.int64, np.float32, np.float64, np.int32))}
_DTYPE_OF = {i: t for t, i in _DTYPES.items()}


def array_record_bytes(name: str, array: np.ndarray) -> int:
    """Bytes one array takes in :func:`pack_arrays`: 1 + len(name) + 1 (dtype) + 1 (ndim) + 4·ndim + data."""
    return 3 + len(name.encode()) + 4 * array.ndim + array.nbytes


def pack_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise named arrays: ``LTC1``, uint32 count, then per array: uint8 name length, name (UTF-8),
    uint8 dtype code, uint8 ndim, uint32 shape × ndim, raw little-endian data. Size = 8 + Σ
    :func:`array_record_bytes`."""
    parts = [_MAGIC, struct.pack("<I", len(arrays))]
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.dtype not in _DTYPES:
            raise ValueError(f"array {name!r}: unsupported dtype {a.dtype}")
        nb = name.encode()
        if not 0 < len(nb) < 256 or a.ndim > 255:
            raise ValueError(f"array name must have 1–255 bytes and ≤ 255 dims: {name!r}")
        parts += [struct.pack("<B", len(nb)), nb, struct.pack("<BB", _DTYPES[a.dtype], a.ndim),
                  struct.pack(f"<{a.ndim}I", *a.shape), a.astype(a.dtype.newbyteorder("<")).tobytes()]
    return b"".join(parts)


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_arrays`."""
    if blob[:4] != _MAGIC:
        raise ValueError("not a lotterylib container (bad magic bytes)")
    (n,) = struct.unpack_from("<I", blob, 4)
    pos, out = 8, {}
    for _ in range(n):
        (ln,) = struct.unpack_from("<B", blob, pos)
        name = blob[pos + 1:pos + 1 + ln].decode()
        pos += 1 + ln
        code, ndim = struct.unpack_from("<BB", blob, pos)
        pos += 2
        shape = struct.unpack_from(f"<{ndim}I", blob, pos)
        pos += 4 * ndim
        dt = _DTYPE_OF[code].newbyteorder("<")
        size = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        out[name] = np.frombuffer(blob, dtype=dt, count=size // dt.itemsize, offset=pos).reshape(shape).astype(dt.newbyteorder("="))
        pos += size
    if pos != len(blob):
        raise ValueError(f"{len(blob) - pos} trailing bytes after the last array")
    return out


def _smallest_uint(limit: int) -> np.dtype:
    """The smallest unsigned dtype holding values up to ``limit``."""
    for t in (np.uint8, np.uint16, np.uint32):
        if limit <= np.iinfo(t).max:
            return np.dtype(t)
    return np.dtype(np.uint64)


# --- formats ------------------------------------------------------------------------------------

def serialize_dense(params: Sequence[tuple[Tensor, Tensor]]) -> bytes:
    """Every weight and bias as float32: arrays ``{l}.w`` (out, in) and ``{l}.b`` (out,)."""
    params = _check_params(params)
    arrays = {}
    for i, (w, b) in enumerate(params):
        arrays[f"{i}.w"], arrays[f"{i}.b"] = w.numpy(), b.numpy()
    return pack_arrays(arrays)


def deserialize_dense(blob: bytes) -> Params:
    a = unpack_arrays(blob)
    return [(torch.from_numpy(a[f"{i}.w"].copy()), torch.from_numpy(a[f"{i}.b"].copy()))
            for i in range(len(a) // 2)]


def serialize_csr(params: Sequence[tuple[Tensor, Tensor]]) -> bytes:
    """CSR sparse layers: ``{l}.shape`` uint32 (2,), ``{l}.rowptr`` (out+1,) and ``{l}.col`` (nnz,) in
    the smallest unsigned type that fits, ``{l}.val`` float32 (nnz,), ``{l}.b`` float32 (out,)."""
    params = _check_params(params)
    arrays = {}
    for i, (w, b) in enumerate(params):
        wn = w.numpy()
        rows, cols = np.nonzero(wn)
        rowptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=wn.shape[0]))])
        arrays[f"{i}.shape"] = np.asarray(wn.shape, dtype=np.uint32)
        arrays[f"{i}.rowptr"] = rowptr.astype(_smallest_uint(int(rowptr[-1])))
        arrays[f"{i}.col"] = cols.astype(_smallest_uint(wn.shape[1] - 1))
        arrays[f"{i}.val"] = wn[rows, cols].astype(np.float32)
        arrays[f"{i}.b"] = b.numpy()
    return pack_arrays(arrays)


def deserialize_csr(blob: bytes) -> Params:
    a = unpack_arrays(blob)
    out = []
    for i in range(len(a) // 5):
        shape = tuple(int(s) for s in a[f"{i}.shape"])
        rowptr = a[f"{i}.rowptr"].astype(np.int64)
        w = np.zeros(shape, dtype=np.float32)
        rows = np.repeat(np.arange(shape[0]), np.diff(rowptr))
        w[rows, a[f"{i}.col"].astype(np.int64)] = a[f"{i}.val"]
        out.append((torch.from_numpy(w), torch.from_numpy(a[f"{i}.b"].copy())))
    return out


def serialize_deep_compression(layers: Sequence[SharedLayer], index_bits: int | Sequence[int] = 5,
                               huffman: bool = True) -> bytes:
    """Deep Compression's storage of shared layers.

    Per layer ``l``: ``{l}.shape`` uint32 (2,), ``{l}.n`` uint32 (2,) = (non-zeros, index symbols),
    ``{l}.codebook`` float32 (k,), ``{l}.b`` float32 (out,), and the two streams ``{l}.wcode`` (cluster
    index of each non-zero, row-major) and ``{l}.icode`` (relative-index symbols, see
    :func:`relative_indices`). With ``huffman`` the streams are canonical Huffman codes and the code
    lengths are stored as ``{l}.wlen`` (k,) and ``{l}.ilen`` (2^index_bits,) uint8; without, every
    symbol takes exactly ⌈log2 k⌉ / ``index_bits`` bits (the paper's "P+Q" column).
    """
    if len(layers) == 0:
        raise ValueError("need at least one layer")
    ib = [index_bits] * len(layers) if isinstance(index_bits, (int, np.integer)) else list(index_bits)
    if len(ib) != len(layers):
        raise ValueError(f"need one index width per layer ({len(layers)}), got {len(ib)}")
    arrays: dict[str, np.ndarray] = {}
    for i, (s, bits_i) in enumerate(zip(layers, ib)):
        bits_i = _check_bits("index_bits", bits_i)
        k = s.codebook.numel()
        flat_mask = s.mask.reshape(-1).numpy()
        pos = np.flatnonzero(flat_mask)
        if pos.size == 0:
            raise ValueError(f"layer {i} has no non-zero weight")
        wsym = s.codes.reshape(-1).numpy()[pos].astype(np.int64)
        isym = relative_indices(pos, bits_i)
        arrays[f"{i}.shape"] = np.asarray(s.mask.shape, dtype=np.uint32)
        arrays[f"{i}.n"] = np.asarray([pos.size, isym.size], dtype=np.uint32)
        arrays[f"{i}.ib"] = np.asarray([bits_i], dtype=np.uint8)
        arrays[f"{i}.codebook"] = s.codebook.float().numpy()
        arrays[f"{i}.b"] = s.bias.float().numpy()
        if huffman:
            wlen = huffman_lengths(np.bincount(wsym, minlength=k))
            ilen = huffman_lengths(np.bincount(isym, minlength=2 ** bits_i))
            arrays[f"{i}.wlen"], arrays[f"{i}.ilen"] = wlen, ilen
            arrays[f"{i}.wcode"] = np.frombuffer(huffman_encode(wsym, wlen), dtype=np.uint8)
            arrays[f"{i}.icode"] = np.frombuffer(huffman_encode(isym, ilen), dtype=np.uint8)
        else:
            arrays[f"{i}.wcode"] = np.frombuffer(pack_bits(wsym, s.bits), dtype=np.uint8)
            arrays[f"{i}.icode"] = np.frombuffer(pack_bits(isym, bits_i), dtype=np.uint8)
    return pack_arrays(arrays)


def deserialize_deep_compression(blob: bytes) -> list[SharedLayer]:
    """Inverse of :func:`serialize_deep_compression` (Huffman-coded or fixed-width streams)."""
    a = unpack_arrays(blob)
    out = []
    i = 0
    while f"{i}.shape" in a:
        shape = tuple(int(x) for x in a[f"{i}.shape"])
        nnz, nsym = (int(x) for x in a[f"{i}.n"])
        bits_i = int(a[f"{i}.ib"][0])
        codebook = torch.from_numpy(a[f"{i}.codebook"].copy())
        k = codebook.numel()
        if f"{i}.wlen" in a:
            wsym = huffman_decode(a[f"{i}.wcode"].tobytes(), a[f"{i}.wlen"], nnz)
            isym = huffman_decode(a[f"{i}.icode"].tobytes(), a[f"{i}.ilen"], nsym)
        else:
            wsym = unpack_bits(a[f"{i}.wcode"].tobytes(), max(1, int(np.ceil(np.log2(k)))), nnz)
            isym = unpack_bits(a[f"{i}.icode"].tobytes(), bits_i, nsym)
        pos = absolute_positions(isym, bits_i)
        codes = np.zeros(int(np.prod(shape)), dtype=np.int64)
        mask = np.zeros(int(np.prod(shape)), dtype=bool)
        codes[pos], mask[pos] = wsym, True
        out.append(SharedLayer(codebook, torch.from_numpy(codes.reshape(shape)), torch.from_numpy(mask.reshape(shape)),
                               torch.from_numpy(a[f"{i}.b"].copy())))
        i += 1
    return out


def serialize_binary(model: nn.Module, run: int = 0) -> bytes:
    """A :class:`~lotterylib.binary.BinaryNet` run as deployed: binary layers bit-packed (+ α per row),
    the rest float32 (:func:`lotterylib.binary.packed_state`), in the container format."""
    from .binary import packed_state
    return pack_arrays(packed_state(model, run))


def stream_bits(layers: Sequence[SharedLayer], index_bits: int = 5) -> dict:
    """Bits per non-zero of the weight and index streams, fixed-width vs Huffman (the paper's Table 2).

    Returns ``{"nonzeros", "weight_bits", "weight_bits_huffman", "index_bits", "index_bits_huffman",
    "fillers"}`` summed over layers (bits per non-zero weight averaged over the whole network).
    """
    nnz = w_fixed = w_huff = i_fixed = i_huff = fillers = 0
    for s in layers:
        pos = np.flatnonzero(s.mask.reshape(-1).numpy())
        wsym = s.codes.reshape(-1).numpy()[pos]
        isym = relative_indices(pos, index_bits)
        wf = np.bincount(wsym, minlength=s.codebook.numel())
        isf = np.bincount(isym, minlength=2 ** index_bits)
        nnz += pos.size
        w_fixed += pos.size * s.bits
        w_huff += encoded_bits(wf, huffman_lengths(wf))
        i_fixed += isym.size * index_bits
        i_huff += encoded_bits(isf, huffman_lengths(isf))
        fillers += isym.size - pos.size
    return {"nonzeros": nnz, "weight_bits": w_fixed / nnz, "weight_bits_huffman": w_huff / nnz,
            "index_bits": i_fixed / nnz, "index_bits_huffman": i_huff / nnz, "fillers": fillers}


# --- inference: the forward each storage format runs --------------------------------------------

def dense_runner(params: Sequence[tuple[Tensor, Tensor]]) -> Callable[[Tensor], Tensor]:
    """``x (B, in) → logits (B, out)`` with float32 dense matmuls (ReLU between layers)."""
    params = _check_params(params)
    ws = [(w.contiguous(), b.contiguous()) for w, b in params]

    @torch.no_grad()
    def forward(x: Tensor) -> Tensor:
        h = x
        for i, (w, b) in enumerate(ws):
            h = F.linear(h, w, b)
            if i < len(ws) - 1:
                h = torch.relu(h)
        return h
    return forward


def csr_runner(params: Sequence[tuple[Tensor, Tensor]]) -> Callable[[Tensor], Tensor]:
    """``x (B, in) → logits (B, out)`` with torch sparse CSR × dense products (activations kept as
    (features, B) between layers so no transpose is needed inside)."""
    params = _check_params(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        ws = [(w.to_sparse_csr(), b.unsqueeze(1).contiguous()) for w, b in params]

    @torch.no_grad()
    def forward(x: Tensor) -> Tensor:
        h = x.T.contiguous()
        for i, (w, b) in enumerate(ws):
            h = torch.sparse.mm(w, h) + b
            if i < len(ws) - 1:
                h = torch.relu(h)
        return h.T
    return forward


def binary_runner(model: nn.Module, run: int = 0, kernel: str = "xnor") -> Callable[[Tensor], Tensor]:
    """``x (B, in) → logits`` of run ``run`` of a fully connected :class:`~lotterylib.binary.BinaryNet`
    (no conv layers, eval mode). Each binary layer is BatchNorm (eval statistics, folded to one scale
    and shift) → activation → product → + bias; full-precision layers use ``F.linear``.

    ``kernel="xnor"`` (sign activations only): the weights are bit-packed once, here, and the product
    is XNOR + popcount on packed operands (:func:`lotterylib.bitpack.xnor_matmul`), times α per row —
    as :func:`lotterylib.binary.predict_packed`, which packs the weights on every call.
    ``kernel="float"``: the same network with a float32 matmul on the ±α weights (for BWN, whose
    activations are real, this is the only choice).
    """
    from .binary import BinaryBlock, _effective
    if kernel not in ("xnor", "float"):
        raise ValueError(f"unknown kernel {kernel!r}; choose 'xnor' or 'float'")
    if len(getattr(model, "convs", [])) or model.training:
        raise ValueError("binary_runner needs a BinaryNet without conv layers, in eval mode")
    steps = []
    with torch.no_grad():
        for block in model.fcs:
            if isinstance(block, BinaryBlock):
                if block.input_scale:
                    raise ValueError("binary_runner does not handle XNOR's K scaling")
                sign = block.act.kind == "sign"
                if kernel == "xnor" and not sign:
                    raise ValueError("the XNOR kernel needs sign activations (XNOR-Net / BNN, not BWN)")
                layer, bn = block.layer, block.norm.bn
                f = layer.in_features
                sl = slice(run * f, (run + 1) * f)
                scale = (bn.weight[sl] if bn.weight is not None else 1.0) / torch.sqrt(bn.running_var[sl] + bn.eps)
                shift = (bn.bias[sl] if bn.bias is not None else 0.0) - bn.running_mean[sl] * scale
                w = _effective(layer)[run].clone()
                alpha = w.abs().amax(1).clone()
                packed = bitpack.pack_signs(w) if kernel == "xnor" else None
                steps.append(("bin", scale.clone(), shift.clone(), w, packed, alpha, layer.bias[run].clone(), sign))
            else:
                steps.append(("fp", _effective(block)[run].clone(), block.bias[run].clone()))

    @torch.no_grad()
    def forward(x: Tensor) -> Tensor:
        h = x
        for i, st in enumerate(steps):
            if st[0] == "bin":
                _, scale, shift, w, packed, alpha, bias, sign = st
                xn = h * scale + shift
                if packed is not None:
                    ints = bitpack.xnor_matmul(bitpack.pack_signs(xn.numpy(), check=False), packed, w.shape[1])
                    h = torch.from_numpy(ints).float() * alpha + bias
                else:
                    h = F.linear(torch.where(xn >= 0, 1.0, -1.0) if sign else xn, w, bias)
            else:
                h = F.linear(h, st[1], st[2])
            if i < len(steps) - 1:
                h = torch.relu(h)
        return h
    return forward


def time_runners(runners: Mapping[str, Callable[[Tensor], Tensor]], x: Tensor, *, repeats: int = 7,
                 warmup: int = 2, inner: int = 1, threads: int = 1) -> dict[str, float]:
    """Median seconds per call of each runner on ``x``, timed in interleaved rounds in this process.

    ``warmup`` untimed calls each first (compilation, caches); then ``repeats`` rounds, each timing
    every runner over ``inner`` calls, so load from other processes hits all of them alike. torch and
    numba use ``threads`` threads while timing (restored afterwards).
    """
    if repeats < 1 or warmup < 0 or inner < 1 or threads < 1:
        raise ValueError("repeats, inner and threads must be ≥ 1, warmup ≥ 0")
    if not runners:
        raise ValueError("no runners to time")
    old_torch, old_numba = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for fn in runners.values():
            for _ in range(warmup):
                fn(x)
        times: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(repeats):
            for name, fn in runners.items():
                t0 = time.perf_counter()
                for _ in range(inner):
                    fn(x)
                times[name].append((time.perf_counter() - t0) / inner)
    finally:
        torch.set_num_threads(old_torch)
        numba.set_num_threads(old_numba)
    return {k: float(np.median(v)) for k, v in times.items()}


@torch.no_grad()
def runner_accuracy(runner: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, batch_size: int = 2500) -> float:
    """Accuracy of a runner's logits on (x (n, in), y (n,))."""
    hits = 0
    for i in range(0, x.shape[0], batch_size):
        hits += int((runner(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum())
    return hits / x.shape[0]
