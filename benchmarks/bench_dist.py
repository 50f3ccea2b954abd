"""Benchmark: a remote message round trip between two nodes, beside raw TCP with the same framing.

A process on node ``a`` (this process) sends ``(self(), n)`` to an echo
process on node ``b`` (a child OS process) and waits for ``n`` back: two
``erlang.send`` calls across the distribution, each pickled, framed (4-byte
length), written under the connection's writer lock, read by the peer's
reader thread and put in a mailbox. Beside it, in the same run and between
the same two OS processes, a raw round trip: a plain TCP socket pair
(TCP_NODELAY) with the same 4-byte framing and a tiny payload, echoed by a
thread in node ``b``. The ratio is the price of the runtime (pickle, locks,
mailboxes, thread hand-offs) over the carrier.

Run from the repository root::

    python benchmarks/bench_dist.py            # 5 rounds of 2000 round trips
    python benchmarks/bench_dist.py --quick    # 3 rounds of 500
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repg2 import erlang  # noqa: E402 - after the path set-up above
from repg2.cluster import Cluster  # noqa: E402

_HEADER = struct.Struct(">I")


def echo() -> None:
    """Echo ``(from, n)`` back to ``from`` as ``n`` until ``'stop'``.

    Erlang: none (benchmark echo process)
    """
    while True:
        msg = erlang.receive()
        if msg == "stop":
            return
        erlang.send(msg[0], msg[1])


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes.

    Erlang: none (benchmark helper)
    """
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def start_raw_echo() -> int:
    """Start a framed TCP echo server thread on this node; return its port.

    Erlang: none (benchmark baseline)
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        """Echo frames on one accepted connection until it closes.

        Erlang: none (benchmark baseline)
        """
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


def dist_round_trips(echo_pid: erlang.Pid, count: int) -> list[float]:
    """Time ``count`` distributed round trips; return seconds each.

    Erlang: none (benchmark)
    """
    me = erlang.self()
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        erlang.send(echo_pid, (me, i))
        erlang.receive()
        times.append(time.perf_counter() - t0)
    return times


def raw_round_trips(sock: socket.socket, count: int) -> list[float]:
    """Time ``count`` raw framed TCP round trips; return seconds each.

    Erlang: none (benchmark baseline)
    """
    times = []
    payload = b"\x80\x05K\x01."  # the size of a tiny pickle
    frame = _HEADER.pack(len(payload)) + payload
    for _ in range(count):
        t0 = time.perf_counter()
        sock.sendall(frame)
        (size,) = _HEADER.unpack(_recv_exact(sock, 4))
        _recv_exact(sock, size)
        times.append(time.perf_counter() - t0)
    return times


def describe(name: str, samples: list[float]) -> tuple[str, float]:
    """Format median and min-max of per-round medians, in microseconds.

    Erlang: none (benchmark report)
    """
    med = statistics.median(samples)
    return (
        f"{name:<28} median {med * 1e6:8.1f} us   min-max {min(samples) * 1e6:7.1f}-{max(samples) * 1e6:7.1f} us",
        med,
    )


def main() -> None:
    """Run both round trips in alternating rounds and print the figures.

    Erlang: none (benchmark)
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, count = (3, 500) if args.quick else (5, 2000)
    with Cluster(2) as cluster:
        _a, b = cluster.nodes
        echo_pid = cluster.spawn(b, echo)
        port = cluster.rpc(b, start_raw_echo)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        dist_round_trips(echo_pid, 200)  # warm up both paths
        raw_round_trips(sock, 200)
        dist_medians: list[float] = []
        raw_medians: list[float] = []
        dist_all: list[float] = []
        raw_all: list[float] = []
        for _ in range(rounds):
            d = dist_round_trips(echo_pid, count)
            r = raw_round_trips(sock, count)
            dist_medians.append(statistics.median(d))
            raw_medians.append(statistics.median(r))
            dist_all += d
            raw_all += r
        sock.close()
        erlang.send(echo_pid, "stop")
    print(f"round trip a <-> b, {rounds} rounds x {count} (per-round medians; min-max over all samples)")
    line_d, med_d = describe("repg2 distribution", dist_medians)
    line_r, med_r = describe("raw TCP, same framing", raw_medians)
    print(line_d + f"   (all samples {min(dist_all) * 1e6:.1f}-{max(dist_all) * 1e6:.1f} us)")
    print(line_r + f"   (all samples {min(raw_all) * 1e6:.1f}-{max(raw_all) * 1e6:.1f} us)")
    print(f"ratio distribution / raw: {med_d / med_r:.1f}x")


if __name__ == "__main__":
    main()
