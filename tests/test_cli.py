"""``python -m repg2``'s command line, in-process: what each option sets before the command runs.

The commands themselves are driven as a person drives them elsewhere
(``test_shell.py``, ``test_preflight.py``, ``test_bench.py``,
``test_xref.py``); here the command line's own part: a value that is no
number of seconds, the environment ``--epmd-port`` and ``--port`` stand
for, ``--verbose``, ``xref --check`` failing, and the demo's dispatch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from repg2.tools import cli, demo, shell, xref

pytestmark = pytest.mark.timeout(60)

MINI = Path(__file__).parent / "data" / "mini_pg2.erl"


@pytest.fixture
def package_log_level() -> Iterator[None]:
    """Restore the 'repg2' logger's level after a command that sets it."""
    logger = logging.getLogger("repg2")
    level = logger.level
    yield
    logger.setLevel(level)


def test_a_ticktime_that_is_no_number_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--ticktime takes a positive number of seconds: text that is no number is refused in one line, status 2."""
    with pytest.raises(SystemExit) as stop:
        cli.main(["shell", "--name", "a@127.0.0.1", "--ticktime", "soon"])
    assert stop.value.code == 2
    assert "'soon' is not a positive number of seconds" in capsys.readouterr().err


@pytest.mark.usefixtures("package_log_level")
def test_shell_options_set_the_environment_and_the_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """--epmd-port and --port become ERL_EPMD_PORT and the listen range; --verbose logs the package at INFO."""
    for name in ("ERL_EPMD_PORT", "REPG2_DIST_LISTEN_MIN", "REPG2_DIST_LISTEN_MAX"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # restored after the test
    seen: dict[str, Any] = {}

    def fake_run(name: str, **kwargs: Any) -> int:
        seen.update(name=name, **kwargs)
        return 0

    monkeypatch.setattr(shell, "run", fake_run)
    argv = ["shell", "--name", "a@127.0.0.1", "--epmd-port", "4444", "--port", "4380-4389", "--verbose"]
    assert cli.main(argv) == 0
    assert seen["name"] == "a@127.0.0.1" and seen["connect"] is None
    assert os.environ["ERL_EPMD_PORT"] == "4444"
    assert (os.environ["REPG2_DIST_LISTEN_MIN"], os.environ["REPG2_DIST_LISTEN_MAX"]) == ("4380", "4389")
    assert logging.getLogger("repg2").level == logging.INFO


def test_demo_runs_the_demo_quietly_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``demo --quiet`` runs the demo with its narration off and returns its status."""
    asked: list[bool] = []
    monkeypatch.setattr(demo, "run", lambda quiet=False: asked.append(quiet) or 0)
    assert cli.main(["demo", "--quiet"]) == 0
    assert asked == [True]


def test_xref_check_lists_what_is_missing_and_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``xref --check`` prints each definition without its Erlang line and each filler line, then exits 1."""
    monkeypatch.setattr(xref, "missing_xrefs", lambda: ["repg2/x.py:3 f"])
    monkeypatch.setattr(xref, "filler_lines", lambda: ["repg2/tools/y.py:9"])
    assert cli.main(["xref", "--check"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "repg2/x.py:3 f",
        "1 definitions of the translation modules without an 'Erlang:' line",
        "repg2/tools/y.py:9",
        "1 'Erlang: none' lines outside the translation modules",
    ]


def test_xref_side_by_side_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    """``xref --side-by-side FILE`` without --html prints the two columns as text at the width asked."""
    assert cli.main(["xref", "--side-by-side", str(MINI), "--width", "120"]) in (0, 1)
    out = capsys.readouterr().out
    assert "pg2.py" in out or "repg2.pg2" in out
    assert max(len(line) for line in out.splitlines()) <= 120
