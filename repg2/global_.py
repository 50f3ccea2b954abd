"""Cluster-wide locks: the lock part of Erlang's ``global``, translated.

Translates the lock part of ``lib/kernel/src/global.erl`` of Erlang/OTP 18.3
(global protocol vsn 5), in the order of the Erlang file: the exported
functions, the gen_server callbacks, then the local functions. The module is
called ``global_`` because ``global`` is a Python keyword.

Ported: ``start/0``, ``start_link/0``, ``stop/0``, ``set_lock/1,2,3``,
``del_lock/1,2``, ``trans/2,3,4``; the server ``global_name_server``
(``init/1``, the ``set_lock``/``del_lock``/``stop`` clauses of
``handle_call/3``, the ``'DOWN'`` and ``'EXIT'`` clauses of ``handle_info/2``,
``terminate/2``) and the local functions the locks use:
``set_lock_on_nodes/2``, ``local_lock_check/2``, ``check_replies/3``,
``handle_set_lock/3``, ``can_set_lock/1``, ``insert_lock/4``,
``is_lock_set/1``, ``handle_del_lock/3``, ``remove_lock/6``,
``kill_monitor_proc/2``, ``pid_is_locking/2``, ``delete_lock/2``,
``pid_locks/1``, ``rpid_is_locking/2``, ``random_sleep/1``, ``dec/1``,
``do_monitor/1``.

Left out, because pg2 uses only the locks: global *name registration*
(``register_name``, ``whereis_name``, ``send``..., the ``global_names*`` and
``global_pid_names`` tables), the *locker* and *resolver* processes and the
partition-merge protocol that runs when two nodes connect (``init_connect``,
``lock_is_set``, ``exchange``, ``resolved``, ``new_nodes``, the internal
``global`` lock and ``trans_all_known``), ``sync/0,1``, ``info/0``, the
high-level trace, and ``global_group``. Nothing here listens to
``nodeup``/``nodedown``: global needs them only for names and the locker.

How it works
------------
Every node runs one ``global_name_server`` (a gen_server) that owns the ETS
table ``global_locks`` (a ``protected`` named ``set``), one row per locked
resource::

    {ResourceId, LockRequesterId, [{Pid, RPid, Ref}, ...]}    # Erlang
    Lock(resource_id, lock_requester_id, [LockHolder(pid, rpid, ref), ...])

(That is OTP 18.3's shape. ``RPid`` is the process the server monitors for
``Pid``: ``Pid`` itself, or a helper when ``Pid``'s node was not connected;
OTP 22 removed the helper and rows became ``{Pid, Ref}``.)

A lock id is ``(resource_id, lock_requester_id)``. A node grants the lock
when the resource has no row, or its row has the *same* requester id; so
several processes may share a lock by presenting the same requester id
(pg2 uses ``(('pg2', name), self())``: the requester is the calling
process, and two callers exclude each other). The server *monitors* every
holder, so a lock disappears when its holder dies or the holder's node is
lost (a ``'DOWN'`` with reason ``'noconnection'``). The helper table
``global_pid_ids`` (a ``bag`` of ``{Pid, ResourceId}`` and
``{Ref, ResourceId}``) finds the locks of a monitor when its ``'DOWN'``
comes.

Taking a lock on a list of nodes (:func:`set_lock`) is one attempt after
another. An attempt (:func:`set_lock_on_nodes`) first looks at the local
table directly, without a message, and gives up at once if the lock is
visibly taken here; otherwise it asks every node's server at once
(``gen_server.multi_call``). If every node that answered granted it, the
lock is held; if any refused, the attempt releases the nodes that granted
and fails. Between attempts the caller sleeps a random time that doubles
each round (:func:`random_sleep`), so contending callers spread out.
An uncontended ``trans`` thus costs three multi_calls: lock, the work (in
pg2, itself a multi_call), release. There is no queue: a releasing holder
that asks again at once usually wins against callers asleep in their
back-off, so global's locks are fast when contention is rare and unfair
when it is not (``benchmarks/bench_global.py`` shows both).

**Nodes that do not answer do not count.** A node that is down, unreachable
or has no ``global_name_server`` lands in multi_call's bad nodes and is
ignored: the lock is granted by the nodes that *can* answer. The two sides
of a network partition can therefore each hold "the same" lock at once.
This is part of why pg2 is an AP system: its writes are serialised only
within what each side can see.

Differences from OTP (see ``TRANSLATION_NOTES.md``, marked
``# DIVERGENCE(Dn)`` below):

- Timeouts and sleeps are seconds, not milliseconds (project-wide D2).
- :func:`random_sleep` draws from Python's ``random`` (OTP 18.3 used the
  ``random`` module, seeded per process, reseeded every 10th round), and the
  sleep itself can be replaced with :func:`set_random_sleep` so that tests
  need not wait seconds. (D12)
- Retrying is a loop, not Erlang's tail recursion (Python has no tail
  calls, and ``'infinity'`` retries would overflow the stack).
- Bad arguments raise :class:`BadArgument` (both an ``ErlangError`` with
  reason ``'badarg'`` and a ``TypeError``) naming the Erlang function,
  where Erlang raises ``function_clause``. (D13)
- A request to the server with a malformed lock id is treated as an
  unexpected call (a warning, no reply) instead of crashing the server. (D14)
- The server is started by ``repg2.kernel.boot`` under the node's
  ``kernel_safe_sup`` (a BEAM starts it under ``kernel_sup`` at boot, where
  its death halts the node; D7, D32). As in OTP, this module does not know
  the kernel: ``kernel.erl`` names ``global`` in a child spec, never the
  reverse.
"""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, cast

from repg2 import erlang, ets, gen_server, terms
from repg2.erlang import Pid, Ref

# DIVERGENCE(D15): only the locks of global.erl are ported (no name registry, no locker, no sync).
__all__ = [
    "BadArgument",
    "Lock",
    "LockHolder",
    "del_lock",
    "get_locks",
    "random_sleep",
    "set_lock",
    "set_random_sleep",
    "start",
    "start_link",
    "stop",
    "tmax",
    "trans",
]

log = logging.getLogger("repg2.global_")

# -- How global's values are represented -------------------------------------
ResourceId = Any  # what is locked: any term (pg2 uses ('pg2', Name)); the ETS key
LockRequesterId = Any  # who locks it: any term (pg2 uses the calling pid)
LockId = tuple[ResourceId, LockRequesterId]  # Erlang's Id = {ResourceId, LockRequesterId}
Retries = int | str  # an integer >= 0, or 'infinity'
Node = str  # a node name: 'a@127.0.0.1'

SERVER = "global_name_server"  # the registered name of the server on every node
LOCKS = "global_locks"  # set: Lock rows, keyed by resource id
PID_IDS = "global_pid_ids"  # bag: (Pid, ResourceId) and (Ref, ResourceId)


# -- The rows of global_locks --------------------------------------------------
# global_locks (set) holds rows {ResourceId, LockRequesterId, [{Pid, RPid, Ref}]}:
#   Pid holds the lock on ResourceId and Ref is the server's monitor reference.
#   RPid is the process that monitors Pid: Pid itself, or a helper spawned
#   when Pid's node was not connected (see do_monitor). Newest holder first.
# global_pid_ids (bag) holds rows {Pid, ResourceId} and {Ref, ResourceId}:
#   the resources that each holder and each monitor reference lock; a 'DOWN'
#   finds its locks through it.
# Only the server writes these tables; any process may read them.


class LockHolder(NamedTuple):
    """One holder of a lock: Erlang's ``{Pid, RPid, Ref}``.

    Erlang: none (an element of the third field of a global_locks row)
    """

    pid: Pid  # the process holding the lock
    rpid: Pid  # who is monitored for it: pid itself, or do_monitor's helper
    ref: Ref  # the server's monitor reference (on rpid)


class Lock(NamedTuple):
    """A row of ``global_locks``: ``{ResourceId, LockRequesterId, [{Pid, RPid, Ref}]}``.

    Erlang: none (the global_locks row, described in global.erl's table comment)
    """

    resource_id: ResourceId
    lock_requester_id: LockRequesterId
    pid_refs: list[LockHolder]  # never empty: a lock without holders has no row


# -- Messages to global_name_server (the lock part) ----------------------------
#   ('set_lock', (ResourceId, LockRequesterId))   call -> True | False
#   ('del_lock', (ResourceId, LockRequesterId))   call -> True
#   'stop'                                        call -> 'stopped', then the server stops
#   ('DOWN', Ref, 'process', Pid, Info)           a holder (or its monitor helper) is gone


class BadArgument(erlang.ErlangError, TypeError):
    """A call of the lock API with arguments Erlang's clauses would not match.

    Erlang: none (Erlang raises function_clause; see DIVERGENCE(D13))

    It is an ``ErlangError`` with reason ``'badarg'`` (as the project reports
    bad arguments to BIFs) and a ``TypeError`` (as Python reports them), so
    either ``except`` catches it. The message names the Erlang function.
    """

    def __init__(self, function: str, why: str) -> None:
        """Build the error for ``function`` (``'global:set_lock/3'``), saying ``why``.

        Erlang: none (Python exception plumbing)
        """
        super().__init__("badarg", f"badarg: {function}: {why}")


# == Exported functions =========================================================


def start() -> Any:
    """Start ``global_name_server`` without a link; return ``('ok', pid)``.

    Erlang: global:start/0
    """
    return gen_server.start(("local", SERVER), _callbacks(), [])


def start_link() -> Any:
    """Start ``global_name_server`` linked to the caller (a supervisor); return ``('ok', pid)``.

    Erlang: global:start_link/0
    """
    return gen_server.start_link(("local", SERVER), _callbacks(), [])


def stop() -> Any:
    """Stop this node's ``global_name_server``; return ``'stopped'``.

    Erlang: global:stop/0

    Under ``kernel_safe_sup`` the server is a permanent child, so its
    supervisor starts it again at once, with empty tables.
    """
    return gen_server.call(SERVER, "stop", "infinity")


def set_lock(lock_id: LockId, nodes: list[Node] | None = None, retries: Retries = "infinity") -> bool:
    """Take the lock ``lock_id = (resource_id, lock_requester_id)`` on ``nodes``; True if got.

    Erlang: global:set_lock/1
    Erlang: global:set_lock/2
    Erlang: global:set_lock/3
    Erlang: global:set_lock/4
    Erlang: global:dec/1

    ``nodes`` defaults to this node and every connected node, read at the
    moment of the call (``[node()] + nodes()``); a node that connects later
    is not locked. With ``nodes == []`` the lock is "got" at once.

    Each attempt is :func:`set_lock_on_nodes`. After a failed attempt the
    caller sleeps :func:`random_sleep` and tries again, ``retries`` more
    times: **``retries=N`` means N+1 attempts** (and N sleeps);
    ``retries=0`` is a single attempt with no sleep; ``'infinity'`` (the
    default) tries until it succeeds, which may be forever.

    The lock is granted by the nodes that answer. Nodes that are down or
    unreachable, or run no ``global_name_server``, are ignored, so both
    sides of a network partition can hold the same lock at the same time.

    Re-entrance: the same process taking a lock it holds is granted and not
    counted; one :func:`del_lock` releases it. Another process with the same
    requester id shares the lock, and each holder must release its share.

    Returns:
        True when the lock is held on every node that answered, False when
        the attempts ran out.

    Raises:
        BadArgument: ``lock_id`` is not a pair of terms, ``nodes`` is not a
            list of node names, or ``retries`` is neither an integer >= 0
            nor ``'infinity'``. Nothing is changed.
    """
    _check_id(lock_id, "global:set_lock/3")
    nodes = _check_nodes(nodes, "global:set_lock/3")
    _check_retries(retries, "global:set_lock/3")
    if not nodes:  # Erlang: set_lock({_, _}, [], _Retries, _Times) -> true
        return True
    times = 1
    while True:  # Erlang's tail recursion set_lock(Id, Nodes, dec(Retries), Times+1)
        if set_lock_on_nodes(lock_id, nodes):
            return True
        if retries == 0:
            return False
        random_sleep(times)
        retries = retries if retries == "infinity" else int(retries) - 1  # Erlang: dec/1
        times += 1


def del_lock(lock_id: LockId, nodes: list[Node] | None = None) -> bool:
    """Release the caller's share of the lock ``lock_id`` on ``nodes``; always True.

    Erlang: global:del_lock/1
    Erlang: global:del_lock/2

    ``nodes`` defaults to ``[node()] + nodes()``, read now. Each node's
    server drops the caller from the lock's holders (the row goes with the
    last holder). Releasing a lock the caller does not hold, or one held
    under another requester id, changes nothing.

    Raises:
        BadArgument: for a malformed ``lock_id`` or ``nodes``.
    """
    _check_id(lock_id, "global:del_lock/2")
    nodes = _check_nodes(nodes, "global:del_lock/2")
    gen_server.multi_call(nodes, SERVER, ("del_lock", lock_id), "infinity")
    return True


def trans(
    lock_id: LockId, fun: Callable[[], Any], nodes: list[Node] | None = None, retries: Retries = "infinity"
) -> Any:
    """Run ``fun()`` holding the lock ``lock_id`` on ``nodes``; return its value, or ``'aborted'``.

    Erlang: global:trans/2
    Erlang: global:trans/3
    Erlang: global:trans/4

    The node list is read once (default ``[node()] + nodes()``) and used both
    to take and to release the lock. The lock is released after ``fun``
    returns *or raises* (the exception propagates). Locks are not counted:
    a nested ``trans`` on the same id by the same process releases the lock
    when the *inner* one ends.

    Returns:
        What ``fun()`` returned, or ``'aborted'`` when the lock was not got
        within ``retries`` retries (see :func:`set_lock`).

    Raises:
        BadArgument: for a bad id, node list or retries, before anything is
            locked (D13).
        erlang.ErlangError: ``('badfun', fun)`` when ``fun`` is not
            callable, as Erlang's ``Fun()`` fails: *after* the lock was
            taken, and the lock is released on the way out, as in global.erl.
    """
    _check_id(lock_id, "global:trans/4")
    nodes = _check_nodes(nodes, "global:trans/4")
    _check_retries(retries, "global:trans/4")
    if set_lock(lock_id, nodes, retries):
        try:  # Erlang: try Fun() after del_lock(Id, Nodes) end
            if not callable(fun):
                raise erlang.ErlangError(("badfun", fun), f"global:trans/4: {fun!r} is not a function")
            return fun()
        finally:
            del_lock(lock_id, nodes)
    return "aborted"


def get_locks() -> list[Lock]:
    """Return this node's ``global_locks`` rows, read directly from the table.

    Erlang: none (ets:tab2list(global_locks); global has no such function)

    Raises:
        ErlangError: ``badarg`` when this node's server is not running (its
            table lives and dies with it).
    """
    return cast(list[Lock], ets.tab2list(LOCKS))


# == gen_server callbacks ======================================================


def init(args: Any) -> Any:
    """Create the lock tables, owned by the server; trap exits.

    Erlang: global:init/1

    Of global's five tables only the two the locks use are made. The state
    is empty: every field of global's ``#state{}`` serves names or the
    locker (``global_lock_down`` too: it is read only by name registration).
    """
    erlang.process_flag("trap_exit", True)
    ets.new(LOCKS, ["set", "named_table", "protected"])
    ets.new(PID_IDS, ["bag", "named_table", "protected"])
    return ("ok", None)


def handle_call(request: Any, from_: tuple[Pid, Any], state: Any) -> Any:
    """Grant or release a lock for the caller, or stop.

    Erlang: global:handle_call/3 ({set_lock, Lock})
    Erlang: global:handle_call/3 ({del_lock, Lock})
    Erlang: global:handle_call/3 (stop)
    Erlang: global:handle_call/3 (Request: an unexpected call)

    The lock is taken or released for the *calling process* (``from_[0]``).
    With multi_call's ``'infinity'`` timeout there is no middleman process,
    so that is the process that called :func:`set_lock`.
    """
    pid = from_[0]
    match request:
        case ("set_lock", (_, _) as lock_id):  # Erlang: handle_call({set_lock, Lock}, {Pid, _Tag}, S0)
            reply, state = handle_set_lock(lock_id, pid, state)
            return ("reply", reply, state)
        case ("del_lock", (_, _) as lock_id):  # Erlang: handle_call({del_lock, Lock}, {Pid, _Tag}, S0)
            state = handle_del_lock(lock_id, pid, state)
            return ("reply", True, state)
        case "stop":  # Erlang: handle_call(stop, _From, S)
            return ("stop", "normal", "stopped", state)
        case _:  # Erlang: handle_call(Request, From, S): warn, never reply
            # DIVERGENCE(D14): a malformed lock id lands here; in Erlang it
            # crashes the server in can_set_lock/1 or handle_del_lock/3.
            log.warning(
                "The global_name_server received an unexpected message:\nhandle_call(%r, %r, _)", request, from_
            )
            return ("noreply", state)


# The casts an OTP node's global_name_server sends its peers' global_name_server to
# sync names and detect overlapping partitions: this port has neither (D15, D51).
_SYNC_CASTS = frozenset(
    {"init_connect", "lock_is_set", "exchange", "exchange_ops", "resolved", "new_nodes", "in_sync", "async_del_name"}
    | {"async_del_lock", "lock_set", "remove_connection", "extra_nodedown", "group_nodedown"}
)


def handle_cast(request: Any, state: Any) -> Any:
    """Ignore an OTP node's name-sync casts quietly; warn about any other cast.

    Erlang: global:handle_cast/2 (Request: an unexpected cast)

    The lock part of global receives no casts. An Erlang node that connects
    sends ours the opening of global's sync protocol (``init_connect`` and
    what follows); it gets no answer, so that node never counts ours among
    its synced nodes, and nothing of its name registry reaches us (D51).
    """
    if isinstance(request, tuple) and request and request[0] in _SYNC_CASTS:
        # DIVERGENCE(D51): global's name sync is not ported; an Erlang peer's sync casts go unanswered.
        log.debug("global_name_server: ignored %s from global's name sync", request[0])
        return ("noreply", state)
    log.warning("The global_name_server received an unexpected message:\nhandle_cast(%r, _)", request)
    return ("noreply", state)


def handle_info(msg: Any, state: Any) -> Any:
    """Release the locks of a holder that is gone; ignore exits; warn about the rest.

    Erlang: global:handle_info/2 ({'DOWN', MonitorRef, process, _Pid, _Info})
    Erlang: global:handle_info/2 ({'EXIT', Pid, _Reason})
    Erlang: global:handle_info/2 (Message: an unexpected message)

    A ``'DOWN'`` comes when a holder (or the helper monitoring it) ends, or
    with reason ``'noconnection'`` when the holder's node is lost: that is
    how a lock follows its holder's life. global's ``nodedown`` handling
    only serves names and the locker; no lock is released by it.
    """
    match msg:
        case ("DOWN", Ref() as ref, "process", _, _):  # Erlang: handle_info({'DOWN', MonitorRef, process, _, _}, S0)
            return ("noreply", delete_lock(ref, state))
        case ("EXIT", Pid(), _):  # Erlang: handle_info({'EXIT', Pid, _Reason}, S) when is_pid(Pid)
            # global drops the pid from its syncers; the lock part has none.
            return ("noreply", state)
        case _:  # Erlang: handle_info(Message, S)
            log.warning("The global_name_server received an unexpected message:\nhandle_info(%r, _)", msg)
            return ("noreply", state)


# == Internal functions ========================================================


def set_lock_on_nodes(lock_id: LockId, nodes: list[Node]) -> bool:
    """Make one attempt to take the lock on every node in ``nodes``.

    Erlang: global:set_lock_on_nodes/2

    First the cheap local probe (:func:`local_lock_check`); if it passes,
    one ``multi_call`` asks every node's server at once, waiting as long as
    it takes (``'infinity'``: a node counts once it has answered or is known
    to be unreachable). Bad nodes are dropped from the replies and so do not
    count: the lock is granted by the nodes that can answer.

    Returns:
        True if every answering node granted the lock.
    """
    if not nodes:  # Erlang: set_lock_on_nodes(_Id, []) -> true
        return True
    if not local_lock_check(lock_id, nodes):
        return False
    replies, _bad_nodes = gen_server.multi_call(nodes, SERVER, ("set_lock", lock_id), "infinity")
    return check_replies(replies, lock_id, replies)


def local_lock_check(lock_id: LockId, nodes: list[Node]) -> bool:
    """Probe this node's table: False if the lock is visibly held here by another requester.

    Erlang: global:local_lock_check/2

    "Probe lock on local node to see if one should go on trying other
    nodes": reading our own ETS table costs no message, and a refusal here
    saves a round of requests to every node (and their undoing). The probe
    is advisory and racy: the table may change right after it is read; the
    servers' answers decide. With a single node there is nothing to save,
    so the probe is skipped.
    """
    if len(nodes) == 1:  # Erlang: local_lock_check(_Id, [_] = _Nodes) -> true
        return True
    return erlang.node() not in nodes or can_set_lock(lock_id) is not False


def check_replies(replies: list[tuple[Node, bool]], lock_id: LockId, all_replies: list[tuple[Node, bool]]) -> bool:
    """Return True if every node granted; else undo the grants and return False.

    Erlang: global:check_replies/3

    At the first refusal, the lock is released again on every node that
    granted it (unless the refusal was the only reply), so that a failed
    attempt leaves nothing behind and cannot block a competitor.
    """
    for _node, reply in replies:
        if reply is True:  # Erlang: check_replies([{_Node, true} | T], Id, Replies)
            continue
        if len(all_replies) == 1:  # Erlang: check_replies([{_Node, false=Reply} | _T], _Id, [_])
            return False
        # Erlang: check_replies([{_Node, false=Reply} | _T], Id, Replies)
        true_reply_nodes = [node for node, granted in all_replies if granted is True]
        gen_server.multi_call(true_reply_nodes, SERVER, ("del_lock", lock_id), "infinity")
        return False
    return True  # Erlang: check_replies([], _Id, _Replies) -> true


def terminate(reason: Any, state: Any) -> str:
    """Delete the lock tables.

    Erlang: global:terminate/2

    The tables would go with their owner anyway; global deletes them
    explicitly with ``true = ets:delete(...)``, a match that crashes if a
    table was already gone, and so do we. It sits here, among the internal
    functions, because that is where global.erl defines it.
    """
    for table in (LOCKS, PID_IDS):
        deleted = ets.delete(table)
        if deleted is not True:  # Erlang: true = ets:delete(Table): a badmatch otherwise
            raise erlang.ErlangError(
                ("badmatch", deleted), f"global:terminate/2: true = ets:delete({table}) gave {deleted!r}"
            )
    return "ok"


def handle_set_lock(lock_id: LockId, pid: Pid, state: Any) -> tuple[bool, Any]:
    """Grant the lock to ``pid`` if the resource is free or held under the same requester id.

    Erlang: global:handle_set_lock/3

    A pid already among the holders is granted again without a second
    monitor or row entry: re-entrance, not counting.
    """
    can = can_set_lock(lock_id)
    if can is False:
        return False, state
    _, pid_refs = can
    if pid_is_locking(pid, pid_refs):
        return True, state
    return True, insert_lock(lock_id, pid, pid_refs, state)


def can_set_lock(lock_id: LockId) -> tuple[Literal[True], list[LockHolder]] | Literal[False]:
    """Read this node's table: ``(True, holders)`` if ``lock_id`` may be granted, else False.

    Erlang: global:can_set_lock/1

    Called by the server, and by any caller through :func:`local_lock_check`
    (ETS lets any process read the ``protected`` table).

    Returns:
        ``(True, holders)`` when the row has the same requester id,
        ``(True, [])`` when there is no row, False when the resource is held
        under another requester id.
    """
    resource_id, lock_requester_id = lock_id
    match ets.lookup(LOCKS, resource_id):
        case [Lock(lock_requester_id=holder_id, pid_refs=pid_refs)] if terms.exact_eq(holder_id, lock_requester_id):
            return True, pid_refs  # Erlang: [{ResourceId, LockRequesterId, PidRefs}]
        case [Lock()]:  # Erlang: [{ResourceId, _LockRequesterId2, _PidRefs}]
            return False
        case []:  # Erlang: []
            return True, []
    raise AssertionError("unreachable")  # pragma: no cover - a set table holds one row per key


def insert_lock(lock_id: LockId, pid: Pid, pid_refs: list[LockHolder], state: Any) -> Any:
    """Record ``pid`` as a holder of ``lock_id``, monitoring it.

    Erlang: global:insert_lock/4
    """
    resource_id, lock_requester_id = lock_id
    rpid, ref = do_monitor(pid)
    ets.insert(PID_IDS, (pid, resource_id))
    ets.insert(PID_IDS, (ref, resource_id))
    ets.insert(LOCKS, Lock(resource_id, lock_requester_id, [LockHolder(pid, rpid, ref), *pid_refs]))
    return state


def is_lock_set(resource_id: ResourceId) -> bool:
    """Say whether this node has a lock on ``resource_id`` (any requester).

    Erlang: global:is_lock_set/1

    global uses it for its internal ``global`` lock; kept because it is the
    cheapest question a reader can ask of the table.
    """
    return ets.member(LOCKS, resource_id)


def handle_del_lock(lock_id: LockId, pid: Pid, state: Any) -> Any:
    """Drop ``pid`` from the holders of ``lock_id``; anything else is a no-op.

    Erlang: global:handle_del_lock/3
    """
    resource_id, lock_req_id = lock_id
    match ets.lookup(LOCKS, resource_id):
        case [Lock(lock_requester_id=holder_id, pid_refs=pid_refs)] if terms.exact_eq(holder_id, lock_req_id):
            return remove_lock(resource_id, lock_req_id, pid, pid_refs, False, state)
        case _:  # Erlang: _ -> S0 (no lock, or held under another requester id)
            return state


def remove_lock(
    resource_id: ResourceId,
    lock_requester_id: LockRequesterId,
    pid: Pid,
    pid_refs: list[LockHolder],
    down: bool,
    state: Any,
) -> Any:
    """Remove ``pid`` from a lock's holders; delete the row when it was the last one.

    Erlang: global:remove_lock/6

    ``down`` says whether a ``'DOWN'`` caused this; global records it only
    for its internal ``global`` lock (a field of its state that serves name
    registration), so it is unused here.
    """
    if len(pid_refs) == 1 and pid_refs[0].pid == pid:  # Erlang: remove_lock(..., Pid, [{Pid,RPid,Ref}], Down, S0)
        _, rpid, ref = pid_refs[0]
        erlang.demonitor(ref, ["flush"])
        kill_monitor_proc(rpid, pid)
        ets.delete(LOCKS, resource_id)
        ets.delete_object(PID_IDS, (pid, resource_id))
        ets.delete_object(PID_IDS, (ref, resource_id))
        return state
    # The second clause: other holders stay (or pid was not among them at all).
    mine = next((holder for holder in pid_refs if holder.pid == pid), None)  # Erlang: lists:keyfind(Pid, 1, PidRefs0)
    if mine is not None:
        _, rpid, ref = mine
        erlang.demonitor(ref, ["flush"])
        kill_monitor_proc(rpid, pid)
        ets.delete_object(PID_IDS, (ref, resource_id))
        pid_refs = [holder for holder in pid_refs if holder is not mine]  # Erlang: lists:keydelete(Pid, 1, PidRefs0)
    # Rewritten even when pid held nothing: the row is then unchanged.
    ets.insert(LOCKS, Lock(resource_id, lock_requester_id, pid_refs))
    ets.delete_object(PID_IDS, (pid, resource_id))
    return state


def kill_monitor_proc(rpid: Pid, pid: Pid) -> Any:
    """Kill the helper that monitored ``pid`` for the server, if there was one.

    Erlang: global:kill_monitor_proc/2
    """
    if rpid == pid:  # Erlang: kill_monitor_proc(Pid, Pid) -> ok
        return "ok"
    return erlang.exit(rpid, "kill")


def pid_is_locking(pid: Pid, pid_refs: list[LockHolder]) -> bool:
    """Say whether ``pid`` is among a lock's holders.

    Erlang: global:pid_is_locking/2
    """
    return any(holder.pid == pid for holder in pid_refs)


def delete_lock(ref: Ref, state: Any) -> Any:
    """Release every lock held through the monitor ``ref``, whose ``'DOWN'`` just came.

    Erlang: global:delete_lock/2
    """
    for lock in pid_locks(ref):
        (pid, _rpid, _ref) = next(holder for holder in lock.pid_refs if holder.ref == ref)  # lists:keyfind(Ref, 3, _)
        state = remove_lock(lock.resource_id, lock.lock_requester_id, pid, lock.pid_refs, True, state)
    return state


def pid_locks(ref: Ref) -> list[Lock]:
    """Return the rows of the locks held through the monitor ``ref``.

    Erlang: global:pid_locks/1
    """
    rows = [
        cast(Lock, lock) for (_, resource_id) in ets.lookup(PID_IDS, ref) for lock in ets.lookup(LOCKS, resource_id)
    ]
    return [lock for lock in rows if rpid_is_locking(ref, lock.pid_refs)]


def rpid_is_locking(ref: Ref, pid_refs: list[LockHolder]) -> bool:
    """Say whether the monitor ``ref`` belongs to one of a lock's holders.

    Erlang: global:rpid_is_locking/2
    """
    return any(holder.ref == ref for holder in pid_refs)


# The sleep random_sleep/1 ends with; None means erlang.sleep (a sleep that
# an exit signal still interrupts, as Erlang's receive after T).
_sleep: Callable[[float], Any] | None = None


def random_sleep(times: int) -> None:
    """Sleep a random time before attempt ``times + 1``: 1 ms up to :func:`tmax` ``(times)``.

    Erlang: global:random_sleep/1

    "First time 1/4 second, then doubling each time up to 8 seconds max":
    a uniformly drawn whole number of milliseconds in ``1..Tmax``, slept as
    seconds. The randomness spreads out callers that keep colliding; the
    doubling backs them off when contention lasts.
    """
    # DIVERGENCE(D12): OTP 18.3 draws with the random module, seeded per
    # process and reseeded every 10th round; Python's random is seeded by
    # the OS once per node process, so there is nothing to reseed.
    t_ms = random.randint(1, tmax(times))
    (erlang.sleep if _sleep is None else _sleep)(t_ms / 1000)


def tmax(times: int) -> int:
    """Return the longest sleep of round ``times``, in milliseconds: 250, 500, ... 4000, then 8000.

    Erlang: none (the Tmax expression inside global:random_sleep/1)
    """
    return 8000 if times > 5 else ((1 << times) * 1000) // 8


def set_random_sleep(fun: Callable[[float], Any] | None) -> Callable[[float], Any] | None:
    """Make :func:`random_sleep` call ``fun(seconds)`` instead of sleeping; return the old one.

    Erlang: none (a test hook; see DIVERGENCE(D12))

    The random draw stays; only the sleep is replaced, for every process of
    this node (one OS process). ``fun`` may count calls, record the drawn
    times, or sleep less (``lambda s: erlang.sleep(s / 100)`` keeps the
    randomness that breaks ties, only faster). ``None`` restores the real
    sleep. To change it on another node, call it there (``cluster.rpc``)
    with a module-level function.
    """
    global _sleep
    old = _sleep
    _sleep = fun
    return old


def do_monitor(pid: Pid) -> tuple[Pid, Ref]:
    """Monitor ``pid`` for the server; return ``(monitoring pid, monitor ref)``.

    Erlang: global:do_monitor/1

    If ``pid``'s node is this one or already connected, the server monitors
    it directly. Otherwise ``erlang:monitor`` would first have to connect
    to that node, which can block, and the server must never block: a
    helper takes the monitor (and waits for the connection) and exits when
    ``pid`` goes, and the server monitors the helper. Either way a
    ``'DOWN'`` reaches the server when ``pid`` is gone or unreachable.
    """
    if erlang.node(pid) == erlang.node() or erlang.node(pid) in erlang.nodes():
        return pid, erlang.monitor("process", pid)

    def monitor_for_global() -> None:
        """Wait for ``pid`` to go, then exit normally.

        Erlang: none (the fun spawned by global:do_monitor/1)
        """
        ref = erlang.monitor("process", pid)
        erlang.receive(lambda m: isinstance(m, tuple) and len(m) == 5 and m[0] == "DOWN" and m[1] == ref)

    return erlang.spawn_monitor(monitor_for_global)


# == Python-only helpers ===========================================================


def _callbacks() -> Any:
    """Return this module, the gen_server callback module (Erlang's ``?MODULE``).

    Erlang: none (Erlang passes the atom global)
    """
    return sys.modules[__name__]


def _check_id(lock_id: Any, function: str) -> None:
    """Reject a lock id that is not a pair ``(resource_id, lock_requester_id)`` of terms.

    Erlang: none (the {_ResourceId, _LockRequesterId} pattern of the clauses)

    Both parts go into an ETS row on every node, so both must be terms as
    :mod:`repg2.terms` defines them (any Erlang term is; a Python object
    that is not would make the *server* fail, far from the mistake).
    """
    if not isinstance(lock_id, tuple) or len(lock_id) != 2:
        raise BadArgument(function, f"a lock id is (resource_id, lock_requester_id), not {lock_id!r}")
    if not terms.is_term(lock_id):
        raise BadArgument(function, f"a lock id must be made of Erlang terms, not {lock_id!r}")


def _check_nodes(nodes: Any, function: str) -> list[Node]:
    """Return the node list, ``[node()] + nodes()`` when None; reject anything but a list of names.

    Erlang: none (Nodes :: [node()] in the specs; the default is [node() | nodes()])
    """
    if nodes is None:
        return [erlang.node(), *erlang.nodes()]
    if not isinstance(nodes, list) or not all(isinstance(node, str) for node in nodes):
        raise BadArgument(function, f"nodes must be a list of node names, not {nodes!r}")
    return nodes


def _check_retries(retries: Any, function: str) -> None:
    """Reject retries that are neither an integer >= 0 nor ``'infinity'``.

    Erlang: none (the guards of global:set_lock/3: is_integer(Retries), Retries >= 0; or infinity)
    """
    if retries == "infinity":
        return
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise BadArgument(function, f"retries must be an integer >= 0 or 'infinity', not {retries!r}")
