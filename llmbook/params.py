"""Counting parameters and the memory their weights need (chapter 1; reused in chapters 5 and 7).

The formulas count every weight and bias, so they can be checked exactly against a PyTorch model
built with the same sizes (see ``tests/test_params.py``). The published sizes of BERT and GPT-2
(:data:`BERT_SIZES`, :data:`GPT2_SIZES`) and their counts (:func:`bert_params`, :func:`gpt2_params`) are
checked against Hugging Face ``transformers`` in ``tests/test_hf_export.py``; chapter 1 uses BERT's in an exercise
and chapter 7 compares both families.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmbook.utils import check_int, check_positive

__all__ = ["BYTES_PER_PARAM", "BERT_SIZES", "GPT2_SIZES", "mlp_params", "transformer_block_params",
           "transformer_params", "bert_params", "gpt2_params", "weight_memory_bytes"]

#: Bytes per parameter for common number formats.
BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "int4": 0.5}


def mlp_params(layer_sizes: Sequence[int], bias: bool = True) -> int:
    """Parameters of a fully connected network with the given layer widths.

    ``layer_sizes`` lists the input width, every hidden width and the output width, e.g.
    ``[64, 32, 10]`` for 64 inputs, one hidden layer of 32 units and 10 outputs. A layer from
    ``n_in`` to ``n_out`` units has ``n_in * n_out`` weights and ``n_out`` biases.
    """
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output width, got {sizes}")
    for i, n in enumerate(sizes):
        check_int(f"layer_sizes[{i}]", n, minimum=1)
    return sum(n_in * n_out + (n_out if bias else 0) for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False))


def transformer_block_params(d_model: int, d_ff: int | None = None, bias: bool = True) -> int:
    """Parameters of one Transformer block (self-attention + feed-forward + two layer norms).

    Attention has four ``d_model x d_model`` projections (queries, keys, values, output); the
    feed-forward layer maps ``d_model -> d_ff -> d_model``; each layer norm has a gain and a shift.
    With ``d_ff = 4 * d_model`` and biases this is ``12 d^2 + 13 d``.
    """
    d = check_int("d_model", d_model, minimum=1)
    f = 4 * d if d_ff is None else check_int("d_ff", d_ff, minimum=1)
    attention = 4 * d * d + (4 * d if bias else 0)
    feed_forward = 2 * d * f + ((f + d) if bias else 0)
    layer_norms = 2 * 2 * d
    return attention + feed_forward + layer_norms


def transformer_params(
    vocab_size: int,
    d_model: int,
    n_layers: int,
    n_ctx: int,
    d_ff: int | None = None,
    *,
    learned_positions: bool = True,
    tied_embeddings: bool = True,
    n_segments: int = 0,
    embedding_layernorm: bool = False,
    final_layernorm: bool = True,
    pooler: bool = False,
    bias: bool = True,
) -> dict[str, int]:
    """Parameter count of a Transformer language model, broken down by part.

    The defaults describe a GPT-2-style decoder (learned positions, tied input and output
    embeddings, a final layer norm). GPT-1 was post-norm and had no final layer norm: count it with
    ``final_layernorm=False`` (the default adds ``2 * d_model`` = 1,536 parameters to it). For BERT use
    ``n_segments=2, embedding_layernorm=True, final_layernorm=False, pooler=True``. Returns a dict whose
    ``"total"`` entry is the sum.
    """
    v = check_int("vocab_size", vocab_size, minimum=1)
    d = check_int("d_model", d_model, minimum=1)
    n = check_int("n_layers", n_layers, minimum=0)
    t = check_int("n_ctx", n_ctx, minimum=1)
    check_int("n_segments", n_segments, minimum=0)
    parts = {
        "token_embedding": v * d,
        "position_embedding": t * d if learned_positions else 0,
        "segment_embedding": n_segments * d,
        "embedding_layernorm": 2 * d if embedding_layernorm else 0,
        "blocks": n * transformer_block_params(d, d_ff, bias=bias),
        "final_layernorm": 2 * d if final_layernorm else 0,
        "pooler": d * d + d if pooler else 0,
        "output_projection": 0 if tied_embeddings else v * d,
    }
    parts["total"] = sum(parts.values())
    return parts


def weight_memory_bytes(n_params: int | float, dtype: str = "fp16") -> float:
    """Bytes needed just to store ``n_params`` weights in the given number format.

    This is a lower bound on what running a model needs: activations, the attention cache and (for
    training) gradients and optimiser state come on top.
    """
    if dtype not in BYTES_PER_PARAM:
        raise ValueError(f"dtype must be one of {sorted(BYTES_PER_PARAM)}, got {dtype!r}")
    check_positive("n_params", n_params)
    return n_params * BYTES_PER_PARAM[dtype]


# ----------------------------------------------------------------------------------------------------------------
# Published sizes
# ----------------------------------------------------------------------------------------------------------------

#: BERT's two sizes (Devlin et al. 2019): layers, hidden size, heads; vocabulary 30,522 WordPiece tokens, 512
#: positions, 2 segments, feed-forward width 4 x hidden.
BERT_SIZES = {
    "BERT-base": {"n_layers": 12, "d_model": 768, "n_heads": 12},
    "BERT-large": {"n_layers": 24, "d_model": 1024, "n_heads": 16},
}

#: GPT-2's four sizes (Radford et al. 2019; openai/gpt-2): vocabulary 50,257 byte-level BPE tokens, context 1,024.
GPT2_SIZES = {
    "GPT-2 small": {"n_layers": 12, "d_model": 768, "n_heads": 12},
    "GPT-2 medium": {"n_layers": 24, "d_model": 1024, "n_heads": 16},
    "GPT-2 large": {"n_layers": 36, "d_model": 1280, "n_heads": 20},
    "GPT-2 XL": {"n_layers": 48, "d_model": 1600, "n_heads": 25},
}


def bert_params(n_layers: int, d_model: int, vocab_size: int = 30522, n_ctx: int = 512, n_segments: int = 2,
                pooler: bool = True) -> int:
    """Parameters of a BERT encoder (without the pre-training heads): embeddings, blocks, pooler.

    Token, position and segment embeddings with a layer norm; ``n_layers`` blocks of ``12 d^2 + 13 d``; the
    pooler (a d x d layer with bias, applied to the [CLS] position). No final layer norm (BERT is post-norm, so
    every block ends with its own). Uses :func:`transformer_params`.
    """
    return transformer_params(vocab_size, d_model, n_layers, n_ctx, n_segments=n_segments,
                              embedding_layernorm=True, final_layernorm=False, pooler=pooler)["total"]


def gpt2_params(n_layers: int, d_model: int, vocab_size: int = 50257, n_ctx: int = 1024) -> int:
    """Parameters of GPT-2 with its tied output layer: token and position embeddings, blocks, final layer norm.

    Uses :func:`transformer_params` with its defaults (learned positions, tied embeddings).
    """
    return transformer_params(vocab_size, d_model, n_layers, n_ctx)["total"]
