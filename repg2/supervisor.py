"""A ``one_for_one`` supervisor: start children, restart the ones that crash.

Translates the part of ``lib/stdlib/src/supervisor.erl`` (Erlang/OTP 18.3)
that pg2 needs: pg2's ``ensure_started/0`` asks the node's
``kernel_safe_sup`` to start the pg2 server, and relies on it to restart
pg2 if it crashes.

Ported: ``start_link/2,3``, ``start_child/2``, ``terminate_child/2``,
``delete_child/2``, ``restart_child/2``, ``which_children/1``,
``count_children/1``, the ``one_for_one`` strategy, the restart types
``permanent``/``transient``/``temporary``, shutdown by ``brutal_kill``, a
timeout or ``infinity``, and the restart intensity (at most ``intensity``
restarts in ``period`` seconds, else the supervisor gives up and exits with
``shutdown``). Child specs may be OTP 18's tuple
``(id, (fun, args), restart, shutdown, type, modules)`` or its map form as a
dict.

Left out: the ``one_for_all``, ``rest_for_one`` and
``simple_one_for_one`` strategies, ``check_childspecs/1``, code change, and
supervisor bridges.

How it works
------------
A supervisor is a gen_server that traps exits. Each child is started by
calling its start function *from the supervisor process*, so the child's
``start_link`` links it to the supervisor. A crash reaches the supervisor
as ``('EXIT', pid, reason)`` and ``handle_info`` decides, by restart type,
whether to start the child again.

Differences from OTP: shutdown timeouts and the intensity period are
seconds, not milliseconds; a start function is ``(callable, args)`` where
Erlang has ``{M, F, A}``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from repg2 import erlang, gen_server
from repg2.erlang import TIMEOUT, Pid

__all__ = [
    "count_children",
    "delete_child",
    "restart_child",
    "start_child",
    "start_link",
    "terminate_child",
    "which_children",
]

log = logging.getLogger("repg2.supervisor")

SupRef = Pid | str | tuple[str, str]  # a supervisor: pid, local name or (name, node)


@dataclass
class Child:
    """One child spec and the pid running it (``'undefined'`` when not running).

    Erlang: none (supervisor.erl's #child{} record)
    """

    id: Any
    start: tuple[Any, list[Any]]  # (callable, args): Erlang's {M, F, A}
    restart: str = "permanent"  # permanent | transient | temporary
    shutdown: Any = 5  # brutal_kill | seconds | 'infinity'
    type: str = "worker"  # worker | supervisor
    modules: Any = "dynamic"
    pid: Any = "undefined"


@dataclass
class State:
    """A supervisor's state: its strategy, intensity, and children in start order.

    Erlang: none (supervisor.erl's #state{} record)
    """

    name: Any
    strategy: str
    intensity: int
    period: float
    children: list[Child] = field(default_factory=list)
    restarts: list[float] = field(default_factory=list)
    module: Any = None
    args: Any = None


def start_link(*args: Any) -> Any:
    """Start a supervisor linked to the caller: ``start_link([name,] module, args)``.

    Erlang: supervisor:start_link/2
    Erlang: supervisor:start_link/3

    ``module.init(args)`` returns ``('ok', (sup_flags, child_specs))``.
    """
    name, module, init_args = (None, *args) if len(args) == 2 else args
    return gen_server.start_link(name, _Supervisor(), (name, module, init_args))


def start(name: tuple[str, str] | None, module: Any, args: Any) -> Any:
    """Start a supervisor with no link to the caller (used to boot a node).

    Erlang: none (OTP starts supervisors linked; a node's boot has a parent process)
    """
    return gen_server.start(name, _Supervisor(), (name, module, args))


def start_child(sup: SupRef, spec: Any) -> Any:
    """Add a child spec to a running supervisor and start the child.

    Erlang: supervisor:start_child/2

    Returns:
        ``('ok', pid)``, ``('ok', 'undefined')`` when the start function
        returned ``'ignore'``, ``('error', ('already_started', pid))`` when a
        child with that id runs, ``('error', 'already_present')`` when it is
        known but not running, or ``('error', reason)`` when it failed to start.
    """
    return gen_server.call(sup, ("start_child", spec), "infinity")


def terminate_child(sup: SupRef, child_id: Any) -> Any:
    """Stop a child, keeping its spec; ``'ok'`` or ``('error', 'not_found')``.

    Erlang: supervisor:terminate_child/2
    """
    return gen_server.call(sup, ("terminate_child", child_id), "infinity")


def delete_child(sup: SupRef, child_id: Any) -> Any:
    """Forget a stopped child's spec.

    Erlang: supervisor:delete_child/2
    """
    return gen_server.call(sup, ("delete_child", child_id), "infinity")


def restart_child(sup: SupRef, child_id: Any) -> Any:
    """Start again a child whose spec is kept but which is not running.

    Erlang: supervisor:restart_child/2
    """
    return gen_server.call(sup, ("restart_child", child_id), "infinity")


def which_children(sup: SupRef) -> list[tuple[Any, Any, str, Any]]:
    """List ``(id, pid_or_undefined, type, modules)`` for every child, newest first.

    Erlang: supervisor:which_children/1
    """
    children: list[tuple[Any, Any, str, Any]] = gen_server.call(sup, "which_children", "infinity")
    return children


def count_children(sup: SupRef) -> list[tuple[str, int]]:
    """Count the children by kind: specs, active, supervisors, workers.

    Erlang: supervisor:count_children/1
    """
    counts: list[tuple[str, int]] = gen_server.call(sup, "count_children", "infinity")
    return counts


# == The supervisor as a gen_server =============================================


def _child_from_spec(spec: Any) -> Child:
    """Check a child spec (tuple or dict) and turn it into a :class:`Child`.

    Erlang: supervisor:check_childspec/1

    Raises:
        ValueError: naming the bad field, as OTP's ``{invalid_child_spec, ...}``.
    """
    if isinstance(spec, dict):
        if "id" not in spec or "start" not in spec:
            raise ValueError(f"invalid_child_spec: needs 'id' and 'start': {spec!r}")
        child = Child(
            id=spec["id"],
            start=spec["start"],
            restart=spec.get("restart", "permanent"),
            shutdown=spec.get("shutdown", 5),
            type=spec.get("type", "worker"),
            modules=spec.get("modules", "dynamic"),
        )
    elif isinstance(spec, tuple) and len(spec) == 6:
        child = Child(*spec)
    else:
        raise ValueError(f"invalid_child_spec: {spec!r}")
    fun_args = child.start
    if not (isinstance(fun_args, tuple) and len(fun_args) == 2 and callable(fun_args[0])):
        raise ValueError(f"invalid_mfa: start must be (callable, args): {fun_args!r}")
    if child.restart not in ("permanent", "transient", "temporary"):
        raise ValueError(f"invalid_restart_type: {child.restart!r}")
    if child.type not in ("worker", "supervisor"):
        raise ValueError(f"invalid_child_type: {child.type!r}")
    if not (
        child.shutdown in ("brutal_kill", "infinity")
        or (isinstance(child.shutdown, (int, float)) and child.shutdown >= 0)
    ):
        raise ValueError(f"invalid_shutdown: {child.shutdown!r}")
    return child


def _sup_flags(flags: Any) -> tuple[str, int, float]:
    """Read ``(strategy, intensity, period)`` from a tuple or a dict.

    Erlang: supervisor:init_state/4
    """
    if isinstance(flags, dict):
        flags = (flags.get("strategy", "one_for_one"), flags.get("intensity", 1), flags.get("period", 5))
    strategy, intensity, period = flags
    if strategy != "one_for_one":
        raise ValueError(f"invalid_strategy: only one_for_one is ported, not {strategy!r}")
    return strategy, intensity, period


class _Supervisor:
    """The gen_server callback module of every supervisor.

    Erlang: none (supervisor.erl is itself a gen_server callback module)
    """

    def init(self, args: tuple[Any, Any, Any]) -> Any:
        """Trap exits, ask the user module for flags and specs, start the children.

        Erlang: supervisor:init/1
        Erlang: supervisor:init_children/2
        """
        name, module, init_args = args
        erlang.process_flag("trap_exit", True)
        result = module.init(init_args)
        match result:
            case ("ok", (flags, specs)):  # Erlang: {ok, {SupFlags, StartSpec}}
                try:
                    strategy, intensity, period = _sup_flags(flags)
                    children = [_child_from_spec(spec) for spec in specs]
                except ValueError as exc:
                    return ("stop", ("supervisor_data", str(exc)))
                state = State(name, strategy, intensity, period, module=module, args=init_args)
                for child in children:
                    started = _do_start_child(child)
                    if started[0] == "error":
                        _terminate_children(state)
                        return ("stop", ("shutdown", ("failed_to_start_child", child.id, started[1])))
                    state.children.append(child)
                return ("ok", state)
            case "ignore":  # Erlang: ignore
                return "ignore"
            case other:  # Erlang: Error -> {stop, {bad_return, ...}}
                return ("stop", ("bad_return", (module, "init", other)))

    def handle_call(self, request: Any, from_: Any, state: State) -> Any:
        """Serve the client functions.

        Erlang: supervisor:handle_call/3
        """
        child: Child | None  # the child the request names; None when it names no known child
        match request:
            case ("start_child", spec):  # Erlang: handle_call({start_child, ChildSpec}, ...)
                try:
                    child = _child_from_spec(spec)
                except ValueError as exc:
                    return ("reply", ("error", str(exc)), state)
                known = _find(state, child.id)
                if known is not None:
                    if known.pid != "undefined":
                        return ("reply", ("error", ("already_started", known.pid)), state)
                    return ("reply", ("error", "already_present"), state)
                started = _do_start_child(child)
                if started[0] == "error":
                    return ("reply", started, state)
                if not (child.pid == "undefined" and child.restart == "temporary"):
                    state.children.append(child)
                return ("reply", started, state)
            case ("terminate_child", child_id):  # Erlang: handle_call({terminate_child, Name}, ...)
                child = _find(state, child_id)
                if child is None:
                    return ("reply", ("error", "not_found"), state)
                _shutdown(child)
                if child.restart == "temporary":
                    state.children.remove(child)
                return ("reply", "ok", state)
            case ("delete_child", child_id):  # Erlang: handle_call({delete_child, Name}, ...)
                child = _find(state, child_id)
                if child is None:
                    return ("reply", ("error", "not_found"), state)
                if child.pid != "undefined":
                    return ("reply", ("error", "running"), state)
                state.children.remove(child)
                return ("reply", "ok", state)
            case ("restart_child", child_id):  # Erlang: handle_call({restart_child, Name}, ...)
                child = _find(state, child_id)
                if child is None:
                    return ("reply", ("error", "not_found"), state)
                if child.pid != "undefined":
                    return ("reply", ("error", "running"), state)
                return ("reply", _do_start_child(child), state)
            case "which_children":  # Erlang: handle_call(which_children, ...)
                rows = [(c.id, c.pid, c.type, c.modules) for c in reversed(state.children)]
                return ("reply", rows, state)
            case "count_children":  # Erlang: handle_call(count_children, ...)
                active = sum(1 for c in state.children if c.pid != "undefined")
                sups = sum(1 for c in state.children if c.type == "supervisor")
                counts = [
                    ("specs", len(state.children)),
                    ("active", active),
                    ("supervisors", sups),
                    ("workers", len(state.children) - sups),
                ]
                return ("reply", counts, state)
            case _:
                log.error("supervisor received unexpected call %r", request)
                return ("reply", ("error", ("unexpected_call", request)), state)

    def handle_cast(self, msg: Any, state: State) -> Any:
        """Ignore casts, with a log line (supervisors take none).

        Erlang: supervisor:handle_cast/2
        """
        log.error("supervisor received unexpected cast %r", msg)
        return ("noreply", state)

    def handle_info(self, msg: Any, state: State) -> Any:
        """Restart a child that exited, if its restart type says so.

        Erlang: supervisor:handle_info/2
        Erlang: supervisor:restart_child/3
        """
        match msg:
            case ("EXIT", Pid() as pid, reason):  # Erlang: handle_info({'EXIT', Pid, Reason}, State)
                child = next((c for c in state.children if c.pid == pid), None)
                if child is None:
                    return ("noreply", state)
                child.pid = "undefined"
                if reason not in ("normal", "shutdown"):
                    log.error("supervisor %r: child %r exited with %r", state.name, child.id, reason)
                if child.restart == "temporary":
                    state.children.remove(child)
                    return ("noreply", state)
                if child.restart == "transient" and (
                    reason in ("normal", "shutdown") or (isinstance(reason, tuple) and reason[:1] == ("shutdown",))
                ):
                    return ("noreply", state)
                return _restart(child, state)
            case _:
                log.error("supervisor %r received unexpected message %r", state.name, msg)
                return ("noreply", state)

    def terminate(self, reason: Any, state: State) -> None:
        """Stop every child, newest first.

        Erlang: supervisor:terminate/2
        """
        _terminate_children(state)


def _restart(child: Child, state: State) -> Any:
    """Count the restart against the intensity, then start the child again.

    Erlang: supervisor:restart/2
    Erlang: supervisor:add_restart/1
    """
    now = time.monotonic()
    state.restarts = [t for t in state.restarts if now - t <= state.period] + [now]
    if len(state.restarts) > state.intensity:
        log.error("supervisor %r: reached max restart intensity; shutting down", state.name)
        return ("stop", "shutdown", state)
    started = _do_start_child(child)
    if started[0] == "error":
        # OTP retries through a {try_again_restart, ...} cast; we retry at once,
        # still counting against the intensity.
        return _restart(child, state)
    return ("noreply", state)


def _do_start_child(child: Child) -> Any:
    """Call the child's start function and record its pid.

    Erlang: supervisor:do_start_child/2
    Erlang: supervisor:do_start_child_i/3
    """
    fun, args = child.start
    try:
        result = fun(*args)
    except erlang.ExitError as exc:
        return ("error", exc.reason)
    except Exception as exc:
        return ("error", exc)
    match result:
        case ("ok", Pid() as pid):  # Erlang: {ok, Pid}
            child.pid = pid
            return ("ok", pid)
        case ("ok", Pid() as pid, extra):  # Erlang: {ok, Pid, Extra}
            child.pid = pid
            return ("ok", pid, extra)
        case "ignore":  # Erlang: ignore
            return ("ok", "undefined")
        case ("error", reason):  # Erlang: {error, What}
            return ("error", reason)
        case other:
            return ("error", other)


def _find(state: State, child_id: Any) -> Child | None:
    """Find a child by id.

    Erlang: supervisor:get_child/2
    """
    return next((c for c in state.children if c.id == child_id), None)


def _terminate_children(state: State) -> None:
    """Shut down every running child in reverse start order.

    Erlang: supervisor:terminate_children/2
    """
    for child in reversed(state.children):
        _shutdown(child)


def _shutdown(child: Child) -> None:
    """Stop one child as its shutdown field says, and wait for it to be gone.

    Erlang: supervisor:shutdown/2

    ``brutal_kill`` sends ``'kill'``; a number sends ``'shutdown'`` and
    kills after that many seconds; ``'infinity'`` waits for ever (for
    supervisors). The link is replaced by a monitor first, as OTP does, so
    the child's end is seen exactly once.
    """
    pid = child.pid
    if pid == "undefined":
        return
    child.pid = "undefined"
    mref = erlang.monitor("process", pid)
    erlang.unlink(pid)
    erlang.flush(lambda m: isinstance(m, tuple) and len(m) == 3 and m[0] == "EXIT" and m[1] == pid)
    is_down = lambda m: isinstance(m, tuple) and len(m) == 5 and m[:2] == ("DOWN", mref)  # noqa: E731
    if child.shutdown == "brutal_kill":
        erlang.exit(pid, "kill")
        erlang.receive(is_down)
        return
    erlang.exit(pid, "shutdown")
    if erlang.receive(is_down, timeout=child.shutdown) is TIMEOUT:
        erlang.exit(pid, "kill")
        erlang.receive(is_down)
