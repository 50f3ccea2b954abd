"""One liveness rule: a killed process is dead to every observer at once (TRANSLATION_NOTES D1).

A Python thread cannot be stopped from outside, so the victim here is a
process busy in plain Python (no ``receive``) when it is killed: the case
where the old runtime kept treating it as alive until its next receive. The
same steps run on a real OTP 25 node, and both sides must report the same
observations, in the same order:

1. ``is_process_alive(V)`` right after ``exit(V, kill)``;
2. ``whereis(Name)`` of the name V had;
3. the reason of a ``'DOWN'`` from a monitor taken afterwards;
4. the reason of the ``'EXIT'`` a trapping process gets when it links to V;
5. ``link(V)`` from a process that does not trap exits (it fails);
6. ``register(Name, Other)`` with V's old name;
7. a send to a killed process's registered name (the name is gone: ``badarg``);
8. whether ``processes()`` lists V;
9. ``gen_server:call(V, ...)`` (it exits; the reason's first element);
10. the reason a process linked to V (trapping exits) was told.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from support import DEADLINE, down_reason, need_erlang, recv, tagged, wait_until

from repg2 import erlang, gen_server
from repg2.erlang import TIMEOUT, ErlangError, ExitError, Pid
from repg2.testing import Cluster, otp

pytestmark = pytest.mark.timeout(60)

# The Erlang side: the same ten observations, one per line, as atoms.
ERLANG_STEPS = r"""
Busy = fun() -> receive stop -> ok end end,
Me = self(),
process_flag(trap_exit, true),
V = spawn(Busy),
register(victim, V),
Linker = spawn(fun() -> process_flag(trap_exit, true), link(V), Me ! linked,
                        receive {'EXIT', V, Why} -> Me ! {linker_told, Why} end end),
receive linked -> ok end,
exit(V, kill),
A = is_process_alive(V),
W = whereis(victim),
R = monitor(process, V),
D = receive {'DOWN', R, process, V, DR} -> DR after 5000 -> timeout end,
true = link(V),
E = receive {'EXIT', V, ER} -> ER after 5000 -> timeout end,
NoTrap = spawn(fun() -> Me ! {no_trap, catch link(V)} end),
L = receive {no_trap, {'EXIT', {LR, _}}} -> LR; {no_trap, Other0} -> Other0 end,
O = spawn(Busy),
Reg = register(victim, O),
V2 = spawn(Busy), register(victim2, V2), exit(V2, kill), false = is_process_alive(V2),
S = case catch (victim2 ! hello) of {'EXIT', {SR, _}} -> SR; _ -> sent end,
C = lists:member(V, processes()),
G = case catch gen_server:call(V, hello) of {'EXIT', {GR, _}} -> GR; Other1 -> Other1 end,
K = receive {linker_told, KR} -> KR after 5000 -> timeout end,
[io:format("~w~n", [X]) || X <- [A, W, D, E, L, Reg, S, C, G, K]],
exit(O, kill), exit(Linker, kill), exit(NoTrap, kill),
init:stop().
"""


def atom_text(value: Any) -> str:
    """Print a Python observation as Erlang's ``~w`` prints the atom it stands for."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def busy(release: threading.Event, started: threading.Event) -> None:
    """Spin in plain Python until ``release`` is set, then call into the runtime (where a kill unwinds)."""
    started.set()
    while not release.wait(0.001):
        pass
    erlang.receive(lambda m: m == "stop")


def linker(victim: Pid, report_to: Pid) -> None:
    """Trap exits, link to ``victim`` and report what its death signal said."""
    erlang.process_flag("trap_exit", True)
    erlang.link(victim)
    erlang.send(report_to, "linked")
    msg = erlang.receive(lambda m: isinstance(m, tuple) and m[0] == "EXIT" and m[1] == victim)
    erlang.send(report_to, ("linker_told", msg[2]))


def link_without_trapping(victim: Pid, report_to: Pid) -> None:
    """Link to ``victim`` without trapping exits and report the error's reason."""
    try:
        erlang.link(victim)
        erlang.send(report_to, ("no_trap", "linked"))
    except ErlangError as exc:
        erlang.send(report_to, ("no_trap", exc.reason))


def python_observations() -> tuple[list[Any], threading.Thread | None]:
    """Run the ten steps on this runtime; return the observations and the victim's still-running thread."""
    me = erlang.self()
    erlang.process_flag("trap_exit", True)
    release, started = threading.Event(), threading.Event()
    victim = erlang.spawn(busy, release, started)
    assert started.wait(DEADLINE)
    erlang.register("victim", victim)
    link_watcher = erlang.spawn(linker, victim, me)
    recv(lambda m: m == "linked")
    thread = next(t for t in threading.enumerate() if t.name == f"erlang{victim!r}")
    others: list[Pid] = []
    try:
        erlang.exit(victim, "kill")
        assert thread.is_alive(), "the victim's thread must still be running for this test to mean anything"
        alive = erlang.is_process_alive(victim)
        where = erlang.whereis("victim")
        ref = erlang.monitor("process", victim)
        down = down_reason(ref)
        assert erlang.link(victim) is True
        exit_reason = recv(lambda m: isinstance(m, tuple) and m[:2] == ("EXIT", victim))[2]
        no_trap = erlang.spawn(link_without_trapping, victim, me)
        linked = recv(tagged("no_trap"))[1]
        other = erlang.spawn(lambda: erlang.receive(lambda m: m == "stop"))
        second = erlang.spawn(lambda: erlang.receive(lambda m: m == "stop"))
        others += [other, second, no_trap, link_watcher]
        registered = erlang.register("victim", other)
        erlang.register("victim2", second)
        erlang.exit(second, "kill")
        assert erlang.is_process_alive(second) is False
        try:
            erlang.send("victim2", "hello")
            sent: Any = "sent"
        except ErlangError as exc:
            sent = exc.reason
        listed = victim in erlang.processes()
        try:
            gen_server.call(victim, "hello", DEADLINE)
            called: Any = "replied"
        except ExitError as exc:
            called = exc.reason[0] if isinstance(exc.reason, tuple) else exc.reason
        told = recv(tagged("linker_told"))[1]
        return [alive, where, down, exit_reason, linked, registered, sent, listed, called, told], thread
    finally:
        release.set()
        for pid in others:
            erlang.exit(pid, "kill")
        for name in ("victim", "victim2"):
            if erlang.whereis(name) != "undefined":
                erlang.unregister(name)
        erlang.flush()
        erlang.process_flag("trap_exit", False)


def test_a_killed_process_is_dead_to_every_observer_at_once_as_on_a_real_otp_node() -> None:
    """The ten observations after exit(V, kill) match real OTP 25's, while V's thread is still running."""
    need_erlang()
    result = otp.eval_erl(ERLANG_STEPS)
    assert result.returncode == 0, result.stderr
    erlang_side = result.stdout.split()
    ours, thread = python_observations()
    assert [atom_text(x) for x in ours] == erlang_side
    # What OTP prints, spelled out, so a reader sees the rule without running erl.
    assert erlang_side == [
        "false",
        "undefined",
        "noproc",
        "noproc",
        "noproc",
        "true",
        "badarg",
        "false",
        "noproc",
        "killed",
    ]
    assert thread is not None
    thread.join(DEADLINE)
    assert not thread.is_alive(), "the victim's thread unwinds at its next call into the runtime"


def test_a_killed_thread_acts_no_more() -> None:
    """Whatever a killed process's thread attempts after the kill (send, spawn, ETS write) does not happen."""
    me = erlang.self()
    release, started = threading.Event(), threading.Event()
    attempts: list[str] = []

    def body() -> None:
        started.set()
        release.wait(DEADLINE)
        attempts.append("about to send")
        erlang.send(me, "sent after the kill")  # unwinds here: the send never happens
        attempts.append("after send")

    victim = erlang.spawn(body)
    assert started.wait(DEADLINE)
    ref = erlang.monitor("process", victim)
    erlang.exit(victim, "kill")
    assert down_reason(ref) == "killed"
    release.set()
    assert erlang.receive(lambda m: m == "sent after the kill", timeout=0.5) is TIMEOUT
    assert attempts == ["about to send"]


@pytest.mark.distributed
def test_remote_monitor_and_link_of_a_killed_busy_process_answer_noproc(cluster: Any) -> None:
    """MONITOR_P and LINK from another node to a killed (still running) process get noproc at once."""
    from repg2.testing import nodefuns

    c: Cluster = cluster(2)
    b = c.nodes[1]
    victim = c.rpc(b, nodefuns.spawn_busy)
    erlang.exit(victim, "kill")
    assert c.rpc(b, nodefuns.busy_thread_running) is True  # the thread still spins on b
    assert c.rpc(b, erlang.is_process_alive, victim) is False
    ref = erlang.monitor("process", victim)
    assert down_reason(ref) == "noproc"
    erlang.process_flag("trap_exit", True)
    try:
        erlang.link(victim)
        assert recv(lambda m: isinstance(m, tuple) and m[:2] == ("EXIT", victim))[2] == "noproc"
    finally:
        erlang.process_flag("trap_exit", False)
    c.rpc(b, nodefuns.release_busy)
    wait_until(lambda: c.rpc(b, nodefuns.busy_thread_running) is False, "the busy thread to unwind")
