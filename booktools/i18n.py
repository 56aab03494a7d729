"""The Chinese edition (中文版): gettext catalogues beside the English sources, and the tools that keep them honest.

The English notebooks and pages are the only source. Sphinx's gettext builder extracts every paragraph, heading,
list item and caption as a message (MyST source text, roles and maths included); the translations live in
``locales/zh_CN/LC_MESSAGES/<docname>.po``, one catalogue per page, as the field's tools expect. A second Sphinx
build with ``language = zh_CN`` reads them (``make book-zh``). Alt text of the figures in notebook outputs is not
a Sphinx message, so it is added to the same catalogues under the context ``alt text`` and put in place by
``_ext/book_i18n.py``.

A translation must never be silently stale. Catalogues are keyed by the English text itself, so a changed English
paragraph no longer matches its old translation: ``update`` turns the old entry into a *fuzzy* one (the old English
kept beside it for the translator), and ``check`` fails on any fuzzy or obsolete entry and on any catalogue that is
not in step with the current English. It also fails when less than ``THRESHOLD`` of the prose (by English words)
is translated.

    python -m booktools.i18n extract    # English messages -> _build/gettext/*.pot (a Sphinx build, ~30 s)
    python -m booktools.i18n update     # merge them into locales/zh_CN (new: empty; changed: fuzzy)
    python -m booktools.i18n check      # the share translated, and no fuzzy, obsolete or missing entry
    python -m booktools.i18n todo notebooks/10_rlhf todo.json    # what is left to translate, as JSON
    python -m booktools.i18n apply notebooks/10_rlhf done.json   # put translations in (markup checked)
    python -m booktools.i18n build      # the Chinese site into _build/html/zh (make book-zh)

The generated reference pages (``book/api``) stay English in both editions: they are the package's docstrings.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = "zh_CN"
LOCALES = ROOT / "locales"
POT_DIR = ROOT / "_build" / "gettext"
ZH_OUT = ROOT / "_build" / "html" / "zh"
#: At least this share of the English prose (counted in words) must be translated.
THRESHOLD = 0.95
#: Pages that are not translated: the reference generated from the package's docstrings.
UNTRANSLATED = ("book/api/",)
ALT_CONTEXT = "alt text"
#: Exercise titles are arguments of sphinx-exercise's directive, which Sphinx does not extract either; the Chinese
#: build puts their translations into the notebook source as it reads it (``_ext/book_i18n.py``).
TITLE_CONTEXT = "exercise title"
CONTEXTS = (ALT_CONTEXT, TITLE_CONTEXT)
EXERCISE_TITLE = re.compile(r"^([`:]{3,}\{exercise(?:-start)?\}[ \t]+)(\S.*?)[ \t]*$", re.MULTILINE)
ZH_TITLE = "大模型与大语言模型：交互式教科书"


def catalogue_dir(language: str = LANGUAGE) -> Path:
    return LOCALES / language / "LC_MESSAGES"


def translated_doc(docname: str) -> bool:
    """True for every page the Chinese edition translates (all but the generated reference)."""
    return not docname.startswith(UNTRANSLATED)


# ---------------------------------------------------------------------------------------------- alt text


def exercise_titles(notebook: Path) -> list[str]:
    """The title of every exercise in a notebook's markdown cells (the argument of ``{exercise-start}``)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    titles = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            titles += [match.group(2) for match in EXERCISE_TITLE.finditer(source)]
    return titles


def translate_exercise_titles(source: str, table: dict[str, str]) -> str:
    """Markdown with every exercise title found in ``table`` (English -> Chinese) replaced."""
    return EXERCISE_TITLE.sub(lambda m: m.group(1) + table.get(m.group(2), m.group(2)), source)


def alt_texts(notebook: Path) -> list[str]:
    """The alt text of every figure a notebook's code cells produce (cell metadata ``mystnb.image.alt``)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    texts = []
    for cell in nb.get("cells", []):
        alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")
        if cell.get("cell_type") == "code" and isinstance(alt, str) and alt.strip():
            texts.append(alt.strip())
    return texts


# ---------------------------------------------------------------------------------------------- catalogues


def _babel():
    from babel.messages import pofile
    from babel.messages.catalog import Catalog

    return pofile, Catalog


def read_catalogue(path: Path):
    pofile, _ = _babel()
    with path.open("rb") as handle:
        return pofile.read_po(handle)


def write_catalogue(catalogue, path: Path) -> None:
    pofile, _ = _babel()
    path.parent.mkdir(parents=True, exist_ok=True)
    for message in catalogue:  # babel guesses flags such as python-brace-format from {term}: keep only fuzzy
        message.flags = {flag for flag in message.flags if flag == "fuzzy"}
    with path.open("wb") as handle:
        pofile.write_po(handle, catalogue, width=0, sort_output=False, include_previous=True, omit_header=False,
                        ignore_obsolete=False, no_location=True)


GENERATED_BLOCK = re.compile(r"^% BEGIN generated: .*?$(.*?)^% END generated: ", re.MULTILINE | re.DOTALL)


def _flat(text: str) -> str:
    return " ".join(text.split())


def generated_units(docname: str, root: Path = ROOT) -> set[str]:
    """The paragraphs and table cells of a page's generated blocks (``booktools.performance``: measured timings,
    rewritten at every measurement), whitespace flattened. Their messages are not translated: the Chinese build
    renders its own block from the same results (``booktools.performance.chinese_block``)."""
    page = root / f"{docname}.md"
    if not page.exists():
        return set()
    units = set()
    for block in GENERATED_BLOCK.findall(page.read_text(encoding="utf-8")):
        for paragraph in re.split(r"\n\s*\n", block):
            if paragraph.lstrip().startswith("|"):
                units |= {_flat(cell) for line in paragraph.splitlines() for cell in line.strip().strip("|").split("|")}
            else:
                units.add(_flat(paragraph))
    return units - {""}


def template_for(docname: str, pot_dir: Path = POT_DIR, root: Path = ROOT):
    """The English messages of one page: Sphinx's ``.pot`` plus the alt text of a notebook's figures, less the
    messages of the page's generated blocks (:func:`generated_units`)."""
    pofile, Catalog = _babel()
    pot = pot_dir / f"{docname}.pot"
    if pot.exists():
        with pot.open("rb") as handle:
            template = pofile.read_po(handle)
    else:
        template = Catalog()
    generated = generated_units(docname, root)
    if generated:
        for message in [m for m in template if m.id and _flat(m.id) in generated]:
            template.delete(message.id, message.context)
    notebook = root / f"{docname}.ipynb"
    if notebook.exists():
        for alt in alt_texts(notebook):
            template.add(alt, context=ALT_CONTEXT, locations=[(f"{docname}.ipynb", 0)])
        for title in exercise_titles(notebook):
            template.add(title, context=TITLE_CONTEXT, locations=[(f"{docname}.ipynb", 0)])
    return template


def docnames(pot_dir: Path = POT_DIR) -> list[str]:
    """Every translated page that Sphinx's gettext build extracted, as a docname (``notebooks/10_rlhf``)."""
    names = sorted(str(p.relative_to(pot_dir).with_suffix("")) for p in pot_dir.rglob("*.pot"))
    return [name for name in names if translated_doc(name) and name != "sphinx"]


def _new_catalogue():
    _, Catalog = _babel()
    from babel import Locale

    return Catalog(locale=Locale.parse(LANGUAGE), project="Large Models and LLMs", charset="utf-8")


def update(pot_dir: Path = POT_DIR, locales: Path = LOCALES, root: Path = ROOT) -> dict[str, dict[str, int]]:
    """Merge the current English messages into every catalogue; return per page how many are new and fuzzy.

    A message whose English is unchanged keeps its translation. A changed message is matched to its most similar
    old one and marked fuzzy, with the old English kept as ``#| msgid`` for the translator; it is not used by the
    build until a translator removes the fuzzy flag. Messages whose English is gone are dropped. Catalogues of pages
    that no longer exist are deleted.
    """
    from babel import Locale

    out = locales / LANGUAGE / "LC_MESSAGES"
    report = {}
    names = docnames(pot_dir)
    for name in names:
        template = template_for(name, pot_dir, root)
        path = out / f"{name}.po"
        catalogue = read_catalogue(path) if path.exists() else _new_catalogue()
        catalogue.locale = Locale.parse(LANGUAGE)
        before = {(m.id, m.context) for m in catalogue if m.id}
        catalogue.update(template, no_fuzzy_matching=False, update_header_comment=False, update_creation_date=False)
        catalogue.obsolete.clear()
        catalogue.fuzzy = False  # the header is ours, not a translation to review
        new = sum(1 for m in catalogue if m.id and (m.id, m.context) not in before)
        report[name] = {"messages": sum(1 for m in catalogue if m.id), "new": new,
                        "fuzzy": sum(1 for m in catalogue if m.id and m.fuzzy)}
        write_catalogue(catalogue, path)
    for stale in out.rglob("*.po"):
        if str(stale.relative_to(out).with_suffix("")) not in names:
            stale.unlink()
    return report


# ---------------------------------------------------------------------------------------------- the check


def words(text: str) -> int:
    """English words of a message, not counting roles' targets, maths or markup."""
    text = re.sub(r"\{[a-z:]+\}`[^`]*`", " term ", text)  # a role counts as one word
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", " ", text, flags=re.DOTALL)  # maths is not prose
    return len(re.findall(r"[A-Za-z][A-Za-z'’-]*", text))


@dataclass
class Status:
    """The state of one catalogue against the current English."""

    docname: str
    words: int = 0
    translated_words: int = 0
    fuzzy: int = 0
    obsolete: int = 0
    missing: int = 0
    stale: int = 0
    broken: int = 0

    @property
    def problems(self) -> list[str]:
        found = []
        if self.fuzzy:
            found.append(f"{self.fuzzy} fuzzy (English changed; translation to review)")
        if self.obsolete:
            found.append(f"{self.obsolete} obsolete")
        if self.missing:
            found.append(f"{self.missing} English messages not in the catalogue (run: make translations)")
        if self.stale:
            found.append(f"{self.stale} translations of English that no longer exists (run: make translations)")
        if self.broken:
            found.append(f"{self.broken} translations that break a role, maths or code")
        return found


def status(pot_dir: Path = POT_DIR, locales: Path = LOCALES, root: Path = ROOT) -> list[Status]:
    """Compare every catalogue with the current English messages, page by page."""
    out = locales / LANGUAGE / "LC_MESSAGES"
    result = []
    for name in docnames(pot_dir):
        template = template_for(name, pot_dir, root)
        english = {(m.id, m.context) for m in template if m.id}
        path = out / f"{name}.po"
        catalogue = read_catalogue(path) if path.exists() else _new_catalogue()
        s = Status(name)
        entries = {(m.id, m.context): m for m in catalogue if m.id}
        s.obsolete = len(catalogue.obsolete)
        s.missing = len(english - set(entries))
        s.stale = sum(1 for key, m in entries.items() if key not in english and m.string)
        for key in english:
            n = words(key[0])
            s.words += n
            message = entries.get(key)
            if message is not None and message.fuzzy:
                s.fuzzy += 1
            elif message is not None and message.string:
                s.translated_words += n
                s.broken += bool(markup_problems(key[0], message.string))
        result.append(s)
    return result


def check(pot_dir: Path = POT_DIR, locales: Path = LOCALES, threshold: float = THRESHOLD,
          root: Path = ROOT) -> tuple[bool, str]:
    """(passed, report): the share of prose translated, and every stale, fuzzy or missing entry, by page."""
    statuses = status(pot_dir, locales, root)
    total = sum(s.words for s in statuses)
    done = sum(s.translated_words for s in statuses)
    share = done / total if total else 0.0
    lines = []
    for s in statuses:
        mark = f"{s.translated_words / s.words:5.0%}" if s.words else "  n/a"
        problems = "; ".join(s.problems)
        lines.append(f"  {s.docname:50s} {mark} of {s.words:6d} words" + (f"  PROBLEM: {problems}" if problems else ""))
    ok = share >= threshold and not any(s.problems for s in statuses)
    lines.append(f"Chinese edition: {share:.1%} of the prose translated ({done:,} of {total:,} English words; "
                 f"threshold {threshold:.0%}); {sum(bool(s.problems) for s in statuses)} pages with problems")
    return ok, "\n".join(lines)


# ---------------------------------------------------------------------------------------------- translating

ROLE = re.compile(r"\{([a-z:]+)\}`([^`]*)`")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.DOTALL)
CODE = re.compile(r"(?<!`)`[^`{}]+`(?!`)")


def _role_targets(text: str) -> list[str]:
    """The roles of a message as ``role:target``: what a translation must keep (its visible text may change)."""
    found = []
    for role, content in ROLE.findall(text):
        target = re.search(r"<([^<>]+)>\s*$", content)
        kept = target.group(1) if target and role not in ("cite", "cite:t", "cite:p") else content
        found.append(f"{role}:{kept.strip()}")
    return sorted(found)


def markup_problems(english: str, chinese: str) -> list[str]:
    """What a translation broke: a role or its target, inline maths or inline code that must stay as it is."""
    problems = []
    if _role_targets(english) != _role_targets(chinese):
        problems.append(f"roles differ: {_role_targets(english)} vs {_role_targets(chinese)}")
    if sorted(MATH.findall(english)) != sorted(MATH.findall(chinese)):
        problems.append("inline maths differs")
    if sorted(CODE.findall(ROLE.sub("", english))) != sorted(CODE.findall(ROLE.sub("", chinese))):
        problems.append("inline code differs")
    return problems


def todo(docname: str, locales: Path = LOCALES) -> dict[str, str]:
    """The messages of a page still to translate (empty or fuzzy), English -> current Chinese (``""`` if none).

    Alt texts carry the prefix ``[alt text] `` so that one JSON file holds both kinds.
    """
    path = locales / LANGUAGE / "LC_MESSAGES" / f"{docname}.po"
    out = {}
    for m in read_catalogue(path):
        if m.id and (not m.string or m.fuzzy):
            key = f"[{m.context}] {m.id}" if m.context in CONTEXTS else m.id
            out[key] = m.string or ""
    return out


def apply(docname: str, table: dict[str, str], locales: Path = LOCALES) -> list[str]:
    """Put translations (English -> Chinese, as :func:`todo` gives them) into a page's catalogue.

    An entry whose translation breaks a role, inline maths or inline code is refused and reported; an English
    message that the catalogue does not have is reported too. A translated entry loses its fuzzy flag.
    """
    path = locales / LANGUAGE / "LC_MESSAGES" / f"{docname}.po"
    catalogue = read_catalogue(path)
    problems = []
    for key, chinese in table.items():
        context, english = next(((c, key[len(c) + 3:]) for c in CONTEXTS if key.startswith(f"[{c}] ")),
                                (None, key))
        message = catalogue.get(english, context=context)
        if message is None:
            problems.append(f"not in {docname}: {english[:70]!r}")
            continue
        if not chinese.strip():
            continue
        broken = markup_problems(english, chinese)
        if broken:
            problems.append(f"{english[:60]!r}: {'; '.join(broken)}")
            continue
        message.string = chinese
        message.flags.discard("fuzzy")
        message.previous_id = []  # the old English shown for review is no longer needed
    write_catalogue(catalogue, path)
    return problems


# ---------------------------------------------------------------------------------------------- notebooks


def translations(path: Path, context: str | None = None) -> dict[str, str]:
    """English -> Chinese for the finished (non-fuzzy, non-empty) entries of a catalogue with ``context``."""
    if not path.exists():
        return {}
    return {m.id: m.string for m in read_catalogue(path)
            if m.id and m.string and not m.fuzzy and m.context == context}


def _flexible(english: str) -> re.Pattern:
    """A pattern for ``english`` as it stands in MyST source: Sphinx joined its lines with single spaces."""
    parts = [re.escape(part) for part in english.split()]
    return re.compile(r"\s+".join(parts))


def translate_markdown(source: str, table: dict[str, str]) -> tuple[str, int]:
    """Replace every English message of ``table`` found in a markdown cell by its translation, in one pass.

    Returns the new source and how many messages were replaced. One left-to-right scan tries the longer
    messages first at each position and never looks again at text it has replaced, so a short message (a table
    cell, a one-word list item) can neither replace part of a longer one nor the English link target inside a
    translation. Whitespace may differ (the catalogue holds each paragraph on one line); a message matches only
    as whole words.
    """
    english = {" ".join(key.split()): zh for key, zh in table.items() if key.strip() and zh != key}
    if not english:
        return source, 0
    alternatives = "|".join(_flexible(key).pattern for key in sorted(english, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
    count = 0

    def replace(match: re.Match) -> str:
        nonlocal count
        count += 1
        return english[" ".join(match.group(0).split())]

    return pattern.sub(replace, source), count


def translate_notebook(nb: dict, docname: str, locales: Path = LOCALES) -> dict:
    """A copy of notebook ``nb`` (page ``docname``) with its markdown and alt text in Chinese, code unchanged."""
    import copy

    path = locales / LANGUAGE / "LC_MESSAGES" / f"{docname}.po"
    prose, alts, titles = translations(path), translations(path, ALT_CONTEXT), translations(path, TITLE_CONTEXT)
    out = copy.deepcopy(nb)
    for cell in out.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = translate_markdown(translate_exercise_titles(source, titles), prose)[0]
        image = cell.get("metadata", {}).get("mystnb", {}).get("image", {})
        if isinstance(image.get("alt"), str) and image["alt"].strip() in alts:
            image["alt"] = alts[image["alt"].strip()]
    return out


# ---------------------------------------------------------------------------------------------- builds


def _jupyter_book() -> str:
    return str(Path(sys.executable).with_name("jupyter-book"))


def zh_config(root: Path = ROOT) -> dict:
    """The Chinese edition's configuration: the English one with the language, title and paths set."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config["title"] = ZH_TITLE
    sphinx = config.setdefault("sphinx", {})
    sphinx["local_extensions"] = {name: str(root / path) for name, path in sphinx.get("local_extensions", {}).items()}
    settings = sphinx.setdefault("config", {})
    settings["language"] = LANGUAGE
    settings["locale_dirs"] = [str(root / "locales")]
    settings["gettext_compact"] = False
    settings["html_search_options"] = {"dict": str(root / "locales" / "search_terms.txt")}
    return config


def extract(root: Path = ROOT, out: Path = POT_DIR) -> None:
    """Run Sphinx's gettext builder over the English book (no notebook is executed)."""
    build = root / "_build" / "gettext-build"
    shutil.rmtree(build, ignore_errors=True)
    subprocess.run([_jupyter_book(), "build", str(root), "--builder", "custom", "--custom-builder", "gettext",
                    "--path-output", str(build), "-qq"], check=True, cwd=root)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(build / "_build" / "gettext", out)


def build(root: Path = ROOT, out: Path = ZH_OUT, strict: bool = False) -> int:
    """Build the Chinese edition into ``out`` (``_build/html/zh``, beside the English site it links to)."""
    import yaml

    work = root / "_build" / "zh"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "_config.yml"
    config.write_text(yaml.safe_dump(zh_config(root), allow_unicode=True, sort_keys=False), encoding="utf-8")
    command = [_jupyter_book(), "build", str(root), "--config", str(config), "--path-output", str(work)]
    if strict:
        command += ["-W", "-n", "--keep-going"]
    result = subprocess.run(command, cwd=root)
    if result.returncode:
        return result.returncode
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(work / "_build" / "html", out)
    print(f"The Chinese edition is in {out}; open {out / 'index.html'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The Chinese edition's catalogues and build.")
    parser.add_argument("command", choices=("extract", "update", "check", "build", "todo", "apply"))
    parser.add_argument("docname", nargs="?", help="todo/apply: the page, e.g. notebooks/10_rlhf")
    parser.add_argument("json", nargs="?", type=Path, help="todo: where to write; apply: what to read")
    parser.add_argument("--strict", action="store_true", help="build: -W -n --keep-going")
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    args = parser.parse_args(argv)
    if args.command == "extract":
        extract()
    elif args.command == "update":
        for name, counts in update().items():
            if counts["new"] or counts["fuzzy"]:
                print(f"{name}: {counts['new']} new, {counts['fuzzy']} fuzzy of {counts['messages']} messages")
    elif args.command == "check":
        ok, report = check(threshold=args.threshold)
        print(report)
        return 0 if ok else 1
    elif args.command == "todo":
        table = todo(args.docname)
        args.json.write_text(json.dumps(table, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"{len(table)} messages of {args.docname} to translate: {args.json}")
    elif args.command == "apply":
        problems = apply(args.docname, json.loads(args.json.read_text(encoding="utf-8")))
        for problem in problems:
            print("REFUSED", problem)
        return 1 if problems else 0
    else:
        return build(strict=args.strict)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# ---------------------------------------------------------------------------------------------- terminology

#: Renderings the edition does not use, with the term it uses instead (d2l-zh's choices and the glossary's).
AVOID = {"令牌": "词元", "标记化": "词元化", "奖励投机": "奖励黑客", "掩码语言模型": "掩蔽语言模型",
         "层归一化": "层规范化", "层标准化": "层规范化"}


def glossary_terms(path: Path = ROOT / "book" / "glossary.md") -> dict[str, str]:
    """English term -> its Chinese equivalent, read from the glossary (the edition's term base)."""
    text = path.read_text(encoding="utf-8")
    terms = {}
    for term, definition in re.findall(r"^([^\s:%#`][^\n]*)\n  (\S[^\n]*)", text, re.MULTILINE):
        chinese = re.match(r"([^.(（,，]+)", definition)
        if chinese and re.search(r"[\u4e00-\u9fff]", chinese.group(1)):
            terms[term.strip().lower()] = chinese.group(1).strip()
    return terms


def terminology_problems(english: str, chinese: str, terms: dict[str, str]) -> list[str]:
    """A translation must use the glossary's Chinese for every {term} it links, and no rendering in AVOID."""
    problems = []
    for role, content in ROLE.findall(english):
        if role != "term":
            continue
        target = re.search(r"<([^<>]+)>\s*$", content)
        key = (target.group(1) if target else content).strip().lower()
        wanted = terms.get(key)
        if wanted and wanted not in chinese:
            problems.append(f"{{term}}`{key}` should read {wanted}")
    problems += [f"{word} should be {better}" for word, better in AVOID.items() if word in chinese]
    return problems
