"""The documentation holds together: every relative link in ``README.md`` and ``docs/*.md``
(and the benchmarks', data sets' and example plugin's READMEs) points to a file that exists
and, with a ``#anchor``, to a heading of that file; every page under ``docs/`` is reachable
from the README; the README stays an introduction.

Anchors follow GitHub's rule for headings: the heading's text, lower-cased, punctuation
other than ``-`` and ``_`` dropped, spaces turned into ``-``, and ``-1``, ``-2``... for
repeats. No model and no network: this reads text files only.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
#: Other pages whose links are checked too (they need not be reachable from the README).
OTHER_PAGES = [
    p for p in (ROOT / "benchmarks" / "README.md", ROOT / "studies" / "data" / "README.md") if p.is_file()
] + sorted((ROOT / "plugins" / "examples").glob("*/README.md"))
README_MAX_LINES = 350

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


def _prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines outside fenced code blocks."""
    out, fence = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _FENCE.match(line)
        if match:
            marker = match.group(1)[0]
            if fence is None:
                fence = marker
            elif fence == marker:
                fence = None
            continue
        if fence is None:
            out.append((number, line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = _CODE_SPAN.sub(r"\2", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text stays
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every anchor a link into ``path`` may name."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in _prose_lines(path):
        out.update(_HTML_ANCHOR.findall(line))
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return frozenset(out)


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image in ``path``'s prose."""
    out = []
    for number, line in _prose_lines(path):
        # a code span's text is not a link, but a link's text may be a code span: keep its text
        text = _CODE_SPAN.sub(lambda m: m.group(2).replace("](", "] ("), line)
        out.extend((number, target) for target in _LINK.findall(text))
    return out


def broken(path: Path, target: str) -> str | None:
    """Why the link ``target`` in ``path`` is broken, or None."""
    if _SCHEME.match(target):
        return None
    file_part, _, anchor = target.partition("#")
    dest = (path.parent / unquote(file_part)).resolve() if file_part else path
    if not dest.is_relative_to(ROOT):
        return "points outside the repository"
    if not dest.exists():
        return "no such file"
    if anchor and dest.suffix == ".md" and dest.is_file() and unquote(anchor) not in anchors(dest):
        return f"no heading with anchor #{anchor} in {dest.relative_to(ROOT)}"
    return None


def test_slugs_follow_github() -> None:
    assert slug("One study over every family: `auto` (experimental)") == "one-study-over-every-family-auto-experimental"
    assert slug("Soft prompts and adapters (PEFT)") == "soft-prompts-and-adapters-peft"
    assert slug("Where things live") == "where-things-live"
    assert slug("1. The trial's flow -> export") == "1-the-trials-flow---export"


@pytest.mark.parametrize("page", PAGES + OTHER_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    bad = [
        f"{page.relative_to(ROOT)}:{line}: ({target}) {why}"
        for line, target in links(page)
        if (why := broken(page, target))
    ]
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    seen, todo = {README}, [README]
    while todo:
        page = todo.pop()
        for _, target in links(page):
            file_part = target.partition("#")[0]
            if _SCHEME.match(target) or not file_part:
                continue
            dest = (page.parent / unquote(file_part)).resolve()
            if dest.suffix == ".md" and dest.is_file() and dest not in seen:
                seen.add(dest)
                todo.append(dest)
    orphans = [str(p.relative_to(ROOT)) for p in PAGES if p not in seen]
    assert not orphans, f"pages no link from README.md leads to: {orphans}"


def test_readme_is_an_introduction() -> None:
    text = README.read_text(encoding="utf-8")
    n = len(text.splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines, over {README_MAX_LINES}: move reference text to docs/"
    assert "make demo" in text and "make test" in text
