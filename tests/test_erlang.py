"""Unit tests of ``repg2.erlang``: processes, messages, monitors, links, exit signals, names.

Each test pins one behaviour of the Erlang runtime (the BIF or language rule
is named in its docstring). No test sleeps to synchronise: a test waits for
a message with a deadline, for a ``'DOWN'`` from a monitor, or polls a
condition with :func:`wait_until`.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import (
    DEADLINE,
    await_exit,
    down_reason,
    is_down,
    recv,
    thread_gone,
    wait_until,
)

from repg2 import erlang
from repg2.erlang import TIMEOUT, ErlangError, ExitError, Pid, Ref
from repg2.testing import nodefuns

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("isolated_runtime")]

# == Helpers ====================================================================


def wait_for_stop() -> None:
    """A process body: wait for ``'stop'``, then end normally."""
    erlang.receive(lambda m: m == "stop")


def trapper(report_to: Pid) -> None:
    """A process body: trap exits and forward every message to ``report_to`` until ``'stop'``."""
    erlang.process_flag("trap_exit", True)
    erlang.send(report_to, ("ready", erlang.self()))
    while True:
        msg = erlang.receive()
        if msg == "stop":
            return
        erlang.send(report_to, ("got", msg))


def start_trapper() -> tuple[Pid, Ref]:
    """Spawn a monitored :func:`trapper` and wait until it traps exits."""
    pid, ref = erlang.spawn_monitor(trapper, erlang.self())
    recv(lambda m: m == ("ready", pid))
    return pid, ref


def linked_to(watcher: Pid, end: Callable[[], None]) -> Callable[[], None]:
    """A process body: link to ``watcher``, tell the test process ``'linked'``, then on ``'go'`` run ``end``."""
    me = erlang.self()

    def body() -> None:
        erlang.link(watcher)
        erlang.send(me, "linked")
        erlang.receive(lambda m: m == "go")
        end()

    return body


# == Pids, refs and terms =========================================================


def test_self_is_one_pid_per_process():
    """erlang:self/0 gives a process the same pid every time, and another process another pid."""
    me = erlang.self()
    assert erlang.self() == me
    pid = erlang.spawn(lambda: erlang.send(me, erlang.self()))
    assert recv() == pid != me


def test_make_ref_is_unique():
    """erlang:make_ref/0 never returns the same reference twice on a node."""
    refs = [erlang.make_ref() for _ in range(10_000)]
    assert len(set(refs)) == len(refs)
    assert all(erlang.node(r) == erlang.node() for r in refs[:3])
    assert sorted(refs[:3]) == refs[:3]


def test_pid_pickles_to_an_equal_local_pid():
    """A pid of this node sent through the distribution's encoding comes back as the same local pid."""
    me = erlang.self()
    back = pickle.loads(pickle.dumps(me))
    assert back == me and back.is_local() and hash(back) == hash(me)
    ref = erlang.make_ref()
    assert pickle.loads(pickle.dumps(ref)) == ref


def test_foreign_pid_pickles_to_itself_and_stays_remote():
    """A pid of another node keeps its node and creation through pickling (PID_EXT)."""
    ghost = Pid("ghost@nowhere", 7, 3)
    back = pickle.loads(pickle.dumps(ghost))
    assert back == ghost and not back.is_local()
    assert (back.node, back.id, back.creation) == ("ghost@nowhere", 7, 3)
    assert repr(back) == "<ghost@nowhere.7.0>"  # node name, Number, Serial: the creation is not printed
    assert repr(Pid("b@127.0.0.1", 1 << 32 | 88, 3)) == "<b@127.0.0.1.88.1>"


def test_pids_and_refs_are_immutable_and_ordered():
    """Pids and refs are immutable values ordered as Erlang orders them (a pid by its number before its node)."""
    a, b = Pid(None, 1), Pid(None, 2)
    assert a < b and not b < a
    assert repr(a) == "<0.1.0>" and a.creation == erlang._identity.creation
    assert repr(Pid(None, 2 << 32 | 5)) == "<0.5.2>"
    with pytest.raises(AttributeError):
        a.id = 5  # type: ignore[misc]
    ref = erlang.make_ref()
    with pytest.raises(AttributeError):
        ref.id = 5  # type: ignore[misc]
    assert repr(ref).startswith("#Ref<")


def test_errors_keep_their_reason_through_pickling():
    """erlang:error/1 and exit/1 exceptions carry the Erlang reason, also across nodes."""
    with pytest.raises(ErlangError) as info:
        erlang.error(("badmatch", 3))
    assert info.value.reason == ("badmatch", 3)
    for exc in (ErlangError("badarg", "badarg: why"), ExitError(("timeout", 1))):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and back.reason == exc.reason and str(back) == str(exc)


def test_timeout_marker_is_a_pickle_safe_singleton():
    """The value standing for a receive's ``after`` branch is one object, also after pickling."""
    assert type(TIMEOUT)() is TIMEOUT
    assert pickle.loads(pickle.dumps(TIMEOUT)) is TIMEOUT
    assert repr(TIMEOUT) == "TIMEOUT"


# == Sending and selective receive =================================================


def test_messages_between_two_processes_arrive_in_order():
    """Erlang guarantees the order of messages from one process to another."""
    pid = erlang.spawn(nodefuns.echo)
    me = erlang.self()
    for i in range(200):
        erlang.send(pid, (me, i))
    assert [recv() for _ in range(200)] == list(range(200))
    erlang.send(pid, "stop")


def test_selective_receive_keeps_non_matching_messages_in_order():
    """receive takes the first matching message; the others stay queued in arrival order."""
    me = erlang.self()
    for msg in ["a", ("x", 1), "b", ("x", 2), "c"]:
        erlang.send(me, msg)
    assert erlang.receive(lambda m: isinstance(m, tuple), timeout=0) == ("x", 1)
    assert [erlang.receive(timeout=0) for _ in range(4)] == ["a", "b", ("x", 2), "c"]
    assert erlang.receive(timeout=0) is TIMEOUT


def test_selective_receive_waits_past_non_matching_arrivals():
    """A waiting receive skips messages that arrive and do not match, and leaves them queued."""
    me = erlang.self()

    def sender() -> None:
        erlang.receive(lambda m: m == "go")
        erlang.send(me, "noise-1")
        erlang.send(me, "noise-2")
        erlang.send(me, "wanted")

    pid = erlang.spawn(sender)
    erlang.send(pid, "go")
    assert erlang.receive(lambda m: m == "wanted", timeout=DEADLINE) == "wanted"
    assert erlang.flush() == ["noise-1", "noise-2"]


@pytest.mark.parametrize("timeout", [0, 0.01])
def test_receive_timeout_returns_after_value(timeout):
    """receive ... after T returns the ``after`` value (default TIMEOUT) when nothing matches in time."""
    erlang.send(erlang.self(), "other")
    assert erlang.receive(lambda m: m == "never", timeout=timeout) is TIMEOUT
    assert erlang.receive(lambda m: m == "never", timeout=timeout, after="late") == "late"
    assert erlang.flush() == ["other"]


@pytest.mark.parametrize("forever", ["infinity", None])
def test_receive_without_timeout_waits_for_a_message(forever):
    """receive with no ``after`` (timeout 'infinity' or None) waits until a message comes."""
    me = erlang.self()
    erlang.spawn(lambda: erlang.send(me, "hello"))
    assert erlang.receive(timeout=forever) == "hello"


@pytest.mark.parametrize("bad", [-1, "soon", True])
def test_receive_rejects_a_bad_timeout(bad):
    """A receive timeout must be a non-negative number of seconds or 'infinity' (else badarg)."""
    with pytest.raises(ErlangError) as info:
        erlang.receive(timeout=bad)
    assert info.value.reason == "badarg"


def test_flush_removes_only_matching_messages():
    """flush takes every queued message the pattern accepts and leaves the rest in order."""
    me = erlang.self()
    for msg in [1, "a", 2, "b"]:
        erlang.send(me, msg)
    assert erlang.message_queue_len() == 4
    assert erlang.flush(lambda m: isinstance(m, int)) == [1, 2]
    assert erlang.flush() == ["a", "b"]
    assert erlang.message_queue_len() == 0


def test_message_queue_len_of_another_process():
    """process_info(Pid, message_queue_len) counts a live local process's queued messages; dead is badarg."""
    pid, ref = erlang.spawn_monitor(wait_for_stop)
    for _ in range(3):
        erlang.send(pid, "ignored")
    assert erlang.message_queue_len(pid) == 3
    erlang.send(pid, "stop")
    await_exit(pid, ref)
    with pytest.raises(ErlangError):
        erlang.message_queue_len(pid)


def test_send_returns_the_message_and_drops_it_for_a_dead_pid():
    """Pid ! Msg returns Msg and never fails, even when the process is dead."""
    pid, ref = erlang.spawn_monitor(lambda: None)
    await_exit(pid, ref)
    assert erlang.send(pid, "lost") == "lost"


def test_send_to_an_unregistered_name_is_badarg():
    """Name ! Msg for a local name nobody holds raises badarg."""
    with pytest.raises(ErlangError) as info:
        erlang.send("nobody_has_this_name", "hi")
    assert info.value.reason == "badarg"


def test_send_to_name_and_node():
    """{Name, Node} ! Msg delivers to a registered name, and drops silently when nobody has it."""
    me = erlang.self()
    erlang.register("test_erlang_me", me)
    assert erlang.send(("test_erlang_me", erlang.node()), "via name") == "via name"
    assert recv() == "via name"
    erlang.send(("nobody_has_this_name", erlang.node()), "lost")
    erlang.send(("nobody_has_this_name", "ghost@nowhere"), "lost too")  # no distribution: dropped
    erlang.send(Pid("ghost@nowhere", 1, 1), "lost as well")
    assert erlang.flush() == []


@pytest.mark.parametrize("dest", [42, ("a", "b", "c"), ("a", 1)])
def test_send_to_a_non_destination_is_badarg(dest):
    """erlang:send/2 accepts only a pid, an atom, or {Name, Node}; anything else is badarg."""
    with pytest.raises(ErlangError) as info:
        erlang.send(dest, "x")
    assert info.value.reason == "badarg"


# == Spawning and exit reasons ===================================================


def test_spawn_passes_arguments():
    """erlang:spawn/3 runs the function with the given arguments in a new process."""
    me = erlang.self()
    erlang.spawn(lambda a, b: erlang.send(me, a + b), 2, 3)
    assert recv() == 5


def test_spawn_of_a_non_function_is_badarg():
    """erlang:spawn/1 of something that is not a function is badarg."""
    with pytest.raises(ErlangError) as info:
        erlang.spawn(42)  # type: ignore[arg-type]
    assert info.value.reason == "badarg"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (lambda: None, "normal"),
        (lambda: erlang.exit(("bye", 1)), ("bye", 1)),
        (lambda: erlang.exit(erlang.self(), "normal") and erlang.receive(), "normal"),
        (lambda: erlang.exit(erlang.self(), "gone") and erlang.receive(), "gone"),
    ],
    ids=["returns", "exit/1", "exit(self(), normal)", "exit(self(), gone)"],
)
def test_spawn_monitor_reports_the_exit_reason(body, reason):
    """spawn_monitor/1 returns {Pid, Ref}; the 'DOWN' carries the process's exit reason."""
    pid, ref = erlang.spawn_monitor(body)
    assert isinstance(pid, Pid) and isinstance(ref, Ref)
    msg = recv(is_down(ref))
    assert msg == ("DOWN", ref, "process", pid, reason)


def test_a_raising_process_ends_with_the_exception_as_reason(caplog):
    """A process that raises ends with the exception as its reason, seen by monitors and links alike."""
    boom = ValueError("boom")
    watcher, watcher_ref = start_trapper()

    def crash() -> None:
        raise boom

    with caplog.at_level(logging.ERROR, logger="repg2.erlang"):
        pid, ref = erlang.spawn_monitor(linked_to(watcher, crash))
        recv(lambda m: m == "linked")
        erlang.send(pid, "go")
        assert down_reason(ref) is boom
        assert recv(lambda m: m[0] == "got") == ("got", ("EXIT", pid, boom))
    assert "boom" in caplog.text


def test_processes_lists_live_local_processes():
    """erlang:processes/0 lists a live process, and no longer lists it once it has ended."""
    pid, ref = erlang.spawn_monitor(wait_for_stop)
    assert pid in erlang.processes()
    erlang.send(pid, "stop")
    down_reason(ref)
    assert pid not in erlang.processes()


def test_is_process_alive():
    """is_process_alive/1 is true for a live process, false once it ended, badarg for another node."""
    pid, ref = erlang.spawn_monitor(wait_for_stop)
    assert erlang.is_process_alive(pid)
    assert erlang.is_process_alive(erlang.self())
    erlang.send(pid, "stop")
    down_reason(ref)
    assert not erlang.is_process_alive(pid)
    assert not erlang.is_process_alive(Pid(erlang.node(), pid.id, 99))  # an earlier incarnation
    for bad in (Pid("ghost@nowhere", 1, 1), "not a pid"):
        with pytest.raises(ErlangError):
            erlang.is_process_alive(bad)  # type: ignore[arg-type]


def test_a_thousand_processes_leave_no_threads_behind():
    """1,000 processes that have ended leave no threads: a process's thread ends with it."""
    before = threading.active_count()
    refs = [erlang.spawn_monitor(lambda: None)[1] for _ in range(1000)]
    for ref in refs:
        assert down_reason(ref) == "normal"
    wait_until(lambda: threading.active_count() <= before, "process threads to end")


def test_sleep_is_cut_short_by_an_exit_signal():
    """timer:sleep/1 suspends a process, but an exit signal still kills it at once."""
    pid, ref = erlang.spawn_monitor(erlang.sleep, 60)
    erlang.exit(pid, "wake_and_die")
    assert down_reason(ref) == "wake_and_die"
    erlang.sleep(0.001)  # and a plain sleep returns


def test_exit_hooks_see_every_exit_and_a_failing_hook_is_contained(caplog):
    """The runtime tells exit hooks (ETS's table owner cleanup) of each exit, even if one hook fails."""
    seen: list[tuple[Pid, Any]] = []

    def broken(pid: Pid, reason: Any) -> None:
        raise RuntimeError("hook failed")

    erlang.on_process_exit(broken)
    erlang.on_process_exit(lambda pid, reason: seen.append((pid, reason)))
    hook = erlang._exit_hooks[-1]
    try:
        with caplog.at_level(logging.ERROR, logger="repg2.erlang"):
            pid, ref = erlang.spawn_monitor(lambda: erlang.exit("hooked"))
            assert down_reason(ref) == "hooked"
        assert (pid, "hooked") in seen
        assert "hook" in caplog.text
    finally:
        erlang._exit_hooks.remove(broken)
        erlang._exit_hooks.remove(hook)


# == Monitors ======================================================================


def test_monitor_of_a_dead_pid_gives_noproc_at_once():
    """erlang:monitor/2 of a process that no longer exists delivers 'DOWN' with noproc immediately."""
    pid, ref = erlang.spawn_monitor(lambda: None)
    down_reason(ref)
    ref2 = erlang.monitor("process", pid)
    assert erlang.receive(timeout=0) == ("DOWN", ref2, "process", pid, "noproc")


def test_monitor_of_an_earlier_incarnations_pid_gives_noproc():
    """A pid of an earlier incarnation of this node names no process: noproc at once."""
    old = Pid(erlang.node(), 1, 99)
    ref = erlang.monitor("process", old)
    assert erlang.receive(timeout=0) == ("DOWN", ref, "process", old, "noproc")


def test_monitor_by_name_reports_the_name():
    """monitor(process, Name) reports {Name, Node} as the item of its 'DOWN'."""
    pid, pref = erlang.spawn_monitor(wait_for_stop)
    erlang.register("test_erlang_named", pid)
    ref = erlang.monitor("process", "test_erlang_named")
    erlang.send(pid, "stop")
    assert recv(is_down(ref)) == ("DOWN", ref, "process", ("test_erlang_named", erlang.node()), "normal")


def test_monitor_of_an_unregistered_name_gives_noproc():
    """monitor(process, {Name, node()}) for a name nobody holds gives noproc at once."""
    ref = erlang.monitor("process", ("nobody_has_this_name", erlang.node()))
    assert erlang.receive(timeout=0) == ("DOWN", ref, "process", ("nobody_has_this_name", "nonode@nohost"), "noproc")


@pytest.mark.parametrize("target", [Pid("ghost@nowhere", 1, 1), ("name", "ghost@nowhere")])
def test_monitor_across_an_unreachable_node_gives_noconnection(target):
    """A monitor on a node that cannot be reached fires at once with noconnection."""
    ref = erlang.monitor("process", target)
    assert erlang.receive(timeout=0) == ("DOWN", ref, "process", target, "noconnection")


@pytest.mark.parametrize(("kind", "target"), [("port", None), ("process", 42), ("process", ("a", "b", "c"))])
def test_monitor_with_bad_arguments_is_badarg(kind, target):
    """erlang:monitor/2 takes 'process' and a pid, a name or {Name, Node}; anything else is badarg."""
    with pytest.raises(ErlangError) as info:
        erlang.monitor(kind, target)
    assert info.value.reason == "badarg"


def test_demonitor_flush_removes_a_queued_down():
    """demonitor(Ref, [flush]) removes the monitor's 'DOWN' that is already in the mailbox."""
    pid, ref = erlang.spawn_monitor(lambda: None)
    thread_gone(pid)  # so the 'DOWN' is certainly queued
    erlang.send(erlang.self(), "keep me")
    assert erlang.demonitor(ref, ["flush"]) is True
    assert erlang.flush() == ["keep me"]


def test_demonitor_stops_a_live_monitor():
    """demonitor/1 of an active monitor means no 'DOWN' comes when the process ends."""
    erlang.process_flag("trap_exit", True)
    pid = erlang.spawn_link(wait_for_stop)
    ref = erlang.monitor("process", pid)
    assert erlang.demonitor(ref) is True
    erlang.send(pid, "stop")
    recv(lambda m: m == ("EXIT", pid, "normal"))  # a link's signal comes after every 'DOWN'
    thread_gone(pid)
    assert erlang.flush() == []


def test_demonitor_info_says_whether_the_monitor_was_active():
    """demonitor(Ref, [info]) returns true if the monitor was active, false if it had fired."""
    pid, ref = erlang.spawn_monitor(wait_for_stop)
    assert erlang.demonitor(ref, ["info"]) is True
    assert erlang.demonitor(ref, ["info"]) is False
    ref2 = erlang.monitor("process", pid)
    erlang.send(pid, "stop")
    down_reason(ref2)
    assert erlang.demonitor(ref2, ["flush", "info"]) is False


def test_demonitor_of_a_monitor_by_name():
    """demonitor/1 also removes a monitor taken by registered name."""
    pid, pref = erlang.spawn_monitor(wait_for_stop)
    erlang.register("test_erlang_named", pid)
    ref = erlang.monitor("process", "test_erlang_named")
    assert erlang.demonitor(ref, ["info"]) is True
    erlang.send(pid, "stop")
    down_reason(pref)
    thread_gone(pid)
    assert erlang.flush(is_down(ref)) == []


@pytest.mark.parametrize(("ref", "options"), [("not a ref", []), (None, ["flush"]), ("ref", ["bogus"])])
def test_demonitor_with_bad_arguments_is_badarg(ref, options):
    """demonitor/2 takes a reference and the options flush and info; anything else is badarg."""
    if ref == "ref":
        ref = erlang.make_ref()
    with pytest.raises(ErlangError) as info:
        erlang.demonitor(ref, options)
    assert info.value.reason == "badarg"


def test_a_process_ending_drops_the_monitors_it_held():
    """When a watcher ends, its monitors go with it: the watched process's end sends it nothing."""
    target, tref = erlang.spawn_monitor(wait_for_stop)
    me = erlang.self()

    def watch_then_end() -> None:
        erlang.monitor("process", target)
        erlang.monitor("process", ("test_erlang_named", erlang.node()))
        erlang.send(me, "watching")

    erlang.register("test_erlang_named", target)
    watcher, wref = erlang.spawn_monitor(watch_then_end)
    recv(lambda m: m == "watching")
    await_exit(watcher, wref)
    assert watcher not in erlang._processes[target.id].watchers.values()
    erlang.send(target, "stop")
    down_reason(tref)


# == Links and exit signals ========================================================


def test_exit_kill_kills_even_a_trapping_process():
    """exit(Pid, kill) cannot be trapped: the process dies and its monitors see reason killed."""
    pid, ref = start_trapper()
    erlang.exit(pid, "kill")
    assert down_reason(ref) == "killed"


def test_exit_normal_does_not_kill_a_non_trapping_process():
    """exit(Pid, normal) from another process is ignored by a process that does not trap exits."""
    pid, ref = erlang.spawn_monitor(nodefuns.echo)
    erlang.exit(pid, "normal")
    erlang.send(pid, (erlang.self(), "still here"))
    assert recv() == "still here"
    assert erlang.is_process_alive(pid)
    erlang.send(pid, "stop")
    assert down_reason(ref) == "normal"


def test_exit_signal_to_a_trapping_process_becomes_a_message():
    """A trapping process receives exit(Pid, Reason) as {'EXIT', From, Reason}, normal included."""
    pid, ref = start_trapper()
    me = erlang.self()
    erlang.exit(pid, "normal")
    erlang.exit(pid, "shutdown")
    assert recv() == ("got", ("EXIT", me, "normal"))
    assert recv() == ("got", ("EXIT", me, "shutdown"))
    assert erlang.is_process_alive(pid)


def test_exit_with_another_reason_kills_a_non_trapping_process():
    """exit(Pid, Reason) with any reason but normal kills a process that does not trap exits."""
    pid, ref = erlang.spawn_monitor(wait_for_stop)
    erlang.exit(pid, "bang")
    assert not erlang.is_process_alive(pid)  # at once, even before it unwinds
    assert down_reason(ref) == "bang"


def test_exit_to_a_dead_or_remote_pid_is_a_no_op():
    """exit/2 to a process that is gone, or across no distribution, does nothing and returns true."""
    pid, ref = erlang.spawn_monitor(lambda: None)
    await_exit(pid, ref)
    assert erlang.exit(pid, "late") is True
    assert erlang.exit(Pid("ghost@nowhere", 1, 1), "far") is True


def test_exit_with_bad_arguments_is_badarg():
    """erlang:exit/2 needs a pid as its first argument."""
    with pytest.raises(ErlangError) as info:
        erlang.exit("not a pid", "reason")
    assert info.value.reason == "badarg"


def test_exit_1_raises_exit_error():
    """erlang:exit/1 raises an exit-class exception carrying the reason."""
    with pytest.raises(ExitError) as info:
        erlang.exit(("my", "reason"))
    assert info.value.reason == ("my", "reason")


def _pair(child_body: Callable[[], None]) -> tuple[Pid, Ref, Pid, Ref]:
    """Spawn a monitored non-trapping parent that spawn_links ``child_body``; return both pids and refs."""
    me = erlang.self()

    def parent() -> None:
        child = erlang.spawn_link(child_body)
        erlang.send(me, ("child", child))
        wait_for_stop()

    ppid, pref = erlang.spawn_monitor(parent)
    child = recv(lambda m: m[0] == "child")[1]
    cref = erlang.monitor("process", child)
    return ppid, pref, child, cref


def test_a_normal_exit_does_not_kill_a_linked_process():
    """A linked non-trapping process survives its partner's normal exit."""
    ppid, pref, child, cref = _pair(wait_for_stop)
    erlang.send(child, "stop")
    assert await_exit(child, cref) == "normal"
    assert erlang.is_process_alive(ppid)


def test_an_abnormal_exit_kills_a_linked_process():
    """A linked non-trapping process dies with its partner's abnormal exit reason."""
    ppid, pref, child, cref = _pair(lambda: erlang.receive(lambda m: m == "crash") and erlang.exit("crashed"))
    erlang.send(child, "crash")
    assert down_reason(cref) == "crashed"
    assert down_reason(pref) == "crashed"


def test_trap_exit_turns_a_link_exit_into_a_message():
    """process_flag(trap_exit, true) makes a linked process's exit arrive as {'EXIT', Pid, Reason}."""
    assert erlang.process_flag("trap_exit", True) is False
    pid = erlang.spawn_link(lambda: erlang.exit("bye"))
    assert recv() == ("EXIT", pid, "bye")
    assert erlang.process_flag("trap_exit", False) is True


def test_a_killed_process_tells_its_links_killed():
    """A process killed by exit(P, kill) sends 'killed', never 'kill', to its links."""
    erlang.process_flag("trap_exit", True)
    pid = erlang.spawn_link(wait_for_stop)
    erlang.exit(pid, "kill")
    assert recv() == ("EXIT", pid, "killed")


def test_a_link_carrying_kill_is_an_ordinary_trappable_signal():
    """A process that exits with reason kill sends its links an ordinary, trappable 'kill'."""
    watcher, wref = start_trapper()
    pid = erlang.spawn(linked_to(watcher, lambda: erlang.exit("kill")))
    recv(lambda m: m == "linked")
    erlang.send(pid, "go")
    assert recv(lambda m: m[0] == "got") == ("got", ("EXIT", pid, "kill"))
    assert erlang.is_process_alive(watcher)


def test_link_to_a_dead_pid():
    """link/1 to a dead process raises noproc, or gives {'EXIT', Pid, noproc} to a trapping caller."""
    pid, ref = erlang.spawn_monitor(lambda: None)
    await_exit(pid, ref)
    with pytest.raises(ErlangError) as info:
        erlang.link(pid)
    assert info.value.reason == "noproc"
    erlang.process_flag("trap_exit", True)
    assert erlang.link(pid) is True
    assert erlang.receive(timeout=0) == ("EXIT", pid, "noproc")


def test_link_across_an_unreachable_node_gives_noconnection():
    """link/1 to a pid whose node cannot be reached sends the caller {'EXIT', Pid, noconnection}."""
    erlang.process_flag("trap_exit", True)
    ghost = Pid("ghost@nowhere", 1, 1)
    assert erlang.link(ghost) is True
    assert erlang.receive(timeout=0) == ("EXIT", ghost, "noconnection")
    assert erlang.unlink(ghost) is True


def test_link_to_self_is_a_no_op():
    """link(self()) is allowed and changes nothing."""
    assert erlang.link(erlang.self()) is True


def test_unlink_stops_exit_signals():
    """After unlink/1, the former partner's crash no longer reaches the process."""
    me = erlang.self()

    def link_then_unlink() -> None:
        child = erlang.spawn_link(lambda: erlang.receive(lambda m: m == "crash") and erlang.exit("crashed"))
        erlang.unlink(child)
        erlang.send(me, ("child", child))
        wait_for_stop()

    ppid, pref = erlang.spawn_monitor(link_then_unlink)
    child = recv(lambda m: m[0] == "child")[1]
    cref = erlang.monitor("process", child)
    erlang.send(child, "crash")
    assert await_exit(child, cref) == "crashed"
    assert erlang.is_process_alive(ppid)


@pytest.mark.parametrize("bif", [erlang.link, erlang.unlink])
def test_link_and_unlink_of_a_non_pid_are_badarg(bif):
    """link/1 and unlink/1 take a pid."""
    with pytest.raises(ErlangError) as info:
        bif("not a pid")
    assert info.value.reason == "badarg"


def test_process_flag_supports_only_trap_exit():
    """process_flag/2 is ported for trap_exit with a boolean only; other flags are badarg."""
    for flag, value in [("priority", "high"), ("trap_exit", "yes")]:
        with pytest.raises(ErlangError):
            erlang.process_flag(flag, value)


# == Plain threads as processes ===================================================


def _in_thread(body: Callable[[queue.SimpleQueue[Any]], None]) -> queue.SimpleQueue[Any]:
    """Run ``body(results)`` in a plain thread (not a spawned process) and return its result queue."""
    results: queue.SimpleQueue[Any] = queue.SimpleQueue()
    threading.Thread(target=body, args=(results,), daemon=True).start()
    return results


def test_a_plain_thread_becomes_a_process_on_first_self():
    """A thread that calls self() becomes a process: it gets a pid and can receive messages."""

    def body(results: queue.SimpleQueue[Any]) -> None:
        results.put(erlang.current_process_or_none())
        me = erlang.self()
        results.put(me)
        results.put(erlang.receive(timeout=DEADLINE))

    results = _in_thread(body)
    assert results.get(timeout=DEADLINE) is None
    pid = results.get(timeout=DEADLINE)
    assert isinstance(pid, Pid) and pid != erlang.self() and erlang.is_process_alive(pid)
    erlang.send(pid, "to a thread")
    assert results.get(timeout=DEADLINE) == "to a thread"


def test_a_killed_plain_thread_gets_exit_error_then_a_fresh_pid():
    """A plain thread killed by an exit signal gets ExitError at its next receive, and a new pid after."""

    def body(results: queue.SimpleQueue[Any]) -> None:
        results.put(erlang.self())
        try:
            erlang.receive(timeout=DEADLINE)
            results.put("not killed")
        except ExitError as exc:
            results.put(exc.reason)
        results.put(erlang.current_process_or_none())
        results.put(erlang.self())

    results = _in_thread(body)
    first = results.get(timeout=DEADLINE)
    ref = erlang.monitor("process", first)
    erlang.exit(first, "die")
    assert results.get(timeout=DEADLINE) == "die"
    assert results.get(timeout=DEADLINE) is None
    second = results.get(timeout=DEADLINE)
    assert second != first
    assert down_reason(ref) == "die"
    assert not erlang.is_process_alive(first)


def test_a_finished_plain_thread_ends_its_process():
    """When a plain thread that became a process finishes, the process ends 'normal': monitors fire, names are freed."""
    import gc
    import threading

    box: list[Pid] = []

    def body() -> None:
        box.append(erlang.self())
        erlang.register("plain_thread_name", box[0])

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    ref = erlang.monitor("process", box[0])
    del thread
    gc.collect()
    assert down_reason(ref) == "normal"
    assert erlang.whereis("plain_thread_name") == "undefined"


# == Registered names =============================================================


def test_register_whereis_unregister():
    """register/2 names a process; whereis/1 finds it; unregister/1 removes the name."""
    pid, ref = erlang.spawn_monitor(wait_for_stop)
    assert erlang.register("test_erlang_named", pid) is True
    assert erlang.whereis("test_erlang_named") == pid
    assert "test_erlang_named" in erlang.registered()
    erlang.send("test_erlang_named", "stop")  # sending to the name reaches it
    assert down_reason(ref) == "normal"
    assert erlang.whereis("test_erlang_named") == "undefined"


def test_unregister_frees_the_name_for_another_process():
    """After unregister/1 the name is free and the process lives on."""
    a, _ = erlang.spawn_monitor(wait_for_stop)
    b, _ = erlang.spawn_monitor(wait_for_stop)
    erlang.register("test_erlang_named", a)
    assert erlang.unregister("test_erlang_named") is True
    assert erlang.whereis("test_erlang_named") == "undefined"
    assert erlang.register("test_erlang_named", b) is True
    assert erlang.is_process_alive(a)


def test_a_name_is_freed_when_its_process_ends():
    """A registered name disappears with its process, before its monitors hear of the end."""
    pid, ref = erlang.spawn_monitor(wait_for_stop)
    erlang.register("test_erlang_named", pid)
    erlang.send(pid, "stop")
    down_reason(ref)
    assert erlang.whereis("test_erlang_named") == "undefined"
    assert "test_erlang_named" not in erlang.registered()
    assert erlang.register("test_erlang_named", erlang.self()) is True


def test_register_badarg_cases():
    """register/2 is badarg for a taken name, a named process, a dead pid, 'undefined' or a non-atom."""
    a, _ = erlang.spawn_monitor(wait_for_stop)
    b, _ = erlang.spawn_monitor(wait_for_stop)
    dead, dref = erlang.spawn_monitor(lambda: None)
    down_reason(dref)
    erlang.register("test_erlang_named", a)
    for name, pid in [
        ("test_erlang_named", b),  # name taken
        ("test_erlang_other", a),  # process already has a name
        ("test_erlang_other", dead),  # dead process
        ("undefined", b),  # the reserved atom
        (42, b),  # not an atom
        ("test_erlang_other", "not a pid"),
    ]:
        with pytest.raises(ErlangError) as info:
            erlang.register(name, pid)  # type: ignore[arg-type]
        assert info.value.reason == "badarg"
    assert erlang.whereis("test_erlang_other") == "undefined"


def test_unregister_of_an_unknown_name_is_badarg():
    """unregister/1 of a name nobody holds is badarg; whereis/1 of it is undefined."""
    assert erlang.whereis("nobody_has_this_name") == "undefined"
    with pytest.raises(ErlangError) as info:
        erlang.unregister("nobody_has_this_name")
    assert info.value.reason == "badarg"


# == Nodes ==========================================================================


def test_node_is_nonode_at_nohost_when_not_distributed():
    """node() is nonode@nohost before net_kernel starts; nodes() is empty; disconnecting does nothing."""
    assert erlang.node() == "nonode@nohost"
    assert erlang.node(erlang.self()) == "nonode@nohost"
    assert erlang.node(erlang.make_ref()) == "nonode@nohost"
    assert erlang.node(Pid("ghost@nowhere", 1, 1)) == "ghost@nowhere"
    assert erlang.nodes() == []
    assert erlang.disconnect_node("ghost@nowhere") is False
    with pytest.raises(ErlangError):
        erlang.node("not a pid")  # type: ignore[arg-type]


# == The runtime's half of the distribution protocol ==================================
#
# repg2.dist plugs into the runtime through erlang.DistHook (outgoing control
# messages) and the erlang._dist_* entry points (incoming ones). These tests
# put a recording fake in its place, so they pin what the runtime asks of the
# distribution and how it acts on what arrives, with no second node.

REMOTE = "b@host"


class RecordingDist:
    """A DistHook that records every control message the runtime sends."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.reachable = True

    def nodes(self) -> list[str]:
        return [REMOTE]

    def disconnect(self, node: str) -> bool:
        self.calls.append(("disconnect", node))
        return True

    def send(self, sender: Pid | None, to: Pid, msg: Any) -> None:
        self.calls.append(("send", sender, to, msg))

    def reg_send(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        self.calls.append(("reg_send", sender, name, node, msg))

    def link(self, frm: Pid, to: Pid) -> None:
        self.calls.append(("link", frm, to))

    def unlink(self, frm: Pid, to: Pid) -> None:
        self.calls.append(("unlink", frm, to))

    def exit(self, frm: Pid, to: Pid, reason: Any, linked: bool) -> None:
        self.calls.append(("exit", frm, to, reason, linked))

    def monitor(self, watcher: Pid, target: Any, ref: Ref) -> bool:
        self.calls.append(("monitor", watcher, target, ref))
        return self.reachable

    def demonitor(self, watcher: Pid, target: Any, ref: Ref) -> None:
        self.calls.append(("demonitor", watcher, target, ref))

    def monitor_exit(self, target: Any, watcher: Pid, ref: Ref, reason: Any) -> None:
        self.calls.append(("monitor_exit", target, watcher, ref, reason))

    def corked(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def uncork(self) -> None:
        pass  # nothing is held back: every call above is recorded at once


@pytest.fixture
def recording_dist() -> Iterator[RecordingDist]:
    """Plug a recording distribution into the runtime for one test."""
    saved = erlang._dist
    fake = RecordingDist()
    erlang._set_dist(fake)
    yield fake
    erlang._set_dist(saved)


def test_local_pids_follow_the_node_name():
    """A pid made before net_kernel names the node is still this node's pid afterwards."""
    me = erlang.self()
    saved = (erlang._identity.name, erlang._identity.creation)
    try:
        erlang._set_identity("a@host", 2)
        assert erlang.node(me) == erlang.node() == "a@host" and me.creation == 2
        back = pickle.loads(pickle.dumps(me))
        assert back.is_local() and back == me
        assert pickle.loads(pickle.dumps(Pid(None, me.id))) == me
    finally:
        erlang._set_identity(*saved)
    stale = Pid("a@host", me.id, 2)  # from an incarnation that is no longer this node
    assert stale != me and not stale.is_local()


def test_nodes_and_disconnect_ask_the_distribution(recording_dist: RecordingDist):
    """erlang:nodes/0 and disconnect_node/1 are answered by the distribution once it runs."""
    assert erlang.nodes() == [REMOTE]
    assert erlang.disconnect_node(REMOTE) is True
    assert recording_dist.calls == [("disconnect", REMOTE)]


def test_sends_to_another_node_go_through_the_distribution(recording_dist: RecordingDist):
    """Pid ! Msg and {Name, Node} ! Msg for another node become SEND and REG_SEND control messages."""
    me = erlang.self()
    far = Pid(REMOTE, 5, 1)
    erlang.send(far, "hi")
    erlang.send(("server", REMOTE), "hello")
    stale = Pid(erlang.node(), 5, 99)  # an earlier incarnation of this node: dropped, never sent
    erlang.send(stale, "lost")
    assert recording_dist.calls == [("send", me, far, "hi"), ("reg_send", me, "server", REMOTE, "hello")]


def test_send_noconnect_sends_only_over_an_existing_connection(recording_dist: RecordingDist):
    """erlang:send/3 with [noconnect] sends to a connected node ('ok') and drops, without connecting, for another."""
    me = erlang.self()
    far, unconnected = Pid(REMOTE, 5, 1), Pid("elsewhere@host", 5, 1)
    assert erlang.send(far, "hi", ["noconnect"]) == "ok"
    assert erlang.send(("server", REMOTE), "hello", ["noconnect"]) == "ok"
    assert erlang.send(unconnected, "lost", ["noconnect"]) == "noconnect"
    assert erlang.send(("server", "elsewhere@host"), "lost", ["noconnect"]) == "noconnect"
    assert recording_dist.calls == [("send", me, far, "hi"), ("reg_send", me, "server", REMOTE, "hello")]
    assert erlang.send(me, "to myself", ["noconnect"]) == "ok"
    assert erlang.send(me, "plain", []) == "ok"
    assert erlang.flush() == ["to myself", "plain"]
    with pytest.raises(erlang.ErlangError, match="badarg"):
        erlang.send(far, "x", ["nosuspend"])
    with pytest.raises(erlang.ErlangError, match="badarg"):
        erlang.send("nobody_has_this_name", "x", ["noconnect"])


def test_link_unlink_and_exit_to_another_node(recording_dist: RecordingDist):
    """link/1, unlink/1 and exit/2 on a remote pid become LINK, UNLINK and EXIT2 control messages."""
    me = erlang.self()
    far = Pid(REMOTE, 5, 1)
    erlang.link(far)
    erlang.unlink(far)
    erlang.exit(far, "bye")
    assert recording_dist.calls == [("link", me, far), ("unlink", me, far), ("exit", me, far, "bye", False)]


def test_monitor_and_demonitor_of_a_remote_process(recording_dist: RecordingDist):
    """A remote monitor is a MONITOR_P; demonitor sends DEMONITOR_P; an unreachable node gives noconnection."""
    me = erlang.self()
    far = Pid(REMOTE, 5, 1)
    ref = erlang.monitor("process", far)
    assert recording_dist.calls == [("monitor", me, far, ref)]
    assert erlang.receive(timeout=0) is TIMEOUT
    assert erlang.demonitor(ref) is True
    assert recording_dist.calls[-1] == ("demonitor", me, far, ref)
    recording_dist.reachable = False
    ref2 = erlang.monitor("process", ("server", REMOTE))
    assert erlang.receive(timeout=0) == ("DOWN", ref2, "process", ("server", REMOTE), "noconnection")


def test_a_local_exit_tells_remote_links_and_drops_remote_monitors(recording_dist: RecordingDist):
    """When a process ends, its remote links get an EXIT and its remote monitors a DEMONITOR_P."""
    far = Pid(REMOTE, 5, 1)
    me = erlang.self()

    def link_and_watch() -> None:
        erlang.link(far)
        erlang.send(me, ("ref", erlang.monitor("process", far)))
        erlang.receive(lambda m: m == "crash")
        erlang.exit("crashed")

    pid, pref = erlang.spawn_monitor(link_and_watch)
    ref = recv(lambda m: m[0] == "ref")[1]
    erlang.send(pid, "crash")
    await_exit(pid, pref)
    assert ("exit", pid, far, "crashed", True) in recording_dist.calls
    assert ("demonitor", pid, far, ref) in recording_dist.calls


def test_incoming_messages_reach_local_processes(recording_dist: RecordingDist):
    """SEND and REG_SEND from another node reach the local pid or name; an unknown name drops it."""
    me = erlang.self()
    erlang.register("test_erlang_me", me)
    erlang._dist_deliver(me, "by pid")
    erlang._dist_deliver_reg("test_erlang_me", "by name")
    erlang._dist_deliver_reg("nobody_has_this_name", "lost")
    assert erlang.flush() == ["by pid", "by name"]


def test_an_incoming_link_carries_the_local_exit_back(recording_dist: RecordingDist):
    """A LINK from another node makes a local exit send EXIT back; a dead target answers noproc."""
    far = Pid(REMOTE, 5, 1)
    pid, ref = erlang.spawn_monitor(wait_for_stop)
    erlang._dist_link(far, pid)
    erlang.send(pid, "stop")
    await_exit(pid, ref)
    assert ("exit", pid, far, "normal", True) in recording_dist.calls
    erlang._dist_link(far, pid)  # now dead
    assert recording_dist.calls[-1] == ("exit", pid, far, "noproc", True)


def test_an_incoming_unlink_removes_the_link(recording_dist: RecordingDist):
    """An UNLINK from another node means the local exit sends nothing back."""
    far = Pid(REMOTE, 5, 1)
    pid, ref = erlang.spawn_monitor(wait_for_stop)
    erlang._dist_link(far, pid)
    erlang._dist_unlink(far, pid)
    erlang.send(pid, "stop")
    await_exit(pid, ref)
    assert [c for c in recording_dist.calls if c[0] == "exit"] == []


def test_incoming_exit_signals_follow_the_local_rules(recording_dist: RecordingDist):
    """EXIT2 from another node obeys exit/2's rules; a linked EXIT needs the link to exist."""
    far = Pid(REMOTE, 5, 1)
    pid, ref = erlang.spawn_monitor(wait_for_stop)
    erlang._dist_exit(far, pid, "crashed", True)  # no link: void
    erlang._dist_exit(far, pid, "normal", False)  # normal: ignored
    assert erlang.is_process_alive(pid)
    erlang._dist_exit(far, pid, "kill", False)
    assert down_reason(ref) == "killed"


def test_an_incoming_monitor_fires_back_when_the_local_process_ends(recording_dist: RecordingDist):
    """A MONITOR_P from another node is answered by MONITOR_P_EXIT with the pid or {Name, Node}; only its watcher drops it."""
    watcher = Pid(REMOTE, 9, 1)
    pid, pref = erlang.spawn_monitor(wait_for_stop)
    erlang.register("test_erlang_named", pid)
    by_pid, by_name, dropped = erlang.make_ref(), erlang.make_ref(), erlang.make_ref()
    erlang._dist_monitor(watcher, pid, by_pid)
    erlang._dist_monitor(watcher, ("test_erlang_named", erlang.node()), by_name)
    erlang._dist_monitor(watcher, pid, dropped)
    erlang._dist_demonitor(pid, dropped, watcher)
    erlang._dist_demonitor(pid, by_pid, Pid(REMOTE, 10, 1))  # not the watcher of by_pid: ignored
    erlang.send(pid, "stop")
    await_exit(pid, pref)
    fired = {c for c in recording_dist.calls if c[0] == "monitor_exit"}
    assert fired == {
        ("monitor_exit", pid, watcher, by_pid, "normal"),
        ("monitor_exit", ("test_erlang_named", erlang.node()), watcher, by_name, "normal"),
    }
    late = erlang.make_ref()
    erlang._dist_monitor(watcher, pid, late)
    assert recording_dist.calls[-1] == ("monitor_exit", pid, watcher, late, "noproc")


def test_an_incoming_monitor_exit_becomes_a_down(recording_dist: RecordingDist):
    """MONITOR_P_EXIT from the monitored process's node delivers the 'DOWN' of a monitor the local process still holds."""
    far = Pid(REMOTE, 5, 1)
    ref = erlang.monitor("process", far)
    erlang._dist_monitor_exit(far, erlang.self(), ref, "forged", "third@127.0.0.1")  # not far's node: ignored
    erlang._dist_monitor_exit(far, erlang.self(), ref, "crashed", REMOTE)
    erlang._dist_monitor_exit(far, erlang.self(), ref, "twice", REMOTE)  # fired already: ignored
    assert erlang.flush() == [("DOWN", ref, "process", far, "crashed")]


def test_a_lost_node_fires_every_monitor_and_link_across_it(recording_dist: RecordingDist):
    """A lost connection gives noconnection to every monitor and link across it, and forgets its watchers."""
    far = Pid(REMOTE, 5, 1)
    erlang.process_flag("trap_exit", True)
    by_pid = erlang.monitor("process", far)
    by_name = erlang.monitor("process", ("server", REMOTE))
    erlang.link(far)
    pid, pref = erlang.spawn_monitor(wait_for_stop)
    erlang._dist_monitor(Pid(REMOTE, 9, 1), pid, erlang.make_ref())
    erlang._dist_node_down(REMOTE)
    got = erlang.flush()
    assert ("DOWN", by_pid, "process", far, "noconnection") in got
    assert ("DOWN", by_name, "process", ("server", REMOTE), "noconnection") in got
    assert ("EXIT", far, "noconnection") in got and len(got) == 3
    erlang.send(pid, "stop")
    await_exit(pid, pref)
    assert [c for c in recording_dist.calls if c[0] == "monitor_exit"] == []


def test_mailbox_signal_wakes_its_one_waiter() -> None:
    """A mailbox's _Signal: wait times out without a notify, wakes on one, and a notify with nobody waiting is lost."""
    signal = erlang._Signal()
    with signal:
        signal.notify()  # nobody waits: nothing is remembered
        assert signal.wait(0.01) is False
    woke: list[bool] = []

    def waiter() -> None:
        with signal:
            woke.append(signal.wait(DEADLINE))

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_until(lambda: signal._waiting, "the waiter to sleep (it must, before the notify)")
    with signal:
        signal.notify_all()
    thread.join(DEADLINE)
    assert woke == [True]
    with signal:  # the wake-up was consumed: the next wait sleeps again
        assert signal.wait(0.01) is False
