"""pg (repg2.pg): ports of OTP 25.2's pg_SUITE, on one node and on real nodes, and checks against real Erlang.

Each test names the ``pg_SUITE`` case it ports (``lib/kernel/test/pg_SUITE.erl``,
the version with the monitor cases). As in the suite, each case runs its own
scope, named after the case, so nothing carries over between cases. Barriers
are the suite's: ``sync`` (a ``sys`` call to a scope process), ``sync_via``
(the same from another node) and, after partitions and heals, a wait with a
deadline for the scopes to settle. Where the original runs here (``erl``),
the same steps run there too and the answers are compared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
from support import barrier, down_reason, recv, run_erl, tagged, wait_until

from repg2 import erlang, gen_server, kernel, pg, rpc, supervisor
from repg2.erlang import Pid, Ref
from repg2.testing import Cluster
from repg2.testing import pg_nodes as pn
from repg2.testing.nodefuns import wait_forever

# isolated_runtime: an empty mailbox, and every process a case spawned here
# (scope processes included) killed after it, so nothing carries over.
pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("isolated_runtime")]


# == Helpers: pg_SUITE's, and this process's bookkeeping ===============================


@pytest.fixture
def here() -> Iterator[Callable[[str], str]]:
    """Return ``start(scope)``: start a scope on this node (pg_SUITE's init_per_testcase); stopped after the test."""
    started: list[str] = []

    def start(scope: str) -> str:
        """Start ``scope`` here and remember to stop it."""
        pn.start_scope(scope)
        started.append(scope)
        return scope

    yield start
    for scope in started:
        pn.stop_scope(scope)


def forever() -> Pid:
    """Spawn a local process that waits for ever (pg_SUITE's ``forever()``); isolated_runtime kills it."""
    return erlang.spawn(wait_forever)


def sync(server: Any) -> None:
    """Return once ``server`` (a scope, or ``(scope, node)``) has handled all sent to it before (pg_SUITE's ``sync/1``)."""
    barrier(server)


def ensure_peers(cluster: Cluster, scope: str, nodes: list[str]) -> None:
    """Wait until the scope on each of ``nodes`` knows the scope on all the others (its overlay network).

    At a scope's start, each peer sends its ``sync`` before its
    ``discover``, so a scope that knows a peer has its members too.
    """
    wait_until(
        lambda: all(cluster.rpc(n, pn.known_peers, scope) == sorted(set(nodes) - {n}) for n in nodes),
        f"the scopes {scope!r} on {nodes} to know each other",
    )


def scoped_cluster(make: Callable[..., Cluster], here: Callable[[str], str], scope: str, n: int = 2) -> Cluster:
    """Start ``n`` nodes and ``scope`` on each (pg_SUITE's ``spawn_node``), and wait until the scopes know each other."""
    cluster = make(n)
    here(scope)
    for node in cluster.nodes[1:]:
        cluster.rpc(node, pn.start_scope, scope)
    ensure_peers(cluster, scope, cluster.nodes)
    return cluster


class Pair(NamedTuple):
    """Two nodes running one scope that know each other: what most of pg_SUITE's two-node cases start from."""

    cluster: Cluster
    scope: str
    a: str  # this node
    b: str  # the peer


@pytest.fixture
def pair(cluster: Callable[..., Cluster], here: Callable[[str], str], request: pytest.FixtureRequest) -> Pair:
    """This node and a peer, the scope named after the test on both, as pg_SUITE names it after the case (?FUNCTION_NAME)."""
    scope = request.node.originalname.removeprefix("test_")
    c = scoped_cluster(cluster, here, scope)
    a, b = c.nodes
    return Pair(c, scope, a, b)


def joined_before_the_peer(make: Callable[..., Cluster], here: Callable[[str], str], scope: str) -> tuple[Cluster, Pid]:
    """Start ``scope`` here, join a local process to the group named after it, then start the scope on a peer.

    pg_SUITE's initial and double begin so: the peer's scope learns the
    member from our sync, which answers its discover.
    """
    cluster = make(2)
    here(scope)
    pid = forever()
    assert pg.join(scope, scope, pid) == "ok"
    assert pg.get_local_members(scope, scope) == [pid]
    cluster.rpc(cluster.nodes[1], pn.start_scope, scope)  # the peer's scope starts: discover, then our sync
    ensure_peers(cluster, scope, cluster.nodes)
    return cluster, pid


def wait_message(ref: Ref, action: str, group: Any, pids: list[Pid]) -> None:
    """Receive the notification ``(ref, action, group, pids)``, failing after a deadline (pg_SUITE's ``wait_message``)."""
    expected = (ref, action, group, pids)
    recv(lambda m: m == expected, f"the notification {expected!r}")


def members(cluster: Cluster, node: str, scope: str, group: Any) -> list[Pid]:
    """``pg:get_members(Scope, Group)`` read on ``node``."""
    result: list[Pid] = cluster.rpc(node, pg.get_members, scope, group)
    return result


# == Single node: pg_SUITE's basic group ==================================================


def test_pg_default_scope_started_as_the_kernel_starts_it() -> None:
    """The default scope 'pg', started under kernel_safe_sup with OTP's kernel child spec, serves the one-scope API (pg_SUITE: pg)."""
    kernel.boot()
    spec = ("pg", (pg.start_link, []), "permanent", 1.0, "worker", ["pg"])  # kernel:start_pg/0 when start_pg is true
    started = supervisor.start_child(kernel.SAFE_SUP, spec)
    assert started[0] == "ok", started
    try:
        assert erlang.whereis("pg") != "undefined"
        me = erlang.self()
        assert pg.join("pg", me) == "ok"
        assert pg.get_local_members("pg") == [me]
        assert pg.which_groups() == ["pg"]
        assert pg.which_local_groups() == ["pg"]
        assert pg.leave("pg", me) == "ok"
        assert pg.get_members("pg") == []
        assert pg.which_groups("pg") == []
        assert pg.which_local_groups("pg") == []
        # permanent: a crashed scope is started again, with an empty table
        old = erlang.whereis("pg")
        assert isinstance(old, Pid)
        pn.stop_proc(old)
        sync(kernel.SAFE_SUP)  # the supervisor has handled the child's exit, so restarted it
        restarted = erlang.whereis("pg")
        assert isinstance(restarted, Pid) and restarted != old
    finally:
        supervisor.terminate_child(kernel.SAFE_SUP, "pg")
        supervisor.delete_child(kernel.SAFE_SUP, "pg")


def test_errors_crash_the_scope_process(here: Callable[[str], str]) -> None:
    """Unknown info, cast and call messages crash the scope process with badarg (pg_SUITE: errors)."""
    with pytest.raises(erlang.ErlangError) as info:
        pg.handle_info("garbage", "garbage")  # type: ignore[arg-type]
    assert info.value.reason == "badarg"
    with pytest.raises(erlang.ErlangError) as cast:
        pg.handle_cast("garbage", "garbage")  # type: ignore[arg-type]
    assert cast.value.reason == "badarg"
    here("second")
    with pytest.raises(erlang.ExitError) as call:
        gen_server.call("second", "garbage", "infinity")
    reason, _where = call.value.reason
    assert isinstance(reason, erlang.ErlangError) and reason.reason == "badarg"  # D4: the exception is the reason
    assert erlang.whereis("second") == "undefined"


def test_leave_exit_race(here: Callable[[str], str]) -> None:
    """A join and a leave of a process that has already exited leave the scope alive and the group empty (pg_SUITE: leave_exit_race)."""
    scope = here("leave_exit_race")
    for _ in range(100):
        pid = erlang.spawn(lambda: None)
        assert pg.join(scope, "test", pid) == "ok"
        # 'not_joined' when the 'DOWN' was handled first: either is right
        assert pg.leave(scope, "test", pid) in ("ok", "not_joined")
    sync(scope)
    assert pg.get_members(scope, "test") == []


def test_single(here: Callable[[str], str]) -> None:
    """Joins once per call and per list element, not_joined, leaves by list, and a member's exit (pg_SUITE: single)."""
    scope = here("single")
    me = erlang.self()
    assert pg.join(scope, scope, me) == "ok"
    assert pg.join(scope, scope, [me, me]) == "ok"
    assert pg.get_local_members(scope, scope) == [me, me, me]
    assert pg.get_members(scope, scope) == [me, me, me]
    assert pg.leave(scope, "$missing$", me) == "not_joined"
    assert pg.leave(scope, scope, [me, me]) == "ok"
    assert pg.leave(scope, scope, me) == "ok"
    assert pg.which_groups(scope) == []
    assert pg.get_local_members(scope, scope) == []
    assert pg.get_members(scope, scope) == []
    # double
    assert pg.join(scope, scope, me) == "ok"
    pid = forever()
    assert pg.join(scope, scope, pid) == "ok"
    assert sorted(pg.get_members(scope, scope)) == sorted([pid, me])
    assert sorted(pg.get_local_members(scope, scope)) == sorted([pid, me])
    pn.stop_proc(pid)
    sync(scope)
    assert pg.get_local_members(scope, scope) == [me]
    assert pg.leave(scope, scope, me) == "ok"


def test_dyn_distribution(here: Callable[[str], str]) -> None:
    """A nodeup naming this very node (distribution started late) is not taken for a peer (pg_SUITE: dyn_distribution)."""
    scope = here("dyn_distribution")
    erlang.send(scope, ("nodeup", erlang.node()))
    me = erlang.self()
    assert pg.join(scope, scope, me) == "ok"
    assert pg.get_members(scope, scope) == [me]
    assert gen_server.get_state(scope).remote == {}


def watched_scope(here: Callable[[str], str], name: str) -> tuple[str, Ref]:
    """Start the scope ``name`` here and monitor its process: the two cases below crash it."""
    scope = here(name)
    scope_pid = erlang.whereis(scope)
    assert isinstance(scope_pid, Pid)
    return scope, erlang.monitor("process", scope_pid)


def test_monitor_self_crashes_the_25_scope(here: Callable[[str], str]) -> None:
    """A process that monitors a group and joins it crashes an OTP 25.2.3 scope when it exits: case_clause (pg_SUITE: monitor_self, GH-7625, fixed in OTP 26)."""
    scope, watch = watched_scope(here, "monitor_self")

    def monitor_and_join() -> None:
        """Both subscribe to the group and join it, then end normally."""
        pg.monitor(scope, scope)
        pg.join(scope, scope, erlang.self())

    pid, mref = erlang.spawn_monitor(monitor_and_join)
    assert down_reason(mref) == "normal"
    crash = down_reason(watch)
    assert isinstance(crash, erlang.ErlangError) and crash.reason[0] == "case_clause"
    (join_monitor, groups), _rest = crash.reason[1]
    assert isinstance(join_monitor, Ref) and groups == [scope]


def test_multi_monitor_crashes_the_25_scope(here: Callable[[str], str]) -> None:
    """A process with two group subscriptions, a scope subscription and two joins gets its four notifications, and its exit crashes an OTP 25.2.3 scope (pg_SUITE: multi_monitor)."""
    scope, watch = watched_scope(here, "multi_monitor")

    def subscribe_and_join() -> None:
        """Subscribe three times, join two groups, and check the four notifications."""
        me = erlang.self()
        ref_one, none_one = pg.monitor(scope, "one")
        ref_two, none_two = pg.monitor(scope, "two")
        ref_scope, _groups = pg.monitor_scope(scope)
        assert none_one == none_two == []
        assert pg.join(scope, "one", me) == "ok"
        assert pg.join(scope, "two", me) == "ok"
        sync(scope)
        for ref, group in [(ref_one, "one"), (ref_scope, "one"), (ref_two, "two"), (ref_scope, "two")]:
            wait_message(ref, "join", group, [me])

    pid, mref = erlang.spawn_monitor(subscribe_and_join)
    assert down_reason(mref) == "normal"
    crash = down_reason(watch)
    assert isinstance(crash, erlang.ErlangError) and crash.reason[0] == "case_clause"


def test_a_future_discover_crashes_the_25_scope(here: Callable[[str], str]) -> None:
    """OTP 25.2.3 does not know the 3-tuple discover that OTP 26 accepts 'for a future pg': its scope crashes with badarg (pg_SUITE: protocol_upgrade, as 25.2.3 answers it)."""
    scope = here("protocol_upgrade")
    scope_pid = erlang.whereis(scope)
    assert isinstance(scope_pid, Pid)
    watch = erlang.monitor("process", scope_pid)
    erlang.send(scope, ("discover", erlang.self(), "Protocol version (ignore me)"))
    crash = down_reason(watch)
    assert isinstance(crash, erlang.ErlangError) and crash.reason == "badarg"


def test_the_messages_a_peer_gets_are_pg_erls_tuples(here: Callable[[str], str]) -> None:
    """A peer's discover gets a sync cast and, from a stranger, a discover back; then joins, leaves and exits come as pg.erl's tuples."""
    scope = here("wire")
    scope_pid = erlang.whereis(scope)
    member = forever()
    assert pg.join(scope, "g", member) == "ok"
    me = erlang.self()  # WHITE BOX: this process plays a peer scope process
    erlang.send(scope, ("discover", me))
    assert recv(what="the sync") == ("$gen_cast", ("sync", scope_pid, [("g", [member])]))
    assert recv(what="the discover back") == ("discover", scope_pid)
    erlang.send(scope, ("discover", me))  # a known peer: a sync only
    assert recv(what="the sync") == ("$gen_cast", ("sync", scope_pid, [("g", [member])]))
    other = forever()
    assert pg.join(scope, "h", [other, member]) == "ok"
    assert pg.leave(scope, "g", member) == "ok"
    pn.stop_proc(member)
    sync(scope)
    assert erlang.flush() == [
        ("join", scope_pid, "h", [other, member]),
        ("leave", scope_pid, member, ["g"]),
        ("leave", scope_pid, member, ["h"]),
    ]
    erlang.send(scope, ("join", me, "from_peer", [other]))  # the peer's own announcements are accepted now
    sync(scope)
    assert pg.get_members(scope, "from_peer") == [other] and pg.get_local_members(scope, "from_peer") == []


def test_monitor_scope_without_subscription_and_demonitor_twice(here: Callable[[str], str]) -> None:
    """demonitor of a reference that is no subscription answers false; a second demonitor too (pg_SUITE: monitor_scope, its first step)."""
    scope = here("monitor_scope_single")
    assert pg.demonitor(scope, erlang.make_ref()) is False
    ref, groups = pg.monitor_scope(scope)
    assert groups == {}
    assert pg.join(scope, "g", erlang.self()) == "ok"
    assert pg.demonitor(scope, ref) == "ok"  # also flushes the join notification already queued
    assert erlang.flush() == []
    assert pg.demonitor(scope, ref) is False


# == The API's Python shape: arities, guards, group names (D10, D34) ====================


def test_arities_map_to_erlangs_functions(here: Callable[[str], str]) -> None:
    """Each API name takes the arities pg.erl exports; the short form is the default scope 'pg'; others are undef."""
    scope = here("arities")
    me = erlang.self()
    assert pg.join(scope, "g", me) == "ok"
    assert pg.get_members(scope, "g") == [me]
    assert pg.get_members("g") == []  # the default scope 'pg' is not running: no table, no members
    with pytest.raises(erlang.ExitError) as noproc:
        pg.join("g", me)  # join/2 is join('pg', ...): the default scope is not running
    assert noproc.value.reason[0] == "noproc"
    with pytest.raises(TypeError) as undef:
        pg.join(scope, "g", me, "extra")  # type: ignore[call-overload]
    assert isinstance(undef.value, erlang.ErlangTypeError) and undef.value.reason == "undef"
    with pytest.raises(erlang.ErlangTypeError, match="which_groups/1"):
        pg.which_groups(42)  # type: ignore[arg-type]


def test_guards_fail_with_function_clause_and_nolocal(here: Callable[[str], str]) -> None:
    """A non-pid non-list is function_clause (D34, also a TypeError); a list with a non-pid is {nolocal, _}; a non-atom scope is function_clause."""
    scope = here("guards")
    with pytest.raises(TypeError) as clause:
        pg.join(scope, scope, "undefined")  # type: ignore[call-overload]
    assert isinstance(clause.value, erlang.ErlangTypeError) and clause.value.reason == "function_clause"
    with pytest.raises(erlang.ErlangError) as nolocal:
        pg.join(scope, scope, ["undefined"])  # type: ignore[list-item]
    assert nolocal.value.reason == ("nolocal", "undefined") and not isinstance(nolocal.value, TypeError)
    for bad_start in (pg.start, pg.start_link):
        with pytest.raises(erlang.ErlangTypeError) as scope_clause:
            bad_start(("not", "an atom"))  # type: ignore[arg-type]
        assert scope_clause.value.reason == "function_clause"
    assert pg.get_members(scope, scope) == []


def test_unhashable_group_names_are_refused_before_the_call(here: Callable[[str], str]) -> None:
    """A group name that is not a hashable term is a TypeError in the caller, and the scope process lives on (D10)."""
    scope = here("unhashable")
    me = erlang.self()
    for bad in (["a", "list"], ("a", ["nested"]), object()):
        with pytest.raises(TypeError, match="pg:join/3"):
            pg.join(scope, bad, me)
        with pytest.raises(TypeError, match="pg:leave/3"):
            pg.leave(scope, bad, me)
        with pytest.raises(TypeError, match="pg:monitor/2"):
            pg.monitor(scope, bad)
    assert pg.get_members(scope, ["a", "list"]) == []  # reads take any term, as ets:lookup_element does
    assert pg.join(scope, ("a", "tuple"), me) == "ok"
    assert pg.which_groups(scope) == [("a", "tuple")]


def test_get_state_shows_the_live_maps(here: Callable[[str], str]) -> None:
    """sys:get_state of a scope returns its live maps: a later join shows in a record read before (D?)."""
    scope = here("live_state")
    state = gen_server.get_state(scope)
    assert state.local == {}
    me = erlang.self()
    assert pg.join(scope, "g", me) == "ok"
    assert list(state.local) == [me]


def test_a_local_members_exit_is_one_leave_per_group_for_subscribers(here: Callable[[str], str]) -> None:
    """When a member of two groups exits, a scope subscriber is told one leave per group, in the member's order of groups (newest first)."""
    scope = here("exit_leaves")
    pid = forever()
    ref, _groups = pg.monitor_scope(scope)
    assert pg.join(scope, "first", pid) == "ok"
    assert pg.join(scope, "second", pid) == "ok"
    pn.stop_proc(pid)
    sync(scope)
    notes = erlang.flush(lambda m: isinstance(m, tuple) and m[:1] == (ref,))
    assert notes == [
        (ref, "join", "first", [pid]),
        (ref, "join", "second", [pid]),
        (ref, "leave", "second", [pid]),
        (ref, "leave", "first", [pid]),
    ]
    assert pg.which_groups(scope) == []


# == Against real Erlang =================================================================


def render(term: Any) -> str:
    """Write a term as Erlang's ``io:format("~w")`` does (atoms, integers, lists, tuples)."""
    if isinstance(term, bool):
        return "true" if term else "false"
    if isinstance(term, str):
        bare = term[:1].islower() and all(c.isalnum() or c in "_@" for c in term)
        return term if bare else "'" + term.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(term, int):
        return str(term)
    if isinstance(term, list):
        return "[" + ",".join(render(t) for t in term) + "]"
    if isinstance(term, tuple):
        return "{" + ",".join(render(t) for t in term) + "}"
    raise TypeError(f"cannot render {term!r}")


def erl_result(script: str) -> str:
    """Run Erlang expressions that bind ``R`` on a fresh ``erl`` node; return ``R`` as ``~w`` prints it.

    The logger is silenced, so that crash reports of scope processes do not
    mix with the answer, which is printed after a marker.
    """
    out = run_erl("logger:set_primary_config(level, none), " + script + ' io:format("RESULT ~w~n", [R])')
    found = [line.removeprefix("RESULT ") for line in out.splitlines() if line.startswith("RESULT ")]
    assert len(found) == 1, out
    return found[0]


# The same steps on both sides: four processes P1..P4 (printed as 1..4),
# joins, leaves, reads and a scope subscription's notifications.
SINGLE_NODE_STEPS = """
    {ok, _} = pg:start(s),
    Ps = [spawn(fun () -> receive stop -> ok end end) || _ <- [1, 2, 3, 4]],
    [P1, P2, P3, P4] = Ps,
    Ix = fun (L) -> [length(lists:takewhile(fun (Q) -> Q =/= P end, Ps)) + 1 || P <- L] end,
    {Ref, #{}} = pg:monitor_scope(s),
    R = [pg:join(s, g, P1), pg:join(s, g, P2), pg:join(s, g, [P3, P4]),
         Ix(pg:get_members(s, g)), pg:leave(s, h, P1), pg:leave(s, g, [P2, P3]),
         Ix(pg:get_members(s, g)), pg:join(s, g2, [P1, P1]), pg:join(s, g2, P3),
         lists:sort(pg:which_groups(s)), lists:sort(pg:which_local_groups(s)),
         pg:leave(s, g2, P1), Ix(pg:get_members(s, g2)), Ix(pg:get_local_members(s, g2)),
         pg:leave(s, g2, [P1, P3]), pg:get_members(s, g2), pg:get_members(s, nosuch),
         [{A, G, Ix(L)} || {_, A, G, L} <- lists:reverse(lists:foldl(fun (_, Acc) ->
             receive {Ref, _, _, _} = M -> [M | Acc] after 0 -> Acc end end, [], lists:seq(1, 20)))],
         pg:demonitor(s, Ref), pg:demonitor(s, Ref)],
"""


def single_node_steps_here() -> list[Any]:
    """Run SINGLE_NODE_STEPS on this node, with the same names, returning the same list."""
    s = "s_differential"
    pn.start_scope(s)
    try:
        ps = [erlang.spawn(wait_forever) for _ in range(4)]
        p1, p2, p3, p4 = ps

        def ix(pids: list[Pid]) -> list[int]:
            """Number each pid by its place in ps (1..4)."""
            return [ps.index(p) + 1 for p in pids]

        ref, groups = pg.monitor_scope(s)
        assert groups == {}
        results: list[Any] = [
            pg.join(s, "g", p1),
            pg.join(s, "g", p2),
            pg.join(s, "g", [p3, p4]),
            ix(pg.get_members(s, "g")),
            pg.leave(s, "h", p1),
            pg.leave(s, "g", [p2, p3]),
            ix(pg.get_members(s, "g")),
            pg.join(s, "g2", [p1, p1]),
            pg.join(s, "g2", p3),
            sorted(pg.which_groups(s)),
            sorted(pg.which_local_groups(s)),
            pg.leave(s, "g2", p1),
            ix(pg.get_members(s, "g2")),
            ix(pg.get_local_members(s, "g2")),
            pg.leave(s, "g2", [p1, p3]),
            pg.get_members(s, "g2"),
            pg.get_members(s, "nosuch"),
        ]
        notes = erlang.flush(lambda m: isinstance(m, tuple) and m[:1] == (ref,))
        results.append([(action, group, ix(pids)) for _ref, action, group, pids in notes])
        results += [pg.demonitor(s, ref), pg.demonitor(s, ref)]
        for pid in ps:
            erlang.exit(pid, "kill")
        return results
    finally:
        pn.stop_scope(s)


def test_single_node_answers_match_real_erlang() -> None:
    """Joins, leaves, reads, member order and a subscriber's notifications answer as OTP 25's pg does, step by step."""
    erlang_said = erl_result(SINGLE_NODE_STEPS)
    assert render(single_node_steps_here()) == erlang_said


def test_the_25_crashes_match_real_erlang() -> None:
    """monitor_self, multi_monitor and a future discover crash a real OTP 25.2.3 scope with the reasons ours gives."""
    script = """
        Crash = fun (Scope, Steps) ->
            {ok, P} = pg:start(Scope), M = monitor(process, P),
            {_, W} = spawn_monitor(Steps), receive {'DOWN', W, _, _, _} -> ok end,
            receive {'DOWN', M, process, P, {R, _}} when is_atom(R) -> R;
                    {'DOWN', M, process, P, {{R, _}, _}} -> R after 5000 -> alive end
        end,
        A = Crash(a, fun () -> pg:monitor(a, a), pg:join(a, a, self()) end),
        B = Crash(b, fun () -> pg:monitor(b, one), pg:monitor(b, two), pg:monitor_scope(b),
                               pg:join(b, one, self()), pg:join(b, two, self()) end),
        C = Crash(c, fun () -> c ! {discover, self(), "Protocol version (ignore me)"} end),
        R = [A, B, C],
    """
    assert erl_result(script) == "[case_clause,case_clause,badarg]"


# == Real nodes: pg_SUITE's cluster group ===============================================


@pytest.mark.distributed
def test_process_owner_check(cluster: Callable[..., Cluster], here: Callable[[str], str]) -> None:
    """Remote pids cannot join here, alone or in a list; a non-pid is function_clause, a list with one {nolocal, _} (pg_SUITE: process_owner_check)."""
    c = scoped_cluster(cluster, here, "process_owner_check")
    a, b = c.nodes
    scope = "process_owner_check"
    local_pid = forever()
    remote_pid = c.spawn(b, wait_forever)
    for bad in (remote_pid, [remote_pid, remote_pid], [local_pid, remote_pid]):
        with pytest.raises(erlang.ErlangError) as nolocal:
            pg.join(scope, scope, bad)
        assert nolocal.value.reason == ("nolocal", remote_pid)
    with pytest.raises(erlang.ErlangTypeError) as clause:
        pg.join(scope, scope, "undefined")  # type: ignore[call-overload]
    assert clause.value.reason == "function_clause"
    with pytest.raises(erlang.ErlangError) as listed:
        pg.join(scope, scope, ["undefined"])  # type: ignore[list-item]
    assert listed.value.reason == ("nolocal", "undefined")
    assert pg.get_members(scope, scope) == []


@pytest.mark.distributed
def test_overlay_missing(pair: Pair) -> None:
    """Joins and leaves from a scope process outside the overlay network change nothing (pg_SUITE: overlay_missing)."""
    c, scope, a, b = pair
    me = erlang.self()
    assert pg.join(scope, "group", me) == "ok"
    pg_pid = c.rpc(b, erlang.whereis, scope)
    remote_pid = c.spawn(b, wait_forever)
    gen_server.stop(pg_pid)  # stop the remote scope: our scope forgets it at its 'DOWN'
    erlang.send(scope, ("join", pg_pid, "group", remote_pid))  # white box: a crafted join
    sync(scope)
    assert pg.get_members(scope, "group") == [me]
    erlang.send(scope, ("leave", pg_pid, remote_pid, ["group"]))
    sync(scope)
    assert pg.get_members(scope, "group") == [me]


@pytest.mark.distributed
def test_two(pair: Pair) -> None:
    """A local join reaches the peer, a local exit leaves there too, remote joins arrive here, and a stopped peer takes its members along (pg_SUITE: two)."""
    c, scope, a, b = pair
    pid = forever()
    assert pg.join(scope, scope, pid) == "ok"
    assert pg.get_local_members(scope, scope) == [pid]
    sync((scope, b))  # our join message went first on the same connection
    assert members(c, b, scope, scope) == [pid]
    assert c.rpc(b, pg.get_local_members, scope, scope) == []
    pn.stop_proc(pid)
    sync(scope)  # our scope handled the 'DOWN' and sent the leave
    sync((scope, b))
    assert pg.get_local_members(scope, scope) == []
    assert members(c, b, scope, scope) == []
    pid2, pid3 = c.spawn(b, wait_forever), c.spawn(b, wait_forever)
    assert c.rpc(b, pg.join, scope, scope, pid2) == "ok"
    assert c.rpc(b, pg.join, scope, scope, pid3) == "ok"
    c.rpc(b, pn.sync_via, scope, a)  # serialise through the *other* node
    assert sorted(pg.get_members(scope, scope)) == sorted([pid2, pid3])
    c.stop(b)
    wait_until(lambda: pg.get_members(scope, scope) == [], "the stopped peer's members to go")


@pytest.mark.distributed
def test_empty_group_by_remote_leave(pair: Pair) -> None:
    """A group the peer empties by leaves disappears from our map of its groups, whatever the leave order (pg_SUITE: empty_group_by_remote_leave)."""
    c, scope, a, b = pair
    remote_scope = c.rpc(b, erlang.whereis, scope)
    remote_pid = c.spawn(b, wait_forever)

    def remote_map() -> Any:
        """Our map of the peer's groups (white box, as the suite reads it)."""
        return gen_server.get_state(scope).remote[remote_scope][1]

    assert c.rpc(b, pg.join, scope, scope, remote_pid) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    assert pg.get_members(scope, scope) == [remote_pid]
    assert remote_map() == {scope: [remote_pid]}
    assert c.rpc(b, pg.leave, scope, scope, remote_pid) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    assert pg.get_members(scope, scope) == []
    assert remote_map() == {}  # the empty group is deleted
    # another variant: join([P1, P2]), then leave([P2, P1])
    remote_pid2 = c.spawn(b, wait_forever)
    assert c.rpc(b, pg.join, scope, scope, [remote_pid, remote_pid2]) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    assert pg.get_members(scope, scope) == [remote_pid, remote_pid2]
    assert c.rpc(b, pg.leave, scope, scope, [remote_pid2, remote_pid]) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    assert pg.get_members(scope, scope) == []
    assert remote_map() == {}


@pytest.mark.distributed
def test_thundering_herd(cluster: Callable[..., Cluster], here: Callable[[str], str]) -> None:
    """With 10000 local groups, 2000 syncs from a peer are each cheap, and a join after them is answered (pg_SUITE: thundering_herd)."""
    scope = "thundering_herd"
    c = cluster(2)
    a, b = c.nodes
    here(scope)
    me = erlang.self()
    for seq in range(1, 10001):
        pg.join(scope, ("group", seq), me)
    c.rpc(b, pn.start_scope, scope)
    ensure_peers(c, scope, c.nodes)
    c.rpc(b, pn.sync_via, scope, a)  # the peer's own sync is in: nothing of it comes after ours
    peer_pid = c.spawn(b, wait_forever)
    peer_pg = c.rpc(b, erlang.whereis, scope)
    fake_sync = [(("group", 1), [peer_pid, peer_pid])]  # white box
    for _ in range(2000):
        gen_server.cast(scope, ("sync", peer_pg, fake_sync))
    assert pg.join(scope, scope, me) == "ok"  # the original's timetrap: this must not wait for ever
    assert pg.get_members(scope, ("group", 1)) == [peer_pid, peer_pid, me]
    assert len(pg.which_groups(scope)) == 10001


@pytest.mark.distributed
def test_initial(cluster: Callable[..., Cluster], here: Callable[[str], str]) -> None:
    """A scope that starts on a peer learns the members we had before it started, and their exit (pg_SUITE: initial)."""
    scope = "initial"
    c, pid = joined_before_the_peer(cluster, here, scope)
    _a, b = c.nodes
    assert members(c, b, scope, scope) == [pid]
    assert c.rpc(b, pg.get_local_members, scope, scope) == []
    pn.stop_proc(pid)
    sync(scope)
    sync((scope, b))
    assert members(c, b, scope, scope) == []


@pytest.mark.distributed
def test_netsplit(pair: Pair) -> None:
    """Joins and leaves made on each side of a partition are what each side sees after the heal (pg_SUITE: netsplit)."""
    c, scope, a, b = pair
    remote_old = c.spawn(b, wait_forever)
    assert c.rpc(b, pg.join, scope, "$invisible", remote_old) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    assert pg.get_members(scope, "$invisible") == [remote_old]
    c.partition([a], [b])  # hohoho, partition!
    assert c.rpc(b, erlang.node) == b  # the control channel still works
    remote_pid = c.spawn(b, wait_forever)
    assert c.rpc(b, erlang.nodes) == [] and b not in erlang.nodes()
    assert c.rpc(b, pg.join, scope, scope, remote_pid) == "ok"  # join - in a partition!
    assert c.rpc(b, pg.leave, scope, "$invisible", remote_old) == "ok"
    assert c.rpc(b, pg.join, scope, "$visible", remote_old) == "ok"
    assert c.rpc(b, pg.get_local_members, scope, "$visible") == [remote_old]
    local_pid = forever()  # join locally too
    assert pg.join(scope, scope, local_pid) == "ok"
    wait_until(lambda: pg.get_members(scope, "$invisible") == [], "the peer's members to go at its 'DOWN'")
    c.heal()
    wait_until(
        lambda: (
            sorted(members(c, b, scope, scope)) == sorted([remote_pid, local_pid])
            and pg.get_members(scope, "$visible") == [remote_old]
        ),
        "the sync after the heal",
    )
    assert pg.get_members(scope, "$invisible") == []


@pytest.mark.distributed
def test_trisplit(pair: Pair) -> None:
    """A node that joins the cluster after a disconnect and a reconnect sees the join made in between (pg_SUITE: trisplit)."""
    c, scope, a, b = pair
    c.spawn(b, wait_forever)
    peer_pid2 = c.spawn(b, wait_forever)
    assert c.rpc(b, pg.join, scope, "three", peer_pid2) == "ok"
    c.partition([a], [b])
    c.heal()
    assert c.rpc(b, pg.join, scope, "one", peer_pid2) == "ok"
    c3 = c.add()  # a second peer, connected to both
    c.rpc(c3, pn.start_scope, scope)
    assert sorted(c.rpc(c3, erlang.nodes)) == sorted([a, b])
    ensure_peers(c, scope, [a, b, c3])
    assert members(c, c3, scope, "one") == [peer_pid2]
    assert members(c, c3, scope, "three") == [peer_pid2]


@pytest.mark.distributed
def test_foursplit(pair: Pair) -> None:
    """Leaves, not_joined and a remote death during a partition leave both sides agreeing after the heal (pg_SUITE: foursplit)."""
    c, scope, a, b = pair
    pid = forever()
    assert pg.join(scope, "one", pid) == "ok"
    assert pg.join(scope, "two", pid) == "ok"
    peer_pid1 = c.spawn(b, wait_forever)
    assert pg.leave(scope, "one", pid) == "ok"
    assert pg.leave(scope, "three", pid) == "not_joined"
    c.partition([a], [b])
    assert c.rpc(b, pn.stop_proc, peer_pid1) == "ok"
    assert pg.leave(scope, "three", pid) == "not_joined"
    c.heal()
    assert pg.get_members(scope, "one") == []
    assert members(c, b, scope, "one") == []
    wait_until(lambda: members(c, b, scope, "two") == [pid], "the sync after the heal")


@pytest.mark.distributed
def test_exchange(cluster: Callable[..., Cluster], here: Callable[[str], str]) -> None:
    """Members joined on two peers while cut off from us arrive by sync at the heal; later leaves arrive as leaves (pg_SUITE: exchange)."""
    scope = "exchange"
    c = scoped_cluster(cluster, here, scope, 3)
    a, b, d = c.nodes
    pids10 = [c.spawn(b, wait_forever) for _ in range(10)]
    pids2 = [c.spawn(d, wait_forever) for _ in range(10)]
    pids11 = [c.spawn(b, wait_forever) for _ in range(10)]
    to_kill, pids1 = pids10[:3], pids10[3:]  # kill the first 3 pids of node b
    assert c.rpc(b, pg.join, scope, scope, pids10) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    assert sorted(pg.get_members(scope, scope)) == sorted(pids10)
    for pid in to_kill:
        c.rpc(b, pn.stop_proc, pid)
    c.rpc(b, pn.sync_via, scope, a)
    assert sorted(pg.get_members(scope, scope)) == sorted(pids1)
    everyone = sorted(pids1 + pids2 + pids11)
    c.partition([a], [b, d])
    wait_until(lambda: pg.get_members(scope, scope) == [], "the cut-off peers' members to go")
    for pid in pids2:
        assert c.rpc(d, pg.join, scope, scope, pid) == "ok"
    for pid in pids11:
        assert c.rpc(b, pg.join, scope, "second", pid) == "ok"
    assert c.rpc(b, pg.join, scope, "third", pids11) == "ok"
    c.heal()  # rejoin
    wait_until(
        lambda: (
            sorted(pg.get_members(scope, "second") + pg.get_members(scope, scope)) == everyone
            and sorted(pg.get_members(scope, "third")) == sorted(pids11)
        ),
        "both peers' syncs",
    )
    left, stay = pids11[:3], pids11[3:]
    assert c.rpc(b, pg.leave, scope, "third", left) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    assert sorted(pg.get_members(scope, "third")) == sorted(stay)
    assert c.rpc(b, pg.leave, scope, "left", stay) == "not_joined"
    assert c.rpc(b, pg.leave, scope, "third", stay) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    assert pg.get_members(scope, "third") == []


@pytest.mark.distributed
def test_nolocal(pair: Pair) -> None:
    """A remote member joined twice is a member here twice, and never a local one (pg_SUITE: nolocal)."""
    c, scope, a, b = pair
    remote_pid = c.spawn(b, wait_forever)
    assert c.rpc(b, pg.join, scope, scope, remote_pid) == "ok"
    assert c.rpc(b, pg.join, scope, scope, remote_pid) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    assert pg.get_local_members(scope, scope) == []
    assert pg.get_members(scope, scope) == [remote_pid, remote_pid]


@pytest.mark.distributed
def test_double(cluster: Callable[..., Cluster], here: Callable[[str], str]) -> None:
    """A process joined before the peer's scope started and once after is a member twice there too (pg_SUITE: double)."""
    scope = "double"
    c, pid = joined_before_the_peer(cluster, here, scope)
    _a, b = c.nodes
    assert pg.join(scope, scope, [pid]) == "ok"
    assert pg.get_members(scope, scope) == [pid, pid]
    sync((scope, b))
    assert members(c, b, scope, scope) == [pid, pid]


@pytest.mark.distributed
def test_scope_restart(pair: Pair) -> None:
    """A restarted scope gets the peer's members back by sync, and has lost its own (pg_SUITE: scope_restart)."""
    c, scope, a, b = pair
    pid = forever()
    assert pg.join(scope, scope, [pid, pid]) == "ok"
    remote_pid = c.spawn(b, wait_forever)
    assert c.rpc(b, pg.join, scope, scope, remote_pid) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    assert sorted(pg.get_members(scope, scope)) == sorted([remote_pid, pid, pid])
    gen_server.stop(scope)  # stop the scope locally, and restart it
    pn.start_scope(scope)
    sync(scope)  # our new scope's discover went out in its init
    sync((scope, b))  # the peer answered it with its sync, on the same connection as this reply
    sync(scope)
    assert pg.get_members(scope, scope) == [remote_pid]


@pytest.mark.distributed
def test_missing_scope_join(cluster: Callable[..., Cluster]) -> None:
    """join and leave through a scope that is not running exit with noproc: {badrpc, {'EXIT', {noproc, _}}} (pg_SUITE: missing_scope_join)."""
    scope = "missing_scope_join"
    c = cluster(2)
    a, b = c.nodes
    c.rpc(b, pn.start_scope, scope)
    assert c.rpc(b, gen_server.stop, scope) == "ok"
    remote_pid = c.spawn(b, wait_forever)
    for fun in (pg.join, pg.leave):
        answer = rpc.call(b, fun, [scope, scope, remote_pid])
        assert answer[:1] == ("badrpc",) and answer[1][0] == "EXIT" and answer[1][1][0] == "noproc", answer


@pytest.mark.distributed
def test_disconnected_start(cluster: Callable[..., Cluster]) -> None:
    """A scope starts, stops and starts again on a node connected to nobody (pg_SUITE: disconnected_start)."""
    scope = "disconnected_start"
    c = cluster(2)
    a, b = c.nodes
    c.partition([a], [b])
    assert b not in erlang.nodes() and c.rpc(b, erlang.nodes) == []
    assert isinstance(c.rpc(b, pn.start_scope, scope), Pid)
    assert c.rpc(b, gen_server.stop, scope) == "ok"
    assert c.rpc(b, pg.start, scope)[0] == "ok"
    assert c.rpc(b, gen_server.stop, scope) == "ok"
    assert isinstance(c.spawn(b, wait_forever), Pid)


@pytest.mark.distributed
def test_forced_sync(pair: Pair) -> None:
    """A broken sync replaces, adds and keeps groups as handle_sync says; a discover makes the peer send the truth again (pg_SUITE: forced_sync)."""
    c, scope, a, b = pair
    pid = forever()
    remote_pid = c.spawn(b, wait_forever)
    expected = sorted([pid, remote_pid])
    assert pg.join(scope, "one", pid) == "ok"
    assert c.rpc(b, pg.join, scope, "one", remote_pid) == "ok"
    remote_scope_pid = c.rpc(b, erlang.whereis, scope)
    assert isinstance(remote_scope_pid, Pid)
    c.partition([a], [b])  # hohoho, partition!
    c.heal()
    wait_until(lambda: sorted(pg.get_members(scope, "one")) == expected, "the sync after the heal")
    # every sync the heal set off has been handled: ours, the peer's, ours again
    sync(scope)
    sync((scope, b))
    c.rpc(b, pn.sync_via, scope, a)
    # WHITE BOX, as in the suite: a broken sync. 'one' gets a second copy of the
    # remote pid, the group named after the scope appears.
    fake_groups = [("one", [remote_pid, remote_pid]), (scope, [remote_pid, remote_pid])]
    gen_server.cast(scope, ("sync", remote_scope_pid, fake_groups))
    sync(scope)
    assert pg.get_members(scope, scope) == [remote_pid, remote_pid]
    assert sorted(pg.get_members(scope, "one")) == sorted([remote_pid, remote_pid, pid])
    # force a sync with a discover: the peer answers with the truth
    erlang.send((scope, b), ("discover", erlang.whereis(scope)))
    sync((scope, b))
    sync(scope)
    assert sorted(pg.get_members(scope, "one")) == expected
    assert pg.get_members(scope, scope) == []
    # and one more
    sync((scope, b))
    sync(scope)
    assert sorted(pg.get_members(scope, "one")) == expected


@pytest.mark.distributed
def test_group_leave(pair: Pair) -> None:
    """A remote pid joined 16 times in one call and left 4 times stays 12 times, and goes with its node (pg_SUITE: group_leave)."""
    c, scope, a, b = pair
    remote_pid = c.spawn(b, wait_forever)
    total = [remote_pid] * 16
    left, remain = total[:4], total[4:]
    assert c.rpc(b, pg.join, scope, "two", total) == "ok"  # join 16 times!
    assert c.rpc(b, pg.leave, scope, "two", left) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    assert pg.get_members(scope, "two") == remain
    c.stop(b)
    wait_until(lambda: pg.get_members(scope, "two") == [], "the stopped peer's members to go")


# == Real nodes: pg_SUITE's monitor group ===============================================


@pytest.mark.distributed
def test_monitor_nonempty_scope(pair: Pair) -> None:
    """monitor_scope returns every group with all its members, local and remote (pg_SUITE: monitor_nonempty_scope)."""
    c, scope, a, b = pair
    pid = forever()
    remote_pid = c.spawn(b, wait_forever)
    assert pg.join(scope, "one", pid) == "ok"
    assert c.rpc(b, pg.join, scope, "one", remote_pid) == "ok"
    c.rpc(b, pn.sync_via, scope, a)
    ref, full_scope = pg.monitor_scope(scope)
    assert sorted(full_scope["one"]) == sorted([pid, remote_pid])
    assert len(full_scope) == 1  # no extra groups in the scope
    assert pg.demonitor(scope, ref) == "ok"
    _ref, again = pg.monitor_scope(scope)
    assert again == full_scope


def monitor_test_impl(
    cluster: Callable[..., Cluster],
    here: Callable[[str], str],
    scope: str,
    group: Any,
    kind: str,
    check_down: Callable[[pg.State, Ref, Pid], None],
) -> None:
    """Subscribe, join and leave here and on a peer, with a local and a remote second subscriber (pg_SUITE: monitor_test_impl)."""
    me = erlang.self()
    here(scope)
    if kind == "scope":
        ref, groups = pg.monitor_scope(scope)
        assert groups == {}
    else:
        ref, pids = pg.monitor(scope, group)
        assert pids == []
    assert pg.join(scope, group, me) == "ok"  # local join
    wait_message(ref, "join", group, [me])
    # a second subscriber here, which starts with one local member
    extra = erlang.spawn(pn.second_monitor, scope, group, me, kind)
    ref2 = recv(tagged(extra), "the local second subscriber's reference")[1]
    # a peer, and a third subscriber there, subscribed to our scope process
    c = cluster(2)
    a, b = c.nodes
    c.rpc(b, pn.start_scope, scope)
    ensure_peers(c, scope, c.nodes)
    third = c.spawn(b, pn.second_monitor, erlang.whereis(scope), group, me, kind)
    ref3 = recv(tagged(third), "the remote subscriber's reference")[1]
    remote_pid = c.spawn(b, wait_forever)
    assert c.rpc(b, pg.join, scope, group, [remote_pid, remote_pid]) == "ok"  # remote join
    wait_message(ref, "join", group, [remote_pid, remote_pid])
    assert pg.get_local_members(scope, group) == [me]  # the leave event
    assert pg.leave(scope, group, me) == "ok"
    wait_message(ref, "leave", group, [me])
    assert c.rpc(b, pg.leave, scope, group, remote_pid) == "ok"  # remote leave
    c.rpc(b, pn.sync_via, scope, a)  # our scope has sent its notifications
    wait_message(ref, "leave", group, [remote_pid])
    expected = [("join", group, [remote_pid, remote_pid]), ("leave", group, [me]), ("leave", group, [remote_pid])]
    assert gen_server.call(extra, "flush") == [(ref2, *e) for e in expected], "local subscriber"
    assert gen_server.call(third, "flush") == [(ref3, *e) for e in expected], "remote subscriber"
    c.stop(b)  # the remote leave by stop (the remote subscriber goes down too)
    wait_message(ref, "leave", group, [remote_pid])
    wait_until(
        lambda: len(gen_server.get_state(scope).scope_monitors) + len(gen_server.get_state(scope).group_monitors) == 1,
        "the gone subscribers to be dropped",
    )
    check_down(gen_server.get_state(scope), ref, me)
    assert pg.demonitor(scope, ref) == "ok"
    assert pg.demonitor(scope, ref) is False
    assert pg.join(scope, group, me) == "ok"  # no notification any more
    sync(scope)
    assert erlang.flush(lambda m: isinstance(m, tuple) and m[:1] == (ref,)) == []


@pytest.mark.distributed
def test_monitor_scope(cluster: Callable[..., Cluster], here: Callable[[str], str]) -> None:
    """monitor_scope/1 and demonitor/2 with local, second local and remote subscribers (pg_SUITE: monitor_scope)."""
    scope = "monitor_scope"
    assert erlang.whereis(scope) == "undefined"

    def only_the_first_stays(state: pg.State, ref: Ref, me: Pid) -> None:
        """WHITE BOX: only the original scope subscription is left."""
        assert state.scope_monitors == {ref: me}, "pg did not remove DOWNed scope monitor"

    monitor_test_impl(cluster, here, scope, scope, "scope", only_the_first_stays)


@pytest.mark.distributed
def test_monitor(cluster: Callable[..., Cluster], here: Callable[[str], str]) -> None:
    """monitor/2 and demonitor/2 of one group with local, second local and remote subscribers (pg_SUITE: monitor)."""
    group = ("monitor", 1)

    def only_the_first_stays(state: pg.State, ref: Ref, me: Pid) -> None:
        """WHITE BOX: only the original group subscription is left, in both maps."""
        assert state.group_monitors == {ref: (me, group)}, "pg did not remove DOWNed group monitor"
        assert state.monitored_groups == {group: [(me, ref)]}, "pg did not remove DOWNed group"

    monitor_test_impl(cluster, here, "monitor", group, "group", only_the_first_stays)


# == The remaining clauses: arities, strangers, races and crashes that pg.erl keeps ====


def test_every_name_refuses_the_arities_pg_erl_does_not_export(here: Callable[[str], str]) -> None:
    """A call with an arity pg.erl does not export is undef (D34, also a TypeError); a non-atom scope is function_clause."""
    scope = here("undef_arities")
    me = erlang.self()
    calls: list[Callable[[], Any]] = [
        lambda: pg.start_link(scope, "extra"),  # type: ignore[call-overload]
        lambda: pg.leave(scope),  # type: ignore[call-overload]
        lambda: pg.monitor_scope(scope, "extra"),  # type: ignore[call-overload]
        lambda: pg.monitor(),  # type: ignore[call-overload]
        lambda: pg.demonitor(),  # type: ignore[call-overload]
        lambda: pg.get_members(),  # type: ignore[call-overload]
        lambda: pg.get_local_members(scope, "g", "extra"),  # type: ignore[call-overload]
        lambda: pg.which_groups(scope, "extra"),  # type: ignore[call-overload]
        lambda: pg.which_local_groups(scope, "extra"),  # type: ignore[call-overload]
    ]
    for call in calls:
        with pytest.raises(erlang.ErlangTypeError, match="is not exported") as undef:
            call()
        assert undef.value.reason == "undef"
    with pytest.raises(erlang.ErlangTypeError, match="which_local_groups/1") as clause:
        pg.which_local_groups(42)  # type: ignore[arg-type]
    assert clause.value.reason == "function_clause"
    with pytest.raises(erlang.ErlangTypeError, match="leave/3") as clause:
        pg.leave(scope, "g", "not a pid")  # type: ignore[call-overload]
    assert clause.value.reason == "function_clause"
    with pytest.raises(erlang.ErlangError, match="is not \\[Scope\\]") as init_clause:
        pg.init([])
    assert init_clause.value.reason == "function_clause"
    assert pg.join(scope, "g", me) == "ok"  # the scope served on throughout


def test_the_short_forms_of_monitor_and_demonitor_use_the_default_scope(here: Callable[[str], str]) -> None:
    """monitor_scope/0, monitor/1 and demonitor/1 are the scope 'pg''s, as pg.erl's short forms are."""
    here("pg")
    me = erlang.self()
    scope_ref, groups = pg.monitor_scope()
    group_ref, members = pg.monitor("g")
    assert (groups, members) == ({}, [])
    assert pg.join("g", me) == "ok"
    wait_message(scope_ref, "join", "g", [me])
    wait_message(group_ref, "join", "g", [me])
    assert pg.demonitor(scope_ref) == "ok"
    assert pg.demonitor(group_ref) == "ok"
    assert pg.demonitor(group_ref) is False


def test_joins_and_leaves_from_a_stranger_are_ignored(here: Callable[[str], str]) -> None:
    """join and leave from a process that is no known peer change nothing (pg.erl: a flickering node, a forgotten peer)."""
    scope = here("stranger")
    member = forever()
    erlang.send(scope, ("join", erlang.self(), "g", [member]))
    erlang.send(scope, ("leave", erlang.self(), member, ["g"]))
    sync(scope)
    assert pg.get_members(scope, "g") == []
    assert gen_server.get_state(scope).remote == {}


def test_a_known_peers_syncs_replace_what_it_announced_before(here: Callable[[str], str]) -> None:
    """handle_sync from a known peer: a changed group's row has its old pids replaced, a vanished group leaves."""
    scope = here("resync")
    me = erlang.self()  # WHITE BOX: this process plays a peer scope process
    p1, p2, p3 = forever(), forever(), forever()
    erlang.send(scope, ("discover", me))
    sync(scope)
    erlang.flush()  # the sync and the discover back
    gen_server.cast(scope, ("sync", me, [("g", [p1]), ("h", [p2])]))
    gen_server.cast(scope, ("sync", me, [("g", [p1]), ("h", [p3])]))  # g unchanged, h changed
    sync(scope)
    assert (pg.get_members(scope, "g"), pg.get_members(scope, "h")) == ([p1], [p3])
    gen_server.cast(scope, ("sync", me, [("h", [p3])]))  # g is gone from the peer
    sync(scope)
    assert (pg.which_groups(scope), pg.get_members(scope, "g")) == (["h"], [])


def test_a_peers_leave_of_pids_it_never_announced_removes_the_others(here: Callable[[str], str]) -> None:
    """A peer's leave of a list, some of which never joined, removes those that did (Erlang's --) from row and map."""
    scope = here("partial_leave")
    me = erlang.self()  # WHITE BOX: this process plays a peer scope process
    p1, p2, never = forever(), forever(), forever()
    erlang.send(scope, ("discover", me))
    erlang.send(scope, ("join", me, "g", [p1, p2]))
    erlang.send(scope, ("leave", me, [p1, never], ["g"]))
    sync(scope)
    assert pg.get_members(scope, "g") == [p2]
    assert gen_server.get_state(scope).remote[me][1] == {"g": [p2]}


@pytest.mark.parametrize("leaving", ["pid", "list"])
def test_a_peers_leave_of_a_group_it_never_announced_crashes_the_scope(
    here: Callable[[str], str], leaving: str
) -> None:
    """pg:leave_remote/3 reads the group with maps:get/2: a peer's leave of an unknown group crashes the scope with {badkey, Group}."""
    scope = here(f"badkey_{leaving}")
    scope_pid = erlang.whereis(scope)
    assert isinstance(scope_pid, Pid)
    watch = erlang.monitor("process", scope_pid)
    me = erlang.self()  # WHITE BOX: this process plays a peer scope process
    member = forever()
    erlang.send(scope, ("discover", me))
    erlang.send(scope, ("leave", me, member if leaving == "pid" else [member], ["never_joined"]))
    crash = down_reason(watch)
    assert isinstance(crash, erlang.ErlangError) and crash.reason == ("badkey", "never_joined")


def test_a_down_that_is_no_members_and_no_subscribers_is_dropped(here: Callable[[str], str]) -> None:
    """A 'DOWN' for a local process that is neither member nor subscriber finds nothing to drop; the scope serves on."""
    scope = here("stray_down")
    erlang.send(scope, ("DOWN", erlang.make_ref(), "process", forever(), "normal"))
    sync(scope)
    assert pg.join(scope, "g", erlang.self()) == "ok"


def test_a_peers_down_with_another_monitor_is_a_case_clause() -> None:
    """pg:handle_info/2: a 'DOWN' from a known peer under another monitor reference matches no clause: case_clause."""
    peer = Pid("peer@127.0.0.1", 40, 1)
    state = pg.State("no_table", {}, {peer: (erlang.make_ref(), {})}, {}, {}, {})
    with pytest.raises(erlang.ErlangError) as crash:
        pg.handle_info(("DOWN", erlang.make_ref(), "process", peer, "noconnection"), state)
    assert crash.value.reason[0] == "case_clause"


def test_race_paths_of_the_local_functions(here: Callable[[str], str]) -> None:
    """A local leave from a group without a row changes nothing (the 'DOWN'/leave race); the no-clause cases crash."""
    scope = here("races")
    me = erlang.self()
    pg.leave_local_update_ets(scope, {}, {}, "absent", me)
    pg.leave_local_update_ets(scope, {}, {}, "absent", [me])
    assert pg.which_groups(scope) == []
    with pytest.raises(erlang.ErlangError) as clause:
        pg.leave_local("not a pid", "g", {})  # type: ignore[arg-type]
    assert clause.value.reason == "function_clause"
    with pytest.raises(erlang.ErlangError) as no_group:
        pg.demonitor_group((me, erlang.make_ref()), "g", {})
    assert no_group.value.reason == ("case_clause", "error")
