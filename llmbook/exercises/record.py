"""The record of one coding exercise, and what every check shares.

An :class:`~llmbook.exercises.Exercise` says everything the tools need to know about a coding exercise: its label,
the name the student binds, the check, what the check needs from the notebook, how the answer looks (the comment of
the student's answer cell) and one plausible wrong answer (the autograder's test). Each chapter declares its records
in its own module (:mod:`llmbook.exercises.ch05`, ...), beside its checks.

A check is a function ``check_x(answer, **context) -> str``: it returns a short message when the answer passes and
raises :class:`~llmbook.exercises.Wrong` with a hint for the student otherwise (:func:`llmbook.checks.check` turns
both into a :class:`~llmbook.checks.CheckResult`). :func:`call_answer` and :func:`need_callable` are the helpers
the checks share. ``Exercise`` and ``Wrong`` are documented with the package, :mod:`llmbook.exercises`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["Exercise", "Wrong", "call_answer", "need_callable"]

_LABEL = re.compile(r"^ex-\d\d-[a-z0-9-]+$")  # ex- + the chapter's two digits + a slug


class Wrong(Exception):
    """Raised inside a check with the message for the student (what is wrong, and a hint)."""


def call_answer(function: Callable, *args, **kwargs):
    """Call the student's function, turning an exception into a :class:`~llmbook.exercises.Wrong` that says how
    it failed."""
    try:
        return function(*args, **kwargs)
    except Exception as error:  # the student's code failed: say how, without a traceback
        raise Wrong(f"calling your function raised {type(error).__name__}: {error}") from None


def need_callable(answer, what: str) -> None:
    """Raise :class:`~llmbook.exercises.Wrong` unless ``answer`` is callable; ``what`` describes the function
    expected."""
    if not callable(answer):
        raise Wrong(f"expected {what}, a function; got {type(answer).__name__}")


def _bound_names(source: str) -> set[str]:
    """Names that code binds at its top level: functions, classes and assignment targets."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


@dataclass(frozen=True, repr=False)
class Exercise:
    """One coding exercise with a self-check, declared once.

    - ``label``: the exercise's label in its notebook, ``ex-NN-slug``.
    - ``answer``: the name the student binds (a function, or a number for a calculation), which the check receives.
    - ``check``: the check function, ``check(answer, **context) -> str`` (raises :class:`~llmbook.exercises.Wrong`).
    - ``needs``: what else the check needs from the notebook, keyword -> notebook variable name
      (e.g. ``{"vectors": "vectors"}``), in the order the call passes them.
    - ``signature``: a short description of the answer's form, the comment after the call in the student's answer
      cell (e.g. ``"f(queries, keys, values) -> (outputs, weights)"``); empty for no comment.
    - ``wrong``: the code of one plausible wrong answer, run after the worked solution in the chapter's namespace;
      it rebinds ``answer`` (the autograder's test that the check catches it).

    Raises ValueError for a malformed record (a label not of the form ``ex-NN-slug``, names that are not Python
    identifiers, a wrong answer that does not parse or does not rebind ``answer``).
    """

    label: str
    answer: str
    check: Callable[..., str]
    needs: Mapping[str, str] = field(default_factory=dict, hash=False)
    signature: str = ""
    wrong: str = ""

    def __post_init__(self):
        if not isinstance(self.label, str) or not _LABEL.match(self.label):
            raise ValueError(f"label must be of the form ex-NN-slug, got {self.label!r}")
        if not isinstance(self.answer, str) or not self.answer.isidentifier():
            raise ValueError(f"{self.label}: answer must be the name the student binds, got {self.answer!r}")
        if not callable(self.check):
            raise ValueError(f"{self.label}: check must be a function, got {type(self.check).__name__}")
        needs = dict(self.needs)
        for keyword, variable in needs.items():
            if not (isinstance(keyword, str) and keyword.isidentifier() and isinstance(variable, str)
                    and variable.isidentifier()):
                raise ValueError(f"{self.label}: needs maps a keyword to a notebook variable name, got "
                                 f"{keyword!r}: {variable!r}")
        object.__setattr__(self, "needs", MappingProxyType(needs))
        if not isinstance(self.signature, str) or "\n" in self.signature:
            raise ValueError(f"{self.label}: signature must be one line of text, got {self.signature!r}")
        try:
            bound = _bound_names(self.wrong) if isinstance(self.wrong, str) else set()
        except SyntaxError as error:
            raise ValueError(f"{self.label}: the wrong answer does not parse: {error}") from None
        if self.answer not in bound:
            raise ValueError(f"{self.label}: the wrong answer must rebind {self.answer!r}, got {self.wrong!r}")

    def __repr__(self) -> str:
        return f"Exercise({self.label!r}, answer={self.answer!r})"

    @property
    def chapter(self) -> int:
        """The chapter's number, from the label (``ex-05-...`` -> 5)."""
        return int(self.label[3:5])

    def call(self, comment: bool = False, **options) -> str:
        """The check call a student writes, ``check("ex-NN-slug", answer)``, with the notebook variables of
        ``needs`` passed by keyword. ``options`` are appended as keyword arguments (e.g. ``quiet=True``);
        ``comment=True`` adds the signature as a comment, as the student's answer cell shows it."""
        arguments = [f'"{self.label}"', self.answer, *(f"{key}={name}" for key, name in self.needs.items()),
                     *(f"{key}={value!r}" for key, value in options.items())]
        call = f"check({', '.join(arguments)})"
        return f"{call}  # {self.signature}" if comment and self.signature else call
