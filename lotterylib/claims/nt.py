"""Net-Trim claims (claims.md §3): experiments on the nested spirals and on MNIST, and their checks.

Two studies, each one cache entry (summary JSON + the weights the chapter draws):

* :func:`spirals_study` — train several 2·200·200·2 ReLU nets (one per seed, trained together as one
  population) on nested spirals, then per net: cascade Net-Trim with the supplementary's settings
  (NT-1), a sweep of ε for parallel and cascade Net-Trim (NT-3), and both versions on the same net
  link-normalized, where the theorems' bounds apply (NT-8, NT-9).
* :func:`mnist_study` — train LeNet-300-100 (one per seed), then parallel Net-Trim over a sweep of ε
  against magnitude pruning at the same per-layer sparsity, neither retrained (NT-6, NT-7).

The spirals study uses the supplementary's own scale: 200 training points, as many as the H2O
spirals set it names (§3; the set in the H2O tutorials has 100 points per arm), and the layer programs
written on all of them. Its ε, γ and κ are the supplementary's (ε₁ = 0.01·‖Y¹‖_F relative to layer
1 only; γ = 1.1 for every later layer, ε_ℓ² = γ·Σ_Ω(w_mᵀŷ_p − y_mp)² as in (S.4); κ = 0.35 on the
last layer only, (S.7) and §2), as the 2018 code computes them too (``mnist_fc/cascade_vs_parallel.py``:
``epsilon = sqrt(1.1)·‖V − Y‖``). How the supplementary trained its net is not stated.

On MNIST the quick profile writes the layer programs on P = 1,000 samples for a 785-input layer: the
trimmed layers fit those samples but generalise unevenly, and whether Net-Trim beats magnitude pruning
changed with the seed (seed 1: it lost by 0.2–1 pp at every sparsity; seeds 0, 2: it won by up to
18 pp). So NT-6 and NT-7 are decided only by the full profile (P = 10,000, longer-trained nets, three
seeds); the quick chapter shows the comparison for one seed without deciding it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .. import data as data_mod
from .. import models, nettrim, toydata
from ..cache import ResultCache
from ..seeds import derive
from ..train import TrainConfig, configure_threads, evaluate, train
from . import Claim, Context, Part, Verdict, combine, experiment, register, stats

NIPS = "Net-Trim (Aghasi, Abdi, Nguyen & Romberg, NIPS 2017)"


def _supp(where: str) -> str:
    """Where in the NIPS 2017 supplementary (DNNToolBox/Net-Trim-v1, Additional Material/Supplementary.pdf)."""
    return f"{NIPS}, {where} of the supplementary"

JOURNAL = "Fast Convex Pruning of Deep Neural Networks (Aghasi, Abdi & Romberg, arXiv 1806.06457, 2018; SIAM J. Math. Data Sci. 2020)"


# --- spirals -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpiralsConfig:
    """The nested-spirals study. ``seed`` draws the data; ``seeds`` are the nets trained on it (their
    initialisations and minibatch orders). ``samples``: P, the points the layer programs are written on."""

    seed: int = 0
    seeds: tuple[int, ...] = (0, 1, 2)
    widths: tuple[int, ...] = (2, 200, 200, 2)
    n_train: int = 200
    noise: float = 0.04
    turns: float = 1.5
    # 1,000 epochs of the 200 points (the H2O tutorial trains its spirals net for 1,000 epochs).
    train: TrainConfig = TrainConfig(iterations=4000, batch_size=50, lr=2e-3, eval_every=1000)
    samples: int = 200
    gains: tuple[float, ...] = (0.01, 0.02, 0.04)
    nt1_gain: float = 0.01
    gamma: float = 1.1
    kappa: float = 0.35
    max_iter: int = 1000

    def __post_init__(self):
        if self.nt1_gain not in self.gains:
            raise ValueError(f"the NT-1 gain {self.nt1_gain} must be one of the swept gains {self.gains}")


def spirals_config(profile: str, seed: int) -> SpiralsConfig:
    if profile == "quick":
        # 500 ADMM iterations per layer program (a third less time than 1,000; NT-1/3/8/9 gave the same
        # verdicts, and NT-1's layer-2 count moved from 3613 to 3620 on seed 0).
        return SpiralsConfig(seed=seed, seeds=tuple(3 * seed + i for i in range(3)), max_iter=500)
    # 20 nets, as the supplementary's 20 retrainings per ε in Fig. S.2.
    return SpiralsConfig(seed=seed, seeds=tuple(20 * seed + i for i in range(20)), max_iter=3000,
                         gains=(0.0025, 0.005, 0.01, 0.02, 0.04, 0.08))


def spirals_data(cfg: SpiralsConfig):
    return toydata.spirals_dataset(cfg.n_train, 1000, 2000, cfg.noise, derive(cfg.seed, "spirals"), cfg.turns)


def _params_json(params) -> dict:
    return {f"w{i}": w.float() for i, (w, _) in enumerate(params)} | {f"b{i}": b.float() for i, (_, b) in enumerate(params)}


def params_from(state: Mapping[str, torch.Tensor], prefix: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(W, b)] stored under ``prefix`` in a study's tensors."""
    n = sum(1 for k in state if k.startswith(prefix + ".w"))
    return [(state[f"{prefix}.w{i}"].double(), state[f"{prefix}.b{i}"].double()) for i in range(n)]


def _accuracy(model, split) -> float:
    return float(evaluate(model, split)[1][0])


def _trim_record(model, trimmed: nettrim.NetTrim, x, data) -> dict:
    """What the checks and the chapter read of one trimmed net; ``model``: the one-run net it came from."""
    net = trimmed.model()
    return {"nonzeros": trimmed.nonzeros, "original_nonzeros": trimmed.original_nonzeros,
            "fraction_kept": trimmed.fraction_kept(),
            "rd_train": nettrim.relative_discrepancy(model, net, x),
            "rd_test": nettrim.relative_discrepancy(model, net, data.test.x),
            "test_acc": _accuracy(net, data.test), "epsilons": trimmed.epsilons,
            "layer_discrepancy": nettrim.layer_discrepancies(model, net, x),
            "bounds": [float(b) for b in nettrim.theorem_bounds(trimmed)],
            "slack": nettrim.solver_slack(trimmed),
            "l1": [float(w.abs().sum() + b.abs().sum()) for w, b in trimmed.params()],
            "original_l1": [float(w.abs().sum() + b.abs().sum()) for w, b in nettrim.layer_params(model)],
            "seconds": float(sum(t.seconds for t in trimmed.layers)),
            "iterations": [t.iterations for t in trimmed.layers],
            "ball_violation": [t.ball_violation for t in trimmed.layers],
            "ineq_violation": [t.ineq_violation for t in trimmed.layers], "notes": trimmed.notes}


def _trim_run(cfg: SpiralsConfig, net, x, data) -> tuple[dict, dict]:
    """Everything the spirals claims need of one trained net: (record, the trimmed nets run 0 draws)."""
    opts = {"max_iter": cfg.max_iter}
    # Three sweeps of ε: parallel and cascade with κ = 1 (Fig. S.2, NT-3), and cascade with the NT-1
    # risk coefficient κ, whose point at the NT-1 gain is NT-1 itself (the others place the paper's
    # ε_rd on this net's sparsity–discrepancy curve).
    sweep: dict[str, list] = {"parallel": [], "cascade": [], "cascade_kappa": []}
    keep: dict[str, Any] = {}
    kappa_one: dict[float, nettrim.NetTrim] = {}
    for mode in sweep:
        warm = None
        for g in cfg.gains:
            if mode == "parallel":
                r = nettrim.parallel(net, x, g, warm=warm, **opts)
            elif mode == "cascade":
                r = kappa_one[g] = nettrim.cascade(net, x, g, gamma=cfg.gamma, kappa=1.0, warm=warm, **opts)
            else:  # κ changes only the last layer's program: start every layer from the κ = 1 solution
                r = nettrim.cascade(net, x, g, gamma=cfg.gamma, kappa=cfg.kappa, warm=kappa_one[g], **opts)
            warm = r
            sweep[mode].append({"gain": g, **_trim_record(net, r, x, data)})
            if g == cfg.nt1_gain:
                keep["nt1" if mode == "cascade_kappa" else mode] = r
    # The theorems' setting: the same net link-normalized (same decisions, outputs scaled), both versions
    # at the NT-1 gain, cascade with κ = 1 (the theorem's ε_L). ``balance``: its weights are tiny.
    # Layer 1's program is the same in both versions: the cascade starts from the parallel solution.
    normalized = nettrim.to_model(nettrim.link_normalize(nettrim.layer_params(net))[0])
    theorems = {"parallel": nettrim.parallel(normalized, x, cfg.nt1_gain, balance=True, **opts)}
    theorems["cascade"] = nettrim.cascade(normalized, x, cfg.nt1_gain, gamma=cfg.gamma, kappa=1.0, balance=True,
                                          warm=theorems["parallel"], **opts)
    nt1 = next(p for p in sweep["cascade_kappa"] if p["gain"] == cfg.nt1_gain)
    record = {"test_acc": _accuracy(net, data.test), "nt1": nt1, "sweep": sweep,
              "theorems": {mode: _trim_record(normalized, r, x, data) for mode, r in theorems.items()}}
    return record, keep


def _spirals_compute(cfg: SpiralsConfig, progress: bool) -> tuple[dict, dict]:
    configure_threads()
    data = spirals_data(cfg)
    model = models.MLP(len(cfg.seeds), list(cfg.widths)).reset_parameters([derive(s, "spirals-init") for s in cfg.seeds])
    start = time.time()
    train(model, data, cfg.train, [derive(s, "spirals-data") for s in cfg.seeds], progress=progress and "spirals")
    train_seconds = time.time() - start
    x = data.train.x[:cfg.samples]
    runs, tensors = [], {}
    for i, seed in enumerate(cfg.seeds):
        net = nettrim.to_model(nettrim.layer_params(model, i))
        record, keep = _trim_run(cfg, net, x, data)
        runs.append({"seed": seed, **record})
        if i == 0:  # the chapter draws the first net's decision boundaries
            tensors = {f"original.{k}": v for k, v in _params_json(nettrim.layer_params(net)).items()}
            for name, r in keep.items():
                tensors |= {f"{name}.{k}": v for k, v in _params_json(r.params()).items()}
    summary = {"config": dataclasses.asdict(cfg), "train_seconds": train_seconds, "samples": int(x.shape[0]),
               "runs": runs}
    return summary, tensors


def _study(cache: ResultCache, cfg: Any, compute, folder: str) -> tuple[dict, dict]:
    with cache.lock(cfg, folder):
        entry = cache.get(cfg, folder)
        if entry is None:
            summary, tensors = compute()
            entry = cache.put(cfg, lambda w: (w.json(summary), w.tensors(tensors)), folder)
    return entry.json(), entry.tensors()


def spirals_study(cfg: SpiralsConfig, cache: ResultCache | None = None, progress: bool = False) -> tuple[dict, dict]:
    """(summary, tensors) of the spirals study, from the cache or computed (a minute or two on one core)."""
    return _study(cache or ResultCache(), cfg, lambda: _spirals_compute(cfg, progress), "nettrim")


# --- MNIST -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MnistConfig:
    """LeNet-300-100 on MNIST (one net per seed), then parallel Net-Trim vs magnitude pruning, no retraining."""

    seed: int = 0
    seeds: tuple[int, ...] = (0,)
    model: str = "lenet_300_100"
    train: TrainConfig = TrainConfig(iterations=2000, batch_size=60, lr=1.2e-3, eval_every=500)
    samples: int = 1000
    gains: tuple[float, ...] = (0.05, 0.1, 0.2)
    max_iter: int = 500


def mnist_config(profile: str, seed: int) -> MnistConfig:
    if profile == "quick":
        return MnistConfig(seed=seed, seeds=(seed,))
    return MnistConfig(seed=seed, seeds=tuple(3 * seed + i for i in range(3)),
                       train=TrainConfig(iterations=20000, batch_size=60, lr=1.2e-3, eval_every=1000),
                       samples=10000, max_iter=1500, gains=(0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4))


def _mnist_compute(cfg: MnistConfig, data_root, progress: bool) -> tuple[dict, dict]:
    configure_threads()
    data = data_mod.load("mnist", data_root)
    model = models.build(cfg.model, [derive(s, "mnist-init") for s in cfg.seeds])
    start = time.time()
    train(model, data, cfg.train, [derive(s, "mnist-data") for s in cfg.seeds], progress=progress and "LeNet-300-100")
    train_seconds = time.time() - start
    x = data.train.x[:cfg.samples]
    runs = []
    for i, seed in enumerate(cfg.seeds):
        net = nettrim.to_model(nettrim.layer_params(model, i))
        points, warm = [], None
        for g in cfg.gains:
            r = nettrim.parallel(net, x, g, warm=warm, max_iter=cfg.max_iter)
            warm = r
            trimmed = r.model()
            mag = nettrim.magnitude_prune(net, r.nonzeros)
            points.append({"gain": g, "nonzeros": r.nonzeros, "fraction_kept": r.fraction_kept(),
                           "nettrim_acc": _accuracy(trimmed, data.test), "magnitude_acc": _accuracy(mag, data.test),
                           "rd_test": nettrim.relative_discrepancy(net, trimmed, data.test.x[:2000]),
                           "seconds": float(sum(t.seconds for t in r.layers)),
                           "ball_violation": [t.ball_violation for t in r.layers],
                           "ineq_violation": [t.ineq_violation for t in r.layers]})
        runs.append({"seed": seed, "test_acc": _accuracy(net, data.test),
                     "original_nonzeros": nettrim.nonzeros(net), "points": points})
    summary = {"config": dataclasses.asdict(cfg), "train_seconds": train_seconds, "runs": runs}
    return summary, {}


def mnist_study(cfg: MnistConfig, cache: ResultCache | None = None, data_root=None,
                progress: bool = False) -> dict:
    """Summary of the MNIST study, from the cache or computed (about a minute on one core, quick)."""
    return _study(cache or ResultCache(), cfg, lambda: _mnist_compute(cfg, data_root, progress), "nettrim")[0]


@experiment("nt")
def nt_experiment(profile: str, seed: int, context: Context) -> dict:
    """Both studies for ``profile`` and ``seed``: {"spirals": summary, "mnist": summary}."""
    cache = context.cache or ResultCache()
    spirals, _ = spirals_study(spirals_config(profile, seed), cache, context.progress)
    mnist = mnist_study(mnist_config(profile, seed), cache, context.data_root, context.progress)
    return {"spirals": spirals, "mnist": mnist}


# --- checks ------------------------------------------------------------------------------------

#: The supplementary's NT-1 numbers (§3, Fig. S.1; read in its text).
NT1_PAPER = {"rd": 0.046, "before": (397, 39770, 399), "after": (362, 2663, 131)}


def _layer2_factor(record: Mapping[str, Any]) -> float:
    return record["original_nonzeros"][1] / max(record["nonzeros"][1], 1)


def _stated_or_better(values: Sequence[float], stated: float, better: str) -> bool | None:
    """A paper number met: within 2 SE of the seed mean (consistent), or beyond it on the ``better``
    side ("below" or "above"); None with fewer than two seeds."""
    consistent = stats.consistent_with(values, stated)
    if consistent is None:
        return None
    mean = float(np.mean(values))
    return consistent or (mean < stated if better == "below" else mean > stated)


def at_discrepancy(run: Mapping[str, Any], rd: float, layer: int = 1, mode: str = "cascade_kappa") -> float | None:
    """A run's layer non-zeros along its ε sweep, interpolated (log-log) at relative discrepancy ``rd``;
    None outside the sweep's range."""
    sweep = run["sweep"][mode]
    return _interp_log(rd, [p["rd_train"] for p in sweep], [p["nonzeros"][layer] for p in sweep])


def _check_nt1(summary: Mapping[str, Any], profile: str) -> Verdict:
    runs = summary["spirals"]["runs"]
    recs = [r["nt1"] for r in runs]
    rd = [r["rd_train"] for r in recs]
    factor = [_layer2_factor(r) for r in recs]
    paper_factor = NT1_PAPER["before"][1] / NT1_PAPER["after"][1]
    after = np.asarray([r["nonzeros"] for r in recs], float)
    acc_before, acc_after = [r["test_acc"] for r in runs], [r["test_acc"] for r in recs]
    loss = stats.gap(acc_before, acc_after)
    kept = " / ".join(stats.mean_se(after[:, i], 1, 0) for i in range(after.shape[1]))
    parts = [
        Part("ε_rd vs the paper's 0.046",
             _stated_or_better(rd, NT1_PAPER["rd"], "below"), f"{stats.mean_se(rd, 1, 4)} (holds within 2 SE or below)"),
        Part(f"layer 2 ÷ vs the paper's ÷{paper_factor:.1f}",
             _stated_or_better(factor, paper_factor, "above"),
             f"÷{stats.mean_se(factor, 1, 1)} (holds within 2 SE or above); non-zeros after {kept} "
             f"(paper {' / '.join(map(str, NT1_PAPER['after']))})"),
        Part("test accuracy kept",
             None if not loss.decidable else not loss.exceeds(),
             f"original − trimmed {loss.text()} (holds unless > 2 SE)"),
    ]
    # Where the paper's net stands on our nets' sparsity–discrepancy trade-off: layer 2 along each
    # net's ε sweep at the paper's ε_rd (reported, not decided).
    same_rd = [at_discrepancy(r, NT1_PAPER["rd"]) for r in runs]
    same_rd = [r["nt1"]["original_nonzeros"][1] / v for r, v in zip(runs, same_rd) if v is not None]
    at_paper = (f"at the paper's ε_rd 0.046 (ε swept, γ and κ as NT-1), layer 2 shrinks "
                f"÷{stats.mean_se(same_rd, 1, 1)} ({len(same_rd)} of {len(runs)} nets reach it)"
                if same_rd else "no net's ε sweep reaches the paper's ε_rd")
    return combine(parts, float(np.mean(factor)),
                   note=f"{len(runs)} nets (seeds), P = {summary['spirals']['samples']} samples; {at_paper}. ε, γ, κ "
                        "are the supplementary's (ε on layer 1 only, γ on the later layers, κ on the last one, as in "
                        "the authors' 2018 code); a tighter ADMM tolerance, a 1e-3 or 1e-4 zero threshold and more "
                        "samples moved layer 2 by a few per cent in our trials; how the supplementary trained its "
                        "net is not stated (chapter 04, §3)")


def _interp_log(x: float, xs: list[float], ys: list[float]) -> float | None:
    """log-log interpolation of y at x over increasing xs; None outside their range."""
    order = np.argsort(xs)
    lx, ly = np.log(np.asarray(xs)[order]), np.log(np.maximum(np.asarray(ys, dtype=float)[order], 1e-12))
    if not lx[0] <= math.log(x) <= lx[-1]:
        return None
    return float(np.exp(np.interp(math.log(x), lx, ly)))


def nt3_comparison(run: Mapping[str, Any]) -> list[dict]:
    """One net's cascade points against parallel's non-zeros interpolated at the same ε_rd (where in range)."""
    par, cas = run["sweep"]["parallel"], run["sweep"]["cascade"]
    rd = [p["rd_train"] for p in par]
    out = []
    for c in cas:
        total = _interp_log(c["rd_train"], rd, [sum(p["nonzeros"]) for p in par])
        last = _interp_log(c["rd_train"], rd, [p["nonzeros"][-1] for p in par])
        if total is not None:
            out.append({"rd": c["rd_train"], "cascade": sum(c["nonzeros"]), "parallel": total,
                        "cascade_last": c["nonzeros"][-1], "parallel_last": last})
    return out


def _check_nt3(summary: Mapping[str, Any], profile: str) -> Verdict:
    # Per net: how much sparser cascade is than parallel at equal ε_rd, 1 − cascade/parallel averaged
    # over its matched points; the ordering holds when the seed mean exceeds 2 SE above 0.
    saving = []
    for run in summary["spirals"]["runs"]:
        pairs = nt3_comparison(run)
        if pairs:
            saving.append(float(np.mean([1 - p["cascade"] / p["parallel"] for p in pairs])))
    if not saving:
        return Verdict(None, "no cascade point inside the parallel sweep's ε_rd range", note="widen the ε sweep")
    g = stats.gap(saving, [0.0] * len(saving))
    return Verdict(g.exceeds(), f"cascade keeps fewer weights than parallel at equal ε_rd by {g.text(100, '%', 1)}",
                   g.diff, note=f"{len(saving)} nets with matched points")


def _mnist_by_gain(mnist: Mapping[str, Any]) -> list[dict]:
    """Per swept ε: the per-seed values the MNIST claims compare (lists over the nets)."""
    runs = mnist["runs"]
    out = []
    for k, gain in enumerate(mnist["config"]["gains"]):
        pts = [r["points"][k] for r in runs]
        out.append({"gain": gain, "kept": [p["fraction_kept"] for p in pts],
                    "nettrim": [p["nettrim_acc"] for p in pts], "magnitude": [p["magnitude_acc"] for p in pts],
                    "loss": [r["test_acc"] - p["nettrim_acc"] for r, p in zip(runs, pts)]})
    return out


def _check_nt6(summary: Mapping[str, Any], profile: str) -> Verdict:
    points = _mnist_by_gain(summary["mnist"])
    gaps = [stats.gap(p["nettrim"], p["magnitude"]) for p in points]
    listed = "; ".join(f"kept {stats.mean_se(p['kept'], 100, 1)} %: {g.text()}" for p, g in zip(points, gaps))
    worse = [stats.gap(p["magnitude"], p["nettrim"]).exceeds() for p in points]
    never_worse = None if None in worse else not any(worse)
    sparsest = min(range(len(points)), key=lambda k: np.mean(points[k]["kept"]))
    parts = [Part("magnitude pruning significantly better at no matched sparsity", never_worse, listed),
             Part("Net-Trim significantly better at the sparsest point", gaps[sparsest].exceeds(), gaps[sparsest].text())]
    return combine(parts, 100 * gaps[sparsest].diff,
                   note=f"Net-Trim − magnitude test accuracy; no retraining; {len(summary['mnist']['runs'])} nets; "
                        f"P = {summary['mnist']['config']['samples']} samples")


def _check_nt7(summary: Mapping[str, Any], profile: str) -> Verdict:
    # The journal states a range (90–98 % removed) and "very little loss", which has no number: the
    # range is decided (some swept ε puts the seed mean inside it), the loss only reported with its SE.
    points = _mnist_by_gain(summary["mnist"])
    removed = [1 - float(np.mean(p["kept"])) for p in points]
    inside = [p for p, r in zip(points, removed) if 0.90 <= r <= 0.98]
    shown = inside or points
    listed = "; ".join(f"ε gain {p['gain']}: removed {stats.mean_se([1 - k for k in p['kept']], 100, 1)} %, "
                       f"loss {stats.mean_se(p['loss'], 100, 2)} pp" for p in shown)
    return Verdict(bool(inside), listed if inside else f"no swept ε removes 90–98 % ({listed})",
                   max(removed), note="only the stated compression range is decided; the accuracy loss is reported "
                                      "with its SE, since 'very little loss' has no number")


def _nt_bound_check(mode: str):
    """NT-8 (parallel, Theorem 1) and NT-9 (cascade, Theorem 2) on the link-normalized nets: every
    layer's measured ‖Ŷ^ℓ − Y^ℓ‖_F within the bound, allowing only the solver's measured violations."""
    def check(summary: Mapping[str, Any], profile: str) -> Verdict:
        worst, lines, holds = 0.0, [], True
        for run in summary["spirals"]["runs"]:
            rec = run["theorems"][mode]
            ratios = [m / (b * (1 + s)) for m, b, s in zip(rec["layer_discrepancy"], rec["bounds"], rec["slack"])]
            holds &= all(r <= 1 for r in ratios)
            worst = max(worst, *ratios)
            lines.append("/".join(f"{r:.4g}" for r in ratios))
        norms = [max(abs(v - 1) for v in run["theorems"][mode]["original_l1"]) for run in summary["spirals"]["runs"]]
        return Verdict(holds, f"measured / bound per layer, each net: {'; '.join(lines)}", worst,
                       note=f"{len(lines)} link-normalized nets (‖U_ℓ‖₁ = 1 within {max(norms):.1e}); the bound "
                            "enlarged only by the solver's measured constraint violations (nettrim.solver_slack)")
    return check


def _not_run(reason: str):
    def check(summary: Mapping[str, Any], profile: str) -> Verdict:
        return Verdict(None, "not run", note=reason)
    return check


_DROPOUT = "needs dropout (and ℓ1) training, which lotterylib.train does not provide"

register(Claim("NT-1", _supp("§3, Fig. S.1"),
               "Cascade Net-Trim on the 2·200·200·2 spirals net (ε = 0.01‖Y¹‖_F, γ = 1.1, κ = 0.35) thins "
               "layer 2 at a slight output discrepancy, the decision boundary visibly unchanged",
               "ε_rd 0.046; non-zeros 397/39770/399 → 362/2663/131 [supp. §3, read in the text]",
               "ε_rd within 2 SE of 0.046 or below; layer-2 factor within 2 SE of ÷14.9 or more; test accuracy "
               "not lower by > 2 SE", "nt", _check_nt1))
register(Claim("NT-2", _supp("§3"), "Net trained with dropout + ℓ1, then cascade Net-Trim",
               "ε_rd 0.0183; 319/6554/304 → 189/929/84 [supp. §3, read in the text]",
               "layer 2 further ÷ ≥ 5 (catalogue proposal; to be replaced by the stated numbers when run)",
               "nt", _not_run(_DROPOUT), decidable=("full",)))
register(Claim("NT-3", _supp("§3, Fig. S.2"), "Cascade Net-Trim is sparser than parallel at equal relative discrepancy",
               "ordering [supp. §3, read in the text: 'for a constant discrepancy ε_rd, the cascade Net-Trim is "
               "capable of generating rather sparser networks']",
               "1 − cascade/parallel non-zeros at matched ε_rd, seed mean > 2 SE above 0", "nt", _check_nt3))
register(Claim("NT-4", _supp("Table S.1"), "Non-zeros before → after (dropout nets, cascade, ε_rd < 0.02)",
               "e.g. 2·200·200·2: 400/39668/399 → 399/1991/113 [supp. Table S.1, read]",
               "±50 % per cell (catalogue proposal)", "nt", _not_run(_DROPOUT), decidable=("full",)))
register(Claim("NT-5", _supp("Table S.2"), "Non-zeros before → after (dropout + ℓ1 nets)",
               "e.g. 2·200·200·2: 134/8700/382 → 109/606/70 [supp. Table S.2, read]",
               "±50 % per cell (catalogue proposal)", "nt", _not_run(_DROPOUT), decidable=("full",)))
register(Claim("NT-6", NIPS + ", §5", "Without retraining, Net-Trim keeps higher test accuracy than magnitude pruning "
               "at the same per-layer sparsity (MNIST FC)",
               "ordering [NIPS §5, not read here: the NIPS PDF was not available]",
               "at no matched sparsity magnitude pruning better by > 2 SE; Net-Trim better by > 2 SE at the sparsest",
               "nt", _check_nt6, decidable=("full",)))
register(Claim("NT-7", JOURNAL, "MNIST FC: 90–98 % of the connections removed with very little loss of test accuracy",
               "'compression factors between 10x and 50x (removing 90% to 98% of the connections) with very little "
               "loss in test accuracy' [journal text, read in a quoted excerpt; its section not checked here]",
               "some swept ε removes 90–98 % (seed mean); the loss reported with its SE, not decided",
               "nt", _check_nt7, decidable=("full",)))
register(Claim("NT-8", NIPS + ", Theorem 1 (supp. §4.2, Prop. S.1a)",
               "Parallel Net-Trim on a link-normalized net: ‖Ŷ^ℓ − Y^ℓ‖_F ≤ Σ_{j≤ℓ} ε_j at every layer",
               "a theorem (bound holds for every link-normalized ReLU net)",
               "measured ≤ bound × (1 + the solver's measured violation), every layer, every net",
               "nt", _nt_bound_check("parallel"), kind="invariant"))
register(Claim("NT-9", NIPS + ", Theorem 2 (supp. §4.3, Prop. S.1b)",
               "Cascade Net-Trim on a link-normalized net: ‖Ŷ^ℓ − Y^ℓ‖_F ≤ ε₁·√(Π_{2≤j≤ℓ} γ_j) at every layer",
               "a theorem (bound holds for every link-normalized ReLU net)",
               "measured ≤ bound × (1 + the solver's measured violation), every layer, every net",
               "nt", _nt_bound_check("cascade"), kind="invariant"))
