"""Draw the message diagrams of "How a join travels" and "From pg2 to pg" as SVG: real traces, or a fallback.

Run by the docs build (``docs/_ext/repg2_docs.py`` calls :func:`main` when the
builder starts) and by hand::

    python docs/_scripts/make_figures.py [OUTDIR]            # as the docs build does (mode from the env)
    python docs/_scripts/make_figures.py --trace [OUTDIR]    # trace now, on a fresh 3-node cluster
    python docs/_scripts/make_figures.py --hand [OUTDIR]     # draw the hand-listed messages

Nine pictures, each of the processes on three nodes and the messages between
them, in the order they are sent. Four of pg2 for "How a join travels":
``join.svg`` (one ``pg2:join(g, P)`` from a process on node a),
``member-death.svg`` (a member on node b dies), ``node-death.svg`` (node c
is killed), ``heal.svg`` (the partition ``{a} | {b, c}`` heals). Five for
"From pg2 to pg", pg2 and pg in the same scenarios: ``pg-join.svg`` (one
``pg:join(g, P)``, beside ``join.svg``), then a partition ``{a} | {b, c}``
in which a member dies on each side and the group ``lobby`` is emptied on
the side of b and c (``pg2-partition.svg``, ``pg-partition.svg``), and its
heal (``pg2-partition-heal.svg``, ``pg-partition-heal.svg``).

**Real traces first.** With ``repg2.tools.trace`` available, the pictures are
recorded: a child process becomes node a of a :class:`repg2.testing.cluster.Cluster`
of three real nodes, with its own port mapper port so that it never meets
another cluster of this machine, runs the scenarios under a
:class:`repg2.tools.trace.Tracer`, and saves each trace's sequence diagram (SVG)
and text log. That takes a few seconds, so it is done only when the code
changed: ``figures.json`` records a hash of ``repg2/**/*.py`` and of this
script, and a build whose hash matches keeps the pictures it has.

**The fallback** draws the same stories from message lists written here
by hand, read off the code (``pg2.join`` runs ``global_.trans`` around
``gen_server.multi_call(SERVER, ('join', name, pid))``; ``global_.set_lock``
multi_calls ``('set_lock', id)`` to every ``global_name_server``, ``del_lock``
multi_calls ``('del_lock', id)``; ``pg2.handle_info`` answers ``nodeup`` with
an ``exchange`` cast; ``pg2.member_died`` abcasts ``del_member``; ``pg.join``
calls the local scope process, which sends ``join`` to each peer;
``pg.handle_info`` answers ``nodeup`` with ``discover``, and ``discover``
with a ``sync`` cast).

``REPG2_DOCS_FIGURES`` chooses:

- ``auto`` (default): trace if the pictures are missing or stale; if tracing
  fails, draw the fallback and say so on the page;
- ``trace``: trace now; a failure is an error;
- ``keep``: start no node; keep the pictures there are, draw the fallback
  only for missing ones (what ``tests/test_docs.py`` uses);
- ``hand``: draw the fallback.

Output is deterministic (no dates, fixed ids), and a file is rewritten only
when its bytes change, so the SVGs can be committed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_OUT = HERE.parent / "_static" / "figures"
NAMES = [
    "join",
    "member-death",
    "node-death",
    "heal",
    "pg-join",
    "pg2-partition",
    "pg2-partition-heal",
    "pg-partition",
    "pg-partition-heal",
]
TITLES = {
    "join": "One join: pg2:join(g, P) called by C on node a",
    "member-death": "A member dies: P on node b is killed",
    "node-death": "A node dies: c, with its member P3, is killed",
    "heal": "A heal: the partition {a} | {b, c} ends",
    "pg-join": "pg's join: pg:join(g, P) called by C on node a",
    "pg2-partition": "pg2 in the partition {a} | {b, c}: a member dies on each side, b deletes lobby",
    "pg2-partition-heal": "pg2's heal: each side adds what it lacks (exchange)",
    "pg-partition": "pg in the partition {a} | {b, c}: a member dies on each side, lobby's members leave",
    "pg-partition-heal": "pg's heal: discover, then each side sends its own members (sync)",
}
TRACE_TIMEOUT = 150.0  # seconds for the whole traced run, cluster start and stop included

# == What a diagram is made of ===========================================================


@dataclass(frozen=True)
class Lane:
    """A process: one vertical line of the diagram."""

    key: str  # how events name it
    label: str  # what the picture shows, e.g. "pg2"
    node: str  # the node it lives on, e.g. "a"


@dataclass(frozen=True)
class Msg:
    """A message from one process to another.

    ``kind`` picks the arrow: ``call`` (a gen_server request), ``reply``,
    ``cast`` (gen_server cast or abcast), ``signal`` (a message from the
    runtime: ``'DOWN'``, ``nodeup``, ``nodedown``), ``info`` (a plain
    message, as pg's scope processes send each other: ``join``, ``discover``).
    """

    src: str
    dst: str
    label: str
    kind: str = "call"
    ignored: bool = False  # the receiver drops it (drawn faded)


@dataclass(frozen=True)
class Note:
    """Work a process does without a message (one box per lane, side by side)."""

    lanes: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Phase:
    """A band across the diagram that names a step."""

    text: str


@dataclass(frozen=True)
class Death:
    """A process (or a whole node's processes) ends here."""

    lanes: tuple[str, ...]
    text: str


@dataclass
class Diagram:
    """A sequence diagram: lanes left to right, events top to bottom."""

    name: str
    title: str
    lanes: list[Lane]
    events: list[Msg | Note | Phase | Death] = field(default_factory=list)


# == The four stories, read off the code =================================================

NODES = {"a": "a@127.0.0.1", "b": "b@127.0.0.1", "c": "c@127.0.0.1"}
LOCK = "{{pg2,g},C}"


def join_diagram() -> Diagram:
    """``pg2.join('g', P)`` called by process C on node a, all three nodes connected.

    Follows pg2:join/2, global:trans/4,
    global:set_lock_on_nodes/2, gen_server:multi_call/2, pg2:handle_call/3,
    global:del_lock/2.
    """
    lanes = [Lane("C", "C (caller)", "a")]
    for n in "abc":
        lanes += [Lane(f"gl{n}", "global_name_server", n), Lane(f"pg{n}", "pg2", n)]
    ev: list[Msg | Note | Phase | Death] = [
        Note(("C",), "join: does g exist?\n(a local ETS read)"),
        Phase("1  global:trans → set_lock: take the lock " + LOCK + " on [a, b, c]"),
        Note(("C",), "local_lock_check:\nglobal_locks read on a"),
    ]
    ev += [Msg("C", f"gl{n}", "{set_lock, " + LOCK + "}") for n in "abc"]
    ev += [Note(tuple(f"gl{n}" for n in "abc"), "insert_lock,\nmonitor C")]
    ev += [Msg(f"gl{n}", "C", "true", "reply") for n in "abc"]
    ev += [Phase("2  the work: gen_server:multi_call(pg2, {join, g, P}) to every node")]
    ev += [Msg("C", f"pg{n}", "{join, g, P}") for n in "abc"]
    ev += [Note(tuple(f"pg{n}" for n in "abc"), "join_group:\nrows + monitor P")]
    ev += [Msg(f"pg{n}", "C", "ok", "reply") for n in "abc"]
    ev += [Phase("3  del_lock: release " + LOCK + " on the same nodes")]
    ev += [Msg("C", f"gl{n}", "{del_lock, " + LOCK + "}") for n in "abc"]
    ev += [Note(tuple(f"gl{n}" for n in "abc"), "remove_lock,\ndemonitor C")]
    ev += [Msg(f"gl{n}", "C", "true", "reply") for n in "abc"]
    ev += [Note(("C",), "join returns ok")]
    return Diagram("join", TITLES["join"], lanes, ev)


def member_death_diagram() -> Diagram:
    """Member P on node b dies; every node's pg2 server monitors it.

    Follows pg2:handle_info/2 ('DOWN'),
    pg2:member_died/1, pg2:leave_group/2.
    """
    lanes = [
        Lane("pga", "pg2", "a"),
        Lane("P", "P (member of g)", "b"),
        Lane("rtb", "runtime", "b"),
        Lane("pgb", "pg2", "b"),
        Lane("pgc", "pg2", "c"),
    ]
    ev: list[Msg | Note | Phase | Death] = [
        Phase("1  P dies: each node's monitor on P fires"),
        Death(("P",), "P exits"),
        Msg("rtb", "pgb", "DOWN (killed)", "signal"),
        Msg("rtb", "pga", "DOWN (killed), over the a–b connection", "signal"),
        Msg("rtb", "pgc", "DOWN (killed), over b–c", "signal"),
        Note(("pga", "pgb", "pgc"), "member_died:\nleave_group per join"),
        Phase("2  member_died abcasts del_member to the other nodes: kept for old nodes, ignored"),
    ]
    for src in ("pga", "pgb", "pgc"):
        for dst in ("pga", "pgb", "pgc"):
            if src != dst:
                ev.append(Msg(src, dst, "{del_member, g, P}", "cast", ignored=True))
    ev.append(Note(("pga", "pgb", "pgc"), "every view:\ng without P"))
    return Diagram("member-death", TITLES["member-death"], lanes, ev)


def node_death_diagram() -> Diagram:
    """Node c is lost (killed, or cut off): its members leave every group, the groups stay.

    Follows the distribution's
    'noconnection' DOWNs, pg2:member_died/1, pg2:handle_info/2 (nodedown ignored).
    """
    lanes = [
        Lane("pga", "pg2", "a"),
        Lane("nka", "runtime", "a"),
        Lane("pgb", "pg2", "b"),
        Lane("nkb", "runtime", "b"),
        Lane("P3", "P3 (member of g)", "c"),
        Lane("pgc", "pg2", "c"),
    ]
    ev: list[Msg | Note | Phase | Death] = [
        Phase("1  node c is lost: its connections close (or stay silent for net_ticktime)"),
        Death(("P3", "pgc"), "node c gone"),
        Note(("nka", "nkb"), "connection to c\nlost"),
        Phase("2  every monitor across the lost connection fires 'DOWN' with noconnection"),
        Msg("nka", "pga", "DOWN (noconnection) for P3", "signal"),
        Msg("nkb", "pgb", "DOWN (noconnection) for P3", "signal"),
        Note(("pga", "pgb"), "member_died(Ref):\nP3 leaves g"),
        Msg("pga", "pgb", "{del_member, g, P3}", "cast", ignored=True),
        Msg("pgb", "pga", "{del_member, g, P3}", "cast", ignored=True),
        Phase("3  then nodedown: pg2 ignores it, the group g stays"),
        Msg("nka", "pga", "{nodedown, c}", "signal", ignored=True),
        Msg("nkb", "pgb", "{nodedown, c}", "signal", ignored=True),
        Note(("pga", "pgb"), "g still exists,\nwithout P3"),
    ]
    return Diagram("node-death", TITLES["node-death"], lanes, ev)


def heal_diagram() -> Diagram:
    """The partition {a} | {b, c} heals: each new connection starts an exchange both ways.

    Follows pg2:handle_info/2 (nodeup),
    pg2:handle_cast/2 (exchange), pg2:store/1.
    """
    lanes = []
    for n in "abc":
        lanes += [Lane(f"nk{n}", "runtime", n), Lane(f"pg{n}", "pg2", n)]
    ev: list[Msg | Note | Phase | Death] = [
        Phase("1  a and b connect (handshake, then nodeup on both sides)"),
        Msg("nka", "pga", "{nodeup, b}", "signal"),
        Msg("nkb", "pgb", "{nodeup, a}", "signal"),
        Msg("pga", "pgb", "{exchange, a, AllOfA}", "cast"),
        Msg("pgb", "pga", "{exchange, b, AllOfB}", "cast"),
        Note(("pga", "pgb"), "store: add what\nis missing"),
        Phase("2  a and c connect (transitive connection)"),
        Msg("nka", "pga", "{nodeup, c}", "signal"),
        Msg("nkc", "pgc", "{nodeup, a}", "signal"),
        Msg("pga", "pgc", "{exchange, a, AllOfA}", "cast"),
        Msg("pgc", "pga", "{exchange, c, AllOfC}", "cast"),
        Note(("pga", "pgc"), "store: add what\nis missing"),
        Note(("pga", "pgb", "pgc"), "union of both\nsides: nothing\nremoved"),
    ]
    return Diagram("heal", TITLES["heal"], lanes, ev)


# -- pg beside pg2: "From pg2 to pg" ---------------------------------------------------
#
# The partition stories have one cast: chat = a1, a2 (on a), b1 (on b), c1
# (on c); lobby = b2 (on b), c2 (on c). The cut is {a} | {b, c}; then a2
# dies on a, b1 dies on b, and lobby is emptied on the side of b and c
# (pg2: delete(lobby) called on b; pg: b2 and c2 leave, each on its node).


def pg_join_diagram() -> Diagram:
    """``pg.join('g', P)`` called by process C on node a: one local call, one message per peer.

    Follows pg:join/2, pg:handle_call/3 ({join_local, ...}),
    pg:broadcast/2, pg:handle_info/2 ({join, ...}).
    """
    lanes = [Lane("C", "C (caller)", "a")] + [Lane(f"pg{n}", "pg", n) for n in "abc"]
    ev: list[Msg | Note | Phase | Death] = [
        Phase("1  gen_server:call(pg, {join_local, g, P}): the scope process of a only"),
        Msg("C", "pga", "{join_local, g, P}"),
        Note(("pga",), "join_local: monitor P,\nadd P to g's row"),
        Phase("2  broadcast: one {join, Peer, g, P} to each peer scope process, then the reply"),
        Msg("pga", "pgb", "{join, PgA, g, P}", "info"),
        Msg("pga", "pgc", "{join, PgA, g, P}", "info"),
        Note(("pgb", "pgc"), "join_remote_update_ets:\nadd P to g"),
        Msg("pga", "C", "ok", "reply"),
        Note(("C",), "join returns ok"),
    ]
    return Diagram("pg-join", TITLES["pg-join"], lanes, ev)


def _runtime_and(server: str, nodes: str = "abc", caller: str = "") -> list[Lane]:
    """Lanes ``runtime`` and ``server`` on each node (and a caller on the nodes named in ``caller``)."""
    lanes = []
    for n in nodes:
        lanes.append(Lane(f"rt{n}", "runtime", n))
        if n in caller:
            lanes.append(Lane(f"C{n}", "caller", n))
        lanes.append(Lane(f"{server}{n}", server, n))
    return lanes


def pg2_partition_diagram() -> Diagram:
    """pg2 through the partition {a} | {b, c}: deaths, then a delete on one side.

    Follows pg2:handle_info/2 ('DOWN', nodedown), pg2:member_died/1,
    pg2:delete/1, global:trans/2.
    """
    lanes = _runtime_and("pg2", caller="b")
    lanes[4:4] = [Lane("glb", "global_name_server", "b")]
    lanes.insert(len(lanes) - 1, Lane("glc", "global_name_server", "c"))
    ev: list[Msg | Note | Phase | Death] = [Phase("1  the cut: every monitor across it fires (noconnection)")]
    ev += [Msg("rta", "pg2a", f"DOWN (noconnection) for {m}", "signal") for m in ("b1", "b2", "c1", "c2")]
    ev += [Msg("rta", "pg2a", "{nodedown, b}, {nodedown, c}", "signal", ignored=True)]
    ev += [Note(("pg2a",), "lobby stays,\nempty")]
    for n in "bc":
        ev += [Msg(f"rt{n}", f"pg2{n}", "DOWN (noconnection) for a1, a2", "signal")]
        ev += [Msg(f"rt{n}", f"pg2{n}", "{nodedown, a}", "signal", ignored=True)]
    ev += [Msg("pg2b", "pg2c", "{del_member, chat, a1}, ...", "cast", ignored=True)]
    ev += [
        Phase("2  on a: a2 dies; only a can still see it"),
        Msg("rta", "pg2a", "DOWN (killed) for a2", "signal"),
        Phase("3  on b: b1 dies; b and c each see it"),
        Msg("rtb", "pg2b", "DOWN (killed) for b1", "signal"),
        Msg("rtb", "pg2c", "DOWN (killed) for b1", "signal"),
        Msg("pg2b", "pg2c", "{del_member, chat, b1}", "cast", ignored=True),
        Phase("4  on b: delete(lobby): the lock and the multi_call reach b and c only"),
    ]
    ev += [Msg("Cb", f"gl{n}", "{set_lock, {{pg2,lobby},C}}") for n in "bc"]
    ev += [Msg(f"gl{n}", "Cb", "true", "reply") for n in "bc"]
    ev += [Msg("Cb", f"pg2{n}", "{delete, lobby}") for n in "bc"]
    ev += [Msg(f"pg2{n}", "Cb", "ok", "reply") for n in "bc"]
    ev += [Note(("pg2b", "pg2c"), "lobby deleted")]
    ev += [Msg("Cb", f"gl{n}", "{del_lock, {{pg2,lobby},C}}") for n in "bc"]
    ev += [Msg(f"gl{n}", "Cb", "true", "reply") for n in "bc"]
    return Diagram("pg2-partition", TITLES["pg2-partition"], lanes, ev)


def pg2_partition_heal_diagram() -> Diagram:
    """pg2's heal after :func:`pg2_partition_diagram`: the exchange brings lobby back.

    Follows pg2:handle_info/2 (nodeup), pg2:handle_cast/2 (exchange), pg2:store/1.
    """
    lanes = _runtime_and("pg2")
    ev: list[Msg | Note | Phase | Death] = []
    for n, phase in (("b", "1  a and b reconnect"), ("c", "2  a and c reconnect (transitively)")):
        ev += [
            Phase(phase + ": nodeup, then each pg2 server casts all its groups (exchange)"),
            Msg("rta", "pg2a", f"{{nodeup, {n}}}", "signal"),
            Msg(f"rt{n}", f"pg2{n}", "{nodeup, a}", "signal"),
            Msg("pg2a", f"pg2{n}", "{exchange, a, [[chat, [a1]], [lobby, []]]}", "cast"),
            Note((f"pg2{n}",), "store: lobby is\ncreated again"),
            Msg(f"pg2{n}", "pg2a", f"{{exchange, {n}, [[chat, [c1]]]}}", "cast"),
            Note(("pg2a",), "store: add c1"),
        ]
    return Diagram("pg2-partition-heal", TITLES["pg2-partition-heal"], lanes, ev)


def pg_partition_diagram() -> Diagram:
    """pg through the partition {a} | {b, c}: one DOWN per peer, leaves announced by the owner.

    Follows pg:handle_info/2 ('DOWN', nodedown), pg:leave_remote_update_ets/5,
    pg:leave/2, pg:handle_call/3 ({leave_local, ...}).
    """
    lanes = _runtime_and("pg", caller="bc")
    ev: list[Msg | Note | Phase | Death] = [
        Phase("1  the cut: one monitor per peer scope process fires (noconnection)")
    ]
    for n, peers in (("a", "bc"), ("b", "a"), ("c", "a")):
        for peer in peers:
            ev += [Msg(f"rt{n}", f"pg{n}", f"DOWN (noconnection) for pg@{peer}", "signal")]
            ev += [Msg(f"rt{n}", f"pg{n}", f"{{nodedown, {peer}}}", "signal", ignored=True)]
    ev += [Note(("pga",), "b's and c's members\nleave: lobby is gone")]
    ev += [
        Phase("2  on a: a2 dies; a's scope process alone monitors it"),
        Msg("rta", "pga", "DOWN (killed) for a2", "signal"),
        Note(("pga",), "a2 leaves chat;\nno peer to tell"),
        Phase("3  on b: b1 dies; b's scope process tells its peer"),
        Msg("rtb", "pgb", "DOWN (killed) for b1", "signal"),
        Msg("pgb", "pgc", "{leave, PgB, b1, [chat]}", "info"),
        Phase("4  b2 and c2 leave lobby, each through its own node's scope process"),
        Msg("Cb", "pgb", "{leave_local, lobby, b2}"),
        Msg("pgb", "pgc", "{leave, PgB, b2, [lobby]}", "info"),
        Msg("pgb", "Cb", "ok", "reply"),
        Msg("Cc", "pgc", "{leave_local, lobby, c2}"),
        Msg("pgc", "pgb", "{leave, PgC, c2, [lobby]}", "info"),
        Msg("pgc", "Cc", "ok", "reply"),
        Note(("pgb", "pgc"), "lobby has no member:\nits row is deleted"),
    ]
    return Diagram("pg-partition", TITLES["pg-partition"], lanes, ev)


def pg_partition_heal_diagram() -> Diagram:
    """pg's heal after :func:`pg_partition_diagram`: discover both ways, then each side's own members.

    Follows pg:handle_info/2 (nodeup, discover), pg:handle_cast/2 (sync), pg:handle_sync/6.
    """
    lanes = _runtime_and("pg")
    ev: list[Msg | Note | Phase | Death] = []
    for n, phase in (("b", "1  a and b reconnect"), ("c", "2  a and c reconnect (transitively)")):
        theirs = "[{chat, [c1]}]" if n == "c" else "[]"
        ev += [
            Phase(phase + ": nodeup, discover both ways, each answers with a sync"),
            Msg("rta", "pga", f"{{nodeup, {n}}}", "signal"),
            Msg(f"rt{n}", f"pg{n}", "{nodeup, a}", "signal"),
            Msg("pga", f"pg{n}", "{discover, PgA}", "info"),
            Msg(f"pg{n}", "pga", f"{{discover, Pg{n.upper()}}}", "info"),
            Msg("pga", f"pg{n}", "{sync, PgA, [{chat, [a1]}]}", "cast"),
            Msg(f"pg{n}", "pga", f"{{sync, Pg{n.upper()}, {theirs}}}", "cast"),
            Note(("pga", f"pg{n}"), "handle_sync: the peer's\nmembers, replaced"),
        ]
    return Diagram("pg-partition-heal", TITLES["pg-partition-heal"], lanes, ev)


def diagrams() -> list[Diagram]:
    """Return the diagrams, in the order of :data:`NAMES`."""
    return [
        join_diagram(),
        member_death_diagram(),
        node_death_diagram(),
        heal_diagram(),
        pg_join_diagram(),
        pg2_partition_diagram(),
        pg2_partition_heal_diagram(),
        pg_partition_diagram(),
        pg_partition_heal_diagram(),
    ]


# == Drawing ==============================================================================

STYLE = {  # kind -> (colour, line style, arrow head)
    "call": ("#1f4e9c", "-", "-|>"),
    "reply": ("#1f4e9c", (0, (4, 3)), "-|>"),
    "cast": ("#2b7a3d", "-", "->"),
    "signal": ("#b03a2e", (0, (1.5, 2)), "-|>"),
    "info": ("#7d3c98", "-", "->"),
}
NODE_COLOURS = {"a": "#eef3fb", "b": "#f1f8ee", "c": "#fdf3e7"}
LANE_W = 1.55  # inches per lane
STEP = {Msg: 0.36, Note: 0.62, Phase: 0.5, Death: 0.42}  # inches per event


def render(diagram: Diagram) -> bytes:
    """Draw one diagram; return the SVG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch, Rectangle

    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",  # text stays text: selectable, searchable, small
            "svg.hashsalt": "repg2",  # stable ids: the SVG changes only when the picture does
            "font.family": "DejaVu Sans",
            "font.size": 8.5,
        }
    )
    lanes = diagram.lanes
    x = {lane.key: 0.4 + LANE_W * (i + 0.5) for i, lane in enumerate(lanes)}
    width = 0.8 + LANE_W * len(lanes)
    head_h = 0.95  # node band + process boxes
    body = sum(STEP[type(e)] for e in diagram.events) + 0.3
    height = head_h + body + 0.55
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # y grows downwards, as time does
    ax.axis("off")
    fig.patch.set_facecolor("white")

    ax.text(0.25, 0.3, diagram.title, fontsize=11.5, fontweight="bold", va="center", ha="left")
    top = 0.55
    # Node bands: consecutive lanes of one node share a tinted column.
    i = 0
    while i < len(lanes):
        j = i
        while j + 1 < len(lanes) and lanes[j + 1].node == lanes[i].node:
            j += 1
        x0 = x[lanes[i].key] - LANE_W / 2 + 0.04
        x1 = x[lanes[j].key] + LANE_W / 2 - 0.04
        node = lanes[i].node
        ax.add_patch(Rectangle((x0, top), x1 - x0, height - top - 0.1, color=NODE_COLOURS.get(node, "#f4f4f4"), lw=0))
        ax.text(
            (x0 + x1) / 2,
            top + 0.14,
            f"node {node}",  # the short name, as the traced pictures head their nodes
            ha="center",
            va="center",
            fontsize=9,
            fontweight="bold",
            color="#333333",
        )
        i = j + 1
    y_lane_top = top + 0.55
    for lane in lanes:
        ax.add_patch(
            FancyBboxPatch(
                (x[lane.key] - LANE_W / 2 + 0.14, top + 0.3),
                LANE_W - 0.28,
                0.3,
                boxstyle="round,pad=0.01,rounding_size=0.05",
                fc="white",
                ec="#555555",
                lw=0.8,
            )
        )
        ax.text(x[lane.key], top + 0.45, lane.label, ha="center", va="center", fontsize=8.3)
    ends: dict[str, float] = {}
    y = y_lane_top + 0.15
    for event in diagram.events:
        step = STEP[type(event)]
        if isinstance(event, Phase):
            ax.plot([0.3, width - 0.3], [y + 0.08, y + 0.08], color="#999999", lw=0.6, zorder=1)
            ax.text(
                0.35,
                y + 0.25,
                event.text,
                ha="left",
                va="center",
                fontsize=8.8,
                fontstyle="italic",
                color="#333333",
                bbox={"fc": "white", "ec": "none", "pad": 1.0, "alpha": 0.85},
                zorder=4,
            )
        elif isinstance(event, Msg):
            colour, style, head = STYLE[event.kind]
            alpha = 0.45 if event.ignored else 1.0
            yy = y + step * 0.62
            x0, x1 = x[event.src], x[event.dst]
            ax.annotate(
                "",
                xy=(x1, yy + 0.06),
                xytext=(x0, yy - 0.02),
                zorder=3,
                arrowprops={
                    "arrowstyle": head + ",head_width=0.18,head_length=0.35",
                    "color": colour,
                    "linestyle": style,
                    "lw": 1.1,
                    "alpha": alpha,
                    "shrinkA": 0,
                    "shrinkB": 0,
                },
            )
            label = event.label + ("  (ignored)" if event.ignored else "")
            ax.text(
                (x0 + x1) / 2,
                yy - 0.06,
                label,
                ha="center",
                va="bottom",
                fontsize=7.6,
                color=colour,
                alpha=min(1.0, alpha + 0.25),
                family="DejaVu Sans Mono",
                zorder=5,
                bbox={"fc": "white", "ec": "none", "pad": 0.3, "alpha": 0.8},
            )
        elif isinstance(event, Note):
            for key in event.lanes:
                ax.add_patch(
                    FancyBboxPatch(
                        (x[key] - LANE_W / 2 + 0.12, y + 0.06),
                        LANE_W - 0.24,
                        step - 0.12,
                        boxstyle="round,pad=0.01,rounding_size=0.04",
                        fc="#fff8d6",
                        ec="#c9a800",
                        lw=0.6,
                        zorder=3,
                    )
                )
                ax.text(
                    x[key], y + step / 2, event.text, ha="center", va="center", fontsize=7.3, zorder=4, linespacing=1.15
                )
        elif isinstance(event, Death):
            for key in event.lanes:
                ends[key] = y + step / 2
                ax.plot([x[key]], [y + step / 2], marker="X", markersize=11, color="#b03a2e", zorder=4)
            first = event.lanes[-1]
            ax.text(
                x[first] + 0.16, y + step / 2, event.text, ha="left", va="center", fontsize=8, color="#b03a2e", zorder=4
            )
        y += step
    for lane in lanes:
        ax.plot([x[lane.key]] * 2, [top + 0.6, ends.get(lane.key, height - 0.35)], color="#777777", lw=0.9, zorder=2)
    # Legend: what each arrow means.
    ly = height - 0.22
    lx = 0.35
    used = {e.kind for e in diagram.events if isinstance(e, Msg)}
    legend = (
        ("call", "call"),
        ("reply", "reply"),
        ("cast", "cast / abcast"),
        ("signal", "runtime"),
        ("info", "message"),
    )
    for kind, text in legend:
        if kind not in used:
            continue
        colour, style, head = STYLE[kind]
        ax.annotate(
            "",
            xy=(lx + 0.45, ly),
            xytext=(lx, ly),
            arrowprops={
                "arrowstyle": head + ",head_width=0.15,head_length=0.3",
                "color": colour,
                "linestyle": style,
                "lw": 1.1,
                "shrinkA": 0,
                "shrinkB": 0,
            },
        )
        ax.text(lx + 0.55, ly, text, va="center", fontsize=7.8, color="#333333")
        lx += 1.55
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "docs/_scripts/make_figures.py"})
    plt.close(fig)
    return buf.getvalue()


# == Real traces ===========================================================================


def _until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)  # polling interval of a bounded wait for the nodes to agree
    raise RuntimeError(f"make_figures: timed out waiting for {what}")


def _first(trace: Any, label: str, nodes: set[str] | None = None) -> int:
    """Return the row of the first message with this label (and, for nodeup, between these nodes)."""
    for i, m in enumerate(trace.messages):
        if m.label != label and not m.label.startswith(label + " "):
            continue
        if nodes is None or {m.receiver_node.split("@")[0], str(m.msg[1]).split("@")[0]} == nodes:
            return i
    raise ValueError(f"make_figures: no {label!r} message in the trace")


def _rows(trace: Any, label: str) -> list[int]:
    """Return the rows of every message with this label (or label prefix)."""
    return [i for i, m in enumerate(trace.messages) if m.label == label or m.label.startswith(label + " ")]


def decorations(name: str, trace: Any) -> dict[str, Any]:
    """Return the phases, notes and ignored messages that make a trace's picture teach.

    Rows are found in the trace by label, so a trace whose messages come in
    another order (the nodes race) still gets its bands in the right places.
    """
    if name == "join":
        last = len(trace.messages) - 1
        return {
            "sections": {
                "1 lock": (0, "global:trans → set_lock {{pg2,g},C} on a, b and c; each node grants it"),
                "2 work": (
                    trace.index("$gen_call join"),
                    "multi_call(pg2, {join,g,P}): each pg2 server writes its own pg2_table",
                ),
                "3 release": (trace.index("$gen_call del_lock"), "del_lock on the same nodes"),
            },
            "notes": {last: "join returns ok"},
        }
    if name == "member-death":
        return {
            "sections": {"P is killed": (0, "every pg2 server monitors P: each gets its own DOWN (killed)")},
            "notes": {row: "member_died:\nP leaves g" for row in _rows(trace, "DOWN")},
            "ignored": ["$gen_cast del_member"],
        }
    if name == "node-death":
        notes = {row: "member_died:\nP3 leaves g" for row in _rows(trace, "DOWN")}
        downs = _rows(trace, "nodedown")
        if downs:
            notes[downs[-1]] = "nodedown is ignored:\ng stays, without P3"
        return {
            "sections": {
                "node c is killed": (0, "a and b lose their connection to c: DOWN (noconnection) for P3, then nodedown")
            },
            "notes": notes,
            "ignored": ["$gen_cast del_member", "nodedown"],
        }
    if name == "heal":
        return {
            "sections": {
                "1 a–b": (0, "a and b reconnect: nodeup on both sides, each casts all its groups (exchange)"),
                "2 a–c": (_first(trace, "nodeup", {"a", "c"}), "a and c reconnect (transitively): the same"),
            },
            "notes": {row: "store: add what\nis missing" for row in _rows(trace, "$gen_cast exchange")},
        }
    if name in ("pg2-partition", "pg2-partition-heal"):
        return pg2_partition_decorations(name, trace)
    if name in ("pg-join", "pg-partition", "pg-partition-heal"):
        return pg_decorations(name, trace)
    return {}


def _on(trace: Any, rows: list[int], node: str) -> list[int]:
    """Keep the rows whose message was received on ``node`` (its short name)."""
    return [i for i in rows if trace.messages[i].receiver_node.split("@")[0] == node]


def _groups(trace: Any, groups: list[Any]) -> str:
    """Write a list of ``(group, pids)`` the way the notes do, a group a line: ``chat [a1]`` (pids by alias)."""
    text = "\n".join(f"{group} [{', '.join(trace.label(pid) for pid in pids)}]" for group, pids in groups)
    return text or "none"


def _whose_down(trace: Any, row: int) -> str:
    """Name the process a ``'DOWN'`` is about (its alias: ``a2``)."""
    return str(trace.label(trace.messages[row].msg[3]))


def pg2_partition_decorations(name: str, trace: Any) -> dict[str, Any]:
    """Decorate pg2's side of "From pg2 to pg": the partition with its changes, and the heal."""
    if name == "pg2-partition":
        killed = _rows(trace, "DOWN (killed)")
        return {
            "sections": {
                "1 the cut": (0, "{a} | {b, c}: a DOWN (noconnection) for each member across the cut, then nodedown"),
                "2 on a": (killed[0], "a2 is killed: a's pg2 drops it (b and c did at the cut)"),
                "3 on b": (killed[1], "b1 is killed: the pg2 servers of b and c each get their own DOWN"),
                "4 on b": (
                    trace.index("$gen_call set_lock"),
                    "delete(lobby): the lock and the multi_call reach b and c, the nodes that answer",
                ),
            },
            "notes": {
                _on(trace, _rows(trace, "nodedown"), "a")[-1]: "lobby stays on a,\nwith no member",
                **{row: f"member_died: {_whose_down(trace, row)}\nleaves chat" for row in killed},
                **{row: "lobby deleted" for row in _rows(trace, "$gen_call delete")},
            },
            "ignored": ["$gen_cast del_member", "nodedown"],
        }

    def note(row: int) -> str:
        """Say what store/1 gets from this exchange; b and c deleted lobby, so an empty lobby comes back."""
        m = trace.messages[row]
        sent = [(group, pids) for group, pids in m.msg[1][2]]
        back = [group for group, pids in sent if not pids and m.receiver_node.split("@")[0] != "a"]
        lines = _groups(trace, [(group, pids) for group, pids in sent if group not in back])
        return "store: add what\nis missing of\n" + lines + "".join(f"\n{group}: back, empty" for group in back)

    return {
        "sections": {
            "1 a–b": (0, "a and b reconnect: nodeup on both sides, each casts all its groups (exchange)"),
            "2 a–c": (_first(trace, "nodeup", {"a", "c"}), "a and c reconnect (transitively): the same"),
        },
        "notes": {row: note(row) for row in _rows(trace, "$gen_cast exchange")},
    }


def pg_decorations(name: str, trace: Any) -> dict[str, Any]:
    """Decorate pg's side of "From pg2 to pg": the join, the partition with its changes, the heal."""
    if name == "pg-join":
        joins = _rows(trace, "join")
        return {
            "sections": {
                "1 call": (0, "gen_server:call(pg, {join_local, g, P}): the scope process of node a, no other"),
                "2 broadcast": (joins[0], "one {join, Peer, g, P} message to each peer; no lock, no reply awaited"),
            },
            "notes": {
                0: "join_local: monitor P,\nadd P to g",
                **{row: "join_remote_update_ets:\nadd P to g" for row in joins},
                len(trace.messages) - 1: "join returns ok",
            },
        }
    if name == "pg-partition":
        killed = _rows(trace, "DOWN (killed)")
        last_leaves = [_rows(trace, "$gen_call leave_local")[-1], _rows(trace, "leave")[-1]]
        return {
            "sections": {
                "1 the cut": (0, "{a} | {b, c}: one DOWN (noconnection) per peer scope process; all its members leave"),
                "2 on a": (killed[0], "a2 is killed: its own node's scope process alone monitors it"),
                "3 on b": (killed[1], "b1 is killed: b's scope process sees it and sends its peer one leave"),
                "4 lobby": (
                    trace.index("$gen_call leave_local"),
                    "b2 leaves on b, c2 on c: a local call, and one leave to the peer",
                ),
            },
            "notes": {
                _on(trace, _rows(trace, "DOWN (noconnection)"), "a")[-1]: "b's and c's members\nleave: lobby is gone",
                killed[0]: f"{_whose_down(trace, killed[0])} leaves chat;\nno peer to tell",
                killed[1]: f"{_whose_down(trace, killed[1])} leaves chat;\ntell the peer",
                **{row: "lobby's last\nmember left:\nits row goes" for row in last_leaves},
            },
            "ignored": ["nodedown"],
        }
    notes: dict[int, str] = {}
    seen: dict[tuple[Any, str], Any] = {}  # (peer, receiving node) -> the groups of its last sync
    for row in _rows(trace, "$gen_cast sync"):
        m = trace.messages[row]
        _tag, peer, groups = m.msg[1]
        key = (peer, m.receiver_node)
        if seen.get(key) == groups:
            notes[row] = "same sync again:\nno change"
        else:
            peer_node = str(peer.node).split("@")[0]
            notes[row] = f"handle_sync: {peer_node}'s\nmembers are now\n{_groups(trace, groups)}"
        seen[key] = groups
    return {
        "sections": {
            "1 a–b": (0, "a and b reconnect: nodeup, then discover both ways; each discover is answered by a sync"),
            "2 a–c": (_first(trace, "nodeup", {"a", "c"}), "a and c reconnect (transitively): the same"),
        },
        "notes": notes,
    }


def trace_all(outdir: Path) -> None:
    """Run the scenarios of :data:`NAMES` on a real 3-node cluster, saving each trace as SVG and text.

    This process becomes node a. Must run as a script (``--trace``), never
    inside another node: it starts and stops its own cluster.
    """
    sys.path.insert(0, str(ROOT))
    from repg2 import erlang, pg, pg2
    from repg2.testing import Cluster, member_loop
    from repg2.testing.nodefuns import start_pg_scope
    from repg2.testing.pg_nodes import known_peers
    from repg2.tools.trace import Tracer

    def save(name: str, trace: Any) -> None:
        _write(outdir / f"{name}.svg", trace.diagram(TITLES[name], **decorations(name, trace)).svg().encode("utf-8"))
        _write(outdir / f"{name}.log", (trace.log(width=260) + "\n").encode("utf-8"))  # the whole message, scrolled

    def views(nodes: list[str]) -> list[Any]:
        return [sorted(cluster.rpc(n, pg2.get_members, "g")) for n in nodes]

    with Cluster(3) as cluster:
        a, b, c = cluster.nodes
        for node in cluster.nodes:
            cluster.rpc(node, pg2.start)
        pg2.create("g")
        _until(lambda: all(cluster.rpc(n, pg2.which_groups) == ["g"] for n in cluster.nodes), "g everywhere")

        # 1. One join, by this process (C), of a member P on this node.
        me = erlang.self()
        p = erlang.spawn(member_loop)
        with Tracer(cluster, ["global_name_server", "pg2", me], aliases={me: "C (caller)", p: "P"}) as tracer:
            pg2.join("g", p)
        save("join", tracer.trace)
        pg2.leave("g", p)
        _until(lambda: views(cluster.nodes) == [[]] * 3, "an empty g")

        # 2. A member on b is killed; every node's pg2 server monitors it.
        p = cluster.spawn(b, member_loop)
        cluster.rpc(b, pg2.join, "g", p)
        _until(lambda: views(cluster.nodes) == [[p]] * 3, "P in g everywhere")
        with Tracer(cluster, ["pg2"]) as tracer:  # P's DOWNs come from b's runtime, not from P
            cluster.rpc(b, erlang.exit, p, "kill")
            _until(lambda: views(cluster.nodes) == [[]] * 3, "P gone everywhere")
        save("member-death", tracer.trace)

        # 3. Node c, with its member P3, is killed (SIGKILL).
        p3 = cluster.spawn(c, member_loop)
        cluster.rpc(c, pg2.join, "g", p3)
        _until(lambda: views(cluster.nodes) == [[p3]] * 3, "P3 in g everywhere")
        with Tracer(cluster, ["pg2"]) as tracer:  # the DOWNs for P3 come from a's and b's runtimes
            cluster.kill(c)
            _until(lambda: views([a, b]) == [[]] * 2, "P3 gone on a and b")
        save("node-death", tracer.trace)
        cluster.restart(c)
        _until(lambda: cluster.rpc(c, pg2.which_groups) == ["g"], "g back on the restarted c")

        # 4. A partition with a join on each side, then the heal.
        cluster.partition([a], [b, c])
        d = erlang.spawn(member_loop)
        pg2.join("g", d)
        e = cluster.spawn(b, member_loop)
        cluster.rpc(b, pg2.join, "g", e)
        _until(lambda: views([a]) == [[d]] and views([b, c]) == [[e]] * 2, "each side's join")
        with Tracer(cluster, ["pg2"]) as tracer:
            cluster.heal()
            _until(lambda: views(cluster.nodes) == [sorted([d, e])] * 3, "the union everywhere")
        save("heal", tracer.trace)
        pg2.delete("g")
        _until(lambda: all(cluster.rpc(n, pg2.which_groups) == [] for n in cluster.nodes), "no pg2 group left")

        # 5. pg2 in a partition with changes on both sides, then its heal (see pg2_partition_diagram).
        trace_partition(cluster, "pg2", save)

        # 6. pg: start its default scope on every node, as OTP's kernel does with start_pg.
        for node in cluster.nodes:
            cluster.rpc(node, start_pg_scope)
        _until(lambda: all(len(cluster.rpc(n, known_peers, "pg")) == 2 for n in cluster.nodes), "pg's overlay")
        p = erlang.spawn(member_loop)
        with Tracer(cluster, ["pg", me], aliases={me: "C (caller)", p: "P"}) as tracer:
            pg.join("g", p)
        save("pg-join", tracer.trace)
        _until(lambda: all(cluster.rpc(n, pg.get_members, "g") == [p] for n in cluster.nodes), "P in g everywhere")
        pg.leave("g", p)
        _until(lambda: all(cluster.rpc(n, pg.which_groups) == [] for n in cluster.nodes), "no pg group left")

        # 7. pg in the same partition, with the same changes (lobby emptied instead of deleted).
        trace_partition(cluster, "pg", save)


CAST = (("a1", 0), ("a2", 0), ("b1", 1), ("b2", 1), ("c1", 2), ("c2", 2))  # a member's name, its node's index
CHAT, LOBBY = ("a1", "a2", "b1", "c1"), ("b2", "c2")  # the two groups of the partition stories


def trace_partition(cluster: Any, system: str, save: Callable[[str, Any], None]) -> None:
    """Run the partition story on ``system`` ('pg2' or 'pg'); save ``<system>-partition`` and ``-heal``.

    The cast and the steps are those of :func:`pg2_partition_diagram`: the
    cut {a} | {b, c}, a2 killed on a, b1 killed on b, lobby emptied on b
    and c (pg2 deletes it; in pg its two members leave, each on its own
    node), then the heal.
    """
    from repg2 import erlang, pg, pg2
    from repg2.testing import member_loop
    from repg2.tools.trace import Tracer

    a, b, c = cluster.nodes
    home = {name: cluster.nodes[i] for name, i in CAST}
    m = {name: cluster.spawn(home[name], member_loop) for name, _ in CAST}
    lib: Any = pg2 if system == "pg2" else pg

    def view(node: str, group: str) -> set[Any]:
        """The members of ``group`` that ``node`` lists (none if it has no such group)."""
        found = cluster.rpc(node, lib.get_members, group)
        return set(found) if isinstance(found, list) else set()

    def sees(nodes: list[str], group: str, *who: str) -> Callable[[], bool]:
        """A condition: each of ``nodes`` lists exactly these members of ``group``."""
        return lambda: all(view(n, group) == {m[x] for x in who} for n in nodes)

    if system == "pg2":
        pg2.create("chat")
        pg2.create("lobby")
        for group, who in (("chat", CHAT), ("lobby", LOBBY)):
            for x in who:
                pg2.join(group, m[x])  # pg2 joins any pid, from any node
    else:
        for group, who in (("chat", CHAT), ("lobby", LOBBY)):
            for x in who:
                cluster.rpc(home[x], pg.join, group, m[x])  # pg joins only local pids: each on its node
    _until(sees(cluster.nodes, "chat", *CHAT), "chat everywhere")
    _until(sees(cluster.nodes, "lobby", *LOBBY), "lobby everywhere")

    procs = ["global_name_server", "pg2"] if system == "pg2" else ["pg"]
    names = {pid: name for name, pid in m.items()}  # they name the members in the notes
    with Tracer(cluster, procs, aliases=names) as tracer:
        cluster.partition([a], [b, c])
        _until(sees([a], "chat", "a1", "a2"), "a to drop b's and c's members")
        _until(sees([b, c], "chat", "b1", "c1"), "b and c to drop a's members")
        erlang.exit(m["a2"], "kill")
        _until(sees([a], "chat", "a1"), "a2 gone on a")
        cluster.rpc(b, erlang.exit, m["b1"], "kill")
        _until(sees([b, c], "chat", "c1"), "b1 gone on b and c")
        if system == "pg2":
            cluster.rpc(b, pg2.delete, "lobby")
        else:
            cluster.rpc(b, pg.leave, "lobby", m["b2"])
            cluster.rpc(c, pg.leave, "lobby", m["c2"])
        _until(lambda: all("lobby" not in cluster.rpc(n, lib.which_groups) for n in (b, c)), "lobby gone on b, c")
    partition: Any = tracer.trace
    for call in ("$gen_call set_lock", "$gen_call leave_local"):  # rpc processes: name them by their part
        for msg in partition.find(call):
            partition.aliases[msg.sender] = "caller"
    save(f"{system}-partition", partition)

    with Tracer(cluster, [system], aliases=names) as tracer:
        cluster.heal()
        _until(sees(cluster.nodes, "chat", "a1", "c1"), "chat healed")
        left = ["chat", "lobby"] if system == "pg2" else ["chat"]  # pg2 brings lobby back, empty
        _until(lambda: all(sorted(cluster.rpc(n, lib.which_groups)) == left for n in cluster.nodes), "groups")
    save(f"{system}-partition-heal", tracer.trace)
    for x in ("a1", "b2", "c1", "c2"):
        cluster.rpc(home[x], erlang.exit, m[x], "kill")


# == Choosing, writing, saying where the pictures come from ====================================


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` unless the file already holds it."""
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def code_hash() -> str:
    """Hash the code the pictures depend on: ``repg2/**/*.py`` and this script."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "repg2").rglob("*.py")) + [Path(__file__).resolve()]:
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _free_port() -> int:
    """Return a TCP port that was free a moment ago (for a private port mapper)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def trace_in_child(outdir: Path) -> None:
    """Run ``--trace`` in a child process with its own port mapper port; raise if it fails."""
    env = dict(os.environ, ERL_EPMD_PORT=str(_free_port()), REPG2_PORT_MAPPER="repg2")
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(outdir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TRACE_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tracing failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def draw_by_hand(outdir: Path, only_missing: bool = False) -> None:
    """Draw the hand-listed diagrams (all, or only those with no picture yet)."""
    for diagram in diagrams():
        path = outdir / f"{diagram.name}.svg"
        if only_missing and path.exists():
            continue
        _write(path, render(diagram))
        (outdir / f"{diagram.name}.log").unlink(missing_ok=True)


def _state(outdir: Path) -> dict[str, Any]:
    """Read ``figures.json`` (``{}`` if there is none)."""
    try:
        return dict(json.loads((outdir / "figures.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _set_state(outdir: Path, source: str, code: str, note: str = "") -> None:
    """Record where the pictures came from, and for which code."""
    state = {"source": source, "code": code, "note": note}
    _write(outdir / "figures.json", (json.dumps(state, indent=1, sort_keys=True) + "\n").encode("utf-8"))


def main(outdir: Path | str | None = None, mode: str | None = None) -> list[Path]:
    """Make sure ``OUTDIR/<name>.svg`` exist, as :data:`REPG2_DOCS_FIGURES` says; return their paths."""
    out = Path(outdir) if outdir else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    mode = mode or os.environ.get("REPG2_DOCS_FIGURES", "auto")
    complete = all((out / f"{n}.svg").exists() for n in NAMES)
    state = _state(out)
    code = code_hash()
    if mode == "hand":
        draw_by_hand(out)
        _set_state(out, "hand", code)
    elif mode == "keep":
        if not complete:
            draw_by_hand(out, only_missing=True)
            _set_state(out, "hand", state.get("code", code))
    elif mode == "trace" or (mode == "auto" and not (complete and state.get("code") == code)):
        try:
            trace_in_child(out)
            _set_state(out, "trace", code)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            if mode == "trace":
                raise
            why = f"tracing failed: {str(exc).splitlines()[0]}"
            print(f"make_figures: {why}", file=sys.stderr)
            if complete and state.get("source") == "trace":
                # Keep the traces there are (committed, say): a machine that
                # cannot start nodes must not replace them with drawings.
                _set_state(out, "trace", str(state.get("code", "?")), f"from older code; {why}")
            else:
                draw_by_hand(out)
                _set_state(out, "hand", code, why)
    elif mode != "auto":
        raise ValueError(f"REPG2_DOCS_FIGURES must be auto, trace, keep or hand, not {mode!r}")
    return [out / f"{n}.svg" for n in NAMES]


def source_note(outdir: Path | str | None = None) -> str:
    """Say, in MyST, where the pictures on the page come from."""
    state = _state(Path(outdir) if outdir else DEFAULT_OUT)
    if state.get("source") == "trace":
        return (
            "These pictures are **real traces**: `docs/_scripts/make_figures.py` starts three real nodes "
            "with {py:class}`~repg2.testing.cluster.Cluster`, runs each scenario under a "
            "{py:class}`repg2.tools.trace.Tracer` and saves the trace's sequence diagram, whenever the docs are "
            f"built after the code changed (code `{state.get('code', '?')}`"
            + (f"; {state['note']}" if state.get("note") else "")
            + "). Times on the left are milliseconds since the trace started; pids print as `<node.id.0>`. "
            "The bands with their headings and the yellow notes are added by the script, placed by the "
            "trace's labels; the arrows are what was recorded. Under each picture, the same trace as text."
        )
    why = f" ({state['note']})" if state.get("note") else ""
    return (
        "These pictures are **drawn from hand-written message lists** in `docs/_scripts/make_figures.py`, "
        "read off the code of {py:mod}`repg2.pg2`, {py:mod}`repg2.global_` and {py:mod}`repg2.gen_server`"
        f"{why}. With {{py:mod}}`repg2.tools.trace` available the docs build records them from a real cluster instead."
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    target = Path(args[0]) if args else DEFAULT_OUT
    if "--child" in sys.argv:  # the child run of trace_in_child: this process becomes node a
        target.mkdir(parents=True, exist_ok=True)
        trace_all(target)
    else:
        chosen = "trace" if "--trace" in sys.argv else "hand" if "--hand" in sys.argv else None
        for written in main(target, chosen):
            print(written)
