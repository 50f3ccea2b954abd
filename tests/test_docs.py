"""The book builds with warnings as errors, and its reading guide covers pg2.erl.

Builds ``docs/`` once per run into a temporary directory, exactly as CI does
(``sphinx-build -W --keep-going -b html``), with ``REPG2_DOCS_FIGURES=keep``
so the build starts no node (the pictures of "How a join travels" are used
as they are in the checkout, and drawn from the hand-written lists only if
missing). Skipped when the ``docs`` extra is not installed.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from repg2.tools import xref

pytest.importorskip("sphinx", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("myst_nb", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("furo", reason="the docs extra is not installed (pip install -e '.[docs]')")

DOCS = Path(__file__).resolve().parent.parent / "docs"


class _Rows(HTMLParser):
    """Collect, for every table row of a page, the ids and the link targets inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[set[str], list[str], list[str]]] = []  # (ids, hrefs, text)
        self._row: tuple[set[str], list[str], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr":
            self._row = (set(), [], [])
            self.rows.append(self._row)
        if self._row is None:
            return
        if found.get("id"):
            self._row[0].add(str(found["id"]))
        if tag == "a" and found.get("href"):
            self._row[1].append(str(found["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row[2].append(data)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the docs once with -W; return the HTML output directory."""
    out = tmp_path_factory.mktemp("docs-html")
    env = dict(os.environ, REPG2_DOCS_FIGURES="keep")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"sphinx-build -W failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    return out


def _viewcode_block(page: str, anchor: str) -> str:
    """Return the text of the viewcode block with this id on a highlighted source page ('' if none)."""
    start = page.find(f'<div class="viewcode-block" id="{anchor}">')
    if start < 0:
        return ""
    end = page.find('<div class="viewcode-block"', start + 1)
    return html.unescape(re.sub(r"<[^>]+>", "", page[start : end if end > 0 else len(page)]))


def test_docs_build_with_warnings_as_errors(built: Path) -> None:
    """sphinx-build -W --keep-going succeeds and writes the pages the book promises."""
    for page in [
        "index.html",
        "what-is-pg2.html",
        "reading-guide.html",
        "how-a-join-travels.html",
        "tour/pg2.html",
        "translation-notes.html",
        "guarantees.html",
        "performance.html",
        "workshop.html",
        "notebooks.html",
        "_modules/repg2/pg2.html",
    ]:
        assert (built / page).is_file(), page


def test_reading_guide_links_every_pg2_function_to_its_source(built: Path) -> None:
    """Every function of pg2.erl has a row in the reading guide that links to its Python source."""
    parser = _Rows()
    parser.feed((built / "reading-guide.html").read_text(encoding="utf-8"))
    source = (built / "_modules" / "repg2" / "pg2.html").read_text(encoding="utf-8")
    by_id = {row_id: row for row in parser.rows for row_id in row[0]}
    functions = xref.pg2_functions()
    assert len(functions) == 30
    for function in functions:
        erlang = f"pg2:{function}"
        label = "erl-pg2-" + re.sub(r"[:/_]", "-", function.lower())
        assert label in by_id, f"{erlang} is not in the reading guide"
        _ids, hrefs, text = by_id[label]
        assert "no translation" not in "".join(text), f"{erlang} is listed without a translation"
        links = [h for h in hrefs if re.match(r"^(\./)?_modules/repg2/pg2\.html#", h)]
        assert links, f"{erlang}: no link to the source of repg2/pg2.py in {hrefs}"
        for link in links:
            block = _viewcode_block(source, link.split("#", 1)[1])
            assert block, f"{erlang}: {link} names no viewcode block"
            assert f"Erlang: {erlang}" in block, f"{erlang}: {link} lands on code that does not translate it"


def test_reading_guide_lists_every_erlang_line(built: Path) -> None:
    """Each Erlang function named by an ``Erlang:`` docstring line has its row."""
    page = (built / "reading-guide.html").read_text(encoding="utf-8")
    for erlang in {t.erlang for t in xref.translations()}:
        assert html.escape(erlang, quote=False) in page or erlang in html.unescape(page), erlang


def test_join_pictures_are_in_the_page(built: Path) -> None:
    """ "How a join travels" shows the four message pictures, as files that exist."""
    page = (built / "how-a-join-travels.html").read_text(encoding="utf-8")
    for name in ["join", "member-death", "node-death", "heal"]:
        srcs = re.findall(rf'src="([^"]*{name}\.svg)"', page)
        assert srcs, f"{name}.svg is not on the page"
        assert (built / srcs[0]).is_file(), srcs[0]
