import re

import pytest
import torch

from llmbook.architectures import (
    CrossAttention,
    DecoderBlock,
    EncoderDecoder,
    EncoderDecoderConfig,
    MaskedLM,
    MixtureOfExperts,
    attention_mask,
    mask_tokens,
    moe_params,
)
from llmbook.params import BERT_SIZES, GPT2_SIZES, bert_params, gpt2_params
from llmbook.training import IGNORE_INDEX, train_on_batches
from llmbook.transformer import GPT, FeedForward, GPTConfig, scaled_dot_product_attention
from llmbook.utils import count_parameters


def small_config(**changes):
    settings = {"vocab_size": 11, "n_ctx": 8, "d_model": 16, "n_layers": 2, "n_heads": 2}
    settings.update(changes)
    return GPTConfig(**settings)


# ---------------------------------------------------------------------------------------------------- masks


def test_masks_of_the_three_kinds():
    assert attention_mask("bidirectional", 3).all()
    assert torch.equal(attention_mask("causal", 3), torch.ones(3, 3, dtype=torch.bool).tril())
    cross = attention_mask("cross", 4, 6)
    assert cross.shape == (4, 6) and cross.all()


@pytest.mark.parametrize("args, error, message", [
    (("sideways", 3), ValueError, "kind must be 'bidirectional', 'causal' or 'cross', got 'sideways'"),
    (("causal", 3, 4), ValueError, "a causal mask is square, got n_queries=3 and n_keys=4"),
    (("causal", 0), ValueError, "n_queries must be >= 1, got 0"),
    (("cross", 2.5), TypeError, "n_queries must be an integer, got float 2.5"),
])
def test_attention_mask_rejects_bad_input(args, error, message):
    with pytest.raises(error, match=re.escape(message)):
        attention_mask(*args)


# ---------------------------------------------------------------------------------------------------- masked LM


def test_masked_lm_is_a_gpt_without_the_causal_mask():
    torch.manual_seed(0)
    gpt = GPT(small_config())
    torch.manual_seed(0)
    mlm = MaskedLM(small_config())
    assert count_parameters(mlm) == count_parameters(gpt)
    assert list(mlm.state_dict()) == list(gpt.state_dict())
    ids = torch.randint(11, (1, 8))
    edited = ids.clone()
    edited[0, -1] = (edited[0, -1] + 1) % 11  # change the last token only
    # the GPT's first position cannot see the change; the masked LM's can
    assert torch.allclose(gpt(ids)[0][0, 0], gpt(edited)[0][0, 0])
    assert not torch.allclose(mlm(ids)[0][0, 0], mlm(edited)[0][0, 0])


@pytest.mark.parametrize("attention", ["scratch", "builtin"])
def test_masked_lm_is_bidirectional_on_both_attention_paths(attention):
    mlm = MaskedLM(small_config(attention=attention))
    ids = torch.randint(11, (2, 8))
    edited = ids.clone()
    edited[:, 5] = (edited[:, 5] + 1) % 11
    assert not torch.allclose(mlm(ids)[0][:, 0], mlm(edited)[0][:, 0])


def test_masked_lm_loss_counts_only_the_chosen_positions():
    mlm = MaskedLM(small_config())
    ids = torch.randint(10, (2, 8))
    targets = torch.full_like(ids, IGNORE_INDEX)
    targets[0, 3], targets[1, 6] = ids[0, 3], ids[1, 6]
    logits, loss = mlm(ids, targets)
    expected = torch.nn.functional.cross_entropy(torch.stack([logits[0, 3], logits[1, 6]]),
                                                 torch.stack([ids[0, 3], ids[1, 6]]))
    assert torch.allclose(loss, expected)


def test_mask_tokens_follows_bert_80_10_10():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 50, (400, 250), generator=generator)  # 100,000 tokens, none equal to the mask id 0
    inputs, targets = mask_tokens(ids, mask_id=0, vocab_size=50, rate=0.15, generator=generator)
    chosen = targets != IGNORE_INDEX
    assert abs(chosen.float().mean().item() - 0.15) < 0.005
    assert torch.equal(targets[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])  # unchosen positions are left alone
    masked = (inputs == 0) & chosen
    kept = (inputs == ids) & chosen
    replaced = chosen & ~masked & ~kept
    n = chosen.sum().item()
    assert abs(masked.sum().item() / n - 0.8) < 0.02
    # a random replacement can draw the original token (1 time in 49), so "kept" is slightly above 10 %
    assert abs(kept.sum().item() / n - (0.1 + 0.1 / 49)) < 0.015
    assert abs(replaced.sum().item() / n - (0.1 - 0.1 / 49)) < 0.015
    assert not (inputs[replaced] == 0).any()  # a random replacement is never the mask id
    assert ids.min() >= 1  # the input tensor is not modified


def test_mask_tokens_edge_rates_and_determinism():
    ids = torch.randint(5, (4, 10))
    inputs, targets = mask_tokens(ids, mask_id=5, vocab_size=6, rate=0.0)
    assert torch.equal(inputs, ids) and (targets == IGNORE_INDEX).all()
    _, targets = mask_tokens(ids, mask_id=5, vocab_size=6, rate=1.0)
    assert torch.equal(targets, ids)
    first = mask_tokens(ids, 5, 6, generator=torch.Generator().manual_seed(3))
    second = mask_tokens(ids, 5, 6, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"token_ids": [1, 2, 3]}, TypeError, "token_ids must be a tensor of integer token ids, got list"),
    ({"token_ids": torch.ones(3)}, TypeError, "token_ids must be a tensor of integer token ids, got Tensor of dtype"),
    ({"mask_id": 6}, ValueError, "mask_id must be one of the vocab_size=6 ids, got 6"),
    ({"mask_id": -1}, ValueError, "mask_id must be >= 0, got -1"),
    ({"rate": 1.5}, ValueError, "rate must be in [0, 1], got 1.5"),
    ({"vocab_size": 1}, ValueError, "vocab_size must be >= 2, got 1"),
    ({"token_ids": torch.tensor([[0, 9]])}, ValueError, "token ids must lie in [0, 6), got values from 0 to 9"),
])
def test_mask_tokens_rejects_bad_input(kwargs, error, message):
    arguments = {"token_ids": torch.tensor([[0, 1, 2]]), "mask_id": 5, "vocab_size": 6, "rate": 0.15}
    arguments.update(kwargs)
    with pytest.raises(error, match=re.escape(message)):
        mask_tokens(**arguments)


# ---------------------------------------------------------------------------------------------------- cross-attention


def test_cross_attention_equals_the_formula_written_out():
    torch.manual_seed(0)
    cross = CrossAttention(d_model=8, n_heads=2)
    x, memory = torch.randn(1, 3, 8), torch.randn(1, 5, 8)
    out = cross(x, memory, keep_weights=True)
    queries = cross.query(x)
    keys, values = cross.key_value(memory).split(8, dim=-1)
    heads = [scaled_dot_product_attention(queries[..., h * 4:(h + 1) * 4], keys[..., h * 4:(h + 1) * 4],
                                          values[..., h * 4:(h + 1) * 4])[0] for h in range(2)]
    assert torch.allclose(out, cross.out(torch.cat(heads, dim=-1)), atol=1e-6)
    assert cross.last_weights.shape == (1, 2, 3, 5)
    assert torch.allclose(cross.last_weights.sum(-1), torch.ones(1, 2, 3))
    cross(x, memory)
    assert cross.last_weights is None


def test_cross_attention_reads_every_source_position():
    torch.manual_seed(0)
    cross = CrossAttention(d_model=8, n_heads=2)
    x, memory = torch.randn(1, 3, 8), torch.randn(1, 5, 8)
    changed = memory.clone()
    changed[0, -1] += 1.0
    assert not torch.allclose(cross(x, memory)[0, 0], cross(x, changed)[0, 0])


@pytest.mark.parametrize("x, memory, message", [
    (torch.randn(1, 3, 6), torch.randn(1, 5, 8), "x must have shape (batch, time, 8), got (1, 3, 6)"),
    (torch.randn(1, 3, 8), torch.randn(1, 5, 6), "memory must have shape (batch, time, 8), got (1, 5, 6)"),
    (torch.randn(3, 8), torch.randn(1, 5, 8), "x must have shape (batch, time, 8), got (3, 8)"),
    (torch.randn(2, 3, 8), torch.randn(1, 5, 8), "x and memory must have the same batch size, got 2 and 1"),
])
def test_cross_attention_rejects_bad_shapes(x, memory, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CrossAttention(8, 2)(x, memory)


def test_cross_attention_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divide"):
        CrossAttention(10, 3)
    with pytest.raises(TypeError, match="d_model must be an integer, got float 8.0"):
        CrossAttention(8.0, 2)


def test_decoder_block_is_causal_in_the_target():
    torch.manual_seed(0)
    block = DecoderBlock(d_model=8, n_heads=2)
    x, memory = torch.randn(1, 4, 8), torch.randn(1, 5, 8)
    changed = x.clone()
    changed[0, 3] += 1.0
    before, after = block(x, memory), block(changed, memory)
    assert torch.allclose(before[0, :3], after[0, :3], atol=1e-6)
    assert not torch.allclose(before[0, 3], after[0, 3])


# ---------------------------------------------------------------------------------------------------- encoder-decoder


def seq2seq_config(**changes):
    settings = {"vocab_size": 12, "n_ctx_source": 6, "n_ctx_target": 7, "d_model": 16, "n_encoder_layers": 1,
                "n_decoder_layers": 1, "n_heads": 2}
    settings.update(changes)
    return EncoderDecoderConfig(**settings)


def test_encoder_decoder_shapes_loss_and_weights():
    torch.manual_seed(0)
    model = EncoderDecoder(seq2seq_config())
    source, target = torch.randint(12, (3, 6)), torch.randint(12, (3, 5))
    targets = target.clone()
    targets[:, -1] = IGNORE_INDEX  # padding
    logits, loss = model(source, target, targets, keep_weights=True)
    assert logits.shape == (3, 5, 12)
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 12), target[:, :-1].reshape(-1))
    assert torch.allclose(loss, expected)
    (weights,) = model.cross_attention_weights()
    assert weights.shape == (3, 2, 5, 6)
    assert model.lm_head.weight is model.token_embedding.weight


def test_encoder_decoder_learns_to_copy():
    torch.manual_seed(0)
    model = EncoderDecoder(seq2seq_config(d_model=32))
    generator = torch.Generator().manual_seed(0)
    bos, eos = 10, 11

    def batch():
        source = torch.randint(10, (32, 4), generator=generator)
        target_in = torch.cat([torch.full((32, 1), bos), source], dim=1)
        targets = torch.cat([source, torch.full((32, 1), eos)], dim=1)
        return source, target_in, targets

    history = train_on_batches(model, batch, steps=150, lr=1e-2, warmup_steps=10)
    assert history["train_loss"][-1] < 0.3 * history["train_loss"][0]
    source = torch.randint(10, (20, 4), generator=generator)
    outputs = model.greedy_generate(source, bos, eos)
    accuracy = sum(out == row for out, row in zip(outputs, source.tolist(), strict=True)) / 20
    assert accuracy >= 0.8


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m(torch.randint(12, (2, 7)), torch.randint(12, (2, 3))), ValueError,
     "source_ids has length 7, which exceeds the context size 6"),
    (lambda m: m(torch.randint(12, (2, 4)), torch.randint(12, (2, 8))), ValueError,
     "target_ids has length 8, which exceeds the context size 7"),
    (lambda m: m(torch.randint(12, (2, 4)), torch.randint(12, (3, 3))), ValueError,
     "source_ids and target_ids must have the same batch size, got 2 and 3"),
    (lambda m: m(torch.randint(12, (2, 4)).float(), torch.randint(12, (2, 3))), TypeError,
     "source_ids must hold integers (token ids), got dtype torch.float32"),
    (lambda m: m(torch.randint(12, (4,)), torch.randint(12, (2, 3))), ValueError,
     "source_ids must be a (batch, time) tensor of token ids, got shape (4,)"),
    (lambda m: m(torch.full((1, 4), 12), torch.randint(12, (1, 3))), ValueError,
     "token ids must lie in [0, 12), got values from 12 to 12 in source_ids"),
    (lambda m: m(torch.randint(12, (2, 4)), torch.randint(12, (2, 3)), torch.zeros(2, 4).long()), ValueError,
     "targets must have the shape of target_ids (2, 3), got (2, 4)"),
    (lambda m: m.greedy_generate(torch.randint(12, (1, 4)), bos_id=12, eos_id=0), ValueError,
     "bos_id must be below vocab_size=12, got 12"),
    (lambda m: m.greedy_generate(torch.randint(12, (1, 4)), 0, 1, max_new_tokens=7), ValueError,
     "max_new_tokens must be at most n_ctx_target - 1 = 6, got 7"),
])
def test_encoder_decoder_rejects_bad_input(call, error, message):
    model = EncoderDecoder(seq2seq_config())
    with pytest.raises(error, match=re.escape(message)):
        call(model)


@pytest.mark.parametrize("changes, error, message", [
    ({"d_model": 15}, ValueError, "n_heads must divide d_model, got d_model=15 and n_heads=2"),
    ({"vocab_size": 0}, ValueError, "vocab_size must be >= 1, got 0"),
    ({"n_decoder_layers": -1}, ValueError, "n_decoder_layers must be >= 0, got -1"),
    ({"d_ff": 0}, ValueError, "d_ff must be >= 1, got 0"),
])
def test_encoder_decoder_config_rejects_bad_sizes(changes, error, message):
    with pytest.raises(error, match=re.escape(message)):
        seq2seq_config(**changes)
    with pytest.raises(TypeError, match="config must be an EncoderDecoderConfig, got GPTConfig"):
        EncoderDecoder(small_config())


# ---------------------------------------------------------------------------------------------------- training loop


def test_train_on_batches_reports_and_lowers_the_loss(capsys):
    torch.manual_seed(0)
    model = GPT(small_config())
    data = torch.arange(8).repeat(2, 1) % 11  # the same easy sequence every time

    history = train_on_batches(model, lambda: (data[:, :-1], data[:, 1:]), steps=40, lr=1e-2, warmup_steps=5,
                               report_every=20, label="toy ")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [line for line in lines if line.startswith("toy step")] and len(lines) == 2
    assert history["train_loss"][-1] < history["train_loss"][0] / 2
    assert model.training  # the mode it was in before the call


@pytest.mark.parametrize("kwargs, error, message", [
    ({"model": "gpt"}, TypeError, "model must be a torch.nn.Module, got str"),
    ({"next_batch": 3}, TypeError, "next_batch must be a function that returns a tuple of model inputs"),
    ({"steps": 0}, ValueError, "steps must be >= 1, got 0"),
    ({"lr": -1.0}, ValueError, "lr must be a finite number > 0, got -1.0"),
    ({"report_every": 0}, ValueError, "report_every must be >= 1, got 0"),
])
def test_train_on_batches_rejects_bad_input(kwargs, error, message):
    arguments = {"model": GPT(small_config()), "next_batch": lambda: None, "steps": 1, "lr": 1e-3}
    arguments.update(kwargs)
    with pytest.raises(error, match=re.escape(message)):
        train_on_batches(**arguments)


# ------------------------------------------------------------------------------------------------ mixture of experts


def test_one_expert_is_a_feed_forward_layer():  # its routing probability is always 1
    torch.manual_seed(0)
    moe = MixtureOfExperts(d_model=8, n_experts=1, top_k=1)
    x = torch.randn(2, 3, 8)
    assert torch.allclose(moe(x), moe.experts[0](x), atol=1e-6)
    assert moe.last_counts.tolist() == [6]


def test_all_experts_is_a_softmax_weighted_sum():
    torch.manual_seed(0)
    moe = MixtureOfExperts(d_model=8, n_experts=3, top_k=3)
    x = torch.randn(2, 5, 8)
    gates = torch.softmax(moe.router(x), dim=-1)  # (B, T, n_experts)
    dense = sum(gates[..., e:e + 1] * expert(x) for e, expert in enumerate(moe.experts))
    assert torch.allclose(moe(x), dense, atol=1e-5)


def test_top_1_routing_uses_one_expert_per_token():
    torch.manual_seed(0)
    moe = MixtureOfExperts(d_model=8, n_experts=4, top_k=1)
    x = torch.randn(3, 7, 8)
    out = moe(x)
    probs = torch.softmax(moe.router(x), dim=-1).reshape(-1, 4)
    chosen = probs.argmax(-1)
    expected = torch.stack([probs[i, e] * moe.experts[int(e)](token)
                            for i, (token, e) in enumerate(zip(x.reshape(-1, 8), chosen, strict=True))])
    assert torch.allclose(out.reshape(-1, 8), expected, atol=1e-6)
    assert moe.last_counts.sum().item() == 21
    out.sum().backward()
    assert moe.router.weight.grad is not None and moe.router.weight.grad.abs().sum() > 0


def test_kept_gates_shrink_the_output_unless_renormalised():
    torch.manual_seed(0)
    plain = MixtureOfExperts(d_model=8, n_experts=6, top_k=2)
    renormalised = MixtureOfExperts(d_model=8, n_experts=6, top_k=2, renormalise=True)
    renormalised.load_state_dict(plain.state_dict())  # the same router and experts
    x = torch.randn(4, 5, 8)
    out, out_renormalised = plain(x), renormalised(x)
    sums = plain.last_gates.sum(-1)  # (20,): the kept routing probabilities of each token
    assert torch.all(sums < 1) and torch.allclose(renormalised.last_gates.sum(-1), torch.ones(20))
    assert torch.equal(plain.last_counts, renormalised.last_counts)  # the same experts are chosen
    # renormalising divides each token's output by the sum of its kept gates
    assert torch.allclose(out.reshape(-1, 8), out_renormalised.reshape(-1, 8) * sums[:, None], atol=1e-6)


def test_renormalised_gates_are_a_softmax_over_the_chosen_scores():
    torch.manual_seed(1)
    moe = MixtureOfExperts(d_model=8, n_experts=5, top_k=3, renormalise=True)
    x = torch.randn(2, 4, 8)
    moe(x)
    scores = moe.router(x).reshape(-1, 5)
    top_scores = scores.topk(3, dim=-1).values
    assert torch.allclose(moe.last_gates, torch.softmax(top_scores, dim=-1), atol=1e-6)


def test_renormalised_top_1_gives_the_router_no_gradient():  # why the Switch Transformer keeps p as the gate
    torch.manual_seed(0)
    x = torch.randn(3, 7, 8)
    gradients = {}
    for renormalise in (False, True):
        torch.manual_seed(0)
        moe = MixtureOfExperts(d_model=8, n_experts=4, top_k=1, renormalise=renormalise)
        moe(x).sum().backward()
        gradients[renormalise] = moe.router.weight.grad.abs().max().item()
    assert torch.allclose(moe.last_gates, torch.ones(21, 1))
    assert gradients[False] > 1e-3 and gradients[True] < 1e-6  # p / p: only rounding is left


def test_moe_parameter_formula():
    moe = MixtureOfExperts(d_model=16, n_experts=8, top_k=2)
    counts = moe_params(16, 8, 2)
    assert counts["total"] == count_parameters(moe)
    assert counts["expert"] == count_parameters(FeedForward(16))
    assert counts["active"] == counts["router"] + 2 * counts["expert"]


@pytest.mark.parametrize("args, error, message", [
    ((8, 2, 3), ValueError, "top_k must be at most n_experts=2, got 3"),
    ((8, 0), ValueError, "n_experts must be >= 1, got 0"),
    ((8, 2, 0), ValueError, "top_k must be >= 1, got 0"),
    ((8.0, 2), TypeError, "d_model must be an integer, got float 8.0"),
])
def test_moe_rejects_bad_sizes(args, error, message):
    with pytest.raises(error, match=re.escape(message)):
        MixtureOfExperts(*args)
    with pytest.raises(error, match=re.escape(message)):
        moe_params(*args)


def test_moe_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        MixtureOfExperts(8, 2)(torch.randn(3, 8))
    with pytest.raises(TypeError, match="renormalise must be True or False"):
        MixtureOfExperts(8, 2, renormalise="yes")


# ---------------------------------------------------------------------------------------------------- sizes


def test_published_sizes_by_formula():
    assert gpt2_params(12, 768) == 124_439_808  # the corrected "124M" of openai/gpt-2
    assert round(gpt2_params(48, 1600) / 1e9, 2) == 1.56
    assert round(bert_params(12, 768) / 1e6) == 109  # the paper's rounded "110M"
    assert round(bert_params(24, 1024) / 1e6) == 335  # the paper's rounded "340M"
    assert bert_params(12, 768, pooler=False) == bert_params(12, 768) - (768 * 768 + 768)
    assert set(BERT_SIZES) == {"BERT-base", "BERT-large"} and len(GPT2_SIZES) == 4


def test_formulas_match_small_pytorch_models():
    config = small_config(vocab_size=23, n_ctx=9, d_model=12, n_layers=3, n_heads=3)
    assert gpt2_params(3, 12, vocab_size=23, n_ctx=9) == count_parameters(GPT(config))


def test_size_formulas_reject_bad_input():
    with pytest.raises(ValueError, match="n_layers must be >= 0, got -1"):
        gpt2_params(-1, 768)
    with pytest.raises(TypeError, match="d_model must be an integer, got float 768.0"):
        bert_params(12, 768.0)
