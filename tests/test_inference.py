"""Tests of llmbook.inference: the KV cache gives the model's own logits and tokens, and refuses a masked LM."""

import pytest
import torch
from tiny_models import make_model
from torch import nn

from llmbook.architectures import MaskedLM
from llmbook.generation import generate
from llmbook.inference import KVCache, forward_with_cache, generate_with_cache
from llmbook.transformer import GPTConfig

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
    with pytest.raises(ValueError, match="prompt_ids must hold at least 1 token id, got 0"):
        generate_with_cache(model, [], 2)
    with pytest.raises(TypeError, match="integer"):
        generate_with_cache(model, torch.tensor([1.0]), 2)


def test_empty_cache_holds_nothing():
    assert KVCache().length == 0 and KVCache().n_bytes() == 0


def test_the_cache_refuses_a_model_that_is_not_causal():
    """A MaskedLM is a GPT subclass; the cache would silently run it with a causal mask, so it is refused."""
    masked = MaskedLM(GPTConfig(vocab_size=13, n_ctx=12, d_model=16, n_layers=2, n_heads=2))
    with pytest.raises(ValueError, match="forward_with_cache needs a causal language model.*MaskedLM attends in both"):
        forward_with_cache(masked, torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="generate_with_cache needs a causal language model"):
        generate_with_cache(masked, [1, 2], 3)
    gpt = make_model()
    gpt.blocks[0].attn.causal = False  # a GPT whose attention was switched to bidirectional by hand
    with pytest.raises(ValueError, match="GPT attends in both directions"):
        forward_with_cache(gpt, torch.tensor([[1, 2]]))
