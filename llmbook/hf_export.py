"""The book's models next to Hugging Face ``transformers`` (chapter 7).

- :func:`to_gpt2`: copy the weights of the book's :class:`llmbook.transformer.GPT` into ``transformers``'
  ``GPT2LMHeadModel``, which then computes the same logits (the book's GPT *is* a GPT-2, at a small size; an
  untied output layer, chapter 6's choice, becomes GPT-2's ``tie_word_embeddings=False``).
- :func:`gpt2_config` and :func:`bert_config`: ``transformers`` configurations of the published GPT-2 and BERT
  sizes, and :func:`hf_parameter_count`, which counts a model's parameters without allocating its weights (it
  builds the model on PyTorch's ``meta`` device), so that even GPT-2 XL (1.5 billion parameters) is counted in
  a fraction of a second and a few megabytes.

Nothing is downloaded: every model is built from a configuration, with random weights.
"""

from __future__ import annotations

import warnings

import torch

from llmbook.params import BERT_SIZES, GPT2_SIZES
from llmbook.transformer import GPT
from llmbook.utils import check_int

__all__ = ["bert_config", "gpt2_config", "gpt2_config_for", "hf_parameter_count", "to_gpt2"]


def _import_transformers():
    """Import ``transformers`` without the one warning its import prints in a notebook without ipywidgets.

    ``transformers`` imports ``tqdm.auto``, which, inside a Jupyter kernel where the optional ``ipywidgets``
    package is missing, warns "IProgress not found" and falls back to plain-text progress bars. The book never
    shows a progress bar from ``transformers``, so only that warning, from that import, is silenced here; every
    other warning still shows.
    """
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
        import tqdm.auto  # noqa: F401  (imported here, once, so that the warning cannot come back later)
        import transformers
    return transformers


_import_transformers()

#: Activation names in ``transformers``: our FeedForward uses the exact GELU ("gelu"); GPT-2 itself used the tanh
#: approximation, which ``transformers`` calls "gelu_new".
ACTIVATIONS = ("gelu", "gelu_new")


def _token_id(name: str, value, vocab_size: int) -> int | None:
    if value is None:
        return None
    check_int(name, value, minimum=0)
    if value >= vocab_size:
        raise ValueError(f"{name} must be None or an id below vocab_size={vocab_size}, got {value}")
    return int(value)


def gpt2_config_for(model: GPT, activation: str = "gelu", bos_token_id: int | None = None,
                    eos_token_id: int | None = None):
    """A ``transformers.GPT2Config`` with the sizes of the book's ``model`` (a :class:`llmbook.transformer.GPT`).

    ``activation="gelu"`` matches the book's feed-forward layer exactly; GPT-2's own choice was ``"gelu_new"``
    (the tanh approximation of GELU). ``bos_token_id`` and ``eos_token_id`` default to None, because GPT-2's
    defaults (50256) lie outside a small vocabulary; pass ids below the vocabulary size to set them.
    GPT-2 ties its output layer to the token embedding; a model with ``tie_weights=False`` (chapter 6's and
    chapter 7's choice) gets ``tie_word_embeddings=False``, which ``transformers`` supports with a separate
    ``lm_head``. Raises ``ValueError`` for a model GPT-2 cannot represent: sinusoidal or no positions, or
    attention that is not causal (e.g. a :class:`llmbook.architectures.MaskedLM`).
    """
    from transformers import GPT2Config

    if not isinstance(model, GPT):
        raise TypeError(f"model must be an llmbook.transformer.GPT, got {type(model).__name__}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    c = model.config
    if c.positional != "learned":
        raise ValueError(f"GPT-2 uses learned positions; this model has positional={c.positional!r}")
    if not all(block.attn.causal for block in model.blocks):
        raise ValueError("GPT-2 is a decoder with causal attention; this model's attention is not causal")
    bos = _token_id("bos_token_id", bos_token_id, c.vocab_size)
    eos = _token_id("eos_token_id", eos_token_id, c.vocab_size)
    return GPT2Config(
        vocab_size=c.vocab_size, n_positions=c.n_ctx, n_embd=c.d_model, n_layer=c.n_layers, n_head=c.n_heads,
        n_inner=c.d_ff, activation_function=activation, resid_pdrop=c.dropout, embd_pdrop=c.dropout,
        attn_pdrop=c.dropout, layer_norm_epsilon=model.final_norm.eps, tie_word_embeddings=c.tie_weights,
        bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
    )


@torch.no_grad()
def to_gpt2(model: GPT, activation: str = "gelu", bos_token_id: int | None = None,
            eos_token_id: int | None = None):
    """A ``transformers.GPT2LMHeadModel`` holding a copy of ``model``'s weights, in evaluation mode.

    The two models compute the same logits (up to float rounding) when ``activation="gelu"``. The mapping:
    ``token_embedding`` -> ``wte``, ``position_embedding`` -> ``wpe``, and in block i ``norm1`` -> ``ln_1``,
    ``attn.qkv`` -> ``attn.c_attn``, ``attn.out`` -> ``attn.c_proj``, ``norm2`` -> ``ln_2``, ``ffn.up`` ->
    ``mlp.c_fc``, ``ffn.down`` -> ``mlp.c_proj``; ``final_norm`` -> ``ln_f``. GPT-2 stores its linear layers as
    ``Conv1D`` with the weight matrix transposed (in, out), so every matrix is transposed on the way. An untied
    model's ``lm_head`` is copied into GPT-2's separate ``lm_head``; a tied one shares ``wte``, as in GPT-2.
    See :func:`gpt2_config_for` for the arguments and the errors.
    """
    from transformers import GPT2LMHeadModel

    config = gpt2_config_for(model, activation, bos_token_id, eos_token_id)
    hf = GPT2LMHeadModel(config)
    t = hf.transformer
    t.wte.weight.copy_(model.token_embedding.weight)
    t.wpe.weight.copy_(model.position_embedding.weight)
    for ours, theirs in zip(model.blocks, t.h, strict=True):
        pairs = [(ours.norm1, theirs.ln_1, False), (ours.attn.qkv, theirs.attn.c_attn, True),
                 (ours.attn.out, theirs.attn.c_proj, True), (ours.norm2, theirs.ln_2, False),
                 (ours.ffn.up, theirs.mlp.c_fc, True), (ours.ffn.down, theirs.mlp.c_proj, True)]
        for source, target, transpose in pairs:
            target.weight.copy_(source.weight.T if transpose else source.weight)
            target.bias.copy_(source.bias)
    t.ln_f.weight.copy_(model.final_norm.weight)
    t.ln_f.bias.copy_(model.final_norm.bias)
    if not model.config.tie_weights:  # GPT-2 itself ties them; here transformers keeps a separate lm_head
        hf.lm_head.weight.copy_(model.lm_head.weight)
    return hf.eval()


def gpt2_config(name: str):
    """The ``transformers.GPT2Config`` of a published GPT-2 size: a key of :data:`llmbook.params.GPT2_SIZES`."""
    from transformers import GPT2Config

    if name not in GPT2_SIZES:
        raise ValueError(f"name must be one of {list(GPT2_SIZES)}, got {name!r}")
    size = GPT2_SIZES[name]
    return GPT2Config(n_layer=size["n_layers"], n_embd=size["d_model"], n_head=size["n_heads"],
                      vocab_size=50257, n_positions=1024)


def bert_config(name: str):
    """The ``transformers.BertConfig`` of a published BERT size: a key of :data:`llmbook.params.BERT_SIZES`."""
    from transformers import BertConfig

    if name not in BERT_SIZES:
        raise ValueError(f"name must be one of {list(BERT_SIZES)}, got {name!r}")
    size = BERT_SIZES[name]
    return BertConfig(num_hidden_layers=size["n_layers"], hidden_size=size["d_model"],
                      num_attention_heads=size["n_heads"], intermediate_size=4 * size["d_model"],
                      vocab_size=30522, max_position_embeddings=512, type_vocab_size=2)


def hf_parameter_count(model_class, config) -> int:
    """Number of parameters of ``model_class(config)`` (a ``transformers`` model), counted without weights.

    The model is built on PyTorch's ``meta`` device, where tensors have shapes but no storage, so building GPT-2
    XL takes a fraction of a second and almost no memory. Tied weights are counted once.
    """
    if not isinstance(model_class, type) or not hasattr(model_class, "config_class"):
        raise TypeError(f"model_class must be a transformers model class, got {model_class!r}")
    if not isinstance(config, model_class.config_class):
        raise TypeError(f"config must be a {model_class.config_class.__name__}, got {type(config).__name__}")
    with torch.device("meta"):
        model = model_class(config)
    return sum(p.numel() for p in model.parameters())
