"""What the tools draw with: terms printed in Erlang syntax, and pictures that save reproducibly.

There is no Erlang original. Two things every reader-facing tool needs,
kept apart from any one of them:

- :func:`format_term` prints a term as an Erlang shell would
  (``{join,chat,<b.42.0>}``), with pids and references in the project's one
  notation (``<node.number.serial>``, ``#Ref<node.words>``: the short node name stands
  where Erlang prints a node index). The tracer's log and labels, the
  ``pg2_table`` view of :mod:`repg2.examples.tables` and the notebooks use it.
- :class:`Picture` wraps a matplotlib figure so that it shows itself in
  Jupyter and saves itself as SVG or PNG; :func:`render` gives those bytes,
  the same from run to run (no date, fixed ids), so a saved picture only
  changes in version control when what it shows changes. The tracer's
  sequence diagrams and :mod:`repg2.examples.timeline` are pictures.

matplotlib is imported only when a picture is drawn or rendered, so
printing terms needs nothing beyond the package.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from repg2.erlang import Pid, Ref

__all__ = ["Picture", "format_term", "render", "short_node"]

# == Printing terms ==============================================================================

_BARE_ATOM = re.compile(r"^[a-z][A-Za-z0-9_@]*$")


def short_node(node: str) -> str:
    """Return the short name of a node: ``'b'`` for ``'b@127.0.0.1'``."""
    return node.split("@", 1)[0]


def format_term(term: Any, limit: int | None = None) -> str:
    """Print a term in Erlang syntax: ``{'$gen_call',{<a.87.0>,#Ref<a.12>},{join,chat,<b.40.0>}}``.

    Erlang: io_lib:format/2 (the ~p directive, without line breaks)

    Strings are atoms (the project's convention), quoted when Erlang would
    quote them; tuples are ``{}``, lists ``[]``, booleans ``true``/``false``.
    A pid prints as ``<node.number.serial>`` and a reference as ``#Ref<node.words>``:
    the short node name stands where Erlang prints a node index. With
    ``limit``, the text is cut to that many characters, ending in ``...``.
    """
    text = _term(term)
    if limit is not None and len(text) > limit:
        return text[: max(0, limit - 3)] + "..."
    return text


def _term(term: Any) -> str:
    """Print one term (see :func:`format_term`)."""
    if isinstance(term, bool):
        return "true" if term else "false"
    if isinstance(term, str):
        return term if _BARE_ATOM.match(term) else "'" + term.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(term, Pid):
        return f"<{short_node(term.node)}.{term.number}.{term.serial}>"
    if isinstance(term, Ref):  # its words, last first, without the zero words on top: #Ref<a.9>
        words = list(term.words) or [0]
        while len(words) > 1 and words[-1] == 0:
            words.pop()
        return f"#Ref<{short_node(term.node)}.{'.'.join(map(str, reversed(words)))}>"
    if isinstance(term, tuple):
        return "{" + ",".join(_term(t) for t in term) + "}"
    if isinstance(term, list):
        return "[" + ",".join(_term(t) for t in term) + "]"
    return repr(term)


# == Pictures ===================================================================================


class Picture:
    """A matplotlib figure that shows itself in Jupyter and saves itself as SVG or PNG.

    The figure is drawn on first use (by ``draw``, or by a subclass's
    ``_draw``), without pyplot, so no GUI backend is involved and nothing is
    left open. In Jupyter the picture displays as PNG.
    """

    def __init__(self, figure: Any = None) -> None:
        self._figure = figure

    @property
    def figure(self) -> Any:
        """The matplotlib ``Figure``, drawn on first use."""
        if self._figure is None:
            self._figure = self._draw()
        return self._figure

    def _draw(self) -> Any:
        """Draw the figure (subclasses do)."""
        raise NotImplementedError

    def save(self, path: str | Path, dpi: int = 130) -> Path:
        """Write the picture as SVG or PNG, chosen by the suffix; return the path.

        The SVG carries no date and stable ids, so saving the same picture
        twice gives the same file.
        """
        path = Path(path)
        fmt = path.suffix.lstrip(".").lower()
        if fmt not in ("svg", "png"):
            raise ValueError(f"repg2.tools.drawing: save as .svg or .png, not {path.name!r}")
        path.write_bytes(render(self.figure, fmt, dpi))
        return path

    def svg(self) -> str:
        """Return the picture as SVG text."""
        return render(self.figure, "svg").decode("utf-8")

    def png(self, dpi: int = 100) -> bytes:
        """Return the picture as PNG bytes."""
        return render(self.figure, "png", dpi)

    def _repr_png_(self) -> bytes:
        """Show the picture in Jupyter."""
        return self.png()


def render(figure: Any, fmt: str, dpi: int = 100) -> bytes:
    """Render a matplotlib figure as SVG or PNG bytes that do not change from run to run.

    No date in the SVG, fixed element ids, text kept as text (so the SVG
    is small and searchable), the bounding box fitted to what is drawn.
    """
    import matplotlib

    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context({"svg.hashsalt": "repg2", "svg.fonttype": "none"}):
        figure.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata, bbox_inches="tight")
    return buffer.getvalue()
