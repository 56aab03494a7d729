"""Calibration (校准): how far to trust a model's confidence (chapter 11, section 11.1).

- **Calibration**: does a confidence of 0.8 mean right 80 % of the time? :func:`reliability_bins` (the reliability
  diagram), :func:`expected_calibration_error` (ECE), and :func:`fit_temperature`, temperature scaling (Guo et al.
  2017), which fixes over- or under-confidence without changing any answer.
- **Discrimination**: does confidence tell right answers from wrong ones? :func:`confidence_auroc` and
  :func:`risk_coverage` (answering only when confident).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from llmbook.utils import check_int

__all__ = ["reliability_bins", "expected_calibration_error", "fit_temperature", "confidence_auroc", "risk_coverage"]


def _check_confidences(confidences, correct) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidences, dtype=float)
    hits = np.asarray(correct)
    if conf.ndim != 1 or hits.shape != conf.shape:
        raise ValueError("confidences and correct must be 1-D and of the same length, "
                         f"got shapes {conf.shape} and {hits.shape}")
    if conf.size == 0:
        raise ValueError("need at least one prediction")
    if not np.all((conf >= 0) & (conf <= 1)):
        raise ValueError("confidences must be probabilities in [0, 1]")
    if hits.dtype != bool and not np.all((hits == 0) | (hits == 1)):
        raise ValueError("correct must hold booleans or 0/1 values")
    return conf, hits.astype(float)


def reliability_bins(confidences, correct, n_bins: int = 10) -> dict:
    """Group predictions by confidence into ``n_bins`` equal-width bins of [0, 1] (a reliability diagram).

    ``confidences`` (N,) are the probabilities the model gave its answers, ``correct`` (N,) whether each answer
    was right. Bin m holds confidences in ((m-1)/M, m/M]; the first bin also holds 0. Returns a dict of NumPy
    arrays: ``edges`` (M+1,), ``count`` (M,), ``confidence`` (mean confidence per bin) and ``accuracy``
    (fraction correct per bin); the last two are NaN for empty bins.
    """
    check_int("n_bins", n_bins, minimum=1)
    conf, hits = _check_confidences(confidences, correct)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=n_bins) / count
        accuracy = np.bincount(index, weights=hits, minlength=n_bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": accuracy}


def expected_calibration_error(confidences, correct, n_bins: int = 10) -> float:
    """ECE = sum over bins of (share of predictions in the bin) * abs(accuracy - mean confidence).

    0 means perfectly calibrated on these bins; the largest possible value is 1. Same inputs as
    :func:`reliability_bins` (Naeini et al. 2015; Guo et al. 2017).
    """
    bins = reliability_bins(confidences, correct, n_bins)
    used = bins["count"] > 0
    weights = bins["count"][used] / bins["count"].sum()
    return float(np.sum(weights * np.abs(bins["accuracy"][used] - bins["confidence"][used])))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, low: float = 0.05, high: float = 20.0,
                    n_grid: int = 400) -> float:
    """Temperature scaling: the T > 0 that minimises the cross-entropy of ``softmax(logits / T)``.

    ``logits`` (N, K) are a classifier's scores on held-out examples with true classes ``labels`` (N,).
    The search is a deterministic grid of ``n_grid`` temperatures spaced evenly in log scale between ``low``
    and ``high``. Dividing by one T never changes which class is most probable, so accuracy is unchanged;
    only the confidence moves. Returns T (T > 1 means the model was over-confident).
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or not logits.dtype.is_floating_point:
        raise ValueError("logits must be a floating-point tensor of shape (N, classes), "
                         f"got {tuple(getattr(logits, 'shape', ()))}")
    if not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (logits.shape[0],):
        raise ValueError(f"labels must be a tensor of shape ({logits.shape[0]},), "
                         f"got {tuple(getattr(labels, 'shape', ()))}")
    if labels.dtype.is_floating_point or labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must be integer classes in [0, {logits.shape[1]})")
    if not (0 < low < high):
        raise ValueError(f"need 0 < low < high, got low={low} and high={high}")
    check_int("n_grid", n_grid, minimum=2)
    temperatures = torch.logspace(math.log10(low), math.log10(high), n_grid, dtype=torch.float64)
    scaled = logits.double()[None] / temperatures[:, None, None]  # (n_grid, N, K)
    nll = -torch.log_softmax(scaled, dim=-1).gather(-1, labels.long()[None, :, None].expand(n_grid, -1, 1))
    return float(temperatures[nll.mean(dim=(1, 2)).argmin()])


def confidence_auroc(confidences, correct) -> float:
    """How well confidence separates right from wrong answers: the area under the ROC curve (AUROC).

    Equal to the probability that a randomly chosen right answer got a higher confidence than a randomly
    chosen wrong one, ties counting one half (the Mann-Whitney statistic). 1 means every right answer is
    more confident than every wrong one, 0.5 that confidence tells them apart no better than a coin.
    Calibration (:func:`expected_calibration_error`) and this *discrimination* are different properties:
    dividing the logits by one temperature changes the first and never the second. Same inputs as
    :func:`reliability_bins`; raises ``ValueError`` unless there is at least one right and one wrong answer.
    """
    conf, hits = _check_confidences(confidences, correct)
    right, wrong = conf[hits == 1], conf[hits == 0]
    if right.size == 0 or wrong.size == 0:
        raise ValueError("AUROC needs at least one right and one wrong answer")
    greater = (right[:, None] > wrong[None, :]).mean()
    ties = (right[:, None] == wrong[None, :]).mean()
    return float(greater + 0.5 * ties)


def risk_coverage(confidences, correct) -> tuple[np.ndarray, np.ndarray]:
    """The risk-coverage curve of answering only when confident (selective prediction).

    Sort the answers from the most to the least confident; answering the first k of N gives coverage k/N and
    risk = the share of wrong answers among those k. Returns ``(coverage, risk)``, two arrays of length N
    (coverage 1/N, 2/N, ..., 1). A model whose confidence discriminates well has low risk at low coverage; if
    confidence carries no information, the risk is about the same at every coverage. Equal confidences are
    kept in their input order (a stable sort). Same inputs as :func:`reliability_bins`.
    """
    conf, hits = _check_confidences(confidences, correct)
    order = np.argsort(-conf, kind="stable")
    answered = np.arange(1, conf.size + 1)
    risk = np.cumsum(1 - hits[order]) / answered
    return answered / conf.size, risk
