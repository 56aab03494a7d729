"""Tests of the site's local Sphinx extension and of the browser site check's pure parts."""

from __future__ import annotations

import sys
from pathlib import Path

from booktools import site_check

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))  # the site's local Sphinx extensions, as _config.yml loads them
import book_site  # noqa: E402


class Script(str):
    def __new__(cls, filename, **attributes):
        obj = super().__new__(cls, str(filename))
        obj.filename, obj.attributes = filename, attributes
        return obj


def test_bibliography_entries_become_list_items():
    html = '<div role="list" class="citation-list"><div class="citation" role="doc-biblioentry">x</div></div>'
    fixed = book_site.fix_html(html)
    assert 'role="doc-biblioentry"' not in fixed and 'role="listitem"' in fixed


def test_repeated_inline_scripts_are_kept_once_and_different_ones_all_kept():
    scripts = [Script("_static/a.js"), Script(None, body="const X = 1"), Script("", body="const X = 1"),
               Script(None, body="const Y = 2"), Script("_static/a.js"), Script("_static/a.js", defer="defer")]
    kept = book_site.unique_scripts(scripts)
    assert [(s.filename, s.attributes) for s in kept] == [
        ("_static/a.js", {}), (None, {"body": "const X = 1"}), (None, {"body": "const Y = 2"}),
        ("_static/a.js", {"defer": "defer"})]


def test_pages_to_check_skips_static_files_and_redirects(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "x.html").write_text("<html></html>")
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.html").write_text("<html></html>")
    (tmp_path / "search.html").write_text("<html></html>")
    assert site_check.pages_to_check(tmp_path, None) == ["book/intro.html"]
    assert site_check.pages_to_check(tmp_path, ["notebooks/*"]) == []


def test_site_check_needs_a_built_site(tmp_path, capsys):
    assert site_check.main([str(tmp_path)]) == 1
    assert "build the site first" in capsys.readouterr().out


def test_page_description_is_the_first_real_paragraph_cut_at_a_word():
    from docutils.core import publish_doctree

    doctree = publish_doctree("Title\n=====\n\nShort.\n\n" + "A long first paragraph about models, " * 10)
    text = book_site.page_description(doctree, limit=60)
    assert text.startswith("A long first paragraph") and text.endswith("…") and len(text) <= 60
    assert book_site.page_description(publish_doctree("Only a line.")) == ""
    assert book_site.page_description(None) == ""


def test_navigation_toggles_get_an_accessible_name():
    html = '<li><a href="x.html">X</a><details><summary><span class="toctree-toggle" role="presentation"><i></i>'
    fixed = book_site.fix_navigation(html)
    assert '<span class="visually-hidden">Show or hide the pages of this section</span>' in fixed
    assert book_site.fix_navigation("<p>no toggle</p>") == "<p>no toggle</p>"


def test_images_load_lazily_unless_the_page_says_otherwise():
    html = '<p><img alt="a plot" src="x.png" /><img loading="eager" alt="logo" src="l.png" /></p>'
    fixed = book_site.fix_html(html)
    assert '<img loading="lazy" alt="a plot"' in fixed
    assert '<img loading="eager" alt="logo"' in fixed and fixed.count("loading=") == 2


BAD_PAGE = """<!DOCTYPE html><html lang="en"><head><title>Bad</title><link rel="icon" href="data:,"></head>
<body><main><article>
<h1>A page with problems</h1>
<p style="color:#bbb;background:#fff">Pale grey text on white fails the contrast rule.</p>
<pre style="width:100px;overflow:auto">{line}</pre>
<script>console.error("broken on purpose")</script>
</article></main></body></html>"""


def test_the_browser_check_reports_axe_violations_console_errors_and_wide_code(tmp_path):
    browser = site_check.find_browser(None)
    if browser is None:
        import pytest
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    (tmp_path / "bad.html").write_text(BAD_PAGE.format(line="x = 1  " * 40))
    (tmp_path / "good.html").write_text(BAD_PAGE.replace("#bbb", "#000").replace(
        '<script>console.error("broken on purpose")</script>', "").format(line="x = 1"))
    server, base = site_check.serve(tmp_path)
    try:
        reports, search = site_check.check_pages(browser, base, ["bad.html", "good.html"], None)
    finally:
        server.shutdown()
    bad, good = reports
    # pale text, and a scrolling code block a keyboard cannot reach
    assert {rule for rule, _, _ in bad["axe"]} == {"color-contrast", "scrollable-region-focusable"}
    assert bad["console"] == ["broken on purpose"] and len(bad["wide"]) == 1
    assert good["axe"] == [] and good["console"] == [] and good["wide"] == [] and search == {}


def test_hreflang_links_are_absolute_or_absent():
    import book_i18n

    assert book_i18n.alternate_link("notebooks/05_inside_an_llm", False, "") == ""
    assert book_i18n.alternate_link("book/intro", False, "https://example.org/book/") == (
        '<link rel="alternate" hreflang="zh-CN" href="https://example.org/book/zh/book/intro.html">')
    assert book_i18n.alternate_link("book/intro", True, "https://example.org/book") == (
        '<link rel="alternate" hreflang="en" href="https://example.org/book/book/intro.html">')
