"""Tests of the notebook tools (booktools: student versions, otter export, autograde, notebook cleaning, site
check) and of the thin command-line wrappers in scripts/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from booktools import autograde, clean, otter_export, site_links, student
from llmbook.exercises import EXERCISES, Exercise

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


def md(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def code(source, tags=(), outputs=(), count=1):
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source,
            "outputs": list(outputs), "execution_count": count}


def test_student_version_removes_solutions():
    cells = [
        md("```{exercise-start} Q\n:label: ex-01-q\n```\nWhat?\n```{exercise-end}\n```"),
        md("```{solution-start} ex-01-q\n:class: dropdown\n```\nThe answer."),
        code("print(42)", tags=["solution"]),
        md("```{solution-end}\n```"),
        code("x = 1", outputs=[{"output_type": "stream", "name": "stdout", "text": "1"}]),
    ]
    out = student.student_cells(cells)
    sources = [c["source"] for c in out]
    assert "print(42)" not in sources and "The answer." not in " ".join(sources)
    assert any("ex-01-q" in s for s in sources)
    assert out[-1]["outputs"] == [] and out[-1]["execution_count"] is None


def test_student_version_rejects_unclosed_solution():
    with pytest.raises(ValueError, match="no solution-end"):
        student.student_cells([md("```{solution-start} ex-2\n```")])


def student_sources(cells):
    return "\n".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in cells)


def test_student_version_handles_solutions_sharing_cells_with_text():
    """A solution that opens and closes in one cell, and directives sharing cells with text, as the chapters do."""
    cells = [
        md("## Exercises\n\n```{exercise-start} A\n:label: ex-01-a\n```\n*Conceptual.* Why?\n"
           "```{exercise-end}\n```"),
        md("```{solution-start} ex-01-a\n:class: dropdown\n```\nBecause of SECRET-A.\n```{solution-end}\n```"),
        md("```{exercise-start} B\n:label: ex-01-b\n```\n*Coding.* Write f.\n```{exercise-end}\n```"),
        md("```{solution-start} ex-01-b\n:class: dropdown\n```\nFirst SECRET-B."),
        code("def f():\n    return 'SECRET-CODE'", tags=["solution"]),
        md("More SECRET-B.\n```{solution-end}\n```\n## Further reading\n\nKept text."),
    ]
    out = student.student_cells(cells, checks={"ex-01-b": 'check("ex-01-b", f)'})
    text = student_sources(out)
    assert "SECRET" not in text
    assert "*Conceptual.* Why?" in text and "*Coding.* Write f." in text and "Kept text." in text
    answers = [c for c in out if "answer" in c["metadata"].get("tags", [])]
    # conceptual: one markdown answer cell; coding: a markdown and a code answer cell with the check call
    assert [c["cell_type"] for c in answers] == ["markdown", "markdown", "code"]
    assert '# check("ex-01-b", f)' in answers[-1]["source"]
    # the answer cells sit right after each exercise, and the text after solution-end follows them
    order = [c["source"][:14] for c in out]
    assert order.index("## Further rea") > order.index("# Your code fo")


@pytest.mark.parametrize("cells, message", [
    ([md("```{exercise-start} A\n:label: ex-01-a\n```\nQ\n```{exercise-end}\n```"),
      md("```{solution-start} ex-01-a\n```\nA"), md("```{solution-start} ex-01-a\n```")],
     "starts inside solution"),
    ([md("```{solution-start} ex-09-z\n```\nA\n```{solution-end}\n```")], "has no exercise above it"),
    ([md("```{exercise-start} A\n:label: ex-01-a\n```\nQ\n```{exercise-end}\n```")], "has no solution"),
    ([md("```{exercise-start} A\n:label: ex-01-a\nQ without a closing fence")], "never closed"),
    ([md("```{exercise-start} A\n:label: ex-01-a\n```\nQ\n```{exercise-end}\n```"),
      md("```{solution-start} ex-01-a\n```"), code("x = 1"), md("```{solution-end}\n```")],
     "is not tagged 'solution'"),
    ([code("print('answer')", tags=["solution"])], "outside any solution"),
    ([md("```{exercise-start} A\n:label: exercise1\n```\nQ\n```{exercise-end}\n```"),
      md("```{solution-start} exercise1\n```\nA\n```{solution-end}\n```")], "ex-NN-slug"),
])
def test_student_version_reports_malformed_markup(cells, message):
    with pytest.raises(student.MarkupError, match=message):
        student.student_cells(cells, checks={})


def test_student_script_writes_nothing_for_a_malformed_notebook(tmp_path):
    good = {"cells": [code("x = 1")], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    bad = {"cells": [md("```{solution-start} ex-01-a\n```\nA")], "metadata": {}, "nbformat": 4,
           "nbformat_minor": 5}
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "01_good.ipynb").write_text(json.dumps(good))
    (tmp_path / "src" / "02_bad.ipynb").write_text(json.dumps(bad))
    assert student.main(str(tmp_path / "src"), str(tmp_path / "out")) == 1
    assert (tmp_path / "out" / "01_good.ipynb").exists() and not (tmp_path / "out" / "02_bad.ipynb").exists()


NOTEBOOKS = sorted((SCRIPTS.parent / "notebooks").glob("*.ipynb"))
SOLUTION_BLOCK = re.compile(r"[`:]{3,}\{solution-start\}.*?[`:]{3,}\{solution-end\}", re.DOTALL)


def solution_lines(nb):
    """Every substantial line of every worked solution, found independently of the script under test: the text
    between solution-start and solution-end over the whole notebook, and every code cell tagged solution."""
    joined = "\n".join(("".join(c["source"]) if isinstance(c["source"], list) else c["source"])
                        for c in nb["cells"])
    lines = set()
    for block in SOLUTION_BLOCK.findall(joined):
        lines.update(line.strip() for line in block.splitlines())
    for cell in nb["cells"]:
        if "solution" in cell.get("metadata", {}).get("tags", []):
            lines.update(line.strip() for line in "".join(cell["source"]).splitlines())
    # lines that the chapter also has outside its solutions (a solution may repeat a line of the chapter)
    public = {line.strip() for line in SOLUTION_BLOCK.sub("", joined).splitlines()}
    return {line for line in lines - public if len(line) >= 25 and "{solution-" not in line}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def test_no_solution_survives_in_a_real_student_notebook(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    secret = solution_lines(nb)
    assert secret, f"{path.name}: no worked solutions found"
    out = student.student_notebook(nb, path.name)
    kept = {line.strip() for cell in out["cells"] for line in
            ("".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]).splitlines()}
    leaked = secret & kept
    assert not leaked, f"{path.name}: solution lines survive: {sorted(leaked)[:3]}"
    # every exercise keeps its question and gets a marked answer cell; no outputs are left
    labels = re.findall(r":label: (ex-\d\d-[\w-]+)", "".join("".join(c["source"]) for c in nb["cells"]))
    answers = [c for c in out["cells"] if "answer" in c["metadata"].get("tags", [])]
    for label in labels:
        assert any(label in "".join(c["source"]) for c in answers), f"{path.name}: no answer cell for {label}"
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None
               for c in out["cells"] if c["cell_type"] == "code")
    # the code outside solutions is all still there
    code_kept = [c["source"] for c in out["cells"] if c["cell_type"] == "code" and "answer" not in
                 c["metadata"].get("tags", [])]
    code_source = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"]
                   if c["cell_type"] == "code" and "solution" not in c["metadata"].get("tags", [])]
    assert ["".join(s) if isinstance(s, list) else s for s in code_kept] == code_source


def test_clean_notebook_reports_problems(tmp_path):
    nb = {"cells": [code("1/0", count=1, outputs=[{"output_type": "error", "ename": "ZeroDivisionError"}]),
                    code("x", count=3)],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    problems = clean.clean(path)
    assert any("error" in p for p in problems) and any("expected 2" in p for p in problems)
    assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "python3"


def test_site_check_finds_broken_links_and_missing_alt(tmp_path):
    site = site_links
    (tmp_path / "index.html").write_text('<a href="page.html#here">ok</a><a href="missing.html">x</a>'
                                         '<img src="a.png"><a href="page.html#nowhere">y</a>')
    (tmp_path / "page.html").write_text('<h1 id="here">Here</h1><img src="a.png" alt="A plot of loss">')
    (tmp_path / "a.png").write_bytes(b"")
    problems = site.check(tmp_path)
    assert any("broken link missing.html" in p for p in problems)
    assert any("without alt text" in p for p in problems)
    assert any("missing anchor page.html#nowhere" in p for p in problems)
    assert len(problems) == 3


def test_student_note_links_both_notebooks_and_binder():
    sys.path.insert(0, str(ROOT / "_ext"))  # the site's local Sphinx extensions, as _config.yml loads them
    import book_site as site
    options = {"repository_url": "https://github.com/owner/book", "repository_branch": "main",
               "launch_buttons": {"binderhub_url": "https://mybinder.org"}}
    note = site.student_note("notebooks/05_inside_an_llm", options)
    assert 'href="../_sources/notebooks/05_inside_an_llm.ipynb"' in note
    assert 'href="../student/05_inside_an_llm.ipynb"' in note
    assert "https://mybinder.org/v2/gh/owner/book/main?urlpath=lab/tree/student/05_inside_an_llm.ipynb" in note
    assert "mybinder" not in site.student_note("notebooks/05_inside_an_llm", {})


def _check_f(answer, **_):
    """A check for the made-up exercise ex-01-a below."""
    return "fine"


RECORD_A = Exercise(label="ex-01-a", answer="f", check=_check_f, needs={"scale": "x"}, signature="f(y) -> y * x",
                    wrong="f = lambda y: y  # forgot x")


def test_otter_export_makes_one_question_per_checked_exercise():
    assert otter_export.question_test(RECORD_A) == (
        'from llmbook.checks import check\n\nresult = check("ex-01-a", f, scale=x, quiet=True)\n'
        "assert result.passed, result.message  # the check's hint, shown by grader.check")
    nb = {"cells": [
        code("x = 2"),
        md("```{exercise-start} A\n:label: ex-01-a\n```\n*Coding.* Write f.\n```{exercise-end}\n```"),
        md("```{solution-start} ex-01-a\n:class: dropdown\n```\nLike this:"),
        code("def f(y):\n    return y * x", tags=["solution"]),
        code("check('ex-01-a', f, scale=x)", tags=["solution"]),
        md("```{solution-end}\n```"),
        md("```{exercise-start} B\n:label: ex-01-b\n```\n*Experiment.* Try.\n```{exercise-end}\n```"),
        md("```{solution-start} ex-01-b\n```\nSECRET"), code("print('SECRET')", tags=["solution"]),
        md("```{solution-end}\n```"),
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    master, graded = otter_export.master_notebook(nb, "01_x.ipynb", records={"ex-01-a": RECORD_A})
    assert graded == ["ex-01-a"]
    sources = [c["source"] for c in master["cells"]]
    assert sources[0].startswith("# ASSIGNMENT CONFIG")
    assert "# BEGIN QUESTION\nname: ex_01_a\npoints: 1" in sources
    assert "# BEGIN SOLUTION\ndef f(y):\n    return y * x\n# END SOLUTION" in sources
    assert 'result = check("ex-01-a", f, scale=x, quiet=True)' in sources[sources.index("# BEGIN TESTS") + 1]
    assert any("`check(\"ex-01-a\", f, scale=x)` must pass" in s for s in sources)
    assert not any("SECRET" in s for s in sources)  # ungraded solutions are removed as for students
    assert all("id" in c for c in master["cells"])
    # the answer cell is marked in its metadata: the first solution cell of the question, and only that one
    marked = [c for c in master["cells"] if otter_export.ANSWER_KEY in c["metadata"]]
    assert [c["metadata"][otter_export.ANSWER_KEY] for c in marked] == [{"graded_answer": "ex-01-a"}]
    assert master["cells"][otter_export.answer_cell(master, "ex-01-a")]["source"].startswith("# BEGIN SOLUTION\ndef f")
    with pytest.raises(ValueError, match="no cell marked as the answer to ex-01-b"):
        otter_export.answer_cell(master, "ex-01-b")


def test_hub_smoke_follows_the_launch_button_link_format():
    from scripts import hub_smoke as hub  # a script, imported from the repository root

    link = hub.launch_link("http://127.0.0.1:8000", "/tmp/course/book", "main", "book", "notebooks/02_history.ipynb")
    assert link.startswith("http://127.0.0.1:8000/hub/user-redirect/git-pull?")
    assert "repo=%2Ftmp%2Fcourse%2Fbook" in link and "branch=main" in link
    assert "urlpath=lab%2Ftree%2Fbook%2Fnotebooks%2F02_history.ipynb" in link


def _assigned_names(source: str) -> set[str]:
    """Names a cell binds at its top level: functions, classes, assignments and imports."""
    import ast

    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_every_checked_exercise_is_graded_and_its_solution_defines_the_answer():
    """Each exercise record becomes an otter question whose worked solution binds the name that the test passes
    to the check (the record's wrong answer rebinds it: the record refuses one that does not)."""
    notebooks = ROOT / "notebooks"
    stems = otter_export.graded_chapters()
    graded = {}
    for stem in stems:
        nb = json.loads((notebooks / f"{stem}.ipynb").read_text(encoding="utf-8"))
        for exercise in student.exercises(nb, stem):
            if exercise.label in EXERCISES and exercise.code:
                graded[exercise.label] = "\n".join(
                    c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in exercise.code)
    assert sorted(graded) == sorted(EXERCISES), "an exercise record has no worked solution code in its notebook"
    # every chapter has a graded exercise (a chapter split into section notebooks, in one of its sections)
    assert {stem[:2] for stem in stems} == {path.name[:2] for path in notebooks.glob("*.ipynb")}
    for label, solution in graded.items():
        record = EXERCISES[label]
        assert record.answer in _assigned_names(solution), f"{label}: the worked solution does not define " \
                                                           f"{record.answer}"
        assert all(name in _assigned_names(solution) or name in _chapter_names(label) for name in
                   record.needs.values()), f"{label}: the check needs a name the chapter does not define"


def _chapter_names(label: str) -> set[str]:
    """Every name the code cells of the exercise's notebooks bind."""
    names = set()
    for path in sorted((ROOT / "notebooks").glob(f"{label[3:5]}*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                try:
                    names |= _assigned_names(source)
                except SyntaxError:  # a cell with IPython magics
                    continue
    return names


def test_answer_name_finder_rejects_a_solution_that_only_prints():
    """The test above can fail: a solution that computes in a loop without binding the answer is caught."""
    solution = "for offset in (True, False):\n    print(fit_power_law(n, loss, fit_offset=offset))"
    assert "predict_largest" not in _assigned_names(solution)
    assert {"f", "x", "np"} <= _assigned_names("import numpy as np\nx = 1\ndef f():\n    pass")


def test_autograde_judge_expects_full_zero_and_one_lost_point(tmp_path):
    chapter = {"stem": "02_x", "graded": ["ex-02-a", "ex-02-b"], "wrong_label": "ex-02-a"}
    assert autograde.judge(chapter, "worked solutions", 2.0, 2.0, {}) == ""
    assert "expected 2/2" in autograde.judge(chapter, "worked solutions", 1.0, 2.0, {})
    assert autograde.judge(chapter, "student notebook", 0.0, 2.0, {}) == ""
    assert autograde.judge(chapter, "one wrong answer", 1.0, 2.0, {"ex_02_a": 0.0, "ex_02_b": 1.0}) == ""
    # one point lost, but on the other question: the wrong answer was not the one graded wrong
    assert autograde.judge(chapter, "one wrong answer", 1.0, 2.0, {"ex_02_a": 1.0, "ex_02_b": 0.0})
    # the wrong answer must be caught by its check, not by a crash
    hint = {"ex_02_a": "AssertionError: you return the measured loss"}
    assert autograde.judge(chapter, "one wrong answer", 1.0, 2.0, {"ex_02_a": 0.0, "ex_02_b": 1.0}, hint) == ""
    crash = {"ex_02_a": "NameError: name 'f' is not defined"}
    assert "without the check's verdict" in autograde.judge(chapter, "one wrong answer", 1.0, 2.0,
                                                            {"ex_02_a": 0.0, "ex_02_b": 1.0}, crash)


def test_autograde_makes_the_answer_wrong_in_the_marked_cell_whatever_the_prose(tmp_path):
    """The wrong answer goes into the cell the export marked, found by its metadata: prose that names the
    exercise elsewhere (even the old prompt) does not move it."""
    marker = {otter_export.ANSWER_KEY: {"graded_answer": "ex-01-a"}}
    nb = {"cells": [md("**Your answer to exercise ex-01-a**, graded"), code("f = 1"),
                    {**code("def f(y):\n    return y"), "metadata": marker}, code("print(f(2))")],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "s.ipynb").write_text(json.dumps(nb))
    autograde.make_wrong(tmp_path / "s.ipynb", RECORD_A, tmp_path / "w.ipynb")
    cells = json.loads((tmp_path / "w.ipynb").read_text())["cells"]
    assert cells[2]["source"] == "def f(y):\n    return y\n" + RECORD_A.wrong + "\n"
    assert [c["source"] for i, c in enumerate(cells) if i != 2] == [c["source"] for i, c in enumerate(nb["cells"])
                                                                    if i != 2]  # no other cell changes
    with pytest.raises(ValueError, match="no solution cell for ex-09-other"):
        autograde.make_wrong(tmp_path / "s.ipynb", Exercise(label="ex-09-other", answer="g", check=_check_f,
                                                            wrong="g = 0"), tmp_path / "w2.ipynb")


@pytest.mark.parametrize("script, args, expected", [
    ("make_student_version.py", [], "usage: make_student_version.py NOTEBOOK_DIR OUTPUT_DIR"),
    ("export_otter.py", [], "usage: export_otter.py CHAPTER.ipynb MASTER.ipynb"),
    ("check_site.py", ["/nonexistent"], "has no index.html: build the site first"),
    ("site_check.py", ["/nonexistent"], "has no index.html: build the site first"),
    ("check_student_versions.py", ["--help"], "usage: check_student_versions.py"),
    ("autograde_check.py", ["--help"], "--assign-only"),
])
def test_the_scripts_are_thin_wrappers_that_find_booktools(script, args, expected):
    """Each script runs as the Makefile runs it (python scripts/X.py, the repository root not on the path) and
    reaches its booktools module."""
    run = subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True,
                         cwd="/", timeout=120)
    assert expected in run.stdout + run.stderr, run.stdout + run.stderr


def test_clean_notebook_script_cleans(tmp_path):
    nb = {"cells": [code("x = 1", count=1)], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    run = subprocess.run([sys.executable, str(SCRIPTS / "clean_notebook.py"), str(path)], capture_output=True,
                         text=True, cwd="/", timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "python3"


def test_autograde_grades_every_kind_only_for_the_full_chapters():
    assert autograde.kinds_for("02_history") == autograde.KINDS
    assert autograde.kinds_for("10_rlhf") == ("one wrong answer",)
    assert autograde.kinds_for("10_rlhf", every_kind=True) == autograde.KINDS
    assert set(autograde.FULL) <= set(otter_export.graded_chapters())  # a full chapter that is not graded is a typo
