"""The node's boot: the kernel supervisor that pg2 starts itself under.

In OTP the ``kernel`` application (``lib/kernel/src/kernel.erl``) starts a
supervision tree when the node boots; one of its supervisors is
``kernel_safe_sup``, "safe" because its children may crash without taking
the node down. ``pg2:ensure_started/0`` adds pg2 to it.

Ported: ``kernel_safe_sup`` as a ``one_for_one`` supervisor (intensity 4 in
3600 s, as kernel.erl sets it), and the start of ``global_name_server``
(the lock server of ``repg2.global_``), which kernel.erl starts on every
node: pg2's writes take global locks, and a node without the lock server
would silently be left out of every lock. Left out: the rest of the kernel
tree (``kernel_sup``, ``code_server``, ``file_server``...), which a Python
node does not need. Here ``global_name_server`` runs under
``kernel_safe_sup`` (OTP puts it under ``kernel_sup``).

Difference from OTP: a BEAM boots its kernel before running any code; a
Python process boots lazily, on the first :func:`boot` (called by
``net_kernel.start`` and by ``pg2.ensure_started``), and boots again if the
supervisor ever gave up. See ``TRANSLATION_NOTES.md``.
"""

from __future__ import annotations

import threading
from typing import Any

from repg2 import erlang, supervisor

__all__ = ["boot", "safe_sup"]

SAFE_SUP = "kernel_safe_sup"

# Serialises boots from several threads: two threads booting at once would
# both try to register kernel_safe_sup. Re-entrant because starting global
# calls boot() again (global_.ensure_started boots the kernel it needs).
_boot_lock = threading.RLock()


class _SafeSup:
    """The callback module of ``kernel_safe_sup``.

    Erlang: none (kernel.erl's init/1 clause for safe)
    """

    def init(self, args: Any) -> Any:
        """Return the flags of ``kernel_safe_sup``: one_for_one, 4 restarts an hour, no children.

        Erlang: kernel:init/1 (the safe clause)
        """
        return ("ok", (("one_for_one", 4, 3600), []))


def boot() -> erlang.Pid:
    """Start ``kernel_safe_sup`` unless it runs; return its pid.

    Erlang: kernel:init/1
    """
    from repg2 import global_  # global_ needs kernel_safe_sup; import here, not at the top

    with _boot_lock:
        pid = safe_sup()
        started = global_.ensure_started()
        if started[0] != "ok":
            raise RuntimeError(f"cannot start global_name_server: {started!r}")
        return pid


def safe_sup() -> erlang.Pid:
    """Start ``kernel_safe_sup`` alone unless it runs; return its pid.

    Erlang: kernel:init/1 (the safe clause)
    """
    with _boot_lock:
        pid = erlang.whereis(SAFE_SUP)
        if not isinstance(pid, erlang.Pid):  # 'undefined'
            # Not linked to the caller: the node's supervisor must not die
            # with whichever thread happened to boot it.
            result = _start_unlinked()
            if result[0] != "ok":
                raise RuntimeError(f"cannot boot {SAFE_SUP}: {result!r}")
            pid = result[1]
            assert isinstance(pid, erlang.Pid), result  # ('ok', Pid), as Erlang's {ok, Pid} = ... matches
        return pid


def _start_unlinked() -> Any:
    """Start the supervisor without a link to the calling process.

    Erlang: none (the BEAM's boot process does this)

    The caller becomes the supervisor's parent in name only: without a link,
    the supervisor outlives it.
    """
    return supervisor.start(("local", SAFE_SUP), _SafeSup(), [])
