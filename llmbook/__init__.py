"""llmbook: small, tested building blocks shared by the chapters of the book.

Each piece is taught in the chapter where it first appears and reused later; the book's part "The llmbook
reference" documents every module, in the order of the chapters. Each module has one job:

- :mod:`llmbook.utils`, :mod:`llmbook.plotting`: seeds, the one-thread policy, argument checks, a model's mode and
  fingerprint; the figure style.
- :mod:`llmbook.evidence`: results over several seeds, their spread, ties, and the book's claims checked in code.
- :mod:`llmbook.params` (chapters 1, 5 and 7): parameter counts and memory, and the published sizes of BERT and
  GPT-2. :mod:`llmbook.history` (2), :mod:`llmbook.catalog` and :mod:`llmbook.adaptation` (3): the timeline, the
  catalogue of models, a toy of pre-train-then-adapt.
- :mod:`llmbook.data` (4 and later): every shipped corpus and evaluation set. :mod:`llmbook.embeddings` (4):
  static word embeddings.
- :mod:`llmbook.tokenizers`, :mod:`llmbook.transformer` (5): tokenizers, attention and a small GPT.
  :mod:`llmbook.training`, :mod:`llmbook.generation` (6): the training loop (the book's only one), decoding.
- :mod:`llmbook.architectures`, :mod:`llmbook.hf_export` (7): encoders, encoder-decoders, Hugging Face.
- :mod:`llmbook.scaling` (8): compute, scaling-law fits, emergence metrics.
- :mod:`llmbook.pretrained`, :mod:`llmbook.finetune`, :mod:`llmbook.lora` (9): the shared checkpoint, adaptation.
- :mod:`llmbook.review_world` and :mod:`llmbook.rlhf` (10): the toy world and its labeller; reward model,
  KL-penalised policy optimisation, DPO.
- :mod:`llmbook.calibration`, :mod:`llmbook.memorisation`, :mod:`llmbook.retrieval` (11.1): how far to trust a
  model, verbatim recall, retrieval. :mod:`llmbook.inference`, :mod:`llmbook.quantisation` (11.2): the KV cache,
  weight quantisation.
- :mod:`llmbook.checks`, :mod:`llmbook.exercises`: the self-checks of the coding exercises, one record per exercise.
"""

from llmbook.utils import count_parameters, set_seed, setup

__all__ = ["count_parameters", "set_seed", "setup", "__version__"]
__version__ = "0.1.0"
