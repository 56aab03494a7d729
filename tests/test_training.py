import math

import pytest
import torch

from llmbook.training import (
    bigram_loss,
    bigram_probabilities,
    bits_per_token,
    evaluate_loss,
    get_batch,
    learning_rate,
    perplexity,
    train,
    unigram_loss,
    unigram_probabilities,
)
from llmbook.transformer import GPT, GPTConfig


def test_batch_shapes_and_targets_are_inputs_shifted_by_one():
    data = torch.arange(100)
    inputs, targets = get_batch(data, batch_size=5, n_ctx=8, generator=torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (5, 8)
    assert torch.equal(targets[:, :-1], inputs[:, 1:])
    assert torch.equal(targets, inputs + 1)  # data[i] = i, so the next token is always one more


def test_batches_are_reproducible_with_a_seeded_generator():
    data = torch.arange(1000)
    a = get_batch(data, 4, 16, torch.Generator().manual_seed(3))
    b = get_batch(data, 4, 16, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_batch_reaches_the_last_token():
    data = torch.arange(10)
    inputs, targets = get_batch(data, batch_size=200, n_ctx=9, generator=torch.Generator().manual_seed(0))
    assert int(targets.max()) == 9 and int(inputs.min()) == 0


def test_batch_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 9"):
        get_batch(torch.arange(5), 2, 8)
    with pytest.raises(ValueError, match="1-D"):
        get_batch(torch.zeros(3, 20, dtype=torch.long), 2, 4)
    with pytest.raises(TypeError, match="integer"):
        get_batch(torch.zeros(20), 2, 4)
    with pytest.raises(ValueError, match="batch_size"):
        get_batch(torch.arange(20), 0, 4)


def test_unigram_and_bigram_on_a_toy_sequence():
    # "abab" with a=0, b=1; no smoothing: P(a) = P(b) = 1/2, P(b|a) = 1, P(a|b) = 1
    ids = [0, 1, 0, 1]
    assert torch.allclose(unigram_probabilities(ids, 2, smoothing=0), torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert unigram_loss(ids, ids, 2, smoothing=0) == pytest.approx(math.log(2))
    assert bigram_loss(ids, ids, 2, smoothing=0) == pytest.approx(0.0)


def test_add_one_smoothing_by_hand():
    # train "aab" (0, 0, 1) over a vocabulary of 3: unigram counts 2,1,0 -> +1 -> 3,2,1 over 6
    probs = unigram_probabilities([0, 0, 1], 3, smoothing=1)
    assert torch.allclose(probs, torch.tensor([3, 2, 1], dtype=torch.float64) / 6)
    # pairs (a,a), (a,b): row a counts 1,1,0 -> +1 -> 2,2,1 over 5; row b has no pairs -> uniform
    table = bigram_probabilities([0, 0, 1], 3, smoothing=1)
    assert torch.allclose(table[0], torch.tensor([2, 2, 1], dtype=torch.float64) / 5)
    assert torch.allclose(table[1], torch.full((3,), 1 / 3, dtype=torch.float64))
    assert torch.allclose(table.sum(1), torch.ones(3, dtype=torch.float64))
    assert bigram_loss([0, 0, 1], [0, 1], 3) == pytest.approx(-math.log(2 / 5))


def test_perplexity_is_exp_of_loss_and_bits_divide_by_ln2():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(7)) == pytest.approx(7.0)
    assert perplexity(torch.tensor(1.5)) == pytest.approx(math.exp(1.5))
    assert bits_per_token(math.log(2)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cross-entropy"):
        perplexity(-1.0)


def test_learning_rate_warms_up_then_decays():
    lrs = [learning_rate(s, 100, 1.0, warmup_steps=10, min_fraction=0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] >= 0.1 and learning_rate(100, 100, 1.0, 10, 0.1) == pytest.approx(0.1)


def test_training_a_tiny_model_lowers_the_loss():
    torch.manual_seed(0)
    data = torch.tensor([0, 1, 2, 3] * 50)  # a deterministic cycle: easy to learn
    model = GPT(GPTConfig(vocab_size=4, n_ctx=8, d_model=16, n_layers=1, n_heads=2))
    before = evaluate_loss(model, data, 8)
    seen = []
    history = train(model, data, data, steps=30, batch_size=8, lr=1e-2, warmup_steps=5, eval_every=10,
                    verbose=False, on_eval=lambda step, m: seen.append(step))
    assert seen == [0, 10, 20, 30] and history["eval_steps"] == seen
    assert len(history["train_loss"]) == 30
    assert history["val_loss"][0] == pytest.approx(before)
    assert history["val_loss"][-1] < 0.5 * before


def test_parameter_groups_decay_matrices_only_and_count_tied_weights_once():
    from llmbook.training import parameter_groups

    model = GPT(GPTConfig(vocab_size=11, n_ctx=8, d_model=16, n_layers=1, n_heads=2))
    decay, no_decay = parameter_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert any(p is model.token_embedding.weight for p in decay["params"])
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == sum(p.numel() for p in model.parameters())
    assert not any(p is model.final_norm.weight for p in decay["params"])


def test_parameter_groups_skip_frozen_parameters_and_reject_bad_input():
    from llmbook.training import parameter_groups

    model = GPT(GPTConfig(vocab_size=11, n_ctx=8, d_model=16, n_layers=1, n_heads=2))
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        parameter_groups(model, 0.1)
    model.lm_head.weight.requires_grad_(True)  # tied to the token embedding
    decay, no_decay = parameter_groups(model, 0.0)
    assert len(decay["params"]) == 1 and not no_decay["params"]
    with pytest.raises(ValueError, match="weight_decay"):
        parameter_groups(model, -1.0)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        parameter_groups("model", 0.1)


@pytest.mark.parametrize("mode", [True, False])
def test_train_leaves_the_model_in_the_mode_it_found(mode):
    torch.manual_seed(0)
    data = torch.randint(0, 5, (200,))
    model = GPT(GPTConfig(vocab_size=5, n_ctx=8, d_model=16, n_layers=1, n_heads=2))
    model.train(mode)
    train(model, data, data, steps=2, batch_size=4, lr=1e-3, warmup_steps=0, eval_every=2, verbose=False)
    assert model.training is mode


# ------------------------------------------------------------------------------------ the one training loop


def _tiny_problem(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    return model, x, y


def test_optimise_is_bit_identical_to_the_loop_written_out():
    """zero_grad, backward, clip, step, in that order, with the schedule set first: the trainers rely on it."""
    from llmbook.training import optimise

    def loss_of(model, x, y, generator):
        rows = torch.randint(len(x), (8,), generator=generator)
        return torch.nn.functional.mse_loss(model(x[rows]), y[rows])

    model, x, y = _tiny_problem()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(1)
    by_hand = []
    for step in range(12):
        for group in optimizer.param_groups:
            group["lr"] = 0.1 / (step + 1)
        loss = loss_of(model, x, y, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), 0.5)
        optimizer.step()
        by_hand.append(loss.item())

    twin, _, _ = _tiny_problem()
    twin_optimizer = torch.optim.AdamW(twin.parameters(), lr=0.1)
    twin_generator = torch.Generator().manual_seed(1)
    seen = []
    losses = optimise(twin_optimizer, lambda: loss_of(twin, x, y, twin_generator), 12,
                      schedule=lambda step: 0.1 / (step + 1), grad_clip=0.5, clip_parameters=list(twin.parameters()),
                      after_step=lambda step, so_far: seen.append((step, len(so_far))))
    assert losses == by_hand  # exactly, not approximately
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters(), strict=True))
    assert seen == [(k, k) for k in range(1, 13)]
    assert twin_optimizer.param_groups[0]["lr"] == 0.1 / 12


def test_optimise_without_steps_and_bad_input():
    from llmbook.training import optimise

    model, x, y = _tiny_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.clone() for p in model.parameters()]
    assert optimise(optimizer, lambda: model(x).sum(), 0) == []
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with pytest.raises(ValueError, match="grad_clip needs clip_parameters"):
        optimise(optimizer, lambda: model(x).sum(), 1, grad_clip=1.0)
    with pytest.raises(ValueError, match="grad_clip must be a finite number > 0, got 0"):
        optimise(optimizer, lambda: model(x).sum(), 1, grad_clip=0.0, clip_parameters=list(model.parameters()))
    with pytest.raises(TypeError, match="step_loss must be a function"):
        optimise(optimizer, 3.0, 1)
    with pytest.raises(ValueError, match="steps must be >= 0, got -1"):
        optimise(optimizer, lambda: model(x).sum(), -1)


def test_train_reports_wall_clock_seconds_and_the_losses_since_the_previous_report(capsys):
    torch.manual_seed(0)
    data = torch.tensor([0, 1, 2, 3] * 50)
    model = GPT(GPTConfig(vocab_size=4, n_ctx=8, d_model=16, n_layers=1, n_heads=2))
    history = train(model, data, data, steps=5, batch_size=4, lr=1e-2, warmup_steps=1, eval_every=2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["0/5", "2/5", "4/5", "5/5"]
    means = [sum(history["train_loss"][a:b]) / (b - a) for a, b in ((0, 2), (2, 4), (4, 5))]
    assert [line.split()[4] for line in lines[1:]] == [f"{m:.3f}" for m in means]
    assert history["steps"] == [1, 2, 3, 4, 5] and 0 < history["seconds"] < 60
