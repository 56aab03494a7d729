"""A small, sourced table of notable large models (chapter 3).

Each row of ``resources/models.csv`` gives a model's name, organisation, release date, modality, openness,
published parameter count (empty when the developer has not disclosed it) and ``source``, a citation key in
the book's ``references.bib``. Only figures that the project's fact-check confirmed are listed.
"""

from __future__ import annotations

import re
from pathlib import Path

from llmbook.utils import parse_count, read_csv_table

__all__ = ["COLUMNS", "CATALOG_PATH", "load_model_catalog", "bibtex_keys"]

#: The columns of ``resources/models.csv``, in order.
COLUMNS = ("name", "organization", "date", "modality", "openness", "params", "source")
#: Where the catalogue ships inside the package.
CATALOG_PATH = Path(__file__).resolve().parent / "resources" / "models.csv"


def load_model_catalog(path: str | Path | None = None) -> list[dict]:
    """Rows of the model table as dicts; ``params`` is an int, or ``None`` when undisclosed.

    Raises FileNotFoundError for a missing file and ValueError (naming the row) for a missing column,
    an empty required field or a parameter count that is not a positive whole number.
    """
    path = Path(path) if path is not None else CATALOG_PATH
    rows = []
    for line, row in read_csv_table(path, COLUMNS, optional=("params",), what="model table"):
        row["params"] = parse_count(row["params"], f"{path.name} line {line}: ")
        rows.append(row)
    return rows


def bibtex_keys(path: str | Path) -> set[str]:
    """The citation keys defined in a BibTeX file."""
    return set(re.findall(r"^@\w+\{([^,\s]+),", Path(path).read_text(encoding="utf-8"), re.MULTILINE))
