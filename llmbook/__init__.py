"""llmbook: small, tested building blocks shared by the chapters of the book.

Each piece is taught in the chapter where it first appears and reused later; the book's part "The llmbook
reference" documents every module, in the order of the chapters:

- :mod:`llmbook.utils`, :mod:`llmbook.plotting`: seeds, the one-thread policy, argument checks, figure style.
- :mod:`llmbook.evidence`: results over several seeds, their spread, ties, and the book's claims checked in code.
- :mod:`llmbook.params` (chapters 1 and 5), :mod:`llmbook.history` (2), :mod:`llmbook.catalog` and
  :mod:`llmbook.adaptation` (3): counting, the timeline, the catalogue of models, a toy of pre-train-then-adapt.
- :mod:`llmbook.data`, :mod:`llmbook.embeddings` (4): shipped text and static word embeddings.
- :mod:`llmbook.tokenizers`, :mod:`llmbook.transformer` (5), :mod:`llmbook.training`,
  :mod:`llmbook.generation` (6): tokenizers, attention and a small GPT, training, decoding.
- :mod:`llmbook.architectures`, :mod:`llmbook.hf_export` (7): encoders, encoder-decoders, Hugging Face.
- :mod:`llmbook.scaling` (8): compute, scaling-law fits, emergence metrics.
- :mod:`llmbook.pretrained`, :mod:`llmbook.finetune`, :mod:`llmbook.lora` (9): the shared checkpoint, adaptation.
- :mod:`llmbook.rlhf` (10): reward model, KL-penalised policy optimisation, DPO.
- :mod:`llmbook.inference`, :mod:`llmbook.retrieval` (11): KV cache, quantisation, calibration, retrieval.
- :mod:`llmbook.checks`, :mod:`llmbook.exercises`: the self-checks of the coding exercises, one record per exercise.
"""

from llmbook.utils import count_parameters, set_seed, setup

__all__ = ["count_parameters", "set_seed", "setup", "__version__"]
__version__ = "0.1.0"
