"""Functions that reliability tests and the soak run on the nodes of a cluster.

There is no Erlang original: this is what OTP's test suites write as small
local funs and ``rpc:call(Node, M, F, A)`` targets (pg2_SUITE's ``sane/0``,
its ``forever/0`` member processes, the lock holders of global_SUITE). A
function sent to another node through ``Cluster.rpc`` or ``Cluster.spawn``
travels by name, so it must live at module level in an importable module;
this one is in the package so that ``benchmarks/soak.py`` (which has no
``tests/`` on its path) can use it too.

What is here:

- :func:`snapshot`: one node's whole pg2 view and its ``sane()`` verdict in
  one round trip, so a test can poll a cluster until it has settled;
- :func:`restart_pg2_server` and :func:`crash_pg2`: the two ways a test
  makes a node's pg2 server start from an empty table;
- :func:`hold_lock` and :func:`hold_in_trans`: processes that stop in the
  middle of a pg2 write (holding the group's lock, before the multi_call),
  for the faults-mid-write tests;
- :func:`churn`: a process that joins, leaves, kills and deletes at random
  for as long as it is let, the load of ``benchmarks/soak.py``;
- :func:`stats`: threads, memory, processes, monitors and table rows of a
  node, for the soak's leak checks.

Nothing here is part of the translation.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repg2 import erlang, ets, gen_server, global_, kernel, pg2
from repg2.demo import member_loop
from repg2.erlang import Pid
from repg2.pg2_checks import sane

__all__ = [
    "churn",
    "crash_pg2",
    "global_lock_rows",
    "hold_in_trans",
    "hold_lock",
    "call_and_report",
    "kill",
    "queued",
    "restart_pg2_server",
    "snapshot",
    "start_pg2",
    "stats",
]


def snapshot() -> dict[str, Any] | None:
    """Return this node's pg2 view ``{'groups', 'members', 'sane', 'locks'}``, or None if pg2 is not running.

    Erlang: none (pg2_SUITE reads which_groups/get_members and runs sane/0 by rpc)

    ``'sane'`` is ``'ok'`` or the text of sane()'s AssertionError, so that a
    table caught mid-update is reported rather than raised: the caller is
    polling until the cluster settles. The reads go straight to the table
    when the server runs; they never start pg2 (the public API would).
    """
    if erlang.whereis(pg2.SERVER) == "undefined" or ets.info(pg2.TABLE, "size") == "undefined":
        return None
    try:
        groups = pg2.all_groups()
        members = {group: pg2.group_members(group) for group in groups}
        try:
            verdict = sane()
        except AssertionError as exc:
            verdict = str(exc)
    except erlang.ErlangError:  # the table went away under us: the server is restarting
        return None
    return {"groups": groups, "members": members, "sane": verdict, "locks": global_lock_rows()}


def start_pg2() -> Pid:
    """Make sure pg2 runs on this node; return its pid.

    Erlang: none (calls pg2:start/0 on a node and returns just the pid)
    """
    result = pg2.start()
    if result[0] == "ok" and isinstance(result[1], Pid):
        return result[1]
    # ('error', ('already_started', Pid)): a supervisor restart won a race with us.
    pid = erlang.whereis(pg2.SERVER)
    assert isinstance(pid, Pid), f"pg2 did not start: {result!r}"
    return pid


def crash_pg2() -> Pid | str:
    """Kill this node's pg2 server (``exit(Pid, kill)``); return the pid it had, or 'undefined'.

    Erlang: none (calls erlang:exit/2 on whereis(pg2) with kill, as a test does)

    ``kernel_safe_sup`` restarts it with an empty table that the exchange
    refills; after its fourth restart in an hour the supervisor gives up, so
    callers follow with :func:`start_pg2`, which boots a new one.
    """
    pid = erlang.whereis(pg2.SERVER)
    if isinstance(pid, Pid):
        ref = erlang.monitor("process", pid)
        erlang.exit(pid, "kill")
        erlang.receive(lambda m: isinstance(m, tuple) and len(m) == 5 and m[:2] == ("DOWN", ref))
    return pid


def restart_pg2_server(old: Pid | str) -> Pid:
    """Wait until pg2 runs again under a pid other than ``old`` (starting it if need be); return it.

    Erlang: none (the supervisor's restart, or pg2:start/0 when it gave up)
    """
    while True:
        pid = erlang.whereis(pg2.SERVER)
        if isinstance(pid, Pid) and pid != old:
            gen_server.get_state(pid)  # init has run: the table exists and the exchange is asked for
            return pid
        # While kernel_safe_sup lives it restarts pg2 itself, or is giving up (and then
        # refuses start_child with 'shutdown'); only once it is gone do we boot a new one.
        if erlang.whereis(kernel.SAFE_SUP) == "undefined":
            start_pg2()
        erlang.sleep(0.005)


def kill(pid: Pid) -> bool:
    """Send ``pid`` the untrappable exit signal ``kill``.

    Erlang: none (calls erlang:exit/2 on a node, for the tests)
    """
    return erlang.exit(pid, "kill")


def hold_lock(report_to: Pid, name: Any) -> None:
    """Take pg2's lock on group ``name`` as pg2:join/2 would, report ``('locked', self())``, then hang.

    Erlang: none (global:set_lock({{pg2, Name}, self()}), the first half of pg2's trans)

    The lock is taken on every connected node, with pg2's own lock id. The
    process never releases it: only its death (or its node's) can.
    """
    me = erlang.self()
    assert global_.set_lock((("pg2", name), me)) is True
    erlang.send(report_to, ("locked", me))
    erlang.receive(lambda m: False)


def hold_in_trans(report_to: Pid, name: Any) -> None:
    """Enter pg2's ``global:trans`` on group ``name``, report ``('in_trans', self())``, then hang.

    Erlang: none (global:trans({{pg2, Name}, self()}, Fun) with a Fun that never calls multi_call)

    This is a pg2 write stopped between taking the lock and the
    ``multi_call`` that would apply it: a node killed now has changed nothing
    but holds the lock everywhere.
    """
    me = erlang.self()

    def stuck() -> None:
        """Tell the test we are inside the transaction, then wait forever.

        Erlang: none (the Fun of the transaction)
        """
        erlang.send(report_to, ("in_trans", me))
        erlang.receive(lambda m: False)

    global_.trans((("pg2", name), me), stuck)


def call_and_report(report_to: Pid, tag: Any, fun: Callable[..., Any], *args: Any) -> None:
    """Call ``fun(*args)`` (say ``pg2.join``) and send ``(tag, result)`` to ``report_to``.

    Erlang: none (a process that runs one call and reports, as suites spawn)
    """
    erlang.send(report_to, (tag, fun(*args)))


def queued(name: str) -> list[Any]:
    """Return a copy of the mailbox of the process registered as ``name`` (empty if there is none).

    Erlang: none (reads process_info(whereis(Name), messages) on a node)
    """
    pid = erlang.whereis(name)
    proc = erlang._local(pid) if isinstance(pid, Pid) else None
    if proc is None:
        return []
    with proc.cond:
        return list(proc.mailbox)


def global_lock_rows() -> list[Any]:
    """Return this node's ``global_locks`` rows (empty when no lock server runs).

    Erlang: none (ets:tab2list(global_locks), as global_SUITE reads it)
    """
    if erlang.whereis(global_.SERVER) == "undefined":
        return []
    return global_.get_locks()


def stats() -> dict[str, int]:
    """Return this node's resource counts: threads, RSS, processes, monitors, pg2 and lock rows.

    Erlang: none (erlang:system_info(process_count), erlang:memory(total) and friends)

    ``monitors`` counts the monitors every local process holds (pg2's on its
    members among them); ``rss_kib`` is the resident set of this OS process
    from ``/proc`` (0 where there is none).
    """
    with erlang._lock:
        procs = [p for p in erlang._processes.values() if not p.dead]
        monitors = sum(len(p.monitors) for p in procs)
        watchers = sum(len(p.watchers) for p in procs)
    rss = 0
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    pg2_rows = ets.info(pg2.TABLE, "size") if erlang.whereis(pg2.SERVER) != "undefined" else 0
    return {
        "threads": threading.active_count(),
        "rss_kib": rss,
        "processes": len(procs),
        "monitors": monitors,
        "watchers": watchers,
        "pg2_rows": pg2_rows if isinstance(pg2_rows, int) else 0,
        "lock_rows": len(global_lock_rows()),
    }


def churn(report_to: Pid, seed: int, groups: list[Any], pause: float, population: int = 40) -> None:
    """Change pg2 at random until told ``'stop'``; then end every member made and report.

    Erlang: none (the load generator of a soak test)

    Each turn (``pause`` seconds apart) is one of: start a member on this
    node and join it, join a member again, leave once, kill a member,
    create a group, and rarely delete one. At most ``population`` members
    live at once (a start beyond it kills one instead), so that a steady
    state exists in which any growth is a leak. Writes go through the public API
    from this node, so they contend for the groups' locks with the churn on
    the other nodes. The report is ``('churned', node, counts, slowest)``
    where ``slowest`` is the longest single write in seconds.
    """
    rng = random.Random(seed)
    mine: list[Pid] = []
    counts: Counter[str] = Counter()
    slowest = 0.0
    ops = ["spawn_join", "join", "leave", "kill", "create", "delete"]
    while erlang.receive(lambda m: m == "stop", timeout=pause) is erlang.TIMEOUT:
        op = rng.choices(ops, weights=[4, 3, 4, 2, 1, 0.1])[0]
        group = rng.choice(groups)
        started = time.monotonic()
        if op == "spawn_join" and len(mine) >= population:
            op = "kill"
        if op == "spawn_join" or (not mine and op in ("join", "leave", "kill")):
            op = "spawn_join"
            mine.append(erlang.spawn(member_loop))
            if pg2.join(group, mine[-1]) != "ok":
                pg2.create(group)
                pg2.join(group, mine[-1])
        elif op == "join":
            pg2.join(group, rng.choice(mine))
        elif op == "leave":
            pg2.leave(group, rng.choice(mine))
        elif op == "kill":
            erlang.exit(mine.pop(rng.randrange(len(mine))), "kill")
        elif op == "create":
            pg2.create(group)
        else:
            pg2.delete(group)
        slowest = max(slowest, time.monotonic() - started)
        counts[op] += 1
    for pid in mine:
        erlang.exit(pid, "kill")
    erlang.send(report_to, ("churned", erlang.node(), dict(counts), slowest))
