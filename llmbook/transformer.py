"""A decoder-only Transformer (a small GPT), written from scratch (chapters 5 and 6).

The names follow the text: ``queries``, ``keys``, ``values``, ``d_model``, ``n_heads``.
Shapes are given in comments as (batch, time, channels) = (B, T, C).

The model is a stack of identical blocks between an embedding layer and an output projection:

    token ids -> token embedding (+ position information) -> N x TransformerBlock -> LayerNorm -> logits

Every block is pre-norm: ``x = x + attention(norm(x))`` then ``x = x + feed_forward(norm(x))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.utils import check_int, check_probability, check_token_batch

__all__ = ["POSITIONAL_KINDS", "ATTENTION_KINDS", "causal_mask", "scaled_dot_product_attention",
           "sinusoidal_positions", "MultiHeadAttention", "FeedForward", "TransformerBlock", "GPTConfig", "GPT",
           "rope_angles", "apply_rope", "INIT_KINDS"]

#: The position encodings a :class:`GPTConfig` accepts.
POSITIONAL_KINDS = ("learned", "sinusoidal", "none")
#: The attention implementations: written out (``scratch``) or PyTorch's fused kernel (``builtin``).
ATTENTION_KINDS = ("scratch", "builtin")
#: The weight initialisations: N(0, 0.02) everywhere, GPT-2's base scale (``normal``), or PyTorch's defaults
#: (``pytorch``). See :class:`GPT`.
INIT_KINDS = ("normal", "pytorch")


def causal_mask(n_positions: int, device=None) -> torch.Tensor:
    """Boolean (T, T) matrix that is True where position i may attend to position j, i.e. j <= i."""
    check_int("n_positions", n_positions, minimum=1)
    return torch.ones(n_positions, n_positions, dtype=torch.bool, device=device).tril()


def scaled_dot_product_attention(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(d_k)) V, written out step by step.

    Shapes: queries (..., T_q, d_k), keys (..., T_k, d_k), values (..., T_k, d_v); ``mask`` is a
    boolean tensor broadcastable to (..., T_q, T_k) that is True where attention is allowed.
    Returns ``(outputs, weights)`` with outputs (..., T_q, d_v) and weights (..., T_q, T_k); each row
    of ``weights`` sums to 1.
    """
    for name, tensor in (("queries", queries), ("keys", keys), ("values", values)):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.dim() < 2:
            raise ValueError(f"{name} must have shape (..., time, dim), got {tuple(tensor.shape)}")
    if queries.shape[-1] != keys.shape[-1]:
        raise ValueError(
            f"queries and keys must have the same last dimension d_k, got {queries.shape[-1]} and {keys.shape[-1]}"
        )
    if keys.shape[-2] != values.shape[-2]:
        raise ValueError(
            "keys and values must have the same number of positions T_k, "
            f"got {keys.shape[-2]} and {values.shape[-2]}"
        )
    d_k = queries.shape[-1]
    scores = queries @ keys.transpose(-2, -1) / math.sqrt(d_k)  # (..., T_q, T_k)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}")
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # each row sums to 1
    return weights @ values, weights


def sinusoidal_positions(n_positions: int, d_model: int) -> torch.Tensor:
    """The fixed sinusoidal position encodings of the original Transformer, shape (n_positions, d_model).

    PE[pos, 2i] = sin(pos / 10000^(2i/d_model)) and PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model)).
    """
    check_int("n_positions", n_positions, minimum=1)
    check_int("d_model", d_model, minimum=2)
    if d_model % 2:
        raise ValueError(f"d_model must be even for sinusoidal positions, got {d_model}")
    positions = torch.arange(n_positions, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    encoding = torch.zeros(n_positions, d_model)
    encoding[:, 0::2] = torch.sin(positions * frequencies)
    encoding[:, 1::2] = torch.cos(positions * frequencies)
    return encoding


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention: ``n_heads`` attention heads of width ``d_model // n_heads`` in parallel.

    With ``causal=True`` position t attends only to positions 0..t (a decoder / GPT). With
    ``attention="builtin"`` the core uses ``torch.nn.functional.scaled_dot_product_attention``
    instead of the from-scratch version; the result is the same up to rounding.

    ``forward(x, keep_weights=True)`` also stores the attention weights of that call in ``last_weights``,
    shape (B, n_heads, T, T), before dropout (each row sums to 1); any other call resets it to ``None``. On
    the built-in path the weights are computed separately for inspection, so keeping them never changes the
    output. Dropout (in training mode) drops attention weights in both paths, with different random draws.
    """

    def __init__(self, d_model: int, n_heads: int, causal: bool = True, dropout: float = 0.0,
                 attention: str = "scratch"):
        super().__init__()
        check_int("d_model", d_model, minimum=1)
        check_int("n_heads", n_heads, minimum=1)
        if d_model % n_heads:
            raise ValueError(f"n_heads must divide d_model, got d_model={d_model} and n_heads={n_heads}")
        check_probability("dropout", dropout)
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.causal, self.attention = causal, attention
        self.qkv = nn.Linear(d_model, 3 * d_model)  # queries, keys and values in one matrix multiply
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.last_weights: torch.Tensor | None = None  # (B, n_heads, T, T), kept when asked for

    def forward(self, x: torch.Tensor, keep_weights: bool = False) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (batch, time, {self.d_model}), got {tuple(x.shape)}")
        batch, time, _ = x.shape
        queries, keys, values = self.qkv(x).split(self.d_model, dim=-1)  # each (B, T, C)
        # (B, T, C) -> (B, n_heads, T, d_head): every head attends independently
        queries, keys, values = (
            t.view(batch, time, self.n_heads, self.d_head).transpose(1, 2) for t in (queries, keys, values)
        )
        self.last_weights = None  # never hand back the weights of an earlier call
        needs_mask = self.causal and (keep_weights or self.attention == "scratch")
        mask = causal_mask(time, device=x.device) if needs_mask else None
        if self.attention == "builtin":
            heads = F.scaled_dot_product_attention(
                queries, keys, values, is_causal=self.causal,
                dropout_p=self.dropout.p if self.training else 0.0,
            )
            if keep_weights:  # computed on the side for inspection; the output above is unchanged
                with torch.no_grad():
                    self.last_weights = scaled_dot_product_attention(queries, keys, values, mask)[1]
        else:
            heads, weights = scaled_dot_product_attention(queries, keys, values, mask)
            if keep_weights:
                self.last_weights = weights.detach()
            if self.training and self.dropout.p > 0:
                heads = self.dropout(weights) @ values
        merged = heads.transpose(1, 2).reshape(batch, time, self.d_model)  # concatenate the heads
        return self.out(merged)


class FeedForward(nn.Module):
    """Position-wise feed-forward layer: Linear(d_model -> d_ff), GELU, Linear(d_ff -> d_model).

    It is applied to every position separately and identically.
    """

    def __init__(self, d_model: int, d_ff: int | None = None, dropout: float = 0.0):
        super().__init__()
        check_int("d_model", d_model, minimum=1)
        d_ff = 4 * d_model if d_ff is None else check_int("d_ff", d_ff, minimum=1)
        check_probability("dropout", dropout)
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(F.gelu(self.up(x))))


class TransformerBlock(nn.Module):
    """One pre-norm Transformer block: attention and feed-forward, each inside a residual connection."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int | None = None, dropout: float = 0.0,
                 causal: bool = True, attention: str = "scratch"):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads, causal=causal, dropout=dropout, attention=attention)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff, dropout=dropout)

    def forward(self, x: torch.Tensor, keep_weights: bool = False) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), keep_weights=keep_weights)  # tokens exchange information
        x = x + self.ffn(self.norm2(x))  # each position is transformed on its own
        return x


@dataclass
class GPTConfig:
    """Sizes of a small GPT. The defaults train in well under a minute on a laptop CPU.

    ``tie_weights=True`` makes the output layer share the token embedding's matrix (chapter 5). ``init`` chooses
    the initial weights (see :class:`GPT`): ``"normal"`` (N(0, 0.02), GPT-2's scale without its scaled residual
    projections; the default) or ``"pytorch"``.
    """

    vocab_size: int
    n_ctx: int = 64
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int | None = None
    dropout: float = 0.0
    positional: str = "learned"
    attention: str = "scratch"
    tie_weights: bool = True
    init: str = "normal"

    def __post_init__(self):
        check_int("vocab_size", self.vocab_size, minimum=1)
        check_int("n_ctx", self.n_ctx, minimum=1)
        check_int("d_model", self.d_model, minimum=1)
        check_int("n_layers", self.n_layers, minimum=0)
        check_int("n_heads", self.n_heads, minimum=1)
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads must divide d_model, got d_model={self.d_model} and n_heads={self.n_heads}")
        if self.positional not in POSITIONAL_KINDS:
            raise ValueError(f"positional must be one of {POSITIONAL_KINDS}, got {self.positional!r}")
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}")
        if self.init not in INIT_KINDS:
            raise ValueError(f"init must be one of {INIT_KINDS}, got {self.init!r}")
        check_probability("dropout", self.dropout)


class GPT(nn.Module):
    """A decoder-only Transformer language model: it predicts the next token at every position.

    Initialisation (``config.init``; chapter 6 compares the two):

    - ``"normal"`` (the default): every ``nn.Linear`` and ``nn.Embedding`` weight is drawn from N(0, 0.02) and
      every bias is zero; LayerNorm starts at weight 1, bias 0. This is GPT-2's base initialisation but not all of
      it: GPT-2 also scales the weights of the layers that write into the residual stream (each block's attention
      output and second feed-forward layer) by 1/sqrt(N), with N the number of residual layers (two per block),
      so that the residual stream's variance does not grow with depth (Radford et al. 2019). This model does
      not scale them.
    - ``"pytorch"``: every layer keeps PyTorch's own default initialisation: ``nn.Embedding`` N(0, 1),
      ``nn.Linear`` weights and biases uniform in +-1/sqrt(fan_in), LayerNorm weight 1 and bias 0. Chapter 6
      uses it with ``tie_weights=False``. With ``tie_weights=True`` the output matrix *is* the N(0, 1)
      embedding, so the first logits are huge (standard deviation about sqrt(d_model)) and training suffers;
      the combination is allowed, to show exactly that, but not recommended.

    Both draw from PyTorch's global random generator; seed it (``llmbook.set_seed``) for reproducible weights.

    The model is causal (:attr:`is_causal`): position t sees positions 0..t only, so it can be trained on
    next-token prediction and generate text. Its subclass :class:`llmbook.architectures.MaskedLM` is not.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = c = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)
        if c.positional == "learned":
            self.position_embedding = nn.Embedding(c.n_ctx, c.d_model)
        else:
            self.position_embedding = None
            table = sinusoidal_positions(c.n_ctx, c.d_model) if c.positional == "sinusoidal" else None
            self.register_buffer("position_table", table, persistent=False)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(c.d_model, c.n_heads, c.d_ff, c.dropout, causal=True, attention=c.attention)
            for _ in range(c.n_layers)
        )
        self.final_norm = nn.LayerNorm(c.d_model)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        if c.tie_weights:
            self.lm_head.weight = self.token_embedding.weight  # one matrix for input and output
        if c.init == "normal":  # "pytorch" keeps the layers' own initialisation
            self.apply(self._init_weights)

    @property
    def is_causal(self) -> bool:
        """True if every position sees only itself and earlier positions (every block's attention is causal)."""
        return all(block.attn.causal for block in self.blocks)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, token_ids: torch.Tensor, targets: torch.Tensor | None = None,
                keep_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(logits, loss)``: logits (B, T, vocab); loss is the mean cross-entropy if targets are given."""
        check_token_batch("token_ids", token_ids, self.config.vocab_size, max_length=self.config.n_ctx)
        batch, time = token_ids.shape
        x = self.token_embedding(token_ids)  # (B, T, C)
        if self.position_embedding is not None:
            x = x + self.position_embedding(torch.arange(time, device=token_ids.device))
        elif self.position_table is not None:
            x = x + self.position_table[:time]
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x, keep_weights=keep_weights)
        logits = self.lm_head(self.final_norm(x))  # (B, T, vocab)
        loss = None
        if targets is not None:
            if targets.shape != token_ids.shape:
                raise ValueError(f"targets must have the same shape as token_ids {tuple(token_ids.shape)}, "
                                 f"got {tuple(targets.shape)}")
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss

    def attention_weights(self) -> list[torch.Tensor]:
        """Attention weights of every block from the last forward pass run with ``keep_weights=True``."""
        return [block.attn.last_weights for block in self.blocks if block.attn.last_weights is not None]


def rope_angles(n_positions: int, d_head: int, base: float = 10000.0) -> torch.Tensor:
    """Rotation angles of rotary position embedding (RoPE, Su et al. 2021), shape (n_positions, d_head // 2).

    Pair i of the feature dimensions (features 2i and 2i+1) at position m is rotated by the angle
    m * base^(-2i / d_head): fast rotations in the first pairs, slow ones in the last.
    """
    check_int("n_positions", n_positions, minimum=1)
    check_int("d_head", d_head, minimum=2)
    if d_head % 2:
        raise ValueError(f"d_head must be even for RoPE (features are rotated in pairs), got {d_head}")
    if not base > 0:
        raise ValueError(f"base must be positive, got {base}")
    frequencies = base ** (-torch.arange(0, d_head, 2, dtype=torch.float32) / d_head)  # (d_head/2,)
    positions = torch.arange(n_positions, dtype=torch.float32)
    return torch.outer(positions, frequencies)  # (T, d_head/2)


def apply_rope(x: torch.Tensor, base: float = 10000.0, offset: int = 0) -> torch.Tensor:
    """Rotate queries or keys ``x`` of shape (..., T, d_head) by their positions offset, offset+1, ..., offset+T-1.

    Each pair of features (2i, 2i+1) is rotated by angle position * base^(-2i/d_head). Rotating both queries and
    keys this way makes the dot product of a query at position m and a key at position n depend on the positions
    only through the offset m - n. Lengths are unchanged, and position 0 is not rotated at all.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a tensor of shape (..., time, d_head), got {tuple(getattr(x, 'shape', ()))}")
    check_int("offset", offset, minimum=0)
    time, d_head = x.shape[-2], x.shape[-1]
    angles = rope_angles(offset + time, d_head, base)[offset:].to(x.dtype)  # (T, d_head/2)
    cos, sin = torch.cos(angles), torch.sin(angles)
    even, odd = x[..., 0::2], x[..., 1::2]  # the two coordinates of every pair
    rotated = torch.empty_like(x)
    rotated[..., 0::2] = even * cos - odd * sin
    rotated[..., 1::2] = even * sin + odd * cos
    return rotated
