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

Run from the repository root::

    python benchmarks/bench_global.py            # 2000 trans per size, 10 s per contention run
    python benchmarks/bench_global.py --quick    # 200 trans per size, 3 s per contention run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_global_nodes as nodes_mod  # noqa: E402 - after the path set-up above

from repg2 import erlang, gen_server  # noqa: E402
from repg2.cluster import Cluster  # noqa: E402


def timed(fun: Callable[[], Any], repetitions: int) -> list[float]:
    """Run ``fun`` ``repetitions`` times after a short warm-up; return each run's time in microseconds.

    Erlang: none (benchmark timing)
    """
    for _ in range(min(20, repetitions)):
        fun()
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        fun()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def summary(samples: list[float]) -> str:
    """Format median, p99 and min-max of microsecond samples as milliseconds.

    Erlang: none (benchmark report)
    """
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{statistics.median(ordered) / 1000:7.2f} {p99 / 1000:7.2f}   "
        f"{ordered[0] / 1000:6.2f}-{ordered[-1] / 1000:<7.2f}"
    )


def latency(sizes: list[int], reps: int) -> None:
    """Print trans+multi_call and bare multi_call latency for each cluster size.

    Erlang: none (benchmark)
    """
    print(f"trans + multi_call latency, {reps} sequential writes from node a, ms")
    print(f"{'nodes':>5}  {'what':<20} {'median':>7} {'p99':>7}   min-max")
    for size in sizes:
        with Cluster(size, prefix="bench_") as cluster:
            names = list(cluster.nodes)
            for node in names:
                cluster.rpc(node, nodes_mod.setup, 1.0)
            resource = ("bench", "latency")
            lock = timed(lambda: nodes_mod.one_trans(names, resource), reps)
            bare = timed(lambda: gen_server.multi_call(names, nodes_mod.ECHO, "ping"), reps)
            print(f"{size:>5}  {'trans(multi_call)':<20} {summary(lock)}")
            print(f"{size:>5}  {'multi_call alone':<20} {summary(bare)}")


def contention(seconds: float, scales: list[float], clients: int = 4) -> None:
    """Print the throughput of ``clients`` processes taking one lock in turn on a 3-node cluster.

    Erlang: none (benchmark)
    """
    print(f"\n{clients} clients, one resource, 3 nodes, {seconds:.0f} s per run")
    print(f"{'back-off':<14} {'trans/s':>8} {'per client (min-max)':>22} {'sleeps/trans':>13}")
    with Cluster(3, prefix="bench_") as cluster:
        names = list(cluster.nodes)
        me = erlang.self()
        for scale in scales:
            for node in names:
                cluster.rpc(node, nodes_mod.setup, scale)
                cluster.rpc(node, nodes_mod.take_sleeps)
            start_at = time.time() + 0.5
            pids = [
                cluster.spawn(names[i % len(names)], nodes_mod.client, me, names, ("bench", "hot"), seconds, start_at)
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
            sleeps = sum(cluster.rpc(node, nodes_mod.take_sleeps) for node in names)
            total = sum(counts)
            label = "OTP (1x)" if scale == 1.0 else f"OTP / {scale:.0f}"
            print(
                f"{label:<14} {total / seconds:8.1f} {min(counts):>11}-{max(counts):<10} {sleeps / max(total, 1):13.2f}"
            )


def main(argv: list[str] | None = None) -> int:
    """Run the latency table and the contention table.

    Erlang: none (benchmark entry point)
    """
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
