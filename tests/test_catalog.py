from pathlib import Path

import pytest

from llmbook.catalog import bibtex_keys, load_model_catalog

ROOT = Path(__file__).resolve().parent.parent


def test_catalog_loads_with_published_sizes():
    rows = {row["name"]: row for row in load_model_catalog()}
    assert rows["GPT-3"]["params"] == 175_000_000_000
    assert rows["BERT-large"]["params"] == 340_000_000
    assert rows["GPT-4"]["params"] is None  # undisclosed: never a rumoured number
    assert {row["modality"] for row in rows.values()} >= {"language", "vision", "multimodal", "audio", "robotics"}


def test_every_source_is_a_bibliography_key():
    keys = bibtex_keys(ROOT / "book" / "references.bib")
    for row in load_model_catalog():
        assert row["source"] in keys, f"{row['name']}: source {row['source']} is not in references.bib"


def test_bad_tables_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model_catalog(tmp_path / "missing.csv")
    no_source = tmp_path / "a.csv"
    no_source.write_text("name,organization,date,modality,openness,params\nX,Y,2020,language,closed,1\n")
    with pytest.raises(ValueError, match="source"):
        load_model_catalog(no_source)
    bad_params = tmp_path / "b.csv"
    bad_params.write_text("name,organization,date,modality,openness,params,source\nX,Y,2020,language,closed,1e9,k\n")
    with pytest.raises(ValueError, match="line 2"):
        load_model_catalog(bad_params)
