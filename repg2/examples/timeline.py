"""Watch every node's view of a group over time, and draw it as a timeline.

There is no Erlang original: this is a notebook's instrument, what a person
at a shell would do by calling ``pg2:get_members/1`` on every node again and
again (``rpc:call(Node, pg2, get_members, [Group])``) while things break.

A background thread asks every node of a :class:`~repg2.testing.cluster.Cluster`
for its members of one group, about every ``interval`` seconds, through
the harness' control channel (which reaches a node even during a
partition). Each answer becomes a *view*: the members by their readable
names (``'alice, carol'``), ``'no such group'``, or ``'down'`` when the node
does not answer. :meth:`ViewTimeline.mark` notes a moment ("partition",
"heal"); :meth:`ViewTimeline.figure` draws one band per node, coloured by
view, with the marks as vertical lines: where the bands differ the nodes
disagree, where they line up again they have converged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from repg2 import pg2
from repg2.erlang import Pid
from repg2.tools.drawing import Picture

__all__ = ["Sample", "ViewTimeline"]

DOWN = "down"  # the view of a node that does not answer
NO_GROUP = "no such group"


@dataclass(frozen=True)
class Sample:
    """One node's view at one moment."""

    t: float  # seconds since the timeline started
    node: str
    view: str


@dataclass
class ViewTimeline:
    """Record each node's ``pg2:get_members(group)`` over time; draw the views as bands.

    ``names`` maps pids to readable names; an unnamed pid shows as its
    repr. Use ``with ViewTimeline(cluster, 'chat', names) as timeline:``
    or :meth:`start` and :meth:`stop`.
    """

    cluster: Any
    group: Any
    names: dict[Pid, str]
    interval: float = 0.01
    samples: list[Sample] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    _t0: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ViewTimeline:
        """Start sampling in a background thread; return self."""
        self._t0 = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="view-timeline")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (after one last round, so the end state is recorded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sample_all()

    def __enter__(self) -> ViewTimeline:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def mark(self, label: str) -> None:
        """Note that something happened now (drawn as a labelled vertical line)."""
        self.marks.append((time.monotonic() - self._t0, label))

    def view(self, node: str) -> str:
        """Ask one node for its members of the group now; return them as a view."""
        if node not in self.cluster.live_nodes():
            return DOWN
        try:
            members = self.cluster.rpc(node, pg2.get_members, self.group, timeout=2.0)
        except Exception:  # noqa: BLE001 - a node going down mid-call is "down", whatever the error
            return DOWN
        if not isinstance(members, list):
            return NO_GROUP
        return ", ".join(sorted(self.names.get(p, repr(p)) for p in members)) or "(empty)"

    def views(self) -> dict[str, str]:
        """Return the latest view of every node."""
        latest: dict[str, str] = {}
        for sample in self.samples:
            latest[sample.node] = sample.view
        return latest

    def wait(self, condition: Callable[[dict[str, str]], bool], timeout: float = 15.0) -> float:
        """Poll the views until ``condition(views)`` holds; return the seconds it took.

        Raises:
            TimeoutError: the views did not get there within ``timeout``.
        """
        started = time.monotonic()
        while True:
            views = {node: self.view(node) for node in self.cluster.nodes}
            if condition(views):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"views did not settle within {timeout} s: {views}")
            time.sleep(self.interval)  # polling interval of a deadline-bounded wait

    def hold(self, seconds: float = 0.3) -> None:
        """Let the sampler record the current state for a while, so it shows as a band."""
        time.sleep(seconds)

    def _loop(self) -> None:
        """Sample every node until stopped."""
        while not self._stop.is_set():
            self._sample_all()
            self._stop.wait(self.interval)

    def _sample_all(self) -> None:
        """Record one view of every node."""
        for node in self.cluster.nodes:
            view = self.view(node)
            self.samples.append(Sample(time.monotonic() - self._t0, node, view))

    # -- The picture -------------------------------------------------------------------------

    def segments(self) -> dict[str, list[tuple[float, float, str]]]:
        """Merge each node's samples into ``(start, end, view)`` runs of equal views."""
        runs: dict[str, list[tuple[float, float, str]]] = {node: [] for node in self.cluster.nodes}
        end = max((s.t for s in self.samples), default=0.0)
        for sample in sorted(self.samples, key=lambda s: s.t):
            row = runs.setdefault(sample.node, [])
            if row and row[-1][2] == sample.view:
                row[-1] = (row[-1][0], sample.t, sample.view)
            else:
                if row:
                    row[-1] = (row[-1][0], sample.t, row[-1][2])
                row.append((sample.t, sample.t, sample.view))
        for row in runs.values():
            if row:
                row[-1] = (row[-1][0], end, row[-1][2])
        return runs

    def figure(self, title: str | None = None) -> Any:
        """Draw the timeline: one band per node, coloured by view; marks as numbered lines.

        Each distinct view has one colour, named in the legend; ``down`` is
        grey and ``no such group`` pale red. Marks are numbered at the top
        and listed beside the legend, so close marks never overprint.
        """
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        runs = self.segments()
        nodes = list(self.cluster.nodes)
        views = [v for v in dict.fromkeys(s.view for s in self.samples) if v not in (DOWN, NO_GROUP)]
        palette = ["#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974"]
        colour = {v: palette[i % len(palette)] for i, v in enumerate(views)}
        colour[DOWN] = "#d0d0d0"
        colour[NO_GROUP] = "#f4b6b6"
        end = max((s.t for s in self.samples), default=1.0)
        fig = Figure(figsize=(11, 0.9 + 0.5 * len(nodes)))
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        for i, node in enumerate(nodes):
            for start, stop, view in runs.get(node, []):
                width = max(stop - start, end / 400)  # a view seen once still shows
                ax.barh(i, width, left=start, height=0.6, color=colour[view], edgecolor="white", linewidth=0.5)
                if len(view) * 0.062 + 0.15 < width / (end * 1.01) * 11:  # the text fits: 11 inches wide, 7.5 pt
                    ink = "#333333" if view in (DOWN, NO_GROUP) else "white"
                    ax.text(start + width / 2, i, view, ha="center", va="center", fontsize=7.5, color=ink)
        ax.set_yticks(range(len(nodes)), [f"node {n.split('@')[0]}" for n in nodes])
        ax.set_ylim(len(nodes) - 0.4, -0.9)
        ax.set_xlim(0, end * 1.01)
        ax.set_xlabel("seconds since the timeline started")
        for spine in ("top", "right"):
            ax.spines[spine].set_visible(False)
        for number, (t, _label) in enumerate(self.marks, 1):
            ax.axvline(t, color="#222222", lw=0.8, ls="--")
            circle = {"boxstyle": "circle,pad=0.2", "fc": "#222222", "ec": "none"}
            ax.text(t, -0.62, str(number), ha="center", va="center", fontsize=7.5, color="white", bbox=circle)
        # Under the axes (placed in axes coordinates; saving with a tight box keeps them in):
        # the colours of the views on the left, the numbered marks on the right.
        legend = [Patch(color=colour[v], label=v) for v in colour if any(s.view == v for s in self.samples)]
        ax.legend(
            handles=legend,
            loc="upper left",
            bbox_to_anchor=(0.0, -0.22),
            ncol=3,
            fontsize=8,
            frameon=False,
            title="view = get_members on that node",
            title_fontsize=8,
            alignment="left",
        )
        notes = "\n".join(f"{n}  {label}  (at {t:.2f} s)" for n, (t, label) in enumerate(self.marks, 1))
        ax.text(0.66, -0.24, notes, transform=ax.transAxes, ha="left", va="top", fontsize=8, family="monospace")
        if title:
            ax.set_title(title, fontsize=11, loc="left", pad=16)
        return fig

    def picture(self, title: str | None = None) -> Picture:
        """Return the timeline as a picture that shows itself in Jupyter and saves as SVG or PNG."""
        return Picture(self.figure(title))
