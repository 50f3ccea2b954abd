"""The helpers every test file shares: one way to wait, one deadline, one way to receive.

OTP's suites keep such helpers in a ``test_server`` library and a few
macros (``?UNTIL``); this module is RePy2's counterpart, so that no test file
writes its own. The fixtures built on these helpers are in ``conftest.py``.

The deadline policy, in one place: a wait for something that must happen
(a condition, a message, a ``'DOWN'``) gives up after :data:`DEADLINE`
seconds and fails the test with a description of what it waited for. The
deadline is generous on purpose: it is reached only when the awaited thing
never comes, so it costs nothing when the tests pass, and a loaded machine
(coverage, two cores, other runs) does not make a passing test fail. Set
``REPG2_TEST_DEADLINE`` to change it for a whole run. Nothing here, and no
test, sleeps to synchronise: the only sleeps are the pauses of a poll.

What is here, in the order of the file:

- waiting: :data:`DEADLINE`, :data:`WRITE_DEADLINE`, :func:`wait_until`;
- the machine: :func:`free_port`, :func:`need_erlang`;
- messages: :func:`recv`, :func:`tagged`, :func:`is_down`, :func:`down_reason`;
- processes of this node: :func:`thread_gone`, :func:`await_exit`,
  :func:`recover_test_process`, :func:`barrier`;
- reading a cluster: :func:`members`, :func:`start_pg2_everywhere`;
- hand-made peers: :func:`port_of`, :func:`connect_to`, :func:`frame`,
  :func:`closed_by_peer`, :func:`handshake_to`, :func:`control_frame`,
  :func:`read_control`, and the handshake by hand: :func:`handshake_message`,
  :func:`name_message`, :func:`read_handshake_message`, :func:`challenge_of`,
  :func:`challenge_reply`;
- what outlives a run: :func:`live_children`, :func:`processes_with_args`.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from repg2 import dist, epmd, erlang, gen_server, pg2
from repg2 import dist_util as du
from repg2.erlang import TIMEOUT, ExitError, Pid, Ref
from repg2.testing import Cluster, nodefuns, otp

T = TypeVar("T")

# == Waiting ======================================================================

DEADLINE = float(os.environ.get("REPG2_TEST_DEADLINE", "30"))  # seconds for anything that must happen
WRITE_DEADLINE = 2 * DEADLINE  # seconds for one pg2 write through the harness: longer means the write is stuck
_FIRST_PAUSE = 0.001  # seconds: the first pause of a poll; most conditions hold within a millisecond or two
_LONGEST_PAUSE = 0.05  # seconds: the pauses double up to this, so a slow condition costs few polls


def wait_until(
    condition: Callable[[], T], what: str | Callable[[], str] = "the condition", timeout: float = DEADLINE
) -> T:
    """Poll ``condition`` until it returns a true value, and return that value (pg2_SUITE's ``?UNTIL``).

    The pauses between polls start at a millisecond and double up to 50 ms.
    After ``timeout`` seconds the test fails with ``what``: a description of
    the awaited state, or a function that makes one (called only then, so it
    can report the last value seen).

    Raises:
        AssertionError: the condition did not hold within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    pause = _FIRST_PAUSE
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            description = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {description}")
        time.sleep(pause)  # the pause of a deadline-bounded poll, not a synchronisation
        pause = min(2 * pause, _LONGEST_PAUSE)


# == The machine ==================================================================


def free_port() -> int:
    """Return a TCP port that is free now on every address, below the ephemeral range (20000-32000).

    A port from the ephemeral range could be taken by some client socket
    between this call and the bind that needs it; one below it cannot.
    """
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


NOT_A_PORT_MAPPER = b"HTTP/1.1 400 Bad Request\r\n\r\n"  # what a web server on the port mapper's port says


@contextlib.contextmanager
def fake_port_mapper(monkeypatch: pytest.MonkeyPatch, replies: list[bytes], otherwise: bytes = b"") -> Iterator[int]:
    """Make ERL_EPMD_PORT a port where a program reads each request and answers with the next of ``replies``.

    The test may append to ``replies`` while the program runs; once they
    are used up, each request gets ``otherwise`` (``b""``: the connection
    is closed without an answer). Yield the port.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(DEADLINE)
                conn.recv(4096)
                conn.sendall(replies.pop(0) if replies else otherwise)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    monkeypatch.setenv("ERL_EPMD_PORT", str(port))
    try:
        yield port
    finally:
        stop.set()
        thread.join(DEADLINE)
        listener.close()


def need_erlang() -> None:
    """Skip the test unless real Erlang/OTP (``erl`` and ``epmd``) runs here; under CI (``CI=true``) fail instead.

    So the comparison with the original can never silently stop running
    where it is supposed to (``repg2.testing.otp`` says why).
    """
    reason = otp.erl_missing_reason()
    if reason is None and shutil.which("epmd") is None:
        reason = "real Erlang/OTP is not installed (apt-get install erlang-base): no `epmd` on the PATH"
    if reason is not None:
        if otp.in_ci():
            pytest.fail(f"CI=true requires the real Erlang tests to run, but {reason}")
        pytest.skip(reason)


def run_erl(script: str, *, timeout: float = 60) -> str:
    """Run Erlang expressions on a fresh distributed ``erl`` node and return what they print.

    ``script`` is a comma-separated sequence of Erlang expressions; the node
    halts after it, and an exception in it fails the calling test with the
    Erlang error. The node is named (so its pids and refs carry a real node
    name and a 32-bit creation) but starts no epmd and registers with none:
    ``-erl_epmd_port`` lets it run without one, and ``ERL_EPMD_PORT`` points
    at a free port, so nothing is left behind and no other run is disturbed.
    """
    need_erlang()
    name = f"repg2_oracle_{os.getpid()}_{random.randrange(1 << 30)}@127.0.0.1"
    wrapped = (
        f"try {script} of _ -> halt(0) catch Class:Reason:Stack -> "
        'io:format(standard_error, "~p:~p~n~p~n", [Class, Reason, Stack]), halt(1) end.'
    )
    env = {**os.environ, "ERL_EPMD_PORT": str(free_port())}
    argv = ["erl", "-noshell", "-name", name, "-setcookie", "repg2_oracle", "-start_epmd", "false"]
    argv += ["-erl_epmd_port", "0", "-eval", wrapped]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    assert done.returncode == 0, f"erl failed ({done.returncode}):\n{done.stderr}\n{done.stdout}"
    return done.stdout


# == Messages =====================================================================


def recv(match: Callable[[Any], bool] | None = None, what: str = "a message", timeout: float = DEADLINE) -> Any:
    """Receive the first message of the test process's mailbox that ``match`` accepts (any, if None).

    Raises:
        AssertionError: none came within ``timeout`` seconds; the message
            names ``what`` and lists the mailbox (which it empties).
    """
    msg = erlang.receive(match, timeout=timeout)
    if msg is TIMEOUT:
        raise AssertionError(f"no {what} within {timeout} s; mailbox: {erlang.flush()!r}")
    return msg


def tagged(tag: Any, pid: Pid | None = None) -> Callable[[Any], bool]:
    """Match a tuple message ``(tag, ...)``, or ``(tag, pid, ...)`` when ``pid`` is given."""
    return lambda m: (
        isinstance(m, tuple) and len(m) >= 1 and m[0] == tag and (pid is None or (len(m) >= 2 and m[1] == pid))
    )


def is_down(ref: Ref) -> Callable[[Any], bool]:
    """Match the ``('DOWN', ref, 'process', object, reason)`` message of monitor ``ref``."""
    return lambda m: isinstance(m, tuple) and len(m) == 5 and m[:2] == ("DOWN", ref)


def down_reason(ref: Ref, timeout: float = DEADLINE) -> Any:
    """Receive the ``'DOWN'`` of monitor ``ref`` and return its reason.

    Raises:
        AssertionError: it did not come within ``timeout`` seconds.
    """
    return recv(is_down(ref), f"'DOWN' for {ref!r}", timeout)[4]


# == Processes of this node =======================================================


def thread_gone(pid: Pid) -> None:
    """Wait until the thread of local process ``pid`` has ended, so every signal it sent has landed.

    A ``'DOWN'`` is sent while the dying process still runs its last lines
    (its links are signalled around the same time); only the end of its
    thread says that nothing more will come from it.
    """
    name = f"erlang{pid!r}"
    wait_until(lambda: all(t.name != name for t in threading.enumerate()), f"the thread of {pid!r} to end")


def await_exit(pid: Pid, ref: Ref | None = None) -> Any:
    """Wait until local process ``pid`` has completely ended; return its exit reason.

    ``ref`` is a monitor of ``pid`` the caller already holds; without one,
    the process is monitored now (a process already dead gives ``noproc``).
    """
    reason = down_reason(erlang.monitor("process", pid) if ref is None else ref)
    thread_gone(pid)
    return reason


def recover_test_process() -> Pid:
    """Take an exit signal pending for the test's own process, if a test killed it; return its (live) pid.

    An exit signal takes effect at a process's next ``receive``, so a test
    that kills its own process leaves an ``ExitError`` waiting; a zero
    sleep is such a point. The thread then becomes a new process.
    """
    try:
        erlang.sleep(0)
    except ExitError:
        pass
    return erlang.self()


def barrier(server: Any) -> None:
    """Return once ``server`` (a local gen_server) has handled every message sent to it before this call."""
    gen_server.get_state(server)


# == Reading a cluster ============================================================


def members(cluster: Cluster, node: str, group: Any) -> Any:
    """Return ``pg2:get_members(group)`` as ``node`` sees it."""
    return cluster.rpc(node, pg2.get_members, group)


def start_pg2_everywhere(cluster: Cluster) -> None:
    """Start pg2 on every node of ``cluster``, as RePG2's ``reset_repg2`` and pg2_SUITE's nodeup step do.

    pg2 starts on a node's first pg2 call; a node whose pg2 is not running
    yet is a bad node to every write and catches up by exchange later.
    Starting it everywhere first makes each write reach every node at once.
    """
    for node in cluster.nodes:
        assert isinstance(cluster.rpc(node, nodefuns.start_pg2), Pid)


# == Hand-made peers ==============================================================
# The distribution's own tests, and the hostile ones, speak to a node by
# hand: raw bytes, frames, and a handshake run step by step.


def port_of(node: str) -> int:
    """Return ``node``'s distribution port, asked of the port mapper."""
    alive, host = dist.split_node(node)
    found = epmd.port_please(alive, host)
    assert found is not None, f"{node} is not registered with the port mapper"
    return found[0]


def connect_to(port: int) -> socket.socket:
    """Open a plain TCP connection to ``port`` on 127.0.0.1 (a node's, or the port mapper's)."""
    return socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)


def frame(payload: bytes) -> bytes:
    """Return a distribution frame: the payload's 4-byte big-endian length, then the payload."""
    return struct.pack(">I", len(payload)) + payload


def closed_by_peer(sock: socket.socket, timeout: float = DEADLINE) -> bool:
    """Say whether the peer closes ``sock`` within ``timeout`` seconds (reads until EOF; a reset counts as closed)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def handshake_to(node: str, cookie: bytes, name: str = "tester@127.0.0.1") -> socket.socket:
    """Run the initiator's side of Erlang's handshake against ``node`` as ``name``; return the authenticated socket.

    The socket is then a distribution connection that nobody on this side
    reads: the test writes frames on it by hand. If ``node`` still holds a
    connection from ``name`` it answers ``alive`` and, told that ours is the
    live one, drops the old connection.
    """
    sock = connect_to(port_of(node))
    du.handshake_we_started(
        sock,
        this_node=name,
        other_node=node,
        cookie=cookie,
        creation=7,
        deadline=time.monotonic() + DEADLINE,
    )
    return sock


def control_frame(control: tuple[Any, ...], *message: Any) -> bytes:
    """Return a whole distribution frame: pass-through byte, control message and (if given) the message."""
    return frame(dist._frame(control, *message, bool(message)) if message else dist._frame(control))


def read_control(sock: socket.socket, op: int, timeout: float = DEADLINE) -> tuple[Any, Any]:
    """Read frames from an authenticated ``sock`` until one carries control message ``op``; return it and its message.

    Ticks and every other control message (the node's own chatter: its
    transitive-connection rpc, its monitors) are skipped.

    Raises:
        AssertionError: none came within ``timeout`` seconds, or the node closed the connection.
    """
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            payload = du.recv_frame(sock)
        except TimeoutError:
            raise AssertionError(f"no control message {op} within {timeout} s") from None
        except ConnectionError:
            raise AssertionError(f"the node closed the connection before control message {op}") from None
        if payload:
            control, message = dist._decode_frame(payload)
            if control[0] == op:
                return control, message


# -- The handshake, message by message -----------------------------------------------
# What dist_util's handshake sends, written and read by hand, so a test can
# stop, lie or slip something in at any step.


def handshake_message(body: bytes) -> bytes:
    """Return a handshake message: the body's 2-byte big-endian length, then the body."""
    return struct.pack(">H", len(body)) + body


def name_message(name: str = "tester@127.0.0.1", flags: int = du.DEFAULT_FLAGS, creation: int = 7) -> bytes:
    """Return the initiator's first handshake message: 'N', flags, creation, then the name."""
    return handshake_message(struct.pack(">cQIH", b"N", flags, creation, len(name)) + name.encode())


def read_handshake_message(sock: socket.socket, timeout: float = DEADLINE) -> bytes:
    """Read one handshake message (2-byte length, then the body) and return its body."""
    sock.settimeout(timeout)
    head = sock.recv(2, socket.MSG_WAITALL)
    assert len(head) == 2, f"the node closed the connection instead of answering (got {head!r})"
    (size,) = struct.unpack(">H", head)
    return sock.recv(size, socket.MSG_WAITALL)


def challenge_of(body: bytes) -> int:
    """Return the challenge in the acceptor's challenge message ('N', flags, challenge, creation, name)."""
    assert body[:1] == b"N", f"not a challenge: {body[:24]!r}"
    return int(struct.unpack_from(">I", body, 9)[0])


def challenge_reply(challenge: int, cookie: str | bytes, ours: int = 42) -> bytes:
    """Return the initiator's challenge reply, digest made with ``cookie``: 'r', our challenge, the digest."""
    return handshake_message(struct.pack(">cI", b"r", ours) + du.gen_digest(challenge, cookie))


# == What outlives a run ==========================================================


def _processes() -> list[tuple[int, int, list[str]]]:
    """Return ``(pid, parent pid, argv)`` of every live process (Linux ``/proc``; zombies left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").rstrip("\0").split("\0")
        except OSError:  # it ended while we looked
            continue
        # The fields after the parenthesised command: state, parent pid, ...
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":
            found.append((int(entry.name), int(ppid), argv))
    return found


def live_children() -> list[tuple[int, str]]:
    """Return ``(pid, command line)`` of this process's live child processes.

    multiprocessing's resource tracker is left out: the spawn start method
    starts it, it lives exactly as long as this process, and it is no node.
    """
    me = os.getpid()
    children = [(pid, " ".join(argv)) for pid, ppid, argv in _processes() if ppid == me]
    return [(pid, cmd) for pid, cmd in children if "resource_tracker" not in cmd]


def processes_with_args(args: list[str]) -> list[tuple[int, str]]:
    """Return ``(pid, command line)`` of every live process whose arguments include ``args``, in a row."""
    n = len(args)
    return [
        (pid, " ".join(argv))
        for pid, _ppid, argv in _processes()
        if any(argv[i : i + n] == args for i in range(len(argv) - n + 1))
    ]
