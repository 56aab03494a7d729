"""Chapter 9's coding exercise: the parameters LoRA adds, by rank (``ex-09-lora-rank``).

The chapter adapts the shared pre-trained tiny GPT, so the layer shapes come from its recipe,
:data:`llmbook.pretrained.RECIPE`.
"""

from __future__ import annotations

from llmbook.exercises.record import Exercise, Wrong, call_answer, need_callable

__all__ = ["check_lora_rank", "RECORDS"]


_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}


def _lora_layers() -> tuple[list[tuple[int, int]], int]:
    """``(shapes, n_blocks)`` of the chapter's GPT, built from the shared model's recipe
    (:data:`~llmbook.pretrained.RECIPE`): (d_in, d_out) of qkv, out, up and down in one block, and the number of
    blocks. The model is built with the random generator's state saved and restored, so a check leaves the
    notebook's random numbers as they were."""
    import torch

    from llmbook.pretrained import RECIPE
    from llmbook.transformer import GPT, GPTConfig

    with torch.random.fork_rng(devices=[]):
        model = GPT(GPTConfig(vocab_size=2, **RECIPE["model"]))
    block = model.blocks[0]
    layers = (block.attn.qkv, block.attn.out, block.ffn.up, block.ffn.down)
    return [(layer.in_features, layer.out_features) for layer in layers], len(model.blocks)


def check_lora_rank(answer, **_) -> str:
    """ex-09-lora-rank: ``answer(rank)`` returns the trainable parameters LoRA adds to the chapter's GPT when
    qkv, out, up and down of both blocks are adapted."""
    need_callable(answer, "lora_count(rank)")
    shapes, n_blocks = _lora_layers()
    for rank in (1, 2, 4, 8, 16):
        expected = n_blocks * sum(rank * (d_in + d_out) for d_in, d_out in shapes)
        got = call_answer(answer, rank)
        if got == expected:
            continue
        if got == expected // n_blocks:
            raise Wrong(f"rank {rank}: {got:,} is {'half' if n_blocks == 2 else 'a fraction of'} the count; the "
                        f"model has {_NUMBERS.get(n_blocks, n_blocks)} blocks")
        if got == n_blocks * sum(rank * d_in for d_in, _ in shapes) or \
                got == n_blocks * sum(rank * d_out for _, d_out in shapes):
            raise Wrong(f"rank {rank}: a LoRA update has two factors, A (r x d_in) and B (d_out x r)")
        raise Wrong(f"rank {rank}: got {got}; compare with count_parameters(model, trainable_only=True) "
                    "after add_lora")
    return "the counts for ranks 1 to 16 agree with add_lora's."


#: The chapter's exercise records.
RECORDS = (
    Exercise(label="ex-09-lora-rank", answer="lora_count", check=check_lora_rank,
             signature="lora_count(rank) -> trainable parameters",
             wrong=("lora_count = lambda rank, n_blocks=2: "
                    "sum(rank * (d_in + d_out) for d_in, d_out in SHAPES)  # one block only")),
)
