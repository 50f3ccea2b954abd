"""pg2 under failures: a model-based state machine over a real cluster of four nodes.

The state machine drives four real nodes (this process ``a`` and three
children) with random sequences of pg2 writes and failures, and checks,
after every step, every node's view against a small model of what pg2
*must* show. The model is the specification of pg2's failure behaviour:

- a write goes to the writer's side only: every live node it is connected
  to, never across a partition and never to a dead node;
- ``create``, ``join`` and ``leave`` check the group on the *calling* node
  only; each server then applies a join or leave only if it knows the group;
- a member is seen by a node only while it is alive and that node can reach
  it: a partition removes, on each side, the members living on the other
  side (their monitors fire ``noconnection``); a join of a dead, stale or
  unreachable pid is undone by the monitor's ``'DOWN'``;
- a heal is an exchange that only *adds* (the multiset union, per pid the
  larger join count): a leave or a delete made on one side is undone by the
  other side, a death is not;
- a killed node's members vanish everywhere, its groups stay; restarted,
  it gets every group back by exchange once pg2 is started on it;
- a crashed pg2 server comes back empty and is refilled by the exchange
  from the nodes it can reach (from none, if it is alone on its side).

After each step the test waits, with a deadline and never a fixed sleep,
until every live node shows the model's view and holds no global lock, then
runs ``sane`` on every node and ``wsane`` on every side.

Size: ``REPG2_SM_EXAMPLES`` examples of up to ``REPG2_SM_STEPS`` steps
(default 40 x 20, about a minute on 2 cores; ``REPG2_SLOW=1`` makes it
400 x 40). One cluster serves every example and is reset in between. A
failure prints the shrunk steps (hypothesis) and ``REPG2_SM_SEED=<seed>``,
which replays the same run. The counters printed at the end show how often
each rule ran; ``--hypothesis-show-statistics`` shows the same as events.

Faults in the middle of a write are in ``test_faults_mid_write.py``.
"""

from __future__ import annotations

import copy
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support import WRITE_DEADLINE, start_pg2_everywhere, wait_until

from repg2 import erlang, gen_server, kernel, pg2
from repg2.erlang import Pid
from repg2.testing import Cluster, member_loop, nodefuns, stop_pg2, wsane

pytestmark = [pytest.mark.distributed]

SLOW = os.environ.get("REPG2_SLOW") == "1"
EXAMPLES = int(os.environ.get("REPG2_SM_EXAMPLES", "400" if SLOW else "40"))
STEPS = int(os.environ.get("REPG2_SM_STEPS", "40" if SLOW else "20"))
SEED = int(os.environ.get("REPG2_SM_SEED", str(random.randrange(2**32))))
GROUPS = ["g0", "g1", ("g", 2)]  # a tuple name too: any term is a name

RULES: Counter[str] = Counter()  # how often each rule ran, over the whole test
_SPAWNED: list[Pid] = []  # every member process the machine started, to stop them between examples


def letter(node: str) -> str:
    """The letter of a node name: ``'b'`` for ``'b@127.0.0.1'`` (or ``'gw0_b@...'``)."""
    return node.split("@")[0][-1]


# == The model =====================================================================

View = dict[Any, Counter[Pid]]  # group -> member pid -> join count (no zero counts)


class Model:
    """What pg2 must show on every node, given the steps so far."""

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = nodes
        self.up: set[str] = set(nodes)
        self.sides: list[set[str]] | None = None  # the two sides of a partition, or None
        self.views: dict[str, View] = {n: {} for n in nodes}
        self.alive: dict[Pid, str] = {}  # live member processes and their nodes

    def side(self, node: str) -> set[str]:
        """The live nodes ``node`` can reach, itself included."""
        if self.sides is None:
            return set(self.up)
        (mine,) = [s for s in self.sides if node in s]
        return mine & self.up

    def reachable(self, pid: Pid, writer: str) -> bool:
        """Whether the nodes of ``writer``'s side can monitor ``pid`` without an immediate 'DOWN'."""
        return pid in self.alive and self.alive[pid] in self.side(writer)

    def create(self, writer: str, group: Any) -> str:
        if group not in self.views[writer]:  # create checks the caller's table, and sends nothing if known
            for node in self.side(writer):
                self.views[node].setdefault(group, Counter())
        return "ok"

    def delete(self, writer: str, group: Any) -> str:
        for node in self.side(writer):
            self.views[node].pop(group, None)
        return "ok"

    def join(self, writer: str, group: Any, pid: Pid) -> Any:
        if group not in self.views[writer]:
            return ("error", ("no_such_group", group))
        if self.reachable(pid, writer):  # otherwise the join is made, then undone by the monitor's 'DOWN'
            for node in self.side(writer):
                if group in self.views[node]:
                    self.views[node][group][pid] += 1
        return "ok"

    def leave(self, writer: str, group: Any, pid: Pid) -> Any:
        if group not in self.views[writer]:
            return ("error", ("no_such_group", group))
        for node in self.side(writer):
            members = self.views[node].get(group)
            if members is not None and members[pid] > 0:
                members[pid] -= 1
                if members[pid] == 0:
                    del members[pid]
        return "ok"

    def _forget(self, pids: set[Pid], nodes: set[str] | None = None) -> None:
        for node in self.up if nodes is None else nodes:
            for members in self.views[node].values():
                for pid in pids & set(members):
                    del members[pid]

    def kill_member(self, pid: Pid) -> None:
        if self.alive.pop(pid, None) is not None:
            self._forget({pid})

    def kill_node(self, node: str) -> None:
        self.up.discard(node)
        self.views[node] = {}
        dead = {pid for pid, where in self.alive.items() if where == node}
        for pid in dead:
            del self.alive[pid]
        self._forget(dead)

    def restart_node(self, node: str) -> None:
        assert self.sides is None
        self.up.add(node)
        self.views[node] = copy.deepcopy(self.views[self.nodes[0]])  # every other node has the same view

    def partition(self, one: set[str], two: set[str]) -> None:
        self.sides = [set(one), set(two)]
        for node in self.up:
            mine = self.side(node)
            self._forget({pid for pid, where in self.alive.items() if where not in mine}, {node})

    def heal(self) -> None:
        union: View = {}
        for node in self.up:
            for group, members in self.views[node].items():
                merged = union.setdefault(group, Counter())
                for pid, count in members.items():
                    merged[pid] = max(merged[pid], count)
        self.sides = None
        for node in self.up:
            self.views[node] = copy.deepcopy(union)

    def crash_pg2(self, node: str) -> None:
        others = sorted(self.side(node) - {node})
        self.views[node] = copy.deepcopy(self.views[others[0]]) if others else {}

    def mismatch(self, node: str, seen: dict[str, Any] | None) -> str | None:
        """Say how ``node``'s snapshot differs from the model (None when it matches)."""
        if seen is None:
            return f"{node}: pg2 is not running"
        want = self.views[node]
        if sorted(map(repr, seen["groups"])) != sorted(map(repr, want)):
            return f"{node}: groups {seen['groups']!r}, model {sorted(want, key=repr)!r}"
        for group, members in want.items():
            if Counter(seen["members"][group]) != members:
                return f"{node}: members of {group!r} {seen['members'][group]!r}, model {sorted(members.elements())!r}"
        if seen["locks"]:
            return f"{node}: global locks still held: {seen['locks']!r}"
        return None


# == The cluster shared by every example ==============================================

_CLUSTER: Cluster | None = None


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[Cluster]:
    """Four nodes with pg2 running on all; afterwards this node gets a fresh kernel_safe_sup."""
    global _CLUSTER
    stop_pg2()
    with Cluster(4) as cluster:
        start_pg2_everywhere(cluster)
        _CLUSTER = cluster
        try:
            yield cluster
        finally:
            _CLUSTER = None
    stop_pg2()
    # The machine crashes pg2 here too: leave no restarts on the supervisor's clock for later tests.
    sup = erlang.whereis(kernel.SAFE_SUP)
    if sup != "undefined":
        gen_server.stop(sup, "shutdown")
    kernel.boot()


def reset(cluster: Cluster) -> None:
    """Bring the cluster back to the start: all nodes up and meshed, no members, empty pg2 everywhere."""
    cluster.heal()
    for node in cluster.nodes[1:]:
        if node not in cluster.live_nodes():
            cluster.restart(node)
    live = cluster.live_nodes()
    for pid in _SPAWNED:
        if pid.node in live:
            cluster.rpc(pid.node, nodefuns.kill, pid)
    _SPAWNED.clear()
    # Stopping every server before starting any: no exchange can carry an old group into a new table.
    for node in live:
        cluster.rpc(node, stop_pg2)
    for node in live:
        cluster.rpc(node, nodefuns.start_pg2)

    def empty() -> bool:
        seen = [cluster.rpc(node, nodefuns.snapshot) for node in live]
        return all(s is not None and s["groups"] == [] and s["locks"] == [] for s in seen)

    wait_until(empty, "an empty pg2 and no locks on every node")


# == The state machine ===============================================================


class PG2Machine(RuleBasedStateMachine):
    """Random pg2 writes, member deaths, node kills and restarts, partitions, heals and server crashes."""

    pids = Bundle("pids")

    def __init__(self) -> None:
        super().__init__()
        assert _CLUSTER is not None, "run through TestPG2StateMachine (it needs the shared_cluster fixture)"
        self.cluster = _CLUSTER
        self.by_letter = {letter(n): n for n in self.cluster.nodes}
        reset(self.cluster)
        self.model = Model(self.cluster.nodes)

    # -- helpers --------------------------------------------------------------------

    def node(self, data: st.DataObject, label: str, among: set[str] | None = None) -> str:
        """Draw a live node (by letter, so the printed steps stay short)."""
        pool = sorted(letter(n) for n in (self.model.up if among is None else among))
        return self.by_letter[data.draw(st.sampled_from(pool), label=label)]

    def write(self, node: str, fun: Callable[..., Any], *args: Any) -> Any:
        """Run one pg2 write on ``node``; a write that takes WRITE_DEADLINE is stuck and fails the test."""
        return self.cluster.rpc(node, fun, *args, timeout=WRITE_DEADLINE)

    def count(self, name: str, detail: str | None = None) -> None:
        RULES[name] += 1
        event(name if detail is None else f"{name}: {detail}")

    # -- rules ------------------------------------------------------------------------

    @initialize(target=pids)
    def first_member(self) -> Pid:
        """Start with a group and one member on this node, so that every rule has something to act on."""
        a = self.cluster.nodes[0]
        pid = self.spawn_on(a)
        assert self.write(a, pg2.create, GROUPS[0]) == self.model.create(a, GROUPS[0])
        assert self.write(a, pg2.join, GROUPS[0], pid) == self.model.join(a, GROUPS[0], pid)
        return pid

    def spawn_on(self, node: str) -> Pid:
        pid = self.cluster.spawn(node, member_loop)
        _SPAWNED.append(pid)
        self.model.alive[pid] = node
        return pid

    @rule(target=pids, data=st.data())
    def spawn_member(self, data: st.DataObject) -> Pid:
        self.count("spawn_member")
        return self.spawn_on(self.node(data, "on"))

    @rule(group=st.sampled_from(GROUPS), data=st.data())
    def create(self, group: Any, data: st.DataObject) -> None:
        writer = self.node(data, "writer")
        self.count("create", "known here" if group in self.model.views[writer] else "new here")
        assert self.write(writer, pg2.create, group) == self.model.create(writer, group)

    @rule(group=st.sampled_from(GROUPS), data=st.data())
    def delete(self, group: Any, data: st.DataObject) -> None:
        writer = self.node(data, "writer")
        self.count("delete", "known here" if group in self.model.views[writer] else "unknown here")
        assert self.write(writer, pg2.delete, group) == self.model.delete(writer, group)

    @rule(group=st.sampled_from(GROUPS), pid=pids, times=st.integers(1, 2), data=st.data())
    def join(self, group: Any, pid: Pid, times: int, data: st.DataObject) -> None:
        writer = self.node(data, "writer")
        if pid not in self.model.alive:
            kind = "dead or stale pid"
        elif not self.model.reachable(pid, writer):
            kind = "pid across the partition"
        else:
            kind = "local pid" if pid.node == writer else "remote pid"
        self.count("join", f"{kind}, x{times}" if group in self.model.views[writer] else "no such group")
        for _ in range(times):
            assert self.write(writer, pg2.join, group, pid) == self.model.join(writer, group, pid)

    @rule(group=st.sampled_from(GROUPS), pid=pids, data=st.data())
    def leave(self, group: Any, pid: Pid, data: st.DataObject) -> None:
        writer = self.node(data, "writer")
        member = group in self.model.views[writer] and self.model.views[writer][group][pid] > 0
        self.count("leave", "member" if member else "not a member")
        assert self.write(writer, pg2.leave, group, pid) == self.model.leave(writer, group, pid)

    @rule(pid=pids)
    def kill_member(self, pid: Pid) -> None:
        self.count("kill_member", "alive" if pid in self.model.alive else "already dead")
        if pid in self.model.alive:
            self.cluster.rpc(pid.node, nodefuns.kill, pid)
            self.model.kill_member(pid)

    @precondition(lambda self: len(self.model.up) > 1)
    @rule(data=st.data())
    def kill_node(self, data: st.DataObject) -> None:
        node = self.node(data, "node", self.model.up - {self.cluster.nodes[0]})
        self.count("kill_node", "partitioned" if self.model.sides else "connected")
        self.cluster.kill(node)
        self.model.kill_node(node)

    @precondition(lambda self: self.model.sides is None and len(self.model.up) < len(self.model.nodes))
    @rule(data=st.data())
    def restart_node(self, data: st.DataObject) -> None:
        node = self.node(data, "node", set(self.model.nodes) - self.model.up)
        self.count("restart_node")
        self.cluster.restart(node)
        self.cluster.rpc(node, nodefuns.start_pg2)  # pg2 starts on first use; until then writes miss it
        self.model.restart_node(node)

    @precondition(lambda self: self.model.sides is None and len(self.model.up) > 1)
    @rule(data=st.data())
    def partition(self, data: st.DataObject) -> None:
        up = sorted(self.model.up)
        one = set(data.draw(st.lists(st.sampled_from(up), min_size=1, max_size=len(up) - 1, unique=True), label="side"))
        two = set(up) - one
        self.count("partition", f"{len(one)}|{len(two)}")
        self.cluster.partition(sorted(one), sorted(two))
        self.model.partition(one, two)

    @precondition(lambda self: self.model.sides is not None)
    @rule()
    def heal(self) -> None:
        self.count("heal")
        self.cluster.heal()
        self.model.heal()

    @rule(data=st.data())
    def crash_pg2(self, data: st.DataObject) -> None:
        node = self.node(data, "node")
        alone = self.model.side(node) == {node}
        self.count("crash_pg2", "alone on its side" if alone else "refilled by its side")
        old = self.cluster.rpc(node, nodefuns.crash_pg2)
        self.cluster.rpc(node, nodefuns.restart_pg2_server, old, timeout=WRITE_DEADLINE)
        self.model.crash_pg2(node)

    # -- the check after every step --------------------------------------------------------

    @invariant()
    def views_match_the_model(self) -> None:
        """Every live node settles on the model's view with no lock held; then sane and wsane hold."""
        live = sorted(self.model.up)
        wrong: list[str] = []  # what the last look found different from the model

        def settled() -> dict[str, Any] | None:
            seen = {node: self.cluster.rpc(node, nodefuns.snapshot) for node in live}
            wrong[:] = [m for m in (self.model.mismatch(node, seen[node]) for node in live) if m is not None]
            return None if wrong else seen

        seen = wait_until(settled, lambda: f"the cluster to settle on the model; still {wrong}")
        for node in live:
            assert seen[node]["sane"] == "ok", seen[node]["sane"]
        for side in [self.model.side(n) for n in live if n == min(self.model.side(n))]:
            wsane(sorted(side), self.cluster.rpc)


ALL_RULES = {"spawn_member", "create", "delete", "join", "leave", "kill_member", "kill_node"}
ALL_RULES |= {"restart_node", "partition", "heal", "crash_pg2"}
CHECK_COVERAGE = EXAMPLES >= 40 and STEPS >= 20  # smaller runs (a quick replay) may well miss a rule


@pytest.mark.timeout(7200 if SLOW else 900)  # generation takes ~1-2 min; shrinking a failure may take 5 more
@pytest.mark.usefixtures("shared_cluster")
class TestPG2StateMachine(seed(SEED)(PG2Machine).TestCase):  # type: ignore[misc, valid-type]
    """pg2 on four real nodes always settles on the model's view, under random writes and failures.

    A unittest class, as hypothesis makes it: so that the pytest plugin
    sees a hypothesis test and ``--hypothesis-show-statistics`` reports the
    rules' events. Hypothesis switches rules off at random per example
    ("swarm testing"), so a run may now and then miss a rare rule (``heal``
    needs a ``partition`` first); then up to three top-up rounds of
    ``EXAMPLES // 4`` examples run, with seeds ``SEED + 1``, ``SEED + 2``...
    """

    settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        database=None,  # replay with REPG2_SM_SEED instead: nothing written into the repository
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )

    def runTest(self) -> None:  # noqa: N802 - unittest's name
        RULES.clear()
        started = time.monotonic()
        seeds, examples = [SEED], EXAMPLES
        try:
            super().runTest()
            while CHECK_COVERAGE and not ALL_RULES <= set(RULES) and len(seeds) < 4:
                seeds.append(SEED + len(seeds))
                examples = max(1, EXAMPLES // 4)
                top_up = seed(seeds[-1])(type(f"PG2MachineTopUp{len(seeds) - 1}", (PG2Machine,), {}))
                run_state_machine_as_test(top_up, settings=settings(self.settings, max_examples=examples))
        except BaseException as exc:
            exc.add_note(
                f"replay this run with REPG2_SM_SEED={seeds[-1]} REPG2_SM_EXAMPLES={examples} REPG2_SM_STEPS={STEPS}"
            )
            raise
        finally:
            RULES["(seconds)"] = round(time.monotonic() - started)
            RULES["(rounds)"] = len(seeds)

    runTest.is_hypothesis_test = True  # type: ignore[attr-defined]


def test_every_rule_was_exercised(shared_cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    """The state machine's run above reached every rule (printed: how often each ran)."""
    runs = {name: n for name, n in RULES.items() if name in ALL_RULES}
    with capsys.disabled():
        print(
            f"\npg2 state machine: seed {SEED}, {EXAMPLES} examples x up to {STEPS} steps, "
            f"{sum(runs.values())} rule runs in {RULES['(seconds)']} s ({RULES['(rounds)']} round(s))"
        )
        for name in sorted(ALL_RULES):
            print(f"  {name:14} {RULES[name]}")
    if not runs:
        pytest.skip("the state machine did not run (deselected?)")
    if CHECK_COVERAGE:
        assert set(runs) == ALL_RULES, f"rules never exercised: {sorted(ALL_RULES - set(runs))}"
