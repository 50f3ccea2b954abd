"""pg2 on one node: RePG2's single-node suite, pg2_SUITE's single-node cases, and the API's edges.

Every step that changes pg2 is followed by ``sane()`` (pg2_SUITE's table
invariant). Waiting is done on conditions with a deadline or on a barrier
(``gen_server.get_state('pg2')`` returns once every earlier message to the
pg2 server has been handled), never on a fixed sleep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from support import barrier, down_reason, wait_until

from repg2 import erlang, ets, gen_server, pg2, supervisor
from repg2.testing import member_loop, sane

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("fresh_pg2")]


def wait_for_exit() -> None:
    """A member that ends normally when it receives 'exit' (RePG2's test process)."""
    erlang.receive(lambda m: m == "exit")


@pytest.fixture
def new(fresh_pg2: list[erlang.Pid]) -> Callable[..., erlang.Pid]:
    """Spawn a member process (by default pg2_SUITE's ``forever/0``); the fixture kills it after the test."""

    def spawn(fun: Callable[[], None] = member_loop) -> erlang.Pid:
        pid = erlang.spawn(fun)
        fresh_pg2.append(pid)
        return pid

    return spawn


def kill(pid: erlang.Pid) -> None:
    """Kill a process and wait until pg2 has seen its 'DOWN'."""
    ref = erlang.monitor("process", pid)
    erlang.exit(pid, "kill")
    down_reason(ref)
    barrier(pg2.SERVER)


# == RePG2's single-node suite (test/repg2_test.exs) ============================


def test_initial_state() -> None:
    """No groups at first (RePG2: "initial state")."""
    assert pg2.which_groups() == []
    sane()


def test_create_group() -> None:
    """create/1 makes a group which_groups/0 lists (RePG2: "create group")."""
    assert pg2.create("test_group") == "ok"
    assert pg2.which_groups() == ["test_group"]
    sane()


def test_delete_group() -> None:
    """delete/1 removes the group (RePG2: "delete group")."""
    pg2.create("test_group")
    assert pg2.delete("test_group") == "ok"
    assert pg2.which_groups() == []
    sane()


def test_join_group() -> None:
    """A joined process is a member, a local member and the closest pid (RePG2: "join group")."""
    assert pg2.create("test_group") == "ok"
    me = erlang.self()
    assert pg2.join("test_group", me) == "ok"
    assert pg2.get_members("test_group") == [me]
    assert pg2.get_local_members("test_group") == [me]
    assert pg2.get_closest_pid("test_group") == me
    sane()
    pg2.leave("test_group", me)


def test_leave_group() -> None:
    """After leave/2 the group is empty and has no closest pid (RePG2: "leave group")."""
    pg2.create("test_group")
    me = erlang.self()
    assert pg2.join("test_group", me) == "ok"
    assert pg2.get_closest_pid("test_group") == me
    assert pg2.leave("test_group", me) == "ok"
    assert pg2.get_members("test_group") == []
    assert pg2.get_local_members("test_group") == []
    assert pg2.get_closest_pid("test_group") == ("error", ("no_process", "test_group"))
    sane()


def test_get_closest_pid_returns_random_member(new: Callable[..., erlang.Pid]) -> None:
    """With several local members the choice is pg2's random index into them (RePG2: "get closest pid returns random member")."""
    assert pg2.get_closest_pid("test_group") == ("error", ("no_such_group", "test_group"))
    pg2.create("test_group")
    me, other = erlang.self(), new()
    assert pg2.join("test_group", me) == "ok"
    assert pg2.join("test_group", other) == "ok"
    members = pg2.get_local_members("test_group")
    assert members == sorted([me, other])
    try:
        picks = iter([0, 1, 1, 0])
        pg2.set_random_index(lambda n: next(picks))
        assert [pg2.get_closest_pid("test_group") for _ in range(4)] == [members[0], members[1], members[1], members[0]]
    finally:
        pg2.set_random_index(None)
    # pg2's own choice (clock microseconds modulo the count) always picks a local member.
    assert {pg2.get_closest_pid("test_group") for _ in range(50)} <= {me, other}
    pg2.leave("test_group", me)


def test_member_dies(new: Callable[..., erlang.Pid]) -> None:
    """A member that exits normally is removed through its monitor (RePG2: "member dies")."""
    pg2.create("test_group")
    other = new(wait_for_exit)
    assert pg2.join("test_group", other) == "ok"
    assert pg2.get_closest_pid("test_group") == other
    erlang.send(other, "exit")
    wait_until(lambda: pg2.get_closest_pid("test_group") == ("error", ("no_process", "test_group")))
    sane()


def test_worker_logs_unexpected_calls(caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected call is logged, gets no reply, and the server keeps serving (RePG2: "worker should log unexpected calls")."""
    pg2.start()
    with caplog.at_level(logging.WARNING, logger="repg2.pg2"):
        with pytest.raises(erlang.ExitError) as info:
            gen_server.call(pg2.SERVER, "unexpected_message", 0.2)
    assert info.value.reason[0] == "timeout"
    assert "The pg2 server received an unexpected message:\nhandle_call('unexpected_message'" in caplog.text
    assert pg2.create("still_serving") == "ok"
    assert erlang.flush() == []  # the late reply that never comes cannot linger either


# == pg2_SUITE's single-node cases ==============================================


def test_otp_7277(new: Callable[..., erlang.Pid]) -> None:
    """Leaving a group one is not in keeps the monitor, so a later death is still seen (pg2_SUITE: otp_7277)."""
    assert pg2.create("a") == "ok"
    assert pg2.create("b") == "ok"
    p = new()
    assert pg2.join("a", p) == "ok"
    assert pg2.leave("b", p) == "ok"
    sane()
    erlang.exit(p, "kill")
    wait_until(lambda: (pg2.get_members("a"), pg2.get_local_members("a")) == ([], []), "pg2 to see the member die")
    barrier(pg2.SERVER)
    sane()


def test_start_returns_ok_pid() -> None:
    """start/0 starts pg2 under kernel_safe_sup and returns {ok, Pid} (pg2:start/0, ensure_started/0)."""
    result = pg2.start()
    assert result[0] == "ok" and result[1] == erlang.whereis("pg2")
    assert pg2.start() == result
    children = supervisor.which_children("kernel_safe_sup")
    assert ("pg2", result[1], "worker", ["pg2"]) in children


def test_table_is_protected_ordered_set_owned_by_the_server() -> None:
    """pg2_table is a protected ordered_set owned by the pg2 server: any process reads, only pg2 writes."""
    pid = pg2.start()[1]
    assert ets.info(pg2.TABLE, "type") == "ordered_set"
    assert ets.info(pg2.TABLE, "protection") == "protected"
    assert ets.info(pg2.TABLE, "owner") == pid
    with pytest.raises(erlang.ErlangError) as info:
        ets.insert(pg2.TABLE, pg2.GroupRow(("group", "sneaky")))
    assert info.value.reason == "badarg"
    assert pg2.which_groups() == []


def test_rows_have_pg2_shapes(new: Callable[..., erlang.Pid]) -> None:
    """A join writes exactly pg2.erl's five row kinds besides the group row, with 1-based counters at positions 2 and 4."""
    pg2.create("g")
    p = new()
    pg2.join("g", p)
    pg2.join("g", p)
    rows = ets.tab2list(pg2.TABLE)
    shapes = sorted((r[0][0], len(r)) for r in rows)
    assert shapes == [("group", 1), ("local_member", 1), ("member", 2), ("pid", 1), ("ref", 2), ("ref", 4)]
    (member,) = [r for r in rows if r[0][0] == "member"]
    (ref,) = [r for r in rows if r[0][0] == "ref" and len(r) == 4]
    assert member == (("member", "g", p), 2) and member[pg2.MEMBER_COUNTER - 1] == 2
    assert ref[0] == ("ref", p) and ref[1] == p and ref[pg2.REF_COUNTER - 1] == 2
    assert isinstance(member, pg2.MemberRow) and member.counter == 2


def test_join_twice_needs_two_leaves(new: Callable[..., erlang.Pid]) -> None:
    """A pid that joined twice is listed twice and stays a member after one leave (pg2_SUITE basic t3)."""
    pg2.create("a")
    p = new()
    pg2.join("a", p)
    pg2.join("a", p)
    assert pg2.get_members("a") == [p, p]
    assert pg2.get_closest_pid("a") == p
    pg2.leave("a", p)
    assert pg2.get_members("a") == [p]
    pg2.leave("a", p)
    assert pg2.get_members("a") == []
    assert ets.tab2list(pg2.TABLE) == [pg2.GroupRow(("group", "a"))]
    sane()


def test_members_in_pid_order_with_duplicates_adjacent(new: Callable[..., erlang.Pid]) -> None:
    """get_members lists pids in term order, each repeated per join, whatever the join order."""
    pg2.create("g")
    p1, p2, p3 = new(), new(), new()
    for pid in (p3, p1, p2, p3):
        pg2.join("g", pid)
    assert pg2.get_members("g") == [p1, p2, p3, p3]
    sane()


def test_member_of_two_groups_is_monitored_once(new: Callable[..., erlang.Pid]) -> None:
    """One monitor serves every membership of a pid; its death removes them all."""
    pg2.create("a")
    pg2.create("b")
    p = new()
    pg2.join("a", p)
    pg2.join("b", p)
    pg2.join("b", p)
    refs = [r for r in ets.tab2list(pg2.TABLE) if r[0] == ("ref", p)]
    assert len(refs) == 1 and refs[0].counter == 3
    sane()
    kill(p)
    assert pg2.get_members("a") == [] and pg2.get_members("b") == []
    assert sorted(r[0][0] for r in ets.tab2list(pg2.TABLE)) == ["group", "group"]


def test_delete_removes_every_row_and_monitor(new: Callable[..., erlang.Pid]) -> None:
    """delete/1 of a group with members leaves no row and no monitor behind (pg2_SUITE basic t8)."""
    pg2.create("a")
    p1 = new()
    pg2.join("a", p1)
    pg2.join("a", p1)
    pg2.delete("a")
    assert pg2.get_members("a") == ("error", ("no_such_group", "a"))
    assert ets.tab2list(pg2.TABLE) == []
    kill(p1)  # no 'DOWN' reaches pg2: its monitor is gone (sane would crash pg2 otherwise)
    assert erlang.is_process_alive(erlang.whereis("pg2"))


def test_errors_for_missing_groups(new: Callable[..., erlang.Pid]) -> None:
    """Every API call on a group this node does not know answers no_such_group (pg2_SUITE basic t3)."""
    p = new()
    assert pg2.join("b", p) == ("error", ("no_such_group", "b"))
    assert pg2.leave("b", p) == ("error", ("no_such_group", "b"))
    assert pg2.get_members("c") == ("error", ("no_such_group", "c"))
    assert pg2.get_local_members("c") == ("error", ("no_such_group", "c"))
    assert pg2.get_closest_pid("c") == ("error", ("no_such_group", "c"))
    assert pg2.delete("never_created") == "ok"
    assert pg2.which_groups() == []


@pytest.mark.parametrize("bad", ["not a pid", 42, None, ("pid",)])
def test_join_and_leave_reject_non_pids(bad: object) -> None:
    """join/2 and leave/2 with a non-pid raise TypeError naming the function and change nothing (guard is_pid)."""
    pg2.create("g")
    before = ets.tab2list(pg2.TABLE)
    with pytest.raises(TypeError, match=r"pg2:join/2"):
        pg2.join("g", bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"pg2:leave/2"):
        pg2.leave("g", bad)  # type: ignore[arg-type]
    assert ets.tab2list(pg2.TABLE) == before


def test_unhashable_group_name_is_rejected() -> None:
    """A group name that cannot be a key raises TypeError and creates nothing (TRANSLATION_NOTES D10)."""
    with pytest.raises(TypeError, match=r"pg2:create/1"):
        pg2.create(["a", "list"])  # type: ignore[arg-type]
    assert pg2.which_groups() == []


def test_groups_of_mixed_term_types_sort_in_term_order() -> None:
    """which_groups lists names in Erlang term order: numbers < atoms < tuples."""
    for name in [("t", 1), "b", 2, "a", 1.5]:
        pg2.create(name)
    assert pg2.which_groups() == [1.5, 2, "a", "b", ("t", 1)]
    sane()


@pytest.mark.usefixtures("fresh_kernel")
def test_crashed_server_is_restarted_by_kernel_safe_sup() -> None:
    """A pg2 server that crashes is restarted by kernel_safe_sup with a fresh table."""
    first = pg2.start()[1]
    pg2.create("g")
    erlang.exit(first, "kill")
    wait_until(lambda: erlang.whereis("pg2") not in ("undefined", first))
    assert pg2.which_groups() == []  # alone, nobody can refill it
    sane()


def test_exchange_only_adds(new: Callable[..., erlang.Pid]) -> None:
    """An exchange adds what this node lacks (multiset difference) and removes nothing (pg2:store/1)."""
    pg2.create("g")
    p1, p2 = new(), new()
    pg2.join("g", p1)
    gen_server.cast(pg2.SERVER, ("exchange", "other@host", [["g", [p1, p1, p2]], ["h", []], ("bad", "shape")]))
    barrier(pg2.SERVER)
    assert pg2.get_members("g") == sorted([p1, p1, p2])
    assert pg2.which_groups() == ["g", "h"]
    gen_server.cast(pg2.SERVER, ("exchange", "other@host", [["g", []]]))
    barrier(pg2.SERVER)
    assert pg2.get_members("g") == sorted([p1, p1, p2])
    sane()


def test_del_member_and_unknown_messages_are_ignored(new: Callable[..., erlang.Pid]) -> None:
    """del_member casts, nodedown and stray messages change nothing (pg2:handle_cast/2, handle_info/2 catch-alls)."""
    pg2.create("g")
    p = new()
    pg2.join("g", p)
    gen_server.cast(pg2.SERVER, ("del_member", "g", p))
    erlang.send(pg2.SERVER, ("nodedown", "other@host"))
    erlang.send(pg2.SERVER, "garbage")
    barrier(pg2.SERVER)
    assert pg2.get_members("g") == [p]
    sane()


def test_reads_do_not_message_the_server(new: Callable[..., erlang.Pid]) -> None:
    """Reads run in the caller against the table: they answer while the pg2 server is suspended."""
    pg2.create("g")
    p = new()
    pg2.join("g", p)
    gen_server.suspend(pg2.SERVER)
    try:
        assert pg2.get_members("g") == [p]
        assert pg2.get_local_members("g") == [p]
        assert pg2.get_closest_pid("g") == p
        assert pg2.which_groups() == ["g"]
        assert pg2.create("g") == "ok"  # already known here: a create that sends nothing
        # A write needs the server: it waits in the server's mailbox.
        writer = erlang.spawn(pg2.join, "g", p)
        wait_until(lambda: erlang.message_queue_len(erlang.whereis("pg2")) == 1)
        assert pg2.get_members("g") == [p]
        assert erlang.is_process_alive(writer)
    finally:
        gen_server.resume(pg2.SERVER)
    wait_until(lambda: pg2.get_members("g") == [p, p])
    sane()


def test_member_in_group_of_a_non_member_is_empty(new: Callable[..., erlang.Pid]) -> None:
    """member_in_group/2 answers [] for a pid with no member row (pg2:member_in_group/2)."""
    pg2.create("g")
    assert pg2.member_in_group(new(), "g") == []


def test_strict_match_failure_is_a_badmatch() -> None:
    """A failed strict match (true = ...) raises ErlangError({badmatch, Got}) naming the clause."""
    with pytest.raises(erlang.ErlangError, match=r"pg2:terminate/2") as info:
        pg2._expect(False, "pg2:terminate/2", "true = ets:delete(pg2_table)", False)
    assert info.value.reason == ("badmatch", False)
