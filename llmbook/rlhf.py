"""Learning from preferences: a toy RLHF pipeline that runs on a laptop CPU (chapter 10).

The pipeline has the three stages of InstructGPT (Ouyang et al., 2022), plus DPO (Rafailov et al., 2023). The
world it runs in (prompts asking for reviews, demonstrations written by code, and a simulated labeller with a
hidden taste) is :mod:`llmbook.review_world`; this module holds the losses and the trainers.

1. **Supervised fine-tuning (SFT).** A small GPT (:mod:`llmbook.transformer`) learns to answer prompts from
   demonstrations (:func:`sft_loss`, :func:`supervised_fine_tune`).
2. **Reward model.** A simulated labeller (:class:`llmbook.review_world.Labeller`) compares pairs of the SFT
   model's answers (:func:`preference_pairs`); a Bradley-Terry model, P(a preferred to b) = sigmoid(r(a) - r(b)),
   is fitted to its choices (:func:`bradley_terry_loss`, :func:`train_reward_model`). The reward model is the SFT
   model with its output layer replaced by one scalar per position (:func:`reward_model_from`).
3. **Policy optimisation with a KL penalty.** The policy (a copy of the SFT model) is trained to earn reward
   while a per-token KL penalty, weighted by ``beta``, keeps it close to the frozen SFT model
   (:func:`kl_penalised_returns`, :func:`ppo_clipped_loss`, :func:`optimise_policy`). The optimiser is a
   PPO-style clipped policy gradient with the batch's mean reward as baseline: no value network and no
   generalised advantage estimation, which makes it close to RLOO and GRPO.

DPO (:func:`dpo_loss`, :func:`train_dpo`, :func:`dpo_statistics`) fits the policy to the preference pairs
directly, with no reward model and no sampling loop. Every gradient step goes through the book's one training
loop, :func:`llmbook.training.optimise`. :data:`RLHF_RECIPE` holds the chapter's settings.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.review_world import END, TOPICS, Labeller, prompt_text
from llmbook.tokenizers import WordTokenizer
from llmbook.training import optimise
from llmbook.utils import check_causal, check_int, check_positive, check_probability, check_token_batch, eval_mode

__all__ = [
    "sft_loss", "supervised_fine_tune", "bradley_terry_probability", "bradley_terry_loss", "reward_model_from",
    "sequence_rewards", "response_mask", "response_logits", "token_log_probs", "kl_per_token",
    "kl_penalised_returns", "ppo_clipped_loss", "dpo_loss", "sample_responses", "preference_pairs",
    "train_reward_model", "pairwise_accuracy", "evaluate_policy", "optimise_policy", "train_dpo",
    "dpo_statistics", "RLHFRecipe", "RLHF_RECIPE",
]

# ------------------------------------------------------------------------------------------ supervised fine-tuning


def sft_loss(model: nn.Module, ids: torch.Tensor, prompt_length: int, end_id: int) -> torch.Tensor:
    """Supervised fine-tuning loss: mean cross-entropy of the answer tokens only (the prompt is not learned).

    ``ids`` (B, T) holds prompts of ``prompt_length`` tokens followed by answers padded after their end mark;
    padding is not counted (:func:`response_mask`). See :func:`supervised_fine_tune` for why chapter 9's
    :func:`llmbook.finetune.sft_tensors` is a separate path.
    """
    mask = response_mask(ids, prompt_length, end_id)
    log_probs = token_log_probs(response_logits(model, ids, prompt_length), ids[:, prompt_length:])
    return -(log_probs * mask).sum() / mask.sum()


def _train_steps(optimizer: torch.optim.Optimizer, step_loss: Callable[[], torch.Tensor], steps: int,
                 verbose: bool, report: Callable[[int, float], str],
                 after_step: Callable[[int], None] | None = None) -> list[float]:
    """:func:`llmbook.training.optimise` as SFT, the reward model and DPO use it: ``steps`` steps on ``step_loss()``
    (which draws its own batch); prints ``report(step, mean recent loss)`` four times if ``verbose``; calls
    ``after_step(step)`` after every step if given; returns the losses."""
    every = max(1, steps // 4)

    def progress(step: int, losses: list[float]) -> None:
        if verbose and step % every == 0:
            recent = losses[-every:]
            print(report(step, sum(recent) / len(recent)), flush=True)
        if after_step is not None:
            after_step(step)

    return optimise(optimizer, step_loss, steps, after_step=progress)


def supervised_fine_tune(model: nn.Module, ids: torch.Tensor, prompt_length: int, end_id: int, *, steps: int,
                         batch_size: int, lr: float, seed: int = 0, verbose: bool = True) -> list[float]:
    """Fine-tune ``model`` in place on demonstrations ``ids`` with :func:`sft_loss`; the model ends in eval mode.

    ``ids`` come from :func:`llmbook.review_world.encode_examples`. AdamW, ``batch_size`` random demonstrations per
    step (a generator seeded with ``seed``), through :func:`llmbook.training.optimise`. Prints the mean loss four
    times if ``verbose``. Returns the loss of every step.

    Chapter 9 has a second form of supervised fine-tuning, :func:`llmbook.finetune.sft_tensors` (targets set to
    :data:`llmbook.training.IGNORE_INDEX` outside the response, for prompts of any length, trained by the model's
    own loss). This one stays because chapter 10's pipeline counts the answer tokens in one way everywhere: its
    prompts have one length, answers end at an end mark, and :func:`sft_loss`, the reward model, PPO and DPO all
    use :func:`response_mask` and :func:`token_log_probs`. Both losses are the mean cross-entropy of the response
    tokens, summed in a different order, so merging the two would change the last digits of the chapter's runs.
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
    answer is the last T_answer positions of ``ids``. The model must be causal (ValueError otherwise), so that
    padding after an answer's last token does not change its reward.
    """
    check_causal(reward_model, "sequence_rewards")
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

    Row t predicts answer token t, i.e. ``ids[:, prompt_length + t]``, from everything before it, so the model
    must be causal (ValueError otherwise).
    """
    check_causal(model, "response_logits")
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
    check_causal(model, "sample_responses")
    ids = torch.tensor([p for p in prompts for _ in range(n_per_prompt)])  # (B, prompt_length)
    ended = torch.zeros(len(ids), dtype=torch.bool)
    with eval_mode(model):
        for _ in range(max_new_tokens):
            logits = model(ids[:, -model.config.n_ctx:])[0][:, -1]  # (B, vocab)
            next_ids = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)[:, 0]
            if end_id is not None:
                next_ids = torch.where(ended, end_id, next_ids)
                ended |= next_ids == end_id
            ids = torch.cat([ids, next_ids[:, None]], dim=1)
            if end_id is not None and ended.all():
                break
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
    with eval_mode(reward_model):
        chosen, rejected = _pair_rewards(reward_model, pairs, end_id)
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


def _ppo_step_loss(policy: nn.Module, ids: torch.Tensor, prompt_length: int, answers: torch.Tensor,
                   old_log_probs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                   clip: float) -> torch.Tensor:
    """One PPO epoch's loss on a sampled batch: the current policy's log-probabilities, clipped against the old."""
    log_probs = token_log_probs(response_logits(policy, ids, prompt_length), answers)
    return ppo_clipped_loss(log_probs, old_log_probs, advantages, mask, clip)


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
        optimise(optimizer, functools.partial(_ppo_step_loss, policy, ids, p, answers, old_log_probs, advantages,
                                              mask, clip), ppo_epochs)
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
