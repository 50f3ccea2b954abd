"""Execute the walkthrough notebooks and store their outputs in place.

Run from anywhere, with the project's virtual environment::

    python notebooks/execute.py                 # every notebook, in order
    python notebooks/execute.py 03 05           # the notebooks whose names start so

The notebooks are committed *with* their outputs so the pictures show on
GitHub and in the docs without running anything; run this after changing a
notebook (or the code it shows) to refresh them. The test suite
(``tests/test_notebooks.py``) executes them too, without saving. Set
``ERL_EPMD_PORT`` to a private port when others run nodes on the machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT = 120  # seconds for any one cell


def execute(path: Path) -> nbformat.NotebookNode:
    """Run every cell of the notebook at ``path`` in a fresh kernel; return the notebook with outputs."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",  # jupyter_client starts "python" kernels with this very interpreter
        shutdown_kernel="immediate",
        record_timing=False,  # no timestamps in the stored notebook: reruns change only what changed
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return notebook


def main(argv: list[str]) -> int:
    """Execute the chosen notebooks (all by default) and write them back with their outputs."""
    paths = sorted(HERE.glob("[0-9]*.ipynb"))
    if argv:
        paths = [p for p in paths if any(p.name.startswith(a) for a in argv)]
    total = 0.0
    for path in paths:
        started = time.monotonic()
        notebook = execute(path)
        nbformat.write(notebook, path)
        took = time.monotonic() - started
        total += took
        print(f"{path.name}: {took:.1f} s")
    print(f"total: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
