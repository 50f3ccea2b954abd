"""What the translation does where a reader with the Erlang open would look twice.

Each test pins one behaviour of pg2.erl (OTP 18.3), global.erl or
gen_server.erl that the Python follows literally, or one listed divergence
(``Dn`` in TRANSLATION_NOTES.md) that it takes instead, and says which.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support import down_reason, recv, wait_until

from repg2 import erlang, ets, gen_server, global_, kernel, pg2
from repg2.erlang import ErlangError, ErlangTypeError, Pid
from repg2.testing import member_loop, sane

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def running_pg2(fresh_pg2: list[Pid]) -> None:
    """``fresh_pg2``, and pg2 started on this node from an empty table."""
    pg2.start()


def member() -> Pid:
    """Spawn a process that waits for ever, to be a group member."""
    return erlang.spawn(member_loop)


# == pg2:handle_call/3 matches any Pid, as pg2.erl does ==================================


@pytest.mark.usefixtures("fresh_kernel", "running_pg2")
def test_a_join_of_a_non_pid_sent_to_the_server_crashes_it_and_blocks_nobody() -> None:
    """handle_call({join, Name, NotAPid}) crashes pg2 in do_monitor: the caller sees a bad node, pg2 restarts."""
    assert pg2.create("g") == "ok"
    old = erlang.whereis("pg2")
    replies, bad = gen_server.multi_call([erlang.node()], "pg2", ("join", "g", "not_a_pid"))
    assert (replies, bad) == ([], [erlang.node()])
    wait_until(lambda: erlang.whereis("pg2") not in ("undefined", old), "kernel_safe_sup to restart pg2")
    new = erlang.whereis("pg2")
    assert isinstance(new, Pid) and new != old  # kernel_safe_sup restarted it, with an empty table
    assert pg2.which_groups() == []
    assert sane() == "ok"


@pytest.mark.usefixtures("fresh_kernel", "running_pg2")
def test_the_same_join_inside_pg2s_transaction_releases_the_group_lock() -> None:
    """The write path pg2:join/2 takes (trans + multi_call) with a non-pid returns, and the lock is free after."""
    assert pg2.create("g") == "ok"
    lock = (("pg2", "g"), erlang.self())
    result = global_.trans(lock, lambda: gen_server.multi_call("pg2", ("join", "g", "not_a_pid")))
    assert result == ([], [erlang.node()])
    assert global_.get_locks() == []


@pytest.mark.usefixtures("running_pg2")
def test_a_leave_of_a_non_pid_sent_to_the_server_is_a_no_op() -> None:
    """handle_call({leave, Name, NotAPid}): leave_group finds no member row and replies ok."""
    pid = member()
    assert pg2.create("g") == "ok" and pg2.join("g", pid) == "ok"
    assert gen_server.multi_call([erlang.node()], "pg2", ("leave", "g", "not_a_pid")) == ([(erlang.node(), "ok")], [])
    assert pg2.get_members("g") == [pid]


# == pg2:join/2 and leave/2 guard with is_pid (D34) ========================================


@pytest.mark.usefixtures("running_pg2")
@pytest.mark.parametrize("call", [pg2.join, pg2.leave])
def test_join_and_leave_of_a_non_pid_fail_with_function_clause(call: Any) -> None:
    """A non-pid fails the is_pid(Pid) guard: function_clause, raised as a TypeError too (D34)."""
    assert pg2.create("g") == "ok"
    with pytest.raises(ErlangTypeError) as info:
        call("g", "not_a_pid")
    assert info.value.reason == "function_clause" and isinstance(info.value, TypeError)
    assert pg2.get_members("g") == []


# == pg2:get_closest_pid/1 reads twice without a lock ======================================


@pytest.mark.usefixtures("running_pg2")
def test_get_closest_pid_crashes_with_badarg_when_the_group_goes_between_its_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No local member, then get_members finds the group deleted: length/1 of the error tuple is badarg."""
    assert pg2.create("g") == "ok"
    real_get_members = pg2.get_members

    def deleted_first(name: Any) -> Any:
        """A real delete, by another process, lands between get_closest_pid's two reads."""
        done = erlang.spawn(lambda: pg2.delete(name))
        down_reason(erlang.monitor("process", done))
        return real_get_members(name)

    monkeypatch.setattr(pg2, "get_members", deleted_first)
    with pytest.raises(ErlangError) as info:
        pg2.get_closest_pid("g")
    assert info.value.reason == "badarg"


# == Group names that ETS would read as patterns (D33) ====================================


@pytest.mark.usefixtures("running_pg2")
@pytest.mark.parametrize("name", ["_", "$1", "$0", ("room", "_"), ("a", ("b", "$3"))])
def test_names_that_match_patterns_would_read_as_wildcards_are_refused(name: Any) -> None:
    """'_' and '$N' are match wildcards/variables in pg2's ets:match patterns; such names are refused (D33)."""
    pid = member()
    assert pg2.create("real") == "ok" and pg2.join("real", pid) == "ok"
    for call in (pg2.create, pg2.delete, pg2.get_members, pg2.get_local_members, pg2.get_closest_pid):
        with pytest.raises(ValueError, match="wildcard or variable"):
            call(name)
    with pytest.raises(ValueError, match="wildcard or variable"):
        pg2.join(name, pid)
    assert pg2.which_groups() == ["real"]


def test_the_hazard_is_real_in_ets_itself() -> None:
    """Why D33 exists: a key holding '_' matches every row in that position (Erlang's ETS does the same)."""
    tab = ets.new("fidelity_hazard", ["ordered_set", "private"])
    ets.insert(tab, (("member", "real", "p1"), 1))
    assert ets.match(tab, (("member", "_", "$1"), "$2")) == [["p1", 1]]
    ets.delete(tab)


@pytest.mark.usefixtures("running_pg2")
@pytest.mark.parametrize("name", ["_x", "$", "$a", "a_b", ("room", "$x")])
def test_names_merely_containing_underscores_or_dollars_are_fine(name: Any) -> None:
    """Only the exact atoms '_' and '$<digits>' are special; other names work as any."""
    assert pg2.create(name) == "ok"
    assert pg2.get_members(name) == []


# == gen_server:multi_call keeps OTP's order and repetitions =================================


class Echo:
    """A gen_server that counts the calls it got and answers each with its count."""

    def init(self, args: Any) -> Any:
        return ("ok", 0)

    def handle_call(self, request: Any, from_: Any, count: int) -> Any:
        return ("reply", count + 1, count + 1)


@pytest.fixture
def echo() -> Iterator[str]:
    """Start the counting server as 'fidelity_echo'."""
    result = gen_server.start(("local", "fidelity_echo"), Echo(), [])
    assert result[0] == "ok"
    yield "fidelity_echo"
    gen_server.stop("fidelity_echo")


def test_multi_call_keeps_the_order_of_nodes_and_calls_a_repeated_node_twice(echo: str) -> None:
    """send_nodes/rec_nodes: replies and bad nodes in the order given; a node named twice answers twice."""
    me = erlang.node()
    replies, bad = gen_server.multi_call(["zz@nowhere", me, "aa@nowhere", me], echo, "count")
    assert bad == ["zz@nowhere", "aa@nowhere"]  # not sorted
    assert sorted(replies) == [(me, 1), (me, 2)]
    assert erlang.flush() == []


def test_multi_call_skips_entries_that_are_not_atoms(echo: str) -> None:
    """send_nodes skips a non-atom Node: it is neither called nor a bad node."""
    assert gen_server.multi_call([42, erlang.node(), ("x",)], echo, "count") == ([(erlang.node(), 1)], [])


def test_multi_call_with_a_non_list_or_a_non_atom_name_is_function_clause(echo: str) -> None:
    """multi_call/3's guard is_list(Nodes), is_atom(Name): function_clause, also a TypeError (D34)."""
    for args in (((erlang.node(),), echo, "count"), ([erlang.node()], 42, "count")):
        with pytest.raises(ErlangTypeError) as info:
            gen_server.multi_call(*args)
        assert info.value.reason == "function_clause"


# == global:trans/4 runs Fun() under the lock, whatever it is ================================


def test_trans_with_a_non_function_takes_the_lock_fails_with_badfun_and_releases_it() -> None:
    """global:trans/4: set_lock, then Fun() fails with {badfun, Fun}, and 'after' releases the lock."""
    kernel.boot()
    seen: list[Any] = []
    original = global_.set_lock

    def recording_set_lock(*args: Any) -> bool:
        got = original(*args)
        seen.append(("locked", got, [r.resource_id for r in global_.get_locks()]))
        return got

    try:
        global_.set_lock = recording_set_lock  # type: ignore[assignment]
        with pytest.raises(ErlangError) as info:
            global_.trans(("fidelity_res", "me"), "not a fun")  # type: ignore[arg-type]
    finally:
        global_.set_lock = original  # type: ignore[assignment]
    assert info.value.reason == ("badfun", "not a fun")
    assert seen == [("locked", True, ["fidelity_res"])]  # the lock was taken first
    assert global_.get_locks() == []  # and released on the way out


# == D3 and D6: what the Python does differently, on purpose ================================


def test_local_messages_are_passed_by_reference() -> None:
    """D3: a local message is the sent object itself, not a copy (a sender must not mutate it)."""
    payload = ["mutable"]
    erlang.send(erlang.self(), payload)
    assert recv() is payload


@pytest.mark.usefixtures("running_pg2")
def test_join_group_catches_only_ets_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """D6: pg2.erl's catch _:_ around update_counter; here a non-ETS exception is not swallowed."""
    pid = member()
    assert pg2.create("g") == "ok"

    def broken(*args: Any) -> Any:
        raise KeyError("a programming error, not ETS's badarg")

    monkeypatch.setattr(pg2.ets, "update_counter", broken)
    with pytest.raises(KeyError):
        pg2.join_group("g", pid)  # called directly: inside the server it would crash pg2
