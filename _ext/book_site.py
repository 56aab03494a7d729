"""Small, local fixes to the built site (accessibility), applied by Sphinx while it writes the pages.

- The bibliography: docutils marks each entry of a citation list with ``role="doc-biblioentry"``, a role that
  WAI-ARIA 1.3 deprecates and that is not a valid child of ``role="list"`` (axe-core: aria-deprecated-role,
  aria-required-children). Each entry becomes a ``listitem``, which is what the list requires.
- Inline scripts: sphinx-thebe and sphinx-togglebutton register their inline configuration scripts while the
  builder is already running, so Sphinx 7.4 emits them twice, and the second ``const THEBE_JS_URL`` is a
  console error ("Identifier has already been declared"). Identical scripts are kept once.

- Page descriptions: every page gets a ``<meta name="description">`` made from its first paragraph, for search
  engines and link previews (Lighthouse's SEO audit asks for one).

(The theme's search and colour-mode buttons, whose ``aria-label`` hid their visible text, are fixed by the
template overrides in ``_templates/components``.)

Each fix is a plain string replacement on the page's HTML, checked by ``scripts/site_check.py`` in a real
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


def fix_html(html: str) -> str:
    """Return the page's HTML with the accessibility fixes above applied."""
    for old, new in REPLACEMENTS:
        html = html.replace(old, new)
    return html


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


def setup(app):
    app.connect("html-page-context", _on_page, priority=900)  # after the theme and the other extensions
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

