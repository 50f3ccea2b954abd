"""The invariant checks themselves: sane() and wsane() catch each kind of inconsistency they claim to.

sane() and wsane() guard every distributed scenario, so they must be able to
fail. Each case below starts from a table that a real pg2 server wrote,
breaks one invariant, and expects sane() to name it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from repg2 import erlang, ets, pg2
from repg2.testing import member_loop, sane, stop_pg2, wsane

pytestmark = pytest.mark.timeout(30)

FAKE = "sane_test_table"


@pytest.fixture
def real_rows() -> Iterator[tuple[list[Any], erlang.Pid, erlang.Pid]]:
    """Rows written by a real pg2: p1 twice in g and once in h, p2 once in g."""
    stop_pg2()
    p1, p2 = erlang.spawn(member_loop), erlang.spawn(member_loop)
    pg2.create("g")
    pg2.create("h")
    for group, pid in [("g", p1), ("g", p1), ("g", p2), ("h", p1)]:
        pg2.join(group, pid)
    assert sane() == "ok"
    yield ets.tab2list(pg2.TABLE), p1, p2
    erlang.exit(p1, "kill")
    erlang.exit(p2, "kill")
    stop_pg2()


def with_rows(rows: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Point sane() at a table holding ``rows`` instead of the real pg2_table."""
    if ets.whereis(FAKE) != "undefined":
        ets.delete(FAKE)
    ets.new(FAKE, ["ordered_set", "public", "named_table"])
    ets.insert(FAKE, rows)
    monkeypatch.setattr(pg2, "TABLE", FAKE)


def replace(rows: list[Any], key: Any, new: Any | None) -> list[Any]:
    """Return rows with the row of ``key`` replaced by ``new`` (or removed when None)."""
    out = [r for r in rows if r[0] != key]
    assert len(out) == len(rows) - 1, f"no row {key!r}"
    return out if new is None else [*out, new]


def ref_row(rows: list[Any], pid: erlang.Pid) -> Any:
    """Return the ('ref', Pid) row of ``pid``."""
    return next(r for r in rows if r[0] == ("ref", pid))


Breaker = Callable[[list[Any], erlang.Pid, erlang.Pid], list[Any]]

CASES: list[tuple[str, Breaker, str]] = [
    ("group row missing", lambda r, p1, p2: replace(r, ("group", "h"), None), "no group row"),
    ("ref row missing", lambda r, p1, p2: replace(r, ("ref", p2), None), "one ('ref', Pid) row"),
    (
        "back row missing",
        lambda r, p1, p2: replace(r, ("ref", ref_row(r, p2)[2]), None),
        "one ('ref', MonitorRef) row",
    ),
    (
        "back rows crossed",
        lambda r, p1, p2: replace(
            replace(r, ("ref", ref_row(r, p1)[2]), (("ref", ref_row(r, p1)[2]), p2)),
            ("ref", ref_row(r, p2)[2]),
            (("ref", ref_row(r, p2)[2]), p1),
        ),
        "does not point back",
    ),
    ("ref counter zero", lambda r, p1, p2: replace(r, ("ref", p2), ref_row(r, p2)._replace(counter=0)), "below 1"),
    (
        "ref counter off",
        lambda r, p1, p2: replace(r, ("ref", p1), ref_row(r, p1)._replace(counter=7)),
        "is not its 3 joins",
    ),
    (
        "local member behind a helper",
        lambda r, p1, p2: replace(r, ("ref", p1), ref_row(r, p1)._replace(rpid=p2)),
        "through a helper",
    ),
    (
        "member counter zero",
        lambda r, p1, p2: replace(
            replace(r, ("member", "h", p1), pg2.MemberRow(("member", "h", p1), 0)),
            ("ref", p1),
            ref_row(r, p1)._replace(counter=2),
        ),
        "a member counter below 1",
    ),
    (
        "local_member row missing",
        lambda r, p1, p2: replace(r, ("local_member", "g", p2), None),
        "local_member rows",
    ),
    ("pid row missing", lambda r, p1, p2: replace(r, ("pid", p1, "h"), None), "('pid', Pid, Name) rows"),
]


@pytest.mark.parametrize(("case", "breaker", "message"), CASES, ids=[c[0] for c in CASES])
def test_sane_catches(
    case: str, breaker: Breaker, message: str, real_rows: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sane() rejects a table with one invariant broken, naming what is wrong (pg2_SUITE: sane/0)."""
    rows, p1, p2 = real_rows
    with_rows(rows, monkeypatch)
    assert sane() == "ok"  # the untouched copy passes
    with_rows(breaker(rows, p1, p2), monkeypatch)
    with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sane()


def fake_cluster(views: dict[str, dict[str, Any]]) -> Callable[..., Any]:
    """A call(node, fun, *args) that answers pg2 reads from fixed per-node views."""

    def call(node: str, fun: Callable[..., Any], *args: Any) -> Any:
        view = views[node]
        if fun is sane:
            return "ok"
        if fun is pg2.which_groups:
            return view["groups"]
        group = args[0]
        return {
            pg2.get_members: view["members"],
            pg2.get_local_members: view["local"],
            pg2.get_closest_pid: view["closest"],
        }[fun][group]

    return call


def two_nodes(p: erlang.Pid, q: erlang.Pid) -> dict[str, dict[str, Any]]:
    """Consistent views of one group on nodes x and y: p lives on x, q on y."""
    return {
        "x": {"groups": ["g"], "members": {"g": [p, q]}, "local": {"g": [p]}, "closest": {"g": p}},
        "y": {"groups": ["g"], "members": {"g": [p, q]}, "local": {"g": [q]}, "closest": {"g": q}},
    }


WSANE_CASES = [
    (
        "groups differ",
        lambda v, p, q: v["y"].update(
            groups=["g", "h"],
            members={"g": [p, q], "h": []},
            local={"g": [q], "h": []},
            closest={"g": q, "h": ("error", ("no_process", "h"))},
        ),
        "which_groups differ",
    ),
    ("members differ", lambda v, p, q: v["y"].update(members={"g": [q, p, p]}), "get_members"),
    ("local members overlap", lambda v, p, q: v["y"].update(local={"g": [p, q]}), "do not partition"),
    ("closest not local", lambda v, p, q: v["x"].update(closest={"g": q}), "get_closest_pid gave"),
    (
        "closest local but not a member",
        lambda v, p, q: v["x"].update(closest={"g": erlang.Pid("x", 99, 1)}),
        "is not among its local members",
    ),
]


@pytest.mark.parametrize(("case", "breaker", "message"), WSANE_CASES, ids=[c[0] for c in WSANE_CASES])
def test_wsane_catches(case: str, breaker: Callable[..., None], message: str) -> None:
    """wsane() rejects views that disagree across nodes (pg2_SUITE: wsane/1)."""
    p, q = erlang.Pid("x", 1, 1), erlang.Pid("y", 2, 1)
    assert wsane(["x", "y"], fake_cluster(two_nodes(p, q))) == "ok"
    views = two_nodes(p, q)
    breaker(views, p, q)
    with pytest.raises(AssertionError, match=message):
        wsane(["x", "y"], fake_cluster(views))
