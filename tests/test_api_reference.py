"""The llmbook reference (book/api) covers the whole public API, and every public name is documented."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from sphinx.pycode import ModuleAnalyzer

import llmbook

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(info.name for info in pkgutil.iter_modules(llmbook.__path__) if not info.name.startswith("_"))


def test_the_package_has_modules():
    assert {"utils", "transformer", "training"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_defines_all_with_existing_names(name):
    module = importlib.import_module(f"llmbook.{name}")
    assert module.__doc__ and module.__doc__.strip(), f"llmbook.{name} has no module docstring"
    assert hasattr(module, "__all__"), f"llmbook.{name} must define __all__ (its public names)"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"llmbook.{name}.__all__ names what the module does not define: {missing}"
    assert not [n for n in module.__all__ if n.startswith("_")], "private names do not belong in __all__"


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_has_a_docstring(name):
    module = importlib.import_module(f"llmbook.{name}")
    attribute_docs = ModuleAnalyzer.for_module(module.__name__).find_attr_docs()
    undocumented = []
    for public in getattr(module, "__all__", []):
        obj = getattr(module, public)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
            if not (doc and doc.strip()):
                undocumented.append(public)
        elif ("", public) not in attribute_docs:  # a constant: needs a docstring or #: comment in the source
            undocumented.append(public)
    assert not undocumented, f"llmbook.{name}: public names without a docstring: {undocumented}"


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_a_reference_page_in_the_table_of_contents(name):
    page = ROOT / "book" / "api" / f"{name}.md"
    assert page.exists(), f"book/api/{name}.md is missing: add a page for llmbook.{name}"
    assert f".. automodule:: llmbook.{name}" in page.read_text(encoding="utf-8")
    assert f"file: book/api/{name}\n" in (ROOT / "_toc.yml").read_text(encoding="utf-8")
