"""The run: the sections in their order, on one cluster that starts once and shrinks.

This process becomes node ``bench_a``; the cluster starts with the most
nodes any section needs and *shrinks* (``Cluster.stop``) between stages, so
nodes start once. At each size the sections that measure there run in
turn; the report then sorts the figures by section, operation and size.
After the cluster has stopped, real OTP nodes are timed (``erlang_live``)
and every figure that has an Erlang twin of this run takes its value,
marked ``same_run``; the others keep the stored reference, marked ``stored``.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Iterable
from typing import Any

from repg2 import erlang, global_
from repg2.testing import Cluster
from repg2.tools.bench import erlang_live
from repg2.tools.bench.config import PREFIX, SECTIONS, Config, load_reference
from repg2.tools.bench.heal import heals
from repg2.tools.bench.measure import Figure, Progress
from repg2.tools.bench.nodes import setup
from repg2.tools.bench.reads import bench_reads
from repg2.tools.bench.report import check_targets
from repg2.tools.bench.roundtrip import local_round_trips, remote_round_trips
from repg2.tools.bench.throughput import throughput
from repg2.tools.bench.writes import write_latencies

__all__ = ["attach_erlang", "run", "steps_of"]

# A figure of ours -> its twin of section erlang (real OTP measured in the same run); the
# node count, where there is one, is the last part of both ids.
_TWINS = {
    "rt.remote.dist": "erlang.rt.remote",
    "rt.local.send": "erlang.rt.local",
    "writes.trans": "erlang.trans",
    "writes.pg_join": "erlang.pg_join",
    "writes.pg_leave": "erlang.pg_leave",
}
# Without erl, the stored value that stands in for a twin, by the same prefixes.
_STORED = {"rt.remote.dist": "rt_remote_us", "rt.local.send": "rt_local_us", "writes.trans": "trans_us"}


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
    if "erlang" in wanted and erlang_live.erlang_missing_reason() is None:
        n += erlang_live.steps(cfg)
    return n


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
        figures += _on_a_cluster(cfg, wanted, reference, progress)
    if "erlang" in wanted:
        missing = erlang_live.erlang_missing_reason()
        if missing is None:
            erl_figures, meta["erlang"] = erlang_live.measure_erlang(cfg, progress)
            figures += erl_figures
        else:
            meta["erlang"] = {"live": False, "reason": missing}
            print(f"python -m repg2 bench: {missing}; Erlang's figures are the stored ones", file=sys.stderr)
    else:
        meta["erlang"] = {"live": False, "reason": "the erlang section was not asked for"}
    attach_erlang(figures, reference)
    progress.finish()
    meta["seconds"] = round(time.monotonic() - start, 1)
    meta["load_after"] = list(os.getloadavg())
    report = {"meta": meta, "figures": [f.as_json() for f in _in_report_order(figures)], "reference": reference}
    report["targets"] = check_targets(report)
    return report


def attach_erlang(figures: list[Figure], reference: dict[str, Any]) -> None:
    """Give each figure its Erlang value: its same-run twin's median, else the stored one; mark which.

    A figure whose twin was measured in this run takes the twin's median
    (``erlang_source='same_run'``). A figure with a stand-in in the stored
    reference takes that without a twin; figures that already carry a
    stored value (pg2's: OTP 25 has no pg2) keep it. Either way the source
    says ``'stored'``.
    """
    by_id = {f.id: f for f in figures}
    for f in figures:
        if f.section == "erlang":
            continue
        prefix, _, size = f.id.rpartition(".")
        twin_id = _TWINS.get(f.id) or (_TWINS.get(prefix, "") + "." + size if prefix in _TWINS else None)
        twin = by_id.get(twin_id) if twin_id else None
        if twin is not None:
            f.erlang, f.erlang_source = twin.median, "same_run"
            continue
        stored_key = _STORED.get(f.id) or _STORED.get(prefix)
        if stored_key is not None and f.erlang is None:
            stored = reference.get(stored_key)
            f.erlang = stored.get(size) if isinstance(stored, dict) else stored
        if f.erlang is not None:
            f.erlang_source = "stored"


def _on_a_cluster(cfg: Config, wanted: list[str], reference: dict[str, Any], progress: Progress) -> list[Figure]:
    """Run the cluster sections: start the largest cluster, then measure at each size as it shrinks."""
    progress.step(f"starting a cluster of {cfg.node_counts[0]} nodes")
    remote_at = min(n for n in cfg.node_counts if n >= 2)
    figures: list[Figure] = []
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
    return figures


def _in_report_order(figures: list[Figure]) -> list[Figure]:
    """Sort figures for the report: by section, then by operation (in the order first measured), then by size."""
    section_rank = {s: i for i, s in enumerate(("reads", "writes", "throughput", "heal", "roundtrip", "erlang"))}

    def operation(f: Figure) -> tuple[str, str]:
        """Name a figure's operation; a round trip is local or remote, so its place is part of it."""
        return (f.section, f.name if f.section not in ("roundtrip", "erlang") else f"{f.name} {f.where}")

    name_rank: dict[tuple[str, str], int] = {}
    for f in figures:
        name_rank.setdefault(operation(f), len(name_rank))
    return sorted(
        figures,
        key=lambda f: (
            section_rank[f.section],
            name_rank[operation(f)],
            f.extra.get("nodes") or f.extra.get("other_rows") or f.extra.get("memberships") or 0,
        ),
    )
