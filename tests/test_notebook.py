"""notebooks/quickstart.ipynb: committed without outputs, and it runs end to end (a few
steps on the tiny dataset: AE_JAX_NOTEBOOK_QUICK=1) in a real kernel, as a user runs it."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import REPO  # pylint: disable=wrong-import-position

NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")
nbformat = pytest.importorskip("nbformat")


def test_the_committed_notebook_has_no_outputs():
  """Outputs stay out of git (images, timings, paths): clear them before committing, e.g.
  `jupyter nbconvert --clear-output --inplace notebooks/quickstart.ipynb`."""
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(nb)
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert code
  assert all(c.outputs == [] and c.execution_count is None for c in code), (
      "notebooks/quickstart.ipynb holds outputs: clear them (jupyter nbconvert "
      "--clear-output --inplace notebooks/quickstart.ipynb)")


def test_the_quickstart_runs_end_to_end(tiny_data, tmp_path, monkeypatch):
  nbclient = pytest.importorskip("nbclient")
  idx_dir, data_dir = tiny_data
  workdir = str(tmp_path / "run")
  for name, value in (("QUICK", "1"), ("WORKDIR", workdir), ("IDX_DIR", idx_dir),
                      ("DATA_DIR", data_dir)):
    monkeypatch.setenv(f"AE_JAX_NOTEBOOK_{name}", value)  # the kernel inherits them
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                          resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}).execute()
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
  text = "".join(o.get("text", "") for o in outputs)
  pictures = [o for o in outputs if "image/png" in o.get("data", {})]
  # The grid, the loss curve, the round trip, the latent map and the interpolation.
  assert len(pictures) == 5, text
  assert "trained to step 4" in text and "epoch 2: train_loss" in text, text
  assert "B/image instead of 784 B" in text and "PSNR" in text, text
  assert sorted(os.listdir(os.path.join(workdir, "latent"))) == ["interpolation.png",
                                                                  "latent_pca.png"]
