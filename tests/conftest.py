"""Shared fixtures: real nodes for the distributed tests, and a check that none outlives the run.

The repository root and this folder go on ``sys.path`` first: the package is
importable without installing it, and child nodes (which inherit
``sys.path``) can import the ``nodefuns_*`` modules whose functions tests
send them.

Unless ``REPG2_EPMD_PORT`` is set, the run gets a port mapper of its own on
a free port below the ephemeral range (child nodes inherit the variable):
two test runs on one machine, or a developer's own nodes, never see each
other's node names, and the run can check that its port mapper exits after
the last node.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

for _path in (Path(__file__).resolve().parent.parent, Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def _free_port_below_ephemeral() -> int:
    """Return a TCP port on 127.0.0.1 that is free now and never handed out as an ephemeral port."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for the test run's port mapper")


os.environ.setdefault("REPG2_EPMD_PORT", str(_free_port_below_ephemeral()))

from repg2 import net_kernel  # noqa: E402 - needs the sys.path set up above
from repg2.testing import Cluster  # noqa: E402


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


def live_children() -> list[tuple[int, str]]:
    """Return ``(pid, command line)`` of this process's live child processes (Linux /proc).

    multiprocessing's resource tracker is left out: it is started by the
    spawn start method, lives exactly as long as this process, and is no
    node.
    """
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, ...
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == me and state != "Z" and "resource_tracker" not in cmdline:
            found.append((int(entry.name), cmdline.strip()))
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Report (and fail the run for) any child process still alive at the end of the run."""
    if not Path("/proc").is_dir():
        return
    left = live_children()
    if left:
        sys.stderr.write(f"\nrepg2: child processes outlived the test run: {left}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# == Real Erlang/OTP, as the oracle =========================================


def need_erl() -> str:
    """Return the path of ``erl``; skip the test without it, or fail it when ``CI=true`` (CI installs Erlang)."""
    path = shutil.which("erl")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("erl is not installed, and CI must run the comparisons with real Erlang/OTP")
        pytest.skip("needs Erlang/OTP (erl) to compare with")
    return path


def run_erl(script: str, *, timeout: float = 60) -> str:
    """Run Erlang expressions on a fresh distributed ``erl`` node and return what they print.

    ``script`` is a comma-separated sequence of Erlang expressions; the node
    halts after it, and an exception in it fails the calling test with the
    Erlang error. The node is named (so its pids and refs carry a real node
    name and a 32-bit creation) but starts no epmd and registers with none:
    ``-erl_epmd_port`` lets it run without one, and ``ERL_EPMD_PORT`` points
    at a free port, so nothing is left behind and no other run is disturbed.
    """
    erl = need_erl()
    name = f"repg2_oracle_{os.getpid()}_{random.randrange(1 << 30)}@127.0.0.1"
    wrapped = (
        f"try {script} of _ -> halt(0) catch Class:Reason:Stack -> "
        'io:format(standard_error, "~p:~p~n~p~n", [Class, Reason, Stack]), halt(1) end.'
    )
    env = {**os.environ, "ERL_EPMD_PORT": str(_free_port_below_ephemeral())}
    argv = [erl, "-noshell", "-name", name, "-setcookie", "repg2_oracle", "-start_epmd", "false"]
    argv += ["-erl_epmd_port", "0", "-eval", wrapped]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    assert done.returncode == 0, f"erl failed ({done.returncode}):\n{done.stderr}\n{done.stdout}"
    return done.stdout
