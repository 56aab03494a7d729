"""Learning from preferences: a toy RLHF pipeline that runs on a laptop CPU (chapter 10).

The pipeline has the three stages of InstructGPT (Ouyang et al., 2022), plus DPO (Rafailov et al., 2023):

1. **Supervised fine-tuning (SFT).** A small GPT (:mod:`llmbook.transformer`) learns to answer prompts from
   demonstrations. Here the demonstrations are short reviews written by code (:func:`demonstrations`).
2. **Reward model.** A simulated labeller (:class:`Labeller`) compares pairs of the SFT model's answers; a
   Bradley-Terry model, P(a preferred to b) = sigmoid(r(a) - r(b)), is fitted to its choices. The reward model
   is the SFT model with its output layer replaced by one scalar per position (:func:`reward_model_from`).
3. **Policy optimisation with a KL penalty.** The policy (a copy of the SFT model) is trained to earn reward
   while a per-token KL penalty, weighted by ``beta``, keeps it close to the frozen SFT model
   (:func:`kl_penalised_returns`, :func:`ppo_clipped_loss`, :func:`optimise_policy`). The optimiser is a
   PPO-style clipped policy gradient with the batch's mean reward as baseline: no value network and no
   generalised advantage estimation, which makes it close to RLOO and GRPO.

DPO (:func:`dpo_loss`, :func:`train_dpo`, :func:`dpo_statistics`) fits the policy to the preference pairs
directly, with no reward model and no sampling loop.

The toy world: a prompt ``"| review film :"`` asks for a review of a film, a meal or a hotel; an answer is one
or two clauses such as ``"the plot was superb but the cast was dull ."``. The labeller's hidden score
(:func:`hidden_score`) adds the values of the adjectives (``superb`` is its favourite), charges 2 for every
repeated word, and gives an answer that is not a well-formed review (:func:`is_review`) the score of an
unhelpful one. Its choices between two answers are noisy. The reward model sees only those choices.
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.utils import check_int, check_positive, check_probability, check_token_batch

__all__ = [
    "TOPICS", "POSITIVE", "NEGATIVE", "TONES", "START", "END", "WordTokenizer", "world_tokenizer",
    "prompt_text", "demonstration", "demonstrations", "encode_examples", "sft_loss", "supervised_fine_tune",
    "is_review", "hidden_score", "Labeller", "bradley_terry_probability", "bradley_terry_loss", "reward_model_from",
    "sequence_rewards", "response_mask", "response_logits", "token_log_probs", "kl_per_token",
    "kl_penalised_returns", "ppo_clipped_loss", "dpo_loss", "sample_responses", "preference_pairs",
    "train_reward_model", "pairwise_accuracy", "evaluate_policy", "optimise_policy", "train_dpo",
    "dpo_statistics", "weights_fingerprint", "RLHFRecipe", "RLHF_RECIPE",
]

# ------------------------------------------------------------------------------------------------ the world

#: What can be reviewed, and the parts of each thing a review talks about.
TOPICS = {
    "film": ("plot", "cast", "music", "ending"),
    "meal": ("soup", "bread", "sauce", "dessert"),
    "hotel": ("room", "staff", "view", "breakfast"),
}
#: The labeller's hidden value of each positive adjective: ``superb`` is its favourite, the others count 1.
POSITIVE = {"superb": 2.0, "great": 1.0, "lovely": 1.0, "charming": 1.0, "fine": 1.0}
#: The negative adjectives and the labeller's (hidden) values of them: ``awful`` is the worst.
NEGATIVE = {"awful": -2.0, "dull": -1.0, "poor": -1.0, "weak": -1.0, "bland": -1.0}
#: The instruction words that open a prompt. "review" asks for an honest review, "praise" for a kind one and
#: "criticise" for a harsh one.
TONES = ("review", "praise", "criticise")
#: The token that opens every prompt.
START = "|"
#: The token that ends every answer.
END = "."
_FILLER = ("the", "was", "and", "but", ":")


class WordTokenizer:
    """One token per word (words are separated by spaces). The vocabulary is fixed when it is built.

    ``encode("the plot was great")`` returns one id per word and raises ValueError for unknown words;
    ``decode(ids)`` joins the words with single spaces.
    """

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if not words or any(not isinstance(w, str) or not w or " " in w for w in words):
            raise ValueError("WordTokenizer needs a non-empty list of words without spaces")
        if len(set(words)) != len(words):
            raise ValueError("the vocabulary contains repeated words")
        self.vocab = words
        self.stoi = {w: i for i, w in enumerate(words)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a string of space-separated words, got {type(text).__name__}")
        words = text.split()
        unknown = sorted(set(words) - self.stoi.keys())
        if unknown:
            raise ValueError(f"words not in the vocabulary: {unknown[:10]}")
        return [self.stoi[w] for w in words]

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got {bad[:10]}")
        return " ".join(self.vocab[i] for i in ids)


def world_tokenizer() -> WordTokenizer:
    """The word tokenizer of the toy world: start and end marks, topics, tones, nouns, adjectives, fillers."""
    nouns = [n for parts in TOPICS.values() for n in parts]
    return WordTokenizer([START, END, *TOPICS, *TONES, *nouns, *POSITIVE, *NEGATIVE, *_FILLER])


def prompt_text(topic: str, tone: str = "review") -> str:
    """The prompt (4 tokens) asking for a review of ``topic``, e.g. ``"| review film :"``."""
    if topic not in TOPICS:
        raise ValueError(f"topic must be one of {tuple(TOPICS)}, got {topic!r}")
    if tone not in TONES:
        raise ValueError(f"tone must be one of {TONES}, got {tone!r}")
    return f"{START} {tone} {topic} :"


def demonstration(rng, topic: str, tone: str = "review") -> str:
    """One demonstration answer (a review of ``topic``) written by code, ending with ``" ."``.

    ``rng`` is a ``random.Random`` instance that makes every choice (so a seeded one gives the same answer).

    Two clauses "the NOUN was ADJECTIVE", joined by "and" (same sentiment) or "but" (opposite sentiment), with
    two different nouns and two different adjectives. For ``"review"`` an
    adjective is positive or negative with equal chance; ``"praise"`` makes it positive and ``"criticise"``
    negative 90 % of the time.
    """
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
    prompt_text(topic, tone)  # checks topic and tone
    nouns = rng.sample(TOPICS[topic], 2)
    p_positive = {"review": 0.5, "praise": 0.9, "criticise": 0.1}[tone]
    unused = {True: list(POSITIVE), False: list(NEGATIVE)}
    words, previous = [], None
    for noun in nouns:
        positive = rng.random() < p_positive
        adjective = unused[positive].pop(rng.randrange(len(unused[positive])))
        if previous is not None:
            words.append("and" if positive == previous else "but")
        words += ["the", noun, "was", adjective]
        previous = positive
    return " ".join(words + [END])


def demonstrations(n: int, seed: int = 0, tone_fraction: float = 0.2) -> list[str]:
    """``n`` demonstrations, each ``prompt + " " + answer``, with topics drawn at random.

    A fraction ``tone_fraction`` of the prompts asks for praise or criticism (equally often); the others ask
    for a plain review. Deterministic for a given ``seed``.
    """
    check_int("n", n, minimum=1)
    check_int("seed", seed, minimum=0)
    check_probability("tone_fraction", tone_fraction)
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        topic = rng.choice(tuple(TOPICS))
        tone = rng.choice(TONES[1:]) if rng.random() < tone_fraction else "review"
        texts.append(f"{prompt_text(topic, tone)} {demonstration(rng, topic, tone)}")
    return texts


def encode_examples(tokenizer: WordTokenizer, texts: Sequence[str], length: int) -> torch.Tensor:
    """Token ids of ``texts`` (prompt + answer), padded with end marks to ``length``: (N, length).

    Raises ValueError if a text is longer than ``length`` tokens.
    """
    check_int("length", length, minimum=2)
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings")
    rows = [tokenizer.encode(t) for t in texts]
    too_long = [len(r) for r in rows if len(r) > length]
    if too_long:
        raise ValueError(f"a text has {max(too_long)} tokens, more than length={length}")
    end_id = tokenizer.stoi[END]
    return torch.tensor([r + [end_id] * (length - len(r)) for r in rows])


def sft_loss(model: nn.Module, ids: torch.Tensor, prompt_length: int, end_id: int) -> torch.Tensor:
    """Supervised fine-tuning loss: mean cross-entropy of the answer tokens only (the prompt is not learned).

    ``ids`` (B, T) holds prompts of ``prompt_length`` tokens followed by answers padded after their end mark;
    padding is not counted.
    """
    mask = response_mask(ids, prompt_length, end_id)
    log_probs = token_log_probs(response_logits(model, ids, prompt_length), ids[:, prompt_length:])
    return -(log_probs * mask).sum() / mask.sum()


def _train_steps(optimizer: torch.optim.Optimizer, step_loss: Callable[[], torch.Tensor], steps: int,
                 verbose: bool, report: Callable[[int, float], str],
                 after_step: Callable[[int], None] | None = None) -> list[float]:
    """The loop shared by SFT, the reward model and DPO: ``steps`` optimiser steps on ``step_loss()`` (which
    draws its own batch); prints ``report(step, mean recent loss)`` four times if ``verbose``; calls
    ``after_step(step)`` after every step if given; returns the losses."""
    losses: list[float] = []
    for step in range(steps):
        loss = step_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if verbose and (step + 1) % max(1, steps // 4) == 0:
            recent = losses[-max(1, steps // 4):]
            print(report(step + 1, sum(recent) / len(recent)), flush=True)
        if after_step is not None:
            after_step(step + 1)
    return losses


def supervised_fine_tune(model: nn.Module, ids: torch.Tensor, prompt_length: int, end_id: int, *, steps: int,
                         batch_size: int, lr: float, seed: int = 0, verbose: bool = True) -> list[float]:
    """Fine-tune ``model`` in place on demonstrations ``ids`` (from :func:`encode_examples`) with :func:`sft_loss`.

    AdamW, ``batch_size`` random demonstrations per step (a generator seeded with ``seed``). Prints the mean
    loss four times if ``verbose``. Returns the loss of every step.
    """
    check_int("steps", steps, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_positive("lr", lr)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)

    def step_loss():
        batch = ids[torch.randint(len(ids), (batch_size,), generator=generator)]
        return sft_loss(model, batch, prompt_length, end_id)

    model.train()
    losses = _train_steps(optimizer, step_loss, steps, verbose,
                          lambda step, loss: f"step {step:4d}/{steps}  SFT loss {loss:.3f}")
    model.eval()
    return losses


def _words(response) -> list[str]:
    if isinstance(response, str):
        return response.split()
    if isinstance(response, (list, tuple)) and all(isinstance(w, str) for w in response):
        return list(response)
    raise TypeError(f"response must be a string or a list of words, got {type(response).__name__}")


def is_review(response, values: dict[str, float] | None = None) -> bool:
    """True if an answer is a well-formed review up to its first end mark, False otherwise.

    A review in the toy world has two clauses ``"the NOUN was ADJECTIVE"`` joined by ``"and"`` or ``"but"``
    and followed by the end mark, with NOUN any noun of :data:`TOPICS` and ADJECTIVE any word of ``values``
    (by default :data:`POSITIVE` and :data:`NEGATIVE`). Words after the end mark are ignored; an answer without
    one is not a review. ``response`` is a string or a list of words.
    """
    words = _words(response)
    adjectives = {**POSITIVE, **NEGATIVE} if values is None else values
    if END not in words:
        return False
    words = words[:words.index(END)]
    nouns = {n for parts in TOPICS.values() for n in parts}
    return (len(words) == 9 and words[4] in ("and", "but")
            and all(c[0] == "the" and c[1] in nouns and c[2] == "was" and c[3] in adjectives
                    for c in (words[:4], words[5:])))


def hidden_score(response, repetition_penalty: float = 2.0, values: dict[str, float] | None = None,
                 unhelpful: float = -1.0) -> float:
    """The labeller's hidden score of an answer: what it likes, which the reward model never sees.

    An answer that is not a well-formed review (:func:`is_review`: it never ends, says nothing, or breaks the
    pattern "the NOUN was ADJECTIVE") is unhelpful and scores ``unhelpful``. Otherwise each adjective counts
    with its value (:data:`POSITIVE` and :data:`NEGATIVE`, or ``values``) the first time it appears, and every
    later occurrence of a noun or adjective already used costs ``repetition_penalty`` instead. Words after the
    first ``"."`` are ignored. Returns a float.
    """
    if isinstance(repetition_penalty, bool) or not isinstance(repetition_penalty, (int, float)) \
            or not math.isfinite(repetition_penalty) or repetition_penalty < 0:
        raise ValueError(f"repetition_penalty must be a finite number >= 0, got {repetition_penalty!r}")
    values = {**POSITIVE, **NEGATIVE} if values is None else values
    if not isinstance(values, dict):
        raise TypeError(f"values must be a dict from word to value, got {type(values).__name__}")
    if isinstance(unhelpful, bool) or not isinstance(unhelpful, (int, float)) or not math.isfinite(unhelpful):
        raise ValueError(f"unhelpful must be a finite number, got {unhelpful!r}")
    words = _words(response)
    if not is_review(words, values):
        return float(unhelpful)
    words = words[:words.index(END)]
    content = set(values) | {n for parts in TOPICS.values() for n in parts}
    score, seen = 0.0, set()
    for word in words:
        if word not in content:
            continue
        if word in seen:
            score -= repetition_penalty
        else:
            score += values.get(word, 0.0)
            seen.add(word)
    return score


class Labeller:
    """A simulated labeller: it prefers the answer with the higher :func:`hidden_score`, noisily.

    The choice follows a Bradley-Terry model itself: answer a is preferred to b with probability
    sigmoid((score(a) - score(b)) / temperature), so close calls are nearly coin flips and only clear ones are
    almost never wrong. ``temperature`` > 0 sets the noise (at the default 1, a gap of one point is chosen
    correctly 73 % of the time); ``score`` can replace the hidden score (a function from an answer to a
    float), e.g. to give the labeller a different taste.
    """

    def __init__(self, temperature: float = 1.0, repetition_penalty: float = 2.0,
                 score: Callable[[str], float] | None = None):
        self.temperature = check_positive("temperature", temperature)
        self.repetition_penalty = float(repetition_penalty)
        hidden_score("", self.repetition_penalty)  # checks the penalty
        if score is not None and not callable(score):
            raise TypeError("score must be a function from an answer to a number")
        self._score = score

    def score(self, response) -> float:
        """The hidden score of one answer (a string or list of words)."""
        if self._score is not None:
            return float(self._score(response))
        return hidden_score(response, self.repetition_penalty)

    def probability(self, response_a, response_b) -> float:
        """P(the labeller prefers a to b) = sigmoid((score(a) - score(b)) / temperature)."""
        gap = (self.score(response_a) - self.score(response_b)) / self.temperature
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, gap))))

    def prefers_first(self, responses_a: Sequence, responses_b: Sequence, seed: int = 0) -> list[bool]:
        """One noisy choice per pair: True where a is preferred. Deterministic for a given ``seed``."""
        if len(responses_a) != len(responses_b):
            raise ValueError(f"need as many a's as b's, got {len(responses_a)} and {len(responses_b)}")
        check_int("seed", seed, minimum=0)
        rng = random.Random(seed)
        return [rng.random() < self.probability(a, b) for a, b in zip(responses_a, responses_b, strict=True)]


# ----------------------------------------------------------------------------------------- reward model


def _check_tensor(name: str, value, dim: int | None = None) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if dim is not None and value.dim() != dim:
        raise ValueError(f"{name} must have {dim} dimension(s), got shape {tuple(value.shape)}")
    if not value.dtype.is_floating_point:
        raise TypeError(f"{name} must be floating point, got dtype {value.dtype}")
    return value


def _check_same_shape(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"the tensors must have the same shape, got {shapes}")


def bradley_terry_probability(reward_a, reward_b):
    """P(a preferred to b) = sigmoid(r(a) - r(b)) under the Bradley-Terry model (Bradley & Terry, 1952).

    Works on floats (returns a float) or on tensors of the same shape (returns a tensor).
    """
    if isinstance(reward_a, torch.Tensor) or isinstance(reward_b, torch.Tensor):
        a, b = _check_tensor("reward_a", reward_a), _check_tensor("reward_b", reward_b)
        _check_same_shape(reward_a=a, reward_b=b)
        return torch.sigmoid(a - b)
    for name, value in (("reward_a", reward_a), ("reward_b", reward_b)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError(f"{name} must be a finite number or a tensor, got {value!r}")
    gap = max(-50.0, min(50.0, reward_a - reward_b))
    return 1.0 / (1.0 + math.exp(-gap))


def bradley_terry_loss(rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of the labeller's choices: mean of -log sigmoid(r_chosen - r_rejected).

    Both arguments have shape (N,): the reward of the preferred and of the other answer of each pair.
    """
    chosen = _check_tensor("rewards_chosen", rewards_chosen, dim=1)
    rejected = _check_tensor("rewards_rejected", rewards_rejected, dim=1)
    _check_same_shape(rewards_chosen=chosen, rewards_rejected=rejected)
    if len(chosen) == 0:
        raise ValueError("need at least one pair")
    return -F.logsigmoid(chosen - rejected).mean()


def reward_model_from(model: nn.Module) -> nn.Module:
    """A reward model made from a language model: a copy whose output layer gives one number per position.

    As in InstructGPT, the reward model starts from the SFT model with its unembedding (the layer that turns
    the last hidden state into vocabulary logits) replaced, here by ``nn.Linear(d_model, 1)`` initialised to
    zero. Calling the copy returns ``(scores, None)`` with scores of shape (B, T, 1); the reward of an answer
    is the score at its last token (:func:`sequence_rewards`). The original model is not changed.
    """
    if not hasattr(model, "lm_head") or not hasattr(model, "config"):
        raise TypeError("model must be a GPT from llmbook.transformer (with .lm_head and .config)")
    reward_model = copy.deepcopy(model)
    reward_model.lm_head = nn.Linear(model.config.d_model, 1)  # no longer tied to the token embedding
    nn.init.zeros_(reward_model.lm_head.weight)
    nn.init.zeros_(reward_model.lm_head.bias)
    return reward_model


def _check_prompt_length(prompt_length: int, ids: torch.Tensor) -> int:
    check_int("prompt_length", prompt_length, minimum=1)
    if prompt_length >= ids.shape[1]:
        raise ValueError(f"prompt_length must be smaller than the sequence length {ids.shape[1]}, got {prompt_length}")
    return prompt_length


def response_mask(ids: torch.Tensor, prompt_length: int, end_id: int) -> torch.Tensor:
    """Which answer tokens count: (B, T - prompt_length) booleans, True up to and including the first end mark.

    An answer without an end mark counts in full. Tokens after the end mark are padding.
    """
    ids = check_token_batch("ids", ids)
    prompt_length = _check_prompt_length(prompt_length, ids)
    check_int("end_id", end_id, minimum=0)
    answer = ids[:, prompt_length:]
    ended_before = torch.cumsum((answer == end_id).long(), dim=1) - (answer == end_id).long()
    return ended_before == 0


def sequence_rewards(reward_model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The reward of each answer, shape (B,): the reward model's score at the answer's last counted token.

    ``ids`` (B, T) holds prompt and answer; ``mask`` (B, T_answer) comes from :func:`response_mask`, and the
    answer is the last T_answer positions of ``ids``. The model is causal, so padding after an answer's last
    token does not change its reward.
    """
    ids = check_token_batch("ids", ids)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.dim() != 2 \
            or mask.shape[0] != ids.shape[0] or mask.shape[1] >= ids.shape[1]:
        raise ValueError(f"mask must be a (batch, answer length) boolean tensor shorter than ids {tuple(ids.shape)}")
    scores = reward_model(ids)[0][..., 0]  # (B, T)
    last = ids.shape[1] - mask.shape[1] + mask.long().sum(dim=1) - 1  # index of each answer's last token
    last = last.clamp_min(ids.shape[1] - mask.shape[1])
    return scores.gather(1, last[:, None])[:, 0]


# -------------------------------------------------------------------------------- the policy and the KL


def response_logits(model: nn.Module, ids: torch.Tensor, prompt_length: int) -> torch.Tensor:
    """The logits the model gives at every answer position: (B, T - prompt_length, vocab).

    Row t predicts answer token t, i.e. ``ids[:, prompt_length + t]``, from everything before it.
    """
    ids = check_token_batch("ids", ids)
    prompt_length = _check_prompt_length(prompt_length, ids)
    logits, _ = model(ids[:, :-1])
    return logits[:, prompt_length - 1:]


def token_log_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log P(token) at every position: logits (B, T, V) and tokens (B, T) -> (B, T)."""
    logits = _check_tensor("logits", logits, dim=3)
    tokens = check_token_batch("tokens", tokens)
    if tokens.shape != logits.shape[:2]:
        raise ValueError(f"tokens must have shape {tuple(logits.shape[:2])}, got {tuple(tokens.shape)}")
    return torch.log_softmax(logits, dim=-1).gather(-1, tokens[..., None])[..., 0]


def kl_per_token(policy_logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """KL(policy || reference) of the next-token distributions at every position, in nats: (B, T).

    Both inputs are logits of shape (B, T, V). The result is 0 where the two distributions are equal and
    positive elsewhere: sum over v of p(v) (log p(v) - log q(v)).
    """
    policy_logits = _check_tensor("policy_logits", policy_logits, dim=3)
    reference_logits = _check_tensor("reference_logits", reference_logits, dim=3)
    _check_same_shape(policy_logits=policy_logits, reference_logits=reference_logits)
    log_p = torch.log_softmax(policy_logits, dim=-1)
    log_q = torch.log_softmax(reference_logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def kl_penalised_returns(rewards: torch.Tensor, log_probs: torch.Tensor, reference_log_probs: torch.Tensor,
                         mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-token returns of the KL-penalised objective: (B, T).

    Every answer token t pays a penalty ``beta * (log pi(y_t) - log pi_ref(y_t))``, the per-token KL penalty of
    InstructGPT; the reward model's reward (B,) arrives at the last token. The return at token t is the reward
    plus the penalties from t to the end (no discounting); it is 0 at masked (padding) positions. With
    ``beta = 0`` every return equals the reward; where the policy equals the reference the penalty is 0.
    """
    rewards = _check_tensor("rewards", rewards, dim=1)
    log_probs = _check_tensor("log_probs", log_probs, dim=2)
    reference_log_probs = _check_tensor("reference_log_probs", reference_log_probs, dim=2)
    _check_same_shape(log_probs=log_probs, reference_log_probs=reference_log_probs)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != log_probs.shape:
        raise ValueError(f"mask must be a boolean tensor of shape {tuple(log_probs.shape)}")
    if len(rewards) != len(log_probs):
        raise ValueError(f"need one reward per answer: {len(log_probs)} answers, {len(rewards)} rewards")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    penalties = -beta * (log_probs - reference_log_probs) * mask  # (B, T)
    to_go = penalties.flip(1).cumsum(1).flip(1)  # sum of the penalties from t to the end
    return (rewards[:, None] + to_go) * mask


def ppo_clipped_loss(log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor,
                     mask: torch.Tensor, clip: float = 0.2) -> torch.Tensor:
    """PPO's clipped surrogate loss (Schulman et al., 2017), averaged over the counted tokens.

    ratio = pi(y_t) / pi_old(y_t); loss = -mean(min(ratio * A, clip(ratio, 1 - clip, 1 + clip) * A)).
    All inputs have shape (B, T); ``old_log_probs`` and ``advantages`` are treated as constants. On the first
    update after sampling, ratio = 1 and the gradient is REINFORCE's: -A * grad log pi(y_t).
    """
    log_probs = _check_tensor("log_probs", log_probs, dim=2)
    old_log_probs = _check_tensor("old_log_probs", old_log_probs, dim=2)
    advantages = _check_tensor("advantages", advantages, dim=2)
    _check_same_shape(log_probs=log_probs, old_log_probs=old_log_probs, advantages=advantages)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != log_probs.shape:
        raise ValueError(f"mask must be a boolean tensor of shape {tuple(log_probs.shape)}")
    check_positive("clip", clip)
    if not mask.any():
        raise ValueError("mask selects no token")
    ratio = torch.exp(log_probs - old_log_probs.detach())
    advantages = advantages.detach()
    surrogate = torch.minimum(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    return -(surrogate * mask).sum() / mask.sum()


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, reference_chosen: torch.Tensor,
             reference_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """The DPO loss (Rafailov et al., 2023), averaged over the pairs.

    Each argument has shape (N,): the total log-probability of the preferred (chosen) or the other (rejected)
    answer under the policy or the frozen reference model. With the implicit rewards
    r = beta * (log pi(y) - log pi_ref(y)), the loss is the Bradley-Terry loss -log sigmoid(r_chosen - r_rejected).
    """
    tensors = {"policy_chosen": policy_chosen, "policy_rejected": policy_rejected,
               "reference_chosen": reference_chosen, "reference_rejected": reference_rejected}
    for name, value in tensors.items():
        _check_tensor(name, value, dim=1)
    _check_same_shape(**tensors)
    check_positive("beta", beta)
    chosen = beta * (policy_chosen - reference_chosen)
    rejected = beta * (policy_rejected - reference_rejected)
    return bradley_terry_loss(chosen, rejected)


# ------------------------------------------------------------------------------------------ the pipeline


@torch.no_grad()
def sample_responses(model: nn.Module, prompts: Sequence[Sequence[int]], n_per_prompt: int,
                     max_new_tokens: int, generator: torch.Generator,
                     end_id: int | None = None) -> tuple[torch.Tensor, int]:
    """Sample ``n_per_prompt`` answers to each prompt (all prompts the same length) with temperature 1.

    All prompts are answered in one batch, one token at a time, as :func:`llmbook.generation.generate` does
    for one prompt; the model is only read. With ``end_id``, every token after an answer's end mark is the end
    mark too (padding, which :func:`response_mask` ignores), and sampling stops early once every answer has
    ended. Returns ``(ids, prompt_length)`` with ids of shape
    (len(prompts) * n_per_prompt, prompt_length + max_new_tokens).
    """
    check_int("n_per_prompt", n_per_prompt, minimum=1)
    check_int("max_new_tokens", max_new_tokens, minimum=1)
    if end_id is not None:
        check_int("end_id", end_id, minimum=0)
    prompts = [list(p) for p in prompts]
    if not prompts or len({len(p) for p in prompts}) != 1:
        raise ValueError("prompts must be a non-empty list of token-id lists, all of the same length")
    was_training = model.training
    model.eval()
    ids = torch.tensor([p for p in prompts for _ in range(n_per_prompt)])  # (B, prompt_length)
    ended = torch.zeros(len(ids), dtype=torch.bool)
    for _ in range(max_new_tokens):
        logits = model(ids[:, -model.config.n_ctx:])[0][:, -1]  # (B, vocab)
        next_ids = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)[:, 0]
        if end_id is not None:
            next_ids = torch.where(ended, end_id, next_ids)
            ended |= next_ids == end_id
        ids = torch.cat([ids, next_ids[:, None]], dim=1)
        if end_id is not None and ended.all():
            break
    model.train(was_training)
    missing = len(prompts[0]) + max_new_tokens - ids.shape[1]
    if missing:  # every answer ended early: pad with end marks
        ids = torch.cat([ids, torch.full((len(ids), missing), end_id)], dim=1)
    return ids, len(prompts[0])


def _answers_text(tokenizer, ids: torch.Tensor, prompt_length: int) -> list[str]:
    """Each answer as text, cut after its first end mark."""
    texts = []
    for row in ids[:, prompt_length:].tolist():
        words = tokenizer.decode(row).split()
        texts.append(" ".join(words[:words.index(END) + 1] if END in words else words))
    return texts


def preference_pairs(model: nn.Module, tokenizer: WordTokenizer, labeller: Labeller, n_pairs_per_prompt: int,
                     max_new_tokens: int, seed: int = 0) -> dict:
    """Preference data: two sampled answers per prompt, compared by the labeller.

    For each topic, ``n_pairs_per_prompt`` pairs of answers to ``prompt_text(topic)`` are sampled from
    ``model``. Returns a dict with ``chosen`` and ``rejected`` (both (N, T) token ids, the preferred answer of
    each pair first), ``prompt_length``, and the texts ``chosen_text`` and ``rejected_text``.
    """
    check_int("n_pairs_per_prompt", n_pairs_per_prompt, minimum=1)
    generator = torch.Generator().manual_seed(seed)
    prompts = [tokenizer.encode(prompt_text(topic)) for topic in TOPICS]
    ids, prompt_length = sample_responses(model, prompts, 2 * n_pairs_per_prompt, max_new_tokens, generator,
                                          tokenizer.stoi[END])
    first, second = ids[0::2], ids[1::2]
    text_a = _answers_text(tokenizer, first, prompt_length)
    text_b = _answers_text(tokenizer, second, prompt_length)
    a_wins = torch.tensor(labeller.prefers_first(text_a, text_b, seed=seed))
    chosen = torch.where(a_wins[:, None], first, second)
    rejected = torch.where(a_wins[:, None], second, first)
    return {"chosen": chosen, "rejected": rejected, "prompt_length": prompt_length,
            "chosen_text": [a if w else b for a, b, w in zip(text_a, text_b, a_wins.tolist(), strict=True)],
            "rejected_text": [b if w else a for a, b, w in zip(text_a, text_b, a_wins.tolist(), strict=True)]}


def _split_pairs(pairs: dict, indices: torch.Tensor) -> dict:
    return {k: (v[indices] if isinstance(v, torch.Tensor) else
                ([v[i] for i in indices.tolist()] if isinstance(v, list) else v)) for k, v in pairs.items()}


def _pair_rewards(reward_model: nn.Module, pairs: dict, end_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    p = pairs["prompt_length"]
    chosen = sequence_rewards(reward_model, pairs["chosen"], response_mask(pairs["chosen"], p, end_id))
    rejected = sequence_rewards(reward_model, pairs["rejected"], response_mask(pairs["rejected"], p, end_id))
    return chosen, rejected


@torch.no_grad()
def pairwise_accuracy(reward_model: nn.Module, pairs: dict, end_id: int) -> float:
    """Fraction of pairs in which the reward model gives the preferred answer the higher reward."""
    was_training = reward_model.training
    reward_model.eval()
    chosen, rejected = _pair_rewards(reward_model, pairs, end_id)
    reward_model.train(was_training)
    return float((chosen > rejected).float().mean())


def train_reward_model(reward_model: nn.Module, pairs: dict, end_id: int, *, steps: int, batch_size: int,
                       lr: float, seed: int = 0, verbose: bool = True) -> list[float]:
    """Fit a reward model to preference pairs with the Bradley-Terry loss and Adam; returns the losses.

    Every step takes ``batch_size`` random pairs (from a generator seeded with ``seed``). Prints the mean loss
    four times if ``verbose``.
    """
    check_int("steps", steps, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_positive("lr", lr)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(reward_model.parameters(), lr=lr)
    n = len(pairs["chosen"])

    def step_loss():
        batch = _split_pairs(pairs, torch.randint(n, (batch_size,), generator=generator))
        return bradley_terry_loss(*_pair_rewards(reward_model, batch, end_id))

    reward_model.train()
    losses = _train_steps(optimizer, step_loss, steps, verbose,
                          lambda step, loss: f"step {step:4d}/{steps}  Bradley-Terry loss {loss:.3f}")
    reward_model.eval()
    return losses


@torch.no_grad()
def evaluate_policy(policy: nn.Module, reference: nn.Module, reward_model: nn.Module, tokenizer: WordTokenizer,
                    labeller: Labeller, n_per_prompt: int, max_new_tokens: int, seed: int = 0) -> dict:
    """Sample answers and measure them: mean reward-model score, mean hidden score, mean KL to the reference.

    The KL is the exact per-token KL(policy || reference) of the next-token distributions, summed over each
    answer's counted tokens and averaged over answers (nats per answer). Also returns the answers' texts.
    """
    generator = torch.Generator().manual_seed(seed)
    prompts = [tokenizer.encode(prompt_text(topic)) for topic in TOPICS]
    end_id = tokenizer.stoi[END]
    ids, p = sample_responses(policy, prompts, n_per_prompt, max_new_tokens, generator, end_id)
    mask = response_mask(ids, p, end_id)
    kl = (kl_per_token(response_logits(policy, ids, p), response_logits(reference, ids, p)) * mask).sum(1)
    texts = _answers_text(tokenizer, ids, p)
    return {"rm_score": float(sequence_rewards(reward_model, ids, mask).mean()),
            "true_score": sum(labeller.score(t) for t in texts) / len(texts),
            "kl": float(kl.mean()), "texts": texts}


def optimise_policy(reference: nn.Module, reward_model: nn.Module, tokenizer: WordTokenizer, labeller: Labeller,
                    *, beta: float, iterations: int, n_per_prompt: int, max_new_tokens: int, lr: float,
                    ppo_epochs: int = 1, clip: float = 0.2, eval_every: int = 10, print_every: int | None = None,
                    seed: int = 0, verbose: bool = True) -> tuple[nn.Module, dict]:
    """KL-penalised policy optimisation: a PPO-style clipped policy gradient with a per-token KL penalty.

    Each iteration samples ``n_per_prompt`` answers per topic from the current policy, scores them with the
    reward model, builds the per-token returns of :func:`kl_penalised_returns`, subtracts the batch's mean
    reward as a baseline (advantage = return - baseline), and takes ``ppo_epochs`` Adam steps on
    :func:`ppo_clipped_loss`. There is no value network and no generalised advantage estimation (GAE), so this
    is not full PPO: with a mean baseline over sampled answers it is close to RLOO (Ahmadian et al., 2024) and
    GRPO (Shao et al., 2024); with ``ppo_epochs=1`` it is REINFORCE with a baseline. Every ``eval_every``
    iterations the mean reward-model score, hidden score and exact KL (nats per answer) of the sampled batch
    are recorded; if ``verbose`` they are printed every ``print_every`` iterations (default: at every record).
    Returns ``(policy, history)`` with history lists ``iteration``, ``rm_score``, ``true_score`` and ``kl``;
    the reference model is not changed.
    """
    check_int("iterations", iterations, minimum=1)
    check_int("ppo_epochs", ppo_epochs, minimum=1)
    check_int("eval_every", eval_every, minimum=1)
    print_every = eval_every if print_every is None else check_int("print_every", print_every, minimum=1)
    check_positive("lr", lr)
    kl_penalised_returns(torch.zeros(1), torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool),
                         beta)  # checks beta
    policy = copy.deepcopy(reference).train()
    reference.eval()
    reward_model.eval()
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    prompts = [tokenizer.encode(prompt_text(topic)) for topic in TOPICS]
    end_id = tokenizer.stoi[END]
    history = {"iteration": [], "rm_score": [], "true_score": [], "kl": []}
    for iteration in range(iterations + 1):
        ids, p = sample_responses(policy, prompts, n_per_prompt, max_new_tokens, generator, end_id)
        mask = response_mask(ids, p, end_id)
        answers = ids[:, p:]
        with torch.no_grad():
            rewards = sequence_rewards(reward_model, ids, mask)
            reference_logits = response_logits(reference, ids, p)
            old_logits = response_logits(policy, ids, p)
        if iteration % eval_every == 0:
            kl = (kl_per_token(old_logits, reference_logits) * mask).sum(1).mean()
            texts = _answers_text(tokenizer, ids, p)
            history["iteration"].append(iteration)
            history["rm_score"].append(float(rewards.mean()))
            history["true_score"].append(sum(labeller.score(t) for t in texts) / len(texts))
            history["kl"].append(float(kl))
            if verbose and iteration % print_every == 0:
                print(f"beta {beta:<5g} iteration {iteration:3d}  reward {history['rm_score'][-1]:6.2f}  "
                      f"hidden score {history['true_score'][-1]:6.2f}  KL {history['kl'][-1]:5.2f}", flush=True)
        if iteration == iterations:
            break
        old_log_probs = token_log_probs(old_logits, answers)
        returns = kl_penalised_returns(rewards, old_log_probs, token_log_probs(reference_logits, answers),
                                       mask, beta)
        advantages = (returns - rewards.mean()) * mask
        for _ in range(ppo_epochs):
            log_probs = token_log_probs(response_logits(policy, ids, p), answers)
            loss = ppo_clipped_loss(log_probs, old_log_probs, advantages, mask, clip)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    policy.eval()
    return policy, history


def _answer_log_probs(model: nn.Module, ids: torch.Tensor, prompt_length: int, end_id: int) -> torch.Tensor:
    mask = response_mask(ids, prompt_length, end_id)
    logits = response_logits(model, ids, prompt_length)
    return (token_log_probs(logits, ids[:, prompt_length:]) * mask).sum(1)


def train_dpo(reference: nn.Module, pairs: dict, end_id: int, *, beta: float, steps: int, batch_size: int,
              lr: float, seed: int = 0, verbose: bool = True,
              callback: Callable[[int, nn.Module], None] | None = None,
              callback_every: int = 25) -> tuple[nn.Module, list[float]]:
    """Direct preference optimisation: fit a copy of ``reference`` to the pairs with :func:`dpo_loss`.

    The reference log-probabilities are computed once; every step takes ``batch_size`` random pairs (from a
    generator seeded with ``seed``) and one Adam step. If given, ``callback(step, policy)`` is called after
    every ``callback_every`` steps, e.g. to record :func:`dpo_statistics` on held-out pairs (it should not
    change the policy). Returns ``(policy, losses)``; the reference model is not changed.
    """
    check_int("steps", steps, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_int("callback_every", callback_every, minimum=1)
    check_positive("lr", lr)
    check_positive("beta", beta)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be a function of (step, policy)")
    p = pairs["prompt_length"]
    reference.eval()
    with torch.no_grad():
        reference_chosen = _answer_log_probs(reference, pairs["chosen"], p, end_id)
        reference_rejected = _answer_log_probs(reference, pairs["rejected"], p, end_id)
    policy = copy.deepcopy(reference).train()
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)

    def step_loss():
        batch = torch.randint(len(pairs["chosen"]), (batch_size,), generator=generator)
        return dpo_loss(_answer_log_probs(policy, pairs["chosen"][batch], p, end_id),
                        _answer_log_probs(policy, pairs["rejected"][batch], p, end_id),
                        reference_chosen[batch], reference_rejected[batch], beta)

    def after_step(step):
        if callback is not None and step % callback_every == 0:
            policy.eval()
            callback(step, policy)
            policy.train()

    losses = _train_steps(optimizer, step_loss, steps, verbose,
                          lambda step, loss: f"DPO beta {beta:g} step {step:4d}/{steps}  loss {loss:.3f}",
                          after_step)
    policy.eval()
    return policy, losses


@torch.no_grad()
def dpo_statistics(policy: nn.Module, reference: nn.Module, pairs: dict, end_id: int, beta: float) -> dict:
    """How a DPO policy treats preference pairs, e.g. held-out ones: a dict of floats (means over the pairs).

    With the log-ratios ``chosen = log pi(y_w) - log pi_ref(y_w)`` and ``rejected = log pi(y_l) -
    log pi_ref(y_l)`` (nats, summed over each answer's tokens), it returns ``loss`` (the DPO loss),
    ``accuracy`` (the share of pairs whose implicit reward margin ``beta * (chosen - rejected)`` is positive),
    ``margin`` (the mean of that margin), and the means of ``chosen`` and ``rejected``. A falling ``chosen``
    means the policy makes even the preferred answers less likely than the reference did.
    """
    check_positive("beta", beta)
    p = pairs["prompt_length"]
    chosen = (_answer_log_probs(policy, pairs["chosen"], p, end_id)
              - _answer_log_probs(reference, pairs["chosen"], p, end_id))
    rejected = (_answer_log_probs(policy, pairs["rejected"], p, end_id)
                - _answer_log_probs(reference, pairs["rejected"], p, end_id))
    margins = beta * (chosen - rejected)
    return {"loss": float(-F.logsigmoid(margins).mean()), "accuracy": float((margins > 0).float().mean()),
            "margin": float(margins.mean()), "chosen": float(chosen.mean()), "rejected": float(rejected.mean())}


def weights_fingerprint(model: nn.Module) -> str:
    """A short fingerprint of all of a model's weights: the first 16 hex digits of a SHA-256 of their bytes.

    Any change to any weight changes it; running the model (generation) does not. Chapter 6 introduced it to
    show that a prompt changes no weight; chapter 10 uses it to tell training apart from chatting.
    """
    if not hasattr(model, "state_dict"):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class RLHFRecipe:
    """Chapter 10's settings in one place, shared by ``notebooks/10_rlhf.ipynb`` and ``benchmarks/rlhf.py``.

    The notebook names them in capitals (``D_MODEL``, ``SFT_STEPS``, ``BETAS``, ...); ``tests/test_benchmarks.py``
    reads its code and checks that every capital equals the field of the same name here, lower-cased
    (:attr:`CAPITALS` lists them), so the benchmark times the pipeline the chapter runs.
    """

    n_demonstrations: int = 3000
    tone_fraction: float = 0.6
    d_model: int = 32
    n_layers: int = 1
    n_heads: int = 4
    prompt_length: int = 4
    max_new_tokens: int = 10
    sft_steps: int = 500
    batch_size: int = 32
    sft_lr: float = 3e-3
    n_pairs_per_topic: int = 200
    n_train_pairs: int = 480
    rm_steps: int = 300
    rm_lr: float = 1e-3
    n_per_prompt: int = 16
    ppo_lr: float = 3e-3
    ppo_epochs: int = 2
    betas: tuple = (0.0, 0.1, 0.5)
    seeds: tuple = (0, 1, 2)
    iterations: int = 50
    block: int = 5
    dpo_beta: float = 1.0
    dpo_lrs: tuple = (3e-4, 1e-3)
    dpo_steps: int = 100
    eval_per_prompt: int = 32
    eval_seed: int = 5

    #: The notebook's capitals that must equal a field of the recipe (``D_MODEL`` -> ``d_model``).
    CAPITALS = ("D_MODEL", "N_LAYERS", "N_HEADS", "PROMPT_LENGTH", "MAX_NEW_TOKENS", "SFT_STEPS", "BATCH_SIZE",
                "SFT_LR", "N_PAIRS_PER_TOPIC", "RM_STEPS", "RM_LR", "N_PER_PROMPT", "PPO_LR", "PPO_EPOCHS", "BETAS",
                "SEEDS", "ITERATIONS", "BLOCK", "DPO_BETA", "DPO_LRS", "DPO_STEPS")

    def __post_init__(self):
        for name in ("n_demonstrations", "d_model", "n_layers", "n_heads", "prompt_length", "max_new_tokens",
                     "sft_steps", "batch_size", "n_pairs_per_topic", "n_train_pairs", "rm_steps", "n_per_prompt",
                     "ppo_epochs", "iterations", "block", "dpo_steps", "eval_per_prompt"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("sft_lr", "rm_lr", "ppo_lr", "dpo_beta"):
            check_positive(name, getattr(self, name))
        check_probability("tone_fraction", self.tone_fraction)
        if not self.betas or any(b < 0 for b in self.betas) or not self.seeds or not self.dpo_lrs:
            raise ValueError("betas (each >= 0), seeds and dpo_lrs must each hold at least one value")
        if self.n_train_pairs >= 3 * self.n_pairs_per_topic:
            raise ValueError(f"n_train_pairs ({self.n_train_pairs}) must leave some of the "
                             f"{3 * self.n_pairs_per_topic} pairs held out")


#: The recipe of chapter 10 as the notebook runs it.
RLHF_RECIPE = RLHFRecipe()
