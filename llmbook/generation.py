"""Decoding: turning a language model's next-token distributions into text (chapter 6).

A language model gives, for a context, one score (logit) per vocabulary token. Generation is
autoregressive: pick a next token, append it to the context, repeat. How the token is picked is the
decoding strategy:

- greedy decoding: always the most probable token (argmax);
- sampling with a temperature T: draw from softmax(logits / T); T < 1 sharpens, T > 1 flattens, and
  T -> 0 approaches greedy decoding;
- top-k sampling: sample only among the k most probable tokens;
- top-p (nucleus) sampling: sample only among the smallest set of tokens whose probabilities sum to at
  least p (Holtzman et al., 2020);
- beam search: keep the ``beam_width`` most probable partial sequences and extend them together.

The metrics at the end (distinct-n, repeated n-grams) measure how diverse and how repetitive text is.

Every decoder here needs a causal model (one that predicts the next token); a
:class:`llmbook.architectures.MaskedLM` is refused with a ValueError.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from llmbook.utils import check_causal, check_int, check_positive, check_probability, check_token_ids, eval_mode

__all__ = ["apply_temperature", "top_k_filter", "top_p_filter", "next_token_probabilities", "entropy_bits", "generate",
           "greedy_decode", "beam_search", "sequence_log_probability", "ngrams", "distinct_n",
           "repeated_ngram_fraction"]

# ----------------------------------------------------------------------------------------------- checks


def _check_logits(logits) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError("logits must be a torch.Tensor of shape (vocab,) or (batch, vocab), "
                        f"got {type(logits).__name__}")
    if logits.dim() not in (1, 2) or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (vocab,) or (batch, vocab), got {tuple(logits.shape)}")
    if not logits.dtype.is_floating_point:
        raise TypeError(f"logits must be floating point, got dtype {logits.dtype}")
    return logits


# ------------------------------------------------------------------------------------ one decoding step


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide the logits by T: softmax(logits / T) is sharper for T < 1 and flatter for T > 1."""
    return _check_logits(logits) / check_positive("temperature", temperature)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep exactly the ``k`` largest logits (per row); set all others to -inf.

    If k is at least the vocabulary size, nothing is removed. Ties at the boundary are broken by
    ``torch.topk``, so exactly k candidates survive.
    """
    logits = _check_logits(logits)
    k = check_int("top_k", k, minimum=1)
    if k >= logits.shape[-1]:
        return logits.clone()
    keep = torch.topk(logits, k, dim=-1).indices
    filtered = torch.full_like(logits, float("-inf"))
    return filtered.scatter(-1, keep, logits.gather(-1, keep))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most probable tokens whose probabilities sum to >= p.

    Tokens are sorted by probability; a token is kept if the mass of the tokens ranked above it is
    still below p, i.e. if the mass of the token and all less probable ones is above 1 - p. That tail mass
    is summed from the least probable token up, in float64, so that tiny probabilities are not lost to
    rounding (a float32 running total from the top reaches 1.0 before the tail and would cut tokens that
    p keeps). ``p = 1`` keeps every token. The most probable token is always kept; the others are set
    to -inf. Returns a new tensor of the same shape; raises ValueError unless 0 < p <= 1.
    """
    logits = _check_logits(logits)
    p = check_probability("top_p", p, allow_zero=False)
    if p == 1.0:
        return logits.clone()  # p = 1: the whole distribution, nothing filtered
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    sorted_probs = torch.softmax(sorted_logits.double(), dim=-1)
    tail_mass = sorted_probs.flip(-1).cumsum(-1).flip(-1)  # mass of this token and all ranked below it
    remove_sorted = tail_mass <= 1.0 - p
    remove_sorted[..., 0] = False  # the most probable token is always kept
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def next_token_probabilities(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                             top_p: float | None = None) -> torch.Tensor:
    """The distribution a sampler draws from: temperature first, then top-k, then top-p; then softmax."""
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in bits of each distribution along the last dimension (0 log 0 counts as 0)."""
    if not isinstance(probs, torch.Tensor) or probs.dim() < 1:
        raise ValueError("probs must be a tensor of probabilities with the vocabulary as last dimension")
    logs = torch.where(probs > 0, torch.log2(probs.clamp_min(1e-45)), torch.zeros_like(probs))
    return -(probs * logs).sum(dim=-1)


# ------------------------------------------------------------------------------------- whole sequences


def _last_logits(model: nn.Module, context: torch.Tensor) -> torch.Tensor:
    """Logits for the token after ``context`` (B, T), using at most the model's last n_ctx tokens. (B, vocab)."""
    n_ctx = model.config.n_ctx
    logits, _ = model(context[:, -n_ctx:])
    return logits[:, -1, :]


@torch.no_grad()
def generate(model: nn.Module, prompt_ids, max_new_tokens: int, *, greedy: bool = False,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             num_samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Autoregressive generation: append one token at a time to the prompt.

    With ``greedy=True`` every step takes the argmax (temperature, top_k and top_p must be left at their
    defaults). Otherwise every step samples from :func:`next_token_probabilities`, using ``generator``
    for reproducible draws. ``num_samples`` continuations of the same prompt are generated in parallel.
    The model is only read, never changed. Returns the new tokens only, shape (num_samples, max_new_tokens).
    Raises ValueError for a model that is not causal (:func:`llmbook.utils.check_causal`).
    """
    check_causal(model, "generate")
    prompt = check_token_ids("prompt_ids", prompt_ids)
    check_int("max_new_tokens", max_new_tokens, minimum=0)
    check_int("num_samples", num_samples, minimum=1)
    if greedy and (temperature != 1.0 or top_k is not None or top_p is not None):
        raise ValueError("greedy decoding takes the argmax; "
                         "do not combine greedy=True with temperature, top_k or top_p")
    if not greedy:  # validate once, before any work
        check_positive("temperature", temperature)
        if top_k is not None:
            check_int("top_k", top_k, minimum=1)
        if top_p is not None:
            check_probability("top_p", top_p, allow_zero=False)
    context = prompt.unsqueeze(0).repeat(num_samples, 1)  # (B, T)
    with eval_mode(model):
        for _ in range(max_new_tokens):
            logits = _last_logits(model, context)  # (B, vocab)
            if greedy:
                next_ids = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                probs = next_token_probabilities(logits, temperature, top_k, top_p)
                next_ids = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            context = torch.cat([context, next_ids], dim=1)
    return context[:, len(prompt):]


def greedy_decode(model: nn.Module, prompt_ids, max_new_tokens: int) -> list[int]:
    """Greedy decoding: the most probable token at every step. Returns the new token ids."""
    return generate(model, prompt_ids, max_new_tokens, greedy=True)[0].tolist()


@torch.no_grad()
def beam_search(model: nn.Module, prompt_ids, max_new_tokens: int, beam_width: int = 4) -> tuple[list[int], float]:
    """Beam search: keep the ``beam_width`` partial continuations with the highest total log-probability.

    At every step each kept continuation is extended by every token, and the ``beam_width`` best
    extensions (by summed log-probability) survive. With ``beam_width=1`` this is greedy decoding, and a
    beam at least as wide as the vocabulary is exact for two new tokens. In between, a wider beam is *not*
    guaranteed to score higher: pruning can drop, early, the prefix that a narrower beam would have
    completed best.
    Returns the best continuation (new token ids) and its total log-probability in nats.
    """
    check_causal(model, "beam_search")
    prompt = check_token_ids("prompt_ids", prompt_ids)
    check_int("max_new_tokens", max_new_tokens, minimum=0)
    check_int("beam_width", beam_width, minimum=1)
    beams = prompt.unsqueeze(0)  # (beams, T): start with a single beam, the prompt
    scores = torch.zeros(1)  # total log-probability of each beam's continuation
    with eval_mode(model):
        for _ in range(max_new_tokens):
            log_probs = torch.log_softmax(_last_logits(model, beams).double(), dim=-1)  # (beams, vocab)
            vocab = log_probs.shape[-1]
            candidates = (scores[:, None] + log_probs).reshape(-1)  # (beams * vocab,)
            best = torch.topk(candidates, min(beam_width, candidates.numel())).indices
            parents, tokens = best // vocab, best % vocab
            beams = torch.cat([beams[parents], tokens[:, None]], dim=1)
            scores = candidates[best]
    return beams[0, len(prompt):].tolist(), float(scores[0])


@torch.no_grad()
def sequence_log_probability(model: nn.Module, prompt_ids, continuation_ids) -> float:
    """Total log-probability (nats) the model gives ``continuation_ids`` after ``prompt_ids``."""
    check_causal(model, "sequence_log_probability")
    prompt = check_token_ids("prompt_ids", prompt_ids)
    continuation = check_token_ids("continuation_ids", continuation_ids)
    full = torch.cat([prompt, continuation])
    n_ctx = model.config.n_ctx
    total = 0.0
    with eval_mode(model):
        for position in range(len(prompt), len(full)):
            context = full[max(0, position - n_ctx):position].unsqueeze(0)
            log_probs = torch.log_softmax(model(context)[0][0, -1].double(), dim=-1)
            total += float(log_probs[full[position]])
    return total


# ---------------------------------------------------------------------------- diversity and repetition


def _as_items(sequence) -> list:
    if isinstance(sequence, torch.Tensor):
        if sequence.dim() != 1:
            raise ValueError(f"sequence must be 1-D, got shape {tuple(sequence.shape)}")
        return sequence.tolist()
    if isinstance(sequence, str):
        return list(sequence)
    if isinstance(sequence, Sequence):
        return list(sequence)
    raise TypeError(f"sequence must be a string, a list or a 1-D tensor, got {type(sequence).__name__}")


def ngrams(sequence, n: int) -> list[tuple]:
    """All n-grams (as tuples) of a string (characters), list or 1-D tensor, in order."""
    check_int("n", n, minimum=1)
    items = _as_items(sequence)
    return [tuple(items[i:i + n]) for i in range(len(items) - n + 1)]


def distinct_n(sequences, n: int) -> float:
    """distinct-n: number of distinct n-grams divided by the number of n-grams (Li et al., 2016).

    ``sequences`` is one sequence (a string, list or 1-D tensor) or a list of sequences, whose n-grams
    are pooled. 1.0 means no n-gram occurs twice; values near 0 mean the same n-grams over and over.
    """
    groups = [sequences] if isinstance(sequences, (str, torch.Tensor)) else list(sequences)
    if groups and not isinstance(groups[0], (str, list, tuple, torch.Tensor)):
        groups = [groups]  # a flat list of token ids
    grams = [g for group in groups for g in ngrams(group, n)]
    if not grams:
        raise ValueError(f"the sequences are too short to contain any {n}-gram")
    return len(set(grams)) / len(grams)


def repeated_ngram_fraction(sequence, n: int) -> float:
    """Fraction of the n-grams of one sequence that already occurred earlier in it (seq-rep-n).

    Equal to 1 - distinct-n for a single sequence; a loop that repeats a phrase drives it towards 1.
    """
    grams = ngrams(sequence, n)
    if not grams:
        raise ValueError(f"the sequence is too short to contain any {n}-gram")
    return 1.0 - len(set(grams)) / len(grams)
