"""pg2's performance characteristics: local reads, globally locked writes, heals.

A thin wrapper over ``python -m repg2 bench`` (the code is in ``repg2.tools.bench``),
kept so that every ``benchmarks/bench_*.py`` script still runs. Three of its
sections:

1. ``get_members`` of a 10-member group while ``pg2_table`` holds 1k, 10k
   and 100k other rows. A read is one ordered_set range scan, so the time
   should stay flat (target: 100k at most 1.5x of 1k).
2. ``join`` + ``leave`` latency from node a on clusters of 1, 2, 3 and 5
   nodes. Each write takes the group's lock on every node and calls every
   node's pg2 server, so it grows with the cluster.
3. Time from reconnecting a 3-node partition until every node lists every
   membership made on one side during it, for 100 and 1,000 memberships:
   one exchange each way.

Figures are medians with min-max over repeated runs (and p99 for latencies).
Nothing here asserts a time: these are figures to read, not tests.

Run from the repository root::

    python benchmarks/bench_pg2.py            # the full sizes
    python benchmarks/bench_pg2.py --quick    # fewer sizes and repetitions
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repg2.tools import bench  # noqa: E402 - after the path set-up above


def main(argv: list[str] | None = None) -> int:
    """Run the reads, writes and heal sections of the bench and print their table."""
    args = list(sys.argv[1:] if argv is None else argv)
    return bench.main([*args, "--only", "reads,writes,heal"])


if __name__ == "__main__":
    sys.exit(main())
