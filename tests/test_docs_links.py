"""Citations of the architecture document name sections that exist, and no citation points at a
design file the repository does not have (the original DESIGN.md lived outside it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "docs" / "architecture.md"
SUFFIXES = {".py", ".md", ".sql", ".yaml", ".yml", ".toml", ".txt", ".js", ".html", ".css"}
CITATION = re.compile(r"docs/architecture\.md §([A-Za-z][\w-]*)")
# "DESIGN.md" or "DESIGN §N": a citation of the file outside the repository.
BARE = re.compile(r"\bDESIGN(\.md\b|'s\b| §)")


def headings(text: str) -> set[str]:
    return {m.group(1).strip() for m in re.finditer(r"^##+ (.+)$", text, re.M)}


def citations(text: str) -> list[str]:
    return CITATION.findall(text)


def bare_design(text: str) -> bool:
    return BARE.search(text) is not None


def repo_files() -> list[Path]:
    out = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "Makefile"]
    for d in ("src", "tests", "bench", "docs"):
        out += [p for p in (ROOT / d).rglob("*") if p.is_file() and p.suffix in SUFFIXES]
    return [p for p in out if p.exists() and p != Path(__file__).resolve()]


def test_the_helpers_find_what_they_should() -> None:
    text = "see docs/architecture.md §Events and docs/architecture.md §No-such, not DESIGN.md §2"
    assert citations(text) == ["Events", "No-such"]
    assert bare_design(text)
    assert bare_design("the DESIGN §4 formula") and bare_design("DESIGN's decay")
    assert not bare_design("designed by DESIGNERS")
    assert headings("# Title\n## Events\ntext\n### Sub part\n") == {"Events", "Sub part"}


def test_every_architecture_citation_names_a_real_section() -> None:
    sections = headings(ARCH.read_text(encoding="utf-8"))
    broken = []
    seen = 0
    for path in repo_files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in citations(line):
                seen += 1
                if name not in sections:
                    broken.append(f"{path.relative_to(ROOT)}:{n}: §{name}")
    assert seen >= 30  # the code really cites it
    assert not broken, "unknown sections of docs/architecture.md:\n" + "\n".join(broken)


def test_no_citation_of_a_design_file_outside_the_repo() -> None:
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in repo_files()
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if bare_design(line)]
    assert not found, "cite docs/architecture.md §Section instead:\n" + "\n".join(found)


def test_the_architecture_sections_the_code_relies_on_exist() -> None:
    sections = headings(ARCH.read_text(encoding="utf-8"))
    assert {"Pipeline", "Areas", "Events", "Market", "Reconciliation", "Ledger", "Forensics",
            "Governance", "CLI", "API", "Store", "Invariants", "Engines", "Deviations"} <= sections
