"""The workshop's pre-flight, run as the teacher runs it the day before: ``python -m repg2 preflight``.

Against a teacher's node shell on 127.0.0.1 (``shell_driver.Shell``), each
run of the pre-flight is a real OS process on a pty, read check by check
(``shell_driver.Preflight``): every check passes, and the teacher's node
really connects back; a wrong cookie is named as the cookie, not as a
closed port; a port that nothing listens on is named as a closed port; a
teacher node that died is "no such node"; an address that is not this
machine's, a missing ``--cookie`` and an old Python each say what to do.
The same checks across real hosts, with a firewall that drops the
laptop's ports, are in ``test_netns.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect", reason="the pre-flight is driven on a pty with pexpect (pip install pexpect)")

from shell_driver import CHECKS, Preflight, Shell, Shells  # noqa: E402 - after the importorskip
from support import DEADLINE, free_port  # noqa: E402

from repg2 import epmd  # noqa: E402
from repg2.tools import cli  # noqa: E402

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(sys.platform == "win32", reason="pexpect.spawn needs a POSIX pty"),
]

COOKIE = "preflight-cookie"
HOST = "127.0.0.1"


def _unique(base: str) -> str:
    """A node name no other test run on this machine uses."""
    return f"{base}{os.getpid()}_{os.urandom(2).hex()}@{HOST}"


@pytest.fixture
def teacher(tmp_path: Path) -> Iterator[Shell]:
    """The teacher's node: a shell on 127.0.0.1 with the workshop's cookie, killed at the end."""
    with Shells(tmp_path) as started:
        yield started.start(_unique("teacher"), COOKIE)


@pytest.fixture
def preflight(tmp_path: Path) -> Callable[..., Preflight]:
    """Return ``preflight(*args)``: run the pre-flight to its end and return what it printed."""

    def run(*args: str) -> Preflight:
        """Run ``python -m repg2 preflight ARGS`` with a fresh node name."""
        return Preflight(("--name", _unique("pf"), *args), home=tmp_path).run()

    return run


def _register(alive: str, port: int) -> socket.socket:
    """Register ``alive`` at ``port`` with this host's port mapper, as a node would; close the socket to unregister.

    The registration of a node whose port is closed: the port mapper
    answers for the name, nothing answers at the port.
    """
    sock, _creation = epmd.ensure_registered(alive, port)
    return sock


# == Everything in order =============================================================


def test_every_check_passes_against_a_teacher_shell(teacher: Shell, preflight: Callable[..., Preflight]) -> None:
    """Against a running teacher node with the same cookie, all seven checks pass and the exit status is 0."""
    port = free_port()
    since = teacher.mark()
    run = preflight("--connect", teacher.name, "--cookie", COOKIE, "--port", f"{port}-{port}")
    assert run.status == 0, run.text
    assert [run.status_of(name) for name in CHECKS] == ["OK"] * len(CHECKS), run.text
    assert f"{HOST}:{port} (of --port {port}-{port})" in run.checks["listen port"][1]
    assert "Ready: 7 checks passed." in run.text
    # The connect back was a connection of the teacher's own: the teacher's
    # shell saw the checked node go down and come up again.
    node = run.text.split("pre-flight of ")[1].split(",")[0]
    teacher.wait_output(rf"nodeup {node}[\s\S]*nodedown {node}[\s\S]*nodeup {node}[\s\S]*nodedown {node}", since)


def test_without_a_teacher_the_local_checks_pass_and_the_rest_are_skipped(preflight: Callable[..., Preflight]) -> None:
    """No --connect: the local checks pass, the teacher's are skipped, and the exit status is 0."""
    run = preflight("--cookie", COOKIE)
    assert run.status == 0, run.text
    assert [run.status_of(name) for name in CHECKS] == ["OK"] * 4 + ["SKIP"] * 3, run.text
    assert "with a firewall, pin it (--port" in run.checks["listen port"][1]


# == Each failure named, with what to do ===============================================


def test_wrong_cookie_is_named_as_the_cookie(teacher: Shell, preflight: Callable[..., Preflight]) -> None:
    """A teacher that refuses our handshake: the teacher check passes (it answers), the cookie check fails."""
    since = teacher.mark()
    run = preflight("--connect", teacher.name, "--cookie", "not-the-workshop-cookie")
    assert run.status == 1
    assert run.status_of("teacher") == "OK", run.text
    assert "answers: port mapper at" in run.checks["teacher"][1]
    status, detail, fix = run.checks["cookie"]
    assert status == "FAIL"
    assert "refused the handshake: our cookie (from --cookie) is not its cookie" in detail
    assert "--cookie" in fix
    assert run.status_of("connect back") == "SKIP"
    for closed in ("connection refused", "does not answer", "firewall"):
        assert closed not in run.checks["teacher"][1] + detail
    teacher.wait_output(r"rejected\. Invalid challenge reply", since)  # OTP's own words (dist_util)


def test_closed_port_is_named_as_a_closed_port(preflight: Callable[..., Preflight], tmp_path: Path) -> None:
    """A teacher registered with the port mapper whose port nothing listens on: a closed port, not the cookie."""
    alive = f"deadteacher{os.getpid()}"
    closed = free_port()
    with Shells(tmp_path) as started:
        started.start(_unique("bystander"), COOKIE)  # keeps a port mapper running
        registration = _register(alive, closed)
        try:
            run = preflight("--connect", f"{alive}@{HOST}", "--cookie", COOKIE)
        finally:
            registration.close()
    assert run.status == 1
    status, detail, fix = run.checks["teacher"]
    assert status == "FAIL", run.text
    assert f"is registered at port {closed} but that port does not answer (connection refused)" in detail
    assert "--port" in fix
    assert "cookie" not in detail
    assert run.status_of("cookie") == "SKIP"
    assert run.status_of("connect back") == "SKIP"


def test_dead_teacher_is_no_such_node(teacher: Shell, preflight: Callable[..., Preflight]) -> None:
    """A teacher node killed outright is gone from its port mapper: "no node named ... runs on", with who does."""
    teacher.child.kill(signal.SIGKILL)
    teacher.child.expect(pexpect.EOF, timeout=DEADLINE)
    alive = teacher.name.split("@")[0]
    run = preflight("--connect", teacher.name, "--cookie", COOKIE)
    assert run.status == 1
    status, detail, fix = run.checks["teacher"]
    assert status == "FAIL", run.text
    assert f"no node named {alive!r} runs on {HOST} (nodes registered there: " in detail
    assert "check the name" in fix


def test_address_that_is_not_this_machines_is_named(preflight: Callable[..., Preflight], tmp_path: Path) -> None:
    """A node name with another machine's address fails the address check and suggests one of ours."""
    run = Preflight(("--name", "pf@198.51.100.7", "--cookie", COOKIE), home=tmp_path).run()  # TEST-NET-2
    assert run.status == 1
    status, detail, fix = run.checks["address"]
    assert status == "FAIL"
    assert "198.51.100.7 is not an address of this machine (this machine's IPv4 addresses:" in detail
    assert fix.startswith("use --name pf@") or fix == "join the workshop's network first"
    assert [run.status_of(name) for name in CHECKS[2:]] == ["SKIP"] * 5


def test_missing_cookie_is_named(preflight: Callable[..., Preflight], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --cookie (nor $REPG2_COOKIE) the node's cookie is random: the cookie check says to pass one."""
    monkeypatch.delenv("REPG2_COOKIE", raising=False)
    run = preflight()  # the child's HOME is the test's directory: a fresh random ~/.repg2.cookie
    assert run.status == 1
    status, detail, fix = run.checks["cookie"]
    assert status == "FAIL"
    assert "no --cookie" in detail
    assert fix == "pass --cookie with the workshop's cookie"


def test_old_python_is_refused_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On Python before 3.11 every command stops at once with one line naming the installers."""
    assert cli.python_problem((3, 11, 0)) is None
    assert cli.python_problem((3, 13, 1)) is None
    monkeypatch.setattr(sys, "version_info", (3, 9, 6, "final", 0))
    assert cli.main(["preflight"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Python 3.9.6 is too old: RePy2 needs 3.11 or newer" in err
    for advice in ("python.org", "brew install python@3.12", "/usr/bin/python3", "py -3.12"):
        assert advice in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--name", "a b"], "not a node name"),
        (["--name", "pf@bad host"], "not a node name"),
        (["--connect", "teacher"], "'teacher' is not a node name"),
        (["--port", "9200-9100"], "greater than the last"),
        (["--epmd-port", "0"], "'0' is not a TCP port"),
    ],
)
def test_wrong_preflight_arguments_give_one_line_and_status_2(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong argument of the pre-flight is one line on stderr and exit status 2, as for every command."""
    with pytest.raises(SystemExit) as stop:
        cli.main(["preflight", *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert fragment in err


def test_preflight_help_names_every_option() -> None:
    """``preflight --help`` explains each option and shows an example."""
    result = pexpect.run(
        f"{sys.executable} -m repg2 preflight --help",
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)),
        encoding="utf-8",
        withexitstatus=True,
        timeout=DEADLINE,
    )
    text, status = result
    assert status == 0
    for option in ("--connect", "--cookie", "--port", "--name", "--epmd-port", "--verbose", "Exit status 0"):
        assert option in text
