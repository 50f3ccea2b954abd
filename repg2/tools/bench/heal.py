"""Section 4: a heal costs one exchange.

The time from reconnecting a partition of a 3-node cluster until every
node lists every membership made on the other side, for 100 and 1,000
memberships. The clock is ``time.monotonic``, the system-wide
``CLOCK_MONOTONIC`` on Linux, so the nodes' readings compare.
"""

from __future__ import annotations

import time
from typing import Any

from repg2 import dist, erlang, ets, net_kernel, pg2, terms
from repg2.erlang import Pid
from repg2.testing import member_loop
from repg2.tools.bench.config import Config
from repg2.tools.bench.measure import Figure, Progress
from repg2.tools.bench.nodes import fresh_pg2

__all__ = ["count_members", "heal_watcher", "heals"]


def heal_watcher(parent: Pid, group: Any, count: int, last: Pid) -> None:
    """Wait until this node lists ``count`` members of ``group``; report the monotonic time then.

    Polls for the member row of ``last`` (the exchange's last member, so
    every other one is in before it) every millisecond, then checks the
    whole count, so the poll itself costs the node little.
    """
    while True:
        if ets.member(pg2.TABLE, ("member", group, last)):
            found = pg2.get_members(group)
            if isinstance(found, list) and len(found) >= count:
                erlang.send(parent, ("healed", erlang.node(), time.monotonic()))
                return
        erlang.sleep(0.001)


def count_members(group: Any) -> int:
    """Return how many members this node lists for ``group`` (-1 if it does not know it)."""
    found = pg2.get_members(group)
    return len(found) if isinstance(found, list) else -1


def heals(cluster: Any, cfg: Config, reference: dict[str, Any], progress: Progress) -> list[Figure]:
    """Time heals of a partition ``[a] | [b, c]`` after memberships were made on ``a``'s side.

    During the partition ``b`` and ``c`` drop ``a``'s members (their
    monitors fire ``'noconnection'``); ``a`` keeps them. The clock starts
    when ``a`` connects to ``b`` (the partition's deny lists are already
    lifted, untimed) and stops when the last of ``b`` and ``c`` lists every
    member: connection set-up, the ``nodeup`` exchange each way, and ``b``'s
    and ``c``'s servers storing (and monitoring) every member.
    """
    a, b, c = cluster.live_nodes()[:3]
    fresh_pg2(cluster, [a, b, c])
    group = "bench_heal"
    me = erlang.self()
    pg2.create(group)
    members: list[Pid] = []
    figures = []
    try:
        for count in cfg.heal_counts:
            progress.step(f"heal: 3 nodes, {count:,} memberships")
            cluster.partition([a], [b, c])
            while len(members) < count:
                pid = erlang.spawn(member_loop)
                pg2.join(group, pid)
                members.append(pid)
            last = max(members, key=terms.term_key)
            runs = []
            for attempt in range(cfg.heal_repeats):
                if attempt:
                    cluster.partition([a], [b, c])
                cluster.wait_for(
                    lambda: all(cluster.rpc(n, count_members, group) == 0 for n in (b, c)),
                    30.0,
                    "the members to leave b and c",
                )
                for node in (b, c):
                    cluster.spawn(node, heal_watcher, me, group, count, last)
                for node in (a, b, c):
                    cluster.rpc(node, dist.unblock)
                t0 = time.monotonic()
                net_kernel.connect_node(b)
                net_kernel.connect_node(c)
                seen = []
                for _ in (b, c):
                    msg = erlang.receive(lambda m: isinstance(m, tuple) and m[0] == "healed", timeout=60)
                    if msg is not erlang.TIMEOUT:
                        seen.append(msg[2])
                runs.append((max(seen) - t0) * 1e3 if len(seen) == 2 else float("nan"))
                cluster.wait_connected([a, b, c])
            figures.append(
                Figure(
                    f"heal.{count}",
                    "heal",
                    "heal until every node agrees",
                    f"{count:,} memberships",
                    "ms",
                    runs,
                    erlang=reference["heal_ms"].get(str(count)),
                    extra={"nodes": 3, "memberships": count},
                )
            )
    finally:
        for pid in members:
            erlang.exit(pid, "kill")
    return figures
