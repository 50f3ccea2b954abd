"""Why a node cannot be reached: probe its host's port mapper and its port, and say what failed.

``net_kernel.connect_node/1`` answers only ``true`` or ``false``. A person
at a workshop needs to know *which* part failed, because each has its own
fix: no port mapper on that host, a name that is not registered there, a
node port that a firewall keeps closed, or a node that answered and
refused us (a different cookie). :func:`probe` finds out from the outside,
the way a person would with ``epmd -names`` and ``telnet``: it asks the
host's port mapper for the node, then dials the port the port mapper gave.
:func:`explain` turns the finding into one line of diagnosis and one line
of what to do. The node shell (``ping``) and the pre-flight
(``python -m repg2 preflight``) both use them; the pre-flight also runs
:func:`probe` on the teacher's node (through ``rpc``) to see this laptop
from the outside.

Lineage: ``net_adm:names/1`` and ``erl_epmd:port_please/2`` for the
questions asked; no Erlang tool explains a failed connection this way.
"""

from __future__ import annotations

import errno
import socket
from typing import Any, NamedTuple

from repg2 import epmd

__all__ = ["PROBE_TIMEOUT", "Probe", "explain", "lookup", "mapper_port", "probe", "registered", "split"]

PROBE_TIMEOUT = 2.0  # seconds for each probe: a LAN answers in milliseconds, a dropped packet never


# == The port mapper ===================================================================


def mapper_port() -> int:
    """Return the TCP port of the port mapper, on this host and on every other (``ERL_EPMD_PORT``, else 4369)."""
    return epmd.epmd_port()


def lookup(host: str, alive: str, timeout: float = PROBE_TIMEOUT) -> int | None:
    """Ask ``host``'s port mapper where node ``alive`` listens; None if no such node is registered.

    Raises:
        OSError: no port mapper answers (``ConnectionRefusedError``), it
        timed out (``TimeoutError``), the host is unknown
        (``socket.gaierror``), or what answered is not a port mapper
        (``errno`` None).
    """
    found = epmd.port_please(alive, host, timeout)
    return None if found is None else found[0]


def registered(host: str, timeout: float = PROBE_TIMEOUT) -> dict[str, int]:
    """Return ``{name: port}`` of the nodes registered with ``host``'s port mapper.

    Raises:
        OSError: as :func:`lookup`.
    """
    return epmd.names(host, timeout)


def split(node: str) -> tuple[str, str]:
    """Split ``'alive@host'``; raise ``ValueError`` naming the node if it is not one."""
    alive, at, host = node.partition("@")
    if not at or not alive or not host or "@" in host:
        raise ValueError(f"not a node name (name@host): {node!r}")
    return alive, host


# == Probing a node from the outside ================================================


class Probe(NamedTuple):
    """What one probe of a node found.

    ``kind`` is one of:

    - ``'answers'``: its port mapper knows it and its port accepts a
      connection (so a failed connect was the handshake: the cookie, or a
      node too busy or frozen to answer);
    - ``'bad_host'``: the host name does not resolve;
    - ``'mapper_refused'``: nothing listens on the port mapper port;
    - ``'mapper_timeout'``: the port mapper port does not answer at all;
    - ``'unreachable'``: no route to the host; ``'mapper_other'``: another
      error on the way to the port mapper (``detail`` says which);
    - ``'not_a_mapper'``: something else answers on the port mapper port;
    - ``'no_such_node'``: the port mapper answers, but not for this name
      (``names`` lists those it knows);
    - ``'port_refused'``, ``'port_timeout'``: the node's registered
      ``port`` refuses or does not answer.

    A plain tuple of strings, ints and a list, so it crosses the
    distribution whatever the carrier.
    """

    kind: str
    host: str
    mapper_port: int
    port: int | None = None
    names: list[str] | None = None
    detail: str = ""


def _failure(exc: OSError) -> str:
    """Name the way a TCP connect failed: refused, timeout, unreachable, bad_host, other."""
    if isinstance(exc, socket.gaierror):
        return "bad_host"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
        return "unreachable"
    return "other"


def probe(node: str, timeout: float = PROBE_TIMEOUT) -> Probe:
    """Ask ``node``'s host's port mapper for it, then dial the port it names; say what answered.

    Needs no distribution: it runs on a node that is not started too, and
    on the teacher's node through ``rpc`` (see ``repg2.tools.preflight``).

    Raises:
        ValueError: ``node`` is not ``alive@host``.
    """
    alive, host = split(node)
    mport = mapper_port()
    try:
        port = lookup(host, alive, timeout)
    except OSError as exc:
        kind = _failure(exc)
        if kind == "other" and exc.errno is None:  # it answered, but not as a port mapper answers
            return Probe("not_a_mapper", host, mport, detail=str(exc))
        kinds = {"refused": "mapper_refused", "timeout": "mapper_timeout", "other": "mapper_other"}
        return Probe(kinds.get(kind, kind), host, mport, detail=exc.strerror or str(exc))
    if port is None:
        try:
            names = sorted(registered(host, timeout))
        except OSError:
            names = []
        return Probe("no_such_node", host, mport, names=names)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        kind = "port_refused" if _failure(exc) == "refused" else "port_timeout"
        return Probe(kind, host, mport, port, detail=exc.strerror or str(exc))
    return Probe("answers", host, mport, port)


def explain(node: str, found: Probe | tuple[Any, ...], *, handshake_timed_out: bool = False) -> tuple[str, str]:
    """Return ``(diagnosis, fix)``: why we could not connect to ``node``, and what to do, one line each.

    ``found`` is what :func:`probe` found (also as the plain tuple that an
    ``rpc`` brings back). When everything answered, ``handshake_timed_out``
    tells a node that never finished the handshake (frozen, asleep, or
    swamped) from one that refused it at once, which with the right name
    means another cookie.
    """
    f = Probe(*found)
    alive, host = split(node)
    mapper = f"{host}:{f.mapper_port}"
    match f.kind:
        case "bad_host":
            return (
                f"cannot resolve host {host!r}: {f.detail}",
                "use the IP address in the node name (name@192.168.x.y), not a host name",
            )
        case "mapper_refused":
            return (
                f"no port mapper answers at {mapper} (connection refused): no node runs on {host}, "
                f"or it uses another port mapper port, or a firewall there rejects port {f.mapper_port}",
                f"start the node on {host}; use the same --epmd-port everywhere; open port {f.mapper_port}/tcp there",
            )
        case "mapper_timeout" | "unreachable" | "mapper_other":
            how = {"mapper_timeout": "timed out", "unreachable": f"unreachable: {f.detail}"}.get(f.kind, f.detail)
            return (
                f"{mapper} does not answer ({how}): {host} is down or not that address, the network isolates its "
                f"clients, or a firewall drops port {f.mapper_port}",
                f"check the address ({host}) and that both machines are on the same network; "
                f"open port {f.mapper_port}/tcp on {host}",
            )
        case "not_a_mapper":
            return (
                f"what answers at {mapper} is not a port mapper ({f.detail})",
                "another program holds that port: use the same --epmd-port on every machine, or stop that program",
            )
        case "no_such_node":
            known = ", ".join(f"{n}@{host}" for n in f.names or []) or "none"
            return (
                f"no node named {alive!r} runs on {host} (nodes registered there: {known})",
                f"check the name; start that node on {host}",
            )
        case "port_refused":
            return (
                f"{node} is registered at port {f.port} but that port does not answer (connection refused): "
                "the node is gone or hung, or a firewall there rejects the port",
                f"restart the node on {host}; start it with --port (e.g. 4380-4389) and open those ports/tcp",
            )
        case "port_timeout":
            return (
                f"{node} is registered at port {f.port} but that port does not answer ({f.detail}): "
                "a firewall there drops it? pin node ports with --port and open them",
                f"on {host}: start the node with --port (e.g. 4380-4389) and open those ports/tcp",
            )
        case _ if handshake_timed_out:
            return (
                f"{node} accepts connections but did not finish the handshake in time: "
                "it is frozen (a closed lid, a stopped process) or swamped",
                f"wake that machine or restart the node on {host}",
            )
        case _:
            return (
                f"{node} is up but refused the handshake: its cookie is not ours (check --cookie on both nodes)",
                "use the workshop's cookie: the same --cookie on every node",
            )
