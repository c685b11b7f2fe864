"""Citations stay inside the repository: every ``docs/<page>.md#anchor`` named in the package, the
tests, the notebooks or the README exists, and nothing cites the notes outside the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("fusionlib/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("notebooks/*.ipynb"),
                  ROOT / "README.md", *ROOT.glob("docs/*.md")])
CITATION = re.compile(r"docs/([a-z0-9-]+\.md)(?:#([a-z0-9-]+))?")


def slugs(page: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown page."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return out


def test_docs_exist_for_every_paper():
    for page in ("dcmif", "lrcfuse", "iassf", "ldfusion", "metrics", "adding-a-paper"):
        assert (ROOT / "docs" / f"{page}.md").is_file(), page


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_citations_resolve(source):
    text = source.read_text()
    if source.name != "test_docs.py":
        assert "shared/spec" not in text and "reference-implementations.md" not in text, \
            f"{source.relative_to(ROOT)} cites notes outside the repository; cite docs/ instead"
    for page, anchor in CITATION.findall(text):
        target = ROOT / "docs" / page
        assert target.is_file(), f"{source.relative_to(ROOT)} cites docs/{page}, which does not exist"
        if anchor:
            assert anchor in slugs(target), f"{source.relative_to(ROOT)} cites docs/{page}#{anchor}: no such heading"
