"""Tests of llmbook.rlhf: the toy world, the labeller, the Bradley-Terry reward model, the KL penalty, PPO, DPO."""

import math
import random

import pytest
import torch

from llmbook.review_world import (
    END,
    NEGATIVE,
    POSITIVE,
    TOPICS,
    Labeller,
    demonstration,
    demonstrations,
    encode_examples,
    hidden_score,
    is_review,
    prompt_text,
    world_tokenizer,
)
from llmbook.rlhf import (
    bradley_terry_loss,
    bradley_terry_probability,
    dpo_loss,
    dpo_statistics,
    evaluate_policy,
    kl_penalised_returns,
    kl_per_token,
    optimise_policy,
    pairwise_accuracy,
    ppo_clipped_loss,
    preference_pairs,
    response_logits,
    response_mask,
    reward_model_from,
    sample_responses,
    sequence_rewards,
    sft_loss,
    supervised_fine_tune,
    token_log_probs,
    train_dpo,
    train_reward_model,
)
from llmbook.tokenizers import WordTokenizer
from llmbook.transformer import GPT, GPTConfig
from llmbook.utils import weights_fingerprint


@pytest.fixture(scope="module")
def tokenizer():
    return world_tokenizer()


@pytest.fixture()
def model(tokenizer):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_ctx=20, d_model=16, n_layers=1, n_heads=2)).eval()


# ------------------------------------------------------------------------------------------ world, labeller


def test_word_tokenizer_round_trip_and_errors():
    tok = WordTokenizer(["a", "b", "c"])
    assert tok.encode("a c b") == [0, 2, 1]
    assert tok.decode([2, 0]) == "c a"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("a d")
    with pytest.raises(ValueError, match="must lie in"):
        tok.decode([3])
    with pytest.raises(ValueError, match="repeated"):
        WordTokenizer(["a", "a"])
    with pytest.raises(TypeError, match="text must be a string of space-separated words, got list"):
        tok.encode(["a"])


def test_demonstrations_are_deterministic_well_formed_and_never_repeat(tokenizer):
    texts = demonstrations(200, seed=3)
    assert texts == demonstrations(200, seed=3)
    assert texts != demonstrations(200, seed=4)
    for text in texts:
        words = text.split()
        assert words[-1] == END and words[3] == ":"
        topic = words[2]
        answer = words[4:]
        assert is_review(answer), text
        content = [w for w in answer[:-1] if w not in ("the", "was", "and", "but")]
        assert len(content) == len(set(content)) == 4, text  # two nouns and two adjectives, none twice
        assert all(w in TOPICS[topic] for w in answer[1::5]), text  # nouns belong to the topic
        assert hidden_score(answer) == pytest.approx(sum(POSITIVE.get(w, 0) + NEGATIVE.get(w, 0) for w in answer))
        tokenizer.encode(text)  # every word is in the vocabulary
    praise = [demonstration(random.Random(i), "film", "praise") for i in range(200)]
    positive = sum(w in POSITIVE for t in praise for w in t.split())
    total = sum(w in POSITIVE or w in NEGATIVE for t in praise for w in t.split())
    assert positive / total > 0.8


def test_prompt_text_and_bad_input():
    assert prompt_text("meal") == "| review meal :"
    assert prompt_text("film", "praise") == "| praise film :"
    with pytest.raises(ValueError, match="topic"):
        prompt_text("car")
    with pytest.raises(ValueError, match="tone"):
        prompt_text("film", "kind")
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        demonstrations(0)


def test_is_review_accepts_two_clauses_only():
    assert is_review("the plot was great but the cast was dull .")
    assert is_review("the plot was great and the plot was great . superb superb")  # stops at the end mark
    assert is_review(["the", "room", "was", "fine", "and", "the", "view", "was", "superb", "."])
    assert not is_review("the plot was great .")  # one clause
    assert not is_review("the plot was great and the cast was dull")  # never ends
    assert not is_review("superb superb .")
    assert not is_review("the plot was great the cast was dull .")  # no joining word
    assert not is_review("the plot was great and the cast was superb and the music was fine .")  # three
    assert not is_review("the plot was tasty and the cast was dull .")  # not an adjective of the world
    assert is_review("the plot was tasty and the cast was dull .", values={"tasty": 1.0, "dull": -1.0})
    with pytest.raises(TypeError, match="response must be a string or a list of words, got int"):
        is_review(3)


def test_hidden_score_by_hand():
    assert hidden_score("the plot was great but the cast was dull .") == pytest.approx(0.0)
    assert hidden_score("the plot was superb and the cast was lovely .") == pytest.approx(3.0)
    assert hidden_score("the plot was awful and the cast was poor .") == pytest.approx(-3.0)
    # "superb" repeated: 2.0 - 2.0; with "plot" repeated as well: 2.0 - 2 * 2.0
    assert hidden_score("the plot was superb and the cast was superb .") == pytest.approx(0.0)
    assert hidden_score("the plot was superb and the plot was superb .") == pytest.approx(-2.0)
    assert hidden_score("the plot was superb and the plot was superb .", repetition_penalty=0.5) == \
        pytest.approx(1.0)
    assert hidden_score(".") == -1.0  # says nothing
    assert hidden_score("the plot was great") == -1.0  # never ends
    assert hidden_score("superb superb superb .") == -1.0  # not a review
    assert hidden_score("superb .", unhelpful=-5.0) == -5.0
    assert hidden_score("the plot was great and the cast was fine . the cast was dull .") == pytest.approx(2.0)
    flipped = {w: -v for w, v in {**POSITIVE, **NEGATIVE}.items()}
    assert hidden_score("the plot was superb and the cast was awful .", values=flipped) == pytest.approx(0.0)
    assert hidden_score("the plot was awful and the cast was dull .", values=flipped) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="repetition_penalty must be a finite number >= 0, got -1"):
        hidden_score("the plot was great .", repetition_penalty=-1)
    with pytest.raises(ValueError, match="unhelpful"):
        hidden_score("the plot was great .", unhelpful=float("nan"))
    with pytest.raises(TypeError, match="response must be a string or a list of words, got int"):
        hidden_score(3)
    with pytest.raises(TypeError, match="values"):
        hidden_score("the plot was great .", values=[1.0])


def test_labeller_is_a_noisy_bradley_terry_judge():
    labeller = Labeller(temperature=0.5)
    good, bad = "the plot was great and the cast was fine .", "the plot was dull and the cast was weak ."
    assert labeller.probability(good, bad) == pytest.approx(1 / (1 + math.exp(-4.0 / 0.5)))
    assert labeller.probability(good, good) == pytest.approx(0.5)
    close = "the plot was great but the cast was dull ."  # two points below good
    choices = labeller.prefers_first([good] * 2000, [close] * 2000, seed=0)
    assert abs(sum(choices) / 2000 - labeller.probability(good, close)) < 0.02
    assert choices == labeller.prefers_first([good] * 2000, [close] * 2000, seed=0)
    assert Labeller().probability(good, close) == pytest.approx(1 / (1 + math.exp(-2.0)))  # temperature 1
    assert Labeller(score=lambda text: -hidden_score(text)).probability(good, bad) < 0.5
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got 0"):
        Labeller(temperature=0)
    with pytest.raises(TypeError, match="score must be a function"):
        Labeller(score="not a function")
    with pytest.raises(ValueError, match="as many"):
        labeller.prefers_first([good], [good, bad])


# ---------------------------------------------------------------------------------------- Bradley-Terry


def test_bradley_terry_probability_by_hand():
    assert bradley_terry_probability(1.0, 1.0) == pytest.approx(0.5)
    assert bradley_terry_probability(2.0, 0.0) == pytest.approx(1 / (1 + math.exp(-2)))
    assert bradley_terry_probability(0.0, 2.0) == pytest.approx(1 - 1 / (1 + math.exp(-2)))
    tensor = bradley_terry_probability(torch.tensor([0.0, 3.0]), torch.tensor([0.0, 1.0]))
    assert torch.allclose(tensor, torch.tensor([0.5, 1 / (1 + math.exp(-2))]))
    with pytest.raises(TypeError, match="reward_a must be a finite number or a tensor"):
        bradley_terry_probability("1", 0.0)
    with pytest.raises(ValueError, match="same shape"):
        bradley_terry_probability(torch.zeros(2), torch.zeros(3))


def test_bradley_terry_loss_by_hand_and_bad_input():
    loss = bradley_terry_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]))
    expected = (-math.log(1 / (1 + math.exp(-1))) + math.log(2)) / 2
    assert float(loss) == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"rewards_chosen must have 1 dimension\(s\), got shape \(2, 1\)"):
        bradley_terry_loss(torch.zeros(2, 1), torch.zeros(2, 1))
    with pytest.raises(TypeError, match="rewards_chosen must be floating point, got dtype torch.int64"):
        bradley_terry_loss(torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one"):
        bradley_terry_loss(torch.zeros(0), torch.zeros(0))


def test_reward_model_reads_the_last_answer_token_and_leaves_the_model_alone(model, tokenizer):
    before = weights_fingerprint(model)
    reward_model = reward_model_from(model)
    assert weights_fingerprint(model) == before
    with torch.no_grad():
        reward_model.lm_head.weight.normal_()
    ids = torch.tensor([tokenizer.encode("| review film : the plot was great . . .")])
    mask = response_mask(ids, 4, tokenizer.stoi[END])
    assert mask.tolist() == [[True] * 5 + [False] * 2]
    with torch.no_grad():
        scores = reward_model(ids)[0][0, :, 0]
        assert float(sequence_rewards(reward_model, ids, mask)) == pytest.approx(float(scores[8]))
        # padding after the end mark does not change the reward
        other = ids.clone()
        other[0, -2:] = tokenizer.stoi["the"]
        assert float(sequence_rewards(reward_model, other, mask)) == pytest.approx(float(scores[8]), abs=1e-6)
    with pytest.raises(TypeError, match="model must be a GPT from llmbook.transformer"):
        reward_model_from(torch.nn.Linear(2, 2))


def test_reward_model_training_learns_the_labellers_order(model, tokenizer):
    torch.manual_seed(0)
    longer = Labeller(temperature=0.1, score=lambda answer: float(len(answer.split())))  # likes long answers
    pairs = preference_pairs(model, tokenizer, longer, 40, 6, seed=0)
    assert pairs["chosen"].shape == pairs["rejected"].shape == (120, 10)
    reward_model = reward_model_from(model)
    losses = train_reward_model(reward_model, pairs, tokenizer.stoi[END], steps=60, batch_size=32, lr=3e-3,
                                verbose=False)
    assert sum(losses[-10:]) / 10 < losses[0] - 0.1


def test_sample_responses_pads_after_the_end_mark_and_is_reproducible(model, tokenizer):
    end_id = tokenizer.stoi[END]
    prompts = [tokenizer.encode(prompt_text(topic)) for topic in TOPICS]
    ids, p = sample_responses(model, prompts, 5, 8, torch.Generator().manual_seed(0), end_id)
    assert p == 4 and ids.shape == (15, 12)
    assert ids[:5, :4].tolist() == [prompts[0]] * 5 and ids[10:, :4].tolist() == [prompts[2]] * 5
    for row in ids[:, 4:].tolist():
        if end_id in row:  # everything after the first end mark is an end mark
            assert set(row[row.index(end_id):]) == {end_id}
    again, _ = sample_responses(model, prompts, 5, 8, torch.Generator().manual_seed(0), end_id)
    assert torch.equal(ids, again)
    with pytest.raises(ValueError, match="same length"):
        sample_responses(model, [[1, 2], [1]], 2, 3, torch.Generator())


# ---------------------------------------------------------------------------------------- KL and PPO


def test_kl_is_zero_when_the_policy_equals_the_reference(model, tokenizer):
    ids = torch.tensor([tokenizer.encode("| review film : the plot was great .")])
    logits = response_logits(model, ids, 4)
    assert logits.shape == (1, 5, tokenizer.vocab_size)
    assert torch.allclose(kl_per_token(logits, logits.clone()), torch.zeros(1, 5), atol=1e-6)
    log_probs = token_log_probs(logits, ids[:, 4:])
    returns = kl_penalised_returns(torch.tensor([2.0]), log_probs, log_probs.clone(),
                                   torch.ones(1, 5, dtype=torch.bool), beta=0.7)
    assert torch.allclose(returns, torch.full((1, 5), 2.0))


def test_kl_by_hand_and_positive():
    p = torch.log(torch.tensor([[[0.5, 0.5]]]))
    q = torch.log(torch.tensor([[[0.25, 0.75]]]))
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert float(kl_per_token(p, q)) == pytest.approx(expected)
    torch.manual_seed(0)
    a, b = torch.randn(3, 4, 6), torch.randn(3, 4, 6)
    assert (kl_per_token(a, b) > 0).all()
    with pytest.raises(ValueError, match="same shape"):
        kl_per_token(a, b[:, :2])


def test_kl_penalised_returns_by_hand_and_bad_input():
    log_probs = torch.tensor([[-1.0, -2.0, -0.5]])
    reference = torch.tensor([[-1.5, -1.0, -0.5]])
    mask = torch.tensor([[True, True, False]])
    # per-token penalties: -beta * (0.5, -1.0) = (-1.0, 2.0) with beta = 2; returns-to-go: 3 + 1.0, 3 + 2.0, 0
    returns = kl_penalised_returns(torch.tensor([3.0]), log_probs, reference, mask, beta=2.0)
    assert torch.allclose(returns, torch.tensor([[4.0, 5.0, 0.0]]))
    assert torch.allclose(kl_penalised_returns(torch.tensor([3.0]), log_probs, reference, mask, beta=0),
                          torch.tensor([[3.0, 3.0, 0.0]]))
    with pytest.raises(ValueError, match="beta"):
        kl_penalised_returns(torch.tensor([3.0]), log_probs, reference, mask, beta=-1)
    with pytest.raises(ValueError, match="mask"):
        kl_penalised_returns(torch.tensor([3.0]), log_probs, reference, mask.float(), beta=1)
    with pytest.raises(ValueError, match="one reward per answer"):
        kl_penalised_returns(torch.tensor([3.0, 1.0]), log_probs, reference, mask, beta=1)


def test_ppo_clipped_loss_gradient_is_reinforce_at_ratio_one_and_clipped_beyond():
    log_probs = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    advantages = torch.tensor([[1.0, -2.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    ppo_clipped_loss(log_probs, log_probs.detach(), advantages, mask).backward()
    assert torch.allclose(log_probs.grad, -advantages / 2)  # REINFORCE: -A grad log pi, mean over 2 tokens
    pushed = torch.tensor([[-0.5, -2.0]], requires_grad=True)  # ratio e^0.5 > 1.2 on the first token, A > 0
    ppo_clipped_loss(pushed, torch.tensor([[-1.0, -2.0]]), advantages, mask, clip=0.2).backward()
    assert pushed.grad[0, 0] == 0  # clipped: no further push
    with pytest.raises(ValueError, match="no token"):
        ppo_clipped_loss(log_probs, log_probs, advantages, torch.zeros(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="clip must be a finite number > 0, got 0"):
        ppo_clipped_loss(log_probs, log_probs, advantages, mask, clip=0)


def test_optimise_policy_leaves_the_reference_alone_and_records_history(model, tokenizer):
    reward_model = reward_model_from(model)
    with torch.no_grad():
        reward_model.lm_head.weight.normal_()  # a non-constant reward, so that there is something to learn
    before = weights_fingerprint(model)
    policy, history = optimise_policy(model, reward_model, tokenizer, Labeller(), beta=0.1, iterations=2,
                                      n_per_prompt=2, max_new_tokens=4, lr=1e-3, eval_every=1, verbose=False)
    assert weights_fingerprint(model) == before
    assert weights_fingerprint(policy) != before
    assert history["iteration"] == [0, 1, 2]
    assert history["kl"][0] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="beta"):
        optimise_policy(model, reward_model, tokenizer, Labeller(), beta=-0.1, iterations=1, n_per_prompt=1,
                        max_new_tokens=2, lr=1e-3)


# ------------------------------------------------------------------------------------------------- DPO


def test_dpo_loss_by_hand():
    beta = 0.5
    # implicit rewards: chosen 0.5 * (-3 - -4) = 0.5, rejected 0.5 * (-5 - -4.5) = -0.25; margin 0.75
    loss = dpo_loss(torch.tensor([-3.0]), torch.tensor([-5.0]), torch.tensor([-4.0]), torch.tensor([-4.5]), beta)
    assert float(loss) == pytest.approx(-math.log(1 / (1 + math.exp(-0.75))))
    same = torch.tensor([-2.0, -7.0])
    assert float(dpo_loss(same, same + 1, same, same + 1, beta=3.0)) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="beta must be a finite number > 0, got 0"):
        dpo_loss(same, same, same, same, beta=0)
    with pytest.raises(ValueError, match="same shape"):
        dpo_loss(same, same[:1], same, same, beta=1)


def test_train_dpo_raises_the_chosen_answers_relative_likelihood(model, tokenizer):
    chosen = encode_examples(tokenizer, ["| review film : the plot was great ."] * 8, 10)
    rejected = encode_examples(tokenizer, ["| review film : the plot was dull ."] * 8, 10)
    pairs = {"chosen": chosen, "rejected": rejected, "prompt_length": 4}
    end_id = tokenizer.stoi[END]
    start = dpo_statistics(model, model, pairs, end_id, beta=0.5)
    assert start["loss"] == pytest.approx(math.log(2), abs=1e-5) and start["margin"] == pytest.approx(0, abs=1e-5)
    seen = []
    policy, losses = train_dpo(model, pairs, end_id, beta=0.5, steps=20, batch_size=4, lr=3e-3, verbose=False,
                               callback=lambda step, policy: seen.append(step), callback_every=5)
    assert seen == [5, 10, 15, 20]
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5)  # the policy starts equal to the reference
    assert losses[-1] < 0.5
    after = dpo_statistics(policy, model, pairs, end_id, beta=0.5)
    assert after["accuracy"] == 1.0 and after["margin"] > 0.5
    assert after["margin"] == pytest.approx(0.5 * (after["chosen"] - after["rejected"]), rel=1e-4)
    assert after["loss"] == pytest.approx(losses[-1], abs=0.2)
    with pytest.raises(ValueError, match="callback_every must be >= 1, got 0"):
        train_dpo(model, pairs, end_id, beta=0.5, steps=2, batch_size=4, lr=1e-3, callback_every=0)
    with pytest.raises(TypeError, match="callback"):
        train_dpo(model, pairs, end_id, beta=0.5, steps=2, batch_size=4, lr=1e-3, callback="print")
    with pytest.raises(ValueError, match="beta must be a finite number > 0, got 0"):
        dpo_statistics(policy, model, pairs, end_id, beta=0)


# ------------------------------------------------------------------------------------------------- misc


def test_sft_loss_counts_answer_tokens_only(model, tokenizer):
    ids = encode_examples(tokenizer, ["| review film : the plot was great ."], 12)
    assert ids.shape == (1, 12)
    with torch.no_grad():
        logits = model(ids)[0]
        expected = torch.nn.functional.cross_entropy(logits[0, 3:8], ids[0, 4:9])  # "the plot was great ."
        loss = sft_loss(model, ids, 4, tokenizer.stoi[END])
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="more than length"):
        encode_examples(tokenizer, ["| review film : the plot was great ."], 5)


def test_weights_fingerprint_changes_only_with_the_weights(model):
    before = weights_fingerprint(model)
    model(torch.tensor([[1, 2, 3]]))
    assert weights_fingerprint(model) == before
    with torch.no_grad():
        model.lm_head.weight[0, 0] += 1e-3
    assert weights_fingerprint(model) != before
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        weights_fingerprint("model")


# ------------------------------------------------------------------------ SFT, pairwise accuracy, evaluation


class _CountingRewardModel(torch.nn.Module):
    """A reward model with a known answer: its score at position t is how many times ``token`` occurs in 0..t,
    so the reward of an answer is the number of ``token`` up to its end mark. It records the modes it ran in."""

    def __init__(self, token):
        super().__init__()
        self.token, self.modes = token, []

    def forward(self, ids):
        self.modes.append(self.training)
        return (ids == self.token).long().cumsum(1).float()[..., None], None


class _LengthRewardModel(torch.nn.Module):
    """A reward model whose score at position t is t + 1, so the reward of an answer is the number of tokens of
    prompt and answer up to the answer's end mark."""

    def forward(self, ids):
        return torch.arange(1, ids.shape[1] + 1).float().expand(len(ids), -1)[..., None], None


def test_supervised_fine_tune_lowers_the_sft_loss_reproducibly(model, tokenizer, capsys):
    import copy

    ids = encode_examples(tokenizer, demonstrations(32, seed=0), 14)
    end_id = tokenizer.stoi[END]
    start = copy.deepcopy(model)
    with torch.no_grad():
        before = float(sft_loss(model, ids, 4, end_id))
    losses = supervised_fine_tune(model, ids, 4, end_id, steps=30, batch_size=8, lr=1e-2)
    with torch.no_grad():
        after = float(sft_loss(model, ids, 4, end_id))
    assert len(losses) == 30 and after < 0.6 * before  # from about 3.6 (near uniform over 41 words) to below 2.2
    assert not model.training
    assert capsys.readouterr().out.count("SFT loss") == 4
    # the same seed and start replay the same steps; another seed draws other batches
    assert supervised_fine_tune(copy.deepcopy(start), ids, 4, end_id, steps=3, batch_size=8, lr=1e-2,
                                verbose=False) == losses[:3]
    assert supervised_fine_tune(copy.deepcopy(start), ids, 4, end_id, steps=3, batch_size=8, lr=1e-2, seed=1,
                                verbose=False)[1:] != losses[1:3]
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        supervised_fine_tune(model, ids, 4, end_id, steps=0, batch_size=8, lr=1e-2)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        supervised_fine_tune(model, ids, 4, end_id, steps=1, batch_size=8, lr=0.0)


def test_pairwise_accuracy_is_the_share_of_pairs_ranked_right(tokenizer):
    prompt = prompt_text("film")
    chosen = ["the plot was superb and the cast was superb .",  # 2 superb vs 0: right
              "the plot was great .",  # 0 vs 1: wrong
              "the plot was superb .",  # 1 vs 1: a tie is not a success
              "the plot was superb ."]  # 1 vs 0 (the two after the end mark are padding): right
    rejected = ["the plot was dull .", "the plot was superb .", "the cast was superb .",
                "the plot was dull . superb superb"]
    pairs = {"chosen": encode_examples(tokenizer, [f"{prompt} {a}" for a in chosen], 14),
             "rejected": encode_examples(tokenizer, [f"{prompt} {a}" for a in rejected], 14), "prompt_length": 4}
    counter = _CountingRewardModel(tokenizer.stoi["superb"]).train()
    assert pairwise_accuracy(counter, pairs, tokenizer.stoi[END]) == 0.5  # 2 of 4, by hand
    assert counter.training and set(counter.modes) == {False}  # measured in eval mode, mode restored
    swapped = {**pairs, "chosen": pairs["rejected"], "rejected": pairs["chosen"]}
    assert pairwise_accuracy(counter, swapped, tokenizer.stoi[END]) == 0.25  # only pair 2 is right


def test_evaluate_policy_measures_kl_rewards_and_scores_of_the_sampled_answers(model, tokenizer):
    import copy

    length_reward = _LengthRewardModel()
    by_length = Labeller(score=lambda answer: float(len(answer.split())))
    result = evaluate_policy(model, copy.deepcopy(model), length_reward, tokenizer, by_length, n_per_prompt=4,
                             max_new_tokens=8, seed=0)
    assert result["kl"] == pytest.approx(0.0, abs=1e-6)  # the policy is the reference
    texts = result["texts"]
    assert len(texts) == 12 and all(0 < len(t.split()) <= 8 for t in texts)
    lengths = [len(t.split()) for t in texts]  # each answer up to and including its end mark
    assert result["true_score"] == pytest.approx(sum(lengths) / 12)
    assert result["rm_score"] == pytest.approx(4 + sum(lengths) / 12)  # the prompt's 4 tokens, then the answer
    assert evaluate_policy(model, model, length_reward, tokenizer, by_length, 4, 8, seed=0) == result
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.final_norm.weight.mul_(30.0)  # sharper next-token distributions at every position
    assert evaluate_policy(changed, model, length_reward, tokenizer, by_length, 4, 8, seed=0)["kl"] > 0.1
