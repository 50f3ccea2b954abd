"""Node identity and connections: start, stop, connect_node, monitor_nodes, ticks.

Translates the public part of ``lib/kernel/src/net_kernel.erl`` of
Erlang/OTP 18.3; the carrier under it (epmd, ``inet_tcp_dist``,
``dist_util``) is ``repg2.dist``.

Ported: ``start/1`` (as ``start(name, cookie=..., ticktime=...)``),
``stop/0``, ``connect_node/1``, ``disconnect/1``, ``monitor_nodes/1,2``
(``nodeup``/``nodedown`` messages), ``get_net_ticktime/0``, the ticker
process (``ticker/2``, registered here as ``net_kernel``), and
``erlang:get_cookie/0``.

Left out: hidden nodes and ``connect``/``hidden_connect_node``,
``allow/1``, ``set_net_ticktime/1,2`` and its transition period,
``monitor_nodes`` options other than ``[]`` (``nodedown_reason``,
``node_type``), ``longnames``/``shortnames`` (a name without ``@host`` gets
``@127.0.0.1``), ``net_kernel:verbose``, ``dist_auto_connect``.

How it works
------------
:func:`start` builds a :class:`repg2.dist.Distribution`, which listens,
registers with the port mapper (that gives the node its *creation*), renames
the node (``erlang._set_identity``) and plugs itself into the runtime
(``erlang._set_dist``). A ticker process registered as ``net_kernel`` calls
``Distribution.tick`` every ``ticktime / 4`` seconds, as OTP's ticker sends
``tick`` to net_kernel. :func:`start` also boots the node's kernel
(``repg2.kernel``: ``kernel_safe_sup`` with ``rex`` and ``global_name_server``).

``monitor_nodes`` subscriptions belong to the runtime, not to a
distribution: in OTP they are a process flag, so they survive a
``net_kernel:stop()`` and ``start()`` and end when the subscriber dies. On a
lost connection every monitor and link across it fires first (``'DOWN'``
with ``'noconnection'``), then subscribers get ``('nodedown', node)``; a new
connection is in ``erlang.nodes()`` before ``('nodeup', node)`` is sent,
and that comes before any message from the node.

Differences from OTP (see ``TRANSLATION_NOTES.md``): ``ticktime`` and
``setuptime`` are seconds and arguments of :func:`start` (OTP reads the
``net_ticktime`` and ``net_setuptime`` kernel parameters); the default cookie
comes from ``REPG2_COOKIE`` or ``~/.repg2.cookie`` (created with a random
cookie, as OTP creates ``~/.erlang.cookie``); ``start`` returns the pid of
the ticker process, as there is no net_kernel server process here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from repg2 import dist, epmd, erlang, kernel
from repg2.erlang import Pid

__all__ = [
    "connect_node",
    "disconnect",
    "get_cookie",
    "get_net_ticktime",
    "monitor_nodes",
    "start",
    "stop",
]

log = logging.getLogger("repg2.net_kernel")

# Serialises start and stop; _distribution and _ticker change only under it.
_kernel_lock = threading.Lock()
_distribution: dist.Distribution | None = None
_ticker: Pid | None = None

# monitor_nodes subscribers, one entry per subscription (a process may hold
# several, as in OTP). Guarded by _subscribers_lock.
_subscribers_lock = threading.Lock()
_subscribers: list[Pid] = []


def _ticktime_default() -> float:
    """Return the tick time from ``REPG2_NET_TICKTIME``, or OTP's 60 s.

    Erlang: none (OTP reads the kernel parameter net_ticktime)
    """
    return float(os.environ.get("REPG2_NET_TICKTIME", dist.DEFAULT_TICKTIME))


def _cookie_default() -> str:
    """Return ``REPG2_COOKIE``, or the cookie in ``~/.repg2.cookie`` (created if missing).

    Erlang: auth:init_cookie/0 (reads or creates ~/.erlang.cookie)
    """
    env = os.environ.get("REPG2_COOKIE")
    if env:
        return env
    path = Path.home() / ".repg2.cookie"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        cookie = secrets.token_hex(10).upper()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as file:
            file.write(cookie)
        return cookie


def start(
    name: str,
    cookie: str | bytes | None = None,
    ticktime: float | None = None,
    setuptime: float = dist.DEFAULT_SETUPTIME,
) -> tuple[str, Any]:
    """Make this OS process the distributed node ``name`` (``'a@127.0.0.1'``).

    Erlang: net_kernel:start/1
    Erlang: net_kernel:init/1

    The node listens on the address of the host in its name, on a free port
    that it registers with the port mapper of this host (starting the port
    mapper if none runs). ``ticktime`` (seconds, default
    ``REPG2_NET_TICKTIME`` or 60) is how long a silent connection lives;
    ``setuptime`` bounds each connection setup.

    Returns:
        ``('ok', pid)`` with the pid of the ticker process,
        ``('error', ('already_started', pid))`` if the node is already
        distributed, or ``('error', reason)`` if it could not start.
    """
    global _distribution, _ticker
    if "@" not in name:  # DIVERGENCE(D30): no -sname/-name: a bare name lives on 127.0.0.1
        name = f"{name}@127.0.0.1"
    # The node's system servers first (rex, global_name_server): a peer that
    # connects the moment we listen may call them at once.
    kernel.boot()
    with _kernel_lock:
        if _distribution is not None:
            return ("error", ("already_started", _ticker))
        try:
            distribution = dist.Distribution(
                name,
                _cookie_default() if cookie is None else cookie,
                ticktime=_ticktime_default() if ticktime is None else ticktime,
                setuptime=setuptime,
                on_nodeup=_nodeup,
                on_nodedown=_nodedown,
            )
            distribution.start()
        except (OSError, RuntimeError, ValueError, epmd.DuplicateName) as exc:
            log.error("cannot start node %s: %s", name, exc)
            return ("error", exc)
        _distribution = distribution
        _ticker = erlang.spawn(_ticker_loop, distribution)
        erlang.register("net_kernel", _ticker)
    return ("ok", _ticker)


def stop() -> Any:
    """Stop being distributed: every connection goes down, the node is ``nonode@nohost`` again.

    Erlang: net_kernel:stop/0

    Subscribers get ``nodedown`` for every node that was connected, after
    the 'DOWN's and exit signals of the monitors and links across it.

    Returns:
        ``'ok'``, or ``('error', 'not_found')`` if the node was not distributed.
    """
    global _distribution, _ticker
    with _kernel_lock:
        distribution, ticker = _distribution, _ticker
        if distribution is None:
            return ("error", "not_found")
        if ticker is not None:
            # Free the name now: the ticker ends at its next receive, and a
            # start right after this stop must be able to register its own.
            with contextlib.suppress(erlang.ErlangError):
                erlang.unregister("net_kernel")
            erlang.send(ticker, "stop")
        distribution.close()
        _distribution = None
        _ticker = None
        erlang._set_dist(None)
        erlang._set_identity("nonode@nohost", 0)
    return "ok"


def connect_node(node: str) -> bool | str:
    """Connect to ``node``; True once connected, False if it cannot be done.

    Erlang: net_kernel:connect_node/1

    A failed attempt logs why (no port mapper, no such node, wrong cookie,
    blocked, timeout). Returns ``'ignored'`` when this node is not
    distributed, as in OTP.
    """
    distribution = _distribution
    if distribution is None:
        return "ignored"
    return distribution.connect(node)


def disconnect(node: str) -> bool:
    """Take the connection to ``node`` down.

    Erlang: net_kernel:disconnect/1
    """
    return erlang.disconnect_node(node)


def monitor_nodes(flag: bool, options: list[Any] | None = None) -> Any:
    """Subscribe the caller to ``('nodeup', node)`` / ``('nodedown', node)`` messages, or stop.

    Erlang: net_kernel:monitor_nodes/1
    Erlang: net_kernel:monitor_nodes/2

    ``True`` adds one subscription (a process that subscribes twice gets
    every message twice, as in OTP); ``False`` removes all of the caller's.

    Returns:
        ``'ok'``, or ``'error'`` for a flag that is not a bool, or
        ``('error', ('unknown_options', options))``.
    """
    if not isinstance(flag, bool):
        return "error"
    if options:
        return ("error", ("unknown_options", list(options)))
    me = erlang.self()
    with _subscribers_lock:
        if flag:
            _subscribers.append(me)
        else:
            _subscribers[:] = [p for p in _subscribers if p != me]
    return "ok"


def get_net_ticktime() -> float | str:
    """Return the tick time in seconds, or ``'ignored'`` if the node is not distributed.

    Erlang: net_kernel:get_net_ticktime/0
    """
    distribution = _distribution
    return "ignored" if distribution is None else distribution.ticktime


def get_cookie() -> bytes | str:
    """Return this node's cookie, or ``'nocookie'`` when it is not distributed.

    Erlang: erlang:get_cookie/0
    """
    distribution = _distribution
    return "nocookie" if distribution is None else distribution.cookie


# == Local functions ===========================================================


def _nodeup(node: str) -> None:
    """Tell every subscriber that ``node`` is up.

    Erlang: net_kernel:send_list/2 (the ?nodeup macro: {nodeup, Node} to each subscriber)
    """
    with _subscribers_lock:
        subscribers = list(_subscribers)
    for pid in subscribers:
        erlang.send(pid, ("nodeup", node))


def _nodedown(node: str, reason: Any) -> None:
    """Tell every subscriber that ``node`` is down.

    Erlang: net_kernel:send_list/2 (the ?nodedown macro: {nodedown, Node} to each subscriber)
    """
    with _subscribers_lock:
        subscribers = list(_subscribers)
    for pid in subscribers:
        erlang.send(pid, ("nodedown", node))


def _forget_subscriber(pid: Pid, reason: Any) -> None:
    """Drop a dead process's subscriptions.

    Erlang: none (the runtime clears a dead process's monitor_nodes flag)
    """
    with _subscribers_lock:
        if pid in _subscribers:
            _subscribers[:] = [p for p in _subscribers if p != pid]


erlang.on_process_exit(_forget_subscriber)


def _ticker_loop(distribution: dist.Distribution) -> None:
    """Tick every connection each ``ticktime / 4`` seconds, and answer peers' calls, until told to stop.

    Erlang: net_kernel:ticker/2
    Erlang: net_kernel:ticker_loop/2
    Erlang: net_kernel:handle_call/3 ({is_auth, _Node})

    OTP's ticker sends ``tick`` to net_kernel, which forwards it to every
    connection process; here one process, registered as ``net_kernel``,
    ticks every connection itself. It also answers the one call other
    nodes make of ``net_kernel``: ``net_adm:ping/1`` is a
    ``gen_server:call({net_kernel, Node}, {is_auth, node()})``, answered
    ``yes`` (the connection that carried it has already proved the cookie).
    """
    from repg2 import gen_server  # the ticker is started once the runtime's servers exist

    interval = distribution.ticktime / 4
    next_tick = time.monotonic() + interval
    while True:
        msg = erlang.receive(timeout=max(0.0, next_tick - time.monotonic()))
        if msg == "stop":
            return
        match msg:
            case ("$gen_call", from_, ("is_auth", _node)):  # Erlang: handle_call({is_auth, _Node}, From, State)
                gen_server.reply(from_, "yes")
            case ("$gen_call", _from, request):  # the rest of net_kernel's calls are not ported: no reply
                log.warning("net_kernel: a call it does not answer: %.200r", request)
        if time.monotonic() >= next_tick:
            next_tick = time.monotonic() + interval
            try:
                distribution.tick()
            except Exception:  # noqa: BLE001 - the ticker must outlive one bad tick
                log.exception("tick failed")
