"""Check the built site in a real browser, with the network cut: what a reader sees.

Serves ``_build/html`` on 127.0.0.1, opens every page in headless Chromium (Debian's package, driven by
Playwright; nothing downloads a browser), cuts the network (every host name but 127.0.0.1 fails to
resolve), and reports per page:

- maths that did not render (a ``.math`` element without a MathJax container, or raw ``\\(`` left in the text);
- axe-core accessibility violations of impact "serious" or "critical" (WCAG 2.x A and AA rules);
- failed requests (blocked third-party requests included) and console errors;
- code and output blocks wider than their column (the reader would have to scroll sideways);
- broken internal links and anchors (the static check of :mod:`booktools.site_links`);

and, once per edition, that the built-in search finds results for a known term. When the Chinese edition is built
into ``zh/`` (``make book-zh``), its pages are checked by the same rules, its search must find 注意力, and every
page of both editions must carry a language switch whose link opens the same page in the other edition. Exit
status 1 on any problem.

Command line: ``python scripts/site_check.py _build/html [--browser /usr/bin/chromium] [--pages 'notebooks/*']``
(``make site-check``).
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import http.server
import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from booktools import site_links

__all__ = ["serve", "find_browser", "pages_to_check", "check_page", "language_switch_problems", "check_search", "main"]

BROWSER_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
BROWSER_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
                # The network is cut: every host name but the local server's fails to resolve.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
LOCAL_HOSTS = ("127.0.0.1",)
# WCAG 2.x A and AA, plus label-content-name-mismatch (WCAG 2.5.3), which axe-core still marks experimental.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
               "rules": {"label-content-name-mismatch": {"enabled": True}},
               "resultTypes": ["violations"]}  # only violations are reported; skipping the rest is faster
SEARCH_TERMS = ("attention", "embedding")
ZH_SEARCH_TERMS = ("注意力",)
ZH = "zh/"
WIDTH = 1280
# Sphinx's own generated pages (indices, search) carry no language switch.
SKIP = ("_static/*", "genindex.html", "py-modindex.html", "search.html", "_sources/*", "_images/*")

# Runs in the page: unrendered maths and code blocks wider than their column.
PAGE_PROBE = """() => {
  const maths = [...document.querySelectorAll('article .math')];
  const unrendered = maths.filter(m => !m.querySelector('mjx-container') && !m.closest('mjx-container'));
  const text = document.querySelector('article') ? document.querySelector('article').innerText : '';
  const raw = (text.match(/\\\\\\(|\\\\\\[/g) || []).length;
  const wide = [...document.querySelectorAll('article pre')]
    .filter(p => p.offsetParent !== null && p.scrollWidth > p.clientWidth + 2)
    .map(p => (p.innerText.split('\\n').find(l => l.length > 0) || '').slice(0, 60));
  return {maths: maths.length, unrendered: unrendered.length, raw: raw, wide: wide};
}"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the report readable
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``root`` on 127.0.0.1 in a thread; return the server and its base URL."""
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def find_browser(explicit: str | None) -> str | None:
    """The Chromium to use: ``explicit`` if it exists, else Debian's or one on the path (None if there is none)."""
    if explicit:
        return explicit if Path(explicit).exists() else None
    for candidate in BROWSER_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    found = shutil.which("chromium")
    return found


def pages_to_check(root: Path, patterns: list[str] | None) -> list[str]:
    """The pages of the site to open (relative paths), without static files, redirects and skipped pages."""
    pages = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root).as_posix()
        if any(fnmatch.fnmatch(rel.removeprefix(ZH), pattern) for pattern in SKIP):
            continue
        if patterns and not any(fnmatch.fnmatch(rel, pattern) for pattern in patterns):
            continue
        if 'http-equiv="Refresh"' in path.read_text(encoding="utf-8", errors="replace")[:2000]:
            continue  # a redirect page (the site's index.html points to the intro)
        pages.append(rel)
    return pages


def check_page(page, axe, base: str, rel: str, log: dict) -> dict:
    """Open one page and report its maths, axe-core violations, failed requests, console errors and wide code."""
    log["failed"].clear()
    log["console"].clear()
    page.goto(base + rel, wait_until="load")
    page.wait_for_load_state("networkidle")
    page.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || null")
    probe = page.evaluate(PAGE_PROBE)
    # What the page itself requested and logged; axe-core's own stylesheet fetches (its css-orientation-lock rule
    # resolves @import against the page instead of the stylesheet) are not the page's.
    failed, console = sorted(set(log["failed"])), list(log["console"])
    results = axe.run(page, options=AXE_OPTIONS)
    serious = [(v["id"], v["impact"], len(v["nodes"])) for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
    return {"page": rel, "maths": probe["maths"], "unrendered": probe["unrendered"] + probe["raw"],
            "axe": serious, "failed": failed, "console": console,
            "wide": probe["wide"]}


def language_switch_problems(root: Path, pages: list[str]) -> list[str]:
    """Every page of an edition links the same page of the other one, when both editions are built."""
    if not (root / ZH / "index.html").exists():
        return []
    import re

    problems = []
    for rel in pages:
        html = (root / rel).read_text(encoding="utf-8", errors="replace")
        if "<h1" not in html:
            continue
        found = re.search(r'<p class="language-switch"><a href="([^"]+)"', html)
        if not found:
            problems.append(f"{rel}: no language switch")
            continue
        target = (root / rel).parent / found.group(1)
        other = rel.removeprefix(ZH) if rel.startswith(ZH) else ZH + rel
        if target.resolve() != (root / other).resolve():
            problems.append(f"{rel}: the language switch leads to {found.group(1)}, not to {other}")
        elif not target.exists():
            problems.append(f"{rel}: the language switch leads to {other}, which was not built")
    return problems


def check_search(page, base: str, terms=SEARCH_TERMS, prefix: str = "") -> dict[str, int]:
    """The number of results the built-in search finds for each term."""
    found = {}
    for term in terms:
        page.goto(f"{base}{prefix}search.html?q={term}", wait_until="load")
        try:
            page.wait_for_selector("#search-results li, ul.search li", timeout=15000)
        except Exception:  # noqa: BLE001 - no result appeared in time: report zero
            found[term] = 0
            continue
        found[term] = page.locator("#search-results li, ul.search li").count()
    return found


def check_pages(browser_path: str, base: str, pages: list[str], search_root: Path | None) -> tuple[list, dict]:
    """Open ``pages`` in a browser of its own; with ``search_root``, also try the search of both editions."""
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    log = {"failed": [], "console": []}
    reports, search = [], {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=BROWSER_ARGS)
        context = browser.new_context(viewport={"width": WIDTH, "height": 900}, service_workers="block")
        page = context.new_page()

        def on_request(request):
            if urlsplit(request.url).hostname not in LOCAL_HOSTS:
                log["failed"].append("third-party request " + request.url[:100])

        page.on("request", on_request)
        page.on("requestfailed", lambda r: log["failed"].append(f"failed {r.url[:100]}")
                if urlsplit(r.url).hostname in LOCAL_HOSTS else None)
        page.on("response", lambda r: log["failed"].append(f"HTTP {r.status} {r.url[:100]}")
                if r.status >= 400 else None)
        page.on("console", lambda m: log["console"].append(m.text[:160]) if m.type == "error" else None)
        page.on("pageerror", lambda e: log["console"].append(str(e)[:160]))
        axe = Axe()
        for rel in pages:
            reports.append(check_page(page, axe, base, rel, log))
        if search_root is not None:
            search = check_search(page, base)
            if (search_root / ZH / "search.html").exists():
                search.update(check_search(page, base, ZH_SEARCH_TERMS, ZH))
        browser.close()
    return reports, search


def main(argv: list[str]) -> int:
    """The command line (see the module's docstring); 1 on any problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="_build/html")
    parser.add_argument("--browser", help="path to a Chromium executable (default: Debian's /usr/bin/chromium)")
    parser.add_argument("--pages", nargs="*", help="only pages matching these glob patterns")
    parser.add_argument("--jobs", type=int, default=2, help="browsers working at once (default 2)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / "index.html").exists():
        print(f"{root} has no index.html: build the site first (make book)")
        return 1
    browser_path = find_browser(args.browser)
    if browser_path is None:
        print("site-check: no Chromium found (install Debian's package: apt-get install chromium)")
        return 1
    static_problems = site_links.check(root)
    pages = pages_to_check(root, args.pages)
    static_problems += language_switch_problems(root, pages)
    server, base = serve(root)
    jobs = max(1, min(args.jobs, len(pages)))
    try:  # one browser per thread (Playwright: an instance per thread), each taking every jobs-th page
        with ThreadPoolExecutor(max_workers=jobs) as threads:
            futures = [threads.submit(check_pages, browser_path, base, pages[i::jobs],
                                      root if i == 0 else None) for i in range(jobs)]
            results = [future.result() for future in futures]
    finally:
        server.shutdown()
    order = {rel: i for i, rel in enumerate(pages)}
    reports = sorted((r for chunk, _ in results for r in chunk), key=lambda r: order[r["page"]])
    search = results[0][1]

    problems = list(static_problems)
    print(f"{'page':58s} {'maths':>5s} {'unrend.':>7s} {'axe':>4s} {'failed':>6s} {'console':>7s} {'wide':>4s}")
    for r in reports:
        print(f"{r['page'][:58]:58s} {r['maths']:5d} {r['unrendered']:7d} {len(r['axe']):4d} "
              f"{len(r['failed']):6d} {len(r['console']):7d} {len(r['wide']):4d}")
        problems += [f"{r['page']}: {r['unrendered']} maths not rendered"] if r["unrendered"] else []
        problems += [f"{r['page']}: axe {rule} ({impact}, {n} nodes)" for rule, impact, n in r["axe"]]
        problems += [f"{r['page']}: {item}" for item in r["failed"]]
        problems += [f"{r['page']}: console error: {text}" for text in r["console"]]
        problems += [f"{r['page']}: code block wider than its column: {first!r}" for first in r["wide"]]
    for term, n in search.items():
        print(f"search for {term!r}: {n} results")
        if n == 0:
            problems.append(f"search for {term!r} found nothing")
    for problem in problems:
        print("PROBLEM", problem)
    summary = {"pages": len(reports), "maths": sum(r["maths"] for r in reports),
               "unrendered_maths": sum(r["unrendered"] for r in reports),
               "axe_serious_or_critical": sum(len(r["axe"]) for r in reports),
               "failed_requests": sum(len(r["failed"]) for r in reports),
               "console_errors": sum(len(r["console"]) for r in reports),
               "wide_code_blocks": sum(len(r["wide"]) for r in reports),
               "broken_links": len(static_problems), "search": search, "problems": len(problems)}
    print(json.dumps(summary))
    return 1 if problems else 0
