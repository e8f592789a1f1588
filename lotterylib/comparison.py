"""Every method of the book on one benchmark: trained, written to bytes, read back, evaluated, timed.

:func:`run_comparison` trains LeNet-300-100 on MNIST with every method (or loads it from the result
cache), writes each network to bytes in its own storage format (:mod:`lotterylib.serialize`,
:mod:`lotterylib.compression`, :func:`lotterylib.deconstruct.pack_seed_mask`), reads it back from
those bytes and evaluates it on the test split; the run-0 network of each is timed on CPU (one batch
of test images) against the dense network in the same process (:mod:`lotterylib.runners`).

=====================  ======================================================  ===================
method                 how it is made (reused from)                            stored as
=====================  ======================================================  ===================
dense                  IMP round 0 (:mod:`lotterylib.lottery`, the LT chapter)  float32
magnitude + fine-tune  Han's 8/9/26 % per-layer masks, retrained (HAN chapter)  CSR
LT ticket              IMP round ``ticket_round`` (LT chapter)                  CSR
supermask at init      one-shot large_final_same_sign mask on σ·sign(θ₀) (DLT)  seed + bit mask
edge-popup             learned top-k supermask on σ·sign(θ₀) (DLT)              seed + bit mask
Net-Trim               parallel Net-Trim of the dense net (NT chapter)          CSR
BWN / XNOR             binary LeNet-300-100 with BatchNorm (XN chapter)         bit-packed + float
DNW                    top-k(|W|) straight-through, 10 % kept (DNW chapter)     CSR
Deep Compression       magnitude + fine-tune → k-means → centroid fine-tune    codebook + Huffman
                       → Huffman (:mod:`lotterylib.compression`)
=====================  ======================================================  ===================

Each trained part is one cache entry (its weights), keyed by the :class:`ComparisonConfig` and the
part's name. The claims DC-1 … DC-5 (:mod:`lotterylib.claims.dc`) are decided on the summary.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from . import binary, compression, deconstruct, masks, models, nettrim, runners, serialize, weightfn
from .cache import ResultCache
from .data import Dataset
from .lottery import LotteryConfig, data_seeds, init_seeds, initial_weights, round_state, run_imp
from .provenance import provenance
from .seeds import derive
from .train import TrainConfig, evaluate, train

LABELS = {"dense": "dense fp32", "magnitude": "magnitude + fine-tune", "ticket": "LT ticket",
          "supermask": "supermask at init", "edge_popup": "edge-popup", "nettrim": "Net-Trim",
          "bwn": "BWN", "xnor": "XNOR-Net", "dnw": "DNW", "dc_pq": "Deep Compr. (P+Q)", "dc": "Deep Compression"}
FORMATS = {"dense": "float32", "magnitude": "CSR", "ticket": "CSR", "supermask": "seed+mask", "edge_popup": "seed+mask",
           "nettrim": "CSR", "bwn": "bit-packed", "xnor": "bit-packed", "dnw": "CSR", "dc_pq": "codebook+fixed",
           "dc": "codebook+Huffman"}
MLP_ARCH = binary.Architecture(1, 28, (), (300, 100))  # LeNet-300-100 as a BinaryNet (BatchNorm blocks)


@dataclass(frozen=True)
class ComparisonConfig:
    """Everything the comparison trains. Seeds and data order come from ``lottery``."""

    lottery: LotteryConfig = field(default_factory=LotteryConfig)
    ticket_round: int = 3
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(iterations=1000, eval_every=1000))
    bits: int = 6
    index_bits: int = 5
    kmeans_iterations: int = 10
    centroids: TrainConfig = field(default_factory=lambda: TrainConfig(iterations=300, lr=1e-4, eval_every=300))
    supermask_powers: tuple[int, ...] = (2, 4, 6, 8, 11)
    edge_popup: TrainConfig = field(default_factory=lambda: TrainConfig(iterations=1000, lr=0.01, eval_every=1000))
    nettrim_gain: float = 0.1
    nettrim_samples: int = 1000
    nettrim_iterations: int = 200
    binary_train: TrainConfig = field(default_factory=lambda: TrainConfig(iterations=600, batch_size=100, lr=2e-3,
                                                                           eval_every=600))
    dnw_fraction_kept: float = 0.1
    sweep_bits: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)


def eval_at_end(t: TrainConfig) -> TrainConfig:
    """The same training, evaluated only at the end (evaluations do not change the trajectory)."""
    return dataclasses.replace(t, eval_every=t.iterations)


# --- the trained networks (each memoized with its weights) ---------------------------------------

@dataclass(frozen=True)
class _Part:
    """Cache key of one trained method of a comparison."""

    config: ComparisonConfig
    part: str


def _memo(cache: ResultCache, cfg: ComparisonConfig, part: str, compute) -> dict:
    """{name: tensor} of ``part``, from the cache or computed (and stored)."""
    key = _Part(cfg, part)
    with cache.lock(key, "comparison"):
        entry = cache.get(key, "comparison")
        if entry is None:
            start = time.time()
            tensors = compute()
            entry = cache.put(key, lambda w: (w.json({"seconds": time.time() - start}), w.tensors(tensors)),
                              "comparison", provenance=provenance("cpu", time.time() - start))
    return entry.tensors()


def _split_runs(weights: Mapping[str, torch.Tensor], biases: Mapping[str, torch.Tensor], runs: int) -> list[serialize.Params]:
    names = list(weights)
    return [[(weights[k][r].float(), biases[k][r].float()) for k in names] for r in range(runs)]


def _population_state(model: models.PopulationModel) -> dict[str, torch.Tensor]:
    out = {}
    with torch.no_grad():
        for name, layer in model.prunable().items():
            out[f"w.{name}"] = layer.weight.detach().cpu().clone()
            out[f"b.{name}"] = layer.bias.detach().cpu().clone()
    return out


def _params_of(state: Mapping[str, torch.Tensor]) -> list[serialize.Params]:
    w = {k[2:]: v for k, v in state.items() if k.startswith("w.")}
    b = {k[2:]: v for k, v in state.items() if k.startswith("b.")}
    return _split_runs(w, b, next(iter(w.values())).shape[0])


def dense_and_ticket(cfg: ComparisonConfig, data: Dataset, cache: ResultCache, progress: bool) -> dict[str, list[serialize.Params]]:
    """The trained dense nets (IMP round 0) and tickets (round ``ticket_round``), weights and biases, as
    the LT chapter's IMP stored them (shared through the cache: nothing is trained again here)."""
    run_imp(cfg.lottery, data, cfg.ticket_round, cache=cache, progress=progress)
    out = {}
    for name, rnd in (("dense", 0), ("ticket", cfg.ticket_round)):
        state = round_state(cfg.lottery, rnd, cache)
        out[name] = _split_runs(state["final"], state["bias"], len(cfg.lottery.seeds))
    return out


def magnitude_finetune(cfg: ComparisonConfig, dense: list[serialize.Params], data: Dataset, cache: ResultCache,
                       progress: bool) -> list[serialize.Params]:
    """Han et al.'s pruning (8 / 9 / 26 % kept per layer) of the dense nets, then retraining (HAN chapter)."""
    lc = cfg.lottery

    def compute() -> dict:
        names = list(models.build(lc.model, [0]).prunable())
        final = {k: torch.stack([p[i][0] for p in dense]) for i, k in enumerate(names)}
        model = models.build(lc.model, list(lc.seeds))
        models.set_weights(model, final)
        with torch.no_grad():
            for i, layer in enumerate(model.prunable().values()):
                layer.bias.copy_(torch.stack([p[i][1] for p in dense]))
        masks.attach_masks(model, masks.han_masks(final))
        train(model, data, cfg.finetune, [derive(s, "han-finetune") for s in lc.seeds],
              progress="fine-tune" if progress else False)
        return _population_state(model)
    return _params_of(_memo(cache, cfg, "magnitude", compute))


def deep_compression_layers(cfg: ComparisonConfig, pruned: list[serialize.Params], data: Dataset,
                            cache: ResultCache, progress: bool) -> tuple[list[list[compression.SharedLayer]], list[list[compression.SharedLayer]]]:
    """(k-means-shared layers, the same after centroid fine-tuning), one list per seed."""
    shared = [compression.share_weights(p, cfg.bits, cfg.kmeans_iterations) for p in pruned]
    lc = cfg.lottery

    def compute() -> dict:
        model = models.build(lc.model, list(lc.seeds))
        compression.attach_shared(model, shared)
        train(model, data, cfg.centroids, [derive(s, "centroids") for s in lc.seeds],
              trainable=compression.codebook_parameters, progress="centroids" if progress else False)
        tuned = compression.read_shared(model)
        return {f"c.{r}.{l}": s.codebook for r, run in enumerate(tuned) for l, s in enumerate(run)}
    books = _memo(cache, cfg, "centroids", compute)
    tuned = [[dataclasses.replace(s, codebook=books[f"c.{r}.{l}"]) for l, s in enumerate(run)]
             for r, run in enumerate(shared)]
    return shared, tuned


def supermask_at_init(cfg: ComparisonConfig, dense: list[serialize.Params], data: Dataset) -> tuple[list[bytes], dict]:
    """Zhou et al.'s supermask: one-shot large_final_same_sign masks on σ·sign(θ₀), no training.

    The pruning power is chosen on the validation split; returns one seed+mask blob per seed.
    """
    lc = cfg.lottery
    init = initial_weights(lc)
    names = list(init)
    final = {k: torch.stack([p[i][0] for p in dense]) for i, k in enumerate(names)}
    rates = masks.layer_rates(models.build(lc.model, [0]), fc=0.2, conv=0.1, output=0.1)
    base = deconstruct.base_weights("signed_constant", init)
    val_acc, chosen = [], {}
    for p in cfg.supermask_powers:
        m = deconstruct.oneshot_masks(lc.model, init, final, "large_final_same_sign",
                                      {k: 1.0 - (1.0 - r) ** p for k, r in rates.items()},
                                      [derive(s, "supermask", p) for s in lc.seeds])
        val_acc.append(float(deconstruct.evaluate_weights(lc.model, {k: base[k] * m[k] for k in names}, data.val).mean()))
        chosen[p] = m
    best = cfg.supermask_powers[int(np.argmax(val_acc))]
    m = chosen[best]
    blobs = [deconstruct.pack_seed_mask(lc.model, derive(s, "init"), "signed_constant", {k: m[k][r] for k in names})
             for r, s in enumerate(lc.seeds)]
    return blobs, {"power": int(best), "val_acc": val_acc, "powers": list(cfg.supermask_powers)}


def edge_popup(cfg: ComparisonConfig, data: Dataset, cache: ResultCache, progress: bool) -> list[bytes]:
    """Edge-popup (top-50 % of learned scores on σ·sign(θ₀)) → one seed+mask blob per seed."""
    lc = cfg.lottery
    sm = deconstruct.SupermaskConfig(model=lc.model, train=cfg.edge_popup, seeds=lc.seeds, method="edge_popup",
                                     weights="signed_constant")

    def compute() -> dict:
        model = deconstruct.supermask_model(sm)
        train(model, data, sm.train, [derive(s, "data", "supermask") for s in sm.seeds],
              trainable=deconstruct.score_parameters, progress="edge-popup" if progress else False)
        out = {}
        for name, layer in model.prunable().items():
            fn = next(f for f in weightfn.functions(layer) if isinstance(f, weightfn.TopKScores))
            out[name] = weightfn.topk_mask(fn.scores.detach().abs(), fn.fraction_kept).bool()
        return out
    mask = _memo(cache, cfg, "edge_popup", compute)
    return [deconstruct.pack_seed_mask(lc.model, derive(s, "init"), "signed_constant",
                                       {k: v[r].float() for k, v in mask.items()}) for r, s in enumerate(lc.seeds)]


def net_trim(cfg: ComparisonConfig, dense: list[serialize.Params], data: Dataset, cache: ResultCache) -> list[serialize.Params]:
    """Parallel Net-Trim (ε = gain·‖Y‖ per layer) of every seed's dense net, no retraining."""
    def compute() -> dict:
        out = {}
        for r, params in enumerate(dense):
            trimmed = nettrim.parallel(nettrim.to_model(params), data.train.x[:cfg.nettrim_samples], cfg.nettrim_gain,
                                       max_iter=cfg.nettrim_iterations)
            for l, (w, b) in enumerate(trimmed.params()):
                out[f"w.{l}.{r}"], out[f"b.{l}.{r}"] = w.float(), b.float()
        return out
    st = _memo(cache, cfg, "nettrim", compute)
    return [[(st[f"w.{l}.{r}"], st[f"b.{l}.{r}"]) for l in range(len(dense[0]))] for r in range(len(dense))]


def binary_net(cfg: ComparisonConfig, method: str, data: Dataset, cache: ResultCache, progress: bool) -> binary.BinaryNet:
    """LeNet-300-100 as a BinaryNet (BatchNorm → binarise → linear; last layer full precision), trained."""
    lc = cfg.lottery

    def make() -> binary.BinaryNet:
        return binary.BinaryNet(len(lc.seeds), MLP_ARCH, method)

    def compute() -> dict:
        torch.manual_seed(derive(lc.seeds[0], "binary-noise", method))
        model = make().reset_parameters([derive(s, "binary-init") for s in lc.seeds])
        train(model, data, cfg.binary_train, [derive(s, "binary-data") for s in lc.seeds],
              after_step=binary.clip_and_center, progress=method if progress else False)
        return model.state_dict()
    model = make()
    model.load_state_dict(_memo(cache, cfg, method, compute))
    return model.eval()


def dnw(cfg: ComparisonConfig, data: Dataset, cache: ResultCache, progress: bool) -> list[serialize.Params]:
    """DNW on LeNet-300-100: top-k(|W|) of every layer, straight-through to all weights, from θ₀."""
    lc = cfg.lottery

    def compute() -> dict:
        model = models.build(lc.model, init_seeds(lc))
        for layer in model.prunable().values():
            weightfn.attach(layer, weightfn.TopKMagnitude(cfg.dnw_fraction_kept))
        train(model, data, eval_at_end(lc.train), data_seeds(lc, 0), progress="DNW" if progress else False)
        return _population_state(model)
    return _params_of(_memo(cache, cfg, "dnw", compute))


# --- the comparison -------------------------------------------------------------------------------

def _acc(params: serialize.Params, data: Dataset) -> float:
    return runners.runner_accuracy(runners.dense_runner(params), data.test.x, data.test.y)


def _kept(params: serialize.Params) -> float:
    return float(sum(int((w != 0).sum()) for w, _ in params) / sum(w.numel() for w, _ in params))


def bits_sweep(pruned: serialize.Params, bits: tuple[int, ...], index_bits: int, iterations: int,
               data: Dataset) -> dict:
    """k-means at each bit width (no centroid fine-tuning) of one pruned net: test accuracy of the
    network decoded from the Huffman-coded bytes, and their count."""
    acc, size = [], []
    for b in bits:
        shared = compression.share_weights(pruned, b, iterations)
        blob = compression.serialize_deep_compression(shared, index_bits)
        acc.append(_acc(compression.shared_params(compression.deserialize_deep_compression(blob)), data))
        size.append(len(blob))
    return {"bits": list(bits), "test_acc": acc, "bytes": size}


def run_comparison(cfg: ComparisonConfig, data: Dataset, cache: ResultCache, *, progress: bool = False,
                   batch: int = 1000, repeats: int = 9) -> dict:
    """Train/load every method, serialise, decode, evaluate, time. JSON-able summary (see module doc)."""
    nets = dense_and_ticket(cfg, data, cache, progress)
    dense, ticket = nets["dense"], nets["ticket"]
    pruned = magnitude_finetune(cfg, dense, data, cache, progress)
    shared, tuned = deep_compression_layers(cfg, pruned, data, cache, progress)
    sm_blobs, sm_info = supermask_at_init(cfg, dense, data)
    ep_blobs = edge_popup(cfg, data, cache, progress)
    trimmed = net_trim(cfg, dense, data, cache)
    bwn, xnor = (binary_net(cfg, m, data, cache, progress) for m in ("bwn", "xnor"))
    wired = dnw(cfg, data, cache, progress)

    methods: dict[str, dict] = {}
    decoded: dict[str, serialize.Params] = {}  # run 0's network as read back from its bytes

    def add(name: str, blobs: list[bytes], params: list[serialize.Params]) -> None:
        methods[name] = {"label": LABELS[name], "format": FORMATS[name], "bytes": [len(b) for b in blobs],
                         "test_acc": [_acc(p, data) for p in params], "fraction_kept": float(np.mean([_kept(p) for p in params]))}
        decoded[name] = params[0]

    add("dense", *_through(serialize.serialize_dense, serialize.deserialize_dense, dense))
    for name, nets_ in (("magnitude", pruned), ("ticket", ticket), ("nettrim", trimmed), ("dnw", wired)):
        add(name, *_through(serialize.serialize_csr, serialize.deserialize_csr, nets_))
    for name, blobs in (("supermask", sm_blobs), ("edge_popup", ep_blobs)):
        add(name, blobs, [serialize.mlp_params(deconstruct.rebuild(b)) for b in blobs])
    pq = [compression.serialize_deep_compression(t, cfg.index_bits, huffman=False) for t in tuned]
    add("dc_pq", pq, [compression.shared_params(compression.deserialize_deep_compression(b)) for b in pq])
    dc_blobs = [compression.serialize_deep_compression(t, cfg.index_bits) for t in tuned]
    add("dc", dc_blobs, [compression.shared_params(compression.deserialize_deep_compression(b)) for b in dc_blobs])
    for name, model in (("bwn", bwn), ("xnor", xnor)):
        blobs = [serialize.serialize_binary(model, r) for r in range(model.runs)]
        _, acc = evaluate(model, data.test)
        methods[name] = {"label": LABELS[name], "format": FORMATS[name], "bytes": [len(b) for b in blobs],
                         "test_acc": acc.tolist(), "fraction_kept": 1.0}

    # speed: run 0 of each, one batch of test images, interleaved in this process
    x = data.test.x[:batch].contiguous()
    runs = {"dense": runners.dense_runner(decoded["dense"]),
            "magnitude": runners.csr_runner(decoded["magnitude"]),
            "ticket": runners.csr_runner(decoded["ticket"]),
            "supermask": runners.dense_runner(decoded["supermask"]),
            "edge_popup": runners.dense_runner(decoded["edge_popup"]),
            "nettrim": runners.csr_runner(decoded["nettrim"]),
            "dnw": runners.csr_runner(decoded["dnw"]),
            "dc": runners.csr_runner(decoded["dc"]),
            "bwn": runners.binary_runner(bwn, 0, kernel="float"),
            "xnor": runners.binary_runner(xnor, 0, kernel="xnor"),
            "xnor_float": runners.binary_runner(xnor, 0, kernel="float"),
            "magnitude_dense": runners.dense_runner(decoded["magnitude"])}
    seconds = runners.time_runners(runs, x, repeats=repeats, inner=3, threads=1)
    for name, m in methods.items():
        key = "dc" if name == "dc_pq" else name
        m["inference_ms"] = 1e3 * seconds[key]
        m["ratio_vs_dense"] = seconds[key] / seconds["dense"]
    xnor_check = runners.runner_accuracy(runs["xnor"], data.test.x, data.test.y)

    dense_bytes = methods["dense"]["bytes"]
    return {"config": {"ticket_round": cfg.ticket_round, "bits": cfg.bits, "index_bits": cfg.index_bits,
                       "seeds": list(cfg.lottery.seeds), "batch": batch, "threads": 1},
            "methods": methods,
            "extra_ms": {k: 1e3 * seconds[k] for k in ("xnor_float", "magnitude_dense")},
            "xnor_kernel_test_acc": xnor_check,
            "dc": {"compression": [d / b for d, b in zip(dense_bytes, methods["dc"]["bytes"])],
                   "compression_pq": [d / b for d, b in zip(dense_bytes, methods["dc_pq"]["bytes"])],
                   "kmeans_only_acc": [_acc(compression.shared_params(s), data) for s in shared],
                   "streams": compression.stream_bits(tuned[0], cfg.index_bits),
                   "sweep": bits_sweep(pruned[0], cfg.sweep_bits, cfg.index_bits, cfg.kmeans_iterations, data)},
            "supermask": sm_info}


def _through(ser, de, nets: list[serialize.Params]) -> tuple[list[bytes], list[serialize.Params]]:
    blobs = [ser(p) for p in nets]
    return blobs, [de(b) for b in blobs]
