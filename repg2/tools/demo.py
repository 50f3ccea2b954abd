"""A narrated pg2 session on three real nodes: ``python -m repg2 demo``.

This process becomes node ``a``; nodes ``b`` and ``c`` start as child OS
processes. The demo walks through what pg2 does, printing every node's view
after each step: a group created once and seen everywhere, joins from three
nodes, a member that dies, a node that is killed, a partition with writes
on both sides, and the heal, with pg2's add-only surprise. It ends on a
summary table a teacher can project.

No Erlang original: it plays the part of a shell session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from repg2 import erlang, pg2
from repg2.testing import Cluster, member_loop

__all__ = ["run"]

GROUP = "chat"
LOBBY = "lobby"  # the group deleted on one side of the partition


def _wait(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class _Narrator:
    """Prints the steps and every node's view of the group."""

    def __init__(self, cluster: Cluster, quiet: bool) -> None:
        self.cluster = cluster
        self.quiet = quiet
        self.names: dict[Any, str] = {}
        self.step = 0

    def say(self, text: str) -> None:
        """Print a narration line unless quiet."""
        if not self.quiet:
            print(text, flush=True)

    def title(self, text: str) -> None:
        """Print a numbered step title."""
        self.step += 1
        self.say(f"\n== {self.step}. {text} ==")

    def label(self, members: Any) -> str:
        """Show members by their demo names."""
        if not isinstance(members, list):
            return repr(members)
        return "[" + ", ".join(self.names.get(p, repr(p)) for p in members) + "]"

    def view(self, node: str) -> Any:
        """Read a node's members of the group (``pg2:get_members/1`` on that node)."""
        return self.cluster.rpc(node, pg2.get_members, GROUP)

    def views(self, nodes: list[str] | None = None) -> dict[str, Any]:
        """Read every live node's view."""
        return {node: self.view(node) for node in (nodes or self.cluster.nodes)}

    def show(self, nodes: list[str] | None = None) -> None:
        """Print each node's view of the group."""
        for node, members in self.views(nodes).items():
            self.say(f"   {node:<16} get_members({GROUP!r}) -> {self.label(members)}")

    def agree(self, expected: list[str], nodes: list[str] | None = None) -> None:
        """Wait until every node lists exactly ``expected`` (by demo name)."""
        want = sorted(expected)

        def done() -> bool:
            """True once every node shows the expected members."""
            return all(
                isinstance(m, list) and sorted(self.names.get(p, "?") for p in m) == want
                for m in self.views(nodes).values()
            )

        if not _wait(done):
            raise RuntimeError(f"the nodes did not agree on {want}: {self.views(nodes)}")

    def groups_agree(self, expected: list[str], nodes: list[str] | None = None) -> None:
        """Wait until every node's ``which_groups()`` is exactly ``expected``; fail if it never is."""
        want = sorted(expected)

        def done() -> bool:
            """True once every node knows exactly the expected groups."""
            return all(sorted(self.cluster.rpc(node, pg2.which_groups)) == want for node in nodes or self.cluster.nodes)

        if not _wait(done):
            seen = {node: self.cluster.rpc(node, pg2.which_groups) for node in nodes or self.cluster.nodes}
            raise RuntimeError(f"the nodes did not agree on the groups {want}: {seen}")


def run(quiet: bool = False) -> int:
    """Run the demo; return 0 on success."""
    with Cluster(3) as cluster:
        a, b, c = cluster.nodes
        n = _Narrator(cluster, quiet)
        n.say(f"Three nodes on this machine: {a} (this process), {b} and {c} (child processes).")
        n.say(f"   nodes() on {a}: {erlang.nodes()}")

        n.title("pg2 starts on each node (on first use, under kernel_safe_sup)")
        for node in cluster.nodes:
            ok, pid = cluster.rpc(node, pg2.start)
            n.say(f"   on {node}: pg2:start() -> {ok!r}, pg2 server {pid!r}")
        n.say("   A node whose pg2 has not started yet would miss writes and catch up by exchange")
        n.say("   when its pg2 starts: init/1 asks every connected pg2 server for its groups.")

        n.title(f"create({GROUP!r}) on {a}: one write, seen on every node")
        n.say("   create takes the group's global lock and calls every node's pg2 server (multi_call).")
        pg2.create(GROUP)
        n.show()

        n.title("Each node joins a process that lives on it")
        people = {"alice": a, "bob": b, "carol": c}
        pids = {}
        for person, node in people.items():
            pid = cluster.spawn(node, member_loop)
            n.names[pid] = person
            pids[person] = pid
            cluster.rpc(node, pg2.join, GROUP, pid)
            n.say(f"   on {node}: pg2:join({GROUP!r}, {person} = {pid!r}) -> ok")
        n.agree(["alice", "bob", "carol"])
        n.show()
        n.say(f"   get_local_members on {b}: {n.label(cluster.rpc(b, pg2.get_local_members, GROUP))}")
        closest = cluster.rpc(c, pg2.get_closest_pid, GROUP)
        n.say(f"   get_closest_pid on {c} prefers the local member: {n.label([closest])}")

        n.title("bob dies: every node's monitor fires, and every node removes him")
        cluster.rpc(b, erlang.exit, pids["bob"], "kill")
        n.agree(["alice", "carol"])
        n.show()

        n.title(f"Node {c} is killed (no goodbye: its OS process just ends): its members vanish, the group stays")
        cluster.kill(c)
        n.agree(["alice"], [a, b])
        n.show([a, b])
        n.say(f"   which_groups() on {b}: {cluster.rpc(b, pg2.which_groups)}")

        n.title(f"{c} restarts; the exchange with the others gives it the groups back")
        cluster.restart(c)
        n.agree(["alice"])
        n.show()

        n.title(f"Partition: [{a}] | [{b}, {c}]; writes continue on both sides (pg2 is AP)")
        pg2.create(LOBBY)
        n.say(f"   first, on {a}: create({LOBBY!r}), a second group, seen on every node")
        n.groups_agree([GROUP, LOBBY])
        cluster.partition([a], [b, c])
        n.agree(["alice"], [a])
        n.agree([], [b, c])
        n.say("   Each side drops the other side's members: their monitors fire 'noconnection'.")
        n.say(f"   alice lives on {a}, so {b} and {c} no longer list her; the groups stay everywhere.")
        n.show()
        dave = cluster.spawn(a, member_loop)
        n.names[dave] = "dave"
        pg2.join(GROUP, dave)
        pg2.leave(GROUP, pids["alice"])
        n.say(f"   on {a}: join dave, leave alice -> ok, ok   (only {a}'s side hears of it)")
        erin = cluster.spawn(b, member_loop)
        n.names[erin] = "erin"
        cluster.rpc(b, pg2.join, GROUP, erin)
        cluster.rpc(b, pg2.delete, LOBBY)
        n.say(f"   on {b}: join erin, delete({LOBBY!r}) -> ok, ok   (only {b}'s side hears of it)")
        n.agree(["dave"], [a])
        n.agree(["erin"], [b, c])
        n.groups_agree([GROUP, LOBBY], [a])
        n.groups_agree([GROUP], [b, c])
        n.show()

        n.title("Heal: the nodes reconnect and exchange their tables, adding what they lack")
        cluster.heal()
        n.agree(["dave", "erin"])
        n.groups_agree([GROUP, LOBBY])
        n.show()
        n.say("   dave and erin are everywhere: each side sent its own members, and each node added")
        n.say("   what it lacked. A member dropped only because its node was out of reach comes back.")
        n.say("   alice stays gone: she left on her own side, and the other side had dropped her when")
        n.say("   the connection went, so no side sent her. A leave made in a clean partition holds.")
        n.say(f"   {LOBBY!r} is back on {b} and {c}: {a} still had it and its exchange re-created it. pg2")
        n.say("   heals by *adding* only, so a delete made on one side of a partition is undone. Had")
        n.say(f"   {LOBBY!r} held a live member that only {b}'s side listed, the heal would have brought")
        n.say("   the group back without her: nothing re-adds a member that no side lists.")
        n.say("   Deaths stay: every node saw bob's 'DOWN' itself.")

        rows = []
        for node in cluster.nodes:
            groups = cluster.rpc(node, pg2.which_groups)
            members = n.label(cluster.rpc(node, pg2.get_members, GROUP))
            local = n.label(cluster.rpc(node, pg2.get_local_members, GROUP))
            rows.append((node, repr(groups), members, local))
        widths = [max(len(r[i]) for r in [("node", "groups", "members", "local"), *rows]) for i in range(4)]
        print("\nSummary: every node's view after the heal")
        header = ("node", "which_groups()", f"get_members({GROUP!r})", "get_local_members")
        widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        print("  ".join("-" * w for w in widths))
        for row in rows:
            print("  ".join(col.ljust(w) for col, w in zip(row, widths, strict=True)))
        print("\nReads were local, writes took a global lock, failures were seen by monitors,")
        print("and the partition healed by exchanging memberships.")
    return 0
