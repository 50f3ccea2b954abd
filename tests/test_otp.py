"""The harness's real Erlang nodes (``repg2.testing.otp``): started, refused, stopped, compiled.

The interop and comparison tests start real ``erl`` nodes through it; here
its own promises: a node that cannot start says how it ended, one that
never registers is killed and named, a node used as a context manager is
stopped as ``init:stop()`` stops it, a source ``erlc`` refuses is an error
with the compiler's words, and ``CI=true`` turns a missing ``erl`` into a
failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import need_erlang, wait_until

from repg2 import epmd
from repg2.testing import otp

pytestmark = pytest.mark.timeout(120)


def test_ci_and_a_missing_erl_are_told(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """in_ci() reads CI=true; without erl on the PATH, erl_missing_reason says how to install it."""
    monkeypatch.setenv("CI", "true")
    assert otp.in_ci() is True
    monkeypatch.setenv("CI", "")
    assert otp.in_ci() is False
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "apt-get install erlang-base" in str(otp.erl_missing_reason())


def test_a_node_that_cannot_start_says_how_it_ended(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An erl that exits while starting (a name it refuses) is a RuntimeError with its exit status, also in a with;
    it leaves no erl_crash.dump behind in the current directory."""
    need_erlang()
    monkeypatch.delenv("ERL_CRASH_DUMP", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match="exited with"), otp.ErlangNode(f"bad{os.getpid()}@", "cookie"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_node_that_does_not_register_in_time_is_killed() -> None:
    """A node not known to the port mapper within the timeout is killed, and the error says so."""
    need_erlang()
    node = otp.ErlangNode(f"late{os.getpid()}@127.0.0.1", "cookie")
    with pytest.raises(RuntimeError, match="did not register with the port mapper within 0 s"):
        node.start(timeout=0)
    assert node.process is not None and node.process.poll() is not None


def test_a_node_in_a_with_block_is_stopped_at_its_end(node: str) -> None:
    """ErlangNode as a context manager: registered inside the block, stopped by init:stop() at its end."""
    need_erlang()
    alive = f"withblock{os.getpid()}"
    with otp.ErlangNode(f"{alive}@127.0.0.1", "repg2-test-cookie") as erl:
        assert epmd.port_please(alive, "127.0.0.1") is not None
    assert erl.process is not None and erl.process.returncode == 0
    wait_until(lambda: epmd.port_please(alive, "127.0.0.1") is None, f"{alive} to leave the port mapper")


def test_a_source_erlc_refuses_is_an_error_with_its_words(tmp_path: Path) -> None:
    """compile_erlang raises RuntimeError carrying erlc's own message when the source does not compile."""
    need_erlang()
    source = tmp_path / "broken.erl"
    source.write_text("-module(broken).\nf() -> .\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="erlc .*broken.erl failed:\n.*syntax error"):
        otp.compile_erlang(str(source), str(tmp_path))


def test_a_node_halts_when_the_process_that_started_it_is_killed() -> None:
    """SIGKILL the Python process that started a node: the node sees its stdin end and halts, leaving no orphan."""
    need_erlang()
    alive = f"orphan{os.getpid()}"
    script = (
        "import sys\n"
        "from repg2.testing import otp\n"
        f"node = otp.ErlangNode('{alive}@127.0.0.1', 'repg2-test-cookie').start()\n"
        "print(node.process.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    starter = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None
        beam = int(starter.stdout.readline())
        assert epmd.port_please(alive, "127.0.0.1") is not None
    finally:
        starter.kill()
        starter.wait()
    wait_until(lambda: epmd.port_please(alive, "127.0.0.1") is None, what="the node to leave the port mapper")
    wait_until(lambda: not _running(beam), what=f"erl's OS process {beam} to end")


def _running(pid: int) -> bool:
    """Say whether an OS process runs (a zombie waiting for init to reap it has ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
