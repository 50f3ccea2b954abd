"""The helpers tests and the soak run on nodes (``repg2.testing.nodefuns``), checked on this node.

Most of them run inside child nodes, some inside nodes that a test then
kills outright (which writes no coverage data and tells nothing if a
helper is wrong). What each promises is pinned here, in this process:
an echo answers every message, a lock holder holds pg2's lock until it
dies, the pg2 and pg starters are idempotent, and the read-outs answer
when there is nothing to read.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import down_reason, recv, tagged, wait_until

from repg2 import erlang, gen_server, global_, kernel
from repg2.erlang import Pid
from repg2.testing import nodefuns as nf

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("isolated_runtime")]


@pytest.fixture
def with_global() -> Iterator[None]:
    """A kernel (global's lock server) on this node for the test, a fresh one after it."""
    kernel.boot()
    yield
    sup = erlang.whereis(kernel.SAFE_SUP)
    if isinstance(sup, Pid):
        gen_server.stop(sup, "shutdown")
    kernel.boot()


def test_round_trips_count_each_echoed_message() -> None:
    """round_trips sends a message to an echo process and waits for each answer: all of them come back."""
    echo = erlang.spawn(nf.echo)
    assert nf.round_trips(echo, 5) == 5
    ref = erlang.monitor("process", echo)
    erlang.send(echo, "stop")
    assert down_reason(ref) == "normal"


@pytest.mark.parametrize(("holder", "tag"), [(nf.hold_lock, "locked"), (nf.hold_in_trans, "in_trans")])
@pytest.mark.usefixtures("with_global")
def test_a_lock_holder_keeps_pg2s_lock_until_it_dies(holder: object, tag: str) -> None:
    """hold_lock and hold_in_trans take pg2's lock on the group, report, and hold it until their process dies."""
    me = erlang.self()
    pid = erlang.spawn(holder, me, "held_group")  # type: ignore[arg-type]
    assert recv(tagged(tag, pid)) == (tag, pid)
    assert any(("pg2", "held_group") in row for row in nf.global_lock_rows()), nf.global_lock_rows()
    assert global_.set_lock((("pg2", "held_group"), me), [erlang.node()], 0) is False
    erlang.exit(pid, "kill")
    wait_until(lambda: not nf.global_lock_rows(), "the lock to go with its holder")
    assert global_.set_lock((("pg2", "held_group"), me), [erlang.node()], 0) is True
    global_.del_lock((("pg2", "held_group"), me))


@pytest.mark.usefixtures("fresh_pg2")
def test_the_pg2_helpers_are_idempotent_and_snapshot_needs_pg2() -> None:
    """Without pg2 a snapshot is None; start_pg2 twice gives the running server; restart_pg2_server waits for a new one."""
    assert nf.snapshot() is None
    first = nf.start_pg2()
    assert nf.start_pg2() == first
    old = nf.crash_pg2()
    assert old == first
    new = nf.restart_pg2_server(old)
    assert new != first and erlang.whereis("pg2") == new
    assert nf.snapshot() == {"groups": [], "members": {}, "sane": "ok", "locks": []}


def test_the_pg_scope_helpers_are_idempotent() -> None:
    """start_pg_scope gives the running scope when there is one; stop_pg_scope without a scope does nothing."""
    assert nf.stop_pg_scope() == "ok"
    scope = nf.start_pg_scope()
    try:
        assert nf.start_pg_scope() == scope
    finally:
        assert nf.stop_pg_scope() == "ok"
    assert erlang.whereis("pg") == "undefined"
    assert nf.stop_pg_scope() == "ok"


def test_read_outs_answer_when_there_is_nothing_to_read() -> None:
    """queued of a name nobody has is empty; so are the lock rows of a node without global's server."""
    assert nf.queued("nobody_registered_this") == []
    sup = erlang.whereis(kernel.SAFE_SUP)
    if isinstance(sup, Pid):
        gen_server.stop(sup, "shutdown")
    try:
        assert erlang.whereis(global_.SERVER) == "undefined"
        assert nf.global_lock_rows() == []
    finally:
        kernel.boot()
