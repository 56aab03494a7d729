"""Tests of llmbook.utils' helpers for models: eval_mode, train_mode, weights_fingerprint and check_causal."""

import pytest
import torch
from torch import nn

from llmbook.architectures import MaskedLM
from llmbook.transformer import GPT, GPTConfig
from llmbook.utils import check_causal, eval_mode, train_mode, weights_fingerprint


def small_model():
    return nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))


# ------------------------------------------------------------------------------------- eval_mode, train_mode


def test_eval_mode_sets_eval_inside_and_restores_each_model():
    trained, evaluated = small_model().train(), small_model().eval()
    with eval_mode(trained, evaluated):
        assert not trained.training and not evaluated.training
        assert not any(m.training for m in trained.modules())  # the submodules too
    assert trained.training and all(m.training for m in trained.modules())
    assert not evaluated.training and not any(m.training for m in evaluated.modules())


def test_eval_mode_restores_when_the_block_raises():
    model = small_model().train()
    with pytest.raises(RuntimeError, match="inside the block"):
        with eval_mode(model):
            assert not model.training
            raise RuntimeError("inside the block")
    assert model.training


def test_modes_nest_and_each_exit_restores_what_its_entry_found():
    model = small_model().train()
    with eval_mode(model):
        with train_mode(model):
            assert model.training
            with eval_mode(model):
                assert not model.training
            assert model.training
        assert not model.training
    assert model.training
    model.eval()
    with train_mode(model):
        assert model.training and model[1].training
    assert not model.training and not model[1].training


def test_eval_mode_makes_dropout_deterministic_and_train_mode_does_not():
    model = small_model()
    x = torch.ones(5, 3)
    torch.manual_seed(0)
    with eval_mode(model):
        assert torch.equal(model(x), model(x))
    with train_mode(model):
        assert not torch.equal(model(x), model(x))  # dropout draws differ from call to call


def test_modes_refuse_what_is_not_a_module_and_change_nothing():
    model = small_model().train()
    with pytest.raises(TypeError, match="eval_mode takes torch.nn.Module objects, got str"):
        with eval_mode(model, "model"):
            pass
    assert model.training  # checked before any model was switched
    with pytest.raises(TypeError, match="train_mode takes torch.nn.Module objects, got int"):
        with train_mode(3):
            pass


# ------------------------------------------------------------------------------------- weights_fingerprint


def test_weights_fingerprint_sees_every_weight_and_nothing_else():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=7, n_ctx=4, d_model=8, n_layers=1, n_heads=2))
    before = weights_fingerprint(model)
    assert len(before) == 16 and int(before, 16) >= 0
    model(torch.tensor([[1, 2, 3]]))  # running the model changes no weight
    assert weights_fingerprint(model) == before
    with torch.no_grad():
        model.blocks[0].norm2.bias[3] += 1e-6  # one tiny change anywhere changes the fingerprint
    assert weights_fingerprint(model) != before
    with torch.no_grad():
        model.blocks[0].norm2.bias[3] -= 1e-6
    assert weights_fingerprint(model) == before  # the same bytes, the same fingerprint
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got list"):
        weights_fingerprint([1, 2])


def test_weights_fingerprint_is_chapter_6s_sha256_of_the_state_dict():
    import hashlib

    torch.manual_seed(1)
    model = nn.Linear(3, 2)
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().numpy().tobytes())
    assert weights_fingerprint(model) == digest.hexdigest()[:16]


# ------------------------------------------------------------------------------------------- check_causal


def test_check_causal_refuses_a_masked_lm_and_names_the_caller():
    config = GPTConfig(vocab_size=7, n_ctx=4, d_model=8, n_layers=1, n_heads=2)
    check_causal(GPT(config), "generate")  # a GPT passes
    check_causal(nn.Linear(2, 2), "generate")  # so does a model that does not say
    assert GPT(config).is_causal and not MaskedLM(config).is_causal
    assert not MaskedLM(GPTConfig(vocab_size=7, n_ctx=4, d_model=8, n_layers=0, n_heads=2)).is_causal
    with pytest.raises(ValueError, match="generate needs a causal language model .*MaskedLM attends in both"):
        check_causal(MaskedLM(config), "generate")
