"""Encoder-only, decoder-only and encoder-decoder Transformers from one set of blocks (chapter 7).

Chapter 5 built the pieces (attention, feed-forward layer, pre-norm block) and a decoder-only GPT. This module
adds what the other two kinds of language model need:

- :func:`attention_mask`: the boolean mask that tells the three kinds apart;
- :class:`MaskedLM`: an encoder-only model (BERT's kind), which is chapter 6's GPT with the causal mask removed,
  trained with :func:`mask_tokens` (15 % of the tokens chosen, 80/10/10 replacement);
- :class:`CrossAttention`, :class:`DecoderBlock` and :class:`EncoderDecoder`: a decoder that reads an encoder's
  output through cross-attention (the original Transformer's kind, and T5's and BART's);
- :class:`MixtureOfExperts` and :func:`moe_params`: a sparsely gated feed-forward layer in which each token uses
  only a few experts, with the kept gates used as they are (Switch-style) or renormalised to sum to 1 (Shazeer
  et al., GShard), and its parameter count.

The chapter trains all three kinds with one loop, :func:`llmbook.training.train_on_batches`, so that comparisons
are fair; the published sizes of BERT and GPT-2 and their parameter counts are in :mod:`llmbook.params`.

Shapes are written (batch, time, channels) = (B, T, C); S is the length of the encoder's (source) sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.training import IGNORE_INDEX
from llmbook.transformer import (
    GPT,
    FeedForward,
    GPTConfig,
    MultiHeadAttention,
    TransformerBlock,
    causal_mask,
    scaled_dot_product_attention,
)
from llmbook.utils import check_int, check_probability, check_token_batch, eval_mode

__all__ = [
    "ARCHITECTURES",
    "CrossAttention",
    "DecoderBlock",
    "EncoderDecoder",
    "EncoderDecoderConfig",
    "MaskedLM",
    "MixtureOfExperts",
    "attention_mask",
    "mask_tokens",
    "moe_params",
]

#: The three kinds of Transformer language model, by the attention they use.
ARCHITECTURES = ("encoder", "decoder", "encoder-decoder")


# ----------------------------------------------------------------------------------------------------------------
# The masks
# ----------------------------------------------------------------------------------------------------------------


def attention_mask(kind: str, n_queries: int, n_keys: int | None = None) -> torch.Tensor:
    """The boolean (n_queries, n_keys) attention mask of one kind of attention; True = may attend.

    ``kind`` is ``"bidirectional"`` (an encoder: every position sees every position), ``"causal"`` (a decoder:
    position t sees positions 0..t; needs ``n_keys == n_queries``) or ``"cross"`` (a decoder position reading the
    encoder's output: every decoder position sees every source position; ``n_keys`` is the source length).
    ``n_keys`` defaults to ``n_queries``.
    """
    check_int("n_queries", n_queries, minimum=1)
    n_keys = n_queries if n_keys is None else check_int("n_keys", n_keys, minimum=1)
    if kind == "causal":
        if n_keys != n_queries:
            raise ValueError(f"a causal mask is square, got n_queries={n_queries} and n_keys={n_keys}")
        return causal_mask(n_queries)
    if kind in ("bidirectional", "cross"):
        return torch.ones(n_queries, n_keys, dtype=torch.bool)
    raise ValueError(f"kind must be 'bidirectional', 'causal' or 'cross', got {kind!r}")


# ----------------------------------------------------------------------------------------------------------------
# Encoder-only: a masked language model
# ----------------------------------------------------------------------------------------------------------------


class MaskedLM(GPT):
    """An encoder-only Transformer with a language-model head, trained as a masked language model (BERT's kind).

    It is :class:`llmbook.transformer.GPT` with one change: no causal mask, so every position attends to every
    position, on both sides. Same parameters, same names, same count. ``forward(token_ids, targets)`` returns
    ``(logits, loss)``; positions whose target is :data:`llmbook.training.IGNORE_INDEX` (-100) carry no loss, so
    the loss is the mean cross-entropy over the masked positions only (make the targets with :func:`mask_tokens`).

    It is not a causal model (:attr:`is_causal` is False), so the functions that need one, those that predict the
    next token (:func:`llmbook.training.train` and ``evaluate_loss``, :mod:`llmbook.generation`, the KV cache of
    :mod:`llmbook.inference`), refuse it with a ValueError. Train it with :func:`llmbook.training.train_on_batches`.
    """

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        for block in self.blocks:
            block.attn.causal = False  # the only difference from a GPT

    @property
    def is_causal(self) -> bool:
        """Always False: a masked language model reads both sides of every position."""
        return False


@torch.no_grad()
def mask_tokens(token_ids: torch.Tensor, mask_id: int, vocab_size: int, rate: float = 0.15,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: choose each position with probability ``rate``; of the chosen, 80 % -> mask, 10 % -> random.

    The remaining 10 % of the chosen positions keep their token. Random replacements are drawn uniformly from the
    ``vocab_size`` ids other than ``mask_id``. Returns ``(inputs, targets)``, both shaped like ``token_ids``:
    ``targets`` holds the original token at chosen positions and :data:`llmbook.training.IGNORE_INDEX` (-100)
    elsewhere.
    ``token_ids`` is not changed. Pass a seeded ``torch.Generator`` for reproducible masks.
    """
    if not isinstance(token_ids, torch.Tensor) or token_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"token_ids must be a tensor of integer token ids, got {type(token_ids).__name__}"
                        f"{'' if not isinstance(token_ids, torch.Tensor) else ' of dtype ' + str(token_ids.dtype)}")
    check_int("vocab_size", vocab_size, minimum=2)
    check_int("mask_id", mask_id, minimum=0)
    if mask_id >= vocab_size:
        raise ValueError(f"mask_id must be one of the vocab_size={vocab_size} ids, got {mask_id}")
    check_probability("rate", rate)
    if token_ids.numel() and (token_ids.min() < 0 or token_ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got values from {int(token_ids.min())} "
                         f"to {int(token_ids.max())}")
    shape = token_ids.shape
    chosen = torch.rand(shape, generator=generator) < rate
    action = torch.rand(shape, generator=generator)  # < 0.8: mask; 0.8-0.9: random token; >= 0.9: keep
    random_ids = torch.randint(vocab_size - 1, shape, generator=generator)
    random_ids = random_ids + (random_ids >= mask_id).long()  # skip the mask id itself
    inputs = token_ids.clone().long()
    inputs[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    targets = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
    targets[chosen] = token_ids.long()[chosen]
    return inputs, targets


# ----------------------------------------------------------------------------------------------------------------
# Encoder-decoder: cross-attention
# ----------------------------------------------------------------------------------------------------------------


class CrossAttention(nn.Module):
    """Multi-head cross-attention: queries from the decoder, keys and values from the encoder's output.

    ``forward(x, memory)`` takes the decoder's states x (B, T, d_model) and the encoder's output memory
    (B, S, d_model) and returns (B, T, d_model). There is no mask: every decoder position may read every source
    position (the decoder's *self*-attention is the causal one). With ``keep_weights=True`` the attention weights
    (B, n_heads, T, S) are kept in ``last_weights``.
    """

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        check_int("d_model", d_model, minimum=1)
        check_int("n_heads", n_heads, minimum=1)
        if d_model % n_heads:
            raise ValueError(f"n_heads must divide d_model, got d_model={d_model} and n_heads={n_heads}")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.query = nn.Linear(d_model, d_model)  # from the decoder
        self.key_value = nn.Linear(d_model, 2 * d_model)  # from the encoder
        self.out = nn.Linear(d_model, d_model)
        self.last_weights: torch.Tensor | None = None

    def _heads(self, t: torch.Tensor) -> torch.Tensor:  # (B, L, C) -> (B, n_heads, L, d_head)
        return t.view(t.shape[0], t.shape[1], self.n_heads, self.d_head).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, keep_weights: bool = False) -> torch.Tensor:
        for name, t in (("x", x), ("memory", memory)):
            if not isinstance(t, torch.Tensor) or t.dim() != 3 or t.shape[-1] != self.d_model:
                raise ValueError(f"{name} must have shape (batch, time, {self.d_model}), "
                                 f"got {tuple(getattr(t, 'shape', ()))}")
        if x.shape[0] != memory.shape[0]:
            raise ValueError(f"x and memory must have the same batch size, got {x.shape[0]} and {memory.shape[0]}")
        queries = self._heads(self.query(x))  # (B, h, T, d_head)
        keys, values = (self._heads(t) for t in self.key_value(memory).split(self.d_model, dim=-1))  # (B, h, S, .)
        heads, weights = scaled_dot_product_attention(queries, keys, values)  # (B, h, T, d_head), (B, h, T, S)
        self.last_weights = weights.detach() if keep_weights else None
        merged = heads.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.d_model)
        return self.out(merged)


class DecoderBlock(nn.Module):
    """A pre-norm decoder block of an encoder-decoder: causal self-attention, cross-attention, feed-forward.

    Each of the three sub-layers sits in a residual connection with its own layer norm.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, n_heads, causal=True)
        self.norm_cross = nn.LayerNorm(d_model)
        self.cross_attn = CrossAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, keep_weights: bool = False) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x))  # earlier target tokens
        x = x + self.cross_attn(self.norm_cross(x), memory, keep_weights=keep_weights)  # the whole source
        return x + self.ffn(self.norm2(x))


@dataclass
class EncoderDecoderConfig:
    """Sizes of a small encoder-decoder. Source and target share one vocabulary and one embedding table."""

    vocab_size: int
    n_ctx_source: int = 32
    n_ctx_target: int = 32
    d_model: int = 64
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    n_heads: int = 4
    d_ff: int | None = None

    def __post_init__(self):
        for name in ("vocab_size", "n_ctx_source", "n_ctx_target", "d_model", "n_heads"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("n_encoder_layers", self.n_encoder_layers, minimum=0)
        check_int("n_decoder_layers", self.n_decoder_layers, minimum=0)
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads must divide d_model, got d_model={self.d_model} and n_heads={self.n_heads}")
        if self.d_ff is not None:
            check_int("d_ff", self.d_ff, minimum=1)


class EncoderDecoder(nn.Module):
    """An encoder-decoder Transformer (the original Transformer's kind; T5 and BART are large ones).

    The encoder is a stack of chapter 5's :class:`llmbook.transformer.TransformerBlock` without a causal mask; the
    decoder is a stack of :class:`DecoderBlock`. ``forward(source_ids, target_ids, targets=None)`` returns
    ``(logits, loss)`` with logits (B, T, vocab): position t predicts the target token after ``target_ids[:, t]``
    (teacher forcing). Targets equal to :data:`llmbook.training.IGNORE_INDEX` (padding) carry no loss.
    """

    def __init__(self, config: EncoderDecoderConfig):
        super().__init__()
        if not isinstance(config, EncoderDecoderConfig):
            raise TypeError(f"config must be an EncoderDecoderConfig, got {type(config).__name__}")
        self.config = c = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)  # shared by source, target and output
        self.source_positions = nn.Embedding(c.n_ctx_source, c.d_model)
        self.target_positions = nn.Embedding(c.n_ctx_target, c.d_model)
        self.encoder = nn.ModuleList(
            TransformerBlock(c.d_model, c.n_heads, c.d_ff, causal=False) for _ in range(c.n_encoder_layers))
        self.encoder_norm = nn.LayerNorm(c.d_model)
        self.decoder = nn.ModuleList(DecoderBlock(c.d_model, c.n_heads, c.d_ff) for _ in range(c.n_decoder_layers))
        self.final_norm = nn.LayerNorm(c.d_model)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.lm_head.weight = self.token_embedding.weight
        self.apply(GPT._init_weights)

    def _check(self, name: str, ids: torch.Tensor, n_ctx: int) -> None:
        check_token_batch(name, ids, self.config.vocab_size, max_length=n_ctx)

    def encode(self, source_ids: torch.Tensor) -> torch.Tensor:
        """The encoder's output (B, S, d_model) for source ids (B, S): every position sees the whole source."""
        self._check("source_ids", source_ids, self.config.n_ctx_source)
        positions = torch.arange(source_ids.shape[1], device=source_ids.device)
        x = self.token_embedding(source_ids) + self.source_positions(positions)
        for block in self.encoder:
            x = block(x)
        return self.encoder_norm(x)

    def decode(self, target_ids: torch.Tensor, memory: torch.Tensor, keep_weights: bool = False) -> torch.Tensor:
        """Logits (B, T, vocab) for target ids (B, T), reading the encoder's output ``memory`` (B, S, d_model)."""
        self._check("target_ids", target_ids, self.config.n_ctx_target)
        positions = torch.arange(target_ids.shape[1], device=target_ids.device)
        x = self.token_embedding(target_ids) + self.target_positions(positions)
        for block in self.decoder:
            x = block(x, memory, keep_weights=keep_weights)
        return self.lm_head(self.final_norm(x))

    def forward(self, source_ids: torch.Tensor, target_ids: torch.Tensor, targets: torch.Tensor | None = None,
                keep_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check("source_ids", source_ids, self.config.n_ctx_source)
        self._check("target_ids", target_ids, self.config.n_ctx_target)
        if source_ids.shape[0] != target_ids.shape[0]:
            raise ValueError(f"source_ids and target_ids must have the same batch size, "
                             f"got {source_ids.shape[0]} and {target_ids.shape[0]}")
        logits = self.decode(target_ids, self.encode(source_ids), keep_weights=keep_weights)
        loss = None
        if targets is not None:
            if targets.shape != target_ids.shape:
                raise ValueError(f"targets must have the shape of target_ids {tuple(target_ids.shape)}, "
                                 f"got {tuple(targets.shape)}")
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                   ignore_index=IGNORE_INDEX)
        return logits, loss

    @torch.no_grad()
    def greedy_generate(self, source_ids: torch.Tensor, bos_id: int, eos_id: int,
                        max_new_tokens: int | None = None) -> list[list[int]]:
        """Greedy decoding for a batch of sources: start from ``bos_id``, stop at ``eos_id``.

        Returns one list of generated ids per source (without the start token and without ``eos_id``).
        """
        for name, value in (("bos_id", bos_id), ("eos_id", eos_id)):
            check_int(name, value, minimum=0)
            if value >= self.config.vocab_size:
                raise ValueError(f"{name} must be below vocab_size={self.config.vocab_size}, got {value}")
        limit = self.config.n_ctx_target - 1
        max_new_tokens = limit if max_new_tokens is None else check_int("max_new_tokens", max_new_tokens, 1)
        if max_new_tokens > limit:
            raise ValueError(f"max_new_tokens must be at most n_ctx_target - 1 = {limit}, got {max_new_tokens}")
        with eval_mode(self):
            memory = self.encode(source_ids)
            out = torch.full((source_ids.shape[0], 1), bos_id, dtype=torch.long)
            for _ in range(max_new_tokens):
                next_ids = self.decode(out, memory)[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
                out = torch.cat([out, next_ids], dim=1)
                if bool((out == eos_id).any(dim=1).all()):
                    break
        results = []
        for row in out[:, 1:].tolist():
            results.append(row[:row.index(eos_id)] if eos_id in row else row)
        return results

    def cross_attention_weights(self) -> list[torch.Tensor]:
        """Cross-attention weights (B, n_heads, T, S) of every decoder block from the last ``keep_weights`` run."""
        return [b.cross_attn.last_weights for b in self.decoder if b.cross_attn.last_weights is not None]


# ----------------------------------------------------------------------------------------------------------------
# Mixture of experts
# ----------------------------------------------------------------------------------------------------------------


class MixtureOfExperts(nn.Module):
    """A sparsely gated mixture-of-experts feed-forward layer (Shazeer et al. 2017; Fedus et al. 2022).

    ``n_experts`` feed-forward networks (chapter 5's :class:`llmbook.transformer.FeedForward`) and a router, a
    linear map from d_model to one score per expert. A softmax over all the scores gives each expert a routing
    probability; each token is sent to its ``top_k`` most probable experts, and their outputs are added, each
    multiplied by a *gate*. Two published variants differ in the gates:

    - ``renormalise=False`` (the default): the gates are the kept routing probabilities themselves. With
      ``top_k=1`` this is the Switch Transformer's routing (Fedus et al. 2022): the one gate, below 1, scales
      the expert's output and gives the router its gradient. With ``top_k > 1`` the kept gates sum to less than
      1 (down to ``top_k / n_experts`` for a router that spreads its probability evenly), so the layer's output
      shrinks by that factor.
    - ``renormalise=True``: the kept gates are divided by their sum, so that they add up to 1. This is a
      softmax over the ``top_k`` chosen scores only, the gating of Shazeer et al. (2017, without its noise)
      and of GShard's top-2 routing (Lepikhin et al. 2021). With ``top_k=1`` the gate is always 1, so the
      router gets no gradient from the layer's output.

    So the layer holds ``n_experts`` times the feed-forward parameters, but each token uses only ``top_k``
    experts' worth. ``forward`` maps (B, T, d_model) to (B, T, d_model) and stores in ``last_counts`` how many
    tokens each expert received and in ``last_gates`` the gates (B * T, top_k) it used. No load-balancing loss.
    """

    def __init__(self, d_model: int, n_experts: int, top_k: int = 1, d_ff: int | None = None,
                 renormalise: bool = False):
        super().__init__()
        check_int("d_model", d_model, minimum=1)
        check_int("n_experts", n_experts, minimum=1)
        check_int("top_k", top_k, minimum=1)
        if top_k > n_experts:
            raise ValueError(f"top_k must be at most n_experts={n_experts}, got {top_k}")
        if not isinstance(renormalise, bool):
            raise TypeError(f"renormalise must be True or False, got {renormalise!r}")
        self.d_model, self.n_experts, self.top_k, self.renormalise = d_model, n_experts, top_k, renormalise
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.experts = nn.ModuleList(FeedForward(d_model, d_ff) for _ in range(n_experts))
        self.last_counts: torch.Tensor | None = None
        self.last_gates: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (batch, time, {self.d_model}), got {tuple(getattr(x, 'shape', ()))}")
        tokens = x.reshape(-1, self.d_model)  # (N, C): routing is per token
        probs = torch.softmax(self.router(tokens), dim=-1)  # (N, n_experts): routing probabilities
        gates, chosen = probs.topk(self.top_k, dim=-1)  # (N, k): the chosen experts and their weights
        if self.renormalise:
            gates = gates / gates.sum(dim=-1, keepdim=True)  # = a softmax over the k chosen scores
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            rows, slot = (chosen == e).nonzero(as_tuple=True)  # tokens that chose expert e
            if len(rows):
                out = out.index_add(0, rows, gates[rows, slot, None] * expert(tokens[rows]))
        self.last_counts = torch.bincount(chosen.reshape(-1), minlength=self.n_experts)
        self.last_gates = gates.detach()
        return out.reshape(x.shape)


def moe_params(d_model: int, n_experts: int, top_k: int = 1, d_ff: int | None = None) -> dict[str, int]:
    """Parameters of a :class:`MixtureOfExperts` layer: ``total`` stored, ``active`` used per token, ``router``.

    Each expert has ``2 d d_ff + d_ff + d`` parameters (``d_ff = 4d`` by default); the router has
    ``d * n_experts``. A token uses the router and ``top_k`` experts.
    """
    d = check_int("d_model", d_model, minimum=1)
    n = check_int("n_experts", n_experts, minimum=1)
    k = check_int("top_k", top_k, minimum=1)
    if k > n:
        raise ValueError(f"top_k must be at most n_experts={n}, got {k}")
    f = 4 * d if d_ff is None else check_int("d_ff", d_ff, minimum=1)
    expert = 2 * d * f + f + d
    router = d * n
    return {"router": router, "expert": expert, "total": router + n * expert, "active": router + k * expert}
