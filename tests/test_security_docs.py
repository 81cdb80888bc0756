"""The security tables name tests that exist (README.md and docs/security.md).

A finding's regression test that is renamed or removed must not leave the table pointing
at nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
FINDINGS = ["C1", "H1", "H2", "H3", "H4", "H5", "H6", "M1", "M2", "M3", "M4", "M5", "M6",
            "M7", "M8", "L3", "L4", "L5", "L6", "L7", "L8", "L10"]


def _section(text: str, heading: str) -> list[str]:
    """The table rows (``| …``) under ``heading``, up to the next heading of that level."""
    level = heading.split(" ", 1)[0]
    lines = text.splitlines()
    start = lines.index(heading) + 1
    rows = []
    for line in lines[start:]:
        if line.startswith(level + " "):
            break
        if line.startswith("| ") and not line.startswith("| ---"):
            rows.append(line)
    return rows[1:]  # the header row


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")}


def _references(cell: str) -> list[tuple[str, str | None]]:
    """(file, test name or None) for each backticked token of a table cell."""
    refs: list[tuple[str, str | None]] = []
    current: str | None = None
    for token in re.findall(r"`([^`]+)`", cell):
        if "::" in token:
            current, name = token.split("::", 1)
            refs.append((current, name))
        elif token.endswith(".py"):
            current = token
            refs.append((current, None))
        else:
            assert current is not None, f"a test name before its file: {cell}"
            refs.append((current, token))
    return refs


def _covered(first_cell: str) -> set[str]:
    """The finding ids a row's first cell names (``M1, M2``, ``M5, M6`` or ``L3–L8``)."""
    ids: set[str] = set()
    for start, end in re.findall(r"\b([CHML]\d+)(?:–([CHML]\d+))?", first_cell):
        if end:
            ids.update(f"{start[0]}{n}" for n in range(int(start[1:]), int(end[1:]) + 1))
        else:
            ids.add(start)
    return ids


def test_every_test_docs_security_names_exists() -> None:
    rows = _section((ROOT / "docs" / "security.md").read_text(encoding="utf-8"),
                    "## Guarantees and their tests")
    assert len(rows) >= 15
    seen: set[str] = set()
    for row in rows:
        first, tests = row.strip("|").split("|", 1)
        seen |= _covered(first)
        refs = [ref for ref in _references(tests) if ref[1] is not None]
        assert refs, f"no test named: {row}"
        for file, name in refs:
            path = TESTS / file
            assert path.is_file(), f"{file} (in {first.strip()}) does not exist"
            assert name in _test_names(path), f"{file}::{name} (in {first.strip()}) does not exist"
    assert set(FINDINGS) <= seen, sorted(set(FINDINGS) - seen)


def test_the_readme_lists_every_finding_with_test_files_that_exist() -> None:
    rows = _section((ROOT / "README.md").read_text(encoding="utf-8"), "## Security")
    seen: set[str] = set()
    for row in rows:
        first, tests = row.strip("|").split("|", 1)
        seen |= _covered(first)
        files = [file for file, _ in _references(tests)]
        assert files, f"no test file named: {row}"
        for file in files:
            assert (TESTS / file).is_file(), f"{file} (in {first.strip()}) does not exist"
    assert set(FINDINGS) <= seen, sorted(set(FINDINGS) - seen)
