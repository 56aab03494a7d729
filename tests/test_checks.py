"""Tests of llmbook.checks and the checks of llmbook.exercises: plausible wrong answers fail with a message that
names the problem, and a few right answers written differently from the chapters' pass. That each chapter's worked
solution passes its check is tested in its notebook (tests/test_exercises.py), not copied here."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from booktools import student
from llmbook.checks import CHECK_CALLS, CHECKS, check
from llmbook.exercises import ch02

ROOT = Path(__file__).resolve().parent.parent


def fails_with(label, answer, pattern, **context):
    result = check(label, answer, quiet=True, **context)
    assert not result.passed, f"{label}: a wrong answer passed"
    assert re.search(pattern, result.message), f"{label}: unhelpful message {result.message!r}"
    return result


def passes(label, answer, **context):
    result = check(label, answer, quiet=True, **context)
    assert result.passed, f"{label}: the worked solution fails: {result.message}"
    return result


def test_check_api(capsys):
    with pytest.raises(KeyError, match="ex-05-rope"):
        check("ex-99-nothing", None)
    with pytest.raises(TypeError, match="exercise label"):
        check(5, None)
    result = check("ex-01-bert-large", "many")
    assert not result and "number" in result.message
    assert "not yet" in capsys.readouterr().out
    assert set(CHECK_CALLS) == set(CHECKS)
    for label, call in CHECK_CALLS.items():
        assert call.startswith(f'check("{label}"')


def test_every_check_has_a_coding_exercise_in_the_chapters():
    labels = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        labels.update(re.findall(r":label: (ex-\d\d-[\w-]+)", text))
    assert set(CHECKS) <= labels


def test_every_coding_exercise_has_a_check():
    coding = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        found = student.exercises(json.loads(path.read_text(encoding="utf-8")), path.name)
        coding.update(exercise.label for exercise in found if exercise.kind == "coding")
    assert {"ex-07-cross-attention", "ex-08-refit"} <= coding
    assert coding <= set(CHECKS), f"coding exercises without a check: {sorted(coding - set(CHECKS))}"


# -- chapter 1 ------------------------------------------------------------------------------------------------

def test_bert_large():
    from llmbook.params import bert_params

    d, L = 1024, 24
    by_hand = bert_params(L, d)  # the right count, the base of the wrong ones
    fails_with("ex-01-bert-large", by_hand - (d**2 + d), "short: one piece of the list is missing")
    fails_with("ex-01-bert-large", by_hand - L * 13 * d, "13d")
    fails_with("ex-01-bert-large", 340_000_000, "rounded figure")


# -- chapter 2 ------------------------------------------------------------------------------------------------

def test_without_gpt3():
    from llmbook.history import fit_doubling_time

    window, all_sized = ch02._history_window()

    def not_removed(event):  # a typo'd comparison removes nothing
        return fit_doubling_time([r["decimal_year"] for r in window], [r["params"] for r in window]).doubling_months

    fails_with("ex-02-without-gpt3", not_removed, "really removed")

    def with_fine_tunes(event):
        rows = [r for r in all_sized if r["event"] != event]
        return fit_doubling_time([r["decimal_year"] for r in rows], [r["params"] for r in rows]).doubling_months

    fails_with("ex-02-without-gpt3", with_fine_tunes, "fine-tuned models")
    fails_with("ex-02-without-gpt3", 12.0, "a function")


def test_extrapolate():
    from llmbook.history import fit_doubling_time

    window, _ = ch02._history_window()
    fit = fit_doubling_time([r["decimal_year"] for r in window], [r["params"] for r in window], n_boot=200)
    target_year = (np.log2(1e14) - fit.intercept) / fit.slope  # the trend's year, the base of a wrong one
    fails_with("ex-02-extrapolate", (14 - fit.intercept) / fit.slope, "log2")
    fails_with("ex-02-extrapolate", target_year + 3, "years away")


# -- chapter 3 ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def noun_vectors():
    from llmbook.adaptation import generate_corpus, pretrain_word_vectors

    return pretrain_word_vectors(generate_corpus(3000, noise=0.1, seed=0), dim=16, epochs=3, seed=0)


def test_one_shot(noun_vectors):
    from llmbook.adaptation import nouns

    vectors = noun_vectors
    last = {kind: noun for noun, kind, _ in nouns()}  # the last noun of each kind instead of the first

    def other_prototypes(noun):
        return max(last, key=lambda k: vectors.similarity(noun, last[k]))

    fails_with("ex-03-one-shot", other_prototypes, "first of its kind", vectors=vectors)
    fails_with("ex-03-one-shot", lambda noun: noun, "should return a kind", vectors=vectors)
    fails_with("ex-03-one-shot", other_prototypes, "pass the pre-trained vectors")


# -- chapter 4 ------------------------------------------------------------------------------------------------

def test_3cosmul():
    def raw_dots(vectors, vocab, a, b, c):
        ia, ib, ic = vocab.id(a), vocab.id(b), vocab.id(c)
        scores = vectors @ vectors[ib] + vectors @ vectors[ic] - vectors @ vectors[ia]
        scores[[ia, ib, ic]] = -np.inf
        return vocab.words[int(np.argmax(scores))]

    def keeps_question_words(vectors, vocab, a, b, c):
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        scores = unit @ unit[vocab.id(b)] + unit @ unit[vocab.id(c)] - unit @ unit[vocab.id(a)]
        return vocab.words[int(np.argmax(scores))]

    fails_with("ex-04-3cosmul", raw_dots, "lengths")
    fails_with("ex-04-3cosmul", keeps_question_words, "question words")


# -- chapter 5 ------------------------------------------------------------------------------------------------

def test_rope():
    from llmbook.transformer import apply_rope, scaled_dot_product_attention

    def rotates_values(queries, keys, values, mask=None):
        return scaled_dot_product_attention(apply_rope(queries), apply_rope(keys), apply_rope(values), mask)

    def queries_only(queries, keys, values, mask=None):
        return scaled_dot_product_attention(apply_rope(queries), keys, values, mask)

    def mask_after_softmax(queries, keys, values, mask=None):
        _, weights = scaled_dot_product_attention(apply_rope(queries), apply_rope(keys), values)
        weights = weights * mask
        return weights @ values, weights

    def ignores_offset(queries, keys, values, mask=None, offset=0):
        return scaled_dot_product_attention(apply_rope(queries, offset=offset), apply_rope(keys), values, mask)

    fails_with("ex-05-rope", rotates_values, "values are rotated")
    fails_with("ex-05-rope", queries_only, "only one of queries and keys")
    fails_with("ex-05-rope", mask_after_softmax, "mask")
    fails_with("ex-05-rope", ignores_offset, "offset")
    fails_with("ex-05-rope", lambda q, k, v, m: q, r"\(outputs, weights\)")


# -- chapter 6 ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bigram():
    from llmbook.data import lee_news_text, train_val_split
    from llmbook.tokenizers import CharTokenizer
    from llmbook.training import bigram_probabilities

    text = lee_news_text()
    tokenizer = CharTokenizer(text)
    train_data, _ = train_val_split(torch.tensor(tokenizer.encode(text)), val_fraction=0.1)
    return bigram_probabilities(train_data, tokenizer.vocab_size).float(), tokenizer


def test_bigram_generator(bigram):
    bigram_table, tokenizer = bigram
    context = dict(table=bigram_table, tokenizer=tokenizer)

    def greedy(prompt, n_chars, generator):
        ids = tokenizer.encode(prompt)
        for _ in range(n_chars):
            ids.append(int(bigram_table[ids[-1]].argmax()))
        return tokenizer.decode(ids[len(prompt):])

    def first_character_row(prompt, n_chars, generator):  # always the row of the prompt's first character
        ids = tokenizer.encode(prompt)
        for _ in range(n_chars):
            ids.append(int(torch.multinomial(bigram_table[ids[0]], 1, generator=generator)))
        return tokenizer.decode(ids[len(prompt):])

    def with_prompt(prompt, n_chars, generator):
        return prompt + "e" * n_chars

    fails_with("ex-06-bigram-generator", greedy, "sample", **context)
    fails_with("ex-06-bigram-generator", first_character_row, "row of the character just before", **context)
    fails_with("ex-06-bigram-generator", with_prompt, "without the prompt", **context)


# -- chapter 7 ------------------------------------------------------------------------------------------------

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


@pytest.fixture(scope="module")
def date_model():
    """The chapter's date task (its date_batch and written) with a small untrained model whose cross-attention is
    sharpened, so that the maps are peaked like a trained model's and the heads disagree (no training: fast)."""
    from llmbook import set_seed
    from llmbook.architectures import EncoderDecoder, EncoderDecoderConfig
    from llmbook.tokenizers import CharTokenizer
    from llmbook.training import IGNORE_INDEX

    def written(d):
        return f"{d.day} {MONTHS[d.month - 1]} {d.year}"

    date_tok = CharTokenizer("".join(MONTHS) + "0123456789- ^$_")
    BOS, EOS, PAD = (date_tok.stoi[c] for c in "^$_")
    OUT_LEN = 18

    def date_batch(dates):
        source = torch.tensor([date_tok.encode(d.isoformat()) for d in dates])
        decoder_in = torch.full((len(dates), OUT_LEN), PAD)
        targets = torch.full((len(dates), OUT_LEN), IGNORE_INDEX)
        for i, d in enumerate(dates):
            out = date_tok.encode(written(d))
            decoder_in[i, : len(out) + 1] = torch.tensor([BOS] + out)
            targets[i, : len(out) + 1] = torch.tensor(out + [EOS])
        return source, decoder_in, targets

    set_seed(0)
    seq2seq = EncoderDecoder(EncoderDecoderConfig(
        vocab_size=date_tok.vocab_size, n_ctx_source=10, n_ctx_target=OUT_LEN, d_model=16, n_encoder_layers=1,
        n_decoder_layers=1, n_heads=2))
    with torch.no_grad():
        seq2seq.decoder[0].cross_attn.query.weight.mul_(40.0)
    return seq2seq, date_batch, written


def test_cross_attention(date_model):
    seq2seq, date_batch, written = date_model

    def cross_maps(which, n_out):
        source, decoder_in, _ = date_batch([which])
        with torch.no_grad():
            seq2seq(source, decoder_in[:, :n_out], keep_weights=True)
        return seq2seq.cross_attention_weights()[0][0]  # (2 heads, n_out, 10)

    def n_out(which):
        return len(written(which)) + 1

    def strongest_inputs(which):  # right on this test's model, the base of the wrong answers below
        return cross_maps(which, n_out(which)).mean(dim=0).argmax(dim=-1).tolist()

    context = dict(model=seq2seq, batch=date_batch)
    assert "6 dates" in passes("ex-07-cross-attention", strongest_inputs, **context).message
    passes("ex-07-cross-attention", lambda d: torch.tensor(strongest_inputs(d)), **context)  # a tensor is fine

    def one_head(which):
        return cross_maps(which, n_out(which))[0].argmax(dim=-1).tolist()

    def strongest_head(which):
        return cross_maps(which, n_out(which)).max(dim=0).values.argmax(dim=-1).tolist()

    def no_end_token(which):
        return cross_maps(which, n_out(which) - 1).mean(dim=0).argmax(dim=-1).tolist()

    def with_padding(which):
        return cross_maps(which, 18).mean(dim=0).argmax(dim=-1).tolist()

    def along_outputs(which):
        return cross_maps(which, n_out(which)).mean(dim=0).argmax(dim=0).tolist()

    def without_running(which):  # reads the weights without running the model on the date
        return seq2seq.cross_attention_weights()[0][0].mean(dim=0).argmax(dim=-1).tolist()

    def fixed_date(which):  # ignores its argument: always the chapter's date
        fixed = checks_date(1962, 10, 23)
        return cross_maps(fixed, n_out(fixed)).mean(dim=0).argmax(dim=-1).tolist()

    def characters(which):
        return [which.isoformat()[p] for p in strongest_inputs(which)]

    fails_with("ex-07-cross-attention", one_head, "single head", **context)
    fails_with("ex-07-cross-attention", strongest_head, "average over the heads", **context)
    fails_with("ex-07-cross-attention", no_end_token, "end token is missing", **context)
    fails_with("ex-07-cross-attention", with_padding, "padding", **context)
    fails_with("ex-07-cross-attention", along_outputs, "last dimension", **context)
    fails_with("ex-07-cross-attention", without_running, "keep_weights=True", **context)
    fails_with("ex-07-cross-attention", fixed_date, "the date it is given", **context)
    fails_with("ex-07-cross-attention", characters, "returned characters", **context)
    fails_with("ex-07-cross-attention", strongest_inputs(checks_date(2000, 1, 1)), "function of the date", **context)
    fails_with("ex-07-cross-attention", strongest_inputs, "pass the model")
    fails_with("ex-07-cross-attention", strongest_inputs, "EncoderDecoder", model=date_batch, batch=seq2seq)


def checks_date(year, month, day):
    from datetime import date

    return date(year, month, day)


# -- chapter 8 ------------------------------------------------------------------------------------------------

def test_refit():
    from llmbook.scaling import fit_power_law

    def predict_largest(n, loss, fit_offset):  # the right prediction, the base of the wrong ones below
        return fit_power_law(n[:-1], loss[:-1], fit_offset=fit_offset).predict(n[-1])

    def by_hand(n, loss, fit_offset):  # the chapter's fit by hand (a grid of 2000 offsets), five smaller models
        sizes, losses = n[:-1], loss[:-1]

        def fit_for_offset(c):
            slope, intercept = np.polyfit(np.log(sizes), np.log(losses - c), 1)
            a, alpha = np.exp(intercept), -slope
            return a, alpha, np.sum((a * sizes ** -alpha + c - losses) ** 2)

        offsets = np.linspace(0, losses.min() - 1e-3, 2000) if fit_offset else [0.0]
        best_c = min(offsets, key=lambda c: fit_for_offset(c)[2])
        a, alpha, _ = fit_for_offset(best_c)
        return a * n[-1] ** -alpha + best_c

    passes("ex-08-refit", by_hand)  # another way to the right answer passes: the check's tolerance allows it

    def fit_of(sizes, losses, offset):
        return fit_power_law(sizes, losses, fit_offset=offset)

    fails_with("ex-08-refit", lambda n, loss, offset: fit_of(n, loss, offset).predict(n[-1]),
               "includes the largest model")
    fails_with("ex-08-refit", lambda n, loss, offset: predict_largest(n, loss, True), "other kind of fit")
    fails_with("ex-08-refit", lambda n, loss, offset: fit_of(n[1:], loss[1:], offset).predict(n[-1]),
               "left out the smallest")
    fails_with("ex-08-refit", lambda n, loss, offset: fit_of(n[:-1], loss[:-1], offset).predict(n[-2]),
               "largest model's N")
    fails_with("ex-08-refit", lambda n, loss, offset: predict_largest(n, loss, offset) - loss[-1], "error")
    fails_with("ex-08-refit", lambda n, loss, offset: loss[-1], "measured loss")
    fails_with("ex-08-refit", lambda n, loss, offset: fit_of(n[:-1], loss[:-1], offset), "returns the fit")
    fails_with("ex-08-refit", lambda n, loss, offset: predict_largest(n, loss, offset) + 0.05, "nats away")
    fails_with("ex-08-refit", 1.9, "a function")


# -- chapter 9 ------------------------------------------------------------------------------------------------

def test_lora_rank():
    """The check's count agrees with add_lora's on the chapter's model (the shared model's recipe), and the hints."""
    from llmbook.lora import add_lora
    from llmbook.pretrained import RECIPE
    from llmbook.transformer import GPT, GPTConfig
    from llmbook.utils import count_parameters

    gpt = GPT(GPTConfig(vocab_size=40, **RECIPE["model"]))
    targets = ["qkv", "out", "up", "down"]

    def by_add_lora(rank):  # a right answer that counts instead of multiplying
        model = copy.deepcopy(gpt)
        add_lora(model, targets, rank=rank)
        return count_parameters(model, trainable_only=True)

    passes("ex-09-lora-rank", by_add_lora)
    adapted = [m for name, m in gpt.named_modules() if name.rsplit(".", 1)[-1] in targets]
    assert len(adapted) == 8  # four layers in each of two blocks
    fails_with("ex-09-lora-rank", lambda rank: by_add_lora(rank) // 2, "two blocks")
    fails_with("ex-09-lora-rank", lambda rank: sum(rank * m.in_features for m in adapted), "two factors")


# -- chapter 10 -----------------------------------------------------------------------------------------------

def test_clip():
    def clipped(log_ratio, advantage):  # a right answer by autograd (the check's reference is a closed form)
        log_prob = torch.tensor([[log_ratio]], requires_grad=True)  # log pi_old = 0
        ratio = log_prob.exp()
        objective = torch.minimum(ratio * advantage, ratio.clamp(0.8, 1.2) * advantage)
        objective.sum().backward()
        return objective.item(), log_prob.grad.item()

    passes("ex-10-clip", clipped)

    def no_clip_in_gradient(log_ratio, advantage):
        ratio = math.exp(log_ratio)
        return clipped(log_ratio, advantage)[0], ratio * advantage

    def by_ratio(log_ratio, advantage):
        objective, gradient = clipped(log_ratio, advantage)
        return objective, advantage if gradient else 0.0

    def maximum(log_ratio, advantage):
        ratio = math.exp(log_ratio)
        return max(ratio * advantage, min(max(ratio, 0.8), 1.2) * advantage), 0.0

    fails_with("ex-10-clip", no_clip_in_gradient, "should vanish")
    fails_with("ex-10-clip", by_ratio, "derivative by log pi")
    fails_with("ex-10-clip", maximum, "smaller of the two terms")


# -- chapter 11 -----------------------------------------------------------------------------------------------

def test_groups():
    from llmbook.quantisation import dequantise, quantise_per_channel

    def quantise_groups(weight, bits, group):  # a right answer, group by group (the check reshapes instead)
        out = torch.empty_like(weight)
        for row in range(weight.shape[0]):
            for start in range(0, weight.shape[1], group):
                piece = weight[row:row + 1, start:start + group]
                out[row:row + 1, start:start + group] = dequantise(*quantise_per_channel(piece, bits))
        return out

    passes("ex-11-groups", quantise_groups)
    fails_with("ex-11-groups", lambda w, bits, group: dequantise(*quantise_per_channel(w, bits)), "own scale")
    fails_with("ex-11-groups", lambda w, bits, group: quantise_groups(w, bits, group).reshape(-1, group),
               "reshape back")
    fails_with("ex-11-groups", lambda w, bits, group: quantise_groups(w, 4, 8), "group size")  # fixed settings
