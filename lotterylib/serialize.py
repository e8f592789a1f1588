"""The byte formats of networks: one container of named arrays and the dense, CSR and binary formats.

Networks here are lists of layers ``[(W (out, in), b (out,)), ...]`` of one run (an MLP, ReLU between
layers), as :func:`mlp_params` extracts them from a population model.

Every size the book reports is ``len(blob)`` of bytes that the matching ``deserialize_*`` turns back
into the same weights (tested): a dense float32 net (:func:`serialize_dense`), CSR sparse (values +
column indices + row pointers, :func:`serialize_csr`), bit-packed binary layers
(:func:`serialize_binary`, :func:`lotterylib.binary.packed_state`); seed + bit mask
(:func:`lotterylib.deconstruct.pack_seed_mask`) and Deep Compression's codebook + Huffman streams
(:func:`lotterylib.compression.serialize_deep_compression`) are written elsewhere. All share one
container format (:func:`pack_arrays`): magic, array count, then per array its name, dtype, shape
and raw little-endian bytes — so small cases can be counted by hand. :func:`pack_bits` writes
fixed-width unsigned integers (Deep Compression's streams without Huffman coding).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

Params = list[tuple[Tensor, Tensor]]

# --- checks -----------------------------------------------------------------------------------------


def check_bits(name: str, bits: int) -> int:
    """``bits`` as an int if it is an integer in [1, 16] (a field width), else ValueError naming ``name``."""
    if isinstance(bits, bool) or int(bits) != bits or not 1 <= int(bits) <= 16:
        raise ValueError(f"{name} must be an integer in [1, 16], got {bits!r}")
    return int(bits)


def check_params(params: Sequence[tuple[Tensor, Tensor]]) -> Params:
    """``params`` as float32 CPU ``[(W (out, in), b (out,))]`` after checking that the layers chain;
    ValueError otherwise."""
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


# --- fixed-width bit packing --------------------------------------------------------------------------

def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Unsigned integers (n,) in [0, 2^bits) as n·bits bits, MSB first, zero-padded to a byte."""
    bits = check_bits("bits", bits)
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    if v.size and (v.min() < 0 or v.max() >= 2 ** bits):
        raise ValueError(f"values must lie in [0, {2 ** bits}) to fit {bits} bits")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    return np.packbits(((v[:, None] >> shifts) & 1).astype(np.uint8).reshape(-1)).tobytes()


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``count`` integers (int64)."""
    bits = check_bits("bits", bits)
    raw = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    if raw.size < bits * count:
        raise ValueError(f"{len(data)} bytes cannot hold {count} values of {bits} bits")
    m = raw[: bits * count].reshape(count, bits).astype(np.int64)
    return (m << np.arange(bits - 1, -1, -1, dtype=np.int64)).sum(1)


# --- the container -------------------------------------------------------------------------------

_MAGIC = b"LTC1"
_HEADER_BYTES = len(_MAGIC) + 4  # magic + uint32 array count
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
    params = check_params(params)
    arrays = {}
    for i, (w, b) in enumerate(params):
        arrays[f"{i}.w"], arrays[f"{i}.b"] = w.numpy(), b.numpy()
    return pack_arrays(arrays)


def deserialize_dense(blob: bytes) -> Params:
    a = unpack_arrays(blob)
    return [(torch.from_numpy(a[f"{i}.w"].copy()), torch.from_numpy(a[f"{i}.b"].copy()))
            for i in range(len(a) // 2)]


def _csr_dtypes(shape: tuple[int, int], nnz: int) -> tuple[np.dtype, np.dtype]:
    """(row-pointer dtype, column-index dtype) of a CSR layer of ``shape`` with ``nnz`` non-zeros."""
    return _smallest_uint(int(nnz)), _smallest_uint(int(shape[1]) - 1)


def serialize_csr(params: Sequence[tuple[Tensor, Tensor]]) -> bytes:
    """CSR sparse layers: ``{l}.shape`` uint32 (2,), ``{l}.rowptr`` (out+1,) and ``{l}.col`` (nnz,) in
    the smallest unsigned type that fits, ``{l}.val`` float32 (nnz,), ``{l}.b`` float32 (out,)."""
    params = check_params(params)
    arrays = {}
    for i, (w, b) in enumerate(params):
        wn = w.numpy()
        rows, cols = np.nonzero(wn)
        rowptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=wn.shape[0]))])
        rp_type, col_type = _csr_dtypes(wn.shape, rows.size)
        arrays[f"{i}.shape"] = np.asarray(wn.shape, dtype=np.uint32)
        arrays[f"{i}.rowptr"] = rowptr.astype(rp_type)
        arrays[f"{i}.col"] = cols.astype(col_type)
        arrays[f"{i}.val"] = wn[rows, cols].astype(np.float32)
        arrays[f"{i}.b"] = b.numpy()
    return pack_arrays(arrays)


def csr_nbytes(layers: Sequence[tuple[tuple[int, int], int]]) -> int:
    """``len(serialize_csr(params))`` for layers of these ``((out, in), non-zeros)``, without building them
    (to choose a sparsity that fills a byte budget)."""
    total = _HEADER_BYTES
    for i, (shape, nnz) in enumerate(layers):
        out, _ = (int(x) for x in shape)
        rp_type, col_type = _csr_dtypes(shape, nnz)
        for name, dtype, n in (("shape", np.uint32, 2), ("rowptr", rp_type, out + 1), ("col", col_type, nnz),
                               ("val", np.float32, nnz), ("b", np.float32, out)):
            total += array_record_bytes(f"{i}.{name}", np.empty(int(n), dtype=dtype))
    return total


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


def serialize_binary(model: nn.Module, run: int = 0) -> bytes:
    """A :class:`~lotterylib.binary.BinaryNet` run as deployed: binary layers bit-packed (+ α per row),
    the rest float32 (:func:`lotterylib.binary.packed_state`), in the container format."""
    from .binary import packed_state
    return pack_arrays(packed_state(model, run))
