"""Message tracing across a cluster: who sent what to whom, as a log and as a sequence diagram.

In the spirit of Erlang's ``dbg`` (``dbg:tracer/0``, ``dbg:p(Item, [m])``,
``dbg:stop_clear/0``) and of ``sys:trace/2``: choose processes by pid or by
registered name (say every node's ``'pg2'`` and ``'global_name_server'``),
trace the messages they send and receive on every node of a running
:class:`~repg2.testing.cluster.Cluster`, then stop, collect the records from every
node, and read them as a text log or look at them as a sequence diagram
(lifelines per process, grouped by node; one arrow per message, labelled
with its tag: ``$gen_call set_lock``, ``reply true``, ``$gen_cast exchange``,
``DOWN``). The picture is drawn with matplotlib and saved as SVG or PNG, so
it renders offline: in Jupyter, in the docs and on GitHub. One trace of
several servers that saw the same events (``'pg2'`` and ``'pg'`` on every
node) splits into one trace per server with :meth:`Trace.select`.

There is no Erlang file behind this module; it plays the part of ``dbg``'s
message tracing (the ``m`` flag, i.e. ``send`` and ``'receive'`` events, and
the default handler that prints them). Left out: call tracing and match
specifications, trace ports, sequential tracing (``seq_trace``), and any
trace flag other than messages.

How it works
------------
The runtime has one hook, ``erlang._trace_hook``, that is ``None`` while
nothing is traced: a delivered message then costs one ``None`` test and
nothing else. :meth:`Tracer.start` plugs a recorder into that hook on every
node (through ``Cluster.rpc``, which reaches a node even during a
partition). The recorder notes two kinds of events, as ``dbg`` does:

- **receive**: a message was put in a local mailbox. The sender is the
  process running at that moment (the runtime does not carry a sender with
  a message, and neither does Erlang's ``receive`` trace event); for a
  message that came from another node that is the distribution's reader,
  which is no process, so the sender is unknown there.
- **send**: a message left this node for another one (a remote pid or
  ``(name, node)``). This is where the sender of a remote message is known.

A message between two nodes is thus recorded twice, a ``send`` on the
sending node and a ``receive`` on the receiving one; :meth:`Tracer.stop`
pairs them into one :class:`Message` by receiver and equal message, in
order (messages between two processes arrive in the order sent). A send
with no receipt is a *lost* message (its receiver was dead, or a partition
cut it off); a receipt whose sender is unknown is drawn as coming from the
node's edge (a "found" message, in UML's words).

Which events are kept: every event whose sender or receiver is traced. A
remote arrival's sender is not known when it arrives, so each node also
keeps its untraced arrivals until the stop, which keeps those that pair
with a traced send and drops the rest.

Timestamps are wall-clock seconds (``time.time``), comparable between the
nodes of one host; the log and the picture show milliseconds since
:meth:`Tracer.start`. Terms are printed in Erlang syntax (``{join,chat,<b.42.0>}``)
by :func:`repg2.tools.drawing.format_term`; a pid prints as ``<node.number.serial>``, the
short node name standing where Erlang prints a node index. The diagram is a
:class:`repg2.tools.drawing.Picture`.

Pitfalls: a node started after :meth:`Tracer.start` (``Cluster.restart``) is
not traced; a node that died loses its records. Tracing holds every
recorded event in memory until the stop (at most ``limit`` per node).
"""

from __future__ import annotations

import itertools
import logging
import pickle
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

from repg2 import erlang, net_kernel
from repg2.erlang import Pid, Ref
from repg2.tools.drawing import Picture, format_term, short_node

__all__ = [
    "Event",
    "Message",
    "SequenceDiagram",
    "Trace",
    "Tracer",
    "is_tracing",
    "tag_of",
]

log = logging.getLogger("repg2.tools.trace")

# -- What is traced and how it is recorded ------------------------------------------
Item = Pid | str  # what dbg:p/2 takes: a pid, or a registered name (on every node)
Node = str  # a node name: 'a@127.0.0.1'

DEFAULT_LIMIT = 100_000  # events kept per node; more are counted and dropped, as a full trace port drops
RUNTIME = "runtime"  # how the log and the picture name the sender of a message the runtime made


class Event(NamedTuple):
    """One trace event as a node recorded it: a message delivered here, or one that left for another node."""

    kind: str  # 'receive' (put in a local mailbox) or 'send' (handed to the distribution)
    node: Node  # the node that recorded it
    time: float  # time.time() when it happened, seconds
    seq: int  # order of recording on that node (breaks ties between equal times)
    sender: Pid | None  # the process running when it happened; None when it was no process
    sender_name: str | None  # the sender's registered name, if any
    receiver: Pid | None  # the receiving pid (a send to (name, node) does not know it)
    receiver_name: str | None  # the receiver's registered name, or the name a send was addressed to
    receiver_node: Node
    msg: Any
    traced: bool  # False: an arrival from another node kept only to pair with a traced send


class Message(NamedTuple):
    """One message, sender to receiver: a local delivery, or a send paired with its receipt.

    Times are seconds since the trace started; ``received`` is None for a
    lost message, ``sender`` None when the sender is unknown or when the
    runtime made the message (``from_runtime``: a ``'DOWN'``, an ``'EXIT'``,
    a ``nodeup`` or ``nodedown``). For those, ``sender_node`` names the node
    whose runtime made it: the dead process's node, or the receiver's own
    node when the reason is ``noconnection`` (a lost connection is noticed
    on this side) and for ``nodeup``/``nodedown``.
    """

    sender: Pid | None
    sender_node: Node
    receiver: Pid | None
    receiver_name: str | None
    receiver_node: Node
    msg: Any
    sent: float
    received: float | None
    from_runtime: bool = False

    @property
    def label(self) -> str:
        """The message's tag, as the diagram labels its arrow (``$gen_call join``)."""
        return tag_of(self.msg)


class _Spec(NamedTuple):
    """What a node's recorder traces: pids and registered names, or everything."""

    pids: frozenset[Pid]
    names: frozenset[str]
    everything: bool
    limit: int


class Unpicklable(NamedTuple):
    """Stands for a recorded message that could not travel to the collecting node."""

    text: str  # repr() of the message, taken on the node that recorded it

    def __repr__(self) -> str:
        return self.text


# == The recorder: runs on every traced node ===========================================


class _Recorder:
    """The runtime's trace hook on one node: decides what to keep and keeps it.

    Both methods run on the message path of *every* message while tracing
    is on, in the sending thread (``_deliver`` even holds the receiver's
    mailbox lock), so they only test set membership and append to a list
    (atomic under the GIL); they never send or block.
    """

    def __init__(self, spec: _Spec, node: Node) -> None:
        self.spec = spec
        self.node = node
        self.events: list[Event] = []
        self.dropped = 0
        self._seq = itertools.count()
        # The traced pids of this node by their ids: an int lookup is much cheaper
        # on the message path than hashing a Pid.
        self._local_ids = frozenset(pid.id for pid in spec.pids if pid.is_local())

    def _traced(self, proc: Any) -> bool:
        """Say whether a local process record is traced, by pid or by one of its names."""
        return proc.pid.id in self._local_ids or bool(proc.names and not self.spec.names.isdisjoint(proc.names))

    def _keep(self, event: Event) -> None:
        """Append an event unless the limit is reached."""
        if len(self.events) >= self.spec.limit:
            self.dropped += 1
            return
        self.events.append(event)

    def delivered(self, proc: Any, msg: Any) -> None:
        """Record a message put in a local mailbox, if its sender or receiver is traced."""
        # A 'DOWN' or 'EXIT' is made by the runtime for the process that ended, on whichever
        # thread ran that exit (the killer's, for a kill); a nodeup or nodedown by net_kernel, on
        # whichever thread made or lost the connection. Neither is the running process's message.
        me = None if _implied_sender(msg) is not None or _from_net_kernel(msg) else _running()
        traced = self.spec.everything or self._traced(proc) or (me is not None and self._traced(me))
        if not traced and me is not None:
            return  # local traffic between untraced processes
        # Traced, or an arrival from another node (no running process) that
        # a traced send elsewhere may claim when the trace is collected.
        self._keep(
            Event(
                "receive",
                self.node,
                time.time(),
                next(self._seq),
                None if me is None else me.pid,
                _name(me),
                proc.pid,
                _name(proc),
                self.node,
                msg,
                traced,
            )
        )

    def sent(self, dest: Any, msg: Any) -> None:
        """Record a message leaving for another node, if its sender or receiver is traced."""
        me = _running()
        if isinstance(dest, Pid):
            rpid, rname, rnode = dest, None, dest.node
        else:
            rpid, rname, rnode = None, dest[0], dest[1]
        traced = (
            self.spec.everything
            or (me is not None and self._traced(me))
            or (rpid is not None and rpid in self.spec.pids)
            or (rname is not None and rname in self.spec.names)
        )
        if traced:
            self._keep(
                Event(
                    "send",
                    self.node,
                    time.time(),
                    next(self._seq),
                    None if me is None else me.pid,
                    _name(me),
                    rpid,
                    rname,
                    rnode,
                    msg,
                    True,
                )
            )


_NODE_EVENTS = frozenset(
    code
    for fun in (getattr(net_kernel, "_nodeup", None), getattr(net_kernel, "_nodedown", None))
    if fun is not None
    for code in [fun.__code__]
)


def _from_net_kernel(msg: Any) -> bool:
    """Say whether a ``nodeup``/``nodedown`` is being handed out by net_kernel right now.

    Only a message of that shape pays for the look up the stack, and a
    process that sends itself one (pg2's ``init`` does) keeps its own name
    as the sender.
    """
    if not (isinstance(msg, tuple) and len(msg) == 2 and msg[0] in ("nodeup", "nodedown")):
        return False
    frame: FrameType | None = sys._getframe(2)  # the caller of the hook's caller
    for _ in range(8):  # net_kernel's delivery is a few calls up: send, _send_pid, _deliver
        if frame is None:
            return False
        if frame.f_code in _NODE_EVENTS:
            return True
        frame = frame.f_back
    return False


def _running() -> Any:
    """Return the record of the process running in this thread, or None."""
    proc = getattr(erlang._tls, "proc", None)
    return None if proc is None or proc.dead else proc


def _name(proc: Any) -> str | None:
    """Return a process record's registered name, or None."""
    if proc is None or not proc.names:
        return None
    try:
        return str(next(iter(proc.names)))
    except (RuntimeError, StopIteration):  # unregistered at this very moment
        return None


# The recorder installed on this node, if any (one tracer per node, as dbg has).
_recorder: _Recorder | None = None


def _install(spec: _Spec) -> Node:
    """Start recording on this node (replacing any earlier recorder); return the node's name.

    Erlang: dbg:p/2 (on one node: set the m flag on the chosen processes)
    """
    global _recorder
    _recorder = _Recorder(spec, erlang.node())
    erlang._set_trace_hook(_recorder)
    return _recorder.node


def _uninstall(portable: bool = True) -> tuple[list[Event], int]:
    """Stop recording on this node; return its events and how many were dropped.

    Erlang: dbg:stop_clear/0 (on one node)

    ``portable``: make every message picklable, for the trip to another node.
    """
    global _recorder
    recorder, _recorder = _recorder, None
    erlang._set_trace_hook(None)
    if recorder is None:
        return [], 0
    return (_portable(recorder.events) if portable else recorder.events), recorder.dropped


def _snapshot(portable: bool = True) -> tuple[list[Event], int]:
    """Return this node's events so far, leaving the recorder running."""
    recorder = _recorder
    if recorder is None:
        return [], 0
    events = list(recorder.events)
    return (_portable(events) if portable else events), recorder.dropped


def _whereis(names: list[str]) -> dict[str, Pid]:
    """Return the pids registered on this node under ``names`` (those that exist)."""
    found = {name: erlang.whereis(name) for name in names}
    return {name: pid for name, pid in found.items() if isinstance(pid, Pid)}


def _portable(events: list[Event]) -> list[Event]:
    """Replace the messages that cannot be pickled by their repr, so the events can travel."""
    out = []
    for event in events:
        try:
            pickle.dumps(event.msg)
        except Exception:  # noqa: BLE001 - anything unpicklable travels as text
            event = event._replace(msg=Unpicklable(repr(event.msg)))
        out.append(event)
    return out


def is_tracing() -> bool:
    """Say whether this node's message path has a trace hook plugged in."""
    return erlang._trace_hook is not None


# == The tracer: runs on the node that drives the cluster ==================================


class Tracer:
    """Trace the messages of chosen processes on every node of a cluster.

    Erlang: dbg:tracer/0

    ``procs`` are pids and registered names (a name is traced on every
    node; ``'all'`` traces every process, as ``dbg:p(all, m)``).
    ``aliases`` give pids readable names in the log and the picture
    (``{erlang.self(): 'caller'}``); they name, they do not trace. Without a ``cluster`` only this node is
    traced. Use it as a context manager, or call :meth:`start` and
    :meth:`stop`::

        with Tracer(cluster, ["global_name_server", "pg2", me], aliases={me: "caller"}) as tracer:
            pg2.join("chat", pid)
        print(tracer.trace.log())
        tracer.trace.diagram().save("join.svg")
    """

    def __init__(
        self,
        cluster: Any = None,
        procs: Iterable[Item] = ("global_name_server", "pg2"),
        aliases: dict[Pid, str] | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.cluster = cluster
        self.procs = list(procs)
        self.aliases = dict(aliases or {})
        self.limit = limit
        self.trace: Trace | None = None
        self._nodes: list[Node] = []
        self._t0 = 0.0
        self._names: dict[Pid, str] = {}

    def _call(self, node: Node, fun: Any, *args: Any) -> Any:
        """Run ``fun(*args)`` on ``node`` (this node without a cluster)."""
        if self.cluster is None:
            return fun(*args)
        return self.cluster.rpc(node, fun, *args, timeout=10.0)

    def p(self, *items: Item) -> Tracer:
        """Add processes (pids or registered names) to trace; before :meth:`start`.

        Erlang: dbg:p/2
        """
        if self._nodes:
            raise RuntimeError("repg2.tools.trace: add processes before start()")
        self.procs.extend(items)
        return self

    def start(self) -> Tracer:
        """Plug a recorder into every live node's message path; return self.

        Erlang: dbg:tracer/0
        Erlang: dbg:p/2

        Names are also resolved to pids on every node now, so a send *by
        pid* to a traced server on another node is recorded where it leaves.
        """
        names = [p for p in self.procs if isinstance(p, str) and p != "all"]
        pids = {p for p in self.procs if isinstance(p, Pid)}
        everything = "all" in self.procs
        for item in self.procs:
            if not isinstance(item, (Pid, str)):
                raise TypeError(f"repg2.tools.trace: trace a pid or a registered name, not {item!r}")
        self._nodes = [erlang.node()] if self.cluster is None else list(self.cluster.live_nodes())
        for node in self._nodes:
            for name, pid in self._call(node, _whereis, names).items():
                pids.add(pid)
                self._names[pid] = name
        spec = _Spec(frozenset(pids), frozenset(names), everything, self.limit)
        try:
            for node in self._nodes:
                self._call(node, _install, spec)
        except BaseException:
            self._gather(_uninstall)  # leave no hook behind on the nodes that got one
            self._nodes = []
            raise
        self._t0 = time.time()  # times count from here: every node records by now
        return self

    def stop(self, settle: float = 1.0, quiet: float = 0.05) -> Trace:
        """Stop tracing on every node, collect the records, pair sends with receipts; return the trace.

        Erlang: dbg:stop_clear/0

        Messages may still be in flight when the traced work returns (a
        cast, an exchange, a message forwarded on). Before unplugging, the
        tracer polls the nodes until every recorded send has its receipt
        and nothing new was recorded for ``quiet`` seconds, for at most
        ``settle`` seconds; what stays unpaired after that is drawn as lost.
        """
        if not self._nodes:
            raise RuntimeError("repg2.tools.trace: stop() without start()")
        deadline = time.monotonic() + settle
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            events, _dropped, _missing = self._gather(_snapshot)
            if len(events) != seen:
                seen, since = len(events), time.monotonic()
            elif not _pair(events)[1] and time.monotonic() - since >= quiet:
                break
            time.sleep(0.005)  # polling interval of a deadline-bounded wait for messages in flight
        events, dropped, missing = self._gather(_uninstall)
        self._nodes, nodes = [], self._nodes
        self.trace = _build(events, nodes, self._t0, self._names, self.aliases, self.procs, dropped, missing)
        return self.trace

    def _gather(self, fun: Any) -> tuple[list[Event], int, list[Node]]:
        """Run ``fun`` (snapshot or uninstall) on every traced node; merge what they return."""
        events: list[Event] = []
        dropped = 0
        missing: list[Node] = []
        for node in self._nodes:
            try:
                got, lost = self._call(node, fun, node != erlang.node())
            except Exception as exc:  # noqa: BLE001 - a dead node keeps its records; say so and go on
                log.warning("repg2.tools.trace: no records from %s: %r", node, exc)
                missing.append(node)
                continue
            events.extend(got)
            dropped += lost
        return events, dropped, missing

    def __enter__(self) -> Tracer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self._nodes:
            self.stop()


# == Pairing sends with receipts ===========================================================


def _same(a: Any, b: Any) -> bool:
    """Compare two messages as terms; an exotic ``__eq__`` that fails counts as different."""
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - e.g. array comparisons
        return False


def _pair(events: list[Event]) -> tuple[list[tuple[Event | None, Event | None]], list[Event]]:
    """Pair each remote send with its receipt; return ``(pairs, unpaired sends)``.

    A pair is ``(send, receive)``; a local delivery is ``(None, receive)``;
    a lost message ``(send, None)``. Receipts are taken in time order and
    each is claimed by the earliest unpaired send to the same receiver (by
    pid, or by the name the send was addressed to) with an equal message:
    between two processes, messages arrive in the order sent.
    """
    ordered = sorted(events, key=lambda e: (e.time, e.node, e.seq))
    pending: dict[Node, list[Event]] = {}  # unpaired sends, by the node they went to, oldest first
    for event in ordered:
        if event.kind == "send":
            pending.setdefault(event.receiver_node, []).append(event)
    pairs: list[tuple[Event | None, Event | None]] = []
    for event in ordered:
        if event.kind != "receive":
            continue
        match = None
        if event.sender is None:  # an arrival from another node, or a message the runtime made
            sends = pending.get(event.node, [])
            for i, send in enumerate(sends):
                if send.receiver is not None:
                    to_it = send.receiver == event.receiver
                else:
                    to_it = send.receiver_name is not None and send.receiver_name == event.receiver_name
                if to_it and _same(send.msg, event.msg):
                    match = sends.pop(i)  # in order, so usually the first: the scan stays short
                    break
        if match is not None:
            pairs.append((match, event))
        elif event.traced:
            pairs.append((None, event))
    lost = [s for sends in pending.values() for s in sends]
    pairs.extend((s, None) for s in lost)
    return pairs, lost


def _implied_sender(msg: Any) -> Pid | None:
    """Return whom a runtime-made message is about: the pid in a ``'DOWN'`` or ``'EXIT'``."""
    if isinstance(msg, tuple):
        if len(msg) == 5 and msg[0] == "DOWN" and isinstance(msg[3], Pid):
            return msg[3]
        if len(msg) == 3 and msg[0] == "EXIT" and isinstance(msg[1], Pid):
            return msg[1]
    return None


def _runtime_node(msg: Any, sender: Pid | None, receiver_node: Node) -> Node | None:
    """Return the node whose runtime made this message, or None if a process sent it.

    A ``'DOWN'`` or ``'EXIT'`` recorded with no running sender is the
    runtime's: the dead process's node made it, unless the reason is
    ``noconnection``, which the receiver's node makes when it loses the
    connection. A ``nodeup``/``nodedown`` with no sender is net_kernel's, on
    the receiver's node.
    """
    if sender is not None or not isinstance(msg, tuple) or not msg:
        return None
    if len(msg) == 5 and msg[0] == "DOWN":
        about, reason = msg[3], msg[4]
    elif len(msg) == 3 and msg[0] == "EXIT":
        about, reason = msg[1], msg[2]
    elif len(msg) == 2 and msg[0] in ("nodeup", "nodedown"):
        return receiver_node
    else:
        return None
    if reason == "noconnection":
        return receiver_node
    if isinstance(about, Pid):
        return about.node
    if isinstance(about, tuple) and len(about) == 2 and isinstance(about[1], str):  # a monitor by {Name, Node}
        return about[1]
    return receiver_node


def _build(
    events: list[Event],
    nodes: list[Node],
    t0: float,
    names: dict[Pid, str],
    aliases: dict[Pid, str],
    procs: list[Item],
    dropped: int,
    missing: list[Node],
) -> Trace:
    """Turn every node's events into the messages of one trace."""
    # Every traced process gets a lifeline: the names resolved at the start, the pids given.
    watched = sorted(set(names) | {p for p in procs if isinstance(p, Pid)}, key=lambda p: p._key())
    names = dict(names)
    for event in events:
        if event.sender is not None and event.sender_name:
            names.setdefault(event.sender, event.sender_name)
        if event.kind == "receive" and event.receiver is not None and event.receiver_name:
            names.setdefault(event.receiver, event.receiver_name)
    by_name = {(pid.node, name): pid for pid, name in names.items()}
    messages = []
    for send, receipt in _pair(events)[0]:
        first = send if send is not None else receipt
        assert first is not None
        runtime = _runtime_node(first.msg, first.sender, first.receiver_node)
        sender = first.sender
        receiver = receipt.receiver if receipt is not None else first.receiver
        receiver_name = first.receiver_name if receipt is None else receipt.receiver_name
        if receiver is None and receiver_name is not None:
            receiver = by_name.get((first.receiver_node, receiver_name))
        if runtime is not None:
            sender_node = runtime
        else:
            sender_node = sender.node if sender is not None else first.node
        messages.append(
            Message(
                sender=sender,
                sender_node=sender_node,
                receiver=receiver,
                receiver_name=receiver_name,
                receiver_node=first.receiver_node,
                msg=first.msg,
                sent=first.time - t0,
                received=None if receipt is None else receipt.time - t0,
                from_runtime=runtime is not None,
            )
        )
    messages.sort(key=lambda m: (m.sent, m.received if m.received is not None else m.sent))
    kept = sorted((e for e in events if e.traced), key=lambda e: (e.time, e.node, e.seq))
    order = [p for p in procs if isinstance(p, str)]
    return Trace(nodes, messages, kept, names, dict(aliases), order, t0, dropped, missing, watched)


# == Labels: what the diagram writes on an arrow =========================================


def _is_tag(term: Any) -> bool:
    """Say whether a term is a call's tag: a ref, or ``(ref, node)`` as multi_call makes them."""
    return isinstance(term, Ref) or (isinstance(term, tuple) and len(term) == 2 and isinstance(term[0], Ref))


def _head(term: Any) -> str:
    """Return the tag of a request: its first atom, or the term itself when short."""
    if isinstance(term, tuple) and term and isinstance(term[0], str):
        return format_term(term[0])  # an atom, quoted if Erlang would quote it
    return format_term(term, 16)


def tag_of(msg: Any) -> str:
    """Return the short label the diagram puts on a message's arrow.

    ``$gen_call set_lock`` (a gen_server call and its request's tag),
    ``$gen_cast exchange``, ``system get_state``, ``reply true`` (the answer
    to a call: ``{Tag, Reply}``), ``DOWN (killed)`` and ``EXIT (normal)``
    with their reason (``killed`` and ``noconnection`` are different
    stories), ``nodeup (b)`` and ``nodedown (c)`` with the node's short
    name, or the first atom of any other tuple (``new_pg2``).
    """
    match msg:
        case Unpicklable():  # first: it is a tuple of one string, which the tuple clauses below would take
            return "?"
        case ("$gen_call", _from, request):
            return f"$gen_call {_head(request)}"
        case ("$gen_cast", request):
            return f"$gen_cast {_head(request)}"
        case ("system", _from, request):
            return f"system {_head(request)}"
        case (tag, answer) if _is_tag(tag):
            return f"reply {format_term(answer, 14)}"
        case ("DOWN", _ref, _type, _who, reason):
            return f"DOWN ({format_term(reason, 24)})"
        case ("EXIT", _who, reason):
            return f"EXIT ({format_term(reason, 24)})"
        case ("nodeup" | "nodedown" as event, str() as node):
            return f"{event} ({short_node(node)})"
        case (str() as first, *_):
            return first
        case str():
            return msg
    return format_term(msg, 16)


def _kind(msg: Any) -> str:
    """Sort a message into the diagram's styles: call, reply, cast, signal or info."""
    match msg:
        case ("$gen_call", _, _) | ("system", _, _):
            return "call"
        case (tag, _) if _is_tag(tag):
            return "reply"
        case ("$gen_cast", _):
            return "cast"
        case ("DOWN", *_) | ("EXIT", *_) | ("nodeup", _) | ("nodedown", _):
            return "signal"
    return "info"


# == The trace, as read ===============================================================================


@dataclass
class Trace:
    """The messages a :class:`Tracer` recorded, ready to read, search and draw.

    ``messages`` are in the order sent. ``events`` are the raw records of
    the traced processes, node by node (see :meth:`format_events`).
    ``missing`` lists nodes whose records could not be collected;
    ``dropped`` counts events over a node's limit; ``watched`` are the
    traced pids (the registered names resolved on every node, and the pids
    given), each of which gets a lifeline.
    """

    nodes: list[Node]
    messages: list[Message]
    events: list[Event]
    names: dict[Pid, str]
    aliases: dict[Pid, str]
    order: list[str]
    t0: float
    dropped: int = 0
    missing: list[Node] = field(default_factory=list)
    watched: list[Pid] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.messages)

    def who(self, pid: Pid | None, node: Node | None = None, name: str | None = None) -> str:
        """Name a process for a reader: its alias, its registered name, or its pid; with its node."""
        return f"{self.label(pid, name)}@{short_node(pid.node if pid is not None else node or '?')}"

    def sender_of(self, m: Message) -> str:
        """Name a message's sender for a reader: ``caller@a``, ``runtime@b``, or ``?@c`` if unknown."""
        return self.who(m.sender, m.sender_node, RUNTIME if m.from_runtime else None)

    def label(self, pid: Pid | None, name: str | None = None) -> str:
        """Name a process without its node: alias, registered name, pid, or ``?``."""
        if pid is not None and pid in self.aliases:
            return self.aliases[pid]
        if pid is not None and pid in self.names:
            return self.names[pid]
        if name is not None:
            return name
        return "?" if pid is None else format_term(pid)

    def labels(self) -> list[str]:
        """Return every message's label, in order."""
        return [m.label for m in self.messages]

    def find(
        self,
        label: str | None = None,
        sender: str | Pid | None = None,
        receiver: str | Pid | None = None,
        node: Node | None = None,
    ) -> list[Message]:
        """Return the messages with this label (or label prefix), sender, receiver, receiving node.

        ``sender`` and ``receiver`` are pids or labels (an alias or a
        registered name, e.g. ``'pg2'``); ``sender='runtime'`` finds the
        messages the runtime made (``'DOWN'``, ``nodeup``...).
        """

        return [
            m
            for m in self.messages
            if (label is None or m.label == label or m.label.startswith(label + " "))
            and (sender is None or self._is(sender, m.sender, RUNTIME if m.from_runtime else None))
            and (receiver is None or self._is(receiver, m.receiver, m.receiver_name))
            and (node is None or m.receiver_node == node)
        ]

    def _is(self, who: str | Pid, pid: Pid | None, name: str | None) -> bool:
        """Say whether a process (``pid``, or known by ``name``) is ``who``: that pid, or that label."""
        if isinstance(who, Pid):
            return pid == who
        return self.label(pid, name) == who

    def select(self, *procs: str | Pid) -> Trace:
        """Return the part of this trace that involves these processes, as a trace of its own.

        ``procs`` are pids or labels (an alias or a registered name), as
        :meth:`find` takes them. A message is kept when its sender or its
        receiver is one of them, a raw event likewise, and a traced process
        keeps its lifeline only if it is one of them. So one trace of two
        servers that watched the same events (every node's ``'pg2'`` and
        ``'pg'``, say) gives each server its own log and its own picture.
        """

        def chosen(pid: Pid | None, name: str | None) -> bool:
            """Say whether a process is one of ``procs``."""
            return any(self._is(who, pid, name) for who in procs)

        return replace(
            self,
            messages=[
                m
                for m in self.messages
                if chosen(m.receiver, m.receiver_name) or chosen(m.sender, RUNTIME if m.from_runtime else None)
            ],
            events=[e for e in self.events if chosen(e.receiver, e.receiver_name) or chosen(e.sender, e.sender_name)],
            names=dict(self.names),
            aliases=dict(self.aliases),
            order=[name for name in self.order if name in procs],
            watched=[pid for pid in self.watched if chosen(pid, None)],
        )

    def log(self, width: int = 110) -> str:
        """Render the trace as a text log, one message a line, in the order sent.

        Erlang: dbg:dhandler/2 (the default handler that prints each trace message)

        Columns: milliseconds since the start when sent and when received
        (``lost`` if never), sender, receiver, label, then the message in
        Erlang syntax, cut to fit ``width``.
        """
        rows = []
        for m in self.messages:
            got = "lost" if m.received is None else f"{m.received * 1000:8.2f}"
            rows.append(
                (
                    f"{m.sent * 1000:8.2f}",
                    f"{got:>8}",
                    self.sender_of(m),
                    self.who(m.receiver, m.receiver_node, m.receiver_name),
                    m.label,
                    m.msg,
                )
            )
        w_from = max([len(r[2]) for r in rows] + [4])
        w_to = max([len(r[3]) for r in rows] + [2])
        w_tag = max([len(r[4]) for r in rows] + [5])
        head = f"{'sent ms':>8} {'recv ms':>8}  {'from':<{w_from}}    {'to':<{w_to}}  {'label':<{w_tag}}  message"
        lines = [head, "-" * min(width, len(head) + 20)]
        for sent, got, frm, to, tag, msg in rows:
            line = f"{sent} {got}  {frm:<{w_from}} -> {to:<{w_to}}  {tag:<{w_tag}}  "
            lines.append(line + format_term(msg, max(16, width - len(line))))
        if not rows:
            lines.append("(no messages)")
        if self.missing:
            lines.append(f"(no records from {', '.join(self.missing)})")
        if self.dropped:
            lines.append(f"({self.dropped} events dropped over the limit)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.log()

    def format_events(self, width: int = 110) -> str:
        """Render the raw events as dbg prints them: ``(pid) << Msg`` and ``(pid) To ! Msg``.

        Erlang: dbg:dhandler/2

        One line per event of a traced process, as each node recorded it, in
        time order; the sender of a message that came from another node is
        shown as ``(?)``, as the receiving node does not know it.
        """
        lines = []
        for e in self.events:
            at = f"{(e.time - self.t0) * 1000:8.2f} ms {short_node(e.node)}:"
            if e.kind == "receive":
                line = f"{at} ({self.label(e.receiver, e.receiver_name)}) << "
            else:
                to = self.who(e.receiver, e.receiver_node, e.receiver_name)
                line = f"{at} ({self.label(e.sender)}) {to} ! "
            lines.append(line + format_term(e.msg, max(16, width - len(line))))
        return "\n".join(lines) if lines else "(no events)"

    def index(self, label: str) -> int:
        """Return the position of the first message with this label (or label prefix).

        Raises:
            ValueError: no message has that label.
        """
        for i, m in enumerate(self.messages):
            if m.label == label or m.label.startswith(label + " "):
                return i
        raise ValueError(f"repg2.tools.trace: no message labelled {label!r}")

    def diagram(
        self,
        title: str | None = None,
        max_messages: int = 150,
        sections: Mapping[str, int | tuple[int, str]] | None = None,
        notes: Mapping[int, str] | None = None,
        ignored: Iterable[str] = (),
    ) -> SequenceDiagram:
        """Return the sequence diagram of this trace (draws nothing until asked).

        ``sections`` names the phases of the story by the position of their
        first message, with an optional short note:
        ``{'1 lock': (0, 'set_lock on every node'), '2 work': trace.index('$gen_call join')}``.
        Each phase is a band across the diagram, headed by its name and note.
        ``notes`` puts a note box under a message, on its receiver's lifeline
        (``{trace.index('$gen_cast exchange'): 'store: add what is missing'}``).
        ``ignored`` lists labels (or label prefixes, as :meth:`find` takes
        them) of messages their receiver drops: they are drawn faded and
        marked ``(ignored)``.
        """
        return SequenceDiagram(self, title, max_messages, sections, notes, ignored)

    def save(self, path: str | Path, title: str | None = None) -> Path:
        """Save the sequence diagram as SVG or PNG (by the file's suffix); return the path."""
        return self.diagram(title).save(path)

    def _repr_png_(self) -> bytes:
        """Show the trace as its sequence diagram in Jupyter."""
        return self.diagram().png()


# == The sequence diagram ======================================================================

_STYLE = {  # kind: (colour, line style, what the legend calls it)
    "call": ("#1f5fa8", "-", "call ($gen_call, system)"),
    "reply": ("#6b6b6b", "--", "reply {Tag, Reply}"),
    "cast": ("#2e8b57", "-", "cast ($gen_cast)"),
    "signal": ("#c0392b", "-", "made by the runtime (DOWN, EXIT, nodeup, nodedown)"),
    "info": ("#7d3c98", "-", "other message"),
}
_NODE_FILLS = ("#e8f0fa", "#f8f0e0", "#e9f5ea", "#f5e9f2", "#f0f0f0")  # one tint per node, in turn
COLUMN_IN = 1.55  # inches per lifeline
ROW_IN = 0.40  # inches per message row
HEAD_ROWS = 2.2  # rows above the first message: node names, lifeline boxes
PHASE_ROWS = 1.35  # rows above a phase's first message, for its heading
NOTE_LINE_ROWS = 0.42  # rows per line of a note box under a message
FADED = 0.3  # opacity of a message its receiver ignores
MONO = "monospace"  # DejaVu Sans Mono (ships with matplotlib); an SVG also names fallbacks for browsers
_LABEL_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.9}
_NOTE_BOX = {"boxstyle": "round,pad=0.35", "fc": "#fff8d6", "ec": "#c9a800", "lw": 0.7}
_HEADING_BOX = {"boxstyle": "round,pad=0.25", "fc": "white", "ec": "none", "alpha": 0.92}


@dataclass
class _Lifeline:
    """One process's column in the diagram (or the runtime's, on one node)."""

    key: Any  # a Pid, ('name', node, name) for a receiver known only by name, ('runtime', node)
    node: Node
    label: str
    x: float = 0.0


@dataclass
class _Layout:
    """Where each part of the diagram goes, in rows from the top of the first phase."""

    ys: list[float]  # the row of each message's arrow
    bands: list[tuple[str, str, float, float]]  # each phase: name, note, top, bottom
    notes: dict[int, tuple[float, str]]  # under message i: the note box's centre row and its text
    nrows: float  # rows in all


class SequenceDiagram(Picture):
    """A trace drawn as a sequence diagram with matplotlib: lifelines by node, one arrow per message.

    Lifelines are grouped by node, in the cluster's order; in a node, the
    runtime comes first (when it sent something), then aliased processes,
    unnamed ones, then the traced names in the order given to the tracer.
    Every traced process has a lifeline, silent or not. Time runs down, one
    row per message in the order sent; the left margin gives the send time
    in ms. Calls are solid blue, replies dashed grey, casts green, and what
    the runtime makes (``DOWN (reason)``, ``EXIT (reason)``, ``nodeup``,
    ``nodedown``) red, from the ``runtime`` lifeline of the node that made
    it. A message that was never received ends in a cross (lost); one whose
    sender is unknown starts from a dot at its node's edge (found); one its
    receiver ignores is faded. Phases are bands with a heading, notes are
    boxes under the message they follow (see :meth:`Trace.diagram`).
    """

    def __init__(
        self,
        trace: Trace,
        title: str | None = None,
        max_messages: int = 150,
        sections: Mapping[str, int | tuple[int, str]] | None = None,
        notes: Mapping[int, str] | None = None,
        ignored: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.trace = trace
        self.title = title
        self.max_messages = max_messages
        self.sections = {name: (at, "") if isinstance(at, int) else at for name, at in (sections or {}).items()}
        self.notes = dict(notes or {})
        self.ignored = tuple(ignored)

    def is_ignored(self, m: Message) -> bool:
        """Say whether the receiver drops this message (its label is one of ``ignored``)."""
        return any(m.label == label or m.label.startswith(label + " ") for label in self.ignored)

    # -- Layout ------------------------------------------------------------------------------

    @staticmethod
    def _party(pid: Pid | None, node: Node, name: str | None) -> Any:
        """Return the key of the lifeline a message end belongs to."""
        if pid is not None:
            return pid
        return ("name", node, name) if name is not None else ("edge", node)

    def _lifelines(self, messages: list[Message]) -> tuple[list[_Lifeline], list[Node]]:
        """Choose and order the lifelines: by node, then runtime, aliases, unnamed pids, traced names."""
        trace = self.trace
        found: dict[Any, _Lifeline] = {pid: _Lifeline(pid, pid.node, trace.label(pid)) for pid in trace.watched}
        for m in messages:
            key = self._party(m.receiver, m.receiver_node, m.receiver_name)
            if key not in found:
                name = key[2] if isinstance(key, tuple) else None
                found[key] = _Lifeline(key, m.receiver_node, trace.label(m.receiver, name))
            if m.from_runtime:
                found.setdefault(
                    ("runtime", m.sender_node), _Lifeline(("runtime", m.sender_node), m.sender_node, RUNTIME)
                )
            elif m.sender is not None and m.sender not in found:
                found[m.sender] = _Lifeline(m.sender, m.sender_node, trace.label(m.sender))
        nodes = list(trace.nodes) + sorted({line.node for line in found.values()} - set(trace.nodes))
        aliases = list(trace.aliases)

        def rank(line: _Lifeline) -> tuple[Any, ...]:
            """Sort key: node, then the runtime, alias order, unnamed pids, traced names in order, other names."""
            node_rank = nodes.index(line.node)
            if isinstance(line.key, tuple) and line.key[0] == "runtime":
                return (node_rank, -1, 0, "")
            if line.key in trace.aliases:
                return (node_rank, 0, aliases.index(line.key), "")
            if line.label in trace.order:
                return (node_rank, 2, trace.order.index(line.label), "")
            if isinstance(line.key, Pid) and line.key not in trace.names:
                return (node_rank, 1, line.key.id, "")
            return (node_rank, 3, 0, line.label)

        lines = sorted(found.values(), key=rank)
        for i, line in enumerate(lines):
            line.x = float(i)
        return lines, [n for n in nodes if any(line.node == n for line in lines)]

    def _layout(self, count: int) -> _Layout:
        """Give each message its row, each phase its band and each note its place."""
        starts = {at: (name, note) for name, (at, note) in self.sections.items() if 0 <= at < count}
        ys: list[float] = []
        notes: dict[int, tuple[float, str]] = {}
        heads: list[tuple[str, str, float]] = []
        y = 0.0
        for row in range(count):
            if row in starts:
                heads.append((*starts[row], y))
                y += PHASE_ROWS
            ys.append(y)
            y += 1.0
            text = self.notes.get(row)
            if text:
                height = NOTE_LINE_ROWS * (text.count("\n") + 1) + 0.2
                notes[row] = (ys[-1] + 0.45 + height / 2, text)
                y += height
        bands = []
        for i, (name, note, top) in enumerate(heads):
            bottom = heads[i + 1][2] if i + 1 < len(heads) else y
            bands.append((name, note, top - 0.15, bottom - 0.2))
        return _Layout(ys, bands, notes, max(1.0, y))

    # -- Drawing -----------------------------------------------------------------------------

    def _draw(self) -> Any:
        """Draw the diagram on a new Figure."""
        from matplotlib.figure import Figure

        messages = self.trace.messages[: self.max_messages]
        lines, nodes = self._lifelines(messages)
        layout = self._layout(len(messages))
        ncols, nrows = max(1, len(lines)), layout.nrows
        fig = Figure(figsize=(1.0 + ncols * COLUMN_IN, (nrows + HEAD_ROWS + 1.6) * ROW_IN))
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_xlim(-1.1, ncols - 0.45)
        ax.set_ylim(nrows + 1.1, -HEAD_ROWS - 0.5)  # rows count down the page
        ax.axis("off")
        self._draw_nodes(ax, lines, nodes, nrows)
        self._draw_phases(ax, layout, ncols)
        self._draw_lifelines(ax, lines, nrows)
        by_key = {line.key: line for line in lines}
        for y, m in zip(layout.ys, messages, strict=True):
            self._draw_message(ax, y, m, by_key, lines)
        for row, (y, text) in layout.notes.items():
            m = messages[row]
            x = by_key[self._party(m.receiver, m.receiver_node, m.receiver_name)].x
            ax.text(x, y, text, ha="center", va="center", fontsize=8, zorder=6, linespacing=1.25, bbox=_NOTE_BOX)
        middle = (ncols - 1) / 2
        if not messages:
            ax.text(middle, 0.3, "no messages", ha="center", va="center", fontsize=11, style="italic", bbox=_LABEL_BOX)
        if len(self.trace.messages) > len(messages):
            more = len(self.trace.messages) - len(messages)
            ax.text(middle, nrows, f"... and {more} more messages", ha="center", va="top", fontsize=8, style="italic")
        self._draw_legend(fig, messages)
        if self.title:
            fig.suptitle(self.title, fontsize=12, y=1.0, va="bottom")
        return fig

    @staticmethod
    def _draw_nodes(ax: Any, lines: list[_Lifeline], nodes: list[Node], nrows: float) -> None:
        """Draw a tinted band behind each node's lifelines, headed ``node a`` (the short name)."""
        from matplotlib.patches import Rectangle

        for i, node in enumerate(nodes):
            xs = [line.x for line in lines if line.node == node]
            left, right = min(xs) - 0.47, max(xs) + 0.47
            band = Rectangle((left, -HEAD_ROWS - 0.25), right - left, nrows + HEAD_ROWS + 0.4, zorder=0)
            band.set_color(_NODE_FILLS[i % len(_NODE_FILLS)])
            ax.add_patch(band)
            title = f"node {short_node(node)}"
            ax.text((left + right) / 2, -HEAD_ROWS + 0.05, title, ha="center", va="center", fontsize=10, weight="bold")

    @staticmethod
    def _draw_phases(ax: Any, layout: _Layout, ncols: int) -> None:
        """Draw each phase as a band across the diagram, headed by its name and its note."""
        from matplotlib.patches import Rectangle

        left, right = -1.1, ncols - 0.45
        for i, (name, note, top, bottom) in enumerate(layout.bands):
            shade = Rectangle((left, top), right - left, bottom - top, zorder=0.5, lw=0)
            shade.set(facecolor="#5a5a5a", alpha=0.07 if i % 2 == 0 else 0.0)
            ax.add_patch(shade)
            ax.plot([left, right], [top, top], color="#555555", lw=0.9, zorder=0.6)
            y = top + 0.55
            heading = ax.text(
                left + 0.05, y, name, va="center", fontsize=9.5, weight="bold", zorder=7, bbox=_HEADING_BOX
            )
            if note:
                ax.annotate(
                    note,
                    xy=(1.0, 0.5),
                    xycoords=heading,
                    xytext=(7, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=9,
                    style="italic",
                    color="#333333",
                    zorder=7,
                    bbox=_HEADING_BOX,
                )

    @staticmethod
    def _draw_lifelines(ax: Any, lines: list[_Lifeline], nrows: float) -> None:
        """Draw each lifeline: a box with the process's name, a dashed line down."""
        from matplotlib.patches import FancyBboxPatch

        for line in lines:
            ax.plot([line.x, line.x], [-0.75, nrows + 0.1], color="#9a9a9a", lw=0.9, ls=(0, (3, 3)), zorder=1)
            box = FancyBboxPatch((line.x - 0.44, -1.35), 0.88, 0.6, boxstyle="round,pad=0.02,rounding_size=0.08")
            box.set(facecolor="white", edgecolor="#555555", lw=0.9, zorder=2)
            ax.add_patch(box)
            ax.text(line.x, -1.05, _fit(line.label, 19), ha="center", va="center", fontsize=8.5, family=MONO, zorder=3)

    def _draw_message(
        self, ax: Any, y: float, m: Message, by_key: dict[Any, _Lifeline], lines: list[_Lifeline]
    ) -> None:
        """Draw one message: its send time on the left, an arrow, its label above the arrow."""
        colour, style, _ = _STYLE[_kind(m.msg)]
        ignored = self.is_ignored(m)
        alpha = FADED if ignored else 1.0
        text = {"fontsize": 8.5, "color": colour, "family": MONO, "zorder": 5, "bbox": _LABEL_BOX}
        if ignored:
            text["alpha"] = min(1.0, FADED + 0.3)
        ax.text(-1.05, y, f"{m.sent * 1000:7.2f} ms", va="center", fontsize=8, color="#555555", family=MONO)
        target = by_key[self._party(m.receiver, m.receiver_node, m.receiver_name)]
        found = not m.from_runtime and (m.sender is None or m.sender not in by_key)
        if m.from_runtime:
            x0 = by_key[("runtime", m.sender_node)].x
        elif found:  # an unknown sender: start at the edge of the receiver's node group
            x0 = min(line.x for line in lines if line.node == target.node) - 0.45
        else:
            x0 = by_key[m.sender].x
        x1 = target.x
        label = m.label if m.received is not None else m.label + " (lost)"
        if ignored:
            label += " (ignored)"
        arrow = {"arrowstyle": "-|>", "color": colour, "lw": 1.3, "ls": style, "shrinkA": 0, "shrinkB": 0}
        arrow["alpha"] = alpha
        if x0 == x1:  # a message to itself: a small loop to the right of the lifeline
            arrow.update(lw=1.1, connectionstyle="arc,angleA=0,angleB=0,armA=22,armB=22,rad=4")
            ax.annotate("", xy=(x1 + 0.03, y + 0.18), xytext=(x1 + 0.03, y - 0.18), arrowprops=arrow, zorder=4)
            ax.text(x1 + 0.3, y, label, ha="left", va="center", **text)
            return
        end = x1 - (0.03 if x1 > x0 else -0.03)
        ax.annotate("", xy=(end, y), xytext=(x0, y), arrowprops={**arrow, "mutation_scale": 11}, zorder=4)
        if found:
            ax.plot([x0], [y], marker="o", color=colour, markersize=4.5, zorder=5, alpha=alpha)
        if m.received is None:  # lost: a cross where it would have arrived
            ax.plot([x1], [y], marker="x", color="#c0392b", markersize=8, mew=2, zorder=6)
        ax.text((x0 + x1) / 2, y - 0.13, label, ha="center", va="bottom", **text)

    def _draw_legend(self, fig: Any, messages: list[Message]) -> None:
        """Explain the arrow styles that occur, under the diagram."""
        from matplotlib.lines import Line2D

        kinds = sorted({_kind(m.msg) for m in messages}, key=list(_STYLE).index)
        handles = [Line2D([], [], color=_STYLE[k][0], ls=_STYLE[k][1], lw=1.3, label=_STYLE[k][2]) for k in kinds]
        if any(self.is_ignored(m) for m in messages):
            handles.append(Line2D([], [], color="#555555", alpha=FADED + 0.1, lw=1.3, label="ignored by its receiver"))
        if any(m.received is None for m in messages):
            handles.append(Line2D([], [], color="#c0392b", marker="x", ls="none", mew=2, label="lost"))
        if any(m.sender is None and not m.from_runtime for m in messages):
            handles.append(Line2D([], [], color="#555555", marker="o", ls="none", label="sender unknown"))
        if handles:
            ncol = len(handles) if len(handles) <= 3 else (len(handles) + 1) // 2
            fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8.5, frameon=False)


def _fit(text: str, width: int) -> str:
    """Cut a label to ``width`` characters, marking the cut."""
    return text if len(text) <= width else text[: width - 1] + "\u2026"
