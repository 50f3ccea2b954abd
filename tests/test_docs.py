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
        "from-pg2-to-pg.html",
        "tour/pg.html",
        "performance.html",
        "workshop.html",
        "notebooks.html",
        "_modules/repg2/pg2.html",
        "_modules/repg2/pg.html",
    ]:
        assert (built / page).is_file(), page


def _check_row(row: tuple[set[str], list[str], list[str]], module: str, function: str, source: str) -> None:
    """A reading-guide row of ``module:function`` names a translation and links only to code that translates it."""
    erlang = f"{module}:{function}"
    _ids, hrefs, text = row
    assert "no translation" not in "".join(text), f"{erlang} is listed without a translation"
    links = [h for h in hrefs if re.match(rf"^(\./)?_modules/repg2/{module}\.html#", h)]
    assert links, f"{erlang}: no link to the source of repg2/{module}.py in {hrefs}"
    for link in links:
        block = _viewcode_block(source, link.split("#", 1)[1])
        assert block, f"{erlang}: {link} names no viewcode block"
        assert f"Erlang: {erlang}" in block, f"{erlang}: {link} lands on code that does not translate it"


def test_reading_guide_links_every_pg2_function_to_its_source(built: Path) -> None:
    """Every function of pg2.erl has a row in the reading guide that links to its Python source."""
    parser = _Rows()
    parser.feed((built / "reading-guide.html").read_text(encoding="utf-8"))
    source = (built / "_modules" / "repg2" / "pg2.html").read_text(encoding="utf-8")
    by_id = {row_id: row for row in parser.rows for row_id in row[0]}
    functions = xref.pg2_functions()
    assert len(functions) == 30
    for function in functions:
        label = "erl-pg2-" + re.sub(r"[:/_]", "-", function.lower())
        assert label in by_id, f"pg2:{function} is not in the reading guide"
        _check_row(by_id[label], "pg2", function, source)


def test_reading_guide_links_every_pg_function_to_its_source_in_file_order_after_pg2(built: Path) -> None:
    """pg.erl's 43 functions have rows, in the file's order, after pg2's, each linked to code that translates it."""
    page = (built / "reading-guide.html").read_text(encoding="utf-8")
    parser = _Rows()
    parser.feed(page)
    source = (built / "_modules" / "repg2" / "pg.html").read_text(encoding="utf-8")
    by_id = {row_id: row for row in parser.rows for row_id in row[0]}
    functions = xref.pg_functions()
    assert len(functions) == 43
    labels = ["erl-pg-" + re.sub(r"[:/_]", "-", function.lower()) for function in functions]
    positions = [page.find(f'id="{label}"') for label in labels]
    assert all(at > 0 for at in positions), [label for label, at in zip(labels, positions, strict=True) if at < 0]
    assert positions == sorted(positions), "pg's rows are not in pg.erl's order"
    assert page.find('id="erl-pg2-do-monitor-1"') < positions[0], "pg comes after pg2"
    assert re.search(r'<h2>pg<a class="headerlink"', page), "no pg section"
    for function, label in zip(functions, labels, strict=True):
        _check_row(by_id[label], "pg", function, source)


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


def test_the_pg2_to_pg_chapter_shows_each_scenario_on_both(built: Path) -> None:
    """ "From pg2 to pg" shows the pg2 and pg pictures of each scenario, as files that exist, each with its trace."""
    page = (built / "from-pg2-to-pg.html").read_text(encoding="utf-8")
    names = ["join", "pg-join", "pg2-partition", "pg-partition", "pg2-partition-heal", "pg-partition-heal"]
    found = {}
    for name in names:
        srcs = re.findall(rf'src="([^"]*/{name}\.svg)"', page)
        assert srcs, f"{name}.svg is not on the page"
        assert (built / srcs[0]).is_file(), srcs[0]
        found[name] = page.find(srcs[0])
    assert [found[n] for n in names] == sorted(found.values()), "each pg2 picture comes before its pg counterpart"
    assert page.count('class="trace-log"') >= len(names), "a picture without its trace as text"
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for said in ["Why OTP replaced pg2", "The API, side by side", "What each heal leaves", "nolocal"]:
        assert said in text, said
    assert 'href="notebooks/07-pg2-and-pg.html"' in page


def _toctree_pages(page: str) -> list[str]:
    """Return the pages a built page's toctrees list at their first level, in order."""
    blocks = re.findall(r'<div class="toctree-wrapper compound">(.*?)</div>', page, re.S)
    return [
        href
        for block in blocks
        for href in re.findall(r'<li class="toctree-l1"><a class="reference internal" href="([^"#]*)"', block)
    ]


def test_the_front_page_follows_the_learners_order(built: Path) -> None:
    """The book runs: what pg2 is, 01-02, the join with 03, guarantees with 04, 05, pg with 07, reading, performance."""
    pages = _toctree_pages((built / "index.html").read_text(encoding="utf-8"))
    learner = [
        "what-is-pg2.html",
        "notebooks/01-process-groups.html",
        "notebooks/02-inside-pg2-table.html",
        "how-a-join-travels.html",
        "notebooks/03-a-join-across-three-nodes.html",
        "guarantees.html",
        "notebooks/04-failures-and-healing.html",
        "notebooks/05-pubsub-chat.html",
        "from-pg2-to-pg.html",
        "notebooks/07-pg2-and-pg.html",
        "reading-guide.html",
        "reading-erlang.html",
        "tour/index.html",
        "performance.html",
        "notebooks/06-performance.html",
    ]
    assert [p for p in pages if p in learner] == learner, pages
    assert pages.index("notebooks/06-performance.html") < pages.index("workshop.html")


def test_the_tour_starts_at_pg2_then_reads_the_foundations(built: Path) -> None:
    """The tour's first page is pg2; the runtime, ETS, gen_server, supervision, nodes and locks follow, then pg."""
    pages = _toctree_pages((built / "tour" / "index.html").read_text(encoding="utf-8"))
    assert pages[:8] == [
        "pg2.html",
        "erlang.html",
        "terms-ets.html",
        "gen-server.html",
        "supervisor-kernel.html",
        "distribution.html",
        "global.html",
        "pg.html",
    ], pages
    tour_pg = (built / "tour" / "pg.html").read_text(encoding="utf-8")
    assert (
        'id="repg2.pg.join"' in tour_pg
        and 'href="https://github.com/erlang/otp/blob/OTP-25.2.3/lib/kernel/src/pg.erl"' in tour_pg
    )


def test_the_reading_guide_gives_the_originals_the_side_by_side_tool_and_the_syntax_page(built: Path) -> None:
    """The reading guide links pg2.erl at OTP-18.3 and pg.erl at OTP-25.2.3, shows xref --side-by-side, links the syntax page."""
    page = (built / "reading-guide.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", page))  # code blocks are highlighted: one span per token
    assert 'href="https://github.com/erlang/otp/blob/OTP-18.3/lib/kernel/src/pg2.erl"' in page
    assert 'href="https://github.com/erlang/otp/blob/OTP-25.2.3/lib/kernel/src/pg.erl"' in page
    assert "coming" not in text, "the guide still says a translation is coming"
    assert 'href="_modules/repg2/pg.html' in page or 'href="tour/pg.html#module-repg2.pg"' in page
    assert "python -m repg2 xref --side-by-side pg2.erl --html pg2.html" in text
    assert 'href="reading-erlang.html"' in page


def test_the_erlang_syntax_page_sets_each_construct_beside_our_python(built: Path) -> None:
    """'Reading Erlang' covers the constructs of pg2.erl, each with Erlang highlighted beside Python quoted from repg2."""
    page = (built / "reading-erlang.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for construct in [
        "Atoms and variables",
        "Records and #state{}",
        "?MODULE",
        "-spec and -type",
        "Guards: when",
        "andalso and orelse",
        "List comprehensions",
        "--: list subtraction",
        "try ... of ... catch",
        "catch Expr",
        "ETS match patterns: '$1' and '_'",
        "receive ... after",
        "{Name, Node} ! Msg",
    ]:
        assert construct in text, construct
    pairs = page.count('class="side-by-side')
    assert pairs >= 15, pairs
    assert page.count("highlight-erlang") >= pairs and page.count("highlight-python") >= pairs
    # The Python is quoted from the source at build time: lines of repg2/pg2.py appear as they are.
    source = (DOCS.parent / "repg2" / "pg2.py").read_text(encoding="utf-8")
    for quoted in ["for pid in terms.subtract(members, group_members(name)):", "if ets.is_pattern_atom(name):"]:
        assert quoted in source and quoted in text, quoted
    assert "D33" in text and "D6" in text


def test_the_notebooks_page_lists_every_notebook(built: Path) -> None:
    """The notebooks page has a row, with a working link, for each notebook, 06 and 07 included."""
    page = (built / "notebooks.html").read_text(encoding="utf-8")
    notebooks = sorted(p.stem for p in (DOCS.parent / "notebooks").glob("[0-9]*.ipynb"))
    assert "06-performance" in notebooks and "07-pg2-and-pg" in notebooks
    for stem in notebooks:
        assert f'href="notebooks/{stem}.html"' in page, stem
        assert (built / "notebooks" / f"{stem}.html").is_file(), stem


def test_the_readme_points_to_the_originals_the_book_and_one_install_per_purpose() -> None:
    """The README keeps its Quickstart, links pg2.erl at OTP-18.3, shows xref --side-by-side, names the extras."""
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert "pip install -e '.[test]' && python -m repg2 demo\npython -m pytest --cov --cov-report=term\n" in readme
    assert "https://github.com/erlang/otp/blob/OTP-18.3/lib/kernel/src/pg2.erl" in readme
    assert "https://github.com/erlang/otp/blob/OTP-25.2.3/lib/kernel/src/pg.erl" in readme
    assert "is coming" not in readme, "the README still calls pg's translation coming"
    assert "python -m repg2 xref --side-by-side pg2.erl --html pg2.html" in readme
    for command in ["pip install -e .`", "pip install -e '.[notebooks]' jupyterlab", "pip install -e '.[docs]'"]:
        assert command in readme, command
    for where in ["docs/workshop.md", "notebooks/README.md", "python -m repg2 shell", "sphinx-build -W"]:
        assert where in readme, where
