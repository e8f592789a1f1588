"""Numbers in a chapter's prose come from its page: glued (``{glue}`name```), a paper's value the claims
registry holds, or a constant this file allows by name. A number typed into markdown that the run
measured would contradict the page the day the run moves.

Scanned: every markdown cell of every chapter, after removing what cannot hold a typed measurement —
glue references, inline code and code blocks, URLs and link targets, citation roles. Then each number
must be (a) in a registered claim's text (the papers' values, statements and rules), (b) a year, a
section/figure/table/equation/chapter number or part of a name (LeNet-300-100, Conv-2, W1A2, arXiv
ids), or (c) a constant, with the reason it is not a measurement: :data:`CONSTANTS` for every chapter,
and the chapter's own in its notebook metadata, ``{"lotterylib": {"prose_constants": {"59": "the quick
profile's rate pruned per round"}}}`` (the settings of its profiles, architecture sizes, definitions).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lotterylib import claims

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: Numbers that are not measurements in every chapter; each says why it may be typed. A chapter's own
#: constants are in its notebook's metadata (see the module doc).
CONSTANTS: dict[str, str] = {
    "0": "a definition (zero weights, index 0)", "1": "a count or a definition", "2": "a count or a definition",
    "10": "MNIST's and CIFAR-10's ten classes / chance level 10 %", "100": "per cent",
    "784": "MNIST's 28 × 28 inputs", "28": "MNIST's image side", "60": "the LT paper's batch size",
    "50,000": "the LT paper's iterations per round (full profile)", "1,000": "the quick profile's iterations per round",
}

NUMBER = re.compile(r"(?<![\w.\-/×^_{])[−+-]?\d[\d,]*(?:\.\d+)?(?![\w\-/])")
REMOVE = [
    re.compile(r"\{glue(?::\w+)?\}`[^`]*`"),        # glued values
    re.compile(r"\{(?:cite|cite:p|cite:t|ref|doc|numref|term|eq)\}`[^`]*`"),  # roles
    re.compile(r"```.*?```", re.S),                  # code blocks
    re.compile(r"`[^`]*`"),                          # inline code
    re.compile(r"\]\([^)]*\)"),                      # link targets
    re.compile(r"https?://\S+"),                     # URLs
    re.compile(r"arXiv[: ]\s*\d{4}\.\d{4,5}(?:v\d+)?", re.I),
    re.compile(r"\b(?:19|20)\d\d[a-z]?\b"),          # years
    re.compile(r"(?:§|Fig\.|Figure|Figs\.|Table|Tables|Eq\.|eq\.|Theorem|chapter|Chapter|Section|section|"
               r"Algorithm|Appendix|App\.|Lemma|Variant)\s*[A-Z]?\d+(?:\.\d+)*[a-z]?(?:\s*(?:[–-]|and|,)\s*\d+[a-z]?)*"),
    re.compile(r"\b[A-Za-z]+[-‑]?\d+(?:[/‑-]\d+)*\b"),  # names with numbers: LeNet-300-100, Conv-2/4/6, W1A2, k2
]


def _paper_numbers() -> set[str]:
    out: set[str] = set()
    for c in claims.load_all().values():
        for text in (c.statement, c.paper_value, c.paper, c.tolerance):
            out |= {_norm(n) for n in NUMBER.findall(text)}
    return out


def _norm(n: str) -> str:
    return n.replace("−", "-").lstrip("+-").rstrip(".,")


def typed_numbers(markdown: str) -> list[str]:
    for pattern in REMOVE:
        markdown = pattern.sub(" ", markdown)
    return [_norm(n) for n in NUMBER.findall(markdown) if _norm(n)]


def offending(nb: dict, chapter: str, paper: set[str]) -> list[tuple[int, str, str]]:
    own = nb.get("metadata", {}).get("lotterylib", {}).get("prose_constants", {})
    allowed = set(paper) | set(CONSTANTS) | {_norm(k) for k in own}
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        for n in typed_numbers(text):
            if n not in allowed:
                at = text.find(n)
                out.append((i, n, text[max(0, at - 40):at + len(n) + 20].replace("\n", " ")))
    return out


@pytest.fixture(scope="module")
def paper_numbers() -> set[str]:
    return _paper_numbers()


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_numbers_in_prose_are_glued_cited_or_constants(path: Path, paper_numbers):
    bad = offending(json.loads(path.read_text()), path.stem, paper_numbers)
    assert not bad, f"{path.name}: numbers typed into markdown, neither glued nor a paper value nor a constant:\n" + \
        "\n".join(f"  cell {i}: {n!r} in “…{ctx}…”" for i, n, ctx in bad)


def test_the_scan_catches_a_typed_measurement_and_passes_glue():
    nb = {"cells": [{"cell_type": "markdown", "source": ["The ticket reached 98.37 % at Pm 21.1 %."]},
                    {"cell_type": "markdown", "source": ["It reached {glue:text}`acc` (LeNet-300-100, Fig. 4, 2019)."]}]}
    bad = offending(nb, "toy", {"21.1"})
    assert [(i, n) for i, n, _ in bad] == [(0, "98.37")]
