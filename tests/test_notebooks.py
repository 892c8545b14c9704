"""The analyst notebooks in ``notebooks/`` run from top to bottom, and are stored clean.

Each notebook runs with nbclient in a fresh kernel on *this* interpreter (a ``python3``
kernelspec written to a temporary directory put first on ``JUPYTER_PATH``, so that no kernelspec
of the user or the system, for another Python, is picked up), with ``notebooks/`` as its working
directory, as an analyst would run it. Any cell error fails the test, and so does a warning a
cell prints (a pandas ``FutureWarning``, say; other stderr, such as matplotlib building its font
cache on a fresh machine, is left alone). The notebooks' own ``assert`` cells check that the
simulated story comes out as the text tells it.

Stored notebooks have no outputs and no execution counts: results come from running them.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "python3"  # the name in the notebooks' metadata
CELL_TIMEOUT = 300  # seconds per cell; a whole notebook takes well under a minute
BUDGET = 120  # seconds per notebook, loose on purpose (shared CI machines are slow)
WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ", re.MULTILINE)  # as warnings.showwarning prints


@pytest.fixture(scope="session")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``python3`` kernel that runs ``sys.executable``, found before any other."""
    prefix = tmp_path_factory.mktemp("jupyter")
    install_kernelspec(kernel_name=KERNEL, prefix=str(prefix))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"), prepend=os.pathsep)
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
        assert Path(spec.argv[0]) == Path(sys.executable), spec.argv
        yield KERNEL


def test_the_notebooks_are_there() -> None:
    names = {path.name for path in NOTEBOOKS}
    assert {"01-cohort-comparison.ipynb", "02-fairness.ipynb", "03-shadow-and-decay.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == KERNEL
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {index} has an execution count"
        assert "execution" not in cell.metadata, f"cell {index} has execution timings"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(path: Path, kernel: str) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on an error
    elapsed = time.perf_counter() - start
    warnings = [
        (index, output["text"])
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
        and output.get("name") == "stderr"
        and WARNING.search(output["text"])
    ]
    assert not warnings, json.dumps(warnings, indent=1)[:2000]
    assert elapsed < BUDGET, f"{path.name} took {elapsed:.0f} s"
    figures = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert figures, "the notebook drew no figure"
