"""Unit tests of ``repg2.supervisor`` (one_for_one) and ``repg2.kernel`` (the node's boot).

Each test pins one behaviour of OTP 18's ``supervisor`` (named in its
docstring). The test process traps exits, so a supervisor linked to it that
gives up arrives as an ``'EXIT'`` message instead of killing the test.
Synchronisation is by monitors, messages with a deadline and polling with a
deadline; "was not restarted" is checked only after the child's thread has
ended, so its exit signal has certainly reached the supervisor's mailbox
before the supervisor is asked.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from support import await_exit, down_reason, need_erlang, recv, wait_until

from repg2 import erlang, gen_server, global_, kernel, rpc, supervisor
from repg2.erlang import ExitError, Pid
from repg2.testing import otp

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("trap_exits")]

SUP = "test_supervisor_sup"


# == Helpers ====================================================================


class Worker:
    """A gen_server child: it ends on a cast ``('stop', Reason)``."""

    def init(self, args: Any) -> Any:
        return ("ok", args)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return ("reply", state, state)

    def handle_cast(self, msg: Any, state: Any) -> Any:
        return ("stop", msg[1], state)


def start_worker(name: str, state: Any = None) -> Any:
    """A child start function: start a :class:`Worker` registered as ``name``, linked to the caller."""
    return gen_server.start_link(("local", name), Worker(), state)


def stubborn() -> None:
    """A process body: trap exits, say ready to the supervisor, and ignore every message."""
    erlang.process_flag("trap_exit", True)
    erlang.send(erlang.whereis(SUP), "stubborn_ready")
    while True:
        erlang.receive()


def start_stubborn() -> Any:
    """A child start function: a linked process that ignores 'shutdown', started once it traps exits."""
    pid = erlang.spawn_link(stubborn)
    erlang.receive(lambda m: m == "stubborn_ready")
    return ("ok", pid)


def spec(child_id: str, restart: str = "permanent", shutdown: Any = 5, start: Any = None) -> tuple[Any, ...]:
    """An OTP 18 child spec tuple for a :class:`Worker` registered under its id."""
    return (child_id, start or (start_worker, [child_id]), restart, shutdown, "worker", ["Worker"])


class SupMod:
    """A supervisor callback module whose init returns what it was given."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def init(self, args: Any) -> Any:
        return self.result


def start_sup(*specs: Any, flags: Any = ("one_for_one", 3, 3600)) -> Pid:
    """Start a supervisor registered as SUP, linked to the (trapping) test process."""
    result = supervisor.start_link(("local", SUP), SupMod(("ok", (flags, list(specs)))), None)
    assert result[0] == "ok", result
    return result[1]


def child_pid(child_id: str) -> Any:
    """The pid the supervisor reports for a child, or 'undefined'."""
    return next(pid for cid, pid, _type, _mods in supervisor.which_children(SUP) if cid == child_id)


def wait_restarted(name: str, old: Pid) -> Pid:
    """Wait until a new process holds ``name`` in place of ``old``; return it."""
    wait_until(lambda: erlang.whereis(name) not in ("undefined", old), f"{name} to be restarted")
    return erlang.whereis(name)  # type: ignore[return-value]


# == Starting =======================================================================


def test_start_link_starts_the_children_in_order():
    """supervisor:start_link/3 starts every child spec in order and returns {ok, Pid}."""
    sup = start_sup(spec("test_sup_a"), spec("test_sup_b"))
    assert erlang.whereis(SUP) == sup
    a, b = erlang.whereis("test_sup_a"), erlang.whereis("test_sup_b")
    assert supervisor.which_children(SUP) == [
        ("test_sup_b", b, "worker", ["Worker"]),
        ("test_sup_a", a, "worker", ["Worker"]),
    ]
    assert erlang.is_process_alive(a) and erlang.is_process_alive(b)


def test_start_link_without_a_name_and_with_map_flags_and_specs():
    """start_link/2 starts an unnamed supervisor; sup flags and child specs may be maps (dicts)."""
    child = {"id": "test_sup_a", "start": (start_worker, ["test_sup_a"])}
    result = supervisor.start_link(SupMod(("ok", ({"strategy": "one_for_one"}, [child]))), None)
    assert result[0] == "ok"
    assert supervisor.count_children(result[1]) == [("specs", 1), ("active", 1), ("supervisors", 0), ("workers", 1)]


def test_start_without_a_link():
    """A supervisor started without a link does not take the starter with it when it stops."""
    result = supervisor.start(("local", SUP), SupMod(("ok", (("one_for_one", 1, 5), []))), None)
    assert result[0] == "ok"
    gen_server.stop(SUP, "abnormal_end")
    assert erlang.flush() == []  # no link, so no 'EXIT'


def test_init_ignore_and_bad_return():
    """A supervisor whose init returns ignore gives ignore; a bad value gives {error, {bad_return, ...}}."""
    assert supervisor.start_link(SupMod("ignore"), None) == "ignore"
    mod = SupMod("nonsense")
    assert supervisor.start_link(mod, None) == ("error", ("bad_return", (mod, "init", "nonsense")))


@pytest.mark.parametrize(
    "bad",
    [
        ("test_sup_a", (start_worker, ["test_sup_a"]), "sometimes", 5, "worker", []),
        ("test_sup_a", (start_worker, ["test_sup_a"]), "permanent", -1, "worker", []),
        ("test_sup_a", (start_worker, ["test_sup_a"]), "permanent", 5, "gadget", []),
        ("test_sup_a", ("not callable", []), "permanent", 5, "worker", []),
        ("test_sup_a", "no start"),
        {"id": "test_sup_a"},
        "not a spec",
    ],
    ids=["restart", "shutdown", "type", "start", "short_tuple", "map_without_start", "string"],
)
def test_an_invalid_child_spec_is_an_error(bad):
    """supervisor:check_childspec/1 refuses a bad spec: at init as {supervisor_data, _}, in start_child as an error."""
    result = supervisor.start_link(SupMod(("ok", (("one_for_one", 1, 5), [bad]))), None)
    assert result[0] == "error" and result[1][0] == "supervisor_data"
    start_sup()
    result = supervisor.start_child(SUP, bad)
    assert result[0] == "error"
    assert supervisor.which_children(SUP) == []


def test_an_unported_strategy_is_refused():
    """Only one_for_one is ported: another strategy fails the supervisor's start."""
    result = supervisor.start_link(SupMod(("ok", (("one_for_all", 1, 5), []))), None)
    assert result[0] == "error" and "one_for_one" in result[1][1]


def test_a_child_failing_to_start_fails_the_supervisor_and_stops_the_others(caplog):
    """If a child cannot start, init stops the children started so far and fails with failed_to_start_child."""
    failing = ("test_sup_bad", (lambda: ("error", "no_way"), []), "permanent", 5, "worker", [])
    result = supervisor.start_link(SupMod(("ok", (("one_for_one", 1, 5), [spec("test_sup_a"), failing]))), None)
    assert result == ("error", ("shutdown", ("failed_to_start_child", "test_sup_bad", "no_way")))
    assert erlang.whereis("test_sup_a") == "undefined"


# == Restarting =======================================================================


def test_a_crashed_permanent_child_is_restarted(caplog):
    """A permanent child that crashes is started again: a new pid holds its name."""
    start_sup(spec("test_sup_a"))
    old = erlang.whereis("test_sup_a")
    with caplog.at_level(logging.CRITICAL):
        erlang.exit(old, "crash")
        new = wait_restarted("test_sup_a", old)
    assert new != old and child_pid("test_sup_a") == new


def test_a_permanent_child_is_restarted_even_after_a_normal_exit():
    """A permanent child is restarted whatever its exit reason, normal included."""
    start_sup(spec("test_sup_a"))
    old = erlang.whereis("test_sup_a")
    gen_server.cast(old, ("stop", "normal"))
    assert wait_restarted("test_sup_a", old) != old


@pytest.mark.parametrize("reason", ["normal", "shutdown", ("shutdown", "done")])
def test_a_transient_child_is_not_restarted_after_a_normal_exit(reason):
    """A transient child that ends with normal or shutdown stays down; its spec is kept."""
    start_sup(spec("test_sup_a", "transient"))
    old = erlang.whereis("test_sup_a")
    gen_server.cast(old, ("stop", reason))
    assert await_exit(old) == reason
    assert supervisor.which_children(SUP) == [("test_sup_a", "undefined", "worker", ["Worker"])]
    assert erlang.whereis("test_sup_a") == "undefined"


def test_a_transient_child_is_restarted_after_a_crash(caplog):
    """A transient child that ends abnormally is restarted."""
    start_sup(spec("test_sup_a", "transient"))
    old = erlang.whereis("test_sup_a")
    with caplog.at_level(logging.CRITICAL):
        gen_server.cast(old, ("stop", "crash"))
        assert wait_restarted("test_sup_a", old) != old


@pytest.mark.parametrize("reason", ["normal", "crash"])
def test_a_temporary_child_is_never_restarted(reason, caplog):
    """A temporary child is never restarted, and its spec is forgotten when it ends."""
    start_sup(spec("test_sup_a", "temporary"))
    old = erlang.whereis("test_sup_a")
    with caplog.at_level(logging.CRITICAL):
        gen_server.cast(old, ("stop", reason))
        assert await_exit(old) == reason
    assert supervisor.which_children(SUP) == []
    assert erlang.whereis("test_sup_a") == "undefined"


def test_exceeding_the_restart_intensity_shuts_the_supervisor_down(caplog):
    """More than MaxR restarts within MaxT: the supervisor stops its children and exits with shutdown."""
    sup = start_sup(spec("test_sup_a"), spec("test_sup_b"), flags=("one_for_one", 1, 3600))
    sup_ref = erlang.monitor("process", sup)
    b = erlang.whereis("test_sup_b")
    b_ref = erlang.monitor("process", b)
    old = erlang.whereis("test_sup_a")
    with caplog.at_level(logging.ERROR, logger="repg2.supervisor"):
        erlang.exit(old, "crash")  # first crash: restarted (1 restart allowed)
        new = wait_restarted("test_sup_a", old)
        erlang.exit(new, "crash")  # second crash within the hour: too many
        assert down_reason(sup_ref) == "shutdown"
    assert down_reason(b_ref) == "shutdown"
    assert recv(lambda m: m[:2] == ("EXIT", sup)) == ("EXIT", sup, "shutdown")
    assert "intensity" in caplog.text


def test_a_restart_that_fails_to_start_counts_against_the_intensity(caplog):
    """A child that cannot be started again is retried, each try counting, until the supervisor gives up."""
    starts: list[int] = []

    def start_once(name: str) -> Any:
        starts.append(1)
        return start_worker(name) if len(starts) == 1 else ("error", "no_more")

    sup = start_sup(spec("test_sup_a", start=(start_once, ["test_sup_a"])), flags=("one_for_one", 2, 3600))
    sup_ref = erlang.monitor("process", sup)
    with caplog.at_level(logging.CRITICAL):
        erlang.exit(erlang.whereis("test_sup_a"), "crash")
        assert down_reason(sup_ref) == "shutdown"
    assert len(starts) == 3  # the first start, then two failed restarts before the third is one too many


def test_the_supervisor_ignores_exits_of_strangers_and_unexpected_messages(caplog):
    """An 'EXIT' from a process that is not a child, and any other message, change nothing."""
    sup = start_sup(spec("test_sup_a"))
    a = erlang.whereis("test_sup_a")
    with caplog.at_level(logging.ERROR, logger="repg2.supervisor"):
        erlang.send(sup, ("EXIT", Pid(None, 10**9), "crash"))
        erlang.send(sup, "stray message")
        gen_server.cast(sup, "stray cast")
        assert supervisor.which_children(SUP) == [("test_sup_a", a, "worker", ["Worker"])]
        assert gen_server.call(SUP, "stray call") == ("error", ("unexpected_call", "stray call"))
    assert "stray message" in caplog.text and "stray cast" in caplog.text


# == Managing children =================================================================


def test_terminate_restart_and_delete_a_child():
    """terminate_child keeps the spec, restart_child starts it again, delete_child forgets a stopped one."""
    start_sup(spec("test_sup_a"))
    old = erlang.whereis("test_sup_a")
    assert supervisor.delete_child(SUP, "test_sup_a") == ("error", "running")
    assert supervisor.restart_child(SUP, "test_sup_a") == ("error", "running")
    assert supervisor.terminate_child(SUP, "test_sup_a") == "ok"
    assert not erlang.is_process_alive(old)
    assert supervisor.which_children(SUP) == [("test_sup_a", "undefined", "worker", ["Worker"])]
    assert supervisor.terminate_child(SUP, "test_sup_a") == "ok"  # already stopped: still ok
    result = supervisor.restart_child(SUP, "test_sup_a")
    assert result == ("ok", erlang.whereis("test_sup_a")) and result[1] != old
    assert supervisor.terminate_child(SUP, "test_sup_a") == "ok"
    assert supervisor.delete_child(SUP, "test_sup_a") == "ok"
    assert supervisor.which_children(SUP) == []


@pytest.mark.parametrize("fun", [supervisor.terminate_child, supervisor.delete_child, supervisor.restart_child])
def test_an_unknown_child_id_is_not_found(fun):
    """terminate_child, delete_child and restart_child of an unknown id give {error, not_found}."""
    start_sup()
    assert fun(SUP, "nobody") == ("error", "not_found")


def test_terminating_a_temporary_child_forgets_it():
    """terminate_child of a temporary child also deletes its spec."""
    start_sup(spec("test_sup_a", "temporary"))
    assert supervisor.terminate_child(SUP, "test_sup_a") == "ok"
    assert supervisor.which_children(SUP) == []


def test_start_child_adds_and_starts_a_child():
    """start_child/2 starts a new child; the same id again is already_started, or already_present if stopped."""
    start_sup()
    result = supervisor.start_child(SUP, spec("test_sup_a"))
    pid = erlang.whereis("test_sup_a")
    assert result == ("ok", pid)
    assert supervisor.start_child(SUP, spec("test_sup_a")) == ("error", ("already_started", pid))
    supervisor.terminate_child(SUP, "test_sup_a")
    assert supervisor.start_child(SUP, spec("test_sup_a")) == ("error", "already_present")


@pytest.mark.parametrize(
    ("returns", "expected", "kept"),
    [
        ("ignore", ("ok", "undefined"), True),
        (("error", "no_way"), ("error", "no_way"), False),
        ("garbage", ("error", "garbage"), False),
        (ValueError("start crashed"), "exception", False),
        (ExitError("start exited"), ("error", "start exited"), False),
    ],
    ids=["ignore", "error", "garbage", "raise", "exit"],
)
def test_start_child_reports_what_the_start_function_did(returns, expected, kept):
    """supervisor:do_start_child/2 maps ignore, {error, R}, a bad value or a crash to start_child's result."""

    def start() -> Any:
        if isinstance(returns, BaseException):
            raise returns
        return returns

    start_sup()
    result = supervisor.start_child(SUP, ("test_sup_a", (start, []), "permanent", 5, "worker", []))
    assert result == (("error", returns) if expected == "exception" else expected)
    assert [c[0] for c in supervisor.which_children(SUP)] == (["test_sup_a"] if kept else [])


def test_a_temporary_child_that_ignores_is_not_kept():
    """A temporary child whose start function returns ignore leaves no spec behind."""
    start_sup()
    assert supervisor.start_child(SUP, ("test_sup_a", (lambda: "ignore", []), "temporary", 5, "worker", [])) == (
        "ok",
        "undefined",
    )
    assert supervisor.which_children(SUP) == []


def test_a_start_function_may_return_extra_info():
    """A start function may return {ok, Pid, Info}; start_child passes it on."""

    def start_with_info() -> Any:
        result = start_worker("test_sup_a")
        return ("ok", result[1], "extra")

    start_sup()
    assert supervisor.start_child(SUP, ("test_sup_a", (start_with_info, []), "permanent", 5, "worker", [])) == (
        "ok",
        erlang.whereis("test_sup_a"),
        "extra",
    )


def test_count_children():
    """count_children/1 counts specs, running children, supervisors and workers."""
    start_sup(spec("test_sup_a"), spec("test_sup_b"))
    child_sup = {
        "id": "test_sup_child_sup",
        "start": (supervisor.start_link, [SupMod(("ok", (("one_for_one", 1, 5), []))), None]),
        "shutdown": "infinity",
        "type": "supervisor",
    }
    assert supervisor.start_child(SUP, child_sup)[0] == "ok"
    supervisor.terminate_child(SUP, "test_sup_b")
    assert supervisor.count_children(SUP) == [("specs", 3), ("active", 2), ("supervisors", 1), ("workers", 2)]


# == Shutdown ===========================================================================


@pytest.mark.parametrize("shutdown", ["brutal_kill", 0.05], ids=["brutal_kill", "timeout"])
def test_a_child_that_ignores_shutdown_is_killed(shutdown: Any) -> None:
    """Shutdown brutal_kill kills the child with exit(Child, kill) at once; shutdown T kills it once T has passed.

    The child traps exits and ignores ``shutdown``, so either way it ends ``killed``.
    """
    start_sup(("test_sup_s", (start_stubborn, []), "permanent", shutdown, "worker", []))
    ref = erlang.monitor("process", child_pid("test_sup_s"))
    assert supervisor.terminate_child(SUP, "test_sup_s") == "ok"
    assert down_reason(ref) == "killed"


def test_shutdown_timeout_lets_a_cooperative_child_end_with_shutdown():
    """Shutdown T: a child that ends on exit(Child, shutdown) in time ends with reason shutdown."""
    start_sup(spec("test_sup_a", shutdown=5))
    ref = erlang.monitor("process", erlang.whereis("test_sup_a"))
    assert supervisor.terminate_child(SUP, "test_sup_a") == "ok"
    assert down_reason(ref) == "shutdown"


def test_stopping_the_supervisor_stops_its_children_newest_first():
    """supervisor:terminate/2 shuts the children down in reverse start order."""
    order: list[str] = []
    erlang.on_process_exit(lambda pid, reason: order.append(pid))
    hook = erlang._exit_hooks[-1]
    try:
        sup = start_sup(spec("test_sup_a"), spec("test_sup_b"))
        a, b = erlang.whereis("test_sup_a"), erlang.whereis("test_sup_b")
        assert gen_server.stop(sup, "shutdown") == "ok"
        assert [p for p in order if p in (a, b)] == [b, a]
    finally:
        erlang._exit_hooks.remove(hook)


# == The kernel's safe supervisor ==========================================================


@pytest.fixture
def no_kernel():
    """Run a test on a node not booted yet; afterwards leave it booted again if it was before."""
    was_booted = erlang.whereis(kernel.SAFE_SUP) != "undefined"
    for _ in range(2):
        current = erlang.whereis(kernel.SAFE_SUP)
        if current != "undefined":
            gen_server.stop(current, "shutdown")
    yield
    current = erlang.whereis(kernel.SAFE_SUP)
    if current != "undefined":
        gen_server.stop(current, "shutdown")
    if was_booted:
        kernel.boot()


def test_boot_starts_kernel_safe_sup_once(no_kernel):
    """kernel boot starts kernel_safe_sup (one_for_one, 4 restarts an hour); booting again returns the same pid."""
    pid = kernel.boot()
    assert erlang.whereis("kernel_safe_sup") == pid
    children = supervisor.which_children("kernel_safe_sup")
    assert kernel.boot() == pid
    assert supervisor.which_children("kernel_safe_sup") == children  # nothing started twice
    state = gen_server.get_state(pid)
    assert (state.strategy, state.intensity, state.period) == ("one_for_one", 4, 3600)


def test_boot_again_after_kernel_safe_sup_stopped(no_kernel):
    """If kernel_safe_sup ever stopped, the next boot starts a new one."""
    first = kernel.boot()
    gen_server.stop(first)
    second = kernel.boot()
    assert second != first and erlang.whereis("kernel_safe_sup") == second


def test_kernel_safe_sup_outlives_the_process_that_booted_it(no_kernel):
    """kernel_safe_sup is not linked to whoever booted it: the booting process may die."""
    me = erlang.self()
    booter, ref = erlang.spawn_monitor(lambda: erlang.send(me, ("booted", kernel.boot())) and erlang.exit("crash"))
    sup = recv(lambda m: m[0] == "booted")[1]
    assert down_reason(ref) == "crash"
    assert erlang.is_process_alive(sup) and kernel.boot() == sup


def test_kernel_safe_sup_takes_children(no_kernel):
    """pg2:ensure_started/0 adds its server to kernel_safe_sup with start_child; so can any child."""
    kernel.boot()
    assert supervisor.start_child("kernel_safe_sup", spec("test_sup_a"))[0] == "ok"
    rows = supervisor.which_children("kernel_safe_sup")
    assert rows[0] == ("test_sup_a", erlang.whereis("test_sup_a"), "worker", ["Worker"])


@pytest.mark.parametrize("failing", ["kernel_safe_sup", "global_name_server"])
def test_boot_fails_loudly_if_a_kernel_server_cannot_start(failing, no_kernel, monkeypatch):
    """A boot that cannot start kernel_safe_sup or global raises, naming it, instead of going on without it."""

    if failing == "kernel_safe_sup":
        monkeypatch.setattr(kernel.supervisor, "start", lambda *args: ("error", "no_way"))
    else:
        monkeypatch.setattr(global_, "start_link", lambda: ("error", "no_way"))
    with pytest.raises(RuntimeError, match=f"{failing}.*no_way"):
        kernel.boot()


def test_kernel_owns_rex_and_global(no_kernel):
    """kernel:init(safe) here starts rex, then global_name_server, as permanent workers (kernel.erl's specs)."""
    kernel.boot()
    children = {row[0]: row for row in supervisor.which_children(kernel.SAFE_SUP)}
    assert children["rex"] == ("rex", erlang.whereis("rex"), "worker", ["rpc"])
    assert children["global_name_server"] == (
        "global_name_server",
        erlang.whereis("global_name_server"),
        "worker",
        ["global"],
    )


@pytest.mark.parametrize("name", ["rex", "global_name_server"])
def test_killed_kernel_server_is_restarted(name, no_kernel):
    """Killing rex or global_name_server gets it restarted by kernel_safe_sup (TRANSLATION_NOTES D32)."""
    kernel.boot()
    old = erlang.whereis(name)
    ref = erlang.monitor("process", old)
    erlang.exit(old, "kill")
    assert down_reason(ref) == "killed"
    wait_until(lambda: erlang.whereis(name) not in ("undefined", old), f"{name} restarted")
    new = erlang.whereis(name)
    assert dict((row[0], row[1]) for row in supervisor.which_children(kernel.SAFE_SUP))[name] == new
    # The new server serves: an rpc to this node, a lock on this node.
    assert rpc.call(erlang.node(), erlang.node, []) == erlang.node()
    assert global_.trans(("kernel_test", "me"), lambda: "ran", [erlang.node()]) == "ran"


@pytest.mark.parametrize("name", ["rex", "global_name_server"])
def test_otp_halts_the_node_when_a_kernel_server_dies(name):
    """In real OTP 25 the same kill halts the node: kernel_sup's intensity is 0 (why D32 is a divergence)."""
    need_erlang()
    result = otp.eval_erl(f'exit(whereis({name}), kill), timer:sleep(5000), io:format("still running~n"), init:stop().')
    assert result.returncode != 0
    assert "still running" not in result.stdout
    assert "Kernel pid terminated" in result.stdout + result.stderr
