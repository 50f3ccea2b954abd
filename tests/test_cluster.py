"""The harness's own specification: ``repg2.testing.Cluster`` starts, drives, breaks and stops real nodes.

``Cluster`` stands in for OTP's ``peer`` (``test_server:start_node`` in
older suites): this process is node ``a``, every other node is a child OS
process reached through a control channel of its own. The rest of the suite
trusts it to start nodes or say why not, to carry a call and its outcome
both ways or say why not, and to stop every child whatever state it is in.
These tests pin those promises, the failures first-hand: a child that
crashes while starting, one whose node cannot start, one that dies during a
call, one that will not stop, one whose parent goes away.
"""

from __future__ import annotations

import multiprocessing.connection
import os
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from support import DEADLINE, free_port, wait_until

from repg2 import epmd, erlang
from repg2.erlang import ErlangError
from repg2.testing import Cluster
from repg2.testing import cluster as cluster_module
from repg2.testing import nodefuns as nf
from repg2.testing.cluster import ClusterError

pytestmark = [pytest.mark.timeout(120), pytest.mark.distributed]


def process_of(cluster: Cluster, node: str) -> Any:
    """Return the ``multiprocessing.Process`` of a child node (the harness keeps it private; these tests look)."""
    return cluster._children[node].process


# == Starting ==========================================================================


def test_a_cluster_has_1_to_26_nodes() -> None:
    """A cluster names its nodes a to z: fewer than one or more than 26 nodes is a ValueError."""
    for n in (0, 27):
        with pytest.raises(ValueError, match="1 to 26 nodes"):
            Cluster(n)


def test_a_process_that_is_a_node_already_cannot_host_a_cluster(node: str) -> None:
    """Cluster.start in a process that is a node already raises ClusterError and leaves that node as it was."""
    cluster = Cluster(2)
    with pytest.raises(ClusterError, match="cannot start node .* in this process"):
        cluster.start()
    assert erlang.node() == node
    cluster.close()  # closed already by the failed start: a second close does nothing


def test_a_child_that_crashes_before_calling_back_is_a_cluster_error(
    cluster: Callable[..., Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that dies before it calls back (here: a log level it cannot set) makes add() raise, with its exit code."""
    c = cluster(2)
    monkeypatch.setenv("REPG2_LOG_LEVEL", "NO_SUCH_LEVEL")  # the spawned child inherits the environment
    with pytest.raises(ClusterError, match=r"died while starting \(exit code 1\)"):
        c.add()
    monkeypatch.delenv("REPG2_LOG_LEVEL")
    assert c.rpc(c.nodes[1], erlang.node) == c.nodes[1]


def test_a_child_whose_node_cannot_start_is_a_cluster_error(cluster: Callable[..., Cluster]) -> None:
    """A child whose node cannot start (its name is taken at the port mapper) makes add() raise with the reason."""
    c = cluster(2)
    alive = f"{c.prefix}c"  # the name add() gives the third node
    sock, _creation = epmd.ensure_registered(alive, free_port())
    with sock, pytest.raises(ClusterError, match=f"node {alive}@127.0.0.1 failed to start: .*refused the name"):
        c.add()


# == Driving nodes =====================================================================


def test_nodes_the_cluster_does_not_drive_are_refused(cluster: Callable[..., Cluster]) -> None:
    """This process's node cannot be stopped from within, an unknown node is named, a stopped one is not running."""
    c = cluster(2)
    a, b = c.nodes
    with pytest.raises(ClusterError, match="is this process"):
        c.stop(a)
    with pytest.raises(ClusterError, match="no node zz@127.0.0.1 in this cluster"):
        c.kill("zz@127.0.0.1")
    assert c.os_pid(a) == os.getpid()
    assert c.os_pid(b) == process_of(c, b).pid != os.getpid()
    c.stop(b)
    with pytest.raises(ClusterError, match=f"node {b} is not running"):
        c.rpc(b, erlang.node)
    c.stop(b)  # stopping or killing a stopped node again does nothing
    c.kill(b)
    assert c.live_nodes() == [a]


def test_rpc_raises_what_the_function_raised_on_either_side(cluster: Callable[..., Cluster]) -> None:
    """An exception of the function is raised by rpc again, on this node as on a child; so is a failed spawn's."""
    c = cluster(2)
    a, b = c.nodes
    for node in (a, b):
        with pytest.raises(ValueError, match="boom"):
            c.rpc(node, nf.fail_with_value_error, "boom")
    with pytest.raises(ErlangError, match="not a function"):
        c.spawn(b, "not a function")
    assert c.rpc(b, erlang.node) == b


def test_what_cannot_travel_back_is_a_cluster_error(cluster: Callable[..., Cluster]) -> None:
    """A result the child cannot pickle, or an exception this process cannot unpickle, is a ClusterError; the node serves on."""
    c = cluster(2)
    b = c.nodes[1]
    with pytest.raises(ClusterError, match="cannot send back <unlocked _thread.lock"):
        c.rpc(b, threading.Lock)
    with pytest.raises(ClusterError, match="cannot be rebuilt here"):
        c.rpc(b, nf.raise_unloadable)
    assert c.rpc(b, nf.sleep_then, 0, "still") == "still"


def test_a_call_past_its_timeout_raises_and_its_late_reply_is_skipped(cluster: Callable[..., Cluster]) -> None:
    """rpc past its timeout raises TimeoutError, here and on a child; a late reply is never taken for the next call's."""
    c = cluster(2)
    a, b = c.nodes
    with pytest.raises(TimeoutError, match="did not return within"):
        c.rpc(a, nf.sleep_then, 0.3, "late", timeout=0.01)
    with pytest.raises(TimeoutError, match=f"node {b} did not answer rpc"):
        c.rpc(b, nf.sleep_then, 0.3, "late", timeout=0.01)
    assert c.rpc(b, nf.sleep_then, 0.6, "next") == "next"  # the late "late" arrives while this waits


def test_wait_for_names_what_it_waited_for() -> None:
    """Cluster.wait_for raises TimeoutError naming the awaited condition when it does not come."""
    with pytest.raises(TimeoutError, match="waiting for pigs to fly"):
        Cluster(2).wait_for(lambda: False, 0.05, "pigs to fly")


def test_wait_connected_reconnects_nodes_that_lost_each_other(cluster: Callable[..., Cluster]) -> None:
    """wait_connected asks nodes that do not see each other to connect: the mesh is whole again when it returns."""
    c = cluster(3)
    a, b, cc = c.nodes
    c.rpc(b, nf.disconnect, cc)
    c.wait_connected()
    assert sorted(c.nodes_of(b)) == [a, cc]
    assert sorted(c.nodes_of(cc)) == [a, b]


# == The control channel ===============================================================


def test_an_unknown_control_request_gets_no_answer_and_the_node_serves_on(cluster: Callable[..., Cluster]) -> None:
    """A request the child does not know is logged and left unanswered; the child keeps serving."""
    c = cluster(2)
    b = c.nodes[1]
    with pytest.raises(TimeoutError, match="did not answer frobnicate"):
        c._request(b, "frobnicate", (), 0.2)
    assert c.rpc(b, erlang.node) == b


def test_the_control_channel_takes_only_children_that_say_hello(cluster: Callable[..., Cluster]) -> None:
    """The control channel carries pickles: a client without the authkey is refused, one that says no hello hung up on."""
    c = cluster(2)
    address = c._listener.address
    with pytest.raises(multiprocessing.AuthenticationError):
        multiprocessing.connection.Client(address, authkey=b"not the cluster's key")
    socket.create_connection(address, timeout=DEADLINE).close()  # gone before the challenge
    stranger = multiprocessing.connection.Client(address, authkey=c._authkey)
    stranger.send(("greetings", "from nowhere"))
    with pytest.raises(EOFError):
        stranger.recv()
    stranger.close()
    third = c.add()  # the acceptor still takes real children
    assert c.rpc(third, erlang.node) == third


# == Failures and stops ================================================================


def test_a_child_that_dies_during_a_call_is_a_cluster_error_and_restarts(cluster: Callable[..., Cluster]) -> None:
    """A child that dies while a call waits makes the call raise ClusterError; restart brings the node back."""
    c = cluster(2)
    a, b = c.nodes
    with pytest.raises(ClusterError, match=f"node {b} went away during rpc"):
        c.rpc(b, os._exit, 3)
    wait_until(lambda: c.live_nodes() == [a], "the dead child to be gone")
    c.restart(b)
    assert c.rpc(b, erlang.node) == b
    assert c.nodes_of(b) == [a]


def test_a_child_whose_control_channel_closes_stops_itself(cluster: Callable[..., Cluster]) -> None:
    """A child whose control channel closes (its parent died) stops its node and exits normally: no orphan."""
    c = cluster(3)
    _a, b, _c = c.nodes
    process = process_of(c, b)
    c._children[b].conn.close()
    process.join(DEADLINE)
    assert process.exitcode == 0
    wait_until(lambda: b not in erlang.nodes(), f"{b} to leave")
    with pytest.raises(ClusterError, match=f"node {b} is not reachable"):
        c.rpc(b, erlang.node)


def test_sigterm_stops_a_child_as_a_normal_exit(cluster: Callable[..., Cluster]) -> None:
    """SIGTERM makes a child stop its node and exit with status 128 + 15 through Python's exit (coverage is written)."""
    c = cluster(2)
    b = c.nodes[1]
    process = process_of(c, b)
    os.kill(c.os_pid(b), signal.SIGTERM)
    process.join(DEADLINE)
    assert process.exitcode == 128 + signal.SIGTERM
    wait_until(lambda: b not in erlang.nodes(), f"{b} to leave")


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="signals to one thread need pthread_kill")
def test_a_sigterm_caught_by_a_worker_thread_still_stops_the_child(cluster: Callable[..., Cluster]) -> None:
    """A SIGTERM the kernel hands to one of a child's worker threads stops it too: its main thread does not sleep on."""
    c = cluster(2)
    b = c.nodes[1]
    process = process_of(c, b)
    assert c.rpc(b, nf.signal_from_a_worker, signal.SIGTERM, ("_recv", "select")) == "sent"  # main: awaiting a request
    process.join(DEADLINE)
    assert process.exitcode == 128 + signal.SIGTERM


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="freezing a node needs SIGSTOP")
def test_a_node_that_does_not_stop_when_asked_is_terminated_then_killed(
    cluster: Callable[..., Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop() of a node that does not answer (frozen) waits STOP_TIMEOUT, sends SIGTERM, waits again, then SIGKILL."""
    c = cluster(2)
    a, b = c.nodes
    monkeypatch.setattr(cluster_module, "STOP_TIMEOUT", 0.2)
    process = process_of(c, b)
    c.freeze(b)
    c.stop(b)
    assert process.exitcode == -signal.SIGKILL
    assert c.live_nodes() == [a]


def test_the_exit_hook_stops_every_open_cluster() -> None:
    """The atexit hook closes every cluster still open: children stopped, this process no node any more."""
    c = Cluster(2)
    c.start()
    process = process_of(c, c.nodes[1])
    cluster_module._close_all()
    assert not process.is_alive() and process.exitcode == 0
    assert erlang.node() == "nonode@nohost"
