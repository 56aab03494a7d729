"""Chapter 11's coding exercise: quantisation in groups of weights (``ex-11-groups``)."""

from __future__ import annotations

import torch

from llmbook.exercises.record import Exercise, Wrong, call_answer, need_callable

__all__ = ["check_groups", "RECORDS"]


def check_groups(answer, **_) -> str:
    """ex-11-groups: ``answer(weight, bits, group)`` returns the weight quantised in groups of ``group``
    consecutive weights per row (each group with its own scale) and dequantised, with the weight's shape.
    Tried at three settings (bits, group size, shape), so an answer that ignores ``bits`` or ``group`` fails."""
    from llmbook.quantisation import dequantise, quantise_per_channel

    need_callable(answer, "quantise_groups(weight, bits, group)")
    g = torch.Generator().manual_seed(11)
    for bits, group, (rows, cols) in ((4, 8, (6, 32)), (3, 16, (4, 64)), (4, 64, (3, 256))):
        weight = torch.randn(rows, cols, generator=g)
        weight[0, 3] = 8.0  # one large weight: per-row scales suffer, groups do not
        where = f"with bits={bits}, group={group} and a {rows} x {cols} weight"
        got = call_answer(answer, weight.clone(), bits, group)
        if not isinstance(got, torch.Tensor):
            raise Wrong(f"return the de-quantised weight as a tensor, got {type(got).__name__}")
        if tuple(got.shape) != (rows, cols):
            raise Wrong(f"{where}: return a tensor with the weight's shape, got {tuple(got.shape)}: "
                        "reshape back")
        expected = dequantise(*quantise_per_channel(weight.reshape(-1, group), bits)).reshape(rows, cols)
        if torch.allclose(got, expected, atol=1e-6):
            continue
        if torch.allclose(got, dequantise(*quantise_per_channel(weight, bits)), atol=1e-6):
            raise Wrong(f"{where}: this is per-channel quantisation of whole rows; each group needs its own "
                        "scale")
        by_columns = quantise_per_channel(weight.T.reshape(-1, group), bits)
        if torch.allclose(got, dequantise(*by_columns).reshape(cols, rows).T, atol=1e-6):
            raise Wrong(f"{where}: your groups run down the columns; group consecutive weights of a row")
        raise Wrong(f"{where}: the result differs from grouped quantisation; does it use the bits and the "
                    "group size it is given, and does every group of consecutive weights get its own scale?")
    return "the grouped weights agree with the reference at three settings of bits and group size."


#: The chapter's exercise records.
RECORDS = (
    Exercise(label="ex-11-groups", answer="quantise_groups", check=check_groups,
             signature="quantise_groups(weight, bits, group)",
             wrong=("quantise_groups = lambda weight, bits, group: "
                    "dequantise(*quantise_per_channel(weight, bits))  # whole rows, no groups")),
)
