"""dist_util: the handshake that opens a connection between two Erlang nodes, as OTP 25 speaks it.

Translates the handshake half of ``lib/kernel/src/dist_util.erl`` of
Erlang/OTP 25.2.3 (kernel 8.5.3), with the flag values of
``lib/kernel/include/dist.hrl``: a RePy2 node and a real OTP 25 node that
share a cookie can connect in either direction. Hold this file beside
``dist_util.erl``: every function names its original in an ``Erlang:`` line.

Ported:

- ``handshake_we_started/1`` and ``handshake_other_started/1`` and the
  steps they are made of: ``send_name``/``recv_name``, the status message
  (``send_status``/``recv_status``/``recv_status_reply``, with the ``alive``
  exchange of ``do_alive``), ``send_challenge``/``recv_challenge``,
  ``send_challenge_reply``/``recv_challenge_reply``,
  ``send_challenge_ack``/``recv_challenge_ack``, ``gen_digest``,
  ``gen_challenge``;
- the distribution flags: ``adjust_flags`` (both sides use the flags both
  advertise), ``expand_mandatory_25_flag`` and ``check_dflags`` (a peer
  without OTP 25's mandatory flags is refused), ``dflag2str``;
- ``mark_pending`` and ``wait_pending`` as hooks: in OTP they ask
  ``net_kernel`` about the connection table; here the carrier
  (``repg2.dist``) answers through callbacks, so this module never imports it;
- the packet framing of ``inet_tcp_dist``: a 2-byte length before each
  handshake message, a 4-byte length before each message after it, an empty
  message as a tick.

Left out: ``con_loop`` and the tick bookkeeping (the carrier's reader and
ticker), ``do_setnode``/``mark_nodeup`` (the carrier's connection table),
dynamic node names (``DFLAG_NAME_ME`` and the ``named:`` status), the
``allowed`` list of ``check_allowed`` (the carrier's ``mark_pending`` can
answer ``not_allowed``), ``add_flags``/``reject_flags``/``require_flags``
(pass ``this_flags`` instead), the setup timer process (one deadline
instead), and the long-gone version-5 handshake (``n`` messages,
``send_complement``): OTP 25 dropped it too.

How it works
------------
Four messages, each a 2-byte big-endian length and a body whose first byte
is its tag::

    initiator (A)                                    acceptor (B)
    N  flags:64 creation:32 nlen:16 name      ->     recv_name, mark_pending
                                              <-     s  ok | ok_simultaneous | nok | not_allowed | alive
    (after "alive":) s  true | false          ->
                                              <-     N  flags:64 challenge:32 creation:32 nlen:16 name
    r  challenge:32 digest:16 bytes           ->     (digest = md5(cookie ++ decimal(B's challenge)))
                                              <-     a  digest:16 bytes (md5(cookie ++ decimal(A's challenge)))

Each side proves that it knows the cookie by digesting the challenge the
other side chose; the acceptor digests the initiator's challenge only after
the initiator has proved itself, so an initiator that does not know the
cookie never gets a digest out of an acceptor. After the ack, both sides switch to 4-byte
length frames. Nothing is decoded beyond these fixed binary layouts, every
read is bounded (``MAX_HANDSHAKE_MESSAGE``) and limited by the caller's
deadline, and a failure closes the socket, so bytes a peer sent after a
failed handshake are never read.

Simultaneous connect: when A and B dial each other at once, each side's
acceptor finds a pending setup of its own for the peer (the carrier knows;
``mark_pending`` asks it). ``net_kernel`` lets the node with the greater
name keep the connection it dialled: the greater node answers ``nok`` to
the smaller node's dial, and the smaller node answers ``ok_simultaneous``
to the greater node's dial and abandons its own (``simultaneous_status``).
``alive`` means the acceptor believes it is still connected to the
initiator: the initiator answers ``true`` if it is not (the old connection
is stale: the peer restarted or lost it without noticing) and the acceptor
then replaces it, once the initiator has proved the cookie (``wait_pending``).

Differences from OTP (each marked ``# DIVERGENCE(Dn)`` where it is made and
listed in ``TRANSLATION_NOTES.md`` as D35 to D39):

- One deadline for the whole handshake, not a setup timer of
  ``net_setuptime`` re-armed before each step: a peer cannot keep a
  handshake alive for ever by trickling bytes.
- Challenges come from ``secrets`` (a CSPRNG), not from a mix of the VM's
  clocks and statistics; digests are compared in constant time.
- Dynamic node names (``DFLAG_NAME_ME``, the ``named:`` status) are refused
  with ``not_allowed``.
- A peer's name must have at most 255 bytes (an Erlang atom's limit; OTP
  fails with ``system_limit``), and handshake messages over
  ``MAX_HANDSHAKE_MESSAGE`` bytes are refused before they are read (OTP
  reads up to 65535 bytes).
- An initiator told ``nok`` closes its socket at once; OTP's setup process
  waits for net_kernel to kill it. The acceptor has closed already, so no
  peer can tell.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

__all__ = [
    "DEFAULT_FLAGS",
    "DEFAULT_SETUPTIME",
    "ERL_DIST_VER",
    "MANDATORY_DFLAGS_25",
    "MAX_FRAME",
    "MAX_HANDSHAKE_MESSAGE",
    "TICK",
    "HandshakeError",
    "HandshakeResult",
    "LostRace",
    "Status",
    "adjust_flags",
    "dflag2str",
    "expand_mandatory_25_flag",
    "flags_to_names",
    "gen_challenge",
    "gen_digest",
    "handshake_other_started",
    "handshake_we_started",
    "is_node_name",
    "nodelay",
    "pack_frame",
    "recv_frame",
    "simultaneous_status",
]

log = logging.getLogger("repg2.dist_util")

# == Distribution flags (dist.hrl) ===============================================
# Each bit promises the peer one capability; a connection uses only the bits
# both sides set (adjust_flags). Values are dist.hrl's.
DFLAG_PUBLISHED = 0x01
DFLAG_ATOM_CACHE = 0x02
DFLAG_EXTENDED_REFERENCES = 0x04
DFLAG_DIST_MONITOR = 0x08
DFLAG_FUN_TAGS = 0x10
DFLAG_DIST_MONITOR_NAME = 0x20
DFLAG_HIDDEN_ATOM_CACHE = 0x40
DFLAG_NEW_FUN_TAGS = 0x80
DFLAG_EXTENDED_PIDS_PORTS = 0x100
DFLAG_EXPORT_PTR_TAG = 0x200
DFLAG_BIT_BINARIES = 0x400
DFLAG_NEW_FLOATS = 0x800
DFLAG_UNICODE_IO = 0x1000
DFLAG_DIST_HDR_ATOM_CACHE = 0x2000
DFLAG_SMALL_ATOM_TAGS = 0x4000
DFLAG_UTF8_ATOMS = 0x10000
DFLAG_MAP_TAG = 0x20000
DFLAG_BIG_CREATION = 0x40000
DFLAG_SEND_SENDER = 0x80000
DFLAG_BIG_SEQTRACE_LABELS = 0x100000
DFLAG_EXIT_PAYLOAD = 0x400000
DFLAG_FRAGMENTS = 0x800000
DFLAG_HANDSHAKE_23 = 0x1000000
DFLAG_UNLINK_ID = 0x2000000
DFLAG_MANDATORY_25_DIGEST = 0x4000000
DFLAG_RESERVED = 0xF8000000
DFLAG_SPAWN = 0x01 << 32
DFLAG_NAME_ME = 0x02 << 32
DFLAG_V4_NC = 0x04 << 32
DFLAG_ALIAS = 0x08 << 32

# What an OTP 25 node demands of every peer; DFLAG_MANDATORY_25_DIGEST alone
# stands for all of them (expand_mandatory_25_flag).
MANDATORY_DFLAGS_25 = (
    DFLAG_EXTENDED_REFERENCES
    | DFLAG_FUN_TAGS
    | DFLAG_EXTENDED_PIDS_PORTS
    | DFLAG_NEW_FUN_TAGS
    | DFLAG_EXPORT_PTR_TAG
    | DFLAG_BIT_BINARIES
    | DFLAG_NEW_FLOATS
    | DFLAG_UTF8_ATOMS
    | DFLAG_MAP_TAG
    | DFLAG_BIG_CREATION
    | DFLAG_HANDSHAKE_23
)

# The flags a RePy2 node advertises, each a promise the carrier and
# repg2.external keep. Left out on purpose: ATOM_CACHE, HIDDEN_ATOM_CACHE and
# DIST_HDR_ATOM_CACHE (no atom cache: every atom travels in full), FRAGMENTS
# (no fragmented messages), EXIT_PAYLOAD (exit reasons travel inside the
# classic EXIT/EXIT2/MONITOR_P_EXIT control messages), NAME_ME (a RePy2 node
# always has its name), V4_NC (OTP 25
# sends us 3-word references and NEW_PID_EXT without it too, as measured;
# OTP 26 makes it mandatory, with V4_PORT_EXT and references of up to 5
# words), UNICODE_IO, SMALL_ATOM_TAGS and BIG_SEQTRACE_LABELS (no io
# protocol, latin-1 atom tags or sequential tracing here).
DEFAULT_FLAGS = (
    DFLAG_PUBLISHED  # a normal node: it appears in the peer's nodes(), not only in nodes(hidden)
    | MANDATORY_DFLAGS_25  # OTP 25 refuses a peer without them; external.py decodes each of these encodings
    | DFLAG_DIST_MONITOR  # MONITOR_P / DEMONITOR_P / MONITOR_P_EXIT: pg2 monitors remote members
    | DFLAG_DIST_MONITOR_NAME  # monitors of {Name, Node}: gen:call to a registered name (rex, pg2) needs it
    | DFLAG_SEND_SENDER  # SEND_SENDER (22) instead of SEND: the sender's pid travels with the message
    | DFLAG_UNLINK_ID  # the unlink protocol (UNLINK_ID 35 / UNLINK_ID_ACK 36), OTP's race-free unlink
    | DFLAG_MANDATORY_25_DIGEST  # tells an OTP 25 node, in one bit, that all of MANDATORY_DFLAGS_25 are here
    | DFLAG_ALIAS  # ALIAS_SEND (33) / ALIAS_SEND_TT (34): OTP 25's gen:call replies go to an alias
    | DFLAG_SPAWN  # SPAWN_REQUEST (29) / SPAWN_REPLY (31): OTP 25's rpc:call is erpc's spawn_request
)

_FLAG_NAMES = {
    DFLAG_PUBLISHED: "PUBLISHED",
    DFLAG_ATOM_CACHE: "ATOM_CACHE",
    DFLAG_EXTENDED_REFERENCES: "EXTENDED_REFERENCES",
    DFLAG_DIST_MONITOR: "DIST_MONITOR",
    DFLAG_FUN_TAGS: "FUN_TAGS",
    DFLAG_DIST_MONITOR_NAME: "DIST_MONITOR_NAME",
    DFLAG_HIDDEN_ATOM_CACHE: "HIDDEN_ATOM_CACHE",
    DFLAG_NEW_FUN_TAGS: "NEW_FUN_TAGS",
    DFLAG_EXTENDED_PIDS_PORTS: "EXTENDED_PIDS_PORTS",
    DFLAG_EXPORT_PTR_TAG: "EXPORT_PTR_TAG",
    DFLAG_BIT_BINARIES: "BIT_BINARIES",
    DFLAG_NEW_FLOATS: "NEW_FLOATS",
    DFLAG_UNICODE_IO: "UNICODE_IO",
    DFLAG_DIST_HDR_ATOM_CACHE: "DIST_HDR_ATOM_CACHE",
    DFLAG_SMALL_ATOM_TAGS: "SMALL_ATOM_TAGS",
    DFLAG_UTF8_ATOMS: "UTF8_ATOMS",
    DFLAG_MAP_TAG: "MAP_TAG",
    DFLAG_BIG_CREATION: "BIG_CREATION",
    DFLAG_SEND_SENDER: "SEND_SENDER",
    DFLAG_BIG_SEQTRACE_LABELS: "BIG_SEQTRACE_LABELS",
    DFLAG_EXIT_PAYLOAD: "EXIT_PAYLOAD",
    DFLAG_FRAGMENTS: "FRAGMENTS",
    DFLAG_HANDSHAKE_23: "HANDSHAKE_23",
    DFLAG_UNLINK_ID: "UNLINK_ID",
    DFLAG_MANDATORY_25_DIGEST: "MANDATORY_25_DIGEST",
    DFLAG_SPAWN: "SPAWN",
    DFLAG_NAME_ME: "NAME_ME",
    DFLAG_V4_NC: "V4_NC",
    DFLAG_ALIAS: "ALIAS",
}

# == Other constants, each with its reason ==========================================
ERL_DIST_VER = 6  # the only handshake version OTP 25 speaks (dist.hrl's ERL_DIST_VER_LOW = _HIGH = 6); epmd carries it
DEFAULT_SETUPTIME = 7.0  # seconds: net_kernel's default net_setuptime
MAX_NAME = 255  # DIVERGENCE(D38): bytes in a node name (an atom's limit); OTP fails with system_limit
# The longest handshake message: the acceptor's N (1 + 8 + 4 + 4 + 2 + name),
# with room for fields a later OTP might append after the name (OTP ignores them).
MAX_HANDSHAKE_MESSAGE = 1024  # DIVERGENCE(D38): OTP reads up to 65535 bytes
MAX_FRAME = 64 * 1024 * 1024  # a bigger frame after the handshake is an attack or a bug
DIGEST_SIZE = 16  # MD5
_U16 = struct.Struct(">H")  # the length before each handshake message ({packet, 2})
_U32 = struct.Struct(">I")  # the length before each message after it ({packet, 4})
_NAME_HEAD = struct.Struct(">cQIH")  # N, flags, creation, name length
_CHALLENGE_HEAD = struct.Struct(">cQIIH")  # N, flags, challenge, creation, name length
_REPLY = struct.Struct(">cI16s")  # r, challenge, digest
TICK = _U32.pack(0)  # an empty message: inet_tcp_dist:tick/2 sends it when the connection is idle

Status = Literal["ok", "ok_simultaneous", "nok", "alive", "not_allowed"]
_STATUSES: frozenset[str] = frozenset({"ok", "ok_simultaneous", "nok", "alive", "not_allowed"})


class HandshakeError(Exception):
    """A handshake failed; the socket is closed, ``reason`` says why as dist_util would.

    Erlang: dist_util:shutdown/4 (the exit reason of the setup process)

    ``reason`` follows dist_util's shutdown reasons where it has one, e.g.
    ``('recv_challenge_reply_failed', 'bad_cookie')``,
    ``('check_dflags_failed', ['MAP_TAG'])``, ``'setup_timer_timeout'``;
    the message is for the log.
    """

    def __init__(self, message: str, reason: Any) -> None:
        """Erlang: none (the exception carries dist_util's exit reason)"""
        super().__init__(message)
        self.reason = reason


class LostRace(HandshakeError):
    """This connection gave way to another one between the same two nodes; use that one.

    Erlang: dist_util:recv_status/1 (status ``nok``, or ``alive`` answered ``false``)

    Raised to the initiator when the acceptor answered ``nok`` (it won a
    simultaneous connect: its own dial will be the connection) or ``alive``
    while we still hold a connection to it; raised to the acceptor after it
    answered ``nok`` or heard ``false`` to ``alive``. Not a fault: the
    carrier waits for the surviving connection.
    """


@dataclass(frozen=True)
class HandshakeResult:
    """What a successful handshake learnt about the peer.

    Erlang: none (the #hs_data{} fields that do_setnode hands to the runtime)

    ``flags`` are the peer's flags as it sent them, with
    ``DFLAG_MANDATORY_25_DIGEST`` expanded; ``chosen_flags`` are those both
    sides set, the only ones either may use on this connection (OTP keeps
    only these). ``their_digest_ok`` is always True (else the handshake
    failed): the peer proved the cookie. ``our_digest_ok`` is True on the
    initiator (the acceptor checks our reply before it acks) and None on the
    acceptor: the initiator checks our ack after we return, and closes the
    connection if it fails. ``status`` is the status of the handshake:
    ``'ok'``, ``'ok_simultaneous'`` or ``'alive'`` (a stale connection was
    replaced).
    """

    node: str  # the peer's node name, 'name@host'
    flags: int
    chosen_flags: int
    creation: int  # the peer's creation: 32 bits, part of every pid and ref of its node
    other_started: bool  # True on the acceptor
    status: str
    their_digest_ok: bool
    our_digest_ok: bool | None


@dataclass
class _HsData:
    """The state of one handshake in progress.

    Erlang: none (the #hs_data{} record of dist_util.hrl, the fields this port uses)
    """

    sock: socket.socket
    this_node: str
    other_node: str
    this_flags: int
    this_creation: int
    cookie: bytes
    deadline: float
    other_started: bool
    other_flags: int = 0
    other_creation: int = 0


# == Flags ======================================================================


def dflag2str(flag: int) -> str:
    """Return the name of one distribution flag bit, e.g. ``'MAP_TAG'``.

    Erlang: dist_util:dflag2str/1
    """
    return _FLAG_NAMES.get(flag, f"UNKNOWN<{flag:X}>")


def flags_to_names(flags: int) -> list[str]:
    """List the names of the bits set in ``flags``, lowest bit first.

    Erlang: none (a reading aid for logs and tests)
    """
    names: list[str] = []
    bit = 1
    while bit <= flags:
        if flags & bit:
            names.append(dflag2str(bit))
        bit <<= 1
    return names


def adjust_flags(this_flags: int, other_flags: int) -> int:
    """Return the flags a connection uses: those both sides advertise.

    Erlang: dist_util:adjust_flags/2
    """
    return this_flags & other_flags


def expand_mandatory_25_flag(flags: int) -> int:
    """Read ``DFLAG_MANDATORY_25_DIGEST`` as all of OTP 25's mandatory flags.

    Erlang: dist_util:expand_mandatory_25_flag/1

    From OTP 25 a node may set this one bit instead of the eleven it stands
    for, so the flags of a peer are expanded before they are checked.
    """
    if flags & DFLAG_MANDATORY_25_DIGEST:
        return flags | MANDATORY_DFLAGS_25
    return flags


def _check_mandatory(flags: int) -> list[str]:
    """Return the names of the mandatory flags missing from ``flags``, highest bit first.

    Erlang: dist_util:check_mandatory/3
    """
    missing: list[str] = []
    mandatory = MANDATORY_DFLAGS_25
    while mandatory:
        rest = mandatory & (mandatory - 1)  # clear the lowest set bit
        bit = mandatory ^ rest
        if not flags & bit:
            missing.insert(0, dflag2str(bit))  # dist_util conses, so its list runs highest first
        mandatory = rest
    return missing


def _check_dflags(hs: _HsData, flags: int) -> None:
    """Refuse a peer that lacks a flag OTP 25 makes mandatory.

    Erlang: dist_util:check_dflags/2

    The acceptor tells the peer ``not_allowed`` first; the initiator just
    aborts. Both log the missing flags, as OTP does.

    Raises:
        HandshakeError: ``('check_dflags_failed', missing)``.
    """
    missing = _check_mandatory(flags)
    if not missing:
        return
    if hs.other_started:
        _send_status(hs, "not_allowed")
        direction, how = "from", "rejected"
    else:
        direction, how = "to", "aborted"
    log.error(
        "** %s: Connection attempt %s node %s %s since it cannot handle %s **",
        hs.this_node,
        direction,
        hs.other_node,
        how,
        missing,
    )
    _shutdown(hs, f"node {hs.other_node} lacks the mandatory flags {missing}", ("check_dflags_failed", missing))


def simultaneous_status(this_node: str, other_node: str) -> Status:
    """Decide a simultaneous connect: what this node answers the other node's dial.

    Erlang: net_kernel:handle_info/2 ({AcceptPid, {accept_pending, MyNode, Node, Type}}, a pending connection)

    Called by the carrier's ``mark_pending`` when a handshake arrives from a
    node that this node is itself dialling. The node with the greater name
    (atoms compare by their characters, as Python strings do) keeps its own
    dial and answers ``nok``; the smaller node answers ``ok_simultaneous``,
    lets this incoming handshake take the pending connection over and
    abandons its own dial (OTP kills that setup process).
    """
    return "nok" if this_node > other_node else "ok_simultaneous"


# == The two handshakes ==========================================================


def handshake_other_started(
    sock: socket.socket,
    *,
    this_node: str,
    cookie: str | bytes,
    creation: int,
    mark_pending: Callable[[str], Status],
    wait_pending: Callable[[str], None] | None = None,
    this_flags: int = DEFAULT_FLAGS,
    deadline: float,
) -> HandshakeResult:
    """Run the handshake another node started on ``sock``, as the acceptor.

    Erlang: dist_util:handshake_other_started/1

    Reads the peer's name and flags, refuses a peer without OTP 25's
    mandatory flags, asks the carrier what to answer (``mark_pending``, see
    ``_mark_pending``), sends a challenge, checks the peer's digest of it,
    and only then acks with our digest of the peer's challenge. After an
    ``alive`` that the peer confirmed, ``wait_pending(node)`` runs once the
    peer has proved the cookie and before the ack: the carrier takes the old
    connection down there, so knowing a node's name is not enough to cut it
    off.

    ``deadline`` is a ``time.monotonic()`` value for the whole handshake. On
    success the socket is back in the timeout mode it had, positioned at the
    first byte the peer sends after the handshake (nothing beyond it is
    read); the caller owns it.

    Returns:
        HandshakeResult with ``other_started=True``.

    Raises:
        LostRace: we answered ``nok``, or the peer answered ``false`` to ``alive``.
        HandshakeError: any other failure (the socket is then closed).
        ValueError: our own name, cookie or creation cannot travel, or
            ``mark_pending`` returned something else than a ``Status``.
    """
    hs = _HsData(
        sock=sock,
        this_node=this_node,
        other_node="no_node",
        this_flags=this_flags,
        this_creation=_check_creation(creation),
        cookie=_cookie_bytes(cookie),
        deadline=deadline,
        other_started=True,
    )
    return _guarded(hs, lambda: _other_started(hs, mark_pending, wait_pending))


def _other_started(
    hs: _HsData, mark_pending: Callable[[str], Status], wait_pending: Callable[[str], None] | None
) -> HandshakeResult:
    """Erlang: dist_util:handshake_other_started/1 (the body, inside the guard that closes the socket)"""
    pre_flags, hs.other_node, hs.other_creation = _recv_name(hs)
    hs.other_flags = expand_mandatory_25_flag(pre_flags)
    _check_dflags(hs, hs.other_flags)
    status = _mark_pending(hs, mark_pending)
    challenge_a = gen_challenge()
    _send_challenge(hs, challenge_a)
    # Our own flags are expanded too, so a carrier may advertise the digest bit alone; OTP's
    # own flags always carry every bit, so there this changes nothing.
    chosen = adjust_flags(expand_mandatory_25_flag(hs.this_flags), hs.other_flags)
    challenge_b = _recv_challenge_reply(hs, challenge_a)
    if status == "alive" and wait_pending is not None:
        wait_pending(hs.other_node)  # Erlang: wait_pending/1: the old connection goes down first
    _send_challenge_ack(hs, gen_digest(challenge_b, hs.cookie))
    return HandshakeResult(
        node=hs.other_node,
        flags=hs.other_flags,
        chosen_flags=chosen,
        creation=hs.other_creation,
        other_started=True,
        status=status,
        their_digest_ok=True,
        our_digest_ok=None,
    )


def _mark_pending(hs: _HsData, mark_pending: Callable[[str], Status]) -> Status:
    """Ask the carrier what to answer the peer, and answer it.

    Erlang: dist_util:mark_pending/1
    Erlang: dist_util:do_alive/1

    The carrier's ``mark_pending(node)`` returns, as net_kernel does to
    dist_util (``ok`` and friends are net_kernel's ``ok``, ``ok_pending``,
    ``nok_pending``, ``up_pending``):

    - ``'ok'``: no connection or setup for that node; this one is now pending;
    - ``'ok_simultaneous'``: we were dialling it too and lost (see
      ``simultaneous_status``): this handshake takes our pending setup over;
    - ``'nok'``: we were dialling it too and won: refuse this one;
    - ``'alive'``: we believe we are connected to it; ask whether it agrees;
    - ``'not_allowed'``: we refuse it (the carrier's partitions, a stopped node).

    Raises:
        LostRace: ``nok``, or ``alive`` answered ``false``.
        HandshakeError: ``not_allowed``.
    """
    status = mark_pending(hs.other_node)
    if status not in _STATUSES:
        raise ValueError(f"mark_pending returned {status!r}, not one of {sorted(_STATUSES)}")
    match status:
        case "ok" | "ok_simultaneous":
            _send_status(hs, status)
        case "nok":  # Erlang: nok_pending
            _send_status(hs, "nok")
            raise LostRace(f"simultaneous connect: our own connection to {hs.other_node} wins", "nok")
        case "not_allowed":
            _send_status(hs, "not_allowed")
            _shutdown(hs, f"connection from {hs.other_node} not allowed", ("is_allowed", "not_allowed"))
        case "alive":  # Erlang: up_pending -> do_alive/1
            _send_status(hs, "alive")
            if not _recv_status_reply(hs):
                raise LostRace(f"node {hs.other_node} is still connected to us: keeping that connection", "alive")
    return status


def handshake_we_started(
    sock: socket.socket,
    *,
    this_node: str,
    other_node: str,
    cookie: str | bytes,
    creation: int,
    is_pending: Callable[[str], bool] | None = None,
    this_flags: int = DEFAULT_FLAGS,
    deadline: float,
) -> HandshakeResult:
    """Run the handshake on ``sock``, freshly connected to ``other_node``, as the initiator.

    Erlang: dist_util:handshake_we_started/1

    Sends our name, flags and creation, reads the status, reads the peer's
    challenge (its name must be the node we meant to reach), refuses a peer
    without OTP 25's mandatory flags, answers the challenge with our digest
    and a challenge of ours, and checks the peer's digest of it in the ack.

    If the peer answers ``alive`` (it believes it is still connected to us),
    ``is_pending(other_node)`` says whether this dial is still ours to
    complete, i.e. whether we hold no other connection to that node: True
    tells the peer its connection is stale and the handshake goes on; False
    ends it with ``LostRace``. Without ``is_pending`` we answer True: a
    carrier dials only nodes it is not connected to.

    ``deadline`` is a ``time.monotonic()`` value for the whole handshake. On
    success the socket is back in the timeout mode it had and owned by the
    caller.

    Returns:
        HandshakeResult with ``other_started=False``.

    Raises:
        LostRace: status ``nok`` (the peer won a simultaneous connect), or
            ``alive`` with ``is_pending`` False.
        HandshakeError: any other failure (the socket is then closed).
        ValueError: our own name, cookie or creation cannot travel.
    """
    hs = _HsData(
        sock=sock,
        this_node=this_node,
        other_node=other_node,
        this_flags=this_flags,
        this_creation=_check_creation(creation),
        cookie=_cookie_bytes(cookie),
        deadline=deadline,
        other_started=False,
    )
    pending = is_pending if is_pending is not None else (lambda node: True)
    return _guarded(hs, lambda: _we_started(hs, pending))


def _we_started(hs: _HsData, is_pending: Callable[[str], bool]) -> HandshakeResult:
    """Erlang: dist_util:handshake_we_started/1 (the body, inside the guard that closes the socket)"""
    _send_name(hs)
    status = _recv_status(hs, is_pending)
    pre_flags, challenge_a, hs.other_creation = _recv_challenge(hs)
    hs.other_flags = expand_mandatory_25_flag(pre_flags)
    # Our own flags are expanded too, so a carrier may advertise the digest bit alone; OTP's
    # own flags always carry every bit, so there this changes nothing.
    chosen = adjust_flags(expand_mandatory_25_flag(hs.this_flags), hs.other_flags)
    _check_dflags(hs, chosen)
    challenge_b = gen_challenge()
    _send_challenge_reply(hs, challenge_b, gen_digest(challenge_a, hs.cookie))
    _recv_challenge_ack(hs, challenge_b)
    return HandshakeResult(
        node=hs.other_node,
        flags=hs.other_flags,
        chosen_flags=chosen,
        creation=hs.other_creation,
        other_started=False,
        status=status,
        their_digest_ok=True,
        our_digest_ok=True,
    )


def _guarded(hs: _HsData, body: Callable[[], HandshakeResult]) -> HandshakeResult:
    """Run a handshake body: socket errors become HandshakeError, any failure closes the socket.

    Erlang: none (in OTP the setup process exits, and the socket dies with it)
    """
    sock = hs.sock
    saved_timeout = sock.gettimeout()
    try:
        result = body()
    except HandshakeError:
        _close(sock)
        raise
    except TimeoutError:
        _close(sock)
        raise HandshakeError(
            f"handshake with {hs.other_node} not finished before the deadline", "setup_timer_timeout"
        ) from None
    except ConnectionError as exc:
        _close(sock)
        raise HandshakeError(f"handshake with {hs.other_node} failed: {exc}", "connection_closed") from None
    except OSError as exc:
        _close(sock)
        raise HandshakeError(f"handshake with {hs.other_node} failed: {exc}", ("connection_error", str(exc))) from None
    except BaseException:
        _close(sock)
        raise
    sock.settimeout(saved_timeout)
    return result


def shutdown(sock: socket.socket, message: str, reason: Any) -> NoReturn:
    """Close a handshake's socket and raise ``HandshakeError(message, reason)``.

    Erlang: dist_util:shutdown/4

    OTP's setup process exits with ``reason`` and its socket closes with it;
    here the exception carries the reason to the carrier.
    """
    _close(sock)
    raise HandshakeError(message, reason)


def _shutdown(hs: _HsData, message: str, reason: Any) -> NoReturn:
    """Erlang: dist_util:shutdown/4 (on a handshake in progress)"""
    shutdown(hs.sock, message, reason)


# == Digests and challenges ======================================================


def gen_digest(challenge: int, cookie: str | bytes) -> bytes:
    """Return the 16-byte proof that we know ``cookie``, for one challenge.

    Erlang: dist_util:gen_digest/2

    The MD5 of the cookie's characters followed by the challenge written as
    an unsigned decimal number: cookie ``'C'`` and challenge 7 digest
    ``b'C7'``. MD5 is weak, but it is what every Erlang node checks.
    """
    if not 0 <= challenge <= 0xFFFFFFFF:
        raise ValueError(f"a challenge is an unsigned 32-bit integer, not {challenge!r}")
    return hashlib.md5(_cookie_bytes(cookie) + str(challenge).encode("ascii")).digest()


def gen_challenge() -> int:
    """Return a fresh random 32-bit challenge.

    Erlang: dist_util:gen_challenge/0
    """
    # DIVERGENCE(D36): a CSPRNG, not OTP's mix of clocks, counters and VM statistics.
    return secrets.randbits(32)


# == Messages: sending ==========================================================


def _send_name(hs: _HsData) -> None:
    """Send our name, flags and creation: the first message of a handshake.

    Erlang: dist_util:send_name/1
    """
    name = _name_bytes(hs.this_node)
    _send_packet(hs, _NAME_HEAD.pack(b"N", hs.this_flags, hs.this_creation, len(name)) + name)


def _send_challenge(hs: _HsData, challenge: int) -> None:
    """Send our flags, challenge, creation and name: the acceptor's N message.

    Erlang: dist_util:send_challenge/2
    """
    name = _name_bytes(hs.this_node)
    _send_packet(hs, _CHALLENGE_HEAD.pack(b"N", hs.this_flags, challenge, hs.this_creation, len(name)) + name)


def _send_challenge_reply(hs: _HsData, challenge: int, digest: bytes) -> None:
    """Send our digest of the peer's challenge, and a challenge of ours.

    Erlang: dist_util:send_challenge_reply/3
    """
    _send_packet(hs, _REPLY.pack(b"r", challenge, digest))


def _send_challenge_ack(hs: _HsData, digest: bytes) -> None:
    """Send our digest of the initiator's challenge: the last handshake message.

    Erlang: dist_util:send_challenge_ack/2
    """
    _send_packet(hs, b"a" + digest)


def _send_status(hs: _HsData, status: str) -> None:
    """Send a status message: ``s`` and the status as text.

    Erlang: dist_util:send_status/2
    """
    _send_packet(hs, b"s" + status.encode("ascii"))


# == Messages: receiving =========================================================


def _recv_name(hs: _HsData) -> tuple[int, str, int]:
    """Read the initiator's name message; return its flags, node name and creation.

    Erlang: dist_util:recv_name/1
    Erlang: dist_util:recv_name_new/2

    Raises:
        HandshakeError: not an ``N`` message (an ``n`` is the version-5
            handshake OTP 25 no longer speaks), truncated, a name that is not
            ``name@host``, or a dynamic name (refused with ``not_allowed``).
    """
    data = _recv_packet(hs)
    if data[:1] == b"n":
        _shutdown(hs, "the peer speaks the handshake of version 5; OTP 25 and RePy2 speak version 6 only", "no_node")
    if data[:1] != b"N" or len(data) < _NAME_HEAD.size:
        _shutdown(hs, f"expected a name message (N), got {data[:24]!r}", "no_node")
    _, flags, creation, name_len = _NAME_HEAD.unpack_from(data)
    # Bytes after the name are ignored, as lists:split/2 in recv_name_new leaves them.
    raw = data[_NAME_HEAD.size : _NAME_HEAD.size + name_len]
    if len(raw) < name_len:
        _shutdown(hs, f"name message truncated: {name_len} name bytes announced, {len(raw)} sent", "no_node")
    if flags & DFLAG_NAME_ME:
        # DIVERGENCE(D37): OTP names the node (status named:); we have no dynamic names.
        hs.other_node = raw.decode("latin-1")
        _send_status(hs, "not_allowed")
        _shutdown(hs, f"peer on host {hs.other_node!r} asks for a dynamic node name", ("is_allowed", "not_allowed"))
    name = raw.decode("latin-1")  # OTP: list_to_atom of the bytes, i.e. latin-1
    if not is_node_name(name):
        _shutdown(hs, f"the peer's name {name!r} is not name@host", "no_node")
    return flags, name, creation


def _recv_challenge(hs: _HsData) -> tuple[int, int, int]:
    """Read the acceptor's challenge message; return its flags, challenge and creation.

    Erlang: dist_util:recv_challenge/1
    Erlang: dist_util:recv_challenge_new/2

    Raises:
        HandshakeError: not an ``N`` message, truncated, or the name of
            another node than the one we dialled.
    """
    data = _recv_packet(hs)
    if data[:1] != b"N" or len(data) < _CHALLENGE_HEAD.size:
        _shutdown(hs, f"expected a challenge (N), got {data[:24]!r}", ("recv_challenge_failed", data[:24]))
    _, flags, challenge, creation, name_len = _CHALLENGE_HEAD.unpack_from(data)
    raw = data[_CHALLENGE_HEAD.size : _CHALLENGE_HEAD.size + name_len]
    if len(raw) < name_len:
        _shutdown(hs, "challenge message truncated", ("recv_challenge_failed", "no_node", data[:24]))
    name = raw.decode("latin-1")
    if name != hs.other_node:
        _shutdown(
            hs,
            f"the node at that address is {name!r}, not {hs.other_node!r}",
            ("recv_challenge_failed", "no_node", name),
        )
    return flags, challenge, creation


def _recv_challenge_reply(hs: _HsData, challenge_a: int) -> int:
    """Read the initiator's reply, check its digest of our challenge, return its challenge.

    Erlang: dist_util:recv_challenge_reply/3

    Raises:
        HandshakeError: ``('recv_challenge_reply_failed', 'bad_cookie')`` if the
            digest is wrong (the peer's cookie is not ours), or a malformed reply.
    """
    data = _recv_packet(hs)
    if len(data) != _REPLY.size or data[:1] != b"r":
        _shutdown(
            hs,
            f"expected a challenge reply (r, 21 bytes), got {data[:24]!r}",
            ("recv_challenge_reply_failed", data[:24]),
        )
    _, challenge_b, digest = _REPLY.unpack(data)
    if not hmac.compare_digest(digest, gen_digest(challenge_a, hs.cookie)):
        log.error("** Connection attempt from node %s rejected. Invalid challenge reply. **", hs.other_node)
        _shutdown(
            hs,
            f"node {hs.other_node} failed our challenge: its cookie is not ours",
            ("recv_challenge_reply_failed", "bad_cookie"),
        )
    return int(challenge_b)


def _recv_challenge_ack(hs: _HsData, challenge_b: int) -> None:
    """Read the acceptor's ack and check its digest of our challenge.

    Erlang: dist_util:recv_challenge_ack/3

    A peer whose cookie differs from ours closes the connection instead of
    acking: it has just found our digest wrong.

    Raises:
        HandshakeError: ``('recv_challenge_ack_failed', 'bad_cookie')``, or the
            connection closed (the peer refused our digest).
    """
    try:
        data = _recv_packet(hs)
    except ConnectionError:
        _shutdown(
            hs,
            f"node {hs.other_node} closed the connection after our challenge reply: its cookie is not ours",
            ("recv_challenge_ack_failed", "closed"),
        )
    if len(data) != 1 + DIGEST_SIZE or data[:1] != b"a":
        _shutdown(
            hs, f"expected a challenge ack (a, 17 bytes), got {data[:24]!r}", ("recv_challenge_ack_failed", data[:24])
        )
    if not hmac.compare_digest(data[1:], gen_digest(challenge_b, hs.cookie)):
        log.error("** Connection attempt to node %s cancelled. Invalid challenge ack. **", hs.other_node)
        _shutdown(
            hs,
            f"node {hs.other_node} failed our challenge: its cookie is not ours",
            ("recv_challenge_ack_failed", "bad_cookie"),
        )


def _recv_status(hs: _HsData, is_pending: Callable[[str], bool]) -> str:
    """Read the acceptor's status; answer ``alive``; return the status if we go on.

    Erlang: dist_util:recv_status/1

    Raises:
        LostRace: ``nok``, or ``alive`` while ``is_pending`` says False.
        HandshakeError: ``not_allowed``, ``named:`` (we never ask for a
            dynamic name) or anything unknown.
    """
    data = _recv_packet(hs)
    if data[:1] != b"s":
        _shutdown(hs, f"expected a status (s), got {data[:24]!r}", ("recv_status_failed", data[:24]))
    stat = data[1:].decode("latin-1")
    match stat:
        case "ok" | "ok_simultaneous":
            return stat
        case "nok":
            # OTP's setup process now waits for net_kernel to kill it: the
            # acceptor's own dial, accepted here, becomes the connection.
            _close(hs.sock)
            # DIVERGENCE(D39): we close at once; OTP's setup process waits for net_kernel to kill it.
            raise LostRace(f"simultaneous connect: {hs.other_node}'s own connection to us wins", "nok")
        case "alive":
            reply = bool(is_pending(hs.other_node))
            _send_status(hs, "true" if reply else "false")
            if not reply:
                _close(hs.sock)
                raise LostRace(f"node {hs.other_node} says we are connected already: keeping that connection", "alive")
            return stat
        case "not_allowed":
            _shutdown(
                hs, f"node {hs.other_node} does not allow a connection from us", ("recv_status_failed", "not_allowed")
            )
        case _ if stat.startswith("named:"):
            # The answer to a dynamic-name request, which we never make (OTP crashes on a badmatch here).
            _shutdown(
                hs,
                f"node {hs.other_node} named us, but we asked for no name",
                ("recv_status_failed", "unexpected", "named"),
            )
        case _:
            _shutdown(
                hs,
                f"node {hs.other_node} sent the unknown status {stat[:40]!r}",
                ("recv_status_failed", "unknown", stat[:40]),
            )
    raise AssertionError("unreachable")


def _recv_status_reply(hs: _HsData) -> bool:
    """Read the initiator's answer to ``alive``: ``true`` (our connection is stale) or ``false``.

    Erlang: dist_util:recv_status_reply/1
    """
    data = _recv_packet(hs)
    if data == b"strue":
        return True
    if data == b"sfalse":
        return False
    _shutdown(hs, f"expected strue or sfalse, got {data[:24]!r}", ("recv_status_failed", "unexpected", data[:24]))
    raise AssertionError("unreachable")


def is_node_name(name: str) -> bool:
    """Tell whether ``name`` is a node name: ``name@host``, both parts non-empty.

    Erlang: dist_util:is_node_name/1

    Also refuses names over 255 characters (OTP cannot make them atoms).
    """
    parts = name.split("@")
    return len(parts) == 2 and all(parts) and len(name) <= MAX_NAME


# == Packets and frames ==========================================================


def _send_packet(hs: _HsData, body: bytes) -> None:
    """Send one handshake message with its 2-byte length, before the deadline.

    Erlang: none (gen_tcp:send/2 on a {packet, 2} socket)
    """
    _arm(hs)
    hs.sock.sendall(_U16.pack(len(body)) + body)


def _recv_packet(hs: _HsData) -> bytes:
    """Read one handshake message: a 2-byte length, then that many bytes, and no more.

    Erlang: none (gen_tcp:recv/3 on a {packet, 2} socket)

    Raises:
        HandshakeError: an empty or over-long message (refused before its
            body is read), or the connection closed inside a message.
        ConnectionError: the connection closed before the message began.
        TimeoutError: the deadline passed.
    """
    (size,) = _U16.unpack(_recv_exact(hs, _U16.size, at_start=True))
    if size == 0 or size > MAX_HANDSHAKE_MESSAGE:
        _shutdown(hs, f"handshake message of {size} bytes refused (not a node?)", ("bad_message_size", size))
    return _recv_exact(hs, size, at_start=False)


def _recv_exact(hs: _HsData, n: int, *, at_start: bool) -> bytes:
    """Read exactly ``n`` bytes before the deadline.

    Erlang: none (what {packet, N} does inside gen_tcp)

    Raises:
        ConnectionError: end of stream before the first byte when ``at_start``.
        HandshakeError: end of stream inside the message (truncated).
    """
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        _arm(hs)
        k = hs.sock.recv_into(view[got:])
        if k == 0:
            if at_start and got == 0:
                raise ConnectionError(f"connection closed by {hs.other_node}")
            _shutdown(hs, f"handshake message truncated: connection closed after {got} of {n} bytes", "truncated")
        got += k
    return bytes(buf)


def _arm(hs: _HsData) -> None:
    """Set the socket's timeout to what is left before the deadline.

    Erlang: dist_util:reset_timer/1
    """
    # DIVERGENCE(D35): one deadline for the whole handshake; OTP re-arms net_setuptime before each step.
    left = hs.deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("handshake deadline passed")
    hs.sock.settimeout(left)


def nodelay(sock: socket.socket) -> socket.socket:
    """Turn off Nagle's algorithm on a TCP socket and return it.

    Erlang: none (inet_tcp_dist sets {nodelay, true} on its sockets)

    Set it on every distribution socket, before the handshake: without it a
    message written in two pieces waits for the peer's delayed ACK (about
    88 ms per round trip was measured on loopback for 16-64 KiB frames).
    """
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def pack_frame(payload: bytes) -> bytes:
    """Return ``payload`` framed for a connection after its handshake: a 4-byte length first.

    Erlang: none (gen_tcp:send/2 on a {packet, 4} socket)

    An empty payload is a tick (``TICK``).
    """
    if len(payload) > MAX_FRAME:
        raise ValueError(f"frame of {len(payload)} bytes is over MAX_FRAME ({MAX_FRAME})")
    return _U32.pack(len(payload)) + payload


def recv_frame(sock: socket.socket, max_frame: int = MAX_FRAME) -> bytes:
    """Read one frame after the handshake; ``b''`` is a tick.

    Erlang: none (gen_tcp:recv/2 on a {packet, 4} socket)

    Uses the socket's own timeout mode.

    Raises:
        ConnectionError: the connection closed (inside a frame or between frames).
        ValueError: a frame longer than ``max_frame`` (its body is not read).
    """
    (size,) = _U32.unpack(_read_exact(sock, _U32.size))
    if size > max_frame:
        raise ValueError(f"frame of {size} bytes refused (max {max_frame})")
    return _read_exact(sock, size) if size else b""


def _read_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes in the socket's own timeout mode.

    Erlang: none
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


# == Small helpers ===============================================================


def _cookie_bytes(cookie: str | bytes) -> bytes:
    """Return the cookie as the bytes OTP digests: the characters of the cookie atom.

    Erlang: none (atom_to_list(Cookie) in gen_digest/2)

    Raises:
        ValueError: a character over 255, which erlang:md5/1 would refuse too.
    """
    if isinstance(cookie, bytes):
        return cookie
    try:
        return cookie.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("a cookie's characters must be latin-1 (Erlang digests them as bytes)") from None


def _name_bytes(node: str) -> bytes:
    """Return a node name as it travels: latin-1, as atom_to_binary(Node, latin1).

    Erlang: none (dist_util:to_binary/1)
    """
    if not is_node_name(node):
        raise ValueError(f"not a node name (name@host): {node!r}")
    try:
        return node.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"a node name's characters must be latin-1: {node!r}") from None


def _check_creation(creation: int) -> int:
    """Return ``creation`` if it fits the handshake's 32 bits.

    Erlang: none (erts_internal:get_creation/0 is always 32 bits)
    """
    if not 0 <= creation <= 0xFFFFFFFF:
        raise ValueError(f"a creation is an unsigned 32-bit integer, not {creation!r}")
    return creation


def _close(sock: socket.socket) -> None:
    """Close a socket, ignoring errors.

    Erlang: none (the socket dies with its owner process)
    """
    try:
        sock.close()
    except OSError:
        pass
