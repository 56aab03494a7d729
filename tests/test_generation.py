import pytest
import torch

from llmbook.generation import (
    apply_temperature,
    beam_search,
    distinct_n,
    entropy_bits,
    generate,
    greedy_decode,
    next_token_probabilities,
    ngrams,
    repeated_ngram_fraction,
    sequence_log_probability,
    top_k_filter,
    top_p_filter,
)
from llmbook.transformer import GPT, GPTConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=11, n_ctx=8, d_model=16, n_layers=1, n_heads=2))
    with torch.no_grad():  # larger weights than the default init, so that the distributions are far from uniform
        for p in m.parameters():
            p.mul_(20)
    return m.eval()


def test_greedy_picks_the_argmax(model):
    prompt = [1, 2, 3]
    out = greedy_decode(model, prompt, 5)
    context = list(prompt)
    for token in out:
        logits, _ = model(torch.tensor([context[-8:]]))
        assert token == int(logits[0, -1].argmax())
        context.append(token)


def test_low_temperature_sampling_equals_greedy(model):
    greedy = greedy_decode(model, [4, 5], 12)
    sampled = generate(model, [4, 5], 12, temperature=1e-4, generator=torch.Generator().manual_seed(1))
    assert sampled[0].tolist() == greedy


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([2.0, 1.0, 0.0])
    h = [float(entropy_bits(torch.softmax(apply_temperature(logits, t), -1))) for t in (0.5, 1.0, 2.0)]
    assert h[0] < h[1] < h[2]
    assert float(entropy_bits(torch.full((4,), 0.25))) == pytest.approx(2.0)


def test_top_k_keeps_exactly_k_candidates():
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0, 2.5], [1.0, 1.0, 1.0, 1.0, 1.0]])
    kept = torch.isfinite(top_k_filter(logits, 2))
    assert kept.sum(dim=1).tolist() == [2, 2]
    assert kept[0].tolist() == [False, True, False, False, True]
    assert torch.isfinite(top_k_filter(logits, 10)).all()


def test_top_p_keeps_the_smallest_set_with_enough_mass():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log()
    kept = lambda p: torch.isfinite(top_p_filter(logits, p)).tolist()  # noqa: E731
    assert kept(0.5) == [True, False, False, False]  # 0.5 alone reaches 0.5
    assert kept(0.6) == [True, True, False, False]  # 0.5 + 0.3 = 0.8 >= 0.6
    assert kept(0.9) == [True, True, True, False]  # 0.95 >= 0.9
    assert kept(1.0) == [True, True, True, True]
    assert kept(0.01) == [True, False, False, False]  # the most probable token is always kept
    shuffled = torch.tensor([0.15, 0.5, 0.05, 0.3]).log()
    assert torch.isfinite(top_p_filter(shuffled, 0.6)).tolist() == [False, True, False, True]


def test_top_p_of_one_keeps_everything_even_for_a_peaked_distribution():
    # probabilities about 1 - 4.5e-5, 4.5e-5, 2.1e-9 and 9.4e-14: a float32 running total reaches 1.0
    # after the second token, and a filter that trusts it cuts the last two even at p = 1
    logits = torch.tensor([10.0, 0.0, -10.0, -20.0])
    kept = lambda p: torch.isfinite(top_p_filter(logits, p)).tolist()  # noqa: E731
    assert kept(1.0) == [True, True, True, True]
    assert kept(0.99999) == [True, True, False, False]  # the top token alone has 0.999955 < p
    assert kept(1 - 1e-10) == [True, True, True, False]  # the top two have 1 - 2.1e-9 < p
    batch = torch.stack([logits, logits.flip(0)])
    assert torch.isfinite(top_p_filter(batch, 1 - 1e-10)).sum(1).tolist() == [3, 3]
    probs = next_token_probabilities(logits, top_p=1.0)
    assert torch.equal(probs, torch.softmax(logits, -1))


def test_filtered_distribution_renormalises():
    probs = next_token_probabilities(torch.tensor([0.0, 1.0, 2.0, 3.0]), top_k=2)
    assert probs.sum().item() == pytest.approx(1.0)
    assert probs[:2].tolist() == [0.0, 0.0]


def test_beam_one_equals_greedy_and_a_full_beam_is_exact(model):
    greedy = greedy_decode(model, [7], 6)
    tokens, score = beam_search(model, [7], 6, beam_width=1)
    assert tokens == greedy
    assert score == pytest.approx(sequence_log_probability(model, [7], greedy), abs=1e-4)
    # A beam as wide as the vocabulary keeps every first token, so for two new tokens it finds the best
    # continuation of all 11 * 11; narrower beams carry no such guarantee (wider is not always better).
    best = max(((a, b) for a in range(11) for b in range(11)),
               key=lambda pair: sequence_log_probability(model, [7], list(pair)))
    tokens, score = beam_search(model, [7], 2, beam_width=11)
    assert tuple(tokens) == best
    assert score == pytest.approx(sequence_log_probability(model, [7], list(best)), abs=1e-4)
    for width in (2, 3, 4):  # every beam reports the true log-probability of what it returns
        tokens, score = beam_search(model, [7], 5, beam_width=width)
        assert score == pytest.approx(sequence_log_probability(model, [7], tokens), abs=1e-4)


def test_generation_does_not_change_the_weights(model):
    before = [p.clone() for p in model.parameters()]
    generate(model, [1, 2], 10, num_samples=3, generator=torch.Generator().manual_seed(0))
    beam_search(model, [3], 4, beam_width=3)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_sampling_is_reproducible_and_shaped(model):
    a = generate(model, [1], 20, num_samples=3, top_p=0.9, generator=torch.Generator().manual_seed(5))
    b = generate(model, [1], 20, num_samples=3, top_p=0.9, generator=torch.Generator().manual_seed(5))
    assert a.shape == (3, 20) and torch.equal(a, b)


def test_distinct_n_and_repetition_on_known_strings():
    assert ngrams("abcd", 2) == [("a", "b"), ("b", "c"), ("c", "d")]
    assert distinct_n("abab", 2) == pytest.approx(2 / 3)  # ab, ba, ab
    assert distinct_n("aaaa", 1) == pytest.approx(1 / 4)
    assert distinct_n(["ab", "ab"], 2) == pytest.approx(1 / 2)  # pooled over sequences
    assert distinct_n([1, 2, 3, 1, 2, 3], 3) == pytest.approx(3 / 4)
    assert repeated_ngram_fraction("abcabcabc", 3) == pytest.approx(4 / 7)
    assert repeated_ngram_fraction("abcdefg", 2) == 0.0


def test_bad_input_raises_clear_errors(model):
    logits = torch.zeros(5)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        apply_temperature(logits, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, [1], 3, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        top_k_filter(logits, 0)
    with pytest.raises(TypeError, match="top_k"):
        top_k_filter(logits, 2.5)
    for p in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
            top_p_filter(logits, p)
    with pytest.raises(ValueError, match=r"shape \(vocab,\) or \(batch, vocab\)"):
        top_k_filter(torch.zeros(2, 3, 4), 1)
    with pytest.raises(ValueError, match="1-D sequence of token ids"):
        greedy_decode(model, torch.zeros(2, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="at least 1 token id"):
        greedy_decode(model, [], 2)
    with pytest.raises(ValueError, match="beam_width must be >= 1"):
        beam_search(model, [1], 2, beam_width=0)
    with pytest.raises(ValueError, match="greedy"):
        generate(model, [1], 2, greedy=True, top_k=3)
    with pytest.raises(ValueError, match="too short"):
        distinct_n("ab", 3)
