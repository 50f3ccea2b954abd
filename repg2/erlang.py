"""Erlang processes, pids, refs, messages, monitors, links and exit signals, on threads.

This module stands in for the part of the Erlang runtime (the ``erlang`` BIFs)
that pg2 and the OTP modules under it use. It is not a translation of an
Erlang *file*: the originals are C functions inside the BEAM, documented in
the ``erlang`` module's reference manual (OTP 18.3). Every public function
names the BIF it stands for in an ``Erlang:`` line.

Ported: ``self/0``, ``spawn/1``, ``spawn_link/1``, ``spawn_monitor/1``,
``send/2`` (``!``), ``receive ... after`` (as :func:`receive`),
``make_ref/0``, ``monitor/2`` and ``demonitor/1,2`` for processes, ``link/1``,
``unlink/1``, ``exit/1,2``, ``process_flag(trap_exit, _)``, ``register/2``,
``unregister/1``, ``whereis/1``, ``registered/0``, ``is_process_alive/1``,
``node/0,1``, ``nodes/0``, ``disconnect_node/1``, ``error/1``,
``timer:sleep/1``.

Left out: process priorities, process dictionaries, group leaders,
``spawn_opt``, monitors of ports and of nodes (node monitoring is
``net_kernel:monitor_nodes``), ``hibernate``, code loading, timers other than
``sleep``.

How it works
------------
Each Erlang process is a Python thread with a mailbox (a list guarded by a
``Condition``). ``receive`` scans the mailbox for the first message the
caller's predicate accepts and leaves the rest where they were, exactly like
Erlang's selective receive. A plain thread that calls :func:`self` (the
pytest main thread, a notebook's kernel thread) becomes a process then.

Pids and refs are small immutable values. A pid of this node is *local*: it
reports whatever name the node has now, so a pid made before
``net_kernel.start`` is still this node's pid afterwards, as in Erlang.

Pid and ref notation, one everywhere (repr, tables, traces, notebooks).
Erlang prints a pid as ``<N.Number.Serial>`` where ``N`` is 0 for this node
and otherwise an index into the printing node's own table of nodes, a number
that means nothing anywhere else. RePy2 prints the node *name* there::

    <0.42.0>                 a pid of this node: Number 42, Serial 0
    <b@127.0.0.1.88.0>       a pid of node b@127.0.0.1: Number 88, Serial 0
    #Ref<0.0.0.17>           a ref of this node: its ID words, last word first
    #Ref<b@127.0.0.1.0.3.5>  a ref of node b@127.0.0.1

A remote pid's node name contains dots itself, so read a pid from the right:
the last two numbers are Number and Serial. The creation (which incarnation
of the node) is not printed, as Erlang does not print it either.

Links and monitors are kept in one table per process, under one module-wide
lock. When a process ends, every process monitoring it gets a ``'DOWN'``
message and every linked process gets an exit signal, on this node or across
the distribution (``repg2.dist`` plugs itself in through :class:`DistHook`).
The message tracer (``repg2.tools.trace``) plugs in the same way, through
:class:`TraceHook`: one ``None`` test per delivered message when it is off.

Differences from OTP (see ``TRANSLATION_NOTES.md``):

- Threads cannot be pre-empted (D1). One liveness rule stands in for
  pre-emption: the moment a fatal exit signal is accepted, the process is
  dead to every observer (``is_process_alive`` False, its names free, its
  monitors and links fired, a new monitor ``'noproc'``, its tables gone).
  Its thread keeps running until its next call into the runtime
  (``receive``, ``send``, ``self``, ``spawn``, an ETS write...), where it
  unwinds before the call does anything.
- Timeouts are in seconds (Python's unit), not milliseconds.
- Messages are not copied: a process must not mutate a value it has sent.
- A process that raises ends with the exception object as its exit reason
  (Erlang uses ``{Reason, Stack}``); an :class:`ExitError` ends it with its
  ``reason``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = [
    "TIMEOUT",
    "DistHook",
    "ErlangError",
    "ErlangTypeError",
    "ExitError",
    "Pid",
    "Ref",
    "TraceHook",
    "current_process_or_none",
    "demonitor",
    "disconnect_node",
    "error",
    "exit",
    "is_process_alive",
    "link",
    "make_ref",
    "monitor",
    "node",
    "nodes",
    "on_process_exit",
    "process_flag",
    "receive",
    "register",
    "registered",
    "self",
    "send",
    "sleep",
    "spawn",
    "spawn_link",
    "spawn_monitor",
    "unlink",
    "unregister",
    "whereis",
]

log = logging.getLogger("repg2.erlang")

# -- How Erlang values are represented -------------------------------------
Atom = str  # an Erlang atom: 'ok', 'normal', 'noproc'
Term = Any  # any Erlang term: atoms, numbers, tuples, lists, pids, refs
Reason = Any  # an exit reason: usually an atom or a tuple
Timeout = float | int | str | None  # seconds, or 'infinity' / None for ever
Dest = Any  # a send destination: Pid | Atom | (Atom, node name) | Ref (an alias)


# == Exceptions: Erlang's error and exit classes ============================


class ErlangError(Exception):
    """An Erlang exception of class ``error`` (``erlang:error(Reason)``).

    Erlang: erlang:error/1

    The Erlang reason (``'badarg'``, ``('badmatch', X)``...) is kept in
    ``.reason`` so callers can match on it as Erlang code matches on
    ``{'EXIT', {badarg, _}}``.
    """

    def __init__(self, reason: Reason, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message if message is not None else repr(reason))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, str(self)))


class ExitError(Exception):
    """An Erlang exception of class ``exit`` (``erlang:exit(Reason)``).

    Erlang: erlang:exit/1

    Raised by :func:`exit` with one argument and by ``gen_server.call`` when
    the call fails (``('timeout', ...)``, ``'noproc'``...). Uncaught, it ends
    the process with ``.reason`` as its exit reason.
    """

    def __init__(self, reason: Reason, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message if message is not None else repr(reason))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, str(self)))


class ErlangTypeError(ErlangError, TypeError):
    """An Erlang error raised where an Erlang function fails a guard or has no matching clause.

    Erlang: none (function_clause and badarg on a guard, as a Python caller expects them)

    Erlang answers a call with a wrong argument type by failing with
    ``function_clause`` (no clause matched) or ``badarg`` (a BIF's guard).
    A Python caller expects a ``TypeError``; this is both, and ``.reason``
    carries Erlang's reason, so code written either way catches it. Each
    place that raises it is a listed divergence (the message names the
    Erlang function).
    """


class _ExitSignal(BaseException):
    """The exit signal that kills the current process, raised inside receive.

    Erlang: none (an Erlang process is killed by the runtime; a thread must unwind)

    A ``BaseException`` so that user code with ``except Exception`` cannot
    swallow it, as no Erlang code can catch an exit signal.
    """

    def __init__(self, reason: Reason) -> None:
        self.reason = reason
        super().__init__(reason)


def error(reason: Reason) -> None:
    """Raise an Erlang ``error`` exception with ``reason``.

    Erlang: erlang:error/1
    """
    raise ErlangError(reason)


def _badarg(what: str) -> ErlangError:
    """Build the ``badarg`` error with a message saying what was wrong.

    Erlang: none (Erlang's badarg carries no message; ours names the call)
    """
    return ErlangError("badarg", f"badarg: {what}")


# == Node identity ==========================================================


class _Identity:
    """This node's name and creation, changed by net_kernel.start/stop.

    Erlang: none (in the BEAM this is erts_this_node)
    """

    def __init__(self) -> None:
        self.name: str = "nonode@nohost"
        self.creation: int = 0


_identity = _Identity()


def _set_identity(name: str, creation: int) -> None:
    """Rename this node (net_kernel.start) or make it undistributed again.

    Erlang: none (net_kernel sets the node name inside the runtime)
    """
    _identity.name = name
    _identity.creation = creation


# == Pids and refs ===========================================================
# On the wire (the external term format, repg2.external) a pid is
# NEW_PID_EXT {Node, ID, Serial, Creation} and a reference is
# NEWER_REFERENCE_EXT {Node, Creation, up to 5 32-bit ID words}. Here each
# keeps its numbers as ONE integer, ``id``, packed so that comparing ids
# compares what OTP 25 compares:
#
#   pid.id = Serial << 32 | ID                 (ID and Serial are 32-bit fields)
#   ref.id = word[0] | word[1] << 32 | ...     (word[0] is the first on the wire)
#
# Term order, measured on OTP 25.2.3 (erts_cmp; see tests/test_terms.py, which
# sorts the same pids and refs on a real node and compares):
#
# - pids: Serial first, then ID, then the node name (as atoms compare), then
#   the creation: <aa@h.2.0> < <zz@h.1.1>, and <zz@h.1.0> < <aa@h.2.0>.
#   Local and remote pids are not told apart: a local pid compares with this
#   node's name and creation. So the key is (id, node, creation).
# - refs: the node name first, then the creation, then the ID words from the
#   LAST word to the first, a missing word counting as 0: a ref with words
#   [1, 0, 0] equals (=:=) one with words [1]. So the key is
#   (node, creation, id), and the word count is kept only to re-encode the
#   ref exactly as it came (``n_words``).
#
# Our own pids: ID = n mod 2**15 and Serial = n div 2**15 for the n-th process,
# the split the BEAM uses for its own pids (a 15-bit number, then a serial
# bumped when numbers wrap), so every pid we make is one that any node
# accepts; OTP 25 itself accepts any 32-bit ID and Serial in a pid of another
# node (binary_to_term; only its own pids are held to 15 and 13 bits). Ids
# grow with n, so our pids sort in the order they were made, and no id is
# ever used twice in a node's life (the BEAM reuses numbers; we need not).
# Our own refs: 3 words like Erlang's make_ref/0, holding a counter.

_PID_ID_BITS = 15  # the BEAM's own pid numbers are 15 bits; the serial counts their wraps
_WORD = 32  # NEW_PID_EXT's ID and Serial, and each reference ID word, are 32 bits


class Pid:
    """A process identifier: which node, which process, which incarnation.

    Erlang: none (the pid data type, <0.42.0>)

    A pid of *this* node is local: ``.node`` and ``.creation`` follow the
    node's current identity, so pids made before ``net_kernel.start`` stay
    this node's pids, as in Erlang. A pid from elsewhere carries the node
    name and creation it was made under; a node restarted under the same
    name has a new creation, so an old pid never names a new process.

    ``id`` is ``Serial << 32 | Number``, Erlang's two numbers in one integer
    (see the comment above); ``.number`` and ``.serial`` give them apart.
    Pids order as OTP 25 orders them: by ``(id, node, creation)``.
    """

    __slots__ = ("_node", "_creation", "id")
    _node: str | None
    _creation: int
    id: int

    def __init__(self, node: str | None, id: int, creation: int = 0) -> None:
        # The slots' own setters: __setattr__ refuses (pids are immutable),
        # and these cost less than object.__setattr__ (370 ns a pid instead of
        # 600; one is made for every pid in every message from another node).
        _set_pid_node(self, node)  # None: this node
        _set_pid_id(self, id)
        _set_pid_creation(self, creation)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("pids are immutable")

    @property
    def node(self) -> str:
        """The name of the node the process lives on.

        Erlang: erlang:node/1
        """
        return _identity.name if self._node is None else self._node

    @property
    def creation(self) -> int:
        """The incarnation of the node the process lives on.

        Erlang: none (the creation field inside a pid)
        """
        return _identity.creation if self._node is None else self._creation

    @property
    def number(self) -> int:
        """The pid's number, NEW_PID_EXT's ID field (the 42 in ``<0.42.0>``).

        Erlang: none (the ID field of NEW_PID_EXT)
        """
        return self.id & 0xFFFFFFFF

    @property
    def serial(self) -> int:
        """The pid's serial, NEW_PID_EXT's Serial field (the last number of ``<0.42.0>``).

        Erlang: none (the Serial field of NEW_PID_EXT)
        """
        return self.id >> _WORD

    def is_local(self) -> bool:
        """Say whether the process lives on this node (this incarnation).

        Erlang: none (node(Pid) =:= node() for a live node)
        """
        return self._node is None

    def _key(self) -> tuple[int, str, int]:
        """The tuple pids compare by: OTP 25's order (see the comment above the class).

        Erlang: none (the pid case of erts_cmp)
        """
        if self._node is None:  # the properties, inlined: pids are compared a lot (ordered_set keys)
            return (self.id, _identity.name, _identity.creation)
        return (self.id, self._node, self._creation)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pid) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(("pid", self.id))

    def __lt__(self, other: Pid) -> bool:
        return self._key() < other._key()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_pid, (self.node, self.id, self.creation))

    def __repr__(self) -> str:
        node = "0" if self._node is None else self._node
        return f"<{node}.{self.id & 0xFFFFFFFF}.{self.id >> _WORD}>"


_set_pid_node = Pid.__dict__["_node"].__set__
_set_pid_id = Pid.__dict__["id"].__set__
_set_pid_creation = Pid.__dict__["_creation"].__set__


def _rebuild_pid(node: str, id: int, creation: int) -> Pid:
    """Make the pid a peer names: one of this node and incarnation becomes local.

    Erlang: none (the decoding of NEW_PID_EXT; also used to unpickle)

    ``id`` is ``Serial << 32 | Number`` (see :class:`Pid`).
    """
    if node == _identity.name and creation == _identity.creation:
        return Pid(None, id)
    return Pid(node, id, creation)


def _local_pid_id(n: int) -> int:
    """Pack the number of this node's n-th process as Erlang splits it: 15-bit Number, then Serial.

    Erlang: none (erts allocates pid numbers from a table; see the comment above Pid)
    """
    return (n >> _PID_ID_BITS) << _WORD | (n & ((1 << _PID_ID_BITS) - 1))


class Ref:
    """A unique reference (``make_ref()``), as used to tag calls and monitors.

    Erlang: none (the reference data type, #Ref<0.1.2.3>)

    ``id`` holds the ID words as one integer, the first word lowest (see the
    comment above :class:`Pid`); ``n_words`` (0 to 5) is how many words it
    travels as, kept so a ref goes back out exactly as it came in. Refs
    order as OTP 25 orders them: by ``(node, creation, id)``, so the word
    count takes no part in comparisons, as in Erlang.
    """

    __slots__ = ("node", "id", "creation", "n_words")
    node: str
    id: int
    creation: int
    n_words: int

    def __init__(self, node: str, id: int, creation: int = 0, n_words: int = 3) -> None:
        _set_ref_node(self, node)  # the slots' own setters, as in Pid
        _set_ref_id(self, id)
        _set_ref_creation(self, creation)
        _set_ref_n_words(self, n_words)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("refs are immutable")

    @property
    def words(self) -> tuple[int, ...]:
        """The ID words, in wire order (the first word is the lowest).

        Erlang: none (the ID words of NEWER_REFERENCE_EXT)
        """
        return tuple((self.id >> (_WORD * i)) & 0xFFFFFFFF for i in range(self.n_words))

    def _key(self) -> tuple[str, int, int]:
        """The tuple refs compare by: OTP 25's order (see the comment above Pid).

        Erlang: none (the reference case of erts_cmp)
        """
        return (self.node, self.creation, self.id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(("ref", self.id))

    def __lt__(self, other: Ref) -> bool:
        return self._key() < other._key()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Ref, (self.node, self.id, self.creation, self.n_words))

    def __repr__(self) -> str:
        local = self.node == _identity.name and self.creation == _identity.creation
        words = ".".join(str(w) for w in reversed(self.words))
        return f"#Ref<{'0' if local else self.node}{'.' if words else ''}{words}>"


_set_ref_node = Ref.__dict__["node"].__set__
_set_ref_id = Ref.__dict__["id"].__set__
_set_ref_creation = Ref.__dict__["creation"].__set__
_set_ref_n_words = Ref.__dict__["n_words"].__set__


# Ids are never reused in one OS process, so a pid or ref is unique for the
# life of the node; itertools.count is atomic under the GIL, and packing its
# number into a pid id is a pure function of it.
_pid_ids = map(_local_pid_id, itertools.count(1))
_ref_ids = itertools.count(1)


def make_ref() -> Ref:
    """Return a new reference, unique on this node.

    Erlang: erlang:make_ref/0

    Three ID words, as Erlang's own refs have; the counter sits in them
    lowest word first, so ``#Ref<0.0.0.17>`` is this node's 17th ref.
    """
    return Ref(_identity.name, next(_ref_ids), _identity.creation)


# == Processes ===============================================================


class _Signal:
    """The lock and wake-up of one mailbox: a condition variable with a single waiter.

    Erlang: none (how the BEAM wakes a process blocked in receive when a message arrives)

    After ``threading.Condition``, but not quite the same: only the owning
    process ever waits on its mailbox, so instead of a fresh lock queued per
    ``wait`` and a queue walk per ``notify`` one permanent lock does:
    ``_wakeup`` is held while nobody is to be woken, and ``notify`` releases
    it once for a waiter. Every message delivered crosses this, so it is
    worth a few microseconds per message. Supports what this module uses of
    a Condition: ``with``, ``acquire``, ``release``, ``wait``, ``notify``,
    ``notify_all``, each (but ``acquire``) with the lock held.
    """

    __slots__ = ("_lock", "_wakeup", "_waiting", "acquire", "release")

    def __init__(self) -> None:
        """Erlang: none (a new process's mailbox lock)"""
        self._lock = threading.Lock()
        self.acquire = self._lock.acquire
        self.release = self._lock.release
        # Invariant (under _lock): _wakeup is held unless a notify has released
        # it for a waiter that has not taken it yet; _waiting says a wait runs.
        self._wakeup = threading.Lock()
        self._wakeup.acquire()
        self._waiting = False

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, sleep until notified (or ``timeout`` seconds), take the lock again.

        Erlang: none (a process suspended in receive)

        Returns:
            True if notified, False on a timeout.
        """
        self._waiting = True
        self._lock.release()
        woken = False
        try:
            woken = self._wakeup.acquire() if timeout is None else self._wakeup.acquire(True, timeout)
        finally:
            self._lock.acquire()
            if not woken:
                if self._waiting:
                    self._waiting = False  # nobody notified: the invariant holds as it is
                else:
                    woken = self._wakeup.acquire(False)  # notified after the timeout: take that release
        return woken

    def notify(self) -> None:
        """Wake the waiter, if one waits (lock held).

        Erlang: none (scheduling a process that a message has made runnable)
        """
        if self._waiting:
            self._waiting = False
            self._wakeup.release()

    notify_all = notify  # one waiter at most


class _Process:
    """The runtime's record of one local process: mailbox, links, monitors.

    Erlang: none (the process control block inside the BEAM)

    ``cond`` guards ``mailbox`` and ``pending_exit``; the module lock
    ``_lock`` guards everything else (links, monitors, ``dead``).
    """

    def __init__(self, pid: Pid, spawned: bool) -> None:
        self.pid = pid
        self.spawned = spawned  # False: a plain thread that called self()
        self.cond = _Signal()
        self.mailbox: list[Term] = []
        self.pending_exit: Reason | None = None  # a fatal exit signal not yet acted on
        self.killed = False  # True once a fatal exit signal was accepted
        self.dead = False
        self.trap_exit = False
        self.links: set[Pid] = set()
        # Monitors this process holds: ref -> what it monitors (Pid or (name, node)).
        self.monitors: dict[Ref, Any] = {}
        # Monitors held on this process: ref -> watching pid (maybe remote).
        self.watchers: dict[Ref, Pid] = {}
        self.names: set[str] = set()
        # Tags of calls this process gave up on: replies carrying them are
        # dropped on arrival (see _drop_tagged). A dict used as an ordered
        # set, trimmed to the newest _MAX_DROPPED tags: a late reply comes
        # soon after its timeout or never.
        self.dropped: dict[Ref, None] = {}


# Guards _processes, _registry and every _Process's links, monitors,
# watchers, names, dead and trap_exit. Lock order: _lock, then a process's
# cond; nothing takes _lock while holding a cond, so the two cannot deadlock.
_lock = threading.RLock()
_processes: dict[int, _Process] = {}
_registry: dict[str, _Process] = {}
_tls = threading.local()
_exit_hooks: list[Callable[[Pid, Reason], None]] = []


class DistHook(Protocol):
    """What the distribution (``repg2.dist``) provides to the runtime.

    Erlang: none (the BEAM's distribution entry points, dist.c)

    Each method sends one control message to the node of the remote pid;
    ``monitor`` returns False when that node cannot be reached, and the
    runtime then reports ``'noconnection'`` at once, as Erlang does.
    """

    def nodes(self) -> list[str]:
        """Erlang: erlang:nodes/0"""
        ...

    def disconnect(self, node: str) -> bool:
        """Erlang: erlang:disconnect_node/1"""
        ...

    def send(self, sender: Pid | None, to: Pid, msg: Term) -> None:
        """Erlang: none (the SEND control message)"""
        ...

    def reg_send(self, sender: Pid | None, name: str, node: str, msg: Term) -> None:
        """Erlang: none (the REG_SEND control message)"""
        ...

    def alias_send(self, sender: Pid | None, alias: Ref, msg: Term) -> None:
        """Erlang: none (the ALIAS_SEND control message)"""
        ...

    def link(self, frm: Pid, to: Pid) -> None:
        """Erlang: none (the LINK control message)"""
        ...

    def unlink(self, frm: Pid, to: Pid) -> None:
        """Erlang: none (the UNLINK control message)"""
        ...

    def exit(self, frm: Pid, to: Pid, reason: Reason, linked: bool) -> None:
        """Erlang: none (the EXIT and EXIT2 control messages)"""
        ...

    def monitor(self, watcher: Pid, target: Any, ref: Ref) -> bool:
        """Erlang: none (the MONITOR_P control message)"""
        ...

    def demonitor(self, watcher: Pid, target: Any, ref: Ref) -> None:
        """Erlang: none (the DEMONITOR_P control message)"""
        ...

    def monitor_exit(self, target: Any, watcher: Pid, ref: Ref, reason: Reason) -> None:
        """Erlang: none (the MONITOR_P_EXIT control message)"""
        ...

    def corked(self) -> AbstractContextManager[None]:
        """Erlang: none (the port's output queue: frames of one burst share a write)"""
        ...

    def uncork(self) -> None:
        """Erlang: none (the port flushes its queue: a process about to wait lets its frames go)"""
        ...


_dist: DistHook | None = None


class TraceHook(Protocol):
    """What the message tracer (``repg2.tools.trace``) provides to the runtime.

    Erlang: none (the BEAM's send and receive trace points, erts_trace_send/erts_trace_receive)

    ``delivered`` is called for every message put in a local mailbox (with
    the receiver's record; the sender is whoever is running), ``sent`` for
    every message handed to the distribution. Both run on the message path:
    they must be quick and must not send messages themselves.
    """

    def delivered(self, proc: _Process, msg: Term) -> None:
        """Erlang: none (the 'receive' trace event)"""
        ...

    def sent(self, dest: Dest, msg: Term) -> None:
        """Erlang: none (the 'send' trace event of a message leaving the node)"""
        ...


# The message tracer while tracing is on. None (tracing off) costs one
# comparison per delivered message and nothing else.
_trace_hook: TraceHook | None = None


def _set_trace_hook(hook: TraceHook | None) -> None:
    """Plug the message tracer in or out (``repg2.tools.trace``).

    Erlang: none (erlang:trace/3 sets trace flags inside the runtime)
    """
    global _trace_hook
    _trace_hook = hook


def _set_dist(hook: DistHook | None) -> None:
    """Plug the distribution in (net_kernel.start) or out (net_kernel.stop).

    Erlang: none (the runtime's distribution is started by net_kernel)
    """
    global _dist
    _dist = hook


def _corked() -> AbstractContextManager[None]:
    """Return a context in which this thread's messages to other nodes leave together at its end.

    Erlang: none (the BEAM buffers distribution output in the port; see Distribution.corked)

    For a burst that never blocks, such as gen_server's monitor-and-send to
    every node of a multi_call: one write per node instead of one per
    message. Without a distribution it does nothing.
    """
    dist = _dist
    return contextlib.nullcontext() if dist is None else dist.corked()


def on_process_exit(callback: Callable[[Pid, Reason], None]) -> None:
    """Call ``callback(pid, reason)`` whenever a local process ends.

    Erlang: none (the runtime frees a process's ETS tables itself; ets.py uses this)
    """
    _exit_hooks.append(callback)


def current_process_or_none() -> Pid | None:
    """Return the calling thread's pid, without making it a process.

    Erlang: none (a check that only exists because plain threads are not processes)

    A thread whose process was killed unwinds here (``_exit_if_killed``).
    """
    proc: _Process | None = getattr(_tls, "proc", None)
    if proc is None:
        return None
    if proc.pending_exit is not None:
        _exit_if_killed(proc)
    if proc.dead:
        return None
    return proc.pid


def _current() -> _Process:
    """Return the calling thread's process record, creating it on first use.

    Erlang: none (every Erlang caller is a process; a Python thread becomes one here)
    """
    proc: _Process | None = getattr(_tls, "proc", None)
    if proc is not None and proc.pending_exit is not None:
        _exit_if_killed(proc)  # a killed process acts no more: its thread unwinds here
    if proc is None or proc.dead:
        proc = _Process(Pid(None, next(_pid_ids)), spawned=False)
        with _lock:
            _processes[proc.pid.id] = proc
        _tls.proc = proc
        # When the thread's thread-local storage goes (the thread ended), the
        # process ends too, with reason 'normal': its monitors fire and its
        # names are freed. The main thread's process lives as long as Python.
        weakref.finalize(threading.current_thread(), _plain_thread_ended, proc)
    return proc


def _plain_thread_ended(proc: _Process) -> None:
    """End the process of a plain thread that has finished.

    Erlang: none (a plain Python thread has no process exit of its own)
    """
    _terminate(proc, "normal")


def _local(pid: Pid) -> _Process | None:
    """Return the live record of a local pid, or None.

    Erlang: none (pid lookup in the process table)
    """
    if not pid.is_local():
        return None
    proc = _processes.get(pid.id)
    if proc is None or proc.dead:
        return None
    return proc


def self() -> Pid:
    """Return the pid of the calling process.

    Erlang: erlang:self/0

    A thread that is not yet a process (the main thread, a test's thread)
    becomes one now.
    """
    return _current().pid


def _run(proc: _Process, fun: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Run a spawned process's function and end the process with a reason.

    Erlang: none (the BEAM's process entry point; the reasons follow erlang:spawn/3)
    """
    _tls.proc = proc
    reason: Reason = "normal"
    try:
        fun(*args)
    except _ExitSignal as sig:
        reason = sig.reason
    except ExitError as exc:
        reason = exc.reason
    except BaseException as exc:  # noqa: BLE001 - any crash is the process's exit reason
        reason = exc  # DIVERGENCE(D4): the exception object, not Erlang's {Reason, Stacktrace}
        log.error("Error in process %r with exit value: %r", proc.pid, exc, exc_info=exc)
    finally:
        _terminate(proc, reason)


def spawn(fun: Callable[..., Any], *args: Any) -> Pid:
    """Start a new process running ``fun(*args)`` and return its pid.

    Erlang: erlang:spawn/1
    Erlang: erlang:spawn/3
    """
    return _spawn(fun, args, link=False)


def spawn_link(fun: Callable[..., Any], *args: Any) -> Pid:
    """Start a new process linked to the caller, atomically.

    Erlang: erlang:spawn_link/1
    Erlang: erlang:spawn_link/3
    """
    return _spawn(fun, args, link=True)


def spawn_monitor(fun: Callable[..., Any], *args: Any) -> tuple[Pid, Ref]:
    """Start a new process monitored by the caller; return ``(pid, ref)``.

    Erlang: erlang:spawn_monitor/1
    Erlang: erlang:spawn_monitor/3
    """
    me = _current()
    proc = _new_process()
    ref = make_ref()
    with _lock:
        me.monitors[ref] = proc.pid
        proc.watchers[ref] = me.pid
    _start(proc, fun, args)
    return proc.pid, ref


def _new_process() -> _Process:
    """Create and register the record of a process about to be spawned.

    Erlang: none (allocation of a process control block)
    """
    proc = _Process(Pid(None, next(_pid_ids)), spawned=True)
    with _lock:
        _processes[proc.pid.id] = proc
    return proc


def _start(proc: _Process, fun: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Start the thread of a process record.

    Erlang: none (scheduling a new process)
    """
    thread = threading.Thread(target=_run, args=(proc, fun, args), daemon=True, name=f"erlang{proc.pid!r}")
    thread.start()


def _spawn(fun: Callable[..., Any], args: tuple[Any, ...], link: bool) -> Pid:
    """Spawn, linking first when asked so no exit can be missed.

    Erlang: none (shared body of spawn and spawn_link)
    """
    if not callable(fun):
        raise _badarg(f"erlang:spawn/1: not a function: {fun!r}")
    proc = _new_process()
    if link:
        me = _current()
        with _lock:
            me.links.add(proc.pid)
            proc.links.add(me.pid)
    _start(proc, fun, args)
    return proc.pid


def is_process_alive(pid: Pid) -> bool:
    """Say whether a local process is alive.

    Erlang: erlang:is_process_alive/1

    Raises:
        ErlangError: ``badarg`` for a pid of another node, as in Erlang.
    """
    if not isinstance(pid, Pid):
        raise _badarg(f"erlang:is_process_alive/1: not a pid: {pid!r}")
    if not pid.is_local():
        if pid.node == _identity.name:
            return False  # a pid of an earlier incarnation of this node
        raise _badarg(f"erlang:is_process_alive/1: pid of another node: {pid!r}")
    proc = _processes.get(pid.id)
    return proc is not None and not proc.dead and not proc.killed


def process_flag(flag: str, value: Any) -> Any:
    """Set a process flag of the caller and return its old value.

    Erlang: erlang:process_flag/2

    Only ``'trap_exit'`` is supported: when True, exit signals from links
    arrive as ``('EXIT', from_pid, reason)`` messages instead of killing the
    process (except ``exit(pid, 'kill')``, which cannot be trapped).
    """
    if flag != "trap_exit" or not isinstance(value, bool):
        raise _badarg(f"erlang:process_flag/2: unsupported {flag!r}, {value!r}")
    me = _current()
    with _lock:
        old = me.trap_exit
        me.trap_exit = value
    return old


# == Sending and receiving ====================================================


def send(dest: Dest, msg: Term, options: list[str] | None = None) -> Term:
    """Send ``msg`` to a pid, a registered name, ``(name, node)`` or a process alias; return msg.

    Erlang: erlang:send/2
    Erlang: erlang:send/3

    Sending never fails for a pid, even a dead one: the message is dropped,
    as in Erlang. A local registered name that is not registered raises
    ``badarg``; ``(name, node)`` on another node goes through the
    distribution and is dropped if nobody has that name there.

    With ``options`` (``erlang:send/3``) the only option ported is
    ``'noconnect'``: a message for a node that is not connected is not sent
    and no connection is attempted, so the sender never waits for a
    connection setup (pg's scope process sends to its peers this way).
    Returns ``'noconnect'`` then, and ``'ok'`` when the message was sent.
    """
    if options is not None:
        return _send_noconnect(dest, msg, options)
    caller: _Process | None = getattr(_tls, "proc", None)
    if caller is not None and caller.pending_exit is not None:
        _exit_if_killed(caller)  # a killed process sends nothing more
    if isinstance(dest, Pid):
        _send_pid(dest, msg)
    elif isinstance(dest, str):
        target = _registry.get(dest)
        if target is None:
            raise _badarg(f"erlang:send/2: no process registered as {dest!r}")
        _deliver(target, msg)
    elif isinstance(dest, tuple) and len(dest) == 2 and isinstance(dest[0], str) and isinstance(dest[1], str):
        name, to_node = dest
        if to_node == _identity.name:
            target = _registry.get(name)
            if target is not None:
                _deliver(target, msg)
        elif _dist is not None:
            if _trace_hook is not None:
                _trace_hook.sent(dest, msg)
            _dist.reg_send(current_process_or_none(), name, to_node, msg)
    elif isinstance(dest, Ref):
        # A process alias (OTP 24+): Erlang callers wait for gen_server replies on one. This
        # runtime makes no aliases of its own, so a local one is inactive and the message is
        # dropped, as Erlang drops a message to an inactive alias.
        if dest.node != _identity.name and _dist is not None:
            if _trace_hook is not None:
                _trace_hook.sent(dest, msg)
            _dist.alias_send(current_process_or_none(), dest, msg)
    else:
        raise _badarg(f"erlang:send/2: not a destination: {dest!r}")
    return msg


def _send_noconnect(dest: Dest, msg: Term, options: list[str]) -> str:
    """Send unless the destination's node is unconnected; return ``'ok'`` or ``'noconnect'``.

    Erlang: erlang:send/3

    Raises:
        ErlangError: ``badarg`` for an option other than ``'noconnect'``
        (``'nosuspend'`` is not ported), or a destination ``send/2`` refuses.
    """
    if not isinstance(options, list) or any(opt != "noconnect" for opt in options):
        raise _badarg(f"erlang:send/3: only the option 'noconnect' is ported, not {options!r}")
    if "noconnect" in options:
        if isinstance(dest, Pid):
            to_node: str | None = None if dest.node == _identity.name else dest.node  # this node, any incarnation
        elif isinstance(dest, tuple) and len(dest) == 2 and isinstance(dest[1], str):
            to_node = None if dest[1] == _identity.name else dest[1]
        else:
            to_node = None  # a local name: no connection involved
        # DIVERGENCE(D53): a check, then a send. A connection lost between the two is
        # set up again by the send (OTP decides both in one step and drops the message).
        if to_node is not None and to_node not in nodes():
            return "noconnect"
    send(dest, msg)
    return "ok"


def _send_pid(pid: Pid, msg: Term) -> None:
    """Deliver to a local pid or hand a remote one to the distribution.

    Erlang: none (the pid branch of erlang:send/2)
    """
    if pid.is_local():
        proc = _processes.get(pid.id)
        if proc is not None:
            _deliver(proc, msg)
    elif pid.node != _identity.name and _dist is not None:
        if _trace_hook is not None:
            _trace_hook.sent(pid, msg)
        _dist.send(current_process_or_none(), pid, msg)
    else:  # a pid of an earlier incarnation of this node, or no distribution: dropped, as in Erlang
        log.debug("message to %r dropped: an earlier incarnation of this node, or no distribution to send it", pid)


def _deliver(proc: _Process, msg: Term) -> None:
    """Append ``msg`` to a local process's mailbox and wake it.

    Erlang: none (queueing a message in the receiver's message queue)
    """
    # DIVERGENCE(D3): the message object itself is queued, not a copy; a sender must not mutate it.
    with proc.cond:
        if proc.dead:
            return
        if proc.dropped and _is_dropped_reply(proc, msg):
            return
        proc.mailbox.append(msg)
        proc.cond.notify()
        if _trace_hook is not None:
            _trace_hook.delivered(proc, msg)


_MAX_DROPPED = 4096  # tags of abandoned calls remembered per process


def _is_dropped_reply(proc: _Process, msg: Term) -> bool:
    """Say whether ``msg`` is a late reply ``(tag, _)`` or ``((tag, node), _)`` to drop.

    Erlang: none (OTP 24's process aliases serve the same end)
    """
    if not (isinstance(msg, tuple) and len(msg) == 2):
        return False
    tag = msg[0]
    if isinstance(tag, tuple) and len(tag) == 2:
        tag = tag[0]
    return isinstance(tag, Ref) and tag in proc.dropped


def _drop_tagged(tag: Ref) -> None:
    """Drop replies tagged ``tag`` that are queued now or arrive later.

    Erlang: none (gen:call in OTP 18 leaves a late reply in the mailbox;
    OTP 24 deactivates the alias instead; we drop it at delivery)
    """
    # DIVERGENCE(D9): OTP 18 leaves a late reply in the caller's mailbox; we drop it.
    proc = _current()
    with proc.cond:
        proc.dropped[tag] = None
        if len(proc.dropped) > _MAX_DROPPED:
            del proc.dropped[next(iter(proc.dropped))]
        proc.mailbox[:] = [m for m in proc.mailbox if not _is_dropped_reply(proc, m)]


def _now() -> float:
    """Return the monotonic clock, in seconds.

    Erlang: erlang:monotonic_time/0
    """
    return time.monotonic()


class _Timeout:
    """The value :func:`receive` returns when its timeout expires.

    Erlang: none (stands for the ``after`` branch of a receive)
    """

    _instance: _Timeout | None = None

    def __new__(cls) -> _Timeout:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "TIMEOUT"

    def __reduce__(self) -> str:
        return "TIMEOUT"


TIMEOUT = _Timeout()


_INF = float("inf")  # no finite timeout reaches it


def _deadline(timeout: Timeout) -> float | None:
    """Turn a timeout in seconds (or 'infinity') into a monotonic deadline.

    Erlang: none (receive ... after T takes milliseconds; see TRANSLATION_NOTES)
    """
    # DIVERGENCE(D2): seconds (Python's unit), where Erlang counts milliseconds.
    if timeout is None or timeout == "infinity":
        return None
    # Chained, so NaN (every comparison false) and +inf (a deadline no wait accepts) are refused too.
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < _INF:
        raise _badarg(f"timeout must be seconds >= 0 or 'infinity', not {timeout!r}")
    return time.monotonic() + timeout


def receive(
    match: Callable[[Term], bool] | None = None,
    timeout: Timeout = "infinity",
    after: Any = TIMEOUT,
) -> Term:
    """Take the first message that ``match`` accepts; wait up to ``timeout`` seconds.

    Erlang: none (the receive ... after ... end expression)

    Messages that do not match stay in the mailbox, in order, for a later
    receive: this is Erlang's selective receive. Only the messages that
    arrived since the last scan are tested again while waiting, as the BEAM
    does. With no ``match`` the oldest message is taken.

    Returns:
        The message, or ``after`` (default :data:`TIMEOUT`) when the timeout
        expires first.
    """
    proc = _current()
    deadline = _deadline(timeout)
    checked = 0
    if _dist is not None:
        _dist.uncork()  # frames this process holds back (a corked callback) leave before it waits
    with proc.cond:
        while True:
            if proc.pending_exit is not None:
                _die_now(proc)
            box = proc.mailbox
            for index in range(checked, len(box)):
                msg = box[index]
                if match is None or match(msg):
                    del box[index]
                    return msg
            checked = len(box)
            if deadline is None:
                proc.cond.wait()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return after
                proc.cond.wait(remaining)


def flush(match: Callable[[Term], bool] | None = None) -> list[Term]:
    """Remove and return every queued message that ``match`` accepts.

    Erlang: none (the shell's flush/0; a receive loop with after 0)
    """
    proc = _current()
    with proc.cond:
        taken = [m for m in proc.mailbox if match is None or match(m)]
        if taken:  # rebuild the mailbox only if something left it (demonitor's flush mostly finds nothing)
            proc.mailbox[:] = [m for m in proc.mailbox if not (match is None or match(m))]
    return taken


def message_queue_len(pid: Pid | None = None) -> int:
    """Return how many messages wait in a local process's mailbox.

    Erlang: erlang:process_info/2 (message_queue_len)
    """
    proc = _current() if pid is None else _local(pid)
    if proc is None:
        raise _badarg(f"erlang:process_info/2: not a live local process: {pid!r}")
    with proc.cond:
        return len(proc.mailbox)


def sleep(seconds: float) -> None:
    """Suspend the calling process for ``seconds``; exit signals still reach it.

    Erlang: timer:sleep/1
    """
    receive(lambda _msg: False, timeout=seconds)


def _die_now(proc: _Process) -> None:
    """Unwind the current thread because a fatal exit signal arrived.

    Erlang: none (the runtime kills a process; a thread must raise to stop)

    Called with ``proc.cond`` held. A spawned process's thread ends with the
    signal's reason; a plain thread (say, a test) gets the exception, and its
    next call to :func:`self` makes it a new process.
    """
    reason = proc.pending_exit
    proc.pending_exit = None
    if not proc.spawned:
        proc.cond.release()
        try:
            _terminate(proc, reason)
        finally:
            proc.cond.acquire()
        raise ExitError(reason, f"process {proc.pid!r} was killed by an exit signal: {reason!r}")
    raise _ExitSignal(reason)


# == Registered names =========================================================


def register(name: str, pid: Pid) -> bool:
    """Register a local process under ``name``; return True.

    Erlang: erlang:register/2

    Raises:
        ErlangError: ``badarg`` if the name is taken, the process is dead or
        remote, the process already has a name, or the name is ``'undefined'``.
    """
    if not isinstance(name, str) or name == "undefined" or not isinstance(pid, Pid):
        raise _badarg(f"erlang:register/2: bad arguments {name!r}, {pid!r}")
    with _lock:
        proc = _local(pid)
        if proc is None or name in _registry or proc.names:
            raise _badarg(f"erlang:register/2: cannot register {pid!r} as {name!r}")
        _registry[name] = proc
        proc.names.add(name)
    return True


def unregister(name: str) -> bool:
    """Remove a registered name; return True.

    Erlang: erlang:unregister/1
    """
    with _lock:
        proc = _registry.pop(name, None)
        if proc is None:
            raise _badarg(f"erlang:unregister/1: {name!r} is not registered")
        proc.names.discard(name)
    return True


def whereis(name: str) -> Pid | str:
    """Return the pid registered as ``name``, or ``'undefined'``.

    Erlang: erlang:whereis/1
    """
    proc = _registry.get(name)
    return "undefined" if proc is None or proc.dead else proc.pid


def registered() -> list[str]:
    """Return the names registered on this node.

    Erlang: erlang:registered/0
    """
    with _lock:
        return list(_registry)


# == Monitors ===================================================================


def monitor(kind: str, target: Pid | str | tuple[str, str]) -> Ref:
    """Monitor a process; a ``('DOWN', ref, 'process', item, reason)`` message follows its end.

    Erlang: erlang:monitor/2

    ``target`` is a pid, a local registered name, or ``(name, node)``. The
    ``item`` in the ``'DOWN'`` message is the pid, or ``(name, node)`` when
    monitoring by name. A target that does not exist gives a ``'DOWN'`` with
    reason ``'noproc'`` at once; a node that cannot be reached gives
    ``'noconnection'``.
    """
    if kind != "process":
        raise _badarg(f"erlang:monitor/2: only 'process' monitors exist here, not {kind!r}")
    me = _current()
    ref = make_ref()
    if isinstance(target, str):
        target = (target, _identity.name)
    if isinstance(target, tuple):
        if len(target) != 2 or not all(isinstance(x, str) for x in target):
            raise _badarg(f"erlang:monitor/2: bad target {target!r}")
        name, to_node = target
        if to_node == _identity.name:
            with _lock:
                proc = _registry.get(name)
                if proc is not None and not proc.dead:
                    me.monitors[ref] = (target, proc.pid)
                    proc.watchers[ref] = me.pid
                    return ref
            _deliver(me, ("DOWN", ref, "process", target, "noproc"))
            return ref
        return _monitor_remote(me, target, ref)
    if not isinstance(target, Pid):
        raise _badarg(f"erlang:monitor/2: bad target {target!r}")
    if target.is_local():
        with _lock:
            proc = _local(target)
            if proc is not None:
                me.monitors[ref] = target
                proc.watchers[ref] = me.pid
                return ref
        _deliver(me, ("DOWN", ref, "process", target, "noproc"))
        return ref
    if target.node == _identity.name:  # an earlier incarnation of this node
        _deliver(me, ("DOWN", ref, "process", target, "noproc"))
        return ref
    return _monitor_remote(me, target, ref)


def _monitor_remote(me: _Process, target: Any, ref: Ref) -> Ref:
    """Ask the target's node to monitor it for us; 'noconnection' if unreachable.

    Erlang: none (erlang:monitor/2 across the distribution: MONITOR_P)
    """
    with _lock:
        me.monitors[ref] = target
    if _dist is None or not _dist.monitor(me.pid, target, ref):
        with _lock:
            still_held = me.monitors.pop(ref, None) is not None
        # A connection lost meanwhile may already have fired this monitor
        # (_dist_node_down): one 'DOWN' per monitor, never two.
        if still_held:
            _deliver(me, ("DOWN", ref, "process", target, "noconnection"))
    return ref


def demonitor(ref: Ref, options: Iterable[str] = ()) -> bool:
    """Stop a monitor; with ``['flush']`` also remove its queued ``'DOWN'``.

    Erlang: erlang:demonitor/1
    Erlang: erlang:demonitor/2

    Returns:
        True; with ``['info']``, whether the monitor was still active.
    """
    if not isinstance(ref, Ref):
        raise _badarg(f"erlang:demonitor/2: not a reference: {ref!r}")
    options = list(options)
    if any(opt not in ("flush", "info") for opt in options):
        raise _badarg(f"erlang:demonitor/2: bad options {options!r}")
    me = _current()
    with _lock:
        target = me.monitors.pop(ref, None)
        remote = None
        if isinstance(target, tuple) and len(target) == 2 and isinstance(target[1], Pid):
            target = target[1]  # a local monitor by name: (item, pid)
        if isinstance(target, Pid) and target.is_local():
            proc = _processes.get(target.id)
            if proc is not None:
                proc.watchers.pop(ref, None)
        elif target is not None:
            remote = target
    if remote is not None and _dist is not None:
        _dist.demonitor(me.pid, remote, ref)
    if "flush" in options:
        flush(lambda m: isinstance(m, tuple) and len(m) == 5 and m[0] == "DOWN" and m[1] == ref)
    return target is not None if "info" in options else True


# == Links and exit signals =====================================================


def link(pid: Pid) -> bool:
    """Link the caller and ``pid``: when either ends, the other gets an exit signal.

    Erlang: erlang:link/1

    Raises:
        ErlangError: ``noproc`` when a local ``pid`` is dead and the caller
        does not trap exits (a trapping caller gets ``('EXIT', pid, 'noproc')``).
    """
    if not isinstance(pid, Pid):
        raise _badarg(f"erlang:link/1: not a pid: {pid!r}")
    me = _current()
    if pid == me.pid:
        return True
    if pid.is_local() or pid.node == _identity.name:
        with _lock:
            proc = _local(pid)
            if proc is not None:
                me.links.add(pid)
                proc.links.add(me.pid)
                return True
            trapping = me.trap_exit
        if trapping:
            _deliver(me, ("EXIT", pid, "noproc"))
            return True
        raise ErlangError("noproc", f"erlang:link/1: {pid!r} is not alive")
    with _lock:
        me.links.add(pid)
    if _dist is not None:
        _dist.link(me.pid, pid)
    else:  # no distribution: the link breaks at once, and the *caller* gets the signal
        _exit_signal_to(me, pid, "noconnection", linked=True)
    return True


def unlink(pid: Pid) -> bool:
    """Remove the link between the caller and ``pid``; return True.

    Erlang: erlang:unlink/1
    """
    if not isinstance(pid, Pid):
        raise _badarg(f"erlang:unlink/1: not a pid: {pid!r}")
    me = _current()
    with _lock:
        me.links.discard(pid)
        proc = _local(pid)
        if proc is not None:
            proc.links.discard(me.pid)
    if not pid.is_local() and _dist is not None and pid.node != _identity.name:
        _dist.unlink(me.pid, pid)
    return True


def exit(*args: Any) -> bool:
    """``exit(reason)`` ends the caller; ``exit(pid, reason)`` sends an exit signal.

    Erlang: erlang:exit/1
    Erlang: erlang:exit/2

    Erlang's rules for a signal sent with ``exit/2``: ``'kill'`` kills the
    target even if it traps exits (its reason becomes ``'killed'``); a
    trapping target receives ``('EXIT', sender, reason)`` as a message;
    otherwise ``'normal'`` is ignored and any other reason kills it.

    Raises:
        ExitError: with one argument, always (that is how a process exits).
    """
    if len(args) == 1:
        raise ExitError(args[0])
    if len(args) != 2 or not isinstance(args[0], Pid):
        raise _badarg(f"erlang:exit/2: bad arguments {args!r}")
    pid, reason = args
    me = _current()
    if pid.is_local():
        proc = _processes.get(pid.id)
        if proc is not None:
            _exit_signal_to(proc, me.pid, reason, linked=False)
    elif pid.node != _identity.name and _dist is not None:
        _dist.exit(me.pid, pid, reason, False)
    return True


def _exit_signal(frm: _Process, to: Pid, reason: Reason, linked: bool) -> None:
    """Deliver an exit signal from a local process to ``to``, wherever it is.

    Erlang: none (signal delivery inside the runtime)
    """
    if to.is_local():
        proc = _processes.get(to.id)
        if proc is not None:
            _exit_signal_to(proc, frm.pid, reason, linked)
    elif to.node != _identity.name and _dist is not None:
        _dist.exit(frm.pid, to, reason, linked)


def _exit_signal_to(proc: _Process, frm: Pid, reason: Reason, linked: bool) -> None:
    """Act on an exit signal that reached a local process.

    Erlang: none (the receiving side of an exit signal, erts_send_exit_signal)

    A link's signal (``linked``) is also the moment the link disappears. The
    untrappable ``'kill'`` applies only to ``exit/2``: a link that carries
    ``'kill'`` is an ordinary signal, as in OTP.
    """
    with _lock:
        if proc.dead:
            return
        if linked:
            if frm not in proc.links:
                return  # unlinked meanwhile: the signal is void
            proc.links.discard(frm)
        trapping = proc.trap_exit
    if reason == "kill" and not linked:
        _kill(proc, "killed")
    elif trapping:
        _deliver(proc, ("EXIT", frm, reason))
    elif reason == "normal" and frm != proc.pid:
        return
    else:
        _kill(proc, reason)


def _kill(proc: _Process, reason: Reason) -> None:
    """End a process that a fatal exit signal reached: dead to every observer now, its thread unwinds later.

    Erlang: none (a thread cannot be stopped from outside; see TRANSLATION_NOTES D1)

    The one liveness rule of this runtime: from the moment the signal is
    accepted the process is dead, as a BEAM process is. The killer's thread
    runs the whole exit (:func:`_terminate`) at once: names are freed,
    ``'DOWN'`` and link signals go out with ``reason``, its tables go, its
    mailbox is emptied, so ``is_process_alive`` is False, ``whereis`` says
    ``'undefined'``, a new monitor fires ``'noproc'`` and the name can be
    registered again, here and for remote monitors and links alike. The
    thread itself, which Python cannot stop, is told through
    ``pending_exit`` and unwinds at its next call into the runtime (see
    :func:`_exit_if_killed`), before that call does anything.
    """
    with proc.cond:
        if proc.dead or proc.killed:
            return
        proc.killed = True
        proc.pending_exit = reason
        proc.cond.notify_all()
    # DIVERGENCE(D1): the exit runs on the killer's thread; the victim's thread unwinds at its next runtime call.
    _terminate(proc, reason)


def _check_not_killed() -> None:
    """Unwind the calling thread now if its process was killed (for runtime code outside this module, e.g. ETS).

    Erlang: none (see _exit_if_killed)
    """
    proc: _Process | None = getattr(_tls, "proc", None)
    if proc is not None and proc.pending_exit is not None:
        _exit_if_killed(proc)


def _exit_if_killed(proc: _Process) -> None:
    """Unwind the calling thread now if its process was killed (its exit has already run).

    Erlang: none (a killed Erlang process runs no further instruction)

    Called at the top of every runtime entry point a process uses (``self``,
    ``send``, ``spawn``, ``monitor``, ``link``, ETS writes...), so that a
    thread still running after its process was killed cannot act: nothing
    it attempts after the kill takes effect.
    """
    if proc.pending_exit is not None:
        with proc.cond:
            if proc.pending_exit is not None:
                _die_now(proc)


def _terminate(proc: _Process, reason: Reason) -> None:
    """End a local process: drop its name, tell its monitors and links.

    Erlang: none (the runtime's process exit: erts_do_exit_process)
    """
    with _lock:
        if proc.dead:
            return
        proc.dead = True
        proc.killed = True
        _processes.pop(proc.pid.id, None)
        for name in proc.names:
            _registry.pop(name, None)
        proc.names.clear()
        links, proc.links = proc.links, set()
        watchers, proc.watchers = proc.watchers, {}
        monitors, proc.monitors = proc.monitors, {}
        for ref, target in monitors.items():
            if isinstance(target, tuple) and len(target) == 2 and isinstance(target[1], Pid):
                target = target[1]
            if isinstance(target, Pid) and target.is_local():
                other = _processes.get(target.id)
                if other is not None:
                    other.watchers.pop(ref, None)
    with proc.cond:
        proc.mailbox.clear()
    for hook in list(_exit_hooks):
        try:
            hook(proc.pid, reason)
        except Exception:  # noqa: BLE001 - one broken hook must not stop the exit
            log.exception("process exit hook %r failed", hook)
    for ref, watcher in watchers.items():
        item = _down_item(proc, ref, monitors_of=watcher)
        if watcher.is_local():
            _down_to(watcher, ref, item, reason)
        elif _dist is not None:
            _dist.monitor_exit(item, watcher, ref, reason)
    # A process killed by 'kill' tells its links 'killed', never 'kill'.
    for peer in links:
        _exit_signal(proc, peer, reason, linked=True)
    if _dist is not None:
        for ref, target in monitors.items():
            if not (isinstance(target, Pid) and target.is_local()) and not (
                isinstance(target, tuple) and len(target) == 2 and isinstance(target[1], Pid)
            ):
                _dist.demonitor(proc.pid, target, ref)


def _down_item(proc: _Process, ref: Ref, monitors_of: Pid) -> Any:
    """The ``item`` of a ``'DOWN'``: the pid, or ``(name, node)`` for a by-name monitor.

    Erlang: none (part of building the 'DOWN' message)
    """
    watcher = _local(monitors_of) if monitors_of.is_local() else None
    if watcher is not None:
        with _lock:
            target = watcher.monitors.get(ref)
        if isinstance(target, tuple) and len(target) == 2 and isinstance(target[1], Pid):
            return target[0]
    item = _remote_by_name.pop(ref, None)
    return item if item is not None else proc.pid


# Monitors by name that remote watchers hold on local processes: ref -> (name, node).
_remote_by_name: dict[Ref, tuple[str, str]] = {}


def _down_to(watcher: Pid, ref: Ref, item: Any, reason: Reason) -> None:
    """Deliver a ``'DOWN'`` to a local watcher if it still holds the monitor.

    Erlang: none (the local half of a monitor firing)
    """
    with _lock:
        proc = _local(watcher)
        if proc is None or proc.monitors.pop(ref, None) is None:
            return  # demonitored meanwhile
        # Delivered under _lock, so a concurrent demonitor(ref, ['flush'])
        # either wins (no 'DOWN' at all) or finds this one queued and flushes
        # it: after demonitor returns, no 'DOWN' for ref can appear. pg2's
        # member_died relies on that (it crashes on a 'DOWN' it has no row for).
        _deliver(proc, ("DOWN", ref, "process", item, reason))


# == Entry points for the distribution (repg2.dist calls these) ===============


def _dist_deliver(to: Pid, msg: Term) -> None:
    """Deliver a message that arrived from another node to a local pid.

    Erlang: none (SEND control message received)
    """
    _send_pid(to, msg)


def _dist_deliver_reg(name: str, msg: Term) -> None:
    """Deliver a message sent to a registered name from another node.

    Erlang: none (REG_SEND received: dropped if the name is not registered)
    """
    target = _registry.get(name)
    if target is not None:
        _deliver(target, msg)


def _dist_spawn(
    requester: Pid,
    fun: Callable[..., Any],
    args: tuple[Any, ...],
    link: bool,
    mref: Ref | None,
    announce: Callable[[Pid], None],
) -> Pid:
    """Spawn a process another node asked for, linked to or monitored by the asker from its first instruction.

    Erlang: none (SPAWN_REQUEST received: erts' spawn_request on the spawning node)

    As ``spawn_link``/``spawn_monitor`` do locally, the link and the monitor
    (whose reference is the request's id) exist before the process runs, so
    not even an immediate exit is missed; and ``announce(pid)`` (the
    distribution's ``SPAWN_REPLY``) runs before it runs too, since the asker
    must hear of the pid before any exit signal or ``'DOWN'`` from it.
    """
    proc = _new_process()
    with _lock:
        if link:
            proc.links.add(requester)
        if mref is not None:
            proc.watchers[mref] = requester
    announce(proc.pid)
    _start(proc, fun, args)
    return proc.pid


def _dist_link(frm: Pid, to: Pid) -> None:
    """A remote process linked to a local one; a dead target answers noproc.

    Erlang: none (LINK received)
    """
    with _lock:
        proc = _local(to)
        if proc is not None:
            proc.links.add(frm)
            return
    if _dist is not None:
        _dist.exit(to, frm, "noproc", True)


def _dist_unlink(frm: Pid, to: Pid) -> None:
    """A remote process removed its link to a local one.

    Erlang: none (UNLINK received)
    """
    with _lock:
        proc = _local(to)
        if proc is not None:
            proc.links.discard(frm)


def _dist_exit(frm: Pid, to: Pid, reason: Reason, linked: bool) -> None:
    """An exit signal from a remote process reached a local one.

    Erlang: none (EXIT / EXIT2 received)
    """
    proc = _local(to)
    if proc is not None:
        _exit_signal_to(proc, frm, reason, linked)


def _dist_monitor(watcher: Pid, target: Any, ref: Ref) -> None:
    """A remote process monitors a local one (by pid or by name).

    Erlang: none (MONITOR_P received; a missing target answers noproc at once)
    """
    by_name = isinstance(target, tuple)
    with _lock:
        proc = _registry.get(target[0]) if by_name else _local(target)
        if proc is not None and not proc.dead:
            proc.watchers[ref] = watcher
            if by_name:
                _remote_by_name[ref] = target
            return
    if _dist is not None:
        _dist.monitor_exit(target, watcher, ref, "noproc")


def _dist_demonitor(target: Any, ref: Ref, watcher: Pid) -> None:
    """A remote process dropped its monitor of a local one.

    Erlang: none (DEMONITOR_P received)

    Only the monitor ``watcher`` holds is dropped: a peer naming the
    reference of a monitor some other process holds (a local one, or one on
    a third node) changes nothing.
    """
    with _lock:
        for proc in _processes.values():
            if proc.watchers.get(ref) == watcher:
                del proc.watchers[ref]
                _remote_by_name.pop(ref, None)
                return


def _dist_monitor_exit(item: Any, watcher: Pid, ref: Ref, reason: Reason, from_node: str) -> None:
    """A process a local one monitors on another node ended.

    Erlang: none (MONITOR_P_EXIT received)

    Only ``from_node``, the node the monitored process lives on, can end a
    monitor: a 'DOWN' that another peer reports for it (a forged one) is
    dropped, as in OTP, where a monitor belongs to the one connection it
    was made over.
    """
    with _lock:
        proc = _local(watcher)
        target = proc.monitors.get(ref) if proc is not None else None
    if target is None:
        return  # fired or dropped already, or never made
    node_of = target.node if isinstance(target, Pid) else target[1] if isinstance(target, tuple) else None
    if node_of != from_node:
        log.debug("'DOWN' for monitor %r from %s, not from the monitored node %s: dropped", ref, from_node, node_of)
        return
    _down_to(watcher, ref, item, reason)


def _dist_node_down(lost: str) -> None:
    """Fire every monitor and link across a lost connection with 'noconnection'.

    Erlang: none (the runtime's cleanup when a distribution channel closes)

    Called by the distribution *before* it tells ``nodedown`` to
    ``monitor_nodes`` subscribers: in this runtime the ``'DOWN'`` messages
    of a lost connection come before its ``nodedown``. That is this
    runtime's own guarantee; Erlang documents no order between the two, and
    pg2 relies on none.
    """
    exits: list[tuple[_Process, Pid]] = []
    with _lock:
        for proc in list(_processes.values()):
            for ref, target in list(proc.monitors.items()):
                node_of = target.node if isinstance(target, Pid) else target[1] if isinstance(target, tuple) else None
                if node_of == lost and not (isinstance(target, Pid) and target.is_local()):
                    del proc.monitors[ref]
                    # Under _lock, for the same reason as in _down_to.
                    _deliver(proc, ("DOWN", ref, "process", target, "noconnection"))
            for ref, watcher in list(proc.watchers.items()):
                if not watcher.is_local() and watcher.node == lost:
                    del proc.watchers[ref]
                    _remote_by_name.pop(ref, None)
            for other in list(proc.links):
                if not other.is_local() and other.node == lost:
                    exits.append((proc, other))
    for proc, other in exits:
        _exit_signal_to(proc, other, "noconnection", linked=True)


# == Nodes =====================================================================


def node(pid: Pid | Ref | None = None) -> str:
    """Return this node's name, or the node of a pid or ref.

    Erlang: erlang:node/0
    Erlang: erlang:node/1
    """
    if pid is None:
        return _identity.name
    if isinstance(pid, (Pid, Ref)):
        return pid.node
    raise _badarg(f"erlang:node/1: not a pid or reference: {pid!r}")


def nodes() -> list[str]:
    """Return the nodes this node is connected to (not itself).

    Erlang: erlang:nodes/0
    """
    return [] if _dist is None else _dist.nodes()


def disconnect_node(name: str) -> bool:
    """Cut the connection to a node; the next send to it connects again.

    Erlang: erlang:disconnect_node/1
    """
    return False if _dist is None else _dist.disconnect(name)


def processes() -> list[Pid]:
    """Return the pids of the live local processes.

    Erlang: erlang:processes/0
    """
    with _lock:
        return [p.pid for p in _processes.values() if not p.dead]
