"""XNOR-Net (Rastegari et al., ECCV 2016) and relatives: claims XN-1 … XN-11 (claims.md §4).

One experiment, ``xnor``: LeNet-5 on MNIST with every method of :mod:`lotterylib.binary` (the
core methods — FP, BWN, XNOR — the two Table 3 ablations — BWN with a learned α, XNOR-Net in
the C-B-A-P block order — and DoReFa's bit widths, W = A = k and the W/A/G grid, with three seeds;
the others, among them XNOR-Net with α = 1 and with binarised first/last layers, with one in
``quick``), the serialized sizes of the packed models, the exactness of the XNOR + popcount kernel
on odd shapes, and its speed against float32 ``torch.matmul`` as the last ``make bench`` measured it. In ``full`` every method has three seeds, the core methods are also trained on
CIFAR-10 (a small VGG), and BinaryConnect's permutation-invariant MNIST MLP is trained with the
paper's recipe (XN-10). The training results are cached; the kernel's exactness is checked on every
call, its speed read from the benchmark records (:mod:`lotterylib.bench`).
"""

from __future__ import annotations

import numpy as np

from .. import bench, binary, bitpack
from ..cache import ResultCache
from ..data import load
from ..train import TrainConfig
from . import Claim, Context, Part, Verdict, combine, experiment, full_run_command, register, stats

PAPER = "XNOR-Net (Rastegari et al. 2016)"
BC_PAPER = "BinaryConnect (Courbariaux et al. 2015)"
CORE = ("fp", "bwn", "xnor")
TABLE3 = ("bwn_learned", "xnor_cbap")  # Table 3a: α learned; Table 3b: the C-B-A-P block
DOREFA = tuple(f"dorefa{k}" for k in binary.DOREFA_BITS) + tuple(binary.DOREFA_WAG)  # three seeds in every profile
EXTRA = ("bc", "bc_stoch", "xnor_unscaled", "xnor_k")
ALL_FP = "xnor_all_binary"  # XNOR with first and last layers binarised too
BC_MLP = {"bc_mlp": "bc", "bc_mlp_stoch": "bc_stoch"}  # BinaryConnect's MNIST MLP, det. and stoch.

# BinaryConnect's MNIST recipe (Courbariaux et al. 2015, §3.1; authors' code MatthieuCourbariaux/BinaryConnect,
# mnist.py and binary_connect.py as first pushed, commit 1b4b5ec): 784-1024-1024-1024-10, every layer binary
# and followed by BatchNorm (ReLU on the hidden ones), squared hinge loss, SGD without momentum, minibatch 200,
# lr 3 → 0.1 exponentially over 1000 epochs, no dropout, the last 10,000 training images for validation, test
# error at the epoch of the best validation error (see binary.RECIPES["binaryconnect"] for the units of lr).
BC_TRAIN = TrainConfig(iterations=250_000, batch_size=200, optimizer="sgd", momentum=0.0, lr=3.0, lr_final=0.1,
                       loss="squared_hinge", eval_every=250)

SETTINGS = {
    # quick: 16 populations (12 of three seeds) must train within the chapter's 4 minutes on 2 cores,
    # so each network sees 80 minibatches of 50 images and is tested on the first 2,000 test images.
    "quick": {"train": TrainConfig(iterations=80, batch_size=50, lr=2e-3, eval_every=80),
              "extra_seeds": 1, "all_binary_seeds": 1, "test_size": 2000, "cifar": None, "binaryconnect": None,
              "extra": ("bc", "xnor_unscaled", "xnor_k"),
              "bench": {"m": 1024, "k": 4096, "n": 1024, "repeats": 5},
              "sweep": {"m": 512, "n": 512, "ks": (64, 128, 256, 512, 1024, 2048, 4096), "repeats": 3}},
    "full": {"train": TrainConfig(iterations=16_500, batch_size=100, lr=1e-3, eval_every=1100),
             "extra_seeds": 3, "all_binary_seeds": 3, "test_size": 0, "extra": EXTRA,
             "cifar": TrainConfig(iterations=20_000, batch_size=128, lr=1e-3, eval_every=1000),
             "binaryconnect": BC_TRAIN,
             "bench": {"m": 1024, "k": 4096, "n": 1024, "repeats": 9},
             "sweep": {"m": 1024, "n": 1024, "ks": (64, 128, 256, 512, 1024, 2048, 4096, 8192), "repeats": 7}},
}
EXACT_SHAPES = ((1, 1, 1), (7, 63, 9), (13, 65, 6), (33, 1000, 17), (64, 4096, 64), (5, 4097, 11))


def seeds_for(seed: int, n: int = 3) -> tuple[int, ...]:
    """The seeds of the runs of one CLI/notebook seed: disjoint sets for different seeds."""
    return tuple(int(seed) * 10 + i for i in range(n))


def configs(profile: str, seed: int) -> dict[str, binary.BinaryConfig]:
    """Name → BinaryConfig of every training of the experiment (names: methods, plus ``xnor_cbap``,
    ``xnor_all_binary``, ``cifar_<method>`` and BinaryConnect's MLP ``bc_mlp`` / ``bc_mlp_stoch``)."""
    s = SETTINGS[profile]
    three, extra = seeds_for(seed), seeds_for(seed, s["extra_seeds"])
    kw = {"train": s["train"], "test_size": s["test_size"]}
    out = {m: binary.BinaryConfig(method=m, seeds=three, **kw) for m in CORE + ("bwn_learned",)}
    out["xnor_cbap"] = binary.BinaryConfig(method="xnor", order="cbap", seeds=three, **kw)
    out[ALL_FP] = binary.BinaryConfig(method="xnor", binarize_first_last=True,
                                      seeds=seeds_for(seed, s["all_binary_seeds"]), **kw)
    out.update({m: binary.BinaryConfig(method=m, seeds=extra, **kw) for m in s["extra"]})
    # DoReFa's bit widths are compared with their neighbours: error bars need three seeds.
    out.update({m: binary.BinaryConfig(method=m, seeds=three, **kw) for m in DOREFA})
    if s["cifar"] is not None:
        out.update({f"cifar_{m}": binary.BinaryConfig(method=m, arch="vgg_small", dataset="cifar10", seeds=three,
                                                      train=s["cifar"]) for m in CORE})
    if s["binaryconnect"] is not None:
        out.update({name: binary.BinaryConfig(method=m, arch="mlp_bc", binarize_first_last=True, seeds=three,
                                              train=s["binaryconnect"], order="cbap", recipe="binaryconnect",
                                              validation_size=10_000, curve_size=10_000)
                    for name, m in BC_MLP.items()})
    return out


#: The benchmark records of the kernel's speed (``benchmarks/bench_xnor.py``, ``make bench``).
BENCH = "xnor_matmul_1024x4096x1024_t1"
BENCH_SWEEP = "xnor_sweep_512xKx512_t1"


def kernel_summary(profile: str, seed: int = 0) -> dict:
    """Exactness of the XNOR + popcount kernel on odd shapes (computed here), and its speed against float32
    from the last ``make bench`` (a timing is never measured in a chapter: it depends on the machine
    and its load). ``bench``: the 1024×4096·4096×1024 record's measurement with its ``machine`` and
    ``date`` (None when no benchmark was run); ``sweep``: the speed-up against K."""
    rng = np.random.default_rng(seed)
    exact = []
    for m, k, n in EXACT_SHAPES:
        a, b = rng.standard_normal((m, k)), rng.standard_normal((n, k))
        ref = (np.where(a >= 0, 1.0, -1.0) @ np.where(b >= 0, 1.0, -1.0).T).astype(np.int64)
        got = bitpack.xnor_matmul(bitpack.pack_signs(a), bitpack.pack_signs(b), k)
        exact.append({"shape": [m, k, n], "exact": bool(np.array_equal(got, ref))})
    rec, sweep = bench.record(BENCH), bench.record(BENCH_SWEEP)
    # A record made before the bench kept the measurement's details cannot fill the chapter: none.
    timing = None if rec is None or "details" not in rec else {**rec["details"], "machine": rec.get("machine"),
                                                                "date": rec.get("date"), "made": bench.made(rec)}
    return {"exact": exact, "bench": timing, "sweep": sweep["sweep"] if sweep else []}


@experiment("xnor")
def xnor_experiment(profile: str, seed: int, context: Context) -> dict:
    """Train (or load) every configuration, measure sizes and the kernel. JSON-able summary.

    ``acc``: per-seed test accuracy after training; ``early_stop_acc`` (BinaryConnect's MLP): per-seed
    test accuracy at the evaluation of the best validation accuracy (:func:`best_validation_test_acc`).
    """
    cache = context.cache or ResultCache()
    datasets: dict = {}
    results = {}
    for name, cfg in configs(profile, seed).items():
        key = (cfg.dataset, cfg.validation_size)
        if key not in datasets:
            datasets[key] = load(cfg.dataset, context.data_root, device=context.device,
                                 validation_size=cfg.validation_size)
        results[name] = binary.run_binary(cfg, datasets[key], cache=cache,
                                          progress=f"{name}" if context.progress else False)
    return {"profile": profile, "seed": seed,
            "acc": {k: r["test_acc"] for k, r in results.items()},
            "early_stop_acc": {k: best_validation_test_acc(results[k]["history"]) for k in BC_MLP if k in results},
            "size": {k: r["size"] for k, r in results.items()},
            "seconds": {k: r["seconds"] for k, r in results.items()},
            "kernel": kernel_summary(profile, seed)}


def best_validation_test_acc(history: dict) -> list[float]:
    """Per run: the test accuracy at the evaluation with the highest validation accuracy, the latest
    one on ties (BinaryConnect's ``train`` keeps the latest epoch whose validation error is ≤ the best)."""
    val, test = np.asarray(history["val_acc"], float), np.asarray(history["test_acc"], float)
    latest_best = val.shape[1] - 1 - np.argmax(val[:, ::-1], axis=1)
    return test[np.arange(val.shape[0]), latest_best].tolist()


# --- checks --------------------------------------------------------------------------------------
# Orderings are decided by lotterylib.claims.stats (gap > 2 pooled standard errors of the per-seed
# accuracies); a paper number is compared only where the source states it.

def _pct(xs) -> np.ndarray:
    return 100.0 * np.asarray(xs, dtype=float)


def gap(summary, a: str, b: str) -> stats.Gap:
    """Accuracy of configuration ``a`` − ``b`` over their seeds (fractions; ``.text()`` in pp)."""
    return stats.gap(summary["acc"][a], summary["acc"][b])


def _mean(summary, name: str) -> float:
    return float(_pct(summary["acc"][name]).mean())


def _ordering(summary, a: str, b: str, what: str, profile: str = "full", quick_decides: bool = True) -> Part:
    """Part "a > b": holds when the gap exceeds 2 pooled SE; the text gives both seed means ± SE.

    ``quick_decides=False``: the quick budget (a few percent of an epoch) is too small for this ordering,
    so in ``quick`` the part is shown, whatever it measured, and left to the full profile.
    """
    g = gap(summary, a, b)
    acc = summary["acc"]
    text = f"{stats.mean_se(acc[a])} vs {stats.mean_se(acc[b])} % ({g.text()})"
    if profile == "quick" and not quick_decides:
        return Part(what, None, text + f"; undecided in quick ({SETTINGS['quick']['train'].iterations} iterations): "
                    "decided in full", counts=False)
    return Part(what, g.exceeds(), text)


def check_table3(summary, profile) -> Verdict:
    alpha = _ordering(summary, "bwn", "bwn_learned", "BWN, analytic α > learned α", profile, quick_decides=False)
    order = _ordering(summary, "xnor", "xnor_cbap", "XNOR-Net, B-A-C-P > C-B-A-P", profile, quick_decides=False)
    return combine([alpha, order], gap(summary, "xnor", "xnor_cbap").diff * 100,
                   note="each part: gap between seed means > 2 pooled SE (3 seeds each); LeNet-5 / MNIST, not "
                        "ImageNet AlexNet: only the orderings compared")


def check_inputs(summary, profile) -> Verdict:
    part = _ordering(summary, "bwn", "xnor", "BWN > XNOR-Net", profile)
    return Verdict(part.holds, part.measured, gap(summary, "bwn", "xnor").diff * 100,
                   note="gap between seed means > 2 pooled SE (3 seeds each)")


def check_cite(summary, profile) -> Verdict:
    return Verdict(None, "—", note="ImageNet-scale result: cited, not reproducible on small data")


def check_mnist_xnor(summary, profile) -> Verdict:
    acc = _pct(summary["acc"]["xnor"])
    return Verdict(stats.consistent_with(acc, 99.23),
                   f"XNOR LeNet-5 {stats.mean_se(acc, scale=1)} % (FP {stats.mean_se(summary['acc']['fp'])} %)",
                   float(acc.mean()), note="99.23 within 2 SE of the seed mean")


def check_memory(summary, profile) -> Verdict:
    s = summary["size"]["xnor"]
    rb, rm = s["ratio_binary"], s["ratio_model"]
    # exact arithmetic: a row of k weights takes 4k bytes in float32 and ⌈k/64⌉ words of 8 bytes as bits.
    expect_f = sum(4 * v["rows"] * v["k"] for v in s["layers"].values())
    expect_p = sum(8 * v["rows"] * bitpack.words(v["k"]) for v in s["layers"].values())
    arithmetic = s["binary_layers_float"] == expect_f and s["binary_layers_packed"] == expect_p
    ok = 30.0 <= rb <= 32.0 and rm < rb and s["bytes_packed"] < s["bytes_float"]
    return Verdict(bool(ok and arithmetic),
                   f"binary layers {rb:.2f}× smaller (padding to 64-bit words), whole XNOR LeNet-5 {rm:.2f}× "
                   f"({s['bytes_float'] / 1e3:.0f} kB → {s['bytes_packed'] / 1e3:.1f} kB)", rb,
                   note="binary layers within [30, 32]×; the whole model less (FP first/last layers, biases, BN)")


def check_formula(summary, profile) -> Verdict:
    s = float(bitpack.speedup_formula(256, 9))
    limit = float(bitpack.speedup_formula(1e9, 1))
    ok = abs(s - 62.27) < 0.005 and 63.99 < limit <= 64.0
    return Verdict(ok, f"S(c=256, N_W=9) = {s:.2f}×, → {limit:.2f}× as c·N_W → ∞", s)


def check_first_last(summary, profile) -> Verdict:
    part = _ordering(summary, "xnor", ALL_FP, "first/last in full precision > all layers binary")
    return Verdict(part.holds, part.measured, gap(summary, "xnor", ALL_FP).diff * 100,
                   note="gap between seed means > 2 pooled SE (3 seeds each)")


def check_exact(summary, profile) -> Verdict:
    ex = summary["kernel"]["exact"]
    bad = [e["shape"] for e in ex if not e["exact"]]
    return Verdict(not bad, f"{len(ex) - len(bad)}/{len(ex)} shapes exact (K = 1, 63, 65, 1000, 4096, 4097)"
                   + (f"; wrong: {bad}" if bad else ""), float(len(ex) - len(bad)))


def check_speed(summary, profile) -> Verdict:
    b = summary["kernel"]["bench"]
    if b is None:
        return Verdict(None, "—", note="no benchmark recorded: run `make bench`")
    return Verdict(b["ratio"] > 1.0,
                   f"{b['ratio']:.1f}× vs torch fp32 ({b['torch_gflops']:.0f} GFLOP/s), 1 thread; "
                   f"{b['ratio_with_packing']:.1f}× counting the packing of A; naive loop {b['ratio_naive']:.1f}× "
                   f"({b['made']})", b["ratio"],
                   note="the paper's 58× is per convolution on its CPU: the check asks only 'faster than float32'")


#: BinaryConnect's MNIST test errors (%): deterministic from Table 2 as the reference notes give it (the
#: paper's table not read here), stochastic as the authors' README states for the code that reproduces the paper's run.
BC_STATED = {"bc_mlp": 1.29, "bc_mlp_stoch": 1.18}


def check_binaryconnect(summary, profile) -> Verdict:
    parts = []
    for name, label in (("bc_mlp", "deterministic"), ("bc_mlp_stoch", "stochastic")):
        err = 100.0 - _pct(summary["early_stop_acc"][name])
        parts.append(Part(f"{label} (paper {BC_STATED[name]} %)", stats.consistent_with(err, BC_STATED[name]),
                          f"{stats.mean_se(err, scale=1)} % test error at the best validation epoch"))
    return combine(parts, float(100.0 - _pct(summary["early_stop_acc"]["bc_mlp_stoch"]).mean()),
                   note="each: the stated error within 2 SE of the seed mean (3 seeds)")


register(Claim("XN-1", PAPER, "Table 3: the analytic scaling factor beats a learned one (BWN), and the block order "
               "B-A-C-P beats the typical C-B-A-P (XNOR-Net); here LeNet-5 on MNIST",
               "ImageNet AlexNet top-1 / top-5 (§4.3, Table 3, read in the text of arXiv 1603.05279): BWN with α by "
               "eq. 6 56.8 / 79.4 vs α 'using a separate layer' 46.2 / 69.5; XNOR-Net C-B-A-P 30.3 / 57.5 vs "
               "B-A-C-P 44.2 / 69.2",
               "each ordering: gap between seed means > 2 pooled SE (full profile; quick shows them only)",
               "xnor", check_table3))
register(Claim("XN-2", PAPER, "Released Torch models (README)", "alexnet_BWN 56.8, alexnet_XNOR 43.3 top-1",
               "cite", "xnor", check_cite, decidable=(), kind="cited"))
register(Claim("XN-3", PAPER, "ResNet-18 / GoogLeNet on ImageNet (Table 2)", "ResNet-18 FP 69.3, BWN 60.8, XNOR 51.2",
               "cite", "xnor", check_cite, decidable=(), kind="cited"))
register(Claim("XN-4", PAPER, "XNOR LeNet-5 on MNIST (jiecaoyu/XNOR-Net-PyTorch README, not the paper)",
               "99.23 % (FP 99.34 %)", "99.23 within 2 SE of the seed mean", "xnor", check_mnist_xnor,
               decidable=("full",)))
register(Claim("XN-5", PAPER, "32× memory saving for binarised layers, measured on the serialized model",
               "32×", "binary layers 30–32×, model less", "xnor", check_memory, kind="invariant"))
register(Claim("XN-6", PAPER, "Speed-up formula S = 64·c·N_W/(c·N_W + 64) (§4.1, Fig. 4)",
               "62.27× at c=256, 3×3 (58× measured)", "exact arithmetic", "xnor", check_formula, kind="invariant"))
register(Claim("XN-7", PAPER, "Keeping the first and last layers in full precision matters (reference code)",
               "first/last FP in every released model", "gap between seed means > 2 pooled SE", "xnor",
               check_first_last, decidable=("full",)))
register(Claim("XN-8", PAPER, "XNOR + popcount on bit-packed operands equals the ±1 product exactly (§3.2)",
               "exact", "exact, incl. K not a multiple of 64", "xnor", check_exact, kind="invariant"))
register(Claim("XN-9", PAPER, "The XNOR + popcount matrix product is faster than float32 on a CPU (§4.1: 58× per "
               "convolution on theirs); measured by make bench", "58× (their CPU conv)", "time ratio > 1 (machine-dependent)",
               "xnor", check_speed, kind="timing"))
register(Claim("XN-10", BC_PAPER, "BinaryConnect's MNIST test error: permutation-invariant MLP, 3 × 1024 ReLU, "
               "BatchNorm, squared hinge loss, SGD with an exponentially decaying lr, minibatch 200 (§3.1, Table 2)",
               "deterministic 1.29 % (Table 2, from the reference notes: not read in the paper here), stochastic "
               "1.18 % (Table 2, likewise; the authors' README: 'around 1.18%')",
               f"each stated error within 2 SE of the seed mean; full profile only: {full_run_command('XN')}",
               "xnor", check_binaryconnect, decidable=("full",)))
register(Claim("XN-11", PAPER, "Binarising the inputs as well as the weights costs accuracy: BWN > XNOR-Net "
               "(Table 1; here LeNet-5 on MNIST)",
               "ImageNet AlexNet top-1 BWN 56.8, XNOR-Net 44.2 (Table 1, read in the text; the same table's BNN, "
               "Hubara et al.'s method, 27.9)",
               "gap between seed means > 2 pooled SE", "xnor", check_inputs))
