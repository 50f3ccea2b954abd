"""rpc on this node: the rex server's answers for every way a call can end (rpc:call/4,5, cast/4, multicall)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from support import DEADLINE, wait_until

from repg2 import erlang, gen_server, kernel, rpc
from repg2.testing import nodefuns

pytestmark = pytest.mark.timeout(60)


def note(event: threading.Event) -> None:
    """Record that a cast ran (a threading.Event: rpc on one node passes it by reference)."""
    event.set()


@pytest.fixture(autouse=True)
def rex() -> Iterator[None]:
    """Make sure this node's rex runs (the kernel starts it)."""
    kernel.boot()
    yield


def test_call_returns_the_value() -> None:
    """rpc:call/4 returns what the function returns."""
    assert rpc.call(erlang.node(), sorted, [[3, 1, 2]]) == [1, 2, 3]


def test_exit_in_fun_is_badrpc_exit() -> None:
    """An exit in the function comes back as {badrpc, {'EXIT', Reason}} (rpc:handle_call_call/6)."""
    assert rpc.call(erlang.node(), nodefuns.exit_with, ["bye"]) == ("badrpc", ("EXIT", "bye"))


def test_exception_in_fun_is_badrpc_exit() -> None:
    """A Python exception comes back as ('badrpc', ('EXIT', exception)) (TRANSLATION_NOTES D29)."""
    result = rpc.call(erlang.node(), nodefuns.fail_with, [ValueError("boom")])
    assert result[0] == "badrpc" and result[1][0] == "EXIT" and isinstance(result[1][1], ValueError)


def test_worker_killed_before_replying_is_badrpc() -> None:
    """A worker that dies without replying gives the caller {badrpc, {'EXIT', killed}} (rpc:handle_info/2)."""
    assert rpc.call(erlang.node(), nodefuns.kill_self, []) == ("badrpc", ("EXIT", "killed"))


def test_timeout_is_badrpc_timeout_and_no_late_reply() -> None:
    """rpc:call/5 past its timeout answers {badrpc, timeout}; the late answer never reaches the caller."""
    assert rpc.call(erlang.node(), nodefuns.sleep_then, [0.3, "late"], 0.05) == ("badrpc", "timeout")
    # rex forgets a worker once it has relayed its answer: wait for that, then look.
    wait_until(lambda: not gen_server.get_state(rpc.NAME), "rex to forget its worker")
    assert erlang.flush() == []


def test_cast_runs_the_function() -> None:
    """rpc:cast/4 returns true at once and runs the function on the node."""
    event = threading.Event()
    assert rpc.cast(erlang.node(), note, [event]) is True
    assert event.wait(DEADLINE)


def test_multicall_on_this_node() -> None:
    """rpc:multicall/3 with no node list asks this node (and every connected one)."""
    assert rpc.multicall(None, len, [[1, 2]]) == ([2], [])


def test_unexpected_messages_are_ignored() -> None:
    """rex drops calls, casts and messages it does not know, and keeps serving (rpc.erl's catch-alls)."""
    with pytest.raises(erlang.ExitError) as info:
        gen_server.call(rpc.NAME, "what", 0.1)
    assert info.value.reason[0] == "timeout"
    gen_server.cast(rpc.NAME, "what")
    erlang.send(rpc.NAME, "stray")
    assert rpc.call(erlang.node(), len, ["abc"]) == 3


def test_unportable_reason_travels_as_its_repr() -> None:
    """An exit reason that cannot be pickled is replaced by its repr (it must cross nodes)."""
    lock = threading.Lock()
    assert rpc._portable(lock) == repr(lock)
    assert rpc._portable(("fine", 1)) == ("fine", 1)


def test_rpc_check_maps_exit_reasons() -> None:
    """rpc:rpc_check/1: nodedown and timeout become short badrpc reasons, anything else is kept."""
    assert rpc._rpc_check((("nodedown", "x@y"), "where")) == ("badrpc", "nodedown")
    assert rpc._rpc_check(("timeout", "where")) == ("badrpc", "timeout")
    assert rpc._rpc_check("other") == ("badrpc", ("EXIT", "other"))
