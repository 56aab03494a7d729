"""Tests of llmbook.quantisation: per-channel weight quantisation, whole-model copies and their memory."""

import pytest
import torch
from tiny_models import make_model

from llmbook.quantisation import (
    dequantise,
    quantise_dequantise,
    quantise_per_channel,
    quantised_copy,
    quantised_weight_bytes,
)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_quantisation_error_is_at_most_half_a_step(bits):
    weight = torch.randn(20, 33, generator=torch.Generator().manual_seed(bits)) * torch.linspace(0.01, 3, 20)[:, None]
    codes, scales = quantise_per_channel(weight, bits)
    q_max = 2 ** (bits - 1) - 1
    assert codes.dtype == torch.int8 and scales.shape == (20, 1)
    assert int(codes.abs().max()) == q_max  # the largest weight of each row maps to +-q_max
    assert torch.equal(codes.abs().amax(dim=1), torch.full((20,), q_max, dtype=torch.int8))
    assert torch.allclose(scales[:, 0], weight.abs().amax(dim=1) / q_max)
    error = (dequantise(codes, scales) - weight).abs()
    assert torch.all(error <= scales / 2 + 1e-6)
    assert error.max() > 0  # the test could fail: quantisation does lose information


def test_more_bits_smaller_error():
    weight = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    errors = [(quantise_dequantise(weight, b) - weight).abs().mean().item() for b in (2, 4, 8)]
    assert errors[0] > errors[1] > errors[2]


def test_exact_values_survive_and_zero_rows():
    weight = torch.tensor([[-1.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.0, 0.0], [7.0, -7.0, 3.5, 0.0]])
    codes, scales = quantise_per_channel(weight, 2)  # q_max = 1: codes in {-1, 0, 1}
    assert codes.tolist() == [[-1, 0, 0, 1], [0, 0, 0, 0], [1, -1, 0, 0]]  # round half to even: 0.5 -> 0
    assert scales[1, 0] == 1.0
    assert torch.equal(quantise_dequantise(torch.tensor([[2.0, -1.0, 0.0]]), 8)[0, :1], torch.tensor([2.0]))


def test_per_channel_beats_one_scale_for_uneven_rows():
    weight = torch.cat([torch.randn(1, 50) * 10, torch.randn(1, 50) * 0.01])
    per_row = (quantise_dequantise(weight, 4) - weight)[1].abs().max()
    one_scale = (dequantise(*quantise_per_channel(weight.reshape(1, -1), 4)).reshape(2, 50) - weight)[1].abs().max()
    assert per_row < one_scale / 10


def test_quantised_copy_and_memory():
    model = make_model()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    q4 = quantised_copy(model, 4)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, original[name])  # the original is unchanged
    changed = [n for n, p in q4.named_parameters() if not torch.equal(p, dict(model.named_parameters())[n])]
    assert changed and all(dict(q4.named_parameters())[n].dim() == 2 for n in changed)
    assert q4.lm_head.weight is q4.token_embedding.weight  # tying survives
    n_codes = sum(len(torch.unique(p[0])) for p in q4.parameters() if p.dim() == 2)
    assert n_codes <= 15 * sum(1 for p in q4.parameters() if p.dim() == 2)
    full = quantised_weight_bytes(model, None)
    assert full == 4 * sum(p.numel() for p in model.parameters())
    matrices = [p for p in model.parameters() if p.dim() == 2]
    vectors = sum(p.numel() for p in model.parameters() if p.dim() == 1)
    expected8 = sum(p.numel() + 2 * p.shape[0] for p in matrices) + 4 * vectors  # fp16 scales by default
    assert quantised_weight_bytes(model, 8) == expected8
    rows = sum(p.shape[0] for p in matrices)
    assert quantised_weight_bytes(model, 8, scale_bytes=4) == expected8 + 2 * rows  # float32 scales
    assert quantised_weight_bytes(model, 4) < quantised_weight_bytes(model, 8) < full


def test_quantisation_bad_input():
    with pytest.raises(ValueError, match="between 2 and 8"):
        quantise_per_channel(torch.ones(2, 2), 16)
    with pytest.raises(ValueError, match=">= 2"):
        quantise_per_channel(torch.ones(2, 2), 1)
    with pytest.raises(TypeError, match="integer"):
        quantise_per_channel(torch.ones(2, 2), 4.0)
    with pytest.raises(ValueError, match="2-D"):
        quantise_per_channel(torch.ones(4), 4)
    with pytest.raises(TypeError, match="floating point"):
        quantise_per_channel(torch.ones(2, 2, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="NaN"):
        quantise_per_channel(torch.tensor([[1.0, float("nan")]]), 4)
    with pytest.raises(ValueError, match="integer tensor"):
        dequantise(torch.ones(2, 2), torch.ones(2, 1))
    with pytest.raises(ValueError, match=r"\(2, 1\)"):
        dequantise(torch.ones(2, 2, dtype=torch.int8), torch.ones(2))
    with pytest.raises(TypeError, match="Module"):
        quantised_copy("model", 4)
    with pytest.raises(TypeError, match="Module"):
        quantised_weight_bytes("model", 4)
    with pytest.raises(ValueError, match="scale_bytes"):
        quantised_weight_bytes(make_model(), 4, scale_bytes=0)
