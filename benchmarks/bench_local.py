"""Benchmark: message round trips between local processes, against a plain-thread floor.

An Erlang process here is a thread with a mailbox (``repg2.erlang``), so a
message round trip between two processes cannot be faster than handing a
value to another thread and back. This script measures, in one run:

- the floor: a ``queue.SimpleQueue`` ping-pong between two plain threads;
- ``erlang.send`` / ``erlang.receive`` ping-pong between two processes, with
  a plain receive (take the next message) and a selective one (a predicate
  that checks the reply's tag, as ``gen_server:call`` does);
- ``gen_server.call`` to a server that replies at once (monitor, send,
  selective receive, demonitor: the full OTP call protocol).

Each is run ``repeats`` times; a run is ``round_trips`` round trips and gives
the mean time of one round trip. The table shows the median over the runs,
the min-max range, and the median's ratio to the floor's median. The cases
live in ``repg2.tools.bench.roundtrip`` (``local_round_trips``), which ``python -m
repg2 bench`` runs too.

Run from the repository root::

    python benchmarks/bench_local.py            # 7 runs of 5,000 round trips
    python benchmarks/bench_local.py --quick    # 3 runs of 1,000
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repg2.tools.bench import local_round_trips  # noqa: E402 - after the path set-up above


def main(argv: list[str] | None = None) -> int:
    """Measure each round trip, print a table with ratios to the queue floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs of 1,000 round trips")
    args = parser.parse_args(argv)
    round_trips, repeats = (1_000, 3) if args.quick else (5_000, 7)
    figures = local_round_trips(round_trips, repeats)

    floor = figures[0].median
    print(f"Local round trips, {repeats} runs of {round_trips:,} (microseconds per round trip)")
    print(f"{'operation':<36} | {'median':>8} | {'min-max':>15} | {'x floor':>7}")
    print("-" * 76)
    for f in figures:
        spread = f"{min(f.runs):.1f}-{max(f.runs):.1f}"
        print(f"{f.name:<36} | {f.median:8.1f} | {spread:>15} | {f.median / floor:7.2f}")
    print("-" * 76)
    print(f"Python {sys.version.split()[0]}, {threading.active_count()} threads alive at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
