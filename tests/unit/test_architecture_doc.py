"""Comments cite docs/ARCHITECTURE.md by heading, and every cited heading exists.

No comment may cite a document outside the repository or an issue number: the next
maintainer has only the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
SOURCES = [p for d in ("bolt_app", "storage", "bench", "tests") for p in (ROOT / d).rglob("*.py")]
CITATION = re.compile(r'"([^"\n]+)"\s+in\s+docs/ARCHITECTURE\.md')
OUTSIDE = re.compile(r"design\.md|\.\./shared|\bissue\s+#?\d+|\(#\d+\)", re.IGNORECASE)


def headings() -> set[str]:
    return {
        line.lstrip("#").strip() for line in DOC.read_text().splitlines() if line.startswith("#")
    }


def test_every_cited_heading_exists() -> None:
    known = headings()
    cited = {
        (path.relative_to(ROOT).as_posix(), heading)
        for path in SOURCES
        for heading in CITATION.findall(" ".join(path.read_text().split()))
    }
    assert cited, "expected some citations of docs/ARCHITECTURE.md"
    assert sorted(c for c in cited if c[1] not in known) == []


def test_no_comment_cites_an_outside_document_or_an_issue() -> None:
    this = Path(__file__).resolve()
    hits = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in SOURCES
        if path.resolve() != this
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert hits == []
