"""Chapter 8's coding exercise: predicting a left-out model with a fitted scaling law (``ex-08-refit``)."""

from __future__ import annotations

import numpy as np

from llmbook.exercises.record import Exercise, Wrong, call_answer, need_callable

__all__ = ["check_refit", "RECORDS"]


# (a, alpha, c, seed, noise) of synthetic families of six models, with losses near the chapter's; chosen so that
# every wrong answer below lands at least 3e-3 nats from the right prediction and from every other wrong answer
REFIT_FAMILIES = ((4.2, 0.26, 1.83, 13, 0.02), (6.0, 0.30, 1.60, 26, 0.015), (3.0, 0.20, 2.00, 26, 0.02))


def _refit_family(a: float, alpha: float, c: float, seed: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    n = np.geomspace(3e3, 5e5, 6).round()
    return n, a * n ** -alpha + c + np.random.default_rng(seed).normal(0.0, noise, size=6)


def _refit_candidates(n: np.ndarray, loss: np.ndarray, offset: bool) -> dict[str, float]:
    """The right prediction ("right") and what plausible mistakes return, keyed by the message for each."""
    from llmbook.scaling import fit_power_law

    def fitted(sizes, losses, offset_on=offset, at=n[-1]):
        return float(fit_power_law(sizes, losses, fit_offset=offset_on).predict(at))

    right = fitted(n[:-1], loss[:-1])
    candidates = {
        "right": right,
        "you return the measured loss of the largest model; return the loss that the fit predicts for it, then "
        "compare the two": float(loss[-1]),
        "you return the prediction's error; return the predicted loss itself": right - float(loss[-1]),
        "your prediction matches a fit that includes the largest model: leave it out of the fit, so that its "
        "loss is a real test of the law": fitted(n, loss),
        "you left out the smallest model; fit the five smaller models and predict the largest": fitted(n[1:], loss[1:]),
        "your prediction is that of the other kind of fit: pass fit_offset on to the fit (False means c = 0, a "
        "straight line on log-log axes)": fitted(n[:-1], loss[:-1], offset_on=not offset),
    }
    for size in n[:-1]:
        candidates[f"you predict the loss at N = {size:,.0f}, a smaller model; evaluate the fit at the largest "
                   "model's N"] = fitted(n[:-1], loss[:-1], at=size)
    return candidates


def check_refit(answer, **_) -> str:
    """ex-08-refit: ``answer(n, loss, fit_offset)`` fits L(N) = a N^-alpha + c (c = 0 when ``fit_offset`` is
    False) to all models but the largest and returns the predicted loss of the largest (a number). ``n`` and
    ``loss`` are NumPy arrays sorted by size, as in the chapter."""
    from llmbook.scaling import PowerLawFit, fit_power_law

    need_callable(answer, "predict_largest(n, loss, fit_offset) returning a predicted loss")
    tolerance = 1e-3  # nats: a fit by hand with a grid over c, as in the chapter, lands within 1e-4
    for family in REFIT_FAMILIES:
        n, loss = _refit_family(*family)
        for offset in (True, False):
            got = call_answer(answer, n.copy(), loss.copy(), offset)
            if isinstance(got, PowerLawFit):
                raise Wrong("your function returns the fit; return the predicted loss of the largest model (a "
                            "number), which the fit's predict gives")
            try:
                got = float(np.asarray(got, dtype=float).reshape(()))
            except (TypeError, ValueError):
                raise Wrong(f"return the predicted loss as one number, got {type(got).__name__}") from None
            if abs(got - float(fit_power_law(n[:-1], loss[:-1], fit_offset=offset).predict(n[-1]))) <= tolerance:
                continue
            candidates = _refit_candidates(n, loss, offset)
            closest = min(candidates, key=lambda message: abs(candidates[message] - got))
            where = f"with fit_offset={offset}"
            if abs(got - candidates[closest]) <= tolerance:
                raise Wrong(f"{where} {closest}")
            raise Wrong(f"{where} your prediction {got:.3f} is {got - candidates['right']:+.3f} nats away from "
                        "that of a least-squares fit of the law to the five smaller models (fit_power_law)")
    return f"predictions with and without the floor agree for {len(REFIT_FAMILIES)} families of six models."


#: The chapter's exercise records.
RECORDS = (
    Exercise(label="ex-08-refit", answer="predict_largest", check=check_refit,
             signature="predict_largest(n, loss, fit_offset) -> predicted loss",
             wrong=("predict_largest = lambda n, loss, fit_offset: float(  # fitted to all six models\n"
                    "    fit_power_law(n, loss, fit_offset=fit_offset).predict(n[-1]))")),
)
