"""Check the built HTML site: every internal link and image resolves, and every image has alt text.

Command line: ``python scripts/check_site.py _build/html`` (``make links``; exit 1 and a list of problems if any).
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["EXTERNAL_SCHEMES", "PageParser", "check", "main"]

#: Link schemes that point outside the site (not checked).
EXTERNAL_SCHEMES = {"http", "https", "mailto", "data", "javascript", "ftp"}


class PageParser(HTMLParser):
    """Collects a page's ids, its links (kind, url) and the images without alt text."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (kind, url)
        self.images_without_alt: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href"):
            self.links.append(("link", attrs["href"]))
        if tag in ("img", "script") and attrs.get("src"):
            self.links.append((tag, attrs["src"]))
        if tag == "link" and attrs.get("href") and attrs.get("rel") in ("stylesheet", "icon"):
            self.links.append(("link", attrs["href"]))
        if tag == "img" and not (attrs.get("alt") or "").strip():
            self.images_without_alt.append(attrs.get("src", "?"))


def check(root: Path) -> list[str]:
    """The problems of the site built in ``root``: broken internal links and anchors, images without alt text."""
    pages = {}
    for page in root.rglob("*.html"):
        parser = PageParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        pages[page.resolve()] = parser
    problems = []
    for page, parser in sorted(pages.items()):
        rel = page.relative_to(root.resolve())
        parts = rel.parts[1:] if rel.parts[0] == "zh" else rel.parts  # the Chinese edition sits in zh/
        if parts and parts[0] in ("_static", "genindex.html", "py-modindex.html", "search.html"):
            continue
        for src in parser.images_without_alt:
            problems.append(f"{rel}: image without alt text: {src}")
        for kind, url in parser.links:
            parts = urlsplit(url)
            if parts.scheme in EXTERNAL_SCHEMES or parts.netloc:
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{rel}: broken {kind} {url}")
                continue
            if parts.fragment and target.suffix == ".html" and target in pages:
                if unquote(parts.fragment) not in pages[target].ids:
                    problems.append(f"{rel}: missing anchor {url}")
    return problems


def main(argv: list[str]) -> int:
    """Check the site in ``argv[0]`` (default ``_build/html``); print the problems; 1 if there are any."""
    root = Path(argv[0] if argv else "_build/html")
    if not (root / "index.html").exists():
        print(f"{root} has no index.html: build the site first (make book)")
        return 1
    problems = check(root)
    for problem in problems:
        print(problem)
    n_pages = len(list(root.rglob("*.html")))
    print(f"checked {n_pages} pages: {len(problems)} problems")
    return 1 if problems else 0
