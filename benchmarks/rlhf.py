"""Benchmark of chapter 10: the whole toy RLHF pipeline (SFT, reward model, KL-penalised PPO, DPO) on one thread.

Runs the pipeline of notebooks/10_rlhf.ipynb with the same settings and seeds (keep them in sync):

1. supervised fine-tuning of a word-level GPT (d_model 32, 2 layers, 4 heads) on 3,000 demonstrations;
2. 600 preference pairs sampled from the SFT model and labelled by the simulated labeller (480 for training,
   120 held out), and a Bradley-Terry reward model made from the SFT model;
3. PPO with a per-token KL penalty to the SFT model for beta = 0, 0.3 and 1 (80 iterations each);
4. DPO on the same 480 training pairs for beta = 0.1, 0.3 and 1.

Every policy is measured on the same 96 fresh answers (32 per topic, seed 5): the mean reward-model score, the mean
hidden score of the labeller, and the mean KL from the SFT model (nats per answer).

Targets (issue 13): held-out pairwise accuracy of the reward model >= 0.8; at the chosen beta (0.3) the hidden score
is above the SFT model's; at beta = 0 the reward-model score rises above the SFT model's while the hidden score ends
below the chosen beta's; the whole pipeline under 60 s on one thread. The "dpo" run in the JSON is DPO with beta = 1,
the best of the three. Seconds are wall-clock; CPU seconds are printed beside them.

Run from the repository root:  .venv/bin/python benchmarks/rlhf.py
The last line of output is one JSON object.
"""

from __future__ import annotations

import json
import time

import torch

import llmbook
from llmbook.rlhf import (
    END,
    Labeller,
    demonstrations,
    encode_examples,
    evaluate_policy,
    optimise_policy,
    pairwise_accuracy,
    preference_pairs,
    reward_model_from,
    supervised_fine_tune,
    train_dpo,
    train_reward_model,
    world_tokenizer,
)
from llmbook.transformer import GPT, GPTConfig

# The chapter's settings (keep in sync with the notebook).
D_MODEL, N_LAYERS, N_HEADS, N_CTX = 32, 2, 4, 20
PROMPT_LENGTH, MAX_NEW_TOKENS = 4, 15
SFT_STEPS, BATCH_SIZE, SFT_LR = 500, 32, 3e-3
N_PAIRS_PER_TOPIC, N_TRAIN_PAIRS = 200, 480
RM_STEPS, RM_LR = 300, 1e-3
BETAS, ITERATIONS, N_PER_PROMPT, PPO_LR, PPO_EPOCHS = (0.0, 0.3, 1.0), 80, 16, 1e-3, 2
CHOSEN_BETA = 0.3
DPO_BETAS, DPO_STEPS, DPO_LR, DPO_REPORTED = (0.1, 0.3, 1.0), 100, 1e-3, 1.0
EVAL_PER_PROMPT, EVAL_SEED = 32, 5


class Stopwatch:
    """Wall and CPU seconds of a block: ``with Stopwatch() as sw: ...`` then ``sw.wall``, ``sw.cpu``."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def measure(policy, sft_model, reward_model, tokenizer, labeller) -> dict:
    result = evaluate_policy(policy, sft_model, reward_model, tokenizer, labeller, EVAL_PER_PROMPT, MAX_NEW_TOKENS,
                             seed=EVAL_SEED)
    return {"kl": round(result["kl"], 3), "rm_score": round(result["rm_score"], 3),
            "true_score": round(result["true_score"], 3)}


def main() -> None:
    print(llmbook.setup(seed=0))
    tokenizer = world_tokenizer()
    end_id = tokenizer.stoi[END]
    labeller = Labeller(temperature=0.25)
    seconds, cpu = {}, {}

    with Stopwatch() as sw:
        texts = demonstrations(3000, seed=0, tone_fraction=0.4)
        llmbook.set_seed(0)
        sft_model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_ctx=N_CTX, d_model=D_MODEL,
                                  n_layers=N_LAYERS, n_heads=N_HEADS))
        examples = encode_examples(tokenizer, texts, PROMPT_LENGTH + MAX_NEW_TOKENS)
        supervised_fine_tune(sft_model, examples, PROMPT_LENGTH, end_id, steps=SFT_STEPS, batch_size=BATCH_SIZE,
                             lr=SFT_LR, verbose=False)
    seconds["sft"], cpu["sft"] = sw.wall, sw.cpu

    with Stopwatch() as sw:
        pairs = preference_pairs(sft_model, tokenizer, labeller, N_PAIRS_PER_TOPIC, MAX_NEW_TOKENS, seed=1)
        order = torch.randperm(len(pairs["chosen"]), generator=torch.Generator().manual_seed(0))
        train_pairs, test_pairs = ({"chosen": pairs["chosen"][idx], "rejected": pairs["rejected"][idx],
                                    "prompt_length": pairs["prompt_length"]}
                                   for idx in (order[:N_TRAIN_PAIRS], order[N_TRAIN_PAIRS:]))
        reward_model = reward_model_from(sft_model)
        train_reward_model(reward_model, train_pairs, end_id, steps=RM_STEPS, batch_size=BATCH_SIZE, lr=RM_LR,
                           verbose=False)
    seconds["rm"], cpu["rm"] = sw.wall, sw.cpu
    accuracy = pairwise_accuracy(reward_model, test_pairs, end_id)

    runs = {}
    with Stopwatch() as sw:
        policies = {beta: optimise_policy(sft_model, reward_model, tokenizer, labeller, beta=beta,
                                          iterations=ITERATIONS, n_per_prompt=N_PER_PROMPT,
                                          max_new_tokens=MAX_NEW_TOKENS, lr=PPO_LR, ppo_epochs=PPO_EPOCHS,
                                          eval_every=5, seed=0, verbose=False)[0] for beta in BETAS}
    seconds["ppo"], cpu["ppo"] = sw.wall, sw.cpu
    for beta, policy in policies.items():
        runs[f"beta={beta:g}"] = measure(policy, sft_model, reward_model, tokenizer, labeller)

    dpo_runs = {}
    with Stopwatch() as sw:
        dpo_policies = {beta: train_dpo(sft_model, train_pairs, end_id, beta=beta, steps=DPO_STEPS,
                                        batch_size=BATCH_SIZE, lr=DPO_LR, verbose=False)[0] for beta in DPO_BETAS}
    seconds["dpo"], cpu["dpo"] = sw.wall, sw.cpu
    for beta, policy in dpo_policies.items():
        dpo_runs[beta] = measure(policy, sft_model, reward_model, tokenizer, labeller)
    runs["dpo"] = dpo_runs[DPO_REPORTED]
    sft = measure(sft_model, sft_model, reward_model, tokenizer, labeller)

    print(f"reward model: held-out pairwise accuracy {accuracy:.3f}")
    print(f"{'model':12s} {'reward':>7s} {'hidden':>7s} {'KL':>7s}")
    for name, result in {"SFT": sft, **{k: v for k, v in runs.items() if k != "dpo"},
                         **{f"DPO beta={b:g}": r for b, r in dpo_runs.items()}}.items():
        print(f"{name:12s} {result['rm_score']:7.2f} {result['true_score']:7.2f} {result['kl']:7.2f}")
    print("seconds (wall / CPU): " + ", ".join(f"{k} {seconds[k]:.1f} / {cpu[k]:.1f}" for k in seconds)
          + f"; total {sum(seconds.values()):.1f} / {sum(cpu.values()):.1f}")
    chosen = runs[f"beta={CHOSEN_BETA:g}"]
    targets = {
        "held-out pairwise accuracy >= 0.8": accuracy >= 0.8,
        "chosen beta: hidden score above the SFT model's": chosen["true_score"] > sft["true_score"],
        "beta 0: reward-model score above the SFT model's": runs["beta=0"]["rm_score"] > sft["rm_score"],
        "beta 0: hidden score below the chosen beta's": runs["beta=0"]["true_score"] < chosen["true_score"],
        "whole pipeline under 60 s (CPU, one thread)": sum(cpu.values()) < 60,
    }
    for name, ok in targets.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(json.dumps({"rm_heldout_accuracy": round(accuracy, 3),
                      "sft": {"rm_score": sft["rm_score"], "true_score": sft["true_score"]},
                      "chosen_beta": CHOSEN_BETA, "runs": runs,
                      "seconds": {k: round(v, 1) for k, v in seconds.items()}}))


if __name__ == "__main__":
    main()
