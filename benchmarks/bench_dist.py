"""Benchmark: a remote message round trip between two nodes, beside raw TCP with the same framing.

A process on node ``a`` (this process) sends ``(self(), n)`` to an echo
process on node ``b`` (a child OS process) and waits for ``n`` back: two
``erlang.send`` calls across the distribution, each pickled, framed (4-byte
length), written under the connection's writer lock, read by the peer's
reader thread and put in a mailbox. Beside it, in the same run and between
the same two OS processes, a raw round trip: a plain TCP socket pair
(TCP_NODELAY) with the same 4-byte framing and a tiny payload, echoed by a
thread in node ``b``. The ratio is the price of the runtime (pickle, locks,
mailboxes, thread hand-offs) over the carrier. The measuring code lives in
``repg2.tools.bench.roundtrip`` (``remote_round_trips``).

Run from the repository root::

    python benchmarks/bench_dist.py            # 5 rounds of 2000 round trips
    python benchmarks/bench_dist.py --quick    # 3 rounds of 500
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repg2.testing import Cluster  # noqa: E402
from repg2.tools.bench import remote_round_trips  # noqa: E402 - after the path set-up above


def main(argv: list[str] | None = None) -> int:
    """Run both round trips in alternating rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 500 round trips")
    args = parser.parse_args(argv)
    rounds, count = (3, 500) if args.quick else (5, 2000)
    with Cluster(2, prefix="bench_") as cluster:
        raw, dist = remote_round_trips(cluster, cluster.nodes[1], count, rounds)
    print(f"round trip a <-> b, {rounds} rounds x {count} (median of the per-round medians, min-max of them)")
    for f in (dist, raw):
        print(f"{f.name:<32} median {f.median:8.1f} us   min-max {min(f.runs):7.1f}-{max(f.runs):7.1f} us")
    print(f"ratio distribution / raw: {dist.median / raw.median:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
