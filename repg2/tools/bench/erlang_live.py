"""Real Erlang, measured in the same run: OTP 25 nodes timed by their own clocks, beside RePy2's figures.

A ratio to Erlang is honest only when both sides run on the same machine at
the same time: absolute figures on a shared 2-core VM move by 2x to 4x from
one run to the next. So when ``erl`` is installed, the bench starts real
OTP nodes (``repg2.testing.otp.ErlangNode``, on the run's port mapper),
compiles ``erlang/bench_probe.erl`` into a temporary directory, and asks the
first node, through ``rpc``, to time inside Erlang (``erlang:monotonic_time``):

- a message round trip to a process on another node, and to one on the same node;
- ``global:trans(Id, fun() -> ok end, Nodes)`` on 1, 2, 3 and 5 nodes;
- ``pg:join/2`` and ``pg:leave/2`` in the default scope, on 1, 3 and 5 nodes
  (a node's scope reaches every node it is connected to, so the first node
  drops its connections to shrink the scope).

pg2 cannot run on OTP 25 (it was removed in OTP 24): its reference figures
stay the stored ones of ``repg2/tools/data/erlang_pg2_reference.json``, and
the report marks every Erlang value as ``same_run`` or ``stored``. Without
``erl`` the bench says so and falls back to the stored figures for the
round trips and ``trans`` too.

This process is not a member of the Python cluster while it measures: the
Erlang nodes run after the cluster has stopped, so no pg scope or pg2
server of the bench's cluster can become a peer of theirs.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from repg2 import erlang, gen_server, net_kernel, rpc
from repg2.testing import otp
from repg2.tools.bench.config import PREFIX, Config
from repg2.tools.bench.measure import Figure, Progress

__all__ = ["ERLANG_NODES", "PROBE", "erlang_missing_reason", "measure_erlang", "steps"]

PROBE = Path(__file__).resolve().parent / "erlang" / "bench_probe.erl"
ERLANG_NODES = 5  # the most any figure needs (trans and pg on 5 nodes)
TRANS_COUNTS = (1, 2, 3, 5)
PG_COUNTS = (5, 3, 1)  # largest first: the first node's scope shrinks by disconnecting
TICKTIME = 60  # seconds, OTP's default: the measurement must never see a tick timeout
RPC_TIMEOUT = 300.0  # seconds for one timing call (a few thousand operations)


def erlang_missing_reason() -> str | None:
    """Return why real Erlang cannot be measured here (no ``erl``), or None."""
    return otp.erl_missing_reason()


def steps(cfg: Config) -> int:
    """Count the progress steps :func:`measure_erlang` announces."""
    return 1 + 2 + len(_counts(TRANS_COUNTS, cfg)) + len(_counts(PG_COUNTS, cfg))


def _counts(counts: Iterable[int], cfg: Config) -> list[int]:
    """Keep the node counts this configuration measures (the Python side's, so each figure has a twin)."""
    return [n for n in counts if n in cfg.node_counts or n == 1]


def measure_erlang(cfg: Config, progress: Progress) -> tuple[list[Figure], dict[str, Any]]:
    """Start real OTP nodes, time them from inside, stop them; return their figures (section ``erlang``).

    Returns:
        The figures, and what the report's ``meta.erlang`` says of the nodes
        (OTP release, ERTS version, how many nodes).

    Must run in a process that is not a distributed node: it becomes one
    (``bench_a@127.0.0.1``, with a fresh cookie) for the length of the
    measurement and stops being one after.

    Raises:
        RuntimeError: an Erlang node did not start, or a timing call failed.
    """
    progress.step(f"Erlang: starting {max(cfg.node_counts)} OTP nodes")
    cookie = secrets.token_hex(16)
    _stop_own_pg_scope()
    started = net_kernel.start(f"{PREFIX}a@127.0.0.1", cookie=cookie, ticktime=TICKTIME)
    if started[0] != "ok":
        raise RuntimeError(f"cannot make this process a node for the Erlang figures: {started!r}")
    nodes: list[otp.ErlangNode] = []
    try:
        with tempfile.TemporaryDirectory(prefix="repg2-bench-erl-") as tmp:
            code = otp.compile_erlang(str(PROBE), tmp)
            for i in range(1, max(cfg.node_counts) + 1):
                node = otp.ErlangNode(
                    f"{PREFIX}e{i}@127.0.0.1",
                    cookie,
                    code_paths=[code],
                    ticktime=TICKTIME,
                    # pg's default scope runs, as on a node whose kernel starts it; global does not
                    # mesh the nodes by itself, so the first node's connections decide pg's scope.
                    args=["-kernel", "start_pg", "true", "-connect_all", "false"],
                    log=str(Path(tmp) / f"e{i}.log"),
                )
                nodes.append(node)
                node.start()
            names = [n.name for n in nodes]
            info = {
                "live": True,
                "otp_release": _text(rpc.call(names[0], "erlang", "system_info", ["otp_release"])),
                "erts": _text(rpc.call(names[0], "erlang", "system_info", ["version"])),
                "nodes": len(names),
            }
            return _measure(names, cfg, progress), info
    finally:
        for node in nodes:
            node.stop()
        for node in nodes:
            node.kill()
        net_kernel.stop()


def _stop_own_pg_scope() -> None:
    """Stop this process's pg scope, if the cluster sections left one: it must not join Erlang's."""
    pid = erlang.whereis("pg")
    if isinstance(pid, erlang.Pid):
        gen_server.stop(pid)


def _call(node: str, function: str, *args: Any) -> Any:
    """Call ``bench_probe:function(args...)`` on ``node``; raise if rpc reports a failure."""
    result = rpc.call(node, "bench_probe", function, list(args), RPC_TIMEOUT)
    if isinstance(result, tuple) and result[:1] == ("badrpc",):
        raise RuntimeError(f"bench_probe:{function} on {node} failed: {result!r:.500}")
    return result


def _measure(names: list[str], cfg: Config, progress: Progress) -> list[Figure]:
    """Run every timing on the first node; shape the answers as figures."""
    first = names[0]
    figures: list[Figure] = []
    progress.step("Erlang: round trip between two nodes")
    runs, p99 = _call(first, "rtt_remote", names[1], cfg.remote_round_trips, cfg.remote_runs)
    figures.append(_figure("erlang.rt.remote", "erlang", "Erlang: send + receive", "2 nodes", runs, p99))
    progress.step("Erlang: round trip inside one node")
    runs = _call(first, "rtt_local", cfg.local_round_trips * 10, cfg.local_runs)
    figures.append(_figure("erlang.rt.local", "erlang", "Erlang: send + receive", "local", runs, None))
    ops, n_runs = cfg.write_ops, cfg.write_runs
    per_run = max(1, ops // n_runs)
    for n in _counts(TRANS_COUNTS, cfg):
        progress.step(f"Erlang: global:trans on {n} node{'s' if n > 1 else ''}")
        runs, p99 = _call(first, "trans", names[:n], per_run, n_runs)
        figures.append(_figure(f"erlang.trans.{n}", "erlang", "Erlang: global:trans (empty fun)", _where(n), runs, p99))
    _call(first, "connect", names)
    for n in _counts(PG_COUNTS, cfg):
        progress.step(f"Erlang: pg:join and pg:leave on {n} node{'s' if n > 1 else ''}")
        _call(first, "disconnect", names[n:])
        (jruns, jp99), (lruns, lp99) = _call(first, "pg_join_leave", "bench_pg", per_run, n_runs)
        figures.append(_figure(f"erlang.pg_join.{n}", "erlang", "Erlang: pg:join", _where(n), jruns, jp99))
        figures.append(_figure(f"erlang.pg_leave.{n}", "erlang", "Erlang: pg:leave", _where(n), lruns, lp99))
    return figures


def _text(value: Any) -> str:
    """Turn an Erlang string (a list of character codes) into text."""
    return "".join(map(chr, value)) if isinstance(value, list) else str(value)


def _where(n: int) -> str:
    """Say ``1 node`` or ``n nodes``."""
    return f"{n} node{'s' if n > 1 else ''}"


def _figure(fid: str, section: str, name: str, where: str, runs: Any, p99: Any) -> Figure:
    """Make a figure of real Erlang, in microseconds, measured in this run."""
    nodes = int(where.split()[0]) if where[0].isdigit() else 1
    return Figure(
        fid,
        section,
        name,
        where,
        "us",
        [float(r) for r in runs],
        p99=None if p99 is None else float(p99),
        note="real Erlang/OTP, measured in this run",
        extra={"nodes": nodes, "otp": True},
    )
