"""Write student versions of the chapter notebooks: worked solutions removed, outputs cleared, answer cells added.

Usage: python scripts/make_student_version.py notebooks _build/student     (``make student``)

A command-line wrapper of :mod:`booktools.student`, which documents what a student version holds.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # booktools lives beside llmbook
from booktools.student import main  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: make_student_version.py NOTEBOOK_DIR OUTPUT_DIR")
    sys.exit(main(sys.argv[1], sys.argv[2]))
