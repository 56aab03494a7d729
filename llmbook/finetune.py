"""Adapting a pre-trained character GPT to a labelled task: data, a classifier, training and prompting (chapter 9).

The labelled task is **typo detection**: a window of news text either is clean (label 0) or has ``n_typos``
words with two neighbouring letters swapped (label 1). Recognising a misspelt word needs knowledge of the
spelling of thousands of words; a few hundred labelled windows cannot teach that, but a language model trained
on unlabelled text has it. The classifier reads that knowledge through the model's own predictions:

- :func:`make_typo_task`: labelled windows cut from a text, half of them corrupted.
- :func:`char_surprisals`: the language model's loss at every character, ``-ln P(x_t | x_<t)``, shape (B, T-1).
- :class:`SurprisalClassifier`: a GPT plus a linear head on the ``k`` largest surprisals of a window.
- :func:`train_classifier`, :func:`accuracy` and :func:`classifier_loss`: a small AdamW loop, the share of correct
  predictions and the mean cross-entropy (the finer measure the chapter uses to choose settings on a development set).
- :func:`start_from_probe`: copy a fitted linear probe into the classifier's head before fine-tuning (LP-FT).
- :func:`in_context_scores` and :func:`in_context_classify`: few-shot prompting, no weights changed (in-context
  learning); the scores let a notebook calibrate the label words (contextual calibration).
- :func:`make_sft_pairs` and :func:`sft_tensors`: prompt -> response pairs and their masked training tensors
  (instruction tuning in miniature, section 9.2, which writes its training loop out).
"""

from __future__ import annotations

import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmbook.training import IGNORE_INDEX, optimise, parameter_groups
from llmbook.utils import check_causal, check_int, check_positive, eval_mode, train_mode

__all__ = ["SurprisalClassifier", "accuracy", "add_typos", "char_surprisals", "classifier_loss",
           "encode_batch", "in_context_classify", "in_context_scores", "make_sft_pairs", "make_typo_task",
           "sft_tensors", "start_from_probe", "train_classifier"]


def add_typos(window: str, n_typos: int, rng: random.Random) -> str:
    """Swap two neighbouring inner letters in ``n_typos`` different words of at least 4 letters.

    The first and last word of the window are never changed (they may be cut off). Raises ValueError if the
    window has too few eligible words.
    """
    check_int("n_typos", n_typos, minimum=1)
    words = window.split(" ")
    eligible = [i for i in range(1, len(words) - 1) if len(words[i]) >= 4 and words[i].isalpha()]
    if len(eligible) < n_typos:
        raise ValueError(f"the window has {len(eligible)} words that can take a typo, need {n_typos}")
    for i in rng.sample(eligible, n_typos):
        word = words[i]
        j = rng.randrange(1, len(word) - 2)  # keep the first and the last letter
        words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2:]
    return " ".join(words)


def make_typo_task(text: str, n: int, n_chars: int = 48, n_typos: int = 2, seed: int = 0):
    """``n`` labelled windows of ``n_chars`` characters from ``text``: label 1 if typos were added, else 0.

    Windows start at random positions (seeded) and never contain a newline; labels alternate at random with
    probability 1/2. A corrupted window whose swap happens to give back the same text (a doubled letter) is
    kept with label 1 only if it changed. Returns ``(texts, labels)`` with labels a NumPy int array.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    check_int("n", n, minimum=1)
    check_int("n_chars", n_chars, minimum=8)
    if len(text) < 10 * n_chars:
        raise ValueError(f"text must be at least {10 * n_chars} characters long for windows of {n_chars}")
    rng = random.Random(seed)
    texts, labels = [], []
    while len(texts) < n:
        start = rng.randrange(len(text) - n_chars)
        window = text[start:start + n_chars]
        if "\n" in window:
            continue
        label = rng.randrange(2)
        if label:
            try:
                corrupted = add_typos(window, n_typos, rng)
            except ValueError:
                continue
            if corrupted == window:
                continue
            window = corrupted
        texts.append(window)
        labels.append(label)
    return texts, np.array(labels)


def encode_batch(tokenizer, texts) -> torch.Tensor:
    """Encode equally long strings into a (B, T) tensor of token ids."""
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings")
    lengths = {len(t) for t in texts}
    if len(lengths) != 1:
        raise ValueError(f"texts must all have the same length, got lengths {sorted(lengths)[:5]}")
    return torch.tensor([tokenizer.encode(t) for t in texts])


def char_surprisals(model: nn.Module, token_ids: torch.Tensor) -> torch.Tensor:
    """Surprisal of every character given the ones before it, ``-ln P(x_t | x_<t)`` in nats: shape (B, T-1).

    Gradients flow through (use ``torch.no_grad()`` for frozen features). Raises ValueError for a model that is
    not causal (:func:`llmbook.utils.check_causal`).
    """
    check_causal(model, "char_surprisals")
    if not isinstance(token_ids, torch.Tensor) or token_ids.dim() != 2 or token_ids.shape[1] < 2:
        raise ValueError(f"token_ids must be a (batch, time >= 2) tensor, got {tuple(getattr(token_ids, 'shape', ()))}")
    logits, _ = model(token_ids[:, :-1])  # (B, T-1, V): predictions of characters 1..T-1
    return F.cross_entropy(logits.transpose(1, 2), token_ids[:, 1:], reduction="none")  # (B, T-1)


class SurprisalClassifier(nn.Module):
    """A GPT language model with a linear head on the ``k`` largest character surprisals of each window.

    ``forward(token_ids)`` returns class logits (B, n_classes). The features are sorted, so the head sees "how
    surprising were the most surprising characters", wherever they are. The GPT is the ``gpt`` attribute, the
    head is ``head``; which of them train is decided by their parameters' ``requires_grad``.
    """

    def __init__(self, gpt: nn.Module, n_classes: int = 2, k: int = 8):
        super().__init__()
        if not isinstance(gpt, nn.Module) or not hasattr(gpt, "config"):
            raise TypeError(f"gpt must be an llmbook.transformer.GPT, got {type(gpt).__name__}")
        check_int("n_classes", n_classes, minimum=2)
        check_int("k", k, minimum=1)
        self.gpt, self.k = gpt, k
        self.classifier = nn.Linear(k, n_classes)

    def features(self, token_ids: torch.Tensor) -> torch.Tensor:
        """The ``k`` largest surprisals of each window, in decreasing order: shape (B, k)."""
        surprisals = char_surprisals(self.gpt, token_ids)
        if surprisals.shape[1] < self.k:
            raise ValueError(f"windows need at least k + 1 = {self.k + 1} tokens, got {token_ids.shape[1]}")
        return surprisals.topk(self.k, dim=1).values

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(token_ids))  # (B, n_classes)


@torch.no_grad()
def accuracy(model: nn.Module, inputs: torch.Tensor, labels, batch_size: int = 512) -> float:
    """Share of ``inputs`` (B, T) whose argmax class equals ``labels``; the model's mode is restored."""
    labels = torch.as_tensor(labels)
    if len(labels) != len(inputs):
        raise ValueError(f"inputs and labels must have the same length, got {len(inputs)} and {len(labels)}")
    with eval_mode(model):
        predictions = torch.cat([model(inputs[i:i + batch_size]).argmax(dim=1)
                                 for i in range(0, len(inputs), batch_size)])
    return float((predictions == labels).float().mean())


@torch.no_grad()
def classifier_loss(model: nn.Module, inputs: torch.Tensor, labels, batch_size: int = 512) -> float:
    """Mean cross-entropy in nats of ``model``'s class logits on ``inputs`` (B, T) against ``labels``.

    Unlike :func:`accuracy` it counts how confident each answer was, so on a few hundred examples it separates
    two settings that get the same number right. Computed in eval mode; the model's mode is restored.
    """
    labels = torch.as_tensor(labels)
    if len(labels) != len(inputs):
        raise ValueError(f"inputs and labels must have the same length, got {len(inputs)} and {len(labels)}")
    check_int("batch_size", batch_size, minimum=1)
    with eval_mode(model):
        total = sum(float(F.cross_entropy(model(inputs[i:i + batch_size]), labels[i:i + batch_size],
                                          reduction="sum"))
                    for i in range(0, len(inputs), batch_size))
    return total / len(labels)


@torch.no_grad()
def start_from_probe(model: nn.Module, probe) -> nn.Module:
    """LP-FT: copy a fitted linear probe into ``model.classifier`` (a two-class ``nn.Linear``), in place.

    ``probe`` is a fitted scikit-learn pair ``(StandardScaler, LogisticRegression)`` for two classes, or a
    ``Pipeline`` of those two steps, trained on the features that the head reads. A standardised logistic
    regression is itself linear in the raw features, ``w.(x - mu) / sigma + b = (w / sigma).x + (b - w.mu / sigma)``,
    and a two-class softmax gives the same probability when the gap between the two logits is that number, so
    the head's rows are set to minus and plus half of it. Returns ``model``. Raises ValueError for a probe of
    another shape or a head that is not a two-class linear layer of matching width.
    """
    steps = [step for _, step in probe.steps] if hasattr(probe, "steps") else list(probe)
    if len(steps) != 2 or not all(hasattr(steps[0], a) for a in ("mean_", "scale_")) or \
            not all(hasattr(steps[1], a) for a in ("coef_", "intercept_")):
        raise ValueError("probe must be a fitted (StandardScaler, LogisticRegression) pair or pipeline")
    scaler, logreg = steps
    if logreg.coef_.shape[0] != 1:
        raise ValueError(f"the probe must have two classes, got coefficients of shape {logreg.coef_.shape}")
    head = getattr(model, "classifier", None)
    if not isinstance(head, nn.Linear) or head.out_features != 2:
        raise ValueError("model.classifier must be an nn.Linear with 2 outputs")
    if head.in_features != logreg.coef_.shape[1]:
        raise ValueError(f"the probe reads {logreg.coef_.shape[1]} features, the head {head.in_features}")
    w = torch.as_tensor(logreg.coef_[0] / scaler.scale_, dtype=head.weight.dtype)  # (k,)
    b = float(logreg.intercept_[0] - w.double().numpy() @ scaler.mean_)
    head.weight.copy_(torch.stack([-w / 2, w / 2]))  # the gap between the two logits is w.x + b
    head.bias.copy_(torch.tensor([-b / 2, b / 2], dtype=head.bias.dtype))
    return model


def train_classifier(model: nn.Module, inputs: torch.Tensor, labels, *, steps: int, lr: float,
                     batch_size: int = 32, weight_decay: float = 0.0, seed: int = 0,
                     val: tuple | None = None, eval_every: int | None = None) -> dict:
    """Train the parameters of ``model`` that have ``requires_grad`` with AdamW on cross-entropy.

    Each step draws ``batch_size`` examples (with replacement) from a generator seeded with ``seed``. If ``val``
    ``= (val_inputs, val_labels)`` and ``eval_every`` are given, validation accuracy is recorded every
    ``eval_every`` steps. The steps are those of the book's one loop, :func:`llmbook.training.optimise`, with a
    constant learning rate and no gradient clipping. The model is left in the mode it was in before the call.
    Returns ``{"train_loss": [...], "val_steps": [...], "val_accuracy": [...], "seconds": wall-clock time of the
    loop (time.perf_counter), "trainable": number of trained parameters}``; for CPU time, measure
    ``time.process_time()`` around the call.
    """
    check_int("steps", steps, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_positive("lr", lr)
    labels = torch.as_tensor(labels)
    if len(labels) != len(inputs):
        raise ValueError(f"inputs and labels must have the same length, got {len(inputs)} and {len(labels)}")
    groups = parameter_groups(model, weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history = {"train_loss": [], "val_steps": [], "val_accuracy": [], "seconds": 0.0,
               "trainable": sum(p.numel() for group in groups for p in group["params"])}
    def step_loss() -> torch.Tensor:
        rows = torch.randint(len(inputs), (batch_size,), generator=generator)
        return F.cross_entropy(model(inputs[rows]), labels[rows])

    def after_step(step: int, losses: list[float]) -> None:
        if val is not None and eval_every and step % eval_every == 0:
            history["val_steps"].append(step)
            history["val_accuracy"].append(accuracy(model, *val))

    start = time.perf_counter()
    with train_mode(model):
        history["train_loss"] = optimise(optimizer, step_loss, steps, after_step=after_step)
    history["seconds"] = time.perf_counter() - start
    return history


@torch.no_grad()
def in_context_scores(model: nn.Module, tokenizer, examples, queries, label_words,
                      template: str = "{text} - {label}\n") -> np.ndarray:
    """Few-shot prompting: the log-probability of every label word after every query, shape (n_queries, n_labels).

    The prompt is every ``(text, label)`` example formatted with ``template``, then the query formatted with the
    label left out; the score of a label word is the sum of the log-probabilities of its tokens as the
    continuation. The prompt is cut from the left to the model's context size (``n_ctx``), so with a short
    context only the last examples survive. No weight changes. Subtracting the scores of a content-free query
    such as ``"N/A"`` calibrates the label words (Zhao et al., 2021). Raises ValueError for a model that is not
    causal.
    """
    label_words = list(label_words)
    if len(label_words) < 2 or not all(isinstance(w, str) and w for w in label_words):
        raise ValueError("label_words must name at least two classes with non-empty strings")
    if isinstance(queries, str):
        raise ValueError("queries must be a list of strings, not one string")
    check_causal(model, "in_context_scores")
    n_ctx = model.config.n_ctx
    shots = "".join(template.format(text=text, label=label_words[label]) for text, label in examples)
    scores = np.zeros((len(queries), len(label_words)))
    word_ids = [tokenizer.encode(word) for word in label_words]
    single = all(len(ids) == 1 for ids in word_ids)
    with eval_mode(model):
        for i, query in enumerate(queries):
            prefix = shots + template.split("{label}")[0].format(text=query)
            if single:  # one forward pass gives every one-token label word's log-probability
                logits, _ = model(torch.tensor([tokenizer.encode(prefix)[-n_ctx:]]))
                log_probs = torch.log_softmax(logits[0, -1], dim=-1)  # (V,)
                scores[i] = [float(log_probs[ids[0]]) for ids in word_ids]
                continue
            for j, word in enumerate(label_words):
                ids = tokenizer.encode(prefix + word)[-n_ctx - 1:]
                n_word = len(word_ids[j])
                logits, _ = model(torch.tensor([ids[:-1]]))
                log_probs = torch.log_softmax(logits[0, -n_word:], dim=-1)  # (n_word, V)
                scores[i, j] = float(log_probs.gather(1, torch.tensor(ids[-n_word:])[:, None]).sum())
    return scores


def in_context_classify(model: nn.Module, tokenizer, examples, queries, label_words,
                        template: str = "{text} - {label}\n") -> np.ndarray:
    """Few-shot classification by prompting: the label word that :func:`in_context_scores` finds most probable.

    Returns predicted class indices, shape (len(queries),). No weight changes (in-context learning).
    """
    return in_context_scores(model, tokenizer, examples, queries, label_words, template).argmax(axis=1)


def make_sft_pairs(words, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` instruction -> response pairs about ``words``: "Capitalise: word\\n" -> "Word\\n" and
    "Count letters: word\\n" -> the number of letters, chosen at random (seeded)."""
    words = [w for w in words if isinstance(w, str) and w.isalpha()]
    if not words:
        raise ValueError("words must contain at least one alphabetic word")
    check_int("n", n, minimum=1)
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        word = rng.choice(words).lower()
        if rng.random() < 0.5:
            pairs.append((f"Capitalise: {word}\n", f"{word.capitalize()}\n"))
        else:
            pairs.append((f"Count letters: {word}\n", f"{len(word)}\n"))
    return pairs


def sft_tensors(tokenizer, pairs, n_ctx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets for supervised fine-tuning on prompt -> response pairs, shape (n, n_ctx) each.

    Each pair becomes the token sequence ``prompt + response``, right-padded with spaces. Targets are the
    sequence shifted by one, with every position that predicts a prompt token or padding set to
    :data:`llmbook.training.IGNORE_INDEX`, so the loss is computed on the response only.

    This is the general form of supervised fine-tuning data: prompts of any length, and a model's own
    ``model(inputs, targets)`` loss (cross-entropy skips the ignored targets) trains on the responses; section 9.2
    writes the training loop out. Chapter 10 has a second SFT path, :func:`llmbook.rlhf.supervised_fine_tune`,
    kept on purpose: its prompts all have one length and its answers end at an end mark, and its loss
    (:func:`llmbook.rlhf.sft_loss`) counts exactly the answer tokens that the reward model, PPO and DPO count
    (:func:`llmbook.rlhf.response_mask`), so every stage of that pipeline is measured on the same tokens. Both
    are the mean cross-entropy of the response tokens, computed in a different order, so merging the two paths
    would change the last digits of chapter 10's stored results.
    """
    check_int("n_ctx", n_ctx, minimum=2)
    inputs, targets = [], []
    for prompt, response in pairs:
        ids = tokenizer.encode(prompt + response)
        if len(ids) > n_ctx + 1:
            raise ValueError(f"a pair is {len(ids)} tokens long; at most n_ctx + 1 = {n_ctx + 1} fit")
        n_prompt = len(tokenizer.encode(prompt))
        padded = ids + tokenizer.encode(" ") * (n_ctx + 1 - len(ids))
        target = padded[1:]
        target = [IGNORE_INDEX] * (n_prompt - 1) + target[n_prompt - 1:len(ids) - 1]
        target += [IGNORE_INDEX] * (n_ctx - len(target))
        inputs.append(padded[:-1])
        targets.append(target)
    return torch.tensor(inputs), torch.tensor(targets)
