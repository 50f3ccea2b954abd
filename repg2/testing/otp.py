"""Real Erlang/OTP beside RePy2: find ``erl``, run the same steps there, and read the answer back.

The translation is checked against the original wherever the original
still runs: OTP 25 from Debian's ``erlang-base`` (``.ci/run`` installs it).
This module starts real ``erl`` processes for tests and benchmarks. It is
the comparison harness's lowest layer: a one-shot evaluation of an Erlang
expression sequence in a fresh, non-distributed ``erl`` (no port mapper is
touched), with its output and exit status.

A test that needs ``erl`` asks :func:`erl_missing_reason` first: on a
machine without Erlang it is skipped with that reason, but under CI
(``CI=true``) a missing ``erl`` is a failure, so the comparison can never
silently stop running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["ErlResult", "erl_missing_reason", "eval_erl", "in_ci"]

ERL_TIMEOUT = 60.0  # seconds a one-shot erl may run: its boot takes about a second here


@dataclass(frozen=True)
class ErlResult:
    """What a one-shot ``erl`` printed and how it ended."""

    returncode: int
    stdout: str
    stderr: str


def in_ci() -> bool:
    """Say whether this run is CI's (``CI=true``), where a missing ``erl`` must fail, not skip."""
    return os.environ.get("CI", "").lower() == "true"


def erl_missing_reason() -> str | None:
    """Return why real Erlang cannot run here, or None when ``erl`` is on the PATH."""
    if shutil.which("erl") is None:
        return "real Erlang/OTP is not installed (apt-get install erlang-base): no `erl` on the PATH"
    return None


def eval_erl(expressions: str, timeout: float = ERL_TIMEOUT) -> ErlResult:
    """Run ``expressions`` (Erlang, ending in ``init:stop().`` or ``halt().``) in a fresh ``erl``.

    The node is not distributed, so no port mapper is started or needed.
    Output written with ``io:format`` comes back in ``stdout``; a node that
    halts on its own (a crashed kernel, say) shows in ``returncode``.
    """
    done = subprocess.run(
        ["erl", "-noshell", "-noinput", "-eval", expressions],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=os.environ.get("TMPDIR", "/tmp"),  # a crashed kernel writes erl_crash.dump into the cwd
        env={**os.environ, "ERL_CRASH_DUMP": os.devnull},
    )
    return ErlResult(done.returncode, done.stdout, done.stderr)
