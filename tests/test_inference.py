import numpy as np
import pytest
import torch
from torch import nn

from llmbook.generation import generate
from llmbook.inference import (
    KVCache,
    confidence_auroc,
    dequantise,
    expected_calibration_error,
    fit_temperature,
    forward_with_cache,
    generate_with_cache,
    quantise_dequantise,
    quantise_per_channel,
    quantised_copy,
    quantised_weight_bytes,
    reliability_bins,
    risk_coverage,
    verbatim_completion_rate,
)
from llmbook.transformer import GPT, GPTConfig


def make_model(positional="learned", n_ctx=12, seed=0):
    torch.manual_seed(seed)
    m = GPT(GPTConfig(vocab_size=13, n_ctx=n_ctx, d_model=16, n_layers=2, n_heads=2, positional=positional))
    with torch.no_grad():  # larger weights than the default init, so that the distributions are far from uniform
        for p in m.parameters():
            p.mul_(20)
    return m.eval()


# ------------------------------------------------------------------------------------------------ KV cache


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "none"])
def test_cached_logits_equal_full_forward(positional):
    model = make_model(positional)
    ids = torch.randint(0, 13, (3, 10), generator=torch.Generator().manual_seed(1))
    full, _ = model(ids)
    logits, cache = forward_with_cache(model, ids[:, :4])  # a prompt of 4 positions in one pass
    pieces = [logits]
    for t in range(4, 10):  # then one position at a time
        logits, cache = forward_with_cache(model, ids[:, t:t + 1], cache)
        pieces.append(logits)
    assert cache.length == 10
    assert len(cache.keys) == 2 and cache.keys[0].shape == (3, 2, 10, 8)
    assert cache.n_bytes() == 2 * 2 * 3 * 2 * 10 * 8 * 4
    assert torch.allclose(torch.cat(pieces, dim=1), full, rtol=1e-4, atol=1e-3)


def test_cache_is_not_modified_in_place():
    model = make_model()
    ids = torch.tensor([[1, 2, 3, 4]])
    _, cache = forward_with_cache(model, ids)
    forward_with_cache(model, torch.tensor([[5]]), cache)
    assert cache.length == 4 and cache.keys[0].shape[2] == 4


def test_cache_restores_training_mode():
    model = make_model().train()
    forward_with_cache(model, torch.tensor([[1, 2]]))
    assert model.training


@pytest.mark.parametrize("settings", [{"greedy": True}, {}, {"temperature": 0.7, "top_k": 5},
                                      {"top_p": 0.9}])
def test_generate_with_cache_gives_the_same_tokens(settings):
    model = make_model()
    prompt = [3, 1, 4]
    expected = generate(model, prompt, 9, num_samples=4, generator=torch.Generator().manual_seed(2), **settings)
    got = generate_with_cache(model, prompt, 9, num_samples=4, generator=torch.Generator().manual_seed(2),
                              **settings)
    assert got.shape == (4, 9)
    assert torch.equal(got, expected)


def test_generate_with_cache_zero_tokens():
    assert generate_with_cache(make_model(), [1, 2], 0).shape == (1, 0)


def test_a_wrong_cache_changes_the_result():
    # the cache matters: continuing from another prefix's cache gives other logits
    model = make_model()
    _, cache_a = forward_with_cache(model, torch.tensor([[1, 2, 3]]))
    _, cache_b = forward_with_cache(model, torch.tensor([[7, 8, 9]]))
    a, _ = forward_with_cache(model, torch.tensor([[4]]), cache_a)
    b, _ = forward_with_cache(model, torch.tensor([[4]]), cache_b)
    assert not torch.allclose(a, b)


def test_cache_bad_input():
    model = make_model()
    with pytest.raises(TypeError, match="GPT"):
        forward_with_cache(nn.Linear(2, 2), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="batch, time"):
        forward_with_cache(model, torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="integers"):
        forward_with_cache(model, torch.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"\[0, 13\)"):
        forward_with_cache(model, torch.tensor([[1, 13]]))
    with pytest.raises(ValueError, match="at least 1 position"):
        forward_with_cache(model, torch.zeros(1, 0, dtype=torch.long))
    _, cache = forward_with_cache(model, torch.tensor([[1] * 10]))
    with pytest.raises(ValueError, match="n_ctx=12"):
        forward_with_cache(model, torch.tensor([[1, 2, 3]]), cache)
    with pytest.raises(ValueError, match="batch size 2"):
        forward_with_cache(model, torch.tensor([[1], [2]]), cache)
    with pytest.raises(TypeError, match="KVCache"):
        forward_with_cache(model, torch.tensor([[1]]), cache={"keys": []})
    with pytest.raises(ValueError, match="does not fit"):
        generate_with_cache(model, [1] * 8, 6)
    with pytest.raises(ValueError, match="greedy"):
        generate_with_cache(model, [1], 2, greedy=True, temperature=0.5)
    with pytest.raises(ValueError, match="temperature"):
        generate_with_cache(model, [1], 2, temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        generate_with_cache(model, [1], 2, top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        generate_with_cache(model, [1], 2, top_p=1.5)
    with pytest.raises(ValueError, match="at least one token"):
        generate_with_cache(model, [], 2)
    with pytest.raises(TypeError, match="integer"):
        generate_with_cache(model, torch.tensor([1.0]), 2)


def test_empty_cache_holds_nothing():
    assert KVCache().length == 0 and KVCache().n_bytes() == 0


def test_verbatim_completion_rate():
    model = make_model()
    prompt = [2, 5, 7]
    continuation = generate_with_cache(model, prompt, 4, greedy=True)[0].tolist()
    wrong = [(continuation[0] + 1) % 13] + continuation[1:]
    assert verbatim_completion_rate(model, [prompt + continuation], 3, 4) == 1.0
    assert verbatim_completion_rate(model, [prompt + continuation, prompt + wrong], 3, 4) == 0.5
    with pytest.raises(ValueError, match="at least 7 tokens"):
        verbatim_completion_rate(model, [prompt + continuation[:2]], 3, 4)
    with pytest.raises(ValueError, match="at least one sequence"):
        verbatim_completion_rate(model, [], 3, 4)
    with pytest.raises(ValueError, match="suffix_length"):
        verbatim_completion_rate(model, [prompt + continuation], 3, 0)
    with pytest.raises(ValueError, match="n_ctx=12"):
        verbatim_completion_rate(model, [list(range(13))], 6, 8)  # 13 positions do not fit in 12
    with pytest.raises(TypeError, match="GPT"):
        verbatim_completion_rate(nn.Linear(2, 2), [prompt + continuation], 3, 4)


def test_verbatim_rate_in_one_batch_equals_one_sequence_at_a_time():
    model = make_model()
    generator = torch.Generator().manual_seed(5)
    sequences = [torch.randint(0, 13, (7,), generator=generator) for _ in range(6)]
    for seq in sequences[:3]:  # make half of them the model's own greedy continuation
        seq[3:] = generate_with_cache(model, seq[:3], 4, greedy=True)[0]
    one_by_one = [verbatim_completion_rate(model, [seq], 3, 4) for seq in sequences]
    assert one_by_one[:3] == [1.0, 1.0, 1.0]
    assert verbatim_completion_rate(model, sequences, 3, 4) == pytest.approx(sum(one_by_one) / 6)
    longer = [torch.cat([seq, torch.tensor([0, 1])]) for seq in sequences]  # extra tokens are ignored
    assert verbatim_completion_rate(model, longer, 3, 4) == verbatim_completion_rate(model, sequences, 3, 4)


# ------------------------------------------------------------------------------------------- quantisation


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_quantisation_error_is_at_most_half_a_step(bits):
    weight = torch.randn(20, 33, generator=torch.Generator().manual_seed(bits)) * torch.linspace(0.01, 3, 20)[:, None]
    codes, scales = quantise_per_channel(weight, bits)
    q_max = 2 ** (bits - 1) - 1
    assert codes.dtype == torch.int8 and scales.shape == (20, 1)
    assert int(codes.abs().max()) == q_max  # the largest weight of each row maps to +-q_max
    assert torch.equal(codes.abs().amax(dim=1), torch.full((20,), q_max, dtype=torch.int8))
    assert torch.allclose(scales[:, 0], weight.abs().amax(dim=1) / q_max)
    error = (dequantise(codes, scales) - weight).abs()
    assert torch.all(error <= scales / 2 + 1e-6)
    assert error.max() > 0  # the test could fail: quantisation does lose information


def test_more_bits_smaller_error():
    weight = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    errors = [(quantise_dequantise(weight, b) - weight).abs().mean().item() for b in (2, 4, 8)]
    assert errors[0] > errors[1] > errors[2]


def test_exact_values_survive_and_zero_rows():
    weight = torch.tensor([[-1.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.0, 0.0], [7.0, -7.0, 3.5, 0.0]])
    codes, scales = quantise_per_channel(weight, 2)  # q_max = 1: codes in {-1, 0, 1}
    assert codes.tolist() == [[-1, 0, 0, 1], [0, 0, 0, 0], [1, -1, 0, 0]]  # round half to even: 0.5 -> 0
    assert scales[1, 0] == 1.0
    assert torch.equal(quantise_dequantise(torch.tensor([[2.0, -1.0, 0.0]]), 8)[0, :1], torch.tensor([2.0]))


def test_per_channel_beats_one_scale_for_uneven_rows():
    weight = torch.cat([torch.randn(1, 50) * 10, torch.randn(1, 50) * 0.01])
    per_row = (quantise_dequantise(weight, 4) - weight)[1].abs().max()
    one_scale = (dequantise(*quantise_per_channel(weight.reshape(1, -1), 4)).reshape(2, 50) - weight)[1].abs().max()
    assert per_row < one_scale / 10


def test_quantised_copy_and_memory():
    model = make_model()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    q4 = quantised_copy(model, 4)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, original[name])  # the original is unchanged
    changed = [n for n, p in q4.named_parameters() if not torch.equal(p, dict(model.named_parameters())[n])]
    assert changed and all(dict(q4.named_parameters())[n].dim() == 2 for n in changed)
    assert q4.lm_head.weight is q4.token_embedding.weight  # tying survives
    n_codes = sum(len(torch.unique(p[0])) for p in q4.parameters() if p.dim() == 2)
    assert n_codes <= 15 * sum(1 for p in q4.parameters() if p.dim() == 2)
    full = quantised_weight_bytes(model, None)
    assert full == 4 * sum(p.numel() for p in model.parameters())
    matrices = [p for p in model.parameters() if p.dim() == 2]
    vectors = sum(p.numel() for p in model.parameters() if p.dim() == 1)
    expected8 = sum(p.numel() + 2 * p.shape[0] for p in matrices) + 4 * vectors  # fp16 scales by default
    assert quantised_weight_bytes(model, 8) == expected8
    rows = sum(p.shape[0] for p in matrices)
    assert quantised_weight_bytes(model, 8, scale_bytes=4) == expected8 + 2 * rows  # float32 scales
    assert quantised_weight_bytes(model, 4) < quantised_weight_bytes(model, 8) < full


def test_quantisation_bad_input():
    with pytest.raises(ValueError, match="between 2 and 8"):
        quantise_per_channel(torch.ones(2, 2), 16)
    with pytest.raises(ValueError, match=">= 2"):
        quantise_per_channel(torch.ones(2, 2), 1)
    with pytest.raises(TypeError, match="integer"):
        quantise_per_channel(torch.ones(2, 2), 4.0)
    with pytest.raises(ValueError, match="2-D"):
        quantise_per_channel(torch.ones(4), 4)
    with pytest.raises(TypeError, match="floating point"):
        quantise_per_channel(torch.ones(2, 2, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="NaN"):
        quantise_per_channel(torch.tensor([[1.0, float("nan")]]), 4)
    with pytest.raises(ValueError, match="integer tensor"):
        dequantise(torch.ones(2, 2), torch.ones(2, 1))
    with pytest.raises(ValueError, match=r"\(2, 1\)"):
        dequantise(torch.ones(2, 2, dtype=torch.int8), torch.ones(2))
    with pytest.raises(TypeError, match="Module"):
        quantised_copy("model", 4)
    with pytest.raises(TypeError, match="Module"):
        quantised_weight_bytes("model", 4)
    with pytest.raises(ValueError, match="scale_bytes"):
        quantised_weight_bytes(make_model(), 4, scale_bytes=0)


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
