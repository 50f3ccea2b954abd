"""The message tracer: what a join across three nodes sends, and that tracing off costs no hook.

The distributed cases trace real nodes (``Cluster``) and assert on the
*set* of messages a pg2 write sends (the order between nodes is not fixed,
the phases are: lock, work, release). The others run on this node alone, or
on hand-made events for the pairing of sends with receipts. Waiting is on
conditions with deadlines, never on fixed sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import recv, wait_until

from repg2 import erlang, net_kernel, pg2
from repg2.erlang import Pid, Ref
from repg2.testing import Cluster, member_loop
from repg2.tools import trace
from repg2.tools.drawing import format_term
from repg2.tools.trace import Event, Tracer, tag_of

pytestmark = pytest.mark.timeout(60)

GNS = "global_name_server"


@pytest.fixture(autouse=True)
def no_trace_hook_left() -> Iterator[None]:
    """Take out any trace hook a test left behind, so the runtime runs untraced afterwards."""
    yield
    erlang._set_trace_hook(None)


# == Across three nodes ===========================================================================


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_join_across_three_nodes_is_traced(pg2_cluster3: Cluster, tmp_path) -> None:
    """A join takes the lock on the three global servers, calls the three pg2 servers, and releases."""
    nodes = pg2_cluster3.nodes
    me = erlang.self()
    assert pg2.create("traced") == "ok"
    member = pg2_cluster3.spawn(nodes[1], member_loop)
    with Tracer(pg2_cluster3, [GNS, "pg2", me], aliases={me: "caller"}) as tracer:
        assert pg2.join("traced", member) == "ok"
    tr = tracer.trace
    assert tr is not None and not tr.missing and not tr.dropped

    def to_each(label: str, server: str) -> list[trace.Message]:
        """The calls with this label from the caller: exactly one to ``server`` on each node."""
        calls = tr.find(label, sender=me, receiver=server)
        assert sorted(m.receiver_node for m in calls) == sorted(nodes), tr.log()
        return calls

    set_locks = to_each("$gen_call set_lock", GNS)
    joins = to_each("$gen_call join", "pg2")
    del_locks = to_each("$gen_call del_lock", GNS)
    for calls, answer in ((set_locks, True), (joins, "ok"), (del_locks, True)):
        for call in calls:
            assert call.msg[2][0] in ("set_lock", "join", "del_lock")
            # Each call has its reply, from the server called, back to the caller.
            tag = call.msg[1][1]
            replies = [m for m in tr.messages if m.msg == (tag, answer)]
            assert len(replies) == 1, tr.log()
            assert replies[0].sender == call.receiver and replies[0].receiver == me
    assert joins[0].msg[2] == ("join", "traced", member)
    # Lock, then work, then release: the phases do not overlap.
    assert max(m.sent for m in set_locks) < min(m.sent for m in joins)
    assert max(m.sent for m in joins) < min(m.sent for m in del_locks)
    # Remote messages are paired: sent on one node, received on another, none lost.
    assert all(m.received is not None and m.received >= m.sent - 0.001 for m in tr.messages)
    assert len(tr.messages) == 18, tr.log()
    text = tr.log()
    assert "caller@a" in text and "global_name_server@c" in text and "$gen_call del_lock" in text
    png = tr.save(tmp_path / "join.png")
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_create_of_an_existing_group_sends_nothing(pg2_cluster3: Cluster) -> None:
    """pg2:create/1 of a group this node knows reads its own table and sends no message at all."""
    me = erlang.self()
    assert pg2.create("known") == "ok"
    with Tracer(pg2_cluster3, [GNS, "pg2", me]) as tracer:
        assert pg2.create("known") == "ok"
        assert pg2.get_members("known") == []
    assert tracer.trace is not None and tracer.trace.messages == []
    assert "(no messages)" in tracer.trace.log()
    # Every traced server still gets a lifeline in the (empty) picture.
    assert len(tracer.trace.watched) == 2 * len(pg2_cluster3.nodes) + 1


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_tracing_off_leaves_no_hook_on_any_node(pg2_cluster3: Cluster) -> None:
    """Before start and after stop, no node's message path has a hook; in between, every node's has."""
    nodes = pg2_cluster3.nodes
    assert erlang._trace_hook is None
    assert [pg2_cluster3.rpc(n, trace.is_tracing) for n in nodes] == [False] * 3
    tracer = Tracer(pg2_cluster3, ["pg2"]).start()
    try:
        assert [pg2_cluster3.rpc(n, trace.is_tracing) for n in nodes] == [True] * 3
    finally:
        tracer.stop()
    assert [pg2_cluster3.rpc(n, trace.is_tracing) for n in nodes] == [False] * 3
    assert erlang._trace_hook is None


# == On this node ===================================================================================


def test_local_join_is_three_calls_and_three_replies(fresh_pg2: list[Pid]) -> None:
    """On a lone node a join is set_lock, join and del_lock to the local servers, each answered."""
    pg2.start()
    me = erlang.self()
    assert pg2.create("solo") == "ok"
    member = erlang.spawn(member_loop)
    with Tracer(None, [GNS, "pg2", me], aliases={me: "caller"}) as tracer:
        assert pg2.join("solo", member) == "ok"
    tr = tracer.trace
    assert tr is not None
    assert tr.labels() == [
        "$gen_call set_lock",
        "reply true",
        "$gen_call join",
        "reply ok",
        "$gen_call del_lock",
        "reply true",
    ]
    assert [tr.label(m.sender) for m in tr.messages] == ["caller", GNS, "caller", "pg2", "caller", GNS]
    assert "(caller) << " in tr.format_events() and "(pg2) << " in tr.format_events()
    erlang.exit(member, "kill")


def test_a_member_death_shows_as_down_from_the_runtime_with_its_reason(fresh_pg2: list[Pid]) -> None:
    """The pg2 server's 'DOWN' for a dead member is drawn from the runtime of the member's node, labelled with its reason."""
    pg2.start()
    member = erlang.spawn(member_loop)
    assert pg2.create("mortal") == "ok"
    assert pg2.join("mortal", member) == "ok"
    with Tracer(None, ["pg2"], aliases={member: "alice"}) as tracer:
        erlang.exit(member, "kill")
        wait_until(lambda: pg2.get_members("mortal") == [], "pg2 to see the member die")
    tr = tracer.trace
    assert tr is not None
    downs = tr.find("DOWN", receiver="pg2")
    assert len(downs) == 1 and downs[0].from_runtime and downs[0].sender is None
    assert downs[0].label == "DOWN (killed)" and downs[0].sender_node == member.node
    assert tr.find("DOWN", sender="runtime") == downs
    assert tr.sender_of(downs[0]) == "runtime@nonode" and "runtime@nonode" in tr.log()
    svg = tr.diagram().svg()
    assert "DOWN (killed)" in svg and ">runtime</text>" in svg  # the runtime has a lifeline of its own


def test_nodeup_from_net_kernel_comes_from_the_runtime_but_a_self_sent_one_does_not(isolated_runtime: None) -> None:
    """A nodeup that net_kernel hands out is the runtime's; one a process sends itself (as pg2:init/1 does) is its own."""
    me = erlang.self()
    assert net_kernel.monitor_nodes(True) == "ok"
    try:
        with Tracer(None, [me], aliases={me: "me"}) as tracer:
            net_kernel._nodeup("x@h")  # the delivery runs on this very process's thread
            erlang.send(me, ("nodeup", "y@h"))
            assert recv(lambda m: m == ("nodeup", "x@h"), "net_kernel's nodeup") == ("nodeup", "x@h")
            assert recv(lambda m: m == ("nodeup", "y@h"), "the self-sent nodeup") == ("nodeup", "y@h")
    finally:
        net_kernel.monitor_nodes(False)
    tr = tracer.trace
    assert tr is not None
    by_net_kernel, self_sent = tr.messages
    assert by_net_kernel.label == "nodeup (x)" and by_net_kernel.from_runtime
    assert tr.sender_of(by_net_kernel) == "runtime@nonode"
    assert self_sent.label == "nodeup (y)" and not self_sent.from_runtime and self_sent.sender == me


def test_tracing_off_adds_no_hook(fresh_pg2: list[Pid]) -> None:
    """Without a tracer the runtime's hook is None; a tracer plugs it in and takes it out again."""
    assert erlang._trace_hook is None and not trace.is_tracing()
    tracer = Tracer(None, ["pg2"]).start()
    assert trace.is_tracing()
    tracer.stop()
    assert erlang._trace_hook is None and not trace.is_tracing()


def test_untraced_processes_are_not_recorded(fresh_pg2: list[Pid]) -> None:
    """Messages between processes that are not traced leave no record."""
    me = erlang.self()
    with Tracer(None, ["pg2"]) as tracer:
        erlang.send(me, "hello")
        assert recv() == "hello"
    assert tracer.trace is not None and tracer.trace.messages == []


def test_all_traces_every_process(fresh_pg2: list[Pid]) -> None:
    """``'all'`` traces every process, as dbg:p(all, m): a message between two unnamed processes is kept."""
    me = erlang.self()
    with Tracer(None, ["all"], aliases={me: "me"}) as tracer:
        erlang.send(me, ("ping", 1))
        assert recv() == ("ping", 1)
    assert tracer.trace is not None
    (m,) = tracer.trace.find("ping")
    assert m.sender == me and m.receiver == me and tracer.trace.who(me) == "me@nonode"


def test_the_picture_renders_to_svg_and_png(fresh_pg2: list[Pid], tmp_path) -> None:
    """The sequence diagram saves as SVG and PNG; the same trace saves to the same SVG twice."""
    pg2.start()
    me = erlang.self()
    assert pg2.create("drawn") == "ok"
    with Tracer(None, [GNS, "pg2", me], aliases={me: "caller"}) as tracer:
        assert pg2.join("drawn", me) == "ok"
    tr = tracer.trace
    assert tr is not None
    svg = tr.save(tmp_path / "join.svg", title="pg2:join/2 on one node")
    png = tr.diagram().save(tmp_path / "join.png")
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert "$gen_call set_lock" in text and "global_name_server" in text  # text stays text
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    again = tr.save(tmp_path / "again.svg", title="pg2:join/2 on one node")
    assert again.read_text() == text
    phases = {"lock": 0, "work": tr.index("$gen_call join"), "release": tr.index("$gen_call del_lock")}
    assert phases == {"lock": 0, "work": 2, "release": 4}
    assert "release" in tr.diagram(sections=phases).svg()
    with pytest.raises(ValueError):
        tr.index("$gen_call nothing")
    assert tr._repr_png_().startswith(b"\x89PNG")
    with pytest.raises(ValueError):
        tr.save(tmp_path / "join.pdf")
    assert pg2.leave("drawn", me) == "ok"


# == Pairing sends with receipts (hand-made events) ==================================================

A, B = "a@h", "b@h"


def event(kind: str, node: str, t: float, sender: Pid | None, receiver: Pid | None, msg: object, **kw) -> Event:
    """An event as a node's recorder would make it."""
    return Event(
        kind,
        node,
        t,
        kw.get("seq", 0),
        sender,
        kw.get("sender_name"),
        receiver,
        kw.get("receiver_name"),
        kw.get("receiver_node", node if receiver is None else receiver.node),
        msg,
        kw.get("traced", True),
    )


def test_sends_pair_with_receipts_in_order_and_the_rest_are_lost() -> None:
    """Two equal messages pair first-with-first; a send without a receipt is lost; stray arrivals drop."""
    p, q = Pid(A, 1, 1), Pid(B, 2, 1)
    events = [
        event("send", A, 1.0, p, q, "ping", seq=0),
        event("send", A, 2.0, p, q, "ping", seq=1),
        event("send", A, 3.0, p, None, "pong", receiver_name="srv", receiver_node=B, seq=2),
        event("receive", B, 1.5, None, q, "ping", seq=0),
        event("receive", B, 2.5, None, q, "ping", seq=1),
        event("receive", B, 2.6, None, q, "unrelated", traced=False, seq=2),
    ]
    tr = trace._build(events, [A, B], 0.0, {}, {}, [], 0, [])
    assert [(m.msg, m.sent, m.received) for m in tr.messages] == [
        ("ping", 1.0, 1.5),
        ("ping", 2.0, 2.5),
        ("pong", 3.0, None),
    ]
    assert all(m.sender == p for m in tr.messages)
    assert tr.messages[2].receiver_name == "srv" and "lost" in tr.log()


def test_a_send_by_name_pairs_with_the_receipt_of_that_name() -> None:
    """A send to (name, node) is claimed by the receipt of the process registered under that name."""
    p, srv = Pid(A, 1, 1), Pid(B, 7, 1)
    events = [
        event("send", A, 1.0, p, None, ("x", 1), receiver_name="pg2", receiver_node=B),
        event("receive", B, 1.2, None, srv, ("x", 1), receiver_name="pg2"),
    ]
    tr = trace._build(events, [A, B], 0.0, {}, {}, ["pg2"], 0, [])
    (m,) = tr.messages
    assert m.sender == p and m.receiver == srv and m.received == 1.2
    assert tr.who(m.receiver) == "pg2@b"


def test_the_runtime_that_made_a_down_is_the_dead_process_node_or_for_noconnection_the_receiver() -> None:
    """A 'DOWN' comes from the dead process's node, a 'noconnection' one and a nodedown from the receiver's own node."""
    dead, watcher = Pid(B, 5, 1), Pid(A, 1, 1)
    killed = ("DOWN", Ref(A, 3), "process", dead, "killed")
    lost = ("DOWN", Ref(A, 4), "process", dead, "noconnection")
    events = [
        event("receive", A, 1.0, None, watcher, killed, seq=0),
        event("receive", A, 2.0, None, watcher, lost, seq=1),
        event("receive", A, 3.0, None, watcher, ("nodedown", B), seq=2),
        event("receive", A, 4.0, None, watcher, ("EXIT", dead, "normal"), seq=3),
    ]
    tr = trace._build(events, [A, B], 0.0, {}, {watcher: "w"}, [], 0, [])
    assert [m.label for m in tr.messages] == ["DOWN (killed)", "DOWN (noconnection)", "nodedown (b)", "EXIT (normal)"]
    assert all(m.from_runtime and m.sender is None for m in tr.messages)
    assert [tr.sender_of(m) for m in tr.messages] == ["runtime@b", "runtime@a", "runtime@a", "runtime@b"]
    # In the picture each comes from the runtime lifeline of its node, and no sender is unknown.
    diagram = tr.diagram()
    lines, _nodes = diagram._lifelines(tr.messages)
    assert [(line.label, line.node) for line in lines] == [("runtime", A), ("w", A), ("runtime", B)]
    assert "sender unknown" not in diagram.svg()


def test_an_ignored_message_is_drawn_faded_and_marked() -> None:
    """A message whose label is listed as ignored gets a faded arrow and an '(ignored)' label; the others do not."""
    p, q = Pid(A, 1, 1), Pid(B, 2, 1)
    events = [
        event("send", A, 1.0, p, q, ("$gen_cast", ("del_member", "g", p)), seq=0),
        event("receive", B, 1.5, None, q, ("$gen_cast", ("del_member", "g", p)), seq=0),
        event("send", A, 2.0, p, q, ("$gen_cast", ("exchange", A, [])), seq=1),
        event("receive", B, 2.5, None, q, ("$gen_cast", ("exchange", A, [])), seq=1),
    ]
    tr = trace._build(events, [A, B], 0.0, {}, {p: "p", q: "q"}, [], 0, [])
    diagram = tr.diagram(ignored=["$gen_cast del_member"])
    assert [diagram.is_ignored(m) for m in tr.messages] == [True, False]
    (ax,) = diagram.figure.axes
    labels = {t.get_text(): t for t in ax.texts if t.get_text().startswith("$gen_cast")}
    assert set(labels) == {"$gen_cast del_member (ignored)", "$gen_cast exchange"}
    assert labels["$gen_cast del_member (ignored)"].get_alpha() < 1.0
    assert labels["$gen_cast exchange"].get_alpha() in (None, 1.0)
    arrows = [t.arrow_patch for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    assert sorted(a.get_alpha() for a in arrows) == [trace.FADED, 1.0]
    assert "ignored by its receiver" in diagram.svg()


def test_phases_are_bands_with_headings_and_notes_sit_under_their_message() -> None:
    """Each phase gets a heading (name and note) above its first message; a note box follows its message."""
    p, q = Pid(A, 1, 1), Pid(B, 2, 1)
    msgs = [("$gen_call", (p, Ref(A, i)), ("step", i)) for i in range(4)]
    events = [event("send", A, float(i), p, q, msg, seq=i) for i, msg in enumerate(msgs)]
    events += [event("receive", B, i + 0.5, None, q, msg, seq=i) for i, msg in enumerate(msgs)]
    tr = trace._build(events, [A, B], 0.0, {}, {p: "p", q: "q"}, [], 0, [])
    diagram = tr.diagram(sections={"1 lock": (0, "take it"), "2 work": 2}, notes={3: "store: add what\nis missing"})
    layout = diagram._layout(len(tr.messages))
    assert [(name, note) for name, note, _top, _bottom in layout.bands] == [("1 lock", "take it"), ("2 work", "")]
    (_, _, top1, bottom1), (_, _, top2, bottom2) = layout.bands
    assert top1 < layout.ys[0] < layout.ys[1] < bottom1 <= top2 < layout.ys[2] < layout.ys[3] < bottom2
    assert layout.ys[2] - layout.ys[1] > layout.ys[1] - layout.ys[0]  # the heading takes room of its own
    note_y, text = layout.notes[3]
    assert text == "store: add what\nis missing" and layout.ys[3] < note_y < layout.nrows
    svg = diagram.svg()
    for shown in ("1 lock", "take it", "2 work", "store: add what", "is missing"):
        assert shown in svg, shown


def test_select_keeps_the_messages_events_and_lifelines_of_the_chosen_processes() -> None:
    """A trace of two servers that saw the same events splits into one trace per server, by name or pid."""
    pg2_a, pg_a, pg2_b, pg_b, member = Pid(A, 1, 1), Pid(A, 2, 1), Pid(B, 1, 1), Pid(B, 2, 1), Pid(B, 9, 1)
    down = ("DOWN", Ref(A, 3), "process", member, "noconnection")
    exchange = ("$gen_cast", ("exchange", A, []))
    events = [
        event("receive", A, 1.0, None, pg2_a, down, receiver_name="pg2", seq=0),
        event("receive", A, 1.1, None, pg_a, ("nodedown", B), receiver_name="pg", seq=1),
        event("send", A, 2.0, pg2_a, pg2_b, exchange, sender_name="pg2", seq=2),
        event("receive", B, 2.5, None, pg2_b, exchange, receiver_name="pg2", seq=0),
        event("send", A, 3.0, pg_a, pg_b, ("discover", pg_a), sender_name="pg", seq=3),
        event("receive", B, 3.5, None, pg_b, ("discover", pg_a), receiver_name="pg", seq=1),
    ]
    names = {pg2_a: "pg2", pg2_b: "pg2", pg_a: "pg", pg_b: "pg"}
    tr = trace._build(events, [A, B], 0.0, names, {}, ["pg2", "pg"], 0, [])
    assert tr.labels() == ["DOWN (noconnection)", "nodedown (b)", "$gen_cast exchange", "discover"]
    pg2_only, pg_only = tr.select("pg2"), tr.select("pg")
    assert pg2_only.labels() == ["DOWN (noconnection)", "$gen_cast exchange"]
    assert pg_only.labels() == ["nodedown (b)", "discover"]
    assert pg2_only.watched == [pg2_a, pg2_b] and pg2_only.order == ["pg2"]
    assert {e.msg for e in pg_only.events} == {("nodedown", B), ("discover", pg_a)}
    lines, _nodes = pg_only.diagram()._lifelines(pg_only.messages)
    assert [line.label for line in lines] == ["runtime", "pg", "pg"]
    assert tr.select(pg_b).labels() == ["discover"]  # a pid chooses one process, not every one of its name
    assert len(tr) == 4 and len(tr.watched) == 4  # the whole trace is left as it was


def test_an_unpicklable_message_travels_as_text() -> None:
    """A recorded message that cannot be pickled is replaced by its repr before it leaves its node."""
    lock = __import__("threading").Lock()
    (portable,) = trace._portable([event("receive", A, 1.0, None, Pid(A, 1, 1), ("held", lock))])
    assert isinstance(portable.msg, trace.Unpicklable) and "lock" in repr(portable.msg)


# == Printing ===========================================================================================


@pytest.mark.parametrize(
    ("msg", "label"),
    [
        (("$gen_call", ("from",), ("set_lock", ("id", "me"))), "$gen_call set_lock"),
        (("$gen_call", ("from",), "stop"), "$gen_call stop"),
        (("$gen_cast", ("exchange", "a@h", [])), "$gen_cast exchange"),
        (("system", ("from",), "get_state"), "system get_state"),
        ((Ref("a@h", 3), "ok"), "reply ok"),
        (((Ref("a@h", 3), "b@h"), True), "reply true"),
        (("DOWN", Ref("a@h", 3), "process", Pid("a@h", 1), "killed"), "DOWN (killed)"),
        (("DOWN", Ref("a@h", 3), "process", Pid("b@h", 1), "noconnection"), "DOWN (noconnection)"),
        (("EXIT", Pid("a@h", 1), "shutdown"), "EXIT (shutdown)"),
        (("nodeup", "b@h"), "nodeup (b)"),
        (("nodedown", "c@127.0.0.1"), "nodedown (c)"),
        ("hello", "hello"),
        (42, "42"),
    ],
)
def test_tag_of_names_a_message_by_its_tag(msg: object, label: str) -> None:
    """Each message shape gets the label its arrow carries."""
    assert tag_of(msg) == label


@pytest.mark.parametrize(
    ("term", "text"),
    [
        (("join", "chat", Pid("b@127.0.0.1", 42, 1)), "{join,chat,<b.42.0>}"),
        (["a", 1, 2.5], "[a,1,2.5]"),
        (("$gen_call", True, False), "{'$gen_call',true,false}"),
        ("b@127.0.0.1", "'b@127.0.0.1'"),
        ("DOWN", "'DOWN'"),
        (Ref("a@h", 9), "#Ref<a.9>"),
    ],
)
def test_format_term_prints_erlang_syntax(term: object, text: str) -> None:
    """Terms print as Erlang prints them, pids and refs naming their node."""
    assert format_term(term) == text


def test_format_term_cuts_long_terms() -> None:
    """A limit cuts the text and marks the cut."""
    assert format_term(list(range(100)), 12) == "[0,1,2,3,..."


# == The tracer's own limits and refusals, and the rarer shapes of the picture ========================


def test_a_lost_message_and_an_unknown_sender_are_drawn_and_explained() -> None:
    """A send never received is crossed out and 'lost'; an arrival whose sender is unknown starts at the node's edge."""
    p, q = Pid(A, 1, 1), Pid(B, 2, 1)
    events = [
        event("send", A, 1.0, p, None, ("hello", 1), receiver_name="srv", receiver_node=B, seq=0),
        event("receive", B, 2.0, None, q, ("from", "nowhere"), seq=0),
        event("send", A, 3.0, p, q, ("ping", 2), seq=1),
        event("receive", B, 3.5, None, q, ("ping", 2), seq=1),
    ]
    tr = trace._build(events, [A, B], 0.0, {}, {}, [], 0, [])
    assert [(m.label, m.received is None, m.sender) for m in tr.messages] == [
        ("hello", True, p),
        ("from", False, None),
        ("ping", False, p),
    ]
    diagram = tr.diagram(max_messages=2)
    svg = diagram.svg()
    for said in ("hello (lost)", "sender unknown", "lost", "and 1 more messages"):
        assert said in svg, said
    lines, _nodes = diagram._lifelines(tr.messages)
    assert ("name", B, "srv") in [line.key for line in lines]  # a lost send by name has a lifeline of that name


def test_the_node_whose_runtime_made_a_message() -> None:
    """'DOWN' of a monitor by {Name, Node} comes from that node; a message of another shape was sent by a process."""
    ref = Ref(A, 9)
    assert trace._runtime_node(("DOWN", ref, "process", ("srv", B), "normal"), None, A) == B
    assert trace._runtime_node(("DOWN", ref, "process", "not a pid", "normal"), None, A) == A
    assert trace._runtime_node(("hello", 1, 2, 3), None, A) is None
    exiting = Pid(B, 3, 1)
    assert trace._implied_sender(("EXIT", exiting, "normal")) == exiting
    assert tag_of(trace.Unpicklable("<a lock>")) == "?"


def test_events_past_the_limit_are_counted_and_reported(isolated_runtime: None) -> None:
    """Past its limit of events the tracer keeps counting what it drops, and the log says how many."""
    me = erlang.self()
    with Tracer(None, ["all"], limit=2) as tracer:
        for i in range(5):
            erlang.send(me, ("n", i))
        for i in range(5):
            assert recv(lambda m, i=i: m == ("n", i)) == ("n", i)
    tr = tracer.trace
    assert tr is not None and tr.dropped >= 3
    assert f"({tr.dropped} events dropped over the limit)" in str(tr)


def test_the_tracer_refuses_what_it_cannot_do(isolated_runtime: None) -> None:
    """p() after start, a process that is no pid nor name, and stop() before start are refused; p() adds before start."""
    tracer = Tracer(None, []).p(erlang.self(), "pg2")
    assert tracer.procs == [erlang.self(), "pg2"]
    with pytest.raises(RuntimeError, match="stop\\(\\) without start\\(\\)"):
        tracer.stop()
    with pytest.raises(TypeError, match="trace a pid or a registered name, not 42"):
        Tracer(None, [42]).start()  # type: ignore[list-item]
    tracer.start()
    try:
        with pytest.raises(RuntimeError, match="add processes before start"):
            tracer.p("global_name_server")
    finally:
        tracer.stop(settle=0)
    assert trace._uninstall() == ([], 0)  # nothing plugged in any more
    assert trace._snapshot() == ([], 0)


def test_messages_that_refuse_comparison_are_different() -> None:
    """Pairing compares messages as terms; one whose == raises counts as a different message."""

    class Stubborn:
        def __eq__(self, other: object) -> bool:
            raise ValueError("no comparing me")

        __hash__ = object.__hash__

    assert trace._same(Stubborn(), Stubborn()) is False
    assert trace._same(("a", 1), ("a", 1)) is True


@pytest.mark.distributed
def test_a_node_that_stopped_during_tracing_is_named_missing() -> None:
    """A node stopped before the tracer collects keeps its records: the trace names it missing and goes on."""
    with Cluster(2) as cluster:
        _a, b = cluster.nodes
        tracer = Tracer(cluster, ["all"]).start()
        cluster.stop(b)
        tr = tracer.stop(settle=0)
    assert tr.missing == [b]
    assert f"(no records from {b})" in tr.log()
