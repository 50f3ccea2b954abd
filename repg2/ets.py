"""ETS, Erlang's in-memory term storage: the tables pg2 keeps its state in.

In Erlang, ETS is a set of BIFs implemented in C inside the BEAM
(``erts/emulator/beam/erl_db*.c``), documented as the ``ets`` module in
STDLIB's reference manual. There is no ``ets.erl`` to translate line by line:
this module follows the *documented behaviour* of OTP 18.3, one Python
function per BIF, with Erlang's names and argument order.

Ported: ``new/2`` (types ``set``, ``ordered_set``, ``bag``,
``duplicate_bag``; access ``public``, ``protected``, ``private``;
``named_table``; ``{keypos, N}``; the concurrency and ``compressed`` options
are accepted and ignored, they are performance hints), ``delete/1,2``,
``delete_object/2``, ``delete_all_objects/1``, ``insert/2``,
``insert_new/2``, ``lookup/2``, ``lookup_element/3``, ``member/2``,
``update_counter/3,4`` (all update-op forms), ``update_element/3``,
``match/2``, ``match_object/2``, ``match_delete/2``, ``select/2``,
``tab2list/1``, ``first/1``, ``next/2``, ``last/1``, ``prev/2``,
``info/1,2``, ``all/0``, ``whereis/1`` (from OTP 21); of match-spec
guards, the term comparisons (``=:=``, ``=/=``, ``==``, ``/=``, ``<``,
``>``, ``=<``, ``>=``), which pg's ``which_local_groups/1`` uses.

Left out: ``heir`` (raises ``NotImplementedError``), ``give_away``,
``rename``, ``setopts``, ``safe_fixtable``, continuations (``match/3``,
``select/3``), ``select_count``, ``select_delete``, ``file2tab`` and friends,
and every match-spec guard other than a term comparison (type tests,
``andalso``, arithmetic...): such a guard raises ``badarg``.

How it works
------------
A table is a :class:`_Table`: owner pid, access, type, a lock, and a store:

- ``set``: a ``dict`` keyed by :func:`repg2.terms.exact_key` of the key, so
  ``1`` and ``1.0`` are two keys (a hash table matches keys with ``=:=``);
- ``bag``/``duplicate_bag``: the same ``dict`` of lists, in insertion order;
- ``ordered_set``: a ``sortedcontainers.SortedDict`` keyed by
  :func:`repg2.terms.term_key` of the key, so it iterates in Erlang's term
  order and ``1`` and ``1.0`` are *one* key (a tree compares keys with
  ``==``). Looking up ``1`` can return an object whose key is ``1.0``, as
  the ETS manual warns.

Matching (``match``, ``match_object``, ``select``) always compares with
``=:=``, in every table type, as the BEAM's match programs do.

Fast matching of partially instantiated keys: pg2's comment on
``pg2_table`` says it relies on it, and here it is. When the key in a
pattern is a tuple whose leading elements are bound, e.g.
``('member', 'g1', '$1')``, every key it can match has the same size and the
same leading elements, and Erlang orders tuples by size and then element by
element, so those keys are *contiguous* in an ``ordered_set``. The scan
starts at the smallest possible such key (``irange``) and stops at the first
key outside the prefix: O(log n + k), not O(n). A fully bound key is a single
lookup in every table type. Other patterns scan the whole table.

Errors: every misuse raises :class:`repg2.erlang.ErlangError` with
``reason == 'badarg'``, as the BIFs do: an unknown or deleted table, a value
of the wrong type, a write to a ``protected`` table (or any access to a
``private`` one) from a process that is not the owner, a missing key for
``update_counter``... The exception message says which call and why.

Ownership: the process that calls :func:`new` owns the table; when it ends,
the table is deleted (there is no heir). Reads of ``public`` and
``protected`` tables work from any thread, process or not, without a
message to the owner: that is what makes pg2's reads local and cheap.

Differences from OTP (see ``TRANSLATION_NOTES.md``):

- Table ids are :class:`Tid` objects (OTP 18 used integers, OTP 21+ uses
  references); a ``Tid`` is not a term and cannot be stored in a table.
- Objects are tuples of terms as :mod:`repg2.terms` defines them; a value
  that is not a term is ``badarg``. Objects come back exactly as inserted
  (a ``NamedTuple`` stays one). Lists inside objects are copied in and out,
  as ETS copies every term; tuples are immutable and are shared.
- Every call holds the table's lock for its whole run, so each call is
  atomic and isolated, also ``match``/``select`` over a whole table (in OTP
  only single-object operations and ``insert/2`` of a list promise that).
- ``set`` and ``bag`` iterate in insertion order (OTP: hash order, which is
  unspecified); ``next/2`` on them is O(n).
- Of match-spec guards only the term comparisons are ported (others are ``badarg``).
"""

from __future__ import annotations

import bisect
import builtins
import itertools
import operator
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from sortedcontainers import SortedDict

from repg2 import erlang, terms

# This module defines all/0 and next/2 as Erlang names them, shadowing the
# builtins; its own code says builtins.all and builtins.next.

__all__ = [
    "Tid",
    "all",
    "delete",
    "delete_all_objects",
    "delete_object",
    "first",
    "info",
    "insert",
    "insert_new",
    "last",
    "lookup",
    "lookup_element",
    "match",
    "match_delete",
    "match_object",
    "member",
    "new",
    "next",
    "prev",
    "select",
    "tab2list",
    "update_counter",
    "update_element",
    "whereis",
]

# -- How ETS values are represented ------------------------------------------
Atom = str  # an Erlang atom
Term = Any  # any Erlang term (see repg2.terms)
Object = tuple[Any, ...]  # a stored object: a tuple (NamedTuples are tuples)
Tab = Any  # a table: its name (an atom, for named tables) or a Tid
Pattern = Any  # a match pattern: a term with '_' and '$1', '$2'... in it
MatchSpec = list[tuple[Any, list[Any], list[Any]]]  # [(Head, Guards, Body)]

END_OF_TABLE = "$end_of_table"  # what first/next/last/prev return at the end
_NO_KEY = object()  # marks delete/1 (no key) apart from delete/2
# Caches keyed by Python's == must not mix terms that Python finds equal and
# Erlang does not: 1 == 1.0 == True, and a str subclass may equal a str yet
# name another atom (terms.term_key uses its str()). So a cache key carries
# the exact types of the elements it covers, and only flat tuples whose
# elements are all of these types are remembered: for them == is Erlang's ==.
_PLAIN_LEAVES = frozenset({str, bytes, erlang.Pid, erlang.Ref})
# Term-order keys of such ordered_set keys, by (element types, key).
# Bounded by clearing.
_TERM_KEYS_MAX = 4096
_term_keys: dict[Any, Any] = {}
# Above every term key: keys are (tag, ...) tuples and no tag exceeds BINARY's.
# A prefix followed by it bounds a prefix range from above (_OrderedStore.prefix).
_ABOVE_EVERY_TERM = (terms.BINARY + 1,)
_TYPES = ("set", "ordered_set", "bag", "duplicate_bag")
_ACCESS = ("public", "protected", "private")


class Tid:
    """The identifier of a table, as returned by ``new`` for an unnamed table.

    Erlang: none (the tid() data type: an integer in OTP 18, a reference in OTP 21+)

    A named table is referred to by its name; its ``Tid`` works too.
    """

    __slots__ = ("id", "name")

    def __init__(self, id: int, name: Atom) -> None:
        self.id = id
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tid) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("tid", self.id))

    def __repr__(self) -> str:
        return f"#Tid<{self.id}:{self.name}>"


def _badarg(fname: str, why: str) -> erlang.ErlangError:
    """Build the ``badarg`` error of a BIF, with a message naming the call.

    Erlang: none (Erlang's badarg carries no message; ours says why)
    """
    return erlang.ErlangError("badarg", f"badarg: ets:{fname}: {why}")


def _is_int(value: Any) -> bool:
    """Say whether ``value`` is an Erlang integer (``bool`` is an atom here).

    Erlang: erlang:is_integer/1
    """
    return isinstance(value, int) and not isinstance(value, bool)


def _copy(term: Term) -> Term:
    """Return ``term`` with every list inside it copied; the same object if it has none.

    Erlang: none (ETS copies terms in and out of tables; only lists are mutable here)
    """
    # Only containers are visited: a tuple without a list inside comes back
    # as itself without allocating anything (every ETS row passes here).
    if isinstance(term, list):
        return [_copy(item) if isinstance(item, list | tuple) else item for item in term]
    if isinstance(term, tuple):
        for i, item in enumerate(term):
            if isinstance(item, list | tuple):
                copied = _copy(item)
                if copied is not item:  # a list inside: rebuild this tuple from here on
                    rest = [_copy(x) if isinstance(x, list | tuple) else x for x in term[i + 1 :]]
                    return _rebuild(term, [*term[:i], copied, *rest])
        return term
    return term


def _rebuild(obj: Object, items: list[Any]) -> Object:
    """Make a tuple of ``obj``'s own class (plain or NamedTuple) from ``items``.

    Erlang: none (Erlang tuples have no classes; NamedTuples come back as inserted)
    """
    cls = type(obj)
    if cls is tuple:
        return tuple(items)
    make = getattr(cls, "_make", None)
    if make is not None:
        made: Object = make(items)
        return made
    return cls(items)


# == Stores: the three shapes of table =========================================
# Each store is only touched with its table's lock held. A store never sees a
# value that is not a term: the BIFs check before they call it.


class _HashStore:
    """A ``set``, ``bag`` or ``duplicate_bag``: a dict from exact key to objects.

    Erlang: none (db_hash.c, the BEAM's linear hash tables)

    Keys are hashed by :func:`terms.exact_key`: ``1`` and ``1.0`` differ.
    A ``set`` keeps one object per key; a ``bag`` a list of distinct objects
    per key, a ``duplicate_bag`` any list, both in insertion order.
    """

    def __init__(self, kind: Atom, keypos: int) -> None:
        self.kind = kind
        self.keypos = keypos
        self.size = 0
        self.buckets: dict[Any, list[Object]] = {}

    def keyof(self, key: Term) -> Any:
        """Hash a key for this store (raises TypeError for a non-term).

        Erlang: none (the hash of a key)
        """
        return terms.exact_key(key)

    def get(self, k: Any) -> list[Object]:
        """Return the objects stored under the hashed key ``k``.

        Erlang: none (bucket lookup)
        """
        return self.buckets.get(k, [])

    def put(self, k: Any, obj: Object) -> None:
        """Store ``obj`` under ``k``, replacing (set), adding (bag) or appending.

        Erlang: none (db_put_hash)
        """
        bucket = self.buckets.get(k)
        if bucket is None:
            self.buckets[k] = [obj]
            self.size += 1
        elif self.kind == "set":
            bucket[0] = obj
        elif self.kind == "bag":
            exact = terms.exact_key(obj)
            for i, old in enumerate(bucket):
                if terms.exact_key(old) == exact:
                    bucket[i] = obj  # a bag never holds two identical objects
                    return
            bucket.append(obj)
            self.size += 1
        else:
            bucket.append(obj)
            self.size += 1

    def contains(self, k: Any) -> bool:
        """Say whether any object is stored under ``k``.

        Erlang: none (db_member_hash)
        """
        return k in self.buckets

    def delete_key(self, k: Any) -> None:
        """Remove every object under ``k``.

        Erlang: none (db_erase_hash)
        """
        bucket = self.buckets.pop(k, None)
        if bucket is not None:
            self.size -= len(bucket)

    def remove(self, k: Any, doomed: Callable[[Object], bool]) -> None:
        """Remove the objects under ``k`` for which ``doomed(obj)`` is true.

        Erlang: none (db_erase_object_hash)
        """
        bucket = self.buckets.get(k)
        if bucket is None:
            return
        kept = [obj for obj in bucket if not doomed(obj)]
        self.size -= len(bucket) - len(kept)
        if kept:
            self.buckets[k] = kept
        else:
            del self.buckets[k]

    def clear(self) -> None:
        """Remove every object.

        Erlang: none (db_delete_all_objects_hash)
        """
        self.buckets.clear()
        self.size = 0

    def objects(self) -> Iterator[Object]:
        """Iterate over every object, in insertion order.

        Erlang: none (a hash table walk)
        """
        for bucket in self.buckets.values():
            yield from bucket

    def first_key(self) -> Term:
        """Return the key of the first object, or ``'$end_of_table'``.

        Erlang: none (db_first_hash)
        """
        for bucket in self.buckets.values():
            return bucket[0][self.keypos - 1]
        return END_OF_TABLE

    def next_key(self, k: Any, forward: bool) -> Term | None:
        """Return the key after ``k`` in table order; None if ``k`` is not here.

        Erlang: none (db_next_hash; prev/2 on a hash table is next/2)
        """
        found = False
        for hashed, bucket in self.buckets.items():
            if found:
                return bucket[0][self.keypos - 1]
            found = hashed == k
        return END_OF_TABLE if found else None


class _OrderedStore:
    """An ``ordered_set``: a ``SortedDict`` from term-order key to the object.

    Erlang: none (db_tree.c, the BEAM's AVL trees)

    Keys are :func:`terms.term_key`, so iteration is Erlang's term order and
    ``1 == 1.0`` is one key, as in a tree compared with ``==``.
    """

    kind = "ordered_set"

    def __init__(self, keypos: int) -> None:
        self.keypos = keypos
        self.tree: SortedDict[terms.Key, Object] = SortedDict()

    @property
    def size(self) -> int:
        """The number of objects.

        Erlang: none (the tree's element count)
        """
        return len(self.tree)

    def keyof(self, key: Term) -> Any:
        """Turn a key into its term-order key (raises TypeError for a non-term).

        Erlang: none (cmp_key in db_tree.c)

        Flat tuple keys of atoms, pids, refs and binaries are remembered (see
        :data:`_term_keys`): every pg2 read looks ``('group', Name)`` up again.
        """
        if type(key) is not tuple:
            return terms.term_key(key)
        signature = (tuple(map(type, key)), key)
        try:
            return _term_keys[signature]
        except (KeyError, TypeError):  # TypeError: a key with a list in it
            pass
        found = terms.term_key(key)
        if _PLAIN_LEAVES.issuperset(signature[0]):
            if len(_term_keys) >= _TERM_KEYS_MAX:
                _term_keys.clear()  # atomic under the GIL
            _term_keys[signature] = found
        return found

    def contains(self, k: Any) -> bool:
        """Say whether an object is stored under ``k``.

        Erlang: none (db_member_tree)
        """
        return k in self.tree

    def get(self, k: Any) -> list[Object]:
        """Return ``[object]`` stored under ``k``, or ``[]``.

        Erlang: none (db_get_tree)
        """
        obj = self.tree.get(k)
        return [] if obj is None else [obj]

    def put(self, k: Any, obj: Object) -> None:
        """Store ``obj`` under ``k``, replacing the object of an equal key.

        Erlang: none (db_put_tree)
        """
        self.tree[k] = obj

    def delete_key(self, k: Any) -> None:
        """Remove the object under ``k``, if any.

        Erlang: none (db_erase_tree)
        """
        self.tree.pop(k, None)

    def remove(self, k: Any, doomed: Callable[[Object], bool]) -> None:
        """Remove the object under ``k`` if ``doomed(obj)`` is true.

        Erlang: none (db_erase_object_tree)
        """
        obj = self.tree.get(k)
        if obj is not None and doomed(obj):
            del self.tree[k]

    def clear(self) -> None:
        """Remove every object.

        Erlang: none (db_delete_all_objects_tree)
        """
        self.tree.clear()

    def objects(self) -> Iterator[Object]:
        """Iterate over every object in Erlang term order of their keys.

        Erlang: none (an in-order tree walk)
        """
        return iter(self.tree.values())

    def prefix(self, size: int, prefix: tuple[Any, ...]) -> list[Object]:
        """Return the objects whose key is a ``size``-tuple starting with ``prefix``, in order.

        Erlang: none (the partly bound key case of db_select_tree)

        Tuples order by size, then element by element, so those keys are
        contiguous: they lie between the least of them (a shorter tuple of
        element keys sorts before every longer one it begins) and the prefix
        followed by a key above every term. Bisections bound the range, so
        no key is compared in Python: O(log n + k).

        The bisections run on the ``SortedList`` of keys inside the
        ``SortedDict`` directly (``_lists``, sorted sublists, and ``_maxes``,
        the last key of each; sortedcontainers' documented implementation):
        its public ``irange`` costs about 9 µs of Python per call, more than
        the rest of a 10-member pg2 read.
        """
        return self.between((terms.TUPLE, size, prefix), (terms.TUPLE, size, (*prefix, _ABOVE_EVERY_TERM)))

    def between(self, lower: Any, upper: Any) -> list[Object]:
        """Return the objects whose term-order key ``k`` has ``lower <= k < upper``, in order.

        Erlang: none (see prefix)
        """
        keys: Any = self.tree._list  # type: ignore[attr-defined]  # the private SortedList: not in the stubs
        lists, maxes = keys._lists, keys._maxes
        pos = bisect.bisect_left(maxes, lower)
        start = bisect.bisect_left(lists[pos], lower) if pos < len(maxes) else 0
        found: list[Any] = []
        while pos < len(maxes):
            sub = lists[pos]
            end = bisect.bisect_left(sub, upper, start)
            found += sub[start:end]
            if end < len(sub):
                break
            pos, start = pos + 1, 0
        return list(map(self.tree.__getitem__, found))

    def first_key(self) -> Term:
        """Return the least key, or ``'$end_of_table'``.

        Erlang: none (db_first_tree)
        """
        if not self.tree:
            return END_OF_TABLE
        return self.tree.peekitem(0)[1][self.keypos - 1]

    def last_key(self) -> Term:
        """Return the greatest key, or ``'$end_of_table'``.

        Erlang: none (db_last_tree)
        """
        if not self.tree:
            return END_OF_TABLE
        return self.tree.peekitem(-1)[1][self.keypos - 1]

    def next_key(self, k: Any, forward: bool) -> Term:
        """Return the next greater (or smaller) key than ``k``; ``k`` need not be stored.

        Erlang: none (db_next_tree, db_prev_tree)
        """
        if forward:
            keys = self.tree.irange(minimum=k, inclusive=(False, True))
        else:
            keys = self.tree.irange(maximum=k, inclusive=(True, False), reverse=True)
        for found in keys:
            return self.tree[found][self.keypos - 1]
        return END_OF_TABLE


_Store = _HashStore | _OrderedStore


class _Table:
    """One ETS table: its options, its owner, its lock and its store.

    Erlang: none (DbTable, the BEAM's table header)
    """

    def __init__(
        self,
        tid: Tid,
        owner: erlang.Pid,
        named: bool,
        kind: Atom,
        protection: Atom,
        keypos: int,
        options: dict[str, Any],
    ) -> None:
        self.tid = tid
        self.name = tid.name
        self.named = named
        self.kind = kind
        self.protection = protection
        self.keypos = keypos
        self.options = options
        self.owner = owner
        self.store: _Store = _OrderedStore(keypos) if kind == "ordered_set" else _HashStore(kind, keypos)
        # DIVERGENCE(D18): one lock per table held for a whole BIF, so a match sees one consistent table.
        # Invariant of `lock`: whoever holds it may read and change `store`,
        # `deleted` and `has_lists`; no other thread touches them. Every BIF
        # holds it from its first look at the store to its last, so each BIF
        # is atomic and isolated. Lock order: the registry lock before a
        # table lock, never the other way round.
        self.lock = threading.Lock()
        self.deleted = False
        self.has_lists = False  # once a stored object held a list, copy out
        self.rows_examined = 0  # objects a match looked at: shows a prefix scan

    @property
    def ref(self) -> Tab:
        """How ``all/0`` and ``new/2`` name the table: its name if named, else its Tid.

        Erlang: none (ets:new/2's return value)
        """
        return self.name if self.named else self.tid

    def out(self, value: Term) -> Term:
        """Return ``value`` as a caller may keep it: lists copied if there may be any.

        Erlang: none (ETS copies terms out of a table)
        """
        return _copy(value) if self.has_lists else value


# == The registry of tables ====================================================
# Invariant of _registry_lock: a live table is in _tables under its id, in
# _names under its name if it is named, and in _owned under its owner; a
# deleted table is in none of them and has `deleted` set. Plain dict reads
# outside the lock are safe (the GIL): a BIF that finds a table just being
# deleted sees `deleted` once it holds the table lock.
_registry_lock = threading.Lock()
_tables: dict[int, _Table] = {}
_names: dict[Atom, _Table] = {}
_owned: dict[erlang.Pid, list[_Table]] = {}
_ids = itertools.count(1)


def _atom(value: Any) -> Atom | None:
    """Return ``value`` as an atom's text if it is one (``True`` is ``'true'``), else None.

    Erlang: erlang:is_atom/1
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return None


def _resolve(tab: Tab, fname: str) -> _Table | None:
    """Find a live table by name or Tid; None if there is none.

    Erlang: none (db_get_table's lookup)

    Raises:
        ErlangError: ``badarg`` if ``tab`` is neither an atom nor a Tid.
    """
    if type(tab) is str:  # the common case, a named table, without a call
        return _names.get(tab)
    if isinstance(tab, Tid):
        return _tables.get(tab.id)
    name = _atom(tab)
    if name is None:
        raise _badarg(fname, f"not a table name or id: {tab!r}")
    return _names.get(name)


def _table(tab: Tab, fname: str, write: bool = False) -> _Table:
    """Find a table the caller may read (or write, if ``write``).

    Erlang: none (db_get_table with DB_READ or DB_WRITE)

    Reads of public and protected tables are open to every thread; writes to
    protected tables and any access to private ones need the owner, asked
    with ``current_process_or_none`` so a plain reading thread is not made a
    process.

    Raises:
        ErlangError: ``badarg`` for no such table, or access denied.
    """
    if write:
        erlang._check_not_killed()  # a killed process writes nothing more (D1)
    t = _resolve(tab, fname)
    if t is None:
        raise _badarg(fname, f"no such table: {tab!r}")
    if t.protection != "public" and (write or t.protection == "private"):
        if erlang.current_process_or_none() != t.owner:
            raise _badarg(fname, f"{t.protection} table {tab!r} is owned by {t.owner!r}, not the caller")
    return t


def _alive(t: _Table, fname: str) -> None:
    """Raise ``badarg`` if ``t`` was deleted after it was found (lock held).

    Erlang: none (the race between finding a table and its deletion)
    """
    if t.deleted:
        raise _badarg(fname, f"table {t.ref!r} was deleted")


def _drop(t: _Table) -> None:
    """Take a table out of the registry and empty it (registry lock held).

    Erlang: none (free_table in erl_db.c)
    """
    _tables.pop(t.tid.id, None)
    if t.named and _names.get(t.name) is t:
        del _names[t.name]
    owned = _owned[t.owner]
    owned.remove(t)
    if not owned:
        del _owned[t.owner]
    with t.lock:
        t.deleted = True
        t.store.clear()


def _owner_exited(pid: erlang.Pid, reason: Any) -> None:
    """Delete every table that ``pid`` owned: it has ended.

    Erlang: none (erts_db_process_exiting: a table dies with its owner)
    """
    if pid not in _owned:
        return
    with _registry_lock:
        for t in list(_owned.get(pid, ())):
            _drop(t)


erlang.on_process_exit(_owner_exited)


def _table_of(tab: Tab) -> _Table:
    """Return the internal record of a table, for tests and benchmarks.

    Erlang: none (introspection for this project's tests)
    """
    t = _resolve(tab, "_table_of/1")
    if t is None:
        raise _badarg("_table_of/1", f"no such table: {tab!r}")
    return t


# == Table life ===============================================================


def new(name: Atom, options: list[Any]) -> Tab:
    """Create a table owned by the calling process; return its name or Tid.

    Erlang: ets:new/2

    ``options`` is a list, as in Erlang: one type (``'set'``, the default,
    ``'ordered_set'``, ``'bag'``, ``'duplicate_bag'``), one access
    (``'protected'``, the default, ``'public'``, ``'private'``),
    ``'named_table'``, ``('keypos', N)`` (1-based, default 1). When an
    option is given twice the last one wins, as in Erlang.
    ``('read_concurrency', bool)``, ``('write_concurrency', bool)`` and
    ``'compressed'`` are accepted and only reported by :func:`info`.

    Returns:
        ``name`` for a named table, else a new :class:`Tid`.

    Raises:
        ErlangError: ``badarg`` for a name that is not an atom, an unknown
            option, or a named table whose name is taken.
        NotImplementedError: for ``('heir', Pid, Data)``.
    """
    atom = _atom(name)
    if atom is None:
        raise _badarg("new/2", f"table name must be an atom: {name!r}")
    if not isinstance(options, list):
        raise _badarg("new/2", f"options must be a list: {options!r}")
    kind, protection, named, keypos = "set", "protected", False, 1
    extra: dict[str, Any] = {"read_concurrency": False, "write_concurrency": False, "compressed": False}
    for opt in options:
        if opt in _TYPES:  # Erlang: set | ordered_set | bag | duplicate_bag
            kind = opt
        elif opt in _ACCESS:  # Erlang: public | protected | private
            protection = opt
        elif opt == "named_table":
            named = True
        elif opt == "compressed":
            extra["compressed"] = True
        elif isinstance(opt, tuple) and len(opt) == 2 and opt[0] == "keypos" and _is_int(opt[1]) and opt[1] >= 1:
            keypos = opt[1]
        elif (
            isinstance(opt, tuple)
            and len(opt) == 2
            and opt[0] in ("read_concurrency", "write_concurrency")
            and isinstance(opt[1], bool)
        ):
            extra[opt[0]] = opt[1]
        elif opt == ("heir", "none"):
            pass
        elif isinstance(opt, tuple) and len(opt) == 3 and opt[0] == "heir":  # DIVERGENCE(D17)
            raise NotImplementedError("ets:new/2: the heir option is not ported; a table dies with its owner")
        else:
            raise _badarg("new/2", f"unknown option: {opt!r}")
    owner = erlang.self()  # before the registry lock: self() may take erlang's lock
    with _registry_lock:
        if named and atom in _names:
            raise _badarg("new/2", f"a table named {atom!r} exists already")
        t = _Table(Tid(builtins.next(_ids), atom), owner, named, kind, protection, keypos, extra)
        _tables[t.tid.id] = t
        if named:
            _names[atom] = t
        _owned.setdefault(t.owner, []).append(t)
    return t.ref


def delete(tab: Tab, key: Term = _NO_KEY) -> bool:
    """Delete the whole table (one argument) or every object with ``key`` (two).

    Erlang: ets:delete/1
    Erlang: ets:delete/2

    Deleting the table needs write access (the owner, or anyone for a public
    table). Deleting a key that is not there is not an error.

    Returns:
        ``True`` (Erlang's ``true``).

    Raises:
        ErlangError: ``badarg`` for no such table, no write access, or a key
            that is not a term.
    """
    if key is _NO_KEY:
        t = _table(tab, "delete/1", write=True)
        with _registry_lock:
            if t.deleted:
                raise _badarg("delete/1", f"table {tab!r} was deleted")
            _drop(t)
        return True
    t = _table(tab, "delete/2", write=True)
    k = _keyof(t, key, "delete/2")
    with t.lock:
        _alive(t, "delete/2")
        t.store.delete_key(k)
    return True


def delete_all_objects(tab: Tab) -> bool:
    """Remove every object from the table; the table stays.

    Erlang: ets:delete_all_objects/1

    Returns:
        ``True``.
    """
    t = _table(tab, "delete_all_objects/1", write=True)
    with t.lock:
        _alive(t, "delete_all_objects/1")
        t.store.clear()
    return True


# == Writing ==================================================================


def _keyof(t: _Table, key: Term, fname: str) -> Any:
    """Return the store key of ``key``: exact for hash tables, term order for trees.

    Erlang: none (key hashing or comparison inside the BIF)

    Raises:
        ErlangError: ``badarg`` if ``key`` is not a term.
    """
    try:
        return t.store.keyof(key)
    except TypeError as exc:
        raise _badarg(fname, str(exc)) from exc


def _objects_in(t: _Table, objects: Object | list[Object], fname: str) -> tuple[list[tuple[Any, Object]], bool]:
    """Check objects for ``t``; return (store key, private copy) pairs and whether any held a list.

    Erlang: none (the argument checks of ets:insert/2 and ets:insert_new/2)

    Everything is checked before anything is stored, so a bad object in a
    list leaves the table untouched, as in Erlang.

    Raises:
        ErlangError: ``badarg`` for a non-tuple, a tuple shorter than the key
            position, or a value that is not a term.
    """
    batch = objects if isinstance(objects, list) else [objects]
    checked = []
    copied = False
    for obj in batch:
        if not isinstance(obj, tuple) or len(obj) < t.keypos:
            raise _badarg(fname, f"not an object (a tuple of at least {t.keypos} elements): {obj!r}")
        try:
            terms.check_term(obj)
        except TypeError as exc:
            raise _badarg(fname, str(exc)) from exc
        private = _copy(obj)
        copied = copied or private is not obj
        checked.append((t.store.keyof(obj[t.keypos - 1]), private))
    return checked, copied


def insert(tab: Tab, objects: Object | list[Object]) -> bool:
    """Insert one object (a tuple) or a list of objects.

    Erlang: ets:insert/2

    In a ``set`` or ``ordered_set`` an object replaces the one with the same
    key; a ``bag`` adds it unless an identical object is there; a
    ``duplicate_bag`` always adds it. A list is inserted atomically.

    Returns:
        ``True``.

    Raises:
        ErlangError: ``badarg`` for no such table, no write access, or a bad
            object (see :func:`_objects_in`).
    """
    t = _table(tab, "insert/2", write=True)
    batch, copied = _objects_in(t, objects, "insert/2")
    with t.lock:
        _alive(t, "insert/2")
        t.has_lists = t.has_lists or copied
        for k, obj in batch:
            t.store.put(k, obj)
    return True


def insert_new(tab: Tab, objects: Object | list[Object]) -> bool:
    """Insert like :func:`insert`, but only if no key is in the table yet.

    Erlang: ets:insert_new/2

    With a list, nothing is inserted if any of its keys is present.

    Returns:
        ``True`` if inserted, ``False`` if a key was already there.
    """
    t = _table(tab, "insert_new/2", write=True)
    batch, copied = _objects_in(t, objects, "insert_new/2")
    with t.lock:
        _alive(t, "insert_new/2")
        if any(t.store.get(k) for k, _ in batch):
            return False
        t.has_lists = t.has_lists or copied
        for k, obj in batch:
            t.store.put(k, obj)
    return True


def delete_object(tab: Tab, obj: Object) -> bool:
    """Delete exactly this object (every copy of it in a ``duplicate_bag``).

    Erlang: ets:delete_object/2

    The stored object must be identical (``=:=``) to ``obj``; other objects
    with the same key stay.

    Returns:
        ``True``, whether or not the object was there.
    """
    t = _table(tab, "delete_object/2", write=True)
    ((k, _),), _ = _objects_in(t, obj, "delete_object/2")
    exact = terms.exact_key(obj)
    with t.lock:
        _alive(t, "delete_object/2")
        t.store.remove(k, lambda stored: terms.exact_key(stored) == exact)
    return True


def _counter_ops(op: Any, keypos: int) -> tuple[list[tuple[int, int, int | None, int | None]], bool]:
    """Parse an update_counter UpdateOp into (pos, incr, threshold, setvalue) rows.

    Erlang: none (the argument forms of ets:update_counter/3)

    Returns:
        The operations and whether the caller asked for a single result.
    """
    if _is_int(op):  # Erlang: Incr, on the element after the key
        return [(keypos + 1, op, None, None)], True
    single = isinstance(op, tuple)
    ops = [op] if single else op
    if not isinstance(ops, list):
        raise _badarg("update_counter/3", f"not an update operation: {op!r}")
    parsed: list[tuple[int, int, int | None, int | None]] = []
    for one in ops:
        if isinstance(one, tuple) and len(one) == 2 and _is_int(one[0]) and _is_int(one[1]):
            parsed.append((one[0], one[1], None, None))  # Erlang: {Pos, Incr}
        elif isinstance(one, tuple) and len(one) == 4 and builtins.all(_is_int(x) for x in one):
            parsed.append((one[0], one[1], one[2], one[3]))  # Erlang: {Pos, Incr, Threshold, SetValue}
        else:
            raise _badarg("update_counter/3", f"not an update operation: {one!r}")
    return parsed, single


def update_counter(tab: Tab, key: Term, op: Any, default: Object | None = None) -> int | list[int]:
    """Add to integer counters in the object with ``key``; return the new values.

    Erlang: ets:update_counter/3
    Erlang: ets:update_counter/4

    Positions are **1-based, as in Erlang**: ``update_counter(tab, key, (4,
    1))`` adds 1 to the fourth element, ``row[3]`` in Python. ``op`` is an
    increment (on the element after the key), ``(pos, incr)``, ``(pos, incr,
    threshold, setvalue)`` (past the threshold the counter is set to
    ``setvalue``), or a list of those (the result is then a list). With
    ``default`` (``/4``), a missing key first inserts ``default`` with its
    key element replaced by ``key``. The update is atomic: the object is
    rewritten once, of its own class (a NamedTuple stays one), or not at all.

    Returns:
        The new counter value, or a list of them for a list of operations.

    Raises:
        ErlangError: ``badarg`` if the key is missing (and no default), the
            table is a bag, a position is the key's or out of range, or an
            element to update is not an integer.
    """
    fname = "update_counter/3" if default is None else "update_counter/4"
    t = _table(tab, fname, write=True)
    if t.kind in ("bag", "duplicate_bag"):
        raise _badarg(fname, f"table {tab!r} is a {t.kind}")
    ops, single = _counter_ops(op, t.keypos)
    k = _keyof(t, key, fname)
    copied = False
    if default is not None:
        ((_, default),), copied = _objects_in(t, default, fname)
        default = _rebuild(default, [key if i == t.keypos - 1 else x for i, x in enumerate(default)])
    with t.lock:
        _alive(t, fname)
        t.has_lists = t.has_lists or copied
        found = t.store.get(k)
        if not found and default is None:
            raise _badarg(fname, f"no object with key {key!r} in {tab!r}")
        obj = found[0] if found else default
        assert obj is not None  # Erlang: the badarg above
        items = list(obj)
        results = []
        for pos, incr, threshold, setvalue in ops:
            if not 1 <= pos <= len(items) or pos == t.keypos:
                raise _badarg(fname, f"position {pos} is the key or outside an object of size {len(items)}")
            value = items[pos - 1]
            if not _is_int(value):
                raise _badarg(fname, f"element {pos} of {obj!r} is not an integer")
            value += incr
            if threshold is not None and (value > threshold if incr >= 0 else value < threshold):
                value = setvalue
            items[pos - 1] = value
            results.append(value)
        t.store.put(k, _rebuild(obj, items))
    return results[0] if single else results


def update_element(tab: Tab, key: Term, op: tuple[int, Term] | list[tuple[int, Term]]) -> bool:
    """Replace elements (1-based positions) of the object with ``key``.

    Erlang: ets:update_element/3

    Returns:
        ``True`` if the object was found and updated, ``False`` if no object
        has ``key``.

    Raises:
        ErlangError: ``badarg`` for a bag, the key's position, or a position
            outside the object.
    """
    t = _table(tab, "update_element/3", write=True)
    if t.kind in ("bag", "duplicate_bag"):
        raise _badarg("update_element/3", f"table {tab!r} is a {t.kind}")
    ops = [op] if isinstance(op, tuple) else op
    well_formed = isinstance(ops, list) and builtins.all(
        isinstance(o, tuple) and len(o) == 2 and _is_int(o[0]) for o in ops
    )
    if not well_formed:
        raise _badarg("update_element/3", f"not an element update: {op!r}")
    try:
        terms.check_term([value for _, value in ops])
    except TypeError as exc:
        raise _badarg("update_element/3", str(exc)) from exc
    k = _keyof(t, key, "update_element/3")
    with t.lock:
        _alive(t, "update_element/3")
        found = t.store.get(k)
        if not found:
            return False
        items = list(found[0])
        for pos, value in ops:
            if not 1 <= pos <= len(items) or pos == t.keypos:
                raise _badarg("update_element/3", f"position {pos} is the key or outside the object")
            copied = _copy(value)
            t.has_lists = t.has_lists or copied is not value
            items[pos - 1] = copied
        t.store.put(k, _rebuild(found[0], items))
    return True


# == Reading ==================================================================


def lookup(tab: Tab, key: Term) -> list[Object]:
    """Return the objects with ``key``: ``[]`` or ``[obj]``, or several in a bag.

    Erlang: ets:lookup/2

    In an ``ordered_set`` the returned object's key may be ``1.0`` when
    ``key`` is ``1`` (keys compare with ``==`` there). Bags return objects in
    insertion order.
    """
    t = _table(tab, "lookup/2")
    k = _keyof(t, key, "lookup/2")
    with t.lock:
        _alive(t, "lookup/2")
        return [t.out(obj) for obj in t.store.get(k)]


def lookup_element(tab: Tab, key: Term, pos: int) -> Term:
    """Return element ``pos`` (1-based) of the object with ``key``.

    Erlang: ets:lookup_element/3

    Returns:
        The element; for a bag, the list of that element of each object.

    Raises:
        ErlangError: ``badarg`` if no object has ``key`` or one is shorter
            than ``pos``.
    """
    t = _table(tab, "lookup_element/3")
    if not _is_int(pos) or pos < 1:
        raise _badarg("lookup_element/3", f"not a position: {pos!r}")
    k = _keyof(t, key, "lookup_element/3")
    with t.lock:
        _alive(t, "lookup_element/3")
        found = t.store.get(k)
        if not found or any(len(obj) < pos for obj in found):
            raise _badarg("lookup_element/3", f"no object with key {key!r} and an element {pos}")
        values = [t.out(obj[pos - 1]) for obj in found]
    return values if t.kind in ("bag", "duplicate_bag") else values[0]


def member(tab: Tab, key: Term) -> bool:
    """Say whether an object with ``key`` is in the table.

    Erlang: ets:member/2
    """
    t = _table(tab, "member/2")
    k = _keyof(t, key, "member/2")
    with t.lock:
        _alive(t, "member/2")
        return t.store.contains(k)


def tab2list(tab: Tab) -> list[Object]:
    """Return every object, in table order (term order for an ``ordered_set``).

    Erlang: ets:tab2list/1
    """
    t = _table(tab, "tab2list/1")
    with t.lock:
        _alive(t, "tab2list/1")
        return [t.out(obj) for obj in t.store.objects()]


def _walk(tab: Tab, key: Term | None, fname: str, forward: bool) -> Term:
    """Shared body of first/next/last/prev.

    Erlang: none (first/1, next/2, last/1, prev/2 differ only in direction)
    """
    t = _table(tab, fname)
    k = None if key is None else _keyof(t, key, fname)
    with t.lock:
        _alive(t, fname)
        store = t.store
        if k is None:
            if forward or isinstance(store, _HashStore):
                return t.out(store.first_key())
            return t.out(store.last_key())
        found = store.next_key(k, forward or isinstance(store, _HashStore))
        if found is None:
            raise _badarg(fname, f"key {key!r} is not in {tab!r}")
        return t.out(found)


def first(tab: Tab) -> Term:
    """Return the first key in table order, or ``'$end_of_table'``.

    Erlang: ets:first/1
    """
    # DIVERGENCE(D19): set and bag tables iterate in insertion order (Erlang: hash order).
    return _walk(tab, None, "first/1", forward=True)


def last(tab: Tab) -> Term:
    """Return the last key (ordered_set), or as :func:`first` for other types.

    Erlang: ets:last/1
    """
    return _walk(tab, None, "last/1", forward=False)


def next(tab: Tab, key: Term) -> Term:
    """Return the key after ``key``, or ``'$end_of_table'``.

    Erlang: ets:next/2

    In an ``ordered_set`` ``key`` need not be in the table; in other types
    it must be (else ``badarg``), and the walk is O(n).
    """
    return _walk(tab, key, "next/2", forward=True)


def prev(tab: Tab, key: Term) -> Term:
    """Return the key before ``key`` (ordered_set), or as :func:`next` for other types.

    Erlang: ets:prev/2
    """
    return _walk(tab, key, "prev/2", forward=False)


# == Matching =================================================================
# A pattern is a term in which '_' matches anything and '$N' (N an integer)
# binds; a repeated '$N' must bind equal (=:=) values. A pattern is compiled
# once into nested matcher closures m(value, bindings) -> bool.

Matcher = Callable[[Any, dict[int, Any]], bool]


def _variable(p: Any) -> int | None:
    """Return N if ``p`` is the match variable ``'$N'``, else None.

    Erlang: none (db_is_variable in erl_db_util.c)
    """
    if type(p) is str and len(p) > 1 and p[0] == "$" and p[1:].isascii() and p[1:].isdigit():
        return int(p[1:])
    return None


def is_pattern_atom(term: Any) -> bool:
    """Say whether ``term`` contains an atom that a match pattern reads as a wildcard or variable.

    Erlang: none (db_is_variable in erl_db_util.c, applied to a whole term)

    ``'_'`` matches anything and ``'$N'`` binds, wherever they stand in a
    pattern, also inside tuples and lists. A key built from such a term
    cannot be matched as itself.
    """
    if type(term) is str:
        return term == "_" or _variable(term) is not None
    if isinstance(term, (tuple, list)):
        return any(is_pattern_atom(x) for x in term)
    if isinstance(term, dict):
        return any(is_pattern_atom(k) or is_pattern_atom(v) for k, v in term.items())
    return False


def _any(value: Any, env: dict[int, Any]) -> bool:
    """Match anything: the pattern ``'_'``.

    Erlang: none (the '_' of a match pattern)
    """
    return True


def _compile(pat: Pattern, variables: set[int], fname: str) -> Matcher:
    """Compile a pattern into a matcher, collecting its variable numbers.

    Erlang: none (db_match_compile in erl_db_util.c)

    Raises:
        ErlangError: ``badarg`` if a constant in it is not a term.
    """
    atom = _atom(pat)
    if atom is not None and not isinstance(pat, bool):
        if pat == "_":
            return _any
        n = _variable(pat)
        if n is not None:  # Erlang: '$N', bound on first sight, compared after
            variables.add(n)

            def bind(value: Any, env: dict[int, Any]) -> bool:
                """Bind '$N' on first sight; later sights must be =:= to it.

                Erlang: none (matchBind / matchCmp of the BEAM's match programs)
                """
                if n in env:
                    return bool(terms.exact_key(env[n]) == terms.exact_key(value))
                env[n] = value
                return True

            return bind
    if atom is not None:  # an atom constant, True standing for 'true'

        def is_atom(value: Any, env: dict[int, Any]) -> bool:
            """Match one atom.

            Erlang: none (matchEq on an atom in the BEAM's match programs)
            """
            if value.__class__ is str:  # the common case, without a call
                return bool(value == atom)
            return _atom(value) == atom

        return is_atom
    if isinstance(pat, tuple | list):
        cls = tuple if isinstance(pat, tuple) else list
        size = len(pat)
        subs = [(i, _compile(p, variables, fname)) for i, p in enumerate(pat)]
        subs = [(i, m) for i, m in subs if m is not _any]

        def structure(value: Any, env: dict[int, Any]) -> bool:
            """Match a tuple or list of the same size, element by element.

            Erlang: none (matchTuple / matchList of the BEAM's match programs)
            """
            if not isinstance(value, cls) or len(value) != size:
                return False
            for i, m in subs:  # a plain loop: this is the hot path of every match
                if not m(value[i], env):
                    return False
            return True

        return structure
    try:
        exact = terms.exact_key(pat)
    except TypeError as exc:
        raise _badarg(fname, f"bad pattern: {exc}") from exc

    def constant(value: Any, env: dict[int, Any]) -> bool:
        """Match a number, binary, pid or ref constant exactly (=:=).

        Erlang: none (matchEq in the BEAM's match programs)
        """
        return bool(value == pat and terms.exact_key(value) == exact)

    return constant


def _ground(pat: Pattern) -> bool:
    """Say whether a pattern has no ``'_'`` and no variable in it.

    Erlang: none (db_has_variable, negated)
    """
    if isinstance(pat, str) and not isinstance(pat, bool):
        return pat != "_" and _variable(pat) is None
    if isinstance(pat, tuple | list):
        return builtins.all(_ground(p) for p in pat)
    return True


def _candidates(t: _Table, head: Pattern, fname: str) -> Iterable[Object]:
    """Return the objects that could match ``head``: few if its key is (partly) bound.

    Erlang: none (the key analysis of db_select_hash / db_select_tree)

    A bound key is one lookup; a tuple key with bound leading elements is a
    prefix range of an ordered_set; anything else is the whole table. Lock held.
    """
    store = t.store
    if not isinstance(head, tuple):
        whole = head == "_" or _variable(head) is not None
        return store.objects() if whole else ()
    if len(head) < t.keypos:
        return ()
    key = head[t.keypos - 1]
    if _ground(key):
        return store.get(_keyof(t, key, fname))
    if isinstance(key, tuple) and isinstance(store, _OrderedStore):
        bound = list(itertools.takewhile(_ground, key))
        if bound:
            return store.prefix(len(key), tuple(_keyof(t, p, fname) for p in bound))
    return store.objects()


# Compiled patterns, keyed by the pattern's exact key: 1 and 1.0 are two
# patterns (they match different objects), so the key must be =:=, not ==.
# Bounded by clearing: pg2's patterns carry group names and pids, so their
# number grows with the table; a rebuild costs one compile each.
_COMPILED_MAX = 1024
_compiled_patterns: dict[Any, tuple[Matcher, tuple[int, ...]]] = {}


def _compiled(pattern: Pattern, fname: str) -> tuple[Matcher, tuple[int, ...]]:
    """Return ``pattern``'s matcher and its variable numbers in order, compiling once per pattern.

    Erlang: none (the BEAM compiles a match spec per call too, but in C; see db_match_compile)

    Raises:
        ErlangError: ``badarg`` if a constant in the pattern is not a term.
    """
    try:
        cache_key: Any = terms.exact_key(pattern)
    except TypeError:
        cache_key = None  # not a term: _compile says badarg below
    found = _compiled_patterns.get(cache_key) if cache_key is not None else None
    if found is None:
        variables: set[int] = set()
        found = (_compile(pattern, variables, fname), tuple(sorted(variables)))
        if cache_key is not None:
            if len(_compiled_patterns) >= _COMPILED_MAX:
                _compiled_patterns.clear()  # atomic under the GIL, unlike evicting one entry
            _compiled_patterns[cache_key] = found
    return found


class _PrefixPlan(NamedTuple):
    """How to answer a match whose key has a bound prefix and only variables after it.

    Erlang: none (what db_select_tree does for a partly bound key, specialised)

    pg2 reads only with patterns like ``(('member', Name, '$1'), '$2')``: the
    key's leading elements are bound, every other element of the key and of
    the object is a distinct variable or ``'_'``. In an ordered_set the prefix
    range already holds exactly the objects whose key has that size and that
    prefix (by ``==``), so matching is reduced to a size check, an ``=:=``
    check of the bound elements that hold numbers (``1 == 1.0`` but not
    ``=:=``), and reading the bindings by position.
    """

    keypos: int  # 0-based position of the key in the object
    size: int  # the size of the key tuple
    bound: tuple[Any, ...]  # the bound leading elements of the key
    prefix: tuple[Any, ...]  # their term-order keys: the range to scan
    inexact: tuple[int, ...]  # indices of bound elements holding numbers: checked with =:= per object
    width: int  # the size of the pattern, so of every matching object
    slots: tuple[tuple[int, int], ...]  # per variable in number order: (object index, key index or -1)
    getters: tuple[Callable[[Object], Any], ...]  # per variable: read its value from a matching object
    lower: Any  # the least term-order key of the range (see _OrderedStore.prefix)
    upper: Any  # a key just above the range


# Prefix plans, keyed by (keypos, element types of the pattern and of its key,
# pattern), for keys of _PLAIN_LEAVES only (see there).
_prefix_plans: dict[tuple[int, tuple[type, ...], tuple[type, ...], Pattern], _PrefixPlan] = {}


def _numberless(term: Any) -> bool:
    """Say whether ``term`` holds no number and no bool, at any depth.

    Erlang: none (for such terms, == and =:= agree, and so does Python's ==)
    """
    if isinstance(term, tuple | list):
        return builtins.all(_numberless(item) for item in term)
    return not isinstance(term, int | float)


def _prefix_plan(pattern: Pattern, keypos: int, fname: str) -> _PrefixPlan | None:
    """Return a :class:`_PrefixPlan` for ``pattern``, or None if it is not of that shape.

    Erlang: none (the key analysis of db_select_tree, for the shape pg2 uses)

    Raises:
        ErlangError: ``badarg`` if a bound element is not a term.
    """
    if type(pattern) is not tuple or len(pattern) < keypos:
        return None
    key = pattern[keypos - 1]
    if type(key) is not tuple:
        return None
    signature = (keypos, tuple(map(type, pattern)), tuple(map(type, key)), pattern)
    try:
        return _prefix_plans[signature]
    except (KeyError, TypeError):  # TypeError: a list in the pattern is not hashable
        pass
    slots: dict[int, tuple[int, int]] = {}
    n_bound = 0
    for j, p in enumerate(key):
        if j == n_bound and _ground(p):
            n_bound += 1
            continue
        if type(p) is not str:
            return None
        if p != "_":
            n = _variable(p)
            if n is None or n in slots:
                return None
            slots[n] = (keypos - 1, j)
    if n_bound == 0:
        return None
    for i, p in enumerate(pattern):
        if i == keypos - 1:
            continue
        if type(p) is not str:
            return None
        if p != "_":
            n = _variable(p)
            if n is None or n in slots:
                return None
            slots[n] = (i, -1)
    bound = key[:n_bound]
    try:
        prefix = tuple(terms.term_key(p) for p in bound)
    except TypeError as exc:
        raise _badarg(fname, f"bad pattern: {exc}") from exc
    inexact = tuple(j for j, p in enumerate(bound) if not _numberless(p))
    ordered = tuple(slots[n] for n in sorted(slots))
    getters = tuple(operator.itemgetter(i) if j < 0 else _nested_getter(i, j) for i, j in ordered)
    lower, upper = (terms.TUPLE, len(key), prefix), (terms.TUPLE, len(key), (*prefix, _ABOVE_EVERY_TERM))
    plan = _PrefixPlan(keypos - 1, len(key), bound, prefix, inexact, len(pattern), ordered, getters, lower, upper)
    if _PLAIN_LEAVES.issuperset(signature[2]):  # the other elements are variables: plain str
        if len(_prefix_plans) >= _COMPILED_MAX:
            _prefix_plans.clear()
        _prefix_plans[signature] = plan
    return plan


def _nested_getter(i: int, j: int) -> Callable[[Object], Any]:
    """Return a function reading element ``j`` of element ``i`` of an object (0-based).

    Erlang: none (a variable bound inside the key, read by position)
    """
    return lambda obj: obj[i][j]


def _match_prefix(t: _Table, plan: _PrefixPlan, fname: str) -> list[list[Term]]:
    """Answer ``match/2`` with a prefix plan: one range scan, bindings read by position.

    Erlang: none (db_select_tree over a partly bound key)
    """
    store = t.store
    assert isinstance(store, _OrderedStore)  # only planned for ordered_set
    with t.lock:
        if t.deleted:
            raise _badarg(fname, f"table {t.ref!r} was deleted")
        # Objects are immutable tuples: reading them after the lock is released is safe.
        objects = store.between(plan.lower, plan.upper)
        t.rows_examined += len(objects)
        has_lists = t.has_lists
    width, kp = plan.width, plan.keypos
    if plan.inexact:
        exact = [(j, terms.exact_key(plan.bound[j])) for j in plan.inexact]
        objects = [o for o in objects if builtins.all(terms.exact_key(o[kp][j]) == e for j, e in exact)]
    # One comprehension and no inner one for one or two variables: all pg2 binds. pg2's
    # member read, (('member', Name, '$1'), '$2'), is read by index without a call per row.
    match plan.slots:
        case ((i1, j1), (i2, -1)) if j1 >= 0:
            found = [[obj[i1][j1], obj[i2]] for obj in objects if len(obj) == width]
        case ((i1, j1),) if j1 >= 0:
            found = [[obj[i1][j1]] for obj in objects if len(obj) == width]
        case _:
            found = _bind_by_getters(plan.getters, objects, width)
    if has_lists:
        return [[_copy(value) for value in row] for row in found]
    return found


def _bind_by_getters(
    getters: tuple[Callable[[Object], Any], ...], objects: list[Object], width: int
) -> list[list[Any]]:
    """Read a prefix plan's bindings from each object of the right width, one getter per variable.

    Erlang: none (see _match_prefix)
    """
    match getters:
        case (get1,):
            return [[get1(obj)] for obj in objects if len(obj) == width]
        case (get1, get2):
            return [[get1(obj), get2(obj)] for obj in objects if len(obj) == width]
        case _:
            return [[get(obj) for get in getters] for obj in objects if len(obj) == width]


def _run(t: _Table, clauses: list[tuple[Pattern, Matcher]], fname: str) -> list[tuple[int, Object, dict[int, Any]]]:
    """Match every candidate object against the clauses; first matching clause wins.

    Erlang: none (db_match_dbterm run over the candidate objects)

    Returns:
        (clause index, object, bindings) per matching object, in table order.
    """
    head = clauses[0][0] if len(clauses) == 1 else "_"
    only = clauses[0][1] if len(clauses) == 1 else None
    found = []
    examined = 0
    with t.lock:
        _alive(t, fname)
        for obj in _candidates(t, head, fname):
            examined += 1
            if only is not None:  # one clause (match/2, match_object/2): no inner loop
                env: dict[int, Any] = {}
                if only(obj, env):
                    found.append((0, obj, env))
                continue
            for index, (_, matcher) in enumerate(clauses):
                env = {}
                if matcher(obj, env):
                    found.append((index, obj, env))
                    break
        t.rows_examined += examined
    return found


def match(tab: Tab, pattern: Pattern) -> list[list[Term]]:
    """Return the bindings of the variables for each object that matches ``pattern``.

    Erlang: ets:match/2

    Each result is the list of the values bound to ``'$1'``, ``'$2'``...
    in the order of the variable numbers (``[]`` for a pattern without
    variables), as Erlang returns them: pg2 reads its members with
    ``match(pg2_table, (('member', name, '$1'), '$2'))``. Matching uses
    ``=:=``. In an ordered_set a key with bound leading elements is a range
    scan (see the module docstring).
    """
    t = _table(tab, "match/2")
    if t.kind == "ordered_set":
        plan = _prefix_plan(pattern, t.keypos, "match/2")
        if plan is not None:  # pg2's every read: no matcher needed (see _PrefixPlan)
            return _match_prefix(t, plan, "match/2")
    matcher, order = _compiled(pattern, "match/2")
    found = _run(t, [(pattern, matcher)], "match/2")
    return [[t.out(env[n]) for n in order] for _, _, env in found]


def match_object(tab: Tab, pattern: Pattern) -> list[Object]:
    """Return every object that matches ``pattern``, in table order.

    Erlang: ets:match_object/2
    """
    t = _table(tab, "match_object/2")
    matcher, _order = _compiled(pattern, "match_object/2")
    return [t.out(obj) for _, obj, _ in _run(t, [(pattern, matcher)], "match_object/2")]


def match_delete(tab: Tab, pattern: Pattern) -> bool:
    """Delete every object that matches ``pattern``.

    Erlang: ets:match_delete/2

    Returns:
        ``True``.
    """
    t = _table(tab, "match_delete/2", write=True)
    matcher, _order = _compiled(pattern, "match_delete/2")
    with t.lock:
        # One critical section for the match and the deletes: t.lock is not
        # re-entrant, so match first into a list, then delete, both held.
        _alive(t, "match_delete/2")
        doomed = []
        for obj in _candidates(t, pattern, "match_delete/2"):
            if matcher(obj, {}):
                doomed.append(obj)
        for obj in doomed:
            t.store.remove(t.store.keyof(obj[t.keypos - 1]), lambda stored: stored is obj)  # called at once
    return True


def _compile_body(expr: Any, variables: set[int], fname: str) -> Callable[[Object, dict[int, Any]], Any]:
    """Compile one match-spec body expression into ``f(object, bindings) -> value``.

    Erlang: none (the body part of db_match_compile)

    Supported: ``'$_'`` (the object), ``'$$'`` (all bindings in variable
    order), ``'$N'``, constants, lists of expressions, ``((e1, e2...),)``
    for a tuple (Erlang writes ``{{E1, E2}}``), and ``('const', X)``.

    Raises:
        ErlangError: ``badarg`` for an unbound variable or a function call.
    """
    if isinstance(expr, str) and expr == "$_":
        return lambda obj, env: obj
    if isinstance(expr, str) and expr == "$$":
        order = sorted(variables)
        return lambda obj, env: [env[n] for n in order]
    n = _variable(expr)
    if n is not None:
        if n not in variables:
            raise _badarg(fname, f"variable {expr!r} is not bound in the match head")
        return lambda obj, env: env[n]
    if isinstance(expr, list):
        parts = [_compile_body(e, variables, fname) for e in expr]
        return lambda obj, env: [part(obj, env) for part in parts]
    if isinstance(expr, tuple):
        if len(expr) == 1 and isinstance(expr[0], tuple):  # Erlang: {{E1, E2, ...}}
            parts = [_compile_body(e, variables, fname) for e in expr[0]]
            return lambda obj, env: tuple(part(obj, env) for part in parts)
        if len(expr) == 2 and expr[0] == "const":  # Erlang: {const, X}
            value = expr[1]
            return lambda obj, env: value
        raise _badarg(fname, f"function calls in match-spec bodies are not supported: {expr!r}")
    if not terms.is_term(expr):
        raise _badarg(fname, f"not a term: {expr!r}")
    return lambda obj, env: expr


# The guards of a match spec that are ported: Erlang's term comparisons,
# written as a call (Op, Left, Right), e.g. ('=/=', '$2', []).
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=:=": terms.exact_eq,
    "=/=": lambda a, b: not terms.exact_eq(a, b),
    "==": terms.term_eq,
    "/=": lambda a, b: not terms.term_eq(a, b),
    "<": lambda a, b: terms.compare(a, b) < 0,
    "=<": lambda a, b: terms.compare(a, b) <= 0,
    ">": lambda a, b: terms.compare(a, b) > 0,
    ">=": lambda a, b: terms.compare(a, b) >= 0,
}


def _compile_guard(expr: Any, variables: set[int], fname: str) -> Callable[[Object, dict[int, Any]], bool]:
    """Compile one match-spec guard, a term comparison, into ``g(object, bindings) -> bool``.

    Erlang: none (the guard part of db_match_compile)

    The operands are body expressions (``'$N'``, constants, ``('const',
    X)``...). Comparisons are total over terms, so a ported guard never
    fails; it is true or false.

    Raises:
        ErlangError: ``badarg`` for any other guard, or an unbound variable.
    """
    if not (isinstance(expr, tuple) and len(expr) == 3 and type(expr[0]) is str and expr[0] in _COMPARISONS):
        raise _badarg(fname, f"only term comparisons are ported among match-spec guards, not {expr!r}")
    test = _COMPARISONS[expr[0]]
    left = _compile_body(expr[1], variables, fname)
    right = _compile_body(expr[2], variables, fname)
    return lambda obj, env: test(left(obj, env), right(obj, env))


def _guarded(matcher: Matcher, guards: list[Callable[[Object, dict[int, Any]], bool]]) -> Matcher:
    """Return a matcher that also needs every guard true: a clause's head and its guards.

    Erlang: none (a match program runs the head match, then the guards)

    A clause whose head matches but whose guards fail does not match, so the
    next clause is tried, as in Erlang.
    """

    def head_and_guards(obj: Any, env: dict[int, Any]) -> bool:
        """Match the head, then test the guards on its bindings.

        Erlang: none (see _guarded)
        """
        return matcher(obj, env) and builtins.all(guard(obj, env) for guard in guards)

    return head_and_guards


def select(tab: Tab, match_spec: MatchSpec) -> list[Term]:
    """Return, for each object a clause of ``match_spec`` matches, that clause's body value.

    Erlang: ets:select/2

    ``match_spec`` is a list of ``(head, guards, body)``; ``head`` is a
    pattern as in :func:`match`, ``guards`` a list of term comparisons that
    must all hold (e.g. ``[('=/=', '$2', [])]``; other guards are not
    ported), and ``body`` is a non-empty list of expressions whose last one
    gives the result, e.g. ``[(('member', 'g', '$1'), '$2'), [], ['$1']]``.
    The first clause whose head matches and whose guards hold decides.

    Raises:
        ErlangError: ``badarg`` for a malformed match spec or a guard that
            is not a term comparison.
    """
    t = _table(tab, "select/2")
    if not isinstance(match_spec, list):
        raise _badarg("select/2", f"a match spec is a list: {match_spec!r}")
    clauses: list[tuple[Pattern, Matcher]] = []
    bodies = []
    for clause in match_spec:
        if not (isinstance(clause, tuple) and len(clause) == 3 and isinstance(clause[1], list)):
            raise _badarg("select/2", f"not a (head, guards, body) clause: {clause!r}")
        head, guards, body = clause
        if not isinstance(body, list) or not body:
            raise _badarg("select/2", f"a clause body is a non-empty list: {body!r}")
        matcher, order = _compiled(head, "select/2")
        variables = set(order)
        if guards:  # DIVERGENCE(D16): term comparisons only; other guards are badarg
            matcher = _guarded(matcher, [_compile_guard(g, variables, "select/2") for g in guards])
        clauses.append((head, matcher))
        # Every expression is checked; only the last one gives the value.
        bodies.append([_compile_body(e, variables, "select/2") for e in body][-1])
    if not clauses:
        return []
    return [t.out(bodies[index](obj, env)) for index, obj, env in _run(t, clauses, "select/2")]


# == Information ==============================================================


def info(tab: Tab, item: Atom | None = None) -> Any:
    """Return one property of a table, or all of them as (item, value) pairs.

    Erlang: ets:info/1
    Erlang: ets:info/2

    Items: ``'id'``, ``'name'``, ``'named_table'``, ``'type'``, ``'owner'``,
    ``'protection'``, ``'size'``, ``'keypos'``, ``'heir'`` (always
    ``'none'``), ``'node'``, ``'read_concurrency'``, ``'write_concurrency'``,
    ``'compressed'``.

    Returns:
        The value, the list of pairs, or ``'undefined'`` when there is no
        such table (as in Erlang).

    Raises:
        ErlangError: ``badarg`` for an unknown item or a ``tab`` that is
            neither an atom nor a Tid.
    """
    fname = "info/1" if item is None else "info/2"
    t = _resolve(tab, fname)
    if t is None:
        return "undefined"
    with t.lock:
        if t.deleted:
            return "undefined"
        pairs = [
            ("id", t.tid),
            ("name", t.name),
            ("named_table", t.named),
            ("type", t.kind),
            ("owner", t.owner),
            ("protection", t.protection),
            ("size", t.store.size),
            ("keypos", t.keypos),
            ("heir", "none"),
            ("node", erlang.node()),
            ("read_concurrency", t.options["read_concurrency"]),
            ("write_concurrency", t.options["write_concurrency"]),
            ("compressed", t.options["compressed"]),
        ]
    if item is None:
        return pairs
    for name, value in pairs:
        if name == item:
            return value
    raise _badarg(fname, f"unknown info item: {item!r}")


def all() -> list[Tab]:
    """Return every table of this node: names for named tables, else Tids.

    Erlang: ets:all/0
    """
    with _registry_lock:
        return [t.ref for t in _tables.values()]


def whereis(name: Atom) -> Tid | Atom:
    """Return the Tid of the named table ``name``, or ``'undefined'``.

    Erlang: ets:whereis/1 (OTP 21)
    """
    atom = _atom(name)
    if atom is None:
        raise _badarg("whereis/1", f"not an atom: {name!r}")
    t = _names.get(atom)
    return "undefined" if t is None else t.tid
