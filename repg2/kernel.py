"""The node's boot: ``kernel_safe_sup`` and the servers it owns, ``rex`` and ``global_name_server``.

Translates the supervisor part of ``lib/kernel/src/kernel.erl`` of Erlang/OTP
18.3. When a BEAM boots, the ``kernel`` application starts a supervision
tree: ``kernel_sup`` with the node's system servers (``rex`` for rpc,
``global_name_server`` for global, ``net_sup`` for the distribution, the code
and file servers...) and, among them, ``kernel_safe_sup``: "safe" because
its children may crash and be restarted without taking the node down.
``pg2:ensure_started/0`` adds pg2 to it.

Ported: ``kernel_safe_sup`` (``one_for_one``, at most 4 restarts in 3600 s,
as ``kernel:init(safe)`` sets it), started by :func:`boot` with two
children, ``rex`` (``rpc:start_link/0``) and then ``global_name_server``
(``global:start_link/0``), in kernel.erl's order and with its child specs
(permanent workers, a 2 s shutdown). This module is the supervisor's
callback module, as ``kernel.erl`` is: :func:`init` is its ``init/1``.

Left out: the rest of the kernel tree (``kernel_sup`` itself, ``net_sup``,
``code_server``, ``file_server``, ``logger``...), which a Python node does
not need: ``net_kernel.start`` starts the distribution directly.

Imports run one way, as in OTP: ``kernel.erl`` names ``rpc`` and ``global``
in its child specs, and neither of them knows the kernel. ``global_`` and
``rpc`` export ``start_link`` and nothing that boots a node.

Differences from OTP (see ``TRANSLATION_NOTES.md``):

- A BEAM boots its kernel before running any code; a Python process boots
  on the first :func:`boot` (called by ``net_kernel.start`` and by
  ``pg2.ensure_started``), and boots again if the supervisor ever gave up
  (D7).
- In OTP ``rex`` and ``global_name_server`` are children of ``kernel_sup``,
  whose restart intensity is 0: if either dies, ``kernel_sup`` gives up, the
  kernel application stops and the node halts ("Kernel pid terminated"; a
  test runs this on a real OTP node). Here they are children of
  ``kernel_safe_sup`` and are restarted, with empty state, like any safe
  child (D32): a Python node cannot halt the interpreter that runs the
  tests, notebooks and shells around it.
"""

from __future__ import annotations

import threading
from typing import Any

from repg2 import erlang, global_, rpc, supervisor
from repg2.erlang import Pid

__all__ = ["SAFE_SUP", "boot", "init"]

SAFE_SUP = "kernel_safe_sup"
SAFE_FLAGS = ("one_for_one", 4, 3600)  # kernel:init(safe): four restarts an hour, then the supervisor gives up
SHUTDOWN = 2.0  # seconds each system server gets to terminate, kernel.erl's 2000 ms

# Serialises boots from several threads: two threads booting at once would
# both try to register kernel_safe_sup. Nothing that runs under the lock
# boots again, so a plain lock suffices.
_boot_lock = threading.Lock()


def init(args: Any) -> Any:
    """Return the flags and children of ``kernel_safe_sup``: rex, then global_name_server.

    Erlang: kernel:init/1 (the safe clause)

    kernel.erl starts ``rex`` before ``global_name_server``: global's lock
    requests are multi_calls that any node may send as soon as this one is
    up, and rpc is what a peer uses to look at a node first. Both are
    permanent: restarted whatever their exit reason (``global:stop/0``
    included).
    """
    # DIVERGENCE(D32): OTP starts these two under kernel_sup (intensity 0: their death halts the node).
    children: list[tuple[Any, ...]] = [
        (rpc.NAME, (rpc.start_link, []), "permanent", SHUTDOWN, "worker", ["rpc"]),
        (global_.SERVER, (global_.start_link, []), "permanent", SHUTDOWN, "worker", ["global"]),
    ]
    return ("ok", (SAFE_FLAGS, children))


def boot() -> Pid:
    """Start ``kernel_safe_sup`` and its children unless it runs; return its pid.

    Erlang: kernel:init/1 (the kernel application's start, in a node's boot)

    The supervisor is started without a link: the node's supervisor must not
    die with whichever thread happened to boot it, as a BEAM's kernel does
    not belong to the first process that runs.

    Raises:
        RuntimeError: if the supervisor or one of its children cannot start;
        a node that went on without ``global_name_server`` would be left out
        of every lock without a word.
    """
    # DIVERGENCE(D7): booted on first need, not before any code runs.
    with _boot_lock:
        running = erlang.whereis(SAFE_SUP)
        if isinstance(running, Pid):
            return running
        result = supervisor.start(("local", SAFE_SUP), _this_module(), "safe")
        match result:
            case ("ok", Pid() as pid):
                return pid
            case ("error", ("already_started", Pid() as pid)):  # started outside boot() by a test
                return pid
        raise RuntimeError(f"cannot boot {SAFE_SUP}: {result!r}")


def _this_module() -> Any:
    """Return this module, the callback module of ``kernel_safe_sup`` (kernel.erl passes ``?MODULE``).

    Erlang: none (the ?MODULE macro)
    """
    import sys

    return sys.modules[__name__]
