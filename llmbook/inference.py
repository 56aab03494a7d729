"""Running a trained model cheaply, and measuring how far to trust it (chapter 11, sections 11.1 and 11.2).

Three groups of tools, all for the book's GPT (:class:`llmbook.transformer.GPT`):

- **KV cache** (键值缓存): :func:`forward_with_cache` runs the model's own submodules one new position at a
  time, keeping every layer's keys and values, so that each generated token costs one position of work instead
  of a whole re-computation of the context. :func:`generate_with_cache` is generation with it; it returns the
  same tokens as :func:`llmbook.generation.generate`.
- **Weight quantisation** (量化): :func:`quantise_per_channel` stores each row of a weight matrix as small
  integers and one scale per row; :func:`dequantise` turns them back into floats. :func:`quantised_copy`
  applies this to every weight matrix of a model and :func:`quantised_weight_bytes` counts the memory.
- **Calibration** (校准): :func:`reliability_bins`, :func:`expected_calibration_error` and
  :func:`fit_temperature` (temperature scaling, Guo et al. 2017); and discrimination, whether confidence
  tells right answers from wrong ones: :func:`confidence_auroc` and :func:`risk_coverage`.

:func:`verbatim_completion_rate` measures memorisation: how often greedy decoding reproduces a text exactly
from its prefix (the extraction test of Carlini et al. 2021 and 2023).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from llmbook.generation import next_token_probabilities
from llmbook.transformer import GPT, scaled_dot_product_attention
from llmbook.utils import check_int, check_positive, check_probability, check_token_batch

__all__ = [
    "KVCache",
    "forward_with_cache",
    "generate_with_cache",
    "verbatim_completion_rate",
    "quantise_per_channel",
    "dequantise",
    "quantise_dequantise",
    "quantised_copy",
    "quantised_weight_bytes",
    "reliability_bins",
    "expected_calibration_error",
    "fit_temperature",
    "confidence_auroc",
    "risk_coverage",
]

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


def _check_gpt(model) -> GPT:
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an llmbook.transformer.GPT, got {type(model).__name__}")
    if model.config.positional not in ("learned", "sinusoidal", "none") or any(
            getattr(block.attn, "rope", False) for block in model.blocks):
        raise NotImplementedError("the KV cache here supports learned, sinusoidal or no positions only")
    return model


def _as_prompt(name: str, ids) -> torch.Tensor:
    """A 1-D int64 tensor of at least one token id from a list or tensor (floats and booleans refused)."""
    if not isinstance(ids, torch.Tensor):
        ids = torch.as_tensor(list(ids), dtype=torch.long) if len(ids) else torch.zeros(0, dtype=torch.long)
    if ids.dim() != 1:
        raise ValueError(f"{name} must be a 1-D sequence of token ids, got shape {tuple(ids.shape)}")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if len(ids) < 1:
        raise ValueError(f"{name} must hold at least one token id")
    return ids.long()


@torch.no_grad()
def forward_with_cache(model: GPT, token_ids: torch.Tensor,
                       cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
    """Logits for ``token_ids`` (B, T_new) that continue the positions held in ``cache``.

    Uses the model's own layers (embeddings, each block's ``norm1``, ``attn.qkv``, ``attn.out``, ``norm2``,
    ``ffn``, then ``final_norm`` and ``lm_head``), but computes keys and values only for the new positions and
    attends over the cached ones as well. Returns ``(logits, cache)`` with logits (B, T_new, vocab) equal, up
    to rounding, to the last T_new positions of ``model(all_ids)``, and a new cache that also holds the new
    positions (the old cache object is not modified). Raises if the total length would exceed ``n_ctx`` or if
    the batch size differs from the cache's. The model is run in evaluation mode (no dropout).
    """
    model = _check_gpt(model)
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
    was_training = model.training
    model.eval()
    positions = torch.arange(start, start + new)
    x = model.token_embedding(token_ids)  # (B, T_new, C)
    if model.position_embedding is not None:
        x = x + model.position_embedding(positions)
    elif model.position_table is not None:
        x = x + model.position_table[positions]
    # query at position start+i may attend to keys at positions 0 .. start+i
    mask = torch.arange(start + new)[None, :] <= positions[:, None]  # (T_new, T_total)
    new_keys, new_values = [], []
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
    model.train(was_training)
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
    shape (num_samples, max_new_tokens).
    """
    model = _check_gpt(model)
    prompt = _as_prompt("prompt_ids", prompt_ids)
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


def verbatim_completion_rate(model: GPT, sequences, prefix_length: int, suffix_length: int) -> float:
    """Fraction of ``sequences`` whose next ``suffix_length`` tokens greedy decoding reproduces exactly.

    Each sequence (a list or 1-D tensor of token ids, at least ``prefix_length + suffix_length`` long) is cut
    into a prefix (its first ``prefix_length`` tokens), used as the prompt, and the true continuation (the
    following ``suffix_length`` tokens). A sequence counts when greedy decoding from the prefix gives the
    continuation token for token: the "extractable with k tokens of context" test of Carlini et al. (2023),
    which follows the extraction attack of Carlini et al. (2021). Compare the rate on training text with the
    rate on held-out text. All prefixes are decoded together, as one batch with a KV cache. Returns a number
    in [0, 1].
    """
    model = _check_gpt(model)
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
        ids = _as_prompt("every sequence", seq)
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


# ------------------------------------------------------------------------------------------- quantisation


def _check_bits(bits) -> int:
    check_int("bits", bits, minimum=2)
    if bits > 8:
        raise ValueError(f"bits must be between 2 and 8 (the codes are stored as int8), got {bits}")
    return bits


def quantise_per_channel(weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-channel quantisation of a weight matrix (out_features, in_features) to ``bits`` bits.

    Each row (one output channel) gets its own scale ``max|row| / q_max`` with ``q_max = 2**(bits-1) - 1``;
    the codes are ``round(weight / scale)``, integers in [-q_max, q_max]. An all-zero row gets scale 1.
    Returns ``(codes, scales)``: codes int8 with the weight's shape, scales float32 of shape (rows, 1).
    :func:`dequantise` maps them back, with an error of at most half a step (``scale / 2``) per weight.
    """
    bits = _check_bits(bits)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise ValueError("weight must be a 2-D tensor (out_features, in_features), "
                         f"got shape {tuple(getattr(weight, 'shape', ()))}")
    if not weight.dtype.is_floating_point:
        raise TypeError(f"weight must be floating point, got dtype {weight.dtype}")
    if not torch.isfinite(weight).all():
        raise ValueError("weight must not contain NaN or infinite values")
    w = weight.detach().float()
    q_max = 2 ** (bits - 1) - 1
    largest = w.abs().amax(dim=1, keepdim=True)  # (rows, 1)
    scales = torch.where(largest > 0, largest / q_max, torch.ones_like(largest))
    codes = torch.round(w / scales).clamp(-q_max, q_max).to(torch.int8)
    return codes, scales


def dequantise(codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Floats back from integer ``codes`` (rows, cols) and per-row ``scales`` (rows, 1): ``codes * scales``."""
    if not isinstance(codes, torch.Tensor) or codes.dim() != 2 or codes.dtype.is_floating_point:
        raise ValueError("codes must be a 2-D integer tensor, "
                         f"got {type(codes).__name__} {tuple(getattr(codes, 'shape', ()))}")
    if not isinstance(scales, torch.Tensor) or tuple(scales.shape) != (codes.shape[0], 1):
        raise ValueError(f"scales must have shape ({codes.shape[0]}, 1), "
                         f"got {tuple(getattr(scales, 'shape', ()))}")
    return codes.float() * scales


def quantise_dequantise(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """``dequantise(*quantise_per_channel(weight, bits))``: the weight as a quantised model would use it."""
    return dequantise(*quantise_per_channel(weight, bits)).to(weight.dtype)


def quantised_copy(model: nn.Module, bits: int) -> nn.Module:
    """A deep copy of ``model`` whose weight matrices (every 2-D parameter) are quantised to ``bits`` bits.

    Biases and LayerNorm parameters (1-D) are kept in float32, as quantisation libraries usually do. The copy
    still computes in float32 with the de-quantised weights ("fake quantisation"): its outputs are those of
    the quantised model, but it saves no memory by itself; :func:`quantised_weight_bytes` counts what real
    storage would need. Tied weights stay tied (a shared matrix is quantised once). ``model`` is unchanged.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    bits = _check_bits(bits)
    quantised = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in quantised.parameters():  # shared parameters are listed once
            if parameter.dim() == 2:
                parameter.copy_(quantise_dequantise(parameter, bits))
    return quantised


def quantised_weight_bytes(model: nn.Module, bits: int | None, scale_bytes: int = 2) -> int:
    """Bytes to store ``model``'s parameters with weight matrices at ``bits`` bits (``None``: all float32).

    Weight matrices take ``bits / 8`` bytes per weight (rounded up per matrix) plus one scale per row of
    ``scale_bytes`` bytes (2: stored in fp16, as GPTQ and AWQ store theirs; 4: float32); 1-D parameters
    (biases, LayerNorm) stay float32 (4 bytes each). Shared parameters are counted once.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if bits is not None:
        bits = _check_bits(bits)
    check_int("scale_bytes", scale_bytes, minimum=1)
    total = 0
    for parameter in model.parameters():
        if bits is None or parameter.dim() != 2:
            total += 4 * parameter.numel()
        else:
            total += math.ceil(parameter.numel() * bits / 8) + scale_bytes * parameter.shape[0]
    return total


# -------------------------------------------------------------------------------------------- calibration


def _check_confidences(confidences, correct) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidences, dtype=float)
    hits = np.asarray(correct)
    if conf.ndim != 1 or hits.shape != conf.shape:
        raise ValueError("confidences and correct must be 1-D and of the same length, "
                         f"got shapes {conf.shape} and {hits.shape}")
    if conf.size == 0:
        raise ValueError("need at least one prediction")
    if not np.all((conf >= 0) & (conf <= 1)):
        raise ValueError("confidences must be probabilities in [0, 1]")
    if hits.dtype != bool and not np.all((hits == 0) | (hits == 1)):
        raise ValueError("correct must hold booleans or 0/1 values")
    return conf, hits.astype(float)


def reliability_bins(confidences, correct, n_bins: int = 10) -> dict:
    """Group predictions by confidence into ``n_bins`` equal-width bins of [0, 1] (a reliability diagram).

    ``confidences`` (N,) are the probabilities the model gave its answers, ``correct`` (N,) whether each answer
    was right. Bin m holds confidences in ((m-1)/M, m/M]; the first bin also holds 0. Returns a dict of NumPy
    arrays: ``edges`` (M+1,), ``count`` (M,), ``confidence`` (mean confidence per bin) and ``accuracy``
    (fraction correct per bin); the last two are NaN for empty bins.
    """
    check_int("n_bins", n_bins, minimum=1)
    conf, hits = _check_confidences(confidences, correct)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=n_bins) / count
        accuracy = np.bincount(index, weights=hits, minlength=n_bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": accuracy}


def expected_calibration_error(confidences, correct, n_bins: int = 10) -> float:
    """ECE = sum over bins of (share of predictions in the bin) * abs(accuracy - mean confidence).

    0 means perfectly calibrated on these bins; the largest possible value is 1. Same inputs as
    :func:`reliability_bins` (Naeini et al. 2015; Guo et al. 2017).
    """
    bins = reliability_bins(confidences, correct, n_bins)
    used = bins["count"] > 0
    weights = bins["count"][used] / bins["count"].sum()
    return float(np.sum(weights * np.abs(bins["accuracy"][used] - bins["confidence"][used])))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, low: float = 0.05, high: float = 20.0,
                    n_grid: int = 400) -> float:
    """Temperature scaling: the T > 0 that minimises the cross-entropy of ``softmax(logits / T)``.

    ``logits`` (N, K) are a classifier's scores on held-out examples with true classes ``labels`` (N,).
    The search is a deterministic grid of ``n_grid`` temperatures spaced evenly in log scale between ``low``
    and ``high``. Dividing by one T never changes which class is most probable, so accuracy is unchanged;
    only the confidence moves. Returns T (T > 1 means the model was over-confident).
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or not logits.dtype.is_floating_point:
        raise ValueError("logits must be a floating-point tensor of shape (N, classes), "
                         f"got {tuple(getattr(logits, 'shape', ()))}")
    if not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (logits.shape[0],):
        raise ValueError(f"labels must be a tensor of shape ({logits.shape[0]},), "
                         f"got {tuple(getattr(labels, 'shape', ()))}")
    if labels.dtype.is_floating_point or labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must be integer classes in [0, {logits.shape[1]})")
    if not (0 < low < high):
        raise ValueError(f"need 0 < low < high, got low={low} and high={high}")
    check_int("n_grid", n_grid, minimum=2)
    temperatures = torch.logspace(math.log10(low), math.log10(high), n_grid, dtype=torch.float64)
    scaled = logits.double()[None] / temperatures[:, None, None]  # (n_grid, N, K)
    nll = -torch.log_softmax(scaled, dim=-1).gather(-1, labels.long()[None, :, None].expand(n_grid, -1, 1))
    return float(temperatures[nll.mean(dim=(1, 2)).argmin()])


def confidence_auroc(confidences, correct) -> float:
    """How well confidence separates right from wrong answers: the area under the ROC curve (AUROC).

    Equal to the probability that a randomly chosen right answer got a higher confidence than a randomly
    chosen wrong one, ties counting one half (the Mann-Whitney statistic). 1 means every right answer is
    more confident than every wrong one, 0.5 that confidence tells them apart no better than a coin.
    Calibration (:func:`expected_calibration_error`) and this *discrimination* are different properties:
    dividing the logits by one temperature changes the first and never the second. Same inputs as
    :func:`reliability_bins`; raises ``ValueError`` unless there is at least one right and one wrong answer.
    """
    conf, hits = _check_confidences(confidences, correct)
    right, wrong = conf[hits == 1], conf[hits == 0]
    if right.size == 0 or wrong.size == 0:
        raise ValueError("AUROC needs at least one right and one wrong answer")
    greater = (right[:, None] > wrong[None, :]).mean()
    ties = (right[:, None] == wrong[None, :]).mean()
    return float(greater + 0.5 * ties)


def risk_coverage(confidences, correct) -> tuple[np.ndarray, np.ndarray]:
    """The risk-coverage curve of answering only when confident (selective prediction).

    Sort the answers from the most to the least confident; answering the first k of N gives coverage k/N and
    risk = the share of wrong answers among those k. Returns ``(coverage, risk)``, two arrays of length N
    (coverage 1/N, 2/N, ..., 1). A model whose confidence discriminates well has low risk at low coverage; if
    confidence carries no information, the risk is about the same at every coverage. Equal confidences are
    kept in their input order (a stable sort). Same inputs as :func:`reliability_bins`.
    """
    conf, hits = _check_confidences(confidences, correct)
    order = np.argsort(-conf, kind="stable")
    answered = np.arange(1, conf.size + 1)
    risk = np.cumsum(1 - hits[order]) / answered
    return answered / conf.size, risk
