"""Section 3: throughput and contention.

join+leave pairs per second with 1 client and with 4, on distinct groups
and on one shared group, on 1 and 3 nodes. On one group the clients collide
on ``global``'s lock and back off for random, doubling times: the figure
collapses, as in Erlang, and the back-off sleeps are counted.
"""

from __future__ import annotations

import time
from typing import Any

from repg2 import erlang, pg2
from repg2.erlang import Pid
from repg2.tools.bench.config import Config
from repg2.tools.bench.measure import Figure, Progress
from repg2.tools.bench.nodes import fresh_pg2, take_sleeps

__all__ = ["throughput", "throughput_client"]


def throughput_client(parent: Pid, group: Any, seconds: float, start_at: float) -> None:
    """From ``start_at`` (wall clock), join and leave ``group`` for ``seconds``; report the pairs done.

    A pair that ends after the deadline is finished (a lock must be
    released) but not counted.
    """
    erlang.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds
    me = erlang.self()
    done = 0
    while time.time() < deadline:
        pg2.join(group, me)
        pg2.leave(group, me)
        if time.time() <= deadline:
            done += 1
    erlang.send(parent, ("tp_done", me, done))


def throughput(cluster: Any, n_nodes: int, cfg: Config, reference: dict[str, Any], progress: Progress) -> list[Figure]:
    """Measure join+leave pairs per second: 1 client, 4 on distinct groups, 4 on one group.

    Clients are spread over the nodes (client i on node i mod n), all start
    at the same wall-clock time. Each configuration runs ``cfg.tp_runs``
    times for ``cfg.tp_seconds``.
    """
    nodes = cluster.live_nodes()[:n_nodes]
    fresh_pg2(cluster, nodes)
    me = erlang.self()
    where = f"{n_nodes} node{'s' if n_nodes > 1 else ''}"
    figures = []
    for label, clients, shared in [
        ("1 client", 1, False),
        ("4 clients, distinct groups", 4, False),
        ("4 clients, one group", 4, True),
    ]:
        progress.step(f"throughput: {label} on {where}")
        groups = [("bench_tp", n_nodes, 0 if shared else i) for i in range(clients)]
        for g in set(groups):
            pg2.create(g)
        runs, per_client, sleeps_per_op = [], [], []
        for _ in range(cfg.tp_runs):
            for node in nodes:
                cluster.rpc(node, take_sleeps)
            start_at = time.time() + 0.3
            pids = [
                cluster.spawn(nodes[i % len(nodes)], throughput_client, me, groups[i], cfg.tp_seconds, start_at)
                for i in range(clients)
            ]
            counts = []
            for pid in pids:
                msg = erlang.receive(
                    lambda m: isinstance(m, tuple) and m[:2] == ("tp_done", pid), timeout=cfg.tp_seconds + 60
                )
                counts.append(0 if msg is erlang.TIMEOUT else msg[2])
            total = sum(counts)
            sleeps = sum(cluster.rpc(node, take_sleeps) for node in nodes)
            runs.append(total / cfg.tp_seconds)
            per_client.append(counts)
            sleeps_per_op.append(sleeps / max(total, 1))
        fid = f"throughput.{clients}{'-shared' if shared else ''}.{n_nodes}"
        ref = reference["throughput_4_clients_distinct_ops_per_s"].get(str(n_nodes)) if clients == 4 else None
        figures.append(
            Figure(
                fid,
                "throughput",
                f"join+leave, {label}",
                where,
                "ops/s",
                runs,
                erlang=None if shared else ref,
                extra={
                    "nodes": n_nodes,
                    "clients": clients,
                    "shared": shared,
                    "per_client": per_client,
                    "backoff_sleeps_per_op": sleeps_per_op,
                },
            )
        )
    return figures
