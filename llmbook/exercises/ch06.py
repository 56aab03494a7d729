"""Chapter 6's coding exercise: sampling text from the bigram table (``ex-06-bigram-generator``)."""

from __future__ import annotations

import torch

from llmbook.exercises.record import Exercise, Wrong, call_answer, need_callable

__all__ = ["check_bigram_generator", "RECORDS"]


def _stationary(table: torch.Tensor) -> torch.Tensor:
    p = torch.full((table.shape[0],), 1.0 / table.shape[0], dtype=torch.float64)
    for _ in range(200):
        p = p @ table
    return p


def check_bigram_generator(answer, table=None, tokenizer=None, **_) -> str:
    """ex-06-bigram-generator: ``answer(prompt, n_chars, generator)`` returns ``n_chars`` new characters sampled
    from the bigram table; pass ``table=`` (the (V, V) bigram probabilities) and ``tokenizer=``."""
    need_callable(answer, "bigram_generate(prompt, n_chars, generator)")
    if table is None or tokenizer is None:
        raise Wrong('pass the table and tokenizer too: check("ex-06-bigram-generator", bigram_generate, '
                    "table=bigram_table, tokenizer=tokenizer)")
    table = torch.as_tensor(table, dtype=torch.float64)
    prompt, n = "The government ", 3000
    texts = [call_answer(answer, prompt, n, torch.Generator().manual_seed(seed)) for seed in (0, 1)]
    if not all(isinstance(t, str) for t in texts):
        raise Wrong(f"return the generated text as a str, got {type(texts[0]).__name__}")
    if len(texts[0]) == n + len(prompt) and texts[0].startswith(prompt):
        raise Wrong("return only the new characters, without the prompt")
    if len(texts[0]) != n:
        raise Wrong(f"asked for {n} characters, got {len(texts[0])}")
    if texts[0] == texts[1]:
        raise Wrong("two different generators give the same text: sample (torch.multinomial with the "
                    "generator) instead of taking the most probable character")
    ids = tokenizer.encode(prompt[-1] + texts[0])
    logp = table[torch.tensor(ids[:-1]), torch.tensor(ids[1:])].log().mean().item()
    expected = (_stationary(table) * (table * table.log()).sum(1)).sum().item()
    if abs(logp - expected) > 0.25:
        raise Wrong(f"your text is {'less' if logp < expected else 'more'} likely under the bigram table than "
                    f"samples from it should be (mean log-probability {logp:.2f} against about {expected:.2f}): "
                    "does each character come from the row of the character just before it?")
    return f"{n} characters with the statistics of the bigram table."


#: The chapter's exercise records.
RECORDS = (
    Exercise(label="ex-06-bigram-generator", answer="bigram_generate", check=check_bigram_generator,
             needs={"table": "bigram_table", "tokenizer": "tokenizer"},
             wrong=("_right = bigram_generate\n"
                    "bigram_generate = lambda prompt, n_chars, generator: "
                    "_right(prompt, n_chars - 1, generator)  # one character short")),
)
