"""Tests of llmbook.scaling (chapter 8): compute arithmetic, power-law fits, model families and k-token scoring."""

import math

import numpy as np
import pytest
import torch

from llmbook.params import transformer_block_params, transformer_params
from llmbook.scaling import (
    FLOPS_PER_PARAM_TOKEN,
    PowerLawFit,
    compute_optimal,
    exact_match_from_per_token,
    fit_power_law,
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


def test_training_flops_is_six_n_d():
    assert FLOPS_PER_PARAM_TOKEN == 6
    assert training_flops(175e9, 300e9) == pytest.approx(3.15e23)
    assert training_flops(10, 7) == 420


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
    assert gpu_days(86_400, 1.0, utilisation=0.5) == pytest.approx(2.0)
    # GPT-3 on A100s at 40 % of the 312 TFLOP/s peak: about 29,000 GPU-days
    assert gpu_days(3.15e23, 312e12, 0.4) == pytest.approx(3.15e23 / (312e12 * 0.4) / 86_400)


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
