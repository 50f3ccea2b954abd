"""The port mapper: epmd's protocol as ``repg2.epmd`` speaks it, as client and as server.

Three groups: RePy2's client against RePy2's server (in this process, on a
free port); the same request bytes sent to the real ``epmd`` and to ours,
answers compared; and the real tools (``epmd -names``, ``epmd -kill``,
``erl``'s ``net_adm:names()`` and registration) against each server. The
Erlang tests skip without ``epmd``/``erl``, unless ``CI=true``, where they
fail. Every real epmd gets a private port and is killed after; every
``erl`` node gets a unique name and is stopped after.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import DEADLINE, free_port, live_children, need_erlang, processes_with_args, wait_until

from repg2 import epmd

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
COOKIE = "repg2-epmd-test"


# == Helpers =========================================================================


def exchange(port: int, data: bytes, half_close: bool = False) -> bytes:
    """Send raw bytes to the port mapper on ``port`` and return all it sends back before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # it may close before taking all of an oversized request
        out = bytearray()
        while True:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                break  # closed with unread bytes of ours still in its buffer
            if not chunk:
                break
            out += chunk
        return bytes(out)


def alive2(name: bytes, port: int, high: int = 6, low: int = 6, extra: bytes = b"") -> bytes:
    """Build an ALIVE2_REQ by hand (not with the module under test), length included."""
    body = b"x" + struct.pack(">HBBHHH", port, 77, 0, high, low, len(name)) + name
    body += struct.pack(">H", len(extra)) + extra
    return struct.pack(">H", len(body)) + body


def register_raw(port: int, request: bytes) -> tuple[socket.socket, bytes]:
    """Send a registration by hand; return the open socket and the reply (6 or 4 bytes)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    sock.sendall(request)
    reply = sock.recv(1)
    reply += sock.recv(5 if reply == b"v" else 3)
    return sock, reply


def serve(mapper: epmd.PortMapper) -> threading.Thread:
    """Run ``mapper.serve_forever`` in a daemon thread and return the thread."""
    thread = threading.Thread(target=mapper.serve_forever, daemon=True, name=f"test-epmd-{mapper.port}")
    thread.start()
    return thread


def erl_env(port: int) -> dict[str, str]:
    """Return the environment for a real epmd or erl that uses the port mapper on ``port``."""
    env = dict(os.environ)
    env["ERL_EPMD_PORT"] = str(port)
    return env


def run_epmd(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``epmd`` command line against the port mapper on ``port``."""
    return subprocess.run(["epmd", *args], env=erl_env(port), capture_output=True, text=True, timeout=2 * DEADLINE)


def erl_eval(port: int, expr: str) -> str:
    """Run an expression on a fresh, short-lived ``erl -name`` node that uses the port mapper on ``port``."""
    name = f"t{random.randrange(10**9)}@127.0.0.1"
    cmd = ["erl", "-name", name, "-setcookie", COOKIE, "-noshell", "-eval", f"{expr}, init:stop()."]
    result = subprocess.run(cmd, env=erl_env(port), capture_output=True, text=True, timeout=2 * DEADLINE)
    assert result.returncode == 0, result
    return result.stdout


def kill_processes_with_args(args: list[str]) -> None:
    """SIGKILL the processes whose command line contains ``args`` in a row (names unique to this test)."""
    for pid, _cmd in processes_with_args(args):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:  # it ended meanwhile
            pass


def kill_erl_named(alive: str) -> None:
    """SIGKILL the BEAM running node ``alive@127.0.0.1`` (a fallback when a detached node did not stop)."""
    kill_processes_with_args([f"{alive}@127.0.0.1"])


@pytest.fixture
def mapper() -> Iterator[epmd.PortMapper]:
    """A PortMapper on a free port of 127.0.0.1, served in a thread, closed after the test."""
    with epmd.PortMapper(0, ["127.0.0.1"], packet_timeout=1.0) as m:
        thread = serve(m)
        yield m
        m.close()
        thread.join(DEADLINE)
        assert not thread.is_alive()


@pytest.fixture
def real_epmd() -> Iterator[int]:
    """A real ``epmd -daemon`` on a private port (yielded), killed after the test."""
    need_erlang()
    port = free_port()
    subprocess.run(["epmd", "-daemon", "-port", str(port)], env=erl_env(port), check=True)
    try:
        wait_until(lambda: _answers(port), f"epmd on port {port}")
        yield port
    finally:
        if run_epmd(port, "-kill").returncode != 0:  # a test left a node registered: end it anyway
            kill_processes_with_args(["-daemon", "-port", str(port)])
        wait_until(lambda: not _answers(port), f"epmd on port {port} to exit")


def _answers(port: int) -> bool:
    """Say whether a port mapper answers NAMES on ``port``."""
    try:
        epmd.names("127.0.0.1", timeout=5, epmd_port=port)
    except OSError:
        return False
    return True


# == RePy2's client against RePy2's server ==============================================


def test_register_port_please_names(mapper: epmd.PortMapper) -> None:
    """A registered name is found by port_please (with distribution version 6) and listed by names."""
    sock, creation = epmd.register_node("alpha", 5001, epmd_port=mapper.port)
    with sock:
        assert creation > 0
        assert epmd.port_please("alpha", "127.0.0.1", epmd_port=mapper.port) == (5001, 6)
        assert epmd.port_please("nobody", "127.0.0.1", epmd_port=mapper.port) is None
        assert epmd.names("127.0.0.1", epmd_port=mapper.port) == {"alpha": 5001}


def test_names_lists_oldest_first_as_erlang_does(mapper: epmd.PortMapper) -> None:
    """epmd sends the newest node first; erl_epmd:names/1 (and ours) returns the oldest first."""
    socks = [epmd.register_node(n, p, epmd_port=mapper.port)[0] for n, p in (("a", 1), ("b", 2), ("c", 3))]
    try:
        assert list(epmd.names("127.0.0.1", epmd_port=mapper.port).items()) == [("a", 1), ("b", 2), ("c", 3)]
        raw = exchange(mapper.port, b"\x00\x01n")
        assert raw == struct.pack(">I", mapper.port) + b"name c at port 3\nname b at port 2\nname a at port 1\n"
    finally:
        for s in socks:
            s.close()


def test_second_registration_refused_while_first_lives(mapper: epmd.PortMapper) -> None:
    """A name is refused (duplicate_name) while its registration's connection is open."""
    first, _creation = epmd.register_node("dup", 5002, epmd_port=mapper.port)
    with first:
        with pytest.raises(epmd.DuplicateName):
            epmd.register_node("dup", 5003, epmd_port=mapper.port)
        assert epmd.port_please("dup", "127.0.0.1", epmd_port=mapper.port) == (5002, 6)


def test_registration_ends_with_its_connection(mapper: epmd.PortMapper) -> None:
    """Closing the registration's socket unregisters the name; so does any byte sent on it."""
    sock, _ = epmd.register_node("gone", 5004, epmd_port=mapper.port)
    sock.close()
    wait_until(lambda: epmd.port_please("gone", "127.0.0.1", epmd_port=mapper.port) is None, "gone to unregister")
    sock, _ = epmd.register_node("chatty", 5005, epmd_port=mapper.port)
    with sock:
        sock.sendall(b"?")
        wait_until(lambda: "chatty" not in epmd.names("127.0.0.1", epmd_port=mapper.port), "chatty to unregister")


def test_creation_steps_on_each_registration_of_a_name(mapper: epmd.PortMapper) -> None:
    """A new name's creation is the Unix time plus one; each re-registration adds one, as in epmd."""
    before = int(time.time())
    sock, first = epmd.register_node("incarnation", 5006, epmd_port=mapper.port)
    after = int(time.time())
    assert before + 1 <= first <= after + 1
    creations = [first]
    for _ in range(3):
        sock.close()
        wait_until(lambda: epmd.port_please("incarnation", "127.0.0.1", epmd_port=mapper.port) is None, "unregister")
        sock, creation = epmd.register_node("incarnation", 5006, epmd_port=mapper.port)
        creations.append(creation)
    sock.close()
    assert creations == [first, first + 1, first + 2, first + 3]


def test_old_nodes_get_alive2_resp_with_creation_1_to_3(mapper: epmd.PortMapper) -> None:
    """A node of distribution version 5 gets ALIVE2_RESP (16-bit creation in 1..3), as epmd answers it."""
    sock, reply = register_raw(mapper.port, alive2(b"old", 5007, high=5, low=5))
    with sock:
        assert reply[:2] == b"y\x00" and 1 <= struct.unpack(">H", reply[2:])[0] <= 3


def test_utf8_names_and_extra_data(mapper: epmd.PortMapper) -> None:
    """Names are UTF-8 on the wire; PORT2_RESP returns the registered extra data byte for byte."""
    sock, reply = register_raw(mapper.port, alive2("nöde".encode(), 5008, extra=b"hello"))
    with sock:
        assert reply[:2] == b"v\x00"
        assert epmd.port_please("nöde", "127.0.0.1", epmd_port=mapper.port) == (5008, 6)
        raw = exchange(mapper.port, b"\x00\x06z" + "nöde".encode())
        assert raw == b"w\x00" + struct.pack(">HBBHHH", 5008, 77, 0, 6, 6, 5) + "nöde".encode() + b"\x00\x05hello"
        assert epmd.names("127.0.0.1", epmd_port=mapper.port) == {"nöde": 5008}


@pytest.mark.parametrize(
    ("request_bytes", "half_close", "why"),
    [
        (b"\x00\x01Q", False, "unknown request tag"),
        (b"\x00\x00", False, "zero length"),
        (b"\xff\xff" + b"a" * 4000, False, "length far over the buffer"),
        (struct.pack(">H", 3058) + b"z", False, "length just over the buffer"),
        (b"\x00\x10x\x00", True, "truncated: the client stops sending"),
        (alive2(b"", 1), False, "ALIVE2_REQ without room for a name"),
        (
            b"\x00\x0ex" + struct.pack(">HBBHHH", 1, 77, 0, 6, 6, 50) + b"\x00\x00\x00",
            False,
            "name length past the end",
        ),
        (alive2(b"abc", 1)[:-2] + b"\x00\x09", False, "extra length past the end"),
        (alive2(b"a\x00c", 1), False, "NUL inside an ALIVE2 name"),
        (b"\x00\x04za\x00c", False, "NUL inside a PORT_PLEASE2 name"),
        (b"\x00\x01z", False, "PORT_PLEASE2 without a name"),
        (b"\x00\x03z\xff\xfe", False, "PORT_PLEASE2 name not UTF-8"),
        (b"\x01\x01z" + b"a" * 256, False, "PORT_PLEASE2 name over 255 characters"),
        (b"\x00\x05sabcd", False, "STOP_REQ without relaxed checks"),
    ],
)
def test_malformed_requests_close_the_connection_only(
    mapper: epmd.PortMapper, request_bytes: bytes, half_close: bool, why: str
) -> None:
    """Each malformed request closes its connection without an answer; the server serves on."""
    sock, _ = epmd.register_node("anchor", 5009, epmd_port=mapper.port)
    with sock:
        assert exchange(mapper.port, request_bytes, half_close) == b"", why
        assert epmd.port_please("anchor", "127.0.0.1", epmd_port=mapper.port) == (5009, 6)


@pytest.mark.parametrize(
    ("request_bytes", "why"),
    [
        (alive2(b"\xff\xfe", 1), "name not UTF-8"),
        (alive2(b"a" * 256, 1), "name over 255 characters"),
        (alive2("é".encode() * 511, 1), "name over 1020 bytes"),
        (alive2(b"e", 1, extra=b"x" * 1021), "extra data over 1020 bytes"),
    ],
)
def test_invalid_registrations_get_result_1_and_creation_99(
    mapper: epmd.PortMapper, request_bytes: bytes, why: str
) -> None:
    """epmd answers an invalid name with result 1 and creation 99, and so do we."""
    assert exchange(mapper.port, request_bytes) == b"v\x01\x00\x00\x00c", why
    assert epmd.names("127.0.0.1", epmd_port=mapper.port) == {}


def test_silent_client_is_dropped(mapper: epmd.PortMapper) -> None:
    """A connection that sends half a request and then nothing is closed after packet_timeout."""
    with socket.create_connection(("127.0.0.1", mapper.port), timeout=DEADLINE) as sock:
        sock.sendall(b"\x00")
        assert sock.recv(1) == b""  # closed by the server (the 30 s timeout would raise instead)


def test_many_clients_at_once(mapper: epmd.PortMapper) -> None:
    """With 100 connections idling mid-request, 20 threads still register and look up at once."""
    idle = [socket.create_connection(("127.0.0.1", mapper.port), timeout=DEADLINE) for _ in range(100)]
    for s in idle:
        s.sendall(b"\x00\x05z")
    results: dict[str, tuple[int, int] | None] = {}
    socks: list[socket.socket] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        sock, _ = epmd.register_node(f"n{i}", 6000 + i, epmd_port=mapper.port)
        found = epmd.port_please(f"n{i}", "127.0.0.1", epmd_port=mapper.port)
        with lock:
            socks.append(sock)
            results[f"n{i}"] = found

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    try:
        assert results == {f"n{i}": (6000 + i, 6) for i in range(20)}
        assert epmd.names("127.0.0.1", epmd_port=mapper.port) == {f"n{i}": 6000 + i for i in range(20)}
    finally:
        for s in socks + idle:
            s.close()


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[epmd.PortMapper]:
    """One PortMapper for all fuzzing examples, with a name registered throughout."""
    with epmd.PortMapper(0, ["127.0.0.1"], packet_timeout=1.0) as m:
        thread = serve(m)
        sock, _ = epmd.register_node("fuzzed", 5010, epmd_port=m.port)
        yield m
        sock.close()
        m.close()
        thread.join(DEADLINE)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300), framed=st.booleans())
def test_fuzzed_requests_never_break_the_server(fuzz_target: epmd.PortMapper, body: bytes, framed: bool) -> None:
    """Random bytes, framed with a correct length or not, never stop the server from answering."""
    data = struct.pack(">H", len(body)) + body if framed else body
    exchange(fuzz_target.port, data, half_close=True)
    assert epmd.port_please("fuzzed", "127.0.0.1", epmd_port=fuzz_target.port) == (5010, 6)


def test_kill_refused_while_nodes_live_then_obeyed(mapper: epmd.PortMapper) -> None:
    """KILL_REQ gets NO while a node is registered and OK once none is; then the server stops."""
    thread = next(t for t in threading.enumerate() if t.name == f"test-epmd-{mapper.port}")
    sock, _ = epmd.register_node("keeper", 5011, epmd_port=mapper.port)
    assert epmd.kill(epmd_port=mapper.port) is False
    sock.close()
    wait_until(lambda: not epmd.names("127.0.0.1", epmd_port=mapper.port), "keeper to unregister")
    assert epmd.kill(epmd_port=mapper.port) is True
    thread.join(DEADLINE)
    assert not thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        epmd.names("127.0.0.1", epmd_port=mapper.port)


def test_relaxed_checks_allow_stop_and_kill_with_live_nodes() -> None:
    """With relaxed_command_check, STOP_REQ drops a registration and KILL_REQ is obeyed while nodes live."""
    with epmd.PortMapper(0, ["127.0.0.1"], relaxed_command_check=True) as m:
        thread = serve(m)
        sock, _ = epmd.register_node("victim", 5012, epmd_port=m.port)
        with sock:
            assert epmd._stop_name("victim", epmd_port=m.port) == "STOPPED"
            assert sock.recv(1) == b""  # the port mapper closed the registration
            assert epmd._stop_name("victim", epmd_port=m.port) == "NOEXIST"
            other, _ = epmd.register_node("other", 5013, epmd_port=m.port)
            with other:
                assert epmd.kill(epmd_port=m.port) is True
                thread.join(DEADLINE)
                assert not thread.is_alive()


def test_dump_lists_live_and_remembered_names(mapper: epmd.PortMapper) -> None:
    """DUMP_REQ lists registered names and remembered (unregistered) ones in epmd's format."""
    old, _ = epmd.register_node("was", 5014, epmd_port=mapper.port)
    old.close()
    wait_until(lambda: not epmd.names("127.0.0.1", epmd_port=mapper.port), "was to unregister")
    sock, _ = epmd.register_node("is", 5015, epmd_port=mapper.port)
    with sock:
        port, text = epmd._epmd_call(epmd.DUMP_REQ, mapper.port)
        assert port == mapper.port
        lines = re.sub(rb"fd = \d+", b"fd = N", text).split(b"\0")
        assert lines == [
            b"active name     <is> at port 5015, fd = N\n",
            b"old/unused name <was>, port = 5014, fd = N \n",
            b"",
        ]


def test_lingering_server_exits_after_its_last_registration() -> None:
    """With a linger time, the server exits that long after its last node unregistered (epmd never does)."""
    m = epmd.PortMapper(0, ["127.0.0.1"], linger=0.3)
    thread = serve(m)
    sock, _ = epmd.register_node("brief", 5016, epmd_port=m.port)
    assert thread.is_alive()
    sock.close()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        epmd.names("127.0.0.1", epmd_port=m.port)


def test_epmd_port_comes_from_erl_epmd_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """ERL_EPMD_PORT sets the port (as for erl and epmd); 4369 without it; garbage is refused."""
    monkeypatch.delenv("ERL_EPMD_PORT", raising=False)
    assert epmd.epmd_port() == 4369
    monkeypatch.setenv("ERL_EPMD_PORT", "12345")
    assert epmd.epmd_port() == 12345
    for bad in ("abc", "0", "70000"):
        monkeypatch.setenv("ERL_EPMD_PORT", bad)
        with pytest.raises(ValueError, match="ERL_EPMD_PORT"):
            epmd.epmd_port()


def test_client_errors() -> None:
    """No port mapper: ConnectionRefusedError; a program that is not one: EpmdError, an OSError without errno."""
    port = free_port()
    with pytest.raises(ConnectionRefusedError):
        epmd.port_please("x", "127.0.0.1", epmd_port=port)
    with socket.socket() as fake:
        fake.bind(("127.0.0.1", 0))
        fake.listen()

        def answer(reply: bytes) -> None:
            conn, _ = fake.accept()
            conn.recv(100)
            conn.sendall(reply)
            conn.close()

        cases: list[tuple[Callable[[int], object], bytes]] = [
            (lambda p: epmd.port_please("x", "127.0.0.1", epmd_port=p), b"HTTP/1.1 400"),
            (lambda p: epmd.register_node("x", 1, epmd_port=p), b"HTTP/1.1 400"),
            (lambda p: epmd.names("127.0.0.1", epmd_port=p), struct.pack(">I", 1) + b"name a at port 1\n"),
            (lambda p: epmd.port_please("x", "127.0.0.1", epmd_port=p), b""),
        ]
        for call, reply in cases:
            t = threading.Thread(target=answer, args=(reply,))
            t.start()
            with pytest.raises(epmd.EpmdError) as info:
                call(fake.getsockname()[1])
            assert info.value.errno is None
            t.join(DEADLINE)


# == Starting a port mapper ==========================================================


def test_command_line_help() -> None:
    """``python -m repg2.epmd --help`` describes the options, epmd's spellings among them."""
    out = subprocess.run(
        [sys.executable, "-m", "repg2.epmd", "--help"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=2 * DEADLINE,
    )
    assert out.returncode == 0
    for option in ("--port", "--linger", "--daemon", "-names", "-kill", "-relaxed_command_check"):
        assert option in out.stdout


def test_command_line_server_exits_after_linger() -> None:
    """``python -m repg2.epmd --port N --linger S`` serves, and exits S seconds after its last node."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "repg2.epmd", "--port", str(port), "--linger", "0.5"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_until(lambda: _answers(port), "the command line port mapper")
        sock, _ = epmd.register_node("cli", 5017, epmd_port=port)
        assert proc.poll() is None
        sock.close()
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_command_line_client_commands(mapper: epmd.PortMapper, capsys: pytest.CaptureFixture[str]) -> None:
    """``--names`` and ``--kill`` print what ``epmd -names`` and ``epmd -kill`` print."""
    sock, _ = epmd.register_node("listed", 5018, epmd_port=mapper.port)
    with sock:
        assert epmd.main(["--names", "--port", str(mapper.port)]) == 0
        assert (
            capsys.readouterr().out
            == f"epmd: up and running on port {mapper.port} with data:\nname listed at port 5018\n"
        )
        assert epmd.main(["-kill", "-port", str(mapper.port)]) == 1
        assert capsys.readouterr().out == "Killing not allowed - living nodes in database.\n"
    assert epmd.main(["--names", "--port", str(free_port())]) == 1
    assert "Cannot connect to local epmd" in capsys.readouterr().err


def test_command_line_gives_way_to_a_running_port_mapper() -> None:
    """Started on a taken port, the server exits at once with status 0, as epmd does ('already running')."""
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        assert epmd.main(["--port", str(taken.getsockname()[1])]) == 0


def test_started_port_mapper_is_detached_and_lingers_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """ensure_registered starts RePy2's port mapper where none answers: no child of ours, gone after its linger."""
    monkeypatch.setenv("REPG2_PORT_MAPPER", "repg2")
    port = free_port()
    sock, creation = epmd.ensure_registered("first", 5019, epmd_port=port)
    with sock:
        assert creation > 0
        assert epmd.port_please("first", "127.0.0.1", epmd_port=port) == (5019, 6)
        assert not any("repg2.epmd" in cmd for _pid, cmd in live_children())
    wait_until(lambda: not _answers(port), "the started port mapper to exit", timeout=epmd.EPMD_LINGER + DEADLINE)


def test_two_nodes_starting_at_once_share_one_port_mapper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two registrations racing where no port mapper runs both start one; one binds, both register with it."""
    monkeypatch.setenv("REPG2_PORT_MAPPER", "repg2")
    port = free_port()
    got: dict[str, socket.socket] = {}
    barrier = threading.Barrier(2)

    def node(name: str) -> None:
        barrier.wait()
        got[name] = epmd.ensure_registered(name, 5020, epmd_port=port)[0]

    threads = [threading.Thread(target=node, args=(n,)) for n in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * DEADLINE)
    try:
        assert sorted(got) == ["left", "right"]
        assert epmd.names("127.0.0.1", epmd_port=port) == {"left": 5020, "right": 5020}
    finally:
        for s in got.values():
            s.close()
    wait_until(lambda: not _answers(port), "the started port mapper to exit", timeout=epmd.EPMD_LINGER + DEADLINE)


def test_ensure_registered_starts_the_real_epmd_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where epmd is on PATH, the port mapper started is the real ``epmd -daemon`` on ERL_EPMD_PORT's port."""
    need_erlang()
    monkeypatch.setenv("REPG2_PORT_MAPPER", "auto")
    port = free_port()
    monkeypatch.setenv("ERL_EPMD_PORT", str(port))
    try:
        sock, creation = epmd.ensure_registered("viaepmd", 5023)
        with sock:
            assert creation > 0
            assert (
                run_epmd(port, "-names").stdout
                == f"epmd: up and running on port {port} with data:\nname viaepmd at port 5023\n"
            )
        wait_until(lambda: not epmd.names("127.0.0.1"), "viaepmd to unregister")
    finally:
        if run_epmd(port, "-kill").returncode != 0:
            kill_processes_with_args(["-daemon", "-port", str(port)])
    wait_until(lambda: not _answers(port), f"epmd on port {port} to exit")


def test_ensure_registered_refuses_a_taken_name_at_once(mapper: epmd.PortMapper) -> None:
    """A name registered already fails at once with DuplicateName, as erl fails to start."""
    sock, _ = epmd.register_node("taken", 5021, epmd_port=mapper.port)
    with sock, pytest.raises(epmd.DuplicateName):
        epmd.ensure_registered("taken", 5022, epmd_port=mapper.port, start=False)


# == The same bytes to the real epmd and to ours =====================================


def refused(port: int, request: bytes) -> bytes:
    """Send a registration that is refused and return the reply (epmd keeps such a connection open; we close it)."""
    sock, reply = register_raw(port, request)
    sock.close()
    return reply


def conversation(port: int) -> list[tuple[str, object]]:
    """Run one fixed sequence of raw requests against the port mapper on ``port``; return normalised answers."""
    out: list[tuple[str, object]] = []
    first, reply = register_raw(port, alive2(b"pya", 5555))
    base = struct.unpack(">I", reply[2:])[0]
    out.append(("register", reply[:2]))
    out.append(("register again", refused(port, alive2(b"pya", 5556))))
    out.append(("port please", exchange(port, b"\x00\x04zpya")))
    out.append(("port please, NUL-terminated", exchange(port, b"\x00\x05zpya\x00")))
    out.append(("port please nobody", exchange(port, b"\x00\x07znobody")))
    names = exchange(port, b"\x00\x01n")
    out.append(("names", (struct.unpack(">I", names[:4])[0] == port, names[4:])))
    out.append(("kill with nodes", exchange(port, b"\x00\x01k")))
    for label, data in [
        ("garbage", b"\x00\x01Q"),
        ("zero length", b"\x00\x00"),
        ("oversized", b"\xff\xff" + b"a" * 4000),
        ("stop, strict", b"\x00\x04spya"),
    ]:
        out.append((label, exchange(port, data)))
    out.append(("name over 255", refused(port, alive2(b"a" * 256, 1))))
    out.append(("bad utf8", refused(port, alive2(b"\xff\xfe", 1))))
    old, reply = register_raw(port, alive2(b"pyb", 5557, high=5, low=5))
    out.append(("version 5 node", (reply[:2], 1 <= struct.unpack(">H", reply[2:])[0] <= 3)))
    old.close()
    first.sendall(b"!")  # a byte on a registration ends it
    wait_until(lambda: exchange(port, b"\x00\x04zpya") == b"w\x01", "pya's registration to end")
    again, reply = register_raw(port, alive2(b"pya", 5558))
    out.append(("re-register", (reply[:2], struct.unpack(">I", reply[2:])[0] - base)))
    dump = exchange(port, b"\x00\x01d")
    out.append(("dump", re.sub(rb"fd = \d+", b"fd = N", dump[4:])))
    again.close()
    first.close()
    wait_until(lambda: not exchange(port, b"\x00\x01n")[4:], "every registration to end")
    return out


def test_same_answers_as_the_real_epmd(real_epmd: int) -> None:
    """The same request bytes get the same answers from our server as from the real epmd (creations relative)."""
    theirs = conversation(real_epmd)
    with epmd.PortMapper(0, ["127.0.0.1"]) as m:
        thread = serve(m)
        ours = conversation(m.port)
        m.close()
        thread.join(DEADLINE)
    assert ours == theirs
    assert dict(theirs)["re-register"] == (b"v\x00", 1)


# == Our client against the real epmd and erl ========================================


def test_real_epmd_and_erl_see_our_registration(real_epmd: int) -> None:
    """A name we register with the real epmd shows in ``epmd -names`` and in erl's ``net_adm:names()``."""
    sock, creation = epmd.register_node("pyreal", 4242, epmd_port=real_epmd)
    with sock:
        assert creation > 0
        assert "name pyreal at port 4242\n" in run_epmd(real_epmd, "-names").stdout
        assert '{"pyreal",4242}' in erl_eval(real_epmd, 'io:format("~p~n", [net_adm:names()])')
        assert epmd.port_please("pyreal", "127.0.0.1", epmd_port=real_epmd) == (4242, 6)
        with pytest.raises(epmd.DuplicateName):
            epmd.register_node("pyreal", 4243, epmd_port=real_epmd)
        assert epmd.names("127.0.0.1", epmd_port=real_epmd)["pyreal"] == 4242
    wait_until(lambda: "pyreal" not in epmd.names("127.0.0.1", epmd_port=real_epmd), "pyreal to unregister")


def test_port_please_finds_a_detached_erl_node(real_epmd: int) -> None:
    """port_please finds a real ``erl -detached`` node through the real epmd, with version 6."""
    alive = f"d{random.randrange(10**9)}"
    subprocess.run(
        ["erl", "-name", f"{alive}@127.0.0.1", "-setcookie", COOKIE, "-noshell", "-detached"],
        env=erl_env(real_epmd),
        check=True,
        timeout=2 * DEADLINE,
    )
    try:
        wait_until(
            lambda: epmd.port_please(alive, "127.0.0.1", epmd_port=real_epmd) is not None, f"{alive} to register"
        )
        found = epmd.port_please(alive, "127.0.0.1", epmd_port=real_epmd)
        assert found is not None and found[1] == 6 and found[0] > 0
        with socket.create_connection(("127.0.0.1", found[0]), timeout=DEADLINE):
            pass  # the node listens where epmd says
    finally:
        erl_eval(real_epmd, f"rpc:call('{alive}@127.0.0.1', init, stop, [])")
        try:
            wait_until(lambda: alive not in epmd.names("127.0.0.1", epmd_port=real_epmd), f"{alive} to stop")
        finally:
            kill_erl_named(alive)


# == Real Erlang tools against our server ============================================


def test_real_epmd_command_line_against_our_server() -> None:
    """``epmd -names`` lists our registrations; ``epmd -kill`` is refused while they live, then stops ours."""
    need_erlang()
    with epmd.PortMapper(free_port()) as m:
        thread = serve(m)
        sock, _ = epmd.register_node("pyours", 4343, epmd_port=m.port)
        names = run_epmd(m.port, "-names")
        assert names.stdout == f"epmd: up and running on port {m.port} with data:\nname pyours at port 4343\n"
        refused = run_epmd(m.port, "-kill")
        assert (refused.returncode, refused.stdout) == (1, "Killing not allowed - living nodes in database.\n")
        assert thread.is_alive()
        sock.close()
        wait_until(lambda: not epmd.names("127.0.0.1", epmd_port=m.port), "pyours to unregister")
        killed = run_epmd(m.port, "-kill")
        assert (killed.returncode, killed.stdout) == (0, "Killed\n")
        thread.join(DEADLINE)
        assert not thread.is_alive()


def test_real_epmd_stop_against_our_relaxed_server() -> None:
    """``epmd -stop Name`` drops a registration on our server started with relaxed checks."""
    need_erlang()
    with epmd.PortMapper(free_port(), relaxed_command_check=True) as m:
        thread = serve(m)
        sock, _ = epmd.register_node("stopme", 4344, epmd_port=m.port)
        with sock:
            assert run_epmd(m.port, "-stop", "stopme").stdout == "STOPPED\n"
            assert sock.recv(1) == b""
        m.close()
        thread.join(DEADLINE)


def test_erl_node_registers_with_our_server() -> None:
    """A real ``erl -name`` node registers with our server, sees our node in net_adm:names(), and we find it."""
    need_erlang()
    alive = f"e{random.randrange(10**9)}"
    with epmd.PortMapper(free_port()) as m:
        thread = serve(m)
        sock, _ = epmd.register_node("pyours", 4345, epmd_port=m.port)
        proc = subprocess.Popen(
            [
                "erl",
                "-name",
                f"{alive}@127.0.0.1",
                "-setcookie",
                COOKIE,
                "-noshell",
                "-eval",
                'io:format("~p~n", [net_adm:names()])',
            ],
            env=erl_env(m.port),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert '{"pyours",4345}' in line and f'{{"{alive}",' in line
            found = epmd.port_please(alive, "127.0.0.1", epmd_port=m.port)
            assert found is not None and found[1] == 6
            assert epmd.names("127.0.0.1", epmd_port=m.port)[alive] == found[0]
            with socket.create_connection(("127.0.0.1", found[0]), timeout=DEADLINE):
                pass  # the node listens where it registered
        finally:
            proc.terminate()  # OTP 25 stops on SIGTERM
            proc.wait(DEADLINE)
            if proc.stdout is not None:
                proc.stdout.close()
        wait_until(lambda: alive not in epmd.names("127.0.0.1", epmd_port=m.port), f"{alive} to unregister")
        sock.close()
        m.close()
        thread.join(DEADLINE)


# == Edge cases of the client: what a broken or foreign answer gives ====================


@contextlib.contextmanager
def one_answer(reply: bytes | Callable[[int], bytes], connections: int = 1) -> Iterator[int]:
    """Serve ``connections`` clients on a free port of 127.0.0.1: read each request, send ``reply``, hang up.

    ``reply`` may be a function of the server's port (a NAMES reply starts
    with it). Yields the port; the serving thread is joined on exit.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        data = reply(port) if callable(reply) else reply

        def answer() -> None:
            for _ in range(connections):
                conn, _ = listener.accept()
                with conn:
                    conn.recv(4096)
                    conn.sendall(data)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        yield port
        thread.join(DEADLINE)


def test_a_request_that_does_not_fit_its_length_fields_is_refused_before_sending() -> None:
    """Extra data over 65535 bytes, or a request over 65535 bytes in all, is a ValueError, and nothing is sent."""
    with pytest.raises(ValueError, match="does not fit ALIVE2_REQ"):
        epmd.register_node("big", 1, extra=b"x" * 70000, epmd_port=free_port())
    with pytest.raises(ValueError, match="16-bit length"):
        epmd.register_node("big", 1, extra=b"x" * 65535, epmd_port=free_port())


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"v\x00\x00", "closed the connection in its reply"),
        (b"y\x00", "closed the connection in its reply"),
        (b"", "closed the connection instead of registering"),
    ],
)
def test_a_registration_reply_cut_short_is_an_epmd_error(reply: bytes, error: str) -> None:
    """erl_epmd:wait_for_reg_reply/2: a port mapper that hangs up before its whole reply is epmd_close, an EpmdError."""
    with one_answer(reply) as port, pytest.raises(epmd.EpmdError, match=error) as info:
        epmd.register_node("cut", 1, epmd_port=port)
    assert info.value.errno is None


def test_an_old_port_mapper_answers_with_a_16_bit_creation() -> None:
    """ALIVE2_RESP ('y', as epmd sends to nodes older than version 6) gives its 16-bit creation; result 1 is duplicate_name."""
    with one_answer(b"y\x00\x00\x02") as port:
        sock, creation = epmd.register_node("old", 1, epmd_port=port)
        sock.close()
    assert creation == 2
    with one_answer(b"y\x01\x00\x01") as port, pytest.raises(epmd.DuplicateName):
        epmd.register_node("old", 1, epmd_port=port)


def test_port_please_reply_cut_short() -> None:
    """PORT2_RESP cut after its tag is an EpmdError; cut after a zero result it is noport (None), as in erl_epmd."""
    with one_answer(b"w") as port, pytest.raises(epmd.EpmdError, match="closed the connection in its answer"):
        epmd.port_please("x", "127.0.0.1", epmd_port=port)
    with one_answer(b"w\x00\x12") as port:
        assert epmd.port_please("x", "127.0.0.1", epmd_port=port) is None


def test_a_node_of_another_distribution_version_gets_version_0(mapper: epmd.PortMapper) -> None:
    """erl_epmd:select_best_version/4: a node speaking only version 5 shares no version with OTP 25's 6: version 0."""
    sock, _reply = register_raw(mapper.port, alive2(b"ancient", 5030, high=5, low=5))
    with sock:
        assert epmd.port_please("ancient", "127.0.0.1", epmd_port=mapper.port) == (5030, 0)


def test_names_reads_what_erl_epmd_reads() -> None:
    """names/1: an empty reply is no nodes; fewer than 4 bytes is garbage; lines that do not parse are skipped."""
    with one_answer(b"") as port:
        assert epmd.names("127.0.0.1", epmd_port=port) == {}
    with one_answer(b"\x00\x00") as port, pytest.raises(epmd.EpmdError, match="too short"):
        epmd.names("127.0.0.1", epmd_port=port)
    lines = (
        b"hello\n"
        b"name good at port 4100\n"
        b"name nospace\n"
        b"name bad atport 1\n"
        b"name notaport at port x1\n"
        b"name \xff\xfe at port 3\n"
        b"name unfinished at port 4"
    )
    with one_answer(lambda port: struct.pack(">I", port) + lines) as port:
        assert epmd.names("127.0.0.1", epmd_port=port) == {"good": 4100}


def test_a_reply_longer_than_any_port_mapper_sends_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NAMES reply past MAX_REPLY bytes does not come from a port mapper: EpmdError, not unbounded memory."""
    monkeypatch.setattr(epmd, "MAX_REPLY", 64)
    with one_answer(lambda port: struct.pack(">I", port) + b"name a at port 1\n" * 10) as port:
        with pytest.raises(epmd.EpmdError, match="longer than 64 bytes"):
            epmd.names("127.0.0.1", epmd_port=port)


def test_kill_answered_with_garbage_is_an_epmd_error() -> None:
    """KILL_REQ answered with anything but OK or NO is an EpmdError."""
    with one_answer(b"??") as port, pytest.raises(epmd.EpmdError, match="to KILL_REQ"):
        epmd.kill(epmd_port=port)


def test_command_line_names_without_a_port_number_in_the_reply(capsys: pytest.CaptureFixture[str]) -> None:
    """``--names`` against something that answers nothing prints epmd's "no response from local epmd", status 1."""
    with one_answer(b"") as port:
        assert epmd.main(["--names", "--port", str(port)]) == 1
    assert capsys.readouterr().out == "epmd: no response from local epmd\n"


def test_command_line_kill_and_stop_print_as_epmd(capsys: pytest.CaptureFixture[str]) -> None:
    """``-stop NAME`` prints the port mapper's answer; ``-kill`` with no node prints "Killed" and the server exits."""
    with epmd.PortMapper(0, ["127.0.0.1"], relaxed_command_check=True) as m:
        thread = serve(m)
        assert epmd.main(["-stop", "nobody", "-port", str(m.port)]) == 0
        assert capsys.readouterr().out == "NOEXIST\n"
        assert epmd.main(["--kill", "--port", str(m.port)]) == 0
        assert capsys.readouterr().out == "Killed\n"
        thread.join(DEADLINE)
        assert not thread.is_alive()


def test_command_line_server_on_an_address_not_of_this_host_fails() -> None:
    """``--address`` naming an address this host lacks: the server cannot listen, exits 1, and frees the port it took."""
    port = free_port()
    assert epmd.main(["--port", str(port), "--address", "198.51.100.7"]) == 1  # TEST-NET-2: nobody's address
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the loopback listener bound first was closed again


def test_start_port_mapper_refuses_what_it_cannot_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An unknown REPG2_PORT_MAPPER is a ValueError; asking for the real epmd where none is on PATH, FileNotFoundError."""
    with pytest.raises(ValueError, match="auto, epmd or repg2"):
        epmd.start_port_mapper(free_port(), kind="portmap")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="epmd is not on PATH"):
        epmd.start_port_mapper(free_port(), kind="epmd")


def test_ensure_port_mapper_starts_one_that_logs_and_lingers_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ensure_port_mapper starts RePy2's port mapper where none answers; with REPG2_EPMD_LOG it logs there, verbosely."""
    log_file = tmp_path / "epmd.log"
    monkeypatch.setenv("REPG2_PORT_MAPPER", "repg2")
    monkeypatch.setenv("REPG2_EPMD_LOG", str(log_file))
    port = free_port()
    epmd.ensure_port_mapper(port)
    sock, _creation = epmd.register_node("logged", 5031, epmd_port=port)
    sock.close()
    wait_until(lambda: not _answers(port), "the started port mapper to exit", timeout=epmd.EPMD_LINGER + DEADLINE)
    assert "registered logged at port 5031" in log_file.read_text(encoding="utf-8")


def test_ensure_port_mapper_gives_up_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """When no port mapper comes up, ensure_port_mapper raises TimeoutError after trying to start one."""
    started: list[int | None] = []
    monkeypatch.setattr(epmd, "start_port_mapper", lambda port=None, **kw: started.append(port) or "repg2")
    port = free_port()
    with pytest.raises(TimeoutError, match=f"no port mapper answers on port {port}"):
        epmd.ensure_port_mapper(port, timeout=0.3)
    assert started and set(started) == {port}


def test_ensure_registered_gives_up_on_a_port_mapper_that_hangs_up() -> None:
    """A program that accepts and hangs up at once is retried until the timeout, then TimeoutError naming the cause."""
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.1)

        def hang_up() -> None:
            while not stop.is_set():
                try:
                    conn = listener.accept()[0]
                except OSError:
                    continue
                with conn:
                    conn.settimeout(DEADLINE)
                    conn.recv(4096)  # the whole request: closing with it unread would reset, not hang up

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        try:
            with pytest.raises(TimeoutError, match="cannot register 'hungup'.*epmd_close") as info:
                epmd.ensure_registered("hungup", 5032, epmd_port=listener.getsockname()[1], timeout=0.5, start=False)
            assert isinstance(info.value.__cause__, epmd.EpmdError)
        finally:
            stop.set()
            thread.join(DEADLINE)


# == Edge cases of the server ========================================================


def test_a_creation_counter_that_wraps_skips_1_to_3() -> None:
    """epmd_srv.c's bump_creation: past 2**32 - 1 the counter goes to 4, since 1..3 are the creations of old nodes."""
    node = epmd._Node(epmd.NodeInfo("w", 1), None, -1, 0xFFFFFFFF)
    node.bump_creation()
    assert node.creation() == 4


def test_a_closed_port_mapper_never_serves() -> None:
    """close() before serve_forever releases the port at once; serve_forever then returns without serving."""
    m = epmd.PortMapper(0, ["127.0.0.1"])
    port = m.port
    m.close()
    m.close()  # closing twice is harmless
    m.serve_forever()
    with pytest.raises(ConnectionRefusedError):
        epmd.names("127.0.0.1", epmd_port=port)


def test_connections_past_the_cap_are_refused_and_the_rest_served() -> None:
    """Past max_connections a new client is hung up on at once (D45); the server serves on once others leave."""
    with epmd.PortMapper(0, ["127.0.0.1"], max_connections=2) as m:
        thread = serve(m)
        idle = [socket.create_connection(("127.0.0.1", m.port), timeout=DEADLINE) for _ in range(2)]
        try:
            assert exchange(m.port, b"\x00\x01n") == b""
        finally:
            for s in idle:
                s.close()
        wait_until(lambda: _answers(m.port), "the server to take clients again")
        m.close()
        thread.join(DEADLINE)


def test_requests_from_other_hosts_may_only_look_up(mapper: epmd.PortMapper, monkeypatch: pytest.MonkeyPatch) -> None:
    """From a non-local address, ALIVE2, DUMP and KILL are closed unanswered; PORT_PLEASE2 and NAMES are answered."""
    sock, _ = epmd.register_node("local", 5033, epmd_port=mapper.port)
    with sock:
        monkeypatch.setattr(epmd, "_is_local_peer", lambda sock, peer: False)
        for request in (alive2(b"remote", 5034), b"\x00\x01d", b"\x00\x01k"):
            assert exchange(mapper.port, request) == b"", request
        assert epmd.port_please("local", "127.0.0.1", epmd_port=mapper.port) == (5033, 6)
        assert epmd.names("127.0.0.1", epmd_port=mapper.port) == {"local": 5033}


def test_a_peer_address_that_does_not_parse_is_not_local() -> None:
    """conn_local_peer_check: an address that is no IP address counts as another host's."""
    with socket.socket() as sock:
        assert epmd._is_local_peer(sock, ("not-an-address", 0)) is False


def test_stop_without_a_name_is_closed_unanswered() -> None:
    """STOP_REQ with no name, even with relaxed checks, closes the connection without an answer."""
    with epmd.PortMapper(0, ["127.0.0.1"], relaxed_command_check=True) as m:
        thread = serve(m)
        assert exchange(m.port, b"\x00\x01s") == b""
        m.close()
        thread.join(DEADLINE)


def test_more_bytes_than_announced_close_the_connection(mapper: epmd.PortMapper) -> None:
    """A first read that brings more than the length announced is refused unanswered, as epmd refuses it."""
    assert exchange(mapper.port, b"\x00\x01n" + b"zz") == b""
    assert _answers(mapper.port)


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset (SO_LINGER 0) instead of an orderly FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_reset_ends_a_registration_and_a_half_sent_request(mapper: epmd.PortMapper) -> None:
    """A registration whose connection is reset ends; a client reset in mid-request is dropped; the server serves on."""
    sock, _ = epmd.register_node("reset", 5035, epmd_port=mapper.port)
    _reset(sock)
    wait_until(lambda: "reset" not in epmd.names("127.0.0.1", epmd_port=mapper.port), "reset to unregister")
    half = socket.create_connection(("127.0.0.1", mapper.port), timeout=DEADLINE)
    half.sendall(b"\x00")
    _reset(half)
    assert epmd.names("127.0.0.1", epmd_port=mapper.port) == {}


def test_past_the_remembered_names_limit_the_oldest_slot_is_reused(
    mapper: epmd.PortMapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """epmd's node_reg2: with more than MAX_UNREG_COUNT names remembered, a new name takes the oldest slot and its creation."""
    monkeypatch.setattr(epmd, "MAX_UNREG_COUNT", 3)
    creations = {}
    for name in ("n1", "n2", "n3", "n4"):
        sock, creations[name] = epmd.register_node(name, 5036, epmd_port=mapper.port)
        sock.close()
        wait_until(lambda: not epmd.names("127.0.0.1", epmd_port=mapper.port), f"{name} to unregister")
    sock, creation = epmd.register_node("n5", 5037, epmd_port=mapper.port)
    with sock:
        assert creation == creations["n1"]
        _port, text = epmd._epmd_call(epmd.DUMP_REQ, mapper.port)
        assert b"<n1>" not in text and b"<n2>" in text and b"<n5> at port 5037" in text
