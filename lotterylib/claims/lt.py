"""Lottery Ticket Hypothesis (Frankle & Carbin, ICLR 2019): the LeNet-300-100 / MNIST claims LT-1 … LT-5.

Profiles share one code path and differ only in sizes:

* ``quick`` (CPU, about a minute): 3 seeds, 1,000 iterations per round, 50 % of hidden and 25 % of
  output weights pruned per round, 4 rounds (Pm 100 → 6.3 %). At 1,000 iterations validation loss is
  still falling, so the early-stopping claims (LT-2) cannot be decided; LT-1's "learns faster" is
  checked as validation accuracy after the first fifth of training.
* ``full`` (the paper's settings): 5 seeds, 50,000 iterations, 20 % / 10 % per round, 20 rounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..cache import ResultCache
from ..data import DataError, load
from ..lottery import LotteryConfig, run_imp, run_oneshot, summarize
from ..train import TrainConfig
from . import Claim, Context, NotReached, Verdict, experiment, full_run_command, register
from .stats import fmt_pp, gap_and_se, seed_se

PAPER = "Frankle & Carbin 2019"


def lt_config(profile: str, seed: int = 0) -> tuple[LotteryConfig, int, tuple[int, ...]]:
    """(config, IMP rounds, one-shot rounds) of a profile; ``seed`` shifts every run's seed."""
    if profile == "quick":
        seeds = tuple(3 * seed + i for i in range(3))
        cfg = LotteryConfig(train=TrainConfig(iterations=1000, eval_every=50), seeds=seeds,
                            rate_fc=0.5, rate_output=0.25)
        return cfg, 4, (2, 4)
    if profile == "full":
        seeds = tuple(5 * seed + i for i in range(5))
        cfg = LotteryConfig(train=TrainConfig(iterations=50_000, eval_every=100), seeds=seeds)
        return cfg, 20, (3, 7, 12, 15)
    raise ValueError(f"unknown profile {profile!r}; choose quick or full")


@dataclass(frozen=True)
class LTSettings:
    """Everything the LT experiment of a profile runs; its hash names the committed full result."""

    lottery: LotteryConfig
    rounds: int
    oneshot_rounds: tuple[int, ...]


def lt_settings(profile: str, seed: int = 0) -> LTSettings:
    return LTSettings(*lt_config(profile, seed))


def _mean_curve(values: np.ndarray) -> list[float]:
    return [round(float(v), 5) for v in np.asarray(values, float).mean(0)]


def curves(rounds) -> dict:
    """Seed-mean test accuracy and validation loss against iteration, per (round, variant): the figures' data."""
    out = []
    for r in rounds:
        for variant, h in r.histories.items():
            out.append({"round": r.round, "variant": variant, "weights_remaining": r.weights_remaining,
                        "iterations": [int(i) for i in h.iterations], "test_acc": _mean_curve(h.test_acc),
                        "val_loss": _mean_curve(h.val_loss)})
    return {"rows": out}


def _rows_to_summary(profile: str, rounds, oneshot, early_fraction: float = 0.2) -> dict:
    rows = summarize(list(rounds) + list(oneshot))
    for r in list(rounds) + list(oneshot):
        for variant, h in r.histories.items():
            # LT-1's "learns faster": validation accuracy after the first fifth of training.
            k = int(np.searchsorted(h.iterations, early_fraction * h.iterations[-1]))
            row = next(x for x in rows if x["round"] == r.round and x["variant"] == variant)
            row["early_iteration"] = int(h.iterations[k])
            row["per_seed_early_val_acc"] = h.val_acc[:, k].tolist()
    return {"profile": profile, "rows": rows}


@experiment("lt_lenet_mnist", settings=lt_settings)
def lt_lenet_mnist(profile: str, seed: int, context: Context) -> dict:
    """IMP (tickets + random reinit) and one-shot on LeNet-300-100 / MNIST; the chapter's numbers.

    Under ``context.deadline`` the IMP rounds come first and one-shot only if another round's time
    is left; the summary says whether every planned round ran (``complete``).
    """
    s = lt_settings(profile, seed)
    cache = context.cache or ResultCache()
    data = load("mnist", context.data_root, device=context.device)
    kw = dict(cache=cache, device=context.device, progress=context.progress)
    imp = run_imp(s.lottery, data, s.rounds, deadline=context.deadline, **kw)
    oneshot = []
    # One-shot trains every target × seed at once: about 1.5 IMP rounds' time on a GPU.
    if len(imp) == s.rounds + 1 and (context.deadline is None or time.time() + 1.5 * imp[-1].seconds < context.deadline):
        oneshot = run_oneshot(s.lottery, data, s.oneshot_rounds, **kw)
    summary = _rows_to_summary(profile, imp, oneshot)
    summary["complete"] = len(imp) == s.rounds + 1 and len(oneshot) == len(s.oneshot_rounds)
    summary["rounds_done"] = len(imp) - 1
    summary["curves"] = curves(imp + oneshot)
    return summary


CIFAR_FULL = "the full CIFAR-10 at $LOTTERYLIB_DATA/cifar-10-batches-py/ and a GPU"
CONV_LT = {  # LT paper Fig. 2: iterations, Adam lr, conv rate per round (fc 20 %, output 10 %)
    "conv2": (20_000, 2e-4, 0.1), "conv4": (25_000, 3e-4, 0.1), "conv6": (30_000, 3e-4, 0.15)}


@dataclass(frozen=True)
class ConvSettings:
    """The LT paper's Conv-2/4/6 on CIFAR-10 (its Figure 5): one IMP experiment per network."""

    nets: tuple[LTSettings, ...]


def conv_settings(profile: str, seed: int = 0) -> ConvSettings:
    """The paper's settings (there is no quick version: CIFAR-10 needs the full dataset and a GPU)."""
    seeds = tuple(5 * seed + i for i in range(5))
    return ConvSettings(tuple(
        LTSettings(LotteryConfig(model=m, dataset="cifar10", train=TrainConfig(iterations=its, lr=lr, eval_every=100),
                                 seeds=seeds, rate_conv=rate_conv), 20, ())
        for m, (its, lr, rate_conv) in CONV_LT.items()))


@experiment("lt_conv_cifar", settings=conv_settings)
def lt_conv_cifar(profile: str, seed: int, context: Context) -> dict:
    """IMP with reinit controls on Conv-2/4/6 / CIFAR-10 — only with the full CIFAR-10 on disk."""
    try:
        data = load("cifar10", context.data_root, device=context.device)
    except DataError as err:
        return {"available": False, "note": str(err).splitlines()[0]}
    if data.note or profile != "full":  # the verified 4,000-image subset cannot decide the paper's numbers
        return {"available": False, "note": data.note or "full profile only"}
    cache = context.cache or ResultCache()
    out: dict = {"available": True, "complete": True, "nets": {}}
    for s in conv_settings(profile, seed).nets:
        imp = run_imp(s.lottery, data, s.rounds, cache=cache, device=context.device, progress=context.progress,
                      deadline=context.deadline)
        out["nets"][s.lottery.model] = {**_rows_to_summary(profile, imp, []), "curves": curves(imp)}
        out["complete"] &= len(imp) == s.rounds + 1
    return out


def _conv_nets(s: Mapping[str, Any]) -> dict:
    if not s.get("available"):
        raise NotReached("needs the full CIFAR-10 (the verified subset is too small): put cifar-10-batches-py/ "
                         "under $LOTTERYLIB_DATA and run: " + full_run_command("LT"))
    return s["nets"]


def check_lt6(s: Mapping[str, Any], profile: str) -> Verdict:
    parts, ok = [], True
    for net, summary in _conv_nets(s).items():
        dense = _dense(summary)["early_stop_iteration"]
        best = min((r for r in summary["rows"] if r["variant"] == "ticket" and r["round"] > 0),
                   key=lambda r: r["early_stop_iteration"])
        ok &= dense / best["early_stop_iteration"] >= 2.0
        parts.append(f"{net} {dense / best['early_stop_iteration']:.1f}× at Pm {100 * best['weights_remaining']:.1f}%")
    return Verdict(bool(ok), "early stop, best round vs dense: " + "; ".join(parts))


def check_lt7(s: Mapping[str, Any], profile: str) -> Verdict:
    parts, ok = [], True
    for net, summary in _conv_nets(s).items():
        dense = _dense(summary)["test_acc"]
        best = max((r for r in summary["rows"] if r["variant"] == "ticket" and r["round"] > 0), key=lambda r: r["test_acc"])
        ok &= best["test_acc"] - dense >= 0.015
        parts.append(f"{net} {fmt_pp(best['test_acc'] - dense)} at Pm {100 * best['weights_remaining']:.1f}%")
    return Verdict(bool(ok), "best ticket − dense: " + "; ".join(parts))


def check_lt8(s: Mapping[str, Any], profile: str) -> Verdict:
    parts, ok = [], True
    for net, summary in _conv_nets(s).items():
        sparse = [r["weights_remaining"] for r in summary["rows"] if r["variant"] == "reinit" and r["weights_remaining"] <= 0.10]
        if not sparse:
            raise NotReached(f"{net}: no round at Pm ≤ 10%")
        gap = min(_row(summary, "ticket", pm)["test_acc"] - _row(summary, "reinit", pm)["test_acc"] for pm in sparse)
        ok &= gap >= 0.02
        parts.append(f"{net} {fmt_pp(gap)}")
    return Verdict(bool(ok), "smallest ticket − reinit gap at Pm ≤ 10%: " + "; ".join(parts))


# --- helpers for the checks ---------------------------------------------------------------------

def _row(summary: Mapping[str, Any], variant: str, pm: float) -> dict:
    """The row of ``variant`` whose weights remaining is closest to ``pm``."""
    rows = [r for r in summary["rows"] if r["variant"] == variant]
    best = min(rows, key=lambda r: abs(np.log(r["weights_remaining"]) - np.log(pm)), default=None)
    # A round within a fifth (in log) of the target is "at" it; further away the run did not get there.
    if best is None or abs(np.log(best["weights_remaining"]) - np.log(pm)) > 0.2:
        raise NotReached(f"no {variant} round near Pm {100 * pm:.1f}%")
    return best


def _dense(summary: Mapping[str, Any]) -> dict:
    dense = next((r for r in summary["rows"] if r["variant"] == "ticket" and r["round"] == 0), None)
    if dense is None:
        raise NotReached("the dense network (round 0) was not trained")
    return dense


def _check_gap(a: list[float], b: list[float], min_gap: float, what: str) -> Verdict:
    gap, se = gap_and_se(a, b)
    holds = gap >= min_gap and gap > se
    return Verdict(holds, f"{what}: {fmt_pp(gap)} (SE {100 * se:.2f} pp)", gap,
                   "" if holds else f"needs ≥ {fmt_pp(min_gap)} and above one standard error")


# --- the claims ---------------------------------------------------------------------------------

def check_lt1(s: Mapping[str, Any], profile: str) -> Verdict:
    dense = _dense(s)
    if profile == "quick":
        ticket = _row(s, "ticket", 0.25)
        gap, se = gap_and_se(ticket["per_seed_early_val_acc"], dense["per_seed_early_val_acc"])
        holds = gap > 0 and gap > se
        return Verdict(holds, f"val. acc. at it {ticket['early_iteration']}: ticket Pm={100 * ticket['weights_remaining']:.1f}% "
                              f"{fmt_pp(gap)} vs dense", gap, "quick proxy for 'learns faster'")
    rows = {pm: _row(s, "ticket", pm) for pm in (1.0, 0.513, 0.211, 0.036)}
    it = {pm: r["early_stop_iteration"] for pm, r in rows.items()}
    ordered = it[0.211] < it[0.513] < it[1.0]
    back = abs(it[0.036] - it[1.0]) <= 0.25 * it[1.0]
    se = {pm: seed_se(r.get("per_seed_early_stop", [])) for pm, r in rows.items()}
    failed = ([] if ordered else ["it(21.1) < it(51.3) < it(100) fails"]) + \
             ([] if back else [f"it(3.6) is {100 * (it[0.036] / it[1.0] - 1):+.0f}% off dense, beyond ±25%"])
    measured = "early-stop iteration, seed mean ± SE: " + ", ".join(
        f"Pm {100 * k:.1f}% {it[k]:.0f} ± {se[k]:.0f}" for k in it)
    return Verdict(ordered and back, measured + "".join(f"; {f}" for f in failed))


def check_lt2(s: Mapping[str, Any], profile: str) -> Verdict:
    dense_it = _dense(s)["early_stop_iteration"]
    best = _row(s, "ticket", 0.211)["early_stop_iteration"]
    earlier = 1 - best / dense_it
    return Verdict(0.20 <= earlier <= 0.50, f"{100 * earlier:.0f}% earlier at Pm≈21%", earlier)


def check_lt3(s: Mapping[str, Any], profile: str) -> Verdict:
    dense = _dense(s)
    target = 0.126 if profile == "quick" else 0.135
    ticket = _row(s, "ticket", target)
    v = _check_gap(ticket["per_seed_test_acc"], dense["per_seed_test_acc"], 0.001,
                   f"ticket Pm={100 * ticket['weights_remaining']:.1f}% − dense")
    if profile == "full" and v.holds:
        small = _row(s, "ticket", 0.036)
        diff = small["test_acc"] - dense["test_acc"]
        if abs(diff) > 0.003:
            return Verdict(False, v.measured + f"; at Pm 3.6% {fmt_pp(diff)}", v.value, "Pm 3.6% should be within ±0.3 pp of dense")
    return v


def check_lt4(s: Mapping[str, Any], profile: str) -> Verdict:
    pms = sorted({r["weights_remaining"] for r in s["rows"] if r["variant"] == "reinit" and r["weights_remaining"] <= 0.26})
    worst = None
    for pm in pms:
        t, r = _row(s, "ticket", pm), _row(s, "reinit", pm)
        gap, se = gap_and_se(t["per_seed_test_acc"], r["per_seed_test_acc"])
        if worst is None or gap - se < worst[0] - worst[1]:
            worst = (gap, se, pm)
    if worst is None:
        return Verdict(None, "no round with Pm ≤ 26%", note="run more rounds")
    gap, se, pm = worst
    holds = gap >= 0.003 and gap > se
    return Verdict(holds, f"ticket − reinit, smallest gap over Pm ≤ 25%: {fmt_pp(gap)} at Pm={100 * pm:.1f}%", gap)


def check_lt5(s: Mapping[str, Any], profile: str) -> Verdict:
    dense = _dense(s)
    oneshot = sorted((r for r in s["rows"] if r["variant"] == "oneshot"), key=lambda r: -r["weights_remaining"])
    if not oneshot:
        raise NotReached("no one-shot rounds")
    moderate, smallest = oneshot[0], oneshot[-1]
    g1, se1 = gap_and_se(moderate["per_seed_test_acc"], dense["per_seed_test_acc"])
    iterative = _row(s, "ticket", smallest["weights_remaining"])
    g2, se2 = gap_and_se(iterative["per_seed_test_acc"], smallest["per_seed_test_acc"])
    holds = g1 > se1 and g1 > 0 and g2 > 0 and g2 > se2
    return Verdict(holds, f"one-shot Pm={100 * moderate['weights_remaining']:.1f}% − dense {fmt_pp(g1)}; "
                          f"iterative − one-shot at Pm={100 * smallest['weights_remaining']:.1f}% {fmt_pp(g2)}", g1)


for _claim in (
    Claim("LT-1", f"{PAPER}, Fig. 3", "Winning tickets learn faster than the dense net: early-stop iteration "
          "falls from Pm 100% to 21.1%, and is back near dense at 3.6%", "it(21.1) < it(51.3) < it(100); it(3.6) ≈ it(100)",
          "ordering; ±25% at 3.6%", "lt_lenet_mnist", check_lt1),
    Claim("LT-2", f"{PAPER}, Fig. 4a", "Early stopping happens up to 38% earlier than dense at Pm≈21%",
          "38% earlier", "20–50% earlier", "lt_lenet_mnist", check_lt2, decidable=("full",)),
    Claim("LT-3", f"{PAPER}, Fig. 4a", "Tickets are more accurate than the dense net: > +0.3 pp at Pm 13.5%, "
          "back to dense at 3.6%", "> +0.3 pp at Pm 13.5%", "≥ +0.1 pp (seed means, > 1 SE)", "lt_lenet_mnist", check_lt3),
    Claim("LT-4", f"{PAPER}, Fig. 4a", "Randomly reinitialised tickets learn slower and lose accuracy: "
          "ticket beats reinit at Pm ≤ 21%", "reinit drops from Pm 21.1%; ticket from 2.9%", "≥ 0.3 pp at every Pm ≤ 25%",
          "lt_lenet_mnist", check_lt4),
    Claim("LT-5", f"{PAPER}, Fig. 4b/c", "One-shot pruning also finds tickets (more accurate than dense), "
          "but iterative pruning finds smaller ones", "one-shot > dense for 95% ≥ Pm ≥ 5.17%", "orderings",
          "lt_lenet_mnist", check_lt5),
    Claim("LT-6", f"{PAPER}, Fig. 5", "Conv-2/4/6 tickets on CIFAR-10 early-stop up to 3.5× / 3.5× / 2.5× faster "
          "than the dense net", "3.5× (Pm 8.8%), 3.5× (9.2%), 2.5× (15.1%)", "≥ 2× at the best round",
          "lt_conv_cifar", check_lt6, decidable=("full",), requires=CIFAR_FULL),
    Claim("LT-7", f"{PAPER}, Fig. 5", "Conv-2/4/6 tickets gain test accuracy over the dense net",
          "+3.4 / +3.5 / +3.3 pp", "≥ +1.5 pp at the best round", "lt_conv_cifar", check_lt7, decidable=("full",), requires=CIFAR_FULL),
    Claim("LT-8", f"{PAPER}, Fig. 5", "Randomly reinitialised Conv-2/4/6 subnetworks fall behind the tickets",
          "reinit drops off more quickly", "ticket − reinit ≥ 2 pp at every Pm ≤ 10%", "lt_conv_cifar", check_lt8,
          decidable=("full",), requires=CIFAR_FULL),
):
    register(_claim)
