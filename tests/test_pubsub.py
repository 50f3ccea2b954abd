"""The PubSub example (``repg2.examples.pubsub``) on one node: subscribe, broadcast, a chat, and what goes wrong.

The notebooks run it across nodes; here the server's own cases, on this
node: a subscriber that dies is forgotten, a request it does not know is
answered with an error, a broadcast before any server started finds no
group, and a user that does not answer times out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import recv, wait_until

from repg2 import erlang, gen_server, pg2
from repg2.erlang import Pid
from repg2.examples import pubsub
from repg2.testing import member_loop

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("isolated_runtime")]


@pytest.fixture
def server(fresh_pg2: list[Pid]) -> Iterator[Pid]:
    """pg2 and this node's PubSub server, stopped after the test."""
    pg2.start()
    started = pubsub.start()
    assert started[0] == "ok", started
    yield started[1]
    gen_server.stop(pubsub.SERVER)


def test_a_chat_line_reaches_every_subscriber_of_the_topic(server: Pid) -> None:
    """A user's line is broadcast to the topic's subscribers, the speaker included; lines of other shapes are ignored."""
    alice, bob = pubsub.new_user("alice", "room"), pubsub.new_user("bob", "room")
    erlang.send(bob, "not a chat line")
    assert pubsub.say(alice, "hi") == "ok"
    line = ("chat", erlang.node(), "alice", "hi")
    wait_until(lambda: pubsub.history(alice) == [line] and pubsub.history(bob) == [line], "both to hear alice")
    assert sorted(pubsub.subscribers("room")) == sorted([alice, bob])


def test_a_subscriber_that_dies_is_forgotten(server: Pid) -> None:
    """The server monitors its subscribers: one that exits is taken out of the table, and broadcasts skip it."""
    me = erlang.self()
    doomed = erlang.spawn(member_loop)
    assert pubsub.subscribe(doomed, "news") == "ok"
    assert pubsub.subscribe(me, "news") == "ok"
    erlang.exit(doomed, "kill")
    wait_until(lambda: pubsub.subscribers("news") == [me], "the dead subscriber to be forgotten")
    assert pubsub.broadcast("news", "extra") == "ok"
    assert recv(lambda m: m == "extra") == "extra"


def test_the_server_answers_what_it_does_not_know(server: Pid) -> None:
    """An unknown call gets an error reply; a cast and a stray message are ignored; the server serves on."""
    assert gen_server.call(pubsub.SERVER, "what") == ("error", ("unknown_call", "what"))
    gen_server.cast(pubsub.SERVER, "ignored")
    erlang.send(pubsub.SERVER, "stray")
    assert pubsub.subscribe(erlang.self(), "t") == "ok"


@pytest.mark.usefixtures("fresh_pg2")
def test_a_broadcast_before_any_server_started_finds_no_group() -> None:
    """Without a PubSub server anywhere the group does not exist: broadcast answers no_such_group."""
    pg2.start()
    assert pubsub.broadcast("news", "nobody") == ("error", "no_such_group")


def test_a_user_that_does_not_answer_times_out() -> None:
    """history of a process that is no user raises TimeoutError naming it."""
    silent = erlang.spawn(member_loop)
    with pytest.raises(TimeoutError, match="did not answer within 0.05 s"):
        pubsub.history(silent, timeout=0.05)
