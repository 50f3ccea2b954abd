"""The ``python -m repg2`` command line: ``demo`` and ``xref``.

The Python counterpart of starting ``erl``: ``demo`` runs a narrated
three-node pg2 session on this machine, ``xref`` prints the map from Erlang
functions to their Python translations.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    """Build the argument parser for every sub-command.

    Erlang: none (command-line handling)
    """
    parser = argparse.ArgumentParser(
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
    xref = sub.add_parser(
        "xref",
        help="map Erlang functions to their Python translations",
        description="Without FILE: list every 'Erlang: module:function/arity' line of repg2. "
        "With FILE (your own copy of an Erlang source, e.g. pg2.erl): print each of its functions beside "
        "its Python translation and name those without one (exit status 1 if any).",
    )
    xref.add_argument("file", nargs="?", type=Path, help="an Erlang source file, e.g. lib/kernel/src/pg2.erl")
    xref.add_argument("--check", action="store_true", help="fail if a definition in repg2 lacks an 'Erlang:' line")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a sub-command; return the exit status.

    Erlang: none (the entry point of the command line)
    """
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from repg2 import demo

        return demo.run(quiet=args.quiet)
    if args.command == "xref":
        from repg2 import xref

        if args.check:
            missing = xref.missing_xrefs()
            for row in missing:
                print(row)
            print(f"{len(missing)} definitions without an 'Erlang:' line")
            if missing:
                return 1
        if args.file is None:
            print(xref.format_map())
            return 0
        try:
            source = args.file.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            print(f"python -m repg2 xref: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
        text, missing_count = xref.format_side_by_side(source)
        print(text)
        return 1 if missing_count else 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
