"""Remove hand-written numbers from notebook headings ("## 1.2 Tokens" -> "## Tokens").

Sphinx numbers chapters and sections itself (the toc is numbered), so a hand-written number shows twice.
Usage: python scripts/unnumber_headings.py notebooks/*.ipynb
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HEADING = re.compile(r"^(#+ +)\d+(?:\.\d+)*\.?\s+", re.MULTILINE)


def main(paths: list[str]) -> int:
    for name in paths:
        path = Path(name)
        nb = json.loads(path.read_text(encoding="utf-8"))
        changed = 0
        for cell in nb["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            new, n = HEADING.subn(r"\1", source)
            if n:
                cell["source"] = new
                changed += n
        if changed:
            path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{name}: {changed} headings unnumbered")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
