"""The view timeline of the notebooks (``repg2.examples.timeline``), on a cluster that answers as told.

The notebooks watch real clusters with it; here a stand-in with the three
methods the timeline uses (``nodes``, ``live_nodes``, ``rpc``) gives each
node's answer, so every kind of view is pinned: members by name, a node
down, a node whose call fails, a group that does not exist, and a wait that
never settles.
"""

from __future__ import annotations

from typing import Any

import pytest

from repg2.erlang import Pid
from repg2.examples.timeline import DOWN, NO_GROUP, ViewTimeline

pytestmark = pytest.mark.timeout(60)

ALICE, BOB = Pid("a@h", 1, 1), Pid("b@h", 2, 1)


class StandIn:
    """A cluster whose nodes answer ``get_members`` with what the test puts in ``answers``."""

    def __init__(self, answers: dict[str, Any], down: tuple[str, ...] = ()) -> None:
        self.nodes = list(answers)
        self.answers = answers
        self.down = down

    def live_nodes(self) -> list[str]:
        return [n for n in self.nodes if n not in self.down]

    def rpc(self, node: str, fun: Any, *args: Any, timeout: float = 30.0) -> Any:
        answer = self.answers[node]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_each_node_answer_becomes_a_view() -> None:
    """Members show by name (else by pid), a node down or failing is 'down', an error tuple is 'no such group'."""
    cluster = StandIn(
        {
            "a@h": [BOB, ALICE],
            "b@h": [],
            "c@h": ("error", ("no_such_group", "g")),
            "d@h": TimeoutError("no answer"),
            "e@h": [ALICE],
        },
        down=("e@h",),
    )
    timeline = ViewTimeline(cluster, "g", {ALICE: "alice"})
    assert {node: timeline.view(node) for node in cluster.nodes} == {
        "a@h": f"{BOB!r}, alice",
        "b@h": "(empty)",
        "c@h": NO_GROUP,
        "d@h": DOWN,
        "e@h": DOWN,
    }


def test_a_sampled_run_gives_the_latest_views_and_a_figure() -> None:
    """Sampling records every node until stopped; views() is the latest of each; the figure draws a band per node."""
    pytest.importorskip("matplotlib")
    cluster = StandIn({"a@h": [ALICE], "b@h": ("error", ("no_such_group", "g"))})
    with ViewTimeline(cluster, "g", {ALICE: "alice"}, interval=0.001) as timeline:
        timeline.mark("start")
        cluster.answers["a@h"] = [ALICE, BOB]  # stop() samples once more: the end state is recorded
    assert timeline.views() == {"a@h": f"{BOB!r}, alice", "b@h": NO_GROUP}
    runs = timeline.segments()
    assert [view for _start, _end, view in runs["b@h"]] == [NO_GROUP]
    assert runs["a@h"][-1][2] == f"{BOB!r}, alice"
    figure = timeline.figure()
    assert len(figure.axes) == 1 and [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["node a", "node b"]


def test_a_node_never_sampled_has_no_band() -> None:
    """segments() gives an empty run list to a node with no sample yet."""
    timeline = ViewTimeline(StandIn({"a@h": [], "b@h": []}), "g", {})
    assert timeline.segments() == {"a@h": [], "b@h": []}


def test_wait_gives_up_naming_the_views() -> None:
    """wait() raises TimeoutError with the views it last saw when the condition never holds."""
    timeline = ViewTimeline(StandIn({"a@h": [ALICE]}), "g", {ALICE: "alice"}, interval=0.001)
    assert timeline.wait(lambda views: views["a@h"] == "alice") >= 0
    with pytest.raises(TimeoutError, match="'a@h': 'alice'"):
        timeline.wait(lambda views: False, timeout=0.01)
