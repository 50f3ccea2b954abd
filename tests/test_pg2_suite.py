"""OTP's pg2_SUITE, ported: the ``basic`` scenarios t1..t8 as data.

pg2_SUITE's ``basic`` case runs eight scripts of steps. Each step is a pg2
call with its expected result (``IGNORE`` where the suite ignores it), or
an action: start a member process, kill it, bring a node up or down. After
every call and every kill the suite runs ``sane`` on every node and
``wsane`` across them; so do we. Each script must end with no groups, an
empty ``pg2_table`` and no connected nodes.

Symbols stand for pids and nodes, as in the suite: ``SELF`` is the test's
own process, ``p1``/``p`` are member processes, ``n1`` is the peer node.
The suite's single-node case otp_7277 is in ``test_pg2.py``, its
partition cases in ``test_pg2_dist.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import wait_until

from repg2 import erlang, ets, pg2
from repg2.testing import Cluster, member_loop, wsane

pytestmark = pytest.mark.timeout(120)

IGNORE = object()  # the suite's 'ignore': any result is fine
SELF = "self"  # the test process itself


# == The scripts (pg2_SUITE:ts/0) ================================================
# A step is one of:
#   (fun, args, expected)            a pg2 call on this node
#   ("on", node, fun, args, expected) the same on another node
#   ("new", p) / ("new", node, p)    spawn a member process
#   ("kill", p)                      kill it (then sane everywhere)
#   ("nodeup", n) / ("nodedown", n)  start a peer node and pg2 on it / stop it

SCRIPTS: dict[str, list[tuple[Any, ...]]] = {
    "t1": [
        ("create", ["a"], IGNORE),
        ("which_groups", [], ["a"]),
        ("get_closest_pid", ["a"], ("error", ("no_process", "a"))),
        ("delete", ["a"], IGNORE),
    ],
    "t2": [
        ("create", ["a"], IGNORE),
        ("join", ["a", SELF], "ok"),
        ("get_closest_pid", ["a"], SELF),
        ("delete", ["a"], IGNORE),
    ],
    "t3": [
        ("create", ["a"], IGNORE),
        ("new", "p1"),
        ("leave", ["a", "p1"], "ok"),
        ("join", ["b", "p1"], ("error", ("no_such_group", "b"))),
        ("leave", ["b", "p1"], ("error", ("no_such_group", "b"))),
        ("get_members", ["c"], ("error", ("no_such_group", "c"))),
        ("get_local_members", ["c"], ("error", ("no_such_group", "c"))),
        ("join", ["a", "p1"], "ok"),
        ("leave", ["a", "p1"], "ok"),
        ("join", ["a", "p1"], "ok"),
        ("join", ["a", "p1"], "ok"),
        ("create", ["a"], IGNORE),
        ("get_closest_pid", ["a"], "p1"),
        ("leave", ["a", "p1"], "ok"),
        ("get_closest_pid", ["a"], "p1"),
        ("leave", ["a", "p1"], "ok"),
        ("get_closest_pid", ["a"], ("error", ("no_process", "a"))),
        ("kill", "p1"),
        ("delete", ["a"], IGNORE),
    ],
    "t4": [
        ("create", ["a"], IGNORE),
        ("new", "p1"),
        ("join", ["a", "p1"], "ok"),
        ("get_members", ["a"], ["p1"]),
        ("get_local_members", ["a"], ["p1"]),
        ("kill", "p1"),
        ("get_members", ["a"], []),
        ("get_local_members", ["a"], []),
        ("delete", ["a"], IGNORE),
    ],
    "t5": [
        ("create", ["a"], IGNORE),
        ("nodeup", "n1"),
        ("create", ["a"], IGNORE),
        ("join", ["a", SELF], "ok"),
        ("new", "n1", "p1"),
        ("on", "n1", "create", ["b"], IGNORE),
        ("join", ["a", "p1"], "ok"),
        ("join", ["b", "p1"], "ok"),
        ("on", "n1", "which_groups", [], ["a", "b"]),
        ("on", "n1", "join", ["a", "p1"], "ok"),
        ("on", "n1", "join", ["b", "p1"], "ok"),
        ("leave", ["a", SELF], "ok"),
        ("on", "n1", "leave", ["a", SELF], "ok"),
        ("on", "n1", "leave", ["b", "p1"], "ok"),
        ("leave", ["b", "p1"], "ok"),
        ("kill", "p1"),
        ("nodedown", "n1"),
        ("delete", ["b"], IGNORE),
        ("delete", ["a"], IGNORE),
    ],
    "t6": [
        ("create", ["a"], IGNORE),
        ("create", ["b"], IGNORE),
        ("new", "p"),
        ("join", ["a", "p"], "ok"),
        ("leave", ["b", "p"], "ok"),
        ("kill", "p"),
        ("get_members", ["a"], []),
        ("get_local_members", ["a"], []),
        ("delete", ["a"], IGNORE),
        ("delete", ["b"], IGNORE),
    ],
    "t7": [
        ("create", ["a"], IGNORE),
        ("new", "p1"),
        ("join", ["a", "p1"], "ok"),
        ("join", ["a", "p1"], "ok"),
        ("get_members", ["a"], ["p1", "p1"]),
        ("get_local_members", ["a"], ["p1", "p1"]),
        ("nodeup", "n1"),
        ("leave", ["a", "p1"], "ok"),
        ("get_members", ["a"], ["p1"]),
        ("get_local_members", ["a"], ["p1"]),
        ("on", "n1", "get_members", ["a"], ["p1"]),
        ("leave", ["a", "p1"], "ok"),
        ("get_members", ["a"], []),
        ("on", "n1", "get_members", ["a"], []),
        ("nodedown", "n1"),
        ("delete", ["a"], IGNORE),
        ("kill", "p1"),
    ],
    "t8": [
        ("create", ["a"], IGNORE),
        ("new", "p1"),
        ("join", ["a", "p1"], "ok"),
        ("join", ["a", "p1"], "ok"),
        ("delete", ["a"], IGNORE),
        ("get_members", ["a"], ("error", ("no_such_group", "a"))),
        ("kill", "p1"),
    ],
}


class Runner:
    """Runs one script, keeping the suite's symbol tables (pg2_SUITE:do/4)."""

    def __init__(self) -> None:
        self.pids: dict[str, erlang.Pid] = {SELF: erlang.self()}
        self.nodes: dict[str, str] = {}
        self.cluster: Cluster | None = None

    def close(self) -> None:
        """Stop any node the script left running (end_per_testcase)."""
        for pid in [p for s, p in self.pids.items() if s != SELF]:
            self._call(erlang.node(pid), erlang.exit, pid, "kill")
        if self.cluster is not None:
            self.cluster.__exit__(None, None, None)
            self.cluster = None

    def _call(self, node: str, fun: Callable[..., Any], *args: Any) -> Any:
        """Run ``fun(*args)`` on ``node`` (this one directly, others through the harness)."""
        if node == erlang.node():
            return fun(*args)
        assert self.cluster is not None
        return self.cluster.rpc(node, fun, *args)

    def _resolve(self, value: Any) -> Any:
        """Replace pid symbols by pids (pg2_SUITE:replace_pids/2)."""
        if isinstance(value, str) and value in self.pids:
            return self.pids[value]
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._resolve(v) for v in value)
        return value

    def check(self) -> None:
        """Run sane on every node and wsane across them (pg2_SUITE:sane/1)."""
        nodes = [erlang.node(), *self.nodes.values()]
        wsane(nodes, self._call)

    def step(self, step: tuple[Any, ...]) -> None:
        """Carry out one step and check the invariants after it (pg2_SUITE:do/4)."""
        match step:
            case ("nodeup", symbol):
                self.cluster = Cluster(2).__enter__()
                node = self.cluster.nodes[1]
                self.nodes[symbol] = node
                result = self.cluster.rpc(node, pg2.start)
                assert result[0] == "ok", result
                # The exchange between the two pg2 servers is asynchronous: ?UNTIL both agree.
                wait_until(self._agree, "both nodes to list the same groups and members")
                self.check()
            case ("nodedown", symbol):
                assert self.cluster is not None
                self.cluster.__exit__(None, None, None)
                self.cluster = None
                del self.nodes[symbol]
            case ("new", symbol):
                self.pids[symbol] = erlang.spawn(member_loop)
            case ("new", node_symbol, symbol):
                assert self.cluster is not None
                self.pids[symbol] = self.cluster.spawn(self.nodes[node_symbol], member_loop)
            case ("kill", symbol):
                pid = self.pids.pop(symbol)
                self._call(erlang.node(pid), erlang.exit, pid, "kill")
                nodes = [erlang.node(), *self.nodes.values()]
                wait_until(lambda: all(not self._has_pid(n, pid) for n in nodes), f"every table to forget {pid!r}")
                self.check()
            case ("on", node_symbol, fun, args, expected):
                self._apply(self.nodes[node_symbol], fun, args, expected)
            case (fun, args, expected):
                self._apply(erlang.node(), fun, args, expected)
            case _:
                raise AssertionError(f"bad step {step!r}")

    def _has_pid(self, node: str, pid: erlang.Pid) -> bool:
        """Say whether ``node``'s table still mentions ``pid``."""
        return any(pid in row[0] for row in self._call(node, ets.tab2list, pg2.TABLE))

    def _agree(self) -> bool:
        """Say whether every node lists the same groups and members."""
        nodes = [erlang.node(), *self.nodes.values()]
        seen = [self._view(n) for n in nodes]
        return all(s == seen[0] for s in seen)

    def _view(self, node: str) -> Any:
        """Read a node's groups and members."""
        groups = self._call(node, pg2.which_groups)
        return [(g, self._call(node, pg2.get_members, g)) for g in groups]

    def _apply(self, node: str, fun: str, args: list[Any], expected: Any) -> None:
        """Call ``pg2:fun(args)`` on ``node`` and compare with the expected result (pg2_SUITE:doit/2)."""
        result = self._call(node, getattr(pg2, fun), *self._resolve(args))
        if expected is not IGNORE:
            assert result == self._resolve(expected), f"pg2:{fun}{tuple(args)} on {node} gave {result!r}"
        if fun in ("create", "delete", "join", "leave"):
            # multi_call has returned: every connected node applied the write.
            self.check()


@pytest.fixture
def runner(fresh_pg2: list[erlang.Pid]) -> Iterator[Runner]:
    """A runner with a fresh pg2 on this node, cleaned up even when the script fails."""
    run = Runner()
    try:
        yield run
    finally:
        run.close()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_basic(name: str, runner: Runner) -> None:
    """pg2_SUITE basic: run script t1..t8; every step keeps sane/wsane; it ends with nothing left."""
    for step in SCRIPTS[name]:
        runner.step(step)
    assert runner.nodes == {}
    assert [s for s in runner.pids if s != SELF] == []
    assert pg2.which_groups() == []
    assert ets.tab2list(pg2.TABLE) == []
    assert erlang.nodes() == []
