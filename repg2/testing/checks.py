"""Invariant checks for pg2's table and for a cluster's views: ``sane`` and ``wsane``.

Ports the two checks of OTP's ``lib/kernel/test/pg2_SUITE.erl`` that the
suite runs after every step of every scenario, so tests, notebooks and the
model-based test can run them too:

- :func:`sane` looks at *one* node's ``pg2_table`` and checks that the six
  row kinds agree with each other (every member's group exists, one monitor
  row per member pid, counters positive...). It adds the checks the
  original leaves out: each ``('ref', Pid)`` counter equals the sum of that
  pid's member counters, ``local_member`` rows name local pids only, and
  ``('pid', Pid, Name)`` rows pair one to one with member rows.
- :func:`wsane` compares the *views* of several nodes through the public
  API: the same groups, the same members in the same order, local members
  that partition the members, and ``get_closest_pid`` local when it can be.

Both raise ``AssertionError`` with the node and the rows at fault.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from repg2 import erlang, ets, pg2

__all__ = ["sane", "views", "wsane"]


def sane() -> str:
    """Check that this node's ``pg2_table`` rows agree with each other; return ``'ok'``.

    Erlang: pg2_SUITE:sane/0
    """
    rows = ets.tab2list(pg2.TABLE)
    here = erlang.node()
    groups = {r[0][1] for r in rows if r[0][0] == "group"}
    members = {(r[0][1], r[0][2]): r[1] for r in rows if r[0][0] == "member"}
    member_pids = {pid for (_g, pid) in members}
    ref_rows = [r for r in rows if r[0][0] == "ref" and len(r) == 4]
    back_rows = [r for r in rows if r[0][0] == "ref" and len(r) == 2]
    local_rows = [(r[0][1], r[0][2]) for r in rows if r[0][0] == "local_member"]
    pid_rows = [(r[0][2], r[0][1]) for r in rows if r[0][0] == "pid"]  # as (group, pid)

    def fail(what: str) -> None:
        """Raise with the node's name and its whole table."""
        raise AssertionError(f"sane() on {here}: {what}\n  pg2_table = {rows!r}")

    if not {g for g, _ in members} <= groups:
        fail("a member row names a group with no group row")
    if sorted(r[0][1] for r in ref_rows) != sorted(member_pids) or len(ref_rows) != len(member_pids):
        fail("not exactly one ('ref', Pid) row per member pid")
    # pg2_SUITE compares these in table order; the order of monitor refs is
    # not the order of pids, so compare as multisets (see the suite notes).
    if Counter(r[1] for r in back_rows) != Counter(member_pids):
        fail("not exactly one ('ref', MonitorRef) row per member pid")
    by_ref = {r[0][1]: r[1] for r in back_rows}
    for key, rpid, mref, count in ref_rows:
        if count < 1:
            fail(f"ref counter below 1 in {key!r}")
        if by_ref.get(mref) != key[1]:
            fail(f"('ref', {mref!r}) does not point back to {key[1]!r}")
        joins = sum(c for (_g, pid), c in members.items() if pid == key[1])
        if count != joins:
            fail(f"ref counter {count} of {key[1]!r} is not its {joins} joins")
        if erlang.node(key[1]) == here and rpid != key[1]:
            fail(f"local member {key[1]!r} monitored through a helper {rpid!r}")
    if any(c < 1 for c in members.values()):
        fail("a member counter below 1")
    if sorted(local_rows, key=repr) != sorted(((g, p) for (g, p) in members if erlang.node(p) == here), key=repr):
        fail("local_member rows are not exactly the members on this node")
    if sorted(pid_rows, key=repr) != sorted(members, key=repr):
        fail("('pid', Pid, Name) rows do not pair one to one with member rows")
    return "ok"


Call = Callable[..., Any]  # call(node, fun, *args): run fun on node and return its result


def views(nodes: Iterable[str], call: Call) -> dict[str, dict[str, Any]]:
    """Collect every node's public view: groups, and members, local members, closest pid per group."""
    out: dict[str, dict[str, Any]] = {}
    for node in nodes:
        groups = call(node, pg2.which_groups)
        out[node] = {
            "groups": groups,
            "members": {g: call(node, pg2.get_members, g) for g in groups},
            "local": {g: call(node, pg2.get_local_members, g) for g in groups},
            "closest": {g: call(node, pg2.get_closest_pid, g) for g in groups},
        }
    return out


def wsane(nodes: list[str], call: Call) -> str:
    """Check that connected nodes agree: same groups and members, local members partition them.

    Erlang: pg2_SUITE:wsane/1

    ``call(node, fun, *args)`` runs ``fun(*args)`` on ``node`` (e.g.
    ``Cluster.rpc``). Each node's table is checked with :func:`sane` first.
    """
    for node in nodes:
        call(node, sane)
    seen = views(nodes, call)
    first = nodes[0]
    for node in nodes[1:]:
        if seen[node]["groups"] != seen[first]["groups"]:
            raise AssertionError(
                f"wsane: which_groups differ: {first}: {seen[first]['groups']!r}, {node}: {seen[node]['groups']!r}"
            )
        for group in seen[first]["groups"]:
            if seen[node]["members"][group] != seen[first]["members"][group]:
                raise AssertionError(
                    f"wsane: get_members({group!r}) differ: {first}: {seen[first]['members'][group]!r}, "
                    f"{node}: {seen[node]['members'][group]!r}"
                )
    for group in seen[first]["groups"]:
        all_local = sorted((p for node in nodes for p in seen[node]["local"][group]), key=lambda p: p._key())
        if all_local != sorted(seen[first]["members"][group], key=lambda p: p._key()):
            raise AssertionError(f"wsane: local members of {group!r} do not partition its members: {seen!r}")
        for node in nodes:
            closest = seen[node]["closest"][group]
            local = seen[node]["local"][group]
            if isinstance(closest, erlang.Pid) and closest.node == node:
                if closest not in local:
                    raise AssertionError(f"wsane: {node}'s closest pid {closest!r} is not among its local members")
            elif local:
                raise AssertionError(f"wsane: {node} has local members {local!r} but get_closest_pid gave {closest!r}")
    return "ok"
