"""The external term format: Erlang's ``term_to_binary`` and ``binary_to_term``.

Every message between Erlang nodes travels in this format, and every
control message of the distribution too. This module follows the format as
OTP 25.2.3 writes and reads it: the runtime's ``erts/emulator/beam/external.c``
(the C behind ``term_to_binary/1,2`` and ``binary_to_term/1,2``), documented
in the ERTS User's Guide, chapter "External Term Format". It is a codec, not
a translation of Erlang code: each function names the format element it
handles in its ``Erlang:`` line.

The mapping (the table of ``DESIGN.md``; the tag numbers are the format's)::

    Erlang                      Python                      encoded as (tag)
    atom                        str (<= 255 characters)     SMALL_ATOM_UTF8_EXT 119 / ATOM_UTF8_EXT 118
    true, false                 True, False                 (atoms)
    undefined                   None encodes as it          (atom; decodes to the str 'undefined')
    integer                     int                         SMALL_INTEGER_EXT 97 / INTEGER_EXT 98 /
                                                            SMALL_BIG_EXT 110 / LARGE_BIG_EXT 111
    float                       float (finite)              NEW_FLOAT_EXT 70
    tuple                       tuple (NamedTuples too)     SMALL_TUPLE_EXT 104 / LARGE_TUPLE_EXT 105
    [] and proper lists         list                        NIL_EXT 106 / LIST_EXT 108, or STRING_EXT 107
                                                            for 1..65535 integers 0..255, as Erlang does
    string (STRING_EXT)         list[int]                   (decoded as Erlang sees it: a list)
    improper list [H | T]       ImproperList(head, tail)    LIST_EXT 108 with a tail that is not []
    binary                      bytes                       BINARY_EXT 109
    map                         dict                        MAP_EXT 116
    pid                         erlang.Pid                  NEW_PID_EXT 88
    reference                   erlang.Ref                  NEWER_REFERENCE_EXT 90
    fun M:F/A                   ExportFun, or a module-     EXPORT_EXT 113
                                level Python function
    port                        Port (opaque)               NEW_PORT_EXT 89 / V4_PORT_EXT 120
    fun (closure)               LocalFun (opaque bytes)     NEW_FUN_EXT 112, byte for byte as received

Decoding also reads the older forms a peer may still send: ATOM_EXT 100 and
SMALL_ATOM_EXT 115 (Latin-1 atoms), FLOAT_EXT 99 (a float as text), PID_EXT
103, REFERENCE_EXT 101 and NEW_REFERENCE_EXT 114 (one-byte creations),
PORT_EXT 102, BIT_BINARY_EXT 77 when it holds whole bytes, and a compressed
term (tag 80) at the top, inflated with a bound on its size.

Refused, with :class:`DecodeError` when decoding: ATOM_CACHE_REF 82 and the
distribution header 68 (the atom cache: the distribution must not negotiate
``DFLAG_DIST_HDR_ATOM_CACHE``), LOCAL_EXT 121 (only meaningful inside one
node), FUN_EXT 117 (gone since OTP 23), bit strings that are not whole bytes,
NaN and infinities, atoms over 255 characters or not valid UTF-8, more than
5 reference words. When encoding, with ``TypeError`` naming the type: any
value without a row above (a set, a bytearray, an arbitrary object, a
closure or a lambda, a method), a ``str`` over 255 characters (every Python
``str`` is an atom here), a float that is not finite.

Decoding runs no code: no import, no pickle, no eval. An ``EXPORT_EXT`` fun
decodes to an :class:`ExportFun` value, which imports and calls the named
Python function only when it is called; a closure decodes to an opaque
:class:`LocalFun` that cannot be called at all.

Decoding is bounded, because its input comes from the network: every length
field is checked against the bytes that remain *before* anything is
allocated (each element of a tuple, list or map takes at least one byte, so
no length can make the decoder allocate more than a constant times its
input), nesting is limited (``max_depth``), big integers are capped
(``max_big_bytes``), a compressed term may inflate only to
``max_uncompressed`` bytes, and any malformed input raises
:class:`DecodeError` saying what was wrong, at which offset, under which tag.

The values with no Python type of their own (:class:`ImproperList`,
:class:`ExportFun`, :class:`Port`, :class:`LocalFun`) and ``dict`` travel
and compare for equality, but :mod:`repg2.terms` does not order them, so
they cannot be keys of an ``ordered_set``.

Differences from OTP (see ``TRANSLATION_NOTES.md``, D46 to D50; each is
marked ``# DIVERGENCE(Dn)`` where the code does it):

- ``None`` encodes as the atom ``undefined`` (Erlang's "no value"), and
  ``undefined`` decodes to the str ``'undefined'``: one way only.
- :func:`binary_to_term` refuses bytes after the term (Erlang ignores them),
  and a compressed term must inflate to exactly one term of exactly the
  announced size (Erlang ignores what follows the term inside it).
- Nesting deeper than ``max_depth`` (500 by default: the decoder recurses
  once per level, and Python's stack allows 1000 frames) and big integers
  over ``max_big_bytes`` (64 KiB of digits, about 158,000 decimal digits)
  are refused; Erlang decodes any depth and bignums up to its own limit.
- A map whose keys Python cannot hold (a list or a map as a key, or keys
  that Python merges, such as ``1`` and ``1.0`` or ``1`` and ``true``) is
  refused.
- Maps are encoded in the dict's order; Erlang writes a small map's keys in
  term order. The bytes differ, the map is the same.

Costs: encoding and decoding are linear in the size of the term; dispatch
is one dict lookup (encode, by exact Python type) or one list index (decode,
by tag) per term, with the common types tested first; binaries, strings and
big integers are copied in one C call each, never byte by byte. Atoms are
cached both ways (a few thousand entries, dropped wholesale when full).
"""

from __future__ import annotations

import importlib
import math
import re
import struct
import sys
import types
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from repg2 import erlang
from repg2.erlang import Pid, Ref

__all__ = [
    "DEFAULT_MAX_BIG_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_UNCOMPRESSED",
    "VERSION",
    "DecodeError",
    "ExportFun",
    "ImproperList",
    "LocalFun",
    "Port",
    "binary_to_term",
    "decode",
    "encode",
    "term_to_binary",
]

Term = Any  # an Erlang term, as the table in the preamble represents it

# == Tags =====================================================================
# Every term starts with one tag byte; the numbers are the format's own.

VERSION: Final = 131  # the version byte in front of every encoded term
COMPRESSED: Final = 80  # UncompressedSize:32, then a zlib stream
DIST_HEADER: Final = 68  # a distribution header with atom cache references
NEW_FLOAT_EXT: Final = 70  # IEEE 754 double, big-endian
BIT_BINARY_EXT: Final = 77  # Len:32, Bits:8 (used in the last byte), Data
ATOM_CACHE_REF: Final = 82  # index into the distribution header's atom cache
NEW_PID_EXT: Final = 88  # Node, ID:32, Serial:32, Creation:32
NEW_PORT_EXT: Final = 89  # Node, ID:32, Creation:32
NEWER_REFERENCE_EXT: Final = 90  # Len:16, Node, Creation:32, ID words:32 * Len
SMALL_INTEGER_EXT: Final = 97  # unsigned 8-bit integer
INTEGER_EXT: Final = 98  # signed 32-bit integer, big-endian
FLOAT_EXT: Final = 99  # 31 bytes of text, "%.20e", NUL padded
ATOM_EXT: Final = 100  # Len:16, Latin-1 text
REFERENCE_EXT: Final = 101  # Node, ID:32, Creation:8
PORT_EXT: Final = 102  # Node, ID:32, Creation:8
PID_EXT: Final = 103  # Node, ID:32, Serial:32, Creation:8
SMALL_TUPLE_EXT: Final = 104  # Arity:8, Elements
LARGE_TUPLE_EXT: Final = 105  # Arity:32, Elements
NIL_EXT: Final = 106  # []
STRING_EXT: Final = 107  # Len:16, bytes, each an integer element of a list
LIST_EXT: Final = 108  # Len:32, Elements, Tail
BINARY_EXT: Final = 109  # Len:32, Data
SMALL_BIG_EXT: Final = 110  # n:8, Sign:8, n digit bytes, least significant first
LARGE_BIG_EXT: Final = 111  # n:32, Sign:8, digits
NEW_FUN_EXT: Final = 112  # Size:32 (counting itself), then the closure
EXPORT_EXT: Final = 113  # Module atom, Function atom, Arity small integer
NEW_REFERENCE_EXT: Final = 114  # Len:16, Node, Creation:8, ID words
SMALL_ATOM_EXT: Final = 115  # Len:8, Latin-1 text
MAP_EXT: Final = 116  # Arity:32, then Key, Value pairs
FUN_EXT: Final = 117  # the pre-R8 closure, gone since OTP 23
ATOM_UTF8_EXT: Final = 118  # Len:16, UTF-8 text
SMALL_ATOM_UTF8_EXT: Final = 119  # Len:8, UTF-8 text
V4_PORT_EXT: Final = 120  # Node, ID:64, Creation:32
LOCAL_EXT: Final = 121  # a node-local encoding (term_to_binary(T, [local]))

# For error messages: every constant above, by its number.
_TAG_NAMES: Final[dict[int, str]] = {
    value: name for name, value in list(globals().items()) if name.isupper() and type(value) is int
}

# == Limits ===================================================================

MAX_ATOM_CHARACTERS: Final = 255  # Erlang's limit on an atom's length (characters, not bytes)
MAX_REF_WORDS: Final = 5  # OTP 25 refuses a reference of more ID words (measured)
MAX_ARITY: Final = 255  # the largest arity of an Erlang function
DEFAULT_MAX_DEPTH: Final = 500  # nesting levels: one Python frame each, within Python's 1000
# 64 KiB of digits is 2**524288, about 158,000 decimal digits: far beyond any
# real message, small enough that what a receiver does with the number (print
# it, hash it, multiply it) stays cheap. Python's int-to-str conversion is
# quadratic, and refuses more than 4300 digits by default anyway.
DEFAULT_MAX_BIG_BYTES: Final = 64 * 1024
# A compressed term inflates by up to ~1000x; this caps what a few bytes may
# make the decoder allocate. The distribution never compresses messages:
# only terms made with term_to_binary(T, [compressed]) come this way.
DEFAULT_MAX_UNCOMPRESSED: Final = 16 * 1024 * 1024
_ATOM_CACHE_SIZE: Final = 4096  # entries per atom cache before it is dropped

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_TAG_U16 = struct.Struct(">BH")
_TAG_U32 = struct.Struct(">BI")
_TAG_I32 = struct.Struct(">Bi")
_TAG_F64 = struct.Struct(">Bd")
_U32X3 = struct.Struct(">III")
_U32X2 = struct.Struct(">II")
_U32X4 = struct.Struct(">IIII")
_WORDS = [struct.Struct(f">{n}I") for n in range(6)]  # a reference's ID words, by count


class DecodeError(ValueError):
    """Bytes that are not a term this decoder accepts: malformed, truncated, hostile or refused.

    Erlang: none (binary_to_term/1 fails with badarg, saying nothing more)

    The message says what was wrong, at which offset of the input, under
    which tag. ``offset`` and ``tag`` are kept as attributes too (``tag`` is
    None where the error is not about one tag).
    """

    def __init__(self, message: str, offset: int, tag: int | None = None) -> None:
        self.offset = offset
        self.tag = tag
        where = f" at offset {offset}"
        if tag is not None:
            where += f" (tag {tag} {_TAG_NAMES.get(tag, 'unknown')})"
        super().__init__(message + where)


# == The values with no Python type of their own ==============================


@dataclass(frozen=True, slots=True)
class ImproperList:
    """An improper list ``[H1, H2, ... | Tail]`` whose last tail is not ``[]``.

    Erlang: none (a chain of cons cells ending in a non-list)

    OTP 25's ``gen:call`` tags every request ``{self(), [alias | Mref]}``,
    so a node that answers Erlang callers meets them daily:
    ``ImproperList(('alias',), ref)``. ``head`` holds the elements before
    the tail (at least one); ``tail`` is any term that is not a list.
    """

    head: tuple[Any, ...]
    tail: Any

    def __init__(self, head: Iterable[Any], tail: Any) -> None:
        """Make ``[*head | tail]``.

        Erlang: none (building [H | T] with a tail that is not a list)

        Raises:
            ValueError: ``head`` is empty (``[| T]`` is just ``T``), or
                ``tail`` is a list (then the whole is a proper list, or a
                longer improper one: build that instead).
        """
        items = tuple(head)
        if not items:
            raise ValueError("an improper list needs at least one element before its tail")
        if isinstance(tail, (list, ImproperList)):  # a tuple: "list | ImproperList" builds a union per call
            raise ValueError(f"the tail of an improper list cannot be a list: {tail!r}")
        object.__setattr__(self, "head", items)
        object.__setattr__(self, "tail", tail)


_new_improper = object.__new__
_set_head = ImproperList.__dict__["head"].__set__
_set_tail = ImproperList.__dict__["tail"].__set__


@dataclass(frozen=True, slots=True)
class ExportFun:
    """An external fun ``fun Module:Function/Arity``: a name, callable once looked up.

    Erlang: none (the export fun data type; EXPORT_EXT on the wire)

    Decoding one runs nothing. Calling it imports ``module`` and calls the
    attribute named ``function`` (a dotted path is followed, so a
    ``__qualname__`` such as ``Class.method`` works), as Erlang's
    ``apply(M, F, Args)`` looks the function up only when it is called. A
    Python function sent as a fun arrives as one of these.
    """

    module: str
    function: str
    arity: int

    def apply(self, *args: Any) -> Any:
        """Look the function up and call it with ``args`` (calling the fun does the same).

        Erlang: erlang:apply/2

        Raises:
            ErlangError: ``('badarity', (fun, args))`` if the number of
                arguments is not ``arity``; ``'undef'`` if the module cannot
                be imported or has no such function, as in Erlang.
        """
        if len(args) != self.arity:
            raise erlang.ErlangError(("badarity", (self, list(args))))
        return self.resolve()(*args)

    __call__ = apply

    def resolve(self) -> Callable[..., Any]:
        """Import the module and return the named function, without calling it.

        Erlang: none (the code server's lookup of an exported function)

        Raises:
            ErlangError: ``'undef'``, naming the fun in the message.
        """
        try:
            target: Any = importlib.import_module(self.module)
            for part in self.function.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError, ValueError, TypeError) as exc:  # no such module or function
            raise erlang.ErlangError("undef", f"undef: fun {self.module}:{self.function}/{self.arity}") from exc
        if not callable(target):
            raise erlang.ErlangError("undef", f"undef: {self.module}:{self.function} is not a function")
        return target  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"fun {self.module}:{self.function}/{self.arity}"


@dataclass(frozen=True, slots=True)
class Port:
    """A port identifier from another node: opaque here, sent back as it came.

    Erlang: none (the port data type, #Port<0.7>)

    RePy2 has no ports; one may still arrive inside a message (an ``'EXIT'``
    reason, a process's state) and must survive being passed on.
    """

    node: str
    id: int
    creation: int

    def __repr__(self) -> str:
        return f"#Port<{self.node}.{self.id}>"


@dataclass(frozen=True, slots=True)
class LocalFun:
    """A closure from an Erlang node (``NEW_FUN_EXT``): opaque, kept byte for byte.

    Erlang: none (the local fun data type, #Fun<m.0.123>)

    RePy2 cannot run Erlang code, so the closure is kept as the exact bytes
    it arrived as (tag included) and encoded back unchanged: a fun passed
    through a Python process reaches the next Erlang node intact. It is not
    callable, and decoding it looks at nothing inside it.
    """

    ext: bytes

    def __repr__(self) -> str:
        return f"#Fun<{len(self.ext)} bytes>"


# == Encoding =================================================================
# One function per Python type, found by the value's exact type in _ENCODERS;
# subclasses (NamedTuple, IntEnum, str enums) are classified once by
# _classify and cached there.

_Encoder = Callable[[Any, bytearray], None]

_ATOMS_OUT: dict[str, bytes] = {}  # atom text -> its encoding (tag included)


def _atom_bytes(text: str) -> bytes:
    """Return the encoding of the atom ``text`` (cached).

    Erlang: none (ATOM_UTF8_EXT and SMALL_ATOM_UTF8_EXT, as OTP 25 sends atoms)

    Raises:
        TypeError: too long for an atom, or not encodable as UTF-8 (a lone surrogate).
    """
    cached = _ATOMS_OUT.get(text)
    if cached is not None:
        return cached
    if len(text) > MAX_ATOM_CHARACTERS:
        raise TypeError(
            f"cannot encode a str of {len(text)} characters: every str is an atom, "
            f"and atoms have at most {MAX_ATOM_CHARACTERS} (send bytes for text)"
        )
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TypeError(f"cannot encode {text!r} as an atom: not valid Unicode ({exc.reason})") from None
    n = len(raw)
    encoded = bytes((SMALL_ATOM_UTF8_EXT, n)) + raw if n < 256 else _TAG_U16.pack(ATOM_UTF8_EXT, n) + raw
    if len(_ATOMS_OUT) >= _ATOM_CACHE_SIZE:
        _ATOMS_OUT.clear()  # a crude bound: atoms worth caching come back at once
    _ATOMS_OUT[sys.intern(text) if type(text) is str else str.__str__(text)] = encoded
    return encoded


def _enc_atom(term: str, out: bytearray) -> None:
    """Append an atom.

    Erlang: none (SMALL_ATOM_UTF8_EXT / ATOM_UTF8_EXT)
    """
    out += _ATOMS_OUT.get(term) or _atom_bytes(term)


def _enc_str_subclass(term: str, out: bytearray) -> None:
    """Append a str subclass (a str enum) as the atom of its text.

    Erlang: none (an atom)
    """
    out += _atom_bytes(str.__str__(term))


_TRUE = _atom_bytes("true")
_FALSE = _atom_bytes("false")
_UNDEFINED = _atom_bytes("undefined")


def _enc_bool(term: bool, out: bytearray) -> None:
    """Append ``True``/``False`` as the atoms ``true``/``false``.

    Erlang: none (true and false are atoms)
    """
    out += _TRUE if term else _FALSE


def _enc_none(term: None, out: bytearray) -> None:
    """Append ``None`` as the atom ``undefined``.

    Erlang: none (undefined is Erlang's conventional "no value")
    """
    out += _UNDEFINED  # DIVERGENCE(D46): one way only; undefined decodes to 'undefined'


def _enc_int(term: int, out: bytearray) -> None:
    """Append an integer in the smallest form Erlang uses for it.

    Erlang: none (SMALL_INTEGER_EXT, INTEGER_EXT, SMALL_BIG_EXT, LARGE_BIG_EXT)
    """
    if 0 <= term < 256:
        out.append(SMALL_INTEGER_EXT)
        out.append(term)
    elif -(1 << 31) <= term < (1 << 31):
        out += _TAG_I32.pack(INTEGER_EXT, term)
    else:
        magnitude = -term if term < 0 else term
        n = (magnitude.bit_length() + 7) >> 3
        if n < 256:
            out += bytes((SMALL_BIG_EXT, n, term < 0))
        elif n < (1 << 32):
            out += _TAG_U32.pack(LARGE_BIG_EXT, n)
            out.append(term < 0)
        else:
            raise TypeError(f"cannot encode an integer of {n} bytes: LARGE_BIG_EXT holds at most 2**32 - 1")
        out += magnitude.to_bytes(n, "little")


def _enc_float(term: float, out: bytearray) -> None:
    """Append a finite float.

    Erlang: none (NEW_FLOAT_EXT)

    Raises:
        TypeError: NaN or an infinity: Erlang floats are finite.
    """
    if not math.isfinite(term):
        raise TypeError(f"cannot encode the float {term!r}: Erlang floats are finite")
    out += _TAG_F64.pack(NEW_FLOAT_EXT, term)


def _enc_tuple(term: tuple[Any, ...], out: bytearray) -> None:
    """Append a tuple and its elements.

    Erlang: none (SMALL_TUPLE_EXT, LARGE_TUPLE_EXT)
    """
    n = len(term)
    if n < 256:
        out.append(SMALL_TUPLE_EXT)
        out.append(n)
    else:
        out += _TAG_U32.pack(LARGE_TUPLE_EXT, n)
    # Each container dispatches its elements itself, not through _enc: one
    # Python frame per level of nesting, so Python's stack holds deep terms.
    encoders = _ENCODERS
    for item in term:
        cls = type(item)
        if cls is str:
            out += _ATOMS_OUT.get(item) or _atom_bytes(item)
        else:
            (encoders.get(cls) or _classify(cls, item))(item, out)


_JUST_INT: Final = {int}


def _enc_list(term: list[Any], out: bytearray) -> None:
    """Append a proper list: as Erlang does, a list of bytes as STRING_EXT.

    Erlang: none (NIL_EXT, STRING_EXT, LIST_EXT)

    The string test scans the types once in C (``set(map(type, ...))``):
    ``bool`` is an ``int`` to ``bytes()`` but an atom here, so it must not
    pass.
    """
    n = len(term)
    if n == 0:
        out.append(NIL_EXT)
        return
    if n <= 0xFFFF and type(term[0]) is int and set(map(type, term)) == _JUST_INT:
        try:
            raw = bytes(term)
        except ValueError:  # an integer outside 0..255: a plain list
            pass
        else:
            out += _TAG_U16.pack(STRING_EXT, n)
            out += raw
            return
    out += _TAG_U32.pack(LIST_EXT, n)
    encoders = _ENCODERS  # elements dispatched here, as in _enc_tuple
    for item in term:
        cls = type(item)
        (encoders.get(cls) or _classify(cls, item))(item, out)
    out.append(NIL_EXT)


def _enc_improper(term: ImproperList, out: bytearray) -> None:
    """Append an improper list: its elements, then its tail in place of ``[]``.

    Erlang: none (LIST_EXT with a tail that is not NIL_EXT)
    """
    out += _TAG_U32.pack(LIST_EXT, len(term.head))
    encoders = _ENCODERS  # elements dispatched here, as in _enc_tuple
    for item in (*term.head, term.tail):
        cls = type(item)
        (encoders.get(cls) or _classify(cls, item))(item, out)


def _enc_bytes(term: bytes, out: bytearray) -> None:
    """Append a binary.

    Erlang: none (BINARY_EXT)
    """
    n = len(term)
    if n >= (1 << 32):
        raise TypeError(f"cannot encode a binary of {n} bytes: BINARY_EXT holds at most 2**32 - 1")
    out += _TAG_U32.pack(BINARY_EXT, n)
    out += term


def _enc_dict(term: dict[Any, Any], out: bytearray) -> None:
    """Append a map, its pairs in the dict's order.

    Erlang: none (MAP_EXT)
    """
    out += _TAG_U32.pack(MAP_EXT, len(term))  # DIVERGENCE(D50): dict order; OTP sorts a small map's keys
    encoders = _ENCODERS  # elements dispatched here, as in _enc_tuple
    for key, value in term.items():
        cls = type(key)
        (encoders.get(cls) or _classify(cls, key))(key, out)
        cls = type(value)
        (encoders.get(cls) or _classify(cls, value))(value, out)


def _check_u32(value: int, what: str, term: Any) -> None:
    """Refuse a pid, ref or port field that does not fit its 32 bits on the wire.

    Erlang: none (a field width of the format)
    """
    if not 0 <= value < (1 << 32):
        raise TypeError(f"cannot encode {term!r}: its {what} {value} does not fit 32 bits")


def _enc_pid(term: Pid, out: bytearray) -> None:
    """Append a pid; a local pid goes with this node's current name and creation.

    Erlang: none (NEW_PID_EXT)
    """
    out.append(NEW_PID_EXT)
    node = term.node
    out += _ATOMS_OUT.get(node) or _atom_bytes(node)
    pid_id, creation = term.id, term.creation
    if pid_id >> 64 or pid_id < 0 or not 0 <= creation < (1 << 32):
        _check_u32(pid_id >> 32, "serial", term)
        _check_u32(pid_id & 0xFFFFFFFF, "number", term)
        _check_u32(creation, "creation", term)
    out += _U32X3.pack(pid_id & 0xFFFFFFFF, pid_id >> 32, creation)


def _enc_ref(term: Ref, out: bytearray) -> None:
    """Append a reference with as many ID words as it came with (ours: 3).

    Erlang: none (NEWER_REFERENCE_EXT)
    """
    n = term.n_words
    ref_id = term.id
    if not 0 <= n <= MAX_REF_WORDS or ref_id < 0 or ref_id >> (32 * n):
        raise TypeError(f"cannot encode {term!r}: its id does not fit {n} words of 32 bits (at most {MAX_REF_WORDS})")
    if not 0 <= term.creation < (1 << 32):
        _check_u32(term.creation, "creation", term)
    out += _TAG_U16.pack(NEWER_REFERENCE_EXT, n)
    out += _ATOMS_OUT.get(term.node) or _atom_bytes(term.node)
    if n == 3:  # every ref make_ref/0 makes
        out += _U32X4.pack(term.creation, ref_id & 0xFFFFFFFF, ref_id >> 32 & 0xFFFFFFFF, ref_id >> 64)
    else:
        out += _U32.pack(term.creation)
        out += _WORDS[n].pack(*[(ref_id >> (32 * i)) & 0xFFFFFFFF for i in range(n)])


def _enc_export(term: ExportFun, out: bytearray) -> None:
    """Append an export fun.

    Erlang: none (EXPORT_EXT)
    """
    if not 0 <= term.arity <= MAX_ARITY:
        raise TypeError(f"cannot encode {term!r}: arity must be 0..{MAX_ARITY}")
    out.append(EXPORT_EXT)
    out += _atom_bytes(term.module)
    out += _atom_bytes(term.function)
    out.append(SMALL_INTEGER_EXT)
    out.append(term.arity)


def _enc_function(term: types.FunctionType, out: bytearray) -> None:
    """Append a module-level Python function as ``fun Module:Function/Arity``.

    Erlang: none (EXPORT_EXT: a fun by name, valid wherever the module is loaded)

    The receiver finds the function again by its module and qualified name,
    so only a function reachable that way can go: not a lambda, not a
    closure, not one defined in ``__main__`` (another node's ``__main__`` is
    another program), not one whose name now means something else. Arity is
    the number of positional parameters.

    Raises:
        TypeError: the function cannot be found again by its name.
    """
    module, qualname = term.__module__, term.__qualname__
    why = None
    if "<" in qualname:  # <lambda>, <locals>
        why = "a lambda or a nested function has no name another node can look up"
    elif module in (None, "__main__"):
        why = "a function of __main__ cannot be found by another node (define it in an importable module)"
    else:
        target: Any = sys.modules.get(module)
        for part in qualname.split("."):
            target = getattr(target, part, None)
        if target is not term:
            why = f"{module}.{qualname} does not name this function"
    if why is not None:
        raise TypeError(f"cannot encode the function {term!r} as a fun: {why}")
    _enc_export(ExportFun(module, qualname, term.__code__.co_argcount), out)


def _enc_port(term: Port, out: bytearray) -> None:
    """Append a port as it came: NEW_PORT_EXT, or V4_PORT_EXT for an id over 32 bits.

    Erlang: none (NEW_PORT_EXT, V4_PORT_EXT)
    """
    _check_u32(term.creation, "creation", term)
    if not 0 <= term.id < (1 << 64):
        raise TypeError(f"cannot encode {term!r}: its id does not fit 64 bits")
    wide = term.id >= (1 << 32)
    out.append(V4_PORT_EXT if wide else NEW_PORT_EXT)
    out += _atom_bytes(term.node)
    out += _U64.pack(term.id) if wide else _U32.pack(term.id)
    out += _U32.pack(term.creation)


def _enc_local_fun(term: LocalFun, out: bytearray) -> None:
    """Append an Erlang closure exactly as it arrived.

    Erlang: none (NEW_FUN_EXT)
    """
    out += term.ext


_ENCODERS: dict[type, _Encoder] = {
    str: _enc_atom,
    tuple: _enc_tuple,
    int: _enc_int,
    bool: _enc_bool,
    list: _enc_list,
    Pid: _enc_pid,
    Ref: _enc_ref,
    bytes: _enc_bytes,
    float: _enc_float,
    dict: _enc_dict,
    type(None): _enc_none,
    ImproperList: _enc_improper,
    ExportFun: _enc_export,
    types.FunctionType: _enc_function,
    Port: _enc_port,
    LocalFun: _enc_local_fun,
}


def _classify(cls: type, term: Any) -> _Encoder:
    """Find (and cache) the encoder for a type not in the table: a subclass of a type in it.

    Erlang: none (Python types have subclasses; Erlang's tags do not)

    Raises:
        TypeError: no row of the mapping fits, naming the type.
    """
    # Order matters only where a class could inherit from two rows (bool
    # cannot be subclassed, so it is never here).
    for base, encoder in (
        (int, _enc_int),
        (str, _enc_str_subclass),
        (tuple, _enc_tuple),
        (list, _enc_list),
        (bytes, _enc_bytes),
        (float, _enc_float),
        (dict, _enc_dict),
        (Pid, _enc_pid),
        (Ref, _enc_ref),
    ):
        if issubclass(cls, base):
            _ENCODERS[cls] = encoder  # racing threads store the same encoder
            return encoder
    raise TypeError(
        f"cannot encode {term!r} of type {cls.__module__}.{cls.__qualname__}: no Erlang term stands for it "
        "(terms are str atoms, bool, None, int, float, tuple, list, ImproperList, bytes, dict, Pid, Ref, "
        "module-level functions and ExportFun)"
    )


def _enc(term: Any, out: bytearray) -> None:
    """Append one term, tag first.

    Erlang: none (enc_term in external.c)
    """
    cls = type(term)
    (_ENCODERS.get(cls) or _classify(cls, term))(term, out)


def encode(term: Term, out: bytearray) -> None:
    """Append ``term`` to ``out`` in the external term format, version byte (131) first.

    Erlang: erlang:term_to_binary/1 (appending, for the distribution's frames)

    The distribution's pass-through frames carry each term as 131 followed
    by the term, so the carrier appends the control message and the payload
    to one buffer. On failure nothing is left appended.

    Raises:
        TypeError: ``term`` holds a value with no Erlang form (see the
            preamble), contains itself, or nests deeper than Python's stack.
    """
    start = len(out)
    out.append(VERSION)
    try:
        _enc(term, out)
    except RecursionError:
        del out[start:]
        raise TypeError("cannot encode a term that contains itself or nests deeper than Python's stack") from None
    except BaseException:
        del out[start:]
        raise


def term_to_binary(term: Term) -> bytes:
    """Return ``term`` in the external term format, version byte (131) first.

    Erlang: erlang:term_to_binary/1

    Raises:
        TypeError: as :func:`encode`.
    """
    out = bytearray()
    encode(term, out)
    return bytes(out)


# == Decoding =================================================================
# A decoder per tag, in a list indexed by the tag byte. Each takes the input,
# the offset just after its tag, the nesting it may still go down and the
# limits, and returns (term, offset after the term). Every length is checked
# against the bytes left before anything is read or allocated.


@dataclass(frozen=True, slots=True)
class _Limits:
    """The bounds of one decode call.

    Erlang: none (binary_to_term has no such limits)
    """

    max_big_bytes: int
    max_uncompressed: int


_DEFAULT_LIMITS: Final = _Limits(DEFAULT_MAX_BIG_BYTES, DEFAULT_MAX_UNCOMPRESSED)

_Decoded = tuple[Any, int]
_Decoder = Callable[[bytes, int, int, _Limits], _Decoded]

_ATOMS_UTF8: dict[bytes, Any] = {}  # UTF-8 atom text -> its str (True/False for true/false)
_ATOMS_LATIN1: dict[bytes, Any] = {}  # the same, for the Latin-1 tags


def _truncated(tag: int, pos: int, need: int, data: bytes) -> DecodeError:
    """Build the error for a term that runs past the end of the input.

    Erlang: none (binary_to_term's badarg)
    """
    return DecodeError(f"needs {need} more bytes, only {len(data) - pos} left", pos, tag)


def _atom_value(raw: bytes, utf8: bool, tag: int, pos: int) -> Any:
    """Turn an atom's text into its Python value, checking it (cached).

    Erlang: none (atom text as erts_atom_put checks it)
    """
    cache = _ATOMS_UTF8 if utf8 else _ATOMS_LATIN1
    value = cache.get(raw)
    if value is not None:
        return value
    try:
        text = raw.decode("utf-8") if utf8 else raw.decode("latin-1")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"atom text is not valid UTF-8 ({exc.reason})", pos, tag) from None
    if len(text) > MAX_ATOM_CHARACTERS:
        raise DecodeError(f"atom of {len(text)} characters (at most {MAX_ATOM_CHARACTERS})", pos, tag)
    value = True if text == "true" else False if text == "false" else sys.intern(text)
    if len(cache) >= _ATOM_CACHE_SIZE:
        cache.clear()  # a crude bound: a peer cannot grow it without limit
    cache[raw] = value
    return value


def _dec_small_atom_utf8(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (SMALL_ATOM_UTF8_EXT)"""
    if pos >= len(data):
        raise _truncated(SMALL_ATOM_UTF8_EXT, pos, 1, data)
    end = pos + 1 + data[pos]
    if end > len(data):
        raise _truncated(SMALL_ATOM_UTF8_EXT, pos, end - pos, data)
    raw = data[pos + 1 : end]
    value = _ATOMS_UTF8.get(raw)
    if value is None:
        value = _atom_value(raw, True, SMALL_ATOM_UTF8_EXT, pos)
    return value, end


def _dec_atom_utf8(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (ATOM_UTF8_EXT)"""
    if pos + 2 > len(data):
        raise _truncated(ATOM_UTF8_EXT, pos, 2, data)
    end = pos + 2 + _U16.unpack_from(data, pos)[0]
    if end > len(data):
        raise _truncated(ATOM_UTF8_EXT, pos, end - pos, data)
    return _atom_value(data[pos + 2 : end], True, ATOM_UTF8_EXT, pos), end


def _dec_small_atom(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (SMALL_ATOM_EXT: Latin-1, from nodes before OTP 20)"""
    if pos >= len(data):
        raise _truncated(SMALL_ATOM_EXT, pos, 1, data)
    end = pos + 1 + data[pos]
    if end > len(data):
        raise _truncated(SMALL_ATOM_EXT, pos, end - pos, data)
    return _atom_value(data[pos + 1 : end], False, SMALL_ATOM_EXT, pos), end


def _dec_atom(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (ATOM_EXT: Latin-1, what OTP 25's term_to_binary/1 still writes)"""
    if pos + 2 > len(data):
        raise _truncated(ATOM_EXT, pos, 2, data)
    end = pos + 2 + _U16.unpack_from(data, pos)[0]
    if end > len(data):
        raise _truncated(ATOM_EXT, pos, end - pos, data)
    return _atom_value(data[pos + 2 : end], False, ATOM_EXT, pos), end


_ATOM_DECODERS: Final = {
    SMALL_ATOM_UTF8_EXT: _dec_small_atom_utf8,
    ATOM_UTF8_EXT: _dec_atom_utf8,
    SMALL_ATOM_EXT: _dec_small_atom,
    ATOM_EXT: _dec_atom,
}


def _dec_name(data: bytes, pos: int, lim: _Limits, owner: int, what: str) -> tuple[str, int]:
    """Decode an atom that must be one (a node, a module, a function name) and return it as a str.

    Erlang: none (the Node, Module and Function fields of pids, refs, ports and funs)
    """
    if pos >= len(data):
        raise _truncated(owner, pos, 1, data)
    decoder = _ATOM_DECODERS.get(data[pos])
    if decoder is None:
        raise DecodeError(f"the {what} must be an atom, found tag {data[pos]}", pos, owner)
    value, pos = decoder(data, pos + 1, 0, lim)
    if value is True or value is False:
        value = "true" if value else "false"
    return value, pos


def _dec_small_integer(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (SMALL_INTEGER_EXT)"""
    if pos >= len(data):
        raise _truncated(SMALL_INTEGER_EXT, pos, 1, data)
    return data[pos], pos + 1


def _dec_integer(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (INTEGER_EXT)"""
    if pos + 4 > len(data):
        raise _truncated(INTEGER_EXT, pos, 4, data)
    return _I32.unpack_from(data, pos)[0], pos + 4


def _dec_big(data: bytes, pos: int, n: int, tag: int, lim: _Limits) -> _Decoded:
    """Read a big integer's sign and ``n`` digit bytes, least significant first.

    Erlang: none (the digits of SMALL_BIG_EXT and LARGE_BIG_EXT)
    """
    if n > lim.max_big_bytes:  # DIVERGENCE(D48): Erlang takes bignums up to its own, far larger, limit
        raise DecodeError(f"big integer of {n} bytes (at most {lim.max_big_bytes})", pos, tag)
    end = pos + 1 + n
    if end > len(data):
        raise _truncated(tag, pos, end - pos, data)
    magnitude = int.from_bytes(data[pos + 1 : end], "little")
    return (-magnitude if data[pos] else magnitude), end  # any non-zero sign byte is negative, as in OTP


def _dec_small_big(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (SMALL_BIG_EXT)"""
    if pos >= len(data):
        raise _truncated(SMALL_BIG_EXT, pos, 1, data)
    return _dec_big(data, pos + 1, data[pos], SMALL_BIG_EXT, lim)


def _dec_large_big(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (LARGE_BIG_EXT)"""
    if pos + 4 > len(data):
        raise _truncated(LARGE_BIG_EXT, pos, 4, data)
    return _dec_big(data, pos + 4, _U32.unpack_from(data, pos)[0], LARGE_BIG_EXT, lim)


def _dec_new_float(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (NEW_FLOAT_EXT)"""
    if pos + 8 > len(data):
        raise _truncated(NEW_FLOAT_EXT, pos, 8, data)
    value = _F64.unpack_from(data, pos)[0]
    if not math.isfinite(value):
        raise DecodeError(f"the float {value} (Erlang floats are finite)", pos, NEW_FLOAT_EXT)
    return value, pos + 8


# What OTP 25 accepts in FLOAT_EXT (measured): digits, a point, digits, an
# optional exponent; "15", "1.", "1e5", " 1.5" and "inf" are all refused.
_FLOAT_TEXT: Final = re.compile(rb"[+-]?[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?")


def _dec_float(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (FLOAT_EXT: 31 bytes of "%.20e" text, from nodes before R11)"""
    if pos + 31 > len(data):
        raise _truncated(FLOAT_EXT, pos, 31, data)
    text = data[pos : pos + 31].split(b"\0", 1)[0]
    if not _FLOAT_TEXT.fullmatch(text):
        raise DecodeError(f"float text {text!r} is not a number", pos, FLOAT_EXT)
    value = float(text)
    if not math.isfinite(value):
        raise DecodeError(f"the float {text!r} is out of range", pos, FLOAT_EXT)
    return value, pos + 31


def _dec_tuple(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Decode a tuple: its arity (one byte or four, as the tag says), then its elements.

    Erlang: none (SMALL_TUPLE_EXT and LARGE_TUPLE_EXT)

    One function for both tags, and the element loop inside it: one Python
    frame per level of nesting.
    """
    tag = data[pos - 1]
    end = len(data)
    if tag == SMALL_TUPLE_EXT:
        if pos >= end:
            raise _truncated(tag, pos, 1, data)
        n = data[pos]
        pos += 1
    else:
        if pos + 4 > end:
            raise _truncated(tag, pos, 4, data)
        n = _U32.unpack_from(data, pos)[0]
        pos += 4
    if n == 0:
        return (), pos
    if depth <= 0:  # DIVERGENCE(D48): Erlang decodes any depth (and so does LIST_EXT's tail loop here)
        raise DecodeError("terms nested too deeply", pos, tag)
    if n > end - pos:  # each element takes at least one byte
        raise _truncated(tag, pos, n, data)
    items = [None] * n
    depth -= 1
    decoders, atoms = _DECODERS, _ATOMS_UTF8
    for i in range(n):
        if pos >= end:
            raise _truncated(tag, pos, n - i, data)
        element_tag = data[pos]
        if element_tag == 119 and pos + 1 < end:  # SMALL_ATOM_UTF8_EXT seen before: inline, half the cost
            stop = pos + 2 + data[pos + 1]
            if stop <= end:
                atom = atoms.get(data[pos + 2 : stop])
                if atom is not None:
                    items[i], pos = atom, stop
                    continue
        items[i], pos = decoders[element_tag](data, pos + 1, depth, lim)
    return tuple(items), pos


def _dec_nil(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (NIL_EXT)"""
    return [], pos


def _dec_string(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (STRING_EXT: a list of small integers, as Erlang sees it)"""
    if pos + 2 > len(data):
        raise _truncated(STRING_EXT, pos, 2, data)
    end = pos + 2 + _U16.unpack_from(data, pos)[0]
    if end > len(data):
        raise _truncated(STRING_EXT, pos, end - pos, data)
    return list(data[pos + 2 : end]), end


def _dec_list(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Decode a list: its elements, then its tail, proper or not.

    Erlang: none (LIST_EXT)

    A tail that is itself a LIST_EXT or STRING_EXT (Erlang never writes one,
    another encoder may) continues the same list, in this loop rather than
    by recursion, as ``[1 | [2]]`` is ``[1, 2]``; a LIST_EXT of no elements
    is its tail, as in OTP.
    """
    if depth <= 0:
        raise DecodeError("terms nested too deeply", pos - 1, LIST_EXT)
    depth -= 1
    items: list[Any] = []
    append = items.append
    tag = LIST_EXT
    while True:
        if tag == LIST_EXT:
            if pos + 4 > len(data):
                raise _truncated(LIST_EXT, pos, 4, data)
            n = _U32.unpack_from(data, pos)[0]
            pos += 4
            if n >= len(data) - pos:  # n elements and a tail, at least one byte each
                raise _truncated(LIST_EXT, pos, n + 1, data)
            for _ in range(n):
                item, pos = _DECODERS[data[pos]](data, pos + 1, depth, lim)
                append(item)
                if pos >= len(data):
                    raise _truncated(LIST_EXT, pos, 1, data)
        elif tag == STRING_EXT:
            tail, pos = _dec_string(data, pos, depth, lim)
            items += tail
            return items, pos
        else:  # NIL_EXT
            return items, pos
        tag = data[pos]
        if tag == NIL_EXT or tag == LIST_EXT or tag == STRING_EXT:
            pos += 1
            continue
        tail, pos = _DECODERS[tag](data, pos + 1, depth, lim)
        if not items:
            return tail, pos
        improper = _new_improper(ImproperList)  # the checks of __init__ hold here by construction
        _set_head(improper, tuple(items))
        _set_tail(improper, tail)
        return improper, pos


def _dec_binary(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (BINARY_EXT)"""
    if pos + 4 > len(data):
        raise _truncated(BINARY_EXT, pos, 4, data)
    end = pos + 4 + _U32.unpack_from(data, pos)[0]
    if end > len(data):
        raise _truncated(BINARY_EXT, pos, end - pos, data)
    return data[pos + 4 : end], end


def _dec_bit_binary(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Decode a bit string, which must hold whole bytes: ``bytes`` has no partial byte.

    Erlang: none (BIT_BINARY_EXT)
    """
    if pos + 5 > len(data):
        raise _truncated(BIT_BINARY_EXT, pos, 5, data)
    n, bits = _U32.unpack_from(data, pos)[0], data[pos + 4]
    end = pos + 5 + n
    if end > len(data):
        raise _truncated(BIT_BINARY_EXT, pos, end - pos, data)
    if (n == 0 and bits == 0) or (n > 0 and bits == 8):  # what OTP 25 accepts as whole bytes
        return data[pos + 5 : end], end
    if n > 0 and 1 <= bits < 8:
        raise DecodeError(
            f"a bit string of {8 * (n - 1) + bits} bits is not whole bytes, and RePy2 has no bit strings",
            pos,
            BIT_BINARY_EXT,
        )
    raise DecodeError(f"{bits} bits used in the last of {n} bytes", pos, BIT_BINARY_EXT)


def _dec_map(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Decode a map into a dict; refuse keys Python cannot hold apart.

    Erlang: none (MAP_EXT)
    """
    if pos + 4 > len(data):
        raise _truncated(MAP_EXT, pos, 4, data)
    n = _U32.unpack_from(data, pos)[0]
    start, pos = pos, pos + 4
    if 2 * n > len(data) - pos:  # a key and a value, at least one byte each
        raise _truncated(MAP_EXT, pos, 2 * n, data)
    if n and depth <= 0:
        raise DecodeError("terms nested too deeply", start, MAP_EXT)
    depth -= 1
    result: dict[Any, Any] = {}
    for _ in range(n):
        if pos >= len(data):
            raise _truncated(MAP_EXT, pos, 1, data)
        key, pos = _DECODERS[data[pos]](data, pos + 1, depth, lim)
        if pos >= len(data):
            raise _truncated(MAP_EXT, pos, 1, data)
        value, pos = _DECODERS[data[pos]](data, pos + 1, depth, lim)
        try:
            result[key] = value
        except TypeError:  # DIVERGENCE(D49): a list or a map as a key
            raise DecodeError(f"map key {key!r} cannot be a Python dict key", start, MAP_EXT) from None
    if len(result) != n:  # DIVERGENCE(D49) for keys Python merges (1, 1.0, true); OTP refuses true duplicates
        raise DecodeError(f"{n} map keys are only {len(result)} distinct Python keys", start, MAP_EXT)
    return result, pos


def _dec_pid_fields(data: bytes, pos: int, lim: _Limits, tag: int, creation_size: int) -> _Decoded:
    """Decode a pid's node, ID, Serial and Creation; a pid of this node and incarnation is local.

    Erlang: none (NEW_PID_EXT and PID_EXT)
    """
    node, pos = _dec_name(data, pos, lim, tag, "node")
    if pos + 8 + creation_size > len(data):
        raise _truncated(tag, pos, 8 + creation_size, data)
    number, serial = _U32X2.unpack_from(data, pos)
    if creation_size == 4:
        creation = _U32.unpack_from(data, pos + 8)[0]
    else:
        creation = data[pos + 8]
        if creation > 3:  # only two bits are significant, the rest must be 0 (OTP refuses)
            raise DecodeError(f"creation {creation} in the old one-byte form", pos + 8, tag)
    return erlang._rebuild_pid(node, serial << 32 | number, creation), pos + 8 + creation_size


def _dec_new_pid(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (NEW_PID_EXT)"""
    # Fast path: a node name seen before, as SMALL_ATOM_UTF8_EXT.
    if pos + 1 < len(data) and data[pos] == SMALL_ATOM_UTF8_EXT:
        stop = pos + 2 + data[pos + 1]
        if stop + 12 <= len(data):
            node = _ATOMS_UTF8.get(data[pos + 2 : stop])
            if type(node) is str:
                number, serial, creation = _U32X3.unpack_from(data, stop)
                this = erlang._identity  # erlang._rebuild_pid, inlined
                if node == this.name and creation == this.creation:
                    return Pid(None, serial << 32 | number), stop + 12
                return Pid(node, serial << 32 | number, creation), stop + 12
    return _dec_pid_fields(data, pos, lim, NEW_PID_EXT, 4)


def _dec_pid(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (PID_EXT)"""
    return _dec_pid_fields(data, pos, lim, PID_EXT, 1)


def _words_id(data: bytes, pos: int, n: int) -> int:
    """Pack ``n`` big-endian 32-bit words, the first the lowest, into one integer.

    Erlang: none (the ID words of a reference)
    """
    value = 0
    for word in reversed(_WORDS[n].unpack_from(data, pos)):
        value = value << 32 | word
    return value


def _dec_new_refs(data: bytes, pos: int, lim: _Limits, tag: int, creation_size: int) -> _Decoded:
    """Decode a reference of up to 5 words.

    Erlang: none (NEWER_REFERENCE_EXT and NEW_REFERENCE_EXT)
    """
    if pos + 2 > len(data):
        raise _truncated(tag, pos, 2, data)
    n = _U16.unpack_from(data, pos)[0]
    if n > MAX_REF_WORDS:
        raise DecodeError(f"reference of {n} words (at most {MAX_REF_WORDS})", pos, tag)
    node, pos = _dec_name(data, pos + 2, lim, tag, "node")
    end = pos + creation_size + 4 * n
    if end > len(data):
        raise _truncated(tag, pos, end - pos, data)
    if creation_size == 4:
        creation = _U32.unpack_from(data, pos)[0]
    else:
        creation = data[pos]
        if creation > 3 or (n and _U32.unpack_from(data, pos + 1)[0] >= (1 << 18)):
            # two significant bits of creation, 18 of the first word: OTP refuses more
            raise DecodeError("creation or first word too large in the old form", pos, tag)
    return Ref(node, _words_id(data, pos + creation_size, n), creation, n), end


def _dec_newer_reference(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (NEWER_REFERENCE_EXT)"""
    # Fast path: three words (every ref make_ref/0 makes), a node name seen before.
    if data[pos : pos + 3] == b"\x00\x03\x77" and pos + 3 < len(data):
        stop = pos + 4 + data[pos + 3]
        if stop + 16 <= len(data):
            node = _ATOMS_UTF8.get(data[pos + 4 : stop])
            if type(node) is str:
                creation, w0, w1, w2 = _U32X4.unpack_from(data, stop)
                return Ref(node, w2 << 64 | w1 << 32 | w0, creation), stop + 16
    return _dec_new_refs(data, pos, lim, NEWER_REFERENCE_EXT, 4)


def _dec_new_reference(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (NEW_REFERENCE_EXT)"""
    return _dec_new_refs(data, pos, lim, NEW_REFERENCE_EXT, 1)


def _dec_reference(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (REFERENCE_EXT: one word, from nodes before R9)"""
    node, pos = _dec_name(data, pos, lim, REFERENCE_EXT, "node")
    if pos + 5 > len(data):
        raise _truncated(REFERENCE_EXT, pos, 5, data)
    word, creation = _U32.unpack_from(data, pos)[0], data[pos + 4]
    if word >= (1 << 18) or creation > 3:
        raise DecodeError("ID or creation too large in the old form", pos, REFERENCE_EXT)
    return Ref(node, word, creation, 1), pos + 5


def _dec_port_fields(data: bytes, pos: int, lim: _Limits, tag: int, id_size: int, creation_size: int) -> _Decoded:
    """Decode a port into an opaque :class:`Port`.

    Erlang: none (NEW_PORT_EXT, V4_PORT_EXT and PORT_EXT)
    """
    node, pos = _dec_name(data, pos, lim, tag, "node")
    end = pos + id_size + creation_size
    if end > len(data):
        raise _truncated(tag, pos, end - pos, data)
    port_id = int.from_bytes(data[pos : pos + id_size], "big")
    creation = int.from_bytes(data[pos + id_size : end], "big")
    if creation_size == 1 and creation > 3:
        raise DecodeError(f"creation {creation} in the old one-byte form", pos, tag)
    return Port(node, port_id, creation), end


def _dec_new_port(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (NEW_PORT_EXT)"""
    return _dec_port_fields(data, pos, lim, NEW_PORT_EXT, 4, 4)


def _dec_v4_port(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (V4_PORT_EXT)"""
    return _dec_port_fields(data, pos, lim, V4_PORT_EXT, 8, 4)


def _dec_port(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Erlang: none (PORT_EXT)"""
    return _dec_port_fields(data, pos, lim, PORT_EXT, 4, 1)


def _dec_export(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Decode ``fun M:F/A`` into an :class:`ExportFun`: a name, nothing imported.

    Erlang: none (EXPORT_EXT)
    """
    start = pos
    module, pos = _dec_name(data, pos, lim, EXPORT_EXT, "module")
    function, pos = _dec_name(data, pos, lim, EXPORT_EXT, "function")
    if pos + 2 <= len(data) and data[pos] == SMALL_INTEGER_EXT:
        return ExportFun(module, function, data[pos + 1]), pos + 2
    if pos + 5 <= len(data) and data[pos] == INTEGER_EXT:
        arity = _I32.unpack_from(data, pos + 1)[0]
        if 0 <= arity <= MAX_ARITY:
            return ExportFun(module, function, arity), pos + 5
    raise DecodeError("the arity must be a small integer 0..255", start, EXPORT_EXT)


_FUN_FIXED: Final = 4 + 1 + 16 + 4 + 4  # Size, Arity, Uniq, Index, NumFree: the least a NEW_FUN_EXT holds


def _dec_new_fun(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Keep a closure as its exact bytes, without looking inside.

    Erlang: none (NEW_FUN_EXT)

    Its Size field counts the whole term after the tag, so the closure can
    be set aside without decoding its module, its creator's pid or its free
    variables.
    """
    if pos + 4 > len(data):
        raise _truncated(NEW_FUN_EXT, pos, 4, data)
    size = _U32.unpack_from(data, pos)[0]
    if size < _FUN_FIXED:
        raise DecodeError(f"a closure of {size} bytes (at least {_FUN_FIXED})", pos, NEW_FUN_EXT)
    end = pos + size
    if end > len(data):
        raise _truncated(NEW_FUN_EXT, pos, size, data)
    return LocalFun(data[pos - 1 : end]), end


def _refuse(tag: int, why: str) -> _Decoder:
    """Make the decoder of a tag this module refuses, saying why.

    Erlang: none (each refused tag is listed in the preamble)
    """

    def refused(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
        """Erlang: none (a refused tag)"""
        raise DecodeError(why, pos - 1, tag)

    return refused


def _unknown(data: bytes, pos: int, depth: int, lim: _Limits) -> _Decoded:
    """Refuse a byte that is no tag of the format.

    Erlang: none (binary_to_term's badarg)
    """
    raise DecodeError(f"unknown tag {data[pos - 1]}", pos - 1)


_DECODERS: list[_Decoder] = [_unknown] * 256
for _tag, _decoder in {
    SMALL_ATOM_UTF8_EXT: _dec_small_atom_utf8,
    ATOM_UTF8_EXT: _dec_atom_utf8,
    SMALL_ATOM_EXT: _dec_small_atom,
    ATOM_EXT: _dec_atom,
    SMALL_INTEGER_EXT: _dec_small_integer,
    INTEGER_EXT: _dec_integer,
    SMALL_BIG_EXT: _dec_small_big,
    LARGE_BIG_EXT: _dec_large_big,
    NEW_FLOAT_EXT: _dec_new_float,
    FLOAT_EXT: _dec_float,
    SMALL_TUPLE_EXT: _dec_tuple,
    LARGE_TUPLE_EXT: _dec_tuple,
    NIL_EXT: _dec_nil,
    STRING_EXT: _dec_string,
    LIST_EXT: _dec_list,
    BINARY_EXT: _dec_binary,
    BIT_BINARY_EXT: _dec_bit_binary,
    MAP_EXT: _dec_map,
    NEW_PID_EXT: _dec_new_pid,
    PID_EXT: _dec_pid,
    NEWER_REFERENCE_EXT: _dec_newer_reference,
    NEW_REFERENCE_EXT: _dec_new_reference,
    REFERENCE_EXT: _dec_reference,
    NEW_PORT_EXT: _dec_new_port,
    V4_PORT_EXT: _dec_v4_port,
    PORT_EXT: _dec_port,
    EXPORT_EXT: _dec_export,
    NEW_FUN_EXT: _dec_new_fun,
    ATOM_CACHE_REF: _refuse(ATOM_CACHE_REF, "atom cache references are not supported (no DFLAG_DIST_HDR_ATOM_CACHE)"),
    DIST_HEADER: _refuse(DIST_HEADER, "a distribution header is not a term (no DFLAG_DIST_HDR_ATOM_CACHE)"),
    COMPRESSED: _refuse(COMPRESSED, "a compressed term may only stand at the top, after the version byte"),
    LOCAL_EXT: _refuse(LOCAL_EXT, "LOCAL_EXT is only meaningful inside the node that made it"),
    FUN_EXT: _refuse(FUN_EXT, "FUN_EXT is the pre-R8 closure, gone since OTP 23"),
    VERSION: _refuse(VERSION, "a version byte inside a term"),
}.items():
    _DECODERS[_tag] = _decoder


def _inflate(data: bytes, pos: int, lim: _Limits) -> tuple[bytes, int]:
    """Inflate a compressed term's zlib stream, bounded; return it and the offset after the stream.

    Erlang: none (the COMPRESSED form, tag 80)
    """
    if pos + 4 > len(data):
        raise _truncated(COMPRESSED, pos, 4, data)
    size = _U32.unpack_from(data, pos)[0]
    if size > lim.max_uncompressed:
        raise DecodeError(f"inflates to {size} bytes (at most {lim.max_uncompressed})", pos, COMPRESSED)
    inflater = zlib.decompressobj()
    try:
        inner = inflater.decompress(data[pos + 4 :], size + 1)  # one byte more than promised shows a lie
    except zlib.error as exc:
        raise DecodeError(f"bad zlib stream ({exc})", pos + 4, COMPRESSED) from None
    if len(inner) != size or not inflater.eof:
        raise DecodeError(f"does not inflate to exactly the {size} bytes it announces", pos, COMPRESSED)
    return inner, len(data) - len(inflater.unused_data)


def decode(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_big_bytes: int = DEFAULT_MAX_BIG_BYTES,
    max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
) -> tuple[Term, int]:
    """Decode the term at ``data[offset:]`` (version byte first); return it and the offset after it.

    Erlang: erlang:binary_to_term/2 (with the ``used`` option, which also returns how much was read)

    The distribution's carrier decodes a control message and then the
    payload from one frame, each with its own version byte. ``data`` may be
    bytes, a bytearray or a memoryview (the last two are copied once).

    Raises:
        DecodeError: the bytes are not a term (see the preamble for what is
            refused and the bounds; the message names the tag and offset).
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    if max_big_bytes == DEFAULT_MAX_BIG_BYTES and max_uncompressed == DEFAULT_MAX_UNCOMPRESSED:
        lim = _DEFAULT_LIMITS
    else:
        lim = _Limits(max_big_bytes, max_uncompressed)
    if not 0 <= offset < len(data):
        raise DecodeError(f"nothing to decode (input of {len(data)} bytes)", offset)
    if data[offset] != VERSION:
        raise DecodeError(f"expected the version byte {VERSION}, found {data[offset]}", offset)
    pos = offset + 1
    try:
        if pos >= len(data):
            raise DecodeError("a version byte and no term", pos)
        if data[pos] == COMPRESSED:
            inner, end = _inflate(data, pos + 1, lim)
            if not inner:
                raise DecodeError("a compressed term inflates to nothing", pos, COMPRESSED)
            term, used = _DECODERS[inner[0]](inner, 1, max_depth, lim)
            if used != len(inner):  # DIVERGENCE(D47): OTP ignores what follows the term in it
                raise DecodeError(f"{len(inner) - used} bytes inside the compressed term after it", pos, COMPRESSED)
            return term, end
        return _DECODERS[data[pos]](data, pos + 1, max_depth, lim)
    except RecursionError:
        raise DecodeError("terms nested deeper than Python's stack allows here", offset) from None
    except (IndexError, struct.error) as exc:  # a bounds check missed: still the input's fault
        raise DecodeError(f"truncated term ({exc})", offset) from None


def binary_to_term(data: bytes | bytearray | memoryview, **limits: int) -> Term:
    """Decode a whole binary made by ``term_to_binary``; nothing may follow the term.

    Erlang: erlang:binary_to_term/1

    ``limits`` are :func:`decode`'s keyword arguments.

    Raises:
        DecodeError: the bytes are not exactly one term (Erlang ignores
            bytes after the term; trailing garbage here is refused).
    """
    term, end = decode(data, 0, **limits)
    if end != len(data):  # DIVERGENCE(D47): OTP's binary_to_term/1 ignores them
        raise DecodeError(f"{len(data) - end} bytes after the term", end)
    return term
