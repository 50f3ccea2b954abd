"""``python -m repg2 bench``: pg2's performance characteristics, each beside its floor.

There is no Erlang original: this is the measuring bench of the project, the
Python counterpart of timing pg2 with ``timer:tc/1`` on a real cluster. It
makes visible what pg2 promises and what this translation keeps of it:

1. **Reads are local and flat.** ``get_members`` and ``get_local_members``
   of a 10-member group while ``pg2_table`` holds 1k, 10k and 100k other
   rows: one ordered_set range scan, so the time should not grow with the
   table. Beside them, an ``ets.match`` whose key is unbound (a full scan)
   shows what a read would cost without the range scan.
2. **Writes are global.** ``join`` + ``leave``, ``create`` of a new group and
   ``global_.trans`` with an empty fun, on 1, 2, 3 and 5 nodes (median and
   p99): each write takes a lock on every node, calls every node's pg2
   server and releases the lock, three ``multi_call`` rounds; a bare
   ``multi_call`` of a trivial server is measured beside them as their floor.
3. **Throughput and contention.** join+leave pairs per second with 1 client
   and with 4 clients, on distinct groups and on one shared group, on 1 and
   3 nodes. On one group the clients collide on ``global``'s lock and back
   off for random, doubling times: the figure collapses, as in Erlang.
4. **Heals cost one exchange.** The time from reconnecting a partition of a
   3-node cluster until every node lists every membership made on the other
   side, for 100 and 1,000 memberships.
5. **Messages.** A round trip between two local processes beside a plain
   thread hand-off (``queue.SimpleQueue``), and between two nodes beside a
   plain framed TCP round trip between the same two OS processes.

Each figure is the median of repeated runs with their min-max range, and a
ratio to its floor measured *in the same run*, so the ratios survive a
slower or busier machine better than the absolute figures do. The reference
figures of real Erlang pg2 (``repg2/tools/data/erlang_pg2_reference.json``) stand
beside ours, with the ratio. The targets of issue 10 are checked at the end.

How it runs: one process is node ``bench_a``; the cluster starts with the
most nodes needed and *shrinks* (``Cluster.stop``) between stages, so nodes
start once. Everything else (members, clients, watchers, echo servers) runs
in processes of this module, which the other nodes import by name.

Timing notes: wall-clock time (``time.perf_counter``) of the caller; a heal
is timed across nodes with ``time.monotonic``, which is the system-wide
``CLOCK_MONOTONIC`` on Linux. Load from other programs inflates every
figure, floors included: read ``meta.load`` in the JSON. ``--quick`` runs
fewer sizes and repetitions (for CI); its figures are rougher.

The scripts in ``benchmarks/`` are thin wrappers over the functions here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from repg2 import dist, erlang, ets, gen_server, global_, kernel, net_kernel, pg2, terms
from repg2.erlang import Pid
from repg2.testing import member_loop

__all__ = ["FULL", "QUICK", "Config", "Figure", "main", "run"]

REFERENCE_FILE = Path(__file__).resolve().parent.parent / "data" / "erlang_pg2_reference.json"
GROUP_SIZE = 10  # members of the group whose reads are timed, as in the reference figures
ECHO = "bench_echo"  # a trivial gen_server on every node: the bare multi_call floor of a write
PREFIX = "bench_"  # node names bench_a@..., so a bench never takes a test's or a demo's names
_HEADER = struct.Struct(">I")  # the distribution's 4-byte frame length, reused by the raw floor


@dataclass(frozen=True)
class Config:
    """How much to measure: sizes, node counts, repetitions, durations."""

    name: str
    read_sizes: tuple[int, ...]  # other rows in pg2_table
    read_runs: int  # runs per read figure
    read_calls: int  # calls per run
    node_counts: tuple[int, ...]  # cluster sizes for writes, largest first (the cluster shrinks)
    write_ops: int  # operations per write figure, split into write_runs runs
    write_runs: int
    tp_nodes: tuple[int, ...]  # cluster sizes for throughput (and 3 for the heal)
    tp_seconds: float  # length of one throughput run
    tp_runs: int
    heal_counts: tuple[int, ...]  # memberships made on one side of the partition
    heal_repeats: int
    local_round_trips: int  # per run
    local_runs: int
    remote_round_trips: int  # per run
    remote_runs: int


FULL = Config(
    name="full",
    read_sizes=(1_000, 10_000, 100_000),
    read_runs=7,
    read_calls=500,
    node_counts=(5, 3, 2, 1),
    write_ops=200,
    write_runs=5,
    tp_nodes=(3, 1),
    tp_seconds=1.5,
    tp_runs=3,
    heal_counts=(100, 1_000),
    heal_repeats=5,
    local_round_trips=3_000,
    local_runs=7,
    remote_round_trips=2_000,
    remote_runs=5,
)

QUICK = Config(
    name="quick",
    read_sizes=(1_000, 10_000),
    read_runs=3,
    read_calls=200,
    node_counts=(3, 1),
    write_ops=30,
    write_runs=3,
    tp_nodes=(3, 1),
    tp_seconds=0.5,
    tp_runs=1,
    heal_counts=(100,),
    heal_repeats=2,
    local_round_trips=500,
    local_runs=3,
    remote_round_trips=300,
    remote_runs=3,
)


# == Figures and timing ==================================================================


@dataclass
class Figure:
    """One measured figure: a value per repeated run, and how it compares.

    ``runs`` holds one value per run (a median latency, a rate...); the
    figure is their median, with their min-max. ``floor`` names the figure
    (by ``id``) this one is divided by; ``erlang`` is the reference value of
    real Erlang pg2 in the same unit, if there is one.
    """

    id: str
    section: str
    name: str
    where: str
    unit: str
    runs: list[float]
    p99: float | None = None
    floor: str | None = None
    erlang: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        """The median of the runs (NaN if none succeeded)."""
        good = [r for r in self.runs if r == r]
        return statistics.median(good) if good else float("nan")

    def as_json(self) -> dict[str, Any]:
        """Return the figure as a JSON object, with median, min and max."""
        good = [r for r in self.runs if r == r]
        data = asdict(self)
        data.update(median=self.median, min=min(good, default=None), max=max(good, default=None))
        return data


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0..100) of ``values``, by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def timed(fun: Callable[[], Any], repetitions: int) -> list[float]:
    """Run ``fun`` once to warm up, then ``repetitions`` times; return each call's microseconds."""
    fun()
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        fun()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def per_call(fun: Callable[[], Any], calls: int) -> float:
    """Return the mean microseconds per call of ``fun`` over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fun()
    return (time.perf_counter() - start) * 1e6 / calls


def latency_figure(fid: str, section: str, name: str, where: str, samples: list[float], runs: int, **kw: Any) -> Figure:
    """Make a latency figure in microseconds: the samples in ``runs`` chunks, a median each; p99 of all."""
    size = max(1, len(samples) // runs)
    chunks = [samples[i : i + size] for i in range(0, size * runs, size)]
    return Figure(
        fid, section, name, where, "us", [statistics.median(c) for c in chunks if c], p99=percentile(samples, 99), **kw
    )


def load_reference() -> dict[str, Any]:
    """Read the reference figures of real Erlang pg2 shipped with the package."""
    data: dict[str, Any] = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    return data


class Progress:
    """A one-line progress display on stderr: step n of N, elapsed time, what runs now.

    On a terminal the line is rewritten in place; otherwise (CI, a pipe) each
    step is one line, so a log shows where a slow run spent its time.
    """

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()

    def step(self, what: str) -> None:
        """Announce the next step."""
        self.done += 1
        if not self.enabled:
            return
        line = f"[{self.done:>2}/{self.total}] {time.monotonic() - self.start:6.1f} s  {what}"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line[:150])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def finish(self) -> None:
        """End the display with the total time."""
        if self.enabled:
            end = "\r\x1b[2K" if self.tty else ""
            sys.stderr.write(f"{end}done: {self.done} steps in {time.monotonic() - self.start:.1f} s\n")
            sys.stderr.flush()


def steps_of(cfg: Config, sections: Iterable[str]) -> int:
    """Count the progress steps of a run, so the display can say "n of N"."""
    wanted = set(sections)
    n = 0
    if "roundtrip" in wanted:
        n += 4 + 1  # four local cases, then the remote one
    if "reads" in wanted:
        n += len(cfg.read_sizes)
    if wanted & {"writes", "throughput", "heal", "roundtrip"}:
        n += 1  # start the cluster
        n += len(cfg.node_counts) if "writes" in wanted else 0
        n += 3 * len(cfg.tp_nodes) if "throughput" in wanted else 0
        n += len(cfg.heal_counts) if "heal" in wanted else 0
    return n


# == 5. Message round trips: the floors ======================================================
# (Run first, on a quiet node that is not yet distributed.)


def run_round_trips(round_trip: Callable[[int], None], round_trips: int, repeats: int) -> list[float]:
    """Time ``repeats`` runs of ``round_trips`` round trips; return the mean microseconds of each run."""
    round_trip(round_trips // 10 or 1)  # warm up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        round_trip(round_trips)
        samples.append((time.perf_counter() - start) * 1e6 / round_trips)
    return samples


def queue_floor() -> tuple[Callable[[int], None], Callable[[], None]]:
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


def erlang_ping(selective: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A ping-pong between this process and a :func:`pong` process."""
    pid = erlang.spawn(pong)
    me = erlang.self()

    def round_trip(n: int) -> None:
        """Make ``n`` round trips."""
        for i in range(n):
            erlang.send(pid, (me, i))
            if selective:
                erlang.receive(lambda m, i=i: m[0] == "pong" and m[1] == i)
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


def gen_server_call() -> tuple[Callable[[int], None], Callable[[], None]]:
    """``gen_server.call`` round trips to an :class:`EchoServer`."""
    _ok, pid = gen_server.start(None, EchoServer(), None)

    def round_trip(n: int) -> None:
        """Make ``n`` calls."""
        for i in range(n):
            gen_server.call(pid, i)

    return round_trip, lambda: gen_server.stop(pid)


LOCAL_CASES: list[tuple[str, str, Callable[[], tuple[Callable[[int], None], Callable[[], None]]]]] = [
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


# == 1. Reads ==================================================================================


def ets_table(other_rows: int) -> Any:
    """Make a pg2-shaped ordered_set: ``other_rows`` rows of other groups plus one 10-member group."""
    tab = ets.new("bench", ["ordered_set", "protected"])
    groups = max(1, other_rows // 10)
    ets.insert(tab, [(("member", f"other{i % groups}", Pid("x@h", i, 1)), 1) for i in range(other_rows)])
    ets.insert(tab, [(("member", "g", Pid("a@h", i, 1)), 1) for i in range(GROUP_SIZE)])
    return tab


def ets_prefix_scan(sizes: Iterable[int], reps: int, full_reps: int) -> list[tuple[int, list[float], list[float]]]:
    """Time pg2's member match (a prefix range scan) and a full-scan match per table size.

    Returns:
        ``(size, prefix samples, full-scan samples)`` per size, microseconds.
    """
    prefix_pattern = (("member", "g", "$1"), "$2")  # pg2:group_members/1
    full_pattern = ("_", "$1")  # an unbound key: every row is examined
    rows = []
    for size in sizes:
        tab = ets_table(size)
        assert len(ets.match(tab, prefix_pattern)) == GROUP_SIZE
        prefix = timed(lambda tab=tab: ets.match(tab, prefix_pattern), reps)
        full = timed(lambda tab=tab: ets.match(tab, full_pattern), full_reps)
        rows.append((size, prefix, full))
        ets.delete(tab)
    return rows


def fill_table(groups: range, owner: Pid) -> None:
    """Add one-member groups ``('other', i)`` to pg2_table through one exchange, and wait for it.

    Each group adds four rows (group, member, local_member, pid); the member
    is one live process, so its ref rows are shared. The exchange is how
    another node's groups arrive, so the rows are exactly pg2's.
    """
    gen_server.cast(pg2.SERVER, ("exchange", erlang.node(), [[("other", i), [owner]] for i in groups]))
    gen_server.get_state(pg2.SERVER, "infinity")  # a call: the cast before it has been handled


def bench_reads(cfg: Config, reference: dict[str, Any], progress: Progress) -> list[Figure]:
    """Time get_members and get_local_members of a 10-member group as the table grows.

    The table grows in place (1k, then 10k, then 100k other rows) through
    exchanges. Beside each size, ``ets.match`` with an unbound key: the full
    scan a read would be without the ordered_set.
    """
    from repg2.testing import stop_pg2

    stop_pg2()
    pg2.start()
    pg2.create("g")
    members = [erlang.spawn(member_loop) for _ in range(GROUP_SIZE)]
    for pid in members:
        pg2.join("g", pid)
    owner = erlang.spawn(member_loop)
    figures = []
    have = 0
    try:
        for size in cfg.read_sizes:
            progress.step(f"reads: get_members with {size:,} other rows")
            fill_table(range(have // 4, size // 4), owner)
            have = size
            rows = ets.info(pg2.TABLE, "size")
            assert len(pg2.get_members("g")) == GROUP_SIZE and len(pg2.get_local_members("g")) == GROUP_SIZE
            calls = cfg.read_calls
            gm = [per_call(lambda: pg2.get_members("g"), calls) for _ in range(cfg.read_runs)]
            glm = [per_call(lambda: pg2.get_local_members("g"), calls) for _ in range(cfg.read_runs)]
            scan = [per_call(lambda: ets.match(pg2.TABLE, ("_", "$1")), 1) for _ in range(3)]
            where = f"{size // 1000}k rows"
            extra = {"other_rows": size, "table_rows": rows}
            ref = reference["get_members_us"].get(str(size))
            figures += [
                Figure(
                    f"reads.get_members.{size}",
                    "reads",
                    "get_members (10 members)",
                    where,
                    "us",
                    gm,
                    erlang=ref,
                    extra=extra,
                ),
                Figure(
                    f"reads.get_local_members.{size}",
                    "reads",
                    "get_local_members (10 members)",
                    where,
                    "us",
                    glm,
                    extra=extra,
                ),
                Figure(
                    f"reads.full_scan.{size}",
                    "reads",
                    "ets.match, unbound key (full scan)",
                    where,
                    "us",
                    scan,
                    extra=extra,
                    note="what a read would cost without the range scan",
                ),
            ]
    finally:
        for pid in [*members, owner]:
            erlang.exit(pid, "kill")
        stop_pg2()
    return figures


# == 2. Writes =================================================================================


class TrivialServer:
    """A gen_server that answers every call with ``'pong'``."""

    def init(self, args: Any) -> Any:
        """No state."""
        return ("ok", None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        """Answer at once."""
        return ("reply", "pong", state)


_count_lock = threading.Lock()  # guards _sleeps: clients on one node back off in parallel
_sleeps = 0  # global's back-off sleeps taken on this node since take_sleeps()
_scale = 1.0  # 1.0: global's back-off as it is; 50.0: fifty times shorter


def counting_sleep(seconds: float) -> None:
    """global's back-off sleep, counted, and divided by the current scale."""
    global _sleeps
    with _count_lock:
        _sleeps += 1
    erlang.sleep(seconds / _scale)


def setup(scale: float = 1.0) -> str:
    """Start global, pg2 and the trivial server on this node; count (and scale) global's back-off sleeps."""
    global _scale
    kernel.boot()  # global_name_server and rex
    pg2.start()
    if erlang.whereis(ECHO) == "undefined":
        gen_server.start(("local", ECHO), TrivialServer(), [])
    _scale = scale
    global_.set_random_sleep(counting_sleep)
    return erlang.node()


def take_sleeps() -> int:
    """Return how many back-off sleeps this node's processes took since the last call, and reset."""
    global _sleeps
    with _count_lock:
        count, _sleeps = _sleeps, 0
    return count


def one_trans(nodes: list[str], resource: Any) -> Any:
    """One pg2-shaped write: global:trans around a multi_call of the trivial server on ``nodes``."""
    return global_.trans((resource, erlang.self()), lambda: gen_server.multi_call(nodes, ECHO, "ping"), nodes)


def trans_client(parent: Pid, nodes: list[str], resource: Any, seconds: float, start_at: float) -> None:
    """Wait for ``start_at`` (wall clock), run :func:`one_trans` in a loop for ``seconds``, report the count."""
    erlang.sleep(max(0.0, start_at - time.time()))
    deadline = time.monotonic() + seconds
    done = 0
    while done == 0 or time.monotonic() < deadline:
        one_trans(nodes, resource)
        done += 1
    erlang.send(parent, ("done", erlang.self(), done))


def write_latencies(n_nodes: int, cfg: Config, reference: dict[str, Any]) -> list[Figure]:
    """Time join, leave, join+leave, create, trans and a bare multi_call from this node, on the current cluster.

    Assumes :func:`setup` ran on every node. Each operation is timed one by
    one, ``cfg.write_ops`` times, after a few warm-up calls.
    """
    ops, runs = cfg.write_ops, cfg.write_runs
    member = erlang.spawn(member_loop)
    where = f"{n_nodes} node{'s' if n_nodes > 1 else ''}"
    key = str(n_nodes)
    try:
        pg2.create("bench_w")
        joins, leaves, pairs = [], [], []
        for i in range(ops + 5):
            t0 = time.perf_counter()
            pg2.join("bench_w", member)
            t1 = time.perf_counter()
            pg2.leave("bench_w", member)
            t2 = time.perf_counter()
            if i >= 5:
                joins.append((t1 - t0) * 1e6)
                leaves.append((t2 - t1) * 1e6)
                pairs.append((t2 - t0) * 1e6)
        serial = iter(range(10**9))
        creates = timed(lambda: pg2.create(("bench_new", n_nodes, next(serial))), ops)
        lock_id = (("bench", "trans"), erlang.self())
        transes = timed(lambda: global_.trans(lock_id, lambda: None), ops)
        nodes = [erlang.node(), *erlang.nodes()]
        bare = timed(lambda: gen_server.multi_call(nodes, ECHO, "ping"), ops)
    finally:
        erlang.exit(member, "kill")
    join_ref = reference["join_us"].get(key)
    floor = f"writes.multi_call.{n_nodes}"
    extra = {"nodes": n_nodes}
    return [
        latency_figure(
            f"writes.join_leave.{n_nodes}",
            "writes",
            "join + leave",
            where,
            pairs,
            runs,
            floor=floor,
            erlang=None if join_ref is None else 2 * join_ref,
            extra=extra,
            note="Erlang: twice its pg2:join/2 (no leave figure in the reference)",
        ),
        latency_figure(
            f"writes.join.{n_nodes}", "writes", "join", where, joins, runs, floor=floor, erlang=join_ref, extra=extra
        ),
        latency_figure(f"writes.leave.{n_nodes}", "writes", "leave", where, leaves, runs, floor=floor, extra=extra),
        latency_figure(
            f"writes.create.{n_nodes}",
            "writes",
            "create (new group)",
            where,
            creates,
            runs,
            floor=floor,
            erlang=reference["create_us"].get(key),
            extra=extra,
        ),
        latency_figure(
            f"writes.trans.{n_nodes}",
            "writes",
            "global_.trans (empty fun)",
            where,
            transes,
            runs,
            floor=floor,
            erlang=reference["trans_us"].get(key),
            extra=extra,
        ),
        latency_figure(floor, "writes", "multi_call of a trivial server (floor)", where, bare, runs, extra=extra),
    ]


# == 3. Throughput =============================================================================


def throughput_client(parent: Pid, group: Any, seconds: float, start_at: float) -> None:
    """From ``start_at`` (wall clock), join and leave ``group`` for ``seconds``; report the pairs done.

    A pair that ends after the deadline is finished (a lock must be
    released) but not counted.
    """
    erlang.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds
    me = erlang.self()
    done = 0
    while time.time() < deadline:
        pg2.join(group, me)
        pg2.leave(group, me)
        if time.time() <= deadline:
            done += 1
    erlang.send(parent, ("tp_done", me, done))


def throughput(cluster: Any, n_nodes: int, cfg: Config, reference: dict[str, Any], progress: Progress) -> list[Figure]:
    """Measure join+leave pairs per second: 1 client, 4 on distinct groups, 4 on one group.

    Clients are spread over the nodes (client i on node i mod n), all start
    at the same wall-clock time. Each configuration runs ``cfg.tp_runs``
    times for ``cfg.tp_seconds``.
    """
    nodes = cluster.live_nodes()[:n_nodes]
    fresh_pg2(cluster, nodes)
    me = erlang.self()
    where = f"{n_nodes} node{'s' if n_nodes > 1 else ''}"
    figures = []
    for label, clients, shared in [
        ("1 client", 1, False),
        ("4 clients, distinct groups", 4, False),
        ("4 clients, one group", 4, True),
    ]:
        progress.step(f"throughput: {label} on {where}")
        groups = [("bench_tp", n_nodes, 0 if shared else i) for i in range(clients)]
        for g in set(groups):
            pg2.create(g)
        runs, per_client, sleeps_per_op = [], [], []
        for _ in range(cfg.tp_runs):
            for node in nodes:
                cluster.rpc(node, take_sleeps)
            start_at = time.time() + 0.3
            pids = [
                cluster.spawn(nodes[i % len(nodes)], throughput_client, me, groups[i], cfg.tp_seconds, start_at)
                for i in range(clients)
            ]
            counts = []
            for pid in pids:
                msg = erlang.receive(
                    lambda m, pid=pid: isinstance(m, tuple) and m[:2] == ("tp_done", pid), timeout=cfg.tp_seconds + 60
                )
                counts.append(0 if msg is erlang.TIMEOUT else msg[2])
            total = sum(counts)
            sleeps = sum(cluster.rpc(node, take_sleeps) for node in nodes)
            runs.append(total / cfg.tp_seconds)
            per_client.append(counts)
            sleeps_per_op.append(sleeps / max(total, 1))
        fid = f"throughput.{clients}{'-shared' if shared else ''}.{n_nodes}"
        ref = reference["throughput_4_clients_distinct_ops_per_s"].get(str(n_nodes)) if clients == 4 else None
        figures.append(
            Figure(
                fid,
                "throughput",
                f"join+leave, {label}",
                where,
                "ops/s",
                runs,
                erlang=None if shared else ref,
                extra={
                    "nodes": n_nodes,
                    "clients": clients,
                    "shared": shared,
                    "per_client": per_client,
                    "backoff_sleeps_per_op": sleeps_per_op,
                },
            )
        )
    return figures


# == 4. Heal ===================================================================================


def heal_watcher(parent: Pid, group: Any, count: int, last: Pid) -> None:
    """Wait until this node lists ``count`` members of ``group``; report the monotonic time then.

    Polls for the member row of ``last`` (the exchange's last member, so
    every other one is in before it) every millisecond, then checks the
    whole count, so the poll itself costs the node little.
    """
    while True:
        if ets.member(pg2.TABLE, ("member", group, last)):
            found = pg2.get_members(group)
            if isinstance(found, list) and len(found) >= count:
                erlang.send(parent, ("healed", erlang.node(), time.monotonic()))
                return
        erlang.sleep(0.001)


def stop_pg2() -> str:
    """Stop this node's pg2 server (its table goes with it); the next pg2 call starts an empty one."""
    from repg2.testing import stop_pg2 as stop

    return stop()


def fresh_pg2(cluster: Any, nodes: list[str]) -> None:
    """Give ``nodes`` empty pg2 tables: stop every server first, then start them all again.

    Stopping all before starting any leaves no node whose exchange could
    refill the others, so the heal and throughput sections start without
    the hundreds of groups the write section created.
    """
    for node in nodes:
        cluster.rpc(node, stop_pg2)
    for node in nodes:
        cluster.rpc(node, pg2.start)


def count_members(group: Any) -> int:
    """Return how many members this node lists for ``group`` (-1 if it does not know it)."""
    found = pg2.get_members(group)
    return len(found) if isinstance(found, list) else -1


def heals(cluster: Any, cfg: Config, reference: dict[str, Any], progress: Progress) -> list[Figure]:
    """Time heals of a partition ``[a] | [b, c]`` after memberships were made on ``a``'s side.

    During the partition ``b`` and ``c`` drop ``a``'s members (their
    monitors fire ``'noconnection'``); ``a`` keeps them. The clock starts
    when ``a`` connects to ``b`` (the partition's deny lists are already
    lifted, untimed) and stops when the last of ``b`` and ``c`` lists every
    member: connection set-up, the ``nodeup`` exchange each way, and ``b``'s
    and ``c``'s servers storing (and monitoring) every member.
    """
    a, b, c = cluster.live_nodes()[:3]
    fresh_pg2(cluster, [a, b, c])
    group = "bench_heal"
    me = erlang.self()
    pg2.create(group)
    members: list[Pid] = []
    figures = []
    try:
        for count in cfg.heal_counts:
            progress.step(f"heal: 3 nodes, {count:,} memberships")
            cluster.partition([a], [b, c])
            while len(members) < count:
                pid = erlang.spawn(member_loop)
                pg2.join(group, pid)
                members.append(pid)
            last = max(members, key=terms.term_key)
            runs = []
            for attempt in range(cfg.heal_repeats):
                if attempt:
                    cluster.partition([a], [b, c])
                cluster.wait_for(
                    lambda: all(cluster.rpc(n, count_members, group) == 0 for n in (b, c)),
                    30.0,
                    "the members to leave b and c",
                )
                for node in (b, c):
                    cluster.spawn(node, heal_watcher, me, group, count, last)
                for node in (a, b, c):
                    cluster.rpc(node, dist.unblock)
                t0 = time.monotonic()
                net_kernel.connect_node(b)
                net_kernel.connect_node(c)
                seen = []
                for _ in (b, c):
                    msg = erlang.receive(lambda m: isinstance(m, tuple) and m[0] == "healed", timeout=60)
                    if msg is not erlang.TIMEOUT:
                        seen.append(msg[2])
                runs.append((max(seen) - t0) * 1e3 if len(seen) == 2 else float("nan"))
                cluster.wait_connected([a, b, c])
            figures.append(
                Figure(
                    f"heal.{count}",
                    "heal",
                    "heal until every node agrees",
                    f"{count:,} memberships",
                    "ms",
                    runs,
                    erlang=reference["heal_ms"].get(str(count)),
                    extra={"nodes": 3, "memberships": count},
                )
            )
    finally:
        for pid in members:
            erlang.exit(pid, "kill")
    return figures


# == The run ===================================================================================

SECTIONS = ("roundtrip", "reads", "writes", "throughput", "heal")


def _shrink_to(cluster: Any, n_nodes: int) -> None:
    """Stop the newest live nodes until ``n_nodes`` run, and wait until this node has seen them go."""
    live = cluster.live_nodes()
    for node in reversed(live[n_nodes:]):
        cluster.stop(node)
    keep = set(live[1:n_nodes])
    cluster.wait_for(lambda: set(erlang.nodes()) == keep, 20.0, f"this node to see only {sorted(keep)}")


def run(cfg: Config, sections: Iterable[str] = SECTIONS, show_progress: bool = True) -> dict[str, Any]:
    """Run the chosen sections and return the report: meta, figures, targets, reference.

    Must run in a process that is not yet a distributed node: it becomes
    ``bench_a@127.0.0.1`` for the cluster sections.
    """
    from repg2.testing import Cluster

    wanted = [s for s in SECTIONS if s in set(sections)]
    reference = load_reference()
    progress = Progress(steps_of(cfg, wanted), show_progress)
    meta: dict[str, Any] = {
        "config": cfg.name,
        "sections": wanted,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_before": list(os.getloadavg()),
    }
    start = time.monotonic()
    figures: list[Figure] = []
    if "roundtrip" in wanted:
        figures += local_round_trips(cfg.local_round_trips, cfg.local_runs, progress)
    if "reads" in wanted:
        figures += bench_reads(cfg, reference, progress)
    if set(wanted) & {"writes", "throughput", "heal", "roundtrip"}:
        progress.step(f"starting a cluster of {cfg.node_counts[0]} nodes")
        remote_at = min(n for n in cfg.node_counts if n >= 2)
        with Cluster(cfg.node_counts[0], prefix=PREFIX) as cluster:
            for node in cluster.nodes:
                cluster.rpc(node, setup, 1.0)
            for n_nodes in cfg.node_counts:
                _shrink_to(cluster, n_nodes)
                if "writes" in wanted:
                    plural = "s" if n_nodes > 1 else ""
                    progress.step(f"writes on {n_nodes} node{plural}: join, leave, create, trans, multi_call")
                    figures += write_latencies(n_nodes, cfg, reference)
                if "roundtrip" in wanted and n_nodes == remote_at:
                    progress.step("round trips: two nodes, and raw TCP between them")
                    figures += remote_round_trips(cluster, cluster.nodes[1], cfg.remote_round_trips, cfg.remote_runs)
                if "heal" in wanted and n_nodes == 3:
                    figures += heals(cluster, cfg, reference, progress)
                if "throughput" in wanted and n_nodes in cfg.tp_nodes:
                    figures += throughput(cluster, n_nodes, cfg, reference, progress)
            for node in cluster.live_nodes():
                cluster.rpc(node, global_.set_random_sleep, None)
    progress.finish()
    # Report order: by section, then by operation (in the order first measured), then by size.
    section_rank = {s: i for i, s in enumerate(("reads", "writes", "throughput", "heal", "roundtrip"))}
    name_rank: dict[tuple[str, str], int] = {}
    for f in figures:
        name_rank.setdefault((f.section, f.name if f.section != "roundtrip" else f"{f.name} {f.where}"), len(name_rank))
    figures.sort(
        key=lambda f: (
            section_rank[f.section],
            name_rank[f.section, f.name if f.section != "roundtrip" else f"{f.name} {f.where}"],
            f.extra.get("nodes") or f.extra.get("other_rows") or f.extra.get("memberships") or 0,
        )
    )
    meta["seconds"] = round(time.monotonic() - start, 1)
    meta["load_after"] = list(os.getloadavg())
    report = {"meta": meta, "figures": [f.as_json() for f in figures], "reference": reference}
    report["targets"] = check_targets(report)
    return report


# == Targets, table, JSON, plots ================================================================


def _by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Index a report's figures by id."""
    return {f["id"]: f for f in report["figures"]}


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the targets of issue 10 against a report; a target whose figures are missing is skipped."""
    figs = _by_id(report)
    ref = report["reference"]
    out: list[dict[str, Any]] = []

    def target(tid: str, text: str, value: float, limit: float) -> None:
        """Record one target: met when ``value <= limit``."""
        out.append({"id": tid, "text": text, "value": value, "limit": limit, "met": bool(value <= limit)})

    def med(fid: str) -> float | None:
        """Return the median of a figure, or None if it was not measured."""
        f = figs.get(fid)
        return None if f is None else f["median"]

    sizes = sorted(
        int(f["id"].rsplit(".", 1)[1]) for f in report["figures"] if f["id"].startswith("reads.get_members.")
    )
    if len(sizes) >= 2:
        lo, hi = med(f"reads.get_members.{sizes[0]}"), med(f"reads.get_members.{sizes[-1]}")
        assert lo is not None and hi is not None
        target("reads_flat", f"get_members at {sizes[-1]:,} rows / at {sizes[0]:,} rows", hi / lo, 1.5)
        erl = ref["get_members_us"][str(sizes[-1])]
        target("reads_vs_erlang", f"get_members at {sizes[-1]:,} rows / Erlang's {erl} µs", hi / erl, 5.0)
    jl3 = med("writes.join_leave.3")
    if jl3 is not None:
        target(
            "writes_3_nodes", "join+leave on 3 nodes / Erlang's (2 x pg2:join/2)", jl3 / (2 * ref["join_us"]["3"]), 5.0
        )
    jl1, jl5 = med("writes.join_leave.1"), med("writes.join_leave.5")
    if jl1 is not None and jl5 is not None:
        ours, theirs = jl5 / jl1, ref["join_us"]["5"] / ref["join_us"]["1"]
        target("writes_growth", "growth 1 -> 5 nodes, ours / Erlang's", ours / theirs, 1.0)
    heal = med("heal.1000")
    if heal is not None:
        target("heal_1000", "heal with 1,000 memberships / Erlang's", heal / ref["heal_ms"]["1000"], 10.0)
    remote, raw = med("rt.remote.dist"), med("rt.remote.floor")
    if remote is not None and raw is not None:
        target("remote_round_trip", "remote round trip / raw socket floor", remote / raw, 1.5)
    local, floor = med("rt.local.send"), med("rt.local.floor")
    if local is not None and floor is not None:
        target("local_round_trip", "local round trip / thread hand-off floor", local / floor, 2.0)
    return out


def _fmt(value: float | None, unit: str) -> str:
    """Format a value of a unit compactly (µs below 10 ms, ms above; rates in k)."""
    if value is None or value != value:
        return "-"
    if unit == "ops/s":
        return f"{value / 1000:.2f}k/s" if value >= 1000 else f"{value:.1f}/s"
    us = value * 1000 if unit == "ms" else value
    if us >= 10_000:
        return f"{us / 1000:.1f} ms"
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.1f} µs" if us < 100 else f"{us:.0f} µs"


def format_table(report: dict[str, Any]) -> str:
    """Render a report as the text table the command prints (and the docs include)."""
    figs = _by_id(report)
    meta = report["meta"]
    load_b = " ".join(f"{x:.2f}" for x in meta["load_before"])
    load_a = " ".join(f"{x:.2f}" for x in meta.get("load_after", meta["load_before"]))
    lines = [
        f"RePy2 bench ({meta['config']}), {meta['started']}: Python {meta['python']}, {meta['cpus']} CPUs, "
        f"{meta.get('seconds', '?')} s; load average {load_b} before, {load_a} after",
        "median of runs, min-max of runs; ratio to the floor measured in the same run, and to real Erlang pg2",
        "",
    ]
    header = (
        f"{'operation':<40} {'where':<16} {'median':>10} {'min-max':>21} {'p99':>10}  {'x floor':>8}  "
        f"{'Erlang':>10} {'x Erlang':>8}"
    )
    section = None
    for f in report["figures"]:
        if f["section"] != section:
            section = f["section"]
            lines += ["", f"== {section} ==", header, "-" * len(header)]
        unit = f["unit"]
        spread = f"{_fmt(f['min'], unit)}-{_fmt(f['max'], unit)}"
        floor = figs.get(f["floor"]) if f["floor"] else None
        x_floor = f"{f['median'] / floor['median']:.2f}x" if floor else ""
        if f["erlang"] is not None:
            ratio = f["median"] / f["erlang"] if unit != "ops/s" else f["erlang"] / f["median"]
            erl, x_erl = _fmt(f["erlang"], unit), f"{ratio:.1f}x"
        else:
            erl = x_erl = ""
        lines.append(
            f"{f['name']:<40} {f['where']:<16} {_fmt(f['median'], unit):>10} {spread:>21} "
            f"{_fmt(f['p99'], unit):>10}  {x_floor:>8}  {erl:>10} {x_erl:>8}"
        )
        if f["extra"].get("clients", 1) > 1:  # contention shows per client, not in the total
            counts = [n for run in f["extra"]["per_client"] for n in run]
            sleeps = statistics.median(f["extra"]["backoff_sleeps_per_op"])
            lines.append(
                f"{'':>4}per client: {min(counts)}-{max(counts)} pairs a run; {sleeps:.2f} back-off sleeps a pair"
            )
    if report.get("targets"):
        lines += ["", "== targets (issue 10) =="]
        for t in report["targets"]:
            mark = "met" if t["met"] else "MISSED"
            lines.append(f"{mark:>6}  {t['text']:<55} {t['value']:8.2f} (limit {t['limit']:g})")
    lines.append("")
    lines.append("x Erlang: how many times slower than Erlang (for rates: Erlang's rate / ours).")
    return "\n".join(lines)


def plot(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Draw the report's figures as PNG and SVG files in ``out_dir``; return the paths written.

    Raises:
        RuntimeError: matplotlib is not installed (``pip install 'repg2[plots]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("--plot needs matplotlib: pip install 'repg2[plots]'") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = _by_id(report)
    ref = report["reference"]
    written: list[Path] = []
    subtitle = f"{report['meta']['config']} run, {report['meta']['started']}"

    def err(fs: list[dict[str, Any]]) -> list[list[float]]:
        """Return matplotlib's asymmetric error bars (median to min, median to max)."""
        return [[f["median"] - f["min"] for f in fs], [f["max"] - f["median"] for f in fs]]

    def save(fig: Any, name: str) -> None:
        """Save one figure as PNG and SVG."""
        fig.tight_layout()
        for ext in ("png", "svg"):
            path = out_dir / f"{name}.{ext}"
            fig.savefig(path, dpi=110, **({"metadata": {"Date": None}} if ext == "svg" else {}))
            written.append(path)
        plt.close(fig)

    # 1. Reads against table size.
    sizes = sorted(int(i.rsplit(".", 1)[1]) for i in figs if i.startswith("reads.get_members."))
    if sizes:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for prefix, label, style in [
            ("reads.get_members", "get_members", "o-"),
            ("reads.get_local_members", "get_local_members", "s-"),
            ("reads.full_scan", "ets.match, unbound key (full scan)", "^:"),
        ]:
            fs = [figs[f"{prefix}.{s}"] for s in sizes]
            ax.errorbar(sizes, [f["median"] for f in fs], yerr=err(fs), fmt=style, capsize=3, label=label)
        ax.plot(sizes, [ref["get_members_us"][str(s)] for s in sizes], "k--", label="Erlang pg2: get_members")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="other rows in pg2_table",
            ylabel="µs per call",
            title=f"Reads of a 10-member group stay flat\n{subtitle}",
        )
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        save(fig, "reads")

    # 2. Writes against cluster size.
    counts = sorted(int(i.rsplit(".", 1)[1]) for i in figs if i.startswith("writes.join_leave."))
    if counts:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for op, label, style in [
            ("join_leave", "join + leave", "o-"),
            ("create", "create (new group)", "s-"),
            ("trans", "global_.trans (empty fun)", "^-"),
            ("multi_call", "multi_call alone (floor)", "x:"),
        ]:
            fs = [figs[f"writes.{op}.{n}"] for n in counts]
            line = ax.errorbar(
                counts,
                [f["median"] / 1000 for f in fs],
                yerr=[[v / 1000 for v in e] for e in err(fs)],
                fmt=style,
                capsize=3,
                label=label,
            )
            ax.plot(counts, [f["p99"] / 1000 for f in fs], ".", color=line[0].get_color(), alpha=0.5)
        for key, label, style in [
            ("join_us", "Erlang: join + leave (2 x join)", "k--"),
            ("trans_us", "Erlang: trans", "k:"),
        ]:
            scale = 2 if key == "join_us" else 1
            ax.plot(counts, [scale * ref[key][str(n)] / 1000 for n in counts], style, label=label)
        ax.set(
            yscale="log",
            xlabel="nodes",
            ylabel="ms per operation (dots: p99)",
            xticks=counts,
            title=f"Writes grow with the cluster\n{subtitle}",
        )
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        save(fig, "writes")

    # 3. Throughput.
    tps = [f for f in report["figures"] if f["section"] == "throughput"]
    if tps:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        node_counts = sorted({f["extra"]["nodes"] for f in tps})
        kinds = [("1", "1 client"), ("4", "4 clients, distinct groups"), ("4-shared", "4 clients, one group")]
        width = 0.25
        for k, (kind, label) in enumerate(kinds):
            fs = [figs[f"throughput.{kind}.{n}"] for n in node_counts]
            xs = [i + (k - 1) * width for i in range(len(node_counts))]
            ax.bar(xs, [f["median"] for f in fs], width, yerr=err(fs), capsize=3, label=label)
            if kind == "4-shared":  # the total hides the starvation: name the slowest client
                for x, f in zip(xs, fs, strict=True):
                    slowest = min(n for run in f["extra"]["per_client"] for n in run)
                    ax.annotate(
                        f"slowest\nclient: {slowest}",
                        (x, f["max"]),
                        xytext=(0, 3),
                        textcoords="offset points",
                        ha="center",
                        va="bottom",
                        fontsize=7,
                    )
        for i, n in enumerate(node_counts):
            value = ref["throughput_4_clients_distinct_ops_per_s"].get(str(n))
            if value:
                ax.plot([i - 0.05, i + 0.05], [value, value], "k-", lw=3)
                ax.annotate("Erlang, 4 distinct", (i + 0.07, value), fontsize=7, va="center")
        ax.set(
            xticks=range(len(node_counts)),
            xticklabels=[f"{n} node{'s' if n > 1 else ''}" for n in node_counts],
            yscale="log",
            ylabel="join+leave pairs per second",
            title=f"Throughput, and starvation on one group\n{subtitle}",
        )
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        save(fig, "throughput")

    # 4. Heal.
    hs = sorted((f for f in report["figures"] if f["section"] == "heal"), key=lambda f: f["extra"]["memberships"])
    if hs:
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = range(len(hs))
        ax.bar([x - 0.2 for x in xs], [f["median"] for f in hs], 0.4, yerr=err(hs), capsize=3, label="RePy2")
        ax.bar([x + 0.2 for x in xs], [f["erlang"] or 0 for f in hs], 0.4, label="Erlang pg2", color="0.6")
        for x, f in zip(xs, hs, strict=True):
            ax.annotate(
                f"{f['median']:.0f} ms",
                (x - 0.2, f["max"]),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
            if f["erlang"]:
                ax.annotate(
                    f"{f['erlang']:g} ms",
                    (x + 0.2, f["erlang"]),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    fontsize=8,
                )
        ax.set(
            xticks=list(xs),
            xticklabels=[f"{f['extra']['memberships']:,} memberships" for f in hs],
            ylabel="ms until every node agrees",
            title=f"Heal of a 3-node partition\n{subtitle}",
        )
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        save(fig, "heal")

    # 5. Round trips.
    rts = [f for f in report["figures"] if f["section"] == "roundtrip"]
    if rts:
        fig, ax = plt.subplots(figsize=(7, 4))
        ys = range(len(rts))
        colors = ["0.6" if f["floor"] is None else "C0" for f in rts]
        ax.barh(list(ys), [f["median"] for f in rts], xerr=err(rts), capsize=3, color=colors)
        for y, f in zip(ys, rts, strict=True):
            floor = figs.get(f["floor"]) if f["floor"] else None
            tag = f"{f['median']:.0f} µs" + (f"  ({f['median'] / floor['median']:.1f}x floor)" if floor else "  floor")
            ax.annotate(tag, (f["max"], y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
        ax.set(
            yticks=list(ys),
            yticklabels=[f"{f['name']} [{f['where']}]" for f in rts],
            xlabel="µs per round trip",
            title=f"Message round trips beside their floors (grey)\n{subtitle}",
        )
        ax.invert_yaxis()
        ax.set_xlim(0, max(f["max"] for f in rts) * 1.45)
        ax.grid(True, axis="x", alpha=0.3)
        save(fig, "roundtrips")
    return written


def main(argv: list[str] | None = None) -> int:
    """Run the bench (or load a saved run), print the table, write JSON and plots as asked."""
    parser = argparse.ArgumentParser(prog="python -m repg2 bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_command(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the bench's options to a parser (its own, or the ``bench`` sub-command's)."""
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repetitions (CI: under 30 s)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the full report as JSON")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="write PNG and SVG plots and table.txt into DIR")
    parser.add_argument("--only", metavar="SECTIONS", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--load", type=Path, metavar="FILE", help="do not measure: report a saved --json run")
    parser.add_argument("--no-progress", action="store_true", help="no progress display on stderr")


def run_command(args: argparse.Namespace) -> int:
    """Carry out parsed bench options; return the exit status."""
    if args.load is not None:
        report = json.loads(args.load.read_text(encoding="utf-8"))
        report["targets"] = check_targets(report)  # as this version defines them
    else:
        sections = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            print(f"python -m repg2 bench: unknown sections {sorted(unknown)}; choose from {SECTIONS}", file=sys.stderr)
            return 2
        if erlang.node() != "nonode@nohost":
            print("python -m repg2 bench: this process is already a node; run the bench on its own", file=sys.stderr)
            return 2
        report = run(QUICK if args.quick else FULL, sections, show_progress=not args.no_progress)
    table = format_table(report)
    print(table)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.plot is not None:
        for path in plot(report, args.plot):
            print(f"wrote {path}", file=sys.stderr)
        (args.plot / "table.txt").write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
