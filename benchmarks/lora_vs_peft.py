"""Our from-scratch LoRA (llmbook.lora) against Hugging Face PEFT's LoRA, side by side (chapter 9).

Both adapt the same pre-trained tiny GPT (llmbook.pretrained) inside the same SurprisalClassifier to the same
typo-detection task (llmbook.finetune.make_typo_task): the same target layers (qkv, out, up, down of both blocks),
rank, alpha, learning rate, steps, batches and seeds; the classification head is trained in both (PEFT's
``modules_to_save``). Accuracy is measured on 1,000 held-out windows from stories the model never saw.

Targets (issue 15): our mean accuracy within one standard deviation (PEFT's, over the seeds) of PEFT's mean; the
same number of trainable parameters; our training time at most 1.1 x PEFT's. A missed target makes the script exit
with status 1. The result is stored in ``benchmarks/results/lora_vs_peft.json`` (booktools/benchmarking.py) and
printed as the last line; its "results" hold

    {"ours": {"accuracy_mean", "accuracy_sd", "trainable", "seconds"}, "peft": {...}, "seeds": 3, ...}

with ``seconds`` the mean CPU time of one training run (one thread). ``--quick`` is a smoke test (2 seeds, 10
steps, 64 training and 100 test windows; nothing stored); ``--target-scale``, ``--results``, ``--provisional`` as in
every benchmark. Run from the repository root:  .venv/bin/python benchmarks/lora_vs_peft.py
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # booktools lives beside llmbook

import llmbook  # noqa: E402
from booktools.benchmarking import Run, Target, add_arguments  # noqa: E402
from llmbook.finetune import SurprisalClassifier, accuracy, encode_batch, make_typo_task, train_classifier  # noqa: E402
from llmbook.lora import add_lora  # noqa: E402
from llmbook.pretrained import load_pretrained_gpt, pretraining_data  # noqa: E402

SEEDS = (0, 1, 2)
TARGETS = ["qkv", "out", "up", "down"]
RANK, ALPHA, LR, STEPS, BATCH, N_TRAIN, N_TEST = 4, 8.0, 3e-3, 150, 32, 512, 1000
QUICK = {"seeds": (0, 1), "steps": 10, "n_train": 64, "n_test": 100}
TIME_RATIO = 1.1


def ours(classifier):
    add_lora(classifier, TARGETS, rank=RANK, alpha=ALPHA, trainable_modules=["classifier"])
    return classifier


def peft(classifier):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS,
                        modules_to_save=["classifier"], bias="none")
    return get_peft_model(classifier, config)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, 10 steps, small data")
    add_arguments(parser)
    args = parser.parse_args()
    run_record = Run("lora_vs_peft", args, quick=args.quick)
    seeds, steps, n_train, n_test = ((QUICK["seeds"], QUICK["steps"], QUICK["n_train"], QUICK["n_test"])
                                     if args.quick else (SEEDS, STEPS, N_TRAIN, N_TEST))
    print(llmbook.setup(seed=0))
    gpt, tokenizer = load_pretrained_gpt()
    val_text = pretraining_data()["val_text"]
    half = len(val_text) // 2
    train_texts, train_labels = make_typo_task(val_text[:half], n_train, seed=0)
    test_texts, test_labels = make_typo_task(val_text[half:], n_test, seed=1)
    x_train, x_test = encode_batch(tokenizer, train_texts), encode_batch(tokenizer, test_texts)
    results = {}
    for name, wrap in (("ours", ours), ("peft", peft)):
        accuracies, seconds, trainable = [], [], set()
        for seed in seeds:
            torch.manual_seed(seed)
            classifier = SurprisalClassifier(copy.deepcopy(gpt))
            model = wrap(classifier)
            cpu_start = time.process_time()  # CPU time: train_classifier's own "seconds" is wall-clock time
            history = train_classifier(model, x_train, train_labels, steps=steps, lr=LR, batch_size=BATCH, seed=seed)
            seconds.append(time.process_time() - cpu_start)
            accuracies.append(accuracy(model, x_test, test_labels))
            trainable.add(history["trainable"])
            print(f"{name:4s} seed {seed}: accuracy {accuracies[-1]:.3f}, {history['trainable']:,} trainable, "
                  f"{seconds[-1]:.2f} s of CPU time", flush=True)
        results[name] = {"accuracy_mean": round(statistics.mean(accuracies), 4),
                         "accuracy_sd": round(statistics.stdev(accuracies), 4),
                         "trainable": trainable.pop() if len(trainable) == 1 else sorted(trainable),
                         "seconds": round(statistics.mean(seconds), 3)}
    mine, theirs = results["ours"], results["peft"]
    results.update(seeds=len(seeds), steps=steps, n_train=n_train, n_test=n_test, rank=RANK, alpha=ALPHA, lr=LR,
                   batch_size=BATCH, target_modules=TARGETS, peft_version=importlib.metadata.version("peft"))
    targets = [
        Target("accuracy: ours minus PEFT's, in PEFT's standard deviations (absolute)",
               abs(mine["accuracy_mean"] - theirs["accuracy_mean"]) / max(theirs["accuracy_sd"], 1e-12), "<=", 1.0),
        Target("trainable parameters: ours the same as PEFT's (1 = the same)",
               float(mine["trainable"] == theirs["trainable"]), "==", 1.0),
        Target("training CPU time ours / PEFT (mean per run)", mine["seconds"] / theirs["seconds"], "<=",
               TIME_RATIO),
    ]
    return run_record.finish(results, targets)


if __name__ == "__main__":
    sys.exit(main())
