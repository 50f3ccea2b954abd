"""The ``python -m repg2`` command line: ``demo``, ``shell``, ``preflight``, ``xref`` and ``bench``.

The Python counterpart of starting ``erl``: ``demo`` runs a narrated
three-node pg2 session on this machine, ``shell`` makes this process a node
and gives it a REPL (``erl -name``), ``preflight`` checks a workshop laptop
the day before (``repg2.tools.preflight``), ``xref`` prints the map from Erlang
functions to their Python translations, ``bench`` measures pg2's
performance characteristics beside their floors (``repg2.tools.bench``). A wrong
argument is one line on stderr and exit status 2.

This module is the one part of the package that an older Python can parse:
on anything before 3.11 every command stops with one line saying what to
install, instead of a ``SyntaxError`` from deeper down.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["MIN_PYTHON", "main", "python_problem"]

MIN_PYTHON = (3, 11)  # the match statements and typing of the package; pyproject's requires-python


def python_problem(version: tuple[Any, ...]) -> str | None:
    """Say what to install when ``version`` is older than :data:`MIN_PYTHON`; None if it will do."""
    if tuple(version[:2]) >= MIN_PYTHON:
        return None
    have = ".".join(str(v) for v in version[:3])
    return (
        f"Python {have} is too old: RePy2 needs 3.11 or newer. macOS: the python.org installer or "
        "`brew install python@3.12` (the system's /usr/bin/python3 is older), then `python3.12 -m venv .venv`; "
        "Windows: the python.org installer, then `py -3.12 -m venv .venv`; Linux: your distribution's python3.11 "
        "or newer"
    )


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not the usage block."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` on one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _node_name(text: str) -> str:
    """Accept ``name@host``; reject anything else with a one-line reason."""
    from repg2.tools.shell import validate_node_name

    try:
        return validate_node_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _node_or_alive_name(text: str) -> str:
    """Accept ``name@host``, or a bare ``name`` whose host is chosen later."""
    if "@" in text:
        return _node_name(text)
    return _node_name(f"{text}@127.0.0.1").partition("@")[0]


def _port(text: str) -> int:
    """Accept a TCP port number, 1 to 65535."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def _port_range(text: str) -> tuple[int, int]:
    """Accept ``PORT`` or ``MIN-MAX`` as a range of TCP ports."""
    low, _, high = text.partition("-")
    first, last = _port(low), _port(high or low)
    if first > last:
        raise argparse.ArgumentTypeError(f"{text!r}: the first port is greater than the last")
    return first, last


def _seconds(text: str) -> float:
    """Accept a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _parser() -> argparse.ArgumentParser:
    """Build the argument parser for every sub-command."""
    parser = _Parser(
        prog="python -m repg2",
        description="RePy2: Erlang/OTP's pg2 translated into Python, on real nodes.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = sub.add_parser(
        "demo",
        help="run a narrated pg2 session on three real nodes of this machine",
        description="Start three nodes (a, b, c) on 127.0.0.1 and walk through pg2: groups, joins across nodes, "
        "a member dying, a node killed, a partition and its healing, printing every node's view.",
    )
    demo.add_argument("--quiet", action="store_true", help="print only the final summary")
    shell = sub.add_parser(
        "shell",
        help="make this process a node and open a Python shell on it (like erl -name)",
        description="Start the node NAME@HOST (it listens on the address of HOST, and registers with the port "
        "mapper of this machine, starting one if none runs), start pg2 on it, connect to the --connect nodes, "
        "and open a Python REPL with pg2, erlang, net_kernel, ets, global_ and rpc imported and workshop "
        "helpers (h() lists them). q() or Ctrl-D stops the node.",
        epilog="Firewalls: open the port mapper port (--epmd-port) and the node ports (--port) on every machine. "
        "Example: python -m repg2 shell --name a@192.168.1.10 --cookie workshop --connect b@192.168.1.11",
    )
    shell.add_argument(
        "--name",
        required=True,
        type=_node_name,
        metavar="NAME@HOST",
        help="the node's name; HOST is an address of this machine that the other nodes can reach "
        "(127.0.0.1 for nodes of this machine only, your LAN address across machines)",
    )
    shell.add_argument(
        "--cookie",
        help="the shared secret every node of the cluster must use (default: $REPG2_COOKIE, else the contents "
        "of ~/.repg2.cookie, created with a random cookie if missing)",
    )
    shell.add_argument(
        "--connect",
        action="append",
        type=_node_name,
        metavar="OTHER@HOST",
        help="connect to this node after starting (repeatable); the rest of its cluster follows",
    )
    shell.add_argument(
        "--ticktime",
        type=_seconds,
        metavar="S",
        help="seconds of silence after which a connection counts as down, net_ticktime "
        "(default: $REPG2_NET_TICKTIME, else 60); use the same value on every node",
    )
    shell.add_argument(
        "--epmd-port",
        type=_port,
        metavar="PORT",
        help="TCP port of the port mapper, the same on every machine (default: $ERL_EPMD_PORT, else 4369)",
    )
    shell.add_argument(
        "--port",
        type=_port_range,
        metavar="PORT|MIN-MAX",
        help="listen for other nodes on this port, or the first free one of MIN-MAX, so a firewall can let "
        "them in (like inet_dist_listen_min/max; default: $REPG2_DIST_LISTEN_MIN-$REPG2_DIST_LISTEN_MAX, "
        "else any free port)",
    )
    shell.add_argument(
        "--verbose", action="store_true", help="also print the distribution's info messages (connections, ticks)"
    )
    preflight = sub.add_parser(
        "preflight",
        help="check this laptop for a workshop: Python, address, port mapper, ports, the teacher, the cookie",
        description="Check, one line each, what a workshop laptop needs: Python 3.11+, a LAN address of this "
        "machine in the node name, the port mapper, the listen port, a connection to the teacher's node, the "
        "cookie, and the teacher's node connecting back to this one through this machine's firewall. Each "
        "failure says why and what to do. Exit status 0 when every check passed, 1 otherwise. The teacher's side "
        "is a running node: python -m repg2 shell --name teacher@ADDRESS --cookie COOKIE.",
        epilog="Example, the day before: python -m repg2 preflight --connect teacher@192.168.8.10 "
        "--cookie pg2-workshop --port 4380-4389",
    )
    preflight.add_argument(
        "--name",
        type=_node_or_alive_name,
        metavar="NAME[@HOST]",
        help="the node name to check with (default: preflight@ the address on the route to the teacher); "
        "HOST is the address you will use in the workshop",
    )
    preflight.add_argument(
        "--cookie",
        help="the workshop's cookie, as the shell takes it (default: $REPG2_COOKIE, else ~/.repg2.cookie)",
    )
    preflight.add_argument(
        "--connect",
        type=_node_name,
        metavar="TEACHER@HOST",
        help="the teacher's running node: connect to it, check the cookie, and have it connect back",
    )
    preflight.add_argument(
        "--port",
        type=_port_range,
        metavar="PORT|MIN-MAX",
        help="the node port range you will use in the workshop (as the shell's --port), so its firewall rule is tested",
    )
    preflight.add_argument(
        "--epmd-port",
        type=_port,
        metavar="PORT",
        help="the port mapper's port, as the shell's --epmd-port",
    )
    preflight.add_argument(
        "--verbose", action="store_true", help="also print the distribution's messages (connections, handshakes)"
    )
    xref = sub.add_parser(
        "xref",
        help="map Erlang functions to their Python translations",
        description="Without FILE: list every 'Erlang: module:function/arity' line of repg2. "
        "With FILE (your own copy of an Erlang source, e.g. pg2.erl): list each of its functions with "
        "its Python translation and name those without one (exit status 1 if any). "
        "With --side-by-side FILE: print each Erlang function's source beside its Python translation.",
    )
    xref.add_argument("file", nargs="?", type=Path, help="an Erlang source file, e.g. lib/kernel/src/pg2.erl")
    xref.add_argument(
        "--check",
        action="store_true",
        help="fail if a definition of a translation module lacks its 'Erlang:' line, or tools/testing/examples "
        "carry an 'Erlang: none' filler line",
    )
    xref.add_argument(
        "--side-by-side",
        metavar="ERL_FILE",
        type=Path,
        help="print every function of ERL_FILE (your copy of e.g. pg2.erl) beside its Python translation, "
        "naming Erlang functions without one and Python cross-references the file does not have",
    )
    xref.add_argument(
        "--html",
        metavar="HTML_FILE",
        type=Path,
        help="with --side-by-side: also write a two-column HTML page to HTML_FILE",
    )
    xref.add_argument(
        "--width", type=int, default=None, help="with --side-by-side: line width (default: the terminal's)"
    )
    from repg2.tools import bench  # its options live beside the code they drive

    bench.add_arguments(
        sub.add_parser(
            "bench",
            help="measure pg2's performance characteristics beside their floors and real Erlang's figures",
            description="Measure reads, writes, throughput, heals and message round trips on real local nodes; "
            "print one table, optionally write JSON and PNG/SVG plots. A full run takes 1-3 minutes.",
        )
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a sub-command; return the exit status."""
    problem = python_problem(sys.version_info)
    if problem:
        print(f"python -m repg2: {problem}", file=sys.stderr)
        return 1
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from repg2.tools import demo

        return demo.run(quiet=args.quiet)
    if args.command == "shell":
        return _shell(args)
    if args.command == "preflight":
        return _preflight(args)
    if args.command == "bench":
        from repg2.tools import bench

        return bench.run_command(args)
    if args.command == "xref":
        from repg2.tools import xref

        if args.check:
            missing, filler = xref.missing_xrefs(), xref.filler_lines()
            for row in missing:
                print(row)
            print(f"{len(missing)} definitions of the translation modules without an 'Erlang:' line")
            for row in filler:
                print(row)
            print(f"{len(filler)} 'Erlang: none' lines outside the translation modules")
            if missing or filler:
                return 1
        if args.html is not None and args.side_by_side is None:
            print("python -m repg2 xref: --html needs --side-by-side ERL_FILE", file=sys.stderr)
            return 2
        path = args.side_by_side or args.file
        if path is None:
            print(xref.format_map())
            return 0
        try:
            source = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            print(f"python -m repg2 xref: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 2
        if args.side_by_side is not None:
            width = args.width or shutil.get_terminal_size(fallback=(160, 40)).columns
            text, missing_count = xref.format_side_by_side_text(source, width)
            if args.html is not None:
                try:
                    args.html.write_text(xref.format_side_by_side_html(source), encoding="utf-8")
                except OSError as exc:
                    print(f"python -m repg2 xref: cannot write {args.html}: {exc.strerror}", file=sys.stderr)
                    return 2
        else:
            text, missing_count = xref.format_side_by_side(source)
        print(text)
        return 1 if missing_count else 0
    return 2  # pragma: no cover - argparse rejects unknown commands


def _node_environment(args: argparse.Namespace) -> None:
    """Set the environment variables that ``--epmd-port`` and ``--port`` stand for."""
    # Environment variables, not arguments: the port mapper this node may
    # start is a child process, and it must use the same port. ERL_EPMD_PORT
    # is Erlang's own variable, so erl nodes and epmd read the same one.
    if args.epmd_port is not None:
        os.environ["ERL_EPMD_PORT"] = str(args.epmd_port)
    if args.port is not None:
        os.environ["REPG2_DIST_LISTEN_MIN"], os.environ["REPG2_DIST_LISTEN_MAX"] = map(str, args.port)


def _shell(args: argparse.Namespace) -> int:
    """Run ``python -m repg2 shell``: set the environment the options name, then the shell."""
    _node_environment(args)
    import logging

    from repg2.tools import shell

    if args.verbose:
        logging.getLogger("repg2").setLevel(logging.INFO)
    return shell.run(args.name, cookie=args.cookie, connect=args.connect, ticktime=args.ticktime)


def _preflight(args: argparse.Namespace) -> int:
    """Run ``python -m repg2 preflight``: set the environment the options name, then the checks."""
    _node_environment(args)
    from repg2.tools import preflight

    return preflight.run(args.name, cookie=args.cookie, connect=args.connect, ports=args.port, verbose=args.verbose)
