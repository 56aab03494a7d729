"""Autograding end to end with otter-grader, without Docker (``make autograde-check``; needs ``make grader-env``).

Usage: .venv-grader/bin/python scripts/autograde_check.py [CHAPTER ...] [--jobs 2] [--assign-only]

A command-line wrapper of :mod:`booktools.autograde`, which documents the three gradings per chapter.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # booktools lives beside llmbook
from booktools.autograde import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
