"""Write the student version of every chapter and run each one from top to bottom (``make student-check``).

Usage: python scripts/check_student_versions.py [NOTEBOOK ...] [--out _build/student] [--jobs 2] [--timeout 600]

A command-line wrapper of :mod:`booktools.student_check`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # booktools lives beside llmbook
from booktools.student_check import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
