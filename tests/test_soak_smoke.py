"""A short soak on one node: random churn through the public API leaves a sane table and no leak behind.

The full soak (benchmarks/soak.py, REPG2_SOAK=1) runs the same churn worker
for minutes on three nodes with kills and crashes; this is its one-second
version, so the worker and the resource counters are checked on every run.
"""

from __future__ import annotations

import pytest

from repg2 import erlang, gen_server, pg2
from repg2.testing import sane, stop_pg2
from repg2.testing.nodefuns import churn, stats

pytestmark = pytest.mark.timeout(60)


def test_churn_leaves_a_sane_table_and_no_leak() -> None:
    """After churn and the death of every member it made, only group rows remain, with no monitor or lock."""
    stop_pg2()
    try:
        pg2.start()
        before = stats()
        me = erlang.self()
        worker = erlang.spawn(churn, me, 12345, ["g1", "g2", "g3"], 0.001, 10)
        for _ in range(3):
            gen_server.get_state(pg2.SERVER)  # let it churn a little, then check in between
            sane()
        erlang.sleep(0.5)
        erlang.send(worker, "stop")
        done = erlang.receive(lambda m: isinstance(m, tuple) and m[0] == "churned", timeout=30)
        assert done is not erlang.TIMEOUT
        _tag, node, counts, slowest = done
        assert node == erlang.node() and sum(counts.values()) > 0 and slowest >= 0
        # The members were killed: wait until pg2 has seen every 'DOWN'.
        deadline = erlang._now() + 20
        while any(pg2.get_members(g) not in ([], ("error", ("no_such_group", g))) for g in ["g1", "g2", "g3"]):
            assert erlang._now() < deadline, "members still listed after they were killed"
            erlang.sleep(0.01)
        gen_server.get_state(pg2.SERVER)
        sane()
        after = stats()
        assert after["pg2_rows"] == len(pg2.which_groups())  # group rows only
        assert after["lock_rows"] == 0
        assert after["monitors"] <= before["monitors"]
    finally:
        stop_pg2()
