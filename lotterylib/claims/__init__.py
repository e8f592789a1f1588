"""The papers' claims, each with the check that decides it from measured numbers.

A claim (id from ``claims.md``, e.g. ``LT-3``) names an *experiment* — a function
``(profile, seed, context) -> summary dict`` that runs, or loads from the result cache, what the
claim needs — and a *check* ``(summary, profile) -> Verdict``. The chapters call the same checks on
the numbers they just computed; ``python -m lotterylib claims`` runs them from the command line.

Chapter modules in this package (``lt.py``, ``dlt.py``, ``nt.py``, ``xnor.py``, ``dnw.py``, ``dc.py``) register
their claims and experiments on import; they are discovered automatically.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

PROFILES = ("quick", "full")


@dataclass(frozen=True)
class Part:
    """One statement of a claim with several (e.g. LT-5's two ranges), with its own verdict.

    ``counts``: False for a statement this profile measures but leaves to another (the quick profile's
    sizes cannot decide it): it is shown, undecided, and does not enter the claim's verdict.
    ``kind`` as a claim's (:data:`KINDS`): only parts of an asserted kind (empirical, invariant) decide
    the claim; a ``cited`` part reports a measurement next to a number the paper states at another
    scale (e.g. ImageNet) without deciding anything (its ``holds`` is None).
    """

    label: str
    holds: bool | None
    measured: str
    counts: bool = True
    kind: str = "empirical"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"part {self.label!r}: unknown kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.kind not in ASSERTED and self.holds is not None:
            raise ValueError(f"part {self.label!r}: a {self.kind} part reports, it cannot hold or fail")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check. ``holds`` is None when the profile cannot decide the claim.

    ``parts``: the sub-statements a claim makes, each decided on its own (the claim holds when every
    decided part holds and none failed; undecided parts leave it undecided).
    """

    holds: bool | None
    measured: str
    value: float | None = None
    note: str = ""
    parts: tuple[Part, ...] = ()


def combine(parts: Sequence[Part], value: float | None = None, note: str = "") -> Verdict:
    """A claim's verdict from its parts that count: False if any fails, None if any is undecided (or
    none counts), else True. Parts that only report (kind ``cited`` or ``timing``) or that this profile
    leaves to another (``counts=False``) are shown and do not count."""
    marks = [p.holds for p in parts if p.counts and p.kind in ASSERTED]
    holds = False if False in marks else None if (None in marks or not marks) else True
    measured = "; ".join(f"{p.label}: {p.measured}" for p in parts)
    return Verdict(holds, measured, value, note, tuple(parts))


#: What a claim's check is evidence of. Only *empirical* claims are reproductions ("N of M hold" counts
#: them); *invariant* claims are exactness and storage arithmetic (they must hold, but prove no paper
#: right); *timing* claims depend on the machine (measured by ``make bench``, reported, never asserted
#: in a chapter or in CI); *cited* claims are not checkable here.
KINDS = ("empirical", "invariant", "timing", "cited")
#: The kinds whose failure fails a chapter (``assert_hold``) and the CLI's exit status.
ASSERTED = ("empirical", "invariant")


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    statement: str
    paper_value: str
    tolerance: str
    experiment: str
    check: Callable[[Mapping[str, Any], str], Verdict]
    decidable: tuple[str, ...] = PROFILES
    requires: str = ""  # what a full run needs beyond the repository, e.g. the full CIFAR-10
    kind: str = "empirical"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id}: unknown kind {self.kind!r}; choose one of {', '.join(KINDS)}")


@dataclass
class Context:
    """What experiments may use: the result cache, the data root, the device, progress bars.

    ``deadline`` (a ``time.time()`` value): long experiments stop before a round that would not
    finish by then and say so in their summary (``"complete": False``).
    ``compute``: whether a full-profile experiment with no committed result may be run here (the
    CLI's ``claims`` loads committed results only; ``run`` computes). ``results``: the folder of
    committed results (default :func:`lotterylib.results.root`).
    """

    cache: Any = None
    data_root: Any = None
    device: str = "cpu"
    progress: bool = True
    deadline: float | None = None
    compute: bool = True
    results: Any = None
    extra: dict = field(default_factory=dict)


class NotReached(LookupError):
    """A check needs a point (e.g. a sparsity) that the run did not reach: the claim is undecided."""


class AwaitingRun(LookupError):
    """A full-profile experiment has no committed result and may not be computed here."""


CLAIMS: dict[str, Claim] = {}
EXPERIMENTS: dict[str, Callable[[str, int, Context], dict]] = {}
SETTINGS: dict[str, Callable[[str, int], Any]] = {}
PLANS: dict[str, Callable[[str, int], list]] = {}


def register(claim: Claim) -> Claim:
    if claim.id in CLAIMS:
        raise ValueError(f"claim {claim.id} registered twice")
    CLAIMS[claim.id] = claim
    return claim


def experiment(name: str, settings: Callable[[str, int], Any] | None = None,
               plan: Callable[[str, int], list] | None = None) -> Callable:
    """Decorator: register ``fn(profile, seed, context) -> dict`` as experiment ``name``.

    ``settings(profile, seed)`` returns the frozen dataclass that fixes everything the experiment
    runs; its hash names the experiment's committed full-profile result (:mod:`lotterylib.results`).
    ``plan(profile, seed)`` returns its populations (:mod:`lotterylib.plan`), so that a distributed
    executor can run them as separate tasks before ``fn`` assembles the summary from the cache.
    """
    def deco(fn):
        EXPERIMENTS[name] = fn
        if settings is not None:
            SETTINGS[name] = settings
        if plan is not None:
            PLANS[name] = plan
        return fn
    return deco


@dataclass(frozen=True)
class ExperimentKey:
    """Settings of an experiment that registers none: its name, profile, seed and the hash of the
    module that defines it, so that editing that module retires its stored results."""

    experiment: str
    profile: str
    seed: int
    source: str


def _experiment(name: str) -> Callable[[str, int, Context], dict]:
    """The registered experiment ``name``, importing the chapter modules first if it is not known yet."""
    if name not in EXPERIMENTS:
        load_all()
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    return EXPERIMENTS[name]


def settings_of(name: str, profile: str, seed: int) -> Any:
    """The frozen settings whose hash names experiment ``name``'s stored result."""
    fn = _experiment(name)
    if name in SETTINGS:
        return SETTINGS[name](profile, seed)
    import hashlib
    import inspect
    source = inspect.getsourcefile(fn) or ""
    from pathlib import Path
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:12] if source else "unknown"
    return ExperimentKey(name, profile, seed, digest)


def full_run_command(prefix: str, seed: int = 0) -> str:
    tail = f" --seed {seed}" if seed else ""
    return f"python -m lotterylib run --profile full --only {prefix} --device cuda{tail}"


def summary_for(name: str, profile: str, seed: int, context: Context, prefix: str = "") -> dict:
    """An experiment's summary: the committed full-profile result if there is one, else computed.

    Raises :class:`AwaitingRun` for a full-profile experiment with no committed result when
    ``context.compute`` is False.
    """
    from .. import results
    if profile == "full":
        try:
            record = results.load(name, profile, seed, settings_of(name, profile, seed), context.results)
        except results.StaleResult as err:  # made by other settings: as good as no result
            if not context.compute:
                raise AwaitingRun(f"{err}: {full_run_command(prefix or name, seed)}") from None
            record = None
        if record is not None:
            return {**record["summary"], "complete": record["complete"], "provenance": record["provenance"]}
        if not context.compute:
            raise AwaitingRun(f"no committed full-profile result; run: {full_run_command(prefix or name, seed)}")
    return _experiment(name)(profile, seed, context)


def committed(name: str, seed: int = 0, results: Any = None) -> dict | None:
    """The committed full-profile summary of experiment ``name`` (with ``provenance`` and ``complete``), or None."""
    try:
        return summary_for(name, "full", seed, Context(compute=False, results=results))
    except AwaitingRun:
        return None


def _decide(claim: Claim, summary: Mapping[str, Any], profile: str) -> Verdict:
    try:
        return claim.check(summary, profile)
    except NotReached as err:
        done = "" if summary.get("complete", True) else " (the run stopped early)"
        return Verdict(None, "—", note=f"{err.args[0]}{done}")


class ClaimsImportError(ImportError):
    """A chapter module of this package cannot be imported, so its claims would be missing."""


# Import names whose pip distribution is named otherwise.
_DISTRIBUTION_OF = {"PIL": "pillow"}


def load_all() -> dict[str, Claim]:
    """Import every chapter module of this package (they register their claims) and return CLAIMS.

    Raises :class:`ClaimsImportError` naming the module and the missing package when one cannot be
    imported: a registry without that chapter's claims would pass for a complete one.
    """
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            module = f"{__name__}.{info.name}"
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise ClaimsImportError(_import_failure(module, err), name=err.name) from err
    return CLAIMS


def _import_failure(module: str, err: ImportError) -> str:
    missing = (err.name or "").split(".")[0]
    reinstall = "pip install -r requirements.txt -e . in the repository"
    if not missing or missing == __name__.split(".")[0]:
        return (f"the claims in {module} cannot be loaded ({err}); this lotterylib is incomplete: "
                f"reinstall it ({reinstall})")
    package = _DISTRIBUTION_OF.get(missing, missing)
    if isinstance(err, ModuleNotFoundError) and err.name == missing:
        return (f"the claims in {module} cannot be loaded: they need the package {package!r}, which is not installed; "
                f"install it (pip install {package}) or lotterylib with all its dependencies ({reinstall})")
    return (f"the claims in {module} cannot be loaded: the installed {package!r} lacks what they need ({err}); "
            f"install the versions lotterylib declares ({reinstall})")


def select(prefix: str | None = None) -> list[Claim]:
    """Claims whose id starts with ``prefix`` (case-insensitive, e.g. ``LT`` or ``LT-3``)."""
    load_all()
    if prefix is None:
        return list(CLAIMS.values())
    p = prefix.upper()
    chosen = [c for c in CLAIMS.values() if c.id.upper() == p or c.id.upper().startswith(p.rstrip("-") + "-")]
    if not chosen:
        prefixes = sorted({c.id.split("-")[0] for c in CLAIMS.values()})
        raise KeyError(f"no claim matches {prefix!r}; known prefixes: {', '.join(prefixes)}")
    return chosen


def check(prefix: str, summary: Mapping[str, Any], profile: str) -> list[tuple[Claim, Verdict]]:
    """Check every claim of ``prefix`` on one experiment summary (the chapters use this)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    out = []
    for claim in select(prefix):
        if profile not in claim.decidable:
            out.append((claim, Verdict(None, "—", note=f"not decidable in the {profile} profile")))
        else:
            out.append((claim, _decide(claim, summary, profile)))
    return out


def run(prefix: str | None, profile: str, seed: int, context: Context | None = None) -> list[dict]:
    """Run (or load) each needed experiment once and check every selected claim. JSON-able records."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    context = context or Context()
    summaries: dict[str, dict | AwaitingRun] = {}
    records = []
    for claim in select(prefix):
        if profile not in claim.decidable:
            verdict = Verdict(None, "—", note=f"not decidable in the {profile} profile")
        else:
            if claim.experiment not in summaries:
                try:
                    summaries[claim.experiment] = summary_for(claim.experiment, profile, seed, context,
                                                              claim.id.split("-")[0])
                except AwaitingRun as err:
                    summaries[claim.experiment] = err
            got = summaries[claim.experiment]
            needs = f" (needs {claim.requires})" if claim.requires else ""
            verdict = (Verdict(None, "—", note=str(got) + needs) if isinstance(got, AwaitingRun)
                       else _decide(claim, got, profile))
        records.append(record(claim, verdict, profile, seed))
    return records


def record(claim: Claim, verdict: Verdict, profile: str, seed: int | None = None) -> dict:
    return {"id": claim.id, "kind": claim.kind, "paper": claim.paper, "statement": claim.statement,
            "paper_value": claim.paper_value, "tolerance": claim.tolerance, "measured": verdict.measured,
            "value": verdict.value, "holds": verdict.holds, "note": verdict.note, "profile": profile, "seed": seed,
            "parts": [{"label": p.label, "holds": p.holds, "measured": p.measured, "kind": p.kind}
                      for p in verdict.parts]}


def tally(records: list[dict]) -> str:
    """"N of M empirical claims hold", then the other kinds apart (they are not reproductions)."""
    def count(kind):
        decided = [r for r in records if r.get("kind", "empirical") == kind and r["holds"] is not None]
        return sum(bool(r["holds"]) for r in decided), len(decided), sum(r.get("kind", "empirical") == kind for r in records)
    held, decided, total = count("empirical")
    parts = [f"{held} of {decided} decided empirical claims hold ({total - decided} of {total} not decidable here)"]
    for kind, what in (("invariant", "invariants hold"), ("timing", "timings hold on this machine (not asserted)")):
        h, d, t = count(kind)
        if t:
            parts.append(f"{h} of {d} {what}")
    cited = sum(r.get("kind") == "cited" for r in records)
    if cited:
        parts.append(f"{cited} cited only")
    return "; ".join(parts)


def failing(records: list[dict]) -> list[dict]:
    """Decided claims of an asserted kind (empirical, invariant) that do not hold."""
    return [r for r in records if r["holds"] is False and r.get("kind", "empirical") in ASSERTED]


def _partly_measured(record: dict) -> bool:
    """An undecided claim that still has measurements to show (e.g. the points a cut-short run reached)."""
    return record["measured"] not in ("", "—")


def mark(holds: bool | None) -> str:
    return "holds" if holds is True else "NOT REPRODUCED" if holds is False else "undecided"


def table(records: list[dict], width: int = 76) -> str:
    """The claims as text, one block each, nothing cut: id, kind and verdict; what the paper says; what
    was measured (every part of a claim with its own verdict, with the standard errors); the rule."""
    import textwrap

    def wrap(label: str, text: str) -> list[str]:
        return textwrap.wrap(text, width, initial_indent=f"  {label}: ", subsequent_indent="      ",
                             break_on_hyphens=False) or []

    lines = []
    for r in records:
        # wrapped like the rest, at a width a book page's output box shows without scrolling
        lines += textwrap.wrap(f"{r['id']} [{r.get('kind', 'empirical')}] {mark(r['holds'])} — {r['statement']}",
                               width, subsequent_indent="    ", break_on_hyphens=False)
        lines += wrap("paper", f"{r['paper_value']} ({r['paper']})")
        parts = r.get("parts") or []
        if parts:
            for part in parts:
                kind = part.get("kind", "empirical")
                verdict = mark(part["holds"]) if kind in ASSERTED else f"{kind}, reported only"
                lines += wrap(part["label"], f"{part['measured']} — {verdict}")
        elif r["measured"] not in ("", "—"):
            lines += wrap("measured", r["measured"])
        lines += wrap("rule", r["tolerance"])
        if r.get("note"):
            lines += wrap("note", r["note"])
    return "\n".join(lines)


def assert_hold(verdicts: list[tuple[Claim, Verdict]], not_reproduced: Sequence[str] = ()) -> int:
    """Raise AssertionError naming every decided empirical or invariant claim that does not hold;
    return how many of them were decided. Timing claims are reported by the table, never asserted
    (they depend on the machine and its load: ``make bench`` measures them).

    ``not_reproduced``: ids of claims this profile is known NOT to reproduce (the chapter says so and
    shows what was seen). Each must still be decided and fail: one that holds, or stops being decided,
    is an error too, so that the list never outlives the result it describes.
    """
    known = set(not_reproduced)
    unknown_ids = known - {c.id for c, _ in verdicts}
    if unknown_ids:
        raise ValueError(f"not_reproduced names claims not checked here: {sorted(unknown_ids)}")
    asserted = [(c, v) for c, v in verdicts if c.kind in ASSERTED]
    failed = [f"{c.id}: {v.measured} ({v.note})" for c, v in asserted if v.holds is False and c.id not in known]
    if failed:
        raise AssertionError("claims not reproduced: " + "; ".join(failed))
    changed = [f"{c.id} ({'holds' if v.holds else 'undecided'})" for c, v in verdicts if c.id in known and v.holds is not False]
    if changed:
        raise AssertionError("claims listed as not reproduced are no longer so, update the chapter: " + ", ".join(changed))
    decided = [v for _, v in asserted if v.holds is not None]
    if not decided:
        raise AssertionError("no claim was decidable: the chapter proved nothing")
    return len(decided)


def run_experiment(name: str, profile: str, seed: int = 0, context: Context | None = None) -> dict:
    """Run (or load from the cache) experiment ``name`` — what the chapters call to get the CLI's numbers."""
    fn = _experiment(name)
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return fn(profile, seed, context or Context())


CHAPTERS = {"HAN": "notebooks/01_magnitude_pruning", "LT": "notebooks/02_lottery_ticket",
            "DLT": "notebooks/03_deconstructing_tickets", "NT": "notebooks/04_net_trim",
            "XN": "notebooks/05_binary_networks", "DNW": "notebooks/06_neural_wirings",
            "DC": "notebooks/07_comparison", "LR": "notebooks/08_structure", "NODE": "notebooks/08_structure",
            "CH": "notebooks/08_structure", "GL": "notebooks/08_structure", "KD": "notebooks/08_structure"}


def scoreboard(quick: list[dict], full: list[dict] | None = None) -> str:
    """A MyST page listing every claim: paper value, quick and full measurements, tolerance, verdicts, chapter.

    ``quick``: records of the quick profile (computed when the book is built); ``full``: records of
    the full profile, read from the committed results (:mod:`lotterylib.results`), or None.
    """
    mark = {True: "**holds**", False: "**not reproduced**", None: "—"}
    full_by_id = {r["id"]: r for r in full or []}

    def empirical(records):
        decided = [r for r in records if r.get("kind", "empirical") == "empirical" and r["holds"] is not None]
        return sum(bool(r["holds"]) for r in decided), len(decided)

    def cell(r):
        if r is None:
            return "—"
        if r["holds"] is None:
            # Commands as code, so that the page shows "--profile", not a typographic dash.
            note = re.sub(r"(python -m lotterylib [^()]*?)(?= \(|$)", r"`\1`", r.get("note") or "undecided")
            return f"*{note}*" + (f": {r['measured']}" if _partly_measured(r) else "")
        return f"{r['measured']} — {mark[r['holds']]}"

    q_held, q_dec = empirical(quick)
    f_held, f_dec = empirical(full or [])
    seed = quick[0]["seed"] if quick else 0
    lines = ["# Claims scoreboard", "",
             f"Every claim the book checks (seed {seed}), measured twice:", "",
             f"* **quick** profile — run on a CPU when this book was built: **{q_held} of {q_dec}** decided empirical "
             "claims hold; the others cannot be decided at that size.",
             f"* **full** profile — the papers' settings, loaded from the committed results in `results/` (each with "
             f"its config, code commit, device, date and wall time): **{f_held} of {f_dec}** decided empirical claims hold. "
             "Where no full run exists yet, the row says so and gives the command that makes it, e.g.", "",
             "```bash", full_run_command("LT"), "python -m lotterylib claims --profile full --only LT", "```", "",
             "Each section links to the chapter whose last cells run the same checks on the numbers they computed.", ""]
    for prefix, chapter in CHAPTERS.items():
        rows = [r for r in quick if r["id"].split("-")[0] == prefix]
        if not rows:
            continue
        title = re.split(r",\s*(?:Fig|Table|§)", rows[0]["paper"])[0]  # "Frankle & Carbin 2019, Fig. 3" → the paper
        lines += [f"## {title}", "",
                  f"Checked in {{doc}}`{chapter}`, in its last section, {{ref}}`claims-{prefix.lower()}`.", "",
                  "| claim | the paper says | tolerance | quick profile | full profile |", "|---|---|---|---|---|"]
        for r in rows:
            cells = [r["id"], r["paper_value"], r["tolerance"], cell(r), cell(full_by_id.get(r["id"]))]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)
