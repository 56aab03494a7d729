"""Benchmark of chapter 10: the whole toy RLHF pipeline (SFT, reward model, policy optimisation, DPO) on one thread.

Runs the pipeline of notebooks/10_rlhf.ipynb with its settings, which both take from ``llmbook.rlhf.RLHF_RECIPE``
(tests/test_benchmarks.py checks that the notebook's capitals equal the recipe):

1. supervised fine-tuning of a word-level GPT (one block) on the world's demonstrations;
2. preference pairs sampled from the SFT model and labelled by the simulated labeller (part held out), and a
   Bradley-Terry reward model made from the SFT model;
3. PPO-style policy optimisation with a per-token KL penalty, for every beta and seed of the recipe;
4. DPO at the recipe's beta for each of its learning rates.

Every policy is measured on the same fresh answers (the recipe's evaluation seed): the mean reward-model score,
the mean hidden score of the labeller and the mean KL from the SFT model (nats per answer).

Targets: the reward model's held-out pairwise accuracy is at least 0.6 (the chapter's check); the unpenalised
policy over-optimises in every seed, as the chapter shows (its hidden score, averaged over blocks of iterations,
rises at least 0.5 above the SFT model's, then falls at least 0.3 below its peak); the largest beta ends with a
higher mean hidden score than beta = 0; and the whole pipeline, evaluation included, takes at most 60 s of CPU
time on one thread. A missed target makes the script exit with status 1.

Timing: five parts, each in wall and CPU seconds, and their total: SFT; the reward model (sampling the preference
pairs and fitting it); policy optimisation (every beta and seed); DPO; evaluation (the reward model's held-out
accuracy and every final policy scored on the same fresh answers).

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
from llmbook.review_world import END, Labeller, demonstrations, encode_examples, world_tokenizer  # noqa: E402
from llmbook.rlhf import (  # noqa: E402
    RLHF_RECIPE,
    evaluate_policy,
    optimise_policy,
    pairwise_accuracy,
    preference_pairs,
    reward_model_from,
    supervised_fine_tune,
    train_dpo,
    train_reward_model,
)
from llmbook.transformer import GPT, GPTConfig  # noqa: E402

R = RLHF_RECIPE
# A few steps of everything (--quick): a smoke test of the script, not a measurement.
QUICK = {"n_demonstrations": 200, "sft_steps": 20, "n_pairs_per_topic": 10, "n_train_pairs": 24, "rm_steps": 10,
         "iterations": 10, "n_per_prompt": 4, "dpo_steps": 5, "eval_per_prompt": 4, "seeds": (0,)}
PARTS = {"sft": "SFT", "reward_model": "reward model", "ppo": "policy optimisation", "dpo": "DPO",
         "evaluation": "evaluation"}
PIPELINE_SECONDS, RM_ACCURACY, RISE, FALL = 60.0, 0.6, 0.5, 0.3


class Stopwatch:
    """Wall and CPU seconds of a block: ``with Stopwatch() as sw: ...`` then ``sw.wall``, ``sw.cpu``."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def measure(policy, sft_model, reward_model, tokenizer, labeller, per_prompt: int) -> dict:
    result = evaluate_policy(policy, sft_model, reward_model, tokenizer, labeller, per_prompt, R.max_new_tokens,
                             seed=R.eval_seed)
    return {"kl": round(result["kl"], 3), "rm_score": round(result["rm_score"], 3),
            "true_score": round(result["true_score"], 3)}


def block_means(values: list[float], block: int) -> list[float]:
    """Means over iterations 1..block, block+1..2*block, ... (entry 0 is the SFT model), as the chapter plots."""
    values = values[1:]
    return [sum(values[i:i + block]) / len(values[i:i + block]) for i in range(0, len(values), block)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: a few steps of every part")
    add_arguments(parser)
    args = parser.parse_args()
    run_record = Run("rlhf", args, quick=args.quick)
    names = ("n_demonstrations", "sft_steps", "n_pairs_per_topic", "n_train_pairs", "rm_steps", "iterations",
             "n_per_prompt", "dpo_steps", "eval_per_prompt", "seeds")
    q = QUICK if args.quick else {name: getattr(R, name) for name in names}
    print(llmbook.setup(seed=0))
    tokenizer = world_tokenizer()
    end_id = tokenizer.stoi[END]
    labeller = Labeller()
    length = R.prompt_length + R.max_new_tokens
    seconds, cpu = {}, {}

    def timed(part: str, sw: Stopwatch) -> None:
        seconds[part], cpu[part] = sw.wall, sw.cpu

    with Stopwatch() as sw:
        texts = demonstrations(q["n_demonstrations"], seed=0, tone_fraction=R.tone_fraction)
        llmbook.set_seed(0)
        sft_model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_ctx=length, d_model=R.d_model,
                                  n_layers=R.n_layers, n_heads=R.n_heads, attention="builtin"))
        examples = encode_examples(tokenizer, texts, length)
        supervised_fine_tune(sft_model, examples, R.prompt_length, end_id, steps=q["sft_steps"],
                             batch_size=R.batch_size, lr=R.sft_lr, verbose=False)
    timed("sft", sw)

    with Stopwatch() as sw:
        pairs = preference_pairs(sft_model, tokenizer, labeller, q["n_pairs_per_topic"], R.max_new_tokens, seed=1)
        order = torch.randperm(len(pairs["chosen"]), generator=torch.Generator().manual_seed(0))
        train_pairs, test_pairs = ({"chosen": pairs["chosen"][idx], "rejected": pairs["rejected"][idx],
                                    "prompt_length": pairs["prompt_length"]}
                                   for idx in (order[:q["n_train_pairs"]], order[q["n_train_pairs"]:]))
        reward_model = reward_model_from(sft_model)
        train_reward_model(reward_model, train_pairs, end_id, steps=q["rm_steps"], batch_size=R.batch_size,
                           lr=R.rm_lr, verbose=False)
    timed("reward_model", sw)

    with Stopwatch() as sw:
        runs_by_seed = {(beta, seed): optimise_policy(sft_model, reward_model, tokenizer, labeller, beta=beta,
                                                      iterations=q["iterations"], n_per_prompt=q["n_per_prompt"],
                                                      max_new_tokens=R.max_new_tokens, lr=R.ppo_lr,
                                                      ppo_epochs=R.ppo_epochs, eval_every=1, seed=seed,
                                                      verbose=False)
                        for beta in R.betas for seed in q["seeds"]}
    timed("ppo", sw)

    with Stopwatch() as sw:
        dpo_policies = {lr: train_dpo(sft_model, train_pairs, end_id, beta=R.dpo_beta, steps=q["dpo_steps"],
                                      batch_size=R.batch_size, lr=lr, seed=0, verbose=False)[0]
                        for lr in R.dpo_lrs}
    timed("dpo", sw)

    with Stopwatch() as sw:
        accuracy = pairwise_accuracy(reward_model, test_pairs, end_id)
        per_prompt = q["eval_per_prompt"]
        sft = measure(sft_model, sft_model, reward_model, tokenizer, labeller, per_prompt)
        finals = {key: measure(policy, sft_model, reward_model, tokenizer, labeller, per_prompt)
                  for key, (policy, _) in runs_by_seed.items()}
        dpo_runs = {f"lr={lr:g}": measure(policy, sft_model, reward_model, tokenizer, labeller, per_prompt)
                    for lr, policy in dpo_policies.items()}
    timed("evaluation", sw)

    hidden_sft = runs_by_seed[R.betas[0], q["seeds"][0]][1]["true_score"][0]
    shapes = {}
    for seed in q["seeds"]:
        curve = block_means(runs_by_seed[0.0, seed][1]["true_score"], R.block)
        shapes[seed] = {"rise": round(max(curve) - hidden_sft, 3), "fall": round(max(curve) - curve[-1], 3)}
    runs = {f"beta={beta:g}": {"true_score": round(sum(finals[beta, s]["true_score"] for s in q["seeds"])
                                                   / len(q["seeds"]), 3),
                               "kl": round(sum(finals[beta, s]["kl"] for s in q["seeds"]) / len(q["seeds"]), 3),
                               "rm_score": round(sum(finals[beta, s]["rm_score"] for s in q["seeds"])
                                                 / len(q["seeds"]), 3)}
            for beta in R.betas}
    best_dpo = max(dpo_runs.values(), key=lambda r: r["true_score"])
    runs["dpo"] = best_dpo

    print(f"reward model: held-out pairwise accuracy {accuracy:.3f} ({len(test_pairs['chosen'])} pairs)")
    print(f"{'model (mean over seeds)':24s} {'reward':>7s} {'hidden':>7s} {'KL':>7s}")
    for name, result in {"SFT": sft, **{k: v for k, v in runs.items() if k != "dpo"},
                         **{f"DPO {k}": r for k, r in dpo_runs.items()}}.items():
        print(f"{name:24s} {result['rm_score']:7.2f} {result['true_score']:7.2f} {result['kl']:7.2f}")
    for seed, shape in shapes.items():
        print(f"beta 0, seed {seed}: hidden score rises {shape['rise']:+.2f} above SFT, then falls "
              f"{shape['fall']:.2f} from its peak")
    total_wall, total_cpu = sum(seconds.values()), sum(cpu.values())
    print("\nseconds, wall / CPU:")
    for part, label in PARTS.items():
        print(f"  {label:28s} {seconds[part]:6.1f} / {cpu[part]:6.1f}")
    print(f"  {'total':28s} {total_wall:6.1f} / {total_cpu:6.1f}")
    largest = f"beta={max(R.betas):g}"
    targets = [
        Target("reward model: held-out pairwise accuracy", accuracy, ">=", RM_ACCURACY),
        Target("beta 0: smallest rise of the hidden score above SFT's, over seeds",
               min(s["rise"] for s in shapes.values()), ">=", RISE),
        Target("beta 0: smallest fall of the hidden score from its peak, over seeds",
               min(s["fall"] for s in shapes.values()), ">=", FALL),
        Target(f"{largest} ends above beta 0 in mean hidden score (1 = yes)",
               float(runs[largest]["true_score"] > runs["beta=0"]["true_score"]), "==", 1.0),
        Target("whole pipeline, evaluation included: CPU seconds (one thread)", total_cpu, "<=", PIPELINE_SECONDS),
    ]
    results = {"rm_heldout_accuracy": round(accuracy, 3), "rm_heldout_pairs": len(test_pairs["chosen"]),
               "sft": {"rm_score": sft["rm_score"], "true_score": sft["true_score"]},
               "runs": runs, "overoptimisation": {str(k): v for k, v in shapes.items()},
               "dpo_runs": dpo_runs, "dpo_beta": R.dpo_beta,
               "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in q.items()},
               "sft_params": sum(p.numel() for p in sft_model.parameters()),
               "seconds": {k: round(v, 2) for k, v in seconds.items()},
               "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
               "total_seconds": round(total_wall, 2), "total_cpu_seconds": round(total_cpu, 2)}
    return run_record.finish(results, targets)


if __name__ == "__main__":
    sys.exit(main())
