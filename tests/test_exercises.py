"""The exercise records (llmbook.exercises): well formed, each declared in one place, and each worked solution,
taken from its notebook, passes its check there.

A chapter's worked solution ends with the self-check call a student writes (``check(label, answer)``); nbval re-runs
it in CI, and the stored output says ``<label>: pass. ...``. The tests below find that call in the solution cells of
the record's notebook and require the stored verdict, instead of a copy of the solution in a test.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import json
import os
import re
from pathlib import Path

import pytest
from sphinx.pycode import ModuleAnalyzer

from booktools import student
from llmbook.exercises import CHAPTERS, EXERCISES, Exercise

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SKIPPED_DIRS = {"tests", "_build", "locales", "node_modules", "__pycache__"}


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _text_output(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _notebook_of(label: str) -> Path:
    pattern = re.compile(rf"^:label: {re.escape(label)}\s*$", re.MULTILINE)
    found = [path for path in NOTEBOOKS if any(pattern.search(_source(cell)) for cell in
                                               json.loads(path.read_text(encoding="utf-8"))["cells"])]
    assert len(found) == 1, f"{label}: expected one notebook with this exercise, found {[p.name for p in found]}"
    return found[0]


def _check_calls(source: str, label: str) -> list[ast.Call]:
    """The calls ``check("<label>", ...)`` in a cell's code."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "check" and node.args and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == label]


def solution_problems(nb: dict, name: str, record: Exercise) -> list[str]:
    """What is wrong with the worked solution of ``record`` in a notebook: its solution cells must call the check as
    the record says a student does, and the stored output of that cell must say that it passed."""
    exercise = next((e for e in student.exercises(nb, name) if e.label == record.label), None)
    if exercise is None:
        return [f"{name}: no exercise {record.label}"]
    cells = [(cell, call) for cell in exercise.code for call in _check_calls(_source(cell), record.label)]
    if not cells:
        return [f"{name}: the solution of {record.label} does not call check({record.label!r}, ...)"]
    problems = []
    for cell, call in cells:
        answer = ast.unparse(call.args[1]) if len(call.args) > 1 else None
        keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
        if answer != record.answer or keywords != dict(record.needs):
            problems.append(f"{name}: the solution calls {ast.unparse(call)}, not {record.call()}")
        verdicts = re.findall(rf"^{re.escape(record.label)}: (pass|not yet)\.", _text_output(cell), re.MULTILINE)
        if verdicts != ["pass"]:
            problems.append(f"{name}: the stored output of {record.label}'s check says {verdicts or 'nothing'}, "
                            "not pass (re-run the notebook)")
    return problems


@pytest.mark.parametrize("label", list(EXERCISES))
def test_the_worked_solution_passes_its_check_in_its_notebook(label):
    path = _notebook_of(label)
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert solution_problems(nb, path.name, EXERCISES[label]) == []


def test_a_doctored_notebook_fails_the_worked_solution_test():
    """The test above can fail: a verdict that is not pass, a missing call and a call of another answer are each
    caught (on copies of chapter 10's notebook)."""
    record = EXERCISES["ex-10-clip"]
    nb = json.loads(_notebook_of(record.label).read_text(encoding="utf-8"))
    assert solution_problems(nb, "10", record) == []

    def doctored(change):
        copy_ = copy.deepcopy(nb)
        cell = next(c for c in copy_["cells"] if "solution" in c["metadata"].get("tags", [])
                    and _check_calls(_source(c), record.label))
        change(cell)
        return solution_problems(copy_, "10", record)

    def not_yet(cell):
        for output in cell["outputs"]:
            output["text"] = [line.replace(": pass.", ": not yet.") for line in output["text"]]

    assert "says ['not yet'], not pass" in " ".join(doctored(not_yet))
    assert "says nothing" in " ".join(doctored(lambda cell: cell.update(outputs=[])))
    assert "does not call check" in " ".join(doctored(lambda cell: cell.update(source="print(1)")))
    other = doctored(lambda cell: cell.update(source=_source(cell).replace(f", {record.answer})", ", other)")))
    assert "not check(" in " ".join(other)


# ------------------------------------------------------------------------------------------ one place per exercise

def python_files_naming(label: str, root: Path = ROOT) -> list[str]:
    """The Python files under ``root``, outside tests/, hidden folders and build output, whose text holds ``label``."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        for file in sorted(files):
            if file.endswith(".py"):
                path = Path(folder) / file
                if label in path.read_text(encoding="utf-8", errors="replace"):
                    found.append(path.relative_to(root).as_posix())
    return found


def _coding_labels() -> set[str]:
    labels = set()
    for path in NOTEBOOKS:
        found = student.exercises(json.loads(path.read_text(encoding="utf-8")), path.name)
        labels |= {exercise.label for exercise in found if exercise.kind == "coding"}
    return labels


def test_each_coding_exercise_is_named_in_one_python_file_its_chapters_module():
    labels = sorted(_coding_labels() | set(EXERCISES))
    assert len(labels) >= 12
    where = {label: python_files_naming(label) for label in labels}
    wrong = {label: files for label, files in where.items()
             if files != [f"llmbook/exercises/ch{label[3:5]}.py"]}
    assert not wrong, f"each exercise's label belongs in its chapter's module only: {wrong}"


def test_the_label_count_sees_a_second_file(tmp_path):
    """The test above can fail: a label named in a second Python file (or only in a test) is counted right."""
    (tmp_path / "llmbook").mkdir()
    (tmp_path / "llmbook" / "ch05.py").write_text('LABEL = "ex-05-demo"\n')
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "grade.py").write_text('WRONG = {"ex-05-demo": "x = 0"}\n')
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text('"ex-05-demo"\n')
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "site.py").write_text('"ex-05-demo"\n')
    assert python_files_naming("ex-05-demo", tmp_path) == ["llmbook/ch05.py", "scripts/grade.py"]


def test_scripts_hold_no_exercise_specific_data():
    for path in sorted((ROOT / "scripts").glob("*.py")):
        labels = re.findall(r"ex-\d\d-[a-z0-9-]+", path.read_text(encoding="utf-8"))
        assert not labels, f"{path.name} names exercises {labels}: they belong in llmbook/exercises"


# ------------------------------------------------------------------------------------------ the records themselves

def test_each_chapter_module_declares_its_own_chapters_records_in_order():
    assert [module.__name__.rsplit(".", 1)[-1] for module in CHAPTERS] == [f"ch{n:02d}" for n in range(1, 12)]
    for number, module in enumerate(CHAPTERS, start=1):
        assert module.RECORDS, f"{module.__name__} declares no exercise"
        assert all(record.chapter == number for record in module.RECORDS), module.__name__
        assert all(record.check.__module__ == module.__name__ for record in module.RECORDS), \
            f"{module.__name__}: a record's check lives in another module"
    assert list(EXERCISES) == [r.label for module in CHAPTERS for r in module.RECORDS]


@pytest.mark.parametrize("module", CHAPTERS + (importlib.import_module("llmbook.exercises.record"),),
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_exercise_module_has_all_and_documents_its_public_names(module):
    assert module.__doc__ and module.__doc__.strip()
    assert all(hasattr(module, name) for name in module.__all__)
    documented = ModuleAnalyzer.for_module(module.__name__).find_attr_docs()
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert (obj.__doc__ or "").strip(), f"{module.__name__}.{name} has no docstring"
        else:
            assert ("", name) in documented, f"{module.__name__}.{name} has no #: comment"


def _check(answer, **_):
    """A check that passes anything."""
    return "fine"


def test_the_call_and_its_comment_are_built_from_the_record():
    record = Exercise(label="ex-03-demo", answer="f", check=_check, needs={"table": "bigram_table", "k": "k"},
                      signature="f(x) -> y", wrong="f = None")
    assert record.call() == 'check("ex-03-demo", f, table=bigram_table, k=k)'
    assert record.call(comment=True) == 'check("ex-03-demo", f, table=bigram_table, k=k)  # f(x) -> y'
    assert record.call(quiet=True) == 'check("ex-03-demo", f, table=bigram_table, k=k, quiet=True)'
    assert Exercise(label="ex-03-demo", answer="f", check=_check, wrong="f = 1").call(comment=True) == \
        'check("ex-03-demo", f)'  # no signature, no comment
    assert record.chapter == 3 and repr(record) == "Exercise('ex-03-demo', answer='f')"
    with pytest.raises(TypeError, match="does not support item assignment"):
        record.needs["k"] = "other"  # a record is read-only


@pytest.mark.parametrize("fields, message", [
    (dict(label="exercise-5"), "ex-NN-slug"),
    (dict(answer="not a name"), "the name the student binds"),
    (dict(check="check_rope"), "check must be a function"),
    (dict(needs={"table": "bigram table"}), "notebook variable name"),
    (dict(signature="two\nlines"), "one line"),
    (dict(wrong="f = (1"), "does not parse"),
    (dict(wrong="g = lambda x: x"), "must rebind 'f'"),
    (dict(wrong=""), "must rebind 'f'"),
])
def test_a_malformed_record_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        Exercise(**{**dict(label="ex-03-demo", answer="f", check=_check, wrong="f = None"), **fields})

