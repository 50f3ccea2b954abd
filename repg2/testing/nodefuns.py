"""Functions that tests, notebooks, benchmarks and the soak run on the nodes of a cluster.

OTP's test suites write these as small local funs and ``rpc:call(Node, M, F, A)``
targets (pg2_SUITE's ``forever/0`` members and ``sane/0``, global_SUITE's lock
holders). Here a function sent to another node through ``Cluster.rpc`` or
``Cluster.spawn`` travels by name, so it lives at module level in this module,
which every node can import (``benchmarks/soak.py`` included, which has no
``tests/`` on its path).

What is here, in the order of the file:

- processes: :func:`member_loop` (a group member that does nothing), an echo
  server, senders and waiters, monitors and links that report what they saw;
- pg2 on a node: :func:`start_pg2`, :func:`stop_pg2`, :func:`restart_pg2`,
  :func:`crash_pg2`, :func:`restart_pg2_server`, and :func:`snapshot` (a
  node's whole view and its ``sane()`` verdict in one round trip, so a test
  can poll a cluster until it has settled);
- imports on a node: :func:`prepend_path`, :func:`imported`, :func:`call_export`;
- pg2 writes stopped half-way: :func:`hold_lock`, :func:`hold_in_trans`;
- load and leak checks: :func:`churn`, :func:`stats`.

Nothing here is part of the translation.
"""

from __future__ import annotations

import importlib
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repg2 import erlang, ets, external, gen_server, global_, kernel, net_kernel, pg2, rpc, supervisor
from repg2.erlang import Pid
from repg2.testing.checks import sane

# == Processes ================================================================


def member_loop() -> None:
    """Wait for messages for ever: a stand-in for a real group member (pg2_SUITE's ``forever/0``)."""
    while True:
        erlang.receive()


def echo() -> None:
    """Send every ``(from, msg)`` back to ``from`` as ``msg``; stop on ``'stop'``."""
    while True:
        msg = erlang.receive()
        if msg == "stop":
            return
        sender, payload = msg
        erlang.send(sender, payload)


def send_sequence(to: Any, tag: str, count: int) -> None:
    """Send ``(tag, 0) ... (tag, count - 1)`` to ``to``, then ``(tag, 'done')``."""
    for i in range(count):
        erlang.send(to, (tag, i))
    erlang.send(to, (tag, "done"))


def wait_then_exit() -> None:
    """Wait for ``('exit', reason)`` and end with that reason (or ``'normal'`` on ``'stop'``)."""
    msg = erlang.receive()
    if msg == "stop":
        return
    erlang.exit(msg[1])


def wait_forever() -> None:
    """Block in receive until killed by an exit signal."""
    erlang.receive(lambda m: False)


def register_as(name: str) -> Pid:
    """Spawn a waiting process registered as ``name``; return its pid."""
    pid = erlang.spawn(wait_then_exit)
    erlang.register(name, pid)
    return pid


def watch(target: Any, report_to: Pid) -> None:
    """Monitor ``target`` and forward the ``'DOWN'`` to ``report_to`` as ``('watched', down)``."""
    ref = erlang.monitor("process", target)
    erlang.send(report_to, ("watching", ref))
    down = erlang.receive(lambda m: isinstance(m, tuple) and m[:2] == ("DOWN", ref))
    erlang.send(report_to, ("watched", down))


def link_and_report(target: Pid, report_to: Pid) -> None:
    """Trap exits, link to ``target``, then forward the ``'EXIT'`` to ``report_to``."""
    erlang.process_flag("trap_exit", True)
    erlang.link(target)
    # A remote link is asynchronous, as in Erlang: the LINK travels on this
    # node's connection to the target's node, and the test's own messages
    # to the target travel on another connection, in no order with it. A
    # call to the target's node on the same connection as the LINK returns
    # only after the LINK was handled there.
    rpc.call(erlang.node(target), erlang.node, [])
    erlang.send(report_to, ("linked", erlang.self()))
    msg = erlang.receive(lambda m: isinstance(m, tuple) and m[0] == "EXIT")
    erlang.send(report_to, ("exit_seen", msg))


def record_node_events(report_to: Pid) -> None:
    """Subscribe to monitor_nodes; forward each event with whether the node is in nodes() then."""
    net_kernel.monitor_nodes(True)
    erlang.send(report_to, ("subscribed", erlang.self()))
    while True:
        msg = erlang.receive()
        if msg == "stop":
            return
        if isinstance(msg, tuple) and msg[0] in ("nodeup", "nodedown"):
            erlang.send(report_to, ("event", msg, msg[1] in erlang.nodes()))
        else:
            erlang.send(report_to, ("event", msg, None))


def send_to_name(name: str, node: str, msg: Any) -> str:
    """Send ``msg`` to ``(name, node)`` and return this node's name."""
    erlang.send((name, node), msg)
    return erlang.node()


def is_alive(pid: Pid) -> bool:
    """Return ``erlang.is_process_alive(pid)`` on this node."""
    return erlang.is_process_alive(pid)


def creation() -> int:
    """Return this node's creation."""
    return erlang._identity.creation


def sleep_then(seconds: float, value: Any) -> Any:
    """Sleep ``seconds`` then return ``value`` (for rpc timeouts)."""
    erlang.sleep(seconds)
    return value


def fail_with(exc: Exception) -> None:
    """Raise ``exc`` (for rpc's badrpc of an exception)."""
    raise exc


def fail_with_value_error(message: str) -> None:
    """Raise ``ValueError(message)`` (an exception object itself cannot cross to another node)."""
    raise ValueError(message)


def exit_with(reason: Any) -> None:
    """Exit with ``reason`` (for rpc's badrpc of an exit)."""
    erlang.exit(reason)


def connect(node: str) -> Any:
    """Return ``net_kernel.connect_node(node)`` on this node."""
    return net_kernel.connect_node(node)


def disconnect(node: str) -> bool:
    """Return ``erlang.disconnect_node(node)`` on this node."""
    return erlang.disconnect_node(node)


def round_trips(echo_pid: Pid, count: int) -> int:
    """Send ``count`` messages to an echo process and wait for each answer."""
    me = erlang.self()
    for i in range(count):
        erlang.send(echo_pid, (me, i))
        assert erlang.receive() == i
    return count


class Unloadable(Exception):
    """An exception that pickles but cannot be unpickled: its constructor needs two arguments."""

    def __init__(self, a: Any, b: Any) -> None:
        super().__init__(f"{a}/{b}")


def raise_unloadable() -> None:
    """Raise an exception that cannot travel back as itself."""
    raise Unloadable(1, 2)


def signal_from_a_worker(signum: int, main_waits_in: tuple[str, ...]) -> str:
    """From a new thread, send ``signum`` to that thread alone once the main thread waits in ``main_waits_in``.

    The kernel may hand a signal sent to a process to any of its threads;
    Python runs the handler in the main thread, and only when that thread
    next runs Python code. This stages the worst case: the main thread
    asleep in a blocking call (its innermost Python function is one of
    ``main_waits_in``) and the signal caught by another thread.
    """
    main = threading.main_thread().ident

    def worker() -> None:
        """Wait (at most 10 s) for the main thread to block, then signal this thread."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            frame = sys._current_frames().get(main or 0)
            if frame is not None and frame.f_code.co_name in main_waits_in:
                break
            time.sleep(0.001)  # the pause of a deadline-bounded poll
        signal.pthread_kill(threading.get_ident(), signum)

    threading.Thread(target=worker, daemon=True, name="signal-from-a-worker").start()
    return "sent"


def kill_self() -> None:
    """Send ``exit(self(), 'kill')`` to the calling process and wait to die."""
    erlang.exit(erlang.self(), "kill")
    erlang.receive(lambda m: False)


# A process busy in plain Python (no receive) until released: the case where a
# killed thread keeps running while the runtime already treats it as dead.
_busy_release = threading.Event()
_busy_threads: list[threading.Thread] = []


def _busy(started: threading.Event) -> None:
    """Spin without calling the runtime until :func:`release_busy`, then receive (where a kill unwinds)."""
    _busy_threads.append(threading.current_thread())
    started.set()
    while not _busy_release.wait(0.001):
        pass
    erlang.receive(lambda m: m == "stop")


def spawn_busy() -> Pid:
    """Spawn a busy process (see :func:`_busy`) and return its pid once it spins."""
    _busy_release.clear()
    started = threading.Event()
    pid = erlang.spawn(_busy, started)
    started.wait(30)
    return pid


def busy_thread_running() -> bool:
    """Say whether a busy process's thread is still running."""
    return any(t.is_alive() for t in _busy_threads)


def release_busy() -> str:
    """Let busy processes reach their receive."""
    _busy_release.set()
    return "ok"


def _echo_tagged() -> None:
    """Answer every ``(from, term)`` with ``('echoed', term)`` (the Erlang probe's echo partner)."""
    while True:
        sender, term = erlang.receive()
        erlang.send(sender, ("echoed", term))


def register_echo(name: str) -> Pid:
    """Start an echo that answers ``(from, term)`` with ``('echoed', term)``, registered as ``name``."""
    pid = erlang.spawn(_echo_tagged)
    erlang.register(name, pid)
    return pid


def _inbox_loop() -> None:
    """Keep every message; answer ``('get', from)`` with ``('kept', messages)``."""
    kept: list[Any] = []
    while True:
        msg = erlang.receive()
        if isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "get" and isinstance(msg[1], Pid):
            erlang.send(msg[1], ("kept", list(kept)))
        else:
            kept.append(msg)


def start_inbox(name: str) -> Pid:
    """Start a process registered as ``name`` that keeps the messages it gets."""
    pid = erlang.spawn(_inbox_loop)
    erlang.register(name, pid)
    return pid


def inbox(name: str) -> list[Any]:
    """Return the messages the inbox ``name`` has kept so far."""
    me = erlang.self()
    erlang.send(name, ("get", me))
    return list(erlang.receive(lambda m: isinstance(m, tuple) and m[0] == "kept", timeout=10)[1])


def send_each(name: str, nodes: list[str]) -> str:
    """Send ``('from', node())`` to the process registered as ``name`` on each of ``nodes``."""
    for node in nodes:
        erlang.send((name, node), ("from", erlang.node()))
    return "ok"


def start_pg_scope() -> Pid:
    """Start pg's default scope on this node (as OTP's kernel does with ``start_pg``); return its pid."""
    from repg2 import pg

    running = erlang.whereis("pg")
    if isinstance(running, Pid):
        return running
    result = pg.start("pg")
    assert result[0] == "ok", result
    return result[1]  # type: ignore[no-any-return]


def stop_pg_scope() -> str:
    """Stop pg's default scope on this node, if it runs."""
    running = erlang.whereis("pg")
    if isinstance(running, Pid):
        gen_server.stop(running)
    return "ok"


def pg_join(group: Any, pid: Pid) -> Any:
    """Join ``pid`` (a process of this node) to ``group`` in pg's default scope."""
    from repg2 import pg

    return pg.join(group, pid)


# == pg2 on a node ==============================================================


def stop_pg2() -> str:
    """Stop this node's pg2 server and forget its child spec; the next pg2 call starts a fresh one.

    Erlang: supervisor:terminate_child/2
    Erlang: supervisor:delete_child/2

    What a test does to start pg2 from an empty table (RePG2's tests stop
    and start the application instead).
    """
    if erlang.whereis("kernel_safe_sup") != "undefined":
        supervisor.terminate_child("kernel_safe_sup", pg2.SERVER)
        supervisor.delete_child("kernel_safe_sup", pg2.SERVER)
    return "ok"


def restart_pg2() -> Any:
    """Stop pg2 and start it again: its init asks every connected node for its groups."""
    stop_pg2()
    return pg2.start()


def snapshot() -> dict[str, Any] | None:
    """Return this node's pg2 view ``{'groups', 'members', 'sane', 'locks'}``, or None if pg2 is not running.

    ``'sane'`` is ``'ok'`` or the text of sane()'s AssertionError, so that a
    table caught mid-update is reported rather than raised: the caller is
    polling until the cluster settles. The reads go straight to the table
    when the server runs; they never start pg2 (the public API would).
    """
    if erlang.whereis(pg2.SERVER) == "undefined" or ets.info(pg2.TABLE, "size") == "undefined":
        return None
    try:
        groups = pg2.all_groups()
        members = {group: pg2.group_members(group) for group in groups}
        try:
            verdict = sane()
        except AssertionError as exc:
            verdict = str(exc)
    except erlang.ErlangError:  # the table went away under us: the server is restarting
        return None
    return {"groups": groups, "members": members, "sane": verdict, "locks": global_lock_rows()}


def start_pg2() -> Pid:
    """Make sure pg2 runs on this node; return its pid."""
    result = pg2.start()
    if result[0] == "ok" and isinstance(result[1], Pid):
        return result[1]
    # ('error', ('already_started', Pid)): a supervisor restart won a race with us.
    pid = erlang.whereis(pg2.SERVER)
    assert isinstance(pid, Pid), f"pg2 did not start: {result!r}"
    return pid


def crash_pg2() -> Pid | str:
    """Kill this node's pg2 server (``exit(Pid, kill)``); return the pid it had, or 'undefined'.

    ``kernel_safe_sup`` restarts it with an empty table that the exchange
    refills; after its fourth restart in an hour the supervisor gives up, so
    callers follow with :func:`start_pg2`, which boots a new one.
    """
    pid = erlang.whereis(pg2.SERVER)
    if isinstance(pid, Pid):
        ref = erlang.monitor("process", pid)
        erlang.exit(pid, "kill")
        erlang.receive(lambda m: isinstance(m, tuple) and len(m) == 5 and m[:2] == ("DOWN", ref))
    return pid


def restart_pg2_server(old: Pid | str) -> Pid:
    """Wait until pg2 runs again under a pid other than ``old`` (starting it if need be); return it."""
    while True:
        pid = erlang.whereis(pg2.SERVER)
        if isinstance(pid, Pid) and pid != old:
            gen_server.get_state(pid)  # init has run: the table exists and the exchange is asked for
            return pid
        # While kernel_safe_sup lives it restarts pg2 itself, or is giving up (and then
        # refuses start_child with 'shutdown'); only once it is gone do we boot a new one.
        if erlang.whereis(kernel.SAFE_SUP) == "undefined":
            start_pg2()
        erlang.sleep(0.005)


def kill(pid: Pid) -> bool:
    """Send ``pid`` the untrappable exit signal ``kill``."""
    return erlang.exit(pid, "kill")


# == Imports on a node ========================================================


def prepend_path(folder: str) -> None:
    """Put ``folder`` first on this node's ``sys.path`` (once), so its modules can be imported here."""
    if folder not in sys.path:
        sys.path.insert(0, folder)
        importlib.invalidate_caches()


def imported(module: str) -> bool:
    """Say whether ``module`` has been imported on this node."""
    return module in sys.modules


def call_export(module: str, function: str) -> Any:
    """Call ``fun module:function/0`` here, as a fun that arrived in a message is called: importing on first use."""
    return external.ExportFun(module, function, 0)()


def hold_lock(report_to: Pid, name: Any) -> None:
    """Take pg2's lock on group ``name`` as pg2:join/2 would, report ``('locked', self())``, then hang.

    The lock is taken on every connected node, with pg2's own lock id. The
    process never releases it: only its death (or its node's) can.
    """
    me = erlang.self()
    assert global_.set_lock((("pg2", name), me)) is True
    erlang.send(report_to, ("locked", me))
    erlang.receive(lambda m: False)


def hold_in_trans(report_to: Pid, name: Any) -> None:
    """Enter pg2's ``global:trans`` on group ``name``, report ``('in_trans', self())``, then hang.

    This is a pg2 write stopped between taking the lock and the
    ``multi_call`` that would apply it: a node killed now has changed nothing
    but holds the lock everywhere.
    """
    me = erlang.self()

    def stuck() -> None:
        """Tell the test we are inside the transaction, then wait forever."""
        erlang.send(report_to, ("in_trans", me))
        erlang.receive(lambda m: False)

    global_.trans((("pg2", name), me), stuck)


def call_and_report(report_to: Pid, tag: Any, fun: Callable[..., Any], *args: Any) -> None:
    """Call ``fun(*args)`` (say ``pg2.join``) and send ``(tag, result)`` to ``report_to``."""
    erlang.send(report_to, (tag, fun(*args)))


def queued(name: str) -> list[Any]:
    """Return a copy of the mailbox of the process registered as ``name`` (empty if there is none)."""
    pid = erlang.whereis(name)
    proc = erlang._local(pid) if isinstance(pid, Pid) else None
    if proc is None:
        return []
    with proc.cond:
        return list(proc.mailbox)


def global_lock_rows() -> list[Any]:
    """Return this node's ``global_locks`` rows (empty when no lock server runs)."""
    if erlang.whereis(global_.SERVER) == "undefined":
        return []
    return global_.get_locks()


def stats() -> dict[str, int]:
    """Return this node's resource counts: threads, RSS, processes, monitors, pg2 and lock rows.

    ``monitors`` counts the monitors every local process holds (pg2's on its
    members among them); ``rss_kib`` is the resident set of this OS process
    from ``/proc`` (0 where there is none).
    """
    with erlang._lock:
        procs = [p for p in erlang._processes.values() if not p.dead]
        monitors = sum(len(p.monitors) for p in procs)
        watchers = sum(len(p.watchers) for p in procs)
    rss = 0
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    pg2_rows = ets.info(pg2.TABLE, "size") if erlang.whereis(pg2.SERVER) != "undefined" else 0
    return {
        "threads": threading.active_count(),
        "rss_kib": rss,
        "processes": len(procs),
        "monitors": monitors,
        "watchers": watchers,
        "pg2_rows": pg2_rows if isinstance(pg2_rows, int) else 0,
        "lock_rows": len(global_lock_rows()),
    }


def churn(report_to: Pid, seed: int, groups: list[Any], pause: float, population: int = 40) -> None:
    """Change pg2 at random until told ``'stop'``; then end every member made and report.

    Each turn (``pause`` seconds apart) is one of: start a member on this
    node and join it, join a member again, leave once, kill a member,
    create a group, and rarely delete one. At most ``population`` members
    live at once (a start beyond it kills one instead), so that a steady
    state exists in which any growth is a leak. Writes go through the public API
    from this node, so they contend for the groups' locks with the churn on
    the other nodes. The report is ``('churned', node, counts, slowest)``
    where ``slowest`` is the longest single write in seconds.
    """
    rng = random.Random(seed)
    mine: list[Pid] = []
    counts: Counter[str] = Counter()
    slowest = 0.0
    ops = ["spawn_join", "join", "leave", "kill", "create", "delete"]
    while erlang.receive(lambda m: m == "stop", timeout=pause) is erlang.TIMEOUT:
        op = rng.choices(ops, weights=[4, 3, 4, 2, 1, 0.1])[0]
        group = rng.choice(groups)
        started = time.monotonic()
        if op == "spawn_join" and len(mine) >= population:
            op = "kill"
        if op == "spawn_join" or (not mine and op in ("join", "leave", "kill")):
            op = "spawn_join"
            mine.append(erlang.spawn(member_loop))
            if pg2.join(group, mine[-1]) != "ok":
                pg2.create(group)
                pg2.join(group, mine[-1])
        elif op == "join":
            pg2.join(group, rng.choice(mine))
        elif op == "leave":
            pg2.leave(group, rng.choice(mine))
        elif op == "kill":
            erlang.exit(mine.pop(rng.randrange(len(mine))), "kill")
        elif op == "create":
            pg2.create(group)
        else:
            pg2.delete(group)
        slowest = max(slowest, time.monotonic() - started)
        counts[op] += 1
    for pid in mine:
        erlang.exit(pid, "kill")
    erlang.send(report_to, ("churned", erlang.node(), dict(counts), slowest))
