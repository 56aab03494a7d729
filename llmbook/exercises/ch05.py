"""Chapter 5's coding exercise: attention with RoPE (``ex-05-rope``)."""

from __future__ import annotations

import inspect

import torch

from llmbook.exercises.record import Exercise, Wrong, call_answer, need_callable

__all__ = ["check_rope", "RECORDS"]


def _attention_inputs(seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 6, 8, generator=g) for _ in range(3)]


def check_rope(answer, **_) -> str:
    """ex-05-rope: ``answer(queries, keys, values, mask)`` (optionally ``offset=``) returns (outputs, weights)
    of attention with RoPE applied to the queries and the keys."""
    from llmbook.transformer import apply_rope, causal_mask
    from llmbook.transformer import scaled_dot_product_attention as sdpa

    need_callable(answer, "rope_attention(queries, keys, values, mask)")
    q, k, v = _attention_inputs()
    mask = causal_mask(6)
    got = call_answer(answer, q.clone(), k.clone(), v.clone(), mask)
    if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(t, torch.Tensor) for t in got)):
        raise Wrong("return (outputs, weights), two tensors, as scaled_dot_product_attention does")
    outputs, weights = got
    if tuple(outputs.shape) != (2, 6, 8) or tuple(weights.shape) != (2, 6, 6):
        raise Wrong(f"for inputs of shape (2, 6, 8) expected outputs (2, 6, 8) and weights (2, 6, 6), got "
                    f"{tuple(outputs.shape)} and {tuple(weights.shape)}")
    ref_out, ref_w = sdpa(apply_rope(q), apply_rope(k), v, mask)
    close = dict(atol=1e-5, rtol=1e-4)
    if not torch.allclose(weights, ref_w, **close):
        if torch.allclose(weights, sdpa(q, k, v, mask)[1], **close):
            raise Wrong("your weights are those of attention without positions: rotate before the scores")
        if torch.allclose(weights, sdpa(apply_rope(q), k, v, mask)[1], **close) or \
                torch.allclose(weights, sdpa(q, apply_rope(k), v, mask)[1], **close):
            raise Wrong("only one of queries and keys is rotated; RoPE needs both, so that the score depends "
                        "on the offset between positions")
        if torch.allclose(weights, sdpa(apply_rope(q), apply_rope(k), v)[1], **close):
            raise Wrong("the mask is not used: later positions get weight")
        if not torch.allclose(weights.sum(-1), torch.ones(2, 6), atol=1e-4):
            raise Wrong("the rows of your weights do not sum to 1: apply the mask to the scores, before the "
                        "softmax")
        if (weights.triu(1).abs() > 1e-6).any():
            raise Wrong("some weights above the diagonal are not zero: apply the mask before the softmax")
        raise Wrong("the attention weights differ from RoPE attention's")
    if not torch.allclose(outputs, ref_out, **close):
        if torch.allclose(outputs, ref_w @ apply_rope(v), **close):
            raise Wrong("the values are rotated too; RoPE rotates only the queries and the keys")
        raise Wrong("the weights are right but the outputs are not: they should be weights @ values")
    if "offset" in inspect.signature(answer).parameters:
        shifted = call_answer(answer, q, k, v, mask, offset=7)
        if not torch.allclose(shifted[1], ref_w, **close):
            raise Wrong("with offset=7 the weights change: pass the offset to apply_rope for both queries and keys")
    return "outputs and weights agree with RoPE attention."


#: The chapter's exercise records.
RECORDS = (
    Exercise(label="ex-05-rope", answer="rope_attention", check=check_rope,
             signature="rope_attention(queries, keys, values, mask)",
             wrong=("rope_attention = lambda queries, keys, values, mask=None, offset=0: "
                    "scaled_dot_product_attention(queries, keys, values, mask)  # no rotation")),
)
