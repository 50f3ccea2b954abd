"""Show the rows of ``pg2_table`` as a table a reader can follow, each row kind explained.

There is no Erlang original: in an Erlang shell one would type
``ets:tab2list(pg2_table)`` and read the tuples. This module does the same
and adds, for every row, which of pg2's six row kinds it is and what
question it answers, with pids shown by readable names (``alice``).

:func:`pg2_rows` runs on the node whose table is read (here, or on another
node through ``Cluster.rpc``); :class:`Rows` shows them: as HTML in Jupyter
(and on GitHub), as aligned text elsewhere.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from repg2 import ets, pg2
from repg2.erlang import Pid, Ref
from repg2.tools.drawing import format_term

__all__ = ["KINDS", "Rows", "pg2_rows", "show"]

# The six row kinds of pg2_table, in the order pg2.erl's comment lists them:
# kind, the row's Erlang shape, the question it answers.
KINDS = [
    ("group", "{{group, Name}}", "does the group exist?"),
    ("member", "{{member, Name, Pid}, GroupCounter}", "how many times has Pid joined Name?"),
    ("local_member", "{{local_member, Name, Pid}}", "which members of Name live on this node?"),
    ("pid", "{{pid, Pid, Name}}", "which groups is Pid in? (read when Pid dies)"),
    ("ref by pid", "{{ref, Pid}, RPid, MonitorRef, Counter}", "how is Pid monitored, and how many joins in all?"),
    ("ref by monitor", "{{ref, MonitorRef}, Pid}", "whose monitor fired? (read on a 'DOWN')"),
]


def pg2_rows() -> list[tuple[Any, ...]]:
    """Return this node's ``pg2_table`` rows, in the table's (term) order."""
    return [tuple(row) for row in ets.tab2list(pg2.TABLE)]


def show(term: Any, names: dict[Pid, str]) -> str:
    """Print a term in Erlang syntax, with named pids shown by their names."""
    if isinstance(term, Pid) and term in names:
        return names[term]
    if isinstance(term, tuple):
        return "{" + ",".join(show(t, names) for t in term) + "}"
    if isinstance(term, list):
        return "[" + ",".join(show(t, names) for t in term) + "]"
    return format_term(term)


def _explain(row: tuple[Any, ...], names: dict[Pid, str]) -> tuple[str, str]:
    """Return a row's kind and what it says, in words."""
    key = row[0]
    match row:
        case (("group", name),):
            return "group", f"group {show(name, names)} exists"
        case (("member", name, pid), count):
            return "member", f"{show(pid, names)} joined {show(name, names)} {count} time{'s' * (count != 1)}"
        case (("local_member", name, pid),):
            return "local_member", f"{show(pid, names)} is a member of {show(name, names)} on this node"
        case (("pid", pid, name),):
            return "pid", f"{show(pid, names)} is in {show(name, names)}"
        case (("ref", Pid() as pid), rpid, mref, count):
            who = show(pid, names)
            via = f"pg2 monitors {who}" if rpid == pid else f"helper {show(rpid, names)} monitors {who} for pg2"
            return "ref by pid", f"{via} (monitor {show(mref, names)}); {count} join{'s' * (count != 1)} in all groups"
        case (("ref", Ref() as mref), pid):
            return "ref by monitor", f"monitor {show(mref, names)} watches {show(pid, names)}"
    return "?", format_term(key)


@dataclass
class Rows:
    """Rows of ``pg2_table`` with their kinds explained; shows as an HTML table in Jupyter."""

    rows: list[tuple[Any, ...]]
    names: dict[Pid, str] = field(default_factory=dict)
    title: str = ""

    def lines(self) -> list[tuple[str, str, str, str]]:
        """Return ``(kind, key, rest of the row, meaning)`` for every row."""
        out = []
        for row in self.rows:
            kind, meaning = _explain(row, self.names)
            rest = ", ".join(show(v, self.names) for v in row[1:])
            out.append((kind, show(row[0], self.names), rest, meaning))
        return out

    def __repr__(self) -> str:
        lines = [("kind", "key", "value", "meaning"), *self.lines()]
        widths = [max(len(line[i]) for line in lines) for i in range(3)]
        text = [f"{k:<{widths[0]}}  {key:<{widths[1]}}  {v:<{widths[2]}}  {m}" for k, key, v, m in lines]
        head = [self.title] if self.title else []
        return "\n".join([*head, *text, f"({len(self.rows)} rows)"])

    def _repr_html_(self) -> str:
        """Render as an HTML table (Jupyter, the docs and GitHub show it)."""
        cells = "".join(
            "<tr>"
            + "".join(f"<td><code>{html.escape(c)}</code></td>" for c in line[:3])
            + f"<td>{html.escape(line[3])}</td></tr>"
            for line in self.lines()
        )
        title = f"<p><b>{html.escape(self.title)}</b></p>" if self.title else ""
        return (
            f"{title}<table><thead><tr><th>kind</th><th>key</th><th>value</th><th>what it says</th></tr></thead>"
            f"<tbody>{cells}</tbody></table><p>({len(self.rows)} rows)</p>"
        )
