"""``python -m repg2 bench``: the quick run produces its table and its JSON; a saved run re-renders.

Not a timing test: nothing here asserts how fast anything is, only that the
bench runs end to end on real nodes (and real OTP nodes where ``erl`` is
installed), reports every section, checks the targets of issue 16 with
their source (``same_run`` or ``stored``), and that a saved report gives
back the same table and the plots.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from repg2.testing import otp
from repg2.tools import bench
from repg2.tools.bench.report import TARGETS

pytestmark = pytest.mark.distributed

SECTION_HEADERS = ["== reads ==", "== writes ==", "== throughput ==", "== heal ==", "== roundtrip ==", "== targets"]
TARGET_IDS = [
    "remote_rtt_vs_erlang",
    "trans_3_nodes_vs_erlang",
    "pg2_join_3_nodes_vs_erlang",
    "heal_1000_vs_erlang",
    "get_members_100k_vs_erlang",
    "get_members_flat",
    "local_rtt_vs_floor",
]


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
    assert "pg.join (default scope)" in table
    if otp.erl_missing_reason() is None:
        assert "== erlang ==" in table and "Erlang: global:trans (empty fun)" in table


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
    assert figures["writes.join.3"]["erlang_source"] == "stored"  # pg2 cannot run on OTP 25
    assert "writes.pg_join.3" in figures and "writes.pg_leave.1" in figures
    # The quick run has no 100k-row read and no 1,000-membership heal: those two targets and the
    # flatness one are skipped; every other one is checked, each with its shape.
    assert [t["id"] for t in report["targets"]] == [
        "remote_rtt_vs_erlang",
        "trans_3_nodes_vs_erlang",
        "pg2_join_3_nodes_vs_erlang",
        "local_rtt_vs_floor",
    ]
    for t in report["targets"]:
        assert set(t) >= {"id", "value", "limit", "met"} and isinstance(t["met"], bool)
        assert t["met"] == (t["value"] <= t["limit"]) and t["source"] in ("same_run", "stored")


@pytest.mark.timeout(300)
def test_erlang_values_are_marked_same_run_or_stored(quick_run: tuple[str, dict[str, Any]]) -> None:
    """With erl, trans, the round trips and pg take real OTP's figures of this run; pg2's stay stored."""
    _table, report = quick_run
    figures = {f["id"]: f for f in report["figures"]}
    live = otp.erl_missing_reason() is None
    assert report["meta"]["erlang"]["live"] is live
    expected = "same_run" if live else "stored"
    for fid in ["rt.remote.dist", "rt.local.send", "writes.trans.3", "writes.trans.1"]:
        assert figures[fid]["erlang_source"] == expected, fid
    for fid in ["writes.join.3", "writes.create.3", "heal.100", "reads.get_members.1000"]:
        assert figures[fid]["erlang_source"] == "stored", fid
    targets = {t["id"]: t for t in report["targets"]}
    assert targets["trans_3_nodes_vs_erlang"]["source"] == expected
    assert targets["pg2_join_3_nodes_vs_erlang"]["source"] == "stored"
    if live:
        for fid in ["erlang.rt.remote", "erlang.trans.3", "erlang.pg_join.3", "erlang.pg_leave.1"]:
            assert figures[fid]["section"] == "erlang" and figures[fid]["runs"], fid
        assert figures["writes.trans.3"]["erlang"] == figures["erlang.trans.3"]["median"]
        assert figures["writes.pg_join.3"]["erlang"] == figures["erlang.pg_join.3"]["median"]
        assert figures["writes.pg_join.3"]["erlang_source"] == "same_run"


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
    for name in ["reads", "writes", "pg", "throughput", "heal", "roundtrips"]:
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
    assert [t["id"] for t in targets] == ["local_rtt_vs_floor"]
    assert targets[0]["value"] == pytest.approx(27.5 / 10.5) and targets[0]["met"] is False


def test_all_seven_targets_and_their_sources() -> None:
    """Every target of issue 16 is checked when its figures exist; a same-run twin beats the stored value."""
    reference = bench.load_reference()

    def fig(fid: str, value: float, section: str = "x") -> bench.Figure:
        """A figure of one run of ``value``."""
        return bench.Figure(fid, section, fid, "-", "us", [value])

    figures = [
        fig("rt.remote.dist", 120.0),
        fig("erlang.rt.remote", 80.0, "erlang"),
        fig("rt.local.send", 20.0),
        fig("rt.local.floor", 10.0),
        fig("writes.trans.3", 900.0),
        fig("erlang.trans.3", 400.0, "erlang"),
        fig("writes.join.3", 729.0),
        fig("heal.1000", 70.5),
        fig("reads.get_members.1000", 10.0),
        fig("reads.get_members.100000", 13.2),
    ]
    figures[6].erlang = reference["join_us"]["3"]
    figures[7].erlang = reference["heal_ms"]["1000"]
    figures[9].erlang = reference["get_members_us"]["100000"]
    bench.attach_erlang(figures, reference)
    report = {"figures": [f.as_json() for f in figures], "reference": reference}
    targets = {t["id"]: t for t in bench.check_targets(report)}
    assert list(targets) == TARGET_IDS == [tid for tid, _text, _limit in TARGETS]
    assert targets["remote_rtt_vs_erlang"]["value"] == pytest.approx(1.5) and targets["remote_rtt_vs_erlang"]["met"]
    assert targets["remote_rtt_vs_erlang"]["source"] == "same_run"
    assert targets["trans_3_nodes_vs_erlang"]["value"] == pytest.approx(2.25)
    assert targets["trans_3_nodes_vs_erlang"]["met"] is False
    assert targets["pg2_join_3_nodes_vs_erlang"]["value"] == pytest.approx(3.0)
    assert targets["pg2_join_3_nodes_vs_erlang"]["source"] == "stored"
    assert targets["heal_1000_vs_erlang"]["value"] == pytest.approx(5.0)
    assert targets["get_members_100k_vs_erlang"]["value"] == pytest.approx(3.0)
    assert targets["get_members_flat"]["value"] == pytest.approx(1.32)
    assert targets["local_rtt_vs_floor"]["value"] == pytest.approx(2.0)
    assert [t["limit"] for t in targets.values()] == [1.5, 2, 3, 5, 3, 1.5, 1.5]


def test_without_a_twin_the_stored_value_stands_in() -> None:
    """No erlang section in the run: trans and the round trips take the stored reference, marked stored."""
    reference = bench.load_reference()
    figures = [
        bench.Figure("rt.remote.dist", "roundtrip", "send", "2 nodes", "us", [100.0]),
        bench.Figure("writes.trans.3", "writes", "trans", "3 nodes", "us", [900.0], erlang=reference["trans_us"]["3"]),
        bench.Figure("writes.pg_join.3", "writes", "pg.join", "3 nodes", "us", [30.0]),
    ]
    bench.attach_erlang(figures, reference)
    assert (figures[0].erlang, figures[0].erlang_source) == (reference["rt_remote_us"], "stored")
    assert (figures[1].erlang, figures[1].erlang_source) == (reference["trans_us"]["3"], "stored")
    assert (figures[2].erlang, figures[2].erlang_source) == (None, None)


def test_unknown_section_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """``--only`` with a section that does not exist exits with status 2 before measuring anything."""
    assert bench.main(["--only", "reads,nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err


# == The parts of the bench a test can run in this process, at the smallest size ==========
#
# Not timings either: the smallest configuration, to pin what each part measures and
# reports (the prefix scan finds the group, a trans reaches every node, a run without
# Erlang says where its Erlang figures come from), at a cost of milliseconds.

import time  # noqa: E402 - the in-process part of the file
from collections.abc import Iterator  # noqa: E402

from support import recv, tagged  # noqa: E402

from repg2 import erlang, ets, gen_server, kernel  # noqa: E402
from repg2.tools.bench import erlang_live, measure, reads, runner  # noqa: E402
from repg2.tools.bench.config import ECHO, GROUP_SIZE, Config  # noqa: E402
from repg2.tools.bench.nodes import TrivialServer  # noqa: E402

TINY = Config(
    name="tiny",
    read_sizes=(40, 80),
    read_runs=1,
    read_calls=5,
    node_counts=(1,),
    write_ops=2,
    write_runs=1,
    tp_nodes=(1,),
    tp_seconds=0.1,
    tp_runs=1,
    heal_counts=(10,),
    heal_repeats=1,
    local_round_trips=10,
    local_runs=1,
    remote_round_trips=10,
    remote_runs=1,
)


def test_the_prefix_scan_finds_the_group_at_every_size() -> None:
    """ets_prefix_scan times pg2's member match and the full scan per table size, a sample per repetition."""
    rows = bench.ets_prefix_scan([100, 1000], 3, 2)
    assert [size for size, _prefix, _full in rows] == [100, 1000]
    for _size, prefix, full in rows:
        assert len(prefix) == 3 and len(full) == 2
        assert all(sample >= 0 for sample in prefix + full)
    table = reads.ets_table(30)
    try:
        assert len(ets.match(table, (("member", "g", "$1"), "_"))) == GROUP_SIZE
    finally:
        ets.delete(table)


@pytest.fixture
def echo_here(node: str) -> Iterator[str]:
    """This process as a node with global (the kernel) and the bench's trivial server; yield the node."""
    kernel.boot()
    started = gen_server.start(("local", ECHO), TrivialServer(), [])
    assert started[0] == "ok", started
    yield node
    gen_server.stop(ECHO)


@pytest.mark.usefixtures("isolated_runtime")
def test_one_trans_and_a_trans_client_reach_every_node(echo_here: str) -> None:
    """one_trans is a multi_call inside global:trans; a trans client reports how many it ran, at least one."""
    assert bench.one_trans([echo_here], ("bench", "test")) == ([(echo_here, "pong")], [])
    me = erlang.self()
    client = erlang.spawn(bench.trans_client, me, [echo_here], ("bench", "test"), 0.0, time.time())
    _done, pid, count = recv(tagged("done", client), "the trans client's count")
    assert pid == client and count >= 1


def test_progress_is_one_line_per_step_or_one_line_rewritten(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Progress writes a line per step to a log, rewrites one line on a terminal, and ends with the total."""
    progress = measure.Progress(2)
    progress.tty = False
    progress.step("first")
    progress.finish()
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("[ 1/2]") and err.splitlines()[0].endswith("first")
    assert err.splitlines()[1].startswith("done: 1 steps in")
    progress = measure.Progress(1)
    progress.tty = True
    progress.step("x" * 300)
    progress.finish()
    err = capsys.readouterr().err
    assert err.startswith("\r\x1b[2K[ 1/1]") and len(err.split("\r\x1b[2K")[1]) == 150
    assert "\r\x1b[2Kdone: 1 steps in" in err
    silent = measure.Progress(1, enabled=False)
    silent.step("quiet")
    silent.finish()
    assert capsys.readouterr().err == "" and silent.done == 1


@pytest.mark.usefixtures("fresh_pg2")
def test_a_run_of_the_reads_alone_says_erlang_was_not_asked_for() -> None:
    """run() of the reads section only: its figures, and an erlang entry that says it was not asked for."""
    report = runner.run(TINY, ["reads"], show_progress=False)
    assert report["meta"]["sections"] == ["reads"]
    ids = {f["id"] for f in report["figures"]}
    assert {"reads.get_members.40", "reads.get_local_members.80", "reads.full_scan.80"} <= ids
    assert report["meta"]["erlang"] == {"live": False, "reason": "the erlang section was not asked for"}


@pytest.mark.usefixtures("fresh_pg2")
def test_a_run_without_erl_says_the_erlang_figures_are_the_stored_ones(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asked for the erlang section where erl is missing, run() says why and marks Erlang's figures stored."""
    monkeypatch.setattr(erlang_live, "erlang_missing_reason", lambda: "no erl in this test")
    report = runner.run(TINY, ["reads", "erlang"], show_progress=False)
    assert report["meta"]["erlang"] == {"live": False, "reason": "no erl in this test"}
    assert "no erl in this test; Erlang's figures are the stored ones" in capsys.readouterr().err
    assert runner.steps_of(TINY, ["reads", "erlang"]) == len(TINY.read_sizes)


def test_the_bench_refuses_to_run_in_a_process_that_is_a_node(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The bench makes its own cluster: in a process that is a node already it exits with status 2, saying so."""
    assert bench.main(["--only", "reads", "--no-progress"]) == 2
    assert "this process is already a node" in capsys.readouterr().err


def test_a_report_without_figures_draws_no_plots(tmp_path: Path) -> None:
    """plot() of a report with no figures writes no file: each drawing needs its section's figures."""
    pytest.importorskip("matplotlib")
    assert bench.plot({"figures": [], "meta": {}, "reference": bench.load_reference()}, tmp_path) == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(300)
def test_writes_plot_without_live_erlang_uses_the_stored_trans(
    quick_run: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Without the erlang section's figures, the writes plot draws Erlang's stored trans times instead."""
    pytest.importorskip("matplotlib")
    _table, report = quick_run
    without = dict(report, figures=[f for f in report["figures"] if f["section"] != "erlang"])
    assert bench.plots.draw_writes(without) is not None
    written = bench.plot(without, tmp_path)
    assert tmp_path / "writes.png" in written
