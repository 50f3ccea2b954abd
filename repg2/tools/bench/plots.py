"""The report as pictures: one function per figure, each a matplotlib figure saved as PNG and SVG.

:func:`plot` draws each figure whose section the report holds, in the
order of the table (reads, writes, throughput, heal, round trips), and
saves each as ``<name>.png`` and ``<name>.svg``; a ``draw_*`` function
returns ``None`` when the report lacks its section (a run with ``--only``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repg2.tools.bench.report import by_id

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as Drawing

__all__ = [
    "FIGURES",
    "draw_heal",
    "draw_pg",
    "draw_reads",
    "draw_roundtrips",
    "draw_throughput",
    "draw_writes",
    "plot",
]


def _pyplot() -> Any:
    """Return ``matplotlib.pyplot`` on the Agg backend (no display needed).

    Raises:
        RuntimeError: matplotlib is not installed (``pip install 'repg2[plots]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("--plot needs matplotlib: pip install 'repg2[plots]'") from exc
    return plt


def _subtitle(report: dict[str, Any]) -> str:
    """Return the second title line every figure carries: which run it shows."""
    return f"{report['meta']['config']} run, {report['meta']['started']}"


def _err(fs: list[dict[str, Any]]) -> list[list[float]]:
    """Return matplotlib's asymmetric error bars (median to min, median to max)."""
    return [[f["median"] - f["min"] for f in fs], [f["max"] - f["median"] for f in fs]]


def _sizes(figs: dict[str, Any], prefix: str) -> list[int]:
    """Return, in order, the sizes (rows, nodes) measured for the figure ids ``prefix.<size>``."""
    return sorted(int(i.rsplit(".", 1)[1]) for i in figs if i.startswith(prefix + "."))


def _subplots(width: float, height: float) -> tuple[Drawing, Axes]:
    """Return a new pyplot figure of ``width`` x ``height`` inches and its one axes."""
    fig, ax = _pyplot().subplots(figsize=(width, height))
    return fig, ax


def draw_reads(report: dict[str, Any]) -> Drawing | None:
    """Draw reads against table size: they stay flat, as Erlang's do, and a full scan does not."""
    figs = by_id(report)
    sizes = _sizes(figs, "reads.get_members")
    if not sizes:
        return None
    ref = report["reference"]
    fig, ax = _subplots(7, 4.2)
    for prefix, label, style in [
        ("reads.get_members", "get_members", "o-"),
        ("reads.get_local_members", "get_local_members", "s-"),
        ("reads.full_scan", "ets.match, unbound key (full scan)", "^:"),
    ]:
        fs = [figs[f"{prefix}.{s}"] for s in sizes]
        ax.errorbar(sizes, [f["median"] for f in fs], yerr=_err(fs), fmt=style, capsize=3, label=label)
    ax.plot(sizes, [ref["get_members_us"][str(s)] for s in sizes], "k--", label="Erlang pg2: get_members (stored)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="other rows in pg2_table",
        ylabel="µs per call",
        title=f"Reads of a 10-member group stay flat\n{_subtitle(report)}",
    )
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def draw_writes(report: dict[str, Any]) -> Drawing | None:
    """Draw writes against cluster size (median and p99), beside their multi_call floor and Erlang's."""
    figs = by_id(report)
    counts = _sizes(figs, "writes.join_leave")
    if not counts:
        return None
    ref = report["reference"]
    fig, ax = _subplots(7, 4.5)
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
            yerr=[[v / 1000 for v in e] for e in _err(fs)],
            fmt=style,
            capsize=3,
            label=label,
        )
        ax.plot(counts, [f["p99"] / 1000 for f in fs], ".", color=line[0].get_color(), alpha=0.5)
    ax.plot(counts, [2 * ref["join_us"][str(n)] / 1000 for n in counts], "k--", label="Erlang pg2: 2 x join (stored)")
    live = [n for n in counts if f"erlang.trans.{n}" in figs]
    if live:
        ax.plot(
            live, [figs[f"erlang.trans.{n}"]["median"] / 1000 for n in live], "k:", label="Erlang: trans (same run)"
        )
    else:
        ax.plot(counts, [ref["trans_us"][str(n)] / 1000 for n in counts], "k:", label="Erlang: trans (stored)")
    ax.set(
        yscale="log",
        xlabel="nodes",
        ylabel="ms per operation (dots: p99)",
        xticks=counts,
        title=f"Writes grow with the cluster\n{_subtitle(report)}",
    )
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def draw_throughput(report: dict[str, Any]) -> Drawing | None:
    """Draw join+leave pairs per second by clients and nodes, naming the slowest client on one group."""
    tps = [f for f in report["figures"] if f["section"] == "throughput"]
    if not tps:
        return None
    figs = by_id(report)
    ref = report["reference"]
    fig, ax = _subplots(7, 4.2)
    node_counts = sorted({f["extra"]["nodes"] for f in tps})
    kinds = [("1", "1 client"), ("4", "4 clients, distinct groups"), ("4-shared", "4 clients, one group")]
    width = 0.25
    for k, (kind, label) in enumerate(kinds):
        fs = [figs[f"throughput.{kind}.{n}"] for n in node_counts]
        xs = [i + (k - 1) * width for i in range(len(node_counts))]
        ax.bar(xs, [f["median"] for f in fs], width, yerr=_err(fs), capsize=3, label=label)
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
        title=f"Throughput, and starvation on one group\n{_subtitle(report)}",
    )
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    return fig


def draw_heal(report: dict[str, Any]) -> Drawing | None:
    """Draw the heal time of a 3-node partition per number of memberships, beside Erlang's."""
    hs = sorted((f for f in report["figures"] if f["section"] == "heal"), key=lambda f: f["extra"]["memberships"])
    if not hs:
        return None
    fig, ax = _subplots(6, 4)
    xs = range(len(hs))
    ax.bar([x - 0.2 for x in xs], [f["median"] for f in hs], 0.4, yerr=_err(hs), capsize=3, label="RePy2")
    ax.bar([x + 0.2 for x in xs], [f["erlang"] or 0 for f in hs], 0.4, label="Erlang pg2 (stored)", color="0.6")
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
        title=f"Heal of a 3-node partition\n{_subtitle(report)}",
    )
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def draw_roundtrips(report: dict[str, Any]) -> Drawing | None:
    """Draw every round trip as a bar beside its floor (grey), with the ratio to the floor."""
    rts = [f for f in report["figures"] if f["section"] == "roundtrip"]
    if not rts:
        return None
    rts += [f for f in report["figures"] if f["id"].startswith("erlang.rt.")]
    figs = by_id(report)
    fig, ax = _subplots(7, 4.4)
    ys = range(len(rts))
    colors = ["C2" if f["section"] == "erlang" else "0.6" if f["floor"] is None else "C0" for f in rts]
    ax.barh(list(ys), [f["median"] for f in rts], xerr=_err(rts), capsize=3, color=colors)
    for y, f in zip(ys, rts, strict=True):
        floor = figs.get(f["floor"]) if f["floor"] else None
        value = f"{f['median']:.0f} µs" if f["median"] >= 10 else f"{f['median']:.2f} µs"
        kind = "  real Erlang, same run" if f["section"] == "erlang" else "  floor"
        tag = value + (f"  ({f['median'] / floor['median']:.1f}x floor)" if floor else kind)
        ax.annotate(tag, (f["max"], y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set(
        yticks=list(ys),
        yticklabels=[f"{f['name']} [{f['where']}]" for f in rts],
        xlabel="µs per round trip",
        title=f"Round trips beside their floors (grey) and real Erlang (green)\n{_subtitle(report)}",
    )
    ax.invert_yaxis()
    ax.set_xlim(0, max(f["max"] for f in rts) * 1.45)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def draw_pg(report: dict[str, Any]) -> Drawing | None:
    """Draw pg's join beside pg2's and beside real Erlang pg's of the same run, by cluster size."""
    figs = by_id(report)
    counts = _sizes(figs, "writes.pg_join")
    if not counts:
        return None
    fig, ax = _subplots(7, 4.2)
    for prefix, label, style in [
        ("writes.join", "pg2.join (lock, 3 multi_calls)", "o-"),
        ("writes.pg_join", "pg.join (one local call)", "s-"),
        ("writes.pg_leave", "pg.leave", "v-"),
        ("erlang.pg_join", "Erlang pg:join (same run)", "k:"),
        ("erlang.pg_leave", "Erlang pg:leave (same run)", "k-."),
    ]:
        have = [n for n in counts if f"{prefix}.{n}" in figs]
        if have:
            ax.plot(have, [figs[f"{prefix}.{n}"]["median"] for n in have], style, label=label)
    ax.set(
        yscale="log",
        xlabel="nodes",
        ylabel="µs per call",
        xticks=counts,
        title=f"pg beside pg2 and real Erlang pg\n{_subtitle(report)}",
    )
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


FIGURES: dict[str, Callable[[dict[str, Any]], Drawing | None]] = {  # file name: how it is drawn, in table order
    "reads": draw_reads,
    "writes": draw_writes,
    "pg": draw_pg,
    "throughput": draw_throughput,
    "heal": draw_heal,
    "roundtrips": draw_roundtrips,
}


def plot(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Draw the report's figures as PNG and SVG files in ``out_dir``; return the paths written.

    Raises:
        RuntimeError: matplotlib is not installed (``pip install 'repg2[plots]'``).
    """
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, draw in FIGURES.items():
        fig = draw(report)
        if fig is None:
            continue
        fig.tight_layout()
        for ext in ("png", "svg"):
            path = out_dir / f"{name}.{ext}"
            fig.savefig(path, dpi=110, metadata={"Date": None} if ext == "svg" else None)  # an SVG without a date
            written.append(path)
        plt.close(fig)
    return written
