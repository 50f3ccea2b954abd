"""A node shell for workshops: ``python -m repg2 shell --name a@HOST --cookie COOKIE``.

The Python counterpart of ``erl -name a@HOST -setcookie COOKIE`` (or
``iex --name``): this OS process becomes the distributed node ``a@HOST``,
starts pg2, optionally connects to a peer (``--connect b@OTHER``), and then
hands the terminal to a Python REPL (:class:`code.InteractiveConsole`) in
which ``pg2``, ``erlang``, ``net_kernel``, ``ets``, ``global_``, ``rpc`` and
``gen_server`` are imported, together with a few workshop helpers. The REPL
thread is itself an Erlang process of the node (``self()`` in the shell), as
the Erlang shell is a process.

Lineage: OTP's ``shell.erl`` and the shell commands of ``c.erl`` (``q()``,
``flush()``, ``nodes()``, ``h()``, ``regs()``); the helpers that are not there
(``member``, ``table``, ``groups``, ``send_all``) are what a pg2 workshop needs
on screen. The prompt is the Erlang shell's, ``(a@127.0.0.1)1>``, numbered
by evaluated input. Tab completion and history (``~/.repg2_history``) come
from ``readline``/``rlcompleter`` where the platform has them.

What a node prints by itself, without being asked: ``nodeup``/``nodedown``
of the other nodes (switch off with ``watch(False)``), the messages a
``member`` receives, and the distribution's warnings (a rejected cookie, a
node that stopped answering). Each line starts with ``[node]`` so that a
projected screen of several shells stays readable; a line that arrives while
you type is printed above your prompt, and the prompt and your half-typed
line are drawn again below it.

When a connection fails, the shell says why in one line: no port mapper on
that host (no node there, wrong ``ERL_EPMD_PORT``, or a firewall), no node
of that name there, a node port that does not answer (firewall: pin the
port with ``--port``), or a node that answered and refused us (a different
cookie). It finds out by asking the port mapper and dialling the port
itself, since ``net_kernel:connect_node/1`` only answers ``false``.

Differences from ``erl``: expressions are Python, so the shell's variables are
Python's (rebindable, no ``f()``); there is no job control (``^G``); ``q()``
stops the node and the OS process together, as ``init:stop()`` does.
"""

from __future__ import annotations

import atexit
import code
import contextlib
import errno
import ipaddress
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repg2 import dist, epmd, erlang, ets, gen_server, global_, net_kernel, pg, pg2, rpc
from repg2.erlang import Pid
from repg2.tools import reach

__all__ = ["HISTORY_FILE", "Helpers", "diagnose", "member_loop", "registered_here", "run", "validate_node_name"]

log = logging.getLogger("repg2.tools.shell")

HISTORY_FILE = ".repg2_history"  # in the home directory, like ~/.erlang-history
HISTORY_LENGTH = 1000  # lines kept: enough for a day of workshop, small to load

# The one terminal of this OS process. Set by run(); None when the helpers
# are used from plain Python (then they print as usual).
_terminal: _Terminal | None = None

# The signals that stop the shell as q() does (SIGHUP: the terminal closed), where the platform has them.
_EXIT_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)
_exiting = threading.Event()  # set by the first exit signal: a forwarded copy of it is then dropped
_FORWARD_PAUSE = 0.2  # seconds between two exit signals forwarded to the main thread while it has not reacted
_FORWARD_TRIES = 50  # forwarded at most this many times (10 s): then the signal is the main thread's to handle


# == Printing while the user types ==================================================


class _Terminal:
    """The shell's stdout: prints lines from any thread without wrecking the line being typed.

    It stands in for ``sys.stdout`` while the shell runs, so the REPL's own
    output and the lines of other processes go through one ``lock`` and
    never mix inside a line. ``prompt`` is the prompt shown while the REPL
    waits in ``input()``, else None; ``at_line_start`` says whether the
    last write ended a line (if not, a result is being printed and a
    process's line starts on a new line of its own).
    """

    def __init__(self, stream: Any, readline_module: Any | None) -> None:
        self.stream = stream
        self.lock = threading.Lock()
        self.prompt: str | None = None
        self.at_line_start = True
        self.readline = readline_module
        self.redraw = stream.isatty()

    def write(self, text: str) -> int:
        """Write the REPL's own output (results, prints of the shell process)."""
        with self.lock:
            written: int = self.stream.write(text)
            if text:
                self.at_line_start = text.endswith("\n")
        return written

    def flush(self) -> None:
        """Flush the real stdout."""
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        """Everything else (``fileno``, ``isatty``, ``encoding``...) is the real stdout's."""
        return getattr(self.stream, name)

    def say(self, text: str) -> None:
        """Print one line (or several); redraw the prompt and the half-typed input under it."""
        with self.lock:
            if self.redraw and self.prompt is not None:
                typed = self.readline.get_line_buffer() if self.readline is not None else ""
                # \r and "erase to end of line": the new text replaces the prompt line.
                self.stream.write(f"\r\x1b[K{text}\n{self.prompt}{typed}")
            else:
                self.stream.write(text + "\n" if self.at_line_start else "\n" + text + "\n")
                self.at_line_start = True
            self.stream.flush()


def say(text: str) -> None:
    """Print a line from any process of this node, prefixed with the node's name."""
    line = f"[{erlang.node()}] {text}"
    if _terminal is None:
        print(line, flush=True)
    else:
        _terminal.say(line)


class _LogHandler(logging.Handler):
    """Route the package's log records to the terminal, one ``[node]`` line each.

    ``muted`` holds node names being diagnosed by :meth:`Helpers.ping`: the
    distribution's own "connection failed" warning for them is dropped, as
    the shell prints its own explanation instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.muted: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop records that the shell reports itself."""
        if record.name == "repg2.dist" and str(record.msg).startswith("connection to node") and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            if args[0] in self.muted:
                return False
        return not (record.name == "repg2.net_kernel" and str(record.msg).startswith("cannot start node"))

    def emit(self, record: logging.LogRecord) -> None:
        """Print a record as ``[node] warning: text``."""
        try:
            say(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - a log line must never break the shell
            self.handleError(record)


# == Processes the shell starts =====================================================


def member_loop(label: str) -> None:
    """Be a dummy group member: print every message received, for ever."""
    me = erlang.self()
    while True:
        msg = erlang.receive()
        say(f"{label} {me!r} got: {msg!r}")


def _node_watcher() -> None:
    """Print ``nodeup``/``nodedown`` for every other node until told to stop."""
    net_kernel.monitor_nodes(True)
    while True:
        match erlang.receive():
            case (("nodeup" | "nodedown") as event, node):
                say(f"{event} {node}")
            case "stop":
                net_kernel.monitor_nodes(False)
                return
            case _:
                pass


# == Why a connection failed ========================================================


def diagnose(node: str) -> str:
    """Say in one line why this node cannot connect to ``node``.

    Asks the peer host's port mapper for the node, then dials the node's
    port (:func:`repg2.tools.reach.probe`). If both answer, the node
    refused our handshake, which with a correct name means a different
    cookie.
    """
    try:
        dist.split_node(node)
    except ValueError as exc:
        return str(exc)
    if node == erlang.node():
        return f"{node} is this node"
    current = dist.current()
    if current is None:
        return "this node is not distributed (net_kernel.start was not called, or the node stopped)"
    if node in current.blocked():
        return f"{node} is blocked on this node (dist.unblock() lifts it)"
    diagnosis, _fix = reach.explain(node, reach.probe(node))
    return diagnosis


# == The helpers in the shell's namespace ============================================


class Helpers:
    """The workshop commands of the shell, bound to one terminal.

    Every public method becomes a global of the shell, under its own name.
    """

    def __init__(self, log_handler: _LogHandler | None = None) -> None:
        self._log_handler = log_handler
        self._watcher: Pid | None = None

    # -- Erlang shell commands ----------------------------------------------------

    def h(self) -> None:
        """List the helpers of the shell.

        Erlang: c:help/0
        """
        print(banner_help())

    def help(self, *args: Any) -> None:
        """Without arguments, list the shell's helpers; with one, Python's own ``help``.

        Erlang: c:help/0
        """
        if args:
            import builtins

            builtins.help(*args)
        else:
            self.h()

    def q(self) -> None:
        """Stop this node and leave the shell.

        Erlang: c:q/0 (init:stop())
        """
        raise SystemExit(0)

    def node(self) -> str:
        """Return this node's name."""
        return erlang.node()

    def nodes(self) -> list[str]:
        """Return the nodes this node is connected to."""
        return erlang.nodes()

    def self(self) -> Pid:
        """Return the pid of the shell process itself."""
        return erlang.self()

    def flush(self) -> str:
        """Print and drop every message in the shell's mailbox.

        Erlang: c:flush/0 (shell_default:flush/0)
        """
        for msg in erlang.flush():
            print(f"Shell got {msg!r}")
        return "ok"

    def regs(self) -> None:
        """Print this node's registered processes.

        Erlang: c:regs/0
        """
        for name in sorted(erlang.registered()):
            print(f"  {name:<24} {erlang.whereis(name)!r}")

    def ping(self, node: str) -> str:
        """Connect to ``node``: ``'pong'`` if connected, else print why and return ``'pang'``.

        Erlang: net_adm:ping/1
        """
        if self._log_handler is not None:
            self._log_handler.muted.add(node)
        try:
            connected = net_kernel.connect_node(node)
        finally:
            if self._log_handler is not None:
                self._log_handler.muted.discard(node)
        if connected is True:
            return "pong"
        say(f"cannot connect to {node}: {diagnose(node)}")
        return "pang"

    # -- Workshop helpers -----------------------------------------------------------

    def member(self, name: str | None = None, *groups: Any) -> Pid:
        """Spawn a dummy member that prints what it receives; register it as ``name``; join ``groups``.

        ``member("alice", "chat")`` is ``alice = spawn(...)``,
        ``register(alice, Pid)``, ``pg2:join(chat, Pid)``. A group that does
        not exist is reported, not created: creating is a lesson of its own.
        """
        label = name or "member"
        pid = erlang.spawn(member_loop, label)
        if name is not None:
            try:
                erlang.register(name, pid)
            except erlang.ErlangError:
                erlang.exit(pid, "kill")
                raise
        for group in groups:
            result = pg2.join(group, pid)
            if result != "ok":
                say(f"{label}: pg2.join({group!r}, ...) -> {result!r}")
        return pid

    def kill(self, who: Pid | str | tuple[str, str], reason: Any = "kill") -> bool:
        """Send an exit signal (default ``'kill'``) to a pid, a name registered here, or ``(name, node)``.

        Erlang's ``exit/2`` takes a pid only, and ``whereis/1`` looks on the
        calling node only: ``kill('alice')`` finds the ``alice`` of this
        laptop. For a name on another node, ``kill(('alice', node))`` asks
        that node's ``whereis`` first (an ``rpc``), as ``{Name, Node}``
        addresses a registered process for a send. When a bare name is not
        registered here, the reply says which connected nodes have it.
        """
        match who:
            case Pid():
                pid: Any = who
            case str():
                pid = erlang.whereis(who)
                if not isinstance(pid, Pid):
                    say(f"no process registered as {who!r} on this node{_registered_elsewhere(who)}")
                    return False
            case (str() as name, str() as node):
                pid = erlang.whereis(name) if node == erlang.node() else rpc.call(node, erlang.whereis, [name], 5.0)
                if not isinstance(pid, Pid):
                    why = "" if pid == "undefined" else f" ({pid!r})"
                    say(f"no process registered as {name!r} on {node}{why}")
                    return False
            case _:
                say(f"kill takes a pid, a registered name, or (name, node), not {who!r}")
                return False
        return erlang.exit(pid, reason)

    def send_all(self, group: Any, msg: Any) -> int | Any:
        """Send ``msg`` to every member of ``group``; return how many were sent to."""
        members = pg2.get_members(group)
        if not isinstance(members, list):
            return members
        for pid in members:
            erlang.send(pid, msg)
        return len(members)

    def groups(self) -> None:
        """Print every group this node knows, with its members and where they live."""
        names = _local_names()
        which = pg2.which_groups()
        if not which:
            print(f"no groups on {erlang.node()}")
        for group in which:
            members = pg2.get_members(group)
            if not isinstance(members, list):
                continue
            print(f"{group!r}: {len(members)} member{'s' * (len(members) != 1)}")
            for pid in members:
                where = "here" if pid.is_local() else pid.node
                print(f"    {_pid_text(pid, names):<28} on {where}")

    def table(self) -> None:
        """Print this node's ``pg2_table``, one row a line, with what each row means."""
        if ets.whereis(pg2.TABLE) == "undefined":
            print("pg2 is not started on this node (pg2.start())")
            return
        rows = ets.tab2list(pg2.TABLE)
        names = _local_names()
        print(f"pg2_table on {erlang.node()}: {len(rows)} rows (ordered_set, in key order)")
        lines = [(_row_text(row), _row_meaning(row, names)) for row in rows]
        width = max((len(text) for text, _ in lines), default=0)
        for text, meaning in lines:
            print(f"  {text:<{width}}   {meaning}")

    def watch(self, on: bool = True) -> str:
        """Print ``nodeup``/``nodedown`` events as they happen (``watch(False)`` stops)."""
        if on and (self._watcher is None or not erlang.is_process_alive(self._watcher)):
            self._watcher = erlang.spawn(_node_watcher)
        elif not on and self._watcher is not None:
            erlang.send(self._watcher, "stop")
            self._watcher = None
        return "ok"

    def namespace(self) -> dict[str, Any]:
        """Return the shell's globals: the OTP modules and every helper."""
        names: dict[str, Any] = {
            "__name__": "__console__",
            "__doc__": None,
            "pg2": pg2,
            "pg": pg,
            "erlang": erlang,
            "net_kernel": net_kernel,
            "ets": ets,
            "global_": global_,
            "rpc": rpc,
            "gen_server": gen_server,
            "dist": dist,
            "epmd": epmd,
        }
        for attr in HELPERS:
            names[attr] = getattr(self, attr)
        return names


# The helpers, in the order h() lists them: name -> (how to call it, what it does).
HELPERS: dict[str, tuple[str, str]] = {
    "h": ("h() / help()", "this list (help(obj) is Python's help)"),
    "node": ("node()", "this node's name"),
    "nodes": ("nodes()", "the connected nodes"),
    "ping": ("ping('b@HOST')", "connect: 'pong', or 'pang' and why"),
    "self": ("self()", "the shell's own pid"),
    "member": ("member('bob', 'chat')", "spawn a member that prints what it gets, register it, join groups"),
    "kill": (
        "kill('bob') / kill(pid) / kill(('bob', node))",
        "exit signal 'kill' (kill(pid, reason) for another reason)",
    ),
    "send_all": ("send_all('chat', msg)", "send msg to every member of a group"),
    "groups": ("groups()", "every group and its members"),
    "table": ("table()", "this node's pg2_table, row by row"),
    "watch": ("watch(False)", "stop printing nodeup/nodedown (watch() resumes)"),
    "flush": ("flush()", "print and drop the shell's own messages"),
    "regs": ("regs()", "registered processes of this node"),
    "q": ("q() / Ctrl-D", "stop the node and leave"),
}


def banner_help() -> str:
    """Return the help text: the modules at hand and the helpers."""
    lines = [
        "Modules: pg2, erlang, net_kernel, ets, global_, rpc, gen_server, dist",
        "  e.g. pg2.create('chat'); pg2.join('chat', pid); pg2.get_members('chat'); pg2.which_groups()",
        "Helpers:",
    ]
    width = max(len(usage) for usage, _ in HELPERS.values())
    lines += [f"  {usage:<{width}}  {what}" for usage, what in HELPERS.values()]
    return "\n".join(lines)


def _local_names() -> dict[Pid, str]:
    """Map the pids of this node's registered processes to their names."""
    names: dict[Pid, str] = {}
    for name in erlang.registered():
        pid = erlang.whereis(name)
        if isinstance(pid, Pid):
            names[pid] = name
    return names


def registered_here(name: str) -> tuple[str, Pid | str]:
    """Return ``(this node, whereis(name))``; run on other nodes by :meth:`Helpers.kill`."""
    return erlang.node(), erlang.whereis(name)


def _registered_elsewhere(name: str) -> str:
    """Return ``"; ... kill(('alice', 'b@host'))"`` naming the connected nodes where ``name`` is registered."""
    if not erlang.nodes():
        return ""
    replies, _bad = rpc.multicall(erlang.nodes(), registered_here, [name], 2.0)
    holders = sorted(
        node for node, pid in (r for r in replies if isinstance(r, tuple) and len(r) == 2) if pid != "undefined"
    )
    if not holders:
        return " nor on any connected node"
    return f"; it is registered on {', '.join(holders)}: kill(({name!r}, {holders[0]!r}))"


def _term_text(term: Any) -> str:
    """Show a term as Python shows it, but with short refs.

    A pid prints as its repr (``<b@10.0.0.2.8.0>``: node, number, serial); a
    ref only by its lowest word (``#Ref<22>``), which tells apart the refs
    of one session on a projected screen.
    """
    match term:
        case Pid():
            return repr(term)
        case erlang.Ref():  # #Ref<a@host.0.0.22>: keep the number
            return "#Ref<" + repr(term).rsplit(".", 1)[-1]
        case tuple():
            inner = ", ".join(_term_text(t) for t in term)
            return f"({inner},)" if len(term) == 1 else f"({inner})"
        case list():
            return "[" + ", ".join(_term_text(t) for t in term) + "]"
        case _:
            return repr(term)


def _pid_text(pid: Any, names: dict[Pid, str]) -> str:
    """Show a pid with its registered name, if it has one here."""
    name = names.get(pid) if isinstance(pid, Pid) else None
    return f"{_term_text(pid)} ({name})" if name else _term_text(pid)


def _row_text(row: tuple[Any, ...]) -> str:
    """Show a pg2_table row as the plain tuple ETS holds."""
    return _term_text(tuple(row))


def _row_meaning(row: tuple[Any, ...], names: dict[Pid, str]) -> str:
    """Say in words what a pg2_table row records (see the table block in repg2.pg2)."""
    match tuple(row):
        case (("group", group),):
            return f"group {group!r} exists"
        case (("member", group, pid), counter):
            return f"{_pid_text(pid, names)} joined {group!r} {counter} time{'s' * (counter != 1)}"
        case (("local_member", group, pid),):
            return f"{_pid_text(pid, names)} is a member of {group!r} living on this node"
        case (("pid", pid, group),):
            return f"{_pid_text(pid, names)} is in {group!r} (reverse index, for its 'DOWN')"
        case (("ref", Pid() as pid), rpid, mref, counter):
            by = "the pg2 server" if rpid == pid else f"helper {_term_text(rpid)}"
            return f"{_pid_text(pid, names)} is monitored by {by} ({_term_text(mref)}); {counter} join(s) in all"
        case (("ref", mref), pid):
            return f"monitor {_term_text(mref)} watches {_pid_text(pid, names)}"
        case _:
            return "(a row of an unknown shape)"


# == Readline: completion and history ================================================


def _setup_readline(namespace: dict[str, Any]) -> Any | None:
    """Turn on tab completion over the shell's names and a persistent history; return readline.

    Returns None where there is no readline (Windows without pyreadline,
    or input that is not a terminal).
    """
    if not sys.stdin.isatty():
        return None
    try:
        import readline
        import rlcompleter
    except ImportError:
        return None
    readline.set_completer(rlcompleter.Completer(namespace).complete)
    if "libedit" in (readline.__doc__ or ""):  # macOS's readline is libedit: other syntax
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    history = Path.home() / HISTORY_FILE
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    readline.set_history_length(HISTORY_LENGTH)

    def save() -> None:
        """Write the history file."""
        with contextlib.suppress(OSError):
            readline.write_history_file(history)

    atexit.register(save)
    return readline


# == The REPL ======================================================================


class _Prompt:
    """The prompt ``(a@127.0.0.1)1>``; Python reads ``sys.ps1`` through ``str``."""

    def __init__(self, console: _Console, more: bool) -> None:
        self.console = console
        self.more = more

    def __str__(self) -> str:
        first = f"({erlang.node()}){self.console.count}> "
        return " " * (len(first) - 4) + "... " if self.more else first


class _Console(code.InteractiveConsole):
    """Python's REPL, numbering evaluated inputs and telling the terminal when it waits."""

    def __init__(self, namespace: dict[str, Any], terminal: _Terminal) -> None:
        super().__init__(namespace, filename="<shell>")
        self.count = 1
        self.terminal = terminal

    def raw_input(self, prompt: object = "") -> str:
        """Read a line; while waiting, other threads' prints redraw this prompt."""
        text = str(prompt)
        self.terminal.prompt = text
        try:
            return input(text)
        finally:
            self.terminal.prompt = None
            self.terminal.at_line_start = True  # the user's Enter ended the prompt's line

    def push(self, line: str, filename: Any = None, _symbol: Any = None) -> bool:
        """Add a line; count one evaluation when a complete input has run."""
        had_input = bool(self.buffer) or bool(line.strip())
        more = super().push(line)
        if not more and had_input:
            self.count += 1
        return more


# == Starting, connecting, stopping =================================================


def validate_node_name(name: str) -> str:
    """Return ``name`` if it is ``alive@host``, else raise ``ValueError`` saying what is wrong."""
    if "@" not in name:
        raise ValueError(f"{name!r} is not a node name: write NAME@HOST, e.g. {name}@127.0.0.1")
    dist.split_node(name)  # raises ValueError naming the offending name
    return name


def _host_warning(host: str) -> str | None:
    """Warn when the node's host makes it reachable from this machine only."""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None  # said on purpose: a node for this machine only
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
    except OSError:
        return None  # net_kernel.start reports it
    address = infos[0][4][0]
    if ipaddress.ip_address(address).is_loopback and host != "localhost":
        return (
            f"{host} resolves to {address} here: other machines cannot reach this node; "
            "use this machine's LAN address in --name"
        )
    return None


def _name_problem(name: str) -> str | None:
    """Say why ``name`` cannot start, before ``net_kernel.start`` would retry for seconds; else None.

    Two failures that the start would only report after its setup time:
    the name is registered with this host's port mapper already, or what
    answers on the port mapper port is some other program.
    """
    alive, _host = dist.split_node(name)
    try:
        port = reach.lookup("127.0.0.1", alive)
    except OSError as exc:
        if exc.errno is None:  # an answer, but not a port mapper's
            return f"what answers on port {reach.mapper_port()} is not a port mapper ({exc}): use --epmd-port"
        return None  # no port mapper yet: the node starts one
    if port is not None:
        return f"the name {alive!r} is taken on this host: a running node registered it (port {port})"
    return None


def _start_error(name: str, reason: Any) -> str:
    """Turn the reason ``net_kernel.start`` failed into one line with a hint."""
    _alive, host = dist.split_node(name)
    text = str(reason)
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve host {host!r}: {reason.strerror}"
    if isinstance(reason, OSError) and reason.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine (see `ip addr`): the node listens on the host in its name"
    if isinstance(reason, OSError) and reason.errno == errno.EADDRINUSE:
        first, last = dist.listen_port_range()
        ports = f"port {first} is" if first == last else f"ports {first}-{last} are"
        return f"node {ports} in use by other programs or nodes: choose another --port, or a wider range"
    if isinstance(reason, epmd.DuplicateName):
        return f"the name {name} is taken: another node with that name runs on this host"
    if "port mapper" in text:
        return f"the port mapper on port {reach.mapper_port()} does not work: {text} (another program on that port?)"
    return text


def run(
    name: str,
    cookie: str | None = None,
    connect: list[str] | None = None,
    ticktime: float | None = None,
    banner: bool = True,
) -> int:
    """Start the node ``name``, connect it, run the REPL; stop the node when it ends.

    Returns:
        The exit status: 0 after ``q()`` or Ctrl-D, N after ``exit(N)``,
        128 + the signal's number after SIGTERM or SIGHUP, 1 when the node
        cannot start.
    """
    global _terminal
    handler = _LogHandler()
    package_log = logging.getLogger("repg2")
    package_log.addHandler(handler)
    if package_log.level == logging.NOTSET:
        package_log.setLevel(logging.WARNING)
    package_log.propagate = False

    _alive, host = dist.split_node(name)
    warning = _host_warning(host)
    status = 0
    problem = _name_problem(name)
    started = net_kernel.start(name, cookie=cookie, ticktime=ticktime) if problem is None else ("error", problem)
    if started[0] != "ok":
        problem = problem or _start_error(name, started[1])
        print(f"python -m repg2 shell: cannot start node {name}: {problem}", file=sys.stderr)
        package_log.removeHandler(handler)
        return 1
    _exiting.clear()
    for signum in _EXIT_SIGNALS:
        signal.signal(signum, _exit_on_signal)
    stop_forwarding = _forward_exit_signals()
    try:
        pg2.start()
        helpers = Helpers(handler)
        namespace = helpers.namespace()
        readline_module = _setup_readline(namespace)
        _terminal = _Terminal(sys.stdout, readline_module)
        sys.stdout = _terminal  # a file-like stand-in: see _Terminal
        helpers.watch(True)
        if warning:
            say(f"warning: {warning}")
        if banner:
            port = reach.lookup("127.0.0.1", _alive)
            print(
                f"RePy2 node {name} (listening on port {port}, port mapper port {reach.mapper_port()}, "
                f"net_ticktime {net_kernel.get_net_ticktime()} s)\n"
                "h() lists the helpers; q() or Ctrl-D stops the node."
            )
        for peer in connect or []:
            if helpers.ping(peer) == "pong":
                say(f"connected to {peer}")
        console = _Console(namespace, _terminal)
        sys.ps1 = _Prompt(console, more=False)
        sys.ps2 = _Prompt(console, more=True)
        try:
            console.interact(banner="", exitmsg="")
        except SystemExit as exc:  # q(), exit(N), or a signal: the status it carries
            status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        _stop(name)
        stop_forwarding()
        if _terminal is not None:
            sys.stdout = _terminal.stream
        _terminal = None
        package_log.removeHandler(handler)
    return status


def _exit_on_signal(signum: int, frame: Any) -> None:
    """Turn SIGTERM or SIGHUP (the terminal closed) into a normal exit, so the node stops cleanly.

    Only the first one: a copy sent on by :func:`_forward_exit_signals`
    after it must not interrupt the stop.
    """
    if _exiting.is_set():
        return
    _exiting.set()
    raise SystemExit(128 + signum)


def _forward_exit_signals() -> Callable[[], None]:
    """Make SIGTERM and SIGHUP wake the main thread, whichever thread receives them; return the undo.

    The kernel hands a signal sent to a process to any one of its threads
    (a node has several). Python runs the handler in the main thread, but
    only when that thread next runs Python code, and the REPL's main thread
    sleeps in readline's ``select()`` until a key is pressed: a SIGTERM
    caught by another thread would stop the node at the next key press, or
    never. Python writes the number of each signal it catches to the
    *wakeup fd*; a thread reading it sends the exit signal on to the main
    thread alone (``pthread_kill``), which interrupts its ``select()``, and
    again every ``_FORWARD_PAUSE`` seconds until the handler has run.
    """
    if not hasattr(signal, "pthread_kill"):  # Windows delivers signals to the main thread only
        return lambda: None
    reader, writer = socket.socketpair()
    writer.setblocking(False)  # set_wakeup_fd demands it: a signal handler must never block
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    main = threading.main_thread().ident
    assert main is not None

    def forward() -> None:
        """Send the first exit signal caught on to the main thread until its handler has run."""
        while True:
            try:
                caught = reader.recv(64)
            except OSError:
                return
            if not caught:
                return  # the undo closed the other end
            exits = [signum for signum in caught if signum in _EXIT_SIGNALS]
            if exits:
                # Again until the handler has run: under load, one forwarded signal
                # was seen to leave the main thread asleep in readline (why, inside
                # readline, was not pinned down); a copy after it has always woken it.
                for attempt in range(_FORWARD_TRIES):
                    if _exiting.wait(_FORWARD_PAUSE if attempt else 0):
                        return
                    signal.pthread_kill(main, exits[0])
                return

    forwarder = threading.Thread(target=forward, daemon=True, name="shell-signals")
    forwarder.start()

    def undo() -> None:
        """Give the wakeup fd back and end the forwarding thread."""
        signal.set_wakeup_fd(previous)
        writer.close()
        forwarder.join(timeout=5)
        reader.close()

    return undo


def _stop(name: str) -> None:
    """Stop the node: every connection goes down and the port mapper forgets the name.

    Erlang: init:stop/0 (as far as the distribution goes)
    """
    net_kernel.stop()
    print(f"node {name} stopped", flush=True)
