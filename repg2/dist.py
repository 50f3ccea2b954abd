"""The distribution carrier: connections between nodes, speaking Erlang/OTP 25's own protocol.

Follows ``lib/kernel/src/inet_tcp_dist.erl`` (listen, accept, set up a
connection), the connection loop of ``lib/kernel/src/dist_util.erl`` (ticks)
and the runtime's half of the distribution (``erts/emulator/beam/dist.c``:
the control messages). The handshake is :mod:`repg2.dist_util`, the port
mapper :mod:`repg2.epmd`, the term format :mod:`repg2.external`; this module
puts them together and is the runtime's :class:`repg2.erlang.DistHook`.
:mod:`repg2.net_kernel` is the public face.

A RePy2 node is an Erlang node as far as any other node can tell: an OTP 25
node connects to it, sends it messages, links and monitors its processes and
calls its ``rex``, and the other way round; two RePy2 nodes talk exactly as
two Erlang nodes do.

Ported:

- listening on a port of the range ``inet_dist_listen_min``..``max`` (here
  ``REPG2_DIST_LISTEN_MIN``/``MAX``), registering with the port mapper
  (``epmd.ensure_registered``: the real ``epmd`` where Erlang is installed),
  and taking the *creation* it hands out;
- connection setup both ways through ``dist_util``'s handshake, connect on
  demand (a send, link or monitor to an unconnected node connects first,
  within ``net_setuptime``), one connection per pair of nodes, simultaneous
  connects resolved as ``net_kernel`` resolves them;
- frames: a 4-byte length, then ``112`` ("pass through": no atom cache),
  then the control message and, for the message-carrying ones, the message,
  each in the external term format; an empty frame is a tick;
- the control messages a node with our flags receives and sends:
  ``LINK`` (1), ``SEND`` (2), ``EXIT`` (3), ``UNLINK`` (4), ``REG_SEND`` (6),
  ``GROUP_LEADER`` (7, ignored), ``EXIT2`` (8), the ``_TT`` trace-token
  variants (12, 13, 16, 18, 23, 34: the token is dropped), ``MONITOR_P``
  (19), ``DEMONITOR_P`` (20), ``MONITOR_P_EXIT`` (21), ``SEND_SENDER`` (22),
  ``ALIAS_SEND`` (33), ``UNLINK_ID`` (35) and ``UNLINK_ID_ACK`` (36), and
  ``SPAWN_REQUEST`` (29, 30) answered with ``SPAWN_REPLY`` (31): OTP 25's
  ``rpc:call`` is one;
- ticks under ``net_ticktime`` (a tick when nothing was written for a
  quarter of it; down when nothing was read for all of it), ``nodes()``,
  ``disconnect_node``, ``nodeup``/``nodedown`` in the order of each node's
  connections.

Left out: hidden nodes, the atom cache and fragmented messages (never
negotiated), the ``PAYLOAD_*`` exits (``DFLAG_EXIT_PAYLOAD`` is not
advertised, so exit reasons travel in the classic control messages),
making spawn requests of our own (``SPAWN_REQUEST`` is answered, never
sent: a Python process spawns remotely through the harness or an rpc),
``inet6``/TLS carriers, ``dist_auto_connect`` options.

How it works
------------
A node listens on a TCP port of the host in its name and registers
``alive -> port`` with that host's port mapper over a connection it keeps
open. A peer asks the port mapper for the port, dials, and the two run the
handshake; then each side has a reader thread per connection, which decodes
each frame and hands the control message to the runtime's ``erlang._dist_*``
entry points in arrival order. Writers take the connection's lock for one
``sendall``, so frames never interleave, and messages between two processes
arrive in the order sent. Nothing a peer sends is decoded before it has
proved the cookie, and decoding runs no code (``repg2.external``): a frame
that does not decode takes the connection down, and the node keeps serving.
So does a control message that decodes but has no valid shape (OTP's
"invalid distribution message": a field of the wrong type, a signal from a
pid that is not the peer's or to a pid that is not this node's); a message
to a pid of another node is dropped, never relayed.

Differences from OTP (see ``TRANSLATION_NOTES.md``; each is marked
``# DIVERGENCE(Dn)`` where it is made):

- Transitive connections: after a connection comes up, a process asks the
  new peer's ``rex`` for its ``nodes()`` and connects to those this node
  lacks, and asks the other nodes it knows to connect to the newcomer
  (D26). OTP leaves this to ``global``, which is not ported.
- Partitions for the test harness: ``block``/``unblock`` refuse and cut
  connections with chosen nodes (D27).
- One ticker for every connection (D28).
- Exit reasons that are no Erlang term (a Python exception) travel as a
  term that describes them (D24).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from repg2 import dist_util as du
from repg2 import epmd, erlang, external
from repg2.erlang import Pid, Ref

__all__ = [
    "DEFAULT_SETUPTIME",
    "DEFAULT_TICKTIME",
    "MAX_FRAME",
    "Distribution",
    "HandshakeError",
    "InvalidMessage",
    "Op",
    "block",
    "current",
    "listen_port_range",
    "split_node",
    "unblock",
]

log = logging.getLogger("repg2.dist")

# -- Constants, each with its reason -----------------------------------------
DEFAULT_TICKTIME = 60.0  # seconds, OTP's net_ticktime default
DEFAULT_SETUPTIME = 7.0  # seconds for a connection setup, OTP's net_setuptime default
MAX_FRAME = du.MAX_FRAME  # 64 MiB: a bigger frame is an attack or a bug; refuse it
PASS_THROUGH = 112  # the byte that opens a frame sent without the distribution header ('p')
_HEADER = struct.Struct(">I")  # the 4-byte big-endian length of every frame after the handshake
_TICK = _HEADER.pack(0)  # an empty frame: dist_util's tick
_PASS = bytes([PASS_THROUGH])
# Per thread: while a Distribution.corked() block runs, its frames held back,
# by connection (``batch``); None otherwise. Only its own thread touches it.
_corks = threading.local()
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")  # the "alive" part of a node name
_HOST_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")

HandshakeError = du.HandshakeError


class InvalidMessage(Exception):
    """A control message that decodes but has no valid shape: the connection it came on is closed.

    Erlang: none (dist.c: erts_net_message/5's invalid_message, which logs and kills the connection)

    A field of the wrong type, a signal from a pid that is not the peer's,
    to a pid that is not this node's, or an unknown operation.
    """


class Op:
    """The operation numbers of the control messages (the ``DOP_*`` constants of ``dist.h``).

    Erlang: none (the DOP_* constants of erts/emulator/beam/dist.h)

    The shape of each control message, ``Unused`` being the empty atom
    ``''``, and ``+ Msg`` marking a message that follows the control tuple
    in the same frame.
    """

    LINK = 1  # {1, FromPid, ToPid}
    SEND = 2  # {2, Unused, ToPid} + Msg
    EXIT = 3  # {3, FromPid, ToPid, Reason}: a link broke
    UNLINK = 4  # {4, FromPid, ToPid}: the old unlink (a peer without UNLINK_ID)
    REG_SEND = 6  # {6, FromPid, Unused, ToName} + Msg
    GROUP_LEADER = 7  # {7, FromPid, ToPid}
    EXIT2 = 8  # {8, FromPid, ToPid, Reason}: erlang:exit/2
    SEND_TT = 12  # {12, Unused, ToPid, TraceToken} + Msg
    EXIT_TT = 13  # {13, FromPid, ToPid, TraceToken, Reason}
    REG_SEND_TT = 16  # {16, FromPid, Unused, ToName, TraceToken} + Msg
    EXIT2_TT = 18  # {18, FromPid, ToPid, TraceToken, Reason}
    MONITOR_P = 19  # {19, FromPid, ToProc, Ref}: ToProc a pid or a registered name
    DEMONITOR_P = 20  # {20, FromPid, ToProc, Ref}
    MONITOR_P_EXIT = 21  # {21, FromProc, ToPid, Ref, Reason}
    SEND_SENDER = 22  # {22, FromPid, ToPid} + Msg
    SEND_SENDER_TT = 23  # {23, FromPid, ToPid, TraceToken} + Msg
    SPAWN_REQUEST = 29  # {29, ReqId, From, GroupLeader, {M, F, Arity}, OptList} + ArgList
    SPAWN_REQUEST_TT = 30  # {30, ReqId, From, GroupLeader, {M, F, Arity}, OptList, Token} + ArgList
    SPAWN_REPLY = 31  # {31, ReqId, To, Flags, Result}: Result the new pid (or an error atom)
    ALIAS_SEND = 33  # {33, FromPid, Alias} + Msg: to a process alias (a reference)
    ALIAS_SEND_TT = 34  # {34, FromPid, Alias, TraceToken} + Msg
    UNLINK_ID = 35  # {35, Id, FromPid, ToPid}
    UNLINK_ID_ACK = 36  # {36, Id, FromPid, ToPid}


# The control messages that a message follows, in the same frame.
_WITH_MESSAGE = frozenset(
    {Op.SEND, Op.REG_SEND, Op.SEND_TT, Op.REG_SEND_TT, Op.SPAWN_REQUEST, Op.SPAWN_REQUEST_TT}
    | {Op.SEND_SENDER, Op.SEND_SENDER_TT, Op.ALIAS_SEND, Op.ALIAS_SEND_TT}
)
SPAWN_LINKED = 1  # SPAWN_REPLY's flag: a link between the requester and the new process was set up
SPAWN_MONITORED = 2  # SPAWN_REPLY's flag: the requester monitors the new process, with ReqId as reference


# == Names, ports and frames ==================================================


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
    """Bind to the first free port of the range (any port for ``(0, 0)``).

    Erlang: inet_tcp_dist:do_listen/2
    """
    first, last = ports
    for port in range(first, last + 1):
        try:
            listener.bind((addr[0], port, *addr[2:]))
            return
        except OSError:
            if port == last:
                raise
    raise OSError(f"no free port in {first}..{last}")  # pragma: no cover - an empty range


def _frame(control: tuple[Any, ...], message: Any = None, with_message: bool = False) -> bytes:
    """Encode one frame's body: the pass-through byte, the control message and maybe a message.

    Erlang: none (dist.c: dsig_send encodes the control message and the payload)

    Raises:
        TypeError: the message (or a pid, reason...) has no Erlang form; it
        is refused at the send, as DESIGN.md promises.
    """
    out = bytearray(_PASS)
    external.encode(control, out)
    if with_message:
        external.encode(message, out)
    return bytes(out)


def _nodelay(sock: socket.socket) -> socket.socket:
    """Turn off Nagle's algorithm on a TCP socket and return it.

    Erlang: none (inet_tcp_dist sets {nodelay, true} on its sockets)
    """
    return du.nodelay(sock)


# == Connections =====================================================================


class Connection:
    """One authenticated TCP connection to another node.

    Erlang: none (the dist entry and the connection owner process of dist_util)

    ``wlock`` serialises writers so frames never interleave; ``last_recv``
    and ``last_send`` (monotonic seconds) drive the ticks; ``flags`` are the
    distribution flags both sides agreed on.
    """

    def __init__(self, sock: socket.socket, node: str, creation: int, flags: int) -> None:
        """Erlang: none (dist_util:do_setnode/1 creates the dist entry)"""
        self.sock = sock
        self.node = node
        self.creation = creation
        self.flags = flags
        self.send_sender = bool(flags & du.DFLAG_SEND_SENDER)
        self.unlink_id = bool(flags & du.DFLAG_UNLINK_ID)
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
        self.cookie = cookie.encode("latin-1") if isinstance(cookie, str) else bytes(cookie)
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
        self._unlink_ids = iter(range(1, 1 << 64))  # UNLINK_ID ids: unique per node (next() is atomic)
        self._cork = _Cork(self)

    # -- Starting and stopping ---------------------------------------------------

    def start(self) -> None:
        """Listen, register with the port mapper, become the runtime's distribution.

        Erlang: inet_tcp_dist:listen/1
        Erlang: erl_epmd:register_node/2
        Erlang: net_kernel:init/1 (the part that starts listening)

        The node takes its name and creation only after the port mapper
        accepted the name, and accepts connections only after that, so no
        peer ever sees a half-named node.

        Raises:
            OSError: no port to listen on, or no port mapper.
            epmd.DuplicateName: a node of that name is registered already.
        """
        family, _, _, _, addr = socket.getaddrinfo(self.host, 0, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        if os.name == "posix":
            # inet_tcp_dist listens with {reuseaddr, true}: a node restarted on a pinned port must not
            # wait out the old connections' TIME_WAIT. (On Windows the option means "share the port".)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            _bind_in_range(listener, addr, listen_port_range())
            listener.listen(128)
            port = listener.getsockname()[1]
            self._epmd_sock, self.creation = epmd.ensure_registered(self.alive, port, timeout=self.setuptime + 8)
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
            with contextlib.suppress(OSError):
                _nodelay(socket.create_connection(listener.getsockname()[:2], timeout=1)).close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        if listener is not None:
            listener.close()
        for conn in conns:
            self._teardown(conn, "shutdown")
        if self._epmd_sock is not None:
            self._epmd_sock.close()  # the name is free at the port mapper from now on
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

        Erlang: none (dist.c: erts_dsig_send_msg: SEND_SENDER, or SEND to a peer without it)

        Raises:
            TypeError: ``msg`` has no Erlang form (nothing is sent).
        """
        conn = self._ensure(to.node)
        if conn is None:
            _check_encodable(msg)  # an unreachable node drops the message, but a bad message is still refused
            return
        if conn.send_sender and sender is not None:
            data = _frame((Op.SEND_SENDER, sender, to), msg, True)
        else:
            data = _frame((Op.SEND, "", to), msg, True)
        self._write(conn, data)

    def reg_send(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        """Send a message to a name registered on another node.

        Erlang: none (dist.c: erts_dsig_send_reg_msg: REG_SEND)

        A sender that is no process (a plain thread) sends as this node's
        ``net_kernel`` ticker would: Erlang demands a pid in the control message.
        """
        conn = self._ensure(node)
        if conn is None:
            _check_encodable(msg)
            return
        frm = sender if sender is not None else _anonymous_sender()
        self._write(conn, _frame((Op.REG_SEND, frm, "", name), msg, True))

    def alias_send(self, sender: Pid | None, alias: Ref, msg: Any) -> None:
        """Send a message to a process alias (a reference) on another node.

        Erlang: none (dist.c: ALIAS_SEND; OTP 24's gen:call replies this way)
        """
        conn = self._ensure(alias.node)
        if conn is None:
            return
        frm = sender if sender is not None else _anonymous_sender()
        self._write(conn, _frame((Op.ALIAS_SEND, frm, alias), msg, True))

    def link(self, frm: Pid, to: Pid) -> None:
        """Link a local process to a remote one; 'noconnection' if its node is unreachable.

        Erlang: none (dist.c: erts_dsig_send_link: LINK)
        """
        conn = self._ensure(to.node)
        if conn is None:
            erlang._dist_exit(to, frm, "noconnection", True)
        else:
            self._write(conn, _frame((Op.LINK, frm, to)))

    def unlink(self, frm: Pid, to: Pid) -> None:
        """Remove a link to a remote process (nothing to do if its node is gone).

        Erlang: none (dist.c: UNLINK_ID with a fresh id, or UNLINK to a peer without the unlink protocol)
        """
        conn = self._conns.get(to.node)
        if conn is None:
            return
        if conn.unlink_id:
            self._write(conn, _frame((Op.UNLINK_ID, next(self._unlink_ids), frm, to)))
        else:
            self._write(conn, _frame((Op.UNLINK, frm, to)))

    def exit(self, frm: Pid, to: Pid, reason: Any, linked: bool) -> None:
        """Send an exit signal to a remote process.

        Erlang: none (dist.c: EXIT for a broken link, EXIT2 for erlang:exit/2)

        A link's signal needs no new connection: had the connection gone
        down, the runtime would already have broken the link with
        'noconnection'. ``erlang:exit/2`` connects on demand, like a send.
        """
        conn = self._conns.get(to.node) if linked else self._ensure(to.node)
        if conn is not None:
            op = Op.EXIT if linked else Op.EXIT2
            self._write(conn, _frame((op, frm, to, external.portable(reason))))

    def monitor(self, watcher: Pid, target: Any, ref: Ref) -> bool:
        """Ask a remote node to monitor a process for us; False if it cannot be reached.

        Erlang: none (dist.c: erts_dsig_send_monitor: MONITOR_P)

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
        self._write(conn, _frame((Op.MONITOR_P, watcher, wire, ref)))
        return True

    def demonitor(self, watcher: Pid, target: Any, ref: Ref) -> None:
        """Drop a monitor held on a remote process (nothing to do if its node is gone).

        Erlang: none (dist.c: erts_dsig_send_demonitor: DEMONITOR_P)
        """
        node = target[1] if isinstance(target, tuple) else target.node
        conn = self._conns.get(node)
        if conn is not None:
            wire = target[0] if isinstance(target, tuple) else target
            self._write(conn, _frame((Op.DEMONITOR_P, watcher, wire, ref)))

    def monitor_exit(self, target: Any, watcher: Pid, ref: Ref, reason: Any) -> None:
        """Tell a remote watcher that the local process it monitors has ended.

        Erlang: none (dist.c: erts_dsig_send_m_exit: MONITOR_P_EXIT)

        A monitor by name reports the name, as the 'DOWN' item it becomes on
        the watcher's side is ``{Name, Node}``.
        """
        conn = self._conns.get(watcher.node)
        if conn is not None:
            wire = target[0] if isinstance(target, tuple) else target
            self._write(conn, _frame((Op.MONITOR_P_EXIT, wire, watcher, ref, external.portable(reason))))

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
        lost = False
        try:
            self._dial(node, pend, deadline)
        except du.LostRace:
            lost = True
        except (du.HandshakeError, OSError, ValueError) as exc:
            log.warning("connection to node %s failed: %s", node, exc)
        if lost:
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

    def _dial(self, node: str, pend: _Pending, deadline: float) -> None:
        """Find ``node``'s port, connect, run the handshake as the initiator, and start reading.

        Erlang: inet_tcp_dist:do_setup/6
        Erlang: dist_util:handshake_we_started/1

        Raises:
            du.LostRace: the peer won a simultaneous connect, or still holds
                a connection with us that we hold too.
            du.HandshakeError, OSError: the setup failed; the message says why.
        """
        alive, host = split_node(node)
        remaining = max(0.05, deadline - time.monotonic())
        try:
            found = epmd.port_please(alive, host, timeout=remaining)
        except OSError as exc:
            raise du.HandshakeError(f"no port mapper answers on {host}: {exc}", "no_epmd") from None
        if found is None:
            raise du.HandshakeError(f"no node {alive!r} is registered with the port mapper of {host}", "noport")
        sock = _nodelay(socket.create_connection((host, found[0]), timeout=max(0.05, deadline - time.monotonic())))
        try:
            result = du.handshake_we_started(
                sock,
                this_node=self.name,
                other_node=node,
                cookie=self.cookie,
                creation=self.creation,
                # 'alive' from the peer: go on only if we hold no connection to it
                is_pending=lambda other: other not in self._conns and not pend.incoming,
                deadline=deadline,
            )
            sock.settimeout(None)
            conn = Connection(sock, node, result.creation, result.chosen_flags)
            if not self._mark_up(conn):
                raise du.HandshakeError("this node stopped or blocked that node meanwhile", "not_allowed")
        except BaseException:
            sock.close()
            raise
        conn.reader = threading.Thread(target=self._reader_loop, args=(conn,), daemon=True, name=f"dist-{node}")
        conn.reader.start()
        self._after_up(conn)

    def _accept_loop(self) -> None:
        """Accept connections and hand each to its own handshake thread.

        Erlang: inet_tcp_dist:accept_loop/2
        """
        listener = self._listener
        if listener is None:  # pragma: no cover - start() sets it before starting this thread
            return
        while True:
            try:
                sock, _peer = listener.accept()
            except OSError:
                return
            if self._stopped:
                sock.close()
                return
            _nodelay(sock)
            threading.Thread(target=self._accepted, args=(sock,), daemon=True, name="dist-handshake").start()

    def _accepted(self, sock: socket.socket) -> None:
        """Run the handshake another node started; on success become the connection's reader.

        Erlang: inet_tcp_dist:do_accept/6
        Erlang: dist_util:handshake_other_started/1
        """
        owned: dict[str, _Pending] = {}  # the pending setup this handshake owns, by node

        def mark_pending(peer: str) -> du.Status:
            """Erlang: net_kernel:handle_info/2 ({AcceptPid, {accept_pending, MyNode, Node, ...}})"""
            status, pend = self._accept_pending(peer)
            if pend is not None:
                owned[peer] = pend
            return status

        def wait_pending(peer: str) -> None:
            """Erlang: dist_util:wait_pending/1 (the stale connection goes first)"""
            old = self._conns.get(peer)
            if old is not None:
                self._teardown(old, "connection replaced")  # the peer restarted or lost it
            status, pend = self._accept_pending(peer)
            if status not in ("ok", "ok_simultaneous") or pend is None:
                raise du.HandshakeError(f"a third party won the race for {peer}", "not_allowed")
            owned[peer] = pend

        peer = "<unknown>"
        try:
            result = du.handshake_other_started(
                sock,
                this_node=self.name,
                cookie=self.cookie,
                creation=self.creation,
                mark_pending=mark_pending,
                wait_pending=wait_pending,
                deadline=time.monotonic() + self.setuptime,
            )
            peer = result.node
            sock.settimeout(None)
            conn = Connection(sock, peer, result.creation, result.chosen_flags)
            if not self._mark_up(conn):
                sock.close()
                return
            conn.reader = threading.current_thread()
            conn.reader.name = f"dist-{peer}"  # as a dialled connection's reader is named
            pend = owned.pop(peer, None)
            if pend is not None:
                self._finish_pending(peer, pend)
            self._after_up(conn)
            self._reader_loop(conn)
        except du.LostRace as exc:
            log.info("connection from %s not taken: %s", peer, exc)
        except du.HandshakeError as exc:  # a wrong cookie is logged as an error by dist_util, as OTP does
            log.warning("refused a connection: %s", exc)
        except (OSError, ValueError) as exc:
            log.info("connection setup from %s failed: %s", peer, exc)
        finally:
            for node, pend in owned.items():
                self._finish_pending(node, pend)
            if not any(c.sock is sock for c in list(self._conns.values())):
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept_pending(self, peer: str) -> tuple[du.Status, _Pending | None]:
        """Decide what to answer a node that started a handshake with us.

        Erlang: net_kernel:handle_info/2 ({AcceptPid, {accept_pending, MyNode, Node, ...}})

        ``not_allowed`` for a blocked node or a stopped node; ``alive`` if
        we believe we are connected; on a simultaneous connect the node with
        the greater name keeps its own dial (``nok`` to the other's) and the
        smaller one lets the incoming handshake take its pending setup over
        (``ok_simultaneous``); a second incoming handshake for the same node
        is refused (``nok``).
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
            if pend.incoming:
                return "nok", None
            status = du.simultaneous_status(self.name, peer)
            if status == "nok":
                return "nok", None
            pend.incoming = True
            return "ok_simultaneous", pend

    def _finish_pending(self, node: str, pend: _Pending) -> None:
        """End a pending setup and wake whoever waits for it.

        Erlang: net_kernel:reply_waiting/3
        """
        with self._lock:
            if self._pending.get(node) is pend:
                del self._pending[node]
        pend.event.set()

    def _mark_up(self, conn: Connection) -> bool:
        """Make a connection visible: in ``nodes()``, then ``nodeup`` to subscribers.

        Erlang: dist_util:do_setnode/1
        Erlang: net_kernel:handle_info/2 ({SetupPid, {nodeup, Node, ...}})
        """
        self._wait_closing(conn.node, time.monotonic() + 5)
        with self._updown_lock:
            with self._lock:
                if self._stopped or conn.node in self._blocked or conn.node in self._conns:
                    return False
                self._conns[conn.node] = conn
            log.info("nodeup %s (creation %d)", conn.node, conn.creation)
            self._on_nodeup(conn.node)
        return True

    def _after_up(self, conn: Connection) -> None:
        """Connect, in the background, to the nodes the new peer knows and we do not.

        Erlang: global:handle_info/2 ({nodeup, Node}) starts a sync that does this
        """
        # DIVERGENCE(D26): OTP's global connects nodes transitively; here the distribution does,
        # by asking the peer's rex for its nodes(), which an Erlang node answers too.
        if not self._stopped:
            erlang.spawn(_connect_transitively, self, conn.node)

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
                    control, message = _decode_frame(payload)
                except external.DecodeError as exc:
                    log.error("node %s sent a frame that does not decode (%s): closing the connection", conn.node, exc)
                    reason = "bad_frame"
                    break
                try:
                    self._dispatch(conn, control, message)
                except InvalidMessage as exc:  # dist.c: invalid_message, then the connection is killed
                    log.error("%s: closing the connection", exc)
                    reason = "invalid_message"
                    break
                except Exception:  # noqa: BLE001 - a failure of this node's own must not kill the connection
                    log.exception("control message from node %s failed here: %.200r", conn.node, control)
        except (OSError, ValueError) as exc:  # ValueError: read on a file closed under us
            reason = f"connection error: {exc}"
        finally:
            if reader is not None:
                reader.close()  # the socket's descriptor is freed only when its file is closed too
            self._teardown(conn, reason)

    def _dispatch(self, conn: Connection, control: Any, message: Any) -> None:
        """Hand one control message (and its message, if any) to the runtime.

        Erlang: none (dist.c: erts_net_message/5)

        Each control message is checked as the runtime checks it: the
        fields have their types, the pid a signal comes from is one of the
        peer's, and the pid it goes to is one of this node's (an earlier
        incarnation's pid names no process and gets ``noproc`` where a
        signal has an answer). A message to a pid of another node is
        dropped: a node relays nothing. Anything else is an invalid
        distribution message.

        Raises:
            InvalidMessage: the control message has no valid shape; the
            caller closes the connection, as OTP does.
        """
        me, peer = self.name, conn.node
        match control:
            case (
                (Op.SEND_SENDER, _, Pid() as to)
                | (Op.SEND_SENDER_TT, _, Pid() as to, _)
                | (Op.SEND, _, Pid() as to)
                | (Op.SEND_TT, _, Pid() as to, _)
            ):
                if to.node == me:
                    erlang._dist_deliver(to, message)
                else:  # erts_proc_lookup finds no process for a pid of another node
                    log.debug("message from %s to %r, a pid of another node: dropped", peer, to)
            case (Op.REG_SEND, Pid(), _, str() as name) | (Op.REG_SEND_TT, Pid(), _, str() as name, _):
                erlang._dist_deliver_reg(name, message)
            case (Op.ALIAS_SEND, _frm, Ref()) | (Op.ALIAS_SEND_TT, _frm, Ref(), _):
                # We never hand out aliases (our calls tag replies with plain refs): nobody to deliver to.
                log.debug("ALIAS_SEND from %s to an alias this node never made: dropped", peer)
            case (Op.LINK, Pid() as frm, Pid() as to) if frm.node == peer and to.node == me:
                erlang._dist_link(frm, to)
            case (Op.UNLINK, Pid() as frm, Pid() as to) if frm.node == peer and to.node == me:
                erlang._dist_unlink(frm, to)
            case (Op.UNLINK_ID, int() as uid, Pid() as frm, Pid() as to) if frm.node == peer and to.node == me:
                erlang._dist_unlink(frm, to)
                self._write(conn, _frame((Op.UNLINK_ID_ACK, uid, to, frm)))
            case (Op.UNLINK_ID_ACK, int(), Pid() as frm, Pid() as to) if frm.node == peer and to.node == me:
                pass  # our unlink was done locally when we sent it
            case (Op.EXIT, Pid() as frm, Pid() as to, reason) | (Op.EXIT_TT, Pid() as frm, Pid() as to, _, reason) if (
                frm.node == peer and to.node == me
            ):
                erlang._dist_exit(frm, to, reason, True)
            case (Op.EXIT2, Pid() as frm, Pid() as to, reason) | (
                Op.EXIT2_TT,
                Pid() as frm,
                Pid() as to,
                _,
                reason,
            ) if frm.node == peer and to.node == me:
                erlang._dist_exit(frm, to, reason, False)
            case (Op.MONITOR_P, Pid() as watcher, str() | Pid() as target, Ref() as ref) if watcher.node == peer and (
                isinstance(target, str) or target.node == me
            ):  # by name, only the name travels
                erlang._dist_monitor(watcher, (target, me) if isinstance(target, str) else target, ref)
            case (Op.DEMONITOR_P, Pid() as watcher, str() | Pid() as target, Ref() as ref) if watcher.node == peer and (
                isinstance(target, str) or target.node == me
            ):
                erlang._dist_demonitor((target, me) if isinstance(target, str) else target, ref, watcher)
            case (Op.MONITOR_P_EXIT, str() | Pid() as item, Pid() as watcher, Ref() as ref, reason) if (
                watcher.node == me
            ):
                down_item = (item, peer) if isinstance(item, str) else item  # by name: {Name, Node}
                erlang._dist_monitor_exit(down_item, watcher, ref, reason, peer)
            case (Op.SPAWN_REQUEST, Ref() as req, Pid() as frm, Pid(), (str(), str(), int()) as mfa, list(opts)) | (
                Op.SPAWN_REQUEST_TT,
                Ref() as req,
                Pid() as frm,
                Pid(),
                (str(), str(), int()) as mfa,
                list(opts),
                _,
            ):
                self._spawn_request(conn, req, frm, mfa, opts, message)
            case (Op.GROUP_LEADER, Pid(), Pid()):
                pass  # no group leaders here: a remote process's I/O stays on its node
            case _:
                raise InvalidMessage(f"invalid distribution message from node {peer}: {control!r:.200}")

    def _spawn_request(self, conn: Connection, req: Ref, frm: Pid, mfa: Any, opts: list[Any], args: Any) -> None:
        """Spawn the process another node asks for and answer with its pid.

        Erlang: none (erts: the spawning node's half of spawn_request/5)

        OTP 25's ``rpc:call`` is ``erpc:call``, which spawns
        ``erpc:execute_call/4`` on the target node, monitored, and reads the
        result from the exit reason in the ``'DOWN'``; ``rpc:cast`` spawns
        ``erpc:execute_cast/3``. Any module-level function may be spawned
        this way: the module and function are found as ``rex`` finds them
        (``repg2.rpc``), and a function that does not exist makes a process
        that exits with ``undef``, as an Erlang spawn of one does. The
        options this runtime acts on are ``link`` and ``monitor``; the
        others (priority, heap sizes...) mean nothing here and are ignored.
        """
        from repg2 import rpc  # the function lookup of rex; imported here, as only peers' requests need it

        module, function, _arity = mfa
        # OTP 25 applies M:F to the arguments whatever Arity says (measured: {erlang, node, 1} with []
        # runs erlang:node/0), and so do we; only arguments that are no list are refused.
        if not isinstance(args, list):
            self._write(conn, _frame((Op.SPAWN_REPLY, req, frm, 0, "badarg")))
            return
        link = "link" in opts
        monitor = "monitor" in opts or any(isinstance(o, tuple) and o[:1] == ("monitor",) for o in opts)
        flags = (SPAWN_LINKED if link else 0) | (SPAWN_MONITORED if monitor else 0)

        def announce(pid: Pid) -> None:
            """Erlang: none (the SPAWN_REPLY goes out before the new process runs)"""
            self._write(conn, _frame((Op.SPAWN_REPLY, req, frm, flags, pid)))

        erlang._dist_spawn(frm, rpc.spawned_apply, (module, function, args), link, req if monitor else None, announce)

    def _write(self, conn: Connection, data: bytes) -> None:
        """Write one frame; on a dead socket drop it and let the reader take the connection down.

        Erlang: none (the runtime writes to the distribution port)

        Inside :meth:`corked` the frame waits in the calling thread's batch
        and goes out with the others at the end of the block.

        Raises:
            erlang.ErlangError: ``badarg`` for a frame over ``MAX_FRAME``.
        """
        if len(data) > MAX_FRAME:
            # DIVERGENCE(D24): Erlang sends a message of any size; we refuse one no peer would read.
            raise erlang.ErlangError("badarg", f"badarg: a message of {len(data)} bytes exceeds {MAX_FRAME}")
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

    def corked(self) -> AbstractContextManager[None]:
        """Hold back the calling thread's frames until the block ends, then write each node's in one go.

        Erlang: none (the BEAM queues distribution output in the port and writes it in batches)

        ``gen_server`` sends a monitor and a request to each node of a
        ``multi_call`` back to back, and runs every callback corked: a pg
        scope's broadcast, pg2's monitors of a thousand members stored in one
        heal, a reply and the monitor a callback took before it. Written one
        frame per ``sendall``, each costs a system call and a wake-up of the
        peer's reader thread (on a 2-vCPU VM, 20-30 µs of CPU each); corked,
        a node's frames share one write and one wake-up. Order is kept: a
        connection's frames go out in the order they were made, and only the
        corked thread's own frames wait. Blocks nest (the outermost one
        writes); an exception still writes what was sent before it; and a
        corked thread that is about to wait in ``receive`` writes its frames
        first (:meth:`uncork`), so no request waits behind its own caller.
        """
        return self._cork

    def uncork(self) -> None:
        """Write the frames the calling thread holds back now; its block (if any) stays corked.

        Erlang: none (a process that suspends in receive lets the port flush its output)
        """
        batch: dict[Connection, list[bytes]] | None = getattr(_corks, "batch", None)
        if batch:
            pending = list(batch.items())
            batch.clear()
            for conn, frames in pending:
                self._write_all(conn, frames)

    def _write_all(self, conn: Connection, frames: list[bytes]) -> None:
        """Write several frames to one connection with one ``sendall``.

        Erlang: none (the runtime flushes the distribution port's queue)
        """
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


class _Cork:
    """The context manager of :meth:`Distribution.corked`: a depth count and a batch per thread.

    Erlang: none (see Distribution.corked)

    A class rather than a generator: every gen_server callback enters it,
    and a generator-based context manager costs a microsecond or two more
    per entry. The state lives in the thread-local ``_corks``, so one
    instance serves every thread.
    """

    __slots__ = ("_dist",)

    def __init__(self, dist: Distribution) -> None:
        self._dist = dist

    def __enter__(self) -> None:
        depth = getattr(_corks, "depth", 0)
        if depth == 0:
            _corks.batch = {}
        _corks.depth = depth + 1

    def __exit__(self, *exc_info: object) -> None:
        _corks.depth -= 1
        if _corks.depth == 0:
            batch: dict[Connection, list[bytes]] = _corks.batch
            _corks.batch = None
            for conn, frames in batch.items():
                self._dist._write_all(conn, frames)


def _decode_frame(payload: bytes) -> tuple[Any, Any]:
    """Decode a frame's control message and, for the ones that carry one, its message.

    Erlang: none (dist.c: erts_net_message decodes the control message, then the payload)

    Raises:
        external.DecodeError: not a pass-through frame, a control message
        that is not a tuple opening with an operation number, trailing
        bytes, or anything the term decoder refuses.
    """
    if not payload or payload[0] != PASS_THROUGH:
        raise external.DecodeError(
            f"frame does not open with the pass-through byte {PASS_THROUGH}: {payload[:1]!r}", 0, None
        )
    control, end = external.decode(payload, 1)
    op = control[0] if isinstance(control, tuple) and control else None
    if not isinstance(op, int) or isinstance(op, bool):
        raise external.DecodeError(f"control message is not a tuple with an operation number: {control!r:.80}", 1, None)
    message = None
    if control[0] in _WITH_MESSAGE:
        message, end = external.decode(payload, end)
    if end != len(payload):
        raise external.DecodeError(f"{len(payload) - end} bytes after the frame's terms", end, None)
    return control, message


def _check_encodable(msg: Any) -> None:
    """Raise ``TypeError`` if ``msg`` has no Erlang form, though it goes nowhere.

    Erlang: none (a message Erlang could not encode does not exist)
    """
    external.term_to_binary(msg)


def _anonymous_sender() -> Pid:
    """Return the pid a send from outside any process goes out with (a plain thread's sends).

    Erlang: none (every Erlang sender is a process; REG_SEND needs a pid)
    """
    return erlang.self()


def _connect_transitively(distribution: Distribution, peer: str) -> None:
    """Make the new connection's two sides meet every node the other side knows.

    Erlang: none (global's sync does this for Erlang nodes)

    Asks ``peer``'s ``rex`` for its ``erlang:nodes()`` and connects to those
    this node lacks; and casts ``net_kernel:connect_node(peer)`` to every
    other node this node is connected to, so that they meet the newcomer
    too. Both requests are plain rpc, which an Erlang node answers as well
    as a RePy2 node: a cluster of both kinds ends fully connected.
    """
    from repg2 import rpc  # imported here: only a running distribution needs it

    for other in distribution.nodes():
        if other != peer:
            rpc.cast(other, "net_kernel", "connect_node", [peer])
    known = rpc.call(peer, "erlang", "nodes", [], distribution.setuptime)
    if not isinstance(known, list):
        return
    for node in known:
        if isinstance(node, str) and node != distribution.name and node not in distribution.nodes():
            if node not in distribution.blocked():
                distribution.connect(node)


def _shutdown(sock: socket.socket) -> None:
    """Shut a socket down both ways, waking any thread blocked on it.

    Erlang: none (closing the distribution port)
    """
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


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
