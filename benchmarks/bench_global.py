"""Benchmark: the cost of a pg2-style write (global:trans around a multi_call), and lock contention.

Every pg2 write is ``global:trans({{pg2, Name}, self()}, fun() ->
gen_server:multi_call(Nodes, pg2, Req) end)``: one multi_call to take the
lock on every node, one for the work, one to release. This script measures
that shape on clusters of 1, 2, 3 and 5 real nodes (the work is a trivial
echo server), next to the bare multi_call, so the lock's share shows.

Then four clients on a 3-node cluster hammer one resource: with global's
real back-off (a random sleep of 1..250 ms after the first refusal,
doubling up to 8 s), and with the same back-off fifty times shorter. The
first shows why global's locks suit rare contention: a refused client
sleeps far longer than a lock is held. Figures are wall-clock on this
machine; they compare shapes, not machines.

What runs on the nodes lives in ``repg2.tools.bench``, importable by every node:
``setup`` and the counting back-off sleep in ``nodes``, ``one_trans`` and
``trans_client`` in ``writes``.

Run from the repository root::

    python benchmarks/bench_global.py            # 2000 trans per size, 10 s per contention run
    python benchmarks/bench_global.py --quick    # 200 trans per size, 3 s per contention run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repg2 import erlang, gen_server  # noqa: E402 - after the path set-up above
from repg2.testing import Cluster  # noqa: E402
from repg2.tools import bench


def summary(samples: list[float]) -> str:
    """Format median, p99 and min-max of microsecond samples as milliseconds."""
    ordered = sorted(samples)
    return (
        f"{bench.percentile(ordered, 50) / 1000:7.2f} {bench.percentile(ordered, 99) / 1000:7.2f}   "
        f"{ordered[0] / 1000:6.2f}-{ordered[-1] / 1000:<7.2f}"
    )


def latency(sizes: list[int], reps: int) -> None:
    """Print trans+multi_call and bare multi_call latency for each cluster size."""
    print(f"trans + multi_call latency, {reps} sequential writes from node a, ms")
    print(f"{'nodes':>5}  {'what':<20} {'median':>7} {'p99':>7}   min-max")
    for size in sizes:
        with Cluster(size, prefix=bench.PREFIX) as cluster:
            names = list(cluster.nodes)
            for node in names:
                cluster.rpc(node, bench.setup, 1.0)
            resource = ("bench", "latency")
            lock = bench.timed(lambda: bench.one_trans(names, resource), reps)
            bare = bench.timed(lambda: gen_server.multi_call(names, bench.ECHO, "ping"), reps)
            print(f"{size:>5}  {'trans(multi_call)':<20} {summary(lock)}")
            print(f"{size:>5}  {'multi_call alone':<20} {summary(bare)}")


def contention(seconds: float, scales: list[float], clients: int = 4) -> None:
    """Print the throughput of ``clients`` processes taking one lock in turn on a 3-node cluster."""
    print(f"\n{clients} clients, one resource, 3 nodes, {seconds:.0f} s per run")
    print(f"{'back-off':<14} {'trans/s':>8} {'per client (min-max)':>22} {'sleeps/trans':>13}")
    with Cluster(3, prefix=bench.PREFIX) as cluster:
        names = list(cluster.nodes)
        me = erlang.self()
        for scale in scales:
            for node in names:
                cluster.rpc(node, bench.setup, scale)
                cluster.rpc(node, bench.take_sleeps)
            start_at = time.time() + 0.5
            pids = [
                cluster.spawn(names[i % len(names)], bench.trans_client, me, names, ("bench", "hot"), seconds, start_at)
                for i in range(clients)
            ]
            counts = []
            for pid in pids:
                msg = erlang.receive(
                    lambda m, pid=pid: isinstance(m, tuple) and m[:2] == ("done", pid), timeout=seconds + 120
                )
                if msg is erlang.TIMEOUT:
                    raise RuntimeError(f"client {pid!r} did not finish")
                counts.append(msg[2])
            sleeps = sum(cluster.rpc(node, bench.take_sleeps) for node in names)
            total = sum(counts)
            label = "OTP (1x)" if scale == 1.0 else f"OTP / {scale:.0f}"
            print(
                f"{label:<14} {total / seconds:8.1f} {min(counts):>11}-{max(counts):<10} {sleeps / max(total, 1):13.2f}"
            )


def main(argv: list[str] | None = None) -> int:
    """Run the latency table and the contention table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and shorter runs")
    args = parser.parse_args(argv)
    reps = 200 if args.quick else 2000
    seconds = 3.0 if args.quick else 10.0
    latency([1, 2, 3, 5], reps)
    contention(seconds, [1.0, 50.0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
