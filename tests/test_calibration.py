"""Tests of llmbook.calibration: ECE and reliability bins, temperature scaling, AUROC and risk-coverage."""

import numpy as np
import pytest
import torch

from llmbook.calibration import (
    confidence_auroc,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    risk_coverage,
)

# -------------------------------------------------------------------------------------------- calibration


def test_ece_hand_made_cases():
    # perfectly calibrated: confidence 0.8 and 4 of 5 right
    assert expected_calibration_error([0.8] * 5, [1, 1, 1, 1, 0]) == pytest.approx(0.0)
    # always sure and always wrong: the worst case
    assert expected_calibration_error([1.0, 1.0], [False, False]) == pytest.approx(1.0)
    # two bins: (0.9, right) and (0.3, right): |1 - 0.9| / 2 + |1 - 0.3| / 2 = 0.4
    assert expected_calibration_error([0.9, 0.3], [1, 1]) == pytest.approx(0.4)
    # bins are weighted by their share of the answers: 3/4 * |1 - 0.9| + 1/4 * |1 - 0.3| = 0.25
    assert expected_calibration_error([0.9, 0.9, 0.9, 0.3], [1, 1, 1, 1]) == pytest.approx(0.25)
    # same bin, averaged before taking the difference: mean conf 0.65, accuracy 0.5
    assert expected_calibration_error([0.62, 0.68], [1, 0]) == pytest.approx(0.15)


def test_reliability_bins():
    bins = reliability_bins([0.0, 0.05, 0.1, 0.15, 0.95, 1.0], [0, 0, 1, 1, 1, 0], n_bins=10)
    assert bins["edges"].tolist() == pytest.approx(np.linspace(0, 1, 11).tolist())
    assert bins["count"].tolist() == [3, 1, 0, 0, 0, 0, 0, 0, 0, 2]  # 0.1 falls in (0, 0.1]
    assert bins["accuracy"][0] == pytest.approx(1 / 3) and bins["accuracy"][9] == pytest.approx(0.5)
    assert bins["confidence"][9] == pytest.approx(0.975)
    assert np.isnan(bins["accuracy"][5])


def test_calibration_bad_input():
    with pytest.raises(ValueError, match="same length"):
        expected_calibration_error([0.5, 0.5], [1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.5], [1])
    with pytest.raises(ValueError, match="0/1"):
        expected_calibration_error([0.5], [2])
    with pytest.raises(ValueError, match="at least one"):
        expected_calibration_error([], [])
    with pytest.raises(ValueError, match=">= 1"):
        reliability_bins([0.5], [1], n_bins=0)


def test_fit_temperature_recovers_a_known_temperature():
    generator = torch.Generator().manual_seed(0)
    true_logits = torch.randn(4000, 5, generator=generator) * 2
    labels = torch.multinomial(torch.softmax(true_logits, dim=-1), 1, generator=generator)[:, 0]
    assert fit_temperature(true_logits * 3, labels) == pytest.approx(3.0, rel=0.1)  # over-confident by 3
    assert fit_temperature(true_logits / 2, labels) == pytest.approx(0.5, rel=0.1)  # under-confident
    with pytest.raises(ValueError, match="shape \\(N, classes\\)"):
        fit_temperature(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        fit_temperature(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="integer classes"):
        fit_temperature(torch.zeros(3, 2), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="low < high"):
        fit_temperature(torch.zeros(3, 2), torch.tensor([0, 1, 1]), low=2.0, high=1.0)


# ------------------------------------------------------------------------------------------- discrimination


def test_auroc_hand_made_cases():
    assert confidence_auroc([0.9, 0.8, 0.3, 0.2], [1, 1, 0, 0]) == pytest.approx(1.0)  # perfect ranking
    assert confidence_auroc([0.9, 0.8, 0.3, 0.2], [0, 0, 1, 1]) == pytest.approx(0.0)  # reversed
    assert confidence_auroc([0.5, 0.5, 0.5], [1, 0, 1]) == pytest.approx(0.5)  # ties count one half
    # right answers 0.9, 0.4; wrong 0.6, 0.2: pairs won 0.9>0.6, 0.9>0.2, 0.4>0.2 -> 3 of 4
    assert confidence_auroc([0.9, 0.6, 0.4, 0.2], [True, False, True, False]) == pytest.approx(0.75)


def test_auroc_does_not_change_under_a_monotone_map_and_matches_a_large_random_case():
    rng = np.random.default_rng(0)
    conf = rng.uniform(size=300)
    right = rng.uniform(size=300) < conf  # surer answers are more often right
    auroc = confidence_auroc(conf, right)
    assert 0.7 < auroc < 0.9
    assert confidence_auroc(conf ** 3, right) == pytest.approx(auroc)
    assert confidence_auroc(rng.uniform(size=2000), rng.uniform(size=2000) < 0.5) == pytest.approx(0.5, abs=0.05)


def test_risk_coverage():
    coverage, risk = risk_coverage([0.2, 0.9, 0.6, 0.4], [0, 1, 0, 1])
    assert coverage.tolist() == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # most confident first: 0.9 right, 0.6 wrong, 0.4 right, 0.2 wrong
    assert risk.tolist() == pytest.approx([0.0, 0.5, 1 / 3, 0.5])
    assert risk[-1] == pytest.approx(1 - 0.5)  # at full coverage: the error rate


def test_discrimination_bad_input():
    with pytest.raises(ValueError, match="one right and one wrong"):
        confidence_auroc([0.4, 0.6], [1, 1])
    with pytest.raises(ValueError, match="same length"):
        confidence_auroc([0.4, 0.6], [1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        risk_coverage([1.2], [1])
    with pytest.raises(ValueError, match="at least one"):
        risk_coverage([], [])
