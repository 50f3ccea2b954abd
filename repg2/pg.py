"""pg: process groups with eventually consistent membership, translated line by line from Erlang/OTP.

Translates ``lib/kernel/src/pg.erl`` of Erlang/OTP 25.2.3, function by
function and in the same order: the API (default scope, then scoped), the
gen_server callbacks, then the local functions. Hold this file beside
``pg.erl``: every function names its original in an ``Erlang: pg:name/arity``
line, and ``python -m repg2 xref path/to/pg.erl`` prints the two side by side.
All 43 functions are translated. ``module_info/0,1``, which the Erlang
compiler adds to every module, have no counterpart: ``dir(pg)`` and
``pg.__all__`` answer the same questions in Python.

What pg is
----------
A *group* is a name under which processes can be found, as in pg2. pg adds
*scopes*: a scope is an independent set of groups with its own server
process on each node that runs it, registered under the scope's name (an
atom), and its own ETS table of the same name. The default scope is ``'pg'``
(``pg.join(group, pid)`` uses it); ``pg.join(scope, group, pid)`` names one.
The scope processes of one scope name, one per node that started it, form an
*overlay network*: they know each other and nothing of other scopes, so
independent applications never share a server, a table or a message queue.

Why it replaced pg2 (the design notes at the top of pg.erl, in our words)
-------------------------------------------------------------------------
pg arrived in OTP 23, written at WhatsApp; pg2 was deprecated in the same
release and removed in OTP 24. What changed:

- **No cluster lock, no dependency on global.** A pg2 write takes a
  cluster-wide lock and calls every node in turn. A pg ``join`` is a call to
  the *local* scope process, which updates its table and *sends* (never
  calls) the change to its peers. Writes cost one local call plus one
  message per peer; nothing waits for a remote node, and a slow or
  partitioned node slows nobody down. The price is eventual consistency:
  for a moment after a join, other nodes do not see the member yet.
- **Only local processes join.** ``join`` and ``leave`` refuse a pid of
  another node (``{nolocal, Pid}``). So every membership has exactly one
  owner, the scope process on the member's node: it alone monitors the
  member, announces its joins and leaves, and answers for it after a
  partition. No remote monitoring is ever done for members.
- **No empty groups.** A group exists while it has members; ``create`` and
  ``delete`` are gone and ``which_groups`` lists only non-empty groups. The
  reason: a process has an owning node, a group does not. In pg2, a group
  deleted on one side of a net split still exists on the other, and the
  exchange after the split resurrects it, which surprises everyone. In pg
  the group is just the union of memberships, each owned by one node, so
  there is nothing to resurrect.
- **Multi-join.** ``join``/``leave`` take a pid or a list of pids: one call,
  one table update, one message per peer. A pid may join a group several
  times and is then listed once per join.
- **Monitoring** (OTP 25.1): ``monitor_scope`` and ``monitor`` return the
  current members and subscribe the caller to ``(Ref, 'join' | 'leave',
  Group, Pids)`` messages; ``demonitor`` ends the subscription.

How it works: the exchange protocol
-----------------------------------
- **discover.** A scope process starting up sends ``('discover', self())``
  to the scope's name on every connected node; a node that connects later
  gets the same message when the ``nodeup`` arrives (``net_kernel``'s
  ``monitor_nodes``).
- **sync.** A scope process that receives ``discover`` answers with a
  ``sync`` cast carrying every group that has members *on its own node*,
  and, if it did not know that peer yet, monitors it, remembers it and sends
  ``discover`` back, so both ends learn each other. A ``sync`` *replaces*
  everything the receiver knew about that peer's members: stale members
  leave, new ones join. So a partition heals by each side sending the other
  its own truth, never by merging guesses.
- **join / leave.** Each local join or leave is applied to the local table
  and sent as ``('join', self(), Group, PidOrPids)`` or ``('leave', self(),
  PidOrPids, [Group])`` to every known peer. A peer accepts them only from
  a scope process it knows (one that is in its overlay network).
- **Failures.** A local member that exits is seen by its own scope process
  (its monitor fires) and announced as a ``leave``. A peer whose scope
  process exits, or whose node is lost (``'DOWN'`` with ``'noconnection'``),
  takes all its members with it, at once, on every node that watched it.
  ``nodedown`` itself is ignored: the peer's monitor says everything.
- **Serialisation.** Every change goes through the scope process, one
  message at a time; readers (``get_members`` and friends) read the ETS table
  directly, without a message, as fast on 50 nodes as on one.

The API: Erlang's arities in Python
-----------------------------------
pg.erl exports most functions twice: ``join/2`` for the default scope and
``join/3`` with a scope first. Here each name is *one* Python function that
takes Erlang's arguments in Erlang's order, positionally, and tells the two
arities apart by their number, as Erlang does: ``pg.join(group, pid)`` is
``pg:join/2`` and ``pg.join(scope, group, pid)`` is ``pg:join/3``; likewise
``leave``, ``monitor_scope``, ``monitor``, ``demonitor``, ``get_members``,
``get_local_members``, ``which_groups``, ``which_local_groups`` and
``start_link``. The short form calls the long one with the default scope,
as pg.erl's does. So ``rpc:call(Node, pg, join, [Scope, G, P])`` reads
``rpc.call(node, pg.join, [scope, g, p])`` here, and an ``M:F(A...)`` sent by
an Erlang node maps onto the same Python call. Each function's docstring
carries both ``Erlang:`` lines; a call with a number of arguments pg.erl
does not export fails as an Erlang call of an undefined function does
(reason ``undef``). The overloads give type checkers both forms, each
naming its own arity.

Starting a scope
----------------
``pg.start_link()`` starts the default scope ``'pg'`` linked to the caller,
``pg.start_link(scope)`` and ``pg.start(scope)`` any scope (``start`` without
a link, outside any supervision tree). There is no ``ensure_started``: pg.erl
has none, and its functions fail with ``noproc`` when the scope is not
running. In OTP 25 the kernel starts the default scope under
``kernel_safe_sup`` only when the kernel parameter ``start_pg`` is true; in
RePy2 the application starts it, for instance under the node's
``kernel_safe_sup`` with the child spec OTP's kernel uses::

    supervisor.start_child(kernel.SAFE_SUP, ("pg", (pg.start_link, []), "permanent", 1.0, "worker", ["pg"]))

How Erlang's values are represented here
----------------------------------------
Atoms are ``str``; tuples, lists and pids are as everywhere in RePy2. The
state record is :class:`State`. Erlang's maps are values: each update makes
a new map, and a handler stores it with ``State#state{...}``. Here they are
``dict`` objects that only the scope process touches, updated *in place*
(O(1) where copying a dict would cost O(n)); so the updating functions
return nothing, and handlers return the same record. Lists stay values: no
list is changed once made (a list read from a message or from ETS may be
shared), so prepending builds a new list, as ``[Pid | List]`` does.

Erlang's behaviour kept on purpose
----------------------------------
This is OTP 25.2.3's pg, bugs included. A process that monitors a group
(``monitor/2``) and also joins a group crashes the scope process when it
exits: the ``'DOWN'`` of its group monitor is matched against its join
monitor and fails with ``case_clause`` (GH-7625, fixed in OTP 26). The
translation crashes in the same place, with the same reason.

Differences from OTP (each marked ``# DIVERGENCE(Dn)`` where it is made and
listed in ``TRANSLATION_NOTES.md``; ``grep -n DIVERGENCE repg2/pg.py``):

- D10: a group name must be a hashable term (the scope's maps are ``dict``
  objects); ``join``, ``leave`` and ``monitor`` refuse others with a
  ``TypeError`` before the scope process sees them.
- D34: a call that fails one of pg.erl's guards (``is_pid``/``is_list``,
  ``is_atom(Scope)``), or names an arity pg.erl does not export, raises
  ``erlang.ErlangTypeError`` (reason ``function_clause`` or ``undef``).
- D?: ``sys:get_state`` of a scope process returns its live maps, which the
  process goes on updating (Erlang returns a copy).
- D? (in ``erlang.send/3``): ``noconnect`` is a check, then a send; a
  connection lost between the two is set up again by the send, so a scope
  process may then wait for a connection setup that OTP would never start.

Interoperation: every message between scope processes is exactly pg.erl's
tuple (atoms as ``str``), each scope process is registered under its scope
name, and a ``sync`` is a ``('$gen_cast', ...)``, so once the distribution
speaks the external term format, a Python scope and an Erlang scope of the
same name form one overlay network.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import Any, NamedTuple, overload

from repg2 import erlang, ets, gen_server, net_kernel, terms
from repg2.erlang import Pid, Ref

__all__ = [
    "DEFAULT_SCOPE",
    "demonitor",
    "get_local_members",
    "get_members",
    "join",
    "leave",
    "monitor",
    "monitor_scope",
    "start",
    "start_link",
    "which_groups",
    "which_local_groups",
]

# -- How Erlang's values are represented here ---------------------------------------
Scope = str  # a scope: an atom, the name of its process *and* of its ETS table
Group = Hashable  # a group name: any term in Erlang; here a hashable one (D10)
PidOrPids = Pid | list[Pid]  # what join/leave take: one pid or a list of them
Action = str  # 'join' | 'leave', the verb of a monitor notification

DEFAULT_SCOPE: Scope = "pg"  # ?DEFAULT_SCOPE, which is ?MODULE: the default scope is named after the module

# == The table: one row per non-empty group ===========================================
#
# Each scope has an ETS table named after it: a set, protected (only the
# scope process writes; anyone reads), with read_concurrency. One row per
# group that has members, keyed by the group:
#
#   row:  {Group, AllPids, LocalPids}     (the key is Group)
#
#   AllPids    every member, on any node, once per join, newest first
#   LocalPids  the members on this node (a sublist of AllPids), newest first
#
# get_members/2 is ets:lookup_element(Scope, Group, 2), get_local_members/2
# the same at position 3: one hash lookup, no message, whatever the size of
# the cluster. A group whose last member leaves loses its row: an absent
# row and an empty group are the same thing (which_groups lists rows).


class GroupRow(NamedTuple):
    """``{Group, AllPids, LocalPids}``: a non-empty group, all its members, and those on this node.

    Erlang: none (the row shape of a scope's ETS table)
    """

    group: Group
    all_pids: list[Pid]
    local_pids: list[Pid]


# ETS counts tuple positions from 1: the positions get_members and
# get_local_members read.
ALL_PIDS = GroupRow._fields.index("all_pids") + 1  # == 2
LOCAL_PIDS = GroupRow._fields.index("local_pids") + 1  # == 3

# == The state of a scope process =====================================================
#
#   scope             the scope's name: the registered name and the table's name
#   local             {Pid => {MRef, Groups}}: each local member, the monitor on
#                     it, and the groups it joined (newest first, once per join)
#   remote            {PeerPid => {MRef, {Group => Pids}}}: each peer scope
#                     process of the overlay network, the monitor on it, and
#                     the members it announced, by group (for a fast sync)
#   scope_monitors    {MRef => Pid}: processes that called monitor_scope
#   group_monitors    {MRef => {Pid, Group}}: processes that called monitor(Group)
#   monitored_groups  {Group => [{Pid, MRef}]}: the same, by group (reverse map)
#
# Every monitor reference in the state doubles as the subscription reference
# a monitoring process received: the scope process monitors each subscriber
# so that a subscriber's exit drops its subscription.

Local = dict[Pid, tuple[Ref, list[Group]]]
RemoteGroups = dict[Group, list[Pid]]
Remote = dict[Pid, tuple[Ref, RemoteGroups]]
ScopeMonitors = dict[Ref, Pid]
GroupMonitors = dict[Ref, tuple[Pid, Group]]
MonitoredGroups = dict[Group, list[tuple[Pid, Ref]]]


# DIVERGENCE(D52): the maps below are updated in place, so sys:get_state returns them live.
class State(NamedTuple):
    """``#state{}``: what a scope process knows (see the block above).

    Erlang: none (the state record of pg.erl)

    The maps are updated in place by the scope process alone: a record read
    with ``gen_server.get_state`` is the live one (D?), to read while the
    scope is quiet, never to change.
    """

    scope: Scope
    local: Local
    remote: Remote
    scope_monitors: ScopeMonitors
    group_monitors: GroupMonitors
    monitored_groups: MonitoredGroups


# == Messages =========================================================================
#
# Calls from a local client to its scope process (gen_server:call, infinity):
#
#   ('join_local', Group, PidOrPids)    -> 'ok'
#   ('leave_local', Group, PidOrPids)   -> 'ok' | 'not_joined'
#   'monitor'                           -> (MRef, {Group: AllPids})
#   ('monitor', Group)                  -> (MRef, AllPids)
#   ('demonitor', MRef)                 -> 'ok' | False
#
# Between the scope processes of one overlay network (Peer is the sender's pid):
#
#   ('discover', Peer)                       plain message, to (Scope, Node) or to a
#                                            peer's pid: "I am here, send me your members"
#   ('$gen_cast', ('sync', Peer, Groups))    a cast; Groups = [(Group, Pids), ...],
#                                            every group with members on Peer's node
#   ('join', Peer, Group, PidOrPids)         plain message: local members joined
#   ('leave', Peer, PidOrPids, Groups)       plain message: local members left these groups
#
# From the runtime:
#
#   ('nodeup', Node), ('nodedown', Node)     net_kernel:monitor_nodes(true)
#   ('DOWN', MRef, 'process', Pid, Info)     a monitored local member, peer scope
#                                            process or subscriber ended
#
# To subscribers (monitor_scope/monitor), sent by the scope process:
#
#   (MRef, 'join', Group, Pids)              Pids joined Group
#   (MRef, 'leave', Group, Pids)             Pids left Group
#
# Messages to peers and subscribers go with erlang:send/3 and [noconnect]: a
# scope process never waits for a connection to be set up. A peer that is
# not connected gets nothing now and a full sync when it is connected again.


# == API: default scope, then scoped (pg.erl exports them in two lists) ===============


@overload
def start_link() -> Any:
    """The form for the default scope, ``'pg'``.

    Erlang: pg:start_link/0
    """


@overload
def start_link(scope: Scope, /) -> Any:
    """The form for a named scope.

    Erlang: pg:start_link/1
    """


def start_link(*args: Any) -> Any:
    """Start a scope process linked to the caller: the default scope ``'pg'``, or ``scope``.

    Erlang: pg:start_link/0
    Erlang: pg:start_link/1

    The process registers under the scope's name and makes the scope's ETS
    table (see :func:`init`). Linked, so a supervisor can own it; OTP's
    kernel starts the default scope this way when ``start_pg`` is set.

    Returns:
        ``('ok', pid)``, or ``('error', ('already_started', pid))`` when the
        scope runs already.

    Raises:
        erlang.ErlangTypeError: ``function_clause`` when ``scope`` is not an
        atom (guard ``is_atom(Scope)``), also a ``TypeError`` (D34).
    """
    match args:
        case ():  # Erlang: start_link()
            return start_link(DEFAULT_SCOPE)
        case (str() as scope,):  # Erlang: start_link(Scope) when is_atom(Scope)
            return gen_server.start_link(("local", scope), _this_module(), [scope], [])
        case (bad,):
            raise _function_clause("start_link/1", f"the scope {bad!r} is not an atom (guard is_atom(Scope))")
    raise _undef("start_link", args, "0 or 1")


def start(scope: Scope) -> Any:
    """Start a scope process outside any supervision tree (no link).

    Erlang: pg:start/1

    Returns:
        ``('ok', pid)``, or ``('error', ('already_started', pid))``.

    Raises:
        erlang.ErlangTypeError: ``function_clause`` when ``scope`` is not an
        atom (guard ``is_atom(Scope)``), also a ``TypeError`` (D34).
    """
    if not isinstance(scope, str):
        raise _function_clause("start/1", f"the scope {scope!r} is not an atom (guard is_atom(Scope))")
    return gen_server.start(("local", scope), _this_module(), [scope], [])


@overload
def join(group: Group, pid_or_pids: PidOrPids, /) -> str:
    """The form for the default scope, ``'pg'``.

    Erlang: pg:join/2
    """


@overload
def join(scope: Scope, group: Group, pid_or_pids: PidOrPids, /) -> str:
    """The form for a named scope.

    Erlang: pg:join/3
    """


def join(*args: Any) -> str:
    """Join one local process, or a list of them, to a group; the group comes into being with them.

    Erlang: pg:join/2
    Erlang: pg:join/3

    A process may join a group several times (a list may name it twice) and
    is then a member once per join. The call goes to the local scope process
    only: it records the joins, monitors each new member, tells the
    subscribers, and sends one ``join`` message to each peer. So when it
    returns the local table has the members; other nodes get them moments
    later (pg is eventually consistent).

    Returns:
        ``'ok'``.

    Raises:
        erlang.ErlangError: ``('nolocal', bad)`` when a pid is not of this
            node, or a list holds a non-pid (checked before anything is sent).
        erlang.ErlangTypeError: ``function_clause`` when ``pid_or_pids`` is
            neither a pid nor a list, also a ``TypeError`` (D34).
        TypeError: the group is not a hashable term (D10).
        erlang.ExitError: ``('noproc', ...)`` when the scope is not running.
    """
    match args:
        case (group, pid_or_pids):  # Erlang: join(Group, PidOrPids)
            return join(DEFAULT_SCOPE, group, pid_or_pids)
        case (scope, group, Pid() | list() as pid_or_pids):  # Erlang: join(Scope, Group, PidOrPids) when ...
            ensure_local(pid_or_pids)  # Erlang: ok = ensure_local(PidOrPids)
            _check_group(group, "pg:join/3")
            reply: str = gen_server.call(scope, ("join_local", group, pid_or_pids), "infinity")
            return reply
        case (_scope, _group, bad):
            raise _function_clause("join/3", f"{bad!r} is neither a pid nor a list (guard is_pid; is_list)")
    raise _undef("join", args, "2 or 3")


@overload
def leave(group: Group, pid_or_pids: PidOrPids, /) -> str:
    """The form for the default scope, ``'pg'``.

    Erlang: pg:leave/2
    """


@overload
def leave(scope: Scope, group: Group, pid_or_pids: PidOrPids, /) -> str:
    """The form for a named scope.

    Erlang: pg:leave/3
    """


def leave(*args: Any) -> str:
    """Take one membership of each given local process out of a group.

    Erlang: pg:leave/2
    Erlang: pg:leave/3

    A process that joined twice stays a member after one leave. The group
    disappears with its last member.

    Returns:
        ``'ok'``, or ``'not_joined'`` when none of the processes was in the
        group (then nothing is sent to anybody).

    Raises:
        The same as :func:`join`.
    """
    match args:
        case (group, pid_or_pids):  # Erlang: leave(Group, PidOrPids)
            return leave(DEFAULT_SCOPE, group, pid_or_pids)
        case (scope, group, Pid() | list() as pid_or_pids):  # Erlang: leave(Scope, Group, PidOrPids) when ...
            ensure_local(pid_or_pids)  # Erlang: ok = ensure_local(PidOrPids)
            _check_group(group, "pg:leave/3")
            reply: str = gen_server.call(scope, ("leave_local", group, pid_or_pids), "infinity")
            return reply
        case (_scope, _group, bad):
            raise _function_clause("leave/3", f"{bad!r} is neither a pid nor a list (guard is_pid; is_list)")
    raise _undef("leave", args, "2 or 3")


@overload
def monitor_scope() -> tuple[Ref, dict[Group, list[Pid]]]:
    """The form for the default scope, ``'pg'``.

    Erlang: pg:monitor_scope/0
    """


@overload
def monitor_scope(scope: Scope, /) -> tuple[Ref, dict[Group, list[Pid]]]:
    """The form for a named scope.

    Erlang: pg:monitor_scope/1
    """


def monitor_scope(*args: Any) -> tuple[Ref, dict[Group, list[Pid]]]:
    """Return every group of a scope with its members, and subscribe the caller to all their changes.

    Erlang: pg:monitor_scope/0
    Erlang: pg:monitor_scope/1

    From now on the caller receives ``(ref, 'join', group, pids)`` and
    ``(ref, 'leave', group, pids)`` for every change the scope process
    applies, local or remote, until :func:`demonitor` or until the caller
    exits. The snapshot and the subscription are taken in one step of the
    scope process, so no change falls between them.

    Returns:
        ``(ref, {group: members})``.
    """
    match args:
        case ():  # Erlang: monitor_scope()
            return monitor_scope(DEFAULT_SCOPE)
        case (scope,):  # Erlang: monitor_scope(Scope)
            reply: tuple[Ref, dict[Group, list[Pid]]] = gen_server.call(scope, "monitor", "infinity")
            return reply
    raise _undef("monitor_scope", args, "0 or 1")


@overload
def monitor(group: Group, /) -> tuple[Ref, list[Pid]]:
    """The form for the default scope, ``'pg'``.

    Erlang: pg:monitor/1
    """


@overload
def monitor(scope: Scope, group: Group, /) -> tuple[Ref, list[Pid]]:
    """The form for a named scope.

    Erlang: pg:monitor/2
    """


def monitor(*args: Any) -> tuple[Ref, list[Pid]]:
    """Return a group's members, and subscribe the caller to the group's changes.

    Erlang: pg:monitor/1
    Erlang: pg:monitor/2

    Like :func:`monitor_scope` for one group. pg.erl's ``monitor/1`` calls
    ``?MODULE:monitor(...)``, fully qualified, because a local call to
    ``monitor/2`` would mean the auto-imported ``erlang:monitor/2``;
    ``demonitor/1`` says ``pg:demonitor(...)`` for the same reason.

    Returns:
        ``(ref, members)``.

    Raises:
        TypeError: the group is not a hashable term (D10).
    """
    match args:
        case (group,):  # Erlang: monitor(Group)
            return monitor(DEFAULT_SCOPE, group)
        case (scope, group):  # Erlang: monitor(Scope, Group)
            _check_group(group, "pg:monitor/2")
            reply: tuple[Ref, list[Pid]] = gen_server.call(scope, ("monitor", group), "infinity")
            return reply
    raise _undef("monitor", args, "1 or 2")


@overload
def demonitor(ref: Ref, /) -> str | bool:
    """The form for the default scope, ``'pg'``.

    Erlang: pg:demonitor/1
    """


@overload
def demonitor(scope: Scope, ref: Ref, /) -> str | bool:
    """The form for a named scope.

    Erlang: pg:demonitor/2
    """


def demonitor(*args: Any) -> str | bool:
    """End a subscription made by :func:`monitor_scope` or :func:`monitor`, and drop its queued notifications.

    Erlang: pg:demonitor/1
    Erlang: pg:demonitor/2

    Once the scope process has dropped the subscription no notification
    for ``ref`` can be sent any more, so flushing the caller's mailbox after
    the reply removes every one that will ever arrive.

    Returns:
        ``'ok'``, or ``False`` when ``ref`` is no subscription of this scope.
    """
    match args:
        case (ref,):  # Erlang: demonitor(Ref)
            return demonitor(DEFAULT_SCOPE, ref)
        case (scope, ref):  # Erlang: demonitor(Scope, Ref)
            return gen_server.call(scope, ("demonitor", ref), "infinity") == "ok" and flush(ref)
    raise _undef("demonitor", args, "1 or 2")


@overload
def get_members(group: Group, /) -> list[Pid]:
    """The form for the default scope, ``'pg'``.

    Erlang: pg:get_members/1
    """


@overload
def get_members(scope: Scope, group: Group, /) -> list[Pid]:
    """The form for a named scope.

    Erlang: pg:get_members/2
    """


def get_members(*args: Any) -> list[Pid]:
    """Return every member of a group, on any node, once per join, newest first.

    Erlang: pg:get_members/1
    Erlang: pg:get_members/2

    One lookup in the scope's table, in the caller's thread: no message.
    A group without members, and a scope that is not running, give ``[]``.
    """
    match args:
        case (group,):  # Erlang: get_members(Group)
            return get_members(DEFAULT_SCOPE, group)
        case (scope, group):  # Erlang: get_members(Scope, Group)
            try:
                members: list[Pid] = ets.lookup_element(scope, group, ALL_PIDS)
                return members
            except erlang.ErlangError as exc:
                if exc.reason == "badarg":  # Erlang: catch error:badarg -> [] (no row, or no table)
                    return []
                raise
    raise _undef("get_members", args, "1 or 2")


@overload
def get_local_members(group: Group, /) -> list[Pid]:
    """The form for the default scope, ``'pg'``.

    Erlang: pg:get_local_members/1
    """


@overload
def get_local_members(scope: Scope, group: Group, /) -> list[Pid]:
    """The form for a named scope.

    Erlang: pg:get_local_members/2
    """


def get_local_members(*args: Any) -> list[Pid]:
    """Return the members of a group that run on this node, once per join, newest first.

    Erlang: pg:get_local_members/1
    Erlang: pg:get_local_members/2
    """
    match args:
        case (group,):  # Erlang: get_local_members(Group)
            return get_local_members(DEFAULT_SCOPE, group)
        case (scope, group):  # Erlang: get_local_members(Scope, Group)
            try:
                members: list[Pid] = ets.lookup_element(scope, group, LOCAL_PIDS)
                return members
            except erlang.ErlangError as exc:
                if exc.reason == "badarg":  # Erlang: catch error:badarg -> []
                    return []
                raise
    raise _undef("get_local_members", args, "1 or 2")


@overload
def which_groups() -> list[Group]:
    """The form for the default scope, ``'pg'``.

    Erlang: pg:which_groups/0
    """


@overload
def which_groups(scope: Scope, /) -> list[Group]:
    """The form for a named scope.

    Erlang: pg:which_groups/1
    """


def which_groups(*args: Any) -> list[Group]:
    """Return every group of the scope that has members (anywhere).

    Erlang: pg:which_groups/0
    Erlang: pg:which_groups/1

    Raises:
        erlang.ErlangError: ``badarg`` when the scope is not running (no
            table), as ``ets:match/2`` fails in Erlang.
        erlang.ErlangTypeError: ``function_clause`` when ``scope`` is not an
            atom, also a ``TypeError`` (D34).
    """
    match args:
        case ():  # Erlang: which_groups()
            return which_groups(DEFAULT_SCOPE)
        case (str() as scope,):  # Erlang: which_groups(Scope) when is_atom(Scope)
            return [group for [group] in ets.match(scope, ("$1", "_", "_"))]
        case (bad,):
            raise _function_clause("which_groups/1", f"the scope {bad!r} is not an atom (guard is_atom(Scope))")
    raise _undef("which_groups", args, "0 or 1")


@overload
def which_local_groups() -> list[Group]:
    """The form for the default scope, ``'pg'``.

    Erlang: pg:which_local_groups/0
    """


@overload
def which_local_groups(scope: Scope, /) -> list[Group]:
    """The form for a named scope.

    Erlang: pg:which_local_groups/1
    """


def which_local_groups(*args: Any) -> list[Group]:
    """Return the groups of the scope that have members on this node.

    Erlang: pg:which_local_groups/0
    Erlang: pg:which_local_groups/1

    A select with the guard ``LocalPids =/= []`` over the whole table
    (marked ``@private`` in pg.erl's documentation, yet exported).

    Raises:
        The same as :func:`which_groups`.
    """
    match args:
        case ():  # Erlang: which_local_groups()
            return which_local_groups(DEFAULT_SCOPE)
        case (str() as scope,):  # Erlang: which_local_groups(Scope) when is_atom(Scope)
            return ets.select(scope, [(("$1", "_", "$2"), [("=/=", "$2", [])], ["$1"])])
        case (bad,):
            raise _function_clause("which_local_groups/1", f"the scope {bad!r} is not an atom (guard is_atom(Scope))")
    raise _undef("which_local_groups", args, "0 or 1")


# == gen_server callbacks =============================================================


def init(args: list[Any]) -> tuple[str, State]:
    """Start a scope process: watch nodes, greet the scope on every connected node, make the table.

    Erlang: pg:init/1

    ``monitor_nodes`` comes *before* ``nodes()`` is read, so no node is
    missed: a node that connects in between is in the list, or its
    ``nodeup`` follows, or both (then it is greeted twice, which is
    harmless: the second ``discover`` finds the peer known and only gets a
    second ``sync``). The table is made after the greetings are sent: no
    message is handled before ``init`` returns, so no answer can need it yet.
    """
    match args:
        case [scope]:  # Erlang: init([Scope])
            _expect(net_kernel.monitor_nodes(True) == "ok", "pg:init/1", "ok = net_kernel:monitor_nodes(true)", 0)
            # discover all nodes running this scope in the cluster
            broadcast([(scope, node) for node in erlang.nodes()], ("discover", erlang.self()))
            created = ets.new(scope, ["set", "protected", "named_table", ("read_concurrency", True)])
            _expect(created == scope, "pg:init/1", "Scope = ets:new(Scope, ...)", created)
            return ("ok", State(scope, {}, {}, {}, {}, {}))
    raise erlang.ErlangError("function_clause", f"pg:init/1: {args!r} is not [Scope]")


def handle_call(request: Any, from_: tuple[Pid, Any], state: State) -> tuple[str, Any, State]:
    """Apply a local join or leave, or take or drop a subscription.

    Erlang: pg:handle_call/3 ({join_local, Group, PidOrPids})
    Erlang: pg:handle_call/3 ({leave_local, Group, PidOrPids})
    Erlang: pg:handle_call/3 (monitor)
    Erlang: pg:handle_call/3 ({monitor, Group})
    Erlang: pg:handle_call/3 ({demonitor, Ref})
    Erlang: pg:handle_call/3 (_Request, _From, _S)

    A join or leave updates, in this order, the map of local members (and
    their monitors), the table (and the subscribers), and the peers. A
    subscriber is monitored: its reference is the monitor's, and its exit
    drops the subscription. An unknown request crashes the scope process
    with ``badarg``: pg does not defend against callers that skip its API.
    """
    match request:
        case ("join_local", group, pid_or_pids):  # Erlang: handle_call({join_local, Group, PidOrPids}, ...)
            join_local(pid_or_pids, group, state.local)
            join_local_update_ets(state.scope, state.scope_monitors, state.monitored_groups, group, pid_or_pids)
            broadcast(list(state.remote), ("join", erlang.self(), group, pid_or_pids))
            return ("reply", "ok", state)
        case ("leave_local", group, pid_or_pids):  # Erlang: handle_call({leave_local, Group, PidOrPids}, ...)
            if not leave_local(pid_or_pids, group, state.local):  # Erlang: Local -> (the map came back unchanged)
                return ("reply", "not_joined", state)
            leave_local_update_ets(state.scope, state.scope_monitors, state.monitored_groups, group, pid_or_pids)
            broadcast(list(state.remote), ("leave", erlang.self(), pid_or_pids, [group]))
            return ("reply", "ok", state)
        case "monitor":  # Erlang: handle_call(monitor, {Pid, _Tag}, ...)
            pid = from_[0]
            # pg.erl names this map Local, though it holds every member; it reads the
            # table because its author found walking the process state slower.
            local = {group: pids for [group, pids] in ets.match(state.scope, ("$1", "$2", "_"))}
            # monitor the monitor, to drop it when it exits, and to have an MRef
            mref = erlang.monitor("process", pid)
            state.scope_monitors[mref] = pid
            return ("reply", (mref, local), state)
        case ("monitor", group):  # Erlang: handle_call({monitor, Group}, {Pid, _Tag}, ...)
            pid = from_[0]
            # only this process writes the table, so reading it here is up to date
            members = get_members(state.scope, group)
            mref = erlang.monitor("process", pid)
            state.monitored_groups[group] = [(pid, mref), *state.monitored_groups.get(group, [])]
            state.group_monitors[mref] = (pid, group)
            return ("reply", (mref, members), state)
        case ("demonitor", ref):  # Erlang: handle_call({demonitor, Ref}, _From, ...)
            # pg.erl does not use maybe_drop_monitor here: that one does not
            # demonitor, and cannot answer false.
            if ref in state.scope_monitors:  # Erlang: maps:take(Ref, ScopeMon) -> {_, NewMons}
                del state.scope_monitors[ref]
                erlang.demonitor(ref)
                return ("reply", "ok", state)
            if ref in state.group_monitors:  # Erlang: error -> maps:take(Ref, GM) -> {{Pid, Group}, NewGM}
                pid, group = state.group_monitors.pop(ref)
                erlang.demonitor(ref)
                demonitor_group((pid, ref), group, state.monitored_groups)
                return ("reply", "ok", state)
            return ("reply", False, state)  # Erlang: error -> {reply, false, State}
        case _:  # Erlang: handle_call(_Request, _From, _S) -> erlang:error(badarg)
            raise erlang.ErlangError("badarg", f"pg:handle_call/3: unexpected request {request!r}")


def handle_cast(msg: Any, state: State) -> tuple[str, State]:
    """Take a peer's ``sync``: its complete list of groups with members on its node.

    Erlang: pg:handle_cast/2 ({sync, Peer, Groups})
    Erlang: pg:handle_cast/2 (_, _State)

    Anything else crashes the scope process with ``badarg``.
    """
    match msg:
        case ("sync", peer, groups):  # Erlang: handle_cast({sync, Peer, Groups}, State)
            handle_sync(state.scope, state.scope_monitors, state.monitored_groups, peer, state.remote, groups)
            return ("noreply", state)
        case _:  # Erlang: handle_cast(_, _State) -> erlang:error(badarg)
            raise erlang.ErlangError("badarg", f"pg:handle_cast/2: unexpected message {msg!r}")


def handle_info(msg: Any, state: State) -> tuple[str, State]:
    """React to peers' joins and leaves, to ``discover``, to monitors firing, and to new nodes.

    Erlang: pg:handle_info/2 ({join, Peer, Group, PidOrPids})
    Erlang: pg:handle_info/2 ({leave, Peer, PidOrPids, Groups})
    Erlang: pg:handle_info/2 ({discover, Peer})
    Erlang: pg:handle_info/2 ({'DOWN', MRef, process, Pid, _Info}) when node(Pid) =:= node()
    Erlang: pg:handle_info/2 ({'DOWN', MRef, process, Pid, _Info})
    Erlang: pg:handle_info/2 ({nodedown, _Node})
    Erlang: pg:handle_info/2 ({nodeup, Node}) when Node =:= node()
    Erlang: pg:handle_info/2 ({nodeup, Node})
    Erlang: pg:handle_info/2 (_Info, _State)

    ``join`` and ``leave`` from a process that is not a known peer are
    ignored. Two races make that necessary: a node flickering down and up
    can deliver a join sent before it left the overlay network; and a peer
    whose connection dropped just as it sent a ``leave`` is forgotten at its
    ``'DOWN'``, after which the reconnected link delivers the ``leave``. It
    also keeps out scope processes that are not in the overlay network.

    A ``'DOWN'`` for a local pid is a member that exited (it leaves all its
    groups, announced in one ``leave`` message) or a local subscriber. For
    a remote pid it is a peer scope process gone, or its node lost: all its
    members leave. Unknown messages crash the scope process with ``badarg``.
    """
    match msg:
        case ("join", peer, group, pid_or_pids):  # Erlang: handle_info({join, Peer, Group, PidOrPids}, ...)
            match state.remote.get(peer, []):  # Erlang: case maps:get(Peer, Remote, []) of
                case (mref, remote_groups):  # Erlang: {MRef, RemoteGroups} ->
                    join_remote_update_ets(
                        state.scope, state.scope_monitors, state.monitored_groups, group, pid_or_pids
                    )
                    # store remote group => pids map for fast sync operation
                    join_remote(group, pid_or_pids, remote_groups)
                    return ("noreply", state)
                case []:  # Erlang: [] -> a peer outside the overlay network (see above)
                    return ("noreply", state)
        case ("leave", peer, pid_or_pids, groups):  # Erlang: handle_info({leave, Peer, PidOrPids, Groups}, ...)
            match state.remote.get(peer, []):  # Erlang: case maps:get(Peer, Remote, []) of
                case (mref, remote_map):  # Erlang: {MRef, RemoteMap} ->
                    leave_remote_update_ets(
                        state.scope, state.scope_monitors, state.monitored_groups, pid_or_pids, groups
                    )
                    leave_remote(pid_or_pids, remote_map, groups)
                    return ("noreply", state)
                case []:  # Erlang: [] -> a peer forgotten at its 'DOWN' (see above)
                    return ("noreply", state)
        case ("discover", peer):  # Erlang: handle_info({discover, Peer}, ...): we're being discovered, exchange
            gen_server.cast(peer, ("sync", erlang.self(), all_local_pids(state.local)))
            # do we know who is looking for us?
            if peer in state.remote:
                return ("noreply", state)
            mref = erlang.monitor("process", peer)
            erlang.send(peer, ("discover", erlang.self()), ["noconnect"])
            state.remote[peer] = (mref, {})
            return ("noreply", state)
        case ("DOWN", mref, "process", Pid() as pid, _info) if erlang.node(pid) == erlang.node():
            # Erlang: handle_info({'DOWN', MRef, process, Pid, _Info}, ...) when node(Pid) =:= node()
            # a local member exited, or a local subscriber did
            match state.local.get(pid):  # Erlang: case maps:take(Pid, Local) of
                case None:  # Erlang: error ->
                    maybe_drop_monitor(mref, state)
                    return ("noreply", state)
                case (ref, groups) if ref == mref:  # Erlang: {{MRef, Groups}, NewLocal} ->
                    del state.local[pid]
                    for group in groups:
                        leave_local_update_ets(state.scope, state.scope_monitors, state.monitored_groups, group, pid)
                    # send update to all remote peers
                    broadcast(list(state.remote), ("leave", erlang.self(), pid, groups))
                    return ("noreply", state)
                case taken:  # no clause matches: a member's subscription monitor (GH-7625, fixed in OTP 26)
                    rest = {p: v for p, v in state.local.items() if p != pid}
                    raise erlang.ErlangError(("case_clause", (taken, rest)), "pg:handle_info/2: case_clause")
        case ("DOWN", mref, "process", pid, _info):  # Erlang: handle_info({'DOWN', MRef, process, Pid, _Info}, ...)
            # a peer's scope process or node went down, or a remote subscriber did
            match state.remote.get(pid):  # Erlang: case maps:take(Pid, Remote) of
                case (ref, remote_map) if ref == mref:  # Erlang: {{MRef, RemoteMap}, NewRemote} ->
                    del state.remote[pid]
                    for group, pids in remote_map.items():  # Erlang: maps:foreach(...)
                        leave_remote_update_ets(
                            state.scope, state.scope_monitors, state.monitored_groups, pids, [group]
                        )
                    return ("noreply", state)
                case None:  # Erlang: error ->
                    maybe_drop_monitor(mref, state)
                    return ("noreply", state)
                case taken_remote:  # no clause matches
                    rest_remote = {p: v for p, v in state.remote.items() if p != pid}
                    raise erlang.ErlangError(
                        ("case_clause", (taken_remote, rest_remote)), "pg:handle_info/2: case_clause"
                    )
        case ("nodedown", _node):  # Erlang: handle_info({nodedown, _Node}, State): the peer's 'DOWN' does the work
            return ("noreply", state)
        case ("nodeup", node) if node == erlang.node():  # Erlang: handle_info({nodeup, Node}, ...) when Node =:= node()
            # distribution started on this node: pg.erl documents that it sends nodeup then
            return ("noreply", state)
        case ("nodeup", node):  # Erlang: handle_info({nodeup, Node}, ...): does Node run this scope?
            erlang.send((state.scope, node), ("discover", erlang.self()))
            return ("noreply", state)
    # Erlang: handle_info(_Info, _State) -> erlang:error(badarg)
    raise erlang.ErlangError("badarg", f"pg:handle_info/2: unexpected message {msg!r}")


def terminate(reason: Any, state: State) -> bool:
    """Delete the scope's table on the way out.

    Erlang: pg:terminate/2

    ETS deletes it anyway when its owner exits; pg does it explicitly. A
    scope started again has an empty table that its peers' ``sync`` fills;
    its own local members are gone with the old process's state.
    """
    _expect(ets.delete(state.scope) is True, "pg:terminate/2", "true = ets:delete(Scope)", False)
    return True


# == Local functions ==================================================================


def ensure_local(pid_or_pids: Any) -> str:
    """Check that ``pid_or_pids`` is a pid of this node, or a list of only such pids.

    Erlang: pg:ensure_local/1

    Only the node's name is compared, as ``node(Pid) =:= node()`` does: a
    pid of an earlier incarnation of this node passes, and its monitor then
    reports it dead at once.

    Raises:
        erlang.ErlangError: ``('nolocal', bad)`` for the first offender.
    """
    match pid_or_pids:
        case Pid() as pid if erlang.node(pid) == erlang.node():  # Erlang: ensure_local(Pid) when is_pid(Pid), ...
            return "ok"
        case list() as pids:  # Erlang: ensure_local(Pids) when is_list(Pids)
            for pid in pids:  # Erlang: lists:foreach(fun (Pid) when is_pid(Pid), node(Pid) =:= node() -> ok; ...)
                if not (isinstance(pid, Pid) and erlang.node(pid) == erlang.node()):
                    raise erlang.ErlangError(("nolocal", pid), f"pg: {pid!r} is not a process of this node")
            return "ok"
        case bad:  # Erlang: ensure_local(Bad) -> erlang:error({nolocal, Bad})
            raise erlang.ErlangError(("nolocal", bad), f"pg: {bad!r} is not a process of this node")


def handle_sync(
    scope: Scope, scope_mon: ScopeMonitors, mg: MonitoredGroups, peer: Pid, remote: Remote, groups: list[Any]
) -> None:
    """Replace all we know of a peer's members with what its ``sync`` says.

    Erlang: pg:handle_sync/6

    A peer we did not know yet becomes known here (a ``sync`` can come
    before its ``discover``), and is monitored. The peer's members are
    compared group by group with what it announced before, so only groups
    that differ touch the table. (pg.erl's comment here still says a full
    table scan is needed, as for a ``nodedown``; the map of each peer's
    groups has since made it a walk over that peer's groups.)
    """
    # Erlang: maps:find, not maps:get with a default: the default would be
    # evaluated first, and erlang:monitor/2 has a side effect.
    remote_groups: RemoteGroups
    match remote.get(peer):
        case None:  # Erlang: error -> {erlang:monitor(process, Peer), #{}}
            mref, remote_groups = erlang.monitor("process", peer), {}
        case (mref, remote_groups):  # Erlang: {ok, MRef0} -> MRef0
            pass
    # sync RemoteMap and transform ETS table
    sync_groups(scope, scope_mon, mg, remote_groups, groups)
    remote[peer] = (mref, dict(groups))  # Erlang: Remote#{Peer => {MRef, maps:from_list(Groups)}}


def sync_groups(
    scope: Scope, scope_mon: ScopeMonitors, mg: MonitoredGroups, remote_groups: RemoteGroups, groups: list[Any]
) -> None:
    """Bring the table from a peer's old list of groups to its new one.

    Erlang: pg:sync_groups/5

    pg.erl recurses over the new list, taking each group out of the old map:
    unchanged groups cost nothing; changed ones have the old pids replaced
    by the new in the row (without telling subscribers, as pg.erl does not);
    new groups join. Whatever is left of the old map left the peer: it
    leaves here. ``remote_groups`` is used up; the caller replaces it.
    """
    for group, pids in groups:  # Erlang: sync_groups(..., [{Group, Pids} | Tail])
        if group not in remote_groups:  # Erlang: error ->
            join_remote_update_ets(scope, scope_mon, mg, group, pids)
            continue
        old_pids = remote_groups.pop(group)  # Erlang: maps:take(Group, RemoteGroups)
        if old_pids == pids:  # Erlang: {Pids, NewRemoteGroups} -> (no change)
            continue
        # Erlang: {OldPids, NewRemoteGroups} -> "should be really rare..."
        rows = ets.lookup(scope, group)
        _expect(len(rows) == 1, "pg:sync_groups/5", "[{Group, AllOldPids, LocalPids}] = ets:lookup(Scope, Group)", rows)
        _group, all_old_pids, local_pids = rows[0]
        # pg.erl: the new list is Pids, then the old pids without OldPids (-- binds to the right)
        all_new_pids = pids + terms.subtract(all_old_pids, old_pids)
        _expect(ets.insert(scope, GroupRow(group, all_new_pids, local_pids)) is True, "pg:sync_groups/5", "true", 0)
    # Erlang: sync_groups(..., []): leave all missing groups
    for group, pids in remote_groups.items():
        leave_remote_update_ets(scope, scope_mon, mg, pids, [group])


def join_local(pid_or_pids: PidOrPids, group: Group, local: Local) -> None:
    """Record joins of local processes, monitoring each process on its first join.

    Erlang: pg:join_local/3

    A process's groups are kept newest first, once per join; one monitor per
    process, whatever the number of its joins.
    """
    match pid_or_pids:
        case Pid() as pid:  # Erlang: join_local(Pid, Group, Local) when is_pid(Pid)
            match local.get(pid):  # Erlang: case maps:find(Pid, Local) of
                case (mref, groups):  # Erlang: {ok, {MRef, Groups}} ->
                    local[pid] = (mref, [group, *groups])
                case None:  # Erlang: error ->
                    local[pid] = (erlang.monitor("process", pid), [group])
        case list() as pids:  # Erlang: join_local([], ...) and join_local([Pid | Tail], ...), as a loop
            for pid in pids:
                join_local(pid, group, local)


def join_local_update_ets(
    scope: Scope, scope_mon: ScopeMonitors, mg: MonitoredGroups, group: Group, pid_or_pids: PidOrPids
) -> None:
    """Add local joiners at the front of a group's row (making the row if needed); tell the subscribers.

    Erlang: pg:join_local_update_ets/5
    """
    if isinstance(pid_or_pids, Pid):  # Erlang: join_local_update_ets(..., Pid) when is_pid(Pid)
        pid = pid_or_pids
        match ets.lookup(scope, group):
            case [(_group, all_pids, local_pids)]:  # Erlang: [{Group, All, Local}] ->
                ets.insert(scope, GroupRow(group, [pid, *all_pids], [pid, *local_pids]))
            case []:
                ets.insert(scope, GroupRow(group, [pid], [pid]))
        notify_group(scope_mon, mg, "join", group, [pid])
        return
    pids = pid_or_pids  # Erlang: join_local_update_ets(..., Pids)
    match ets.lookup(scope, group):
        case [(_group, all_pids, local_pids)]:
            ets.insert(scope, GroupRow(group, pids + all_pids, pids + local_pids))
        case []:
            ets.insert(scope, GroupRow(group, pids, pids))
    notify_group(scope_mon, mg, "join", group, pids)


def join_remote_update_ets(
    scope: Scope, scope_mon: ScopeMonitors, mg: MonitoredGroups, group: Group, pid_or_pids: PidOrPids
) -> None:
    """Add a peer's joiners at the front of a group's row (its local part unchanged); tell the subscribers.

    Erlang: pg:join_remote_update_ets/5
    """
    if isinstance(pid_or_pids, Pid):  # Erlang: join_remote_update_ets(..., Pid) when is_pid(Pid)
        pid = pid_or_pids
        match ets.lookup(scope, group):
            case [(_group, all_pids, local_pids)]:
                ets.insert(scope, GroupRow(group, [pid, *all_pids], local_pids))
            case []:
                ets.insert(scope, GroupRow(group, [pid], []))
        notify_group(scope_mon, mg, "join", group, [pid])
        return
    pids = pid_or_pids  # Erlang: join_remote_update_ets(..., Pids)
    match ets.lookup(scope, group):
        case [(_group, all_pids, local_pids)]:
            ets.insert(scope, GroupRow(group, pids + all_pids, local_pids))
        case []:
            ets.insert(scope, GroupRow(group, pids, []))
    notify_group(scope_mon, mg, "join", group, pids)


def join_remote(group: Group, pid_or_pids: PidOrPids, remote_groups: RemoteGroups) -> None:
    """Remember a peer's joiners in its map of groups (for the next ``sync``).

    Erlang: pg:join_remote/3
    """
    if isinstance(pid_or_pids, Pid):  # Erlang: join_remote(Group, Pid, RemoteGroups) when is_pid(Pid)
        remote_groups[group] = [pid_or_pids, *remote_groups.get(group, [])]  # Erlang: maps:update_with(...)
    else:
        remote_groups[group] = [*pid_or_pids, *remote_groups.get(group, [])]


def leave_local(pid_or_pids: PidOrPids, group: Group, local: Local) -> bool:
    """Drop one join of each local process from ``group``; say whether any was dropped.

    Erlang: pg:leave_local/3

    pg.erl returns the new map, and its caller compares it with the old one:
    an unchanged map means ``not_joined``. The map is updated in place here,
    so the comparison becomes this flag. A process that leaves its last
    group is no longer monitored (``demonitor`` without ``flush``: a
    ``'DOWN'`` already queued finds the process gone from the map and is
    dropped, see :func:`handle_info`).
    """
    match pid_or_pids:
        case Pid() as pid:  # Erlang: leave_local(Pid, Group, Local) when is_pid(Pid)
            match local.get(pid):  # Erlang: case maps:find(Pid, Local) of
                case (mref, [only]) if only == group:  # Erlang: {ok, {MRef, [Group]}} ->
                    erlang.demonitor(mref)
                    del local[pid]
                    return True
                case (mref, groups) if group in groups:  # Erlang: {ok, {MRef, Groups}} -> lists:member -> true
                    local[pid] = (mref, _delete(group, groups))
                    return True
                case _:  # Erlang: lists:member -> false, and _ -> Local
                    return False
        case list() as pids:  # Erlang: leave_local([], ...) and leave_local([Pid | Tail], ...), as a loop
            changed = False
            for pid in pids:
                changed = leave_local(pid, group, local) or changed  # every pid leaves, whatever came before
            return changed
    raise erlang.ErlangError("function_clause", f"pg:leave_local/3: {pid_or_pids!r}")


def leave_local_update_ets(
    scope: Scope, scope_mon: ScopeMonitors, mg: MonitoredGroups, group: Group, pid_or_pids: PidOrPids
) -> None:
    """Take local leavers out of a group's row, deleting a row left empty; tell the subscribers.

    Erlang: pg:leave_local_update_ets/5

    A group with no row is left alone: pg.erl names the rare race that gets
    here, a member's ``'DOWN'`` waiting in the queue while the member leaves.
    """
    if isinstance(pid_or_pids, Pid):  # Erlang: leave_local_update_ets(..., Pid) when is_pid(Pid)
        pid = pid_or_pids
        match ets.lookup(scope, group):
            case [(_group, [p1], [p2])] if p1 == pid and p2 == pid:  # Erlang: [{Group, [Pid], [Pid]}] ->
                ets.delete(scope, group)
                notify_group(scope_mon, mg, "leave", group, [pid])
            case [(_group, all_pids, local_pids)]:  # Erlang: [{Group, All, Local}] ->
                ets.insert(scope, GroupRow(group, _delete(pid, all_pids), _delete(pid, local_pids)))
                notify_group(scope_mon, mg, "leave", group, [pid])
            case []:  # Erlang: [] -> true (the 'DOWN'/leave race)
                pass
        return
    pids = pid_or_pids  # Erlang: leave_local_update_ets(..., Pids)
    match ets.lookup(scope, group):
        case [(_group, all_pids, local_pids)]:
            new_all = terms.subtract(all_pids, pids)
            if not new_all:  # Erlang: case All -- Pids of [] ->
                ets.delete(scope, group)
            else:
                ets.insert(scope, GroupRow(group, new_all, terms.subtract(local_pids, pids)))
            notify_group(scope_mon, mg, "leave", group, pids)
        case []:
            pass


def leave_remote_update_ets(
    scope: Scope, scope_mon: ScopeMonitors, mg: MonitoredGroups, pid_or_pids: PidOrPids, groups: list[Group]
) -> None:
    """Take a peer's leavers out of each group's row, deleting rows left empty; tell the subscribers.

    Erlang: pg:leave_remote_update_ets/5
    """
    if isinstance(pid_or_pids, Pid):  # Erlang: leave_remote_update_ets(..., Pid, Groups) when is_pid(Pid)
        pid = pid_or_pids
        for group in groups:
            match ets.lookup(scope, group):
                case [(_group, [only], [])] if only == pid:  # Erlang: [{Group, [Pid], []}] ->
                    ets.delete(scope, group)
                    notify_group(scope_mon, mg, "leave", group, [pid])
                case [(_group, all_pids, local_pids)]:
                    ets.insert(scope, GroupRow(group, _delete(pid, all_pids), local_pids))
                    notify_group(scope_mon, mg, "leave", group, [pid])
                case []:
                    pass
        return
    pids = pid_or_pids  # Erlang: leave_remote_update_ets(..., Pids, Groups)
    for group in groups:
        match ets.lookup(scope, group):
            case [(_group, all_pids, local_pids)]:
                new_all = terms.subtract(all_pids, pids)
                if not new_all and local_pids == []:  # Erlang: [] when Local =:= [] ->
                    ets.delete(scope, group)
                else:
                    ets.insert(scope, GroupRow(group, new_all, local_pids))
                notify_group(scope_mon, mg, "leave", group, pids)
            case []:
                pass


def leave_remote(pid_or_pids: PidOrPids, remote_map: RemoteGroups, groups: list[Group]) -> None:
    """Forget a peer's leavers in its map of groups, dropping groups left empty.

    Erlang: pg:leave_remote/3

    Each group must be in the map (``maps:get/2`` without a default): a
    ``leave`` naming a group the peer never announced crashes the scope
    process with ``{badkey, Group}``, as in pg.erl.
    """
    pids = [pid_or_pids] if isinstance(pid_or_pids, Pid) else pid_or_pids  # Erlang: leave_remote(Pid, ...) clause
    for group in groups:  # Erlang: lists:foldl(fun (Group, Acc) -> ... end, RemoteMap, Groups)
        if group not in remote_map:
            raise erlang.ErlangError(("badkey", group), f"pg:leave_remote/3: maps:get({group!r}, ...)")
        remaining = terms.subtract(remote_map[group], pids)
        if not remaining:
            del remote_map[group]
        else:
            remote_map[group] = remaining


def all_local_pids(local: Local) -> list[tuple[Group, list[Pid]]]:
    """Return ``[(group, local members)]``: the payload of a ``sync``.

    Erlang: pg:all_local_pids/1

    Turns the map by process into a list by group, a process listed once per
    join. The order of the groups and of the pids follows the map's order,
    which Erlang leaves unspecified; a receiver that finds another order than
    last time merely rewrites that group's row (see :func:`sync_groups`).
    """
    by_group: dict[Group, list[Pid]] = {}
    for pid, (_ref, groups) in local.items():  # Erlang: maps:fold(fun(Pid, {_Ref, Groups}, Acc) -> ...)
        for group in groups:
            by_group.setdefault(group, []).append(pid)  # fresh lists, ours to append to
    # Erlang prepends ([Pid | maps:get(Group, Acc1, [])]): the last visited first
    return [(group, pids[::-1]) for group, pids in by_group.items()]


def broadcast(dests: list[Any], msg: Any) -> str:
    """Send ``msg`` to each destination, without setting up connections.

    Erlang: pg:broadcast/2

    pg.erl's ``gen_server:abcast`` for a list of processes instead of nodes.
    Not with ``nosuspend``: that would drop join and leave messages whenever
    a distribution buffer is full, and a lost join is never repaired until
    the next ``sync``.
    """
    for dest in dests:  # Erlang: broadcast([], _Msg) and broadcast([Dest | Tail], Msg), as a loop
        erlang.send(dest, msg, ["noconnect"])
    return "ok"


def maybe_drop_monitor(mref: Ref, state: State) -> None:
    """Drop a subscription whose subscriber went down, if ``mref`` was one.

    Erlang: pg:maybe_drop_monitor/2

    Reached only for ``'DOWN'`` messages that are neither a member's nor a
    peer's: rare, so pg.erl checks them last.
    """
    if mref in state.scope_monitors:  # Erlang: case maps:take(MRef, ScopeMon) of {_Pid, NewScopeMon} ->
        del state.scope_monitors[mref]
        return
    match state.group_monitors.pop(mref, None):  # Erlang: error -> case maps:take(MRef, GMs) of
        case None:  # Erlang: error -> State
            return
        case (pid, group):  # Erlang: {{Pid, Group}, NewGM} -> clean up the inverse map
            demonitor_group((pid, mref), group, state.monitored_groups)


def demonitor_group(tag: tuple[Pid, Ref], group: Group, mg: MonitoredGroups) -> None:
    """Remove one ``(pid, ref)`` subscription from a group's list, and the group when it was the last.

    Erlang: pg:demonitor_group/3

    The group must be in the map (there is no clause for ``error``).
    """
    match mg.get(group):  # Erlang: case maps:find(Group, MG) of
        case [only] if only == tag:  # Erlang: {ok, [Tag]} ->
            del mg[group]
        case list() as tags:  # Erlang: {ok, Tags} ->
            mg[group] = terms.subtract(tags, [tag])
        case None:
            raise erlang.ErlangError(("case_clause", "error"), f"pg:demonitor_group/3: no group {group!r}")


def notify_group(
    scope_monitors: ScopeMonitors, mg: MonitoredGroups, action: Action, group: Group, pids: list[Pid]
) -> str:
    """Tell every scope subscriber, and every subscriber of ``group``, that ``pids`` joined or left it.

    Erlang: pg:notify_group/5
    """
    for ref, pid in scope_monitors.items():  # Erlang: maps:foreach(fun (Ref, Pid) -> ... end, ScopeMonitors)
        erlang.send(pid, (ref, action, group, pids), ["noconnect"])
    match mg.get(group):  # Erlang: case maps:find(Group, MG) of
        case None:  # Erlang: error -> ok
            return "ok"
        case monitors:  # Erlang: {ok, Monitors} ->
            for pid, ref in monitors:
                erlang.send(pid, (ref, action, group, pids), ["noconnect"])
            return "ok"


def flush(ref: Ref) -> str:
    """Remove from the caller's mailbox every ``(ref, 'join' | 'leave', _, _)`` notification.

    Erlang: pg:flush/1
    """
    while True:  # Erlang: receive {Ref, Verb, _Group, _Pids} when ... -> flush(Ref) after 0 -> ok end
        msg = erlang.receive(_notification_of(ref), timeout=0)
        if msg is erlang.TIMEOUT:
            return "ok"


# == Python-only helpers ==============================================================


def _notification_of(ref: Ref) -> Any:
    """Return a receive predicate for the notifications of subscription ``ref``.

    Erlang: none (the pattern of flush/1's receive: {Ref, Verb, _Group, _Pids} when Verb =:= join; Verb =:= leave)
    """
    return lambda m: isinstance(m, tuple) and len(m) == 4 and m[0] == ref and m[1] in ("join", "leave")


def _delete(item: Any, items: list[Any]) -> list[Any]:
    """Return ``items`` without the first copy of ``item`` (a new list).

    Erlang: none (lists:delete/2)
    """
    return terms.subtract(items, [item])


def _this_module() -> Any:
    """Return this module, the scope processes' callback module (pg.erl passes ``?MODULE``).

    Erlang: none (the ?MODULE macro)
    """
    return sys.modules[__name__]


def _check_group(group: Any, where: str) -> None:
    """Refuse a group name that cannot be a key of the scope's maps.

    Erlang: none (any Erlang term can name a group)

    Checked in the caller, before the request is sent: inside the scope
    process an unhashable group would crash it, and with it every
    membership on this node.
    """
    # DIVERGENCE(D10): any Erlang term names a group; here a hashable term.
    try:
        hash(group)
    except TypeError:
        raise TypeError(f"{where}: a group name must be hashable, not {type(group).__name__}: {group!r}") from None
    if not terms.is_term(group):
        raise TypeError(f"{where}: a group name must be an Erlang term, not {type(group).__name__}: {group!r}")


def _function_clause(function: str, why: str) -> erlang.ErlangTypeError:
    """Build the error of a call that no clause of ``pg:function`` accepts.

    Erlang: none (the function_clause error the BEAM raises)
    """
    # DIVERGENCE(D34): function_clause, raised as a TypeError too
    return erlang.ErlangTypeError("function_clause", f"pg:{function}: {why}")


def _undef(name: str, args: tuple[Any, ...], arities: str) -> erlang.ErlangTypeError:
    """Build the error of a call with an arity pg.erl does not export.

    Erlang: none (the undef error of a call to pg:name/N that does not exist)
    """
    # DIVERGENCE(D34): undef, raised as a TypeError too
    return erlang.ErlangTypeError(
        "undef", f"pg:{name}/{len(args)} is not exported: pg.{name} takes {arities} arguments"
    )


def _expect(ok: bool, where: str, erlang_match: str, got: Any) -> None:
    """Crash like an Erlang strict match (``true = ...``) when ``ok`` is false.

    Erlang: none (stands for a badmatch in the function named by ``where``)
    """
    if not ok:
        raise erlang.ErlangError(("badmatch", got), f"{where}: {erlang_match} did not match {got!r}")
