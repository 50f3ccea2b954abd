"""Section 1: reads are local and flat.

``get_members`` and ``get_local_members`` of a 10-member group while
``pg2_table`` grows to 1k, 10k and 100k other rows: one ordered_set range
scan each, so the time should not grow with the table. Beside them, an
``ets.match`` whose key is unbound: the full scan a read would be without
the range scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from repg2 import erlang, ets, gen_server, pg2
from repg2.erlang import Pid
from repg2.testing import member_loop, stop_pg2
from repg2.tools.bench.config import GROUP_SIZE, Config
from repg2.tools.bench.measure import Figure, Progress, per_call, timed

__all__ = ["bench_reads", "ets_prefix_scan", "ets_table", "fill_table"]


def ets_table(other_rows: int) -> Any:
    """Make a pg2-shaped ordered_set: ``other_rows`` rows of other groups plus one 10-member group."""
    tab = ets.new("bench", ["ordered_set", "protected"])
    groups = max(1, other_rows // 10)
    ets.insert(tab, [(("member", f"other{i % groups}", Pid("x@h", i, 1)), 1) for i in range(other_rows)])
    ets.insert(tab, [(("member", "g", Pid("a@h", i, 1)), 1) for i in range(GROUP_SIZE)])
    return tab


def ets_prefix_scan(sizes: Iterable[int], reps: int, full_reps: int) -> list[tuple[int, list[float], list[float]]]:
    """Time pg2's member match (a prefix range scan) and a full-scan match per table size.

    Returns:
        ``(size, prefix samples, full-scan samples)`` per size, microseconds.
    """
    prefix_pattern = (("member", "g", "$1"), "$2")  # pg2:group_members/1
    full_pattern = ("_", "$1")  # an unbound key: every row is examined
    rows = []
    for size in sizes:
        tab = ets_table(size)
        assert len(ets.match(tab, prefix_pattern)) == GROUP_SIZE
        prefix = timed(lambda: ets.match(tab, prefix_pattern), reps)
        full = timed(lambda: ets.match(tab, full_pattern), full_reps)
        rows.append((size, prefix, full))
        ets.delete(tab)
    return rows


def fill_table(groups: range, owner: Pid) -> None:
    """Add one-member groups ``('other', i)`` to pg2_table through one exchange, and wait for it.

    Each group adds four rows (group, member, local_member, pid); the member
    is one live process, so its ref rows are shared. The exchange is how
    another node's groups arrive, so the rows are exactly pg2's.
    """
    gen_server.cast(pg2.SERVER, ("exchange", erlang.node(), [[("other", i), [owner]] for i in groups]))
    gen_server.get_state(pg2.SERVER, "infinity")  # a call: the cast before it has been handled


def bench_reads(cfg: Config, reference: dict[str, Any], progress: Progress) -> list[Figure]:
    """Time get_members and get_local_members of a 10-member group as the table grows.

    The table grows in place (1k, then 10k, then 100k other rows) through
    exchanges. Beside each size, ``ets.match`` with an unbound key: the full
    scan a read would be without the ordered_set.
    """
    stop_pg2()
    pg2.start()
    pg2.create("g")
    members = [erlang.spawn(member_loop) for _ in range(GROUP_SIZE)]
    for pid in members:
        pg2.join("g", pid)
    owner = erlang.spawn(member_loop)
    figures = []
    have = 0
    try:
        for size in cfg.read_sizes:
            progress.step(f"reads: get_members with {size:,} other rows")
            fill_table(range(have // 4, size // 4), owner)
            have = size
            rows = ets.info(pg2.TABLE, "size")
            assert len(pg2.get_members("g")) == GROUP_SIZE and len(pg2.get_local_members("g")) == GROUP_SIZE
            calls = cfg.read_calls
            gm = [per_call(lambda: pg2.get_members("g"), calls) for _ in range(cfg.read_runs)]
            glm = [per_call(lambda: pg2.get_local_members("g"), calls) for _ in range(cfg.read_runs)]
            scan = [per_call(lambda: ets.match(pg2.TABLE, ("_", "$1")), 1) for _ in range(3)]
            where = f"{size // 1000}k rows"
            extra = {"other_rows": size, "table_rows": rows}
            ref = reference["get_members_us"].get(str(size))
            figures += [
                Figure(
                    f"reads.get_members.{size}",
                    "reads",
                    "get_members (10 members)",
                    where,
                    "us",
                    gm,
                    erlang=ref,
                    extra=extra,
                ),
                Figure(
                    f"reads.get_local_members.{size}",
                    "reads",
                    "get_local_members (10 members)",
                    where,
                    "us",
                    glm,
                    extra=extra,
                ),
                Figure(
                    f"reads.full_scan.{size}",
                    "reads",
                    "ets.match, unbound key (full scan)",
                    where,
                    "us",
                    scan,
                    extra=extra,
                    note="what a read would cost without the range scan",
                ),
            ]
    finally:
        for pid in [*members, owner]:
            erlang.exit(pid, "kill")
        stop_pg2()
    return figures
