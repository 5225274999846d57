"""Every relative link in README.md, benchmarks/, docs/ and examples/ resolves inside this clone.

A newcomer has the clone and nothing else: a link to a sibling folder of the repository (a
design note on the author's machine) or to a file that moved is a dead end. Web links are
not fetched (tests run offline).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
             *sorted((ROOT / "examples").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXTERNAL = ("http://", "https://", "mailto:")


def relative_links(document: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", document.read_text(encoding="utf-8"), flags=re.S)  # code blocks are not links
    return [t for t in LINK.findall(text) if not t.startswith(EXTERNAL) and not t.startswith("#")]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_in_the_clone(document: Path) -> None:
    broken = []
    for target in relative_links(document):
        path = (document.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert not broken, f"{document.relative_to(ROOT)} links to what this clone does not have: {broken}"


def test_the_documents_mention_no_path_outside_the_clone() -> None:
    outside = [(d.name, m) for d in DOCUMENTS for m in re.findall(r"\.\./shared/\S+", d.read_text(encoding="utf-8"))]
    assert not outside, outside


def test_the_link_pattern_finds_links_and_images(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("see [a](docs/a.md#top), ![p](img.png) and [w](https://example.org)\n"
                   "```\n[not](a/link.md)\n```\n")
    assert relative_links(doc) == ["docs/a.md#top", "img.png"]


def test_the_readme_links_the_architecture() -> None:
    assert "docs/ARCHITECTURE.md" in relative_links(ROOT / "README.md")
