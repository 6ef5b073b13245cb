"""Runs and codes files written before the model-zoo redesign still resume and decode.

tests/fixtures/legacy_main/ holds a dense and a conv run (one epoch of 2 steps, checkpoint
at step 2, config.json naming `model` and `latent_dim`) and a codes file of each, written
by main at 8537bb8 (its README says how). Today's code must (1) train the lecture's models
to the same numbers, (2) resume those runs to the same end as an unbroken run, and (3)
decode those codes to the same pixels.

Main trained them on the splits as tfds 4.9's writer had shuffled them (the IDX builder's
version 1.0.0); today's splits keep the IDX files' order. The runs here are fed that order
(`shuffled_1_0_0`: the same images in the order the old version stored them).

The fixtures were made on a 2-core Intel Xeon (AVX-512) with XLA's default optimizations,
so the runs here use them too (not the suite's quicker settings: conftest.real_run_env), and values are compared
to 1e-5: bit for bit on that machine, within float rounding on CPUs that vectorize
differently.
"""
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from ae_jax.training import checkpoint
from ae_jax.compression import compress
from ae_jax.core import quality
from conftest import FASHION_DIR, REPO, real_run_env

FIXTURES = os.path.join(REPO, "tests", "fixtures", "legacy_main")
TIMING = ("seconds", "images_per_sec")


def _launch(model, workdir, data_dir, epochs):
  config = "dense" if model == "dense" else "conv"
  args = [sys.executable, os.path.join(REPO, "launch.py"), "--config", f"configs/{config}.py",
          "--workdir", workdir, f"--config.num_epochs={epochs}", "--config.steps_per_epoch=2",
          "--config.eval_examples=16", "--config.eval_batch_size=16", "--config.batch_size=16",
          "--config.progress_bar=False", f"--config.data_dir={data_dir}",
          f"--config.idx_dir={FASHION_DIR}"]
  if model == "dense":
    args.append("--config.encoder.latent_dim=8")
  return subprocess.Popen(args, cwd=REPO, env=real_run_env(TF_CPP_MIN_LOG_LEVEL="2"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [{k: v for k, v in json.loads(l).items() if k not in TIMING} for l in f]


def _close(a, b):
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-7, err_msg=k)


def shuffled_1_0_0(data_dir: str) -> str:
  """A tfds data_dir whose Fashion-MNIST splits are in the order the IDX builder's version
  1.0.0 stored them: tfds' writer sorted a split's examples by the hash of their keys
  (0, 1, ...) salted with the split's name (its test split began with IDX images 9933, 5669,
  163). Written as the decoded caches and the record that `data.Source` reads, so runs on
  the device pipeline train and evaluate on exactly what main's did."""
  from tensorflow_datasets.core import hashing  # pylint: disable=import-outside-toplevel
  from ae_jax.data import idx  # pylint: disable=import-outside-toplevel
  folder = os.path.join(data_dir, "shuffled_1_0_0")
  os.makedirs(folder)
  splits = {}
  for split in ("train", "test"):
    images = idx.load_images(FASHION_DIR, split)
    order = sorted(range(len(images)), key=hashing.Hasher(split).hash_key)
    np.save(os.path.join(folder, f"{split}.images.npy"), images[order])
    splits[split] = len(images)
  os.makedirs(os.path.join(data_dir, "ae_jax_prepared"))
  with open(os.path.join(data_dir, "ae_jax_prepared", "fashion_mnist.v2.json"), "w") as f:
    json.dump({"data_dir": folder, "image_shape": [28, 28, 1], "splits": splits,
               "builder": "idx_images", "version": idx.VERSION}, f)
  return data_dir


@pytest.mark.slow
@pytest.mark.parametrize("model", ["dense", "conv"])
def test_old_runs_resume_and_old_codes_decode(model, tmp_path):
  data_dir = shuffled_1_0_0(str(tmp_path / "tfds"))
  old = os.path.join(FIXTURES, model)
  resumed = str(tmp_path / "resumed")
  shutil.copytree(old, resumed)
  unbroken = str(tmp_path / "unbroken")
  procs = [_launch(model, unbroken, data_dir, 2), _launch(model, resumed, data_dir, 2)]
  for p in procs:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
  assert f"Resuming {resumed} from step 2." in err

  # (1) Today's code trains the lecture's model to the numbers main wrote.
  first = _rows(unbroken)[0]
  _close(first, _rows(old)[0])
  _close(_flat(checkpoint.restore_autoencoder(unbroken, 2)[1]),
         _flat(checkpoint.restore_autoencoder(old, 2)[1]))
  # (2) The old run resumed to the unbroken run's end: same rows, same weights.
  assert [r["step"] for r in _rows(resumed)] == [2, 4]
  for a, b in zip(_rows(resumed), _rows(unbroken)):
    _close(a, b)
  _close(_flat(checkpoint.restore_autoencoder(resumed)[1]),
         _flat(checkpoint.restore_autoencoder(unbroken)[1]))
  # (3) The old codes file decodes with the old run, to the pixels main decoded.
  codes = compress.load_codes(os.path.join(FIXTURES, f"{model}.aec"))
  pixels = quality.to_uint8(compress.decode(codes, old)).astype(np.int16)[..., 0]
  expected = np.load(os.path.join(FIXTURES, f"{model}_decoded.npy")).astype(np.int16)
  assert pixels.shape == expected.shape and np.abs(pixels - expected).max() <= 1


def _flat(tree) -> dict:
  return {"params": np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])}
