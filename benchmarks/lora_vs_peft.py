"""Our from-scratch LoRA (llmbook.lora) against Hugging Face PEFT's LoRA, side by side (chapter 9).

Both adapt the same pre-trained tiny GPT (llmbook.pretrained) inside the same SurprisalClassifier to the same
typo-detection task (llmbook.finetune.make_typo_task): the same target layers (qkv, out, up, down of both blocks),
rank, alpha, learning rate, steps, batches and seeds; the classification head is trained in both (PEFT's
``modules_to_save``). Accuracy is measured on 1,000 held-out windows from stories the model never saw.
The last line printed is one JSON object:

    {"ours": {"accuracy_mean", "accuracy_sd", "trainable", "seconds"}, "peft": {...}, "seeds": 3}

with ``seconds`` the mean CPU time of one training run (one thread).
"""

from __future__ import annotations

import copy
import json
import statistics

import torch

import llmbook
from llmbook.finetune import SurprisalClassifier, accuracy, encode_batch, make_typo_task, train_classifier
from llmbook.lora import add_lora
from llmbook.pretrained import load_pretrained_gpt, pretraining_data

SEEDS = (0, 1, 2)
TARGETS = ["qkv", "out", "up", "down"]
RANK, ALPHA, LR, STEPS, BATCH, N_TRAIN = 4, 8.0, 3e-3, 150, 32, 512


def ours(classifier):
    add_lora(classifier, TARGETS, rank=RANK, alpha=ALPHA, trainable_modules=["classifier"])
    return classifier


def peft(classifier):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS,
                        modules_to_save=["classifier"], bias="none")
    return get_peft_model(classifier, config)


def main() -> None:
    llmbook.setup(seed=0)
    gpt, tokenizer = load_pretrained_gpt()
    val_text = pretraining_data()["val_text"]
    half = len(val_text) // 2
    train_texts, train_labels = make_typo_task(val_text[:half], N_TRAIN, seed=0)
    test_texts, test_labels = make_typo_task(val_text[half:], 1000, seed=1)
    x_train, x_test = encode_batch(tokenizer, train_texts), encode_batch(tokenizer, test_texts)
    results = {}
    for name, wrap in (("ours", ours), ("peft", peft)):
        accuracies, seconds, trainable = [], [], set()
        for seed in SEEDS:
            torch.manual_seed(seed)
            classifier = SurprisalClassifier(copy.deepcopy(gpt))
            model = wrap(classifier)
            history = train_classifier(model, x_train, train_labels, steps=STEPS, lr=LR, batch_size=BATCH, seed=seed)
            accuracies.append(accuracy(model, x_test, test_labels))
            seconds.append(history["seconds"])
            trainable.add(history["trainable"])
            print(f"{name:4s} seed {seed}: accuracy {accuracies[-1]:.3f}, {history['trainable']:,} trainable, "
                  f"{history['seconds']:.2f} s", flush=True)
        results[name] = {"accuracy_mean": round(statistics.mean(accuracies), 4),
                         "accuracy_sd": round(statistics.stdev(accuracies), 4),
                         "trainable": trainable.pop() if len(trainable) == 1 else sorted(trainable),
                         "seconds": round(statistics.mean(seconds), 3)}
    results["seeds"] = len(SEEDS)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
