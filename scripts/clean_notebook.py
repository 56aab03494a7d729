"""Normalise executed notebooks so that re-running them gives no diff, and refuse unclean ones.

Usage: python scripts/clean_notebook.py notebooks/01_what_is_a_large_model.ipynb [...]

A command-line wrapper of :mod:`booktools.clean`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # booktools lives beside llmbook
from booktools.clean import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
