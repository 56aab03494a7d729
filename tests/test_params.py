import pytest
import torch

from llmbook.params import mlp_params, transformer_block_params, transformer_params, weight_memory_bytes
from llmbook.transformer import GPT, GPTConfig, TransformerBlock
from llmbook.utils import count_parameters


def test_mlp_formula_matches_pytorch():
    sizes = [64, 32, 16, 10]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    assert mlp_params(sizes) == count_parameters(torch.nn.Sequential(*layers))
    assert mlp_params([3, 2], bias=False) == 6


def test_block_formula_matches_pytorch_block():
    assert transformer_block_params(48) == count_parameters(TransformerBlock(48, n_heads=4))
    assert transformer_block_params(64) == 12 * 64**2 + 13 * 64


def test_model_formula_matches_our_gpt():
    config = GPTConfig(vocab_size=97, n_ctx=32, d_model=48, n_layers=3, n_heads=4)
    counted = transformer_params(97, 48, 3, 32)["total"]
    assert counted == count_parameters(GPT(config))


def test_published_sizes():
    gpt2_small = transformer_params(50257, 768, 12, 1024)["total"]
    assert gpt2_small == 124_439_808  # "124M"
    bert_base = transformer_params(30522, 768, 12, 512, n_segments=2, embedding_layernorm=True,
                                   final_layernorm=False, pooler=True)["total"]
    assert round(bert_base / 1e6) == 109  # the paper rounds to 110M
    gpt3 = transformer_params(50257, 12288, 96, 2048)["total"]
    assert 174e9 < gpt3 < 176e9


def test_memory():
    assert weight_memory_bytes(175e9, "fp16") == 350e9
    with pytest.raises(ValueError, match="dtype must be one of"):
        weight_memory_bytes(10, "fp8x")


@pytest.mark.parametrize("sizes", [[10], [10, 0], [10, 2.5]])
def test_mlp_rejects_bad_sizes(sizes):
    with pytest.raises((ValueError, TypeError), match="layer_sizes"):
        mlp_params(sizes)
