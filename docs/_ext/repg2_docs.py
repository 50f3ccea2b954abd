"""The RePy2 book's own Sphinx extension: everything that is generated from the code.

- The **reading guide** (``erlang-xref`` directive): one table per Erlang
  module, one row per Erlang function, built at parse time from the
  ``Erlang: module:function/arity`` lines that ``repg2.tools.xref`` collects. Each
  row links to the Python definition's autodoc entry and to its viewcode
  source page, and is itself a link target (``erl-pg2-join-2``) that the
  docstrings link back to. The functions of pg2.erl and of pg.erl come in
  their file's order, with any that has no translation listed as such. The tables are
  never kept by hand: ``builder-inited`` writes
  ``_generated/reading-guide-tables.md`` (headings and one directive per
  module), which ``reading-guide.md`` includes.
- **Erlang: fields.** ``autodoc-process-docstring`` turns each docstring's
  ``Erlang:`` lines into a field (``Erlang: pg2:join/2``, linked to its row
  of the reading guide) and the docstrings' ``Heading\\n-------`` sections
  into rubrics (a section title inside autodoc output is an error).
- **Figures**: ``_scripts/make_figures.py`` draws the message diagrams of
  "How a join travels" and "From pg2 to pg" into ``_static/figures`` before
  reading starts.
- **Notebooks**: ``../notebooks/*.ipynb`` are copied to ``notebooks/``; the
  front page places them in the learner's order, and
  ``_generated/notebooks-toctree.md`` lists them all in a table (with a
  toctree for any notebook the front page does not name yet). myst-nb renders
  them with ``nb_execution_mode = "off"``.
- ``build-finished`` checks that every source link of the reading guide
  lands on an anchor that viewcode actually wrote (a warning, so ``-W``
  fails the build otherwise).
"""

from __future__ import annotations

import ast
import html
import json
import re
import runpy
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from repg2.tools import xref

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parent.parent
GENERATED = DOCS / "_generated"
NOTEBOOKS_SRC = DOCS.parent / "notebooks"
NOTEBOOKS_DST = DOCS / "notebooks"

# The reading guide's sections: Erlang modules grouped as the tour reads them,
# pg2 first because it is what the reader came for. Any Erlang module that a
# docstring names and this list does not gets its own section under "Other".
SECTIONS: list[tuple[str, list[str], str]] = [
    ("pg2", ["pg2"], "`lib/kernel/src/pg2.erl`, translated by {py:mod}`repg2.pg2`, function by function."),
    (
        "pg",
        ["pg"],
        "`lib/kernel/src/pg.erl` of OTP 25.2.3, pg2's successor, translated by {py:mod}`repg2.pg`, "
        "function by function (see {doc}`from-pg2-to-pg`).",
    ),
    (
        "The runtime: erlang, timer, os",
        ["erlang", "timer", "os"],
        "BIFs of the BEAM, stood in for by {py:mod}`repg2.erlang` (processes on threads).",
    ),
    ("ets", ["ets"], "ETS BIFs, by {py:mod}`repg2.ets` (tables ordered by {py:mod}`repg2.terms`)."),
    (
        "gen_server, gen, proc_lib, sys",
        ["gen_server", "gen", "proc_lib", "sys"],
        "`lib/stdlib/src/gen_server.erl` and the parts of `gen`, `proc_lib` and `sys` it leans on, "
        "by {py:mod}`repg2.gen_server`.",
    ),
    (
        "supervisor, kernel",
        ["supervisor", "kernel"],
        "`lib/stdlib/src/supervisor.erl` and the node's `kernel_safe_sup`, by {py:mod}`repg2.supervisor` "
        "and {py:mod}`repg2.kernel`.",
    ),
    (
        "net_kernel and the distribution",
        ["net_kernel", "erl_epmd", "inet_tcp_dist", "dist_util", "auth"],
        "`net_kernel.erl`, `erl_epmd.erl`, `inet_tcp_dist.erl`, `dist_util.erl`, `auth.erl`, by "
        "{py:mod}`repg2.net_kernel` and {py:mod}`repg2.dist`.",
    ),
    ("rpc", ["rpc"], "`lib/kernel/src/rpc.erl`, by {py:mod}`repg2.rpc`."),
    ("global", ["global"], "The lock part of `lib/kernel/src/global.erl`, by {py:mod}`repg2.global_`."),
    (
        "Tools: test suites, tracing, the shell",
        ["pg2_SUITE", "slave", "dbg", "io_lib", "c", "init", "net_adm"],
        "What OTP's test suites, `dbg` and the Erlang shell do for a reader at work: "
        "{py:mod}`repg2.testing.checks`, {py:mod}`repg2.testing.cluster`, {py:mod}`repg2.tools.trace`, "
        "{py:mod}`repg2.tools.drawing` and {py:mod}`repg2.tools.shell`.",
    ),
]


# == Reading the cross-reference ======================================================


def label_for(erlang: str) -> str:
    """Return the link target of an Erlang function's row, e.g. ``erl-pg2-join-2``.

    Letters and digits stay (lower-cased), ``:``, ``/`` and ``_`` become
    ``-``, anything else (``'--'``) is spelled as ``x2d`` so that distinct
    names keep distinct labels.
    """
    out = []
    for ch in erlang:
        if ch.isascii() and ch.isalnum():
            out.append(ch.lower())
        elif ch in ":/_":
            out.append("-")
        else:
            out.append(f"x{ord(ch):02x}")
    return "erl-" + "".join(out)


@dataclass(frozen=True)
class Target:
    """Where a Python translation lives: its module, autodoc object and viewcode anchor."""

    module: str  # "repg2.pg2"
    qualname: str  # "join", "Rex.handle_call", "_multi_call_via_middleman.middleman"
    anchor: str  # the object viewcode and autodoc document: "join", "Rex.handle_call", "_multi_call_via_middleman"

    @property
    def documented(self) -> str:
        """The full name of the documented object (the anchor's)."""
        return f"{self.module}.{self.anchor}"


_classes_cache: dict[str, set[str]] = {}


def _classes_of(path: Path) -> set[str]:
    """Return the names of the top-level classes of a module file."""
    key = str(path)
    if key not in _classes_cache:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        _classes_cache[key] = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    return _classes_cache[key]


def target_of(t: xref.Translation) -> Target:
    """Find the module, qualified name and viewcode anchor of a translation.

    autodoc documents top-level functions and classes and the methods of
    those classes, so viewcode has an anchor for exactly those; a function
    nested in a function (a spawned fun) is shown at its enclosing function.
    """
    module = t.path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    parts = t.python.removeprefix(module + ".").split(".")
    path = xref.package_dir().parent / t.path
    if parts[0] in _classes_of(path) and len(parts) > 1:
        anchor = ".".join(parts[:2])
    else:
        anchor = parts[0]
    return Target(module, ".".join(parts), anchor)


_translations: list[xref.Translation] | None = None


def translations() -> list[xref.Translation]:
    """Return ``xref.translations()``, read once per build (it parses every module)."""
    global _translations
    if _translations is None:
        _translations = xref.translations()
    return _translations


def grouped() -> dict[str, list[xref.Translation]]:
    """Return the translations by Erlang module, in the order of the docstrings."""
    by_module: dict[str, list[xref.Translation]] = defaultdict(list)
    for t in translations():
        by_module[t.erlang.split(":", 1)[0]].append(t)
    return by_module


def _sort_key(erlang: str) -> tuple[str, int]:
    """Sort ``module:fun/arity`` by function name, then arity as a number."""
    fun, _, arity = erlang.split(":", 1)[1].rpartition("/")
    return fun.strip("'"), int(arity)


def rows_for(module: str, by_module: dict[str, list[xref.Translation]]) -> list[tuple[str, list[xref.Translation]]]:
    """Return ``[(erlang, translations), ...]`` for one Erlang module, in reading order.

    pg2 and pg follow their file's order (``xref.pg2_functions()``,
    ``xref.pg_functions()``) and keep the functions without a translation
    (an empty list); other modules are sorted by function name and arity.
    """
    found: dict[str, list[xref.Translation]] = defaultdict(list)
    for t in by_module.get(module, []):
        found[t.erlang].append(t)
    in_file_order = {"pg2": xref.pg2_functions, "pg": xref.pg_functions}
    if module in in_file_order:
        order = [f"{module}:{f}" for f in in_file_order[module]()]
        order += sorted((e for e in found if e not in order), key=_sort_key)
    else:
        order = sorted(found, key=_sort_key)
    return [(e, found.get(e, [])) for e in order]


# == The generated page fragments ========================================================


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (keeps Sphinx's rebuild check quiet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def reading_guide_markdown() -> str:
    """Return the MyST text of the reading guide's tables: a heading and a directive per module."""
    by_module = grouped()
    translations = sum(len(v) for v in by_module.values())
    mapped = {t.erlang for ts in by_module.values() for t in ts}
    out = [
        "<!-- Generated by docs/_ext/repg2_docs.py from the Erlang: lines of repg2; do not edit. -->",
        "",
        f"**{len(mapped)} Erlang functions** of {len(by_module)} modules, by {translations} `Erlang:` lines.",
    ]
    for module, version, functions in (
        ("pg2", "OTP 18.3", xref.pg2_functions()),
        ("pg", "OTP 25.2.3", xref.pg_functions()),
    ):
        missing = [f for f in functions if f"{module}:{f}" not in mapped]
        done = len(functions) - len(missing)
        out.append(f"**{module}.erl ({version}): {done} of {len(functions)} functions translated.**")
        if missing:
            out.append(f"Not translated in {module}.erl: " + ", ".join(f"`{f}`" for f in missing) + ".")
    out.append("")
    listed: set[str] = set()
    for title, modules, blurb in SECTIONS:
        present = [m for m in modules if m in by_module or m in ("pg2", "pg")]
        if not present:
            continue
        out += [f"## {title}", "", blurb, ""]
        for module in present:
            listed.add(module)
            if len(present) > 1:
                out += [f"### `{module}`", ""]
            out += ["```{erlang-xref} " + module, "```", ""]
    others = sorted(m for m in by_module if m not in listed)
    if others:
        out += ["## Other", "", "Erlang modules named by a docstring that the sections above do not group.", ""]
        for module in others:
            out += [f"### `{module}`", "", "```{erlang-xref} " + module, "```", ""]
    return "\n".join(out)


def sync_notebooks() -> list[str]:
    """Copy ``../notebooks/*.ipynb`` into ``docs/notebooks``; return their names in order.

    Sphinx reads sources only under ``docs/``, so the notebooks are copied
    (a copy whose original is gone is removed). They are rendered as saved:
    ``nb_execution_mode = "off"``.
    """
    sources = sorted(NOTEBOOKS_SRC.glob("*.ipynb")) if NOTEBOOKS_SRC.is_dir() else []
    names = {p.name for p in sources}
    if NOTEBOOKS_DST.is_dir():
        for stale in NOTEBOOKS_DST.glob("*.ipynb"):
            if stale.name not in names:
                stale.unlink()
    for src in sources:
        dst = NOTEBOOKS_DST / src.name
        data = src.read_bytes()
        if not dst.exists() or dst.read_bytes() != data:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
    return [p.stem for p in sources]


def notebook_summary(path: Path) -> tuple[str, str]:
    """Return a notebook's title (its first heading) and the first sentence of its "What this shows."."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    text = "".join(cells[0].get("source", [])) if cells else ""
    title = next((line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")), path.stem)
    shows = ""
    if "**What this shows.**" in text:
        rest = " ".join(text.split("**What this shows.**", 1)[1].split())
        shows = rest.split(". ", 1)[0].rstrip(".") + "."
    return title, shows.replace("|", "\\|")


def notebooks_markdown(stems: list[str]) -> str:
    """Return the MyST text that lists the notebooks in a table, or says there are none yet.

    The front page places each notebook in the learner's order (its
    toctrees name ``notebooks/NN-...``); a notebook it does not name yet is
    put in a toctree here, so that it still has its place in the book.
    """
    head = "<!-- Generated by docs/_ext/repg2_docs.py from ../notebooks; do not edit. -->\n\n"
    if not stems:
        return head + "```{note}\nNo notebooks yet: `notebooks/` is empty in this checkout.\n```\n"
    rows = ["| notebook | what it shows |", "|---|---|"]
    for stem in stems:
        title, shows = notebook_summary(NOTEBOOKS_SRC / f"{stem}.ipynb")
        rows.append(f"| [{title}](notebooks/{stem}.ipynb) | {shows} |")
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    placed = set(re.findall(r"^notebooks/(\S+)\s*$", index, re.M))
    rest = [stem for stem in stems if stem not in placed]
    out = head + "\n".join(rows) + "\n"
    if rest:
        out += "\n```{toctree}\n:maxdepth: 1\n:caption: Other notebooks\n\n"
        out += "\n".join(f"notebooks/{stem}" for stem in rest) + "\n```\n"
    return out


def more_modules_markdown() -> str:
    """Return an automodule section for every ``repg2`` module that no tour page documents.

    The tour pages name their modules by hand, in reading order; a module
    added to the package later still gets its reference (and its
    ``[source]`` anchors, which the reading guide links to) here.
    """
    covered = set()
    for page in (DOCS / "tour").glob("*.md"):
        covered.update(re.findall(r"^\.\. automodule:: (\S+)", page.read_text(encoding="utf-8"), re.M))
    root = xref.package_dir()
    modules = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(("repg2", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        if module not in covered and not module.endswith(".__main__"):  # __main__ runs the command line
            modules.append(module)
    out = ["<!-- Generated by docs/_ext/repg2_docs.py: the modules no other tour page documents. -->", ""]
    if not modules:
        return "\n".join(out + ["Every module of `repg2` is documented on the pages above.", ""])
    for module in modules:
        out += [f"## `{module}`", "", "```{eval-rst}", f".. automodule:: {module}", "```", ""]
    return "\n".join(out)


def benchmarks_markdown() -> str:
    """Return a section per ``benchmarks/*.py``, its docstring read with ``ast`` (nothing is run)."""
    out = ["<!-- Generated by docs/_ext/repg2_docs.py from benchmarks/*.py; do not edit. -->", ""]
    scripts = sorted((DOCS.parent / "benchmarks").glob("bench_*.py"))
    for path in scripts:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not doc:
            continue
        out += [f"### `benchmarks/{path.name}`", "", "```{eval-rst}", doc, "```", ""]
    if len(out) == 2:
        out.append("No benchmarks in this checkout.")
    return "\n".join(out)


def trace_log_markdown(log: Path) -> str:
    """Return a collapsed block with a traced picture's text log, or nothing for a hand-drawn one."""
    if not log.exists():
        return "<!-- no trace log: this picture is drawn from a hand-written message list -->\n"
    text = html.escape(log.read_text(encoding="utf-8").rstrip())
    return (
        '<details class="trace-log"><summary>The same trace as text</summary>\n'
        f'<div class="highlight"><pre>{text}</pre></div>\n</details>\n'
    )


def on_builder_inited(app: Sphinx) -> None:
    """Write every generated piece before Sphinx looks for changed sources."""
    global _translations, _needed
    _translations = _needed = None  # read the code afresh for this build
    _write_if_changed(GENERATED / "more-modules.md", more_modules_markdown())
    _write_if_changed(GENERATED / "reading-guide-tables.md", reading_guide_markdown())
    _write_if_changed(GENERATED / "notebooks-toctree.md", notebooks_markdown(sync_notebooks()))
    _write_if_changed(GENERATED / "benchmarks.md", benchmarks_markdown())
    figures = runpy.run_path(str(DOCS / "_scripts" / "make_figures.py"))
    outdir = DOCS / "_static" / "figures"
    written = figures["main"](outdir)
    _write_if_changed(GENERATED / "figures-source.md", figures["source_note"](outdir) + "\n")
    for svg in written:
        _write_if_changed(GENERATED / f"trace-{svg.stem}.md", trace_log_markdown(svg.with_suffix(".log")))
    logger.info("repg2_docs: figures %s (%s)", ", ".join(p.name for p in written), outdir)


# == The erlang-xref directive ================================================================


class ErlangXref(SphinxDirective):
    """``{erlang-xref} MODULE``: the reading guide's table for one Erlang module."""

    required_arguments = 1
    has_content = False
    option_spec = {"class": directives.class_option}

    def run(self) -> list[nodes.Node]:
        """Build the table: Erlang function | Python translation | source."""
        module = self.arguments[0]
        for path in sorted(xref.package_dir().rglob("*.py")):
            self.env.note_dependency(str(path))  # any docstring may add a row
        rows = rows_for(module, grouped())
        table = nodes.table(classes=["reading-guide", "longtable", *self.options.get("class", [])])
        tgroup = nodes.tgroup(cols=3)
        table += tgroup
        for width in (30, 48, 22):
            tgroup += nodes.colspec(colwidth=width)
        thead = nodes.thead()
        tgroup += thead
        thead += self._row([nodes.Text("Erlang"), nodes.Text("Python translation"), nodes.Text("source")])
        tbody = nodes.tbody()
        tgroup += tbody
        for erlang, found in rows:
            label = label_for(erlang)
            target = nodes.target("", "", ids=[label], names=[label])
            self.state.document.note_explicit_target(target)
            first = nodes.paragraph()
            first += target
            first += nodes.literal(erlang, erlang)
            if not found:
                missing = nodes.paragraph(classes=["xref-missing"])
                missing += nodes.emphasis("no translation", "no translation")
                tbody += self._row([first, missing, nodes.paragraph(text="—")], classes=["xref-missing-row"])
                continue
            python_cell, source_cell = self._translation_cells(found)
            tbody += self._row([first, python_cell, source_cell])
        return [table]

    def _translation_cells(self, found: list[xref.Translation]) -> tuple[list[nodes.Node], list[nodes.Node]]:
        """Return the Python and source cells: one line per distinct Python definition.

        Several ``Erlang:`` lines can name one Python definition (one line
        per clause of ``handle_call/3``): their notes are joined.
        """
        # The module that translates this Erlang module comes first
        # (repg2/pg2.py for pg2:...), then any other code that names it.
        counts: dict[str, int] = defaultdict(int)
        for t in found:
            counts[t.path] += 1
        home = self._home_path(found[0].erlang.split(":", 1)[0])
        ordered = sorted(found, key=lambda t: (t.path != home, -counts[t.path], t.path, t.line))
        by_python: dict[str, list[xref.Translation]] = {}
        for t in ordered:
            by_python.setdefault(t.python, []).append(t)
        python_cell: list[nodes.Node] = []
        source_cell: list[nodes.Node] = []
        for python, ts in by_python.items():
            t = ts[0]
            where = target_of(t)
            shown = python.removeprefix("repg2.")
            ref = addnodes.pending_xref(
                "", refdomain="py", reftype="obj", reftarget=where.documented, refexplicit=True, refwarn=False
            )
            ref["py:module"] = None
            ref["py:class"] = None
            ref += nodes.literal(shown, shown, classes=["xref", "py", "py-obj"])
            para = nodes.paragraph()
            para += ref
            for note in (x.note for x in ts if x.note):  # one line per clause
                para += nodes.inline(note, note, classes=["xref-note"])
            python_cell.append(para)
            page = "_modules/" + where.module.replace(".", "/")
            uri = self.env.app.builder.get_relative_uri(self.env.docname, page) + "#" + where.anchor
            text = f"{t.path.removeprefix('repg2/')}:{t.line}"
            link = nodes.reference(text, "", refuri=uri, classes=["xref-source"])
            link += nodes.literal(text, text)
            source = nodes.paragraph()
            source += link
            source_cell.append(source)
        return python_cell, source_cell

    @staticmethod
    def _home_path(erlang_module: str) -> str:
        """Return the file that translates an Erlang module (``repg2/pg2.py`` for ``pg2``), if any."""
        counts: dict[str, int] = defaultdict(int)
        for t in grouped().get(erlang_module, []):
            counts[t.path] += 1
        named = f"repg2/{erlang_module}.py"
        if named in counts or f"repg2/{erlang_module}_.py" not in counts:
            return named if named in counts else max(counts, key=lambda p: counts[p], default="")
        return f"repg2/{erlang_module}_.py"

    @staticmethod
    def _row(cells: Iterable[nodes.Node | list[nodes.Node]], classes: list[str] | None = None) -> nodes.row:
        """Make a table row, each cell a node or a list of nodes."""
        row = nodes.row(classes=classes or [])
        for cell in cells:
            entry = nodes.entry()
            if isinstance(cell, nodes.Text):
                entry += nodes.paragraph("", "", cell)
            elif isinstance(cell, list):
                entry.extend(cell)
            else:
                entry += cell
            row += entry
        return row


# == Docstrings: Erlang: fields and headings ====================================================

_UNDERLINE = re.compile(r"^\s*(-{3,}|={3,}|~{3,}|\^{3,})\s*$")
_RST_SPECIAL = re.compile(r"([\\`*|_])")


def _escape(text: str) -> str:
    """Escape reST inline markup characters in free text."""
    return _RST_SPECIAL.sub(r"\\\1", text)


def on_process_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Render ``Erlang:`` lines as linked fields and docstring section headings as rubrics.

    Lines inside a literal block (after a paragraph ending ``::``) are left
    alone: a docstring may show an ``Erlang:`` line as an example.
    """
    out: list[str] = []
    literal_indent: int | None = None  # the indent of the paragraph that opened a literal block
    skip_underline = False
    for i, line in enumerate(lines):
        if skip_underline:  # the underline of a heading just made a rubric
            skip_underline = False
            continue
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if not line.strip() or indent > literal_indent:
                out.append(line)
                continue
            literal_indent = None
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        heading = line.strip()
        if (
            heading
            and _UNDERLINE.match(nxt)
            and len(nxt.strip()) >= len(heading)
            and not _UNDERLINE.match(line)
            and (i == 0 or not lines[i - 1].strip())
        ):
            out += [f"{line[:indent]}.. rubric:: {heading}", ""]
            skip_underline = True
            continue
        match = xref._XREF.match(line)
        if match or _NONE_LINE.match(line):
            if out and out[-1].strip() and not out[-1].lstrip().startswith(":Erlang:"):
                out.append("")
            if match and name.split(".")[1] in ("tools", "testing", "examples"):
                # Tools name an original they follow (the tracer follows dbg); it is no row of the reading guide.
                erl = f"{match['module']}:{match['fun']}/{match['arity']}"
                note = match["note"].strip()
                field = f":Follows: ``{erl}``" + (f" {_escape(note)}" if note else "")
            elif match:
                erl = f"{match['module']}:{match['fun']}/{match['arity']}"
                note = match["note"].strip()
                field = f":Erlang: :ref:`{_escape_ref(erl)} <{label_for(erl)}>`" + (f" {_escape(note)}" if note else "")
            else:
                field = ":Erlang: " + _escape(line.strip().removeprefix("Erlang:").strip())
            out.append(line[:indent] + field)
            if nxt.strip() and not (xref._XREF.match(nxt) or _NONE_LINE.match(nxt)):
                out.append("")
            continue
        out.append(line)
        if line.rstrip().endswith("::"):
            literal_indent = indent
    lines[:] = out


_NONE_LINE = re.compile(r"^\s*Erlang:\s+none\b")


def _escape_ref(text: str) -> str:
    """Escape a ``:ref:`` title: ``<`` and backticks would end it early."""
    return text.replace("\\", "\\\\").replace("`", "\\`").replace("<", "\\<")


# == Which private definitions the reference shows ===============================================

_needed: set[str] | None = None


def _documented_translations() -> set[str]:
    """Return the full names autodoc must document for every reading-guide link to land."""
    global _needed
    if _needed is None:
        _needed = set()
        for t in translations():
            where = target_of(t)
            _needed.add(where.documented)
            if "." in where.anchor:  # a method: its class must be documented too
                _needed.add(f"{where.module}.{where.anchor.split('.')[0]}")
    return _needed


def on_skip_member(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Skip private Python-only helpers; keep every private definition that translates Erlang.

    The reference shows the public API and everything that has an
    ``Erlang: module:function/arity`` line (``_do_multi_call`` is
    ``gen_server:send_nodes/4``); a private helper that exists only because
    of Python (``_check_name``) is left to the ``[source]`` pages. That also
    keeps the build fast: a third of the package's definitions are such
    helpers.
    """
    if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
        return None
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    return f"{module}.{qualname}" not in _documented_translations()


# == After the build: every source link must land ===============================================


def on_build_finished(app: Sphinx, exception: Exception | None) -> None:
    """Warn about any reading-guide source link whose viewcode anchor does not exist."""
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    pages: dict[str, str] = {}
    for t in translations():
        where = target_of(t)
        page = outdir / "_modules" / (where.module.replace(".", "/") + ".html")
        if str(page) not in pages:
            pages[str(page)] = page.read_text(encoding="utf-8") if page.exists() else ""
        if f'id="{where.anchor}"' not in pages[str(page)]:
            logger.warning(
                "reading guide: %s (%s) links to %s#%s, which viewcode did not write",
                t.erlang,
                t.python,
                page.relative_to(outdir),
                where.anchor,
                type="repg2",
                subtype="source_link",
            )


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive and the event handlers."""
    app.add_directive("erlang-xref", ErlangXref)
    app.connect("builder-inited", on_builder_inited)
    app.connect("autodoc-process-docstring", on_process_docstring, priority=600)  # after napoleon (500)
    app.connect("autodoc-skip-member", on_skip_member)
    app.connect("build-finished", on_build_finished)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
