"""Tests of llmbook.memorisation: the verbatim completion rate counts exact greedy continuations."""

import pytest
import torch
from tiny_models import make_model
from torch import nn

from llmbook.architectures import MaskedLM
from llmbook.inference import generate_with_cache
from llmbook.memorisation import verbatim_completion_rate
from llmbook.transformer import GPTConfig


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


def test_verbatim_rate_refuses_a_masked_lm_and_float_ids():
    masked = MaskedLM(GPTConfig(vocab_size=13, n_ctx=12, d_model=16, n_layers=1, n_heads=2))
    with pytest.raises(ValueError, match="verbatim_completion_rate needs a causal language model"):
        verbatim_completion_rate(masked, [[1, 2, 3, 4]], 2, 2)
    with pytest.raises(TypeError, match="every sequence must hold integer token ids"):
        verbatim_completion_rate(make_model(), [[1.0, 2.0, 3.0, 4.0]], 2, 2)
