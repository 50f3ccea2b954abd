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

from collections.abc import Callable
from typing import Any

import pytest
from support import WRITE_DEADLINE, members, recv, tagged, wait_until

from repg2 import erlang, gen_server, pg2
from repg2.erlang import Pid
from repg2.testing import Cluster, member_loop, nodefuns, wsane

pytestmark = [pytest.mark.timeout(120), pytest.mark.distributed]


@pytest.fixture
def member(pg2_cluster3: Cluster, fresh_pg2: list[Pid]) -> Callable[[str], Pid]:
    """Return ``member(node)``: start a member process on ``node``, ended after the test."""

    def start(node: str) -> Pid:
        pid = pg2_cluster3.spawn(node, member_loop)
        fresh_pg2.append(pid)
        return pid

    return start


def lock_holders(cluster: Cluster, node: str) -> list[Pid]:
    """The pids holding any global lock on ``node``."""
    return [h.pid for row in cluster.rpc(node, nodefuns.global_lock_rows) for h in row.pid_refs]


def survivors_still_write(
    cluster: Cluster, member: Callable[[str], Pid], survivors: list[str], group: Any
) -> list[Pid]:
    """Join a new member from each survivor (each write must complete); return the new members."""
    new = []
    for node in survivors:
        pid = member(node)
        assert cluster.rpc(node, pg2.join, group, pid, timeout=WRITE_DEADLINE) == "ok"
        new.append(pid)
    return new


@pytest.mark.parametrize("holder", [nodefuns.hold_lock, nodefuns.hold_in_trans], ids=["set_lock", "trans"])
def test_node_killed_holding_a_group_lock_does_not_block_the_survivors(
    pg2_cluster3: Cluster, member: Callable[[str], Pid], holder: Callable[..., None]
) -> None:
    """A node killed while it holds a group's lock (or is inside the write's trans): queued and later joins complete."""
    c3 = pg2_cluster3
    a, b, c = c3.nodes
    me = erlang.self()
    pa, pb, pc = (member(n) for n in (a, b, c))
    assert pg2.create("g") == "ok"
    for pid in (pa, pb, pc):
        assert pg2.join("g", pid) == "ok"
    stuck = c3.spawn(c, holder, me, "g")
    recv(lambda m: m in (("locked", stuck), ("in_trans", stuck)))
    assert lock_holders(c3, a) == [stuck] and lock_holders(c3, b) == [stuck]
    # Two writers now wait for the lock, one on each survivor; then the holder's node dies.
    waiting = [member(a), member(b)]
    for node, pid in zip((a, b), waiting, strict=True):
        c3.spawn(node, nodefuns.call_and_report, me, ("joined", pid), pg2.join, "g", pid)
    c3.kill(c)
    for pid in waiting:
        assert recv(tagged(("joined", pid)))[1] == "ok"
    later = survivors_still_write(c3, member, [a, b], "g")
    want = sorted([pa, pb, *waiting, *later])
    wait_until(lambda: members(c3, a, "g") == want and members(c3, b, "g") == want, what="c's member to go")
    assert lock_holders(c3, a) == [] and lock_holders(c3, b) == []
    wsane([a, b], c3.rpc)


def is_request(request: tuple[Any, ...]) -> Callable[[Any], bool]:
    """Match a gen_server call message carrying ``request``."""
    return lambda m: isinstance(m, tuple) and len(m) == 3 and m[0] == "$gen_call" and m[2] == request


@pytest.mark.parametrize("op", ["join", "leave", "delete"])
def test_node_killed_in_the_middle_of_a_multi_call(
    pg2_cluster3: Cluster, member: Callable[[str], Pid], op: str
) -> None:
    """A writer killed once a has applied its write and b has it queued: b applies it too, and the survivors go on."""
    c3 = pg2_cluster3
    a, b, c = c3.nodes
    me = erlang.self()
    pa, pc = member(a), member(c)
    assert pg2.create("g") == "ok"
    assert pg2.join("g", pa) == "ok"
    assert pg2.join("g", pc) == "ok"
    on_c = member(c)  # the member c's join is about
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
    later = survivors_still_write(c3, member, [a, b], "g")
    want_now = sorted([*(want or []), *later])
    wait_until(lambda: members(c3, a, "g") == want_now and members(c3, b, "g") == want_now, what="the later joins")
    assert lock_holders(c3, a) == [] and lock_holders(c3, b) == []
    wsane([a, b], c3.rpc)
