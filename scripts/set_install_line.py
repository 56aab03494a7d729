"""Write the Colab install line of each notebook's first code cell from ``_config.yml``.

The first code cell of every chapter imports ``llmbook`` and, where it is missing (on Colab), installs it with
``%pip install "llmbook @ git+<repository>@<release>"``. The repository URL and the release come from
``_config.yml`` (``repository.url`` and ``llmbook_release``), where they are set once. The release is a tag (or a
commit), never a branch: a notebook must get the ``llmbook`` it was written for, not whatever was pushed last.

Only two parts of that cell are rewritten: the ``# Setup:`` comment at its top (which names the release) and the
line with the install target. Every other byte of the notebook stays as it was; a notebook that is not stored in
the book's format (``scripts/clean_notebook.py``) is refused rather than reformatted.

Usage:
    python scripts/set_install_line.py notebooks/*.ipynb           # rewrite where needed
    python scripts/set_install_line.py --check notebooks/*.ipynb   # exit 1 if any notebook is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

__all__ = ["read_config", "install_target", "setup_comment", "rewrite_setup_cell", "set_install_line", "main"]

ROOT = Path(__file__).resolve().parent.parent
#: The install target line: indentation, then the quoted requirement (any repository, any release or none).
TARGET = re.compile(r'^(?P<indent>\s*)"llmbook @ git\+[^"]*"(?P<end>\s*)$')
#: A release is a tag such as v0.1.0, or a full commit hash; never a branch.
RELEASE = re.compile(r"^(v\d+(\.\d+)*([a-z0-9.+-]*)|[0-9a-f]{40})$")
WIDTH = 88  # the notebooks' line length (notebooks/ruff.toml)


def read_config(config: Path) -> tuple[str, str]:
    """``(repository URL, release)`` from ``_config.yml``, checked."""
    values = yaml.safe_load(config.read_text(encoding="utf-8"))
    url = str((values.get("repository") or {}).get("url", "")).rstrip("/")
    release = str(values.get("llmbook_release", ""))
    if not re.match(r"^https://github\.com/[\w.-]+/[\w.-]+$", url):
        raise ValueError(f"{config}: repository.url must be a GitHub repository URL, got {url!r}")
    if not RELEASE.match(release):
        raise ValueError(f"{config}: llmbook_release must be a release tag (v0.1.0) or a full commit hash, "
                         f"not a branch, got {release!r}")
    return url, release


def install_target(url: str, release: str) -> str:
    """The pip requirement that installs ``llmbook`` from ``url`` at ``release``."""
    return f"llmbook @ git+{url}@{release}"


def setup_comment(release: str) -> list[str]:
    """The comment at the top of the setup cell, which says what is installed and why it is pinned."""
    return ["# Setup: reproducible runs (seeds, 1 CPU thread). Where llmbook is missing\n",
            f"# (on Colab), install it first: release {release}, the version this book was\n",
            "# written for, not the latest commit.\n"]


def rewrite_setup_cell(lines: list[str], url: str, release: str) -> list[str]:
    """The setup cell's source lines with the comment and the install target written from ``url`` and ``release``.

    Raises ValueError if the cell has no ``# Setup:`` comment or no install line.
    """
    if not lines or not lines[0].startswith("# Setup:"):
        raise ValueError("the first code cell does not start with the '# Setup:' comment")
    end = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    body = lines[end:]
    found = [i for i, line in enumerate(body) if TARGET.match(line.rstrip("\n"))]
    if len(found) != 1:
        raise ValueError(f"the first code cell has {len(found)} install lines ('\"llmbook @ git+...\"'), expected 1")
    match = TARGET.match(body[found[0]].rstrip("\n"))
    newline = "\n" if body[found[0]].endswith("\n") else ""
    body = list(body)
    body[found[0]] = f'{match["indent"]}"{install_target(url, release)}"{match["end"]}{newline}'
    new = setup_comment(release) + body
    too_long = [line for line in new if len(line.rstrip("\n")) > WIDTH]
    if too_long:
        raise ValueError(f"line longer than {WIDTH} characters: {too_long[0].rstrip()!r}")
    return new


def _dump(nb: dict, sort_keys: bool) -> str:
    return json.dumps(nb, sort_keys=sort_keys, indent=1, ensure_ascii=False) + "\n"


def set_install_line(path: Path, url: str, release: str, write: bool = True) -> bool:
    """Rewrite the setup cell of the notebook at ``path``; return whether it changed (written only if ``write``)."""
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    formats = [sort for sort in (True, False) if _dump(nb, sort) == raw]
    if not formats:
        raise ValueError(f"{path}: not stored in the book's format; run scripts/clean_notebook.py on it first")
    cell = next((c for c in nb["cells"] if c["cell_type"] == "code"), None)
    if cell is None:
        raise ValueError(f"{path}: no code cell")
    source = cell["source"]
    lines = source.splitlines(keepends=True) if isinstance(source, str) else list(source)
    try:
        new = rewrite_setup_cell(lines, url, release)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if new == lines:
        return False
    cell["source"] = "".join(new) if isinstance(source, str) else new
    if write:
        path.write_text(_dump(nb, formats[0]), encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--config", type=Path, default=ROOT / "_config.yml")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is out of date")
    args = parser.parse_args(argv)
    try:
        url, release = read_config(args.config)
        changed = [path for path in args.notebooks if set_install_line(path, url, release, write=not args.check)]
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    target = install_target(url, release)
    if args.check:
        for path in changed:
            print(f"{path}: the setup cell does not install {target!r}")
        return 1 if changed else 0
    for path in changed:
        print(f"{path}: setup cell now installs {target!r}")
    print(f"{len(changed)} of {len(args.notebooks)} notebooks changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
