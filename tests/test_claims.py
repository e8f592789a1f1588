import copy
import subprocess
import sys

import pytest
import torch

from lotterylib import claims
from lotterylib.claims import lt


SEEDS = [0.0, 0.001, -0.001]


def _row(rnd, pm, variant, acc, early_acc=0.94, stop=1000):
    return {"round": rnd, "weights_remaining": pm, "variant": variant, "early_stop_iteration": stop,
            "test_acc": acc, "per_seed_test_acc": [acc + d for d in SEEDS], "per_seed_early_stop": [stop] * 3,
            "per_seed_early_acc": [early_acc + d for d in SEEDS], "early_window": 200}


def _summary(ticket_gain=0.006, reinit_loss=0.02, oneshot_gain=0.004, speed_gain=0.01):
    """A synthetic quick-profile LT summary: dense 96%, tickets/reinit/one-shot around it; sparser tickets
    learn faster (their early accuracy rises by ``speed_gain`` per halving of Pm, down to 25 %)."""
    rows = [_row(0, 1.0, "ticket", 0.96)]
    for r, pm in enumerate([0.5, 0.25, 0.126, 0.063], start=1):
        rows.append(_row(r, pm, "ticket", 0.96 + ticket_gain, 0.94 + speed_gain * min(r, 2)))
        rows.append(_row(r, pm, "reinit", 0.96 - reinit_loss))
    for r, pm, delta in ((2, 0.25, oneshot_gain), (4, 0.063, ticket_gain - 0.004)):
        rows.append(_row(r, pm, "oneshot", 0.96 + delta))
    return {"profile": "quick", "rows": rows}


def test_lt_checks_hold_on_a_paper_like_summary():
    verdicts = dict((c.id, v) for c, v in claims.check("LT", _summary(), "quick"))
    assert verdicts["LT-2"].holds is None
    assert all(verdicts[k].holds for k in ("LT-1", "LT-3", "LT-4", "LT-5", "LT-11"))


@pytest.mark.parametrize("kwargs,failing", [
    ({"ticket_gain": -0.002}, {"LT-3", "LT-11"}),
    ({"speed_gain": -0.002}, {"LT-1"}),
    ({"reinit_loss": -0.01}, {"LT-4"}),
    ({"oneshot_gain": -0.003}, {"LT-5"}),
])
def test_lt_checks_can_fail(kwargs, failing):
    verdicts = claims.check("LT", _summary(**kwargs), "quick")
    assert {c.id for c, v in verdicts if v.holds is False} >= failing
    with pytest.raises(AssertionError, match="claims not reproduced"):
        claims.assert_hold(verdicts)


def _paper_like_full(**change):
    """A synthetic full-profile LT summary that follows the paper's Fig. 3–4 (20 rounds, 3 seeds).

    ``change``: overrides of the curves below, e.g. ``return_round=11`` (the early-stop iteration is
    back at the dense value from that round on) or ``reinit_off=11``.
    """
    k = {"dense_acc": 0.980, "dense_stop": 10_000, "return_round": 15, "reinit_off": 7, "ticket_off": 16,
         "best_reduction": 0.38, "ratio": 2.51, "gain": 0.005, "final_gain": 0.0035, "oneshot_gain": 0.003, **change}
    pm = [1.0, 0.800, 0.641, 0.513, 0.411, 0.329, 0.263, 0.211, 0.169, 0.135, 0.108, 0.087, 0.070, 0.056, 0.045,
          0.036, 0.029, 0.023, 0.019, 0.015, 0.012]
    noise_acc, noise_it = [0.0, 0.0003, -0.0003], [0, 100, -100]

    def row(rnd, variant, acc, stop, early=0.95, reach=(3000, 3500), final=None):
        return {"round": rnd, "weights_remaining": pm[rnd], "variant": variant, "early_stop_iteration": stop,
                "test_acc": acc, "per_seed_test_acc": [acc + d for d in noise_acc],
                "per_seed_early_stop": [stop + d for d in noise_it], "early_window": 5000,
                "per_seed_early_acc": [early + d for d in noise_acc],
                "per_seed_reach_0.975": [reach[0] + d for d in noise_it],
                "per_seed_reach_0.98": [reach[1] + d for d in noise_it],
                "per_seed_final_test_acc": [(final if final is not None else acc) + d for d in noise_acc]}
    d = k["dense_acc"]
    rows = [row(0, "ticket", d, k["dense_stop"], final=d - 0.001)]
    for r in range(1, 21):
        fast = r < k["return_round"]
        stop = k["dense_stop"] * (1 - k["best_reduction"] * min(r, 7) / 7) if fast else k["dense_stop"]
        acc = d + (k["gain"] if r < k["ticket_off"] - 1 else 0.0 if r == k["ticket_off"] - 1 else -0.005)
        early = 0.95 + 0.002 * min(r, 7) if r < 15 else 0.95
        reach = (3000 - 100 * min(r, 7), 3500 - 100 * min(r, 7))
        rows.append(row(r, "ticket", acc, stop, early, reach, final=d - 0.001 + (k["final_gain"] if r == 9 else 0.0)))
        rows.append(row(r, "reinit", d if r < k["reinit_off"] else d - 0.002 * (r - k["reinit_off"] + 1) - 0.003,
                        stop * k["ratio"] if r == 7 else k["dense_stop"] * 1.5))
        if r == 7:  # the paper's 0.5 pp at Pm 21 %
            rows[-1]["per_seed_test_acc"] = [acc - k["gain"] + d_ for d_ in noise_acc]
    for r in (3, 7, 12, 15):
        good = 0.0517 <= pm[r] <= 0.95
        rows.append(row(r, "oneshot", d + (k["oneshot_gain"] if good else -0.01),
                        k["dense_stop"] * 0.8 if 0.176 <= pm[r] <= 0.675 else k["dense_stop"] * 1.2))
    return {"profile": "full", "rows": rows}


def test_full_lt_checks_hold_on_a_paper_like_summary():
    verdicts = {c.id: v for c, v in claims.check("LT", _paper_like_full(), "full")}
    for cid in ("LT-1", "LT-2", "LT-3", "LT-4", "LT-5", "LT-11", "LT-12"):
        assert verdicts[cid].holds, (cid, verdicts[cid].measured)


@pytest.mark.parametrize("change,claim,part", [
    ({"return_round": 11}, "LT-2", "back at dense speed"),
    ({"best_reduction": 0.21}, "LT-2", "38% earlier"),
    ({"reinit_off": 11}, "LT-4", "reinit drops below dense"),
    ({"ratio": 1.5}, "LT-4", "2.51×"),
    ({"gain": 0.001}, "LT-3", "by > 0.3 pp"),
    ({"oneshot_gain": -0.002}, "LT-5", "more accurate than dense"),
    ({"final_gain": 0.0}, "LT-12", "best gain"),
])
def test_each_full_lt_statement_can_fail(change, claim, part):
    verdict = dict((c.id, v) for c, v in claims.check("LT", _paper_like_full(**change), "full"))[claim]
    assert verdict.holds is False
    assert any(p.holds is False and p.label.startswith(part) for p in verdict.parts), verdict.measured


def test_a_result_without_per_seed_curves_leaves_lt1_undecided():
    s = _paper_like_full()
    for r in s["rows"]:
        del r["per_seed_early_acc"]
    verdict = dict((c.id, v) for c, v in claims.check("LT", s, "full"))["LT-1"]
    assert verdict.holds is None and "rerun" in verdict.note


def test_registry_errors():
    with pytest.raises(KeyError, match="no claim matches"):
        claims.select("NOPE")
    with pytest.raises(ValueError, match="unknown profile"):
        claims.check("LT", _summary(), "medium")
    with pytest.raises(KeyError, match="unknown experiment"):
        claims.run_experiment("nope", "quick")
    assert [c.id for c in claims.select("LT-3")] == ["LT-3"]
    with pytest.raises(KeyError, match="unknown experiment"):
        claims.committed("nope")


def test_committed_needs_no_prior_import_of_the_chapter_module(tmp_path):
    # A fresh interpreter where only lotterylib.claims is imported: the experiment is found by name.
    code = ("from lotterylib import claims; import sys; "
            "assert 'lotterylib.claims.dlt' not in sys.modules; "
            f"assert claims.committed('dlt', results={str(tmp_path)!r}) is None; "
            "print(type(claims.settings_of('dlt', 'full', 0)).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Settings"


def test_undecidable_only_is_not_a_pass():
    only_lt2 = [(claims.CLAIMS["LT-2"], claims.Verdict(None, "—"))]
    with pytest.raises(AssertionError, match="proved nothing"):
        claims.assert_hold(only_lt2)


def test_scoreboard_lists_every_claim_with_its_status(tmp_path):
    records = [claims.record(c, v, "quick", 0) for c, v in claims.check("LT", _summary(), "quick")]
    awaiting = claims.run("LT", "full", 0, claims.Context(compute=False, results=tmp_path))
    page = claims.scoreboard(records, awaiting)
    assert page.startswith("# Claims scoreboard")
    assert "**5 of 5** decided empirical claims hold" in page and "**0 of 0**" in page
    for r in records:
        assert f"| {r['id']} |" in page
    assert "python -m lotterylib run --profile full --only LT" in page and "notebooks/02_lottery_ticket" in page


def _dlt_imp(acc_at: dict[int, dict[str, float]]) -> dict:
    """A DLT summary's ``imp`` table with rounds 7 (Pm 21 %) and 12 (Pm 7 %) only: a run cut short."""
    rounds = [0, 7, 12]
    acc: dict = {}
    for rnd, by_name in acc_at.items():
        for name, a in by_name.items():
            acc.setdefault(name, {})[str(rnd)] = [a, a, a]
    return {"imp": {"rounds": rounds, "weights_remaining": [1.0, 0.8 ** 7, 0.8 ** 12], "acc": acc},
            "complete": False}


def test_dlt1_on_a_run_cut_short_is_judged_on_the_points_it_reached():
    from lotterylib.claims import dlt
    good = {"large_final": 0.983, "magnitude_increase": 0.983, "movement": 0.981, "random": 0.97, "small_final": 0.9}
    verdict = dlt.check_dlt1(_dlt_imp({7: good, 12: good}), "full")
    assert verdict.holds is None and "Pm 3.6%: not reached" in verdict.measured and "Pm 21.0%" in verdict.measured
    bad = dict(good, random=0.99)  # random above the tickets at Pm 7 %: decided, whatever Pm 3.6 % shows
    verdict = dlt.check_dlt1(_dlt_imp({7: good, 12: bad}), "full")
    assert verdict.holds is False and any(p.holds is False and "random" in p.label for p in verdict.parts)


@pytest.mark.parametrize("source,message", [
    ("import no_such_package_for_lotterylib\n",
     r"lotterylib\.claims\.broken_chapter cannot be loaded: they need the package 'no_such_package_for_lotterylib', "
     r"which is not installed; install it \(pip install no_such_package_for_lotterylib\)"),
    ("from lotterylib.no_such_module import x\n",
     r"lotterylib\.claims\.broken_chapter cannot be loaded \(No module named 'lotterylib\.no_such_module'\); "
     r"this lotterylib is incomplete: reinstall it"),
])
def test_a_claims_module_that_cannot_be_imported_is_an_error_not_a_shorter_registry(source, message, tmp_path,
                                                                                   monkeypatch):
    # A chapter module next to the real ones (the package's search path extended by a folder) whose import fails.
    (tmp_path / "broken_chapter.py").write_text(source)
    monkeypatch.setattr(claims, "__path__", [*claims.__path__, str(tmp_path)])
    with pytest.raises(claims.ClaimsImportError, match=message):
        claims.load_all()
    with pytest.raises(claims.ClaimsImportError):
        claims.select("LT")  # so the CLI and the chapters stop too


def test_a_missing_dependency_of_a_real_claims_module_names_it(monkeypatch):
    import importlib
    real = importlib.import_module

    def without_numba(name, *args):
        if name == "lotterylib.claims.xnor":
            raise ModuleNotFoundError("No module named 'numba'", name="numba")
        return real(name, *args)
    monkeypatch.setattr(importlib, "import_module", without_numba)
    with pytest.raises(claims.ClaimsImportError, match=r"lotterylib\.claims\.xnor .*'numba'.*pip install numba"):
        claims.load_all()


def test_a_failing_timing_claim_is_reported_never_asserted_and_the_tally_counts_empirical_claims():
    def claim(cid, kind):
        return claims.Claim(cid, "p", "s", "v", "t", "x", lambda s, p: claims.Verdict(False, "m"), kind=kind)
    timing = (claim("T-1", "timing"), claims.Verdict(False, "3× slower under load"))
    held = (claim("E-1", "empirical"), claims.Verdict(True, "ok"))
    assert claims.assert_hold([held, timing]) == 1  # the timing failure does not fail a chapter
    for kind in ("empirical", "invariant"):
        with pytest.raises(AssertionError, match="X-1"):
            claims.assert_hold([held, (claim("X-1", kind), claims.Verdict(False, "no"))])
    with pytest.raises(AssertionError, match="proved nothing"):
        claims.assert_hold([timing])
    records = [claims.record(c, v, "quick", 0) for c, v in (held, timing)]
    records.append(claims.record(claim("C-1", "cited"), claims.Verdict(None, "—"), "quick", 0))
    assert claims.tally(records).startswith("1 of 1 decided empirical claims hold")
    assert "0 of 1 timings hold on this machine (not asserted)" in claims.tally(records) and "1 cited only" in claims.tally(records)
    assert claims.failing(records) == []
    with pytest.raises(ValueError, match="unknown kind"):
        claim("B-1", "anecdotal")


def _han(tuned=0.982, control=0.981, pruned=0.95, kept=0.082):
    seeds = [0.0, 0.0005, -0.0005]
    return {"finetune": {"weights_remaining": kept, "finetuned_test_acc": [tuned + d for d in seeds],
                         "pruned_test_acc": [pruned + d for d in seeds]},
            "dense_as_long": {"finetuned_test_acc": [control + d for d in seeds]}}


@pytest.mark.parametrize("kwargs,holds", [({}, True), ({"control": 0.99}, False), ({"pruned": 0.982}, False),
                                          ({"kept": 0.2}, False)])
def test_han1_compares_with_a_dense_net_trained_as_long(kwargs, holds):
    from lotterylib.claims import han
    assert han.check_han1(_han(**kwargs), "full").holds is holds
    if kwargs == {"control": 0.99}:  # the loss against the control is decided in full only
        quick = han.check_han1(_han(**kwargs), "quick")
        assert quick.holds is True and "undecided in quick" in quick.measured


def test_tails_and_centre_masks_zero_as_many_weights_at_either_end():
    from lotterylib.claims import han
    g = torch.Generator().manual_seed(0)
    final = {"a": torch.randn(2, 30, 20, generator=g), "b": torch.randn(2, 5, 30, generator=g) * 3}
    for f in (0.01, 0.1, 0.5):
        tails, centre = (han.tails_or_centre_mask(final, f, where) for where in ("tails", "centre"))
        for k, w in final.items():
            for run in range(2):
                a, t, c = w[run].abs(), tails[k][run] > 0, centre[k][run] > 0
                assert int((~t).sum()) == int((~c).sum()) == round(f * a.numel())
                if (~t).any():  # the tails zero the largest |w|, the centre the smallest
                    assert a[~t].min() >= a[t].max() and a[~c].max() <= a[c].min()
    with pytest.raises(ValueError, match="tails"):
        han.tails_or_centre_mask(final, 0.1, "middle")


def test_a_known_non_reproduction_is_reported_and_must_stay_one():
    def claim(cid):
        return claims.Claim(cid, "p", "s", "v", "t", "x", lambda s, p: claims.Verdict(False, "m"))
    held, failed = (claim("E-1"), claims.Verdict(True, "ok")), (claim("E-2"), claims.Verdict(False, "÷11 vs ÷14.9"))
    with pytest.raises(AssertionError, match="E-2"):
        claims.assert_hold([held, failed])
    assert claims.assert_hold([held, failed], not_reproduced=["E-2"]) == 2
    with pytest.raises(AssertionError, match="no longer so"):
        claims.assert_hold([held, (claim("E-2"), claims.Verdict(True, "now it holds"))], not_reproduced=["E-2"])
    with pytest.raises(ValueError, match="not checked here"):
        claims.assert_hold([held], not_reproduced=["E-9"])


def test_a_cited_part_reports_and_never_decides():
    with pytest.raises(ValueError, match="reports"):
        claims.Part("x", True, "1 pp", kind="cited")
    v = claims.combine([claims.Part("a", True, "+1 pp"), claims.Part("b", None, "−3 pp", kind="cited")])
    assert v.holds is True
    claim = claims.Claim("TOY-1", "toy", "s", "p", "t", "toy", lambda s, p: v)
    assert "cited, reported only" in claims.table([claims.record(claim, v, "quick")])


def test_the_claims_table_fits_a_book_page_and_cuts_nothing():
    # Issue 18: a page's output box shows about 76 characters; a longer line is cut off by its scrollbar.
    claims.load_all()
    records = [claims.record(c, claims.Verdict(None, "—", "a note " * 20), "quick") for c in claims.CLAIMS.values()]
    text = claims.table(records)
    assert max(len(line) for line in text.splitlines()) <= 76
    flat = " ".join(text.split())
    for c in claims.CLAIMS.values():
        assert " ".join(c.statement.split()) in flat, c.id
