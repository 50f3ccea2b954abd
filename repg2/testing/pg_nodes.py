"""The helpers pg's tests run on the nodes of a cluster: pg_SUITE's own helpers, for Python nodes.

``lib/kernel/test/pg_SUITE.erl`` drives its peers with a few small helpers:
``stop_proc/1`` (kill a process and wait for its end), ``sync/1`` (a
``sys`` call to a scope process: when it returns, every message queued
before it has been handled), ``sync_via/2`` (the same, seen from another
node), ``ensure_peers_info/2`` and a ``second_monitor`` process that records
the notifications it gets. A function sent to another node through
``Cluster.rpc`` or ``Cluster.spawn`` travels by name, so these live here, at
module level, importable on every node.

The barriers lean on one property of the distribution, as pg_SUITE's do (it
says so of ``ensure_peers_info``: "this relies on current ERTS
implementation; not language guarantees"): all messages from one node to
another travel over one connection, in the order they were sent, whatever
process sent them.

Nothing here is part of the translation.
"""

from __future__ import annotations

from typing import Any

from repg2 import erlang, gen_server, pg
from repg2.erlang import Pid


def start_scope(scope: str) -> Pid:
    """Start a scope process on this node, outside any supervisor, and return its pid.

    Erlang: pg:start/1 (pg_SUITE's spawn_node starts each peer's scope so)

    Not linked: it outlives the rpc process that started it.
    """
    result = pg.start(scope)
    assert result[0] == "ok" and isinstance(result[1], Pid), result
    return result[1]


def stop_scope(scope: str) -> str:
    """Stop the scope process of this node if it runs; return ``'ok'``."""
    if isinstance(erlang.whereis(scope), Pid):
        gen_server.stop(scope)
    return "ok"


def stop_proc(pid: Pid) -> str:
    """Kill ``pid`` and wait until it is gone (pg_SUITE's ``stop_proc/1``)."""
    ref = erlang.monitor("process", pid)
    erlang.exit(pid, "kill")
    erlang.receive(lambda m: isinstance(m, tuple) and len(m) == 5 and m[:2] == ("DOWN", ref))
    return "ok"


def sync_via(scope: str, to_node: str) -> str:
    """Make sure the scope process on ``to_node`` has handled all this node's scope process sent it.

    Erlang: sys:get_state/1 (twice; pg_SUITE's sync_via({Scope, Node}, Scope) does it from the scope process)

    First the local scope process handles everything in its queue (so what
    it will send because of it is sent), then a call from this node to the
    scope on ``to_node`` travels behind those messages on the same
    connection, and returns once they are handled.
    """
    gen_server.get_state(scope)
    gen_server.get_state((scope, to_node))
    return "ok"


def known_peers(scope: str) -> list[str]:
    """Return the nodes whose scope process this node's scope knows (its overlay network), sorted."""
    if not isinstance(erlang.whereis(scope), Pid):
        return []
    state: pg.State = gen_server.get_state(scope)
    return sorted(erlang.node(peer) for peer in state.remote)


def second_monitor(scope: Any, group: Any, control: Pid, kind: str) -> None:
    """Subscribe to ``scope`` (``kind`` 'scope') or to ``group`` in it ('group'), report, and record notifications.

    Erlang: pg_SUITE's second_monitor/4 and second_monitor/1

    Sends ``(self(), ref)`` to ``control``, then keeps every message it gets,
    until a ``gen_server.call(pid, 'flush')`` asks for them (oldest first);
    then it ends, and its subscription with it. ``scope`` may be a scope
    name or a scope process of another node.
    """
    if kind == "scope":
        ref, _groups = pg.monitor_scope(scope)
    else:
        ref, _members = pg.monitor(scope, group)
    erlang.send(control, (erlang.self(), ref))
    kept: list[Any] = []
    while True:
        msg = erlang.receive()
        match msg:
            case ("$gen_call", from_, "flush"):
                gen_server.reply(from_, kept)
                return
            case _:
                kept.append(msg)
