import pytest
import torch
from torch import nn

from llmbook.lora import (
    LoRALinear,
    add_lora,
    lora_layers,
    lora_parameter_count,
    merge_lora,
    remove_lora,
    set_lora_enabled,
    unmerge_lora,
)
from llmbook.transformer import GPT, GPTConfig
from llmbook.utils import count_parameters

TARGETS = ["qkv", "out", "up", "down"]


def small_gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=11, n_ctx=8, d_model=16, n_layers=2, n_heads=2))


def tokens(seed=1):
    return torch.randint(11, (3, 8), generator=torch.Generator().manual_seed(seed))


def randomise_b(model, seed=2):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=generator) * 0.1)


def test_b_starts_at_zero_so_the_wrapped_model_equals_the_original():
    model = small_gpt()
    before = model(tokens())[0]
    names = add_lora(model, TARGETS, rank=2)
    assert names == ["blocks.0.attn.qkv", "blocks.0.attn.out", "blocks.0.ffn.up", "blocks.0.ffn.down",
                     "blocks.1.attn.qkv", "blocks.1.attn.out", "blocks.1.ffn.up", "blocks.1.ffn.down"]
    for layer in lora_layers(model).values():
        assert torch.count_nonzero(layer.lora_B) == 0 and torch.count_nonzero(layer.lora_A) > 0
    assert torch.equal(model(tokens())[0], before)


def test_the_update_is_low_rank_and_scaled_by_alpha_over_r():
    layer = LoRALinear(nn.Linear(10, 6), rank=2, alpha=6.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    delta = layer.delta_weight()
    assert delta.shape == (6, 10)
    assert torch.linalg.matrix_rank(delta) == 2
    assert torch.allclose(delta, 3.0 * layer.lora_B @ layer.lora_A)
    x = torch.randn(4, 10)
    assert torch.allclose(layer(x), x @ (layer.base.weight + delta).T + layer.base.bias, atol=1e-6)


def test_trainable_counts():
    model = small_gpt()
    total = count_parameters(model)
    add_lora(model, TARGETS, rank=2)
    # per block: qkv 16->48, out 16->16, up 16->64, down 64->16; rank 2 adds 2 * (d_in + d_out) each
    expected = 2 * sum(lora_parameter_count(i, o, 2) for i, o in ((16, 48), (16, 16), (16, 64), (64, 16)))
    assert expected == 2 * 2 * (64 + 32 + 80 + 80)
    assert count_parameters(model, trainable_only=True) == expected
    assert count_parameters(model) == total + expected
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)


def test_trainable_modules_stay_trainable():
    model = small_gpt()
    add_lora(model, "qkv", rank=1, trainable_modules=["final_norm"])
    assert model.final_norm.weight.requires_grad and model.final_norm.bias.requires_grad
    assert not model.token_embedding.weight.requires_grad
    assert count_parameters(model, trainable_only=True) == 2 * (16 + 48) + 2 * 16


def test_merge_and_unmerge_keep_the_output_and_restore_the_weights():
    model = small_gpt()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    add_lora(model, TARGETS, rank=2, alpha=4)
    randomise_b(model)
    adapted = model(tokens())[0]
    assert not torch.allclose(adapted, GPT.forward(small_gpt(), tokens())[0])
    assert merge_lora(model) == 8
    assert torch.allclose(model(tokens())[0], adapted, atol=1e-5)
    with pytest.raises(RuntimeError, match="already merged"):
        lora_layers(model)["blocks.0.attn.qkv"].merge()
    assert unmerge_lora(model) == 8
    assert torch.allclose(model(tokens())[0], adapted, atol=1e-5)
    remove_lora(model)
    assert not lora_layers(model)
    for key, value in model.state_dict().items():
        assert torch.allclose(value, original[key], atol=1e-6), key


def test_disable_and_remove_give_back_the_original_model():
    model = small_gpt()
    before = model(tokens())[0]
    add_lora(model, TARGETS, rank=2)
    randomise_b(model)
    set_lora_enabled(model, False)
    assert torch.equal(model(tokens())[0], before)
    set_lora_enabled(model, True)
    adapted = model(tokens())[0]
    merge_lora(model)
    with pytest.raises(RuntimeError, match="unmerge"):
        set_lora_enabled(model, False)
    remove_lora(model, merge=True)  # keep the update inside plain Linear layers
    assert isinstance(model.blocks[0].attn.qkv, nn.Linear) and not lora_layers(model)
    assert torch.allclose(model(tokens())[0], adapted, atol=1e-5)


def test_gradients_reach_only_a_and_b():
    model = small_gpt()
    add_lora(model, TARGETS, rank=2)
    _, loss = model(tokens(), tokens(3))
    loss.backward()
    layer = model.blocks[0].attn.qkv
    assert layer.lora_B.grad is not None and layer.lora_B.grad.abs().sum() > 0
    assert layer.base.weight.grad is None and model.token_embedding.weight.grad is None


def test_bad_input():
    with pytest.raises(ValueError, match="rank must be at most min"):
        LoRALinear(nn.Linear(16, 4), rank=5)  # a 16 -> 4 layer has rank at most 4
    with pytest.raises(ValueError, match="rank must be at most"):
        add_lora(small_gpt(), ["qkv"], rank=17)
    with pytest.raises(ValueError, match=">= 1"):
        LoRALinear(nn.Linear(4, 4), rank=0)
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(4, 4, 1), rank=1)
    with pytest.raises(ValueError, match="matches no module"):
        add_lora(small_gpt(), ["q_proj"], rank=2)  # a name from another architecture
    with pytest.raises(ValueError, match="Linear layers only"):
        add_lora(small_gpt(), ["final_norm"], rank=1)
    with pytest.raises(ValueError, match="non-empty"):
        add_lora(small_gpt(), [], rank=1)
    with pytest.raises(ValueError, match="trainable module"):
        add_lora(small_gpt(), ["qkv"], rank=1, trainable_modules=["classifier"])
    with pytest.raises(ValueError, match="alpha|> 0"):
        LoRALinear(nn.Linear(4, 4), rank=1, alpha=0)
    with pytest.raises(ValueError, match="no LoRA layers"):
        merge_lora(small_gpt())
    model = small_gpt()
    add_lora(model, ["qkv"], rank=1)
    with pytest.raises(ValueError, match="already has a LoRA"):
        add_lora(model, ["qkv"], rank=1)
    with pytest.raises(TypeError, match="True or False"):
        set_lora_enabled(model, 1)


def test_a_failed_call_leaves_the_model_unchanged():
    model = small_gpt()
    with pytest.raises(ValueError, match=r"rank must be at most min\(d_in, d_out\) = 16 for a 16 -> 48 layer, got 20"):
        add_lora(model, ["qkv", "down"], rank=20)  # qkv allows 16, down allows 16: nothing may be wrapped
    assert not lora_layers(model) and all(p.requires_grad for p in model.parameters())


def test_b_at_zero_lets_b_learn_first_but_both_at_zero_never_learn():
    layer = LoRALinear(nn.Linear(6, 4), rank=2)
    x = torch.randn(5, 6)
    layer(x).pow(2).sum().backward()
    assert torch.count_nonzero(layer.lora_A.grad) == 0  # dL/dA is proportional to B, which is zero
    assert torch.count_nonzero(layer.lora_B.grad) > 0  # dL/dB is proportional to x A^T, which is not
    stuck = LoRALinear(nn.Linear(6, 4), rank=2)
    with torch.no_grad():
        stuck.lora_A.zero_()
    stuck(x).pow(2).sum().backward()
    assert torch.count_nonzero(stuck.lora_A.grad) == 0 and torch.count_nonzero(stuck.lora_B.grad) == 0
