"""ETS (repg2.ets): tables, access rights, counters, matching and the prefix scan.

Matching is specified by tables of (pattern, expected) cases run against
every table type; ownership and access rules are checked from real other
processes (erlang.spawn) and from plain threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
from support import DEADLINE, down_reason, recv, run_erl, tagged

from repg2 import erlang, ets

A = erlang.Pid("a@h", 1, 1)
B = erlang.Pid("b@h", 2, 1)


class Member(NamedTuple):
    key: tuple[str, str, erlang.Pid]
    count: int


def badarg() -> Any:
    """Expect ErlangError with reason badarg."""
    return pytest.raises(erlang.ErlangError, match="badarg")


@pytest.fixture(autouse=True)
def cleanup() -> Iterator[None]:
    """Delete every table a test left behind (the test process owns them)."""
    before = set(map(repr, ets.all()))
    yield
    for tab in ets.all():
        if repr(tab) not in before:
            ets.delete(tab)


def in_process(fun: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """Run fun(*args) in a new Erlang process; return ('ok', value) or ('error', reason)."""
    parent, tag = erlang.self(), erlang.make_ref()

    def body() -> None:
        try:
            result: tuple[str, Any] = ("ok", fun(*args))
        except erlang.ErlangError as exc:
            result = ("error", exc.reason)
        erlang.send(parent, (tag, result))

    erlang.spawn(body)
    return recv(tagged(tag), "the process's result")[1]  # type: ignore[no-any-return]


def in_thread(fun: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """Run fun(*args) in a plain thread that never becomes a process."""
    box: list[tuple[str, Any]] = []

    def body() -> None:
        try:
            box.append(("ok", fun(*args)))
        except erlang.ErlangError as exc:
            box.append(("error", exc.reason))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(DEADLINE)
    return box[0]


# pg2_table's row shapes (pg2.erl, "Local functions"), two groups, two pids.
PG2_ROWS = [
    (("group", "g1"),),
    (("group", "g2"),),
    (("ref", A), A, erlang.Ref("a@h", 10, 1), 2),
    (("member", "g1", A), 1),
    (("member", "g1", B), 2),
    (("member", "g2", A), 1),
    (("local_member", "g1", A),),
    (("pid", A, "g1"),),
    (("pid", A, "g2"),),
    (("pid", B, "g1"),),
]

# (pattern, expected match/2 result as a sorted list of bindings)
MATCH_CASES = [
    ((("group", "$1"),), [["g1"], ["g2"]]),
    ((("member", "g1", "$1"), "$2"), [[A, 1], [B, 2]]),
    ((("member", "$2", "$1"), "_"), [[A, "g1"], [A, "g2"], [B, "g1"]]),
    ((("pid", A, "$1"),), [["g1"], ["g2"]]),
    ((("local_member", "g1", "$1"),), [[A]]),
    ((("member", "g1", A), "$1"), [[1]]),  # fully bound key: one lookup
    ((("member", "g3", "$1"), "$2"), []),  # no such group
    ((("member", "g1", "_"), "_"), [[], []]),  # no variables: [] per object
    ((("pid", "$1", "$2"),), [[A, "g1"], [A, "g2"], [B, "g1"]]),
    ((("ref", "$1"), "$1", "_", "$2"), [[A, 2]]),  # a repeated variable
    ((("ref", "$1"), "$2", "_", "$1"), []),  # repeated, unequal
    (("_", "$1"), [[1], [1], [2]]),  # any 2-tuple object
    ("_", [[]] * len(PG2_ROWS)),  # the whole table
    ("$1", sorted([[row] for row in PG2_ROWS], key=repr)),
    ((("member", "g1", "$1"), 1.0), []),  # matching is =:=: 1.0 is not 1
    ((("group",), "_"), []),  # size differs
    ("not_a_tuple", []),
    ([("group", "g1")], []),
    ((), []),
    ((("$10", "$9"),), [["g1", "group"], ["g2", "group"]]),  # variable-number order
]

TYPES = ["set", "ordered_set", "bag", "duplicate_bag"]


def pg2_table(kind: str) -> Any:
    """A table of the given type holding PG2_ROWS."""
    tab = ets.new("pg2_like", [kind])
    ets.insert(tab, PG2_ROWS)
    return tab


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize(("pattern", "expected"), MATCH_CASES)
def test_match(kind: str, pattern: Any, expected: list[list[Any]]) -> None:
    """ets:match/2 returns the bindings in variable order, for every table type."""
    assert sorted(ets.match(pg2_table(kind), pattern), key=repr) == sorted(expected, key=repr)


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ((("member", "g1", "_"), "_"), [(("member", "g1", A), 1), (("member", "g1", B), 2)]),
        ((("pid", "_", "g2"),), [(("pid", A, "g2"),)]),
        (("_", "_", "_", 2), [PG2_ROWS[2]]),
        ((("nothing",),), []),
    ],
)
def test_match_object(kind: str, pattern: Any, expected: list[Any]) -> None:
    """ets:match_object/2 returns whole objects."""
    assert sorted(ets.match_object(pg2_table(kind), pattern), key=repr) == sorted(expected, key=repr)


SELECT_CASES = [
    ([((("member", "g1", "$1"), "$2"), [], ["$$"])], [[A, 1], [B, 2]]),
    ([((("member", "g1", "$1"), "$2"), [], ["$1"])], [A, B]),
    ([((("member", "g1", "$1"), "$2"), [], ["$_"])], [(("member", "g1", A), 1), (("member", "g1", B), 2)]),
    ([((("member", "g1", "$1"), "$2"), [], [["$2", "$1"]])], [[1, A], [2, B]]),
    ([((("member", "g1", "$1"), "$2"), [], [(("$2", "x"),)])], [(1, "x"), (2, "x")]),
    ([((("member", "g1", "$1"), "_"), [], [("const", ("a", "$1"))])], [("a", "$1")] * 2),
    ([((("member", "g1", "$1"), "_"), [], ["ignored", 7])], [7, 7]),
    (
        [((("group", "$1"),), [], [("group", "$1")][0:0] + ["$1"]), ((("pid", "$1", "g2"),), [], [["pid", "$1"]])],
        [["pid", A], "g1", "g2"],
    ),
    ([], []),
]


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize(("spec", "expected"), SELECT_CASES)
def test_select(kind: str, spec: Any, expected: list[Any]) -> None:
    """ets:select/2 with '$$', '$_', '$N', lists, {{tuples}}, const and several clauses."""
    assert sorted(ets.select(pg2_table(kind), spec), key=repr) == sorted(expected, key=repr)


@pytest.mark.parametrize(
    "spec",
    [
        [(("$1",), [("is_pid", "$1")], ["$1"])],  # only comparison guards are ported
        [(("$1",), [("=:=", "$1")], ["$1"])],  # a comparison takes two operands
        [(("$1",), [("=:=", "$1", "$2")], ["$1"])],  # unbound variable in a guard
        [(("$1",), [], ["$2"])],  # unbound variable in the body
        [(("$1",), [], [])],  # empty body
        [(("$1",), [], "$1")],  # body not a list
        [(("$1",), (), ["$1"])],  # guards not a list
        [(("$1",), [])],  # not a 3-tuple
        (("$1",), [], ["$1"]),  # not a list of clauses
        [(("$1",), [], [("element", 1, "$1")])],  # function call
        [(("$1",), [], [{}])],  # not a term
        [(({},), [], ["$_"])],  # not a term in the head
    ],
)
def test_select_badarg(spec: Any) -> None:
    """Malformed or unsupported match specifications raise badarg."""
    with badarg():
        ets.select(pg2_table("ordered_set"), spec)


# Rows for the guard cases: values of several types, so that =:= and ==
# differ (1 and 1.0) and term order crosses types (number < atom < list).
GUARD_ROWS = [("a", 1), ("b", 1.0), ("c", []), ("d", [1]), ("e", "x")]
GUARD_CASES = [
    ([(("$1", "$2"), [("=/=", "$2", [])], ["$1"])], ["a", "b", "d", "e"]),
    ([(("$1", "$2"), [("=:=", "$2", 1)], ["$1"])], ["a"]),
    ([(("$1", "$2"), [("==", "$2", 1)], ["$1"])], ["a", "b"]),
    ([(("$1", "$2"), [("/=", "$2", 1)], ["$1"])], ["c", "d", "e"]),
    ([(("$1", "$2"), [("<", "$2", "x")], ["$1"])], ["a", "b"]),
    ([(("$1", "$2"), [(">=", "$2", "x")], ["$1"])], ["c", "d", "e"]),
    ([(("$1", "$2"), [(">", "$2", 0), ("=<", "$2", 1)], ["$1"])], ["a", "b"]),
    ([(("$1", "$2"), [("=:=", "$1", ("const", "c"))], ["$1"])], ["c"]),
    (  # a head that matches but whose guard fails falls through to the next clause
        [(("$1", "$2"), [("=:=", "$2", 1)], [("const", "one")]), (("$1", "_"), [], ["$1"])],
        ["b", "c", "d", "e", "one"],
    ),
]


def guard_table(kind: str) -> Any:
    """A table of GUARD_ROWS."""
    tab = ets.new("guards", [kind])
    ets.insert(tab, GUARD_ROWS)
    return tab


@pytest.mark.parametrize("kind", ["set", "ordered_set", "bag"])
@pytest.mark.parametrize(("spec", "expected"), GUARD_CASES)
def test_select_with_comparison_guards(kind: str, spec: Any, expected: list[str]) -> None:
    """ets:select/2 keeps an object only when every comparison guard of its clause holds (pg's which_local_groups)."""
    assert sorted(ets.select(guard_table(kind), spec)) == expected


def test_select_guards_match_real_erlang() -> None:
    """The guard cases select what OTP 25's ets:select/2 selects from the same rows."""

    def erl(term: Any) -> str:
        """Write a guard-case term in Erlang syntax (atoms, numbers, lists, tuples only)."""
        if isinstance(term, str):
            return "'" + term + "'"
        if isinstance(term, (int, float)):
            return repr(term)
        if isinstance(term, list):
            return "[" + ",".join(map(erl, term)) + "]"
        return "{" + ",".join(map(erl, term)) + "}"

    specs = "[" + ",".join(erl(spec) for spec, _ in GUARD_CASES) + "]"
    out = run_erl(
        f"T = ets:new(t, [set]), ets:insert(T, {erl(GUARD_ROWS)}), "
        f'[io:format("~s~n", [lists:join($,, [atom_to_list(X) || X <- lists:sort(ets:select(T, S))])]) '
        f"|| S <- {specs}]"
    )
    assert [line.split(",") if line else [] for line in out.splitlines()] == [e for _, e in GUARD_CASES]


def test_ordered_set_matches_in_term_order() -> None:
    """An ordered_set returns matches and tab2list in Erlang term order of the keys."""
    tab = pg2_table("ordered_set")
    assert ets.match(tab, (("member", "$1", "$2"), "_")) == [["g1", A], ["g1", B], ["g2", A]]
    keys = [row[0] for row in ets.tab2list(tab)]
    assert keys == [
        ("group", "g1"),
        ("group", "g2"),
        ("ref", A),
        ("local_member", "g1", A),
        ("member", "g1", A),
        ("member", "g1", B),
        ("member", "g2", A),
        ("pid", A, "g1"),
        ("pid", A, "g2"),
        ("pid", B, "g1"),
    ]  # size-2 tuples before size-3 ones; then atoms alphabetically


def test_ordered_set_iterates_mixed_keys_in_term_order() -> None:
    """Mixed key types sort number < atom < ref < pid < tuple < list < binary."""
    tab = ets.new("mixed", ["ordered_set"])
    ref = erlang.make_ref()
    keys = [b"bin", [1], [], (1, 2, 3), (9, 9), B, A, ref, "zeta", "alpha", 2.5, 2, -(10**20)]
    ets.insert(tab, [(k, i) for i, k in enumerate(keys)])
    expected = [-(10**20), 2, 2.5, "alpha", "zeta", ref, A, B, (9, 9), (1, 2, 3), [], [1], b"bin"]
    assert [row[0] for row in ets.tab2list(tab)] == expected
    assert ets.first(tab) == -(10**20)
    assert ets.last(tab) == b"bin"
    assert ets.next(tab, 2) == 2.5
    assert ets.next(tab, 2.2) == 2.5  # an ordered_set's next/2 takes any key
    assert ets.prev(tab, "alpha") == 2.5
    assert ets.next(tab, b"bin") == "$end_of_table"
    assert ets.prev(tab, -(10**20)) == "$end_of_table"


def test_first_next_on_hash_tables() -> None:
    """first/next walk a set; last/prev are first/next there; an absent key is badarg."""
    tab = ets.new("walk", ["set"])
    assert ets.first(tab) == "$end_of_table"
    ets.insert(tab, [("a",), ("b",), ("c",)])
    walked = [ets.first(tab)]
    while (key := ets.next(tab, walked[-1])) != "$end_of_table":
        walked.append(key)
    assert sorted(walked) == ["a", "b", "c"]
    assert ets.last(tab) == ets.first(tab)
    assert ets.prev(tab, walked[0]) == walked[1]
    with badarg():
        ets.next(tab, "zz")
    ordered = ets.new("walk2", ["ordered_set"])
    assert ets.first(ordered) == ets.last(ordered) == "$end_of_table"


def test_set_and_ordered_set_key_equality() -> None:
    """A set tells 1 from 1.0 (=:=); an ordered_set does not (==), as in Erlang."""
    s = ets.new("s", ["set"])
    ets.insert(s, [(1, "int"), (1.0, "float")])
    assert ets.info(s, "size") == 2
    assert ets.lookup(s, 1) == [(1, "int")]
    assert ets.lookup(s, 1.0) == [(1.0, "float")]
    o = ets.new("o", ["ordered_set"])
    ets.insert(o, (1.0, "float"))
    assert ets.lookup(o, 1) == [(1.0, "float")]  # the key found need not be the key asked
    assert ets.member(o, 1)
    ets.insert(o, (1, "int"))
    assert ets.tab2list(o) == [(1, "int")]  # one key: replaced
    assert ets.match(o, (1.0, "$1")) == []  # but matching is still =:=
    assert ets.match(o, (1, "$1")) == [["int"]]
    ets.delete(o, 1.0)
    assert ets.info(o, "size") == 0


def test_bag_semantics() -> None:
    """A bag keeps distinct objects per key in insertion order; a duplicate_bag keeps copies."""
    bag = ets.new("bag", ["bag"])
    ets.insert(bag, [("k", 1), ("k", 2), ("k", 1), ("j", 1)])
    ets.insert(bag, ("k", 1.0))  # =/= ('k', 1): a different object
    assert ets.lookup(bag, "k") == [("k", 1), ("k", 2), ("k", 1.0)]
    assert ets.info(bag, "size") == 4
    assert ets.lookup_element(bag, "k", 2) == [1, 2, 1.0]
    ets.delete_object(bag, ("k", 2))
    assert ets.lookup(bag, "k") == [("k", 1), ("k", 1.0)]
    dup = ets.new("dup", ["duplicate_bag"])
    ets.insert(dup, [("k", 1), ("k", 1), ("k", 2)])
    assert ets.lookup(dup, "k") == [("k", 1), ("k", 1), ("k", 2)]
    ets.delete_object(dup, ("k", 1))  # every copy goes
    assert ets.lookup(dup, "k") == [("k", 2)]
    assert ets.info(dup, "size") == 1
    ets.delete_object(dup, ("k", 2))
    assert ets.lookup(dup, "k") == [] and ets.info(dup, "size") == 0
    with badarg():
        ets.update_counter(bag, "k", 1)
    with badarg():
        ets.update_element(bag, "k", (2, 0))


@pytest.mark.parametrize("kind", TYPES)
def test_insert_new(kind: str) -> None:
    """insert_new/2 inserts only when no key is present, a list all or nothing."""
    tab = ets.new("n", [kind])
    assert ets.insert_new(tab, ("a", 1)) is True
    assert ets.insert_new(tab, ("a", 2)) is False
    assert ets.insert_new(tab, [("b", 1), ("a", 3)]) is False
    assert not ets.member(tab, "b")
    assert ets.insert_new(tab, [("b", 1), ("c", 1)]) is True
    assert sorted(ets.tab2list(tab)) == [("a", 1), ("b", 1), ("c", 1)]
    assert ets.insert_new(tab, []) is True


@pytest.mark.parametrize("kind", ["set", "ordered_set"])
def test_delete_object_needs_the_exact_object(kind: str) -> None:
    """delete_object/2 removes the object only if it is identical (=:=)."""
    tab = ets.new("d", [kind])
    ets.insert(tab, ("k", 1))
    ets.delete_object(tab, ("k", 1.0))
    ets.delete_object(tab, ("k", 2))
    assert ets.lookup(tab, "k") == [("k", 1)]
    ets.delete_object(tab, ("k", 1))
    assert ets.lookup(tab, "k") == []
    ets.delete_object(tab, ("absent", 1))


def test_update_counter_positions_are_one_based() -> None:
    """update_counter takes Erlang's 1-based positions: (4, 1) bumps row[3] (pg2's {ref, Pid} row)."""
    tab = ets.new("c", ["ordered_set"])
    ets.insert(tab, (("ref", A), A, "monref", 1))
    assert ets.update_counter(tab, ("ref", A), (4, 1)) == 2
    assert ets.lookup(tab, ("ref", A)) == [(("ref", A), A, "monref", 2)]
    ets.insert(tab, ("n", 10, 20))
    assert ets.update_counter(tab, "n", 5) == 15  # a bare Incr is position keypos + 1
    assert ets.update_counter(tab, "n", [(3, -1), (2, 1)]) == [19, 16]
    assert ets.update_counter(tab, "n", (2, 10, 20, 0)) == 0  # above the threshold: set
    assert ets.update_counter(tab, "n", (3, -30, 0, 7)) == 7  # below the threshold: set
    assert ets.lookup(tab, "n") == [("n", 0, 7)]


def test_update_counter_keeps_named_tuples() -> None:
    """A NamedTuple row stays a NamedTuple after an update, with the field updated."""
    tab = ets.new("nt", ["ordered_set"])
    ets.insert(tab, Member(("member", "g", A), 1))
    ets.update_counter(tab, ("member", "g", A), (2, 1))
    (row,) = ets.lookup(tab, ("member", "g", A))
    assert isinstance(row, Member) and row.count == 2
    assert ets.update_element(tab, ("member", "g", A), (2, 9)) is True
    assert ets.lookup(tab, ("member", "g", A)) == [Member(("member", "g", A), 9)]
    assert type(ets.lookup(tab, ("member", "g", A))[0]) is Member


@pytest.mark.parametrize(
    ("key", "op"),
    [
        ("missing", (2, 1)),  # pg2's join_group catches exactly this badarg
        ("n", (1, 1)),  # the key's position
        ("n", (4, 1)),  # past the end
        ("n", (0, 1)),
        ("n", (3, 1)),  # not an integer
        ("n", [(2, 1), (3, 1)]),  # atomic: the first op is not applied
        ("n", (2, 1.5)),
        ("n", (2, True)),
        ("n", "one"),
        ("n", (2, 1, 2)),
        ("n", [(2,)]),
    ],
)
def test_update_counter_badarg(key: str, op: Any) -> None:
    """update_counter raises badarg and changes nothing on a bad key, position or value."""
    tab = ets.new("c", ["set"])
    ets.insert(tab, ("n", 1, "text"))
    with badarg():
        ets.update_counter(tab, key, op)
    assert ets.lookup(tab, "n") == [("n", 1, "text")]


def test_update_counter_with_default() -> None:
    """update_counter/4 inserts the default with the key replaced when the key is missing."""
    tab = ets.new("c", ["set"])
    assert ets.update_counter(tab, "k", (2, 5), ("ignored", 10)) == 15
    assert ets.lookup(tab, "k") == [("k", 15)]
    assert ets.update_counter(tab, "k", (2, 1), ("ignored", 10)) == 16
    with badarg():
        ets.update_counter(tab, "j", (3, 1), ("ignored", 10))
    assert not ets.member(tab, "j")


def test_update_element() -> None:
    """update_element/3 replaces elements; False for a missing key; badarg for the key's position."""
    tab = ets.new("u", ["set"])
    ets.insert(tab, ("k", 1, 2))
    assert ets.update_element(tab, "k", [(2, "x"), (3, [1])]) is True
    assert ets.lookup(tab, "k") == [("k", "x", [1])]
    assert ets.update_element(tab, "absent", (2, 1)) is False
    for bad in [(1, "k2"), (4, 0), [(2,)], "x", (2, object())]:
        with badarg():
            ets.update_element(tab, "k", bad)


@pytest.mark.parametrize("protection", ["protected", "private"])
def test_non_owner_write_is_badarg(protection: str) -> None:
    """Only the owner writes a protected or private table, whether the other is a process or a thread."""
    tab = ets.new("p", [protection])
    for run in (in_process, in_thread):
        assert run(ets.insert, tab, ("k", 1)) == ("error", "badarg")
        assert run(ets.delete, tab, "k") == ("error", "badarg")
        assert run(ets.update_counter, tab, "k", 1) == ("error", "badarg")
        assert run(ets.delete, tab) == ("error", "badarg")
    assert ets.insert(tab, ("k", 1)) is True  # the owner may
    assert ets.lookup(tab, "k") == [("k", 1)]


def test_reads_from_any_thread() -> None:
    """A protected table is readable by other processes and plain threads; a private one is not."""
    prot = ets.new("prot", ["protected"])
    priv = ets.new("priv", ["private"])
    ets.insert(prot, ("k", 1))
    ets.insert(priv, ("k", 1))
    for run in (in_process, in_thread):
        assert run(ets.lookup, prot, "k") == ("ok", [("k", 1)])
        assert run(ets.match, prot, ("$1", "_")) == ("ok", [["k"]])
        assert run(ets.lookup, priv, "k") == ("error", "badarg")
        assert run(ets.tab2list, priv) == ("error", "badarg")
    assert ets.lookup(priv, "k") == [("k", 1)]


def test_public_table_written_by_anyone() -> None:
    """Any process or thread may write a public table."""
    tab = ets.new("pub", ["public"])
    assert in_process(ets.insert, tab, ("p", 1)) == ("ok", True)
    assert in_thread(ets.insert, tab, ("t", 1)) == ("ok", True)
    assert sorted(ets.tab2list(tab)) == [("p", 1), ("t", 1)]


def test_table_dies_with_its_owner() -> None:
    """When the owning process ends, its tables are deleted (and their names freed)."""
    parent = erlang.self()

    def owner() -> None:
        ets.new("owned_named", ["named_table", "public"])
        tid = ets.new("owned_anon", [])
        erlang.send(parent, ("made", tid))
        erlang.receive(lambda m: m == "stop")

    pid, ref = erlang.spawn_monitor(owner)
    _, tid = recv(tagged("made"))
    assert ets.info("owned_named", "owner") == pid
    assert ets.info(tid, "size") == 0
    erlang.send(pid, "stop")
    down_reason(ref)
    assert ets.info("owned_named") == "undefined"
    assert ets.info(tid, "size") == "undefined"
    assert ets.whereis("owned_named") == "undefined"
    with badarg():
        ets.insert("owned_named", ("k",))
    ets.new("owned_named", ["named_table"])  # the name is free again


def test_prefix_match_on_ordered_set_is_a_range_scan() -> None:
    """A key with a bound prefix examines only the matching objects, not the table (pg2's fast matching)."""
    tab = ets.new("scan", ["ordered_set"])
    ets.insert(tab, [(("member", f"other{i}", A), 1) for i in range(5000)])
    ets.insert(tab, [(("pid", A, f"other{i}"),) for i in range(5000)])
    ets.insert(tab, [(("member", "g", erlang.Pid("a@h", i, 1)), 1) for i in range(10)])
    ets.insert(tab, [(("member", "g"), 0), (("member", "g", A, "extra"), 0), (("member", "h", A), 1)])
    record = ets._table_of(tab)
    cases = [
        ((("member", "g", "$1"), "_"), 10),
        ((("member", "g", "$1"), "$2"), 10),
        ((("member", "$1", A), "_"), None),  # bound prefix is only 'member': a wider range
        ((("pid", A, "$1"),), 5000),
        ((("member", "g", erlang.Pid("a@h", 3, 1)), "$1"), 1),  # fully bound: one lookup
    ]
    for pattern, allowed in cases:
        before = record.rows_examined
        found = ets.match(tab, pattern)
        examined = record.rows_examined - before
        if allowed is not None:
            assert len(found) == allowed
            assert examined == allowed, (pattern, examined)
        else:
            assert examined <= 5012 < ets.info(tab, "size")
    before = record.rows_examined
    assert len(ets.select(tab, [((("member", "g", "_"), "_"), [], ["$_"])])) == 10
    assert len(ets.match_object(tab, (("member", "g", "_"), "_"))) == 10
    assert record.rows_examined - before == 20
    before = record.rows_examined
    ets.match(tab, ("_", 0))  # an unbound key: the whole table
    assert record.rows_examined - before == ets.info(tab, "size")


def test_prefix_scan_respects_tuple_size_first() -> None:
    """Keys ('m', 'g') and ('m', 'g', x, y) are not in the range of ('m', 'g', '_')."""
    tab = ets.new("sizes", ["ordered_set"])
    ets.insert(tab, [(("m", "g"),), (("m", "g", 1),), (("m", "g", 1, 2),), (("m", "g", 2),), (("m", "h", 0),)])
    assert ets.match(tab, (("m", "g", "$1"),)) == [[1], [2]]
    assert ets.match(tab, (("m", "$1"),)) == [["g"]]
    assert ets.match(tab, (("m", "g", "$1", "_"),)) == [[1]]
    assert ets.match(tab, ((1.0, "$1"),)) == []


def test_info_items() -> None:
    """info/1 and info/2 report the table; an unknown table is 'undefined', an unknown item badarg."""
    tab = ets.new("inf", ["bag", "public", ("keypos", 2), ("read_concurrency", True), "compressed"])
    ets.insert(tab, [("a", "k"), ("b", "k")])
    assert ets.info(tab, "size") == 2
    assert ets.info(tab, "type") == "bag"
    assert ets.info(tab, "owner") == erlang.self()
    assert ets.info(tab, "protection") == "public"
    assert ets.info(tab, "name") == "inf"
    assert ets.info(tab, "named_table") is False
    assert ets.info(tab, "keypos") == 2
    assert ets.info(tab, "id") == tab
    info = dict(ets.info(tab))
    assert info["read_concurrency"] is True and info["compressed"] is True and info["heir"] == "none"
    assert info["node"] == erlang.node()
    assert ets.lookup(tab, "k") == [("a", "k"), ("b", "k")]  # keypos 2
    with badarg():
        ets.info(tab, "colour")
    with badarg():
        ets.info(3.5)
    assert ets.info("no_such_table") == "undefined"
    assert ets.info("no_such_table", "size") == "undefined"
    ets.delete(tab)
    assert ets.info(tab) == "undefined"


def test_named_tables_all_and_whereis() -> None:
    """A named table answers to its name and its Tid; all/0 lists names and Tids."""
    assert ets.new("named_one", ["named_table"]) == "named_one"
    tid = ets.whereis("named_one")
    assert isinstance(tid, ets.Tid) and "named_one" in repr(tid)
    ets.insert(tid, ("k", 1))
    assert ets.lookup("named_one", "k") == [("k", 1)]
    anon = ets.new("named_one", [])  # an unnamed table may reuse the name
    assert isinstance(anon, ets.Tid) and anon != tid
    assert {"named_one", anon} <= set(ets.all())
    assert ets.whereis("no_such") == "undefined"
    with badarg():
        ets.new("named_one", ["named_table"])
    with badarg():
        ets.whereis(42)
    assert ets.new(True, ["named_table"]) == "true"
    assert ets.lookup(True, "x") == []


@pytest.mark.parametrize(
    ("name", "options"),
    [
        (42, []),
        ("t", "set"),
        ("t", ["sett"]),
        ("t", [("keypos", 0)]),
        ("t", [("keypos", True)]),
        ("t", [("read_concurrency", "yes")]),
    ],
)
def test_new_badarg(name: Any, options: Any) -> None:
    """ets:new/2 rejects a non-atom name and unknown options."""
    with badarg():
        ets.new(name, options)


def test_new_options() -> None:
    """The last type and access option win; heir none is accepted, a real heir is not ported."""
    tab = ets.new("opts", ["bag", "set", "private", "public", ("heir", "none"), ("write_concurrency", True)])
    assert ets.info(tab, "type") == "set" and ets.info(tab, "protection") == "public"
    with pytest.raises(NotImplementedError):
        ets.new("heir", [("heir", erlang.self(), "data")])


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (ets.insert, "k"),  # not a tuple
        (ets.insert, ["k"]),
        (ets.insert, ()),  # shorter than keypos
        (ets.insert, ("k", {})),  # not a term
        (ets.insert, ("k", None)),
        (ets.insert, [("ok",), ("k", object())]),  # all or nothing
        (ets.insert_new, ("k", {})),
        (ets.lookup, {}),
        (ets.member, float("nan")),
        (ets.delete, {}),
        (ets.lookup_element, "absent"),
        (ets.match, ("k", {})),
        (ets.delete_object, "k"),
    ],
)
def test_bad_arguments(call: Callable[..., Any], args: Any) -> None:
    """Values that are not terms or objects are badarg, and nothing is stored."""
    tab = ets.new("bad", ["ordered_set"])
    with badarg():
        if call is ets.lookup_element:
            call(tab, args, 2)
        else:
            call(tab, args)
    assert ets.tab2list(tab) == []


def test_unknown_or_deleted_table_is_badarg() -> None:
    """Every BIF raises badarg for a table that does not exist or was deleted."""
    tab = ets.new("gone", [])
    ets.delete(tab)
    with badarg():
        ets.delete(tab)
    for call, args in [
        (ets.insert, (("k",),)),
        (ets.lookup, ("k",)),
        (ets.member, ("k",)),
        (ets.match, ("_",)),
        (ets.tab2list, ()),
        (ets.first, ()),
        (ets.update_counter, ("k", 1)),
        (ets.delete_all_objects, ()),
    ]:
        for t in (tab, "no_such_table"):
            with badarg():
                call(t, *args)
    with badarg():
        ets.lookup(3.5, "k")


def test_lookup_element() -> None:
    """lookup_element/3 returns one element (1-based); badarg when missing or too short."""
    tab = ets.new("le", ["ordered_set"])
    ets.insert(tab, ("k", "v", 3))
    assert ets.lookup_element(tab, "k", 3) == 3
    assert ets.lookup_element(tab, "k", 1) == "k"
    for pos in [4, 0, "2"]:
        with badarg():
            ets.lookup_element(tab, "k", pos)


def test_delete_key_all_objects_and_match_delete() -> None:
    """delete/2, delete_all_objects/1 and match_delete/2 remove what they say."""
    for kind in TYPES:
        tab = pg2_table(kind)
        assert ets.delete(tab, ("group", "g1")) is True
        assert not ets.member(tab, ("group", "g1"))
        assert ets.match_delete(tab, (("pid", A, "_"),)) is True
        assert ets.match(tab, (("pid", "$1", "$2"),)) == [[B, "g1"]]
        assert ets.match_delete(tab, ("_", "_")) is True
        assert ets.match(tab, ("_", "_")) == []
        assert ets.info(tab, "size") == len(PG2_ROWS) - 1 - 2 - 3
        ets.delete_all_objects(tab)
        assert ets.tab2list(tab) == [] and ets.info(tab, "size") == 0


def test_lists_are_copied_in_and_out() -> None:
    """Mutating a list after insert, or in a returned object, does not change the table."""
    tab = ets.new("copy", ["set"])
    value = [1, [2]]
    ets.insert(tab, ("k", value))
    value[1].append(3)
    (row,) = ets.lookup(tab, "k")
    assert row == ("k", [1, [2]])
    row[1].append(4)
    assert ets.lookup(tab, "k") == [("k", [1, [2]])]
    assert ets.match(tab, ("k", "$1")) == [[[1, [2]]]]
    key = ["list", "key"]
    ets.insert(tab, (key, 1))
    key.append("x")
    assert ets.lookup(tab, ["list", "key"]) == [(["list", "key"], 1)]
    nt = Member(("member", "g", A), 1)
    ets.insert(tab, nt)
    assert ets.lookup(tab, nt.key)[0] is nt  # tuples without lists are shared, not copied
    ets.insert(tab, ("nested", (1, [2])))
    assert ets.lookup(tab, "nested") == [("nested", (1, [2]))]
    assert ets.first(tab) is not None


def test_named_tuples_come_back_as_inserted() -> None:
    """A NamedTuple row is returned as that NamedTuple by lookup, match_object and select."""
    tab = ets.new("nt", ["ordered_set"])
    ets.insert(tab, Member(("member", "g", A), 3))
    assert type(ets.lookup(tab, ("member", "g", A))[0]) is Member
    assert type(ets.match_object(tab, (("member", "g", "_"), "_"))[0]) is Member
    assert type(ets.select(tab, [(("_", "_"), [], ["$_"])])[0]) is Member
    assert ets.match(tab, Member(("member", "$1", "_"), "$2")) == [["g", 3]]


def test_atoms_match_booleans() -> None:
    """True is the atom 'true' in objects and in patterns."""
    tab = ets.new("b", ["set"])
    ets.insert(tab, [("a", True), ("b", "true"), ("c", 1), ("d", False)])
    assert sorted(ets.match(tab, ("$1", "true"))) == [["a"], ["b"]]
    assert sorted(ets.match(tab, ("$1", True))) == [["a"], ["b"]]
    assert ets.match(tab, ("$1", 1)) == [["c"]]
    assert ets.lookup(tab, "true") == [] and ets.lookup(tab, "a") == [("a", True)]
    assert ets.member(tab, "a")


def test_concurrent_readers_see_whole_objects() -> None:
    """Plain threads reading while the owner updates counters never see a torn object."""
    tab = ets.new("conc", ["ordered_set"])
    ets.insert(tab, [(("member", "g", erlang.Pid("a@h", i, 1)), 1, 1) for i in range(50)])
    stop = threading.Event()
    bad: list[Any] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                for a, b in ets.match(tab, (("member", "g", "_"), "$1", "$2")):
                    if a != b:
                        bad.append((a, b))
        except Exception as exc:  # noqa: BLE001 - reported through `bad`
            bad.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(60):
            for i in range(0, 50, 7):
                ets.update_counter(tab, ("member", "g", erlang.Pid("a@h", i, 1)), [(2, 1), (3, 1)])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert bad == []


def test_plain_tuple_subclass_rows_keep_their_class() -> None:
    """A tuple subclass without _make is rebuilt through its constructor after an update."""

    class Row(tuple):  # noqa: SLOT001 - a bare tuple subclass on purpose
        pass

    tab = ets.new("sub", ["set"])
    ets.insert(tab, Row(("k", 1)))
    assert ets.update_counter(tab, "k", 1) == 2
    (row,) = ets.lookup(tab, "k")
    assert type(row) is Row and row == ("k", 2)


def test_deleting_absent_keys_is_fine() -> None:
    """delete/2 of a key that is not there returns true, in every table type."""
    for kind in TYPES:
        tab = ets.new("absent", [kind])
        assert ets.delete(tab, "nothing") is True


def test_a_table_deleted_under_a_caller_is_badarg() -> None:
    """A BIF that found a table just before it was deleted raises badarg, not a stale answer."""
    tab = ets.new("race", [])
    record = ets._table_of(tab)
    ets.delete(tab)
    with badarg():
        ets._alive(record, "lookup/2")
    with badarg():
        ets._table_of(tab)


@pytest.mark.parametrize("kind", ["ordered_set", "set"])
def test_cached_patterns_keep_1_and_1_0_apart(kind: str) -> None:
    """Compiled and planned patterns are cached; 1, 1.0 and True stay three patterns (=:=), call after call."""
    tab = ets.new("exact", [kind])
    ets.insert(tab, [(("m", 1, "int"), 0), (("m", 1.0, "float"), 0), (("m", True, "atom"), 0), (("m", [1], "list"), 0)])
    for _ in range(3):  # the first call compiles (or plans), the others hit the caches
        assert ets.match(tab, (("m", 1, "$1"), "_")) == [["int"]]
        assert ets.match(tab, (("m", 1.0, "$1"), "_")) == [["float"]]
        assert ets.match(tab, (("m", "true", "$1"), "$2")) == [["atom", 0]]
        assert ets.match(tab, (("m", [1], "$1"), "_")) == [["list"]]
        assert ets.match(tab, (("m", [1.0], "$1"), "_")) == []
        assert ets.match_object(tab, (("m", 1.0, "_"), 0)) == [(("m", 1.0, "float"), 0)]
        assert ets.match_object(tab, (("m", 1, "_"), 0)) == [(("m", 1, "int"), 0)]
        assert ets.select(tab, [((("m", True, "$1"), "_"), [], ["$1"])]) == ["atom"]


def test_prefix_plan_shapes() -> None:
    """Only a bound key prefix followed by distinct variables or '_' takes the planned path; the rest still match."""
    tab = ets.new("shapes", ["ordered_set"])
    ets.insert(
        tab,
        [(("m", "g", A, "x"), 1, "a"), (("m", "g", B, "y"), 2, "b"), (("m", "g", A), 3), (("m", "h", A, "x"), 4, "c")],
    )
    assert ets._prefix_plan((("m", "g", "$1", "_"), "$2", "_"), 1, "match/2") is not None
    for not_planned in [
        (("m", "$1", A, "x"), "_", "_"),
        (("m", "g", "$1", "$1"), "_", "_"),
        (("m", "g", "$1", "_"), 1, "_"),
        ("_", "$1"),
    ]:
        assert ets._prefix_plan(not_planned, 1, "match/2") is None
    assert ets.match(tab, (("m", "g", "$2", "_"), "$1", "_")) == [[1, A], [2, B]]
    assert ets.match(tab, (("m", "g", "$1", "$1"), "_", "_")) == []
    assert ets.match(tab, (("m", "g", "$1", "_"), 1, "_")) == [[A]]
    assert ets.match(tab, (("m", "g", "$1"), "$2")) == [[A, 3]]
    assert ets.match(tab, (("m", "$1", A, "x"), "_", "_")) == [["g"], ["h"]]


def test_remembered_term_keys_keep_terms_apart() -> None:
    """ordered_set keys remembered for speed: True stays the atom 'true' (not 1), a str subclass keeps its own atom."""

    class Tagged(str):  # == 'red' in Python, but the atom 'Colour.RED' as a term (terms uses str())
        def __str__(self) -> str:
            return "Colour.RED"

    red = Tagged("red")
    tab = ets.new("remember", ["ordered_set"])
    ets.insert(tab, [(("k", "red"), "plain"), (("k", red), "enum"), (("k", True), "atom"), (("k", 1), "int")])
    for _ in range(3):  # the first lookup computes the key, the others may find it remembered
        assert ets.lookup(tab, ("k", "red")) == [(("k", "red"), "plain")]
        assert ets.lookup(tab, ("k", red)) == [(("k", red), "enum")]
        assert ets.lookup(tab, ("k", "true")) == [(("k", True), "atom")]
        assert ets.lookup(tab, ("k", 1.0)) == [(("k", 1), "int")]  # an ordered_set compares keys with ==
        assert ets.member(tab, ("k", 2)) is False
