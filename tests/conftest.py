"""Shared fixtures (real nodes, a fresh pg2, an isolated runtime), and the check that nothing outlives the run.

The repository root and this folder go on ``sys.path`` first: the package is
importable without installing it, and child nodes (which inherit
``sys.path``) can import the modules whose functions tests send them.

Unless ``ERL_EPMD_PORT`` is set, the run gets a port mapper of its own on
a free port below the ephemeral range (child nodes and the real ``erl``
nodes of the comparison tests inherit the variable): two test runs on one
machine, or a developer's own nodes, never see each other's node names. The
run's port mapper is RePy2's own (``REPG2_PORT_MAPPER=repg2``), which exits
a few seconds after its last node, so the run can check that it is gone.

Each fixture name means one thing across the suite:

- ``cluster``: a factory ``cluster(n=3, **kwargs)`` of started clusters;
- ``cluster3``: three connected nodes, this process (a) and two children (b, c);
- ``node``: this process as a distributed node, with no other node;
- ``fresh_pg2``: no pg2 on this node before and after the test, and a list
  for the local processes the test starts, killed afterwards;
- ``pg2_cluster2``: ``fresh_pg2``, and nodes a and b with pg2 running on both;
- ``pg2_cluster3``: ``fresh_pg2``, and nodes a, b and c with pg2 running on all;
- ``isolated_runtime``: an empty mailbox; afterwards the test's processes
  killed and its registered names freed;
- ``trap_exits``: ``isolated_runtime``, with the test process trapping exits.

A file's own fixtures have names of their own (``global_cluster3``,
``attacked``, ``shared_cluster``...). The helpers are in ``support.py``.

After the last test, :func:`pytest_sessionfinish` checks that no child
process of the run is alive and that the run's port mapper has exited; what
it finds is reported as an error of the run, naming the processes. It runs
whatever was selected (``-k``, one file), and after everything else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

for _path in (Path(__file__).resolve().parent.parent, Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


from support import (  # noqa: E402 - needs the sys.path set up above
    down_reason,
    free_port,
    live_children,
    processes_with_args,
    recover_test_process,
    start_pg2_everywhere,
    wait_until,
)

from repg2 import epmd, erlang, gen_server, kernel, net_kernel  # noqa: E402
from repg2.erlang import ErlangError, Pid  # noqa: E402
from repg2.testing import Cluster, stop_pg2  # noqa: E402

# The run's own port mapper: set before any node starts (repg2 reads the variable when a node starts).
_OWN_PORT_MAPPER = "ERL_EPMD_PORT" not in os.environ  # only a port mapper of the run's own must exit
os.environ.setdefault("ERL_EPMD_PORT", str(free_port()))
if _OWN_PORT_MAPPER:
    # One that lingers out (a real epmd stays for ever); an erl node started by a test
    # registers with it too (erl's own `epmd -daemon` finds the port taken and exits).
    os.environ.setdefault("REPG2_PORT_MAPPER", "repg2")

# == Nodes ==========================================================================


@pytest.fixture
def cluster() -> Iterator[Callable[..., Cluster]]:
    """Return a factory ``cluster(n=3, **kwargs)`` of started clusters, all stopped after the test."""
    made: list[Cluster] = []

    def make(n: int = 3, **kwargs: Any) -> Cluster:
        """Start a Cluster(n, **kwargs) that the fixture closes."""
        c = Cluster(n, **kwargs)
        made.append(c)
        c.start()
        return c

    yield make
    for c in reversed(made):
        c.close()


@pytest.fixture
def cluster3() -> Iterator[Cluster]:
    """Three connected nodes: this process (a) and two children (b, c)."""
    with Cluster(3) as c:
        yield c


@pytest.fixture
def node() -> Iterator[str]:
    """Make this process a distributed node (no other nodes) for the test; yield its name."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    name = f"{worker}_solo@127.0.0.1" if worker else "solo@127.0.0.1"
    result = net_kernel.start(name, cookie="repg2-test-cookie")
    assert result[0] == "ok", result
    try:
        yield name
    finally:
        net_kernel.stop()


# == pg2 ============================================================================


@pytest.fixture
def fresh_kernel() -> Iterator[None]:
    """Run the test on a freshly booted kernel_safe_sup, and leave a fresh one after it.

    kernel_safe_sup gives up after four restarts in an hour, as OTP's does: a
    test that crashes pg2 (or rex, or global) spends that budget, and the
    next test that relies on a restart would find none left.
    """
    _reboot_kernel()
    yield
    _reboot_kernel()


def _reboot_kernel() -> None:
    """Stop kernel_safe_sup (and its children) and boot a new one."""
    sup = erlang.whereis(kernel.SAFE_SUP)
    if isinstance(sup, Pid):
        gen_server.stop(sup, "shutdown")
    kernel.boot()


@pytest.fixture
def fresh_pg2() -> Iterator[list[Pid]]:
    """Stop this node's pg2 before and after the test; yield a list for the processes the test starts.

    The test appends the member processes it starts; afterwards the local
    ones are killed (a child node's die with their node).
    """
    stop_pg2()
    spawned: list[Pid] = []
    yield spawned
    for pid in spawned:
        if pid.is_local():
            erlang.exit(pid, "kill")
    stop_pg2()


def _pg2_cluster(n: int) -> Iterator[Cluster]:
    """Start ``n`` nodes (this one first) with pg2 running on all; yield them, then stop them."""
    with Cluster(n) as c:
        start_pg2_everywhere(c)
        yield c


@pytest.fixture
def pg2_cluster2(fresh_pg2: list[Pid]) -> Iterator[Cluster]:
    """Two nodes, this one (a) and b, with pg2 running on both."""
    yield from _pg2_cluster(2)


@pytest.fixture
def pg2_cluster3(fresh_pg2: list[Pid]) -> Iterator[Cluster]:
    """Three nodes, this one (a), b and c, with pg2 running on all."""
    yield from _pg2_cluster(3)


# == The runtime of this process ====================================================


def _was_spawned(pid: Pid) -> bool:
    """Say whether local process ``pid`` was spawned (not a plain thread that called ``erlang.self()``)."""
    # Pid.id is set in Pid.__init__ through object.__setattr__, which mypy cannot see.
    return bool(getattr(erlang._processes.get(pid.id), "spawned", False))  # type: ignore[attr-defined]


@pytest.fixture
def isolated_runtime() -> Iterator[None]:
    """Give the test an empty mailbox; afterwards kill the processes it spawned and free the names it registered.

    Only spawned processes are killed: a plain thread that became a process
    (by calling ``erlang.self()``) never ends by itself, so it cannot be
    waited for. The test process traps exits during the clean-up, so that
    killing a process linked to it does not kill it too.
    """
    recover_test_process()
    erlang.flush()
    before = set(erlang.processes())
    names = set(erlang.registered())
    yield
    me = recover_test_process()
    erlang.process_flag("trap_exit", True)
    spawned = [p for p in erlang.processes() if p not in before and p != me and _was_spawned(p)]
    refs = [erlang.monitor("process", p) for p in spawned]
    for pid in spawned:
        erlang.exit(pid, "kill")
    for ref in refs:
        down_reason(ref)
    for name in set(erlang.registered()) - names:
        try:
            erlang.unregister(name)
        except ErlangError:
            pass
    erlang.flush()
    erlang.process_flag("trap_exit", False)


@pytest.fixture
def trap_exits(isolated_runtime: None) -> None:
    """Like ``isolated_runtime``, and the test process traps exits for the whole test.

    A process linked to the test that dies (a supervisor giving up) then
    arrives as an ``'EXIT'`` message instead of killing the test.
    """
    erlang.process_flag("trap_exit", True)


# == Nothing outlives the run =======================================================


def _port_mapper_gone() -> bool:
    """Say whether the run's port mapper has stopped answering."""
    try:
        epmd.names("127.0.0.1", timeout=1)
    except OSError:  # refused: it has exited
        return True
    return False


def _leftovers() -> list[str]:
    """Return what outlived the run: child processes, and the run's port mapper past its linger time.

    A child may still be finishing its exit, and the port mapper exits
    ``repg2.epmd.EPMD_LINGER`` seconds after its last node (unlike epmd,
    which stays for ever), so both are awaited, with a deadline. While this
    process is still a node the port mapper must stay, and one the run did
    not start (``ERL_EPMD_PORT`` set outside) may serve other nodes: then
    it is not checked.
    """
    found = []
    try:
        wait_until(lambda: not live_children(), "the child processes to exit")
    except AssertionError:
        found.append(f"child processes outlived the test run: {live_children()}")
    if _OWN_PORT_MAPPER and erlang.node() == "nonode@nohost":
        port = epmd.epmd_port()
        try:
            wait_until(_port_mapper_gone, "the port mapper to exit", timeout=epmd.EPMD_LINGER + 15)
        except AssertionError:
            found.append(
                f"the port mapper on port {port} still answers after its linger time: "
                f"{processes_with_args(['epmd', '--port', str(port)])}"
            )
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run, as an error in its summary, if a child process or the run's port mapper outlived it."""
    if not Path("/proc").is_dir():
        return
    found = _leftovers()
    if not found:
        return
    report = pytest.TestReport(
        nodeid="tests/conftest.py::nothing_outlives_the_run",
        location=("tests/conftest.py", None, "nothing_outlives_the_run"),
        keywords={},
        outcome="failed",
        longrepr="\n".join(found),
        when="teardown",
    )
    session.config.hook.pytest_runtest_logreport(report=report)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
