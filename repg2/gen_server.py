"""The generic server: a process that loops over calls, casts and other messages.

Translates ``lib/stdlib/src/gen_server.erl`` of Erlang/OTP 18.3, with the
parts of ``gen.erl``, ``proc_lib.erl`` and ``sys.erl`` it leans on.

Ported: ``start/3,4``, ``start_link/3,4`` (with ``('local', Name)``
registration), ``call/2,3``, ``cast/2``, ``reply/2``, ``stop/1,3``,
``multi_call/2,3,4``, ``abcast/2,3``, the server loop with the callbacks
``init/1``, ``handle_call/3``, ``handle_cast/2``, ``handle_info/2`` and
``terminate/2`` and every return tuple they may give, and from ``sys``:
``get_state/1`` (a cheap synchronous barrier: when it returns, every message
sent to the server before it has been handled), ``suspend/1`` and
``resume/1``.

Left out: ``{global, Name}`` and ``{via, Mod, Name}`` registration,
``enter_loop``, hibernation, ``code_change`` and the rest of ``sys`` (debug
options), ``format_status``.

How it works
------------
A *callback module* is any object with the callback functions as attributes:
a Python module (``repg2.pg2`` passes itself, as ``pg2.erl`` passes
``?MODULE``) or an instance of a class. The server is an ``erlang`` process
that receives messages in arrival order and dispatches on their shape:

- ``('$gen_call', (from_pid, tag), request)``  -> ``handle_call``
- ``('$gen_cast', msg)``                         -> ``handle_cast``
- ``('system', from, request)``                  -> sys requests (get_state, terminate)
- ``('EXIT', parent, reason)`` (when trapping)   -> terminate, as gen_server does
- anything else                                  -> ``handle_info``

A call is answered with ``(tag, reply)`` where ``tag`` is the caller's
monitor reference, so the caller can tell the reply from a ``'DOWN'`` of the
server in one selective receive.

Differences from OTP (see ``TRANSLATION_NOTES.md``): timeouts are seconds
(``call``'s default is 5 s, Erlang's 5000 ms); a reply that arrives after
``call`` gave up is dropped on arrival (as OTP 24's process aliases do)
instead of staying in the caller's mailbox as it would in OTP 18.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from repg2 import erlang
from repg2.erlang import TIMEOUT, ExitError, Pid, Ref
from repg2.external import ImproperList

__all__ = [
    "abcast",
    "call",
    "cast",
    "get_state",
    "multi_call",
    "reply",
    "start",
    "start_link",
    "resume",
    "stop",
    "suspend",
]

log = logging.getLogger("repg2.gen_server")

ServerRef = Pid | str | tuple[str, str]  # a pid, a local name, or (name, node)
From = tuple[Pid, Ref]  # who to reply to: (caller pid, tag)
Timeout = float | int | str | None  # seconds, or 'infinity'
MultiCallResult = tuple[list[tuple[str, Any]], list[str]]  # (replies [(node, reply)], bad_nodes)

DEFAULT_CALL_TIMEOUT = 5  # seconds; gen_server:call/2 waits 5000 ms


# == Starting ===================================================================


def start(name: tuple[str, str] | None, module: Any, args: Any, options: list[Any] | None = None) -> Any:
    """Start a server without a link; return ``('ok', pid)`` once ``init`` has returned.

    Erlang: gen_server:start/3
    Erlang: gen_server:start/4
    """
    return _start(name, module, args, link=False, options=options)


def start_link(name: tuple[str, str] | None, module: Any, args: Any, options: list[Any] | None = None) -> Any:
    """Start a server linked to the caller; return ``('ok', pid)`` once ``init`` has returned.

    Erlang: gen_server:start_link/3
    Erlang: gen_server:start_link/4

    Like ``proc_lib:start_link``, the caller waits until the new process
    acknowledges: ``init`` returned ``('ok', State)`` -> ``('ok', pid)``;
    ``('stop', Reason)`` -> ``('error', Reason)``; ``'ignore'`` -> ``'ignore'``;
    the name is taken -> ``('error', ('already_started', pid))``.
    """
    return _start(name, module, args, link=True, options=options)


def _start(name: tuple[str, str] | None, module: Any, args: Any, link: bool, options: list[Any] | None) -> Any:
    """Spawn the server and wait for its init acknowledgement.

    Erlang: gen:start/6
    Erlang: proc_lib:sync_wait/2
    """
    # DIVERGENCE(D11): only {local, Name}; {global, Name} and {via, ...} are not ported.
    if name is not None and (
        not isinstance(name, tuple) or len(name) != 2 or name[0] != "local" or not isinstance(name[1], str)
    ):
        raise erlang.ErlangError("badarg", f"gen_server:start_link/4: unsupported name {name!r}")
    timeout = "infinity"
    for opt in options or []:
        if isinstance(opt, tuple) and len(opt) == 2 and opt[0] == "timeout":
            timeout = opt[1]
    parent = erlang.self()
    tag = erlang.make_ref()
    # proc_lib:sync_wait: wait for the ack, or for the child's death if it
    # dies before acknowledging (we are linked, or we monitor it). Without a
    # link the monitor is taken atomically with the spawn; with one, the
    # monitor can come too late and say noproc, and the link's 'EXIT' has the
    # real reason (see below).
    if link:
        pid = erlang.spawn_link(_init_it, parent, tag, name, module, args)
        mref = erlang.monitor("process", pid)
    else:
        pid, mref = erlang.spawn_monitor(_init_it, parent, tag, name, module, args)
    msg = erlang.receive(
        lambda m: (
            isinstance(m, tuple)
            and ((len(m) == 3 and m[0] == "ack" and m[1] == tag) or (len(m) == 5 and m[0] == "DOWN" and m[1] == mref))
        ),
        timeout=timeout,
    )
    erlang.demonitor(mref, ["flush"])
    if msg is TIMEOUT:
        erlang.unlink(pid)
        erlang.exit(pid, "kill")
        return ("error", "timeout")
    if msg[0] == "DOWN":
        # A trapping caller always gets the link's 'EXIT' (spawn_link linked
        # before the child ran), maybe after the 'DOWN': consume it, as
        # proc_lib:sync_wait/2 does, and take its reason, which is right even
        # when the monitor came too late.
        if link and erlang._current().trap_exit:
            exit_msg = erlang.receive(lambda m: isinstance(m, tuple) and len(m) == 3 and m[:2] == ("EXIT", pid))
            return ("error", exit_msg[2])
        return ("error", msg[4])
    return msg[2]


def _init_it(parent: Pid, tag: Ref, name: tuple[str, str] | None, module: Any, args: Any) -> None:
    """Register the name, run ``init`` and acknowledge, then enter the loop.

    Erlang: gen_server:init_it/6
    Erlang: gen:init_it/6
    """
    me = erlang.self()
    if name is not None:
        holder = erlang.whereis(name[1])
        if holder != "undefined" or not _try_register(name[1], me):
            holder = erlang.whereis(name[1])
            erlang.send(parent, ("ack", tag, ("error", ("already_started", holder))))
            return
    try:
        result = module.init(args)
    except ExitError as exc:  # Erlang: {'EXIT', Reason}
        _unregister_name(name)
        erlang.send(parent, ("ack", tag, ("error", exc.reason)))
        raise
    except Exception as exc:  # Erlang: {'EXIT', Reason}
        _unregister_name(name)
        erlang.send(parent, ("ack", tag, ("error", exc)))
        raise
    match result:
        case ("ok", state):  # Erlang: {ok, State}
            erlang.send(parent, ("ack", tag, ("ok", me)))
            _loop(parent, name, state, module, "infinity")
        case ("ok", state, timeout):  # Erlang: {ok, State, Timeout}
            erlang.send(parent, ("ack", tag, ("ok", me)))
            _loop(parent, name, state, module, timeout)
        case ("stop", reason):  # Erlang: {stop, Reason}
            _unregister_name(name)
            erlang.send(parent, ("ack", tag, ("error", reason)))
            erlang.exit(reason)
        case "ignore":  # Erlang: ignore
            _unregister_name(name)
            erlang.send(parent, ("ack", tag, "ignore"))
        case other:  # Erlang: Else -> {error, {bad_return_value, Else}}
            erlang.send(parent, ("ack", tag, ("error", ("bad_return_value", other))))
            erlang.exit(("bad_return_value", other))


def _unregister_name(name: tuple[str, str] | None) -> None:
    """Free the server's name before telling the starter that init failed.

    Erlang: gen_server:unregister_name/1

    Otherwise a starter that tries again at once could find the name still
    held by the dying process and get ``already_started``.
    """
    if name is not None:
        try:
            erlang.unregister(name[1])
        except erlang.ErlangError:
            pass  # Erlang: catch unregister(Name)


def _try_register(name: str, pid: Pid) -> bool:
    """Register ``name``; False if another process got it first.

    Erlang: gen:register_name/1
    """
    try:
        return erlang.register(name, pid)
    except erlang.ErlangError:
        return False


# == The loop =====================================================================


def _loop(parent: Pid, name: Any, state: Any, module: Any, timeout: Timeout) -> None:
    """Receive one message at a time and dispatch it by shape.

    Erlang: gen_server:loop/6
    """
    while True:
        msg = erlang.receive(timeout=timeout, after="timeout")
        # DIVERGENCE(D54): a callback's frames to other nodes leave when it returns or waits, not at each send.
        with erlang._corked():  # the frames of one callback leave together (see Distribution.corked)
            state, timeout = _handle_msg(parent, name, module, state, timeout, msg)


def _handle_msg(parent: Pid, name: Any, module: Any, state: Any, timeout: Timeout, msg: Any) -> tuple[Any, Timeout]:
    """Dispatch one message by its shape; return the new state and timeout.

    Erlang: gen_server:decode_msg/8
    Erlang: gen_server:handle_msg/5
    """
    match msg:
        case ("$gen_call", (Pid(), _) as from_, request):  # Erlang: {'$gen_call', From, Msg}
            result = _dispatch(module, "handle_call", state, request, from_)
            state, timeout = _handle_call_result(parent, name, module, state, msg, from_, result)
        case ("$gen_cast", cast_msg):  # Erlang: {'$gen_cast', Msg}
            result = _dispatch(module, "handle_cast", state, cast_msg)
            state, timeout = _handle_common_reply(parent, name, module, state, msg, result)
        case ("system", from_, request):  # Erlang: {system, From, Req} (sys protocol)
            state, timeout = _handle_system(parent, name, module, state, from_, request, timeout)
        case ("EXIT", pid, reason) if pid == parent:  # Erlang: {'EXIT', Parent, Reason}
            _terminate(reason, name, msg, module, state)
        case _:  # Erlang: any other message, and 'timeout'
            result = _dispatch(module, "handle_info", state, msg)
            state, timeout = _handle_common_reply(parent, name, module, state, msg, result)
    return state, timeout


def _dispatch(module: Any, callback: str, state: Any, *args: Any) -> Any:
    """Call a callback, turning a crash into Erlang's ``{'EXIT', Reason}`` value.

    Erlang: gen_server:try_dispatch/4
    Erlang: gen_server:try_handle_call/4
    """
    fun: Callable[..., Any] | None = getattr(module, callback, None)
    if fun is None and callback == "handle_info":
        log.warning("%r: undefined handle_info/2 got %r", module, args[0])
        return ("noreply", state)
    try:
        if fun is None:  # a missing callback crashes the server, as Erlang's undef does
            raise TypeError(f"{module!r} has no callback {callback}")
        return fun(*args, state)
    except ExitError as exc:
        return ("EXIT", exc.reason, exc)
    except Exception as exc:
        return ("EXIT", exc, exc)


def _handle_call_result(
    parent: Pid, name: Any, module: Any, state: Any, msg: Any, from_: From, result: Any
) -> tuple[Any, Timeout]:
    """Act on what ``handle_call`` returned: reply, keep going, or stop.

    Erlang: gen_server:handle_msg/5 (the '$gen_call' branch)
    """
    match result:
        case ("reply", answer, new_state):  # Erlang: {reply, Reply, NState}
            reply(from_, answer)
            return new_state, "infinity"
        case ("reply", answer, new_state, timeout):  # Erlang: {reply, Reply, NState, Time1}
            reply(from_, answer)
            return new_state, timeout
        case ("stop", reason, answer, new_state):  # Erlang: {stop, Reason, Reply, NState}
            try:
                # Erlang: {'EXIT', R} = (catch terminate(...)): exit with what terminate made of it
                reason = _terminate(reason, name, msg, module, new_state, reraise=False)
            finally:
                reply(from_, answer)
            erlang.exit(reason)
        case _:
            return _handle_common_reply(parent, name, module, state, msg, result)
    raise AssertionError("unreachable")  # pragma: no cover


def _handle_common_reply(parent: Pid, name: Any, module: Any, state: Any, msg: Any, result: Any) -> tuple[Any, Timeout]:
    """Act on a ``noreply``/``stop`` result, or on a crashed callback.

    Erlang: gen_server:handle_common_reply/6
    """
    match result:
        case ("noreply", new_state):  # Erlang: {noreply, NState}
            return new_state, "infinity"
        case ("noreply", new_state, timeout):  # Erlang: {noreply, NState, Time1}
            return new_state, timeout
        case ("stop", reason, new_state):  # Erlang: {stop, Reason, NState}
            _terminate(reason, name, msg, module, new_state)
        case ("EXIT", reason, exc):  # Erlang: {'EXIT', What} (the callback crashed)
            _terminate(reason, name, msg, module, state, crash=exc)
        case other:  # Erlang: _BadReply -> terminate({bad_return_value, BadReply}, ...)
            _terminate(("bad_return_value", other), name, msg, module, state)
    raise AssertionError("unreachable")  # pragma: no cover


def _terminate(
    reason: Any,
    name: Any,
    msg: Any,
    module: Any,
    state: Any,
    crash: BaseException | None = None,
    reraise: bool = True,
) -> Any:
    """Call ``terminate``, log an abnormal end, and exit with ``reason``.

    Erlang: gen_server:terminate/6
    Erlang: gen_server:error_info/5

    A ``terminate`` that crashes replaces ``reason`` with its own crash, as
    in OTP. With ``reraise=False`` the final reason is returned instead of
    raised, for the callers that must reply before exiting.
    """
    fun = getattr(module, "terminate", None)
    if fun is not None:
        try:
            fun(reason, state)
        except ExitError as exc:
            reason = exc.reason
        except Exception as exc:
            reason = exc
    if reason not in ("normal", "shutdown") and not (isinstance(reason, tuple) and reason[:1] == ("shutdown",)):
        log.error(
            "** Generic server %r terminating\n** Last message in was %r\n** When Server state == %r\n"
            "** Reason for termination == %r",
            name[1] if name else erlang.self(),
            msg,
            state,
            reason,
            exc_info=crash,
        )
    if reraise:
        erlang.exit(reason)
    return reason


def _handle_system(
    parent: Pid, name: Any, module: Any, state: Any, from_: Any, request: Any, timeout: Timeout
) -> tuple[Any, Timeout]:
    """Answer the ``sys`` requests ported here: ``get_state`` and ``terminate``.

    Erlang: sys:handle_system_msg/6
    Erlang: gen_server:system_terminate/4
    Erlang: gen_server:system_get_state/1
    """
    match request:
        case "get_state":  # Erlang: sys:get_state/1
            reply(from_, state)
            return state, timeout
        case "suspend":  # Erlang: sys:suspend/1
            reply(from_, "ok")
            return _suspended(parent, name, module, state, timeout)
        case "resume":  # Erlang: sys:resume/1 (when not suspended: nothing to do)
            reply(from_, "ok")
            return state, timeout
        case ("terminate", reason):  # Erlang: sys:terminate/2 (used by gen_server:stop)
            try:
                reason = _terminate(reason, name, ("system", from_, request), module, state, reraise=False)
            finally:
                reply(from_, "ok")
            erlang.exit(reason)
        case _:
            reply(from_, ("error", ("unknown_system_msg", request)))
            return state, timeout
    raise AssertionError("unreachable")  # pragma: no cover


def _suspended(parent: Pid, name: Any, module: Any, state: Any, timeout: Timeout) -> tuple[Any, Timeout]:
    """Handle only system messages until ``resume``; everything else waits in the mailbox.

    Erlang: sys:handle_system_msg/6 (the suspended loop)
    """
    is_system = lambda m: isinstance(m, tuple) and len(m) == 3 and m[0] == "system"  # noqa: E731
    while True:
        _system, from_, request = erlang.receive(is_system)
        if request == "resume":
            reply(from_, "ok")
            return state, timeout
        state, timeout = _handle_system(parent, name, module, state, from_, request, timeout)


# == Client functions ===============================================================


def _dest(server: ServerRef, fun: str) -> Pid | str | tuple[str, str]:
    """Check a server reference: a pid, a registered name, or ``(name, node)``.

    Erlang: none (Erlang's function clauses reject other shapes with function_clause)
    """
    if isinstance(server, (Pid, str)):
        return server
    if isinstance(server, tuple) and len(server) == 2 and all(isinstance(x, str) for x in server):
        return server
    raise erlang.ErlangError("badarg", f"{fun}: not a server reference: {server!r}")


def _check_timeout(timeout: Timeout, fun: str) -> None:
    """Refuse a timeout that is neither ``'infinity'`` nor a finite number of seconds >= 0.

    Erlang: none (the guards of gen:call/4: Timeout =:= infinity; is_integer(Timeout), Timeout >= 0)

    Checked before anything is sent: a request whose wait would then fail
    must not reach the server (a ``stop`` would still stop it) nor leave a
    monitor and a late reply behind in the caller.
    """
    if timeout is None or timeout == "infinity":
        return
    # Chained, so NaN and +inf are refused too.
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < float("inf"):
        raise erlang.ErlangError("badarg", f"{fun}: bad timeout {timeout!r} (seconds >= 0 or 'infinity')")


# DIVERGENCE(D2): the default timeout is 5 seconds, Erlang's 5000 milliseconds.
def call(server: ServerRef, request: Any, timeout: Timeout = DEFAULT_CALL_TIMEOUT) -> Any:
    """Send ``request`` to a server and wait for its reply.

    Erlang: gen_server:call/2
    Erlang: gen_server:call/3
    Erlang: gen:call/4

    The caller monitors the server and uses the monitor reference as the
    tag of the request, so one selective receive sees either the reply or
    the server's ``'DOWN'``.

    Raises:
        ExitError: reason ``('timeout', ('gen_server', 'call', [server, request, timeout]))``
        when no reply came in time; ``('noproc', ...)`` when the server does
        not exist; ``(('nodedown', node), ...)`` when its node is gone; the
        server's exit reason when it dies before replying.
    """
    dest = _dest(server, "gen_server:call/3")
    _check_timeout(timeout, "gen_server:call/3")
    where = ("gen_server", "call", [server, request, timeout] if timeout != DEFAULT_CALL_TIMEOUT else [server, request])
    me = erlang.self()
    if isinstance(dest, str):
        target = erlang.whereis(dest)
        if not isinstance(target, Pid):  # 'undefined'
            raise ExitError(("noproc", where))
        dest = target
    with erlang._corked():  # a remote server's monitor and request share one write
        mref = erlang.monitor("process", dest)
        erlang.send(dest, ("$gen_call", (me, mref), request))
    msg = erlang.receive(
        lambda m: (
            isinstance(m, tuple) and ((len(m) == 2 and m[0] == mref) or (len(m) == 5 and m[:2] == ("DOWN", mref)))
        ),
        timeout=timeout,
    )
    if msg is TIMEOUT:
        erlang.demonitor(mref, ["flush"])
        _drop_late_replies(mref)
        raise ExitError(("timeout", where))
    if len(msg) == 2:
        erlang.demonitor(mref, ["flush"])
        return msg[1]
    reason = msg[4]
    if reason == "noconnection":
        node = dest[1] if isinstance(dest, tuple) else erlang.node(dest)
        raise ExitError((("nodedown", node), where))
    raise ExitError((reason, where))


def _drop_late_replies(tag: Ref) -> None:
    """Make sure a reply tagged ``tag`` arriving from now on is dropped.

    Erlang: none (OTP 18 leaves late replies in the mailbox; OTP 24 uses aliases)
    """
    erlang._drop_tagged(tag)


def cast(server: ServerRef, msg: Any) -> str:
    """Send an asynchronous request; always return ``'ok'``.

    Erlang: gen_server:cast/2
    """
    dest = _dest(server, "gen_server:cast/2")
    try:
        erlang.send(dest, ("$gen_cast", msg))
    except erlang.ErlangError:
        pass  # a cast to a name nobody has is silently lost, as in OTP
    return "ok"


def reply(client: From, answer: Any) -> Any:
    """Send ``answer`` to a caller waiting in :func:`call`.

    Erlang: gen_server:reply/2
    Erlang: gen:reply/2

    An OTP 25 caller tags its request ``[alias | Mref]`` (an improper list)
    and waits for the reply on the *alias* ``Mref``, not on its pid, so
    that a reply after it gave up is dropped by its runtime: the reply goes
    to the alias then, as ``gen:reply/2`` does. Our own calls use a plain
    reference as the tag and get the reply at their pid.
    """
    to, tag = client
    if isinstance(tag, ImproperList) and tag.head == ("alias",) and isinstance(tag.tail, Ref):
        erlang.send(tag.tail, (tag, answer))  # Erlang: Alias ! {Tag, Reply}
    else:
        erlang.send(to, (tag, answer))  # Erlang: To ! {Tag, Reply}
    return answer


def stop(server: ServerRef, reason: Any = "normal", timeout: Timeout = "infinity") -> str:
    """Ask a server to terminate with ``reason`` and wait until it has.

    Erlang: gen_server:stop/1
    Erlang: gen_server:stop/3
    Erlang: proc_lib:stop/3

    As ``proc_lib:stop/3`` does, return only once the server is gone (so its
    name is free for a new server at once), and exit with the server's
    reason if it ended with another one (say, its ``terminate`` crashed).
    """
    dest = _dest(server, "gen_server:stop/3")
    _check_timeout(timeout, "gen_server:stop/3")
    mref = erlang.monitor("process", dest)
    try:
        _system_call(server, ("terminate", reason), timeout)
    except ExitError as exc:
        erlang.demonitor(mref, ["flush"])
        if isinstance(exc.reason, tuple) and exc.reason[0] == reason:
            return "ok"
        raise
    down = erlang.receive(lambda m: isinstance(m, tuple) and len(m) == 5 and m[:2] == ("DOWN", mref))
    if down[4] != reason:
        raise ExitError(down[4])
    return "ok"


def get_state(server: ServerRef, timeout: Timeout = DEFAULT_CALL_TIMEOUT) -> Any:
    """Return a server's state: every message sent to it earlier has been handled.

    Erlang: sys:get_state/1
    Erlang: sys:get_state/2

    Tests use it as a barrier instead of sleeping.
    """
    return _system_call(server, "get_state", timeout)


def suspend(server: ServerRef, timeout: Timeout = DEFAULT_CALL_TIMEOUT) -> str:
    """Suspend a server: until :func:`resume` it handles only system messages.

    Erlang: sys:suspend/1
    Erlang: sys:suspend/2
    """
    reply: str = _system_call(server, "suspend", timeout)  # 'ok'
    return reply


def resume(server: ServerRef, timeout: Timeout = DEFAULT_CALL_TIMEOUT) -> str:
    """Resume a suspended server.

    Erlang: sys:resume/1
    Erlang: sys:resume/2
    """
    reply: str = _system_call(server, "resume", timeout)  # 'ok'
    return reply


def _system_call(server: ServerRef, request: Any, timeout: Timeout) -> Any:
    """Make a synchronous ``sys`` request.

    Erlang: sys:send_system_msg/2
    """
    dest = _dest(server, "sys:get_state/2")
    _check_timeout(timeout, f"sys:{request if isinstance(request, str) else request[0]}/2")
    me = erlang.self()
    if isinstance(dest, str):
        target = erlang.whereis(dest)
        if target == "undefined":
            raise ExitError(("noproc", ("sys", request, [server])))
        dest = target
    mref = erlang.monitor("process", dest)
    erlang.send(dest, ("system", (me, mref), request))
    msg = erlang.receive(
        lambda m: (
            isinstance(m, tuple) and ((len(m) == 2 and m[0] == mref) or (len(m) == 5 and m[:2] == ("DOWN", mref)))
        ),
        timeout=timeout,
    )
    erlang.demonitor(mref, ["flush"])
    if msg is TIMEOUT:
        _drop_late_replies(mref)
        raise ExitError(("timeout", ("sys", request, [server])))
    if len(msg) == 2:
        return msg[1]
    raise ExitError((msg[4], ("sys", request, [server])))


# == Calls to many nodes ===============================================================


def multi_call(*args: Any) -> MultiCallResult:
    """Call the server registered as ``name`` on many nodes at once.

    Erlang: gen_server:multi_call/2
    Erlang: gen_server:multi_call/3
    Erlang: gen_server:multi_call/4

    Forms: ``multi_call(name, request)``, ``multi_call(nodes, name, request)``,
    ``multi_call(nodes, name, request, timeout)``. The default node list is
    ``[node()] + nodes()``.

    Each request is sent to ``(name, node)`` as ``('$gen_call', (caller,
    (tag, node)), request)``, with a monitor on ``(name, node)`` so a node
    without the server, a node that cannot be reached, or a server that dies
    before replying shows as a ``'DOWN'``. One timer covers the whole call.
    With a finite timeout, OTP runs the calls from a *middleman* process so
    that a reply arriving after the deadline goes to the middleman, which
    has gone, and never to the caller; we do the same.

    Returns:
        ``(replies, bad_nodes)``: ``replies`` is ``[(node, reply)]`` and
        ``bad_nodes`` the nodes that did not answer, each in the order of
        ``nodes``, as OTP's ``send_nodes``/``rec_nodes`` leave them. A node
        named twice is called twice; an entry that is not an atom (a
        ``str``) is skipped, as OTP skips it.

    Raises:
        erlang.ErlangTypeError: reason ``'function_clause'`` when ``nodes``
        is not a list or ``name`` not an atom (the guard of
        ``multi_call/3,4``; D34).
    """
    nodes: Any
    name: Any
    timeout: Timeout
    if len(args) == 2:
        nodes, name, request, timeout = [erlang.node(), *erlang.nodes()], args[0], args[1], "infinity"
    elif len(args) == 3:
        nodes, name, request, timeout = args[0], args[1], args[2], "infinity"
    elif len(args) == 4:
        nodes, name, request, timeout = args
    else:
        raise TypeError("gen_server:multi_call/2,3,4: takes 2 to 4 arguments")
    if not isinstance(name, str) or not isinstance(nodes, list):  # DIVERGENCE(D34): also a TypeError
        raise erlang.ErlangTypeError(
            "function_clause",
            f"gen_server:multi_call/4: guard is_list(Nodes), is_atom(Name) fails: {nodes!r}, {name!r}",
        )
    _check_timeout(timeout, "gen_server:multi_call/4")
    if not isinstance(timeout, (int, float)):  # 'infinity' or None: _check_timeout refused anything else
        return _do_multi_call(nodes, name, request, None)
    return _multi_call_via_middleman(nodes, name, request, timeout)


def _multi_call_via_middleman(nodes: list[str], name: str, request: Any, timeout: float) -> MultiCallResult:
    """Run a timed multi_call in a helper process so no late reply reaches the caller.

    Erlang: gen_server:do_multi_call/4 (the Timeout =/= infinity branch)
    """
    caller = erlang.self()
    tag = erlang.make_ref()

    def middleman() -> None:
        """Make the calls and send the result to the caller.

        Erlang: gen_server:do_multi_call/4 (the spawned Receiver fun)
        """
        result = _do_multi_call(nodes, name, request, timeout)
        erlang.send(caller, (caller, tag, result))

    pid, mref = erlang.spawn_monitor(middleman)
    msg = erlang.receive(
        lambda m: (
            isinstance(m, tuple)
            and ((len(m) == 3 and m[0] == caller and m[1] == tag) or (len(m) == 5 and m[:2] == ("DOWN", mref)))
        )
    )
    erlang.demonitor(mref, ["flush"])
    if msg[0] == "DOWN":
        erlang.exit(msg[4])
    result: MultiCallResult = msg[2]
    return result


def _do_multi_call(nodes: list[Any], name: str, request: Any, timeout: float | None) -> MultiCallResult:
    """Send every request, then collect each node's reply or 'DOWN' until all are in or time is up.

    Erlang: gen_server:do_multi_call/4
    Erlang: gen_server:send_nodes/4
    Erlang: gen_server:rec_nodes/4
    Erlang: gen_server:rec_nodes_rest/5

    ``send_nodes`` monitors ``{Name, Node}`` and sends the request for each
    atom in ``nodes``, building its list of monitors by prepending;
    ``rec_nodes`` then waits for each node in turn (reply or 'DOWN'),
    prepending again, so both result lists come out in ``nodes``' order.
    When the timer fires, ``rec_nodes_rest`` takes the replies that have
    already arrived and calls the rest bad. (OTP's two-second probe for
    nodes too old to monitor a name is left out: every node monitors.)
    """
    me = erlang.self()
    tag = erlang.make_ref()
    monitors: list[tuple[str, Ref]] = []  # Erlang: Monitors, built by prepending
    with erlang._corked():  # each remote node's monitor and request share one write
        for node in nodes:
            if not isinstance(node, str):  # Erlang: skip non-atom Node
                continue
            mref = erlang.monitor("process", (name, node))
            erlang.send((name, node), ("$gen_call", (me, (tag, node)), request))
            monitors.insert(0, (node, mref))
    replies: list[tuple[str, Any]] = []
    bad: list[str] = []
    deadline = None if timeout is None else erlang._deadline(timeout)
    timed_out = False
    for node, mref in monitors:
        if not timed_out:
            wait = "infinity" if deadline is None else max(0.0, deadline - erlang._now())
            msg = erlang.receive(_reply_or_down(tag, node, mref), timeout=wait)
            timed_out = msg is TIMEOUT
        if timed_out:  # Erlang: rec_nodes_rest: what has arrived counts, the rest is bad
            msg = erlang.receive(_reply_or_down(tag, node, mref), timeout=0)
        if msg is TIMEOUT or msg[0] == "DOWN":
            erlang.demonitor(mref, ["flush"])
            bad.insert(0, node)
        else:
            erlang.demonitor(mref, ["flush"])
            replies.insert(0, (node, msg[1]))
    if timed_out:
        # Only a timeout leaves replies that may still come. With every node
        # answered or 'DOWN' none can: a server's reply travels before its
        # 'DOWN', and a lost connection carries nothing more.
        erlang._drop_tagged(tag)
    return replies, bad


def _reply_or_down(tag: Ref, node: str, mref: Ref) -> Callable[[Any], bool]:
    """Match node's reply ``((tag, node), reply)`` or the 'DOWN' of its monitor.

    Erlang: none (the two receive patterns of gen_server:rec_nodes/7)
    """

    def match(m: Any) -> bool:
        """Erlang: none (the receive patterns themselves)"""
        if not isinstance(m, tuple):
            return False
        if len(m) == 2 and m[0] == (tag, node):
            return True
        return len(m) == 5 and m[0] == "DOWN" and m[1] == mref

    return match


def abcast(*args: Any) -> str:
    """Cast ``msg`` to the server registered as ``name`` on many nodes; return ``'abcast'``.

    Erlang: gen_server:abcast/2
    Erlang: gen_server:abcast/3

    Forms: ``abcast(name, msg)`` (this node and every connected node) and
    ``abcast(nodes, name, msg)``. Like any send to ``(name, node)``, a
    missing server or an unreachable node loses the message silently.
    """
    if len(args) == 2:
        nodes, name, msg = [erlang.node(), *erlang.nodes()], args[0], args[1]
    elif len(args) == 3:
        nodes, name, msg = args
    else:
        raise TypeError("gen_server:abcast/2,3: takes 2 or 3 arguments")
    if not isinstance(name, str) or not isinstance(nodes, list):
        raise erlang.ErlangError("badarg", f"gen_server:abcast/3: bad arguments {nodes!r}, {name!r}")
    for node in nodes:
        erlang.send((name, node), ("$gen_cast", msg))
    return "abcast"
