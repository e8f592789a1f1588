"""Lottery Ticket Hypothesis (Frankle & Carbin, ICLR 2019): the claims LT-1 … LT-8, LT-11 and LT-12.

LeNet-300-100 on MNIST (LT-1 … LT-5, LT-11, LT-12, experiment ``lt_lenet_mnist``) and Conv-2/4/6 on the
full CIFAR-10 (LT-6 … LT-8, ``lt_conv_cifar``, full profile only). Every claim is decided on per-seed
values by the significance rule of :mod:`.stats`, part by part (:class:`~lotterylib.claims.Part`).

Profiles share one code path and differ only in sizes:

* ``quick`` (CPU, minutes): 3 seeds, 1,000 iterations per round (evaluated every 100: validation and test,
  15,000 images, every 50 cost more than the training), 50 % of hidden and 25 % of output
  weights pruned per round, 4 rounds (Pm 100 → 6.3 %). At 1,000 iterations every network early-stops
  near the end, so the early-stopping claims (LT-2, and the iteration parts of the others) and the end
  of a long training (LT-12) are left to full; LT-1's "learns faster" is checked on the mean test
  accuracy over the first 200 iterations (:data:`EARLY_WINDOW`), Pm 50.1 % and 25.1 % standing for the
  paper's 51.3 % and 21.1 %.
* ``full`` (the paper's settings): 5 seeds, 50,000 iterations, 20 % / 10 % per round, 20 rounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .. import plan
from ..cache import ResultCache
from ..data import DataError, load
from ..lottery import LotteryConfig, run_imp, run_oneshot, summarize
from ..train import TrainConfig
from . import Claim, Context, NotReached, Part, Verdict, combine, experiment, full_run_command, register
from . import stats
from .stats import SIGNIFICANCE, consistent_with, fmt_pp, gap, seed_se

PAPER = "Frankle & Carbin 2019"


def lt_config(profile: str, seed: int = 0) -> tuple[LotteryConfig, int, tuple[int, ...]]:
    """(config, IMP rounds, one-shot rounds) of a profile; ``seed`` shifts every run's seed."""
    if profile == "quick":
        seeds = tuple(3 * seed + i for i in range(3))
        cfg = LotteryConfig(train=TrainConfig(iterations=1000, eval_every=100), seeds=seeds,
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


def _per_seed(values: np.ndarray, digits: int = 5) -> list[list[float]]:
    return np.round(np.asarray(values, float), digits).tolist()


def curves(rounds) -> dict:
    """Per-seed curves against iteration, per (round, variant): test and validation accuracy, validation
    and training loss, one list per seed (the figures' data, and the evidence of LT-1)."""
    out = []
    for r in rounds:
        for variant, h in r.histories.items():
            out.append({"round": r.round, "variant": variant, "weights_remaining": r.weights_remaining,
                        "iterations": [int(i) for i in h.iterations], "test_acc": _per_seed(h.test_acc, 4),
                        "val_acc": _per_seed(h.val_acc, 4), "val_loss": _per_seed(h.val_loss),
                        "train_loss": _per_seed(h.train_loss)})
    return {"rows": out, "per_seed": True}


def early_accuracy(h, until: int) -> np.ndarray:
    """Per seed: mean test accuracy over the evaluations after iteration 0 up to ``until`` (LT-1's
    "learns faster": a curve that rises sooner has a larger early mean)."""
    k = (h.iterations > 0) & (h.iterations <= until)
    return h.test_acc[:, k].mean(1)


def iterations_to_reach(h, accuracy: float) -> np.ndarray:
    """Per seed: the first evaluated iteration whose test accuracy is ≥ ``accuracy`` (NaN: never)."""
    out = []
    for row in h.test_acc:
        hit = np.nonzero(row >= accuracy)[0]
        out.append(float(h.iterations[hit[0]]) if len(hit) else float("nan"))
    return np.asarray(out)


#: LT-1's early window: the first 5,000 iterations in full (the paper's Fig. 3 is dominated by them);
#: in quick, the first fifth of its 1,000.
EARLY_WINDOW = {"quick": 200, "full": 5000}
REACH = (0.975, 0.980)  # LT-1's fixed test accuracies


def _rows_to_summary(profile: str, rounds, oneshot) -> dict:
    rows = summarize(list(rounds) + list(oneshot))
    for r in list(rounds) + list(oneshot):
        for variant, h in r.histories.items():
            row = next(x for x in rows if x["round"] == r.round and x["variant"] == variant)
            row["per_seed_final_test_acc"] = h.test_acc[:, -1].tolist()
            row["early_window"] = EARLY_WINDOW[profile]
            row["per_seed_early_acc"] = early_accuracy(h, EARLY_WINDOW[profile]).tolist()
            for a in REACH:
                row[f"per_seed_reach_{a}"] = iterations_to_reach(h, a).tolist()
    return {"profile": profile, "rows": rows}


def lt_plan(profile: str, seed: int = 0) -> list:
    """The populations of ``lt_lenet_mnist``: the IMP rounds in a chain, one-shot after the dense net."""
    s = lt_settings(profile, seed)
    return plan.merge(plan.imp_rounds(s.lottery, s.rounds), [plan.oneshot(s.lottery, s.oneshot_rounds)])


@experiment("lt_lenet_mnist", settings=lt_settings, plan=lt_plan)
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


def _stop_ratio(dense: Sequence[float], other: Sequence[float]) -> tuple[float, float]:
    """dense / other early-stop iterations: ratio of seed means and its standard error (delta method)."""
    d, o = np.asarray(dense, float), np.asarray(other, float)
    ratio = d.mean() / o.mean()
    rel = np.hypot(seed_se(d) / d.mean(), seed_se(o) / o.mean())
    return float(ratio), float(ratio * rel)


def check_lt6(s: Mapping[str, Any], profile: str) -> Verdict:
    """Fig. 5: the best early-stop speed-up over the dense net, compared with the paper's stated one."""
    paper = {"conv2": 3.5, "conv4": 3.5, "conv6": 2.5}
    parts = []
    for net, summary in _conv_nets(s).items():
        dense = _dense(summary)
        best = min((r for r in summary["rows"] if r["variant"] == "ticket" and r["round"] > 0),
                   key=lambda r: r["early_stop_iteration"])
        ratio, se = _stop_ratio(dense["per_seed_early_stop"], best["per_seed_early_stop"])
        ok = abs(ratio - paper[net]) <= SIGNIFICANCE * se if se > 0 else None
        parts.append(Part(net, ok, f"{ratio:.2f}× ± {se:.2f} at Pm {100 * best['weights_remaining']:.1f}% "
                                   f"(paper {paper[net]}×)"))
    return combine(parts, note="the measured best speed-up within 2 SE of the paper's")


def check_lt7(s: Mapping[str, Any], profile: str) -> Verdict:
    """Fig. 5: the best accuracy gain over the dense net, compared with the paper's stated one."""
    paper = {"conv2": 0.034, "conv4": 0.035, "conv6": 0.033}
    parts = []
    for net, summary in _conv_nets(s).items():
        dense = _dense(summary)
        best = max((r for r in summary["rows"] if r["variant"] == "ticket" and r["round"] > 0), key=lambda r: r["test_acc"])
        g = gap(best["per_seed_test_acc"], dense["per_seed_test_acc"])
        ok = g.exceeds() and g.consistent_with(paper[net])
        parts.append(Part(net, ok, f"best ticket − dense {g.text()} at Pm {100 * best['weights_remaining']:.1f}% "
                                   f"(paper {fmt_pp(paper[net])})"))
    return combine(parts, note="a significant gain, within 2 SE of the paper's")


def check_lt8(s: Mapping[str, Any], profile: str) -> Verdict:
    """Fig. 5: reinitialised subnetworks below the tickets at the sparse rounds (Pm ≤ 10 %)."""
    parts = []
    for net, summary in _conv_nets(s).items():
        sparse = [r["weights_remaining"] for r in summary["rows"] if r["variant"] == "reinit" and r["weights_remaining"] <= 0.10]
        if not sparse:
            raise NotReached(f"{net}: no round at Pm ≤ 10%")
        gaps = {pm: gap(_row(summary, "ticket", pm)["per_seed_test_acc"], _row(summary, "reinit", pm)["per_seed_test_acc"])
                for pm in sparse}
        worst = min(gaps, key=lambda pm: gaps[pm].diff - SIGNIFICANCE * gaps[pm].se)
        parts.append(Part(net, all(g.exceeds() for g in gaps.values()),
                          f"ticket − reinit, weakest at Pm {100 * worst:.1f}%: {gaps[worst].text()}"))
    return combine(parts, note="ticket above reinit by > 2 SE at every Pm ≤ 10%")


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


def _rows(summary: Mapping[str, Any], variant: str) -> list[dict]:
    """The rows of ``variant``, densest first."""
    return sorted((r for r in summary["rows"] if r["variant"] == variant), key=lambda r: (-r["weights_remaining"], r["round"]))


def _at(row: Mapping[str, Any]) -> str:
    return f"Pm {100 * row['weights_remaining']:.1f}%"


def _rounds_off(row: Mapping[str, Any] | None, paper_round: int) -> str:
    return "never within this run" if row is None else f"{_at(row)} (round {row['round']}; paper: round {paper_round})"


def _first_significantly_below(summary: Mapping[str, Any], variant: str, key: str = "per_seed_test_acc") -> dict | None:
    """The densest round of ``variant`` whose ``key`` is below the dense network's by > 2 SE."""
    dense = _dense(summary)[key]
    return next((r for r in _rows(summary, variant) if r["round"] > 0 and gap(dense, r[key]).exceeds()), None)


def _near_round(row: Mapping[str, Any] | None, paper_round: int, slack: int = 2) -> bool | None:
    """Whether a drop-off point found in the run is within ``slack`` rounds of the paper's."""
    return None if row is None else abs(row["round"] - paper_round) <= slack


def _needs_per_seed(row: Mapping[str, Any], key: str) -> list[float]:
    if key not in row:
        raise NotReached(f"the stored result has no per-seed {key.removeprefix('per_seed_')} (made before it was "
                         "recorded): rerun the experiment")
    return row[key]


def check_lt1(s: Mapping[str, Any], profile: str) -> Verdict:
    """Fig. 3: learning speed. Per seed, the mean test accuracy over the early window (and, in full, the
    iterations to reach 97.5 % and 98.0 %): Pm 21.1 % faster than 51.3 %, faster than the dense net,
    each by > 2 SE; and at Pm 3.6 % back inside the dense net's seed band."""
    dense = _dense(s)
    key = "per_seed_early_acc"
    window = dense.get("early_window", EARLY_WINDOW[profile])
    if profile == "quick":  # quick: Pm 50.1 % and 25.1 % after 1,000 iterations
        half, fifth = _row(s, "ticket", 0.50), _row(s, "ticket", 0.25)
        g1 = gap(_needs_per_seed(half, key), _needs_per_seed(dense, key))
        g2 = gap(_needs_per_seed(fifth, key), half[key])
        return combine([
            Part(f"{_at(half)} faster than dense (mean test acc. over iterations ≤ {window})", g1.exceeds(), g1.text()),
            Part(f"{_at(fifth)} faster than {_at(half)} (same)", g2.exceeds(), g2.text())],
            g1.diff, "quick: Pm 50.1% and 25.1% stand for the paper's 51.3% and 21.1%; the return at 3.6% "
                     "and the iterations to 97.5%/98.0% are decided in full")
    rows = {pm: _row(s, "ticket", pm) for pm in (1.0, 0.513, 0.211, 0.036)}
    parts = []
    g = gap(_needs_per_seed(rows[0.211], key), _needs_per_seed(rows[0.513], key))
    parts.append(Part(f"Pm 21.1% > 51.3% (mean test acc. over iterations ≤ {window})", g.exceeds(), g.text()))
    g = gap(rows[0.513][key], dense[key])
    parts.append(Part(f"Pm 51.3% > 100% (same)", g.exceeds(), g.text()))
    for a in REACH:
        k = f"per_seed_reach_{a}"
        t = {pm: np.asarray(_needs_per_seed(r, k), float) for pm, r in rows.items() if pm != 0.036}
        if any(np.isnan(v).any() for v in t.values()):
            parts.append(Part(f"iterations to {100 * a:.1f}%", None, "a seed never reached it: undecided"))
            continue
        fast, mid = gap(t[0.513], t[0.211]), gap(t[1.0], t[0.513])  # positive: the sparser one is faster
        parts.append(Part(f"iterations to {100 * a:.1f}%: t(21.1) < t(51.3) < t(100)", fast.exceeds() and mid.exceeds(),
                          f"t(51.3) − t(21.1) {fast.text(1, 'it', 0)}; t(100) − t(51.3) {mid.text(1, 'it', 0)}"))
    band = np.asarray(dense[key], float)
    small = float(np.mean(_needs_per_seed(rows[0.036], key)))
    parts.append(Part("Pm 3.6% back in the dense seed band", bool(band.min() <= small <= band.max()),
                      f"{100 * small:.2f} vs dense {100 * band.min():.2f}…{100 * band.max():.2f}"))
    return combine(parts, note="Fig. 3 is curves; the checks are orderings (> 2 SE) of per-seed learning speed")


def check_lt2(s: Mapping[str, Any], profile: str) -> Verdict:
    """Fig. 4a: the early-stop iteration drops to 38 % earlier than dense at Pm 21.1 %, then returns to the
    dense value at Pm 3.6 % (the ICLR submission said 7 %: ±2 rounds)."""
    dense = _dense(s)
    d = dense["per_seed_early_stop"]
    at21 = _row(s, "ticket", 0.211)
    g = gap(d, at21["per_seed_early_stop"])
    earlier = np.asarray([1 - t / np.mean(d) for t in at21["per_seed_early_stop"]])  # per-seed reduction
    back = next((r for r in _rows(s, "ticket") if r["weights_remaining"] < 0.211 and
                 not gap(d, r["per_seed_early_stop"]).exceeds()), None)
    return combine([
        Part("earlier at Pm 21.1%", g.exceeds(), f"dense − ticket {g.text(1, 'it', 0)}"),
        Part("38% earlier", consistent_with(earlier, 0.38), f"{stats.mean_se(earlier)}% earlier (paper 38%)"),
        Part("back at dense speed near Pm 3.6%", _near_round(back, 15), _rounds_off(back, 15))],
        float(np.mean(earlier)), "first sparser round not significantly earlier than dense, ±2 rounds of the paper's")


def check_lt3(s: Mapping[str, Any], profile: str) -> Verdict:
    """Fig. 4a: tickets more accurate than dense, by > 0.3 pp at Pm 13.5 %; back to dense at 3.6 %."""
    dense = _dense(s)
    target = 0.126 if profile == "quick" else 0.135
    ticket = _row(s, "ticket", target)
    g = gap(ticket["per_seed_test_acc"], dense["per_seed_test_acc"])
    if profile == "quick":
        return combine([Part(f"more accurate at {_at(ticket)}", g.exceeds(), g.text())], g.diff,
                       "quick: the ordering only; the paper's 0.3 pp and the return at 3.6% in full")
    small = gap(_row(s, "ticket", 0.036)["per_seed_test_acc"], dense["per_seed_test_acc"])
    return combine([
        Part(f"more accurate at {_at(ticket)}", g.exceeds(), g.text()),
        Part("by > 0.3 pp", None if not g.decidable else g.diff + SIGNIFICANCE * g.se > 0.003,
             f"{fmt_pp(g.diff)}: not significantly below the paper's +0.3 pp" if g.decidable else "—"),
        Part("back to dense at Pm 3.6%", small.within(), small.text())], g.diff)


def check_lt4(s: Mapping[str, Any], profile: str) -> Verdict:
    """Fig. 4a and §2: reinitialised tickets fall behind. Full: reinit drops below dense at Pm 21.1 %, the
    ticket only at 2.9 % (±2 rounds); at Pm 21 % the ticket early-stops 2.51× sooner and is ~0.5 pp
    more accurate. Quick: ticket above reinit by > 2 SE at every Pm ≤ 25 %."""
    pms = [r["weights_remaining"] for r in _rows(s, "reinit") if r["weights_remaining"] <= 0.26]
    if not pms:
        raise NotReached("no reinit round at Pm ≤ 25%")
    gaps = {pm: gap(_row(s, "ticket", pm)["per_seed_test_acc"], _row(s, "reinit", pm)["per_seed_test_acc"]) for pm in pms}
    worst = min(gaps, key=lambda pm: gaps[pm].diff - SIGNIFICANCE * gaps[pm].se)
    above = Part("ticket above reinit at every Pm ≤ 25%", all(g.exceeds() for g in gaps.values()),
                 f"weakest at Pm {100 * worst:.1f}%: {gaps[worst].text()}")
    if profile == "quick":
        return combine([above], gaps[worst].diff)
    reinit_off, ticket_off = _first_significantly_below(s, "reinit"), _first_significantly_below(s, "ticket")
    t, r = _row(s, "ticket", 0.211), _row(s, "reinit", 0.211)
    ratio, se = _stop_ratio(r["per_seed_early_stop"], t["per_seed_early_stop"])
    acc = gap(t["per_seed_test_acc"], r["per_seed_test_acc"])
    return combine([
        above,
        Part("reinit drops below dense at Pm 21.1%", _near_round(reinit_off, 7), _rounds_off(reinit_off, 7)),
        Part("the ticket only at Pm 2.9%", _near_round(ticket_off, 16), _rounds_off(ticket_off, 16)),
        Part("2.51× sooner at Pm 21%", abs(ratio - 2.51) <= SIGNIFICANCE * se if se > 0 else None,
             f"reinit / ticket early-stop iteration {ratio:.2f}× ± {se:.2f} (paper 2.51×)"),
        Part("~0.5 pp more accurate at Pm 21%", acc.consistent_with(0.005), f"{acc.text()} (paper ~+0.5 pp)")],
        gaps[worst].diff, "drop-off: the densest round significantly (> 2 SE) below dense")


#: Fig. 4c's ranges of one-shot pruning: faster than dense for 67.5 % ≥ Pm ≥ 17.6 %, more accurate for
#: 95.0 % ≥ Pm ≥ 5.17 %.
ONESHOT_SPEED, ONESHOT_ACCURACY = (0.176, 0.675), (0.0517, 0.950)


def check_lt5(s: Mapping[str, Any], profile: str) -> Verdict:
    """Fig. 4c: one-shot tickets early-stop sooner than dense for 67.5 % ≥ Pm ≥ 17.6 % and are more accurate
    for 95.0 % ≥ Pm ≥ 5.17 %; iterative pruning finds better small tickets than one-shot."""
    dense = _dense(s)
    oneshot = _rows(s, "oneshot")
    if not oneshot:
        raise NotReached("no one-shot rounds")
    parts = []
    smallest = oneshot[-1]
    g = gap(_row(s, "ticket", smallest["weights_remaining"])["per_seed_test_acc"], smallest["per_seed_test_acc"])
    iterative = Part(f"iterative above one-shot at {_at(smallest)}", g.exceeds(), g.text())
    if profile == "quick":
        top = oneshot[0]
        acc = gap(top["per_seed_test_acc"], dense["per_seed_test_acc"])
        others = "; ".join(f"{_at(r)} {gap(r['per_seed_test_acc'], dense['per_seed_test_acc']).text()}" for r in oneshot[1:])
        return combine([Part(f"one-shot more accurate than dense at {_at(top)}", acc.exceeds(), acc.text()), iterative],
                       g.diff, "quick checks the densest one-shot point only; the paper's two ranges are decided in "
                               f"full (early stop needs more than 1,000 iterations). Other one-shot points vs dense: {others}")
    for (lo, hi), key, what, sign in ((ONESHOT_SPEED, "per_seed_early_stop", "earlier than dense", -1),
                                      (ONESHOT_ACCURACY, "per_seed_test_acc", "more accurate than dense", 1)):
        inside = [r for r in oneshot if lo <= r["weights_remaining"] <= hi]
        if not inside:
            parts.append(Part(f"{what} for {100 * hi:.1f}% ≥ Pm ≥ {100 * lo:.1f}%", None, "no one-shot point in the range"))
            continue
        gaps = [(r, gap(r[key], dense[key]) if sign > 0 else gap(dense[key], r[key])) for r in inside]
        parts.append(Part(f"{what} for {100 * hi:.1f}% ≥ Pm ≥ {100 * lo:.1f}%", all(g.exceeds() for _, g in gaps),
                          "; ".join(f"{_at(r)} {g.text(1, 'it', 0) if sign < 0 else g.text()}" for r, g in gaps)))
    parts.append(iterative)
    return combine(parts, g.diff)


def check_lt_headline(s: Mapping[str, Any], profile: str) -> Verdict:
    """§1/§2: LeNet tickets at Pm 13.5 % and 7.0 % reach a higher test accuracy than the dense net, and do
    so in fewer iterations (early stop)."""
    dense = _dense(s)
    targets = (0.126,) if profile == "quick" else (0.135, 0.07)
    parts = []
    for pm in targets:
        row = _row(s, "ticket", pm)
        acc = gap(row["per_seed_test_acc"], dense["per_seed_test_acc"])
        parts.append(Part(f"more accurate at {_at(row)}", acc.exceeds(), acc.text()))
        if profile == "full":
            it = gap(dense["per_seed_early_stop"], row["per_seed_early_stop"])
            parts.append(Part(f"fewer iterations at {_at(row)}", it.exceeds(), f"dense − ticket {it.text(1, 'it', 0)}"))
    return combine(parts, note="quick: the accuracy at Pm 12.6% only (no early stop after 1,000 iterations)"
                   if profile == "quick" else "")


def check_lt_fig4b(s: Mapping[str, Any], profile: str) -> Verdict:
    """Fig. 4b: at the end of training (50K iterations) iterative tickets still gain up to 0.35 pp of test
    accuracy over the dense net."""
    dense = _needs_per_seed(_dense(s), "per_seed_final_test_acc")
    tickets = [r for r in _rows(s, "ticket") if r["round"] > 0]
    best = max(tickets, key=lambda r: np.mean(_needs_per_seed(r, "per_seed_final_test_acc")))
    g = gap(best["per_seed_final_test_acc"], dense)
    return combine([Part(f"best gain at 50K iterations ({_at(best)})", g.exceeds(), g.text()),
                    Part("up to 0.35 pp", g.consistent_with(0.0035), f"{fmt_pp(g.diff)} (paper up to +0.35 pp)")], g.diff)


for _claim in (
    Claim("LT-1", f"{PAPER}, Fig. 3 (read)", "Winning tickets learn faster: Pm 51.3% reaches higher test accuracy "
          "faster than the dense net but slower than Pm 21.1%; at Pm 3.6% learning is back to the dense net's",
          "curves (Fig. 3)", "orderings of per-seed learning speed, each > 2 SE; Pm 3.6% inside the dense seed band",
          "lt_lenet_mnist", check_lt1),
    Claim("LT-2", f"{PAPER}, Fig. 4a, §2 (read)", "The early-stopping iteration drops as Pm falls to 21%, reaching "
          "38% earlier than dense, then rises back to the dense value at Pm 3.6%", "38% earlier; back at Pm 3.6%",
          "drop > 2 SE; 38% within 2 SE of the measured reduction; return round within ±2 of Pm 3.6%",
          "lt_lenet_mnist", check_lt2, decidable=("full",)),
    Claim("LT-3", f"{PAPER}, Fig. 4a, §2 (read)", "Tickets are more accurate than the dense net: by > 0.3 pp at "
          "Pm 13.5%, back to the dense level at 3.6%", "> +0.3 pp at Pm 13.5%",
          "gap > 2 SE, not significantly below +0.3 pp; at 3.6% within 2 SE of dense", "lt_lenet_mnist", check_lt3),
    Claim("LT-4", f"{PAPER}, Fig. 4a, §2 (read)", "Randomly reinitialised tickets learn slower and lose accuracy: "
          "reinit drops below dense from Pm 21.1%, the ticket only from 2.9%; at Pm 21% the ticket early-stops 2.51× "
          "sooner and is half a point more accurate", "21.1% vs 2.9%; 2.51×; ~0.5 pp",
          "orderings > 2 SE; drop-off rounds ±2; 2.51× and 0.5 pp within 2 SE", "lt_lenet_mnist", check_lt4),
    Claim("LT-5", f"{PAPER}, Fig. 4c, §2 (read)", "One-shot pruning also finds tickets: earlier than dense for "
          "67.5% ≥ Pm ≥ 17.6%, more accurate for 95.0% ≥ Pm ≥ 5.17%; iterative pruning finds smaller ones",
          "both ranges (Fig. 4c)", "each one-shot point in a range > 2 SE past dense; iterative > one-shot > 2 SE",
          "lt_lenet_mnist", check_lt5),
    Claim("LT-11", f"{PAPER}, §1, §2 (headline, as the issue states it)", "LeNet winning tickets at Pm 13.5% and 7.0% beat the dense net's test "
          "accuracy in fewer iterations", "Pm 7–13.5%", "orderings > 2 SE", "lt_lenet_mnist", check_lt_headline),
    Claim("LT-12", f"{PAPER}, Fig. 4b (read)", "At the end of training (50K iterations, training accuracy ≈ 100%), "
          "iterative tickets still gain up to 0.35 pp of test accuracy over the dense net", "up to +0.35 pp",
          "best gain > 2 SE; 0.35 pp within 2 SE", "lt_lenet_mnist", check_lt_fig4b, decidable=("full",)),
    Claim("LT-6", f"{PAPER}, Fig. 5, §3 (read)", "Conv-2/4/6 tickets on CIFAR-10 early-stop up to 3.5× / 3.5× / 2.5× "
          "faster than the dense net", "3.5× (Pm 8.8%), 3.5× (9.2%), 2.5× (15.1%)", "within 2 SE of the paper's",
          "lt_conv_cifar", check_lt6, decidable=("full",), requires=CIFAR_FULL),
    Claim("LT-7", f"{PAPER}, Fig. 5, §3 (read)", "Conv-2/4/6 tickets gain test accuracy over the dense net",
          "+3.4 / +3.5 / +3.3 pp", "gain > 2 SE and within 2 SE of the paper's", "lt_conv_cifar", check_lt7,
          decidable=("full",), requires=CIFAR_FULL),
    Claim("LT-8", f"{PAPER}, Fig. 5, §3 (read)", "Randomly reinitialised Conv-2/4/6 subnetworks fall behind the tickets",
          "reinit drops off more quickly", "ticket − reinit > 2 SE at every Pm ≤ 10%", "lt_conv_cifar", check_lt8,
          decidable=("full",), requires=CIFAR_FULL),
):
    register(_claim)
