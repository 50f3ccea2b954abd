"""Hostile input: what a node does with bytes, frames and control messages that no well-behaved peer sends.

Every case here attacks node ``a``, this very process, so that its log is
captured (``caplog``) and a crash would crash the test run itself; one
(decoding a fun) attacks ``b`` as well, to look at what a child node
imported. After each attack the node must have refused or ignored the input
*with a log line*, the attack must have had no effect (nothing delivered,
no link or monitor made or broken, no process spawned or killed), and the
node must keep serving the others: :func:`still_serving` makes a pg2 write
on ``b`` and checks that ``a`` and ``c`` apply it, that ``a`` and ``b``
answer each other's rpc, and that the connections between ``a``, ``b`` and
``c`` are the ones they had.

The peer speaks Erlang/OTP 25's own protocol, by hand: the handshake's
2-byte-length messages (``support.name_message`` and friends), or the real
handshake (``support.handshake_to``) and then frames of a 4-byte length,
the pass-through byte 112 and terms in the external term format
(``support.control_frame``). Nothing from the network is ever unpickled:
a frame is decoded by ``repg2.external``, which runs no code, and only
after the peer has proved the cookie.

What test_dist.py already covers, against a child node and without reading
its log, and is not repeated here: garbage and an oversized frame before
and after the handshake (``test_garbage_and_oversized_frames_are_refused_without_harm``),
malformed handshake messages (``test_malformed_handshakes_are_refused``), a
wrong cookie on a real node (``test_wrong_cookie_is_refused_and_node_keeps_serving``),
a silent peer (``test_silent_peer_is_dropped_after_the_setup_time``), a
message frame at three points before authentication
(``test_nothing_is_decoded_before_the_cookie_is_proved``), a peer using the
node's own name (``test_handshake_claiming_the_nodes_own_name_is_not_allowed``)
and pids of a restarted node (``test_restart_gives_new_creation_and_old_pids_are_dead``);
test_epmd.py fuzzes a private port mapper, test_dist_util.py the handshake
alone, test_external.py the decoder alone. This file extends those: random
and truncated handshake messages and frames, each refusal's log line, seven
points where a message could be slipped in before the cookie is proved,
frames that do not decode after it (nesting, lengths and bignums past the
decoder's limits), control messages of the wrong shape, well-formed ones
addressed to nobody, forged senders, a fun whose module would run code if
imported, a flood of silent connections, stale pids reaching pg2, a node
with the wrong cookie trying to feed pg2 an exchange, hostile bytes and an
impostor at the port mapper, and an impostor that knows a connected node's
name. (That last one found a bug in the old look-alike protocol: by
answering "alive" the impostor made ``a`` drop its real connection to ``b``
before any cookie was proved, and pg2 on ``a`` lost ``b``'s members.
``repg2.dist_util`` drops the old connection only after the new peer has
passed the challenge, ``wait_pending``.) The control-message cases found
more, on the new protocol: ``a`` kept a connection that sent control
messages of the wrong shape (OTP closes it), relayed a SEND naming a pid of
another node to that node, acted on LINK, EXIT, EXIT2 and UNLINK_ID from
pids that were not the peer's, dropped any monitor a DEMONITOR_P named by
its reference, and fired any monitor a MONITOR_P_EXIT named, whatever node
it watched. ``repg2.dist`` now checks each control message as ``erts``
does.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import struct
import sys
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import (
    DEADLINE,
    challenge_of,
    challenge_reply,
    closed_by_peer,
    connect_to,
    control_frame,
    down_reason,
    frame,
    handshake_message,
    handshake_to,
    is_down,
    name_message,
    port_of,
    read_control,
    read_handshake_message,
    recv,
    start_pg2_everywhere,
    tagged,
    wait_until,
)

from repg2 import dist, epmd, erlang, external, gen_server, pg2, rpc
from repg2 import dist_util as du
from repg2.dist import Op
from repg2.erlang import TIMEOUT, Pid, Ref
from repg2.external import ExportFun
from repg2.testing import Cluster, member_loop, nodefuns, stop_pg2, wsane

pytestmark = [pytest.mark.timeout(120), pytest.mark.distributed]

SETUPTIME = 2.0  # seconds a handshake may take on the attacked nodes: a silent peer is dropped after it
TESTER = "tester@127.0.0.1"  # the name our hand-made peer gives itself
TESTER_CREATION = 7  # the creation support.handshake_to announces
INBOX = "hostile_inbox"  # this test process's registered name, reachable by REG_SEND
WRONG_COOKIE = "not-the-cookie"
_serials = itertools.count(1)  # numbers for the tester's pids and refs, and for barrier tokens


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
    """Capture the distribution's, the handshake's and the runtime's log records, from INFO (DEBUG for the runtime)."""
    caplog.set_level(logging.INFO, logger="repg2.dist")
    caplog.set_level(logging.INFO, logger="repg2.dist_util")
    caplog.set_level(logging.INFO, logger="repg2.pg2")
    caplog.set_level(logging.DEBUG, logger="repg2.erlang")  # last: it sets the capturing handler's level too
    return caplog


@pytest.fixture
def inbox() -> Iterator[Pid]:
    """Register the test process as INBOX for the test (authenticated frames can reach it by name)."""
    me = erlang.self()
    erlang.register(INBOX, me)
    yield me
    erlang.unregister(INBOX)
    erlang.flush()


@dataclass
class Victim:
    """A process of a linked to a process of c, and monitored by the test process: what forged signals aim at."""

    pid: Pid  # on a: traps exits, linked to ``partner``, reports an 'EXIT' it sees as ('exit_seen', msg)
    partner: Pid  # on c
    ref: Ref  # the test process's monitor of ``pid``


@pytest.fixture
def victim(attacked: Cluster, inbox: Pid) -> Iterator[Victim]:
    """Spawn a Victim on a, linked to a fresh member on c; kill both afterwards."""
    c = attacked.nodes[2]
    partner = attacked.spawn(c, member_loop)
    pid = erlang.spawn(nodefuns.link_and_report, partner, inbox)
    recv(lambda m: m == ("linked", pid), what="the victim's link")
    ref = erlang.monitor("process", pid)
    yield Victim(pid, partner, ref)
    erlang.demonitor(ref, ["flush"])
    erlang.exit(pid, "kill")
    attacked.rpc(c, nodefuns.kill, partner)


@dataclass
class Marker:
    """A module that, imported, leaves a file behind: the proof that some code ran."""

    module: str
    folder: Path
    flag: Path  # created by the module's import

    def fun(self) -> ExportFun:
        """Return ``fun module:run/0``, as an Erlang node sends an external fun."""
        return ExportFun(self.module, "run", 0)

    def imported_here(self) -> bool:
        """Say whether this process imported the module (or something ran its code)."""
        return self.module in sys.modules or self.flag.exists()


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Marker]:
    """Write a module with an import side effect into a folder on this process's ``sys.path``."""
    module = f"hostile_marker_{uuid.uuid4().hex}"
    flag = tmp_path / f"{module}.imported"
    (tmp_path / f"{module}.py").write_text(
        f"from pathlib import Path\nPath({str(flag)!r}).touch()\n\n\ndef run():\n    return 'ran'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield Marker(module, tmp_path, flag)
    sys.modules.pop(module, None)


# == Helpers ========================================================================


def logged(caplog: pytest.LogCaptureFixture, *fragments: str) -> Callable[[], bool]:
    """Return a predicate: some one log record contains every fragment."""
    return lambda: any(all(f in r.getMessage() for f in fragments) for r in caplog.records)


def still_serving(cluster: Cluster) -> None:
    """Node a keeps its links to b and c, serves and is served rpc, and applies b's pg2 writes, as c does."""
    a, b, c = cluster.nodes[:3]
    assert sorted(n for n in erlang.nodes() if n != TESTER) == sorted([b, c])
    assert sorted(cluster.nodes_of(b)) == sorted([a, c]) and sorted(cluster.nodes_of(c)) == sorted([a, b])
    assert rpc.call(b, erlang.node, []) == b  # a -> b over the distribution
    assert cluster.rpc(b, rpc.call, a, erlang.node, []) == a  # b -> a: a's rex answers
    pid = cluster.spawn(b, member_loop)
    assert cluster.rpc(b, pg2.join, "hostile", pid) == "ok"
    assert pid in pg2.get_members("hostile") and pid in cluster.rpc(c, pg2.get_members, "hostile")
    assert cluster.rpc(b, pg2.leave, "hostile", pid) == "ok"
    assert pid not in pg2.get_members("hostile")
    cluster.rpc(b, nodefuns.kill, pid)


def hand_over(sock: socket.socket, data: bytes) -> bool:
    """Send ``data``, close our sending side, and say whether the node then closes the connection."""
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:  # the node refused and closed before it had all of it (reset, not connected)
        return True
    return closed_by_peer(sock)


def gone(node: str) -> Callable[[], bool]:
    """Return a predicate: ``node`` is not among a's connected nodes."""
    return lambda: node not in erlang.nodes()


def peer_pid() -> Pid:
    """Return a fresh pid of the hand-made peer's node."""
    return Pid(TESTER, next(_serials), TESTER_CREATION)


def peer_ref() -> Ref:
    """Return a fresh reference of the hand-made peer's node."""
    return Ref(TESTER, next(_serials), TESTER_CREATION)


def evil(payload: Any = None) -> bytes:
    """Return an authenticated-looking frame: a REG_SEND to INBOX of ``('evil', payload)``."""
    return control_frame((Op.REG_SEND, peer_pid(), "", INBOX), ("evil", payload))


def no_evil_delivered() -> bool:
    """Say whether no ``('evil', ...)`` message has reached the test process."""
    return erlang.receive(tagged("evil"), timeout=0) is TIMEOUT


def barrier(sock: socket.socket) -> None:
    """Send INBOX a token over ``sock`` and wait for it: every frame sent before it has been dispatched.

    A connection's frames are dispatched one after the other by its reader
    thread, so the token's arrival proves that the node handled (or
    dropped) each earlier frame, and that the connection is still up.
    """
    token = ("barrier", next(_serials))
    sock.sendall(control_frame((Op.REG_SEND, peer_pid(), "", INBOX), token))
    assert recv(lambda m: m == token, what="the barrier token") == token


def ties(pid: Pid) -> tuple[frozenset[Pid], dict[Ref, Any], dict[Ref, Any]]:
    """Return a live local process's links, the monitors held on it (watchers) and the monitors it holds."""
    proc = erlang._local(pid)
    assert proc is not None, f"{pid!r} is dead"
    with erlang._lock:
        return frozenset(proc.links), dict(proc.watchers), dict(proc.monitors)


def term(*parts: Any) -> bytes:
    """Return the terms ``parts``, each with its version byte, as the pass-through frame carries them."""
    return b"".join(external.term_to_binary(p) for p in parts)


# == Random and truncated handshake messages ========================================


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
    with connect_to(epmd.epmd_port()) as sock:
        assert hand_over(sock, blob)  # a reply (NAMES or PORT2_RESP by chance) or nothing, then the close
    b = attacked.nodes[1]
    assert epmd.port_please(dist.split_node(b)[0], "127.0.0.1") == (port_of(b), du.ERL_DIST_VER)


def test_a_stranger_cannot_take_a_live_nodes_name_at_the_port_mapper(attacked: Cluster) -> None:
    """Registering b's name at the port mapper while b lives is refused, and b's port is unchanged."""
    b = attacked.nodes[1]
    alive = dist.split_node(b)[0]
    before = port_of(b)
    with pytest.raises(epmd.DuplicateName):
        epmd.register_node(alive, 1, timeout=DEADLINE)
    assert port_of(b) == before
    still_serving(attacked)


def test_random_bytes_are_refused_and_the_node_serves_on(attacked: Cluster) -> None:
    """After the random inputs above, a still serves b and c (a separate check, as it costs a pg2 write)."""
    still_serving(attacked)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00", "half a length"),
        (name_message()[:12], "a name message cut short"),
        (name_message() + b"\x00\x15r\x00\x00", "a challenge reply cut short"),
    ],
    ids=["length", "name-message", "challenge-reply"],
)
def test_truncated_handshake_messages_are_dropped(
    attacked: Cluster, logs: pytest.LogCaptureFixture, data: bytes, why: str
) -> None:
    """A handshake message cut off by the peer closing ends that setup, with a log line saying it was truncated."""
    with connect_to(port_of(attacked.nodes[0])) as sock:
        assert hand_over(sock, data), why
    wait_until(logged(logs, "refused a connection", "truncated"), what="the log line")
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


# == Oversized messages and frames ====================================================


def test_oversized_messages_and_frames_are_refused_before_and_after_authentication(
    attacked: Cluster, logs: pytest.LogCaptureFixture
) -> None:
    """A message or frame longer than its limit closes the connection without being read, before or after the handshake."""
    a = attacked.nodes[0]
    too_long = du.MAX_HANDSHAKE_MESSAGE + 1
    with connect_to(port_of(a)) as sock:
        sock.sendall(struct.pack(">H", too_long))
        assert closed_by_peer(sock)
    wait_until(logged(logs, f"handshake message of {too_long} bytes refused"), what="the refusal")
    with handshake_to(a, attacked.cookie.encode()) as sock:
        sock.sendall(struct.pack(">I", dist.MAX_FRAME + 1))
        assert closed_by_peer(sock)
    wait_until(logged(logs, TESTER, f"sent a frame of {dist.MAX_FRAME + 1} bytes"), what="the refusal")
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


# == The cookie ====================================================================


def test_wrong_cookie_by_hand_is_refused_with_a_log_line(
    attacked: Cluster, logs: pytest.LogCaptureFixture, inbox: Pid
) -> None:
    """A challenge reply made with another cookie is refused, a says so in its log, and the frame after it is never read."""
    with connect_to(port_of(attacked.nodes[0])) as sock:
        sock.sendall(name_message(TESTER))
        assert read_handshake_message(sock) == b"sok"
        challenge = challenge_of(read_handshake_message(sock))
        assert hand_over(sock, challenge_reply(challenge, WRONG_COOKIE) + evil("after a wrong reply"))
    wait_until(logged(logs, TESTER, "Invalid challenge reply"), what="the refusal")
    assert TESTER not in erlang.nodes() and no_evil_delivered()
    still_serving(attacked)


def test_node_with_the_wrong_cookie_cannot_feed_pg2(attacked: Cluster, logs: pytest.LogCaptureFixture) -> None:
    """A node with another cookie cannot connect, so its pg2 exchange never reaches the cluster's servers."""
    a, b, c = attacked.nodes[:3]
    intruder = attacked.add(cookie=WRONG_COOKIE)
    try:
        fake = attacked.spawn(intruder, member_loop)
        exchange = ("exchange", intruder, [["injected", [fake]]])
        for target in (a, b):  # a cast connects first (synchronously); the connection is refused
            assert attacked.rpc(intruder, gen_server.cast, ("pg2", target), exchange) == "ok"
        assert attacked.rpc(intruder, erlang.nodes) == []
        assert pg2.which_groups() == ["hostile"] and attacked.rpc(b, pg2.which_groups) == ["hostile"]
        assert intruder not in erlang.nodes() and intruder not in attacked.nodes_of(b)
        wait_until(logged(logs, intruder, "Invalid challenge reply"), what="a's refusal")
    finally:
        attacked.stop(intruder)
    wsane([a, b, c], attacked.rpc)
    still_serving(attacked)


# == Handshakes that never finish ====================================================


@pytest.mark.parametrize("say", [b"", name_message()], ids=["silent", "name-then-silent"])
def test_unfinished_handshake_is_dropped_after_the_setup_time(
    attacked: Cluster, logs: pytest.LogCaptureFixture, say: bytes
) -> None:
    """A peer that stops half-way is dropped after setuptime; meanwhile a serves the others; its name is free again."""
    with connect_to(port_of(attacked.nodes[0])) as sock:
        sock.sendall(say)
        still_serving(attacked)  # while the setup hangs
        assert closed_by_peer(sock, timeout=SETUPTIME * 5)
    peer = TESTER if say else "no_node"
    wait_until(logged(logs, f"handshake with {peer} not finished before the deadline"), what="the log line")
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

    # A handshake thread closes its socket, then logs, then ends: wait for the threads themselves
    # (the count alone can drop early when a thread of an earlier test ends meanwhile).
    def handshaking() -> bool:
        return any(t.name == "dist-handshake" for t in threading.enumerate())

    wait_until(lambda: not handshaking(), what="a's handshake threads to end")
    wait_until(lambda: threading.active_count() <= before, what=f"a's threads back to {before}")
    assert sum("not finished before the deadline" in r.getMessage() for r in logs.records) >= 50


# == Messages slipped in before the cookie is proved =====================================


@pytest.mark.parametrize(
    "where",
    [
        "first-bytes",
        "as-the-name-message",
        "after-the-name",
        "instead-of-the-reply",
        "glued-to-a-wrong-reply",
        "as-the-alive-answer",
        "after-not-allowed",
    ],
)
def test_a_message_slipped_in_before_authentication_is_never_decoded(
    attacked: Cluster, logs: pytest.LogCaptureFixture, inbox: Pid, marker: Marker, where: str
) -> None:
    """A message frame slipped in anywhere before the cookie is proved is never decoded, delivered or run."""
    a, b, _c = attacked.nodes[:3]
    bad = evil(marker.fun())
    if where == "after-not-allowed":
        dist.block([TESTER])
    try:
        with connect_to(port_of(a)) as sock:
            match where:
                case "first-bytes":
                    data = bad
                case "as-the-name-message":
                    data = handshake_message(bad[4:])  # the frame's body: pass-through byte and terms
                case "after-the-name":
                    data = name_message() + bad
                case "instead-of-the-reply":
                    sock.sendall(name_message())
                    assert read_handshake_message(sock) == b"sok"
                    challenge_of(read_handshake_message(sock))
                    data = bad
                case "glued-to-a-wrong-reply":
                    sock.sendall(name_message())
                    assert read_handshake_message(sock) == b"sok"
                    challenge = challenge_of(read_handshake_message(sock))
                    data = challenge_reply(challenge, WRONG_COOKIE) + bad  # one write, one segment
                case "as-the-alive-answer":  # claim b's name: a believes it is connected, and asks
                    sock.sendall(name_message(b))
                    assert read_handshake_message(sock) == b"salive"
                    data = handshake_message(bad)
                case "after-not-allowed":
                    sock.sendall(name_message())
                    assert read_handshake_message(sock) == b"snot_allowed"
                    data = bad
            assert hand_over(sock, data)
    finally:
        dist.unblock([TESTER])
    wait_until(logged(logs, "refused a connection"), what="a log line about the refusal")
    assert no_evil_delivered() and not marker.imported_here()
    assert sorted(erlang.nodes()) == sorted([b, attacked.nodes[2]])  # b's connection was not replaced by the impostor
    # Control: the same frame over an authenticated connection *is* delivered, so the test would see a delivery;
    # and decoding it still imports nothing.
    with handshake_to(a, attacked.cookie.encode()) as sock:
        sock.sendall(bad)
        assert recv(tagged("evil")) == ("evil", marker.fun())
        assert not marker.imported_here()
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


# == Decoding runs no code =============================================================


def test_a_fun_in_a_message_imports_nothing_on_the_receiving_node(attacked: Cluster, marker: Marker) -> None:
    """A fun naming a module with an import side effect crosses two nodes as a name: nothing is imported until it is called."""
    _a, b, _c = attacked.nodes[:3]
    attacked.rpc(b, nodefuns.prepend_path, str(marker.folder))  # b *could* import it
    echo = attacked.spawn(b, nodefuns.echo)
    me = erlang.self()
    with handshake_to(b, attacked.cookie.encode()) as sock:
        sock.sendall(control_frame((Op.SEND_SENDER, peer_pid(), echo), (me, ("fun", marker.fun()))))
        # b decoded it, and its echo process sent it on to a (encoded again): decoded twice, imported nowhere.
        assert recv(tagged("fun")) == ("fun", marker.fun())
    assert attacked.rpc(b, nodefuns.imported, marker.module) is False
    assert not marker.imported_here()
    # Control: calling the fun on b imports the module there, so the test would have seen an import.
    assert attacked.rpc(b, nodefuns.call_export, marker.module, "run") == "ran"
    assert attacked.rpc(b, nodefuns.imported, marker.module) is True and marker.flag.exists()
    attacked.rpc(b, nodefuns.kill, echo)
    wait_until(lambda: TESTER not in attacked.nodes_of(b), what="b to drop the tester")
    still_serving(attacked)


# == Frames that do not decode, after a valid handshake ======================================

_TP = Pid(TESTER, 1, TESTER_CREATION)
_TO_INBOX = term((Op.REG_SEND, _TP, "", INBOX))  # a good control message; the cases vary the message after it
_OVER_BIG = external.DEFAULT_MAX_BIG_BYTES + 1


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"\x00" + os.urandom(64), "pass-through byte"),
        (b"p\x83\x68\x05", "more bytes"),
        (b"p" + term("not a tuple"), "operation number"),
        (b"p" + term(("send", 1, 2)), "operation number"),
        (b"p" + _TO_INBOX, "nothing to decode"),  # a REG_SEND without its message
        (b"p" + _TO_INBOX + term("msg") + b"\x00", "after the frame's terms"),
        (b"p" + _TO_INBOX + bytes([131]) + b"\x68\x01" * 600 + b"\x6a", "nested too deeply"),
        (b"p" + _TO_INBOX + bytes([131, 108]) + struct.pack(">I", 2**32 - 1) + b"\x6a", "LIST_EXT"),
        (b"p" + _TO_INBOX + bytes([131, 109]) + struct.pack(">I", 2**31) + b"abc", "BINARY_EXT"),
        (b"p" + _TO_INBOX + bytes([131, 111]) + struct.pack(">I", _OVER_BIG) + bytes(_OVER_BIG + 1), "big integer"),
        (b"p" + _TO_INBOX + bytes([131, 80]) + struct.pack(">I", 2**30) + zlib.compress(bytes(2**20)), "COMPRESSED"),
        (b"p" + _TO_INBOX + bytes([131, 82, 0]), "ATOM_CACHE_REF"),
        (b"p" + _TO_INBOX + bytes([131, 70]) + struct.pack(">d", float("nan")), "finite"),
    ],
    ids=[
        "no-pass-through",
        "truncated-control",
        "control-not-a-tuple",
        "op-not-an-integer",
        "message-missing",
        "trailing-bytes",
        "nested-too-deeply",
        "huge-list-length",
        "huge-binary-length",
        "bignum-over-the-limit",
        "compression-bomb",
        "atom-cache-reference",
        "nan",
    ],
)
def test_a_frame_that_does_not_decode_closes_only_that_connection(
    attacked: Cluster, logs: pytest.LogCaptureFixture, inbox: Pid, body: bytes, complaint: str
) -> None:
    """An authenticated peer's frame that does not decode closes its connection, with a log line; the node serves on."""
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(frame(body) + evil("the frame after"))
        assert closed_by_peer(sock)
    wait_until(logged(logs, TESTER, "does not decode", complaint), what=f"the log line naming {complaint!r}")
    wait_until(logged(logs, f"nodedown {TESTER}"), what="the nodedown line")  # the reader ended: nothing more comes
    assert no_evil_delivered()
    assert erlang.whereis("pg2") != "undefined"
    still_serving(attacked)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(payloads=st.lists(st.binary(max_size=200).map(lambda b: b"p\x83" + b) | st.binary(max_size=200), max_size=5))
def test_random_frames_after_a_valid_handshake_do_not_hurt(
    attacked: Cluster, inbox: Pid, payloads: list[bytes]
) -> None:
    """Random frames from an authenticated peer: the first that does not decode closes the connection, and that is all."""
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        assert hand_over(sock, b"".join(frame(p) for p in payloads) + evil("good"))
    wait_until(gone(TESTER), what="a to drop the tester")
    if all(not p for p in payloads):  # ticks only: the good frame came through
        assert recv(tagged("evil")) == ("evil", "good")
    erlang.flush()
    assert erlang.whereis("pg2") != "undefined" and sorted(erlang.nodes()) == sorted(attacked.nodes[1:3])


_FUZZ_OPS = sorted(
    {v for k, v in vars(Op).items() if k.isupper()} - {Op.SPAWN_REQUEST, Op.SPAWN_REQUEST_TT}  # spawns: tested below
    | {0, 5, 99, 250}
)
_FUZZ_ATOMS = ["", "hostile_nobody", "true", "undefined", "noproc", "kill", "normal"]  # no registered name among them


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_control_messages_are_handled_or_refused_never_crash_the_reader(
    attacked: Cluster, logs: pytest.LogCaptureFixture, inbox: Pid, data: st.DataObject
) -> None:
    """Random control messages of real terms: each is handled or refused as invalid, and none crashes the dispatch."""
    me = erlang.self()
    pids = st.builds(
        Pid, st.sampled_from([TESTER, "hostile_other@127.0.0.1"]), st.integers(0, 2**40), st.just(TESTER_CREATION)
    )
    stale = st.builds(lambda n: Pid(me.node, n, me.creation + 1), st.integers(0, 2**20))  # names no process
    refs = st.builds(Ref, st.sampled_from([TESTER, me.node]), st.integers(0, 2**64), st.just(TESTER_CREATION))
    leaves = (
        st.integers(-(2**70), 2**70)
        | st.sampled_from(_FUZZ_ATOMS)
        | st.binary(max_size=20)
        | st.floats(allow_nan=False, allow_infinity=False)
        | pids
        | stale
        | refs
    )
    terms = st.recursive(
        leaves, lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(tuple), max_leaves=10
    )
    controls = data.draw(
        st.lists(st.tuples(st.sampled_from(_FUZZ_OPS), st.lists(terms, max_size=5), terms), min_size=1, max_size=4)
    )
    frames = [control_frame((op, *args), message) if op in dist._WITH_MESSAGE else control_frame((op, *args))
              for op, args, message in controls]  # fmt: skip
    logs.clear()
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        assert hand_over(sock, b"".join(frames) + evil("after"))
    wait_until(gone(TESTER), what="a to drop the tester")
    assert not logged(logs, "failed here")()  # no control message raised inside the node
    assert TESTER not in {p.node for p in ties(me)[0]}
    erlang.flush()
    assert erlang.whereis("pg2") != "undefined" and sorted(erlang.nodes()) == sorted(attacked.nodes[1:3])


def test_random_frames_are_refused_and_the_node_serves_on(attacked: Cluster) -> None:
    """After the random frames and control messages above, a still serves b and c."""
    still_serving(attacked)


# == Control messages of the wrong shape ======================================================


def _wrong_shapes(v: Victim) -> dict[str, bytes]:
    """Frames whose control message OTP's runtime calls an invalid distribution message, each aimed at ``v``."""
    me, tp = erlang.self(), peer_pid()
    return {
        "unknown-operation": control_frame((99, "no such operation")),
        "operation-alone": control_frame((Op.LINK,)),
        "link-of-no-pids": control_frame((Op.LINK, 1, 2)),
        "link-too-long": control_frame((Op.LINK, tp, v.pid, "extra")),
        "link-from-a-pid-of-another-node": control_frame((Op.LINK, Pid("hostile_other@127.0.0.1", 1, 1), v.pid)),
        "link-to-a-pid-of-another-node": control_frame((Op.LINK, tp, v.partner)),
        "send-to-no-pid": control_frame((Op.SEND, "", "not a pid"), ("evil", 1)),
        "reg-send-to-no-name": control_frame((Op.REG_SEND, tp, "", 42), ("evil", 2)),
        "reg-send-from-no-pid": control_frame((Op.REG_SEND, "nobody", "", INBOX), ("evil", 3)),
        "exit-forged-from-its-partner": control_frame((Op.EXIT, v.partner, v.pid, "forged")),
        "exit2-forged-from-its-partner": control_frame((Op.EXIT2, v.partner, v.pid, "kill")),
        "unlink-id-forged-from-its-partner": control_frame((Op.UNLINK_ID, 1, v.partner, v.pid)),
        "monitor-with-no-ref": control_frame((Op.MONITOR_P, tp, v.pid, "not a ref")),
        "monitor-for-another-node": control_frame((Op.MONITOR_P, v.partner, v.pid, peer_ref())),
        "monitor-of-a-pid-of-another-node": control_frame((Op.MONITOR_P, tp, v.partner, peer_ref())),
        "demonitor-for-another-node": control_frame((Op.DEMONITOR_P, v.partner, me, v.ref)),
        "alias-send-to-no-ref": control_frame((Op.ALIAS_SEND, tp, me), ("evil", 4)),
        "spawn-request-of-no-mfa": control_frame((Op.SPAWN_REQUEST, peer_ref(), tp, tp, ("erlang", "node"), []), []),
        "group-leader-of-no-pids": control_frame((Op.GROUP_LEADER, 1, 2)),
    }


_WRONG_SHAPES = list(_wrong_shapes(Victim(_TP, _TP, Ref(TESTER, 1, 1))))


@pytest.mark.parametrize("shape", _WRONG_SHAPES)
def test_a_control_message_of_the_wrong_shape_closes_the_connection_and_does_nothing(
    attacked: Cluster, logs: pytest.LogCaptureFixture, victim: Victim, shape: str
) -> None:
    """A decodable control message of the wrong shape is an invalid distribution message: logged, connection closed, no effect."""
    before = ties(victim.pid)
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(_wrong_shapes(victim)[shape] + evil("the frame after"))
        assert closed_by_peer(sock)
    wait_until(logged(logs, "invalid distribution message from node", TESTER), what="the log line")
    wait_until(logged(logs, f"nodedown {TESTER}"), what="the nodedown line")
    assert no_evil_delivered()
    assert erlang.receive(lambda m: tagged("exit_seen")(m) or is_down(victim.ref)(m), timeout=0) is TIMEOUT
    assert ties(victim.pid) == before  # no link or monitor made, none broken
    still_serving(attacked)


# == Well-formed control messages for nobody ====================================================


def _for_nobody(v: Victim) -> dict[str, bytes]:
    """Frames of the right shape that name no live target of theirs, each aimed near ``v``."""
    tp = peer_pid()
    dead = erlang.spawn(lambda: None)
    wait_until(lambda: not erlang.is_process_alive(dead), what="a dead pid")
    return {
        "send-to-a-dead-pid": control_frame((Op.SEND_SENDER, tp, dead), ("evil", 1)),
        "reg-send-to-an-unregistered-name": control_frame((Op.REG_SEND, tp, "", "hostile_nobody"), ("evil", 2)),
        "alias-send-to-an-alias-never-made": control_frame((Op.ALIAS_SEND, tp, v.ref), ("evil", 3)),
        "alias-send-of-the-peer": control_frame((Op.ALIAS_SEND_TT, tp, peer_ref(), "token"), ("evil", 4)),
        "unlink-id-ack-nobody-asked-for": control_frame((Op.UNLINK_ID_ACK, 12345, tp, v.pid)),
        "unlink-of-no-link": control_frame((Op.UNLINK, tp, v.pid)),
        "exit-of-no-link": control_frame((Op.EXIT, tp, v.pid, "no such link")),
        "exit2-to-a-dead-pid": control_frame((Op.EXIT2, tp, dead, "kill")),
        "demonitor-of-no-monitor": control_frame((Op.DEMONITOR_P, tp, v.pid, peer_ref())),
        "demonitor-of-a-monitor-it-does-not-hold": control_frame((Op.DEMONITOR_P, tp, v.pid, v.ref)),
        "group-leader": control_frame((Op.GROUP_LEADER, tp, v.pid)),
        "junk-call-to-pg2": control_frame((Op.REG_SEND, tp, "", "pg2"), ("$gen_call", (tp, "t"), "junk")),
    }


_FOR_NOBODY = [
    "send-to-a-dead-pid",
    "reg-send-to-an-unregistered-name",
    "alias-send-to-an-alias-never-made",
    "alias-send-of-the-peer",
    "unlink-id-ack-nobody-asked-for",
    "unlink-of-no-link",
    "exit-of-no-link",
    "exit2-to-a-dead-pid",
    "demonitor-of-no-monitor",
    "demonitor-of-a-monitor-it-does-not-hold",
    "group-leader",
    "junk-call-to-pg2",
]


@pytest.mark.parametrize("case", _FOR_NOBODY)
def test_a_well_formed_control_message_for_nobody_is_dropped_and_the_connection_stays(
    attacked: Cluster, logs: pytest.LogCaptureFixture, victim: Victim, case: str
) -> None:
    """A control message of the right shape whose target does not exist, or is not its to touch, is dropped; the link stays."""
    before = ties(victim.pid)
    server = erlang.whereis("pg2")
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(_for_nobody(victim)[case])
        barrier(sock)  # the connection is still up, and the frame was handled
        assert TESTER in erlang.nodes()
        if case == "junk-call-to-pg2":
            gen_server.get_state("pg2")
            wait_until(logged(logs, "unexpected message"), what="pg2's log line")
    assert no_evil_delivered()
    assert erlang.receive(lambda m: tagged("exit_seen")(m) or is_down(victim.ref)(m), timeout=0) is TIMEOUT
    assert ties(victim.pid) == before
    assert erlang.whereis("pg2") == server
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


@pytest.mark.parametrize("op", [Op.SEND, Op.SEND_SENDER, Op.SEND_TT, Op.SEND_SENDER_TT])
def test_a_message_to_a_pid_of_another_node_is_not_relayed(attacked: Cluster, inbox: Pid, op: int) -> None:
    """A SEND naming a pid of another node is dropped, as OTP drops it: a node relays nothing."""
    c = attacked.nodes[2]
    target = attacked.spawn(c, nodefuns.wait_then_exit)  # ends with the reason of the first ('exit', reason) it gets
    ref = erlang.monitor("process", target)
    tp = peer_pid()
    control = {
        Op.SEND: (Op.SEND, "", target),
        Op.SEND_SENDER: (Op.SEND_SENDER, tp, target),
        Op.SEND_TT: (Op.SEND_TT, "", target, "token"),
        Op.SEND_SENDER_TT: (Op.SEND_SENDER_TT, tp, target, "token"),
    }[op]
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(control_frame(control, ("exit", "relayed")))
        barrier(sock)  # had a relayed it, its frame to c would be on a's connection to c before ours
    erlang.send(target, ("exit", "direct"))
    assert down_reason(ref) == "direct"
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


@pytest.mark.parametrize("by", ["pid", "name"])
def test_a_down_for_a_monitor_on_another_nodes_process_is_not_believed(attacked: Cluster, inbox: Pid, by: str) -> None:
    """A MONITOR_P_EXIT for a monitor of a process of b, sent by another peer, fires nothing; b's own 'DOWN' still does."""
    b = attacked.nodes[1]
    target = attacked.spawn(b, nodefuns.wait_then_exit)
    name = f"hostile_watched_{next(_serials)}"
    if by == "name":
        attacked.rpc(b, erlang.register, name, target)
    ref = erlang.monitor("process", target if by == "pid" else (name, b))
    item = target if by == "pid" else name
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(control_frame((Op.MONITOR_P_EXIT, item, erlang.self(), ref, "forged")))
        barrier(sock)
    assert erlang.receive(is_down(ref), timeout=0) is TIMEOUT
    erlang.send(target, ("exit", "real"))
    assert down_reason(ref) == "real"
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


# == Spawn requests ===============================================================================


@pytest.mark.parametrize("case", ["no-such-function", "no-such-module", "wrong-arity"])
def test_a_spawn_request_for_nothing_runs_nothing(attacked: Cluster, inbox: Pid, case: str) -> None:
    """A spawn request for a function that does not exist gets a process that exits undef, as on OTP 25; the arity is not checked, as on OTP 25."""
    mfa, args = {
        "no-such-function": (("erlang", "hostile_no_such_function", 0), []),
        "no-such-module": (("hostile_no_such_module", "f", 1), [1]),
        "wrong-arity": (("erlang", "node", 1), []),  # OTP 25 runs erlang:node/0 here: M:F applied to the args
    }[case]
    req, tp = peer_ref(), peer_pid()
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(control_frame((Op.SPAWN_REQUEST, req, tp, tp, mfa, ["monitor"]), args))
        (_op, req_back, to, flags, result), _ = read_control(sock, Op.SPAWN_REPLY)
        assert (req_back, to) == (req, tp)
        assert isinstance(result, Pid) and result.node == attacked.nodes[0]
        assert flags == dist.SPAWN_MONITORED
        (_op, item, watcher, ref, reason), _ = read_control(sock, Op.MONITOR_P_EXIT)
        assert (item, watcher, ref) == (result, tp, req)
        if case == "wrong-arity":
            assert reason == "normal"  # node() ran and returned
        else:
            assert reason == ("undef", [(*mfa[:2], args, [])])  # OTP 25's reason for the same spawn
        assert not erlang.is_process_alive(result)
        barrier(sock)
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


# == Stale pids ================================================================================


def test_signals_to_a_pid_of_an_earlier_incarnation_are_dropped(
    attacked: Cluster, logs: pytest.LogCaptureFixture, inbox: Pid
) -> None:
    """A pid with a's name and a live process's number but an old creation names nothing: dropped, logged, noproc."""
    me = erlang.self()
    stale = Pid(attacked.nodes[0], me.id, me.creation + 1)  # our number, another incarnation's creation
    tp, ref, by_name = peer_pid(), peer_ref(), peer_ref()
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(control_frame((Op.SEND_SENDER, tp, stale), ("evil", "to the old one")))
        sock.sendall(control_frame((Op.MONITOR_P, tp, stale, ref)))
        sock.sendall(control_frame((Op.LINK, tp, stale)))
        sock.sendall(control_frame((Op.MONITOR_P, tp, "hostile_nobody", by_name)))
        barrier(sock)
        # a answers the monitors and the link at once (ticks and a's own chatter skipped)
        assert read_control(sock, Op.MONITOR_P_EXIT)[0] == (Op.MONITOR_P_EXIT, stale, tp, ref, "noproc")
        assert read_control(sock, Op.EXIT)[0] == (Op.EXIT, stale, tp, "noproc")
        assert read_control(sock, Op.MONITOR_P_EXIT)[0] == (Op.MONITOR_P_EXIT, "hostile_nobody", tp, by_name, "noproc")
    assert no_evil_delivered()
    assert logged(logs, "dropped: an earlier incarnation")()
    assert tp not in ties(me)[0]  # the LINK to the stale pid linked nobody
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


def test_malformed_exchange_from_an_authenticated_peer_is_skipped(attacked: Cluster, inbox: Pid) -> None:
    """Exchange entries that are not [Name, Members] pairs are skipped, as pg2's list generator skips them."""
    server = erlang.whereis("pg2")
    before = pg2.get_members("hostile")
    junk = ("$gen_cast", ("exchange", TESTER, ["not a pair", ["too", "many", "items"], ("tuple", "pair")]))
    with handshake_to(attacked.nodes[0], attacked.cookie.encode()) as sock:
        sock.sendall(control_frame((Op.REG_SEND, peer_pid(), "", "pg2"), junk))
        barrier(sock)
        gen_server.get_state("pg2")  # the exchange, sent before, has been handled
    assert erlang.whereis("pg2") == server and pg2.which_groups() == ["hostile"]
    assert pg2.get_members("hostile") == before
    wait_until(gone(TESTER), what="a to drop the tester")
    still_serving(attacked)


# == Impostors =================================================================================


@pytest.mark.parametrize("then", ["silence", "wrong-cookie", "false"])
def test_impostor_of_a_connected_node_cannot_cut_its_connection(
    attacked: Cluster, logs: pytest.LogCaptureFixture, then: str
) -> None:
    """A peer claiming b's name answers a's 'alive', then fails the challenge or backs off: a keeps its link to b."""
    a, b, _c = attacked.nodes[:3]
    pid = attacked.spawn(b, member_loop)
    assert pg2.join("hostile", pid) == "ok"
    ref = erlang.monitor("process", pid)
    with connect_to(port_of(a)) as sock:
        sock.sendall(name_message(b))
        assert read_handshake_message(sock) == b"salive"
        if then == "false":  # "I am still connected too": a keeps its connection and drops this one
            sock.sendall(handshake_message(b"sfalse"))
            wait_until(logged(logs, "not taken", f"node {b} is still connected"), what="a's answer")
        else:
            sock.sendall(handshake_message(b"strue"))  # "my old connection is gone: drop yours"
            challenge = challenge_of(read_handshake_message(sock))
            if then == "wrong-cookie":
                sock.sendall(challenge_reply(challenge, WRONG_COOKIE))
                wait_until(logged(logs, b, "Invalid challenge reply"), what="a's refusal")
        assert closed_by_peer(sock, timeout=SETUPTIME * 5)
    if then == "silence":
        wait_until(logged(logs, f"handshake with {b} not finished before the deadline"), what="a's time-out")
    assert erlang.receive(is_down(ref), timeout=0) is TIMEOUT
    assert b in erlang.nodes() and pid in pg2.get_members("hostile")
    erlang.demonitor(ref, ["flush"])
    assert pg2.leave("hostile", pid) == "ok"
    attacked.rpc(b, nodefuns.kill, pid)
    still_serving(attacked)
