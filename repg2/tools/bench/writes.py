"""Section 2: writes are global.

``join``, ``leave``, ``create`` and ``global_.trans`` from one node of a
cluster of 1, 2, 3 or 5: each pg2 write takes a lock on every node, calls
every node's pg2 server and releases the lock, three ``multi_call`` rounds;
a bare ``multi_call`` of a trivial server is measured beside them as their
floor. Beside pg2, its successor: ``pg.join`` and ``pg.leave`` in the
default scope, one call to the local scope process, which then tells its
peers without waiting for them (no lock, eventually consistent).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from repg2 import erlang, gen_server, global_, pg, pg2
from repg2.erlang import Pid
from repg2.testing import member_loop
from repg2.tools.bench.config import ECHO, Config
from repg2.tools.bench.measure import Figure, latency_figure, timed

__all__ = ["one_trans", "trans_client", "write_latencies"]


def one_trans(nodes: list[str], resource: Any) -> Any:
    """One pg2-shaped write: global:trans around a multi_call of the trivial server on ``nodes``."""
    return global_.trans((resource, erlang.self()), lambda: gen_server.multi_call(nodes, ECHO, "ping"), nodes)


def trans_client(parent: Pid, nodes: list[str], resource: Any, seconds: float, start_at: float) -> None:
    """Wait for ``start_at`` (wall clock), run :func:`one_trans` in a loop for ``seconds``, report the count."""
    erlang.sleep(max(0.0, start_at - time.time()))
    deadline = time.monotonic() + seconds
    done = 0
    while done == 0 or time.monotonic() < deadline:
        one_trans(nodes, resource)
        done += 1
    erlang.send(parent, ("done", erlang.self(), done))


def join_leave_pairs(
    join: Callable[[Any, Pid], Any], leave: Callable[[Any, Pid], Any], group: Any, member: Pid, ops: int
) -> tuple[list[float], list[float], list[float]]:
    """Time ``ops`` join-then-leave pairs (after 5 uncounted): the joins, the leaves, the pairs, in µs."""
    joins: list[float] = []
    leaves: list[float] = []
    pairs: list[float] = []
    for i in range(ops + 5):
        t0 = time.perf_counter()
        join(group, member)
        t1 = time.perf_counter()
        leave(group, member)
        t2 = time.perf_counter()
        if i >= 5:
            joins.append((t1 - t0) * 1e6)
            leaves.append((t2 - t1) * 1e6)
            pairs.append((t2 - t0) * 1e6)
    return joins, leaves, pairs


def write_latencies(n_nodes: int, cfg: Config, reference: dict[str, Any]) -> list[Figure]:
    """Time join, leave, join+leave, create, trans and a bare multi_call from this node, on the current cluster.

    Assumes :func:`~repg2.tools.bench.nodes.setup` ran on every node. Each operation is timed one by
    one, ``cfg.write_ops`` times, after a few warm-up calls.
    """
    ops, runs = cfg.write_ops, cfg.write_runs
    member = erlang.spawn(member_loop)
    where = f"{n_nodes} node{'s' if n_nodes > 1 else ''}"
    key = str(n_nodes)
    try:
        pg2.create("bench_w")
        joins, leaves, pairs = join_leave_pairs(pg2.join, pg2.leave, "bench_w", member, ops)
        serial = iter(range(10**9))
        creates = timed(lambda: pg2.create(("bench_new", n_nodes, next(serial))), ops)
        lock_id = (("bench", "trans"), erlang.self())
        transes = timed(lambda: global_.trans(lock_id, lambda: None), ops)
        nodes = [erlang.node(), *erlang.nodes()]
        bare = timed(lambda: gen_server.multi_call(nodes, ECHO, "ping"), ops)
        pg_joins, pg_leaves, _ = join_leave_pairs(pg.join, pg.leave, "bench_pg", member, ops)
    finally:
        erlang.exit(member, "kill")
    join_ref = reference["join_us"].get(key)
    floor = f"writes.multi_call.{n_nodes}"
    extra = {"nodes": n_nodes}
    return [
        latency_figure(
            f"writes.join_leave.{n_nodes}",
            "writes",
            "join + leave",
            where,
            pairs,
            runs,
            floor=floor,
            erlang=None if join_ref is None else 2 * join_ref,
            extra=extra,
            note="Erlang: twice its pg2:join/2 (no leave figure in the reference)",
        ),
        latency_figure(
            f"writes.join.{n_nodes}", "writes", "join", where, joins, runs, floor=floor, erlang=join_ref, extra=extra
        ),
        latency_figure(f"writes.leave.{n_nodes}", "writes", "leave", where, leaves, runs, floor=floor, extra=extra),
        latency_figure(
            f"writes.create.{n_nodes}",
            "writes",
            "create (new group)",
            where,
            creates,
            runs,
            floor=floor,
            erlang=reference["create_us"].get(key),
            extra=extra,
        ),
        latency_figure(
            f"writes.trans.{n_nodes}",
            "writes",
            "global_.trans (empty fun)",
            where,
            transes,
            runs,
            floor=floor,
            erlang=reference["trans_us"].get(key),
            extra=extra,
        ),
        latency_figure(floor, "writes", "multi_call of a trivial server (floor)", where, bare, runs, extra=extra),
        latency_figure(
            f"writes.pg_join.{n_nodes}", "writes", "pg.join (default scope)", where, pg_joins, runs, extra=extra
        ),
        latency_figure(
            f"writes.pg_leave.{n_nodes}", "writes", "pg.leave (default scope)", where, pg_leaves, runs, extra=extra
        ),
    ]
