"""Checks of the book's structure and of the rules in CONTRIBUTING.md that can be read off the files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# A long chapter may be split into section notebooks, as d2l does: a chapter page notebooks/NN_slug.md (no code)
# whose sections are notebooks/NN_1_slug.ipynb, NN_2_slug.ipynb, ... (CONTRIBUTING.md, "Chapters in sections").
CHAPTER_PAGES = sorted((ROOT / "notebooks").glob("*.md"))
SECTION = re.compile(r"\d\d_\d_[a-z0-9_]+\.ipynb")


def chapter_of(path: Path) -> str:
    """The chapter number of a chapter notebook, a section notebook or a chapter page: '09' for 09_1_x.ipynb."""
    return path.name[:2]


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files += [section["file"] for section in chapter.get("sections", [])]
    return files


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def test_every_toc_entry_exists():
    for entry in toc_files():
        candidates = [ROOT / f"{entry}{ext}" for ext in ("", ".md", ".ipynb")]
        assert any(c.is_file() for c in candidates), f"_toc.yml lists {entry}, which does not exist"


def test_toc_lists_every_notebook_and_page():
    listed = set(toc_files())
    for path in NOTEBOOKS + CHAPTER_PAGES + sorted((ROOT / "book").glob("*.md")):
        entry = str(path.relative_to(ROOT).with_suffix(""))
        assert entry in listed, f"{entry} is not listed in _toc.yml"


def test_section_notebooks_sit_under_their_chapter_page():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    sections_of = {chapter["file"]: [s["file"] for s in chapter.get("sections", [])]
                   for part in toc.get("parts", []) for chapter in part.get("chapters", [])}
    for path in NOTEBOOKS:
        if SECTION.fullmatch(path.name):
            pages = [p for p in CHAPTER_PAGES if chapter_of(p) == chapter_of(path)]
            assert len(pages) == 1, f"{path.name} is a section notebook, but chapter {chapter_of(path)} has no page"
            page = str(pages[0].relative_to(ROOT).with_suffix(""))
            entry = str(path.relative_to(ROOT).with_suffix(""))
            assert entry in sections_of.get(page, []), f"_toc.yml should list {entry} under {page}"
    for page in CHAPTER_PAGES:
        text_ = page.read_text(encoding="utf-8")
        assert re.match(r"# \S", text_), f"{page.name} should start with '# Chapter title'"
        assert "In this chapter you will" in text_, f"{page.name} should say what the reader will be able to do"
        assert "```{code-cell" not in text_, f"{page.name} is a chapter page: its code belongs in its sections"


def test_notebook_names_follow_the_numbering():
    for path in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), f"{path.name} should be NN_short_slug.ipynb"
        if SECTION.fullmatch(path.name):
            assert not (ROOT / "notebooks" / f"{path.name[:2]}.ipynb").exists()
    for page in CHAPTER_PAGES:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.md", page.name), f"{page.name} should be NN_short_slug.md"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_has_alt_text(path):
    for index, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] == "markdown":
            for alt in re.findall(r"!\[([^\]]*)\]\(", text(cell)):
                assert alt.strip(), f"{path.name} cell {index}: markdown image without alt text"
            continue
        if cell["cell_type"] != "code":
            continue
        n_images = sum(1 for o in cell.get("outputs", []) if "image/png" in o.get("data", {})
                       or "image/svg+xml" in o.get("data", {}))
        if n_images:
            alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt.strip()) >= 20, (
                f"{path.name} cell {index}: a plot needs alt text in metadata mystnb.image.alt (20+ characters)"
            )


def exercise_labels(path: Path) -> list[str]:
    markdown = "\n".join(text(c) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    return re.findall(r"\{exercise(?:-start)?\}[^\n]*\n:label:\s*(\S+)", markdown)


def test_every_chapter_has_at_least_three_exercises():
    for number in sorted({chapter_of(p) for p in NOTEBOOKS}):
        labels = [label for p in NOTEBOOKS if chapter_of(p) == number for label in exercise_labels(p)]
        assert len(labels) >= 3, f"chapter {number} has {len(labels)} labelled exercises; at least 3 are required"
        assert all(label.startswith(f"ex-{number}-") for label in labels), f"chapter {number}: labels {labels}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_each_with_a_solution(path):
    markdown = "\n".join(text(c) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    exercises = exercise_labels(path)
    solutions = set(re.findall(r"\{solution(?:-start)?\}\s*(\S+)", markdown))
    minimum = 2 if SECTION.fullmatch(path.name) else 3
    assert len(exercises) >= minimum, f"{path.name} has {len(exercises)} labelled exercises; {minimum} are required"
    missing = [label for label in exercises if label not in solutions]
    assert not missing, f"{path.name}: exercises without a solution: {missing}"
    assert markdown.count("{solution-start}") == markdown.count("{solution-end}")
    assert markdown.count("{exercise-start}") == markdown.count("{exercise-end}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solution_code_cells_are_tagged(path):
    inside = False
    for index, cell in enumerate(load(path)["cells"]):
        source = text(cell)
        if cell["cell_type"] == "markdown" and ("{solution-start}" in source or "{solution-end}" in source):
            # the last marker of the cell decides: a short solution may open and close in one cell
            inside = source.rfind("{solution-start}") > source.rfind("{solution-end}")
        elif cell["cell_type"] == "code" and inside:
            tags = cell.get("metadata", {}).get("tags", [])
            assert "solution" in tags, f"{path.name} cell {index}: code inside a solution needs the tag 'solution'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_one_clean_run(path):
    code = [c for c in load(path)["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name} is not one top-to-bottom run: {counts}"
    for index, cell in enumerate(code):
        assert "execution" not in cell.get("metadata", {}), f"{path.name}: timing metadata in code cell {index}"
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name}: error output stored in code cell {index}"
            assert output.get("name") != "stderr", f"{path.name}: stderr output stored in code cell {index}"
    assert not any("NBVAL_SKIP" in text(c) or "nbval-skip" in c.get("metadata", {}).get("tags", [])
                   for c in code), f"{path.name}: NBVAL_SKIP is not allowed: every cell runs in CI"


#: The share of code cells, over the whole book, whose output nbval compares exactly (booktools/nbval_policy.py).
#: The rest are run-dependent (training, timing) and their claims are asserted in the notebooks.
EXACT_SHARE = 0.70


def test_most_cells_are_compared_exactly_and_run_dependent_ones_are_claimed():
    from booktools.nbval_policy import policy_counts

    counts = policy_counts(NOTEBOOKS)
    exact = sum(c["exact"] for c in counts.values())
    total = sum(sum(c.values()) for c in counts.values())
    assert exact >= EXACT_SHARE * total, f"only {exact} of {total} code cells are compared exactly"
    for path in NOTEBOOKS:
        cells = [c for c in load(path)["cells"] if c["cell_type"] == "code"]
        training = [c for c in cells if "nbval-ignore-output" in c.get("metadata", {}).get("tags", [])
                    and "timing" not in c.get("metadata", {}).get("tags", [])]
        if training:
            assert any("check_claim(" in text(c) for c in cells), (
                f"{path.name} has run-dependent cells but asserts no claim with llmbook.evidence.check_claim")
        for cell in cells:
            assert "NBVAL_IGNORE_OUTPUT" not in text(cell), (
                f"{path.name}: mark run-dependent cells with the tag nbval-ignore-output, not a comment in the code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_shape(path):
    cells = load(path)["cells"]
    markdown = "\n".join(text(c) for c in cells if c["cell_type"] == "markdown")
    opening = "In this section you will" if SECTION.fullmatch(path.name) else "In this chapter you will"
    assert opening in markdown[:3000], f"{path.name} should open with what the reader will do ({opening!r})"
    for heading in ("Summary", "Exercises", "Further reading"):
        assert re.search(rf"^#+ .*{heading}", markdown, re.MULTILINE), f"{path.name} has no '{heading}' section"
    assert re.search(r"[\u4e00-\u9fff]", markdown), f"{path.name} gives no Chinese term for its key concepts"


def test_glossary_is_bilingual():
    glossary = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    entries = re.findall(r"^([^\s:%#`][^\n]*)\n  (\S[^\n]*)", glossary, re.MULTILINE)
    assert len(entries) >= 5
    for term, definition in entries:
        assert re.search(r"[\u4e00-\u9fff]", definition), f"glossary entry '{term}' has no Chinese term"


def test_citation_keys_exist():
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, re.MULTILINE))
    sources = [p.read_text(encoding="utf-8") for p in NOTEBOOKS + CHAPTER_PAGES + sorted((ROOT / "book").glob("*.md"))]
    for source in sources:
        for group in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", source):
            for key in group.split(","):
                assert key.strip() in keys, f"citation key {key.strip()} is not in book/references.bib"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_headings_are_not_numbered_by_hand(path):
    """Sphinx numbers chapters and sections; a hand-written "1.2" would show up twice."""
    for cell in load(path)["cells"]:
        if cell["cell_type"] == "markdown":
            for heading in re.findall(r"^#+ +(.*)$", text(cell), re.MULTILINE):
                assert not re.match(r"\d+(\.\d+)*\.?\s", heading), f"{path.name}: heading numbered by hand: {heading}"


def llmbook_imports(nb: dict) -> dict[str, tuple[str, int]]:
    """Every name a notebook imports from llmbook: name -> (module, index of the first importing cell)."""
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    found = {}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = TransformerManager().transform_cell(text(cell))  # %pip lines become Python
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "llmbook":
                for alias in node.names:
                    found.setdefault(alias.name, (node.module, i))
    return found


# Set-up helpers that every chapter calls in its first cell (linked from the setup page), and the self-check call.
NOT_LINKED = {"setup", "use_book_style", "check", "PALETTE"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_llmbook_name_a_chapter_uses_links_to_its_reference_entry(path):
    """CONTRIBUTING: every llmbook function, class or module a chapter imports is linked with a {py:...} role in its
    prose (constants, named in capitals, are data, not calls)."""
    nb = load(path)
    prose = " ".join(text(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    linked = {target.split(".")[-1] for target in re.findall(r"\{py:\w+\}`[^`<]*?<?~?llmbook\.([\w.]+)>?`", prose)}
    unlinked = sorted(name for name in llmbook_imports(nb)
                      if name not in linked and name not in NOT_LINKED and not name.isupper())
    assert not unlinked, f"link these to their reference entries at first use: {unlinked}"
