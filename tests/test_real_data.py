"""A few steps on Debian's real Fashion-MNIST (apt-get install dataset-fashion-mnist)."""
import json
import os

import numpy as np
import pytest

from ae_jax.data import idx
from ae_jax.data import pipeline as data
from ae_jax.training import train
from conftest import FASHION_DIR


@pytest.mark.slow
def test_denoise_smoke_run_on_real_fashion_mnist(real_data_dir, tmp_path):
  from configs import denoise  # pylint: disable=import-outside-toplevel
  config = denoise.get_config()
  config.data_dir = real_data_dir  # prepared once for the session (conftest)
  config.num_epochs, config.steps_per_epoch, config.eval_examples = 2, 5, 500
  config.progress_bar = False
  builder = data.get_builder(config.dataset, config.data_dir, FASHION_DIR)
  assert data.num_examples(builder, "train") == 60_000
  assert data.num_examples(builder, "test") == 10_000
  train.train_and_evaluate(config, str(tmp_path / "run"))
  rows = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [5, 10]
  assert rows[1]["val_loss"] < rows[0]["val_loss"]
  assert os.path.exists(tmp_path / "run" / "images" / "reconstructions.png")


@pytest.mark.slow
def test_the_prepared_splits_keep_the_idx_files_order(real_data_dir):
  """Image i of the prepared test split is image i of t10k-images-idx3-ubyte (tfds' writer
  stored them shuffled until the builder's version 1.1.0: IDX images 9933, 5669, 163, ...
  came first)."""
  builder = data.get_builder("fashion_mnist", real_data_dir, FASHION_DIR)
  for split in ("test", "train"):
    np.testing.assert_array_equal(data.load_images(builder, split),
                                  idx.load_images(FASHION_DIR, split))
