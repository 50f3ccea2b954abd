"""Soak: pg2 on three nodes under random joins, leaves and kills for a long time; look for leaks.

Run: ``REPG2_SOAK=1 python benchmarks/soak.py [--seconds 600] [--sample 30] [--json out.json]``.
(Without ``REPG2_SOAK=1`` it refuses to start: it is not a CI job.)

What runs: a :func:`repg2.testing.nodefuns.churn` process on every node
joins, leaves and kills its own members in a few groups as fast as the
locks let it, all three contending for the same groups. Meanwhile the
driver (this process, node ``a``) now and then kills node ``b`` or ``c``
with SIGKILL (its churn dies in the middle of whatever write it was doing)
and restarts it, and now and then crashes a pg2 server. Every ``--sample``
seconds it prints each node's threads, resident memory, processes,
monitors, pg2 rows and global lock rows.

At the end every churn process is stopped and kills its members; then the
cluster must come back to nothing: every node's pg2 table holds only group
rows (no member, monitor or reverse-index row outlives its member), no lock
is held, no monitor is left, and node ``a`` (never restarted) has the
threads it had at the start. The figures of the first and last samples are
printed side by side; the exit status is 1 if a check fails. Nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from typing import Any

from repg2 import erlang, pg2
from repg2.testing import Cluster, nodefuns

GROUPS = ["soak0", "soak1", "soak2", "soak3"]


def sample(cluster: Cluster) -> dict[str, dict[str, int]]:
    """Each live node's resource counts."""
    return {n: cluster.rpc(n, nodefuns.stats) for n in cluster.live_nodes()}


def show(elapsed: float, figures: dict[str, dict[str, int]]) -> None:
    """Print one sample line per node."""
    for node, f in figures.items():
        print(
            f"t={elapsed:6.0f}s {node.split('@')[0]:>2}: threads {f['threads']:4}  rss {f['rss_kib'] / 1024:6.1f} MiB  "
            f"processes {f['processes']:5}  monitors {f['monitors']:5}  pg2 rows {f['pg2_rows']:6}  "
            f"lock rows {f['lock_rows']}",
            flush=True,
        )


def start_churn(cluster: Cluster, node: str, rng: random.Random, pause: float) -> Any:
    """Start a churn process on ``node`` reporting to this process; return its pid."""
    return cluster.spawn(node, nodefuns.churn, erlang.self(), rng.randrange(2**32), GROUPS, pause)


def main(argv: list[str] | None = None) -> int:
    """Run the soak; return 0 if nothing leaked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("REPG2_SOAK_SECONDS", "600")))
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--pause", type=float, default=0.002, help="seconds between a churn process's writes")
    parser.add_argument("--node-kill-every", type=float, default=60.0, help="seconds between node kills")
    parser.add_argument("--crash-every", type=float, default=45.0, help="seconds between pg2 server crashes")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the samples and the verdict here")
    args = parser.parse_args(argv)
    if os.environ.get("REPG2_SOAK") != "1":
        print("set REPG2_SOAK=1 to run the soak (it is long and not meant for CI)", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    print(f"soak: {args.seconds:.0f} s on 3 nodes, seed {seed}", flush=True)
    samples: list[tuple[float, dict[str, dict[str, int]]]] = []
    events: dict[str, int] = {"node_kills": 0, "pg2_crashes": 0}
    reports: list[Any] = []
    with Cluster(3) as cluster:
        a, b, c = cluster.nodes
        for node in cluster.nodes:
            cluster.rpc(node, nodefuns.start_pg2)
        assert pg2.create(GROUPS[0]) == "ok"
        start = time.monotonic()
        samples.append((0.0, sample(cluster)))
        show(0.0, samples[-1][1])
        churners = {node: start_churn(cluster, node, rng, args.pause) for node in cluster.nodes}
        next_sample = start + args.sample
        next_kill = start + args.node_kill_every
        next_crash = start + args.crash_every
        while (now := time.monotonic()) < start + args.seconds:
            if now >= next_kill:
                victim = rng.choice([b, c])
                cluster.kill(victim)  # its churn dies mid-write; its members vanish everywhere
                events["node_kills"] += 1
                cluster.restart(victim)
                cluster.rpc(victim, nodefuns.start_pg2)
                churners[victim] = start_churn(cluster, victim, rng, args.pause)
                next_kill = now + args.node_kill_every
            elif now >= next_crash:
                node = rng.choice(cluster.nodes)
                old = cluster.rpc(node, nodefuns.crash_pg2)
                cluster.rpc(node, nodefuns.restart_pg2_server, old, timeout=60)
                events["pg2_crashes"] += 1
                next_crash = now + args.crash_every
            elif now >= next_sample:
                samples.append((now - start, sample(cluster)))
                show(now - start, samples[-1][1])
                next_sample = now + args.sample
            else:
                time.sleep(min(0.5, max(0.0, min(next_kill, next_crash, next_sample) - now)))
        # Stop the churn; each kills its members, then reports.
        for pid in churners.values():
            erlang.send(pid, "stop")
        while len(reports) < len(churners):
            msg = erlang.receive(lambda m: isinstance(m, tuple) and m[0] == "churned", timeout=120)
            if msg is erlang.TIMEOUT:
                print("soak: a churn process did not report within 120 s", flush=True)
                break
            reports.append(msg)
        verdict = settle_and_check(cluster, samples[0][1])
        samples.append((time.monotonic() - start, sample(cluster)))
        show(samples[-1][0], samples[-1][1])
    print_summary(seed, args.seconds, samples, events, reports, verdict)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {"seed": seed, "samples": samples, "events": events, "reports": reports, "verdict": verdict},
                out,
                indent=1,
                default=repr,
            )
    return 0 if all(ok for ok, _ in verdict.values()) else 1


def settle_and_check(cluster: Cluster, first: dict[str, dict[str, int]]) -> dict[str, tuple[bool, str]]:
    """Wait (bounded) for the cluster to drop every member; return each check's verdict."""
    deadline = time.monotonic() + 60
    while True:
        snaps = {n: cluster.rpc(n, nodefuns.snapshot) for n in cluster.live_nodes()}
        figures = sample(cluster)
        members_left = {n: sum(len(m) for m in (s or {"members": {}})["members"].values()) for n, s in snaps.items()}
        groups = {n: len((s or {"groups": []})["groups"]) for n, s in snaps.items()}
        clean = all(
            members_left[n] == 0
            and figures[n]["pg2_rows"] == groups[n]
            and figures[n]["lock_rows"] == 0
            and figures[n]["monitors"] <= first[n]["monitors"]
            for n in snaps
        )
        if clean or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    a = cluster.nodes[0]
    return {
        "no member rows left": (all(v == 0 for v in members_left.values()), repr(members_left)),
        "pg2 rows are group rows only": (
            all(figures[n]["pg2_rows"] == groups[n] for n in snaps),
            repr({n: (figures[n]["pg2_rows"], groups[n]) for n in snaps}),
        ),
        "no lock held": (
            all(figures[n]["lock_rows"] == 0 for n in snaps),
            repr({n: figures[n]["lock_rows"] for n in snaps}),
        ),
        "monitors back to the start": (
            all(figures[n]["monitors"] <= first[n]["monitors"] for n in snaps),
            repr({n: (first[n]["monitors"], figures[n]["monitors"]) for n in snaps}),
        ),
        "node a's threads back to the start": (
            figures[a]["threads"] <= first[a]["threads"],
            f"{first[a]['threads']} -> {figures[a]['threads']}",
        ),
        "sane on every node": (
            all(s is not None and s["sane"] == "ok" for s in snaps.values()),
            repr({n: None if s is None else s["sane"][:80] for n, s in snaps.items()}),
        ),
    }


def print_summary(
    seed: int,
    seconds: float,
    samples: list[tuple[float, dict[str, dict[str, int]]]],
    events: dict[str, int],
    reports: list[Any],
    verdict: dict[str, tuple[bool, str]],
) -> None:
    """Print start and end figures side by side, the work done, and each check."""
    first, last = samples[0][1], samples[-1][1]
    peak: dict[str, dict[str, int]] = {}
    for _t, figures in samples:
        for node, f in figures.items():
            for key, value in f.items():
                peak.setdefault(node, {})[key] = max(peak.get(node, {}).get(key, 0), value)
    print(
        f"\nsoak summary: seed {seed}, {seconds:.0f} s, {events['node_kills']} node kills, "
        f"{events['pg2_crashes']} pg2 crashes"
    )
    for _tag, node, counts, slowest in reports:
        print(f"  churn on {node}: {sum(counts.values())} operations {counts}, slowest write {slowest:.2f} s")
    keys = ["threads", "rss_kib", "processes", "monitors", "pg2_rows", "lock_rows"]
    print(f"  {'node':6} {'figure':10} {'start':>9} {'peak':>9} {'end':>9}")
    for node in last:
        for key in keys:
            start_value = first.get(node, {}).get(key, "-")
            print(f"  {node.split('@')[0]:6} {key:10} {start_value!s:>9} {peak[node][key]:>9} {last[node][key]:>9}")
    print("checks:")
    for name, (ok, detail) in verdict.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")


if __name__ == "__main__":
    sys.exit(main())
