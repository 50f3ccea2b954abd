"""What every node of the bench's cluster runs between the sections: set-up, the floor server, counted back-offs.

The cluster sections (writes, remote round trips, heal, throughput) reach
the other nodes by ``Cluster.rpc`` and ``Cluster.spawn``; the functions they
send live here, in a module every node imports by name.
"""

from __future__ import annotations

import threading
from typing import Any

from repg2 import erlang, gen_server, global_, kernel, pg, pg2
from repg2.testing import stop_pg2
from repg2.tools.bench.config import ECHO

__all__ = ["TrivialServer", "counting_sleep", "fresh_pg2", "setup", "take_sleeps"]


class TrivialServer:
    """A gen_server that answers every call with ``'pong'``."""

    def init(self, args: Any) -> Any:
        """No state."""
        return ("ok", None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        """Answer at once."""
        return ("reply", "pong", state)


_count_lock = threading.Lock()  # guards _sleeps: clients on one node back off in parallel
_sleeps = 0  # global's back-off sleeps taken on this node since take_sleeps()
_scale = 1.0  # 1.0: global's back-off as it is; 50.0: fifty times shorter


def counting_sleep(seconds: float) -> None:
    """global's back-off sleep, counted, and divided by the current scale."""
    global _sleeps
    with _count_lock:
        _sleeps += 1
    erlang.sleep(seconds / _scale)


def setup(scale: float = 1.0) -> str:
    """Start global, pg2, pg's default scope and the trivial server on this node; count (and scale) back-offs."""
    global _scale
    kernel.boot()  # global_name_server and rex
    pg2.start()
    if erlang.whereis("pg") == "undefined":
        pg.start("pg")  # as an OTP 25 node whose kernel runs start_pg
    if erlang.whereis(ECHO) == "undefined":
        gen_server.start(("local", ECHO), TrivialServer(), [])
    _scale = scale
    global_.set_random_sleep(counting_sleep)
    return erlang.node()


def take_sleeps() -> int:
    """Return how many back-off sleeps this node's processes took since the last call, and reset."""
    global _sleeps
    with _count_lock:
        count, _sleeps = _sleeps, 0
    return count


def fresh_pg2(cluster: Any, nodes: list[str]) -> None:
    """Give ``nodes`` empty pg2 tables: stop every server first, then start them all again.

    Stopping all before starting any leaves no node whose exchange could
    refill the others, so the heal and throughput sections start without
    the hundreds of groups the write section created.
    """
    for node in nodes:
        cluster.rpc(node, stop_pg2)
    for node in nodes:
        cluster.rpc(node, pg2.start)
