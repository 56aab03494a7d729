"""Memorisation (记忆): does a model reproduce its training text word for word? (chapter 11, section 11.1).

:func:`verbatim_completion_rate` is the extraction test of Carlini et al. (2021 and 2023): give the model the
start of a text as a prompt and count how often greedy decoding continues it exactly. Comparing the rate on
training text with the rate on held-out text shows how much of it is memorisation rather than chance.
"""

from __future__ import annotations

import torch

from llmbook.inference import forward_with_cache
from llmbook.transformer import GPT
from llmbook.utils import check_causal, check_int, check_token_ids

__all__ = ["verbatim_completion_rate"]


def verbatim_completion_rate(model: GPT, sequences, prefix_length: int, suffix_length: int) -> float:
    """Fraction of ``sequences`` whose next ``suffix_length`` tokens greedy decoding reproduces exactly.

    Each sequence (a list or 1-D tensor of token ids, at least ``prefix_length + suffix_length`` long) is cut
    into a prefix (its first ``prefix_length`` tokens), used as the prompt, and the true continuation (the
    following ``suffix_length`` tokens). A sequence counts when greedy decoding from the prefix gives the
    continuation token for token: the "extractable with k tokens of context" test of Carlini et al. (2023),
    which follows the extraction attack of Carlini et al. (2021). Compare the rate on training text with the
    rate on held-out text. All prefixes are decoded together, as one batch with the KV cache of
    :func:`llmbook.inference.forward_with_cache`. Returns a number in [0, 1].
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an llmbook.transformer.GPT, got {type(model).__name__}")
    check_causal(model, "verbatim_completion_rate")
    check_int("prefix_length", prefix_length, minimum=1)
    check_int("suffix_length", suffix_length, minimum=1)
    sequences = list(sequences)
    if not sequences:
        raise ValueError("sequences must hold at least one sequence")
    needed = prefix_length + suffix_length
    if needed - 1 > model.config.n_ctx:
        raise ValueError(f"prefix_length + suffix_length - 1 = {needed - 1} positions do not fit in "
                         f"n_ctx={model.config.n_ctx}")
    rows = []
    for seq in sequences:
        ids = check_token_ids("every sequence", seq)
        if len(ids) < needed:
            raise ValueError(f"every sequence needs at least {needed} tokens, got one with {len(ids)}")
        rows.append(ids[:needed])
    batch = torch.stack(rows)  # (N, prefix + suffix)
    target = batch[:, prefix_length:]  # (N, suffix)
    cache, step_input, produced = None, batch[:, :prefix_length], []
    for _ in range(suffix_length):  # greedy decoding of every prefix at once
        logits, cache = forward_with_cache(model, step_input, cache)
        step_input = logits[:, -1, :].argmax(dim=-1, keepdim=True)  # (N, 1)
        produced.append(step_input)
    hits = (torch.cat(produced, dim=1) == target).all(dim=1)  # (N,)
    return float(hits.float().mean())
