"""Functions that tests/test_global.py runs on other nodes (through ``cluster.rpc`` and ``cluster.spawn``).

A function sent to another node travels by name (pickled as module and
qualified name), so it must live at module level in a module the child
nodes can import: this one, found through the ``sys.path`` that the nodes
inherit from the test run. Nothing here is a test.
"""

from __future__ import annotations

from typing import Any

from repg2 import erlang, gen_server, global_, kernel, supervisor
from repg2.erlang import Pid

COUNTER = "global_test_counter"  # the registered name of the shared counter server


# == The global server and its back-off, on any node ===========================


def fast_sleep(seconds: float) -> None:
    """Sleep a fiftieth of global's random back-off: the same randomness, 50 times faster."""
    erlang.sleep(seconds / 50)


def setup_node() -> str:
    """Make sure global_name_server runs on this node and make its back-off fast; return the node name."""
    start_global()
    global_.set_random_sleep(fast_sleep)
    return erlang.node()


def start_global() -> Pid:
    """Boot the node's kernel and restart global_name_server if a test stopped it; return its pid."""
    kernel.boot()
    if erlang.whereis(global_.SERVER) == "undefined":
        supervisor.restart_child(kernel.SAFE_SUP, global_.SERVER)
    pid = erlang.whereis(global_.SERVER)
    assert isinstance(pid, Pid), f"global_name_server did not start: {pid!r}"
    return pid


def stop_global() -> str:
    """Stop this node's global_name_server (kernel_safe_sup keeps its spec, so it stays stopped); return 'ok'."""
    if erlang.whereis(kernel.SAFE_SUP) != "undefined":
        supervisor.terminate_child(kernel.SAFE_SUP, global_.SERVER)
    return "ok"


def locks() -> list[global_.Lock]:
    """This node's global_locks rows."""
    return global_.get_locks()


def holders() -> list[tuple[Any, Any, list[Pid]]]:
    """This node's locks as ``(resource, requester, [holder pids])``, for easy comparison."""
    return [(r.resource_id, r.lock_requester_id, [h.pid for h in r.pid_refs]) for r in global_.get_locks()]


def try_lock(lock_id: Any, nodes: list[str] | None, retries: Any) -> bool:
    """Call set_lock once from a process on this node and return its answer (the lock stays with that process)."""
    return global_.set_lock(lock_id, nodes, retries)


# == Processes that hold locks =====================================================


def holder(parent: Pid, lock_id: Any, nodes: list[str] | None, retries: Any = "infinity") -> None:
    """Take a lock, report ``('locked', self, got)``, hold it until told ``'release'``, then release it."""
    me = erlang.self()
    got = global_.set_lock(lock_id, nodes, retries)
    erlang.send(parent, ("locked", me, got))
    erlang.receive(lambda m: m == "release")
    global_.del_lock(lock_id, nodes)
    erlang.send(parent, ("released", me))
    erlang.receive(lambda m: False)


# == A shared counter with a race window ==========================================


class Counter:
    """A gen_server holding one integer, and how many clients are inside their critical section.

    Clients read with ``'get'`` and write with ``('set', value)``: a
    read-then-write, which loses updates unless the clients exclude each
    other. ``'enter'``/``'leave'`` count the clients inside, and the most
    ever seen at once; under a working lock that is 1.
    """

    def init(self, args: Any) -> Any:
        """State: value, clients inside now, most clients inside at once."""
        return ("ok", {"value": 0, "inside": 0, "most": 0})

    def handle_call(self, request: Any, from_: Any, state: dict[str, int]) -> Any:
        """Answer get, set, enter, leave and stats."""
        match request:
            case "get":
                return ("reply", state["value"], state)
            case ("set", value):
                state["value"] = value
                return ("reply", "ok", state)
            case "enter":
                state["inside"] += 1
                state["most"] = max(state["most"], state["inside"])
                return ("reply", "ok", state)
            case "leave":
                state["inside"] -= 1
                return ("reply", "ok", state)
            case "stats":
                return ("reply", dict(state), state)
        return ("reply", ("error", request), state)


def start_counter() -> Pid:
    """Start the counter server on this node, unlinked (it must outlive the rpc that starts it)."""
    result = gen_server.start(("local", COUNTER), Counter(), [])
    assert result[0] == "ok" and isinstance(result[1], Pid), result
    return result[1]


def increment(counter_node: str) -> None:
    """Read, pause 1 ms, write the counter plus one: a lost update unless serialised."""
    server = (COUNTER, counter_node)
    gen_server.call(server, "enter")
    value = gen_server.call(server, "get")
    erlang.sleep(0.001)
    gen_server.call(server, ("set", value + 1))
    gen_server.call(server, "leave")


def worker(parent: Pid, counter_node: str, resource: Any, rounds: int) -> None:
    """Increment the counter ``rounds`` times, each inside global:trans on ``resource``; then report."""
    me = erlang.self()
    results = [global_.trans((resource, me), lambda: increment(counter_node)) for _ in range(rounds)]
    erlang.send(parent, ("done", me, results))


def worker_unlocked(parent: Pid, counter_node: str, rounds: int) -> None:
    """The same increments as :func:`worker` without any lock (the control case); then report."""
    for _ in range(rounds):
        increment(counter_node)
    erlang.send(parent, ("done", erlang.self(), None))
