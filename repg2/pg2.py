"""pg2: distributed named process groups, translated line by line from Erlang/OTP.

Translates ``lib/kernel/src/pg2.erl`` of Erlang/OTP 18.3, function by
function and in the same order: the exported API, the gen_server callbacks,
then the local functions. Hold this file beside ``pg2.erl``: every function
names its original in an ``Erlang: pg2:name/arity`` line, and
``python -m repg2 xref path/to/pg2.erl`` prints the two side by side.

What pg2 is
-----------
A *process group* is a name under which any number of processes (pids, on
any node) can be found. ``create(Name)`` makes a group, ``join(Name, Pid)``
adds a member, ``get_members(Name)`` lists them. Phoenix PubSub, for
example, joins one server per node to a group and broadcasts by sending to
every member.

How it works
------------
Every node runs one ``pg2`` server, a gen_server registered as ``'pg2'``,
and keeps a *full copy* of every group in its own ETS table ``pg2_table``:

- **Reads are local.** ``get_members`` and friends read ``pg2_table``
  directly in the caller's thread, without a message to the server. ETS lets
  any process read a ``protected`` table; only the owner (the server)
  writes. A read costs one ordered-set range scan, whatever the cluster size.
- **Writes are global.** ``join`` takes a cluster-wide lock on the group
  (``global:trans``), then calls the pg2 server of *every* connected node
  (``gen_server:multi_call``), which each apply the change to their own
  table. The lock orders concurrent writes to the same group; nothing waits
  for nodes that are down.
- **Failures are found by monitors.** Every node's server monitors every
  member pid, local or remote. A member that dies, or whose node is lost,
  causes a ``'DOWN'`` on every node, and each node removes it by itself.
- **Partitions heal by exchange.** When two nodes (re)connect, each sends
  the other all its memberships, and each *adds* whatever it lacks. Nothing
  is ever removed by an exchange: pg2 chooses availability (AP) and
  add-only healing.

Differences from OTP (each marked ``# DIVERGENCE(Dn)`` where it is made and
listed in ``TRANSLATION_NOTES.md``; ``grep -n DIVERGENCE repg2/pg2.py``):

- D6: ``join_group``/``leave_group`` catch only ETS's ``badarg`` where
  pg2.erl catches ``_:_``.
- D7: pg2 starts the node's kernel on first use (a BEAM boots it first).
- D8: ``get_closest_pid``'s clock-based choice can be replaced in tests.
- D10: a group name must be hashable (any Erlang term can be a name).
- D33: names that ETS matching would read as ``'_'`` or ``'$N'`` are refused.
- D34: ``join``/``leave`` of a non-pid raise ``ErlangTypeError``
  (``function_clause``, also a ``TypeError``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from repg2 import erlang, ets, gen_server, global_, kernel, net_kernel, supervisor, terms
from repg2.erlang import Pid, Ref

__all__ = [
    "create",
    "delete",
    "get_closest_pid",
    "get_local_members",
    "get_members",
    "join",
    "leave",
    "start",
    "start_link",
    "which_groups",
]

log = logging.getLogger("repg2.pg2")

# -- How Erlang's values are represented here ----------------------------------
Name = Hashable  # a group name: any term (Erlang allows any; here it must be hashable)
Members = list[Pid]  # members in term order, a pid repeated once per join
Error = tuple[str, tuple[str, Any]]  # ('error', ('no_such_group', Name)) and the like

TABLE = "pg2_table"  # the ETS table's name, also its handle (named_table)
SERVER = "pg2"  # the registered name of every node's pg2 server (?MODULE)

# == The table: six kinds of rows ==================================================
#
# pg2_table is an ordered_set keyed by tagged tuples. Each row kind answers
# one question in one lookup or one range scan. For a group Name, a member
# Pid and a monitor reference Ref:
#
#   key                          rest of the row     what it answers
#   ('group', Name)                                  does Name exist?
#   ('member', Name, Pid)        GroupCounter        how often did Pid join Name?
#   ('local_member', Name, Pid)                      which members of Name are local?
#   ('pid', Pid, Name)                               which groups is Pid in? (on a 'DOWN')
#   ('ref', Pid)                 RPid, Ref, Counter  how is Pid monitored, how many joins?
#   ('ref', Ref)                 Pid                 whose monitor is Ref? (on a 'DOWN')
#
# Why ordered_set: all the rows of one group sit next to each other, so
# "every member of Name" is a scan of the keys that start ('member', Name, ...),
# O(log n + k), not a walk of the table ("fast matching of partially
# instantiated keys", as pg2.erl says). The same holds for a pid's groups.
#
# Why counters: joining twice makes a process a member twice (it appears
# twice in get_members and must leave twice). GroupCounter counts the joins
# of Pid to Name; Counter counts Pid's joins to *all* groups, so the monitor
# on Pid is set on the first join anywhere and removed on the last leave.
# RPid is the process that holds the monitor: Pid itself, or a helper (see
# do_monitor/1).
#
# The rows are named tuples below so that a counter's position is a field,
# not a magic number. They are still plain tuples to ETS, and ETS positions
# are 1-based, as in Erlang.


class GroupRow(NamedTuple):
    """``{{group, Name}}``: the group exists.

    Erlang: none (a row shape of pg2_table)
    """

    key: tuple[str, Name]


class MemberRow(NamedTuple):
    """``{{member, Name, Pid}, GroupCounter}``: Pid joined Name ``counter`` times.

    Erlang: none (a row shape of pg2_table)
    """

    key: tuple[str, Name, Pid]
    counter: int


class LocalMemberRow(NamedTuple):
    """``{{local_member, Name, Pid}}``: a member of Name that lives on this node.

    Erlang: none (a row shape of pg2_table)
    """

    key: tuple[str, Name, Pid]


class PidRow(NamedTuple):
    """``{{pid, Pid, Name}}``: Pid is in group Name (the reverse index).

    Erlang: none (a row shape of pg2_table)
    """

    key: tuple[str, Pid, Name]


class RefRow(NamedTuple):
    """``{{ref, Pid}, RPid, MonitorRef, Counter}``: how Pid is monitored, and its total joins.

    Erlang: none (a row shape of pg2_table)
    """

    key: tuple[str, Pid]
    rpid: Pid
    mref: Ref
    counter: int


class RefPidRow(NamedTuple):
    """``{{ref, MonitorRef}, Pid}``: the member whose monitor is MonitorRef.

    Erlang: none (a row shape of pg2_table)
    """

    key: tuple[str, Ref]
    pid: Pid


# ETS counts tuple positions from 1; these are the counters' positions.
MEMBER_COUNTER = MemberRow._fields.index("counter") + 1  # == 2
REF_COUNTER = RefRow._fields.index("counter") + 1  # == 4

# == Messages between pg2 servers ====================================================
#
#   ('create', Name)          call, via multi_call under the group's lock
#   ('delete', Name)          call, likewise
#   ('join', Name, Pid)       call, likewise
#   ('leave', Name, Pid)      call, likewise
#   ('exchange', Node, All)   cast: All = [[Name, Members], ...], every group of Node
#   ('new_pg2', Node)         plain message: "I started, send me your groups"
#   ('nodeup', Node)          from net_kernel (or sent to itself by init)
#   ('del_member', Name, Pid) abcast when a member dies; ignored (kept for old nodes)
#   ('DOWN', Ref, 'process', Pid, Info)   a monitored member died


# == Exported functions =============================================================


def start_link() -> Any:
    """Start this node's pg2 server, linked to the caller, registered as ``'pg2'``.

    Erlang: pg2:start_link/0

    The supervisor calls this (see :func:`ensure_started`); the server's
    callback module is this very module, as pg2.erl passes ``?MODULE``.
    """
    return gen_server.start_link(("local", SERVER), sys.modules[__name__], [])


def start() -> Any:
    """Make sure pg2 runs on this node; return ``('ok', pid)``.

    Erlang: pg2:start/0
    """
    return ensure_started()


def create(name: Name) -> str:
    """Create a group on every connected node; return ``'ok'``.

    Erlang: pg2:create/1

    If this node already knows the group, nothing is sent at all: creating
    is idempotent and a repeated create is a purely local read. Otherwise
    the group's lock is taken and every node's server is called. The
    results of ``trans`` and of ``multi_call`` are ignored: the lock is
    taken with infinite retries, so it cannot abort, and a node that does
    not answer (down, cut off, or whose pg2 has not started yet: pg2 starts
    on a node's first pg2 call) will learn of the group through the
    exchange when it comes back or starts.
    """
    _check_name(name, "pg2:create/1")
    ensure_started()
    if not ets.member(TABLE, ("group", name)):
        global_.trans((("pg2", name), erlang.self()), lambda: gen_server.multi_call(SERVER, ("create", name)))
    return "ok"


def delete(name: Name) -> str:
    """Delete a group, and every membership in it, on every connected node.

    Erlang: pg2:delete/1

    Unlike :func:`create` there is no local check first: the delete is sent
    even for a group this node does not know, since other nodes may.
    """
    _check_name(name, "pg2:delete/1")
    ensure_started()
    global_.trans((("pg2", name), erlang.self()), lambda: gen_server.multi_call(SERVER, ("delete", name)))
    return "ok"


def join(name: Name, pid: Pid) -> str | Error:
    """Add ``pid`` to a group on every connected node.

    Erlang: pg2:join/2

    The group must exist *on this node* (an existence check is always a
    local read). Joining twice makes ``pid`` a member twice.

    Why a lock, and why one per group: ``multi_call`` reaches the nodes one
    after the other, so without a lock a ``join`` from one node and a
    ``leave`` of the same pid from another could reach node X in one order
    and node Y in the other, and the two tables would disagree for good
    (a leave that arrives first is a no-op). The lock ``{{pg2, Name},
    self()}`` makes writes to one group take turns across the cluster;
    writes to different groups do not wait for each other.

    Returns:
        ``'ok'``, or ``('error', ('no_such_group', name))``.

    Raises:
        erlang.ErlangTypeError: reason ``'function_clause'``, when ``pid``
        is not a pid (the only clause has the guard ``is_pid(Pid)``); a call
        that fails it changes nothing. It is also a ``TypeError`` (D34).
    """
    if not isinstance(pid, Pid):  # DIVERGENCE(D34): function_clause, raised as a TypeError too
        raise erlang.ErlangTypeError("function_clause", f"pg2:join/2: the pid {pid!r} is not a pid (guard is_pid(Pid))")
    _check_name(name, "pg2:join/2")
    ensure_started()
    if not ets.member(TABLE, ("group", name)):
        return ("error", ("no_such_group", name))
    global_.trans((("pg2", name), erlang.self()), lambda: gen_server.multi_call(SERVER, ("join", name, pid)))
    return "ok"


def leave(name: Name, pid: Pid) -> str | Error:
    """Remove one membership of ``pid`` from a group on every connected node.

    Erlang: pg2:leave/2

    A pid that joined twice stays a member after one leave. Leaving a group
    one is not in is not an error.

    Returns:
        ``'ok'``, or ``('error', ('no_such_group', name))``.

    Raises:
        erlang.ErlangTypeError: reason ``'function_clause'``, when ``pid``
        is not a pid (guard ``is_pid(Pid)``), also a ``TypeError`` (D34).
    """
    if not isinstance(pid, Pid):  # DIVERGENCE(D34): function_clause, raised as a TypeError too
        raise erlang.ErlangTypeError(
            "function_clause", f"pg2:leave/2: the pid {pid!r} is not a pid (guard is_pid(Pid))"
        )
    _check_name(name, "pg2:leave/2")
    ensure_started()
    if not ets.member(TABLE, ("group", name)):
        return ("error", ("no_such_group", name))
    global_.trans((("pg2", name), erlang.self()), lambda: gen_server.multi_call(SERVER, ("leave", name, pid)))
    return "ok"


def get_members(name: Name) -> Members | Error:
    """Return every member of a group, read from this node's table.

    Erlang: pg2:get_members/1

    No message is sent: the read runs in the caller's thread against the
    protected table, so it is as fast on 50 nodes as on one, and during a
    partition it answers with what this side knows (pg2 is AP).

    Returns:
        The members in term order, a pid repeated once per join; or
        ``('error', ('no_such_group', name))``.
    """
    _check_name(name, "pg2:get_members/1")
    ensure_started()
    if ets.member(TABLE, ("group", name)):
        return group_members(name)
    return ("error", ("no_such_group", name))


def get_local_members(name: Name) -> Members | Error:
    """Return the members of a group that live on this node.

    Erlang: pg2:get_local_members/1
    """
    _check_name(name, "pg2:get_local_members/1")
    ensure_started()
    if ets.member(TABLE, ("group", name)):
        return local_group_members(name)
    return ("error", ("no_such_group", name))


def which_groups() -> list[Name]:
    """Return every group this node knows, in term order.

    Erlang: pg2:which_groups/0
    """
    ensure_started()
    return all_groups()


def _clock_index(length: int) -> int:
    """Pick an index in ``range(length)`` from the clock, as pg2 does.

    Erlang: none (the expression X rem length(Members) in pg2:get_closest_pid/1)

    pg2 takes the microseconds field of ``erlang:timestamp()`` modulo the
    number of candidates: cheap, stateless, good enough to spread load.
    """
    micros = (time.time_ns() // 1000) % 1_000_000
    return micros % length


# Tests replace this to make get_closest_pid's choice deterministic
# (see set_random_index); the default is pg2's own clock-based choice.
_random_index: Callable[[int], int] = _clock_index  # DIVERGENCE(D8): replaceable for tests


def set_random_index(choose: Callable[[int], int] | None) -> None:
    """Replace the random choice of :func:`get_closest_pid` (``None`` restores pg2's).

    Erlang: none (a test hook; pg2 reads the clock directly)
    """
    global _random_index
    _random_index = _clock_index if choose is None else choose


def get_closest_pid(name: Name) -> Pid | Error:
    """Return one member of a group, preferring one on this node.

    Erlang: pg2:get_closest_pid/1

    One local member: that one. Several local members: one of them at
    random. None local: one of all members at random. The choice counts a
    pid once per join, so a pid that joined twice is picked twice as often.

    Returns:
        A pid, ``('error', ('no_process', name))`` for an empty group, or
        ``('error', ('no_such_group', name))``.

    Raises:
        erlang.ErlangError: ``badarg``, as in Erlang, when the group is
        deleted between the two reads: ``get_members`` then answers
        ``{error, {no_such_group, Name}}``, and pg2 takes ``length/1`` of
        that tuple. pg2 reads without a lock, so this race is real.
    """
    _check_name(name, "pg2:get_closest_pid/1")
    match get_local_members(name):
        case [pid]:  # Erlang: [Pid] -> Pid
            return pid
        case []:  # Erlang: [] -> a random member of all
            index_of = _random_index
            match get_members(name):
                case []:
                    return ("error", ("no_process", name))
                case members if isinstance(
                    members, list
                ):  # Erlang: Members -> lists:nth(X rem length(Members) + 1, ...)
                    return members[index_of(len(members))]
                case error:  # deleted between the two reads: Erlang takes length/1 of the error tuple
                    raise erlang.ErlangError(
                        "badarg", f"pg2:get_closest_pid/1: length({error!r}): the group was deleted"
                    )
        case members if isinstance(members, list):  # Erlang: Members when is_list(Members)
            return members[_random_index(len(members))]
        case error:  # Erlang: Else -> Else ({error, {no_such_group, Name}})
            return error


# == gen_server callbacks ==========================================================


def init(args: list[Any]) -> tuple[str, Any]:
    """Start the server: subscribe to node events, greet the other pg2 servers, make the table.

    Erlang: pg2:init/1

    For every node already connected, pg2 sends that node's server
    ``('new_pg2', node())`` (which makes it send us its groups) and sends
    *itself* ``('nodeup', node)`` (which makes us send ours): the same
    exchange that a fresh connection triggers. This is how a restarted pg2
    server refills its table.

    Two orderings look odd and are harmless. ``nodes()`` is read *before*
    subscribing, so a node that connects in between is neither listed nor
    announced by a ``nodeup``: nothing is lost, because our table is still
    empty, and that node's own pg2 server, which saw *us* come up, sends us
    its groups anyway (or, if its pg2 starts later, greets us with
    ``new_pg2``). And the table is made after the messages are sent: no
    message is handled before ``init`` returns, so nothing can need it yet.
    """
    nodes = erlang.nodes()
    net_kernel.monitor_nodes(True)
    for node in nodes:
        erlang.send((SERVER, node), ("new_pg2", erlang.node()))
        erlang.send(erlang.self(), ("nodeup", node))
    created = ets.new(TABLE, ["ordered_set", "protected", "named_table"])
    _expect(created == TABLE, "pg2:init/1", "pg2_table = ets:new(...)", created)
    return ("ok", None)  # Erlang: {ok, #state{}}: the state record has no fields


def handle_call(request: Any, from_: Any, state: Any) -> tuple[str, ...]:
    """Apply a write that a client sent to every node under the group's lock.

    Erlang: pg2:handle_call/3 ({create, Name})
    Erlang: pg2:handle_call/3 ({join, Name, Pid})
    Erlang: pg2:handle_call/3 ({leave, Name, Pid})
    Erlang: pg2:handle_call/3 ({delete, Name})
    Erlang: pg2:handle_call/3 (Request, From, S)

    Every clause replies ``'ok'``. A join or leave for a group this node
    does not know is silently skipped here (the client checked only its own
    node). An unexpected request is logged and gets *no reply*: its caller
    waits until its own timeout, as in OTP.

    The clauses match any ``Pid``, as pg2.erl's do: only ``join/2`` and
    ``leave/2`` guard with ``is_pid``. A ``('join', Name, NotAPid)`` sent
    straight to the server reaches ``do_monitor``, whose ``node(NotAPid)``
    fails with ``badarg``: the server crashes, every ``multi_call`` caller
    sees this node as a bad node (its monitor fires), nobody waits, and the
    supervisor starts a fresh server that the exchange refills. A leave of a
    non-pid finds no row and is a no-op.
    """
    match request:
        case ("create", name):  # Erlang: handle_call({create, Name}, _From, S)
            assure_group(name)
            return ("reply", "ok", state)
        case ("join", name, pid):  # Erlang: handle_call({join, Name, Pid}, _From, S)
            if ets.member(TABLE, ("group", name)):
                join_group(name, pid)
            return ("reply", "ok", state)
        case ("leave", name, pid):  # Erlang: handle_call({leave, Name, Pid}, _From, S)
            if ets.member(TABLE, ("group", name)):
                leave_group(name, pid)
            return ("reply", "ok", state)
        case ("delete", name):  # Erlang: handle_call({delete, Name}, _From, S)
            delete_group(name)
            return ("reply", "ok", state)
        case _:  # Erlang: handle_call(Request, From, S)
            log.warning(
                "The pg2 server received an unexpected message:\nhandle_call(%r, %r, _)",
                request,
                from_,
            )
            return ("noreply", state)


def handle_cast(msg: Any, state: Any) -> tuple[str, Any]:
    """Merge another node's groups into ours (``exchange``); ignore the rest.

    Erlang: pg2:handle_cast/2 ({exchange, _Node, List})
    Erlang: pg2:handle_cast/2 (_, S)

    ``('del_member', Name, Pid)`` lands in the catch-all on purpose: older,
    link-based pg2 versions needed it; today every node learns of a death
    from its own monitor.
    """
    match msg:
        case ("exchange", _node, all_of_theirs):  # Erlang: handle_cast({exchange, _Node, List}, S)
            store(all_of_theirs)
            return ("noreply", state)
        case _:  # Erlang: handle_cast(_, S) (del_member is ignored here)
            return ("noreply", state)


def handle_info(msg: Any, state: Any) -> tuple[str, Any]:
    """React to a member's death and to nodes that appear.

    Erlang: pg2:handle_info/2 ({'DOWN', MonitorRef, process, _Pid, _Info})
    Erlang: pg2:handle_info/2 ({nodeup, Node})
    Erlang: pg2:handle_info/2 ({new_pg2, Node})
    Erlang: pg2:handle_info/2 (_, S)

    ``nodeup`` and ``new_pg2`` both answer with our whole table, cast to
    that node's server: each side of a new connection sends, so each side
    ends with the union. ``nodedown`` is ignored: the members on the lost
    node are removed one by one as their monitors fire ``'DOWN'`` with
    reason ``'noconnection'``; the *groups* stay. Nothing here depends on
    which of ``nodedown`` and those ``'DOWN'`` messages comes first (Erlang
    documents no order between them; this runtime sends the ``'DOWN'``
    messages first).
    """
    match msg:
        case ("DOWN", Ref() as mref, "process", _pid, _info):  # Erlang: handle_info({'DOWN', MonitorRef, ...}, S)
            member_died(mref)
            return ("noreply", state)
        case ("nodeup", str() as node):  # Erlang: handle_info({nodeup, Node}, S)
            gen_server.cast((SERVER, node), ("exchange", erlang.node(), all_members()))
            return ("noreply", state)
        case ("new_pg2", str() as node):  # Erlang: handle_info({new_pg2, Node}, S)
            gen_server.cast((SERVER, node), ("exchange", erlang.node(), all_members()))
            return ("noreply", state)
        case _:  # Erlang: handle_info(_, S) (nodedown and anything else)
            return ("noreply", state)


def terminate(reason: Any, state: Any) -> str:
    """Delete the table on the way out.

    Erlang: pg2:terminate/2

    ETS would delete it anyway when its owner dies; pg2 does it explicitly,
    and a supervisor-restarted pg2 starts from an empty table that the
    exchange then fills.
    """
    _expect(ets.delete(TABLE) is True, "pg2:terminate/2", "true = ets:delete(pg2_table)", False)
    return "ok"


# == Local functions ================================================================


def store(all_of_theirs: Any) -> str:
    """Add every membership another node has and we lack; remove nothing.

    Erlang: pg2:store/1

    ``all_of_theirs`` is ``[[Name, Members], ...]`` (two-element *lists*, as
    pg2 sends them; anything else is skipped, as the Erlang generator
    pattern skips it). For each group we subtract our members from theirs
    as multisets (Erlang's ``--`` removes one copy per element) and join
    whatever is left. So if they have P twice and we have P once, we join P
    once more; if *we* have a member they lack, it stays.

    This is the add-only heal. What it can undo is a *delete*: a group
    deleted on one side of a partition still exists on the other, whose
    exchange re-creates it, with that side's members. A *leave* made
    during a clean partition is never undone: by then every node on the
    leaving side had already dropped the other side's members (their
    monitors fired ``noconnection``), and the other side never had the
    leaving side's. Deaths are not undone either: every node saw the dead
    member's ``'DOWN'`` itself.
    """
    for entry in all_of_theirs:
        if not (isinstance(entry, list) and len(entry) == 2):
            continue  # Erlang: the generator pattern [Name, Members] skips it
        name, members = entry
        assure_group(name)
        for pid in terms.subtract(members, group_members(name)):
            join_group(name, pid)
    return "ok"


def assure_group(name: Name) -> bool:
    """Make sure the group row exists; always True.

    Erlang: pg2:assure_group/1
    """
    key = ("group", name)
    return ets.member(TABLE, key) or ets.insert(TABLE, GroupRow(key)) is True


def delete_group(name: Name) -> str:
    """Remove every membership of the group, then the group itself.

    Erlang: pg2:delete_group/1

    Each membership is left once per join, so the counters reach zero and
    the monitors on members that are in no other group are removed too.
    """
    for pid in group_members(name):
        leave_group(name, pid)
    _expect(ets.delete(TABLE, ("group", name)) is True, "pg2:delete_group/1", "true = ets:delete(...)", False)
    return "ok"


def member_died(mref: Ref) -> str:
    """Remove every membership of a member whose monitor fired.

    Erlang: pg2:member_died/1

    pg2 matches the ``('ref', Ref)`` row strictly: a ``'DOWN'`` for a
    monitor pg2 no longer has a row for would crash the server. That cannot
    happen here, because ``leave_group`` removes the row and demonitors with
    ``flush`` in one server step. We keep the strict match, as an explicit
    check (see TRANSLATION_NOTES.md, D5).

    The ``del_member`` abcast is kept for fidelity: pg2 sends it so that
    pre-R13B03 nodes, which linked instead of monitoring, learn of the
    death; today's servers ignore it.
    """
    rows = ets.lookup(TABLE, ("ref", mref))
    _expect(len(rows) == 1, "pg2:member_died/1", "[{{ref, Ref}, Pid}] = ets:lookup(...)", rows)
    pid = rows[0][1]
    names = member_groups(pid)
    for name in names:
        for member in member_in_group(pid, name):
            leave_group(name, member)
    for name in names:
        gen_server.abcast(erlang.nodes(), SERVER, ("del_member", name, pid))
    return "ok"


def join_group(name: Name, pid: Pid) -> Any:
    """Record one more membership of ``pid`` in ``name``, monitoring it on its first join.

    Erlang: pg2:join_group/2

    Both halves try the counter first and fall back to inserting fresh rows
    when ETS says ``badarg`` (no such row): Erlang's "try the fast path,
    catch the miss" idiom.
    """
    ref_key = ("ref", pid)
    try:
        ets.update_counter(TABLE, ref_key, (REF_COUNTER, +1))
    except erlang.ErlangError:  # DIVERGENCE(D6): Erlang catches _:_, we catch only ETS's badarg
        rpid, mref = do_monitor(pid)
        _expect(ets.insert(TABLE, RefRow(ref_key, rpid, mref, 1)) is True, "pg2:join_group/2", "true = ets:insert", 0)
        _expect(ets.insert(TABLE, RefPidRow(("ref", mref), pid)) is True, "pg2:join_group/2", "true = ets:insert", 0)
    member_key = ("member", name, pid)
    try:
        return ets.update_counter(TABLE, member_key, (MEMBER_COUNTER, +1))
    except erlang.ErlangError:  # DIVERGENCE(D6)
        _expect(ets.insert(TABLE, MemberRow(member_key, 1)) is True, "pg2:join_group/2", "true = ets:insert", 0)
        if erlang.node(pid) == erlang.node():
            _expect(
                ets.insert(TABLE, LocalMemberRow(("local_member", name, pid))) is True,
                "pg2:join_group/2",
                "true = ets:insert",
                0,
            )
        return ets.insert(TABLE, PidRow(("pid", pid, name)))


def leave_group(name: Name, pid: Pid) -> Any:
    """Drop one membership of ``pid`` in ``name``; on its last join anywhere, stop monitoring it.

    Erlang: pg2:leave_group/2

    Only the first counter update is guarded: a pid that is not a member of
    ``name`` changes nothing at all. What follows is not guarded in Erlang
    either (an error there would crash the server, by design).
    """
    member_key = ("member", name, pid)
    try:
        count = ets.update_counter(TABLE, member_key, (MEMBER_COUNTER, -1))
    except erlang.ErlangError:  # DIVERGENCE(D6): Erlang catches _:_; not a member: nothing to do
        return "ok"
    if count == 0:
        _expect(ets.delete(TABLE, ("pid", pid, name)) is True, "pg2:leave_group/2", "true = ets:delete", 0)
        if erlang.node(pid) == erlang.node():
            _expect(ets.delete(TABLE, ("local_member", name, pid)) is True, "pg2:leave_group/2", "true = ets:delete", 0)
        _expect(ets.delete(TABLE, member_key) is True, "pg2:leave_group/2", "true = ets:delete", 0)
    ref_key = ("ref", pid)
    if ets.update_counter(TABLE, ref_key, (REF_COUNTER, -1)) == 0:
        rows = ets.lookup(TABLE, ref_key)
        _expect(
            len(rows) == 1 and rows[0][3] == 0, "pg2:leave_group/2", "[{{ref, Pid}, RPid, Ref, 0}] = ets:lookup", rows
        )
        _key, rpid, mref, _zero = rows[0]
        _expect(ets.delete(TABLE, ("ref", mref)) is True, "pg2:leave_group/2", "true = ets:delete", 0)
        _expect(ets.delete(TABLE, ref_key) is True, "pg2:leave_group/2", "true = ets:delete", 0)
        # flush: a 'DOWN' already queued for this monitor must not reach
        # member_died, which would find no row for it.
        _expect(erlang.demonitor(mref, ["flush"]) is True, "pg2:leave_group/2", "true = erlang:demonitor", 0)
        return kill_monitor_proc(rpid, pid)
    return "ok"


def all_members() -> list[list[Any]]:
    """Return this node's whole table as ``[[Name, Members], ...]``, the exchange payload.

    Erlang: pg2:all_members/0
    """
    return [[name, group_members(name)] for name in all_groups()]


def group_members(name: Name) -> Members:
    """Return a group's members, each pid repeated once per join.

    Erlang: pg2:group_members/1

    One range scan over the keys ``('member', name, _)``.
    """
    return [pid for pid, count in ets.match(TABLE, (("member", name, "$1"), "$2")) for _ in range(count)]


def local_group_members(name: Name) -> Members:
    """Return a group's members on this node, each repeated once per join.

    Erlang: pg2:local_group_members/1
    """
    return [
        member for [pid] in ets.match(TABLE, (("local_member", name, "$1"),)) for member in member_in_group(pid, name)
    ]


def member_in_group(pid: Pid, name: Name) -> Members:
    """Return ``pid`` repeated once per join to ``name`` (empty if not a member).

    Erlang: pg2:member_in_group/2
    """
    rows = ets.lookup(TABLE, ("member", name, pid))
    if not rows:
        return []
    return [pid] * rows[0][1]


def member_groups(pid: Pid) -> list[Name]:
    """Return the groups ``pid`` is in (once each), from the reverse index.

    Erlang: pg2:member_groups/1
    """
    return [name for [name] in ets.match(TABLE, (("pid", pid, "$1"),))]


def all_groups() -> list[Name]:
    """Return every group name, in term order.

    Erlang: pg2:all_groups/0
    """
    return [name for [name] in ets.match(TABLE, (("group", "$1"),))]


def ensure_started() -> Any:
    """Start pg2 under the node's ``kernel_safe_sup`` unless it runs; return ``('ok', pid)``.

    Erlang: pg2:ensure_started/0

    Every API function calls this first, so pg2 starts on first use. The
    child spec makes pg2 a permanent worker of ``kernel_safe_sup``: if the
    server crashes it is restarted, with an empty table that the exchange
    with the other nodes refills. Two callers racing here both call
    ``start_child``; the loser gets ``('error', ('already_started', pid))``,
    which is as good.
    """
    pid = erlang.whereis(SERVER)
    if pid == "undefined":
        kernel.boot()  # DIVERGENCE(D7): a BEAM boots kernel_safe_sup before any code runs
        child_spec: tuple[Any, ...] = (SERVER, (start_link, []), "permanent", 1.0, "worker", [SERVER])
        return supervisor.start_child(kernel.SAFE_SUP, child_spec)
    return ("ok", pid)


def kill_monitor_proc(rpid: Pid, pid: Pid) -> Any:
    """Kill the helper that monitored ``pid`` for us, if there was one.

    Erlang: pg2:kill_monitor_proc/2
    """
    if rpid == pid:
        return True
    return erlang.exit(rpid, "kill")


def do_monitor(pid: Pid) -> tuple[Pid, Ref]:
    """Monitor ``pid``; return ``(monitoring pid, monitor ref)``.

    Erlang: pg2:do_monitor/1

    If ``pid``'s node is this one or already connected, the server monitors
    it directly. Otherwise a monitor would first have to *connect* to that
    node, which can block for seconds, and the pg2 server must never block.
    So pg2 spawns a helper that takes the monitor (and waits for the
    connection) and exits when ``pid`` goes; the server monitors the
    helper. Either way a ``'DOWN'`` reaches the server when ``pid`` is gone
    or unreachable.
    """
    if erlang.node(pid) == erlang.node() or erlang.node(pid) in erlang.nodes():
        return pid, erlang.monitor("process", pid)

    def monitor_for_pg2() -> None:
        """Wait for ``pid`` to go, then exit normally.

        Erlang: none (the fun spawned by pg2:do_monitor/1)
        """
        ref = erlang.monitor("process", pid)
        erlang.receive(lambda m: isinstance(m, tuple) and len(m) == 5 and m[0] == "DOWN" and m[1] == ref)

    return erlang.spawn_monitor(monitor_for_pg2)


# == Python-only helpers ==============================================================


def _check_name(name: Any, where: str) -> None:
    """Reject a group name that cannot be an ETS key here, or that ETS matching would read as a pattern.

    Erlang: none (any Erlang term can be a name; a Python one must be a hashable term)

    Checked before anything is read or sent, so the error names the pg2
    function called, not ``ets:member/2`` or ``global:trans/4`` deep inside.

    pg2 finds a group's rows with ``ets:match(pg2_table, {{member, Name,
    '$1'}, '$2'})``: the name is part of a *pattern*, so a name that is, or
    contains, the atom ``'_'`` or ``'$1'`` matches other groups' rows (after
    ``create("real")``, a join and ``create("_")``, ``get_members("_")``
    would list the member of ``"real"``). Erlang has the same hazard, but
    only for those odd atoms; here every ``str`` is an atom, so an ordinary
    name such as ``"_"`` or ``"$1"`` would hit it. Such names are refused
    (D33).
    """
    if type(name) is str:  # the common case first: get_members is a hot read
        if name == "_" or name[:1] == "$":
            _check_pattern_free(name, where)
        return
    if not isinstance(name, Hashable):  # DIVERGENCE(D10): any Erlang term; here a hashable one
        raise TypeError(f"{where}: a group name must be hashable, not {type(name).__name__}: {name!r}")
    if not terms.is_term(name):
        raise TypeError(f"{where}: a group name must be an Erlang term, not {type(name).__name__}: {name!r}")
    if isinstance(name, (tuple, list, dict)):
        _check_pattern_free(name, where)


def _check_pattern_free(name: Any, where: str) -> None:
    """Refuse a name that ETS matching would read as a wildcard or variable.

    Erlang: none (see _check_name)
    """
    if ets.is_pattern_atom(name):  # DIVERGENCE(D33): Erlang accepts such names and matches them as patterns
        raise ValueError(
            f"{where}: the group name {name!r} is, or contains, '_' or '$N', which pg2's ETS match "
            "patterns would read as a wildcard or variable; choose another name"
        )


def _expect(ok: bool, where: str, erlang_match: str, got: Any) -> None:
    """Crash like an Erlang strict match (``true = ...``) when ``ok`` is false.

    Erlang: none (stands for a badmatch in the function named by ``where``)
    """
    if not ok:
        raise erlang.ErlangError(("badmatch", got), f"{where}: {erlang_match} did not match {got!r}")
