"""A RePy2 node is a real Erlang node: real OTP 25 nodes and Python nodes as peers.

Every test here runs real ``erl`` nodes (``repg2.testing.otp.ErlangNode``)
beside Python nodes (``Cluster``), on the run's own port mapper, and checks
what crosses between them: ``net_adm:ping``, every term of the mapping both
ways, links and monitors and deaths both ways, rpc both ways, wrong cookies
both ways, and a cluster of two Erlang and two Python nodes. The Erlang side
of each check lives in ``tests/erlang/repg2_probe.erl`` (compiled here with
``erlc``); a test that needs ``erl`` skips without it, and fails under CI.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import closed_by_peer, connect_to, need_erlang, port_of, recv, wait_until

from repg2 import erlang, external, net_kernel, pg2, rpc
from repg2.erlang import Pid
from repg2.testing import Cluster, member_loop, otp
from repg2.testing import nodefuns as nf

pytestmark = [pytest.mark.timeout(120), pytest.mark.distributed]

PROBE = Path(__file__).parent / "erlang" / "repg2_probe.erl"
TICKTIME = 4  # seconds: Erlang's net_ticktime is whole seconds; both sides use the same


@pytest.fixture(scope="module")
def probe_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Compile the Erlang half of these tests once; return its code path."""
    need_erlang()
    return otp.compile_erlang(str(PROBE), str(tmp_path_factory.mktemp("erlang")))


@pytest.fixture
def erl_factory(probe_path: str, tmp_path: Path) -> Iterator[Any]:
    """Return ``start(alive, cookie=...)``: real Erlang nodes, all stopped after the test."""
    started: list[otp.ErlangNode] = []

    def start(alive: str, cookie: str, ticktime: float = TICKTIME, args: list[str] | None = None) -> otp.ErlangNode:
        node = otp.ErlangNode(
            f"{alive}_{os.getpid()}@127.0.0.1",
            cookie,
            code_paths=[probe_path],
            ticktime=ticktime,
            args=args or [],
            log=str(tmp_path / f"{alive}.log"),
        )
        started.append(node)
        return node.start()

    yield start
    for node in started:
        node.stop()
    for node in started:
        node.kill()


@pytest.fixture
def mixed(cluster: Any, erl_factory: Any) -> tuple[Cluster, otp.ErlangNode]:
    """A Python cluster of two nodes (a, this process; b) and one real Erlang node e, all connected."""
    c: Cluster = cluster(2, ticktime=TICKTIME)
    e = erl_factory("e", c.cookie)
    assert net_kernel.connect_node(e.name) is True
    return c, e


def evaluate(node: str, text: str) -> Any:
    """Evaluate Erlang expressions on an Erlang node (``repg2_probe:eval/1``) and return the value."""
    return rpc.call(node, "repg2_probe", "eval", [text.encode()])


# == Erlang to Python ============================================================


def test_net_adm_ping_from_erlang_gives_pong(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """net_adm:ping(PyNode) on a real Erlang node answers pong (net_kernel answers {is_auth, Node})."""
    c, e = mixed
    _a, b = c.nodes
    assert evaluate(e.name, f"net_adm:ping('{b}').") == "pong"
    assert b in rpc.call(e.name, "erlang", "nodes", [])


def test_every_term_of_the_mapping_round_trips_through_a_python_process(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """An Erlang process sends every kind of term to a registered Python process, which echoes each: all =:=."""
    c, e = mixed
    _a, b = c.nodes
    c.rpc(b, nf.register_echo, "interop_echo")
    count, bad = rpc.call(e.name, "repg2_probe", "echo_all", ["interop_echo", b])
    assert count >= 40
    assert bad == []


def test_erlangs_terms_decode_to_the_python_mapping(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """The same table, read in Python: atoms as str, strings as lists, binaries as bytes, maps as dicts."""
    _c, e = mixed
    terms = rpc.call(e.name, "repg2_probe", "terms", [])
    assert terms[:4] == ["ok", True, False, "undefined"]
    assert "ök" in terms and "原子" in terms
    assert 2**1000 in terms and -(2**64) in terms
    assert [ord(ch) for ch in "a string"] in terms  # STRING_EXT is a list of integers, as Erlang sees it
    assert external.ImproperList((1,), "improper") in terms
    assert {b"k": [1], (1, 2): "x", 3: 4.0} in terms
    pids = [t for t in terms if isinstance(t, Pid)]
    assert len(pids) == 1 and erlang.node(pids[0]) == e.name
    assert list(range(1, 301)) in terms and tuple(range(1, 301)) in terms


# == Links, monitors, deaths, both ways =============================================


def test_python_monitors_an_erlang_process_killed_with_kill(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """A Python monitor on an Erlang process: exit(P, kill) there gives 'DOWN' with killed here."""
    _c, e = mixed
    victim = rpc.call(e.name, "repg2_probe", "spawn_waiter", [])
    ref = erlang.monitor("process", victim)
    assert rpc.call(e.name, "erlang", "exit", [victim, "kill"]) is True
    assert recv(lambda m: isinstance(m, tuple) and m[:2] == ("DOWN", ref))[4] == "killed"


def test_erlang_monitors_a_python_process_killed_with_kill(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """An Erlang monitor on a Python process: exit(P, kill) here gives 'DOWN' with killed there."""
    _c, e = mixed
    victim = erlang.spawn(member_loop)
    me = erlang.self()
    rpc.call(e.name, "repg2_probe", "spawn_monitor_of", [victim, me])
    recv(lambda m: isinstance(m, tuple) and m[0] == "monitoring")
    erlang.exit(victim, "kill")
    assert recv(lambda m: isinstance(m, tuple) and m[0] == "down") == ("down", "killed")


def test_links_cross_both_ways(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """A Python process linked to an Erlang one gets its exit signal, and the other way round."""
    _c, e = mixed
    erlang.process_flag("trap_exit", True)
    try:
        theirs = rpc.call(e.name, "repg2_probe", "spawn_waiter", [])
        erlang.link(theirs)
        assert rpc.call(e.name, "erlang", "exit", [theirs, "bye"]) is True
        assert recv(lambda m: isinstance(m, tuple) and m[:2] == ("EXIT", theirs))[2] == "bye"
    finally:
        erlang.process_flag("trap_exit", False)
    # The other way: an Erlang process trapping exits links to ours, which then exits.
    ours = erlang.spawn(nf.wait_then_exit)
    rpc.call(e.name, "repg2_probe", "spawn_linker", [ours, erlang.self()])
    recv(lambda m: m == "linked")
    erlang.send(ours, ("exit", "from_python"))
    assert recv(lambda m: isinstance(m, tuple) and m[0] == "erl_saw") == ("erl_saw", "from_python")


def test_a_killed_erlang_node_gives_noconnection_and_nodedown_here(cluster: Any, erl_factory: Any) -> None:
    """The Erlang node's OS process killed: monitors here fire noconnection, then nodedown."""
    c: Cluster = cluster(1, ticktime=TICKTIME)
    e = erl_factory("victim", c.cookie)
    assert net_kernel.connect_node(e.name) is True
    net_kernel.monitor_nodes(True)
    try:
        theirs = rpc.call(e.name, "repg2_probe", "spawn_waiter", [])
        ref = erlang.monitor("process", theirs)
        e.kill()
        assert recv(lambda m: isinstance(m, tuple) and m[:2] == ("DOWN", ref))[4] == "noconnection"
        assert recv(lambda m: m == ("nodedown", e.name)) == ("nodedown", e.name)
    finally:
        net_kernel.monitor_nodes(False)


def test_a_killed_python_node_gives_noconnection_and_nodedown_on_erlang(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """Python node b killed (SIGKILL): an Erlang monitor of its process fires noconnection; nodes() drops it."""
    c, e = mixed
    _a, b = c.nodes
    ours = c.spawn(b, member_loop)
    me = erlang.self()
    rpc.call(e.name, "repg2_probe", "spawn_monitor_of", [ours, me])
    recv(lambda m: isinstance(m, tuple) and m[0] == "monitoring")
    c.kill(b)
    assert recv(lambda m: isinstance(m, tuple) and m[0] == "down") == ("down", "noconnection")
    wait_until(lambda: b not in rpc.call(e.name, "erlang", "nodes", []), "the Erlang node to drop b")


# == rpc both ways ============================================================================


def test_rpc_from_python_calls_erlang(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """rpc.call(ErlNode, 'erlang', 'node', []) runs Erlang's erlang:node/0; failures are badrpc."""
    _c, e = mixed
    assert rpc.call(e.name, "erlang", "node", []) == e.name
    assert rpc.call(e.name, "lists", "reverse", [[1, 2, 3]]) == [3, 2, 1]
    undef = rpc.call(e.name, "no_such_module", "f", [])
    assert undef[0] == "badrpc" and undef[1][0] == "EXIT" and undef[1][1][0] == "undef"


def test_rpc_from_erlang_runs_python_functions(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """Erlang's rpc:call(PyNode, 'repg2.erlang', node, []) runs the Python function (through erpc's spawn request)."""
    c, e = mixed
    _a, b = c.nodes
    assert evaluate(e.name, f"rpc:call('{b}', 'repg2.erlang', node, []).") == b
    assert evaluate(e.name, f"rpc:call('{b}', erlang, node, []).") == b  # the translation's module names
    assert evaluate(e.name, f"rpc:call('{b}', builtins, len, [[1, 2, 3]]).") == 3
    failed = evaluate(e.name, f"rpc:call('{b}', 'repg2.testing.nodefuns', fail_with_value_error, [<<\"no\">>]).")
    assert failed[0] == "badrpc"
    assert evaluate(e.name, f"gen_server:call({{rex, '{b}'}}, {{call, erlang, node, [], user}}).") == b


# == Cookies and hostile bytes ========================================================


def test_a_wrong_cookie_is_refused_in_both_directions(cluster: Any, erl_factory: Any, tmp_path: Path) -> None:
    """An Erlang node with another cookie: we cannot connect to it, and its connect_node to us answers false."""
    c: Cluster = cluster(1, ticktime=TICKTIME)
    a = c.nodes[0]
    e = erl_factory(
        "stranger",
        "some-other-cookie",
        args=["-eval", f"io:format(\"connect_node ~p~n\", [net_kernel:connect_node('{a}')])"],
    )
    assert net_kernel.connect_node(e.name) is False
    wait_until(lambda: "connect_node" in Path(e.log).read_text(errors="replace"), "the Erlang node's own attempt")
    assert "connect_node false" in Path(e.log).read_text(errors="replace")
    assert e.name not in erlang.nodes()


def test_garbage_and_oversized_frames_leave_the_python_node_serving_erlang(
    mixed: tuple[Cluster, otp.ErlangNode],
) -> None:
    """Garbage and an oversized length to a Python node close those sockets; its Erlang peer is still served."""
    c, e = mixed
    _a, b = c.nodes
    for attack in (b"\x00\x05GARBA", struct.pack(">H", 65535) + bytes(100), b"GET / HTTP/1.0\r\n\r\n"):
        with connect_to(port_of(b)) as sock:
            sock.sendall(attack)
            assert closed_by_peer(sock)
    assert evaluate(e.name, f"rpc:call('{b}', erlang, node, []).") == b


# == A mixed cluster ==================================================================


def test_two_erlang_and_two_python_nodes_form_one_cluster(cluster: Any, erl_factory: Any) -> None:
    """Two Erlang and two Python nodes: each lists the other three, a message from each to each arrives, pg2 runs."""
    c: Cluster = cluster(2, ticktime=TICKTIME)
    a, b = c.nodes
    e1 = erl_factory("e1", c.cookie)
    # The Erlang nodes meet first, by themselves; then a joins them through e1: a asks e1's rex for its
    # nodes (and meets e2), and asks b to meet e1, which introduces b to e2 the same way (D26).
    met = f"io:format(\"met ~p~n\", [net_kernel:connect_node('{e1.name}')])"
    e2 = erl_factory("e2", c.cookie, args=["-eval", met])
    everyone = sorted([a, b, e1.name, e2.name])
    wait_until(lambda: "met true" in Path(e2.log).read_text(errors="replace"), "e1 and e2 to meet")
    assert net_kernel.connect_node(e1.name) is True
    for node in everyone:
        others = sorted(set(everyone) - {node})
        nodes_of = c.nodes_of if node in (a, b) else (lambda n: rpc.call(n, "erlang", "nodes", []))
        wait_until(
            lambda node=node, others=others, nodes_of=nodes_of: sorted(nodes_of(node)) == others,
            f"{node} to list the other three",
        )
    # A message from each to each: every node sends {from, Node} to 'interop_inbox' on every other.
    for node in (e1.name, e2.name):
        rpc.call(node, "repg2_probe", "collect", ["interop_inbox"])
    for node in (a, b):
        c.rpc(node, nf.start_inbox, "interop_inbox")
    for node in everyone:
        targets = sorted(set(everyone) - {node})
        if node in (a, b):
            c.rpc(node, nf.send_each, "interop_inbox", targets)
        else:
            rpc.call(node, "repg2_probe", "send_each", ["interop_inbox", targets])
    for node in everyone:
        expected = sorted(("from", other) for other in set(everyone) - {node})
        if node in (a, b):
            wait_until(lambda node=node: sorted(c.rpc(node, nf.inbox, "interop_inbox")) == expected, f"{node}'s inbox")
        else:
            wait_until(
                lambda node=node: sorted(rpc.call(node, "repg2_probe", "collect", ["interop_inbox"])) == expected,
                f"{node}'s inbox",
            )
    # pg2 still runs on the Python nodes (the Erlang nodes have no pg2: they are bad nodes of its multi_call).
    for node in (a, b):
        c.rpc(node, pg2.start)
    member = c.spawn(b, member_loop)
    assert pg2.create("mixed") == "ok" and pg2.join("mixed", member) == "ok"
    assert c.rpc(b, pg2.get_members, "mixed") == [member] == pg2.get_members("mixed")


def test_global_sync_from_an_erlang_node_is_ignored_quietly(
    mixed: tuple[Cluster, otp.ErlangNode], caplog: pytest.LogCaptureFixture
) -> None:
    """An Erlang peer's global name sync (init_connect...) goes unanswered and unlogged above debug (D51)."""
    c, e = mixed
    with caplog.at_level(logging.INFO, logger="repg2.global_"):
        assert net_kernel.disconnect(e.name) is True
        wait_until(lambda: e.name not in erlang.nodes(), "the disconnect")
        assert net_kernel.connect_node(e.name) is True
        assert rpc.call(e.name, "erlang", "node", []) == e.name  # a round trip after global's casts
    assert "global_name_server received an unexpected message" not in caplog.text
    assert c.nodes[0] == erlang.node()


def test_the_python_node_is_listed_by_erlangs_port_mapper_queries(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """net_adm:names() on the Erlang node lists the Python nodes, registered with epmd's protocol."""
    c, e = mixed
    names = evaluate(e.name, '{ok, Names} = net_adm:names("127.0.0.1"), [N || {N, _} <- Names].')
    for node in c.nodes:
        assert [ord(ch) for ch in node.split("@")[0]] in names


# == The shell joins Erlang ==========================================================


def test_the_shell_connects_to_a_real_erlang_node(erl_factory: Any, tmp_path: Path) -> None:
    """``python -m repg2 shell --connect erl@HOST`` joins an `erl -name` node: nodes(), rpc and a send both ways."""
    from shell_driver import Shells

    cookie = "mixed-room"
    teacher = erl_factory("teacher", cookie)  # a plain `erl -name` node: the teacher starts nothing else
    with Shells(tmp_path) as shells:
        attendee = shells.start(f"py{os.getpid()}@127.0.0.1", cookie, "--connect", teacher.name, "--ticktime", "4")
        assert f"connected to {teacher.name}" in attendee.seen
        assert attendee.eval("nodes()") == [teacher.name]
        assert attendee.eval(f"rpc.call({teacher.name!r}, 'erlang', 'node', [])") == teacher.name
        assert attendee.eval(f"rpc.call({teacher.name!r}, 'lists', 'sum', [[1, 2, 3]])") == 6


# == pg: one scope shared by Python and Erlang nodes ====================================


def _members(node: str, group: str) -> Any:
    """Return ``pg:get_members(Group)`` on ``node``, sorted (Erlang or Python: the same rpc)."""
    found = rpc.call(node, "pg", "get_members", [group])
    return sorted(found) if isinstance(found, list) else found


@pytest.fixture
def pg_mixed(mixed: tuple[Cluster, otp.ErlangNode]) -> Iterator[tuple[Cluster, otp.ErlangNode]]:
    """The mixed cluster with the default pg scope running on every node, Python and Erlang."""
    c, e = mixed
    for node in c.nodes:
        c.rpc(node, nf.start_pg_scope)
    assert rpc.call(e.name, "pg", "start_link", [])[0] == "ok"
    yield c, e
    for node in c.nodes:
        c.rpc(node, nf.stop_pg_scope)


def test_pg_members_joined_on_either_side_are_listed_on_both(pg_mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """A member joined on the Erlang node is listed by pg on the Python nodes, and the other way round."""
    c, e = pg_mixed
    a, b = c.nodes
    ours = c.spawn(b, member_loop)
    assert c.rpc(b, nf.pg_join, "room", ours) == "ok"
    theirs = rpc.call(e.name, "repg2_probe", "spawn_waiter", [])
    assert rpc.call(e.name, "pg", "join", ["room", theirs]) == "ok"
    both = sorted([ours, theirs])
    for node in (a, b, e.name):
        wait_until(lambda node=node: _members(node, "room") == both, f"{node} to list both members")
    assert rpc.call(e.name, "pg", "get_local_members", ["room"]) == [theirs]


def test_pg_a_members_death_propagates_both_ways(pg_mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """A Python member killed leaves the Erlang node's view; an Erlang member killed leaves the Python nodes'."""
    c, e = pg_mixed
    a, b = c.nodes
    ours = c.spawn(b, member_loop)
    theirs = rpc.call(e.name, "repg2_probe", "spawn_waiter", [])
    c.rpc(b, nf.pg_join, "room", ours)
    rpc.call(e.name, "pg", "join", ["room", theirs])
    wait_until(lambda: _members(e.name, "room") == sorted([ours, theirs]), "both members on e")
    c.rpc(b, nf.kill, ours)
    for node in (a, b, e.name):
        wait_until(lambda node=node: _members(node, "room") == [theirs], f"{node} to drop the Python member")
    rpc.call(e.name, "erlang", "exit", [theirs, "kill"])
    for node in (a, b, e.name):
        wait_until(lambda node=node: _members(node, "room") == [], f"{node} to drop the Erlang member")


def test_pg_a_nodes_death_propagates_both_ways(cluster: Any, erl_factory: Any) -> None:
    """The Erlang node killed: its members leave the Python view; a Python node killed: its leave Erlang's."""
    c: Cluster = cluster(2, ticktime=TICKTIME)
    a, b = c.nodes
    e = erl_factory("pgdeath", c.cookie)
    assert net_kernel.connect_node(e.name) is True
    for node in c.nodes:
        c.rpc(node, nf.start_pg_scope)
    rpc.call(e.name, "pg", "start_link", [])
    try:
        ours = c.spawn(b, member_loop)
        c.rpc(b, nf.pg_join, "room", ours)
        theirs = rpc.call(e.name, "repg2_probe", "spawn_waiter", [])
        rpc.call(e.name, "pg", "join", ["room", theirs])
        wait_until(lambda: _members(a, "room") == sorted([ours, theirs]), "a to list both")
        wait_until(lambda: _members(e.name, "room") == sorted([ours, theirs]), "e to list both")
        c.kill(b)
        wait_until(lambda: _members(e.name, "room") == [theirs], "e to drop the members of the killed Python node")
        e.kill()
        wait_until(lambda: _members(a, "room") == [], "a to drop the members of the killed Erlang node")
    finally:
        c.rpc(a, nf.stop_pg_scope)


def test_pg_disconnect_and_reconnect_resync_both_sides(pg_mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """After disconnect_node and a reconnect, pg's discover/sync brings Python and Erlang back to one view."""
    c, e = pg_mixed
    a, _b = c.nodes
    ours = erlang.spawn(member_loop)
    from repg2 import pg

    assert pg.join("room", ours) == "ok"
    theirs = rpc.call(e.name, "repg2_probe", "spawn_waiter", [])
    rpc.call(e.name, "pg", "join", ["room", theirs])
    wait_until(lambda: _members(e.name, "room") == sorted([ours, theirs]), "e to list both")
    assert net_kernel.disconnect(e.name) is True
    wait_until(lambda: pg.get_members("room") == [ours], "a to drop e's member on the disconnect")
    # While apart, each side changes: a new member here, a leave there.
    extra = erlang.spawn(member_loop)
    pg.join("room", extra)
    assert net_kernel.connect_node(e.name) is True  # reconnect: the scopes discover each other and sync
    expected = sorted([ours, extra, theirs])
    wait_until(lambda: sorted(pg.get_members("room")) == expected, "a to see e's member again")
    wait_until(lambda: _members(e.name, "room") == expected, "e to see a's members again")
    erlang.exit(ours, "kill")
    erlang.exit(extra, "kill")


def test_erlang_monitors_a_python_process_by_its_registered_name(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """erlang:monitor(process, {Name, PyNode}) from Erlang: killing the named process gives a 'DOWN' with killed."""
    c, e = mixed
    _a, b = c.nodes
    c.rpc(b, nf.register_as, "interop_named")
    me = erlang.self()
    rpc.call(e.name, "repg2_probe", "spawn_monitor_of", [("interop_named", b), me])
    recv(lambda m: isinstance(m, tuple) and m[0] == "monitoring")
    c.rpc(b, nf.kill, c.rpc(b, erlang.whereis, "interop_named"))
    assert recv(lambda m: isinstance(m, tuple) and m[0] == "down") == ("down", "killed")


def test_erlangs_global_grants_and_holds_our_locks(mixed: tuple[Cluster, otp.ErlangNode]) -> None:
    """global_.trans over a Python and an Erlang node: Erlang's global_name_server holds the lock during the fun."""
    from repg2 import global_

    _c, e = mixed
    lock_id = ("interop_resource", erlang.self())

    def inside() -> Any:
        return rpc.call(e.name, "ets", "tab2list", ["global_locks"])

    rows = global_.trans(lock_id, inside, [erlang.node(), e.name])
    assert [row[0] for row in rows] == ["interop_resource"]  # Erlang's own table holds our lock
    assert rpc.call(e.name, "ets", "tab2list", ["global_locks"]) == []  # and released it after


def test_erlangs_partition_prevention_does_not_act_on_a_python_node(cluster: Any, erl_factory: Any) -> None:
    """e1 cuts e2: a Python node stays connected to both, an overlapping partition OTP's global would end (D51)."""
    c: Cluster = cluster(1, ticktime=TICKTIME)
    e1 = erl_factory("ppo1", c.cookie)
    met = f"io:format(\"met ~p~n\", [net_kernel:connect_node('{e1.name}')])"
    e2 = erl_factory("ppo2", c.cookie, args=["-eval", met])
    wait_until(lambda: "met true" in Path(e2.log).read_text(errors="replace"), "e1 and e2 to meet")
    assert net_kernel.connect_node(e1.name) is True
    wait_until(lambda: sorted(erlang.nodes()) == sorted([e1.name, e2.name]), "this node to meet both")
    assert rpc.call(e1.name, "application", "get_env", ["kernel", "prevent_overlapping_partitions"]) == ("ok", True)
    assert rpc.call(e1.name, "erlang", "disconnect_node", [e2.name]) is True
    wait_until(lambda: e2.name not in rpc.call(e1.name, "erlang", "nodes", []), "e1 to drop e2")
    # Between Erlang nodes synced by global, the third node would now be disconnected from one side;
    # this node never synced with their global, so nothing acts on it: it stays connected to both.
    assert rpc.call(e2.name, "erlang", "nodes", []) == [erlang.node()]
    assert sorted(erlang.nodes()) == sorted([e1.name, e2.name])
