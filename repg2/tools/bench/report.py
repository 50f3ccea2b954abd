"""The report: the targets of issue 10, the text table, the JSON file.

A report is the JSON object :func:`~repg2.tools.bench.runner.run` returns:
``meta`` (configuration, machine, load), ``figures`` (each
:meth:`Figure.as_json <repg2.tools.bench.measure.Figure.as_json>`),
``reference`` (real Erlang's figures) and ``targets``. A saved report can be
read back and rendered again without measuring anything.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

__all__ = ["by_id", "check_targets", "format_table", "read_report", "write_report"]


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Index a report's figures by id."""
    return {f["id"]: f for f in report["figures"]}


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the targets of issue 10 against a report; a target whose figures are missing is skipped."""
    figs = by_id(report)
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
    figs = by_id(report)
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


def read_report(path: Path) -> dict[str, Any]:
    """Read a report saved with ``--json``; check its targets as this version defines them."""
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    report["targets"] = check_targets(report)
    return report


def write_report(report: dict[str, Any], path: Path) -> None:
    """Save a report as JSON (``--json``), creating the directory if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
