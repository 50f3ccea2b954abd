"""pg2 across real nodes: RePG2's distributed suite, pg2_SUITE's partition cases, and failures beyond both.

Every node here is a real OS process started by ``repg2.testing.cluster.Cluster``,
talking over TCP; kills are SIGKILL and partitions really cut connections.
After each write, every connected node has applied it (the write's
``multi_call`` returned), so ``wsane`` runs at once; after a kill, a crash or
a heal we wait, with a deadline, for the views to settle, then run it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support import down_reason, members, start_pg2_everywhere, wait_until

from repg2 import erlang, ets, gen_server, pg2
from repg2.testing import Cluster, member_loop, restart_pg2, sane, wsane

pytestmark = [pytest.mark.timeout(120), pytest.mark.distributed]


def all_see(cluster: Cluster, nodes: list[str], group: Any, expected: list[erlang.Pid]) -> bool:
    """Say whether every node in ``nodes`` lists exactly ``expected`` (in term order)."""
    want = sorted(expected)
    return all(members(cluster, n, group) == want for n in nodes)


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


def test_nodes_share_groups(pg2_cluster2: Cluster) -> None:
    """Groups and joins made on either node are seen on both (RePG2: "nodes share groups")."""
    a, b = pg2_cluster2.nodes
    me = erlang.self()
    assert pg2.create("test_group") == "ok"
    assert pg2.join("test_group", me) == "ok"
    assert_group_membership(pg2_cluster2, "test_group", me)
    pid = pg2_cluster2.spawn(b, member_loop)
    assert pg2_cluster2.rpc(b, pg2.create, "test_group2") == "ok"
    assert pg2_cluster2.rpc(b, pg2.join, "test_group2", pid) == "ok"
    assert_group_membership(pg2_cluster2, "test_group2", pid)
    wsane(pg2_cluster2.nodes, pg2_cluster2.rpc)
    assert pg2.leave("test_group", me) == "ok"
    assert_no_group_member(pg2_cluster2, "test_group")
    assert pg2_cluster2.rpc(b, pg2.leave, "test_group2", pid) == "ok"
    assert_no_group_member(pg2_cluster2, "test_group2")
    wsane(pg2_cluster2.nodes, pg2_cluster2.rpc)


def test_exchange_refills_a_restarted_remote_server(pg2_cluster2: Cluster) -> None:
    """A pg2 restarted on the other node gets our groups back by exchange (RePG2: "exchange1")."""
    a, b = pg2_cluster2.nodes
    me = erlang.self()
    pg2.create("test_group")
    assert pg2.join("test_group", me) == "ok"
    assert_group_membership(pg2_cluster2, "test_group", me)
    assert pg2_cluster2.rpc(b, restart_pg2)[0] == "ok"
    wait_until(lambda: members(pg2_cluster2, b, "test_group") == [me], "the exchange to refill b")
    assert_group_membership(pg2_cluster2, "test_group", me)
    wsane(pg2_cluster2.nodes, pg2_cluster2.rpc)
    pg2.leave("test_group", me)


def test_exchange_refills_a_restarted_local_server(pg2_cluster2: Cluster) -> None:
    """A pg2 restarted on this node gets the other node's groups back by exchange (RePG2: "exchange2")."""
    a, b = pg2_cluster2.nodes
    pid = pg2_cluster2.spawn(b, member_loop)
    assert pg2_cluster2.rpc(b, pg2.create, "test_group") == "ok"
    assert pg2_cluster2.rpc(b, pg2.join, "test_group", pid) == "ok"
    assert_group_membership(pg2_cluster2, "test_group", pid)
    assert restart_pg2()[0] == "ok"
    wait_until(lambda: pg2.get_members("test_group") == [pid], "the exchange to refill a")
    assert_group_membership(pg2_cluster2, "test_group", pid)
    wsane(pg2_cluster2.nodes, pg2_cluster2.rpc)


def test_join_pid_from_disconnected_node(pg2_cluster2: Cluster) -> None:
    """Joining a pid of an unreachable node succeeds, then the pid is dropped via do_monitor's helper (RePG2: "join pid from disconnected node")."""
    a, b = pg2_cluster2.nodes
    assert pg2.create("test_group") == "ok"
    pid = pg2_cluster2.spawn(b, member_loop)
    pg2_cluster2.partition([a], [b])
    assert erlang.nodes() == []
    assert pg2.join("test_group", pid) == "ok"
    # do_monitor saw b unconnected and spawned a helper; its monitor fails
    # with noconnection, the helper exits, pg2's 'DOWN' removes the pid.
    wait_until(lambda: pg2.get_members("test_group") == [], "pg2 to drop the unreachable pid")
    assert pg2.get_local_members("test_group") == []
    assert pg2.get_closest_pid("test_group") == ("error", ("no_process", "test_group"))
    sane()
    assert members(pg2_cluster2, b, "test_group") == []  # b, cut off, never heard of the join


# == pg2_SUITE's partition cases ====================================================


def test_otp_8653(fresh_pg2: list[erlang.Pid], cluster: Callable[..., Cluster]) -> None:
    """Each of 4 nodes, on both sides of a partition, creates the group and joins its own process twice: after the heal all list the same 8 memberships (pg2_SUITE: otp_8653)."""
    four = cluster(4)
    a, b, c, d = four.nodes
    start_pg2_everywhere(four)
    four.partition([a, b], [c, d])
    pids = []
    for node in four.nodes:
        pid = four.spawn(node, member_loop)
        pids.append(pid)
        assert four.rpc(node, pg2.create, "pg2_otp_8653") == "ok"
        assert four.rpc(node, pg2.join, "pg2_otp_8653", pid) == "ok"
        assert four.rpc(node, pg2.join, "pg2_otp_8653", pid) == "ok"
    assert all_see(four, [a, b], "pg2_otp_8653", [pids[0]] * 2 + [pids[1]] * 2)
    assert all_see(four, [c, d], "pg2_otp_8653", [pids[2]] * 2 + [pids[3]] * 2)
    four.heal()
    wait_until(
        lambda: all_see(four, four.nodes, "pg2_otp_8653", [p for p in pids for _ in range(2)]),
        "the heal to merge both sides",
    )
    assert len(members(four, a, "pg2_otp_8653")) == 8
    wsane(four.nodes, four.rpc)
    assert pg2.delete("pg2_otp_8653") == "ok"
    wsane(four.nodes, four.rpc)


def test_otp_8259_member_dying_while_partitioned_is_gone_after_heal(pg2_cluster3: Cluster) -> None:
    """A member killed while its node is cut off, then a heal at once: it is gone from every node (the point of pg2_SUITE: otp_8259, without global names)."""
    a, b, c = pg2_cluster3.nodes
    pid = pg2_cluster3.spawn(c, member_loop)
    pg2.create("pg2_otp_8259")
    assert pg2.join("pg2_otp_8259", pid) == "ok"
    assert all_see(pg2_cluster3, pg2_cluster3.nodes, "pg2_otp_8259", [pid])
    pg2_cluster3.partition([a, b], [c])
    pg2_cluster3.rpc(c, erlang.exit, pid, "kill")
    pg2_cluster3.heal()
    wait_until(
        lambda: all_see(pg2_cluster3, pg2_cluster3.nodes, "pg2_otp_8259", []), "every node to drop the dead member"
    )
    wsane(pg2_cluster3.nodes, pg2_cluster3.rpc)


def test_exchange_of_a_dead_pid_is_removed_again(pg2_cluster2: Cluster) -> None:
    """An exchange that re-adds a pid which died meanwhile is undone by the monitor's noproc (the mechanism behind otp_8259)."""
    a, b = pg2_cluster2.nodes
    pg2.create("g")
    dead = erlang.spawn(member_loop)
    ref = erlang.monitor("process", dead)
    erlang.exit(dead, "kill")
    down_reason(ref)
    gen_server.cast(("pg2", b), ("exchange", a, [["g", [dead]]]))
    wait_until(
        lambda: (
            members(pg2_cluster2, b, "g") == []
            and pg2_cluster2.rpc(b, ets.tab2list, pg2.TABLE) == [pg2.GroupRow(("group", "g"))]
        ),
        "b's monitor to remove the dead pid again",
    )
    wsane(pg2_cluster2.nodes, pg2_cluster2.rpc)


# == Beyond both suites ===============================================================


def test_crashed_server_is_restarted_and_refilled_by_exchange(pg2_cluster3: Cluster) -> None:
    """A pg2 server killed on one node is restarted by kernel_safe_sup and refilled from the others."""
    a, b, c = pg2_cluster3.nodes
    pids = [pg2_cluster3.spawn(n, member_loop) for n in pg2_cluster3.nodes]
    pg2.create("g")
    for pid in pids:
        pg2.join("g", pid)
    old = pg2_cluster3.rpc(b, erlang.whereis, "pg2")
    pg2_cluster3.rpc(b, erlang.exit, old, "kill")
    wait_until(
        lambda: pg2_cluster3.rpc(b, erlang.whereis, "pg2") not in ("undefined", old),
        "kernel_safe_sup to restart b's pg2",
    )
    wait_until(lambda: all_see(pg2_cluster3, pg2_cluster3.nodes, "g", pids), "the exchange to refill b")
    wsane(pg2_cluster3.nodes, pg2_cluster3.rpc)


def test_killed_node_members_vanish_groups_stay(pg2_cluster3: Cluster) -> None:
    """SIGKILL of a node removes its members from every other node; its groups stay."""
    a, b, c = pg2_cluster3.nodes
    on_a, on_c = pg2_cluster3.spawn(a, member_loop), pg2_cluster3.spawn(c, member_loop)
    assert pg2_cluster3.rpc(c, pg2.create, "made_on_c") == "ok"
    pg2.create("g")
    pg2.join("g", on_a)
    pg2.join("g", on_c)
    pg2_cluster3.rpc(c, pg2.join, "made_on_c", on_c)
    pg2_cluster3.kill(c)
    wait_until(
        lambda: all_see(pg2_cluster3, [a, b], "g", [on_a]) and all_see(pg2_cluster3, [a, b], "made_on_c", []),
        "a and b to drop c's members",
    )
    assert pg2_cluster3.rpc(b, pg2.which_groups) == ["g", "made_on_c"]
    wsane([a, b], pg2_cluster3.rpc)


def test_writes_on_both_sides_of_a_partition_all_survive_the_heal(pg2_cluster3: Cluster) -> None:
    """Groups created and processes joined on both sides during a partition are all present everywhere after the heal."""
    a, b, c = pg2_cluster3.nodes
    pg2_cluster3.partition([a], [b, c])
    on_a, on_b = pg2_cluster3.spawn(a, member_loop), pg2_cluster3.spawn(b, member_loop)
    pg2.create("left")
    pg2.join("left", on_a)
    pg2_cluster3.rpc(b, pg2.create, "right")
    pg2_cluster3.rpc(b, pg2.join, "right", on_b)
    pg2_cluster3.rpc(c, pg2.create, "left")  # the same group, made on the other side too
    pg2_cluster3.rpc(c, pg2.join, "left", on_b)
    assert pg2.get_members("left") == [on_a]
    assert members(pg2_cluster3, c, "left") == [on_b]
    pg2_cluster3.heal()
    wait_until(lambda: all_see(pg2_cluster3, pg2_cluster3.nodes, "left", [on_a, on_b]), "the heal to merge 'left'")
    wait_until(lambda: all_see(pg2_cluster3, pg2_cluster3.nodes, "right", [on_b]), "the heal to bring 'right'")
    wsane(pg2_cluster3.nodes, pg2_cluster3.rpc)


def heal_and_wait_for_both_exchanges(cluster: Cluster, a: str, b: str) -> None:
    """Heal, having joined a marker on each side: when every node lists both, every side's exchange has arrived.

    A node's exchange is one cast carrying all of its memberships, so once a
    node lists the far side's marker it has also added whatever else that side
    sent. The markers are joined while the partition ``[a] | [b, c]`` holds.
    """
    mark_a, mark_b = cluster.spawn(a, member_loop), cluster.spawn(b, member_loop)
    pg2.create("mark")  # a's side
    pg2.join("mark", mark_a)
    cluster.rpc(b, pg2.create, "mark")
    cluster.rpc(b, pg2.join, "mark", mark_b)
    cluster.heal()
    wait_until(lambda: all_see(cluster, cluster.nodes, "mark", [mark_a, mark_b]), "both sides' exchanges")


def member_on_a_cut_off(cluster: Cluster) -> tuple[str, str, str, erlang.Pid]:
    """A member of "g" living on a, then the partition [a] | [b, c]; return when b and c have dropped it.

    They drop it on the 'noconnection' of their monitors, as they would for a lost node.
    """
    a, b, c = cluster.nodes
    pid = cluster.spawn(a, member_loop)
    pg2.create("g")
    pg2.join("g", pid)
    cluster.partition([a], [b, c])
    wait_until(lambda: all_see(cluster, [b, c], "g", []), "b and c to drop a's member on 'noconnection'")
    return a, b, c, pid


def test_a_leave_on_the_members_own_side_of_a_clean_partition_holds_after_the_heal(pg2_cluster3: Cluster) -> None:
    """The far side dropped the member on 'noconnection', its own side left it: no side sends it back at the heal."""
    a, b, c, pid = member_on_a_cut_off(pg2_cluster3)
    assert pg2.leave("g", pid) == "ok"
    assert pg2.get_members("g") == []
    heal_and_wait_for_both_exchanges(pg2_cluster3, a, b)
    assert all_see(pg2_cluster3, pg2_cluster3.nodes, "g", [])
    assert pg2_cluster3.rpc(a, erlang.is_process_alive, pid) is True  # it left; it did not die
    wsane(pg2_cluster3.nodes, pg2_cluster3.rpc)


def test_a_leave_on_the_far_side_is_a_no_op_and_the_member_comes_back(pg2_cluster3: Cluster) -> None:
    """A leave made where the member was already dropped changes nothing; its own side sends it at the heal."""
    a, b, c, pid = member_on_a_cut_off(pg2_cluster3)
    # The leave below has nothing to remove on b.
    assert pg2_cluster3.rpc(b, pg2.leave, "g", pid) == "ok"
    assert pg2.get_members("g") == [pid]  # a, on the other side, still has it
    heal_and_wait_for_both_exchanges(pg2_cluster3, a, b)
    assert all_see(pg2_cluster3, pg2_cluster3.nodes, "g", [pid])
    wsane(pg2_cluster3.nodes, pg2_cluster3.rpc)


def test_a_delete_during_a_partition_is_undone_by_the_heal(pg2_cluster3: Cluster) -> None:
    """pg2 heals by adding only: the side that kept the group re-creates it, with the members it lists."""
    a, b, c, pid = member_on_a_cut_off(pg2_cluster3)
    assert pg2_cluster3.rpc(c, pg2.delete, "g") == "ok"
    assert pg2_cluster3.rpc(b, pg2.which_groups) == []
    heal_and_wait_for_both_exchanges(pg2_cluster3, a, b)
    assert all_see(pg2_cluster3, pg2_cluster3.nodes, "g", [pid])
    wsane(pg2_cluster3.nodes, pg2_cluster3.rpc)


def test_a_live_member_can_be_lost_for_good(pg2_cluster3: Cluster) -> None:
    """Deleted on its own side while the far side had dropped it: the heal brings the group back without it (notebook 04's carol)."""
    a, b, c, pid = member_on_a_cut_off(pg2_cluster3)
    assert pg2.delete("g") == "ok"
    heal_and_wait_for_both_exchanges(pg2_cluster3, a, b)
    assert all(pg2_cluster3.rpc(n, pg2.which_groups) == ["g", "mark"] for n in pg2_cluster3.nodes)
    assert all_see(pg2_cluster3, pg2_cluster3.nodes, "g", [])
    assert pg2_cluster3.rpc(a, erlang.is_process_alive, pid) is True  # alive, and in no group
    wsane(pg2_cluster3.nodes, pg2_cluster3.rpc)


def test_delete_with_members_on_three_nodes_removes_every_row(pg2_cluster3: Cluster) -> None:
    """delete/1 of a group with members on 3 nodes removes every row, monitors included, on every node."""
    pids = [pg2_cluster3.spawn(n, member_loop) for n in pg2_cluster3.nodes]
    pg2.create("g")
    for pid in pids:
        pg2.join("g", pid)
        pg2.join("g", pid)
    wsane(pg2_cluster3.nodes, pg2_cluster3.rpc)
    assert pg2.delete("g") == "ok"
    for node in pg2_cluster3.nodes:
        assert pg2_cluster3.rpc(node, ets.tab2list, pg2.TABLE) == []
        assert pg2_cluster3.rpc(node, sane) == "ok"
    # The monitors are gone: killing the former members sends pg2 no 'DOWN' it cannot match.
    for pid in pids:
        pg2_cluster3.rpc(erlang.node(pid), erlang.exit, pid, "kill")
    for node in pg2_cluster3.nodes:
        pg2_cluster3.rpc(node, gen_server.get_state, "pg2")
        assert pg2_cluster3.rpc(node, erlang.whereis, "pg2") != "undefined"


def test_member_death_is_seen_on_every_node(pg2_cluster3: Cluster) -> None:
    """A member killed on its node disappears from all three nodes, through each node's own monitor."""
    a, b, c = pg2_cluster3.nodes
    pid = pg2_cluster3.spawn(b, member_loop)
    other = pg2_cluster3.spawn(c, member_loop)
    pg2.create("g")
    pg2.join("g", pid)
    pg2.join("g", other)
    pg2_cluster3.rpc(b, erlang.exit, pid, "kill")
    wait_until(lambda: all_see(pg2_cluster3, pg2_cluster3.nodes, "g", [other]), "every node to drop the dead member")
    wsane(pg2_cluster3.nodes, pg2_cluster3.rpc)


def test_get_closest_pid_prefers_local_then_random_remote(pg2_cluster3: Cluster) -> None:
    """get_closest_pid answers the local member where there is one, else one of the remote members."""
    a, b, c = pg2_cluster3.nodes
    on_b, on_c = pg2_cluster3.spawn(b, member_loop), pg2_cluster3.spawn(c, member_loop)
    pg2.create("g")
    pg2.join("g", on_b)
    pg2.join("g", on_c)
    assert pg2_cluster3.rpc(b, pg2.get_closest_pid, "g") == on_b
    assert pg2_cluster3.rpc(c, pg2.get_closest_pid, "g") == on_c
    try:
        pg2.set_random_index(lambda n: n - 1)
        assert pg2.get_closest_pid("g") == max(on_b, on_c)
        pg2.set_random_index(lambda n: 0)
        assert pg2.get_closest_pid("g") == min(on_b, on_c)
    finally:
        pg2.set_random_index(None)
