import pytest
import torch

from llmbook.transformer import (
    GPT,
    POSITIONAL_KINDS,
    GPTConfig,
    MultiHeadAttention,
    TransformerBlock,
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


def _gpt(positional, n_layers=1):
    # PyTorch's initialisation, so that logits are large enough for position effects to stand out of rounding
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=11, n_ctx=8, d_model=16, n_layers=n_layers, n_heads=2, positional=positional,
                       init="pytorch", tie_weights=False)
    return GPT(config).eval()


def _last_logits_after_shuffling_the_prefix(model):
    """Logits at the last position for a sequence and for the same sequence with its first 7 tokens permuted."""
    torch.manual_seed(1)
    ids = torch.randperm(11)[:8][None]  # 8 distinct tokens, so that every permutation changes the sequence
    shuffled = ids[:, [3, 0, 6, 1, 5, 2, 4, 7]]  # the last token stays in place
    with torch.no_grad():
        return model(ids)[0][0], model(shuffled)[0][0]


def test_without_positions_one_causal_layer_sees_the_prefix_as_a_bag_of_tokens():
    # Causal attention without positions: position t attends to the *set* of tokens 0..t, so its output does not
    # change when the earlier tokens are reordered. (It is not equivariant: each earlier position sees another
    # prefix once the tokens move, so their outputs change.)
    original, shuffled = _last_logits_after_shuffling_the_prefix(_gpt("none"))
    assert original.shape == (8, 11)
    assert torch.allclose(original[-1], shuffled[-1], atol=1e-5)
    assert not torch.allclose(original[:-1], shuffled[:-1], atol=1e-2)


def test_without_positions_a_second_causal_layer_recovers_order():
    # With two layers the invariance is gone: the first layer's outputs at earlier positions depend on how many
    # tokens each one saw, so the causal mask itself tells the model about order (Haviv et al., 2022).
    original, shuffled = _last_logits_after_shuffling_the_prefix(_gpt("none", n_layers=2))
    assert (original[-1] - shuffled[-1]).abs().max() > 1e-2


@pytest.mark.parametrize("positional", [kind for kind in POSITIONAL_KINDS if kind != "none"])
def test_with_positions_reordering_the_prefix_changes_the_last_output(positional):
    original, shuffled = _last_logits_after_shuffling_the_prefix(_gpt(positional))
    assert (original[-1] - shuffled[-1]).abs().max() > 1e-2


def test_without_positions_a_non_causal_stack_is_permutation_equivariant():
    # Without a causal mask and without positions, attention, layer norm and the feed-forward layer all treat the
    # positions as a set: permuting the input permutes the output, through a whole stack of blocks.
    blocks = torch.nn.Sequential(*(TransformerBlock(16, 4, causal=False) for _ in range(2))).eval()
    x = torch.randn(2, 7, 16)
    perm = torch.tensor([4, 0, 6, 2, 1, 5, 3])
    with torch.no_grad():
        assert torch.allclose(blocks(x)[:, perm], blocks(x[:, perm]), atol=1e-5)
        causal = torch.nn.Sequential(*(TransformerBlock(16, 4, causal=True) for _ in range(2))).eval()
        assert not torch.allclose(causal(x)[:, perm], causal(x[:, perm]), atol=1e-3)


@pytest.mark.parametrize("positional", POSITIONAL_KINDS)
def test_a_repeated_token_gives_the_same_output_everywhere_only_without_positions(positional):
    # Every position of "7 7 7 7 7 7 7 7" sees the same set of tokens, at any depth; only position information can
    # tell the positions apart.
    model = _gpt(positional, n_layers=2)
    with torch.no_grad():
        logits = model(torch.full((1, 8), 7))[0][0]
    spread = (logits - logits[0]).abs().max()
    assert spread < 1e-5 if positional == "none" else spread > 1e-2


@pytest.mark.parametrize("positional", [kind for kind in POSITIONAL_KINDS if kind != "none"])
def test_each_position_encoding_changes_the_output(positional):
    # The same weights with and without position information: only the positions differ.
    model = _gpt(positional, n_layers=2)
    plain = _gpt("none", n_layers=2)
    missing, _ = plain.load_state_dict(model.state_dict(), strict=False)
    assert missing == []  # every weight of the plain model comes from the model with positions
    ids = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    with torch.no_grad():
        with_positions, without = model(ids)[0], plain(ids)[0]
        assert (with_positions - without).abs().max() > 1e-2
        if positional == "learned":  # a zero table of learned positions is the same as no positions
            model.position_embedding.weight.zero_()
            assert torch.allclose(model(ids)[0], without, atol=1e-5)


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


def _normal_recipe(module):
    # GPT-2's initialisation written out: N(0, 0.02) for every Linear and Embedding weight, zero biases.
    if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
        torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if getattr(module, "bias", None) is not None:
            torch.nn.init.zeros_(module.bias)


@pytest.mark.parametrize("tie", [True, False])
def test_default_init_is_the_normal_recipe_bit_for_bit(tie):
    sizes = dict(vocab_size=11, n_ctx=8, d_model=16, n_layers=2, n_heads=2, tie_weights=tie)
    torch.manual_seed(0)
    model = GPT(GPTConfig(**sizes))
    assert model.config.init == "normal"
    torch.manual_seed(0)  # the same layers, built the same way, then the recipe applied by hand
    reference = GPT(GPTConfig(**sizes, init="pytorch")).apply(_normal_recipe)
    for (name, value), (ref_name, ref_value) in zip(model.state_dict().items(), reference.state_dict().items(),
                                                    strict=True):
        assert name == ref_name and torch.equal(value, ref_value), name


def test_default_init_is_unchanged_from_before_the_init_option():
    # Values recorded with the code before GPTConfig had an `init` field (seed 0): chapters 5 and 7-11 and the
    # shipped checkpoint rely on the default model being exactly what it was.
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, n_ctx=8, d_model=16, n_layers=2, n_heads=2))
    expected_embedding = [-0.010746370069682598, -0.03829989209771156, -0.030253976583480835, 0.03377942368388176]
    expected_down = [-0.03041989542543888, -0.03940747305750847, 0.0017147798789665103, -0.01618984341621399]
    assert torch.allclose(model.token_embedding.weight[0, :4], torch.tensor(expected_embedding), atol=1e-7)
    assert torch.allclose(model.blocks[1].ffn.down.weight[0, :4], torch.tensor(expected_down), atol=1e-7)
    total = sum((p.double() ** 2).sum().item() for p in model.parameters())
    assert total == pytest.approx(82.62421160280154, rel=1e-6)


def test_pytorch_init_keeps_the_layers_defaults():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, n_ctx=64, d_model=64, n_layers=2, n_heads=4, init="pytorch",
                          tie_weights=False))
    assert abs(model.token_embedding.weight.std().item() - 1.0) < 0.05  # nn.Embedding: N(0, 1)
    assert abs(model.position_embedding.weight.std().item() - 1.0) < 0.05
    up = model.blocks[0].ffn.up  # nn.Linear: uniform in +-1/sqrt(fan_in), fan_in = 64
    bound = 1 / 64 ** 0.5
    assert up.weight.abs().max().item() <= bound and up.weight.abs().max().item() > 0.9 * bound
    assert up.bias.abs().max().item() <= bound and up.bias.abs().max().item() > 0
    assert abs(model.lm_head.weight.std().item() - bound / 3 ** 0.5) < 0.01  # std of U(-b, b) is b / sqrt(3)
    assert torch.equal(model.final_norm.weight, torch.ones(64))
    assert torch.equal(model.final_norm.bias, torch.zeros(64))
    normal = GPT(GPTConfig(vocab_size=50, n_ctx=64, d_model=64, n_layers=2, n_heads=4))
    assert abs(normal.token_embedding.weight.std().item() - 0.02) < 0.002


def test_pytorch_init_with_tied_weights_outputs_the_unit_normal_embedding():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, n_ctx=16, d_model=64, n_layers=1, n_heads=4, init="pytorch"))
    assert model.lm_head.weight is model.token_embedding.weight
    logits, _ = model(torch.randint(0, 50, (4, 16)))
    assert logits.std().item() > 4  # about sqrt(d_model) = 8: far from uniform predictions


def test_init_must_be_a_known_kind():
    with pytest.raises(ValueError, match=r"init must be one of \('normal', 'pytorch'\), got 'xavier'"):
        GPTConfig(vocab_size=5, init="xavier")
