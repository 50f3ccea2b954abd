"""Unit tests of ``repg2.gen_server``: starting, calls, casts, replies, stopping, multi_call.

Each test pins one behaviour of OTP 18's ``gen_server`` (named in its
docstring). Servers are started with ``gen_server.start`` unless the link is
the point, so a server that dies on purpose does not take the test's process
with it. Synchronisation is by messages with a deadline, monitors, and
``gen_server.get_state`` as a barrier; never by sleeping.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from support import down_reason, recv, tagged

from repg2 import erlang, gen_server
from repg2.erlang import ErlangError, ExitError, Pid

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("isolated_runtime")]

NAME = "test_gen_server_srv"


# == Helpers ====================================================================


class Server:
    """A test callback module: what each callback does is chosen by the request.

    Every ``handle_info`` message and every ``terminate`` is reported to
    ``observer`` as ``('info', msg)`` and ``('terminate', reason, state)``.
    """

    def __init__(self, observer: Pid | None = None, terminate_raises: BaseException | None = None) -> None:
        self.observer = observer
        self.terminate_raises = terminate_raises

    def _tell(self, msg: Any) -> None:
        if self.observer is not None:
            erlang.send(self.observer, msg)

    def init(self, args: Any) -> Any:
        match args:
            case ("raise", exc):
                raise exc
            case ("trap", state):
                erlang.process_flag("trap_exit", True)
                return ("ok", state)
            case ("block",):  # never acknowledges: only an exit signal ends it
                erlang.receive(lambda m: False)
            case ("unregister_then", name, result):  # the name is gone before init fails
                erlang.unregister(name)
                return result
            case ("die_before_ack", reason):
                erlang.exit(erlang.self(), reason)
                erlang.receive(lambda m: False)
        return args  # ('ok', State), ('ok', State, T), ('stop', R), 'ignore' or a bad value

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        match request:
            case ("reply", answer):
                return ("reply", answer, state)
            case ("reply_after", answer, timeout):
                return ("reply", answer, state, timeout)
            case ("noreply_after", timeout):
                return ("noreply", state, timeout)
            case ("defer", answer):  # Erlang: {noreply, State} now, gen_server:reply/2 later
                erlang.spawn(gen_server.reply, from_, answer)
                return ("noreply", state)
            case ("wait_for", release, answer):  # busy until told ``release``
                erlang.receive(lambda m: m == release)
                return ("reply", answer, state)
            case ("stop", reason, answer):
                return ("stop", reason, answer, state)
            case ("stop_noreply", reason):
                return ("stop", reason, state)
            case ("raise", exc):
                raise exc
            case ("exit", reason):
                erlang.exit(reason)
            case ("kill_caller",):
                erlang.exit(from_[0], "kill")
                return ("noreply", state)
            case _:  # Erlang: handle_call(_Unexpected, _From, State) -> {noreply, State}
                return ("noreply", state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        match msg:
            case ("set", value):
                return ("noreply", value)
            case ("append", value):
                return ("noreply", [*state, value])
            case ("noreply_after", timeout):
                return ("noreply", state, timeout)
            case ("stop", reason):
                return ("stop", reason, state)
            case ("raise", exc):
                raise exc
            case _:
                return "not a valid return"

    def handle_info(self, msg: Any, state: Any) -> Any:
        self._tell(("info", msg))
        if msg == "crash_in_info":
            raise RuntimeError("info crashed")
        return ("noreply", state)

    def terminate(self, reason: Any, state: Any) -> None:
        self._tell(("terminate", reason, state))
        if self.terminate_raises is not None:
            raise self.terminate_raises


class Minimal:
    """A callback module with only init and handle_call (no handle_info, no terminate)."""

    def init(self, args: Any) -> Any:
        return ("ok", args)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return ("reply", request, state)


class SlowToPrint:
    """An exit reason whose repr stalls the thread printing it, until ``release`` is set.

    Raising ``ExitError(reason)`` formats the reason, so a process exiting
    with this reason pauses between its last message and its actual end.
    That makes "the caller was answered before the process was gone"
    observable. The stall is bounded so a correct runtime, which waits for
    the end, only waits a moment.
    """

    def __init__(self) -> None:
        self.release = threading.Event()

    def __repr__(self) -> str:
        self.release.wait(0.5)
        return "SlowToPrint()"


def start_server(*args: Any, name: str | None = None, **kwargs: Any) -> Pid:
    """Start an unlinked :class:`Server` with init result ``('ok', *args)``, reporting to the test."""
    result = gen_server.start(None if name is None else ("local", name), Server(erlang.self(), **kwargs), ("ok", *args))
    assert result[0] == "ok", result
    return result[1]


# == Starting ===================================================================


def test_start_link_returns_ok_and_a_linked_registered_pid():
    """gen_server:start_link/4 returns {ok, Pid} once init returned, with the name registered and a link."""
    erlang.process_flag("trap_exit", True)
    result = gen_server.start_link(("local", NAME), Server(), ("ok", "state"))
    assert result == ("ok", erlang.whereis(NAME))
    pid = result[1]
    assert gen_server.get_state(pid) == "state"
    erlang.exit(pid, "kill")  # the link tells the test process
    assert recv(tagged("EXIT")) == ("EXIT", pid, "killed")


def test_start_link_with_a_taken_name_is_already_started():
    """Starting a second server under a taken name gives {error, {already_started, Pid}}."""
    first = start_server("one", name=NAME)
    assert gen_server.start_link(("local", NAME), Server(), ("ok", "two")) == ("error", ("already_started", first))
    assert gen_server.get_state(NAME) == "one"


@pytest.mark.parametrize(
    ("init_result", "expected", "reason"),
    [
        (("stop", "no_way"), ("error", "no_way"), "no_way"),
        ("ignore", "ignore", "normal"),
        (("bogus",), ("error", ("bad_return_value", ("bogus",))), ("bad_return_value", ("bogus",))),
        (("raise", ExitError("exited")), ("error", "exited"), "exited"),
    ],
    ids=["stop", "ignore", "bad_return_value", "exit"],
)
def test_init_failures(init_result, expected, reason):
    """init returning {stop, R}, ignore or a bad value, or exiting, fails the start and ends the server."""
    erlang.process_flag("trap_exit", True)
    assert gen_server.start_link(("local", NAME), Server(), init_result) == expected
    msg = recv(tagged("EXIT"))
    assert msg[2] == reason
    assert erlang.whereis(NAME) == "undefined"


def test_init_raising_returns_the_exception(caplog):
    """init that crashes gives {error, Reason} with the exception as reason."""
    boom = ValueError("init crashed")
    with caplog.at_level(logging.CRITICAL):
        assert gen_server.start(None, Server(), ("raise", boom)) == ("error", boom)


def test_a_failed_init_frees_the_name_before_start_returns():
    """gen_server:init_it/6 unregisters the name before acking a failed init, so a retry finds it free."""
    reason = SlowToPrint()
    try:
        assert gen_server.start(("local", NAME), Server(), ("stop", reason)) == ("error", reason)
        assert erlang.whereis(NAME) == "undefined"
    finally:
        reason.release.set()


def test_a_failed_init_whose_name_is_already_gone_still_acks():
    """gen_server:unregister_name/1 catches the badarg of a name that is no longer registered."""
    assert gen_server.start(("local", NAME), Server(), ("unregister_then", NAME, "ignore")) == "ignore"


def test_start_link_failure_kills_a_non_trapping_caller():
    """As in OTP, a start_link whose init stops takes the linked, non-trapping caller down with it."""
    me = erlang.self()

    def caller() -> None:
        erlang.send(me, ("result", gen_server.start_link(None, Server(), ("stop", "no_way"))))
        erlang.receive()

    pid, ref = erlang.spawn_monitor(caller)
    assert down_reason(ref) == "no_way"  # whether or not start_link had returned by then


def test_start_timeout_kills_a_slow_init():
    """start with {timeout, T} gives {error, timeout} and kills a server whose init did not return in time."""
    before = set(erlang.processes())
    assert gen_server.start_link(None, Server(), ("block",), [("timeout", 0.05)]) == ("error", "timeout")
    for pid in set(erlang.processes()) - before:
        assert pid == erlang.self() or not erlang.is_process_alive(pid)
    assert erlang.flush() == []


def test_a_server_dying_before_its_ack_fails_the_start():
    """proc_lib:sync_wait/2: a server that dies before acknowledging gives {error, Reason}."""
    assert gen_server.start(None, Server(), ("die_before_ack", "kill")) == ("error", "killed")
    erlang.process_flag("trap_exit", True)
    assert gen_server.start_link(None, Server(), ("die_before_ack", "kill")) == ("error", "killed")
    assert erlang.flush() == []  # the link's 'EXIT' was consumed by start_link


@pytest.mark.parametrize("name", [("global", "x"), ("local", 42), "plain"])
def test_start_with_an_unsupported_name_is_badarg(name):
    """Only {local, Name} registration is ported; other name forms are refused with badarg."""
    with pytest.raises(ErlangError) as info:
        gen_server.start(name, Server(), ("ok", None))
    assert info.value.reason == "badarg"


# == Calls, casts and replies =====================================================


def test_call_returns_the_reply():
    """gen_server:call/2 returns the Reply of {reply, Reply, State}, by pid, name and {Name, node()}."""
    pid = start_server(None, name=NAME)
    assert gen_server.call(pid, ("reply", 1)) == 1
    assert gen_server.call(NAME, ("reply", 2)) == 2
    assert gen_server.call((NAME, erlang.node()), ("reply", 3), 5) == 3
    assert erlang.flush() == []


def test_cast_then_get_state_sees_the_cast():
    """gen_server:cast/2 returns ok at once; get_state (a sys call) is served after every earlier cast."""
    pid = start_server([])
    for i in range(50):
        assert gen_server.cast(pid, ("append", i)) == "ok"
    assert gen_server.get_state(pid) == list(range(50))


def test_deferred_reply_from_another_process():
    """handle_call may return {noreply, State} and have another process answer with gen_server:reply/2."""
    pid = start_server(None)
    assert gen_server.call(pid, ("defer", "later")) == "later"
    assert gen_server.reply((erlang.self(), erlang.make_ref()), "direct") == "direct"
    erlang.flush()


def test_call_timeout_exits_and_no_late_reply_stays_in_the_mailbox():
    """A call that times out exits {timeout, ...}; the reply that comes later never reaches the mailbox."""
    pid = start_server(None)
    with pytest.raises(ExitError) as info:
        gen_server.call(pid, ("wait_for", "release", "late"), 0.05)
    assert info.value.reason[0] == "timeout"
    assert info.value.reason[1] == ("gen_server", "call", [pid, ("wait_for", "release", "late"), 0.05])
    erlang.send(pid, "release")
    gen_server.get_state(pid)  # the server has sent its late reply by now
    assert erlang.flush() == []


@pytest.mark.parametrize(
    "server", [NAME, (NAME, "nonode@nohost"), Pid(None, 10**9)], ids=["name", "name_node", "dead_pid"]
)
def test_call_to_a_missing_server_is_noproc(server):
    """Calling a name nobody holds, or a dead pid, exits with noproc."""
    with pytest.raises(ExitError) as info:
        gen_server.call(server, "hello")
    assert info.value.reason[0] == "noproc"
    assert erlang.flush() == []


def test_call_to_an_unreachable_node_is_nodedown():
    """Calling {Name, Node} on a node that cannot be reached exits with {nodedown, Node}."""
    with pytest.raises(ExitError) as info:
        gen_server.call((NAME, "ghost@nowhere"), "hello")
    assert info.value.reason[0] == ("nodedown", "ghost@nowhere")


def test_call_with_a_bad_server_reference_is_badarg():
    """gen_server:call/2 and cast/2 take a pid, a name or {Name, Node}; other terms are refused."""
    for fun in (gen_server.call, gen_server.cast):
        with pytest.raises(ErlangError) as info:
            fun(42, "hello")
        assert info.value.reason == "badarg"


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (("stop_noreply", "boom"), "boom"),
        (("exit", ("bye", 1)), ("bye", 1)),
    ],
    ids=["stop", "exit"],
)
def test_a_server_dying_mid_call_gives_its_reason_to_the_caller(request_, reason):
    """If the server ends before replying, call exits with {Reason, {gen_server, call, ...}}."""
    pid = start_server(None)
    ref = erlang.monitor("process", pid)
    with pytest.raises(ExitError) as info:
        gen_server.call(pid, request_)
    assert info.value.reason == (reason, ("gen_server", "call", [pid, request_]))
    assert down_reason(ref) == reason


def test_an_unexpected_call_gets_no_reply_and_the_server_runs_on():
    """A callback module whose catch-all returns {noreply, State} leaves the caller waiting; the loop goes on."""
    pid = start_server("alive")
    with pytest.raises(ExitError) as info:
        gen_server.call(pid, "what is this?", 0.05)
    assert info.value.reason[0] == "timeout"
    assert gen_server.get_state(pid) == "alive"
    assert gen_server.call(pid, ("reply", "still serving")) == "still serving"


def test_cast_to_a_missing_server_is_ok():
    """gen_server:cast/2 to a name nobody holds is lost silently and returns ok."""
    assert gen_server.cast(NAME, "lost") == "ok"
    assert gen_server.cast((NAME, erlang.node()), "lost") == "ok"


def test_handle_info_gets_plain_messages():
    """Any message that is not a call, cast or system message goes to handle_info/2."""
    pid = start_server(None)
    stranger = Pid(None, 10**9)
    erlang.send(pid, "hello")
    erlang.send(pid, ("EXIT", stranger, "not from the parent"))
    assert recv() == ("info", "hello")
    assert recv() == ("info", ("EXIT", stranger, "not from the parent"))


def test_a_module_without_handle_info_drops_plain_messages(caplog):
    """A callback module without handle_info/2 logs and drops plain messages, and keeps serving."""
    result = gen_server.start(None, Minimal(), "state")
    pid = result[1]
    with caplog.at_level(logging.WARNING, logger="repg2.gen_server"):
        erlang.send(pid, "stray")
        assert gen_server.call(pid, "echo") == "echo"
    assert "stray" in caplog.text


@pytest.mark.parametrize(
    ("start_args", "trigger"),
    [
        (("state", 0), None),
        (("state",), ("call", ("reply_after", "ok", 0))),
        (("state",), ("call", ("noreply_after", 0))),
        (("state",), ("cast", ("noreply_after", 0))),
    ],
    ids=["init", "reply", "noreply_call", "noreply_cast"],
)
def test_a_timeout_in_a_return_tuple_delivers_timeout_to_handle_info(start_args, trigger):
    """A Timeout in {ok, S, T}, {reply, R, S, T} or {noreply, S, T} sends 'timeout' to handle_info when idle."""
    pid = start_server(*start_args)
    if trigger is not None:
        kind, request = trigger
        if kind == "call":
            try:
                gen_server.call(pid, request, 0.2)
            except ExitError:
                pass  # {noreply, S, T} from a call: no reply, only the timeout
        else:
            gen_server.cast(pid, request)
    assert recv() == ("info", "timeout")


# == Stopping =======================================================================


def test_stop_reply_answers_then_calls_terminate():
    """{stop, Reason, Reply, State} replies, calls terminate(Reason, State), and ends with Reason."""
    pid = start_server("s")
    ref = erlang.monitor("process", pid)
    assert gen_server.call(pid, ("stop", "normal", "bye")) == "bye"
    assert recv(tagged("terminate")) == ("terminate", "normal", "s")
    assert down_reason(ref) == "normal"


@pytest.mark.parametrize(
    ("crash", "reason"),
    [(RuntimeError("terminate crashed"), None), (ExitError("terminate exited"), "terminate exited")],
    ids=["raise", "exit"],
)
def test_a_crashing_terminate_replaces_the_exit_reason(crash, reason, caplog):
    """gen_server:terminate/6: if terminate crashes or exits, the server ends with that, not the stop reason."""
    pid = start_server("s", terminate_raises=crash)
    ref = erlang.monitor("process", pid)
    with caplog.at_level(logging.CRITICAL):
        assert gen_server.call(pid, ("stop", "normal", "bye")) == "bye"
        got = down_reason(ref)
    assert got is crash if reason is None else got == reason


@pytest.mark.parametrize("reason", ["normal", "shutdown", ("shutdown", "why"), "abnormal"])
def test_stop_from_handle_cast_calls_terminate(reason, caplog):
    """{stop, Reason, State} from handle_cast calls terminate(Reason, State) and ends with Reason."""
    pid = start_server("s")
    ref = erlang.monitor("process", pid)
    with caplog.at_level(logging.CRITICAL):
        gen_server.cast(pid, ("stop", reason))
        assert recv(tagged("terminate")) == ("terminate", reason, "s")
        assert down_reason(ref) == reason


@pytest.mark.parametrize("where", ["call", "cast", "info"])
def test_a_crash_in_a_callback_calls_terminate_and_ends_the_server(where, caplog):
    """A callback that raises makes the server call terminate with the exception and end with it."""
    boom = ValueError(f"{where} crashed")
    pid = start_server("s", name=NAME)
    ref = erlang.monitor("process", pid)
    with caplog.at_level(logging.ERROR, logger="repg2.gen_server"):
        if where == "call":
            with pytest.raises(ExitError) as info:
                gen_server.call(pid, ("raise", boom))
            assert info.value.reason[0] is boom
        elif where == "cast":
            gen_server.cast(pid, ("raise", boom))
        else:
            erlang.send(pid, "crash_in_info")
        reason = recv(tagged("terminate"))[1]
        assert down_reason(ref) is reason
    if where != "info":
        assert reason is boom
    assert isinstance(reason, Exception)
    assert "Generic server" in caplog.text and NAME in caplog.text


def test_a_bad_return_value_ends_the_server(caplog):
    """A callback returning something that is not a valid tuple ends the server with {bad_return_value, X}."""
    pid = start_server("s")
    ref = erlang.monitor("process", pid)
    with caplog.at_level(logging.CRITICAL):
        gen_server.cast(pid, "unknown cast")
        assert down_reason(ref) == ("bad_return_value", "not a valid return")


def test_stop_ends_the_server_through_terminate():
    """gen_server:stop/1 calls terminate(normal, State) and returns ok."""
    pid = start_server("s", name=NAME)
    ref = erlang.monitor("process", pid)
    assert gen_server.stop(NAME) == "ok"
    assert recv(tagged("terminate")) == ("terminate", "normal", "s")
    assert down_reason(ref) == "normal"


def test_stop_returns_only_once_the_server_is_gone():
    """proc_lib:stop/3 waits for the server's end: when stop returns, the name is free and the pid dead."""
    reason = ("shutdown", SlowToPrint())
    pid = start_server("s", name=NAME)
    try:
        assert gen_server.stop(NAME, reason, "infinity") == "ok"
        assert erlang.whereis(NAME) == "undefined"
        assert not erlang.is_process_alive(pid)
    finally:
        reason[1].release.set()


def test_stop_of_a_missing_server_is_noproc():
    """gen_server:stop/1 of a name nobody holds exits with noproc."""
    with pytest.raises(ExitError) as info:
        gen_server.stop(NAME)
    assert info.value.reason[0] == "noproc"


def test_stop_exits_with_the_servers_own_reason_if_it_differs(caplog):
    """If the server ends with another reason than asked (terminate crashed), stop exits with it."""
    crash = RuntimeError("terminate crashed")
    pid = start_server("s", terminate_raises=crash)
    with caplog.at_level(logging.CRITICAL), pytest.raises(ExitError) as info:
        gen_server.stop(pid)
    assert info.value.reason is crash


def test_stop_of_a_server_that_is_already_ending_is_ok():
    """A server that exits with the requested reason while stop waits counts as stopped."""
    pid = start_server("s")
    gen_server.cast(pid, ("stop", "normal"))  # ends before it can serve the stop request
    assert gen_server.stop(pid) == "ok"


def test_a_trapping_server_ends_when_its_parent_does():
    """A server trapping exits that gets {'EXIT', Parent, Reason} calls terminate and ends with Reason."""
    me = erlang.self()

    def parent() -> None:
        erlang.send(me, ("server", gen_server.start_link(None, Server(me), ("trap", "s"))[1]))
        erlang.receive(lambda m: m == "die")
        erlang.exit("parent_gone")

    ppid = erlang.spawn(parent)
    pid = recv(tagged("server"))[1]
    ref = erlang.monitor("process", pid)
    erlang.send(ppid, "die")
    assert recv(tagged("terminate")) == ("terminate", "parent_gone", "s")
    assert down_reason(ref) == "parent_gone"


# == sys: get_state as a barrier ===================================================


def test_get_state_of_a_missing_or_dead_server_exits():
    """sys:get_state/1 of a name nobody holds, or of a dead pid, exits with noproc."""
    with pytest.raises(ExitError) as info:
        gen_server.get_state(NAME)
    assert info.value.reason[0] == "noproc"
    pid = start_server("s")
    gen_server.stop(pid)
    with pytest.raises(ExitError) as info:
        gen_server.get_state(pid)
    assert info.value.reason[0] == "noproc"


def test_get_state_timeout_leaves_no_late_reply():
    """sys:get_state/2 on a busy server times out, and its later answer never reaches the mailbox."""
    pid = start_server("s")
    caller = erlang.spawn(gen_server.call, pid, ("wait_for", "release", "done"))
    with pytest.raises(ExitError) as info:
        gen_server.get_state(pid, 0.05)
    assert info.value.reason[0] == "timeout"
    erlang.send(pid, "release")
    assert gen_server.get_state(pid) == "s"
    assert erlang.flush() == []
    assert caller is not None


def test_a_suspended_server_handles_only_system_messages_until_resumed():
    """sys:suspend/1 holds calls, casts and infos in the mailbox until sys:resume/1; sys requests still work."""
    pid = start_server([])
    assert gen_server.suspend(pid) == "ok"
    gen_server.cast(pid, ("append", 1))
    erlang.send(pid, "held")
    assert gen_server.get_state(pid) == []  # the cast waits while suspended
    assert erlang.message_queue_len(pid) == 2
    assert gen_server.resume(pid) == "ok"
    assert recv() == ("info", "held")
    assert gen_server.get_state(pid) == [1]
    assert gen_server.resume(pid) == "ok"  # resuming a running server does nothing


def test_an_unknown_system_message_is_answered_with_an_error():
    """A sys request the server does not know gets {error, {unknown_system_msg, Req}}; the server runs on."""
    pid = start_server("s")
    tag = erlang.make_ref()
    erlang.send(pid, ("system", (erlang.self(), tag), "bogus"))
    assert recv() == (tag, ("error", ("unknown_system_msg", "bogus")))
    assert gen_server.get_state(pid) == "s"


# == multi_call and abcast on this node ============================================


@pytest.mark.parametrize(
    "args",
    [
        (NAME, ("reply", "hi")),
        (["nonode@nohost"], NAME, ("reply", "hi")),
        (["nonode@nohost"], NAME, ("reply", "hi"), "infinity"),
        (["nonode@nohost"], NAME, ("reply", "hi"), 5),
    ],
    ids=["2", "3", "4-infinity", "4-timeout"],
)
def test_multi_call_on_this_node(args):
    """gen_server:multi_call/2,3,4 on this node returns {[{Node, Reply}], []} and leaves the mailbox empty."""
    start_server("s", name=NAME)
    assert gen_server.multi_call(*args) == ([(erlang.node(), "hi")], [])
    assert erlang.flush() == []


@pytest.mark.parametrize("timeout", ["infinity", 5])
def test_multi_call_to_an_unregistered_name_is_a_bad_node(timeout):
    """multi_call to a name nobody holds on a node lists that node in BadNodes."""
    assert gen_server.multi_call([erlang.node()], NAME, "hello", timeout) == ([], [erlang.node()])
    assert erlang.flush() == []


def test_multi_call_timeout_makes_a_bad_node_and_drops_the_late_reply():
    """A timed multi_call lists a slow node as bad; its late reply goes to the middleman, never the caller."""
    pid = start_server("s", name=NAME)
    assert gen_server.multi_call([erlang.node()], NAME, ("wait_for", "release", "late"), 0.05) == (
        [],
        [erlang.node()],
    )
    erlang.send(pid, "release")
    gen_server.get_state(pid)
    assert erlang.flush() == []


def test_multi_call_server_dying_makes_a_bad_node():
    """A server that dies before answering a multi_call makes its node a bad node."""
    start_server("s", name=NAME)
    assert gen_server.multi_call([erlang.node()], NAME, ("stop_noreply", "normal")) == ([], [erlang.node()])
    assert recv(tagged("terminate")) == ("terminate", "normal", "s")
    assert erlang.flush() == []


def test_multi_call_exits_with_the_middlemans_reason():
    """gen_server:do_multi_call/4: if the middleman is killed, the caller exits with its reason."""
    start_server("s", name=NAME)
    with pytest.raises(ExitError) as info:
        gen_server.multi_call([erlang.node()], NAME, ("kill_caller",), 5)
    assert info.value.reason == "killed"


@pytest.mark.parametrize(
    "args",
    [(), (NAME,), ([], NAME, "r", 5, "extra"), ("not a list", NAME, "r"), ([], 42, "r")],
)
def test_multi_call_with_bad_arguments(args):
    """multi_call takes 2 to 4 arguments, a list (of nodes) and an atom name."""
    with pytest.raises((TypeError, ErlangError)):
        gen_server.multi_call(*args)


@pytest.mark.parametrize("timeout", [-1, "soon", True])
def test_multi_call_with_a_bad_timeout_is_badarg(timeout):
    """multi_call's timeout is 'infinity' or a non-negative number."""
    with pytest.raises(ErlangError) as info:
        gen_server.multi_call([erlang.node()], NAME, "r", timeout)
    assert info.value.reason == "badarg"


def test_abcast_reaches_the_server_on_this_node():
    """gen_server:abcast/2,3 casts to the name on each node and returns abcast."""
    pid = start_server([], name=NAME)
    assert gen_server.abcast(NAME, ("append", 1)) == "abcast"
    assert gen_server.abcast([erlang.node()], NAME, ("append", 2)) == "abcast"
    assert gen_server.get_state(pid) == [1, 2]


def test_abcast_to_a_missing_server_does_not_fail():
    """abcast to a name nobody holds is lost silently, on this node or an unreachable one."""
    assert gen_server.abcast(NAME, "lost") == "abcast"
    assert gen_server.abcast([erlang.node(), "ghost@nowhere"], NAME, "lost") == "abcast"


@pytest.mark.parametrize("args", [(), (NAME,), ([], NAME, "m", "extra"), ("not a list", NAME, "m"), ([], 42, "m")])
def test_abcast_with_bad_arguments(args):
    """abcast takes 2 or 3 arguments, a list of nodes and an atom name."""
    with pytest.raises((TypeError, ErlangError)):
        gen_server.abcast(*args)
