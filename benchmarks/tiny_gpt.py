"""Benchmark of chapter 6: the tiny GPT, its attention, and a peer implementation side by side (one thread).

1. **Attention alone.** Forward and backward of causal self-attention on random queries, keys and values
   (batch 32, 4 heads of width 16, as in the chapter's model) at T = 64, 256 and 1024: the from-scratch
   ``llmbook.transformer.scaled_dot_product_attention`` against ``torch.nn.functional.scaled_dot_product_attention``.
   The two are timed alternately; the minimum of ``--reps`` (at least 30) timed repetitions after warm-up is
   reported, in wall and in CPU milliseconds, because the minimum is the least disturbed by other processes.
2. **One training step** (forward, backward, AdamW update) of the chapter's model with ``attention="scratch"``
   and ``attention="builtin"``, from the same initial weights on the same batches, with a check that both give
   the same loss: equal at the first step, and within 5e-3 over 35 steps (rounding differences change the
   updates a little).
3. **Training** of the chapter's configuration (notebooks/06_tiny_gpt_and_generation.ipynb: the Lee news corpus
   shipped with gensim, character level, last 10 % held out, 800 steps; an untied output layer and PyTorch's
   default initialisation, ``GPTConfig(tie_weights=False, init="pytorch")``) with ``llmbook.training.train``, and the
   same for a **peer**: ``GPTModel`` of *Build a Large Language Model from Scratch* (PyPI package
   ``llms-from-scratch``, module ``llms_from_scratch.ch04``) at the same configuration (d_model 64, 2 layers,
   4 heads, context 64, no dropout, biases on the query/key/value projections as in ours), wrapped so that the
   very same loop trains it: same data, batches, optimiser (AdamW, no decay on 1-D parameters), learning-rate
   schedule, gradient clipping and evaluations. The peer is installed with ``pip install --no-deps`` into
   ``.cache/benchmarks/peer`` the first time (it needs only torch; its declared dependencies conflict with the
   book's pins) and put on ``sys.path`` only inside this script.
4. With ``--explain``: the controlled experiment that led to the chapter's recipe. The chapter's model used to
   follow GPT-2: an output layer tied to the token embedding and every weight drawn from N(0, 0.02) with zero
   biases (``GPTConfig``'s defaults, ``init="normal"``); the peer has a separate output matrix and PyTorch's
   default initialisation (embeddings N(0, 1), linear layers uniform in +-1/sqrt(fan_in)), as the chapter now
   has. Each factor is switched on its own in our model (tied output layer; N(0, 0.02) initialisation; both,
   the former recipe), and the peer is also trained with the N(0, 0.02) initialisation. It also trains our
   model with the other attention kind (from scratch if the chapter uses the built-in one), to show what the
   fused kernel saves over a whole run.

Wall time and CPU time (``time.process_time``) are both reported: on a shared machine wall time is inflated by
other processes, CPU time much less. Targets (issue 8): our validation loss at most 0.75 x the bigram loss with
at most 30 s of training on one thread; our training time at most 1.0 x the peer's, with a validation loss no
worse than the peer's. The last line of output is one JSON object.

Run from the repository root:  .venv/bin/python benchmarks/tiny_gpt.py [--explain] [--reps 30]
Options ``--lr`` and ``--attention`` try another recipe (the learning rate applies to every run, ours and the
peer's); ``--quick`` is a smoke test of the script (T = 64 only, 200 steps).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

import llmbook
from llmbook.data import lee_news_text, train_val_split
from llmbook.tokenizers import CharTokenizer
from llmbook.training import bigram_loss, get_batch, parameter_groups, train, unigram_loss
from llmbook.transformer import GPT, GPTConfig, causal_mask, scaled_dot_product_attention

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / ".cache" / "benchmarks" / "peer"
PEER_PACKAGE, PEER_VERSION = "llms-from-scratch", "1.0.19"

# The chapter's configuration (keep in sync with the notebook).
D_MODEL, N_LAYERS, N_HEADS, N_CTX = 64, 2, 4, 64
BATCH_SIZE, STEPS, LR, WARMUP = 32, 800, 8e-3, 100
ATTENTION = "builtin"  # the attention kind the chapter trains with
TIE_WEIGHTS, INIT = False, "pytorch"  # the chapter's output layer and initialisation (GPTConfig's are True, "normal")
ATTENTION_LENGTHS, ATTENTION_BATCH = (64, 256, 1024), 32
STEP_WARMUP, STEP_TIMED = 5, 30
EARLY = (101, 200)  # steps over which the "early" training loss is averaged


def attention_times(reps: int, lengths=ATTENTION_LENGTHS, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Minimum wall and CPU time (ms) of forward + backward of causal attention, scratch vs built-in, per length."""
    d_head = D_MODEL // N_HEADS
    results = {}
    for length in lengths:
        generator = torch.Generator().manual_seed(length)
        shape = (ATTENTION_BATCH, N_HEADS, length, d_head)
        queries, keys, values = (torch.randn(shape, generator=generator).requires_grad_() for _ in range(3))
        grad_out = torch.randn(shape, generator=generator)
        mask = causal_mask(length)

        def scratch(q=queries, k=keys, v=values, m=mask):
            return scaled_dot_product_attention(q, k, v, m)[0]

        def builtin(q=queries, k=keys, v=values):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

        with torch.no_grad():
            max_diff = (scratch() - builtin()).abs().max().item()
        wall: dict[str, list[float]] = {"scratch": [], "builtin": []}
        cpu: dict[str, list[float]] = {"scratch": [], "builtin": []}
        for i in range(warmup + reps):
            for kind in ("scratch", "builtin") if i % 2 == 0 else ("builtin", "scratch"):
                for tensor in (queries, keys, values):
                    tensor.grad = None
                start, cpu_start = time.perf_counter(), time.process_time()
                (scratch if kind == "scratch" else builtin)().backward(grad_out)
                if i >= warmup:
                    wall[kind].append(1000 * (time.perf_counter() - start))
                    cpu[kind].append(1000 * (time.process_time() - cpu_start))
        result = {"scratch_ms": min(wall["scratch"]), "builtin_ms": min(wall["builtin"]),
                  "scratch_cpu_ms": min(cpu["scratch"]), "builtin_cpu_ms": min(cpu["builtin"]),
                  "max_abs_diff": max_diff}
        results[str(length)] = result
        print(f"  T = {length:4d}: scratch {result['scratch_ms']:8.2f} ms ({result['scratch_cpu_ms']:8.2f} CPU), "
              f"builtin {result['builtin_ms']:7.2f} ms ({result['builtin_cpu_ms']:7.2f} CPU), "
              f"ratio {result['scratch_ms'] / result['builtin_ms']:5.2f} "
              f"({result['scratch_cpu_ms'] / result['builtin_cpu_ms']:5.2f} CPU); "
              f"outputs differ by at most {max_diff:.1e}", flush=True)
    return results


def make_gpt(vocab_size: int, **overrides) -> GPT:
    """The chapter's model with seed 0; ``overrides`` change GPTConfig fields (attention, tie_weights, init)."""
    llmbook.set_seed(0)
    settings = {"tie_weights": TIE_WEIGHTS, "init": INIT, **overrides}
    return GPT(GPTConfig(vocab_size=vocab_size, n_ctx=N_CTX, d_model=D_MODEL, n_layers=N_LAYERS,
                         n_heads=N_HEADS, **settings))


def step_times(train_data, vocab_size: int) -> dict:
    """Training-step time (ms, minimum and median) of scratch and built-in attention, and their losses' agreement."""
    models = {kind: make_gpt(vocab_size, attention=kind).train() for kind in ("scratch", "builtin")}
    optimizers = {kind: torch.optim.AdamW(parameter_groups(model, 0.01), lr=LR, betas=(0.9, 0.99))
                  for kind, model in models.items()}
    generator = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {"scratch": [], "builtin": []}
    cpu_times: dict[str, list[float]] = {"scratch": [], "builtin": []}
    losses: dict[str, list[float]] = {"scratch": [], "builtin": []}
    for i in range(STEP_WARMUP + STEP_TIMED):
        inputs, targets = get_batch(train_data, BATCH_SIZE, N_CTX, generator)
        for kind in ("scratch", "builtin") if i % 2 == 0 else ("builtin", "scratch"):
            start, cpu_start = time.perf_counter(), time.process_time()
            _, loss = models[kind](inputs, targets)
            optimizers[kind].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[kind].step()
            elapsed, cpu_elapsed = 1000 * (time.perf_counter() - start), 1000 * (time.process_time() - cpu_start)
            losses[kind].append(loss.item())
            if i >= STEP_WARMUP:
                times[kind].append(elapsed)
                cpu_times[kind].append(cpu_elapsed)
    diffs = [abs(a - b) for a, b in zip(losses["scratch"], losses["builtin"], strict=True)]
    # Same weights and batch: the first losses must agree to rounding. Later steps drift apart a little, because
    # rounding differences change the updates (Adam divides by small numbers); they must stay close.
    same = diffs[0] <= 1e-5 and max(diffs) <= 5e-3
    return {"min_ms": {kind: min(values) for kind, values in times.items()},
            "median_ms": {kind: statistics.median(values) for kind, values in times.items()},
            "min_cpu_ms": {kind: min(values) for kind, values in cpu_times.items()},
            "first_loss_diff": diffs[0], "max_loss_diff": max(diffs), "same_loss": same, "steps": len(diffs)}


def ensure_peer():
    """Import llms_from_scratch.ch04, installing the pinned package into .cache/benchmarks/peer if it is missing."""
    if not (PEER_DIR / "llms_from_scratch" / "ch04.py").exists():
        print(f"installing {PEER_PACKAGE}=={PEER_VERSION} (no dependencies) into {PEER_DIR}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(PEER_DIR),
                        f"{PEER_PACKAGE}=={PEER_VERSION}"], check=True)
    if str(PEER_DIR) not in sys.path:
        sys.path.insert(0, str(PEER_DIR))
    from llms_from_scratch import ch04

    return ch04


class PeerLM(nn.Module):
    """The peer's GPTModel behind our interface: ``model(ids, targets) -> (logits, loss)`` and ``.config.n_ctx``."""

    def __init__(self, net: nn.Module, n_ctx: int):
        super().__init__()
        self.net = net
        self.config = SimpleNamespace(n_ctx=n_ctx)

    def forward(self, token_ids, targets=None):
        logits = self.net(token_ids)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def make_peer(ch04, vocab_size: int, normal_init: bool = False) -> PeerLM:
    """The peer's GPTModel at our configuration, seed 0; with ``normal_init`` re-initialised N(0, 0.02) as GPT-2."""
    llmbook.set_seed(0)
    net = ch04.GPTModel({"vocab_size": vocab_size, "context_length": N_CTX, "emb_dim": D_MODEL,
                         "n_heads": N_HEADS, "n_layers": N_LAYERS, "drop_rate": 0.0, "qkv_bias": True})
    if normal_init:
        net.apply(GPT._init_weights)  # GPTConfig(init="normal"): N(0, 0.02) weights, zero biases
    return PeerLM(net, N_CTX)


def train_run(label: str, model: nn.Module, train_data, val_data, lr: float = LR, steps: int = STEPS) -> dict:
    """Train with the chapter's recipe; return wall and CPU seconds, early training loss and validation losses."""
    n_params = sum(p.numel() for p in model.parameters())
    cpu_start = time.process_time()
    history = train(model, train_data, val_data, steps=steps, batch_size=BATCH_SIZE, lr=lr, warmup_steps=WARMUP,
                    eval_every=100, seed=0, verbose=False)
    cpu_seconds = time.process_time() - cpu_start
    early = history["train_loss"][EARLY[0] - 1:EARLY[1]]
    val_at = dict(zip(history["eval_steps"], history["val_loss"], strict=True))
    run = {"label": label, "params": n_params, "seconds": history["seconds"], "cpu_seconds": cpu_seconds,
           "early_train_loss": sum(early) / len(early), "val_loss_200": val_at[200], "val_loss": val_at[steps]}
    print(f"  {label:42s} {n_params:8,d} {run['seconds']:7.1f} {cpu_seconds:7.1f} {run['early_train_loss']:8.3f} "
          f"{run['val_loss_200']:8.3f} {run['val_loss']:8.3f}", flush=True)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=30, help="timed repetitions of attention (at least 30)")
    parser.add_argument("--explain", action="store_true",
                        help="also run the controlled experiment on tied/untied output and initialisation")
    parser.add_argument("--lr", type=float, default=LR, help=f"peak learning rate of every run (default {LR})")
    parser.add_argument("--attention", choices=("scratch", "builtin"), default=ATTENTION,
                        help=f"attention of our model in the main run (default {ATTENTION}, as in the chapter)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test of the script: attention at T = 64 only, 200 training steps")
    args = parser.parse_args()
    lengths, steps = ((64,), 200) if args.quick else (ATTENTION_LENGTHS, STEPS)
    if args.reps < 30:
        parser.error("--reps must be at least 30")
    print(llmbook.setup(seed=0))
    text = lee_news_text()
    tokenizer = CharTokenizer(text)
    data = torch.tensor(tokenizer.encode(text))
    train_data, val_data = train_val_split(data, val_fraction=0.1)
    vocab_size = tokenizer.vocab_size
    unigram = unigram_loss(train_data, val_data, vocab_size)
    bigram = bigram_loss(train_data, val_data, vocab_size)
    print(f"data: {len(text):,} characters, vocabulary {vocab_size}; validation loss of the unigram model "
          f"{unigram:.3f}, of the bigram model {bigram:.3f} nats/char")

    print(f"\nattention alone, forward + backward, batch {ATTENTION_BATCH}, {N_HEADS} heads of width "
          f"{D_MODEL // N_HEADS}, minimum of {args.reps} repetitions:", flush=True)
    attention = attention_times(args.reps, lengths)

    step = step_times(train_data, vocab_size)
    ratio = step["min_ms"]["scratch"] / step["min_ms"]["builtin"]
    print(f"\ntraining step (forward, backward, AdamW), batch {BATCH_SIZE}, context {N_CTX}, minimum (median) "
          f"of {STEP_TIMED}: scratch {step['min_ms']['scratch']:.1f} ({step['median_ms']['scratch']:.1f}) ms, "
          f"builtin {step['min_ms']['builtin']:.1f} ({step['median_ms']['builtin']:.1f}) ms, ratio {ratio:.2f}; "
          f"minimum CPU time {step['min_cpu_ms']['scratch']:.1f} and {step['min_cpu_ms']['builtin']:.1f} ms; "
          f"losses differ by {step['first_loss_diff']:.1e} at the first step and at most "
          f"{step['max_loss_diff']:.1e} over {step['steps']} steps "
          f"({'the same' if step['same_loss'] else 'NOT the same'} to rounding)")

    ch04 = ensure_peer()
    print(f"\ntraining, {steps} steps of batch {BATCH_SIZE}, lr {args.lr}, one thread; seconds include evaluations; "
          f"'early' is the mean training loss of steps {EARLY[0]}-{EARLY[1]}:")
    print(f"  {'model':42s} {'params':>8s} {'wall s':>7s} {'CPU s':>7s} {'early':>8s} {'val@200':>8s} "
          f"{'val@' + str(steps):>8s}")
    def run(label: str, model: nn.Module) -> dict:
        return train_run(label, model, train_data, val_data, args.lr, steps)

    kind = args.attention
    ours = run(f"ours (untied, PyTorch init, {kind})", make_gpt(vocab_size, attention=kind))
    peer = run(f"peer ({PEER_PACKAGE} {PEER_VERSION} GPTModel)", make_peer(ch04, vocab_size))
    explain = []
    if args.explain:
        other = "builtin" if kind == "scratch" else "scratch"
        explain = [
            run(f"ours, {other} attention", make_gpt(vocab_size, attention=other)),
            run("ours, tied, sd 0.02 (former recipe)",
                make_gpt(vocab_size, attention=kind, tie_weights=True, init="normal")),
            run("ours, untied, sd 0.02", make_gpt(vocab_size, attention=kind, init="normal")),
            run("ours, tied, PyTorch default init", make_gpt(vocab_size, attention=kind, tie_weights=True)),
            run("peer with sd 0.02 init", make_peer(ch04, vocab_size, normal_init=True)),
        ]

    checks = {
        "val_loss <= 0.75 x bigram": ours["val_loss"] <= 0.75 * bigram,
        "training <= 30 s (wall)": ours["seconds"] <= 30,
        "training <= 30 s (CPU)": ours["cpu_seconds"] <= 30,
        "training time <= 1.0 x peer's (wall)": ours["seconds"] <= peer["seconds"],
        "training CPU time <= 1.0 x peer's": ours["cpu_seconds"] <= peer["cpu_seconds"],
        "val_loss <= peer's": ours["val_loss"] <= peer["val_loss"],
        "scratch and builtin give the same loss": step["same_loss"],
    }
    print(f"\nours: val loss {ours['val_loss']:.3f} = {ours['val_loss'] / bigram:.3f} x bigram; "
          f"time {ours['seconds'] / peer['seconds']:.2f} x the peer's "
          f"(CPU {ours['cpu_seconds'] / peer['cpu_seconds']:.2f} x)")
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    result = {
        "lr": args.lr, "steps": steps, "attention_trained": kind,
        "seconds": round(ours["seconds"], 2), "cpu_seconds": round(ours["cpu_seconds"], 2),
        "val_loss": round(ours["val_loss"], 4),
        "unigram_val_loss": round(unigram, 4), "bigram_val_loss": round(bigram, 4),
        "step_ms_scratch": round(step["min_ms"]["scratch"], 2),
        "step_ms_builtin": round(step["min_ms"]["builtin"], 2),
        "step_cpu_ms_scratch": round(step["min_cpu_ms"]["scratch"], 2),
        "step_cpu_ms_builtin": round(step["min_cpu_ms"]["builtin"], 2),
        "same_loss": step["same_loss"], "first_step_loss_diff": step["first_loss_diff"],
        "attention": {length: {key: round(value, 2) if key.endswith("ms") else value for key, value in times.items()}
                      for length, times in attention.items()},
        "peer": {"name": PEER_PACKAGE, "version": PEER_VERSION, "val_loss": round(peer["val_loss"], 4),
                 "seconds": round(peer["seconds"], 2), "cpu_seconds": round(peer["cpu_seconds"], 2)},
        "checks": checks,
    }
    if explain:
        result["explain"] = [{key: round(value, 4) if isinstance(value, float) else value
                              for key, value in run.items()} for run in [ours, peer, *explain]]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
