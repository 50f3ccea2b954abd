"""The day-before check of a workshop laptop: ``python -m repg2 preflight --connect teacher@ADDR``.

Everything that can stop a laptop from joining the workshop's cluster,
checked in the order a connection needs it, one line per check (``OK``,
``FAIL`` or ``SKIP``), each failure with its diagnosis and a ``fix:`` line.
The exit status is 0 when nothing failed, 1 otherwise. The teacher runs it
on every laptop the day before, against a node of their own
(``python -m repg2 shell --name teacher@ADDR``, nothing else on that side):

``python``
    The interpreter is 3.11 or newer (``python -m repg2`` refuses older
    ones before anything else, with the same advice).
``address``
    The host of the node name is an IPv4 address of this machine that
    the teacher can dial: not loopback when the teacher is elsewhere, and
    the address the route to the teacher leaves from. The line lists the
    machine's non-loopback IPv4 addresses, so a wrong ``--name`` can be
    corrected on the spot.
``port mapper``
    A port mapper answers on this machine's port mapper port (the node
    starts one if none runs), it registered the node, and it answers on
    the LAN address too, where the other laptops will ask.
``listen port``
    The node could bind its port (the first free one of ``--port
    MIN-MAX``) on the LAN address and accepts connections on it.
``teacher``
    ``net_kernel.connect_node`` to the teacher's node. When it fails, the
    teacher's host is probed from here (:mod:`repg2.tools.reach`): nothing
    listens on its port mapper port (refused), the address does not
    answer (timeout, no route), its port mapper does not know that name,
    its node port is closed.
``cookie``
    The teacher accepted our cookie. A refusal by a node whose port
    mapper and port both answered is a wrong cookie, told apart from a
    closed port and from an unknown name by the probe above.
``connect back``
    The teacher's node connects *to us*: over the connection just made,
    this node asks the teacher (``rpc.cast``) to run :func:`connect_back`,
    which drops that connection and dials this node afresh. Only a laptop
    whose firewall lets the port mapper port and the node port in passes;
    a check from this laptop alone cannot tell, since outgoing connections
    pass most firewalls. When it fails, :func:`probe_here` runs on the
    teacher (``rpc.call``) and says which of the two ports is closed.

The teacher's shell shows each laptop arriving and leaving (``nodeup``,
``nodedown``) while it is checked.

No Erlang original: the nearest is ``net_adm:ping/1`` and a look at
``epmd -names``.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from repg2 import erlang, net_kernel, rpc
from repg2.erlang import TIMEOUT, Pid
from repg2.tools import reach
from repg2.tools.cli import python_problem
from repg2.tools.shell import _start_error

__all__ = ["Check", "Preflight", "connect_back", "ipv4_addresses", "probe_here", "route_source", "run"]

DEFAULT_ALIVE = "preflight"  # the node name's part before the @ when --name gives none
SETUP_TIME = 7.0  # seconds for a connection setup: OTP's net_setuptime default
CONNECT_BACK_TIMEOUT = 15.0  # seconds: the teacher's setup time (7 s by default), its probes, a margin
NO_ROUTE_PROBE = "192.0.2.1"  # TEST-NET-1: never reached; connecting a UDP socket to it only picks the default route


# == On the teacher's node =========================================================


def connect_back(node: str, reply_to: Pid, tag: str) -> None:
    """Drop the connection to ``node``, dial it afresh, and tell ``reply_to`` if that worked.

    Runs on the teacher's node (``rpc.cast`` from the laptop being
    checked). The connection the request came over is the laptop's own,
    outgoing one; this dial is incoming for the laptop, through its
    firewall. On failure nothing is sent: the laptop's wait runs out.
    """
    erlang.disconnect_node(node)
    if net_kernel.connect_node(node) is True:
        erlang.send(reply_to, (tag, erlang.node()))


def probe_here(node: str) -> tuple[Any, ...]:
    """Probe ``node`` from this node (the teacher's) and return the finding as a plain tuple."""
    return tuple(reach.probe(node))


# == Addresses ====================================================================


def route_source(target: str) -> str | None:
    """Return the address of this machine that packets to ``target`` leave from; None without a route.

    Connecting a UDP socket sends nothing; it only asks the routing table.
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((target, 9))  # the discard port: nothing is sent anyway
            address: str = sock.getsockname()[0]
            return address
    except OSError:
        return None


def _listed_by_system() -> list[str]:
    """Return the IPv4 addresses the system's own tool lists (``ip``, ``ifconfig`` or ``ipconfig``).

    The standard library has no portable way to list interfaces; these
    three tools ship with Linux, macOS and Windows.
    """
    if sys.platform == "win32":
        command, pattern = ["ipconfig"], r"IPv4[^:]*:\s*([0-9.]+)"
    elif shutil.which("ip") is not None:
        command, pattern = ["ip", "-4", "-o", "addr", "show"], r"\binet\s+([0-9.]+)/"
    else:
        command, pattern = ["ifconfig"], r"\binet\s+(?:addr:)?([0-9.]+)"
    try:
        text = subprocess.run(command, capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return re.findall(pattern, text)


def ipv4_addresses() -> list[str]:
    """Return this machine's IPv4 addresses that other machines might reach: no loopback, no link-local."""
    found = set(_listed_by_system())
    with contextlib.suppress(OSError):  # a host name that does not resolve (gaierror)
        found.update(str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    default = route_source(NO_ROUTE_PROBE)
    if default:
        found.add(default)
    usable = []
    for text in found:
        try:
            address = ipaddress.IPv4Address(text)
        except ValueError:
            continue
        if not (address.is_loopback or address.is_link_local or address.is_unspecified):
            usable.append(address)
    return [str(a) for a in sorted(usable)]


def _resolve(host: str) -> str | None:
    """Return the first IPv4 address of ``host``, or None if it does not resolve."""
    try:
        return str(socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0])
    except (OSError, IndexError):
        return None


def _is_ours(address: str) -> bool:
    """Say whether this machine has ``address`` (a socket can be bound to it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError as exc:
            return exc.errno != errno.EADDRNOTAVAIL
    return True


def _loopback(address: str) -> bool:
    """Say whether ``address`` is a loopback address."""
    return ipaddress.IPv4Address(address).is_loopback


# == What to do, per platform ========================================================


def _open_ports_fix(ports: str) -> str:
    """Say how to let TCP ``ports`` in through this machine's firewall."""
    if sys.platform == "win32":
        return (
            "answer 'Allow' for Python on private networks, or as administrator: netsh advfirewall firewall add "
            f"rule name=repg2 dir=in action=allow protocol=TCP localport={ports}"
        )
    if sys.platform == "darwin":
        return "System Settings > Network > Firewall > Options: allow incoming connections for Python"
    ufw = ports.replace("-", ":")
    return (
        f"let TCP {ports} in: sudo ufw allow {ufw}/tcp (Ubuntu), or sudo firewall-cmd --add-port={ports}/tcp (Fedora)"
    )


# == The checks ========================================================================


@dataclass
class Check:
    """One line of the report: a check's name, ``OK``/``FAIL``/``SKIP``, what was found, what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        """Return the check as printed: its line, and a ``fix:`` line under a failure."""
        text = [f"{self.status:<5} {self.name:<13} {self.detail}"]
        if self.fix:
            text.append(f"{'':<5} {'':<13} fix: {self.fix}")
        return text


@dataclass
class Preflight:
    """The pre-flight of one laptop: its settings, and the checks as they are made."""

    alive: str
    host: str  # the host of the node name, as given
    cookie: str | None
    teacher: str | None
    ports: tuple[int, int] | None  # --port MIN-MAX, None for any
    say: Callable[[str], None] = print
    checks: list[Check] = field(default_factory=list)
    address: str | None = None  # the host's IPv4 address, once the address check resolved it
    port: int | None = None  # the node's listen port, once it started

    @property
    def node(self) -> str:
        """This node's name."""
        return f"{self.alive}@{self.host}"

    def record(self, name: str, status: str, detail: str, fix: str = "") -> bool:
        """Print one check; return True if it passed."""
        check = Check(name, status, detail, fix)
        self.checks.append(check)
        for line in check.lines():
            self.say(line)
        return status == "OK"

    # -- The checks, in the order a connection needs them --------------------------

    def check_python(self) -> bool:
        """Check the interpreter's version."""
        version = ".".join(map(str, sys.version_info[:3]))
        problem = python_problem(sys.version_info)
        if problem:
            return self.record("python", "FAIL", f"Python {version} ({sys.executable})", problem)
        return self.record("python", "OK", f"Python {version} ({sys.executable}), {platform.system() or sys.platform}")

    def check_address(self) -> bool:
        """Check that the node name's host is an address of this machine that the teacher can dial."""
        mine = ipv4_addresses()
        listed = f"this machine's IPv4 addresses: {', '.join(mine) or 'none'}"
        suggestion = self._suggested_address(mine)
        use = f"use --name {self.alive}@{suggestion}" if suggestion else "join the workshop's network first"
        address = _resolve(self.host)
        if address is None:
            return self.record("address", "FAIL", f"cannot resolve {self.host!r} ({listed})", use)
        if not _is_ours(address):
            return self.record("address", "FAIL", f"{self.host} is not an address of this machine ({listed})", use)
        self.address = address
        teacher_address = self._teacher_address()
        remote_teacher = teacher_address is not None and not _loopback(teacher_address)
        if _loopback(address):
            if remote_teacher:
                return self.record(
                    "address", "FAIL", f"{self.host} is loopback: the teacher's node cannot dial it ({listed})", use
                )
            return self.record(
                "address", "OK", f"{self.host} reaches this machine only (for the workshop, one of {listed})"
            )
        if remote_teacher:
            assert teacher_address is not None
            source = route_source(teacher_address)
            if source is not None and source != address:
                return self.record(
                    "address",
                    "FAIL",
                    f"the route to the teacher ({teacher_address}) leaves from {source}, not {address} ({listed})",
                    f"use --name {self.alive}@{source}",
                )
            return self.record("address", "OK", f"{address}, on the route to the teacher ({listed})")
        return self.record("address", "OK", f"{address} ({listed})")

    def check_node(self) -> bool:
        """Start the node, then check the port mapper and the listen port; False if either failed."""
        mapper = reach.mapper_port()
        try:
            before = reach.lookup("127.0.0.1", self.alive)
        except OSError as exc:
            if exc.errno is None:
                self.record(
                    "port mapper",
                    "FAIL",
                    f"what answers on port {mapper} is not a port mapper ({exc})",
                    "another program holds that port: stop it, or use the same --epmd-port on every laptop",
                )
                self.record("listen port", "SKIP", "needs the port mapper")
                return False
            was = "none ran: the node started one"
        else:
            if before is not None:
                self.record(
                    "port mapper",
                    "FAIL",
                    f"a node named {self.alive!r} is registered here already (port {before})",
                    f"stop that node, or check under another name: --name OTHER@{self.host}",
                )
                self.record("listen port", "SKIP", "needs the port mapper")
                return False
            was = "it was running"
        started = net_kernel.start(self.node, cookie=self.cookie, setuptime=SETUP_TIME)
        if started[0] != "ok":
            return self._start_failed(started[1], mapper)
        return self._check_registered(mapper, was) and self._check_listening()

    def _start_failed(self, reason: Any, mapper: int) -> bool:
        """Record why the node could not start, against the check it belongs to."""
        text = _start_error(self.node, reason)
        if isinstance(reason, OSError) and reason.errno == errno.EADDRINUSE:
            self.record("port mapper", "OK", f"port {mapper}")
            ports = "--port 4380-4389" if self.ports is None else "another --port range, or a wider one"
            return self.record("listen port", "FAIL", text, f"use {ports} (the same range in the firewall)")
        self.record(
            "port mapper",
            "FAIL",
            text,
            f"find the program on port {mapper} (lsof -i :{mapper}, netstat -ano) or use another --epmd-port "
            "on every laptop",
        )
        self.record("listen port", "SKIP", "the node did not start")
        return False

    def _check_registered(self, mapper: int, was: str) -> bool:
        """Check that the port mapper knows this node, on loopback and on the LAN address."""
        try:
            self.port = reach.lookup("127.0.0.1", self.alive)
            seen_outside = reach.lookup(self.address or self.host, self.alive)
        except OSError as exc:
            return self.record(
                "port mapper",
                "FAIL",
                f"port {mapper} answers on 127.0.0.1 but not on {self.address} ({exc.strerror or exc})",
                "the port mapper must listen on every address: stop it (it restarts with the next node)",
            )
        if self.port is None or seen_outside != self.port:
            return self.record(
                "port mapper", "FAIL", f"port {mapper}: the port mapper lost this node's registration", "run again"
            )
        return self.record("port mapper", "OK", f"port {mapper} ({was}); it registered {self.node}")

    def _check_listening(self) -> bool:
        """Check that the node listens on its port, inside ``--port``'s range, on the LAN address."""
        assert self.port is not None
        where = f"{self.address}:{self.port}"
        try:
            socket.create_connection((self.address or self.host, self.port), timeout=reach.PROBE_TIMEOUT).close()
        except OSError as exc:
            return self.record("listen port", "FAIL", f"{where} does not accept ({exc.strerror or exc})", "run again")
        if self.ports is None:
            return self.record(
                "listen port",
                "OK",
                f"{where}, a port the system chose: with a firewall, pin it (--port 4380-4389) and open it",
            )
        low, high = self.ports
        if not low <= self.port <= high:
            return self.record("listen port", "FAIL", f"{where} is outside --port {low}-{high}", "run again")
        return self.record("listen port", "OK", f"{where} (of --port {low}-{high})")

    def check_teacher(self) -> str:
        """Connect to the teacher's node; return ``'connected'``, ``'refused'`` (it answered) or ``'failed'``."""
        if self.teacher is None:
            self.record("teacher", "SKIP", "no --connect TEACHER@ADDRESS given")
            return "failed"
        began = time.monotonic()
        connected = net_kernel.connect_node(self.teacher)
        took = time.monotonic() - began
        if connected is True:
            self.record("teacher", "OK", f"connected to {self.teacher} in {took:.2f} s")
            return "connected"
        found = reach.probe(self.teacher)
        timed_out = took >= 0.8 * SETUP_TIME
        diagnosis, fix = reach.explain(self.teacher, found, handshake_timed_out=timed_out)
        if found.kind == "answers" and not timed_out:
            self.record(
                "teacher",
                "OK",
                f"{self.teacher} answers: port mapper at {found.host}:{found.mapper_port}, node at port {found.port}",
            )
            return "refused"
        self.record("teacher", "FAIL", diagnosis, fix)
        return "failed"

    def check_cookie(self, teacher: str) -> bool:
        """Say whether the teacher accepted our cookie (or where the cookie comes from, untested)."""
        source = self._cookie_source()
        if teacher == "connected":
            return self.record("cookie", "OK", f"{self.teacher} accepted our cookie (from {source})")
        if teacher == "refused":
            return self.record(
                "cookie",
                "FAIL",
                f"{self.teacher} is up but refused the handshake: our cookie (from {source}) is not its cookie",
                "use the workshop's cookie: --cookie COOKIE, the same on every node "
                "(the teacher's shell printed the refused attempt)",
            )
        if self.cookie is None and not os.environ.get("REPG2_COOKIE"):
            return self.record(
                "cookie",
                "FAIL",
                f"no --cookie: this node took its cookie from {source}, which no other laptop shares",
                "pass --cookie with the workshop's cookie",
            )
        return self.record("cookie", "SKIP", f"from {source}; not tested: no teacher reached")

    def check_connect_back(self, teacher: str) -> bool:
        """Ask the teacher to connect to us afresh: the incoming path through this laptop's firewall."""
        if teacher != "connected" or self.teacher is None:
            return self.record("connect back", "SKIP", "needs the connection to the teacher")
        tag = f"preflight-{os.urandom(6).hex()}"
        rpc.cast(self.teacher, connect_back, [self.node, erlang.self(), tag])
        reply = erlang.receive(
            lambda m: isinstance(m, tuple) and len(m) == 2 and m[0] == tag, timeout=CONNECT_BACK_TIMEOUT
        )
        if reply is not TIMEOUT:
            return self.record(
                "connect back",
                "OK",
                f"{self.teacher} connected to this node: ports {reach.mapper_port()} and {self.port} are open",
            )
        diagnosis, fix = self._why_no_connect_back()
        return self.record("connect back", "FAIL", diagnosis, fix)

    def _why_no_connect_back(self) -> tuple[str, str]:
        """Ask the teacher, over a new connection of ours, what it sees of this node."""
        mapper, port = reach.mapper_port(), self.port
        generic = (
            f"{self.teacher} could not connect to this node within {CONNECT_BACK_TIMEOUT:.0f} s: a firewall here "
            f"probably blocks incoming connections to port {mapper} (port mapper) or {port} (this node)",
            _open_ports_fix(f"{mapper},{port}"),
        )
        if self.teacher is None or net_kernel.connect_node(self.teacher) is not True:
            return generic
        found = rpc.call(self.teacher, probe_here, [self.node], 4 * reach.PROBE_TIMEOUT + 2)
        if not (isinstance(found, tuple) and found and found[0] != "badrpc"):
            return generic
        seen = reach.Probe(*found)
        if seen.kind in ("mapper_refused", "mapper_timeout", "unreachable", "mapper_other"):
            how = "refused" if seen.kind == "mapper_refused" else "no answer"
            return (
                f"the teacher cannot reach the port mapper here ({self.address}:{mapper}, {how}): "
                f"the firewall of this laptop blocks incoming port {mapper}",
                _open_ports_fix(str(mapper)),
            )
        if seen.kind in ("port_refused", "port_timeout"):
            how = "refused" if seen.kind == "port_refused" else "no answer"
            ports = f"{self.ports[0]}-{self.ports[1]}" if self.ports else str(port)
            return (
                f"the teacher reaches the port mapper here but not this node's port {port} ({how}): "
                "the firewall of this laptop blocks it",
                _open_ports_fix(ports) + ("" if self.ports else "; pin the port first: --port 4380-4389"),
            )
        return generic

    # -- Helpers ------------------------------------------------------------------

    def _teacher_address(self) -> str | None:
        """Return the teacher's IPv4 address, if there is a teacher and its host resolves."""
        if self.teacher is None:
            return None
        return _resolve(reach.split(self.teacher)[1])

    def _suggested_address(self, mine: list[str]) -> str | None:
        """Return the address to put in the node name: the one on the route to the teacher, else the default route's."""
        teacher = self._teacher_address()
        if teacher is not None and _loopback(teacher):
            return "127.0.0.1"
        source = route_source(teacher or NO_ROUTE_PROBE)
        if source is not None and not _loopback(source):
            return source
        return mine[0] if mine else None

    def _cookie_source(self) -> str:
        """Say where this node's cookie comes from."""
        if self.cookie is not None:
            return "--cookie"
        if os.environ.get("REPG2_COOKIE"):
            return "$REPG2_COOKIE"
        return "~/.repg2.cookie"

    # -- The whole run -------------------------------------------------------------

    def run(self) -> int:
        """Make every check in order, print the verdict, stop the node; return the exit status."""
        teacher_text = f", teacher {self.teacher}" if self.teacher else ""
        self.say(f"RePy2 pre-flight of {self.node}{teacher_text}")
        try:
            self.check_python()
            if self.check_address() and self.check_node():
                teacher = self.check_teacher()
                self.check_cookie(teacher)
                self.check_connect_back(teacher)
            else:
                for name in ("port mapper", "listen port", "teacher", "cookie", "connect back"):
                    if all(c.name != name for c in self.checks):
                        self.record(name, "SKIP", "needs the checks above")
        finally:
            net_kernel.stop()
        failed = [c.name for c in self.checks if c.status == "FAIL"]
        skipped = [c.name for c in self.checks if c.status == "SKIP"]
        if failed:
            self.say(f"{len(failed)} of {len(self.checks)} checks failed ({', '.join(failed)}): fix, then run again.")
            return 1
        extra = f"; skipped: {', '.join(skipped)}" if skipped else ""
        self.say(f"Ready: {len(self.checks) - len(skipped)} checks passed{extra}.")
        return 0


def run(
    name: str | None = None,
    cookie: str | None = None,
    connect: str | None = None,
    ports: tuple[int, int] | None = None,
    verbose: bool = False,
) -> int:
    """Run the pre-flight and return its exit status (0: ready, 1: a check failed).

    ``name`` is ``NAME@HOST`` or ``NAME`` (default ``preflight``); without a
    host the node takes the address on the route to the teacher (or the
    default route's). The node listen range (``ports``) and the port
    mapper port are read from the environment the command line sets.
    """
    package_log = logging.getLogger("repg2")
    handler: logging.Handler = logging.StreamHandler(sys.stderr) if verbose else logging.NullHandler()
    package_log.addHandler(handler)
    package_log.propagate = False  # the checks say what failed; the distribution's warnings would say it twice
    if verbose:
        package_log.setLevel(logging.INFO)
    alive, _, host = (name or DEFAULT_ALIVE).partition("@")
    check = Preflight(alive or DEFAULT_ALIVE, host, cookie, connect, ports, say=_say)
    if not host:
        mine = ipv4_addresses()
        check.host = check._suggested_address(mine) or "127.0.0.1"
    try:
        return check.run()
    finally:
        package_log.removeHandler(handler)


def _say(line: str) -> None:
    """Print one line of the report at once (a check may take seconds)."""
    print(line, flush=True)
