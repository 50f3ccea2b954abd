"""The external term format (repg2.external), checked against real Erlang/OTP 25.

The table CASES pairs an Erlang expression with the Python value that stands
for it. One ``erl`` run evaluates every expression, encodes it four ways
(OTP 25's UTF-8 atoms, its default Latin-1 atoms, the old text floats, and
compressed) and decodes our encoding of the Python value; each case then
checks both directions: our bytes are Erlang's bytes (where the two encoders
choose the same form), Erlang decodes our bytes to the very term
(``=:=``), and we decode each of Erlang's four encodings to the Python value.
Terms only Erlang can make (its pids, refs, ports, closures) must come back
out of our encoder byte for byte.

Then the properties: every term round-trips, and no input whatever (random
bytes, valid encodings mutated) makes the decoder do anything but return a
value or raise DecodeError.
"""

from __future__ import annotations

import colorsys
import math
import struct
import sys
import types
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support import run_erl

from repg2 import erlang, external
from repg2.erlang import Pid, Ref
from repg2.external import (
    DecodeError,
    ExportFun,
    ImproperList,
    LocalFun,
    Port,
    binary_to_term,
    decode,
    encode,
    term_to_binary,
)


def module_level_helper(a: Any, b: Any) -> tuple[Any, Any]:
    """A module-level function: it travels as ``fun test_external:module_level_helper/2``."""
    return (b, a)


class Helpers:
    @staticmethod
    def swap(a: Any, b: Any) -> tuple[Any, Any]:
        """A function reached through a class: it travels as ``fun test_external:'Helpers.swap'/2``."""
        return (b, a)


class Point(NamedTuple):
    x: int
    y: int


OURS = object()  # the Erlang side takes the term from our bytes (a pid or ref only Python has made)
ERLANGS = object()  # the Python side takes the term from Erlang's bytes (a pid, ref, port or fun Erlang made)

# Pids and refs of a node that exists only here: Erlang reads them from our bytes.
FAR_PID = Pid("b@127.0.0.1", 3 << 32 | 88, 0xDEADBEEF)  # <b@127.0.0.1.88.3>
FAR_REF = Ref("b@127.0.0.1", (9 << 64) | (8 << 32) | 7, 0xDEADBEEF)
ONE_WORD_REF = Ref("b@127.0.0.1", 5, 2, n_words=1)


class Case(NamedTuple):
    """One row: an Erlang expression, its Python value, and which comparisons hold."""

    name: str
    erlang: str  # an Erlang expression; "ours" means: the term our bytes decode to on the Erlang node
    python: Any  # the value; ERLANGS means: whatever Erlang's bytes decode to
    same_bytes: bool = True  # our encoding is byte for byte Erlang's (minor_version 2)
    decodes_back: bool = True  # decoding Erlang's bytes gives exactly `python` (False: None, one way)


BIG_TUPLE = tuple(range(300))
ATOM_255 = "a" * 254 + "ö"  # 255 characters, 256 bytes: ATOM_UTF8_EXT

CASES = [
    # atoms
    Case("atom", "join", "join"),
    Case("atom_quoted", "'$gen_call'", "$gen_call"),
    Case("atom_empty", "''", ""),
    Case("atom_unicode", "'ök'", "ök"),
    Case("atom_cjk", "'原子'", "原子"),
    Case("atom_255_chars", f"'{ATOM_255}'", ATOM_255),
    Case("true", "true", True),
    Case("false", "false", False),
    Case("undefined_from_none", "undefined", None, decodes_back=False),
    Case("undefined", "undefined", "undefined"),
    # integers: each boundary of each form, both signs
    *(
        Case(f"int_{label}", str(value), value)
        for label, value in [
            ("0", 0),
            ("255", 255),
            ("256", 256),
            ("minus_1", -1),
            ("2_27", 2**27),
            ("minus_2_27", -(2**27)),
            ("2_31_minus_1", 2**31 - 1),
            ("minus_2_31", -(2**31)),
            ("2_31", 2**31),
            ("minus_2_31_minus_1", -(2**31) - 1),
            ("2_32", 2**32),
            ("2_64", 2**64),
            ("minus_2_64", -(2**64)),
            ("2_1000", 2**1000),
            ("minus_2_1000", -(2**1000)),
            ("255_bytes", 2**2040 - 1),
            ("256_bytes", 2**2040),
        ]
    ),
    # floats
    Case("float", "1.5", 1.5),
    Case("float_tenth", "0.1", 0.1),
    Case("float_negative_zero", "-0.0", -0.0),
    Case("float_huge", "1.0e300", 1e300),
    Case("float_tiny", "5.0e-324", 5e-324),
    Case("float_negative", "-123456.789", -123456.789),
    # tuples
    Case("tuple_empty", "{}", ()),
    Case("tuple_nested_empty", "{{}}", ((),)),
    Case("tuple_nested", "{a, {1, {b, []}}, <<>>}", ("a", (1, ("b", [])), b"")),
    Case("tuple_255", "list_to_tuple(lists:seq(1, 255))", tuple(range(1, 256))),
    Case("tuple_300", "list_to_tuple(lists:seq(0, 299))", BIG_TUPLE),
    Case("named_tuple", "{3, 4}", Point(3, 4), decodes_back=False),  # it comes back as a plain tuple
    # lists and strings
    Case("nil", "[]", []),
    Case("list", "[a, 1, {}]", ["a", 1, ()]),
    Case("list_nested", "[[], [[]], [a]]", [[], [[]], ["a"]]),
    Case("string", '"abc"', [97, 98, 99]),  # STRING_EXT both ways
    Case("string_with_zero", "[0, 255]", [0, 255]),
    Case("not_a_string", "[256]", [256]),
    Case("not_a_string_negative", "[-1, 1]", [-1, 1]),
    Case("booleans_are_not_bytes", "[true, 1]", [True, 1]),
    Case("list_300", "[x || _ <- lists:seq(1, 300)]", ["x"] * 300),
    Case("string_65535", "lists:duplicate(65535, 7)", [7] * 65535),
    Case("string_too_long_for_string_ext", "lists:duplicate(65536, 7)", [7] * 65536),
    # improper lists
    Case("improper", "[a | b]", ImproperList(("a",), "b")),
    Case("improper_longer", "[1, 2 | 3]", ImproperList((1, 2), 3)),
    Case("improper_binary_tail", "[a | <<1>>]", ImproperList(("a",), b"\x01")),
    Case("improper_alias_ours", "ours", ImproperList(("alias",), FAR_REF)),
    # binaries
    Case("binary_empty", "<<>>", b""),
    Case("binary", "<<1, 2, 3>>", b"\x01\x02\x03"),
    Case("binary_1000", "list_to_binary(lists:duplicate(1000, 200))", bytes([200] * 1000)),
    # maps (keys in Erlang's order for a small map, so the bytes match too)
    Case("map_empty", "#{}", {}),
    Case("map_atoms", "#{a => 1, b => [2]}", {"a": 1, "b": [2]}),
    Case("map_non_atom_keys", '#{1 => one, {t} => tuple, <<"k">> => bin}', {1: "one", ("t",): "tuple", b"k": "bin"}),
    Case("map_nested", "#{m => #{n => []}}", {"m": {"n": []}}),
    Case("map_unordered", "#{a => 1, b => 2}", {"b": 2, "a": 1}, same_bytes=False),  # dict order, not term order
    # pids and refs: Erlang's own, and ours
    Case("pid_erlang", "self()", ERLANGS),
    Case("pid_erlang_other", "spawn(fun() -> ok end)", ERLANGS),
    Case("ref_erlang", "make_ref()", ERLANGS),
    Case("alias_erlang", "alias()", ERLANGS),
    Case("gen_call_erlang", "{'$gen_call', {self(), [alias | make_ref()]}, {join, chat, self()}}", ERLANGS),
    Case("pid_ours", "ours", FAR_PID),
    Case("ref_ours", "ours", FAR_REF),
    Case("ref_one_word", "ours", ONE_WORD_REF),
    Case("gen_call_ours", "ours", ("$gen_call", (FAR_PID, ImproperList(("alias",), FAR_REF)), ("join", "g", FAR_PID))),
    # funs and ports
    Case("export_fun", "fun erlang:node/0", ExportFun("erlang", "node", 0)),
    Case("export_fun_python", "fun test_external:module_level_helper/2", module_level_helper, decodes_back=False),
    # A closure is kept as its bytes, so each of Erlang's encodings of it is another opaque value.
    Case("closure_erlang", "fun(X) -> {X, self()} end", ERLANGS, decodes_back=False),
    Case("port_erlang", "hd(erlang:ports())", ERLANGS),
]


class Oracle(NamedTuple):
    """What Erlang made of one case."""

    utf8: bytes  # term_to_binary(V, [{minor_version, 2}]): UTF-8 atoms, as the distribution sends them
    latin1: bytes  # term_to_binary(V): OTP 25's default, ATOM_EXT atoms
    text_floats: bytes  # term_to_binary(V, [{minor_version, 0}]): FLOAT_EXT
    compressed: bytes  # term_to_binary(V, [compressed, {minor_version, 2}])
    verdict: str  # our bytes decoded on the Erlang node: "same" (=:=), "differs", "badarg" or "-"


# For each line "name TAB expression TAB our hex": evaluate the expression (or
# take our term), encode it four ways, and say whether our bytes decode to it.
_ORACLE_SCRIPT = """
    {ok, Input} = file:read_file("%(input)s"),
    Lines = [L || L <- binary:split(Input, <<"\\n">>, [global]), L =/= <<>>],
    Row = fun(Line) ->
        [Name, Expr, OursHex] = binary:split(Line, <<"\\t">>, [global]),
        Ours = case OursHex of <<"-">> -> none; _ -> binary:decode_hex(OursHex) end,
        Value = case Expr of
            <<"ours">> -> binary_to_term(Ours);
            _ ->
                {ok, Tokens, _} = erl_scan:string(unicode:characters_to_list(Expr) ++ "."),
                {ok, Exprs} = erl_parse:parse_exprs(Tokens),
                {value, V, _} = erl_eval:exprs(Exprs, []),
                V
        end,
        Verdict = case Ours of
            none -> <<"-">>;
            _ -> try binary_to_term(Ours) of Value -> <<"same">>; _ -> <<"differs">> catch _:_ -> <<"badarg">> end
        end,
        Hex = fun(Options) -> binary:encode_hex(term_to_binary(Value, Options)) end,
        [lists:join($\\t, [Name, Hex([{minor_version, 2}]), Hex([]), Hex([{minor_version, 0}]),
                          Hex([compressed, {minor_version, 2}]), Verdict]), $\\n]
    end,
    ok = file:write_file("%(output)s", lists:map(Row, Lines))
"""


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Oracle]:
    """Run every case through one real Erlang node; return what it made of each, by case name."""
    folder = tmp_path_factory.mktemp("oracle")
    lines = []
    for case in CASES:
        ours = "-" if case.python is ERLANGS else term_to_binary(case.python).hex()
        lines.append(f"{case.name}\t{case.erlang}\t{ours}\n")
    (folder / "in.txt").write_text("".join(lines), encoding="utf-8")
    run_erl(_ORACLE_SCRIPT % {"input": folder / "in.txt", "output": folder / "out.txt"})
    result = {}
    for line in (folder / "out.txt").read_text(encoding="utf-8").splitlines():
        name, *hexes, verdict = line.split("\t")
        result[name] = Oracle(*(bytes.fromhex(h) for h in hexes), verdict=verdict)
    return result


def same(a: Any, b: Any) -> bool:
    """Say whether two values are the same term: equal AND of the same types all the way down.

    Python's ``==`` says ``1 == 1.0 == True``; Erlang's ``=:=`` does not.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, ImproperList):
        return same(a.head, b.head) and same(a.tail, b.tail)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, Ref):
        return a == b and a.n_words == b.n_words
    return bool(a == b)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_against_erlang(case: Case, oracle: dict[str, Oracle]) -> None:
    """Our bytes are Erlang's, Erlang reads ours as the same term, and we read all four of Erlang's encodings."""
    erl = oracle[case.name]
    if case.python is ERLANGS:
        value = binary_to_term(erl.utf8)
        assert term_to_binary(value) == erl.utf8  # what Erlang made goes back out byte for byte
    else:
        value = case.python
        assert erl.verdict == "same", f"Erlang decoded our bytes to another term ({erl.verdict})"
        if case.same_bytes:
            assert term_to_binary(value).hex() == erl.utf8.hex()
    for form in ("utf8", "latin1", "text_floats", "compressed"):
        decoded = binary_to_term(getattr(erl, form))
        if case.decodes_back:
            assert same(decoded, value), f"{form}: {decoded!r} is not {value!r}"
        else:
            assert same(binary_to_term(term_to_binary(decoded)), decoded)


def test_oracle_decodes_the_special_cases_as_documented(oracle: dict[str, Oracle]) -> None:
    """None goes out as undefined, a NamedTuple as a tuple, a Python function as an export fun, a closure opaquely."""
    assert binary_to_term(oracle["undefined_from_none"].utf8) == "undefined"
    assert same(binary_to_term(oracle["named_tuple"].utf8), (3, 4))
    assert binary_to_term(oracle["export_fun_python"].utf8) == ExportFun("test_external", "module_level_helper", 2)
    assert isinstance(binary_to_term(oracle["closure_erlang"].utf8), LocalFun)
    assert isinstance(binary_to_term(oracle["port_erlang"].utf8), Port)
    assert binary_to_term(oracle["string"].utf8) == [97, 98, 99]
    assert oracle["string"].utf8[1] == external.STRING_EXT and oracle["not_a_string"].utf8[1] == external.LIST_EXT
    assert oracle["float"].text_floats[1] == external.FLOAT_EXT and oracle["atom"].latin1[1] == external.ATOM_EXT
    assert oracle["int_256_bytes"].utf8[1] == external.LARGE_BIG_EXT and oracle["tuple_300"].utf8[1] == 105
    message = binary_to_term(oracle["gen_call_erlang"].utf8)
    match message:
        case ("$gen_call", (Pid() as caller, ImproperList(("alias",), Ref() as tag)), ("join", "chat", Pid() as who)):
            assert caller == who and not caller.is_local() and tag.n_words == 3
        case _:
            pytest.fail(f"not a gen_server call: {message!r}")
    erlang_pid = binary_to_term(oracle["pid_erlang"].utf8)
    assert erlang_pid.node.startswith("repg2_oracle_") and erlang_pid.serial == 0


def test_a_map_with_a_map_as_key_is_refused_by_name(oracle: dict[str, Oracle]) -> None:
    """Erlang allows a map as a map key; Python cannot hash a dict, so decoding says so."""
    with pytest.raises(DecodeError, match="cannot be a Python dict key"):
        binary_to_term(bytes.fromhex("8374000000017400000000" + "6101"))


# == The Python side of the mapping =============================================


def test_local_pids_and_refs_round_trip_as_local() -> None:
    """A pid of this node comes back local and equal; one of another incarnation of the same name stays remote."""
    saved = (erlang._identity.name, erlang._identity.creation)
    erlang._set_identity("a@127.0.0.1", 41)
    try:
        me, ref = erlang.self(), erlang.make_ref()
        back_pid, back_ref = binary_to_term(term_to_binary((me, ref)))
        assert back_pid == me and back_pid.is_local() and back_ref == ref and back_ref.n_words == 3
        stale = binary_to_term(term_to_binary(Pid("a@127.0.0.1", me.id, 40)))
        assert not stale.is_local() and stale != me
    finally:
        erlang._set_identity(*saved)


def test_our_pids_use_erlangs_number_and_serial_split() -> None:
    """The n-th pid of this node has Number n mod 2**15 and Serial n div 2**15, as the BEAM's own pids."""
    assert erlang._local_pid_id(5) == 5
    assert erlang._local_pid_id(32767) == 32767
    assert Pid(None, erlang._local_pid_id(32768)).number == 0 and Pid(None, erlang._local_pid_id(32768)).serial == 1
    assert repr(Pid(None, erlang._local_pid_id(32768 * 3 + 7))) == "<0.7.3>"
    raw = term_to_binary(Pid("x@h", erlang._local_pid_id(32768 + 9), 1))
    assert raw[-12:] == struct.pack(">III", 9, 1, 1)  # ID, Serial, Creation


def test_decode_returns_the_offset_after_each_term_for_the_carrier() -> None:
    """A frame holds a control message and a payload, each 131-prefixed: decode reads one and says where the next starts."""
    frame = bytearray(b"\x70")  # the pass-through byte in front, as the distribution frames it
    encode((2, "", Pid("b@h", 1, 1)), frame)
    middle = len(frame)
    encode({"payload": [1, 2]}, frame)
    control, offset = decode(frame, 1)
    assert control == (2, "", Pid("b@h", 1, 1)) and offset == middle
    payload, end = decode(memoryview(frame), offset)
    assert payload == {"payload": [1, 2]} and end == len(frame)


def test_a_failed_encode_leaves_the_buffer_as_it_was() -> None:
    """encode appends all of the term or nothing: the carrier's frame stays whole."""
    out = bytearray(b"head")
    with pytest.raises(TypeError, match="set"):
        encode(("ok", [1, {2}]), out)
    assert out == b"head"


def test_python_function_travels_as_an_export_fun_and_is_called_by_name() -> None:
    """A module-level function encodes as fun Module:Function/Arity and the decoded fun calls it."""
    fun = binary_to_term(term_to_binary(module_level_helper))
    assert fun == ExportFun("test_external", "module_level_helper", 2)
    assert fun(1, 2) == (2, 1)
    with pytest.raises(erlang.ErlangError) as info:
        fun(1)
    assert info.value.reason[0] == "badarity"
    static = binary_to_term(term_to_binary(Helpers.swap))  # a class attribute, by its dotted __qualname__
    assert static.function == "Helpers.swap" and static(1, 2) == (2, 1)


def test_decoding_an_export_fun_imports_nothing_until_it_is_called() -> None:
    """Decoding runs no code: the named module is imported only when the fun is called."""
    fresh = "repg2_codec_fun_target"
    assert fresh not in sys.modules
    fun = binary_to_term(term_to_binary(ExportFun(fresh, "f", 0)))
    assert fresh not in sys.modules
    with pytest.raises(erlang.ErlangError) as info:
        fun()
    assert info.value.reason == "undef"
    hue = binary_to_term(term_to_binary(colorsys.rgb_to_hsv))
    assert hue(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)


def nested_factory() -> Callable[[], int]:
    """Return a closure, which cannot travel by name."""

    def inner() -> int:
        return 1

    return inner


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({1, 2}, "set"),
        (frozenset(), "frozenset"),
        (bytearray(b"x"), "bytearray"),
        (object(), "object"),
        (lambda: 1, "lambda"),
        (nested_factory(), "nested function"),
        (Case("a", "b", 1)._asdict, "builtin"),  # a bound method
        ("x" * 256, "256 characters"),
        ("\ud800", "not valid Unicode"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (Pid("a@h", 1 << 64, 1), "32 bits"),
        (Ref("a@h", 1 << 96, 1), "3 words"),
        (ExportFun("m", "f", 256), "arity"),
        (complex(1, 2), "complex"),
    ],
)
def test_values_without_an_erlang_form_are_refused_naming_the_type(value: Any, named: str) -> None:
    """Anything without a row in the mapping is a TypeError at encode time, saying what it is."""
    with pytest.raises(TypeError) as info:
        term_to_binary(value)
    assert named.split()[0] in str(info.value) or type(value).__name__ in str(info.value)


def test_a_function_of_main_and_a_term_containing_itself_are_refused() -> None:
    """A function of __main__ names nothing on another node; a cyclic list is no term."""
    orphan = types.FunctionType(module_level_helper.__code__, {}, "orphan")
    orphan.__module__ = "__main__"
    with pytest.raises(TypeError, match="__main__"):
        term_to_binary(orphan)
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError, match="contains itself"):
        term_to_binary(loop)


def test_subclasses_encode_as_their_erlang_type() -> None:
    """IntEnum, str enums, NamedTuple and dict subclasses go as integers, atoms, tuples and maps."""
    import enum
    from collections import OrderedDict

    class Colour(enum.IntEnum):
        RED = 1

    class Mode(str, enum.Enum):  # noqa: UP042 - not StrEnum: its str() is "Mode.FAST", not the value
        FAST = "fast"

    assert binary_to_term(term_to_binary([Colour.RED, Mode.FAST, Point(1, 2), OrderedDict(a=1)])) == [
        1,
        "fast",
        (1, 2),
        {"a": 1},
    ]


def test_improper_list_is_checked_when_made() -> None:
    """An improper list has at least one element and a tail that is not a list."""
    with pytest.raises(ValueError, match="at least one"):
        ImproperList((), "t")
    with pytest.raises(ValueError, match="cannot be a list"):
        ImproperList(("a",), [1])
    assert ImproperList(["a"], "t") == ImproperList(("a",), "t") and hash(ImproperList(["a"], "t"))


# == Decoding what other encoders may send =====================================


@pytest.mark.parametrize(
    ("hexed", "expected"),
    [
        ("836c00000000 6a", []),  # LIST_EXT of no elements is its tail
        ("836c00000000 770161", "a"),
        ("836c00000001 6101 6c00000001 6102 6a", [1, 2]),  # a list as a list's tail continues it
        ("836c00000001 6101 6b00020506", [1, 5, 6]),
        ("836c00000001 6101 6c00000001 6102 770161", ImproperList((1, 2), "a")),
        ("834d0000000108 05", b"\x05"),  # BIT_BINARY_EXT of whole bytes
        ("834d0000000000", b""),
        ("836e010005", 5),  # a big that is small
        ("836e03000500 00", 5),  # with leading zero digits
        ("836e010100", 0),  # minus zero
        ("836e010205", -5),  # any non-zero sign byte is negative, as in OTP
        ("8373 01e9", "é"),  # SMALL_ATOM_EXT, Latin-1
        ("8364 0004 74727565", True),  # ATOM_EXT true
        ("8371 770166 770167 62 00000003", ExportFun("f", "g", 3)),  # EXPORT_EXT, arity as INTEGER_EXT
        ("8367 770361406800000001 00000002 03", Pid("a@h", 2 << 32 | 1, 3)),  # PID_EXT
        ("8365 7703614068 00000007 02", Ref("a@h", 7, 2, n_words=1)),  # REFERENCE_EXT
        ("8372 0002 7703614068 01 00000001 00000002", Ref("a@h", 2 << 32 | 1, 1, n_words=2)),  # NEW_REFERENCE_EXT
        ("835a 0000 7703614068 00000009", Ref("a@h", 0, 9, n_words=0)),
        ("8366 7703614068 00000005 01", Port("a@h", 5, 1)),  # PORT_EXT
        ("8378 7703614068 0000000100000002 00000003", Port("a@h", 1 << 32 | 2, 3)),  # V4_PORT_EXT
    ],
)
def test_forms_erlang_accepts_but_does_not_write(hexed: str, expected: Any) -> None:
    """Forms of older nodes or other encoders decode as OTP 25 decodes them (each measured on a real node)."""
    assert same(binary_to_term(bytes.fromhex(hexed.replace(" ", ""))), expected)


def test_float_ext_is_read_as_otp_reads_it() -> None:
    """FLOAT_EXT's text: digits, a point, digits, an optional exponent, NUL padding; anything else is refused."""

    def float_ext(text: bytes) -> bytes:
        return b"\x83c" + text.ljust(31, b"\0")

    assert binary_to_term(float_ext(b"1.50000000000000000000e+00")) == 1.5
    assert binary_to_term(float_ext(b"1.5\0zz")) == 1.5
    for bad in (b"15", b"1.", b"1e5", b" 1.5", b"inf", b"nan", b"1_0.0", b"0x10"):
        with pytest.raises(DecodeError, match="FLOAT_EXT"):
            binary_to_term(float_ext(bad))


def _compressed(inner: bytes, announced: int | None = None) -> bytes:
    return b"\x83\x50" + struct.pack(">I", len(inner) if announced is None else announced) + zlib.compress(inner)


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"", "nothing to decode"),
        (b"\x83", "no term"),
        (b"\x84\x6a", "version byte 131"),
        (b"\x83\x6a\x00", "1 bytes after the term"),
        (b"\x83\x00", "unknown tag 0"),
        (b"\x83\x52\x00", "atom cache"),
        (b"\x83\x44\x00", "distribution header"),
        (b"\x83\x79", "LOCAL_EXT"),
        (b"\x83\x75", "FUN_EXT"),
        (b"\x83\x68\x01\x50", "only stand at the top"),
        (b"\x83\x68\x02\x61\x01", "needs 1 more bytes"),
        (b"\x83\x6c\xff\xff\xff\xff\x6a", "LIST_EXT"),  # 4 billion elements claimed in 2 bytes
        (b"\x83\x69\xff\xff\xff\xff", "LARGE_TUPLE_EXT"),
        (b"\x83\x74\xff\xff\xff\xff", "MAP_EXT"),
        (b"\x83\x6d\xff\xff\xff\xff\x00", "BINARY_EXT"),
        (b"\x83\x6f\x00\x01\x00\x01\x00", "big integer of 65537 bytes"),
        (b"\x83\x77\x01\xff", "UTF-8"),
        (b"\x83\x77\x03\xed\xa0\x80", "UTF-8"),  # an encoded surrogate
        (b"\x83\x76\x02\x00" + "é".encode() * 256, "256 characters"),
        (b"\x83\x64\x01\x00" + b"a" * 256, "256 characters"),
        (b"\x83\x46\x7f\xf8\x00\x00\x00\x00\x00\x00", "finite"),
        (b"\x83\x46\x7f\xf0\x00\x00\x00\x00\x00\x00", "finite"),
        (b"\x83\x4d\x00\x00\x00\x01\x03\xe0", "3 bits is not whole bytes"),
        (b"\x83\x4d\x00\x00\x00\x01\x00\x05", "0 bits used"),
        (b"\x83\x4d\x00\x00\x00\x00\x08", "8 bits used"),
        (b"\x83\x74\x00\x00\x00\x02\x61\x01\x61\x02\x61\x01\x61\x03", "only 1 distinct"),  # a duplicate key
        (b"\x83\x74\x00\x00\x00\x02\x61\x01\x61\x02\x46?\xf0\x00\x00\x00\x00\x00\x00\x61\x03", "only 1 distinct"),
        (b"\x83\x74\x00\x00\x00\x01\x6b\x00\x01\x01\x61\x01", "cannot be a Python dict key"),
        (b"\x83\x58\x6a" + bytes(12), "node must be an atom"),
        (b"\x83\x5a\x00\x06\x77\x01a" + bytes(4 + 24), "6 words"),
        (b"\x83\x72\x00\x01\x77\x01a\x04" + bytes(4), "old form"),
        (b"\x83\x67\x77\x01a" + bytes(8) + b"\x04", "one-byte form"),
        (b"\x83\x71\x77\x01m\x77\x01f\x6a", "arity"),
        (b"\x83\x70\x00\x00\x00\x05", "closure of 5 bytes"),
        (_compressed(b"\x6b\x00\x01\x07", 5), "exactly the 5 bytes"),
        (_compressed(b"\x6b\x00\x01\x07\x01"), "1 bytes inside the compressed term"),
        (_compressed(b"\x83\x6a"), "version byte inside"),
        (b"\x83\x50\xff\xff\xff\xff\x78\x9c", "at most"),  # 4 GiB announced
        (b"\x83\x50\x00\x00\x00\x04garbage", "zlib"),
        (_compressed(b""), "inflates to nothing"),
    ],
)
def test_malformed_input_is_a_decode_error_saying_what_and_where(data: bytes, complaint: str) -> None:
    """Each kind of bad input raises DecodeError whose message names the problem, the tag and the offset."""
    with pytest.raises(DecodeError, match=complaint) as info:
        binary_to_term(data)
    assert "offset" in str(info.value)


def test_a_compressed_bomb_is_refused_before_it_inflates() -> None:
    """A few KiB that inflate past the bound stop at the bound: the size is checked, then the stream capped."""
    bomb = zlib.compress(b"\x6a" * (64 << 20), 9)
    assert len(bomb) < 100_000
    lying = b"\x83\x50" + struct.pack(">I", 1000) + bomb  # announces 1000 bytes, holds 64 MiB
    with pytest.raises(DecodeError, match="exactly the 1000 bytes"):
        binary_to_term(lying)
    honest = b"\x83\x50" + struct.pack(">I", 64 << 20) + bomb
    with pytest.raises(DecodeError, match="at most"):
        binary_to_term(honest)


def test_limits_are_configurable() -> None:
    """max_depth, max_big_bytes and max_uncompressed bound one call, and only that call."""
    deep: Any = []
    for _ in range(50):
        deep = [deep]
    data = term_to_binary(deep)
    assert binary_to_term(data) == deep
    with pytest.raises(DecodeError, match="nested too deeply"):
        binary_to_term(data, max_depth=10)
    with pytest.raises(DecodeError, match="big integer of 9 bytes"):
        binary_to_term(term_to_binary(2**64), max_big_bytes=8)
    with pytest.raises(DecodeError, match="at most 3"):
        binary_to_term(_compressed(b"\x6b\x00\x01\x07"), max_uncompressed=3)
    tuples: Any = ()
    for _ in range(external.DEFAULT_MAX_DEPTH + 1):
        tuples = (tuples,)
    with pytest.raises(DecodeError, match="nested too deeply"):
        binary_to_term(term_to_binary(tuples))


# == Properties ==================================================================

atoms = st.text(max_size=20).filter(lambda s: s not in ("true", "false"))  # those two come back as bools
pids = st.builds(
    Pid,
    st.sampled_from(["a@127.0.0.1", "b@h", "nonode@nohost"]),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
)
refs = st.integers(0, 5).flatmap(
    lambda n: st.builds(
        Ref, st.sampled_from(["a@h", "z@h"]), st.integers(0, 2 ** (32 * n) - 1), st.integers(0, 2**32 - 1), st.just(n)
    )
)
scalars = st.one_of(
    atoms,
    st.booleans(),
    st.integers(min_value=-(2**600), max_value=2**600),
    st.floats(allow_nan=False, allow_infinity=False),
    st.binary(max_size=40),
    pids,
    refs,
    st.builds(ExportFun, atoms, atoms, st.integers(0, 255)),
)
hashable = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4).map(tuple), max_leaves=10)


def _terms(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=6),
        st.lists(inner, max_size=6).map(tuple),
        st.dictionaries(hashable, inner, max_size=4),
        st.builds(ImproperList, st.lists(inner, min_size=1, max_size=3), scalars),
        st.lists(st.integers(0, 255), max_size=10),
    )


terms = st.recursive(scalars, _terms, max_leaves=30)


def _no_merged_keys(term: Any) -> bool:
    """Say whether a dict anywhere in ``term`` has keys Python would merge when decoding (1 and 1.0)."""
    if isinstance(term, dict):
        keys = [term_to_binary(k) for k in term]
        return len(set(keys)) == len(keys) and all(_no_merged_keys(k) and _no_merged_keys(v) for k, v in term.items())
    if isinstance(term, tuple | list):
        return all(_no_merged_keys(t) for t in term)
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms)
def test_every_term_round_trips(term: Any) -> None:
    """binary_to_term(term_to_binary(T)) is T, types and all, and re-encodes to the same bytes."""
    data = term_to_binary(term)
    back = binary_to_term(data)
    assert same(back, term)
    assert term_to_binary(back) == data


def _mutations(data: bytes) -> st.SearchStrategy[bytes]:
    """Damage ``data``: flip, overwrite, cut, insert or splice bytes."""
    size = len(data)
    return st.one_of(
        st.tuples(st.integers(0, size - 1), st.integers(0, 255)).map(
            lambda p: data[: p[0]] + bytes([p[1]]) + data[p[0] + 1 :]
        ),
        st.integers(0, size).map(lambda i: data[:i]),
        st.tuples(st.integers(0, size), st.binary(min_size=1, max_size=8)).map(
            lambda p: data[: p[0]] + p[1] + data[p[0] :]
        ),
        st.tuples(st.integers(1, size - 1), st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f"])).map(
            lambda p: data[: p[0]] + p[1] + data[p[0] + len(p[1]) :]
        ),
    )


def _decode_or_refuse(data: bytes, **limits: int) -> None:
    """Decode ``data``: only a value or a DecodeError may come out."""
    try:
        binary_to_term(data, **limits)
    except DecodeError:
        pass


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64).map(lambda b: b"\x83" + b))
def test_random_bytes_only_ever_decode_or_raise_decode_error(data: bytes) -> None:
    """Random bytes after the version byte give a value or DecodeError: no other exception, no hang."""
    _decode_or_refuse(data)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_damaged_encodings_only_ever_decode_or_raise_decode_error(data: st.DataObject) -> None:
    """A valid encoding with bytes flipped, cut, inserted or overwritten decodes or raises DecodeError."""
    term = data.draw(terms)
    valid = term_to_binary(term)
    assume(len(valid) > 2)
    damaged = data.draw(_mutations(valid))
    _decode_or_refuse(damaged)
    _decode_or_refuse(damaged, max_depth=3, max_big_bytes=2)
    offset = data.draw(st.integers(0, len(damaged)))
    try:
        decode(damaged, offset)
    except DecodeError:
        pass


def test_each_tag_cut_at_each_byte_is_a_decode_error() -> None:
    """Every prefix of an encoding of every form is refused as truncated, never an IndexError."""
    samples: list[Any] = [
        ("a", "ök", True, -5, 2**40, 2**3000, 1.5, b"xyz", [1, 2], [300], {"k": [()]}, ()),
        ImproperList(("alias",), FAR_REF),
        FAR_PID,
        ExportFun("m", "f", 1),
        Port("a@h", 7, 1),
        Port("a@h", 1 << 40, 1),
        LocalFun(b"\x70" + struct.pack(">I", 40) + bytes(36)),
        Ref("a@h", 1, 1, n_words=5),
    ]
    for sample in samples:
        data = term_to_binary(sample)
        assert same(binary_to_term(data), sample)
        for cut in range(len(data)):
            with pytest.raises(DecodeError):
                binary_to_term(data[:cut])


def test_a_decoder_low_on_stack_still_raises_decode_error() -> None:
    """Nesting within max_depth but beyond the caller's remaining stack is a DecodeError, not RecursionError."""
    nested: Any = 0
    for _ in range(400):
        nested = (nested,)
    data = term_to_binary(nested)

    def descend(levels: int) -> None:
        if levels:
            descend(levels - 1)
            return
        with pytest.raises(DecodeError, match="Python's stack"):
            binary_to_term(data)

    descend(sys.getrecursionlimit() - 300)


def test_a_huge_length_claim_allocates_nothing() -> None:
    """Claims of 4 billion elements in a 10-byte input are refused at once (no list of 4 billion)."""
    for tag in (b"\x6c", b"\x69", b"\x74", b"\x6d", b"\x6f"):
        with pytest.raises(DecodeError, match="needs"):
            binary_to_term(b"\x83" + tag + b"\xff\xff\xff\xfe" + b"\x6a" * 4, max_big_bytes=2**33)


def test_the_atom_caches_stay_bounded() -> None:
    """A peer sending endless new atoms cannot grow the decoder's or the encoder's atom cache without limit."""
    for i in range(2 * external._ATOM_CACHE_SIZE + 10):
        binary_to_term(term_to_binary(f"atom{i}"))
    assert len(external._ATOMS_UTF8) <= external._ATOM_CACHE_SIZE
    assert len(external._ATOMS_OUT) <= external._ATOM_CACHE_SIZE


def test_module_documents_every_tag_it_refuses() -> None:
    """Every refused tag is named in the preamble, so a reader knows what will not pass."""
    doc = external.__doc__ or ""
    for name in ("ATOM_CACHE_REF", "LOCAL_EXT", "FUN_EXT", "NEW_FUN_EXT", "BIT_BINARY_EXT", "V4_PORT_EXT"):
        assert name in doc
    assert Path(external.__file__).read_text().count("DIVERGENCE(") >= 4


# == What cannot be encoded, and the rarer decoding errors ===============================

import threading  # noqa: E402 - appended part of the file

ATOM_A = b"w\x03a@h"  # SMALL_ATOM_UTF8_EXT 'a@h'


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x83c" + b"1.00000000000000000000e+999".ljust(31, b"\0"), "out of range"),
        (b"\x83M\x00\x00", "needs 5 more bytes"),
        (b"\x83t\x00\x00\x00\x02a\x01a\x02", "needs 1 more bytes"),
        (b"\x83e" + ATOM_A + b"\x00\x00", "needs 5 more bytes"),
        (b"\x83e" + ATOM_A + b"\x00\x04\x00\x00\x01", "too large in the old form"),
        (b"\x83f" + ATOM_A + b"\x00\x00\x00\x07\x04", "creation 4 in the old one-byte form"),
        (b"\x83qw\x01mw\x01fb\x00\x00\x01\x00", "the arity must be a small integer"),
    ],
    ids=[
        "float text past the double range",
        "bit binary cut",
        "map cut",
        "old ref cut",
        "old ref id",
        "old port",
        "arity",
    ],
)
def test_malformed_terms_are_decode_errors(data: bytes, why: str) -> None:
    """Each malformed term from the wire is a DecodeError naming what is wrong, never a crash of the reader."""
    with pytest.raises(DecodeError, match=why):
        binary_to_term(data)


def test_the_atoms_true_and_false_name_a_node_as_text() -> None:
    """A node name that is the atom true (which decodes as True elsewhere) stays the text 'true' in a pid."""
    pid = binary_to_term(b"\x83Xw\x04true" + struct.pack(">III", 5, 0, 1))
    assert isinstance(pid, Pid) and pid.node == "true"


def test_values_that_do_not_fit_their_fields_are_refused_at_the_encode() -> None:
    """A creation or port id too wide for its field, or a function whose name finds another, is a TypeError."""
    with pytest.raises(TypeError, match="creation"):
        term_to_binary(Pid("a@h", 5, 1 << 32))
    with pytest.raises(TypeError, match="creation"):
        term_to_binary(Ref("a@h", 5, 1 << 32))
    with pytest.raises(TypeError, match="does not fit 64 bits"):
        term_to_binary(Port("a@h", 1 << 64, 1))

    def renamed() -> None:
        """A function whose qualified name says it is another."""

    renamed.__qualname__ = "module_level_helper"
    with pytest.raises(TypeError, match="does not name this function"):
        term_to_binary(renamed)


def test_opaque_terms_print_as_erlang_prints_them() -> None:
    """A port prints as #Port<node.id>, a closure by its size; an export fun naming no function is undef."""
    assert repr(Port("a@h", 7, 1)) == "#Port<a@h.7>"
    assert repr(LocalFun(b"p" + bytes(40))) == "#Fun<41 bytes>"
    with pytest.raises(erlang.ErlangError, match="is not a function") as undef:
        ExportFun("repg2.rpc", "NAME", 0).resolve()
    assert undef.value.reason == "undef"


def test_portable_describes_each_element_of_a_list() -> None:
    """portable() of a list keeps what travels and describes what does not, element by element."""
    lock = threading.Lock()
    assert external.portable([1, lock]) == [1, repr(lock).encode()]
