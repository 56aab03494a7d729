"""Write student versions of the notebooks: every worked solution is replaced by a short placeholder.

Usage: python scripts/make_student_version.py notebooks _build/student

A solution is everything from a ```{solution-start}``` markdown cell to the matching ```{solution-end}```
cell, plus any code cell tagged ``solution``. Outputs are cleared, so students run the notebook themselves.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

START = re.compile(r"```+\{solution-start\}\s*(\S+)")
END = re.compile(r"```+\{solution-end\}")


def student_cells(cells: list[dict]) -> list[dict]:
    out, inside = [], None
    for cell in cells:
        text = "".join(cell.get("source", ""))
        if cell.get("cell_type") == "markdown" and (match := START.search(text)):
            inside = match.group(1)
            continue
        if inside is not None:
            if cell.get("cell_type") == "markdown" and END.search(text):
                out.append({"cell_type": "markdown", "metadata": {},
                            "source": f"*Your solution to exercise {inside} goes here.*"})
                inside = None
            continue
        if "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.get("cell_type") == "code":
            cell = {**cell, "outputs": [], "execution_count": None}
        out.append(cell)
    if inside is not None:
        raise ValueError(f"solution {inside} has no solution-end cell")
    return out


def main(source: str, target: str) -> int:
    target_dir = Path(target)
    target_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(source).glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        nb["cells"] = student_cells(nb["cells"])
        text = json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
        (target_dir / path.name).write_text(text, encoding="utf-8")
        print(f"wrote {target_dir / path.name}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: make_student_version.py NOTEBOOK_DIR OUTPUT_DIR")
    sys.exit(main(sys.argv[1], sys.argv[2]))
