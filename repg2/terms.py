"""Erlang's term order over the Python values that stand for Erlang terms.

Erlang can compare any two terms: ``1 < foo``, ``{a} < {0, 0}`` and
``[] < [0]`` are all legal and total. Python cannot (``1 < 'foo'`` raises
``TypeError``), yet an ETS ``ordered_set`` keyed by Erlang terms must keep its
keys sorted exactly as Erlang does, and pg2 relies on that order: its keys
``{member, Name, Pid}`` of one group sit next to each other in ``pg2_table``.
This module turns a term into a *key*, a nested tuple of plain Python values
that Python compares in Erlang's order.

What it ports: the "Term Comparison" section of the Erlang Reference Manual
(Expressions chapter, OTP 18.3), i.e. the order the BEAM's ``erts_cmp``
implements::

    number < atom < reference < fun < port < pid < tuple < map < nil < list < bit string

- numbers compare by value, integers and floats mixed (``1 == 1.0``), exactly:
  Python compares ``int`` with ``float`` without rounding, as Erlang does;
- atoms compare alphabetically (by code point, which is the order of their
  UTF-8 text);
- tuples compare by size first, then element by element;
- lists compare element by element, a proper prefix first (``[]`` is nil,
  the smallest list);
- binaries compare byte by byte, a proper prefix first;
- references compare by node name, creation, then their ID words from the
  last word to the first; pids by serial, number, node name, creation: the
  order OTP 25's ``erts_cmp`` implements, measured on a real node (the
  comment above :class:`repg2.erlang.Pid` has the details; their ``_key()``
  is that order).

Two equalities, as in Erlang: ``==`` (:func:`term_eq`, :func:`term_key`)
says ``1 == 1.0``; ``=:=`` (:func:`exact_eq`, :func:`exact_key`) says they
differ. An ``ordered_set`` uses the first for its keys; a ``set`` or ``bag``
and all pattern matching use the second.

Representation (the map the whole project uses)::

    int, float        number     (bool is NOT a number here, see below)
    str, bool         atom       True is the atom 'true', False is 'false'
    repg2.erlang.Ref  reference
    repg2.erlang.Pid  pid
    tuple             tuple      (NamedTuples are tuples)
    list              list       ([] is nil)
    bytes             binary

``True``/``False`` are atoms because in Erlang ``true`` and ``false`` *are*
atoms, and a Python predicate's result is the natural spelling of them; so
``term_key(True) == term_key('true')``. Python's ``True == 1`` is ignored.

Left out: maps (Python ``dict`` is not a term here), funs, ports, improper
lists, bit strings that are not whole bytes, and ``bytearray`` (mutable).
Erlang has no NaN and no infinities, so ``float('nan')`` and ``inf`` are not
terms either. Anything that is not a term raises ``TypeError`` naming it.

Differences from OTP (see ``TRANSLATION_NOTES.md``):

- A local pid reports the node's *current* name (as ``node(Pid)`` does in
  Erlang), so renaming the node (``net_kernel.start``) can reorder local pids
  against pids of other nodes already sorted in a table. The keys below
  compare pids when they are compared, never a stale copy of the name, so a
  local pid is always found again; only the relative order of local and
  remote pids made before the rename may be stale, as it could be in Erlang.
- ``0.0 =:= -0.0`` is true, as in OTP 18 (OTP 27 made them differ).

Complexity: a key costs O(size of the term) to build; comparing two keys
costs what comparing the terms costs in Erlang.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = [
    "ATOM",
    "BINARY",
    "LIST",
    "NUMBER",
    "PID",
    "REFERENCE",
    "TUPLE",
    "check_term",
    "compare",
    "exact_eq",
    "exact_key",
    "is_term",
    "term_eq",
    "term_key",
    "term_lt",
]

Term = Any  # an Erlang term, as represented above
Key = tuple[Any, ...]  # what term_key returns: compares with <, == and hashes

# -- The type tags, in Erlang's order ---------------------------------------
# The gaps keep Erlang's numbering: a reader can check the order against the
# manual's line, and a later port of funs, ports or maps slots in.
NUMBER = 0  # integer() and float()
ATOM = 1  # atom()
REFERENCE = 2  # reference()
# 3: fun() and 4: port() are not ported
PID = 5  # pid()
TUPLE = 6  # tuple(): by size, then elements
# 7: map() is not ported
LIST = 8  # list(): nil [] and cons cells, lexicographic
BINARY = 9  # binary(): byte by byte

_FLOAT = 1  # exact keys only: marks a float so that 1 =/= 1.0


class _PidOrder:
    """Order pids by what they say now, not by a copy taken when the key was made.

    Erlang: none (the pid case of erts_cmp, the BEAM's term comparison)

    A local pid's ``.node`` follows the node's name (see the preamble), so a
    key must not freeze ``pid._key()``: a table keyed under the old name
    would never find the pid again. Equality and hashing follow the pid.
    """

    __slots__ = ("pid", "_hash")

    def __init__(self, pid: Any) -> None:
        self.pid = pid
        self._hash = hash(pid)  # a pid's hash is its id's: stable across renames

    # Fast paths, because every ordered_set insert or range scan over pg2's
    # keys compares pids several times: two pids with different ids are
    # different pids, and the id (serial, then number) is what OTP 25
    # compares first, so it orders them. Only equal ids compare whole keys.

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _PidOrder):
            return NotImplemented
        a, b = self.pid, other.pid
        return a is b or (a.id == b.id and bool(a._key() == b._key()))

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, _PidOrder):
            return NotImplemented
        return not self.__eq__(other)

    def __lt__(self, other: _PidOrder) -> bool:
        # OTP 25's order (measured; see the preamble): id (serial, then number) first, then node, creation.
        a, b = self.pid, other.pid
        if a.id != b.id:
            return bool(a.id < b.id)
        return bool(a._key() < b._key())

    def __le__(self, other: _PidOrder) -> bool:
        return bool(self.pid._key() <= other.pid._key())

    def __gt__(self, other: _PidOrder) -> bool:
        return other.__lt__(self)

    def __ge__(self, other: _PidOrder) -> bool:
        return bool(self.pid._key() >= other.pid._key())

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"_PidOrder({self.pid!r})"


# == Keys =====================================================================
# One function per Erlang type, found by the value's exact Python type in a
# dispatch table (the common case: one dict lookup). Subclasses (NamedTuple,
# IntEnum, str enums) and the pid/ref classes are classified once by
# _classify and then cached in the same table.


def _number_key(term: Any) -> Key:
    """Key an integer.

    Erlang: none (the number case of erts_cmp)
    """
    return (NUMBER, term if type(term) is int else int(term))


def _float_key(term: Any) -> Key:
    """Key a float for ``==``: equal to the integer of the same value.

    Erlang: none (the number case of erts_cmp)
    """
    if not math.isfinite(term):
        raise TypeError(f"not an Erlang term: {term!r} (Erlang floats are finite)")
    return (NUMBER, float(term))


def _float_exact(term: Any) -> Key:
    """Key a float for ``=:=``: a float never equals an integer.

    Erlang: none (the float case of eq, exact term equality)
    """
    if not math.isfinite(term):
        raise TypeError(f"not an Erlang term: {term!r} (Erlang floats are finite)")
    return (NUMBER, float(term), _FLOAT)


def _atom_key(term: Any) -> Key:
    """Key an atom (a ``str``).

    Erlang: none (the atom case of erts_cmp)
    """
    return (ATOM, term if type(term) is str else str(term))


def _bool_key(term: Any) -> Key:
    """Key ``True``/``False`` as the atoms ``'true'``/``'false'``.

    Erlang: none (true and false are ordinary atoms in Erlang)
    """
    return (ATOM, "true" if term else "false")


def _ref_key(term: Any) -> Key:
    """Key a reference: refs keep the node they were made on, so this is stable.

    Erlang: none (the reference case of erts_cmp)
    """
    return (REFERENCE, term._key())


def _pid_key(term: Any) -> Key:
    """Key a pid through :class:`_PidOrder` (compared when compared).

    Erlang: none (the pid case of erts_cmp)
    """
    return (PID, _PidOrder(term))


def _tuple_key(term: Any) -> Key:
    """Key a tuple for ``==``: size first, then the elements in order.

    Erlang: none (the tuple case of erts_cmp)
    """
    return (TUPLE, len(term), tuple(map(term_key, term)))


def _tuple_exact(term: Any) -> Key:
    """Key a tuple for ``=:=``.

    Erlang: none (the tuple case of eq)
    """
    return (TUPLE, len(term), tuple(map(exact_key, term)))


def _list_key(term: Any) -> Key:
    """Key a list for ``==``: lexicographic, a proper prefix first.

    Erlang: none (the list case of erts_cmp; nil is the empty list)
    """
    return (LIST, tuple(map(term_key, term)))


def _list_exact(term: Any) -> Key:
    """Key a list for ``=:=``.

    Erlang: none (the list case of eq)
    """
    return (LIST, tuple(map(exact_key, term)))


def _binary_key(term: Any) -> Key:
    """Key a binary: byte by byte, a proper prefix first.

    Erlang: none (the binary case of erts_cmp)
    """
    return (BINARY, bytes(term))


_Keyer = Callable[[Any], Key]

# Exact Python type -> keyer, for == (term order) and for =:= (exact).
_KEYERS: dict[type, _Keyer] = {
    int: _number_key,
    float: _float_key,
    str: _atom_key,
    bool: _bool_key,
    tuple: _tuple_key,
    list: _list_key,
    bytes: _binary_key,
}
_EXACT_KEYERS: dict[type, _Keyer] = {
    **_KEYERS,
    float: _float_exact,
    tuple: _tuple_exact,
    list: _list_exact,
}


def _classify(cls: type, term: Any) -> tuple[_Keyer, _Keyer]:
    """Find (and cache) the keyers for a type not in the dispatch tables.

    Erlang: none (Python types have subclasses; Erlang's tags do not)

    Raises:
        TypeError: the value is not an Erlang term.
    """
    # Late import: repg2.erlang must never need this module, and a Pid can
    # only exist once repg2.erlang is loaded anyway.
    from repg2 import erlang

    pair: tuple[_Keyer, _Keyer]
    if issubclass(cls, int):  # bool cannot be subclassed: it is in the tables already
        pair = (_number_key, _number_key)
    elif issubclass(cls, float):
        pair = (_float_key, _float_exact)
    elif issubclass(cls, str):
        pair = (_atom_key, _atom_key)
    elif issubclass(cls, tuple):
        pair = (_tuple_key, _tuple_exact)
    elif issubclass(cls, list):
        pair = (_list_key, _list_exact)
    elif issubclass(cls, bytes):
        pair = (_binary_key, _binary_key)
    elif issubclass(cls, erlang.Pid):
        pair = (_pid_key, _pid_key)
    elif issubclass(cls, erlang.Ref):
        pair = (_ref_key, _ref_key)
    else:
        raise TypeError(
            f"not an Erlang term: {term!r} of type {cls.__name__} "
            "(terms are int, float, str/bool atoms, Pid, Ref, tuple, list, bytes)"
        )
    # Racing threads may both classify a type; they store the same pair.
    _KEYERS[cls], _EXACT_KEYERS[cls] = pair
    return pair


def term_key(term: Term) -> Key:
    """Return a key that sorts and compares like ``term`` in Erlang (``==``).

    Erlang: none (erts_cmp, the runtime's term comparison, has no Erlang name)

    Use it as ``sorted(terms, key=term_key)``. Keys of equal terms are equal
    and hash alike, so ``term_key(1) == term_key(1.0)``: that is how an ETS
    ``ordered_set`` sees keys.

    Raises:
        TypeError: ``term`` (or something inside it) is not an Erlang term.
    """
    keyer = _KEYERS.get(type(term))
    if keyer is None:
        keyer = _classify(type(term), term)[0]
    return keyer(term)


def exact_key(term: Term) -> Key:
    """Return a hashable key equal for exactly-equal terms (``=:=``).

    Erlang: none (eq, the runtime's exact term equality)

    Like :func:`term_key` but ``exact_key(1) != exact_key(1.0)``. The keys
    still sort in term order, with an integer just before the equal float.
    ETS ``set`` and ``bag`` tables hash keys with it, and pattern matching
    compares with it.

    Raises:
        TypeError: ``term`` is not an Erlang term.
    """
    keyer = _EXACT_KEYERS.get(type(term))
    if keyer is None:
        keyer = _classify(type(term), term)[1]
    return keyer(term)


def compare(a: Term, b: Term) -> int:
    """Return -1, 0 or 1 as ``a`` is less than, equal to (``==``) or greater than ``b``.

    Erlang: none (erts_cmp; the operators <, ==, > of the Erlang manual)

    Raises:
        TypeError: an argument is not an Erlang term.
    """
    ka, kb = term_key(a), term_key(b)
    if ka == kb:
        return 0
    return -1 if ka < kb else 1


def term_lt(a: Term, b: Term) -> bool:
    """Say whether ``a < b`` in Erlang.

    Erlang: erlang:'<'/2
    """
    return bool(term_key(a) < term_key(b))


def term_eq(a: Term, b: Term) -> bool:
    """Say whether ``a == b`` in Erlang (``1 == 1.0`` is true).

    Erlang: erlang:'=='/2
    """
    return bool(term_key(a) == term_key(b))


def exact_eq(a: Term, b: Term) -> bool:
    """Say whether ``a =:= b`` in Erlang (``1 =:= 1.0`` is false).

    Erlang: erlang:'=:='/2
    """
    return bool(exact_key(a) == exact_key(b))


def subtract(theirs: list[Term], ours: list[Term]) -> list[Term]:
    """Return ``theirs -- ours``: a new list, ``theirs`` without one copy of each element of ``ours``.

    Erlang: erlang:'--'/2

    A multiset difference, from the left: ``[a, a, b] -- [a]`` is
    ``[a, b]``, and an element of ``ours`` that ``theirs`` lacks is
    ignored. Elements match exactly (``=:=``), so ``[1] -- [1.0]`` is
    ``[1]``. pg2's ``store`` and pg's leave and sync paths use it, always
    with pids or refs in ``ours``.

    Raises:
        TypeError: an element is not an Erlang term.
    """
    if all(map(_compares_exactly, ours)):
        # The common case: Python's == on a pid or a ref is =:=, so each
        # element removes its first copy with list.remove, as written.
        left = list(theirs)
        for item in ours:
            with contextlib.suppress(ValueError):
                left.remove(item)
        return left
    # Any other term: count the copies to remove per exact key (== would
    # take 1 for 1.0), then keep, in order, what is not removed.
    to_remove = Counter(exact_key(item) for item in ours)
    kept: list[Term] = []
    for item in theirs:
        key = exact_key(item)
        if to_remove[key] > 0:
            to_remove[key] -= 1
        else:
            kept.append(item)
    return kept


def _compares_exactly(term: Term) -> bool:
    """Say whether ``term`` is a pid or a ref: Python's ``==`` on it is Erlang's ``=:=``.

    Erlang: none (which terms the fast path of subtract/2 may compare with ==)
    """
    keyer = _EXACT_KEYERS.get(type(term))
    if keyer is None:
        keyer = _classify(type(term), term)[1]
    return keyer is _pid_key or keyer is _ref_key


def check_term(term: Term) -> None:
    """Raise ``TypeError`` unless ``term`` is an Erlang term all the way down.

    Erlang: none (every Erlang value is a term; Python values need checking)

    Cheaper than building a key: nothing is allocated.
    """
    cls = type(term)
    if cls is str or cls is int or cls is bool or cls is bytes:
        return
    if cls is tuple or cls is list:
        for item in term:
            check_term(item)
        return
    keyer = _KEYERS.get(cls) or _classify(cls, term)[0]
    if keyer is _tuple_key or keyer is _list_key:
        for item in term:
            check_term(item)
    elif keyer is _float_key:
        keyer(term)  # rejects NaN and infinities


def is_term(value: Any) -> bool:
    """Say whether ``value`` is an Erlang term as this project represents them.

    Erlang: none (the question never arises in Erlang)
    """
    try:
        check_term(value)
    except TypeError:
        return False
    return True
