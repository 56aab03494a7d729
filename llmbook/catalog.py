"""A small, sourced table of notable large models (chapter 3).

Each row of ``resources/models.csv`` gives a model's name, organisation, release date, modality, openness,
published parameter count (empty when the developer has not disclosed it) and ``source``, a citation key in
the book's ``references.bib``. Only figures that the project's fact-check confirmed are listed.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

COLUMNS = ("name", "organization", "date", "modality", "openness", "params", "source")
CATALOG_PATH = Path(__file__).resolve().parent / "resources" / "models.csv"


def load_model_catalog(path: str | Path | None = None) -> list[dict]:
    """Rows of the model table as dicts; ``params`` is an int, or ``None`` when undisclosed.

    Raises FileNotFoundError for a missing file and ValueError (naming the row) for a missing column,
    an empty required field or a parameter count that is not a positive whole number.
    """
    path = Path(path) if path is not None else CATALOG_PATH
    if not path.is_file():
        raise FileNotFoundError(f"model table not found: {path}")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path.name} lacks the column(s) {missing}; expected {list(COLUMNS)}")
        rows = []
        for line, row in enumerate(reader, start=2):
            for column in COLUMNS:
                if column != "params" and not (row[column] or "").strip():
                    raise ValueError(f"{path.name} line {line}: empty {column!r}")
            text = (row["params"] or "").strip()
            if text and not re.fullmatch(r"[1-9]\d*", text):
                raise ValueError(f"{path.name} line {line}: params must be a positive integer or empty, got {text!r}")
            rows.append({**{c: row[c].strip() for c in COLUMNS}, "params": int(text) if text else None})
    return rows


def bibtex_keys(path: str | Path) -> set[str]:
    """The citation keys defined in a BibTeX file."""
    return set(re.findall(r"^@\w+\{([^,\s]+),", Path(path).read_text(encoding="utf-8"), re.MULTILINE))
