"""Remote procedure calls through the ``rex`` server that runs on every node.

Translates ``lib/kernel/src/rpc.erl`` of Erlang/OTP 18.3 (the ``call``,
``cast`` and ``multicall`` part).

Ported: ``call/4,5``, ``cast/4``, ``multicall/3,4,5`` (as
``multicall(nodes, fun, args, timeout)``), the ``rex`` gen_server with its
``init/1``, ``handle_call/3`` (``{call, ...}``), ``handle_cast/2``
(``{cast, ...}``) and ``handle_info/2`` (the worker's reply and its
``'DOWN'``).

Left out: ``block_call``, ``async_call``/``yield``/``nb_yield``,
``eval_everywhere``, ``sbcast``/``abcast``, ``server_call``,
``multi_server_call``, ``parallel_eval``, ``pmap``, ``pinfo``, group
leaders (I/O of a remote call is not sent back to the caller's node).

How it works
------------
A call is a ``gen_server.call`` to ``('rex', node)`` with the request
``('call', fun, args)``. ``rex`` spawns a worker per call so a slow function
never blocks the server; the worker runs ``fun(*args)`` and hands the result
to ``rex``, which replies to the caller. If the worker dies without a result
(killed), ``rex`` replies ``('badrpc', ('EXIT', reason))``, as in OTP.
The caller turns failures into values: an unreachable node becomes
``('badrpc', 'nodedown')``, a timeout ``('badrpc', 'timeout')``, an
exception in ``fun`` ``('badrpc', ('EXIT', reason))``.

Differences from OTP (see ``TRANSLATION_NOTES.md``): ``{M, F, A}`` becomes a
picklable module-level callable and an argument list; timeouts are seconds;
Erlang catches an error as ``{'EXIT', {Reason, Stack}}``, we give the
exception object itself (or its ``repr`` if it cannot travel) and, for
``erlang.ExitError``, its ``reason`` (as ``catch exit(R)`` gives
``{'EXIT', R}``); OTP 18 runs a timed call through a middleman process so
that a late reply never reaches the caller, ``repg2.gen_server.call``
already drops late replies, so the call is made directly.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

from repg2 import erlang, gen_server
from repg2.erlang import ExitError, Pid

__all__ = ["NAME", "call", "cast", "multicall", "start", "start_link", "stop"]

NAME = "rex"  # the registered name of the rpc server on every node

Timeout = float | int | str | None  # seconds, or 'infinity'
From = tuple[Pid, Any]  # a gen_server caller: (pid, tag)


# == Exported functions ========================================================


def start() -> Any:
    """Start ``rex`` on this node without a link; return ``('ok', pid)``.

    Erlang: rpc:start/0
    """
    return gen_server.start(("local", NAME), Rex(), [])


def start_link() -> Any:
    """Start ``rex`` linked to the caller, ``kernel_safe_sup`` here; return ``('ok', pid)``.

    Erlang: rpc:start_link/0

    ``repg2.kernel.boot`` starts it on every node, as kernel.erl does: a node
    without ``rex`` answers no rpc, and every ``rpc.call`` to it ends in a
    ``badrpc``.
    """
    return gen_server.start_link(("local", NAME), Rex(), [])


def stop() -> Any:
    """Stop this node's ``rex``; under ``kernel_safe_sup`` it is restarted at once.

    Erlang: rpc:stop/0
    """
    return gen_server.call(NAME, "stop", "infinity")


def call(node: str, fun: Callable[..., Any], args: Sequence[Any] = (), timeout: Timeout = "infinity") -> Any:
    """Evaluate ``fun(*args)`` on ``node`` and return its value, or ``('badrpc', reason)``.

    Erlang: rpc:call/4
    Erlang: rpc:call/5
    Erlang: rpc:do_call/3
    """
    try:
        return gen_server.call((NAME, node), ("call", fun, list(args)), timeout)
    except ExitError as exc:
        return _rpc_check(exc.reason)


def cast(node: str, fun: Callable[..., Any], args: Sequence[Any] = ()) -> bool:
    """Evaluate ``fun(*args)`` on ``node`` without waiting; always True.

    Erlang: rpc:cast/4
    """
    gen_server.cast((NAME, node), ("cast", fun, list(args)))
    return True


def multicall(
    nodes: list[str] | None, fun: Callable[..., Any], args: Sequence[Any] = (), timeout: Timeout = "infinity"
) -> tuple[list[Any], list[str]]:
    """Evaluate ``fun(*args)`` on many nodes at once; return ``(results, bad_nodes)``.

    Erlang: rpc:multicall/3
    Erlang: rpc:multicall/4
    Erlang: rpc:multicall/5
    Erlang: rpc:do_multicall/5

    ``nodes=None`` means this node and every connected node. ``results``
    holds one value per node that answered (in node order; an exception is
    ``('badrpc', ('EXIT', reason))``), ``bad_nodes`` the nodes that did not.
    """
    if nodes is None:
        nodes = [erlang.node(), *erlang.nodes()]
    replies, bad = gen_server.multi_call(list(nodes), NAME, ("call", fun, list(args)), timeout)
    return [reply for _node, reply in replies], bad


def _rpc_check(reason: Any) -> Any:
    """Turn the exit reason of a failed call into ``('badrpc', ...)``.

    Erlang: rpc:rpc_check/1
    Erlang: rpc:rpc_check_t/1
    """
    match reason:
        case (("nodedown", _node), _where):  # Erlang: {'EXIT', {{nodedown, _}, _}}
            return ("badrpc", "nodedown")
        case ("timeout", _where):  # Erlang: {'EXIT', {timeout, _}}
            return ("badrpc", "timeout")
        case _:  # Erlang: {'EXIT', _} = X -> {badrpc, X}
            return ("badrpc", ("EXIT", reason))


# == The rex server ================================================================


class Rex:
    """The callback module of the ``rex`` gen_server.

    Erlang: none (rpc.erl is itself the callback module; here a class holds the callbacks)

    State: a dict from worker pid to the caller it answers (OTP keeps a
    ``gb_trees`` keyed the same way).
    """

    def init(self, args: Any) -> tuple[str, dict[Pid, From]]:
        """Trap exits and start with no calls in progress.

        Erlang: rpc:init/1
        """
        erlang.process_flag("trap_exit", True)
        return ("ok", {})

    def handle_call(self, request: Any, from_: From, state: dict[Pid, From]) -> Any:
        """Run a call in a new worker so that rex stays free; reply later.

        Erlang: rpc:handle_call/3 ({call, Mod, Fun, Args, Gleader})
        Erlang: rpc:handle_call/3 (stop)
        Erlang: rpc:handle_call_call/6
        """
        match request:
            case "stop":  # Erlang: handle_call(stop, _To, S) -> {stop, normal, stopped, S}
                return ("stop", "normal", "stopped", state)
            case ("call", fun, args):  # Erlang: handle_call({call, Mod, Fun, Args, Gleader}, To, S)
                worker, _ref = erlang.spawn_monitor(_execute_call, erlang.self(), fun, args)
                state[worker] = from_
                return ("noreply", state)
            case _:  # Erlang: handle_call(_, _To, S) -> {noreply, S}  (dropped)
                return ("noreply", state)

    def handle_cast(self, msg: Any, state: dict[Pid, From]) -> Any:
        """Run a cast in a new process and forget it.

        Erlang: rpc:handle_cast/2 ({cast, Mod, Fun, Args, Gleader})
        """
        match msg:
            case ("cast", fun, args):  # Erlang: handle_cast({cast, Mod, Fun, Args, Gleader}, S)
                erlang.spawn(_execute_cast, fun, args)
        return ("noreply", state)

    def handle_info(self, msg: Any, state: dict[Pid, From]) -> Any:
        """Relay a worker's result to its caller; a worker that died answers badrpc.

        Erlang: rpc:handle_info/2
        """
        match msg:
            case (Pid() as worker, ("reply", reply)) if worker in state:  # Erlang: {Caller, {reply, Reply}}
                _reply(state.pop(worker), reply)
            case ("DOWN", _ref, "process", worker, reason) if (
                worker in state
            ):  # Erlang: {'DOWN', _, process, Caller, Reason}
                _reply(state.pop(worker), ("badrpc", ("EXIT", _portable(reason))))
            case _:  # Erlang: handle_info(_, S) -> {noreply, S}
                pass
        return ("noreply", state)

    def terminate(self, reason: Any, state: dict[Pid, From]) -> str:
        """Nothing to clean up.

        Erlang: rpc:terminate/2
        """
        return "ok"


def _execute_call(rex: Pid, fun: Callable[..., Any], args: list[Any]) -> None:
    """Apply the function and send the result, or the caught exception, to rex.

    Erlang: rpc:handle_call_call/6 (the spawned fun: case catch apply(Mod, Fun, Args))
    """
    try:
        reply: Any = fun(*args)
    except ExitError as exc:  # Erlang: catch exit(R) gives {'EXIT', R}
        reply = ("badrpc", ("EXIT", _portable(exc.reason)))
    except Exception as exc:  # noqa: BLE001 - any crash of fun is the caller's badrpc
        # DIVERGENCE(D29): the exception object (or its repr), not {Reason, Stacktrace}.
        reply = ("badrpc", ("EXIT", _portable(exc)))
    erlang.send(rex, (erlang.self(), ("reply", reply)))


def _execute_cast(fun: Callable[..., Any], args: list[Any]) -> None:
    """Apply the function of a cast; its result is dropped.

    Erlang: rpc:handle_cast/2 (the spawned fun)
    """
    fun(*args)


def _reply(client: From, reply: Any) -> None:
    """Reply to a caller; a value that cannot travel is replaced by a badrpc saying so.

    Erlang: gen_server:reply/2 (an Erlang value can always be sent; a Python one may not)
    """
    try:
        gen_server.reply(client, reply)
    except erlang.ErlangError as exc:
        gen_server.reply(client, ("badrpc", ("EXIT", ("badarg", str(exc)))))


def _portable(reason: Any) -> Any:
    """Return ``reason`` if it can be pickled and unpickled, else its ``repr``.

    Erlang: none (every Erlang term can travel; a Python exception may not)
    """
    try:
        pickle.loads(pickle.dumps(reason))
    except Exception:  # noqa: BLE001 - anything that fails to round-trip
        return repr(reason)
    return reason
