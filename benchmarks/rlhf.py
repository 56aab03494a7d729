"""Benchmark of chapter 10: the whole toy RLHF pipeline (SFT, reward model, KL-penalised PPO, DPO) on one thread.

Runs the pipeline of notebooks/10_rlhf.ipynb with its settings and seeds as they were before chapter 10's redesign
(issue 27: when the redesigned chapter lands, its settings move into a recipe in ``llmbook.rlhf`` that the notebook
and this script both import, with a test that they agree, as ``llmbook.training.TINY_GPT_RECIPE`` does for
chapter 6; until then the constants below are a copy):

1. supervised fine-tuning of a word-level GPT (d_model 32, 2 layers, 4 heads) on 3,000 demonstrations;
2. 600 preference pairs sampled from the SFT model and labelled by the simulated labeller (480 for training,
   120 held out), and a Bradley-Terry reward model made from the SFT model;
3. PPO with a per-token KL penalty to the SFT model for beta = 0, 0.3 and 1 (80 iterations each);
4. DPO on the same 480 training pairs for beta = 0.1, 0.3 and 1.

Every policy is measured on the same 96 fresh answers (32 per topic, seed 5): the mean reward-model score, the mean
hidden score of the labeller, and the mean KL from the SFT model (nats per answer).

Targets (issue 13): held-out pairwise accuracy of the reward model >= 0.8; at the chosen beta (0.3) the hidden score
is above the SFT model's; at beta = 0 the reward-model score rises above the SFT model's while the hidden score ends
below the chosen beta's; the whole pipeline, evaluation included, under 60 s of CPU time on one thread. A missed
target makes the script exit with status 1. The "dpo" run in the JSON is DPO with beta = 1, the best of the three.

Timing: five parts, each in wall and CPU seconds, and their total: SFT; the reward model (sampling the preference
pairs and fitting it); policy optimisation (PPO at the three betas); DPO (the three betas); evaluation (the reward
model's held-out accuracy and every policy scored on the same fresh answers).

Run from the repository root:  .venv/bin/python benchmarks/rlhf.py [--quick] [--provisional]
The result is stored in ``benchmarks/results/rlhf.json`` (booktools/benchmarking.py) and printed as the last line.
``--quick`` is a smoke test (a few steps of everything; nothing stored); ``--target-scale`` and ``--results`` as in
every benchmark.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # booktools lives beside llmbook

import llmbook  # noqa: E402
from booktools.benchmarking import Run, Target, add_arguments  # noqa: E402
from llmbook.rlhf import (  # noqa: E402
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
from llmbook.transformer import GPT, GPTConfig  # noqa: E402

# The chapter's settings before its redesign (issue 27: to become a recipe in llmbook.rlhf that both import).
D_MODEL, N_LAYERS, N_HEADS, N_CTX = 32, 2, 4, 20
PROMPT_LENGTH, MAX_NEW_TOKENS = 4, 15
SFT_STEPS, BATCH_SIZE, SFT_LR = 500, 32, 3e-3
N_PAIRS_PER_TOPIC, N_TRAIN_PAIRS = 200, 480
RM_STEPS, RM_LR = 300, 1e-3
BETAS, ITERATIONS, N_PER_PROMPT, PPO_LR, PPO_EPOCHS = (0.0, 0.3, 1.0), 80, 16, 1e-3, 2
CHOSEN_BETA = 0.3
DPO_BETAS, DPO_STEPS, DPO_LR, DPO_REPORTED = (0.1, 0.3, 1.0), 100, 1e-3, 1.0
EVAL_PER_PROMPT, EVAL_SEED = 32, 5
N_DEMONSTRATIONS = 3000
#: The smoke test (--quick): a few steps of every part.
QUICK = {"n_demonstrations": 200, "sft_steps": 20, "pairs_per_topic": 10, "train_pairs": 24, "rm_steps": 10,
         "iterations": 2, "n_per_prompt": 4, "dpo_steps": 5, "eval_per_prompt": 4}
PARTS = {"sft": "SFT", "reward_model": "reward model", "ppo": "policy optimisation (PPO)", "dpo": "DPO",
         "evaluation": "evaluation"}
PIPELINE_SECONDS, RM_ACCURACY = 60.0, 0.8


class Stopwatch:
    """Wall and CPU seconds of a block: ``with Stopwatch() as sw: ...`` then ``sw.wall``, ``sw.cpu``."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def measure(policy, sft_model, reward_model, tokenizer, labeller, per_prompt: int) -> dict:
    result = evaluate_policy(policy, sft_model, reward_model, tokenizer, labeller, per_prompt, MAX_NEW_TOKENS,
                             seed=EVAL_SEED)
    return {"kl": round(result["kl"], 3), "rm_score": round(result["rm_score"], 3),
            "true_score": round(result["true_score"], 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: a few steps of every part")
    add_arguments(parser)
    args = parser.parse_args()
    run_record = Run("rlhf", args, quick=args.quick)
    q = QUICK if args.quick else {
        "n_demonstrations": N_DEMONSTRATIONS, "sft_steps": SFT_STEPS, "pairs_per_topic": N_PAIRS_PER_TOPIC,
        "train_pairs": N_TRAIN_PAIRS, "rm_steps": RM_STEPS, "iterations": ITERATIONS, "n_per_prompt": N_PER_PROMPT,
        "dpo_steps": DPO_STEPS, "eval_per_prompt": EVAL_PER_PROMPT}
    print(llmbook.setup(seed=0))
    tokenizer = world_tokenizer()
    end_id = tokenizer.stoi[END]
    labeller = Labeller(temperature=0.25)
    seconds, cpu = {}, {}

    def timed(part: str, sw: Stopwatch) -> None:
        seconds[part], cpu[part] = sw.wall, sw.cpu

    with Stopwatch() as sw:
        texts = demonstrations(q["n_demonstrations"], seed=0, tone_fraction=0.4)
        llmbook.set_seed(0)
        sft_model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_ctx=N_CTX, d_model=D_MODEL,
                                  n_layers=N_LAYERS, n_heads=N_HEADS))
        examples = encode_examples(tokenizer, texts, PROMPT_LENGTH + MAX_NEW_TOKENS)
        supervised_fine_tune(sft_model, examples, PROMPT_LENGTH, end_id, steps=q["sft_steps"],
                             batch_size=BATCH_SIZE, lr=SFT_LR, verbose=False)
    timed("sft", sw)

    with Stopwatch() as sw:
        pairs = preference_pairs(sft_model, tokenizer, labeller, q["pairs_per_topic"], MAX_NEW_TOKENS, seed=1)
        order = torch.randperm(len(pairs["chosen"]), generator=torch.Generator().manual_seed(0))
        train_pairs, test_pairs = ({"chosen": pairs["chosen"][idx], "rejected": pairs["rejected"][idx],
                                    "prompt_length": pairs["prompt_length"]}
                                   for idx in (order[:q["train_pairs"]], order[q["train_pairs"]:]))
        reward_model = reward_model_from(sft_model)
        train_reward_model(reward_model, train_pairs, end_id, steps=q["rm_steps"], batch_size=BATCH_SIZE,
                           lr=RM_LR, verbose=False)
    timed("reward_model", sw)

    with Stopwatch() as sw:
        policies = {beta: optimise_policy(sft_model, reward_model, tokenizer, labeller, beta=beta,
                                          iterations=q["iterations"], n_per_prompt=q["n_per_prompt"],
                                          max_new_tokens=MAX_NEW_TOKENS, lr=PPO_LR, ppo_epochs=PPO_EPOCHS,
                                          eval_every=5, seed=0, verbose=False)[0] for beta in BETAS}
    timed("ppo", sw)

    with Stopwatch() as sw:
        dpo_policies = {beta: train_dpo(sft_model, train_pairs, end_id, beta=beta, steps=q["dpo_steps"],
                                        batch_size=BATCH_SIZE, lr=DPO_LR, verbose=False)[0] for beta in DPO_BETAS}
    timed("dpo", sw)

    with Stopwatch() as sw:
        accuracy = pairwise_accuracy(reward_model, test_pairs, end_id)
        per_prompt = q["eval_per_prompt"]
        runs = {f"beta={beta:g}": measure(policy, sft_model, reward_model, tokenizer, labeller, per_prompt)
                for beta, policy in policies.items()}
        dpo_runs = {beta: measure(policy, sft_model, reward_model, tokenizer, labeller, per_prompt)
                    for beta, policy in dpo_policies.items()}
        sft = measure(sft_model, sft_model, reward_model, tokenizer, labeller, per_prompt)
    timed("evaluation", sw)
    runs["dpo"] = dpo_runs[DPO_REPORTED]

    print(f"reward model: held-out pairwise accuracy {accuracy:.3f} ({len(test_pairs['chosen'])} pairs)")
    print(f"{'model':12s} {'reward':>7s} {'hidden':>7s} {'KL':>7s}")
    for name, result in {"SFT": sft, **{k: v for k, v in runs.items() if k != "dpo"},
                         **{f"DPO beta={b:g}": r for b, r in dpo_runs.items()}}.items():
        print(f"{name:12s} {result['rm_score']:7.2f} {result['true_score']:7.2f} {result['kl']:7.2f}")
    total_wall, total_cpu = sum(seconds.values()), sum(cpu.values())
    print("\nseconds, wall / CPU:")
    for part, label in PARTS.items():
        print(f"  {label:28s} {seconds[part]:6.1f} / {cpu[part]:6.1f}")
    print(f"  {'total':28s} {total_wall:6.1f} / {total_cpu:6.1f}")
    chosen = runs[f"beta={CHOSEN_BETA:g}"]
    targets = [
        Target("reward model: held-out pairwise accuracy", accuracy, ">=", RM_ACCURACY),
        Target("chosen beta: hidden score above the SFT model's (1 = yes)",
               float(chosen["true_score"] > sft["true_score"]), "==", 1.0),
        Target("beta 0: reward-model score above the SFT model's (1 = yes)",
               float(runs["beta=0"]["rm_score"] > sft["rm_score"]), "==", 1.0),
        Target("beta 0: hidden score below the chosen beta's (1 = yes)",
               float(runs["beta=0"]["true_score"] < chosen["true_score"]), "==", 1.0),
        Target("whole pipeline, evaluation included: CPU seconds (one thread)", total_cpu, "<=", PIPELINE_SECONDS),
    ]
    results = {"rm_heldout_accuracy": round(accuracy, 3), "rm_heldout_pairs": len(test_pairs["chosen"]),
               "sft": {"rm_score": sft["rm_score"], "true_score": sft["true_score"]},
               "chosen_beta": CHOSEN_BETA, "runs": runs,
               "dpo_runs": {f"beta={b:g}": r for b, r in dpo_runs.items()}, "dpo_reported_beta": DPO_REPORTED,
               "settings": q, "sft_params": sum(p.numel() for p in sft_model.parameters()),
               "seconds": {k: round(v, 2) for k, v in seconds.items()},
               "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
               "total_seconds": round(total_wall, 2), "total_cpu_seconds": round(total_cpu, 2)}
    return run_record.finish(results, targets)


if __name__ == "__main__":
    sys.exit(main())
