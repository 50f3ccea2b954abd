"""Hostile input: what a node does with bytes, frames and pids that no well-behaved peer sends.

Every case here attacks node ``a``, this very process, so that its log is
captured (``caplog``) and a crash would crash the test run itself. After
each attack the node must have refused or ignored the input *with a log
line* and must keep serving the others: :func:`still_serving` makes a pg2
write on ``b`` and checks that ``a`` and ``c`` apply it, and that ``a``'s
connections to ``b`` and ``c`` are the ones it had.

What test_dist.py already covers, against a child node and without reading
its log, and is not repeated here: garbage and an oversized frame before
and after the handshake (``test_garbage_and_oversized_frames_are_refused_without_harm``),
malformed handshake fields (``test_malformed_handshakes_are_refused``), a
wrong cookie on a real node (``test_wrong_cookie_is_refused_and_node_keeps_serving``),
a silent peer (``test_silent_peer_is_dropped_after_the_setup_time``), pickles
at three points before authentication (``test_pickle_before_authentication_is_never_loaded``),
a port mapper fed garbage (``test_port_mapper_refuses_garbage_and_keeps_serving``)
and pids of a restarted node (``test_restart_gives_new_creation_and_old_pids_are_dead``).
This file extends those: random and truncated frames, each refusal's log
line, seven points where a pickle could be slipped in before the cookie
is proven, garbage *after* a valid handshake, a flood of silent connections,
stale pids reaching pg2, a node with the wrong cookie trying to feed pg2 an
exchange, and an impostor that knows a connected node's name. (That last
one found a bug: by answering "alive" the impostor made ``a`` drop its real
connection to ``b`` before any cookie was proven, and pg2 on ``a`` lost
``b``'s members. ``repg2.dist`` now drops the old connection only after the
new peer has passed the challenge.)
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import (
    PickleMarker,
    closed_by_peer,
    connect_to,
    frame,
    handshake_to,
    is_down,
    port_of,
    recv,
    start_pg2_everywhere,
    wait_until,
)

from repg2 import dist, erlang, gen_server, pg2, rpc
from repg2.dist import Op
from repg2.erlang import Pid
from repg2.testing import Cluster, member_loop, nodefuns, stop_pg2, wsane

pytestmark = [pytest.mark.timeout(120), pytest.mark.distributed]

SETUPTIME = 2.0  # seconds a handshake may take on the attacked nodes: a silent peer is dropped after it
TESTER = "tester@127.0.0.1"  # the name our hand-made peer gives itself
INBOX = "hostile_inbox"  # this test process's registered name, reachable by REG_SEND


@pytest.fixture(scope="module")
def attacked() -> Iterator[Cluster]:
    """The cluster every attack here aims at: a (this process), b and c with pg2, and a group with a member on each.

    One cluster serves the whole file, so its handshakes are set to time
    out after SETUPTIME from the start.
    """
    stop_pg2()
    with Cluster(3, setuptime=SETUPTIME) as c:
        start_pg2_everywhere(c)
        assert pg2.create("hostile") == "ok"
        for node in c.nodes:
            assert pg2.join("hostile", c.spawn(node, member_loop)) == "ok"
        yield c
    stop_pg2()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the distribution's and the runtime's log records, from INFO (DEBUG for the runtime)."""
    caplog.set_level(logging.INFO, logger="repg2.dist")
    caplog.set_level(logging.INFO, logger="repg2.pg2")
    caplog.set_level(logging.DEBUG, logger="repg2.erlang")  # last: it sets the capturing handler's level too
    return caplog


def logged(caplog: pytest.LogCaptureFixture, *fragments: str) -> Callable[[], bool]:
    """Return a predicate: some one log record contains every fragment."""
    return lambda: any(all(f in r.getMessage() for f in fragments) for r in caplog.records)


def still_serving(cluster: Cluster) -> None:
    """Node a still has its links to b and c and applies b's pg2 writes; b's write also reaches c."""
    a, b, c = cluster.nodes[:3]
    assert sorted(n for n in erlang.nodes() if n != TESTER) == sorted([b, c])
    assert rpc.call(b, erlang.node, []) == b  # a -> b over the distribution
    pid = cluster.spawn(b, member_loop)
    assert cluster.rpc(b, pg2.join, "hostile", pid) == "ok"
    assert pid in pg2.get_members("hostile") and pid in cluster.rpc(c, pg2.get_members, "hostile")
    assert cluster.rpc(b, pg2.leave, "hostile", pid) == "ok"
    assert pid not in pg2.get_members("hostile")
    cluster.rpc(b, nodefuns.kill, pid)


def name_frame(name: str = TESTER) -> bytes:
    """A valid first handshake frame, calling ourselves ``name``."""
    body = f'{{"version": {dist.HANDSHAKE_VERSION}, "name": "{name}", "creation": 7}}'
    return frame(b"n" + body.encode())


def hand_over(sock: socket.socket, data: bytes) -> bool:
    """Send ``data``, close our sending side, and say whether the node then closes the connection."""
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:  # the node refused and closed before it had all of it (reset, not connected)
        return True
    return closed_by_peer(sock)


def gone(node: str) -> Callable[[], bool]:
    """Return a predicate: ``node`` is not among a's connected attacked."""
    return lambda: node not in erlang.nodes()


@pytest.fixture
def inbox() -> Iterator[Pid]:
    """Register the test process as INBOX for the test (authenticated frames can reach it by name)."""
    me = erlang.self()
    erlang.register(INBOX, me)
    yield me
    erlang.unregister(INBOX)
    erlang.flush()


# == Random and truncated frames ====================================================


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(blob=st.binary(min_size=1, max_size=600))
def test_random_bytes_before_the_handshake_are_refused(
    attacked: Cluster, logs: pytest.LogCaptureFixture, blob: bytes
) -> None:
    """Any bytes in place of a handshake close that connection with a log line; nothing else changes."""
    logs.clear()
    with connect_to(port_of(attacked.nodes[0])) as sock:
        assert hand_over(sock, blob)
    wait_until(lambda: any("connection" in r.getMessage() for r in logs.records), what="a's log line")
    assert sorted(erlang.nodes()) == sorted(attacked.nodes[1:3])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(blob=st.binary(min_size=1, max_size=300))
def test_random_bytes_to_the_port_mapper_are_refused(attacked: Cluster, blob: bytes) -> None:
    """Any bytes to the port mapper close that connection; lookups go on (its log is its own process's)."""
    with connect_to(dist.epmd_port()) as sock:
        assert hand_over(sock, blob)  # a reply (NAMES or PORT by chance) or nothing, then the close
    assert dist.epmd_port_please("127.0.0.1", dist.split_node(attacked.nodes[1])[0]) == port_of(attacked.nodes[1])


def test_random_bytes_are_refused_and_the_node_serves_on(attacked: Cluster) -> None:
    """After the random inputs above, a still serves b and c (a separate check, as it costs a pg2 write)."""
    still_serving(attacked)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00\x00", "half a length header"),
        (struct.pack(">I", 50) + b'n{"vers', "a handshake frame cut short"),
        (name_frame() + struct.pack(">I", 80) + b"r{", "a challenge reply cut short"),
    ],
    ids=["header", "name-frame", "challenge-reply"],
)
def test_truncated_handshake_frames_are_dropped(
    attacked: Cluster, logs: pytest.LogCaptureFixture, data: bytes, why: str
) -> None:
    """A handshake frame cut off by the peer closing ends that setup, with a log line naming the peer if known."""
    with connect_to(port_of(attacked.nodes[0])) as sock:
        assert hand_over(sock, data), why
    wait_until(logged(logs, "connection setup from", "failed"), what="the log line")
    still_serving(attacked)


def test_truncated_frame_after_authentication_ends_only_that_connection(
    attacked: Cluster, logs: pytest.LogCaptureFixture
) -> None:
    """An authenticated peer that dies in the middle of a frame: its connection goes down with a nodedown line."""
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        wait_until(lambda: TESTER in erlang.nodes(), what="a to see the tester")
        assert hand_over(sock, struct.pack(">I", 100) + b"only ten b")
    wait_until(logged(logs, f"nodedown {TESTER}"), what="the nodedown line")
    still_serving(attacked)


# == Oversized frames =============================================================


def test_oversized_frames_are_refused_before_and_after_authentication(
    attacked: Cluster, logs: pytest.LogCaptureFixture
) -> None:
    """A frame longer than the limit closes the connection without reading it, before or after the handshake."""
    a = attacked.nodes[0]
    with connect_to(port_of(a)) as sock:
        sock.sendall(struct.pack(">I", dist.MAX_HANDSHAKE_FRAME + 1))
        assert closed_by_peer(sock)
    wait_until(logged(logs, f"handshake frame of {dist.MAX_HANDSHAKE_FRAME + 1} bytes refused"), what="the refusal")
    with handshake_to(a, attacked.cookie.encode()) as sock:
        sock.sendall(struct.pack(">I", dist.MAX_FRAME + 1))
        assert closed_by_peer(sock)
    wait_until(logged(logs, TESTER, f"sent a frame of {dist.MAX_FRAME + 1} bytes"), what="the refusal")
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


# == The cookie ====================================================================


def test_wrong_cookie_by_hand_is_refused_with_a_log_line(attacked: Cluster, logs: pytest.LogCaptureFixture) -> None:
    """A challenge reply made with another cookie is refused, and a says so in its log."""
    with connect_to(port_of(attacked.nodes[0])) as sock:
        sock.sendall(name_frame())
        assert dist._recv_hs(sock, "s") == {"status": "ok"}
        theirs = bytes.fromhex(dist._recv_hs(sock, "c")["challenge"])
        ours = os.urandom(dist.CHALLENGE_BYTES)
        digest = dist._digest(b"not-the-cookie", b"reply", theirs, ours, TESTER, attacked.nodes[0])
        dist._send_hs(sock, "r", {"challenge": ours.hex(), "digest": digest.hex()})
        assert closed_by_peer(sock)
    wait_until(logged(logs, TESTER, "invalid challenge reply (wrong cookie)"), what="the refusal")
    assert TESTER not in erlang.nodes()
    still_serving(attacked)


def test_node_with_the_wrong_cookie_cannot_feed_pg2(attacked: Cluster, logs: pytest.LogCaptureFixture) -> None:
    """A node with another cookie cannot connect, so its pg2 exchange never reaches the cluster's servers."""
    a, b, c = attacked.nodes[:3]
    intruder = attacked.add(cookie="not-the-cookie")
    try:
        fake = attacked.spawn(intruder, member_loop)
        exchange = ("exchange", intruder, [["injected", [fake]]])
        for target in (a, b):  # a cast connects first (synchronously); the connection is refused
            assert attacked.rpc(intruder, gen_server.cast, ("pg2", target), exchange) == "ok"
        assert attacked.rpc(intruder, erlang.nodes) == []
        assert pg2.which_groups() == ["hostile"] and attacked.rpc(b, pg2.which_groups) == ["hostile"]
        assert intruder not in erlang.nodes() and intruder not in attacked.nodes_of(b)
        wait_until(logged(logs, intruder, "invalid challenge reply (wrong cookie)"), what="a's refusal")
    finally:
        attacked.stop(intruder)
    wsane([a, b, c], attacked.rpc)
    still_serving(attacked)


# == Handshakes that never finish ====================================================


@pytest.mark.parametrize("say", [b"", name_frame()], ids=["silent", "name-then-silent"])
def test_unfinished_handshake_is_dropped_after_the_setup_time(
    attacked: Cluster, logs: pytest.LogCaptureFixture, say: bytes
) -> None:
    """A peer that stops half-way is dropped after setuptime; meanwhile a serves the others; its name is free again."""
    with connect_to(port_of(attacked.nodes[0])) as sock:
        sock.sendall(say)
        still_serving(attacked)  # while the setup hangs
        assert closed_by_peer(sock, timeout=SETUPTIME * 5)
    peer = TESTER if say else "<unknown>"
    wait_until(logged(logs, f"connection setup from {peer} failed", "timed out"), what="the log line")
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()):  # the abandoned setup left nothing pending
        wait_until(lambda: TESTER in erlang.nodes(), what="a to accept the tester now")
    wait_until(gone(TESTER), what="a to drop the tester")


def test_a_flood_of_silent_connections_leaves_no_thread_behind(
    attacked: Cluster, logs: pytest.LogCaptureFixture
) -> None:
    """Fifty connections that never speak: a serves on while they hang, then drops them all and their threads."""
    before = threading.active_count()
    socks = [connect_to(port_of(attacked.nodes[0])) for _ in range(50)]
    try:
        still_serving(attacked)
        for sock in socks:
            assert closed_by_peer(sock, timeout=SETUPTIME * 5)
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: threading.active_count() <= before, what=f"a's threads back to {before}")
    assert sum("timed out" in r.getMessage() for r in logs.records) >= 50


# == Garbage after a valid handshake =================================================


class _Explodes:
    """Unpickling this raises (an authenticated peer's broken frame)."""

    def __reduce__(self) -> Any:
        return (int, ("not a number",))


@pytest.mark.parametrize(
    ("payload", "line"),
    [
        (os.urandom(64), "could not decode a message from node"),
        (pickle.dumps(_Explodes()), "could not decode a message from node"),
        (pickle.dumps("not a tuple"), "unknown control message from node"),
        (pickle.dumps((99, "no such operation")), "unknown control message from node"),
        (pickle.dumps((Op.SEND, "not a pid", "x")), "bad control message from node"),
        (pickle.dumps((Op.LINK, 1, 2)), "bad control message from node"),
        (pickle.dumps((Op.NODES, ["nobody@127.0.0.1", 42])), "connection to node nobody@127.0.0.1 failed"),
        (
            pickle.dumps((Op.REG_SEND, None, "pg2", ("$gen_call", (Pid(TESTER, 1, 7), "t"), "junk"))),
            "unexpected message",
        ),
    ],
    ids=[
        "random",
        "raises-on-load",
        "not-a-tuple",
        "unknown-op",
        "send-to-non-pid",
        "link-non-pids",
        "nodes",
        "pg2-call",
    ],
)
def test_garbage_after_a_valid_handshake_is_dropped_and_the_connection_stays(
    attacked: Cluster, logs: pytest.LogCaptureFixture, inbox: Pid, payload: bytes, line: str
) -> None:
    """An authenticated peer's broken frame is dropped with a log line; its next good frame is delivered."""
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(frame(payload))
        sock.sendall(frame(pickle.dumps((Op.REG_SEND, None, INBOX, "next frame"))))
        assert recv(lambda m: m == "next frame") == "next frame"
        wait_until(logged(logs, line), what=f"the log line {line!r}")
        assert erlang.whereis("pg2") != "undefined"
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


def test_malformed_exchange_from_an_authenticated_peer_is_skipped(
    attacked: Cluster, logs: pytest.LogCaptureFixture, inbox: Pid
) -> None:
    """Exchange entries that are not [Name, Members] pairs are skipped, as pg2's list generator skips them."""
    server = erlang.whereis("pg2")
    before = pg2.get_members("hostile")
    junk = ("$gen_cast", ("exchange", TESTER, ["not a pair", ["too", "many", "items"], ("tuple", "pair")]))
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(frame(pickle.dumps((Op.REG_SEND, None, "pg2", junk))))
        sock.sendall(frame(pickle.dumps((Op.REG_SEND, None, INBOX, "after"))))
        assert recv(lambda m: m == "after") == "after"
        gen_server.get_state("pg2")  # the exchange, sent before, has been handled
    assert erlang.whereis("pg2") == server and pg2.which_groups() == ["hostile"]
    assert pg2.get_members("hostile") == before
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(payloads=st.lists(st.binary(max_size=200), min_size=1, max_size=5))
def test_random_frames_after_a_valid_handshake_do_not_hurt(
    attacked: Cluster, inbox: Pid, payloads: list[bytes]
) -> None:
    """Random frame payloads from an authenticated peer: each is dropped or ignored, and a good frame still arrives."""
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(b"".join(frame(p) for p in payloads))
        sock.sendall(frame(pickle.dumps((Op.REG_SEND, None, INBOX, "good"))))
        assert recv(lambda m: m == "good") == "good"
    wait_until(gone(TESTER), what="a to drop the tester")
    assert erlang.whereis("pg2") != "undefined"


# == Pickles before authentication =======================================================


def _marker_frame(path: Path) -> bytes:
    """A frame whose unpickling would create ``path``."""
    return frame(pickle.dumps((Op.SEND, None, PickleMarker(str(path)))))


def _as_name_frame(sock: socket.socket, evil: bytes) -> None:
    """The pickle as the body of the first handshake frame."""
    sock.sendall(frame(b"n" + evil[4:]))


def _as_status(sock: socket.socket, evil: bytes, node: str) -> None:
    """Claim the name of a node a is connected to; answer the 'alive' status with the pickle."""
    sock.sendall(name_frame(node))
    assert dist._recv_hs(sock, "s") == {"status": "alive"}
    sock.sendall(evil)


@pytest.mark.parametrize(
    "where",
    [
        "first-frame",
        "name-frame-body",
        "after-name",
        "instead-of-reply",
        "glued-to-wrong-reply",
        "alive-answer",
        "blocked",
    ],
)
def test_pickle_slipped_in_before_authentication_is_never_loaded(
    attacked: Cluster, logs: pytest.LogCaptureFixture, tmp_path: Path, where: str
) -> None:
    """A pickle slipped in anywhere before the cookie is proven is never unpickled (no marker file appears)."""
    a, b, _c = attacked.nodes[:3]
    marker = tmp_path / "loaded"
    evil = _marker_frame(marker)
    if where == "blocked":
        dist.block([TESTER])
    try:
        with connect_to(port_of(a)) as sock:
            match where:
                case "first-frame":
                    sock.sendall(evil)
                case "name-frame-body":
                    _as_name_frame(sock, evil)
                case "after-name":
                    sock.sendall(name_frame() + evil)
                case "instead-of-reply":
                    sock.sendall(name_frame())
                    dist._recv_hs(sock, "s")
                    dist._recv_hs(sock, "c")
                    sock.sendall(evil)
                case "glued-to-wrong-reply":
                    sock.sendall(name_frame())
                    dist._recv_hs(sock, "s")
                    dist._recv_hs(sock, "c")
                    reply = {"challenge": os.urandom(32).hex(), "digest": os.urandom(32).hex()}
                    sock.sendall(frame(b"r" + json.dumps(reply).encode()) + evil)  # one write, one segment
                case "alive-answer":
                    _as_status(sock, evil, b)
                case "blocked":
                    sock.sendall(name_frame())
                    assert dist._recv_hs(sock, "s") == {"status": "not_allowed"}
                    sock.sendall(evil)
            assert closed_by_peer(sock)
    finally:
        dist.unblock([TESTER])
    wait_until(lambda: any(r.name == "repg2.dist" for r in logs.records), what="a log line about the refusal")
    assert not marker.exists()
    assert sorted(erlang.nodes()) == sorted(attacked.nodes[1:3])  # b's connection was not replaced by the impostor
    # Control: the same frame over an authenticated connection *is* loaded, so the test would see a load.
    with handshake_to(a, attacked.cookie.encode()) as sock:
        sock.sendall(evil)
        wait_until(marker.exists, what="the authenticated pickle to be loaded")
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


# == Stale pids ================================================================================


def test_message_to_a_pid_of_an_earlier_incarnation_is_dropped(
    attacked: Cluster, logs: pytest.LogCaptureFixture, inbox: Pid
) -> None:
    """A pid with a's name and a live process's number but an old creation names nothing: dropped, logged, noproc."""
    me = erlang.self()
    stale = Pid(attacked.nodes[0], me.id, me.creation + 1)  # our number, another incarnation's creation
    watcher = Pid(TESTER, 1, 7)
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(frame(pickle.dumps((Op.SEND, stale, "to the old one"))))
        sock.sendall(frame(pickle.dumps((Op.MONITOR_P, watcher, stale, "ref-1"))))
        sock.sendall(frame(pickle.dumps((Op.SEND, me, "to me"))))
        assert recv(lambda m: isinstance(m, str) and m.startswith("to ")) == "to me"
        sock.settimeout(10)
        reader = sock.makefile("rb")
        while True:  # a answers the monitor at once: MONITOR_P_EXIT with noproc (ticks and a's own chatter skipped)
            (size,) = struct.unpack(">I", reader.read(4))
            msg = pickle.loads(reader.read(size)) if size else None
            if isinstance(msg, tuple) and msg[0] == Op.MONITOR_P_EXIT:
                break
        assert msg == (Op.MONITOR_P_EXIT, stale, watcher, "ref-1", "noproc")
        reader.close()
    assert logged(logs, "dropped: an earlier incarnation")()
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


def test_stale_pids_of_a_restarted_node_never_stay_in_pg2(attacked: Cluster) -> None:
    """A pid of b's previous incarnation, joined from a or carried by an exchange, is dropped by every node (noproc)."""
    a, b, c = attacked.nodes[:3]
    old = attacked.spawn(b, member_loop)
    assert pg2.join("hostile", old) == "ok"
    attacked.restart(b)
    attacked.rpc(b, nodefuns.start_pg2)
    members = pg2.get_members("hostile")
    wait_until(
        lambda: all(attacked.rpc(n, pg2.get_members, "hostile") == members for n in (a, b, c)), what="b refilled"
    )
    assert old not in members  # the node's death took it out
    assert pg2.join("hostile", old) == "ok"  # the join is made, then undone by b's noproc answer
    gen_server.cast(("pg2", c), ("exchange", a, [["hostile", [old, old]]]))
    for node in (a, b, c):
        wait_until(lambda n=node: attacked.rpc(n, pg2.get_members, "hostile") == members, what=f"{node} to drop it")
    wsane([a, b, c], attacked.rpc)
    still_serving(attacked)


# == Impostors =================================================================================


@pytest.mark.parametrize("then", ["silence", "wrong-cookie"])
def test_impostor_of_a_connected_node_cannot_cut_its_connection(
    attacked: Cluster, logs: pytest.LogCaptureFixture, then: str
) -> None:
    """A peer claiming b's name says 'yes, drop the old connection', then fails the challenge: a keeps its link to b."""
    a, b, _c = attacked.nodes[:3]
    pid = attacked.spawn(b, member_loop)
    assert pg2.join("hostile", pid) == "ok"
    ref = erlang.monitor("process", pid)
    with connect_to(port_of(a)) as sock:
        sock.sendall(name_frame(b))
        assert dist._recv_hs(sock, "s") == {"status": "alive"}
        dist._send_hs(sock, "s", {"alive": True})  # "my old connection is gone: drop yours"
        theirs = bytes.fromhex(dist._recv_hs(sock, "c")["challenge"])
        if then == "wrong-cookie":
            ours = os.urandom(dist.CHALLENGE_BYTES)
            digest = dist._digest(b"not-the-cookie", b"reply", theirs, ours, b, a)
            dist._send_hs(sock, "r", {"challenge": ours.hex(), "digest": digest.hex()})
            wait_until(logged(logs, b, "invalid challenge reply"), what="a's refusal")
        assert closed_by_peer(sock, timeout=SETUPTIME * 5)
    assert erlang.receive(is_down(ref), timeout=0) is erlang.TIMEOUT
    assert b in erlang.nodes() and pid in pg2.get_members("hostile")
    erlang.demonitor(ref, ["flush"])
    assert pg2.leave("hostile", pid) == "ok"
    still_serving(attacked)
