"""Publish/subscribe over pg2, after Phoenix PubSub's pg2 adapter; and a chat on top of it.

There is no Erlang original: this is the idea behind ``Phoenix.PubSub.PG2``
(phoenix_pubsub 1.x, Elixir), the best-known user of pg2, told in this
project's Python. It shows what pg2 is for.

How it works
------------
Each node runs one PubSub server (a gen_server registered as ``'pubsub'``).
When it starts it creates the pg2 group :data:`GROUP` (Phoenix names it
``{:phx, server_name}``) and joins it, so the group holds exactly one
server per node. Subscriptions are local: a process subscribes to a topic
on its own node's server, which records ``(topic, pid)`` in an ETS ``bag``
and monitors the subscriber.

To broadcast, a process reads the group's members from pg2 (a local read:
no message), then for each PubSub server: if it is on this node, sends the
message straight to the local subscribers of the topic (reading the ETS
table); otherwise sends that server one ``('forward_to_local', from, topic,
msg)``, and the remote server delivers to *its* local subscribers. So a
broadcast costs one message per *node*, not per subscriber, across the
network; pg2's membership is what tells the broadcaster which nodes exist.

When a node goes down, every other node's pg2 removes that node's PubSub
server from the group (its monitor fires), and broadcasts skip it.

The chat: a user is a process (:func:`user`) that keeps the lines it
receives; :func:`new_user` starts one on the calling node and subscribes
it; telling a user ``('say', text)`` makes it broadcast
``('chat', node, name, text)`` to its topic.
"""

from __future__ import annotations

import sys
from typing import Any

from repg2 import erlang, ets, gen_server, pg2
from repg2.erlang import Pid

__all__ = [
    "GROUP",
    "SERVER",
    "broadcast",
    "history",
    "local_broadcast",
    "new_user",
    "say",
    "start",
    "subscribe",
    "subscribers",
    "user",
]

GROUP = ("phx", "pubsub")  # the pg2 group of PubSub servers, one per node (Phoenix: {:phx, server_name})
SERVER = "pubsub"  # each node's PubSub server's registered name
TABLE = "pubsub_subscribers"  # bag of (topic, pid): the local subscribers, readable by any local process


# == The PubSub server ==================================================================


def start() -> Any:
    """Start this node's PubSub server; return ``('ok', pid)``.

    Its ``init`` creates the pg2 group and joins it: start pg2 on every
    node first, or the join misses nodes whose pg2 has not started yet.
    """
    return gen_server.start(("local", SERVER), sys.modules[__name__], [])


def init(_args: Any) -> tuple[str, Any]:
    """Make the subscriber table, create the group and join it."""
    ets.new(TABLE, ["bag", "protected", "named_table"])
    pg2.create(GROUP)
    pg2.join(GROUP, erlang.self())
    return ("ok", {})  # state: monitor ref -> (topic, subscriber pid)


def subscribe(pid: Pid, topic: Any) -> str:
    """Subscribe a local process to ``topic``; return ``'ok'``."""
    result: str = gen_server.call(SERVER, ("subscribe", pid, topic))
    return result


def handle_call(request: Any, _from: Any, state: dict[Any, Any]) -> tuple[Any, ...]:
    """Record a subscriber and monitor it."""
    match request:
        case ("subscribe", Pid() as pid, topic):
            state[erlang.monitor("process", pid)] = (topic, pid)
            ets.insert(TABLE, (topic, pid))
            return ("reply", "ok", state)
    return ("reply", ("error", ("unknown_call", request)), state)


def handle_cast(_msg: Any, state: Any) -> tuple[str, Any]:
    """Ignore casts: the server takes none."""
    return ("noreply", state)


def handle_info(msg: Any, state: dict[Any, Any]) -> tuple[str, Any]:
    """Deliver a broadcast forwarded from another node; forget a subscriber that died."""
    match msg:
        case ("forward_to_local", _from, topic, payload):
            local_broadcast(topic, payload)
        case ("DOWN", ref, "process", _pid, _reason) if ref in state:
            ets.delete_object(TABLE, state.pop(ref))
    return ("noreply", state)


def terminate(_reason: Any, _state: Any) -> str:
    """Nothing to clean: the table goes with its owner, the membership with the monitor."""
    return "ok"


# == Broadcasting =============================================================================


def broadcast(topic: Any, msg: Any) -> str | tuple[str, str]:
    """Send ``msg`` to every subscriber of ``topic`` on every node; return ``'ok'``.

    Runs in the caller's process: the group's members are read from this
    node's pg2 table (no message); this node's subscribers get ``msg``
    directly, each other node's PubSub server one ``forward_to_local``.
    """
    members = pg2.get_members(GROUP)
    if not isinstance(members, list):
        return ("error", "no_such_group")
    for server in members:
        if erlang.node(server) == erlang.node():
            local_broadcast(topic, msg)
        else:
            erlang.send(server, ("forward_to_local", erlang.self(), topic, msg))
    return "ok"


def local_broadcast(topic: Any, msg: Any) -> None:
    """Send ``msg`` to this node's subscribers of ``topic`` (read from the ETS table)."""
    for _topic, pid in ets.lookup(TABLE, topic):
        erlang.send(pid, msg)


def subscribers(topic: Any) -> list[Pid]:
    """Return this node's subscribers of ``topic``."""
    return [pid for _topic, pid in ets.lookup(TABLE, topic)]


# == The chat ======================================================================================


def user(name: str, topic: Any) -> None:
    """Run a chat user: keep every line received; on ``('say', text)`` broadcast a line.

    Also answers ``('history', from, ref)`` with ``(ref, lines)``.
    """
    lines: list[tuple[Any, ...]] = []
    while True:
        match erlang.receive():
            case ("say", text):
                broadcast(topic, ("chat", erlang.node(), name, text))
            case ("history", Pid() as asker, ref):
                erlang.send(asker, (ref, list(lines)))
            case ("chat", *_) as line:
                lines.append(line)


def new_user(name: str, topic: Any) -> Pid:
    """Start a chat user on this node, subscribed to ``topic``; return its pid."""
    pid = erlang.spawn(user, name, topic)
    subscribe(pid, topic)
    return pid


def say(pid: Pid, text: str) -> str:
    """Tell a user (on any node) to say ``text``; return ``'ok'``."""
    erlang.send(pid, ("say", text))
    return "ok"


def history(pid: Pid, timeout: float = 5.0) -> list[tuple[Any, ...]]:
    """Ask a user (on any node) for the lines it has received, oldest first."""
    ref = erlang.make_ref()
    erlang.send(pid, ("history", erlang.self(), ref))
    reply = erlang.receive(lambda m: isinstance(m, tuple) and len(m) == 2 and m[0] == ref, timeout=timeout)
    if reply is erlang.TIMEOUT:
        raise TimeoutError(f"user {pid!r} did not answer within {timeout} s")
    lines: list[tuple[Any, ...]] = reply[1]
    return lines
