"""Benchmark: message round trips between local processes, against a plain-thread floor.

An Erlang process here is a thread with a mailbox (``repg2.erlang``), so a
message round trip between two processes cannot be faster than handing a
value to another thread and back. This script measures, in one run:

- the floor: a ``queue.SimpleQueue`` ping-pong between two plain threads;
- ``erlang.send`` / ``erlang.receive`` ping-pong between two processes, with
  a plain receive (take the next message) and a selective one (a predicate
  that checks the reply's tag, as ``gen_server:call`` does);
- ``gen_server.call`` to a server that replies at once (monitor, send,
  selective receive, demonitor: the full OTP call protocol).

Each is run ``repeats`` times; a run is ``round_trips`` round trips and gives
the mean time of one round trip. The table shows the median over the runs,
the min-max range, and the median's ratio to the floor's median.

Run from the repository root::

    python benchmarks/bench_local.py            # 7 runs of 5,000 round trips
    python benchmarks/bench_local.py --quick    # 3 runs of 1,000
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repg2 import erlang, gen_server  # noqa: E402 - after the path set-up above


def run(round_trip: Callable[[int], None], round_trips: int, repeats: int) -> list[float]:
    """Time ``repeats`` runs of ``round_trips`` calls; return the mean microseconds per round trip of each.

    Erlang: none (benchmark timing)
    """
    round_trip(round_trips // 10 or 1)  # warm up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        round_trip(round_trips)
        samples.append((time.perf_counter() - start) * 1e6 / round_trips)
    return samples


# == The floor: two plain threads and two queues ====================================


def queue_floor() -> tuple[Callable[[int], None], Callable[[], None]]:
    """A ping-pong between this thread and an echo thread over two ``SimpleQueue``s.

    Erlang: none (the floor every process round trip stands on)
    """
    to_echo: queue.SimpleQueue[Any] = queue.SimpleQueue()
    back: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def echo() -> None:
        while (msg := to_echo.get()) is not None:
            back.put(msg)

    threading.Thread(target=echo, daemon=True).start()

    def round_trip(n: int) -> None:
        for i in range(n):
            to_echo.put(i)
            back.get()

    return round_trip, lambda: to_echo.put(None)


# == Erlang processes ================================================================


def pong() -> None:
    """A process body: answer every ``(from, x)`` with ``('pong', x)`` until ``'stop'``.

    Erlang: none (benchmark process)
    """
    while (msg := erlang.receive()) != "stop":
        erlang.send(msg[0], ("pong", msg[1]))


def erlang_ping(selective: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A ping-pong between this process and a :func:`pong` process.

    Erlang: none (benchmark: Pid ! {self(), I}, receive {pong, I} -> ok end)
    """
    pid = erlang.spawn(pong)
    me = erlang.self()

    def round_trip(n: int) -> None:
        for i in range(n):
            erlang.send(pid, (me, i))
            if selective:
                erlang.receive(lambda m, i=i: m[0] == "pong" and m[1] == i)
            else:
                erlang.receive()

    return round_trip, lambda: erlang.send(pid, "stop")


class Echo:
    """A gen_server callback module that answers every call with the request.

    Erlang: none (benchmark server)
    """

    def init(self, args: Any) -> Any:
        return ("ok", args)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return ("reply", request, state)


def gen_server_call() -> tuple[Callable[[int], None], Callable[[], None]]:
    """``gen_server.call`` round trips to an :class:`Echo` server.

    Erlang: none (benchmark: gen_server:call(Pid, I))
    """
    _ok, pid = gen_server.start(None, Echo(), None)

    def round_trip(n: int) -> None:
        for i in range(n):
            gen_server.call(pid, i)

    return round_trip, lambda: gen_server.stop(pid)


def main(argv: list[str] | None = None) -> int:
    """Measure each round trip, print a table with ratios to the queue floor.

    Erlang: none (benchmark entry point)
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs of 1,000 round trips")
    args = parser.parse_args(argv)
    round_trips, repeats = (1_000, 3) if args.quick else (5_000, 7)

    cases = [
        ("SimpleQueue thread hand-off (floor)", queue_floor),
        ("erlang send + receive()", lambda: erlang_ping(selective=False)),
        ("erlang send + selective receive", lambda: erlang_ping(selective=True)),
        ("gen_server.call", gen_server_call),
    ]
    results = []
    for label, setup in cases:
        round_trip, teardown = setup()
        try:
            results.append((label, run(round_trip, round_trips, repeats)))
        finally:
            teardown()

    floor = statistics.median(results[0][1])
    print(f"Local round trips, {repeats} runs of {round_trips:,} (microseconds per round trip)")
    print(f"{'operation':<36} | {'median':>8} | {'min-max':>15} | {'x floor':>7}")
    print("-" * 76)
    for label, samples in results:
        median = statistics.median(samples)
        spread = f"{min(samples):.1f}-{max(samples):.1f}"
        print(f"{label:<36} | {median:8.1f} | {spread:>15} | {median / floor:7.2f}")
    print("-" * 76)
    print(f"Python {sys.version.split()[0]}, {threading.active_count()} threads alive at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
