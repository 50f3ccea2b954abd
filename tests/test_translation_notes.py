"""TRANSLATION_NOTES.md keeps its promises: every divergence listed, marked where it is made, and pinned.

The notes promise that ``grep -rn DIVERGENCE repg2`` lists every divergence;
pg2.py's docstring and the docs repeat it. These tests make it true and keep
it true: a row without a marker, a marker without a row, a comment claiming
"as in Erlang" beside a divergence, or a "pinned by" naming a test that does
not exist, each fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTES = ROOT / "TRANSLATION_NOTES.md"
MARKER = re.compile(r"DIVERGENCE\((D\d+)\)")


def rows() -> dict[str, list[str]]:
    """Return the divergence table: ``{'D1': [cells...]}``."""
    found: dict[str, list[str]] = {}
    for line in NOTES.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| (D\d+) \|", line)
        if match:
            found[match.group(1)] = [c.strip() for c in re.split(r"(?<!\\) \| ", line.strip().strip("|").strip())]
    return found


def markers() -> list[tuple[str, Path, int]]:
    """Return every ``DIVERGENCE(Dn)`` in the package as ``(Dn, file, line number)``."""
    found = []
    for path in sorted((ROOT / "repg2").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found.extend((m, path, number) for m in MARKER.findall(line))
    return found


def test_every_listed_divergence_is_marked_in_the_code() -> None:
    """Each Dn of the table appears as DIVERGENCE(Dn) somewhere in repg2/."""
    marked = {d for d, _path, _line in markers()}
    assert sorted(set(rows()) - marked, key=lambda d: int(d[1:])) == []


def test_every_marker_names_a_listed_divergence() -> None:
    """No DIVERGENCE(Dn) in the code points at a row that does not exist (or at an old G/N number)."""
    listed = set(rows())
    stray = [f"{path.relative_to(ROOT)}:{line} {d}" for d, path, line in markers() if d not in listed]
    assert stray == []
    text = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "repg2").rglob("*.py"))
    assert re.findall(r"DIVERGENCE\((?!D\d+\)|Dn\))[^)]*\)", text) == []  # Dn: the docs' placeholder


def test_no_comment_calls_a_divergence_as_in_erlang() -> None:
    """Near a DIVERGENCE marker (its line and the five before), no comment claims the code is 'as in Erlang'."""
    offenders = []
    for _d, path, number in markers():
        lines = path.read_text(encoding="utf-8").splitlines()
        for text in lines[max(0, number - 6) : number]:
            comment = text.split("#", 1)[1] if "#" in text else ""
            if re.search(r"as in erlang|as erlang does", comment, re.I):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {text.strip()}")
    assert offenders == []


def test_every_row_is_complete_and_pinned_by_a_test_that_exists() -> None:
    """Each row has its six cells, and its 'pinned by' names tests (file::name) that exist in tests/."""
    problems = []
    for d, cells in rows().items():
        if len(cells) != 6:
            problems.append(f"{d}: {len(cells)} cells")
            continue
        pinned = re.findall(r"`(tests/[\w/]+\.py)?::(\w+)`", cells[5])
        if not pinned:
            problems.append(f"{d}: no test named in 'pinned by': {cells[5]}")
        file = None
        for path, name in pinned:
            file = path or file  # `::name` continues the file named before it
            if file is None or not (ROOT / file).exists():
                problems.append(f"{d}: no such test file {file}")
                continue
            tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
            names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            if name not in names:
                problems.append(f"{d}: {file}::{name} does not exist")
    assert problems == []


def test_the_checks_can_fail() -> None:
    """The marker pattern finds markers and rejects old-style numbers."""
    assert MARKER.findall("# DIVERGENCE(D7): booted lazily") == ["D7"]
    assert MARKER.findall("# DIVERGENCE(N3): old") == []
