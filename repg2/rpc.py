"""Remote procedure calls through the ``rex`` server that runs on every node.

Translates ``lib/kernel/src/rpc.erl`` of Erlang/OTP 18.3 (the ``call``,
``cast`` and ``multicall`` part), with the two requests an OTP 25 node sends
to a peer's ``rex``, so that calls work between Python and Erlang nodes both
ways.

Ported: ``call/4,5``, ``cast/4``, ``multicall/3,4,5``, the ``rex``
gen_server with its ``init/1``, ``handle_call/3`` (``{call, M, F, A,
Gleader}`` and ``stop``), ``handle_cast/2`` (``{cast, M, F, A, Gleader}``)
and ``handle_info/2`` (the worker's reply and its ``'DOWN'``, OTP 25's
``{From, features_request}`` and the hidden nodes' ``{From, {call, ...}}``).

Left out: ``block_call``, ``async_call``/``yield``/``nb_yield``,
``eval_everywhere``, ``sbcast``/``abcast``, ``server_call``,
``multi_server_call``, ``parallel_eval``, ``pmap``, ``pinfo``, group
leaders (I/O of a remote call is not sent back to the caller's node), and
``erpc``'s spawn requests (a RePy2 node does not advertise ``DFLAG_SPAWN``).

How it works
------------
A call is a ``gen_server.call`` to ``('rex', node)`` with Erlang's request
``('call', Module, Function, Args, GroupLeader)``, module and function being
atoms. Two ways to name the function:

- Erlang's: ``rpc.call(node, 'erlang', 'nodes', [])``. On an Erlang node it
  is Erlang's ``erlang:nodes/0``; on a RePy2 node the module names of the
  translation stand for their Python modules (``erlang`` is
  :mod:`repg2.erlang`, ``global`` is :mod:`repg2.global_`...) and any other
  module name is a Python module (``'repg2.testing.nodefuns'``).
- Python's: ``rpc.call(node, fun, [args])`` with a module-level function;
  it travels as its module and qualified name, exactly as Erlang's
  ``rpc:call(PyNode, 'repg2.erlang', node, [])`` names it.

``rex`` spawns a worker per call so a slow function never blocks the
server; the worker applies the function and hands the result to ``rex``,
which replies to the caller (to an OTP 25 caller through its alias, see
``gen_server.reply``). If the worker dies without a result (killed),
``rex`` replies ``('badrpc', ('EXIT', reason))``, as in OTP. The caller
turns failures into values: an unreachable node becomes ``('badrpc',
'nodedown')``, a timeout ``('badrpc', 'timeout')``, an exception in the
function ``('badrpc', ('EXIT', reason))``.

Differences from OTP (see ``TRANSLATION_NOTES.md``): a Python exception is
caught as ``{ClassName, <<"message">>}`` where Erlang gives ``{'EXIT',
{Reason, Stack}}`` (D29); timeouts are seconds (D2); OTP 18 runs a timed
call through a middleman process so that a late reply never reaches the
caller, ``repg2.gen_server.call`` already drops late replies, so the call is
made directly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from repg2 import erlang, external, gen_server
from repg2.erlang import ExitError, Pid

__all__ = ["NAME", "call", "cast", "multicall", "start", "start_link", "stop"]

NAME = "rex"  # the registered name of the rpc server on every node
GROUP_LEADER = "user"  # what we send as Gleader: "no I/O back to me" (rpc:set_group_leader(user))

Timeout = float | int | str | None  # seconds, or 'infinity'
From = tuple[Pid, Any]  # a gen_server caller: (pid, tag)

# The Erlang modules this project translates, by the name an Erlang caller
# uses: rpc:call(PyNode, erlang, nodes, []) runs repg2.erlang.nodes().
TRANSLATED_MODULES = {
    "erlang": "repg2.erlang",
    "erpc": "repg2.rpc",  # OTP 25's rpc spawns erpc:execute_call/4 on the target node: this module has it
    "ets": "repg2.ets",
    "gen_server": "repg2.gen_server",
    "global": "repg2.global_",
    "kernel": "repg2.kernel",
    "net_kernel": "repg2.net_kernel",
    "pg": "repg2.pg",
    "pg2": "repg2.pg2",
    "rpc": "repg2.rpc",
    "supervisor": "repg2.supervisor",
}


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


def call(node: str, fun: Callable[..., Any] | str, *rest: Any, timeout: Timeout | None = None) -> Any:
    """Evaluate a function on ``node``; return its value, or ``('badrpc', reason)``.

    Erlang: rpc:call/4
    Erlang: rpc:call/5
    Erlang: rpc:do_call/3

    Forms: ``call(node, module, function, args[, timeout])`` as in Erlang
    (atoms as ``str``), or ``call(node, fun, args[, timeout])`` with a
    module-level Python function; ``timeout=`` may also be given by name.

    Raises:
        TypeError: ``fun`` is not a module-level function, or the arguments
        do not fit either form.
    """
    module, function, args, given = _mfa("rpc:call/5", fun, rest)
    timeout = given if timeout is None else timeout
    try:
        return gen_server.call((NAME, node), ("call", module, function, args, GROUP_LEADER), timeout)
    except ExitError as exc:
        return _rpc_check(exc.reason)


def cast(node: str, fun: Callable[..., Any] | str, *rest: Any) -> bool:
    """Evaluate a function on ``node`` without waiting; always True.

    Erlang: rpc:cast/4

    Forms as :func:`call`, without a timeout.
    """
    module, function, args, _timeout = _mfa("rpc:cast/4", fun, rest)
    gen_server.cast((NAME, node), ("cast", module, function, args, GROUP_LEADER))
    return True


def multicall(nodes: list[str] | None, fun: Callable[..., Any] | str, *rest: Any) -> tuple[list[Any], list[str]]:
    """Evaluate a function on many nodes at once; return ``(results, bad_nodes)``.

    Erlang: rpc:multicall/3
    Erlang: rpc:multicall/4
    Erlang: rpc:multicall/5
    Erlang: rpc:do_multicall/5

    Forms as :func:`call`, with a node list first; ``nodes=None`` means this
    node and every connected node. ``results`` holds one value per node that
    answered (in node order; an exception is ``('badrpc', ('EXIT', reason))``),
    ``bad_nodes`` the nodes that did not.
    """
    module, function, args, timeout = _mfa("rpc:multicall/5", fun, rest)
    if nodes is None:
        nodes = [erlang.node(), *erlang.nodes()]
    request = ("call", module, function, args, GROUP_LEADER)
    replies, bad = gen_server.multi_call(list(nodes), NAME, request, timeout)
    return [reply for _node, reply in replies], bad


def _mfa(where: str, fun: Callable[..., Any] | str, rest: tuple[Any, ...]) -> tuple[str, str, list[Any], Timeout]:
    """Read either calling form into Erlang's ``(Module, Function, Args, Timeout)``.

    Erlang: none (Erlang has one form, M, F, A; Python functions add the other)
    """
    if isinstance(fun, str):
        if not rest or not isinstance(rest[0], str) or len(rest) > 3:
            raise TypeError(f"{where}: call(node, module, function, args[, timeout]) takes atoms (str) and a list")
        function, args, timeout = rest[0], rest[1] if len(rest) > 1 else [], rest[2] if len(rest) > 2 else "infinity"
        return fun, function, list(args), timeout
    if not callable(fun) or len(rest) > 2:
        raise TypeError(f"{where}: call(node, fun, args[, timeout]) takes a module-level function")
    module, function = _name_of(fun, where)
    args = list(rest[0]) if rest else []
    return module, function, args, rest[1] if len(rest) > 1 else "infinity"


def _name_of(fun: Callable[..., Any], where: str) -> tuple[str, str]:
    """Return the ``(module, name)`` a module-level function is found under on any node.

    Erlang: none (an Erlang function is named by module and name; a Python one by __module__ and __qualname__)
    """
    module, name = getattr(fun, "__module__", None), getattr(fun, "__qualname__", "")
    if not isinstance(module, str) or module == "__main__" or "<" in name or not name:
        raise TypeError(f"{where}: {fun!r} has no module-level name another node can find")
    return module, name


def _rpc_check(reason: Any) -> Any:
    """Turn the exit reason of a failed call into ``('badrpc', ...)``.

    Erlang: rpc:rpc_check/1
    Erlang: rpc:rpc_check_t/1
    """
    match reason:
        case (("nodedown", _node), _where):  # Erlang: {'EXIT', {{nodedown, _}, _}}
            return ("badrpc", "nodedown")
        case ("noconnection", _where):  # the callee's node went away during the call
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
    map keyed by the worker's monitor).
    """

    def init(self, args: Any) -> tuple[str, dict[Pid, Any]]:
        """Trap exits and start with no calls in progress.

        Erlang: rpc:init/1
        """
        erlang.process_flag("trap_exit", True)
        return ("ok", {})

    def handle_call(self, request: Any, from_: Any, state: dict[Pid, Any]) -> Any:
        """Run a call in a new worker so that rex stays free; reply later.

        Erlang: rpc:handle_call/3 ({call, Mod, Fun, Args, Gleader})
        Erlang: rpc:handle_call/3 (stop)
        Erlang: rpc:handle_call/3 (_, _To, S)
        """
        match request:
            case "stop":  # Erlang: handle_call(stop, _To, S) -> {stop, normal, stopped, S}
                return ("stop", "normal", "stopped", state)
            case ("call", module, function, list(args), _gleader):  # Erlang: handle_call({call, M, F, A, Gl}, To, S)
                worker, _ref = erlang.spawn_monitor(_execute_call, erlang.self(), module, function, args)
                state[worker] = from_
                return ("noreply", state)
            case _:  # Erlang: handle_call(_, _To, S) -> {noreply, S}  (ignored)
                return ("noreply", state)

    def handle_cast(self, msg: Any, state: dict[Pid, Any]) -> Any:
        """Run a cast in a new process and forget it.

        Erlang: rpc:handle_cast/2 ({cast, Mod, Fun, Args, Gleader})
        """
        match msg:
            case ("cast", module, function, list(args), _gleader):  # Erlang: handle_cast({cast, M, F, A, Gl}, S)
                erlang.spawn(_execute_cast, module, function, args)
        return ("noreply", state)

    def handle_info(self, msg: Any, state: dict[Pid, Any]) -> Any:
        """Relay a worker's result to its caller; answer OTP 25's feature query and hidden nodes' calls.

        Erlang: rpc:handle_info/2
        """
        match msg:
            case (Pid() as worker, ("reply", reply)) if worker in state:  # Erlang: {Caller, {reply, Reply}}
                _reply(state.pop(worker), reply)
            case ("DOWN", _ref, "process", worker, reason) if worker in state:  # Erlang: {'DOWN', _, process, ...}
                _reply(state.pop(worker), ("badrpc", ("EXIT", external.portable(reason))))
            case (Pid() as asker, "features_request"):  # Erlang: handle_info({From, features_request}, S)
                # OTP 25's rex asks each new peer; an empty list: no erpc (we take no spawn requests).
                erlang.send(asker, ("features_reply", erlang.node(), []))
            case (Pid() as asker, ("call", module, function, list(args), _gl)):  # Erlang: {From, {call, ...}}
                worker, _ref = erlang.spawn_monitor(_execute_call, erlang.self(), module, function, args)
                state[worker] = (NAME, asker)  # Erlang: To = {?NAME, From}: the answer is {rex, Reply}
            case _:  # Erlang: handle_info(_, S) -> {noreply, S}
                pass
        return ("noreply", state)

    def terminate(self, reason: Any, state: dict[Pid, Any]) -> str:
        """Nothing to clean up.

        Erlang: rpc:terminate/2
        """
        return "ok"


def _resolve(module: Any, function: Any) -> Callable[..., Any]:
    """Find the function ``module:function`` names on this node.

    Erlang: none (the code server finds Module:Function for apply/3)

    An Erlang module this project translates names its Python module
    (``TRANSLATED_MODULES``); any other name is imported as a Python module.
    A qualified name (``Class.method``) is followed attribute by attribute.

    Raises:
        erlang.ErlangError: ``('undef', [(module, function, args, [])])``'s
        shape is built by the caller; this raises ``LookupError``.
    """
    if not isinstance(module, str) or not isinstance(function, str):
        raise LookupError(f"{module!r}:{function!r} is not module:function")
    found: Any = importlib.import_module(TRANSLATED_MODULES.get(module, module))
    for part in function.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise LookupError(f"{module}:{function} is not a function")
    return found  # type: ignore[no-any-return]


def _apply(module: Any, function: Any, args: list[Any]) -> Any:
    """Apply ``module:function`` to ``args``; raise ``undef`` if it does not exist.

    Erlang: erlang:apply/3
    """
    try:
        fun = _resolve(module, function)
    except (ImportError, AttributeError, LookupError):
        raise erlang.ErlangError(("undef", [(module, function, args, [])])) from None
    return fun(*args)


def _execute_call(rex: Pid, module: Any, function: Any, args: list[Any]) -> None:
    """Apply the function and send the result, or the caught exception, to rex.

    Erlang: rpc:execute_call/3 (the spawned fun of handle_call: catch apply(Mod, Fun, Args))
    """
    try:
        reply: Any = _apply(module, function, args)
    except ExitError as exc:  # Erlang: catch exit(R) gives {badrpc, {'EXIT', R}}
        reply = ("badrpc", ("EXIT", external.portable(exc.reason)))
    except erlang.ErlangError as exc:  # Erlang: error(R) gives {badrpc, {'EXIT', {R, Stack}}}
        reply = ("badrpc", ("EXIT", (external.portable(exc.reason), [])))
    except Exception as exc:  # noqa: BLE001 - any crash of fun is the caller's badrpc
        # DIVERGENCE(D29): a Python exception is {ClassName, <<"message">>}, not {Reason, Stacktrace}.
        reply = ("badrpc", ("EXIT", external.portable(exc)))
    erlang.send(rex, (erlang.self(), ("reply", reply)))


def spawned_apply(module: Any, function: Any, args: list[Any]) -> None:
    """Run the function a peer's spawn request names, in the process spawned for it.

    Erlang: erlang:apply/3 (the body of a process made by spawn_request/5)

    A function that does not exist ends the process with ``{undef, [{M, F,
    Args, []}]}``, the exit reason OTP gives the same spawn.
    """
    try:
        fun = _resolve(module, function)
    except (ImportError, AttributeError, LookupError):
        erlang.exit(("undef", [(module, function, args, [])]))
    fun(*args)


def execute_call(ref: Any, module: Any, function: Any, args: list[Any]) -> None:
    """Apply a function for an OTP 25 ``rpc:call``/``erpc:call`` and exit with the outcome.

    Erlang: erpc:execute_call/4

    The calling node spawned this process monitored; the exit reason is the
    answer it reads from the ``'DOWN'``: ``{Ref, return, Value}``,
    ``{Ref, throw, Value}``, ``{Ref, exit, Reason}`` or ``{Ref, error,
    Reason, Stack}``. A Python exception is an ``error`` whose reason is
    ``{ClassName, <<"message">>}`` (D29) and whose stack is empty.
    """
    try:
        outcome: Any = (ref, "return", _apply(module, function, args))
    except ExitError as exc:
        outcome = (ref, "exit", external.portable(exc.reason))
    except erlang.ErlangError as exc:
        outcome = (ref, "error", external.portable(exc.reason), [])
    except Exception as exc:  # noqa: BLE001 - any crash of the function is the caller's error
        outcome = (ref, "error", external.portable(exc), [])
    erlang.exit(outcome)


def execute_cast(module: Any, function: Any, args: list[Any]) -> None:
    """Apply a function for an OTP 25 ``rpc:cast``/``erpc:cast``; its result is dropped.

    Erlang: erpc:execute_cast/3
    """
    _apply(module, function, args)


def _execute_cast(module: Any, function: Any, args: list[Any]) -> None:
    """Apply the function of a cast; its result is dropped.

    Erlang: erpc:execute_cast/3 (what rpc's handle_cast spawns in OTP 25)
    """
    _apply(module, function, args)


def _reply(client: Any, reply: Any) -> None:
    """Reply to a caller; a value with no Erlang form is replaced by a badrpc saying so.

    Erlang: rpc:reply/2
    """
    reply = _replyable(reply)
    match client:
        case (str() as rex, Pid() as asker):  # Erlang: reply({?NAME, From}, Reply) -> From ! {?NAME, Reply}
            erlang.send(asker, (rex, reply))
        case _:
            gen_server.reply(client, reply)


def _replyable(reply: Any) -> Any:
    """Return ``reply``, or a badrpc naming why it cannot travel to another node.

    Erlang: none (an Erlang value can always be sent; a Python one may have no Erlang form)
    """
    try:
        external.term_to_binary(reply)
    except TypeError as exc:
        return ("badrpc", ("EXIT", ("badarg", str(exc).encode("utf-8", "replace"))))
    return reply
