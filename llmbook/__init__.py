"""llmbook: small, tested building blocks shared by the chapters of the book.

Each piece is taught in the chapter where it first appears and reused later:

- :mod:`llmbook.utils`: seeding, thread control, argument checks (every chapter).
- :mod:`llmbook.plotting`: the book's colour-blind-safe palette and figure style.
- :mod:`llmbook.params`: parameter and memory counting (chapter 1, reused in chapter 5).
- :mod:`llmbook.transformer`: attention, Transformer blocks and a small GPT (chapters 5 and 6).
"""

from llmbook.utils import count_parameters, set_seed, setup

__all__ = ["count_parameters", "set_seed", "setup", "__version__"]
__version__ = "0.1.0"
