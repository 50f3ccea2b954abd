"""The cross-reference between the Erlang originals and their Python translations.

Every translated function in ``repg2`` says in its docstring which Erlang
function it translates, in a line of exactly this form::

    Erlang: pg2:join/2

This module collects those lines (by reading the package's source with
``ast``, so nothing is imported or run), and reads an Erlang source file
well enough to list its functions as ``name/arity``. ``python -m repg2
xref`` prints the map; ``python -m repg2 xref path/to/pg2.erl`` puts each
function of the reader's own copy of ``pg2.erl`` beside its translation and
names every function that has none.

It has no Erlang original: it is the tool that keeps the promise "every
function cross-references the Erlang original" checkable.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypedDict

__all__ = ["Translation", "erlang_functions", "pg2_functions", "pg_functions", "side_by_side", "translations"]

# Matches a line such as  Erlang: pg2:join/2  or  Erlang: pg2:handle_call/3 ({join, Name, Pid})
_XREF = re.compile(
    r"^\s*Erlang:\s+(?P<module>[a-z][A-Za-z0-9_@]*|'[^']+'):(?P<fun>[^/\s]+)/(?P<arity>\d+)(?P<note>.*)$"
)
_NONE = re.compile(r"^\s*Erlang:\s+none\b")


@dataclass(frozen=True)
class Translation:
    """One ``Erlang:`` line: which Erlang function a Python definition translates."""

    erlang: str  # "pg2:join/2"
    python: str  # "repg2.pg2.join"
    path: str  # "repg2/pg2.py"
    line: int  # line of the Python definition
    note: str  # e.g. "({join, Name, Pid})" for a clause
    end_line: int = 0  # last line of the Python definition


def package_dir() -> Path:
    """Return the directory of the ``repg2`` package."""
    return Path(__file__).resolve().parent.parent


def translation_modules(root: Path | None = None) -> list[Path]:
    """Return the translation modules: the top level of the package, without ``__init__``/``__main__``.

    The subpackages (``tools``, ``testing``, ``examples``) are not
    translations: they name an Erlang original only where they follow one.
    """
    root = root or package_dir()
    return [path for path in sorted(root.glob("*.py")) if not path.name.startswith("__")]


def translations(root: Path | None = None) -> list[Translation]:
    """Collect every ``Erlang: module:function/arity`` line of the translation modules."""
    root = root or package_dir()
    found: list[Translation] = []
    for path in translation_modules(root):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = "repg2." + ".".join(path.relative_to(root).with_suffix("").parts)
        found.extend(_walk(tree, module.removesuffix(".__init__"), path.relative_to(root.parent).as_posix(), []))
    return found


def _walk(node: ast.AST, module: str, path: str, outer: list[str]) -> list[Translation]:
    """Collect the ``Erlang:`` lines of the definitions under ``node``.

    An ``@overload`` declaration names its own arity, and the function after
    it names them all again: only that function, whose body is the
    translation, is collected.
    """
    found: list[Translation] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if _is_overload(child):
                continue
            qualname = ".".join([module, *outer, child.name])
            for line in (ast.get_docstring(child) or "").splitlines():
                match = _XREF.match(line)
                if match:
                    erl = f"{match['module']}:{match['fun']}/{match['arity']}"
                    end = child.end_lineno or child.lineno
                    found.append(Translation(erl, qualname, path, child.lineno, match["note"].strip(), end))
            found.extend(_walk(child, module, path, [*outer, child.name]))
        else:
            found.extend(_walk(child, module, path, outer))
    return found


def missing_xrefs(root: Path | None = None) -> list[str]:
    """List the definitions of the translation modules whose docstring has no ``Erlang:`` line at all.

    ``@overload`` declarations count as definitions: each names the arity it
    declares (pg.py's ``join(group, pids)`` says ``pg:join/2``,
    ``join(scope, group, pids)`` says ``pg:join/3``), and the function after
    them names both.
    """
    root = root or package_dir()
    missing: list[str] = []
    for path in translation_modules(root):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name.startswith("__") and node.name.endswith("__"):
                    continue
                doc = ast.get_docstring(node) or ""
                if not any(_XREF.match(line) or _NONE.match(line) for line in doc.splitlines()):
                    missing.append(f"{path.relative_to(root.parent).as_posix()}:{node.lineno} {node.name}")
    return missing


def _is_overload(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> bool:
    """Say whether a definition is decorated ``@overload`` (or ``@typing.overload``)."""
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Name) and decorator.id == "overload":
            return True
        if isinstance(decorator, ast.Attribute) and decorator.attr == "overload":
            return True
    return False


def filler_lines(root: Path | None = None) -> list[str]:
    """List the ``Erlang: none`` lines outside the translation modules (the contract forbids them there).

    Code under ``tools/``, ``testing/`` and ``examples/`` has no original to
    name; an ``Erlang:`` line there must name one it follows (the tracer
    follows ``dbg``), never explain its absence.
    """
    root = root or package_dir()
    found: list[str] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        for path in sorted(sub.rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _NONE.match(line):
                    found.append(f"{path.relative_to(root.parent).as_posix()}:{number}")
    return found


def pg2_functions() -> list[str]:
    """Return the functions of OTP 18.3's ``pg2.erl`` in file order, as ``name/arity``."""
    return _function_list("pg2_functions.txt")


def pg_functions() -> list[str]:
    """Return the 43 functions of OTP 25.2.3's ``pg.erl`` in file order, as ``name/arity``.

    The list is the compiler's (``pg:module_info(functions)`` without the
    funs and without ``module_info/0,1``, which every module gets), which
    is also the order of the file.
    """
    return _function_list("pg_functions.txt")


def _function_list(name: str) -> list[str]:
    """Read one of the packaged lists of an Erlang file's functions."""
    text = resources.files("repg2.tools").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


# The modules the map opens with, each in its Erlang file's order, with the
# file and version its coverage line names.
_LEADING: list[tuple[str, str]] = [("pg2", "pg2.erl (OTP 18.3)"), ("pg", "pg.erl (OTP 25.2.3)")]


# -- Reading an Erlang source file -------------------------------------------------

_HEAD = re.compile(r"^(?P<name>[a-z][A-Za-z0-9_@]*|'[^']+')\(")


def erlang_functions(source: str) -> tuple[str, list[str]]:
    """Return ``(module, ['name/arity', ...])`` for an Erlang source text, in file order.

    A function clause starts at column 0 with an atom and ``(``; the arity
    is the number of top-level arguments up to the matching ``)``. Comments,
    strings, character literals and nested brackets are skipped. Clauses
    of one function count once.
    """
    text = _strip_comments(source)
    module_match = re.search(r"^-module\(\s*([a-z][A-Za-z0-9_@]*|'[^']+')\s*\)", text, re.M)
    module = module_match.group(1) if module_match else "?"
    functions: list[str] = []
    seen: set[str] = set()
    for match in re.finditer(r"^(?:[a-z][A-Za-z0-9_@]*|'[^']+')\(", text, re.M):
        name = match.group(0)[:-1]
        arity = _arity(text, match.end())
        if arity is None:
            continue
        key = f"{name}/{arity}"
        if key not in seen:
            seen.add(key)
            functions.append(key)
    return module, functions


def _strip_comments(source: str) -> str:
    """Blank out ``%`` comments, keeping strings and ``$%`` characters intact."""
    out: list[str] = []
    for line in source.splitlines():
        keep: list[str] = []
        in_string = False
        i = 0
        while i < len(line):
            ch = line[i]
            if in_string:
                keep.append(ch)
                if ch == "\\" and i + 1 < len(line):
                    keep.append(line[i + 1])
                    i += 1
                elif ch == '"':
                    in_string = False
            elif ch == "$" and i + 1 < len(line):
                keep.append("$x")  # a character literal such as $% or $(
                i += 1
            elif ch == '"':
                in_string = True
                keep.append(ch)
            elif ch == "%":
                break
            else:
                keep.append(ch)
            i += 1
        out.append("".join(keep))
    return "\n".join(out)


def _arity(text: str, start: int) -> int | None:
    """Count the top-level arguments from just after ``(`` to its ``)``."""
    depth = 0
    args = 0
    saw_token = False
    i = start
    in_string = False
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            saw_token = True
        elif ch in "([{":
            depth += 1
            saw_token = True
        elif ch == "<" and text.startswith("<<", i):
            depth += 1
            saw_token = True
            i += 1
        elif ch == ">" and text.startswith(">>", i) and depth > 0:
            depth -= 1
            i += 1
        elif ch in ")]}":
            if depth == 0:
                if ch != ")":
                    return None
                # A function head is followed by "->" or "when"; a call at
                # column 0 (inside a macro, say) is not a definition.
                rest = text[i + 1 :].lstrip()
                if not (rest.startswith("->") or rest.startswith("when")):
                    return None
                return args + 1 if saw_token else 0
            depth -= 1
        elif ch == "," and depth == 0:
            args += 1
        elif not ch.isspace():
            saw_token = True
        i += 1
    return None


def side_by_side(erlang_source: str, root: Path | None = None) -> tuple[list[tuple[str, list[Translation]]], list[str]]:
    """Pair each function of an Erlang file with its Python translations.

    Returns:
        ``(rows, missing)``: ``rows`` is ``[('pg2:join/2', [Translation...]), ...]``
        in the Erlang file's order; ``missing`` names the functions with none.
    """
    module, functions = erlang_functions(erlang_source)
    by_erlang: dict[str, list[Translation]] = {}
    for t in translations(root):
        by_erlang.setdefault(t.erlang, []).append(t)
    rows = [(f"{module}:{f}", by_erlang.get(f"{module}:{f}", [])) for f in functions]
    return rows, [name for name, found in rows if not found]


def format_side_by_side(erlang_source: str, root: Path | None = None) -> tuple[str, int]:
    """Render :func:`side_by_side` as a text table; also return how many are missing."""
    rows, missing = side_by_side(erlang_source, root)
    width = max((len(name) for name, _ in rows), default=10)
    lines = [f"{'Erlang':<{width}}  Python"]
    for name, found in rows:
        if not found:
            lines.append(f"{name:<{width}}  -- no translation --")
            continue
        for i, t in enumerate(found):
            label = name if i == 0 else ""
            note = f"  {t.note}" if t.note else ""
            lines.append(f"{label:<{width}}  {t.python}  ({t.path}:{t.line}){note}")
    lines.append("")
    lines.append(f"{len(rows) - len(missing)} of {len(rows)} Erlang functions have a Python translation.")
    if missing:
        lines.append("Without one: " + ", ".join(missing))
    return "\n".join(lines), len(missing)


def format_map(root: Path | None = None) -> str:
    """Render the whole map: pg2, then pg, each in its Erlang file's order, then every other module; then coverage.

    pg2 comes first because it is what a reader opens beside ``pg2.py``, and
    pg, its successor, second; each follows its Erlang file (clauses of one
    function in the Python file's order). The other Erlang modules follow
    alphabetically, each in the order its translations appear in the Python
    source. The last lines say how many functions of ``pg2.erl`` and of
    ``pg.erl`` are translated.
    """
    found = translations(root)
    listed = {"pg2": pg2_functions(), "pg": pg_functions()}
    leading = [module for module, _title in _LEADING]
    lines: list[str] = []
    modules = sorted(
        {t.erlang.split(":")[0] for t in found}, key=lambda m: (leading.index(m) if m in leading else 2, m)
    )
    for module in modules:
        rows = [t for t in found if t.erlang.startswith(module + ":")]
        if module in listed:
            order = {f"{module}:{f}": i for i, f in enumerate(listed[module])}
            rows.sort(key=lambda t: (order.get(t.erlang, len(order)), t.line))
            title = dict(_LEADING)[module].replace(" (OTP", " of OTP").removesuffix(")")
            lines.append(f"== {module} ({title}, in the file's order) ==")
        else:
            rows.sort(key=lambda t: (t.path, t.line))
            lines.append(f"== {module} ==")
        for t in rows:
            note = f"  {t.note}" if t.note else ""
            lines.append(f"  {t.erlang:<40} {t.python}  ({t.path}:{t.line}){note}")
    mapped = {t.erlang for t in found}
    lines.append("")
    for module, title in _LEADING:
        functions = listed[module]
        missing = [f for f in functions if f"{module}:{f}" not in mapped]
        lines.append(f"{title}: {len(functions) - len(missing)} of {len(functions)} functions translated.")
        if missing:
            lines.append("Not translated: " + ", ".join(missing))
    return "\n".join(lines)


# -- Side by side: the reader's Erlang beside our Python ---------------------------


def erlang_function_texts(source: str) -> tuple[str, dict[str, str]]:
    """Return ``(module, {'name/arity': source text of all its clauses})`` in file order.

    A function's text runs from its first clause head to the line before
    the next function's head or the next attribute (``-spec``, ``-define``...),
    without the trailing blank and comment lines.
    """
    module, functions = erlang_functions(source)
    stripped = _strip_comments(source).splitlines()
    lines = source.splitlines()
    starts: list[tuple[int, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(stripped):
        head = _HEAD.match(line)
        if head is None:
            continue
        offset = sum(len(x) + 1 for x in stripped[:number]) + head.end()
        arity = _arity("\n".join(stripped), offset)
        if arity is None:
            continue
        key = f"{head.group('name')}/{arity}"
        if key not in seen:
            seen.add(key)
            starts.append((number, key))
    boundaries = [n for n, line in enumerate(stripped) if line.startswith("-")]
    texts: dict[str, str] = {}
    for index, (start, key) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(lines)
        end = min([end, *[b for b in boundaries if b > start]])
        body = lines[start:end]
        while body and (not body[-1].strip() or body[-1].lstrip().startswith("%")):
            body.pop()
        texts[key] = "\n".join(body)
    return module, {f: texts.get(f, "") for f in functions}


def python_text(t: Translation, root: Path | None = None) -> str:
    """Return the source text of the Python definition a cross-reference names."""
    base = (root or package_dir()).parent
    lines = (base / t.path).read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[t.line - 1 : (t.end_line or t.line)])


class SideBySide(TypedDict):
    """What :func:`side_by_side_report` returns."""

    module: str
    pairs: list[tuple[str, str, list[tuple[Translation, str]]]]  # (erlang_name, erlang_text, [(t, python_text)])
    untranslated: list[str]  # Erlang functions with no Python counterpart
    dangling: list[str]  # Python cross-references to functions of this module that the file does not have


def side_by_side_report(erlang_source: str, root: Path | None = None) -> SideBySide:
    """Pair each Erlang function's text with its Python translations' text.

    Returns:
        A dict with ``module``, ``pairs`` (``[(erlang_name, erlang_text,
        [(Translation, python_text)])]`` in the Erlang file's order),
        ``untranslated`` (Erlang functions with no Python counterpart) and
        ``dangling`` (Python cross-references to functions of this module
        that the file does not have).
    """
    module, texts = erlang_function_texts(erlang_source)
    found = translations(root)
    by_erlang: dict[str, list[Translation]] = {}
    for t in found:
        by_erlang.setdefault(t.erlang, []).append(t)
    pairs: list[tuple[str, str, list[tuple[Translation, str]]]] = []
    for function, text in texts.items():
        name = f"{module}:{function}"
        pairs.append((name, text, [(t, python_text(t, root)) for t in by_erlang.get(name, [])]))
    untranslated = [name for name, _text, ts in pairs if not ts]
    dangling = sorted(
        {t.erlang for t in found if t.erlang.startswith(module + ":") and t.erlang.split(":", 1)[1] not in texts}
    )
    return {"module": module, "pairs": pairs, "untranslated": untranslated, "dangling": dangling}


def _columns(left: str, right: str, width: int) -> list[str]:
    """Lay two texts out as two columns of ``width`` characters each."""
    lhs, rhs = left.expandtabs(4).splitlines(), right.expandtabs(4).splitlines()

    def cut(s: str) -> str:
        """Fit one line into its column, marking the cut."""
        return s if len(s) <= width else s[: width - 1] + "…"

    rows = []
    for i in range(max(len(lhs), len(rhs))):
        a = cut(lhs[i]) if i < len(lhs) else ""
        b = cut(rhs[i]) if i < len(rhs) else ""
        rows.append(f"{a:<{width}} │ {b}".rstrip())
    return rows


def format_side_by_side_text(erlang_source: str, width: int = 160, root: Path | None = None) -> tuple[str, int]:
    """Render each Erlang function beside its Python translation for a terminal.

    Returns:
        The text, and how many Erlang functions have no translation.
    """
    report = side_by_side_report(erlang_source, root)
    column = max(30, (width - 3) // 2)
    out: list[str] = []
    for name, text, translated in report["pairs"]:
        if not translated:
            out.append(f"=== {name}  ->  no Python translation")
            out.extend(_columns(text, "", column))
            out.append("")
            continue
        for t, py in translated:
            note = f" {t.note}" if t.note else ""
            out.append(f"=== {name}{note}  ->  {t.python}  ({t.path}:{t.line})")
            out.extend(_columns(text, py, column))
            out.append("")
    untranslated, dangling = report["untranslated"], report["dangling"]
    total = len(report["pairs"])
    out.append(f"{total - len(untranslated)} of {total} Erlang functions have a Python translation.")
    if untranslated:
        out.append("Without one: " + ", ".join(untranslated))
    if dangling:
        out.append("Python cross-references to functions this file does not have: " + ", ".join(dangling))
    return "\n".join(out), len(untranslated)


def format_side_by_side_html(erlang_source: str, root: Path | None = None) -> str:
    """Render each Erlang function beside its Python translation as a two-column HTML page."""
    import html

    report = side_by_side_report(erlang_source, root)
    module = html.escape(report["module"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{module}.erl beside RePy2</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}"
        "h2{font-size:1em;margin:1.5em 0 .3em}.row{display:grid;grid-template-columns:1fr 1fr;gap:1em}"
        "pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:.85em;margin:0}"
        ".none{color:#b00}</style></head><body>",
        f"<h1>{module}.erl beside its Python translation</h1>",
    ]
    for name, text, translated in report["pairs"]:
        label = html.escape(name)
        if not translated:
            parts.append(f'<h2>{label} <span class="none">no Python translation</span></h2>')
            parts.append(f'<div class="row"><pre>{html.escape(text)}</pre><pre></pre></div>')
            continue
        for t, py in translated:
            note = f" {html.escape(t.note)}" if t.note else ""
            where = html.escape(f"{t.python} ({t.path}:{t.line})")
            parts.append(f"<h2>{label}{note} &rarr; <code>{where}</code></h2>")
            parts.append(f'<div class="row"><pre>{html.escape(text)}</pre><pre>{html.escape(py)}</pre></div>')
    untranslated, dangling = report["untranslated"], report["dangling"]
    if untranslated:
        parts.append("<p>Without a translation: " + html.escape(", ".join(untranslated)) + "</p>")
    if dangling:
        parts.append("<p>Python cross-references to functions this file does not have: ")
        parts.append(html.escape(", ".join(dangling)) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
