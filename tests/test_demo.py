"""The README's first command: the narrated three-node demo runs to its summary."""

from __future__ import annotations

import re

import pytest

from repg2 import erlang
from repg2.testing import stop_pg2
from repg2.tools import demo

pytestmark = [pytest.mark.timeout(120), pytest.mark.distributed]


def test_demo_runs_to_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """python -m repg2 demo walks through joins, a death, a node kill, a partition and the heal, and ends on the summary."""
    stop_pg2()
    try:
        assert demo.run() == 0
    finally:
        stop_pg2()
    out = capsys.readouterr().out
    for step in [
        "bob dies",
        "is killed (no goodbye",
        "Partition:",
        "Heal:",
        "Summary: every node's view after the heal",
    ]:
        assert step in out
    # After the heal every node lists dave (on a) and erin (on b); alice's leave held; lobby's delete was undone.
    summary = out.split("Summary:")[1]
    # Members print in term order, where a pid's number comes first: either may lead.
    assert len(re.findall(r"\[(dave, erin|erin, dave)\]", summary)) == 3
    assert summary.count("['chat', 'lobby']") == 3
    assert "alice stays gone" in out and "'lobby' is back" in out
    assert erlang.nodes() == []
