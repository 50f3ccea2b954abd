"""The distribution on real nodes: messages, monitors, links, node events, failures, hostile peers.

Every node but ``a`` (this process) is a child OS process started by
``repg2.testing.cluster.Cluster``; connections are real TCP with the cookie
handshake. Nothing sleeps to synchronise: waits poll with a deadline, and
no test asserts on timings.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import (
    challenge_of,
    challenge_reply,
    closed_by_peer,
    connect_to,
    control_frame,
    frame,
    handshake_to,
    name_message,
    port_of,
    read_control,
    read_handshake_message,
    recv,
    tagged,
    wait_until,
)

from repg2 import dist, erlang, external, net_kernel, rpc
from repg2 import dist_util as du
from repg2.erlang import TIMEOUT, Pid, Ref
from repg2.external import ImproperList
from repg2.testing import Cluster
from repg2.testing import nodefuns as nf
from repg2.testing.cluster import ClusterError

pytestmark = [pytest.mark.timeout(60), pytest.mark.distributed]


# == Messages =================================================================


def test_remote_send_keeps_order_per_pair(cluster3: Cluster) -> None:
    """Messages from each remote sender arrive in the order sent, however the senders interleave."""
    a, b, c = cluster3.nodes
    me = erlang.self()
    cluster3.spawn(b, nf.send_sequence, me, "b", 500)
    cluster3.spawn(c, nf.send_sequence, me, "c", 500)
    seen: dict[str, list[Any]] = {"b": [], "c": []}
    while seen["b"][-1:] != ["done"] or seen["c"][-1:] != ["done"]:
        tag, value = recv(lambda m: isinstance(m, tuple) and m[0] in ("b", "c"))
        seen[tag].append(value)
    assert seen["b"] == [*range(500), "done"]
    assert seen["c"] == [*range(500), "done"]


def test_send_to_registered_name_on_another_node(cluster3: Cluster) -> None:
    """``send((name, node), msg)`` reaches a registered process there (REG_SEND); an unknown name drops it."""
    a, b, _c = cluster3.nodes
    erlang.register("dist_test_inbox", erlang.self())
    try:
        assert cluster3.rpc(b, nf.send_to_name, "no_such_name", a, "lost") == b
        assert cluster3.rpc(b, nf.send_to_name, "dist_test_inbox", a, ("hello", 1)) == b
        assert recv() == ("hello", 1)
    finally:
        erlang.unregister("dist_test_inbox")


def test_round_trip_to_echo_process(cluster3: Cluster) -> None:
    """A process on a and an echo process on b exchange messages both ways in order."""
    _a, b, _c = cluster3.nodes
    echo = cluster3.spawn(b, nf.echo)
    me = erlang.self()
    for i in range(100):
        erlang.send(echo, (me, ("ping", i)))
    assert [recv() for _ in range(100)] == [("ping", i) for i in range(100)]
    erlang.send(echo, "stop")


def test_a_message_without_an_erlang_form_is_refused_at_the_send(cluster3: Cluster) -> None:
    """A message with no Erlang form (a lambda, a set) raises TypeError in the sender; the connection stays usable."""
    _a, b, _c = cluster3.nodes
    echo = cluster3.spawn(b, nf.echo)
    for bad in (lambda: None, {1, 2}):
        with pytest.raises(TypeError):
            erlang.send(echo, (erlang.self(), bad))
    erlang.send(echo, (erlang.self(), "still fine"))
    assert recv() == "still fine"


def test_every_erlang_form_round_trips_between_python_nodes(cluster3: Cluster) -> None:
    """Atoms, big and negative integers, floats, binaries, maps, strings, pids, refs, improper lists cross intact."""
    _a, b, _c = cluster3.nodes
    echo = cluster3.spawn(b, nf.echo)
    terms = [
        "atom",
        "ök",
        True,
        None,
        -(2**70),
        2**64,
        0.5,
        b"\x00bin",
        {"k": [1, 2], (1, 2): b"v"},
        [1, 2, 3],
        (),
        erlang.self(),
        erlang.make_ref(),
        ImproperList(("alias",), erlang.make_ref()),
        list(range(300)),
        tuple(range(300)),
    ]
    for term in terms:
        erlang.send(echo, (erlang.self(), term))
        expected = "undefined" if term is None else term  # D46: None is sent as the atom undefined
        assert recv() == expected


def test_oversized_message_raises_badarg(cluster3: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """A message over the frame limit is refused in the sender with badarg."""
    _a, b, _c = cluster3.nodes
    echo = cluster3.spawn(b, nf.echo)
    monkeypatch.setattr(dist, "MAX_FRAME", 1024)
    with pytest.raises(erlang.ErlangError) as info:
        erlang.send(echo, (erlang.self(), b"x" * 4096))
    assert info.value.reason == "badarg"


# == Monitors and links =========================================================


def test_remote_monitor_fires_on_exit_with_reason(cluster3: Cluster) -> None:
    """A monitor of a process on another node gets 'DOWN' with the process's exit reason."""
    _a, b, _c = cluster3.nodes
    pid = cluster3.spawn(b, nf.wait_then_exit)
    ref = erlang.monitor("process", pid)
    erlang.send(pid, ("exit", ("custom", 42)))
    assert recv(tagged("DOWN")) == ("DOWN", ref, "process", pid, ("custom", 42))


def test_remote_monitor_of_dead_pid_and_unknown_name_is_noproc(cluster3: Cluster) -> None:
    """Monitoring a dead remote pid, or a name nobody has there, gives 'DOWN' 'noproc' at once."""
    _a, b, _c = cluster3.nodes
    pid = cluster3.spawn(b, nf.wait_then_exit)
    ref = erlang.monitor("process", pid)
    erlang.send(pid, "stop")
    assert recv(tagged("DOWN"))[4] == "normal"
    ref = erlang.monitor("process", pid)
    assert recv(tagged("DOWN")) == ("DOWN", ref, "process", pid, "noproc")
    ref = erlang.monitor("process", ("nobody_here", b))
    assert recv(tagged("DOWN")) == ("DOWN", ref, "process", ("nobody_here", b), "noproc")


def test_remote_monitor_by_name(cluster3: Cluster) -> None:
    """A monitor by ``(name, node)`` reports the name in its 'DOWN', as in Erlang."""
    _a, b, _c = cluster3.nodes
    pid = cluster3.rpc(b, nf.register_as, "dist_named")
    ref = erlang.monitor("process", ("dist_named", b))
    erlang.send(pid, ("exit", "bye"))
    assert recv(tagged("DOWN")) == ("DOWN", ref, "process", ("dist_named", b), "bye")


def test_remote_demonitor_stops_the_down(cluster3: Cluster) -> None:
    """After demonitor, the end of the remote process sends no 'DOWN' for that monitor."""
    _a, b, _c = cluster3.nodes
    pid = cluster3.spawn(b, nf.wait_then_exit)
    ref = erlang.monitor("process", pid)
    erlang.demonitor(ref, ["flush"])
    ref2 = erlang.monitor("process", pid)  # a second monitor as the barrier
    erlang.send(pid, ("exit", "done"))
    assert recv(tagged("DOWN"))[1] == ref2
    assert erlang.receive(tagged("DOWN"), timeout=0) is TIMEOUT


def test_remote_link_delivers_exit_signal(cluster3: Cluster) -> None:
    """A link across nodes delivers the exit signal (as 'EXIT' to a trapping process)."""
    _a, b, c = cluster3.nodes
    me = erlang.self()
    target = cluster3.spawn(b, nf.wait_then_exit)
    cluster3.spawn(c, nf.link_and_report, target, me)
    recv(tagged("linked"))
    erlang.send(target, ("exit", ("shutdown", "test")))
    _tag, msg = recv(tagged("exit_seen"))
    assert msg == ("EXIT", target, ("shutdown", "test"))


def test_remote_link_kills_a_non_trapping_process(cluster3: Cluster) -> None:
    """A non-trapping process linked to a remote one dies with the same abnormal reason."""
    _a, b, _c = cluster3.nodes
    target = cluster3.spawn(b, nf.wait_then_exit)
    me = erlang.self()
    helper, helper_ref = erlang.spawn_monitor(_link_then_wait, target, me)
    recv(lambda m: m == ("linked", helper))
    erlang.send(target, ("exit", "boom"))
    assert recv(tagged("DOWN")) == ("DOWN", helper_ref, "process", helper, "boom")


def _link_then_wait(target: Pid, report_to: Pid) -> None:
    """Link to ``target``, say so, then wait forever (killed by the link's signal)."""
    erlang.link(target)
    erlang.send(report_to, ("linked", erlang.self()))
    erlang.receive(lambda m: False)


def test_exit2_reaches_remote_process(cluster3: Cluster) -> None:
    """``erlang.exit(remote_pid, reason)`` kills a remote process with that reason (EXIT2)."""
    _a, b, _c = cluster3.nodes
    pid = cluster3.spawn(b, nf.wait_forever)
    ref = erlang.monitor("process", pid)
    erlang.exit(pid, "shot")
    assert recv(tagged("DOWN")) == ("DOWN", ref, "process", pid, "shot")


def test_an_exception_exit_reason_crosses_as_its_name_and_message(cluster3: Cluster) -> None:
    """A process ending with a Python exception: remote monitors get {ClassName, <<"message">>} (D24)."""
    _a, b, _c = cluster3.nodes
    me = erlang.self()
    pid = erlang.spawn(nf.wait_then_exit)
    cluster3.spawn(b, nf.watch, pid, me)
    recv(tagged("watching"))
    erlang.send(pid, ("exit", nf.Unloadable(1, 2)))
    _tag, down = recv(tagged("watched"))
    assert down[4] == ("Unloadable", b"1/2")


def test_sigkill_fires_monitors_and_links_with_noconnection_before_nodedown(cluster3: Cluster) -> None:
    """A node killed with SIGKILL: every monitor and link across fires 'noconnection', then nodedown."""
    _a, b, _c = cluster3.nodes
    net_kernel.monitor_nodes(True)
    try:
        targets = [cluster3.spawn(b, nf.wait_forever) for _ in range(3)]
        refs = {erlang.monitor("process", pid): pid for pid in targets}
        erlang.process_flag("trap_exit", True)
        erlang.link(targets[0])
        cluster3.kill(b)
        events = [recv(lambda m: isinstance(m, tuple) and m[0] in ("DOWN", "EXIT", "nodedown")) for _ in range(5)]
        assert events[-1] == ("nodedown", b)
        assert sorted(events[:-1], key=repr) == sorted(
            [("DOWN", ref, "process", pid, "noconnection") for ref, pid in refs.items()]
            + [("EXIT", targets[0], "noconnection")],
            key=repr,
        )
        assert b not in erlang.nodes()
    finally:
        erlang.process_flag("trap_exit", False)
        net_kernel.monitor_nodes(False)


def test_partition_fires_monitors_and_splits_nodes(cluster3: Cluster) -> None:
    """A partition cuts connections: monitors across fire 'noconnection', each side sees only itself."""
    a, b, c = cluster3.nodes
    pid = cluster3.spawn(b, nf.wait_forever)
    ref = erlang.monitor("process", pid)
    cluster3.partition([a], [b, c])
    assert recv(tagged("DOWN")) == ("DOWN", ref, "process", pid, "noconnection")
    assert erlang.nodes() == []
    assert cluster3.nodes_of(b) == [c]
    assert cluster3.nodes_of(c) == [b]
    assert net_kernel.connect_node(b) is False  # refused while partitioned
    assert cluster3.rpc(b, nf.connect, a) is False
    cluster3.heal()
    assert sorted(erlang.nodes()) == [b, c]
    assert sorted(cluster3.nodes_of(b)) == [a, c]
    assert sorted(cluster3.nodes_of(c)) == [a, b]


def test_monitor_and_link_to_unreachable_node(node: str) -> None:
    """Monitoring or linking a pid of a node that does not exist fires 'noconnection' at once."""
    ghost = Pid("ghost@127.0.0.1", 1, 1)
    ref = erlang.monitor("process", ghost)
    assert recv(tagged("DOWN")) == ("DOWN", ref, "process", ghost, "noconnection")
    erlang.process_flag("trap_exit", True)
    try:
        erlang.link(ghost)
        assert recv(tagged("EXIT")) == ("EXIT", ghost, "noconnection")
    finally:
        erlang.process_flag("trap_exit", False)
    erlang.send(ghost, "dropped")  # a send to an unreachable node is dropped, no error


# == Node events ==================================================================


def test_nodeup_nodedown_order(cluster3: Cluster) -> None:
    """nodeup comes after the node is in nodes() and before its messages; DOWN comes before nodedown."""
    a, b, _c = cluster3.nodes
    me = erlang.self()
    recorder = erlang.spawn(nf.record_node_events, me)
    recv(tagged("subscribed"))
    erlang.register("dist_recorder", recorder)
    watched = cluster3.spawn(b, nf.wait_forever)
    ref = erlang.monitor("process", watched)
    cluster3.stop(b)
    assert recv(tagged("DOWN")) == ("DOWN", ref, "process", watched, "noconnection")
    assert recv(tagged("event")) == ("event", ("nodedown", b), False)
    cluster3.restart(b)
    assert recv(tagged("event")) == ("event", ("nodeup", b), True)
    cluster3.rpc(b, nf.send_to_name, "dist_recorder", a, "first words")
    assert recv(tagged("event")) == ("event", "first words", None)
    erlang.send(recorder, "stop")


def test_disconnect_node_then_reconnect_on_demand(cluster3: Cluster) -> None:
    """``disconnect_node`` cuts the connection (nodedown both sides); the next send connects again."""
    a, b, _c = cluster3.nodes
    echo = cluster3.spawn(b, nf.echo)
    net_kernel.monitor_nodes(True)
    try:
        assert erlang.disconnect_node(b) is True
        assert recv(tagged("nodedown")) == ("nodedown", b)
        assert b not in erlang.nodes()
        assert erlang.disconnect_node(b) is False
        erlang.send(echo, (erlang.self(), "again"))
        assert recv(tagged("nodeup")) == ("nodeup", b)
        assert recv(lambda m: m == "again") == "again"
    finally:
        net_kernel.monitor_nodes(False)
    wait_until(lambda: a in cluster3.nodes_of(b), what="b to see a again")


def test_transitive_connection(cluster3: Cluster) -> None:
    """A node that connects to one member of a cluster gets connected to the others too."""
    a, b, c = cluster3.nodes
    erlang.disconnect_node(b)
    cluster3.rpc(c, nf.disconnect, b)
    wait_until(lambda: cluster3.nodes_of(b) == [], what="b to be alone")
    assert cluster3.rpc(b, nf.connect, a) is True
    wait_until(lambda: sorted(cluster3.nodes_of(b)) == [a, c], what="b to learn of c through a")


def test_simultaneous_connect_resolves_to_one_connection(cluster3: Cluster) -> None:
    """Two nodes dialling each other at once both succeed and end up with a single connection."""
    _a, b, c = cluster3.nodes
    for _round in range(5):
        cluster3.rpc(b, nf.disconnect, c)
        wait_until(lambda: c not in cluster3.nodes_of(b) and b not in cluster3.nodes_of(c), what="b, c apart")
        results: dict[str, Any] = {}
        threads = [
            threading.Thread(target=lambda x=x, y=y: results.__setitem__(x, cluster3.rpc(x, nf.connect, y)))
            for x, y in ((b, c), (c, b))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == {b: True, c: True}
        assert cluster3.nodes_of(b).count(c) == 1
        assert cluster3.nodes_of(c).count(b) == 1


def test_ticks_detect_a_stopped_peer() -> None:
    """A peer that stops answering (frozen: SIGSTOP) is declared down after net_ticktime; it rejoins when thawed."""
    with Cluster(3, ticktime=2) as cluster:
        a, b, c = cluster.nodes
        net_kernel.monitor_nodes(True)
        pid = cluster.spawn(b, nf.wait_forever)
        ref = erlang.monitor("process", pid)
        cluster.freeze(b)
        try:
            assert recv(tagged("DOWN")) == ("DOWN", ref, "process", pid, "noconnection")
            assert recv(tagged("nodedown")) == ("nodedown", b)
            wait_until(lambda: b not in cluster.nodes_of(c), "c to drop b too")
            assert sorted(erlang.nodes()) == [c]
        finally:
            cluster.thaw(b)
            net_kernel.monitor_nodes(False)
        cluster.heal()
        assert sorted(cluster.nodes_of(b)) == [a, c]


def test_freeze_says_why_where_there_is_no_sigstop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SIGSTOP (Windows) Cluster.freeze raises a ClusterError naming it, and the node runs on."""
    with Cluster(2) as cluster:
        a, b = cluster.nodes
        monkeypatch.delattr(signal, "SIGSTOP")
        with pytest.raises(ClusterError, match="SIGSTOP"):
            cluster.freeze(b)
        assert cluster.nodes_of(b) == [a]


# == Restarts and creations ========================================================


def test_restart_gives_new_creation_and_old_pids_are_dead(cluster3: Cluster) -> None:
    """A restarted node has a new creation; pids of its old incarnation name no process."""
    _a, b, _c = cluster3.nodes
    old_creation = cluster3.rpc(b, nf.creation)
    old_pid = cluster3.spawn(b, nf.echo)
    assert old_pid.creation == old_creation
    cluster3.restart(b)
    new_creation = cluster3.rpc(b, nf.creation)
    assert new_creation != old_creation
    new_pid = cluster3.spawn(b, nf.echo)
    assert new_pid.creation == new_creation
    assert cluster3.rpc(b, nf.is_alive, new_pid) is True
    # The old pid may share its number with a live process; it still names nothing.
    assert cluster3.rpc(b, nf.is_alive, old_pid) is False
    ref = erlang.monitor("process", old_pid)
    assert recv(tagged("DOWN")) == ("DOWN", ref, "process", old_pid, "noproc")
    erlang.send(old_pid, (erlang.self(), "to the old incarnation"))
    erlang.send(new_pid, (erlang.self(), "to the new one"))
    assert recv() == "to the new one"


def test_start_stop_repeatable_in_one_process() -> None:
    """net_kernel.start/stop can run again and again in one OS process; local pids stay local."""
    me = erlang.self()
    assert erlang.node() == "nonode@nohost"
    creations = []
    for name in ("rep1@127.0.0.1", "rep2@127.0.0.1", "rep1@127.0.0.1"):
        assert net_kernel.start(name, cookie="x")[0] == "ok"
        assert net_kernel.start(name, cookie="x")[0] == "error"  # already started
        assert erlang.node() == name and me.node == name
        creations.append(erlang._identity.creation)
        assert net_kernel.stop() == "ok"
        assert erlang.node() == "nonode@nohost"
    assert net_kernel.stop() == ("error", "not_found")
    assert net_kernel.connect_node("x@127.0.0.1") == "ignored"
    assert creations[0] != creations[2]
    erlang.send(me, "still mine")
    assert recv() == "still mine"


# == rpc ==========================================================================


def test_rpc_call_cast_multicall(cluster3: Cluster) -> None:
    """rpc.call returns the value; cast runs without waiting; multicall collects every node's answer."""
    a, b, c = cluster3.nodes
    assert rpc.call(b, erlang.node, []) == b
    assert rpc.call(a, erlang.node, []) == a
    erlang.register("dist_rpc_inbox", erlang.self())
    try:
        assert rpc.cast(c, nf.send_to_name, ["dist_rpc_inbox", a, "cast arrived"]) is True
        assert recv() == "cast arrived"
    finally:
        erlang.unregister("dist_rpc_inbox")
    results, bad = rpc.multicall([a, b, c, "nobody@127.0.0.1"], erlang.node, [])
    assert sorted(results) == [a, b, c]
    assert bad == ["nobody@127.0.0.1"]


def test_rpc_failures_are_badrpc(cluster3: Cluster) -> None:
    """Dead or unknown node -> nodedown; too slow -> timeout; an exception or exit -> ('EXIT', reason)."""
    _a, b, _c = cluster3.nodes
    assert rpc.call("nobody@127.0.0.1", erlang.node, []) == ("badrpc", "nodedown")
    assert rpc.call(b, nf.sleep_then, [5, "late"], timeout=0.2) == ("badrpc", "timeout")
    assert rpc.call(b, nf.fail_with_value_error, ["nope"]) == ("badrpc", ("EXIT", ("ValueError", b"nope")))
    assert rpc.call(b, nf.exit_with, [("my", "reason")]) == ("badrpc", ("EXIT", ("my", "reason")))
    assert rpc.call(b, nf.raise_unloadable, []) == ("badrpc", ("EXIT", ("Unloadable", b"1/2")))
    cluster3.kill(b)
    assert rpc.call(b, erlang.node, []) == ("badrpc", "nodedown")


# == Hostile and broken peers =======================================================


def test_wrong_cookie_is_refused_and_node_keeps_serving(cluster3: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    """A node with another cookie cannot connect either way; the log says why; the others carry on."""
    a, b, _c = cluster3.nodes
    with caplog.at_level(logging.INFO, logger="repg2"):
        intruder = cluster3.add(cookie="not-the-cookie")
        assert net_kernel.connect_node(intruder) is False
        assert "cookie" in caplog.text
        caplog.clear()

        # The intruder's side of a's dial may still be ending (it closes, then logs, then lets
        # its pending setup go); a connect made meanwhile waits for that one instead of dialling.
        # So dial until a has refused one of ours: each dial must fail.
        def refused_by_a() -> bool:
            assert cluster3.rpc(intruder, nf.connect, a) is False
            return "invalid challenge reply" in caplog.text.lower()

        wait_until(refused_by_a, what="a to refuse the intruder's dial, and log why")
    assert intruder not in erlang.nodes()
    assert intruder not in cluster3.nodes_of(b)
    assert rpc.call(b, erlang.node, []) == b


def test_nothing_is_decoded_before_the_cookie_is_proved(cluster3: Cluster) -> None:
    """A valid message frame sent before the handshake, in place of the challenge reply, or after a wrong one, is never delivered."""
    _a, b, _c = cluster3.nodes
    inbox = cluster3.rpc(b, nf.register_as, "dist_test_inbox")
    evil = control_frame((dist.Op.REG_SEND, erlang.self(), "", "dist_test_inbox"), ("exit", "delivered"))
    # 1. as the very first bytes
    with connect_to(port_of(b)) as sock:
        sock.sendall(evil)
        assert closed_by_peer(sock)
    # 2. after a valid name, in place of the challenge reply
    with connect_to(port_of(b)) as sock:
        sock.sendall(name_message("evil@127.0.0.1"))
        assert read_handshake_message(sock) == b"sok"
        assert read_handshake_message(sock)[:1] == b"N"  # the challenge
        sock.sendall(evil)
        assert closed_by_peer(sock)
    # 3. after a challenge reply made with the wrong cookie
    with connect_to(port_of(b)) as sock:
        sock.sendall(name_message("evil@127.0.0.1"))
        read_handshake_message(sock)
        challenge = challenge_of(read_handshake_message(sock))
        sock.sendall(challenge_reply(challenge, "not-the-cookie") + evil)
        assert closed_by_peer(sock)
    assert cluster3.rpc(b, nf.is_alive, inbox) is True
    # Control: the same frame over an authenticated connection *is* delivered, so the test can see delivery.
    ref = erlang.monitor("process", inbox)
    with handshake_to(b, cluster3.cookie.encode()) as sock:
        sock.sendall(evil)
        assert recv(lambda m: isinstance(m, tuple) and m[:2] == ("DOWN", ref))[4] == "delivered"
    erlang.demonitor(ref)


def test_garbage_and_oversized_frames_are_refused_without_harm(cluster3: Cluster) -> None:
    """Garbage, an oversized handshake frame, and an oversized frame after authentication close only that connection."""
    a, b, _c = cluster3.nodes
    with connect_to(port_of(b)) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(200))
        assert closed_by_peer(sock)
    with connect_to(port_of(b)) as sock:
        sock.sendall(struct.pack(">I", 2**31))
        assert closed_by_peer(sock)
    with handshake_to(b, cluster3.cookie.encode()) as sock:
        sock.sendall(struct.pack(">I", dist.MAX_FRAME + 1))
        assert closed_by_peer(sock)
    for garbage in (b"p\x83\x68\x05", b"x" + bytes(20), b"p" + external.term_to_binary("not a tuple")):
        with handshake_to(b, cluster3.cookie.encode()) as sock:
            sock.sendall(frame(garbage))  # a frame that does not decode: the connection goes, the node stays
            assert closed_by_peer(sock)
    assert rpc.call(b, erlang.node, []) == b
    assert sorted(cluster3.nodes_of(b)) == sorted([a, cluster3.nodes[2]])


def test_a_second_handshake_replaces_a_stale_connection(cluster3: Cluster) -> None:
    """A node that dials while its peer believes them connected gets 'alive'; saying so drops the old link."""
    _a, b, _c = cluster3.nodes
    cookie = cluster3.cookie.encode()
    with handshake_to(b, cookie) as first:
        wait_until(lambda: "tester@127.0.0.1" in cluster3.nodes_of(b), what="b to see the tester")
        with handshake_to(b, cookie) as second:  # b answers 'alive'; we say ours is the live one
            assert closed_by_peer(first)  # the stale connection is gone
            # The handshake ends on b's ack, sent before b marks the connection up; b's answer
            # to a monitor shows that b reads the new connection, which it does once it is up.
            tester, ref = Pid("tester@127.0.0.1", 1, 7), Ref("tester@127.0.0.1", 1, 7)
            second.sendall(control_frame((dist.Op.MONITOR_P, tester, "dist_test_nobody", ref)))
            answer = (dist.Op.MONITOR_P_EXIT, "dist_test_nobody", tester, ref, "noproc")
            assert read_control(second, dist.Op.MONITOR_P_EXIT)[0] == answer
            assert "tester@127.0.0.1" in cluster3.nodes_of(b)
    wait_until(lambda: "tester@127.0.0.1" not in cluster3.nodes_of(b), what="b to drop the tester")


def test_silent_peer_is_dropped_after_the_setup_time(cluster: Callable[..., Cluster]) -> None:
    """A peer that connects and never finishes the handshake is dropped; the node keeps serving."""
    c = cluster(2, setuptime=1.0)
    _a, b = c.nodes
    with connect_to(port_of(b)) as sock:
        assert closed_by_peer(sock)
    assert rpc.call(b, erlang.node, []) == b


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00\x05n\x00\x05\x00\x00", "an old version 5 name message"),
        (b"\x00\x03N\x00\x01", "a name message cut short"),
        (b"GET / HTTP/1.1\r\n\r\n", "not a node at all"),
        (b"\xff\xff" + bytes(100), "a message longer than any handshake message"),
    ],
)
def test_malformed_handshakes_are_refused(cluster3: Cluster, data: bytes, why: str) -> None:
    """Each malformed handshake message closes that connection only; the node keeps serving."""
    _a, b, _c = cluster3.nodes
    with connect_to(port_of(b)) as sock:
        sock.sendall(data)
        assert closed_by_peer(sock), why
    assert rpc.call(b, erlang.node, []) == b


def test_handshake_claiming_the_nodes_own_name_is_not_allowed(cluster3: Cluster) -> None:
    """A peer calling itself by the node's own name is told not_allowed."""
    _a, b, _c = cluster3.nodes
    with connect_to(port_of(b)) as sock:
        sock.sendall(name_message(b))
        assert read_handshake_message(sock) == b"snot_allowed"


def test_rpc_worker_killed_and_multicall_to_all(cluster3: Cluster) -> None:
    """A call whose worker is killed answers ('badrpc', ('EXIT', 'killed')); multicall(None) asks every node."""
    a, b, c = cluster3.nodes
    assert rpc.call(b, nf.kill_self, []) == ("badrpc", ("EXIT", "killed"))
    results, bad = rpc.multicall(None, erlang.node, [])
    assert sorted(results) == [a, b, c] and bad == []


def test_net_kernel_small_api(node: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """monitor_nodes validates its arguments; ticktime, cookie and the default cookie file work as in OTP."""
    assert net_kernel.monitor_nodes("yes") == "error"  # type: ignore[arg-type]
    assert net_kernel.monitor_nodes(True, ["nodedown_reason"]) == ("error", ("unknown_options", ["nodedown_reason"]))
    assert net_kernel.get_net_ticktime() == dist.DEFAULT_TICKTIME
    assert net_kernel.get_cookie() == b"repg2-test-cookie"
    assert net_kernel.disconnect("nobody@127.0.0.1") is False
    monkeypatch.delenv("REPG2_COOKIE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    cookie = net_kernel._cookie_default()
    assert (tmp_path / ".repg2.cookie").read_text() == cookie
    assert (tmp_path / ".repg2.cookie").stat().st_mode & 0o777 == 0o400
    assert net_kernel._cookie_default() == cookie
    monkeypatch.setenv("REPG2_COOKIE", "from-env")
    assert net_kernel._cookie_default() == "from-env"


def test_corked_frames_leave_together_in_order() -> None:
    """Inside Distribution.corked() a thread's frames wait; at the end each connection gets them in one write, in order."""
    d = dist.Distribution("corks@127.0.0.1", "cookie")
    mine, peer = socket.socketpair()
    try:
        conn = dist.Connection(mine, "peer@127.0.0.1", 1, du.DEFAULT_FLAGS)
        peer.setblocking(False)
        with d.corked():
            d._write(conn, b"first")
            with d.corked():  # nested: the outermost block writes
                d._write(conn, b"second")
            with pytest.raises(BlockingIOError):
                peer.recv(100)  # nothing has left yet
        head = struct.Struct(">I")
        expected = head.pack(5) + b"first" + head.pack(6) + b"second"
        peer.setblocking(True)
        got = b""
        while len(got) < len(expected):
            got += peer.recv(100)
        assert got == expected
        d._write(conn, b"alone")  # uncorked again: written at once
        assert peer.recv(100) == head.pack(5) + b"alone"
    finally:
        mine.close()
        peer.close()


# == Small edges of the distribution's API (coverage helper's additions) ===========================


def test_names_and_blocks_need_a_name_and_a_distribution() -> None:
    """split_node refuses what is no text; block() needs a running distribution; unblock() without one does nothing."""
    with pytest.raises(ValueError, match="not a node name"):
        dist.split_node(42)  # type: ignore[arg-type]
    assert dist.current() is None
    with pytest.raises(RuntimeError, match="not distributed"):
        dist.block(["x@127.0.0.1"])
    dist.unblock()


def test_connect_to_itself_and_to_no_node_name(node: str) -> None:
    """connect_node of this very node is true at once; of a text that is no node name, false."""
    assert net_kernel.connect_node(node) is True
    assert net_kernel.connect_node("no node name") is False


def test_unblock_lifts_only_the_nodes_named(node: str) -> None:
    """unblock(nodes) lifts the block of those nodes and keeps the others blocked."""
    current = dist.current()
    assert current is not None
    dist.block(["x@127.0.0.1", "y@127.0.0.1"])
    try:
        dist.unblock(["x@127.0.0.1"])
        assert "x@127.0.0.1" not in current.blocked() and "y@127.0.0.1" in current.blocked()
    finally:
        dist.unblock()


@pytest.mark.usefixtures("trap_exits")
def test_unlink_of_a_remote_process_cuts_the_link_both_ways(cluster: Callable[..., Cluster]) -> None:
    """unlink of a remote pid takes the link down on both nodes: its later exit reaches us as a 'DOWN' only."""
    c = cluster(2)
    pid = c.spawn(c.nodes[1], nf.wait_forever)
    erlang.link(pid)
    erlang.unlink(pid)
    ref = erlang.monitor("process", pid)
    erlang.exit(pid, "bye")
    assert recv(tagged("DOWN")) == ("DOWN", ref, "process", pid, "bye")
    assert [m for m in erlang.flush() if isinstance(m, tuple) and m[0] == "EXIT"] == []
