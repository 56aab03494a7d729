"""The coding exercises, one record each: ``EXERCISES[label]`` says everything the tools need about one.

Each chapter's module (:mod:`~llmbook.exercises.ch01` ... :mod:`~llmbook.exercises.ch11`) holds that chapter's
check functions and its :class:`~llmbook.exercises.Exercise` records (its ``RECORDS``); this package
collects them in :data:`EXERCISES`. Everything else reads the records:

- the self-check a student calls, :func:`llmbook.checks.check` (``check(label, answer)``);
- ``make student``, which writes the call, commented out, into the exercise's answer cell (``booktools.student``);
- the otter export and ``make autograde-check``, which build each question's test from the record and grade its
  wrong answer (``booktools.otter_export``, ``booktools.autograde``);
- the tests, which find each exercise's worked solution in its notebook and require its stored check to pass.

To add a coding exercise, write its cells in the notebook (CONTRIBUTING.md, section 6) and one record, with its
check, in the chapter's module here.
"""

from __future__ import annotations

from llmbook.exercises import ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11
from llmbook.exercises.record import Exercise, Wrong

__all__ = ["Exercise", "Wrong", "EXERCISES"]

# The chapters' modules, in the book's order.
CHAPTERS = (ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11)


def _collect(modules) -> dict[str, Exercise]:
    records: dict[str, Exercise] = {}
    for module in modules:
        for record in module.RECORDS:
            if record.label in records:
                raise ValueError(f"{record.label} is declared twice ({module.__name__})")
            records[record.label] = record
    return records


#: Every coding exercise with a self-check: label -> its :class:`Exercise` record, in the book's order.
EXERCISES: dict[str, Exercise] = _collect(CHAPTERS)
