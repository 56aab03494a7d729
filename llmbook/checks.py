"""Self-checks for the coding exercises: ``check(label, answer)`` says pass, or what is wrong.

A check runs the student's answer on inputs of its own (small random tensors, the book's data) and compares it
with a reference computed there. When the answer is wrong it names the symptom (a wrong shape, the rotation
applied to the values, a gradient that does not stop at the clip, the prompt returned with the text, ...) and
gives a hint, never the answer itself. Each exercise, with its check, is declared once, as a record in
:mod:`llmbook.exercises` (one module per chapter); this module is what the notebooks call. The checks are used in
three places:

- in a student notebook (``make student`` writes the call, commented out, into each answer cell; the table
  :data:`CHECK_CALLS` says how each check is called);
- by the autograder (``make autograde-check``), whose tests call :func:`check` and look at ``.passed``;
- in ``tests/test_checks.py``, which requires every chapter's worked solution to pass in its notebook (the stored
  output of the solution's own ``check`` call) and plausible wrong answers to fail with a helpful message.

The exercises are the coding exercises of chapters 1-11 and one calculation of chapter 2 (see
:data:`CHECK_CALLS`).
"""

from __future__ import annotations

from collections.abc import Callable

from llmbook.exercises import EXERCISES, Wrong

__all__ = ["CheckResult", "check", "CHECK_CALLS", "CHECKS"]


class CheckResult:
    """The result of a check: ``passed`` (bool) and ``message`` (str); truthy when it passed."""

    def __init__(self, label: str, passed: bool, message: str):
        self.label, self.passed, self.message = label, bool(passed), message
        self.printed = False  # set by check() once it has printed the verdict

    def _ipython_display_(self) -> None:
        # a notebook cell that ends with check(...) shows the verdict once, not twice
        if not self.printed:
            print(self)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{self.label}: {'pass' if self.passed else 'not yet'}. {self.message}".rstrip()

    __str__ = __repr__


CHECKS: dict[str, Callable[..., str]] = {label: record.check for label, record in EXERCISES.items()}
"""Exercise label -> check function (it returns a message when the answer passes and raises otherwise), from the
records of :mod:`llmbook.exercises`."""

CHECK_CALLS: dict[str, str] = {label: record.call(comment=True) for label, record in EXERCISES.items()}
"""Exercise label -> the call a student writes (``make student`` puts it, commented out, in the answer cell), from
the records of :mod:`llmbook.exercises`."""


def check(label: str, answer, *, quiet: bool = False, **context) -> CheckResult:
    """Check a student's answer to the coding exercise ``label`` and print the verdict.

    ``answer`` is what the exercise asks for (usually a function; see :data:`CHECK_CALLS` for each exercise);
    ``context`` passes objects from the notebook that a check needs (e.g. ``vectors=``). Returns a
    :class:`CheckResult`, truthy when the answer passes; prints it unless ``quiet``. Raises KeyError for an
    unknown label (listing the known ones) and TypeError for a label that is not a string.
    """
    if not isinstance(label, str):
        raise TypeError(f"label must be an exercise label such as 'ex-NN-slug', got {type(label).__name__}")
    if label not in CHECKS:
        raise KeyError(f"no check for {label!r}; checks exist for: {', '.join(sorted(CHECKS))}")
    try:
        result = CheckResult(label, True, CHECKS[label](answer, **context))
    except Wrong as wrong:
        result = CheckResult(label, False, str(wrong))
    if not quiet:
        print(result)
        result.printed = True
    return result
