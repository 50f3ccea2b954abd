"""Functions that tests/test_dist.py runs on other nodes (through ``cluster.rpc`` and ``cluster.spawn``).

A function sent to another node travels by name, so it must live at module
level in a module the child nodes can import: this one, found through the
``sys.path`` the nodes inherit from the test run. Nothing here is a test.
"""

from __future__ import annotations

from typing import Any

from repg2 import erlang, net_kernel, rpc
from repg2.erlang import Pid


def echo() -> None:
    """Send every ``(from, msg)`` back to ``from`` as ``msg``; stop on ``'stop'``."""
    while True:
        msg = erlang.receive()
        if msg == "stop":
            return
        sender, payload = msg
        erlang.send(sender, payload)


def send_sequence(to: Any, tag: str, count: int) -> None:
    """Send ``(tag, 0) ... (tag, count - 1)`` to ``to``, then ``(tag, 'done')``."""
    for i in range(count):
        erlang.send(to, (tag, i))
    erlang.send(to, (tag, "done"))


def wait_then_exit() -> None:
    """Wait for ``('exit', reason)`` and end with that reason (or ``'normal'`` on ``'stop'``)."""
    msg = erlang.receive()
    if msg == "stop":
        return
    erlang.exit(msg[1])


def wait_forever() -> None:
    """Block in receive until killed by an exit signal."""
    erlang.receive(lambda m: False)


def register_as(name: str) -> Pid:
    """Spawn a waiting process registered as ``name``; return its pid."""
    pid = erlang.spawn(wait_then_exit)
    erlang.register(name, pid)
    return pid


def watch(target: Any, report_to: Pid) -> None:
    """Monitor ``target`` and forward the ``'DOWN'`` to ``report_to`` as ``('watched', down)``."""
    ref = erlang.monitor("process", target)
    erlang.send(report_to, ("watching", ref))
    down = erlang.receive(lambda m: isinstance(m, tuple) and m[:2] == ("DOWN", ref))
    erlang.send(report_to, ("watched", down))


def link_and_report(target: Pid, report_to: Pid) -> None:
    """Trap exits, link to ``target``, then forward the ``'EXIT'`` to ``report_to``."""
    erlang.process_flag("trap_exit", True)
    erlang.link(target)
    # A remote link is asynchronous, as in Erlang: the LINK travels on this
    # node's connection to the target's node, and the test's own messages
    # to the target travel on another connection, in no order with it. A
    # call to the target's node on the same connection as the LINK returns
    # only after the LINK was handled there.
    rpc.call(erlang.node(target), erlang.node, [])
    erlang.send(report_to, ("linked", erlang.self()))
    msg = erlang.receive(lambda m: isinstance(m, tuple) and m[0] == "EXIT")
    erlang.send(report_to, ("exit_seen", msg))


def record_node_events(report_to: Pid) -> None:
    """Subscribe to monitor_nodes; forward each event with whether the node is in nodes() then."""
    net_kernel.monitor_nodes(True)
    erlang.send(report_to, ("subscribed", erlang.self()))
    while True:
        msg = erlang.receive()
        if msg == "stop":
            return
        if isinstance(msg, tuple) and msg[0] in ("nodeup", "nodedown"):
            erlang.send(report_to, ("event", msg, msg[1] in erlang.nodes()))
        else:
            erlang.send(report_to, ("event", msg, None))


def send_to_name(name: str, node: str, msg: Any) -> str:
    """Send ``msg`` to ``(name, node)`` and return this node's name."""
    erlang.send((name, node), msg)
    return erlang.node()


def is_alive(pid: Pid) -> bool:
    """Return ``erlang.is_process_alive(pid)`` on this node."""
    return erlang.is_process_alive(pid)


def creation() -> int:
    """Return this node's creation."""
    return erlang._identity.creation


def sleep_then(seconds: float, value: Any) -> Any:
    """Sleep ``seconds`` then return ``value`` (for rpc timeouts)."""
    erlang.sleep(seconds)
    return value


def fail_with(exc: Exception) -> None:
    """Raise ``exc`` (for rpc's badrpc of an exception)."""
    raise exc


def exit_with(reason: Any) -> None:
    """Exit with ``reason`` (for rpc's badrpc of an exit)."""
    erlang.exit(reason)


def connect(node: str) -> Any:
    """Return ``net_kernel.connect_node(node)`` on this node."""
    return net_kernel.connect_node(node)


def disconnect(node: str) -> bool:
    """Return ``erlang.disconnect_node(node)`` on this node."""
    return erlang.disconnect_node(node)


def round_trips(echo_pid: Pid, count: int) -> int:
    """Send ``count`` messages to an echo process and wait for each answer."""
    me = erlang.self()
    for i in range(count):
        erlang.send(echo_pid, (me, i))
        assert erlang.receive() == i
    return count


class Unloadable(Exception):
    """An exception that pickles but cannot be unpickled: its constructor needs two arguments."""

    def __init__(self, a: Any, b: Any) -> None:
        super().__init__(f"{a}/{b}")


def raise_unloadable() -> None:
    """Raise an exception that cannot travel back as itself."""
    raise Unloadable(1, 2)


def kill_self() -> None:
    """Send ``exit(self(), 'kill')`` to the calling process and wait to die."""
    erlang.exit(erlang.self(), "kill")
    erlang.receive(lambda m: False)
