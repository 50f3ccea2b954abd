"""Benchmark: ETS ordered_set prefix matching stays flat as the table grows.

pg2 reads a group's members with ``ets:match(pg2_table, {{member, Name,
'$1'}, '$2'})`` and counts on the ordered_set to answer that by a range scan
over the group's own keys ("fast matching of partially instantiated keys",
pg2.erl). This script measures that match for a 10-member group in tables of
1k, 10k and 100k other rows, next to a full-scan match (an unbound key) of the
same tables. The prefix column should be flat (ratio largest/smallest near 1);
the full-scan column grows with the table.

The measuring code lives in ``repg2.tools.bench.reads`` (``ets_prefix_scan``); ``python
-m repg2 bench`` runs the pg2-level version of this measurement with the others.

Run from the repository root::

    python benchmarks/bench_ets.py            # 1k, 10k, 100k rows
    python benchmarks/bench_ets.py --quick    # fewer repetitions, 1k and 10k
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repg2.tools.bench import GROUP_SIZE, ets_prefix_scan  # noqa: E402 - after the path set-up above


def main(argv: list[str] | None = None) -> int:
    """Measure prefix and full-scan matches per table size and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 1k and 10k rows only")
    args = parser.parse_args(argv)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    rows = ets_prefix_scan(sizes, 50 if args.quick else 300, 5 if args.quick else 20)

    print(f"ETS ordered_set match, a {GROUP_SIZE}-row group among N other rows (microseconds)")
    print(f"{'N other rows':>12} | {'prefix median':>13} {'min':>8} {'max':>8} | {'full scan median':>16} {'min':>10}")
    print("-" * 78)
    for size, prefix, full in rows:
        print(
            f"{size:>12,} | {statistics.median(prefix):>13.1f} {min(prefix):>8.1f} {max(prefix):>8.1f}"
            f" | {statistics.median(full):>16.1f} {min(full):>10.1f}"
        )
    prefix_medians = [statistics.median(p) for _, p, _ in rows]
    full_medians = [statistics.median(f) for _, _, f in rows]
    print("-" * 78)
    print(f"prefix ratio largest/smallest table (medians): {prefix_medians[-1] / prefix_medians[0]:.2f}  (flat is ~1)")
    print(f"full-scan ratio largest/smallest table (medians): {full_medians[-1] / full_medians[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
