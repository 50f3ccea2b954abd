"""The report: the targets of issue 16, the text table, the JSON file.

A report is the JSON object :func:`~repg2.tools.bench.runner.run` returns:
``meta`` (configuration, machine, load), ``figures`` (each
:meth:`Figure.as_json <repg2.tools.bench.measure.Figure.as_json>`),
``reference`` (real Erlang's stored figures) and ``targets``. Every Erlang
value a figure carries is marked ``same_run`` (real OTP nodes timed in this
run) or ``stored`` (the reference file: pg2, which OTP 25 lacks). A saved report can be
read back and rendered again without measuring anything.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

__all__ = ["TARGETS", "by_id", "check_targets", "format_table", "read_report", "write_report"]


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Index a report's figures by id."""
    return {f["id"]: f for f in report["figures"]}


# The targets of issue 16: (id, what is divided by what, limit). Each is checked when the
# run measured its figures; a ratio to Erlang uses the same-run figure when there is one.
TARGETS = (
    ("remote_rtt_vs_erlang", "send+receive between two nodes / Erlang's", 1.5),
    ("trans_3_nodes_vs_erlang", "global_.trans (empty fun), 3 nodes / Erlang's global:trans", 2.0),
    ("pg2_join_3_nodes_vs_erlang", "pg2.join on 3 nodes / Erlang pg2's", 3.0),
    ("heal_1000_vs_erlang", "heal of 1,000 memberships, 3 nodes / Erlang pg2's", 5.0),
    ("get_members_100k_vs_erlang", "get_members at 100k rows / Erlang pg2's", 3.0),
    ("get_members_flat", "get_members at 100k rows / at 1k rows", 1.5),
    ("local_rtt_vs_floor", "local send+receive / thread hand-off floor", 1.5),
)


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the targets of issue 16 against a report; a target whose figures are missing is skipped.

    Each target is ``{id, text, value, limit, met, source}``: ``source``
    says whether the ratio's other side was measured in this run
    (``same_run``: real Erlang's twin figure, or a floor) or is Erlang's
    stored reference (``stored``).
    """
    figs = by_id(report)
    out: list[dict[str, Any]] = []

    def vs_erlang(fid: str) -> tuple[float, float, str] | None:
        """Return (ours, Erlang's, source) for a figure that has an Erlang value, else None."""
        f = figs.get(fid)
        if f is None or f.get("erlang") is None:
            return None
        return f["median"], f["erlang"], f.get("erlang_source") or "stored"

    def ratio(fid: str, floor_id: str) -> tuple[float, float, str] | None:
        """Return (figure, floor, 'same_run') when both were measured, else None."""
        f, floor = figs.get(fid), figs.get(floor_id)
        return None if f is None or floor is None else (f["median"], floor["median"], "same_run")

    found = {
        "remote_rtt_vs_erlang": vs_erlang("rt.remote.dist"),
        "trans_3_nodes_vs_erlang": vs_erlang("writes.trans.3"),
        "pg2_join_3_nodes_vs_erlang": vs_erlang("writes.join.3"),
        "heal_1000_vs_erlang": vs_erlang("heal.1000"),
        "get_members_100k_vs_erlang": vs_erlang("reads.get_members.100000"),
        "get_members_flat": ratio("reads.get_members.100000", "reads.get_members.1000"),
        "local_rtt_vs_floor": ratio("rt.local.send", "rt.local.floor"),
    }
    for tid, text, limit in TARGETS:
        got = found[tid]
        if got is None:
            continue
        ours, theirs, source = got
        value = ours / theirs
        out.append(
            {
                "id": tid,
                "text": text,
                "value": value,
                "limit": limit,
                "met": bool(value <= limit),
                "source": source,
                "ours": ours,
                "theirs": theirs,
            }
        )
    return out


def _fmt(value: float | None, unit: str) -> str:
    """Format a value of a unit compactly (µs below 10 ms, ms above; rates in k)."""
    if value is None or value != value:
        return "-"
    if unit == "us" and value < 10:
        return f"{value:.2f} µs"
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
        "median of runs, min-max of runs; ratio to the floor measured in the same run, and to real Erlang:",
        f"Erlang 'run' = real OTP nodes timed in this run ({_erlang_line(meta)}); "
        "'stored' = the reference file (pg2 cannot run on OTP 25)",
        "",
    ]
    header = (
        f"{'operation':<40} {'where':<16} {'median':>10} {'min-max':>21} {'p99':>10}  {'x floor':>8}  "
        f"{'Erlang':>10} {'from':>6} {'x Erlang':>8}"
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
            source = "run" if f.get("erlang_source") == "same_run" else "stored"
        else:
            erl = x_erl = source = ""
        lines.append(
            f"{f['name']:<40} {f['where']:<16} {_fmt(f['median'], unit):>10} {spread:>21} "
            f"{_fmt(f['p99'], unit):>10}  {x_floor:>8}  {erl:>10} {source:>6} {x_erl:>8}"
        )
        if f["extra"].get("clients", 1) > 1:  # contention shows per client, not in the total
            counts = [n for run in f["extra"]["per_client"] for n in run]
            sleeps = statistics.median(f["extra"]["backoff_sleeps_per_op"])
            lines.append(
                f"{'':>4}per client: {min(counts)}-{max(counts)} pairs a run; {sleeps:.2f} back-off sleeps a pair"
            )
    if report.get("targets"):
        lines += ["", "== targets (issue 16) =="]
        for t in report["targets"]:
            mark = "met" if t["met"] else "MISSED"
            source = "same run" if t.get("source") == "same_run" else "stored"
            lines.append(f"{mark:>6}  {t['id']:<28} {t['text']:<62} {t['value']:7.2f} (limit {t['limit']:g}; {source})")
    lines.append("")
    lines.append("x Erlang: how many times slower than Erlang (for rates: Erlang's rate / ours).")
    return "\n".join(lines)


def _erlang_line(meta: dict[str, Any]) -> str:
    """Say in a few words where this run's Erlang figures came from."""
    info = meta.get("erlang") or {}
    if info.get("live"):
        return f"OTP {info.get('otp_release', '?')}, erts {info.get('erts', '?')}, {info.get('nodes', '?')} nodes"
    return f"none: {info.get('reason', 'not measured')}"


def read_report(path: Path) -> dict[str, Any]:
    """Read a report saved with ``--json``; check its targets as this version defines them."""
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    report["targets"] = check_targets(report)
    return report


def write_report(report: dict[str, Any], path: Path) -> None:
    """Save a report as JSON (``--json``), creating the directory if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
