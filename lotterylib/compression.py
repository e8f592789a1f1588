"""Deep Compression (Han, Mao & Dally, ICLR 2016): prune, share weights by k-means, Huffman-code.

Deep Compression is a three-stage pipeline on a trained network:

1. **prune** — magnitude pruning with retraining (Han et al. 2015; :mod:`lotterylib.masks`);
2. **quantize** — k-means weight sharing per layer (:func:`kmeans_1d`: 2^bits centroids, Lloyd
   iterations from one of the paper's three initialisations (§3.2, :data:`INITS`): *linear* over
   [min, max] of the weights (the paper's choice), *density-based* (evenly spaced on the CDF) or
   *Forgy* (k weights drawn at random)), then optional fine-tuning
   of the shared centroids, whose gradient is the sum of the gradients of the weights of each cluster
   (:class:`~lotterylib.weightfn.SharedWeights`, a weight function: ``codebook[codes] ⊙ mask``; the gather's backward *is*
   that per-cluster sum);
3. **Huffman-code** the cluster indices and the sparse positions (:func:`huffman_lengths`,
   :func:`huffman_encode`). Positions are stored as *relative* indices (the gap to the previous
   non-zero, row-major over the flattened layer) in ``index_bits`` bits — the paper encodes the
   difference in 5 bits for fc and 8 for conv layers (§2; the library default is 5). A gap too large for the field is
   bridged by *filler* symbols (the paper's "zero padding"); here the filler is the largest field value
   and carries no weight code (the paper stores a zero weight with it), so it costs ``index_bits`` only.

The blob :func:`serialize_deep_compression` writes is the codebooks and the two streams in the
container format of :mod:`lotterylib.serialize`; :func:`deserialize_deep_compression` turns it back
into the same shared layers (tested). :func:`stream_bits` counts the bits per non-zero of each stream
(the paper's Table 2). Networks are lists of layers ``[(W (out, in), b (out,)), ...]`` of one run
(:func:`lotterylib.serialize.mlp_params`). Quantisation without pruning is the same stage on a dense
network (every weight is a survivor); its layers store no position stream.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import torch
from torch import Tensor, nn

from . import weightfn
from .seeds import derive
from .serialize import Params, check_bits, check_params, pack_arrays, pack_bits, unpack_arrays, unpack_bits

# --- stage 2: k-means weight sharing -----------------------------------------------------------------

def _init_values(values: Tensor) -> Tensor:
    v = torch.as_tensor(values).detach().reshape(-1).double().cpu()
    if v.numel() == 0:
        raise ValueError("cannot initialise centroids on an empty layer (no surviving weights)")
    return v


def linear_init(values: Tensor, k: int) -> Tensor:
    """k centroids evenly spaced over [min, max] of ``values`` (n,) — the paper's best initialisation."""
    v = _init_values(values)
    return torch.linspace(float(v.min()), float(v.max()), int(k), dtype=torch.float64)


def density_init(values: Tensor, k: int) -> Tensor:
    """Density-based initialisation (Deep Compression §3.2): k levels evenly spaced on the y-axis of the
    weights' CDF, each mapped back to the weight where the CDF reaches it — the quantiles at
    (i + ½)/k, i = 0 … k−1, so that every centroid stands for an equal share of the weights.

    (The paper does not say where on [0, 1] the k levels sit; the midpoints are the reading under
    which, as it says, few centroids land on the rare large weights: the extremes get none.)
    """
    v = _init_values(values)
    levels = (torch.arange(int(k), dtype=torch.float64) + 0.5) / int(k)
    return torch.quantile(v, levels)


def forgy_init(values: Tensor, k: int, seed: int = 0) -> Tensor:
    """Forgy (random) initialisation (Deep Compression §3.2): k of the weights drawn at random, without
    replacement, as the initial centroids (``seed`` fixes the draw)."""
    v = _init_values(values)
    if v.numel() < int(k):
        raise ValueError(f"Forgy initialisation needs at least k = {k} weights, got {v.numel()}")
    g = torch.Generator().manual_seed(int(seed))
    return v[torch.randperm(v.numel(), generator=g)[:int(k)]]


#: The paper's three centroid initialisations (§3.2, Fig. 4 and Fig. 8).
INITS = ("linear", "density", "forgy")


def init_centroids(values: Tensor, k: int, init: str = "linear", seed: int = 0) -> Tensor:
    """k initial centroids (float64) of ``values`` by ``init`` (one of :data:`INITS`); ``seed`` is used by Forgy only."""
    if init == "linear":
        return linear_init(values, k)
    if init == "density":
        return density_init(values, k)
    if init == "forgy":
        return forgy_init(values, k, seed)
    raise ValueError(f"unknown centroid initialisation {init!r}; choose one of {', '.join(INITS)}")


def assign(values: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest centroid for each value: (n,) long. ``codebook`` (k,) need not be sorted."""
    order = torch.argsort(codebook)
    sorted_c = codebook[order].double()
    mids = (sorted_c[1:] + sorted_c[:-1]) / 2
    return order[torch.bucketize(values.double(), mids)]


def kmeans_1d(values: Tensor, bits: int, iterations: int = 10, init: str = "linear",
              seed: int = 0) -> tuple[Tensor, Tensor]:
    """k-means with k = 2^bits on the scalar ``values`` (n,): ``init`` (:data:`INITS`; ``seed`` for
    Forgy), then ``iterations`` Lloyd steps.

    Returns ``(codebook (k,) float32, codes (n,) long)``. A centroid that loses all its points keeps
    its position (it stays in the codebook, unused). Vectorised: one bucketize and two bincounts per step.
    """
    bits = check_bits("bits", bits)
    if iterations < 0:
        raise ValueError(f"iterations must be ≥ 0, got {iterations}")
    v = torch.as_tensor(values).detach().reshape(-1).double().cpu()
    k = 2 ** bits
    c = init_centroids(v, k, init, seed)
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


def share_weights(params: Sequence[tuple[Tensor, Tensor]], bits: int | Sequence[int], iterations: int = 10,
                  init: str = "linear", seed: int = 0) -> list[SharedLayer]:
    """k-means weight sharing of every layer on its non-zero weights; ``bits`` one number or one per layer.

    ``init``: the centroid initialisation (:data:`INITS`); Forgy draws layer ``l``'s centroids with
    seed ``derive(seed, "forgy", l)``. On a dense network this is quantisation without pruning.
    """
    params = check_params(params)
    per_layer = [bits] * len(params) if isinstance(bits, (int, np.integer)) else list(bits)
    if len(per_layer) != len(params):
        raise ValueError(f"need one bit width per layer ({len(params)}), got {len(per_layer)}")
    out = []
    for i, ((w, b), nb) in enumerate(zip(params, per_layer)):
        mask = w != 0
        if not bool(mask.any()):
            raise ValueError(f"layer {i} has no non-zero weight to share")
        codebook, codes = kmeans_1d(w[mask], nb, iterations, init, derive(seed, "forgy", i))
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
    index_bits = check_bits("index_bits", index_bits)
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
    index_bits = check_bits("index_bits", index_bits)
    s = np.asarray(symbols, dtype=np.int64)
    big = 2 ** index_bits - 1
    advance = np.where(s == big, big, s + 1)
    return (np.cumsum(advance) - 1)[s != big]


# --- the stored format ---------------------------------------------------------------------------

def serialize_deep_compression(layers: Sequence[SharedLayer], index_bits: int | Sequence[int] = 5,
                               huffman: bool = True) -> bytes:
    """Deep Compression's storage of shared layers.

    Per layer ``l``: ``{l}.shape`` uint32 (2,), ``{l}.n`` uint32 (2,) = (non-zeros, index symbols),
    ``{l}.codebook`` float32 (k,), ``{l}.b`` float32 (out,), and the two streams ``{l}.wcode`` (cluster
    index of each non-zero, row-major) and ``{l}.icode`` (relative-index symbols, see
    :func:`relative_indices`). With ``huffman`` the streams are canonical Huffman codes and the code
    lengths are stored as ``{l}.wlen`` (k,) and ``{l}.ilen`` (2^index_bits,) uint8; without, every
    symbol takes exactly ⌈log2 k⌉ / ``index_bits`` bits (the paper's "P+Q" column).

    A layer whose mask keeps every weight (quantisation without pruning) has no position to store:
    it is written without ``{l}.icode``/``{l}.ilen`` (and ``{l}.n`` = (weights, 0)).
    """
    if len(layers) == 0:
        raise ValueError("need at least one layer")
    ib = [index_bits] * len(layers) if isinstance(index_bits, (int, np.integer)) else list(index_bits)
    if len(ib) != len(layers):
        raise ValueError(f"need one index width per layer ({len(layers)}), got {len(ib)}")
    arrays: dict[str, np.ndarray] = {}
    for i, (s, bits_i) in enumerate(zip(layers, ib)):
        bits_i = check_bits("index_bits", bits_i)
        k = s.codebook.numel()
        flat_mask = s.mask.reshape(-1).numpy()
        pos = np.flatnonzero(flat_mask)
        if pos.size == 0:
            raise ValueError(f"layer {i} has no non-zero weight")
        wsym = s.codes.reshape(-1).numpy()[pos].astype(np.int64)
        isym = _position_symbols(pos, flat_mask.size, bits_i)
        arrays[f"{i}.shape"] = np.asarray(s.mask.shape, dtype=np.uint32)
        arrays[f"{i}.n"] = np.asarray([pos.size, isym.size], dtype=np.uint32)
        arrays[f"{i}.ib"] = np.asarray([bits_i], dtype=np.uint8)
        arrays[f"{i}.codebook"] = s.codebook.float().numpy()
        arrays[f"{i}.b"] = s.bias.float().numpy()
        if huffman:
            wlen = huffman_lengths(np.bincount(wsym, minlength=k))
            arrays[f"{i}.wlen"] = wlen
            arrays[f"{i}.wcode"] = np.frombuffer(huffman_encode(wsym, wlen), dtype=np.uint8)
            if isym.size:
                ilen = huffman_lengths(np.bincount(isym, minlength=2 ** bits_i))
                arrays[f"{i}.ilen"] = ilen
                arrays[f"{i}.icode"] = np.frombuffer(huffman_encode(isym, ilen), dtype=np.uint8)
        else:
            arrays[f"{i}.wcode"] = np.frombuffer(pack_bits(wsym, s.bits), dtype=np.uint8)
            if isym.size:
                arrays[f"{i}.icode"] = np.frombuffer(pack_bits(isym, bits_i), dtype=np.uint8)
    return pack_arrays(arrays)


def _position_symbols(positions: np.ndarray, size: int, index_bits: int) -> np.ndarray:
    """The relative-index symbols of a layer's kept ``positions`` (none when it keeps all ``size``)."""
    if positions.size == size:
        return np.zeros(0, dtype=np.int64)
    return relative_indices(positions, index_bits)


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
        else:
            wsym = unpack_bits(a[f"{i}.wcode"].tobytes(), max(1, int(np.ceil(np.log2(k)))), nnz)
        if f"{i}.icode" not in a:  # every weight kept: no position stream
            pos = np.arange(nnz, dtype=np.int64)
        elif f"{i}.ilen" in a:
            pos = absolute_positions(huffman_decode(a[f"{i}.icode"].tobytes(), a[f"{i}.ilen"], nsym), bits_i)
        else:
            pos = absolute_positions(unpack_bits(a[f"{i}.icode"].tobytes(), bits_i, nsym), bits_i)
        codes = np.zeros(int(np.prod(shape)), dtype=np.int64)
        mask = np.zeros(int(np.prod(shape)), dtype=bool)
        codes[pos], mask[pos] = wsym, True
        out.append(SharedLayer(codebook, torch.from_numpy(codes.reshape(shape)), torch.from_numpy(mask.reshape(shape)),
                               torch.from_numpy(a[f"{i}.b"].copy())))
        i += 1
    return out


def stream_bits(layers: Sequence[SharedLayer], index_bits: int = 5) -> dict:
    """Bits per non-zero of the weight and index streams, fixed-width vs Huffman (the paper's Table 2).

    Returns ``{"nonzeros", "weight_bits", "weight_bits_huffman", "index_bits", "index_bits_huffman",
    "fillers"}`` summed over layers (bits per non-zero weight averaged over the whole network).
    """
    nnz = w_fixed = w_huff = i_fixed = i_huff = fillers = 0
    for s in layers:
        flat = s.mask.reshape(-1).numpy()
        pos = np.flatnonzero(flat)
        wsym = s.codes.reshape(-1).numpy()[pos]
        isym = _position_symbols(pos, flat.size, index_bits)
        wf = np.bincount(wsym, minlength=s.codebook.numel())
        nnz += pos.size
        w_fixed += pos.size * s.bits
        w_huff += encoded_bits(wf, huffman_lengths(wf))
        i_fixed += isym.size * index_bits
        if isym.size:
            isf = np.bincount(isym, minlength=2 ** index_bits)
            i_huff += encoded_bits(isf, huffman_lengths(isf))
        fillers += isym.size - pos.size
    return {"nonzeros": nnz, "weight_bits": w_fixed / nnz, "weight_bits_huffman": w_huff / nnz,
            "index_bits": i_fixed / nnz, "index_bits_huffman": i_huff / nnz, "fillers": fillers}
