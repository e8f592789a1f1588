"""Build it yourself: the checkers of the chapters' exercises.

Each chapter asks the reader to write its core mechanism in plain PyTorch — a magnitude mask, one IMP
round, a straight-through estimator, … — and to call a checker from this package. A checker runs the
reader's function on random and edge-case inputs against lotterylib's own implementation and answers
with a :class:`Report`: PASS, or the first things that went wrong, each with a hint. The chapter's
exercise cell ships a *stub*; its hidden solution cell passes. Every checker is itself tested
(``tests/test_exercises.py``): it fails on the stub and on typical mistakes, and passes on the solution.

Write a checker as a list of :class:`Case` (a description and a function that raises
``AssertionError(hint)`` when the reader's function gets it wrong) and call :func:`run`.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Case:
    """One thing a checker tries: ``test(fn)`` raises ``AssertionError`` with a hint when ``fn`` fails it."""

    description: str
    test: Callable[[Callable[..., Any]], None]


@dataclass
class Report:
    """What a checker found. Truthy when every case passed; prints as a short verdict."""

    exercise: str
    passed: bool
    cases: int
    failures: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if self.passed:
            return f"PASS {self.exercise}: all {self.cases} checks pass"
        lines = [f"NOT YET {self.exercise}: {len(self.failures)} of {self.cases} checks fail"]
        lines += [f"  - {f}" for f in self.failures]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_markdown_(self) -> str:  # a notebook shows the verdict, not a dataclass
        if self.passed:
            return f"**PASS** `{self.exercise}`: all {self.cases} checks pass"
        items = "\n".join(f"- {f}" for f in self.failures)
        return f"**NOT YET** `{self.exercise}`: {len(self.failures)} of {self.cases} checks fail\n\n{items}"


class NotImplementedByReader(Exception):
    """What a stub raises: the exercise is not done yet."""


def stub(*args: Any, **kwargs: Any) -> Any:
    """Body of an exercise's shipped stub: raise :class:`NotImplementedByReader`."""
    raise NotImplementedByReader("write this function, then run the checker again")


def run(exercise: str, fn: Callable[..., Any], cases: Sequence[Case], show: bool = True) -> Report:
    """Run every case on ``fn``; a case fails on ``AssertionError`` (its hint is reported) or on any other
    exception (reported with where it was raised). Prints the report when ``show``."""
    failures = []
    for case in cases:
        try:
            case.test(fn)
        except NotImplementedByReader:
            failures = ["not implemented yet: the function still raises (replace its body)"]
            break
        except AssertionError as err:
            failures.append(f"{case.description}: {err}" if str(err) else case.description)
        except Exception as err:  # noqa: BLE001 - the reader's code may raise anything; say what and where
            where = traceback.extract_tb(err.__traceback__)[-1]
            failures.append(f"{case.description}: raised {type(err).__name__}: {err} (line {where.lineno})")
    report = Report(exercise, not failures, len(cases), failures)
    if show:
        print(report)
    return report
