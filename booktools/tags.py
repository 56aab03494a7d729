"""Mark code cells for the output policy (:mod:`booktools.nbval_policy`) without opening JupyterLab.

    python -m booktools.tags notebooks/10_rlhf.ipynb --run-dependent 7 9 --timing 23 --exact 4
    python -m booktools.tags notebooks/10_rlhf.ipynb --list

Cells are numbered as nbval numbers them: code cells only, from 0 (``Cell 7`` in nbval's report). ``--timing``
marks a cell that prints wall-clock or CPU time (run-dependent, and exempt from the rule that a notebook with
run-dependent cells asserts its claims). The notebook is written back in the book's format (as
``scripts/clean_notebook.py`` writes it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from booktools.nbval_policy import IGNORE_TAG, cell_kind

TIMING_TAG = "timing"


def code_cells(nb: dict) -> list[dict]:
    return [cell for cell in nb["cells"] if cell["cell_type"] == "code"]


def set_kind(cell: dict, kind: str) -> None:
    """Tag ``cell`` as ``"exact"``, ``"run-dependent"`` or ``"timing"``; drop the old comment marker."""
    if kind not in ("exact", "run-dependent", "timing"):
        raise ValueError(f"unknown kind {kind!r}")
    tags = [t for t in cell.setdefault("metadata", {}).get("tags", []) if t not in (IGNORE_TAG, TIMING_TAG)]
    if kind != "exact":
        tags.append(IGNORE_TAG)
    if kind == "timing":
        tags.append(TIMING_TAG)
    if tags:
        cell["metadata"]["tags"] = tags
    else:
        cell["metadata"].pop("tags", None)
    source = cell["source"] if isinstance(cell["source"], list) else cell["source"].splitlines(keepends=True)
    cell["source"] = [line for line in source if line.strip() != "# NBVAL_IGNORE_OUTPUT"]
    if cell["source"]:
        cell["source"][-1] = cell["source"][-1].rstrip("\n")


def write(path: Path, nb: dict) -> None:
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    for kind in ("run-dependent", "timing", "exact"):
        parser.add_argument(f"--{kind}", type=int, nargs="+", default=[], metavar="N")
    parser.add_argument("--list", action="store_true", help="print each code cell's kind and first line")
    args = parser.parse_args(argv)
    nb = json.loads(args.notebook.read_text(encoding="utf-8"))
    cells = code_cells(nb)
    for kind in ("run-dependent", "timing", "exact"):
        for index in getattr(args, kind.replace("-", "_")):
            if not 0 <= index < len(cells):
                parser.error(f"{args.notebook.name} has code cells 0-{len(cells) - 1}, not {index}")
            set_kind(cells[index], kind)
    if args.list:
        for index, cell in enumerate(cells):
            first = "".join(cell["source"]).strip().splitlines()[0] if "".join(cell["source"]).strip() else ""
            timing = " (timing)" if TIMING_TAG in cell.get("metadata", {}).get("tags", []) else ""
            print(f"{index:3d} {cell_kind(cell):13s}{timing:9s} {first[:70]}")
    write(args.notebook, nb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
