"""Three real network hosts: pg2 across addresses that are not loopback, a pulled cable, and the heal.

The workshop's "pull a network cable" moment, made reproducible. The test
builds a small LAN out of Linux network namespaces: one namespace per host
(``a``, ``b``, ``c`` at 10.200.0.1-3/24, each with its own loopback and so
its own port mapper, as each machine runs its own epmd) and one namespace
for the switch, a bridge with one veth cable to each host::

    [a 10.200.0.1]--+
    [b 10.200.0.2]--+--[bridge]   (namespace "sw")
    [c 10.200.0.3]--+

One ``python -m repg2 shell`` runs in each host namespace with a tick time
of 2 s. Taking c's switch port down (``ip link set ... down``: the cable is
pulled at the switch, so no host sees a link change) makes c silent; only
the ticks can tell, and each side must report ``nodedown`` within OTP's
window of 1.25 tick times. Members joined on both sides during the
partition are seen by all three nodes once the cable is back and c
reconnects (pg2's exchange on ``nodeup``), and so is a group deleted on one
side only: pg2 heals by adding.

The same LAN runs the workshop's pre-flight (``python -m repg2 preflight``)
from host b against a teacher's node on a: every check passes; a host
with no node is "no port mapper answers", an address with no host "does
not answer". With nftables, a firewall in b's namespace drops incoming
connections to b's node port, then to its port mapper port, and the
pre-flight's connect back names the closed port; a firewall on the
teacher's node port is named as the teacher's.

Needs Linux, iproute2 and the right to create network namespaces (root or
CAP_SYS_ADMIN + CAP_NET_ADMIN); otherwise the test is skipped and says
which one is missing; the firewall test also needs ``nft`` (Debian's
``nftables``). The namespaces are always deleted at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect", reason="the shells are driven with pexpect (pip install pexpect)")

from shell_driver import CHECKS, Preflight, Shell, Shells  # noqa: E402 - after the importorskip
from support import DEADLINE, wait_until  # noqa: E402

from repg2 import epmd  # noqa: E402

TICKTIME = 2.0  # seconds: short, so the partition is detected quickly
DETECT_MAX = TICKTIME * 1.25 + 1.0  # OTP's window (up to 1.25 tick times) plus scheduling slack
DETECT_MIN = TICKTIME * 0.5  # sooner would mean a socket error, not the ticks, found the partition
HOSTS = {"a": "10.200.0.1", "b": "10.200.0.2", "c": "10.200.0.3"}
COOKIE = "netns-cookie"

pytestmark = [pytest.mark.timeout(180), pytest.mark.distributed]


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; raise ``RuntimeError`` with ip's own message if it fails."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=DEADLINE)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def _why_not() -> str | None:
    """Say why network namespaces cannot be used here, or None if they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces exist on Linux only"
    if shutil.which("ip") is None:
        return "iproute2 is missing (the ip command; apt-get install iproute2)"
    probe = f"rp2probe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except RuntimeError as exc:
        return f"creating a network namespace is not permitted here ({exc}); run as root or with CAP_SYS_ADMIN"
    try:
        _ip("-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        _ip("-n", probe, "link", "add", "br0", "type", "bridge")
    except RuntimeError as exc:
        return f"veth links or bridges cannot be made here ({exc})"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=DEADLINE)
    return None


@dataclass
class Lan:
    """The namespaces of one test: a switch and three hosts, each host cabled to the switch."""

    token: str
    made: list[str] = field(default_factory=list)

    def ns(self, host: str) -> str:
        """The namespace name of a host (or of the switch, ``'sw'``)."""
        return f"rp2{self.token}{host}"

    def build(self) -> None:
        """Create the switch, the hosts and the cables; give each host its address."""
        switch = self.ns("sw")
        self._add(switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for host, address in HOSTS.items():
            ns = self.ns(host)
            self._add(ns)
            # Both ends are created straight in their namespaces: no name in the
            # root namespace, so concurrent runs cannot collide.
            _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"port{host}", "netns", switch)
            _ip("-n", switch, "link", "set", f"port{host}", "master", "br0")
            _ip("-n", switch, "link", "set", f"port{host}", "up")
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "lo", "up")  # the port mapper registers nodes over loopback
            _ip("-n", ns, "link", "set", "eth0", "up")

    def _add(self, ns: str) -> None:
        """Create one namespace and remember it for the teardown."""
        _ip("netns", "add", ns)
        self.made.append(ns)

    def cable(self, host: str, up: bool) -> None:
        """Plug (``up``) or pull a host's cable at the switch."""
        _ip("-n", self.ns("sw"), "link", "set", f"port{host}", "up" if up else "down")

    def pids(self) -> list[str]:
        """The processes still running in this test's namespaces (the port mappers linger after their nodes)."""
        found: list[str] = []
        for ns in self.made:
            found += subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        return found

    def destroy(self) -> None:
        """Delete every namespace, after the processes left in them (port mappers) have gone."""
        try:
            wait_until(lambda: not self.pids(), "the port mappers to exit", timeout=2 * epmd.EPMD_LINGER)
        except AssertionError:
            for pid in self.pids():  # processes this test started in its own namespaces
                subprocess.run(["kill", "-KILL", pid], capture_output=True)
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=DEADLINE)
        self.made.clear()


@pytest.fixture
def lan() -> Iterator[Lan]:
    """A switch and three hosts in network namespaces, deleted afterwards whatever happens."""
    reason = _why_not()
    if reason is not None:
        pytest.skip(reason)
    network = Lan(os.urandom(3).hex())
    try:
        network.build()
        yield network
    finally:
        network.destroy()


@pytest.fixture
def start_shell(tmp_path: Path, lan: Lan) -> Iterator[Callable[..., Shell]]:
    """Return ``start(host, *args)``: a node shell in that host's namespace; all are killed at the end."""

    def start(host: str, *args: str) -> Shell:
        """Start the shell of node ``host@ADDRESS`` inside the host's namespace."""
        node = f"{host}@{HOSTS[host]}"
        return started.start(node, COOKIE, "--ticktime", str(TICKTIME), *args, netns=lan.ns(host))

    with Shells(tmp_path) as started:
        yield start


# The shell expression that lists the nodes of chat's members, sorted.
MEMBER_NODES = "sorted(erlang.node(p) for p in pg2.get_members('chat'))"


def test_partition_by_pulled_cable_is_detected_by_ticks_and_pg2_heals(
    lan: Lan, start_shell: Callable[..., Shell]
) -> None:
    """Three hosts; c's cable is pulled: nodedown on both sides within 1.25 tick times; after the heal all agree."""
    a_node, b_node, c_node = (f"{h}@{HOSTS[h]}" for h in "abc")

    # -- a alone: c's host exists but no node runs there yet.
    a = start_shell("a")
    out = a.run(f"ping({c_node!r})")
    assert "'pang'" in out
    assert f"no port mapper answers at {HOSTS['c']}:" in out

    # -- The cluster forms across the LAN: b joins a, c joins b and meets a through it.
    b = start_shell("b", "--connect", a_node)
    c = start_shell("c", "--connect", b_node)
    a.wait_eval("sorted(nodes())", sorted([b_node, c_node]))
    c.wait_eval("sorted(nodes())", sorted([a_node, b_node]))
    assert b.eval("erlang.node()") == b_node

    assert a.eval("pg2.create('chat')") == "ok"
    assert a.eval("pg2.create('gone')") == "ok"
    a.run("ma = member('ma', 'chat')")
    c.run("mc = member('mc', 'chat')")
    for shell in (a, b, c):
        shell.wait_eval(MEMBER_NODES, [a_node, c_node])

    # -- Pull c's cable at the switch. Nobody sees a link change; only the ticks stop.
    marks = {shell: shell.mark() for shell in (a, b, c)}
    pulled = time.monotonic()
    lan.cable("c", up=False)
    detected: dict[str, float] = {}
    for shell, lost in ((a, c_node), (b, c_node), (c, a_node), (c, b_node)):
        shell.wait_output(rf"\] nodedown {lost}", marks[shell], timeout=DETECT_MAX + 5)
        detected[f"{shell.name} lost {lost}"] = time.monotonic() - pulled
    print("nodedown detected after (s):", {k: round(v, 2) for k, v in detected.items()})
    late = {k: round(v, 2) for k, v in detected.items() if not DETECT_MIN <= v <= DETECT_MAX}
    assert not late, f"nodedown outside [{DETECT_MIN}, {DETECT_MAX}] s after the cable was pulled: {late}"
    assert a.eval("sorted(nodes())") == [b_node]
    assert c.eval("nodes()") == []

    # Each side lost the other side's members (their monitors fired 'noconnection').
    a.wait_eval(MEMBER_NODES, [a_node])
    c.wait_eval(MEMBER_NODES, [c_node])

    # From a, c now is a host that does not answer, and the shell says so.
    out = a.run(f"ping({c_node!r})")
    assert "'pang'" in out
    assert "does not answer" in out

    # -- Writes on both sides of the partition (pg2 is AP: both succeed).
    a.run("ma2 = member('ma2', 'chat')")
    c.run("mc2 = member('mc2', 'chat')")
    assert a.eval("pg2.delete('gone')") == "ok"
    b.wait_eval("pg2.which_groups()", ["chat"])
    assert c.eval("sorted(pg2.which_groups())") == ["chat", "gone"]
    a.wait_eval(MEMBER_NODES, [a_node, a_node])
    b.wait_eval(MEMBER_NODES, [a_node, a_node])
    assert c.eval(MEMBER_NODES) == [c_node, c_node]

    # -- Plug the cable back; c reconnects (to a; b follows transitively) and pg2 exchanges.
    lan.cable("c", up=True)
    c.wait_eval(f"ping({a_node!r})", "pong")
    c.wait_eval("sorted(nodes())", sorted([a_node, b_node]))
    for shell in (a, b, c):
        shell.wait_eval(MEMBER_NODES, [a_node, a_node, c_node, c_node])
        # The add-only heal: c's exchange brings back the group deleted on a's side.
        shell.wait_eval("sorted(pg2.which_groups())", ["chat", "gone"])

    # Messages cross the healed link: c reaches a's members.
    since = a.mark()
    assert c.eval("send_all('chat', 'healed')") == 4
    a.wait_output(r"ma <[0-9.]+> got: 'healed'", since)
    a.wait_output(r"ma2 <[0-9.]+> got: 'healed'", since)

    for shell in (c, b, a):
        assert shell.quit() == 0


# == The pre-flight across hosts ===================================================

NOWHERE = "10.200.0.9"  # on the LAN's subnet, but no host has it
# The node ports the checked laptop pins (each namespace has its own ports). A range, as the
# workshop page advises: a port just left by the previous run may still be in TIME_WAIT.
PINNED = "4380-4389"


def _preflight(lan: Lan, home: Path, host: str, *args: str) -> Preflight:
    """Run the pre-flight in ``host``'s namespace as node ``pf@ADDRESS`` with the cookie and a pinned port."""
    name = f"pf@{HOSTS[host]}"
    return Preflight(("--name", name, "--cookie", COOKIE, "--port", PINNED, *args), home=home, netns=lan.ns(host)).run()


def test_preflight_across_hosts_passes_and_names_a_host_without_node(
    lan: Lan, start_shell: Callable[..., Shell], tmp_path: Path
) -> None:
    """From b: against the teacher on a every check passes; c without a node has no port mapper; no host does not answer."""
    teacher = start_shell("a")
    run = _preflight(lan, tmp_path, "b", "--connect", teacher.name)
    assert run.status == 0, run.text
    assert [run.status_of(name) for name in CHECKS] == ["OK"] * len(CHECKS), run.text
    assert f"{HOSTS['b']}, on the route to the teacher" in run.checks["address"][1]

    run = _preflight(lan, tmp_path, "b", "--connect", f"teacher@{HOSTS['c']}")
    assert run.status == 1
    status, detail, _fix = run.checks["teacher"]
    assert status == "FAIL", run.text
    assert f"no port mapper answers at {HOSTS['c']}:" in detail
    assert "(connection refused)" in detail

    run = _preflight(lan, tmp_path, "b", "--connect", f"teacher@{NOWHERE}")
    assert run.status == 1
    status, detail, _fix = run.checks["teacher"]
    assert status == "FAIL", run.text
    assert f"{NOWHERE}:" in detail and "does not answer" in detail


def _nft_missing() -> str | None:
    """Say why nftables cannot make a firewall here, or None if it can."""
    if shutil.which("nft") is None:
        return "nft is missing (apt-get install nftables): no firewall to test the connect back against"
    return None


def _firewall(lan: Lan, host: str, port: str | None) -> None:
    """Make ``host``'s firewall drop incoming TCP to ``port`` from the LAN (None: no firewall)."""
    ns = lan.ns(host)
    subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "rp2fw"], capture_output=True, timeout=DEADLINE
    )
    if port is None:
        return
    # Only what comes in over the cable: the node's own registration over
    # loopback must pass, as on a laptop.
    rules = (
        "table inet rp2fw {\n  chain input {\n    type filter hook input priority 0; policy accept;\n"
        f'    iifname "eth0" tcp dport {port} drop\n  }}\n}}\n'
    )
    result = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, capture_output=True, text=True, timeout=DEADLINE
    )
    assert result.returncode == 0, result.stderr


def test_preflight_connect_back_names_the_port_a_firewall_drops(
    lan: Lan, start_shell: Callable[..., Shell], tmp_path: Path
) -> None:
    """b's firewall drops its node port, then its port mapper port: the connect back fails naming that port."""
    reason = _nft_missing()
    if reason is not None:
        pytest.skip(reason)
    teacher = start_shell("a", "--port", "4390")
    mapper = os.environ.get("ERL_EPMD_PORT")
    assert mapper, "conftest.py gives the run a port mapper port of its own"

    _firewall(lan, "b", PINNED)
    run = _preflight(lan, tmp_path, "b", "--connect", teacher.name)
    assert run.status == 1
    assert [run.status_of(name) for name in CHECKS[:-1]] == ["OK"] * (len(CHECKS) - 1), run.text
    status, detail, fix = run.checks["connect back"]
    assert status == "FAIL", run.text
    assert re.search(r"reaches the port mapper here but not this node's port 438\d \(no answer\)", detail), detail
    assert "firewall of this laptop blocks it" in detail
    assert "ufw allow 4380:4389/tcp" in fix

    _firewall(lan, "b", mapper)
    run = _preflight(lan, tmp_path, "b", "--connect", teacher.name)
    assert run.status == 1
    status, detail, fix = run.checks["connect back"]
    assert status == "FAIL", run.text
    assert f"cannot reach the port mapper here ({HOSTS['b']}:{mapper}, no answer)" in detail
    assert f"ufw allow {mapper}/tcp" in fix

    # The teacher's laptop drops its own node port: the teacher check says so, not the cookie.
    _firewall(lan, "b", None)
    _firewall(lan, "a", "4390")
    run = _preflight(lan, tmp_path, "b", "--connect", teacher.name)
    assert run.status == 1
    status, detail, _fix = run.checks["teacher"]
    assert status == "FAIL", run.text
    assert f"{teacher.name} is registered at port 4390 but that port does not answer" in detail
    assert run.status_of("cookie") == "SKIP"
