"""Faults in the middle of a pg2 write: the writer's node killed half-way never leaves the cluster stuck.

A pg2 write is ``global:trans`` on the group's lock around a
``gen_server:multi_call`` to every node's pg2 server. These tests stop a
write at each point of that sequence and kill the writer's node with
SIGKILL there:

- while a process of the node *holds the group's lock* (``global:set_lock``
  with pg2's own lock id), with writers on the other nodes already waiting
  for it;
- *inside the transaction, before the multi_call* (nothing applied yet);
- *in the middle of the multi_call*: node ``a`` has applied the write, node
  ``b``'s server (suspended) has the request queued, the writer still waits.

In each case the survivors' waiting and later writes complete (each within
a deadline: a stuck lock would fail the test), the killed node's members
are removed from every survivor, no lock is left held, and ``wsane`` holds.
The global servers see the holder's ``'DOWN'`` (``noconnection``) and drop
its lock; a request already delivered is still applied, and a member of the
dead node that it adds is removed again by its monitor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from repg2 import erlang, gen_server, pg2
from repg2.erlang import Pid
from repg2.testing import Cluster, member_loop, nodefuns, stop_pg2, wsane

pytestmark = [pytest.mark.timeout(120), pytest.mark.distributed]

WRITE_TIMEOUT = 60.0  # seconds for one pg2 write: longer means a write is stuck
_SPAWNED: list[Pid] = []  # member processes started by a test, ended by the fixture


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def fresh() -> Iterator[None]:
    """A fresh pg2 on this node before and after the test, and no member process left behind here."""
    stop_pg2()
    yield
    stop_pg2()
    for pid in _SPAWNED:
        if pid.is_local():
            erlang.exit(pid, "kill")
    _SPAWNED.clear()


def member(cluster: Cluster, node: str) -> Pid:
    """Start a member process on ``node`` (remembered, so the fixture can end it on this node)."""
    pid = cluster.spawn(node, member_loop)
    _SPAWNED.append(pid)
    return pid


def start_pg2_everywhere(cluster: Cluster) -> None:
    """Start pg2 on every node, so that every write reaches every node."""
    for node in cluster.nodes:
        cluster.rpc(node, nodefuns.start_pg2)


def members(cluster: Cluster, node: str, group: Any) -> Any:
    """``pg2:get_members(group)`` read on ``node``."""
    return cluster.rpc(node, pg2.get_members, group)


def recv(match: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    """Receive a matching message in the test process; fail after ``timeout`` seconds."""
    msg = erlang.receive(match, timeout=timeout)
    assert msg is not erlang.TIMEOUT, f"no matching message within {timeout} s; mailbox: {erlang.flush()!r}"
    return msg


def tagged(tag: Any) -> Callable[[Any], bool]:
    """Match a tuple whose first element is ``tag``."""
    return lambda m: isinstance(m, tuple) and len(m) >= 1 and m[0] == tag


def lock_holders(cluster: Cluster, node: str) -> list[Pid]:
    """The pids holding any global lock on ``node``."""
    return [h.pid for row in cluster.rpc(node, nodefuns.global_lock_rows) for h in row.pid_refs]


def survivors_still_write(cluster: Cluster, survivors: list[str], group: Any) -> list[Pid]:
    """Join a new member from each survivor (each write must complete); return the new members."""
    new = []
    for node in survivors:
        pid = member(cluster, node)
        assert cluster.rpc(node, pg2.join, group, pid, timeout=WRITE_TIMEOUT) == "ok"
        new.append(pid)
    return new


@pytest.mark.parametrize("holder", [nodefuns.hold_lock, nodefuns.hold_in_trans], ids=["set_lock", "trans"])
def test_node_killed_holding_a_group_lock_does_not_block_the_survivors(
    cluster: Callable[..., Cluster], fresh: None, holder: Callable[..., None]
) -> None:
    """A node killed while it holds a group's lock (or is inside the write's trans): queued and later joins complete."""
    c3 = cluster(3)
    a, b, c = c3.nodes
    start_pg2_everywhere(c3)
    me = erlang.self()
    pa, pb, pc = (member(c3, n) for n in (a, b, c))
    assert pg2.create("g") == "ok"
    for pid in (pa, pb, pc):
        assert pg2.join("g", pid) == "ok"
    stuck = c3.spawn(c, holder, me, "g")
    recv(lambda m: m in (("locked", stuck), ("in_trans", stuck)))
    assert lock_holders(c3, a) == [stuck] and lock_holders(c3, b) == [stuck]
    # Two writers now wait for the lock, one on each survivor; then the holder's node dies.
    waiting = [member(c3, a), member(c3, b)]
    for node, pid in zip((a, b), waiting, strict=True):
        c3.spawn(node, nodefuns.call_and_report, me, ("joined", pid), pg2.join, "g", pid)
    c3.kill(c)
    for pid in waiting:
        assert recv(tagged(("joined", pid)))[1] == "ok"
    later = survivors_still_write(c3, [a, b], "g")
    want = sorted([pa, pb, *waiting, *later])
    wait_until(lambda: members(c3, a, "g") == want and members(c3, b, "g") == want, what="c's member to go")
    assert lock_holders(c3, a) == [] and lock_holders(c3, b) == []
    wsane([a, b], c3.rpc)


def is_request(request: tuple[Any, ...]) -> Callable[[Any], bool]:
    """Match a gen_server call message carrying ``request``."""
    return lambda m: isinstance(m, tuple) and len(m) == 3 and m[0] == "$gen_call" and m[2] == request


@pytest.mark.parametrize("op", ["join", "leave", "delete"])
def test_node_killed_in_the_middle_of_a_multi_call(cluster: Callable[..., Cluster], fresh: None, op: str) -> None:
    """A writer killed once a has applied its write and b has it queued: b applies it too, and the survivors go on."""
    c3 = cluster(3)
    a, b, c = c3.nodes
    start_pg2_everywhere(c3)
    me = erlang.self()
    pa, pc = member(c3, a), member(c3, c)
    assert pg2.create("g") == "ok"
    assert pg2.join("g", pa) == "ok"
    assert pg2.join("g", pc) == "ok"
    on_c = member(c3, c)  # the member c's join is about
    request = {"join": ("join", "g", on_c), "leave": ("leave", "g", pa), "delete": ("delete", "g")}[op]
    applied_on_a = {
        "join": lambda: members(c3, a, "g") == sorted([pa, pc, on_c]),
        "leave": lambda: members(c3, a, "g") == [pc],
        "delete": lambda: pg2.which_groups() == [],
    }[op]
    c3.rpc(b, gen_server.suspend, "pg2")  # b's server takes system messages only: c's request waits in its queue
    try:
        c3.spawn(c, nodefuns.call_and_report, me, "done", getattr(pg2, op), *request[1:])
        wait_until(applied_on_a, what=f"a to apply c's {op}")
        wait_until(lambda: any(map(is_request(request), c3.rpc(b, nodefuns.queued, "pg2"))), what="b's queue")
        assert erlang.receive(tagged("done"), timeout=0) is erlang.TIMEOUT  # c's write is still in its multi_call
        c3.kill(c)
    finally:
        c3.rpc(b, gen_server.resume, "pg2")
    # b applies what c sent before dying; c's members go, by their monitors, wherever they were joined.
    want = {"join": [pa], "leave": [], "delete": None}[op]
    for node in (a, b):
        if want is None:
            wait_until(lambda n=node: c3.rpc(n, pg2.which_groups) == [], what=f"{node} to apply the delete")
        else:
            wait_until(lambda n=node: members(c3, n, "g") == want, what=f"{node} to drop c's members")
    assert pg2.create("g") == "ok"
    later = survivors_still_write(c3, [a, b], "g")
    want_now = sorted([*(want or []), *later])
    wait_until(lambda: members(c3, a, "g") == want_now and members(c3, b, "g") == want_now, what="the later joins")
    assert lock_holders(c3, a) == [] and lock_holders(c3, b) == []
    wsane([a, b], c3.rpc)
