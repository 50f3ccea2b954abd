"""repg2.dist_util: OTP 25's distribution handshake, against real Erlang nodes and hostile peers.

Three groups:

- **Real Erlang/OTP 25** (skipped with its reason without ``erl``, a failure
  when ``CI=true``): one ``erl -name e@127.0.0.1`` node on a fixed
  distribution port and a private epmd port, driven through a channel of its
  own (expressions on its stdin, ``REPLY <term>`` lines on its stdout). Our
  initiator connects to it; it connects to our acceptor, found through its
  epmd, where the test registers our name with a minimal ``ALIVE2_X_REQ``.
- **RePy2 to RePy2** over loopback: the happy path, wrong cookies, the
  ``alive`` replacement of a stale connection, and a simultaneous connect
  between two small models of net_kernel's connection table.
- **Hostile peers**: scripted raw sockets that send garbage, truncated,
  oversized or old-version messages, or stall; each must end in
  ``HandshakeError`` with the socket closed, before the deadline.
"""

from __future__ import annotations

import os
import queue
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from support import DEADLINE, free_port, need_erlang, wait_until

from repg2 import dist_util as du
from repg2.dist_util import HandshakeError, LostRace

pytestmark = pytest.mark.timeout(90)

COOKIE = "dist-util-cookie"


def _deadline(seconds: float = DEADLINE) -> float:
    """The handshake deadline ``seconds`` from now (by default the suite's: a handshake that must end well)."""
    return time.monotonic() + seconds


def _listener() -> socket.socket:
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    return lsock


def _connect(port: int) -> socket.socket:
    return du.nodelay(socket.create_connection(("127.0.0.1", port), timeout=DEADLINE))


def _closed(sock: socket.socket) -> bool:
    return sock.fileno() == -1


def _recording(calls: list[str], answer: Any) -> Callable[[str], Any]:
    """A callback that records the node it is asked about and gives ``answer``."""

    def callback(node: str) -> Any:
        calls.append(node)
        return answer

    return callback


def _steps(*steps: Callable[[socket.socket], object]) -> Callable[[socket.socket], None]:
    """A raw peer's script made of several steps, run in order."""

    def run(sock: socket.socket) -> None:
        for step in steps:
            step(sock)

    return run


# == Real Erlang ==================================================================

_ERL_CHANNEL = """
Eval = fun(Line) ->
    {ok, Toks, _} = erl_scan:string(Line),
    {ok, Exprs} = erl_parse:parse_exprs(Toks),
    {value, V, _} = erl_eval:exprs(Exprs, []),
    V
end,
Loop = fun L() ->
    case io:get_line("") of
        eof -> halt();
        {error, _} -> halt();
        Line ->
            R = try Eval(Line) catch C:E -> {exception, C, E} end,
            io:format("REPLY ~w~n", [R]),
            L()
    end
end,
io:format("READY~n"),
Loop().
"""


class ErlNode:
    """A real Erlang node with a fixed distribution port, evaluating the expressions the test writes to it."""

    def __init__(self, name: str, cookie: str, epmd_port: int, dist_port: int, ticktime: int) -> None:
        self.name = name
        self.epmd_port = epmd_port
        self.dist_port = dist_port
        self.env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port))
        self.proc = subprocess.Popen(
            ["erl", "-name", name, "-setcookie", cookie, "-noshell", "-kernel",
             "inet_dist_listen_min", str(dist_port), "inet_dist_listen_max", str(dist_port),
             "net_ticktime", str(ticktime), "-eval", _ERL_CHANNEL],
            env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []  # every line that is not a reply: Erlang's error reports
        threading.Thread(target=self._pump, daemon=True).start()
        self._expect("READY", DEADLINE)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} line from {self.name}; other output: {self.log}") from None
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
            self.log.append(line)

    def send(self, expr: str) -> None:
        """Write one expression (ending in a dot) for the node to evaluate."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(expr + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float = DEADLINE) -> str:
        """Return the next reply, as Erlang's ``~w`` prints it."""
        return self._expect("REPLY ", timeout)

    def eval(self, expr: str, timeout: float = DEADLINE) -> str:
        self.send(expr)
        return self.reply(timeout)

    def stop(self) -> None:
        try:
            self.send("halt().")
            self.proc.wait(timeout=DEADLINE)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=DEADLINE)
        subprocess.run(["epmd", "-kill"], env=self.env, capture_output=True, timeout=DEADLINE)


@pytest.fixture(scope="module")
def erl() -> Iterator[ErlNode]:
    """One real node e@127.0.0.1 (cookie COOKIE, net_ticktime 1 s) for the module's Erlang tests."""
    need_erlang()
    node = ErlNode("e@127.0.0.1", COOKIE, free_port(), free_port(), ticktime=1)
    try:
        yield node
    finally:
        node.stop()


def _erl_default_flags(erl: ErlNode) -> int:
    """The flags an OTP 25 node advertises to a normal peer: erts' defaults plus PUBLISHED."""
    reply = erl.eval("element(2, erts_internal:get_dflags()).")
    return int(reply) | du.DFLAG_PUBLISHED


class TickEcho:
    """After a handshake, read frames without decoding them and answer each tick with a tick."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.frames = 0
        self.ticks = 0
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                frame = du.recv_frame(self.sock)
                if frame:
                    self.frames += 1  # e.g. global's sync messages: never decoded here
                else:
                    self.ticks += 1
                    self.sock.sendall(du.TICK)
        except (OSError, ValueError):
            pass
        finally:
            self.closed.set()

    def stop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(timeout=DEADLINE)
        self.sock.close()


def _dial_erl(erl: ErlNode, name: str, cookie: str = COOKIE, **kwargs: Any) -> tuple[socket.socket, du.HandshakeResult]:
    sock = _connect(erl.dist_port)
    result = du.handshake_we_started(
        sock, this_node=name, other_node=erl.name, cookie=cookie, creation=kwargs.pop("creation", 17),
        deadline=_deadline(), **kwargs,
    )  # fmt: skip
    return sock, result


def _epmd_alive2(epmd_port: int, alive: str, port: int) -> tuple[socket.socket, int]:
    """Register ``alive`` on ``port`` with epmd (ALIVE2_X_REQ); return the open registration and the creation."""
    name = alive.encode()
    body = struct.pack(">cHBBHHH", b"x", port, 77, 0, du.ERL_DIST_VER, du.ERL_DIST_VER, len(name)) + name
    body += struct.pack(">H", 0)  # no extra
    sock = socket.create_connection(("127.0.0.1", epmd_port), timeout=DEADLINE)
    sock.sendall(struct.pack(">H", len(body)) + body)
    head = sock.recv(2, socket.MSG_WAITALL)
    if head == b"v\x00":  # ALIVE2_X_RESP, result 0: a 32-bit creation follows
        (creation,) = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))
    elif head == b"y\x00":  # ALIVE2_RESP: a 16-bit creation
        (creation,) = struct.unpack(">H", sock.recv(2, socket.MSG_WAITALL))
    else:
        raise AssertionError(f"epmd refused the registration of {alive}: {head!r}")
    return sock, creation


@dataclass
class Accepted:
    """What an acceptor thread ended with."""

    result: du.HandshakeResult | None = None
    error: BaseException | None = None
    sock: socket.socket | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _accept_once(
    lsock: socket.socket, this_node: str, cookie: str = COOKIE, creation: int = 5, **kwargs: Any
) -> Accepted:
    """Accept one connection on ``lsock`` in a thread and run our acceptor on it."""
    out = Accepted()

    def run() -> None:
        try:
            lsock.settimeout(DEADLINE)
            sock, _ = lsock.accept()
            out.sock = du.nodelay(sock)
            out.result = du.handshake_other_started(
                sock, this_node=this_node, cookie=cookie, creation=creation,
                mark_pending=kwargs.pop("mark_pending", lambda node: "ok"),
                deadline=_deadline(kwargs.pop("seconds", DEADLINE)), **kwargs,
            )  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            out.error = exc
        finally:
            out.done.set()

    threading.Thread(target=run, daemon=True).start()
    return out


def test_erlang_accepts_our_initiator_and_lists_us(erl: ErlNode) -> None:
    """Our initiator connects to OTP 25: we learn its name, flags and creation, and it lists us in nodes()."""
    sock, result = _dial_erl(erl, "py1@127.0.0.1")
    echo = TickEcho(sock)
    try:
        assert result.node == "e@127.0.0.1"
        assert result.flags == _erl_default_flags(erl)
        assert result.chosen_flags == du.adjust_flags(du.DEFAULT_FLAGS, result.flags)
        assert result.status == "ok" and result.their_digest_ok and result.our_digest_ok
        assert erl.eval("lists:member('py1@127.0.0.1', nodes()).") == "true"
        assert erl.eval("lists:member('py1@127.0.0.1', nodes(hidden)).") == "false"  # PUBLISHED: a normal node
    finally:
        echo.stop()


def test_erlang_keeps_us_while_we_answer_ticks_and_drops_a_silent_peer(erl: ErlNode) -> None:
    """With net_ticktime 1 s, a peer that echoes ticks stays in nodes(); one that never sends is dropped."""
    erl.eval("net_kernel:monitor_nodes(true).")
    loud, _ = _dial_erl(erl, "loud@127.0.0.1")
    echo = TickEcho(loud)
    quiet, _ = _dial_erl(erl, "quiet@127.0.0.1")
    try:
        # A silent peer is dropped within 1.25 net_ticktimes; an answering one outlives three more.
        reply = erl.eval(
            "receive {nodedown, 'quiet@127.0.0.1'} -> ok after 10000 -> timeout end,"
            " receive {nodedown, 'loud@127.0.0.1'} -> dropped after 3000 -> kept end."
        )
        assert reply == "kept"
        assert echo.ticks > 0
        assert erl.eval("lists:member('loud@127.0.0.1', nodes()).") == "true"
    finally:
        erl.eval("net_kernel:monitor_nodes(false).")
        echo.stop()
        quiet.close()


def test_erlang_accepts_the_mandatory_25_digest_bit_alone(erl: ErlNode) -> None:
    """OTP 25 reads DFLAG_MANDATORY_25_DIGEST as all eleven mandatory flags (expand_mandatory_25_flag)."""
    flags = du.DFLAG_PUBLISHED | du.DFLAG_MANDATORY_25_DIGEST
    sock, result = _dial_erl(erl, "digest_only@127.0.0.1", this_flags=flags)
    sock.close()
    assert result.chosen_flags & du.MANDATORY_DFLAGS_25 == du.MANDATORY_DFLAGS_25


def test_erlang_refuses_a_peer_without_the_mandatory_flags(erl: ErlNode) -> None:
    """OTP 25 answers not_allowed to a peer that lacks MAP_TAG (check_dflags)."""
    flags = (du.DEFAULT_FLAGS | du.MANDATORY_DFLAGS_25) & ~du.DFLAG_MAP_TAG & ~du.DFLAG_MANDATORY_25_DIGEST
    with pytest.raises(HandshakeError) as info:
        _dial_erl(erl, "no_maps@127.0.0.1", this_flags=flags)
    assert info.value.reason == ("recv_status_failed", "not_allowed")


def test_wrong_cookie_our_initiator_is_refused_by_erlang(erl: ErlNode) -> None:
    """Erlang closes the connection on our wrong digest; our initiator raises HandshakeError and is not listed."""
    with pytest.raises(HandshakeError) as info:
        _dial_erl(erl, "badcookie@127.0.0.1", cookie="not-the-cookie")
    assert info.value.reason == ("recv_challenge_ack_failed", "closed")
    assert erl.eval("lists:member('badcookie@127.0.0.1', nodes()).") == "false"


def test_erlang_dials_our_acceptor_through_epmd(erl: ErlNode) -> None:
    """net_kernel:connect_node/1 from Erlang reaches our acceptor: true there, Erlang's name and flags here."""
    lsock = _listener()
    reg, creation = _epmd_alive2(erl.epmd_port, "pyacc", lsock.getsockname()[1])
    try:
        assert creation > 0
        asked: list[str] = []
        out = _accept_once(lsock, "pyacc@127.0.0.1", creation=creation, mark_pending=_recording(asked, "ok"))
        assert erl.eval("net_kernel:connect_node('pyacc@127.0.0.1').") == "true"
        assert out.done.wait(DEADLINE) and out.error is None, out.error
        assert out.result is not None and out.sock is not None
        assert asked == ["e@127.0.0.1"]
        assert out.result.node == "e@127.0.0.1" and out.result.other_started
        assert out.result.flags == _erl_default_flags(erl)
        echo = TickEcho(out.sock)
        assert erl.eval("lists:member('pyacc@127.0.0.1', nodes()).") == "true"
        echo.stop()
    finally:
        reg.close()
        lsock.close()


def test_wrong_cookie_erlang_dials_our_acceptor(erl: ErlNode) -> None:
    """Erlang with another cookie for us: connect_node returns false and our acceptor raises bad_cookie."""
    lsock = _listener()
    reg, creation = _epmd_alive2(erl.epmd_port, "pybad", lsock.getsockname()[1])
    try:
        out = _accept_once(lsock, "pybad@127.0.0.1", creation=creation)
        erl.eval("erlang:set_cookie('pybad@127.0.0.1', 'another-cookie').")
        assert erl.eval("net_kernel:connect_node('pybad@127.0.0.1').") == "false"
        assert out.done.wait(DEADLINE)
        assert isinstance(out.error, HandshakeError)
        assert out.error.reason == ("recv_challenge_reply_failed", "bad_cookie")
        assert out.sock is not None and _closed(out.sock)
    finally:
        reg.close()
        lsock.close()


def test_erlang_answers_alive_and_replaces_a_stale_connection(erl: ErlNode) -> None:
    """Dialling again while Erlang holds a connection from us: status alive, we say true, the old one is closed."""
    old, first = _dial_erl(erl, "again@127.0.0.1", creation=1)
    old_echo = TickEcho(old)  # answers ticks: only the replacement can end this connection
    assert first.status == "ok"
    asked: list[str] = []
    new, second = _dial_erl(erl, "again@127.0.0.1", creation=2, is_pending=_recording(asked, True))
    echo = TickEcho(new)
    try:
        assert second.status == "alive" and asked == ["e@127.0.0.1"]
        assert old_echo.closed.wait(DEADLINE), "Erlang kept the stale connection"
        assert erl.eval("lists:member('again@127.0.0.1', nodes()).") == "true"
        assert not echo.closed.is_set()
    finally:
        old_echo.stop()
        echo.stop()


def test_gen_digest_matches_erlangs_md5(erl: ErlNode) -> None:
    """gen_digest is md5(Cookie ++ integer_to_list(Challenge)): compared with erlang:md5/1 on the real node."""
    for challenge in (0, 7, 2**31, 2**32 - 1):
        reply = erl.eval(f"binary_to_list(erlang:md5([atom_to_list('{COOKIE}') | integer_to_list({challenge})])).")
        assert du.gen_digest(challenge, COOKIE) == bytes(int(b) for b in reply.strip("[]").split(","))


# == Raw peers: handshake messages written by hand ===================================


def _raw_send(sock: socket.socket, body: bytes) -> None:
    sock.sendall(struct.pack(">H", len(body)) + body)


def _raw_recv(sock: socket.socket) -> bytes:
    sock.settimeout(DEADLINE)
    (size,) = struct.unpack(">H", sock.recv(2, socket.MSG_WAITALL))
    return sock.recv(size, socket.MSG_WAITALL) if size else b""


def _raw_drain(sock: socket.socket) -> list[bytes]:
    """Read handshake messages until the peer closes."""
    got = []
    try:
        while True:
            got.append(_raw_recv(sock))
    except (OSError, struct.error):
        return got


def _name_msg(name: str, flags: int = du.DEFAULT_FLAGS, creation: int = 3) -> bytes:
    raw = name.encode("latin-1")
    return struct.pack(">cQIH", b"N", flags, creation, len(raw)) + raw


def _challenge_msg(name: str, challenge: int, flags: int = du.DEFAULT_FLAGS, creation: int = 4) -> bytes:
    raw = name.encode("latin-1")
    return struct.pack(">cQIIH", b"N", flags, challenge, creation, len(raw)) + raw


def _reply_msg(their_challenge: int, cookie: str, ours: int = 99) -> bytes:
    return struct.pack(">cI", b"r", ours) + du.gen_digest(their_challenge, cookie)


def _challenge_of(msg: bytes) -> int:
    return int(struct.unpack_from(">I", msg, 9)[0])


RAW = "raw@127.0.0.1"
US = "us@127.0.0.1"


def _initiator_to_reply(sock: socket.socket) -> int:
    """Play a correct initiator up to our challenge; return the acceptor's challenge."""
    _raw_send(sock, _name_msg(RAW))
    assert _raw_recv(sock) == b"sok"
    return _challenge_of(_raw_recv(sock))


def _bad_reply(sock: socket.socket) -> list[bytes]:
    _initiator_to_reply(sock)
    _raw_send(sock, b"r" + b"\x00" * 10)
    return _raw_drain(sock)


def _stall(sock: socket.socket) -> list[bytes]:
    return []


# (id, what the raw initiator does, the acceptor's HandshakeError reason, what the raw peer hears before the end)
ACCEPTOR_CASES: list[tuple[str, Callable[[socket.socket], object], Any, list[bytes] | None]] = [
    ("http", lambda s: s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ("bad_message_size", 0x4745), []),
    ("small_garbage", lambda s: _raw_send(s, b"hello"), "no_node", []),
    ("empty_message", lambda s: s.sendall(b"\x00\x00"), ("bad_message_size", 0), []),
    # Refused from its length alone: the acceptor must not wait for 65535 bytes (that would be a timeout).
    ("oversized", lambda s: s.sendall(b"\xff\xffN" + b"\x00" * 20), ("bad_message_size", 0xFFFF), []),
    (
        "truncated_message",
        _steps(lambda s: s.sendall(b"\x00\x20N\x00\x00"), lambda s: s.shutdown(socket.SHUT_WR)),
        "truncated",
        [],
    ),
    ("truncated_name", lambda s: _raw_send(s, _name_msg(RAW)[:-4]), "no_node", []),
    ("short_header", lambda s: _raw_send(s, b"N\x00\x00\x00"), "no_node", []),
    ("old_version_5", lambda s: _raw_send(s, b"n" + struct.pack(">HI", 5, 0x7FFFF) + RAW.encode()), "no_node", []),
    ("not_a_node_name", lambda s: _raw_send(s, _name_msg("no-at-sign")), "no_node", []),
    ("two_at_signs", lambda s: _raw_send(s, _name_msg("a@b@c")), "no_node", []),
    ("name_too_long", lambda s: _raw_send(s, _name_msg("x" * 300 + "@127.0.0.1")), "no_node", []),
    ("closes_at_once", lambda s: s.shutdown(socket.SHUT_WR), "connection_closed", []),
    ("stalls", _stall, "setup_timer_timeout", None),
    ("stalls_mid_message", lambda s: s.sendall(b"\x00\x20N\x00"), "setup_timer_timeout", None),
    (
        "lacks_map_tag",
        lambda s: _raw_send(s, _name_msg(RAW, du.MANDATORY_DFLAGS_25 & ~du.DFLAG_MAP_TAG)),
        ("check_dflags_failed", ["MAP_TAG"]),
        [b"snot_allowed"],
    ),
    (
        "asks_for_a_dynamic_name",
        lambda s: _raw_send(s, _name_msg("127.0.0.1", du.DEFAULT_FLAGS | du.DFLAG_NAME_ME, creation=0)),
        ("is_allowed", "not_allowed"),
        [b"snot_allowed"],
    ),
    ("bad_reply_size", _bad_reply, ("recv_challenge_reply_failed", b"r" + b"\x00" * 10), []),
]


@pytest.mark.parametrize(("case", "script", "reason", "heard"), ACCEPTOR_CASES, ids=[c[0] for c in ACCEPTOR_CASES])
def test_acceptor_refuses_a_hostile_initiator(
    case: str, script: Callable[[socket.socket], Any], reason: Any, heard: list[bytes] | None
) -> None:
    """A peer that is not a well-behaved node ends in HandshakeError, socket closed, before the deadline."""
    lsock = _listener()
    out = _accept_once(lsock, US, seconds=1.0)
    raw = _connect(lsock.getsockname()[1])
    try:
        script(raw)
        assert out.done.wait(DEADLINE), "the acceptor hangs"
        assert isinstance(out.error, HandshakeError) and not isinstance(out.error, LostRace), out.error
        assert out.error.reason == reason
        assert out.sock is not None and _closed(out.sock)
        if heard is not None:
            assert _raw_drain(raw) == heard
    finally:
        raw.close()
        lsock.close()


def test_acceptor_names_the_old_handshake_version() -> None:
    """An ``n`` name message (handshake version 5, gone since OTP 25) is refused with a message saying so."""
    lsock = _listener()
    out = _accept_once(lsock, US, seconds=1.0)
    with _connect(lsock.getsockname()[1]) as raw:
        _raw_send(raw, b"n" + struct.pack(">HI", 5, 0x7FFFF) + RAW.encode())
        assert out.done.wait(DEADLINE)
    assert isinstance(out.error, HandshakeError) and "version 5" in str(out.error)
    lsock.close()


def test_acceptor_reads_nothing_beyond_the_handshake() -> None:
    """A frame sent in the same write as the challenge reply is left on the socket for the carrier."""
    lsock = _listener()
    out = _accept_once(lsock, US)
    with _connect(lsock.getsockname()[1]) as raw:
        challenge = _initiator_to_reply(raw)
        raw.sendall(struct.pack(">H", 21) + _reply_msg(challenge, COOKIE, ours=12345) + du.pack_frame(b"first"))
        ack = _raw_recv(raw)
        assert ack == b"a" + du.gen_digest(12345, COOKIE)
        assert out.done.wait(DEADLINE) and out.error is None, out.error
        assert out.sock is not None and out.result is not None
        assert out.result.node == RAW and out.result.creation == 3 and out.result.our_digest_ok is None
        assert du.recv_frame(out.sock) == b"first"
        out.sock.close()
    lsock.close()


def _acceptor_script(*steps: Callable[[socket.socket], object]) -> Callable[[socket.socket], None]:
    def run(sock: socket.socket) -> None:
        assert _raw_recv(sock)[:1] == b"N"  # our initiator's name
        for step in steps:
            step(sock)

    return run


def _ok_and_challenge(name: str = RAW, flags: int = du.DEFAULT_FLAGS) -> Callable[[socket.socket], None]:
    def run(sock: socket.socket) -> None:
        _raw_send(sock, b"sok")
        _raw_send(sock, _challenge_msg(name, 4242, flags))

    return run


def _bad_ack(sock: socket.socket) -> None:
    _raw_recv(sock)  # our reply
    _raw_send(sock, b"a" + b"\x01" * 16)


# (id, what the raw acceptor does after reading our name, our initiator's HandshakeError reason)
INITIATOR_CASES: list[tuple[str, Callable[[socket.socket], object], Any]] = [
    ("garbage", lambda s: s.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"), ("bad_message_size", 0x4854)),
    ("unknown_status", lambda s: _raw_send(s, b"swhatever"), ("recv_status_failed", "unknown", "whatever")),
    (
        "named",
        lambda s: _raw_send(s, b"snamed:\x00\x03a@b\x00\x00\x00\x01"),
        ("recv_status_failed", "unexpected", "named"),
    ),
    ("not_allowed", lambda s: _raw_send(s, b"snot_allowed"), ("recv_status_failed", "not_allowed")),
    ("no_status", lambda s: _raw_send(s, _challenge_msg(RAW, 1)), ("recv_status_failed", _challenge_msg(RAW, 1)[:24])),
    ("another_node", _ok_and_challenge("other@127.0.0.1"), ("recv_challenge_failed", "no_node", "other@127.0.0.1")),
    (
        "challenge_lacks_utf8_atoms",
        _ok_and_challenge(flags=du.MANDATORY_DFLAGS_25 & ~du.DFLAG_UTF8_ATOMS),
        ("check_dflags_failed", ["UTF8_ATOMS"]),
    ),
    (
        "truncated_challenge",
        _steps(lambda s: _raw_send(s, b"sok"), lambda s: _raw_send(s, _challenge_msg(RAW, 1)[:12])),
        ("recv_challenge_failed", _challenge_msg(RAW, 1)[:12]),
    ),
    (
        "old_challenge",
        _steps(lambda s: _raw_send(s, b"sok"), lambda s: _raw_send(s, b"n\x00\x05" + b"\x00" * 8 + RAW.encode())),
        ("recv_challenge_failed", (b"n\x00\x05" + b"\x00" * 8 + RAW.encode())[:24]),
    ),
    ("stalls_after_name", lambda s: None, "setup_timer_timeout"),
    ("stalls_after_status", lambda s: _raw_send(s, b"sok"), "setup_timer_timeout"),
    ("closes_after_name", lambda s: s.shutdown(socket.SHUT_WR), "connection_closed"),
    ("oversized", lambda s: s.sendall(b"\xff\xff"), ("bad_message_size", 0xFFFF)),
    ("bad_ack_digest", _acceptor_script(_ok_and_challenge(), _bad_ack), ("recv_challenge_ack_failed", "bad_cookie")),
    (
        "short_ack",
        _acceptor_script(_ok_and_challenge(), _raw_recv, lambda s: _raw_send(s, b"a\x00")),
        ("recv_challenge_ack_failed", b"a\x00"),
    ),
]


@pytest.mark.parametrize(("case", "script", "reason"), INITIATOR_CASES, ids=[c[0] for c in INITIATOR_CASES])
def test_initiator_refuses_a_hostile_acceptor(
    case: str, script: Callable[[socket.socket], object], reason: Any
) -> None:
    """An acceptor that is not a well-behaved node ends our initiator in HandshakeError, socket closed."""
    lsock = _listener()
    done = threading.Event()
    peer: list[socket.socket] = []

    def serve() -> None:
        sock, _ = lsock.accept()
        peer.append(sock)
        if case not in ("bad_ack_digest", "short_ack"):
            assert _raw_recv(sock)[:1] == b"N"
        try:
            script(sock)
        except OSError:
            pass
        done.set()

    threading.Thread(target=serve, daemon=True).start()
    sock = _connect(lsock.getsockname()[1])
    try:
        with pytest.raises(HandshakeError) as info:
            du.handshake_we_started(
                sock, this_node=US, other_node=RAW, cookie=COOKIE, creation=1, deadline=_deadline(1.0)
            )
        assert not isinstance(info.value, LostRace)
        assert info.value.reason == reason
        assert _closed(sock)
    finally:
        done.wait(DEADLINE)
        for s in peer:
            s.close()
        lsock.close()


@pytest.mark.parametrize(("answer", "expect"), [("nok", []), ("alive", [b"sfalse"])])
def test_initiator_reports_a_lost_race(answer: str, expect: list[bytes]) -> None:
    """``nok``, or ``alive`` while we hold a connection (is_pending False), end our dial with LostRace."""
    lsock = _listener()
    heard: list[bytes] = []

    def serve() -> None:
        sock, _ = lsock.accept()
        with sock:
            _raw_recv(sock)
            _raw_send(sock, b"s" + answer.encode())
            heard.extend(_raw_drain(sock))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    sock = _connect(lsock.getsockname()[1])
    with pytest.raises(LostRace) as info:
        du.handshake_we_started(
            sock, this_node=US, other_node=RAW, cookie=COOKIE, creation=1, is_pending=lambda n: False,
            deadline=_deadline(),
        )  # fmt: skip
    t.join(DEADLINE)
    assert info.value.reason == answer and _closed(sock)
    assert heard == expect
    lsock.close()


# == RePy2 to RePy2 ====================================================================


def _pair(
    acceptor_cookie: str = COOKIE, initiator_cookie: str = COOKIE, **acceptor_kwargs: Any
) -> tuple[Accepted, socket.socket, du.HandshakeResult | HandshakeError]:
    lsock = _listener()
    out = _accept_once(lsock, "b@127.0.0.1", cookie=acceptor_cookie, creation=0xB, **acceptor_kwargs)
    sock = _connect(lsock.getsockname()[1])
    sock.settimeout(None)
    mine: du.HandshakeResult | HandshakeError
    try:
        mine = du.handshake_we_started(
            sock, this_node="a@127.0.0.1", other_node="b@127.0.0.1", cookie=initiator_cookie, creation=0xA,
            deadline=_deadline(),
        )  # fmt: skip
    except HandshakeError as exc:
        mine = exc
    assert out.done.wait(DEADLINE)
    lsock.close()
    return out, sock, mine


def test_python_pair_happy_path() -> None:
    """Our initiator and our acceptor agree: names, creations, flags, then frames flow both ways."""
    out, sock, mine = _pair()
    assert isinstance(mine, du.HandshakeResult), mine
    assert out.error is None and out.result is not None and out.sock is not None
    assert (mine.node, mine.creation, mine.other_started, mine.status) == ("b@127.0.0.1", 0xB, False, "ok")
    assert (out.result.node, out.result.creation, out.result.other_started) == ("a@127.0.0.1", 0xA, True)
    assert mine.flags == out.result.flags == du.DEFAULT_FLAGS | du.MANDATORY_DFLAGS_25
    assert mine.chosen_flags == out.result.chosen_flags
    assert sock.gettimeout() is None  # the timeout mode it had before the handshake
    sock.sendall(du.pack_frame(b"ping") + du.TICK)
    assert du.recv_frame(out.sock) == b"ping" and du.recv_frame(out.sock) == b""
    out.sock.sendall(du.pack_frame(b"pong"))
    assert du.recv_frame(sock) == b"pong"
    sock.close()
    out.sock.close()


def test_python_pair_wrong_cookie() -> None:
    """Different cookies: the acceptor finds a bad digest and sends no ack; the initiator sees the close."""
    out, sock, mine = _pair(acceptor_cookie="one", initiator_cookie="two")
    assert isinstance(out.error, HandshakeError)
    assert out.error.reason == ("recv_challenge_reply_failed", "bad_cookie")
    assert isinstance(mine, HandshakeError) and mine.reason == ("recv_challenge_ack_failed", "closed")
    assert _closed(sock)


@pytest.mark.parametrize("same_cookie", [True, False])
def test_alive_replaces_a_stale_connection_only_after_the_cookie_is_proved(same_cookie: bool) -> None:
    """``alive`` answered true: wait_pending runs only once the initiator proved the cookie, then the ack."""
    waited: list[str] = []
    out, sock, mine = _pair(
        initiator_cookie=COOKIE if same_cookie else "guess",
        mark_pending=lambda n: "alive",
        wait_pending=waited.append,
    )
    if same_cookie:
        assert isinstance(mine, du.HandshakeResult) and mine.status == "alive"
        assert out.result is not None and out.result.status == "alive"
        assert waited == ["a@127.0.0.1"]
    else:
        assert isinstance(out.error, HandshakeError) and waited == []
    sock.close()


@pytest.mark.parametrize("status", ["nok", "not_allowed"])
def test_acceptor_refusals_reach_the_initiator(status: str) -> None:
    """What mark_pending answers is what the initiator hears: nok is a lost race, not_allowed a refusal."""
    out, sock, mine = _pair(mark_pending=lambda n: status)
    assert isinstance(mine, HandshakeError) and isinstance(out.error, HandshakeError)
    assert isinstance(mine, LostRace) == (status == "nok") == isinstance(out.error, LostRace)
    if status == "not_allowed":
        assert mine.reason == ("recv_status_failed", "not_allowed")
    sock.close()


def test_simultaneous_status_the_greater_name_keeps_its_dial() -> None:
    """net_kernel's rule: the node whose name is greater answers nok; the smaller one gives way."""
    assert du.simultaneous_status("b@h", "a@h") == "nok"
    assert du.simultaneous_status("a@h", "b@h") == "ok_simultaneous"


class MiniKernel:
    """net_kernel's connection table in miniature: a listener, dials, accepts, and the simultaneous-connect rule."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.table: dict[
            str, tuple[Any, ...]
        ] = {}  # node -> ('pending', owner) | ('up', sock) | ('up_pending', sock, owner)
        self.lost: list[tuple[str, Any]] = []
        self.errors: list[BaseException] = []
        self.listener = _listener()
        self.port = self.listener.getsockname()[1]
        self.workers: list[threading.Thread] = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            worker = threading.Thread(target=self._accepted, args=(du.nodelay(sock),), daemon=True)
            self.workers.append(worker)
            worker.start()

    def _accepted(self, sock: socket.socket) -> None:
        owner = object()

        def mark_pending(node: str) -> du.Status:
            with self.lock:
                entry = self.table.get(node)
                if entry is None:
                    self.table[node] = ("pending", owner)
                    return "ok"
                if entry[0] == "pending":
                    status = du.simultaneous_status(self.name, node)
                    if status == "ok_simultaneous":
                        self.table[node] = ("pending", owner)  # this accept takes the setup over
                    return status
                if entry[0] == "up":
                    self.table[node] = ("up_pending", entry[1], owner)
                    return "alive"
                return "nok"

        def wait_pending(node: str) -> None:
            with self.lock:
                entry = self.table[node]
                entry[1].close()
                self.table[node] = ("pending", owner)

        try:
            result = du.handshake_other_started(
                sock, this_node=self.name, cookie=COOKIE, creation=1, mark_pending=mark_pending,
                wait_pending=wait_pending, deadline=_deadline(),
            )  # fmt: skip
        except LostRace as exc:
            self.lost.append(("in", exc.reason))
            self._forget(owner)
            return
        except HandshakeError as exc:
            self.errors.append(exc)
            self._forget(owner)
            return
        self._up(result.node, owner, sock)

    def _forget(self, owner: object) -> None:
        """A failed accept gives back what it held: an up_pending entry is up again, a pending one goes."""
        with self.lock:
            for node, entry in list(self.table.items()):
                if entry[0] == "up_pending" and entry[2] is owner:
                    self.table[node] = ("up", entry[1])
                elif entry[0] == "pending" and entry[1] is owner:
                    del self.table[node]

    def _up(self, node: str, owner: object, sock: socket.socket) -> None:
        with self.lock:
            entry = self.table.get(node)
            if entry is not None and entry[0] == "pending" and entry[1] is owner:
                self.table[node] = ("up", sock)
                return
        sock.close()
        self.lost.append(("superseded", node))

    def dial(self, node: str, port: int, barrier: threading.Barrier) -> None:
        owner = object()
        with self.lock:
            self.table[node] = ("pending", owner)
        barrier.wait()  # both nodes have a pending dial before either connects: a true simultaneous connect
        sock = _connect(port)

        def is_pending(n: str) -> bool:
            entry = self.table.get(n)
            return entry is not None and entry[0] == "pending" and entry[1] is owner

        try:
            result = du.handshake_we_started(
                sock, this_node=self.name, other_node=node, cookie=COOKIE, creation=1, is_pending=is_pending,
                deadline=_deadline(),
            )  # fmt: skip
        except LostRace as exc:
            self.lost.append(("out", exc.reason))
            return
        except HandshakeError as exc:
            self.errors.append(exc)
            return
        self._up(result.node, owner, sock)

    def up(self, node: str) -> socket.socket | None:
        entry = self.table.get(node)
        return entry[1] if entry is not None and entry[0] == "up" else None

    def close(self) -> None:
        self.listener.close()
        for w in self.workers:
            w.join(DEADLINE)
        for entry in self.table.values():
            if entry[0] == "up":
                entry[1].close()


@pytest.mark.parametrize("round_", range(5))
def test_simultaneous_connect_leaves_exactly_one_connection(round_: int) -> None:
    """Both nodes dial each other at once: one TCP connection survives on both sides, the one the greater name dialled."""
    small, great = MiniKernel(f"a{round_}@127.0.0.1"), MiniKernel(f"b{round_}@127.0.0.1")
    barrier = threading.Barrier(2)
    dials = [
        threading.Thread(target=small.dial, args=(great.name, great.port, barrier)),
        threading.Thread(target=great.dial, args=(small.name, small.port, barrier)),
    ]
    for t in dials:
        t.start()
    for t in dials:
        t.join(DEADLINE)
    try:
        # The accepting side finishes in its own thread.
        wait_until(
            lambda: small.up(great.name) is not None and great.up(small.name) is not None,
            lambda: f"both ends of one connection: {(small.table, great.table, small.lost, great.lost)}",
        )
        s_sock, g_sock = small.up(great.name), great.up(small.name)
        assert s_sock is not None and g_sock is not None, (small.table, great.table, small.lost, great.lost)
        assert s_sock.getsockname() == g_sock.getpeername()  # the two ends of one connection
        assert g_sock.getpeername()[1] == small.port  # dialled by the greater node
        assert small.errors == [] and great.errors == []
        assert ("out", "nok") in small.lost or ("out", "alive") in small.lost
    finally:
        small.close()
        great.close()


def test_framing_helpers() -> None:
    """After the handshake: 4-byte lengths, an empty frame is a tick, an over-long frame is refused unread."""
    a, b = socket.socketpair()
    with a, b:
        a.sendall(du.pack_frame(b"x" * 70000) + du.TICK + struct.pack(">I", 10**9))
        assert du.recv_frame(b) == b"x" * 70000
        assert du.recv_frame(b) == b""
        with pytest.raises(ValueError):
            du.recv_frame(b)
        a.close()
        with pytest.raises(ConnectionError):
            du.recv_frame(b)


def test_flag_names_and_mandatory_expansion() -> None:
    """dflag2str names dist.hrl's bits; the MANDATORY_25_DIGEST bit stands for OTP 25's eleven mandatory flags."""
    assert du.dflag2str(du.DFLAG_MAP_TAG) == "MAP_TAG"
    assert du.dflag2str(1 << 40) == "UNKNOWN<10000000000>"
    assert du.expand_mandatory_25_flag(du.DFLAG_MANDATORY_25_DIGEST) & du.MANDATORY_DFLAGS_25 == du.MANDATORY_DFLAGS_25
    assert du.expand_mandatory_25_flag(du.DFLAG_PUBLISHED) == du.DFLAG_PUBLISHED
    assert len(du.flags_to_names(du.MANDATORY_DFLAGS_25)) == 11
    for never in (du.DFLAG_DIST_HDR_ATOM_CACHE, du.DFLAG_FRAGMENTS, du.DFLAG_SPAWN, du.DFLAG_NAME_ME):
        assert not du.DEFAULT_FLAGS & never


def test_acceptor_refuses_a_garbled_answer_to_alive() -> None:
    """After ``salive`` only ``strue`` or ``sfalse`` is an answer; anything else ends the handshake."""
    lsock = _listener()
    out = _accept_once(lsock, US, mark_pending=lambda n: "alive")
    with _connect(lsock.getsockname()[1]) as raw:
        _raw_send(raw, _name_msg(RAW))
        assert _raw_recv(raw) == b"salive"
        _raw_send(raw, b"smaybe")
        assert out.done.wait(DEADLINE)
    assert isinstance(out.error, HandshakeError)
    assert out.error.reason == ("recv_status_failed", "unexpected", b"smaybe")
    lsock.close()


def test_initiator_refuses_a_challenge_whose_name_is_cut_short() -> None:
    """A challenge announcing more name bytes than it holds is refused."""
    lsock = _listener()

    def serve() -> None:
        sock, _ = lsock.accept()
        with sock:
            _raw_recv(sock)
            _raw_send(sock, b"sok")
            _raw_send(sock, _challenge_msg(RAW, 5)[:-3])
            _raw_drain(sock)

    threading.Thread(target=serve, daemon=True).start()
    with pytest.raises(HandshakeError) as info:
        du.handshake_we_started(
            _connect(lsock.getsockname()[1]), this_node=US, other_node=RAW, cookie=COOKIE, creation=1,
            deadline=_deadline(),
        )  # fmt: skip
    assert info.value.reason[:2] == ("recv_challenge_failed", "no_node")
    lsock.close()


def test_a_reset_connection_is_a_handshake_error() -> None:
    """A peer that resets the connection (RST) ends the handshake in HandshakeError, like a close."""
    lsock = _listener()
    out = _accept_once(lsock, US)
    raw = _connect(lsock.getsockname()[1])
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.sendall(b"\x00\x20N")
    raw.close()  # with linger 0: RST
    assert out.done.wait(DEADLINE)
    assert isinstance(out.error, HandshakeError) and out.error.reason in ("connection_closed", "truncated")
    lsock.close()


def test_a_deadline_already_past_fails_at_once() -> None:
    """A handshake started after its deadline raises setup_timer_timeout and closes the socket."""
    a, b = socket.socketpair()
    with b:
        with pytest.raises(HandshakeError) as info:
            du.handshake_we_started(
                a, this_node=US, other_node=RAW, cookie=COOKIE, creation=1, deadline=time.monotonic() - 1
            )
        assert info.value.reason == "setup_timer_timeout" and _closed(a)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"this_node": "no-at-sign"},
        {"this_node": "caf\u20ac@127.0.0.1"},
        {"cookie": "\u20ac"},
        {"creation": -1},
        {"creation": 2**32},
    ],
)
def test_bad_arguments_are_value_errors(kwargs: dict[str, Any]) -> None:
    """Our own name, cookie or creation that cannot travel is the caller's ValueError, not a HandshakeError."""
    a, b = socket.socketpair()
    with a, b:
        args: dict[str, Any] = {"this_node": US, "cookie": COOKIE, "creation": 1} | kwargs
        with pytest.raises(ValueError):
            du.handshake_we_started(a, other_node=RAW, deadline=_deadline(), **args)
    with pytest.raises(ValueError):
        du.gen_digest(2**32, COOKIE)
    with pytest.raises(ValueError):
        du.gen_digest(-1, COOKIE)


def test_mark_pending_must_answer_a_status() -> None:
    """A carrier whose mark_pending answers something else than a Status gets a ValueError, and the socket closes."""
    lsock = _listener()
    out = _accept_once(lsock, US, mark_pending=lambda n: "yes")
    with _connect(lsock.getsockname()[1]) as raw:
        _raw_send(raw, _name_msg(RAW))
        assert out.done.wait(DEADLINE)
        assert _raw_drain(raw) == []
    assert isinstance(out.error, ValueError) and out.sock is not None and _closed(out.sock)
    lsock.close()


# What a raw initiator hears from a real OTP 25 acceptor, and must hear from ours.
SAME_AS_ERLANG: list[tuple[str, bytes]] = [
    ("old_version_5", b"n" + struct.pack(">HI", 5, 0x7FFFF) + RAW.encode()),
    ("lacks_map_tag", _name_msg(RAW, du.MANDATORY_DFLAGS_25 & ~du.DFLAG_MAP_TAG)),
    ("not_a_node_name", _name_msg("no-at-sign")),
    ("small_garbage", b"hello"),
]


@pytest.mark.parametrize(("case", "message"), SAME_AS_ERLANG, ids=[c[0] for c in SAME_AS_ERLANG])
def test_a_bad_name_message_gets_the_answer_erlang_gives(erl: ErlNode, case: str, message: bytes) -> None:
    """For each bad first message, our acceptor answers exactly what OTP 25's acceptor answers, then closes."""
    with _connect(erl.dist_port) as raw:
        _raw_send(raw, message)
        erlang_says = _raw_drain(raw)
    lsock = _listener()
    out = _accept_once(lsock, US, seconds=2.0)
    with _connect(lsock.getsockname()[1]) as raw:
        _raw_send(raw, message)
        we_say = _raw_drain(raw)
    assert out.done.wait(DEADLINE) and isinstance(out.error, HandshakeError)
    lsock.close()
    assert we_say == erlang_says
