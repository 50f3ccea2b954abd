"""The test harness: real nodes as OS processes, and the helpers tests run on them.

OTP tests distributed code with ``peer`` (formerly ``slave``) nodes and
suites of small helper funs; this package is RePy2's counterpart, used by
the test suite, the notebooks, the benchmarks and the demo:

- :class:`Cluster` (``repg2.testing.cluster``): this process becomes node
  ``a`` and further nodes start as child OS processes on 127.0.0.1, with a
  control channel of their own that survives partitions, kills and restarts;
- :func:`sane` and :func:`wsane` (``repg2.testing.checks``): pg2_SUITE's two
  invariant checks, on one node's table and across nodes' views;
- ``repg2.testing.nodefuns``: the functions tests run on nodes (members,
  echo servers, pg2 control, lock holders stopped half-way, load);
- ``repg2.testing.locks``: lock holders and a shared counter for ``global``'s tests.

Nothing here is part of the translation, and the translation never imports it.
"""

from repg2.testing.checks import sane, views, wsane
from repg2.testing.cluster import Cluster, ClusterError
from repg2.testing.nodefuns import member_loop, restart_pg2, stop_pg2

__all__ = ["Cluster", "ClusterError", "member_loop", "restart_pg2", "sane", "stop_pg2", "views", "wsane"]
