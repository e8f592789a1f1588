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
low rank               SVD to ranks (32, 16), fine-tuned (chapter 08)           float32 factors
nodes                  J_o node pruning to (60, 20) units, fine-tuned (ch. 08)  float32, smaller
Deep Compression       magnitude + fine-tune → k-means → centroid fine-tune    codebook + Huffman
                       → Huffman (:mod:`lotterylib.compression`)
=====================  ======================================================  ===================

Deep Compression's §6 takes the pipeline apart, and so does the summary's ``"dc"`` part:
:func:`quantization_sweep` k-means-shares every seed's pruned *and dense* network at each bit width
(Fig. 7; quantisation without pruning), :func:`matched_size` sets pruning + quantisation against each
alone at the same bytes (Fig. 6; :func:`pruned_to_size` retrains a pruned net cut to a byte budget),
and :func:`init_comparison` fine-tunes the centroids from each of the three initialisations (Fig. 8;
only where ``init_bits`` asks for it). The dense and the pruned nets are also timed at batch 1 and
64 (Fig. 9 and its batched case). Every method also reports ``multiply_adds``: the multiply-adds per
image its runner performs (one per stored non-zero for CSR, one per weight for dense, binary and
factorised layers).

Each trained part is one cache entry (its weights), keyed by the :class:`ComparisonConfig` and the
part's name. The DC claims (:mod:`lotterylib.claims.dc`) are decided on the summary.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from . import binary, compression, deconstruct, lowrank, masks, models, nettrim, nodes, runners, serialize, weightfn
from .cache import ResultCache
from .data import Dataset
from .lottery import LotteryConfig, data_seeds, init_seeds, initial_weights, round_state, run_imp
from .provenance import provenance
from .retrain import Retraining, retrain, retrained_state
from .seeds import derive
from .train import TrainConfig, evaluate, train

LABELS = {"dense": "dense fp32", "magnitude": "magnitude + fine-tune", "ticket": "LT ticket",
          "supermask": "supermask at init", "edge_popup": "edge-popup", "nettrim": "Net-Trim",
          "bwn": "BWN", "xnor": "XNOR-Net", "dnw": "DNW", "dc_pq": "Deep Compr. (P+Q)", "dc": "Deep Compression",
          "lowrank": "low rank + fine-tune", "nodes": "node pruning + f.-t."}
FORMATS = {"dense": "float32", "magnitude": "CSR", "ticket": "CSR", "supermask": "seed+mask", "edge_popup": "seed+mask",
           "nettrim": "CSR", "bwn": "bit-packed", "xnor": "bit-packed", "dnw": "CSR", "dc_pq": "codebook+fixed",
           "dc": "codebook+Huffman", "lowrank": "float32 factors", "nodes": "float32 (smaller)"}
#: Chapter 08's structured methods in the comparison: ranks of the two hidden layers (the output layer
#: whole) and hidden units kept. Module constants, not ComparisonConfig fields, so that the committed
#: results of the other methods keep their configuration hash.
LOWRANK_RANKS = (32, 16)
NODE_UNITS = (60, 20)
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
    init_bits: tuple[int, ...] = ()  # bit widths of the fine-tuned centroid-initialisation comparison (Fig. 8)


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


def _prune_and_retrain(cfg: ComparisonConfig, scale: float, data: Dataset, cache: ResultCache,
                       progress: bool) -> list[serialize.Params]:
    """The dense nets (IMP round 0) pruned with Han et al.'s per-layer fractions times ``scale``, retrained
    with ``cfg.finetune``: :func:`lotterylib.retrain.retrain`, the same run as the HAN chapter's at scale 1."""
    key = Retraining(cfg.lottery, cfg.finetune, 0, "han", scale)
    retrain(key, data, cache=cache, progress=progress)
    return _params_of(retrained_state(key, cache))


def magnitude_finetune(cfg: ComparisonConfig, data: Dataset, cache: ResultCache, progress: bool) -> list[serialize.Params]:
    """Han et al.'s pruning (8 / 9 / 26 % kept per layer) of the dense nets, then retraining (HAN chapter)."""
    return _prune_and_retrain(cfg, 1.0, data, cache, progress)


def pruned_to_size(cfg: ComparisonConfig, dense: list[serialize.Params], budget: int, data: Dataset,
                   cache: ResultCache, progress: bool) -> tuple[list[serialize.Params], float]:
    """Pruning only, at a byte budget: Han's per-layer fractions scaled by the smallest factor whose CSR
    bytes reach ``budget`` (so the pruned net is never given fewer bytes), then retrained as
    :func:`magnitude_finetune`. Returns (the retrained nets, the scale)."""
    names = list(models.build(cfg.lottery.model, [0]).prunable())
    shapes = [tuple(w.shape) for w, _ in dense[0]]

    def nbytes(scale: float) -> int:
        rates = masks.han_rates(scale)
        sizes = [(sh, sh[0] * sh[1]) for sh in shapes]
        return serialize.csr_nbytes([(sh, n - int(round(rates[k] * n))) for k, (sh, n) in zip(names, sizes)])
    lo, hi = 0.0, 1.0 / max(masks.HAN_KEPT.values())
    if nbytes(hi) < budget:
        raise ValueError(f"a budget of {budget} bytes exceeds the CSR size of the dense net")
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if nbytes(mid) >= budget else (mid, hi)
    nets = _prune_and_retrain(cfg, hi, data, cache, progress)
    return nets, hi


def deep_compression_layers(cfg: ComparisonConfig, pruned: list[serialize.Params], data: Dataset,
                            cache: ResultCache, progress: bool) -> tuple[list[list[compression.SharedLayer]], list[list[compression.SharedLayer]]]:
    """(k-means-shared layers, the same after centroid fine-tuning), one list per seed."""
    shared = [compression.share_weights(p, cfg.bits, cfg.kmeans_iterations) for p in pruned]
    books = _memo(cache, cfg, "centroids",
                  functools.partial(_finetune_centroids, cfg, shared, list(range(len(shared))), data, progress))
    return shared, _with_codebooks(shared, books)


def _finetune_centroids(cfg: ComparisonConfig, shared: list[list[compression.SharedLayer]], seed_index: list[int],
                        data: Dataset, progress: bool) -> dict:
    """Fine-tune the codebooks of a population of shared nets, run ``j`` drawing its data as seed
    ``seed_index[j]`` of the comparison: {"c.{run}.{layer}": codebook}."""
    lc = cfg.lottery
    model = models.build(lc.model, list(range(len(shared))))
    compression.attach_shared(model, shared)
    train(model, data, cfg.centroids, [derive(lc.seeds[r], "centroids") for r in seed_index],
          trainable=compression.codebook_parameters, progress="centroids" if progress else False)
    return {f"c.{j}.{l}": s.codebook for j, run in enumerate(compression.read_shared(model)) for l, s in enumerate(run)}


def _with_codebooks(shared: list[list[compression.SharedLayer]], books: Mapping[str, torch.Tensor]) -> list[list[compression.SharedLayer]]:
    return [[dataclasses.replace(s, codebook=books[f"c.{j}.{l}"]) for l, s in enumerate(run)]
            for j, run in enumerate(shared)]


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
    # The same supermask as the DLT chapter's (same config, so the same cache entry: trained once).
    deconstruct.train_supermask(sm, data, cache=cache, progress=progress)
    mask = deconstruct.learned_masks(sm, cache)
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

    init = [derive(s, "binary-init") for s in lc.seeds]

    def make() -> binary.BinaryNet:
        return binary.BinaryNet(len(lc.seeds), MLP_ARCH, method, noise_seeds=init)

    def compute() -> dict:
        model = make().reset_parameters(init)
        with torch.random.fork_rng(devices=[]):  # the caller's RNG stream stays as it was
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

def _structured_finetune(cfg: ComparisonConfig, dense: list[serialize.Params], data: Dataset, cache: ResultCache,
                         part: str, progress: bool) -> dict[str, torch.Tensor]:
    """Chapter 08's low rank (``part`` "lowrank") or node pruning ("nodes") of the dense nets, fine-tuned
    with ``cfg.finetune`` (as long as the magnitude-pruned nets are retrained) on round 1's data order."""
    weights = [torch.stack([p[i][0] for p in dense]) for i in range(len(dense[0]))]
    biases = [torch.stack([p[i][1] for p in dense]) for i in range(len(dense[0]))]

    def compute() -> dict[str, torch.Tensor]:
        if part == "lowrank":
            model = lowrank.from_dense(weights, biases, [*LOWRANK_RANKS, None])
        else:
            model = nodes.mlp_from(*nodes.shrink(weights, biases, nodes.importance_kept(weights, NODE_UNITS)))
        seeds = [derive(s, "structured", part) for s in data_seeds(cfg.lottery, 1)]
        train(model, data, eval_at_end(cfg.finetune), seeds, progress=progress and part)
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return _memo(cache, cfg, f"{part}-{LOWRANK_RANKS if part == 'lowrank' else NODE_UNITS}", compute)


def low_rank_finetune(cfg: ComparisonConfig, dense: list[serialize.Params], data: Dataset, cache: ResultCache,
                      progress: bool) -> list[list[lowrank.Layer]]:
    """Per seed, the dense net factorised to :data:`LOWRANK_RANKS` and fine-tuned, as :data:`lowrank.Layer` lists."""
    state = _structured_finetune(cfg, dense, data, cache, "lowrank", progress)
    widths = [int(dense[0][0][0].shape[1])] + [int(w.shape[0]) for w, _ in dense[0]]
    model = lowrank.LowRankMLP(len(dense), widths, [*LOWRANK_RANKS, None])
    model.load_state_dict(state)
    return [lowrank.layers_of(model, r) for r in range(len(dense))]


def nodes_finetune(cfg: ComparisonConfig, dense: list[serialize.Params], data: Dataset, cache: ResultCache,
                   progress: bool) -> list[serialize.Params]:
    """Per seed, the dense net cut to :data:`NODE_UNITS` hidden units by J_o and fine-tuned: smaller dense layers."""
    state = _structured_finetune(cfg, dense, data, cache, "nodes", progress)
    n = len(dense[0])
    return [[(state[f"layers.{i}.weight"][r].float(), state[f"layers.{i}.bias"][r].float()) for i in range(n)]
            for r in range(len(dense))]


def runs_sparse(name: str) -> bool:
    """Whether :func:`run_comparison` times method ``name`` with a sparse (CSR) kernel."""
    return FORMATS.get(name) in ("CSR", "codebook+fixed", "codebook+Huffman")


def multiply_adds(params: serialize.Params, sparse: bool) -> int:
    """Multiply-adds per image: one per stored non-zero (a sparse kernel) or one per weight (a dense one)."""
    return int(sum(int((w != 0).sum()) if sparse else w.numel() for w, _ in params))


def _acc(params: serialize.Params, data: Dataset) -> float:
    return runners.runner_accuracy(runners.dense_runner(params), data.test.x, data.test.y)


def _kept(params: serialize.Params) -> float:
    return float(sum(int((w != 0).sum()) for w, _ in params) / sum(w.numel() for w, _ in params))


def quantization_sweep(nets: list[serialize.Params], bits: tuple[int, ...], index_bits: int, iterations: int,
                       data: Dataset, huffman: bool = True) -> dict:
    """k-means weight sharing (linear init) at each bit width, no centroid fine-tuning, of every net (one
    per seed; pruned, or dense — quantisation without pruning): ``{"bits", "test_acc", "bytes"}`` and,
    with ``huffman``, ``"bytes_huffman"``, each value a list over bit widths of per-seed lists.
    Accuracy is that of the network decoded from the fixed-width bytes (``bytes``, the paper's P+Q
    storage); ``bytes_huffman`` is the same network Huffman-coded (P+Q+H)."""
    out: dict = {"bits": sorted(int(b) for b in bits), "test_acc": [], "bytes": [],
                 **({"bytes_huffman": []} if huffman else {})}
    for b in out["bits"]:
        shared = [compression.share_weights(p, b, iterations) for p in nets]
        blobs = [compression.serialize_deep_compression(s, index_bits, huffman=False) for s in shared]
        out["test_acc"].append([_acc(compression.shared_params(compression.deserialize_deep_compression(x)), data)
                                for x in blobs])
        out["bytes"].append([len(x) for x in blobs])
        if huffman:
            out["bytes_huffman"].append([len(compression.serialize_deep_compression(s, index_bits)) for s in shared])
    return out


def matched_size(cfg: ComparisonConfig, dense: list[serialize.Params], sweeps: Mapping[str, dict], data: Dataset,
                 cache: ResultCache, progress: bool) -> dict:
    """Deep Compression's Fig. 6 at one size: pruning + quantisation (the pruned nets k-means-shared at
    ``cfg.bits``, from ``sweeps["pruned"]``) against quantisation only (the dense nets k-means-shared)
    and pruning only (retrained, CSR), each single method at the smallest of its settings whose bytes
    are at least P+Q's (so neither is given fewer bytes). Quantisation is k-means without centroid
    fine-tuning in both arms."""
    p, d = sweeps["pruned"], sweeps["dense"]
    i = p["bits"].index(cfg.bits)
    budget = max(p["bytes"][i])
    for b in range(1, 17):  # quantisation only: the fewest bits that reach the budget (1 bit is not in the sweep)
        q = ({k: v[d["bits"].index(b)] for k, v in d.items() if k != "bits"} if b in d["bits"] else
             {k: v[0] for k, v in quantization_sweep(dense, (b,), cfg.index_bits, cfg.kmeans_iterations, data,
                                                     huffman=False).items() if k != "bits"})
        if min(q["bytes"]) >= budget:
            break
    pruned_only, scale = pruned_to_size(cfg, dense, budget, data, cache, progress)
    return {"budget_bytes": budget,
            "pq": {"bits": cfg.bits, "bytes": p["bytes"][i], "test_acc": p["test_acc"][i]},
            "quantized": {"bits": b, "bytes": q["bytes"], "test_acc": q["test_acc"]},
            "pruned": {"scale": scale, "fraction_kept": float(np.mean([_kept(n) for n in pruned_only])),
                       "bytes": [len(serialize.serialize_csr(n)) for n in pruned_only],
                       "test_acc": [_acc(n, data) for n in pruned_only]}}


def init_comparison(cfg: ComparisonConfig, pruned: list[serialize.Params], data: Dataset, cache: ResultCache,
                    progress: bool) -> dict:
    """Deep Compression's Fig. 8: test accuracy of the pruned nets k-means-shared from each centroid
    initialisation (:data:`lotterylib.compression.INITS`) at each of ``cfg.init_bits``, after centroid
    fine-tuning (``cfg.centroids``; every initialisation of a seed sees the same data order).
    ``{"bits", "fine_tuned": True, init: [per bit width: per-seed accuracies]}``."""
    runs = [(init, r) for init in compression.INITS for r in range(len(pruned))]
    out: dict = {"bits": list(cfg.init_bits), "fine_tuned": True, **{init: [] for init in compression.INITS}}
    for b in cfg.init_bits:
        shared = [compression.share_weights(pruned[r], b, cfg.kmeans_iterations, init=init, seed=r) for init, r in runs]
        books = _memo(cache, cfg, f"inits_{b}_bits",
                      functools.partial(_finetune_centroids, cfg, shared, [r for _, r in runs], data, progress))
        accs = [_acc(compression.shared_params(run), data) for run in _with_codebooks(shared, books)]
        for init in compression.INITS:
            out[init].append([a for (i, _), a in zip(runs, accs) if i == init])
    return out


def run_comparison(cfg: ComparisonConfig, data: Dataset, cache: ResultCache, *, progress: bool = False,
                   batch: int = 1000, repeats: int = 3, batches: tuple[int, ...] = (1, 64)) -> dict:
    """Train/load every method, serialise, decode, evaluate, time. JSON-able summary (see module doc).

    Every method is timed at ``batch``; the dense and the pruned (CSR) nets also at each of ``batches``
    (Deep Compression's Fig. 9 is at batch 1, its batched case, Appendix A, at batch 64)."""
    nets = dense_and_ticket(cfg, data, cache, progress)
    dense, ticket = nets["dense"], nets["ticket"]
    pruned = magnitude_finetune(cfg, data, cache, progress)
    shared, tuned = deep_compression_layers(cfg, pruned, data, cache, progress)
    sm_blobs, sm_info = supermask_at_init(cfg, dense, data)
    ep_blobs = edge_popup(cfg, data, cache, progress)
    trimmed = net_trim(cfg, dense, data, cache)
    bwn, xnor = (binary_net(cfg, m, data, cache, progress) for m in ("bwn", "xnor"))
    wired = dnw(cfg, data, cache, progress)
    factorised = low_rank_finetune(cfg, dense, data, cache, progress)
    shrunk = nodes_finetune(cfg, dense, data, cache, progress)

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
    add("nodes", *_through(serialize.serialize_dense, serialize.deserialize_dense, shrunk))
    lr_blobs = [lowrank.serialize_lowrank(f) for f in factorised]
    lr_decoded = [lowrank.deserialize_lowrank(b) for b in lr_blobs]
    add("lowrank", lr_blobs, [lowrank.dense_params(f) for f in lr_decoded])
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
            "magnitude_dense": runners.dense_runner(decoded["magnitude"]),
            "lowrank": lowrank.runner(lr_decoded[0]),
            "nodes": runners.dense_runner(decoded["nodes"])}
    seconds = runners.time_runners(runs, x, repeats=repeats, inner=3, threads=1)
    per_batch = runners.time_batches({k: runs[k] for k in ("dense", "magnitude")}, data.test.x, batches,
                                     repeats=repeats, images=batch)
    for name, m in methods.items():
        key = "dc" if name == "dc_pq" else name
        m["inference_ms"] = 1e3 * seconds[key]
        m["ratio_vs_dense"] = seconds[key] / seconds["dense"]
        # What the runner timed above multiplies per image (binary nets: one ±1 product per weight).
        m["multiply_adds"] = (lowrank.multiply_adds(lr_decoded[0]) if name == "lowrank" else
                              multiply_adds(decoded["dense"], False) if name in ("bwn", "xnor") else
                              multiply_adds(decoded[name], sparse=runs_sparse(name)))
    xnor_check = runners.runner_accuracy(runs["xnor"], data.test.x, data.test.y)

    # quantisation with and without pruning, at every bit width of the sweep (Figs. 6 and 7)
    sweeps = {name: quantization_sweep(nets_, tuple(sorted({*cfg.sweep_bits, cfg.bits})), cfg.index_bits,
                                       cfg.kmeans_iterations, data, huffman=name == "pruned")
              for name, nets_ in (("pruned", pruned), ("dense", dense))}
    sweeps["reference"] = {"pruned": methods["magnitude"]["test_acc"], "dense": methods["dense"]["test_acc"]}

    dense_bytes = methods["dense"]["bytes"]
    dc = {"compression": [d / b for d, b in zip(dense_bytes, methods["dc"]["bytes"])],
          "compression_pq": [d / b for d, b in zip(dense_bytes, methods["dc_pq"]["bytes"])],
          "kmeans_only_acc": sweeps["pruned"]["test_acc"][sweeps["pruned"]["bits"].index(cfg.bits)],
          "streams": compression.stream_bits(tuned[0], cfg.index_bits),
          "sweep": sweeps,
          "matched": matched_size(cfg, dense, sweeps, data, cache, progress)}
    if cfg.init_bits:
        dc["inits"] = init_comparison(cfg, pruned, data, cache, progress)
    return {"config": {"ticket_round": cfg.ticket_round, "bits": cfg.bits, "index_bits": cfg.index_bits,
                       "seeds": list(cfg.lottery.seeds), "batch": batch, "threads": 1},
            "methods": methods,
            "extra_ms": {k: 1e3 * seconds[k] for k in ("xnor_float", "magnitude_dense")},
            "batches": {str(b): {k: 1e3 * v for k, v in t.items()} for b, t in per_batch.items()},
            "xnor_kernel_test_acc": xnor_check,
            "dc": dc,
            "supermask": sm_info}


def _through(ser, de, nets: list[serialize.Params]) -> tuple[list[bytes], list[serialize.Params]]:
    blobs = [ser(p) for p in nets]
    return blobs, [de(b) for b in blobs]
