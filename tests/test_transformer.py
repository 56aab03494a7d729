import pytest
import torch

from llmbook.transformer import (
    GPT,
    GPTConfig,
    MultiHeadAttention,
    causal_mask,
    scaled_dot_product_attention,
    sinusoidal_positions,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_attention_shapes_and_rows_sum_to_one():
    q, k, v = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 3)
    out, w = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 5, 3) and w.shape == (2, 5, 7)
    assert torch.allclose(w.sum(-1), torch.ones(2, 5))


def test_causal_mask_gives_zero_weights_above_diagonal():
    x = torch.randn(1, 6, 4)
    _, w = scaled_dot_product_attention(x, x, x, causal_mask(6))
    assert torch.all(w[0].triu(diagonal=1) == 0)


def test_matches_pytorch_builtin():
    q, k, v = (torch.randn(2, 3, 6, 8) for _ in range(3))
    ours, _ = scaled_dot_product_attention(q, k, v, causal_mask(6))
    theirs = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_editing_a_later_token_leaves_earlier_outputs_unchanged():
    attn = MultiHeadAttention(16, 4, causal=True).eval()
    x = torch.randn(1, 8, 16)
    y = x.clone()
    y[0, 5:] = torch.randn(3, 16)
    assert torch.allclose(attn(x)[0, :5], attn(y)[0, :5], atol=1e-6)
    assert not torch.allclose(attn(x)[0, 5:], attn(y)[0, 5:])


def test_attention_without_positions_is_permutation_equivariant():
    attn = MultiHeadAttention(16, 4, causal=False).eval()
    x = torch.randn(1, 7, 16)
    perm = torch.randperm(7)
    assert torch.allclose(attn(x)[:, perm], attn(x[:, perm]), atol=1e-5)


def test_builtin_and_scratch_attention_agree():
    a = MultiHeadAttention(16, 4, attention="scratch").eval()
    b = MultiHeadAttention(16, 4, attention="builtin").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 9, 16)
    assert torch.allclose(a(x), b(x), atol=1e-5)


def test_sinusoidal_dot_product_depends_only_on_offset():
    pe = sinusoidal_positions(50, 32)
    assert pe.shape == (50, 32)
    assert torch.allclose(pe[3] @ pe[10], pe[20] @ pe[27], atol=1e-4)


def test_gpt_forward_and_loss():
    model = GPT(GPTConfig(vocab_size=11, n_ctx=8, d_model=16, n_layers=2, n_heads=2))
    ids = torch.randint(0, 11, (3, 8))
    logits, loss = model(ids, ids)
    assert logits.shape == (3, 8, 11)
    assert abs(loss.item() - torch.log(torch.tensor(11.0)).item()) < 0.5  # near uniform at initialisation
    model(ids, keep_weights=True)
    assert len(model.attention_weights()) == 2


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "none"])
def test_gpt_position_options(positional):
    model = GPT(GPTConfig(vocab_size=5, n_ctx=4, d_model=8, n_layers=1, n_heads=2, positional=positional))
    assert model(torch.zeros(1, 4, dtype=torch.long))[0].shape == (1, 4, 5)


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="n_heads must divide d_model"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="n_heads must divide d_model"):
        GPTConfig(vocab_size=5, d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="same last dimension d_k"):
        scaled_dot_product_attention(torch.randn(2, 4), torch.randn(2, 5), torch.randn(2, 5))
    with pytest.raises(ValueError, match="same number of positions"):
        scaled_dot_product_attention(torch.randn(2, 4), torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, 16\)"):
        MultiHeadAttention(16, 4)(torch.randn(2, 5, 8))
    model = GPT(GPTConfig(vocab_size=5, n_ctx=4, d_model=8, n_layers=1, n_heads=2))
    with pytest.raises(ValueError, match="exceeds the context size"):
        model(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 5\)"):
        model(torch.full((1, 3), 7))
    with pytest.raises(TypeError, match="hold integers"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="positional must be one of"):
        GPTConfig(vocab_size=5, positional="rotary-ish")
    with pytest.raises(ValueError, match="d_model must be even"):
        sinusoidal_positions(4, 7)


def test_rope_keeps_lengths_and_leaves_position_zero_alone():
    from llmbook.transformer import apply_rope

    x = torch.randn(2, 5, 8)
    rotated = apply_rope(x)
    assert rotated.shape == x.shape
    assert torch.allclose(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.allclose(rotated[:, 0], x[:, 0])


def test_rope_dot_product_depends_only_on_the_offset():
    from llmbook.transformer import apply_rope

    q, k = torch.randn(16), torch.randn(16)
    queries = apply_rope(q.expand(12, 16).clone())  # the same query at positions 0..11
    keys = apply_rope(k.expand(12, 16).clone())
    scores = queries @ keys.T  # scores[m, n] = q_m . k_n
    for offset in range(-3, 4):
        diagonal = torch.diagonal(scores, offset=-offset)  # all pairs with m - n = offset
        assert torch.allclose(diagonal, diagonal[0].expand_as(diagonal), atol=1e-4)
    assert torch.allclose(apply_rope(q.expand(3, 16).clone(), offset=4)[0], queries[4], atol=1e-6)


def test_rope_rejects_bad_arguments():
    from llmbook.transformer import apply_rope, rope_angles

    with pytest.raises(ValueError, match="even"):
        rope_angles(4, 5)
    with pytest.raises(ValueError, match="base must be positive"):
        rope_angles(4, 6, base=0.0)
    with pytest.raises(ValueError, match="shape"):
        apply_rope(torch.randn(4))
    assert rope_angles(3, 4).shape == (3, 2)


@pytest.mark.parametrize("kind", ["scratch", "builtin"])
def test_keep_weights_never_returns_stale_weights_and_never_changes_the_output(kind):
    attn = MultiHeadAttention(16, 4, attention=kind).eval()
    x = torch.randn(2, 6, 16)
    plain = attn(x)
    kept = attn(x, keep_weights=True)
    assert torch.equal(plain, kept)  # keeping the weights must not switch the computation
    weights = attn.last_weights
    assert weights.shape == (2, 4, 6, 6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 6), atol=1e-6)
    assert torch.all(weights.triu(diagonal=1) == 0)
    attn(torch.randn(1, 3, 16))  # a later call without keep_weights forgets them
    assert attn.last_weights is None


def test_both_paths_keep_the_same_weights():
    a = MultiHeadAttention(16, 4, attention="scratch").eval()
    b = MultiHeadAttention(16, 4, attention="builtin").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 5, 16)
    a(x, keep_weights=True)
    b(x, keep_weights=True)
    assert torch.allclose(a.last_weights, b.last_weights, atol=1e-6)


@pytest.mark.parametrize("kind", ["scratch", "builtin"])
def test_attention_dropout_is_active_in_training_only_and_unbiased(kind):
    attn = MultiHeadAttention(8, 2, dropout=0.5, attention=kind)
    x = torch.randn(1, 5, 8)
    reference = attn.eval()(x)
    attn.train()
    torch.manual_seed(1)
    first = attn(x)
    assert not torch.allclose(first, reference, atol=1e-4)  # some weights were dropped
    torch.manual_seed(1)
    assert torch.equal(attn(x), first)  # the same seed drops the same weights
    with torch.no_grad():  # dropped weights are rescaled by 1 / (1 - p): the average matches eval mode
        mean = attn(x.expand(4000, 5, 8)).mean(0)  # 4000 copies, each with its own dropout draws
    assert torch.allclose(mean, reference, atol=0.02)
    attn.dropout.p = 1.0  # every weight dropped: the heads output zeros and only the output bias is left
    assert torch.allclose(attn(x), attn.out.bias.expand(1, 5, 8), atol=1e-6)


@pytest.mark.parametrize("kind", ["scratch", "builtin"])
def test_gpt_is_causal_changing_token_t_changes_no_earlier_logit(kind):
    model = GPT(GPTConfig(vocab_size=13, n_ctx=10, d_model=16, n_layers=2, n_heads=2, attention=kind)).eval()
    ids = torch.randint(0, 13, (1, 10))
    logits, _ = model(ids)
    for t in (0, 4, 9):
        changed = ids.clone()
        changed[0, t] = (changed[0, t] + 1) % 13
        new_logits, _ = model(changed)
        assert torch.allclose(new_logits[0, :t], logits[0, :t], atol=1e-5)
        assert not torch.allclose(new_logits[0, t], logits[0, t], atol=1e-5)
