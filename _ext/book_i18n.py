"""The two editions of the site, English and Chinese (中文版), built from the same sources.

- Every page gets a language switch under its title that opens the same page in the other edition. The Chinese
  site lives in ``zh/`` inside the English one (``make book-zh`` builds it there), so the links are relative and
  work offline and on any host. When ``html_baseurl`` gives the site's address, the head also gets
  ``<link rel="alternate" hreflang>`` for search engines, which need it absolute (a relative one fails Lighthouse).
- In the Chinese build the alt text of figures in notebook outputs and the titles of exercises, which Sphinx does
  not extract as messages, are translated from the page's catalogue (contexts ``alt text`` and ``exercise title``;
  see ``booktools/i18n.py``), and the few English
  strings of ``book_site`` (the note offering the notebooks) are given in Chinese.
"""

from __future__ import annotations

import sys
from pathlib import Path

from docutils import nodes

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ZH_DIR = "zh"
LABELS = {"en": ("中文版", "zh-CN", "本页的中文版"), "zh": ("English", "en", "This page in English")}


def is_chinese(app) -> bool:
    return (app.config.language or "en").lower().startswith("zh")


def other_edition(pagename: str, chinese: bool) -> str:
    """The relative URL of ``pagename`` in the other edition (the Chinese site sits in ``zh/`` of the English)."""
    up = "../" * pagename.count("/")
    return f"{up}../{pagename}.html" if chinese else f"{up}{ZH_DIR}/{pagename}.html"


def switch_html(pagename: str, chinese: bool) -> str:
    text, lang, title = LABELS["zh" if chinese else "en"]
    href = other_edition(pagename, chinese)
    return (f'<p class="language-switch"><a href="{href}" hreflang="{lang}" lang="{lang}" title="{title}">'
            f'<span aria-hidden="true">🌐 </span>{text}</a></p>')


def alternate_link(pagename: str, chinese: bool, baseurl: str) -> str:
    """``<link rel="alternate" hreflang>`` to the other edition, for search engines, which need an absolute URL:
    empty when the site's address (``html_baseurl``, the English site's root) is not configured."""
    if not baseurl:
        return ""
    root = baseurl.rstrip("/") + "/"
    href = f"{root}{pagename}.html" if chinese else f"{root}{ZH_DIR}/{pagename}.html"
    return f'<link rel="alternate" hreflang="{"en" if chinese else "zh-CN"}" href="{href}">'


def _add_switch(app, pagename, templatename, context, doctree):
    if "body" not in context or doctree is None:
        return
    chinese = is_chinese(app)
    link = alternate_link(pagename, chinese, app.config.html_baseurl)
    if link:
        context["metatags"] = context.get("metatags", "") + "\n" + link
    body = context["body"]
    end = body.find("</h1>")
    if end >= 0:
        context["body"] = body[: end + 5] + switch_html(pagename, chinese) + body[end + 5:]


def _translate_alt_text(app, doctree, docname):
    if not is_chinese(app):
        return
    from booktools.i18n import ALT_CONTEXT, catalogue_dir, translations

    table = translations(catalogue_dir() / f"{docname}.po", ALT_CONTEXT)
    if not table:
        return
    for image in doctree.findall(nodes.image):
        alt = image.get("alt", "").strip()
        if alt in table:
            image["alt"] = table[alt]


def _translate_exercise_titles(app, docname, source):
    """Chinese build: exercise titles (directive arguments, which Sphinx does not translate) set in the source."""
    if not is_chinese(app) or not docname.startswith("notebooks/") or not source[0].lstrip().startswith("{"):
        return
    import json

    from booktools.i18n import TITLE_CONTEXT, catalogue_dir, translate_exercise_titles, translations

    table = translations(catalogue_dir() / f"{docname}.po", TITLE_CONTEXT)
    if not table:
        return
    nb = json.loads(source[0])
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = translate_exercise_titles(text, table)
    source[0] = json.dumps(nb, ensure_ascii=False)


def _chinese_generated_blocks(app, docname, source):
    """Chinese build: the instructor guide's measured timings (a generated block) rendered in Chinese from the same
    stored results, rather than translated from English that changes at every measurement."""
    if not is_chinese(app) or docname != "book/instructor_guide":
        return
    from booktools.performance import chinese_block, replace_block

    source[0] = replace_block(source[0], "notebook-timings", chinese_block("notebook-timings"), "myst")


def setup(app):
    app.connect("source-read", _translate_exercise_titles)
    app.connect("source-read", _chinese_generated_blocks)
    app.connect("doctree-resolved", _translate_alt_text)
    app.connect("html-page-context", _add_switch, priority=920)  # after book_site's note (910): the switch on top
    return {"parallel_read_safe": True, "parallel_write_safe": True}
