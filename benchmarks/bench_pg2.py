"""pg2's performance characteristics: local reads, globally locked writes, heals.

Run: ``python benchmarks/bench_pg2.py [--quick]``. Three measurements:

1. ``get_members`` of a 10-member group while ``pg2_table`` holds 1k, 10k
   and 100k other rows. A read is one ordered_set range scan, so the time
   should stay flat (target: 100k at most 1.5x of 1k).
2. ``join`` + ``leave`` latency from node a on clusters of 1, 2, 3 and 5
   nodes. Each write takes the group's lock on every node and calls every
   node's pg2 server, so it grows with the cluster.
3. Time from ``heal()`` until every node of a 3-node cluster lists every
   membership made on one side during a partition, for 100 and 1,000
   memberships: one exchange each way.

Figures are medians with min-max over repeated runs (and p99 for latencies).
Nothing here asserts a time: these are figures to read, not tests.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from repg2 import erlang, ets, gen_server, pg2
from repg2.cluster import Cluster
from repg2.demo import member_loop
from repg2.pg2_checks import stop_pg2


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def time_per_call(fun: Callable[[], object], n: int) -> float:
    """Return the mean seconds per call of ``fun`` over ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        fun()
    return (time.perf_counter() - start) / n


def fill_table(rows: int, owner: erlang.Pid) -> None:
    """Add about ``rows`` rows to pg2_table: groups of one member each, through one exchange.

    Each extra group adds four rows (group, member, local_member, pid); the
    member is one live process, so its ref rows are shared.
    """
    groups = [[("other", i), [owner]] for i in range(rows // 4)]
    gen_server.cast(pg2.SERVER, ("exchange", erlang.node(), groups))
    gen_server.get_state(pg2.SERVER, "infinity")


def bench_reads(quick: bool) -> list[tuple[int, float, float, float, int]]:
    """Time get_members/get_local_members of a 10-member group against table size."""
    results = []
    sizes = [1_000, 10_000, 100_000]
    repeats, calls = (3, 300) if quick else (7, 2000)
    for size in sizes:
        stop_pg2()
        pg2.start()
        pg2.create("g")
        members = [erlang.spawn(member_loop) for _ in range(10)]
        for pid in members:
            pg2.join("g", pid)
        owner = erlang.spawn(member_loop)
        fill_table(size, owner)
        table_rows = ets.info(pg2.TABLE, "size")
        assert len(pg2.get_members("g")) == 10
        runs = [time_per_call(lambda: pg2.get_members("g"), calls) * 1e6 for _ in range(repeats)]
        local_runs = [time_per_call(lambda: pg2.get_local_members("g"), calls) * 1e6 for _ in range(repeats)]
        results.append((size, statistics.median(runs), min(runs), max(runs), table_rows))
        results.append((-size, statistics.median(local_runs), min(local_runs), max(local_runs), table_rows))
        for pid in [*members, owner]:
            erlang.exit(pid, "kill")
    stop_pg2()
    return results


def bench_writes(quick: bool) -> list[tuple[int, float, float, float, float]]:
    """Time join+leave from node a on clusters of 1, 2, 3 and 5 nodes."""
    results = []
    n_ops = 100 if quick else 500
    for size in [1, 2, 3, 5]:
        stop_pg2()
        with Cluster(size) as cluster:
            for node in cluster.nodes:
                cluster.rpc(node, pg2.start)
            pg2.create("w")
            pid = erlang.spawn(member_loop)
            samples = []
            for _ in range(n_ops):
                t0 = time.perf_counter()
                pg2.join("w", pid)
                pg2.leave("w", pid)
                samples.append((time.perf_counter() - t0) * 1e6)
            erlang.exit(pid, "kill")
            results.append((size, statistics.median(samples), percentile(samples, 99), min(samples), max(samples)))
        stop_pg2()
    return results


def bench_heal(quick: bool) -> list[tuple[int, float, float, float]]:
    """Time from heal() until all 3 nodes list every membership made on one side of a partition."""
    results = []
    repeats = 2 if quick else 5
    for count in [100, 1_000]:
        runs = []
        for _ in range(repeats):
            stop_pg2()
            with Cluster(3) as cluster:
                a, b, c = cluster.nodes
                for node in cluster.nodes:
                    cluster.rpc(node, pg2.start)
                pg2.create("h")
                cluster.partition([a], [b, c])
                pid = erlang.spawn(member_loop)
                # count memberships of one pid: the exchange carries them all.
                for _ in range(count):
                    pg2.join("h", pid)
                t0 = time.perf_counter()
                cluster.heal()
                while not all(
                    isinstance(m := cluster.rpc(n, pg2.get_members, "h"), list) and len(m) == count for n in (b, c)
                ):
                    time.sleep(0.001)
                runs.append((time.perf_counter() - t0) * 1e3)
                erlang.exit(pid, "kill")
            stop_pg2()
        results.append((count, statistics.median(runs), min(runs), max(runs)))
    return results


def main() -> None:
    """Run the three measurements and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (for CI)")
    args = parser.parse_args()

    reads = bench_reads(args.quick)
    print("get_members / get_local_members of a 10-member group (us per call)")
    print(f"{'other rows':>10} {'table rows':>10} {'call':<18} {'median':>8} {'min':>8} {'max':>8}")
    for size, med, lo, hi, rows in reads:
        what = "get_members" if size > 0 else "get_local_members"
        print(f"{abs(size):>10,} {rows:>10,} {what:<18} {med:>8.1f} {lo:>8.1f} {hi:>8.1f}")
    gm = [r for r in reads if r[0] > 0]
    print(f"flatness: 100k / 1k = {gm[-1][1] / gm[0][1]:.2f}x (target <= 1.5x)\n")

    writes = bench_writes(args.quick)
    print("join + leave from node a (us per pair)")
    print(f"{'nodes':>5} {'median':>9} {'p99':>9} {'min':>9} {'max':>9}")
    for size, med, p99, lo, hi in writes:
        print(f"{size:>5} {med:>9.0f} {p99:>9.0f} {lo:>9.0f} {hi:>9.0f}")
    print(f"growth: 5 nodes / 1 node = {writes[-1][1] / writes[0][1]:.1f}x\n")

    heals = bench_heal(args.quick)
    print("heal of a 3-node partition until every node agrees (ms)")
    print(f"{'memberships':>11} {'median':>8} {'min':>8} {'max':>8}")
    for count, med, lo, hi in heals:
        print(f"{count:>11,} {med:>8.1f} {lo:>8.1f} {hi:>8.1f}")


if __name__ == "__main__":
    main()
