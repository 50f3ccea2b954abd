"""What the bench measures, and how much: the sections, the two configurations, Erlang's reference figures.

The constants every section shares live here too: the size of the group
whose reads are timed, the trivial server that is the floor of a write, the
prefix of the bench's node names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ECHO", "FULL", "GROUP_SIZE", "PREFIX", "QUICK", "REFERENCE_FILE", "SECTIONS", "Config", "load_reference"]

REFERENCE_FILE = Path(__file__).resolve().parent.parent / "data" / "erlang_pg2_reference.json"
GROUP_SIZE = 10  # members of the group whose reads are timed, as in the reference figures
ECHO = "bench_echo"  # a trivial gen_server on every node: the bare multi_call floor of a write
PREFIX = "bench_"  # node names bench_a@..., so a bench never takes a test's or a demo's names

# The sections, in the order they start: the local round trips run first, on a
# quiet node that is not yet distributed; the report lists them last. ``erlang``
# (real OTP nodes, when ``erl`` is installed) runs after the Python cluster has
# stopped, and gives the round trips, trans and pg their same-run Erlang figures.
SECTIONS = ("roundtrip", "reads", "writes", "throughput", "heal", "erlang")


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


def load_reference() -> dict[str, Any]:
    """Read the stored reference figures of real Erlang (pg2's, and the fallbacks for a machine without erl)."""
    data: dict[str, Any] = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    return data
