"""Erlang's term order (repg2.terms): the rules of the manual, then properties.

The examples are the rules of "Term Comparison" in the Erlang Reference
Manual; the hypothesis properties check that term_key is a total order
(antisymmetric, transitive, total) over nested terms of every ported type.
"""

from __future__ import annotations

import enum
import functools
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repg2 import erlang, terms
from repg2.terms import compare, exact_eq, exact_key, term_eq, term_key, term_lt

LOCAL = erlang.Pid(None, 7)
REMOTE = erlang.Pid("b@host", 3, 1)
REF = erlang.Ref("a@host", 5, 1)


class Point(NamedTuple):
    x: int
    y: int


class Colour(enum.IntEnum):
    RED = 1


# (a, b, expected compare(a, b)): one row per rule of the manual.
ORDER_EXAMPLES = [
    (1, 1.0, 0),  # numbers compare by value: 1 == 1.0
    (1, 2.5, -1),
    (-(2**70), -1.5, -1),  # integers of any size, exactly
    (2**53 + 1, float(2**53), 1),  # no rounding through float
    (1, "a", -1),  # number < atom
    (10**30, "", -1),
    ("a", "b", -1),  # atoms alphabetically
    ("ab", "b", -1),
    ("a", REF, -1),  # atom < reference
    (REF, LOCAL, -1),  # reference < pid
    (LOCAL, (), -1),  # pid < tuple
    ((), [], -1),  # tuple < nil
    ((1, 2), (0, 0, 0), -1),  # tuples by size first
    ((1, 2), (1, 3), -1),  # then element by element
    ((2,), (1, 1), -1),
    ([], [0], -1),  # nil < any list
    ([1, 2], [1, 2, 3], -1),  # a proper prefix first
    ([2], [1, 2, 3], 1),  # lists lexicographically, not by length
    ([1, 2], b"", -1),  # list < binary
    (b"ab", b"b", -1),  # binaries byte by byte
    (b"a", b"ab", -1),
    (True, "true", 0),  # True is the atom true
    (False, "false", 0),
    (True, 1, 1),  # an atom, never the number 1
    (Point(1, 2), (1, 2), 0),  # a NamedTuple is a tuple
    (Colour.RED, 1, 0),  # an IntEnum is an integer
    (((1, "a"),), ((1, "b"),), -1),  # nested
    ([(1,), "x"], [(1,), 0], 1),
]


@pytest.mark.parametrize(("a", "b", "expected"), ORDER_EXAMPLES)
def test_order_examples(a: object, b: object, expected: int) -> None:
    """Each rule of Erlang's term comparison holds, both ways round."""
    assert compare(a, b) == expected
    assert compare(b, a) == -expected
    assert term_lt(a, b) == (expected < 0)
    assert term_eq(a, b) == (expected == 0)


def test_type_order_in_one_sort() -> None:
    """number < atom < reference < pid < tuple < list < binary, in one sorted list."""
    expected = [-3, 0.5, 2, "atom", "true", REF, REMOTE, (), (9,), (0, 0), [], [0], b"", b"\x00"]
    shuffled = [b"\x00", (0, 0), [0], "true", 2, REMOTE, [], 0.5, (9,), REF, b"", -3, "atom", ()]
    assert sorted(shuffled, key=term_key) == expected


def test_ints_and_floats_equal_but_not_exactly() -> None:
    """1 == 1.0 as an ordered_set key, but 1 =/= 1.0 as a set key or in a match."""
    assert term_key(1) == term_key(1.0)
    assert hash(term_key(1)) == hash(term_key(1.0))
    assert exact_key(1) != exact_key(1.0)
    assert not exact_eq(1, 1.0)
    assert exact_eq((1, [2.0]), (1, [2.0]))
    assert not exact_eq((1, [2.0]), (1, [2]))
    assert exact_key(1) < exact_key(1.0) < exact_key(2)  # exact keys still sort in term order


def test_bool_is_an_atom_not_a_number() -> None:
    """Python's True == 1 does not leak into Erlang's order."""
    assert not term_eq(True, 1)
    assert exact_eq(True, "true")
    assert exact_key(True) != exact_key(1)


def test_pids_order_by_serial_number_node_creation_and_refs_by_node_creation_words() -> None:
    """OTP 25's order: pids by serial, number, node, creation; refs by node, creation, then words from the last."""
    serial_1 = 1 << 32  # a pid's id is Serial << 32 | Number
    pids = [
        erlang.Pid("a@h", serial_1 | 1, 1),  # <a@h.1.1>: a higher serial sorts after any number
        erlang.Pid("b@h", 2, 1),
        erlang.Pid("b@h", 1, 2),
        erlang.Pid("a@h", 2, 5),
        erlang.Pid("b@h", 1, 1),
    ]
    assert sorted(pids, key=term_key) == [pids[4], pids[2], pids[3], pids[1], pids[0]]
    assert sorted(pids, key=term_key) == sorted(pids, key=lambda p: p._key()) == sorted(pids)
    refs = [erlang.Ref("b@h", 1, 0), erlang.Ref("a@h", 2, 1), erlang.Ref("a@h", 1 << 64, 0), erlang.Ref("a@h", 2, 0)]
    assert sorted(refs, key=term_key) == [refs[3], refs[2], refs[1], refs[0]]
    assert erlang.Ref("a@h", 7, 1, n_words=1) == erlang.Ref("a@h", 7, 1, n_words=5)  # missing words count as 0


# The pids and refs OTP 25 sorts in test_pid_and_ref_order_is_otp_25s: each
# field varied alone and together, the pids of the Erlang node itself, and
# pids and refs of a node named like this one (PY_NODE), which decode as
# local pids here.
PY_NODE, PY_CREATION = "py@127.0.0.1", 7777
_ERLANG_SORT = f"""
    Pid = fun(N, Num, Ser, Cre) ->
        B = atom_to_binary(N, utf8),
        binary_to_term(<<131, 88, 119, (byte_size(B)), B/binary, Num:32, Ser:32, Cre:32>>) end,
    Ref = fun(N, Cre, Ws) ->
        B = atom_to_binary(N, utf8),
        binary_to_term(<<131, 90, (length(Ws)):16, 119, (byte_size(B)), B/binary, Cre:32,
                         (<< <<W:32>> || W <- Ws >>)/binary>>) end,
    Nodes = [{{aa@h, 1}}, {{aa@h, 2}}, {{ab@h, 1}}, {{b@h, 1}}, {{zz@h, 1}},
             {{'{PY_NODE}', {PY_CREATION}}}, {{'{PY_NODE}', {PY_CREATION + 1}}}],
    Pids = [Pid(N, Num, Ser, C) || {{N, C}} <- Nodes,
            {{Num, Ser}} <- [{{0, 0}}, {{1, 0}}, {{2, 0}}, {{1, 1}}, {{40000, 0}}, {{0, 2}}, {{32767, 8191}}, {{5, 70000}}]]
        ++ [self(), Pid(node(), 1, 0, erlang:system_info(creation)), Pid(node(), 0, 1, erlang:system_info(creation))],
    Refs = [Ref(N, C, Ws) || {{N, C}} <- Nodes,
            Ws <- [[1, 0, 0], [1], [0, 1], [2, 0, 0], [0, 0, 1], [7, 7, 7, 7, 0], [0, 0, 0, 0, 1], [], [5, 5]]]
        ++ [make_ref(), make_ref()],
    Terms = lists:reverse(Pids) ++ Refs,
    Sorted = lists:sort(Terms),
    Equal = [A == B || {{A, B}} <- lists:zip(lists:droplast(Sorted), tl(Sorted))],
    io:format("~s~n~s~n~w~n", [binary:encode_hex(term_to_binary(Terms, [{{minor_version, 2}}])),
                               binary:encode_hex(term_to_binary(Sorted, [{{minor_version, 2}}])), Equal])
"""


def test_pid_and_ref_order_is_otp_25s() -> None:
    """A real OTP 25 node and term_key sort the same pids and refs alike, local ones included."""
    from support import run_erl

    from repg2.external import binary_to_term

    unsorted_hex, sorted_hex, equal_text = run_erl(_ERLANG_SORT).split()
    saved = (erlang._identity.name, erlang._identity.creation)
    erlang._set_identity(PY_NODE, PY_CREATION)
    try:
        terms, erlang_sorted = binary_to_term(bytes.fromhex(unsorted_hex)), binary_to_term(bytes.fromhex(sorted_hex))
        assert any(isinstance(t, erlang.Pid) and t.is_local() for t in terms)  # PY_NODE's pids are ours here
        ours = sorted(terms, key=term_key)
        assert ours == erlang_sorted
        # Equal neighbours (refs whose extra words are 0) are equal here too, and only they.
        erlang_equal = [flag == "true" for flag in equal_text.strip("[]").split(",")]
        assert [term_eq(a, b) for a, b in zip(ours, ours[1:], strict=False)] == erlang_equal
        assert any(erlang_equal)
        pids = [t for t in terms if isinstance(t, erlang.Pid)]
        assert sorted(pids) == [t for t in erlang_sorted if isinstance(t, erlang.Pid)]
    finally:
        erlang._set_identity(*saved)


_SUBTRACT_CASES = [
    "[a, a, b, c] -- [a, c, d]",
    "[1, 2, 1, 3, 1] -- [1, 1]",
    "[1, 1.0, 2] -- [1.0]",
    "[{x, 1}, {x, 1.0}] -- [{x, 1}]",
    "[true, 1] -- [1]",
    "[] -- [a]",
    '[<<"b">>, [a], {k, v}, [a]] -- [[a], {k, v}]',
    "[self(), 1.0, self(), a] -- [self(), self(), self()]",
]


def test_subtract_is_erlangs_list_subtraction() -> None:
    """terms.subtract gives what A -- B gives on a real OTP 25 node: a multiset difference from the left, by =:=."""
    from support import run_erl

    from repg2.external import binary_to_term

    script = ", ".join(
        f'io:format("~s~n", [binary:encode_hex(term_to_binary({{{case.replace(" -- ", ", ")}, {case}}}))])'
        for case in _SUBTRACT_CASES
    )
    lines = run_erl(script).split()
    assert len(lines) == len(_SUBTRACT_CASES)
    for case, line in zip(_SUBTRACT_CASES, lines, strict=True):
        theirs, ours, expected = binary_to_term(bytes.fromhex(line))
        got = terms.subtract(theirs, ours)
        assert len(got) == len(expected) and all(map(exact_eq, got, expected)), (case, got, expected)
    assert terms.subtract([1, 1.0], [1.0]) == [1]
    assert type(terms.subtract([1, 1.0], [1.0])[0]) is int  # not the float: =:=, not ==


def test_local_pid_key_follows_node_rename() -> None:
    """A key made before net_kernel renames the node still finds the same pid after."""
    before = term_key(("member", "g", LOCAL))
    erlang._set_identity("renamed@host", 3)
    try:
        after = term_key(("member", "g", LOCAL))
        assert before == after
        assert hash(before) == hash(after)
        assert LOCAL.node == "renamed@host"
    finally:
        erlang._set_identity("nonode@nohost", 0)


@pytest.mark.parametrize(
    "value",
    [{}, {1: 2}, object(), None, set(), bytearray(b"x"), float("nan"), float("inf"), -float("inf"), (1, [None])],
)
def test_non_terms_raise_type_error(value: object) -> None:
    """A value that is not an Erlang term is a TypeError naming it, never a silent order."""
    with pytest.raises(TypeError, match="not an Erlang term"):
        term_key(value)
    with pytest.raises(TypeError, match="not an Erlang term"):
        exact_key(value)
    with pytest.raises(TypeError, match="not an Erlang term"):
        terms.check_term(value)
    assert not terms.is_term(value)


def test_check_term_walks_everything() -> None:
    """check_term accepts nested terms of every ported type and subclasses of them."""

    class Name(str):
        pass

    for value in [1, 1.5, "a", True, b"x", LOCAL, REF, (1, [2, (3, LOCAL)]), Point(1, 2), Colour.RED, Name("n")]:
        terms.check_term(value)
        assert terms.is_term(value)
    assert term_key(Name("n")) == term_key("n")
    assert term_key(2.0) == (terms.NUMBER, 2.0)


# == Properties ================================================================

atoms = st.text(alphabet="abcxyz_$1", max_size=4) | st.booleans()
numbers = st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
pids = st.builds(erlang.Pid, st.sampled_from([None, "a@h", "b@h"]), st.integers(0, 5), st.integers(0, 2))
refs = st.builds(erlang.Ref, st.sampled_from(["a@h", "b@h"]), st.integers(0, 5), st.integers(0, 2))
leaves = numbers | atoms | pids | refs | st.binary(max_size=3)
nested = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(nested, nested)
def test_antisymmetric_and_total(a: object, b: object) -> None:
    """compare is total and antisymmetric, and agrees with term_lt and term_eq."""
    c = compare(a, b)
    assert c in (-1, 0, 1)
    assert compare(b, a) == -c
    assert term_lt(a, b) == (c < 0)
    assert term_eq(a, b) == (c == 0)
    if c == 0:
        assert hash(term_key(a)) == hash(term_key(b))
    if exact_eq(a, b):
        assert c == 0


@settings(max_examples=300, deadline=None)
@given(nested, nested, nested)
def test_transitive(a: object, b: object, c: object) -> None:
    """If a =< b and b =< c then a =< c (and likewise for strict order)."""
    x, y, z = sorted([a, b, c], key=functools.cmp_to_key(compare))
    assert compare(x, y) <= 0 and compare(y, z) <= 0
    assert compare(x, z) <= 0
    if compare(x, y) < 0 or compare(y, z) < 0:
        assert compare(x, z) < 0


@settings(max_examples=200, deadline=None)
@given(st.lists(nested, max_size=8))
def test_key_sort_equals_comparison_sort(values: list[object]) -> None:
    """Sorting by term_key and sorting by compare give the same order."""
    by_key = sorted(values, key=term_key)
    by_cmp = sorted(values, key=functools.cmp_to_key(compare))
    assert [term_key(v) for v in by_key] == [term_key(v) for v in by_cmp]


@settings(max_examples=200, deadline=None)
@given(nested)
def test_reflexive(a: object) -> None:
    """Every term equals itself, exactly and by value."""
    assert compare(a, a) == 0
    assert exact_eq(a, a)
    terms.check_term(a)


def test_pid_keys_support_every_comparison() -> None:
    """Keys holding pids compare with all six operators (a SortedDict and sorted() use several)."""
    low, high = term_key((LOCAL,)), term_key((REMOTE,))
    if not low < high:
        low, high = high, low
    assert low < high and low <= high and high > low and high >= low and low != high
    assert not (low == high) and term_key((LOCAL,)) == term_key((erlang.Pid(None, 7),))
    key = terms._PidOrder(LOCAL)
    assert key.__eq__("x") is NotImplemented and key.__ne__("x") is NotImplemented
    assert "_PidOrder" in repr(key)


def test_subclasses_of_every_type() -> None:
    """Subclasses of float, list and bytes are floats, lists and binaries."""

    class F(float):
        pass

    class L(list):  # type: ignore[type-arg]
        pass

    class By(bytes):
        pass

    assert term_key(F(1.5)) == term_key(1.5)
    assert exact_key(F(1.0)) == exact_key(1.0) != exact_key(1)
    assert term_key(L([1, 2])) == term_key([1, 2])
    assert exact_key(L([1])) == exact_key([1])
    assert term_key(By(b"x")) == term_key(b"x")
    terms.check_term(L([F(2.0), By(b"y")]))
    with pytest.raises(TypeError):
        terms.check_term(F("nan"))
