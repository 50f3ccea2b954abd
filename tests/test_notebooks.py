"""Every walkthrough notebook runs from top to bottom without an error, and quickly.

One test per notebook in ``notebooks/``: each is executed in a fresh
Jupyter kernel with nbclient, as a reader would run it (outputs are not
compared: they hold pids and timings). The kernel is this interpreter's
(``kernel_name='python3'``: jupyter_client starts a ``python`` kernel with
``sys.executable``), so it imports this checkout's ``repg2``. A failing cell
fails the test with the cell's source and the error, ANSI colours removed.
Each notebook must finish within a minute. The stored notebooks are
checked too: each comes from one run from top to bottom, each of 01 to 05
and 07 has its "predict, then run" exercise, and 06 measures only when asked.
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


@pytest.mark.parametrize("prefix", ["01", "02", "03", "04", "05", "07"])
def test_each_walkthrough_ends_with_a_predict_then_run_exercise(prefix: str) -> None:
    """Notebooks 01-05 and 07 each have an exercise: a question, a cell to run (output folded), the answer folded away."""
    (path,) = NOTEBOOKS.glob(f"{prefix}-*.ipynb")
    cells = nbformat.read(path, as_version=4).cells
    starts = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and "predict, then run" in c.source]
    assert len(starts) == 1, f"{path.name}: {len(starts)} exercises"
    question, run, answer = cells[starts[0] : starts[0] + 3]
    assert "?" in question.source
    assert run.cell_type == "code" and run.source.strip()
    assert "hide-output" in run.metadata.get("tags", []), "the stored output would give the answer away in the docs"
    assert answer.cell_type == "markdown"
    assert answer.source.startswith("<details><summary>Answer</summary>") and answer.source.rstrip().endswith(
        "</details>"
    )


def test_the_performance_notebook_reads_the_committed_run_and_measures_only_when_asked() -> None:
    """Notebook 06 draws from docs/_static/bench/bench.json, and its live run is guarded by REPG2_LIVE_BENCH."""
    (path,) = NOTEBOOKS.glob("06-*.ipynb")
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert '"docs" / "_static" / "bench" / "bench.json"' in code
    assert (NOTEBOOKS.parent / "docs" / "_static" / "bench" / "bench.json").is_file()
    assert 'os.environ.get("REPG2_LIVE_BENCH") == "1"' in code
    assert code.count("bench.run(") == 1 and "if LIVE:" in code


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("[0-9]*.ipynb")), ids=lambda p: p.stem)
def test_the_stored_notebook_was_run_from_top_to_bottom(path: Path) -> None:
    """Every code cell has a stored run, in order, and no stored error: outputs come from one execution."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: execution counts {counts}"
    errors = [c.id for c in cells for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: stored errors in {errors}"
