"""Our skip-gram (llmbook.embeddings) against gensim's Word2Vec on the same shipped corpus, one thread each.

Run by hand from the repository root (takes about 1-2 minutes):

    .venv/bin/python benchmarks/word2vec_vs_gensim.py

Both models see the same sentences (the shortened English Wikipedia dump in gensim's test data) with the same
dimension, window, negatives, epochs, min_count and subsampling threshold. Quality is the Spearman correlation
on WordSim353 and the accuracy on the analogy questions whose words are in the vocabulary. The last line
printed is one JSON object with the results.
"""

from __future__ import annotations

import json
import time

import torch
from gensim.models import Word2Vec

from llmbook import embeddings as emb
from llmbook.utils import set_seed

SETTINGS = {"dim": 100, "window": 5, "negative": 5, "epochs": 5, "min_count": 5, "sample": 1e-3}


def evaluate(vectors, vocab, seconds: float) -> dict:
    rho, n_pairs = emb.wordsim_spearman(vectors, vocab)
    accuracy, n_questions = emb.analogy_accuracy(vectors, vocab)
    print(f"  WordSim353 Spearman {rho:.3f} on {n_pairs} pairs; analogies {accuracy:.3f} on {n_questions} "
          f"questions; {seconds:.1f} s")
    return {"spearman": round(rho, 4), "analogy": round(accuracy, 4), "seconds": round(seconds, 2)}


def main() -> None:
    torch.set_num_threads(1)
    set_seed(0)
    start = time.perf_counter()
    sentences = emb.wiki_sentences()
    n_tokens = sum(len(s) for s in sentences)
    print(f"corpus: {n_tokens:,} tokens in {len(sentences)} pieces, parsed in {time.perf_counter() - start:.1f} s")
    print(f"settings: {SETTINGS}, skip-gram, one thread each")

    print("ours (llmbook.embeddings.train_skipgram):")
    start = time.perf_counter()
    vocab = emb.build_vocab(sentences, min_count=SETTINGS["min_count"])
    result = emb.train_skipgram(sentences, vocab, dim=SETTINGS["dim"], window=SETTINGS["window"],
                                negative=SETTINGS["negative"], epochs=SETTINGS["epochs"],
                                sample=SETTINGS["sample"], seed=0)
    ours = evaluate(result.vectors, vocab, time.perf_counter() - start)

    print("gensim Word2Vec (sg=1, workers=1):")
    start = time.perf_counter()
    model = Word2Vec(sentences, vector_size=SETTINGS["dim"], window=SETTINGS["window"],
                     negative=SETTINGS["negative"], epochs=SETTINGS["epochs"], min_count=SETTINGS["min_count"],
                     sample=SETTINGS["sample"], sg=1, workers=1, seed=0)
    theirs = evaluate(model.wv.vectors, emb.vocab_from_gensim(model.wv), time.perf_counter() - start)

    print(f"ratios: Spearman ours/gensim {ours['spearman'] / theirs['spearman']:.2f} (target >= 0.9), "
          f"time ours/gensim {ours['seconds'] / theirs['seconds']:.2f} (target <= 2)")
    print(json.dumps({"corpus": emb.WIKI_DUMP, "tokens": n_tokens, "ours": ours, "gensim": theirs}))


if __name__ == "__main__":
    main()
