import pytest
import torch
from transformers import BertConfig, BertModel, GPT2LMHeadModel

from llmbook.architectures import MaskedLM
from llmbook.generation import greedy_decode
from llmbook.hf_export import bert_config, gpt2_config, gpt2_config_for, hf_parameter_count, to_gpt2
from llmbook.params import BERT_SIZES, GPT2_SIZES, bert_params, gpt2_params
from llmbook.transformer import GPT, GPTConfig


def random_gpt(**changes):
    """A small GPT whose weights are far from their initial values (so that every weight matters)."""
    settings = {"vocab_size": 23, "n_ctx": 12, "d_model": 24, "n_layers": 2, "n_heads": 3}
    settings.update(changes)
    torch.manual_seed(0)
    model = GPT(GPTConfig(**settings))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return model.eval()


@pytest.mark.parametrize("changes", [{}, {"d_ff": 40}, {"n_layers": 1, "n_heads": 1}, {"attention": "builtin"},
                                     {"tie_weights": False, "init": "pytorch"}])
def test_exported_gpt2_gives_the_same_logits(changes):
    model = random_gpt(**changes)
    gpt2 = to_gpt2(model)
    assert isinstance(gpt2, GPT2LMHeadModel) and not gpt2.training
    ids = torch.randint(23, (3, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(ids)[0], gpt2(ids).logits
    assert (ours - theirs).abs().max().item() < 1e-4
    assert sum(p.numel() for p in gpt2.parameters()) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("tie", [True, False])
def test_the_output_layer_is_tied_exactly_when_the_model_ties_it(tie):
    model = random_gpt(tie_weights=tie)
    gpt2 = to_gpt2(model)
    assert gpt2.config.tie_word_embeddings is tie
    shared = gpt2.lm_head.weight.data_ptr() == gpt2.transformer.wte.weight.data_ptr()
    assert shared is tie
    assert torch.equal(gpt2.lm_head.weight, model.lm_head.weight)
    if not tie:  # the untied output matrix is its own copy, not the embedding's
        assert not torch.equal(gpt2.lm_head.weight, gpt2.transformer.wte.weight)


def test_the_activation_matters():
    model = random_gpt()
    ids = torch.randint(23, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        exact, tanh = to_gpt2(model)(ids).logits, to_gpt2(model, activation="gelu_new")(ids).logits
    difference = (exact - tanh).abs().max().item()
    assert 1e-6 < difference < 0.05  # GPT-2's tanh approximation is close to, but not exactly, GELU


def test_export_is_a_copy():
    model = random_gpt()
    gpt2 = to_gpt2(model)
    with torch.no_grad():
        gpt2.transformer.wte.weight.zero_()
    assert model.token_embedding.weight.abs().sum() > 0


def test_library_generate_equals_book_greedy_decode_and_prints_nothing(capfd):
    model = random_gpt()
    gpt2 = to_gpt2(model)
    prompt = [3, 1, 4, 1]
    library = gpt2.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False)[0, 4:].tolist()
    assert library == greedy_decode(model, prompt, 8)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_special_token_ids_are_checked_and_set():
    model = random_gpt()
    config = gpt2_config_for(model, bos_token_id=0, eos_token_id=22)
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (0, 22, 22)
    assert gpt2_config_for(model).bos_token_id is None
    with pytest.raises(ValueError, match="bos_token_id"):
        gpt2_config_for(model, bos_token_id=23)
    with pytest.raises(ValueError, match="eos_token_id must be >= 0, got -1"):
        gpt2_config_for(model, eos_token_id=-1)


@pytest.mark.parametrize("model, error, match", [
    (random_gpt(positional="sinusoidal"), ValueError, "learned positions"),
    (MaskedLM(GPTConfig(vocab_size=10, n_ctx=8, d_model=16, n_heads=2)), ValueError, "causal"),
    (torch.nn.Linear(3, 3), TypeError, "GPT"),
])
def test_models_gpt2_cannot_represent_are_rejected(model, error, match):
    with pytest.raises(error, match=match):
        to_gpt2(model)


def test_bad_activation_is_rejected():
    with pytest.raises(ValueError, match="activation"):
        to_gpt2(random_gpt(), activation="relu")


# ---------------------------------------------------------------------------------------------------- counts


@pytest.mark.parametrize("name", list(GPT2_SIZES))
def test_gpt2_formula_equals_transformers_count(name):
    size = GPT2_SIZES[name]
    counted = hf_parameter_count(GPT2LMHeadModel, gpt2_config(name))  # on the meta device: fast, no memory
    assert counted == gpt2_params(size["n_layers"], size["d_model"])


@pytest.mark.parametrize("name", list(BERT_SIZES))
def test_bert_formula_equals_transformers_count(name):
    size = BERT_SIZES[name]
    counted = hf_parameter_count(BertModel, bert_config(name))
    assert counted == bert_params(size["n_layers"], size["d_model"])


def test_published_counts():
    assert hf_parameter_count(GPT2LMHeadModel, gpt2_config("GPT-2 small")) == 124_439_808
    assert hf_parameter_count(GPT2LMHeadModel, gpt2_config("GPT-2 XL")) == 1_557_611_200
    assert hf_parameter_count(BertModel, bert_config("BERT-large")) == 335_141_888


def test_meta_count_equals_a_real_count_for_a_small_model():
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=20)
    real = sum(p.numel() for p in BertModel(config).parameters())
    assert hf_parameter_count(BertModel, config) == real == bert_params(2, 16, vocab_size=50, n_ctx=20)


def test_count_and_config_reject_bad_input():
    with pytest.raises(TypeError, match="transformers model class"):
        hf_parameter_count(GPT, gpt2_config("GPT-2 small"))
    with pytest.raises(TypeError, match="GPT2Config"):
        hf_parameter_count(GPT2LMHeadModel, bert_config("BERT-base"))
    with pytest.raises(ValueError, match="GPT-2 small"):
        gpt2_config("GPT-2 tiny")
    with pytest.raises(ValueError, match="BERT-base"):
        bert_config("BERT-huge")
