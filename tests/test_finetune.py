import random

import numpy as np
import pytest
import torch

from llmbook.finetune import (
    SurprisalClassifier,
    accuracy,
    add_typos,
    char_surprisals,
    classifier_loss,
    encode_batch,
    in_context_classify,
    in_context_scores,
    make_sft_pairs,
    make_typo_task,
    sft_tensors,
    start_from_probe,
    train_classifier,
)
from llmbook.tokenizers import CharTokenizer
from llmbook.training import IGNORE_INDEX
from llmbook.transformer import GPT, GPTConfig

TEXT = ("The minister said the government would announce further measures next week after talks with "
        "unions and employers about wages and conditions across the country. ") * 12


@pytest.fixture()
def tokenizer():
    return CharTokenizer(TEXT + "=?-01234567890ABCDEFGHIJKLMNOPQRSTUVWXYZ:\n")


def tiny_gpt(vocab_size, n_ctx=48):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab_size, n_ctx=n_ctx, d_model=16, n_layers=1, n_heads=2))


def test_typos_swap_two_inner_letters_of_distinct_words():
    window = "one minister said the government would act now"
    corrupted = add_typos(window, 2, random.Random(0))
    changed = [(a, b) for a, b in zip(window.split(), corrupted.split(), strict=True) if a != b]
    assert len(changed) == 2
    for a, b in changed:
        assert sorted(a) == sorted(b) and a[0] == b[0] and a[-1] == b[-1]
    with pytest.raises(ValueError, match="can take a typo"):
        add_typos("a b c", 1, random.Random(0))


def test_typo_task_is_balanced_deterministic_and_checked():
    texts, labels = make_typo_task(TEXT, 200, n_chars=40, seed=3)
    assert len(texts) == 200 and all(len(t) == 40 for t in texts)
    assert 0.35 < labels.mean() < 0.65
    clean = set(TEXT[i:i + 40] for i in range(len(TEXT) - 40))
    assert all((t in clean) == (y == 0) for t, y in zip(texts, labels, strict=True))
    assert make_typo_task(TEXT, 200, n_chars=40, seed=3)[0] == texts
    with pytest.raises(ValueError, match="at least"):
        make_typo_task("short text", 5)
    with pytest.raises(TypeError, match="text must be a string, got int"):
        make_typo_task(123, 5)


def test_surprisals_and_classifier_shapes(tokenizer):
    gpt = tiny_gpt(tokenizer.vocab_size)
    ids = encode_batch(tokenizer, [TEXT[:20], TEXT[5:25]])
    s = char_surprisals(gpt, ids)
    assert s.shape == (2, 19) and (s > 0).all()
    _, loss = gpt(ids[:, :-1], ids[:, 1:])
    assert torch.isclose(s.mean(), loss, atol=1e-6)
    clf = SurprisalClassifier(gpt, k=4)
    assert clf(ids).shape == (2, 2)
    assert torch.all(clf.features(ids)[:, :-1] >= clf.features(ids)[:, 1:])  # sorted, largest first
    with pytest.raises(ValueError, match="same length"):
        encode_batch(tokenizer, ["abc", "ab"])
    with pytest.raises(ValueError, match="k \\+ 1"):
        SurprisalClassifier(gpt, k=30)(ids)
    with pytest.raises(TypeError, match="gpt must be an llmbook.transformer.GPT, got Linear"):
        SurprisalClassifier(torch.nn.Linear(2, 2))


def test_train_classifier_learns_a_separable_toy_task():
    torch.manual_seed(0)
    inputs = torch.randn(64, 3)
    labels = (inputs[:, 0] > 0).long()
    model = torch.nn.Linear(3, 2)
    before = accuracy(model, inputs, labels)
    history = train_classifier(model, inputs, labels, steps=200, lr=0.05, val=(inputs, labels), eval_every=100)
    assert accuracy(model, inputs, labels) > max(0.9, before)
    assert history["trainable"] == 8 and history["val_steps"] == [100, 200]
    with pytest.raises(ValueError, match="same length"):
        train_classifier(model, inputs, labels[:3], steps=1, lr=0.1)


class _SuffixCopier(torch.nn.Module):
    """A stand-in language model that copies: at every position it predicts the token that followed the longest
    earlier match of the text ending there (an induction head taken to its limit). Given the few-shot prompt
    "the - A\nteh - B\nteh - " it predicts "B", the label the same text got in the examples."""

    def __init__(self, vocab_size, n_ctx=200):
        super().__init__()
        self.vocab_size, self.config = vocab_size, GPTConfig(vocab_size=vocab_size, n_ctx=n_ctx)

    def forward(self, ids):
        seq = ids[0].tolist()
        logits = torch.zeros(1, len(seq), self.vocab_size)
        for t in range(len(seq)):
            best, follow = 0, None
            for s in range(t):  # earlier ends s; the match length is how far the texts agree going back
                n = 0
                while n <= s and seq[s - n] == seq[t - n]:
                    n += 1
                if n > best:
                    best, follow = n, seq[s + 1]
            if follow is not None:
                logits[0, t, follow] = 10.0
        return logits, None


def test_in_context_classify_copies_the_labels_of_the_examples(tokenizer):
    # A model that copies the label the same text got in the examples classifies every repeated example
    # correctly. Swapped label words, a lost example, a query formatted unlike the examples or an argmin
    # in place of the argmax would each give a wrong class here.
    copier = _SuffixCopier(tokenizer.vocab_size)
    shots = [("the", 0), ("teh", 1), ("would", 0), ("wuold", 1), ("said", 1), ("siad", 0)]
    queries = ["wuold", "the", "siad", "teh", "said", "would"]
    expected = [1, 0, 0, 1, 1, 0]
    assert in_context_classify(copier, tokenizer, shots, queries, ["A", "B"]).tolist() == expected
    assert in_context_classify(copier, tokenizer, shots, queries, ["B", "A"]).tolist() == expected  # names only
    flipped = [(text, 1 - label) for text, label in shots]
    assert in_context_classify(copier, tokenizer, flipped, queries, ["A", "B"]).tolist() == [1 - y for y in expected]
    with pytest.raises(ValueError, match="two classes"):
        in_context_classify(copier, tokenizer, [], ["x"], ["A"])
    with pytest.raises(ValueError, match="list of strings"):
        in_context_scores(copier, tokenizer, [], "the", ["A", "B"])


def test_in_context_scores_are_the_label_words_log_probabilities(tokenizer):
    gpt = tiny_gpt(tokenizer.vocab_size).eval()
    shots = [("the", 0), ("teh", 1)]
    scores = in_context_scores(gpt, tokenizer, shots, ["wuold", "the"], ["A", "B"])
    assert scores.shape == (2, 2) and (scores < 0).all()
    prompt = "the - A\nteh - B\nwuold - "  # the first query's prompt, by hand
    with torch.no_grad():
        logits, _ = gpt(torch.tensor([tokenizer.encode(prompt)]))
    by_hand = torch.log_softmax(logits[0, -1], dim=-1)[tokenizer.encode("B")[0]]
    assert scores[0, 1] == pytest.approx(float(by_hand), abs=1e-5)
    assert np.array_equal(in_context_classify(gpt, tokenizer, shots, ["wuold", "the"], ["A", "B"]),
                          scores.argmax(axis=1))
    two_tokens = in_context_scores(gpt, tokenizer, shots, ["wuold"], ["AB", "BA"])  # the general path
    with torch.no_grad():
        logits, _ = gpt(torch.tensor([tokenizer.encode("the - AB\nteh - BA\nwuold - A")]))
    log_probs = torch.log_softmax(logits[0], dim=-1)
    a, b = tokenizer.encode("AB")
    assert two_tokens[0, 0] == pytest.approx(float(log_probs[-2, a] + log_probs[-1, b]), abs=1e-5)


def test_classifier_loss_is_the_mean_cross_entropy():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).train()
    inputs, labels = torch.randn(10, 3), torch.tensor([0, 1] * 5)
    expected = float(torch.nn.functional.cross_entropy(model(inputs), labels).detach())
    assert classifier_loss(model, inputs, labels, batch_size=3) == pytest.approx(expected, rel=1e-5)
    assert model.training  # the mode is restored
    with pytest.raises(ValueError, match="same length"):
        classifier_loss(model, inputs, labels[:4])


def test_start_from_probe_copies_the_probe_into_the_head(tokenizer):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    gpt = tiny_gpt(tokenizer.vocab_size)
    classifier = SurprisalClassifier(gpt, k=4)
    texts, labels = make_typo_task(TEXT, 40, n_chars=24, seed=0)
    ids = encode_batch(tokenizer, texts)
    with torch.no_grad():
        features = classifier.features(ids)
    probe = make_pipeline(StandardScaler(), LogisticRegression()).fit(features.numpy(), labels)
    start_from_probe(classifier, probe)
    with torch.no_grad():
        probability = torch.softmax(classifier(ids), dim=1)[:, 1]
    assert np.allclose(probability.numpy(), probe.predict_proba(features.numpy())[:, 1], atol=1e-5)
    assert start_from_probe(classifier, (probe[0], probe[1])) is classifier  # a pair works too
    with pytest.raises(ValueError, match="2 outputs"):
        start_from_probe(SurprisalClassifier(gpt, n_classes=3, k=4), probe)
    with pytest.raises(ValueError, match="reads 4 features"):
        start_from_probe(SurprisalClassifier(gpt, k=5), probe)
    with pytest.raises(ValueError, match="fitted"):
        start_from_probe(classifier, [probe[1]])


def test_sft_tensors_mask_the_prompt(tokenizer):
    pairs = make_sft_pairs(["minister", "government"], 6, seed=0)
    assert make_sft_pairs(["minister", "government"], 6, seed=0) == pairs
    for prompt, response in pairs:
        word = prompt.split(": ")[1].strip()
        assert response.strip() in (word.capitalize(), str(len(word)))
    inputs, targets = sft_tensors(tokenizer, [("Capitalise: the\n", "The\n")], n_ctx=24)
    assert inputs.shape == targets.shape == (1, 24)
    trained = targets[0][targets[0] != IGNORE_INDEX]
    assert tokenizer.decode(trained.tolist()) == "The\n"
    assert np.all(targets[0, :14].numpy() == IGNORE_INDEX)
    with pytest.raises(ValueError, match="n_ctx"):
        sft_tensors(tokenizer, [("Capitalise: government\n", "Government\n")], n_ctx=8)
    with pytest.raises(ValueError, match="alphabetic"):
        make_sft_pairs(["123"], 2)
