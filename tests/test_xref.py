"""The cross-reference contract: every definition names its Erlang original, and xref maps them."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from repg2.tools import xref
from repg2.tools.cli import main

MINI = Path(__file__).parent / "data" / "mini_pg2.erl"
MINI_PG = Path(__file__).parent / "data" / "mini_pg.erl"


def test_every_definition_has_an_erlang_line() -> None:
    """Every def and class of the translation modules carries 'Erlang: module:function/arity' or 'Erlang: none (why)'."""
    assert xref.missing_xrefs() == []


def test_tools_testing_and_examples_carry_no_filler_lines() -> None:
    """Outside the translation modules an 'Erlang:' line names an original the code follows, never 'none'."""
    assert xref.filler_lines() == []


def test_only_the_top_level_modules_are_translations() -> None:
    """The map is built from repg2/*.py alone: the tracer's dbg lines are not translations."""
    paths = {t.path for t in xref.translations()}
    assert "repg2/pg2.py" in paths
    assert all(p.count("/") == 1 for p in paths), paths


def test_map_opens_with_pg2_in_the_erlang_files_order(capsys) -> None:  # type: ignore[no-untyped-def]
    """Plain xref prints pg2 first, its functions as pg2.erl orders them, then the other modules."""
    assert main(["xref"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert rows[:4] == ["pg2:start_link/0", "pg2:start/0", "pg2:create/1", "pg2:delete/1"]
    firsts = list(dict.fromkeys(r.removeprefix("pg2:") for r in rows if r.startswith("pg2:")))
    assert firsts == xref.pg2_functions()
    first_other = next(i for i, r in enumerate(rows) if not r.startswith("pg2:"))
    assert not any(r.startswith("pg2:") for r in rows[first_other:])


def test_every_pg2_function_is_translated() -> None:
    """All 30 functions of OTP 18.3's pg2.erl map to a Python translation."""
    mapped = {t.erlang for t in xref.translations()}
    functions = xref.pg2_functions()
    assert len(functions) == 30 and functions[0] == "start_link/0" and functions[-1] == "do_monitor/1"
    assert [f for f in functions if f"pg2:{f}" not in mapped] == []


def test_pg2_translations_keep_the_erlang_file_order() -> None:
    """repg2/pg2.py defines the translations in pg2.erl's order, so the two files read side by side."""
    order = [t.erlang.removeprefix("pg2:") for t in xref.translations() if t.path == "repg2/pg2.py"]
    firsts = list(dict.fromkeys(f for f in order if f in xref.pg2_functions()))
    assert firsts == xref.pg2_functions()


def test_map_prints_pg_second_in_the_erlang_files_order(capsys) -> None:  # type: ignore[no-untyped-def]
    """Plain xref prints pg right after pg2, its functions as pg.erl orders them, and pg's coverage line."""
    assert main(["xref"]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    modules = list(dict.fromkeys(r.split(":")[0] for r in rows))
    assert modules[:2] == ["pg2", "pg"]
    firsts = list(dict.fromkeys(r.removeprefix("pg:") for r in rows if r.startswith("pg:")))
    assert firsts == xref.pg_functions()
    assert "== pg (pg.erl of OTP 25.2.3, in the file's order) ==" in out
    assert "pg.erl (OTP 25.2.3): 43 of 43 functions translated." in out


def test_every_pg_function_is_translated() -> None:
    """All 43 functions of OTP 25.2.3's pg.erl map to a Python translation, both arities of each API name included."""
    mapped = {t.erlang: t.python for t in xref.translations()}
    functions = xref.pg_functions()
    assert len(functions) == 43 and functions[0] == "start_link/0" and functions[-1] == "flush/1"
    assert [f for f in functions if f"pg:{f}" not in mapped] == []
    assert mapped["pg:join/2"] == mapped["pg:join/3"] == "repg2.pg.join"


def test_pg_translations_keep_the_erlang_file_order() -> None:
    """repg2/pg.py defines its functions in pg.erl's order of names (one def serves both arities of a name)."""
    names = [t.erlang.removeprefix("pg:").split("/")[0] for t in xref.translations() if t.path == "repg2/pg.py"]
    erlang_names = list(dict.fromkeys(f.split("/")[0] for f in xref.pg_functions()))
    assert list(dict.fromkeys(n for n in names if n in erlang_names)) == erlang_names


def test_pg_function_list_matches_the_installed_pg_erl() -> None:
    """The packaged list of pg.erl's functions is what the reader finds in OTP 25.2.3's own pg.erl."""
    source = Path("/usr/lib/erlang/lib/kernel-8.5.3/src/pg.erl")
    if not source.exists():
        pytest.skip("OTP 25.2.3's pg.erl is not installed here (apt-get install erlang-src)")
    module, functions = xref.erlang_functions(source.read_text())
    assert (module, functions) == ("pg", xref.pg_functions())
    rows, missing = xref.side_by_side(source.read_text())
    assert len(rows) == 43 and missing == []


def test_overload_declarations_need_their_own_erlang_line_and_map_once(tmp_path: Path) -> None:
    """An @overload declaration names its arity; the mapping takes the lines of the function after it, once."""
    package = tmp_path / "repg2"
    package.mkdir()
    (package / "mod.py").write_text(
        "from typing import overload\n"
        '@overload\ndef f() -> int:\n    """Erlang: m:f/0"""\n'
        "@overload\ndef f(x: int, /) -> int: ...\n"
        'def f(*args):\n    """Erlang: m:f/0\n    Erlang: m:f/1\n    """\n'
        'def g():\n    """No cross-reference here."""\n'
    )
    assert xref.missing_xrefs(package) == ["repg2/mod.py:6 f", "repg2/mod.py:11 g"]
    assert [(t.erlang, t.line) for t in xref.translations(package)] == [("m:f/0", 7), ("m:f/1", 7)]


def test_reader_of_erlang_function_heads() -> None:
    """The Erlang reader finds each function once, with its arity, past comments, strings and guards."""
    module, functions = xref.erlang_functions(MINI.read_text())
    assert module == "pg2"
    assert functions[:6] == ["start_link/0", "start/0", "create/1", "delete/1", "join/2", "leave/2"]
    assert functions.count("handle_call/3") == 1 and functions.count("group_members/1") == 1
    assert functions[-1] == "not_in_repy2/3"
    assert len(functions) == 31


def test_side_by_side_names_the_untranslated() -> None:
    """xref FILE pairs each Erlang function with its translation and names those without one."""
    rows, missing = xref.side_by_side(MINI.read_text())
    assert missing == ["pg2:not_in_repy2/3"]
    by_name = dict(rows)
    assert [t.python for t in by_name["pg2:join/2"]] == ["repg2.pg2.join"]
    clauses = [t.note for t in by_name["pg2:handle_call/3"]]
    assert "({join, Name, Pid})" in clauses


def test_command_line_side_by_side(capsys) -> None:  # type: ignore[no-untyped-def]
    """python -m repg2 xref FILE prints the table and exits 1 when a function has no translation."""
    assert main(["xref", str(MINI)]) == 1
    out = capsys.readouterr().out
    assert "pg2:join/2" in out and "repg2.pg2.join" in out
    assert "30 of 31 Erlang functions have a Python translation." in out
    assert "Without one: pg2:not_in_repy2/3" in out


def test_command_line_map_and_check(capsys) -> None:  # type: ignore[no-untyped-def]
    """python -m repg2 xref prints the whole map; --check passes when nothing lacks a line."""
    assert main(["xref"]) == 0
    assert "pg2.erl (OTP 18.3): 30 of 30 functions translated." in capsys.readouterr().out
    assert main(["xref", "--check"]) == 0


def test_command_line_errors(capsys) -> None:  # type: ignore[no-untyped-def]
    """A missing file gives a one-line error and exit status 2; a bad command exits non-zero."""
    assert main(["xref", "/nonexistent/pg2.erl"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m repg2 xref: cannot read /nonexistent/pg2.erl") and "\n" not in err
    with pytest.raises(SystemExit) as info:
        main(["nope"])
    assert info.value.code == 2


def test_module_runs_as_a_script() -> None:
    """python -m repg2 is the command line (checked once through a real subprocess)."""
    result = subprocess.run([sys.executable, "-m", "repg2", "xref"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "30 of 30 functions translated" in result.stdout


def test_side_by_side_prints_erlang_beside_python(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """xref --side-by-side FILE puts each Erlang function's text beside its translation, in the file's order."""
    page = tmp_path / "side.html"
    assert main(["xref", "--side-by-side", str(MINI), "--width", "140", "--html", str(page)]) == 1
    out = capsys.readouterr().out
    join_at = out.index("=== pg2:join/2  ->  repg2.pg2.join")
    assert out.index("=== pg2:create/1") < join_at < out.index("=== pg2:leave/2")
    block = out[join_at:].split("\n\n", 1)[0]
    assert "join(_Name, Pid) when is_pid(Pid) -> ok." in block and "def join(name: Name, pid: Pid)" in block
    assert "=== pg2:not_in_repy2/3  ->  no Python translation" in out
    assert "Without one: pg2:not_in_repy2/3" in out
    html_text = page.read_text()
    assert html_text.startswith("<!DOCTYPE html>") and "join(_Name, Pid) when is_pid(Pid) -&gt; ok." in html_text


def test_side_by_side_names_dangling_python_references() -> None:
    """A Python cross-reference to a function the reader's file does not have is named."""
    source = "-module(pg2).\ncreate(Name) -> ok.\n"
    report = xref.side_by_side_report(source)
    assert "pg2:join/2" in report["dangling"]  # type: ignore[operator]
    assert report["untranslated"] == []
    text, missing = xref.format_side_by_side_text(source, 100)
    assert missing == 0 and "functions this file does not have: " in text


def test_erlang_function_texts_cover_all_clauses() -> None:
    """Each function's text runs over all its clauses and stops before the next function."""
    module, texts = xref.erlang_function_texts(MINI.read_text())
    assert module == "pg2"
    assert texts["handle_call/3"].count("handle_call(") == 2
    assert "handle_cast" not in texts["handle_call/3"]
    assert texts["start_link/0"] == "start_link() -> ok."


def test_html_needs_side_by_side(capsys) -> None:  # type: ignore[no-untyped-def]
    """--html without --side-by-side is a one-line error."""
    assert main(["xref", "--html", "x.html"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_reader_edge_cases() -> None:
    """Strings with escapes, character literals, calls at column 0 and trailing comments do not fool the reader."""
    source = (
        "-module(m).\n"
        "called_at_column_0(x).\n"
        'f(A) -> "a \\" ( b", $(, A.\n'
        "% a comment after f\n"
        "\n"
        "g([A, B], {C}) when A > B -> C.\n"
        "h(<<X:8>>) -> X.\n"
        "broken(A] -> A.\n"
        "-spec k() -> ok.\n"
        "k() -> ok.\n"
    )
    module, functions = xref.erlang_functions(source)
    assert module == "m"
    assert functions == ["f/1", "g/2", "h/1", "k/0"]
    _module, texts = xref.erlang_function_texts(source)
    assert texts["f/1"] == 'f(A) -> "a \\" ( b", $(, A.'  # the trailing comment and blank line are dropped


def test_missing_xrefs_and_map_on_a_package_without_them(tmp_path: Path) -> None:
    """The contract check names a definition without an 'Erlang:' line; the map names untranslated pg2 functions."""
    package = tmp_path / "repg2"
    package.mkdir()
    (package / "mod.py").write_text(
        'def f():\n    """No cross-reference here."""\n\n\ndef g():\n    """Erlang: none (fine)"""\n'
    )
    assert xref.missing_xrefs(package) == ["repg2/mod.py:1 f"]
    text = xref.format_map(package)
    assert "pg2.erl (OTP 18.3): 0 of 30 functions translated." in text and "Not translated: start_link/0" in text
    assert "pg.erl (OTP 25.2.3): 0 of 43 functions translated." in text


def test_html_names_dangling_references() -> None:
    """The HTML page also names the Python cross-references the file does not have."""
    page = xref.format_side_by_side_html("-module(pg2).\ncreate(Name) -> ok.\n")
    assert "functions this file does not have" in page and "pg2:join/2" in page


def test_html_that_cannot_be_written(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An --html path that cannot be written gives a one-line error and exit status 2."""
    target = tmp_path / "no" / "such" / "dir" / "x.html"
    assert main(["xref", "--side-by-side", str(MINI), "--html", str(target)]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_every_xref_command_the_readme_and_the_book_show_runs_as_shown(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The xref commands of README.md and the reading pages parse and run, with mini pg2.erl and pg.erl for the reader's copies."""
    root = Path(__file__).resolve().parent.parent
    shown = set()
    for doc in ["README.md", "docs/reading-guide.md", "docs/reading-erlang.md"]:
        for line in (root / doc).read_text(encoding="utf-8").splitlines():
            found = re.search(r"python -m repg2 (xref[^`#\n]*)", line)
            if found:
                shown.add(found.group(1).strip())
    assert "xref --side-by-side pg2.erl --html pg2.html" in shown, shown
    for command in sorted(shown):
        minis = {"pg2.erl": str(MINI), "pg.erl": str(MINI_PG)}
        args = [minis.get(a, str(tmp_path / a) if a.endswith(".html") else a) for a in shlex.split(command)]
        assert main(args) in (0, 1), command  # 1: the mini file has a function without a translation
        for page in [a for a in args if a.endswith(".html")]:
            assert Path(page).read_text(encoding="utf-8").lstrip().startswith("<!DOCTYPE html"), command
    capsys.readouterr()
