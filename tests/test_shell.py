"""The node shell, driven as a person drives it: ``python -m repg2 shell`` on a pseudo-terminal.

The acceptance scenario of the workshop (issue 8): node ``a`` starts, node
``b`` starts connected to ``a``, a group is created on ``a``, a process
joins from ``b``, ``a`` reads it, ``b`` kills its member, and ``a`` sees it
leave. Then the failures a workshop meets: a wrong cookie, a node that is not
there, wrong command-line arguments, and a node name that cannot start.

Every shell is a real OS process (pexpect); they use the run's private port
mapper (``ERL_EPMD_PORT``, set by ``conftest.py``) and are killed in the
teardown even when a step fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect", reason="the shell tests drive a pty with pexpect (pip install pexpect)")

from shell_driver import HOST, NEEDS_PTY, ROOT, Shell, Shells, unique_node  # noqa: E402 - after the importorskip
from support import DEADLINE  # noqa: E402

pytestmark = [pytest.mark.timeout(90), NEEDS_PTY]

COOKIE = "workshop-cookie"


@pytest.fixture
def shells(tmp_path: Path) -> Iterator[Callable[..., Shell]]:
    """Return a factory of shells; every shell still running at the end is killed and reaped."""
    with Shells(tmp_path) as started:
        yield lambda name, *args, cookie=COOKIE: started.start(name, cookie, *args)


def _cli(*args: str, timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    """Run ``python -m repg2 ARGS`` without a terminal and capture its output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "repg2", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
    )


# == The workshop scenario ==========================================================


def test_two_shells_join_on_b_seen_on_a_and_leave_when_killed(shells: Callable[..., Shell], tmp_path: Path) -> None:
    """Node b joins a member to a group created on a; a sees it join, and leave when b kills it."""
    a_name, b_name = unique_node("a"), unique_node("b")
    a = shells(a_name)
    since = a.mark()
    b = shells(b_name, "--connect", a_name)
    assert f"connected to {a_name}" in b.seen
    a.wait_output(rf"\[{a_name}\] nodeup {b_name}", since)  # a's shell reports the new node by itself
    assert a.eval("nodes()") == [b_name]
    assert b.eval("nodes()") == [a_name]

    assert a.eval("pg2.create('chat')") == "ok"
    assert b.eval("pg2.which_groups()") == ["chat"]  # create reached b's pg2 server too

    b.run("bob = member('bob')")
    assert b.eval("pg2.join('chat', bob)") == "ok"
    assert a.eval("[erlang.node(p) for p in pg2.get_members('chat')]") == [b_name]
    assert a.eval("pg2.get_local_members('chat')") == []
    assert b.eval("pg2.get_local_members('chat') == [bob]") is True

    table = a.run("table()")
    assert "group 'chat' exists" in table
    assert "joined 'chat' 1 time" in table
    assert f"on {b_name}" in a.run("groups()")

    since = b.mark()
    assert a.eval("send_all('chat', ('hello', 42))") == 1
    b.wait_output(rf"\[{b_name}\] bob <[0-9.]+> got: \('hello', 42\)", since)

    assert b.eval("kill('bob')") is True
    a.wait_eval("pg2.get_members('chat')", [])
    assert b.eval("pg2.get_members('chat')") == []
    assert a.eval("pg2.which_groups()") == ["chat"]  # the group outlives its last member

    # Leaving stops the node cleanly: Ctrl-D on b, q() on a.
    since = a.mark()
    assert b.quit("eof") == 0
    assert f"node {b_name} stopped" in b.seen
    a.wait_output(rf"\[{a_name}\] nodedown {b_name}", since)
    assert a.eval("nodes()") == []
    assert a.quit("q()") == 0
    assert (tmp_path / ".repg2_history").is_file()  # readline kept the history


def test_kill_of_another_nodes_name_takes_name_and_node(shells: Callable[..., Shell]) -> None:
    """kill('bob') looks on this node only and says where bob is; kill(('bob', node)) kills b's bob; a pid works too."""
    a_name, b_name = unique_node("a"), unique_node("b")
    a = shells(a_name)
    b = shells(b_name, "--connect", a_name)
    b.run("bob = member('bob')")
    b.run("carol = member('carol')")

    out = a.run("kill('bob')")
    assert "False" in out
    assert (
        f"no process registered as 'bob' on this node; it is registered on {b_name}: kill(('bob', {b_name!r}))" in out
    )
    assert "nor on any connected node" in a.run("kill('nobody')")
    assert f"no process registered as 'nobody' on {b_name}" in a.run(f"kill(('nobody', {b_name!r}))")

    assert a.eval(f"kill(('bob', {b_name!r}))") is True
    b.wait_eval("erlang.whereis('bob')", "undefined")
    assert a.eval(f"kill(rpc.call({b_name!r}, erlang.whereis, ['carol']))") is True  # a remote pid
    b.wait_eval("erlang.whereis('carol')", "undefined")


def test_prompt_counts_evaluated_inputs_and_helpers_are_listed(shells: Callable[..., Shell]) -> None:
    """The prompt is Erlang's ``(node)N>``; h() lists every helper; a multi-line input counts once."""
    name = unique_node("p")
    shell = shells(name)
    listing = shell.run("h()")
    for helper in ("member(", "kill(", "send_all(", "groups()", "table()", "nodes()", "ping(", "q()"):
        assert helper in listing
    assert shell.count == 2
    shell.child.sendline("for i in range(2):")
    shell.child.expect_exact("... ")
    shell.run("    print('line', i)\n")  # the empty line ends the block; that is evaluation 2
    assert "line 1" in shell.seen
    assert shell.eval("node()") == name
    shell.child.send("send_a\t")  # readline completes the helper's name, with its "("
    assert shell.run("'nowhere', 1)").count("('error', ('no_such_group', 'nowhere'))") == 1
    assert shell.eval("self() == erlang.self()") is True
    assert shell.eval(
        "sorted(n for n in ('pg2', 'erlang', 'net_kernel', 'ets', 'global_', 'rpc') if n in globals())"
    ) == [
        "erlang",
        "ets",
        "global_",
        "net_kernel",
        "pg2",
        "rpc",
    ]


# == Failures, each explained in one line ===========================================


def test_wrong_cookie_is_named(shells: Callable[..., Shell]) -> None:
    """A peer with another cookie: connect fails, the shell says the cookie is wrong; the peer logs the refusal."""
    a_name, c_name = unique_node("a"), unique_node("c")
    a = shells(a_name)
    since = a.mark()
    c = shells(c_name, "--connect", a_name, cookie="not-the-workshop-cookie")
    lines = [line for line in c.seen.splitlines() if "cannot connect" in line]
    assert len(lines) == 1, c.seen
    assert "cookie" in lines[0]
    a.wait_output(r"rejected\. Invalid challenge reply", since)  # OTP's own words (dist_util)
    assert c.eval("nodes()") == []
    assert c.eval(f"net_kernel.connect_node({a_name!r})") is False


def test_missing_peer_is_named(shells: Callable[..., Shell]) -> None:
    """ping() of a node that does not run says so, and lists the nodes that do run on that host.

    (A host without a port mapper, and a host cut off, are checked across
    network namespaces in test_netns.py.)
    """
    name = unique_node("a")
    shell = shells(name)
    out = shell.run("ping('nobody@127.0.0.1')")
    assert "'pang'" in out
    lines = [line for line in out.splitlines() if "cannot connect" in line]
    assert len(lines) == 1, out
    assert "no node named 'nobody' runs on 127.0.0.1" in lines[0]
    assert name in lines[0]  # the port mapper's list of nodes there


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "required: COMMAND"),
        (["shell"], "required: --name"),
        (["shell", "--name", "nohost"], "'nohost' is not a node name"),
        (["shell", "--name", "a b@127.0.0.1"], "not a node name"),
        (["shell", "--name", "a@127.0.0.1", "--epmd-port", "70000"], "'70000' is not a TCP port"),
        (["shell", "--name", "a@127.0.0.1", "--port", "x"], "'x' is not a TCP port"),
        (["shell", "--name", "a@127.0.0.1", "--port", "9200-9100"], "greater than the last"),
        (["shell", "--name", "a@127.0.0.1", "--ticktime", "0"], "not a positive number of seconds"),
        (["shell", "--name", "a@127.0.0.1", "--connect", "peer"], "'peer' is not a node name"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["nope"], "invalid choice: 'nope'"),
    ],
)
def test_wrong_arguments_give_one_line_and_status_2(args: list[str], fragment: str) -> None:
    """A wrong argument prints one line on stderr, nothing on stdout, and exits with status 2."""
    result = _cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert lines[0].startswith("python -m repg2")


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("demo", ["--quiet"]),
        ("xref", ["--check", "file"]),
        (
            "shell",
            ["--name", "--cookie", "--connect", "--ticktime", "--epmd-port", "--port", "--verbose", "firewall"],
        ),
    ],
)
def test_help_explains_every_option(command: str, options: list[str]) -> None:
    """``--help`` of each command names each of its options, with a text, and exits 0."""
    result = _cli(command, "--help")
    assert result.returncode == 0
    for option in options:
        assert option in result.stdout.lower()
    assert "show this help message" in result.stdout


def test_node_that_cannot_start_says_why_in_one_line(shells: Callable[..., Shell]) -> None:
    """A taken name, or an address that is not this machine's, stops the shell at once with one line, status 1."""
    name = unique_node("t")
    shells(name)
    taken = _cli("shell", "--name", name, "--cookie", COOKIE)
    assert taken.returncode == 1
    assert taken.stderr.count("\n") == 1
    assert "is taken on this host" in taken.stderr

    elsewhere = _cli("shell", "--name", "x@192.0.2.1", "--cookie", COOKIE)  # TEST-NET-1: never ours
    assert elsewhere.returncode == 1
    assert elsewhere.stderr.count("\n") == 1
    assert "is not an address of this machine" in elsewhere.stderr


def test_port_option_pins_the_node_port(shells: Callable[..., Shell]) -> None:
    """``--port`` makes the node listen on that port (for a firewall); a second node on it cannot start."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    name = unique_node("pinned")
    shell = shells(name, "--port", str(port))
    assert f"listening on port {port}," in shell.seen
    assert shell.eval(f"epmd.port_please({name.split('@')[0]!r}, '127.0.0.1')[0]") == port

    second = _cli("shell", "--name", unique_node("second"), "--cookie", COOKIE, "--port", str(port))
    assert second.returncode == 1
    assert second.stderr.count("\n") == 1
    assert f"node port {port} is in use" in second.stderr


def test_sigterm_stops_the_node_cleanly(shells: Callable[..., Shell]) -> None:
    """SIGTERM (or a closed terminal's SIGHUP) stops the node as q() does: the peer sees nodedown at once."""
    a_name, b_name = unique_node("a"), unique_node("b")
    a = shells(a_name)
    b = shells(b_name, "--connect", a_name)
    since = a.mark()
    b.child.kill(signal.SIGTERM)
    # Generous deadlines, not timings: under coverage and a loaded machine the
    # stop (closing connections, writing coverage data) can take seconds.
    b.wait_output(rf"node {b_name} stopped")
    a.wait_output(rf"\[{a_name}\] nodedown {b_name}", since)
    b.child.expect(pexpect.EOF, timeout=DEADLINE)
    b.child.close()
    assert b.child.exitstatus == 128 + signal.SIGTERM


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="signals to one thread need pthread_kill")
def test_sigterm_caught_by_another_thread_stops_the_node_too(shells: Callable[..., Shell]) -> None:
    """A SIGTERM the kernel hands to a thread other than the REPL's stops the shell as well, without a key press."""
    name = unique_node("t")
    shell = shells(name)
    shell.child.sendline(  # the REPL's main thread will be waiting in raw_input for the next line
        "import signal; from repg2.testing import nodefuns; nodefuns.signal_from_a_worker(signal.SIGTERM, ('raw_input',))"
    )
    shell.wait_output(rf"node {name} stopped")
    shell.child.expect(pexpect.EOF, timeout=DEADLINE)
    shell.child.close()
    assert shell.child.exitstatus == 128 + signal.SIGTERM


# == The helpers and the diagnosis, called in-process ===================================
#
# The shell's helpers are plain methods and functions: called from Python they print
# as usual (no terminal is set), so the cases a pty run would take seconds to reach
# are checked here directly.

import errno  # noqa: E402
import io  # noqa: E402
from typing import Any  # noqa: E402

from support import NOT_A_PORT_MAPPER, fake_port_mapper, free_port, wait_until  # noqa: E402

from repg2 import dist, epmd, erlang, pg2  # noqa: E402
from repg2.erlang import ErlangError, Pid  # noqa: E402
from repg2.tools import shell  # noqa: E402


def test_diagnose_answers_before_probing_when_it_can(node: str) -> None:
    """diagnose names a bad node name, this node itself, and a node blocked here, without asking the network."""
    assert "not a node name" in shell.diagnose("no-at-sign")
    assert shell.diagnose(node) == f"{node} is this node"
    dist.block(["walled@127.0.0.1"])
    try:
        assert (
            shell.diagnose("walled@127.0.0.1") == "walled@127.0.0.1 is blocked on this node (dist.unblock() lifts it)"
        )
    finally:
        dist.unblock()


def test_diagnose_on_a_node_that_is_not_distributed() -> None:
    """diagnose in a process that is no node says so: there is no distribution to connect with."""
    assert shell.diagnose("peer@127.0.0.1").startswith("this node is not distributed")


@pytest.mark.usefixtures("isolated_runtime", "fresh_pg2")
def test_helpers_from_plain_python(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The Erlang shell commands print as c.erl's do: help, flush, regs; a member of a missing group is reported."""
    helpers = shell.Helpers()
    helpers.help()
    assert "Helpers:" in capsys.readouterr().out
    helpers.help(len)
    assert "len(obj" in capsys.readouterr().out  # Python's own help
    erlang.send(erlang.self(), ("hello", 1))
    assert helpers.flush() == "ok"
    assert capsys.readouterr().out == "Shell got ('hello', 1)\n"
    pg2.start()
    alice = helpers.member("alice_shelltest", "no_such_group")
    out = capsys.readouterr().out
    assert "alice_shelltest: pg2.join('no_such_group', ...) -> ('error', ('no_such_group', 'no_such_group'))" in out
    helpers.regs()
    assert f"alice_shelltest          {alice!r}" in capsys.readouterr().out
    with pytest.raises(ErlangError):
        helpers.member("alice_shelltest")  # the name is taken: the new member is killed, the error raised
    assert erlang.whereis("alice_shelltest") == alice
    helpers.groups()
    assert capsys.readouterr().out == f"no groups on {node}\n"


@pytest.mark.usefixtures("isolated_runtime", "fresh_pg2")
def test_kill_and_table_explain_what_they_cannot_do(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    """kill of something that is no process names it; a name registered nowhere, with no peers, says so; table needs pg2."""
    helpers = shell.Helpers()
    assert helpers.kill(42) is False  # type: ignore[arg-type]
    assert "kill takes a pid, a registered name, or (name, node), not 42" in capsys.readouterr().out
    assert helpers.kill("nobody_shelltest") is False
    assert capsys.readouterr().out == f"[{node}] no process registered as 'nobody_shelltest' on this node\n"
    helpers.table()
    assert capsys.readouterr().out == "pg2 is not started on this node (pg2.start())\n"


@pytest.mark.usefixtures("isolated_runtime")
def test_watch_false_stops_the_watcher(node: str) -> None:
    """watch(False) tells the nodeup/nodedown watcher to stop; watch() starts one again."""
    helpers = shell.Helpers()
    assert helpers.watch(True) == "ok"
    watcher = helpers._watcher
    assert isinstance(watcher, Pid)
    assert helpers.watch(False) == "ok"
    wait_until(lambda: not erlang.is_process_alive(watcher), "the watcher to stop")
    helpers.watch()
    assert isinstance(helpers._watcher, Pid) and helpers._watcher != watcher


def test_ping_without_a_terminal_says_why(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    """ping of a node that does not run answers 'pang' and prints the diagnosis."""
    assert shell.Helpers().ping("nobody_shelltest@127.0.0.1") == "pang"
    assert "cannot connect to nobody_shelltest@127.0.0.1: no node named 'nobody_shelltest' runs on" in (
        capsys.readouterr().out
    )


def test_terms_and_rows_in_words() -> None:
    """Lists print element by element; a local_member row and a row of no pg2 shape are said in words."""
    pid = Pid("a@127.0.0.1", 7, 0)
    assert shell._term_text([pid, (1,), "x"]) == f"[{pid!r}, (1,), 'x']"
    assert shell._row_meaning((("local_member", "chat", pid),), {pid: "bob"}) == (
        f"{pid!r} (bob) is a member of 'chat' living on this node"
    )
    assert shell._row_meaning(("what", "is", "this"), {}) == "(a row of an unknown shape)"


def test_start_errors_in_one_line() -> None:
    """Each reason a node cannot start becomes one line naming the cause: host, name, port mapper, or the reason."""
    name = "a@somewhere.invalid"
    assert shell._start_error(name, socket.gaierror(-2, "Name or service not known")) == (
        "cannot resolve host 'somewhere.invalid': Name or service not known"
    )
    assert "the name a@somewhere.invalid is taken" in shell._start_error(name, epmd.DuplicateName("taken"))
    assert "does not work: the port mapper hung up" in shell._start_error(name, "the port mapper hung up")
    assert shell._start_error(name, OSError(errno.EACCES, "Permission denied")) == "[Errno 13] Permission denied"


def test_host_warning_only_for_names_that_resolve_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host name that resolves to a loopback address is warned about; 'localhost' and unresolvable hosts are not."""
    assert shell._host_warning("127.0.0.1") is None  # a loopback address given on purpose
    assert shell._host_warning("localhost") is None

    def resolve(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        if host == "laptop.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.1.1", 0))]
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert "laptop.example resolves to 127.0.1.1 here: other machines cannot reach" in str(
        shell._host_warning("laptop.example")
    )
    assert shell._host_warning("nowhere.example") is None


def test_a_name_problem_from_a_port_that_is_no_port_mapper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before starting, the shell names a port mapper port held by another program."""
    with fake_port_mapper(monkeypatch, [], NOT_A_PORT_MAPPER) as port:
        assert shell._name_problem(f"x{free_port()}@127.0.0.1") == (
            f"what answers on port {port} is not a port mapper "
            "(garbage from the port mapper on 127.0.0.1: b'HT'): use --epmd-port"
        )


def test_no_readline_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Completion and history are set up only when stdin is a terminal."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert shell._setup_readline({}) is None
