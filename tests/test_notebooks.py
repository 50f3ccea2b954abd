"""Every walkthrough notebook runs from top to bottom without an error, and quickly.

One test per notebook in ``notebooks/``: each is executed in a fresh
Jupyter kernel with nbclient, as a reader would run it (outputs are not
compared: they hold pids and timings). The kernel is this interpreter's
(``kernel_name='python3'``: jupyter_client starts a ``python`` kernel with
``sys.executable``), so it imports this checkout's ``repg2``. A failing cell
fails the test with the cell's source and the error, ANSI colours removed.
Each notebook must finish within a minute.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from nbclient.exceptions import CellExecutionError  # noqa: E402 - after the skip checks above

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT = 60  # seconds for any one cell
NOTEBOOK_BUDGET = 60.0  # seconds for a whole notebook, kernel start included
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

pytestmark = [pytest.mark.timeout(180), pytest.mark.distributed]


def test_the_kernel_is_this_interpreter() -> None:
    """The 'python3' kernel is started with this very Python, so it finds this repg2."""
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")
    assert manager.format_kernel_cmd()[0] == sys.executable


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("[0-9]*.ipynb")), ids=lambda p: p.stem)
def test_notebook_runs(path: Path) -> None:
    """The notebook executes without an error, within its time budget."""
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        # Graceful, so the kernel writes its coverage data (a killed kernel writes none);
        # it costs a few seconds per notebook once the kernel has spawned nodes.
        shutdown_kernel="graceful",
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.monotonic()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{ANSI.sub('', str(exc))}", pytrace=False)
    took = time.monotonic() - started
    assert took < NOTEBOOK_BUDGET, f"{path.name} took {took:.1f} s, more than {NOTEBOOK_BUDGET} s"
