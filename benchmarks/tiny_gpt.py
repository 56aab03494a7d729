"""Benchmark of chapter 6: train the chapter's tiny GPT and time the two attention implementations.

1. Trains the configuration of notebooks/06_tiny_gpt_and_generation.ipynb on the same data (the Lee news
   corpus shipped with gensim, character level, last 10 % held out) with the same budget (1000 steps), and
   reports the validation loss next to the unigram and bigram baselines.
2. Times one training step (forward, backward, AdamW update) of the same model with attention="scratch"
   (attention written out in llmbook.transformer) and attention="builtin"
   (torch.nn.functional.scaled_dot_product_attention), alternating the two, median over the timed steps.

Targets: val_loss <= 0.8 x bigram loss; training <= 60 s on 2 CPU cores; scratch step <= 1.5 x builtin step.
The last line of output is one JSON object with the measured figures.

Run from the repository root:  .venv/bin/python benchmarks/tiny_gpt.py
"""

from __future__ import annotations

import json
import statistics
import time

import torch

import llmbook
from llmbook.data import lee_news_text, train_val_split
from llmbook.tokenizers import CharTokenizer
from llmbook.training import bigram_loss, get_batch, train, unigram_loss
from llmbook.transformer import GPT, GPTConfig

# The chapter's configuration (keep in sync with the notebook).
D_MODEL, N_LAYERS, N_HEADS, N_CTX = 64, 2, 4, 64
BATCH_SIZE, STEPS, LR, WARMUP = 32, 1000, 6e-3, 100
WARMUP_TIMING_STEPS, TIMED_STEPS = 5, 20


def step_times_ms(train_data, vocab_size: int) -> dict[str, float]:
    """Median wall time (ms) of one training step for each attention implementation, timed alternately."""
    models, optimizers = {}, {}
    for kind in ("scratch", "builtin"):
        llmbook.set_seed(0)
        models[kind] = GPT(GPTConfig(vocab_size=vocab_size, n_ctx=N_CTX, d_model=D_MODEL, n_layers=N_LAYERS,
                                     n_heads=N_HEADS, attention=kind)).train()
        optimizers[kind] = torch.optim.AdamW(models[kind].parameters(), lr=LR)
    generator = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {"scratch": [], "builtin": []}
    for i in range(WARMUP_TIMING_STEPS + TIMED_STEPS):
        inputs, targets = get_batch(train_data, BATCH_SIZE, N_CTX, generator)
        for kind in ("scratch", "builtin") if i % 2 == 0 else ("builtin", "scratch"):
            start = time.perf_counter()
            _, loss = models[kind](inputs, targets)
            optimizers[kind].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[kind].step()
            if i >= WARMUP_TIMING_STEPS:
                times[kind].append(1000 * (time.perf_counter() - start))
    return {kind: statistics.median(values) for kind, values in times.items()}


def main() -> None:
    print(llmbook.setup(seed=0))
    text = lee_news_text()
    tokenizer = CharTokenizer(text)
    data = torch.tensor(tokenizer.encode(text))
    train_data, val_data = train_val_split(data, val_fraction=0.1)
    vocab_size = tokenizer.vocab_size
    unigram = unigram_loss(train_data, val_data, vocab_size)
    bigram = bigram_loss(train_data, val_data, vocab_size)
    print(f"unigram {unigram:.3f}, bigram {bigram:.3f} nats/char on validation")

    llmbook.set_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab_size, n_ctx=N_CTX, d_model=D_MODEL, n_layers=N_LAYERS, n_heads=N_HEADS))
    cpu_start = time.process_time()
    history = train(model, train_data, val_data, steps=STEPS, batch_size=BATCH_SIZE, lr=LR, warmup_steps=WARMUP,
                    eval_every=100, seed=0)
    cpu_seconds = time.process_time() - cpu_start
    val_loss = history["val_loss"][-1]
    print(f"training: {history['seconds']:.1f} s wall, {cpu_seconds:.1f} s CPU; val loss {val_loss:.3f} "
          f"= {val_loss / bigram:.3f} x bigram")

    step_ms = step_times_ms(train_data, vocab_size)
    ratio = step_ms["scratch"] / step_ms["builtin"]
    print(f"training step: scratch {step_ms['scratch']:.1f} ms, builtin {step_ms['builtin']:.1f} ms "
          f"(ratio {ratio:.2f}, median of {TIMED_STEPS})")
    checks = {"val_loss <= 0.8 x bigram": val_loss <= 0.8 * bigram, "training <= 60 s": history["seconds"] <= 60,
              "scratch <= 1.5 x builtin": ratio <= 1.5}
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(json.dumps({"seconds": round(history["seconds"], 2), "val_loss": round(val_loss, 4),
                      "unigram_val_loss": round(unigram, 4), "bigram_val_loss": round(bigram, 4),
                      "step_ms_scratch": round(step_ms["scratch"], 2),
                      "step_ms_builtin": round(step_ms["builtin"], 2)}))


if __name__ == "__main__":
    main()
