"""Runs last (file order): no node process outlives the tests, and the port mapper goes away by itself.

Every ``Cluster`` closed so far must have reaped its children, and with no
node registered any more the run's port mapper must exit after its linger
time (``repg2.dist.EPMD_LINGER``), unlike epmd, which stays forever.
"""

from __future__ import annotations

import time

import pytest
from conftest import live_children

from repg2 import dist, erlang

pytestmark = pytest.mark.timeout(60)


def test_no_child_process_outlives_the_clusters() -> None:
    """No child OS process of this test run is alive (multiprocessing's resource tracker aside)."""
    deadline = time.monotonic() + 10
    while live_children() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling with a deadline: a child may be finishing its exit
    assert live_children() == []


def test_port_mapper_exits_after_the_last_node() -> None:
    """With no node left, the port mapper this run used stops answering within its linger time."""
    if erlang.node() != "nonode@nohost":
        pytest.skip("this process is still a node, so the port mapper must stay")
    deadline = time.monotonic() + dist.EPMD_LINGER + 15
    while True:
        try:
            names = dist.epmd_names(timeout=1)
        except OSError:
            return  # refused: it has exited
        if time.monotonic() > deadline:
            pytest.fail(f"port mapper on port {dist.epmd_port()} still answers, with {names}")
        time.sleep(0.1)  # polling with a deadline
