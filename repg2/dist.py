"""The distribution carrier: a port mapper, cookie-authenticated TCP connections, ticks.

In Erlang/OTP 18.3 the distribution is spread over several pieces: the
``epmd`` daemon (C, ``erts/epmd``) that maps node names to ports, its client
``lib/kernel/src/erl_epmd.erl``, the TCP carrier
``lib/kernel/src/inet_tcp_dist.erl``, the handshake and the connection loop
in ``lib/kernel/src/dist_util.erl``, and the control messages of the
distribution protocol (``erts/emulator/beam/dist.c``). This module is all of
them, small; ``repg2.net_kernel`` is the public face.

Ported:

- the port mapper: ``ALIVE2_REQ`` (register a name while the connection that
  registered it stays open), ``PORT_PLEASE2_REQ`` (name -> port), ``NAMES``;
  a node starts it if none answers, as ``erl`` starts ``epmd -daemon``;
- the handshake of ``dist_util``: name, status (``ok``, ``nok`` for a lost
  simultaneous connect, ``not_allowed``, ``alive``), challenge, challenge
  reply, challenge ack, both sides proving the shared cookie;
- the control messages ``LINK``, ``SEND``, ``EXIT``, ``UNLINK``,
  ``REG_SEND``, ``EXIT2``, ``MONITOR_P``, ``DEMONITOR_P``,
  ``MONITOR_P_EXIT`` (with Erlang's operation numbers) and the empty tick;
- connect on demand, ``nodes()``, ``disconnect_node``, the tick of
  ``dist_util:con_loop`` (a connection silent for ``net_ticktime`` is down);
- the listen port range of ``inet_tcp_dist`` (``inet_dist_listen_min`` and
  ``_max``, here ``REPG2_DIST_LISTEN_MIN`` and ``_MAX``), for firewalls.

Left out: hidden nodes, ``dist_auto_connect``, distribution flags and
version negotiation, the atom cache and fragmentation, ``inet6``/TLS
carriers, ``epmd -kill`` and ``-names`` (``NAMES`` is there), epmd's
``extra`` field.

How it works
------------
A node listens on an ephemeral TCP port of the host named in its node name
and registers ``alive-name -> port`` with the port mapper of its host over a
connection it keeps open. A peer resolves ``name@host`` by asking that host's
port mapper, dials, and the two run the handshake. Handshake frames are
length-prefixed JSON, parsed with ``json`` and never with ``pickle``: until
both sides have proved the cookie nothing a peer sends is unpickled. After
it, each frame is a 4-byte big-endian length and a pickled control tuple
``(OP, ...)``; an empty frame is a tick. One connection per pair of nodes
and one writer lock per connection keep Erlang's promise that messages
between two processes arrive in the order sent. Every connection has one
reader thread, which hands what arrives to the ``erlang._dist_*`` entry
points in arrival order.

Differences from OTP (see ``TRANSLATION_NOTES.md``; each is marked
``# DIVERGENCE(Dn)`` where it is made):

- The challenge is an HMAC-SHA256 of two 32-byte random challenges, the two
  names and a label, not ``md5(Cookie ++ Challenge)``.
- The payload format is pickle, not the external term format: only peers
  that proved the cookie are unpickled, as only they could send terms to a
  BEAM. A message that cannot be pickled raises ``badarg`` in the sender;
  an exit reason that cannot be pickled travels as its ``repr``.
- The port mapper is a Python process (``python -m repg2.dist epmd``)
  listening on port 4371 (``REPG2_EPMD_PORT``), not 4369, so it never meets a
  real epmd; it hands out the 32-bit *creation* of each registration (never
  the previous one of that name), and, unlike epmd, it exits by itself a few
  seconds after its last registration ends, so test runs leave no daemon.
- Transitive connections: after a connection comes up both ends send each
  other their node lists and connect to the nodes they lack. OTP does this
  in ``global`` (``global:sync``), which is not ported here.
- Nodes can *block* each other (``block``/``unblock``), for the test harness'
  partitions; OTP's test suites do the same with ``inet`` tricks.
- Sending to a node that is not connected connects first, synchronously,
  up to ``setuptime`` seconds (as OTP 18 suspends the sender); a monitor
  then fires ``'noconnection'``, a link delivers ``'noconnection'``, a send
  is dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import hmac
import json
import logging
import os
import pickle
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from repg2 import erlang
from repg2.erlang import Pid, Ref

__all__ = [
    "DEFAULT_EPMD_PORT",
    "DEFAULT_SETUPTIME",
    "DEFAULT_TICKTIME",
    "MAX_FRAME",
    "Distribution",
    "Op",
    "HandshakeError",
    "PortMapper",
    "block",
    "current",
    "epmd_names",
    "epmd_port",
    "epmd_port_please",
    "listen_port_range",
    "main",
    "unblock",
]

log = logging.getLogger("repg2.dist")

# -- Constants, each with its reason -----------------------------------------
DEFAULT_EPMD_PORT = 4371  # not epmd's 4369: a laptop's real epmd must not answer us
DEFAULT_TICKTIME = 60.0  # seconds, OTP's net_ticktime default
DEFAULT_SETUPTIME = 7.0  # seconds for a connection setup, OTP's net_setuptime default
EPMD_LINGER = 3.0  # seconds the port mapper outlives its last registration
MAX_FRAME = 64 * 1024 * 1024  # a bigger frame is an attack or a bug: refuse it
MAX_HANDSHAKE_FRAME = 4096  # handshake frames are tiny JSON objects
MAX_EPMD_FRAME = 512  # port mapper requests are one short line
HANDSHAKE_VERSION = 1
CHALLENGE_BYTES = 32
_HEADER = struct.Struct(">I")  # the 4-byte big-endian length of every frame
# Per thread: while a Distribution.corked() block runs, its frames held back,
# by connection (``batch``); None otherwise. Only its own thread touches it.
_corks = threading.local()
_EPMD_HEADER = struct.Struct(">H")  # epmd requests carry a 2-byte length, as in erl_epmd
_TICK = _HEADER.pack(0)  # dist_util sends an empty packet as a tick
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")  # the "alive" part of a node name
_HOST_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")

# -- Control messages: Erlang's distribution operation numbers ---------------


class Op:
    """The operation numbers of the control messages, as in Erlang's distribution protocol.

    Erlang: none (the DOP_* constants of erts/emulator/beam/dist.h)

    Each frame after the handshake is a pickled tuple whose first element is
    one of these; the shapes follow the protocol (Erlang's ``Unused`` and
    cookie fields dropped).
    """

    LINK = 1  # (LINK, from_pid, to_pid)
    SEND = 2  # (SEND, to_pid, message)
    EXIT = 3  # (EXIT, from_pid, to_pid, reason): a link broke
    UNLINK = 4  # (UNLINK, from_pid, to_pid)
    REG_SEND = 6  # (REG_SEND, from_pid | None, to_name, message)
    EXIT2 = 8  # (EXIT2, from_pid, to_pid, reason): erlang:exit/2
    MONITOR_P = 19  # (MONITOR_P, watcher_pid, target_pid | name, ref)
    DEMONITOR_P = 20  # (DEMONITOR_P, watcher_pid, target_pid | name, ref)
    MONITOR_P_EXIT = 21  # (MONITOR_P_EXIT, item, watcher_pid, ref, reason)
    NODES = 100  # (NODES, [node, ...]): ours, stands in for global's node sync


class HandshakeError(Exception):
    """A connection setup failed; the message says why, for the log.

    Erlang: none (dist_util exits with ?shutdown(Reason) and logs some cases)
    """


# == Sockets and frames ==========================================================


def _nodelay(sock: socket.socket) -> socket.socket:
    """Turn off Nagle's algorithm on a TCP socket and return it.

    Erlang: none (inet_tcp_dist sets {nodelay, true} on its sockets)

    Without it a frame written in two pieces waits up to ~40 ms for an ACK
    (88 ms round trips for 16-64 KiB frames were measured on loopback).
    """
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes or raise ``ConnectionError`` on end of stream.

    Erlang: none (gen_tcp's {packet, N} does this for Erlang)
    """
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise ConnectionError("connection closed by peer")
        got += k
    return bytes(buf)


def _send_hs(sock: socket.socket, tag: str, body: dict[str, Any]) -> None:
    """Send one handshake frame: a tag letter and a JSON object.

    Erlang: dist_util:send_name/1, send_status/2, send_challenge/4,
    send_challenge_reply/3 and send_challenge_ack/2 all write such a packet
    """
    payload = tag.encode() + json.dumps(body, separators=(",", ":")).encode()
    sock.sendall(_HEADER.pack(len(payload)) + payload)


def _recv_hs(sock: socket.socket, tag: str) -> dict[str, Any]:
    """Read one handshake frame with the expected tag; anything else is refused.

    Erlang: dist_util:recv_name/1, recv_status/1, recv_challenge/1,
    recv_challenge_reply/3 and recv_challenge_ack/3 read such a packet

    Raises:
        HandshakeError: a frame of the wrong size, tag or shape (garbage is
        never decoded by pickle: this is JSON, and only a dict is accepted).
        ConnectionError: the peer closed the connection.
    """
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if size == 0 or size > MAX_HANDSHAKE_FRAME:
        raise HandshakeError(f"handshake frame of {size} bytes refused (garbage or not a node?)")
    payload = _recv_exact(sock, size)
    if payload[:1] != tag.encode():
        raise HandshakeError(f"expected handshake frame {tag!r}, got {payload[:16]!r}")
    try:
        body = json.loads(payload[1:].decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise HandshakeError(f"handshake frame {tag!r} is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise HandshakeError(f"handshake frame {tag!r} is not an object")
    return body


def _field(body: dict[str, Any], key: str, kind: type) -> Any:
    """Return a handshake field of the given type or refuse the frame.

    Erlang: none (Erlang matches the packet's binary layout)
    """
    value = body.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise HandshakeError(f"handshake field {key!r} missing or not a {kind.__name__}")
    return value


def _challenge(body: dict[str, Any], key: str) -> bytes:
    """Decode a hex challenge or digest field of a handshake frame.

    Erlang: none (Erlang's challenges are 32-bit integers inside the packet)
    """
    try:
        value = bytes.fromhex(_field(body, key, str))
    except ValueError:
        raise HandshakeError(f"handshake field {key!r} is not hex") from None
    if len(value) != CHALLENGE_BYTES:
        raise HandshakeError(f"handshake field {key!r} has the wrong length")
    return value


def _digest(cookie: bytes, label: bytes, first: bytes, second: bytes, initiator: str, acceptor: str) -> bytes:
    """Prove knowledge of the cookie for one challenge of one handshake.

    Erlang: dist_util:gen_digest/2

    OTP computes ``md5(Cookie ++ integer_to_list(Challenge))``. We bind the
    proof to both challenges, both names and the step (``reply``/``ack``),
    so an answer can never be replayed in another handshake or reflected
    back as the other step.
    """
    # DIVERGENCE(D23): HMAC-SHA256 over both challenges and names, not md5(Cookie ++ Challenge).
    msg = b"|".join([b"repg2-dist-1", label, first, second, initiator.encode(), acceptor.encode()])
    return hmac.new(cookie, msg, hashlib.sha256).digest()


def split_node(node: str) -> tuple[str, str]:
    """Split ``'name@host'``; raise ``ValueError`` for anything else.

    Erlang: dist_util:split_node/3
    """
    if not isinstance(node, str) or node.count("@") != 1:
        raise ValueError(f"not a node name (name@host): {node!r}")
    name, host = node.split("@")
    if not _NAME_RE.match(name) or not _HOST_RE.match(host):
        raise ValueError(f"not a node name (name@host): {node!r}")
    return name, host


# == The port mapper (epmd) ========================================================


def epmd_port() -> int:
    """Return the port mapper's TCP port: ``REPG2_EPMD_PORT`` or 4371.

    Erlang: erl_epmd:epmd_port/0 (ERL_EPMD_PORT, default 4369)
    """
    return int(os.environ.get("REPG2_EPMD_PORT", DEFAULT_EPMD_PORT))


class PortMapper:
    """A tiny epmd: node names to listen ports, for as long as each node lives.

    Erlang: none (epmd is a C program: erts/epmd/src/epmd_srv.c)

    Requests are a 2-byte length and one line of text:

    - ``ALIVE <name> <port>`` -> ``OK <creation>`` or ``ERR <why>``. The
      registration lasts while this connection stays open (epmd's
      ``ALIVE2_REQ``): a node killed by SIGKILL vanishes when its kernel
      closes the socket. Only accepted from a loopback address, as epmd
      only lets local nodes register.
    - ``PORT <name>`` -> ``PORT <port>`` or ``NONE`` (``PORT_PLEASE2_REQ``).
    - ``NAMES`` -> ``NAMES name=port ...`` (``NAMES_REQ``).

    Anything else closes that connection and is logged; the server keeps
    serving. With ``linger`` set, :meth:`serve_forever` returns once no
    node has been registered for ``linger`` seconds.
    """

    def __init__(self, address: str = "0.0.0.0", port: int = 0, linger: float | None = EPMD_LINGER) -> None:
        """Erlang: none (epmd's socket setup in epmd_srv.c)"""
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((address, port))
            self._listener.listen(128)
        except OSError:
            self._listener.close()
            raise
        self._listener.settimeout(0.25)  # wake up to check the linger deadline
        self.port: int = self._listener.getsockname()[1]
        self.linger = linger
        # Guards _names, _creations and _last_change.
        self._lock = threading.Lock()
        self._names: dict[str, tuple[int, int]] = {}  # name -> (port, creation)
        self._creations: dict[str, int] = {}  # name -> last creation handed out
        self._last_change = time.monotonic()
        self._closed = threading.Event()

    def serve_forever(self) -> None:
        """Accept clients until closed or idle for ``linger`` seconds.

        Erlang: none (epmd_srv.c's select loop)
        """
        try:
            while not self._closed.is_set():
                # Checked on every turn, not only on accept timeouts: lookups
                # arriving faster than the timeout must not keep it alive.
                if self._idle_too_long():
                    log.info("port mapper: no node registered for %s s, exiting", self.linger)
                    return
                try:
                    sock, peer = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return  # closed under us
                _nodelay(sock)
                threading.Thread(target=self._serve_client, args=(sock, peer), daemon=True, name="epmd-client").start()
        finally:
            self.close()

    def _idle_too_long(self) -> bool:
        """Say whether nobody has been registered for ``linger`` seconds.

        Erlang: none (epmd never exits by itself; ours does, see the module docstring)
        """
        if self.linger is None:  # DIVERGENCE(D25): epmd stays forever; ours exits when unused
            return False
        with self._lock:
            return not self._names and time.monotonic() - self._last_change > self.linger

    def close(self) -> None:
        """Stop serving; registrations already made end with their connections.

        Erlang: none (epmd -kill)
        """
        self._closed.set()
        try:
            self._listener.close()
        except OSError:  # pragma: no cover - closing a closed socket
            pass

    def _serve_client(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        """Answer one client: a lookup, or a registration held until it closes.

        Erlang: none (epmd_srv.c: do_request/4)
        """
        name: str | None = None
        try:
            sock.settimeout(5.0)  # a client that never sends a full request is dropped
            (size,) = _EPMD_HEADER.unpack(_recv_exact(sock, _EPMD_HEADER.size))
            if size == 0 or size > MAX_EPMD_FRAME:
                raise ValueError(f"request of {size} bytes")
            words = _recv_exact(sock, size).decode("ascii").split()
            match words:
                case ["ALIVE", alive, port] if _NAME_RE.match(alive) and port.isdigit():
                    name = self._register(sock, peer, alive, int(port))
                    if name is not None:
                        sock.settimeout(None)
                        # The registration lives as long as this connection:
                        # wait for its end (EOF, reset, or any byte: all end it).
                        sock.recv(1)
                case ["PORT", alive] if _NAME_RE.match(alive):
                    with self._lock:
                        entry = self._names.get(alive)
                    self._reply(sock, "NONE" if entry is None else f"PORT {entry[0]}")
                case ["NAMES"]:
                    with self._lock:
                        listing = " ".join(f"{n}={p}" for n, (p, _c) in sorted(self._names.items()))
                    self._reply(sock, f"NAMES {listing}".strip())
                case _:
                    raise ValueError(f"unknown request {' '.join(words)[:60]!r}")
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            if name is None:
                log.warning("port mapper: refused a request from %s:%s: %s", peer[0], peer[1], exc)
        finally:
            if name is not None:
                with self._lock:
                    self._names.pop(name, None)
                    self._last_change = time.monotonic()
                log.info("port mapper: %s unregistered", name)
            sock.close()

    def _register(self, sock: socket.socket, peer: tuple[str, int], alive: str, port: int) -> str | None:
        """Register ``alive`` at ``port`` and reply with its creation, or refuse.

        Erlang: none (epmd_srv.c: the ALIVE2_REQ case)
        """
        if not peer[0].startswith("127.") and peer[0] != "::1":
            self._reply(sock, "ERR not_local")
            log.warning("port mapper: refused registration of %s from non-local %s", alive, peer[0])
            return None
        with self._lock:
            if alive in self._names:
                taken = True
            else:
                taken = False
                previous = self._creations.get(alive, 0)
                creation = previous
                while creation in (0, previous):  # a new incarnation never reuses the last creation
                    creation = random.randrange(1, 2**32)
                self._creations[alive] = creation
                self._names[alive] = (port, creation)
                self._last_change = time.monotonic()
        if taken:
            self._reply(sock, "ERR taken")
            return None
        self._reply(sock, f"OK {creation}")
        log.info("port mapper: %s registered at port %d, creation %d", alive, port, creation)
        return alive

    @staticmethod
    def _reply(sock: socket.socket, text: str) -> None:
        """Send one reply line with its 2-byte length.

        Erlang: none (epmd_srv.c: reply/3)
        """
        data = text.encode("ascii")
        sock.sendall(_EPMD_HEADER.pack(len(data)) + data)


def _epmd_request(host: str, text: str, timeout: float) -> tuple[socket.socket, str]:
    """Open a connection to a host's port mapper, send one request, read the reply.

    Erlang: erl_epmd:open/3 and the request/reply helpers
    """
    sock = _nodelay(socket.create_connection((host, epmd_port()), timeout=timeout))
    try:
        data = text.encode("ascii")
        sock.sendall(_EPMD_HEADER.pack(len(data)) + data)
        (size,) = _EPMD_HEADER.unpack(_recv_exact(sock, _EPMD_HEADER.size))
        if size > MAX_EPMD_FRAME:
            raise ConnectionError(f"port mapper reply of {size} bytes")
        return sock, _recv_exact(sock, size).decode("ascii")
    except BaseException:
        sock.close()
        raise


def epmd_port_please(host: str, alive: str, timeout: float = 2.0) -> int | None:
    """Ask ``host``'s port mapper for the listen port of node ``alive``; None if unknown.

    Erlang: erl_epmd:port_please/2

    Raises:
        OSError: no port mapper answers on that host.
    """
    sock, reply = _epmd_request(host, f"PORT {alive}", timeout)
    sock.close()
    match reply.split():
        case ["PORT", port] if port.isdigit():
            return int(port)
        case _:
            return None


def epmd_names(host: str = "127.0.0.1", timeout: float = 2.0) -> dict[str, int]:
    """Return ``{name: port}`` of the nodes registered with ``host``'s port mapper.

    Erlang: erl_epmd:names/1
    """
    sock, reply = _epmd_request(host, "NAMES", timeout)
    sock.close()
    words = reply.split()[1:]
    return {n: int(p) for n, p in (w.split("=", 1) for w in words)}


def _start_port_mapper() -> None:
    """Start a detached port mapper process, as ``erl`` runs ``epmd -daemon``.

    Erlang: none (erl's start script does this, not Erlang code)

    The child forks once more and exits at once, so the daemon is nobody's
    child (no zombie, no orphan of a test run) and outlives this process
    only until its last registration has ended for ``EPMD_LINGER`` seconds.
    If two nodes start one at the same moment, one bind fails and that
    process exits: both nodes then use the other.
    """
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    out: Any = subprocess.DEVNULL
    log_path = os.environ.get("REPG2_EPMD_LOG")
    if log_path:
        out = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "repg2.dist", "epmd", "--port", str(epmd_port()), "--daemon"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
        child.wait(timeout=30)
    finally:
        if out is not subprocess.DEVNULL:
            out.close()


def listen_port_range() -> tuple[int, int]:
    """Return the ports a node may listen on: ``REPG2_DIST_LISTEN_MIN``/``MAX``, or ``(0, 0)`` for any.

    Erlang: inet_tcp_dist:get_port_range/0

    OTP reads the kernel parameters ``inet_dist_listen_min`` and
    ``inet_dist_listen_max`` (max defaults to min), so that a firewall can
    let a fixed range of node ports in; here they are environment variables.
    """
    # DIVERGENCE(D31): environment variables stand for the kernel parameters.
    low = os.environ.get("REPG2_DIST_LISTEN_MIN")
    if not low:
        return (0, 0)
    return (int(low), int(os.environ.get("REPG2_DIST_LISTEN_MAX") or low))


def _bind_in_range(listener: socket.socket, addr: Any, ports: tuple[int, int]) -> None:
    """Bind to the first free port of ``ports`` (any free port for ``(0, 0)``).

    Erlang: inet_tcp_dist:do_listen/2 (tries the next port on eaddrinuse)
    """
    first, last = ports
    for port in range(first, last + 1):
        try:
            listener.bind((addr[0], port, *addr[2:]))
            return
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or port == last:
                raise


def _epmd_register(alive: str, port: int, deadline: float) -> tuple[socket.socket, int]:
    """Register with this host's port mapper, starting it if none answers.

    Erlang: erl_epmd:register_node/2

    Returns the connection that holds the registration (close it to
    unregister) and the creation the port mapper gave this incarnation.
    A name still held by a previous incarnation that has just died (its
    port mapper has not yet seen the connection close) is retried until
    ``deadline``.
    """
    started_at: float | None = None
    last_error: str = "no answer"
    while True:
        try:
            sock, reply = _epmd_request("127.0.0.1", f"ALIVE {alive} {port}", timeout=2.0)
            match reply.split():
                case ["OK", creation] if creation.isdigit():
                    sock.settimeout(None)
                    return sock, int(creation)
                case _:
                    sock.close()
                    last_error = reply
        except ConnectionRefusedError:
            last_error = "no port mapper"
            # Start one, and again if the one we started has not come up
            # (it may have lost a bind race to a port mapper that then exited).
            if started_at is None or time.monotonic() - started_at > 2.0:
                _start_port_mapper()
                started_at = time.monotonic()
        except OSError as exc:  # a port mapper that was just exiting: try again
            last_error = str(exc)
        if time.monotonic() > deadline:
            raise RuntimeError(f"cannot register {alive} with the port mapper on port {epmd_port()}: {last_error}")
        time.sleep(0.02)  # back off: the port mapper is starting or forgetting a dead node


# == Connections =====================================================================


class Connection:
    """One authenticated TCP connection to another node.

    Erlang: none (the dist entry and the connection owner process of dist_util)

    ``wlock`` serialises writers so frames never interleave; ``last_recv`` and
    ``last_send`` (monotonic seconds) drive the ticks.
    """

    def __init__(self, sock: socket.socket, node: str, creation: int) -> None:
        """Erlang: none (dist_util:do_setnode/1 creates the dist entry)"""
        self.sock = sock
        self.node = node
        self.creation = creation
        self.wlock = threading.Lock()
        self.last_recv = time.monotonic()
        self.last_send = self.last_recv
        self.closed = False  # set once, under Distribution._lock
        self.reader: threading.Thread | None = None
        self.down_done = threading.Event()  # set when nodedown has been delivered

    def __repr__(self) -> str:
        return f"<Connection {self.node} creation={self.creation}{' closed' if self.closed else ''}>"


class _Pending:
    """A connection setup in progress for one node, with whoever waits for it.

    Erlang: none (net_kernel's #connection{state = pending, waiting = [...]})

    ``incoming`` is True once an accepting handshake owns it: either it was
    the first, or it took over our own dial after a simultaneous connect
    that our dial lost.
    """

    def __init__(self, incoming: bool) -> None:
        """Erlang: none (net_kernel inserts a pending #connection{})"""
        self.incoming = incoming
        self.event = threading.Event()


class Distribution:
    """This node's distribution: listener, connections, and the runtime's ``DistHook``.

    Erlang: none (the state that net_kernel, dist_util and the runtime share)

    ``_lock`` guards ``_conns``, ``_pending``, ``_closing``, ``_blocked``,
    ``_stopped`` and every ``Connection.closed``. ``_updown_lock`` orders
    ``nodeup``/``nodedown`` deliveries: a node's ``nodedown`` is always
    delivered before the ``nodeup`` of its next connection. Lock order:
    ``_updown_lock``, then a connection's ``wlock``, then ``_lock``.
    """

    def __init__(
        self,
        name: str,
        cookie: str | bytes,
        ticktime: float = DEFAULT_TICKTIME,
        setuptime: float = DEFAULT_SETUPTIME,
        on_nodeup: Callable[[str], None] | None = None,
        on_nodedown: Callable[[str, Any], None] | None = None,
    ) -> None:
        """Erlang: none (see start/0)"""
        self.alive, self.host = split_node(name)
        self.name = name
        self.cookie = cookie.encode() if isinstance(cookie, str) else bytes(cookie)
        self.ticktime = float(ticktime)
        self.setuptime = float(setuptime)
        self.creation = 0
        self._on_nodeup = on_nodeup or (lambda node: None)
        self._on_nodedown = on_nodedown or (lambda node, reason: None)
        self._lock = threading.Lock()
        self._updown_lock = threading.RLock()
        self._conns: dict[str, Connection] = {}
        self._pending: dict[str, _Pending] = {}
        self._closing: dict[str, Connection] = {}
        self._blocked: set[str] = set()
        self._stopped = False
        self._listener: socket.socket | None = None
        self._epmd_sock: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    # -- Starting and stopping ---------------------------------------------------

    def start(self) -> None:
        """Listen, register with the port mapper, become the runtime's distribution.

        Erlang: inet_tcp_dist:listen/1
        Erlang: erl_epmd:register_node/2
        Erlang: net_kernel:init/1 (the part that starts listening)

        The node takes its name and creation only after the port mapper
        accepted the name, and accepts connections only after that, so no
        peer ever sees a half-named node.
        """
        family, _, _, _, addr = socket.getaddrinfo(self.host, 0, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            _bind_in_range(listener, addr, listen_port_range())
            listener.listen(128)
            port = listener.getsockname()[1]
            self._epmd_sock, self.creation = _epmd_register(self.alive, port, time.monotonic() + self.setuptime + 5)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        erlang._set_identity(self.name, self.creation)
        erlang._set_dist(self)
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True, name=f"dist-accept-{self.name}")
        self._acceptor.start()
        log.info("node %s up: port %d, creation %d", self.name, port, self.creation)

    def close(self) -> None:
        """Take every connection down (nodedown for each) and stop listening.

        Erlang: net_kernel:stop/0 (as far as connections go)
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            conns = list(self._conns.values())
        listener = self._listener
        if listener is not None:
            # A thread blocked in accept() is not woken by close() on every
            # platform; a connection to ourselves wakes it portably.
            try:
                _nodelay(socket.create_connection(listener.getsockname()[:2], timeout=1)).close()
            except OSError:
                pass
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        if listener is not None:
            listener.close()
        for conn in conns:
            self._teardown(conn, "shutdown")
        if self._epmd_sock is not None:
            self._epmd_sock.close()
        if erlang._dist is self:
            erlang._set_dist(None)

    # -- The DistHook: what the runtime calls -----------------------------------

    def nodes(self) -> list[str]:
        """Return the connected nodes, oldest connection first.

        Erlang: erlang:nodes/0
        """
        return list(self._conns)

    def disconnect(self, node: str) -> bool:
        """Take the connection to ``node`` down; False if there was none.

        Erlang: net_kernel:disconnect/1
        Erlang: erlang:disconnect_node/1
        """
        conn = self._conns.get(node)
        if conn is None:
            return False
        self._teardown(conn, "disconnect")
        return True

    def send(self, sender: Pid | None, to: Pid, msg: Any) -> None:
        """Send a message to a remote pid, connecting first if needed.

        Erlang: none (the SEND control message, dist.c: erts_dsig_send_msg)
        """
        conn = self._ensure(to.node)
        if conn is not None:
            self._write(conn, self._encode((Op.SEND, to, msg), "erlang:send/2"))

    def reg_send(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        """Send a message to a name registered on another node.

        Erlang: none (the REG_SEND control message, dist.c: erts_dsig_send_reg_msg)
        """
        conn = self._ensure(node)
        if conn is not None:
            self._write(conn, self._encode((Op.REG_SEND, sender, name, msg), "erlang:send/2"))

    def link(self, frm: Pid, to: Pid) -> None:
        """Link a local process to a remote one; 'noconnection' if its node is unreachable.

        Erlang: none (the LINK control message, dist.c: erts_dsig_send_link)
        """
        conn = self._ensure(to.node)
        if conn is None:
            erlang._dist_exit(to, frm, "noconnection", True)
        else:
            self._write(conn, self._encode((Op.LINK, frm, to), "erlang:link/1"))

    def unlink(self, frm: Pid, to: Pid) -> None:
        """Remove a link to a remote process (nothing to do if its node is gone).

        Erlang: none (the UNLINK control message)
        """
        conn = self._conns.get(to.node)
        if conn is not None:
            self._write(conn, self._encode((Op.UNLINK, frm, to), "erlang:unlink/1"))

    def exit(self, frm: Pid, to: Pid, reason: Any, linked: bool) -> None:
        """Send an exit signal to a remote process.

        Erlang: none (the EXIT control message for links, EXIT2 for erlang:exit/2)

        A link's signal needs no new connection: had the connection gone
        down, the runtime would already have broken the link with
        'noconnection'. ``erlang:exit/2`` connects on demand, like a send.
        """
        conn = self._conns.get(to.node) if linked else self._ensure(to.node)
        if conn is not None:
            op = Op.EXIT if linked else Op.EXIT2
            self._write(conn, self._encode((op, frm, to, _portable_reason(reason)), "erlang:exit/2"))

    def monitor(self, watcher: Pid, target: Any, ref: Ref) -> bool:
        """Ask a remote node to monitor a process for us; False if it cannot be reached.

        Erlang: none (the MONITOR_P control message)

        By name, only the name travels, as in Erlang (the target node knows
        it is its own name).
        """
        node = target[1] if isinstance(target, tuple) else target.node
        conn = self._ensure(node)
        if conn is None:
            return False
        wire = target[0] if isinstance(target, tuple) else target
        # Once the connection is in hand the monitor is registered with the
        # runtime before this send, so if the send fails the connection's
        # nodedown fires it: answering False here would fire it twice.
        self._write(conn, self._encode((Op.MONITOR_P, watcher, wire, ref), "erlang:monitor/2"))
        return True

    def demonitor(self, watcher: Pid, target: Any, ref: Ref) -> None:
        """Drop a monitor held on a remote process (nothing to do if its node is gone).

        Erlang: none (the DEMONITOR_P control message)
        """
        node = target[1] if isinstance(target, tuple) else target.node
        conn = self._conns.get(node)
        if conn is not None:
            wire = target[0] if isinstance(target, tuple) else target
            self._write(conn, self._encode((Op.DEMONITOR_P, watcher, wire, ref), "erlang:demonitor/1"))

    def monitor_exit(self, target: Any, watcher: Pid, ref: Ref, reason: Any) -> None:
        """Tell a remote watcher that the local process it monitors has ended.

        Erlang: none (the MONITOR_P_EXIT control message)
        """
        conn = self._conns.get(watcher.node)
        if conn is not None:
            msg = (Op.MONITOR_P_EXIT, target, watcher, ref, _portable_reason(reason))
            self._write(conn, self._encode(msg, "erlang:monitor/2"))

    # -- Partitions (for the test harness) -------------------------------------

    def block(self, nodes: Iterable[str]) -> None:
        """Refuse connections to and from ``nodes`` and cut the ones that exist.

        Erlang: none (OTP test suites partition nodes by other means)
        """
        nodes = set(nodes) - {self.name}
        with self._lock:  # DIVERGENCE(D27): a deny list for the harness' partitions; OTP has none
            self._blocked |= nodes
            conns = [c for n, c in self._conns.items() if n in nodes]
        for conn in conns:
            self._teardown(conn, "blocked")

    def unblock(self, nodes: Iterable[str] | None = None) -> None:
        """Allow connections with ``nodes`` (all nodes if None) again.

        Erlang: none (see block)
        """
        with self._lock:
            if nodes is None:
                self._blocked.clear()
            else:
                self._blocked -= set(nodes)

    def blocked(self) -> set[str]:
        """Return the nodes this node refuses to talk to.

        Erlang: none (see block)
        """
        with self._lock:
            return set(self._blocked)

    # -- Connecting --------------------------------------------------------------

    def connect(self, node: str, timeout: float | None = None) -> bool:
        """Connect to ``node`` unless connected; True once the connection is up.

        Erlang: net_kernel:connect_node/1
        Erlang: net_kernel:handle_call/3 ({connect, normal, Node})
        Erlang: inet_tcp_dist:setup/5

        A setup already running for this node (ours or the peer's) is
        waited for instead of starting a second one, as net_kernel queues
        callers in the pending connection's ``waiting`` list.
        """
        if node == self.name:
            return True
        try:
            split_node(node)
        except ValueError as exc:
            log.warning("connect to %r failed: %s", node, exc)
            return False
        deadline = time.monotonic() + (self.setuptime if timeout is None else timeout)
        self._wait_closing(node, deadline)
        with self._lock:
            if self._stopped:
                return False
            if node in self._conns:
                return True
            if node in self._blocked:
                log.info("connect to %s refused: that node is blocked here", node)
                return False
            pend = self._pending.get(node)
            ours = pend is None
            if pend is None:
                pend = self._pending[node] = _Pending(incoming=False)
        if not ours:
            pend.event.wait(max(0.0, deadline - time.monotonic()))
            return node in self._conns
        outcome = "failed"
        try:
            outcome = self._dial(node, deadline)
        except (HandshakeError, OSError) as exc:
            log.warning("connection to node %s failed: %s", node, exc)
        if outcome == "nok":
            # We lost a simultaneous connect: the peer's own dial, accepted
            # here, takes this pending setup over and finishes it.
            pend.event.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            if not pend.incoming and self._pending.get(node) is pend:
                del self._pending[node]
                pend.event.set()
        return node in self._conns

    def _ensure(self, node: str) -> Connection | None:
        """Return the connection to ``node``, connecting on demand; None if unreachable.

        Erlang: none (the runtime's auto-connect: erlang:dsend/2 calls net_kernel:connect)
        """
        conn = self._conns.get(node)
        if conn is not None or node == self.name:
            return conn
        if not self.connect(node):
            return None
        return self._conns.get(node)

    def _wait_closing(self, node: str, deadline: float) -> None:
        """Wait until a connection to ``node`` being taken down has delivered its nodedown.

        Erlang: none (net_kernel serialises this in its one process)
        """
        old = self._closing.get(node)
        if old is not None:
            old.down_done.wait(max(0.0, deadline - time.monotonic()))

    def _dial(self, node: str, deadline: float) -> str:
        """Run the handshake as the node that started it.

        Erlang: dist_util:handshake_we_started/1
        Erlang: inet_tcp_dist:do_setup/6

        Returns ``'up'``, ``'nok'`` (the peer won a simultaneous connect) or
        ``'already'`` (the peer already had a connection with us, and so do we).

        Raises:
            HandshakeError, OSError: the setup failed; the message says why.
        """
        alive, host = split_node(node)
        remaining = max(0.05, deadline - time.monotonic())
        try:
            port = epmd_port_please(host, alive, timeout=remaining)
        except OSError as exc:
            raise HandshakeError(f"no port mapper answers on {host}: {exc}") from None
        if port is None:
            raise HandshakeError(f"no node {alive!r} is registered on {host}")
        sock = _nodelay(socket.create_connection((host, port), timeout=max(0.05, deadline - time.monotonic())))
        try:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            _send_hs(sock, "n", {"version": HANDSHAKE_VERSION, "name": self.name, "creation": self.creation})
            status = _field(_recv_hs(sock, "s"), "status", str)
            if status == "nok":
                sock.close()
                return "nok"
            if status == "not_allowed":
                raise HandshakeError("the peer does not allow a connection from us (blocked)")
            if status == "alive":
                # The peer thinks it is connected to us. If we think so too,
                # this dial is redundant; if not, its connection is stale.
                keep = node not in self._conns
                _send_hs(sock, "s", {"alive": keep})
                if not keep:
                    sock.close()
                    return "already"
            elif status != "ok":
                raise HandshakeError(f"unexpected status {status!r}")
            challenge = _recv_hs(sock, "c")
            if _field(challenge, "name", str) != node:
                raise HandshakeError(f"the node at that port is {challenge.get('name')!r}, not {node}")
            peer_creation = _field(challenge, "creation", int)
            their = _challenge(challenge, "challenge")
            ours = os.urandom(CHALLENGE_BYTES)
            digest = _digest(self.cookie, b"reply", their, ours, self.name, node)
            _send_hs(sock, "r", {"challenge": ours.hex(), "digest": digest.hex()})
            try:
                ack = _recv_hs(sock, "a")
            except ConnectionError:
                raise HandshakeError(
                    "the peer closed the connection after our challenge reply: its cookie is not ours"
                ) from None
            if not hmac.compare_digest(
                _challenge(ack, "digest"), _digest(self.cookie, b"ack", ours, their, self.name, node)
            ):
                raise HandshakeError("the peer failed our challenge: its cookie is not ours")
            sock.settimeout(None)
            conn = Connection(sock, node, peer_creation)
            if not self._mark_up(conn, ack=None):
                raise HandshakeError("this node stopped or blocked that node meanwhile")
        except BaseException:
            sock.close()
            raise
        conn.reader = threading.Thread(target=self._reader_loop, args=(conn,), daemon=True, name=f"dist-{node}")
        conn.reader.start()
        self._after_up(conn)
        return "up"

    def _accept_loop(self) -> None:
        """Accept connections and hand each to its own handshake thread.

        Erlang: inet_tcp_dist:accept_loop/2
        """
        assert self._listener is not None
        while True:
            try:
                sock, _peer = self._listener.accept()
            except OSError:
                return
            if self._stopped:
                sock.close()
                return
            _nodelay(sock)
            threading.Thread(target=self._accepted, args=(sock,), daemon=True, name="dist-handshake").start()

    def _accepted(self, sock: socket.socket) -> None:
        """Run the handshake another node started; on success become the reader.

        Erlang: dist_util:handshake_other_started/1
        Erlang: inet_tcp_dist:do_accept/6
        """
        peer = "<unknown>"
        pend: _Pending | None = None
        replaces = False  # the peer says our connection with it is stale
        try:
            sock.settimeout(self.setuptime)  # a peer that never finishes is dropped
            hello = _recv_hs(sock, "n")
            if _field(hello, "version", int) != HANDSHAKE_VERSION:
                raise HandshakeError(f"unsupported handshake version {hello.get('version')!r}")
            peer = _field(hello, "name", str)
            split_node(peer)
            peer_creation = _field(hello, "creation", int)
            status, pend = self._accept_pending(peer)
            if status == "alive":
                _send_hs(sock, "s", {"status": "alive"})
                if not _field(_recv_hs(sock, "s"), "alive", bool):
                    return
                # The old connection is dropped below, once the peer has proved the cookie:
                # anyone who merely knows a node's name must not be able to cut it off.
                replaces = True
            elif status != "ok":
                _send_hs(sock, "s", {"status": status})
                return
            else:
                _send_hs(sock, "s", {"status": "ok"})
            ours = os.urandom(CHALLENGE_BYTES)
            _send_hs(sock, "c", {"name": self.name, "creation": self.creation, "challenge": ours.hex()})
            reply = _recv_hs(sock, "r")
            their = _challenge(reply, "challenge")
            expected = _digest(self.cookie, b"reply", ours, their, peer, self.name)
            if not hmac.compare_digest(_challenge(reply, "digest"), expected):
                log.error(
                    "** Connection attempt from node %s rejected: invalid challenge reply (wrong cookie) **", peer
                )
                return
            if replaces:
                old = self._conns.get(peer)
                if old is not None:
                    self._teardown(old, "connection replaced")  # the peer restarted or lost it
                status, pend = self._accept_pending(peer)
                if status != "ok":
                    return  # a third party won the race for this name: give up
            ack = _digest(self.cookie, b"ack", their, ours, peer, self.name)
            payload = b"a" + json.dumps({"digest": ack.hex()}).encode()
            sock.settimeout(None)
            conn = Connection(sock, peer, peer_creation)
            if not self._mark_up(conn, ack=_HEADER.pack(len(payload)) + payload):
                return
            sock = None  # type: ignore[assignment]  # the connection owns it now
            conn.reader = threading.current_thread()
            assert pend is not None, "an accepted handshake always owns its pending setup"
            self._finish_pending(peer, pend)
            pend = None
            self._after_up(conn)
            self._reader_loop(conn)
        except (HandshakeError, ValueError) as exc:
            log.warning("refused a connection from %s: %s", peer, exc)
        except (OSError, ConnectionError) as exc:
            log.info("connection setup from %s failed: %s", peer, exc)
        finally:
            if pend is not None:
                self._finish_pending(peer, pend)
            if sock is not None:
                sock.close()

    def _accept_pending(self, peer: str) -> tuple[str, _Pending | None]:
        """Decide what to answer a node that started a handshake with us.

        Erlang: net_kernel:handle_info/2 ({AcceptPid, {accept_pending, MyNode, Node, ...}})

        ``not_allowed`` for a blocked node; ``alive`` if we believe we are
        connected; on a simultaneous connect the node with the greater name
        keeps its own dial (``nok`` to the other's) and the smaller one lets
        the incoming handshake take its pending setup over; a second
        incoming handshake for the same node is refused.
        """
        with self._lock:
            if self._stopped or peer == self.name or peer in self._blocked:
                if peer in self._blocked:
                    log.info("refused a connection from %s: that node is blocked here", peer)
                return "not_allowed", None
            if peer in self._conns:
                return "alive", None
            pend = self._pending.get(peer)
            if pend is None:
                pend = self._pending[peer] = _Pending(incoming=True)
                return "ok", pend
            if pend.incoming or self.name > peer:
                return "nok", None
            pend.incoming = True
            return "ok", pend

    def _finish_pending(self, node: str, pend: _Pending) -> None:
        """End a pending setup and wake whoever waits for it.

        Erlang: net_kernel:reply_waiting/3
        """
        with self._lock:
            if self._pending.get(node) is pend:
                del self._pending[node]
        pend.event.set()

    def _mark_up(self, conn: Connection, ack: bytes | None) -> bool:
        """Make a connection visible: in ``nodes()``, then ``nodeup`` to subscribers.

        Erlang: dist_util:do_setnode/1
        Erlang: net_kernel:handle_info/2 ({SetupPid, {nodeup, Node, ...}})

        The accepting side sends its challenge ack while holding the
        connection's writer lock, so no message can overtake it.
        """
        self._wait_closing(conn.node, time.monotonic() + 5)
        with self._updown_lock:
            with conn.wlock:
                with self._lock:
                    if self._stopped or conn.node in self._blocked or conn.node in self._conns:
                        return False
                    self._conns[conn.node] = conn
                if ack is not None:
                    try:
                        conn.sock.sendall(ack)
                    except OSError:
                        pass  # the reader sees the dead socket and takes the connection down
            log.info("nodeup %s (creation %d)", conn.node, conn.creation)
            self._on_nodeup(conn.node)
        return True

    def _after_up(self, conn: Connection) -> None:
        """Tell the new peer which nodes we know, so it can connect to them too.

        Erlang: global:handle_info/2 ({nodeup, Node}) starts a sync that does this
        """
        # DIVERGENCE(D26): OTP's global connects nodes transitively; here the distribution does.
        known = [n for n in list(self._conns) if n != conn.node]  # list(): a snapshot, atomic under the GIL
        self._write(conn, pickle.dumps((Op.NODES, known), protocol=pickle.HIGHEST_PROTOCOL))

    def _connect_to(self, nodes: list[str]) -> None:
        """Connect, in the background, to the nodes a peer knows and we do not.

        Erlang: none (global's sync connects to the other nodes' nodes)
        """
        for node in nodes:
            if node == self.name or node in self._conns or node in self._blocked or self._stopped:
                continue
            threading.Thread(target=self.connect, args=(node,), daemon=True, name=f"dist-connect-{node}").start()

    # -- Reading, writing, ticking ------------------------------------------------

    def _reader_loop(self, conn: Connection) -> None:
        """Read frames until the connection ends, dispatching each in arrival order.

        Erlang: dist_util:con_loop/9 (the receiving half)
        """
        reason: Any = "connection_closed"
        reader = None
        try:
            reader = conn.sock.makefile("rb", buffering=256 * 1024)
            read = reader.read
            header_size = _HEADER.size
            unpack = _HEADER.unpack
            while True:
                header = read(header_size)
                if len(header) < header_size:
                    break
                conn.last_recv = time.monotonic()
                (size,) = unpack(header)
                if size == 0:
                    continue  # a tick
                if size > MAX_FRAME:
                    log.error(
                        "node %s sent a frame of %d bytes (max %d): closing the connection", conn.node, size, MAX_FRAME
                    )
                    reason = "frame_too_large"
                    break
                payload = read(size)
                if len(payload) < size:
                    break
                conn.last_recv = time.monotonic()
                try:
                    msg = pickle.loads(payload)
                except Exception as exc:  # noqa: BLE001 - a bad frame is dropped, the connection stays
                    log.error("could not decode a message from node %s, dropped: %r", conn.node, exc)
                    continue
                try:
                    self._dispatch(conn, msg)
                except Exception:  # noqa: BLE001 - a bad control message must not kill the connection
                    log.exception("bad control message from node %s: %.200r", conn.node, msg)
        except (OSError, ValueError) as exc:  # ValueError: read on a file closed under us
            reason = f"connection error: {exc}"
        finally:
            if reader is not None:
                reader.close()  # the socket's descriptor is freed only when its file is closed too
            self._teardown(conn, reason)

    def _dispatch(self, conn: Connection, msg: tuple[Any, ...]) -> None:
        """Hand one control message to the runtime.

        Erlang: none (dist.c: erts_net_message/5)
        """
        match msg:
            case (Op.SEND, to, payload):
                erlang._dist_deliver(to, payload)
            case (Op.REG_SEND, _frm, name, payload):
                erlang._dist_deliver_reg(name, payload)
            case (Op.LINK, frm, to):
                erlang._dist_link(frm, to)
            case (Op.UNLINK, frm, to):
                erlang._dist_unlink(frm, to)
            case (Op.EXIT, frm, to, reason):
                erlang._dist_exit(frm, to, reason, True)
            case (Op.EXIT2, frm, to, reason):
                erlang._dist_exit(frm, to, reason, False)
            case (Op.MONITOR_P, watcher, target, ref):  # by name, only the name travels
                erlang._dist_monitor(watcher, (target, self.name) if isinstance(target, str) else target, ref)
            case (Op.DEMONITOR_P, _watcher, target, ref):
                erlang._dist_demonitor((target, self.name) if isinstance(target, str) else target, ref)
            case (Op.MONITOR_P_EXIT, item, watcher, ref, reason):
                erlang._dist_monitor_exit(item, watcher, ref, reason)
            case (Op.NODES, list(known)):
                self._connect_to([n for n in known if isinstance(n, str)])
            case _:
                log.error("unknown control message from node %s: %.200r", conn.node, msg)

    def _encode(self, msg: tuple[Any, ...], bif: str) -> bytes:
        """Pickle a control message; raise ``badarg`` in the sender if it cannot travel.

        Erlang: none (term_to_binary cannot fail in Erlang; pickle can)
        """
        try:  # DIVERGENCE(D24): pickle, not the external term format; only authenticated peers load it
            data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - pickle raises many types
            raise erlang.ErlangError(
                "badarg", f"badarg: {bif}: the message cannot be sent to another node: {exc!r}"
            ) from exc
        if len(data) > MAX_FRAME:
            raise erlang.ErlangError("badarg", f"badarg: {bif}: message of {len(data)} bytes exceeds {MAX_FRAME}")
        return data

    def _write(self, conn: Connection, data: bytes) -> None:
        """Write one frame; on a dead socket drop it and let the reader take the connection down.

        Erlang: none (the runtime writes to the distribution port)

        Inside :meth:`corked` the frame waits in the calling thread's batch
        and goes out with the others at the end of the block.
        """
        batch: dict[Connection, list[bytes]] | None = getattr(_corks, "batch", None)
        if batch is not None:
            batch.setdefault(conn, []).append(data)
            return
        header = _HEADER.pack(len(data))
        with conn.wlock:
            try:
                if len(data) < 65536:
                    conn.sock.sendall(header + data)  # one write, one segment
                else:
                    conn.sock.sendall(header)  # avoid copying a big payload
                    conn.sock.sendall(data)
                conn.last_send = time.monotonic()
            except OSError as exc:
                log.info("write to node %s failed (%s): message dropped", conn.node, exc)
                _shutdown(conn.sock)

    @contextlib.contextmanager
    def corked(self) -> Iterator[None]:
        """Hold back the calling thread's frames until the block ends, then write each node's in one go.

        Erlang: none (the BEAM queues distribution output in the port and writes it in batches)

        ``gen_server`` sends a monitor and a request to each node of a
        ``multi_call`` back to back; written one frame per ``sendall``, each
        costs a system call and a wake-up of the peer's reader thread (on a
        2-vCPU VM, 20-30 µs of CPU each). Corked, the two frames for a node
        share one write and one wake-up. Order is kept: a connection's frames
        go out in the order they were made, and only the blocked thread's
        own frames wait, for the length of a loop that never blocks. Blocks
        nest (the outermost one writes); an exception still writes what was
        sent before it.
        """
        if getattr(_corks, "batch", None) is not None:
            yield
            return
        batch: dict[Connection, list[bytes]] = {}
        _corks.batch = batch
        try:
            yield
        finally:
            _corks.batch = None
            for conn, frames in batch.items():
                self._write_all(conn, frames)

    def _write_all(self, conn: Connection, frames: list[bytes]) -> None:
        """Write several frames to one connection with one ``sendall``.

        Erlang: none (the runtime flushes the distribution port's queue)
        """
        if len(frames) == 1:
            self._write(conn, frames[0])
            return
        data = b"".join(part for frame in frames for part in (_HEADER.pack(len(frame)), frame))
        with conn.wlock:
            try:
                conn.sock.sendall(data)
                conn.last_send = time.monotonic()
            except OSError as exc:
                log.info("write to node %s failed (%s): %d messages dropped", conn.node, exc, len(frames))
                _shutdown(conn.sock)

    def tick(self) -> None:
        """Send ticks on idle connections and take down the silent ones.

        Erlang: dist_util:con_loop/9 (the tick and the check of received data)
        Erlang: net_kernel:handle_info/2 (tick)

        Called every ``ticktime / 4`` seconds. A connection that received
        nothing (data or tick) for ``ticktime`` seconds is down. A tick is
        skipped when a writer holds the lock: that writer is sending, which
        the peer will count as a tick.
        """
        now = time.monotonic()
        interval = self.ticktime / 4
        # DIVERGENCE(D28): one ticker checks every connection; down after ticktime of silence
        # (OTP: four tick periods without data), so detection takes ticktime to ticktime * 1.25.
        for conn in list(self._conns.values()):
            silent = now - conn.last_recv
            if silent > self.ticktime:
                log.warning(
                    "net_kernel: node %s not responding: nothing received for %.1f s (net_ticktime %s s), removing it",
                    conn.node,
                    silent,
                    self.ticktime,
                )
                self._teardown(conn, "net_tick_timeout")
            elif now - conn.last_send >= interval * 0.9 and conn.wlock.acquire(blocking=False):
                try:
                    # MSG_DONTWAIT: a stopped peer with full buffers must not
                    # block the ticker, or nothing would ever time out.
                    sent = conn.sock.send(_TICK, getattr(socket, "MSG_DONTWAIT", 0))
                    if sent < len(_TICK):  # pragma: no cover - a 4-byte write split by a nearly full buffer
                        conn.sock.sendall(_TICK[sent:])
                    conn.last_send = now
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    _shutdown(conn.sock)
                finally:
                    conn.wlock.release()

    def _teardown(self, conn: Connection, reason: Any) -> None:
        """Take a connection down once: close it, fire its monitors and links, then nodedown.

        Erlang: net_kernel:nodedown/4
        Erlang: net_kernel:up_nodedown/5

        The reader thread is stopped and joined first, so every message that
        arrived before the end is delivered before the 'DOWN's, the
        'noconnection' exit signals (``erlang._dist_node_down``) and, last,
        ``nodedown``.
        """
        with self._lock:
            if conn.closed:
                return
            conn.closed = True
            was_up = self._conns.get(conn.node) is conn
            if was_up:
                del self._conns[conn.node]
                self._closing[conn.node] = conn
        _shutdown(conn.sock)
        if conn.reader is not None and conn.reader is not threading.current_thread():
            conn.reader.join(timeout=5)
        conn.sock.close()
        try:
            if was_up:
                with self._updown_lock:
                    log.info("nodedown %s: %s", conn.node, reason)
                    erlang._dist_node_down(conn.node)
                    self._on_nodedown(conn.node, reason)
        finally:
            with self._lock:
                if self._closing.get(conn.node) is conn:
                    del self._closing[conn.node]
            conn.down_done.set()


def _shutdown(sock: socket.socket) -> None:
    """Shut a socket down both ways, waking any thread blocked on it.

    Erlang: none (closing the distribution port)
    """
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _portable_reason(reason: Any) -> Any:
    """Return ``reason`` if it survives pickling, else its ``repr``.

    Erlang: none (every Erlang term can travel; a Python exception may not)

    An exception whose class needs constructor arguments pickles but fails
    to unpickle on the other side, so we try both ways here.
    """
    try:
        pickle.loads(pickle.dumps(reason, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - anything that fails to round-trip
        return repr(reason)
    return reason


# == The harness' view: the running distribution ======================================


def current() -> Distribution | None:
    """Return this node's running distribution, or None if not distributed.

    Erlang: none (the running net_kernel)
    """
    hook = erlang._dist
    return hook if isinstance(hook, Distribution) else None


def block(nodes: Iterable[str]) -> None:
    """Cut this node off from ``nodes`` until :func:`unblock` (for partitions).

    Erlang: none (test harness support; see Distribution.block)
    """
    dist = current()
    if dist is None:
        raise RuntimeError("this node is not distributed")
    dist.block(nodes)


def unblock(nodes: Iterable[str] | None = None) -> None:
    """Let this node talk to ``nodes`` (every node if None) again.

    Erlang: none (test harness support; see Distribution.unblock)
    """
    dist = current()
    if dist is not None:
        dist.unblock(nodes)


# == Command line: the port mapper daemon ===========================================


def main(argv: list[str] | None = None) -> int:
    """Run the port mapper: ``python -m repg2.dist epmd [--port N] [--linger S] [--daemon]``.

    Erlang: none (the epmd program's main)
    """
    parser = argparse.ArgumentParser(prog="python -m repg2.dist")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("epmd", help="run the port mapper")
    cmd.add_argument("--port", type=int, default=None)
    cmd.add_argument("--address", default=os.environ.get("REPG2_EPMD_ADDRESS", "0.0.0.0"))
    cmd.add_argument("--linger", type=float, default=EPMD_LINGER, help="exit this many seconds after the last node")
    cmd.add_argument("--daemon", action="store_true", help="fork and return at once")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s epmd[%(process)d] %(message)s")
    if args.daemon and os.fork() > 0:
        return 0  # the caller waits for this process; the daemon goes on, nobody's child
    try:
        mapper = PortMapper(args.address, epmd_port() if args.port is None else args.port, args.linger)
    except OSError as exc:
        log.info("port mapper not started: %s (another one is running?)", exc)
        return 1
    mapper.serve_forever()
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a separate process
    sys.exit(main())
