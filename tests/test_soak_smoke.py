"""A short soak on one node: random churn through the public API leaves a sane table and no leak behind.

The full soak (benchmarks/soak.py, REPG2_SOAK=1) runs the same churn worker
for minutes on three nodes with kills and crashes; this is its one-second
version, so the worker and the resource counters are checked on every run.
"""

from __future__ import annotations

import pytest
from support import barrier, recv, tagged, wait_until

from repg2 import erlang, pg2
from repg2.testing import sane
from repg2.testing.nodefuns import churn, stats

pytestmark = pytest.mark.timeout(60)


def test_churn_leaves_a_sane_table_and_no_leak(fresh_pg2: list[erlang.Pid]) -> None:
    """After churn and the death of every member it made, only group rows remain, with no monitor or lock."""
    groups = ["g1", "g2", "g3"]
    pg2.start()
    before = stats()
    me = erlang.self()
    worker = erlang.spawn(churn, me, 12345, groups, 0.001, 10)
    for _ in range(3):
        barrier(pg2.SERVER)  # let it churn a little, then check in between
        sane()
    erlang.sleep(0.5)  # how long the soak lasts, not a synchronisation
    erlang.send(worker, "stop")
    _tag, node, counts, slowest = recv(tagged("churned"), "the churn worker's report")
    assert node == erlang.node() and sum(counts.values()) > 0 and slowest >= 0
    # The members were killed: wait until pg2 has seen every 'DOWN'.
    wait_until(
        lambda: all(pg2.get_members(g) in ([], ("error", ("no_such_group", g))) for g in groups),
        "pg2 to drop the killed members",
    )
    barrier(pg2.SERVER)
    sane()
    after = stats()
    assert after["pg2_rows"] == len(pg2.which_groups())  # group rows only
    assert after["lock_rows"] == 0
    assert after["monitors"] <= before["monitors"]
