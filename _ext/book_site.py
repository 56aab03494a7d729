"""Small, local fixes to the built site (accessibility), applied by Sphinx while it writes the pages.

- The bibliography: docutils marks each entry of a citation list with ``role="doc-biblioentry"``, a role that
  WAI-ARIA 1.3 deprecates and that is not a valid child of ``role="list"`` (axe-core: aria-deprecated-role,
  aria-required-children). Each entry becomes a ``listitem``, which is what the list requires.
- Inline scripts: sphinx-thebe and sphinx-togglebutton register their inline configuration scripts while the
  builder is already running, so Sphinx 7.4 emits them twice, and the second ``const THEBE_JS_URL`` is a
  console error ("Identifier has already been declared"). Identical scripts are kept once.

- Page descriptions: every page gets a ``<meta name="description">`` made from its first paragraph, for search
  engines and link previews (Lighthouse's SEO audit asks for one).

- Student notebooks (a separate part, see ``write_student_notebooks``): when the HTML build finishes, the student
  version of every chapter (``booktools.student``: worked solutions removed, outputs cleared, answer
  cells added) is written to ``student/`` in the built site, and every chapter page gets a note under its title
  that offers the full and the student notebook for download, and the student notebook on Binder.

(The theme's search and colour-mode buttons, whose ``aria-label`` hid their visible text, are fixed by the
template overrides in ``_templates/components``.)

Each fix is a plain string replacement on the page's HTML, checked by ``booktools/site_check.py`` in a real
browser; if an upstream release changes the markup, the check fails and shows which rule came back.
"""

from __future__ import annotations

import html as html_lib
import re

from docutils import nodes

DESCRIPTION_LENGTH = 160

REPLACEMENTS = (
    ('role="doc-biblioentry"', 'role="listitem"'),
)

# The theme's navigation opens and closes a section with a <summary> that holds only a chevron icon, so it has no
# accessible name (axe-core: summary-name). A visually hidden text gives it one.
NAV_TOGGLE = '<summary><span class="toctree-toggle" role="presentation">'
NAV_TOGGLE_NAMED = ('<summary><span class="visually-hidden">Show or hide the pages of this section</span>'
                    '<span class="toctree-toggle" role="presentation">')


def fix_navigation(html: str) -> str:
    """Give the navigation's section toggles an accessible name."""
    return str(html).replace(NAV_TOGGLE, NAV_TOGGLE_NAMED)


def fix_html(html: str) -> str:
    """Return the page's HTML with the fixes above applied, and images below the first screen loaded lazily."""
    for old, new in REPLACEMENTS:
        html = html.replace(old, new)
    # A chapter holds dozens of figures; the browser fetches each one only when the reader scrolls near it.
    return re.sub(r"<img (?![^>]*\bloading=)", '<img loading="lazy" ', html)


def unique_scripts(scripts: list) -> list:
    """Drop repeated scripts (same file or same inline body, same attributes), keeping the first of each."""
    seen, kept = set(), []
    for script in scripts:
        filename = getattr(script, "filename", script) or ""  # an inline script has None or ""
        attributes = tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items()))
        key = (str(filename), attributes)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    return kept


def page_description(doctree, limit: int = DESCRIPTION_LENGTH) -> str:
    """The first paragraph of a page as plain text, whitespace folded, cut at a word before ``limit`` characters."""
    if doctree is None:
        return ""
    for paragraph in doctree.findall(nodes.paragraph):
        text = re.sub(r"\s+", " ", paragraph.astext()).strip()
        if len(text) >= 40:  # skip captions and one-line labels
            if len(text) > limit:
                text = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
            return text
    return ""


def _on_page(app, pagename, templatename, context, doctree):
    description = page_description(doctree)
    if description and 'name="description"' not in context.get("metatags", ""):
        context["metatags"] = (context.get("metatags", "")
                               + f'\n<meta name="description" content="{html_lib.escape(description)}" />')
    if "body" in context:
        context["body"] = fix_html(context["body"])
    if "script_files" in context:
        context["script_files"] = unique_scripts(context["script_files"])
    if callable(context.get("generate_toctree_html")):
        context["generate_toctree_html"] = _named_toggles(context["generate_toctree_html"])


def _named_toggles(generate):
    def generate_with_named_toggles(*args, **kwargs):
        return fix_navigation(generate(*args, **kwargs))
    return generate_with_named_toggles


# ------------------------------------------------------------------------------------------ student notebooks
# Kept apart from the accessibility fixes above: issue 15 (teaching with the book) owns this part.

STUDENT_DIR = "student"


def _booktools(srcdir):
    """Make the repository's ``booktools`` package importable (it lives beside ``llmbook``, not installed)."""
    import sys

    if str(srcdir) not in sys.path:
        sys.path.insert(0, str(srcdir))


NOTE_TEXT = {
    "en": ("Notebooks", "Run this chapter yourself: ", " or ", "the full notebook, with worked solutions",
           "the student notebook, exercises without solutions", "the student notebook on Binder"),
    "zh": ("笔记本", "自己动手运行本章：", "，或", "完整笔记本（含习题解答）", "学生版笔记本（习题无解答，说明为中文）",
           "在 Binder 上打开学生版笔记本"),
}


def student_note(pagename: str, options: dict, language: str = "en") -> str:
    """The HTML note put under a chapter's title: both notebooks for download, and the student one on Binder."""
    title, lead, last, full, student, on_binder = NOTE_TEXT["zh" if language.startswith("zh") else "en"]
    name = pagename.rsplit("/", 1)[-1] + ".ipynb"
    links = [f'<a href="../_sources/{pagename}.ipynb" download>{full}</a>',
             f'<a href="../{STUDENT_DIR}/{name}" download>{student}</a>']
    url = options.get("repository_url", "").rstrip("/")
    binder = options.get("launch_buttons", {}).get("binderhub_url", "").rstrip("/")
    if url.startswith("https://github.com/") and binder:
        branch = options.get("repository_branch", "main")
        repo = url[len("https://github.com/"):]
        links.append(f'<a href="{binder}/v2/gh/{repo}/{branch}?urlpath=lab/tree/{STUDENT_DIR}/{name}">'
                     f"{on_binder}</a>")
    separator, end = ("、", "。") if language.startswith("zh") else (", ", ".")
    return (f'<div class="admonition note student-notebooks"><p class="admonition-title">{title}</p>'
            f"<p>{lead}{separator.join(links[:-1])}{last}{links[-1]}{end}</p></div>")


def _add_student_note(app, pagename, templatename, context, doctree):
    if not pagename.startswith("notebooks/") or "body" not in context:
        return
    if not str(app.env.doc2path(pagename, base=False)).endswith(".ipynb"):
        return  # a chapter page whose sections are notebooks (notebooks/NN_slug.md) has no notebook of its own
    note = student_note(pagename, app.config.html_theme_options or {}, app.config.language or "en")
    body = context["body"]
    end = body.find("</h1>")
    context["body"] = body[: end + 5] + note + body[end + 5:] if end >= 0 else note + body


def write_student_notebooks(app, exception):
    """Write the student notebooks into the built site; malformed exercise markup is a build warning."""
    if exception is not None or app.builder.format != "html":
        return
    from pathlib import Path

    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    srcdir = Path(app.srcdir)
    _booktools(srcdir)
    from booktools.student import write_student_versions

    translate = None
    if (app.config.language or "en").startswith("zh"):  # the Chinese edition offers Chinese student notebooks
        from booktools.i18n import translate_notebook

        def translate(nb, name):
            return translate_notebook(nb, f"notebooks/{Path(name).stem}")
    problems = write_student_versions(srcdir / "notebooks", Path(app.outdir) / STUDENT_DIR, quiet=True,
                                      translate=translate)
    for problem in problems:
        logger.warning(f"student notebook not written: {problem}")


def setup(app):
    app.connect("html-page-context", _on_page, priority=900)  # after the theme and the other extensions
    app.connect("html-page-context", _add_student_note, priority=910)
    app.connect("build-finished", write_student_notebooks)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

