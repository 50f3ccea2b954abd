"""Real Erlang/OTP beside RePy2: find ``erl``, run the same steps there, and read the answer back.

The translation is checked against the original wherever the original
still runs: OTP 25 from Debian's ``erlang-base`` (``.ci/run`` installs it).
This module starts real ``erl`` processes for tests and benchmarks:
:func:`eval_erl`, a one-shot evaluation of an Erlang expression sequence in
a fresh, non-distributed ``erl`` (no port mapper is touched), with its
output and exit status; and :class:`ErlangNode`, a named node that RePy2
nodes connect to, call and monitor over the distribution.

A test that needs ``erl`` asks :func:`erl_missing_reason` first: on a
machine without Erlang it is skipped with that reason, but under CI
(``CI=true``) a missing ``erl`` is a failure, so the comparison can never
silently stop running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ErlResult", "ErlangNode", "compile_erlang", "erl_missing_reason", "eval_erl", "in_ci"]

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


# Evaluated at boot: a process that waits for the end of stdin, then halts the node.
_HALT_ON_EOF = 'spawn(fun Wait() -> case io:get_line("") of eof -> halt(); {error, _} -> halt(); _ -> Wait() end end)'


class ErlangNode:
    """A real OTP node, started as a child OS process: the peer of the interop tests and benchmarks.

    Follows OTP's ``peer`` module in spirit: start a node with a name and a
    cookie, wait until it is registered with the port mapper, stop it, or
    kill its OS process outright. The node uses the port mapper of the
    ``ERL_EPMD_PORT`` this process has (``-start_epmd false``: it never
    starts a real epmd of its own, which would outlive a test run); one is
    started if none answers. Its output goes to ``log``.
    """

    def __init__(
        self,
        name: str,
        cookie: str,
        *,
        code_paths: Sequence[str] = (),
        ticktime: float | None = None,
        args: Sequence[str] = (),
        log: str | None = None,
    ) -> None:
        self.name = name
        self.cookie = cookie
        self.code_paths = list(code_paths)
        self.ticktime = ticktime
        self.args = list(args)
        self.log = log or os.devnull
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = ERL_TIMEOUT) -> ErlangNode:
        """Start the node and return once the port mapper knows it.

        Raises:
            RuntimeError: ``erl`` exited, or never registered, within ``timeout``.
        """
        from repg2 import epmd  # the harness's own dependency, imported where it is needed

        alive, host = self.name.split("@", 1)
        epmd.ensure_port_mapper()
        argv = ["erl", "-name", self.name, "-setcookie", self.cookie, "-noshell", "-start_epmd", "false"]
        # The node reads its stdin, a pipe this process holds and never writes: when this
        # process ends, however it ends (even SIGKILL), the pipe closes and the node halts.
        argv += ["-eval", _HALT_ON_EOF]
        for path in self.code_paths:
            argv += ["-pa", path]
        if self.ticktime is not None:
            argv += ["-kernel", "net_ticktime", str(max(1, round(self.ticktime)))]
        argv += self.args
        # A node that fails to boot writes erl_crash.dump into the current directory
        # unless told otherwise; the log has the reason already.
        env = {**os.environ, "ERL_CRASH_DUMP": os.environ.get("ERL_CRASH_DUMP", os.devnull)}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.PIPE, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"erl {self.name} exited with {self.process.returncode} (see {self.log})")
            try:
                if epmd.port_please(alive, host, 1.0) is not None:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"erl {self.name} did not register with the port mapper within {timeout} s")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the node as ``init:stop()`` does (over the distribution if this process is a node), else kill it."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        from repg2 import erlang, rpc

        if erlang.node() != "nonode@nohost":
            rpc.cast(self.name, "init", "stop", [])
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_stdin()

    def kill(self) -> None:
        """Kill the node's OS process (SIGKILL): no goodbye to any peer."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)
        self._close_stdin()

    def _close_stdin(self) -> None:
        """Close this side of the node's stdin pipe once the node has ended."""
        if self.process is not None and self.process.stdin is not None and self.process.poll() is not None:
            self.process.stdin.close()

    def __enter__(self) -> ErlangNode:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def compile_erlang(source: str, outdir: str) -> str:
    """Compile an Erlang source file with ``erlc`` into ``outdir``; return ``outdir`` (a code path for ``-pa``)."""
    done = subprocess.run(["erlc", "-o", outdir, source], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"erlc {source} failed:\n{done.stdout}{done.stderr}")
    return outdir
