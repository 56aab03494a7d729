import math

import pytest

from llmbook.evidence import ClaimError, check_claim, compare, over_seeds, spread


def test_check_claim_prints_a_holding_claim_and_returns_the_line(capsys):
    line = check_claim("three is more than two", 3 > 2)
    assert line == "✓ three is more than two"
    assert capsys.readouterr().out == "✓ three is more than two\n"


def test_check_claim_fails_with_the_claim_and_its_evidence():
    with pytest.raises(ClaimError, match=r"two is more than three.*Evidence: 2 vs 3"):
        check_claim("two is more than three", 2 > 3, evidence="2 vs 3")
    # a ClaimError is an AssertionError, so pytest and nbval report it as one
    with pytest.raises(AssertionError, match="The book claims: 'false', but on this run it does not hold"):
        check_claim("false", False)


def test_check_claim_refuses_conditions_without_one_truth_value_and_empty_claims():
    import torch

    with pytest.raises(TypeError, match="single truth value"):
        check_claim("all of them", torch.tensor([True, False]))
    check_claim("one element", torch.tensor([True]))
    with pytest.raises(TypeError, match="non-empty sentence"):
        check_claim("  ", True)


def test_spread_mean_sample_sd_range_and_format():
    s = spread([0.80, 0.82, 0.84])
    assert s.n == 3 and s.mean == pytest.approx(0.82) and s.sd == pytest.approx(0.02)
    assert s.se == pytest.approx(0.02 / math.sqrt(3))
    assert (s.low, s.high) == (0.80, 0.84)
    assert format(s, ".2f") == "0.82 ± 0.02"
    assert str(s) == "0.82 ± 0.02 (3 seeds)"
    assert spread([5]).sd == 0.0 and str(spread([5])) == "5 ± 0 (1 seed)"


def test_spread_rejects_no_values_and_nan():
    with pytest.raises(ValueError, match="at least one"):
        spread([])
    with pytest.raises(ValueError, match="finite"):
        spread([1.0, float("nan")])


def test_compare_calls_a_difference_inside_the_noise_a_tie():
    tie = compare([0.80, 0.84, 0.82], [0.81, 0.83, 0.80], names=("LoRA", "probe"))
    assert tie.tie and tie.verdict == "a tie"
    clear = compare([0.90, 0.91, 0.92], [0.80, 0.81, 0.82], names=("full", "probe"))
    assert not clear.tie and clear.verdict == "full higher"
    assert clear.difference == pytest.approx(0.10)
    assert format(clear, ".2f").startswith("full - probe: +0.10 ± ")
    assert compare([1, 2, 3], [4, 5, 7], names=("x", "y")).verdict == "y higher"


def test_paired_compare_removes_what_the_seeds_share():
    a, b = [0.70, 0.80, 0.90], [0.69, 0.79, 0.89]  # each seed's pair differs by exactly 0.01
    assert compare(a, b).tie  # unpaired: the seeds' spread swamps the difference
    paired = compare(a, b, paired=True)
    assert not paired.tie and paired.difference == pytest.approx(0.01) and paired.noise == pytest.approx(0, abs=1e-12)


def test_compare_checks_its_arguments():
    with pytest.raises(ValueError, match="at least two runs"):
        compare([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="same number"):
        compare([1.0, 2.0], [1.0, 2.0, 3.0], paired=True)
    with pytest.raises(ValueError, match="z must be"):
        compare([1.0, 2.0], [1.0, 2.0], z=0)


def test_over_seeds_seeds_each_run():
    import torch

    first = over_seeds(lambda seed: (seed, torch.rand(1).item()), seeds=[3, 4])
    again = over_seeds(lambda seed: (seed, torch.rand(1).item()), seeds=[3, 4])
    assert first == again and first[0][0] == 3 and first[0][1] != first[1][1]
    with pytest.raises(ValueError, match="at least one seed"):
        over_seeds(lambda seed: seed, seeds=[])
    with pytest.raises(ValueError, match="seed"):
        over_seeds(lambda seed: seed, seeds=[-1])
