"""pg2 across real nodes: RePG2's distributed suite, pg2_SUITE's partition cases, and failures beyond both.

Every node here is a real OS process started by ``repg2.testing.cluster.Cluster``,
talking over TCP; kills are SIGKILL and partitions really cut connections.
After each write, every connected node has applied it (the write's
``multi_call`` returned), so ``wsane`` runs at once; after a kill, a crash or
a heal we wait, with a deadline, for the views to settle, then run it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from repg2 import erlang, ets, gen_server, pg2
from repg2.testing import Cluster, member_loop, restart_pg2, sane, stop_pg2, wsane

pytestmark = [pytest.mark.timeout(120), pytest.mark.distributed]


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll until ``condition()`` holds (pg2_SUITE's ?UNTIL), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


def members(cluster: Cluster, node: str, group: Any) -> Any:
    """``pg2:get_members(group)`` read on ``node``."""
    return cluster.rpc(node, pg2.get_members, group)


def all_see(cluster: Cluster, nodes: list[str], group: Any, expected: list[erlang.Pid]) -> bool:
    """Say whether every node in ``nodes`` lists exactly ``expected`` (in term order)."""
    want = sorted(expected)
    return all(members(cluster, n, group) == want for n in nodes)


@pytest.fixture
def fresh() -> Iterator[None]:
    """A fresh pg2 on this node before and after the test (the other nodes are new processes)."""
    stop_pg2()
    yield
    stop_pg2()


def start_pg2_everywhere(cluster: Cluster) -> None:
    """Start pg2 on every node, as RePG2's reset_repg2 and pg2_SUITE's nodeup step do.

    pg2 starts on a node's first pg2 call; a node whose pg2 is not running
    yet is a bad node to every write and catches up by exchange later.
    Starting it everywhere first makes each write reach every node at once.
    """
    for node in cluster.nodes:
        assert cluster.rpc(node, pg2.start)[0] == "ok"


@pytest.fixture
def cluster2(fresh: None) -> Iterator[Cluster]:
    """Two nodes, this one (a) and b, with pg2 running on both."""
    with Cluster(2) as cluster:
        start_pg2_everywhere(cluster)
        yield cluster


@pytest.fixture
def cluster3(fresh: None) -> Iterator[Cluster]:
    """Three nodes, this one (a), b and c, with pg2 running on all."""
    with Cluster(3) as cluster:
        start_pg2_everywhere(cluster)
        yield cluster


def assert_group_membership(cluster: Cluster, group: str, pid: erlang.Pid) -> None:
    """On both nodes: pid is the only member, local where it lives, and the closest pid (RePG2 helper)."""
    for node in cluster.nodes:
        assert members(cluster, node, group) == [pid]
        local = cluster.rpc(node, pg2.get_local_members, group)
        assert local == ([pid] if erlang.node(pid) == node else [])
        assert cluster.rpc(node, pg2.get_closest_pid, group) == pid


def assert_no_group_member(cluster: Cluster, group: str) -> None:
    """On both nodes: no member, no local member, no closest pid (RePG2 helper)."""
    for node in cluster.nodes:
        assert members(cluster, node, group) == []
        assert cluster.rpc(node, pg2.get_local_members, group) == []
        assert cluster.rpc(node, pg2.get_closest_pid, group) == ("error", ("no_process", group))


# == RePG2's distributed suite (test/repg2_distributed_test.exs) ==================


def test_nodes_share_groups(cluster2: Cluster) -> None:
    """Groups and joins made on either node are seen on both (RePG2: "nodes share groups")."""
    a, b = cluster2.nodes
    me = erlang.self()
    assert pg2.create("test_group") == "ok"
    assert pg2.join("test_group", me) == "ok"
    assert_group_membership(cluster2, "test_group", me)
    pid = cluster2.spawn(b, member_loop)
    assert cluster2.rpc(b, pg2.create, "test_group2") == "ok"
    assert cluster2.rpc(b, pg2.join, "test_group2", pid) == "ok"
    assert_group_membership(cluster2, "test_group2", pid)
    wsane(cluster2.nodes, cluster2.rpc)
    assert pg2.leave("test_group", me) == "ok"
    assert_no_group_member(cluster2, "test_group")
    assert cluster2.rpc(b, pg2.leave, "test_group2", pid) == "ok"
    assert_no_group_member(cluster2, "test_group2")
    wsane(cluster2.nodes, cluster2.rpc)


def test_exchange_refills_a_restarted_remote_server(cluster2: Cluster) -> None:
    """A pg2 restarted on the other node gets our groups back by exchange (RePG2: "exchange1")."""
    a, b = cluster2.nodes
    me = erlang.self()
    pg2.create("test_group")
    assert pg2.join("test_group", me) == "ok"
    assert_group_membership(cluster2, "test_group", me)
    assert cluster2.rpc(b, restart_pg2)[0] == "ok"
    wait_until(lambda: members(cluster2, b, "test_group") == [me])
    assert_group_membership(cluster2, "test_group", me)
    wsane(cluster2.nodes, cluster2.rpc)
    pg2.leave("test_group", me)


def test_exchange_refills_a_restarted_local_server(cluster2: Cluster) -> None:
    """A pg2 restarted on this node gets the other node's groups back by exchange (RePG2: "exchange2")."""
    a, b = cluster2.nodes
    pid = cluster2.spawn(b, member_loop)
    assert cluster2.rpc(b, pg2.create, "test_group") == "ok"
    assert cluster2.rpc(b, pg2.join, "test_group", pid) == "ok"
    assert_group_membership(cluster2, "test_group", pid)
    assert restart_pg2()[0] == "ok"
    wait_until(lambda: pg2.get_members("test_group") == [pid])
    assert_group_membership(cluster2, "test_group", pid)
    wsane(cluster2.nodes, cluster2.rpc)


def test_join_pid_from_disconnected_node(cluster2: Cluster) -> None:
    """Joining a pid of an unreachable node succeeds, then the pid is dropped via do_monitor's helper (RePG2: "join pid from disconnected node")."""
    a, b = cluster2.nodes
    assert pg2.create("test_group") == "ok"
    pid = cluster2.spawn(b, member_loop)
    cluster2.partition([a], [b])
    assert erlang.nodes() == []
    assert pg2.join("test_group", pid) == "ok"
    # do_monitor saw b unconnected and spawned a helper; its monitor fails
    # with noconnection, the helper exits, pg2's 'DOWN' removes the pid.
    wait_until(lambda: pg2.get_members("test_group") == [])
    assert pg2.get_local_members("test_group") == []
    assert pg2.get_closest_pid("test_group") == ("error", ("no_process", "test_group"))
    sane()
    assert members(cluster2, b, "test_group") == []  # b, cut off, never heard of the join


# == pg2_SUITE's partition cases ====================================================


def test_otp_8653(fresh: None) -> None:
    """Each of 4 nodes, on both sides of a partition, creates the group and joins its own process twice: after the heal all list the same 8 memberships (pg2_SUITE: otp_8653)."""
    with Cluster(4) as cluster:
        a, b, c, d = cluster.nodes
        start_pg2_everywhere(cluster)
        cluster.partition([a, b], [c, d])
        pids = []
        for node in cluster.nodes:
            pid = cluster.spawn(node, member_loop)
            pids.append(pid)
            assert cluster.rpc(node, pg2.create, "pg2_otp_8653") == "ok"
            assert cluster.rpc(node, pg2.join, "pg2_otp_8653", pid) == "ok"
            assert cluster.rpc(node, pg2.join, "pg2_otp_8653", pid) == "ok"
        assert all_see(cluster, [a, b], "pg2_otp_8653", [pids[0]] * 2 + [pids[1]] * 2)
        assert all_see(cluster, [c, d], "pg2_otp_8653", [pids[2]] * 2 + [pids[3]] * 2)
        cluster.heal()
        wait_until(lambda: all_see(cluster, cluster.nodes, "pg2_otp_8653", [p for p in pids for _ in range(2)]))
        assert len(members(cluster, a, "pg2_otp_8653")) == 8
        wsane(cluster.nodes, cluster.rpc)
        assert pg2.delete("pg2_otp_8653") == "ok"
        wsane(cluster.nodes, cluster.rpc)


def test_otp_8259_member_dying_while_partitioned_is_gone_after_heal(cluster3: Cluster) -> None:
    """A member killed while its node is cut off, then a heal at once: it is gone from every node (the point of pg2_SUITE: otp_8259, without global names)."""
    a, b, c = cluster3.nodes
    pid = cluster3.spawn(c, member_loop)
    pg2.create("pg2_otp_8259")
    assert pg2.join("pg2_otp_8259", pid) == "ok"
    assert all_see(cluster3, cluster3.nodes, "pg2_otp_8259", [pid])
    cluster3.partition([a, b], [c])
    cluster3.rpc(c, erlang.exit, pid, "kill")
    cluster3.heal()
    wait_until(lambda: all_see(cluster3, cluster3.nodes, "pg2_otp_8259", []))
    wsane(cluster3.nodes, cluster3.rpc)


def test_exchange_of_a_dead_pid_is_removed_again(cluster2: Cluster) -> None:
    """An exchange that re-adds a pid which died meanwhile is undone by the monitor's noproc (the mechanism behind otp_8259)."""
    a, b = cluster2.nodes
    pg2.create("g")
    dead = erlang.spawn(member_loop)
    ref = erlang.monitor("process", dead)
    erlang.exit(dead, "kill")
    erlang.receive(lambda m: isinstance(m, tuple) and m[:2] == ("DOWN", ref))
    gen_server.cast(("pg2", b), ("exchange", a, [["g", [dead]]]))
    wait_until(
        lambda: (
            members(cluster2, b, "g") == []
            and cluster2.rpc(b, ets.tab2list, pg2.TABLE) == [pg2.GroupRow(("group", "g"))]
        )
    )
    wsane(cluster2.nodes, cluster2.rpc)


# == Beyond both suites ===============================================================


def test_crashed_server_is_restarted_and_refilled_by_exchange(cluster3: Cluster) -> None:
    """A pg2 server killed on one node is restarted by kernel_safe_sup and refilled from the others."""
    a, b, c = cluster3.nodes
    pids = [cluster3.spawn(n, member_loop) for n in cluster3.nodes]
    pg2.create("g")
    for pid in pids:
        pg2.join("g", pid)
    old = cluster3.rpc(b, erlang.whereis, "pg2")
    cluster3.rpc(b, erlang.exit, old, "kill")
    wait_until(lambda: cluster3.rpc(b, erlang.whereis, "pg2") not in ("undefined", old))
    wait_until(lambda: all_see(cluster3, cluster3.nodes, "g", pids))
    wsane(cluster3.nodes, cluster3.rpc)


def test_killed_node_members_vanish_groups_stay(cluster3: Cluster) -> None:
    """SIGKILL of a node removes its members from every other node; its groups stay."""
    a, b, c = cluster3.nodes
    on_a, on_c = cluster3.spawn(a, member_loop), cluster3.spawn(c, member_loop)
    assert cluster3.rpc(c, pg2.create, "made_on_c") == "ok"
    pg2.create("g")
    pg2.join("g", on_a)
    pg2.join("g", on_c)
    cluster3.rpc(c, pg2.join, "made_on_c", on_c)
    cluster3.kill(c)
    wait_until(lambda: all_see(cluster3, [a, b], "g", [on_a]) and all_see(cluster3, [a, b], "made_on_c", []))
    assert cluster3.rpc(b, pg2.which_groups) == ["g", "made_on_c"]
    wsane([a, b], cluster3.rpc)


def test_writes_on_both_sides_of_a_partition_all_survive_the_heal(cluster3: Cluster) -> None:
    """Groups created and processes joined on both sides during a partition are all present everywhere after the heal."""
    a, b, c = cluster3.nodes
    cluster3.partition([a], [b, c])
    on_a, on_b = cluster3.spawn(a, member_loop), cluster3.spawn(b, member_loop)
    pg2.create("left")
    pg2.join("left", on_a)
    cluster3.rpc(b, pg2.create, "right")
    cluster3.rpc(b, pg2.join, "right", on_b)
    cluster3.rpc(c, pg2.create, "left")  # the same group, made on the other side too
    cluster3.rpc(c, pg2.join, "left", on_b)
    assert pg2.get_members("left") == [on_a]
    assert members(cluster3, c, "left") == [on_b]
    cluster3.heal()
    wait_until(lambda: all_see(cluster3, cluster3.nodes, "left", [on_a, on_b]))
    wait_until(lambda: all_see(cluster3, cluster3.nodes, "right", [on_b]))
    wsane(cluster3.nodes, cluster3.rpc)


def test_leave_during_partition_is_undone_by_the_heal(cluster3: Cluster) -> None:
    """pg2 heals by adding only: a leave made on one side of a partition comes back after the heal."""
    a, b, c = cluster3.nodes
    pid = cluster3.spawn(a, member_loop)
    pg2.create("g")
    pg2.join("g", pid)
    cluster3.partition([a], [b, c])
    assert cluster3.rpc(b, pg2.leave, "g", pid) == "ok"
    assert all_see(cluster3, [b, c], "g", [])
    assert pg2.get_members("g") == [pid]
    cluster3.heal()
    wait_until(lambda: all_see(cluster3, cluster3.nodes, "g", [pid]))
    wsane(cluster3.nodes, cluster3.rpc)


def test_delete_during_partition_is_undone_by_the_heal(cluster3: Cluster) -> None:
    """A delete made on one side of a partition is undone by the other side's exchange (add-only heal)."""
    a, b, c = cluster3.nodes
    pid = cluster3.spawn(a, member_loop)
    pg2.create("g")
    pg2.join("g", pid)
    cluster3.partition([a], [b, c])
    assert cluster3.rpc(c, pg2.delete, "g") == "ok"
    assert cluster3.rpc(b, pg2.which_groups) == []
    cluster3.heal()
    wait_until(lambda: all_see(cluster3, cluster3.nodes, "g", [pid]))
    wsane(cluster3.nodes, cluster3.rpc)


def test_delete_with_members_on_three_nodes_removes_every_row(cluster3: Cluster) -> None:
    """delete/1 of a group with members on 3 nodes removes every row, monitors included, on every node."""
    pids = [cluster3.spawn(n, member_loop) for n in cluster3.nodes]
    pg2.create("g")
    for pid in pids:
        pg2.join("g", pid)
        pg2.join("g", pid)
    wsane(cluster3.nodes, cluster3.rpc)
    assert pg2.delete("g") == "ok"
    for node in cluster3.nodes:
        assert cluster3.rpc(node, ets.tab2list, pg2.TABLE) == []
        assert cluster3.rpc(node, sane) == "ok"
    # The monitors are gone: killing the former members sends pg2 no 'DOWN' it cannot match.
    for pid in pids:
        cluster3.rpc(erlang.node(pid), erlang.exit, pid, "kill")
    for node in cluster3.nodes:
        cluster3.rpc(node, gen_server.get_state, "pg2")
        assert cluster3.rpc(node, erlang.whereis, "pg2") != "undefined"


def test_member_death_is_seen_on_every_node(cluster3: Cluster) -> None:
    """A member killed on its node disappears from all three nodes, through each node's own monitor."""
    a, b, c = cluster3.nodes
    pid = cluster3.spawn(b, member_loop)
    other = cluster3.spawn(c, member_loop)
    pg2.create("g")
    pg2.join("g", pid)
    pg2.join("g", other)
    cluster3.rpc(b, erlang.exit, pid, "kill")
    wait_until(lambda: all_see(cluster3, cluster3.nodes, "g", [other]))
    wsane(cluster3.nodes, cluster3.rpc)


def test_get_closest_pid_prefers_local_then_random_remote(cluster3: Cluster) -> None:
    """get_closest_pid answers the local member where there is one, else one of the remote members."""
    a, b, c = cluster3.nodes
    on_b, on_c = cluster3.spawn(b, member_loop), cluster3.spawn(c, member_loop)
    pg2.create("g")
    pg2.join("g", on_b)
    pg2.join("g", on_c)
    assert cluster3.rpc(b, pg2.get_closest_pid, "g") == on_b
    assert cluster3.rpc(c, pg2.get_closest_pid, "g") == on_c
    try:
        pg2.set_random_index(lambda n: n - 1)
        assert pg2.get_closest_pid("g") == max(on_b, on_c)
        pg2.set_random_index(lambda n: 0)
        assert pg2.get_closest_pid("g") == min(on_b, on_c)
    finally:
        pg2.set_random_index(None)
