"""``python -m repg2 bench``: the quick run produces its table and its JSON; a saved run re-renders.

Not a timing test: nothing here asserts how fast anything is, only that the
bench runs end to end on real nodes, reports every section, checks the
targets of issue 10, and that a saved report gives back the same table and
the plots.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from repg2.tools import bench

pytestmark = pytest.mark.distributed

SECTION_HEADERS = ["== reads ==", "== writes ==", "== throughput ==", "== heal ==", "== roundtrip ==", "== targets"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """Run ``python -m repg2 bench --quick --json FILE`` once, in its own process (it becomes a node)."""
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    done = subprocess.run(
        [sys.executable, "-m", "repg2", "bench", "--quick", "--no-progress", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.timeout(300)
def test_quick_run_prints_every_section_and_the_targets(quick_run: tuple[str, dict[str, Any]]) -> None:
    """The quick run's table has a block per section, the Erlang reference column, and the targets."""
    table, _report = quick_run
    for header in SECTION_HEADERS:
        assert header in table
    assert "x Erlang" in table and "x floor" in table
    assert "get_members (10 members)" in table and "SimpleQueue thread hand-off (floor)" in table


@pytest.mark.timeout(300)
def test_quick_run_json_holds_every_figure(quick_run: tuple[str, dict[str, Any]]) -> None:
    """Every figure has runs, a median within its min-max, and a floor that exists; targets are checked."""
    _table, report = quick_run
    assert report["meta"]["config"] == "quick"
    figures = {f["id"]: f for f in report["figures"]}
    expected = ["reads.get_members.1000", "writes.join_leave.3", "writes.trans.1", "throughput.4-shared.3"]
    for fid in [*expected, "heal.100", "rt.local.send", "rt.remote.dist"]:
        assert fid in figures, fid
    for f in figures.values():
        assert f["runs"] and f["min"] <= f["median"] <= f["max"], f
        assert f["floor"] is None or f["floor"] in figures
    assert figures["writes.join.3"]["erlang"] == report["reference"]["join_us"]["3"]
    assert {t["id"] for t in report["targets"]} >= {"reads_flat", "writes_3_nodes", "local_round_trip"}
    assert all(isinstance(t["met"], bool) for t in report["targets"])


@pytest.mark.timeout(300)
def test_a_saved_run_renders_the_same_table_and_the_plots(
    quick_run: tuple[str, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--load FILE`` prints the saved run's table again; ``--plot DIR`` writes PNG, SVG and table.txt."""
    pytest.importorskip("matplotlib")
    table, report = quick_run
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(report), encoding="utf-8")
    assert bench.main(["--load", str(saved), "--plot", str(tmp_path / "plots")]) == 0
    assert capsys.readouterr().out.strip() == table.strip()
    for name in ["reads", "writes", "throughput", "heal", "roundtrips"]:
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 0
        assert (tmp_path / "plots" / f"{name}.svg").stat().st_size > 0
    assert (tmp_path / "plots" / "table.txt").read_text(encoding="utf-8").strip() == table.strip()


def test_targets_skip_what_was_not_measured() -> None:
    """A report with only round trips checks only the round-trip targets, against its own floors."""
    figures = [
        bench.Figure("rt.local.floor", "roundtrip", "floor", "local", "us", [10.0, 11.0]),
        bench.Figure("rt.local.send", "roundtrip", "send", "local", "us", [25.0, 30.0], floor="rt.local.floor"),
    ]
    report = {"figures": [f.as_json() for f in figures], "reference": bench.load_reference()}
    targets = bench.check_targets(report)
    assert [t["id"] for t in targets] == ["local_round_trip"]
    assert targets[0]["value"] == pytest.approx(27.5 / 10.5) and targets[0]["met"] is False


def test_unknown_section_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """``--only`` with a section that does not exist exits with status 2 before measuring anything."""
    assert bench.main(["--only", "reads,nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err
