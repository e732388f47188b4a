"""The notebook runs top to bottom on a real Jupyter kernel against a generated lake."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "explore.ipynb"


@pytest.mark.notebook
def test_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = generate(tmp_path / "raw.csv", 5_000, seed=11, bad_fraction=0.02)
    run_etl(EtlOptions(input=str(src), lake=tmp_path / "lake"))
    monkeypatch.setenv("CLICKSTREAM_LAKE", str(tmp_path / "lake"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no chart was drawn"
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "invalid_time" in text and "landing_path" in text
