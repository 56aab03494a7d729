"""Tests of llmbook.scaling (chapter 8): compute arithmetic, power-law fits, model families and k-token scoring."""

import math

import numpy as np
import pytest
import torch

from llmbook.params import transformer_block_params, transformer_params
from llmbook.scaling import (
    PowerLawFit,
    WittenBell,
    bootstrap_by_group,
    compute_optimal,
    exact_match_from_per_token,
    fit_power_law,
    fit_power_law_nls,
    gpu_days,
    non_embedding_parameters,
    score_next_tokens,
    span_scores,
    train_family,
    training_flops,
)
from llmbook.transformer import GPT, GPTConfig

# ---------------------------------------------------------------------------------------------------------------
# Compute
# ---------------------------------------------------------------------------------------------------------------


def test_training_flops_counts_what_pytorch_computes_for_a_training_step():
    # Forward and backward through bias-free linear layers, counted by PyTorch's FLOP counter: 2 FLOPs per
    # weight and token forward, 2 for the gradient of the input and 2 for that of the weight: exactly 6 N D.
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16, bias=False), torch.nn.GELU(),
                                torch.nn.Linear(16, 4, bias=False))
    x = torch.randn(5, 3, 8, requires_grad=True)  # 15 tokens
    with FlopCounterMode(display=False) as counter:
        model(x).square().sum().backward()
    n_params = sum(p.numel() for p in model.parameters())
    assert counter.get_total_flops() == training_flops(n_params, 15)


def test_training_flops_matches_published_budgets():
    # GPT-3 175B on 300B tokens: 3.14e23 FLOPs (Brown et al., 2020, table D.1);
    # Chinchilla 70B on 1.4T tokens: Gopher's budget of 5.76e23 FLOPs (Hoffmann et al., 2022)
    assert training_flops(175e9, 300e9) == pytest.approx(3.14e23, rel=0.01)
    assert training_flops(70e9, 1.4e12) == pytest.approx(5.76e23, rel=0.03)
    # twice the parameters or twice the tokens cost twice the compute
    assert training_flops(2 * 175e9, 300e9) == pytest.approx(2 * training_flops(175e9, 300e9))
    assert training_flops(175e9, 600e9) == pytest.approx(2 * training_flops(175e9, 300e9))


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_training_flops_rejects_bad_numbers(bad):
    with pytest.raises(ValueError, match="n_params"):
        training_flops(bad, 10)
    with pytest.raises(ValueError, match="n_tokens"):
        training_flops(10, bad)


def test_training_flops_rejects_non_numbers():
    with pytest.raises(TypeError, match="n_params"):
        training_flops("175B", 10)
    with pytest.raises(TypeError, match="n_tokens"):
        training_flops(10, True)


def test_gpu_days():
    # one day of a 1 FLOP/s chip at full use is 86,400 FLOPs
    assert gpu_days(86_400, 1.0, utilisation=1.0) == pytest.approx(1.0)
    assert gpu_days(86_400, 1.0, utilisation=0.5) == pytest.approx(2.0)  # half the use, twice the days
    assert gpu_days(2 * 86_400, 1.0, utilisation=1.0) == pytest.approx(2.0)  # twice the work
    assert gpu_days(86_400, 4.0, utilisation=1.0) == pytest.approx(0.25)  # a chip four times as fast
    # LLaMA-65B: 1.4T tokens took 1,022,362 A100 GPU-hours (Touvron et al., 2023, table 15), i.e. the 312 TFLOP/s
    # peak used at about 48 %
    assert gpu_days(training_flops(65.2e9, 1.4e12), 312e12, 0.48) * 24 == pytest.approx(1_022_362, rel=0.02)


@pytest.mark.parametrize("utilisation", [0, -0.1, 1.5])
def test_gpu_days_rejects_bad_utilisation(utilisation):
    with pytest.raises(ValueError, match="utilisation"):
        gpu_days(1e20, 312e12, utilisation)


def test_gpu_days_rejects_bad_flops_and_peak():
    with pytest.raises(ValueError, match="flops"):
        gpu_days(-1, 312e12)
    with pytest.raises(ValueError, match="peak_flops_per_second"):
        gpu_days(1e20, 0)


def test_compute_optimal_satisfies_both_equations():
    n_params, n_tokens = compute_optimal(5.88e23, tokens_per_param=20)
    assert n_tokens == pytest.approx(20 * n_params)
    assert training_flops(n_params, n_tokens) == pytest.approx(5.88e23)
    assert n_params == pytest.approx(70e9, rel=1e-3)  # Chinchilla: 70B parameters, 1.4T tokens


def test_compute_optimal_grows_parameters_and_tokens_as_the_square_root_of_compute():
    # Hoffmann et al. (2022) find N_opt and D_opt both proportional to C^0.5: 100 times the compute buys 10 times
    # the parameters and 10 times the tokens, and the ratio D / N stays at about 20
    budgets = np.geomspace(1e18, 1e26, 9)
    splits = np.array([compute_optimal(c) for c in budgets])
    slopes = np.polyfit(np.log(budgets), np.log(splits), 1)[0]
    assert slopes == pytest.approx([0.5, 0.5], abs=1e-9)
    assert np.allclose(splits[:, 1] / splits[:, 0], 20)
    assert np.all(np.diff(splits, axis=0) > 0)  # more compute, more of both
    # Chinchilla's own budget gives Chinchilla's size within 2 %: 70B parameters and 1.4T tokens
    n_params, n_tokens = compute_optimal(5.76e23)
    assert n_params == pytest.approx(70e9, rel=0.02) and n_tokens == pytest.approx(1.4e12, rel=0.02)


def test_compute_optimal_other_ratio():
    n_params, n_tokens = compute_optimal(600.0, tokens_per_param=1.0)
    assert (n_params, n_tokens) == (pytest.approx(10.0), pytest.approx(10.0))


def test_compute_optimal_rejects_bad_input():
    with pytest.raises(ValueError, match="compute"):
        compute_optimal(0)
    with pytest.raises(ValueError, match="tokens_per_param"):
        compute_optimal(1e20, tokens_per_param=-20)


# ---------------------------------------------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("n_layers,d_model", [(1, 8), (2, 16)])
def test_non_embedding_parameters_matches_formula(tie, n_layers, d_model):
    config = GPTConfig(vocab_size=11, n_ctx=6, d_model=d_model, n_layers=n_layers, n_heads=2, tie_weights=tie)
    model = GPT(config)
    expected = n_layers * transformer_block_params(d_model) + 2 * d_model  # blocks + final layer norm
    assert non_embedding_parameters(model) == expected
    total = transformer_params(11, d_model, n_layers, 6, tied_embeddings=tie)["total"]
    assert sum(p.numel() for p in model.parameters()) == total


def test_non_embedding_parameters_of_plain_module():
    layer = torch.nn.Linear(3, 2)
    assert non_embedding_parameters(layer) == 8
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 4))
    assert non_embedding_parameters(model) == 20


def test_non_embedding_parameters_rejects_non_module():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        non_embedding_parameters([1, 2, 3])


# ---------------------------------------------------------------------------------------------------------------
# Power-law fits
# ---------------------------------------------------------------------------------------------------------------


def test_fit_power_law_recovers_exact_parameters():
    n = np.array([1e2, 3e2, 1e3, 3e3, 1e4, 3e4, 1e5])
    loss = 5.0 * n ** -0.3 + 1.5
    fit = fit_power_law(n, loss)
    assert fit.alpha == pytest.approx(0.3, rel=1e-3)
    assert fit.a == pytest.approx(5.0, rel=1e-2)
    assert fit.c == pytest.approx(1.5, abs=1e-3)
    assert fit.rmse < 1e-4
    np.testing.assert_allclose(fit.predict(n), loss, rtol=1e-4)


def test_fit_power_law_without_offset_is_a_straight_line():
    n = np.array([10.0, 100.0, 1000.0])
    loss = 3.0 * n ** -0.5
    fit = fit_power_law(n, loss, fit_offset=False)
    assert fit.c == 0.0
    assert fit.alpha == pytest.approx(0.5)
    assert fit.a == pytest.approx(3.0)


def test_fit_power_law_offset_beats_straight_line_on_bent_data():
    n = np.geomspace(100, 1e5, 6)
    loss = 4.0 * n ** -0.25 + 1.8
    assert fit_power_law(n, loss).rmse < fit_power_law(n, loss, fit_offset=False).rmse


def test_fit_power_law_is_deterministic_and_printable():
    n, loss = [496, 1760, 6592, 14496], [2.64, 2.43, 2.22, 2.16]
    first, second = fit_power_law(n, loss), fit_power_law(n, loss)
    assert first == second
    assert isinstance(first, PowerLawFit)
    assert str(first).startswith("L(N) = ") and "N^(-" in str(first)


@pytest.mark.parametrize(
    "n,loss,message",
    [
        ([1, 2], [3.0, 2.0], "at least 3 points"),
        ([1, 2, 3], [3.0, 2.0], "same length"),
        ([[1, 2, 3]], [[3.0, 2.0, 1.0]], "1-D"),
        ([1, 0, 3], [3.0, 2.0, 1.0], "finite and > 0"),
        ([1, 2, 3], [3.0, -2.0, 1.0], "finite and > 0"),
        ([1, 2, float("nan")], [3.0, 2.0, 1.0], "finite and > 0"),
        ([5, 5, 5], [3.0, 2.0, 1.0], "2 different sizes"),
        ([1, 10, 100], [1.0, 2.0, 3.0], "does not fall"),
    ],
)
def test_fit_power_law_rejects_bad_input(n, loss, message):
    with pytest.raises(ValueError, match=message):
        fit_power_law(n, loss)


def test_fit_power_law_without_offset_needs_two_points():
    with pytest.raises(ValueError, match="at least 2 points"):
        fit_power_law([10], [1.0], fit_offset=False)
    with pytest.raises(ValueError, match="does not fall"):
        fit_power_law([10, 100], [1.0, 2.0], fit_offset=False)


def test_power_law_fit_predict_rejects_bad_sizes():
    fit = PowerLawFit(a=1.0, alpha=0.5, c=0.0, rmse=0.0)
    assert fit.predict(4.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="finite and > 0"):
        fit.predict([1.0, -1.0])


# ---------------------------------------------------------------------------------------------------------------
# Scoring k-token answers
# ---------------------------------------------------------------------------------------------------------------


def test_span_scores_counts_last_k_positions():
    correct = torch.tensor([[False, True, True, True],
                            [True, True, False, True],
                            [True, False, True, True]])
    scores = span_scores(correct, 2)
    assert scores["per_token"] == pytest.approx(5 / 6)
    assert scores["exact_match"] == pytest.approx(2 / 3)
    assert span_scores(correct, 1) == {"per_token": 1.0, "exact_match": 1.0}
    assert span_scores(correct.numpy(), 4)["exact_match"] == 0.0


def test_span_scores_rejects_bad_input():
    with pytest.raises(TypeError, match="booleans"):
        span_scores(torch.ones(2, 3), 1)
    with pytest.raises(ValueError, match="windows, time"):
        span_scores(torch.ones(3, dtype=torch.bool), 1)
    with pytest.raises(ValueError, match="at most the window length"):
        span_scores(torch.ones(2, 3, dtype=torch.bool), 4)
    with pytest.raises(ValueError, match="k must be >= 1"):
        span_scores(torch.ones(2, 3, dtype=torch.bool), 0)


def test_exact_match_from_per_token():
    assert exact_match_from_per_token(0.5, 3) == pytest.approx(0.125)
    np.testing.assert_allclose(exact_match_from_per_token([0.9, 1.0, 0.0], 10), [0.9**10, 1.0, 0.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        exact_match_from_per_token(1.2, 2)
    with pytest.raises(ValueError, match=">= 1"):
        exact_match_from_per_token(0.5, 0)
    with pytest.raises(TypeError, match="integer"):
        exact_match_from_per_token(0.5, 2.0)


class _Oracle(torch.nn.Module):
    """A 'model' that puts all probability on token (input + 1) mod V: right on counting data."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, token_ids, targets=None):
        logits = torch.full((*token_ids.shape, self.vocab_size), -1e4)
        logits.scatter_(-1, ((token_ids + 1) % self.vocab_size)[..., None], 0.0)
        return logits, None


def test_score_next_tokens_on_a_perfect_and_a_broken_sequence():
    model = _Oracle(5).train()
    data = torch.arange(40) % 5  # 0 1 2 3 4 0 1 ...: the oracle is always right
    correct, log_prob = score_next_tokens(model, data, n_ctx=4)
    assert correct.shape == (9, 4) and correct.all()
    assert torch.allclose(log_prob, torch.zeros_like(log_prob), atol=1e-3)
    assert model.training  # mode restored
    broken = data.clone()
    broken[6] = 0  # the target at window 1, position 1 is now wrong (and the next prediction too)
    correct, _ = score_next_tokens(model, broken, n_ctx=4)
    assert not correct[1, 1] and not correct[1, 2] and correct[1, 0] and correct[0].all()


def test_score_next_tokens_with_stride_and_starts():
    model = _Oracle(5)
    data = torch.arange(20) % 5
    assert score_next_tokens(model, data, n_ctx=4, stride=1)[0].shape == (16, 4)
    correct, _ = score_next_tokens(model, data, n_ctx=4, starts=[0, 15])
    assert correct.shape == (2, 4)
    with pytest.raises(ValueError, match="every start must lie"):
        score_next_tokens(model, data, n_ctx=4, starts=[16])
    with pytest.raises(ValueError, match="every start must lie"):
        score_next_tokens(model, data, n_ctx=4, starts=[-1])
    with pytest.raises(ValueError, match="at least 5"):
        score_next_tokens(model, data[:4], n_ctx=4)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        score_next_tokens(model, data, n_ctx=4, stride=0)


def test_greedy_exact_match_equals_teacher_forced_exact_match():
    from llmbook.generation import greedy_decode

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=7, n_ctx=8, d_model=8, n_layers=1, n_heads=2))
    data = torch.randint(0, 7, (60,))
    k = 3
    correct, _ = score_next_tokens(model, data, n_ctx=8, stride=5)
    for w, start in enumerate(range(0, len(data) - 8, 5)):
        prompt = data[start:start + 8 - k + 1].tolist()
        generated = greedy_decode(model, prompt, k)[-k:]
        truth = data[start + 8 - k + 1:start + 9].tolist()
        assert (generated == truth) == bool(correct[w, -k:].all())


# ---------------------------------------------------------------------------------------------------------------
# A family of tiny GPTs
# ---------------------------------------------------------------------------------------------------------------


def test_train_family_trains_each_size_with_one_recipe(capsys):
    torch.manual_seed(0)
    data = torch.randint(0, 6, (400,))
    family = train_family([(1, 4), (1, 8)], data[:300], data[300:], vocab_size=6, n_ctx=8, steps=3,
                          batch_size=2, lr=1e-2, eval_every=2, eval_windows=2)
    assert [m["d_model"] for m in family] == [4, 8]
    for m in family:
        assert m["tokens"] == 3 * 2 * 8
        assert m["flops"] == training_flops(m["non_embedding"], m["tokens"])
        assert m["non_embedding"] == non_embedding_parameters(m["model"])
        assert m["history"]["eval_steps"] == [0, 2, 3]
        assert math.isfinite(m["val_loss"])
        assert m["model"].lm_head.weight is not m["model"].token_embedding.weight  # untied by default
    assert capsys.readouterr().out.count("val loss") == 2
    again = train_family([(1, 4)], data[:300], data[300:], vocab_size=6, n_ctx=8, steps=3, batch_size=2,
                         lr=1e-2, verbose=False)
    assert again[0]["val_loss"] == family[0]["val_loss"]  # same seed, same result


@pytest.mark.parametrize(
    "sizes,error,message",
    [
        ([], ValueError, "at least one"),
        ([(1, 4, 2)], ValueError, "pair"),
        ([(0, 4)], ValueError, "n_layers"),
        ([(1, 2.5)], TypeError, "d_model"),
    ],
)
def test_train_family_rejects_bad_sizes(sizes, error, message):
    data = torch.zeros(50, dtype=torch.long)
    with pytest.raises(error, match=message):
        train_family(sizes, data, data, vocab_size=3, n_ctx=4, steps=1, batch_size=1, lr=1e-3)


def test_train_family_rejects_short_data():
    data = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="train_data"):
        train_family([(1, 4)], data, torch.zeros(50, dtype=torch.long), vocab_size=3, n_ctx=4, steps=1,
                     batch_size=1, lr=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# Nonlinear least squares with standard errors
# ---------------------------------------------------------------------------------------------------------------


def test_fit_power_law_nls_recovers_exact_parameters_with_tiny_errors():
    n = np.geomspace(300, 3e4, 6)
    loss = 4.0 * n ** -0.3 + 1.9
    fit = fit_power_law_nls(n, loss)
    assert (fit.a, fit.alpha, fit.c) == (pytest.approx(4.0, rel=1e-5), pytest.approx(0.3, rel=1e-5),
                                         pytest.approx(1.9, rel=1e-5))
    assert fit.stderr is not None and max(fit.stderr) < 1e-5
    assert fit_power_law(n, loss).stderr is None


def test_fit_power_law_nls_minimises_squared_error_and_gives_plausible_errors():
    rng = np.random.default_rng(0)
    n = np.geomspace(300, 3e4, 6)
    loss = 4.0 * n ** -0.3 + 1.9 + rng.normal(0, 0.01, size=6)
    nls, hybrid = fit_power_law_nls(n, loss), fit_power_law(n, loss)
    assert nls.rmse <= hybrid.rmse + 1e-12  # the least-squares fit of L can only be as good or better
    se_a, se_alpha, se_c = nls.stderr
    assert 0 < se_alpha < 1 and 0 < se_c < 1
    # more noise, wider errors
    noisier = fit_power_law_nls(n, 4.0 * n ** -0.3 + 1.9 + rng.normal(0, 0.05, size=6))
    assert noisier.stderr[1] > se_alpha


def test_fit_power_law_nls_needs_four_points_and_good_input():
    with pytest.raises(ValueError, match="at least 4 points"):
        fit_power_law_nls([10, 100, 1000], [3.0, 2.5, 2.2])
    with pytest.raises(ValueError, match="does not fall"):
        fit_power_law_nls([1, 10, 100, 1000], [1.0, 2.0, 3.0, 4.0])


# ---------------------------------------------------------------------------------------------------------------
# The Witten-Bell n-gram baseline
# ---------------------------------------------------------------------------------------------------------------


def test_witten_bell_distributions_sum_to_one():
    text = "the cat sat on the mat. the hat."
    alphabet = sorted(set(text)) + ["x", "y", "z"]  # three characters the text never shows
    model = WittenBell(text, order=3, vocab_size=len(alphabet))
    for context in ("", "t", "th", "zz", "a mat"):
        total = sum(model.probability(context, ch) for ch in alphabet)
        assert total == pytest.approx(1.0)
        assert all(model.probability(context, ch) > 0 for ch in alphabet)


def test_witten_bell_by_hand():
    # "abab": unigram counts a:2 b:2 (N = 4, T = 2); bigram context "a" -> b twice (c = 2, T = 1)
    model = WittenBell("abab", order=2, vocab_size=4)
    p_b = (2 + 2 * 0.25) / (4 + 2)
    assert model.probability("", "b") == pytest.approx(p_b)
    assert model.probability("a", "b") == pytest.approx((2 + 1 * p_b) / (2 + 1))
    assert model.probability("b", "b") == pytest.approx((0 + 1 * p_b) / (1 + 1))  # "b" is followed by "a" once
    assert model.probability("c", "b") == pytest.approx(p_b)  # unseen context: back off
    assert model.probability("xa", "b") == model.probability("a", "b")  # only the last order - 1 characters
    # a context shorter than order - 1 is used whole: after "ab" only "c" was seen, after "b" also "d"
    order4 = WittenBell("abcxbd", order=4, vocab_size=5)
    assert order4.probability("ab", "c") > order4.probability("b", "c")
    loss = -(math.log(model.probability("a", "b")) + math.log(model.probability("b", "a"))) / 2
    assert model.loss("aba") == pytest.approx(loss)


def test_witten_bell_loss_with_windows_uses_only_each_windows_characters():
    model = WittenBell("abcabcabc", order=3, vocab_size=3)
    text = "abcab"  # windows of 2: targets 1-2 (context from 0) and 3-4 (context from 2)
    by_hand = -sum(math.log(model.probability(context, ch)) for context, ch in
                   [("a", "b"), ("ab", "c"), ("c", "a"), ("ca", "b")]) / 4
    assert model.loss(text, n_ctx=2) == pytest.approx(by_hand)
    assert model.loss(text, n_ctx=2) > model.loss(text)  # less context, higher loss here
    assert WittenBell("abcabcabc", order=1, vocab_size=3).loss("abc") == pytest.approx(math.log(3))


def test_witten_bell_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        WittenBell("", order=2, vocab_size=3)
    with pytest.raises(ValueError, match="more than vocab_size"):
        WittenBell("abcd", order=2, vocab_size=3)
    with pytest.raises(ValueError, match="order"):
        WittenBell("abc", order=0, vocab_size=3)
    model = WittenBell("abc", order=2, vocab_size=3)
    with pytest.raises(TypeError, match="single character"):
        model.probability("a", "bc")
    with pytest.raises(ValueError, match="at least 2"):
        model.loss("a")


# ---------------------------------------------------------------------------------------------------------------
# Log-probability of answers and the bootstrap over groups
# ---------------------------------------------------------------------------------------------------------------


def test_span_scores_log_prob_of_the_answer():
    correct = torch.tensor([[True, True, False], [False, True, True]])
    log_prob = torch.tensor([[-9.0, -0.1, -2.0], [-5.0, -0.3, -0.2]])
    scores = span_scores(correct, 2, log_prob=log_prob)
    assert scores["log_prob"] == pytest.approx(((-0.1 - 2.0) + (-0.3 - 0.2)) / 2)
    assert "log_prob" not in span_scores(correct, 2)
    with pytest.raises(ValueError, match="shape of correct"):
        span_scores(correct, 2, log_prob=log_prob[:, :2])
    with pytest.raises(ValueError, match="<= 0"):
        span_scores(correct, 2, log_prob=-log_prob)


def test_bootstrap_by_group_resamples_groups():
    # two words of 10 items each: one always right, one always wrong; the mean is 0.5 but resampling words
    # gives means of 0, 0.5 or 1, so the interval is wide, unlike a bootstrap over the 20 items
    values = [1.0] * 10 + [0.0] * 10
    groups = ["a"] * 10 + ["b"] * 10
    low, high = bootstrap_by_group(values, groups, n_resamples=4000)
    assert (low, high) == (0.0, 1.0)
    items_low, items_high = bootstrap_by_group(values, range(20), n_resamples=4000)
    assert 0.2 < items_low < 0.5 < items_high < 0.8
    assert bootstrap_by_group(values, groups, seed=3) == bootstrap_by_group(values, groups, seed=3)
    assert bootstrap_by_group([0.5, 0.5, 0.5], "xyz") == (0.5, 0.5)


def test_bootstrap_by_group_rejects_bad_input():
    with pytest.raises(ValueError, match="one group label"):
        bootstrap_by_group([1.0, 0.0], ["a"])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_by_group([1.0, float("nan")], ["a", "b"])
    with pytest.raises(ValueError, match="below 1"):
        bootstrap_by_group([1.0, 0.0], ["a", "b"], level=1.0)
