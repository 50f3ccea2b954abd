"""Erlang's port mapper: the epmd protocol, its client ``erl_epmd`` and a server that speaks it.

Follows Erlang/OTP 25.2.3 (kernel 8.5.3, erts 13.1.5):

- ``lib/kernel/src/erl_epmd.erl`` for the client: a node registers its name
  and listen port with the port mapper of its host (``ALIVE2_REQ``), finds
  the port of a node on another host (``PORT_PLEASE2_REQ``), and lists a
  host's nodes for ``net_adm:names/0,1`` (``NAMES_REQ``);
- ``erts/epmd/src/epmd_srv.c``, the C daemon, for the server
  (:class:`PortMapper`), and ``epmd.c`` / ``epmd_cli.c`` for its command
  line (``python -m repg2.epmd``, with epmd's ``-port``, ``-daemon``,
  ``-names``, ``-kill``, ``-stop``, ``-dump``);
- the "EPMD Protocol" part of the ERTS User's Guide, *Distribution Protocol*.

A RePy2 node registers with the real ``epmd`` where Erlang is installed, so
``epmd -names`` and ``net_adm:names()`` list it and Erlang nodes find it;
where Erlang is not installed, it starts the :class:`PortMapper` of this
module, which real Erlang nodes and tools use just the same.

Ported: ``register_node/2,3``, ``port_please/2,3``, ``names/0,1`` and the
reply parsers of ``erl_epmd`` (``wait_for_reg_reply``,
``wait_for_port_reply``, ``scan_names``, ``select_best_version``); the
whole request set of ``epmd_srv.c`` (``ALIVE2``, ``PORT_PLEASE2``,
``NAMES``, ``DUMP``, ``KILL``, ``STOP``) with its size and encoding checks,
its creation counter and its memory of unregistered names; epmd's
environment (``ERL_EPMD_PORT``, ``ERL_EPMD_ADDRESS``,
``ERL_EPMD_RELAXED_COMMAND_CHECK``).

Left out: ``erl_epmd`` as a gen_server (its re-registration every 2 s after
the port mapper closed the registration: the caller holds the socket and
decides), ``listen_port_please/2`` and ``-erl_epmd_port`` (nodes without a
port mapper), ``address_please/3``, the ``ERL_EPMD_DIST_HIGH``/``LOW``
variables that narrow the advertised versions, IPv6 (epmd also listens on
``::``; this server and client use IPv4), systemd socket activation, and
epmd's ``-delay_accept``/``-delay_write`` test options.

How it works
------------
Every request is a 2-byte big-endian length and the request; replies carry
no length, and the port mapper closes the connection after answering,
except after a registration: that connection stays open, and the name is
registered exactly as long as it does. A node killed outright vanishes from
the port mapper when its kernel closes the socket. Layouts (integers
big-endian, ``:n`` a width in bits)::

    ALIVE2_REQ       'x' PortNo:16 NodeType:8 Protocol:8 HighestVersion:16
                         LowestVersion:16 Nlen:16 NodeName Elen:16 Extra
    ALIVE2_X_RESP    'v' Result:8 Creation:32      (HighestVersion >= 6)
    ALIVE2_RESP      'y' Result:8 Creation:16      (older nodes)
    PORT_PLEASE2_REQ 'z' NodeName
    PORT2_RESP       'w' Result:8 [PortNo:16 NodeType:8 Protocol:8 HighestVersion:16
                         LowestVersion:16 Nlen:16 NodeName Elen:16 Extra]
    NAMES_REQ        'n'  ->  EpmdPortNo:32, then "name <Name> at port <Port>\\n" per node
    DUMP_REQ         'd'  ->  EpmdPortNo:32, then one NUL-terminated line per name
    KILL_REQ         'k'  ->  "OK" (and the port mapper exits) or "NO" (nodes live)
    STOP_REQ         's' NodeName  ->  "STOPPED" or "NOEXIST"

``Result`` is 0 for success; any other value is reported by ``erl_epmd``
as ``duplicate_name`` (epmd sends 1, with creation 99). The *creation*
tells incarnations of one node name apart (a pid of a dead incarnation
never reaches the new one): epmd starts a name's counter at the current
Unix time and adds one at each re-registration, remembering up to 1000
unregistered names.

The server is one thread around a ``selectors`` loop, as epmd is one
process around ``select()``: every socket is non-blocking, a request is
read into a buffer of at most ``INBUF_SIZE`` bytes, and a connection that
is not a registration and stays silent for ``packet_timeout`` seconds is
closed, so no client can hold it up.

Starting a port mapper: :func:`ensure_registered` registers a node and,
where no port mapper answers, starts one (:func:`start_port_mapper`): the
real ``epmd -daemon`` if ``epmd`` is on ``PATH``, otherwise this module's
server in a detached process (``subprocess`` with a new session or
``DETACHED_PROCESS``, never ``os.fork``, so it runs on Windows too). If two
nodes start one at the same moment, the second cannot bind the port and
exits; both nodes then register with the first.

Differences from OTP (see ``TRANSLATION_NOTES.md``; each is marked
``# DIVERGENCE(Dn)`` where it is made, D40 to D45):

- The port mapper this module starts (where ``epmd`` is not installed, or
  with ``REPG2_PORT_MAPPER=repg2``) exits by itself ``EPMD_LINGER`` seconds
  after its last registration ends (``--linger``); epmd stays until
  ``epmd -kill``. A test run or a workshop leaves no daemon behind.
- The client raises ``OSError`` (or :class:`EpmdError`, an ``OSError`` with
  no errno) where ``erl_epmd`` folds a failure into ``noport``,
  ``closed`` or ``{error, address}``, so a caller can say why a lookup
  failed; ``None`` still means "no such node registered".
- A node is registered by :func:`ensure_registered`, which starts a port
  mapper only when none answers; ``erl`` runs ``epmd -daemon`` at every
  start and lets it exit when the port is taken.
- The server closes the connection of a refused registration after its
  answer; epmd keeps it open until the client closes it.
- ``STOP_REQ`` for an unknown name answers ``NOEXIST``; epmd sends
  ``NOEXISTSTOPPED``, of which ``epmd -stop`` reads and prints ``NOEXIST``.
- The server accepts at most ``MAX_CONNECTIONS`` connections at once (epmd:
  its file descriptor limit), staying below the 512 sockets that
  ``select()`` handles on Windows.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import ipaddress
import logging
import os
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

__all__ = [
    "DEFAULT_EPMD_PORT",
    "EPMD_LINGER",
    "DuplicateName",
    "EpmdError",
    "NodeInfo",
    "PortMapper",
    "ensure_port_mapper",
    "ensure_registered",
    "epmd_port",
    "kill",
    "main",
    "names",
    "port_please",
    "register_node",
    "start_port_mapper",
]

log = logging.getLogger("repg2.epmd")

# -- Constants, each with its reason ------------------------------------------
DEFAULT_EPMD_PORT = 4369  # erl_epmd's ?erlang_daemon_port, epmd's EPMD_PORT_NO
EPMD_LINGER = 3.0  # seconds a port mapper we started outlives its last registration
REPLY_TIMEOUT = 10.0  # erl_epmd waits 10 s ('after 10000') for a reply
PACKET_TIMEOUT = 60.0  # epmd's CLOSE_TIMEOUT: a silent connection that registered nothing is closed
MAXSYMLEN = 255 * 4  # a node name: at most 255 characters of UTF-8, so at most 1020 bytes
INBUF_SIZE = 3 * MAXSYMLEN  # epmd's request buffer: a longer request is refused unread
MAX_UNREG_COUNT = 1000  # unregistered names epmd remembers, to give their next incarnation a new creation
MAX_CONNECTIONS = 500  # ours: below the 512 sockets select() handles on Windows
MAX_REPLY = 16 * 1024 * 1024  # a NAMES or DUMP reply longer than this does not come from a port mapper
RESTART_INTERVAL = 0.5  # seconds between two attempts to start a port mapper that does not answer
_TICK = 0.25  # seconds the server sleeps at most: it checks linger and idle connections this often

# -- Request and reply tags (erl_epmd.hrl and epmd.h) ---------------------------
ALIVE2_REQ = 120  # 'x'
ALIVE2_X_RESP = 118  # 'v', for a node whose HighestVersion is 6 or more: 32-bit creation
ALIVE2_RESP = 121  # 'y', for older nodes: 16-bit creation in 1..3
PORT_PLEASE2_REQ = 122  # 'z'
PORT2_RESP = 119  # 'w'
NAMES_REQ = 110  # 'n'
DUMP_REQ = 100  # 'd', epmd -dump
KILL_REQ = 107  # 'k', epmd -kill
STOP_REQ = 115  # 's', epmd -stop Name

NODE_TYPE_NORMAL = 77  # 'M', a normal Erlang node
NODE_TYPE_HIDDEN = 72  # 'H', a hidden node (C nodes, erl -hidden)
PROTOCOL_TCP_IPV4 = 0
DIST_VERSION_HIGH = 6  # dist.hrl: ERL_DIST_VER_HIGH in OTP 25
DIST_VERSION_LOW = 6  # dist.hrl: ERL_DIST_VER_LOW in OTP 25 (version 5 is gone)
REFUSED_CREATION = 99  # the creation epmd sends with a refused registration

_LENGTH = struct.Struct(">H")  # the length in front of every request
_U32 = struct.Struct(">I")  # the port mapper's own port in front of NAMES and DUMP replies
# ALIVE2_REQ up to the name: tag, PortNo, NodeType, Protocol, HighestVersion, LowestVersion, Nlen
_ALIVE2_HEAD = struct.Struct(">BHBBHHH")
# PORT2_RESP after tag and Result, up to the name: PortNo, NodeType, Protocol, High, Low, Nlen
_PORT2_HEAD = struct.Struct(">HBBHHH")


class EpmdError(OSError):
    """What answered on the port mapper's port does not speak epmd's protocol, or hung up.

    Erlang: none (erl_epmd returns {error, {garbage_from_epmd, Data}}, closed
    or {error, address} in these cases)

    An ``OSError`` with ``errno`` None: callers that catch ``OSError`` for
    "no port mapper there" catch this too, and can tell it apart by the
    missing errno.
    """


class DuplicateName(Exception):
    """The port mapper refused a registration: the name is taken (or not a valid name).

    Erlang: none (erl_epmd:register_node/2 returns {error, duplicate_name})

    epmd gives every refusal the same answer, so, as ``erl_epmd`` says, a
    taken name is only the most likely reason.
    """


class NodeInfo(NamedTuple):
    """What a node tells the port mapper about itself: the fields of ALIVE2_REQ and PORT2_RESP.

    Erlang: none (the ALIVE2_REQ fields; the node record of epmd_int.h)
    """

    name: str  # the part before the @, UTF-8 on the wire
    port: int  # where the node accepts distribution connections
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = PROTOCOL_TCP_IPV4
    highvsn: int = DIST_VERSION_HIGH  # highest distribution version the node speaks
    lowvsn: int = DIST_VERSION_LOW  # lowest
    extra: bytes = b""  # free-form; OTP sends none


# == Client: erl_epmd.erl ==========================================================


def epmd_port() -> int:
    """Return the port mapper's TCP port: ``ERL_EPMD_PORT``, else 4369.

    Erlang: erl_epmd:get_epmd_port/0

    Erlang reads the ``-epmd_port`` argument, which ``erl`` sets from the
    ``ERL_EPMD_PORT`` variable; ``epmd`` reads the variable itself. One
    variable therefore moves ``erl``, ``epmd`` and RePy2 nodes together.

    Raises:
        ValueError: the variable is set but is not a TCP port.
    """
    text = os.environ.get("ERL_EPMD_PORT", "").strip()
    if not text:
        return DEFAULT_EPMD_PORT
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"ERL_EPMD_PORT={text!r} is not a TCP port") from None
    if not 0 < port < 65536:
        raise ValueError(f"ERL_EPMD_PORT={text!r} is not a TCP port")
    return port


def _port_or_default(port: int | None) -> int:
    """Return ``port``, or the port mapper's port from the environment if None.

    Erlang: none (erl_epmd always uses get_epmd_port/0)
    """
    return epmd_port() if port is None else port


def _open(host: str, port: int | None, timeout: float | None) -> socket.socket:
    """Connect to the port mapper of ``host``.

    Erlang: erl_epmd:open/0
    Erlang: erl_epmd:open/1
    Erlang: erl_epmd:open/2
    Erlang: erl_epmd:getepmdbyname/2 (create_connection resolves the host and tries its addresses)

    Raises:
        OSError: nobody answers (``ConnectionRefusedError``), the host is
        unknown (``socket.gaierror``), or the connect timed out.
    """
    sock = socket.create_connection((host, _port_or_default(port)), timeout=timeout)
    # Requests go out in one write, but a node's lookups wait on the answer:
    # no Nagle delay on either side.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _request(payload: bytes) -> bytes:
    """Frame one request: its 2-byte length, then the request.

    Erlang: none (the [?int16(Len), ...] of every request in erl_epmd)

    Raises:
        ValueError: the request does not fit the 16-bit length.
    """
    if len(payload) > 0xFFFF:
        raise ValueError(f"port mapper request of {len(payload)} bytes does not fit its 16-bit length")
    return _LENGTH.pack(len(payload)) + payload


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read ``n`` bytes; fewer if the port mapper closes the connection first.

    Erlang: none (erl_epmd accumulates tcp messages: SoFar ++ Data)
    """
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(n - len(buf))
        if not data:
            break
        buf += data
    return bytes(buf)


def _recv_all(sock: socket.socket, limit: int) -> bytes:
    """Read until the port mapper closes the connection.

    Erlang: erl_epmd:names_loop/3 (collects until tcp_closed)

    Raises:
        EpmdError: more than ``limit`` bytes came.
    """
    buf = bytearray()
    while True:
        data = sock.recv(65536)
        if not data:
            return bytes(buf)
        buf += data
        if len(buf) > limit:
            raise EpmdError(f"port mapper reply longer than {limit} bytes")


def _alive2_req(info: NodeInfo) -> bytes:
    """Build the ALIVE2_REQ that registers ``info``.

    Erlang: erl_epmd:do_register_node/3 (the packet)

    Raises:
        ValueError: the name or the extra data is longer than its 16-bit
        length field can say, or the whole request than its own.
    """
    name = info.name.encode("utf-8")
    if len(name) > 0xFFFF or len(info.extra) > 0xFFFF:
        raise ValueError(f"a node name or extra data over 65535 bytes does not fit ALIVE2_REQ: {info.name[:40]!r}...")
    head = _ALIVE2_HEAD.pack(ALIVE2_REQ, info.port, info.node_type, info.protocol, info.highvsn, info.lowvsn, len(name))
    return _request(head + name + _LENGTH.pack(len(info.extra)) + info.extra)


def register_node(
    name: str,
    port: int,
    *,
    host: str = "127.0.0.1",
    epmd_port: int | None = None,
    timeout: float = REPLY_TIMEOUT,
    node_type: int = NODE_TYPE_NORMAL,
    extra: bytes = b"",
) -> tuple[socket.socket, int]:
    """Register node ``name`` at listen ``port`` with this host's port mapper.

    Erlang: erl_epmd:register_node/2
    Erlang: erl_epmd:register_node/3
    Erlang: erl_epmd:do_register_node/3

    Sends ALIVE2_REQ as OTP 25 does (normal node, TCP over IPv4, highest
    and lowest distribution version 6, no extra data) and reads the reply.
    The registration lives exactly as long as the returned socket: keep it
    open while the node runs, close it to unregister. (A child process
    created by ``fork`` inherits it and keeps the name registered.) Only a
    local client may register, so ``host`` is 127.0.0.1 unless the caller
    knows better.

    Returns:
        The socket holding the registration (blocking, no timeout) and the
        creation the port mapper gave this incarnation of the name.

    Raises:
        ValueError: the request does not fit epmd's 16-bit lengths.
        DuplicateName: the port mapper refused the name.
        EpmdError: the answer is not epmd's, or the port mapper hung up.
        OSError: no port mapper answers (``ConnectionRefusedError``), or
        it did not answer in ``timeout`` seconds (``TimeoutError``).
    """
    info = NodeInfo(name, port, node_type=node_type, extra=extra)
    packet = _alive2_req(info)
    sock = _open(host, epmd_port, timeout)
    try:
        sock.settimeout(timeout)
        sock.sendall(packet)
        creation = _wait_for_reg_reply(sock, name)
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)
    return sock, creation


def _wait_for_reg_reply(sock: socket.socket, name: str) -> int:
    """Read ALIVE2_X_RESP or ALIVE2_RESP; return the creation.

    Erlang: erl_epmd:wait_for_reg_reply/2

    Raises:
        DuplicateName: a non-zero result.
        EpmdError: the connection closed (Erlang's ``epmd_close``) or the
        reply is garbage (``garbage_from_epmd``).
    """
    tag = _recv_exact(sock, 1)
    match tag:
        case b"v":  # ALIVE2_X_RESP: Result:8 Creation:32
            rest = _recv_exact(sock, 5)
            if len(rest) == 5:
                result, creation = rest[0], _U32.unpack(rest[1:])[0]
            else:
                raise EpmdError(f"port mapper closed the connection in its reply to registering {name!r}")
        case b"y":  # ALIVE2_RESP: Result:8 Creation:16
            rest = _recv_exact(sock, 3)
            if len(rest) == 3:
                result, creation = rest[0], _LENGTH.unpack(rest[1:])[0]
            else:
                raise EpmdError(f"port mapper closed the connection in its reply to registering {name!r}")
        case b"":
            raise EpmdError(f"port mapper closed the connection instead of registering {name!r} (epmd_close)")
        case _:
            raise EpmdError(f"garbage from the port mapper in reply to registering {name!r}: {tag!r}")
    if result != 0:
        raise DuplicateName(f"the port mapper refused the name {name!r} (result {result}): taken or invalid")
    return int(creation)


def port_please(
    name: str, host: str, timeout: float | None = None, *, epmd_port: int | None = None
) -> tuple[int, int] | None:
    """Ask ``host``'s port mapper where node ``name`` listens.

    Erlang: erl_epmd:port_please/2
    Erlang: erl_epmd:port_please/3
    Erlang: erl_epmd:get_port/3
    Erlang: erl_epmd:wait_for_port_reply/2
    Erlang: erl_epmd:wait_for_port_reply_cont/2
    Erlang: erl_epmd:wait_for_port_reply_cont2/2

    Sends PORT_PLEASE2_REQ and reads PORT2_RESP. The version returned is
    the highest distribution version both nodes speak, 0 if their ranges do
    not meet. ``timeout`` bounds the connect and each read (None: connect
    without limit and wait ``REPLY_TIMEOUT`` for the reply, as Erlang does).

    Returns:
        ``(port, version)``, or None if no node of that name is registered
        (Erlang's ``noport``), or if the reply breaks off after its result.

    Raises:
        OSError: no port mapper answers, the host is unknown, or it timed out.
        EpmdError: the port mapper closed without answering (Erlang's
        ``closed``) or answered garbage.
    """
    # DIVERGENCE(D41): failures raise OSError; erl_epmd returns noport for
    # them, which callers could not tell from "no such node".
    request = _request(bytes([PORT_PLEASE2_REQ]) + name.encode("utf-8"))
    with _open(host, epmd_port, timeout) as sock:
        sock.settimeout(REPLY_TIMEOUT if timeout is None else timeout)
        sock.sendall(request)
        head = _recv_exact(sock, 2)
        if not head:
            raise EpmdError(f"port mapper on {host} closed the connection instead of answering for {name!r}")
        if head[0] != PORT2_RESP:
            raise EpmdError(f"garbage from the port mapper on {host}: {head!r}")
        if len(head) < 2:
            raise EpmdError(f"port mapper on {host} closed the connection in its answer for {name!r}")
        if head[1] != 0:  # Result > 0: noport
            return None
        fields = _recv_exact(sock, _PORT2_HEAD.size)
        if len(fields) < _PORT2_HEAD.size:  # closed in the middle: Erlang says noport too
            return None
        # The name and extra data follow; erl_epmd reads and drops them
        # (wait_for_port_reply_name/3), we hang up.
        port, _type, _proto, high, low, _nlen = _PORT2_HEAD.unpack(fields)
    return port, _select_best_version(DIST_VERSION_LOW, DIST_VERSION_HIGH, low, high)


def _select_best_version(our_low: int, our_high: int, low: int, high: int) -> int:
    """Return the highest distribution version both ranges contain, 0 if they are apart.

    Erlang: erl_epmd:best_version/2
    Erlang: erl_epmd:select_best_version/4
    """
    if our_low > high or low > our_high:
        return 0
    return min(our_high, high)


def names(host: str | None = None, timeout: float | None = None, *, epmd_port: int | None = None) -> dict[str, int]:
    """Return ``{name: port}`` of the nodes registered with ``host``'s port mapper.

    Erlang: erl_epmd:names/0
    Erlang: erl_epmd:names/1
    Erlang: erl_epmd:get_names/1
    Erlang: erl_epmd:do_get_names/1

    ``host`` None means this machine by its host name, as ``names/0``
    does. The reply starts with the port mapper's own port; like
    ``erl_epmd``, a port other than the one asked means something else
    answered. Lines that are not ``name <Name> at port <Port>`` are skipped.

    Raises:
        OSError: no port mapper answers, the host is unknown, or it timed out.
        EpmdError: the reply names another port (Erlang's
        ``{error, address}``) or is not a port mapper's.
    """
    port = _port_or_default(epmd_port)
    with _open(socket.gethostname() if host is None else host, port, timeout) as sock:
        sock.settimeout(REPLY_TIMEOUT if timeout is None else timeout)
        sock.sendall(_request(bytes([NAMES_REQ])))
        reply = _recv_all(sock, MAX_REPLY)
    if not reply:  # closed at once: Erlang answers {ok, []}
        return {}
    if len(reply) < _U32.size:
        raise EpmdError(f"port mapper reply to NAMES too short: {reply!r}")
    (their_port,) = _U32.unpack(reply[: _U32.size])
    if their_port != port:
        raise EpmdError(f"the port mapper on port {port} says it runs on port {their_port} (address)")
    found = _scan_names(reply[_U32.size :])
    # erl_epmd accumulates the lines in reverse: epmd sends the newest node
    # first, so Erlang's list (and this dict) starts with the oldest.
    return dict(reversed(found))


def _scan_names(text: bytes) -> list[tuple[str, int]]:
    """Parse the lines of a NAMES reply, skipping what does not parse.

    Erlang: erl_epmd:scan_names/2
    Erlang: erl_epmd:scan_line/2
    Erlang: erl_epmd:parse_line/1
    Erlang: erl_epmd:parse_name/2

    Only complete lines count: a last line without its newline is dropped,
    as Erlang's ``scan_line`` leaves it in the buffer.
    """
    found: list[tuple[str, int]] = []
    for line in text.split(b"\n")[:-1]:
        if not line.startswith(b"name "):
            continue
        name, sep, rest = line[5:].partition(b" ")  # the name ends at the first space
        if not sep or not rest.startswith(b"at port "):
            continue
        try:
            found.append((name.decode("utf-8"), int(rest[8:])))
        except (UnicodeDecodeError, ValueError):
            continue
    return found


def _epmd_call(what: int, port: int, host: str = "127.0.0.1") -> tuple[int, bytes]:
    """Send NAMES_REQ or DUMP_REQ; return the port mapper's port and the text.

    Erlang: none (epmd_cli.c: epmd_call/2, what `epmd -names` and `epmd -dump` run)

    Raises:
        OSError: no port mapper answers.
        EpmdError: no 4-byte port in front of the reply.
    """
    with _open(host, port, REPLY_TIMEOUT) as sock:
        sock.sendall(_request(bytes([what])))
        reply = _recv_all(sock, MAX_REPLY)
    if len(reply) < _U32.size:
        raise EpmdError("no response from local epmd")
    return _U32.unpack(reply[: _U32.size])[0], reply[_U32.size :]


def kill(*, epmd_port: int | None = None, host: str = "127.0.0.1") -> bool:
    """Ask the port mapper to exit; True if it agreed.

    Erlang: none (epmd_cli.c: kill_epmd/1, what `epmd -kill` runs)

    epmd agrees (``OK``) only when no node is registered, unless it was
    started with ``-relaxed_command_check``; otherwise it answers ``NO``
    and goes on.

    Raises:
        OSError: no port mapper answers.
        EpmdError: an answer other than ``OK`` or ``NO``.
    """
    with _open(host, epmd_port, REPLY_TIMEOUT) as sock:
        sock.sendall(_request(bytes([KILL_REQ])))
        answer = _recv_exact(sock, 2)
    if answer not in (b"OK", b"NO"):
        raise EpmdError(f"port mapper answered {answer!r} to KILL_REQ")
    return answer == b"OK"


def _stop_name(name: str, *, epmd_port: int | None = None, host: str = "127.0.0.1") -> str:
    """Ask the port mapper to drop ``name``'s registration; return its answer.

    Erlang: none (epmd_cli.c: stop_cli/2, what `epmd -stop Name` runs)

    Raises:
        OSError: no port mapper answers.
    """
    with _open(host, epmd_port, REPLY_TIMEOUT) as sock:
        sock.sendall(_request(bytes([STOP_REQ]) + name.encode("utf-8")))
        return _recv_exact(sock, 7).decode("ascii", "replace")


# == Starting a port mapper: erlexec and epmd -daemon ================================


def start_port_mapper(port: int | None = None, *, kind: str | None = None) -> str:
    """Start a detached port mapper on ``port``; return which one (``'epmd'`` or ``'repg2'``).

    Erlang: none (erlexec runs `epmd -daemon` before the emulator starts)

    ``kind`` (default: ``REPG2_PORT_MAPPER``, else ``'auto'``) picks the
    real ``epmd`` if it is on ``PATH`` (``'auto'``, ``'epmd'``) or this
    module's server (``'repg2'``, or ``'auto'`` without Erlang). Either
    way the daemon is no child of this process: ``epmd -daemon`` forks
    and its first process exits, and ``python -m repg2.epmd --daemon``
    spawns a detached copy of itself and exits, so nothing is left to reap.
    Ours exits ``EPMD_LINGER`` seconds after its last registration ends;
    epmd stays. Returns without waiting for the daemon to listen, and
    without checking that it could: if another port mapper took the port
    first, the new one exits, which is what a caller wants.

    Raises:
        FileNotFoundError: ``kind`` is ``'epmd'`` and there is no ``epmd``.
        ValueError: an unknown ``kind``.
    """
    port = epmd_port() if port is None else port
    kind = kind or os.environ.get("REPG2_PORT_MAPPER") or "auto"
    if kind not in ("auto", "epmd", "repg2"):
        raise ValueError(f"REPG2_PORT_MAPPER must be auto, epmd or repg2, not {kind!r}")
    binary = shutil.which("epmd") if kind in ("auto", "epmd") else None
    if kind == "epmd" and binary is None:
        raise FileNotFoundError("epmd is not on PATH")
    env = dict(os.environ)
    env["ERL_EPMD_PORT"] = str(port)
    if binary is not None:
        command = [binary, "-daemon", "-port", str(port)]
    else:
        # The package must be importable in the child, installed or not.
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        command = [sys.executable, "-m", "repg2.epmd", "--daemon", "--port", str(port), "--linger", str(EPMD_LINGER)]
        if os.environ.get("REPG2_EPMD_LOG"):
            command.append("-d")
    log.info("no port mapper on port %d: starting %s", port, " ".join(command))
    subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        timeout=60,
        check=False,
    )
    return "repg2" if binary is None else "epmd"


def ensure_port_mapper(port: int | None = None, timeout: float = 15.0) -> None:
    """Start a port mapper on ``port`` unless one answers; return once one does.

    Erlang: none (erlexec's `epmd -daemon` before an erl node starts)

    For a program that is about to start an ``erl`` node with
    ``-start_epmd false`` (the interop tests): that node must find a port
    mapper, and must not start a real epmd that would outlive the run.

    Raises:
        TimeoutError: none answered within ``timeout``.
    """
    port = epmd_port() if port is None else port
    deadline = time.monotonic() + timeout
    started_at: float | None = None
    while True:
        try:
            names("127.0.0.1", 1.0, epmd_port=port)
            return
        except OSError:
            now = time.monotonic()
            if started_at is None or now - started_at > RESTART_INTERVAL:
                start_port_mapper(port)
                started_at = now
        if time.monotonic() > deadline:
            raise TimeoutError(f"no port mapper answers on port {port}")
        time.sleep(0.05)


def ensure_registered(
    name: str,
    port: int,
    *,
    timeout: float = 15.0,
    epmd_port: int | None = None,
    start: bool = True,
) -> tuple[socket.socket, int]:
    """Register ``name`` at ``port``, starting a port mapper if none answers.

    Erlang: none (erlexec starts epmd, then net_kernel calls erl_epmd:register_node/2)

    Retries until ``timeout`` while the port mapper is missing, starting,
    or exiting (ours exits after its linger time, and a client that
    connected at that moment is hung up on). A second start attempt is made
    if the first has not answered within ``RESTART_INTERVAL``: it may have
    lost a bind race against a port mapper that exited since.

    Returns:
        As :func:`register_node`: the socket holding the registration and
        the creation.

    Raises:
        DuplicateName: the name is registered already (at once, as
        ``erl`` fails).
        TimeoutError: no port mapper could be reached before ``timeout``.
    """
    # DIVERGENCE(D42): a port mapper is started only when none answers;
    # erl runs `epmd -daemon` at every start.
    port_no = _port_or_default(epmd_port)
    deadline = time.monotonic() + timeout
    started_at: float | None = None
    last: OSError = ConnectionRefusedError("not tried")
    delay = 0.01
    while True:
        now = time.monotonic()
        try:
            return register_node(name, port, epmd_port=port_no, timeout=max(0.05, min(REPLY_TIMEOUT, deadline - now)))
        except ConnectionRefusedError as exc:
            last = exc
            if start and (started_at is None or now - started_at > RESTART_INTERVAL):
                start_port_mapper(port_no)
                started_at = time.monotonic()
        except OSError as exc:  # reset or hung up: a port mapper exiting as we came, or still starting
            last = exc
        if time.monotonic() + delay > deadline:
            raise TimeoutError(f"cannot register {name!r} with a port mapper on port {port_no}: {last}") from last
        time.sleep(delay)  # back off while the port mapper starts
        delay = min(2 * delay, 0.2)


# == Server: erts/epmd/src/epmd_srv.c ===============================================


@dataclass(eq=False)
class _Conn:
    """One client connection of the server.

    Erlang: none (epmd_int.h: the Connection struct)

    ``buf`` holds the request read so far (its 2-byte length included),
    ``want`` its full size once the length is known (0 before). ``keep``
    is set once the connection holds a registration: it then only waits
    for its close. ``out`` holds reply bytes not yet sent; ``done`` means
    the request was answered and the connection closes once ``out`` is sent.
    """

    sock: socket.socket
    local_peer: bool  # from 127.x.x.x or from this host's own address: may register, kill, dump
    mod_time: float  # monotonic time of the last read: the idle timeout counts from it
    buf: bytearray = field(default_factory=bytearray)
    want: int = 0
    keep: bool = False
    out: bytearray = field(default_factory=bytearray)
    done: bool = False
    open: bool = True


@dataclass(eq=False)
class _Node:
    """A registered (or remembered) node name.

    Erlang: none (epmd_int.h: struct enode)

    ``cr_counter`` makes the creations: it survives the node's
    unregistration so that the next registration of the name gets a new one.
    """

    info: NodeInfo
    conn: _Conn | None  # the registration's connection; None once unregistered
    fd: int  # the socket's number, for DUMP as epmd shows it
    cr_counter: int

    def bump_creation(self) -> None:
        """Step the counter to the next creation, never below 4.

        Erlang: none (epmd_srv.c: bump_creation/1)

        Creations 1 to 3 are what older nodes get (below), so a counter
        that wraps skips them.
        """
        self.cr_counter = (self.cr_counter + 1) & 0xFFFFFFFF
        if self.cr_counter < 4:
            self.cr_counter = 4

    def creation(self) -> int:
        """Return this registration's creation: the counter, or 1..3 for a node older than version 6.

        Erlang: none (epmd_srv.c: get_creation/1)
        """
        if self.info.highvsn >= 6:
            return self.cr_counter
        return self.cr_counter % 3 + 1


_LISTENER = "listener"  # selector data of a listening socket
_WAKE = "wake"  # selector data of the socket close() writes to


class PortMapper:
    """A port mapper speaking epmd's protocol: names to ports while each node lives.

    Erlang: none (epmd is a C program: erts/epmd/src/epmd_srv.c)

    ``port`` 0 picks a free port (read it back from ``.port``).
    ``addresses`` None listens on every IPv4 address, as epmd does;
    otherwise on those and on 127.0.0.1 (epmd's ``-address``).
    :meth:`serve_forever` serves until :meth:`close`, a ``KILL_REQ`` that
    epmd would obey, or, with ``linger`` set, until no node has been
    registered for ``linger`` seconds (None: never, as epmd).
    ``relaxed_command_check`` lets ``epmd -kill`` stop it while nodes are
    registered and allows ``epmd -stop``. Requests that are not epmd's,
    too long, cut short or too slow (``packet_timeout``) close their
    connection and nothing else.

    All state belongs to the thread running :meth:`serve_forever`;
    :meth:`close` only sets ``_stop`` and wakes it.
    """

    def __init__(
        self,
        port: int = 0,
        addresses: Sequence[str] | None = None,
        *,
        linger: float | None = None,
        packet_timeout: float = PACKET_TIMEOUT,
        relaxed_command_check: bool = False,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        """Bind the listening sockets.

        Erlang: none (epmd_srv.c: run/1, the part before the select loop)

        Raises:
            OSError: a port is taken (``EADDRINUSE``: another port mapper
            runs there) or an address is not this host's.
        """
        self.linger = linger
        self.packet_timeout = packet_timeout
        self.relaxed_command_check = relaxed_command_check
        self.max_connections = max_connections
        self._selector = selectors.DefaultSelector()
        self._listeners: list[socket.socket] = []
        try:
            for address in _listen_addresses(addresses):
                listener = _listen(address, port)
                port = listener.getsockname()[1]  # with port 0, the others take the first one's
                self._listeners.append(listener)
                self._selector.register(listener, selectors.EVENT_READ, _LISTENER)
        except OSError:
            for listener in self._listeners:
                listener.close()
            self._selector.close()
            raise
        self.port: int = port
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._conns: set[_Conn] = set()
        # Registered names, oldest first (epmd's list has the newest first).
        self._reg: dict[str, _Node] = {}
        # Unregistered names, oldest first: the next registration of one of
        # them bumps its counter; past MAX_UNREG_COUNT the oldest slot is reused.
        self._unreg: collections.OrderedDict[str, _Node] = collections.OrderedDict()
        self._last_change = time.monotonic()  # last time the registry became empty (or start)
        self._stop = threading.Event()
        self._killed = False
        # Guards _serving and _cleaned: close() may run in any thread.
        self._state_lock = threading.Lock()
        self._serving = False
        self._cleaned = False

    def __enter__(self) -> PortMapper:
        """Erlang: none (Python's with statement)"""
        return self

    def __exit__(self, *exc: object) -> None:
        """Erlang: none (Python's with statement)"""
        self.close()

    # -- The loop -------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve until closed, killed, or idle for ``linger`` seconds.

        Erlang: none (epmd_srv.c: run/1, the select loop)
        """
        with self._state_lock:
            if self._cleaned or self._stop.is_set():
                return
            self._serving = True
        try:
            self._run()
        finally:
            self._cleanup()

    def _run(self) -> None:
        """Wait for sockets, serve them, and close connections idle too long.

        Erlang: none (epmd_srv.c: run/1, inside `while(1)`)
        """
        while not self._stop.is_set():
            if self._idle_too_long():
                log.info("no node registered for %s s: the port mapper on port %d exits", self.linger, self.port)
                return
            for key, mask in self._selector.select(timeout=_TICK):
                data = key.data
                if data is _LISTENER:
                    self._do_accept(cast(socket.socket, key.fileobj))
                elif data is _WAKE:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(64)
                elif isinstance(data, _Conn):
                    if mask & selectors.EVENT_WRITE and data.open:
                        self._flush(data)
                    if mask & selectors.EVENT_READ and data.open:
                        self._do_read(data)
                if self._killed:
                    return
            now = time.monotonic()
            for conn in [c for c in self._conns if not c.keep and c.mod_time + self.packet_timeout < now]:
                log.info("closing a connection silent for %s s", self.packet_timeout)
                self._conn_close(conn)

    def _idle_too_long(self) -> bool:
        """Say whether nobody has been registered for ``linger`` seconds.

        Erlang: none (epmd never exits by itself)

        Checked on every turn of the loop, not only when it is quiet:
        lookups arriving often must not keep an unused port mapper alive. A
        client that connects just as it exits is hung up on and retries
        (:func:`ensure_registered` does).
        """
        # DIVERGENCE(D40): epmd stays until `epmd -kill`; ours, started with a
        # linger time, exits that long after its last registration ended.
        if self.linger is None or self._reg:
            return False
        return time.monotonic() - self._last_change > self.linger

    def _do_accept(self, listener: socket.socket) -> None:
        """Accept the waiting clients.

        Erlang: none (epmd_srv.c: do_accept/2 and conn_open/2)
        """
        for _ in range(64):  # then let the others have a turn
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ECONNABORTED, or out of file descriptors: keep serving the others
                log.warning("accept failed: %s", exc)
                return
            if len(self._conns) >= self.max_connections:
                # DIVERGENCE(D45): a fixed cap (epmd: its descriptor limit).
                log.warning("too many connections (%d): refusing one from %s", len(self._conns), peer[0])
                sock.close()
                continue
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock, _is_local_peer(sock, peer), time.monotonic())
            self._conns.add(conn)
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _do_read(self, conn: _Conn) -> None:
        """Read what a client sent; serve the request once it is complete.

        Erlang: none (epmd_srv.c: do_read/2)
        """
        if conn.keep:
            # A registration's connection carries nothing after ALIVE2_REQ:
            # its end, an error, or any byte all end the registration.
            try:
                data = conn.sock.recv(INBUF_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if data:
                log.warning("bytes after a registration (%r): unregistering", data[:32])
            self._conn_close(conn)
            return
        # Before the length is known, read up to the buffer size; epmd
        # refuses a packet whose first read brings more than it announced.
        limit = conn.want if conn.want else INBUF_SIZE - 1
        try:
            data = conn.sock.recv(limit - len(conn.buf))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.info("read error: %s", exc)
            self._conn_close(conn)
            return
        if not data:
            if conn.buf:
                log.warning("connection closed after a partial request of %d bytes", len(conn.buf))
            self._conn_close(conn)
            return
        conn.buf += data
        if conn.want == 0 and len(conn.buf) >= 2:
            # The length does not count itself; epmd's `want` does.
            conn.want = _LENGTH.unpack(conn.buf[:2])[0] + 2
            if conn.want < 3 or conn.want >= INBUF_SIZE:
                log.warning("invalid packet size (%d): closing", conn.want - 2)
                self._conn_close(conn)
                return
            if len(conn.buf) > conn.want:
                log.warning("got %d bytes in packet, expected %d: closing", len(conn.buf) - 2, conn.want - 2)
                self._conn_close(conn)
                return
        conn.mod_time = time.monotonic()
        if conn.want == len(conn.buf):
            self._do_request(conn, bytes(conn.buf[2:]))
            if conn.open and not conn.keep:
                conn.done = True
                self._update_interest(conn)

    # -- Requests -------------------------------------------------------------

    def _do_request(self, conn: _Conn, req: bytes) -> None:
        """Serve one complete request (its length stripped).

        Erlang: none (epmd_srv.c: do_request/5)

        A malformed request gets no answer: the connection is closed, as
        epmd does.
        """
        match req[0]:
            case 120:  # EPMD_ALIVE2_REQ 'x'
                self._alive2_req(conn, req)
            case 122:  # EPMD_PORT2_REQ 'z'
                self._port2_req(conn, req)
            case 110:  # EPMD_NAMES_REQ 'n'
                self._names_req(conn)
            case 100:  # EPMD_DUMP_REQ 'd'
                self._dump_req(conn)
            case 107:  # EPMD_KILL_REQ 'k'
                self._kill_req(conn)
            case 115:  # EPMD_STOP_REQ 's'
                self._stop_req(conn, req)
            case tag:
                log.warning("got garbage (request tag %d): closing", tag)

    def _alive2_req(self, conn: _Conn, req: bytes) -> None:
        """Register a node for as long as this connection stays open.

        Erlang: none (epmd_srv.c: do_request/5, case EPMD_ALIVE2_REQ)

        A malformed packet is dropped unanswered; a name that is taken,
        too long or not UTF-8 gets result 1 and creation 99. The reply is
        ALIVE2_X_RESP (32-bit creation) to a node of version 6 or later,
        ALIVE2_RESP to an older one.
        """
        if not conn.local_peer:
            log.warning("ALIVE2_REQ from a non-local address: closing")
            return
        size = len(req)
        fixed = _ALIVE2_HEAD.size + _LENGTH.size  # 13 bytes: the head up to Nlen, and Elen
        if size <= fixed:  # epmd wants room for at least one more byte
            log.warning("packet too small for request ALIVE2_REQ (%d)", size)
            return
        _tag, eport, nodetype, protocol, highvsn, lowvsn, namelen = _ALIVE2_HEAD.unpack(req[: _ALIVE2_HEAD.size])
        if namelen + fixed > size:
            log.warning("node name size error in ALIVE2_REQ")
            return
        name_end = _ALIVE2_HEAD.size + namelen
        (extralen,) = _LENGTH.unpack(req[name_end : name_end + _LENGTH.size])
        if extralen + namelen + fixed > size:
            log.warning("extra info size error in ALIVE2_REQ")
            return
        raw_name = req[_ALIVE2_HEAD.size : name_end]
        if 0 in raw_name:
            log.warning("node name contains ascii 0 in ALIVE2_REQ")
            return
        extra = req[name_end + _LENGTH.size : name_end + _LENGTH.size + extralen]
        node = self._node_reg2(conn, raw_name, eport, nodetype, protocol, highvsn, lowvsn, extra)
        creation = node.creation() if node is not None else REFUSED_CREATION
        result = 0 if node is not None else 1
        if highvsn >= 6:
            reply = bytes([ALIVE2_X_RESP, result]) + _U32.pack(creation)
        else:
            reply = bytes([ALIVE2_RESP, result]) + _LENGTH.pack(creation & 0xFFFF)
        # DIVERGENCE(D43): epmd keeps the connection of a refused registration
        # open (and exempt from the idle timeout) until the client closes it;
        # we close it after the answer.
        if node is not None:
            conn.keep = True  # from now on only its close matters
        self._reply(conn, reply)

    def _port2_req(self, conn: _Conn, req: bytes) -> None:
        """Answer where a node listens: PORT2_RESP with all it registered, or result 1.

        Erlang: none (epmd_srv.c: do_request/5, case EPMD_PORT2_REQ)
        """
        raw_name = req[1:]
        if raw_name.endswith(b"\0"):  # old clients terminated the name
            raw_name = raw_name[:-1]
        if not raw_name or 0 in raw_name:
            log.warning("empty name or ascii 0 in PORT2_REQ")
            return
        name = _decode_name(raw_name)
        if name is None or len(name) < 1:
            log.warning("invalid node name in PORT2_REQ")
            return
        node = self._reg.get(name)
        if node is None:
            self._reply(conn, bytes([PORT2_RESP, 1]))
            return
        info = node.info
        encoded = info.name.encode("utf-8")
        head = _PORT2_HEAD.pack(info.port, info.node_type, info.protocol, info.highvsn, info.lowvsn, len(encoded))
        extra = _LENGTH.pack(len(info.extra)) + info.extra
        self._reply(conn, bytes([PORT2_RESP, 0]) + head + encoded + extra)

    def _names_req(self, conn: _Conn) -> None:
        """List the registered nodes in epmd's text format, newest first.

        Erlang: none (epmd_srv.c: do_request/5, case EPMD_NAMES_REQ)

        The format is read by ``erl_epmd:names/1`` and printed by
        ``epmd -names``, so it must not change.
        """
        lines = [f"name {name} at port {node.info.port}\n" for name, node in reversed(self._reg.items())]
        self._reply(conn, _U32.pack(self.port) + "".join(lines).encode("utf-8"))

    def _dump_req(self, conn: _Conn) -> None:
        """List registered and remembered names with their sockets, for ``epmd -dump``.

        Erlang: none (epmd_srv.c: do_request/5, case EPMD_DUMP_REQ)
        """
        if not conn.local_peer:
            log.warning("DUMP_REQ from a non-local address: closing")
            return
        lines = [
            f"active name     <{name}> at port {node.info.port}, fd = {node.fd}\n\0"
            for name, node in reversed(self._reg.items())
        ]
        lines += [
            f"old/unused name <{name}>, port = {node.info.port}, fd = {node.fd} \n\0"
            for name, node in self._unreg.items()
        ]
        self._reply(conn, _U32.pack(self.port) + "".join(lines).encode("utf-8"))

    def _kill_req(self, conn: _Conn) -> None:
        """Exit if no node is registered (or checks are relaxed); else answer NO.

        Erlang: none (epmd_srv.c: do_request/5, case EPMD_KILL_REQ)
        """
        if not conn.local_peer:
            log.warning("KILL_REQ from a non-local address: closing")
            return
        if not self.relaxed_command_check and self._reg:
            log.warning("disallowed KILL_REQ: nodes are registered")
            self._reply(conn, b"NO")
            return
        self._reply(conn, b"OK")
        log.info("got KILL_REQ: the port mapper on port %d exits", self.port)
        self._killed = True

    def _stop_req(self, conn: _Conn, req: bytes) -> None:
        """Drop a registration by name (closing its connection), if checks are relaxed.

        Erlang: none (epmd_srv.c: do_request/5, case EPMD_STOP_REQ)

        epmd sends ``NOEXIST`` and then ``STOPPED`` for an unknown name; its
        client reads the first seven bytes only, and so do we: one answer.
        """
        if not conn.local_peer or not self.relaxed_command_check:
            log.warning("disallowed STOP_REQ (non-local, or checks not relaxed)")
            return
        if len(req) <= 1:
            log.warning("packet too small for request STOP_REQ")
            return
        name = _decode_name(req[1:].split(b"\0", 1)[0])
        node = self._reg.get(name) if name is not None else None
        if node is None or node.conn is None:
            # DIVERGENCE(D44): epmd follows NOEXIST with STOPPED; its client
            # reads seven bytes, so only NOEXIST is ever seen.
            self._reply(conn, b"NOEXIST")
            return
        self._conn_close(node.conn)
        self._reply(conn, b"STOPPED")

    # -- Connections and the registry ----------------------------------------

    def _reply(self, conn: _Conn, data: bytes) -> None:
        """Queue a reply and send what the socket takes now.

        Erlang: none (epmd_srv.c: reply/4)

        epmd writes replies with blocking writes; here a client that does
        not read only fills its own buffer, and never stalls the others.
        """
        conn.out += data
        self._flush(conn)

    def _flush(self, conn: _Conn) -> None:
        """Send queued reply bytes; close the connection if it is answered and drained.

        Erlang: none (epmd_srv.c: reply/4)
        """
        while conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                log.info("failed to send a reply: %s", exc)
                self._conn_close(conn)
                return
            del conn.out[:sent]
        self._update_interest(conn)

    def _update_interest(self, conn: _Conn) -> None:
        """Watch a connection for what it waits on, or close it if nothing is left.

        Erlang: none (epmd_srv.c: the FD_SET/FD_CLR bookkeeping)
        """
        if not conn.open:
            return
        if conn.done and not conn.out:
            self._conn_close(conn)
            return
        events = (0 if conn.done else selectors.EVENT_READ) | (selectors.EVENT_WRITE if conn.out else 0)
        self._selector.modify(conn.sock, events, conn)

    def _conn_close(self, conn: _Conn) -> None:
        """Close a connection, ending the registration it holds.

        Erlang: none (epmd_srv.c: node_unreg_sock/2 and epmd_conn_close/2)
        """
        if not conn.open:
            return
        conn.open = False
        self._node_unreg_sock(conn)
        self._conns.discard(conn)
        with contextlib.suppress(OSError):
            self._selector.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def _node_reg2(
        self,
        conn: _Conn,
        raw_name: bytes,
        port: int,
        nodetype: int,
        protocol: int,
        highvsn: int,
        lowvsn: int,
        extra: bytes,
    ) -> _Node | None:
        """Register a name, reusing its remembered slot (and counter) if there is one.

        Erlang: none (epmd_srv.c: node_reg2/11)

        Returns None when the name is too long, not UTF-8, longer than 255
        characters, its extra data too long, or it is registered already.
        A new name's counter starts at the current Unix time, so that a
        port mapper started again does not hand out the creations of the
        last one; a remembered name's counter steps on. When more than
        ``MAX_UNREG_COUNT`` names are remembered, the oldest slot is reused
        with its counter as it is.
        """
        if len(raw_name) > MAXSYMLEN:
            log.warning("node name is too long (%d)", len(raw_name))
            return None
        name = _decode_name(raw_name)
        if name is None:
            log.warning("invalid node name encoding, or more than 255 characters")
            return None
        if len(extra) > MAXSYMLEN:
            log.warning("extra data is too long (%d)", len(extra))
            return None
        if name in self._reg:
            log.warning("node name already occupied: %s", name)
            return None
        node = self._unreg.pop(name, None)
        if node is not None:
            node.bump_creation()
        elif len(self._unreg) > MAX_UNREG_COUNT:
            _old_name, node = self._unreg.popitem(last=False)
        else:
            node = _Node(NodeInfo(name, port), None, -1, int(time.time()) & 0xFFFFFFFF)
            node.bump_creation()
        node.info = NodeInfo(name, port, nodetype, protocol, highvsn, lowvsn, extra)
        node.conn = conn
        node.fd = conn.sock.fileno()
        self._reg[name] = node
        log.info("registered %s at port %d, creation %d", name, port, node.creation())
        return node

    def _node_unreg_sock(self, conn: _Conn) -> None:
        """Move the name registered over ``conn`` (if any) to the remembered names.

        Erlang: none (epmd_srv.c: node_unreg_sock/2)
        """
        name = next((n for n, node in self._reg.items() if node.conn is conn), None)
        if name is None:
            return
        node = self._reg.pop(name)
        node.conn = None
        self._unreg[name] = node
        if not self._reg:
            self._last_change = time.monotonic()
        log.info("unregistered %s (creation %d), port %d", name, node.creation(), node.info.port)

    # -- Stopping -------------------------------------------------------------

    def close(self) -> None:
        """Stop serving; every registration ends with its connection.

        Erlang: none (epmd_cleanup_exit/2, what `epmd -kill` ends in)

        From any thread: the serving thread notices within one select.
        """
        self._stop.set()
        with self._state_lock:
            serving = self._serving
        if serving:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        else:
            self._cleanup()

    def _cleanup(self) -> None:
        """Close every socket, once.

        Erlang: none (epmd.c: epmd_cleanup_exit/2)
        """
        with self._state_lock:
            if self._cleaned:
                return
            self._cleaned = True
        self._stop.set()
        for conn in list(self._conns):
            self._conn_close(conn)
        for sock in (*self._listeners, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                sock.close()
        self._selector.close()


def _decode_name(raw: bytes) -> str | None:
    """Decode a node name as epmd accepts it: UTF-8, at most 255 characters; None otherwise.

    Erlang: none (epmd_srv.c: verify_utf8/3)

    Python's strict decoder refuses what epmd's check refuses: overlong
    forms, surrogates and code points past U+10FFFF.
    """
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return name if len(name) <= 255 else None


def _listen_addresses(addresses: Sequence[str] | None) -> list[str]:
    """Return the addresses to listen on: all, or the given ones and the loopback.

    Erlang: none (epmd_srv.c: run/1, ERL_EPMD_ADDRESS and -address)
    """
    if not addresses:
        return ["0.0.0.0"]
    chosen = ["127.0.0.1"]
    for address in addresses:
        if not ipaddress.ip_address(address).is_loopback and address not in chosen:
            chosen.append(address)
    return chosen


def _listen(address: str, port: int) -> socket.socket:
    """Open a listening socket that no second port mapper can share.

    Erlang: none (epmd_srv.c: run/1, socket/bind/listen)

    ``SO_REUSEADDR`` lets a restarted port mapper bind at once while old
    connections linger in TIME_WAIT; on Windows it would let two bind the
    same port, so there, as in epmd, it is not set, and
    ``SO_EXCLUSIVEADDRUSE`` is.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if sys.platform == "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # pragma: no cover - Windows only
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _is_local_peer(sock: socket.socket, peer: Any) -> bool:
    """Say whether a client connects from this host: from 127.x.x.x or from our own address.

    Erlang: none (epmd_srv.c: conn_local_peer_check/2)
    """
    try:
        theirs = ipaddress.ip_address(str(peer[0]).split("%")[0])
        if theirs.is_loopback:
            return True
        return bool(theirs == ipaddress.ip_address(str(sock.getsockname()[0]).split("%")[0]))
    except (OSError, ValueError):
        return False


# == Command line: epmd.c and epmd_cli.c ==============================================


def _spawn_detached(argv: list[str]) -> None:
    """Start ``python -m repg2.epmd argv`` detached from this process and its terminal.

    Erlang: none (epmd.c: run_daemon/1 forks twice; on Windows it spawns a detached copy)

    No ``os.fork``: a new session on POSIX, ``DETACHED_PROCESS`` on
    Windows. The caller exits right after, so the daemon is nobody's child.
    Its output goes to ``REPG2_EPMD_LOG`` if that names a file.
    """
    log_path = os.environ.get("REPG2_EPMD_LOG")
    out: IO[bytes] | int = subprocess.DEVNULL
    if log_path:
        out = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    try:
        if sys.platform == "win32":
            flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP  # pragma: no cover - Windows only
            subprocess.Popen(  # pragma: no cover - Windows only (the flags exist only there)
                [sys.executable, "-m", "repg2.epmd", *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
                close_fds=True,
                creationflags=flags,
            )
        else:
            subprocess.Popen(
                [sys.executable, "-m", "repg2.epmd", *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
                close_fds=True,
                cwd="/",  # as epmd: hold no directory open
                start_new_session=True,
            )
    finally:
        if not isinstance(out, int):
            out.close()


def _parser() -> argparse.ArgumentParser:
    """Build the command line parser; epmd's single-dash spellings work too.

    Erlang: none (epmd.c: main/2 and usage/1)
    """
    parser = argparse.ArgumentParser(
        prog="python -m repg2.epmd",
        description="Erlang's port mapper (epmd) in Python: run one, or ask the one that runs.",
        epilog="Environment: ERL_EPMD_PORT (port), ERL_EPMD_ADDRESS (addresses), "
        "ERL_EPMD_RELAXED_COMMAND_CHECK (set: as -relaxed_command_check), "
        "REPG2_EPMD_LOG (with --daemon: the daemon's log file).",
        allow_abbrev=False,
    )
    parser.add_argument("--port", "-port", type=int, default=None, help="TCP port (default: $ERL_EPMD_PORT, else 4369)")
    parser.add_argument(
        "--address",
        "-address",
        default=os.environ.get("ERL_EPMD_ADDRESS"),
        help="listen only on these comma-separated IPv4 addresses and the loopback (default: all)",
    )
    parser.add_argument(
        "--linger",
        type=float,
        default=None,
        metavar="S",
        help="exit S seconds after the last registration ends (default: never, as epmd)",
    )
    parser.add_argument(
        "--packet-timeout",
        "-packet_timeout",
        type=float,
        default=PACKET_TIMEOUT,
        metavar="S",
        help="close a connection silent for S seconds that registered nothing (default 60)",
    )
    parser.add_argument(
        "--relaxed-command-check",
        "-relaxed_command_check",
        action="store_true",
        default=bool(os.environ.get("ERL_EPMD_RELAXED_COMMAND_CHECK")),
        help="allow --kill while nodes are registered, and --stop",
    )
    parser.add_argument("--daemon", "-daemon", action="store_true", help="run detached, in the background")
    parser.add_argument("-d", "--debug", "-debug", action="count", default=0, help="log to stderr (twice: more)")
    ask = parser.add_mutually_exclusive_group()
    ask.add_argument("--names", "-names", action="store_true", help="list the names registered with the running one")
    ask.add_argument("--dump", "-dump", action="store_true", help="list registered and remembered names")
    ask.add_argument("--kill", "-kill", action="store_true", help="stop the running one (if no node is registered)")
    ask.add_argument("--stop", "-stop", metavar="NAME", help="drop NAME's registration (relaxed checks only)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a port mapper, or ask the running one, as the ``epmd`` program does.

    Erlang: none (epmd.c: main/2; epmd_cli.c for -names, -dump, -kill, -stop)

    Exit status as epmd's: 0 when served (or when another port mapper
    already holds the port, since then one runs), 1 on failure.
    """
    args = _parser().parse_args(argv)
    port = epmd_port() if args.port is None else args.port
    if args.names or args.dump or args.kill or args.stop is not None:
        return _client_command(args, port)
    if args.daemon:
        rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--daemon", "-daemon")]
        _spawn_detached([*rest, "--port", str(port)])
        return 0
    level = logging.WARNING if args.debug == 0 else logging.INFO if args.debug == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s epmd[%(process)d] %(message)s")
    addresses = [a for a in (args.address or "").replace(",", " ").split() if a]
    try:
        mapper = PortMapper(
            port,
            addresses or None,
            linger=args.linger,
            packet_timeout=args.packet_timeout,
            relaxed_command_check=args.relaxed_command_check,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            log.info("there is already a port mapper running at port %d", port)
            return 0
        log.error("cannot listen on port %d: %s", port, exc)
        return 1
    try:
        mapper.serve_forever()
    except KeyboardInterrupt:
        mapper.close()
    return 0


def _client_command(args: argparse.Namespace, port: int) -> int:
    """Run ``--names``, ``--dump``, ``--kill`` or ``--stop`` and print as epmd prints.

    Erlang: none (epmd_cli.c: epmd_call/2, kill_epmd/1, stop_cli/2)
    """
    try:
        if args.kill:
            if kill(epmd_port=port):
                print("Killed")
                return 0
            print("Killing not allowed - living nodes in database.")
            return 1
        if args.stop is not None:
            print(_stop_name(args.stop, epmd_port=port))
            return 0
        their_port, text = _epmd_call(NAMES_REQ if args.names else DUMP_REQ, port)
    except EpmdError as exc:
        print(f"epmd: {exc}")
        return 1
    except OSError:
        print("epmd: Cannot connect to local epmd", file=sys.stderr)
        return 1
    sys.stdout.write(f"epmd: up and running on port {their_port} with data:\n")
    sys.stdout.write(text.replace(b"\0", b"").decode("utf-8", "replace"))
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a program
    sys.exit(main())
