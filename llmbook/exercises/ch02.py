"""Chapter 2's exercises with a check: the doubling time without one model (``ex-02-without-gpt3``) and the year
the trend reaches 10**14 parameters (``ex-02-extrapolate``, a calculation).

Both use the chapter's window of base models, 2012-2022, from :func:`llmbook.history.load_timeline`.
"""

from __future__ import annotations

import math

import numpy as np

from llmbook.exercises.record import Exercise, Wrong, call_answer, need_callable

__all__ = ["check_without_gpt3", "check_extrapolate", "RECORDS"]


FINE_TUNES = ("Codex", "FLAN", "InstructGPT")


def _history_window() -> tuple[list[dict], list[dict]]:
    from llmbook.history import load_timeline

    sized = [row for row in load_timeline() if row["params"] is not None]
    all_sized = [r for r in sized if 2012 <= r["year"] <= 2022]
    return [r for r in all_sized if not r["event"].startswith(FINE_TUNES)], all_sized


def _months(rows) -> float:
    from llmbook.history import fit_doubling_time

    return fit_doubling_time([r["decimal_year"] for r in rows], [r["params"] for r in rows]).doubling_months


def check_without_gpt3(answer, **_) -> str:
    """ex-02-without-gpt3: ``answer(event)`` returns the doubling time in months of the 2012-2022 base-model
    fit with the model called ``event`` left out."""
    need_callable(answer, "doubling_without(event) returning months")
    window, all_sized = _history_window()
    full = _months(window)
    worst, worst_gap = None, 0.0
    for row in window:
        expected = _months([r for r in window if r["event"] != row["event"]])
        got = call_answer(answer, row["event"])
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise Wrong(f"doubling_without({row['event']!r}) should return a number of months, got "
                        f"{type(got).__name__} (use the fit's .doubling_months)") from None
        if abs(got - full) < 1e-9 and abs(expected - full) > 1e-6:
            raise Wrong(f"leaving out {row['event']!r} changes nothing in your fit: is the model really "
                        "removed? (compare the names exactly)")
        if abs(got - expected) > 1e-6 and abs(got - expected) > worst_gap:
            worst, worst_gap = row["event"], abs(got - expected)
    if worst is not None:
        fine = [r for r in all_sized if r["event"] != worst]
        if abs(float(call_answer(answer, worst)) - _months(fine)) < 1e-6:
            raise Wrong("your fit includes the fine-tuned models (Codex, FLAN, InstructGPT); start from the "
                        "chapter's `window` of base models")
        raise Wrong(f"without {worst!r} your doubling time is off by {worst_gap:.2f} months; fit log2(params) "
                    "against the decimal year of the remaining base models of 2012-2022 (fit_doubling_time)")
    return f"{len(window)} leave-one-out fits agree with the reference."


def check_extrapolate(answer, **_) -> str:
    """ex-02-extrapolate: ``answer`` is the decimal year in which the 2012-2022 base-model trend reaches
    10**14 parameters."""
    from llmbook.history import fit_doubling_time

    if isinstance(answer, bool) or not isinstance(answer, (int, float, np.integer, np.floating)):
        raise Wrong(f"give the year as a number, not a {type(answer).__name__}")
    window, _ = _history_window()
    fit = fit_doubling_time([r["decimal_year"] for r in window], [r["params"] for r in window])
    expected = (math.log2(1e14) - fit.intercept) / fit.slope
    if abs(float(answer) - expected) < 0.05:
        return f"about {expected:.1f}."
    for name, value in (("log10", 14.0), ("natural log", math.log(1e14))):
        if abs(float(answer) - (value - fit.intercept) / fit.slope) < 0.05:
            raise Wrong(f"you used the {name} of 10**14, but the fit is a straight line in log2 of the parameters")
    raise Wrong(f"your year is {float(answer) - expected:+.1f} years away from the trend's: solve "
                "log2(10**14) = intercept + slope * year with the chapter's fit")


#: The chapter's exercise records.
RECORDS = (
    Exercise(label="ex-02-without-gpt3", answer="doubling_without", check=check_without_gpt3,
             signature="doubling_without(event) -> months",
             wrong="doubling_without = lambda event: fit.doubling_months  # leaves nothing out"),
    Exercise(label="ex-02-extrapolate", answer="target_year", check=check_extrapolate,
             signature="the year the trend reaches 1e14",
             wrong="target_year = target_year + 5"),
)
