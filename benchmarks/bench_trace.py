"""Benchmark: what the message tracer's hook costs on the message path, off and on.

``repg2.erlang._deliver`` tests ``_trace_hook is not None`` once per
delivered message: that is all tracing costs while it is off. This script
times a local ``send`` + ``receive`` round on one process in three states,
interleaved so that drift on a shared machine hits all three alike:

- **off**: no tracer (the normal state);
- **on, not traced**: a tracer is running but watches other processes (the
  hook runs and decides to keep nothing);
- **on, traced**: the process itself is traced (every message is recorded).

Run from the repository root::

    python benchmarks/bench_trace.py            # 31 rounds of 20 000 messages per state
    python benchmarks/bench_trace.py --quick    # 11 rounds of 5 000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repg2 import erlang  # noqa: E402 - after the path set-up above
from repg2.tools import trace


def round_trip_ns(messages: int) -> float:
    """Send ``messages`` messages to oneself and take each back; return ns per send + receive."""
    me = erlang.self()
    send, receive = erlang.send, erlang.receive
    start = time.perf_counter()
    for i in range(messages):
        send(me, i)
        receive()
    return (time.perf_counter() - start) / messages * 1e9


def main(argv: list[str] | None = None) -> int:
    """Time the three states, interleaved, and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds")
    args = parser.parse_args(argv)
    rounds, messages = (11, 5_000) if args.quick else (31, 20_000)
    me = erlang.self()
    states = {
        "off": None,
        "on, not traced": lambda: trace.Tracer(None, ["nobody_registered_this"], limit=10),
        "on, traced": lambda: trace.Tracer(None, [me], limit=10),  # keeps 10 events, counts the rest
    }
    samples: dict[str, list[float]] = {name: [] for name in states}
    round_trip_ns(messages)  # warm up
    for i in range(rounds):
        order = list(states) if i % 2 == 0 else list(reversed(states))
        for name in order:
            make = states[name]
            tracer = make().start() if make is not None else None
            try:
                samples[name].append(round_trip_ns(messages))
            finally:
                if tracer is not None:
                    tracer.stop(settle=0)
            assert erlang._trace_hook is None
    base = statistics.median(samples["off"])
    print(f"local send + receive on one process, ns per message ({rounds} rounds of {messages:,})")
    print(f"{'state':<16} {'median':>8} {'min':>8} {'vs off':>8}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<16} {median:>8.0f} {min(values):>8.0f} {median / base - 1:>+8.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
