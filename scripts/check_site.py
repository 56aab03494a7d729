"""Check the built HTML site: every internal link and image resolves, and every image has alt text.

Usage: python scripts/check_site.py _build/html      (exit 1 and a list of problems if any)

A command-line wrapper of :mod:`booktools.site_links`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # booktools lives beside llmbook
from booktools.site_links import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
