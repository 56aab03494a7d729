"""Weight quantisation (量化): storing a model's weights as small integers (chapter 11, section 11.2).

- :func:`quantise_per_channel` stores each row of a weight matrix as ``bits``-bit integers and one scale per row;
  :func:`dequantise` turns them back into floats, and :func:`quantise_dequantise` does both.
- :func:`quantised_copy` applies this to every weight matrix of a model ("fake" quantisation: the copy computes
  in float32 with the rounded weights), and :func:`quantised_weight_bytes` counts the memory real storage needs.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from llmbook.utils import check_int

__all__ = ["quantise_per_channel", "dequantise", "quantise_dequantise", "quantised_copy", "quantised_weight_bytes"]


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
