"""Check the built site in a real browser, with the network cut: what a reader sees.

Usage: python scripts/site_check.py _build/html [--browser /usr/bin/chromium] [--pages 'notebooks/*']

A command-line wrapper of :mod:`booktools.site_check`, which lists what it checks.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # booktools lives beside llmbook
from booktools.site_check import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
