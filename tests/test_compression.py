"""Deep Compression's stages (lotterylib.compression), the byte formats (lotterylib.serialize) and the
forward passes that run them (lotterylib.runners)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lotterylib import binary, deconstruct, models, train, weightfn
from lotterylib import compression as C
from lotterylib import runners as R
from lotterylib import serialize as S


def _params(seed: int = 0, density: float = 0.3) -> S.Params:
    g = torch.Generator().manual_seed(seed)
    out, widths = [], [20, 12, 5]
    for a, b in itertools.pairwise(widths):
        w = torch.randn(b, a, generator=g) * (torch.rand(b, a, generator=g) < density)
        out.append((w, torch.randn(b, generator=g)))
    return out


# --- k-means ----------------------------------------------------------------------------------------

def test_kmeans_centroids_in_range_and_better_than_linear():
    v = torch.cat([torch.randn(500) * 0.05 - 0.3, torch.randn(2000) * 0.02, torch.randn(300) * 0.1 + 0.5])
    book, codes = C.kmeans_1d(v, 3, iterations=10)
    assert book.shape == (8,) and codes.shape == v.shape and codes.dtype == torch.long
    assert float(book.min()) >= float(v.min()) - 1e-6 and float(book.max()) <= float(v.max()) + 1e-6
    lin = C.linear_init(v, 8).float()
    err_linear = float(((v - lin[C.assign(v, lin)]) ** 2).mean())
    err_kmeans = float(((v - book[codes]) ** 2).mean())
    assert err_kmeans < 0.8 * err_linear
    assert torch.equal(C.assign(v, book), codes)  # codes are the nearest centroids


def test_kmeans_zero_iterations_is_linear_init():
    v = torch.tensor([0.0, 1.0, 2.0, 3.0])
    book, codes = C.kmeans_1d(v, 2, iterations=0)
    assert torch.allclose(book, torch.tensor([0.0, 1.0, 2.0, 3.0]))
    assert codes.tolist() == [0, 1, 2, 3]


def test_density_init_is_equal_mass_quantiles():
    v = torch.arange(100.0)
    # levels (i + 1/2)/4 on the CDF; torch.quantile interpolates at q·(n − 1)
    assert torch.allclose(C.density_init(v, 4), torch.tensor([12.375, 37.125, 61.875, 86.625], dtype=torch.float64))
    book = C.density_init(torch.randn(10_000, generator=torch.Generator().manual_seed(0)), 16)
    assert torch.all(book[1:] > book[:-1])


def test_forgy_init_draws_k_distinct_observations():
    v = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    a, b = C.forgy_init(v, 16, seed=1), C.forgy_init(v, 16, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, C.forgy_init(v, 16, seed=2))
    assert len(set(a.tolist())) == 16 and set(a.tolist()) <= set(v.double().tolist())
    with pytest.raises(ValueError, match="at least k"):
        C.forgy_init(v[:3], 4)
    with pytest.raises(ValueError, match="unknown centroid initialisation"):
        C.init_centroids(v, 4, "kmeans++")


def test_only_linear_init_gives_the_rare_large_weights_centroids():
    """The paper's argument (§3.2): after pruning the weights are bimodal with few large ones; Forgy and
    density-based initialisation put (almost) no centroid on them, linear initialisation does."""
    g = torch.Generator().manual_seed(0)
    lobes = torch.cat([torch.randn(5000, generator=g) * 0.01 + 0.05, torch.randn(5000, generator=g) * 0.01 - 0.05])
    v = torch.cat([lobes, torch.linspace(0.1, 0.3, 20), -torch.linspace(0.1, 0.3, 20)])
    large = lambda c: int((c.abs() > 0.1).sum())  # noqa: E731
    assert large(C.linear_init(v, 16)) >= 8
    assert large(C.density_init(v, 16)) == 0 and large(C.forgy_init(v, 16, seed=0)) <= 1


@pytest.mark.parametrize("init", C.INITS)
def test_kmeans_from_every_init_assigns_nearest_centroids(init):
    v = torch.randn(3000, generator=torch.Generator().manual_seed(3))
    book, codes = C.kmeans_1d(v, 3, iterations=5, init=init, seed=4)
    assert book.shape == (8,) and torch.equal(C.assign(v, book), codes)
    shared = C.share_weights(_params(), 2, init=init, seed=5)
    assert all(len(torch.unique(s.weight()[s.mask])) <= 4 for s in shared)


def test_forgy_share_weights_depends_on_the_seed_only():
    params = _params(density=1.0)
    a, b, c = (C.share_weights(params, 2, 0, init="forgy", seed=s) for s in (0, 0, 1))
    assert all(torch.equal(x.codebook, y.codebook) for x, y in zip(a, b))
    assert not all(torch.equal(x.codebook, z.codebook) for x, z in zip(a, c))


def test_share_weights_keeps_zeros_and_uses_k_values():
    params = _params()
    shared = C.share_weights(params, 2)
    for (w, b), s in zip(params, shared):
        q = s.weight()
        assert torch.equal(q != 0, w != 0)
        assert len(torch.unique(q[q != 0])) <= 4
        assert torch.equal(s.bias, b)


@pytest.mark.parametrize("bits", [0, 17, 2.5, -1])
def test_bad_bits(bits):
    with pytest.raises(ValueError, match="bits"):
        C.kmeans_1d(torch.randn(10), bits)


def test_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        C.kmeans_1d(torch.zeros(0), 3)
    with pytest.raises(ValueError, match="no non-zero"):
        C.share_weights([(torch.zeros(3, 4), torch.zeros(3))], 2)
    with pytest.raises(ValueError, match="W \\(out, in\\)"):
        S.serialize_dense([(torch.zeros(3, 4), torch.zeros(4))])
    with pytest.raises(ValueError, match="inputs"):
        S.serialize_csr([(torch.ones(3, 4), torch.zeros(3)), (torch.ones(2, 5), torch.zeros(2))])
    with pytest.raises(ValueError, match="one bit width per layer"):
        C.share_weights(_params(), [2])
    with pytest.raises(ValueError, match="index_bits"):
        C.relative_indices(np.array([1, 2]), 0)
    with pytest.raises(ValueError, match="increasing"):
        C.relative_indices(np.array([3, 2]), 4)
    with pytest.raises(ValueError, match="fit 3 bits"):
        S.pack_bits(np.array([8]), 3)
    with pytest.raises(ValueError, match="magic"):
        S.unpack_arrays(b"XXXX\x00\x00\x00\x00")


# --- centroid fine-tuning ------------------------------------------------------------------------------

def test_shared_weights_gradient_is_sum_per_cluster():
    codebook = torch.tensor([[1.0, -2.0, 0.5]])
    codes = torch.tensor([[[0, 1, 2], [1, 1, 0]]])
    mask = torch.tensor([[[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]])
    fn = weightfn.SharedWeights(codebook, codes, mask)
    w = fn(torch.zeros(1, 2, 3))
    assert torch.equal(w, torch.tensor([[[1.0, -2.0, 0.0], [-2.0, -2.0, 1.0]]]))
    upstream = torch.arange(6.0).reshape(1, 2, 3)
    (w * upstream).sum().backward()
    # cluster 0: positions (0,0), (1,2) → 0 + 5; cluster 1: (0,1), (1,0), (1,1) → 1 + 3 + 4; cluster 2 masked out
    assert fn.codebook.grad.tolist() == [[5.0, 8.0, 0.0]]


def test_centroid_finetuning_trains_only_codebooks(mnist_small):
    model = models.MLP(2, [784, 16, 10]).reset_parameters([0, 1])
    per_run = [C.share_weights(S.mlp_params(model, r), 2) for r in range(2)]
    C.attach_shared(model, per_run)
    before = [l.weight.detach().clone() for l in model.prunable().values()]
    train.train(model, mnist_small, train.TrainConfig(iterations=5, eval_every=5, lr=1e-2), [0, 1], progress=False,
                trainable=C.codebook_parameters)
    after = C.read_shared(model)
    for l, layer in enumerate(model.prunable().values()):
        w = layer.weight.detach()
        assert torch.equal(w != 0, before[l] != 0)  # the sparsity pattern (and codes) do not move
        assert len(torch.unique(w[0][w[0] != 0])) <= 4
        assert torch.allclose(after[0][l].weight(), w[0])


# --- Huffman -----------------------------------------------------------------------------------------

def test_huffman_optimal_on_known_table():
    freqs = np.array([45, 13, 12, 16, 9, 5])  # CLRS's example: an optimal code costs 224 bits
    lengths = C.huffman_lengths(freqs)
    assert C.encoded_bits(freqs, lengths) == 224
    assert sorted(lengths.tolist()) == [1, 3, 3, 3, 4, 4]
    assert np.sum(2.0 ** -lengths.astype(float)) == 1.0  # Kraft: a complete prefix code


def test_huffman_roundtrip_and_entropy_bound():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(40) * 0.3)
    sym = rng.choice(40, size=5000, p=p)
    freqs = np.bincount(sym, minlength=40)
    lengths = C.huffman_lengths(freqs)
    assert np.all((lengths == 0) == (freqs == 0))
    blob = C.huffman_encode(sym, lengths)
    assert len(blob) == (C.encoded_bits(freqs, lengths) + 7) // 8
    assert np.array_equal(C.huffman_decode(blob, lengths, sym.size), sym)
    q = freqs[freqs > 0] / freqs.sum()
    entropy = float(-(q * np.log2(q)).sum())
    assert entropy <= C.encoded_bits(freqs, lengths) / sym.size < entropy + 1


def test_huffman_single_symbol_and_errors():
    lengths = C.huffman_lengths([0, 7, 0])
    assert lengths.tolist() == [0, 1, 0]
    assert np.array_equal(C.huffman_decode(C.huffman_encode(np.array([1] * 7), lengths), lengths, 7), [1] * 7)
    with pytest.raises(ValueError, match="every frequency is 0"):
        C.huffman_lengths([0, 0])
    with pytest.raises(ValueError, match="no code"):
        C.huffman_encode(np.array([0]), lengths)
    with pytest.raises(ValueError, match="non-negative"):
        C.huffman_lengths([1, -1])


# --- relative indices and bit packing -------------------------------------------------------------------

def test_relative_indices_with_fillers():
    # 2 bits: symbols 0..2 are gaps 1..3, symbol 3 is a filler advancing 3 positions
    pos = np.array([0, 1, 4, 11])
    sym = C.relative_indices(pos, 2)
    assert sym.tolist() == [0, 0, 2, 3, 3, 0]
    assert np.array_equal(C.absolute_positions(sym, 2), pos)
    rng = np.random.default_rng(1)
    for bits in (1, 3, 5, 8):
        p = np.sort(rng.choice(5000, 300, replace=False))
        assert np.array_equal(C.absolute_positions(C.relative_indices(p, bits), bits), p)


def test_pack_bits_roundtrip_and_size():
    v = np.array([5, 0, 7, 3, 1])
    blob = S.pack_bits(v, 3)
    assert len(blob) == 2  # 15 bits
    assert np.array_equal(S.unpack_bits(blob, 3, 5), v)


# --- formats: roundtrips and exact byte counts -----------------------------------------------------------

def test_container_exact_size():
    arrays = {"a": np.zeros((2, 3), np.float32), "bb": np.arange(4, dtype=np.uint16)}
    blob = S.pack_arrays(arrays)
    # 8 (magic + count) + [1 + 1 + 2 + 8 + 24] + [1 + 2 + 2 + 4 + 8]
    assert len(blob) == 8 + 36 + 17 == 8 + sum(S.array_record_bytes(k, v) for k, v in arrays.items())
    back = S.unpack_arrays(blob)
    assert all(np.array_equal(back[k], v) and back[k].dtype == v.dtype for k, v in arrays.items())


def test_dense_and_csr_exact_bytes_and_roundtrip():
    w = torch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
    b = torch.tensor([0.5, -0.5])
    dense = S.serialize_dense([(w, b)])
    assert len(dense) == 8 + (3 + 3 + 8 + 24) + (3 + 3 + 4 + 8)
    csr = S.serialize_csr([(w, b)])
    # shape uint32 (2,), rowptr uint8 (3,), col uint8 (3,), val float32 (3,), b float32 (2,)
    expect = 8 + (3 + 7 + 4 + 8) + (3 + 8 + 4 + 3) + (3 + 5 + 4 + 3) + (3 + 5 + 4 + 12) + (3 + 3 + 4 + 8)
    assert len(csr) == expect
    for blob, de in ((dense, S.deserialize_dense), (csr, S.deserialize_csr)):
        (w2, b2), = de(blob)
        assert torch.equal(w2, w) and torch.equal(b2, b)


def test_deep_compression_roundtrip_both_codings():
    params = _params(3, density=0.2)
    shared = C.share_weights(params, 3)
    sizes = {}
    for huffman in (True, False):
        blob = C.serialize_deep_compression(shared, index_bits=3, huffman=huffman)
        back = C.deserialize_deep_compression(blob)
        sizes[huffman] = len(blob)
        for s, t in zip(shared, back):
            assert torch.equal(s.weight(), t.weight()) and torch.equal(s.bias, t.bias)
    assert sizes[True] != sizes[False]


def test_deep_compression_fixed_width_exact_bytes():
    w = torch.tensor([[0.0, 1.0, 0.0, 3.0]])
    s = C.SharedLayer(torch.tensor([1.0, 3.0]), torch.tensor([[0, 0, 0, 1]]), w != 0, torch.tensor([0.0]))
    blob = C.serialize_deep_compression([s], index_bits=2, huffman=False)
    # positions 1, 3 → gap symbols [1, 1] (2 bits each → 1 byte); codes [0, 1] (1 bit each → 1 byte)
    names = {"0.shape": (1, 2, 8), "0.n": (1, 2, 8), "0.ib": (1, 1, 1), "0.codebook": (1, 2, 8), "0.b": (1, 1, 4),
             "0.wcode": (1, 1, 1), "0.icode": (1, 1, 1)}
    assert len(blob) == 8 + sum(3 + len(k) + 4 * nd + nb for k, (nd, _, nb) in names.items())
    assert torch.equal(C.deserialize_deep_compression(blob)[0].weight(), w)


def test_quantisation_without_pruning_stores_no_positions():
    params = _params(7, density=1.0)  # a dense net: every weight is kept
    shared = C.share_weights(params, 3)
    assert all(bool(s.mask.all()) for s in shared)
    for huffman in (True, False):
        blob = C.serialize_deep_compression(shared, index_bits=5, huffman=huffman)
        assert not any(k.endswith(("icode", "ilen")) for k in S.unpack_arrays(blob))
        for s_, t in zip(shared, C.deserialize_deep_compression(blob)):
            assert torch.equal(s_.weight(), t.weight()) and torch.equal(s_.mask, t.mask)
    # fixed width: 3 bits per weight and nothing else per weight
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    s1 = C.share_weights([(w, torch.zeros(1))], 1, iterations=0)
    blob = C.serialize_deep_compression(s1, huffman=False)
    names = {"0.shape": (1, 2, 8), "0.n": (1, 2, 8), "0.ib": (1, 1, 1), "0.codebook": (1, 2, 8), "0.b": (1, 1, 4),
             "0.wcode": (1, 1, 1)}  # 6 one-bit codes → 1 byte
    assert len(blob) == 8 + sum(3 + len(k) + 4 * nd + nb for k, (nd, _, nb) in names.items())
    st = C.stream_bits(shared, index_bits=5)
    assert st["index_bits"] == 0 and st["index_bits_huffman"] == 0


def test_csr_nbytes_is_the_serialized_size():
    g = torch.Generator().manual_seed(0)
    for density in (0.0005, 0.02, 0.3, 1.0):
        params = [(torch.randn(300, 784, generator=g) * (torch.rand(300, 784, generator=g) < density), torch.randn(300)),
                  (torch.randn(10, 300, generator=g) * (torch.rand(10, 300, generator=g) < density), torch.randn(10))]
        layers = [(tuple(w.shape), int((w != 0).sum())) for w, _ in params]
        assert S.csr_nbytes(layers) == len(S.serialize_csr(params))


def test_han_rates_scale():
    from lotterylib import masks
    assert masks.han_rates() == {k: 1.0 - v for k, v in masks.HAN_KEPT.items()}
    assert masks.han_rates(0.5)["layers.0"] == pytest.approx(0.96)
    for bad in (0.0, 4.0):
        with pytest.raises(ValueError, match="scale"):
            masks.han_rates(bad)


def _tiny_comparison(data=None, cache=None, **over):
    """A tiny comparison; with ``data`` and ``cache``, its dense nets are IMP round 0, run into ``cache``
    (as the comparison's retrainings need), else untrained nets."""
    from lotterylib import comparison
    from lotterylib.lottery import LotteryConfig, round_state, run_imp
    cfg = comparison.ComparisonConfig(lottery=LotteryConfig(seeds=(0, 1), train=train.TrainConfig(iterations=3, eval_every=3)),
                                      finetune=train.TrainConfig(iterations=3, eval_every=3),
                                      centroids=train.TrainConfig(iterations=2, eval_every=2), **over)
    if cache is None:
        model = models.build("lenet_300_100", [0, 1])
        return cfg, [S.mlp_params(model, r) for r in range(2)]
    run_imp(cfg.lottery, data, 0, cache=cache, progress=False)
    state = round_state(cfg.lottery, 0, cache)
    return cfg, [[(state["final"][k][r], state["bias"][k][r]) for k in state["final"]] for r in range(2)]


def test_pruned_to_size_fills_the_budget_and_no_more(mnist_small, tmp_path):
    from lotterylib import comparison, masks
    from lotterylib.cache import ResultCache
    cache = ResultCache(tmp_path)
    cfg, dense = _tiny_comparison(mnist_small, cache)
    budget = 30_000
    nets, scale = comparison.pruned_to_size(cfg, dense, budget, mnist_small, cache, progress=False)
    sizes = [len(S.serialize_csr(n)) for n in nets]
    assert min(sizes) >= budget
    # a slightly smaller scale would not fill the budget: the pruned net is not given more than it needs
    shapes = [tuple(w.shape) for w, _ in dense[0]]
    rates = masks.han_rates(scale * 0.99)
    nnz = [sh[0] * sh[1] - round(rates[k] * sh[0] * sh[1]) for k, sh in zip(masks.HAN_KEPT, shapes)]
    assert S.csr_nbytes(list(zip(shapes, nnz))) < budget


def test_stream_bits_fixed_widths():
    shared = C.share_weights(_params(), 3)
    st = C.stream_bits(shared, index_bits=4)
    assert st["weight_bits"] == 3.0 and st["index_bits"] >= 4.0
    assert st["weight_bits_huffman"] <= 3.0 + 1e-9


# --- runners ---------------------------------------------------------------------------------------

def test_runners_agree_with_dense():
    params = _params(5)
    x = torch.rand(7, 20)
    ref = R.dense_runner(params)(x)
    assert ref.shape == (7, 5)
    assert torch.allclose(R.csr_runner(params)(x), ref, atol=1e-5)
    t = R.time_runners({"dense": R.dense_runner(params), "csr": R.csr_runner(params)}, x, repeats=2, warmup=1)
    assert set(t) == {"dense", "csr"} and all(v > 0 for v in t.values())
    with pytest.raises(ValueError, match="repeats"):
        R.time_runners({"dense": R.dense_runner(params)}, x, repeats=0)


def test_matched_size_never_gives_a_single_method_fewer_bytes(mnist_small, tmp_path):
    from lotterylib import comparison, masks
    from lotterylib.cache import ResultCache
    cache = ResultCache(tmp_path)
    cfg, dense = _tiny_comparison(mnist_small, cache, sweep_bits=(2, 6))
    with torch.no_grad():
        pruned = [[(w * (torch.rand(w.shape, generator=torch.Generator().manual_seed(r)) < 0.3), b) for w, b in net]
                  for r, net in enumerate(dense)]
    sweeps = {name: comparison.quantization_sweep(nets, cfg.sweep_bits, cfg.index_bits, 2, mnist_small)
              for name, nets in (("pruned", pruned), ("dense", dense))}
    assert all(len(v) == 2 and len(v[0]) == 2 for k, v in sweeps["pruned"].items() if k != "bits")
    m = comparison.matched_size(cfg, dense, sweeps, mnist_small, cache, progress=False)
    budget = m["budget_bytes"]
    assert budget == max(sweeps["pruned"]["bytes"][1])  # P+Q at cfg.bits = 6
    assert min(m["quantized"]["bytes"]) >= budget and min(m["pruned"]["bytes"]) >= budget
    assert m["quantized"]["bits"] == 4  # not in the sweep: found by its own search
    one_less = comparison.quantization_sweep(dense, (3,), 5, 2, mnist_small, huffman=False)
    assert min(one_less["bytes"][0]) < budget  # one bit fewer would not have reached the budget
    assert 0 < m["pruned"]["fraction_kept"] < max(masks.HAN_KEPT.values())


def test_init_comparison_fine_tunes_every_initialisation(mnist_small, tmp_path):
    from lotterylib import comparison
    from lotterylib.cache import ResultCache
    cfg, dense = _tiny_comparison(init_bits=(2, 3))
    out = comparison.init_comparison(cfg, dense, mnist_small, ResultCache(tmp_path), progress=False)
    assert out["bits"] == [2, 3] and out["fine_tuned"] is True
    assert all(len(out[i]) == 2 and all(len(a) == 2 and all(0 <= x <= 1 for x in a) for a in out[i]) for i in C.INITS)


def test_time_batches():
    params = _params(5)
    x = torch.rand(70, 20)
    t = R.time_batches({"dense": R.dense_runner(params), "csr": R.csr_runner(params)}, x, (1, 64), repeats=2, images=64)
    assert set(t) == {1, 64} and all(set(v) == {"dense", "csr"} and min(v.values()) > 0 for v in t.values())
    with pytest.raises(ValueError, match="batch 71"):
        R.time_batches({"dense": R.dense_runner(params)}, x, (71,))


def test_binary_runner_matches_model_and_predict_packed():
    arch = binary.Architecture(1, 4, (), (8,))
    model = binary.BinaryNet(2, arch, "xnor").reset_parameters([0, 1])
    x = torch.rand(64, 16)
    model.train()
    model(x)  # BatchNorm statistics
    model.eval()
    run = 1
    ref = model(x)[run]
    got = R.binary_runner(model, run, "xnor")(x)
    flt = R.binary_runner(model, run, "float")(x)
    assert torch.allclose(got, ref, atol=1e-4) and torch.allclose(flt, ref, atol=1e-4)
    assert torch.allclose(got, binary.predict_packed(model, x, run), atol=1e-4)
    blob = S.serialize_binary(model, run)
    assert len(blob) < len(S.pack_arrays(binary.float_state(model, run)))
    bwn = binary.BinaryNet(1, arch, "bwn").reset_parameters([0]).eval()
    with pytest.raises(ValueError, match="sign activations"):
        R.binary_runner(bwn, 0, "xnor")


def test_seed_mask_blob_is_smaller_than_dense():
    model = models.build("lenet_300_100", [0])
    mask = {k: (torch.rand(l.weight[0].shape) < 0.1).float() for k, l in model.prunable().items()}
    blob = deconstruct.pack_seed_mask("lenet_300_100", 0, "signed_constant", mask)
    dense = S.serialize_dense(S.mlp_params(model))
    assert len(blob) < len(dense) / 30


# --- the DC claims' checks can fail -----------------------------------------------------------------

def _seeds(mean: float, spread: float = 0.001) -> list[float]:
    return [mean - spread, mean, mean + spread]


def _rec(ms: float, dense_ms: float, batch: int) -> dict:
    """A bench record: a network's ms per call against the dense network's."""
    return {"value": ms, "baseline": dense_ms, "ratio": dense_ms / ms, "batch": batch, "machine": "test", "date": "2026-12-01"}


def _summary(**over):
    m = lambda b, a, ms=5.0: {"bytes": [b] * 3, "test_acc": _seeds(a), "inference_ms": ms, "ratio_vs_dense": ms / 5.0,  # noqa: E731
                               "label": "x", "format": "y", "fraction_kept": 1.0}
    bits = [2, 3, 4, 5, 6, 7, 8]
    sweep = lambda ref, drop2: {"bits": bits, "test_acc": [_seeds(ref - (drop2 if b == 2 else 0.0005)) for b in bits],  # noqa: E731
                                "bytes": [[1000 * b] * 3 for b in bits]}
    s = {"methods": {"dense": m(1_066_000, 0.970), "dc": m(26_000, 0.969, 2.0), "dc_pq": m(33_000, 0.969, 2.0),
                     "magnitude": m(133_000, 0.971, 2.5), "supermask": m(24_000, 0.93), "xnor": m(60_000, 0.93, 1.5)},
         "dc": {"compression": [1_066_000 / 26_000] * 3, "compression_pq": [1_066_000 / 33_000] * 3,
                "streams": {"weight_bits": 6.0, "weight_bits_huffman": 4.4, "index_bits": 5.0, "index_bits_huffman": 3.7},
                "sweep": {"pruned": sweep(0.971, 0.01), "dense": sweep(0.970, 0.02),
                          "reference": {"pruned": _seeds(0.971), "dense": _seeds(0.970)}},
                "matched": {"budget_bytes": 34_000, "pq": {"bits": 6, "bytes": [34_000] * 3, "test_acc": _seeds(0.970)},
                            "quantized": {"bits": 1, "bytes": [35_000] * 3, "test_acc": _seeds(0.80, 0.05)},
                            "pruned": {"scale": 0.25, "fraction_kept": 0.02, "bytes": [34_100] * 3,
                                       "test_acc": _seeds(0.92)}},
                "inits": {"bits": bits, "fine_tuned": True, "linear": [_seeds(0.97) for _ in bits],
                          "density": [_seeds(0.96) for _ in bits], "forgy": [_seeds(0.95) for _ in bits]}},
         "batches": {"1": {"dense": 0.05, "magnitude": 0.02}, "64": {"dense": 0.3, "magnitude": 1.2}},
         "config": {"batch": 1000, "threads": 1},
         "bench": {"runners_xnor_vs_dense_b1000": _rec(1.5, 5.0, 1000), "runners_csr_vs_dense_b1": _rec(0.02, 0.05, 1),
                   "runners_csr_vs_dense_b64": _rec(1.2, 0.3, 64)}}
    for path, value in over.items():
        method, key = path.split("__")
        s["methods"][method][key] = value
    return s


def test_dc_checks_hold_on_a_paper_like_summary():
    from lotterylib.claims import dc
    s = _summary()
    for check in (dc.check_dc2, dc.check_dc3, dc.check_dc4, dc.check_dc5, dc.check_dc6, dc.check_dc7, dc.check_dc8):
        assert check(s, "full").holds is True, check.__name__
    for profile in ("quick", "full"):
        assert dc.check_dc1(s, profile).holds is (True if profile == "full" else None)


def test_dc1_fails_on_a_loss_or_a_smaller_ratio():
    from lotterylib.claims import dc
    lossy = dc.check_dc1(_summary(dc__test_acc=_seeds(0.96)), "quick")  # 1 pp below dense, ~10 SE
    assert lossy.holds is False and [p.holds for p in lossy.parts] == [None, False]
    bigger = _summary(dc__bytes=[40_000] * 3)
    bigger["dc"]["compression"] = [1_066_000 / 40_000] * 3  # 27×
    assert dc.check_dc1(bigger, "full").holds is False
    assert dc.check_dc1(bigger, "quick").holds is None  # the ratio is decided in the full profile only


def test_dc2_fails_below_table_2s_saving():
    from lotterylib.claims import dc
    assert dc.check_dc2(_summary(dc_pq__bytes=[28_000] * 3), "full").holds is False  # saves 7 %
    assert dc.check_dc2(_summary(dc_pq__bytes=[32_000] * 3), "full").holds is False  # saves 18.8 % < 19.7 %


def test_dc3_dc4_fail():
    from lotterylib.claims import dc
    assert dc.check_dc3(_summary(supermask__bytes=[70_000] * 3), "quick").holds is False
    slow = _summary()
    slow["bench"]["runners_xnor_vs_dense_b1000"] = _rec(6.0, 5.0, 1000)  # slower than dense
    assert dc.check_dc4(slow, "quick").holds is False
    none = _summary()
    none["bench"]["runners_xnor_vs_dense_b1000"] = None  # no benchmark run: undecided, says what to run
    v = claims_check("DC-4", none)
    assert v.holds is None and "make bench" in v.note


def claims_check(cid: str, summary: dict):
    from lotterylib import claims
    return dict((c.id, v) for c, v in claims.check("DC", summary, "quick"))[cid]


def test_dc5_parts_at_batch_1_and_batched():
    from lotterylib.claims import dc
    s = _summary()
    s["bench"]["runners_csr_vs_dense_b1"] = _rec(0.1, 0.05, 1)  # slower at batch 1
    v = dc.check_dc5(s, "quick")
    assert v.holds is False and [p.holds for p in v.parts] == [False, True]
    s = _summary()
    s["bench"]["runners_csr_vs_dense_b64"] = _rec(0.1, 0.3, 64)  # still faster when batched
    assert [p.holds for p in dc.check_dc5(s, "quick").parts] == [True, False]


def test_dc6_fails_when_a_single_method_is_as_good_at_the_same_size():
    from lotterylib.claims import NotReached
    from lotterylib.claims import dc
    s = _summary()
    s["dc"]["matched"]["pruned"]["test_acc"] = _seeds(0.970)
    v = dc.check_dc6(s, "quick")
    assert v.holds is False and [p.holds for p in v.parts] == [False, True]
    s = _summary()
    s["dc"]["matched"]["quantized"]["test_acc"] = _seeds(0.975)  # better than P+Q
    assert [p.holds for p in dc.check_dc6(s, "quick").parts] == [True, False]
    s = _summary()
    s["dc"]["matched"]["quantized"]["bytes"] = [30_000] * 3  # fewer bytes than P+Q: not a matched comparison
    with pytest.raises(NotReached, match="not matched"):
        dc.check_dc6(s, "quick")
    s = _summary()
    s["dc"]["matched"]["pq"]["test_acc"] = [0.97]  # one seed: no standard error
    assert dc.check_dc6(s, "quick").holds is None


def test_dc7_fails_on_an_early_drop_or_none_at_2_bits():
    from lotterylib.claims import dc
    s = _summary()
    s["dc"]["sweep"]["pruned"]["test_acc"][1] = _seeds(0.95)  # 3 bits: 2 pp below the unquantised net
    v = dc.check_dc7(s, "quick")
    assert v.holds is False and [p.holds for p in v.parts] == [False, True, True, True]
    s = _summary()
    s["dc"]["sweep"]["dense"]["test_acc"][0] = _seeds(0.9695)  # no drop at 2 bits
    assert [p.holds for p in dc.check_dc7(s, "quick").parts] == [True, True, True, False]


def test_dc8_fails_where_linear_is_not_best_but_exempts_3_bits():
    from lotterylib.claims import NotReached
    from lotterylib.claims import dc
    s = _summary()
    s["dc"]["inits"]["density"][1] = _seeds(0.99)  # 3 bits: density wins, which the paper allows
    assert dc.check_dc8(s, "full").holds is True
    s["dc"]["inits"]["forgy"][4] = _seeds(0.97)  # 6 bits: a tie with Forgy
    v = dc.check_dc8(s, "full")
    assert v.holds is False and [p.label for p in v.parts if p.holds is False] == ["6 bits"]
    del s["dc"]["inits"]
    with pytest.raises(NotReached):
        dc.check_dc8(s, "full")


def test_dc_cited_and_kinds():
    from lotterylib import claims
    from lotterylib.claims import dc
    kinds = {c.id: c.kind for c in claims.select("DC")}
    assert kinds == {"DC-1": "empirical", "DC-2": "empirical", "DC-3": "invariant", "DC-4": "timing", "DC-5": "timing",
                     "DC-6": "empirical", "DC-7": "empirical", "DC-8": "empirical", "DC-9": "cited", "DC-10": "cited"}
    assert dc.check_cited(_summary(), "full").holds is None
    verdicts = claims.check("DC", _summary(), "quick")
    assert {c.id for c, v in verdicts if v.holds is None} == {"DC-1", "DC-2", "DC-8", "DC-9", "DC-10"}


def test_the_comparison_is_built_once_and_its_bench_records_are_read_fresh(tmp_path, monkeypatch):
    # The claims page and the CLI read the comparison after chapter 07 made it: from the cache, not by
    # serializing, sweeping and timing every method again (13 s); the bench records are not cached.
    from lotterylib import claims
    from lotterylib.cache import ResultCache
    from lotterylib.claims import dc
    built = []
    monkeypatch.setattr(dc, "run_comparison", lambda cfg, data, cache, progress=False: built.append(1) or {"x": 1.5})
    monkeypatch.setattr(dc, "load", lambda *args, **kwargs: None)
    records = iter([{"ratio": 1.0}, {"ratio": 2.0}])
    monkeypatch.setattr(dc.bench, "record", lambda name: next(records) if name == dc.BENCH[0] else None)
    context = claims.Context(cache=ResultCache(tmp_path), progress=False)
    first = dc.comparison_experiment("quick", 0, context)
    second = dc.comparison_experiment("quick", 0, context)
    assert len(built) == 1 and first["x"] == second["x"] == 1.5
    assert first["bench"][dc.BENCH[0]] == {"ratio": 1.0} and second["bench"][dc.BENCH[0]] == {"ratio": 2.0}
