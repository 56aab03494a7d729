"""Normalise executed notebooks so that re-running them gives no diff, and refuse unclean ones.

Command line: ``python scripts/clean_notebook.py notebooks/01_what_is_a_large_model.ipynb [...]``.

It removes per-cell timing metadata, sets one kernelspec, and fails (exit 1) if a notebook stores an error
output or was not run top to bottom in one go.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["KERNELSPEC", "VOLATILE_CELL_KEYS", "merge_streams", "clean", "main"]

#: The kernelspec every stored notebook carries.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
#: Cell metadata that changes from run to run and is removed.
VOLATILE_CELL_KEYS = ("execution", "ExecuteTime", "collapsed", "scrolled")


def merge_streams(outputs: list[dict]) -> list[dict]:
    """Join consecutive outputs of the same stream: how the kernel splits printed text depends on timing."""
    merged: list[dict] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            text = "".join(previous["text"]) + "".join(output["text"])
            previous["text"] = text.splitlines(keepends=True)
        else:
            merged.append(output)
    return merged


def clean(path: Path) -> list[str]:
    """Normalise the notebook at ``path`` in place and return its problems (errors, stderr, an out-of-order run)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    nb.setdefault("metadata", {})["kernelspec"] = KERNELSPEC
    nb["metadata"].pop("widgets", None)
    expected = 1
    for index, cell in enumerate(nb.get("cells", [])):
        for key in VOLATILE_CELL_KEYS:
            cell.get("metadata", {}).pop(key, None)
        if cell.get("cell_type") != "code":
            continue
        if not "".join(cell.get("source", "")).strip():
            problems.append(f"cell {index} is an empty code cell")
            continue
        if cell.get("execution_count") != expected:
            problems.append(f"cell {index} has execution count {cell.get('execution_count')}, expected {expected}")
        expected += 1
        cell["outputs"] = merge_streams(cell.get("outputs", []))
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"cell {index} stores an error: {output.get('ename')}")
            if output.get("name") == "stderr":
                problems.append(f"cell {index} writes to stderr: {''.join(output.get('text', ''))[:120]!r}")
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return problems


def main(paths: list[str]) -> int:
    """Clean every notebook of ``paths``; print each problem; 1 if there were any."""
    status = 0
    for name in paths:
        for problem in clean(Path(name)):
            print(f"{name}: {problem}")
            status = 1
    return status
