"""rpc on this node: the rex server's answers for every way a call can end (rpc:call/4,5, cast/4, multicall)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from support import DEADLINE, down_reason, recv, tagged, wait_until

from repg2 import erlang, external, gen_server, kernel, rpc
from repg2.testing import nodefuns

pytestmark = pytest.mark.timeout(60)


def note(event: threading.Event) -> None:
    """Record that a cast ran (a threading.Event: rpc on one node passes it by reference)."""
    event.set()


@pytest.fixture(autouse=True)
def rex() -> Iterator[None]:
    """Make sure this node's rex runs (the kernel starts it)."""
    kernel.boot()
    yield


def test_call_returns_the_value() -> None:
    """rpc:call/4 returns what the function returns."""
    assert rpc.call(erlang.node(), sorted, [[3, 1, 2]]) == [1, 2, 3]


def test_exit_in_fun_is_badrpc_exit() -> None:
    """An exit in the function comes back as {badrpc, {'EXIT', Reason}} (rpc:handle_call_call/6)."""
    assert rpc.call(erlang.node(), nodefuns.exit_with, ["bye"]) == ("badrpc", ("EXIT", "bye"))


def test_exception_in_fun_is_badrpc_exit() -> None:
    """A Python exception comes back as ('badrpc', ('EXIT', (ClassName, b'message'))) (TRANSLATION_NOTES D29)."""
    assert rpc.call(erlang.node(), nodefuns.fail_with, [ValueError("boom")]) == (
        "badrpc",
        ("EXIT", ("ValueError", b"boom")),
    )


def test_erlang_module_names_stand_for_their_translations() -> None:
    """rpc:call(N, erlang, node, []) names repg2.erlang.node on a Python node; other names are Python modules."""
    assert rpc.call(erlang.node(), "erlang", "node", []) == erlang.node()
    assert rpc.call(erlang.node(), "repg2.erlang", "node", []) == erlang.node()
    assert rpc.call(erlang.node(), "builtins", "len", [[1, 2]]) == 2


def test_an_unknown_function_is_undef() -> None:
    """A module or function that does not exist is {badrpc, {'EXIT', {undef, [{M, F, A, []}], ...}}}."""
    assert rpc.call(erlang.node(), "no_such_module", "f", [1]) == (
        "badrpc",
        ("EXIT", (("undef", [("no_such_module", "f", [1], [])]), [])),
    )


def test_a_lambda_cannot_be_called_remotely() -> None:
    """A function is named by module and qualified name: a lambda has none another node could find."""
    with pytest.raises(TypeError, match="no module-level name"):
        rpc.call(erlang.node(), lambda: 1, [])


def test_worker_killed_before_replying_is_badrpc() -> None:
    """A worker that dies without replying gives the caller {badrpc, {'EXIT', killed}} (rpc:handle_info/2)."""
    assert rpc.call(erlang.node(), nodefuns.kill_self, []) == ("badrpc", ("EXIT", "killed"))


def test_timeout_is_badrpc_timeout_and_no_late_reply() -> None:
    """rpc:call/5 past its timeout answers {badrpc, timeout}; the late answer never reaches the caller."""
    assert rpc.call(erlang.node(), nodefuns.sleep_then, [0.3, "late"], 0.05) == ("badrpc", "timeout")
    # rex forgets a worker once it has relayed its answer: wait for that, then look.
    wait_until(lambda: not gen_server.get_state(rpc.NAME), "rex to forget its worker")
    assert erlang.flush() == []


def test_cast_runs_the_function() -> None:
    """rpc:cast/4 returns true at once and runs the function on the node."""
    event = threading.Event()
    assert rpc.cast(erlang.node(), note, [event]) is True
    assert event.wait(DEADLINE)


def test_multicall_on_this_node() -> None:
    """rpc:multicall/3 with no node list asks this node (and every connected one)."""
    assert rpc.multicall(None, len, [[1, 2]]) == ([2], [])


def test_unexpected_messages_are_ignored() -> None:
    """rex drops calls, casts and messages it does not know, and keeps serving (rpc.erl's catch-alls)."""
    with pytest.raises(erlang.ExitError) as info:
        gen_server.call(rpc.NAME, "what", 0.1)
    assert info.value.reason[0] == "timeout"
    gen_server.cast(rpc.NAME, "what")
    erlang.send(rpc.NAME, "stray")
    assert rpc.call(erlang.node(), len, ["abc"]) == 3


def test_an_exit_reason_without_an_erlang_form_travels_as_a_description() -> None:
    """An exit reason must cross nodes whatever it is: an exception as {Name, <<msg>>}, anything else as its repr."""
    lock = threading.Lock()
    assert external.portable(lock) == repr(lock).encode()
    assert external.portable(("fine", 1)) == ("fine", 1)
    assert external.portable(("why", KeyError("k"))) == ("why", ("KeyError", b"'k'"))


def test_rpc_check_maps_exit_reasons() -> None:
    """rpc:rpc_check/1: nodedown and timeout become short badrpc reasons, anything else is kept."""
    assert rpc._rpc_check((("nodedown", "x@y"), "where")) == ("badrpc", "nodedown")
    assert rpc._rpc_check(("timeout", "where")) == ("badrpc", "timeout")
    assert rpc._rpc_check("other") == ("badrpc", ("EXIT", "other"))


def test_start_finds_rex_running_and_stop_lets_the_kernel_restart_it(fresh_kernel: None) -> None:
    """rpc:start/0 beside a running rex is already_started; rpc:stop/0 answers stopped and kernel_safe_sup restarts rex."""
    running = erlang.whereis(rpc.NAME)
    assert rpc.start() == ("error", ("already_started", running))
    assert rpc.stop() == "stopped"
    wait_until(lambda: erlang.whereis(rpc.NAME) not in ("undefined", running), "rex to be restarted")
    assert rpc.call(erlang.node(), len, [[1]]) == 1


@pytest.mark.parametrize(
    ("args", "form"),
    [
        (("erlang",), "takes atoms"),
        (("erlang", 1, []), "takes atoms"),
        (("erlang", "node", [], 5, "extra"), "takes atoms"),
        ((42, []), "module-level function"),
        ((len, [[1]], 5, "extra"), "module-level function"),
    ],
)
def test_a_call_that_fits_neither_form_is_a_type_error(args: tuple[object, ...], form: str) -> None:
    """call/cast/multicall take (module, function, args[, timeout]) or (fun, args[, timeout]); anything else is a TypeError."""
    for call in (
        lambda: rpc.call(erlang.node(), *args),
        lambda: rpc.cast(erlang.node(), *args),
        lambda: rpc.multicall([erlang.node()], *args),
    ):
        with pytest.raises(TypeError, match=form):
            call()


def test_multicall_in_erlangs_form_names_the_nodes_that_did_not_answer() -> None:
    """rpc:multicall/5 with Module, Function, Args and a timeout: results of the nodes that answered, and the bad nodes."""
    assert rpc.multicall([erlang.node(), "nowhere@127.0.0.1"], "builtins", "len", [[1, 2, 3]], 5) == (
        [3],
        ["nowhere@127.0.0.1"],
    )


def test_a_lost_connection_during_a_call_is_nodedown() -> None:
    """rpc_check: the callee's node lost during the call ('noconnection') is {badrpc, nodedown}, as a down node is."""
    assert rpc._rpc_check(("noconnection", ("gen_server", "call", []))) == ("badrpc", "nodedown")


def test_what_is_not_module_and_function_is_undef() -> None:
    """A request whose module or function is no atom, or names no function, fails as undef in the caller's badrpc."""
    assert gen_server.call(rpc.NAME, ("call", 1, 2, [], "user")) == (
        "badrpc",
        ("EXIT", (("undef", [(1, 2, [], [])]), [])),
    )
    assert rpc.call(erlang.node(), "repg2.rpc", "NAME", []) == (
        "badrpc",
        ("EXIT", (("undef", [("repg2.rpc", "NAME", [], [])]), [])),
    )


def test_a_reply_without_an_erlang_form_is_a_badrpc_naming_it() -> None:
    """A value that could not cross to another node is replaced by {badrpc, {'EXIT', {badarg, Why}}}, even locally."""
    result = rpc.call(erlang.node(), threading.Lock, [])
    assert result[:1] == ("badrpc",) and result[1][0] == "EXIT" and result[1][1][0] == "badarg"
    assert b"lock" in result[1][1][1]


@pytest.mark.usefixtures("isolated_runtime")
def test_a_hidden_nodes_call_is_answered_with_rex_and_the_reply() -> None:
    """rpc:handle_info/2: {From, {call, M, F, A, Gl}} (as hidden nodes send it) is answered From ! {rex, Reply}."""
    erlang.send(rpc.NAME, (erlang.self(), ("call", "builtins", "len", [[1, 2]], "user")))
    assert recv(lambda m: isinstance(m, tuple) and m[0] == rpc.NAME) == (rpc.NAME, 2)


@pytest.mark.usefixtures("isolated_runtime")
def test_execute_call_exits_with_each_outcome_as_erpc_reads_it() -> None:
    """erpc:execute_call/4: the process exits {Ref, return, V}, {Ref, exit, R}, {Ref, error, R, Stack}, as erpc reads them."""
    ref = erlang.make_ref()
    cases = [
        (("builtins", "len", [[1]]), (ref, "return", 1)),
        (("repg2.testing.nodefuns", "exit_with", ["bye"]), (ref, "exit", "bye")),
        (("nowhere", "f", []), (ref, "error", ("undef", [("nowhere", "f", [], [])]), [])),
        (("repg2.testing.nodefuns", "fail_with_value_error", ["no"]), (ref, "error", ("ValueError", b"no"), [])),
    ]
    for (module, function, args), outcome in cases:
        _pid, mref = erlang.spawn_monitor(rpc.execute_call, ref, module, function, args)
        assert down_reason(mref) == outcome


@pytest.mark.usefixtures("isolated_runtime")
def test_execute_cast_applies_the_function() -> None:
    """erpc:execute_cast/3 applies the function in the process spawned for it; the result is dropped."""
    erlang.spawn(rpc.execute_cast, "repg2.erlang", "send", [erlang.self(), "cast ran"])
    assert recv(lambda m: m == "cast ran") == "cast ran"


@pytest.mark.usefixtures("isolated_runtime")
def test_features_request_is_answered_with_no_features() -> None:
    """OTP 25's {From, features_request} to rex gets {features_reply, Node, []}: no erpc, so callers use classic rpc."""
    erlang.send(rpc.NAME, (erlang.self(), "features_request"))
    assert recv(tagged("features_reply")) == ("features_reply", erlang.node(), [])
