"""Export a chapter's coding exercises to an otter-grader assignment, from the same notebook source.

Usage: python scripts/export_otter.py notebooks/02_history.ipynb _build/otter/02_history/master.ipynb

A command-line wrapper of :mod:`booktools.otter_export`, which documents the export.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # booktools lives beside llmbook
from booktools.otter_export import main  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: export_otter.py CHAPTER.ipynb MASTER.ipynb")
    sys.exit(main(sys.argv[1], sys.argv[2]))
