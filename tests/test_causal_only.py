"""Every function that needs a causal model refuses a MaskedLM, which subclasses GPT, with a clear ValueError.

A MaskedLM attends in both directions, so next-token prediction on it would read the answer (training, losses) or
predict the wrong position (generation, the KV cache). Before these checks the functions accepted it silently.
"""

import pytest
import torch

from llmbook import finetune, generation, inference, memorisation, rlhf, scaling, training
from llmbook.architectures import MaskedLM, mask_tokens
from llmbook.tokenizers import CharTokenizer
from llmbook.transformer import GPTConfig

CONFIG = GPTConfig(vocab_size=12, n_ctx=8, d_model=16, n_layers=1, n_heads=2)
DATA = torch.arange(40) % 11

CALLS = {
    "generate": lambda m: generation.generate(m, [1, 2], 3),
    "greedy_decode": lambda m: generation.greedy_decode(m, [1, 2], 3),
    "beam_search": lambda m: generation.beam_search(m, [1, 2], 3),
    "sequence_log_probability": lambda m: generation.sequence_log_probability(m, [1, 2], [3]),
    "train": lambda m: training.train(m, DATA, DATA, steps=1, batch_size=2, lr=1e-3, verbose=False),
    "evaluate_loss": lambda m: training.evaluate_loss(m, DATA, 8),
    "forward_with_cache": lambda m: inference.forward_with_cache(m, torch.tensor([[1, 2]])),
    "generate_with_cache": lambda m: inference.generate_with_cache(m, [1, 2], 3),
    "verbatim_completion_rate": lambda m: memorisation.verbatim_completion_rate(m, [[1, 2, 3, 4]], 2, 2),
    "score_next_tokens": lambda m: scaling.score_next_tokens(m, DATA, 8),
    "char_surprisals": lambda m: finetune.char_surprisals(m, torch.tensor([[1, 2, 3]])),
    "in_context_scores": lambda m: finetune.in_context_scores(m, CharTokenizer("abcdefghij -\n"), [("ab", 0)],
                                                              ["cd"], ["a", "b"]),
    "sample_responses": lambda m: rlhf.sample_responses(m, [[1, 2]], 2, 3, torch.Generator().manual_seed(0)),
    "response_logits": lambda m: rlhf.response_logits(m, torch.tensor([[1, 2, 3, 4]]), 2),
    "sft_loss": lambda m: rlhf.sft_loss(m, torch.tensor([[1, 2, 3, 4]]), 2, 0),
    "sequence_rewards": lambda m: rlhf.sequence_rewards(m, torch.tensor([[1, 2, 3, 4]]),
                                                        torch.ones(1, 2, dtype=torch.bool)),
}


#: Functions that leave the check to the function they call.
CHECKED_BY = {"greedy_decode": "generate", "sft_loss": "response_logits"}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_causal_only_functions_refuse_a_masked_lm(name):
    torch.manual_seed(0)
    masked = MaskedLM(CONFIG)
    checker = CHECKED_BY.get(name, name)
    with pytest.raises(ValueError, match=f"{checker} needs a causal language model .*MaskedLM attends in both"):
        CALLS[name](masked)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_causal_only_functions_still_accept_a_gpt(name):
    from llmbook.transformer import GPT

    torch.manual_seed(0)
    CALLS[name](GPT(CONFIG))  # no error: the check lets a causal model through


def test_a_masked_lm_still_trains_with_train_on_batches():
    torch.manual_seed(0)
    masked = MaskedLM(CONFIG)
    generator = torch.Generator().manual_seed(0)

    def next_batch():
        windows = DATA[torch.randint(0, 32, (4,), generator=generator)[:, None] + torch.arange(8)]
        return mask_tokens(windows, 11, 12, rate=0.5, generator=generator)

    history = training.train_on_batches(masked, next_batch, steps=3, lr=1e-3, warmup_steps=1)
    assert len(history["train_loss"]) == 3 and history["seconds"] > 0
