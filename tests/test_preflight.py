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

from shell_driver import CHECKS, HOST, NEEDS_PTY, Preflight, Shell, Shells, unique_node  # noqa: E402 - after the importorskip
from support import DEADLINE, NOT_A_PORT_MAPPER, fake_port_mapper, free_port  # noqa: E402

from repg2 import epmd  # noqa: E402
from repg2.tools import cli  # noqa: E402

pytestmark = [pytest.mark.timeout(120), NEEDS_PTY]

COOKIE = "preflight-cookie"


@pytest.fixture
def teacher(tmp_path: Path) -> Iterator[Shell]:
    """The teacher's node: a shell on 127.0.0.1 with the workshop's cookie, killed at the end."""
    with Shells(tmp_path) as started:
        yield started.start(unique_node("teacher"), COOKIE)


@pytest.fixture
def preflight(tmp_path: Path) -> Callable[..., Preflight]:
    """Return ``preflight(*args)``: run the pre-flight to its end and return what it printed."""

    def run(*args: str) -> Preflight:
        """Run ``python -m repg2 preflight ARGS`` with a fresh node name."""
        return Preflight(("--name", unique_node("pf"), *args), home=tmp_path).run()

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
        started.start(unique_node("bystander"), COOKIE)  # keeps a port mapper running
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


# == The checks one by one, in-process ====================================================
#
# Each check is a method of repg2.tools.preflight.Preflight that records its line; the
# failures that a whole run on a pty would take seconds to stage are checked here one
# method at a time, in this process (which becomes the checked node where a check
# starts one, and stops being it after).

import logging  # noqa: E402

from repg2 import net_kernel  # noqa: E402
from repg2.testing import Cluster  # noqa: E402
from repg2.tools import preflight as pf  # noqa: E402


def checked(host: str = HOST, teacher: str | None = None, ports: tuple[int, int] | None = None) -> pf.Preflight:
    """A pre-flight of a fresh node name on ``host`` that records its lines instead of printing them."""
    lines: list[str] = []
    return pf.Preflight(f"pf{os.getpid()}_{os.urandom(2).hex()}", host, COOKIE, teacher, ports, say=lines.append)


def status(check: pf.Preflight, name: str) -> tuple[str, str, str]:
    """Return ``(status, detail, fix)`` of the check ``name`` as recorded."""
    found = [c for c in check.checks if c.name == name]
    assert len(found) == 1, check.checks
    return found[0].status, found[0].detail, found[0].fix


@pytest.fixture
def no_node() -> Iterator[None]:
    """Make sure this process is no node after the test, whatever a check started."""
    yield
    net_kernel.stop()


def test_the_python_check_fails_on_an_old_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a Python before 3.11 the python check fails with the advice of python -m repg2."""
    monkeypatch.setattr(sys, "version_info", (3, 9, 6, "final", 0))
    check = checked()
    assert check.check_python() is False
    result, detail, fix = status(check, "python")
    assert (result, detail.split(" (")[0]) == ("FAIL", "Python 3.9.6")
    assert "3.11 or newer" in fix


def test_the_address_check_refuses_what_the_teacher_cannot_dial() -> None:
    """A host that does not resolve fails; so does a loopback name while the teacher is on another machine."""
    unresolved = checked("nowhere.invalid")
    assert unresolved.check_address() is False
    assert status(unresolved, "address")[1].startswith("cannot resolve 'nowhere.invalid'")
    loopback = checked(HOST, teacher="teacher@198.51.100.7")  # TEST-NET-2: elsewhere
    assert loopback.check_address() is False
    assert "is loopback: the teacher's node cannot dial it" in status(loopback, "address")[1]


def test_the_address_check_passes_a_lan_address_of_this_machine() -> None:
    """A LAN address of this machine, with no teacher named, passes and is listed with the others."""
    mine = pf.ipv4_addresses()
    if not mine:
        pytest.skip("this machine has no non-loopback IPv4 address")
    check = checked(mine[0])
    assert check.check_address() is True
    result, detail, _fix = status(check, "address")
    assert (result, detail.split(" ")[0]) == ("OK", mine[0])


@pytest.mark.usefixtures("no_node")
def test_the_node_check_names_a_port_mapper_port_held_by_another_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """What answers on the port mapper port without being one fails the port mapper check; the listen port is skipped."""
    with fake_port_mapper(monkeypatch, [], NOT_A_PORT_MAPPER) as port:
        check = checked()
        assert check.check_node() is False
    result, detail, fix = status(check, "port mapper")
    assert (result, detail.startswith(f"what answers on port {port} is not a port mapper")) == ("FAIL", True)
    assert "--epmd-port" in fix
    assert status(check, "listen port")[0] == "SKIP"


@pytest.mark.usefixtures("no_node")
def test_the_node_check_names_a_name_registered_already() -> None:
    """A node of the same name registered here fails the port mapper check and says to stop it or pick another name."""
    check = checked()
    sock, _creation = epmd.ensure_registered(check.alive, free_port())
    with sock:
        assert check.check_node() is False
    assert "is registered here already" in status(check, "port mapper")[1]
    assert status(check, "listen port")[0] == "SKIP"


@pytest.mark.usefixtures("no_node")
def test_the_node_check_names_node_ports_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every node port of the range taken, the port mapper passes and the listen port fails with a wider range."""
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("REPG2_DIST_LISTEN_MIN", str(port))
        monkeypatch.setenv("REPG2_DIST_LISTEN_MAX", str(port))
        check = checked()
        assert check.check_address() is True
        assert check.check_node() is False
    assert status(check, "port mapper")[0] == "OK"
    result, detail, fix = status(check, "listen port")
    assert (result, f"node port {port} is in use" in detail) == ("FAIL", True)
    assert fix.startswith("use --port 4380-4389")


@pytest.mark.usefixtures("no_node")
def test_the_node_check_when_the_node_cannot_start_for_another_reason() -> None:
    """A node that cannot start for a reason other than its port fails the port mapper check with that reason."""
    check = checked("198.51.100.7")  # TEST-NET-2: not an address of this machine, so nothing can listen there
    assert check.check_node() is False
    result, detail, _fix = status(check, "port mapper")
    assert (result, "is not an address of this machine" in detail) == ("FAIL", True)
    assert status(check, "listen port") == ("SKIP", "the node did not start", "")


@pytest.mark.usefixtures("no_node")
def test_the_listen_port_check_fails_outside_the_pinned_range() -> None:
    """A node listening outside the --port range it was checked for fails the listen port check."""
    check = checked(ports=(1, 1))
    assert check.check_address() is True
    assert check.check_node() is False
    result, detail, _fix = status(check, "listen port")
    assert (result, detail.endswith("is outside --port 1-1")) == ("FAIL", True)


def test_the_cookie_from_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --cookie but with $REPG2_COOKIE, the cookie check names that source and is skipped without a teacher."""
    monkeypatch.setenv("REPG2_COOKIE", "from-the-environment")
    check = checked()
    check.cookie = None
    assert check.check_cookie("failed") is False
    assert status(check, "cookie") == ("SKIP", "from $REPG2_COOKIE; not tested: no teacher reached", "")


def test_the_suggested_address_without_a_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a route to anywhere, the address suggested is the first of the machine's own, or none."""
    monkeypatch.setattr(pf, "route_source", lambda target: None)
    check = checked()
    assert check._suggested_address(["10.1.2.3", "10.9.9.9"]) == "10.1.2.3"
    assert check._suggested_address([]) is None


def test_addresses_listed_by_the_system_are_filtered(monkeypatch: pytest.MonkeyPatch) -> None:
    """ipv4_addresses keeps what other machines can dial: no garbage, no link-local, no loopback."""
    monkeypatch.setattr(pf, "_listed_by_system", lambda: ["not-an-address", "169.254.1.1", "127.0.0.1", "10.1.2.3"])
    assert "10.1.2.3" in pf.ipv4_addresses()
    assert not {"169.254.1.1", "127.0.0.1", "not-an-address"} & set(pf.ipv4_addresses())
    assert pf._resolve("nowhere.invalid") is None


def test_each_platform_lists_addresses_and_opens_ports_its_own_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows asks ipconfig, a Linux without ip asks ifconfig (none here: nothing found); the firewall advice per platform."""
    monkeypatch.setattr(pf.shutil, "which", lambda name: None)
    monkeypatch.setattr(
        pf.subprocess, "run", lambda command, **kw: (_ for _ in ()).throw(FileNotFoundError(command[0]))
    )
    assert pf._listed_by_system() == []
    monkeypatch.setattr(sys, "platform", "win32")
    assert pf._listed_by_system() == []
    assert "netsh advfirewall firewall add rule" in pf._open_ports_fix("4369,4380")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert pf._open_ports_fix("4369").startswith("System Settings > Network > Firewall")


@pytest.mark.usefixtures("no_node")
def test_without_a_teacher_the_connect_back_diagnosis_is_the_generic_one() -> None:
    """With no teacher to ask, the connect back failure gets the generic diagnosis: a firewall here, probably."""
    diagnosis, fix = checked()._why_no_connect_back()
    assert "could not connect to this node within" in diagnosis and "firewall" in diagnosis
    assert fix


def test_a_teacher_that_reaches_both_ports_gets_the_generic_diagnosis() -> None:
    """When the teacher's probe of this node finds both ports answering, no port is blamed: the generic diagnosis."""
    with Cluster(2) as cluster:
        a, b = cluster.nodes
        alive, host = a.split("@")
        check = pf.Preflight(alive, host, cluster.cookie, b, None, say=lambda line: None)
        diagnosis, _fix = check._why_no_connect_back()
    assert diagnosis.startswith(f"{b} could not connect to this node within")


@pytest.fixture
def quiet_package_log() -> Iterator[None]:
    """Restore the 'repg2' logger after a pre-flight run in this process (run() turns its propagation off)."""
    logger = logging.getLogger("repg2")
    level, propagate = logger.level, logger.propagate
    yield
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.mark.usefixtures("no_node", "quiet_package_log")
def test_run_in_process_skips_what_follows_a_failed_check(capsys: pytest.CaptureFixture[str]) -> None:
    """run(): a failed port mapper check is reported once; the teacher, cookie and connect back checks are skipped."""
    alive, port = f"pfrun{os.getpid()}", free_port()
    sock, _creation = epmd.ensure_registered(alive, port)
    with sock:
        assert pf.run(f"{alive}@{HOST}", COOKIE, verbose=True) == 1
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith(("OK    port mapper", "FAIL  port mapper"))] == [
        f"FAIL  port mapper   a node named {alive!r} is registered here already (port {port})"
    ]
    for name in ("teacher", "cookie", "connect back"):
        assert f"SKIP  {name:<13} needs the checks above" in out
    assert "checks failed (port mapper):" in out


@pytest.mark.usefixtures("no_node", "quiet_package_log")
def test_run_in_process_without_a_host_takes_the_routes_address(capsys: pytest.CaptureFixture[str]) -> None:
    """run() with a bare name puts the address on the route (or 127.0.0.1) in the node name, and checks it."""
    assert pf.run(f"pfbare{os.getpid()}", COOKIE) in (0, 1)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"RePy2 pre-flight of pfbare{os.getpid()}@")
    assert "@" in first and not first.endswith("@")
