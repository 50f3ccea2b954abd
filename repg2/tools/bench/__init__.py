"""``python -m repg2 bench``: pg2's performance characteristics, each beside its floor.

There is no Erlang original: this is the measuring bench of the project, the
Python counterpart of timing pg2 with ``timer:tc/1`` on a real cluster. It
makes visible what pg2 promises and what this translation keeps of it:

1. **Reads are local and flat.** ``get_members`` and ``get_local_members``
   of a 10-member group while ``pg2_table`` holds 1k, 10k and 100k other
   rows: one ordered_set range scan, so the time should not grow with the
   table. Beside them, an ``ets.match`` whose key is unbound (a full scan)
   shows what a read would cost without the range scan.
2. **Writes are global.** ``join`` + ``leave``, ``create`` of a new group and
   ``global_.trans`` with an empty fun, on 1, 2, 3 and 5 nodes (median and
   p99): each write takes a lock on every node, calls every node's pg2
   server and releases the lock, three ``multi_call`` rounds; a bare
   ``multi_call`` of a trivial server is measured beside them as their floor.
3. **Throughput and contention.** join+leave pairs per second with 1 client
   and with 4 clients, on distinct groups and on one shared group, on 1 and
   3 nodes. On one group the clients collide on ``global``'s lock and back
   off for random, doubling times: the figure collapses, as in Erlang.
4. **Heals cost one exchange.** The time from reconnecting a partition of a
   3-node cluster until every node lists every membership made on the other
   side, for 100 and 1,000 memberships.
5. **Messages.** A round trip between two local processes beside a plain
   thread hand-off (``queue.SimpleQueue``), and between two nodes beside a
   plain framed TCP round trip between the same two OS processes.

Each figure is the median of repeated runs with their min-max range, and a
ratio to its floor measured *in the same run*, so the ratios survive a
slower or busier machine better than the absolute figures do. The reference
figures of real Erlang pg2 (``repg2/tools/data/erlang_pg2_reference.json``) stand
beside ours, with the ratio. The targets of issue 10 are checked at the end.

How it runs: one process is node ``bench_a``; the cluster starts with the
most nodes needed and *shrinks* (``Cluster.stop``) between stages, so nodes
start once. Everything else (members, clients, watchers, echo servers) runs
in processes of this module, which the other nodes import by name.

Timing notes: wall-clock time (``time.perf_counter``) of the caller; a heal
is timed across nodes with ``time.monotonic``, which is the system-wide
``CLOCK_MONOTONIC`` on Linux. Load from other programs inflates every
figure, floors included: read ``meta.load`` in the JSON. ``--quick`` runs
fewer sizes and repetitions (for CI); its figures are rougher.

Where the code is, in the order it runs:

- ``config``: the sections, the ``FULL`` and ``QUICK`` configurations, the
  reference figures of real Erlang pg2;
- ``measure``: the :class:`~repg2.tools.bench.measure.Figure` record, the timing helpers, the progress line;
- ``nodes``: what every node of the cluster runs (set-up, the trivial
  server that is a write's floor, counted back-off sleeps, fresh pg2 tables);
- one module per section: ``roundtrip`` (the local round trips first, the
  remote ones once the cluster runs), ``reads``, ``writes``, ``heal``,
  ``throughput``;
- ``runner``: :func:`~repg2.tools.bench.runner.run`, the sections on one cluster that shrinks;
- ``report``: the targets, the text table, the JSON file;
- ``plots``: one function per figure, saved as PNG and SVG.

This module holds the command line and re-exports what the scripts in
``benchmarks/`` use: they are thin wrappers over the same functions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repg2 import erlang
from repg2.tools.bench.config import (
    ECHO,
    FULL,
    GROUP_SIZE,
    PREFIX,
    QUICK,
    SECTIONS,
    Config,
    load_reference,
)
from repg2.tools.bench.measure import Figure, percentile, timed
from repg2.tools.bench.nodes import setup, take_sleeps
from repg2.tools.bench.plots import plot
from repg2.tools.bench.reads import ets_prefix_scan
from repg2.tools.bench.report import check_targets, format_table, read_report, write_report
from repg2.tools.bench.roundtrip import local_round_trips, remote_round_trips
from repg2.tools.bench.runner import attach_erlang, run
from repg2.tools.bench.writes import one_trans, trans_client

__all__ = [
    "ECHO",
    "FULL",
    "GROUP_SIZE",
    "PREFIX",
    "QUICK",
    "SECTIONS",
    "Config",
    "Figure",
    "add_arguments",
    "attach_erlang",
    "check_targets",
    "ets_prefix_scan",
    "format_table",
    "load_reference",
    "local_round_trips",
    "main",
    "one_trans",
    "percentile",
    "plot",
    "remote_round_trips",
    "run",
    "run_command",
    "setup",
    "take_sleeps",
    "timed",
    "trans_client",
]


def main(argv: list[str] | None = None) -> int:
    """Run the bench (or load a saved run), print the table, write JSON and plots as asked."""
    parser = argparse.ArgumentParser(prog="python -m repg2 bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_command(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the bench's options to a parser (its own, or the ``bench`` sub-command's)."""
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repetitions (CI: under 30 s)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the full report as JSON")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="write PNG and SVG plots and table.txt into DIR")
    parser.add_argument("--only", metavar="SECTIONS", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--load", type=Path, metavar="FILE", help="do not measure: report a saved --json run")
    parser.add_argument("--no-progress", action="store_true", help="no progress display on stderr")


def run_command(args: argparse.Namespace) -> int:
    """Carry out parsed bench options; return the exit status."""
    if args.load is not None:
        report = read_report(args.load)
    else:
        sections = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            print(f"python -m repg2 bench: unknown sections {sorted(unknown)}; choose from {SECTIONS}", file=sys.stderr)
            return 2
        if erlang.node() != "nonode@nohost":
            print("python -m repg2 bench: this process is already a node; run the bench on its own", file=sys.stderr)
            return 2
        report = run(QUICK if args.quick else FULL, sections, show_progress=not args.no_progress)
    table = format_table(report)
    print(table)
    if args.json is not None:
        write_report(report, args.json)
    if args.plot is not None:
        for path in plot(report, args.plot):
            print(f"wrote {path}", file=sys.stderr)
        (args.plot / "table.txt").write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
