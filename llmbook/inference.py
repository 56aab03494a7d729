"""Running a trained model cheaply: the KV cache (键值缓存) (chapter 11, section 11.2; used in 11.1).

For the book's GPT (:class:`llmbook.transformer.GPT`), :func:`forward_with_cache` runs the model's own submodules
on the new positions only, keeping every layer's keys and values in a :class:`KVCache`, so that each generated
token costs one position of work instead of a whole re-computation of the context. :func:`generate_with_cache` is
generation with it; it returns the same tokens as :func:`llmbook.generation.generate`. A cache of keys and values
only works for a causal model, in which earlier positions never see later ones: a
:class:`llmbook.architectures.MaskedLM` is refused.

The other tools of chapter 11 have their own modules: :mod:`llmbook.quantisation` (11.2),
:mod:`llmbook.calibration` and :mod:`llmbook.memorisation` (11.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from llmbook.generation import next_token_probabilities
from llmbook.transformer import GPT, scaled_dot_product_attention
from llmbook.utils import (
    check_causal,
    check_int,
    check_positive,
    check_probability,
    check_token_batch,
    check_token_ids,
    eval_mode,
)

__all__ = ["KVCache", "forward_with_cache", "generate_with_cache"]

# ------------------------------------------------------------------------------------------------ KV cache


@dataclass
class KVCache:
    """Keys and values of every layer for the positions seen so far.

    ``keys[i]`` and ``values[i]`` have shape (batch, n_heads, length, d_head) for block ``i``; ``length`` is
    the number of positions already processed (the position of the next token).
    """

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    length: int = 0

    def n_bytes(self) -> int:
        """Memory held by the cached keys and values, in bytes."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values)


def _check_gpt(model, what: str) -> GPT:
    """``model`` if the cache can run it: an llmbook.transformer.GPT whose attention is causal."""
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an llmbook.transformer.GPT, got {type(model).__name__}")
    check_causal(model, what)
    return model


@torch.no_grad()
def forward_with_cache(model: GPT, token_ids: torch.Tensor,
                       cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
    """Logits for ``token_ids`` (B, T_new) that continue the positions held in ``cache``.

    Uses the model's own layers (embeddings, each block's ``norm1``, ``attn.qkv``, ``attn.out``, ``norm2``,
    ``ffn``, then ``final_norm`` and ``lm_head``), but computes keys and values only for the new positions and
    attends over the cached ones as well. Returns ``(logits, cache)`` with logits (B, T_new, vocab) equal, up
    to rounding, to the last T_new positions of ``model(all_ids)``, and a new cache that also holds the new
    positions (the old cache object is not modified). Raises if the total length would exceed ``n_ctx`` or if
    the batch size differs from the cache's, and ValueError for a model that is not causal (a
    :class:`llmbook.architectures.MaskedLM`: a cache of keys and values assumes that earlier positions never
    see later ones). The model is run in evaluation mode (no dropout) and left in the mode it was in.
    """
    model = _check_gpt(model, "forward_with_cache")
    c = model.config
    token_ids = check_token_batch("token_ids", token_ids, c.vocab_size, min_length=1)
    if cache is None:
        cache = KVCache()
    if not isinstance(cache, KVCache):
        raise TypeError(f"cache must be a KVCache or None, got {type(cache).__name__}")
    batch, new = token_ids.shape
    start = cache.length
    if start + new > c.n_ctx:
        raise ValueError(f"cache length {start} + {new} new positions exceeds the context size n_ctx={c.n_ctx}")
    if cache.keys and cache.keys[0].shape[0] != batch:
        raise ValueError(f"token_ids has batch size {batch} but the cache holds {cache.keys[0].shape[0]}")
    positions = torch.arange(start, start + new)
    # query at position start+i may attend to keys at positions 0 .. start+i
    mask = torch.arange(start + new)[None, :] <= positions[:, None]  # (T_new, T_total)
    new_keys, new_values = [], []
    with eval_mode(model):
        x = model.token_embedding(token_ids)  # (B, T_new, C)
        if model.position_embedding is not None:
            x = x + model.position_embedding(positions)
        elif model.position_table is not None:
            x = x + model.position_table[positions]
        for i, block in enumerate(model.blocks):
            attn = block.attn
            queries, keys, values = attn.qkv(block.norm1(x)).split(c.d_model, dim=-1)  # each (B, T_new, C)
            queries, keys, values = (t.view(batch, new, attn.n_heads, attn.d_head).transpose(1, 2)
                                     for t in (queries, keys, values))  # (B, heads, T_new, d_head)
            if cache.keys:
                keys = torch.cat([cache.keys[i], keys], dim=2)  # (B, heads, T_total, d_head)
                values = torch.cat([cache.values[i], values], dim=2)
            new_keys.append(keys)
            new_values.append(values)
            heads, _ = scaled_dot_product_attention(queries, keys, values, mask)
            x = x + attn.out(heads.transpose(1, 2).reshape(batch, new, c.d_model))
            x = x + block.ffn(block.norm2(x))
        logits = model.lm_head(model.final_norm(x))  # (B, T_new, vocab)
    return logits, KVCache(new_keys, new_values, start + new)


@torch.no_grad()
def generate_with_cache(model: GPT, prompt_ids, max_new_tokens: int, *, greedy: bool = False,
                        temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                        num_samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Autoregressive generation with a KV cache; the same interface and result as ``generation.generate``.

    The prompt is processed in one pass, then each step feeds only the newest token. Sampling uses
    :func:`llmbook.generation.next_token_probabilities` and draws with ``generator`` exactly as ``generate``
    does, so with the same generator seed both give the same tokens. The prompt plus the new tokens must fit
    in the context (``n_ctx``): this simple cache does not slide a window. Returns the new tokens only,
    shape (num_samples, max_new_tokens). Raises ValueError for a model that is not causal.
    """
    model = _check_gpt(model, "generate_with_cache")
    prompt = check_token_ids("prompt_ids", prompt_ids)
    check_int("max_new_tokens", max_new_tokens, minimum=0)
    check_int("num_samples", num_samples, minimum=1)
    if len(prompt) + max(max_new_tokens - 1, 0) > model.config.n_ctx:
        raise ValueError(f"prompt ({len(prompt)} tokens) plus {max_new_tokens} new tokens does not fit in "
                         f"n_ctx={model.config.n_ctx}; the KV cache here does not slide a window")
    if greedy and (temperature != 1.0 or top_k is not None or top_p is not None):
        raise ValueError("greedy decoding takes the argmax; "
                         "do not combine greedy=True with temperature, top_k or top_p")
    if not greedy:
        check_positive("temperature", temperature)
        if top_k is not None:
            check_int("top_k", top_k, minimum=1)
        if top_p is not None:
            check_probability("top_p", top_p, allow_zero=False)
    context = prompt.unsqueeze(0).repeat(num_samples, 1)  # (B, T)
    outputs = []
    cache, step_input = None, context
    for _ in range(max_new_tokens):
        logits, cache = forward_with_cache(model, step_input, cache)
        last = logits[:, -1, :]  # (B, vocab)
        if greedy:
            next_ids = last.argmax(dim=-1, keepdim=True)  # (B, 1)
        else:
            probs = next_token_probabilities(last, temperature, top_k, top_p)
            next_ids = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
        outputs.append(next_ids)
        step_input = next_ids  # only the newest token goes in next time
    if not outputs:
        return torch.empty(num_samples, 0, dtype=torch.long)
    return torch.cat(outputs, dim=1)
