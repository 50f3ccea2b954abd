"""global's locks: set_lock, del_lock, trans and the global_name_server, on one node and on a cluster.

The single-node tests come first: they pin the lock table's semantics (who
is granted, who shares, what releases) by reading ``global_locks``
directly. The distributed tests run real nodes through ``repg2.testing.cluster``:
mutual exclusion under contention, release by a holder's death or its
node's loss, and gen_server's multi_call/abcast facts the locks stand on.

Waiting is on conditions with a deadline, on replies, or on a barrier
(``gen_server.get_state('global_name_server')`` returns once the server has
handled every earlier message), never on a fixed sleep. The random back-off
between attempts is replaced (``global_.set_random_sleep``) by a counting
hook or a scaled-down sleep, so no test waits whole seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import DEADLINE, barrier, down_reason, is_down, recv, tagged, wait_until

from repg2 import erlang, ets, gen_server, global_
from repg2.erlang import Pid
from repg2.global_ import Lock, LockHolder
from repg2.testing import Cluster, locks
from repg2.testing.locks import holder

pytestmark = pytest.mark.timeout(60)

SERVER = global_.SERVER


# == Helpers =====================================================================


def rows() -> list[Lock]:
    """This node's global_locks rows."""
    return global_.get_locks()


def pid_ids() -> list[tuple[Any, Any]]:
    """This node's global_pid_ids rows, in a stable order."""
    return sorted(ets.tab2list(global_.PID_IDS), key=repr)


@pytest.fixture
def fresh_global() -> Iterator[list[Pid]]:
    """Give a test a fresh global_name_server and kill the processes it spawned."""
    locks.stop_global()
    locks.start_global()
    old_sleep = global_.set_random_sleep(None)
    spawned: list[Pid] = []
    yield spawned
    for pid in spawned:
        erlang.exit(pid, "kill")
    global_.set_random_sleep(old_sleep)
    locks.stop_global()
    locks.start_global()  # leave the node as the kernel booted it


@pytest.fixture
def spawn(fresh_global: list[Pid]) -> Callable[..., Pid]:
    """Spawn a process that the fixture kills after the test."""

    def start(fun: Callable[..., None], *args: Any) -> Pid:
        pid = erlang.spawn(fun, *args)
        fresh_global.append(pid)
        return pid

    return start


# == One node ======================================================================


@pytest.mark.usefixtures("fresh_global")
def test_set_lock_grants_a_free_lock_and_monitors_the_holder() -> None:
    """A free resource is granted; the row names the requester, the holder and the monitor."""
    me = erlang.self()
    assert global_.set_lock(("res", "req")) is True
    [row] = rows()
    assert row.resource_id == "res" and row.lock_requester_id == "req"
    [entry] = row.pid_refs
    assert isinstance(entry, LockHolder) and entry.pid == me and entry.rpid == me
    assert pid_ids() == sorted([(me, "res"), (entry.ref, "res")], key=repr)
    assert global_.is_lock_set("res")
    assert global_.del_lock(("res", "req")) is True
    assert rows() == [] and pid_ids() == []
    assert not global_.is_lock_set("res")


@pytest.mark.usefixtures("fresh_global")
def test_lock_table_is_a_protected_named_set_owned_by_the_server() -> None:
    """global_locks is global.erl's table: a protected named set the server owns (readable, not writable, here)."""
    assert ets.info(global_.LOCKS, "type") == "set"
    assert ets.info(global_.LOCKS, "protection") == "protected"
    assert ets.info(global_.LOCKS, "owner") == erlang.whereis(SERVER)
    assert ets.info(global_.PID_IDS, "type") == "bag"
    with pytest.raises(erlang.ErlangError):
        ets.insert(global_.LOCKS, Lock("res", "req", []))


@pytest.mark.usefixtures("fresh_global")
def test_same_pid_again_is_granted_and_not_counted() -> None:
    """Re-entrance: the holder asking again is granted, with no second entry; one del_lock frees it."""
    assert global_.set_lock(("res", "req"))
    assert global_.set_lock(("res", "req"))
    [row] = rows()
    assert len(row.pid_refs) == 1
    global_.del_lock(("res", "req"))
    assert rows() == []


def test_same_requester_two_pids_share_and_each_releases(spawn: Callable[..., Pid]) -> None:
    """Two processes with the same requester id both hold the lock; the row goes with the last release."""
    me = erlang.self()
    a = spawn(holder, me, ("res", "shared"), None)
    assert recv(tagged("locked", a))[2] is True
    b = spawn(holder, me, ("res", "shared"), None)
    assert recv(tagged("locked", b))[2] is True
    [row] = rows()
    assert [h.pid for h in row.pid_refs] == [b, a]  # newest first, as global prepends
    erlang.send(a, "release")
    recv(tagged("released", a))
    [row] = rows()
    assert [h.pid for h in row.pid_refs] == [b]
    assert (a, "res") not in pid_ids()
    erlang.send(b, "release")
    recv(tagged("released", b))
    assert rows() == [] and pid_ids() == []


def test_other_requester_is_refused(spawn: Callable[..., Pid]) -> None:
    """A held resource refuses another requester id: set_lock with retries=0 is False, trans is 'aborted'."""
    me = erlang.self()
    a = spawn(holder, me, ("res", "a"), None)
    assert recv(tagged("locked", a))[2] is True
    assert global_.set_lock(("res", "b"), retries=0) is False
    ran: list[bool] = []
    assert global_.trans(("res", "b"), lambda: ran.append(True), retries=0) == "aborted"
    assert ran == []
    [row] = rows()
    assert row.lock_requester_id == "a" and [h.pid for h in row.pid_refs] == [a]
    erlang.send(a, "release")
    recv(tagged("released", a))
    assert global_.trans(("res", "b"), lambda: "done", retries=0) == "done"


def test_holder_death_releases_the_lock(spawn: Callable[..., Pid]) -> None:
    """The server monitors holders: a holder that dies loses its lock, and a waiter gets it."""
    global_.set_random_sleep(lambda s: erlang.sleep(s / 100))
    me = erlang.self()
    a = spawn(holder, me, ("res", "a"), None)
    assert recv(tagged("locked", a))[2] is True
    b = spawn(holder, me, ("res", "b"), None)  # waits: infinite retries
    erlang.exit(a, "kill")
    assert recv(tagged("locked", b))[2] is True
    [row] = rows()
    assert row.lock_requester_id == "b" and [h.pid for h in row.pid_refs] == [b]
    erlang.exit(b, "kill")
    wait_until(lambda: rows() == [] and pid_ids() == [], "the lock table to empty")


def test_shared_lock_survives_one_holder_death(spawn: Callable[..., Pid]) -> None:
    """With two holders of one requester id, a death removes only that holder (remove_lock's second clause)."""
    me = erlang.self()
    a = spawn(holder, me, ("res", "shared"), None)
    b = spawn(holder, me, ("res", "shared"), None)
    recv(tagged("locked", a))
    recv(tagged("locked", b))
    erlang.exit(a, "kill")
    wait_until(lambda: [h.pid for r in rows() for h in r.pid_refs] == [b], "b to be the only holder")
    assert all(entry[0] != a for entry in pid_ids())


def test_del_lock_by_a_non_holder_is_a_no_op(spawn: Callable[..., Pid]) -> None:
    """del_lock from a process that does not hold the lock, or with another requester id, changes nothing."""
    me = erlang.self()
    a = spawn(holder, me, ("res", "a"), None)
    recv(tagged("locked", a))
    before = (rows(), pid_ids())
    assert global_.del_lock(("res", "a")) is True  # same requester id, but not a holder
    assert global_.del_lock(("res", "zzz")) is True  # another requester id
    assert global_.del_lock(("nothing", "a")) is True  # no such resource
    barrier(SERVER)
    assert (rows(), pid_ids()) == before


@pytest.mark.usefixtures("fresh_global")
def test_trans_returns_the_value_and_releases() -> None:
    """trans runs the fun holding the lock and returns its value; the lock is gone afterwards."""
    seen: list[list[Lock]] = []

    def body() -> str:
        seen.append(rows())
        return "value"

    assert global_.trans(("res", "req"), body) == "value"
    assert [r.resource_id for r in seen[0]] == ["res"]
    assert rows() == []


@pytest.mark.usefixtures("fresh_global")
def test_trans_releases_when_the_fun_raises() -> None:
    """trans releases the lock in an ``after`` (finally): the exception propagates, the lock does not stay."""

    def body() -> None:
        assert rows() != []
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        global_.trans(("res", "req"), body)
    assert rows() == []


@pytest.mark.usefixtures("fresh_global")
def test_nested_trans_releases_at_the_inner_end() -> None:
    """Locks are not counted: the inner trans of the same id releases the lock the outer one still runs under."""

    def inner() -> list[Lock]:
        return rows()

    def outer() -> tuple[list[Lock], list[Lock]]:
        during = global_.trans(("res", "req"), inner)
        return during, rows()

    during, after_inner = global_.trans(("res", "req"), outer)
    assert len(during) == 1 and after_inner == []


def test_retries_n_makes_n_plus_one_attempts(spawn: Callable[..., Pid], monkeypatch: pytest.MonkeyPatch) -> None:
    """retries=N means N+1 attempts and N random sleeps, each no longer than Tmax of its round."""
    me = erlang.self()
    a = spawn(holder, me, ("res", "a"), None)
    recv(tagged("locked", a))
    attempts: list[int] = []
    real = global_.set_lock_on_nodes

    def counting(lock_id: Any, nodes: list[str]) -> bool:
        attempts.append(1)
        return real(lock_id, nodes)

    monkeypatch.setattr(global_, "set_lock_on_nodes", counting)
    slept: list[float] = []
    global_.set_random_sleep(slept.append)
    for n in (0, 1, 3, 7):
        attempts.clear()
        slept.clear()
        assert global_.set_lock(("res", "b"), retries=n) is False
        assert len(attempts) == n + 1
        assert len(slept) == n
        for times, seconds in enumerate(slept, start=1):
            assert 0.001 <= seconds <= global_.tmax(times) / 1000
    assert global_.trans(("res", "b"), lambda: None, retries=2) == "aborted"


def test_tmax_doubles_from_a_quarter_second_to_eight_seconds() -> None:
    """random_sleep's bound: 250 ms, doubling each round, 8000 ms from the sixth round on."""
    assert [global_.tmax(t) for t in range(1, 9)] == [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]


def test_random_sleep_draws_whole_milliseconds_within_bounds() -> None:
    """random_sleep draws a whole number of milliseconds in 1..Tmax and hands it to the sleep as seconds."""
    slept: list[float] = []
    old = global_.set_random_sleep(slept.append)
    try:
        for _ in range(200):
            global_.random_sleep(1)
    finally:
        global_.set_random_sleep(old)
    assert all(0.001 <= s <= 0.25 for s in slept)
    assert all(abs(s * 1000 - round(s * 1000)) < 1e-9 for s in slept)
    assert len(set(slept)) > 1


@pytest.mark.usefixtures("fresh_global")
def test_without_a_hook_random_sleep_uses_erlang_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a hook random_sleep sleeps with erlang.sleep (Erlang's receive after T), which exit signals interrupt."""
    slept: list[float] = []
    monkeypatch.setattr(global_.erlang, "sleep", slept.append)
    global_.random_sleep(3)
    assert len(slept) == 1 and 0.001 <= slept[0] <= 1.0


@pytest.mark.usefixtures("fresh_global")
@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("res",), "lock id"),
        ((("res", "req", "extra"),), "lock id"),
        ((["res", "req"],), "lock id"),
        (((object(), "req"),), "terms"),
        ((("res", "req"), "a@host"), "list of node names"),
        ((("res", "req"), ["a@host", 3]), "list of node names"),
        ((("res", "req"), None, -1), "retries"),
        ((("res", "req"), None, 1.5), "retries"),
        ((("res", "req"), None, True), "retries"),
        ((("res", "req"), None, "forever"), "retries"),
    ],
)
def test_bad_arguments_raise_and_change_nothing(args: tuple[Any, ...], why: str) -> None:
    """Malformed ids, node lists or retries raise BadArgument (a TypeError and a badarg) naming the function."""
    with pytest.raises(TypeError, match=f"global:set_lock/3.*{why}") as info:
        global_.set_lock(*args)
    assert isinstance(info.value, erlang.ErlangError) and info.value.reason == "badarg"
    assert rows() == []


@pytest.mark.usefixtures("fresh_global")
def test_bad_arguments_of_del_lock_and_trans() -> None:
    """del_lock and trans check their arguments too, before touching any lock."""
    with pytest.raises(global_.BadArgument, match="global:del_lock/2"):
        global_.del_lock("res")
    with pytest.raises(global_.BadArgument, match="global:del_lock/2"):
        global_.del_lock(("res", "req"), ("a@host",))  # type: ignore[arg-type]
    with pytest.raises(erlang.ErlangError, match="global:trans/4.*not a function") as info:
        global_.trans(("res", "req"), "not callable")  # type: ignore[arg-type]
    assert info.value.reason == ("badfun", "not callable")  # Erlang's Fun() on a non-fun, lock released after
    with pytest.raises(global_.BadArgument, match="global:trans/4"):
        global_.trans(("res", "req"), lambda: 1, None, -3)
    assert rows() == []


@pytest.mark.usefixtures("fresh_global")
def test_empty_node_list_is_granted_at_once() -> None:
    """set_lock on no nodes is true at once and locks nothing (global's set_lock/4 first clause)."""
    assert global_.set_lock(("res", "req"), []) is True
    assert global_.trans(("res", "req"), lambda: "ran", []) == "ran"
    assert global_.set_lock_on_nodes(("res", "req"), []) is True
    assert rows() == []


def test_local_check_refuses_without_asking_the_servers(
    spawn: Callable[..., Pid], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With several nodes, a lock visibly held here by another requester fails before any multi_call."""
    me = erlang.self()
    a = spawn(holder, me, ("res", "a"), None)
    recv(tagged("locked", a))
    calls: list[Any] = []
    monkeypatch.setattr(global_.gen_server, "multi_call", lambda *args: calls.append(args))
    assert global_.set_lock(("res", "b"), [erlang.node(), "ghost@nowhere"], 0) is False
    assert calls == []
    # A node list without this node is not probed locally.
    assert global_.local_lock_check(("res", "b"), ["ghost@nowhere", "other@nowhere"]) is True


@pytest.mark.usefixtures("fresh_global")
def test_nodes_that_do_not_answer_are_ignored() -> None:
    """A node that cannot be reached is a bad node of the multi_call and does not block the lock."""
    nodes = [erlang.node(), "ghost@nowhere"]
    assert global_.set_lock(("res", "req"), nodes, 0) is True
    assert [r.resource_id for r in rows()] == ["res"]
    assert global_.del_lock(("res", "req"), nodes) is True
    assert rows() == []


@pytest.mark.usefixtures("fresh_global")
def test_a_node_without_the_server_is_ignored() -> None:
    """With this node's server gone, a lock on this node alone is "got" vacuously (its node is a bad node)."""
    locks.stop_global()
    assert erlang.whereis(SERVER) == "undefined"
    assert global_.set_lock(("res", "req"), [erlang.node()], 0) is True


def test_check_replies_undoes_the_grants_of_a_failed_attempt(spawn: Callable[..., Pid]) -> None:
    """A refusal among several replies releases the nodes that granted; a lone refusal releases nothing."""
    me = erlang.self()
    assert global_.check_replies([], ("res", "b"), []) is True
    assert global_.check_replies([("n", False)], ("res", "b"), [("n", False)]) is False
    # This node granted ('res', 'b') to us; another node (pretend) refused: our grant is undone.
    assert global_.set_lock(("res", "b"), [erlang.node()]) is True
    replies = [(erlang.node(), True), ("other@nowhere", False)]
    assert global_.check_replies(replies, ("res", "b"), replies) is False
    assert rows() == []
    # A lone refusal sends nothing: our own lock stays.
    assert global_.set_lock(("res", "b"), [erlang.node()]) is True
    assert global_.check_replies([("n", False)], ("res", "b"), [("n", False)]) is False
    assert [r.lock_requester_id for r in rows()] == ["b"]
    assert me in [h.pid for h in rows()[0].pid_refs]


@pytest.mark.usefixtures("fresh_global")
def test_unexpected_messages_are_logged_and_get_no_reply(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown call gets a warning and no reply (the caller times out); casts and infos get a warning."""
    with caplog.at_level(logging.WARNING, logger="repg2.global_"):
        with pytest.raises(erlang.ExitError) as info:
            gen_server.call(SERVER, "what", 0.2)
        assert info.value.reason[0] == "timeout"
        with pytest.raises(erlang.ExitError):
            gen_server.call(SERVER, ("set_lock", "not a pair"), 0.2)
        gen_server.cast(SERVER, "what")
        erlang.send(SERVER, "what")
        barrier(SERVER)
    texts = [r.getMessage() for r in caplog.records if "unexpected message" in r.getMessage()]
    assert any("handle_call('what'" in t for t in texts)
    assert any("handle_call(('set_lock', 'not a pair')" in t for t in texts)
    assert any("handle_cast('what'" in t for t in texts)
    assert any("handle_info('what'" in t for t in texts)


@pytest.mark.usefixtures("fresh_global")
def test_exits_and_unknown_downs_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """An 'EXIT' from a linked process and a 'DOWN' of an unknown monitor change nothing and warn of nothing."""
    assert global_.set_lock(("res", "req"))
    before = rows()
    with caplog.at_level(logging.WARNING, logger="repg2.global_"):
        erlang.send(SERVER, ("EXIT", erlang.self(), "whatever"))
        erlang.send(SERVER, ("DOWN", erlang.make_ref(), "process", erlang.self(), "normal"))
        barrier(SERVER)
    assert rows() == before
    assert not [r for r in caplog.records if "unexpected" in r.getMessage()]


@pytest.mark.usefixtures("fresh_global")
def test_stop_is_answered_and_the_supervisor_restarts_an_empty_server() -> None:
    """stop/0 replies 'stopped'; kernel_safe_sup restarts the permanent server with empty tables."""
    old = erlang.whereis(SERVER)
    assert global_.set_lock(("res", "req"))
    assert global_.stop() == "stopped"
    wait_until(lambda: erlang.whereis(SERVER) not in ("undefined", old), "the server to be restarted")
    wait_until(lambda: ets.whereis(global_.LOCKS) != "undefined", "the new server's lock table")
    assert rows() == []


def test_start_without_supervisor_and_duplicate_start() -> None:
    """start/0 runs a server outside any supervisor; a second start reports already_started."""
    locks.stop_global()
    result = global_.start()
    try:
        assert result[0] == "ok"
        assert global_.start() == ("error", ("already_started", result[1]))
    finally:
        assert global_.stop() == "stopped"
    wait_until(lambda: erlang.whereis(SERVER) == "undefined", "the server to stop")
    locks.start_global()


@pytest.mark.usefixtures("fresh_global")
def test_do_monitor_uses_a_helper_for_an_unconnected_node() -> None:
    """A holder on a node that is not connected is monitored through a helper, which reports its loss."""
    remote = Pid("ghost@nowhere", 7, 1)
    rpid, ref = global_.do_monitor(remote)
    assert rpid != remote
    # No connection to ghost@nowhere: the helper's own monitor fires, it exits, and we see its 'DOWN'.
    down = recv(is_down(ref), "the helper's 'DOWN'")
    assert down[3] == rpid
    me = erlang.self()
    assert global_.do_monitor(me)[0] == me
    assert global_.kill_monitor_proc(me, me) == "ok"


@pytest.mark.usefixtures("fresh_global")
def test_kill_monitor_proc_kills_the_helper() -> None:
    """Releasing a lock held through a helper kills the helper (kill_monitor_proc/2)."""
    helper, ref = erlang.spawn_monitor(lambda: erlang.receive(lambda m: False))
    assert global_.kill_monitor_proc(helper, erlang.self()) is True
    assert down_reason(ref) == "killed"


# == A cluster of real nodes =========================================================
# Nodes a (this process), b and c. Every node runs global_name_server
# (started by locks.setup_node, which also makes the back-off fast).


@pytest.fixture
def global_cluster3(fresh_global: list[Pid]) -> Iterator[Cluster]:
    """Three nodes a (this one), b and c, each with a global_name_server and a fast back-off."""
    with Cluster(3) as c:
        for node in c.nodes:
            assert c.rpc(node, locks.setup_node) == node
        yield c


def lock_on(cluster: Cluster, node: str, lock_id: Any, nodes: list[str] | None = None) -> Pid:
    """Start a :func:`holder` on ``node`` that takes ``lock_id`` (on ``nodes``); return it once it holds the lock."""
    pid = cluster.spawn(node, holder, erlang.self(), lock_id, nodes)
    assert recv(tagged("locked", pid), f"{pid!r} to take {lock_id!r}")[2] is True
    return pid


def holders_on(cluster: Cluster, node: str) -> list[tuple[Any, Any, list[Pid]]]:
    """The locks of ``node`` as ``(resource, requester, [holder pids])``."""
    return cluster.rpc(node, locks.holders)  # type: ignore[no-any-return]


ROUNDS = 20  # increments per counter worker


def race(cluster: Cluster, locked: bool) -> tuple[list[Any], dict[str, int]]:
    """Run two counter workers per node, each increment inside trans or (``locked=False``) bare.

    Returns the workers' ``('done', pid, results)`` reports and the
    counter's stats; the counter runs on a (this node) and is stopped after.
    """
    a = cluster.nodes[0]
    me = erlang.self()
    task = (locks.worker, me, a, ("counter", "shared"), ROUNDS) if locked else (locks.worker_unlocked, me, a, ROUNDS)
    counter = locks.start_counter()
    try:
        workers = [cluster.spawn(node, *task) for node in cluster.nodes for _ in range(2)]
        done = [recv(tagged("done", w), f"worker {w!r} to finish", 3 * DEADLINE) for w in workers]
        return done, gen_server.call(counter, "stats")
    finally:
        gen_server.stop(counter)


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_mutual_exclusion_under_contention(global_cluster3: Cluster) -> None:
    """Two workers per node increment one counter inside trans: no update is lost, never two inside at once."""
    done, stats = race(global_cluster3, locked=True)
    for report in done:
        assert report[2] == [None] * ROUNDS  # trans returned the fun's value every time, never 'aborted'
    assert stats["value"] == len(done) * ROUNDS
    assert stats["most"] == 1 and stats["inside"] == 0
    for node in global_cluster3.nodes:
        assert holders_on(global_cluster3, node) == []


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_without_the_lock_the_race_is_real(global_cluster3: Cluster) -> None:
    """The control case: the same workers without trans do overlap, so the test above can catch a broken lock."""
    _done, stats = race(global_cluster3, locked=False)
    assert stats["most"] > 1


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_killed_holder_releases_the_lock_and_a_waiter_proceeds(global_cluster3: Cluster) -> None:
    """A holder on b is killed: every node drops its lock, and a waiter on c takes it."""
    a, b, c = global_cluster3.nodes
    h = lock_on(global_cluster3, b, ("res", "h"))
    for node in global_cluster3.nodes:
        assert holders_on(global_cluster3, node) == [("res", "h", [h])]
    w = global_cluster3.spawn(c, holder, erlang.self(), ("res", "w"), None)
    assert erlang.receive(tagged("locked", w), timeout=0.2) is erlang.TIMEOUT  # refused while h holds it
    erlang.exit(h, "kill")
    assert recv(tagged("locked", w))[2] is True
    for node in global_cluster3.nodes:
        assert holders_on(global_cluster3, node) == [("res", "w", [w])]
    erlang.send(w, "release")
    recv(tagged("released", w))
    for node in global_cluster3.nodes:
        assert holders_on(global_cluster3, node) == []


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_killed_holder_node_releases_the_lock_on_the_survivors(global_cluster3: Cluster) -> None:
    """The holder's node is killed: the survivors' monitors fire 'noconnection' and the lock is gone."""
    a, b, c = global_cluster3.nodes
    me = erlang.self()
    h = lock_on(global_cluster3, c, ("res", "h"))
    assert holders_on(global_cluster3, a) == holders_on(global_cluster3, b) == [("res", "h", [h])]
    global_cluster3.kill(c)
    wait_until(
        lambda: holders_on(global_cluster3, a) == [] and holders_on(global_cluster3, b) == [],
        "the survivors to drop c's lock",
    )
    assert global_.set_lock(("res", "a"), [a, b], 0) is True
    assert holders_on(global_cluster3, b) == [("res", "a", [me])]
    global_.del_lock(("res", "a"), [a, b])


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_retries_zero_under_contention_fails_and_leaves_nothing(global_cluster3: Cluster) -> None:
    """One refusing node fails a single attempt; the nodes that granted are released again (check_replies)."""
    a, b, c = global_cluster3.nodes
    h = lock_on(global_cluster3, c, ("res", "h"), [c])  # the lock is held on c only
    assert global_.set_lock(("res", "a"), [a, b, c], 0) is False  # a and b grant, c refuses
    assert holders_on(global_cluster3, a) == holders_on(global_cluster3, b) == []
    assert holders_on(global_cluster3, c) == [("res", "h", [h])]
    assert global_.trans(("res", "a"), lambda: "ran", [a, b, c], 0) == "aborted"
    assert global_cluster3.rpc(b, locks.try_lock, ("res", "b"), [a, b, c], 0) is False
    assert holders_on(global_cluster3, a) == holders_on(global_cluster3, b) == []
    erlang.send(h, "release")
    recv(tagged("released", h))
    assert global_.trans(("res", "a"), lambda: "ran", [a, b, c], 0) == "ran"


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_multi_call_lists_a_dead_node_and_a_serverless_node_as_bad(global_cluster3: Cluster) -> None:
    """multi_call: a node that is down and a node without the server are bad nodes; no stray message stays."""
    a, b, c = global_cluster3.nodes
    assert global_cluster3.rpc(b, locks.stop_global) == "ok"
    global_cluster3.kill(c)
    erlang.flush()
    for timeout in ("infinity", 5):
        replies, bad = gen_server.multi_call([a, b, c], SERVER, ("set_lock", ("res", "mc")), timeout)
        assert replies == [(a, True)]
        assert sorted(bad) == sorted([b, c])
        assert erlang.flush() == []
    # set_lock ignores the bad nodes: the lock is "got" on the one node that answers.
    assert global_.set_lock(("res", "mc"), [a, b, c], 0) is True
    assert global_.del_lock(("res", "mc"), [a, b, c]) is True
    assert rows() == []
    assert erlang.flush() == []
    # abcast to nodes without the server, or without any such name, is silently lost.
    assert gen_server.abcast([a, b, c], "no_such_server", "hello") == "abcast"
    assert gen_server.abcast([b, c], SERVER, "hello") == "abcast"
    barrier(SERVER)
    assert erlang.flush() == []


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_both_sides_of_a_partition_hold_the_same_lock(global_cluster3: Cluster) -> None:
    """Bad nodes are ignored, so during a partition each side can take the same resource (global is AP here)."""
    a, b, c = global_cluster3.nodes
    me = erlang.self()
    global_cluster3.partition([a], [b, c])
    wait_until(lambda: erlang.nodes() == [], "a to be cut off")
    assert global_.set_lock(("res", "a"), [a, b, c], 0) is True  # b and c cannot answer: ignored
    h = global_cluster3.spawn(b, holder, me, ("res", "b"), None)  # b's default nodes: [b, c]
    wait_until(
        lambda: holders_on(global_cluster3, b) == holders_on(global_cluster3, c) == [("res", "b", [h])],
        "b and c to hold b's lock",
    )
    assert locks.holders() == [("res", "a", [me])]
    global_cluster3.heal()
    # Healing merges nothing: each side still holds its own lock on the resource.
    assert [(r.resource_id, r.lock_requester_id) for r in rows()] == [("res", "a")]
    assert holders_on(global_cluster3, b) == [("res", "b", [h])]
    global_.del_lock(("res", "a"), [a])
