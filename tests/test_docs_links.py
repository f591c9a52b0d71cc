"""Every relative link in README.md and docs/*.md resolves: markdown links to files (and to headings, by GitHub's
anchor rules), and repository paths named in the text (``docs/x.md``, ``bench/y.py``, ...) exist."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*([^)\s]+)\s*\)")
#: Repository paths mentioned in prose or code spans: top folders of this repository (and shared/, which is not).
MENTION = re.compile(r"(?<![\w./-])((?:docs|bench|tests|mmpdata|mmpmodel|cli|shared)/[\w./-]*\w"
                     r"\.(?:md|py|cfg|toml|json))")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, markup and punctuation dropped (but - and _), spaces -> -."""
    text = re.sub(r"`|\*\*|__", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    anchors, seen, fence = set(), {}, False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"#{1,6}\s+(.*)", line)
        if m:
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _targets(page: Path):
    text = page.read_text()
    for rx in (LINK, IMAGE):
        for m in rx.finditer(text):
            yield "link", m.group(1)
    for m in MENTION.finditer(text):
        yield "mention", m.group(1)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    dead = []
    for kind, target in _targets(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        if kind == "mention":
            resolved = (ROOT / path) if (ROOT / path).exists() else page.parent / path
        else:
            resolved = page if not path else (page.parent / path)
        if not resolved.exists():
            dead.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            dead.append(f"{target} (no heading with that anchor)")
    assert not dead, f"{page.relative_to(ROOT)}: dead links: " + "; ".join(dead)


def test_the_checker_sees_dead_links(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Title\n[a](missing.md) [b](#title) [c](#nope) see docs/not-there.md\n")
    found = dict((t, k) for k, t in _targets(page))
    assert found == {"missing.md": "link", "#title": "link", "#nope": "link", "docs/not-there.md": "mention"}
    assert _anchors(page) == {"title"}
    assert _slug("`mmp synthesize --raw DIR --out OUT.h5 [options]`") == "mmp-synthesize---raw-dir---out-outh5-options"
