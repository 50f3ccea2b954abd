"""Section 5, run first: message round trips, each beside its floor.

Locally, on a quiet node that is not yet distributed: a plain thread
hand-off over ``queue.SimpleQueue`` (the floor), ``erlang.send`` with a
plain and with a selective ``receive``, and ``gen_server.call``. Between two
nodes, once the cluster runs: ``erlang.send`` through the distribution,
beside a raw framed TCP round trip between the same two OS processes.
"""

from __future__ import annotations

import queue
import socket
import statistics
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from repg2 import erlang, gen_server
from repg2.erlang import Pid
from repg2.tools.bench.measure import Figure, Progress, percentile

__all__ = ["LOCAL_CASES", "echo", "local_round_trips", "remote_round_trips", "start_raw_echo"]

_HEADER = struct.Struct(">I")  # the distribution's 4-byte frame length, reused by the raw floor
RoundTrip = Callable[[int], None]  # makes n round trips
Teardown = Callable[[], object]  # stops what a case started; what it returns is ignored


def run_round_trips(round_trip: RoundTrip, round_trips: int, repeats: int) -> list[float]:
    """Time ``repeats`` runs of ``round_trips`` round trips; return the mean microseconds of each run."""
    round_trip(round_trips // 10 or 1)  # warm up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        round_trip(round_trips)
        samples.append((time.perf_counter() - start) * 1e6 / round_trips)
    return samples


def queue_floor() -> tuple[RoundTrip, Teardown]:
    """A ping-pong between this thread and an echo thread over two ``SimpleQueue`` objects."""
    to_echo: queue.SimpleQueue[Any] = queue.SimpleQueue()
    back: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def echo_thread() -> None:
        """Echo every value until None."""
        while (msg := to_echo.get()) is not None:
            back.put(msg)

    threading.Thread(target=echo_thread, daemon=True).start()

    def round_trip(n: int) -> None:
        """Make ``n`` round trips."""
        for i in range(n):
            to_echo.put(i)
            back.get()

    return round_trip, lambda: to_echo.put(None)


def pong() -> None:
    """A process body: answer every ``(from, x)`` with ``('pong', x)`` until ``'stop'``."""
    while (msg := erlang.receive()) != "stop":
        erlang.send(msg[0], ("pong", msg[1]))


def erlang_ping(selective: bool) -> tuple[RoundTrip, Teardown]:
    """A ping-pong between this process and a :func:`pong` process."""
    pid = erlang.spawn(pong)
    me = erlang.self()

    def round_trip(n: int) -> None:
        """Make ``n`` round trips."""
        for i in range(n):
            erlang.send(pid, (me, i))
            if selective:
                erlang.receive(lambda m: m[0] == "pong" and m[1] == i)
            else:
                erlang.receive()

    return round_trip, lambda: erlang.send(pid, "stop")


class EchoServer:
    """A gen_server callback module that answers every call with the request."""

    def init(self, args: Any) -> Any:
        """No state."""
        return ("ok", args)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        """Answer at once with the request."""
        return ("reply", request, state)


def gen_server_call() -> tuple[RoundTrip, Teardown]:
    """``gen_server.call`` round trips to an :class:`EchoServer`."""
    _ok, pid = gen_server.start(None, EchoServer(), None)

    def round_trip(n: int) -> None:
        """Make ``n`` calls."""
        for i in range(n):
            gen_server.call(pid, i)

    return round_trip, lambda: gen_server.stop(pid)


LOCAL_CASES: list[tuple[str, str, Callable[[], tuple[RoundTrip, Teardown]]]] = [
    ("rt.local.floor", "SimpleQueue thread hand-off (floor)", queue_floor),
    ("rt.local.send", "erlang send + receive()", lambda: erlang_ping(selective=False)),
    ("rt.local.selective", "erlang send + selective receive", lambda: erlang_ping(selective=True)),
    ("rt.local.call", "gen_server.call", gen_server_call),
]


def local_round_trips(round_trips: int, repeats: int, progress: Progress | None = None) -> list[Figure]:
    """Measure the local round trips of :data:`LOCAL_CASES`; the first is every other's floor."""
    figures = []
    for fid, label, setup in LOCAL_CASES:
        if progress:
            progress.step(f"round trips: {label}")
        round_trip, teardown = setup()
        try:
            runs = run_round_trips(round_trip, round_trips, repeats)
        finally:
            teardown()
        floor = None if fid == "rt.local.floor" else "rt.local.floor"
        figures.append(Figure(fid, "roundtrip", label, "local", "us", runs, floor=floor))
    return figures


# -- Between two nodes --------------------------------------------------------------------------


def echo() -> None:
    """Echo ``(from, n)`` back to ``from`` as ``n`` until ``'stop'``."""
    while True:
        msg = erlang.receive()
        if msg == "stop":
            return
        erlang.send(msg[0], msg[1])


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def start_raw_echo() -> int:
    """Start a framed TCP echo server thread on this node; return its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        """Echo frames on one accepted connection until it closes."""
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                (size,) = _HEADER.unpack(_recv_exact(conn, 4))
                conn.sendall(_HEADER.pack(size) + _recv_exact(conn, size))
        except (ConnectionError, OSError):
            conn.close()
            listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])


def dist_round_trips(echo_pid: Pid, count: int) -> list[float]:
    """Time ``count`` round trips to a remote :func:`echo`; return microseconds each."""
    me = erlang.self()
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        erlang.send(echo_pid, (me, i))
        erlang.receive()
        times.append((time.perf_counter() - t0) * 1e6)
    return times


def raw_round_trips(sock: socket.socket, count: int) -> list[float]:
    """Time ``count`` raw framed TCP round trips; return microseconds each."""
    times = []
    payload = b"\x80\x05K\x01."  # the size of a tiny pickle
    frame = _HEADER.pack(len(payload)) + payload
    for _ in range(count):
        t0 = time.perf_counter()
        sock.sendall(frame)
        (size,) = _HEADER.unpack(_recv_exact(sock, 4))
        _recv_exact(sock, size)
        times.append((time.perf_counter() - t0) * 1e6)
    return times


def remote_round_trips(cluster: Any, node: str, round_trips: int, rounds: int) -> list[Figure]:
    """Measure round trips with ``node`` through the distribution and over a raw socket, alternating.

    Both echo in ``node``'s OS process; the raw one is a thread on a plain
    TCP socket (TCP_NODELAY) with the distribution's framing. Per round, the
    median round trip of each; the figure is the median of the rounds.
    """
    echo_pid = cluster.spawn(node, echo)
    port = cluster.rpc(node, start_raw_echo)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        dist_round_trips(echo_pid, 200)  # warm up both paths
        raw_round_trips(sock, 200)
        dist_runs: list[float] = []
        raw_runs: list[float] = []
        dist_all: list[float] = []
        for _ in range(rounds):
            d = dist_round_trips(echo_pid, round_trips)
            r = raw_round_trips(sock, round_trips)
            dist_runs.append(statistics.median(d))
            raw_runs.append(statistics.median(r))
            dist_all += d
    finally:
        sock.close()
        erlang.send(echo_pid, "stop")
    return [
        Figure("rt.remote.floor", "roundtrip", "raw TCP, same framing (floor)", "2 nodes", "us", raw_runs),
        Figure(
            "rt.remote.dist",
            "roundtrip",
            "erlang send + receive()",
            "2 nodes",
            "us",
            dist_runs,
            p99=percentile(dist_all, 99),
            floor="rt.remote.floor",
        ),
    ]
