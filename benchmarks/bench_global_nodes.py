"""What ``bench_global.py`` runs on every node (through ``cluster.rpc`` and ``cluster.spawn``).

Functions sent to another node travel by name, so they live at module level
in a module the nodes can import: this one, found on the ``sys.path`` the
nodes inherit from the benchmark's process. Nothing here has an Erlang
original: it is benchmark plumbing.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from repg2 import erlang, gen_server, global_
from repg2.erlang import Pid

ECHO = "bench_echo"  # a trivial server on every node: the multi_call inside each trans

_count_lock = threading.Lock()  # guards _sleeps: clients on one node sleep in parallel
_sleeps = 0
_scale = 1.0  # 1.0: OTP's back-off as it is; 50.0: fifty times shorter


class Echo:
    """A gen_server that answers every call with ``'pong'``.

    Erlang: none (benchmark: the trivial work inside each trans)
    """

    def init(self, args: Any) -> Any:
        """No state.

        Erlang: none (benchmark echo server)
        """
        return ("ok", None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        """Answer at once.

        Erlang: none (benchmark echo server)
        """
        return ("reply", "pong", state)


def counting_sleep(seconds: float) -> None:
    """global's back-off sleep, counted, and divided by the current scale.

    Erlang: none (benchmark hook for global_.set_random_sleep)
    """
    global _sleeps
    with _count_lock:
        _sleeps += 1
    erlang.sleep(seconds / _scale)


def setup(scale: float) -> str:
    """Start global and the echo server on this node; count (and scale) global's back-off sleeps.

    Erlang: none (benchmark set-up)
    """
    global _scale
    global_.ensure_started()
    if erlang.whereis(ECHO) == "undefined":
        gen_server.start(("local", ECHO), Echo(), [])
    _scale = scale
    global_.set_random_sleep(counting_sleep)
    return erlang.node()


def take_sleeps() -> int:
    """Return how many back-off sleeps this node's processes took since the last call, and reset.

    Erlang: none (benchmark counter)
    """
    global _sleeps
    with _count_lock:
        count, _sleeps = _sleeps, 0
    return count


def one_trans(nodes: list[str], resource: Any) -> Any:
    """One pg2-style write: global:trans around a multi_call of the echo server on ``nodes``.

    Erlang: none (the shape of pg2:join/2 and friends)
    """
    return global_.trans((resource, erlang.self()), lambda: gen_server.multi_call(nodes, ECHO, "ping"), nodes)


def client(parent: Pid, nodes: list[str], resource: Any, seconds: float, start_at: float) -> None:
    """Wait for ``start_at`` (wall clock), run trans in a loop for ``seconds``, report ``('done', self, n)``.

    Erlang: none (benchmark client)
    """
    erlang.sleep(max(0.0, start_at - time.time()))
    deadline = time.monotonic() + seconds
    done = 0
    while done == 0 or time.monotonic() < deadline:
        one_trans(nodes, resource)
        done += 1
    erlang.send(parent, ("done", erlang.self(), done))
